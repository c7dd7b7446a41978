"""Evaluation across every layer, following AWS's documented evaluation logic."""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import (
    Decision,
    Layer,
    PolicyLayers,
    Principal,
    Request,
    evaluate,
    parse_policy,
)

from .helpers import (
    DATA_BUCKET,
    DATA_OBJECT,
    KEY,
    MLSPACE,
    PARTNER,
    PARTNER_KEY,
    ROLE,
    ROOT,
    SESSION,
    SHARED_BUCKET,
    SHARED_OBJECT,
    USER,
    allow_all,
    decide,
    document,
    rcp_allow_all,
    statement,
)

GET = statement(Sid="Get")
NOTHING_FOR_S3 = document(statement(Sid="OnlyEc2", action="ec2:*"))
BOUNDARY_DATA_ONLY = document(
    statement(Sid="DataBucketOnly", action="s3:*", resource=f"arn:aws:s3:::{DATA_BUCKET}*"),
)


def bucket_policy(
    principal: Any, *, action: Any = "s3:GetObject", effect: str = "Allow", **extra: Any
) -> dict[str, Any]:
    return document(statement(effect=effect, Sid="Bucket", action=action, Principal=principal, **extra))


# --- same account ------------------------------------------------------------------------------------------


def test_identity_allow_is_enough_in_the_same_account() -> None:
    result = decide(identity_policies=[document(GET)])
    assert result.decision is Decision.ALLOWED
    assert [ref.statement for ref in result.statements] == ["Get"]
    assert result.blocked_by == ()


def test_nothing_allows_means_implicit_deny_blocked_by_identity() -> None:
    result = decide()
    assert result.decision is Decision.IMPLICIT_DENY
    assert result.blocked_by == (Layer.IDENTITY,)


def test_boundary_caps_identity_grants() -> None:
    result = decide(
        resource=SHARED_OBJECT,
        resource_account=MLSPACE,
        identity_policies=[document(GET)],
        permissions_boundary=BOUNDARY_DATA_ONLY,
    )
    assert result.decision is Decision.IMPLICIT_DENY
    assert result.blocked_by == (Layer.BOUNDARY,)


def test_boundary_that_allows_lets_identity_through() -> None:
    result = decide(identity_policies=[document(GET)], permissions_boundary=BOUNDARY_DATA_ONLY)
    assert result.allowed
    assert {ref.layer for ref in result.statements} == {Layer.IDENTITY, Layer.BOUNDARY}


def test_resource_policy_naming_the_session_is_not_capped_by_the_boundary() -> None:
    result = decide(
        resource=SHARED_OBJECT,
        resource_account=MLSPACE,
        permissions_boundary=NOTHING_FOR_S3,
        resource_policy=bucket_policy({"AWS": SESSION}),
    )
    assert result.allowed
    assert [(ref.layer, ref.statement) for ref in result.statements] == [(Layer.RESOURCE, "Bucket")]


def test_resource_policy_naming_the_role_is_capped_by_the_boundary() -> None:
    result = decide(
        resource=SHARED_OBJECT,
        resource_account=MLSPACE,
        permissions_boundary=NOTHING_FOR_S3,
        resource_policy=bucket_policy({"AWS": ROLE}),
    )
    assert result.decision is Decision.IMPLICIT_DENY
    assert result.blocked_by == (Layer.BOUNDARY,)
    assert any("role ARN" in reason for reason in result.reasons)


def test_resource_policy_naming_the_role_needs_no_identity_allow_within_the_boundary() -> None:
    result = decide(permissions_boundary=BOUNDARY_DATA_ONLY, resource_policy=bucket_policy({"AWS": ROLE}))
    assert result.allowed
    assert {ref.layer for ref in result.statements} == {Layer.RESOURCE, Layer.BOUNDARY}


def test_resource_policy_naming_the_role_is_capped_by_the_session_policy() -> None:
    result = decide(resource_policy=bucket_policy({"AWS": ROLE}), session_policy=NOTHING_FOR_S3)
    assert result.blocked_by == (Layer.SESSION,)


def test_resource_policy_naming_the_session_is_not_capped_by_the_session_policy() -> None:
    result = decide(
        resource_policy=bucket_policy({"AWS": SESSION}),
        session_policy=NOTHING_FOR_S3,
        permissions_boundary=NOTHING_FOR_S3,
    )
    assert result.allowed


def test_resource_policy_naming_an_iam_user_is_not_capped_by_the_boundary() -> None:
    result = decide(
        principal=USER, resource_policy=bucket_policy({"AWS": USER}), permissions_boundary=NOTHING_FOR_S3
    )
    assert result.allowed


def test_resource_policy_naming_everyone_is_a_direct_grant() -> None:
    result = decide(resource_policy=bucket_policy("*"), permissions_boundary=NOTHING_FOR_S3)
    assert result.allowed


@pytest.mark.parametrize("account", [MLSPACE, ROOT])
def test_resource_policy_naming_the_account_delegates_to_identity_policies(account: str) -> None:
    denied = decide(resource_policy=bucket_policy({"AWS": account}))
    assert denied.blocked_by == (Layer.IDENTITY,)
    allowed = decide(resource_policy=bucket_policy({"AWS": account}), identity_policies=[document(GET)])
    assert allowed.allowed
    assert {ref.layer for ref in allowed.statements} == {Layer.RESOURCE, Layer.IDENTITY}


def test_resource_policy_for_another_principal_does_not_help() -> None:
    result = decide(resource_policy=bucket_policy({"AWS": f"arn:aws:iam::{MLSPACE}:role/Other"}))
    assert result.decision is Decision.IMPLICIT_DENY
    assert result.matched == ()


def test_a_resource_policy_naming_a_deleted_role_by_unique_id_matches_nobody() -> None:
    result = decide(resource_policy=bucket_policy({"AWS": "AROAEXAMPLEID1234567"}))
    assert result.decision is Decision.IMPLICIT_DENY


def test_root_user_needs_no_identity_policy_in_its_own_account() -> None:
    assert decide(principal=ROOT).allowed


def test_session_policy_caps_identity_grants() -> None:
    result = decide(identity_policies=[document(GET)], session_policy=NOTHING_FOR_S3)
    assert result.blocked_by == (Layer.SESSION,)
    assert decide(
        identity_policies=[document(GET)], session_policy=document(statement(action="s3:*"))
    ).allowed


def test_session_policy_alone_grants_nothing() -> None:
    result = decide(session_policy=document(statement(action="s3:*")))
    assert result.blocked_by == (Layer.IDENTITY,)


FEDERATED = f"arn:aws:sts::{MLSPACE}:federated-user/carol"


def test_federated_user_without_session_policy_has_no_identity_permissions() -> None:
    result = decide(principal=FEDERATED, identity_policies=[document(GET)])
    assert result.blocked_by == (Layer.SESSION,)
    assert any("federated-user session without a session policy" in reason for reason in result.reasons)
    assert decide(
        principal=FEDERATED, identity_policies=[document(GET)], session_policy=document(GET)
    ).allowed


def test_resource_policy_naming_the_federated_user_is_not_capped() -> None:
    assert decide(principal=FEDERATED, resource_policy=bucket_policy({"AWS": FEDERATED})).allowed


def test_session_policy_for_an_iam_user_is_ignored_with_a_note() -> None:
    result = decide(principal=USER, identity_policies=[document(GET)], session_policy=NOTHING_FOR_S3)
    assert result.allowed
    assert any("session policy was ignored" in note for note in result.notes)


def test_multiple_identity_policies_are_pooled() -> None:
    result = decide(identity_policies=[NOTHING_FOR_S3, document(GET)])
    assert result.allowed
    assert result.statements[0].policy == "identity_policies[1]"


# --- explicit deny -----------------------------------------------------------------------------------------

DENY_GET = statement(effect="Deny", Sid="NoGet")


@pytest.mark.parametrize(
    ("key", "value", "layer"),
    [
        ("identity_policies", [document(GET, DENY_GET)], Layer.IDENTITY),
        ("permissions_boundary", document(statement(action="*"), DENY_GET), Layer.BOUNDARY),
        ("session_policy", document(statement(action="*"), DENY_GET), Layer.SESSION),
        ("resource_policy", document(statement(effect="Deny", Sid="NoGet", Principal="*")), Layer.RESOURCE),
        ("scps", [[allow_all()], [document(DENY_GET)]], Layer.SCP),
        ("rcps", [[document(statement(effect="Deny", Sid="NoGet", Principal="*"))]], Layer.RCP),
        ("endpoint_policy", document(statement(effect="Deny", Sid="NoGet", Principal="*")), Layer.ENDPOINT),
    ],
)
def test_an_explicit_deny_in_any_layer_wins(key: str, value: Any, layer: Layer) -> None:
    grants = {"identity_policies": [document(GET)], "resource_policy": bucket_policy({"AWS": SESSION})}
    result = decide(**{**grants, key: value})
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (layer,)
    assert [(ref.layer, ref.statement, ref.effect.value) for ref in result.statements] == [
        (layer, "NoGet", "Deny")
    ]


def test_explicit_deny_beats_a_resource_grant_to_the_session() -> None:
    result = decide(
        resource_policy=bucket_policy({"AWS": SESSION}),
        permissions_boundary=document(statement(effect="Deny", Sid="NoS3", action="s3:*")),
    )
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.BOUNDARY,)


def test_every_deny_is_reported() -> None:
    result = decide(identity_policies=[document(DENY_GET)], permissions_boundary=document(DENY_GET))
    assert result.blocked_by == (Layer.IDENTITY, Layer.BOUNDARY)
    assert len(result.statements) == 2


def test_deny_with_not_action_denies_everything_else() -> None:
    policy = document(
        statement(Sid="Read"), statement(effect="Deny", Sid="OnlyS3", NotAction="s3:*", resource="*")
    )
    assert decide(identity_policies=[policy]).allowed
    denied = decide(
        action="ec2:StartInstances",
        resource="arn:aws:ec2:us-east-1:111111111111:instance/i-1",
        identity_policies=[policy],
    )
    assert denied.decision is Decision.EXPLICIT_DENY


def test_boundary_with_not_resource_denies_other_buckets() -> None:
    boundary = document(
        statement(action="s3:*", Sid="All"),
        statement(
            effect="Deny",
            Sid="OtherBuckets",
            action="s3:*",
            NotResource=[f"arn:aws:s3:::{DATA_BUCKET}", f"arn:aws:s3:::{DATA_BUCKET}/*"],
        ),
    )
    identity = [document(statement(action="s3:*"))]
    assert decide(identity_policies=identity, permissions_boundary=boundary).allowed
    result = decide(
        resource=SHARED_OBJECT,
        resource_account=MLSPACE,
        identity_policies=identity,
        permissions_boundary=boundary,
    )
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.statements[0].statement == "OtherBuckets"


def test_not_principal_deny_spares_a_session_listed_with_its_role_and_account() -> None:
    spared = [SESSION, ROLE, ROOT]
    policy = document(
        statement(Sid="Allow", Principal={"AWS": SESSION}),
        statement(effect="Deny", Sid="OnlyAuditor", NotPrincipal={"AWS": spared}),
    )
    assert decide(resource_policy=policy).allowed
    partial = document(
        statement(Sid="Allow", Principal={"AWS": SESSION}),
        statement(effect="Deny", Sid="OnlyAuditor", NotPrincipal={"AWS": [SESSION]}),
    )
    assert decide(resource_policy=partial).decision is Decision.EXPLICIT_DENY


def test_not_principal_deny_applies_to_a_caller_with_a_boundary_whatever_it_lists() -> None:
    policy = document(
        statement(Sid="Allow", Principal={"AWS": SESSION}),
        statement(effect="Deny", Sid="OnlyAuditor", NotPrincipal={"AWS": [SESSION, ROLE, ROOT]}),
    )
    result = decide(resource_policy=policy, permissions_boundary=document(statement(action="*")))
    assert result.decision is Decision.EXPLICIT_DENY


# --- cross-account -----------------------------------------------------------------------------------------

CROSS: dict[str, Any] = {"resource": SHARED_OBJECT, "resource_account": PARTNER}
SHARE_WITH_MLSPACE = bucket_policy(
    {"AWS": MLSPACE}, action=["s3:GetObject", "s3:ListBucket"], resource=[SHARED_BUCKET, f"{SHARED_BUCKET}/*"]
)
IDENTITY_READ = [
    document(
        statement(
            Sid="ReadShared",
            action=["s3:GetObject", "s3:ListBucket"],
            resource=[SHARED_BUCKET, f"{SHARED_BUCKET}/*"],
        )
    )
]


def test_cross_account_needs_both_sides() -> None:
    assert decide(**CROSS, resource_policy=SHARE_WITH_MLSPACE, identity_policies=IDENTITY_READ).allowed


def test_cross_account_without_identity_allow() -> None:
    result = decide(**CROSS, resource_policy=SHARE_WITH_MLSPACE)
    assert result.blocked_by == (Layer.IDENTITY,)
    assert any("Cross-account" in reason for reason in result.reasons)


def test_cross_account_without_resource_policy() -> None:
    result = decide(**CROSS, identity_policies=IDENTITY_READ)
    assert result.blocked_by == (Layer.RESOURCE,)
    assert any("no resource policy" in reason for reason in result.reasons)


def test_cross_account_with_a_bucket_policy_that_does_not_name_the_caller() -> None:
    result = decide(
        **CROSS, identity_policies=IDENTITY_READ, resource_policy=bucket_policy({"AWS": "333333333333"})
    )
    assert result.blocked_by == (Layer.RESOURCE,)
    assert any("does not allow this caller" in reason for reason in result.reasons)


def test_cross_account_with_neither_side() -> None:
    assert decide(**CROSS).blocked_by == (Layer.RESOURCE, Layer.IDENTITY)


def test_cross_account_grant_to_the_session_is_still_capped_by_the_boundary() -> None:
    result = decide(
        **CROSS,
        resource_policy=bucket_policy({"AWS": SESSION}),
        identity_policies=IDENTITY_READ,
        permissions_boundary=BOUNDARY_DATA_ONLY,
    )
    assert result.blocked_by == (Layer.BOUNDARY,)


def test_cross_account_public_bucket_still_needs_identity_allow() -> None:
    assert decide(**CROSS, resource_policy=bucket_policy("*")).blocked_by == (Layer.IDENTITY,)
    assert decide(**CROSS, resource_policy=bucket_policy("*"), identity_policies=IDENTITY_READ).allowed


def test_the_runbook_fix_needs_every_layer() -> None:
    """The seed runbook: the bucket trusts the account, the boundary lets the bucket in, identity grants."""
    boundary = document(statement(Sid="Data", action="s3:*", resource=[f"arn:aws:s3:::{DATA_BUCKET}*"]))
    layers: dict[str, Any] = {
        "resource_policy": SHARE_WITH_MLSPACE,
        "identity_policies": IDENTITY_READ,
        "permissions_boundary": boundary,
    }
    assert decide(**CROSS, **layers).blocked_by == (Layer.BOUNDARY,)
    boundary["Statement"][0]["Resource"].extend([SHARED_BUCKET, f"{SHARED_BUCKET}/*"])
    assert decide(**CROSS, **layers).allowed


# --- organizations ------------------------------------------------------------------------------------------


def test_no_organization_means_no_scp_check() -> None:
    assert decide(identity_policies=[document(GET)], scps=[], rcps=[]).allowed


def test_every_scp_level_must_allow() -> None:
    grants: dict[str, Any] = {"identity_policies": [document(GET)]}
    assert decide(**grants, scps=[[allow_all()], [allow_all()], [allow_all()]]).allowed
    result = decide(**grants, scps=[[allow_all()], [NOTHING_FOR_S3], [allow_all()]])
    assert result.blocked_by == (Layer.SCP,)
    assert any("level 1" in reason for reason in result.reasons)


def test_one_allowing_policy_per_scp_level_is_enough() -> None:
    assert decide(identity_policies=[document(GET)], scps=[[NOTHING_FOR_S3, allow_all()]]).allowed


def test_a_level_without_policies_allows_nothing() -> None:
    result = decide(identity_policies=[document(GET)], scps=[[allow_all()], []])
    assert result.blocked_by == (Layer.SCP,)
    assert any("Level 1" in reason and "no service control policy" in reason for reason in result.reasons)


def test_scps_also_limit_resource_policy_grants() -> None:
    result = decide(resource_policy=bucket_policy({"AWS": SESSION}), scps=[[NOTHING_FOR_S3]])
    assert result.blocked_by == (Layer.SCP,)


def test_scps_and_identity_both_reported_when_both_block() -> None:
    assert decide(scps=[[NOTHING_FOR_S3]]).blocked_by == (Layer.SCP, Layer.IDENTITY)


ORG_ONLY_RCP = document(
    statement(
        effect="Deny",
        Sid="OrgOnly",
        action="s3:*",
        Principal="*",
        Condition={
            "StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-mlspace"},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    ),
)


def test_rcp_denies_principals_outside_the_organization() -> None:
    layers: dict[str, Any] = {
        **CROSS,
        "resource_policy": SHARE_WITH_MLSPACE,
        "identity_policies": IDENTITY_READ,
        "rcps": [[rcp_allow_all(), ORG_ONLY_RCP]],
    }
    assert decide(**layers, context={"aws:PrincipalOrgID": "o-mlspace"}).allowed
    result = decide(**layers, context={"aws:PrincipalOrgID": "o-other"})
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.RCP,)


def test_an_rcp_level_without_policies_still_holds_rcp_full_aws_access() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html"""
    assert decide(identity_policies=[document(GET)], rcps=[[rcp_allow_all()], []]).allowed


def test_rcps_apply_to_anonymous_callers_but_scps_do_not() -> None:
    public = bucket_policy("*")
    result = decide(
        principal="anonymous", resource_policy=public, scps=[[NOTHING_FOR_S3]], rcps=[[rcp_allow_all()]]
    )
    assert result.allowed
    assert any("SCPs were ignored" in note for note in result.notes)
    assert decide(principal="anonymous", resource_policy=public, rcps=[[]]).allowed


# --- VPC endpoint -------------------------------------------------------------------------------------------

OWN_BUCKETS_ENDPOINT = document(
    statement(
        Sid="OwnAccount",
        action="s3:*",
        Principal="*",
        Condition={"StringEquals": {"aws:ResourceAccount": MLSPACE}},
    ),
)


def test_endpoint_policy_that_allows_only_own_account_buckets() -> None:
    assert decide(identity_policies=[document(GET)], endpoint_policy=OWN_BUCKETS_ENDPOINT).allowed
    result = decide(
        **CROSS,
        resource_policy=SHARE_WITH_MLSPACE,
        identity_policies=IDENTITY_READ,
        endpoint_policy=OWN_BUCKETS_ENDPOINT,
    )
    assert result.blocked_by == (Layer.ENDPOINT,)


def test_endpoint_policy_by_resource_arn() -> None:
    endpoint = document(statement(action="s3:*", Principal="*", resource=f"arn:aws:s3:::{DATA_BUCKET}/*"))
    assert decide(identity_policies=[document(GET)], endpoint_policy=endpoint).allowed
    other = decide(
        resource=SHARED_OBJECT,
        resource_account=MLSPACE,
        identity_policies=[document(GET)],
        endpoint_policy=endpoint,
    )
    assert other.blocked_by == (Layer.ENDPOINT,)


# --- KMS ----------------------------------------------------------------------------------------------------

DECRYPT = document(statement(Sid="Decrypt", action="kms:Decrypt", resource="*"))


def key_policy(principal: Any) -> dict[str, Any]:
    return document(statement(Sid="Key", action="kms:*", resource="*", Principal=principal))


def test_kms_key_policy_delegating_to_the_account_lets_identity_decide() -> None:
    assert decide(
        action="kms:Decrypt",
        resource=KEY,
        resource_policy=key_policy({"AWS": ROOT}),
        identity_policies=[DECRYPT],
    ).allowed
    denied = decide(action="kms:Decrypt", resource=KEY, resource_policy=key_policy({"AWS": ROOT}))
    assert denied.blocked_by == (Layer.IDENTITY,)


def test_kms_identity_allow_alone_is_not_enough() -> None:
    result = decide(
        action="kms:Decrypt",
        resource=KEY,
        identity_policies=[DECRYPT],
        resource_policy=key_policy({"AWS": f"arn:aws:iam::{MLSPACE}:role/KeyAdmin"}),
    )
    assert result.blocked_by == (Layer.RESOURCE,)
    assert any("KMS key policy must allow" in reason for reason in result.reasons)
    missing = decide(action="kms:Decrypt", resource=KEY, identity_policies=[DECRYPT])
    assert missing.blocked_by == (Layer.RESOURCE,)


def test_kms_key_policy_naming_the_session_needs_no_identity_allow() -> None:
    assert decide(action="kms:Decrypt", resource=KEY, resource_policy=key_policy({"AWS": SESSION})).allowed


def test_kms_key_policy_naming_the_role_is_capped_by_the_boundary() -> None:
    result = decide(
        action="kms:Decrypt",
        resource=KEY,
        resource_policy=key_policy({"AWS": ROLE}),
        permissions_boundary=NOTHING_FOR_S3,
    )
    assert result.blocked_by == (Layer.BOUNDARY,)


def test_kms_key_in_another_account_needs_key_policy_and_identity() -> None:
    policy = key_policy({"AWS": MLSPACE})
    assert decide(
        action="kms:Decrypt", resource=PARTNER_KEY, resource_policy=policy, identity_policies=[DECRYPT]
    ).allowed
    assert decide(action="kms:Decrypt", resource=PARTNER_KEY, resource_policy=policy).blocked_by == (
        Layer.IDENTITY,
    )


def test_kms_account_comes_from_the_key_arn() -> None:
    result = decide(action="kms:Decrypt", resource=PARTNER_KEY, identity_policies=[DECRYPT])
    assert result.blocked_by == (Layer.RESOURCE,)
    assert result.notes == ()


# --- anonymous ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}])
def test_anonymous_is_allowed_only_by_a_resource_policy_open_to_everyone(principal: Any) -> None:
    result = decide(principal="anonymous", resource_policy=bucket_policy(principal))
    assert result.allowed
    assert result.principal == "anonymous"


def test_anonymous_is_not_matched_by_an_account_principal() -> None:
    result = decide(principal="anonymous", resource_policy=bucket_policy({"AWS": MLSPACE}))
    assert result.blocked_by == (Layer.RESOURCE,)


def test_anonymous_without_resource_policy() -> None:
    result = decide(principal="anonymous", identity_policies=[document(GET)])
    assert result.blocked_by == (Layer.RESOURCE,)
    assert any("identity policies were ignored" in note for note in result.notes)


def test_allow_with_not_principal_admits_anonymous_callers() -> None:
    policy = document(statement(Sid="Risky", NotPrincipal={"AWS": f"arn:aws:iam::{PARTNER}:root"}))
    assert decide(principal="anonymous", resource_policy=policy).allowed


# --- S3 specifics -------------------------------------------------------------------------------------------

LIST_ON_OBJECTS = document(
    statement(Sid="Wrong", action="s3:ListBucket", resource=f"arn:aws:s3:::{DATA_BUCKET}/*")
)
LIST_ON_BUCKET = document(
    statement(
        Sid="List",
        action="s3:ListBucket",
        resource=f"arn:aws:s3:::{DATA_BUCKET}",
        Condition={"StringLike": {"s3:prefix": ["project/demo/*", "global/*"]}},
    ),
)


def test_list_bucket_is_on_the_bucket_arn_not_the_objects() -> None:
    bucket = f"arn:aws:s3:::{DATA_BUCKET}"
    assert decide(
        action="s3:ListBucket", resource=bucket, identity_policies=[LIST_ON_OBJECTS]
    ).blocked_by == (Layer.IDENTITY,)
    assert decide(
        action="s3:ListBucket",
        resource=bucket,
        identity_policies=[LIST_ON_BUCKET],
        context={"s3:prefix": "project/demo/"},
    ).allowed


@pytest.mark.parametrize(
    ("context", "allowed"),
    [
        ({"s3:prefix": "project/demo/"}, True),
        ({"s3:prefix": "global/models/"}, True),
        ({"s3:prefix": "project/other/"}, False),
        ({"S3:Prefix": "project/demo/"}, True),
        ({}, False),
    ],
)
def test_prefix_condition_on_listing(context: dict[str, str], allowed: bool) -> None:
    result = decide(
        action="s3:ListBucket",
        resource=f"arn:aws:s3:::{DATA_BUCKET}",
        identity_policies=[LIST_ON_BUCKET],
        context=context,
    )
    assert result.allowed is allowed


def test_legacy_bucket_names_keep_their_capitals() -> None:
    lower = document(statement(action="s3:*", resource="arn:aws:s3:::buckettobeshared/*"))
    exact = document(statement(action="s3:*", resource=f"{SHARED_BUCKET}/*"))
    common = {"resource": SHARED_OBJECT, "resource_account": MLSPACE}
    assert not decide(**common, identity_policies=[lower]).allowed
    assert decide(**common, identity_policies=[exact]).allowed


@pytest.mark.parametrize(
    ("pattern", "action"), [("S3:GETOBJECT", "s3:GetObject"), ("s3:GetObject", "S3:getobject")]
)
def test_actions_ignore_case(pattern: str, action: str) -> None:
    assert decide(action=action, identity_policies=[document(statement(action=pattern))]).allowed


def test_user_home_prefix_with_policy_variable() -> None:
    home = document(
        statement(action="s3:*", resource=f"arn:aws:s3:::{DATA_BUCKET}/private/${{aws:username}}/*")
    )
    mine = f"arn:aws:s3:::{DATA_BUCKET}/private/alice/notes.txt"
    theirs = f"arn:aws:s3:::{DATA_BUCKET}/private/bob/notes.txt"
    assert decide(principal=USER, resource=mine, identity_policies=[home]).allowed
    assert not decide(principal=USER, resource=theirs, identity_policies=[home]).allowed


def test_project_tag_variable_with_default() -> None:
    policy = document(
        statement(resource=f"arn:aws:s3:::{DATA_BUCKET}/project/${{aws:PrincipalTag/project, 'none'}}/*")
    )
    assert decide(identity_policies=[policy], context={"aws:PrincipalTag/project": "demo"}).allowed
    assert not decide(identity_policies=[policy]).allowed
    assert decide(resource=f"arn:aws:s3:::{DATA_BUCKET}/project/none/x", identity_policies=[policy]).allowed


def test_statement_with_an_unresolved_variable_is_ignored_with_a_note() -> None:
    policy = document(statement(Sid="Home", resource=f"arn:aws:s3:::{DATA_BUCKET}/home/${{aws:username}}/*"))
    result = decide(identity_policies=[policy])
    assert result.decision is Decision.IMPLICIT_DENY
    assert any("Home" in note and "${aws:username}" in note for note in result.notes)


def test_an_unresolved_variable_in_a_negated_deny_condition_denies() -> None:
    """A negated operator finds the request value "not equal" to a value whose variable has no value, so the
    Deny applies: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    """
    policy = document(
        GET,
        statement(
            effect="Deny", Sid="NotMine", Condition={"StringNotEquals": {"s3:prefix": "${aws:username}"}}
        ),
    )
    result = decide(identity_policies=[policy], context={"s3:prefix": "someone-else"})
    assert result.decision is Decision.EXPLICIT_DENY
    assert any("NotMine" in note and "${aws:username}" in note for note in result.notes)


def test_resource_account_defaults_to_the_callers_with_a_note() -> None:
    result = decide(identity_policies=[document(GET)])
    assert any("taken to be the caller's own account" in note for note in result.notes)


# --- the API without scenarios -----------------------------------------------------------------------------


def test_evaluate_takes_parsed_policies_directly() -> None:
    request = Request(
        Principal.from_arn(SESSION),
        "s3:GetObject",
        DATA_OBJECT,
        resource_account=MLSPACE,
        context={"aws:SourceVpc": "vpc-1"},
    )
    identity = parse_policy(
        document(statement(Sid="FromVpc", Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})),
        label="MLSpace-project-demo",
    )
    result = evaluate(request, PolicyLayers(identity=(identity,)))
    assert result.allowed
    assert result.statements[0].policy == "MLSpace-project-demo"
    assert not evaluate(request).allowed


def test_derived_principal_arn_is_the_role_for_a_session() -> None:
    policy = bucket_policy("*", Condition={"ArnEquals": {"aws:PrincipalArn": ROLE}})
    assert decide(resource_policy=policy).allowed
    overridden = decide(
        resource_policy=policy, context={"AWS:PRINCIPALARN": f"arn:aws:iam::{MLSPACE}:role/x"}
    )
    assert not overridden.allowed


def test_derived_principal_account() -> None:
    policy = bucket_policy("*", Condition={"StringEquals": {"aws:PrincipalAccount": MLSPACE}})
    assert decide(**CROSS, resource_policy=policy, identity_policies=IDENTITY_READ).allowed
