"""What MLSpace's permissions boundary must allow for every live grant, written in as few characters as IAM
counts, and recomputed from every live grant on each apply and revoke.

Why: MLSpace's boundary is 6,004 of IAM's 6,144 characters in every commercial region (140 free), so a
statement per request does not fit even once. The boundary's room is used in the smallest form that fits:

1. the granted buckets' ARNs appended to MLSpace's own S3 statements (the read statement allowing exactly
   ``s3:GetObject`` and ``s3:ListBucket``; for writes, the data bucket's object statement), about
   2 x (name length) + 30 characters a bucket;
2. else one statement of ours listing the buckets' ARNs;
3. else one statement of ours for every bucket of the granted buckets' accounts (``aws:ResourceAccount``),
   never for MLSpace's own account, whose data bucket the boundary scopes by prefix.

A KMS key a grant uses through S3 takes the same path: its ARN appended to MLSpace's own statement that
allows MLSpace's key (about 78 characters), else one statement of ours listing the keys, else every key of
the keys' accounts (``arn:*:kms:*:ACCOUNT:key/*``), never MLSpace's own account: there a key policy that
names a role grants by itself, capped only by the boundary, while another account's key policy also needs
the role's identity policies, which our grants limit to S3 for this bucket. A key that another statement of
the boundary names (MLSpace's own) is never taken out.

The boundary stays a ceiling either way: our grant policies and the bucket policies decide per bucket and
prefix. A statement of ours carries no Sid (it would not fit); it is recognised by its shape, which no MLSpace
statement has. ARNs appended to MLSpace's statements are removed only for buckets a revoked grant added and
no live grant still needs.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.core.errors import Conflict
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.policy_edit import Document, Statement, statements_of

# A statement of ours: the object actions (get, put, delete...) and the list actions; for keys, what S3
# asks KMS for when it reads and writes.
CEILING_ACTIONS = ("s3:*Object", "s3:List*")
CEILING_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
ACCOUNT_KEY = "aws:ResourceAccount"
# MLSpace's boundary statements that ARNs are appended to (CDK sorts their Action lists).
READ_HOST_ACTIONS = ("s3:GetObject", "s3:ListBucket")
WRITE_HOST_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging")
# MLSpace's boundary statement allowing its own key (and the notebooks' network interfaces).
KEY_HOST_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
)
_EVERY_KEY = re.compile(r"arn:\*:kms:\*:(?P<account>\d{12}):key/\*")
_OURS_KEYS = {"Effect", "Action", "Resource", "Condition"}


class CeilingDoesNotFit(Conflict):
    """No form fits in the boundary; the message gives the figures and the admin's options, and
    ``smallest`` is the smallest document tried (over IAM's limit), for a plan to show and refuse."""

    def __init__(self, message: str, smallest: Document):
        super().__init__(message)
        self.smallest = smallest


@dataclass(frozen=True)
class GrantedBucket:
    """What a live grant reaches: a bucket (None: every bucket of the account, from a per-account statement
    already in place), the account that owns it (None: unknown), and whether the grant writes."""

    bucket: str | None
    account: str | None
    write: bool = False


@dataclass(frozen=True)
class GrantedKey:
    """A KMS key a live grant uses through S3: its ARN, or (``arn`` None) every key of ``account``."""

    account: str
    arn: str | None = None

    @property
    def resource(self) -> str:
        """The key as the boundary names it."""
        return self.arn or every_key_of(self.account)


Granted = GrantedBucket | GrantedKey


def every_key_of(account: str) -> str:
    """Every KMS key of an account, in any partition and region, as the boundary writes it."""
    return f"arn:*:kms:*:{account}:key/*"


def key_listing_statement(resources: Iterable[str]) -> Statement:
    """The statement of ours that lists keys (for a boundary without MLSpace's KMS statement)."""
    return {"Effect": "Allow", "Action": list(CEILING_KEY_ACTIONS), "Resource": list(resources)}


def bucket_arns(bucket: str) -> tuple[str, str]:
    """The bucket's ARN and its objects', as the boundary writes them (any partition, like MLSpace's)."""
    return f"arn:*:s3:::{bucket}", f"arn:*:s3:::{bucket}/*"


def listing_statement(buckets: Iterable[str]) -> Statement:
    """The statement of ours that lists buckets (for a boundary without MLSpace's S3 statements)."""
    resources = [arn for bucket in buckets for arn in bucket_arns(bucket)]
    return {"Effect": "Allow", "Action": list(CEILING_ACTIONS), "Resource": resources}


def is_ceiling_statement(statement: object) -> bool:
    """Whether a boundary statement is one of ours: no Sid, Allow, exactly :data:`CEILING_ACTIONS` or
    :data:`CEILING_KEY_ACTIONS`."""
    return (
        isinstance(statement, Mapping)
        and set(statement) <= _OURS_KEYS
        and statement.get("Effect") == "Allow"
        and statement.get("Action") in (list(CEILING_ACTIONS), list(CEILING_KEY_ACTIONS))
    )


def accounts_in(document: Mapping[str, Any] | None) -> set[str]:
    """The accounts a per-account statement of ours already opens."""
    accounts: set[str] = set()
    for statement in statements_of(document):
        condition = statement.get("Condition") if is_ceiling_statement(statement) else None
        if isinstance(condition, Mapping):
            value = condition.get("StringEquals", {}).get(ACCOUNT_KEY, [])
            accounts.update(value if isinstance(value, list) else [value])
    return accounts


def key_accounts_in(document: Mapping[str, Any] | None) -> set[str]:
    """The accounts whose every key the boundary already lets through, in a form of ours."""
    return {
        match["account"]
        for statement in statements_of(document)
        if isinstance(statement, Mapping)
        for resource in _resources(statement)
        if (match := _EVERY_KEY.fullmatch(resource))
    }


def with_ceiling(
    document: Mapping[str, Any],
    granted: Iterable[Granted],
    *,
    previous: Iterable[Granted] = (),
    home_account: str,
) -> Document:
    """The boundary allowing every bucket and key in ``granted`` and nothing more of ours: the ARNs of
    ``previous`` (what our grants added before) and our own statements are taken out first, then
    ``granted`` is written in the smallest form that fits. Every other statement and key is kept as it was.

    Raises CeilingDoesNotFit, before anything is written, when no form fits.
    """
    granted, previous = list(granted), list(previous)
    wanted = _ordered(g for g in granted if isinstance(g, GrantedBucket))
    # Every key of MLSpace's own account is never let through (a grant of an unread key there had its
    # key read and named by the admin's command, and keeps it).
    keys = sorted(
        {g for g in granted if isinstance(g, GrantedKey) and (g.arn or g.account != home_account)},
        key=lambda g: (g.account, g.arn or ""),
    )
    names: set[str] = {g.bucket for g in wanted if g.bucket is not None}
    before = [statement for statement in statements_of(document) if not is_ceiling_statement(statement)]
    gone: set[str] = {g.bucket for g in previous if isinstance(g, GrantedBucket) and g.bucket} - names
    # A key another statement names is MLSpace's own; every-key forms are always rewritten.
    protected = {
        r for statement in before if not _is_host(statement, KEY_HOST_ACTIONS) for r in _resources(statement)
    }
    previous_keys = {g.resource for g in previous if isinstance(g, GrantedKey)}
    key_gone = (previous_keys - {g.resource for g in keys} - protected) | _every_key_resources(before)
    # Buckets and keys that stay keep their place in MLSpace's statements; the other forms take them out.
    kept = [_without_keys(_without(statement, gone), key_gone) for statement in before]
    write = _host(kept, WRITE_HOST_ACTIONS)
    if write is not None:  # a bucket granted only for reading now keeps no place among the writes
        reading: set[str] = {g.bucket for g in wanted if g.bucket is not None and not g.write}
        kept[write] = _without(kept[write], reading)
    placed = {g.resource for g in keys} - protected
    cleared = [_without_keys(_without(statement, gone | names), key_gone) for statement in before]
    base = {**copy.deepcopy(dict(document)), "Statement": cleared}
    if not wanted and not keys:
        return copy.deepcopy(base)
    tried: list[tuple[str, int, Document]] = []
    bucket_forms = _forms(kept, cleared, wanted, home_account) if wanted else [("", kept)]
    for bucket_form, statements in bucket_forms:
        for key_form, keyed in _key_forms(statements, keys, placed, home_account):
            candidate = {**base, "Statement": keyed}
            size = iam_size(candidate)
            name = "; ".join(part for part in (bucket_form, key_form) if part)
            if size <= MANAGED_POLICY_MAX_CHARS:
                return copy.deepcopy(candidate)  # the caller's document shares no statement with the result
            tried.append((name, size, candidate))
    smallest = min(tried, key=lambda attempt: attempt[1])[2]
    sizes = [(name, size) for name, size, _ in tried]
    without = iam_size({**base, "Statement": [_without_keys(statement, placed) for statement in cleared]})
    raise CeilingDoesNotFit(_too_large(wanted, keys, without, sizes, home_account), smallest)


def _key_forms(
    statements: list[Any], keys: list[GrantedKey], placed: set[str], home_account: str
) -> Iterable[tuple[str, list[Any]]]:
    """Each form that can be written for ``keys`` over ``statements``, most precise first. ``placed`` are
    the wanted keys' resources, which the forms but the first take out of MLSpace's statement."""
    if not keys:
        yield "", statements
        return
    host = _host(statements, KEY_HOST_ACTIONS)
    stripped = [_without_keys(statement, placed) for statement in statements]
    exact = [g.resource for g in keys]
    if host is not None:
        hosted = copy.deepcopy(statements)
        _append(hosted[host], exact)
        yield "the keys' ARNs in MLSpace's KMS statement", hosted
    yield "one statement listing the keys", [*stripped, key_listing_statement(exact)]
    accounts = sorted({g.account for g in keys})
    if home_account in accounts:
        return
    every = [every_key_of(account) for account in accounts]
    if host is not None:
        hosted = copy.deepcopy(stripped)
        _append(hosted[host], every)
        yield f"every key of {', '.join(accounts)} in MLSpace's KMS statement", hosted
    yield f"one statement for every key of {', '.join(accounts)}", [*stripped, key_listing_statement(every)]


def _forms(
    kept: list[Any], stripped: list[Any], wanted: list[GrantedBucket], home_account: str
) -> Iterable[tuple[str, list[Any]]]:
    """Each form that can be written for ``wanted``, smallest first: ``kept`` still holds the ARNs of the
    buckets that stay, ``stripped`` holds none of ours."""
    named = [g for g in wanted if g.bucket is not None]
    if len(named) == len(wanted):
        hosted = _hosted(kept, named)
        if hosted is not None:
            yield "the buckets' ARNs in MLSpace's S3 statements", hosted
        yield (
            "one statement listing the buckets",
            [*stripped, listing_statement(str(g.bucket) for g in named)],
        )
    accounts = {g.account for g in wanted}
    if None not in accounts and home_account not in accounts:
        listed = sorted(str(account) for account in accounts)
        value: str | list[str] = listed[0] if len(listed) == 1 else listed
        per_account = {
            "Effect": "Allow",
            "Action": list(CEILING_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {ACCOUNT_KEY: value}},
        }
        yield f"one statement for every bucket of {', '.join(listed)}", [*stripped, per_account]


def _hosted(statements: list[Any], wanted: list[GrantedBucket]) -> list[Any] | None:
    """MLSpace's statements with the buckets' ARNs appended, or None when a needed host is missing."""
    read = _host(statements, READ_HOST_ACTIONS)
    write = _host(statements, WRITE_HOST_ACTIONS)
    writes = [g for g in wanted if g.write]
    if read is None or (writes and write is None):
        return None
    hosted = copy.deepcopy(statements)
    _append(hosted[read], [arn for g in wanted for arn in bucket_arns(str(g.bucket))])
    if writes and write is not None:
        _append(hosted[write], [bucket_arns(str(g.bucket))[1] for g in writes])
    return hosted


def _append(statement: Statement, arns: list[str]) -> None:
    """Add the ARNs the statement lacks at its end, leaving those it has where they are."""
    present = set(statement["Resource"])
    statement["Resource"] = [*statement["Resource"], *(arn for arn in arns if arn not in present)]


def _host(statements: list[Any], actions: tuple[str, ...]) -> int | None:
    """The index of MLSpace's unconditional Allow of exactly these actions over a list of resources."""
    return next((index for index, statement in enumerate(statements) if _is_host(statement, actions)), None)


def _is_host(statement: Any, actions: tuple[str, ...]) -> bool:
    return (
        isinstance(statement, Mapping)
        and statement.get("Effect") == "Allow"
        and "Condition" not in statement
        and statement.get("Action") == list(actions)
        and isinstance(statement.get("Resource"), list)
    )


def _without_keys(statement: Any, resources: set[str]) -> Any:
    """MLSpace's KMS statement without these keys (ARNs or every-key forms); any other as it is."""
    if not resources or not _is_host(statement, KEY_HOST_ACTIONS):
        return statement
    kept = [resource for resource in statement["Resource"] if resource not in resources]
    return statement if len(kept) == len(statement["Resource"]) else {**statement, "Resource": kept}


def _every_key_resources(statements: list[Any]) -> set[str]:
    """The every-key forms of ours in MLSpace's KMS statement."""
    return {
        resource
        for statement in statements
        if _is_host(statement, KEY_HOST_ACTIONS)
        for resource in _resources(statement)
        if _EVERY_KEY.fullmatch(resource)
    }


def _resources(statement: Mapping[str, Any]) -> list[str]:
    resources = statement.get("Resource", [])
    return [r for r in (resources if isinstance(resources, list) else [resources]) if isinstance(r, str)]


def _without(statement: Any, buckets: set[str]) -> Any:
    """A statement without the ARNs of these buckets, when it is one the ARNs are appended to."""
    if not isinstance(statement, Mapping) or not isinstance(statement.get("Resource"), list) or not buckets:
        return statement
    arns = {arn for bucket in buckets for arn in bucket_arns(bucket)}
    kept = [arn for arn in statement["Resource"] if arn not in arns]
    if len(kept) == len(statement["Resource"]):
        return statement
    return {**statement, "Resource": kept}


def _ordered(granted: Iterable[GrantedBucket]) -> list[GrantedBucket]:
    """One entry per bucket (its owner when any grant knows it, writing if any grant writes), and one per
    account of a per-account statement, in a stable order so documents compare equal."""
    merged: dict[str, GrantedBucket] = {}
    for g in granted:
        key = f"bucket:{g.bucket}" if g.bucket is not None else f"account:{g.account}"
        known = merged.get(key)
        if known is not None:
            g = GrantedBucket(g.bucket, known.account or g.account, known.write or g.write)
        merged[key] = g
    return [merged[key] for key in sorted(merged)]


def _too_large(
    wanted: list[GrantedBucket],
    keys: list[GrantedKey],
    without: int,
    tried: list[tuple[str, int]],
    home_account: str,
) -> str:
    room = MANAGED_POLICY_MAX_CHARS - without
    attempts = "; ".join(f"{name}: {size:,}" for name, size in tried)
    what = " and keys" if keys else ""
    parts = [
        f"The permissions boundary has no room for the granted buckets{what}: without them it is {without:,} "
        f"of IAM's {MANAGED_POLICY_MAX_CHARS:,} characters ({room:,} free), and with them it would be "
        f"{attempts}."
    ]
    if any(g.account is None for g in wanted):
        parts.append("The per-account form needs every bucket's owner account: register it with the bucket.")
    elif home_account in {g.account for g in wanted} | {g.account for g in keys}:
        parts.append(
            f"The per-account form is not used for MLSpace's own account {home_account}: it would lift the "
            "boundary's limits on MLSpace's data bucket and on every key whose key policy names a role."
        )
    parts.append(
        "Options: revoke a grant that is no longer needed, or give MLSpace a boundary of your own with room "
        "(MLSpace's PERMISSIONS_BOUNDARY_POLICY_NAME setting)."
    )
    return " ".join(parts)
