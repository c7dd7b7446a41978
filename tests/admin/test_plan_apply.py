"""Plan, apply, verify and revoke against the sandbox: the documents written, what moto then lets alice do,
and what our evaluator says over the layers moto ignores (boundary, bucket-policy Allows, key policies)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.admin.apply import (
    ALREADY_APPLIED,
    AWAITING_OWNER,
    CREATED,
    DELETED,
    WRITTEN,
    PlanOutdated,
    PlanRefused,
    SizeLimitExceeded,
    VersionsFull,
    apply,
    revoke,
    verify,
)
from mlspace_s3magic.admin.lease import LeaseLost
from mlspace_s3magic.admin.plan import (
    ENDPOINT,
    OWNER,
    LayerChange,
    OwnerSessions,
    Plan,
    Planner,
    owner_role_sessions,
)
from mlspace_s3magic.core.access import AccessRequest, Requester, RequestStatus, SharedBucket
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.ceiling import GrantedBucket, bucket_arns, with_ceiling
from mlspace_s3magic.core.grant import AccessLevel, GrantScope
from mlspace_s3magic.core.layer_kinds import size_problem
from mlspace_s3magic.core.layers import as_document
from mlspace_s3magic.core.limits import BUCKET_POLICY_MAX_BYTES, MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    project_policy_name,
    user_policy_name,
    user_role_name,
)
from mlspace_s3magic.core.policy_edit import is_ours, remove_statements
from mlspace_s3magic.sandbox.mlspace_policies import policy_size
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import READABLE_BUCKET, SHARED_BUCKETS

MLSPACE = "111111111111"
PARTNER = "222222222222"
BUCKET = "BucketToBeShared"
IRIS = "datasets/iris/iris.csv"
BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE}:policy/{BOUNDARY_POLICY_NAME}"
PROJECT_GRANT = f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-project-demo"
USER_GRANT = f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-user-alice"
MLSPACE_POLICIES = tuple(
    f"arn:aws:iam::{MLSPACE}:policy/{name}"
    for name in (user_policy_name("alice"), user_policy_name("bob"), project_policy_name("demo"))
)
ROLES = {user: user_role_name("demo", user) for user in ("alice", "bob")}
OWNER_ROLE = f"arn:aws:iam::{PARTNER}:role/mlspace-s3access-owner"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def access_request(
    state: SandboxState,
    user: str = "alice",
    *,
    prefix: str = "datasets/",
    access: AccessLevel = AccessLevel.READ,
    request_id: str = "req-0001",
) -> AccessRequest:
    requester = Requester(
        arn=state.principal(f"{user}@demo").arn,
        account=MLSPACE,
        role=ROLES[user],
        user=user,
        project="demo",
    )
    return AccessRequest(
        id=request_id,
        requester=requester,
        bucket=BUCKET,
        prefix=prefix,
        access=access,
        reason="training data",
        days=None,
        idempotency_key=f"key-{request_id}",
        status=RequestStatus.APPROVED,
        created_at=NOW,
        updated_at=NOW,
    )


def registered_owner(bucket: str) -> str | None:
    """The sandbox admin's registry, as the endpoint's service reads it."""
    return next((entry.owner_account for entry in SHARED_BUCKETS if entry.bucket == bucket), None)


@dataclass
class World:
    """The sandbox seen by the admin endpoint: its clients, how it acts as the owner, the registry entry."""

    state: SandboxState
    admin: Aws
    owner: Aws
    sessions: OwnerSessions
    bucket: SharedBucket

    @property
    def planner(self) -> Planner:
        return Planner(self.admin, owner_sessions=self.sessions, owners=registered_owner)

    def apply(self, plan: Plan, request: AccessRequest, bucket: SharedBucket | None = None) -> Any:
        return apply(plan, request, bucket or self.bucket, aws=self.admin, owner_sessions=self.sessions)

    def verify(self, request: AccessRequest, bucket: SharedBucket | None = None) -> Any:
        return verify(request, bucket or self.bucket, aws=self.admin, owner_sessions=self.sessions)

    def revoke(self, request: AccessRequest, bucket: SharedBucket | None = None) -> Any:
        return revoke(
            request,
            bucket or self.bucket,
            aws=self.admin,
            owner_sessions=self.sessions,
            owners=registered_owner,
        )


def _registry(role: str | None) -> SharedBucket:
    return SharedBucket(bucket=BUCKET, owner_account=PARTNER, region="us-east-1", owner_role_arn=role)


@pytest.fixture
def world(fresh_sandbox: SandboxState) -> World:
    """The production path: the partner made a role the MLSpace account may assume, and we AssumeRole it."""
    owner = fresh_sandbox.aws_for("owner")
    iam = owner.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{MLSPACE}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    name = OWNER_ROLE.rsplit("/", 1)[-1]
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    rights = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "kms:*"], "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="bucket-policies", PolicyDocument=json.dumps(rights))
    admin = fresh_sandbox.aws_for("admin")
    return World(fresh_sandbox, admin, owner, owner_role_sessions(admin), _registry(OWNER_ROLE))


@pytest.fixture
def readonly(sandbox: SandboxState) -> World:
    """For plans and verifications only (nothing written): the owner's own clients stand in for the role."""
    owner = sandbox.aws_for("owner")
    return World(sandbox, sandbox.aws_for("admin"), owner, lambda _arn: owner, _registry(OWNER_ROLE))


# -- reading the world -----------------------------------------------------------------------------------


def managed(admin: Aws, arn: str) -> dict[str, Any] | None:
    iam = admin.client("iam")
    try:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    except ClientError:
        return None
    return as_document(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


def the_boundary(world: World) -> dict[str, Any]:
    boundary = managed(world.admin, BOUNDARY_ARN)
    assert boundary is not None
    return boundary


def bucket_policy(owner: Aws) -> dict[str, Any] | None:
    try:
        return as_document(owner.client("s3").get_bucket_policy(Bucket=BUCKET)["Policy"])
    except ClientError:
        return None


def key_policy(owner: Aws, key: str) -> dict[str, Any]:
    return as_document(owner.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"])


def snapshot(world: World, key: str | None = None) -> dict[str, Any]:
    """Every document a grant may touch, and what each role has attached."""
    iam = world.admin.client("iam")
    documents = {
        arn: managed(world.admin, arn) for arn in (BOUNDARY_ARN, PROJECT_GRANT, USER_GRANT, *MLSPACE_POLICIES)
    }
    attached = {
        role: sorted(
            p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
        )
        for role in ROLES.values()
    }
    return {
        **documents,
        "bucket-policy": bucket_policy(world.owner),
        "kms": key_policy(world.owner, key) if key else None,
        "attached": attached,
    }


def without_bucket(boundary: dict[str, Any]) -> dict[str, Any]:
    """The boundary without BucketToBeShared's place in it (what a revoke takes out)."""
    return with_ceiling(boundary, [], previous=[GrantedBucket(BUCKET, None)], home_account=MLSPACE)


def a_boundary_with_room(world: World) -> None:
    """A boundary of the admin's own (MLSpace's PERMISSIONS_BOUNDARY_POLICY_NAME): MLSpace's without its
    Bedrock statement, 554 characters, which leaves room for a key grant; MLSpace's own has 140 free."""
    boundary = the_boundary(world)
    roomy = {**boundary, "Statement": [s for s in boundary["Statement"] if "bedrock:Get*" not in s["Action"]]}
    assert len(roomy["Statement"]) == len(boundary["Statement"]) - 1
    world.admin.client("iam").create_policy_version(
        PolicyArn=BOUNDARY_ARN, PolicyDocument=json.dumps(roomy), SetAsDefault=True
    )


def alice_can_read(state: SandboxState) -> bool:
    """moto's answer (identity policies only): list the prefix and read an object as alice's session."""
    s3 = state.aws_for("alice@demo").client("s3")
    try:
        s3.list_objects_v2(Bucket=BUCKET, Prefix="datasets/", MaxKeys=1)
        s3.get_object(Bucket=BUCKET, Key=IRIS, Range="bytes=0-0")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDenied"
        return False
    return True


def sids(document: dict[str, Any] | None) -> list[str]:
    statements = (document or {}).get("Statement", [])
    return [s.get("Sid", "") for s in (statements if isinstance(statements, list) else [statements])]


def outcomes(result: Any) -> set[tuple[str, str]]:
    return {(step.layer, step.outcome) for step in result.steps}


# -- plans -----------------------------------------------------------------------------------------------


def test_plan_for_alice_reading_the_shared_bucket(readonly: World) -> None:
    request = access_request(readonly.state)
    plan = readonly.planner.plan(request, readonly.bucket)
    stem = request.sid_stem
    assert stem == "S3AccessReqreq0001"
    assert [change.layer for change in plan.changes] == ["bucket-policy", "boundary", "identity"]
    assert not plan.problems and not plan.awaiting_owner
    bucket_change, boundary, identity = plan.changes
    assert (bucket_change.target, bucket_change.account) == (BUCKET, PARTNER)
    assert (boundary.target, boundary.account) == (BOUNDARY_ARN, MLSPACE)
    assert (identity.target, identity.account) == (PROJECT_GRANT, MLSPACE)
    assert {change.applied_by for change in plan.changes} == {ENDPOINT}
    assert identity.attach_to_roles == tuple(sorted(ROLES.values()))
    assert bucket_change.current is None and identity.current is None
    assert boundary.current == managed(readonly.admin, BOUNDARY_ARN)
    # The boundary has no room for statements of ours: the bucket joins MLSpace's S3 read statement, after
    # partner-shared-readonly (seeded), which stays where it is.
    assert boundary.new is not None and iam_size(boundary.new) <= MANAGED_POLICY_MAX_CHARS
    (host,) = boundary.statements
    assert host["Action"] == ["s3:GetObject", "s3:ListBucket"]
    assert host["Resource"][-4:] == [
        *bucket_arns(READABLE_BUCKET),
        *bucket_arns(BUCKET),
    ]
    without = with_ceiling(boundary.new, [], previous=[GrantedBucket(BUCKET, None)], home_account=MLSPACE)
    assert without == boundary.current
    added = [line[1:].rstrip(",") for line in boundary.diff.splitlines()[2:] if line.startswith("+")]
    removed = [line[1:].rstrip(",") for line in boundary.diff.splitlines()[2:] if line.startswith("-")]
    assert set(removed) <= set(added) and f'"{bucket_arns(BUCKET)[1]}"' in "".join(added)
    for change in (bucket_change, identity):
        assert sids(change.new)[-2:] == [f"{stem}Objects", f"{stem}List"]
        assert [s["Sid"] for s in change.statements] == [f"{stem}Objects", f"{stem}List"]
        assert change.new is not None
        assert remove_statements(change.new, stem) == (
            change.current or {"Version": "2012-10-17", "Statement": []}
        )
        _assert_only_additions(change)


def _assert_only_additions(change: LayerChange) -> None:
    """The diff removes nothing, and the statements it adds are ours alone."""
    lines = change.diff.splitlines()[2:]
    assert lines, change.layer
    assert not [line for line in lines if line.startswith("-")]
    added = "\n".join(line[1:] for line in lines if line.startswith("+"))
    assert re.findall(r'"Sid": "(\w+)"', added) == [statement["Sid"] for statement in change.statements]


def test_read_write_grants_put_delete_and_abort(readonly: World) -> None:
    request = access_request(readonly.state, access=AccessLevel.READ_WRITE)
    plan = readonly.planner.plan(request, readonly.bucket)
    # Reads and writes on two partner buckets do not fit as ARNs in the boundary's 140 free characters:
    # one statement opens the partner account's buckets (the grant policy and bucket policy still decide).
    boundary = plan.change("boundary", BOUNDARY_ARN)
    assert boundary is not None and boundary.new is not None and not plan.problems
    host, ours = boundary.statements  # MLSpace's S3 read statement gives partner-shared-readonly's place up
    assert ours == {
        "Effect": "Allow",
        "Action": ["s3:*Object", "s3:List*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceAccount": PARTNER}},
    }
    assert not [arn for arn in host["Resource"] if "partner" in arn or BUCKET in arn]
    assert iam_size(boundary.new) <= MANAGED_POLICY_MAX_CHARS
    for change in plan.changes:
        if change.layer == "boundary":
            continue
        objects = next(s for s in change.statements if s["Sid"].endswith("Objects"))
        assert objects["Action"] == [
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
        ]
    checks = readonly.verify(request).capabilities
    assert [check.capability for check in checks] == ["list", "read", "write"]
    assert all(check.allowed is False for check in checks)


def test_a_user_scoped_grant_goes_to_alice_alone(readonly: World) -> None:
    plan = readonly.planner.plan(access_request(readonly.state), readonly.bucket, scope=GrantScope.USER)
    identity = next(change for change in plan.changes if change.layer == "identity")
    bucket_change = next(change for change in plan.changes if change.layer == "bucket-policy")
    assert identity.target == USER_GRANT
    assert identity.attach_to_roles == (ROLES["alice"],)
    condition = bucket_change.statements[0]["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert condition == [f"arn:aws:iam::{MLSPACE}:role/{ROLES['alice']}"]


def test_a_shared_role_grant_is_a_problem_not_a_change(readonly: World) -> None:
    plan = readonly.planner.plan(access_request(readonly.state), readonly.bucket, scope=GrantScope.SHARED)
    assert plan.changes == ()
    assert "shared notebook policy" in plan.problems[0]


def test_the_plan_survives_json(readonly: World) -> None:
    plan = readonly.planner.plan(access_request(readonly.state), readonly.bucket)
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_a_bucket_already_granted_needs_no_change(readonly: World) -> None:
    request = access_request(readonly.state, prefix="").model_copy(
        update={"bucket": "partner-shared-readonly"}
    )
    # The owner's role reads the partner's bucket policy: the admin's own clients may not (cross-account).
    bucket = SharedBucket(bucket="partner-shared-readonly", owner_account=PARTNER, owner_role_arn=OWNER_ROLE)
    plan = readonly.planner.plan(request, bucket)
    assert plan.changes == ()
    assert any("Nothing to change" in note for note in plan.notes)
    assert readonly.verify(request, bucket).allowed is True


def test_size_problem_limits() -> None:
    padded = {"Statement": [{"Sid": "x" * (MANAGED_POLICY_MAX_CHARS - 30)}]}
    assert size_problem("boundary", padded) is None
    assert "6,144" in str(size_problem("identity", {"Statement": [{"Sid": "x" * MANAGED_POLICY_MAX_CHARS}]}))
    assert size_problem("bucket-policy", {"Sid": " " * (BUCKET_POLICY_MAX_BYTES - 20)}) is None
    assert size_problem("bucket-policy", {"Sid": " " * BUCKET_POLICY_MAX_BYTES}) is not None
    assert size_problem("scp", padded) is None


# -- apply, verify, revoke -------------------------------------------------------------------------------


def test_apply_verify_and_revoke_round_trip(world: World) -> None:
    request = access_request(world.state)
    stem = request.sid_stem
    before = snapshot(world)
    assert not alice_can_read(world.state)

    plan = world.planner.plan(request, world.bucket)
    result = world.apply(plan, request)
    assert result.status is RequestStatus.APPLIED and not result.awaiting_owner
    assert outcomes(result) == {
        ("bucket-policy", WRITTEN),
        ("boundary", WRITTEN),
        ("identity", CREATED),
        ("identity", "attached"),
    }
    after = snapshot(world)
    assert remove_statements(after["bucket-policy"], stem) == {"Version": "2012-10-17", "Statement": []}
    assert without_bucket(after[BOUNDARY_ARN]) == before[BOUNDARY_ARN]
    assert all(is_ours(s, stem) for s in after[PROJECT_GRANT]["Statement"])
    for arn in MLSPACE_POLICIES:
        assert after[arn] == before[arn]
    for role, attached in after["attached"].items():
        assert attached == sorted([*before["attached"][role], PROJECT_GRANT])
    assert alice_can_read(world.state)
    assert result.verification.allowed is True
    assert [c.capability for c in result.verification.capabilities] == ["list", "read"]
    assert result.to_dict()["status"] == "applied"

    request = request.model_copy(update={"plan": plan.to_dict(), "result": result.to_dict()})
    revoked = world.revoke(request)
    assert (PROJECT_GRANT, DELETED) in {(step.target, step.outcome) for step in revoked.steps}
    assert ("bucket-policy", DELETED) in outcomes(revoked)
    assert snapshot(world) == before
    assert not alice_can_read(world.state)
    assert revoked.verification is not None and revoked.verification.allowed is False
    read = revoked.verification.capability("read")
    assert set(read.blocked_by) == {"bucket-policy", "identity", "boundary"}
    again = world.revoke(request)
    assert {step.outcome for step in again.steps} == {"nothing-to-remove"}


def test_verify_and_the_sandbox_agree_when_layers_are_taken_back(world: World) -> None:
    """After a boundary edit that drops our statements and the bucket policy's removal, the sandbox (which
    enforces every layer) refuses alice's read, and the verification names both layers."""
    request = access_request(world.state)
    world.apply(world.planner.plan(request, world.bucket), request)
    iam = world.admin.client("iam")
    stripped = json.dumps(without_bucket(the_boundary(world)))
    iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=stripped, SetAsDefault=True)
    world.owner.client("s3").delete_bucket_policy(Bucket=BUCKET)

    assert not alice_can_read(world.state)
    verification = world.verify(request)
    assert verification.allowed is False
    assert set(verification.capability("read").blocked_by) == {"bucket-policy", "boundary"}


def test_without_an_owner_role_the_bucket_policy_awaits_the_owner(world: World) -> None:
    bucket = _registry(None)
    request = access_request(world.state)
    plan = world.planner.plan(request, bucket)
    bucket_change = next(change for change in plan.changes if change.layer == "bucket-policy")
    assert bucket_change.applied_by == OWNER and plan.awaiting_owner
    assert "put-bucket-policy --bucket BucketToBeShared" in bucket_change.command

    first = world.apply(plan, request, bucket)
    assert first.awaiting_owner and first.status is RequestStatus.AWAITING_OWNER
    assert ("bucket-policy", AWAITING_OWNER) in outcomes(first)
    assert {("boundary", WRITTEN), ("identity", CREATED)} <= outcomes(first)
    assert bucket_policy(world.owner) is None
    # Without the owner's role the admin cannot read the partner's bucket policy nor its encryption (AWS
    # refuses both across accounts), so the layer is unverified rather than proven, and so is a KMS key.
    read = first.verification.capability("read")
    assert (read.blocked_by, read.unverified, read.allowed) == ((), ("bucket-policy", "kms"), None)

    # The owner adds the planned statements (the bucket has no policy yet), and a second apply finds them.
    assert (
        bucket_change.new is None and bucket_change.statements
    )  # unreadable when planned: merged by the owner
    added = {"Version": "2012-10-17", "Statement": list(bucket_change.statements)}
    world.owner.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(added))
    second = world.apply(plan, request, bucket)
    # The endpoint still cannot read the partner's bucket policy, so it cannot confirm the owner's step;
    # the sandbox, which decides every layer as AWS does, lets alice in.
    assert outcomes(second) == {
        ("bucket-policy", AWAITING_OWNER),
        ("boundary", ALREADY_APPLIED),
        ("identity", ALREADY_APPLIED),
        ("identity", "attached"),
    }
    assert alice_can_read(world.state)

    revoked = world.revoke(request.model_copy(update={"plan": plan.to_dict()}), bucket)
    owner_step = next(step for step in revoked.steps if step.layer == "bucket-policy")
    assert owner_step.outcome == AWAITING_OWNER
    assert "aws s3api get-bucket-policy --bucket BucketToBeShared" in owner_step.detail
    assert request.sid_stem in owner_step.detail
    assert {("boundary", "removed"), ("identity", DELETED)} <= outcomes(revoked)


def test_a_boundary_at_five_versions_is_never_pruned_and_nothing_is_written(world: World) -> None:
    """IAM keeps five versions of a managed policy
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-versioning.html); MLSpace's
    boundary is not ours to prune, so apply refuses before its first write and says what to do."""
    iam = world.admin.client("iam")
    boundary = json.dumps(the_boundary(world))
    request = access_request(world.state)
    planned = world.planner.plan(request, world.bucket)  # before the versions filled up
    assert planned.problems == ()
    while len(iam.list_policy_versions(PolicyArn=BOUNDARY_ARN)["Versions"]) < 5:
        iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=boundary, SetAsDefault=False)
    before = sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=BOUNDARY_ARN)["Versions"])
    # A new plan says what the admin must do first; an older one is refused by apply itself.
    (problem,) = world.planner.plan(request, world.bucket).problems
    assert "delete a version you no longer need" in problem
    with pytest.raises(VersionsFull, match="delete a version you no longer need"):
        world.apply(planned, request)
    after = sorted(v["VersionId"] for v in iam.list_policy_versions(PolicyArn=BOUNDARY_ARN)["Versions"])
    assert after == before
    assert bucket_policy(world.owner) is None  # nothing else was written either


def test_a_document_over_its_size_limit_is_refused_before_any_write(world: World) -> None:
    boundary = the_boundary(world)
    pad = {"Sid": "Padding", "Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::unused-"}
    padded = {**boundary, "Statement": [*boundary["Statement"], pad]}
    # 40 under the limit: BucketToBeShared's ARNs need 62, the per-account statement 139 (less the 76 freed).
    pad["Resource"] += "x" * (MANAGED_POLICY_MAX_CHARS - 40 - policy_size(padded))
    iam = world.admin.client("iam")
    iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=json.dumps(padded), SetAsDefault=True)
    request = access_request(world.state)
    plan = world.planner.plan(request, world.bucket)
    assert len(plan.problems) == 1
    assert "boundary" in plan.problems[0] and "6,144" in plan.problems[0]
    before = snapshot(world)
    with pytest.raises(SizeLimitExceeded, match="Nothing was written"):
        world.apply(plan, request)
    assert snapshot(world) == before
    with pytest.raises(PlanRefused):
        world.apply(Plan(plan.request_id, plan.sid_stem, (), ("a problem",)), request)


def test_a_document_changed_after_planning_stops_apply_before_any_write(world: World) -> None:
    request = access_request(world.state)
    plan = world.planner.plan(request, world.bucket)
    edited = {"Version": "2012-10-17", "Statement": [_partner_statement()]}
    world.owner.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(edited))
    before = snapshot(world)
    with pytest.raises(PlanOutdated, match="bucket-policy") as raised:
        world.apply(plan, request)
    assert raised.value.layer == "bucket-policy"
    assert snapshot(world) == before


def test_a_change_during_apply_stops_the_writes_after_it(world: World) -> None:
    """Another admin edits the boundary right after our bucket-policy write: the boundary and the identity
    grant are not written."""
    request = access_request(world.state)
    iam = world.admin.client("iam")
    production = world.sessions

    def sessions(role_arn: str) -> Aws | None:
        owner = production(role_arn)
        assert owner is not None

        def edit_boundary(**_: Any) -> None:
            edited = json.dumps({**the_boundary(world), "Id": "EditedMeanwhile"})
            iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=edited, SetAsDefault=True)

        owner.client("s3").meta.events.register("after-call.s3.PutBucketPolicy", edit_boundary)
        return owner

    plan = world.planner.plan(request, world.bucket)
    with pytest.raises(PlanOutdated) as raised:
        apply(plan, request, world.bucket, aws=world.admin, owner_sessions=sessions)
    assert raised.value.layer == "boundary"
    assert [(step.layer, step.outcome) for step in raised.value.written] == [("bucket-policy", WRITTEN)]
    assert sids(bucket_policy(world.owner)) == [f"{request.sid_stem}Objects", f"{request.sid_stem}List"]
    boundary = the_boundary(world)
    assert boundary["Id"] == "EditedMeanwhile"
    assert not any(is_ours(s, request.sid_stem) for s in boundary["Statement"])
    assert managed(world.admin, PROJECT_GRANT) is None


def test_a_writer_whose_lease_is_lost_mid_apply_writes_nothing_more(world: World) -> None:
    """The fence is asked before each write: once another instance took the layers' lock over, this one
    stops after the bucket policy, leaving the boundary and the identity grant as they were."""
    request = access_request(world.state)
    plan = world.planner.plan(request, world.bucket)
    before = snapshot(world)
    asked: list[int] = []

    def fence() -> None:
        asked.append(len(asked))
        if len(asked) > 1:
            raise LeaseLost("another instance holds the layers' lock now")

    with pytest.raises(LeaseLost):
        apply(plan, request, world.bucket, aws=world.admin, owner_sessions=world.sessions, fence=fence)
    assert len(asked) == 2
    assert sids(bucket_policy(world.owner)) == [f"{request.sid_stem}Objects", f"{request.sid_stem}List"]
    assert the_boundary(world) == before[BOUNDARY_ARN]
    assert managed(world.admin, PROJECT_GRANT) is None


def test_an_sse_kms_bucket_gets_a_key_policy_change(world: World) -> None:
    key = world.owner.client("kms").create_key(Description="partner data")["KeyMetadata"]["Arn"]
    encryption = {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
    }
    world.owner.client("s3").put_bucket_encryption(
        Bucket=BUCKET, ServerSideEncryptionConfiguration=encryption
    )
    a_boundary_with_room(world)
    request = access_request(world.state, access=AccessLevel.READ_WRITE)
    stem = request.sid_stem
    before = snapshot(world, key)

    plan = world.planner.plan(request, world.bucket)
    layers = {change.layer: change for change in plan.changes}
    assert list(layers) == ["bucket-policy", "boundary", "identity", "kms"]
    kms = layers["kms"]
    assert (kms.target, kms.account, kms.applied_by) == (key, PARTNER, ENDPOINT)
    assert [s["Sid"] for s in kms.statements] == [f"{stem}Kms"]
    assert kms.statements[0]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert f"{stem}Kms" in sids(layers["identity"].new)
    # The boundary lets the key through in MLSpace's own KMS statement, without a Sid (core/ceiling.py).
    assert any(
        key in s["Resource"] and "kms:Decrypt" in s["Action"] for s in layers["boundary"].new["Statement"]
    )

    result = world.apply(plan, request)
    assert ("kms", WRITTEN) in outcomes(result)
    assert remove_statements(key_policy(world.owner, key), stem) == before["kms"]
    assert result.verification.allowed is True
    write = result.verification.capability("write")
    assert write.actions == ("s3:PutObject", "kms:GenerateDataKey")

    world.revoke(request.model_copy(update={"plan": plan.to_dict()}))
    assert snapshot(world, key) == before


def test_in_mlspaces_own_boundary_a_key_grant_is_refused_before_any_write(world: World) -> None:
    """MLSpace's boundary allows kms:Decrypt on MLSpace's key only, and its 140 free characters hold this
    bucket and its key (62 + 78) but not also the sandbox's earlier grant to alice (partner-kms-encrypted),
    which the boundary must keep allowing: the plan says so with the figures, and apply writes nothing."""
    key = world.owner.client("kms").create_key(Description="partner data")["KeyMetadata"]["Arn"]
    encryption = {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
    }
    world.owner.client("s3").put_bucket_encryption(
        Bucket=BUCKET, ServerSideEncryptionConfiguration=encryption
    )
    request = access_request(world.state)
    plan = world.planner.plan(request, world.bucket)
    boundary = plan.change("boundary", BOUNDARY_ARN)
    assert boundary is not None and boundary.new is not None
    assert [problem for problem in plan.problems if "boundary" in problem and "6,144" in problem]
    before = snapshot(world, key)
    with pytest.raises(SizeLimitExceeded, match="Nothing was written"):
        world.apply(plan, request)
    assert snapshot(world, key) == before


def test_revoking_one_request_keeps_another_requests_grant(world: World) -> None:
    first = access_request(world.state)
    second = access_request(world.state, "bob", prefix="logs/", request_id="req-0002")
    world.apply(world.planner.plan(first, world.bucket), first)
    world.apply(world.planner.plan(second, world.bucket), second)
    both = snapshot(world)

    revoked = world.revoke(first)
    assert ("identity", "removed") in outcomes(revoked)
    after = snapshot(world)
    for layer in ("bucket-policy", PROJECT_GRANT):
        assert after[layer] == remove_statements(both[layer], first.sid_stem)
        assert f"{second.sid_stem}Objects" in sids(after[layer])
    # The second grant still needs the bucket in the boundary: it stays.
    assert after[BOUNDARY_ARN] == both[BOUNDARY_ARN] != without_bucket(both[BOUNDARY_ARN])
    assert after["attached"] == both["attached"]
    assert world.verify(second).allowed is True
    assert world.verify(first).allowed is False


def _partner_statement() -> dict[str, Any]:
    return {
        "Sid": "PartnerAuditRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
