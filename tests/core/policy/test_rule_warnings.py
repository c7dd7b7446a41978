"""Rule: warnings (notes, never decisions) where AWS's documentation is silent or the scenario cannot say
enough: a plain operator on a known multivalued key, an S3 gateway endpoint policy naming an account, and a
request resource holding * or ? (taken literally).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import parse_policy
from mlspace_s3magic.core.policy.request import MULTIVALUED_KEYS

from .helpers import DATA_BUCKET, MLSPACE, ROOT, decide, document, statement

GET = document(statement())


@pytest.mark.parametrize("key", ["aws:PrincipalOrgPaths", "aws:TagKeys", "aws:CalledVia", "AWS:TAGKEYS"])
def test_a_plain_operator_on_a_multivalued_key_is_warned_about(key: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    ("Multivalued context keys require a condition set operator")."""
    policy = document(statement(Sid="Paths", Condition={"StringLike": {key: "o-1/*"}}))
    result = decide(identity_policies=[policy], context={key: ["o-1/r-1/", "o-1/r-2/"]})
    assert result.allowed  # a note, not a decision
    assert any(f"Condition.StringLike.{key}" in note and "multivalued" in note for note in result.notes)


@pytest.mark.parametrize(
    "condition",
    [
        {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": "o-1/*"}},
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}},
        {"Null": {"aws:TagKeys": "false"}},
        {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
    ],
)
def test_set_operators_null_and_single_valued_keys_are_not(condition: dict[str, Any]) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
    Near misses: a set operator, Null (which tests presence), a single-valued key."""
    assert parse_policy(document(statement(Condition=condition))).warnings == ()


def test_the_multivalued_keys_are_listed_once_lowered() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html (each key's
    value type)."""
    assert {"aws:principalorgpaths", "aws:tagkeys", "aws:calledvia"} <= MULTIVALUED_KEYS
    assert all(key == key.lower() for key in MULTIVALUED_KEYS)


@pytest.mark.parametrize("account", [MLSPACE, ROOT])
def test_an_endpoint_policy_naming_an_account_is_warned_about(account: str) -> None:
    """https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html#vpc-endpoint-policies-gateway
    (for gateway endpoints an account principal grants the account's root user only)."""
    endpoint = document(statement(action="s3:*", Principal={"AWS": account}))
    result = decide(identity_policies=[GET], endpoint_policy=endpoint)
    assert result.allowed  # evaluated as the whole account: a note, not a decision
    assert any("gateway endpoint" in note and "root user" in note for note in result.notes)


def test_an_endpoint_policy_naming_everyone_is_not() -> None:
    """https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html#vpc-endpoint-policies-gateway
    Near miss: "*" with a condition on the account is what AWS recommends."""
    endpoint = document(
        statement(action="s3:*", Principal="*", Condition={"StringEquals": {"aws:PrincipalAccount": MLSPACE}})
    )
    result = decide(identity_policies=[GET], endpoint_policy=endpoint)
    assert result.allowed
    assert not any("gateway endpoint" in note for note in result.notes)


def test_a_bucket_policy_naming_an_account_is_not() -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html#principal-accounts
    Near miss: in a bucket policy an account principal means the account's identities."""
    policy = document(statement(Principal={"AWS": MLSPACE}))
    assert not any("gateway endpoint" in note for note in decide(resource_policy=policy).notes)


@pytest.mark.parametrize("key", ["logs/*", "logs/day?.txt"])
def test_a_request_resource_with_wildcards_is_taken_literally(key: str) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html (wildcards
    are a policy's; an object key may hold * or ? as characters)."""
    policy = document(statement(resource=f"arn:aws:s3:::{DATA_BUCKET}/logs/*"))
    result = decide(resource=f"arn:aws:s3:::{DATA_BUCKET}/{key}", identity_policies=[policy])
    assert result.allowed
    assert any("takes literally" in note for note in result.notes)


def test_a_literal_resource_and_star_for_a_resourceless_action_are_not() -> None:
    """https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
    Near misses: a plain key, and the "*" of an action that takes no resource."""
    everything = document(statement(action="s3:*"))
    for result in (
        decide(identity_policies=[everything]),
        decide(action="s3:ListAllMyBuckets", resource="*", identity_policies=[everything]),
    ):
        assert result.allowed
        assert not any("literally" in note for note in result.notes)
