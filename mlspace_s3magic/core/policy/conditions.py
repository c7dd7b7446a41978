"""Condition blocks: AWS's rules for missing keys, IfExists, negated operators, ForAnyValue/ForAllValues."""

from __future__ import annotations

from .document import Condition
from .operators import SetOperator
from .request import RequestContext
from .variables import Chunks


def condition_holds(condition: Condition, context: RequestContext, unresolved: list[str]) -> bool:
    """Whether one operator-and-key clause holds; the values listed for it are ORed.

    A missing (or empty) key makes the clause false, except that IfExists and ForAllValues make it true,
    ForAnyValue keeps it false, and a negated operator (StringNotEquals, NotIpAddress...) makes it true.
    A value whose policy variable has no value equals and matches nothing (so a negated operator finds the
    request value "not equal" to it); its text is appended to ``unresolved`` for the notes.
    """
    operator = condition.operator
    values = context.get(condition.key)
    compare = operator.base.compare
    if compare is None:
        missing = not values
        return any((value.text.strip().lower() == "true") == missing for value in condition.values)
    if not values:
        if operator.if_exists or operator.set_operator is SetOperator.FOR_ALL_VALUES:
            return True
        return operator.set_operator is None and operator.base.negated
    policy_values = condition.static_values
    if policy_values is None:
        policy_values = _expanded(condition, context, unresolved)
    negated = operator.base.negated
    # Each request value is satisfied when it compares true with a policy value (for a negated operator:
    # with none). ForAllValues and plain negated operators need every request value satisfied, the others
    # one. Plain loops, stopping at the first value that decides: this runs for every statement that
    # reaches its conditions, and the comparisons have no side effects.
    every = operator.set_operator is not SetOperator.FOR_ANY_VALUE and (
        operator.set_operator is SetOperator.FOR_ALL_VALUES or negated
    )
    for value in values:
        satisfied = negated
        for policy_value in policy_values:
            if compare(value, policy_value):
                satisfied = not negated
                break
        if satisfied is not every:
            return satisfied
    return every


def _expanded(condition: Condition, context: RequestContext, unresolved: list[str]) -> tuple[Chunks, ...]:
    """The values with the request's keys substituted, leaving out (and noting) those that have no value."""
    values: list[Chunks] = []
    for template in condition.values:
        chunks = template.expand(context.get)
        if chunks is None:
            unresolved.append(f"{condition.operator.name} {condition.key} value {template.text!r}")
        else:
            values.append(chunks)
    return tuple(values)


def conditions_hold(
    conditions: tuple[Condition, ...], context: RequestContext, unresolved: list[str]
) -> bool:
    """Whether every clause holds: operators and keys are ANDed."""
    return all(condition_holds(condition, context, unresolved) for condition in conditions)
