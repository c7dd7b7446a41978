"""Identity proofs as a notebook makes them: signed for STS, naming their audience and their one call,
carrying no secret.

SigV4 signs exactly the headers listed in ``SignedHeaders`` (AWS, "Create a signed AWS API request", task 1:
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html), so a value the
endpoint relies on (audience, method, path, body hash) must be one of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import httpx
import pytest

from mlspace_s3magic.access_requests.proof import (
    AUDIENCE_HEADER,
    BODY_HASH_HEADER,
    METHOD_HEADER,
    PATH_HEADER,
    PROOF_BODY,
    PROOF_SCHEME,
    Call,
    MalformedProof,
    decode_proof,
    encode_proof,
    host_of,
    make_proof,
)
from mlspace_s3magic.core.aws import Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.errors import CredentialsMissing
from mlspace_s3magic.sandbox.state import SandboxState

AUDIENCE = "http://127.0.0.1:9999"
SIGNED_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CALL = Call.of("POST", "/v1/requests?dry=1", b'{"bucket": "BucketToBeShared"}')


def _parts(proof: str) -> tuple[dict[str, str], str]:
    scheme, _, value = proof.partition(" ")
    assert scheme == PROOF_SCHEME
    return decode_proof(value)


def test_a_proof_signs_the_audience_host_and_date_and_carries_no_secret(sandbox: SandboxState) -> None:
    alice = sandbox.principal("alice@demo").credentials
    headers, body = _parts(make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=SIGNED_AT))
    assert body == PROOF_BODY
    assert headers[AUDIENCE_HEADER] == AUDIENCE
    assert headers["Host"] == host_of(sandbox.endpoint_url)
    assert headers["X-Amz-Date"] == "20260115T120000Z"
    assert headers["X-Amz-Security-Token"] == alice.session_token
    authorization = headers["Authorization"]
    assert authorization.startswith(
        f"AWS4-HMAC-SHA256 Credential={alice.access_key_id}/20260115/us-east-1/sts/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-s3access-audience;"
        "x-s3access-content-sha256;x-s3access-method;x-s3access-path, Signature="
    )
    assert alice.secret_access_key not in json.dumps(headers)


def test_a_proof_names_its_one_call_in_signed_headers(sandbox: SandboxState) -> None:
    """Method, path with query (as sent) and the body's SHA-256, each a header the signature covers."""
    headers, _ = _parts(make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=SIGNED_AT))
    assert headers[METHOD_HEADER] == "POST"
    assert headers[PATH_HEADER] == "/v1/requests?dry=1"
    assert headers[BODY_HASH_HEADER] == hashlib.sha256(b'{"bucket": "BucketToBeShared"}').hexdigest()
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {METHOD_HEADER.lower(), PATH_HEADER.lower(), BODY_HASH_HEADER.lower()} <= set(signed)


def test_a_call_without_a_body_hashes_no_bytes() -> None:
    call = Call.of("get", "/v1/buckets")
    assert (call.method, call.path) == ("GET", "/v1/buckets")
    assert call.body_sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_sts_accepts_the_proof_as_it_is(sandbox: SandboxState) -> None:
    """The signed request, with its call headers, is one STS answers; moto ignores the date, so an old
    signing time is fine."""
    headers, body = _parts(make_proof(sandbox.aws_for("bob@demo"), AUDIENCE, CALL, now=SIGNED_AT))
    response = httpx.post(sandbox.endpoint_url + "/", headers=headers, content=body.encode(), timeout=5)
    assert response.status_code == 200
    assert sandbox.principal("bob@demo").arn in response.text


def test_the_current_time_is_the_default(sandbox: SandboxState) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    headers, _ = _parts(make_proof(sandbox.aws_for("admin"), AUDIENCE, CALL))
    signed = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert before <= signed <= datetime.now(UTC)
    assert "X-Amz-Security-Token" not in headers  # an IAM user's long-term keys have no session token


def test_without_credentials_the_error_says_where_to_get_them(sandbox: SandboxState) -> None:
    nobody = Aws(AwsSettings(region="us-east-1", endpoint_url=sandbox.endpoint_url))
    with pytest.raises(
        CredentialsMissing, match="No AWS credentials were found for signing an identity proof"
    ):
        make_proof(nobody, AUDIENCE, CALL)


@pytest.mark.parametrize(
    ("settings", "scope"),
    [
        (AwsSettings(region="eu-west-1"), "eu-west-1"),
        (AwsSettings(region="eu-west-1", endpoint_url="https://sts.amazonaws.com"), "us-east-1"),
    ],
)
def test_the_scope_region_is_the_one_sts_expects(settings: AwsSettings, scope: str) -> None:
    """Regional endpoints sign in their region; the global endpoint always signs in us-east-1."""
    aws = Aws(settings, StaticCredentials("AKIAEXAMPLEEXAMPLE00", "not-a-real-secret"))
    headers, _ = _parts(make_proof(aws, AUDIENCE, CALL, now=SIGNED_AT))
    assert f"/20260115/{scope}/sts/aws4_request" in headers["Authorization"]
    assert headers["Host"] == host_of(aws.client("sts").meta.endpoint_url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("https://STS.us-east-1.amazonaws.com:443/", "sts.us-east-1.amazonaws.com"),
        ("http://localhost:80", "localhost"),
        ("http://[::1]:8080", "[::1]:8080"),
    ],
)
def test_host_of_matches_what_sigv4_signs(url: str, host: str) -> None:
    assert host_of(url) == host


def test_the_wire_format_round_trips() -> None:
    headers = {"Host": "sts.amazonaws.com", AUDIENCE_HEADER: AUDIENCE}
    encoded = encode_proof(headers, PROOF_BODY)
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert decode_proof(encoded) == (headers, PROOF_BODY)


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!!not base64!!!", "not base64url-encoded JSON"),
        (base64.urlsafe_b64encode(b"not json").decode(), "not base64url-encoded JSON"),
        (_b64([1, 2]), "not a JSON object"),
        (_b64({"v": 2, "headers": {}, "body": ""}), "version is not 1"),
        (_b64({"v": 1, "body": PROOF_BODY}), "no 'headers' object"),
        (_b64({"v": 1, "headers": {"Host": 1}, "body": PROOF_BODY}), "no 'headers' object"),
        (_b64({"v": 1, "headers": {}}), "no 'body' string"),
    ],
)
def test_malformed_proofs_say_which_part_is_wrong(value: str, message: str) -> None:
    with pytest.raises(MalformedProof, match=message):
        decode_proof(value)


def test_making_a_proof_sends_nothing(sandbox: SandboxState) -> None:
    """A client makes a proof for every call, so making one must cost no round trip: signing is local."""
    aws = sandbox.aws_for("alice@demo")
    sent: list[str] = []
    aws.client("sts").meta.events.register("before-send", lambda request, **_: sent.append(request.url))
    proofs = {make_proof(aws, AUDIENCE, Call.of("GET", f"/v1/requests/{n}")) for n in range(20)}
    assert len(proofs) == 20 and sent == []
    aws.client("sts").get_caller_identity()  # the handler does see what the client sends
    assert len(sent) == 1
