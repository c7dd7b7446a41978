"""What the notebook and the terminal show for access requests: a receipt, and a table of one's requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from mlspace_s3magic.core.access import AccessRequest, NewAccessRequest
from mlspace_s3magic.core.render import Rendered, html_table, terminal_safe, text_table


@dataclass(frozen=True, repr=False)
class Receipt(Rendered):
    """The answer to a submission: filed (with its id and status), or queued until the endpoint answers."""

    asked: NewAccessRequest
    filed: AccessRequest | None
    endpoint: str

    def to_dict(self) -> dict[str, Any]:
        if self.filed is None:
            return {"queued": True, "idempotency_key": self.asked.idempotency_key, "endpoint": self.endpoint}
        return {"queued": False, **self.filed.model_dump(mode="json", exclude={"plan", "result"})}

    def _rows(self) -> list[tuple[str, str]]:
        target = f"s3://{self.asked.bucket}/{self.asked.prefix}"
        if self.filed is None:
            return [
                ("Request", "queued: the admin endpoint did not answer"),
                ("For", target),
                ("Will be sent", "with `%s3access requests` or `s3access requests`, once it answers"),
            ]
        return [
            ("Request", self.filed.id),
            ("Status", self.filed.status.value),
            ("For", target),
            ("Access", self.filed.access.value),
            ("Endpoint", self.endpoint),
        ]

    def __str__(self) -> str:
        return text_table(self._rows())

    def _repr_html_(self) -> str:
        return html_table("S3 access request", self._rows())


@dataclass(frozen=True, repr=False)
class RequestTable(Rendered):
    """One's requests, newest first, with what is still queued locally."""

    requests: Sequence[AccessRequest]
    queued: Sequence[NewAccessRequest] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": [r.model_dump(mode="json", exclude={"plan", "result"}) for r in self.requests],
            "queued": [q.model_dump(mode="json") for q in self.queued],
        }

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = [
            (r.id, r.status.value, r.access.value, f"s3://{r.bucket}/{r.prefix}", r.reason)
            for r in self.requests
        ]
        rows += [
            ("(queued)", "not sent", q.access.value, f"s3://{q.bucket}/{q.prefix}", q.reason)
            for q in self.queued
        ]
        return rows

    def _changes(self) -> list[list[str]]:
        """Per row, the endpoint's one line per layer (which document, what it allows, whether written)."""
        return [[summary.line() for summary in r.summary or []] for r in self.requests] + [
            [] for _ in self.queued
        ]

    def __str__(self) -> str:
        rows = self._rows()
        if not rows:
            return "(no access requests)"
        header = ("id", "status", "access", "where", "reason")
        safe = [tuple(terminal_safe(cell) for cell in row) for row in rows]
        widths = [max(len(row[i]) for row in (header, *safe)) for i in range(4)]

        def line(row: tuple[str, ...]) -> str:
            return (
                "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
                + "  "
                + row[4]
            )

        lines = [line(header)]
        for row, changes in zip(safe, self._changes(), strict=True):
            lines.append(line(row))
            lines += [f"    - {terminal_safe(change)}" for change in changes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            "<tr>"
            + "".join(f"<td>{escape(cell)}</td>" for cell in row)
            + "<td>"
            + "<br>".join(escape(change) for change in changes)
            + "</td></tr>"
            for row, changes in zip(self._rows(), self._changes(), strict=True)
        )
        return (
            "<div><strong>Your S3 access requests</strong><table>"
            "<tr><th>id</th><th>status</th><th>access</th>"
            f"<th>where</th><th>reason</th><th>changes</th></tr>{body}</table></div>"
        )
