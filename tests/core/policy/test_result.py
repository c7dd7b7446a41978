"""The result object: JSON-able, readable as text, safe as HTML, immutable."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mlspace_s3magic.core.policy import Decision, Effect, EvaluationResult, Layer, StatementRef

from .helpers import DATA_OBJECT, SESSION, decide, document, statement


def denied_by_boundary() -> EvaluationResult:
    return decide(
        identity_policies=[document(statement(Sid="ReadData"))],
        permissions_boundary=document(statement(Sid="OnlyEc2", action="ec2:*")),
    )


def test_to_dict_is_json_able_and_complete() -> None:
    data = denied_by_boundary().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["decision"] == "implicit_deny"
    assert data["allowed"] is False
    assert data["blocked_by"] == ["boundary"]
    assert data["principal"] == SESSION and data["resource"] == DATA_OBJECT
    assert data["matched"] == [
        {"layer": "identity", "policy": "identity_policies[0]", "statement": "ReadData", "effect": "Allow"}
    ]
    assert data["statements"] == []
    assert any("permissions boundary does not allow" in reason for reason in data["reasons"])  # type: ignore[attr-defined]


def test_text_explains_in_plain_words() -> None:
    text = str(denied_by_boundary())
    lines = text.splitlines()
    assert lines[0] == f"DENIED (nothing allows it): {SESSION} -> s3:GetObject on {DATA_OBJECT}"
    assert lines[1] == "Blocked by: boundary"
    assert "Why:" in lines
    assert "  - Allow in identity policy 'identity_policies[0]', ReadData" in lines
    assert "Notes:" in lines


def test_text_of_an_allowed_request_lists_the_deciding_statements() -> None:
    text = str(decide(identity_policies=[document(statement(Sid="ReadData"))]))
    assert text.startswith("ALLOWED: ")
    assert "Deciding statements:\n  - Allow in identity policy 'identity_policies[0]', ReadData" in text
    assert "Blocked by" not in text


def test_explicit_deny_headline() -> None:
    result = decide(identity_policies=[document(statement(effect="Deny", Sid="No"))])
    assert str(result).startswith("DENIED (an explicit Deny): ")
    assert result.reasons[0].startswith("Explicit Deny: Deny in identity policy 'identity_policies[0]', No")


def test_html_escapes_everything() -> None:
    hostile = "<script>alert(1)</script>"
    result = decide(identity_policies=[document(statement(Sid=hostile))])
    html = result._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.startswith("<div><table>") and "<th>Layer</th>" in html
    assert "deciding" in html


def test_html_without_statements_has_no_statement_table() -> None:
    html = decide()._repr_html_()
    assert "<th>Layer</th>" not in html
    assert "Blocked by</th><td>identity" in html


def test_result_is_frozen() -> None:
    result = decide()
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.decision = Decision.ALLOWED  # type: ignore[misc]


def test_statement_ref_text_and_dict() -> None:
    ref = StatementRef(Layer.RESOURCE, "bucket policy", "Statement[2]", Effect.DENY)
    assert str(ref) == "Deny in resource policy 'bucket policy', Statement[2]"
    assert ref.to_dict() == {
        "layer": "resource",
        "policy": "bucket policy",
        "statement": "Statement[2]",
        "effect": "Deny",
    }
