"""Wildcard matching as IAM does it: actions without case, resources and ARNs with case and by segment."""

from __future__ import annotations

import re
from functools import lru_cache

from .variables import Chunks

_ARN_PARTS = 6


def _characters(chunks: Chunks) -> tuple[tuple[str, bool], ...]:
    """One entry per character, each remembering whether it may act as a wildcard."""
    return tuple((char, wild) for text, wild in chunks for char in text)


@lru_cache(maxsize=4096)
def _glob(characters: tuple[tuple[str, bool], ...], ignore_case: bool) -> re.Pattern[str]:
    """``*`` matches any run of characters and ``?`` any one character, across everything."""
    regex = "".join(
        ".*" if wild and char == "*" else "." if wild and char == "?" else re.escape(char)
        for char, wild in characters
    )
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@lru_cache(maxsize=4096)
def _resource_glob(characters: tuple[tuple[str, bool], ...]) -> re.Pattern[str]:
    """IAM's resource rule: a wildcard stays inside its ARN segment, except in the resource part (after the
    fifth colon) and when ``*`` ends a segment, where it may run on past colons."""
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


def action_matches(pattern: str, action: str) -> bool:
    """Whether an Action entry such as ``s3:Get*`` covers the action; action names ignore case."""
    return _glob(_characters(((pattern, True),)), True).fullmatch(action) is not None


def resource_matches(pattern: Chunks, resource: str) -> bool:
    """Whether an expanded Resource entry covers the resource ARN; ARNs are case-sensitive."""
    return _resource_glob(_characters(pattern)).fullmatch(resource) is not None


def string_like(pattern: Chunks, value: str) -> bool:
    """StringLike: a case-sensitive whole-string glob over an expanded condition value."""
    return _glob(_characters(pattern), False).fullmatch(value) is not None


def arn_like(pattern: Chunks, value: str) -> bool:
    """ArnLike and ArnEquals: each of the six ARN parts is matched on its own, so ``*`` stays in its part."""
    values = value.split(":", _ARN_PARTS - 1)
    segments = _split_segments(_characters(pattern))
    if len(values) != _ARN_PARTS or len(segments) != _ARN_PARTS:
        return False
    return all(_glob(segment, False).fullmatch(part) for segment, part in zip(segments, values, strict=True))


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
