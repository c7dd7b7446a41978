"""Proving a notebook's AWS identity to the admin endpoint without sending its credentials.

The notebook signs, but does not send, an STS ``GetCallerIdentity`` request that also signs headers naming
the admin endpoint (its *audience*) and the one HTTP call the proof is for: its method, its path with query
(relative to the endpoint's URL, exactly as sent) and the SHA-256 of its body. The endpoint checks those
against the call it received, then replays the request to its own STS endpoint and trusts only the ARN STS
returns. SigV4 covers every header listed in ``SignedHeaders`` (AWS, "Create a signed AWS API request":
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html), so a proof
cannot be redirected to another endpoint, altered, or used for another route, method or body.

The proof carries the SigV4 headers, including ``X-Amz-Security-Token`` for temporary credentials, as STS
requires. It never carries the secret key, and the endpoint accepts it for 2 minutes after its signing time
for that one call only; still, send it only over loopback or TLS, and never log it. Signing is local (no
network), so a client makes one proof per call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from mlspace_s3magic.core.aws import Aws, aws_call
from mlspace_s3magic.core.errors import InvalidInput

PROOF_SCHEME = "S3AccessProof"
PROOF_VERSION = 1
AUDIENCE_HEADER = "X-S3Access-Audience"
# The call a proof is bound to, each a signed header: the method, the path with query, the body's SHA-256.
METHOD_HEADER = "X-S3Access-Method"
PATH_HEADER = "X-S3Access-Path"
BODY_HASH_HEADER = "X-S3Access-Content-SHA256"
PROOF_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
# STS's global endpoint signs in us-east-1 whatever region the client is configured for.
GLOBAL_STS_HOST = "sts.amazonaws.com"
GLOBAL_STS_REGION = "us-east-1"


class MalformedProof(InvalidInput, ValueError):
    """The proof is not in the wire format; the message says which part, never its content."""


@dataclass(frozen=True)
class Call:
    """The one HTTP call to the endpoint a proof is made for.

    ``path`` is the path with its query (``/v1/diagnose?bucket=b``), relative to the endpoint's URL and
    percent-encoded exactly as sent; ``body_sha256`` is the lower-case hex SHA-256 of the body's bytes (of
    no bytes for a call without a body).
    """

    method: str
    path: str
    body_sha256: str

    @classmethod
    def of(cls, method: str, path: str, body: bytes = b"") -> Call:
        return cls(method.upper(), path, hashlib.sha256(body).hexdigest())

    def headers(self) -> dict[str, str]:
        """The headers a proof signs to name this call."""
        return {METHOD_HEADER: self.method, PATH_HEADER: self.path, BODY_HASH_HEADER: self.body_sha256}


def make_proof(aws: Aws, audience: str, call: Call, *, now: datetime | None = None) -> str:
    """The ``Authorization`` header value proving ``aws``'s identity to the endpoint named ``audience``, for
    ``call`` only.

    ``audience`` must be the endpoint's configured identity (usually its base URL). ``now`` sets the signing
    time; the endpoint accepts the proof for 2 minutes after it. No network call: the credentials are the
    session's (refreshed only when temporary ones are about to expire) and the signature is computed here.
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
        headers={"Host": host, "Content-Type": CONTENT_TYPE, AUDIENCE_HEADER: audience, **call.headers()},
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
