"""Apply a plan, verify the result with the evaluator, and revoke: with :mod:`reconcile`, which writes through
:class:`Documents` too, the only code that writes policies.

Apply writes the layers in :data:`WRITE_ORDER`: the bucket's side first (another account's role, the write
most likely to be refused, so a refusal leaves MLSpace's account untouched), then the boundary (which grants
nothing by itself), and the identity grant last, since that is what turns access on. Revoke goes the other
way round, turning access off first. Every live document is compared with the plan before the first write
and again right before its own; a document someone else changed stops everything (:class:`PlanOutdated`).

Verification uses our evaluator, not a probe: moto, and the endpoint itself, cannot act as the requester, and
moto ignores boundaries, bucket-policy Allows and key policies anyway.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.admin.plan import (
    MAX_POLICY_VERSIONS,
    OWNER,
    POOL_SIZE,
    Accounts,
    LayerChange,
    Owners,
    OwnerSessions,
    Plan,
    UnknownRequesterRole,
    accounts_for,
    evaluate_live,
    grant_policy_arn,
    live_grants,
    pretty,
    read_live,
    request_ref,
    requester_identity,
    unregistered,
    versions_full,
)
from mlspace_s3magic.core.access import AccessRequest, RequestStatus, SharedBucket
from mlspace_s3magic.core.aws import Aws, aws_call, error_code, is_access_denied
from mlspace_s3magic.core.capabilities import UNKNOWN_OWNER, CapabilityEvaluation, kms_key_arn
from mlspace_s3magic.core.ceiling import CeilingDoesNotFit, Granted, GrantedBucket, GrantedKey, with_ceiling
from mlspace_s3magic.core.errors import Conflict, NotAllowed, Unavailable
from mlspace_s3magic.core.grant import GrantScope
from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, size_problem
from mlspace_s3magic.core.layers import LayerFetcher, read_document
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, GRANT_POLICY_PREFIX, is_grant_policy_name
from mlspace_s3magic.core.policy.arns import parse_arn, require_arn, resource_name
from mlspace_s3magic.core.policy_edit import SID_SUFFIXES, Document, remove_statements, statements_of

WRITE_ORDER = ("bucket-policy", "kms", "boundary", "identity")
REVOKE_ORDER = tuple(reversed(WRITE_ORDER))
GRANT_DESCRIPTION = "S3 access granted through mlspace-s3access; each statement's Sid names its request."
# Outcomes of a step.
WRITTEN = "written"
CREATED = "created"
ALREADY_APPLIED = "already-applied"
AWAITING_OWNER = "awaiting-owner"
ATTACHED = "attached"
VERSION_DELETED = "version-deleted"
REMOVED = "removed"
NOTHING_TO_REMOVE = "nothing-to-remove"
DETACHED = "detached"
DELETED = "deleted"
ROLE_MISSING = "role-missing"
BOUNDARY_KEPT = "boundary-kept"


@dataclass(frozen=True)
class Step:
    """One thing apply or revoke did (or left to the owner, with the command in ``detail``)."""

    layer: str
    target: str
    outcome: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class PlanRefused(Conflict):
    """The plan has problems; nothing was written."""


class SizeLimitExceeded(PlanRefused):
    """A new document would pass its size limit (IAM, S3 or KMS would refuse it); nothing was written."""


class VersionsFull(PlanRefused):
    """MLSpace's boundary already holds the five versions IAM keeps, and it is not ours to prune."""

    def __init__(self, arn: str):
        super().__init__(versions_full(arn))


class PlanOutdated(Conflict):
    """A live document changed since the plan was shown; nothing more was written. ``written`` is what this
    apply had written before it noticed, so the request's record can say so."""

    def __init__(self, layer: str, target: str, written: tuple[Step, ...] = ()):
        self.layer = layer
        self.target = target
        self.written = written
        done = "; ".join(f"{step.layer} {step.target} {step.outcome}" for step in written) or "nothing"
        super().__init__(
            f"The {layer} document ({target}) changed since the plan was made, so nothing more was written "
            f"(before it: {done}). Plan the request again and review the new diff."
        )


@dataclass(frozen=True)
class VerifyResult:
    """The evaluator's decision per capability, as the requester's session, over the live layers."""

    request_id: str
    principal: str
    capabilities: tuple[CapabilityEvaluation, ...]
    notes: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool | None:
        """True when every capability is allowed, False when one is denied, None when unknown."""
        verdicts = {check.allowed for check in self.capabilities}
        return False if False in verdicts else None if None in verdicts else True

    def capability(self, name: str) -> CapabilityEvaluation:
        return next(check for check in self.capabilities if check.capability == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "principal": self.principal,
            "allowed": self.allowed,
            "capabilities": [check.to_dict() for check in self.capabilities],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ApplyResult:
    """What apply did per layer, and the verification after it: what the request's record keeps."""

    request_id: str
    steps: tuple[Step, ...]
    verification: VerifyResult

    @property
    def awaiting_owner(self) -> bool:
        return any(step.outcome == AWAITING_OWNER for step in self.steps)

    @property
    def status(self) -> RequestStatus:
        """The request's status after this apply: waiting for the owner, applied, or failed verification."""
        if self.awaiting_owner:
            return RequestStatus.AWAITING_OWNER
        return RequestStatus.FAILED if self.verification.allowed is False else RequestStatus.APPLIED

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status.value,
            "awaiting_owner": self.awaiting_owner,
            "steps": [step.to_dict() for step in self.steps],
            "verification": self.verification.to_dict(),
        }


@dataclass(frozen=True)
class RevokeResult:
    """What revoke removed per layer (or left to the owner), and the verification after it."""

    request_id: str
    steps: tuple[Step, ...]
    verification: VerifyResult | None  # None when the requester's role is gone

    @property
    def awaiting_owner(self) -> bool:
        return any(step.outcome == AWAITING_OWNER for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "awaiting_owner": self.awaiting_owner,
            "steps": [step.to_dict() for step in self.steps],
            "verification": self.verification.to_dict() if self.verification else None,
        }


Fence = Callable[[], None]


def no_fence() -> None:
    """For a writer that holds a process-local lock, which cannot be lost."""


# -- apply -----------------------------------------------------------------------------------------------


def apply(
    plan: Plan,
    request: AccessRequest,
    bucket: SharedBucket | None,
    *,
    aws: Aws,
    owner_sessions: OwnerSessions,
    fence: Fence = no_fence,
) -> ApplyResult:
    """Write the plan's changes, leave the owner's to the owner, then verify as the requester.

    Raises :class:`SizeLimitExceeded` or :class:`PlanRefused` before any write, and :class:`PlanOutdated`
    when a live document is neither the planned current one nor already the new one. ``fence`` is called
    before each write and raises when this writer no longer holds the layers' lock.
    """
    if plan.request_id != request.id:
        raise ValueError(f"The plan is for request {plan.request_id}, not {request.id}.")
    _refuse_problems(plan)
    accounts = accounts_for(request.requester, request.bucket, bucket, aws=aws, owner_sessions=owner_sessions)
    documents = Documents(accounts, fence)
    changes = sorted(plan.changes, key=lambda change: WRITE_ORDER.index(change.layer))
    # Every document is checked before the first write (at once), so an outdated plan writes nothing at all.
    with ThreadPoolExecutor(max(1, len(changes)), thread_name_prefix="s3access-apply") as pool:
        states = list(pool.map(lambda change: _state(documents, change), changes))
    for change, state in zip(changes, states, strict=True):
        writes_boundary = change.layer == "boundary" and state == WRITTEN
        if writes_boundary and len(documents.versions(change.target)) >= MAX_POLICY_VERSIONS:
            raise VersionsFull(change.target)
    steps: list[Step] = []
    for change in changes:
        try:
            state = _state(documents, change)
        except PlanOutdated as outdated:
            raise PlanOutdated(outdated.layer, outdated.target, tuple(steps)) from None
        if state == WRITTEN:
            steps += documents.write(change.layer, change.target, change.account, change.new, change.current)
        elif state == AWAITING_OWNER:
            steps.append(Step(change.layer, change.target, AWAITING_OWNER, change.command))
        else:
            steps.append(Step(change.layer, change.target, ALREADY_APPLIED))
        if change.layer == "identity":
            steps += documents.attach(change.target, change.attach_to_roles)
    return ApplyResult(plan.request_id, tuple(steps), _verify(request, accounts))


def _refuse_problems(plan: Plan) -> None:
    """Sizes are checked again on the documents themselves: a stored plan may come from an older version."""
    sizes = [
        f"{problem} ({change.target})"
        for change in plan.changes
        if change.new is not None and (problem := size_problem(change.layer, change.new))
    ]
    if sizes:
        raise SizeLimitExceeded("Nothing was written: " + " ".join(sizes))
    if plan.problems:
        raise PlanRefused("Nothing was written: " + " ".join(plan.problems))


def _state(documents: Documents, change: LayerChange) -> str:
    """What a change needs now: WRITTEN (live is as planned), ALREADY_APPLIED, or AWAITING_OWNER."""
    if change.applied_by == OWNER:
        live = documents.read_if_allowed(change.layer, change.target, change.account)
        statements = statements_of(live)
        present = live is not None and all(statement in statements for statement in change.statements)
        return ALREADY_APPLIED if present else AWAITING_OWNER
    if documents.writer(change.layer, change.account) is None:
        raise Unavailable(
            f"The plan writes the {change.layer} of {change.target} in account {change.account}, but the "
            "endpoint cannot act there now (the owner role could not be assumed): nothing more was written."
        )
    live = documents.read(change.layer, change.target, change.account)
    if live == change.new:
        return ALREADY_APPLIED
    if live == change.current:
        return WRITTEN
    raise PlanOutdated(change.layer, change.target)


# -- verify ------------------------------------------------------------------------------------------------


def verify(
    request: AccessRequest, bucket: SharedBucket | None, *, aws: Aws, owner_sessions: OwnerSessions
) -> VerifyResult:
    """Whether the requester may now do what they asked, by our evaluator over every live layer."""
    return _verify(
        request,
        accounts_for(request.requester, request.bucket, bucket, aws=aws, owner_sessions=owner_sessions),
    )


def _verify(request: AccessRequest, accounts: Accounts) -> VerifyResult:
    identity = requester_identity(accounts.mlspace, request.requester)
    with ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="s3access-verify") as pool:
        live = read_live(identity, request_ref(request), accounts, pool)
    evaluated = evaluate_live(request, live)
    gaps = tuple(f"Could not read the {gap.layer} layer: {gap.reason}." for gap in evaluated.unreadable)
    return VerifyResult(
        request.id, request.requester.arn, evaluated.evaluations, (*accounts.notes, *gaps, *evaluated.notes)
    )


# -- revoke ------------------------------------------------------------------------------------------------


def revoke(
    request: AccessRequest,
    bucket: SharedBucket | None,
    *,
    aws: Aws,
    owner_sessions: OwnerSessions,
    owners: Owners | None = None,
    fence: Fence = no_fence,
) -> RevokeResult:
    """Remove this request's statements from every layer, leaving every other statement as it was.

    The layers are the ones its stored plan changed, and wherever its statements may be now: both grant
    policies of ours, the requester's boundary, the bucket policy and the bucket's KMS key policy. A grant
    policy of ours left empty is detached and deleted; MLSpace's own policies are never touched. The
    boundary is recomputed for the grants still live (``owners``: the registry), so a bucket another grant
    needs stays allowed and room no grant needs any more comes back.
    """
    accounts = accounts_for(request.requester, request.bucket, bucket, aws=aws, owner_sessions=owner_sessions)
    documents = Documents(accounts, fence)
    plan = Plan.from_dict(request.plan) if request.plan else None
    steps: list[Step] = []
    targets = _revoke_targets(request, accounts, plan)
    for layer, target, account in sorted(targets, key=lambda item: REVOKE_ORDER.index(item[0])):
        change = plan.change(layer, target) if plan else None
        single = change is not None and isinstance((change.current or {}).get("Statement"), dict)
        if layer == "boundary":  # recomputed even when this plan found it open: another grant opened it
            keys = tuple(target for layer, target, _ in targets if layer == "kms")
            lowered = _Lowered(
                request, keys, accounts.mlspace, owners or unregistered, accounts.mlspace_account
            )
            steps += _revoke_one(
                documents, layer, target, account, request.sid_stem, as_object=single, then=lowered
            )
        else:
            steps += _revoke_one(documents, layer, target, account, request.sid_stem, as_object=single)
    try:
        verification: VerifyResult | None = _verify(request, accounts)
    except UnknownRequesterRole:
        verification = None
    return RevokeResult(request.id, tuple(steps), verification)


def _revoke_targets(
    request: AccessRequest, accounts: Accounts, plan: Plan | None
) -> list[tuple[str, str, str]]:
    """Every (layer, target, account) that may hold this request's statements."""
    mlspace = accounts.mlspace_account
    targets = [(change.layer, change.target, change.account) for change in plan.changes] if plan else []
    try:
        identity = requester_identity(accounts.mlspace, request.requester)
    except UnknownRequesterRole:
        partition = require_arn(request.requester.arn).partition
        targets.append(("boundary", f"arn:{partition}:iam::{mlspace}:policy/{BOUNDARY_POLICY_NAME}", mlspace))
    else:
        if identity.boundary:
            targets.append(("boundary", identity.boundary, mlspace))
        targets += [
            ("identity", grant_policy_arn(identity, scope), mlspace)
            for scope, name in ((GrantScope.PROJECT, identity.project), (GrantScope.USER, identity.user))
            if name
        ]
    owner = accounts.owner_account or UNKNOWN_OWNER
    targets.append(("bucket-policy", request.bucket, owner))
    with ThreadPoolExecutor(2, thread_name_prefix="s3access-revoke") as pool:
        key = kms_key_arn(LayerFetcher(accounts.bucket_reader, pool).bucket_layers(request_ref(request)))
    if key:
        targets.append(("kms", key, require_arn(key).account))
    return list(dict.fromkeys(targets))


@dataclass(frozen=True)
class _Lowered:
    """The boundary after a revoke: recomputed for the grants still live (ours are revoked before it);
    ``keys`` are the KMS keys the request may have let through."""

    request: AccessRequest
    keys: tuple[str, ...]
    aws: Aws
    owners: Owners
    home_account: str

    def __call__(self, boundary: Document) -> Document:
        remaining = live_grants(self.aws, self.owners, without=(self.request.sid_stem,))
        revoked: list[Granted] = [GrantedBucket(self.request.bucket, None)]
        revoked += [GrantedKey(arn.account, key) for key in self.keys if (arn := parse_arn(key))]
        try:
            return with_ceiling(
                boundary, remaining, previous=[*revoked, *remaining], home_account=self.home_account
            )
        except CeilingDoesNotFit:
            return boundary  # what remains fitted before; never write a boundary IAM would refuse


def _revoke_one(
    documents: Documents,
    layer: str,
    target: str,
    account: str,
    stem: str,
    *,
    as_object: bool,
    then: Callable[[Document], Document] | None = None,
) -> list[Step]:
    writer = documents.writer(layer, account)
    live = (
        documents.read(layer, target, account)
        if writer
        else documents.read_if_allowed(layer, target, account)
    )
    if live is None and writer is None:
        return [Step(layer, target, AWAITING_OWNER, _owner_removal(layer, target, account, stem, None))]
    if live is None:
        return [Step(layer, target, NOTHING_TO_REMOVE)]
    new = remove_statements(live, stem, as_object=as_object)
    if then is not None:
        new = then(new)
    if new == live:
        return [Step(layer, target, NOTHING_TO_REMOVE)]
    if writer is None:
        return [Step(layer, target, AWAITING_OWNER, _owner_removal(layer, target, account, stem, new))]
    if statements_of(new):
        try:
            return documents.write(layer, target, account, new, live, outcome=REMOVED)
        except VersionsFull as full:
            # The boundary is only a ceiling: the grant is gone with the grant policy's statements; the
            # room it held comes back at the next apply, revoke or reconcile once a version is deleted.
            return [Step(layer, target, BOUNDARY_KEPT, str(full))]
    return documents.delete(layer, target, account)


def _owner_removal(layer: str, target: str, account: str, stem: str, new: Document | None) -> str:
    """What the owner runs to remove our statements: the exact document when we could read it."""
    lines = [f"# Run with the credentials of account {account}."]
    spec = LAYER_SPECS[layer]
    put, delete = spec.write_command(target, "policy.json"), spec.delete_command(target)
    if new is None:
        sids = ",".join(json.dumps(f"{stem}{suffix}") for suffix in SID_SUFFIXES)
        keep = f'.Statement |= ([.] | flatten | map(select((.Sid // "") | IN({sids}) | not)))'
        fetched = f"{spec.read_command(target)} | jq {shlex.quote(keep)} > policy.json"
        return "\n".join(
            [*lines, "# Remove this request's statements (needs jq), keeping every other one:", fetched, put]
        )
    if not statements_of(new) and delete:
        return "\n".join([*lines, delete])
    return "\n".join([*lines, f"cat > policy.json <<'EOF'\n{pretty(new)}EOF", put])


# -- reading and writing documents ---------------------------------------------------------------------------


class Documents:
    """Reads and writes each layer's live document with the clients of the account it lives in."""

    def __init__(self, accounts: Accounts, fence: Fence = no_fence):
        self.accounts = accounts
        self.fence = fence

    def writer(self, layer: str, account: str) -> Aws | None:
        return self.accounts.writer(layer, account)

    def read(self, layer: str, target: str, account: str) -> Document | None:
        """The live document, or None when there is none; a refusal raises."""
        spec = LAYER_SPECS[layer]
        try:
            return read_document(spec, self.accounts.reader(layer, account).client(spec.client), target)
        except ClientError as error:
            # A bucket that is gone (or never was) holds no statement of ours to remove or keep; the check,
            # which reads with the same reader, reports it instead.
            if error_code(error) == "NoSuchBucket":
                return None
            raise

    def read_if_allowed(self, layer: str, target: str, account: str) -> Document | None:
        """For the owner's layers: None when the owner's document is not ours to read."""
        try:
            return self.read(layer, target, account)
        except ClientError as error:
            if is_access_denied(error):
                return None
            raise

    def write(
        self,
        layer: str,
        target: str,
        account: str,
        document: Document | None,
        current: Document | None,
        *,
        outcome: str = WRITTEN,
    ) -> list[Step]:
        """Put the whole document; IAM policies get a new default version (or are created)."""
        if document is None:
            raise Conflict(f"The plan has no document for the {layer} of {target}: nothing was written.")
        spec = LAYER_SPECS[layer]
        client = self._writer(layer, account, target).client(spec.client)
        text = json.dumps(document, separators=(",", ":"))
        steps: list[Step] = []
        if spec.client == "iam":  # a managed policy: created by the first grant, then versioned
            if current is None:
                with aws_call(client, "iam:CreatePolicy"):
                    name = resource_name(target)
                    client.create_policy(PolicyName=name, PolicyDocument=text, Description=GRANT_DESCRIPTION)
                return [Step(layer, target, CREATED)]
            steps = self._make_room(client, layer, target)
        with aws_call(client, spec.api_write.action):
            spec.api_write.call(client, target, text)
        return [*steps, Step(layer, target, outcome)]

    def versions(self, arn: str) -> list[dict[str, Any]]:
        iam = self.accounts.mlspace.client("iam")
        with aws_call(iam, "iam:ListPolicyVersions"):
            pages = iam.get_paginator("list_policy_versions").paginate(PolicyArn=arn)
            return [version for page in pages for version in page["Versions"]]

    def _make_room(self, iam: Any, layer: str, arn: str) -> list[Step]:
        """At IAM's five versions, delete the oldest that is not the default, as the runbook says, in a policy
        of ours; a policy we did not create (MLSpace's boundary) is never pruned: nothing is written."""
        versions = self.versions(arn)
        if len(versions) < MAX_POLICY_VERSIONS:
            return []
        if layer != "identity":
            raise VersionsFull(arn)
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        with aws_call(iam, "iam:DeletePolicyVersion"):
            iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        return [Step(layer, arn, VERSION_DELETED, str(oldest["VersionId"]))]

    def attach(self, arn: str, roles: tuple[str, ...]) -> list[Step]:
        """Attach our grant policy to each role; attaching again is harmless, so every apply does it."""
        iam = self._writer("identity", self.accounts.mlspace_account, arn).client("iam")
        steps = []
        for role in roles:
            try:
                with aws_call(iam, "iam:AttachRolePolicy"):
                    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
                steps.append(Step("identity", arn, ATTACHED, role))
            except ClientError as error:
                if error_code(error) != "NoSuchEntity":
                    raise
                steps.append(Step("identity", arn, ROLE_MISSING, role))
        return steps

    def delete(self, layer: str, target: str, account: str) -> list[Step]:
        """A document left without statements: a bucket policy is deleted (S3 refuses an empty one), our
        grant policy detached and deleted; a boundary or key policy never is (they must exist)."""
        spec = LAYER_SPECS[layer]
        clients = self._writer(layer, account, target)
        if spec.api_delete is not None:
            client = clients.client(spec.client)
            with aws_call(client, spec.api_delete.action):
                spec.api_delete.call(client, target)
            return [Step(layer, target, DELETED)]
        if spec.always_exists:
            raise Conflict(
                f"Removing this request's statements would leave the {layer} {target} empty; it was left "
                "as it is. Remove them by hand if that is really intended."
            )
        iam = clients.client("iam")
        steps = []
        with aws_call(iam, "iam:ListEntitiesForPolicy"):
            pages = iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=target)
            entities = [
                (kind, str(item[f"{kind}Name"]))
                for page in pages
                for kind in ("Role", "User", "Group")
                for item in page[f"Policy{kind}s"]
            ]
        for kind, name in entities:
            with aws_call(iam, f"iam:Detach{kind}Policy"):
                getattr(iam, f"detach_{kind.lower()}_policy")(**{f"{kind}Name": name, "PolicyArn": target})
            steps.append(Step(layer, target, DETACHED, name))
        with aws_call(iam, "iam:DeletePolicy"):
            for version in iam.list_policy_versions(PolicyArn=target)["Versions"]:
                if not version["IsDefaultVersion"]:
                    iam.delete_policy_version(PolicyArn=target, VersionId=version["VersionId"])
            iam.delete_policy(PolicyArn=target)
        return [*steps, Step(layer, target, DELETED)]

    def _writer(self, layer: str, account: str, target: str) -> Aws:
        """The clients that may write; our identity writes touch only policies of our own. Every write asks
        for them first, so the fence is checked before each one."""
        self.fence()
        if layer == "identity" and not is_grant_policy_name(resource_name(target)):
            raise NotAllowed(
                f"{target} is not a grant policy of ours ({GRANT_POLICY_PREFIX}-...): the endpoint never "
                "edits MLSpace's own policies, which MLSpace rewrites."
            )
        clients = self.writer(layer, account)
        if clients is None:
            raise Unavailable(f"The endpoint cannot write the {layer} of {target} in account {account}.")
        return clients
