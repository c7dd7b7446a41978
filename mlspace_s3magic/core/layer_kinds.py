"""The policy layers a grant changes or an admin must be told about, and one specification per layer.

Why one table: which account writes a layer, how large its document may be and how that size is counted,
whether it always exists, and the CLI commands and API calls that read, write and delete it were each decided
in several places by comparing bare strings; the fixes, the admin's plan and its writes now read them from
here.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlspace_s3magic.core.limits import (
    BUCKET_POLICY_MAX_BYTES,
    KEY_POLICY_MAX_BYTES,
    MANAGED_POLICY_MAX_CHARS,
    iam_size,
    json_bytes,
)
from mlspace_s3magic.core.policy.arns import require_arn


class LayerKind(StrEnum):
    """A layer by the name the check, the fixes, the JSON and the admin's store give it."""

    BUCKET_POLICY = "bucket-policy"
    BOUNDARY = "boundary"
    IDENTITY = "identity"
    KMS = "kms"
    SCP = "scp"
    RCP = "rcp"
    ENDPOINT = "endpoint"
    SESSION = "session"
    REQUESTER_PAYS = "requester-pays"
    UNKNOWN = "unknown"


class RunAs(StrEnum):
    """Whose credentials write a layer; ``nobody`` for advice, which no command of ours can carry out."""

    BUCKET_OWNER = "bucket-owner"
    MLSPACE_ADMIN = "mlspace-admin"
    KEY_OWNER = "key-owner"
    NOBODY = "nobody"


class Shell(str):
    """Text the shell expands when the command runs (a variable such as ``"$key"``): put into a command as it
    is, where any other target is quoted."""


def _word(value: str) -> str:
    return value if isinstance(value, Shell) else shlex.quote(value)


@dataclass(frozen=True)
class SizeLimit:
    """How large a service lets a document be, how that service counts it, and how a fix's warning names
    the limit."""

    limit: int
    unit: str
    service: str
    count: Callable[[Mapping[str, Any]], int]
    named: str

    def over(self, document: Mapping[str, Any]) -> int | None:
        """The document's size when the service would refuse it as too large, else None."""
        size = self.count(document)
        return size if size > self.limit else None


@dataclass(frozen=True)
class ApiCall:
    """One boto3 call on a layer's document, and the IAM action it needs (named in errors)."""

    action: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class Cli:
    """A layer's AWS CLI commands, as templates over ``{where}`` (the target's arguments) and ``{file}``."""

    where: Callable[[str, str | None], str]
    read: str
    write: str
    delete: str | None = None


@dataclass(frozen=True)
class LayerSpec:
    """One writable layer: its limit, whether a document always exists, who writes it, and the CLI commands
    and API calls that read, write and delete it."""

    kind: LayerKind
    size: SizeLimit
    always_exists: bool
    run_as: RunAs
    cli: Cli
    api_read: ApiCall
    api_write: ApiCall
    api_delete: ApiCall | None = None

    @property
    def client(self) -> str:
        """The boto3 client that reads and writes the layer: the service of its API calls."""
        return self.api_read.action.split(":", 1)[0]

    def read_command(self, target: str, *, region: str | None = None) -> str:
        """The command printing the live document as JSON. ``region`` only for a key whose ARN is not
        known until the command runs (a key's region is otherwise its ARN's)."""
        return self.cli.read.format(where=self.cli.where(target, region))

    def write_command(self, target: str, policy_file: str, *, region: str | None = None) -> str:
        """The command replacing the live document with ``policy_file``'s (a new default version of a
        managed policy)."""
        return self.cli.write.format(where=self.cli.where(target, region), file=policy_file)

    def delete_command(self, target: str) -> str | None:
        """The command deleting the document; None where a layer's document is never deleted that way
        (a key policy, a managed policy)."""
        if self.cli.delete is None:
            return None
        return self.cli.delete.format(where=self.cli.where(target, None))

    def size_warning(self, what: str, document: Mapping[str, Any], consequence: str) -> str | None:
        """A fix's warning that ``document`` is too large for the service, ending with ``consequence``."""
        size = self.size.over(document)
        if size is None:
            return None
        return f"The new {what} is {size:,} {self.size.unit}, over {self.size.named}{consequence}"


def _bucket_where(bucket: str, _region: str | None) -> str:
    return f"--bucket {_word(bucket)}"


def _key_where(key: str, region: str | None) -> str:
    """A key policy is always the one named ``default``, and the key is found only in its own region."""
    in_region = region if region is not None else require_arn(key).region
    return f"--key-id {_word(key)} --policy-name default --region {_word(in_region)}"


def _policy_where(arn: str, _region: str | None) -> str:
    return f"--policy-arn {_word(arn)}"


def _default_version(iam: Any, arn: str) -> Any:
    """A managed policy's document is its default version's: GetPolicy names it, GetPolicyVersion reads it."""
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def _new_default_version(iam: Any, arn: str, text: str) -> Any:
    return iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)


def _managed_policy(kind: LayerKind, *, always_exists: bool) -> LayerSpec:
    """A layer held in an IAM managed policy in MLSpace's account: every version is a whole document."""
    return LayerSpec(
        kind,
        SizeLimit(
            MANAGED_POLICY_MAX_CHARS,
            "characters",
            "IAM's",
            iam_size,
            f"IAM's {MANAGED_POLICY_MAX_CHARS:,} for a managed policy",
        ),
        always_exists=always_exists,
        run_as=RunAs.MLSPACE_ADMIN,
        cli=Cli(
            _policy_where,
            read='aws iam get-policy-version {where} --version-id "$(aws iam get-policy {where} '
            '--query Policy.DefaultVersionId --output text)" --query PolicyVersion.Document --output json',
            write="aws iam create-policy-version {where} --policy-document file://{file} --set-as-default",
        ),
        api_read=ApiCall("iam:GetPolicyVersion", _default_version),
        api_write=ApiCall("iam:CreatePolicyVersion", _new_default_version),
    )


def _kilobytes(service: str, limit: int) -> str:
    return f"{service} {limit // 1024} KB limit ({limit:,})"


# Keyed by the kind, which as a StrEnum is also found by its plain name.
LAYER_SPECS: Mapping[str, LayerSpec] = {
    spec.kind: spec
    for spec in (
        LayerSpec(
            LayerKind.BUCKET_POLICY,
            SizeLimit(
                BUCKET_POLICY_MAX_BYTES,
                "bytes",
                "S3's",
                json_bytes,
                _kilobytes("S3's", BUCKET_POLICY_MAX_BYTES),
            ),
            always_exists=False,
            run_as=RunAs.BUCKET_OWNER,
            cli=Cli(
                _bucket_where,
                read="aws s3api get-bucket-policy {where} --query Policy --output text",
                write="aws s3api put-bucket-policy {where} --policy file://{file}",
                delete="aws s3api delete-bucket-policy {where}",
            ),
            api_read=ApiCall(
                "s3:GetBucketPolicy", lambda s3, bucket: s3.get_bucket_policy(Bucket=bucket)["Policy"]
            ),
            api_write=ApiCall(
                "s3:PutBucketPolicy",
                lambda s3, bucket, text: s3.put_bucket_policy(Bucket=bucket, Policy=text),
            ),
            api_delete=ApiCall(
                "s3:DeleteBucketPolicy", lambda s3, bucket: s3.delete_bucket_policy(Bucket=bucket)
            ),
        ),
        _managed_policy(LayerKind.BOUNDARY, always_exists=True),
        # Our grant policy is created by the first grant; MLSpace's shared notebook policy always exists.
        _managed_policy(LayerKind.IDENTITY, always_exists=False),
        LayerSpec(
            LayerKind.KMS,
            SizeLimit(
                KEY_POLICY_MAX_BYTES, "bytes", "KMS's", json_bytes, _kilobytes("KMS's", KEY_POLICY_MAX_BYTES)
            ),
            always_exists=True,
            run_as=RunAs.KEY_OWNER,
            cli=Cli(
                _key_where,
                read="aws kms get-key-policy {where} --query Policy --output text",
                write="aws kms put-key-policy {where} --policy file://{file}",
            ),
            api_read=ApiCall(
                "kms:GetKeyPolicy",
                lambda kms, key: kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"],
            ),
            api_write=ApiCall(
                "kms:PutKeyPolicy",
                lambda kms, key, text: kms.put_key_policy(KeyId=key, PolicyName="default", Policy=text),
            ),
        ),
    )
}
# Layers only others can change, in the order their advice is given.
ADVISORY_LAYERS = (
    LayerKind.SCP,
    LayerKind.RCP,
    LayerKind.ENDPOINT,
    LayerKind.SESSION,
    LayerKind.REQUESTER_PAYS,
    LayerKind.UNKNOWN,
)


def spec_of(layer: str) -> LayerSpec | None:
    """The specification of a writable layer, None for an advisory one (or a name we do not know)."""
    return LAYER_SPECS.get(layer)


def size_problem(layer: str, document: Mapping[str, Any]) -> str | None:
    """Why AWS would refuse ``document`` as too large for ``layer``, or None: checked before any write."""
    spec = spec_of(layer)
    if spec is None:
        return None
    size = spec.size.over(document)
    if size is None:
        return None
    unit, service, limit = spec.size.unit, spec.size.service, spec.size.limit
    return f"The new {layer} document would be {size:,} {unit}, over {service} limit of {limit:,}."


def writes_in_mlspace_account(layer: str) -> bool:
    """Whether MLSpace's admin writes the layer in MLSpace's own account (IAM), rather than a resource's
    owner in the account that owns the bucket or the key."""
    spec = spec_of(layer)
    return spec is not None and spec.run_as is RunAs.MLSPACE_ADMIN
