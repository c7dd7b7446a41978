"""A jupyter_server with our extension, running as alice@demo against the session's sandbox."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse
from traitlets.config import Config

from mlspace_s3magic.core.registry import REGISTRY_ENV, save_registry_file
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import REGISTRY

Fetch = Callable[..., Awaitable[HTTPResponse]]
CONFIGURED_CACHE_SECONDS = 42.0  # a value no default has, so a test can see the server's config arrive


@pytest.fixture
def alice_environment(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The server process acts as alice's notebook session, with the sandbox admin's registry file."""
    for key, value in sandbox.environment_for("alice@demo").items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    registry = tmp_path / "registry.json"
    save_registry_file(registry, REGISTRY)
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the outbox
    monkeypatch.delenv("S3ACCESS_ADMIN_URL", raising=False)


@pytest.fixture
def jp_server_config(alice_environment: None) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"mlspace_s3magic": True}},
            "S3Access": {"cache_seconds": CONFIGURED_CACHE_SECONDS},
        }
    )


async def get_json(fetch: Fetch, route: str, **params: str) -> Any:
    response = await fetch("s3access", route, params=params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def refused(fetch: Fetch, route: str, *, method: str = "GET", **kwargs: Any) -> tuple[int, str]:
    """The status and the JSON message of a request that must fail."""
    with pytest.raises(HTTPClientError) as caught:
        await fetch("s3access", route, method=method, **kwargs)
    response = caught.value.response
    assert response is not None
    body = json.loads(response.body)
    assert isinstance(body["message"], str) and body["message"]
    return caught.value.code, body["message"]
