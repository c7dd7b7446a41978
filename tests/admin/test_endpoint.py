"""The admin endpoint over HTTP: the whole flow of the issue, and who may do what."""

from __future__ import annotations

import uuid

import httpx
import pytest

from mlspace_s3magic.access_requests.client import AdminRefused
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.remedy import AccessLevel
from mlspace_s3magic.sandbox.world import SHARED_BUCKETS

from .conftest import Endpoint

SHARED = parse_bucket_reference("BucketToBeShared")


def _new(
    bucket: str = "BucketToBeShared", access: AccessLevel = AccessLevel.READ, **extra: object
) -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": bucket,
            "access": access,
            "reason": "iris study for the demo project",
            "idempotency_key": uuid.uuid4().hex,
            **extra,
        }
    )


def _alice_check(endpoint: Endpoint) -> Verdict:
    return (
        Checker(endpoint.state.aws_for("alice@demo"))
        .check(SHARED, owner_account="222222222222")
        .verdict("read")
    )


def test_request_approve_apply_verify_revoke_end_to_end(endpoint: Endpoint) -> None:
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    assert _alice_check(endpoint) is Verdict.DENIED

    filed = alice.submit(_new(days=7))
    assert filed is not None and filed.status is RequestStatus.PENDING
    assert filed.requester.user == "alice" and filed.requester.project == "demo"

    preview = admin.show(filed.id).request.plan
    assert preview is not None
    assert {change["layer"] for change in preview["changes"]} == {"bucket-policy", "boundary", "identity"}

    approved = admin.act(filed.id, "approve")
    assert approved.status is RequestStatus.APPROVED
    applied = admin.act(filed.id, "apply")
    assert applied.status is RequestStatus.APPLIED, applied.result
    assert applied.expires_at is not None
    assert applied.result is not None and applied.result["verification"]["allowed"] is True

    assert _alice_check(endpoint) is Verdict.ALLOWED  # by probe, through moto's enforcement
    diagnosis = alice.diagnose("BucketToBeShared")  # by our evaluator over every layer, read as admin
    assert diagnosis["capabilities"]["read"]["allowed"] is True
    assert diagnosis["capabilities"]["list"]["allowed"] is True
    assert diagnosis["unreadable_layers"] == []

    revoked = admin.act(filed.id, "revoke")
    assert revoked.status is RequestStatus.REVOKED
    assert _alice_check(endpoint) is Verdict.DENIED
    assert alice.diagnose("BucketToBeShared")["capabilities"]["read"]["allowed"] is False

    steps = [(entry.action, entry.actor) for entry in admin.audit(filed.id)]
    alice_arn = endpoint.state.principal("alice@demo").arn
    admin_arn = endpoint.state.principal("admin").arn
    assert steps == [
        ("submit", alice_arn),
        ("approve", admin_arn),
        ("apply", admin_arn),
        ("revoked", admin_arn),
    ]


def test_the_same_key_files_once_and_a_pending_duplicate_is_not_filed_twice(endpoint: Endpoint) -> None:
    alice = endpoint.client("alice@demo")
    first = _new()
    assert alice.submit(first) == alice.submit(first)
    again = alice.submit(_new())  # new key, same bucket, prefix and access, still pending
    assert again is not None and again.id == alice.submit(first).id  # type: ignore[union-attr]
    assert len(alice.requests()) == 1


def test_only_admins_decide_and_never_on_their_own_request(endpoint: Endpoint) -> None:
    alice, bob = endpoint.client("alice@demo"), endpoint.client("bob@demo")
    filed = alice.submit(_new())
    assert filed is not None
    with pytest.raises(AdminRefused) as refused:
        bob.act(filed.id, "approve")
    assert refused.value.status == 403
    with pytest.raises(AdminRefused) as hidden:
        bob.show(filed.id)
    assert hidden.value.status == 404
    with pytest.raises(AdminRefused) as not_his:
        bob.act(filed.id, "cancel")
    assert not_his.value.status == 404
    assert alice.act(filed.id, "cancel").status is RequestStatus.CANCELLED


def test_a_requester_who_is_an_admin_cannot_approve_their_own(endpoint: Endpoint) -> None:
    endpoint.service.authenticator.settings = type(endpoint.service.authenticator.settings)(
        **{
            **endpoint.service.authenticator.settings.__dict__,
            "admin_arn_patterns": ("arn:aws:iam::111111111111:role/MLSpace-demo-*",),
        }
    )
    alice = endpoint.client("alice@demo")
    filed = alice.submit(_new())
    assert filed is not None
    with pytest.raises(AdminRefused, match="never approves their own") as refused:
        alice.act(filed.id, "approve")
    assert refused.value.status == 403


def test_every_route_needs_a_proof(endpoint: Endpoint) -> None:
    for method, path in [
        ("GET", "/v1/requests"),
        ("POST", "/v1/requests"),
        ("GET", "/v1/buckets"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/audit"),
        ("POST", "/v1/requests/x/approve"),
        ("GET", "/v1/diagnose?bucket=b"),
    ]:
        response = httpx.request(method, endpoint.url + path)
        assert response.status_code == 401, (method, path)
        assert "detail" in response.json()
    forged = httpx.get(
        endpoint.url + "/v1/requests", headers={"Authorization": "S3AccessProof bm90LWEtcHJvb2Y"}
    )
    assert forged.status_code == 401


def test_bad_input_is_a_400_naming_the_field(endpoint: Endpoint) -> None:
    headers = {"Authorization": f"Bearer {endpoint.token}"}
    response = httpx.post(endpoint.url + "/v1/buckets", headers=headers, json={"bucket": "bad bucket!"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("bucket:")
    alice_headers = {"Authorization": endpoint.client("alice@demo")._authorization()}
    response = httpx.post(
        endpoint.url + "/v1/requests",
        headers=alice_headers,
        json={
            "bucket": "BucketToBeShared",
            "access": "all",
            "reason": "x" * 10,
            "idempotency_key": uuid.uuid4().hex,
        },
    )
    assert response.status_code == 400
    assert "access:" in response.json()["detail"]


def test_registry_everyone_reads_admins_write(endpoint: Endpoint) -> None:
    alice = endpoint.client("alice@demo")
    assert {b.bucket for b in alice.buckets()} == {entry.bucket for entry in SHARED_BUCKETS}
    with pytest.raises(AdminRefused) as refused:
        alice.delete_bucket("BucketToBeShared")
    assert refused.value.status == 403
    endpoint.client("admin").delete_bucket("partner-shared-readonly")
    remaining = {entry.bucket for entry in SHARED_BUCKETS} - {"partner-shared-readonly"}
    assert {b.bucket for b in alice.buckets()} == remaining
