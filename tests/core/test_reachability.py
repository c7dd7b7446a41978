"""Reachability: each candidate's status from real probes, probed concurrently."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pytest

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.check import Checker
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.probes import Outcome, Probe
from mlspace_s3magic.core.reachability import Status, reachability, reachable_buckets, status_of
from mlspace_s3magic.core.registry import Candidate
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import REGISTRY


def _probe(capability: str, outcome: Outcome) -> Probe:
    return Probe(capability, "s3:X", "arn:aws:s3:::b", outcome, f"{capability} {outcome.value}")


@pytest.mark.parametrize(
    ("listing", "reading", "status"),
    [
        (Outcome.ALLOWED, Outcome.ALLOWED, Status.READ),
        (Outcome.ALLOWED, Outcome.DENIED, Status.LIST_ONLY),
        (Outcome.DENIED, Outcome.NO_SUCH_KEY, Status.READ),
        (Outcome.DENIED, Outcome.DENIED, Status.DENIED),
        (Outcome.NO_SUCH_BUCKET, Outcome.NO_SUCH_BUCKET, Status.MISSING),
        (Outcome.REQUESTER_PAYS, Outcome.REQUESTER_PAYS, Status.READ),
        (Outcome.UNREACHABLE, Outcome.UNREACHABLE, Status.UNKNOWN),
        (Outcome.DENIED, Outcome.KMS_DENIED, Status.DENIED),
    ],
)
def test_status_from_two_probes(listing: Outcome, reading: Outcome, status: Status) -> None:
    assert status_of(_probe("list", listing), _probe("read", reading))[0] is status


def test_alice_sees_what_the_issue_promises(sandbox: SandboxState) -> None:
    buckets = reachable_buckets(Checker(sandbox.aws_for("alice@demo")), REGISTRY)
    by_name = {item["bucket"]: item for item in buckets.to_dict()}
    assert by_name["partner-shared-readonly"]["status"] == "read"
    assert by_name["BucketToBeShared"]["status"] == "denied"
    assert by_name["mlspace-data-111111111111"]["mlspace_data"] is True
    assert by_name["mlspace-data-111111111111"]["status"] == "read"
    assert by_name["mlspace-data-111111111111"]["probed_prefix"] == "private/alice/"
    assert buckets.items[0].candidate.bucket == "mlspace-data-111111111111"
    assert {"bucket", "status", "source"} <= set(by_name["BucketToBeShared"])
    assert any("could not be read" in note for note in buckets.notes)


def test_a_missing_bucket_is_missing_not_denied(sandbox: SandboxState) -> None:
    buckets = reachable_buckets(
        Checker(sandbox.aws_for("owner")), [SharedBucket(bucket="no-such-bucket-anywhere")]
    )
    (item,) = buckets.items
    assert item.status is Status.MISSING


def test_text_and_html_show_statuses(sandbox: SandboxState) -> None:
    buckets = reachable_buckets(Checker(sandbox.aws_for("alice@demo")), REGISTRY)
    text, html = str(buckets), buckets._repr_html_()
    assert "BucketToBeShared" in text and "denied" in text and "(MLSpace data)" in text
    assert "partner-shared-readonly" in html and ">read<" in html


def test_candidates_are_probed_concurrently(sandbox: SandboxState) -> None:
    """Many buckets in flight at once, counted at the HTTP layer (no timing involved)."""
    aws = sandbox.aws_for("owner").with_pool(16)
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(8, timeout=10)

    def before(**_: Any) -> None:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        with contextlib.suppress(threading.BrokenBarrierError):
            gate.wait()  # returns only once 8 requests are in flight together

    def after(**_: Any) -> None:
        nonlocal in_flight
        with lock:
            in_flight -= 1

    aws.client("s3").meta.events.register("before-send", before)
    aws.client("s3").meta.events.register("needs-retry", after)
    candidates = [Candidate(f"bucket-{i:02d}", ("config",)) for i in range(16)]
    identity = Checker(aws).identity()
    result = reachability(aws, identity, candidates, workers=16)
    assert peak >= 8
    assert [item.candidate.bucket for item in result.items] == sorted(c.bucket for c in candidates)
    assert {item.status for item in result.items} == {Status.MISSING}


def test_the_connection_pool_matches_the_workers(sandbox: SandboxState) -> None:
    aws = sandbox.aws_for("alice@demo")
    wider = aws.with_pool(64)
    assert wider.client("s3").meta.config.max_pool_connections == 64
    assert aws.with_pool(4) is aws


def test_probe_target_for_the_data_bucket_is_the_users_prefix() -> None:
    from mlspace_s3magic.core.reachability import probe_target
    from tests.core.test_registry import ALICE

    assert probe_target(Candidate("mlspace-data-111111111111", ("mlspace",), mlspace_data=True), ALICE) == (
        BucketRef("mlspace-data-111111111111", "private/alice/")
    )
    assert probe_target(Candidate("other", ("config",)), ALICE) == BucketRef("other")
