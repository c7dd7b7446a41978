"""Fetch the policy documents that decide a request: the caller's identity policies and boundary, and the
bucket's policy, default encryption and KMS key policy.

Every fetch runs concurrently. A document the caller may not read (AccessDenied) is recorded as
:class:`Unreadable`, never raised: a notebook rarely can read a partner's bucket policy, and the report must
still say what it could and could not see. A writable layer's document is read by :func:`read_document`, the
one reader the admin's writes use too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import Aws, aws_call, error_code, is_access_denied
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind, LayerSpec
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.policy.arns import resource_name

T = TypeVar("T")
NOT_FOUND_CODES = frozenset(
    {"NoSuchBucketPolicy", "ServerSideEncryptionConfigurationNotFoundError", "NoSuchEntity"}
)


@dataclass(frozen=True)
class Unreadable:
    """A layer we could not read, and why (the action that was refused, or the error)."""

    layer: str
    reason: str


@dataclass(frozen=True)
class FetchedPolicy:
    """One policy document and where it came from, so a deciding statement can be traced to its policy."""

    label: str
    document: dict[str, Any]
    arn: str | None = None


@dataclass(frozen=True)
class Encryption:
    """The bucket's default encryption: ``aws:kms`` (or ``aws:kms:dsse``) brings a KMS key into every read."""

    algorithm: str
    kms_key_arn: str | None = None
    bucket_key_enabled: bool = False

    @property
    def uses_kms(self) -> bool:
        return self.algorithm.startswith("aws:kms")


PolicyOrGap = FetchedPolicy | Unreadable | None


@dataclass(frozen=True)
class CallerLayers:
    identity_policies: tuple[FetchedPolicy, ...] | Unreadable
    boundary: PolicyOrGap


@dataclass(frozen=True)
class BucketLayers:
    bucket_policy: PolicyOrGap
    encryption: Encryption | Unreadable | None
    key_policy: PolicyOrGap


def as_document(value: Any) -> dict[str, Any]:
    """IAM returns documents URL-encoded, S3 and KMS as JSON text; boto3 sometimes decodes them already."""
    if isinstance(value, dict):
        return value
    text = str(value)
    return dict(json.loads(unquote(text) if text.startswith("%7B") else text))


def read_document(spec: LayerSpec, client: Any, target: str) -> dict[str, Any] | None:
    """A writable layer's live document, by its specification's API call; None when there is none (a bucket
    without a policy, a grant policy not yet created). A refusal raises: the check records the layer as
    unreadable, the admin stops (or, for an owner's layer, leaves the owner a command)."""
    try:
        with aws_call(client, spec.api_read.action):
            return as_document(spec.api_read.call(client, target))
    except ClientError as error:
        if error_code(error) in NOT_FOUND_CODES:
            return None
        raise


def _unreadable(layer: str, action: str, error: ClientError) -> Unreadable:
    reason = (
        f"{action} was denied" if is_access_denied(error) else f"{action} failed with {error_code(error)}"
    )
    return Unreadable(layer, reason)


def _guarded(layer: str, action: str, client: Any, call: Callable[[], T]) -> T | Unreadable | None:
    """Run one read; absent documents give None and refusals give :class:`Unreadable`."""
    try:
        with aws_call(client, action):
            return call()
    except ClientError as error:
        if error_code(error) in NOT_FOUND_CODES:
            return None
        return _unreadable(layer, action, error)


def _layer_document(layer: str, client: Any, target: str) -> dict[str, Any] | Unreadable | None:
    """:func:`read_document` for the check: a refusal gives :class:`Unreadable`, naming the call refused."""
    spec = LAYER_SPECS[layer]
    try:
        return read_document(spec, client, target)
    except ClientError as error:
        return _unreadable(str(layer), f"{spec.client}:{error.operation_name}", error)


class LayerFetcher:
    """Reads layers with one set of clients, fanning out over a shared thread pool."""

    def __init__(self, aws: Aws, pool: ThreadPoolExecutor):
        self.aws = aws
        self.pool = pool
        self.iam = aws.client("iam")

    # -- the caller ------------------------------------------------------------------------------------
    def caller_layers(self, identity: Identity) -> CallerLayers:
        boundary: Future[PolicyOrGap] | None = (
            self.pool.submit(self.managed_policy, "boundary", identity.boundary)
            if identity.boundary
            else None
        )
        policies = self.identity_policies(identity)
        if identity.boundary_unreadable:
            unknown = Unreadable("boundary", f"{identity.boundary_unreadable}, so the boundary is unknown")
            return CallerLayers(policies, unknown)
        return CallerLayers(policies, boundary.result() if boundary else None)

    def identity_policies(self, identity: Identity) -> tuple[FetchedPolicy, ...] | Unreadable:
        """Attached managed and inline policies of the caller's role (or IAM user), all fetched together."""
        if identity.principal_type == "assumed-role" and identity.role:
            entity, name = "Role", identity.role
        elif identity.principal_type == "user":
            entity, name = "User", resource_name(identity.arn)
        else:
            return Unreadable(
                "identity", f"a {identity.principal_type} principal has no policies we can list"
            )
        kind = entity.lower()
        attached = self.pool.submit(
            self._listing,
            f"iam:ListAttached{entity}Policies",
            f"list_attached_{kind}_policies",
            "AttachedPolicies",
            {f"{entity}Name": name},
        )
        inline = self.pool.submit(
            self._listing,
            f"iam:List{entity}Policies",
            f"list_{kind}_policies",
            "PolicyNames",
            {f"{entity}Name": name},
        )
        attached_policies, inline_names = attached.result(), inline.result()
        if isinstance(attached_policies, Unreadable):
            return attached_policies
        if isinstance(inline_names, Unreadable):
            return inline_names
        futures = [
            self.pool.submit(self.managed_policy, "identity", str(item["PolicyArn"]))
            for item in attached_policies
        ]
        futures += [
            self.pool.submit(self._inline_policy, entity, name, str(policy)) for policy in inline_names
        ]
        fetched = [future.result() for future in futures]
        for item in fetched:
            if isinstance(item, Unreadable):
                return item
        return tuple(item for item in fetched if isinstance(item, FetchedPolicy))

    def _listing(
        self, action: str, operation: str, field: str, params: dict[str, str]
    ) -> list[Any] | Unreadable:
        def every_page() -> list[Any]:
            return [
                item for page in self.iam.get_paginator(operation).paginate(**params) for item in page[field]
            ]

        listed = _guarded("identity", action, self.iam, every_page)
        return [] if listed is None else listed

    def managed_policy(self, layer: str, arn: str) -> PolicyOrGap:
        """The default version of a managed policy (``layer`` is the boundary or an identity policy)."""
        document = _layer_document(layer, self.iam, arn)
        if not isinstance(document, dict):
            return document
        return FetchedPolicy(resource_name(arn), document, arn)

    def _inline_policy(self, entity: str, owner: str, policy_name: str) -> PolicyOrGap:
        call = getattr(self.iam, f"get_{entity.lower()}_policy")
        response = _guarded(
            "identity",
            f"iam:Get{entity}Policy",
            self.iam,
            lambda: call(**{f"{entity}Name": owner, "PolicyName": policy_name}),
        )
        if not isinstance(response, dict):
            return response
        return FetchedPolicy(f"{policy_name} (inline)", as_document(response["PolicyDocument"]))

    # -- the bucket ------------------------------------------------------------------------------------
    def bucket_layers(self, ref: BucketRef) -> BucketLayers:
        s3 = self.aws.client("s3")
        bucket = ref.access_point_arn or ref.bucket
        policy = self.pool.submit(_layer_document, LayerKind.BUCKET_POLICY, s3, bucket)
        encryption = self.pool.submit(
            _guarded,
            "encryption",
            "s3:GetEncryptionConfiguration",
            s3,
            lambda: s3.get_bucket_encryption(Bucket=bucket),
        )
        document = policy.result()
        bucket_policy: PolicyOrGap = (
            FetchedPolicy(f"bucket policy of {ref.bucket}", document)
            if isinstance(document, dict)
            else document
        )
        settings = _encryption(encryption.result())
        key_policy: PolicyOrGap = None
        if isinstance(settings, Encryption) and settings.kms_key_arn:
            key_policy = self.key_policy(settings.kms_key_arn)
        return BucketLayers(bucket_policy, settings, key_policy)

    def key_policy(self, key_arn: str) -> PolicyOrGap:
        document = _layer_document(LayerKind.KMS, self.aws.client("kms"), key_arn)
        if not isinstance(document, dict):
            return document
        return FetchedPolicy(f"key policy of {key_arn}", document, key_arn)


def _encryption(response: Any) -> Encryption | Unreadable | None:
    if not isinstance(response, dict):
        return response  # type: ignore[no-any-return]
    rules = response.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not rules:
        return None
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
    return Encryption(
        algorithm=str(default.get("SSEAlgorithm", "AES256")),
        kms_key_arn=default.get("KMSMasterKeyID"),
        bucket_key_enabled=bool(rules[0].get("BucketKeyEnabled", False)),
    )
