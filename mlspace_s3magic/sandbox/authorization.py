"""The sandbox's one enforcement point for S3 and KMS: every request is decided by our evaluator
(:mod:`mlspace_s3magic.core.policy`) over every layer the sandbox holds, as AWS would decide it.

Why: moto applies only identity policies, so a boundary, a bucket policy, an ``s3:prefix`` condition or a
KMS key policy never blocked anything in the sandbox, and a probe there could say "allowed" where AWS denies.
moto calls ``check_action_permitted`` on its request object for every signed call once enforcement is on; for
S3 and KMS that one method is replaced here (other services keep moto's identity-only check).

Layers read per request, from moto's own state: the caller's identity policies (inline and attached, and an
IAM user's groups'), its permissions boundary, its session policy, the bucket policy or KMS key policy, and
for GetObject/PutObject on SSE-KMS objects the key policy of the object's key (``kms:Decrypt`` /
``kms:GenerateDataKey`` via S3). Documents are parsed once per distinct text, so the evaluator's remembered
plans live as long as the documents do. SCPs, RCPs and VPC endpoints have no place in the sandbox's world.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moto.core.exceptions import JsonRESTError
from moto.iam.access_control import AssumedRoleAccessKey, IAMRequestBase, PermissionResult
from moto.iam.models import iam_backends
from moto.kms.models import kms_backends
from moto.kms.utils import _deserialize_ciphertext_blob
from moto.s3.exceptions import BucketAccessDeniedError, S3ClientError
from moto.s3.models import FakeBucket, s3_backends
from moto.sts.models import sts_backends

from mlspace_s3magic.core.policy import (
    Decision,
    EvaluationResult,
    Layer,
    Policy,
    PolicyLayers,
    PolicyValidationError,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from mlspace_s3magic.core.policy.actions import RESOURCELESS_ACTIONS
from mlspace_s3magic.core.policy.arns import is_account_id, parse_arn, require_arn, s3_location
from mlspace_s3magic.core.policy.request import ContextValue

log = logging.getLogger(__name__)

ENFORCED_SERVICES = ("s3", "kms")
# moto names some S3 operations by their API name; IAM authorizes them as these actions.
_S3_ACTIONS = {"HeadBucket": "ListBucket"}
# moto routes these bucket sub-resources to its default action (ListBucket / CreateBucket / DeleteBucket).
_S3_SUBRESOURCE_ACTIONS = {
    ("GET", "encryption"): "GetEncryptionConfiguration",
    ("PUT", "encryption"): "PutEncryptionConfiguration",
    ("DELETE", "encryption"): "PutEncryptionConfiguration",
    ("GET", "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", "ownershipControls"): "PutBucketOwnershipControls",
    ("GET", "object-lock"): "GetBucketObjectLockConfiguration",
    ("GET", "replication"): "GetReplicationConfiguration",
    ("GET", "requestPayment"): "GetBucketRequestPayment",
}
# The KMS request fields that name the key a call acts on, in the order KMS reads them.
_KMS_KEY_FIELDS = ("KeyId", "SourceKeyId", "TargetKeyId", "DestinationKeyId")
_S3_NAMESPACE = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_DOCUMENTS_REMEMBERED = 1024
_LAYERS_REMEMBERED = 4096

# AWS's wording for each layer in an AccessDenied message.
_LAYER_WORDS = {
    Layer.IDENTITY: "identity-based policy",
    Layer.BOUNDARY: "permissions boundary",
    Layer.SESSION: "session policy",
    Layer.RESOURCE: "resource-based policy",
    Layer.SCP: "service control policy",
    Layer.RCP: "resource control policy",
    Layer.ENDPOINT: "VPC endpoint policy",
}


class SandboxAccessDenied(BucketAccessDeniedError):
    """S3's 403 AccessDenied, with the message AWS gives a same-account caller (which layer, which action).

    A BucketAccessDeniedError so that moto's DeleteObjects reports the keys as AccessDenied instead of failing
    the whole call; when any key of a DeleteObjects is denied, the sandbox reports every key so (AWS deletes
    the allowed ones)."""

    def __init__(self, bucket: str, message: str) -> None:
        S3ClientError.__init__(self, "AccessDenied", message)
        self.bucket_name = bucket


def denial_message(result: EvaluationResult) -> str:
    """AWS's AccessDenied wording: ``User: ARN is not authorized to perform: ACTION on resource: "R" because
    no identity-based policy allows the ACTION action`` (or ``with an explicit deny in a ...``)."""
    layer = result.blocked_by[0] if result.blocked_by else Layer.IDENTITY
    if result.decision is Decision.EXPLICIT_DENY:
        denied = [ref.layer for ref in result.statements] or [layer]
        why = f"with an explicit deny in a {_LAYER_WORDS[denied[0]]}"
    else:
        why = f"because no {_LAYER_WORDS[layer]} allows the {result.action} action"
    return (
        f"User: {result.principal} is not authorized to perform: {result.action} "
        f'on resource: "{result.resource}" {why}'
    )


@dataclass(frozen=True)
class Caller:
    """Who signed the request, and the texts of the policies that apply to them."""

    principal: Principal
    identity: tuple[tuple[str, str], ...]  # (label, document) per identity policy
    boundary: str | None
    session: str | None
    tags: Mapping[str, str]
    userid: str  # aws:userid: the role's unique id and the session name, or the user's unique id


def install() -> None:
    """Decide S3 and KMS requests with the evaluator; idempotent (one server per process)."""
    if getattr(IAMRequestBase.check_action_permitted, "sandbox_enforced", False):
        return
    moto_check = IAMRequestBase.check_action_permitted

    def check_action_permitted(request: IAMRequestBase, resource: str) -> None:
        service = getattr(request, "_service", "")
        if service not in ENFORCED_SERVICES:
            moto_check(request, resource)
            return
        decide = _decide_s3 if service == "s3" else _decide_kms
        result = decide(request, resource)
        if result is not None and not result.allowed:
            _deny(service, result)

    check_action_permitted.sandbox_enforced = True  # type: ignore[attr-defined]
    IAMRequestBase.check_action_permitted = check_action_permitted  # type: ignore[method-assign,assignment]
    moto_bucket_permission = FakeBucket.get_permission

    def get_permission(bucket: FakeBucket, action: str, resource: str) -> Any:
        """moto's own bucket-policy pass answers a Deny with a bare 403 before any signed request reaches the
        check above, which decides bucket-policy Denies itself (with AWS's message); its Allow is kept for the
        unsigned requests moto alone handles."""
        permission = moto_bucket_permission(bucket, action, resource)
        return PermissionResult.NEUTRAL if permission is PermissionResult.DENIED else permission

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign,assignment]


def _deny(service: str, result: EvaluationResult) -> None:
    message = denial_message(result)
    if service == "kms":
        raise JsonRESTError("AccessDeniedException", message)
    bucket = resource_bucket(result.resource) if result.action.startswith("s3:") else ""
    raise SandboxAccessDenied(bucket, message)


# --- S3 -----------------------------------------------------------------------------------------------------


def _decide_s3(request: IAMRequestBase, resource: str) -> EvaluationResult | None:
    """The first failing decision among the S3 action and the KMS use it implies, or the last allowing one;
    None when moto must answer first (a bucket that does not exist)."""
    method: str = request._method
    query = _query(request._path)
    action = _s3_action(str(request._action).partition(":")[2], method, query)
    named = require_arn(resource)  # moto names every S3 resource arn:PARTITION:s3:::BUCKET[/KEY]
    bucket, _, key = named.resource.partition("/")
    caller = _caller(request)
    context = _base_context(request, caller)
    if f"s3:{action}".lower() in RESOURCELESS_ACTIONS:  # their resource is "*"
        return _decide(caller, f"s3:{action}", "*", caller.principal.account, context, None)
    owner = _bucket_owner(bucket)
    if owner is None:
        if action != "CreateBucket":
            return None  # moto answers NoSuchBucket, as S3 does for a name nobody owns
        owner = (caller.principal.partition, str(request.account_id))
    partition, account = owner
    context.update(_s3_context(query, request._headers, account))
    bucket_model = s3_backends[account][partition].buckets.get(bucket) if bucket else None
    bucket_policy = _text(getattr(bucket_model, "policy", None))
    if action == "DeleteObject" and not key and "delete" in query:
        keys = _deleted_keys(request._body)  # DeleteObjects: AWS authorizes each key
    else:
        keys = [key] if key else [""]
    result: EvaluationResult | None = None
    for each in keys:
        arn = f"arn:{named.partition}:s3:::{bucket}" + (f"/{each}" if each else "")
        object_context = dict(context)
        if each and bucket_model is not None:
            object_context.update(_object_tags(account, partition, bucket, each, action))
        result = _decide(caller, f"s3:{action}", arn, account, object_context, bucket_policy)
        if not result.allowed:
            return result
        kms = _kms_use(request, action, account, partition, bucket, each, caller, object_context)
        if kms is not None and not kms.allowed:
            return kms
    return result


def resource_bucket(resource: str) -> str:
    """The bucket an S3 ARN names (``arn:aws:s3:::b/k`` gives ``b``)."""
    return (s3_location(resource) or ("", ""))[0]


def _s3_action(action: str, method: str, query: Mapping[str, list[str]]) -> str:
    for (verb, subresource), named in _S3_SUBRESOURCE_ACTIONS.items():
        if verb == method and subresource in query:
            return named
    return _S3_ACTIONS.get(action, action)


def _query(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query, keep_blank_values=True)


def _bucket_owner(bucket: str) -> tuple[str, str] | None:
    """(partition, account) of the bucket's owner, or None when no account has it."""
    owner = s3_backends.bucket_accounts.get(bucket)
    return None if owner is None else (owner[0], owner[1])


def _s3_context(query: Mapping[str, list[str]], headers: Mapping[str, str], owner: str) -> dict[str, Any]:
    """The S3 condition keys a request carries: listing parameters, encryption and ACL headers."""
    context: dict[str, Any] = {"s3:ResourceAccount": owner, "aws:ResourceAccount": owner}
    for name in ("prefix", "delimiter", "max-keys"):
        if name in query:
            context[f"s3:{name}"] = query[name][0]
    lowered = {name.lower(): value for name, value in headers.items()}
    for header in (
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
        "x-amz-acl",
        "x-amz-copy-source",
        "x-amz-storage-class",
    ):
        if header in lowered:
            context[f"s3:{header}"] = lowered[header]
    if "authorization" in lowered:
        context["s3:authType"] = "REST-HEADER"
        context["s3:signatureversion"] = "AWS4-HMAC-SHA256"
    return context


def _object_tags(account: str, partition: str, bucket: str, key: str, action: str) -> dict[str, ContextValue]:
    """``s3:ExistingObjectTag/<key>`` for requests on an existing object."""
    if action.startswith("Put") and action != "PutObjectTagging":
        return {}
    backend = s3_backends[account][partition]
    stored = backend.buckets[bucket].keys.get(key)
    if stored is None:
        return {}
    tags = backend.get_object_tagging(stored).get("Tags", [])
    return {f"s3:ExistingObjectTag/{tag['Key']}": tag["Value"] for tag in tags}


def _deleted_keys(body: bytes | str | None) -> list[str]:
    """The keys a DeleteObjects request names (``<Delete><Object><Key>``)."""
    if not body:
        return [""]
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return [""]
    keys = [element.text or "" for element in root.iter() if element.tag in ("Key", f"{_S3_NAMESPACE}Key")]
    return keys or [""]


def _kms_use(
    request: IAMRequestBase,
    action: str,
    account: str,
    partition: str,
    bucket: str,
    key: str,
    caller: Caller,
    context: Mapping[str, ContextValue],
) -> EvaluationResult | None:
    """S3 asks KMS on the caller's behalf: Decrypt to read an SSE-KMS object, GenerateDataKey to write one.
    A HeadObject (IAM's s3:GetObject too) returns only metadata, the key's ARN among it: KMS is not asked."""
    if not key or action not in ("GetObject", "PutObject") or request._method == "HEAD":
        return None
    backend = s3_backends[account][partition]
    bucket_model = backend.buckets[bucket]
    if action == "GetObject":
        stored = bucket_model.keys.get(key)
        if stored is None or stored.encryption != "aws:kms":
            return None
        key_id, kms_action = stored.kms_key_id, "kms:Decrypt"
    else:
        lowered = {name.lower(): value for name, value in request._headers.items()}
        default = _default_kms_key(bucket_model.encryption)
        if lowered.get("x-amz-server-side-encryption") == "aws:kms":
            key_id = lowered.get("x-amz-server-side-encryption-aws-kms-key-id") or default
        elif "x-amz-server-side-encryption" in lowered:
            return None
        else:
            key_id = default
        kms_action = "kms:GenerateDataKey"
    if not key_id:
        return None
    region = getattr(bucket_model, "region_name", None) or str(request._region)
    located = _kms_key(key_id, account, region)
    if located is None:
        return None
    key_arn, key_policy = located
    kms_context: dict[str, ContextValue] = {
        **{name: value for name, value in context.items() if name.startswith("aws:")},
        "aws:ResourceAccount": require_arn(key_arn).account,
        "kms:ViaService": f"s3.{region}.amazonaws.com",
        "kms:CallerAccount": caller.principal.account or "",
        "kms:EncryptionContext:aws:s3:arn": f"arn:{partition}:s3:::{bucket}/{key}",
        "kms:EncryptionContextKeys": ("aws:s3:arn",),
    }
    return _decide(caller, kms_action, key_arn, None, kms_context, key_policy)


def _default_kms_key(encryption: Mapping[str, Any] | None) -> str | None:
    """The bucket's default SSE-KMS key, from moto's stored encryption configuration."""
    if not encryption:
        return None
    rules = encryption.get("Rule") or encryption.get("Rules") or []
    for rule in rules if isinstance(rules, list) else [rules]:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") == "aws:kms":
            return str(default.get("KMSMasterKeyID") or "") or None
    return None


# --- KMS ----------------------------------------------------------------------------------------------------


def _decide_kms(request: IAMRequestBase, resource: str) -> EvaluationResult | None:
    caller = _caller(request)
    action = str(request._action)
    context = _base_context(request, caller)
    context["kms:CallerAccount"] = caller.principal.account or ""
    key_id = _requested_key(request._body)
    if key_id is None and action.lower() in RESOURCELESS_ACTIONS:
        return _decide(caller, action, "*", caller.principal.account, context, None)
    if key_id is None:
        return None  # a call that names no key it needs: moto answers with its validation error
    named = parse_arn(key_id)  # None for a key id or an alias name
    if key_id.startswith("alias/") or ":alias/" in key_id:
        context["kms:RequestAlias"] = named.resource if named else key_id
    region = str(request._region)
    account = caller.principal.account or ""
    if (
        named is not None
        and named.service == "kms"
        and named.resource.startswith("key/")
        and is_account_id(named.account)
    ):
        account, region = named.account, named.region
    located = _kms_key(key_id, account, region)
    if located is None:
        return None  # moto answers NotFoundException
    key_arn, key_policy = located
    return _decide(caller, action, key_arn, None, context, key_policy)


def _requested_key(body: bytes | str | None) -> str | None:
    """The key a KMS call names, or the one inside a Decrypt ciphertext that names none."""
    try:
        params = json.loads(body or "{}")
    except ValueError:
        return None
    if not isinstance(params, dict):
        return None
    for field in _KMS_KEY_FIELDS:
        if isinstance(params.get(field), str) and params[field]:
            return str(params[field])
    blob = params.get("CiphertextBlob")
    if isinstance(blob, str):
        try:
            return str(_deserialize_ciphertext_blob(base64.b64decode(blob)).key_id)
        except (binascii.Error, ValueError, IndexError):
            return None
    return None


def _kms_key(key_id: str, account: str, region: str) -> tuple[str, str] | None:
    """The key's ARN and policy text, the key found by id, ARN, alias name or alias ARN."""
    backend = kms_backends[account][region]
    try:
        key = backend.describe_key(key_id)
    except Exception:  # moto raises its own NotFound types, and KeyError for an unknown raw id
        return None
    return str(key.arn), str(key.policy)


# --- Callers and layers -------------------------------------------------------------------------------------


def _caller(request: IAMRequestBase) -> Caller:
    access_key = request._access_key
    account = str(request.account_id)
    partition = str(access_key.partition)
    iam = iam_backends[account][partition]
    if isinstance(access_key, AssumedRoleAccessKey):
        role = iam.get_role(access_key._owner_role_name)
        session = next(
            (
                assumed.policy
                for assumed in sts_backends[account][partition].assumed_roles
                if assumed.access_key_id == access_key._access_key_id
            ),
            None,
        )
        identity = _identity_policies(role.policies, role.managed_policies.values())
        boundary = _managed_text(iam, role.permissions_boundary_arn)
        userid = f"{role.id}:{access_key._session_name}"
        return Caller(
            Principal.from_arn(access_key.arn), identity, boundary, session, _tags(role.tags), userid
        )
    user = iam.get_user(access_key._owner_user_name)
    identity = _identity_policies(user.policies, user.managed_policies.values())
    for group in iam.get_groups_for_user(user.name):
        identity += _identity_policies(group.policies, group.managed_policies.values())
    boundary = _managed_text(iam, getattr(user, "permissions_boundary_arn", None))
    principal = Principal.from_arn(access_key.arn)
    return Caller(principal, identity, boundary, None, _tags(getattr(user, "tags", {})), str(user.id))


def _identity_policies(inline: Mapping[str, str], managed: Any) -> tuple[tuple[str, str], ...]:
    policies = [(name, text) for name, text in inline.items()]
    policies += [(policy.name, _default_version(policy)) for policy in managed]
    return tuple(policies)


def _default_version(policy: Any) -> str:
    document = next(version.document for version in policy.versions if version.is_default)
    return document if isinstance(document, str) else json.dumps(document)


def _managed_text(iam: Any, arn: str | None) -> str | None:
    if not arn:
        return None
    policy = iam.managed_policies.get(arn)
    return None if policy is None else _default_version(policy)


def _tags(tags: Any) -> dict[str, str]:
    """moto keeps tags as a list of {Key, Value} or as a dict of them, by resource type."""
    entries = tags.values() if isinstance(tags, Mapping) else tags or []
    return {entry["Key"]: entry["Value"] for entry in entries}


def _base_context(request: IAMRequestBase, caller: Caller) -> dict[str, Any]:
    """The global keys AWS sends with every request; the sandbox stands for AWS's HTTPS endpoints."""
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "aws:SecureTransport": "true",
        "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now.timestamp())),
        "aws:RequestedRegion": str(request._region),
        "aws:SourceIp": "127.0.0.1",
    }
    if caller.userid:
        context["aws:userid"] = caller.userid
    for name, value in caller.tags.items():
        context[f"aws:PrincipalTag/{name}"] = value
    return context


def _decide(
    caller: Caller,
    action: str,
    resource: str,
    owner: str | None,
    context: Mapping[str, ContextValue],
    resource_policy: str | None,
) -> EvaluationResult:
    layers = _layers(caller.identity, caller.boundary, caller.session, resource_policy)
    request = Request(caller.principal, action, resource, owner, dict(context))
    return evaluate(request, layers)


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


@lru_cache(maxsize=_LAYERS_REMEMBERED)
def _layers(
    identity: tuple[tuple[str, str], ...], boundary: str | None, session: str | None, resource: str | None
) -> PolicyLayers:
    """One PolicyLayers per distinct set of documents, so the evaluator's plans are kept between requests."""
    return PolicyLayers(
        identity=tuple(
            policy for label, text in identity if (policy := _parsed(Layer.IDENTITY, label, text)) is not None
        ),
        boundary=None if boundary is None else _parsed(Layer.BOUNDARY, "permissions boundary", boundary),
        session=None if session is None else _parsed(Layer.SESSION, "session policy", session),
        resource=None if resource is None else _parsed(Layer.RESOURCE, "resource policy", resource),
    )


@lru_cache(maxsize=_DOCUMENTS_REMEMBERED)
def _parsed(layer: Layer, label: str, text: str) -> Policy | None:
    try:
        return parse_policy(text, layer, label)
    except PolicyValidationError as error:
        # AWS would not have stored it; moto does. Leaving it out is the closest to AWS's behaviour.
        log.warning("The sandbox ignores a %s policy it cannot read: %s", layer.value, error)
        return None
