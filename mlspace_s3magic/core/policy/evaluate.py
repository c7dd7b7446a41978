"""Decide one request across every policy layer, in AWS's order, and say why."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from .actions import ALWAYS_ALLOWED, RESOURCELESS_ACTIONS, needs_resource
from .document import Layer, Policy
from .errors import PolicyValidationError
from .grants import Allows, grant_route
from .matching import resource_head
from .principals import PrincipalType
from .request import Request, ResourceKind
from .result import Decision, EvaluationResult, StatementRef
from .statements import Hit, Level, Scope

_ORDER = (
    Layer.RCP,
    Layer.SCP,
    Layer.ENDPOINT,
    Layer.RESOURCE,
    Layer.IDENTITY,
    Layer.BOUNDARY,
    Layer.SESSION,
)
_BOUNDED = {PrincipalType.USER, PrincipalType.ASSUMED_ROLE, PrincipalType.FEDERATED_USER}
_SESSIONS = {PrincipalType.ASSUMED_ROLE, PrincipalType.FEDERATED_USER}
_CALLER_IDENTITY = (
    "sts:GetCallerIdentity needs no permission: AWS allows it whatever the policies say, an explicit Deny "
    "included (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)."
)
_LITERAL_WILDCARDS = (
    "The resource {resource} holds * or ?, which a request takes literally (an object key named so); "
    "policies' wildcards still match it as text."
)
_NO_RESOURCE_POLICY = {
    ResourceKind.NONE: "The resource policy was ignored: {action} takes no resource, so no resource policy "
    "takes part.",
    ResourceKind.ALIAS: "The resource policy was ignored: a KMS alias has no key policy (only key ARNs do).",
}
_ALIAS = (
    "{resource} is a KMS alias, which has no key policy: the caller's own policies decide this request. "
    "Using the key behind it (kms:Decrypt, kms:GenerateDataKey...) needs that key's key policy to allow "
    "the caller too (https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html)."
)

Levels = tuple[tuple[Policy, ...], ...]
# The layers that apply to a caller, in _ORDER, each as its levels (one but for the organization's).
Applicable = dict[Layer, tuple[Level, ...]]


@dataclass(frozen=True)
class PolicyLayers:
    """Every policy that may apply to a request; ``scps`` and ``rcps`` are levels of the organization tree,
    root first, each a tuple of the policies attached there (an empty tuple of levels means no organization).
    """

    identity: tuple[Policy, ...] = ()
    boundary: Policy | None = None
    session: Policy | None = None
    resource: Policy | None = None
    scps: Levels = ()
    rcps: Levels = ()
    endpoint: Policy | None = None

    @cached_property
    def _by_caller_type(self) -> dict[PrincipalType, tuple[Applicable, tuple[str, ...]]]:
        """What :func:`_applicable` worked out per kind of caller: it depends on nothing else."""
        return {}


def evaluate(request: Request, layers: PolicyLayers | None = None) -> EvaluationResult:
    """AWS's decision for the request: an explicit Deny anywhere wins; then every SCP level and the VPC
    endpoint policy must allow (every RCP level holds AWS's RCPFullAWSAccess, so RCPs can only deny); and the
    resource, identity, boundary and session layers must grant it. ``blocked_by`` names every layer that
    blocks, the implicit ones too when a Deny decides, so fixing one does not hide the next.

    Raises PolicyValidationError for the resource ``"*"`` with an action that needs a resource.
    """
    layers = layers or PolicyLayers()
    caller = request.principal
    action = request.action.lower()
    notes: list[str] = []
    if action == ALWAYS_ALLOWED and caller.type is not PrincipalType.ANONYMOUS:
        return _result(request, Decision.ALLOWED, (), notes, reasons=[_CALLER_IDENTITY])
    resource = request.resource
    resourceless = action in RESOURCELESS_ACTIONS
    if resourceless:
        kind = ResourceKind.NONE
        if resource != "*":
            notes.append(
                f'{request.action} takes no resource, so its resource is "*"; {resource} was set aside.'
            )
            resource = "*"
        owner = route_owner = caller.account
    else:
        kind = request.resource_kind
        if kind is ResourceKind.NONE:
            raise PolicyValidationError("resource", needs_resource(request.action))
        if "*" in resource or "?" in resource:
            notes.append(_LITERAL_WILDCARDS.format(resource=resource))
        owner = request.owner_account
        if owner is None and caller.account is not None:
            owner = caller.account
            notes.append(
                "The resource's account was not given (S3 ARNs do not carry it), so it is taken to be the "
                "caller's own account."
            )
        route_owner = caller.account if kind is ResourceKind.ALIAS else owner
    applicable = _applicable(request, layers, notes)
    if Layer.RESOURCE in applicable and kind in (ResourceKind.NONE, ResourceKind.ALIAS):
        applicable = {layer: levels for layer, levels in applicable.items() if layer is not Layer.RESOURCE}
        notes.append(_NO_RESOURCE_POLICY[kind].format(action=request.action))
    scope = Scope(
        caller,
        request.action,
        resource,
        request.condition_keys(owner),
        has_boundary=Layer.BOUNDARY in applicable,
        head="*" if resourceless else resource_head(resource),
        everything=_everything(action, caller.partition) if resourceless else None,
    )
    hits = _collect(applicable, scope, notes)
    # ``hits`` is in AWS's evaluation order already: _applicable lists the layers in _ORDER.
    everything = [hit for levels in hits.values() for level in levels for hit in level]
    matched = _refs(everything)
    denies = [hit for hit in everything if not hit.allows]
    if denies:  # what follows asks which layers allow: it must see the Allows only
        hits = {
            layer: [[hit for hit in level if hit.allows] for level in levels]
            for layer, levels in hits.items()
        }
    blocked: list[Layer] = []
    used: list[Hit] = []
    reasons: list[str] = []
    for layer in (Layer.SCP, Layer.ENDPOINT):
        for index, allowing in enumerate(hits.get(layer, [])):
            if allowing:
                used.extend(allowing)
            else:
                blocked.append(layer)
                reasons.append(
                    _missing_allow(layer, index, applicable[layer][index].policies, request.action)
                )
    route = grant_route(
        caller,
        route_owner,
        kind,
        Allows(
            resource=_flat(hits, Layer.RESOURCE),
            identity=_flat(hits, Layer.IDENTITY),
            boundary=_flat(hits, Layer.BOUNDARY) if Layer.BOUNDARY in hits else None,
            session=_flat(hits, Layer.SESSION) if Layer.SESSION in hits else None,
        ),
    )
    blocked.extend(route.blocked_by)
    reasons.extend(route.reasons)
    reasons.extend(_blocker_reason(layer, request, layers, kind) for layer in route.blocked_by)
    if kind is ResourceKind.ALIAS:
        reasons.append(_ALIAS.format(resource=resource))
    if denies:
        refs = _refs(denies)
        return _result(
            request,
            Decision.EXPLICIT_DENY,
            matched,
            notes,
            blocked_by=_ordered([*(hit.policy.layer for hit in denies), *blocked]),
            statements=refs,
            reasons=[f"Explicit Deny: {ref}; a Deny in any layer overrides every Allow." for ref in refs]
            + (reasons if blocked else []),
        )
    if blocked:
        return _result(
            request, Decision.IMPLICIT_DENY, matched, notes, blocked_by=_ordered(blocked), reasons=reasons
        )
    return _result(
        request, Decision.ALLOWED, matched, notes, statements=_refs(used + route.used), reasons=reasons
    )


def _everything(action: str, partition: str) -> tuple[str, ...]:
    """The Resource entries that cover the "*" of an action that takes no resource."""
    return ("*", f"arn:{partition}:s3:::*") if action.startswith("s3:") else ("*",)


def _collect(applicable: Applicable, scope: Scope, notes: list[str]) -> dict[Layer, list[list[Hit]]]:
    """The statements that apply, per layer and per level; statements AWS would ignore go to the notes."""
    hits: dict[Layer, list[list[Hit]]] = {}
    for layer, levels in applicable.items():
        hits[layer] = per_level = []
        for level in levels:
            level_hits: list[Hit] = []
            level.collect(scope, level_hits, notes)
            per_level.append(level_hits)
    return hits


def _result(
    request: Request,
    decision: Decision,
    matched: tuple[StatementRef, ...],
    notes: list[str],
    *,
    reasons: list[str],
    blocked_by: tuple[Layer, ...] = (),
    statements: tuple[StatementRef, ...] = (),
) -> EvaluationResult:
    return EvaluationResult(
        decision,
        principal=str(request.principal),
        action=request.action,
        resource=request.resource,
        blocked_by=blocked_by,
        statements=statements,
        matched=matched,
        reasons=tuple(reasons),
        notes=tuple(dict.fromkeys(notes)) if len(notes) > 1 else tuple(notes),
    )


def _applicable(request: Request, layers: PolicyLayers, notes: list[str]) -> Applicable:
    """The layers that apply to this caller, each as its levels of policies; notes the ones given but ignored.

    Remembered per kind of caller on the layers (with the levels' plans), since one set of layers decides
    many requests; callers only read the dict.
    """
    kind = request.principal.type
    known = layers._by_caller_type.get(kind)
    if known is None:
        known = layers._by_caller_type[kind] = _applicable_to(kind, layers)
    applicable, ignored = known
    notes.extend(ignored)
    return applicable


def _applicable_to(kind: PrincipalType, layers: PolicyLayers) -> tuple[Applicable, tuple[str, ...]]:
    anonymous = kind is PrincipalType.ANONYMOUS
    candidates: list[tuple[Layer, Levels, bool, str]] = [
        (Layer.RCP, layers.rcps, True, ""),
        (
            Layer.SCP,
            layers.scps,
            not anonymous,
            "SCPs were ignored: they apply to an organization's principals",
        ),
        (Layer.ENDPOINT, _single(layers.endpoint), True, ""),
        (Layer.RESOURCE, _single(layers.resource), True, ""),
        (
            Layer.IDENTITY,
            (layers.identity,) if layers.identity else (),
            not anonymous,
            "The identity policies were ignored: an anonymous caller has none",
        ),
        (
            Layer.BOUNDARY,
            _single(layers.boundary),
            kind in _BOUNDED,
            "The permissions boundary was ignored: only IAM users and roles have one",
        ),
        (
            Layer.SESSION,
            _single(layers.session),
            kind in _SESSIONS,
            "The session policy was ignored: only role and federated-user sessions have one",
        ),
    ]
    applicable: Applicable = {}
    notes: list[str] = []
    for layer, levels, applies, ignored in candidates:
        if levels and not applies:
            notes.append(f"{ignored}.")
        elif levels:
            applicable[layer] = tuple(Level(policies) for policies in levels)
            notes.extend(
                f"{policy.label}, {warning}"
                for policies in levels
                for policy in policies
                for warning in policy.warnings
            )
    return applicable, tuple(notes)


def _single(policy: Policy | None) -> Levels:
    return ((policy,),) if policy is not None else ()


def _flat(hits: dict[Layer, list[list[Hit]]], layer: Layer) -> list[Hit]:
    """The layer's hits across its levels; callers only read the list."""
    levels = hits.get(layer)
    if not levels:
        return []
    if len(levels) == 1:  # every layer but the organization's has one level
        return levels[0]
    return [hit for level in levels for hit in level]


def _refs(hits: list[Hit]) -> tuple[StatementRef, ...]:
    """Statement references without repeats, in evaluation order."""
    if not hits:
        return ()
    return tuple(dict.fromkeys(hit.ref for hit in hits))


def _ordered(layers: Iterable[Layer]) -> tuple[Layer, ...]:
    """The layers without repeats, in the order AWS evaluates them."""
    present = set(layers)
    return tuple(layer for layer in _ORDER if layer in present)


def _missing_allow(layer: Layer, index: int, policies: tuple[Policy, ...], action: str) -> str:
    """Why an SCP level or the endpoint policy blocks: nothing there allows the action."""
    if layer is Layer.ENDPOINT:
        return f"The VPC endpoint policy does not allow {action} on this resource for this caller."
    name = "service control policy (SCP)"
    if not policies:
        return f"Level {index} of the organization has no {name} attached, so nothing there allows {action}."
    return f"No {name} at level {index} of the organization (0 is the root) allows {action} on this resource."


def _blocker_reason(layer: Layer, request: Request, layers: PolicyLayers, kind: ResourceKind) -> str:
    """One sentence on what a blocking layer lacks."""
    action = request.action
    if layer is Layer.IDENTITY:
        return f"No identity policy allows {action} on this resource."
    if layer is Layer.BOUNDARY:
        return f"The permissions boundary does not allow {action} on this resource."
    if layer is Layer.SESSION and layers.session is None:
        return "A federated-user session without a session policy has no identity-based permissions."
    if layer is Layer.SESSION:
        return f"The session policy does not allow {action} on this resource."
    if layers.resource is None:
        return f"There is no {kind.value}, and this request needs one that allows the caller."
    return f"The {kind.value} does not allow this caller."
