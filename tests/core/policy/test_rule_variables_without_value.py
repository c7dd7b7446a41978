"""Rule: a policy variable with no value (its key absent or multivalued, no default) never disables a whole
statement: only the Resource entry or condition value holding it matches nothing.

Every case follows https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import Decision, Layer

from .helpers import DATA_BUCKET, DATA_OBJECT, SESSION, USER, decide, document, statement

HOME = f"arn:aws:s3:::{DATA_BUCKET}/home/${{aws:username}}/*"
HOME_OBJECT = f"arn:aws:s3:::{DATA_BUCKET}/home/alice/notes.txt"
PROJECT_OBJECTS = f"arn:aws:s3:::{DATA_BUCKET}/project/*"
OTHER_OBJECT = f"arn:aws:s3:::{DATA_BUCKET}/global/readme.txt"


def test_the_other_resource_entries_still_grant() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    A session has no aws:username: the home entry matches nothing, the project entry still grants."""
    policy = document(statement(Sid="Mine", resource=[HOME, PROJECT_OBJECTS]))
    result = decide(principal=SESSION, identity_policies=[policy])
    assert result.allowed
    assert any("Mine" in note and HOME in note and "matches nothing" in note for note in result.notes)


def test_the_entry_holding_the_variable_matches_nothing() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Near miss: the resource only the home entry could cover stays denied for a session."""
    policy = document(statement(Sid="Mine", resource=[HOME, PROJECT_OBJECTS]))
    result = decide(principal=SESSION, resource=HOME_OBJECT, identity_policies=[policy])
    assert result.decision is Decision.IMPLICIT_DENY


def test_with_a_value_the_entry_matches() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Near miss: an IAM user has aws:username, so the same entry covers its home."""
    policy = document(statement(resource=[HOME, PROJECT_OBJECTS]))
    result = decide(principal=USER, resource=HOME_OBJECT, identity_policies=[policy])
    assert result.allowed
    assert not any("matches nothing" in note for note in result.notes)


def test_a_deny_keeps_its_other_entries() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    A Deny listing a home entry and the project prefix still denies the project prefix."""
    policy = document(
        statement(action="s3:*"),
        statement(effect="Deny", Sid="NoProject", resource=[HOME, PROJECT_OBJECTS]),
    )
    result = decide(principal=SESSION, identity_policies=[policy])
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.statements[0].statement == "NoProject"


@pytest.mark.parametrize(("resource", "denied"), [(DATA_OBJECT, False), (OTHER_OBJECT, True)])
def test_in_not_resource_the_entry_excludes_nothing(resource: str, denied: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Deny NotResource [home, project]: the home entry excludes nothing, the project entry still excludes."""
    policy = document(
        statement(action="s3:*"),
        statement(effect="Deny", Sid="OnlyProject", NotResource=[HOME, PROJECT_OBJECTS]),
    )
    result = decide(principal=SESSION, resource=resource, identity_policies=[policy])
    assert (result.decision is Decision.EXPLICIT_DENY) is denied
    assert any("NotResource entry" in note and HOME in note for note in result.notes)


def test_a_multivalued_key_has_no_value_as_a_variable() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    (and reference_policies_condition-single-vs-multi-valued-context-keys.html: multivalued keys cannot be
    variables): the entry with ${aws:TagKeys} matches nothing, the other still grants."""
    policy = document(statement(resource=[f"arn:aws:s3:::{DATA_BUCKET}/${{aws:TagKeys}}/*", PROJECT_OBJECTS]))
    result = decide(identity_policies=[policy], context={"aws:TagKeys": ["a", "b"]})
    assert result.allowed
    assert any("${aws:TagKeys}" in note for note in result.notes)


def test_a_default_is_a_value() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-default-values
    Near miss: with a default the variable has a value, and no note is made."""
    policy = document(statement(resource=f"arn:aws:s3:::{DATA_BUCKET}/home/${{aws:username, 'shared'}}/*"))
    result = decide(resource=f"arn:aws:s3:::{DATA_BUCKET}/home/shared/x", identity_policies=[policy])
    assert result.allowed
    assert not any("matches nothing" in note for note in result.notes)


PREFIXES = {"StringLike": {"s3:prefix": ["home/${aws:username}/*", "global/*"]}}


@pytest.mark.parametrize(("prefix", "allowed"), [("global/models/", True), ("home/alice/", False)])
def test_a_positive_operator_uses_the_other_values(prefix: str, allowed: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    StringLike with a value holding ${aws:username}: for a session that value matches nothing, the other
    value still matches (and "home/alice/" is the near miss)."""
    policy = document(
        statement(
            Sid="List", action="s3:ListBucket", resource=f"arn:aws:s3:::{DATA_BUCKET}", Condition=PREFIXES
        )
    )
    result = decide(
        action="s3:ListBucket",
        resource=f"arn:aws:s3:::{DATA_BUCKET}",
        identity_policies=[policy],
        context={"s3:prefix": prefix},
    )
    assert result.allowed is allowed
    assert any("List" in note and "home/${aws:username}/*" in note for note in result.notes)


AWS_EXAMPLE = document(
    statement(action="s3:GetObject"),
    statement(
        effect="Deny",
        Sid="TeamOnly",
        action="s3:GetObject",
        resource=f"arn:aws:s3:::{DATA_BUCKET}/*",
        Condition={"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
    ),
)


def test_the_aws_example_denies_an_untagged_caller() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    AWS's own example: the caller has no Team tag, so the object's Team tag is "not equal" to nothing and the
    Deny applies."""
    result = decide(identity_policies=[AWS_EXAMPLE], context={"s3:ExistingObjectTag/Team": "ml"})
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.blocked_by == (Layer.IDENTITY,)
    assert any("TeamOnly" in note and "${aws:PrincipalTag/Team}" in note for note in result.notes)


@pytest.mark.parametrize(("team", "denied"), [("ml", False), ("data", True)])
def test_the_aws_example_with_a_tagged_caller(team: str, denied: bool) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Near miss: a caller tagged like the object is let through; one tagged otherwise is denied."""
    context = {"s3:ExistingObjectTag/Team": "ml", "aws:PrincipalTag/Team": team}
    result = decide(identity_policies=[AWS_EXAMPLE], context=context)
    assert (result.decision is Decision.EXPLICIT_DENY) is denied


@pytest.mark.parametrize(
    ("operator", "key", "value"),
    [
        ("StringNotEquals", "s3:prefix", "home/"),
        ("StringNotEqualsIgnoreCase", "s3:prefix", "home/"),
        ("StringNotLike", "s3:prefix", "home/"),
        ("ArnNotEquals", "aws:SourceArn", "arn:aws:s3:::b"),
        ("ArnNotLike", "aws:SourceArn", "arn:aws:s3:::b"),
    ],
)
def test_a_lone_such_value_makes_a_negated_operator_true_when_the_key_is_present(
    operator: str, key: str, value: str
) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Negated operators (and their IgnoreCase forms) find the request value not equal to the missing value."""
    policy = document(statement(Condition={operator: {key: "${aws:PrincipalTag/missing}"}}))
    assert decide(identity_policies=[policy], context={key: value}).allowed


def test_a_negated_operator_still_compares_the_other_values() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    Near miss: StringNotEquals ["home/", missing] is false for "home/", which equals the other value."""
    condition: dict[str, Any] = {"StringNotEquals": {"s3:prefix": ["home/", "${aws:PrincipalTag/missing}"]}}
    policy = document(statement(Condition=condition))
    assert not decide(identity_policies=[policy], context={"s3:prefix": "home/"}).allowed
    assert decide(identity_policies=[policy], context={"s3:prefix": "other/"}).allowed
