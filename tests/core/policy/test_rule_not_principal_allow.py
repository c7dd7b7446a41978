"""Rule: an Allow with NotPrincipal (which AWS does not support) grants only when none of the caller's
identities (its user or session ARN, its role ARN, its account) is listed, with a note saying so; a Deny with
NotPrincipal keeps AWS's rule (the caller is exempt only when every identity is listed).

Cases follow https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import Decision

from .helpers import MLSPACE, PARTNER, ROLE, ROOT, SESSION, decide, document, statement


def allow_except(listed: Any) -> dict[str, Any]:
    return document(statement(Sid="AllowExcept", NotPrincipal={"AWS": listed}))


def test_a_caller_none_of_whose_identities_is_listed_is_granted_with_a_note() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    ("Using it with Effect Allow is not supported"): evaluated, and said."""
    result = decide(resource_policy=allow_except(f"arn:aws:iam::{PARTNER}:root"))
    assert result.allowed
    assert any(
        note.startswith("resource_policy, Statement[0]") and "does not support" in note
        for note in result.notes
    )


@pytest.mark.parametrize("listed", [[SESSION], [ROLE], [MLSPACE], [ROOT], [SESSION, ROLE, ROOT]])
def test_listing_any_one_identity_withholds_the_grant(listed: list[str]) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    Near misses: the session, the role or the account alone listed is enough for the Allow not to apply."""
    result = decide(resource_policy=allow_except(listed))
    assert result.decision is Decision.IMPLICIT_DENY


def test_not_principal_star_in_an_allow_grants_nobody() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"""
    policy = document(statement(NotPrincipal="*"))
    assert decide(resource_policy=policy).decision is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(("listed", "denied"), [([SESSION], True), ([SESSION, ROLE, ROOT], False)])
def test_a_deny_with_not_principal_is_unchanged(listed: list[str], denied: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    (list the session, the role and the account to exempt a role session): listing the session alone still
    denies it."""
    policy = document(
        statement(Sid="Allow", Principal={"AWS": SESSION}),
        statement(effect="Deny", Sid="DenyExcept", NotPrincipal={"AWS": listed}),
    )
    result = decide(resource_policy=policy)
    assert (result.decision is Decision.EXPLICIT_DENY) is denied
    assert not any("does not support" in note for note in result.notes)
