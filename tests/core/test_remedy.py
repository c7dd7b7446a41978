"""The fixes per blocking layer: statements, merges, limits, scopes, commands, and that they really grant."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.core.ceiling import CEILING_ACTIONS, GrantedBucket, is_ceiling_statement
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.fix import Fix, Operation, fixes_html, render_fixes
from mlspace_s3magic.core.fix_plan import UNREAD
from mlspace_s3magic.core.grant import AccessLevel, GrantScope, default_scope
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.limits import iam_size
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference
from mlspace_s3magic.core.policy import Layer, PolicyLayers, Principal, Request, evaluate, parse_policy
from mlspace_s3magic.core.policy_edit import merge_statements, sid_stem
from mlspace_s3magic.core.remedy import plan_fixes
from mlspace_s3magic.sandbox.mlspace_policies import permissions_boundary

MLSPACE = "111111111111"
PARTNER = "222222222222"
ALICE_ROLE = user_role_name("demo", "alice")
BOB_ROLE = user_role_name("demo", "bob")
BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE}:policy/{BOUNDARY_POLICY_NAME}"
PROJECT_POLICY_ARN = f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-project-demo"
KEY_ARN = f"arn:aws:kms:eu-west-1:{PARTNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
IRIS = "arn:aws:s3:::BucketToBeShared/datasets/iris/iris.csv"
S3_LAYERS = ("bucket-policy", "boundary", "identity")


def _identity(user: str, role: str, **changes: Any) -> Identity:
    identity = Identity(
        arn=f"arn:aws:sts::{MLSPACE}:assumed-role/{role}/SageMaker",
        account=MLSPACE,
        principal_type="assumed-role",
        role=role,
        role_arn=f"arn:aws:iam::{MLSPACE}:role/{role}",
        session="SageMaker",
        user=user,
        project="demo",
        boundary=BOUNDARY_ARN,
        user_scoped=True,
    )
    return replace(identity, **changes)


ALICE = _identity("alice", ALICE_ROLE)
BOB = _identity("bob", BOB_ROLE)
SHARED_ROLE = replace(_identity("", "mlspace-notebook-role"), user=None, project=None, user_scoped=False)
IRIS_REF = parse_bucket_reference("BucketToBeShared/datasets/iris/")
WHOLE_REF = parse_bucket_reference("BucketToBeShared")
DATA_BOUNDARY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": f"arn:aws:s3:::mlspace-data-{MLSPACE}/*"},
    ],
}


def plan(**overrides: Any) -> list[Fix]:
    """Alice asks to read s3://BucketToBeShared/datasets/iris/ (the partner's), blocked at every layer."""
    arguments: dict[str, Any] = {
        "identity": ALICE,
        "ref": IRIS_REF,
        "access": AccessLevel.READ,
        "blocked_by": S3_LAYERS,
        "bucket_owner_account": PARTNER,
        "current_bucket_policy": None,
        "current_boundary": DATA_BOUNDARY,
    }
    arguments.update(overrides)
    return plan_fixes(**arguments)


def fix_for(layer: str, **overrides: Any) -> Fix:
    (fix,) = [fix for fix in plan(**overrides) if fix.layer == layer]
    return fix


def by_sid(statements: Any) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in statements}


STEM = "S3AccessReadProjectDemoBucketToBeSharedDatasetsIris"


# Statements: actions, prefix scoping, partition, shapes.


def test_read_grants_get_object_and_list_only() -> None:
    statements = by_sid(fix_for("identity").statements)
    assert set(statements) == {STEM + "Objects", STEM + "List"}
    assert statements[STEM + "Objects"]["Action"] == ["s3:GetObject"]
    assert statements[STEM + "List"]["Action"] == ["s3:ListBucket"]


def test_read_write_adds_put_delete_and_abort() -> None:
    statements = by_sid(fix_for("identity", access=AccessLevel.READ_WRITE).statements)
    objects = statements["S3AccessReadWriteProjectDemoBucketToBeSharedDatasetsIrisObjects"]
    assert objects["Action"] == ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def test_a_prefix_scopes_objects_and_listing() -> None:
    statements = by_sid(fix_for("identity").statements)
    assert statements[STEM + "Objects"]["Resource"] == ["arn:aws:s3:::BucketToBeShared/datasets/iris/*"]
    listing = statements[STEM + "List"]
    assert listing["Resource"] == ["arn:aws:s3:::BucketToBeShared"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["datasets/iris/*"]}}


def test_no_prefix_means_the_whole_bucket_without_a_prefix_condition() -> None:
    fixes = {fix.layer: fix for fix in plan(ref=WHOLE_REF)}
    identity = by_sid(fixes["identity"].statements)
    whole = "S3AccessReadProjectDemoBucketToBeShared"
    assert identity[whole + "Objects"]["Resource"] == ["arn:aws:s3:::BucketToBeShared/*"]
    assert "Condition" not in identity[whole + "List"]
    bucket = by_sid(fixes["bucket-policy"].statements)
    assert set(bucket[whole + "List"]["Condition"]) == {"ArnLike"}


def test_arns_keep_the_partition_of_the_reference() -> None:
    ref = parse_bucket_reference("arn:aws-us-gov:s3:::gov-bucket/x/")
    statements = fix_for("identity", ref=ref).statements
    resources = [resource for statement in statements for resource in statement["Resource"]]
    assert resources == ["arn:aws-us-gov:s3:::gov-bucket/x/*", "arn:aws-us-gov:s3:::gov-bucket"]


def _values(node: Any) -> Iterator[Any]:
    """Every value under Action, Resource, Principal and Condition operators, as written."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("Action", "Resource", "AWS") or ":" in key:
                yield value
            else:
                yield from _values(value)


def test_every_element_is_a_list_even_with_one_value() -> None:
    fixes = plan(access=AccessLevel.READ_WRITE, blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN)
    values = [value for fix in fixes for statement in fix.statements for value in _values(statement)]
    assert len(values) > 20
    assert all(isinstance(value, list) for value in values)


# Sids.


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("BucketToBeShared/datasets/iris/", "S3AccessReadProjectDemoBucketToBeSharedDatasetsIris"),
        ("my.data-bucket_v2/raw_data/2024-01/", "S3AccessReadProjectDemoMyDataBucketV2RawData202401"),
    ],
)
def test_sids_are_alphanumeric_for_legacy_and_punctuated_names(text: str, stem: str) -> None:
    ref = parse_bucket_reference(text)
    assert ref.legacy_name
    fixes = plan(ref=ref, blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN)
    sids = [statement["Sid"] for fix in fixes for statement in fix.statements if "Sid" in statement]
    assert {sid.removesuffix("Objects").removesuffix("List").removesuffix("Kms") for sid in sids} == {stem}
    assert all(re.fullmatch(r"[A-Za-z0-9]{1,100}", sid) for sid in sids)
    for fix in fixes:
        own = [statement["Sid"] for statement in fix.statements if "Sid" in statement]
        assert len(own) == len(set(own))
    # The boundary's share of the grant carries no Sid: MLSpace's boundary has no room for one (ceiling.py).
    (boundary,) = [fix for fix in fixes if fix.layer == "boundary"]
    assert len(boundary.statements) == 2 and all(is_ceiling_statement(s) for s in boundary.statements)


def test_long_names_are_cut_to_100_characters_and_stay_distinct() -> None:
    first = BucketRef("my-bucket", "a" * 200 + "/one/")
    second = BucketRef("my-bucket", "a" * 200 + "/two/")
    stems = {sid_stem(first, AccessLevel.READ), sid_stem(second, AccessLevel.READ_WRITE)}
    stems.add(sid_stem(second, AccessLevel.READ))
    assert len(stems) == 3
    sids = [s["Sid"] for fix in plan(ref=first) for s in fix.statements if "Sid" in s]
    assert sids and all(len(sid) <= 100 and sid.isalnum() and sid.isascii() for sid in sids)


def test_a_given_sid_is_the_stem_of_every_statement() -> None:
    fixes = plan(sid="S3AccessReq1a2b3c", blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN)
    sids = {statement["Sid"] for fix in fixes for statement in fix.statements if "Sid" in statement}
    assert sids == {"S3AccessReq1a2b3cObjects", "S3AccessReq1a2b3cList", "S3AccessReq1a2b3cKms"}
    assert {fix.sid_stem for fix in fixes} == {"S3AccessReq1a2b3c"}


def test_default_stems_name_the_grantee_so_grants_for_others_are_kept() -> None:
    stems = {
        scope: fix_for("bucket-policy", scope=scope).sid_stem
        for scope in (GrantScope.PROJECT, GrantScope.USER)
    }
    assert stems == {
        GrantScope.PROJECT: "S3AccessReadProjectDemoBucketToBeSharedDatasetsIris",
        GrantScope.USER: "S3AccessReadUserAliceBucketToBeSharedDatasetsIris",
    }
    assert (
        fix_for("bucket-policy", identity=SHARED_ROLE).sid_stem == "S3AccessReadBucketToBeSharedDatasetsIris"
    )
    # Another project's grant in the same bucket policy survives ours.
    other = replace(ALICE, project="vision", role=user_role_name("vision", "alice"))
    theirs = fix_for("bucket-policy", identity=other)
    ours = fix_for("bucket-policy", current_bucket_policy=theirs.document)
    assert ours.document is not None
    assert ours.document["Statement"] == [*theirs.statements, *ours.statements]


@pytest.mark.parametrize("sid", ["S3-Access", "", "S" * 94, "Grant_1"])
def test_a_given_sid_that_iam_would_refuse_is_rejected(sid: str) -> None:
    with pytest.raises(ValueError, match="letters and digits"):
        plan(sid=sid)


# Merging into current documents.

FOREIGN_FIRST = {
    "Sid": "PartnerAnalytics",
    "Effect": "Allow",
    "Principal": {"AWS": "333333333333"},
    "Action": "s3:GetObject",
    "Resource": "arn:aws:s3:::BucketToBeShared/public/*",
}
FOREIGN_LAST = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": "arn:aws:s3:::BucketToBeShared/*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def test_merge_keeps_foreign_statements_in_order_and_replaces_our_own_sid() -> None:
    stale = {"Sid": STEM + "Objects", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    current = {
        "Version": "2012-10-17",
        "Id": "PartnerPolicy",
        "Statement": [FOREIGN_FIRST, stale, FOREIGN_LAST],
    }
    snapshot = json.loads(json.dumps(current))
    fix = fix_for("bucket-policy", current_bucket_policy=current)
    assert fix.document is not None
    assert current == snapshot, "the caller's document must not be changed"
    ours = by_sid(fix.statements)
    assert fix.document == {
        "Version": "2012-10-17",
        "Id": "PartnerPolicy",
        "Statement": [FOREIGN_FIRST, ours[STEM + "Objects"], FOREIGN_LAST, ours[STEM + "List"]],
    }
    assert fix.operation is Operation.PUT_BUCKET_POLICY


def test_merging_twice_gives_the_same_document() -> None:
    once = fix_for(
        "bucket-policy", current_bucket_policy={"Version": "2012-10-17", "Statement": [FOREIGN_FIRST]}
    )
    twice = fix_for("bucket-policy", current_bucket_policy=once.document)
    assert twice.document == once.document


def test_merge_accepts_a_single_statement_object_and_creates_new_documents() -> None:
    ours = list(fix_for("identity").statements)
    merged = merge_statements({"Statement": FOREIGN_FIRST}, ours)
    assert merged == {"Statement": [FOREIGN_FIRST, *ours]}
    assert merge_statements(None, ours) == {"Version": "2012-10-17", "Statement": ours}


def test_no_bucket_policy_gives_a_fresh_document() -> None:
    fix = fix_for("bucket-policy", current_bucket_policy=None)
    assert fix.document == {"Version": "2012-10-17", "Statement": list(fix.statements)}


def test_an_unreadable_bucket_policy_gives_statements_and_a_merge_warning_but_no_document() -> None:
    fix = fix_for("bucket-policy", current_bucket_policy=UNREAD)
    assert fix.document is None
    assert len(fix.statements) == 2
    assert any("could not be read" in w and "merge these statements" in w for w in fix.warnings)
    assert "get-bucket-policy --bucket BucketToBeShared" in fix.command
    assert fix.to_dict()["change"]["document"] is None


@pytest.mark.parametrize(
    ("layer", "argument"),
    [("boundary", "current_boundary"), ("kms", "current_key_policy")],
)
def test_documents_that_always_exist_are_never_replaced_by_a_fresh_one(layer: str, argument: str) -> None:
    fix = fix_for(layer, blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN, **{argument: None})
    assert fix.document is None
    assert any("could not be read" in warning for warning in fix.warnings)


def test_deny_statements_in_the_bucket_policy_are_named() -> None:
    current = {
        "Version": "2012-10-17",
        "Statement": [FOREIGN_FIRST, {**FOREIGN_LAST, "Sid": "DenyPlainHttp"}],
    }
    fix = fix_for("bucket-policy", current_bucket_policy=current)
    assert any("Deny statements (DenyPlainHttp)" in warning for warning in fix.warnings)
    assert not any(
        "Deny statements" in w for w in fix_for("bucket-policy", current_bucket_policy=None).warnings
    )


# Size limits.


def _padded(size: int, layer: str, measure: Any) -> Fix:
    """A current document whose merged result measures exactly ``size``: one filler statement, padded."""

    def current(padding: int) -> dict[str, Any]:
        filler: dict[str, Any] = {
            "Sid": "Filler",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "x" * padding,
        }
        if layer == "bucket-policy":
            filler["Principal"] = {"AWS": PARTNER}
        return {"Version": "2012-10-17", "Statement": [filler]}

    argument = "current_bucket_policy" if layer == "bucket-policy" else "current_boundary"
    # An unknown owner leaves the boundary one form (the buckets' ARNs), so its size is the one measured.
    start = measure(fix_for(layer, bucket_owner_account=None, **{argument: current(0)}).document)
    return fix_for(layer, bucket_owner_account=None, **{argument: current(size - start)})


def _compact(document: Any) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode("utf-8"))


@pytest.mark.parametrize(("size", "warned"), [(20 * 1024, False), (20 * 1024 + 1, True)])
def test_bucket_policy_size_warning_fires_just_over_20_kb(size: int, warned: bool) -> None:
    fix = _padded(size, "bucket-policy", _compact)
    assert _compact(fix.document) == size
    assert any("20 KB" in warning for warning in fix.warnings) is warned


@pytest.mark.parametrize(("size", "warned"), [(6144, False), (6145, True)])
def test_boundary_size_warning_fires_just_over_6144_characters(size: int, warned: bool) -> None:
    fix = _padded(size, "boundary", _compact)
    assert _compact(fix.document) == size
    assert any("6,144" in w and "PERMISSIONS_BOUNDARY_POLICY_NAME" in w for w in fix.warnings) is warned


MLSPACE_BOUNDARY = permissions_boundary(
    partition="aws", region="us-east-1", account=MLSPACE, data_bucket=f"mlspace-data-{MLSPACE}"
)


def test_mlspaces_own_boundary_takes_a_bucket_into_its_s3_read_statement() -> None:
    """140 characters free: the bucket's two ARNs go into MLSpace's s3:GetObject/s3:ListBucket statement."""
    fix = fix_for("boundary", current_boundary=MLSPACE_BOUNDARY)
    assert fix.document is not None and not fix.warnings[1:]
    hosts = [s for s in fix.document["Statement"] if s["Action"] == ["s3:GetObject", "s3:ListBucket"]]
    assert hosts[0]["Resource"][-2:] == ["arn:*:s3:::BucketToBeShared", "arn:*:s3:::BucketToBeShared/*"]
    assert len(fix.document["Statement"]) == len(MLSPACE_BOUNDARY["Statement"])
    assert iam_size(fix.document) == iam_size(MLSPACE_BOUNDARY) + 62
    assert fix.statements == (hosts[0],)


def test_without_room_for_every_bucket_the_grants_share_one_statement_per_account() -> None:
    readonly = GrantedBucket("partner-shared-readonly", PARTNER)
    writes = fix_for(
        "boundary", current_boundary=MLSPACE_BOUNDARY, access=AccessLevel.READ_WRITE, granted=[readonly]
    )
    assert writes.document is not None and iam_size(writes.document) <= 6144
    (ours,) = [s for s in writes.document["Statement"] if is_ceiling_statement(s)]
    assert ours["Condition"] == {"StringEquals": {"aws:ResourceAccount": PARTNER}}
    assert writes.document["Statement"][:-1] == MLSPACE_BOUNDARY["Statement"]  # no ARN left in MLSpace's


def test_a_boundary_without_room_is_refused_with_the_figures_and_the_options() -> None:
    unknown = GrantedBucket("partner-shared-readonly", None)
    fix = fix_for(
        "boundary", current_boundary=MLSPACE_BOUNDARY, access=AccessLevel.READ_WRITE, granted=[unknown]
    )
    assert fix.document is not None and iam_size(fix.document) > 6144
    (problem,) = [w for w in fix.warnings if "no room" in w]
    assert "6,004 of IAM's 6,144 characters (140 free)" in problem
    assert "register it with the bucket" in problem and "PERMISSIONS_BOUNDARY_POLICY_NAME" in problem


# Scopes and the identity grant.


def test_scope_defaults_follow_how_mlspace_runs() -> None:
    assert default_scope(ALICE) is GrantScope.PROJECT
    assert default_scope(SHARED_ROLE) is GrantScope.SHARED
    assert default_scope(replace(ALICE, project=None, user_scoped=None)) is GrantScope.USER
    assert default_scope(replace(ALICE, project=None)) is GrantScope.USER
    assert default_scope(replace(ALICE, user=None)) is GrantScope.PROJECT
    assert default_scope(replace(ALICE, user=None, project=None, user_scoped=None)) is GrantScope.SHARED


def _arn_condition(fix: Fix) -> Any:
    return next(s for s in fix.statements if s["Sid"].endswith("Objects")).get("Condition")


def test_project_scope_targets_our_project_policy_and_every_project_role() -> None:
    fixes = {fix.layer: fix for fix in plan()}
    assert fixes["identity"].target == PROJECT_POLICY_ARN
    assert _arn_condition(fixes["bucket-policy"]) == {
        "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{MLSPACE}:role/MLSpace-demo-*"]}
    }
    assert "prefix=MLSpace-demo-\n" in fixes["identity"].command
    assert 'case "$role" in "$prefix"*)' in fixes["identity"].command
    assert any("every role of project demo" in warning for warning in fixes["identity"].warnings)


def test_user_scope_targets_our_user_policy_and_the_callers_role() -> None:
    fixes = {fix.layer: fix for fix in plan(scope=GrantScope.USER)}
    assert fixes["identity"].target == f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-user-alice"
    assert _arn_condition(fixes["bucket-policy"]) == {"ArnLike": {"aws:PrincipalArn": [ALICE.role_arn]}}
    assert f"attach-role-policy --role-name {ALICE_ROLE} --policy-arn {fixes['identity'].target}" in (
        fixes["identity"].command
    )


def test_shared_scope_targets_the_notebook_policy_and_names_the_shared_role() -> None:
    fixes = {fix.layer: fix for fix in plan(identity=SHARED_ROLE, current_grant_policy=DATA_BOUNDARY)}
    identity = fixes["identity"]
    assert identity.target == f"arn:aws:iam::{MLSPACE}:policy/mlspace-notebook-policy"
    assert any("is an assumption" in warning for warning in identity.warnings)
    assert "attach-role-policy" not in identity.command
    shared_role = f"arn:aws:iam::{MLSPACE}:role/mlspace-notebook-role"
    for statement in fixes["bucket-policy"].statements:
        assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{MLSPACE}:root"]}
        assert statement["Condition"]["ArnLike"] == {"aws:PrincipalArn": [shared_role]}
    for layer in ("bucket-policy", "identity"):
        assert any("every notebook of every project" in w for w in fixes[layer].warnings)
    assert "mlspace-notebook-role" in fixes["bucket-policy"].summary


def test_a_shared_grant_lets_in_the_shared_role_and_no_other_principal_of_the_account() -> None:
    """The account root alone would let in every principal of the MLSpace account whose own policies allow
    S3 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
    aws:PrincipalArn keeps it to the shared role
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn)."""
    fixes = plan(identity=SHARED_ROLE, current_grant_policy=DATA_BOUNDARY)
    bucket_policy = next(fix.document for fix in fixes if fix.layer == "bucket-policy")
    assert bucket_policy is not None
    broad = parse_policy(
        {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}, Layer.IDENTITY
    )

    def allowed(arn: str) -> bool:
        layers = PolicyLayers(identity=(broad,), resource=parse_policy(bucket_policy, Layer.RESOURCE))
        return evaluate(Request(Principal.from_arn(arn), "s3:GetObject", IRIS, PARTNER, {}), layers).allowed

    assert allowed(SHARED_ROLE.arn)
    assert not allowed(f"arn:aws:sts::{MLSPACE}:assumed-role/SomeAdminRole/session")
    assert not allowed(f"arn:aws:iam::{MLSPACE}:user/ci-deployer")


def test_the_shared_policy_always_exists_so_none_means_unread() -> None:
    fix = fix_for("identity", identity=SHARED_ROLE, current_grant_policy=None)
    assert fix.document is None
    assert fix.operation is Operation.CREATE_POLICY_VERSION
    assert "create-policy " not in fix.command


@pytest.mark.parametrize(("scope", "missing"), [(GrantScope.USER, "user"), (GrantScope.PROJECT, "project")])
def test_a_scope_needs_what_it_names(scope: GrantScope, missing: str) -> None:
    with pytest.raises(ValueError, match=f"MLSpace {missing}"):
        plan(identity=SHARED_ROLE, scope=scope)


@pytest.mark.parametrize("scope", list(GrantScope))
def test_every_identity_fix_warns_never_to_edit_the_mlspace_user_policy(scope: GrantScope) -> None:
    identity = SHARED_ROLE if scope is GrantScope.SHARED else ALICE
    fix = fix_for("identity", identity=identity, scope=scope)
    expected = "MLSpace-user-<User>" if scope is GrantScope.SHARED else "MLSpace-user-alice"
    assert any(f"Never put this grant in {expected}" in w and "rewrites" in w for w in fix.warnings)


def test_a_new_grant_policy_is_created_and_an_existing_one_versioned() -> None:
    new = fix_for("identity", current_grant_policy=None)
    assert new.operation is Operation.CREATE_POLICY
    assert "aws iam create-policy --policy-name MLSpace-s3access-project-demo" in new.command
    assert new.document == {"Version": "2012-10-17", "Statement": list(new.statements)}

    existing = fix_for(
        "identity", current_grant_policy={"Version": "2012-10-17", "Statement": [FOREIGN_FIRST]}
    )
    assert existing.operation is Operation.CREATE_POLICY_VERSION
    assert f"create-policy-version --policy-arn {PROJECT_POLICY_ARN}" in existing.command
    assert "list-policy-versions" in existing.command
    assert "create-policy " not in existing.command


# Boundary.


def test_boundary_fix_versions_the_callers_boundary_without_principals() -> None:
    fix = fix_for("boundary")
    assert fix.target == BOUNDARY_ARN
    assert all("Principal" not in statement for statement in fix.statements)
    assert fix.document is not None
    assert fix.document["Statement"][0] == DATA_BOUNDARY["Statement"][0]
    assert f"create-policy-version --policy-arn {BOUNDARY_ARN} --policy-document file://boundary.json" in (
        fix.command
    )
    assert "--set-as-default" in fix.command
    assert "at most 5 versions" in fix.command
    # MLSpace's boundary is not ours: at five versions the command stops instead of deleting one.
    assert "aws iam delete-policy-version --policy-arn" not in fix.command and "exit 1" in fix.command
    grant = fix_for("identity", current_grant_policy={"Version": "2012-10-17", "Statement": []})
    assert f"aws iam delete-policy-version --policy-arn {PROJECT_POLICY_ARN}" in grant.command


def test_an_unknown_boundary_assumes_mlspaces_name_and_says_so() -> None:
    elsewhere = replace(ALICE, arn=ALICE.arn.replace("arn:aws:", "arn:aws-cn:"), boundary=None)
    fix = fix_for("boundary", identity=elsewhere)
    assert fix.target == f"arn:aws-cn:iam::{MLSPACE}:policy/{BOUNDARY_POLICY_NAME}"
    assert any("assumes MLSpace's recommended name" in warning for warning in fix.warnings)


# Bucket policy specifics.


def test_bucket_policy_trusts_the_account_root_and_explains_why_not_the_role() -> None:
    fix = fix_for("bucket-policy")
    assert fix.target == "BucketToBeShared"
    assert {json.dumps(s["Principal"]) for s in fix.statements} == {
        '{"AWS": ["arn:aws:iam::111111111111:root"]}'
    }
    assert any("AROA" in warning and "recreated" in warning for warning in fix.warnings)
    assert "222222222222" in fix.applied_by and "credentials" in fix.applied_by
    assert fix.command.endswith(
        "aws s3api put-bucket-policy --bucket BucketToBeShared --policy file://policy.json"
    )
    assert "cat > policy.json <<'EOF'" in fix.command


TEAM_REF = parse_bucket_reference("team-bucket/datasets/")
TEAM_OBJECT = "arn:aws:s3:::team-bucket/datasets/train.csv"


def test_same_account_needs_no_bucket_policy_allow_and_the_identity_grant_suffices() -> None:
    """In the caller's own account an identity-policy Allow is enough (the bucket policy need not allow), and
    a bucket policy naming the account root grants nothing on its own: it defers to the account's IAM
    policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
    """
    fixes = {fix.layer: fix for fix in plan(ref=TEAM_REF, bucket_owner_account=MLSPACE)}
    assert list(fixes) == ["bucket-policy", "boundary", "identity"]
    advice = fixes["bucket-policy"]
    assert (advice.statements, advice.document, advice.operation) == ((), None, Operation.ADVICE)
    assert (advice.run_as, advice.account) == ("nobody", None)
    assert ":root" not in advice.command + advice.summary
    assert "need not change unless it denies" in advice.summary
    assert all(line.startswith("# ") for line in advice.command.splitlines())
    request = Request(Principal.from_arn(ALICE.arn), "s3:GetObject", TEAM_OBJECT, MLSPACE, {})
    grant, boundary = fixes["identity"].document, fixes["boundary"].document
    assert grant is not None and boundary is not None
    granted = PolicyLayers(
        identity=(parse_policy(grant, Layer.IDENTITY),), boundary=parse_policy(boundary, Layer.BOUNDARY)
    )
    assert evaluate(request, granted).allowed
    root_only = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{MLSPACE}:root"},
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::team-bucket/*",
            }
        ]
    }
    assert not evaluate(request, PolicyLayers(resource=parse_policy(root_only, Layer.RESOURCE))).allowed


def test_same_account_names_the_deny_statements_of_a_known_bucket_policy() -> None:
    current = {"Statement": [FOREIGN_FIRST, {**FOREIGN_LAST, "Sid": "DenyPlainHttp"}, FOREIGN_LAST]}
    fix = fix_for("bucket-policy", ref=TEAM_REF, bucket_owner_account=MLSPACE, current_bucket_policy=current)
    assert fix.statements == ()
    assert "Deny statements (DenyPlainHttp, Statement[2])" in fix.command
    assert "DenyPlainHttp, Statement[2]" in fix.summary
    assert all(line.startswith("# ") for line in fix.command.splitlines())
    quiet = fix_for("bucket-policy", ref=TEAM_REF, bucket_owner_account=MLSPACE, current_bucket_policy=None)
    assert "no Deny statement" in quiet.command


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_same_account_with_an_unreadable_bucket_policy_gives_a_command_listing_its_denies(
    shell: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    fix = fix_for("bucket-policy", ref=TEAM_REF, bucket_owner_account=MLSPACE, current_bucket_policy=UNREAD)
    assert fix.statements == () and fix.operation is Operation.ADVICE
    assert "aws s3api get-bucket-policy --bucket team-bucket --query Policy --output text | jq" in fix.command
    capfd.readouterr()
    deny = {**FOREIGN_LAST, "Sid": "DenyPlainHttp"}
    sent, calls = shell(fix, current={"Statement": [FOREIGN_FIRST, deny]})
    assert json.loads(capfd.readouterr().out) == [deny]
    assert sent == {} and [call.split()[:2] for call in calls] == [["s3api", "get-bucket-policy"]]


def test_same_account_access_point_policy_advice_reads_the_access_point_policy() -> None:
    ref = parse_bucket_reference(f"arn:aws:s3:us-west-2:{MLSPACE}:accesspoint/analytics/object/raw/")
    fix = fix_for("bucket-policy", ref=ref, bucket_owner_account=None, current_bucket_policy=UNREAD)
    assert fix.statements == () and "access point policy" in fix.summary
    assert (
        f"get-access-point-policy --account-id {MLSPACE} --name analytics --region us-west-2" in fix.command
    )


def test_cross_account_writes_warn_about_object_ownership() -> None:
    def ownership(fix: Fix) -> bool:
        return any("bucket-owner-full-control" in warning for warning in fix.warnings)

    assert ownership(fix_for("bucket-policy", access=AccessLevel.READ_WRITE))
    assert not ownership(fix_for("bucket-policy", access=AccessLevel.READ))
    same_account = fix_for("bucket-policy", access=AccessLevel.READ_WRITE, bucket_owner_account=MLSPACE)
    assert not ownership(same_account)
    assert "explicit Deny" in same_account.summary


def test_an_access_point_gets_an_access_point_policy() -> None:
    ref = parse_bucket_reference("arn:aws:s3:us-west-2:222222222222:accesspoint/analytics/object/raw/")
    fix = fix_for("bucket-policy", ref=ref)
    assert fix.target == "arn:aws:s3:us-west-2:222222222222:accesspoint/analytics"
    assert fix.operation is Operation.PUT_ACCESS_POINT_POLICY
    assert "aws s3control put-access-point-policy --account-id 222222222222 --name analytics" in fix.command
    assert any("s3:DataAccessPointAccount" in warning for warning in fix.warnings)
    assert by_sid(fix.statements)["S3AccessReadProjectDemoAnalyticsRawObjects"]["Resource"] == [
        f"{fix.target}/object/raw/*"
    ]


# KMS.


def test_kms_key_policy_statement_trusts_the_roles_through_s3_in_the_keys_region() -> None:
    fixes = {
        fix.layer: fix
        for fix in plan(access=AccessLevel.READ_WRITE, blocked_by=("kms",), kms_key_arn=KEY_ARN)
    }
    assert list(fixes) == ["boundary", "identity", "kms"]
    kms = fixes["kms"]
    (statement,) = kms.statements
    assert statement["Principal"] == {"AWS": [f"arn:aws:iam::{MLSPACE}:root"]}
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == ["*"]
    assert statement["Condition"]["StringEquals"] == {"kms:ViaService": ["s3.eu-west-1.amazonaws.com"]}
    assert statement["Condition"]["ArnLike"] == {
        "aws:PrincipalArn": [f"arn:aws:iam::{MLSPACE}:role/MLSpace-demo-*"]
    }
    assert (kms.target, kms.operation) == (KEY_ARN, Operation.PUT_KEY_POLICY)
    assert PARTNER in kms.applied_by
    assert (
        f"aws kms put-key-policy --key-id {KEY_ARN} --policy-name default --region eu-west-1" in kms.command
    )
    # S3 layers did not block, so the boundary and identity fixes carry only the key grant.
    for layer in ("boundary", "identity"):
        (grant,) = fixes[layer].statements
        assert grant["Resource"] == [KEY_ARN]
        assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert "KMS key" in fixes[layer].summary


def test_reading_needs_only_decrypt_and_the_key_policy_is_merged() -> None:
    current = {"Version": "2012-10-17", "Id": "key-default-1", "Statement": [FOREIGN_FIRST]}
    kms = fix_for("kms", blocked_by=("kms",), kms_key_arn=KEY_ARN, current_key_policy=current)
    assert kms.statements[0]["Action"] == ["kms:Decrypt"]
    assert kms.document is not None
    assert kms.document["Id"] == "key-default-1"
    assert kms.document["Statement"] == [FOREIGN_FIRST, kms.statements[0]]


def test_kms_with_s3_layers_adds_the_key_grant_to_the_same_identity_and_boundary_fixes() -> None:
    fixes = plan(blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN)
    assert [fix.layer for fix in fixes] == ["bucket-policy", "boundary", "identity", "kms"]
    assert list(by_sid(fixes[2].statements)) == [STEM + "Objects", STEM + "List", STEM + "Kms"]
    # The boundary (unread here) gets the bucket and the key in statements of ours, without a Sid; the jq
    # of its command puts them into MLSpace's own statements when it has them (core/ceiling.py).
    boundary = fixes[1].statements
    assert [s["Action"] for s in boundary] == [list(CEILING_ACTIONS), ["kms:Decrypt", "kms:GenerateDataKey"]]
    assert boundary[1]["Resource"] == [KEY_ARN] and all(is_ceiling_statement(s) for s in boundary)


def test_a_kms_block_without_a_known_key_says_how_to_find_it() -> None:
    """Without the owner account the grants cannot name the owner's keys: advice only. The admin endpoint,
    which writes documents and reads keys itself, gets the same advice for a key it could not read."""
    for fixes in (
        plan(blocked_by=("kms",), bucket_owner_account=None),
        plan(blocked_by=("kms",), key_read_at_run_time=False),
    ):
        (fix,) = fixes
        assert (fix.layer, fix.statements, fix.document) == ("kms", (), None)
        assert "head-object --bucket BucketToBeShared" in fix.command
        assert "get-bucket-encryption --bucket BucketToBeShared" in fix.command
        assert all(line.startswith("#") for line in fix.command.splitlines())
        assert (fix.run_as, fix.account) == ("nobody", None)


def test_a_key_that_could_not_be_read_is_granted_for_this_buckets_objects_through_s3_only() -> None:
    """The bucket's key could not be read (its encryption configuration denied): the identity grant names
    every key of the owner, but only S3 using one for an object of this bucket under the prefix, or the
    bucket itself with S3 Bucket Keys (kms:EncryptionContext:aws:s3:arn, kms:ViaService:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context); the
    boundary lets through the partner's keys (only a ceiling); the key owner's command reads the key."""
    fixes = plan(blocked_by=(*S3_LAYERS, "kms"))
    layers = {fix.layer: fix for fix in fixes}
    (key_grant,) = [s for s in layers["identity"].statements if s["Sid"] == STEM + "Kms"]
    assert key_grant["Resource"] == [f"arn:aws:kms:*:{PARTNER}:key/*"]
    assert key_grant["Condition"] == {
        "StringLike": {
            "kms:ViaService": ["s3.*.amazonaws.com"],
            "kms:EncryptionContext:aws:s3:arn": [
                "arn:aws:s3:::BucketToBeShared",
                "arn:aws:s3:::BucketToBeShared/datasets/iris/*",
            ],
        }
    }
    boundary = layers["boundary"].document
    assert boundary is not None
    assert any(f"arn:*:kms:*:{PARTNER}:key/*" in s["Resource"] for s in boundary["Statement"])
    kms = layers["kms"]
    assert (kms.run_as, kms.account, kms.document) == ("key-owner", PARTNER, None)
    assert "get-bucket-encryption --bucket BucketToBeShared" in kms.command
    assert 'put-key-policy --key-id "$key"' in kms.command
    assert kms.statements[0]["Condition"]["StringLike"] == key_grant["Condition"]["StringLike"]


def test_a_malformed_key_arn_is_refused() -> None:
    with pytest.raises(ValueError, match="not a KMS key ARN"):
        plan(blocked_by=("kms",), kms_key_arn="alias/partner-key")


KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/*", "wildcard"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/1234abcd-12ab-34cd-56ef-1234567890a?", "wildcard"),
        (f"arn:aws:kms:*:{PARTNER}:key/{KEY_ID}", "wildcard"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:alias/partner-datasets", "alias"),
        (f"arn:aws:kms:eu-west-1:22222222222:key/{KEY_ID}", "12 digits"),
        (f"arn:aws:kms:eu-west-1:2222222222222:key/{KEY_ID}", "12 digits"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/{KEY_ID}\n", "whitespace"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/{KEY_ID} --region us-east-1", "whitespace"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/$(id)`id`", "malformed"),
        (f"arn:aws:s3:::BucketToBeShared/{KEY_ID}", "not an ARN of the kms service"),
        (KEY_ID, "not an ARN of the kms service"),
        (f"arn:aws:kms:eu-west-1:{PARTNER}:key/mrk-1234", "malformed"),
    ],
)
def test_a_key_arn_is_validated_strictly_before_any_document_or_command(arn: str, problem: str) -> None:
    with pytest.raises(S3MagicError) as refused:
        plan(blocked_by=("kms",), kms_key_arn=arn)
    message = str(refused.value)
    assert "is not a KMS key ARN" in message and problem in message
    assert "arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID" in message and "\n" not in message


@pytest.mark.parametrize(
    "arn",
    [KEY_ARN, "arn:aws-us-gov:kms:us-gov-west-1:222222222222:key/mrk-0123456789abcdef0123456789abcdef"],
)
def test_key_ids_in_uuid_and_multi_region_form_are_accepted(arn: str) -> None:
    kms = fix_for("kms", blocked_by=("kms",), kms_key_arn=arn, current_key_policy={"Statement": []})
    assert kms.target == arn


# Advisories and order.


def test_layers_we_cannot_change_get_advisories_after_the_fixes() -> None:
    fixes = plan(blocked_by=("endpoint", "mystery", "scp", "identity", "bucket-policy", "scp"))
    assert [fix.layer for fix in fixes] == ["bucket-policy", "identity", "scp", "endpoint", "mystery"]
    for fix in fixes[2:]:
        assert (fix.statements, fix.document, fix.operation) == ((), None, Operation.ADVICE)
        assert all(line.startswith("# ") for line in fix.command.splitlines())
    scp, endpoint, mystery = fixes[2:]
    assert "organization" in scp.applied_by
    assert MLSPACE in scp.target
    assert "network" in endpoint.applied_by and "VPC endpoint" in endpoint.target
    assert "arn:aws:s3:::BucketToBeShared/datasets/iris/*" in endpoint.command
    assert "mystery" in mystery.command


@pytest.mark.parametrize(
    ("layer", "who"),
    [("rcp", "bucket owner's organization"), ("session", "new session"), ("unknown", "admin endpoint")],
)
def test_other_advisories_name_who_must_act(layer: str, who: str) -> None:
    (fix,) = plan(blocked_by=(layer,))
    assert who in fix.applied_by
    assert fix.command.startswith("# ")


def test_nothing_blocked_means_nothing_to_change() -> None:
    assert plan(blocked_by=()) == []
    assert render_fixes([]) == "Nothing to change: no layer blocks this access."
    assert "Nothing to change" in fixes_html([])


# Every fix: JSON form, valid documents, commands naming their target.

ALL_LAYERS = (*S3_LAYERS, "kms", "scp", "rcp", "endpoint", "session", "unknown")
VARIANTS: list[dict[str, Any]] = [
    {},
    {"access": AccessLevel.READ_WRITE, "scope": GrantScope.USER, "current_bucket_policy": UNREAD},
    {"identity": SHARED_ROLE, "ref": WHOLE_REF, "current_grant_policy": DATA_BOUNDARY},
    {"current_boundary": UNREAD, "current_grant_policy": UNREAD, "current_key_policy": UNREAD},
]
RESOURCE_POLICIES = {"bucket-policy", "kms"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_fix_is_json_with_valid_documents_and_a_command_naming_its_target(
    variant: dict[str, Any],
) -> None:
    fixes = plan(**{"blocked_by": ALL_LAYERS, "kms_key_arn": KEY_ARN, **variant})
    assert len(fixes) == len(ALL_LAYERS)
    parsed = 0
    for fix in fixes:
        data = json.loads(json.dumps(fix.to_dict()))
        assert {"layer", "target", "applied_by", "change", "command", "warnings"} <= set(data)
        assert {"add_statements", "document", "operation"} <= set(data["change"])
        assert data["change"]["add_statements"] == list(fix.statements)
        assert fix.target in fix.command
        if not fix.statements:
            continue
        layer = Layer.RESOURCE if fix.layer in RESOURCE_POLICIES else Layer(fix.layer)
        parse_policy(json.dumps({"Version": "2012-10-17", "Statement": list(fix.statements)}), layer)
        if fix.document is not None:
            parse_policy(json.dumps(fix.document), layer)
            parsed += 1
    assert parsed >= 1


def test_to_dict_returns_copies() -> None:
    fix = fix_for("identity")
    fix.to_dict()["change"]["add_statements"][0]["Action"].append("s3:*")
    assert fix.statements[0]["Action"] == ["s3:GetObject"]


# The commands run as written (with a stand-in for the AWS CLI).

MISSING = "MISSING"  # what ``shell`` is given for a document that does not exist (the CLI then fails)
FAKE_AWS = """#!/bin/sh
echo "$*" >> "$CALLS"
printf '%s\\0' "$@" > "$ARGS/$2"
case "$2" in
  get-*) [ "$(cat "$CURRENT")" = MISSING ] && exit 254; cat "$CURRENT" ;;
  list-roles) echo "MLSpace-demo-aaa MLSpace-demo-bbb" ;;
  list-policy-versions) case "$*" in *length*) echo "${VERSIONS:-1}" ;; *) echo v1 ;; esac ;;
esac
for argument in "$@"; do
  case "$argument" in file://*) cp "${argument#file://}" "$OUT/$2.json" ;; esac
done
"""


@pytest.fixture
def shell(tmp_path: Path) -> Any:
    """Run a fix's command in bash with a fake ``aws`` that records calls and the files it is given."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bin_dir, out, arguments = tmp_path / "bin", tmp_path / "out", tmp_path / "args"
    for folder in (bin_dir, out, arguments):
        folder.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)

    def run(
        fix: Fix, current: Any = None, versions: int = 1, *, fails: bool | None = False
    ) -> tuple[dict[str, Any], list[str]]:
        """``fails``: whether the command must fail; None when either outcome is fine."""
        (tmp_path / "current.json").write_text(current if current == MISSING else json.dumps(current))
        (tmp_path / "calls").write_text("")
        for stale in (*out.iterdir(), *arguments.iterdir()):
            stale.unlink()
        env = {
            **os.environ,
            "VERSIONS": str(versions),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CALLS": str(tmp_path / "calls"),
            "CURRENT": str(tmp_path / "current.json"),
            "OUT": str(out),
            "ARGS": str(arguments),
        }
        done = subprocess.run(["bash", "-e", "-c", fix.command], cwd=tmp_path, env=env, check=fails is False)
        assert fails is None or (done.returncode != 0) is fails
        sent = {path.stem: json.loads(path.read_text()) for path in out.iterdir()}
        return sent, (tmp_path / "calls").read_text().splitlines()

    return run


def test_known_documents_reach_the_cli_exactly(shell: Any) -> None:
    fixes = plan(blocked_by=(*S3_LAYERS, "kms"), kms_key_arn=KEY_ARN, current_key_policy={"Statement": []})
    sent, calls = {}, []
    for fix in fixes:
        more_sent, more_calls = shell(fix)
        sent.update(more_sent)
        calls += more_calls
    documents = {fix.layer: fix.document for fix in fixes}
    assert sent["put-bucket-policy"] == documents["bucket-policy"]
    assert sent["create-policy-version"] == documents["boundary"]
    assert sent["create-policy"] == documents["identity"]
    assert sent["put-key-policy"] == documents["kms"]
    attached = [call for call in calls if call.startswith("iam attach-role-policy")]
    assert attached == [
        f"iam attach-role-policy --role-name MLSpace-demo-{suffix} --policy-arn {PROJECT_POLICY_ARN}"
        for suffix in ("aaa", "bbb")
    ]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_an_unreadable_policy_is_merged_into_the_live_one_by_the_command(shell: Any) -> None:
    stale = {"Sid": STEM + "List", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    live = {"Version": "2012-10-17", "Id": "Live", "Statement": [FOREIGN_FIRST, stale, FOREIGN_LAST]}
    fix = fix_for("bucket-policy", current_bucket_policy=UNREAD)
    sent, _ = shell(fix, current=live)
    ours = by_sid(fix.statements)
    assert sent["put-bucket-policy"] == {
        "Version": "2012-10-17",
        "Id": "Live",
        "Statement": [FOREIGN_FIRST, FOREIGN_LAST, ours[STEM + "Objects"], ours[STEM + "List"]],
    }


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize("access", [AccessLevel.READ, AccessLevel.READ_WRITE])
def test_an_unreadable_boundary_gets_the_bucket_in_mlspaces_statements_by_the_command(
    shell: Any, access: AccessLevel
) -> None:
    """Run as printed (bash, jq) on MLSpace's live boundary: the same document as a fix planned with the
    boundary readable, and running it twice changes nothing more."""
    fix = fix_for("boundary", current_boundary=UNREAD, access=access)
    sent, _ = shell(fix, current=MLSPACE_BOUNDARY)
    readable = fix_for("boundary", current_boundary=MLSPACE_BOUNDARY, access=access)
    assert sent["create-policy-version"] == readable.document
    again, _ = shell(fix, current=sent["create-policy-version"])
    assert again["create-policy-version"] == readable.document


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_an_unreadable_boundary_without_mlspaces_statements_gets_a_statement_of_ours(shell: Any) -> None:
    fix = fix_for("boundary", current_boundary=UNREAD)
    sent, _ = shell(fix, current=DATA_BOUNDARY)
    assert sent["create-policy-version"] == fix_for("boundary", current_boundary=DATA_BOUNDARY).document


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_an_unreadable_grant_policy_is_created_when_it_does_not_exist_yet(shell: Any) -> None:
    fix = fix_for("identity", current_grant_policy=UNREAD)
    sent, calls = shell(fix, current=MISSING)
    assert sent["create-policy"] == {"Version": "2012-10-17", "Statement": list(fix.statements)}
    assert not [call for call in calls if call.startswith("iam create-policy-version")]
    assert len([call for call in calls if call.startswith("iam attach-role-policy")]) == 2


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_an_unreadable_grant_policy_that_exists_gets_a_new_version_and_keeps_its_statements(
    shell: Any,
) -> None:
    live = {"Version": "2012-10-17", "Statement": [FOREIGN_FIRST]}
    fix = fix_for("identity", current_grant_policy=UNREAD)
    sent, calls = shell(fix, current=live, versions=5)
    assert sent["create-policy-version"]["Statement"] == [FOREIGN_FIRST, *fix.statements]
    deleted = [call for call in calls if call.startswith("iam delete-policy-version")]
    assert deleted == [f"iam delete-policy-version --policy-arn {PROJECT_POLICY_ARN} --version-id v1"]
    assert "create-policy" not in sent


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_an_unreadable_bucket_policy_on_a_bucket_without_one_gets_a_fresh_one(shell: Any) -> None:
    fix = fix_for("bucket-policy", current_bucket_policy=UNREAD)
    sent, _ = shell(fix, current=MISSING)
    assert sent["put-bucket-policy"] == {"Version": "2012-10-17", "Statement": list(fix.statements)}


# Hostile text where a tag, a prefix or an ARN goes: quotes, $(...), backticks, a newline, spaces.
HOSTILE = "a'b\"c $(touch pwned1) `touch pwned2` d\ntouch pwned3 # ${IFS}x"
HOSTILE_ROLE = f"MLSpace-{HOSTILE}"
HOSTILE_IDENTITY = replace(
    ALICE,
    arn=f"arn:aws:sts::{MLSPACE}:assumed-role/{HOSTILE_ROLE}/SageMaker",
    role=HOSTILE_ROLE,
    role_arn=f"arn:aws:iam::{MLSPACE}:role/{HOSTILE_ROLE}",
    user=HOSTILE,
    project=HOSTILE,
    boundary=f"arn:aws:iam::{MLSPACE}:policy/{HOSTILE}",
)
HOSTILE_REFS = [
    BucketRef("BucketToBeShared", f"{HOSTILE}/", legacy_name=True),
    BucketRef(
        "analytics",
        f"{HOSTILE}/",
        access_point_arn=f"arn:aws:s3:us-west-2:{PARTNER}:accesspoint/analytics",
        access_point_account=PARTNER,
    ),
]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize("scope", list(GrantScope))
@pytest.mark.parametrize("ref", HOSTILE_REFS, ids=["bucket", "access-point"])
@pytest.mark.parametrize("readable", [True, False], ids=["read", "unreadable"])
def test_hostile_values_reach_the_aws_cli_as_data_and_never_run(
    shell: Any, tmp_path: Path, scope: GrantScope, ref: BucketRef, readable: bool
) -> None:
    """Every value in a printed command is quoted for the shell: run with bash, nothing in it executes, and
    each value reaches the AWS CLI as one argument, unchanged."""
    empty = {"Version": "2012-10-17", "Statement": []}
    currents = (
        {"current_bucket_policy": empty, "current_boundary": DATA_BOUNDARY, "current_key_policy": empty}
        if readable
        else dict.fromkeys(
            ("current_bucket_policy", "current_boundary", "current_grant_policy", "current_key_policy"),
            UNREAD,
        )
    )
    for owner in (PARTNER, HOSTILE, MLSPACE):
        fixes = plan(
            identity=HOSTILE_IDENTITY,
            ref=ref,
            scope=scope,
            blocked_by=ALL_LAYERS,
            kms_key_arn=KEY_ARN,
            bucket_owner_account=owner,
            **currents,
        )
        for fix in fixes:
            shell(fix, current=empty, fails=None)
            assert not list(tmp_path.rglob("pwned*")), fix.command
            if fix.layer == "identity" and scope is GrantScope.USER:
                arguments = (tmp_path / "args" / "attach-role-policy").read_bytes().split(b"\0")
                assert HOSTILE_ROLE.encode() in arguments
                assert f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-user-{HOSTILE}".encode() in arguments


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_a_hostile_project_attaches_only_to_roles_that_start_with_its_literal_prefix(
    shell: Any, tmp_path: Path
) -> None:
    """A project tag that a JMESPath or glob pattern would read as ``*`` still matches only its own roles."""
    identity = replace(ALICE, project="*")
    fix = fix_for("identity", identity=identity, current_grant_policy=None)
    _, calls = shell(fix)
    assert not [call for call in calls if call.startswith("iam attach-role-policy")]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize(("size", "stops"), [(6144, False), (6145, True)])
def test_a_boundary_merged_at_run_time_is_never_written_over_iams_quota(
    shell: Any, size: int, stops: bool
) -> None:
    """IAM refuses a managed policy over 6,144 characters, whitespace not counted
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): the command counts the
    merged boundary the same way and stops, before pruning or writing any version."""

    def live(padding: int) -> dict[str, Any]:
        filler = {"Sid": "Filler", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "x" * padding}
        return {"Version": "2012-10-17", "Statement": [*DATA_BOUNDARY["Statement"], filler]}

    def planned(padding: int) -> Any:
        return fix_for("boundary", bucket_owner_account=None, current_boundary=live(padding)).document

    padding = size - iam_size(planned(0))
    assert iam_size(planned(padding)) == size
    fix = fix_for("boundary", bucket_owner_account=None, current_boundary=UNREAD)
    sent, calls = shell(fix, current=live(padding), fails=stops)
    assert ("create-policy-version" in sent) is not stops
    versions = [call for call in calls if call.startswith("iam list-policy-versions")]
    assert bool(versions) is not stops


def test_mlspaces_boundary_at_five_versions_is_never_pruned_by_the_command(shell: Any) -> None:
    fix = fix_for("boundary")
    sent, calls = shell(fix, versions=5, fails=True)
    assert sent == {}
    assert not [call for call in calls if call.startswith(("iam delete-policy-version", "iam create-policy"))]
    sent, _ = shell(fix, versions=4)
    assert sent["create-policy-version"] == fix.document


# The fixes really grant what they say, and no more (checked with our evaluator).


def _allowed(fixes: list[Fix], caller: Identity, action: str, resource: str, **context: str) -> bool:
    documents = {fix.layer: fix.document for fix in fixes if fix.document is not None}
    grant, bucket_policy = documents.get("identity"), documents.get("bucket-policy")
    layers = PolicyLayers(
        identity=(parse_policy(grant, Layer.IDENTITY),) if grant else (),
        boundary=parse_policy(documents.get("boundary", DATA_BOUNDARY), Layer.BOUNDARY),
        resource=parse_policy(bucket_policy, Layer.RESOURCE) if bucket_policy else None,
    )
    request = Request(Principal.from_arn(caller.arn), action, resource, PARTNER, context)
    return evaluate(request, layers).allowed


def test_the_planned_documents_grant_read_on_the_prefix_and_nothing_else() -> None:
    fixes = plan()
    listing = {"s3:prefix": "datasets/iris/"}
    assert not _allowed([], ALICE, "s3:GetObject", IRIS)
    assert _allowed(fixes, ALICE, "s3:GetObject", IRIS)
    assert _allowed(fixes, ALICE, "s3:ListBucket", "arn:aws:s3:::BucketToBeShared", **listing)
    assert not _allowed(fixes, ALICE, "s3:ListBucket", "arn:aws:s3:::BucketToBeShared", **{"s3:prefix": ""})
    assert not _allowed(fixes, ALICE, "s3:GetObject", "arn:aws:s3:::BucketToBeShared/private/x.csv")
    assert not _allowed(fixes, ALICE, "s3:PutObject", IRIS)
    assert _allowed(plan(access=AccessLevel.READ_WRITE), ALICE, "s3:PutObject", IRIS)


def test_the_bucket_policy_condition_decides_which_roles_get_in() -> None:
    # Bob's role is given the same identity grant and boundary: only the bucket policy tells them apart.
    project, user = plan(), plan(scope=GrantScope.USER)
    assert _allowed(project, BOB, "s3:GetObject", IRIS)
    assert _allowed(user, ALICE, "s3:GetObject", IRIS)
    assert not _allowed(user, BOB, "s3:GetObject", IRIS)


# Rendering.


def test_text_shows_header_warnings_and_the_command() -> None:
    fix = fix_for("bucket-policy")
    text = str(fix)
    assert repr(fix) == text
    for part in ("bucket-policy", "BucketToBeShared", fix.applied_by, fix.warnings[0], fix.command):
        assert part in text
    assert text.index(fix.warnings[0]) < text.index("Command:") < text.index(fix.command)
    listing = render_fixes(plan())
    assert listing.startswith("Fix 1 of 3\n")
    assert "Fix 3 of 3\n" in listing


def test_html_escapes_everything_and_folds_the_document() -> None:
    sneaky = replace(ALICE, user="<b>eve</b>")
    fix = fix_for("identity", identity=sneaky, scope=GrantScope.USER)
    html = fix._repr_html_()
    assert "<b>eve" not in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html
    assert "<details><summary>New policy document</summary>" in html
    assert "&quot;S3AccessReadUserBEveBBucketToBeSharedDatasetsIrisObjects&quot;" in html
    foreign = {**FOREIGN_FIRST, "Resource": "arn:aws:s3:::BucketToBeShared/<script>/*"}
    merged = fix_for("bucket-policy", current_bucket_policy={"Statement": [foreign]})._repr_html_()
    assert "<script>" not in merged
    assert "&lt;script&gt;" in merged
    unread = fix_for("bucket-policy", current_bucket_policy=UNREAD)._repr_html_()
    assert "<details><summary>Statements to add</summary>" in unread
    assert fixes_html(plan()).count("<details>") == 3


# GrantScope exactly what was asked.


def test_a_list_need_grants_listing_the_folder_and_no_object() -> None:
    fixes = plan(access=AccessLevel.LIST)
    listing = {"s3:prefix": "datasets/iris/"}
    assert _allowed(fixes, ALICE, "s3:ListBucket", "arn:aws:s3:::BucketToBeShared", **listing)
    assert not _allowed(fixes, ALICE, "s3:GetObject", IRIS)
    identity = next(fix for fix in fixes if fix.layer == "identity")
    assert [s["Action"] for s in identity.statements] == [["s3:ListBucket"]]


def test_a_prefix_without_its_slash_is_the_folder_and_not_its_namesakes() -> None:
    """``datasets`` means ``datasets/``: a grant on ``datasets*`` would also open ``datasets-private/``."""
    typed = parse_bucket_reference("BucketToBeShared/datasets").as_folder()
    assert typed.prefix == "datasets/" and "datasets-private/" in typed.notes[-1]
    fixes = plan(ref=typed)
    assert _allowed(fixes, ALICE, "s3:GetObject", "arn:aws:s3:::BucketToBeShared/datasets/iris/iris.csv")
    assert not _allowed(fixes, ALICE, "s3:GetObject", "arn:aws:s3:::BucketToBeShared/datasets-private/x.csv")
    private = {"s3:prefix": "datasets-private/"}
    assert not _allowed(fixes, ALICE, "s3:ListBucket", "arn:aws:s3:::BucketToBeShared", **private)
    assert parse_bucket_reference("BucketToBeShared/datasets/").as_folder().notes == typed.notes[:-1]


def test_a_dollar_brace_in_a_prefix_never_becomes_a_policy_variable() -> None:
    """``${aws:username}/`` typed as a prefix is that literal folder: IAM reads ``${$}`` as a literal ``$``
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-specialchars)."""
    ref = parse_bucket_reference("BucketToBeShared/${aws:username}/")
    fixes = plan(ref=ref)
    for fix in fixes:
        assert "${aws:username}" not in json.dumps(fix.statements).replace("${$}{aws:username}", "")
    # Unescaped, the variable would have no value for a role session and the grant would match nothing.
    literal = "arn:aws:s3:::BucketToBeShared/${aws:username}/notes.txt"
    assert _allowed(fixes, ALICE, "s3:GetObject", literal)
    assert not _allowed(fixes, ALICE, "s3:GetObject", "arn:aws:s3:::BucketToBeShared/alice/notes.txt")
    listing = {"s3:prefix": "${aws:username}/"}
    assert _allowed(fixes, ALICE, "s3:ListBucket", "arn:aws:s3:::BucketToBeShared", **listing)


def test_each_fix_says_whose_credentials_run_it() -> None:
    fixes = plan(
        blocked_by=(*S3_LAYERS, "kms", "scp"), kms_key_arn=KEY_ARN, current_key_policy={"Statement": []}
    )
    assert {fix.layer: (fix.to_dict()["run_as"], fix.to_dict()["account"]) for fix in fixes} == {
        "bucket-policy": ("bucket-owner", PARTNER),
        "boundary": ("mlspace-admin", MLSPACE),
        "identity": ("mlspace-admin", MLSPACE),
        "kms": ("key-owner", PARTNER),
        "scp": ("nobody", None),
    }
    assert fix_for("bucket-policy", bucket_owner_account=None).account is None


@pytest.mark.parametrize(
    ("live", "succeeds", "writes"),
    [
        (f"arn:aws:iam::{MLSPACE}:policy/{BOUNDARY_POLICY_NAME}", True, True),
        (f"arn:aws:iam::{MLSPACE}:policy/another-boundary", False, False),
        ("None", True, False),  # no boundary (MLSpace's shared notebook role): nothing to raise
    ],
)
def test_an_assumed_boundary_is_settled_by_the_command_before_it_writes(
    tmp_path: Path, live: str, succeeds: bool, writes: bool
) -> None:
    """GetRole denied to the notebook: the boundary is unknown, never absent. The printed command reads the
    role's real boundary (the admin may) and raises only that one; another policy stops it, none needs
    nothing."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    unknown = replace(ALICE, boundary=None, boundary_unreadable="iam:GetRole was denied")
    fix = fix_for("boundary", identity=unknown)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(
        '#!/bin/sh\necho "$*" >> "$CALLS"\n'
        'case "$2" in get-role) echo "$LIVE" ;; list-policy-versions) echo 1 ;; esac\n'
    )
    (bin_dir / "aws").chmod(0o755)
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "CALLS": str(calls),
        "LIVE": live,
    }
    done = subprocess.run(
        ["bash", "-e", "-c", fix.command], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    written = "create-policy-version" in calls.read_text()
    assert (done.returncode == 0, written) == (succeeds, writes), done.stderr
    if not succeeds:
        assert "is not" in done.stderr and "iam:GetRole" in done.stderr
