"""What the admin endpoint does, independent of HTTP: who may do what to which request, and in what order.

Every state change goes through the store's compare-and-set with an audit entry, so two admins (or two
endpoint instances) cannot both approve, apply or revoke the same request, and nothing happens unrecorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mlspace_s3magic.admin.apply import PlanOutdated, PlanRefused, apply, revoke
from mlspace_s3magic.admin.auth import Authenticator, Caller
from mlspace_s3magic.admin.plan import (
    OwnerSessions,
    Plan,
    Planner,
    accounts_for,
    read_live,
    requester_identity,
)
from mlspace_s3magic.admin.store import NotFound, Store
from mlspace_s3magic.admin.views import view_for
from mlspace_s3magic.admin.webhook import Webhook
from mlspace_s3magic.core.access import (
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    Requester,
    RequestStatus,
    RequestView,
    SharedBucket,
)
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.capabilities import evaluate_capabilities
from mlspace_s3magic.core.diagnosis import Diagnosis
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.identity import CallerArn
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference

EXPIRY_ACTOR = "expiry"
POOL_SIZE = 16
# How long a diagnosis stands unless this endpoint changes a layer first: changes made by hand elsewhere
# show within this time.
DIAGNOSIS_SECONDS = 60.0


class Forbidden(S3MagicError):
    """The caller is known but may not do this; the message says why."""


class AdminService:
    """The endpoint's operations over a store, an authenticator and the MLSpace admin's AWS clients."""

    def __init__(
        self,
        store: Store,
        authenticator: Authenticator,
        aws: Aws,
        *,
        owner_sessions: OwnerSessions,
        webhook: Webhook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.store = store
        self.authenticator = authenticator
        self.aws = aws
        self.owner_sessions = owner_sessions
        self.planner = Planner(aws, owner_sessions=owner_sessions, owners=self._owner)
        self.webhook = webhook
        self.clock = clock
        # Applies and revokes edit shared documents (the boundary); one at a time, or one could undo another.
        self._writing = threading.Lock()
        self._diagnoses: TimedCache[Diagnosis] = TimedCache(DIAGNOSIS_SECONDS)

    @contextmanager
    def _changing_layers(self) -> Iterator[None]:
        """Forget every diagnosis after a write, even a failed one (it may have written part)."""
        try:
            yield
        finally:
            self._diagnoses.clear()

    # -- who ------------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> Caller:
        return self.authenticator.authenticate(authorization)

    @staticmethod
    def _admin(caller: Caller, doing: str) -> None:
        if not caller.is_admin:
            raise Forbidden(f"Only an admin may {doing}; {caller.arn} is not one of the configured admins.")

    @staticmethod
    def _requester(caller: Caller) -> Requester:
        if caller.requester is None:
            raise Forbidden(
                "Requests are filed by notebook identities proven with AWS, not with the admin token."
            )
        return caller.requester

    def _visible(self, caller: Caller, request_id: str) -> AccessRequest:
        request = self.store.get(request_id)
        if not caller.is_admin and request.requester.arn != caller.arn:
            raise NotFound(f"There is no request {request_id} of yours.")  # never confirm others' ids
        return request

    def _view(self, request: AccessRequest, caller: Caller | None = None) -> RequestView:
        """The request with its history as ``caller`` may see it (:mod:`admin.views`): an admin everything,
        the requester per layer a summary. Without a caller, the admin's view (the admins' actions)."""
        return view_for(
            request, self.store.audit(request_id=request.id), admin=caller is None or caller.is_admin
        )

    def _notify(self, event: str, request: AccessRequest) -> None:
        if self.webhook is not None:
            self.webhook.notify(
                event, {"request": request.model_dump(mode="json", exclude={"plan", "result"})}
            )

    # -- requests -------------------------------------------------------------------------------------
    def submit(self, caller: Caller, new: NewAccessRequest) -> tuple[RequestView, bool]:
        request, created = self.store.create_request(new, self._requester(caller), now=self.clock())
        if created:
            self._notify("submitted", request)
        return self._view(request), created

    def list_requests(self, caller: Caller, status: RequestStatus | None) -> list[RequestView]:
        requester = None if caller.is_admin else caller.arn
        return [
            view_for(r, (), admin=caller.is_admin, with_history=False)
            for r in self.store.list_requests(requester_arn=requester, status=status)
        ]

    def show(self, caller: Caller, request_id: str) -> RequestView:
        """The request with its history; for an admin, a pending request also shows the plan it would get."""
        request = self._visible(caller, request_id)
        if caller.is_admin and request.status is RequestStatus.PENDING:
            request = request.model_copy(update={"plan": self._plan(request).to_dict()})
        return self._view(request, caller)

    def _plan(self, request: AccessRequest) -> Plan:
        return self.planner.plan(request, self._bucket(request.bucket))

    def _bucket(self, name: str) -> SharedBucket | None:
        return next((entry for entry in self.store.list_buckets() if entry.bucket == name), None)

    def _owner(self, bucket: str) -> str | None:
        """The registry's owner account of a bucket, for the boundary's per-account form."""
        entry = self._bucket(bucket)
        return entry.owner_account if entry else None

    def approve(self, caller: Caller, request_id: str) -> RequestView:
        """Approve, fixing the plan the admin saw; apply then writes exactly that plan."""
        self._admin(caller, "approve requests")
        request = self.store.get(request_id)
        if request.requester.arn == caller.arn or _same_role(request.requester.arn, caller.arn):
            raise Forbidden("A requester never approves their own request: ask another admin.")
        plan = self._plan(request)
        approved = self.store.transition(
            request_id,
            RequestStatus.APPROVED,
            actor=caller.arn,
            action="approve",
            now=self.clock(),
            plan=plan.to_dict(),
            detail={"problems": list(plan.problems)},
        )
        self._notify("approved", approved)
        return self._view(approved)

    def deny(self, caller: Caller, request_id: str) -> RequestView:
        self._admin(caller, "deny requests")
        denied = self.store.transition(
            request_id, RequestStatus.DENIED, actor=caller.arn, action="deny", now=self.clock()
        )
        self._notify("denied", denied)
        return self._view(denied)

    def apply(self, caller: Caller, request_id: str) -> RequestView:
        """Write the approved plan, verify as the requester, and record what happened either way."""
        self._admin(caller, "apply requests")
        request = self.store.get(request_id)
        if request.status not in (RequestStatus.APPROVED, RequestStatus.AWAITING_OWNER, RequestStatus.FAILED):
            raise S3MagicError(
                f"Request {request_id} is {request.status.value}; only an approved request is applied."
            )
        if request.plan is None:
            raise S3MagicError(f"Request {request_id} has no plan: approve it first.")
        now = self.clock()
        try:
            with self._writing, self._changing_layers():
                result = apply(
                    Plan.from_dict(request.plan),
                    request,
                    self._bucket(request.bucket),
                    aws=self.aws,
                    owner_sessions=self.owner_sessions,
                )
        except (PlanRefused, PlanOutdated) as error:
            self.store.transition(
                request_id,
                RequestStatus.FAILED,
                actor=caller.arn,
                action="apply",
                now=now,
                detail={"error": str(error)},
            )
            raise
        expires = (
            now + timedelta(days=request.days)
            if request.days and result.status is RequestStatus.APPLIED
            else None
        )
        applied = self.store.transition(
            request_id,
            result.status,
            actor=caller.arn,
            action="apply",
            now=now,
            result=result.to_dict(),
            expires_at=expires,
            detail={"verified": result.verification.allowed},
        )
        self._notify(result.status.value, applied)
        return self._view(applied)

    def revoke(self, caller: Caller, request_id: str) -> RequestView:
        self._admin(caller, "revoke grants")
        return self._view(self._revoke(request_id, RequestStatus.REVOKED, actor=caller.arn))

    def _revoke(self, request_id: str, status: RequestStatus, *, actor: str) -> AccessRequest:
        request = self.store.get(request_id)
        if request.status is not RequestStatus.APPLIED:
            raise S3MagicError(
                f"Request {request_id} is {request.status.value}; only an applied grant is revoked."
            )
        with self._writing, self._changing_layers():
            result = revoke(
                request,
                self._bucket(request.bucket),
                aws=self.aws,
                owner_sessions=self.owner_sessions,
                owners=self._owner,
            )
        revoked = self.store.transition(
            request_id, status, actor=actor, action=status.value, now=self.clock(), result=result.to_dict()
        )
        self._notify(status.value, revoked)
        return revoked

    def cancel(self, caller: Caller, request_id: str) -> RequestView:
        request = self._visible(caller, request_id)
        if request.requester.arn != caller.arn:
            raise Forbidden("Only the requester cancels a request; an admin denies it instead.")
        cancelled = self.store.transition(
            request_id, RequestStatus.CANCELLED, actor=caller.arn, action="cancel", now=self.clock()
        )
        return self._view(cancelled)

    def expire_due(self) -> list[AccessRequest]:
        """Revoke every applied grant whose days have passed (the server runs this periodically)."""
        return [
            self._revoke(request.id, RequestStatus.EXPIRED, actor=EXPIRY_ACTOR)
            for request in self.store.due_for_expiry(self.clock())
        ]

    # -- the registry and the log ---------------------------------------------------------------------
    def buckets(self, caller: Caller) -> list[SharedBucket]:
        return self.store.list_buckets()

    def put_bucket(self, caller: Caller, bucket: SharedBucket) -> SharedBucket:
        self._admin(caller, "change the registry")
        with self._changing_layers():
            return self.store.put_bucket(bucket, actor=caller.arn, now=self.clock())

    def delete_bucket(self, caller: Caller, name: str) -> None:
        self._admin(caller, "change the registry")
        with self._changing_layers():
            self.store.delete_bucket(name, actor=caller.arn, now=self.clock())

    def audit(self, caller: Caller, request_id: str | None) -> list[AuditEntry]:
        if request_id is not None and not caller.is_admin:
            self._visible(caller, request_id)
            return self.store.audit(request_id=request_id)
        self._admin(caller, "read the whole audit log")
        return self.store.audit(request_id=request_id)

    def diagnose(self, caller: Caller, target: str) -> dict[str, Any]:
        """The caller's access to a bucket, every layer read with the endpoint's rights: for an admin in
        full, for anyone else the requester's view (see :class:`Diagnosis`). Cached for a while per caller
        and bucket, and forgotten whenever this endpoint writes a layer or the registry."""
        requester = self._requester(caller)
        ref = parse_bucket_reference(target)
        diagnosis = self._diagnoses.get((requester.arn, str(ref)), lambda: self._diagnose(requester, ref))
        return (diagnosis if caller.is_admin else diagnosis.for_requester()).to_dict()

    def _diagnose(self, requester: Requester, ref: BucketRef) -> Diagnosis:
        entry = self._bucket(ref.bucket)
        with ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="s3access-diagnose") as pool:
            # The owner's role is assumed while the requester's role is read: each is a round trip.
            owner = pool.submit(
                accounts_for, requester, ref.bucket, entry, aws=self.aws, owner_sessions=self.owner_sessions
            )
            identity = requester_identity(self.aws, requester)
            accounts = owner.result()
            live = read_live(identity, ref, accounts, pool)
        evaluated = evaluate_capabilities(
            requester.arn, ref, live.caller, live.bucket, owner_account=live.owner_account
        )
        diagnosis = Diagnosis.of(ref.bucket, ref.prefix, requester.arn, evaluated)
        return replace(diagnosis, notes=(*accounts.notes, *diagnosis.notes))


def _same_role(first: str, second: str) -> bool:
    """Two sessions of one role are one principal: a new session does not make a request someone else's."""
    try:
        one, other = CallerArn.parse(first), CallerArn.parse(second)
    except ValueError:  # the admin token is no AWS principal, so it is nobody's session
        return False
    return one.kind == other.kind == "assumed-role" and (one.account, one.name) == (other.account, other.name)
