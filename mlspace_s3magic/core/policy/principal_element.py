"""The Principal and NotPrincipal elements: parsed into entries, then matched against the caller.

How an entry matches matters as much as whether it does: in the caller's own account a grant to the user or
the session ARN stands alone, a grant to the role ARN is capped by the boundary and session policy, and a
grant to the account only delegates to the account's own identity policies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, IntEnum
from functools import cached_property, lru_cache

from .arns import is_account_id, parse_arn, resource_name
from .errors import PolicyValidationError
from .principals import Principal, PrincipalType

_UNIQUE_ID = re.compile(r"A(?:IDA|ROA)[A-Z0-9]{12,}")
PRINCIPAL_TYPES = ("AWS", "Service", "Federated", "CanonicalUser")


class EntryKind(Enum):
    """What one principal entry names."""

    EVERYONE = "everyone"
    ACCOUNT = "account"
    USER = "user"
    ROLE = "role"
    SESSION = "role session"
    FEDERATED_USER = "federated user"
    UNIQUE_ID = "unique id"
    SERVICE = "service"
    FEDERATED = "identity provider"
    CANONICAL_USER = "canonical user"


class Grant(IntEnum):
    """How a statement reaches the caller, weakest first, so the strongest of several matches wins."""

    ACCOUNT = 1
    ROLE = 2
    DIRECT = 3


@dataclass(frozen=True)
class PrincipalEntry:
    """One named principal; ``key`` is what it is compared by (the account, role name or ARN)."""

    kind: EntryKind
    value: str
    key: str


@dataclass(frozen=True)
class PrincipalElement:
    """A statement's Principal (``negated`` False) or NotPrincipal (``negated`` True)."""

    entries: tuple[PrincipalEntry, ...]
    negated: bool

    @cached_property
    def listed(self) -> frozenset[tuple[EntryKind, str]]:
        """The entries as the caller's identities are compared with them, kept for the next request."""
        return frozenset((entry.kind, entry.key) for entry in self.entries)

    @cached_property
    def everyone(self) -> bool:
        """Whether the element names everyone (``"*"``)."""
        return (EntryKind.EVERYONE, "*") in self.listed


_GRANTS = {
    EntryKind.ACCOUNT: Grant.ACCOUNT,
    EntryKind.ROLE: Grant.ROLE,
    EntryKind.USER: Grant.DIRECT,
    EntryKind.SESSION: Grant.DIRECT,
    EntryKind.FEDERATED_USER: Grant.DIRECT,
}
_OTHER_KINDS = {
    "Service": EntryKind.SERVICE,
    "Federated": EntryKind.FEDERATED,
    "CanonicalUser": EntryKind.CANONICAL_USER,
}


def parse_principal_element(raw: object, *, negated: bool, path: str) -> PrincipalElement:
    """Read ``"*"`` or ``{"AWS"|"Service"|"Federated"|"CanonicalUser": value or [values]}``."""
    if raw == "*":
        return PrincipalElement((PrincipalEntry(EntryKind.EVERYONE, "*", "*"),), negated)
    if not isinstance(raw, dict) or not raw:
        raise PolicyValidationError(path, f'expected "*" or an object with keys {", ".join(PRINCIPAL_TYPES)}')
    entries: list[PrincipalEntry] = []
    for kind, values in raw.items():
        if kind not in PRINCIPAL_TYPES:
            raise PolicyValidationError(
                path, f"unknown principal type {kind!r}; accepted: {', '.join(PRINCIPAL_TYPES)}"
            )
        listed = values if isinstance(values, list) else [values]
        if not listed:
            raise PolicyValidationError(f"{path}.{kind}", "the list of principals is empty")
        for index, value in enumerate(listed):
            where = f"{path}.{kind}[{index}]" if isinstance(values, list) else f"{path}.{kind}"
            if not isinstance(value, str) or not value:
                raise PolicyValidationError(where, "a principal must be a non-empty string")
            if kind == "AWS":
                entries.append(_aws_entry(value, where))
            else:
                entries.append(PrincipalEntry(_OTHER_KINDS[kind], value, value))
    return PrincipalElement(tuple(entries), negated)


def _aws_entry(value: str, path: str) -> PrincipalEntry:
    """An ``AWS`` principal: ``*``, an account (id or root ARN), a user, role, session or unique id."""
    if value == "*":
        return PrincipalEntry(EntryKind.EVERYONE, value, value)
    if is_account_id(value):
        return PrincipalEntry(EntryKind.ACCOUNT, value, value)
    if _UNIQUE_ID.fullmatch(value):
        return PrincipalEntry(EntryKind.UNIQUE_ID, value, value)
    if "*" in value or "?" in value:
        raise PolicyValidationError(
            path,
            f'{value!r}: a principal cannot hold wildcards; use "*" alone or a condition on aws:PrincipalArn',
        )
    arn = parse_arn(value)
    if arn is not None and is_account_id(arn.account):
        kind, _, rest = arn.resource.partition("/")
        if arn.service == "iam" and arn.resource == "root":
            return PrincipalEntry(EntryKind.ACCOUNT, value, arn.account)
        if arn.service == "iam" and kind == "user" and rest:
            return PrincipalEntry(EntryKind.USER, value, value)
        if arn.service == "iam" and kind == "role" and rest:
            return PrincipalEntry(EntryKind.ROLE, value, f"{arn.account}:{resource_name(rest)}")
        if arn.service == "sts" and kind == "assumed-role" and rest.count("/") == 1:
            return PrincipalEntry(EntryKind.SESSION, value, value)
        if arn.service == "sts" and kind == "federated-user" and rest:
            return PrincipalEntry(EntryKind.FEDERATED_USER, value, value)
    raise PolicyValidationError(
        path,
        f"{value!r} is not an AWS principal; expected an account id, arn:aws:iam::ACCOUNT:root, "
        'a user, role, assumed-role session or federated-user ARN, a unique id (AIDA.../AROA...), or "*"',
    )


@lru_cache(maxsize=256)
def _caller_keys(caller: Principal) -> frozenset[tuple[EntryKind, str]]:
    """Every identity AWS checks the caller as: session, role and account (or user and account); worked out
    once per caller, as a caller meets many statements."""
    if caller.type is PrincipalType.ANONYMOUS or caller.arn is None or caller.account is None:
        return frozenset({(EntryKind.EVERYONE, "*")})
    keys = {(EntryKind.ACCOUNT, caller.account)}
    if caller.type is PrincipalType.USER:
        keys.add((EntryKind.USER, caller.arn))
    elif caller.type is PrincipalType.ASSUMED_ROLE:
        keys.add((EntryKind.SESSION, caller.arn))
        keys.add((EntryKind.ROLE, f"{caller.account}:{caller.name}"))
    elif caller.type is PrincipalType.FEDERATED_USER:
        keys.add((EntryKind.FEDERATED_USER, caller.arn))
    return frozenset(keys)


def grant_for(
    element: PrincipalElement, caller: Principal, *, deny: bool, has_boundary: bool
) -> Grant | None:
    """How the element reaches the caller, or None when the statement does not apply to the caller.

    A Deny with NotPrincipal spares the caller only when every identity it is checked as is listed (AWS: list
    the session, the role and the account), and always applies to a caller with a boundary. An Allow with
    NotPrincipal (which AWS does not support; the parser warns) grants only when none of them is listed.
    """
    keys = _caller_keys(caller)
    listed = element.listed
    everyone = element.everyone
    if element.negated:
        if not deny:
            return None if everyone or not keys.isdisjoint(listed) else Grant.DIRECT
        spared = everyone or keys <= listed
        if has_boundary and caller.type is not PrincipalType.ANONYMOUS:
            spared = False
        return None if spared else Grant.DIRECT
    if everyone:
        return Grant.DIRECT
    return max((_GRANTS[kind] for kind, key in keys & listed), default=None)
