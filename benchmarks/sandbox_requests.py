"""What deciding every S3 request over every layer costs the sandbox, against moto's identity-only check.

Both runs start an in-process sandbox and time the same requests by alice (a one-key ListObjectsV2 and a
GetObject on ``partner-shared-readonly``, which every layer allows); the baseline is the same sandbox with
moto's own check left in place for S3 (identity policies only). Each run is a fresh process, so neither
inherits the other's caches. Prints wall and CPU milliseconds per request (client and server share the
process, as in the tests).

Run: ``python benchmarks/sandbox_requests.py [--requests 300] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

MODES = {
    "every layer (ours)": "ours",
    "identity only (moto)": "moto",
}


def _run(mode: str, requests: int) -> dict[str, float]:
    """One timed round in this process; ``moto`` leaves moto's identity-only check in place."""
    from mlspace_s3magic.sandbox import server

    if mode == "moto":
        server.authorization.install = lambda: None  # the baseline: never replace moto's check
    sandbox = server.Sandbox(port=0)
    state = sandbox.start()
    try:
        s3 = state.aws_for("alice@demo").client("s3")
        for _ in range(20):  # connections and moto's first requests of each kind
            s3.list_objects_v2(Bucket="partner-shared-readonly", MaxKeys=1)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests // 2):
            s3.list_objects_v2(Bucket="partner-shared-readonly", MaxKeys=1)
            s3.get_object(Bucket="partner-shared-readonly", Key="README.txt")["Body"].read()
        count = 2 * (requests // 2)
        return {
            "wall_ms": (time.perf_counter() - wall) / count * 1000,
            "cpu_ms": (time.process_time() - cpu) / count * 1000,
        }
    finally:
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per mode")
    parser.add_argument("--child", choices=sorted(MODES.values()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_run(args.child, args.requests)))
        return
    figures: dict[str, list[dict[str, float]]] = {label: [] for label in MODES}
    for _ in range(args.rounds):
        for label, mode in MODES.items():
            command = [sys.executable, __file__, "--child", mode, "--requests", str(args.requests)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            figures[label].append(json.loads(output.strip().splitlines()[-1]))
    print(f"{args.requests} S3 requests by alice per round, {args.rounds} rounds, median per request:")
    medians = {}
    for label, rounds in figures.items():
        wall = statistics.median(r["wall_ms"] for r in rounds)
        cpu = statistics.median(r["cpu_ms"] for r in rounds)
        medians[label] = wall
        print(f"  {label:<22} {wall:6.2f} ms wall  {cpu:6.2f} ms CPU")
    ours, moto = medians["every layer (ours)"], medians["identity only (moto)"]
    print(f"  every layer / identity only: {ours / moto:.2f}x")


if __name__ == "__main__":
    main()
