"""How long ``list`` takes for 200 registered buckets when every AWS request costs a fixed delay.

Compares, in the same run, our concurrent probing (list, then read, per bucket) with what a user would write:
a plain sequential loop of one ``head_bucket`` per bucket. Target (issue 5): at least 20 times faster.
The sandbox runs in its own process, so its work does not compete with ours for the interpreter.

Run: ``python benchmarks/list_buckets.py [--buckets 200] [--delay-ms 50] [--workers 64]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from processes import sandbox_process

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.check import Checker
from mlspace_s3magic.core.reachability import reachable_buckets
from mlspace_s3magic.sandbox.world import PARTNER_ACCOUNT

SERVICES = ("s3", "iam", "sts")
RUNS = 4  # run 1 pays for new connections and the sandbox's first requests of each kind


class Delay:
    """Sleeps before every HTTP request of the clients it is attached to, and counts the requests."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.requests = 0

    def attach(self, aws: Aws) -> Aws:
        for service in SERVICES:
            aws.client(service).meta.events.register("before-send", self._before)
        return aws

    def _before(self, **_: Any) -> None:
        self.requests += 1
        time.sleep(self.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=200, help="registered buckets to probe")
    parser.add_argument("--delay-ms", type=float, default=50.0, help="delay added to every AWS request")
    parser.add_argument("--workers", type=int, default=64, help="buckets probed at once")
    parser.add_argument("--as", dest="principal", default="owner", help="sandbox principal that lists")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, sandbox_process(Path(folder)) as state:
        names = [f"shared-dataset-{index:03d}" for index in range(args.buckets)]
        owner_s3 = state.aws_for("owner").with_pool(32).client("s3")
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(lambda name: owner_s3.create_bucket(Bucket=name), names))
            list(
                pool.map(
                    lambda name: owner_s3.put_object(Bucket=name, Key="data/part-0.csv", Body=b"a,b\n"),
                    names[::2],
                )
            )  # half hold an object, half are empty
        registry = [SharedBucket(bucket=name, owner_account=PARTNER_ACCOUNT) for name in names]
        delay = args.delay_ms / 1000

        baseline_delay = Delay(delay)
        baseline_s3 = baseline_delay.attach(state.aws_for(args.principal)).client("s3")
        with contextlib.suppress(ClientError):
            baseline_s3.head_bucket(Bucket=names[0])  # a warm connection, as a notebook would have
        baseline_delay.requests = 0
        start = time.perf_counter()
        for name in names:
            with contextlib.suppress(ClientError):
                baseline_s3.head_bucket(Bucket=name)
        baseline = time.perf_counter() - start

        ours_delay = Delay(delay)
        # Sized for the workers first, so reachability uses these (delayed) clients rather than new ones.
        checker = Checker(ours_delay.attach(state.aws_for(args.principal).with_pool(args.workers)))
        checker.identity()  # a session's identity is known before it lists
        checker.caller_layers()
        runs = []
        for _ in range(RUNS):
            ours_delay.requests = 0
            start, cpu_start = time.perf_counter(), time.process_time()
            result = reachable_buckets(checker, registry, workers=args.workers)
            runs.append((time.perf_counter() - start, time.process_time() - cpu_start, ours_delay.requests))
        checker.close()

    print(
        f"{args.buckets} registered buckets, {args.delay_ms:.0f} ms added to every AWS request, "
        f"as {args.principal}"
    )
    print(f"sequential head_bucket loop: {baseline_delay.requests:>4} requests {baseline:7.2f} s")
    for number, (elapsed, cpu, requests) in enumerate(runs, 1):
        label = "run 1 (new connections)" if number == 1 else f"run {number}"
        print(
            f"s3access list, {args.workers} at once, {label:<23}: {requests:>4} requests {elapsed:7.2f} s "
            f"({cpu:.2f} s of CPU in this process)"
        )
    print(f"statuses: {dict(Counter(item.status.value for item in result.items))}")
    typical = statistics.median(elapsed for elapsed, _, _ in runs[1:])
    print(
        f"speed-up: {baseline / typical:.1f}x on the median of runs 2-{RUNS}, "
        f"{baseline / runs[0][0]:.1f}x on run 1 (target: at least 20x)"
    )


if __name__ == "__main__":
    main()
