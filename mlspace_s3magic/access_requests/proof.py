"""Proving a notebook's AWS identity to the admin endpoint without sending its credentials.

The notebook signs, but does not send, an STS ``GetCallerIdentity`` request that also signs a header naming
the admin endpoint (its *audience*). The endpoint replays that request to its own STS endpoint and trusts only
the ARN STS returns, so the proof cannot be redirected to another endpoint, altered, or used for another call.

The proof carries the SigV4 headers, including ``X-Amz-Security-Token`` for temporary credentials, as STS
requires. It never carries the secret key, but anyone holding it can replay it to that audience until it goes
stale (minutes): send it only over loopback or TLS, and never log it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from mlspace_s3magic.core.aws import Aws, aws_call

PROOF_SCHEME = "S3AccessProof"
PROOF_VERSION = 1
AUDIENCE_HEADER = "X-S3Access-Audience"
PROOF_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
# STS's global endpoint signs in us-east-1 whatever region the client is configured for.
GLOBAL_STS_HOST = "sts.amazonaws.com"
GLOBAL_STS_REGION = "us-east-1"


class MalformedProof(ValueError):
    """The proof is not in the wire format; the message says which part, never its content."""


def make_proof(aws: Aws, audience: str, *, now: datetime | None = None) -> str:
    """The ``Authorization`` header value proving ``aws``'s identity to the endpoint named ``audience``.

    ``audience`` must be the endpoint's configured identity (usually its base URL). ``now`` sets the signing
    time; the proof is accepted for a few minutes around it.
    """
    sts = aws.client("sts")
    url = str(sts.meta.endpoint_url).rstrip("/") + "/"
    host = host_of(url)
    region = GLOBAL_STS_REGION if host == GLOBAL_STS_HOST else aws.region
    with aws_call(sts, "signing an identity proof"):
        credentials = aws.frozen_credentials()
    headers = sign_request(
        credentials,
        url=url,
        region=region,
        headers={"Host": host, "Content-Type": CONTENT_TYPE, AUDIENCE_HEADER: audience},
        body=PROOF_BODY,
        now=now or datetime.now(UTC),
    )
    return f"{PROOF_SCHEME} {encode_proof(headers, PROOF_BODY)}"


def sign_request(
    credentials: ReadOnlyCredentials,
    *,
    url: str,
    region: str,
    headers: Mapping[str, str],
    body: str,
    now: datetime,
) -> dict[str, str]:
    """SigV4-sign ``POST url`` for STS at ``now``; return every header sent, ``Authorization`` included.

    ``SigV4Auth.add_auth`` reads the clock itself, so its steps are taken here with a chosen timestamp.
    """
    request = AWSRequest(method="POST", url=url, data=body.encode(), headers=dict(headers))
    stamp = now.astimezone(UTC).strftime(SIGV4_TIMESTAMP)
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    if credentials.token:
        request.headers["X-Amz-Security-Token"] = credentials.token
    signer = SigV4Auth(credentials, "sts", region)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signed = signer.signed_headers(signer.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, SignedHeaders={signed}, Signature={signature}"
    )
    return {name: str(value) for name, value in request.headers.items()}


def host_of(url: str) -> str:
    """The ``Host`` value SigV4 signs for ``url``: lower case, without a default port (as botocore does)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default_port) else f"{host}:{parts.port}"


def encode_proof(headers: Mapping[str, str], body: str) -> str:
    """The wire format: base64url (unpadded) of ``{"v": 1, "headers": {...}, "body": "..."}``."""
    document = {"v": PROOF_VERSION, "headers": dict(headers), "body": body}
    data = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_proof(value: str) -> tuple[dict[str, str], str]:
    """The headers and body of an encoded proof; raises ``MalformedProof`` naming what is wrong."""
    try:
        data = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        document = json.loads(data)
    except (binascii.Error, ValueError):
        raise MalformedProof("the proof is not base64url-encoded JSON") from None
    if not isinstance(document, dict):
        raise MalformedProof("the proof is not a JSON object")
    if document.get("v") != PROOF_VERSION:
        raise MalformedProof(f"the proof's version is not {PROOF_VERSION}")
    headers, body = document.get("headers"), document.get("body")
    if not isinstance(headers, dict) or not all(
        isinstance(name, str) and isinstance(text, str) for name, text in headers.items()
    ):
        raise MalformedProof("the proof has no 'headers' object of strings")
    if not isinstance(body, str):
        raise MalformedProof("the proof has no 'body' string")
    return headers, body
