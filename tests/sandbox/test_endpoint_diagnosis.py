"""A check asks the admin endpoint, which reads every layer: its blockers are proven, its answer to a
requester holds no partner document or statement id, and a bucket that does not exist looks like one the
caller cannot reach. Without the endpoint, the notebook's own reading answers and says so."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.access_requests.client import AdminClient, AdminUnreachable
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.admin_endpoint import AdminEndpoint, serve_admin_endpoint
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import READABLE_BUCKET, SHARED_BUCKET
from mlspace_s3magic.session import S3AccessSession, SessionSettings

from ..admin.conftest import free_port


@pytest.fixture
def endpoint(
    sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AdminEndpoint]:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))  # the client's outbox
    folder = tmp_path / "state"
    sandbox.save(folder)
    with serve_admin_endpoint(folder) as running:
        yield running


def _check(
    sandbox: SandboxState, principal: str, target: str, admin_url: str, *, diagnose_timeout: float = 60.0
) -> dict[str, Any]:
    # A slow machine must not turn the endpoint's answer into the notebook's own: wait for it.
    settings = SessionSettings(admin_url=admin_url, diagnose_timeout=diagnose_timeout)
    session = S3AccessSession(settings, aws=sandbox.aws_for(principal))
    try:
        ref = parse_bucket_reference(target)
        return session.checker.check(ref, owner_account=session.owner_account(ref.bucket)).to_dict()
    finally:
        session.close()


def test_alice_gets_proven_blockers_from_the_endpoint(sandbox: SandboxState, endpoint: AdminEndpoint) -> None:
    report = _check(sandbox, "alice@demo", SHARED_BUCKET, endpoint.url)
    assert report["diagnosed_by"] == "endpoint"
    assert report["unreadable_layers"] == []
    for capability in ("list", "read"):
        verdict = report["capabilities"][capability]
        assert verdict["verdict"] == "denied"
        assert set(verdict["blocked_by"]) == {"identity", "boundary", "bucket-policy"}
        assert verdict["evaluation"]["unverified"] == []
    assert any("An admin can grant this" in note for note in report["notes"])


def test_the_requester_sees_no_partner_statement_or_document(
    sandbox: SandboxState, endpoint: AdminEndpoint
) -> None:
    owner = sandbox.aws_for("owner").client("s3")
    policy = json.loads(owner.get_bucket_policy(Bucket=READABLE_BUCKET)["Policy"])
    sids = [statement["Sid"] for statement in policy["Statement"] if "Sid" in statement]
    assert sids, "the partner's policy should carry statement ids for this test to mean anything"
    report = _check(sandbox, "alice@demo", READABLE_BUCKET, endpoint.url)
    assert report["diagnosed_by"] == "endpoint"
    assert report["capabilities"]["read"]["verdict"] == "allowed"
    text = json.dumps(report)
    for sid in sids:
        assert sid not in text
    for statement in policy["Statement"]:
        assert json.dumps(statement) not in text


def test_a_missing_bucket_looks_like_one_bob_cannot_reach(
    sandbox: SandboxState, endpoint: AdminEndpoint
) -> None:
    owner = sandbox.aws_for("owner").client("s3")
    owner.create_bucket(Bucket="partner-unlisted-data")  # exists, not registered: the endpoint cannot read it
    client = AdminClient(endpoint.url, aws=sandbox.aws_for("bob@demo"))
    try:
        unlisted = client.diagnose("partner-unlisted-data/x/")
        missing = client.diagnose("partner-no-such-bucket/x/")
    finally:
        client.close()
    assert unlisted.pop("bucket") == "partner-unlisted-data"
    assert missing.pop("bucket") == "partner-no-such-bucket"
    assert unlisted == missing
    assert "NoSuchBucket" not in json.dumps(missing)
    assert missing["capabilities"]["read"]["decision"] in ("implicit_deny", "undecided")


def test_an_unreachable_endpoint_leaves_the_notebook_reading_said_in_one_line(sandbox: SandboxState) -> None:
    report = _check(sandbox, "alice@demo", SHARED_BUCKET, f"http://127.0.0.1:{free_port()}")
    assert report["diagnosed_by"] == "notebook"
    fallback = [note for note in report["notes"] if "admin endpoint could not diagnose" in note]
    assert len(fallback) == 1 and "\n" not in fallback[0]
    assert report["capabilities"]["read"]["verdict"] == "denied"


def test_an_endpoint_answering_nonsense_leaves_the_notebook_reading(sandbox: SandboxState) -> None:
    """A 200 that is not JSON (a proxy's page, say) is no diagnosis: the check falls back, it never fails."""

    class Nonsense(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>sign in</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Nonsense)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        report = _check(sandbox, "alice@demo", SHARED_BUCKET, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert report["diagnosed_by"] == "notebook"
    assert any("admin endpoint could not diagnose" in note for note in report["notes"])


def test_the_configured_wait_bounds_the_endpoint_diagnosis(sandbox: SandboxState) -> None:
    """S3Access.diagnose_timeout is how long a check waits for the endpoint: an answer within it is taken,
    one later is given up on (and the check answers from its own reading)."""
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(1.0)  # answers after a second, or when the test ends
            body = b'{"diagnosed": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    patient = S3AccessSession(
        SessionSettings(admin_url=url, diagnose_timeout=30.0), aws=sandbox.aws_for("alice@demo")
    )
    hasty = S3AccessSession(
        SessionSettings(admin_url=url, diagnose_timeout=0.2), aws=sandbox.aws_for("alice@demo")
    )
    try:
        assert patient.admin().diagnose(SHARED_BUCKET) == {"diagnosed": True}
        with pytest.raises(AdminUnreachable):
            hasty.admin().diagnose(SHARED_BUCKET)
        report = _check(sandbox, "alice@demo", SHARED_BUCKET, url, diagnose_timeout=0.2)
    finally:
        release.set()
        server.shutdown()
        patient.close()
        hasty.close()
    assert report["diagnosed_by"] == "notebook"
    assert any("admin endpoint could not diagnose" in note for note in report["notes"])
