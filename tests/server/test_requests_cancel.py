"""``POST /s3access/requests/cancel?id=``: alice withdraws her own request; the admin endpoint decides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from ..admin.conftest import free_port, serve_endpoint
from .conftest import Fetch, refused

GOOD_REQUEST = {"bucket": SHARED_BUCKET, "prefix": "datasets/", "access": "read", "reason": "iris study"}


async def _file(fetch: Fetch) -> str:
    response = await fetch("s3access", "requests", method="POST", body=json.dumps(GOOD_REQUEST))
    assert response.code == 201
    request_id: str = json.loads(response.body)["id"]
    return request_id


async def _file_other(fetch: Fetch) -> str:
    """A second request (another prefix, so the endpoint does not take it for the first one again)."""
    body = {**GOOD_REQUEST, "prefix": "logs/"}
    response = await fetch("s3access", "requests", method="POST", body=json.dumps(body))
    request_id: str = json.loads(response.body)["id"]
    return request_id


async def _cancel(fetch: Fetch, request_id: str) -> Any:
    response = await fetch("s3access", "requests/cancel", method="POST", body=b"", params={"id": request_id})
    assert response.code == 200
    return json.loads(response.body)


async def test_a_pending_request_is_cancelled_and_the_list_comes_back(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        kept, withdrawn = await _file(jp_fetch), await _file_other(jp_fetch)
        listed = await _cancel(jp_fetch, withdrawn)
        assert {r["id"]: r["status"] for r in listed["requests"]} == {kept: "pending", withdrawn: "cancelled"}
        assert listed["queued"] == []
        assert endpoint.service.store.get(withdrawn).status is RequestStatus.CANCELLED
        assert endpoint.service.store.get(kept).status is RequestStatus.PENDING


async def test_a_cancel_the_endpoint_refuses_keeps_its_meaning(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        denied = await _file(jp_fetch)
        admin = endpoint.token_client()
        admin.act(denied, "deny", reason="the dataset is under embargo")

        status, message = await refused(
            jp_fetch, "requests/cancel", method="POST", body=b"", params={"id": denied}
        )
        assert status == 409, message
        assert "denied" in message and "cannot be cancelled" in message
        assert endpoint.service.store.get(denied).status is RequestStatus.DENIED

        # Bob's request is not alice's to cancel, nor even to learn of: the endpoint answers "none of yours".
        bob = endpoint.client("bob@demo")
        bobs = bob.submit(NewAccessRequest.model_validate({**GOOD_REQUEST, "idempotency_key": "b" * 32}))
        assert bobs is not None
        status, message = await refused(
            jp_fetch, "requests/cancel", method="POST", body=b"", params={"id": bobs.id}
        )
        assert status == 404 and "of yours" in message, message
        assert endpoint.service.store.get(bobs.id).status is RequestStatus.PENDING
        admin.close()
        bob.close()


@pytest.mark.parametrize("request_id", ["abc/approve", "../x", "abc?x=1", "a b", "x" * 65, ""])
async def test_a_malformed_id_is_400_before_the_endpoint_is_asked(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch, request_id: str
) -> None:
    # Nobody listens here: had the route called the endpoint, the answer would be 503, not 400.
    monkeypatch.setenv("S3ACCESS_ADMIN_URL", f"http://127.0.0.1:{free_port()}")
    status, message = await refused(
        jp_fetch, "requests/cancel", method="POST", body=b"", params={"id": request_id}
    )
    assert status == 400
    assert ("is not a request id" if request_id else "is required") in message


async def test_a_cancel_without_an_admin_endpoint_says_how_to_configure_one(jp_fetch: Fetch) -> None:
    status, message = await refused(
        jp_fetch, "requests/cancel", method="POST", body=b"", params={"id": "0123456789ab"}
    )
    assert status == 503 and "S3ACCESS_ADMIN_URL" in message


async def test_cancel_is_a_post_only(jp_fetch: Fetch) -> None:
    """A GET (a link, an image tag) never cancels: only a POST, which carries the XSRF check."""
    status, _ = await refused(jp_fetch, "requests/cancel", params={"id": "0123456789ab"})
    assert status == 405
