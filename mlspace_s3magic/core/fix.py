"""One fix (the change to one layer) and how it shows: as text in a terminal, as HTML in a notebook.

Why apart from the planner: the admin's plan and the check show fixes the planner made, and a fix's JSON
form is what the admin endpoint stores and applies.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from html import escape
from typing import Any

from mlspace_s3magic.core.layer_kinds import RunAs
from mlspace_s3magic.core.policy_edit import Document, Statement
from mlspace_s3magic.core.render import Rendered, Row, html_table, text_table


class Operation(StrEnum):
    """The API call that applies a fix, so the admin endpoint need not parse the command."""

    PUT_BUCKET_POLICY = "put-bucket-policy"
    PUT_ACCESS_POINT_POLICY = "put-access-point-policy"
    CREATE_POLICY = "create-policy"
    CREATE_POLICY_VERSION = "create-policy-version"
    PUT_KEY_POLICY = "put-key-policy"
    ADVICE = "advice"


@dataclass(frozen=True, repr=False)
class Fix(Rendered):
    """One change to one layer: the statements to add, the merged document when known, and the command.

    ``statements=()`` marks an advisory: a layer we cannot change (an SCP, a VPC endpoint policy), where the
    command is a shell comment saying who must act.
    """

    layer: str
    target: str
    applied_by: str
    statements: tuple[Statement, ...]
    document: Document | None
    command: str
    warnings: tuple[str, ...] = ()
    summary: str = ""
    operation: Operation = Operation.ADVICE
    sid_stem: str | None = None
    # Whose credentials run the command, and the 12-digit account they belong to (None: unknown).
    run_as: RunAs = RunAs.NOBODY
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fix as JSON values; copies, so a caller editing them cannot change this fix."""
        return {
            "layer": self.layer,
            "target": self.target,
            "applied_by": self.applied_by,
            "run_as": self.run_as,
            "account": self.account,
            "summary": self.summary,
            "change": {
                "operation": self.operation.value,
                "sid_stem": self.sid_stem,
                "add_statements": copy.deepcopy(list(self.statements)),
                "document": copy.deepcopy(self.document),
            },
            "command": self.command,
            "warnings": list(self.warnings),
        }

    def _rows(self) -> list[Row]:
        return [
            ("Layer", self.layer),
            ("Target", self.target),
            ("Applied by", self.applied_by),
            ("Change", self.summary),
        ]

    def __str__(self) -> str:
        # The command is printed unindented: an indented heredoc terminator would break a paste.
        return f"{text_table(self._rows(), self.warnings)}\nCommand:\n{self.command}"

    def _repr_html_(self) -> str:
        parts = [html_table(f"S3 access fix: {self.layer}", self._rows(), self.warnings)]
        parts.append(f"<div><strong>Command</strong><pre><code>{escape(self.command)}</code></pre></div>")
        if self.document is not None:
            parts.append(_details("New policy document", self.document))
        elif self.statements:
            parts.append(_details("Statements to add", list(self.statements)))
        return "<div>" + "".join(parts) + "</div>"


def _details(title: str, value: Any) -> str:
    """An expandable block, so a long policy does not push the command out of sight."""
    body = escape(json.dumps(value, indent=2))
    return f"<details><summary>{escape(title)}</summary><pre><code>{body}</code></pre></details>"


def render_fixes(fixes: Sequence[Fix]) -> str:
    """Every fix as text, numbered in the order they should be applied."""
    if not fixes:
        return "Nothing to change: no layer blocks this access."
    return "\n\n".join(f"Fix {number} of {len(fixes)}\n{fix}" for number, fix in enumerate(fixes, 1))


def fixes_html(fixes: Sequence[Fix]) -> str:
    """Every fix as HTML, in the same order as :func:`render_fixes`."""
    if not fixes:
        return "<div>Nothing to change: no layer blocks this access.</div>"
    return "<div>" + "".join(fix._repr_html_() for fix in fixes) + "</div>"
