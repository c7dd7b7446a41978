"""The admin endpoint's durable record: access requests, their append-only audit log, the bucket registry.

Two stores behave the same: SQLite (one file, WAL) for a single admin instance, DynamoDB for several. Each
change is written once, as a function over ``_Changes``, and each store runs it atomically: a request's new
status and its audit entry commit together, and a change is acknowledged only once it is durable.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, TypeVar

from botocore.exceptions import ClientError

from mlspace_s3magic.core.access import (
    TRANSITIONS,
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    Requester,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.aws import Aws, aws_call, error_code
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.files import create_private

ACCEPTED_URLS = "sqlite:///ABSOLUTE/PATH.db, sqlite:///:memory: (tests only), or dynamodb://TABLE"
SUBMIT = "submit"
PUT_BUCKET = "put bucket"
DELETE_BUCKET = "delete bucket"

T = TypeVar("T")


# The statuses whose grant expires: applied, or written but for the owner's part.
EXPIRING = (RequestStatus.APPLIED, RequestStatus.AWAITING_OWNER)


class StoreError(S3MagicError):
    """The store cannot be opened or used; the message names the store and what failed."""


class TransitionRefused(S3MagicError):
    """The request is not in a status the change may start from, so no route can skip a step."""


class NotFound(S3MagicError):
    """No request, or no registry entry, by that name."""


class Store(Protocol):
    """What the HTTP layer needs; every method is synchronous and safe to call from many threads."""

    def create_request(
        self, new: NewAccessRequest, requester: Requester, *, now: datetime
    ) -> tuple[AccessRequest, bool]:
        """(request, created): the same requester and idempotency key, or a pending request of theirs for
        the same bucket, prefix and access, gives that request and False, so a retry never files twice."""

    def get(self, request_id: str) -> AccessRequest:
        """The request; ``NotFound`` if there is none."""

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
    ) -> AccessRequest:
        """Compare-and-set on the status found at commit time: ``TransitionRefused`` unless ``TRANSITIONS``
        allows the step. Sets ``plan``, ``result`` and ``expires_at`` when given; audited in one commit."""

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

    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Oldest first (``seq`` increasing); with ``limit``, only the newest ``limit`` entries."""

    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        """Requests with live statements (applied, or awaiting the owner) with ``expires_at <= now``, the
        longest expired first."""

    def list_buckets(self) -> list[SharedBucket]:
        """The registry, by bucket name."""

    def put_bucket(self, bucket: SharedBucket, *, actor: str, now: datetime) -> SharedBucket:
        """Insert or replace; the audit entry holds the new and the previous entry."""

    def delete_bucket(self, name: str, *, actor: str, now: datetime) -> None:
        """``NotFound`` if the bucket is not registered; audited."""

    def close(self) -> None:
        """Release the store's connection; it cannot be used afterwards."""


def open_store(url: str, aws: Aws | None = None) -> Store:
    """The store a URL names; ``aws`` is used for DynamoDB only (boto3's usual lookup when omitted)."""
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if path == "/:memory:":
            return SqliteStore(":memory:")
        if not path.startswith("/"):
            raise StoreError(f"{url!r} needs an absolute path after sqlite://, as in sqlite:///var/lib/x.db")
        return SqliteStore(path)
    if url.startswith("dynamodb://"):
        return DynamoDbStore(url.removeprefix("dynamodb://"), aws or Aws())
    raise StoreError(f"{url!r} is not a store URL; use one of: {ACCEPTED_URLS}.")


# ---- the changes, written once for both stores -------------------------------------------------------


class _Changes(Protocol):
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


def _create(
    changes: _Changes, new: NewAccessRequest, requester: Requester, now: datetime
) -> tuple[AccessRequest, bool]:
    existing = changes.request_for_key(requester.arn, new.idempotency_key)
    if existing is not None:
        return existing, False
    pending = changes.pending_like(requester.arn, new)
    if pending is not None:
        # The new key now names that request too, so a retry with it still finds it once it has moved on.
        changes.add_key(requester.arn, new.idempotency_key, pending.id)
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
        seq=changes.next_seq(),
        at=now,
        actor=requester.arn,
        action=SUBMIT,
        request_id=request.id,
        to_status=RequestStatus.PENDING,
        detail={"bucket": new.bucket, "prefix": new.prefix, "access": new.access.value},
    )
    changes.append(entry)
    changes.add_request(request, entry.seq)
    changes.add_key(requester.arn, new.idempotency_key, request.id)
    return request, True


def _transition(
    changes: _Changes,
    request_id: str,
    to_status: RequestStatus,
    audit: Mapping[str, Any],
    updates: Mapping[str, Any],
) -> AccessRequest:
    before = changes.request(request_id)
    if before is None:
        raise NotFound(f"There is no access request {request_id!r}.")
    allowed = TRANSITIONS[before.status]
    if to_status not in allowed:
        then = f"it may only become {', '.join(sorted(allowed))}" if allowed else f"{before.status} is final"
        raise TransitionRefused(
            f"Request {request_id} is {before.status}, so it cannot become {to_status}: {then}."
        )
    after = before.model_copy(update={**updates, "status": to_status, "updated_at": audit["at"]})
    changes.append(
        AuditEntry(
            seq=changes.next_seq(),
            request_id=request_id,
            from_status=before.status,
            to_status=to_status,
            **audit,
        )
    )
    changes.replace_request(before, after)
    return after


def _record(changes: _Changes, request_id: str | None, audit: Mapping[str, Any]) -> AuditEntry:
    if request_id is not None and changes.request(request_id) is None:
        raise NotFound(f"There is no access request {request_id!r} to record this against.")
    entry = AuditEntry(seq=changes.next_seq(), request_id=request_id, **audit)
    changes.append(entry)
    return entry


def _put_bucket(changes: _Changes, bucket: SharedBucket, actor: str, now: datetime) -> SharedBucket:
    previous = changes.bucket(bucket.bucket)
    changes.put_bucket(bucket)
    detail = {"bucket": bucket.model_dump(), "previous": previous.model_dump() if previous else None}
    changes.append(AuditEntry(seq=changes.next_seq(), at=now, actor=actor, action=PUT_BUCKET, detail=detail))
    return bucket


def _delete_bucket(changes: _Changes, name: str, actor: str, now: datetime) -> None:
    previous = changes.bucket(name)
    if previous is None:
        raise NotFound(f"The bucket {name!r} is not in the registry.")
    changes.delete_bucket(name)
    detail = {"bucket": previous.model_dump()}
    changes.append(
        AuditEntry(seq=changes.next_seq(), at=now, actor=actor, action=DELETE_BUCKET, detail=detail)
    )


class _Changing(ABC):
    """The public methods that change something, shared: each runs one change through ``_change``."""

    @abstractmethod
    def _change(self, change: Callable[[_Changes], T]) -> T:
        """Run ``change`` atomically and return what it returned; nothing is written if it raises."""

    def create_request(
        self, new: NewAccessRequest, requester: Requester, *, now: datetime
    ) -> tuple[AccessRequest, bool]:
        at = _utc(now)
        return self._change(lambda changes: _create(changes, new, requester, at))

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
    ) -> AccessRequest:
        audit = {"at": _utc(now), "actor": actor, "action": action, "detail": detail or {}}
        updates = {
            name: value
            for name, value in (
                ("plan", plan),
                ("result", result),
                ("expires_at", _utc(expires_at) if expires_at else None),
            )
            if value is not None
        }
        return self._change(lambda changes: _transition(changes, request_id, to_status, audit, updates))

    def record(
        self,
        *,
        actor: str,
        action: str,
        now: datetime,
        request_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        audit = {"at": _utc(now), "actor": actor, "action": action, "detail": detail or {}}
        return self._change(lambda changes: _record(changes, request_id, audit))

    def put_bucket(self, bucket: SharedBucket, *, actor: str, now: datetime) -> SharedBucket:
        at = _utc(now)
        return self._change(lambda changes: _put_bucket(changes, bucket, actor, at))

    def delete_bucket(self, name: str, *, actor: str, now: datetime) -> None:
        at = _utc(now)
        self._change(lambda changes: _delete_bucket(changes, name, actor, at))


# ---- rows: how models are flattened, the same way in both stores ---------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; the store records UTC, so it needs aware datetimes")
    return moment.astimezone(UTC)


def _stamp(moment: datetime) -> str:
    """ISO 8601 UTC at a fixed width, so text order is time order (the expiry query compares text)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _request_row(request: AccessRequest) -> dict[str, str | int | None]:
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
        "created_at": _stamp(request.created_at),
        "updated_at": _stamp(request.updated_at),
        "expires_at": _stamp(request.expires_at) if request.expires_at else None,
        "plan": _json(request.plan),
        "result": _json(request.result),
    }


def _request_from_row(row: Mapping[str, Any]) -> AccessRequest:
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
    )


# What a transition may change; a field it does not set keeps its value.
CHANGEABLE = ("status", "updated_at", "expires_at", "plan", "result")


def _changed_fields(after: AccessRequest) -> dict[str, str]:
    row = _request_row(after)
    return {name: str(row[name]) for name in CHANGEABLE if row[name] is not None}


def _audit_row(entry: AuditEntry) -> dict[str, str | int | None]:
    return {
        "seq": entry.seq,
        "at": _stamp(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "request_id": entry.request_id,
        "from_status": entry.from_status.value if entry.from_status else None,
        "to_status": entry.to_status.value if entry.to_status else None,
        "detail": json.dumps(entry.detail, sort_keys=True),
    }


def _audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry.model_validate({**row, "detail": json.loads(row["detail"])})


# ---- SQLite --------------------------------------------------------------------------------------------

SQLITE_SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
SQLITE_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        created_seq INTEGER NOT NULL UNIQUE,
        requester_arn TEXT NOT NULL,
        requester TEXT NOT NULL,
        bucket TEXT NOT NULL,
        prefix TEXT NOT NULL,
        access TEXT NOT NULL,
        reason TEXT NOT NULL,
        days INTEGER,
        idempotency_key TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at TEXT,
        plan TEXT,
        result TEXT
    )""",
    # A second pending request for the same thing cannot exist, whatever the code above it does.
    """CREATE UNIQUE INDEX one_pending_request ON requests (requester_arn, bucket, prefix, access)
        WHERE status = 'pending'""",
    "CREATE INDEX requests_by_status ON requests (status, expires_at)",
    """CREATE TABLE idempotency_keys (
        requester_arn TEXT NOT NULL,
        key TEXT NOT NULL,
        request_id TEXT NOT NULL,
        PRIMARY KEY (requester_arn, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        request_id TEXT,
        from_status TEXT,
        to_status TEXT,
        detail TEXT NOT NULL
    )""",
    "CREATE INDEX audit_by_request ON audit (request_id, seq)",
    """CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    "CREATE TABLE buckets (name TEXT PRIMARY KEY, data TEXT NOT NULL)",
)


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class SqliteStore(_Changing):
    """One file in WAL mode with ``synchronous=FULL``: a commit is on disk before it is acknowledged.

    Every change goes through one connection behind a lock, so one writer per store cannot deadlock with
    itself. Reads use read-only connections from a pool (one per concurrent read): in WAL mode a reader
    neither waits for the writer nor holds it up, whereas behind the writer's lock each submission queued
    twice. Other processes and store objects on the file queue (``busy_timeout``). An in-memory database
    lives on its one connection, so there reads take turns with writes.
    """

    def __init__(self, path: str) -> None:
        self._where = "the in-memory SQLite store" if path == ":memory:" else f"the SQLite store {path}"
        self._path = path
        self._lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                create_private(Path(path))  # requests and the audit log: the owner's only
            except OSError as error:
                raise StoreError(f"Cannot create {self._where}: {error}") from error
        with self._failures():
            # ``timeout`` is SQLite's busy_timeout: wait that long for another writer instead of failing.
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        try:
            self._configure(in_memory=path == ":memory:")
        except BaseException:
            self._db.close()
            raise

    def _configure(self, *, in_memory: bool) -> None:
        self._db.row_factory = _dict_row
        with self._failures():
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()["journal_mode"]
            if mode != "wal" and not in_memory:
                raise StoreError(
                    f"{self._where} cannot use write-ahead logging (its journal mode stays {mode}); "
                    "keep it on a local file system."
                )
            self._db.execute("PRAGMA synchronous = FULL")
        with self._write() as db:
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_version'").fetchone() is None:
                if db.execute("SELECT 1 FROM sqlite_master").fetchone() is not None:
                    raise StoreError(f"{self._where} is a database of something else; choose another file.")
                for statement in SQLITE_SCHEMA:
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SQLITE_SCHEMA_VERSION,))
            version = db.execute("SELECT version FROM schema_version").fetchone()["version"]
            if version != SQLITE_SCHEMA_VERSION:
                raise StoreError(
                    f"{self._where} has schema version {version}, and this mlspace-s3magic reads version "
                    f"{SQLITE_SCHEMA_VERSION}; run the matching release."
                )

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"{self._where} failed: {error}") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: it holds the file's write lock from its first read."""
        with self._lock, self._failures():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read: the pool's, or the only one of an in-memory store (in turn)."""
        if self._path == ":memory:":
            with self._lock:
                yield self._db
            return
        with self._readers_lock:
            if self._closed:
                raise StoreError(f"{self._where} is closed.")
            db = self._idle_readers.pop() if self._idle_readers else None
        if db is None:
            db = self._connect_reader()
        try:
            yield db
        finally:
            with self._readers_lock:
                if self._closed:
                    db.close()
                else:
                    self._idle_readers.append(db)

    def _connect_reader(self) -> sqlite3.Connection:
        with self._failures():
            db = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                db.row_factory = _dict_row
                db.execute("PRAGMA query_only = ON")
            except BaseException:
                db.close()
                raise
        return db

    def _rows(self, sql: str, *params: Any, limit: int | None = None) -> list[dict[str, Any]]:
        with self._reader() as db, self._failures(), closing(db.execute(sql, params)) as cursor:
            return list(islice(cursor, limit))

    def _change(self, change: Callable[[_Changes], T]) -> T:
        with self._write() as db:
            return change(_SqliteChanges(db, self._where))

    def get(self, request_id: str) -> AccessRequest:
        rows = self._rows("SELECT * FROM requests WHERE id = ?", request_id)
        if not rows:
            raise NotFound(f"There is no access request {request_id!r}.")
        return _request_from_row(rows[0])

    def list_requests(
        self, *, requester_arn: str | None = None, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        rows = self._rows(
            "SELECT * FROM requests WHERE (?1 IS NULL OR requester_arn = ?1) AND (?2 IS NULL OR status = ?2) "
            "ORDER BY created_seq DESC",
            requester_arn,
            status.value if status else None,
        )
        return [_request_from_row(row) for row in rows]

    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        if request_id is None:
            rows = self._rows("SELECT * FROM audit ORDER BY seq DESC", limit=limit)
        else:
            rows = self._rows(
                "SELECT * FROM audit WHERE request_id = ? ORDER BY seq DESC", request_id, limit=limit
            )
        return [_audit_from_row(row) for row in reversed(rows)]

    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        rows = self._rows(
            "SELECT * FROM requests WHERE status IN (?, ?) AND expires_at <= ? "
            "ORDER BY expires_at, created_seq",
            *EXPIRING,
            _stamp(_utc(now)),
        )
        return [_request_from_row(row) for row in rows]

    def list_buckets(self) -> list[SharedBucket]:
        rows = self._rows("SELECT data FROM buckets ORDER BY name")
        return [SharedBucket.model_validate_json(row["data"]) for row in rows]

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
        for db in idle:
            db.close()  # a reader still in use is closed as it is handed back
        with self._lock:
            self._db.close()


class _SqliteChanges:
    """Reads and writes inside one ``BEGIN IMMEDIATE`` transaction, so no other writer can interleave."""

    def __init__(self, db: sqlite3.Connection, where: str) -> None:
        self._db = db
        self._where = where

    def _one(self, sql: str, *params: Any) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self._db.execute(sql, params).fetchone()
        return row

    def _insert(self, table: str, row: Mapping[str, Any]) -> None:
        columns = ", ".join(row)
        self._db.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(':' + c for c in row)})", row)

    def request(self, request_id: str) -> AccessRequest | None:
        row = self._one("SELECT * FROM requests WHERE id = ?", request_id)
        return _request_from_row(row) if row else None

    def request_for_key(self, requester_arn: str, key: str) -> AccessRequest | None:
        row = self._one(
            "SELECT r.* FROM idempotency_keys AS k JOIN requests AS r ON r.id = k.request_id "
            "WHERE k.requester_arn = ? AND k.key = ?",
            requester_arn,
            key,
        )
        return _request_from_row(row) if row else None

    def pending_like(self, requester_arn: str, new: NewAccessRequest) -> AccessRequest | None:
        row = self._one(
            "SELECT * FROM requests WHERE status = ? AND requester_arn = ? AND bucket = ? AND prefix = ? "
            "AND access = ?",
            RequestStatus.PENDING.value,
            requester_arn,
            new.bucket,
            new.prefix,
            new.access.value,
        )
        return _request_from_row(row) if row else None

    def bucket(self, name: str) -> SharedBucket | None:
        row = self._one("SELECT data FROM buckets WHERE name = ?", name)
        return SharedBucket.model_validate_json(row["data"]) if row else None

    def next_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM audit")
        assert row is not None
        return int(row["seq"])

    def append(self, entry: AuditEntry) -> None:
        self._insert("audit", _audit_row(entry))

    def add_request(self, request: AccessRequest, created_seq: int) -> None:
        self._insert("requests", {**_request_row(request), "created_seq": created_seq})

    def add_key(self, requester_arn: str, key: str, request_id: str) -> None:
        self._insert(
            "idempotency_keys", {"requester_arn": requester_arn, "key": key, "request_id": request_id}
        )

    def replace_request(self, before: AccessRequest, after: AccessRequest) -> None:
        fields = _changed_fields(after)
        assignments = ", ".join(f"{name} = :{name}" for name in fields)
        changed = self._db.execute(
            f"UPDATE requests SET {assignments} WHERE id = :id AND status = :before",
            {**fields, "id": after.id, "before": before.status.value},
        ).rowcount
        if changed != 1:
            raise StoreError(f"{self._where}: request {after.id} changed under this update; try again.")

    def put_bucket(self, bucket: SharedBucket) -> None:
        self._db.execute(
            "INSERT INTO buckets (name, data) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            (bucket.bucket, bucket.model_dump_json()),
        )

    def delete_bucket(self, name: str) -> None:
        self._db.execute("DELETE FROM buckets WHERE name = ?", (name,))


# ---- DynamoDB ------------------------------------------------------------------------------------------

TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
REQUEST, IDEM, PENDING, BUCKET, AUDIT = "REQUEST", "IDEM", "PENDING", "BUCKET", "AUDIT"
COUNTER = ("COUNTER", "AUDIT")
# A transaction cancelled only for these reasons lost a race: run the change again on fresh reads.
LOST_RACE = frozenset({"None", "ConditionalCheckFailed", "TransactionConflict"})
MAX_ATTEMPTS = 40
Item = dict[str, dict[str, str]]


def _key(kind: str, name: str) -> Item:
    return {"pk": {"S": kind}, "sk": {"S": name}}


def _item(kind: str, name: str, row: Mapping[str, str | int | None]) -> Item:
    item = _key(kind, name)
    for field, value in row.items():
        if isinstance(value, int):
            item[field] = {"N": str(value)}
        elif value is not None:
            item[field] = {"S": value}
    return item


def _plain(item: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    return {
        field: int(value["N"]) if "N" in value else value["S"]
        for field, value in item.items()
        if field not in ("pk", "sk")
    }


def _pending_name(requester_arn: str, bucket: str, prefix: str, access: str) -> str:
    return hashlib.sha256(json.dumps([requester_arn, bucket, prefix, access]).encode()).hexdigest()


def _pending_name_of(request: AccessRequest) -> str:
    return _pending_name(request.requester.arn, request.bucket, request.prefix, request.access.value)


class _Table:
    """One DynamoDB table through the low-level client: consistent reads, and failures as ``StoreError``."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.where = f"the DynamoDB store {name} at {client.meta.endpoint_url}"

    @contextmanager
    def _calls(self, action: str) -> Iterator[None]:
        try:
            with aws_call(self.client, f"DynamoDB {action} on {self.name}"):
                yield
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            raise StoreError(f"{self.where}: {action} failed ({error_code(error)}: {message})") from error
        except S3MagicError as error:  # credentials or connection, already explained by aws_call
            raise StoreError(f"{self.where}: {error}") from error

    def ensure(self) -> None:
        """Create the table on first use (on-demand billing); refuse one whose keys are not ours."""
        with self._calls("DescribeTable"):
            try:
                keys = self.client.describe_table(TableName=self.name)["Table"]["KeySchema"]
            except ClientError as error:
                if error_code(error) != "ResourceNotFoundException":
                    raise
                keys = None
        if keys is None:
            self._create()
        elif sorted(keys, key=str) != sorted(KEY_SCHEMA, key=str):
            raise StoreError(f"{self.where} exists but is not a request store (its keys are {keys}).")

    def _create(self) -> None:
        with self._calls("CreateTable"):
            try:
                self.client.create_table(
                    TableName=self.name,
                    KeySchema=KEY_SCHEMA,
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
            except ClientError as error:
                if error_code(error) != "ResourceInUseException":  # another instance is creating it
                    raise
            waiter = self.client.get_waiter("table_exists")
            waiter.wait(TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._calls("GetItem"):
            item = self.client.get_item(TableName=self.name, Key=_key(kind, name), ConsistentRead=True)
        return _plain(item["Item"]) if "Item" in item else None

    def items(self, kind: str, *, newest_first: bool = False) -> Iterator[dict[str, Any]]:
        """Every item of one kind in key order, a page at a time."""
        query: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :kind",
            "ExpressionAttributeValues": {":kind": {"S": kind}},
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
        }
        while True:
            with self._calls("Query"):
                page = self.client.query(**query)
            yield from (_plain(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def transact(self, writes: list[dict[str, Any]]) -> bool:
        """True once committed; False when it lost a race to another writer, so nothing was written."""
        with self._calls("TransactWriteItems"):
            try:
                self.client.transact_write_items(TransactItems=writes)
            except ClientError as error:
                reasons = {
                    reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])
                }
                if error_code(error) == "TransactionCanceledException" and reasons <= LOST_RACE:
                    return False
                raise
        return True


def _expression(**parts: Any) -> dict[str, Any]:
    """The expression parts of a request, without empty ones (DynamoDB refuses empty name/value maps)."""
    return {name: value for name, value in parts.items() if value}


class _DynamoChanges:
    """Reads as they happen; writes gathered into one transaction, guarded by the audit counter.

    The counter is read first and the transaction commits only if it still holds that value, so a change
    committed in between by any instance makes this one run again on fresh reads: changes are serializable
    and audit sequence numbers have no gaps.
    """

    def __init__(self, table: _Table) -> None:
        self._table = table
        counter = table.get(*COUNTER)
        self._last: int = counter["last"] if counter else 0
        self._seq = self._last
        self._writes: list[dict[str, Any]] = []

    def _put(self, kind: str, name: str, row: Mapping[str, str | int | None], *, new: bool) -> None:
        put = {"TableName": self._table.name, "Item": _item(kind, name, row)}
        self._writes.append(
            {"Put": put | _expression(ConditionExpression=new and "attribute_not_exists(pk)")}
        )

    def _linked(self, kind: str, name: str) -> AccessRequest | None:
        link = self._table.get(kind, name)
        return self.request(link["request_id"]) if link else None

    def request(self, request_id: str) -> AccessRequest | None:
        row = self._table.get(REQUEST, request_id)
        return _request_from_row(row) if row else None

    def request_for_key(self, requester_arn: str, key: str) -> AccessRequest | None:
        return self._linked(IDEM, f"{requester_arn}#{key}")

    def pending_like(self, requester_arn: str, new: NewAccessRequest) -> AccessRequest | None:
        return self._linked(PENDING, _pending_name(requester_arn, new.bucket, new.prefix, new.access.value))

    def bucket(self, name: str) -> SharedBucket | None:
        row = self._table.get(BUCKET, name)
        return SharedBucket.model_validate_json(row["data"]) if row else None

    def next_seq(self) -> int:
        return self._seq + 1

    def append(self, entry: AuditEntry) -> None:
        self._seq = entry.seq
        self._put(AUDIT, f"{entry.seq:020d}", _audit_row(entry), new=True)

    def add_request(self, request: AccessRequest, created_seq: int) -> None:
        self._put(REQUEST, request.id, {**_request_row(request), "created_seq": created_seq}, new=True)
        self._put(PENDING, _pending_name_of(request), {"request_id": request.id}, new=True)

    def add_key(self, requester_arn: str, key: str, request_id: str) -> None:
        self._put(IDEM, f"{requester_arn}#{key}", {"request_id": request_id}, new=True)

    def replace_request(self, before: AccessRequest, after: AccessRequest) -> None:
        fields = _changed_fields(after)
        update = {
            "TableName": self._table.name,
            "Key": _key(REQUEST, after.id),
            "UpdateExpression": "SET " + ", ".join(f"#{name} = :{name}" for name in fields),
            "ConditionExpression": "#status = :before",
            "ExpressionAttributeNames": {f"#{name}": name for name in fields},
            "ExpressionAttributeValues": {f":{name}": {"S": value} for name, value in fields.items()}
            | {":before": {"S": before.status.value}},
        }
        self._writes.append({"Update": update})
        if before.status is RequestStatus.PENDING:
            self._writes.append(
                {
                    "Delete": {
                        "TableName": self._table.name,
                        "Key": _key(PENDING, _pending_name_of(before)),
                        "ConditionExpression": "request_id = :id",
                        "ExpressionAttributeValues": {":id": {"S": before.id}},
                    }
                }
            )

    def put_bucket(self, bucket: SharedBucket) -> None:
        self._put(BUCKET, bucket.bucket, {"data": bucket.model_dump_json()}, new=False)

    def delete_bucket(self, name: str) -> None:
        self._writes.append({"Delete": {"TableName": self._table.name, "Key": _key(BUCKET, name)}})

    def commit(self) -> bool:
        """Write everything, or nothing and False if another change committed since the counter was read."""
        if not self._writes:
            return True
        names, values = {}, {}
        if self._last:
            condition = "#last = :last"
            names["#last"] = "last"
            values[":last"] = {"N": str(self._last)}
        else:
            condition = "attribute_not_exists(pk)"
        guard: dict[str, Any] = {"TableName": self._table.name, "Key": _key(*COUNTER)}
        if self._seq > self._last:
            names["#last"] = "last"
            values[":seq"] = {"N": str(self._seq)}
            guard = {"Update": guard | {"UpdateExpression": "SET #last = :seq"}}
        else:
            guard = {"ConditionCheck": guard}
        operation, body = next(iter(guard.items()))
        body |= _expression(
            ConditionExpression=condition, ExpressionAttributeNames=names, ExpressionAttributeValues=values
        )
        return self._table.transact([{operation: body}, *self._writes])


class DynamoDbStore(_Changing):
    """One DynamoDB table shared by several admin instances; every change is one ``TransactWriteItems``.

    Items (pk / sk): REQUEST / id; IDEM / arn#key -> request id; PENDING / sha256(arn, bucket, prefix,
    access) -> request id, present while that request is pending; BUCKET / name; AUDIT / seq (20 digits);
    COUNTER / AUDIT holding the last seq. A listing reads one partition, which suits an admin's volume.
    """

    def __init__(self, name: str, aws: Aws) -> None:
        if not TABLE_NAME.match(name):
            raise StoreError(
                f"{name!r} is not a DynamoDB table name: use 3-255 letters, digits, '_', '-' or '.'."
            )
        self._table = _Table(aws.client("dynamodb"), name)
        self._table.ensure()
        self._writing = threading.Lock()

    def _change(self, change: Callable[[_Changes], T]) -> T:
        """Optimistic, retried when another instance wins; this instance's own threads take turns."""
        with self._writing:
            for attempt in range(MAX_ATTEMPTS):
                changes = _DynamoChanges(self._table)
                outcome = change(changes)
                if changes.commit():
                    return outcome
                time.sleep(random.uniform(0, min(1.0, 0.01 * 2**attempt)))
        raise StoreError(
            f"{self._table.where}: other writers changed the store {MAX_ATTEMPTS} times while this change "
            "was being made; try again."
        )

    def get(self, request_id: str) -> AccessRequest:
        row = self._table.get(REQUEST, request_id)
        if row is None:
            raise NotFound(f"There is no access request {request_id!r}.")
        return _request_from_row(row)

    def _requests(self, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [row for row in self._table.items(REQUEST) if keep(row)]

    def list_requests(
        self, *, requester_arn: str | None = None, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        rows = self._requests(
            lambda row: requester_arn in (None, row["requester_arn"]) and status in (None, row["status"])
        )
        rows.sort(key=lambda row: int(row["created_seq"]), reverse=True)
        return [_request_from_row(row) for row in rows]

    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        rows = self._table.items(AUDIT, newest_first=True)
        matching = (row for row in rows if request_id in (None, row.get("request_id")))
        return [_audit_from_row(row) for row in reversed(list(islice(matching, limit)))]

    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        cutoff = _stamp(_utc(now))
        rows = self._requests(
            lambda row: row["status"] in EXPIRING and "expires_at" in row and row["expires_at"] <= cutoff
        )
        rows.sort(key=lambda row: (row["expires_at"], int(row["created_seq"])))
        return [_request_from_row(row) for row in rows]

    def list_buckets(self) -> list[SharedBucket]:
        return [SharedBucket.model_validate_json(row["data"]) for row in self._table.items(BUCKET)]

    def close(self) -> None:
        """Nothing to release: the boto3 client belongs to the ``Aws`` it came from."""
