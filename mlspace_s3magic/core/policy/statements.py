"""Which statements of a policy apply to a request: action, resource, principal and conditions all match."""

from __future__ import annotations

from dataclasses import dataclass

from .conditions import conditions_hold
from .document import Effect, Policy, Statement
from .matching import action_matches, resource_matches
from .principal_element import Grant, grant_for
from .principals import Principal
from .request import RequestContext
from .variables import UnresolvedVariable


@dataclass(frozen=True)
class Scope:
    """The facts every statement is judged on."""

    principal: Principal
    action: str
    resource: str
    context: RequestContext
    has_boundary: bool


@dataclass(frozen=True)
class Hit:
    """A statement that applies; ``grant`` says how its Principal element, if any, reached the caller."""

    policy: Policy
    statement: Statement
    grant: Grant | None

    @property
    def allows(self) -> bool:
        """Whether the statement is an Allow (otherwise it is an explicit Deny)."""
        return self.statement.effect is Effect.ALLOW


def policy_hits(policy: Policy, scope: Scope) -> tuple[list[Hit], list[str]]:
    """The statements of ``policy`` that apply, and notes on statements AWS would ignore."""
    hits: list[Hit] = []
    notes: list[str] = []
    for statement in policy.statements:
        try:
            hit = _hit(policy, statement, scope)
        except UnresolvedVariable as missing:
            notes.append(
                f"{policy.label}, {statement.name}: {missing.source} has no value in this request, "
                "so the statement does not apply"
            )
            continue
        if hit is not None:
            hits.append(hit)
    return hits, notes


def _hit(policy: Policy, statement: Statement, scope: Scope) -> Hit | None:
    """The statement as a hit when it applies, else None; raises UnresolvedVariable."""
    if any(action_matches(pattern, scope.action) for pattern in statement.actions) == statement.not_action:
        return None
    patterns = [template.expand(scope.context.get) for template in statement.resources]
    if any(resource_matches(pattern, scope.resource) for pattern in patterns) == statement.not_resource:
        return None
    grant = None
    if statement.principal is not None:
        grant = grant_for(
            statement.principal,
            scope.principal,
            deny=statement.effect is Effect.DENY,
            has_boundary=scope.has_boundary,
        )
        if grant is None:
            return None
    if not conditions_hold(statement.conditions, scope.context):
        return None
    return Hit(policy, statement, grant)
