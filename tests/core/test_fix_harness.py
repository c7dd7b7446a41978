"""Fixes that work as printed: for a matrix of situations, apply the fixes the check (and the admin plan)
proposes to the layers as written, ask the evaluator again, and require every needed capability allowed and
nothing else newly allowed.

How a case runs (``fix_harness.py`` holds the pieces):

1. :func:`fix_harness.build_world` writes the truth: the MLSpace account's real documents (the boundary,
   ``mlspace-notebook-policy`` or the shared-role notebook policy, the project, user and constraint policies,
   built by ``sandbox/mlspace_policies.py``), the caller's role (``MLSpace-demo-<hash>`` tagged ``user`` and
   ``project``, or the shared ``mlspace-notebook-role``), the bucket (cross-account: the partner's; same
   account: one of the MLSpace account, never the data bucket) with its policy, SSE-KMS default encryption
   with a key in us-west-2 while the notebook runs in us-east-1, and that key's policy. Each layer the
   situation does not name as blocking already grants (an earlier grant).
2. The notebook runs ``core.check.Checker.check`` (no admin endpoint) over :class:`fix_harness.FakeAws`,
   which stands in for boto3's clients only: the product's own readers (``whoami``, ``LayerFetcher``) are
   refused the reads the situation says the caller may not make, so an unreadable layer has exactly the
   shape the product gives it; the product's probes reach the stand-in's S3, which either answers every
   call with an error that proves nothing (the verdict then comes from the evaluation) or answers as AWS
   would (denied where the situation denies, a KMS refusal naming the key, from which the check learns the
   key with HeadObject); ``assemble_report`` makes the report.
3. Each ``report.fixes`` entry is applied as written: its complete document when it has one, else its
   statements merged into the live document the harness holds (``core.policy_edit.merge_statements``, what the
   printed jq does). Where the command holds what the data does not, it is run as pasted (bash without
   ``set -e``, jq, and a stand-in AWS CLI answering from the world with ``--query`` and ``--output``
   applied): an identity fix's attachments are the roles its command attaches the grant policy to, an
   unread boundary's new version is what its jq writes (MLSpace's statements extended, no Sid to merge
   by), and a merge the command writes differently from ``merge_statements`` is a failure (commands that
   write a document given whole are test_remedy.py's). IAM's refusals count as failures too:
   ``create-policy`` on a policy that exists, a version of one that does not, and a document over IAM's
   6,144 characters (or S3's 20 KB, KMS's 32 KB), which leaves the layer as it was.
4. ``core.policy.evaluate`` decides again, for the caller and for principals that must stay out.

The admin plan runs through the real :class:`mlspace_s3magic.admin.plan.Planner` over the same stand-in
(reading every layer, as the endpoint's admin and the bucket owner's role can): it is the code path the
endpoint runs (requester's role, grant policy read by ARN, live grants for the boundary's ceiling, every role
of the project to attach to), and the only thing replaced is boto3's clients. Rebuilding the plan from
``plan_fixes`` over fully readable layers would test a copy of ``Planner.plan``'s glue instead of the glue.
Its changes are applied as ``admin/apply.py`` writes them: the new document, and the grant policy attached
to ``attach_to_roles``.

The rules each assertion relies on (the evaluator implements them; these are the pages it is checked
against):

- Cross-account: the bucket policy must allow the caller, and the caller's own identity policies, capped by
  its boundary, must allow too:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
- Same account: an Allow in the identity policies (capped by the boundary) or in the resource policy is
  enough; an explicit Deny anywhere wins; a resource-policy Allow that names the role ARN is capped by the
  boundary, one that names the session is not:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
  and https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html
- A managed policy grants nothing until it is attached, ``CreatePolicy`` refuses an existing name, and a
  managed policy holds at most 6,144 characters, whitespace not counted:
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreatePolicy.html and
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
- ``s3:ListBucket`` is on the bucket and carries ``s3:prefix``; object actions are on object ARNs:
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html
- SSE-KMS: reading needs ``kms:Decrypt``, writing ``kms:GenerateDataKey``, and the key policy must allow the
  caller itself (cross-account, the caller's IAM policies too):
  https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html and
  https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
- ``kms:ViaService`` names the service endpoint in the key's region (``s3.us-west-2.amazonaws.com``), and a
  grant limited by it does not allow using the key directly:
  https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service

Every case passes; none is marked as a known failure. The worlds are checked too: each is one AWS would
accept (no document over its size limit), blocks what it says, and with its blocks lifted by hand allows
what is needed; and the assertions are shown to catch a grant too narrow and one too broad.

A bucket whose encryption the check cannot read may use a KMS key: the fixes then grant the bucket's key
(every key of its owner, but only for S3's use on this bucket's objects, ``kms:EncryptionContext:aws:s3:arn``)
and the key owner's command reads the key from the bucket at run time, doing nothing when there is none:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from mlspace_s3magic.admin.plan import Planner
from mlspace_s3magic.core.access import (
    AccessRequest,
    NewAccessRequest,
    Requester,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.check import AccessReport, Checker
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference

from .fix_harness import (
    ADMIN_READS,
    ALICE_ROLE,
    BOB_ROLE,
    CAROL_ROLE,
    DENY_SID,
    ENGINEER_ROLE,
    EVERYTHING,
    GRANT_POLICY,
    MLSPACE,
    PARTNER,
    STRANGER_ARN,
    VIA_S3,
    VISIBILITY,
    FakeAws,
    Situation,
    World,
    apply_fixes,
    attach,
    bucket_arn,
    build_world,
    decide,
    session_arn,
    through_s3,
)

ADMIN_ARN = f"arn:aws:sts::{MLSPACE}:assumed-role/MLSpaceAdmin/endpoint"
OWNER_ROLE_ARN = f"arn:aws:iam::{PARTNER}:role/S3AccessOwner"
ACCESS = {"list": AccessLevel.LIST, "read": AccessLevel.READ, "write": AccessLevel.READ_WRITE}
NEEDED_CAPABILITIES = {"list": ("list",), "read": ("list", "read"), "write": ("list", "read", "write")}

# (label, principal, action, resource, context)
Check = tuple[str, str, str, str, dict[str, str]]


# -- the matrix ------------------------------------------------------------------------------------------

CROSS_BLOCKS = (
    ("identity",),
    ("boundary",),
    ("bucket-policy",),
    ("kms",),
    ("identity", "boundary"),
    ("identity", "boundary", "bucket-policy"),  # MLSpace's default for a partner's bucket
    ("identity", "boundary", "bucket-policy", "kms"),
    ("bucket-policy", "kms"),
)
SAME_BLOCKS = (
    ("identity",),
    ("boundary",),
    ("kms",),
    ("identity", "boundary"),  # MLSpace's default for a bucket of its own account
    ("identity", "boundary", "kms"),
)


def _valid_blocks(mode: str, account: str) -> list[tuple[str, ...]]:
    """The shared role has no boundary, so it cannot block; the same-account bucket policy cannot block
    without a Deny (an Allow in the identity policies is enough)."""
    sets = CROSS_BLOCKS if account == "cross" else SAME_BLOCKS
    if mode == "shared":
        sets = tuple(dict.fromkeys(tuple(b for b in blocks if b != "boundary") for blocks in sets))
    return [blocks for blocks in sets if blocks]


def _default_blocks(mode: str, account: str, kms: bool = True) -> tuple[str, ...]:
    blocks = ["identity"]
    blocks += ["boundary"] if mode == "user" else []
    blocks += ["bucket-policy"] if account == "cross" else []
    blocks += ["kms"] if kms else []
    return tuple(blocks)


def notebook_matrix() -> list[Situation]:
    cases: list[Situation] = []
    # Every kind of block, both modes, both accounts, read by a notebook that sees everything or almost
    # nothing, with probes that prove nothing and with probes that tell the truth.
    for mode in ("user", "shared"):
        for account in ("cross", "same"):
            for blocks in _valid_blocks(mode, account):
                for visibility in ("everything", "mlspace-default"):
                    for probes in ("unknown", "truthful"):
                        cases.append(Situation(mode, account, blocks, visibility, probes=probes))
    # Each layer alone unreadable (and MLSpace's default with a readable boundary), over the default blocks,
    # with and without a KMS key (so that the key's own troubles do not hide the others).
    singles = [v for v in VISIBILITY if v.startswith("all-but-")] + ["mlspace-default+boundary"]
    for account in ("cross", "same"):
        for visibility in singles:
            cases.append(Situation("user", account, _default_blocks("user", account), visibility))
            for mode in ("user", "shared"):
                blocks = _default_blocks(mode, account, kms=False)
                cases.append(Situation(mode, account, blocks, visibility, probes="truthful"))
    # The unreadable layer is the only one that blocks.
    for account in ("cross", "same"):
        only = [
            (("identity",), "all-but-identity"),
            (("boundary",), "all-but-boundary"),
            (("boundary",), "all-but-role"),
            (("kms",), "all-but-key-policy"),
            (("kms",), "all-but-encryption"),
        ]
        if account == "cross":
            only.append((("bucket-policy",), "all-but-bucket-policy"))
        for blocks, visibility in only:
            cases.append(Situation("user", account, blocks, visibility))
    # What is needed, and the prefix as typed.
    for account in ("cross", "same"):
        for need in ("list", "read", "write"):
            for prefix in ("datasets", "datasets/"):
                for visibility in ("everything", "mlspace-default"):
                    blocks = _default_blocks("user", account)
                    cases.append(Situation("user", account, blocks, visibility, need=need, prefix=prefix))
    for need in ("list", "write"):
        blocks = _default_blocks("shared", "cross")
        cases.append(Situation("shared", "cross", blocks, "mlspace-default", need=need, prefix="datasets"))
    # Later grants (the grant policy exists, for another bucket) and a member who joined after it was made.
    for account in ("cross", "same"):
        for grant in ("later", "joiner"):
            for visibility in ("everything", "mlspace-default"):
                blocks = _default_blocks("user", account, kms=False)
                cases.append(Situation("user", account, blocks, visibility, grant=grant))
    cases.append(Situation("shared", "cross", ("identity", "bucket-policy"), "everything", grant="later"))
    # A KMS key with a boundary that has room for it (the admin's own), so the key's path is tested whole.
    for account in ("cross", "same"):
        for blocks in (("kms",), _default_blocks("user", account)):
            for visibility in ("everything", "all-but-boundary", "all-but-identity", "all-but-key-policy"):
                cases.append(Situation("user", account, blocks, visibility, own_boundary=True))
        for need in ("write", "list"):
            blocks = _default_blocks("user", account)
            cases.append(Situation("user", account, blocks, "everything", need=need, own_boundary=True))
        blocks = _default_blocks("user", account)
        cases.append(Situation("user", account, blocks, "everything", probes="truthful", own_boundary=True))
    # A bucket without any policy.
    for visibility in ("everything", "mlspace-default"):
        cases.append(
            Situation("user", "cross", _default_blocks("user", "cross"), visibility, no_bucket_policy=True)
        )
    return list({case.id: case for case in cases}.values())


def deny_matrix() -> list[Situation]:
    return [
        Situation(mode, account, _default_blocks(mode, account, kms=False), visibility, deny=True)
        for mode in ("user", "shared")
        for account in ("cross", "same")
        for visibility in ("everything", "mlspace-default")
    ]


def admin_matrix() -> list[Situation]:
    cases = [
        Situation(mode, account, blocks)
        for mode in ("user", "shared")
        for account in ("cross", "same")
        for blocks in _valid_blocks(mode, account)
    ]
    for account in ("cross", "same"):
        for need in ("list", "read", "write"):
            for prefix in ("datasets", "datasets/"):
                cases.append(
                    Situation("user", account, _default_blocks("user", account), need=need, prefix=prefix)
                )
        for grant in ("later", "joiner"):
            cases.append(Situation("user", account, _default_blocks("user", account, kms=False), grant=grant))
    cases.append(Situation("user", "cross", _default_blocks("user", "cross"), no_bucket_policy=True))
    for account in ("cross", "same"):
        for need in ("read", "write"):
            for blocks in (("kms",), _default_blocks("user", account)):
                cases.append(Situation("user", account, blocks, need=need, own_boundary=True))
    return list({case.id: case for case in cases}.values())


def _params(cases: list[Situation]) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in cases]


# -- what must be allowed, and what must not become allowed ---------------------------------------------


def needed_checks(s: Situation, ref: BucketRef) -> list[Check]:
    """Each needed capability as AWS receives it: listing the folder (and a subfolder), reading and writing
    objects under it, and the key through S3 in the key's region."""
    caller, bucket = s.caller_arn, bucket_arn(s.bucket)
    checks: list[Check] = [
        ("list datasets/", caller, "s3:ListBucket", bucket, {"s3:prefix": ref.prefix}),
        ("list datasets/2024/", caller, "s3:ListBucket", bucket, {"s3:prefix": f"{ref.prefix}2024/"}),
    ]
    if s.need in ("read", "write"):
        checks += [
            ("read datasets/example.csv", caller, "s3:GetObject", f"{bucket}/{ref.prefix}example.csv", {}),
            ("read datasets/2024/part-0", caller, "s3:GetObject", f"{bucket}/{ref.prefix}2024/part-0", {}),
        ]
        if s.key:
            checks.append(
                (
                    "kms:Decrypt through S3",
                    caller,
                    "kms:Decrypt",
                    s.key,
                    through_s3(f"{bucket}/{ref.prefix}example.csv"),
                )
            )
    if s.need == "write":
        acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
        checks.append(
            ("write datasets/upload.csv", caller, "s3:PutObject", f"{bucket}/{ref.prefix}upload.csv", acl)
        )
        if s.key:
            checks.append(
                (
                    "kms:GenerateDataKey through S3",
                    caller,
                    "kms:GenerateDataKey",
                    s.key,
                    through_s3(f"{bucket}/{ref.prefix}upload.csv"),
                )
            )
    return checks


def must_not_widen(s: Situation) -> list[Check]:
    """Requests a grant of exactly what was needed leaves as they were: other actions, prefixes, buckets,
    projects, principals of the account, accounts, and the key used directly."""
    caller, bucket, other = s.caller_arn, bucket_arn(s.bucket), bucket_arn(s.other_bucket)
    acl = {"s3:x-amz-acl": "bucket-owner-full-control"}
    checks: list[Check] = [
        ("caller s3:DeleteBucketPolicy", caller, "s3:DeleteBucketPolicy", bucket, {}),
        ("caller s3:PutBucketPolicy", caller, "s3:PutBucketPolicy", bucket, {}),
        ("caller lists the whole bucket", caller, "s3:ListBucket", bucket, {}),
        (
            "caller lists datasets-private/",
            caller,
            "s3:ListBucket",
            bucket,
            {"s3:prefix": "datasets-private/"},
        ),
        ("caller lists logs/", caller, "s3:ListBucket", bucket, {"s3:prefix": "logs/"}),
        ("caller reads datasets-private/x", caller, "s3:GetObject", f"{bucket}/datasets-private/x", {}),
        ("caller reads logs/x", caller, "s3:GetObject", f"{bucket}/logs/x", {}),
        ("caller writes datasets-private/x", caller, "s3:PutObject", f"{bucket}/datasets-private/x", acl),
        ("caller writes logs/x", caller, "s3:PutObject", f"{bucket}/logs/x", acl),
        ("caller lists another bucket", caller, "s3:ListBucket", other, {"s3:prefix": "datasets/"}),
        ("caller reads another bucket", caller, "s3:GetObject", f"{other}/datasets/x", {}),
        ("caller writes another bucket", caller, "s3:PutObject", f"{other}/datasets/x", acl),
    ]
    if s.need == "list":
        checks.append(
            ("caller reads datasets/x (only list needed)", caller, "s3:GetObject", f"{bucket}/datasets/x", {})
        )
    if s.need != "write":
        checks += [
            (
                "caller writes datasets/x (no write needed)",
                caller,
                "s3:PutObject",
                f"{bucket}/datasets/x",
                acl,
            ),
            (
                "caller deletes datasets/x (no write needed)",
                caller,
                "s3:DeleteObject",
                f"{bucket}/datasets/x",
                {},
            ),
        ]
    others = [("the engineer role of the MLSpace account", session_arn(ENGINEER_ROLE, "etl"))]
    others.append(("a principal of another account", STRANGER_ARN))
    if s.mode == "user":
        others.append(("another project's role", session_arn(BOB_ROLE)))
    for who, arn in others:
        checks += [
            (f"{who} lists datasets/", arn, "s3:ListBucket", bucket, {"s3:prefix": "datasets/"}),
            (f"{who} reads datasets/x", arn, "s3:GetObject", f"{bucket}/datasets/x", {}),
            (f"{who} writes datasets/x", arn, "s3:PutObject", f"{bucket}/datasets/x", acl),
        ]
        if s.key:
            checks.append(
                (
                    f"{who} kms:Decrypt through S3",
                    arn,
                    "kms:Decrypt",
                    s.key,
                    through_s3(f"{bucket}/datasets/x"),
                )
            )
    if s.key:
        checks += [
            ("caller kms:Decrypt directly (no kms:ViaService)", caller, "kms:Decrypt", s.key, {}),
            ("caller kms:GenerateDataKey directly", caller, "kms:GenerateDataKey", s.key, {}),
            (
                "caller kms:Decrypt through EC2",
                caller,
                "kms:Decrypt",
                s.key,
                {**through_s3(f"{bucket}/datasets/x"), "kms:ViaService": VIA_S3.replace("s3.", "ec2.")},
            ),
            ("caller kms:PutKeyPolicy", caller, "kms:PutKeyPolicy", s.key, {}),
        ]
        if s.need != "write":
            via = through_s3(f"{bucket}/datasets/x")
            checks.append(
                (
                    "caller kms:GenerateDataKey through S3 (no write)",
                    caller,
                    "kms:GenerateDataKey",
                    s.key,
                    via,
                )
            )
    return checks


def _decision(world: World, check: Check) -> Any:
    _, principal, action, resource, context = check
    return decide(world, principal, action, resource, context)


def access_problems(before: World, after: World, s: Situation, ref: BucketRef) -> list[str]:
    """What the fixes failed to do (a needed request still denied) or did too much (a request newly
    allowed), and what AWS would have refused while applying them."""
    problems = [f"applying: {failure}" for failure in after.failures]
    for check in needed_checks(s, ref):
        result = _decision(after, check)
        if not result.allowed:
            blocked = ", ".join(layer.value for layer in result.blocked_by)
            problems.append(f"still denied: {check[0]} ({result.decision.value}, blocked by {blocked})")
    for check in must_not_widen(s):
        if _decision(after, check).allowed and not _decision(before, check).allowed:
            problems.append(f"newly allowed: {check[0]}")
    return problems


# -- the notebook's check --------------------------------------------------------------------------------


def notebook_report(world: World, s: Situation) -> AccessReport:
    """The check as the notebook runs it (``Checker.check``, no admin endpoint): the caller's identity and
    layers as the product reads them, the product's probes against the stand-in's S3 (which answers as AWS
    would, or with an error that proves nothing; writing is probed with truthful probes only, as with
    ``--write-probe``), the key learned from the object when KMS refuses the read, ``assemble_report``."""
    truthful = s.probes == "truthful"
    aws = cast(Any, FakeAws(world, s.caller_arn, VISIBILITY[s.visibility], answers_truly=truthful))
    checker = Checker(aws)
    try:
        ref = parse_bucket_reference(f"{s.bucket}/{s.prefix}")
        return checker.check(ref, write_probe=truthful, need=s.need, owner_account=s.owner)
    finally:
        checker.close()


def _describe(report: AccessReport) -> str:
    data = report.to_dict()
    rows = [
        f"  {name}: {cap.get('verdict')} blocked_by={cap.get('blocked_by')}"
        f" evaluation={(cap.get('evaluation') or {}).get('decision')}"
        f" unverified={(cap.get('evaluation') or {}).get('unverified')}"
        for name, cap in data["capabilities"].items()
    ]
    fixes = [
        f"  fix {fix['layer']} -> {fix['target']} ({fix['change']['operation']})" for fix in data["fixes"]
    ]
    return "\n".join(["report:", *rows, *fixes])


def boundary_lacks_room(world: World, s: Situation) -> int | None:
    """How many characters MLSpace's boundary lacks for the narrowest raise this grant needs, when nothing
    narrower exists: the bucket's ARNs appended to MLSpace's read statement (and its objects to the write
    one), the key's ARN to its KMS statement, each quoted with a comma. In MLSpace's own account no
    per-account form is written (it would open the data bucket and every key of the account), so a grant
    that needs more than the room cannot be made at all; IAM counts a managed policy without whitespace, at
    most 6,144 characters (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
    if s.mode != "user" or s.account != "same" or "boundary" not in s.blocks or s.own_boundary:
        return None
    arns = [f"arn:*:s3:::{s.bucket}", f"arn:*:s3:::{s.bucket}/*"]
    arns += [f"arn:*:s3:::{s.bucket}/*"] if s.need == "write" else []
    arns += [s.key] if s.key and s.need != "list" else []
    needed = sum(len(arn) + 3 for arn in arns)
    room = MANAGED_POLICY_MAX_CHARS - iam_size(world.policies[BOUNDARY_POLICY_NAME])
    return needed - room if needed > room else None


@pytest.mark.parametrize("s", _params(notebook_matrix()))
def test_check_fixes_grant_exactly_what_is_needed(s: Situation) -> None:
    world = build_world(s)
    before = world.copy()
    report = notebook_report(world, s)
    for capability in NEEDED_CAPABILITIES[s.need]:
        assert report.verdict(capability).value != "allowed" or capability not in _blocked(before, s), (
            f"{capability} is reported allowed, but the situation blocks it\n{_describe(report)}"
        )
    apply_fixes(world, report.fixes)
    problems = access_problems(before, world, s, report.ref)
    if boundary_lacks_room(before, s):
        # The boundary fix says so (a key it could not read is left out at run time, with a message); every
        # other fix is still right, and nothing opens.
        (boundary,) = [fix for fix in report.fixes if fix.layer == "boundary"]
        over = any(f"over IAM's {MANAGED_POLICY_MAX_CHARS:,}" in w for w in boundary.warnings)
        assert over or "There is no room for the bucket" in boundary.command, boundary
        problems = [
            p
            for p in problems
            if not p.startswith(
                ("still denied", "applying: AWS refuses the bou", "applying: the printed bou")
            )
        ]
    assert not problems, "\n".join([*problems, _describe(report)])


def _blocked(world: World, s: Situation) -> set[str]:
    """The capabilities the situation denies today (by the truth, not by the report)."""
    ref = parse_bucket_reference(f"{s.bucket}/{s.prefix}").as_folder()
    denied = set()
    for check in needed_checks(s, ref):
        if not _decision(world, check).allowed:
            action = check[2]
            denied.add(
                "list"
                if action == "s3:ListBucket"
                else "write"
                if action in ("s3:PutObject", "kms:GenerateDataKey")
                else "read"
            )
    return denied


# -- an explicit Deny ------------------------------------------------------------------------------------


def _without_deny(world: World, s: Situation) -> World:
    narrowed = world.copy()
    policy = narrowed.buckets[s.bucket].policy
    assert policy is not None
    policy["Statement"] = [st for st in policy["Statement"] if st.get("Sid") != DENY_SID]
    return narrowed


@pytest.mark.parametrize("s", _params(deny_matrix()))
def test_check_never_claims_to_lift_a_deny(s: Situation) -> None:
    """The fixes are Allows, which cannot lift a Deny: the report names the Deny (when it could read it) and
    every layer behind it, so that narrowing the Deny as well is enough, and nothing else opens."""
    world = build_world(s)
    before = world.copy()
    report = notebook_report(world, s)
    data = report.to_dict()
    readable = "bucket-policy" in VISIBILITY[s.visibility]
    problems = []
    for capability in NEEDED_CAPABILITIES[s.need]:
        blocked = set(data["capabilities"][capability]["blocked_by"])
        behind = {layer for layer in s.blocks if layer != "kms"} | {"bucket-policy"}
        if missing := behind - blocked:
            problems.append(
                f"{capability}: the report does not name {sorted(missing)} (it names {sorted(blocked)})"
            )
        if readable and data["capabilities"][capability]["evaluation"]["decision"] != "explicit_deny":
            problems.append(f"{capability}: the readable Deny is not reported as an explicit deny")
    if readable and DENY_SID not in json.dumps(data):
        problems.append(f"the report never names the Deny statement {DENY_SID}")
    apply_fixes(world, report.fixes)
    policy = world.buckets[s.bucket].policy or {"Statement": []}
    if not any(st.get("Sid") == DENY_SID for st in policy["Statement"]):
        problems.append("a fix removed the owner's Deny statement")
    for check in needed_checks(s, report.ref):
        if _decision(world, check).decision.value != "explicit_deny":
            problems.append(f"{check[0]}: the Deny no longer decides after the fixes")
    # The owner narrows the Deny: with the fixes, that must be all it takes.
    problems += access_problems(_without_deny(before, s), _without_deny(world, s), s, report.ref)
    assert not problems, "\n".join([*problems, _describe(report)])


# -- the admin plan --------------------------------------------------------------------------------------


def admin_request(s: Situation) -> AccessRequest:
    new = NewAccessRequest(
        bucket=s.bucket,
        prefix=s.prefix,
        access=ACCESS[s.need],
        reason="fix harness",
        idempotency_key="fix-harness-0001",
    )
    user = s.mode == "user"
    requester = Requester(
        arn=s.caller_arn,
        account=MLSPACE,
        role=s.caller_role,
        user="alice" if user else None,
        project="demo" if user else None,
    )
    now = datetime.now(UTC)
    return AccessRequest(
        id="harness1",
        requester=requester,
        **new.model_dump(),
        status=RequestStatus.APPROVED,
        created_at=now,
        updated_at=now,
    )


def admin_plan(world: World, s: Situation) -> Any:
    def admin_view() -> Any:
        return cast(Any, FakeAws(world, ADMIN_ARN, ADMIN_READS))

    planner = Planner(
        admin_view(),
        owner_sessions=lambda _role: admin_view(),
        owners=lambda bucket: world.buckets[bucket].owner if bucket in world.buckets else None,
    )
    registered = SharedBucket(
        bucket=s.bucket,
        owner_account=s.owner,
        owner_role_arn=OWNER_ROLE_ARN if s.account == "cross" else None,
    )
    return planner.plan(admin_request(s), registered)


def apply_plan(world: World, plan: Any) -> None:
    """What ``admin/apply.py`` writes: each change's new document, and the grant policy attached."""
    world.failures += [f"the plan refuses to apply: {problem}" for problem in plan.problems]
    for change in plan.changes:
        if change.new is None:
            world.failures.append(f"the plan has no document for {change.layer} {change.target}")
            continue
        if change.layer == "bucket-policy":
            world.buckets[change.target].policy = change.new
        elif change.layer == "kms":
            world.keys[change.target] = change.new
        else:
            world.policies[change.target.rsplit("/", 1)[-1]] = change.new
            if change.layer == "identity":
                attach(world, change.target.rsplit("/", 1)[-1], change.attach_to_roles)


@pytest.mark.parametrize("s", _params(admin_matrix()))
def test_admin_plan_grants_exactly_what_is_needed(s: Situation) -> None:
    world = build_world(s)
    before = world.copy()
    plan = admin_plan(world, s)
    if s.mode == "shared":
        # By design the endpoint does not edit MLSpace's shared notebook policy: it must say so and change
        # nothing (the notebook's check prints the fix for the shared role; see the check's cases).
        assert plan.problems and not plan.changes, plan.to_dict()
        return
    if boundary_lacks_room(before, s):
        # The plan refuses, with the figures, before anything is written.
        assert any(f"over IAM's limit of {MANAGED_POLICY_MAX_CHARS:,}" in p for p in plan.problems), plan
        return
    apply_plan(world, plan)
    ref = parse_bucket_reference(f"{s.bucket}/{s.prefix}").as_folder()
    problems = access_problems(before, world, s, ref)
    changes = [f"  change {c.layer} -> {c.target}" for c in plan.changes]
    assert not problems, "\n".join([*problems, *changes, *plan.notes])


def admin_deny_matrix() -> list[Situation]:
    return [
        Situation("user", account, _default_blocks("user", account, kms=False), deny=True)
        for account in ("cross", "same")
    ]


@pytest.mark.parametrize("s", _params(admin_deny_matrix()))
def test_admin_plan_never_claims_to_lift_a_deny(s: Situation) -> None:
    """The plan says an explicit Deny blocks, changes no Deny, and with the Deny narrowed by its owner the
    plan's changes are all that is needed."""
    world = build_world(s)
    before = world.copy()
    plan = admin_plan(world, s)
    problems = []
    if not any("explicit Deny" in note for note in plan.notes):
        problems.append("the plan does not say that an explicit Deny blocks")
    apply_plan(world, plan)
    policy = world.buckets[s.bucket].policy or {"Statement": []}
    if not any(st.get("Sid") == DENY_SID for st in policy["Statement"]):
        problems.append("a change removed the owner's Deny statement")
    ref = parse_bucket_reference(f"{s.bucket}/{s.prefix}").as_folder()
    for check in needed_checks(s, ref):
        if _decision(world, check).decision.value != "explicit_deny":
            problems.append(f"{check[0]}: the Deny no longer decides after the plan")
    problems += access_problems(_without_deny(before, s), _without_deny(world, s), s, ref)
    changes = [f"  change {c.layer} -> {c.target}" for c in plan.changes]
    assert not problems, "\n".join([*problems, *changes, *plan.notes])


# -- the matrix itself -----------------------------------------------------------------------------------


def test_the_matrix_covers_what_issue_12_lists() -> None:
    cases = notebook_matrix() + deny_matrix()
    assert {c.mode for c in cases} == {"user", "shared"}
    assert {c.account for c in cases} == {"cross", "same"}
    assert {c.grant for c in cases} == {"first", "later", "joiner"}
    assert {c.need for c in cases} == {"list", "read", "write"}
    assert {c.prefix for c in cases} == {"datasets", "datasets/"}
    assert set(VISIBILITY) <= {c.visibility for c in cases}
    assert {layer for c in cases for layer in c.blocks} == {"identity", "boundary", "bucket-policy", "kms"}
    assert any(c.deny for c in cases) and any(len(c.blocks) > 1 for c in cases)
    assert len({c.id for c in cases}) == len(cases)
    # The situations are what they say: before any fix the caller is denied exactly what they block.
    for case in cases:
        world = build_world(case)
        assert not world.too_large(), (case.id, world.too_large())
        ref = parse_bucket_reference(f"{case.bucket}/{case.prefix}").as_folder()
        assert any(not _decision(world, check).allowed for check in needed_checks(case, ref)), case.id


def test_layers_not_blocking_really_allow() -> None:
    """Lifting the situation's blocks by hand (the earlier grant everywhere) allows everything needed: the
    harness's worlds are consistent, so a failure above is the fixes', not the world's."""
    for case in notebook_matrix():
        if case.deny or case.grant != "first":
            continue
        opened = build_world(replace(case, blocks=(), sse_kms=case.kms))
        ref = parse_bucket_reference(f"{case.bucket}/{case.prefix}").as_folder()
        for check in needed_checks(case, ref):
            assert _decision(opened, check).allowed, (case.id, check[0])


def test_the_harness_sees_a_grant_too_narrow_or_too_broad() -> None:
    """The assertions have teeth: with nothing applied every needed request is reported still denied, and a
    careless grant (s3:* and kms:* on everything, the boundary lifted, the whole MLSpace account in the
    bucket and key policies) is reported for what it opens."""
    s = Situation("user", "cross", _default_blocks("user", "cross"))
    world = build_world(s)
    before = world.copy()
    ref = parse_bucket_reference(f"{s.bucket}/{s.prefix}").as_folder()
    untouched = access_problems(before, world, s, ref)
    assert untouched and all(problem.startswith("still denied") for problem in untouched)
    world.policies[GRANT_POLICY] = copy.deepcopy(EVERYTHING)
    attach(world, GRANT_POLICY, [ALICE_ROLE, CAROL_ROLE])
    world.policies[BOUNDARY_POLICY_NAME] = copy.deepcopy(EVERYTHING)
    account = {"AWS": f"arn:aws:iam::{MLSPACE}:root"}
    bucket, key = bucket_arn(s.bucket), str(s.key)
    policy = world.buckets[s.bucket].policy
    assert policy is not None
    policy["Statement"].append(
        {"Effect": "Allow", "Principal": account, "Action": "s3:*", "Resource": [bucket, f"{bucket}/*"]}
    )
    world.keys[key]["Statement"].append(
        {"Effect": "Allow", "Principal": account, "Action": "kms:*", "Resource": "*"}
    )
    problems = access_problems(before, world, s, ref)
    assert not [problem for problem in problems if problem.startswith("still denied")], problems
    assert {
        "newly allowed: caller s3:PutBucketPolicy",
        "newly allowed: caller lists datasets-private/",
        "newly allowed: caller reads logs/x",
        "newly allowed: caller writes datasets/x (no write needed)",
        "newly allowed: caller reads another bucket",
        "newly allowed: the engineer role of the MLSpace account reads datasets/x",
        "newly allowed: caller kms:Decrypt directly (no kms:ViaService)",
        "newly allowed: caller kms:GenerateDataKey through S3 (no write)",
    } <= set(problems), problems
    assert "newly allowed: a principal of another account reads datasets/x" not in problems
