"""How long ``check`` takes when every AWS request costs a fixed delay, as from a notebook far from AWS.

Prints, for a cold check (nothing cached) and a warm one (identity and policies cached), the number of
sequential round trips on the critical path and the wall time as a ratio to the seed runbook's own test:
one plain ``head_bucket``. Targets (issue 4): warm <= 2 round trips (ratio <= 2.3), cold <= 3.

Then the same through the admin endpoint (issue 12): the same delay is added to every request from the
notebook to the endpoint and to every AWS request the endpoint makes (its own reads, the owner's role, the
STS check of the notebook's proof). Round trips are counted as seen from the notebook (its AWS requests and
its requests to the endpoint). Targets: warm <= 2, cold <= 3; the endpoint keeps a diagnosis until it
changes a layer (or for a minute).

Run: ``python benchmarks/check_latency.py [--delay-ms 50] [--as alice@demo] [--bucket BucketToBeShared]``
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from botocore.exceptions import ClientError

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.check import Checker
from mlspace_s3magic.core.diagnosis import Diagnosis
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference
from mlspace_s3magic.sandbox.admin_endpoint import serve_admin_endpoint
from mlspace_s3magic.sandbox.server import Sandbox
from mlspace_s3magic.sandbox.state import SandboxState

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

    def attach_http(self, client: httpx.Client) -> None:
        """The same for an HTTP client: the notebook's requests to the admin endpoint."""

        def before(request: httpx.Request) -> None:
            self._before(request)

        def after(response: httpx.Response) -> None:
            self._after()

        client.event_hooks["request"].append(before)
        client.event_hooks["response"].append(after)

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


Row = tuple[str, int, int, float]


def _measure(checker: Checker, ref: BucketRef, delayed: DelayedRequests) -> list[Row]:
    rows = []
    for label in ("cold", "warm"):
        delayed.reset()
        elapsed = _timed(lambda: checker.check(ref))
        rows.append((label, delayed.critical_path(), len(delayed.calls), elapsed))
    return rows


def _delay_endpoint(service: AdminService, delay: float) -> None:
    """Every AWS request of the endpoint costs ``delay`` too: its clients, the owner's, the proof's STS."""
    DelayedRequests(delay).attach(service.aws)
    sessions = service.owner_sessions

    def delayed_sessions(role_arn: str) -> Aws | None:
        owner = sessions(role_arn)
        if owner is not None:
            DelayedRequests(delay).attach(owner)
        return owner

    service.owner_sessions = delayed_sessions
    service.authenticator._http.event_hooks["request"].append(lambda _: time.sleep(delay))


def _through_endpoint(state: SandboxState, principal: str, ref: BucketRef, delay: float) -> list[Row]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        state.save(folder)
        with serve_admin_endpoint(folder) as endpoint:
            _delay_endpoint(endpoint.service, delay)
            aws = state.aws_for(principal)
            delayed = DelayedRequests(delay)
            delayed.attach(aws)
            client = AdminClient(endpoint.url, aws=aws)
            delayed.attach_http(client._http)
            diagnose: Callable[[BucketRef], Diagnosis] = lambda target: Diagnosis.from_dict(  # noqa: E731
                client.diagnose(str(target))
            )
            checker = Checker(aws, diagnose=diagnose)
            try:
                rows = _measure(checker, ref, delayed)
            finally:
                checker.close()
            # A new notebook, the endpoint's diagnoses forgotten (a layer changed), its clients already made:
            # what a user meets once the endpoint has served anyone.
            endpoint.service._diagnoses.clear()
            again = Checker(aws, diagnose=diagnose)
            try:
                rows.append(("cold, served", *_measure(again, ref, delayed)[0][1:]))
            finally:
                again.close()
                client.close()
            return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=50.0, help="delay added to every AWS request")
    parser.add_argument("--as", dest="principal", default="alice@demo", help="sandbox principal to check as")
    parser.add_argument("--bucket", default="BucketToBeShared", help="bucket (or bucket/prefix) to check")
    args = parser.parse_args()
    delay = args.delay_ms / 1000

    sandbox = Sandbox()
    state = sandbox.start()
    try:
        ref = parse_bucket_reference(args.bucket)
        baseline_aws = state.aws_for(args.principal)
        baseline = DelayedRequests(delay)
        baseline.attach(baseline_aws)

        def head_bucket() -> None:
            # The seed's test only wants an answer; a 403 is one too.
            with contextlib.suppress(ClientError):
                baseline_aws.client("s3").head_bucket(Bucket=ref.bucket)

        head_bucket()  # warm the connection pool, as the check's clients will be
        baseline.reset()
        baseline_time = _timed(head_bucket)

        aws = state.aws_for(args.principal)
        delayed = DelayedRequests(delay)
        delayed.attach(aws)
        checker = Checker(aws)
        try:
            rows = [(f"notebook {label}", *rest) for label, *rest in _measure(checker, ref, delayed)]
        finally:
            checker.close()
        rows += [
            (f"endpoint {label}", *rest)
            for label, *rest in _through_endpoint(state, args.principal, ref, delay)
        ]
    finally:
        sandbox.stop()

    print(f"check {args.bucket} as {args.principal}, {args.delay_ms:.0f} ms added to every AWS request")
    print("(and, through the endpoint, to every notebook-to-endpoint request and every AWS request it makes)")
    print(f"baseline: one head_bucket, 1 round trip, {baseline_time * 1000:.0f} ms")
    print(f"{'check':<21} {'round trips':>12} {'requests':>9} {'wall ms':>8} {'ratio to head_bucket':>21}")
    for label, trips, requests, elapsed in rows:
        print(
            f"{label:<21} {trips:>12} {requests:>9} {elapsed * 1000:>8.0f} {elapsed / baseline_time:>21.2f}"
        )


if __name__ == "__main__":
    main()
