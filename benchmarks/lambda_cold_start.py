"""A Lambda cold start of the admin endpoint: importing the handler module, then answering the first request.

Each run is a fresh Python process, as a new Lambda instance is. It imports
``mlspace_s3magic.admin.aws_lambda`` (timed), then answers an API Gateway REST proxy event for
``GET /v1/buckets`` carrying alice's identity proof (timed: building the service from the environment,
its clients, the DynamoDB store's table check, and the proof's verification with STS), then a second such
event (a warm instance, for contrast). The sandbox runs in its own process, with the store's DynamoDB table
made beforehand (CloudFormation makes it in an account). Figures are the median of the runs, wall clock and
the process's CPU time. Target (issue): import under 1 s, first answer under 1.5 s.

Run: ``python benchmarks/lambda_cold_start.py [--runs 7]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from processes import sandbox_process

from mlspace_s3magic.access_requests.proof import Call, make_proof
from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.sandbox.admin_endpoint import ADMIN_ARN_PATTERN, ADMIN_PRINCIPAL
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT

API_HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
AUDIENCE = f"https://{API_HOST}/prod"
IMPORT_TARGET, FIRST_TARGET = 1.0, 1.5
# The fresh process: its own clock readings around the import and each event, as JSON on stdout.
CHILD = """
import json, sys, time
events = json.load(sys.stdin)
wall, cpu = time.perf_counter(), time.process_time()
from mlspace_s3magic.admin.aws_lambda import handler
figures = {"import": (time.perf_counter() - wall, time.process_time() - cpu)}
for name, event in zip(("first", "second"), events):
    wall, cpu = time.perf_counter(), time.process_time()
    answer = handler(event, None)
    figures[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    figures[name + "_status"] = answer["statusCode"]
print(json.dumps(figures))
"""


def buckets_event(state: SandboxState) -> dict[str, Any]:
    """``GET /prod/v1/buckets`` as the REST API hands it to the function, with alice's proof for it."""
    proof = make_proof(state.aws_for("alice@demo"), AUDIENCE, Call.of("GET", "/v1/buckets"))
    headers = {"Host": API_HOST, "Authorization": proof}
    return {
        "resource": "/{proxy+}",
        "path": "/v1/buckets",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "v1/buckets"},
        "stageVariables": None,
        "requestContext": {
            "path": "/prod/v1/buckets",
            "stage": "prod",
            "httpMethod": "GET",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "10.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


def function_environment(state: SandboxState, table: str) -> dict[str, str]:
    """The function's environment as deploy/endpoint.yaml sets it, with the admin's sandbox credentials."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_EC2_METADATA_DISABLED": "true"}
    for name, value in state.environment_for(ADMIN_PRINCIPAL).items():
        if value is not None:
            environment[name] = value
    return environment | {
        "AWS_REGION": state.region,
        "S3ACCESS_STORE_URL": f"dynamodb://{table}",
        "S3ACCESS_ACCOUNTS": MLSPACE_ACCOUNT,
        "S3ACCESS_ADMIN_ARN_PATTERNS": ADMIN_ARN_PATTERN,
        "S3ACCESS_AUDIENCE": AUDIENCE,
        "S3ACCESS_STS_ENDPOINT": state.endpoint_url,
    }


def cold_start(state: SandboxState, environment: dict[str, str]) -> dict[str, Any]:
    events = [buckets_event(state), buckets_event(state)]  # signed here: signing is local
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=json.dumps(events),
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["process"] = time.perf_counter() - started
    if figures["first_status"] != 200 or figures["second_status"] != 200:
        raise SystemExit(f"the function answered {figures['first_status']}/{figures['second_status']}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, sandbox_process(Path(folder) / "state") as state:
        table = f"s3access-cold-start-{uuid.uuid4().hex[:8]}"
        open_store(f"dynamodb://{table}", state.aws_for(ADMIN_PRINCIPAL)).close()
        environment = function_environment(state, table)
        cold_start(state, environment)  # the first run fills the OS's file cache; not counted
        runs = [cold_start(state, environment) for _ in range(args.runs)]

    def median(name: str, index: int) -> float:
        return statistics.median(run[name][index] for run in runs)

    print(f"Lambda cold start of the admin endpoint, median of {args.runs} fresh processes (seconds):")
    rows = [
        ("import the handler module", "import", IMPORT_TARGET),
        ("first GET /v1/buckets answer", "first", FIRST_TARGET),
        ("second answer (warm)", "second", None),
    ]
    for label, name, target in rows:
        verdict = (
            ""
            if target is None
            else f"   target < {target:.1f}: {'met' if median(name, 0) < target else 'MISSED'}"
        )
        print(f"  {label:30} wall {median(name, 0):6.3f}   cpu {median(name, 1):6.3f}{verdict}")
    total = statistics.median(run["import"][0] + run["first"][0] for run in runs)
    print(f"  {'import + first answer':30} wall {total:6.3f}")
    process = statistics.median(run["process"] for run in runs)
    print(f"  {'whole process (with Python)':30} wall {process:6.3f}")


if __name__ == "__main__":
    main()
