"""The KMS key a fix grants: one key named by its ARN, or the bucket's default key when it could not be read.

Why apart: the key decides the grants' resources and conditions, and an unread key is discovered by the
owner's command at run time; both shapes are shared by every fix builder of a plan.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.core.ceiling import GrantedKey
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.names import KMS_KEY_ARN, S3_ENCRYPTION_CONTEXT, BucketRef, s3_via_service
from mlspace_s3magic.core.render import terminal_safe


class InvalidKeyArn(InvalidInput, ValueError):
    """A KMS key given for a fix is not one key's ARN, which would reach a policy and a shell command."""


@dataclass(frozen=True)
class NamedKey:
    """A KMS key ARN's parts: the key policy belongs to its account, and S3 uses it in its region."""

    arn: str
    partition: str
    region: str
    account: str

    @classmethod
    def parse(cls, arn: str) -> NamedKey:
        """Strictly one key's ARN: the ARN reaches policy documents and shell commands, where a wildcard
        would grant every key and any other character could change the command."""
        match = KMS_KEY_ARN.fullmatch(arn)
        if match is None:
            raise InvalidKeyArn(
                f"{terminal_safe(repr(arn))} is not a KMS key ARN ({key_arn_problem(arn)}). Accepted: "
                "arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID with a 12-digit account and a key id in UUID "
                "form (1234abcd-12ab-34cd-56ef-1234567890ab) or mrk- and 32 hex digits; no alias, no "
                "wildcard, no whitespace. Find the key's ARN with aws kms describe-key --key-id ALIAS."
            )
        return cls(arn, match["partition"], match["region"], match["account"])

    @property
    def via_s3(self) -> dict[str, Any]:
        """Limits key use to requests S3 makes on the caller's behalf."""
        return {"StringEquals": {"kms:ViaService": [s3_via_service(self.arn)]}}

    @property
    def resource(self) -> str:
        return self.arn

    @property
    def granted(self) -> GrantedKey:
        return GrantedKey(self.account, self.arn)

    @property
    def name(self) -> str:
        return f"the KMS key {self.arn}"


@dataclass(frozen=True)
class BucketKey:
    """The bucket's default KMS key when it could not be read here (the encryption configuration denied,
    or a key named by id or alias): the grants name every key of the bucket owner's account, but only for
    S3's use on this bucket's objects (``kms:EncryptionContext:aws:s3:arn``), and the commands that must
    name the key read it at run time from the bucket's default encryption."""

    ref: BucketRef
    partition: str
    account: str

    @property
    def via_s3(self) -> dict[str, Any]:
        """S3 in any region (the key's is unknown), for this bucket's objects under the prefix only (the
        bucket's ARN is the context when the bucket uses S3 Bucket Keys)."""
        return {
            "StringLike": {
                "kms:ViaService": [s3_via_service(self.resource)],
                S3_ENCRYPTION_CONTEXT: [self.ref.bucket_arn, self.ref.objects_arn],
            }
        }

    @property
    def resource(self) -> str:
        return f"arn:{self.partition}:kms:*:{self.account}:key/*"

    @property
    def granted(self) -> GrantedKey:
        return GrantedKey(self.account)

    @property
    def name(self) -> str:
        return f"the KMS key of {self.ref.bucket}'s default encryption, whichever key of {self.account}"

    def discovery_lines(self, *, without: str = "exit 0") -> list[str]:
        """Shell lines that set ``$key`` and ``$region`` to the bucket's default KMS key and its region,
        and run ``without`` when the bucket's default encryption uses no KMS key (``$key`` is then empty);
        the key must be one of the owner account's, which the grants name."""
        bucket = shlex.quote(self.ref.bucket)
        query = shlex.quote(
            "ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID"
        )
        none = shlex.quote(f"{self.ref.bucket}'s default encryption uses no KMS key: no key to change.")
        other = shlex.quote(
            f"The bucket's key is not a key of account {self.account}, which the grants name: run the check "
            "with the admin endpoint, which reads the key."
        )
        return [
            "# The bucket's KMS key could not be read here: read it from the bucket's default encryption.",
            f"if ! key=$(aws s3api get-bucket-encryption --bucket {bucket} --query {query} --output text "
            "2>encryption.err); then",
            "  # A bucket without a default encryption configuration (SSE-S3 only) uses no KMS key.",
            "  grep -q ServerSideEncryptionConfigurationNotFoundError encryption.err || "
            "{ cat encryption.err >&2; exit 1; }",
            '  key=""',
            "fi",
            'if [ -z "$key" ] || [ "$key" = None ]; then',
            f"  echo {none} >&2",
            '  key=""',
            f"  {without}",
            "else",
            f"  region=$(aws s3api get-bucket-location --bucket {bucket} "
            "--query LocationConstraint --output text)",
            '  case "$region" in None|"") region=us-east-1 ;; EU) region=eu-west-1 ;; esac',
            '  key=$(aws kms describe-key --key-id "$key" --region "$region" '
            "--query KeyMetadata.Arn --output text)",
            '  case "$key" in',
            f"    arn:{self.partition}:kms:*:{self.account}:key/*) ;;",
            f"    *) echo {other} >&2; exit 1 ;;",
            "  esac",
            '  echo "the bucket\'s KMS key: $key"',
            "fi",
        ]


AnyKey = NamedKey | BucketKey


def key_arn_problem(arn: str) -> str:
    """What is wrong with a text that is not a key ARN, for the error message."""
    parts = arn.split(":", 5)
    if any(character in arn for character in "*?"):
        return "it holds a wildcard"
    if any(character.isspace() for character in arn):
        return "it holds whitespace"
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return "it is not an ARN of the kms service"
    if parts[5].startswith("alias/"):
        return "it names an alias, not a key"
    if not re.fullmatch(r"[0-9]{12}", parts[4], re.ASCII):
        return "its account is not 12 digits"
    return "its partition, region or key id is malformed"
