"""Credential and connection failures become errors that say what to do, never tracebacks or secrets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlspace_s3magic.core.aws import Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.errors import (
    CredentialsExpired,
    CredentialsMissing,
    CredentialsRejected,
    EndpointUnreachable,
)
from mlspace_s3magic.core.identity import whoami
from mlspace_s3magic.sandbox.state import SandboxState

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"


def _sts_error(code: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>The security token included in the request is expired</Message>"
        "</Error><RequestId>r-1</RequestId></ErrorResponse>"
    ).encode()


@pytest.fixture
def expired_sts() -> Iterator[str]:
    """A loopback endpoint that answers every call as STS does for an expired session token."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = _sts_error("ExpiredToken")
            self.send_response(400)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _aws(endpoint: str, credentials: StaticCredentials | None) -> Aws:
    return Aws(AwsSettings(region="us-east-1", endpoint_url=endpoint, max_attempts=1), credentials)


def test_expired_session_says_so_and_how_to_renew(expired_sts: str) -> None:
    with pytest.raises(CredentialsExpired) as error:
        whoami(_aws(expired_sts, StaticCredentials("ASIAEXPIRED", SECRET, TOKEN)))
    message = str(error.value)
    assert "expired" in message
    assert "ExpiredToken" in message
    assert expired_sts in message
    assert SECRET not in message and TOKEN not in message


def test_no_credentials_says_where_they_come_from() -> None:
    with pytest.raises(CredentialsMissing) as error:
        whoami(_aws("http://127.0.0.1:9", None))
    assert "AWS_ACCESS_KEY_ID" in str(error.value)
    assert "s3access sandbox env" in str(error.value)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_endpoint_is_named() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(EndpointUnreachable) as error:
        whoami(_aws(endpoint, StaticCredentials("AKIAX", SECRET)))
    assert endpoint in str(error.value)
    assert SECRET not in str(error.value)


def test_wrong_secret_is_rejected_without_echoing_it(sandbox: SandboxState) -> None:
    alice = sandbox.principal("alice@demo").credentials
    forged = StaticCredentials(alice.access_key_id, SECRET, alice.session_token)
    with pytest.raises(CredentialsRejected) as error:
        whoami(_aws(sandbox.endpoint_url, forged))
    assert "SignatureDoesNotMatch" in str(error.value)
    assert SECRET not in str(error.value)
    assert alice.secret_access_key not in str(error.value)


def test_unknown_profile_is_explained() -> None:
    with pytest.raises(CredentialsMissing, match="profile 'nope' is not in your AWS config"):
        Aws(AwsSettings(profile="nope")).client("sts")


def test_errors_render_in_ipython_as_one_line() -> None:
    error = CredentialsExpired("Your AWS session has expired.")
    assert error._render_traceback_() == ["CredentialsExpired: Your AWS session has expired."]


def test_clients_are_made_once_per_service(sandbox: SandboxState) -> None:
    aws = sandbox.aws_for("alice@demo")
    assert aws.client("s3") is aws.client("s3")
    assert aws.client("s3") is not aws.client("sts")
    assert aws.client("s3").meta.config.s3["addressing_style"] == "path"
