"""What the admin endpoint does, independent of HTTP: who may do what to which request, and in what order.

Every state change goes through the store's compare-and-set with an audit entry, so two admins (or two
endpoint instances) cannot both approve, apply or revoke the same request, and nothing happens unrecorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from mlspace_s3magic.admin.apply import PlanRefused, RevokeResult, apply, revoke
from mlspace_s3magic.admin.auth import Authenticator, Caller
from mlspace_s3magic.admin.lease import LayerLock, LocalLayerLock
from mlspace_s3magic.admin.plan import (
    OwnerSessions,
    Plan,
    Planner,
    accounts_for,
    read_live,
    requester_identity,
)
from mlspace_s3magic.admin.reconcile import Reconciler, ReconcileReport
from mlspace_s3magic.admin.store import EXPIRING, Store, TransitionRefused
from mlspace_s3magic.admin.store.changes import AuditAction
from mlspace_s3magic.admin.views import requester_history, view_for
from mlspace_s3magic.admin.webhook import Webhook
from mlspace_s3magic.core.access import (
    TRANSITIONS,
    AccessRequest,
    AuditEntry,
    NewAccessRequest,
    Requester,
    RequestStatus,
    RequestView,
    SharedBucket,
)
from mlspace_s3magic.core.aws import Aws, aws_call
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.capabilities import evaluate_capabilities
from mlspace_s3magic.core.diagnosis import Diagnosis
from mlspace_s3magic.core.errors import Conflict, InvalidInput, NotAllowed, NotFound
from mlspace_s3magic.core.identity import CallerArn
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference

EXPIRY_ACTOR = "expiry"
REPAIR_ACTOR = "repair"
RECONCILE_ACTOR = "reconcile"
POOL_SIZE = 16
# An apply whose ledger entry (``AuditAction.START_APPLY``) is still last after this long was cut off.
INTERRUPTED_AFTER = timedelta(minutes=15)
APPLICABLE = frozenset({RequestStatus.APPROVED, RequestStatus.AWAITING_OWNER, RequestStatus.FAILED})
# The statuses in which statements of the request may be live in AWS.
MAY_BE_LIVE = frozenset({*EXPIRING, RequestStatus.FAILED})
# How long a diagnosis stands unless this endpoint changes a layer first: changes made by hand elsewhere
# show within this time.
DIAGNOSIS_SECONDS = 60.0
# A denial's reason, once trimmed: long enough to say something, short enough to read in a list.
DENIAL_REASON_LENGTH = (3, 1000)
# Control characters other than a form's tab and line breaks (which are whitespace), and what makes a
# terminal show other text than the reason holds (see core/render.py).
_NOT_PLAIN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


class Forbidden(NotAllowed):
    """The caller is known but may not do this; the message says why."""


class InvalidReason(InvalidInput):
    """A denial's reason breaks the rule :func:`denial_reason` states; nothing was changed."""


def denial_reason(text: str | None) -> str:
    """The reason a denial is given with, as its requester will read it: one line of plain text, its
    whitespace runs (a form's line breaks among them) made single spaces, ``DENIAL_REASON_LENGTH``
    characters long. Any other control character is refused rather than dropped: the admin sees what is
    kept."""
    rule = (
        f"A denial needs a reason, for the requester: {DENIAL_REASON_LENGTH[0]} to "
        f"{DENIAL_REASON_LENGTH[1]} characters of plain text"
    )
    if text is None:
        raise InvalidReason(f'{rule} (the body\'s "reason"); none was given.')
    control = _NOT_PLAIN.search(text)
    if control:
        raise InvalidReason(
            f"{rule}; this one holds the control character U+{ord(control.group()):04X} (line breaks and "
            "tabs are fine: they become spaces)."
        )
    reason = " ".join(text.split())
    if not DENIAL_REASON_LENGTH[0] <= len(reason) <= DENIAL_REASON_LENGTH[1]:
        raise InvalidReason(f"{rule}; this one has {len(reason)}.")
    return reason


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
        lock: LayerLock | None = None,
    ):
        self.store = store
        self.authenticator = authenticator
        self.aws = aws
        self.owner_sessions = owner_sessions
        self.planner = Planner(aws, owner_sessions=owner_sessions, owners=self._owner)
        self.webhook = webhook
        self.clock = clock
        # Applies and revokes edit shared documents (the boundary); one at a time, or one could undo another:
        # across every instance sharing the store (admin/lease.py), or within this process by default.
        self._writing: LayerLock = lock or LocalLayerLock()
        self._diagnoses: TimedCache[Diagnosis] = TimedCache(DIAGNOSIS_SECONDS)

    def check_fence(self) -> None:
        """Just before a write to the layers, holding ``_writing``: refuse if this instance's lease on
        them was lost to another (:class:`~mlspace_s3magic.admin.lease.LeaseLost`), else renew it."""
        self._writing.check_fence()

    @contextmanager
    def _changing_layers(self) -> Iterator[None]:
        """Forget every diagnosis after a write, even a failed one (it may have written part)."""
        try:
            yield
        finally:
            self._diagnoses.clear()

    # -- who ------------------------------------------------------------------------------------------
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

    @staticmethod
    def me(caller: Caller) -> dict[str, Any]:
        """Who the endpoint takes the caller for, and whether it lets them review: a user interface asks
        before it offers an admin's actions (the endpoint still decides each one)."""
        return {"arn": caller.arn, "admin": caller.is_admin}

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

    def _notify(self, request: AccessRequest) -> None:
        """Tell the webhook the status the request reached, in the status's own word ("submitted" for a
        new one, which is pending)."""
        if self.webhook is not None:
            event = "submitted" if request.status is RequestStatus.PENDING else request.status.value
            self.webhook.notify(
                event, {"request": request.model_dump(mode="json", exclude={"plan", "result"})}
            )

    # -- requests -------------------------------------------------------------------------------------
    def submit(self, caller: Caller, new: NewAccessRequest) -> tuple[RequestView, bool]:
        request, created = self.store.create_request(new, self._requester(caller), now=self.clock())
        if created:
            self._notify(request)
        return self._view(request, caller), created

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
            action=AuditAction.APPROVE,
            now=self.clock(),
            plan=plan.to_dict(),
            detail={"problems": list(plan.problems)},
        )
        self._notify(approved)
        return self._view(approved)

    def deny(self, caller: Caller, request_id: str, reason: str | None) -> RequestView:
        """Deny, saying why: the reason is kept on the request, where its requester reads it, and in the
        audit entry."""
        self._admin(caller, "deny requests")
        why = denial_reason(reason)
        denied = self.store.transition(
            request_id,
            RequestStatus.DENIED,
            actor=caller.arn,
            action=AuditAction.DENY,
            now=self.clock(),
            decision_reason=why,
            detail={"reason": why},
        )
        self._notify(denied)
        return self._view(denied)

    def apply(self, caller: Caller, request_id: str) -> RequestView:
        """Write the approved plan, verify as the requester, and record what happened either way.

        What is about to be written goes to the ledger (the audit log) before the first write, so an apply
        a crash interrupts is rolled back by :meth:`repair_interrupted`. A failure after any write (a live
        document changed, AWS refused, the verification failed) rolls back what was written.
        """
        self._admin(caller, "apply requests")
        with self._writing, self._changing_layers():
            request = self.store.get(request_id)
            if request.status not in APPLICABLE:
                raise Conflict(
                    f"Request {request_id} is {request.status.value}; only an approved request is applied."
                )
            if request.plan is None:
                raise Conflict(f"Request {request_id} has no plan: approve it first.")
            plan = Plan.from_dict(request.plan)
            now = self.clock()
            self.check_fence()  # before the ledger: a writer refused here wrote nothing there is to repair
            self.store.record(
                actor=caller.arn,
                action=AuditAction.START_APPLY,
                now=now,
                request_id=request_id,
                detail=_ledger(plan),
            )
            try:
                result = apply(
                    plan,
                    request,
                    self._bucket(request.bucket),
                    aws=self.aws,
                    owner_sessions=self.owner_sessions,
                    fence=self.check_fence,
                )
            except PlanRefused as refused:  # refused before any write
                self._fail(request, caller.arn, now, {"error": str(refused)})
                raise
            except Exception as error:
                rollback = self._roll_back(request)
                self._fail(request, caller.arn, now, {"error": str(error)}, {"rollback": rollback.to_dict()})
                raise
            if result.status is RequestStatus.FAILED:
                rollback = self._roll_back(request)
                failed = self._fail(
                    request,
                    caller.arn,
                    now,
                    {"verified": False, "rolled_back": True},
                    {**result.to_dict(), "rollback": rollback.to_dict()},
                )
                return self._view(failed)
            expires = now + timedelta(days=request.days) if request.days else None
            try:
                applied = self.store.transition(
                    request_id,
                    result.status,
                    actor=caller.arn,
                    action=AuditAction.APPLY,
                    now=now,
                    result=result.to_dict(),
                    expires_at=expires,
                    detail={"verified": result.verification.allowed},
                )
            except TransitionRefused:
                # The request moved on while this apply wrote (a cancel on another endpoint instance):
                # what was written belongs to no live grant, so it goes.
                self._roll_back(request)
                raise
        self._notify(applied)
        return self._view(applied)

    def _fail(
        self,
        request: AccessRequest,
        actor: str,
        now: datetime,
        detail: dict[str, Any],
        result: dict[str, Any] | None = None,
    ) -> AccessRequest:
        failed = self.store.transition(
            request.id,
            RequestStatus.FAILED,
            actor=actor,
            action=AuditAction.APPLY,
            now=now,
            detail=detail,
            result=result,
        )
        self._notify(failed)
        return failed

    def _roll_back(self, request: AccessRequest) -> RevokeResult:
        """Remove every statement of the request from every layer (revoke finds them by their Sids), with
        the boundary recomputed for the grants still live; call it holding ``_writing``."""
        self.check_fence()
        return revoke(
            request,
            self._bucket(request.bucket),
            aws=self.aws,
            owner_sessions=self.owner_sessions,
            owners=self._owner,
            fence=self.check_fence,
        )

    def revoke(self, caller: Caller, request_id: str) -> RequestView:
        self._admin(caller, "revoke grants")
        return self._view(self._revoke(request_id, RequestStatus.REVOKED, actor=caller.arn))

    def _revoke(self, request_id: str, status: RequestStatus, *, actor: str) -> AccessRequest:
        """Any request that may have live statements is revoked: applied, awaiting the owner, or failed."""
        with self._writing, self._changing_layers():
            request = self.store.get(request_id)
            if request.status not in MAY_BE_LIVE:
                raise Conflict(
                    f"Request {request_id} is {request.status.value}; only a grant that was written "
                    "(applied, awaiting the owner, or failed) is revoked."
                )
            result = self._roll_back(request)
            revoked = self.store.transition(
                request_id,
                status,
                actor=actor,
                action=AuditAction.EXPIRE if status is RequestStatus.EXPIRED else AuditAction.REVOKE,
                now=self.clock(),
                result=result.to_dict(),
            )
        self._notify(revoked)
        return revoked

    def cancel(self, caller: Caller, request_id: str) -> RequestView:
        """The requester withdraws: whatever an apply wrote (awaiting the owner, failed, or an apply that
        ran meanwhile) is rolled back first, so a cancelled request holds no statement anywhere."""
        request = self._visible(caller, request_id)
        if request.requester.arn != caller.arn:
            raise Forbidden("Only the requester cancels a request; an admin denies it instead.")
        with self._writing, self._changing_layers():
            request = self.store.get(request_id)
            if RequestStatus.CANCELLED not in TRANSITIONS[request.status]:
                # Refused before any write: an applied grant is the admin's to revoke, never half undone.
                raise TransitionRefused(
                    f"Request {request_id} is {request.status.value}, so it cannot be cancelled"
                    + (": ask an admin to revoke it." if request.status in MAY_BE_LIVE else ".")
                )
            result = self._roll_back(request).to_dict() if self._may_have_written(request) else None
            cancelled = self.store.transition(
                request_id,
                RequestStatus.CANCELLED,
                actor=caller.arn,
                action=AuditAction.CANCEL,
                now=self.clock(),
                result=result,
            )
        self._notify(cancelled)
        return self._view(cancelled, caller)

    def _may_have_written(self, request: AccessRequest) -> bool:
        if request.status in MAY_BE_LIVE:
            return True
        return any(
            entry.action == AuditAction.START_APPLY for entry in self.store.audit(request_id=request.id)
        )

    def housekeeping(self) -> list[AccessRequest]:
        """What the server runs periodically: roll back applies a crash interrupted, revoke grants past
        their days (returned), and reconcile the live grants (orphans are only listed, in the audit log)."""
        self.repair_interrupted()
        expired = self.expire_due()
        self._reconcile(RECONCILE_ACTOR, remove_orphans=False)
        return expired

    def reconcile(self, caller: Caller, *, remove_orphans: bool) -> ReconcileReport:
        self._admin(caller, "reconcile grants")
        return self._reconcile(caller.arn, remove_orphans=remove_orphans)

    def _reconcile(self, actor: str, *, remove_orphans: bool) -> ReconcileReport:
        """Every change reconcile makes, and every orphan it finds, goes to the audit log."""
        live = [request for status in EXPIRING for request in self.store.list_requests(status=status)]
        partition, account = self._mlspace_account()
        reconciler = Reconciler(
            self.aws,
            account,
            self.owner_sessions,
            self.store.list_buckets(),
            self._owner,
            f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY_NAME}",
        )
        with self._writing, self._changing_layers():
            self.check_fence()
            report = reconciler.reconcile(live, remove_orphans=remove_orphans)
        now = self.clock()
        for finding in report.findings:
            self.store.record(
                actor=actor,
                action=AuditAction.RECONCILE,
                now=now,
                request_id=finding.request_id,
                detail=finding.to_dict(),
            )
        return report

    def _mlspace_account(self) -> tuple[str, str]:
        """The partition and account the endpoint's credentials belong to: MLSpace's."""
        sts = self.aws.client("sts")
        with aws_call(sts, "sts:GetCallerIdentity"):
            caller = CallerArn.parse(str(sts.get_caller_identity()["Arn"]))
        return caller.partition, caller.account

    def expire_due(self) -> list[AccessRequest]:
        """Revoke every grant whose days have passed (applied, or still awaiting the owner)."""
        return [
            self._revoke(request.id, RequestStatus.EXPIRED, actor=EXPIRY_ACTOR)
            for request in self.store.due_for_expiry(self.clock())
        ]

    def repair_interrupted(self, *, older_than: timedelta = INTERRUPTED_AFTER) -> list[AccessRequest]:
        """Requests whose last ledger entry is an apply that never finished (the endpoint died between the
        entry and the end of its writes): their statements are removed and they are marked failed, so the
        admin applies them again from a known state. ``older_than`` leaves another instance's running
        apply alone."""
        repaired = []
        cutoff = self.clock() - older_than
        for status in (RequestStatus.APPROVED, RequestStatus.AWAITING_OWNER, RequestStatus.FAILED):
            for request in self.store.list_requests(status=status):
                history = self.store.audit(request_id=request.id)
                last = history[-1] if history else None
                if last is None or last.action != AuditAction.START_APPLY or last.at > cutoff:
                    continue
                with self._writing, self._changing_layers():
                    rollback = self._roll_back(request)
                    repaired.append(
                        self._fail(
                            request,
                            REPAIR_ACTOR,
                            self.clock(),
                            {"error": "the apply was interrupted; what it wrote was rolled back"},
                            {"rollback": rollback.to_dict()},
                        )
                    )
        return repaired

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
            return requester_history(self.store.audit(request_id=request_id))
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


def _ledger(plan: Plan) -> dict[str, Any]:
    """What an apply is about to write: per layer its target, account and our statements' Sids."""
    return {
        "sid_stem": plan.sid_stem,
        "writes": [
            {
                "layer": change.layer,
                "target": change.target,
                "account": change.account,
                "sids": [statement.get("Sid") for statement in change.statements],
            }
            for change in plan.changes
        ],
    }
