"""The policy layers a grant changes or an admin must be told about, and one specification per layer.

Why one table: which account writes a layer, how large its document may be and how that size is counted,
and whether it always exists were each decided in several places by comparing bare strings; the fixes, the
admin's plan and its writes now read them from here.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class SizeLimit:
    """How large a service lets a document be, and how that service counts it."""

    limit: int
    unit: str
    service: str
    count: Callable[[Mapping[str, Any]], int]


@dataclass(frozen=True)
class LayerSpec:
    """One writable layer: its limit, whether a document always exists, who writes it, and the CLI commands
    and API calls that read and write it."""

    kind: LayerKind
    size: SizeLimit
    always_exists: bool
    run_as: RunAs
    cli_read: str
    cli_write: str
    api_read: str
    api_write: str

    @property
    def client(self) -> str:
        """The boto3 client that reads and writes the layer: the service of its API calls."""
        return self.api_read.split(":", 1)[0]


def _managed_policy(kind: LayerKind, *, always_exists: bool) -> LayerSpec:
    """A layer held in an IAM managed policy in MLSpace's account: every version is a whole document."""
    return LayerSpec(
        kind,
        SizeLimit(MANAGED_POLICY_MAX_CHARS, "characters", "IAM's", iam_size),
        always_exists=always_exists,
        run_as=RunAs.MLSPACE_ADMIN,
        cli_read="aws iam get-policy-version",
        cli_write="aws iam create-policy-version",
        api_read="iam:GetPolicyVersion",
        api_write="iam:CreatePolicyVersion",
    )


# Keyed by the kind, which as a StrEnum is also found by its plain name.
LAYER_SPECS: Mapping[str, LayerSpec] = {
    spec.kind: spec
    for spec in (
        LayerSpec(
            LayerKind.BUCKET_POLICY,
            SizeLimit(BUCKET_POLICY_MAX_BYTES, "bytes", "S3's", json_bytes),
            always_exists=False,
            run_as=RunAs.BUCKET_OWNER,
            cli_read="aws s3api get-bucket-policy",
            cli_write="aws s3api put-bucket-policy",
            api_read="s3:GetBucketPolicy",
            api_write="s3:PutBucketPolicy",
        ),
        _managed_policy(LayerKind.BOUNDARY, always_exists=True),
        # Our grant policy is created by the first grant; MLSpace's shared notebook policy always exists.
        _managed_policy(LayerKind.IDENTITY, always_exists=False),
        LayerSpec(
            LayerKind.KMS,
            SizeLimit(KEY_POLICY_MAX_BYTES, "bytes", "KMS's", json_bytes),
            always_exists=True,
            run_as=RunAs.KEY_OWNER,
            cli_read="aws kms get-key-policy",
            cli_write="aws kms put-key-policy",
            api_read="kms:GetKeyPolicy",
            api_write="kms:PutKeyPolicy",
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
    size, limit = spec.size.count(document), spec.size.limit
    if size <= limit:
        return None
    unit, service = spec.size.unit, spec.size.service
    return f"The new {layer} document would be {size:,} {unit}, over {service} limit of {limit:,}."


def writes_in_mlspace_account(layer: str) -> bool:
    """Whether MLSpace's admin writes the layer in MLSpace's own account (IAM), rather than a resource's
    owner in the account that owns the bucket or the key."""
    spec = spec_of(layer)
    return spec is not None and spec.run_as is RunAs.MLSPACE_ADMIN
