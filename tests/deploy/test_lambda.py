"""The admin endpoint as a Lambda function behind API Gateway's REST API, invoked in-process.

Calls go through the real client (:class:`AdminClient`, proving the sandbox principals' identities) and a
transport that does what API Gateway does with them: the function gets a REST proxy event whose ``path``
leaves the stage out and whose ``requestContext.path`` keeps it, and its answer goes back as the response.
The store is a DynamoDB table in the sandbox, so two instances share it and its lease as Lambdas would.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
from mangum import Mangum
from starlette.types import Receive, Scope, Send

from mlspace_s3magic.access_requests.client import AdminClient, AdminConflict
from mlspace_s3magic.access_requests.proof import Call, make_proof
from mlspace_s3magic.admin import aws_lambda
from mlspace_s3magic.admin.aws_lambda import (
    LambdaEndpoint,
    LambdaMisconfigured,
    SentPath,
    config_from_environment,
    handler,
)
from mlspace_s3magic.admin.lease import DynamoLeaseLock
from mlspace_s3magic.admin.server import build_service
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.admin_endpoint import ADMIN_ARN_PATTERN, ADMIN_PRINCIPAL
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    BOUNDARY_POLICY_NAME,
    MLSPACE_ACCOUNT,
    PARTITION,
    PARTNER_ACCOUNT,
    READABLE_BUCKET,
    SHARED_BUCKET,
    SHARED_BUCKETS,
)

API_HOST = "abc123defg.execute-api.us-east-1.amazonaws.com"
STAGE = "prod"
AUDIENCE = f"https://{API_HOST}/{STAGE}"
SOURCE_IP = "10.20.30.40"
BOUNDARY_ARN = f"arn:{PARTITION}:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
Function = Callable[[dict[str, Any], Any], dict[str, Any]]


def proxy_event(method: str, sent_path: str, *, headers: dict[str, str], body: bytes = b"") -> dict[str, Any]:
    """API Gateway's REST proxy event for a call to ``https://API_HOST`` + ``sent_path`` (stage first)."""
    path, _, query = sent_path.partition("?")
    assert path.startswith(f"/{STAGE}/"), path
    within = unquote(path[len(STAGE) + 1 :])  # the event's path: the stage left out, percent-decoded
    values = parse_qs(query, keep_blank_values=True)
    return {
        "resource": "/{proxy+}",
        "path": within,
        "httpMethod": method,
        "headers": {"Host": API_HOST, "X-Forwarded-Proto": "https", **headers},
        "multiValueHeaders": {"Host": [API_HOST], "X-Forwarded-Proto": ["https"]}
        | {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: value[-1] for name, value in values.items()} or None,
        "multiValueQueryStringParameters": values or None,
        "pathParameters": {"proxy": within.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": path,  # as sent, with the stage
            "stage": STAGE,
            "domainName": API_HOST,
            "apiId": API_HOST.split(".", 1)[0],
            "accountId": MLSPACE_ACCOUNT,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": SOURCE_IP},
        },
        "body": body.decode() if body else None,
        "isBase64Encoded": False,
    }


SCHEDULED = {
    "version": "0",
    "id": "5f0e0c31-0000-0000-0000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": MLSPACE_ACCOUNT,
    "time": "2026-12-03T06:00:00Z",
    "region": "us-east-1",
    "resources": [f"arn:aws:events:us-east-1:{MLSPACE_ACCOUNT}:rule/s3access-housekeeping"],
    "detail": {},
}


class ApiGateway(httpx.BaseTransport):
    """What the REST API does with a call: a proxy event for the function, and its answer back."""

    def __init__(self, function: Function) -> None:
        self.function = function

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        event = proxy_event(
            request.method, request.url.raw_path.decode("ascii"), headers=headers, body=request.read()
        )
        answer = self.function(event, None)
        return httpx.Response(answer["statusCode"], headers=answer["headers"], content=answer["body"])


def client(sandbox: SandboxState, principal: str, function: Function = handler) -> AdminClient:
    """The real client of ``principal``, its calls carried to ``function`` as API Gateway would."""
    admin_client = AdminClient(AUDIENCE, aws=sandbox.aws_for(principal))
    # Only the transport differs from a notebook's client: the URLs, proofs and bodies are its own.
    admin_client._http = httpx.Client(base_url=AUDIENCE, transport=ApiGateway(function))
    return admin_client


def _environment(sandbox: SandboxState, table: str) -> dict[str, str]:
    """The function's environment as deploy/endpoint.yaml sets it, with the admin's sandbox credentials."""
    credentials = {
        name: value for name, value in sandbox.environment_for(ADMIN_PRINCIPAL).items() if value is not None
    }
    return credentials | {
        "AWS_REGION": sandbox.region,
        "S3ACCESS_STORE_URL": f"dynamodb://{table}",
        "S3ACCESS_ACCOUNTS": MLSPACE_ACCOUNT,
        "S3ACCESS_ADMIN_ARN_PATTERNS": ADMIN_ARN_PATTERN,
        "S3ACCESS_AUDIENCE": AUDIENCE,
        "S3ACCESS_STS_ENDPOINT": sandbox.endpoint_url,
    }


@dataclass
class Deployed:
    sandbox: SandboxState
    environment: dict[str, str]

    def client(self, principal: str, function: Function = handler) -> AdminClient:
        return client(self.sandbox, principal, function)

    def instance(self, **lock: Any) -> LambdaEndpoint:
        """Another Lambda instance of the same function: its own clients, caches and lease holder."""
        config = config_from_environment(self.environment)
        service = build_service(config, self.sandbox.aws_for(ADMIN_PRINCIPAL))
        if lock:
            table = self.environment["S3ACCESS_STORE_URL"].removeprefix("dynamodb://")
            dynamodb = service.aws.client("dynamodb")
            service = AdminService(
                service.store,
                service.authenticator,
                service.aws,
                owner_sessions=service.owner_sessions,
                lock=DynamoLeaseLock(dynamodb, table, **lock),
            )
        return LambdaEndpoint(service)

    def boundary(self) -> dict[str, Any]:
        iam = self.sandbox.aws_for(ADMIN_PRINCIPAL).client("iam")
        version = iam.get_policy(PolicyArn=BOUNDARY_ARN)["Policy"]["DefaultVersionId"]
        version = iam.get_policy_version(PolicyArn=BOUNDARY_ARN, VersionId=version)["PolicyVersion"]
        document = version["Document"]
        return json.loads(document) if isinstance(document, str) else dict(document)


@pytest.fixture
def deployed(fresh_sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """The function configured as deployed, on a new table, with the sandbox's shared buckets registered."""
    table = f"s3access-lambda-{uuid.uuid4().hex[:12]}"
    environment = _environment(fresh_sandbox, table)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    aws_lambda._instance.cache_clear()  # a new Lambda instance: built from this environment
    running = Deployed(fresh_sandbox, environment)
    admin = running.client(ADMIN_PRINCIPAL)
    for bucket in SHARED_BUCKETS:
        admin.put_bucket(bucket)
    yield running
    aws_lambda._instance.cache_clear()
    fresh_sandbox.aws_for(ADMIN_PRINCIPAL).client("dynamodb").delete_table(TableName=table)


def _new(bucket: str, days: int | None = None) -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": bucket,
            "access": "read",
            "reason": "iris study for the demo project",
            "idempotency_key": uuid.uuid4().hex,
            **({"days": days} if days else {}),
        }
    )


def _alice_reads_the_shared_bucket(sandbox: SandboxState) -> Verdict:
    checker = Checker(sandbox.aws_for("alice@demo"))
    return checker.check(parse_bucket_reference(SHARED_BUCKET), owner_account=PARTNER_ACCOUNT).verdict("read")


def test_the_whole_loop_through_api_gateway(deployed: Deployed) -> None:
    alice, admin = deployed.client("alice@demo"), deployed.client(ADMIN_PRINCIPAL)
    assert _alice_reads_the_shared_bucket(deployed.sandbox) is Verdict.DENIED

    filed = alice.submit(_new(SHARED_BUCKET, days=7))
    assert filed is not None and filed.status is RequestStatus.PENDING
    assert [r.id for r in alice.requests()] == [filed.id]
    assert [r.id for r in admin.requests(status="pending")] == [filed.id]  # a query string, signed as sent
    plan = admin.show(filed.id).request.plan
    assert plan is not None
    assert {change["layer"] for change in plan["changes"]} == {"bucket-policy", "boundary", "identity"}

    assert admin.act(filed.id, "approve").status is RequestStatus.APPROVED
    applied = admin.act(filed.id, "apply")
    assert applied.status is RequestStatus.APPLIED, applied.result
    assert applied.result is not None and applied.result["verification"]["allowed"] is True

    assert _alice_reads_the_shared_bucket(deployed.sandbox) is Verdict.ALLOWED
    assert alice.diagnose(SHARED_BUCKET)["capabilities"]["read"]["allowed"] is True

    assert admin.act(filed.id, "revoke").status is RequestStatus.REVOKED
    assert _alice_reads_the_shared_bucket(deployed.sandbox) is Verdict.DENIED

    alice_arn = deployed.sandbox.principal("alice@demo").arn
    admin_arn = deployed.sandbox.principal(ADMIN_PRINCIPAL).arn
    assert [(entry.action, entry.actor) for entry in admin.audit(filed.id)] == [
        ("submit", alice_arn),
        ("approve", admin_arn),
        ("start-apply", admin_arn),
        ("apply", admin_arn),
        ("revoke", admin_arn),
    ]


_NO_PROOF = "no Authorization header; send S3AccessProof (an AWS identity proof) or Bearer (the admin token)"


def _answer(function: Function, event: dict[str, Any]) -> tuple[int, Any]:
    answer = function(event, None)
    return answer["statusCode"], json.loads(answer["body"])


def test_a_call_without_a_proof_or_with_one_for_another_audience_or_path_is_refused(
    deployed: Deployed,
) -> None:
    status, body = _answer(handler, proxy_event("GET", f"/{STAGE}/v1/buckets", headers={}))
    assert (status, body["detail"]) == (401, _NO_PROOF)
    alice = deployed.sandbox.aws_for("alice@demo")
    for audience, signed in [
        (f"https://other.execute-api.us-east-1.amazonaws.com/{STAGE}", "/v1/buckets"),  # another API
        (f"https://{API_HOST}", "/v1/buckets"),  # the host without the stage: not the configured URL
        (AUDIENCE, f"/{STAGE}/v1/buckets"),  # the path must be relative to the audience URL
    ]:
        proof = make_proof(alice, audience, Call.of("GET", signed))
        event = proxy_event("GET", f"/{STAGE}/v1/buckets", headers={"Authorization": proof})
        status, body = _answer(handler, event)
        assert status == 401, (audience, signed, body)
    proof = make_proof(alice, AUDIENCE, Call.of("GET", "/v1/buckets"))
    event = proxy_event("GET", f"/{STAGE}/v1/buckets", headers={"Authorization": proof})
    status, body = _answer(handler, event)
    assert status == 200 and {entry["bucket"] for entry in body} == {b.bucket for b in SHARED_BUCKETS}


async def _record_scope(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that answers with the path and raw path it was given."""
    seen = {"path": scope["path"], "raw_path": scope["raw_path"].decode(), "root_path": scope["root_path"]}
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


@pytest.mark.parametrize(
    ("audience", "event_path", "context_path", "expected"),
    [
        # The API's own host: the event's path leaves the stage out, the request context keeps it.
        (AUDIENCE, "/v1/requests/r-1", "/prod/v1/requests/r-1", "/v1/requests/r-1"),
        # A custom domain with a base path mapped to the stage: both keep the base path.
        ("https://admin.example.org/s3access", "/s3access/v1/buckets", "/s3access/v1/buckets", "/v1/buckets"),
        # A custom domain's root mapped to the stage.
        ("https://admin.example.org", "/v1/buckets", "/v1/buckets", "/v1/buckets"),
    ],
)
def test_the_app_sees_the_path_the_client_signed(
    audience: str, event_path: str, context_path: str, expected: str
) -> None:
    event = proxy_event("GET", f"/{STAGE}/v1/buckets", headers={})
    event["path"], event["requestContext"]["path"] = event_path, context_path
    answer = Mangum(SentPath(_record_scope, audience), lifespan="off")(event, None)
    assert json.loads(answer["body"]) == {"path": expected, "raw_path": expected, "root_path": ""}


def test_the_scheduled_event_expires_a_grant(deployed: Deployed, caplog: pytest.LogCaptureFixture) -> None:
    alice, admin = deployed.client("alice@demo"), deployed.client(ADMIN_PRINCIPAL)
    filed = alice.submit(_new(SHARED_BUCKET, days=1))
    assert filed is not None
    admin.act(filed.id, "approve")
    assert admin.act(filed.id, "apply").status is RequestStatus.APPLIED

    assert handler(SCHEDULED, None) == {"expired": []}  # not yet
    aws_lambda._instance().service.clock = lambda: datetime.now(UTC) + timedelta(days=1, minutes=1)
    with caplog.at_level(logging.INFO, logger=aws_lambda.__name__):
        assert handler(SCHEDULED, None) == {"expired": [filed.id]}
    assert f"1 grant(s) expired ({filed.id})" in caplog.text
    assert admin.show(filed.id).request.status is RequestStatus.EXPIRED
    assert _alice_reads_the_shared_bucket(deployed.sandbox) is Verdict.DENIED


def test_two_instances_applying_and_revoking_grants_on_one_boundary_take_turns(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = deployed.boundary()
    first, second = deployed.instance(), deployed.instance()
    held: list[tuple[float, float, int]] = []  # each lease: from its acquire to its release, and its token
    entered: dict[int, float] = {}
    real_enter, real_exit = DynamoLeaseLock.__enter__, DynamoLeaseLock.__exit__

    def enter(lock: DynamoLeaseLock) -> None:
        real_enter(lock)
        entered[id(lock)] = time.monotonic()

    def exit_(lock: DynamoLeaseLock, *failure: Any) -> None:
        assert lock.lease is not None
        held.append((entered.pop(id(lock)), time.monotonic(), lock.lease.token))
        real_exit(lock, *failure)

    monkeypatch.setattr(DynamoLeaseLock, "__enter__", enter)
    monkeypatch.setattr(DynamoLeaseLock, "__exit__", exit_)

    admin = deployed.client(ADMIN_PRINCIPAL, first)
    ids = []
    for user in ("alice@demo", "bob@demo"):
        filed = deployed.client(user, first).submit(_new(READABLE_BUCKET))
        assert filed is not None
        admin.act(filed.id, "approve")  # both planned against the same boundary
        ids.append(filed.id)

    def at_once(action: str) -> list[object]:
        """Both requests, one on each instance, started together; each one's status, or its error."""
        start = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def act(instance: LambdaEndpoint, request_id: str) -> None:
            own = deployed.client(ADMIN_PRINCIPAL, instance)
            # Mangum runs the app on the thread's event loop, as a Lambda's main thread has one.
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            start.wait()
            try:
                outcomes[request_id] = own.act(request_id, action).status
            except Exception as error:
                outcomes[request_id] = error
            finally:
                loop.close()

        threads = [threading.Thread(target=act, args=pair) for pair in zip((first, second), ids, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        return [outcomes.get(request_id) for request_id in ids]

    assert at_once("apply") == [RequestStatus.APPLIED, RequestStatus.APPLIED]
    for request_id in ids:  # both grants live, each verified by the evaluator over the live layers
        view = admin.show(request_id).request
        assert view.result is not None and view.result["verification"]["allowed"] is True
    assert READABLE_BUCKET in json.dumps(deployed.boundary())

    assert at_once("revoke") == [RequestStatus.REVOKED, RequestStatus.REVOKED]
    assert deployed.boundary() == original  # the last revoke saw the other's done: no room left behind

    writes = sorted(held)
    assert len(writes) >= 4 and [token for *_, token in writes] == sorted(token for *_, token in writes)
    for (_, released, _), (acquired, _, _) in itertools.pairwise(writes):
        assert released <= acquired  # one holder at a time, across both instances


class Clock:
    """The leases' clock: seconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_an_instance_whose_lease_was_taken_over_is_refused_before_it_writes(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    stalled = deployed.instance(lease_seconds=30.0, clock=clock)
    other = DynamoLeaseLock(
        deployed.sandbox.aws_for(ADMIN_PRINCIPAL).client("dynamodb"),
        deployed.environment["S3ACCESS_STORE_URL"].removeprefix("dynamodb://"),
        lease_seconds=30.0,
        clock=clock,
    )
    admin = deployed.client(ADMIN_PRINCIPAL, stalled)
    filed = deployed.client("alice@demo", stalled).submit(_new(SHARED_BUCKET))
    assert filed is not None
    admin.act(filed.id, "approve")
    before = deployed.boundary()

    store = stalled.service.store
    read = store.get

    def stall_then_read(request_id: str) -> Any:
        """The instance holds the lease, then stalls past it; another instance takes the lease over."""
        clock.now += 31.0
        other.__enter__()
        return read(request_id)

    monkeypatch.setattr(store, "get", stall_then_read)
    with pytest.raises(AdminConflict, match="another endpoint instance took it over"):
        admin.act(filed.id, "apply")
    monkeypatch.setattr(store, "get", read)
    other.__exit__(None, None, None)

    assert deployed.boundary() == before  # nothing written
    request = admin.show(filed.id).request
    assert request.status is RequestStatus.APPROVED
    assert [entry.action for entry in admin.audit(filed.id)] == ["submit", "approve"]  # nothing to repair
    assert admin.act(filed.id, "apply").status is RequestStatus.APPLIED  # free again: it applies


def test_the_configuration_comes_from_the_environment_and_the_audience_is_required() -> None:
    environment = {
        "AWS_REGION": "eu-west-1",
        "S3ACCESS_STORE_URL": "dynamodb://s3access",
        "S3ACCESS_ACCOUNTS": " 111111111111, 333333333333 ",
        "S3ACCESS_ADMIN_ARN_PATTERNS": "arn:aws:iam::111111111111:role/Admin*",
        "S3ACCESS_AUDIENCE": AUDIENCE + "/",
        "S3ACCESS_OWNER_EXTERNAL_ID": "mlspace-s3access",
    }
    config = config_from_environment(environment)
    assert config.audience == AUDIENCE
    assert config.accounts == ("111111111111", "333333333333")
    assert config.admin_arn_patterns == ("arn:aws:iam::111111111111:role/Admin*",)
    assert config.sts_endpoint == "https://sts.eu-west-1.amazonaws.com"  # the regional endpoint by default
    assert config.owner_external_id == "mlspace-s3access"
    assert config.webhook_url is None and config.token_file is None

    for missing in ("S3ACCESS_AUDIENCE", "S3ACCESS_STORE_URL", "AWS_REGION"):
        with pytest.raises(LambdaMisconfigured, match=missing):
            config_from_environment({k: v for k, v in environment.items() if k != missing})
    with pytest.raises(LambdaMisconfigured, match="https://"):
        config_from_environment(environment | {"S3ACCESS_AUDIENCE": f"http://{API_HOST}/{STAGE}"})


def test_importing_the_handler_needs_no_configuration_and_no_uvicorn() -> None:
    code = (
        "import sys; from mlspace_s3magic.admin.aws_lambda import handler; "
        "assert 'uvicorn' not in sys.modules, 'uvicorn imported'"
    )
    environment = {"PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=environment, timeout=60)
