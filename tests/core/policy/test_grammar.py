"""Parsing and validation: well-formed documents of every layer parse; malformed ones say what and where."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlspace_s3magic.core.policy import Effect, Layer, PolicyValidationError, parse_policy

from .helpers import ROLE, SESSION, document, statement


def error_for(doc: Any, layer: str = "identity") -> PolicyValidationError:
    with pytest.raises(PolicyValidationError) as caught:
        parse_policy(doc, layer)
    return caught.value


def test_statement_may_be_a_single_object() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": statement(Sid="One")})
    assert [s.name for s in policy.statements] == ["One"]


def test_statement_list_keeps_order_and_names_unnamed_statements_by_position() -> None:
    policy = parse_policy(document(statement(Sid="A"), statement()))
    assert [s.name for s in policy.statements] == ["A", "Statement[1]"]


def test_json_text_is_accepted() -> None:
    policy = parse_policy(
        json.dumps(document(statement(effect="Deny"))), "boundary", label="mlspace-boundary"
    )
    assert policy.layer is Layer.BOUNDARY
    assert policy.label == "mlspace-boundary"
    assert policy.statements[0].effect is Effect.DENY


def test_label_defaults_to_the_layer() -> None:
    assert parse_policy(document(statement()), Layer.SESSION).label == "session"


def test_not_elements_are_recorded() -> None:
    parsed = parse_policy(document(statement(NotAction="iam:*", NotResource="arn:aws:s3:::b"))).statements[0]
    assert parsed.not_action and parsed.not_resource
    assert parsed.actions == ("iam:*",)


def test_resource_policy_with_every_principal_type_parses() -> None:
    principal = {
        "AWS": ["111111111111", "arn:aws:iam::111111111111:root", ROLE, SESSION, "AROAEXAMPLEID1234567"],
        "Service": "s3.amazonaws.com",
        "Federated": "cognito-identity.amazonaws.com",
        "CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
    }
    policy = parse_policy(document(statement(Principal=principal)), "resource")
    element = policy.statements[0].principal
    assert element is not None and len(element.entries) == 8 and not element.negated


@pytest.mark.parametrize("layer", ["resource", "rcp", "endpoint"])
def test_resource_side_layers_need_a_principal(layer: str) -> None:
    error = error_for(document(statement()), layer)
    assert error.path == "Statement[0]"
    assert "Principal" in error.message


@pytest.mark.parametrize("layer", ["identity", "boundary", "session", "scp"])
@pytest.mark.parametrize("element", ["Principal", "NotPrincipal"])
def test_identity_side_layers_refuse_a_principal(layer: str, element: str) -> None:
    error = error_for(document(statement(**{element: "*"})), layer)
    assert error.path == f"Statement[0].{element}"
    assert f"not allowed in a {layer} policy" in error.message


def test_unknown_operator_says_where_and_what() -> None:
    doc = document(
        statement(), statement(), statement(Condition={"StringEqualz": {"aws:SourceVpc": "vpc-1"}})
    )
    error = error_for(doc)
    assert error.path == "Statement[2].Condition"
    assert error.message.startswith("unknown operator StringEqualz")
    assert "did you mean StringEquals?" in error.message
    assert str(error).startswith("Statement[2].Condition: unknown operator StringEqualz")


def test_policy_validation_error_is_a_value_error() -> None:
    assert issubclass(PolicyValidationError, ValueError)


@pytest.mark.parametrize(
    ("doc", "path", "fragment"),
    [
        ([], "", "JSON object"),
        ({"Version": "2012-10-17"}, "", "no Statement"),
        ({"Version": "2012-10-18", "Statement": []}, "Version", "unsupported Version"),
        ({"Statement": [], "Id": 5}, "Id", "string"),
        ({"Statement": [], "statement": []}, "", "unknown element 'statement'; did you mean 'Statement'?"),
        (document("not a statement"), "Statement[0]", "JSON object"),  # type: ignore[arg-type]
        (document({"Action": "s3:GetObject", "Resource": "*"}), "Statement[0].Effect", "got None"),
        (document(statement(effect="allow")), "Statement[0].Effect", "got 'allow'"),
        (document(statement(Effects="Allow")), "Statement[0]", "did you mean 'Effect'?"),
        (document(statement(Sid=7)), "Statement[0].Sid", "string"),
        (
            document({"Effect": "Allow", "Action": "s3:*", "NotAction": "s3:*", "Resource": "*"}),
            "Statement[0]",
            "not both",
        ),
        (document({"Effect": "Allow", "Resource": "*"}), "Statement[0]", "no Action"),
        (document({"Effect": "Allow", "Action": "s3:*"}), "Statement[0]", "no Resource"),
        (document(statement(action=[])), "Statement[0].Action", "non-empty"),
        (document(statement(resource="bucket/key")), "Statement[0].Resource", "not a resource"),
        (document(statement(resource=["*", 3])), "Statement[0].Resource", "non-empty string"),
        (
            document(statement(resource="arn:aws:s3:::b/${}")),
            "Statement[0].Resource",
            "malformed policy variable",
        ),
        (document(statement(Condition=[])), "Statement[0].Condition", "expected an object"),
        (
            document(statement(Condition={"StringEquals": {}})),
            "Statement[0].Condition.StringEquals",
            "condition keys",
        ),
        (
            document(statement(Condition={"StringEquals": {"": "v"}})),
            "Statement[0].Condition.StringEquals.",
            "empty",
        ),
        (
            document(statement(Condition={"StringEquals": {"k": {"a": 1}}})),
            "Statement[0].Condition.StringEquals.k",
            "string, number or boolean",
        ),
        (
            document(statement(Condition={"ForSomeValues:StringEquals": {"k": "v"}})),
            "Statement[0].Condition",
            "ForAnyValue: and ForAllValues:",
        ),
        (
            document(statement(Condition={"NullIfExists": {"k": "true"}})),
            "Statement[0].Condition",
            "Null takes no IfExists",
        ),
    ],
)
def test_malformed_documents_name_the_element(doc: Any, path: str, fragment: str) -> None:
    error = error_for(doc)
    assert error.path == path
    assert fragment in error.message


@pytest.mark.parametrize(
    ("action", "path"),
    [(["s3:GetObject", "s3GetObject"], "Statement[0].Action[1]"), ("s3:Get Object", "Statement[0].Action")],
)
def test_a_bucket_policy_action_that_names_no_action_is_refused(action: Any, path: str) -> None:
    """S3 refuses to store it; identity-side layers store it (see test_rule_malformed_actions.py)."""
    error = error_for(document(statement(action=action, Principal="*")), "resource")
    assert error.path == path
    assert "not an action" in error.message


@pytest.mark.parametrize(
    ("operator", "value", "path_suffix", "expected"),
    [
        ("NumericLessThan", "ten", "", "a number"),
        ("NumericEquals", ["1", "NaN"], "[1]", "a number"),
        ("DateGreaterThan", "yesterday", "", "ISO 8601"),
        ("Bool", "yes", "", '"true" or "false"'),
        ("Null", "maybe", "", '"true" or "false"'),
        ("IpAddress", "10.0.0.300/24", "", "CIDR"),
        ("NotIpAddress", ["10.0.0.0/8", "2001:db8::zz/32"], "[1]", "CIDR"),
        ("BinaryEquals", "not base64!", "", "base64"),
    ],
)
def test_condition_values_are_checked_for_their_operator(
    operator: str, value: Any, path_suffix: str, expected: str
) -> None:
    error = error_for(document(statement(Condition={operator: {"s3:max-keys": value}})))
    assert error.path == f"Statement[0].Condition.{operator}.s3:max-keys{path_suffix}"
    assert error.message.startswith(f"{operator}: expected")
    assert expected in error.message


@pytest.mark.parametrize(
    "operator",
    [
        "StringEquals",
        "stringequals",
        "StringNotEqualsIgnoreCase",
        "StringLikeIfExists",
        "ForAnyValue:StringLike",
        "ForAllValues:StringNotEquals",
        "NumericGreaterThanEqualsIfExists",
        "DateLessThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddressIfExists",
        "ArnLike",
        "ArnNotEquals",
        "Null",
    ],
)
def test_every_operator_family_parses(operator: str) -> None:
    values = {
        "Numeric": "1",
        "Date": "2025-01-01T00:00:00Z",
        "Bool": "true",
        "Binary": "QmluYXJ5",
        "IpAddress": "10.0.0.0/8",
        "NotIp": "10.0.0.0/8",
        "Null": "true",
    }
    base = operator.split(":")[-1]
    value = next((v for prefix, v in values.items() if base.startswith(prefix)), "text")
    parsed = parse_policy(document(statement(Condition={operator: {"k": value}}))).statements[0]
    assert parsed.conditions[0].operator.name == operator


@pytest.mark.parametrize(
    ("principal", "fragment"),
    [
        ({"AWS": "arn:aws:iam::111111111111:role/*"}, "cannot hold wildcards"),
        ({"AWS": f"{SESSION[:-9]}*"}, "cannot hold wildcards"),
        ({"AWS": "alice"}, "not an AWS principal"),
        ({"AWS": "arn:aws:s3:::bucket"}, "not an AWS principal"),
        ({"Aws": "111111111111"}, "unknown principal type 'Aws'"),
        ({"AWS": []}, "empty"),
        ({"AWS": [""]}, "non-empty string"),
        ({}, "expected"),
        ("anyone", "expected"),
    ],
)
def test_malformed_principals(principal: Any, fragment: str) -> None:
    error = error_for(document(statement(Principal=principal)), "resource")
    assert error.path.startswith("Statement[0].Principal")
    assert fragment in error.message


def test_principal_path_points_into_the_list() -> None:
    error = error_for(document(statement(Principal={"AWS": ["111111111111", "nope"]})), "resource")
    assert error.path == "Statement[0].Principal.AWS[1]"


def test_principal_and_not_principal_together_are_refused() -> None:
    error = error_for(document(statement(Principal="*", NotPrincipal="*")), "resource")
    assert "not both" in error.message


def test_invalid_json_text_reports_the_position() -> None:
    error = error_for('{"Statement": [}')
    assert error.path == ""
    assert "not valid JSON" in error.message and "line 1" in error.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"Statement": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"Version": ' + "7" * 5000 + ', "Statement": []}', "integer string conversion"),
    ],
)
def test_json_text_that_json_loads_refuses_without_a_decode_error_is_a_validation_error(
    text: str, expected: str
) -> None:
    error = error_for(text)
    assert error.path == ""
    assert "not valid JSON" in error.message and expected in error.message


def test_unknown_layer_is_refused() -> None:
    error = error_for(document(statement()), "bucket")
    assert "unknown policy layer 'bucket'" in error.message


def test_json_numbers_and_booleans_are_condition_text() -> None:
    parsed = parse_policy(document(statement(Condition={"Bool": {"aws:SecureTransport": False}})))
    assert parsed.statements[0].conditions[0].values[0].text == "false"


def test_error_within_prefixes_the_path() -> None:
    inner = PolicyValidationError("Statement[0].Effect", "bad")
    assert inner.within("identity_policies[0]").path == "identity_policies[0].Statement[0].Effect"
    assert PolicyValidationError("", "bad").within("session_policy").path == "session_policy"
    assert inner.within("") is inner


@pytest.mark.parametrize(
    "doc",
    [
        None,
        5,
        "null",
        {"Statement": 5},
        {"Statement": [None]},
        {1: 2},
        {"Statement": {1: "Allow"}},
        {"Version": ["2012-10-17"], "Statement": []},
        document(statement(action={"a": 1})),
        document(statement(Condition={"StringEquals": {1: "x"}})),
        document(statement(Condition={"StringEquals": "x"})),
        document(statement(Condition={"Bool": {"k": None}})),
    ],
)
def test_odd_input_gives_a_validation_error_not_a_traceback(doc: Any) -> None:
    assert isinstance(error_for(doc), PolicyValidationError)


@pytest.mark.parametrize("principal", [{"AWS": {"x": 1}}, {"AWS": [None]}, {"Service": 3}, ["*"]])
def test_odd_principals_give_a_validation_error(principal: Any) -> None:
    assert error_for(document(statement(Principal=principal)), "resource").path.startswith(
        "Statement[0].Principal"
    )
