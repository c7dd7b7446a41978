"""The request store: the same contract from SQLite and DynamoDB, under concurrency, races and a hard kill."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mlspace_s3magic.admin.store import (
    Store,
    StoreError,
    TransitionRefused,
    open_store,
)
from mlspace_s3magic.admin.store.changes import AuditAction
from mlspace_s3magic.admin.store.rows import LEGACY_ACTIONS
from mlspace_s3magic.admin.store.sqlite import SQLITE_SCHEMA_VERSION
from mlspace_s3magic.core.access import (
    NewAccessRequest,
    Requester,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.errors import NotFound
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.sandbox.state import SandboxState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADMIN = "arn:aws:iam::111111111111:user/admin"
ALICE = Requester(
    arn="arn:aws:sts::111111111111:assumed-role/MLSpace-demo-a1/SageMaker",
    account="111111111111",
    user="alice",
    project="demo",
)
BOB = Requester(
    arn="arn:aws:sts::111111111111:assumed-role/MLSpace-demo-b2/SageMaker", account="111111111111"
)
WRITER = Path(__file__).with_name("store_writer.py")

Opener = Callable[[], Store]


def _ask(
    prefix: str = "", key: str | None = None, access: AccessLevel = AccessLevel.READ
) -> NewAccessRequest:
    return NewAccessRequest(
        bucket="BucketToBeShared",
        prefix=prefix,
        access=access,
        reason="training data",
        days=30,
        idempotency_key=key or uuid.uuid4().hex,
    )


def _raw(path: Path) -> closing[sqlite3.Connection]:
    """A plain connection that commits each statement, as any other program on the machine could open."""
    return closing(sqlite3.connect(path, isolation_level=None))


@pytest.fixture(params=["sqlite", "dynamodb"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the store under test again and again: several objects on one file or table act as instances."""
    sandbox: SandboxState | None = None
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'requests.db'}"
    else:
        sandbox = request.getfixturevalue("sandbox")
        url = f"dynamodb://s3access-requests-{uuid.uuid4().hex[:12]}"
    opened: list[Store] = []

    def open_one() -> Store:
        # Each DynamoDB store gets clients of its own, as a second admin instance would.
        aws = sandbox.aws_for("admin").with_pool(64) if sandbox else None
        opened.append(open_store(url, aws))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener()


# ---- submitting ----------------------------------------------------------------------------------------


def test_a_new_request_is_pending_with_an_unguessable_id_and_an_audit_entry(store: Store) -> None:
    request, created = store.create_request(_ask("data/"), ALICE, now=NOW)

    assert created
    assert re.fullmatch(r"[0-9a-f]{12}", request.id)
    assert (request.status, request.requester, request.prefix, request.days) == (
        RequestStatus.PENDING,
        ALICE,
        "data/",
        30,
    )
    assert request.created_at == request.updated_at == NOW and request.expires_at is None
    assert store.get(request.id) == request
    [entry] = store.audit()
    assert (entry.seq, entry.at, entry.actor, entry.action) == (1, NOW, ALICE.arn, "submit")
    assert (entry.request_id, entry.from_status, entry.to_status) == (request.id, None, RequestStatus.PENDING)


def test_the_same_idempotency_key_returns_the_same_request(store: Store) -> None:
    first, _ = store.create_request(_ask("a/", key="retry-key-1"), ALICE, now=NOW)
    again, created = store.create_request(_ask("other/", key="retry-key-1"), ALICE, now=NOW)

    assert not created and again == first
    store.transition(first.id, RequestStatus.DENIED, actor=ADMIN, action="deny", now=NOW)
    later, created = store.create_request(_ask("a/", key="retry-key-1"), ALICE, now=NOW)
    assert not created and later.id == first.id and later.status is RequestStatus.DENIED
    # Keys belong to a requester: Bob's identical key files Bob's own request.
    assert store.create_request(_ask("a/", key="retry-key-1"), BOB, now=NOW)[1]
    assert len(store.audit()) == 3


def test_a_pending_duplicate_is_not_filed_twice(store: Store) -> None:
    first, _ = store.create_request(_ask("a/", key="first-key"), ALICE, now=NOW)

    twin, created = store.create_request(_ask("a/", key="second-key"), ALICE, now=NOW)
    assert not created and twin.id == first.id
    assert store.create_request(_ask("b/"), ALICE, now=NOW)[1]
    assert store.create_request(_ask("a/", access=AccessLevel.READ_WRITE), ALICE, now=NOW)[1]
    assert store.create_request(_ask("a/"), BOB, now=NOW)[1]

    store.transition(first.id, RequestStatus.CANCELLED, actor=ALICE.arn, action="cancel", now=NOW)
    # A retry of the twin's call still finds the request it was given ...
    assert store.create_request(_ask("a/", key="second-key"), ALICE, now=NOW) == (
        store.get(first.id),
        False,
    )
    # ... and, with nothing pending any more, the same ask with a new key is a new request.
    renewed, created = store.create_request(_ask("a/"), ALICE, now=NOW)
    assert created and renewed.id != first.id


# ---- transitions ---------------------------------------------------------------------------------------


def test_a_request_follows_its_lifecycle_and_keeps_what_each_step_sets(store: Store) -> None:
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    later = NOW + timedelta(minutes=5)
    expires = later + timedelta(days=30)

    approved = store.transition(request.id, RequestStatus.APPROVED, actor=ADMIN, action="approve", now=NOW)
    applied = store.transition(
        request.id,
        RequestStatus.APPLIED,
        actor=ADMIN,
        action="apply",
        now=later,
        plan={"changes": [{"layer": "boundary", "sid": "S3AccessReq1"}], "size": 1.5},
        result={"verified": True},
        expires_at=expires,
    )

    assert approved.status is RequestStatus.APPROVED and approved.updated_at == NOW
    assert applied.status is RequestStatus.APPLIED
    assert (applied.created_at, applied.updated_at, applied.expires_at) == (NOW, later, expires)
    assert applied.plan == {"changes": [{"layer": "boundary", "sid": "S3AccessReq1"}], "size": 1.5}
    assert store.get(request.id) == applied
    revoked = store.transition(request.id, RequestStatus.REVOKED, actor=ADMIN, action="revoke", now=later)
    assert revoked.plan == applied.plan and revoked.expires_at == expires


def test_a_denial_keeps_its_reason_on_the_request_and_in_the_audit_entry(opener: Opener) -> None:
    store = opener()
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    denied = store.transition(
        request.id,
        RequestStatus.DENIED,
        actor=ADMIN,
        action="deny",
        now=NOW,
        decision_reason="the dataset is under embargo until June",
        detail={"reason": "the dataset is under embargo until June"},
    )

    assert denied.decision_reason == "the dataset is under embargo until June"
    assert request.decision_reason is None
    again = opener()  # another instance (or a restart) reads it back
    assert again.get(request.id) == denied
    assert [r.decision_reason for r in again.list_requests(requester_arn=ALICE.arn)] == [
        denied.decision_reason
    ]
    assert again.audit(request_id=request.id)[-1].detail == {
        "reason": "the dataset is under embargo until June"
    }


def test_a_version_1_sqlite_store_gains_the_denial_reason_and_keeps_its_requests(tmp_path: Path) -> None:
    """A store written before denials had reasons is brought up to date in place when it is opened."""
    path = tmp_path / "v1.db"
    store = open_store(f"sqlite://{path}")
    kept, _ = store.create_request(_ask("kept/"), ALICE, now=NOW)
    store.close()
    with _raw(path) as raw:  # as release 1 left it
        raw.execute("ALTER TABLE requests DROP COLUMN decision_reason")
        raw.execute("UPDATE schema_version SET version = 1")

    store = open_store(f"sqlite://{path}")
    try:
        assert store.get(kept.id) == kept and kept.decision_reason is None
        denied = store.transition(
            kept.id, RequestStatus.DENIED, actor=ADMIN, action="deny", now=NOW, decision_reason="no budget"
        )
        assert store.get(kept.id) == denied and denied.decision_reason == "no budget"
    finally:
        store.close()
    with _raw(path) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchone() == (SQLITE_SCHEMA_VERSION,)


@pytest.mark.parametrize(
    ("path", "refused", "message"),
    [
        ((), RequestStatus.APPLIED, "is pending, so it cannot become applied: it may only become approved"),
        (
            (RequestStatus.DENIED,),
            RequestStatus.APPROVED,
            "is denied, so it cannot become approved: denied is final",
        ),
        (
            (RequestStatus.APPROVED, RequestStatus.APPLIED),
            RequestStatus.PENDING,
            "is applied, so it cannot become pending: it may only become expired, revoked",
        ),
    ],
)
def test_a_refused_transition_names_the_status_and_writes_nothing(
    store: Store, path: tuple[RequestStatus, ...], refused: RequestStatus, message: str
) -> None:
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    for status in path:
        store.transition(request.id, status, actor=ADMIN, action=status.value, now=NOW)
    before = (store.get(request.id), store.audit())

    with pytest.raises(TransitionRefused, match=message):
        store.transition(request.id, refused, actor=ADMIN, action="skip", now=NOW, plan={"x": 1})

    assert (store.get(request.id), store.audit()) == before


def test_an_unknown_request_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.get("nope")
    with pytest.raises(NotFound, match="nope"):
        store.transition("nope", RequestStatus.APPROVED, actor=ADMIN, action="approve", now=NOW)
    with pytest.raises(NotFound, match="nope"):
        store.record(actor=ADMIN, action="plan viewed", now=NOW, request_id="nope")
    assert store.audit() == []


def test_times_without_a_zone_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.create_request(_ask(), ALICE, now=datetime(2026, 3, 1, 12))


# ---- the audit log -------------------------------------------------------------------------------------


def test_every_change_is_audited_in_order_with_actor_and_time(store: Store) -> None:
    times = [NOW + timedelta(seconds=n) for n in range(7)]
    mine, _ = store.create_request(_ask("a/"), ALICE, now=times[0])
    other, _ = store.create_request(_ask("b/"), BOB, now=times[1])
    store.transition(mine.id, RequestStatus.APPROVED, actor=ADMIN, action="approve", now=times[2])
    store.record(actor=ADMIN, action="plan viewed", now=times[3], request_id=mine.id, detail={"layers": 3})
    store.transition(
        mine.id, RequestStatus.FAILED, actor=ADMIN, action="apply", now=times[4], detail={"error": "denied"}
    )
    store.put_bucket(SharedBucket(bucket="BucketToBeShared"), actor=ADMIN, now=times[5])
    store.transition(other.id, RequestStatus.CANCELLED, actor=BOB.arn, action="cancel", now=times[6])

    log = store.audit()
    assert [(e.seq, e.at, e.actor, e.action) for e in log] == [
        (1, times[0], ALICE.arn, "submit"),
        (2, times[1], BOB.arn, "submit"),
        (3, times[2], ADMIN, "approve"),
        (4, times[3], ADMIN, "plan viewed"),
        (5, times[4], ADMIN, "apply"),
        (6, times[5], ADMIN, "put-bucket"),
        (7, times[6], BOB.arn, "cancel"),
    ]
    assert [(e.from_status, e.to_status) for e in log[2:5]] == [
        (RequestStatus.PENDING, RequestStatus.APPROVED),
        (None, None),
        (RequestStatus.APPROVED, RequestStatus.FAILED),
    ]
    assert (log[3].detail, log[4].detail) == ({"layers": 3}, {"error": "denied"})
    assert [e.seq for e in store.audit(request_id=mine.id)] == [1, 3, 4, 5]
    assert [e.seq for e in store.audit(limit=2)] == [6, 7]
    assert [e.seq for e in store.audit(request_id=mine.id, limit=2)] == [4, 5]
    assert store.audit(limit=0) == []


def test_the_sqlite_audit_log_cannot_be_altered_even_with_raw_sql(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    store = open_store(f"sqlite://{path}")
    store.create_request(_ask(), ALICE, now=NOW)
    store.close()

    with _raw(path) as raw:
        for statement in ("UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                raw.execute(statement)
        assert raw.execute("SELECT actor FROM audit").fetchall() == [(ALICE.arn,)]
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SQLITE_SCHEMA_VERSION,)]


# ---- queries -------------------------------------------------------------------------------------------


def test_requests_are_listed_newest_first_and_filtered(store: Store) -> None:
    first, _ = store.create_request(_ask("1/"), ALICE, now=NOW)
    second, _ = store.create_request(_ask("2/"), BOB, now=NOW)
    third, _ = store.create_request(_ask("3/"), ALICE, now=NOW)
    store.transition(second.id, RequestStatus.DENIED, actor=ADMIN, action="deny", now=NOW)

    assert [r.id for r in store.list_requests()] == [third.id, second.id, first.id]
    assert [r.id for r in store.list_requests(requester_arn=ALICE.arn)] == [third.id, first.id]
    assert [r.id for r in store.list_requests(status=RequestStatus.DENIED)] == [second.id]
    assert store.list_requests(requester_arn=BOB.arn, status=RequestStatus.PENDING) == []


def test_only_applied_requests_past_their_expiry_are_due(store: Store) -> None:
    def applied(prefix: str, expires_at: datetime | None) -> str:
        request, _ = store.create_request(_ask(prefix), ALICE, now=NOW)
        store.transition(request.id, RequestStatus.APPROVED, actor=ADMIN, action="approve", now=NOW)
        store.transition(
            request.id, RequestStatus.APPLIED, actor=ADMIN, action="apply", now=NOW, expires_at=expires_at
        )
        return request.id

    later_due = applied("later/", NOW + timedelta(days=1))
    sooner_due = applied("sooner/", NOW + timedelta(hours=1))
    applied("future/", NOW + timedelta(days=2))
    applied("forever/", None)
    revoked = applied("revoked/", NOW)
    store.transition(revoked, RequestStatus.REVOKED, actor=ADMIN, action="revoke", now=NOW)
    store.create_request(_ask("pending/"), ALICE, now=NOW)

    assert store.due_for_expiry(NOW) == []
    check = NOW + timedelta(days=1)
    assert [r.id for r in store.due_for_expiry(check)] == [sooner_due, later_due]
    # The comparison is on instants, whatever zone the caller's clock is in.
    assert len(store.due_for_expiry(check.astimezone(timezone(timedelta(hours=2))))) == 2


# ---- the registry --------------------------------------------------------------------------------------


def test_the_registry_is_kept_and_audited(store: Store) -> None:
    shared = SharedBucket(bucket="BucketToBeShared", owner_account="222222222222", description="partner data")
    readonly = SharedBucket(bucket="partner-shared-readonly", region="eu-west-1")
    assert store.list_buckets() == []

    assert store.put_bucket(readonly, actor=ADMIN, now=NOW) == readonly
    store.put_bucket(shared, actor=ADMIN, now=NOW)
    renamed = shared.model_copy(update={"description": "the partner's training data"})
    store.put_bucket(renamed, actor=ADMIN, now=NOW)
    assert store.list_buckets() == [renamed, readonly]

    store.delete_bucket("BucketToBeShared", actor=ADMIN, now=NOW)
    assert store.list_buckets() == [readonly]
    with pytest.raises(NotFound, match="BucketToBeShared"):
        store.delete_bucket("BucketToBeShared", actor=ADMIN, now=NOW)

    log = store.audit()
    assert [e.action for e in log] == ["put-bucket"] * 3 + ["delete-bucket"]
    assert log[2].detail == {"bucket": renamed.model_dump(), "previous": shared.model_dump()}
    assert log[3].detail == {"bucket": renamed.model_dump()}


@pytest.mark.parametrize(("stored", "action"), list(LEGACY_ACTIONS.items()))
def test_a_row_holding_an_earlier_release_s_word_reads_back_as_today_s_verb(
    store: Store, stored: str, action: AuditAction
) -> None:
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    store.record(actor=ADMIN, action=stored, now=NOW, request_id=request.id)
    assert store.audit(request_id=request.id)[-1].action == action


# ---- concurrency, instances and restarts ---------------------------------------------------------------


def test_fifty_threads_filing_at_once(store: Store) -> None:
    with ThreadPoolExecutor(50) as pool:
        distinct = list(pool.map(lambda n: store.create_request(_ask(f"{n}/"), ALICE, now=NOW), range(50)))
        same = list(
            pool.map(lambda _: store.create_request(_ask("x/", "one-key-1"), BOB, now=NOW), range(50))
        )

    assert all(created for _, created in distinct)
    assert len({request.id for request, _ in distinct}) == 50
    assert sum(created for _, created in same) == 1
    assert len({request.id for request, _ in same}) == 1
    assert len(store.list_requests()) == 51
    assert [e.seq for e in store.audit()] == list(range(1, 52))


def test_two_instances_racing_one_transition_cannot_both_win(opener: Opener) -> None:
    first, second = opener(), opener()
    requests = [first.create_request(_ask(f"{n}/"), ALICE, now=NOW)[0] for n in range(5)]
    for request in requests:
        first.transition(request.id, RequestStatus.APPROVED, actor=ADMIN, action="approve", now=NOW)

    for request in requests:
        start = threading.Barrier(2)
        with ThreadPoolExecutor(2) as pool:
            outcomes = [
                pool.submit(_race, first, request.id, RequestStatus.APPLIED, start),
                pool.submit(_race, second, request.id, RequestStatus.CANCELLED, start),
            ]
        results = sorted(outcome.result() for outcome in outcomes)
        assert results in (["applied", "refused"], ["cancelled", "refused"])
        assert second.get(request.id).status.value in results
        assert len(first.audit(request_id=request.id)) == 3


def _race(store: Store, request_id: str, to_status: RequestStatus, start: threading.Barrier) -> str:
    """The status this store set, or "refused"; the barrier lets both racers go at the same moment."""
    start.wait()
    try:
        store.transition(request_id, to_status, actor=ADMIN, action=to_status.value, now=NOW)
    except TransitionRefused:
        return "refused"
    return to_status.value


def test_what_was_written_is_there_after_a_restart(opener: Opener) -> None:
    store = opener()
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    store.put_bucket(SharedBucket(bucket="BucketToBeShared"), actor=ADMIN, now=NOW)
    store.close()

    reopened = opener()
    assert reopened.get(request.id) == request
    assert [e.action for e in reopened.audit()] == ["submit", "put-bucket"]
    assert reopened.create_request(_ask(key=request.idempotency_key), ALICE, now=NOW) == (request, False)


def test_acknowledged_requests_survive_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "requests.db"
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), f"sqlite://{path}"], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    try:
        acknowledged = [writer.stdout.readline().strip() for _ in range(300)]
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        # Whatever it printed before it died was acknowledged too.
        acknowledged += writer.stdout.read().split()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300 and all(acknowledged)

    store = open_store(f"sqlite://{path}")
    stored = Counter(request.id for request in store.list_requests())
    assert all(stored[request_id] == 1 for request_id in acknowledged)
    assert len(store.audit()) == len(stored)
    store.close()
    with _raw(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# ---- opening -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/requests", "sqlite:///ABSOLUTE/PATH.db"),
        ("sqlite://requests.db", "needs an absolute path"),
        ("dynamodb://x", "is not a DynamoDB table name"),
        ("dynamodb://bad/name", "is not a DynamoDB table name"),
    ],
)
def test_a_url_it_cannot_open_is_refused_with_the_forms_it_accepts(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)):
        open_store(url)


def test_a_file_that_is_not_a_request_store_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match=f"{garbage}.*not a database"):
        open_store(f"sqlite://{garbage}")

    foreign = tmp_path / "foreign.db"
    with _raw(foreign) as raw:
        raw.execute("CREATE TABLE notes (text TEXT)")
    with pytest.raises(StoreError, match="a database of something else"):
        open_store(f"sqlite://{foreign}")

    newer = tmp_path / "newer.db"
    open_store(f"sqlite://{newer}").close()
    with _raw(newer) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(f"sqlite://{newer}")


def test_an_in_memory_store_works_for_tests() -> None:
    store = open_store("sqlite:///:memory:")
    request, _ = store.create_request(_ask(), ALICE, now=NOW)
    assert store.get(request.id) == request
    store.close()


def test_a_dynamodb_table_of_another_shape_is_refused(sandbox: SandboxState) -> None:
    aws = sandbox.aws_for("admin")
    name = f"someone-elses-{uuid.uuid4().hex[:8]}"
    aws.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(StoreError, match=f"{name}.*not a request store"):
        open_store(f"dynamodb://{name}", aws)
