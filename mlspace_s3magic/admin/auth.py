"""Who calls the admin endpoint: an AWS identity proven by a signed STS request, or the local admin token.

A proof (see :mod:`mlspace_s3magic.access_requests.proof`) is checked here before any network call: it must
sign the header naming this endpoint and the headers naming the one call it is for (method, path with query,
SHA-256 of the body), which must be the call received; be fresh; be for our own STS host and region; carry
no hop-by-hop or framing header; and ask for nothing but ``GetCallerIdentity``. Only then is it replayed to
*our* configured STS endpoint, and the ARN STS returns is the caller; a client-chosen host or URL is never
contacted. moto's STS does not check ``X-Amz-Date``, and real STS allows 15 minutes, so the freshness check
here is what bounds a proof's life (2 minutes, see :class:`AuthSettings`).

Callers must be principals of the MLSpace accounts this endpoint serves (by default its own account); a
proven caller of any other account is refused with :class:`ForeignAccount` (HTTP 403) on every route.
Proof verification is rate-limited per caller ARN, refused attempts per source address, and diagnoses per
caller: over a limit, :class:`RateLimited` (HTTP 429) says when to retry.

Refusals raise :class:`Unauthenticated` (HTTP 401); its message says what was wrong and never carries a
signature, session token or admin token.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import httpx
from botocore.auth import SIGV4_TIMESTAMP
from botocore.exceptions import ClientError

from mlspace_s3magic.access_requests.proof import (
    AUDIENCE_HEADER,
    BODY_HASH_HEADER,
    METHOD_HEADER,
    PATH_HEADER,
    PROOF_SCHEME,
    Call,
    MalformedProof,
    decode_proof,
    host_of,
)
from mlspace_s3magic.core.access import Requester
from mlspace_s3magic.core.aws import Aws, aws_call
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.errors import (
    AwsRequestFailed,
    Conflict,
    EndpointUnreachable,
    NotAllowed,
    Unavailable,
)
from mlspace_s3magic.core.files import PRIVATE, write_private
from mlspace_s3magic.core.identity import CallerArn
from mlspace_s3magic.core.mlspace import is_shared_role
from mlspace_s3magic.core.policy.arns import iam_role_arn

logger = logging.getLogger(__name__)

TOKEN_SCHEME = "Bearer"
TOKEN_CALLER_ARN = "admin-token"  # the admin token's caller unless it is given an AWS identity
TOKEN_SESSION = "admin-token"  # the session name of a token identity given as a role ARN
ACCEPTED_SCHEMES = f"{PROOF_SCHEME} (an AWS identity proof) or {TOKEN_SCHEME} (the admin token)"
STS_TIMEOUT_SECONDS = 5.0
ROLE_CACHE_SECONDS = 300.0
MAX_HEADER_CHARS = 16_384
MAX_CACHED_PROOFS = 50_000
MAX_LIMITED_KEYS = 50_000
EXPECTED_BODY = {"Action": "GetCallerIdentity", "Version": "2011-06-15"}
AUDIENCE = AUDIENCE_HEADER.lower()
# The headers naming the one call a proof is for, with how a refusal names each.
CALL_HEADERS = {
    METHOD_HEADER.lower(): "method",
    PATH_HEADER.lower(): "path",
    BODY_HASH_HEADER.lower(): "body",
}
CALL_HEADERS_BY_PART = {part: name for name, part in CALL_HEADERS.items()}
# Headers a proof must sign: without host or date STS would not bind it to our endpoint or to a time.
REQUIRED_SIGNED = ("host", "x-amz-date", AUDIENCE)
# Hop-by-hop (RFC 9110 7.6.1) and framing headers: they describe one connection or how a body is framed, so
# they are never replayed to STS, signed or not; a proof carrying one is refused. Content-Length is
# recomputed for the body sent, so it is accepted only when it is that body's length.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect"}
)

_SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<scope>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=[0-9a-f]{64}$"
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]*$")
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9.]{0,63}$")
# STS answers that say STS, not the proof, is the problem: the caller gets no 401 for these.
_STS_UNAVAILABLE = frozenset({"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure"})
_STS_HINTS = {
    "SignatureDoesNotMatch": "the request was altered after signing, or signed with a wrong secret key",
    "IncompleteSignature": "the signature is missing parts STS requires",
    "InvalidClientTokenId": "STS does not know the access key or session token that signed it",
    "ExpiredToken": "the credentials that signed it have expired; make a proof with fresh ones",
}


@dataclass(frozen=True)
class AuthSettings:
    """How this endpoint checks callers; ``audience`` is what a proof's naming header must say.

    ``accounts``: the MLSpace accounts whose principals may call; empty means the endpoint's own account,
    read from its credentials (``sts:GetCallerIdentity``) when the :class:`Authenticator` starts.

    ``token_identity``: who the admin token acts as. By default a fixed name that is no AWS principal; the
    admin's own AWS principal (an IAM user ARN, an assumed-role ARN as ``aws sts get-caller-identity``
    prints it, or a role ARN, which stands for every session of that role) makes "a requester never
    approves their own request" hold for the token too.

    Freshness: a proof is accepted while its ``X-Amz-Date`` is at most ``max_age`` (2 minutes) in the past,
    and at most ``clock_skew`` (30 seconds) in the future, for a signer whose clock runs ahead of ours.

    Rate limits, each a token bucket refilled evenly over a minute (so a burst of the whole minute's count
    is allowed): verified proofs per caller ARN, refused attempts (401) per source address, and diagnoses
    per caller ARN.
    """

    audience: str
    sts_endpoint: str
    sts_region: str = "us-east-1"
    # fnmatch patterns (case-sensitive); for a role session the role's ARN is tried as well.
    admin_arn_patterns: tuple[str, ...] = ()
    admin_token_file: Path | None = None
    accounts: tuple[str, ...] = ()
    token_identity: str = TOKEN_CALLER_ARN
    max_age: timedelta = timedelta(minutes=2)
    clock_skew: timedelta = timedelta(seconds=30)
    proofs_per_minute: int = 60
    refusals_per_minute: int = 60
    diagnoses_per_minute: int = 30

    def __post_init__(self) -> None:
        parts = urlsplit(self.sts_endpoint)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.username
        ):
            raise ValueError(
                "sts_endpoint must be an http(s) URL without a path, such as "
                f"https://sts.us-east-1.amazonaws.com, not {self.sts_endpoint!r}"
            )
        if not self.audience:
            raise ValueError("audience must name this endpoint, for example its base URL")
        if self.max_age <= timedelta(0) or self.clock_skew < timedelta(0):
            raise ValueError("max_age must be positive and clock_skew not negative")
        for pattern in self.admin_arn_patterns:
            check_admin_arn_pattern(pattern)
        for account in self.accounts:
            check_account(account)
        token_caller_arn(self.token_identity)
        for name in ("proofs_per_minute", "refusals_per_minute", "diagnoses_per_minute"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


_ADMIN_ARN = re.compile(r"arn:[a-z-]+:(iam|sts)::\d{12}:(?P<resource>.+)")


def check_admin_arn_pattern(pattern: str) -> str:
    """An admin ARN pattern, refused unless it names one literal account: a wildcard there (or in the
    partition or service) would make principals of other accounts admins."""
    if not _ADMIN_ARN.fullmatch(pattern):
        raise ValueError(
            f"admin ARN pattern {pattern!r} must name its partition, service (iam or sts) and 12-digit "
            "account literally; wildcards are accepted in the resource part only, such as "
            "arn:aws:iam::111111111111:role/MLSpace-admin-*"
        )
    return pattern


_ACCOUNT = re.compile(r"\d{12}")
_NAME = r"[\w+=,.@-]+"
_PATH = r"(?:/[\w+=,.@/-]*)?/"
_TOKEN_IDENTITIES = (
    re.compile(rf"arn:(?P<partition>[a-z-]+):iam::(?P<account>\d{{12}}):user{_PATH}{_NAME}"),
    re.compile(rf"arn:(?P<partition>[a-z-]+):sts::(?P<account>\d{{12}}):assumed-role/{_NAME}/{_NAME}"),
    re.compile(rf"arn:(?P<partition>[a-z-]+):iam::(?P<account>\d{{12}}):role{_PATH}(?P<role>{_NAME})"),
)


def check_account(account: str) -> str:
    """A 12-digit AWS account id, or ValueError."""
    if not _ACCOUNT.fullmatch(account):
        raise ValueError(f"an account must be a 12-digit AWS account id, not {account!r}")
    return account


def token_caller_arn(identity: str) -> tuple[str, str]:
    """The ARN and account the admin token acts as, for a configured ``token_identity``.

    A role ARN becomes a session of that role named ``admin-token``: approvals compare role sessions by
    role, so every session of the admin's role counts as the admin.
    """
    if identity == TOKEN_CALLER_ARN:
        return TOKEN_CALLER_ARN, ""
    for form in _TOKEN_IDENTITIES:
        match = form.fullmatch(identity)
        if match is None:
            continue
        if "role" in form.groupindex:
            partition, account, role = match["partition"], match["account"], match["role"]
            return f"arn:{partition}:sts::{account}:assumed-role/{role}/{TOKEN_SESSION}", account
        return identity, match["account"]
    raise ValueError(
        f"the admin token's identity must be {TOKEN_CALLER_ARN!r} or the admin's AWS principal: an IAM user "
        "ARN (arn:aws:iam::111111111111:user/NAME), a role ARN (arn:aws:iam::111111111111:role/NAME) or an "
        f"assumed-role ARN as `aws sts get-caller-identity` prints it, not {identity!r}"
    )


class Unauthenticated(NotAllowed):
    """The caller is not proven (HTTP 401); the message is safe to show the caller."""


class ForeignAccount(NotAllowed):
    """The caller is proven but belongs to an account this endpoint does not serve (HTTP 403)."""


class RateLimited(Unavailable):
    """Too many calls of one kind from one caller or source (HTTP 429); ``retry_after`` is in seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimiter:
    """Token buckets by key (a caller ARN, a source address): ``per_minute`` calls a minute, refilled evenly,
    with a burst of a whole minute's count. Safe to share between threads; keeps at most
    ``MAX_LIMITED_KEYS`` buckets (full ones are forgotten first, as they limit nothing)."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic):
        self.what = what
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int) -> None:
        """Count one call of ``key``, or raise :class:`RateLimited` (counting nothing) if none is left."""
        self._use(key, per_minute, spend=True)

    def check(self, key: str, per_minute: int) -> None:
        """Raise :class:`RateLimited` if ``key`` has no call left now, without counting one."""
        self._use(key, per_minute, spend=False)

    def _use(self, key: str, per_minute: int, *, spend: bool) -> None:
        now, rate = self._clock(), per_minute / 60.0
        with self._lock:
            tokens, then = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - then) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise RateLimited(
                    f"Too many {self.what} for {key}: at most {per_minute} a minute. Retry in {wait} second"
                    f"{'' if wait == 1 else 's'} (after "
                    f"{(datetime.now(UTC) + timedelta(seconds=wait)).strftime('%Y-%m-%dT%H:%M:%SZ')}).",
                    wait,
                )
            if spend:
                if key not in self._buckets and len(self._buckets) >= MAX_LIMITED_KEYS:
                    self._forget_some(now, rate, per_minute)
                self._buckets[key] = (tokens - 1.0, now)

    def _forget_some(self, now: float, rate: float, per_minute: int) -> None:
        self._buckets = {
            key: (tokens, then)
            for key, (tokens, then) in self._buckets.items()
            if tokens + (now - then) * rate < per_minute
        }
        while len(self._buckets) >= MAX_LIMITED_KEYS:
            del self._buckets[next(iter(self._buckets))]


@dataclass(frozen=True)
class Caller:
    """A proven caller; ``requester`` is what access requests record (``None`` for the admin token)."""

    arn: str
    account: str
    is_admin: bool
    requester: Requester | None
    via: Literal["proof", "token"]


@dataclass(frozen=True)
class _RoleFacts:
    arn: str
    user: str | None
    project: str | None


@dataclass(frozen=True)
class _Inspected:
    """A proof that passed every local check: what STS is sent, and who the signer claims to be."""

    forwarded: dict[str, str]
    body: str
    signed_at: datetime
    access_key: str


class Authenticator:
    """Turns an ``Authorization`` header, for one call, into a :class:`Caller`; safe to share between threads.

    ``aws`` holds the endpoint's own credentials, used for ``sts:GetCallerIdentity`` once at start (when no
    accounts are configured: the endpoint serves its own) and for ``iam:GetRole`` on a caller's role to read
    MLSpace's ``user`` and ``project`` tags. ``transport`` replaces the HTTP transport to STS and ``clock``
    the monotonic clock of the rate limits (tests).
    """

    def __init__(
        self,
        settings: AuthSettings,
        aws: Aws,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._aws = aws
        self.settings = settings if settings.accounts else replace(settings, accounts=(self._own_account(),))
        _, token_account = token_caller_arn(self.settings.token_identity)
        if token_account and token_account not in self.settings.accounts:
            raise ValueError(
                f"the admin token's identity {self.settings.token_identity} is in account {token_account}, "
                f"which is not one this endpoint serves ({', '.join(self.settings.accounts)})"
            )
        self._sts_url = settings.sts_endpoint.rstrip("/") + "/"
        self._sts_host = host_of(self._sts_url)
        self._http = httpx.Client(timeout=STS_TIMEOUT_SECONDS, transport=transport, follow_redirects=False)
        self._roles: TimedCache[_RoleFacts | None] = TimedCache(ROLE_CACHE_SECONDS)
        # Verified proofs by SHA-256 of the proof and the call it was used for: (valid until, caller).
        # A repeat of the same call skips the STS round trip; any other call never reaches this cache.
        self._proofs: dict[bytes, tuple[datetime, Caller]] = {}
        self._proofs_lock = threading.Lock()
        # Access keys STS has verified, with their caller: an over-limit caller is refused before STS.
        self._key_callers: dict[str, str] = {}
        self._proof_limits = RateLimiter("identity proofs", clock)
        self._refusal_limits = RateLimiter("refused identity proofs", clock)
        self._diagnosis_limits = RateLimiter("diagnoses", clock)

    def _own_account(self) -> str:
        sts = self._aws.client("sts")
        with aws_call(sts, "sts:GetCallerIdentity"):
            account = str(sts.get_caller_identity()["Account"])
        logger.info("callers must be principals of account %s, the endpoint's own", account)
        return account

    def close(self) -> None:
        self._http.close()

    def authenticate(
        self,
        authorization_header: str | None,
        call: Call | None = None,
        *,
        source: str | None = None,
        now: datetime | None = None,
    ) -> Caller:
        """The proven caller of ``call`` (the request received: a proof must be made for it), or
        :class:`Unauthenticated`; ``source`` is the client's address, for the limit on refused attempts;
        ``now`` (timezone-aware) is for tests.

        Raises :class:`ForeignAccount` for a caller of an account this endpoint does not serve,
        :class:`RateLimited` over a limit, and ``EndpointUnreachable`` or ``AwsRequestFailed`` when STS or
        IAM fail: that is the endpoint's problem (503), not the caller's.
        """
        origin = f"source {source or 'unknown'}"
        self._refusal_limits.check(origin, self.settings.refusals_per_minute)
        try:
            return self._authenticate(authorization_header, call, now or datetime.now(UTC))
        except Unauthenticated as refusal:
            logger.info("refused a caller from %s: %s", origin, refusal)
            with contextlib.suppress(RateLimited):  # the last one counted; the next attempt gets the 429
                self._refusal_limits.take(origin, self.settings.refusals_per_minute)
            raise

    def limit_diagnosis(self, caller: Caller) -> None:
        """Count one diagnosis for ``caller``, or raise :class:`RateLimited`."""
        self._diagnosis_limits.take(caller.arn, self.settings.diagnoses_per_minute)

    def _authenticate(self, header: str | None, call: Call | None, now: datetime) -> Caller:
        if not header or not header.strip():
            raise Unauthenticated(f"no Authorization header; send {ACCEPTED_SCHEMES}")
        if len(header) > MAX_HEADER_CHARS:
            raise Unauthenticated(f"the Authorization header is over {MAX_HEADER_CHARS} characters")
        # The scheme is never echoed: a header without one may be a bare secret.
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == TOKEN_SCHEME.lower():
            return self._token_caller(value.strip())
        if scheme.lower() != PROOF_SCHEME.lower():
            raise Unauthenticated(
                f"the Authorization scheme is not one this endpoint accepts; send {ACCEPTED_SCHEMES}"
            )
        if call is None:
            raise Unauthenticated("this endpoint cannot tell which call the proof is for, so it takes none")
        proof = value.strip()
        inspected = self._inspect(proof, call, now)  # every local check, on every use of a proof
        key = hashlib.sha256("\n".join((proof, call.method, call.path, call.body_sha256)).encode()).digest()
        with self._proofs_lock:
            cached = self._proofs.get(key)
            known = self._key_callers.get(inspected.access_key)
        if cached is not None and now < cached[0]:
            return self._admitted(cached[1])
        if known is not None:  # never counts: a forger naming someone's key must not use up their calls
            self._proof_limits.check(known, self.settings.proofs_per_minute)
        arn, account = self._ask_sts(inspected.forwarded, inspected.body)
        with self._proofs_lock:
            if len(self._key_callers) >= MAX_CACHED_PROOFS:
                self._key_callers.clear()
            self._key_callers[inspected.access_key] = arn
        self._proof_limits.take(arn, self.settings.proofs_per_minute)
        self._check_account(arn, account)
        caller = self._caller(arn, account)
        self._remember(key, inspected.signed_at + self.settings.max_age, caller, now)
        return caller

    def _admitted(self, caller: Caller) -> Caller:
        """A caller from the cache, counted and checked as a new one is."""
        self._proof_limits.take(caller.arn, self.settings.proofs_per_minute)
        self._check_account(caller.arn, caller.account)
        return caller

    def _check_account(self, arn: str, account: str) -> None:
        accepted = self.settings.accounts
        if account not in accepted:
            raise ForeignAccount(
                f"{arn} is a principal of account {account}; this endpoint serves only principals of the "
                f"MLSpace account{'' if len(accepted) == 1 else 's'} {', '.join(accepted)}."
            )

    def _remember(self, key: bytes, valid_until: datetime, caller: Caller, now: datetime) -> None:
        with self._proofs_lock:
            if len(self._proofs) >= MAX_CACHED_PROOFS:
                self._proofs = {k: entry for k, entry in self._proofs.items() if now < entry[0]}
            if len(self._proofs) >= MAX_CACHED_PROOFS:
                del self._proofs[next(iter(self._proofs))]
            self._proofs[key] = (valid_until, caller)

    # ----------------------------------------------------------------------------------------- proofs

    def _inspect(self, proof: str, call: Call, now: datetime) -> _Inspected:
        """Everything we can check locally, so that STS is asked only about a proof made for this call."""
        try:
            headers, body = decode_proof(proof)
        except MalformedProof as error:
            raise Unauthenticated(str(error)) from None
        named = _by_name(headers)
        authorization = named.get("authorization")
        if authorization is None:
            raise Unauthenticated("the proof has no SigV4 Authorization header")
        match = _SIGV4.match(authorization)
        if match is None:
            raise Unauthenticated("the proof's Authorization header is not an AWS4-HMAC-SHA256 signature")
        if "x-amz-date" not in named:
            raise Unauthenticated("the proof has no X-Amz-Date header")
        signed = match["signed"].split(";")
        if AUDIENCE not in signed:
            raise Unauthenticated(
                f"the proof does not sign its {AUDIENCE_HEADER} header, so it could be meant for any endpoint"
            )
        for name in signed:
            if name not in named:
                raise Unauthenticated(f"the proof signs the header {_shown(name)} but does not include it")
        _check_framing(named, body)
        for name in REQUIRED_SIGNED:
            if name not in signed:
                raise Unauthenticated(f"the proof must sign its {name} header")
        if "date" in named:
            raise Unauthenticated("the proof has a Date header; SigV4 proofs use X-Amz-Date only")
        if named[AUDIENCE] != self.settings.audience:
            raise Unauthenticated(
                f"the proof was made for the endpoint {_shown(named[AUDIENCE])}, "
                f"not this one ({self.settings.audience})"
            )
        _check_call(named, signed, call)
        _check_body(body, named)
        signed_at = self._check_fresh(named["x-amz-date"], now)
        if named["host"].lower() != self._sts_host:
            raise Unauthenticated(
                f"the proof was signed for the STS host {_shown(named['host'])}; "
                f"this endpoint verifies proofs with {self._sts_host}"
            )
        self._check_scope(match["scope"], named["x-amz-date"])
        forwarded = {
            name: text
            for name, text in headers.items()
            if name.lower() in signed or name.lower() == "authorization"
        }
        return _Inspected(forwarded, body, signed_at, match["scope"].split("/", 1)[0])

    def _check_fresh(self, amz_date: str, now: datetime) -> datetime:
        try:
            signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
        except ValueError:
            raise Unauthenticated(
                "the proof's X-Amz-Date is not a SigV4 timestamp (YYYYMMDDTHHMMSSZ)"
            ) from None
        age = now - signed_at
        if age > self.settings.max_age:
            raise Unauthenticated(
                f"the proof's X-Amz-Date is {_duration(age)} old; proofs last "
                f"{_duration(self.settings.max_age)}: make a new one"
            )
        if -age > self.settings.clock_skew:
            raise Unauthenticated(
                f"the proof's X-Amz-Date is {_duration(-age)} in the future; "
                "check the clock where it was made"
            )
        return signed_at

    def _check_scope(self, scope: str, amz_date: str) -> None:
        """The credential scope must be STS's, in our region, on the signing day (STS checks it too)."""
        parts = scope.split("/")
        expected = [amz_date[:8], self.settings.sts_region, "sts", "aws4_request"]
        if len(parts) != 5 or parts[1:] != expected:
            raise Unauthenticated(
                f"the proof's credential scope must be <day>/{self.settings.sts_region}/sts/aws4_request "
                "for the day of its X-Amz-Date"
            )

    def _ask_sts(self, headers: dict[str, str], body: str) -> tuple[str, str]:
        """Replay the signed request to our own STS endpoint; STS's verdict on the signature is final."""
        sent = {
            name: text for name, text in headers.items() if name.lower() not in ("host", "content-length")
        }
        sent["Host"] = self._sts_host
        try:
            response = self._http.post(self._sts_url, headers=sent, content=body.encode())
        except httpx.HTTPError as error:
            # Not chained: httpx errors hold the request, whose headers carry the signature and token.
            raise EndpointUnreachable(
                f"Could not reach STS at {self.settings.sts_endpoint} to verify an identity proof "
                f"({type(error).__name__})."
            ) from None
        try:
            root: ElementTree.Element | None = ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            root = None
        if response.status_code != 200:
            code = _text(root, "Code")
            if response.status_code >= 500 or code in _STS_UNAVAILABLE:
                raise AwsRequestFailed(
                    f"STS at {self.settings.sts_endpoint} could not verify an identity proof "
                    f"(HTTP {response.status_code}{f', {code}' if code else ''}); try again shortly."
                )
            if code is None or not _ERROR_CODE.match(code):
                raise Unauthenticated(f"STS refused the proof (HTTP {response.status_code})")
            hint = _STS_HINTS.get(code)
            raise Unauthenticated(f"STS refused the proof ({code}){f': {hint}' if hint else ''}")
        arn, account = _text(root, "Arn"), _text(root, "Account")
        try:
            parsed = CallerArn.parse(arn or "")
        except ValueError:
            parsed = None
        if parsed is None or parsed.account != account:
            raise AwsRequestFailed(f"STS at {self.settings.sts_endpoint} answered without a caller ARN.")
        return parsed.arn, parsed.account

    # ---------------------------------------------------------------------------------------- callers

    def _caller(self, arn: str, account: str) -> Caller:
        caller = CallerArn.parse(arn)
        candidates = [arn]
        role = caller.name if caller.kind == "assumed-role" else None
        user: str | None = None
        project: str | None = None
        if role:
            candidates.append(iam_role_arn(caller.partition, account, role))
            facts = self._roles.get((account, role), lambda: self._role_facts(account, role))
            if facts is not None:
                candidates.append(facts.arn)  # with its path, if it has one
                user, project = facts.user, facts.project
        is_admin = any(
            fnmatchcase(candidate, pattern)
            for candidate in candidates
            for pattern in self.settings.admin_arn_patterns
        )
        requester = Requester(arn=arn, account=account, role=role, user=user, project=project)
        return Caller(arn=arn, account=account, is_admin=is_admin, requester=requester, via="proof")

    def _role_facts(self, account: str, role: str) -> _RoleFacts | None:
        """The role's ARN and MLSpace tags, or ``None`` when it cannot be read or is not in our account."""
        iam = self._aws.client("iam")
        try:
            with aws_call(iam, "iam:GetRole"):
                found = iam.get_role(RoleName=role)["Role"]
        except ClientError:
            return None  # denied or gone: the caller is still proven, only without user and project
        role_arn = str(found["Arn"])
        # GetRole reads our account; a same-named role of another account must not lend it its tags.
        if CallerArn.parse(role_arn).account != account:
            return None
        tags = {str(tag["Key"]).lower(): str(tag["Value"]) for tag in found.get("Tags", [])}
        if is_shared_role(tags):  # its tags name no person and no project (MLSpaceApplication...)
            return _RoleFacts(role_arn, None, None)
        return _RoleFacts(role_arn, tags.get("user"), tags.get("project"))

    # ------------------------------------------------------------------------------------------ token

    def _token_caller(self, token: str) -> Caller:
        path = self.settings.admin_token_file
        if path is None:
            raise Unauthenticated(f"this endpoint accepts no admin token; send an {PROOF_SCHEME} proof")
        expected = _read_token(path)
        if expected is None or not token or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Unauthenticated("the admin token is not valid for this endpoint")
        arn, account = token_caller_arn(self.settings.token_identity)
        return Caller(arn=arn, account=account, is_admin=True, requester=None, via="token")


def create_admin_token(path: Path, *, overwrite: bool = False) -> str:
    """Write a new random admin token to ``path`` (mode 0600, readable by its owner only) and return it.

    An existing file is kept unless ``overwrite``: replacing it would lock out whoever uses the old token.
    """
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if overwrite:
        write_private(path, token + "\n")
        return token
    try:  # exclusively: two admins creating it at once must not both believe they hold it
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        raise Conflict(
            f"{path} already exists; keep using its token, or replace it on purpose (overwrite)."
        ) from None
    with os.fdopen(descriptor, "w") as stream:
        os.fchmod(stream.fileno(), PRIVATE)  # exactly 0600, whatever the umask
        stream.write(token + "\n")
    return token


def _read_token(path: Path) -> str | None:
    """The token in ``path``, or ``None`` (logged for the operator) if it is missing, empty or not private."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "admin tokens are refused: %s is accessible to other users (mode %o); chmod 600 it",
                path,
                stat.S_IMODE(mode),
            )
            return None
        token = path.read_text().strip()
    except OSError as error:
        logger.warning("admin tokens are refused: cannot read %s (%s)", path, type(error).__name__)
        return None
    return token or None


def _by_name(headers: dict[str, str]) -> dict[str, str]:
    """Headers by lower-case name; refuse duplicates and anything that is not a plain HTTP header."""
    named: dict[str, str] = {}
    for name, text in headers.items():
        if not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(text):
            raise Unauthenticated("the proof's headers are not valid HTTP header names and values")
        if name.lower() in named:
            raise Unauthenticated(f"the proof repeats the header {_shown(name)}")
        named[name.lower()] = text
    return named


def _check_framing(named: dict[str, str], body: str) -> None:
    """Refuse hop-by-hop and framing headers: they are never replayed to STS, so STS would check a
    signature over headers it did not get, or frame the body as the proof's maker chose."""
    for name in named:
        if name in HOP_BY_HOP or name.startswith("proxy-"):
            raise Unauthenticated(
                f"the proof carries the header {_shown(name)}, a hop-by-hop or framing header that is never "
                "sent to STS; make the proof without it"
            )
    length = named.get("content-length")
    if length is not None and length != str(len(body.encode())):
        raise Unauthenticated("the proof's Content-Length is not the length of its body")


def _check_call(named: dict[str, str], signed: list[str], call: Call) -> None:
    """The proof must sign the headers naming one call, and that call must be the one received."""
    expected = {name.lower(): value for name, value in call.headers().items()}
    for name, part in CALL_HEADERS.items():
        if name not in signed:
            raise Unauthenticated(
                f"the proof does not sign the {part} of the call it is for ({name}), so it could be replayed "
                "on another call; make one proof per call with a current mlspace-s3magic"
            )
    if named[CALL_HEADERS_BY_PART["method"]] != call.method:
        raise Unauthenticated(
            f"the proof was made for a {_shown(named[CALL_HEADERS_BY_PART['method']])} call, not this "
            f"{call.method}: make one proof per call"
        )
    if named[CALL_HEADERS_BY_PART["path"]] != call.path:
        raise Unauthenticated(
            f"the proof was made for the path {_shown(named[CALL_HEADERS_BY_PART['path']])}, not this call's "
            f"{_shown(call.path)}: make one proof per call"
        )
    if named[CALL_HEADERS_BY_PART["body"]] != expected[CALL_HEADERS_BY_PART["body"]]:
        raise Unauthenticated(
            "the proof was made for another request body (its SHA-256 differs): make one proof per call"
        )


def _check_body(body: str, named: dict[str, str]) -> None:
    """Only ``GetCallerIdentity`` may be replayed: a proof must never make STS do anything else."""
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = []
    if len(pairs) != len(EXPECTED_BODY) or dict(pairs) != EXPECTED_BODY:
        raise Unauthenticated(
            "the proof's body must be exactly Action=GetCallerIdentity&Version=2011-06-15 "
            "(it signs another request)"
        )
    # A signed payload hash stands in for the body in SigV4: it must be this body's.
    claimed = named.get("x-amz-content-sha256")
    if claimed is not None and claimed != hashlib.sha256(body.encode()).hexdigest():
        raise Unauthenticated("the proof's X-Amz-Content-SHA256 is not the hash of its body")


def _text(root: ElementTree.Element | None, local_name: str) -> str | None:
    """The text of the first element called ``local_name`` in any namespace (STS and moto differ)."""
    if root is None:
        return None
    for element in root.iter():
        if element.tag.rpartition("}")[2] == local_name and element.text:
            return element.text.strip()
    return None


def _shown(value: str) -> str:
    """A client-supplied value, quoted and cut short, for a message."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds} second{'' if seconds == 1 else 's'}"
    minutes, rest = divmod(seconds, 60)
    shown = f"{minutes} minute{'' if minutes == 1 else 's'}"
    return f"{shown} {rest} second{'' if rest == 1 else 's'}" if rest and minutes < 10 else shown
