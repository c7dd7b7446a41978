"""The boundary's room, with the sandbox's boundary equal to MLSpace's commercial one (6,004 of IAM's 6,144
characters: 140 free before the seeded grant on partner-shared-readonly).

Ten grants to ten buckets of the partner account fit (in the per-account form of ``core/ceiling.py``), and
revoking any one leaves exactly the others' access, by probe (alice's own S3 calls, decided by the
sandbox over every layer) and by evaluation (the endpoint's verification over the live layers, and its
diagnosis). A grant that cannot fit beside them (a bucket of unknown owner, or of a third account) is
refused before anything is written, with the figures. Revoking every grant gives the room back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from mlspace_s3magic.access_requests.client import AdminClient, AdminRefused
from mlspace_s3magic.admin.apply import verify
from mlspace_s3magic.core.access import AccessRequest, NewAccessRequest, RequestStatus, SharedBucket
from mlspace_s3magic.core.ceiling import ACCOUNT_KEY, GrantedBucket, bucket_arns, with_ceiling
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox import mlspace_policies
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    DATA_BUCKET,
    MLSPACE_ACCOUNT,
    OWNER_ROLE_ARN,
    OWNER_ROLE_NAME,
    PARTITION,
    PARTNER_ACCOUNT,
    READABLE_BUCKET,
)

from .conftest import Endpoint

BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
GRANT_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/MLSpace-s3access-project-demo"
# MLSpace v1.6.10's boundary in a commercial region, and the room IAM leaves it.
MLSPACE_BOUNDARY_CHARS = 6004
ROOM = 140
BUCKETS = tuple(f"partner-capacity-{index:02d}" for index in range(10))
UNKNOWN_OWNER_BUCKET = "partner-capacity-unknown-owner"
THIRD_ACCOUNT = "333333333333"
THIRD_ACCOUNT_BUCKET = "third-party-capacity"
OBJECT_KEY = "data/part-0000.csv"


# -- reading the live documents back through the sandbox ----------------------------------------------------


def _policy(endpoint: Endpoint, arn: str) -> tuple[str, dict[str, Any]] | None:
    """The default version's id and document of a managed policy, or None when there is none."""
    iam = endpoint.state.aws_for("admin").client("iam")
    try:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    except iam.exceptions.NoSuchEntityException:
        return None
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return str(version), dict(json.loads(document) if isinstance(document, str) else document)


def _boundary(endpoint: Endpoint) -> dict[str, Any]:
    live = _policy(endpoint, BOUNDARY_ARN)
    assert live is not None
    return live[1]


def _bucket_policy(endpoint: Endpoint, bucket: str) -> dict[str, Any] | None:
    s3 = endpoint.state.aws_for("owner").client("s3")
    try:
        return dict(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]))
    except s3.exceptions.ClientError:
        return None


def _statements(document: dict[str, Any] | None) -> list[Any]:
    statements = (document or {}).get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _sids(document: dict[str, Any] | None) -> set[str]:
    return {str(statement.get("Sid")) for statement in _statements(document) if isinstance(statement, dict)}


def _has_stem(document: dict[str, Any] | None, request: AccessRequest) -> bool:
    return any(sid.startswith(request.sid_stem) for sid in _sids(document))


def _opened_accounts(boundary: dict[str, Any]) -> set[str]:
    """The accounts a per-account statement of ours in the boundary opens."""
    accounts: set[str] = set()
    for statement in _statements(boundary):
        condition = statement.get("Condition", {}) if isinstance(statement, dict) else {}
        value = condition.get("StringEquals", {}).get(ACCOUNT_KEY) if isinstance(condition, dict) else None
        if value is not None:
            accounts.update(value if isinstance(value, list) else [value])
    return accounts


# -- the world ----------------------------------------------------------------------------------------------


@dataclass
class Granted:
    endpoint: Endpoint
    admin: AdminClient
    alice: AdminClient
    requests: dict[str, AccessRequest]  # by bucket


def _create_partner_buckets(endpoint: Endpoint, names: tuple[str, ...]) -> None:
    """The partner creates the buckets, one object each, and lets its owner role edit their policies (the
    role the sandbox seeds covers only the partner's first three buckets)."""
    owner = endpoint.state.aws_for("owner")
    s3 = owner.client("s3")
    for name in names:
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key=OBJECT_KEY, Body=f"id,value\n0,{name}\n".encode())
    permissions = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Resource": [f"arn:{PARTITION}:s3:::{name}" for name in names],
                "Action": [
                    "s3:GetBucketPolicy",
                    "s3:PutBucketPolicy",
                    "s3:DeleteBucketPolicy",
                    "s3:GetEncryptionConfiguration",
                    "s3:ListBucket",
                ],
            }
        ],
    }
    owner.client("iam").put_role_policy(
        RoleName=OWNER_ROLE_NAME, PolicyName="capacity-buckets", PolicyDocument=json.dumps(permissions)
    )


def _new(bucket: str) -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": bucket,
            "access": "read",
            "reason": "capacity of the boundary",
            "idempotency_key": uuid.uuid4().hex,
        }
    )


def _approved(granted: Granted, bucket: str) -> AccessRequest:
    filed = granted.alice.submit(_new(bucket))
    assert filed is not None
    approved = granted.admin.act(filed.id, "approve")
    assert approved.status is RequestStatus.APPROVED
    return approved


def _grant_all(endpoint: Endpoint, names: tuple[str, ...]) -> Granted:
    """The partner's buckets, registered with its owner role, each granted to alice (applied and verified)
    one after the other, as an admin would."""
    # Dozens of proofs and diagnoses a minute from one caller: this test is about room, not rate limits.
    authenticator = endpoint.service.authenticator
    authenticator.settings = replace(
        authenticator.settings, proofs_per_minute=10_000, diagnoses_per_minute=10_000
    )
    admin, alice = endpoint.token_client(), endpoint.client("alice@demo")
    _create_partner_buckets(endpoint, names)
    for name in names:
        admin.put_bucket(
            SharedBucket(
                bucket=name,
                owner_account=PARTNER_ACCOUNT,
                region=endpoint.state.region,
                owner_role_arn=OWNER_ROLE_ARN,
            )
        )
    state = Granted(endpoint, admin, alice, {})
    for name in names:
        approved = _approved(state, name)
        assert approved.plan is not None
        # The endpoint writes every layer; the boundary only while it does not open the account yet.
        layers = {change["layer"] for change in approved.plan["changes"]}
        opened = PARTNER_ACCOUNT in _opened_accounts(_boundary(endpoint))
        assert layers == {"bucket-policy", "identity"} | (set() if opened else {"boundary"}), layers
        applied = admin.act(approved.id, "apply")
        assert applied.status is RequestStatus.APPLIED, applied.result
        assert applied.result is not None and applied.result["verification"]["allowed"] is True
        assert iam_size(_boundary(endpoint)) <= MANAGED_POLICY_MAX_CHARS
        state.requests[name] = applied
    return state


@pytest.fixture
def granted(endpoint: Endpoint) -> Iterator[Granted]:
    """Ten buckets of the partner, each granted to alice."""
    state = _grant_all(endpoint, BUCKETS)
    try:
        yield state
    finally:
        state.admin.close()
        state.alice.close()


def _probe(endpoint: Endpoint, bucket: str) -> Verdict:
    checker = Checker(endpoint.state.aws_for("alice@demo"))
    try:
        return checker.check(parse_bucket_reference(bucket)).verdict("read")
    finally:
        checker.close()


def _verified(granted: Granted, request: AccessRequest) -> bool | None:
    """The endpoint's verification of one grant, by our evaluator over every live layer."""
    service = granted.endpoint.service
    entry = service._bucket(request.bucket)
    return verify(request, entry, aws=service.aws, owner_sessions=service.owner_sessions).allowed


def _assert_exactly(granted: Granted, live: set[str]) -> None:
    """alice reads exactly the buckets in ``live`` among those granted, by probe and by evaluation."""
    endpoint = granted.endpoint
    names = sorted(granted.requests)
    probed = {name: _probe(endpoint, name) for name in names}
    assert probed == {name: Verdict.ALLOWED if name in live else Verdict.DENIED for name in names}, probed
    evaluated = {name: _verified(granted, granted.requests[name]) for name in names}
    assert evaluated == {name: name in live for name in names}, evaluated


def _unknown_owner_bucket(granted: Granted) -> str:
    """A bucket of the partner, registered without its owner's account (nor role)."""
    s3 = granted.endpoint.state.aws_for("owner").client("s3")
    s3.create_bucket(Bucket=UNKNOWN_OWNER_BUCKET)
    s3.put_object(Bucket=UNKNOWN_OWNER_BUCKET, Key=OBJECT_KEY, Body=b"id\n0\n")
    granted.admin.put_bucket(SharedBucket(bucket=UNKNOWN_OWNER_BUCKET))
    return UNKNOWN_OWNER_BUCKET


def _third_account_bucket(granted: Granted) -> str:
    """A bucket the registry says a third account owns. The sandbox holds no such account: only the
    registry's entry decides which forms the boundary's room can take."""
    granted.admin.put_bucket(SharedBucket(bucket=THIRD_ACCOUNT_BUCKET, owner_account=THIRD_ACCOUNT))
    return THIRD_ACCOUNT_BUCKET


def _assert_refused_before_writing(granted: Granted, bucket: str) -> None:
    """alice asks for a bucket that cannot fit beside the granted ones: the plan says why with the figures,
    apply answers 409 with them, and no document changed."""
    endpoint = granted.endpoint
    before_boundary = _policy(endpoint, BOUNDARY_ARN)
    before_grant = _policy(endpoint, GRANT_ARN)
    before_bucket = _bucket_policy(endpoint, bucket)
    approved = _approved(granted, bucket)
    assert approved.plan is not None
    assert approved.plan["problems"], approved.plan
    boundary = next(change for change in approved.plan["changes"] if change["layer"] == "boundary")
    warnings = " ".join(boundary["warnings"])
    assert "no room for the granted buckets" in warnings, warnings
    assert f"{MANAGED_POLICY_MAX_CHARS:,}" in warnings and "free" in warnings, warnings
    assert "PERMISSIONS_BOUNDARY_POLICY_NAME" in warnings, warnings  # the admin's options
    with pytest.raises(AdminRefused) as refused:
        granted.admin.act(approved.id, "apply")
    assert refused.value.status == 409
    detail = str(refused.value)
    assert "Nothing was written" in detail and f"over IAM's limit of {MANAGED_POLICY_MAX_CHARS:,}" in detail
    # Nothing written: the same versions with the same documents, the bucket's policy as it was.
    assert _policy(endpoint, BOUNDARY_ARN) == before_boundary
    assert _policy(endpoint, GRANT_ARN) == before_grant
    assert _bucket_policy(endpoint, bucket) == before_bucket
    assert granted.admin.show(approved.id).request.status is RequestStatus.FAILED


# -- the tests ----------------------------------------------------------------------------------------------


def test_the_sandbox_boundary_is_mlspace_s_commercial_one(sandbox: SandboxState) -> None:
    """140 characters free in MLSpace's own boundary; the seeded grant already uses part of them."""
    deployed = mlspace_policies.permissions_boundary(
        partition=PARTITION, region=sandbox.region, account=MLSPACE_ACCOUNT, data_bucket=DATA_BUCKET
    )
    assert iam_size(deployed) == MLSPACE_BOUNDARY_CHARS
    assert MANAGED_POLICY_MAX_CHARS - iam_size(deployed) == ROOM
    iam = sandbox.aws_for("admin").client("iam")
    version = iam.get_policy(PolicyArn=BOUNDARY_ARN)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=BOUNDARY_ARN, VersionId=version)["PolicyVersion"]["Document"]
    live = dict(json.loads(document) if isinstance(document, str) else document)
    # The live boundary is MLSpace's with the seeded grant's bucket in MLSpace's S3 statements.
    seeded = [GrantedBucket(READABLE_BUCKET, PARTNER_ACCOUNT)]
    assert with_ceiling(live, [], previous=seeded, home_account=MLSPACE_ACCOUNT) == deployed
    assert iam_size(live) == MLSPACE_BOUNDARY_CHARS + 2 * len(READABLE_BUCKET) + 30
    assert all(arn in json.dumps(live) for arn in bucket_arns(READABLE_BUCKET))


def test_ten_grants_fit_one_that_cannot_is_refused_and_revoking_any_one_leaves_the_others(
    granted: Granted,
) -> None:
    endpoint = granted.endpoint
    boundary = _boundary(endpoint)
    assert iam_size(boundary) <= MANAGED_POLICY_MAX_CHARS
    # Ten buckets' ARNs cannot fit in 140 characters: one statement opens the partner's account.
    assert _opened_accounts(boundary) == {PARTNER_ACCOUNT}
    grant = _policy(endpoint, GRANT_ARN)
    assert grant is not None
    for name, request in granted.requests.items():
        assert _has_stem(grant[1], request), name
        assert _has_stem(_bucket_policy(endpoint, name), request), name

    # Beside them, no form fits a bucket whose account is unknown, or a second partner account.
    _assert_refused_before_writing(granted, _unknown_owner_bucket(granted))
    _assert_refused_before_writing(granted, _third_account_bucket(granted))
    _assert_exactly(granted, set(BUCKETS))  # the ten are untouched

    live = set(BUCKETS)
    # The first applied (its plan opened the partner's account: its ARNs beside the seeded grant's would
    # take 144 of the 140 characters), then one whose plan did not change the boundary (the account was
    # open already): each leaves exactly the others.
    for name in (BUCKETS[0], BUCKETS[5]):
        request = granted.requests[name]
        assert granted.admin.act(request.id, "revoke").status is RequestStatus.REVOKED
        live.discard(name)
        boundary = _boundary(endpoint)
        assert iam_size(boundary) <= MANAGED_POLICY_MAX_CHARS
        assert _opened_accounts(boundary) == {PARTNER_ACCOUNT}  # the others still need it
        grant = _policy(endpoint, GRANT_ARN)
        assert grant is not None and not _has_stem(grant[1], request)
        assert all(_has_stem(grant[1], granted.requests[other]) for other in live)
        assert not _has_stem(_bucket_policy(endpoint, name), request)
        _assert_exactly(granted, live)
        # The endpoint's diagnosis, as alice asks for it: denied on the revoked one, allowed on the others.
        assert granted.alice.diagnose(name)["capabilities"]["read"]["allowed"] is False
        assert granted.alice.diagnose(sorted(live)[0])["capabilities"]["read"]["allowed"] is True


def test_revoking_every_grant_gives_the_room_back(endpoint: Endpoint) -> None:
    """Three grants suffice: the first one's plan opens the partner's account, the next two change no
    boundary. Once all three are revoked, the boundary is the seeded one again."""
    seeded = _policy(endpoint, BOUNDARY_ARN)
    assert seeded is not None
    granted = _grant_all(endpoint, BUCKETS[:3])
    try:
        assert _opened_accounts(_boundary(endpoint)) == {PARTNER_ACCOUNT}
        for name, request in granted.requests.items():
            assert granted.admin.act(request.id, "revoke").status is RequestStatus.REVOKED, name
        _assert_exactly(granted, set())
        boundary = _boundary(endpoint)
        assert _opened_accounts(boundary) == set()
        assert not [name for name in BUCKETS[:3] if f":::{name}" in json.dumps(boundary)]
        assert boundary == seeded[1]  # the seeded grant keeps its place, nothing more
    finally:
        granted.admin.close()
        granted.alice.close()
