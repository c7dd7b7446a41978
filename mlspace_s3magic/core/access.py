"""Access requests as data: what a notebook asks for, what the admin endpoint records, and their states.

One set of models serves the admin endpoint's API, its store, the notebook client and the JupyterLab
server extension, so input is validated the same way wherever it arrives.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.names import InvalidBucketReference, folder_prefix, validate_bucket_name
from mlspace_s3magic.core.render import without_controls

MAX_DAYS = 365
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    AWAITING_OWNER = "awaiting-owner"
    APPLIED = "applied"
    DENIED = "denied"
    FAILED = "failed"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


# Which status may follow which: the store refuses any other change, so no route can skip a step.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.PENDING: frozenset({RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.CANCELLED}),
    RequestStatus.APPROVED: frozenset(
        {RequestStatus.APPLIED, RequestStatus.AWAITING_OWNER, RequestStatus.FAILED, RequestStatus.CANCELLED}
    ),
    # A request that wrote something (awaiting the owner, or failed) can always be taken back.
    RequestStatus.AWAITING_OWNER: frozenset(
        {
            RequestStatus.AWAITING_OWNER,  # applied again while the owner has not acted yet
            RequestStatus.APPLIED,
            RequestStatus.FAILED,
            RequestStatus.CANCELLED,
            RequestStatus.REVOKED,
            RequestStatus.EXPIRED,
        }
    ),
    RequestStatus.FAILED: frozenset(
        {
            RequestStatus.APPLIED,
            RequestStatus.AWAITING_OWNER,
            RequestStatus.FAILED,
            RequestStatus.CANCELLED,
            RequestStatus.REVOKED,
        }
    ),
    RequestStatus.APPLIED: frozenset({RequestStatus.REVOKED, RequestStatus.EXPIRED}),
    RequestStatus.DENIED: frozenset(),
    RequestStatus.REVOKED: frozenset(),
    RequestStatus.EXPIRED: frozenset(),
    RequestStatus.CANCELLED: frozenset(),
}


# How a sentence names a request's fields where "The <field>" would read oddly (core/problems.py).
REQUEST_SUBJECTS = {"bucket": "The bucket name", "days": "Days", "idempotency_key": "The idempotency key"}


class NewAccessRequest(BaseModel):
    """What a notebook user submits; unknown fields are refused, so a typo is an error, not a default."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bucket: str = Field(min_length=1, max_length=255, description="The bucket, as S3 names it.")
    prefix: str = Field(
        default="",
        max_length=1024,
        description="Only this folder (datasets and datasets/ both mean datasets/); empty: the whole bucket.",
    )
    access: AccessLevel = Field(description="list, read, or read-write.")
    reason: str = Field(min_length=3, max_length=2000, description="Why you need it, for the admin.")
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS, description="Expire after this many days.")
    idempotency_key: str = Field(
        description="Chosen by the client; sending the same key again returns the same request."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        try:
            validate_bucket_name(value)
        except InvalidBucketReference as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value.startswith("/"):
            raise ValueError("a prefix does not start with '/': write data/2026/, not /data/2026/")
        if any(mark in value for mark in ("*", "?")):
            raise ValueError("a prefix is literal text: wildcards (* ?) are not accepted")
        if without_controls(value) != value:
            raise ValueError("a prefix may not hold control characters (such as escape sequences)")
        return folder_prefix(value)  # "datasets" is the folder "datasets/", never "datasets-private/" too

    @field_validator("reason", mode="before")
    @classmethod
    def _reason(cls, value: object) -> object:
        """Control characters (escape sequences) removed: the reason is shown in the admin's terminal."""
        return without_controls(value, lines=True) if isinstance(value, str) else value

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not IDEMPOTENCY_KEY.match(value):
            raise ValueError("use 8 to 128 letters, digits, '-' or '_' (a UUID is ideal)")
        return value


class Requester(BaseModel):
    """Who asked, as proven to the endpoint (never as the client described itself)."""

    arn: str
    account: str
    role: str | None = None
    user: str | None = None
    project: str | None = None


class LayerState(StrEnum):
    """Where one layer's change of a request stands, as its requester is told."""

    PLANNED = "planned"
    WRITTEN = "written"
    AWAITING_OWNER = "awaiting the owner"
    AWAITING_OWNER_REMOVAL = "awaiting the owner's removal"
    REMOVED = "removed"
    NOT_WRITTEN = "not written"


class LayerSummary(BaseModel):
    """One layer of a request in a line a requester may read: which document (named only when it is in the
    requester's own account), what the change allows, and whether it is written."""

    layer: str
    target: str
    allows: str
    state: LayerState

    def line(self) -> str:
        return f"{self.target}: {self.allows} ({self.state.value})"


class AccessRequest(BaseModel):
    """A request as the endpoint records it."""

    id: str
    requester: Requester
    bucket: str
    prefix: str
    access: AccessLevel
    reason: str
    days: int | None
    idempotency_key: str
    status: RequestStatus
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
    plan: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    decision_reason: str | None = Field(
        default=None,
        description="Why an admin denied the request, in their words, for the requester; None otherwise.",
    )
    summary: list[LayerSummary] | None = Field(
        default=None,
        description="The requester's view: one line per layer instead of the plan and the result (which "
        "hold other accounts' documents); None in the admin's view, which has both.",
    )

    @property
    def sid_stem(self) -> str:
        """Every statement this request adds carries a Sid from this stem, so revoke finds exactly those."""
        return "S3AccessReq" + re.sub(r"[^A-Za-z0-9]", "", self.id)


class AuditEntry(BaseModel):
    """One change, append-only: who did what to which request, when, and the status before and after."""

    seq: int
    at: datetime
    actor: str
    action: str
    request_id: str | None = None
    from_status: RequestStatus | None = None
    to_status: RequestStatus | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class RequestView(BaseModel):
    """A request as the API shows it: the record, and its history for whoever may see it."""

    request: AccessRequest
    history: list[AuditEntry] = Field(default_factory=list)


class SharedBucket(BaseModel):
    """A registry entry as the admin keeps it; ``owner_role_arn`` lets the endpoint edit the bucket policy."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bucket: str = Field(min_length=1, max_length=255)
    owner_account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    description: str = Field(default="", max_length=500)

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: object) -> object:
        return without_controls(value) if isinstance(value, str) else value

    # IAM's characters for role paths and names only: an ARN is printed in terminals and put in policies.
    owner_role_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]+$"
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        return NewAccessRequest._bucket_name(value)
