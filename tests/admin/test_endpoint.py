"""The admin endpoint over HTTP: the whole flow of the issue, and who may do what."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mlspace_s3magic.access_requests.client import AdminRefused
from mlspace_s3magic.access_requests.proof import Call, make_proof
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT, PARTNER_ACCOUNT, SHARED_BUCKETS

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
        ("start-apply", admin_arn),  # the ledger: what apply is about to write, before it writes
        ("apply", admin_arn),
        ("revoke", admin_arn),
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
        ("GET", "/v1/me"),
    ]:
        response = httpx.request(method, endpoint.url + path)
        assert response.status_code == 401, (method, path)
        assert "detail" in response.json()
    forged = httpx.get(
        endpoint.url + "/v1/requests", headers={"Authorization": "S3AccessProof bm90LWEtcHJvb2Y"}
    )
    assert forged.status_code == 401


def test_me_tells_a_caller_who_they_are_and_whether_they_are_an_admin(endpoint: Endpoint) -> None:
    """What the JupyterLab admin panel asks before it shows itself; the admin's ARN pattern decides."""
    alice, admin, token = endpoint.client("alice@demo"), endpoint.client("admin"), endpoint.token_client()
    assert alice.me() == {"arn": endpoint.state.principal("alice@demo").arn, "admin": False}
    assert admin.me() == {"arn": endpoint.state.principal("admin").arn, "admin": True}
    assert token.me()["admin"] is True
    for client in (alice, admin, token):
        client.close()


def test_bad_input_is_a_400_naming_the_field(endpoint: Endpoint) -> None:
    headers = {"Authorization": f"Bearer {endpoint.token}"}
    response = httpx.post(endpoint.url + "/v1/buckets", headers=headers, json={"bucket": "bad bucket!"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("bucket:")
    body = json.dumps(
        {
            "bucket": "BucketToBeShared",
            "access": "all",
            "reason": "x" * 10,
            "idempotency_key": uuid.uuid4().hex,
        }
    ).encode()
    alice_headers = {
        "Authorization": endpoint.client("alice@demo").authorization("POST", "/v1/requests", body),
        "Content-Type": "application/json",
    }
    response = httpx.post(endpoint.url + "/v1/requests", headers=alice_headers, content=body)
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


def _configure(endpoint: Endpoint, **settings: object) -> None:
    """Change the running endpoint's caller settings (its rate limits read them on every call)."""
    authenticator = endpoint.service.authenticator
    authenticator.settings = replace(authenticator.settings, **settings)  # type: ignore[arg-type]


def _body(new: NewAccessRequest) -> bytes:
    return json.dumps(new.model_dump(mode="json")).encode()


def _send(
    endpoint: Endpoint, method: str, path: str, authorization: str, body: bytes = b""
) -> httpx.Response:
    headers = {"Authorization": authorization, "Content-Type": "application/json"}
    return httpx.request(method, endpoint.url + path, headers=headers, content=body, timeout=30)


# The "Done when" of issue 13: callers must be principals of the MLSpace account (111111111111).
ROUTES = [
    ("POST", "/v1/requests"),
    ("GET", "/v1/requests"),
    ("GET", "/v1/requests/x"),
    ("POST", "/v1/requests/x/cancel"),
    ("POST", "/v1/requests/x/approve"),
    ("GET", "/v1/buckets"),
    ("POST", "/v1/buckets"),
    ("DELETE", "/v1/buckets/BucketToBeShared"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/diagnose?bucket=BucketToBeShared"),
    ("GET", "/openapi.json"),
]


def test_the_partner_accounts_owner_is_refused_with_403_on_every_route(endpoint: Endpoint) -> None:
    owner = endpoint.client("owner")  # the partner's admin, in account 222222222222, proven by STS
    with pytest.raises(AdminRefused) as filing:
        owner.submit(_new())
    assert filing.value.status == 403
    assert f"is a principal of account {PARTNER_ACCOUNT}" in str(filing.value)
    assert f"serves only principals of the MLSpace account {MLSPACE_ACCOUNT}" in str(filing.value)
    for call in (owner.buckets, lambda: owner.diagnose("BucketToBeShared"), owner.requests):
        with pytest.raises(AdminRefused) as refused:
            call()
        assert refused.value.status == 403
    body = _body(_new())
    for method, path in ROUTES:
        sent = body if method == "POST" else b""
        response = _send(endpoint, method, path, owner.authorization(method, path, sent), sent)
        assert response.status_code == 403, (method, path, response.text)
        assert PARTNER_ACCOUNT in response.json()["detail"]
    assert endpoint.service.store.list_requests() == []


def test_a_proof_replayed_on_another_route_method_or_body_is_refused(endpoint: Endpoint) -> None:
    alice = endpoint.client("alice@demo")
    for_buckets = alice.authorization("GET", "/v1/buckets")
    assert _send(endpoint, "GET", "/v1/buckets", for_buckets).status_code == 200  # its own call
    other_route = _send(endpoint, "GET", "/v1/requests", for_buckets)
    assert other_route.status_code == 401
    assert "made for the path '/v1/buckets', not this call's '/v1/requests'" in other_route.json()["detail"]
    assert other_route.headers["WWW-Authenticate"] == "S3AccessProof, Bearer"
    other_query = _send(endpoint, "GET", "/v1/buckets?x=1", for_buckets)
    assert other_query.status_code == 401
    other_method = _send(endpoint, "POST", "/v1/buckets", for_buckets, b"{}")
    assert other_method.status_code == 401
    assert "made for a 'GET' call, not this POST" in other_method.json()["detail"]

    read, write = _new(), _new(access=AccessLevel.READ_WRITE)
    for_read = alice.authorization("POST", "/v1/requests", _body(read))
    other_body = _send(endpoint, "POST", "/v1/requests", for_read, _body(write))
    assert other_body.status_code == 401
    assert "made for another request body" in other_body.json()["detail"]
    assert alice.requests() == []  # nothing was filed with the swapped body
    assert _send(endpoint, "POST", "/v1/requests", for_read, _body(read)).status_code == 201


def test_a_proof_older_than_two_minutes_is_refused(endpoint: Endpoint) -> None:
    aws = endpoint.state.aws_for("alice@demo")
    call = Call.of("GET", "/v1/requests")
    stale = make_proof(aws, endpoint.url, call, now=datetime.now(UTC) - timedelta(minutes=2, seconds=5))
    response = _send(endpoint, "GET", "/v1/requests", stale)
    assert response.status_code == 401
    assert "old; proofs last 2 minutes: make a new one" in response.json()["detail"]
    fresh = make_proof(aws, endpoint.url, call, now=datetime.now(UTC) - timedelta(minutes=1, seconds=30))
    assert _send(endpoint, "GET", "/v1/requests", fresh).status_code == 200


def test_a_client_makes_a_new_proof_for_every_call(endpoint: Endpoint) -> None:
    alice = endpoint.client("alice@demo")
    filed = alice.submit(_new())
    assert filed is not None
    assert alice.show(filed.id).request.id == filed.id
    assert [request.id for request in alice.requests(status="pending")] == [filed.id]
    assert alice.act(filed.id, "cancel").status is RequestStatus.CANCELLED


def test_too_many_proofs_get_429_with_retry_after(endpoint: Endpoint) -> None:
    _configure(endpoint, proofs_per_minute=3)
    alice, bob = endpoint.client("alice@demo"), endpoint.client("bob@demo")
    for _ in range(3):
        alice.buckets()
    response = _send(endpoint, "GET", "/v1/buckets", alice.authorization("GET", "/v1/buckets"))
    assert response.status_code == 429
    waited = int(response.headers["Retry-After"])  # one more proof every 60 / 3 seconds, less time passed
    assert 10 <= waited <= 20
    detail = response.json()["detail"]
    assert detail.startswith(f"Too many identity proofs for {endpoint.state.principal('alice@demo').arn}: ")
    assert f"at most 3 a minute. Retry in {waited} seconds (after 20" in detail
    with pytest.raises(AdminRefused) as refused:
        alice.requests()
    assert refused.value.status == 429
    assert bob.buckets()  # another caller has a limit of their own


def test_too_many_diagnoses_get_429_with_retry_after(endpoint: Endpoint) -> None:
    _configure(endpoint, diagnoses_per_minute=1)
    alice = endpoint.client("alice@demo")
    alice.diagnose("partner-shared-readonly")
    path = "/v1/diagnose?bucket=partner-shared-readonly"
    response = _send(endpoint, "GET", path, alice.authorization("GET", path))
    assert response.status_code == 429
    waited = int(response.headers["Retry-After"])
    assert 30 <= waited <= 60  # one diagnosis a minute, less the time the first one took
    assert (
        f"Too many diagnoses for {endpoint.state.principal('alice@demo').arn}: at most 1 a minute. "
        in (response.json()["detail"])
    )
    assert alice.buckets()  # other routes are not held back


def test_too_many_refused_attempts_from_one_source_get_429(endpoint: Endpoint) -> None:
    _configure(endpoint, refusals_per_minute=2)
    for _ in range(2):
        assert httpx.get(endpoint.url + "/v1/buckets").status_code == 401
    response = httpx.get(endpoint.url + "/v1/buckets")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "refused identity proofs for source 127.0.0.1" in response.json()["detail"]


def test_the_token_as_the_admins_identity_cannot_approve_the_admins_own_request(endpoint: Endpoint) -> None:
    admin_arn = endpoint.state.principal("admin").arn
    _configure(endpoint, token_identity=admin_arn)
    filed = endpoint.client("admin").submit(_new())  # the admin asks, with their own AWS identity
    assert filed is not None and filed.requester.arn == admin_arn
    with pytest.raises(AdminRefused, match="never approves their own") as refused:
        endpoint.token_client().act(filed.id, "approve")
    assert refused.value.status == 403
    assert endpoint.service.store.get(filed.id).status is RequestStatus.PENDING
    alice = endpoint.client("alice@demo").submit(_new(bucket="partner-shared-readonly"))
    assert alice is not None
    approved = endpoint.token_client().act(alice.id, "approve")  # someone else's: the token approves
    assert approved.status is RequestStatus.APPROVED
    actors = [entry.actor for entry in endpoint.service.store.audit(request_id=alice.id)]
    assert actors == [alice.requester.arn, admin_arn]


def test_the_token_as_an_admin_role_cannot_approve_a_request_of_any_session_of_that_role(
    endpoint: Endpoint,
) -> None:
    """An admin who works as a role (here alice's, made an admin) gives the role's ARN as the token's
    identity: every session of that role is then the token's own, and its requests are not the token's to
    approve (before, the token approved them: it was nobody)."""
    alice_role = endpoint.state.principal("alice@demo").arn.split("/")[1]
    role_arn = f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{alice_role}"
    _configure(endpoint, admin_arn_patterns=(role_arn,), token_identity=role_arn)
    filed = endpoint.client("alice@demo").submit(_new())
    assert filed is not None
    with pytest.raises(AdminRefused, match="never approves their own") as refused:
        endpoint.token_client().act(filed.id, "approve")
    assert refused.value.status == 403
    assert endpoint.service.store.get(filed.id).status is RequestStatus.PENDING
