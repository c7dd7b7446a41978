"""Who may write the layers (the boundary, grant policies, bucket and key policies) right now.

Applies, revokes and reconcile rewrite whole shared documents (read, merge, put), so two writers at once lose
one of the writes. One endpoint process serialises them with a local lock; several (Lambda instances, each
with its own memory) with a lease in the store's DynamoDB table:

- acquire: a conditional ``PutItem`` that succeeds only if the lock item is absent, or its lease expired and
  its fencing token is still the one read (so two takers of one expired lease cannot both win); the token
  is a counter incremented at each acquire, never reused;
- before each write, :meth:`DynamoLeaseLock.check_fence` renews the lease only if the item still holds this
  holder and token: a writer that stalled past its lease, and whose lease another instance took over, is
  refused before it writes (AWS's policy APIs take no fencing token, so the check is as close to the write
  as the caller puts it);
- release: a conditional update that ends the lease at once. The item stays, so the counter does (deleting
  it would start tokens at 1 again).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from botocore.exceptions import ClientError

from mlspace_s3magic.admin.store import DynamoDbStore, Store
from mlspace_s3magic.core.aws import Aws, aws_call, error_code
from mlspace_s3magic.core.errors import Conflict, Unavailable

LOG = logging.getLogger(__name__)

# The lock item's key: no request, audit entry or bucket lives under this partition (store/dynamodb.py).
LOCK_KEY = {"pk": {"S": "LOCK"}, "sk": {"S": "layers"}}
LEASE_SECONDS = 120.0  # longer than an apply with its verification; renewed at each fence check
# How long an instance waits for another's writes before it answers 503: within API Gateway's 29 s, so the
# caller hears "busy" rather than a gateway timeout while the wait goes on (and may then write).
WAIT_SECONDS = 20.0
POLL_SECONDS = 0.2
LOST_RACE = "ConditionalCheckFailedException"


class LayerLock(Protocol):
    """Held (``with lock:``) around every write to the layers; ``check_fence`` just before each write."""

    def __enter__(self) -> None: ...

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None: ...

    def check_fence(self) -> None:
        """Raise :class:`LeaseLost` unless this holder may still write."""


class LeaseBusy(Unavailable):
    """Another endpoint instance kept the layers for longer than this one waits: try again shortly."""


class LeaseLost(Conflict):
    """This writer's lease expired and another instance took it over: it must not write."""


class LocalLayerLock:
    """One endpoint process: a thread lock, which cannot be lost, so there is nothing to fence."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._lock.release()

    def check_fence(self) -> None:
        """Always held while the block runs."""


@dataclass(frozen=True)
class Lease:
    holder: str
    token: int


class DynamoLeaseLock:
    """The layers' lock shared by every instance using one DynamoDB table.

    ``clock`` (seconds since the epoch) and ``sleep`` are injectable so tests can expire a lease at will;
    instances' clocks need only agree within a fraction of ``lease_seconds``.
    """

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        wait_seconds: float = WAIT_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self._clock = clock
        self._sleep = sleep
        self._local = threading.Lock()  # this instance's own threads take turns before asking DynamoDB
        self.lease: Lease | None = None

    def __enter__(self) -> None:
        if not self._local.acquire(timeout=self.wait_seconds):
            raise LeaseBusy("Another write on this endpoint instance is taking too long; try again shortly.")
        try:
            self.lease = self._acquire()
        except BaseException:
            self._local.release()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        lease, self.lease = self.lease, None
        try:
            if lease is not None:
                self._release(lease)
        except Exception:  # the lease then ends by itself; the block's own outcome is what the caller needs
            LOG.warning("could not release the layers' lease %s; it expires by itself", lease, exc_info=True)
        finally:
            self._local.release()

    def _call(self, action: str, **request: Any) -> dict[str, Any] | None:
        """One DynamoDB call on the lock item; None when its condition failed."""
        with aws_call(self._client, f"DynamoDB {action} on {self._table} (the layers' lease)"):
            try:
                answer: dict[str, Any] = getattr(self._client, action)(TableName=self._table, **request)
            except ClientError as error:
                if error_code(error) == LOST_RACE:
                    return None
                raise
        return answer

    def _acquire(self) -> Lease:
        deadline = self._clock() + self.wait_seconds
        while True:
            item = (self._call("get_item", Key=LOCK_KEY, ConsistentRead=True) or {}).get("Item")
            now = self._clock()
            seen = int(item["token"]["N"]) if item else 0
            if item is None or float(item["expires_at"]["N"]) <= now:
                lease = Lease(uuid.uuid4().hex, seen + 1)
                taken = self._call(
                    "put_item",
                    Item={
                        **LOCK_KEY,
                        "holder": {"S": lease.holder},
                        "token": {"N": str(lease.token)},
                        "expires_at": {"N": repr(now + self.lease_seconds)},
                    },
                    ConditionExpression="attribute_not_exists(pk) OR (#token = :seen AND expires_at <= :now)",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":seen": {"N": str(seen)}, ":now": {"N": repr(now)}},
                )
                if taken is not None:
                    return lease
                continue  # another instance took it between the read and the write: read again
            if now >= deadline:
                raise LeaseBusy("Another endpoint instance is writing the policies; try again in a minute.")
            self._sleep(min(POLL_SECONDS, max(0.0, deadline - now)))

    def check_fence(self) -> None:
        """Renew the lease if this holder still has it; refuse (:class:`LeaseLost`) if it was taken over."""
        lease = self.lease
        if lease is None:
            raise LeaseLost("The layers' lease is not held here, so nothing may be written.")
        renewed = self._call(
            "update_item",
            Key=LOCK_KEY,
            UpdateExpression="SET expires_at = :until",
            ConditionExpression="holder = :holder AND #token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={
                ":until": {"N": repr(self._clock() + self.lease_seconds)},
                ":holder": {"S": lease.holder},
                ":token": {"N": str(lease.token)},
            },
        )
        if renewed is None:
            raise LeaseLost(
                f"This writer's lease on the policies (fencing token {lease.token}) expired and another "
                "endpoint instance took it over: nothing more was written. Check the request and apply "
                "or revoke it again."
            )

    def _release(self, lease: Lease) -> None:
        ended = self._call(
            "update_item",
            Key=LOCK_KEY,
            UpdateExpression="SET expires_at = :zero REMOVE holder",
            ConditionExpression="holder = :holder AND #token = :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":holder": {"S": lease.holder},
                ":token": {"N": str(lease.token)},
            },
        )
        if ended is None:
            LOG.warning("the layers' lease with token %d had been taken over before its release", lease.token)


def layer_lock_for(store: Store, aws: Aws) -> LayerLock:
    """A DynamoDB store is shared by instances, so its table holds the lease; any other store has one."""
    if isinstance(store, DynamoDbStore):
        return DynamoLeaseLock(aws.client("dynamodb"), store.table_name)
    return LocalLayerLock()
