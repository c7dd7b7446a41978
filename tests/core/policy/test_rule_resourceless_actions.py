"""Rule: an action without a resource type has the resource "*", covered only by the Resource entry "*" (and,
for S3 actions, arn:aws:s3:::*); no resource policy takes part and the resource is the caller's account.
sts:GetCallerIdentity is always allowed. "*" stays refused for actions that need a resource.

Sources (actions with no resource type):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html,
https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html,
https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.cli import main
from mlspace_s3magic.core.policy import (
    Decision,
    Layer,
    PolicyLayers,
    PolicyValidationError,
    Principal,
    Request,
    Scenario,
    evaluate,
    parse_policy,
    simulate,
)
from mlspace_s3magic.core.policy.actions import takes_no_resource

from .helpers import DATA_BUCKET, DATA_OBJECT, MLSPACE, SESSION, decide, document, statement

LIST_BUCKETS: dict[str, Any] = {"action": "s3:ListAllMyBuckets", "resource": "*"}


@pytest.mark.parametrize("entry", ["*", "arn:aws:s3:::*"])
def test_list_all_my_buckets_is_covered_by_star_and_every_bucket(entry: str) -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html:
    s3:ListAllMyBuckets has no resource type, so its policies name "*" (for S3, arn:aws:s3:::* too)."""
    result = decide(
        **LIST_BUCKETS, identity_policies=[document(statement(action="s3:ListAllMyBuckets", resource=entry))]
    )
    assert result.allowed
    assert not any("account was not given" in note for note in result.notes)


@pytest.mark.parametrize(
    "entry",
    [
        "arn:aws:s3:::mybucket",
        "arn:aws:s3:::*/*",
        "arn:aws:s3:::m*",
        "arn:*:s3:::*",
        f"arn:aws:s3:::{DATA_BUCKET}",
    ],
)
def test_no_other_pattern_covers_it(entry: str) -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
    Near misses: bucket and object patterns do not cover an action that takes no resource."""
    result = decide(**LIST_BUCKETS, identity_policies=[document(statement(action="s3:*", resource=entry))])
    assert result.blocked_by == (Layer.IDENTITY,)


def test_arn_s3_star_covers_only_s3_actions() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html: operations that use
    no particular key (kms:ListKeys) take "*"; an S3 pattern is no KMS resource."""
    policy = document(statement(action="kms:ListKeys", resource="arn:aws:s3:::*"))
    assert decide(action="kms:ListKeys", resource="*", identity_policies=[policy]).blocked_by == (
        Layer.IDENTITY,
    )
    star = document(statement(action="kms:ListKeys", resource="*"))
    assert decide(action="kms:ListKeys", resource="*", identity_policies=[star]).allowed


@pytest.mark.parametrize(("excluded", "denied"), [(f"arn:aws:s3:::{DATA_BUCKET}/*", True), ("*", False)])
def test_not_resource_excludes_it_only_with_those_entries(excluded: str, denied: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
    A Deny NotResource of one bucket's objects still denies ListAllMyBuckets; NotResource "*" excludes it."""
    policy = document(
        statement(action="s3:*"), statement(effect="Deny", Sid="Fence", action="s3:*", NotResource=excluded)
    )
    result = decide(**LIST_BUCKETS, identity_policies=[policy])
    assert (result.decision is Decision.EXPLICIT_DENY) is denied


def test_a_resource_policy_given_is_ignored_and_the_account_is_the_callers() -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html: no resource,
    so no resource policy; aws:ResourceAccount is the caller's own account."""
    bucket_policy = document(statement(action="s3:*", Principal={"AWS": SESSION}))
    condition = {"StringEquals": {"aws:ResourceAccount": MLSPACE}}
    identity = document(statement(action="s3:ListAllMyBuckets", Condition=condition))
    result = decide(**LIST_BUCKETS, resource_policy=bucket_policy, identity_policies=[identity])
    assert result.allowed
    assert any("resource policy was ignored" in note for note in result.notes)
    assert decide(**LIST_BUCKETS, resource_policy=bucket_policy).blocked_by == (Layer.IDENTITY,)


def test_the_boundary_still_caps_it() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    result = decide(
        **LIST_BUCKETS,
        identity_policies=[document(statement(action="s3:*"))],
        permissions_boundary=document(statement(action="s3:GetObject")),
    )
    assert result.blocked_by == (Layer.BOUNDARY,)


@pytest.mark.parametrize(
    "layers", [{}, {"identity_policies": [document(statement(effect="Deny", action="*"))]}]
)
def test_get_caller_identity_is_always_allowed(layers: dict[str, Any]) -> None:
    """https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html: no permission is
    required, and an explicit Deny does not stop it."""
    result = decide(action="sts:GetCallerIdentity", resource="*", **layers)
    assert result.allowed
    assert any("GetCallerIdentity" in reason for reason in result.reasons)


def test_other_sts_actions_without_a_resource_need_an_allow() -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
    Near miss: sts:GetSessionToken takes no resource but is not exempt."""
    assert decide(action="sts:GetSessionToken", resource="*").blocked_by == (Layer.IDENTITY,)


def test_star_is_refused_for_an_action_that_needs_a_resource() -> None:
    """s3:GetObject acts on an object ARN:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html"""
    with pytest.raises(PolicyValidationError) as caught:
        Scenario.from_dict({"principal": SESSION, "action": "s3:GetObject", "resource": "*"})
    assert caught.value.path == "resource"
    assert "s3:ListAllMyBuckets" in caught.value.message
    with pytest.raises(PolicyValidationError, match="acts on a resource"):
        evaluate(Request(Principal.from_arn(SESSION), "s3:GetObject", "*"), PolicyLayers())


def test_a_resource_given_to_an_action_that_takes_none_is_set_aside() -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html"""
    policy = parse_policy(document(statement(action="s3:ListAllMyBuckets", resource="*")))
    request = Request(Principal.from_arn(SESSION), "s3:ListAllMyBuckets", DATA_OBJECT)
    result = evaluate(request, PolicyLayers(identity=(policy,)))
    assert result.allowed
    assert any("set aside" in note for note in result.notes)


@pytest.mark.parametrize(
    "action",
    [
        "s3:ListAllMyBuckets",
        "S3:LISTALLMYBUCKETS",
        "kms:ListKeys",
        "kms:ListAliases",
        "kms:CreateKey",
        "sts:GetCallerIdentity",
        "iam:ListRoles",
    ],
)
def test_the_common_resourceless_actions_are_listed(action: str) -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
    https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html,
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html"""
    assert takes_no_resource(action)
    assert not takes_no_resource("s3:ListBucket")


def test_simulate_accepts_list_all_my_buckets_on_star(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html"""
    scenario = {
        "principal": SESSION,
        **LIST_BUCKETS,
        "identity_policies": [document(statement(action="s3:ListAllMyBuckets"))],
    }
    batch, [outcome] = simulate(scenario)
    assert not batch and not isinstance(outcome, PolicyValidationError) and outcome.allowed
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    assert main(["simulate", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "allowed"
