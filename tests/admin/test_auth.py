"""Caller authentication of the admin endpoint: real proofs pass, every forgery is refused with a reason.

A proof is a SigV4-signed STS request; SigV4 covers exactly the headers its ``SignedHeaders`` lists, with
``X-Amz-Date`` as the signing time and a credential scope of day/region/service (AWS, "Create a signed AWS
API request": https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
The tests below pin which headers a proof must sign (audience, host, date, and its call: method, path,
body hash), which it may never carry (hop-by-hop and framing ones), and how long it lives.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import botocore.auth
import httpx
import pytest
from botocore.credentials import ReadOnlyCredentials

from mlspace_s3magic.access_requests.proof import (
    AUDIENCE_HEADER,
    CONTENT_TYPE,
    PROOF_BODY,
    PROOF_SCHEME,
    Call,
    decode_proof,
    encode_proof,
    host_of,
    make_proof,
    sign_request,
)
from mlspace_s3magic.admin.auth import (
    Authenticator,
    AuthSettings,
    Caller,
    ForeignAccount,
    RateLimited,
    RateLimiter,
    Unauthenticated,
    create_admin_token,
)
from mlspace_s3magic.core.access import Requester
from mlspace_s3magic.core.aws import Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.mlspace import user_role_name
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT, PARTNER_ACCOUNT

AUDIENCE = "http://127.0.0.1:9999"
ADMIN_USER = f"arn:aws:iam::{MLSPACE_ACCOUNT}:user/admin"
ALICE_ROLE = user_role_name("demo", "alice")
# moto does not check X-Amz-Date, so proofs are signed at a fixed instant and checked "at" it.
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CALL = Call.of("GET", "/v1/requests")  # the call every proof here is made for, and checked against
Forge = Callable[[SandboxState], str]


def _settings(
    sandbox: SandboxState,
    *,
    admins: tuple[str, ...] = (ADMIN_USER,),
    token_file: Path | None = None,
    accounts: tuple[str, ...] = (MLSPACE_ACCOUNT,),
    **more: object,
) -> AuthSettings:
    return AuthSettings(
        audience=AUDIENCE,
        sts_endpoint=sandbox.endpoint_url,
        admin_arn_patterns=admins,
        admin_token_file=token_file,
        accounts=accounts,
        **more,  # type: ignore[arg-type]
    )


@pytest.fixture
def authenticator(sandbox: SandboxState) -> Iterator[Authenticator]:
    auth = Authenticator(_settings(sandbox), sandbox.aws_for("admin"))
    yield auth
    auth.close()


def _offline(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"a refused proof reached the network: {request.url}")


@pytest.fixture
def offline(sandbox: SandboxState) -> Iterator[Authenticator]:
    """An authenticator that fails the test if it sends anything: for refusals made before any STS call."""
    auth = Authenticator(
        _settings(sandbox), sandbox.aws_for("admin"), transport=httpx.MockTransport(_offline)
    )
    yield auth
    auth.close()


def _proof(
    sandbox: SandboxState, who: str = "alice@demo", audience: str = AUDIENCE, call: Call = CALL
) -> str:
    return make_proof(sandbox.aws_for(who), audience, call, now=NOW)


def _credentials(sandbox: SandboxState, who: str, *, secret: str | None = None) -> ReadOnlyCredentials:
    keys = sandbox.principal(who).credentials
    return ReadOnlyCredentials(keys.access_key_id, secret or keys.secret_access_key, keys.session_token)


def _signed(
    sandbox: SandboxState,
    *,
    who: str = "alice@demo",
    url: str | None = None,
    body: str = PROOF_BODY,
    headers: dict[str, str] | None = None,
    region: str = "us-east-1",
    secret: str | None = None,
) -> str:
    """A proof signed the way make_proof signs, with one part of the request chosen by the test."""
    url = url or sandbox.endpoint_url + "/"
    chosen = {"Host": host_of(url), "Content-Type": CONTENT_TYPE, AUDIENCE_HEADER: AUDIENCE, **CALL.headers()}
    signed = sign_request(
        _credentials(sandbox, who, secret=secret),
        url=url,
        region=region,
        headers=chosen if headers is None else headers,
        body=body,
        now=NOW,
    )
    return f"{PROOF_SCHEME} {encode_proof(signed, body)}"


def _edited(proof: str, edit: Callable[[dict[str, str]], object], body: str | None = None) -> str:
    """The same proof with its headers changed after signing (and optionally another body)."""
    headers, signed_body = decode_proof(proof.partition(" ")[2])
    edit(headers)
    return f"{PROOF_SCHEME} {encode_proof(headers, signed_body if body is None else body)}"


def _secrets_of(proof: str) -> list[str]:
    headers, _ = decode_proof(proof.partition(" ")[2])
    signature = headers.get("Authorization", "").rpartition("Signature=")[2]
    return [value for value in (signature, headers.get("X-Amz-Security-Token"), proof) if value]


# ------------------------------------------------------------------------------------------- valid


def test_alice_is_her_session_with_her_mlspace_user_and_project(
    sandbox: SandboxState, authenticator: Authenticator
) -> None:
    caller = authenticator.authenticate(_proof(sandbox), CALL, now=NOW)
    arn = f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/{ALICE_ROLE}/SageMaker"
    assert caller == Caller(
        arn=arn,
        account=MLSPACE_ACCOUNT,
        is_admin=False,
        requester=Requester(arn=arn, account=MLSPACE_ACCOUNT, role=ALICE_ROLE, user="alice", project="demo"),
        via="proof",
    )


def test_a_proof_made_now_passes_without_a_chosen_clock(
    sandbox: SandboxState, authenticator: Authenticator
) -> None:
    caller = authenticator.authenticate(make_proof(sandbox.aws_for("bob@demo"), AUDIENCE, CALL), CALL)
    assert caller.requester is not None
    assert (caller.requester.user, caller.requester.project) == ("bob", "demo")


def test_the_admin_user_is_an_admin(sandbox: SandboxState, authenticator: Authenticator) -> None:
    caller = authenticator.authenticate(_proof(sandbox, "admin"), CALL, now=NOW)
    assert (caller.arn, caller.is_admin, caller.via) == (ADMIN_USER, True, "proof")
    assert caller.requester == Requester(arn=ADMIN_USER, account=MLSPACE_ACCOUNT)


def test_a_pattern_on_the_role_arn_makes_its_sessions_admins(sandbox: SandboxState) -> None:
    settings = _settings(sandbox, admins=(f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{ALICE_ROLE}",))
    auth = Authenticator(settings, sandbox.aws_for("admin"))
    try:
        assert auth.authenticate(_proof(sandbox, "alice@demo"), CALL, now=NOW).is_admin
        assert not auth.authenticate(_proof(sandbox, "bob@demo"), CALL, now=NOW).is_admin
        assert not auth.authenticate(_proof(sandbox, "admin"), CALL, now=NOW).is_admin
    finally:
        auth.close()


def test_a_partner_user_is_proven_but_refused_naming_the_accounts_served(
    sandbox: SandboxState, authenticator: Authenticator
) -> None:
    """The partner's owner proves who it is, and is still no caller: it is not a principal of MLSpace's."""
    owner = sandbox.principal("owner").arn
    with pytest.raises(ForeignAccount) as refused:
        authenticator.authenticate(_proof(sandbox, "owner"), CALL, now=NOW)
    assert str(refused.value) == (
        f"{owner} is a principal of account {PARTNER_ACCOUNT}; this endpoint serves only principals of the "
        f"MLSpace account {MLSPACE_ACCOUNT}."
    )
    with pytest.raises(ForeignAccount):  # a second use of the same proof for the same call: from the cache
        authenticator.authenticate(_proof(sandbox, "owner"), CALL, now=NOW)


def test_the_partner_may_call_once_its_account_is_configured(sandbox: SandboxState) -> None:
    settings = _settings(sandbox, accounts=(MLSPACE_ACCOUNT, PARTNER_ACCOUNT))
    auth = Authenticator(settings, sandbox.aws_for("admin"))
    try:
        caller = auth.authenticate(_proof(sandbox, "owner"), CALL, now=NOW)
    finally:
        auth.close()
    assert (caller.account, caller.is_admin) == (PARTNER_ACCOUNT, False)


@pytest.mark.parametrize(("server", "account"), [("admin", MLSPACE_ACCOUNT), ("owner", PARTNER_ACCOUNT)])
def test_by_default_the_endpoint_serves_its_own_account(
    sandbox: SandboxState, server: str, account: str
) -> None:
    """No accounts configured: the endpoint's credentials name its account (sts:GetCallerIdentity)."""
    auth = Authenticator(_settings(sandbox, accounts=()), sandbox.aws_for(server))
    try:
        assert auth.settings.accounts == (account,)
    finally:
        auth.close()


@pytest.mark.parametrize("account", ["11111111111", "1111111111111", "*", "abcdefghijkl"])
def test_an_account_must_be_twelve_digits(sandbox: SandboxState, account: str) -> None:
    with pytest.raises(ValueError, match="12-digit AWS account id"):
        _settings(sandbox, accounts=(account,))


class _Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return super().handle_request(request)


def test_a_verified_proof_is_remembered_until_it_goes_stale(sandbox: SandboxState) -> None:
    transport = _Counting()
    auth = Authenticator(_settings(sandbox), sandbox.aws_for("admin"), transport=transport)
    try:
        proof = _proof(sandbox)
        first = auth.authenticate(proof, CALL, now=NOW)
        assert auth.authenticate(proof, CALL, now=NOW + timedelta(minutes=1)) == first
        assert transport.calls == 1
        with pytest.raises(Unauthenticated, match="2 minutes 1 second old"):
            auth.authenticate(proof, CALL, now=NOW + timedelta(minutes=2, seconds=1))
        assert transport.calls == 1
    finally:
        auth.close()


def test_many_threads_can_authenticate_at_once(sandbox: SandboxState, authenticator: Authenticator) -> None:
    proofs = [_proof(sandbox, who) for who in ("alice@demo", "bob@demo", "admin")] * 8
    with ThreadPoolExecutor(8) as pool:
        callers = list(pool.map(lambda proof: authenticator.authenticate(proof, CALL, now=NOW), proofs))
    assert {caller.arn for caller in callers} == {
        sandbox.principal(who).arn for who in ("alice@demo", "bob@demo", "admin")
    }


# --------------------------------------------------------------------------------------- forgeries


def _audience_swapped(sandbox: SandboxState) -> str:
    """Made for another endpoint, then relabelled as ours: the signature no longer covers the header."""
    return _edited(
        _proof(sandbox, audience="http://evil.example"), lambda h: h.update({AUDIENCE_HEADER: AUDIENCE})
    )


def _date_moved(sandbox: SandboxState) -> str:
    return _edited(_proof(sandbox), lambda h: h.update({"X-Amz-Date": "20260115T115940Z"}))


def _token_swapped(sandbox: SandboxState) -> str:
    bob_token = str(sandbox.principal("bob@demo").credentials.session_token)
    return _edited(_proof(sandbox), lambda h: h.update({"X-Amz-Security-Token": bob_token}))


def _reordered_body(sandbox: SandboxState) -> str:
    """Means the same to STS, but it is not the body that was signed."""
    return _edited(_proof(sandbox), lambda h: None, body="Version=2011-06-15&Action=GetCallerIdentity")


def _wrong_secret(sandbox: SandboxState) -> str:
    return _signed(sandbox, secret="forged-secret-key-forged-secret-key-0000")


def _unknown_key(sandbox: SandboxState) -> str:
    stranger = StaticCredentials("AKIAUNKNOWNUNKNOWN00", "some-secret")
    settings = AwsSettings(region="us-east-1", endpoint_url=sandbox.endpoint_url)
    return make_proof(Aws(settings, stranger), AUDIENCE, CALL, now=NOW)


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (_audience_swapped, r"STS refused the proof \(SignatureDoesNotMatch\): the request was altered"),
        (_date_moved, r"\(SignatureDoesNotMatch\)"),
        (_token_swapped, r"STS refused the proof \("),
        (_reordered_body, r"\(SignatureDoesNotMatch\)"),
        (_wrong_secret, r"\(SignatureDoesNotMatch\).*wrong secret key"),
        (_unknown_key, r"\(InvalidClientTokenId\): STS does not know the access key"),
    ],
    ids=["altered-audience", "altered-date", "altered-token", "altered-body", "wrong-secret", "unknown-key"],
)
def test_sts_refuses_what_was_altered_or_forged(
    sandbox: SandboxState, authenticator: Authenticator, forge: Forge, message: str
) -> None:
    proof = forge(sandbox)
    with pytest.raises(Unauthenticated, match=message) as refused:
        authenticator.authenticate(proof, CALL, now=NOW)
    for secret in _secrets_of(proof):
        assert secret not in str(refused.value)


def _unsigned_audience(sandbox: SandboxState) -> str:
    headers = {"Host": host_of(sandbox.endpoint_url), "Content-Type": CONTENT_TYPE}
    return _edited(_signed(sandbox, headers=headers), lambda h: h.update({AUDIENCE_HEADER: AUDIENCE}))


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda s: _proof(s, audience="http://other.example:8443"), r"made for the endpoint 'http://other"),
        (lambda s: _proof(s, audience=AUDIENCE + "/"), r"made for the endpoint 'http://127.0.0.1:9999/'"),
        (_unsigned_audience, r"does not sign its X-S3Access-Audience header"),
        (
            lambda s: _signed(s, body="Action=GetSessionToken&Version=2011-06-15"),
            r"body must be exactly Action=GetCallerIdentity&Version=2011-06-15",
        ),
        (
            lambda s: _edited(_proof(s), lambda h: None, body=PROOF_BODY + "&DurationSeconds=900"),
            r"body must be exactly",
        ),
        (
            lambda s: _signed(s, body="Action=GetCallerIdentity&Action=GetCallerIdentity"),
            "body must be exactly",
        ),
        (
            lambda s: _edited(_proof(s), lambda h: h.update({"X-Amz-Content-SHA256": "0" * 64})),
            r"X-Amz-Content-SHA256 is not the hash of its body",
        ),
        (
            lambda s: _signed(s, url="https://sts.amazonaws.com/"),
            r"signed for the STS host 'sts.amazonaws.com'",
        ),
        (lambda s: _signed(s, region="eu-west-1"), r"credential scope must be <day>/us-east-1/sts"),
        (lambda s: _edited(_proof(s), lambda h: h.pop("Authorization")), r"no SigV4 Authorization header"),
        (
            lambda s: _edited(_proof(s), lambda h: h.update({"Authorization": "AWS AKIA:abc"})),
            r"not an AWS4-HMAC-SHA256 signature",
        ),
        (lambda s: _edited(_proof(s), lambda h: h.pop("X-Amz-Date")), r"no X-Amz-Date header"),
        (
            lambda s: _edited(_proof(s), lambda h: h.pop("Content-Type")),
            r"signs the header 'content-type' but",
        ),
        (
            lambda s: _edited(_proof(s), lambda h: h.update({"x-amz-date": h["X-Amz-Date"]})),
            r"repeats the header 'x-amz-date'",
        ),
        (
            lambda s: _edited(_proof(s), lambda h: h.update({"X-Evil": "a\r\nHost: evil"})),
            r"not valid HTTP header names and values",
        ),
        (lambda s: _edited(_proof(s), lambda h: h.update({"Date": "Thu"})), r"has a Date header"),
        (
            lambda s: _edited(_proof(s), lambda h: h.update({"X-Amz-Date": "2026-01-15T12:00:00Z"})),
            r"not a SigV4 timestamp",
        ),
    ],
    ids=[
        "other-endpoint",
        "other-endpoint-trailing-slash",
        "unsigned-naming-header",
        "other-action",
        "extra-parameter",
        "repeated-parameter",
        "payload-hash",
        "other-host",
        "other-region",
        "no-authorization",
        "not-sigv4",
        "no-date",
        "signed-header-missing",
        "repeated-header",
        "header-injection",
        "date-header",
        "bad-date",
    ],
)
def test_forgeries_are_refused_before_any_network_call(
    sandbox: SandboxState, offline: Authenticator, forge: Forge, message: str
) -> None:
    proof = forge(sandbox)
    with pytest.raises(Unauthenticated, match=message) as refused:
        offline.authenticate(proof, CALL, now=NOW)
    for secret in _secrets_of(proof):
        assert secret not in str(refused.value)


@pytest.mark.parametrize(
    ("signed_at", "message"),
    [
        (NOW - timedelta(minutes=10), "the proof's X-Amz-Date is 10 minutes old; proofs last 2 minutes:"),
        (NOW - timedelta(minutes=2, seconds=1), "is 2 minutes 1 second old"),
        (NOW - timedelta(minutes=5), "is 5 minutes old"),  # the old limit: such a proof used to pass
        (NOW + timedelta(seconds=31), "is 31 seconds in the future; check the clock"),
    ],
)
def test_stale_and_future_signatures_are_refused(
    sandbox: SandboxState, offline: Authenticator, signed_at: datetime, message: str
) -> None:
    proof = make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=signed_at)
    with pytest.raises(Unauthenticated, match=message):
        offline.authenticate(proof, CALL, now=NOW)


def test_a_proof_is_good_up_to_its_last_second(sandbox: SandboxState, authenticator: Authenticator) -> None:
    """2 minutes after its signing time, and 30 seconds before it (a signer's clock running ahead)."""
    proof = make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=NOW - timedelta(minutes=2))
    assert authenticator.authenticate(proof, CALL, now=NOW).account == MLSPACE_ACCOUNT
    early = make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=NOW + timedelta(seconds=30))
    assert authenticator.authenticate(early, CALL, now=NOW).account == MLSPACE_ACCOUNT


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no Authorization header; send S3AccessProof"),
        ("   ", "no Authorization header"),
        ("Basic YWxpY2U6cGFzc3dvcmQ=", "scheme is not one this endpoint accepts; send S3AccessProof"),
        ("a-bare-secret-without-scheme", "scheme is not one this endpoint accepts"),
        (f"{PROOF_SCHEME} !!!garbage!!!", "not base64url-encoded JSON"),
        (f"{PROOF_SCHEME}", "not base64url-encoded JSON"),
        (f"{PROOF_SCHEME} " + "QUJD" * 5000, "over 16384 characters"),
    ],
)
def test_no_proof_a_wrong_scheme_or_garbage_is_refused(
    offline: Authenticator, header: str | None, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message) as refused:
        offline.authenticate(header, CALL, now=NOW)
    assert "bare-secret" not in str(refused.value)
    assert "YWxpY2U6" not in str(refused.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"v": 1, "body": PROOF_BODY}, "no 'headers' object"),
        ({"v": 1, "headers": {"Host": "x"}}, "no 'body' string"),
        ({"headers": {}, "body": ""}, "version is not 1"),
    ],
)
def test_proofs_with_missing_keys_are_refused(offline: Authenticator, document: object, message: str) -> None:
    encoded = base64.urlsafe_b64encode(json.dumps(document).encode()).decode()
    with pytest.raises(Unauthenticated, match=message):
        offline.authenticate(f"{PROOF_SCHEME} {encoded}", CALL, now=NOW)


def test_sts_being_down_is_not_the_callers_fault(sandbox: SandboxState) -> None:
    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            503, text="<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>"
        )

    auth = Authenticator(
        _settings(sandbox), sandbox.aws_for("admin"), transport=httpx.MockTransport(unavailable)
    )
    try:
        with pytest.raises(S3MagicError, match="could not verify an identity proof") as failed:
            auth.authenticate(_proof(sandbox), CALL, now=NOW)
        assert not isinstance(failed.value, Unauthenticated)
    finally:
        auth.close()


# ------------------------------------------------------------------------------- one call per proof


def _unbound(sandbox: SandboxState) -> str:
    """A proof as made before proofs named their call: audience, host and date signed, no call headers."""
    headers = {"Host": host_of(sandbox.endpoint_url), "Content-Type": CONTENT_TYPE, AUDIENCE_HEADER: AUDIENCE}
    return _signed(sandbox, headers=headers)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (Call.of("POST", "/v1/requests"), r"made for a 'GET' call, not this POST"),
        (Call.of("GET", "/v1/buckets"), r"made for the path '/v1/requests', not this call's '/v1/buckets'"),
        (Call.of("GET", "/v1/requests?status=pending"), r"not this call's '/v1/requests\?status=pending'"),
        (Call.of("GET", "/v1/requests", b"{}"), r"made for another request body"),
    ],
    ids=["other-method", "other-route", "other-query", "other-body"],
)
def test_a_proof_for_another_call_is_refused_before_any_network_call(
    sandbox: SandboxState, offline: Authenticator, call: Call, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message):
        offline.authenticate(_proof(sandbox), call, now=NOW)


def test_a_verified_proof_is_remembered_for_its_own_call_only(sandbox: SandboxState) -> None:
    """The cache of verified proofs never lets a proof through for another call, even within its life."""
    transport = _Counting()
    auth = Authenticator(_settings(sandbox), sandbox.aws_for("admin"), transport=transport)
    try:
        proof = _proof(sandbox)
        auth.authenticate(proof, CALL, now=NOW)
        with pytest.raises(Unauthenticated, match="made for the path"):
            auth.authenticate(proof, Call.of("GET", "/v1/audit"), now=NOW)
        with pytest.raises(Unauthenticated, match="another request body"):
            auth.authenticate(proof, Call.of("GET", "/v1/requests", b"x"), now=NOW)
        assert transport.calls == 1
    finally:
        auth.close()


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            {"Transfer-Encoding": "chunked"},
            r"carries the header 'transfer-encoding', a hop-by-hop or framing",
        ),
        ({"Connection": "close"}, r"the header 'connection'"),
        ({"Keep-Alive": "timeout=5"}, r"the header 'keep-alive'"),
        ({"TE": "trailers"}, r"the header 'te'"),
        ({"Trailer": "X-Amz-Date"}, r"the header 'trailer'"),
        ({"Upgrade": "h2c"}, r"the header 'upgrade'"),
        ({"Proxy-Authorization": "Basic eA=="}, r"the header 'proxy-authorization'"),
        ({"Content-Length": "0"}, r"Content-Length is not the length of its body"),
    ],
    ids=["transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "proxy", "length"],
)
def test_hop_by_hop_and_framing_headers_are_refused_even_when_signed(
    sandbox: SandboxState,
    offline: Authenticator,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    message: str,
) -> None:
    """SigV4 signs whatever headers ``SignedHeaders`` lists (AWS, "Create a signed AWS API request":
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html), so a proof
    may sign a header that only describes one connection or frames the body. botocore leaves most of them
    out, but a signer of one's own need not: such headers are never replayed to STS (the offline transport
    fails the test if anything is sent)."""
    monkeypatch.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", [])  # sign as a hand-made signer would
    chosen = {
        "Host": host_of(sandbox.endpoint_url),
        "Content-Type": CONTENT_TYPE,
        AUDIENCE_HEADER: AUDIENCE,
        **CALL.headers(),
        **headers,
    }
    proof = _signed(sandbox, headers=chosen)
    assert next(iter(headers)).lower() in decode_proof(proof.partition(" ")[2])[0]["Authorization"]
    with pytest.raises(Unauthenticated, match=message):
        offline.authenticate(proof, CALL, now=NOW)


def test_an_unsigned_hop_by_hop_header_is_refused_too(sandbox: SandboxState, offline: Authenticator) -> None:
    proof = _edited(_proof(sandbox), lambda h: h.update({"Transfer-Encoding": "chunked"}))
    with pytest.raises(Unauthenticated, match="'transfer-encoding', a hop-by-hop"):
        offline.authenticate(proof, CALL, now=NOW)


def test_a_content_length_of_the_body_is_recomputed_not_refused(
    sandbox: SandboxState, authenticator: Authenticator
) -> None:
    chosen = {
        "Host": host_of(sandbox.endpoint_url),
        "Content-Type": CONTENT_TYPE,
        AUDIENCE_HEADER: AUDIENCE,
        "Content-Length": str(len(PROOF_BODY)),
        **CALL.headers(),
    }
    caller = authenticator.authenticate(_signed(sandbox, headers=chosen), CALL, now=NOW)
    assert caller.account == MLSPACE_ACCOUNT


def test_a_proof_that_names_no_call_is_refused(sandbox: SandboxState, offline: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match=r"does not sign the method of the call it is for"):
        offline.authenticate(_unbound(sandbox), CALL, now=NOW)
    with pytest.raises(Unauthenticated, match="cannot tell which call the proof is for"):
        offline.authenticate(_proof(sandbox), None, now=NOW)


# ----------------------------------------------------------------------------------------- rate limits


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_rate_limiter_allows_a_burst_then_one_call_per_share_of_a_minute() -> None:
    clock = _Clock()
    limits = RateLimiter("diagnoses", clock)
    for _ in range(3):
        limits.take("alice", 3)
    limits.take("bob", 3)  # each key has its own bucket
    with pytest.raises(
        RateLimited, match=r"Too many diagnoses for alice: at most 3 a minute\. Retry in 20 s"
    ):
        limits.take("alice", 3)
    clock.now += 15
    with pytest.raises(RateLimited) as later:
        limits.check("alice", 3)
    assert later.value.retry_after == 5
    clock.now += 5
    limits.check("alice", 3)  # checking counts nothing
    limits.take("alice", 3)
    with pytest.raises(RateLimited):
        limits.take("alice", 3)


def test_proofs_over_the_limit_get_429_and_are_not_sent_to_sts(sandbox: SandboxState) -> None:
    transport = _Counting()
    clock = _Clock()
    auth = Authenticator(
        _settings(sandbox, proofs_per_minute=2), sandbox.aws_for("admin"), transport=transport, clock=clock
    )
    try:
        for second in range(2):
            auth.authenticate(
                _proof(sandbox, call=Call.of("GET", f"/v1/requests/{second}")),
                Call.of("GET", f"/v1/requests/{second}"),
                now=NOW,
            )
        assert transport.calls == 2
        with pytest.raises(RateLimited) as refused:
            auth.authenticate(_proof(sandbox), CALL, now=NOW)
        alice = sandbox.principal("alice@demo").arn
        assert str(refused.value).startswith(
            f"Too many identity proofs for {alice}: at most 2 a minute. Retry in 30 seconds (after "
        )
        assert refused.value.retry_after == 30
        assert transport.calls == 2, "a known caller over its limit was verified with STS anyway"
        assert auth.authenticate(_proof(sandbox, "bob@demo"), CALL, now=NOW).requester is not None
        clock.now += 30
        assert auth.authenticate(_proof(sandbox), CALL, now=NOW).account == MLSPACE_ACCOUNT
    finally:
        auth.close()


def test_refused_attempts_are_limited_per_source(sandbox: SandboxState) -> None:
    auth = Authenticator(
        _settings(sandbox, refusals_per_minute=2),
        sandbox.aws_for("admin"),
        transport=httpx.MockTransport(_offline),
        clock=_Clock(),
    )
    try:
        for _ in range(2):
            with pytest.raises(Unauthenticated):
                auth.authenticate(f"{PROOF_SCHEME} garbage", CALL, source="10.0.0.7", now=NOW)
        with pytest.raises(RateLimited, match=r"refused identity proofs for source 10\.0\.0\.7") as refused:
            auth.authenticate(f"{PROOF_SCHEME} garbage", CALL, source="10.0.0.7", now=NOW)
        assert refused.value.retry_after == 30
        with pytest.raises(Unauthenticated):  # another source is not held back
            auth.authenticate(f"{PROOF_SCHEME} garbage", CALL, source="10.0.0.8", now=NOW)
    finally:
        auth.close()


def test_diagnoses_are_limited_per_caller(sandbox: SandboxState) -> None:
    auth = Authenticator(_settings(sandbox, diagnoses_per_minute=1), sandbox.aws_for("admin"))
    try:
        alice = auth.authenticate(_proof(sandbox), CALL, now=NOW)
        bob = auth.authenticate(_proof(sandbox, "bob@demo"), CALL, now=NOW)
        auth.limit_diagnosis(alice)
        auth.limit_diagnosis(bob)
        with pytest.raises(
            RateLimited, match="Too many diagnoses for arn:aws:sts::111111111111:assumed-role"
        ):
            auth.limit_diagnosis(alice)
    finally:
        auth.close()


@pytest.mark.parametrize("name", ["proofs_per_minute", "refusals_per_minute", "diagnoses_per_minute"])
def test_a_rate_limit_is_at_least_one(sandbox: SandboxState, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        _settings(sandbox, **{name: 0})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- role tags


def test_without_iam_rights_the_caller_is_proven_but_has_no_user_or_project(sandbox: SandboxState) -> None:
    """The partner's admin cannot read roles of the MLSpace account: GetRole fails, and that is no error."""
    auth = Authenticator(_settings(sandbox), sandbox.aws_for("owner"))
    try:
        caller = auth.authenticate(_proof(sandbox), CALL, now=NOW)
    finally:
        auth.close()
    assert caller.requester == Requester(arn=caller.arn, account=MLSPACE_ACCOUNT, role=ALICE_ROLE)


def test_a_same_named_role_in_another_account_gets_no_mlspace_tags(fresh_sandbox: SandboxState) -> None:
    """A partner names a role like alice's: our GetRole finds hers, which must not lend its tags."""
    owner = fresh_sandbox.aws_for("owner")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{PARTNER_ACCOUNT}:user/owner"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    owner.client("iam").create_role(RoleName=ALICE_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    session = owner.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{PARTNER_ACCOUNT}:role/{ALICE_ROLE}", RoleSessionName="SageMaker"
    )["Credentials"]
    impostor = Aws(
        AwsSettings(region="us-east-1", endpoint_url=fresh_sandbox.endpoint_url),
        StaticCredentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]),
    )
    settings = _settings(
        fresh_sandbox,
        admins=(f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/*",),
        accounts=(MLSPACE_ACCOUNT, PARTNER_ACCOUNT),  # else refused before its role is looked up
    )
    auth = Authenticator(settings, fresh_sandbox.aws_for("admin"))
    try:
        alice = auth.authenticate(_proof(fresh_sandbox), CALL, now=NOW)  # her role's facts, now cached
        caller = auth.authenticate(make_proof(impostor, AUDIENCE, CALL, now=NOW), CALL, now=NOW)
    finally:
        auth.close()
    assert alice.requester is not None and alice.requester.user == "alice"
    assert caller.account == PARTNER_ACCOUNT
    assert not caller.is_admin
    assert caller.requester is not None
    assert (caller.requester.user, caller.requester.project) == (None, None)  # looked up by account and name


# --------------------------------------------------------------------------------------- admin token


def test_the_token_file_is_private_and_the_token_authenticates(sandbox: SandboxState, tmp_path: Path) -> None:
    path = tmp_path / "admin" / "token"
    token = create_admin_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 43
    auth = Authenticator(_settings(sandbox, token_file=path), sandbox.aws_for("admin"))
    try:
        caller = auth.authenticate(f"Bearer {token}")
        assert caller == Caller(arn="admin-token", account="", is_admin=True, requester=None, via="token")
        with pytest.raises(Unauthenticated, match="the admin token is not valid") as refused:
            auth.authenticate("Bearer wrong-token-value")
        assert token not in str(refused.value)
        assert "wrong-token-value" not in str(refused.value)
        with pytest.raises(Unauthenticated, match="not valid"):
            auth.authenticate("Bearer")
    finally:
        auth.close()


def test_an_existing_token_is_replaced_only_on_purpose(sandbox: SandboxState, tmp_path: Path) -> None:
    path = tmp_path / "token"
    old = create_admin_token(path)
    with pytest.raises(S3MagicError, match="already exists"):
        create_admin_token(path)
    assert path.read_text().strip() == old
    previous = os.umask(0o022)
    try:
        new = create_admin_token(path, overwrite=True)
    finally:
        os.umask(previous)
    assert new != old
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["token"]
    auth = Authenticator(_settings(sandbox, token_file=path), sandbox.aws_for("admin"))
    try:
        assert auth.authenticate(f"Bearer {new}").is_admin
        with pytest.raises(Unauthenticated):
            auth.authenticate(f"Bearer {old}")
    finally:
        auth.close()


def test_a_token_file_others_can_read_is_refused(
    sandbox: SandboxState, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "token"
    token = create_admin_token(path)
    path.chmod(0o644)
    auth = Authenticator(_settings(sandbox, token_file=path), sandbox.aws_for("admin"))
    try:
        with caplog.at_level(logging.INFO), pytest.raises(Unauthenticated, match="not valid"):
            auth.authenticate(f"Bearer {token}")
    finally:
        auth.close()
    assert "accessible to other users (mode 644); chmod 600 it" in caplog.text
    assert token not in caplog.text


def test_without_a_token_file_tokens_are_not_accepted(offline: Authenticator) -> None:
    with pytest.raises(Unauthenticated, match="accepts no admin token; send an S3AccessProof proof"):
        offline.authenticate("Bearer anything")


def test_refusals_are_logged_without_secrets(
    sandbox: SandboxState, authenticator: Authenticator, caplog: pytest.LogCaptureFixture
) -> None:
    """Only our own records: moto's in-process server logs whole requests at DEBUG (it is a test double)."""
    proof = _wrong_secret(sandbox)
    with caplog.at_level(logging.DEBUG), pytest.raises(Unauthenticated):
        authenticator.authenticate(proof, CALL, now=NOW)
    ours = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith(("mlspace", "httpx"))
    )
    assert "SignatureDoesNotMatch" in ours
    for secret in [*_secrets_of(proof), "forged-secret-key"]:
        assert secret not in ours


def test_settings_refuse_an_sts_endpoint_with_a_path() -> None:
    with pytest.raises(ValueError, match="without a path"):
        AuthSettings(audience=AUDIENCE, sts_endpoint="https://sts.amazonaws.com/some/path")
    with pytest.raises(ValueError, match="audience"):
        AuthSettings(audience="", sts_endpoint="https://sts.amazonaws.com")


def test_threads_share_one_role_lookup(sandbox: SandboxState, authenticator: Authenticator) -> None:
    """Many proofs of one role read its tags once (the cache is per role, not per proof)."""
    calls = 0
    lock = threading.Lock()

    def count(**_: object) -> None:
        nonlocal calls
        with lock:
            calls += 1

    server = sandbox.aws_for("admin")
    server.client("iam").meta.events.register("before-call.iam.GetRole", count)
    auth = Authenticator(_settings(sandbox), server)
    try:
        proofs = [
            make_proof(sandbox.aws_for("alice@demo"), AUDIENCE, CALL, now=NOW + timedelta(seconds=i))
            for i in range(6)
        ]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda proof: auth.authenticate(proof, CALL, now=NOW), proofs))
    finally:
        auth.close()
    assert calls == 1


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:iam::*:role/admin",  # any account's role named admin would be an admin
        "arn:aws:iam::11111111111?:role/admin",
        "arn:*:iam::111111111111:role/admin",
        "arn:aws:*::111111111111:role/admin",
        "*",
    ],
)
def test_an_admin_pattern_must_name_a_literal_account(sandbox: SandboxState, pattern: str) -> None:
    with pytest.raises(ValueError, match="12-digit account literally"):
        _settings(sandbox, admins=(pattern,))


def test_an_admin_pattern_may_use_wildcards_in_its_resource(sandbox: SandboxState) -> None:
    pattern = f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/MLSpace-admin-*"
    assert _settings(sandbox, admins=(pattern,)).admin_arn_patterns == (pattern,)


def test_admin_serve_refuses_a_wildcard_account_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from mlspace_s3magic.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["admin", "serve", "--admin-arn", "arn:aws:iam::*:role/admin"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "12-digit account literally" in err and "Traceback" not in err


def test_the_shared_notebook_role_names_no_user_or_project(fresh_sandbox: SandboxState) -> None:
    """MLSpace tags its shared notebook role user=MLSpaceApplication, project=MLSpaceInfrastructure: no
    person, no project, so a request from it records neither."""
    admin = fresh_sandbox.aws_for("admin")
    trust = {"Version": "2012-10-17", "Statement": []}
    tags = [
        {"Key": "user", "Value": "MLSpaceApplication"},
        {"Key": "project", "Value": "MLSpaceInfrastructure"},
    ]
    admin.client("iam").create_role(
        RoleName="mlspace-notebook-role", AssumeRolePolicyDocument=json.dumps(trust), Tags=tags
    )
    auth = Authenticator(_settings(fresh_sandbox), admin)
    try:
        facts = auth._role_facts(MLSPACE_ACCOUNT, "mlspace-notebook-role")
        alice = auth._role_facts(MLSPACE_ACCOUNT, ALICE_ROLE)
    finally:
        auth.close()
    assert facts is not None and (facts.user, facts.project) == (None, None)
    assert alice is not None and (alice.user, alice.project) == ("alice", "demo")


@pytest.mark.parametrize(
    ("identity", "arn"),
    [
        (ADMIN_USER, ADMIN_USER),
        (
            f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/MLSpace-admin/jane",
            f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/MLSpace-admin/jane",
        ),
        (  # a role stands for every session of it: approvals compare sessions by role
            f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/admins/MLSpace-admin",
            f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/MLSpace-admin/admin-token",
        ),
    ],
    ids=["user", "session", "role"],
)
def test_the_token_acts_as_the_configured_admin_identity(
    sandbox: SandboxState, tmp_path: Path, identity: str, arn: str
) -> None:
    path = tmp_path / "token"
    token = create_admin_token(path)
    auth = Authenticator(
        _settings(sandbox, token_file=path, token_identity=identity), sandbox.aws_for("admin")
    )
    try:
        caller = auth.authenticate(f"Bearer {token}")
    finally:
        auth.close()
    assert caller == Caller(arn=arn, account=MLSPACE_ACCOUNT, is_admin=True, requester=None, via="token")


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        ("arn:aws:iam::*:user/admin", "the admin token's identity must be"),
        ("admin", "the admin token's identity must be"),
        ("arn:aws:s3:::bucket", "the admin token's identity must be"),
    ],
)
def test_a_token_identity_must_be_an_aws_principal(
    sandbox: SandboxState, identity: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(sandbox, token_identity=identity)


def test_a_token_identity_of_another_account_is_refused(sandbox: SandboxState) -> None:
    settings = _settings(sandbox, token_identity=f"arn:aws:iam::{PARTNER_ACCOUNT}:user/owner")
    with pytest.raises(
        ValueError, match=f"in account {PARTNER_ACCOUNT}, which is not one this endpoint serves"
    ):
        Authenticator(settings, sandbox.aws_for("admin"))


def test_admin_serve_takes_accounts_a_token_identity_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlspace_s3magic.admin import server
    from mlspace_s3magic.cli import main

    served: list[object] = []
    monkeypatch.setattr(server, "serve", served.append)
    main(
        [
            "admin", "serve", "--account", MLSPACE_ACCOUNT, "--account", "333333333333",
            "--token-identity", ADMIN_USER, "--proofs-per-minute", "7", "--diagnoses-per-minute", "3",
            "--refusals-per-minute", "9",
        ]
    )  # fmt: skip
    config = served[0]
    assert isinstance(config, server.ServerConfig)
    assert config.accounts == (MLSPACE_ACCOUNT, "333333333333")
    assert config.token_identity == ADMIN_USER
    assert (config.proofs_per_minute, config.diagnoses_per_minute, config.refusals_per_minute) == (7, 3, 9)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--account", "12345", "12-digit AWS account id"),
        ("--token-identity", "arn:aws:iam::*:user/admin", "the admin token's identity must be"),
        ("--proofs-per-minute", "0", "at least 1"),
    ],
)
def test_admin_serve_refuses_bad_caller_settings_as_usage_errors(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    from mlspace_s3magic.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["admin", "serve", option, value])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_served_endpoint_serves_its_own_account_and_refuses_a_foreign_token_identity(
    sandbox: SandboxState,
) -> None:
    from mlspace_s3magic.admin.server import ServerConfig, build_service

    config = ServerConfig(sts_endpoint=sandbox.endpoint_url)
    service = build_service(config, sandbox.aws_for("admin"))
    try:
        assert service.authenticator.settings.accounts == (MLSPACE_ACCOUNT,)
    finally:
        service.authenticator.close()
        service.store.close()
    foreign = replace(config, token_identity=f"arn:aws:iam::{PARTNER_ACCOUNT}:user/owner")
    with pytest.raises(S3MagicError, match="The admin endpoint cannot start: the admin token's identity"):
        build_service(foreign, sandbox.aws_for("admin"))
