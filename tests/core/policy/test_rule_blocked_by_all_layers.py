"""Rule: blocked_by names every layer that blocks, the implicit ones too when an explicit Deny decides, in
AWS's order, so a user who fixes one learns of the others.

Source: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html (the
evaluation flow: an explicit Deny, then SCPs, resource-based, identity-based, boundaries, session policies).
"""

from __future__ import annotations

from typing import Any

from mlspace_s3magic.core.policy import Decision, Layer

from .helpers import PARTNER, SHARED_OBJECT, decide, document, statement

GET = document(statement(Sid="Get"))
DENY_GET = document(statement(effect="Deny", Sid="NoGet"))
NOTHING_FOR_S3 = document(statement(action="ec2:*"))


def test_an_scp_without_allow_and_a_boundary_deny_are_both_named() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    result = decide(identity_policies=[GET], permissions_boundary=DENY_GET, scps=[[NOTHING_FOR_S3]])
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.SCP, Layer.BOUNDARY)
    assert any("Explicit Deny" in reason for reason in result.reasons)
    assert any("service control policy" in reason for reason in result.reasons)


def test_a_missing_identity_allow_is_named_beside_a_deny() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    result = decide(resource_policy=document(statement(effect="Deny", Principal="*")))
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.RESOURCE, Layer.IDENTITY)


def test_cross_account_gaps_are_named_beside_a_deny() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html"""
    cross: dict[str, Any] = {"resource": SHARED_OBJECT, "resource_account": PARTNER}
    result = decide(**cross, identity_policies=[document(statement(), statement(effect="Deny", Sid="NoGet"))])
    assert result.blocked_by == (Layer.RESOURCE, Layer.IDENTITY)


def test_a_deny_alone_names_only_its_layer() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
    Near miss: everything else allows, so only the Deny's layer is named and no other reason is given."""
    boundary = document(statement(action="s3:*"), statement(effect="Deny", Sid="NoGet"))
    result = decide(identity_policies=[GET], permissions_boundary=boundary)
    assert result.blocked_by == (Layer.BOUNDARY,)
    assert all(reason.startswith("Explicit Deny") for reason in result.reasons)


def test_the_order_is_aws_s_whatever_the_deny() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
    result = decide(
        identity_policies=[DENY_GET],
        scps=[[NOTHING_FOR_S3]],
        endpoint_policy=document(statement(action="ec2:*", Principal="*")),
    )
    assert result.blocked_by == (Layer.SCP, Layer.ENDPOINT, Layer.IDENTITY)
