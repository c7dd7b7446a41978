"""Policy variables: substitution, defaults, escapes, missing and multivalued keys, Version 2008."""

from __future__ import annotations

import pytest

from mlspace_s3magic.core.policy.request import RequestContext
from mlspace_s3magic.core.policy.variables import parse_template

CONTEXT = RequestContext(
    {
        "aws:username": "alice",
        "aws:PrincipalTag/project": "demo",
        "aws:TagKeys": ("a", "b"),
        "aws:CalledVia": ("athena.amazonaws.com",),
    }
)


def expanded(text: str) -> str:
    chunks = parse_template(text, variables=True).expand(CONTEXT.get)
    assert chunks is not None
    return "".join(chunk for chunk, _ in chunks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("home/${aws:username}/*", "home/alice/*"),
        ("home/${AWS:UserName}/*", "home/alice/*"),
        ("${aws:PrincipalTag/project}", "demo"),
        ("${aws:principaltag/PROJECT}", "demo"),
        ("${aws:userid, 'anonymous'}", "anonymous"),
        ("${ aws:userid , 'anonymous' }", "anonymous"),
        ("${aws:username, 'anonymous'}", "alice"),
        ("${aws:userid, 'it''s'}", "it's"),
        ("${aws:userid, ''}", ""),
        ("${aws:CalledVia}", "athena.amazonaws.com"),
        ("${aws:TagKeys, 'many'}", "many"),
        ("a${*}b${?}c${$}d", "a*b?c$d"),
        ("${aws:username}-${aws:PrincipalTag/project}", "alice-demo"),
        ("no variables", "no variables"),
        ("${unclosed", "${unclosed"),
    ],
)
def test_expansion(text: str, expected: str) -> None:
    assert expanded(text) == expected


def test_substituted_and_escaped_text_is_never_a_wildcard() -> None:
    chunks = parse_template("a${*}${aws:username}*", variables=True).expand(CONTEXT.get)
    assert chunks == (("a", True), ("*", False), ("alice", False), ("*", True))


@pytest.mark.parametrize("text", ["${aws:userid}", "x/${aws:TagKeys}/y"])
def test_missing_or_multivalued_key_without_default_is_unresolved(text: str) -> None:
    assert parse_template(text, variables=True).expand(CONTEXT.get) is None


def test_version_2008_keeps_variables_as_literal_text() -> None:
    template = parse_template("home/${aws:username}", variables=False)
    assert template.expand(CONTEXT.get) == (("home/${aws:username}", True),)


@pytest.mark.parametrize("text", ["${}", "${ }", "${a b}", "${key, default}", "${key, 'x' extra}"])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed policy variable"):
        parse_template(text, variables=True)
