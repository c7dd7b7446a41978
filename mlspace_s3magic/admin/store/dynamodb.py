"""The DynamoDB backend: one table shared by several admin instances, each change one transaction."""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from botocore.exceptions import ClientError

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
from mlspace_s3magic.core.aws import Aws, aws_call, error_code
from mlspace_s3magic.core.errors import NotFound, S3MagicError

T = TypeVar("T")

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


class _DynamoTransaction:
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
        return request_from_row(row) if row else None

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
        self._put(AUDIT, f"{entry.seq:020d}", audit_row(entry), new=True)

    def add_request(self, request: AccessRequest, created_seq: int) -> None:
        self._put(REQUEST, request.id, {**request_row(request), "created_seq": created_seq}, new=True)
        self._put(PENDING, _pending_name_of(request), {"request_id": request.id}, new=True)

    def add_key(self, requester_arn: str, key: str, request_id: str) -> None:
        self._put(IDEM, f"{requester_arn}#{key}", {"request_id": request_id}, new=True)

    def replace_request(self, before: AccessRequest, after: AccessRequest) -> None:
        fields = changed_fields(after)
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


class DynamoDbStore(Store):
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

    @property
    def table_name(self) -> str:
        """The table, which also holds the layers' lease (admin/lease.py) under a key of its own."""
        return self._table.name

    def _change(self, change: Callable[[Transaction], T]) -> T:
        """Optimistic, retried when another instance wins; this instance's own threads take turns."""
        with self._writing:
            for attempt in range(MAX_ATTEMPTS):
                tx = _DynamoTransaction(self._table)
                outcome = change(tx)
                if tx.commit():
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
        return request_from_row(row)

    def _requests(self, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [row for row in self._table.items(REQUEST) if keep(row)]

    def list_requests(
        self, *, requester_arn: str | None = None, status: RequestStatus | None = None
    ) -> list[AccessRequest]:
        rows = self._requests(
            lambda row: requester_arn in (None, row["requester_arn"]) and status in (None, row["status"])
        )
        rows.sort(key=lambda row: int(row["created_seq"]), reverse=True)
        return [request_from_row(row) for row in rows]

    def audit(self, *, request_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        rows = self._table.items(AUDIT, newest_first=True)
        matching = (row for row in rows if request_id in (None, row.get("request_id")))
        return [audit_from_row(row) for row in reversed(list(islice(matching, limit)))]

    def due_for_expiry(self, now: datetime) -> list[AccessRequest]:
        cutoff = stamp(utc(now))
        rows = self._requests(
            lambda row: row["status"] in EXPIRING and "expires_at" in row and row["expires_at"] <= cutoff
        )
        rows.sort(key=lambda row: (row["expires_at"], int(row["created_seq"])))
        return [request_from_row(row) for row in rows]

    def list_buckets(self) -> list[SharedBucket]:
        return [SharedBucket.model_validate_json(row["data"]) for row in self._table.items(BUCKET)]

    def close(self) -> None:
        """Nothing to release: the boto3 client belongs to the ``Aws`` it came from."""
