"""Talk to the admin endpoint as a proven AWS identity (or the admin's local token), with an outbox.

Every call carries a new identity proof bound to that call (its method, path and body; see
:mod:`mlspace_s3magic.access_requests.proof`): signing is local, so a proof costs no round trip, and the
endpoint refuses a proof made for another call. A submission the endpoint cannot be reached for is queued
on disk with its idempotency key and sent later, so the user never loses a request and the endpoint never
files one twice.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import TypeAdapter, ValidationError

from mlspace_s3magic.access_requests.outbox import Outbox
from mlspace_s3magic.access_requests.proof import Call, make_proof
from mlspace_s3magic.core.access import AccessRequest, AuditEntry, NewAccessRequest, RequestView, SharedBucket
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.errors import (
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    S3MagicError,
    Unavailable,
    UpstreamFailed,
)

ADMIN_URL_ENV = "S3ACCESS_ADMIN_URL"
DIAGNOSE_TIMEOUT_SECONDS = 5.0  # a check waits this long for the endpoint before its own reading answers
T = TypeVar("T")
VIEW = TypeAdapter(RequestView)
VIEWS = TypeAdapter(list[RequestView])
BUCKET = TypeAdapter(SharedBucket)
BUCKETS = TypeAdapter(list[SharedBucket])
AUDIT = TypeAdapter(list[AuditEntry])


class AdminUnreachable(Unavailable):
    """The endpoint did not answer (down, wrong URL, network)."""


class AdminRefused(S3MagicError):
    """The endpoint answered with an error; the message is its own explanation. Only its subclasses are
    raised (see :func:`admin_refused`), so the endpoint's meaning reaches the caller's shell."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"The admin endpoint refused ({status}): {detail}")
        self.status = status


class AdminRefusedInput(AdminRefused, InvalidInput):
    """The endpoint found the call malformed (400)."""


class AdminForbade(AdminRefused, NotAllowed):
    """The endpoint did not prove the caller (401) or does not let them do this (403)."""


class AdminFoundNothing(AdminRefused, NotFound):
    """No request, or no registry entry, by that name that the caller may see (404)."""


class AdminConflict(AdminRefused, Conflict):
    """The request is not in a status that allows this (409)."""


class AdminBusy(AdminRefused, Unavailable):
    """The endpoint limits the caller (429) or cannot reach its store now (503)."""


class AdminFailed(AdminRefused, UpstreamFailed):
    """Any other status: the endpoint (or AWS behind it) failed."""


# The endpoint's statuses (admin/app.py) read back as meanings; any other is AdminFailed.
REFUSED_BY_STATUS: dict[int, type[AdminRefused]] = {
    400: AdminRefusedInput,
    401: AdminForbade,
    403: AdminForbade,
    404: AdminFoundNothing,
    409: AdminConflict,
    429: AdminBusy,
    503: AdminBusy,
}


def admin_refused(status: int, detail: str) -> AdminRefused:
    """The endpoint's refusal as the error of its meaning."""
    return REFUSED_BY_STATUS.get(status, AdminFailed)(status, detail)


def normalise_url(url: str) -> str:
    """The endpoint's identity as proofs name it: no trailing slash, so both sides spell it alike."""
    return url.rstrip("/")


class AdminClient:
    """One endpoint, one identity: AWS credentials (``aws``) or the admin's local ``token``."""

    def __init__(
        self,
        base_url: str,
        *,
        aws: Aws | None = None,
        token: str | None = None,
        outbox: Outbox | None = None,
        timeout: float = 10.0,
        diagnose_timeout: float = DIAGNOSE_TIMEOUT_SECONDS,
    ):
        if aws is None and token is None:
            raise ValueError("an AdminClient needs AWS credentials or an admin token")
        self.base_url = normalise_url(base_url)
        self._aws = aws
        self._token = token
        self.outbox = outbox
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, follow_redirects=False)
        self._diagnose_timeout = diagnose_timeout
        self._base_path = urlsplit(self.base_url).path.rstrip("/")

    def authorization(self, method: str, path: str, body: bytes = b"") -> str:
        """The ``Authorization`` value for one call: ``path`` with its query, relative to the endpoint's URL
        and encoded as sent, and the body's exact bytes. A new proof each time (the admin token as is)."""
        if self._token is not None:
            return f"Bearer {self._token}"
        assert self._aws is not None
        return make_proof(self._aws, self.base_url, Call.of(method, path, body))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        request = self._http.build_request(method, path, **kwargs)
        sent = request.url.raw_path.decode("ascii")  # path and query, percent-encoded as on the wire
        if self._base_path and sent.startswith(self._base_path + "/"):
            sent = sent[len(self._base_path) :]
        request.headers["Authorization"] = self.authorization(method, sent, request.content)
        try:
            response = self._http.send(request)
        except httpx.TransportError as error:
            raise AdminUnreachable(
                f"The admin endpoint {self.base_url} did not answer ({type(error).__name__}); check "
                f"S3Access.admin_url / ${ADMIN_URL_ENV}."
            ) from None
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail", response.text))
            except ValueError:
                detail = response.text[:500]
            raise admin_refused(response.status_code, detail)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:  # a proxy's sign-in page, say: not the endpoint's answer
            raise UpstreamFailed(
                f"{self.base_url} answered {response.status_code} with something that is not JSON: is "
                f"S3Access.admin_url / ${ADMIN_URL_ENV} the admin endpoint?"
            ) from None

    # -- a notebook user's calls ----------------------------------------------------------------------
    def submit(self, new: NewAccessRequest) -> AccessRequest | None:
        """The filed request, or None when the endpoint is unreachable and it was queued in the outbox."""
        try:
            view = self._parse(VIEW, self._call("POST", "/v1/requests", json=new.model_dump(mode="json")))
        except AdminUnreachable:
            if self.outbox is None:
                raise
            self.outbox.put(new)
            return None
        if self.outbox is not None:
            self.outbox.remove(new.idempotency_key)
        return view.request

    def flush_outbox(self) -> list[AccessRequest]:
        """Send every queued request; the endpoint's idempotency makes a resend harmless."""
        if self.outbox is None:
            return []
        sent = []
        for new in self.outbox.pending():
            view = self._parse(VIEW, self._call("POST", "/v1/requests", json=new.model_dump(mode="json")))
            self.outbox.remove(new.idempotency_key)
            sent.append(view.request)
        return sent

    def requests(self, status: str | None = None) -> list[AccessRequest]:
        params = {"status": status} if status else None
        views = self._parse(VIEWS, self._call("GET", "/v1/requests", params=params))
        return [view.request for view in views]

    def show(self, request_id: str) -> RequestView:
        return self._parse(VIEW, self._call("GET", f"/v1/requests/{request_id}"))

    def act(self, request_id: str, action: str, *, reason: str | None = None) -> AccessRequest:
        """approve, deny, apply, revoke (admins) or cancel (the requester); a deny needs the ``reason``
        its requester will read (the endpoint states the rule)."""
        body = {"json": {"reason": reason}} if reason is not None else {}
        return self._parse(VIEW, self._call("POST", f"/v1/requests/{request_id}/{action}", **body)).request

    def buckets(self) -> list[SharedBucket]:
        return self._parse(BUCKETS, self._call("GET", "/v1/buckets"))

    def me(self) -> dict[str, Any]:
        """``{"arn", "admin"}``: who the endpoint proves the caller to be, and whether it is an admin."""
        return dict(self._call("GET", "/v1/me"))

    # -- the admin's calls ----------------------------------------------------------------------------
    def put_bucket(self, bucket: SharedBucket) -> SharedBucket:
        return self._parse(BUCKET, self._call("POST", "/v1/buckets", json=bucket.model_dump(mode="json")))

    def delete_bucket(self, name: str) -> None:
        self._call("DELETE", f"/v1/buckets/{name}")

    def audit(self, request_id: str | None = None) -> list[AuditEntry]:
        params = {"request_id": request_id} if request_id else None
        return self._parse(AUDIT, self._call("GET", "/v1/audit", params=params))

    def diagnose(self, target: str) -> dict[str, Any]:
        """The endpoint's diagnosis of the caller's access; soon given up on, as a check falls back."""
        return dict(
            self._call("GET", "/v1/diagnose", params={"bucket": target}, timeout=self._diagnose_timeout)
        )

    def reconcile(self, *, remove_orphans: bool = False) -> dict[str, Any]:
        """Keep live grants whole and list (or remove) orphaned statements; admins only."""
        params = {"remove_orphans": "true"} if remove_orphans else None
        return dict(self._call("POST", "/v1/reconcile", params=params))

    def close(self) -> None:
        self._http.close()

    def _parse(self, shape: TypeAdapter[T], data: Any) -> T:
        try:
            return shape.validate_python(data)
        except ValidationError as error:
            raise UpstreamFailed(
                f"The admin endpoint {self.base_url} answered in an unexpected shape: {error}"
            ) from None


def admin_url_from_environment() -> str | None:
    return os.environ.get(ADMIN_URL_ENV) or None
