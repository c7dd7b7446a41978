"""Plan an access request: for each layer, the live document, the one apply would write, and a diff.

The admin reads every layer with admin rights, and the bucket owner's through the role the registry names, so
the plan shows exactly what apply will write. The statements come from :func:`remedy.plan_fixes` with the
request's Sid stem: what a notebook user is told to ask for and what the admin applies are the same, and a
revoke finds exactly the statements this request added.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.access import AccessRequest, Requester, SharedBucket
from mlspace_s3magic.core.aws import Aws, StaticCredentials, aws_call, error_code, is_access_denied
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.capabilities import (
    UNKNOWN_OWNER,
    Capabilities,
    evaluate_capabilities,
    kms_key_arn,
    needed_capabilities,
)
from mlspace_s3magic.core.ceiling import Granted, GrantedBucket, GrantedKey
from mlspace_s3magic.core.errors import Conflict
from mlspace_s3magic.core.fix import Fix
from mlspace_s3magic.core.fix_plan import UNREAD, Current
from mlspace_s3magic.core.grant import WRITE_ACTIONS, AccessLevel, GrantScope, default_scope
from mlspace_s3magic.core.identity import CallerArn, Identity, boundary_of
from mlspace_s3magic.core.layer_kinds import RunAs, size_problem, spec_of, writes_in_mlspace_account
from mlspace_s3magic.core.layers import (
    BucketLayers,
    CallerLayers,
    FetchedPolicy,
    LayerFetcher,
    PolicyOrGap,
    Unreadable,
    as_document,
)
from mlspace_s3magic.core.mlspace import (
    grant_policy_name,
    is_grant_policy_name,
    owner_of,
    project_from_role_name,
)
from mlspace_s3magic.core.names import BucketRef, is_kms_key_arn, parse_bucket_reference
from mlspace_s3magic.core.policy.arns import parse_arn, require_arn
from mlspace_s3magic.core.policy_edit import Document, is_ours, statements_of
from mlspace_s3magic.core.remedy import plan_fixes

OwnerSessions = Callable[[str], Aws | None]
# The registry's answer to "which account owns this bucket" (None: not registered, or no account given).
Owners = Callable[[str], str | None]
ENDPOINT = "endpoint"
OWNER = "owner"
OWNER_SESSION_NAME = "mlspace-s3access-admin"
OWNER_SESSION_SECONDS = 15 * 60  # well within AssumeRole's default hour
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy
POOL_SIZE = 16  # more than the reads that wait on others (the bucket's layers), so none can starve


class UnknownRequesterRole(Conflict):
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
        if writes_in_mlspace_account(layer):
            return self.mlspace
        return self.owner if account == self.owner_account else None

    def reader(self, layer: str, account: str) -> Aws:
        return self.writer(layer, account) or self.bucket_reader


def accounts_for(
    requester: Requester,
    bucket_name: str,
    bucket: SharedBucket | None,
    *,
    aws: Aws,
    owner_sessions: OwnerSessions,
) -> Accounts:
    """The clients for a requester's bucket: the owner's role when the registry entry ``bucket`` names one,
    ours for our own buckets."""
    mlspace_account = requester.account
    owner_account = owner_of(bucket_name, mlspace_account, bucket.owner_account if bucket else None)
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
            f"The registry does not say which account owns {bucket_name}, so it is treated as another "
            "account: its bucket policy must allow the requester too."
        )
    return Accounts(aws, mlspace_account, owner, owner_account, tuple(notes))


def owner_role_sessions(aws: Aws, external_id: str | None = None) -> OwnerSessions:
    """The production ``owner_sessions``: AssumeRole into the registry entry's role with the admin's clients;
    None when that is refused, so the plan falls back to commands the owner runs. Each role's session is
    kept for a while (its credentials last an hour): making clients costs more than the round trip.
    ``external_id`` is sent when the owners' roles require one (deploy/partner-owner-role.yaml does)."""
    sessions: TimedCache[Aws | None] = TimedCache(OWNER_SESSION_SECONDS)

    def cached(role_arn: str) -> Aws | None:
        session = sessions.get(role_arn, lambda: assume(role_arn))
        if session is None:  # a refusal is asked again next time: the owner may allow the role meanwhile
            sessions.forget(role_arn)
        return session

    def assume(role_arn: str) -> Aws | None:
        sts = aws.client("sts")
        try:
            with aws_call(sts, "sts:AssumeRole"):
                extra = {"ExternalId": external_id} if external_id else {}
                response = sts.assume_role(RoleArn=role_arn, RoleSessionName=OWNER_SESSION_NAME, **extra)
        except ClientError as error:
            if is_access_denied(error):
                return None
            raise
        keys = response["Credentials"]
        credentials = StaticCredentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])
        return Aws(aws.settings, credentials)

    return cached


def requester_identity(aws: Aws, requester: Requester) -> Identity:
    """The requester as remedy needs them (role, boundary, MLSpace names), read with admin rights."""
    caller = CallerArn.parse(requester.arn)
    if caller.kind != "assumed-role" or not caller.name:
        raise Conflict(
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
        boundary=boundary_of(role),
        user_scoped=project_from_role_name(caller.name) is not None,
    )


def request_ref(request: AccessRequest) -> BucketRef:
    return parse_bucket_reference(f"{request.bucket}/{request.prefix}")


def grant_policy_arn(identity: Identity, scope: GrantScope) -> str:
    """Our own grant policy for a scope: ``MLSpace-s3access-project-<P>`` or ``MLSpace-s3access-user-<U>``."""
    name = grant_policy_name(scope, identity.project if scope is GrantScope.PROJECT else identity.user)
    return f"arn:{require_arn(identity.arn).partition}:iam::{identity.account}:policy/{name}"


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


def read_live(identity: Identity, ref: BucketRef, accounts: Accounts, pool: ThreadPoolExecutor) -> Live:
    """The caller's policies and boundary (admin's clients) and the bucket's policy, encryption and key policy
    (the owner's, when we have them), read at the same time."""
    bucket = pool.submit(LayerFetcher(accounts.bucket_reader, pool).bucket_layers, ref)
    caller = LayerFetcher(accounts.mlspace, pool).caller_layers(identity)
    return Live(identity, ref, accounts.owner_account, caller, bucket.result())


def evaluate_live(request: AccessRequest, live: Live) -> Capabilities:
    """Each capability the request asks for, as the requester's session, over the live layers."""
    return evaluate_capabilities(
        request.requester.arn,
        live.ref,
        live.caller,
        live.bucket,
        owner_account=live.owner_account,
        capabilities=needed_capabilities(request.access),
    )


# -- the plan ------------------------------------------------------------------------------------------


class Planner:
    """Plans requests with the MLSpace admin's clients, acting in an owner's account through its role."""

    def __init__(self, aws: Aws, *, owner_sessions: OwnerSessions, owners: Owners | None = None):
        self.aws = aws
        self.owner_sessions = owner_sessions
        self.owners = owners or unregistered

    def plan(
        self, request: AccessRequest, bucket: SharedBucket | None, *, scope: GrantScope | None = None
    ) -> Plan:
        """The changes that let the requester do what they asked, for the layers that block it today."""
        accounts = accounts_for(
            request.requester, request.bucket, bucket, aws=self.aws, owner_sessions=self.owner_sessions
        )
        identity = requester_identity(self.aws, request.requester)
        chosen = GrantScope(scope) if scope is not None else default_scope(identity)
        if chosen is GrantScope.SHARED or not (
            identity.project if chosen is GrantScope.PROJECT else identity.user
        ):
            whose = (
                f"The role {identity.role} is MLSpace's shared notebook role (every notebook uses it)"
                if chosen is GrantScope.SHARED
                else f"The role {identity.role} has no known MLSpace {chosen.value}"
            )
            problem = (
                f"{whose}: its grant would go into MLSpace's shared notebook policy, which CDK rewrites on "
                "every deploy and the endpoint does not edit. Apply `s3access check`'s fix by hand."
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
        evaluated = evaluate_live(request, live)
        blocked = evaluated.blocking(needed_capabilities(request.access))
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
            key_read_at_run_time=False,
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
            (*_problems(changes, currents), *_versions_full(self.aws, changes)),
            (*accounts.notes, *evaluated.notes, *_notes(evaluated, fixes)),
        )


def _versions_full(aws: Aws, changes: list[LayerChange]) -> list[str]:
    """MLSpace's boundary at IAM's five versions: apply would have to delete one, which is not ours to do,
    so the plan says what the admin must do first."""
    iam = aws.client("iam")
    problems = []
    for change in changes:
        if change.layer != "boundary" or change.applied_by != ENDPOINT:
            continue
        with aws_call(iam, "iam:ListPolicyVersions"):
            versions = iam.list_policy_versions(PolicyArn=change.target)["Versions"]
        if len(versions) >= MAX_POLICY_VERSIONS:
            problems.append(versions_full(change.target))
    return problems


def versions_full(arn: str) -> str:
    """What to do when MLSpace's boundary holds IAM's five versions (said by the plan and by apply)."""
    return (
        f"{arn} already has the {MAX_POLICY_VERSIONS} versions IAM keeps, and it is MLSpace's, not ours to "
        f"prune: delete a version you no longer need (aws iam list-policy-versions --policy-arn {arn}; aws "
        "iam delete-policy-version ...), then try again. Nothing was written to it."
    )


def unregistered(_bucket: str) -> str | None:
    """The owners of a planner without a registry: unknown."""
    return None


def live_grants(aws: Aws, owners: Owners, *, without: Collection[str] = ()) -> list[Granted]:
    """Every bucket (with its owner from the registry) and KMS key the statements of our grant policies
    reach now, but those of the Sid stems ``without`` (a request being revoked, orphans): what MLSpace's
    boundary must keep allowing (see :mod:`core.ceiling`)."""
    iam = aws.client("iam")
    with aws_call(iam, "iam:ListPolicies"):
        ours = [
            policy
            for page in iam.get_paginator("list_policies").paginate(Scope="Local")
            for policy in page["Policies"]
            if is_grant_policy_name(policy["PolicyName"])
        ]
    granted: list[Granted] = []
    for policy in ours:
        with aws_call(iam, "iam:GetPolicyVersion"):
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        for statement in statements_of(as_document(version["PolicyVersion"]["Document"])):
            if any(is_ours(statement, stem) for stem in without):
                continue
            granted += _granted_by(statement, owners)
    return granted


def _granted_by(statement: Any, owners: Owners) -> list[Granted]:
    """The buckets one Allow statement of ours names, writing when it allows a write action, and the KMS
    keys it names (``key/*``: every key of an account, for a key the grant could not read)."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
        return []
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    resources = statement.get("Resource", [])
    resources = [r for r in (resources if isinstance(resources, list) else [resources]) if isinstance(r, str)]
    arns = [(resource, arn) for resource in resources if (arn := parse_arn(resource)) is not None]
    write = any(action in WRITE_ACTIONS for action in actions)
    buckets = {arn.resource.split("/", 1)[0] for _, arn in arns if arn.service == "s3"}
    keys = {
        GrantedKey(arn.account, text if is_kms_key_arn(text) else None)
        for text, arn in arns
        if arn.service == "kms" and (is_kms_key_arn(text) or arn.resource == "key/*")
    }
    return [
        *(GrantedBucket(bucket, owners(bucket), write) for bucket in sorted(buckets)),
        *sorted(keys, key=lambda key: (key.account, key.arn or "")),
    ]


def _current(fetched: PolicyOrGap) -> Current:
    if isinstance(fetched, Unreadable):
        return UNREAD
    return None if fetched is None else fetched.document


def _grantee_roles(aws: Aws, identity: Identity, scope: GrantScope) -> tuple[str, ...]:
    """The roles the grant policy goes on: every role of the project (one per member), or the user's own."""
    if scope is GrantScope.USER:
        return (str(identity.role),)
    return project_roles(aws, str(identity.project))


def project_roles(aws: Aws, project: str) -> tuple[str, ...]:
    """Every role of an MLSpace project (one per member), those made after a grant too."""
    iam = aws.client("iam")
    with aws_call(iam, "iam:ListRoles"):
        names = [
            role["RoleName"] for page in iam.get_paginator("list_roles").paginate() for role in page["Roles"]
        ]
    return tuple(sorted(name for name in names if project_from_role_name(name) == project))


def _change(fix: Fix, fetched: PolicyOrGap, accounts: Accounts, roles: tuple[str, ...]) -> LayerChange:
    spec = spec_of(fix.layer)
    # A kms change is made here only for a known key, so the fix names the key's account.
    account = {
        RunAs.BUCKET_OWNER: accounts.owner_account or UNKNOWN_OWNER,
        RunAs.KEY_OWNER: str(fix.account),
    }.get(spec.run_as if spec else RunAs.NOBODY, accounts.mlspace_account)
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


def _notes(evaluated: Capabilities, fixes: list[Fix]) -> list[str]:
    notes = [f"Could not read the {gap.layer} layer: {gap.reason}." for gap in evaluated.unreadable]
    notes += [fix.command for fix in fixes if not fix.statements]
    if any(evaluation.explicit_deny for evaluation in evaluated.evaluations):
        notes.append(
            "An explicit Deny blocks this access: the Allow statements of this plan cannot lift it "
            "(see the reasons in a verification)."
        )
    if not fixes:
        notes.append("Nothing to change: every layer the endpoint can read already allows this access.")
    return notes
