"""Rule: in identity, boundary, session and SCP policies an action entry that names no action ("s3:",
"s3:GetObject,PutObject", stray spaces) is stored by IAM and evaluated as matching nothing: an Action entry
never matches, a NotAction entry excludes nothing, and a warning names the entry. What AWS refuses to store
stays refused.

Sources: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_policy-validator.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import Decision, Layer, PolicyValidationError, parse_policy

from .helpers import USER, allow_all, decide, document, statement

NO_ACTIONS = ("s3:", "s3:GetObject,PutObject", " s3:GetObject", "s3:GetObject ")


@pytest.mark.parametrize("entry", NO_ACTIONS)
def test_the_policy_is_stored_with_a_warning_naming_the_entry(entry: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html"""
    policy = parse_policy(document(statement(action=["s3:ListBucket", entry])), "identity", "mine")
    assert policy.statements[0].actions == ("s3:ListBucket",)
    [warning] = policy.warnings
    assert warning.startswith("Statement[0].Action[1]:") and repr(entry) in warning


@pytest.mark.parametrize("entry", NO_ACTIONS)
def test_an_action_entry_that_names_no_action_never_matches(entry: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html"""
    result = decide(identity_policies=[document(statement(Sid="Typo", action=entry))])
    assert result.blocked_by == (Layer.IDENTITY,)
    assert any(note.startswith("identity_policies[0], Statement[0].Action:") for note in result.notes)


def test_the_other_entries_of_the_statement_still_match() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
    Near miss: the statement's valid entry grants."""
    assert decide(identity_policies=[document(statement(action=["s3:", "s3:GetObject"]))]).allowed


def test_a_not_action_entry_that_names_no_action_excludes_nothing() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html"""
    policy = document(
        statement(action="s3:*"),
        statement(effect="Deny", Sid="AllButReads", NotAction=["s3:GetObject ", "s3:ListBucket"]),
    )
    result = decide(identity_policies=[policy])
    assert result.decision is Decision.EXPLICIT_DENY
    assert decide(
        action="s3:ListBucket", identity_policies=[policy]
    ).allowed  # the valid entry still excludes


@pytest.mark.parametrize(
    ("key", "value", "layer"),
    [
        ("permissions_boundary", document(statement(action="s3:Get Object")), Layer.BOUNDARY),
        ("session_policy", document(statement(action="s3:Get Object")), Layer.SESSION),
        ("scps", [[document(statement(action="s3:Get Object"))]], Layer.SCP),
    ],
)
def test_boundaries_session_policies_and_scps_are_read_the_same(key: str, value: Any, layer: Layer) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_syntax.html"""
    result = decide(identity_policies=[allow_all()], **{key: value})
    assert result.blocked_by == (layer,)
    assert any("'s3:Get Object' names no action" in note for note in result.notes)


def test_the_warning_comes_only_with_requests_the_policy_takes_part_in() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_session.html
    Near miss: an IAM user has no session policy, so its warning is not repeated."""
    result = decide(
        principal=USER, identity_policies=[allow_all()], session_policy=document(statement(action="s3:"))
    )
    assert result.allowed
    assert not any("names no action" in note for note in result.notes)


@pytest.mark.parametrize(
    ("doc", "layer", "path", "fragment"),
    [
        (
            document(statement(action="s3:", Principal="*")),
            "resource",
            "Statement[0].Action",
            "not an action",
        ),
        (document(statement(action="s3:,", Principal="*")), "rcp", "Statement[0].Action", "not an action"),
        (
            document(statement(Principal="arn:aws:iam::111111111111:root")),
            "resource",
            "Statement[0].Principal",
            "expected",
        ),
        (document(statement()), "resource", "Statement[0]", "needs a Principal"),
        (document(statement()), "endpoint", "Statement[0]", "needs a Principal"),
        (document(statement(Principal="*")), "identity", "Statement[0].Principal", "not allowed"),
    ],
)
def test_what_aws_refuses_to_store_stays_refused(doc: Any, layer: str, path: str, fragment: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html (a
    Principal is "*" or an object; resource-based policies need one, identity policies take none)."""
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(doc, layer)
    assert caught.value.path == path
    assert fragment in caught.value.message
