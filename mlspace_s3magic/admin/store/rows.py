"""How models become rows and back, the same way in both backends, so both hold the same text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mlspace_s3magic.admin.store.changes import AuditAction
from mlspace_s3magic.core.access import AccessRequest, AuditEntry, Requester

# What a transition may change; a field it does not set keeps its value.
CHANGEABLE = ("status", "updated_at", "expires_at", "plan", "result", "decision_reason")
# The words earlier releases stored for these actions: rows are durable, so they are read as today's verbs
# (crash repair looks for ``START_APPLY`` in rows an older release wrote).
LEGACY_ACTIONS = {
    "apply-started": AuditAction.START_APPLY,
    "revoked": AuditAction.REVOKE,
    "expired": AuditAction.EXPIRE,
    "put bucket": AuditAction.PUT_BUCKET,
    "delete bucket": AuditAction.DELETE_BUCKET,
}


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused rather than guessed at."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; the store records UTC, so it needs aware datetimes")
    return moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    """ISO 8601 UTC at a fixed width, so text order is time order (the expiry query compares text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def request_row(request: AccessRequest) -> dict[str, str | int | None]:
    """The request as flat columns: the requester and the plan and result as JSON text."""
    return {
        "id": request.id,
        "requester_arn": request.requester.arn,
        "requester": request.requester.model_dump_json(),
        "bucket": request.bucket,
        "prefix": request.prefix,
        "access": request.access.value,
        "reason": request.reason,
        "days": request.days,
        "idempotency_key": request.idempotency_key,
        "status": request.status.value,
        "created_at": stamp(request.created_at),
        "updated_at": stamp(request.updated_at),
        "expires_at": stamp(request.expires_at) if request.expires_at else None,
        "plan": _json(request.plan),
        "result": _json(request.result),
        "decision_reason": request.decision_reason,
    }


def request_from_row(row: Mapping[str, Any]) -> AccessRequest:
    """The request back from ``request_row``'s columns; a backend may leave out the empty ones."""
    return AccessRequest(
        id=row["id"],
        requester=Requester.model_validate_json(row["requester"]),
        bucket=row["bucket"],
        prefix=row["prefix"],
        access=row["access"],
        reason=row["reason"],
        days=row.get("days"),
        idempotency_key=row["idempotency_key"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row.get("expires_at"),
        plan=json.loads(row["plan"]) if row.get("plan") else None,
        result=json.loads(row["result"]) if row.get("result") else None,
        decision_reason=row.get("decision_reason"),
    )


def changed_fields(after: AccessRequest) -> dict[str, str]:
    """The ``CHANGEABLE`` columns a transition writes: those with a value, as text."""
    row = request_row(after)
    return {name: str(row[name]) for name in CHANGEABLE if row[name] is not None}


def audit_row(entry: AuditEntry) -> dict[str, str | int | None]:
    """The audit entry as flat columns, its detail as JSON text."""
    return {
        "seq": entry.seq,
        "at": stamp(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "request_id": entry.request_id,
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_status": entry.to_status.value if entry.to_status else None,
        "detail": json.dumps(entry.detail, sort_keys=True),
    }


def audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    """The audit entry back from ``audit_row``'s columns, a legacy action word read as today's."""
    action = LEGACY_ACTIONS.get(row["action"], row["action"])
    return AuditEntry.model_validate({**row, "action": action, "detail": json.loads(row["detail"])})
