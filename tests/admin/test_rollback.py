"""Grants that can always be taken back: whatever state a request ends in, none of its statements stays.

Each test reads the live documents back through the sandbox: the boundary, the project's grant policy of
ours and the partner's bucket policy must hold nothing of the request once it is cancelled, failed,
revoked or repaired after a crash.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from mlspace_s3magic.access_requests.client import AdminRefused
from mlspace_s3magic.admin.apply import apply
from mlspace_s3magic.admin.plan import Plan
from mlspace_s3magic.admin.store.changes import AuditAction
from mlspace_s3magic.core.access import AccessRequest, NewAccessRequest, RequestStatus, SharedBucket
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT, PARTNER_ACCOUNT, SHARED_BUCKET

from .conftest import Endpoint

BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
GRANT_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/MLSpace-s3access-project-demo"


def _new() -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": SHARED_BUCKET,
            "prefix": "datasets/",
            "access": "read",
            "days": 7,
            "reason": "iris study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )


def _policy(endpoint: Endpoint, arn: str) -> dict[str, Any] | None:
    iam = endpoint.state.aws_for("admin").client("iam")
    try:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    except iam.exceptions.NoSuchEntityException:
        return None
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def _bucket_policy(endpoint: Endpoint) -> dict[str, Any] | None:
    s3 = endpoint.state.aws_for("owner").client("s3")
    try:
        return dict(json.loads(s3.get_bucket_policy(Bucket=SHARED_BUCKET)["Policy"]))
    except s3.exceptions.ClientError:
        return None


def _traces(endpoint: Endpoint, request: AccessRequest) -> list[str]:
    """Where the request still shows: its Sids in any layer, its bucket in the boundary."""
    found = []
    for layer, document in (
        ("boundary", _policy(endpoint, BOUNDARY_ARN)),
        ("grant policy", _policy(endpoint, GRANT_ARN)),
        ("bucket policy", _bucket_policy(endpoint)),
    ):
        text = json.dumps(document or {})
        if request.sid_stem in text:
            found.append(f"{layer}: a statement of {request.sid_stem}")
        if layer == "boundary" and f"arn:aws:s3:::{SHARED_BUCKET}" in text:
            found.append("boundary: the bucket's ARN")
    return found


def _without_owner_role(endpoint: Endpoint) -> None:
    """The bucket registered without the owner's role: the endpoint writes MLSpace's side only."""
    endpoint.token_client().put_bucket(SharedBucket(bucket=SHARED_BUCKET, owner_account=PARTNER_ACCOUNT))


def _awaiting_owner(endpoint: Endpoint) -> AccessRequest:
    _without_owner_role(endpoint)
    filed = endpoint.client("alice@demo").submit(_new())
    assert filed is not None
    admin = endpoint.client("admin")
    admin.act(filed.id, "approve")
    applied = admin.act(filed.id, "apply")
    assert applied.status is RequestStatus.AWAITING_OWNER
    assert _traces(endpoint, applied)  # the boundary and the grant policy were written
    return applied


def test_cancel_while_awaiting_the_owner_leaves_no_statement(endpoint: Endpoint) -> None:
    request = _awaiting_owner(endpoint)
    cancelled = endpoint.client("alice@demo").act(request.id, "cancel")
    assert cancelled.status is RequestStatus.CANCELLED
    assert _traces(endpoint, request) == []


def test_a_grant_awaiting_the_owner_can_be_revoked_and_expires(endpoint: Endpoint) -> None:
    first = _awaiting_owner(endpoint)
    assert endpoint.client("admin").act(first.id, "revoke").status is RequestStatus.REVOKED
    assert _traces(endpoint, first) == []
    second = endpoint.client("alice@demo").submit(_new())
    assert second is not None
    admin = endpoint.client("admin")
    admin.act(second.id, "approve")
    assert admin.act(second.id, "apply").status is RequestStatus.AWAITING_OWNER
    clock = endpoint.service.clock
    endpoint.service.clock = lambda: clock() + timedelta(days=8)
    (expired,) = endpoint.service.expire_due()
    assert expired.status is RequestStatus.EXPIRED
    assert _traces(endpoint, second) == []


def test_a_failed_verification_rolls_back_what_apply_wrote(endpoint: Endpoint) -> None:
    """An explicit Deny the plan cannot lift, added to alice's role after approval: apply writes, the
    verification fails, and every write is rolled back."""
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(_new())
    assert filed is not None
    admin.act(filed.id, "approve")
    deny = {"Effect": "Deny", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{SHARED_BUCKET}/*"}
    endpoint.state.aws_for("admin").client("iam").put_role_policy(
        RoleName=user_role_name("demo", "alice"),
        PolicyName="no-partner-reads",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [deny]}),
    )
    failed = admin.act(filed.id, "apply")
    assert failed.status is RequestStatus.FAILED
    assert failed.result is not None and failed.result["rollback"]["steps"]
    assert _traces(endpoint, failed) == []


def test_cancel_before_apply_leaves_nothing_for_apply_to_write(endpoint: Endpoint) -> None:
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(_new())
    assert filed is not None
    admin.act(filed.id, "approve")
    assert alice.act(filed.id, "cancel").status is RequestStatus.CANCELLED
    with pytest.raises(AdminRefused, match="only an approved request is applied"):
        admin.act(filed.id, "apply")
    assert _traces(endpoint, filed) == []


def test_an_apply_cut_off_after_its_ledger_entry_is_repaired(endpoint: Endpoint) -> None:
    """The endpoint died after writing (the ledger entry first, then the documents) but before recording
    the outcome: the next housekeeping rolls the writes back and marks the request failed."""
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(_new())
    assert filed is not None
    approved = admin.act(filed.id, "approve")
    service = endpoint.service
    service.store.record(
        actor="test", action=AuditAction.START_APPLY, now=service.clock(), request_id=filed.id
    )
    assert approved.plan is not None
    apply(
        Plan.from_dict(approved.plan),
        approved,
        service._bucket(SHARED_BUCKET),
        aws=service.aws,
        owner_sessions=service.owner_sessions,
    )  # written, and never recorded: the crash
    assert _traces(endpoint, approved)
    assert service.repair_interrupted() == []  # a recent apply may still be running elsewhere
    (repaired,) = service.repair_interrupted(older_than=timedelta(0))
    assert repaired.status is RequestStatus.FAILED
    assert _traces(endpoint, approved) == []
    # Repaired once: the failure is now the last entry, so the next round leaves it alone.
    assert service.repair_interrupted(older_than=timedelta(0)) == []


def test_a_cancel_on_another_instance_during_apply_leaves_nothing(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two endpoint instances share a store: alice's cancel lands on the other one while this one writes.
    Its outcome cannot be recorded any more, so what it wrote is rolled back."""
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(_new())
    assert filed is not None
    admin.act(filed.id, "approve")
    service = endpoint.service

    def writes_then_cancelled_elsewhere(*args: Any, **kwargs: Any) -> Any:
        result = apply(*args, **kwargs)
        service.store.transition(
            filed.id, RequestStatus.CANCELLED, actor="other-instance", action="cancel", now=service.clock()
        )
        return result

    monkeypatch.setattr("mlspace_s3magic.admin.service.apply", writes_then_cancelled_elsewhere)
    with pytest.raises(AdminRefused, match="409"):
        admin.act(filed.id, "apply")
    assert service.store.get(filed.id).status is RequestStatus.CANCELLED
    assert _traces(endpoint, filed) == []


def test_a_failed_request_for_a_bucket_that_does_not_exist_can_be_cancelled(endpoint: Endpoint) -> None:
    """Rolling back reads every layer the request may have written: a bucket that is gone (or never was)
    holds nothing of it, and says so rather than failing the cancel."""
    endpoint.token_client().put_bucket(
        SharedBucket(bucket="never-created-bucket", owner_account="333333333333")
    )
    new = NewAccessRequest.model_validate(
        {
            "bucket": "never-created-bucket",
            "access": "read",
            "reason": "a study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(new)
    assert filed is not None
    admin.act(filed.id, "approve")
    with pytest.raises(AdminRefused):
        admin.act(filed.id, "apply")  # no room for a third account beside the seeded grant, or no bucket
    assert endpoint.service.store.get(filed.id).status is RequestStatus.FAILED
    assert alice.act(filed.id, "cancel").status is RequestStatus.CANCELLED
