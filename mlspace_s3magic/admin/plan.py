"""Plan an access request: for each layer, the live document, the one apply would write, and a diff.

The admin reads every layer with admin rights, and the bucket owner's through the role the registry names, so
the plan shows exactly what apply will write. The statements come from :func:`remedy.plan_fixes` with the
request's Sid stem: what a notebook user is told to ask for and what the admin applies are the same, and a
revoke finds exactly the statements this request added.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.access import AccessRequest, Requester, SharedBucket
from mlspace_s3magic.core.aws import Aws, StaticCredentials, aws_call, error_code, is_access_denied
from mlspace_s3magic.core.ceiling import GrantedBucket
from mlspace_s3magic.core.check import (
    EXAMPLE_KEY,
    KMS_ACTIONS,
    S3_ACTIONS,
    UNKNOWN_OWNER,
    Evaluation,
    evaluate_with_gaps,
    known_layers,
)
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.identity import CallerArn, Identity
from mlspace_s3magic.core.layers import (
    BucketLayers,
    CallerLayers,
    FetchedPolicy,
    LayerFetcher,
    PolicyOrGap,
    Unreadable,
    as_document,
)
from mlspace_s3magic.core.mlspace import project_from_role_name
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference, s3_via_service
from mlspace_s3magic.core.policy import Principal, Request
from mlspace_s3magic.core.remedy import (
    GRANT_POLICY_PREFIX,
    UNREADABLE,
    WRITE_ACTIONS,
    AccessLevel,
    Current,
    Fix,
    Scope,
    default_scope,
    is_ours,
    plan_fixes,
    size_problem,
)

Document = dict[str, Any]
OwnerSessions = Callable[[str], Aws | None]
# The registry's answer to "which account owns this bucket" (None: not registered, or no account given).
Owners = Callable[[str], str | None]
ENDPOINT = "endpoint"
OWNER = "owner"
OWNER_SESSION_NAME = "mlspace-s3access-admin"
POOL_SIZE = 16  # more than the reads that wait on others (the bucket's layers), so none can starve


class UnknownRequesterRole(S3MagicError):
    """The requester's role is gone (MLSpace deletes it when a user leaves a project)."""


@dataclass(frozen=True)
class LayerChange:
    """One layer's change: ``current`` is the live document when planned (None: none yet, or unreadable when
    ``new`` is None too), ``new`` the document after it, ``statements`` ours among them."""

    layer: str  # "bucket-policy", "boundary", "identity" or "kms"
    target: str  # bucket name, policy ARN or key ARN
    account: str
    current: Document | None
    new: Document | None
    statements: tuple[Document, ...]
    diff: str
    applied_by: str  # ENDPOINT, or OWNER: the owner must run ``command``
    command: str
    attach_to_roles: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "target": self.target,
            "account": self.account,
            "current": self.current,
            "new": self.new,
            "statements": list(self.statements),
            "diff": self.diff,
            "applied_by": self.applied_by,
            "command": self.command,
            "attach_to_roles": list(self.attach_to_roles),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerChange:
        return cls(
            layer=data["layer"],
            target=data["target"],
            account=data["account"],
            current=data["current"],
            new=data["new"],
            statements=tuple(data["statements"]),
            diff=data["diff"],
            applied_by=data["applied_by"],
            command=data["command"],
            attach_to_roles=tuple(data.get("attach_to_roles", ())),
            warnings=tuple(data.get("warnings", ())),
        )


@dataclass(frozen=True)
class Plan:
    """Every change one request needs; ``problems`` block apply, ``notes`` only inform."""

    request_id: str
    sid_stem: str
    changes: tuple[LayerChange, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def awaiting_owner(self) -> bool:
        """Whether a change waits for the bucket (or key) owner to run its command."""
        return any(change.applied_by == OWNER for change in self.changes)

    def change(self, layer: str, target: str) -> LayerChange | None:
        return next((c for c in self.changes if (c.layer, c.target) == (layer, target)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "sid_stem": self.sid_stem,
            "changes": [change.to_dict() for change in self.changes],
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            request_id=data["request_id"],
            sid_stem=data["sid_stem"],
            changes=tuple(LayerChange.from_dict(change) for change in data["changes"]),
            problems=tuple(data.get("problems", ())),
            notes=tuple(data.get("notes", ())),
        )


@dataclass(frozen=True)
class Accounts:
    """Clients for each account a grant touches; ``owner`` acts in the bucket owner's account, or is None
    when the endpoint may not (the owner must then run the commands)."""

    mlspace: Aws
    mlspace_account: str
    owner: Aws | None
    owner_account: str | None
    notes: tuple[str, ...] = ()

    @property
    def bucket_reader(self) -> Aws:
        """The owner's clients when we have them, else the admin's (which a partner's bucket may refuse)."""
        return self.owner or self.mlspace

    def writer(self, layer: str, account: str) -> Aws | None:
        """Who writes a layer: the admin in MLSpace's account, the owner's role for the bucket's side."""
        if layer in ("boundary", "identity"):
            return self.mlspace
        return self.owner if account == self.owner_account else None

    def reader(self, layer: str, account: str) -> Aws:
        return self.writer(layer, account) or self.bucket_reader


def accounts_for(
    request: AccessRequest, bucket: SharedBucket | None, *, aws: Aws, owner_sessions: OwnerSessions
) -> Accounts:
    """The clients for a request: the owner's role when the registry names one, ours for our own buckets."""
    mlspace_account = request.requester.account
    owner_account = bucket.owner_account if bucket else None
    owner: Aws | None = None
    notes: list[str] = []
    if bucket is not None and bucket.owner_role_arn:
        owner = owner_sessions(bucket.owner_role_arn)
        if owner is None:
            notes.append(
                f"The owner role {bucket.owner_role_arn} could not be assumed, so the owner must run the "
                "bucket's commands (or let the MLSpace account assume that role)."
            )
    elif owner_account == mlspace_account:
        owner = aws
    if owner_account is None:
        notes.append(
            f"The registry does not say which account owns {request.bucket}, so it is treated as another "
            "account: its bucket policy must allow the requester too."
        )
    return Accounts(aws, mlspace_account, owner, owner_account, tuple(notes))


def owner_role_sessions(aws: Aws) -> OwnerSessions:
    """The production ``owner_sessions``: AssumeRole into the registry entry's role with the admin's clients;
    None when that is refused, so the plan falls back to commands the owner runs."""

    def assume(role_arn: str) -> Aws | None:
        sts = aws.client("sts")
        try:
            with aws_call(sts, "sts:AssumeRole"):
                response = sts.assume_role(RoleArn=role_arn, RoleSessionName=OWNER_SESSION_NAME)
        except ClientError as error:
            if is_access_denied(error):
                return None
            raise
        keys = response["Credentials"]
        credentials = StaticCredentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
        return Aws(aws.settings, credentials)

    return assume


def requester_identity(aws: Aws, requester: Requester) -> Identity:
    """The requester as remedy needs them (role, boundary, MLSpace names), read with admin rights."""
    caller = CallerArn.parse(requester.arn)
    if caller.kind != "assumed-role" or not caller.name:
        raise S3MagicError(
            f"{requester.arn} is not a role session: the endpoint grants access to MLSpace roles only."
        )
    iam = aws.client("iam")
    try:
        with aws_call(iam, "iam:GetRole"):
            role = iam.get_role(RoleName=caller.name)["Role"]
    except ClientError as error:
        if error_code(error) == "NoSuchEntity":
            raise UnknownRequesterRole(
                f"The requester's role {caller.name} no longer exists: MLSpace deletes a member's role when "
                "they leave the project."
            ) from None
        raise
    return Identity(
        arn=requester.arn,
        account=caller.account,
        principal_type=caller.kind,
        role=caller.name,
        role_arn=str(role["Arn"]),
        session=caller.session,
        user=requester.user,
        project=requester.project,
        boundary=role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn"),
        user_scoped=project_from_role_name(caller.name) is not None,
    )


def request_ref(request: AccessRequest) -> BucketRef:
    return parse_bucket_reference(f"{request.bucket}/{request.prefix}")


def grant_policy_arn(identity: Identity, scope: Scope) -> str:
    """Our own grant policy for a scope: ``MLSpace-s3access-project-<P>`` or ``MLSpace-s3access-user-<U>``."""
    name = identity.project if scope is Scope.PROJECT else identity.user
    partition = identity.arn.split(":")[1]
    return f"arn:{partition}:iam::{identity.account}:policy/{GRANT_POLICY_PREFIX}-{scope.value}-{name}"


# -- the live layers and what they decide ----------------------------------------------------------------


@dataclass(frozen=True)
class Live:
    """Every layer that decides the requester's access right now."""

    identity: Identity
    ref: BucketRef
    owner_account: str | None
    caller: CallerLayers
    bucket: BucketLayers

    @property
    def kms_key_arn(self) -> str | None:
        return kms_key_arn(self.bucket)

    @property
    def unreadable(self) -> tuple[Unreadable, ...]:
        layers = (
            self.caller.identity_policies,
            self.caller.boundary,
            self.bucket.bucket_policy,
            self.bucket.encryption,
            self.bucket.key_policy,
        )
        return tuple(layer for layer in layers if isinstance(layer, Unreadable))


def kms_key_arn(bucket: BucketLayers) -> str | None:
    """The customer managed key of the bucket's default encryption, when it has one."""
    encryption = bucket.encryption
    if isinstance(encryption, Unreadable) or encryption is None or not encryption.uses_kms:
        return None
    return encryption.kms_key_arn


def read_live(identity: Identity, ref: BucketRef, accounts: Accounts, pool: ThreadPoolExecutor) -> Live:
    """The caller's policies and boundary (admin's clients) and the bucket's policy, encryption and key policy
    (the owner's, when we have them), read at the same time."""
    bucket = pool.submit(LayerFetcher(accounts.bucket_reader, pool).bucket_layers, ref)
    caller = LayerFetcher(accounts.mlspace, pool).caller_layers(identity)
    return Live(identity, ref, accounts.owner_account, caller, bucket.result())


@dataclass(frozen=True)
class CapabilityCheck:
    """One capability as the evaluator decides it over the live layers; ``decision`` is the evaluator's
    ``allowed``, ``implicit_deny`` or ``explicit_deny``, or ``undecided`` when an unreadable layer decides."""

    capability: str
    actions: tuple[str, ...]
    decision: str
    blocked_by: tuple[str, ...] = ()
    unverified: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool | None:
        return None if self.decision == "undecided" else self.decision == "allowed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "actions": list(self.actions),
            "decision": self.decision,
            "allowed": self.allowed,
            "blocked_by": list(self.blocked_by),
            "unverified": list(self.unverified),
            "reasons": list(self.reasons),
        }


def capabilities(access: AccessLevel) -> tuple[str, ...]:
    """What a grant of this level must make possible, for its verification."""
    return {AccessLevel.LIST: ("list",), AccessLevel.READ: ("list", "read")}.get(
        access, ("list", "read", "write")
    )


def evaluate_live(request: AccessRequest, live: Live) -> tuple[tuple[CapabilityCheck, ...], tuple[str, ...]]:
    """Each capability the request asks for, as the requester's session, and notes on unparsable layers.

    A KMS key on the bucket adds its action to read and write: any block there is reported as ``kms``, the
    layer whose fix carries the key grant for the key policy, the boundary and the identity policy alike.
    """
    ref = live.ref
    principal = Principal.from_arn(request.requester.arn)
    known, notes = known_layers(live.caller, live.bucket.bucket_policy, "bucket-policy")
    key = live.kms_key_arn
    key_known = None
    if key:
        key_known, key_notes = known_layers(live.caller, live.bucket.key_policy, "kms")
        notes += key_notes
    checks = []
    for capability in capabilities(AccessLevel(request.access)):
        resource = ref.bucket_arn if capability == "list" else ref.object_arn(f"{ref.prefix}{EXAMPLE_KEY}")
        context: dict[str, str] = {}
        if capability == "list" and ref.prefix:
            context["s3:prefix"] = ref.prefix
        if capability == "write":
            context["s3:x-amz-acl"] = "bucket-owner-full-control"
        owner = live.owner_account or UNKNOWN_OWNER
        s3 = evaluate_with_gaps(
            Request(principal, S3_ACTIONS[capability], resource, owner, context), known, "bucket-policy"
        )
        kms = None
        if key and key_known and capability in KMS_ACTIONS:
            via = {"kms:ViaService": s3_via_service(key)}
            kms = evaluate_with_gaps(
                Request(principal, KMS_ACTIONS[capability], key, context=via), key_known, "kms"
            )
        checks.append(_capability_check(capability, s3, kms))
    return tuple(checks), tuple(dict.fromkeys(notes))


def _capability_check(capability: str, s3: Evaluation, kms: Evaluation | None) -> CapabilityCheck:
    parts = [s3, kms] if kms else [s3]
    kms_blocks = kms is not None and kms.decision.endswith("deny")
    decisions = {part.decision for part in parts}
    decision = next((d for d in ("explicit_deny", "implicit_deny", "undecided") if d in decisions), "allowed")
    return CapabilityCheck(
        capability=capability,
        actions=(S3_ACTIONS[capability], *((KMS_ACTIONS[capability],) if kms else ())),
        decision=decision,
        blocked_by=tuple(dict.fromkeys((*s3.blocked_by, *(("kms",) if kms_blocks else ())))),
        unverified=tuple(dict.fromkeys((*s3.suspects, *(("kms",) if kms and kms.suspects else ())))),
        reasons=tuple(dict.fromkeys(reason for part in parts for reason in part.reasons)),
    )


# -- the plan ------------------------------------------------------------------------------------------


class Planner:
    """Plans requests with the MLSpace admin's clients, acting in an owner's account through its role."""

    def __init__(self, aws: Aws, *, owner_sessions: OwnerSessions, owners: Owners | None = None):
        self.aws = aws
        self.owner_sessions = owner_sessions
        self.owners = owners or unregistered

    def plan(
        self, request: AccessRequest, bucket: SharedBucket | None, *, scope: Scope | None = None
    ) -> Plan:
        """The changes that let the requester do what they asked, for the layers that block it today."""
        accounts = accounts_for(request, bucket, aws=self.aws, owner_sessions=self.owner_sessions)
        identity = requester_identity(self.aws, request.requester)
        chosen = Scope(scope) if scope is not None else default_scope(identity)
        if chosen is Scope.SHARED or not (identity.project if chosen is Scope.PROJECT else identity.user):
            problem = (
                f"The role {identity.role} is not a user-scoped MLSpace role with a known {chosen.value}: "
                "its grant would go into MLSpace's shared notebook policy, which the endpoint does not edit. "
                "Apply `s3access check`'s fix by hand."
            )
            return Plan(request.id, request.sid_stem, (), (problem,), accounts.notes)
        ref = request_ref(request)
        grant_arn = grant_policy_arn(identity, chosen)
        with ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="s3access-plan") as pool:
            grant = pool.submit(LayerFetcher(self.aws, pool).managed_policy, "identity", grant_arn)
            roles = pool.submit(_grantee_roles, self.aws, identity, chosen)
            granted = pool.submit(live_grants, self.aws, self.owners)
            live = read_live(identity, ref, accounts, pool)
            currents = {
                "bucket-policy": live.bucket.bucket_policy,
                "boundary": live.caller.boundary,
                "identity": grant.result(),
                "kms": live.bucket.key_policy,
            }
            grantees = roles.result()
        checks, notes = evaluate_live(request, live)
        blocked = [layer for check in checks for layer in (*check.blocked_by, *check.unverified)]
        fixes = plan_fixes(
            identity=identity,
            ref=ref,
            access=AccessLevel(request.access),
            blocked_by=blocked,
            bucket_owner_account=accounts.owner_account,
            current_bucket_policy=_current(currents["bucket-policy"]),
            current_boundary=_current(currents["boundary"]),
            current_grant_policy=_current(currents["identity"]),
            kms_key_arn=live.kms_key_arn,
            current_key_policy=_current(currents["kms"]),
            scope=chosen,
            sid=request.sid_stem,
            granted=granted.result(),
        )
        changes = [
            _change(fix, currents[fix.layer], accounts, grantees if fix.layer == "identity" else ())
            for fix in fixes
            if fix.statements
        ]
        return Plan(
            request.id,
            request.sid_stem,
            tuple(changes),
            tuple(_problems(changes, currents)),
            (*accounts.notes, *notes, *_notes(checks, live, fixes)),
        )


def unregistered(_bucket: str) -> str | None:
    """The owners of a planner without a registry: unknown."""
    return None


def live_grants(aws: Aws, owners: Owners, *, without_stem: str | None = None) -> list[GrantedBucket]:
    """Every bucket the statements of our grant policies reach now (but ``without_stem``'s), with its owner
    from the registry: what MLSpace's boundary must keep allowing (see :mod:`core.ceiling`)."""
    iam = aws.client("iam")
    with aws_call(iam, "iam:ListPolicies"):
        ours = [
            policy
            for page in iam.get_paginator("list_policies").paginate(Scope="Local")
            for policy in page["Policies"]
            if policy["PolicyName"].startswith(f"{GRANT_POLICY_PREFIX}-")
        ]
    granted: list[GrantedBucket] = []
    for policy in ours:
        with aws_call(iam, "iam:GetPolicyVersion"):
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        for statement in _statement_list(as_document(version["PolicyVersion"]["Document"])):
            if without_stem is not None and is_ours(statement, without_stem):
                continue
            granted += _granted_by(statement, owners)
    return granted


def _granted_by(statement: Any, owners: Owners) -> list[GrantedBucket]:
    """The buckets one Allow statement of ours names, writing when it allows a write action."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
        return []
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    resources = statement.get("Resource", [])
    resources = resources if isinstance(resources, list) else [resources]
    write = any(action in WRITE_ACTIONS for action in actions)
    buckets = {
        resource.split(":::", 1)[1].split("/", 1)[0]
        for resource in resources
        if isinstance(resource, str) and resource.startswith("arn:") and ":s3:::" in resource
    }
    return [GrantedBucket(bucket, owners(bucket), write) for bucket in sorted(buckets)]


def _statement_list(document: Document) -> list[Any]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _current(fetched: PolicyOrGap) -> Current:
    if isinstance(fetched, Unreadable):
        return UNREADABLE
    return None if fetched is None else fetched.document


def _grantee_roles(aws: Aws, identity: Identity, scope: Scope) -> tuple[str, ...]:
    """The roles the grant policy goes on: every role of the project (one per member), or the user's own."""
    if scope is Scope.USER:
        return (str(identity.role),)
    iam = aws.client("iam")
    with aws_call(iam, "iam:ListRoles"):
        names = [
            role["RoleName"] for page in iam.get_paginator("list_roles").paginate() for role in page["Roles"]
        ]
    return tuple(sorted(name for name in names if project_from_role_name(name) == identity.project))


def _change(fix: Fix, fetched: PolicyOrGap, accounts: Accounts, roles: tuple[str, ...]) -> LayerChange:
    if fix.layer == "bucket-policy":
        account = accounts.owner_account or UNKNOWN_OWNER
    elif fix.layer == "kms":
        account = fix.target.split(":")[4]  # a key ARN: plan_fixes makes a kms change only for a known key
    else:
        account = accounts.mlspace_account
    current = fetched.document if isinstance(fetched, FetchedPolicy) else None
    return LayerChange(
        layer=fix.layer,
        target=fix.target,
        account=account,
        current=current,
        new=fix.document,
        statements=fix.statements,
        diff=_diff(current, fix.document, f"{fix.layer} {fix.target}"),
        applied_by=ENDPOINT if accounts.writer(fix.layer, account) else OWNER,
        command=fix.command,
        attach_to_roles=roles,
        warnings=fix.warnings,
    )


def pretty(document: Document | None) -> str:
    return "" if document is None else json.dumps(document, indent=2) + "\n"


def _diff(current: Document | None, new: Document | None, label: str) -> str:
    if new is None:
        return ""
    lines = difflib.unified_diff(
        pretty(current).splitlines(keepends=True),
        pretty(new).splitlines(keepends=True),
        f"{label} (live)",
        f"{label} (planned)",
    )
    return "".join(lines)


def _problems(changes: list[LayerChange], currents: dict[str, PolicyOrGap]) -> list[str]:
    """What would make apply fail or do harm: a document over its size limit, or one we write unread."""
    problems = []
    for change in changes:
        fetched = currents[change.layer]
        if isinstance(fetched, Unreadable) and change.applied_by == ENDPOINT:
            problems.append(
                f"The {change.layer} ({change.target}) could not be read ({fetched.reason}); writing it "
                "unread would replace every statement in it."
            )
        if change.new is not None and (problem := size_problem(change.layer, change.new)):
            problems.append(f"{problem} ({change.target})")
    return problems


def _notes(checks: tuple[CapabilityCheck, ...], live: Live, fixes: list[Fix]) -> list[str]:
    notes = [f"Could not read the {gap.layer} layer: {gap.reason}." for gap in live.unreadable]
    notes += [fix.command for fix in fixes if not fix.statements]
    if any(check.decision == "explicit_deny" for check in checks):
        notes.append(
            "An explicit Deny blocks this access: the Allow statements of this plan cannot lift it "
            "(see the reasons in a verification)."
        )
    if not fixes:
        notes.append("Nothing to change: every layer the endpoint can read already allows this access.")
    return notes
