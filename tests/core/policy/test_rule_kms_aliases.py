"""Rule: only KMS key ARNs have key policies. A request on an alias ARN is decided by the caller's side alone
(a resource policy given is ignored with a note), and the reasons say the key behind it needs its key policy.

Sources: https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html (an alias ARN does
not identify a KMS key), https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html (every KMS
key has exactly one key policy), https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html
"""

from __future__ import annotations

from typing import Any

from mlspace_s3magic.core.policy import Decision, Layer

from .helpers import KEY, MLSPACE, SESSION, decide, document, statement

ALIAS = f"arn:aws:kms:us-east-1:{MLSPACE}:alias/project-demo"
ON_ALIASES = document(
    statement(Sid="Aliases", action="kms:*", resource=f"arn:aws:kms:us-east-1:{MLSPACE}:alias/*")
)
KEY_POLICY_NAMING_OTHERS: dict[str, Any] = document(
    statement(action="kms:*", Principal={"AWS": f"arn:aws:iam::{MLSPACE}:role/KeyAdmin"})
)


def test_an_identity_allow_decides_a_request_on_an_alias() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html: access to an alias is
    controlled by IAM policies; it has no key policy."""
    result = decide(action="kms:DescribeKey", resource=ALIAS, identity_policies=[ON_ALIASES])
    assert result.allowed
    assert any("KMS alias" in reason and "key policy" in reason for reason in result.reasons)


def test_a_key_policy_given_for_an_alias_is_ignored_with_a_note() -> None:
    """Key policies belong to keys: https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html"""
    result = decide(
        action="kms:DescribeKey",
        resource=ALIAS,
        identity_policies=[ON_ALIASES],
        resource_policy=KEY_POLICY_NAMING_OTHERS,
    )
    assert result.allowed
    assert any("resource policy was ignored" in note and "alias" in note for note in result.notes)


def test_without_an_identity_allow_the_caller_side_blocks() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html
    Near miss: a key-ARN pattern does not cover the alias."""
    keys_only = document(statement(action="kms:*", resource=f"arn:aws:kms:us-east-1:{MLSPACE}:key/*"))
    result = decide(action="kms:DescribeKey", resource=ALIAS, identity_policies=[keys_only])
    assert result.blocked_by == (Layer.IDENTITY,)
    assert any("needs that key's key policy" in reason for reason in result.reasons)


def test_the_boundary_still_caps_a_request_on_an_alias() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html"""
    result = decide(
        action="kms:DescribeKey",
        resource=ALIAS,
        identity_policies=[ON_ALIASES],
        permissions_boundary=document(statement(action="s3:*")),
    )
    assert result.blocked_by == (Layer.BOUNDARY,)


def test_a_key_arn_still_needs_its_key_policy() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
    Near miss: the same identity Allow on the key's ARN is not enough without the key policy."""
    everything = document(statement(action="kms:*", resource="*"))
    result = decide(action="kms:Decrypt", resource=KEY, identity_policies=[everything])
    assert result.decision is Decision.IMPLICIT_DENY
    assert result.blocked_by == (Layer.RESOURCE,)
    assert decide(action="kms:Decrypt", resource=ALIAS, identity_policies=[everything]).allowed


def test_a_session_caller_is_decided_the_same() -> None:
    """https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html"""
    assert decide(
        principal=SESSION, action="kms:ListResourceTags", resource=ALIAS, identity_policies=[ON_ALIASES]
    ).allowed
