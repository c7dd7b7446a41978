"""The demo's admin endpoint: served beside a running sandbox, on loopback, with the sandbox's registry.

``s3access sandbox run --admin-endpoint`` (so ``make demo`` and ``make notebooks``) and the browser tests
start it the same way: the sandbox's ``admin`` is its AWS identity and the sandbox its STS, requests are
kept in ``admin.db`` in the state folder, and a local admin token in ``admin.token`` lets a person, or a
notebook, act as the admin. ``sandbox run`` seeds a new sandbox each time, so it starts the store empty too
(``fresh``): a request kept from an earlier run would say ``applied`` about grants the new sandbox lacks.
"""

from __future__ import annotations

import contextlib
import errno
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.app import create_app
from mlspace_s3magic.admin.auth import create_admin_token
from mlspace_s3magic.admin.server import ServerConfig, build_service, expiring
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.core.errors import Conflict, InvalidInput, S3MagicError, Unavailable, UpstreamFailed
from mlspace_s3magic.sandbox.server import LOOPBACK
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT, PARTITION, SHARED_BUCKETS

ADMIN_PRINCIPAL = "admin"
ADMIN_ARN_PATTERN = f"arn:{PARTITION}:iam::{MLSPACE_ACCOUNT}:user/{ADMIN_PRINCIPAL}"
STORE_FILE_NAME = "admin.db"
# SQLite's files beside the store in WAL mode (and in rollback mode), removed with it.
STORE_SIDE_FILES = ("-wal", "-shm", "-journal")
TOKEN_FILE_NAME = "admin.token"
# The admin's steps on one request that the launcher prints, in the order a review takes them.
ADMIN_ACTIONS = ("show", "approve", "deny", "apply", "revoke")
# What an action needs besides the request's ID, printed for the person to replace.
ACTION_ARGUMENTS = {"deny": "--reason 'WHY, for the requester' "}
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class AdminEndpoint:
    """A running demo endpoint: where it listens, and the file holding its admin token (never the token)."""

    url: str
    state_dir: Path
    token_file: Path
    service: AdminService = field(repr=False, compare=False)

    def admin_instructions(self) -> str:
        """Lines that tell a person how to act as the admin in another shell, ready to paste: the first takes
        the admin's identity and lists the requests, the others each act on one request."""
        program = _s3access_program()
        state_dir = shlex.quote(str(self.state_dir))
        endpoint = f"--url {self.url} --token-file {shlex.quote(str(self.token_file))}"
        return "\n".join(
            [
                f'To act as the admin: eval "$({program} sandbox env --as {ADMIN_PRINCIPAL} --state-dir '
                f'{state_dir})" && {program} admin requests {endpoint}',
                "Then, in any shell, with a request's ID in place of ID:",
                *(
                    f"  {program} admin {action} ID {ACTION_ARGUMENTS.get(action, '')}{endpoint}"
                    for action in ADMIN_ACTIONS
                ),
            ]
        )


def _s3access_program() -> str:
    """This installation's ``s3access`` by its full path: another shell may not have its folder (say,
    ``.venv/bin``, which ``make`` puts on its own PATH only) on its PATH."""
    beside = Path(sys.executable).with_name("s3access")
    found = str(beside) if beside.exists() else shutil.which("s3access")
    return shlex.quote(str(Path(found).resolve())) if found else "s3access"


@contextlib.contextmanager
def serve_admin_endpoint(
    state_dir: Path,
    *,
    port: int = 0,
    fresh: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> Iterator[AdminEndpoint]:
    """Serve the endpoint for the sandbox running for ``state_dir`` until the block ends.

    ``port`` 0 takes any free one. ``fresh`` empties the store first, for a sandbox that was just seeded;
    otherwise its requests are kept (the token always is). While it runs, ``sandbox.json`` names it, so
    ``s3access sandbox env`` exports ``S3ACCESS_ADMIN_URL``; the registry holds the sandbox's shared buckets
    with their owner role, so an approved request can be applied end to end.
    """
    state_dir = state_dir.resolve()
    state = SandboxState.load(state_dir)
    if fresh:
        _remove_store(state_dir / STORE_FILE_NAME)
    token_file = state_dir / TOKEN_FILE_NAME
    token = _admin_token(token_file)
    with contextlib.ExitStack() as cleanup:  # undone in reverse, from wherever starting stopped
        listener = cleanup.enter_context(_listen(port))
        bound_port = int(listener.getsockname()[1])
        url = f"http://{LOOPBACK}:{bound_port}"
        config = ServerConfig(
            host=LOOPBACK,
            port=bound_port,
            store_url=f"sqlite://{state_dir / STORE_FILE_NAME}",
            sts_endpoint=state.endpoint_url,
            region=state.region,
            admin_arn_patterns=(ADMIN_ARN_PATTERN,),
            token_file=token_file,
        )
        service = build_service(config, state.aws_for(ADMIN_PRINCIPAL))
        cleanup.callback(service.store.close)
        cleanup.callback(service.authenticator.close)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(service),
                host=LOOPBACK,
                port=bound_port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=int(SHUTDOWN_TIMEOUT_SECONDS / 2),
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="admin-endpoint"
        )
        thread.start()
        cleanup.callback(_stop, server, thread)
        cleanup.enter_context(expiring(service, config.expiry_seconds))
        _wait_until_started(server, thread, url, startup_timeout)
        _register_shared_buckets(url, token)
        state.with_admin_url(state_dir, url)
        cleanup.callback(_forget_admin_url, state_dir, url)
        yield AdminEndpoint(url, state_dir, token_file, service)


def _remove_store(path: Path) -> None:
    """Remove the store's database with SQLite's files beside it, before anything opens it."""
    for doomed in (path, *(path.with_name(path.name + suffix) for suffix in STORE_SIDE_FILES)):
        try:
            doomed.unlink(missing_ok=True)
        except OSError as error:
            raise Unavailable(f"Cannot remove the old admin store {doomed}: {error.strerror}.") from None


def _admin_token(path: Path) -> str:
    """The demo's admin token: the one already in ``path`` (so a restart keeps it), else a new one."""
    if not path.exists():
        return create_admin_token(path)
    try:
        return path.read_text().strip()
    except OSError as error:
        raise Unavailable(f"Cannot read the admin token file {path}: {error.strerror}.") from None


def _listen(port: int) -> socket.socket:
    """A loopback socket bound before uvicorn starts, so the URL is known and a taken port is said at once."""
    if not 0 <= port <= 65535:
        raise InvalidInput(f"--admin-port must be between 0 (any free port) and 65535, not {port}.")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart may reuse its port at once
    try:
        listener.bind((LOOPBACK, port))
        listener.listen()
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise Conflict(
                f"Port {port} on {LOOPBACK} is already in use, so the admin endpoint cannot listen there: "
                "pick another --admin-port, or leave it out to take any free port."
            ) from None
        raise Unavailable(
            f"The admin endpoint cannot listen on {LOOPBACK}:{port}: {error.strerror}."
        ) from None
    return listener


def _stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=SHUTDOWN_TIMEOUT_SECONDS)


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise UpstreamFailed(f"The admin endpoint for {url} stopped while starting.")
        if time.monotonic() > deadline:
            raise Unavailable(f"The admin endpoint did not start on {url} within {timeout:g} s.")
        time.sleep(0.02)


def _register_shared_buckets(url: str, token: str) -> None:
    """Register the sandbox's shared buckets with the owner's role; registering again only updates them."""
    client = AdminClient(url, token=token)
    try:
        for bucket in SHARED_BUCKETS:
            client.put_bucket(bucket)
    finally:
        client.close()


def _forget_admin_url(state_dir: Path, url: str) -> None:
    """Take the endpoint out of ``sandbox.json``, unless the sandbox is gone or another endpoint took over."""
    try:
        state = SandboxState.load(state_dir)
    except S3MagicError:
        return
    if state.admin_url == url:
        state.with_admin_url(state_dir, None)
