"""Property tests: the matcher against a reference, the parsers against arbitrary JSON, and the evaluator's
invariants on generated policies. They find what hand-picked examples miss (odd wildcard placement, unusual
JSON shapes, statement order)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspace_s3magic.core.policy import (
    Decision,
    Effect,
    EvaluationResult,
    Layer,
    Policy,
    PolicyLayers,
    PolicyValidationError,
    Principal,
    Request,
    Scenario,
    evaluate,
    evaluate_scenario,
    load_scenarios,
    parse_policy,
)
from mlspace_s3magic.core.policy.matching import (
    action_matches,
    arn_like,
    literal_head,
    resource_head,
    resource_matches,
    resources_glob,
    string_like,
)
from mlspace_s3magic.core.policy.variables import Chunks

from .helpers import DATA_BUCKET, MLSPACE, PARTNER, ROLE, ROOT, SESSION, USER

# Sized to keep the whole file near eight seconds; no deadline, since the first examples compile patterns.
FAST = settings(max_examples=300, deadline=None)
SLOW = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the wildcard matcher against a reference ------------------------------------------------------------

ALPHABET = "aAb:/.*?"
ARN_PARTS = 6

# A token of the reference: ("lit", char) must equal the character; ("one", _) takes one character and
# ("run", _) any number; ``cross`` says whether they may take a colon.
Token = tuple[str, str, bool]


def _flatten(chunks: Chunks) -> list[tuple[str, bool]]:
    return [(char, wild) for text, wild in chunks for char in text]


def _glob_tokens(chunks: Chunks) -> list[Token]:
    """Action and StringLike patterns: ``*`` and ``?`` take anything, colons included."""
    return [
        ("run" if char == "*" else "one", char, True) if wild and char in "*?" else ("lit", char, False)
        for char, wild in _flatten(chunks)
    ]


def _resource_tokens(chunks: Chunks) -> list[Token]:
    """IAM's resource rule as documented: a wildcard stays in its colon-separated segment, except in the
    resource part (after the fifth colon), and a ``*`` that is the last character of a segment runs on."""
    characters = _flatten(chunks)
    tokens: list[Token] = []
    colons = 0
    for index, (char, wild) in enumerate(characters):
        if wild and char in "*?":
            last = index + 1 == len(characters) or characters[index + 1][0] == ":"
            tokens.append(
                ("run" if char == "*" else "one", char, colons >= ARN_PARTS - 1 or (char == "*" and last))
            )
        else:
            colons += char == ":"
            tokens.append(("lit", char, False))
    return tokens


def _reference_match(tokens: list[Token], text: str, *, fold: bool = False) -> bool:
    """A set-of-states automaton, independent of ``re``, so a regex-building slip cannot hide in both."""

    def closure(states: set[int]) -> set[int]:
        stack = list(states)
        while stack:
            index = stack.pop()
            if index < len(tokens) and tokens[index][0] == "run" and index + 1 not in states:
                states.add(index + 1)
                stack.append(index + 1)
        return states

    def same(left: str, right: str) -> bool:
        return left.lower() == right.lower() if fold else left == right

    states = closure({0})
    for char in text:
        following: set[int] = set()
        for index in states:
            if index == len(tokens):
                continue
            kind, literal, cross = tokens[index]
            if kind == "lit":
                if same(literal, char):
                    following.add(index + 1)
            elif cross or char != ":":
                following.add(index if kind == "run" else index + 1)
        states = closure(following)
    return len(tokens) in states


def _reference_arn_like(chunks: Chunks, value: str) -> bool:
    """ArnLike: pattern and value cut at their first five colons, each part globbed on its own."""
    segments: list[list[tuple[str, bool]]] = [[]]
    for char, wild in _flatten(chunks):
        if char == ":" and len(segments) < ARN_PARTS:
            segments.append([])
        else:
            segments[-1].append((char, wild))
    parts = value.split(":", ARN_PARTS - 1)
    if len(segments) != ARN_PARTS or len(parts) != ARN_PARTS:
        return False
    return all(
        _reference_match(_glob_tokens(tuple((char, wild) for char, wild in segment)), part)
        for segment, part in zip(segments, parts, strict=True)
    )


ARN_PREFIXES = ("", "arn:aws:s3:::", "arn:a*:s3:", "arn:aws:kms:us-*:1?:", "*:")
chunk_lists = st.lists(st.tuples(st.text(ALPHABET, max_size=6), st.booleans()), max_size=4)


@st.composite
def patterns(draw: st.DrawFn) -> Chunks:
    """Chunks of policy text (wildcards live) and variable text (literal), often after an ARN's head."""
    head = draw(st.sampled_from(ARN_PREFIXES))
    return ((head, True), *draw(chunk_lists)) if head else tuple(draw(chunk_lists))


@st.composite
def pattern_and_text(draw: st.DrawFn) -> tuple[Chunks, str]:
    """A pattern with either a random text or one made from the pattern, so both outcomes are common."""
    pattern = draw(patterns())
    if draw(st.booleans()):
        return pattern, draw(st.text(ALPHABET, max_size=20))
    pieces = []
    for char, wild in _flatten(pattern):
        if wild and char == "*":
            pieces.append(draw(st.text(ALPHABET, max_size=3)))
        elif wild and char == "?":
            pieces.append(draw(st.sampled_from(ALPHABET)))
        else:
            pieces.append(char)
    return pattern, "".join(pieces)


def _text(chunks: Chunks) -> str:
    return "".join(text for text, _ in chunks)


def _has_wildcard(chunks: Chunks) -> bool:
    return any(wild and ("*" in text or "?" in text) for text, wild in chunks)


@FAST
@given(pattern_and_text())
def test_resource_matching_agrees_with_the_reference(case: tuple[Chunks, str]) -> None:
    pattern, text = case
    assert resource_matches(pattern, text) is _reference_match(_resource_tokens(pattern), text)


@FAST
@given(st.lists(pattern_and_text(), min_size=1, max_size=3), st.text(ALPHABET, max_size=20))
def test_several_resources_match_as_one_pattern_exactly_when_one_of_them_does(
    cases: list[tuple[Chunks, str]], other: str
) -> None:
    patterns = tuple(pattern for pattern, _ in cases)
    combined = resources_glob(patterns)
    for text in (*(text for _, text in cases), other):
        expected = any(resource_matches(pattern, text) for pattern in patterns)
        assert (combined.fullmatch(text) is not None) is expected


@FAST
@given(pattern_and_text())
def test_a_resource_matched_by_a_pattern_has_the_pattern_s_literal_head(case: tuple[Chunks, str]) -> None:
    """Policies set statements aside by the resource's head (the bucket); that must never lose a match."""
    pattern, text = case
    head = literal_head(pattern)
    if head is not None and resource_matches(pattern, text):
        assert resource_head(text) == head


@FAST
@given(pattern_and_text())
def test_string_like_agrees_with_the_reference(case: tuple[Chunks, str]) -> None:
    pattern, text = case
    assert string_like(pattern, text) is _reference_match(_glob_tokens(pattern), text)


@FAST
@given(pattern_and_text())
def test_arn_like_agrees_with_the_reference(case: tuple[Chunks, str]) -> None:
    pattern, text = case
    assert arn_like(pattern, text) is _reference_arn_like(pattern, text)


@FAST
@given(pattern_and_text(), st.booleans())
def test_action_matching_agrees_with_the_reference_without_case(
    case: tuple[Chunks, str], upper: bool
) -> None:
    pattern, text = case
    action = _text(pattern)
    request = text.upper() if upper else text
    assert action_matches(action, request) is _reference_match(
        _glob_tokens(((action, True),)), request, fold=True
    )


@FAST
@given(st.text(ALPHABET, max_size=20), st.text(ALPHABET, max_size=20))
def test_action_matching_ignores_case(pattern: str, action: str) -> None:
    expected = action_matches(pattern, action)
    assert action_matches(pattern.swapcase(), action) is expected
    assert action_matches(pattern, action.swapcase()) is expected
    assert action_matches(pattern.upper(), action.lower()) is expected


@FAST
@given(patterns(), st.text(ALPHABET, max_size=20))
def test_a_pattern_without_wildcards_matches_exactly_itself(pattern: Chunks, other: str) -> None:
    literal = tuple(
        (text.replace("*", "").replace("?", ""), wild) if wild else (text, wild) for text, wild in pattern
    )
    text = _text(literal)
    assert not _has_wildcard(literal)
    assert resource_matches(literal, text)
    assert string_like(literal, text)
    assert resource_matches(literal, other) is (other == text)
    assert string_like(literal, other) is (other == text)
    action = text.replace("*", "").replace("?", "")  # an action has no literal text: every * is a wildcard
    assert action_matches(action, other) is (other.lower() == action.lower())
    if text.swapcase() != text:
        assert not resource_matches(literal, text.swapcase())


@FAST
@given(
    st.sampled_from(("arn:aws:s3:::", "arn:aws:kms:us-east-1:111111111111:", "arn:*:*:*:*:")),
    st.text(ALPHABET),
)
def test_a_star_in_the_resource_part_matches_anything_there(head: str, rest: str) -> None:
    assert resource_matches(((head + "*", True),), head.replace("*", "x") + rest)
    assert resource_matches((("*", True),), head + rest)
    assert string_like((("*", True),), rest)


# --- the parsers on arbitrary JSON -----------------------------------------------------------------------

POLICY_KEYS = (
    "Version",
    "Id",
    "Statement",
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
    "AWS",
    "Service",
    "Federated",
    "CanonicalUser",
)
OPERATORS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericLessThan",
    "NumericEquals",
    "DateGreaterThan",
    "DateLessThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnLike",
    "ArnNotEquals",
    "Null",
    "NullIfExists",
    "StringLikeIfExists",
    "ForAnyValue:StringEquals",
    "ForAllValues:StringLike",
    "ForSomeValues:StringEquals",
    "StringEqual",
)
CONDITION_KEYS = (
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:username",
    "aws:PrincipalArn",
    "aws:PrincipalTag/team",
    "aws:CurrentTime",
    "s3:prefix",
    "s3:max-keys",
    "aws:ResourceAccount",
)
ACCOUNT_USER = f"arn:aws:iam::{MLSPACE}:user/bob"
PARTNER_USER = f"arn:aws:iam::{PARTNER}:user/carol"
FEDERATED = f"arn:aws:sts::{MLSPACE}:federated-user/dave"
PRINCIPAL_ARNS = (USER, ACCOUNT_USER, SESSION, ROLE, ROOT, PARTNER_USER, FEDERATED)
WORDS = (
    "2012-10-17",
    "2008-10-17",
    "Allow",
    "Deny",
    "allow",
    "*",
    "s3:GetObject",
    "s3:Get*",
    "S3:LISTBUCKET",
    "s3:?etObject",
    "kms:Decrypt",
    "s3GetObject",
    f"arn:aws:s3:::{DATA_BUCKET}",
    f"arn:aws:s3:::{DATA_BUCKET}/*",
    "arn:aws:s3:::b/${aws:username}/*",
    "arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}/*",
    "arn:aws:s3:::b/${}",
    "arn:aws:s3:::b/${*}",
    "arn:aws:kms:*:111111111111:key/*",
    "bucket/key",
    "10.0.0.0/8",
    "203.0.113.7",
    "2001:db8::/32",
    "not-an-ip",
    "true",
    "false",
    "10",
    "2.5",
    "-1e3",
    "2025-01-31T12:00:00Z",
    "1700000000",
    "99999999999999999999",
    "dGVzdA==",
    "home/*",
    "${aws:username}/*",
    "AIDAJQABLZS4A3QDU576Q",
    "s3.amazonaws.com",
    "anonymous",
    MLSPACE,
    PARTNER,
    *PRINCIPAL_ARNS,
    *POLICY_KEYS,
    *OPERATORS,
    *CONDITION_KEYS,
)

keys = st.one_of(st.sampled_from((*POLICY_KEYS, *OPERATORS, *CONDITION_KEYS)), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


def one_or_list(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(values, st.lists(values, min_size=1, max_size=3))


actions = st.sampled_from(("*", "s3:GetObject", "s3:Get*", "s3:*", "S3:LISTBUCKET", "s3:?utObject", "kms:*"))
resources = st.sampled_from(
    (
        "*",
        f"arn:aws:s3:::{DATA_BUCKET}",
        f"arn:aws:s3:::{DATA_BUCKET}/*",
        f"arn:aws:s3:::{DATA_BUCKET}/home/${{aws:username}}/*",
        "arn:aws:s3:::other/${aws:PrincipalTag/team, 'shared'}/*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::other*",
        "arn:aws:kms:*:111111111111:key/*",
    )
)
principal_elements = st.sampled_from(
    (
        "*",
        {"AWS": "*"},
        {"AWS": MLSPACE},
        {"AWS": ROOT},
        {"AWS": USER},
        {"AWS": ROLE},
        {"AWS": SESSION},
        {"AWS": [PARTNER, PARTNER_USER]},
        {"AWS": FEDERATED},
        {"Service": "s3.amazonaws.com"},
        {"AWS": [SESSION, ROLE, MLSPACE]},
    )
)
# Operators with values each accepts, so generated policies are mostly valid and conditions really run.
CLAUSES: tuple[tuple[str, tuple[str, ...], tuple[Any, ...]], ...] = (
    ("StringEquals", ("aws:username", "aws:PrincipalTag/team", "s3:prefix"), ("alice", "ml", "home/alice/")),
    ("StringNotEquals", ("aws:username", "aws:PrincipalTag/team"), ("alice", "${aws:username}")),
    ("StringEqualsIgnoreCase", ("aws:PrincipalTag/team",), ("ML", "data")),
    (
        "StringLike",
        ("s3:prefix", "aws:PrincipalArn"),
        ("home/*", "${aws:username}/*", "*", "arn:aws:iam::*:user/a?ice"),
    ),
    ("StringNotLike", ("s3:prefix",), ("home/*", "")),
    ("IpAddress", ("aws:SourceIp",), ("10.0.0.0/8", "203.0.113.0/24", "2001:db8::/32")),
    ("NotIpAddress", ("aws:SourceIp",), ("10.0.0.0/8", "198.51.100.7")),
    ("Bool", ("aws:SecureTransport", "aws:MultiFactorAuthPresent"), ("true", "false", True)),
    ("NumericLessThan", ("s3:max-keys",), ("10", 2.5, 100)),
    ("DateGreaterThan", ("aws:CurrentTime",), ("2020-01-01T00:00:00Z", "1700000000")),
    ("ArnLike", ("aws:PrincipalArn", "aws:SourceArn"), ("arn:aws:iam::111111111111:*", "arn:aws:sts::*:*/*")),
    ("ArnNotEquals", ("aws:PrincipalArn",), (ROLE,)),
    ("Null", ("aws:PrincipalTag/team", "s3:prefix"), ("true", "false")),
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """A Condition block of one to three clauses, qualified with IfExists or a set operator at times."""
    block: dict[str, dict[str, Any]] = {}
    for _ in range(draw(st.integers(1, 3))):
        name, condition_keys, values = draw(st.sampled_from(CLAUSES))
        if name != "Null":
            name = draw(st.sampled_from(("", "ForAnyValue:", "ForAllValues:"))) + name
            name += draw(st.sampled_from(("", "", "IfExists")))
        block.setdefault(name, {})[draw(st.sampled_from(condition_keys))] = draw(
            one_or_list(st.sampled_from(values))
        )
    return block


@st.composite
def statements(draw: st.DrawFn, *, principal: bool | None = None) -> dict[str, Any]:
    """A valid statement, Allow more often than Deny; ``principal`` forces a Principal element in or out."""
    statement: dict[str, Any] = {"Effect": draw(st.sampled_from(("Allow", "Allow", "Allow", "Deny")))}
    if draw(st.booleans()):
        statement["Sid"] = draw(st.sampled_from(("A", "B", "Read", "")))
    statement[draw(st.sampled_from(("Action", "Action", "Action", "NotAction")))] = draw(one_or_list(actions))
    statement[draw(st.sampled_from(("Resource", "Resource", "Resource", "NotResource")))] = draw(
        one_or_list(resources)
    )
    if draw(st.booleans()) if principal is None else principal:
        statement[draw(st.sampled_from(("Principal", "Principal", "NotPrincipal")))] = draw(
            principal_elements
        )
    if draw(st.integers(0, 2)) == 0:
        statement["Condition"] = draw(conditions())
    return statement


def _rarely(draw: st.DrawFn, odds: int = 5) -> bool:
    return draw(st.integers(1, odds)) == 1


@st.composite
def policy_shaped(draw: st.DrawFn, layer: Layer | None = None) -> Any:
    """Documents valid for ``layer`` (any layer when None) with, at times, one or two elements swapped for
    arbitrary JSON or removed, so every check in the parser is reached."""
    principal = None if layer is None else layer in (Layer.RESOURCE, Layer.RCP, Layer.ENDPOINT)
    items = draw(st.lists(statements(principal=principal), max_size=3))
    document: dict[str, Any] = {"Statement": (items[0] if items else {}) if _rarely(draw) else items}
    if not _rarely(draw):
        document["Version"] = draw(st.sampled_from(("2012-10-17", "2008-10-17")))
    for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2)))):
        target = document
        if items and draw(st.booleans()):
            target = draw(st.sampled_from(items))
            if "Condition" in target and draw(st.booleans()):
                target = target["Condition"]
        key = draw(st.sampled_from(sorted(target))) if target and draw(st.booleans()) else draw(keys)
        if key in target and draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(json_values)
    return document


def documents(layer: Layer | None = None) -> st.SearchStrategy[Any]:
    """Policy-shaped documents for the layer, or any JSON at all."""
    return st.one_of(policy_shaped(layer), policy_shaped(layer), json_values)


texts = st.one_of(
    documents().map(json.dumps),
    st.text(max_size=30),
    st.sampled_from(('{"Statement": [', "[", "{}", "null", '"x"', "{'Version': 1}")),
    # Text that is JSON only in form: nested past the interpreter's recursion limit, or a number past its
    # integer-digit limit; ``json.loads`` refuses both with errors other than JSONDecodeError.
    st.integers(1, 3000).map(lambda depth: '{"Statement": ' + "[" * depth + "]" * depth + "}"),
    st.integers(1, 6000).map(lambda digits: '{"Version": ' + "7" * digits + ', "Statement": []}'),
)


def _check_error(error: PolicyValidationError) -> None:
    """A validation error a shell can show as is: a message, and the path it names."""
    assert error.message
    assert str(error)
    if error.path:
        assert error.path in str(error)


def _parse_outcome(document: Any, layer: Layer) -> Policy | PolicyValidationError:
    try:
        policy = parse_policy(document, layer, "generated")
    except PolicyValidationError as error:
        _check_error(error)
        return error
    assert isinstance(policy, Policy)
    return policy


@SLOW
@given(st.sampled_from(Layer).flatmap(lambda layer: st.tuples(st.just(layer), documents(layer))))
def test_parse_policy_returns_a_policy_or_a_validation_error(case: tuple[Layer, Any]) -> None:
    layer, document = case
    outcome = _parse_outcome(document, layer)
    if isinstance(document, str):
        return  # already read as JSON text
    # The same document given as JSON text reads the same way.
    again = _parse_outcome(json.dumps(document), layer)
    if isinstance(outcome, Policy):
        assert again == outcome
    else:
        assert isinstance(again, PolicyValidationError)
        assert (again.path, again.message) == (outcome.path, outcome.message)


@FAST
@given(texts, st.sampled_from(Layer))
def test_parse_policy_on_any_text_returns_a_policy_or_a_validation_error(text: str, layer: Layer) -> None:
    _parse_outcome(text, layer)


@FAST
@given(st.one_of(st.sampled_from(Layer), st.text(max_size=10)))
def test_parse_policy_refuses_an_unknown_layer_with_a_validation_error(layer: str) -> None:
    _parse_outcome({"Statement": []}, layer)  # type: ignore[arg-type]


S3_RESOURCES = (
    f"arn:aws:s3:::{DATA_BUCKET}",
    f"arn:aws:s3:::{DATA_BUCKET}/home/alice/train.csv",
    "arn:aws:s3:::other/shared/x",
    "arn:aws:s3:::other",
)
RESOURCES = (
    *S3_RESOURCES,
    f"arn:aws:kms:us-east-1:{MLSPACE}:key/k1",
    f"arn:aws:kms:us-east-1:{PARTNER}:key/k2",
)
context_values = st.one_of(
    st.sampled_from(
        ("alice", "ml", "home/alice/", "10.1.2.3", "203.0.113.9", "2001:db8::1", "true", "false", "5")
    ),
    st.lists(st.sampled_from(("alice", "ml", "data", "x")), max_size=3),
)
contexts = st.dictionaries(st.sampled_from(CONDITION_KEYS), context_values, max_size=4)


def _mostly(draw: st.DrawFn, good: st.SearchStrategy[Any]) -> Any:
    """A good value nine times in ten, else any JSON."""
    return draw(json_values) if _rarely(draw, 10) else draw(good)


def _as_object_or_text(layer: Layer) -> st.SearchStrategy[Any]:
    return st.one_of(documents(layer), documents(layer).map(json.dumps))


@st.composite
def scenario_shaped(draw: st.DrawFn) -> Any:
    """Scenario objects: good values and, at times, bad ones; layers from policy-shaped documents."""
    scenario: dict[str, Any] = {
        "principal": _mostly(draw, st.sampled_from((*PRINCIPAL_ARNS, "anonymous", "Anonymous"))),
        "action": _mostly(draw, st.sampled_from(("s3:GetObject", "s3:ListBucket", "kms:Decrypt", "s3:Get*"))),
        "resource": _mostly(draw, st.sampled_from(RESOURCES)),
    }
    levels = {
        layer: st.lists(st.lists(documents(layer), max_size=2), max_size=2)
        for layer in (Layer.SCP, Layer.RCP)
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "name": st.text(max_size=5),
        "resource_account": st.sampled_from((MLSPACE, PARTNER)),
        "context": contexts,
        "identity_policies": st.lists(_as_object_or_text(Layer.IDENTITY), max_size=2),
        "permissions_boundary": documents(Layer.BOUNDARY),
        "session_policy": documents(Layer.SESSION),
        "resource_policy": _as_object_or_text(Layer.RESOURCE),
        "scps": levels[Layer.SCP],
        "rcps": levels[Layer.RCP],
        "endpoint_policy": documents(Layer.ENDPOINT),
        "expected": json_values,
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), max_size=4, unique=True)):
        scenario[key] = _mostly(draw, optional[key])
    return scenario


scenario_inputs = st.one_of(
    scenario_shaped(),
    scenario_shaped(),
    st.lists(scenario_shaped(), max_size=3),
    st.lists(scenario_shaped(), max_size=2).map(lambda items: {"scenarios": items}),
    json_values,
)


@SLOW
@given(scenario_inputs)
def test_load_scenarios_returns_scenarios_or_a_validation_error_and_each_evaluates(obj: Any) -> None:
    try:
        scenarios = load_scenarios(obj)
    except PolicyValidationError as error:
        _check_error(error)
        return
    assert scenarios
    for scenario in scenarios:
        assert isinstance(scenario, Scenario)
        result = evaluate_scenario(scenario)
        assert isinstance(result, EvaluationResult)
        assert json.loads(json.dumps(result.to_dict()))["decision"] == result.decision.value
        assert str(result)


# --- evaluation invariants -------------------------------------------------------------------------------

CALLERS = (USER, ACCOUNT_USER, SESSION, ROLE, ROOT, PARTNER_USER, FEDERATED, "anonymous")
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DENY_ALL = {"Effect": "Deny", "Action": "*", "Resource": "*"}


def _document(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": items}


@st.composite
def layer_statements(draw: st.DrawFn, principal: bool = False) -> list[dict[str, Any]]:
    """A few statements, at times with a broad Allow among them (as AWS's FullAWSAccess), so that allowed
    outcomes are common enough to test."""
    items = draw(st.lists(statements(principal=principal), max_size=3))
    if draw(st.booleans()):
        broad: dict[str, Any] = {
            "Effect": "Allow",
            "Action": draw(st.sampled_from(("*", "s3:*"))),
            "Resource": "*",
        }
        if principal:
            broad["Principal"] = draw(st.sampled_from(("*", {"AWS": [MLSPACE, PARTNER]})))
        items.insert(draw(st.integers(0, len(items))), broad)
    return items


@st.composite
def layer_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Raw documents for every layer: identity always, the others at times, SCPs and RCPs in levels."""
    layers: dict[str, Any] = {"identity": [draw(layer_statements()) for _ in range(draw(st.integers(0, 2)))]}
    for name, principal in (("boundary", False), ("session", False), ("resource", True), ("endpoint", True)):
        if _rarely(draw, 4):
            layers[name] = draw(layer_statements(principal))
    for name, principal in (("scps", False), ("rcps", True)):
        if _rarely(draw, 5):
            layers[name] = [
                [draw(layer_statements(principal)) for _ in range(draw(st.integers(0, 2)))]
                for _ in range(draw(st.integers(1, 2)))
            ]
    return layers


def build_layers(
    raw: dict[str, Any], transform: Callable[[Policy], Policy] = lambda policy: policy
) -> PolicyLayers:
    """Parse the raw documents into layers, each policy passed through ``transform``."""

    def parse(items: list[dict[str, Any]], layer: Layer, label: str) -> Policy:
        return transform(parse_policy(_document(items), layer, label))

    def single(name: str, layer: Layer) -> Policy | None:
        return parse(raw[name], layer, name) if name in raw else None

    def levels(name: str, layer: Layer) -> tuple[tuple[Policy, ...], ...]:
        return tuple(
            tuple(parse(items, layer, f"{name}[{i}][{j}]") for j, items in enumerate(level))
            for i, level in enumerate(raw.get(name, []))
        )

    return PolicyLayers(
        identity=tuple(
            parse(items, Layer.IDENTITY, f"identity[{i}]") for i, items in enumerate(raw["identity"])
        ),
        boundary=single("boundary", Layer.BOUNDARY),
        session=single("session", Layer.SESSION),
        resource=single("resource", Layer.RESOURCE),
        scps=levels("scps", Layer.SCP),
        rcps=levels("rcps", Layer.RCP),
        endpoint=single("endpoint", Layer.ENDPOINT),
    )


@st.composite
def requests(
    draw: st.DrawFn, callers: tuple[str, ...] = CALLERS, targets: tuple[str, ...] = RESOURCES
) -> Request:
    resource = draw(st.sampled_from(targets))
    return Request(
        principal=Principal.from_arn(draw(st.sampled_from(callers))),
        action=draw(st.sampled_from(("s3:GetObject", "s3:ListBucket", "s3:PutObject", "kms:Decrypt"))),
        resource=resource,
        resource_account=draw(st.sampled_from((None, MLSPACE, PARTNER))) if ":s3:" in resource else None,
        context=draw(contexts),
    )


@SLOW
@given(requests(callers=tuple(caller for caller in CALLERS if caller != "anonymous")), layer_documents())
def test_a_deny_all_in_the_identity_layer_always_denies_explicitly(
    request: Request, raw: dict[str, Any]
) -> None:
    raw["identity"] = [*raw["identity"], [DENY_ALL]]
    result = evaluate(request, build_layers(raw))
    assert result.decision is Decision.EXPLICIT_DENY
    assert Layer.IDENTITY in result.blocked_by


@FAST
@given(requests(callers=(USER, ACCOUNT_USER), targets=S3_RESOURCES))
def test_an_identity_allow_all_is_enough_for_a_user_in_the_same_account(request: Request) -> None:
    same_account = replace(request, resource_account=MLSPACE)
    result = evaluate(same_account, PolicyLayers(identity=(parse_policy(ALLOW_ALL),)))
    assert result.decision is Decision.ALLOWED


def _without_allows(policy: Policy) -> Policy:
    return replace(policy, statements=tuple(s for s in policy.statements if s.effect is not Effect.ALLOW))


@SLOW
@given(requests(), layer_documents())
def test_removing_every_allow_never_turns_a_deny_into_an_allow(request: Request, raw: dict[str, Any]) -> None:
    before = evaluate(request, build_layers(raw)).decision
    after = evaluate(request, build_layers(raw, _without_allows)).decision
    if before is not Decision.ALLOWED:
        assert after is not Decision.ALLOWED
    # The Denies are untouched, so an explicit Deny stays one and no new one appears.
    assert (before is Decision.EXPLICIT_DENY) is (after is Decision.EXPLICIT_DENY)


@st.composite
def shuffled(draw: st.DrawFn, raw: dict[str, Any]) -> dict[str, Any]:
    """The same documents with the statements of each, and the identity policies, in another order."""

    def permute(items: list[Any]) -> list[Any]:
        return list(draw(st.permutations(items)))

    result: dict[str, Any] = {"identity": permute([permute(items) for items in raw["identity"]])}
    for name in ("boundary", "session", "resource", "endpoint"):
        if name in raw:
            result[name] = permute(raw[name])
    for name in ("scps", "rcps"):
        if name in raw:
            result[name] = [permute([permute(items) for items in level]) for level in raw[name]]
    return result


@SLOW
@given(st.lists(requests(), min_size=2, max_size=6), layer_documents())
def test_what_the_policies_remember_between_requests_never_changes_a_result(
    batch: list[Request], raw: dict[str, Any]
) -> None:
    """Parsed policies remember plans per action and bucket; every result must equal a cold evaluation."""
    shared = build_layers(raw)
    for request in batch:
        assert evaluate(request, shared).to_dict() == evaluate(request, build_layers(raw)).to_dict()


def _outcome(result: EvaluationResult) -> tuple[Decision, tuple[Layer, ...]]:
    return result.decision, result.blocked_by


@SLOW
@given(requests(), layer_documents(), st.data())
def test_the_decision_does_not_depend_on_statement_order(
    request: Request, raw: dict[str, Any], data: st.DataObject
) -> None:
    reordered = data.draw(shuffled(raw))
    assert _outcome(evaluate(request, build_layers(raw))) == _outcome(
        evaluate(request, build_layers(reordered))
    )
