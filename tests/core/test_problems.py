"""Validation failures in plain words, per field, as the dialog, the magic and the endpoint show them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.core.problems import plain_problems

SUBJECTS = {"bucket": "The bucket name", "days": "Days"}
VALID = {"bucket": "team-data", "access": "read", "reason": "a study", "idempotency_key": "k" * 32}


def _said(**fields: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        NewAccessRequest.model_validate({**VALID, **fields})
    return plain_problems(refused.value.errors(), NewAccessRequest, SUBJECTS)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"reason": "ab"}, "reason: The reason must have at least 3 characters"),
        ({"reason": "x" * 2001}, "reason: The reason must have at most 2000 characters"),
        ({"days": 900}, "days: Days must be between 1 and 365"),
        ({"days": 0}, "days: Days must be between 1 and 365"),
        ({"days": "soon"}, "days: Days must be a whole number"),
        ({"days": 1.5}, "days: Days must be a whole number"),
        ({"reason": 7}, "reason: The reason must be text"),
        ({"access": "write"}, "access: The access must be 'list', 'read' or 'read-write'"),
        ({"access": None}, "access: The access must be 'list', 'read' or 'read-write'"),
    ],
)
def test_each_problem_is_a_sentence_about_its_field(fields: dict[str, Any], said: str) -> None:
    assert _said(**fields) == said


def test_a_validators_own_words_are_kept_as_a_sentence() -> None:
    said = _said(bucket="Bad Bucket")
    assert said.startswith("bucket: 'Bad Bucket' is not a valid S3 bucket name")
    assert "Value error" not in said and not said.endswith(".")


def test_several_problems_keep_their_order_and_a_missing_field_is_named() -> None:
    fields = {key: value for key, value in VALID.items() if key != "access"}
    with pytest.raises(ValidationError) as refused:
        NewAccessRequest.model_validate({**fields, "reason": "ab"})
    assert plain_problems(refused.value.errors(), NewAccessRequest) == (
        "access: The access is required; reason: The reason must have at least 3 characters"
    )
    assert "String should" not in plain_problems(refused.value.errors(), NewAccessRequest)


def test_a_request_bodys_location_is_the_field_and_without_a_model_a_bound_is_stated_alone() -> None:
    """FastAPI locates a body's problems under ``body``; the endpoint's handler has no model at hand."""
    problems = [
        {"type": "greater_than_equal", "loc": ("body", "days"), "msg": "...", "ctx": {"ge": 1}},
        {"type": "missing", "loc": ("body",), "msg": "Field required"},
    ]
    assert plain_problems(problems, subjects={"days": "Days"}) == (
        "days: Days must be 1 or more; body: The request is required"
    )
