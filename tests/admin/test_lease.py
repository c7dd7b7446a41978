"""The layers' lease in the store's DynamoDB table: one holder at a time, a fencing token that only grows, and
a holder whose lease was taken over refused before it writes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mlspace_s3magic.admin.lease import (
    LOCK_KEY,
    DynamoLeaseLock,
    LeaseBusy,
    LeaseLost,
    LocalLayerLock,
    layer_lock_for,
)
from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.sandbox.state import SandboxState

LEASE = 30.0


class Clock:
    """Seconds since the epoch that move only when told (``sleep`` moves them too)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def table(sandbox: SandboxState) -> Iterator[tuple[Any, str]]:
    """A store's table in the sandbox, as the endpoint makes it, and a DynamoDB client on it."""
    aws = sandbox.aws_for("admin")
    name = f"s3access-lease-{uuid.uuid4().hex[:12]}"
    store = open_store(f"dynamodb://{name}", aws)
    yield aws.client("dynamodb"), name
    store.close()
    aws.client("dynamodb").delete_table(TableName=name)


def _lock(table: tuple[Any, str], clock: Clock, **options: float) -> DynamoLeaseLock:
    client, name = table
    return DynamoLeaseLock(client, name, lease_seconds=LEASE, clock=clock, sleep=clock.sleep, **options)


def test_each_acquire_takes_the_next_token_and_release_frees_the_lease_at_once(
    table: tuple[Any, str],
) -> None:
    clock = Clock()
    first, second = _lock(table, clock), _lock(table, clock)
    tokens = []
    for lock in (first, second, first):
        with lock:
            assert lock.lease is not None
            tokens.append(lock.lease.token)
            lock.check_fence()
        assert lock.lease is None
    assert tokens == [1, 2, 3]
    client, name = table
    item = client.get_item(TableName=name, Key=LOCK_KEY, ConsistentRead=True)["Item"]
    assert item["token"] == {"N": "3"} and "holder" not in item  # released, and the counter kept


def test_a_held_lease_makes_another_instance_wait_then_answer_busy(table: tuple[Any, str]) -> None:
    clock = Clock()
    holder, waiter = _lock(table, clock), _lock(table, clock, wait_seconds=5.0)
    with holder:
        started = clock()
        with pytest.raises(LeaseBusy, match="Another endpoint instance is writing"):
            waiter.__enter__()
        assert clock() - started >= 5.0  # it waited (on its own clock) before giving up
        holder.check_fence()  # the holder was never disturbed
    with waiter:  # free again
        assert waiter.lease is not None and waiter.lease.token == 2


def test_a_writer_whose_lease_expired_and_was_taken_over_is_refused_before_it_writes(
    table: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    stalled, other = _lock(table, clock), _lock(table, clock)
    stalled.__enter__()
    clock.now += LEASE + 1  # the first writer stalls past its lease
    with other:  # another instance takes the expired lease over, with the next token
        assert other.lease is not None and other.lease.token == 2
        with pytest.raises(LeaseLost, match="fencing token 1"):
            stalled.check_fence()
        stalled.__exit__(None, None, None)  # its release must not end the new holder's lease
        assert "taken over" in caplog.text
        other.check_fence()


def test_an_expired_lease_nobody_took_is_renewed_by_the_fence_check(table: tuple[Any, str]) -> None:
    clock = Clock()
    slow, other = _lock(table, clock), _lock(table, clock, wait_seconds=1.0)
    with slow:
        clock.now += LEASE + 1
        slow.check_fence()  # nobody took it meanwhile: still this writer's, for another lease
        with pytest.raises(LeaseBusy):
            other.__enter__()


def test_a_dynamodb_store_gets_the_lease_and_sqlite_the_local_lock(
    table: tuple[Any, str], sandbox: SandboxState
) -> None:
    aws = sandbox.aws_for("admin")
    store = open_store(f"dynamodb://{table[1]}", aws)
    assert isinstance(layer_lock_for(store, aws), DynamoLeaseLock)
    assert isinstance(layer_lock_for(open_store("sqlite:///:memory:"), aws), LocalLayerLock)
