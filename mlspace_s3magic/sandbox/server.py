"""moto's server on loopback, with request signing enforced once seeded: every S3 and KMS request decided by
our evaluator over every layer (:mod:`.authorization`), other services by moto's identity-policy check."""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import Any

from moto import backends
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from mlspace_s3magic.core.errors import Unavailable
from mlspace_s3magic.sandbox import authorization
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import seed_world

LOOPBACK = "127.0.0.1"
# Everything from the first request on is signed and checked against identity policies.
ENFORCE_FROM_FIRST_CALL = "0"
NEVER_ENFORCE = "inf"


def _remember_moto_modules() -> None:
    """moto lists its own package folder (about 175 ``stat`` calls) on every request to route it; the folder
    does not change while we run, so list it once. This roughly halves the server's time per request, which
    keeps the sandbox from being the bottleneck when many requests run at once."""
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _one_dynamodb_call_at_a_time() -> None:
    """moto serves each request on its own thread and rolls a cancelled DynamoDB transaction back by restoring
    a copy of the whole table, which can undo a transaction that committed meanwhile; DynamoDB itself
    serialises them. Applying DynamoDB calls one at a time gives the sandbox the service's guarantee."""
    if getattr(DynamoHandler.call_action, "serialised", False):
        return
    original = DynamoHandler.call_action
    lock = threading.Lock()

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    call_action.serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


class Sandbox:
    """One seeded moto server. moto keeps its state per process, so run one sandbox per process."""

    def __init__(self, host: str = LOOPBACK, port: int = 0, *, shared_role: bool = False):
        self.host = host
        self.port = port
        # MLSpace without per-user roles (MANAGE_IAM_ROLES off), on every reset too.
        self.shared_role = shared_role
        self._server: ThreadedMotoServer | None = None
        self.state: SandboxState | None = None

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise Unavailable(
                "The sandbox is not started: start() it (or run `s3access sandbox serve`) first."
            )
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> SandboxState:
        # werkzeug logs every request at INFO; the sandbox's one line of output is ours.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto logs whole requests (session tokens, signatures) at DEBUG: never let them reach a log.
        logging.getLogger("moto").setLevel(logging.WARNING)
        _remember_moto_modules()
        _one_dynamodb_call_at_a_time()
        authorization.install()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self.reset()

    def reset(self) -> SandboxState:
        """Wipe every account and build the world again: new keys, pristine policies and objects."""
        self._post("/moto-api/reset-auth", NEVER_ENFORCE)
        self._post("/moto-api/reset", "")
        self.state = seed_world(self.endpoint_url, shared_role=self.shared_role)
        self._post("/moto-api/reset-auth", ENFORCE_FROM_FIRST_CALL)
        return self.state

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _post(self, path: str, body: str) -> None:
        # text/plain: as a form post, Flask would consume the body before moto reads it.
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
