"""Policy variables (``${aws:username}``, ``${key, 'default'}``, ``${*}``): parsed once, expanded per request.

An expansion is a tuple of chunks ``(text, wild)``: ``wild`` is True for the policy's own text, where ``*``
and ``?`` are wildcards, and False for text that came from a variable or an escape, which is always literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

Chunks = tuple[tuple[str, bool], ...]
Lookup = Callable[[str], tuple[str, ...] | None]

VARIABLE_VERSION = "2012-10-17"
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_BODY = re.compile(r"\s*(?P<key>[^\s,'{}$]+)\s*(?:,\s*'(?P<default>(?:[^']|'')*)'\s*)?")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class Variable:
    """One ``${key}`` or ``${key, 'default'}`` reference; keys are looked up case-insensitively."""

    key: str
    default: str | None
    source: str


Part = tuple[str, bool] | Variable


@dataclass(frozen=True)
class Template:
    """A policy string with its variables located, so each request only substitutes values."""

    text: str
    parts: tuple[Part, ...]

    @cached_property
    def static(self) -> Chunks | None:
        """The chunks when the text holds no variable (most policy text), so requests need not expand it."""
        if any(isinstance(part, Variable) for part in self.parts):
            return None
        return tuple(part for part in self.parts if isinstance(part, tuple))

    def expand(self, lookup: Lookup) -> Chunks | None:
        """Substitute the request's values; None when a variable has no value (its key is absent or
        multivalued, and it has no default): AWS then lets the entry or condition value match nothing."""
        static = self.static
        if static is not None:
            return static
        chunks: list[tuple[str, bool]] = []
        for part in self.parts:
            if isinstance(part, tuple):
                chunks.append(part)
                continue
            value = _value(part, lookup)
            if value is None:
                return None
            chunks.append((value, False))
        return tuple(chunks)


def _value(variable: Variable, lookup: Lookup) -> str | None:
    """A single-valued key's value, else the default, else None; AWS cannot substitute a multivalued key."""
    values = lookup(variable.key)
    if values is not None and len(values) == 1:
        return values[0]
    return variable.default


def parse_template(text: str, *, variables: bool) -> Template:
    """Locate variables in ``text``; with ``variables`` False (policy Version 2008) the text stays literal.

    Raises ValueError naming a malformed reference such as ``${}``.
    """
    if not variables or "${" not in text:
        return Template(text, ((text, True),) if text else ())
    parts: list[Part] = []
    position = 0
    for reference in _REFERENCE.finditer(text):
        if reference.start() > position:
            parts.append((text[position : reference.start()], True))
        parts.append(_parse_reference(reference.group(0), reference.group(1)))
        position = reference.end()
    if position < len(text):
        parts.append((text[position:], True))
    return Template(text, tuple(parts))


def _parse_reference(source: str, body: str) -> Part:
    """One ``${...}``: an escape for ``*``, ``?`` or ``$``, or a key with an optional quoted default."""
    if body in _ESCAPES:
        return (_ESCAPES[body], False)
    match = _BODY.fullmatch(body)
    if match is None:
        raise ValueError(f"malformed policy variable {source}; expected ${{key}} or ${{key, 'default'}}")
    default = match.group("default")
    return Variable(match.group("key"), None if default is None else default.replace("''", "'"), source)
