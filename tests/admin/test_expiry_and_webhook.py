"""Grants expire on their own, and decisions reach a webhook without ever holding the endpoint up."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mlspace_s3magic.admin.server import expiring
from mlspace_s3magic.admin.webhook import Webhook
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.names import parse_bucket_reference

from .conftest import Endpoint, free_port


def _new(days: int | None = None) -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": "BucketToBeShared",
            "access": "read",
            "days": days,
            "reason": "a short study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )


def test_a_grant_past_its_days_is_revoked_as_expired(endpoint: Endpoint) -> None:
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    filed = alice.submit(_new(days=1))
    assert filed is not None
    admin.act(filed.id, "approve")
    assert admin.act(filed.id, "apply").status is RequestStatus.APPLIED
    assert endpoint.service.expire_due() == []  # not yet
    endpoint.service.clock = lambda: datetime.now(UTC) + timedelta(days=1, minutes=1)
    (expired,) = endpoint.service.expire_due()
    assert expired.status is RequestStatus.EXPIRED
    assert admin.audit(filed.id)[-1].actor == "expiry"
    check = Checker(endpoint.state.aws_for("alice@demo")).check(parse_bucket_reference("BucketToBeShared"))
    assert check.verdict("read") is Verdict.DENIED


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[dict[str, Any]]]]:
    """A loopback webhook receiver that records what it is sent."""
    received: queue.Queue[dict[str, Any]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()


def test_new_requests_and_decisions_reach_the_webhook(
    endpoint: Endpoint, receiver: tuple[str, queue.Queue[dict[str, Any]]]
) -> None:
    url, received = receiver
    endpoint.service.webhook = Webhook(url)
    filed = endpoint.client("alice@demo").submit(_new())
    assert filed is not None
    endpoint.client("admin").act(filed.id, "deny", reason="not for this project")
    events = [received.get(timeout=10), received.get(timeout=10)]
    assert [(e["event"], e["request"]["id"]) for e in events] == [
        ("submitted", filed.id),
        ("denied", filed.id),
    ]
    assert "plan" not in events[0]["request"]
    assert events[1]["request"]["decision_reason"] == "not for this project"
    endpoint.service.webhook.close()


def test_a_dead_webhook_does_not_hold_up_submissions(endpoint: Endpoint) -> None:
    hook = Webhook(f"http://127.0.0.1:{free_port()}/gone", backoff=0.01)
    endpoint.service.webhook = hook
    alice = endpoint.client("alice@demo")
    for index in range(4):  # distinct prefixes, so none is a pending duplicate of another
        new = NewAccessRequest.model_validate({**_new().model_dump(), "prefix": f"part{index}/"})
        assert alice.submit(new) is not None
    assert len(endpoint.service.store.list_requests()) == 4
    hook.close()


def test_the_expiry_loop_runs_rounds_until_its_block_ends() -> None:
    """`admin serve` and the demo's endpoint both revoke due grants through `expiring`."""
    rounds: queue.Queue[int] = queue.Queue()

    class CountingService:
        calls = 0

        def housekeeping(self) -> list[Any]:
            self.calls += 1
            rounds.put(self.calls)
            if self.calls == 1:
                raise RuntimeError("a failed round")  # must not end the loop
            return []

    with expiring(CountingService(), 0.01):  # type: ignore[arg-type]
        assert [rounds.get(timeout=5) for _ in range(3)] == [1, 2, 3]
    time.sleep(0.05)
    settled = rounds.qsize()
    time.sleep(0.1)
    assert rounds.qsize() == settled, "the loop went on after its block ended"
