"""Editing a policy document in place, shared by the notebook's fixes and the admin's grants and revokes.

Every statement a grant adds carries a Sid made of one stem plus a suffix from :data:`SID_SUFFIXES`, so a
revoke can find and remove exactly the statements a grant added, and nothing else in the document moves.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.names import BucketRef

Document = dict[str, Any]
Statement = dict[str, Any]

POLICY_VERSION = "2012-10-17"
SID_MAX_LENGTH = 100
SID_SUFFIXES = ("Objects", "List", "Kms")
SID_STEM_MAX_LENGTH = SID_MAX_LENGTH - max(len(suffix) for suffix in SID_SUFFIXES)
ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")


def statements_of(document: Any) -> list[Any]:
    """A document's statements as a list: AWS accepts ``Statement`` as one object or a list of them, and a
    missing one (or anything that is not a document) has none."""
    statements = document.get("Statement", []) if isinstance(document, Mapping) else []
    return list(statements) if isinstance(statements, list) else [statements]


def sid_stem(ref: BucketRef, access: AccessLevel, grantee: str = "") -> str:
    """The default stem: ``S3Access`` + level + grantee + bucket and prefix, in CamelCase since IAM Sids allow
    only ``[A-Za-z0-9]``; cut, with a digest of the full name so long names stay distinct, to 100 characters.

    The grantee (``project demo``, ``user alice``) keeps two projects' statements in one bucket policy apart:
    with the same Sid, the second grant would replace the first.
    """
    level = {AccessLevel.LIST: "List", AccessLevel.READ: "Read"}.get(access, "ReadWrite")
    named = f"{grantee} {ref.bucket}/{ref.prefix}"
    stem = "S3Access" + level + "".join(word[0].upper() + word[1:] for word in ALPHANUMERIC.findall(named))
    if len(stem) <= SID_STEM_MAX_LENGTH:
        return stem
    digest = hashlib.sha256(named.encode("utf-8")).hexdigest()[:8]
    return stem[: SID_STEM_MAX_LENGTH - len(digest)] + digest


def merge_statements(current: Document | None, statements: Sequence[Statement]) -> Document:
    """The current document with our statements added: one with the same Sid is replaced in place, every
    other statement and top-level key (``Version``, ``Id``) is kept as it was; ``None`` gives a new document.
    """
    if current is None:
        return {"Version": POLICY_VERSION, "Statement": copy.deepcopy(list(statements))}
    document = copy.deepcopy(current)
    ours = {statement["Sid"]: statement for statement in statements}
    merged: list[Any] = []
    placed: set[str] = set()
    for statement in statements_of(document):
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        if not isinstance(sid, str) or sid not in ours:
            merged.append(statement)
        elif sid not in placed:
            merged.append(copy.deepcopy(ours[sid]))
            placed.add(sid)
    merged.extend(copy.deepcopy(statement) for statement in statements if statement["Sid"] not in placed)
    document["Statement"] = merged
    return document


def is_ours(statement: Any, sid_stem: str) -> bool:
    """Whether a fix with this stem added the statement: its Sid is the stem plus one of :data:`SID_SUFFIXES`.

    The suffix must match exactly, so stem ``S3AccessReq1`` never claims ``S3AccessReq12Objects``.
    """
    sid = statement.get("Sid") if isinstance(statement, dict) else None
    return isinstance(sid, str) and sid.startswith(sid_stem) and sid[len(sid_stem) :] in SID_SUFFIXES


def remove_statements(document: Document, sid_stem: str, *, as_object: bool = False) -> Document:
    """The document without this stem's statements; every other statement and key is kept as it was.

    :func:`merge_statements` turns a single-object ``Statement`` into a list; ``as_object`` says the document
    had that form before, so when exactly one statement remains it is given back as the object again.
    """
    result = copy.deepcopy(document)
    listed = statements_of(result)
    kept = [statement for statement in listed if not is_ours(statement, sid_stem)]
    if "Statement" in result and len(kept) != len(listed):
        result["Statement"] = kept[0] if as_object and len(kept) == 1 else kept
    return result


def policy_literal(text: str) -> str:
    """Text as a policy matches it literally: ``$`` written ``${$}``, so a prefix such as
    ``${aws:username}/`` never becomes a live policy variable (IAM's escape; the Resource element and
    StringLike values expand variables)."""
    return text.replace("$", "${$}")
