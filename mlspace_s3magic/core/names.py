"""Bucket references as users type them, validated against S3's naming rules with errors that say which rule.

Accepted: ``bucket``, ``bucket/prefix``, ``s3://bucket/prefix``, ``arn:aws:s3:::bucket/prefix`` and access
point ARNs (``arn:aws:s3:REGION:ACCOUNT:accesspoint/NAME[/object/KEY]``). Legacy names (us-east-1 buckets
made before 1 March 2018, which may hold capitals and underscores, like the runbook's ``BucketToBeShared``)
are accepted with a note.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.policy.arns import parse_arn, require_arn

ACCEPTED_FORMS = (
    "a bucket name, bucket/prefix, s3://bucket/prefix, arn:aws:s3:::bucket/prefix or an access point ARN"
)
_MODERN_CHARACTERS = re.compile(r"^[a-z0-9.-]+$")
_LEGACY_CHARACTERS = re.compile(r"^[A-Za-z0-9._-]+$")
_ACCESS_POINT_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):s3:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"accesspoint/(?P<name>[a-z0-9-]{3,50})(?:/object/(?P<key>.*))?$"
)
LEGACY_NOTE = (
    "{bucket} is a legacy bucket name ({problem}): only us-east-1 buckets created before 1 March 2018 may "
    "have one, and they are reached with path-style requests."
)


class InvalidBucketReference(InvalidInput):
    """The text does not name a bucket S3 could hold; the message says which rule it breaks."""


@dataclass(frozen=True)
class BucketRef:
    """A bucket and an optional prefix, or an access point, as one request's target."""

    bucket: str
    prefix: str = ""
    partition: str = "aws"
    access_point_arn: str | None = None
    access_point_account: str | None = None
    legacy_name: bool = False
    # The prefix as typed, when it lacked its closing "/" and was taken as that folder (see as_folder).
    typed_prefix: str | None = None

    @property
    def bucket_arn(self) -> str:
        return self.access_point_arn or f"arn:{self.partition}:s3:::{self.bucket}"

    def object_arn(self, key: str) -> str:
        if self.access_point_arn:
            return f"{self.access_point_arn}/object/{key}"
        return f"arn:{self.partition}:s3:::{self.bucket}/{key}"

    @property
    def objects_arn(self) -> str:
        """Every object under the prefix, as a policy names them (``arn:aws:s3:::bucket/prefix*``)."""
        return self.object_arn(f"{self.prefix}*")

    def as_folder(self) -> BucketRef:
        """The same target with its prefix taken as a folder, as grants and checks scope it: a grant on
        ``datasets`` would also open ``datasets-private/``, so ``datasets`` means ``datasets/``."""
        if not self.prefix or self.prefix.endswith("/"):
            return self
        return replace(self, prefix=folder_prefix(self.prefix), typed_prefix=self.prefix)

    @property
    def notes(self) -> tuple[str, ...]:
        notes = []
        if self.legacy_name:
            notes.append(LEGACY_NOTE.format(bucket=self.bucket, problem=modern_rule_broken(self.bucket)))
        if self.typed_prefix is not None:
            notes.append(
                f"The prefix {self.typed_prefix!r} is taken as the folder {self.prefix!r}: access to "
                f"{self.typed_prefix!r} alone would also reach {self.typed_prefix + '-private/'!r} and "
                "any other name that starts the same way."
            )
        return tuple(notes)

    def __str__(self) -> str:
        if self.access_point_arn:
            return self.object_arn(self.prefix) if self.prefix else self.access_point_arn
        return f"s3://{self.bucket}/{self.prefix}"


def folder_prefix(prefix: str) -> str:
    """A prefix as the folder it names: ``datasets`` and ``datasets/`` both mean ``datasets/``."""
    return prefix if not prefix or prefix.endswith("/") else f"{prefix}/"


def parse_bucket_reference(text: str) -> BucketRef:
    """Read what a user typed into a :class:`BucketRef`, or explain exactly what is wrong with it."""
    reference = text.strip()
    if not reference:
        raise InvalidBucketReference(f"No bucket given; expected {ACCEPTED_FORMS}.")
    if reference.startswith("arn:"):
        return _parse_arn(reference)
    if "://" in reference:
        scheme, _, rest = reference.partition("://")
        if scheme.lower() not in ("s3", "s3a", "s3n"):
            raise InvalidBucketReference(
                f"{reference!r} uses the scheme {scheme!r}; expected {ACCEPTED_FORMS}."
            )
        reference = rest
    bucket, _, prefix = reference.partition("/")
    return BucketRef(bucket=bucket, prefix=prefix, legacy_name=validate_bucket_name(bucket))


def _parse_arn(arn: str) -> BucketRef:
    if match := _ACCESS_POINT_ARN.match(arn):
        name = match.group("name")
        return BucketRef(
            bucket=name,
            prefix=match.group("key") or "",
            partition=match.group("partition"),
            access_point_arn=arn.split("/object/", 1)[0],
            access_point_account=match.group("account"),
        )
    parts = parse_arn(arn)
    if parts is None or parts.service != "s3":
        raise InvalidBucketReference(f"{arn!r} is not an S3 ARN; expected {ACCEPTED_FORMS}.")
    partition, region, account, resource = parts.partition, parts.region, parts.account, parts.resource
    if "accesspoint/" in resource:
        raise InvalidBucketReference(
            f"{arn!r} is not a valid access point ARN: expected "
            "arn:aws:s3:REGION:ACCOUNT_ID:accesspoint/NAME (3-50 lowercase letters, digits, hyphens)."
        )
    if region or account:
        raise InvalidBucketReference(
            f"{arn!r} names a region or account, which bucket ARNs never do: "
            f"write arn:{partition}:s3:::BUCKET."
        )
    bucket, _, prefix = resource.partition("/")
    return BucketRef(
        bucket=bucket, prefix=prefix, partition=partition, legacy_name=validate_bucket_name(bucket)
    )


def validate_bucket_name(name: str) -> bool:
    """Raise if S3 could never have such a bucket; return whether it is a legacy (pre-2018) name.

    Only the rules that make a name impossible are applied: reserved prefixes and suffixes (``-s3alias``,
    ``--x-s3``) restrict creating general purpose buckets, yet such names are valid in requests (access point
    aliases, directory buckets), and a name nobody owns is the probe's ``NoSuchBucket`` to report.
    """
    problem = modern_rule_broken(name)
    if problem is None:
        return False
    if _LEGACY_CHARACTERS.match(name) and 3 <= len(name) <= 255 and not _looks_like_ip(name):
        return True
    raise InvalidBucketReference(
        f"{name!r} is not a valid S3 bucket name: {problem}. Bucket names have 3 to 63 lowercase letters, "
        "digits, dots and hyphens, beginning and ending with a letter or digit (legacy us-east-1 names may "
        "also use capitals and underscores)."
    )


def modern_rule_broken(name: str) -> str | None:
    """The first of today's naming rules that ``name`` breaks, in words, or ``None``."""
    if not name:
        return "it is empty"
    if _MODERN_CHARACTERS.match(name) is None:
        bad = sorted({c for c in name if not (c.islower() or c.isdigit() or c in ".-") or not c.isascii()})
        return "it contains " + ", ".join(repr(c) for c in bad)
    if not 3 <= len(name) <= 63:
        return f"it has {len(name)} characters"
    if not (name[0].isalnum() and name[-1].isalnum()):
        return "it must begin and end with a letter or digit"
    if ".." in name:
        return "it has two periods in a row"
    if _looks_like_ip(name):
        return "it is formatted as an IP address"
    return None


def _looks_like_ip(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


_DNS_SUFFIXES = {"aws-cn": "amazonaws.com.cn"}


# A KMS key ARN exactly: no alias, no wildcard, a key id in UUID form or a multi-Region key's mrk- form.
KMS_KEY_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+):(?P<account>[0-9]{12}):"
    r"key/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})",
    re.ASCII,
)


def is_kms_key_arn(text: str) -> bool:
    """Whether ``text`` is one key's full ARN (S3 also accepts a key id or an alias where a key is named)."""
    return KMS_KEY_ARN.fullmatch(text) is not None


S3_ENCRYPTION_CONTEXT = "kms:EncryptionContext:aws:s3:arn"


def s3_kms_context(key_arn: str, object_arn: str) -> dict[str, str]:
    """What S3 tells KMS when it uses a key for a caller's object: itself in the key's region, and the
    object's ARN as encryption context (the bucket's with S3 Bucket Keys):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context"""
    return {"kms:ViaService": s3_via_service(key_arn), S3_ENCRYPTION_CONTEXT: object_arn}


def s3_via_service(key_arn: str) -> str:
    """The ``kms:ViaService`` value when S3 uses this key for a caller: S3 in the key's region (a bucket's
    SSE-KMS key is in the bucket's region), never the region the caller's client happens to use."""
    key = require_arn(key_arn)
    return f"s3.{key.region}.{_DNS_SUFFIXES.get(key.partition, 'amazonaws.com')}"
