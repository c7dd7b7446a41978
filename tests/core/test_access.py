"""The access-request models: what is accepted, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlspace_s3magic.core.access import TRANSITIONS, NewAccessRequest, RequestStatus, SharedBucket

GOOD: dict[str, Any] = {
    "bucket": "BucketToBeShared",
    "prefix": "datasets/iris/",
    "access": "read",
    "reason": "iris study",
    "days": 30,
    "idempotency_key": "0b8f2c8e-4f7a-4c1e-9a59-1f0e2d3c4b5a",
}


def test_a_good_request() -> None:
    request = NewAccessRequest.model_validate(GOOD)
    assert (request.bucket, request.access.value, request.days) == ("BucketToBeShared", "read", 30)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"bucket": "bad bucket"}, "bucket", "is not a valid S3 bucket name"),
        ({"access": "write-only"}, "access", "'read' or 'read-write'"),
        ({"reason": ""}, "reason", "at least 3 characters"),
        ({"days": 0}, "days", "greater than or equal to 1"),
        ({"days": 1000}, "days", "less than or equal to 365"),
        ({"prefix": "/data/"}, "prefix", "does not start with '/'"),
        ({"prefix": "data/*"}, "prefix", "wildcards"),
        ({"idempotency_key": "short"}, "idempotency_key", "8 to 128 letters"),
        ({"acess": "read"}, "acess", "Extra inputs are not permitted"),
    ],
)
def test_bad_input_names_the_field(change: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        NewAccessRequest.model_validate({**GOOD, **change})
    (problem,) = error.value.errors()
    assert problem["loc"][0] == field
    assert message in str(error.value)


def test_transitions_end_in_final_states() -> None:
    final = {RequestStatus.DENIED, RequestStatus.REVOKED, RequestStatus.EXPIRED, RequestStatus.CANCELLED}
    assert {status for status, nexts in TRANSITIONS.items() if not nexts} == final
    assert RequestStatus.APPLIED in TRANSITIONS[RequestStatus.APPROVED]
    assert RequestStatus.APPLIED not in TRANSITIONS[RequestStatus.PENDING]  # never applied unapproved


def test_registry_entries_are_checked() -> None:
    assert SharedBucket(bucket="partner-data", owner_account="222222222222").region is None
    with pytest.raises(ValidationError, match="owner_role_arn"):
        SharedBucket(bucket="partner-data", owner_role_arn="not-an-arn")


@pytest.mark.parametrize(
    ("typed", "stored"), [("datasets", "datasets/"), ("datasets/", "datasets/"), ("", "")]
)
def test_a_requested_prefix_is_a_folder(typed: str, stored: str) -> None:
    """The same rule as ``check``: ``datasets`` is the folder ``datasets/``, never ``datasets-private/``."""
    assert NewAccessRequest.model_validate({**GOOD, "prefix": typed}).prefix == stored
