"""The condition operators: how each compares a request value with a policy value, and which policy values
it accepts. ``conditions.py`` adds what all share (missing keys, IfExists, ForAnyValue/ForAllValues)."""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache
from typing import TypeVar

from .matching import arn_like, string_like
from .variables import Chunks

Compare = Callable[[str, Chunks], bool]
T = TypeVar("T")
_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)
_IF_EXISTS = "IfExists"


class SetOperator(StrEnum):
    """The qualifiers that compare a set of request values with the policy's values."""

    FOR_ANY_VALUE = "ForAnyValue"
    FOR_ALL_VALUES = "ForAllValues"


@dataclass(frozen=True)
class BaseOperator:
    """One operator without qualifiers; ``compare`` is None only for Null, which tests presence instead."""

    name: str
    compare: Compare | None
    negated: bool
    check: Callable[[str], str | None]
    variables: bool


@dataclass(frozen=True)
class Operator:
    """An operator as written in a policy, such as ``ForAllValues:StringLikeIfExists``."""

    name: str
    base: BaseOperator
    set_operator: SetOperator | None
    if_exists: bool


def _text(chunks: Chunks) -> str:
    if len(chunks) == 1:  # most values: no variable, one chunk
        return chunks[0][0]
    return "".join([text for text, _ in chunks])


@lru_cache(maxsize=1024)
def _parse_number(text: str) -> Decimal | None:
    """A Numeric* value (integer or decimal), or None when the text is not a finite number."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@lru_cache(maxsize=1024)
def _parse_date(text: str) -> datetime | None:
    """A Date* value: ISO 8601 (UTC when no offset is given) or epoch seconds, else None."""
    text = text.strip()
    try:
        if _EPOCH.fullmatch(text):
            return _EPOCH_START + timedelta(seconds=float(text))
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _decode_binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ordered(parse: Callable[[str], T | None], relation: Callable[[T, T], bool]) -> Compare:
    """A comparison of two parsed values; an unparsable request value matches nothing."""

    def compare(request_value: str, policy_value: Chunks) -> bool:
        left, right = parse(request_value), parse(_text(policy_value))
        return left is not None and right is not None and relation(left, right)

    return compare


def _in_network(request_value: str, policy_value: Chunks) -> bool:
    network = _parse_network(_text(policy_value))
    try:
        address = ipaddress.ip_address(request_value.strip())
    except ValueError:
        return False
    return network is not None and address in network


def _checker(parse: Callable[[str], object], expected: str) -> Callable[[str], str | None]:
    """A policy-value check that names what the operator accepts."""

    def check(value: str) -> str | None:
        return None if parse(value) is not None else f"expected {expected}, got {value!r}"

    return check


def _boolean(text: str) -> bool | None:
    return {"true": True, "false": False}.get(text.strip().lower())


def _anything(_: str) -> str | None:
    return None


_NUMBER = _checker(_parse_number, "a number such as 10 or 2.5")
_DATE = _checker(_parse_date, "an ISO 8601 date such as 2025-01-31T12:00:00Z or epoch seconds")
_BOOL = _checker(_boolean, '"true" or "false"')


def _family(
    names: tuple[str, str | None], compare: Compare, check: Callable[[str], str | None], variables: bool
) -> list[BaseOperator]:
    """An operator and, when it has one, its negated twin."""
    positive, negative = names
    family = [BaseOperator(positive, compare, False, check, variables)]
    if negative is not None:
        family.append(BaseOperator(negative, compare, True, check, variables))
    return family


def _string_equals(request_value: str, policy_value: Chunks) -> bool:
    return request_value == _text(policy_value)


def _string_equals_ignore_case(request_value: str, policy_value: Chunks) -> bool:
    return request_value.casefold() == _text(policy_value).casefold()


def _string_like(request_value: str, policy_value: Chunks) -> bool:
    return string_like(policy_value, request_value)


def _arn_like(request_value: str, policy_value: Chunks) -> bool:
    return arn_like(policy_value, request_value)


def _bool_equals(request_value: str, policy_value: Chunks) -> bool:
    return request_value.strip().lower() == _text(policy_value).strip().lower()


def _binary_equals(request_value: str, policy_value: Chunks) -> bool:
    policy_bytes = _decode_binary(_text(policy_value))
    return policy_bytes is not None and policy_bytes == _decode_binary(request_value)


_ALL: list[BaseOperator] = [
    *_family(("StringEquals", "StringNotEquals"), _string_equals, _anything, True),
    *_family(
        ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"), _string_equals_ignore_case, _anything, True
    ),
    *_family(("StringLike", "StringNotLike"), _string_like, _anything, True),
    *_family(("NumericEquals", "NumericNotEquals"), _ordered(_parse_number, operator.eq), _NUMBER, False),
    *_family(("NumericLessThan", None), _ordered(_parse_number, operator.lt), _NUMBER, False),
    *_family(("NumericLessThanEquals", None), _ordered(_parse_number, operator.le), _NUMBER, False),
    *_family(("NumericGreaterThan", None), _ordered(_parse_number, operator.gt), _NUMBER, False),
    *_family(("NumericGreaterThanEquals", None), _ordered(_parse_number, operator.ge), _NUMBER, False),
    *_family(("DateEquals", "DateNotEquals"), _ordered(_parse_date, operator.eq), _DATE, False),
    *_family(("DateLessThan", None), _ordered(_parse_date, operator.lt), _DATE, False),
    *_family(("DateLessThanEquals", None), _ordered(_parse_date, operator.le), _DATE, False),
    *_family(("DateGreaterThan", None), _ordered(_parse_date, operator.gt), _DATE, False),
    *_family(("DateGreaterThanEquals", None), _ordered(_parse_date, operator.ge), _DATE, False),
    *_family(("Bool", None), _bool_equals, _BOOL, False),
    *_family(
        ("BinaryEquals", None), _binary_equals, _checker(_decode_binary, "a base64-encoded value"), False
    ),
    *_family(
        ("IpAddress", "NotIpAddress"),
        _in_network,
        _checker(_parse_network, "an IPv4 or IPv6 address or CIDR such as 203.0.113.0/24"),
        False,
    ),
    *_family(("ArnLike", "ArnNotLike"), _arn_like, _anything, True),
    *_family(("ArnEquals", "ArnNotEquals"), _arn_like, _anything, True),
    BaseOperator("Null", None, False, _BOOL, False),
]
OPERATORS: dict[str, BaseOperator] = {base.name.lower(): base for base in _ALL}
_SET_OPERATORS = {member.value.lower(): member for member in SetOperator}


def parse_operator(name: str) -> Operator:
    """Read ``[ForAnyValue:|ForAllValues:]Base[IfExists]`` (case-insensitively, as AWS accepts it).

    Raises ValueError with a message that names the operator and, when close, the one probably meant.
    """
    prefix, colon, rest = name.partition(":")
    set_operator = _SET_OPERATORS.get(prefix.lower()) if colon else None
    if colon and set_operator is None:
        raise ValueError(f"unknown operator {name}; the only prefixes are ForAnyValue: and ForAllValues:")
    base_name = rest if colon else name
    if_exists = base_name.lower().endswith(_IF_EXISTS.lower())
    if if_exists:
        base_name = base_name[: -len(_IF_EXISTS)]
    base = OPERATORS.get(base_name.lower())
    if base is None:
        close = difflib.get_close_matches(base_name, [b.name for b in _ALL], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"unknown operator {name}{hint}")
    if if_exists and base.compare is None:
        raise ValueError(f"{name}: Null takes no IfExists, since it already tests whether the key exists")
    return Operator(name, base, set_operator, if_exists)
