"""Probes: S3's answers classified so a missing bucket, an archived object or KMS is never a plain denial."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.probes import MARKER_NAME, Outcome, Probe, _classify, run_probes
from mlspace_s3magic.sandbox.state import SandboxState

REF = parse_bucket_reference("some-bucket/data/")


def _error(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetObject")


@pytest.mark.parametrize(
    ("code", "message", "outcome", "allowed"),
    [
        ("NoSuchBucket", "The specified bucket does not exist", Outcome.NO_SUCH_BUCKET, None),
        ("NoSuchKey", "", Outcome.NO_SUCH_KEY, True),
        (
            "InvalidObjectState",
            "The operation is not valid for the object's storage class",
            Outcome.ARCHIVED,
            True,
        ),
        (
            "AccessDenied",
            "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: kms:Decrypt on "
            "resource: arn:aws:kms:us-east-1:2:key/k",
            Outcome.KMS_DENIED,
            False,
        ),
        ("AccessDenied", "Access Denied", Outcome.DENIED, False),
        # A bucket named for KMS is no KMS refusal: only the refused action counts.
        (
            "AccessDenied",
            "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: s3:GetObject on "
            'resource: "arn:aws:s3:::partner-kms-encrypted/a.csv"',
            Outcome.DENIED,
            False,
        ),
        ("KMS.AccessDeniedException", "not allowed", Outcome.KMS_DENIED, False),
        ("SlowDown", "Please reduce your request rate.", Outcome.ERROR, None),
    ],
)
def test_answers_are_classified(code: str, message: str, outcome: Outcome, allowed: bool | None) -> None:
    classified, detail = _classify(_error(code, message), capability="read", ref=REF)
    assert classified is outcome
    assert detail
    assert Probe("read", "s3:GetObject", "arn", classified, detail).allowed is allowed


def test_missing_bucket_is_named_as_missing_not_denied() -> None:
    _, detail = _classify(_error("NoSuchBucket"), capability="list", ref=REF)
    assert "not a denial" in detail and "some-bucket" in detail


def test_an_empty_prefix_still_proves_read_access(sandbox: SandboxState) -> None:
    results = run_probes(
        sandbox.aws_for("alice@demo"),
        parse_bucket_reference("mlspace-data-111111111111/private/alice/empty/"),
    )
    assert results.list.outcome is Outcome.ALLOWED
    assert results.read.outcome is Outcome.NO_SUCH_KEY
    assert results.read.allowed is True
    assert "GetObject is allowed" in results.read.detail


def test_without_listing_a_read_denial_carries_its_caveat(sandbox: SandboxState) -> None:
    results = run_probes(sandbox.aws_for("alice@demo"), parse_bucket_reference("BucketToBeShared/datasets/"))
    assert results.list.outcome is Outcome.DENIED
    assert results.read.outcome is Outcome.DENIED
    assert "pass --key to confirm" in results.read.detail
    assert results.write.outcome is Outcome.NOT_RUN


def test_a_given_key_is_read_directly(sandbox: SandboxState) -> None:
    results = run_probes(
        sandbox.aws_for("owner"),
        parse_bucket_reference("BucketToBeShared/datasets/"),
        key="datasets/iris/iris.csv",
    )
    assert (results.read.outcome, results.read.key) == (Outcome.ALLOWED, "datasets/iris/iris.csv")


def test_the_write_marker_is_named_to_sort_last() -> None:
    assert MARKER_NAME.startswith("~")


class _RequesterPaysS3:
    """Answers like a Requester Pays bucket: AccessDenied unless the request says the requester pays."""

    class meta:
        endpoint_url = "https://s3.example.test"

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def _answer(self, params: dict[str, object], result: dict[str, object]) -> dict[str, object]:
        self.calls.append(params)
        if params.get("RequestPayer") != "requester":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "Call")
        return result

    def list_objects_v2(self, **params: object) -> dict[str, object]:
        return self._answer(params, {"Contents": [{"Key": "data/a.csv"}]})

    def get_object(self, **params: object) -> dict[str, object]:
        return self._answer(params, {})


class _Clients:
    region = "us-east-1"

    def __init__(self, s3: _RequesterPaysS3) -> None:
        self.s3 = s3

    def client(self, service: str) -> _RequesterPaysS3:
        return self.s3


def test_a_requester_pays_bucket_is_told_apart_from_a_denial() -> None:
    s3 = _RequesterPaysS3()
    results = run_probes(_Clients(s3), REF)  # type: ignore[arg-type]
    assert results.list.outcome is Outcome.REQUESTER_PAYS
    assert results.read.outcome is Outcome.REQUESTER_PAYS
    assert results.read.key == "data/a.csv"
    assert results.read.allowed is True
    assert "RequestPayer='requester'" in results.read.detail
    assert sum(1 for call in s3.calls if "Range" in call and call.get("RequestPayer") == "requester") == 1
