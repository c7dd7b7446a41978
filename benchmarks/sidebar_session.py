"""What JupyterLab's sidebar costs in AWS round trips, with the server's one shared session against a naive
server that builds fresh clients for every route.

The sidebar's first view asks ``identity`` and ``buckets`` at once; a click on a bucket asks ``check``; a
second look at the list asks ``buckets`` again. Every AWS request costs a fixed delay, as from a notebook
far from AWS. Prints, per step, the sequential round trips on the critical path, the requests and the wall
time, for both servers, and the ratio of their totals.

Run: ``python benchmarks/sidebar_session.py [--delay-ms 50] [--as alice@demo]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from check_latency import DelayedRequests

from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.registry import save_registry_file
from mlspace_s3magic.sandbox.server import Sandbox
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import REGISTRY, SHARED_BUCKET
from mlspace_s3magic.session import S3AccessSession, SessionSettings

SHARED = parse_bucket_reference(SHARED_BUCKET)
Step = tuple[str, Callable[[], Any]]


def _session(state: SandboxState, principal: str, registry: Path, delays: DelayedRequests) -> S3AccessSession:
    """A session acting as ``principal`` whose every AWS request is delayed and recorded."""
    aws = state.aws_for(principal)
    delays.attach(aws)
    return S3AccessSession(SessionSettings(registry_path=registry), aws=aws)


def _steps(route: Callable[[], S3AccessSession]) -> list[Step]:
    """The sidebar's requests in the order a user makes them; ``route`` gives the session each one uses."""

    def first_view() -> None:
        with ThreadPoolExecutor(2) as pool:  # the sidebar sends both at once
            identity = pool.submit(lambda: route().checker.identity())
            buckets = pool.submit(lambda: route().buckets())
            identity.result(), buckets.result()

    return [
        ("open sidebar", first_view),
        ("open check", lambda: route().checker.check(SHARED, owner_account="222222222222")),
        ("list again", lambda: route().buckets()),
    ]


def _run(
    steps: list[tuple[str, Callable[[], Any]]], delays: DelayedRequests
) -> list[tuple[str, int, int, float]]:
    rows = []
    for label, step in steps:
        delays.reset()
        start = time.perf_counter()
        step()
        rows.append((label, delays.critical_path(), len(delays.calls), time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay-ms", type=float, default=50.0, help="delay added to every AWS request")
    parser.add_argument("--as", dest="principal", default="alice@demo", help="sandbox principal")
    args = parser.parse_args()
    delay = args.delay_ms / 1000

    sandbox = Sandbox()
    state = sandbox.start()
    try:
        with TemporaryDirectory() as folder:
            registry = Path(folder) / "registry.json"
            save_registry_file(registry, REGISTRY)
            shared_delays = DelayedRequests(delay)
            shared = _session(state, args.principal, registry, shared_delays)
            ours = _run(_steps(lambda: shared), shared_delays)
            shared.close()

            naive_delays = DelayedRequests(delay)
            made: list[S3AccessSession] = []

            def fresh() -> S3AccessSession:
                made.append(_session(state, args.principal, registry, naive_delays))
                return made[-1]

            naive = _run(_steps(fresh), naive_delays)
            for session in made:
                session.close()
    finally:
        sandbox.stop()

    print(f"sidebar as {args.principal}, {args.delay_ms:.0f} ms added to every AWS request")
    print(f"{'step':<13} {'server':<7} {'round trips':>11} {'requests':>9} {'wall ms':>8}")
    for (label, *mine), (_, *theirs) in zip(ours, naive, strict=True):
        for name, (trips, requests, elapsed) in (("shared", mine), ("naive", theirs)):
            print(f"{label:<13} {name:<7} {trips:>11} {requests:>9} {elapsed * 1000:>8.0f}")
    ours_total = sum(row[3] for row in ours)
    naive_total = sum(row[3] for row in naive)
    print(
        f"total: shared {ours_total * 1000:.0f} ms, {sum(r[2] for r in ours)} requests; naive "
        f"{naive_total * 1000:.0f} ms, {sum(r[2] for r in naive)} requests; naive / shared = "
        f"{naive_total / ours_total:.2f}x"
    )


if __name__ == "__main__":
    main()
