"""The changes, each written once as a function over a ``Transaction`` that either backend makes atomic."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from mlspace_s3magic.admin.store.errors import TransitionRefused
from mlspace_s3magic.core.access import (
    TRANSITIONS,
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    Requester,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.errors import NotFound


class AuditAction(StrEnum):
    """Every word the audit log records as an action, here only: each an imperative verb, in kebab-case.
    Rows written by earlier releases may hold older words; ``rows.LEGACY_ACTIONS`` reads them as these."""

    SUBMIT = "submit"
    APPROVE = "approve"
    DENY = "deny"
    START_APPLY = "start-apply"  # written before an apply's first write, so a crash mid-apply is found
    APPLY = "apply"
    CANCEL = "cancel"
    REVOKE = "revoke"
    EXPIRE = "expire"
    RECONCILE = "reconcile"
    PUT_BUCKET = "put-bucket"
    DELETE_BUCKET = "delete-bucket"


class Transaction(Protocol):
    """What one change may read and write; the store makes it atomic (and runs it again if it lost a race)."""

    def request(self, request_id: str) -> AccessRequest | None: ...
    def request_for_key(self, requester_arn: str, key: str) -> AccessRequest | None: ...
    def pending_like(self, requester_arn: str, new: NewAccessRequest) -> AccessRequest | None: ...
    def bucket(self, name: str) -> SharedBucket | None: ...
    def next_seq(self) -> int: ...
    def append(self, entry: AuditEntry) -> None: ...
    def add_request(self, request: AccessRequest, created_seq: int) -> None: ...
    def add_key(self, requester_arn: str, key: str, request_id: str) -> None: ...
    def replace_request(self, before: AccessRequest, after: AccessRequest) -> None: ...
    def put_bucket(self, bucket: SharedBucket) -> None: ...
    def delete_bucket(self, name: str) -> None: ...


def create(
    tx: Transaction, new: NewAccessRequest, requester: Requester, now: datetime
) -> tuple[AccessRequest, bool]:
    """File ``new`` unless the key or a pending twin already names a request, so a retry never files twice."""
    existing = tx.request_for_key(requester.arn, new.idempotency_key)
    if existing is not None:
        return existing, False
    pending = tx.pending_like(requester.arn, new)
    if pending is not None:
        # The new key now names that request too, so a retry with it still finds it once it has moved on.
        tx.add_key(requester.arn, new.idempotency_key, pending.id)
        return pending, False
    request = AccessRequest(
        id=secrets.token_hex(6),
        requester=requester,
        **new.model_dump(),
        status=RequestStatus.PENDING,
        created_at=now,
        updated_at=now,
    )
    entry = AuditEntry(
        seq=tx.next_seq(),
        at=now,
        actor=requester.arn,
        action=AuditAction.SUBMIT,
        request_id=request.id,
        to_status=RequestStatus.PENDING,
        detail={"bucket": new.bucket, "prefix": new.prefix, "access": new.access.value},
    )
    tx.append(entry)
    tx.add_request(request, entry.seq)
    tx.add_key(requester.arn, new.idempotency_key, request.id)
    return request, True


def transition(
    tx: Transaction,
    request_id: str,
    to_status: RequestStatus,
    audit: Mapping[str, Any],
    updates: Mapping[str, Any],
) -> AccessRequest:
    """Move the request on only where ``TRANSITIONS`` allows it, so no route can skip a step."""
    before = tx.request(request_id)
    if before is None:
        raise NotFound(f"There is no access request {request_id!r}.")
    allowed = TRANSITIONS[before.status]
    if to_status not in allowed:
        then = f"it may only become {', '.join(sorted(allowed))}" if allowed else f"{before.status} is final"
        raise TransitionRefused(
            f"Request {request_id} is {before.status}, so it cannot become {to_status}: {then}."
        )
    after = before.model_copy(update={**updates, "status": to_status, "updated_at": audit["at"]})
    tx.append(
        AuditEntry(
            seq=tx.next_seq(),
            request_id=request_id,
            from_status=before.status,
            to_status=to_status,
            **audit,
        )
    )
    tx.replace_request(before, after)
    return after


def record(tx: Transaction, request_id: str | None, audit: Mapping[str, Any]) -> AuditEntry:
    """Append an entry that changes no status; one against a request needs the request to exist."""
    if request_id is not None and tx.request(request_id) is None:
        raise NotFound(f"There is no access request {request_id!r} to record this against.")
    entry = AuditEntry(seq=tx.next_seq(), request_id=request_id, **audit)
    tx.append(entry)
    return entry


def put_bucket(tx: Transaction, bucket: SharedBucket, actor: str, now: datetime) -> SharedBucket:
    """Insert or replace the entry, auditing the previous one so a replacement can be undone by hand."""
    previous = tx.bucket(bucket.bucket)
    tx.put_bucket(bucket)
    detail = {"bucket": bucket.model_dump(), "previous": previous.model_dump() if previous else None}
    tx.append(
        AuditEntry(seq=tx.next_seq(), at=now, actor=actor, action=AuditAction.PUT_BUCKET, detail=detail)
    )
    return bucket


def delete_bucket(tx: Transaction, name: str, actor: str, now: datetime) -> None:
    """Remove the entry, auditing what it held."""
    previous = tx.bucket(name)
    if previous is None:
        raise NotFound(f"The bucket {name!r} is not in the registry.")
    tx.delete_bucket(name)
    detail = {"bucket": previous.model_dump()}
    tx.append(
        AuditEntry(seq=tx.next_seq(), at=now, actor=actor, action=AuditAction.DELETE_BUCKET, detail=detail)
    )
