"""``/s3access/admin/...``: the admin review panel's routes forward to the endpoint as the notebook's own
identity, so the endpoint decides who reviews: the sandbox's admin may, alice is refused with a 403."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from ..admin.conftest import Endpoint, free_port, serve_endpoint
from .conftest import CONFIGURED_CACHE_SECONDS, Fetch, get_json, refused


@pytest.fixture
def principal() -> str:
    """Whose notebook the server runs as; a test parametrizes it to be the sandbox's admin."""
    return "alice@demo"


@pytest.fixture
def jp_server_config(
    alice_environment: None, principal: str, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> Config:
    for key, value in sandbox.environment_for(principal).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"mlspace_s3magic": True}},
            "S3Access": {"cache_seconds": CONFIGURED_CACHE_SECONDS},
        }
    )


def _alice_files(endpoint: Endpoint, prefix: str = "datasets/") -> str:
    alice = endpoint.client("alice@demo")
    new = NewAccessRequest.model_validate(
        {
            "bucket": SHARED_BUCKET,
            "prefix": prefix,
            "access": "read",
            "reason": "iris study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    filed = alice.submit(new)
    alice.close()
    assert filed is not None
    return filed.id


async def _act(fetch: Fetch, request_id: str, action: str) -> Any:
    response = await fetch(
        "s3access", "admin/act", method="POST", body=b"", params={"id": request_id, "action": action}
    )
    assert response.code == 200
    return json.loads(response.body)


@pytest.mark.parametrize("principal", ["admin"])
async def test_the_admin_reviews_approves_applies_and_sees_the_verification(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        me = await get_json(jp_fetch, "admin/me")
        assert me == {"arn": sandbox.principal("admin").arn, "admin": True}
        request_id = _alice_files(endpoint)

        (listed,) = (await get_json(jp_fetch, "admin/requests"))["requests"]
        assert (listed["id"], listed["status"], listed["requester"]) == (request_id, "pending", "alice")
        assert listed["changes"] == []  # a pending request's plan is worked out when it is shown

        shown = await get_json(jp_fetch, "admin/request", id=request_id)
        layers = {change["layer"] for change in shown["changes"]}
        assert {"identity", "boundary", "bucket-policy"} <= layers, layers
        identity = next(c for c in shown["changes"] if c["layer"] == "identity")
        added = [line["text"] for line in identity["diff"] if line["kind"] == "added"]
        assert any(SHARED_BUCKET in text for text in added), identity["diff"]
        assert shown["verification"] is None

        approved = await _act(jp_fetch, request_id, "approve")
        assert approved["status"] == "approved" and approved["changes"]
        applied = await _act(jp_fetch, request_id, "apply")
        assert applied["status"] == "applied"
        verification = applied["verification"]
        assert verification["verdict"] == "allowed"
        assert verification["principal"] == sandbox.principal("alice@demo").arn
        verdicts = {c["capability"]: c["verdict"] for c in verification["capabilities"]}
        assert verdicts and set(verdicts.values()) == {"allowed"}, verdicts
        assert endpoint.service.store.get(request_id).status is RequestStatus.APPLIED

        # Applied again: the endpoint refuses (409) and the route keeps its meaning.
        status, message = await refused(
            jp_fetch, "admin/act", method="POST", body=b"", params={"id": request_id, "action": "apply"}
        )
        assert status == 409 and "applied" in message, message
        revoked = await _act(jp_fetch, request_id, "revoke")
        assert revoked["status"] == "revoked"
        assert (await get_json(jp_fetch, "admin/requests"))["requests"] == []  # nothing left to review


@pytest.mark.parametrize("principal", ["admin"])
async def test_a_deny_s_reason_reaches_the_endpoint_and_alice_reads_it(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        request_id = _alice_files(endpoint)
        params = {"id": request_id, "action": "deny"}
        # Without a reason, or with a short one, the endpoint refuses, saying what it accepts.
        for body in (b"", json.dumps({"reason": "no"})):
            status, message = await refused(jp_fetch, "admin/act", method="POST", body=body, params=params)
            assert status == 400 and "3 to 1000 characters of plain text" in message, message

        response = await jp_fetch(
            "s3access",
            "admin/act",
            method="POST",
            body=json.dumps({"reason": "Use the public iris copy instead."}),
            params=params,
        )
        denied = json.loads(response.body)
        assert (denied["status"], denied["decision_reason"]) == (
            "denied",
            "Use the public iris copy instead.",
        )
        assert endpoint.service.store.get(request_id).decision_reason == "Use the public iris copy instead."
        alice = endpoint.client("alice@demo")
        assert [r.decision_reason for r in alice.requests()] == ["Use the public iris copy instead."]
        alice.close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "not JSON"),
        (b'["reason"]', "must be a JSON object"),
        (b'{"reason": 3}', 'must be {"reason": "..."}'),
        (b'{"reason": "why", "extra": 1}', 'must be {"reason": "..."}'),
        (json.dumps({"reason": "x" * 17000}).encode(), "larger than 16384 bytes"),
    ],
)
async def test_a_bad_body_is_400_before_the_endpoint_is_asked(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch, body: bytes, expected: str
) -> None:
    # Nobody listens here: had the route called the endpoint, the answer would be 503, not 400.
    monkeypatch.setenv("S3ACCESS_ADMIN_URL", f"http://127.0.0.1:{free_port()}")
    params = {"id": "0123456789ab", "action": "deny"}
    status, message = await refused(jp_fetch, "admin/act", method="POST", body=body, params=params)
    assert status == 400 and expected in message, message
    params["action"] = "approve"
    status, message = await refused(
        jp_fetch, "admin/act", method="POST", body=json.dumps({"reason": "why not"}), params=params
    )
    assert status == 400 and "Only a deny takes a reason" in message, message


async def test_alice_is_refused_every_admin_route_by_the_endpoint(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        assert await get_json(jp_fetch, "admin/me") == {
            "arn": sandbox.principal("alice@demo").arn,
            "admin": False,
        }
        request_id = _alice_files(endpoint)
        for route, params in (("admin/requests", {}), ("admin/request", {"id": request_id})):
            status, message = await refused(jp_fetch, route, params=params)
            assert status == 403 and "admins" in message, (route, message)
        for action in ("approve", "deny"):
            status, message = await refused(
                jp_fetch, "admin/act", method="POST", body=b"", params={"id": request_id, "action": action}
            )
            assert status == 403 and "Only an admin" in message, message
        assert endpoint.service.store.get(request_id).status is RequestStatus.PENDING


async def test_without_an_endpoint_nobody_is_an_admin(jp_fetch: Fetch) -> None:
    assert await get_json(jp_fetch, "admin/me") == {"arn": None, "admin": False}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"id": "abc/approve", "action": "apply"}, "is not a request id"),
        ({"id": "abc", "action": "cancel"}, "must be one of approve, deny, apply, revoke"),
        ({"action": "apply"}, "'id' is required"),
    ],
)
async def test_a_malformed_action_is_400_before_the_endpoint_is_asked(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch, params: dict[str, str], expected: str
) -> None:
    # Nobody listens here: had the route called the endpoint, the answer would be 503, not 400.
    monkeypatch.setenv("S3ACCESS_ADMIN_URL", f"http://127.0.0.1:{free_port()}")
    status, message = await refused(jp_fetch, "admin/act", method="POST", body=b"", params=params)
    assert status == 400 and expected in message, message


async def test_an_action_is_a_post_only(jp_fetch: Fetch) -> None:
    status, _ = await refused(jp_fetch, "admin/act", params={"id": "0123456789ab", "action": "approve"})
    assert status == 405
