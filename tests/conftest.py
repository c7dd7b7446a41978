"""Shared fixtures: one in-process sandbox per test session, reset for tests that change the world."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlspace_s3magic.sandbox.server import Sandbox
from mlspace_s3magic.sandbox.state import SandboxState

# jp_fetch and a jupyter_server per test, for the server extension's routes (tests/server).
pytest_plugins = ["pytest_jupyter.jupyter_server"]

AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see only the credentials they are given, never the machine's own AWS configuration."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path_factory.mktemp("aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    """moto keeps state per process, so the whole session shares one server on a free loopback port."""
    sandbox = Sandbox(port=0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> SandboxState:
    """The seeded world, for tests that only read it."""
    assert running_sandbox.state is not None
    return running_sandbox.state


@pytest.fixture
def fresh_sandbox(running_sandbox: Sandbox) -> Iterator[SandboxState]:
    """A world this test may change; it is rebuilt afterwards so later tests see the pristine one."""
    assert running_sandbox.state is not None
    yield running_sandbox.state
    running_sandbox.reset()
