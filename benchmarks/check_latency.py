"""How long ``check`` takes when every AWS request costs a fixed delay, as from a notebook far from AWS.

Prints, for a cold check (nothing cached) and a warm one (identity and policies cached), the number of
sequential round trips on the critical path and the wall time as a ratio to the seed runbook's own test:
one plain ``head_bucket``. Targets (issue 4): warm <= 2 round trips (ratio <= 2.3), cold <= 3.

Run: ``python benchmarks/check_latency.py [--delay-ms 50] [--as alice@demo] [--bucket BucketToBeShared]``
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.check import Checker
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.server import Sandbox

SERVICES = ("s3", "iam", "sts", "kms")


@dataclass
class Call:
    name: str
    start: float
    end: float = 0.0


class DelayedRequests:
    """Adds a fixed delay to every HTTP request of the given clients and records when each ran."""

    def __init__(self, delay: float):
        self.delay = delay
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._open = threading.local()

    def attach(self, aws: Aws) -> None:
        for service in SERVICES:
            events = aws.client(service).meta.events
            events.register("before-send", self._before)
            events.register("needs-retry", self._after)

    def _before(self, request: Any, **_: Any) -> None:
        call = Call(str(request.url).split("?")[0][-40:], time.perf_counter())
        self._open.call = call
        time.sleep(self.delay)

    def _after(self, **_: Any) -> None:
        call = getattr(self._open, "call", None)
        if call is not None:
            call.end = time.perf_counter()
            with self._lock:
                self.calls.append(call)
            self._open.call = None

    def reset(self) -> None:
        self.calls = []

    def critical_path(self) -> int:
        """The longest chain of requests each starting after the previous one ended."""
        calls = sorted(self.calls, key=lambda c: c.start)
        depth: list[int] = []
        for index, call in enumerate(calls):
            before = [depth[i] for i, other in enumerate(calls[:index]) if other.end <= call.start]
            depth.append(1 + max(before, default=0))
        return max(depth, default=0)


def _timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=50.0, help="delay added to every AWS request")
    parser.add_argument("--as", dest="principal", default="alice@demo", help="sandbox principal to check as")
    parser.add_argument("--bucket", default="BucketToBeShared", help="bucket (or bucket/prefix) to check")
    args = parser.parse_args()

    sandbox = Sandbox()
    state = sandbox.start()
    try:
        ref = parse_bucket_reference(args.bucket)
        baseline_aws = state.aws_for(args.principal)
        baseline = DelayedRequests(args.delay_ms / 1000)
        baseline.attach(baseline_aws)

        def head_bucket() -> None:
            # The seed's test only wants an answer; a 403 is one too.
            with contextlib.suppress(ClientError):
                baseline_aws.client("s3").head_bucket(Bucket=ref.bucket)

        head_bucket()  # warm the connection pool, as the check's clients will be
        baseline.reset()
        baseline_time = _timed(head_bucket)

        aws = state.aws_for(args.principal)
        delayed = DelayedRequests(args.delay_ms / 1000)
        delayed.attach(aws)
        checker = Checker(aws)
        rows = []
        for label in ("cold", "warm"):
            delayed.reset()
            elapsed = _timed(lambda: checker.check(ref))
            rows.append((label, delayed.critical_path(), len(delayed.calls), elapsed))
        checker.close()
    finally:
        sandbox.stop()

    print(f"check {args.bucket} as {args.principal}, {args.delay_ms:.0f} ms added to every AWS request")
    print(f"baseline: one head_bucket, 1 round trip, {baseline_time * 1000:.0f} ms")
    print(f"{'check':<6} {'round trips':>12} {'requests':>9} {'wall ms':>8} {'ratio to head_bucket':>21}")
    for label, trips, requests, elapsed in rows:
        print(f"{label:<6} {trips:>12} {requests:>9} {elapsed * 1000:>8.0f} {elapsed / baseline_time:>21.2f}")


if __name__ == "__main__":
    main()
