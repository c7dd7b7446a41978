"""Wildcard matching as IAM does it: actions without case, resources and ARNs with case and by segment."""

from __future__ import annotations

import re
from functools import lru_cache

from .variables import Chunks

_ARN_PARTS = 6


def _characters(chunks: Chunks) -> tuple[tuple[str, bool], ...]:
    """One entry per character, each remembering whether it may act as a wildcard."""
    return tuple((char, wild) for text, wild in chunks for char in text)


def _glob_regex(characters: tuple[tuple[str, bool], ...], ignore_case: bool) -> re.Pattern[str]:
    """``*`` matches any run of characters and ``?`` any one character, across everything."""
    regex = "".join(
        ".*" if wild and char == "*" else "." if wild and char == "?" else re.escape(char)
        for char, wild in characters
    )
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


# The caches below are keyed on the pattern as the policy holds it, so a request costs one lookup and one
# regex match per pattern; splitting the pattern into characters first would cost more than the match.


@lru_cache(maxsize=4096)
def _action_glob(pattern: str) -> re.Pattern[str]:
    return _glob_regex(_characters(((pattern, True),)), True)


@lru_cache(maxsize=4096)
def _glob(chunks: Chunks) -> re.Pattern[str]:
    return _glob_regex(_characters(chunks), False)


@lru_cache(maxsize=4096)
def _resource_glob(chunks: Chunks) -> re.Pattern[str]:
    """IAM's resource rule: a wildcard stays inside its ARN segment, except in the resource part (after the
    fifth colon) and when ``*`` ends a segment, where it may run on past colons."""
    characters = _characters(chunks)
    pieces: list[str] = []
    colons = 0
    for index, (char, wild) in enumerate(characters):
        open_ended = colons >= _ARN_PARTS - 1
        if wild and char == "*":
            ends_segment = index + 1 == len(characters) or characters[index + 1][0] == ":"
            pieces.append(".*" if open_ended or ends_segment else "[^:]*")
        elif wild and char == "?":
            pieces.append("." if open_ended else "[^:]")
        else:
            colons += char == ":"
            pieces.append(re.escape(char))
    return re.compile("".join(pieces), re.DOTALL)


@lru_cache(maxsize=1024)
def _arn_globs(chunks: Chunks) -> tuple[re.Pattern[str], ...]:
    """One glob per ARN part; fewer than six when the pattern has fewer parts (and so matches nothing)."""
    return tuple(_glob_regex(segment, False) for segment in _split_segments(_characters(chunks)))


def resources_glob(patterns: tuple[Chunks, ...]) -> re.Pattern[str]:
    """One pattern that fully matches what any of the expanded Resource entries matches, so a statement
    listing several costs a single match."""
    if len(patterns) == 1:
        return _resource_glob(patterns[0])
    alternatives = "|".join(f"(?:{_resource_glob(pattern).pattern})" for pattern in patterns)
    return re.compile(alternatives or "(?!)", re.DOTALL)  # (?!) never matches: an empty list covers nothing


def literal_head(pattern: Chunks) -> str | None:
    """The text before the pattern's first ``/`` when no wildcard comes before it, else None.

    Every resource such a pattern matches has that same text before its own first ``/`` (for S3, the bucket's
    ARN), so a policy can set aside, per bucket, the statements that cannot match.
    """
    head: list[str] = []
    for text, wild in pattern:
        for char in text:
            if char == "/":
                return "".join(head)
            if wild and char in "*?":
                return None
            head.append(char)
    return "".join(head)


def resource_head(resource: str) -> str:
    """The text before the resource's first ``/``, to compare with :func:`literal_head`."""
    return resource.partition("/")[0]


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Action entry such as ``s3:Get*`` covers the action; action names ignore case."""
    return _action_glob(pattern).fullmatch(action) is not None


def resource_matches(pattern: Chunks, resource: str) -> bool:
    """Whether an expanded Resource entry covers the resource ARN; ARNs are case-sensitive."""
    return _resource_glob(pattern).fullmatch(resource) is not None


def string_like(pattern: Chunks, value: str) -> bool:
    """StringLike: a case-sensitive whole-string glob over an expanded condition value."""
    return _glob(pattern).fullmatch(value) is not None


def arn_like(pattern: Chunks, value: str) -> bool:
    """ArnLike and ArnEquals: each of the six ARN parts is matched on its own, so ``*`` stays in its part."""
    values = value.split(":", _ARN_PARTS - 1)
    segments = _arn_globs(pattern)
    if len(values) != _ARN_PARTS or len(segments) != _ARN_PARTS:
        return False
    return all(segment.fullmatch(part) for segment, part in zip(segments, values, strict=True))


def _split_segments(characters: tuple[tuple[str, bool], ...]) -> list[tuple[tuple[str, bool], ...]]:
    """Cut at the first five colons; the last segment keeps any further colons, as an ARN's resource does."""
    segments: list[tuple[tuple[str, bool], ...]] = []
    start = 0
    for index, (char, _) in enumerate(characters):
        if char == ":" and len(segments) < _ARN_PARTS - 1:
            segments.append(characters[start:index])
            start = index + 1
    segments.append(characters[start:])
    return segments
