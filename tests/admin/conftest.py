"""An admin endpoint served over HTTP on loopback, against the session's sandbox."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.app import create_app
from mlspace_s3magic.admin.auth import create_admin_token
from mlspace_s3magic.admin.server import ServerConfig, build_service
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKETS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Endpoint:
    url: str
    service: AdminService
    state: SandboxState
    token: str = field(repr=False)  # never in a failing test's output

    def client(self, principal: str) -> AdminClient:
        """A client acting as a sandbox principal, proving itself with its AWS credentials."""
        return AdminClient(self.url, aws=self.state.aws_for(principal))

    def token_client(self) -> AdminClient:
        return AdminClient(self.url, token=self.token)


@contextlib.contextmanager
def serve_endpoint(state: SandboxState, folder: Path) -> Iterator[Endpoint]:
    """The endpoint as `s3access admin serve` builds it, on a free loopback port, with the registry set."""
    port = free_port()
    token_file = folder / "admin.token"
    token = create_admin_token(token_file)
    config = ServerConfig(
        port=port,
        store_url=f"sqlite:///{folder / 'admin.db'}",
        sts_endpoint=state.endpoint_url,
        admin_arn_patterns=("arn:aws:iam::111111111111:user/admin",),
        token_file=token_file,
    )
    service = build_service(config, state.aws_for("admin"))
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the admin endpoint did not start"
    try:
        running = Endpoint(config.url, service, state, token)
        for bucket in SHARED_BUCKETS:
            running.token_client().put_bucket(bucket)
        yield running
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        service.authenticator.close()
        service.store.close()


@pytest.fixture
def endpoint(fresh_sandbox: SandboxState, tmp_path: Path) -> Iterator[Endpoint]:
    with serve_endpoint(fresh_sandbox, tmp_path) as running:
        yield running
