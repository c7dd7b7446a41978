"""Rule: for sts:AssumeRole, sts:AssumeRoleWithWebIdentity and sts:AssumeRoleWithSAML on a role ARN, the
role's trust policy (the scenario's resource policy) must allow the caller, directly or through its account
plus an identity Allow; a same-account identity Allow alone never suffices.

Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html ("IAM role
trust policies and KMS key policies are exceptions to this logic, because they must explicitly allow access
for principals"); https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import Decision, Layer

from .helpers import MLSPACE, PARTNER, ROLE, ROOT, SESSION, decide, document, statement

TARGET = f"arn:aws:iam::{MLSPACE}:role/Analyst"
ASSUME = document(statement(Sid="Assume", action="sts:AssumeRole*", resource=TARGET))
ACTIONS = ("sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML")


def trust(principal: Any) -> dict[str, Any]:
    return document(statement(Sid="Trust", action="sts:AssumeRole*", resource="*", Principal=principal))


@pytest.mark.parametrize("action", ACTIONS)
def test_a_same_account_identity_allow_alone_never_suffices(action: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    result = decide(action=action, resource=TARGET, identity_policies=[ASSUME])
    assert result.decision is Decision.IMPLICIT_DENY
    assert Layer.RESOURCE in result.blocked_by
    assert any("no trust policy" in reason for reason in result.reasons)


@pytest.mark.parametrize("action", ACTIONS)
def test_a_trust_policy_that_does_not_name_the_caller_denies(action: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    Near miss: a trust policy naming another role."""
    result = decide(
        action=action,
        resource=TARGET,
        identity_policies=[ASSUME],
        resource_policy=trust({"AWS": f"arn:aws:iam::{MLSPACE}:role/Other"}),
    )
    assert Layer.RESOURCE in result.blocked_by
    assert any("role trust policy must allow" in reason for reason in result.reasons)


@pytest.mark.parametrize("principal", [{"AWS": SESSION}, {"AWS": ROLE}])
def test_a_trust_policy_naming_the_caller_allows_it(principal: Any) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html: the trust
    policy grants directly, as a resource-based policy."""
    assert decide(action="sts:AssumeRole", resource=TARGET, resource_policy=trust(principal)).allowed


@pytest.mark.parametrize("account", [MLSPACE, ROOT])
def test_a_trust_policy_naming_the_account_needs_an_identity_allow(account: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html: trusting the
    account delegates to its identity policies."""
    policy = trust({"AWS": account})
    assert decide(
        action="sts:AssumeRole", resource=TARGET, resource_policy=policy, identity_policies=[ASSUME]
    ).allowed
    result = decide(action="sts:AssumeRole", resource=TARGET, resource_policy=policy)
    assert result.blocked_by == (Layer.IDENTITY,)


def test_a_role_in_another_account_needs_both_sides() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html"""
    target = f"arn:aws:iam::{PARTNER}:role/Partner"
    identity = document(statement(action="sts:AssumeRole", resource=target))
    policy = trust({"AWS": MLSPACE})
    assert decide(
        action="sts:AssumeRole", resource=target, resource_policy=policy, identity_policies=[identity]
    ).allowed
    assert decide(action="sts:AssumeRole", resource=target, identity_policies=[identity]).blocked_by == (
        Layer.RESOURCE,
    )


def test_other_iam_actions_on_a_role_are_not_trust_decisions() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    Near miss: iam:GetRole on the same role needs only the identity Allow."""
    policy = document(statement(action="iam:GetRole", resource=TARGET))
    assert decide(action="iam:GetRole", resource=TARGET, identity_policies=[policy]).allowed
