"""ARN parsing shared by principals, resources and the evaluator, so all split ARNs the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCOUNT_ID = re.compile(r"\d{12}")


@dataclass(frozen=True)
class Arn:
    """The six colon-separated parts of an ARN; ``resource`` keeps any further colons."""

    partition: str
    service: str
    region: str
    account: str
    resource: str


def parse_arn(text: str) -> Arn | None:
    """Split an ARN into its parts, or None when the text is not an ARN."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return Arn(parts[1], parts[2], parts[3], parts[4], parts[5])


def require_arn(text: str) -> Arn:
    """Split text that must be an ARN (one AWS returned, or one validated before); ValueError if it is not."""
    arn = parse_arn(text)
    if arn is None:
        raise ValueError(f"not an ARN: {text!r}")
    return arn


def s3_location(text: str) -> tuple[str, str] | None:
    """The bucket and key an S3 bucket or object ARN names (``arn:aws:s3:::b/k`` gives ``("b", "k")``, a
    bucket's own ARN the key ``""``), or None for other text: access point ARNs name a region and account."""
    arn = parse_arn(text)
    if arn is None or arn.service != "s3" or arn.region or arn.account:
        return None
    bucket, _, key = arn.resource.partition("/")
    return bucket, key


def resource_name(text: str) -> str:
    """The last part of an IAM resource ARN's path, its name (``arn:aws:iam::1:policy/a/b`` gives ``b``);
    the text itself when it has no slash (a bare name)."""
    return text.rsplit("/", 1)[-1]


def iam_role_arn(partition: str, account: str, name: str) -> str:
    """The ARN of the IAM role ``name`` (no path: MLSpace's roles and ours have none)."""
    return f"arn:{partition}:iam::{account}:role/{name}"


def is_account_id(text: str) -> bool:
    """Whether the text is a 12-digit AWS account id."""
    return ACCOUNT_ID.fullmatch(text) is not None


def caller_parts(resource: str) -> tuple[str, str, str]:
    """A caller ARN's resource as its kind, name and session (``""`` where it has none), split here once for
    every reader of caller ARNs: ``assumed-role/R/S`` gives ``("assumed-role", "R", "S")``, ``user/path/N``
    gives ``("user", "N", "")`` (a path is no part of the name), ``root`` gives ``("root", "", "")``."""
    kind, _, rest = resource.partition("/")
    if kind == "assumed-role":
        role, _, session = rest.partition("/")
        return kind, role, session
    return kind, resource_name(rest), ""
