"""The fix planner: the change each blocking layer needs, documents and targets first, ready-to-paste AWS CLI
commands second.

Why data first: ``%s3access check`` shows these fixes to the notebook user, and the admin endpoint applies the
very same documents, so both must come from one place. The module is pure (documents in, documents out): it
never calls AWS. What a plan's fixes share is :mod:`core.fix_plan`, the advisories are
:mod:`core.fix_advice`; the documents are edited by :mod:`core.policy_edit`, the commands written with
:mod:`core.fix_commands`, and a fix shows itself (:mod:`core.fix`).

Which layer blocks is decided elsewhere (the check); the writable layers and the advisory ones are those of
:mod:`core.layer_kinds`, and any other name gets a generic advisory.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlspace_s3magic.core.ceiling import (
    CEILING_KEY_ACTIONS,
    KEY_HOST_ACTIONS,
    READ_HOST_ACTIONS,
    WRITE_HOST_ACTIONS,
    CeilingDoesNotFit,
    Granted,
    GrantedBucket,
    GrantedKey,
    accounts_in,
    bucket_arns,
    every_key_of,
    key_accounts_in,
    key_listing_statement,
    listing_statement,
    with_ceiling,
)
from mlspace_s3magic.core.fix import Fix, Operation
from mlspace_s3magic.core.fix_advice import advice, same_account_bucket_policy_advice, unknown_key_advice
from mlspace_s3magic.core.fix_commands import (
    ANOTHER_POLICY,
    JQ_CEILING,
    JQ_KEY_CEILING,
    JQ_MERGE,
    JQ_NEW,
    NO_ROOM_FOR_BUCKET_KEY,
    ResourcePolicy,
    comment,
    document_lines,
    heredoc,
    iam_size_of,
    iam_version_lines,
    jq_arguments,
    merge_lines,
    size_guard,
    without_bucket_key_when_full,
)
from mlspace_s3magic.core.fix_keys import AnyKey, BucketKey, NamedKey
from mlspace_s3magic.core.fix_plan import (
    Current,
    FixPlan,
    Unread,
    allow_statement,
    deny_warning,
    existing,
    key_grant,
    kms_actions,
    new_document,
    root_warning,
    s3_statements,
    unreadable_warning,
)
from mlspace_s3magic.core.grant import (
    AccessLevel,
    GrantScope,
    default_scope,
)
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layer_kinds import ADVISORY_LAYERS, LAYER_SPECS, LayerKind, RunAs, Shell
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS
from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    IAM_RESOURCE_PREFIX,
    SHARED_NOTEBOOK_POLICY_NAME,
    grant_policy_name,
    project_policy_name,
    user_policy_name,
)
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.policy_edit import (
    Document,
    Statement,
    statements_of,
)

__all__ = ["AccessLevel", "plan_fixes"]

_BOUNDARY = LAYER_SPECS[LayerKind.BOUNDARY]
_IDENTITY = LAYER_SPECS[LayerKind.IDENTITY]
_KEY_POLICY = LAYER_SPECS[LayerKind.KMS]


def plan_fixes(
    *,
    identity: Identity,
    ref: BucketRef,
    access: AccessLevel,
    blocked_by: Iterable[str],
    bucket_owner_account: str | None,
    current_bucket_policy: Current,
    current_boundary: Current,
    current_grant_policy: Current = None,
    kms_key_arn: str | None = None,
    current_key_policy: Current = None,
    scope: GrantScope | None = None,
    sid: str | None = None,
    granted: Sequence[Granted] | None = None,
    key_read_at_run_time: bool = True,
) -> list[Fix]:
    """The changes that lift every blocking layer, in the order to apply them: bucket policy, boundary,
    identity grant, KMS key policy, then advisories for the layers only others can change.

    In the caller's own account a bucket policy blocks only through an explicit Deny, and an Allow naming the
    account root grants nothing there that the identity grant does not: the bucket-policy fix is then an
    advisory naming the Deny statements (or the command that lists them), never an Allow.

    ``current_*`` is the live document, ``None`` when there is none, or :data:`UNREAD`. The boundary, a
    key policy and the shared notebook policy always exist, so for them ``None`` counts as unreadable. A
    blocked ``kms`` layer with a known key also puts the key grant into the boundary and identity fixes
    (adding those fixes if their layers did not block), because MLSpace's boundary and policies allow only
    MLSpace's own key.

    A blocking (or unverified) ``kms`` layer whose key could not be read is granted as the bucket's key:
    every key of the owner account, only for S3's use on this bucket's objects, with commands that read
    the key at run time (``key_read_at_run_time``; the admin endpoint, which writes documents and reads
    keys itself, gets advice instead).

    ``granted`` is every bucket and key live grants reach (the admin endpoint reads them from the grant
    policies); the boundary fix recomputes MLSpace's boundary for them, this bucket and its key (see
    :mod:`core.ceiling`). None (a notebook's check) counts only these and what the boundary already opens.
    """
    access = AccessLevel(access)
    chosen = GrantScope(scope) if scope is not None else default_scope(identity)
    plan = FixPlan(identity, ref, access, chosen, sid, bucket_owner_account, granted)
    layers = list(dict.fromkeys(str(layer) for layer in blocked_by))
    key: AnyKey | None = None
    if "kms" in layers and kms_key_arn:
        key = NamedKey.parse(kms_key_arn)
    elif "kms" in layers and plan.owner and key_read_at_run_time:
        key = BucketKey(ref, plan.partition, plan.owner)

    fixes: list[Fix] = []
    if "bucket-policy" in layers and plan.same_account:
        fixes.append(same_account_bucket_policy_advice(plan, current_bucket_policy))
    elif "bucket-policy" in layers:
        fixes.append(_bucket_policy_fix(plan, bucket_owner_account, current_bucket_policy))
    for layer, build, current in (
        ("boundary", _boundary_fix, current_boundary),
        ("identity", _identity_fix, current_grant_policy),
    ):
        if layer in layers or (key and not (layer == "boundary" and _known_unbounded(identity))):
            fix = build(_IamGrant(plan, key, s3=layer in layers), current)
            if not (layer == "boundary" and fix.document is not None and fix.document == current):
                fixes.append(fix)  # a boundary that already lets the key through needs no new version
    if isinstance(key, NamedKey):
        fixes.append(_key_policy_fix(plan, key, current_key_policy))
    elif isinstance(key, BucketKey):
        fixes.append(_bucket_key_policy_fix(plan, key))
    elif "kms" in layers:
        fixes.append(unknown_key_advice(plan))
    advisories = [str(layer) for layer in ADVISORY_LAYERS if layer in layers]
    advisories += [layer for layer in layers if layer not in LAYER_SPECS and layer not in ADVISORY_LAYERS]
    fixes.extend(advice(plan, layer, bucket_owner_account) for layer in advisories)
    return fixes


def _bucket_policy_fix(plan: FixPlan, owner: str | None, current: Current) -> Fix:
    ref = plan.ref
    statements = s3_statements(plan, resource_policy=True)
    document = new_document(current, statements)
    owner = ref.access_point_account or owner
    policy = ResourcePolicy.of(ref, owner)
    what = policy.what
    warnings = root_warning(plan)
    warnings += unreadable_warning(current, what, policy.operation.value)
    warnings += deny_warning(current, what)
    if plan.access is AccessLevel.READ_WRITE:
        warnings.append(
            f"Objects written from account {plan.identity.account} belong to the writer unless the bucket "
            "uses Object Ownership 'bucket owner enforced': writers should send --acl "
            "bucket-owner-full-control (ACL='bucket-owner-full-control' in boto3) so the bucket owner can "
            "read them."
        )
    if ref.access_point_arn:
        warnings.append(
            "The bucket behind the access point must delegate access control to its access points (a bucket "
            f"policy statement with the condition s3:DataAccessPointAccount = {owner}); if it does not, the "
            "bucket owner must add one."
        )
    warnings += _too_large(
        LayerKind.BUCKET_POLICY,
        what,
        document,
        ", so S3 will refuse it: fold grants into fewer statements (one statement can list several "
        "resources).",
    )
    return Fix(
        layer="bucket-policy",
        target=policy.target,
        run_as=RunAs.BUCKET_OWNER,
        account=owner,
        applied_by=f"the bucket owner (account {owner or 'unknown'}), with that account's credentials",
        statements=tuple(statements),
        document=document,
        command="\n".join(
            [*policy.header, *document_lines(document, statements, "policy", policy.fetch), policy.put]
        ),
        warnings=tuple(warnings),
        summary=f"Let {plan.who} {plan.verb} {ref} through the {what} of {ref.bucket}.",
        operation=policy.operation,
        sid_stem=plan.stem,
    )


def _too_large(layer: LayerKind, what: str, document: Document | None, consequence: str) -> list[str]:
    """The warning that the service of ``layer`` would refuse the new document as too large, if it would."""
    if document is None:
        return []
    warning = LAYER_SPECS[layer].size_warning(what, document, consequence)
    return [warning] if warning else []


def _admin(plan: FixPlan) -> str:
    return f"an MLSpace admin, with IAM rights in account {plan.identity.account}"


@dataclass(frozen=True)
class _IamGrant:
    """What a boundary or identity fix adds: the S3 statements when its layer blocks, the key grant when a
    KMS key blocks (MLSpace's boundary and policies allow only MLSpace's own key).
    """

    plan: FixPlan
    key: AnyKey | None
    s3: bool

    @property
    def statements(self) -> list[Statement]:
        keys = [key_grant(self.plan, self.key)] if self.key else []
        return (s3_statements(self.plan) if self.s3 else []) + keys

    @property
    def allows(self) -> str:
        parts = [f"{self.plan.verb} on {self.plan.ref}"] if self.s3 else []
        parts += [f"use of {self.key.name} through S3"] if self.key else []
        return " and ".join(parts)


def _boundary_fix(grant: _IamGrant, current: Current) -> Fix:
    plan = grant.plan
    target = plan.identity.boundary or plan.iam_arn(f"policy/{BOUNDARY_POLICY_NAME}")
    current = existing(current, LayerKind.BOUNDARY)
    warnings = [
        "Every MLSpace user role carries this boundary: raising it grants nothing by itself, but lets any "
        "role whose identity policies grant this access use it."
    ]
    if plan.identity.boundary is None:
        warnings.append(
            f"The caller's boundary could not be read; this assumes MLSpace's recommended name "
            f"{BOUNDARY_POLICY_NAME}."
        )
    warnings += unreadable_warning(current, "boundary", Operation.CREATE_POLICY_VERSION.value)
    bucket = GrantedBucket(plan.ref.bucket, plan.owner, write=plan.access is AccessLevel.READ_WRITE)
    this: list[Granted] = [bucket] if grant.s3 else []
    this += [grant.key.granted] if grant.key else []
    document: Document | None = None
    if not isinstance(current, dict) or _key_read_at_run_time(plan, grant.key):
        statements = [listing_statement([str(bucket.bucket)])] if grant.s3 else []
        statements += [key_listing_statement([grant.key.granted.resource])] if grant.key else []
        if _key_read_at_run_time(plan, grant.key):
            warnings.append(
                "The bucket's KMS key could not be read here and is in MLSpace's own account, where the "
                "boundary names keys one by one: the command reads the key and the live boundary at run time."
            )
        lines = _unread_boundary_lines(target, plan, bucket if grant.s3 else None, grant.key)
    else:
        document, problem = _with_these(plan, current, this)
        if problem and isinstance(grant.key, BucketKey):  # the bucket may use no KMS key at all
            document, problem = _with_these(plan, current, this[:-1])
            warnings.append(NO_ROOM_FOR_BUCKET_KEY)
        warnings += [problem] if problem else []
        before = statements_of(current)
        statements = [statement for statement in statements_of(document) if statement not in before]
        lines = [heredoc("boundary.json", document)]
    warnings += _too_large(LayerKind.BOUNDARY, "boundary", document, ", so IAM will refuse it.")
    return Fix(
        layer="boundary",
        target=target,
        run_as=RunAs.MLSPACE_ADMIN,
        account=plan.identity.account,
        applied_by=_admin(plan),
        statements=tuple(statements),
        document=document,
        command="\n".join(
            _settle_boundary_lines(plan, target)
            + lines
            + iam_version_lines(target, "boundary.json", ours=False)
        ),
        warnings=tuple(warnings),
        summary=f"Raise the permissions boundary so that it allows {grant.allows}.",
        operation=Operation.CREATE_POLICY_VERSION,
        sid_stem=plan.stem,
    )


def _known_unbounded(identity: Identity) -> bool:
    """Whether the caller's role was read and has no permissions boundary (MLSpace's shared notebook role):
    then there is no boundary to raise for a key."""
    return bool(identity.role) and identity.boundary is None and identity.boundary_unreadable is None


def _settle_boundary_lines(plan: FixPlan, target: str) -> list[str]:
    """With the caller's role unread, its boundary is assumed: the command first reads the role's real one
    and stops, naming it, when it is another policy, so it never raises the wrong boundary; a role without
    a boundary (MLSpace's shared notebook role) needs nothing here."""
    if plan.identity.boundary is not None or not plan.identity.role:
        return []
    role = shlex.quote(plan.identity.role)
    stop = shlex.quote(
        f"The role's boundary is not {target}: run the check again with rights to read the role "
        "(iam:GetRole), or change this command's policy ARN to the one printed above."
    )
    return [
        "# The caller's role could not be read, so its boundary is assumed: make sure it is this one.",
        f"actual=$(aws iam get-role --role-name {role} "
        "--query Role.PermissionsBoundary.PermissionsBoundaryArn --output text)",
        'echo "boundary of the role: $actual"',
        'if [ "$actual" = None ]; then',
        '  echo "The role has no permissions boundary: there is none to raise." >&2',
        "  exit 0",
        "fi",
        f'if [ "$actual" != {shlex.quote(target)} ]; then',
        f"  echo {stop} >&2",
        "  exit 1",
        "fi",
    ]


def _with_these(plan: FixPlan, document: Document, these: list[Granted]) -> tuple[Document, str | None]:
    """The boundary recomputed for every live grant and this one's bucket and key; over IAM's limit, the
    smallest form with the reason and the admin's options."""
    if plan.granted is not None:
        granted = [*plan.granted, *these]
    else:
        granted = [
            *(GrantedBucket(None, account) for account in accounts_in(document)),
            *(GrantedKey(account) for account in key_accounts_in(document)),
            *these,
        ]
    try:
        return with_ceiling(document, granted, previous=granted, home_account=plan.identity.account), None
    except CeilingDoesNotFit as refused:
        return refused.smallest, str(refused)


def _unread_boundary_lines(
    target: str, plan: FixPlan, this: GrantedBucket | None, key: AnyKey | None
) -> list[str]:
    """Fetch the live boundary, add the bucket's ARNs to MLSpace's S3 statements and the key's to its KMS
    statement (core/ceiling.py), with jq, into ``boundary.json``."""
    lines = [
        "# The current boundary could not be read here: fetch it, then add this grant to it (needs jq).",
        f"{_BOUNDARY.read_command(target)} > boundary.current.json",
    ]
    step = "boundary.current.json"
    if this is not None:
        read, objects = bucket_arns(str(this.bucket))
        arguments = jq_arguments(
            ("readhost", list(READ_HOST_ACTIONS)),
            ("writehost", list(WRITE_HOST_ACTIONS)),
            ("read", [read, objects]),
            ("write", [objects] if this.write else []),
            ("own", listing_statement([str(this.bucket)])),
        )
        lines.append(f"jq {arguments} {shlex.quote(JQ_CEILING)} {step} > boundary.ceiling.json")
        step = "boundary.ceiling.json"
    if key is not None:
        lines += _key_ceiling_lines(plan, key, step)
        step = "boundary.keyed.json"
    lines.append(f"mv {step} boundary.json")
    lines += size_guard(
        target,
        "boundary.json",
        "revoke a grant no longer needed, or give MLSpace a boundary of your own with room (MLSpace's "
        "PERMISSIONS_BOUNDARY_POLICY_NAME setting)",
    )
    return lines


def _key_read_at_run_time(plan: FixPlan, key: AnyKey | None) -> bool:
    """Whether the boundary must name a key only the command can read: MLSpace's own account is never
    opened key-wide (see core/ceiling.py), so an unread key of that account is read by the admin."""
    return isinstance(key, BucketKey) and key.account == plan.identity.account


def _key_ceiling_lines(plan: FixPlan, key: AnyKey, step: str) -> list[str]:
    """The key's ARN into MLSpace's KMS statement of the boundary (else a statement of ours); with no room
    for the ARN, or no ARN known, every key of the key's account, as core/ceiling.py does (never MLSpace's
    own account, whose key the command then reads from the bucket)."""

    def keyed(resources: list[str] | None) -> str:
        """``None``: the key the discovery lines put in ``$key``."""
        given = (
            f'--argjson keys "$(jq -cn --arg key "$key" {shlex.quote("[$key]")})"'
            if resources is None
            else jq_arguments(("keys", resources))
        )
        arguments = jq_arguments(
            ("keyhost", list(KEY_HOST_ACTIONS)), ("ownactions", list(CEILING_KEY_ACTIONS))
        )
        return f"jq {arguments} {given} {shlex.quote(JQ_KEY_CEILING)} {step} > boundary.keyed.json"

    if isinstance(key, BucketKey):
        lines = [keyed([key.granted.resource])]
        if _key_read_at_run_time(plan, key):
            lines = [
                *key.discovery_lines(without=":"),
                'if [ -n "$key" ]; then',
                f"  {keyed(None)}",
                "else",
                f"  cp {step} boundary.keyed.json",
                "fi",
            ]
        return [*lines, *without_bucket_key_when_full("boundary.keyed.json", step)]
    lines = [keyed([key.arn])]
    if key.account != plan.identity.account:
        lines += [
            f'if [ "$({iam_size_of("boundary.keyed.json")})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
            f"  # No room for the key's ARN: every key of account {key.account} (its key policies decide).",
            f"  {keyed([every_key_of(key.account)])}",
            "fi",
        ]
    return lines


def _attach_lines(plan: FixPlan, policy_arn: str) -> list[str]:
    """Attaching is idempotent, so it is repeated for an existing policy: a role made later may lack it.

    The project's roles are matched by the shell, the prefix quoted as a literal: the project comes from an
    editable tag, and inside a JMESPath query a quote in it could widen the match to other roles.
    """
    arn = shlex.quote(policy_arn)
    if plan.scope is GrantScope.PROJECT:
        prefix = shlex.quote(f"{IAM_RESOURCE_PREFIX}-{plan.identity.project}-")
        return [
            comment(f"Attach it to every role of project {plan.identity.project} (one per member):"),
            f"prefix={prefix}",
            "for role in $(aws iam list-roles --query 'Roles[].RoleName' --output text); do",
            '  case "$role" in "$prefix"*)',
            f'    aws iam attach-role-policy --role-name "$role" --policy-arn {arn} ;;',
            "  esac",
            "done",
        ]
    if plan.identity.role:
        role = shlex.quote(plan.identity.role)
        return [f"aws iam attach-role-policy --role-name {role} --policy-arn {arn}"]
    return [
        comment(f"Attach {policy_arn} to the caller's role: aws iam attach-role-policy --role-name ROLE ...")
    ]


def _identity_fix(grant: _IamGrant, current: Current) -> Fix:
    plan, statements = grant.plan, grant.statements
    identity = plan.identity
    name = grant_policy_name(
        plan.scope, plan.identity.project if plan.scope is GrantScope.PROJECT else plan.identity.user
    )
    target = plan.iam_arn(f"policy/{name}")
    shared = plan.scope is GrantScope.SHARED
    current = existing(current, LayerKind.IDENTITY, ours=not shared)
    document = new_document(current, statements)
    speculative = isinstance(grant.key, BucketKey)  # the bucket may use no KMS key: never block on it
    if speculative and document is not None and _IDENTITY.size.over(document) is not None:
        statements = statements[:-1]
        document = new_document(current, statements)
    user_policy = user_policy_name(identity.user or "<User>")
    project_policy = project_policy_name(identity.project or "<Project>")
    warnings = [
        f"Never put this grant in {user_policy}: MLSpace rewrites that policy on every membership change, "
        f"so the grant would be lost ({project_policy} is rewritten too, on an MLSpace version bump)."
    ]
    if plan.scope is GrantScope.PROJECT:
        warnings.append(
            f"The policy must be attached to every role of project {identity.project}: MLSpace makes one "
            "role per member and does not attach it to the roles of members who join later."
        )
    elif plan.scope is GrantScope.USER:
        warnings.append(
            f"This covers {identity.user} in project {identity.project or '(unknown)'} only: "
            f"{identity.user}'s roles in other projects need the policy attached too."
        )
    else:
        warnings += root_warning(plan)[1:]
        warnings.append(
            f"{SHARED_NOTEBOOK_POLICY_NAME} is an assumption (CDK generates the shared notebook policy's "
            "name): find the real one with aws iam list-attached-role-policies --role-name "
            f"{identity.role or 'ROLE'}. Jobs run under MLSpace's application policy, which needs the "
            "grant too if jobs read this data."
        )
    warnings += unreadable_warning(current, name, Operation.CREATE_POLICY_VERSION.value)
    warnings += _too_large(
        LayerKind.IDENTITY,
        name,
        document,
        f": put this grant in another policy of our own ({name}-2) attached the same way.",
    )
    create = f"aws iam create-policy --policy-name {shlex.quote(name)} --policy-document file://grant.json"
    if isinstance(current, Unread) and not shared:
        # Whether the policy exists is unknown here: the command finds out, so it works from either state.
        lines = [
            "# The grant policy could not be read here: create it if it does not exist yet, else add these",
            "# statements to it (needs jq).",
            heredoc("grant.add.json", list(statements)),
            f"if aws iam get-policy --policy-arn {shlex.quote(target)} >/dev/null 2>&1; then",
            *(f"  {line}" for line in merge_lines(statements, "grant", _IDENTITY.read_command(target))),
            *(f"  {line}" for line in (_grant_without_bucket_key(plan) if speculative else [])),
            *(f"  {line}" for line in size_guard(target, "grant.json", ANOTHER_POLICY)),
            *(f"  {line}" for line in iam_version_lines(target, "grant.json", ours=True)),
            "else",
            f"  jq -n --slurpfile add grant.add.json {shlex.quote(JQ_NEW)} > grant.json",
            f"  {create}",
            "fi",
        ]
        operation = Operation.CREATE_POLICY_VERSION
    elif current is None:
        lines = [*document_lines(document, statements, "grant", _IDENTITY.read_command(target)), create]
        operation = Operation.CREATE_POLICY
    else:
        lines = document_lines(document, statements, "grant", _IDENTITY.read_command(target))
        lines += _grant_without_bucket_key(plan) if document is None and speculative else []
        lines += size_guard(target, "grant.json", ANOTHER_POLICY) if document is None else []
        lines += iam_version_lines(target, "grant.json", ours=not shared)
        operation = Operation.CREATE_POLICY_VERSION
    if not shared:
        lines += _attach_lines(plan, target)
    return Fix(
        layer="identity",
        target=target,
        run_as=RunAs.MLSPACE_ADMIN,
        account=plan.identity.account,
        applied_by=_admin(plan),
        statements=tuple(statements),
        document=document,
        command="\n".join(lines),
        warnings=tuple(warnings),
        summary=f"Grant {plan.who} {grant.allows} in {name}.",
        operation=operation,
        sid_stem=plan.stem,
    )


def _grant_without_bucket_key(plan: FixPlan) -> list[str]:
    """For a merge at run time: the grant without its statement for a bucket's unread key when the merged
    policy is over IAM's limit (the bucket may use no KMS key)."""
    drop = shlex.quote(f'.Statement |= map(select(.Sid != "{plan.stem}Kms"))')
    return [
        f"jq {drop} grant.json > grant.keyless.json",
        *without_bucket_key_when_full("grant.json", "grant.keyless.json"),
    ]


def _key_policy_fix(plan: FixPlan, key: NamedKey, current: Current) -> Fix:
    condition = {**plan.principal_condition, **key.via_s3}
    statement = allow_statement(plan.stem + "Kms", kms_actions(plan), ["*"], plan.principal, condition)
    current = existing(current, LayerKind.KMS)
    document = new_document(current, [statement])
    put = _KEY_POLICY.write_command(key.arn, "key-policy.json")
    fetch = _KEY_POLICY.read_command(key.arn)
    warnings = [
        "A key policy must allow the caller itself: an identity grant alone is not enough. The caller's "
        "identity policy and boundary must allow the key too; the boundary and identity fixes of this plan "
        "carry that statement.",
        *root_warning(plan),
    ]
    warnings += unreadable_warning(current, "key policy", Operation.PUT_KEY_POLICY.value)
    warnings += deny_warning(current, "key policy")
    warnings += _too_large(
        LayerKind.KMS, "key policy", document, ", so KMS will refuse it: fold grants into fewer statements."
    )
    lines = [comment(f"Run with the credentials of account {key.account}.")]
    lines += document_lines(document, [statement], "key-policy", fetch)
    return Fix(
        layer="kms",
        target=key.arn,
        run_as=RunAs.KEY_OWNER,
        account=key.account,
        applied_by=f"the key owner (account {key.account}), with that account's credentials",
        statements=(statement,),
        document=document,
        command="\n".join([*lines, put]),
        warnings=tuple(warnings),
        summary=f"Let {plan.who} use the KMS key through S3 ({', '.join(kms_actions(plan))}).",
        operation=Operation.PUT_KEY_POLICY,
        sid_stem=plan.stem,
    )


def _bucket_key_policy_fix(plan: FixPlan, key: BucketKey) -> Fix:
    """The key policy of the bucket's key, which only the command can name: run by the bucket owner's
    account, which may read the bucket's default encryption and, owning the key, change its policy."""
    condition = {**plan.principal_condition, **key.via_s3}
    statement = allow_statement(plan.stem + "Kms", kms_actions(plan), ["*"], plan.principal, condition)
    # The key and its region are read into these shell variables when the command runs.
    key_id, region = Shell('"$key"'), Shell('"$region"')
    stop = shlex.quote(
        "The key policy could not be read: nothing was written (a policy of only our statement "
        "would lock out the key's administrators)."
    )
    lines = [
        comment(
            f"Run with the credentials of account {key.account}, which owns {plan.ref.bucket} and its key."
        ),
        *key.discovery_lines(),
        heredoc("key-policy.add.json", [statement]),
        f"if ! {_KEY_POLICY.read_command(key_id, region=region)} > key-policy.current.json; then",
        f"  echo {stop} >&2",
        "  exit 1",
        "fi",
        f"jq --slurpfile add key-policy.add.json {shlex.quote(JQ_MERGE)} key-policy.current.json "
        "> key-policy.json",
        _KEY_POLICY.write_command(key_id, "key-policy.json", region=region),
    ]
    return Fix(
        layer="kms",
        target=f"{plan.ref.bucket}'s default KMS key",
        run_as=RunAs.KEY_OWNER,
        account=key.account,
        applied_by=f"the bucket and key owner (account {key.account}), with that account's credentials",
        statements=(statement,),
        document=None,
        command="\n".join(lines),
        warnings=(
            "The bucket's encryption could not be read here, so its key is read when the command runs; when "
            "the bucket uses no KMS key, the command changes nothing.",
            "A key policy must allow the caller itself: an identity grant alone is not enough. The statement "
            "is limited to S3's use of the key for this bucket's objects (kms:EncryptionContext:aws:s3:arn).",
            *root_warning(plan),
        ),
        summary=f"Let {plan.who} use the bucket's KMS key through S3 ({', '.join(kms_actions(plan))}).",
        operation=Operation.PUT_KEY_POLICY,
        sid_stem=plan.stem,
    )
