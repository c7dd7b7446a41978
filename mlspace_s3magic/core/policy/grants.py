"""Whether the caller's side and the resource's side together grant a request that no Deny stopped.

This is AWS's principal-dependent part of evaluation: same account or cross-account, resource-policy grants to
the user or session ARN versus the role ARN versus the account, KMS key policies and role trust policies
(which must allow the caller themselves, see
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), requests that no
resource policy takes part in, and anonymous callers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .document import Layer
from .principal_element import Grant
from .principals import Principal, PrincipalType
from .request import ResourceKind
from .statements import Hit

# The resource policies that must allow the caller themselves (or its account, delegating to its identity
# policies): an identity Allow in the same account is not enough on its own.
_EXPLICIT = {
    ResourceKind.KEY: "A KMS key policy",
    ResourceKind.TRUST: "A role trust policy",
}


# Made once per request: plain slotted dataclasses, cheaper to create than frozen ones (nothing changes them).
@dataclass(slots=True)
class Allows:
    """The Allow statements that applied, per layer; None for a boundary or session policy that is absent."""

    resource: list[Hit]
    identity: list[Hit]
    boundary: list[Hit] | None
    session: list[Hit] | None


@dataclass(slots=True)
class Route:
    """What the grant needs and lacks: the blocking layers, the statements it rests on, and why."""

    blocked_by: list[Layer]
    used: list[Hit]
    reasons: list[str]


def grant_route(caller: Principal, owner: str | None, kind: ResourceKind, allows: Allows) -> Route:
    """Decide the resource, identity, boundary and session layers together, as AWS's flow charts do."""
    best = (
        max((hit.grant for hit in allows.resource if hit.grant is not None), default=None)
        if allows.resource
        else None
    )
    identity_ok = caller.type is PrincipalType.ACCOUNT or bool(allows.identity)
    boundary_ok = allows.boundary is None or bool(allows.boundary)
    if allows.session is None:
        session_ok = caller.type is not PrincipalType.FEDERATED_USER
    else:
        session_ok = bool(allows.session)
    caps = ([] if boundary_ok else [Layer.BOUNDARY]) + ([] if session_ok else [Layer.SESSION])
    identity_route = ([] if identity_ok else [Layer.IDENTITY]) + caps
    cap_hits = (allows.boundary or []) + (allows.session or [])
    identity_hits = allows.identity + cap_hits
    resource_name = kind.value
    if kind in (ResourceKind.NONE, ResourceKind.ALIAS):
        return Route(
            identity_route,
            identity_hits,
            [
                "No resource policy takes part: an Allow in an identity policy decides, within the "
                "permissions boundary and session policy."
            ],
        )
    if caller.type is PrincipalType.ANONYMOUS:
        if best is not None:
            return Route(
                [], allows.resource, [f"The {resource_name} allows everyone, anonymous callers included."]
            )
        return Route(
            [Layer.RESOURCE],
            [],
            [
                f"An anonymous caller can only be allowed by a {resource_name} open to everyone "
                '(Principal "*").'
            ],
        )
    if owner != caller.account:
        return Route(
            ([] if best is not None else [Layer.RESOURCE]) + identity_route,
            allows.resource + identity_hits,
            [
                f"Cross-account request (caller in {caller.account}, resource in {owner}): the "
                f"{resource_name} must allow the caller, and so must the caller's identity policies, "
                "within its permissions boundary and session policy."
            ],
        )
    if best is Grant.DIRECT:
        return Route(
            [],
            allows.resource,
            [
                f"The {resource_name} names this caller directly (its user or session ARN, or everyone); "
                "in the same account such a grant is not capped by the permissions boundary or the "
                "session policy."
            ],
        )
    if best is Grant.ROLE:
        return Route(
            caps,
            allows.resource + cap_hits,
            [
                f"The {resource_name} names the role ARN; in the same account that grant is capped by the "
                "permissions boundary and the session policy (a grant to the session ARN would not be)."
            ],
        )
    if best is Grant.ACCOUNT:
        return Route(
            identity_route,
            allows.resource + identity_hits,
            [
                f"The {resource_name} names the whole account, which delegates to the account's identity "
                "policies: they must allow, within the permissions boundary and session policy."
            ],
        )
    explicit = _EXPLICIT.get(kind)
    if explicit is not None:
        return Route(
            [Layer.RESOURCE, *identity_route],
            identity_hits,
            [
                f"{explicit} must allow the caller itself, or allow the account "
                f"(arn:aws:iam::{caller.account}:root) so that identity policies count; none here does, "
                "and an identity Allow alone is not enough."
            ],
        )
    return Route(
        identity_route,
        identity_hits,
        [
            "Same account: an Allow in an identity policy is enough, within the permissions boundary and "
            "session policy (or an Allow in the resource policy naming this caller)."
        ],
    )
