"""Which statements of a policy apply to a request: action, resource, principal and conditions all match."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .conditions import conditions_hold
from .document import Effect, Policy, Statement
from .matching import resource_head
from .principal_element import Grant, grant_for
from .principals import Principal
from .request import RequestContext
from .result import StatementRef


# Scope and Hit are made per request and per statement that applies: plain slotted dataclasses, since a frozen
# one costs about four times as much to create. Nothing changes them once made.
@dataclass(slots=True)
class Scope:
    """The facts every statement is judged on."""

    principal: Principal
    action: str
    resource: str
    context: RequestContext
    has_boundary: bool
    head: str | None = None  # the resource's head (see Policy.plan), worked out once per request
    # For an action that takes no resource (the resource is "*"): the Resource entries that cover it.
    everything: tuple[str, ...] | None = None


@dataclass(slots=True)
class Hit:
    """A statement that applies; ``grant`` says how its Principal element, if any, reached the caller."""

    policy: Policy
    statement: Statement
    grant: Grant | None
    ref: StatementRef

    @property
    def allows(self) -> bool:
        """Whether the statement is an Allow (otherwise it is an explicit Deny)."""
        return self.statement.effect is Effect.ALLOW


class Level:
    """The policies of one layer, or of one level of the organization tree, which a request asks together.

    Why: every policy of a level answers the same question for a request; with the statements worth matching
    gathered across them (per action and resource head, see :meth:`Policy.plan`), a request costs one lookup
    per level instead of one per policy.
    """

    __slots__ = ("_plans", "policies")

    def __init__(self, policies: tuple[Policy, ...]) -> None:
        self.policies = policies
        self._plans: dict[tuple[str, str], _LevelPlan] = {}

    def collect(self, scope: Scope, hits: list[Hit], notes: list[str]) -> None:
        """Append the statements that apply, in document order, and notes on statements AWS would ignore."""
        head = resource_head(scope.resource) if scope.head is None else scope.head
        plan = self._plans.get((scope.action, head))
        if plan is None:
            plan = self._plan(scope.action, head)
        resource = scope.resource
        everything = scope.everything
        unresolved: list[str] = []  # entries and condition values whose variables have no value
        for policy, statement, pattern, ref in plan:
            if pattern is not None and everything is None:
                if (pattern.fullmatch(resource) is None) != statement.not_resource:
                    continue  # a fixed Resource that does not cover the resource (or a NotResource that does)
                hit = _hit(policy, statement, ref, scope, unresolved)
            elif everything is not None:
                hit = (
                    _hit(policy, statement, ref, scope, unresolved)
                    if statement.covers_no_resource(everything)
                    else None
                )
            elif statement.covers_resource(resource, scope.context.get, unresolved):
                hit = _hit(policy, statement, ref, scope, unresolved)
            else:
                hit = None
            if unresolved:
                notes.extend(
                    f"{policy.label}, {statement.name}: the {item} holds a policy variable with no value in "
                    "this request (its key is absent or multivalued, and it has no default), so it matches "
                    "nothing"
                    for item in unresolved
                )
                unresolved.clear()
            if hit is not None:
                hits.append(hit)

    def _plan(self, action: str, head: str) -> _LevelPlan:
        if len(self._plans) >= _PLANS_REMEMBERED:
            self._plans.clear()
        plan = tuple(
            (
                policy,
                statement,
                pattern,
                StatementRef(policy.layer, policy.label, statement.name, statement.effect),
            )
            for policy in self.policies
            for statement, pattern in policy.plan(action, head)
        )
        self._plans[(action, head)] = plan
        return plan


# Each statement with its fixed Resource pattern (None: worked out per request) and its reference for results.
_LevelPlan = tuple[tuple[Policy, Statement, re.Pattern[str] | None, StatementRef], ...]
_PLANS_REMEMBERED = 4096  # (action, resource head) pairs per level; past that the plans start over


def _hit(
    policy: Policy, statement: Statement, ref: StatementRef, scope: Scope, unresolved: list[str]
) -> Hit | None:
    """The statement (its action and resource matched) as a hit when its principal and conditions apply too,
    else None."""
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
    if statement.conditions and not conditions_hold(statement.conditions, scope.context, unresolved):
        return None
    return Hit(policy, statement, grant, ref)
