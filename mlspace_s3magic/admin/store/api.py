"""The store's contract: the reads each backend answers itself, and the changes they share.

A backend supplies ``_change`` (run one change atomically) and the reads; every change is written once
here, over the functions of ``changes``, so both backends make exactly the same ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from mlspace_s3magic.admin.store import changes
from mlspace_s3magic.admin.store.changes import Transaction
from mlspace_s3magic.admin.store.rows import utc
from mlspace_s3magic.core.access import (
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    Requester,
    RequestStatus,
    SharedBucket,
)

T = TypeVar("T")

# The statuses whose grant expires: applied, or written but for the owner's part.
EXPIRING = (RequestStatus.APPLIED, RequestStatus.AWAITING_OWNER)


class Store(ABC):
    """What the HTTP layer needs; every method is synchronous and safe to call from many threads."""

    @abstractmethod
    def _change(self, change: Callable[[Transaction], T]) -> T:
        """Run ``change`` atomically and return what it returned; nothing is written if it raises."""

    def create_request(
        self, new: NewAccessRequest, requester: Requester, *, now: datetime
    ) -> tuple[AccessRequest, bool]:
        """(request, created): the same requester and idempotency key, or a pending request of theirs for
        the same bucket, prefix and access, gives that request and False, so a retry never files twice."""
        at = utc(now)
        return self._change(lambda tx: changes.create(tx, new, requester, at))

    @abstractmethod
    def get(self, request_id: str) -> AccessRequest:
        """The request; ``NotFound`` if there is none."""

    @abstractmethod
    def list_requests(
        self, *, requester_arn: str | None = None, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        """Newest first."""

    def transition(
        self,
        request_id: str,
        to_status: RequestStatus,
        *,
        actor: str,
        action: str,
        now: datetime,
        detail: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
        decision_reason: str | None = None,
    ) -> AccessRequest:
        """Compare-and-set on the status found at commit time: ``TransitionRefused`` unless ``TRANSITIONS``
        allows the step. Sets ``plan``, ``result``, ``expires_at`` and ``decision_reason`` when given;
        audited in one commit."""
        audit = {"at": utc(now), "actor": actor, "action": action, "detail": detail or {}}
        updates = {
            name: value
            for name, value in (
                ("plan", plan),
                ("result", result),
                ("expires_at", utc(expires_at) if expires_at else None),
                ("decision_reason", decision_reason),
            )
            if value is not None
        }
        return self._change(lambda tx: changes.transition(tx, request_id, to_status, audit, updates))

    def record(
        self,
        *,
        actor: str,
        action: str,
        now: datetime,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """An audit entry that changes no status, such as "plan viewed" or "apply failed: ..."."""
        audit = {"at": utc(now), "actor": actor, "action": action, "detail": detail or {}}
        return self._change(lambda tx: changes.record(tx, request_id, audit))

    @abstractmethod
    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Oldest first (``seq`` increasing); with ``limit``, only the newest ``limit`` entries."""

    @abstractmethod
    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        """Requests with live statements (applied, or awaiting the owner) with ``expires_at <= now``, the
        longest expired first."""

    @abstractmethod
    def list_buckets(self) -> list[SharedBucket]:
        """The registry, by bucket name."""

    def put_bucket(self, bucket: SharedBucket, *, actor: str, now: datetime) -> SharedBucket:
        """Insert or replace; the audit entry holds the new and the previous entry."""
        at = utc(now)
        return self._change(lambda tx: changes.put_bucket(tx, bucket, actor, at))

    def delete_bucket(self, name: str, *, actor: str, now: datetime) -> None:
        """``NotFound`` if the bucket is not registered; audited."""
        at = utc(now)
        self._change(lambda tx: changes.delete_bucket(tx, name, actor, at))

    @abstractmethod
    def close(self) -> None:
        """Release the store's connection; it cannot be used afterwards."""
