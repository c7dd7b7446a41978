"""The outcome of one evaluation, in a form a program, a terminal and a notebook can each read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from html import escape

from mlspace_s3magic.core.render import Cell, columns

from .document import Effect, Layer


class Decision(StrEnum):
    """AWS's three outcomes: allowed, denied because nothing allowed, denied by a Deny statement."""

    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit_deny"
    EXPLICIT_DENY = "explicit_deny"


_HEADLINES = {
    Decision.ALLOWED: "ALLOWED",
    Decision.IMPLICIT_DENY: "DENIED (nothing allows it)",
    Decision.EXPLICIT_DENY: "DENIED (an explicit Deny)",
}


@dataclass(frozen=True)
class StatementRef:
    """Points at one statement: the layer, the policy by the label its caller gave, the Sid or position."""

    layer: Layer
    policy: str
    statement: str
    effect: Effect

    def to_dict(self) -> dict[str, str]:
        """The reference as plain JSON values."""
        return {
            "layer": self.layer.value,
            "policy": self.policy,
            "statement": self.statement,
            "effect": self.effect.value,
        }

    def __str__(self) -> str:
        return f"{self.effect.value} in {self.layer.value} policy {self.policy!r}, {self.statement}"


@dataclass(frozen=True)
class EvaluationResult:
    """The decision, the layers that block it, the statements that decided it, and why in plain words.

    ``statements`` decided the outcome (the Denies, or the Allows that together granted it); ``matched`` is
    every statement that applied, including Allows that were not enough on their own.
    """

    decision: Decision
    principal: str
    action: str
    resource: str
    blocked_by: tuple[Layer, ...] = ()
    statements: tuple[StatementRef, ...] = ()
    matched: tuple[StatementRef, ...] = ()
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether AWS would allow the request."""
        return self.decision is Decision.ALLOWED

    def to_dict(self) -> dict[str, object]:
        """The result as JSON-able values, for ``--json`` and the REST routes."""
        return {
            "decision": self.decision.value,
            "allowed": self.allowed,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "blocked_by": [layer.value for layer in self.blocked_by],
            "statements": [ref.to_dict() for ref in self.statements],
            "matched": [ref.to_dict() for ref in self.matched],
            "reasons": list(self.reasons),
            "notes": list(self.notes),
        }

    @property
    def headline(self) -> str:
        """One line: the decision and the request it is about."""
        return f"{_HEADLINES[self.decision]}: {self.principal} -> {self.action} on {self.resource}"

    def __str__(self) -> str:
        lines = [self.headline]
        if self.blocked_by:
            lines.append(f"Blocked by: {', '.join(layer.value for layer in self.blocked_by)}")
        sections = (
            ("Why", self.reasons),
            ("Deciding statements", [str(ref) for ref in self.statements]),
            ("Statements that applied", [str(ref) for ref in self.matched if ref not in self.statements]),
            ("Notes", self.notes),
        )
        for title, items in sections:
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  - {item}" for item in items)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """A small table for notebooks; every value is escaped, since policies and ARNs come from outside."""
        rows = [
            ("Decision", _HEADLINES[self.decision]),
            ("Principal", self.principal),
            ("Action", self.action),
            ("Resource", self.resource),
            ("Blocked by", ", ".join(layer.value for layer in self.blocked_by) or "-"),
        ]
        head = columns((), [(Cell(name, heading=True), value) for name, value in rows])
        refs = [
            (
                "deciding" if ref in self.statements else "applied",
                ref.layer.value,
                ref.policy,
                ref.statement,
                ref.effect.value,
            )
            for ref in (*self.statements, *(ref for ref in self.matched if ref not in self.statements))
        ]
        table = columns(("", "Layer", "Policy", "Statement", "Effect"), refs).html() if refs else ""
        lists = "".join(
            f"<p>{escape(title)}</p><ul>{''.join(f'<li>{escape(item)}</li>' for item in items)}</ul>"
            for title, items in (("Why", self.reasons), ("Notes", self.notes))
            if items
        )
        return f"<div>{head.html()}{table}{lists}</div>"
