"""Condition operators and AWS's rules for missing keys, IfExists, set operators, ORs and ANDs."""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import parse_policy
from mlspace_s3magic.core.policy.conditions import conditions_hold
from mlspace_s3magic.core.policy.request import ContextValue, RequestContext

from .helpers import document, statement


def holds(condition: dict[str, Any], context: dict[str, ContextValue], version: str = "2012-10-17") -> bool:
    parsed = parse_policy(document(statement(Condition=condition), version=version))
    return conditions_hold(parsed.statements[0].conditions, RequestContext(context), [])


VPC = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        (VPC, {"aws:SourceVpc": "vpc-1"}, True),
        (VPC, {"AWS:SOURCEVPC": "vpc-1"}, True),
        (VPC, {"aws:SourceVpc": "VPC-1"}, False),
        (VPC, {}, False),
        ({"StringEquals": {"AWS:sourcevpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, True),
        ({"StringEquals": {"aws:SourceVpc": ["vpc-2", "vpc-1"]}}, {"aws:SourceVpc": "vpc-1"}, True),
        ({"StringEquals": {"aws:SourceVpc": "vpc-*"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"StringEqualsIgnoreCase": {"aws:SourceVpc": "VPC-1"}}, {"aws:SourceVpc": "vpc-1"}, True),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-2"}, True),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"StringNotEquals": {"aws:SourceVpc": ["vpc-1", "vpc-2"]}}, {"aws:SourceVpc": "vpc-2"}, False),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {}, True),
        ({"StringNotEqualsIgnoreCase": {"aws:SourceVpc": "VPC-1"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"StringLike": {"s3:prefix": "datasets/*"}}, {"s3:prefix": "datasets/iris/"}, True),
        ({"StringLike": {"s3:prefix": "datasets/*"}}, {"s3:prefix": "Datasets/iris/"}, False),
        ({"StringLike": {"s3:prefix": ["", "datasets/?ris/"]}}, {"s3:prefix": "datasets/iris/"}, True),
        ({"StringLike": {"s3:prefix": "datasets/*"}}, {}, False),
        ({"StringNotLike": {"s3:prefix": "private/*"}}, {"s3:prefix": "datasets/"}, True),
        ({"StringNotLike": {"s3:prefix": "private/*"}}, {"s3:prefix": "private/bob/"}, False),
        ({"StringNotLike": {"s3:prefix": "private/*"}}, {}, True),
    ],
)
def test_string_operators(
    condition: dict[str, Any], context: dict[str, ContextValue], expected: bool
) -> None:
    assert holds(condition, context) is expected


def test_keys_and_operators_are_anded() -> None:
    condition = {
        "StringEquals": {"aws:SourceVpc": "vpc-1", "aws:PrincipalTag/project": "demo"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    everything: dict[str, ContextValue] = {
        "aws:SourceVpc": "vpc-1",
        "aws:PrincipalTag/project": "demo",
        "aws:SecureTransport": "true",
    }
    assert holds(condition, everything)
    for missing in everything:
        assert not holds(condition, {k: v for k, v in everything.items() if k != missing})


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-2"}, False),
        ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, True),
        ({"NumericLessThanIfExists": {"s3:max-keys": "10"}}, {}, True),
        ({"NumericLessThanIfExists": {"s3:max-keys": "10"}}, {"s3:max-keys": "20"}, False),
        ({"StringNotEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, {}, True),
        ({"ArnLikeIfExists": {"aws:SourceArn": "arn:aws:s3:::b"}}, {}, True),
    ],
)
def test_if_exists(condition: dict[str, Any], context: dict[str, ContextValue], expected: bool) -> None:
    assert holds(condition, context) is expected


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "user"]}}, {}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "user"]}}, {"aws:TagKeys": ()}, True),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "user"]}},
            {"aws:TagKeys": ("user",)},
            True,
        ),
        (
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "user"]}},
            {"aws:TagKeys": ("user", "cost")},
            False,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}}, {}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}}, {"aws:TagKeys": ()}, False),
        (
            {"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}},
            {"aws:TagKeys": ("cost", "project")},
            True,
        ),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["project"]}}, {"aws:TagKeys": ("cost",)}, False),
        (
            {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["project"]}},
            {"aws:TagKeys": ("project", "x")},
            True,
        ),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["project"]}}, {"aws:TagKeys": ("project",)}, False),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["project"]}}, {}, False),
        ({"ForAllValues:StringNotLike": {"aws:TagKeys": ["sys*"]}}, {"aws:TagKeys": ("a", "b")}, True),
        ({"ForAllValues:StringNotLike": {"aws:TagKeys": ["sys*"]}}, {"aws:TagKeys": ("a", "system")}, False),
        (
            {"ForAllValues:StringLike": {"aws:TagKeys": ["pro*", "us?r"]}},
            {"aws:TagKeys": ("project", "user")},
            True,
        ),
        ({"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["project"]}}, {}, True),
        ({"StringEquals": {"aws:TagKeys": "project"}}, {"aws:TagKeys": ("cost", "project")}, True),
        ({"StringNotEquals": {"aws:TagKeys": "project"}}, {"aws:TagKeys": ("cost", "project")}, False),
    ],
)
def test_set_operators(condition: dict[str, Any], context: dict[str, ContextValue], expected: bool) -> None:
    assert holds(condition, context) is expected


@pytest.mark.parametrize(
    ("value", "context", "expected"),
    [
        ("true", {}, True),
        ("true", {"aws:TokenIssueTime": "2025-01-01T00:00:00Z"}, False),
        ("false", {"aws:TokenIssueTime": "2025-01-01T00:00:00Z"}, True),
        ("false", {}, False),
        ("TRUE", {}, True),
        (True, {}, True),
        (["true", "false"], {}, True),
        ("true", {"aws:TokenIssueTime": ()}, True),
    ],
)
def test_null(value: Any, context: dict[str, ContextValue], expected: bool) -> None:
    assert holds({"Null": {"aws:TokenIssueTime": value}}, context) is expected


@pytest.mark.parametrize(
    ("value", "request_value", "expected"),
    [
        ("true", "true", True),
        ("true", "True", True),
        (True, "true", True),
        (False, "false", True),
        ("false", "true", False),
        ("true", "yes", False),
    ],
)
def test_bool(value: Any, request_value: str, expected: bool) -> None:
    assert holds({"Bool": {"aws:SecureTransport": value}}, {"aws:SecureTransport": request_value}) is expected


def test_bool_on_missing_key_is_false() -> None:
    assert not holds({"Bool": {"aws:SecureTransport": "false"}}, {})


@pytest.mark.parametrize(
    ("operator", "value", "request_value", "expected"),
    [
        ("NumericEquals", "10", "10", True),
        ("NumericEquals", "10", "10.0", True),
        ("NumericEquals", 10, "10", True),
        ("NumericEquals", "10", "11", False),
        ("NumericNotEquals", "10", "11", True),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "2.5", "2.51", True),
        ("NumericGreaterThan", 2.5, "2.5", False),
        ("NumericGreaterThanEquals", "-1", "-1", True),
        ("NumericLessThan", "10", "ten", False),
        ("NumericLessThan", "1e3", "999", True),
    ],
)
def test_numeric(operator: str, value: Any, request_value: str, expected: bool) -> None:
    assert holds({operator: {"s3:max-keys": value}}, {"s3:max-keys": request_value}) is expected


@pytest.mark.parametrize(
    ("operator", "value", "request_value", "expected"),
    [
        ("DateLessThan", "2025-06-30T00:00:00Z", "2025-06-29T23:59:59Z", True),
        ("DateLessThan", "2025-06-30T00:00:00Z", "2025-06-30T00:00:00Z", False),
        ("DateLessThanEquals", "2025-06-30T00:00:00Z", "2025-06-30T00:00:00Z", True),
        ("DateGreaterThan", "2025-06-30", "2025-06-30T00:00:01Z", True),
        ("DateGreaterThanEquals", "2025-06-30T02:00:00+02:00", "2025-06-30T00:00:00Z", True),
        ("DateEquals", "2025-06-30T00:00:00Z", "1751241600", True),
        ("DateEquals", "1751241600", "2025-06-30T00:00:00Z", True),
        ("DateNotEquals", "1751241600", "2025-06-30T00:00:01Z", True),
        ("DateLessThan", 1751241600, "1751241599", True),
        ("DateLessThan", "2025-06-30T00:00:00.500Z", "2025-06-30T00:00:00Z", True),
        ("DateLessThan", "2025-06-30T00:00:00Z", "not a date", False),
    ],
)
def test_date(operator: str, value: Any, request_value: str, expected: bool) -> None:
    assert holds({operator: {"aws:CurrentTime": value}}, {"aws:CurrentTime": request_value}) is expected


@pytest.mark.parametrize(
    ("operator", "value", "request_value", "expected"),
    [
        ("IpAddress", "203.0.113.0/24", "203.0.113.7", True),
        ("IpAddress", "203.0.113.0/24", "203.0.114.7", False),
        ("IpAddress", "203.0.113.7", "203.0.113.7", True),
        ("IpAddress", "203.0.113.7/24", "203.0.113.99", True),
        ("IpAddress", "2001:db8:1234::/48", "2001:db8:1234:ffff::1", True),
        ("IpAddress", "2001:db8:1234::/48", "2001:db8:1235::1", False),
        ("IpAddress", "2001:DB8::/32", "2001:db8::1", True),
        ("IpAddress", "203.0.113.0/24", "2001:db8::1", False),
        ("IpAddress", ["203.0.113.0/24", "2001:db8::/32"], "2001:db8::1", True),
        ("IpAddress", "203.0.113.0/24", "garbage", False),
        ("NotIpAddress", "203.0.113.0/24", "198.51.100.1", True),
        ("NotIpAddress", "203.0.113.0/24", "203.0.113.1", False),
        ("NotIpAddress", "2001:db8::/32", "2001:db8::5", False),
    ],
)
def test_ip_address(operator: str, value: Any, request_value: str, expected: bool) -> None:
    assert holds({operator: {"aws:SourceIp": value}}, {"aws:SourceIp": request_value}) is expected


def test_not_ip_address_on_a_missing_key_is_true() -> None:
    assert holds({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {})


@pytest.mark.parametrize(
    ("value", "request_value", "expected"),
    [("QmluYXJ5VmFsdWU=", "QmluYXJ5VmFsdWU=", True), ("QmluYXJ5VmFsdWU=", "T3RoZXI=", False)],
)
def test_binary_equals(value: str, request_value: str, expected: bool) -> None:
    assert holds({"BinaryEquals": {"k": value}}, {"k": request_value}) is expected


ROLE_ARN = "arn:aws:iam::111111111111:role/MLSpace-demo-ab12"


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("ArnEquals", ROLE_ARN, True),
        ("ArnEquals", "arn:aws:iam::111111111111:role/MLSpace-*", True),
        ("ArnLike", "arn:aws:iam::*:role/MLSpace-*", True),
        ("ArnLike", "arn:aws:iam::111111111111:role/mlspace-*", False),
        ("ArnLike", "arn:aws:iam::*", False),
        ("ArnNotEquals", ROLE_ARN, False),
        ("ArnNotLike", "arn:aws:iam::*:role/Admin*", True),
    ],
)
def test_arn_operators(operator: str, value: str, expected: bool) -> None:
    assert holds({operator: {"aws:PrincipalArn": value}}, {"aws:PrincipalArn": ROLE_ARN}) is expected


def test_arn_not_like_on_a_missing_key_is_true() -> None:
    assert holds({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::b"}}, {})


def test_policy_variables_in_condition_values() -> None:
    condition = {
        "StringLike": {"s3:prefix": ["home/${aws:username}/*", "shared/${aws:PrincipalTag/project}/*"]}
    }
    keys = {"aws:username": "alice", "aws:PrincipalTag/project": "demo"}
    assert holds(condition, {**keys, "s3:prefix": "home/alice/notes/"})
    assert holds(condition, {**keys, "s3:prefix": "shared/demo/"})
    assert not holds(condition, {**keys, "s3:prefix": "home/bob/"})


def test_default_value_stands_in_for_a_missing_key() -> None:
    condition = {"StringEquals": {"s3:prefix": "home/${aws:username, 'anonymous'}/"}}
    assert holds(condition, {"s3:prefix": "home/anonymous/"})


def test_escaped_star_is_a_literal_in_string_like() -> None:
    condition = {"StringLike": {"s3:prefix": "literal${*}"}}
    assert holds(condition, {"s3:prefix": "literal*"})
    assert not holds(condition, {"s3:prefix": "literally"})


def test_variables_are_literal_text_in_a_2008_policy() -> None:
    condition = {"StringEquals": {"s3:prefix": "${aws:username}"}}
    assert holds(condition, {"s3:prefix": "${aws:username}", "aws:username": "alice"}, version="2008-10-17")
    assert not holds(condition, {"s3:prefix": "alice", "aws:username": "alice"}, version="2008-10-17")


def test_variables_are_not_substituted_for_numeric_operators() -> None:
    with pytest.raises(ValueError, match="a number"):
        holds({"NumericLessThan": {"s3:max-keys": "${aws:username}"}}, {})


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["home/${aws:username}/"], False), (["home/x/", "home/${aws:username}/"], True)],
)
def test_a_value_whose_variable_has_no_value_matches_nothing_whatever_the_order(
    values: list[str], expected: bool
) -> None:
    """https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-no-value
    (more in test_rule_variables_without_value.py)."""
    assert holds({"StringEquals": {"s3:prefix": values}}, {"s3:prefix": "home/x/"}) is expected
    assert holds({"StringEquals": {"s3:prefix": values[::-1]}}, {"s3:prefix": "home/x/"}) is expected


def test_an_empty_value_list_matches_nothing_and_its_negation_everything() -> None:
    """MLSpace deploys instance-type constraints with an empty list; IAM accepts it."""
    from mlspace_s3magic.core.policy import (
        Decision,
        Layer,
        PolicyLayers,
        Principal,
        Request,
        evaluate,
        parse_policy,
    )

    def decide(operator: str) -> Decision:
        policy = parse_policy(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "*",
                        "Condition": {operator: {"aws:SourceVpc": []}},
                    }
                ],
            },
            Layer.IDENTITY,
            "p",
        )
        request = Request(
            Principal.from_arn("arn:aws:iam::111111111111:user/u"),
            "s3:GetObject",
            "arn:aws:s3:::b/k",
            "111111111111",
            {"aws:SourceVpc": "vpc-1"},
        )
        return evaluate(request, PolicyLayers(identity=(policy,))).decision

    assert decide("StringEquals") is Decision.IMPLICIT_DENY
    assert decide("StringLike") is Decision.IMPLICIT_DENY
    assert decide("StringNotEquals") is Decision.ALLOWED
    assert decide("StringNotLike") is Decision.ALLOWED
