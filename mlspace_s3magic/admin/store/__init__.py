"""The admin endpoint's durable record: access requests, their append-only audit log, the bucket registry.

Two stores behave the same: SQLite (one file, WAL) for a single admin instance, DynamoDB for several. Each
change is written once, as a function over a ``Transaction``, and each store runs it atomically: a request's
new status and its audit entry commit together, and a change is acknowledged only once it is durable.

``api`` is the contract and the changes every store shares, ``changes`` the change functions, ``rows`` how
models become rows, ``sqlite`` and ``dynamodb`` the backends, ``errors`` what they raise; this module opens
the store a URL names.
"""

from __future__ import annotations

from mlspace_s3magic.admin.store.api import EXPIRING, Store
from mlspace_s3magic.admin.store.dynamodb import DynamoDbStore
from mlspace_s3magic.admin.store.errors import StoreError, TransitionRefused
from mlspace_s3magic.admin.store.sqlite import SqliteStore
from mlspace_s3magic.core.aws import Aws

__all__ = [
    "ACCEPTED_URLS",
    "EXPIRING",
    "DynamoDbStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "TransitionRefused",
    "open_store",
]

ACCEPTED_URLS = "sqlite:///ABSOLUTE/PATH.db, sqlite:///:memory: (tests only), or dynamodb://TABLE"


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
