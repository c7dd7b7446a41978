"""The notebook user's side of access requests, shared by ``%s3access request``, ``requests``, ``cancel``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlspace_s3magic.access_requests.client import AdminClient, AdminUnreachable
from mlspace_s3magic.access_requests.results import Receipt, RequestTable
from mlspace_s3magic.core.access import REQUEST_SUBJECTS, AccessRequest, NewAccessRequest, SharedBucket
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.problems import plain_problems
from mlspace_s3magic.core.registry import load_registry_file


class InvalidRequest(InvalidInput):
    """The request breaks a rule (which field, and why); nothing was sent or queued."""


def new_request(ref: BucketRef, access: str, reason: str, days: int | None) -> NewAccessRequest:
    """A validated request with a fresh idempotency key, so a retry of this very request is recognised."""
    return parse_new_request(
        {"bucket": ref.bucket, "prefix": ref.prefix, "access": access, "reason": reason, "days": days}
    )


def parse_new_request(fields: Mapping[str, Any]) -> NewAccessRequest:
    """A request from untrusted fields (a form, a JSON body), with a fresh idempotency key unless given."""
    try:
        return NewAccessRequest.model_validate({"idempotency_key": uuid.uuid4().hex, **fields})
    except ValidationError as error:
        problems = plain_problems(error.errors(), NewAccessRequest, REQUEST_SUBJECTS)
        raise InvalidRequest(f"The request was not sent: {problems}.") from None


def file_request(client: AdminClient, new: NewAccessRequest) -> Receipt:
    """Send it, or queue it in the outbox when the endpoint cannot be reached (the receipt says which)."""
    return Receipt(new, client.submit(new), client.base_url)


def my_requests(client: AdminClient) -> RequestTable:
    """One's requests, after sending whatever the outbox still holds; still-queued ones are listed too."""
    queued = client.outbox.pending() if client.outbox is not None else []
    try:
        client.flush_outbox()
        requests = client.requests()
    except AdminUnreachable:
        if not queued:
            raise
        return RequestTable([], queued)
    return RequestTable(requests, client.outbox.pending() if client.outbox is not None else [])


def cancel_request(client: AdminClient, request_id: str) -> AccessRequest:
    return client.act(request_id, "cancel")


def shared_buckets(client: AdminClient | None, fallback: Path) -> tuple[list[SharedBucket], tuple[str, ...]]:
    """The registry: the endpoint's when one is configured (the admin keeps it there), else the file."""
    if client is not None:
        try:
            return client.buckets(), ()
        except AdminUnreachable as error:
            return load_registry_file(fallback), (f"{error} Using the registry file {fallback} instead.",)
    return load_registry_file(fallback), ()
