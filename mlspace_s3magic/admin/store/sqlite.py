"""The SQLite backend: one file in WAL mode, for a single admin instance."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from mlspace_s3magic.admin.store.api import EXPIRING, Store
from mlspace_s3magic.admin.store.changes import Transaction
from mlspace_s3magic.admin.store.errors import StoreError
from mlspace_s3magic.admin.store.rows import (
    audit_from_row,
    audit_row,
    changed_fields,
    request_from_row,
    request_row,
    stamp,
    utc,
)
from mlspace_s3magic.core.access import (
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.errors import NotFound
from mlspace_s3magic.core.files import create_private

T = TypeVar("T")

SQLITE_SCHEMA_VERSION = 2
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
        result TEXT,
        decision_reason TEXT
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
# What brings a store of each earlier version to the next one; a store is kept, never recreated.
SQLITE_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE requests ADD COLUMN decision_reason TEXT",),  # a denial's reason
}


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}


class SqliteStore(Store):
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
            while version in SQLITE_MIGRATIONS:
                for statement in SQLITE_MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
                db.execute("UPDATE schema_version SET version = ?", (version,))
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

    def _change(self, change: Callable[[Transaction], T]) -> T:
        with self._write() as db:
            return change(_SqliteTransaction(db, self._where))

    def get(self, request_id: str) -> AccessRequest:
        rows = self._rows("SELECT * FROM requests WHERE id = ?", request_id)
        if not rows:
            raise NotFound(f"There is no access request {request_id!r}.")
        return request_from_row(rows[0])

    def list_requests(
        self, *, requester_arn: str | None = None, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        rows = self._rows(
            "SELECT * FROM requests WHERE (?1 IS NULL OR requester_arn = ?1) AND (?2 IS NULL OR status = ?2) "
            "ORDER BY created_seq DESC",
            requester_arn,
            status.value if status else None,
        )
        return [request_from_row(row) for row in rows]

    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        if request_id is None:
            rows = self._rows("SELECT * FROM audit ORDER BY seq DESC", limit=limit)
        else:
            rows = self._rows(
                "SELECT * FROM audit WHERE request_id = ? ORDER BY seq DESC", request_id, limit=limit
            )
        return [audit_from_row(row) for row in reversed(rows)]

    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        rows = self._rows(
            "SELECT * FROM requests WHERE status IN (?, ?) AND expires_at <= ? "
            "ORDER BY expires_at, created_seq",
            *EXPIRING,
            stamp(utc(now)),
        )
        return [request_from_row(row) for row in rows]

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


class _SqliteTransaction:
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
        return request_from_row(row) if row else None

    def request_for_key(self, requester_arn: str, key: str) -> AccessRequest | None:
        row = self._one(
            "SELECT r.* FROM idempotency_keys AS k JOIN requests AS r ON r.id = k.request_id "
            "WHERE k.requester_arn = ? AND k.key = ?",
            requester_arn,
            key,
        )
        return request_from_row(row) if row else None

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
        return request_from_row(row) if row else None

    def bucket(self, name: str) -> SharedBucket | None:
        row = self._one("SELECT data FROM buckets WHERE name = ?", name)
        return SharedBucket.model_validate_json(row["data"]) if row else None

    def next_seq(self) -> int:
        row = self._one("SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM audit")
        assert row is not None
        return int(row["seq"])

    def append(self, entry: AuditEntry) -> None:
        self._insert("audit", audit_row(entry))

    def add_request(self, request: AccessRequest, created_seq: int) -> None:
        self._insert("requests", {**request_row(request), "created_seq": created_seq})

    def add_key(self, requester_arn: str, key: str, request_id: str) -> None:
        self._insert(
            "idempotency_keys", {"requester_arn": requester_arn, "key": key, "request_id": request_id}
        )

    def replace_request(self, before: AccessRequest, after: AccessRequest) -> None:
        fields = changed_fields(after)
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
