"""Rule: every RCP level implicitly holds AWS's RCPFullAWSAccess (allow everything), so a level's own RCPs
can only deny; the scenario format documents it.

Sources: https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html and
https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html
("automatically attached to the organization root, every OU, and every account ... You cannot detach this
policy")
"""

from __future__ import annotations

from typing import Any

from mlspace_s3magic.core.policy import Decision, Layer, scenario

from .helpers import decide, document, statement

GET: dict[str, Any] = {"identity_policies": [document(statement())]}
DENY_PUTS = document(statement(effect="Deny", Sid="NoPuts", action="s3:PutObject", Principal="*"))
ALLOW_KMS_ONLY = document(statement(action="kms:*", Principal="*"))


def test_a_level_without_policies_allows() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html"""
    assert decide(**GET, rcps=[[], []]).allowed


def test_a_level_whose_policies_do_not_mention_the_action_allows() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html
    (RCPFullAWSAccess lets everything pass RCP evaluation)."""
    assert decide(**GET, rcps=[[ALLOW_KMS_ONLY], [DENY_PUTS]]).allowed


def test_a_level_s_deny_still_denies() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html
    Near miss: the Deny matches this action."""
    writes = document(statement(action="s3:*"))
    result = decide(identity_policies=[writes], action="s3:PutObject", rcps=[[], [DENY_PUTS]])
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.RCP,)


def test_rcps_grant_nothing_on_their_own() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html ("No
    permissions are granted by an RCP")."""
    result = decide(rcps=[[document(statement(action="*", Principal="*"))]])
    assert result.blocked_by == (Layer.IDENTITY,)


def test_scp_levels_have_no_implied_policy() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_evaluation.html
    Near miss: an SCP level without an Allow still blocks."""
    assert decide(**GET, scps=[[]]).blocked_by == (Layer.SCP,)


def test_the_scenario_format_documents_it() -> None:
    """https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps_evaluation.html"""
    assert scenario.__doc__ is not None and "RCPFullAWSAccess" in scenario.__doc__
