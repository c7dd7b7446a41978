"""What the first page of a big prefix costs: one request and a fixed amount of memory, however big it is.

A prefix of 100,000 objects (and one of 10,000, to show memory does not grow with the prefix) is browsed
the way the widget and ``s3access ls`` do it (one ``ListObjectsV2`` page of 1,000 with a delimiter), and
listed whole the naive way (paginate everything, keep every key). Requests are counted at the HTTP layer,
memory is traced with tracemalloc (which also sees the in-process sandbox's own work, alike for both ways).
The objects are put into moto's backend directly: 100,000 signed PUTs would take minutes and measure nothing
this benchmark is about. moto scans the whole bucket for every page, so the naive whole listing of 100,000
keys takes about two minutes here: that is the point.

Run: ``python benchmarks/browse_first_page.py [--objects 100000]``
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from moto.s3.models import s3_backends

from mlspace_s3magic.core.browse import list_level
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.sandbox.server import Sandbox
from mlspace_s3magic.sandbox.world import PARTNER_ACCOUNT, SHARED_BUCKET


def _seed(prefix: str, count: int) -> None:
    backend = s3_backends[PARTNER_ACCOUNT]["aws"]
    for index in range(count):
        backend.put_object(SHARED_BUCKET, f"{prefix}part-{index:06d}.json", b"{}", disable_notification=True)


def _measure(run: Callable[[], Any], s3: Any) -> tuple[int, float, int, Any]:
    """Requests sent, seconds, peak bytes allocated while running, and the result."""
    requests = 0

    def count(**_: Any) -> None:
        nonlocal requests
        requests += 1

    s3.meta.events.register("before-send.s3", count)
    tracemalloc.start()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    s3.meta.events.unregister("before-send.s3", count)
    return requests, elapsed, peak, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000, help="objects under the big prefix")
    args = parser.parse_args()

    sandbox = Sandbox()
    state = sandbox.start()
    try:
        sizes = {"small/": args.objects // 10, "big/": args.objects}
        seeding = time.perf_counter()
        for prefix, count in sizes.items():
            _seed(prefix, count)
        print(f"seeded {sum(sizes.values()):,} objects in {time.perf_counter() - seeding:.1f} s")
        aws = state.aws_for("owner")
        s3 = aws.client("s3")
        list_level(aws, BucketRef(SHARED_BUCKET, "datasets/"))  # a warm connection, as in a notebook

        print(f"{'prefix':<8} {'objects':>8} {'how':<26} {'requests':>8} {'seconds':>8} {'peak KiB':>9}")
        for prefix, count in sizes.items():
            ref = BucketRef(SHARED_BUCKET, prefix)
            requests, elapsed, peak, page = _measure(lambda ref=ref: list_level(aws, ref), s3)
            shown = len(page.objects)
            print(
                f"{prefix:<8} {count:>8,} {'first page (ours)':<26} {requests:>8} {elapsed:>8.2f} "
                f"{peak // 1024:>9,}  ({shown} entries shown)"
            )

            def everything(prefix: str = prefix) -> list[str]:
                pages = s3.get_paginator("list_objects_v2").paginate(Bucket=SHARED_BUCKET, Prefix=prefix)
                return [item["Key"] for page in pages for item in page.get("Contents", [])]

            requests, elapsed, peak, keys = _measure(everything, s3)
            print(
                f"{prefix:<8} {count:>8,} {'whole prefix (naive)':<26} {requests:>8} {elapsed:>8.2f} "
                f"{peak // 1024:>9,}  ({len(keys):,} keys held)"
            )
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
