"""What the notebook and the terminal show for access requests: a receipt, and a table of one's requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.core.access import AccessRequest, NewAccessRequest
from mlspace_s3magic.core.render import Columns, Rendered, columns, html_table, text_table


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

    def _table(self) -> Columns:
        """A row per request, with under it why it was denied and the endpoint's one line per layer (which
        document, what it allows, whether written)."""
        rows = [
            (r.id, r.status.value, r.access.value, f"s3://{r.bucket}/{r.prefix}", r.reason)
            for r in self.requests
        ]
        rows += [
            ("(queued)", "not sent", q.access.value, f"s3://{q.bucket}/{q.prefix}", q.reason)
            for q in self.queued
        ]
        below = [_below(r) for r in self.requests] + [[] for _ in self.queued]
        return columns(("id", "status", "access", "where", "reason"), rows, below=below)

    def __str__(self) -> str:
        if not self.requests and not self.queued:
            return "(no access requests)"
        return self._table().text()

    def _repr_html_(self) -> str:
        return f"<div><strong>Your S3 access requests</strong>{self._table().html()}</div>"


def _below(request: AccessRequest) -> list[str]:
    denied = [f"denied because: {request.decision_reason}"] if request.decision_reason else []
    return denied + [summary.line() for summary in request.summary or []]
