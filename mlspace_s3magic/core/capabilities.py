"""Which capabilities a caller has on a bucket, decided once for every answer that needs it.

``check`` (over what a notebook could read), the admin plan and its verification, and ``/v1/diagnose`` (over
what the endpoint read) all call :func:`evaluate_capabilities`; one evaluation, one result type, so two
answers cannot drift apart (a KMS region taken from two places once did).

A layer that could not be read is unknown, never absent. Each request is decided once with every unreadable
layer assumed to allow, and again with them assumed to deny: layers that block under the first assumption
are proven; an unreadable layer whose denial would still block, once the proven ones are fixed, is an
unverified suspect.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.layers import (
    BucketLayers,
    CallerLayers,
    Encryption,
    FetchedPolicy,
    PolicyOrGap,
    Unreadable,
)
from mlspace_s3magic.core.names import BucketRef, is_kms_key_arn, s3_kms_context
from mlspace_s3magic.core.policy import (
    Decision,
    EvaluationResult,
    Layer,
    Policy,
    PolicyLayers,
    Principal,
    Request,
    evaluate,
    parse_policy,
)

CAPABILITIES = ("list", "read", "write")
S3_ACTIONS = {"list": "s3:ListBucket", "read": "s3:GetObject", "write": "s3:PutObject"}
KMS_ACTIONS = {"read": "kms:Decrypt", "write": "kms:GenerateDataKey"}
UNKNOWN_OWNER = "an unknown account"
EXAMPLE_KEY = "example-object"
BUCKET_POLICY = "bucket-policy"
KMS = "kms"
_ALLOW_ALL: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_GRANTS_NOTHING: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}


class Outcome(StrEnum):
    """A capability's outcome: AWS's three decisions (:class:`Decision`, same words), or undecided when an
    unreadable layer decides."""

    ALLOWED = Decision.ALLOWED.value
    IMPLICIT_DENY = Decision.IMPLICIT_DENY.value
    EXPLICIT_DENY = Decision.EXPLICIT_DENY.value
    UNDECIDED = "undecided"

    @property
    def denied(self) -> bool:
        return self in (Outcome.IMPLICIT_DENY, Outcome.EXPLICIT_DENY)


# The worst outcome of a capability's requests wins.
_SEVERITY = (Outcome.EXPLICIT_DENY, Outcome.IMPLICIT_DENY, Outcome.UNDECIDED)


def needed_capabilities(access: AccessLevel | str) -> tuple[str, ...]:
    """What a level of access must make possible: list; list and read; list, read and write."""
    level = AccessLevel("read-write" if access == "write" else access)
    return {AccessLevel.LIST: ("list",), AccessLevel.READ: ("list", "read")}.get(level, CAPABILITIES)


@dataclass(frozen=True)
class EvaluatedRequest:
    """One request put to the evaluator for a capability: what it asked, so a reader can repeat it."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "context": dict(self.context)}


@dataclass(frozen=True)
class CapabilityEvaluation:
    """One capability over the layers: ``decision`` is ``allowed``, ``implicit_deny``, ``explicit_deny``, or
    ``undecided`` when an unreadable layer decides; ``blocked_by`` the proven blocking layers, ``unverified``
    the unreadable ones that may block. A block in a KMS request is the ``kms`` layer, whose fix carries the
    key grant for the key policy, the boundary and the identity policy alike."""

    capability: str
    decision: str
    blocked_by: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    requests: tuple[EvaluatedRequest, ...] = ()
    statements: tuple[dict[str, str], ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool | None:
        return None if self.decision == Outcome.UNDECIDED else self.decision == Outcome.ALLOWED

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(request.action for request in self.requests)

    @property
    def explicit_deny(self) -> bool:
        return self.decision == Outcome.EXPLICIT_DENY

    @property
    def blocking(self) -> tuple[str, ...]:
        """Every layer a fix must lift: the proven ones and the suspects (unknown is never absent)."""
        return tuple(dict.fromkeys((*self.blocked_by, *self.unverified)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "actions": list(self.actions),
            "decision": self.decision,
            "allowed": self.allowed,
            "blocked_by": list(self.blocked_by),
            "unverified": list(self.unverified),
            "requests": [request.to_dict() for request in self.requests],
            "statements": list(self.statements),
            "reasons": list(self.reasons),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapabilityEvaluation:
        return cls(
            capability=str(data["capability"]),
            decision=str(data["decision"]),
            blocked_by=tuple(data.get("blocked_by", ())),
            unverified=tuple(data.get("unverified", ())),
            requests=tuple(
                EvaluatedRequest(r["action"], r["resource"], dict(r.get("context", {})))
                for r in data.get("requests", ())
            ),
            statements=tuple(data.get("statements", ())),
            reasons=tuple(data.get("reasons", ())),
        )


@dataclass(frozen=True)
class Capabilities:
    """Every evaluated capability, the layers that could not be read, and notes on unparsable ones."""

    evaluations: tuple[CapabilityEvaluation, ...]
    unreadable: tuple[Unreadable, ...] = ()
    notes: tuple[str, ...] = ()
    kms_key_arn: str | None = None

    def __getitem__(self, capability: str) -> CapabilityEvaluation:
        return next(item for item in self.evaluations if item.capability == capability)

    def blocking(self, capabilities: Iterable[str]) -> list[str]:
        """The layers blocking any of ``capabilities``, proven or not, in order."""
        return list(dict.fromkeys(layer for name in capabilities for layer in self[name].blocking))


def kms_key_arn(bucket: BucketLayers) -> str | None:
    """The customer managed key of the bucket's default encryption, when it names one by its full ARN."""
    encryption = bucket.encryption
    if isinstance(encryption, Encryption) and encryption.uses_kms and encryption.kms_key_arn:
        return encryption.kms_key_arn if is_kms_key_arn(encryption.kms_key_arn) else None
    return None


def _key_unknown(bucket: BucketLayers) -> bool:
    """Whether a KMS key may take part that we cannot name: the encryption could not be read, or names its
    key by id or alias (S3 accepts both), which only the key's account can resolve."""
    encryption = bucket.encryption
    if isinstance(encryption, Unreadable):
        return True
    named = isinstance(encryption, Encryption) and encryption.uses_kms and bool(encryption.kms_key_arn)
    return named and kms_key_arn(bucket) is None


def unreadable_layers(caller: CallerLayers, bucket: BucketLayers) -> tuple[Unreadable, ...]:
    layers = (
        caller.identity_policies,
        caller.boundary,
        bucket.bucket_policy,
        bucket.encryption,
        bucket.key_policy,
    )
    return tuple(layer for layer in layers if isinstance(layer, Unreadable))


def evaluate_capabilities(
    principal_arn: str,
    ref: BucketRef,
    caller: CallerLayers,
    bucket: BucketLayers,
    *,
    owner_account: str | None,
    capabilities: Iterable[str] = CAPABILITIES,
    object_keys: Mapping[str, str] | None = None,
) -> Capabilities:
    """Decide each capability for the caller over every layer, read or not.

    ``owner_account`` None is an unknown owner, taken to be another account (its bucket policy must then
    allow the caller too). ``object_keys`` names the object a read or write is decided for (a probe's key);
    by default an example key under the prefix.
    A KMS key is used in its own region (``kms:ViaService``), for the object (its encryption context).
    """
    principal = Principal.from_arn(principal_arn)
    same_account = owner_account is not None and owner_account == principal.account
    known, notes = _known_layers(caller, bucket.bucket_policy, BUCKET_POLICY)
    key = kms_key_arn(bucket)
    key_known = None
    if key:
        key_known, key_notes = _known_layers(caller, bucket.key_policy, KMS)
        notes += key_notes
    encryption_unknown = _key_unknown(bucket)
    keys = object_keys or {}
    evaluations = []
    for capability in capabilities:
        object_key = keys.get(capability) or f"{ref.prefix}{EXAMPLE_KEY}"
        resource = ref.bucket_arn if capability == "list" else ref.object_arn(object_key)
        context: dict[str, str] = {}
        if capability == "list" and ref.prefix:
            context["s3:prefix"] = ref.prefix
        if capability == "write":
            context["s3:x-amz-acl"] = "bucket-owner-full-control"
        s3_request = Request(
            principal, S3_ACTIONS[capability], resource, owner_account or UNKNOWN_OWNER, context
        )
        parts = [
            (EvaluatedRequest(s3_request.action, resource, context), _decide(s3_request, known, same_account))
        ]
        if key and key_known is not None and capability in KMS_ACTIONS:
            via = s3_kms_context(key, resource)
            kms_request = Request(principal, KMS_ACTIONS[capability], key, context=via)
            parts.append(
                (EvaluatedRequest(kms_request.action, key, via), _decide(kms_request, key_known, False))
            )
        evaluations.append(_combine(capability, parts, encryption_unknown and capability in KMS_ACTIONS))
    return Capabilities(
        tuple(evaluations), unreadable_layers(caller, bucket), tuple(dict.fromkeys(notes)), key
    )


# -- deciding with unreadable layers -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """Parsed documents; a layer that could not be read (or parsed) is not ``readable``."""

    identity: tuple[Policy, ...] | None
    boundary: Policy | None
    boundary_readable: bool
    resource: Policy | None
    resource_readable: bool
    resource_layer: str


@dataclass(frozen=True)
class _Decided:
    decision: str
    blocked_by: tuple[str, ...]
    suspects: tuple[str, ...]
    statements: tuple[dict[str, str], ...]
    reasons: tuple[str, ...]


def _known_layers(
    caller: CallerLayers, resource: PolicyOrGap, resource_layer: str
) -> tuple[_Known, list[str]]:
    notes: list[str] = []

    def parsed(fetched: PolicyOrGap, layer: Layer) -> tuple[Policy | None, bool]:
        if isinstance(fetched, Unreadable):
            return None, False
        if fetched is None:
            return None, True
        try:
            return _parse(fetched, layer), True
        except S3MagicError as error:
            name = resource_layer if layer is Layer.RESOURCE else layer.value
            notes.append(f"The {name} policy could not be evaluated: {error}")
            return None, False

    identity: tuple[Policy, ...] | None = None
    if not isinstance(caller.identity_policies, Unreadable):
        try:
            identity = tuple(_parse(p, Layer.IDENTITY) for p in caller.identity_policies)
        except S3MagicError as error:
            notes.append(f"The identity policies could not be evaluated: {error}")
    boundary, boundary_ok = parsed(caller.boundary, Layer.BOUNDARY)
    policy, resource_ok = parsed(resource, Layer.RESOURCE)
    return _Known(identity, boundary, boundary_ok, policy, resource_ok, resource_layer), notes


def _parse(fetched: FetchedPolicy, layer: Layer) -> Policy:
    return parse_policy(fetched.document, layer, fetched.label)


def _decide(request: Request, known: _Known, same_account: bool) -> _Decided:
    """Unreadable layers assumed to allow, then each assumed to deny (see the module doc).

    An unread resource policy assumed to allow names the caller's account, as a partner's policy would: it
    grants across accounts and delegates to the identity policies in the same one, so it hides no identity
    or boundary block. Assumed to deny, it grants nothing (cross-account, or a key policy) or, in the same
    account where only a Deny can block, denies.
    """
    resource_name = known.resource_layer
    unknown = [
        name
        for name, readable in (
            ("identity", known.identity is not None),
            ("boundary", known.boundary_readable),
            (resource_name, known.resource_readable),
        )
        if not readable
    ]
    account_root = f"arn:{request.principal.partition}:iam::{request.principal.account}:root"
    open_resource = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": account_root}, "Action": "*", "Resource": "*"}
        ],
    }
    denying_resource = (
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}],
        }
        if same_account and resource_name == BUCKET_POLICY
        else _GRANTS_NOTHING
    )

    def stand_in(layer: Layer, name: str, deny: set[str], allowing: dict[str, Any]) -> Policy:
        if name in deny:
            denying = denying_resource if layer is Layer.RESOURCE else _GRANTS_NOTHING
            return parse_policy(denying, layer, f"(unread {name}: assumed to deny)")
        return parse_policy(allowing, layer, f"(unread {name}: assumed to allow)")

    def layers(denying: Iterable[str], lifted: Iterable[str] = ()) -> PolicyLayers:
        """Unread layers assumed to allow but ``denying``; ``lifted`` readable layers as if fixed."""
        deny, lift = set(denying), set(lifted)
        identity: tuple[Policy, ...]
        if "identity" in lift:
            identity = (parse_policy(_ALLOW_ALL, Layer.IDENTITY, "(identity, as if fixed)"),)
        elif known.identity is not None:
            identity = known.identity
        else:
            identity = (stand_in(Layer.IDENTITY, "identity", deny, _ALLOW_ALL),)
        boundary: Policy | None
        if "boundary" in lift:
            boundary = None
        elif known.boundary_readable:
            boundary = known.boundary
        else:
            boundary = stand_in(Layer.BOUNDARY, "boundary", deny, _ALLOW_ALL)
        resource: Policy | None
        if resource_name in lift:
            resource = parse_policy(open_resource, Layer.RESOURCE, "(as if fixed)")
        elif known.resource_readable:
            resource = known.resource
        else:
            resource = stand_in(Layer.RESOURCE, resource_name, deny, open_resource)
        return PolicyLayers(identity=identity, boundary=boundary, resource=resource)

    optimistic = evaluate(request, layers(()))
    pessimistic = evaluate(request, layers(unknown)) if unknown else optimistic
    proven = _layer_names(optimistic, resource_name)
    if optimistic.allowed == pessimistic.allowed:
        # Already decided by the layers that were read; an unread layer stays in the diagnosis when it
        # would still block once those are fixed (unknown is never absent).
        suspects = tuple(
            name
            for name in unknown
            if not optimistic.allowed and not evaluate(request, layers((name,), lifted=proven)).allowed
        )
        decided = optimistic if not optimistic.allowed else pessimistic
        return _Decided(decided.decision.value, proven, suspects, _refs(decided), optimistic.reasons)
    suspects = tuple(name for name in unknown if not evaluate(request, layers((name,))).allowed)
    return _Decided(Outcome.UNDECIDED.value, proven, suspects, (), optimistic.reasons)


def _layer_names(result: EvaluationResult, resource_layer: str) -> tuple[str, ...]:
    names = {Layer.RESOURCE: resource_layer}
    return tuple(dict.fromkeys(names.get(layer, layer.value) for layer in result.blocked_by))


def _refs(result: EvaluationResult) -> tuple[dict[str, str], ...]:
    return tuple(ref.to_dict() for ref in result.statements)


def _combine(
    capability: str, parts: list[tuple[EvaluatedRequest, _Decided]], key_unknown: bool
) -> CapabilityEvaluation:
    """The S3 request and, with a KMS key, its key request: the worst decision; any KMS block is ``kms``.
    An unreadable encryption configuration may hide a key, so ``kms`` is then unverified."""
    (_, s3), *kms_parts = parts
    kms = kms_parts[0][1] if kms_parts else None
    decisions = {decided.decision for _, decided in parts}
    decision = next((d.value for d in _SEVERITY if d in decisions), Outcome.ALLOWED.value)
    kms_blocks = kms is not None and Outcome(kms.decision).denied
    kms_suspect = key_unknown or (kms is not None and bool(kms.suspects))
    if key_unknown and decision == Outcome.ALLOWED:
        decision = Outcome.UNDECIDED.value
    return CapabilityEvaluation(
        capability=capability,
        decision=decision,
        blocked_by=tuple(dict.fromkeys((*s3.blocked_by, *((KMS,) if kms_blocks else ())))),
        unverified=tuple(dict.fromkeys((*s3.suspects, *((KMS,) if kms_suspect and not kms_blocks else ())))),
        requests=tuple(request for request, _ in parts),
        statements=tuple(ref for _, decided in parts for ref in decided.statements),
        reasons=tuple(dict.fromkeys(reason for _, decided in parts for reason in decided.reasons)),
    )
