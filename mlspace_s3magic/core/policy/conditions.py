"""Condition blocks: AWS's rules for missing keys, IfExists, negated operators, ForAnyValue/ForAllValues."""

from __future__ import annotations

from .document import Condition
from .operators import SetOperator
from .request import RequestContext


def condition_holds(condition: Condition, context: RequestContext) -> bool:
    """Whether one operator-and-key clause holds; the values listed for it are ORed.

    A missing (or empty) key makes the clause false, except that IfExists and ForAllValues make it true,
    ForAnyValue keeps it false, and a negated operator (StringNotEquals, NotIpAddress...) makes it true.
    Raises UnresolvedVariable when a policy variable in the values has no value.
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
    policy_values = [value.expand(context.get) for value in condition.values]
    satisfied = [
        any(compare(value, policy_value) for policy_value in policy_values) != operator.base.negated
        for value in values
    ]
    if operator.set_operator is SetOperator.FOR_ANY_VALUE:
        return any(satisfied)
    if operator.set_operator is SetOperator.FOR_ALL_VALUES or operator.base.negated:
        return all(satisfied)
    return any(satisfied)


def conditions_hold(conditions: tuple[Condition, ...], context: RequestContext) -> bool:
    """Whether every clause holds: operators and keys are ANDed."""
    return all(condition_holds(condition, context) for condition in conditions)
