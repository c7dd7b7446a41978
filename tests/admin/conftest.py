"""An admin endpoint served over HTTP on loopback, against the session's sandbox."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.sandbox.admin_endpoint import serve_admin_endpoint
from mlspace_s3magic.sandbox.state import SandboxState


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
    """The endpoint as `make demo` serves it, on a free loopback port, with the shared buckets registered."""
    state.save(folder)  # the launcher finds the sandbox through its state folder
    with serve_admin_endpoint(folder) as running:
        yield Endpoint(running.url, running.service, state, running.token_file.read_text().strip())


@pytest.fixture
def endpoint(fresh_sandbox: SandboxState, tmp_path: Path) -> Iterator[Endpoint]:
    with serve_endpoint(fresh_sandbox, tmp_path) as running:
        yield running
