"""A validation failure in plain words, field by field: what a person reads in the dialog, the magic, the CLI
and the admin endpoint's 400, instead of the validation library's wording ("String should have at least 3
characters").

Each problem keeps its field's name in front (``reason: The reason must have at least 3 characters``), so a
form can put it next to the field it names; problems are joined by ``; `` and carry no full stop of their
own, so the caller ends the whole message with one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from annotated_types import Ge, Le
from pydantic import BaseModel


def plain_problems(
    problems: Iterable[Mapping[str, Any]],
    model: type[BaseModel] | None = None,
    subjects: Mapping[str, str] | None = None,
) -> str:
    """``field: clause; field: clause``, in the order the validator found them.

    ``problems`` are pydantic's (``ValidationError.errors()``, FastAPI's ``RequestValidationError.errors()``,
    whose locations start with ``body``); ``model`` gives a bounded field's whole range; ``subjects`` names a
    field in a sentence ("The bucket name"), by default "The" and the field's name.
    """
    said = []
    for problem in problems:
        location = [str(part) for part in problem["loc"] if part != "body"]
        field = location[0] if location else ""
        subject = (subjects or {}).get(field) or f"The {field.replace('_', ' ') or 'request'}"
        bounds = _bounds(model, field) if model is not None else (None, None)
        said.append(f"{'.'.join(location) or 'body'}: {_sentence_for(problem, subject, bounds)}")
    return "; ".join(said)


def _bounds(model: type[BaseModel], field: str) -> tuple[Any, Any]:
    """The field's ``ge`` and ``le``, so one sentence can state the whole range."""
    info = model.model_fields.get(field)
    metadata = info.metadata if info is not None else []
    low = next((rule.ge for rule in metadata if isinstance(rule, Ge)), None)
    high = next((rule.le for rule in metadata if isinstance(rule, Le)), None)
    return low, high


def _sentence_for(problem: Mapping[str, Any], subject: str, bounds: tuple[Any, Any]) -> str:
    kind, context = problem["type"], problem.get("ctx") or {}
    low, high = bounds
    if kind in ("greater_than_equal", "less_than_equal") and low is not None and high is not None:
        return f"{subject} must be between {low} and {high}"
    sentences = {
        "missing": f"{subject} is required",
        "string_too_short": f"{subject} must have at least {context.get('min_length')} characters",
        "string_too_long": f"{subject} must have at most {context.get('max_length')} characters",
        "greater_than_equal": f"{subject} must be {context.get('ge')} or more",
        "less_than_equal": f"{subject} must be {context.get('le')} or less",
        "int_parsing": f"{subject} must be a whole number",
        "int_type": f"{subject} must be a whole number",
        "int_from_float": f"{subject} must be a whole number",
        "string_type": f"{subject} must be text",
        "enum": f"{subject} must be {context.get('expected')}",
        "literal_error": f"{subject} must be {context.get('expected')}",
        "extra_forbidden": "Not a field accepted here",
    }
    if kind == "value_error":
        return _capitalised(str(context.get("error") or problem["msg"]))
    return sentences.get(kind) or _capitalised(str(problem["msg"]))


def _capitalised(text: str) -> str:
    """A clause: capital first, no full stop last."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:]
