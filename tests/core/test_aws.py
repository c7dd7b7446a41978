"""Credential and connection failures become errors that say what to do, never tracebacks or secrets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.exceptions import ClientError, NoRegionError

from mlspace_s3magic.core.aws import (
    Aws,
    AwsErrorAnswer,
    AwsSettings,
    StaticCredentials,
    aws_call,
    error_code,
    explain,
)
from mlspace_s3magic.core.errors import (
    CredentialsExpired,
    CredentialsMissing,
    CredentialsRejected,
    EndpointUnreachable,
    InvalidInput,
    RegionUnusable,
    UpstreamFailed,
    meaning,
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


def test_a_missing_region_is_ours_to_set_and_says_where() -> None:
    """botocore's NoRegionError is a setting of ours, not AWS failing: invalid input, with every place a
    region comes from."""
    error = explain(NoRegionError(), action="sts:GetCallerIdentity", endpoint="")
    assert isinstance(error, RegionUnusable) and meaning(error) is InvalidInput
    message = str(error)
    assert "No AWS region is set for sts:GetCallerIdentity" in message
    for where in ("AWS_REGION", "AWS_DEFAULT_REGION", "--region", "%config S3Access.region"):
        assert where in message


def test_a_region_that_is_no_region_name_is_refused_before_any_call() -> None:
    with pytest.raises(RegionUnusable, match=r"'us east 1' is not an AWS region name.*AWS_DEFAULT_REGION"):
        Aws(AwsSettings(region="us east 1"), StaticCredentials("AKIAX", SECRET)).client("sts")


def _answer(code: str, message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message, "StringToSign": "AWS4-HMAC-SHA256\nsigned"},
            "ResponseMetadata": {"RequestId": "REQ-1234", "HTTPHeaders": {"x-amz-id-2": "HOST-5678"}},
        },
        "PutBucketPolicy",
    )


def test_an_unclassified_answer_carries_only_awss_code_and_message() -> None:
    raw = _answer("MalformedPolicy", "Policy has invalid resource\x1b[2K\r\u202e")
    error = explain(raw, action="s3:PutBucketPolicy", endpoint="http://127.0.0.1:5000")
    assert isinstance(error, AwsErrorAnswer) and meaning(error) is UpstreamFailed
    assert str(error) == (
        "s3:PutBucketPolicy at http://127.0.0.1:5000 failed: AWS answered MalformedPolicy: "
        "Policy has invalid resource[2K"
    )
    for leak in ("REQ-1234", "HOST-5678", "AWS4-HMAC", "An error occurred"):
        assert leak not in str(error)
    # Still the ClientError its caller decides on by code (a denial, a missing entity).
    assert isinstance(error, ClientError) and error_code(error) == "MalformedPolicy"
    assert error._render_traceback_() == [f"AwsErrorAnswer: {error}"]


def test_an_unclassified_answer_leaves_aws_call_as_ours(sandbox: SandboxState) -> None:
    """A shell shows it as an upstream failure; a caller catching ClientError still gets it."""
    s3 = sandbox.aws_for("alice@demo").client("s3")
    with pytest.raises(AwsErrorAnswer) as error, aws_call(s3, "s3:GetBucketPolicy"):
        s3.get_bucket_policy(Bucket="no-such-bucket-anywhere")
    assert isinstance(error.value, ClientError) and error_code(error.value) == "NoSuchBucket"
    assert str(error.value).startswith(f"s3:GetBucketPolicy at {sandbox.endpoint_url} failed: AWS answered ")
    assert "NoSuchBucket" in str(error.value)
