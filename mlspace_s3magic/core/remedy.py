"""The change each blocking layer needs: documents and targets first, ready-to-paste AWS CLI commands second.

Why data first: ``%s3access check`` shows these fixes to the notebook user, and the admin endpoint applies the
very same documents, so both must come from one place. The module is pure (documents in, documents out): it
never calls AWS. Every statement it adds carries a Sid made of one stem plus a suffix from
:data:`SID_SUFFIXES`, so a revoke can find and remove exactly the statements a grant added.

Which layer blocks is decided elsewhere (the check); the layer names understood here are
:data:`FIXABLE_LAYERS` and :data:`ADVISORY_LAYERS`, and any other name gets a generic advisory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from html import escape
from typing import Any, Final

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
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.limits import (
    BUCKET_POLICY_MAX_BYTES,
    KEY_POLICY_MAX_BYTES,
    MANAGED_POLICY_MAX_CHARS,
    iam_size,
    json_bytes,
)
from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    IAM_RESOURCE_PREFIX,
    project_policy_name,
    user_policy_name,
)
from mlspace_s3magic.core.names import KMS_KEY_ARN, S3_ENCRYPTION_CONTEXT, BucketRef, s3_via_service
from mlspace_s3magic.core.render import Rendered, Row, html_table, terminal_safe, text_table

Document = dict[str, Any]
Statement = dict[str, Any]

POLICY_VERSION = "2012-10-17"
# CDK gives the shared notebook policy a generated name; MLSpace's construct id stands in for it.
SHARED_NOTEBOOK_POLICY_NAME = "mlspace-notebook-policy"
GRANT_POLICY_PREFIX = f"{IAM_RESOURCE_PREFIX}-s3access"
SID_MAX_LENGTH = 100
SID_SUFFIXES = ("Objects", "List", "Kms")
SID_STEM_MAX_LENGTH = SID_MAX_LENGTH - max(len(suffix) for suffix in SID_SUFFIXES)
READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
LIST_ACTION = "s3:ListBucket"
FIXABLE_LAYERS = ("bucket-policy", "boundary", "identity", "kms")
ADVISORY_LAYERS = ("scp", "rcp", "endpoint", "session", "requester-pays", "unknown")

_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")
# Lists the Deny statements of a live bucket policy, for a same-account block the notebook could not read.
_JQ_DENIES = '[.Statement] | flatten | map(select(.Effect == "Deny"))'
# Merges our statements into a live document with jq: drop statements carrying one of our Sids, append ours.
_JQ_MERGE = (
    "($add[0] | map(.Sid)) as $ours"
    " | .Statement = ([.Statement] | flatten | map(select((.Sid | IN($ours[])) | not))) + $add[0]"
)
# A new document of our statements, and the document standing in for one that does not exist.
_JQ_NEW = '{"Version": "2012-10-17", "Statement": $add[0]}'
_JQ_EMPTY = '{"Version": "2012-10-17", "Statement": []}'
_JQ_MERGE_INTO = f"(. // {_JQ_EMPTY}) | {_JQ_MERGE}"
# Adds a bucket's ARNs to MLSpace's S3 statements of the boundary (see core/ceiling.py), or, without them,
# appends $own; run on a boundary that could not be read when the fix was planned.
_JQ_CEILING = (
    'def host($a): .Effect == "Allow" and (has("Condition") | not) and .Action == $a'
    ' and (.Resource | type) == "array";'
    " .Statement |= ([.] | flatten)"
    " | if any(.Statement[]; host($readhost)) and ($write == [] or any(.Statement[]; host($writehost)))"
    " then .Statement |= map(if host($readhost) then .Resource = (.Resource - $read) + $read"
    " elif host($writehost) and $write != [] then .Resource = (.Resource - $write) + $write else . end)"
    " else .Statement += [$own] end"
)
# Adds keys to MLSpace's KMS statement of the boundary, else to the statement of ours that lists keys, else
# appends that statement (see core/ceiling.py).
_JQ_KEY_CEILING = (
    'def host($a): .Effect == "Allow" and (has("Condition") | not) and .Action == $a'
    ' and (.Resource | type) == "array";'
    ' def ours: (has("Sid") | not) and .Effect == "Allow" and .Action == $ownactions;'
    " .Statement |= ([.] | flatten)"
    " | if any(.Statement[]; host($keyhost))"
    " then .Statement |= map(if host($keyhost) then .Resource = (.Resource - $keys) + $keys else . end)"
    " elif any(.Statement[]; ours)"
    " then .Statement |= map(if ours then .Resource = (([.Resource] | flatten) - $keys) + $keys else . end)"
    ' else .Statement += [{"Effect": "Allow", "Action": $ownactions, "Resource": $keys}] end'
)


class InvalidKeyArn(InvalidInput, ValueError):
    """A KMS key given for a fix is not one key's ARN, which would reach a policy and a shell command."""


class AccessLevel(StrEnum):
    """What the grant allows: listing only, reading (and listing), or reading and writing."""

    LIST = "list"
    READ = "read"
    READ_WRITE = "read-write"


class Scope(StrEnum):
    """Whom the grant covers: every role of the project, one user's role, or the shared notebook role."""

    PROJECT = "project"
    USER = "user"
    SHARED = "shared"


class Operation(StrEnum):
    """The API call that applies a fix, so the admin endpoint need not parse the command."""

    PUT_BUCKET_POLICY = "put-bucket-policy"
    PUT_ACCESS_POINT_POLICY = "put-access-point-policy"
    CREATE_POLICY = "create-policy"
    CREATE_POLICY_VERSION = "create-policy-version"
    PUT_KEY_POLICY = "put-key-policy"
    ADVICE = "advice"


class Unreadable(Enum):
    """A current document that could not be read; distinct from ``None``, which means there is none."""

    UNREADABLE = "unreadable"


UNREADABLE: Final = Unreadable.UNREADABLE
Current = Document | Unreadable | None


@dataclass(frozen=True, repr=False)
class Fix(Rendered):
    """One change to one layer: the statements to add, the merged document when known, and the command.

    ``statements=()`` marks an advisory: a layer we cannot change (an SCP, a VPC endpoint policy), where the
    command is a shell comment saying who must act.
    """

    layer: str
    target: str
    applied_by: str
    statements: tuple[Statement, ...]
    document: Document | None
    command: str
    warnings: tuple[str, ...] = ()
    summary: str = ""
    operation: Operation = Operation.ADVICE
    sid_stem: str | None = None
    # Whose credentials run the command: "bucket-owner", "mlspace-admin", "key-owner", or "nobody" (advice),
    # and the 12-digit account they belong to (None: unknown).
    run_as: str = "nobody"
    account: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fix as JSON values; copies, so a caller editing them cannot change this fix."""
        return {
            "layer": self.layer,
            "target": self.target,
            "applied_by": self.applied_by,
            "run_as": self.run_as,
            "account": self.account,
            "summary": self.summary,
            "change": {
                "operation": self.operation.value,
                "sid_stem": self.sid_stem,
                "add_statements": copy.deepcopy(list(self.statements)),
                "document": copy.deepcopy(self.document),
            },
            "command": self.command,
            "warnings": list(self.warnings),
        }

    def _rows(self) -> list[Row]:
        return [
            ("Layer", self.layer),
            ("Target", self.target),
            ("Applied by", self.applied_by),
            ("Change", self.summary),
        ]

    def __str__(self) -> str:
        # The command is printed unindented: an indented heredoc terminator would break a paste.
        return f"{text_table(self._rows(), self.warnings)}\nCommand:\n{self.command}"

    def _repr_html_(self) -> str:
        parts = [html_table(f"S3 access fix: {self.layer}", self._rows(), self.warnings)]
        parts.append(f"<div><strong>Command</strong><pre><code>{escape(self.command)}</code></pre></div>")
        if self.document is not None:
            parts.append(_details("New policy document", self.document))
        elif self.statements:
            parts.append(_details("Statements to add", list(self.statements)))
        return "<div>" + "".join(parts) + "</div>"


def _details(title: str, value: Any) -> str:
    """An expandable block, so a long policy does not push the command out of sight."""
    body = escape(json.dumps(value, indent=2))
    return f"<details><summary>{escape(title)}</summary><pre><code>{body}</code></pre></details>"


def render_fixes(fixes: Sequence[Fix]) -> str:
    """Every fix as text, numbered in the order they should be applied."""
    if not fixes:
        return "Nothing to change: no layer blocks this access."
    return "\n\n".join(f"Fix {number} of {len(fixes)}\n{fix}" for number, fix in enumerate(fixes, 1))


def fixes_html(fixes: Sequence[Fix]) -> str:
    """Every fix as HTML, in the same order as :func:`render_fixes`."""
    if not fixes:
        return "<div>Nothing to change: no layer blocks this access.</div>"
    return "<div>" + "".join(fix._repr_html_() for fix in fixes) + "</div>"


def sid_stem(ref: BucketRef, access: AccessLevel, grantee: str = "") -> str:
    """The default stem: ``S3Access`` + level + grantee + bucket and prefix, in CamelCase since IAM Sids allow
    only ``[A-Za-z0-9]``; cut, with a digest of the full name so long names stay distinct, to 100 characters.

    The grantee (``project demo``, ``user alice``) keeps two projects' statements in one bucket policy apart:
    with the same Sid, the second grant would replace the first.
    """
    level = {AccessLevel.LIST: "List", AccessLevel.READ: "Read"}.get(access, "ReadWrite")
    named = f"{grantee} {ref.bucket}/{ref.prefix}"
    stem = "S3Access" + level + "".join(word[0].upper() + word[1:] for word in _ALPHANUMERIC.findall(named))
    if len(stem) <= SID_STEM_MAX_LENGTH:
        return stem
    digest = hashlib.sha256(named.encode("utf-8")).hexdigest()[:8]
    return stem[: SID_STEM_MAX_LENGTH - len(digest)] + digest


def default_scope(identity: Identity) -> Scope:
    """Project grants where MLSpace has user-scoped roles, the shared policy where it does not."""
    if identity.user_scoped and identity.project:
        return Scope.PROJECT
    if identity.user_scoped is False:
        return Scope.SHARED
    if identity.user:
        return Scope.USER
    return Scope.SHARED


def merge_statements(current: Document | None, statements: Sequence[Statement]) -> Document:
    """The current document with our statements added: one with the same Sid is replaced in place, every
    other statement and top-level key (``Version``, ``Id``) is kept as it was; ``None`` gives a new document.
    """
    if current is None:
        return {"Version": POLICY_VERSION, "Statement": copy.deepcopy(list(statements))}
    document = copy.deepcopy(current)
    existing = document.get("Statement", [])
    ours = {statement["Sid"]: statement for statement in statements}
    merged: list[Any] = []
    placed: set[str] = set()
    for statement in existing if isinstance(existing, list) else [existing]:
        sid = statement.get("Sid") if isinstance(statement, dict) else None
        if not isinstance(sid, str) or sid not in ours:
            merged.append(statement)
        elif sid not in placed:
            merged.append(copy.deepcopy(ours[sid]))
            placed.add(sid)
    merged.extend(copy.deepcopy(statement) for statement in statements if statement["Sid"] not in placed)
    document["Statement"] = merged
    return document


def is_ours(statement: Any, sid_stem: str) -> bool:
    """Whether a fix with this stem added the statement: its Sid is the stem plus one of :data:`SID_SUFFIXES`.

    The suffix must match exactly, so stem ``S3AccessReq1`` never claims ``S3AccessReq12Objects``.
    """
    sid = statement.get("Sid") if isinstance(statement, dict) else None
    return isinstance(sid, str) and sid.startswith(sid_stem) and sid[len(sid_stem) :] in SID_SUFFIXES


def remove_statements(document: Document, sid_stem: str, *, as_object: bool = False) -> Document:
    """The document without this stem's statements; every other statement and key is kept as it was.

    :func:`merge_statements` turns a single-object ``Statement`` into a list; ``as_object`` says the document
    had that form before, so when exactly one statement remains it is given back as the object again.
    """
    result = copy.deepcopy(document)
    existing = result.get("Statement")
    listed = existing if isinstance(existing, list) else [existing]
    kept = [statement for statement in listed if not is_ours(statement, sid_stem)]
    if "Statement" in result and len(kept) != len(listed):
        result["Statement"] = kept[0] if as_object and len(kept) == 1 else kept
    return result


def size_problem(layer: str, document: Document) -> str | None:
    """Why AWS would refuse ``document`` as too large for ``layer``, or None: checked before any write."""
    if layer in ("boundary", "identity"):
        size, limit, unit, rule = iam_size(document), MANAGED_POLICY_MAX_CHARS, "characters", "IAM's"
    elif layer == "bucket-policy":
        size, limit, unit, rule = json_bytes(document), BUCKET_POLICY_MAX_BYTES, "bytes", "S3's"
    elif layer == "kms":
        size, limit, unit, rule = json_bytes(document), KEY_POLICY_MAX_BYTES, "bytes", "KMS's"
    else:
        return None
    if size <= limit:
        return None
    return f"The new {layer} document would be {size:,} {unit}, over {rule} limit of {limit:,}."


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
    scope: Scope | None = None,
    sid: str | None = None,
    granted: Sequence[Granted] | None = None,
    key_read_at_run_time: bool = True,
) -> list[Fix]:
    """The changes that lift every blocking layer, in the order to apply them: bucket policy, boundary,
    identity grant, KMS key policy, then advisories for the layers only others can change.

    In the caller's own account a bucket policy blocks only through an explicit Deny, and an Allow naming the
    account root grants nothing there that the identity grant does not: the bucket-policy fix is then an
    advisory naming the Deny statements (or the command that lists them), never an Allow.

    ``current_*`` is the live document, ``None`` when there is none, or :data:`UNREADABLE`. The boundary, a
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
    chosen = Scope(scope) if scope is not None else default_scope(identity)
    plan = _Plan(identity, ref, access, chosen, sid, bucket_owner_account, granted)
    layers = list(dict.fromkeys(str(layer) for layer in blocked_by))
    key: _AnyKey | None = None
    if "kms" in layers and kms_key_arn:
        key = _Key.parse(kms_key_arn)
    elif "kms" in layers and plan.owner and key_read_at_run_time:
        key = _BucketKey(ref, plan.partition, plan.owner)

    fixes: list[Fix] = []
    if "bucket-policy" in layers and plan.same_account:
        fixes.append(_same_account_bucket_policy_advice(plan, current_bucket_policy))
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
    if isinstance(key, _Key):
        fixes.append(_key_policy_fix(plan, key, current_key_policy))
    elif isinstance(key, _BucketKey):
        fixes.append(_bucket_key_policy_fix(plan, key))
    elif "kms" in layers:
        fixes.append(_unknown_key_advice(plan))
    advisories = [layer for layer in ADVISORY_LAYERS if layer in layers]
    advisories += [layer for layer in layers if layer not in FIXABLE_LAYERS and layer not in ADVISORY_LAYERS]
    fixes.extend(_advice(plan, layer, bucket_owner_account) for layer in advisories)
    return fixes


@dataclass(frozen=True)
class _Plan:
    """What every fix of one plan shares: who, where, how much, for whom, and the Sid stem."""

    identity: Identity
    ref: BucketRef
    access: AccessLevel
    scope: Scope
    sid: str | None
    owner: str | None = None
    granted: Sequence[Granted] | None = None

    def __post_init__(self) -> None:
        if self.scope is Scope.PROJECT and not self.identity.project:
            raise ValueError("A project grant needs the caller's MLSpace project, which is unknown.")
        if self.scope is Scope.USER and not self.identity.user:
            raise ValueError("A user grant needs the caller's MLSpace user, which is unknown.")
        # A given stem must already be valid: silently rewriting it would hide our statements from a revoke.
        if self.sid is not None and (
            not _ALPHANUMERIC.fullmatch(self.sid) or len(self.sid) > SID_STEM_MAX_LENGTH
        ):
            raise ValueError(
                f"Sid stem {self.sid!r} must be 1 to {SID_STEM_MAX_LENGTH} letters and digits (IAM allows "
                "only [A-Za-z0-9] in a Sid, and a suffix is added)."
            )

    @property
    def stem(self) -> str:
        if self.sid is not None:
            return self.sid
        grantee = {
            Scope.PROJECT: f"project {self.identity.project}",
            Scope.USER: f"user {self.identity.user}",
        }
        return sid_stem(self.ref, self.access, grantee.get(self.scope, ""))

    @property
    def partition(self) -> str:
        return self.identity.arn.split(":")[1]

    def iam_arn(self, resource: str) -> str:
        return f"arn:{self.partition}:iam::{self.identity.account}:{resource}"

    @property
    def same_account(self) -> bool:
        """Whether the bucket (or access point) is known to be in the caller's own account."""
        return (self.ref.access_point_account or self.owner) == self.identity.account

    @property
    def principal(self) -> dict[str, list[str]]:
        return {"AWS": [self.iam_arn("root")]}

    @property
    def principal_condition(self) -> dict[str, Any]:
        """Narrows the account-root principal of a resource policy to the roles this grant is for: the
        project's roles, the user's role, or MLSpace's shared notebook role; never the whole account."""
        if self.scope is Scope.PROJECT:
            pattern = self.iam_arn(f"role/{IAM_RESOURCE_PREFIX}-{self.identity.project}-*")
            return {"ArnLike": {"aws:PrincipalArn": [pattern]}}
        return {"ArnLike": {"aws:PrincipalArn": [self.identity.role_arn or self.identity.arn]}}

    @property
    def who(self) -> str:
        if self.scope is Scope.PROJECT:
            return f"the roles of project {self.identity.project}"
        if self.scope is Scope.USER:
            return f"{self.identity.user}'s role {self.identity.role or '(unknown)'}"
        return f"MLSpace's shared notebook role {self.identity.role or '(unknown)'}"

    @property
    def verb(self) -> str:
        return {AccessLevel.LIST: "list", AccessLevel.READ: "read"}.get(self.access, "read and write")


@dataclass(frozen=True)
class _Key:
    """A KMS key ARN's parts: the key policy belongs to its account, and S3 uses it in its region."""

    arn: str
    partition: str
    region: str
    account: str

    @classmethod
    def parse(cls, arn: str) -> _Key:
        """Strictly one key's ARN: the ARN reaches policy documents and shell commands, where a wildcard
        would grant every key and any other character could change the command."""
        match = KMS_KEY_ARN.fullmatch(arn)
        if match is None:
            raise InvalidKeyArn(
                f"{terminal_safe(repr(arn))} is not a KMS key ARN ({_key_arn_problem(arn)}). Accepted: "
                "arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID with a 12-digit account and a key id in UUID "
                "form (1234abcd-12ab-34cd-56ef-1234567890ab) or mrk- and 32 hex digits; no alias, no "
                "wildcard, no whitespace. Find the key's ARN with aws kms describe-key --key-id ALIAS."
            )
        return cls(arn, match["partition"], match["region"], match["account"])

    @property
    def via_s3(self) -> dict[str, Any]:
        """Limits key use to requests S3 makes on the caller's behalf."""
        return {"StringEquals": {"kms:ViaService": [s3_via_service(self.arn)]}}

    @property
    def resource(self) -> str:
        return self.arn

    @property
    def granted(self) -> GrantedKey:
        return GrantedKey(self.account, self.arn)

    @property
    def name(self) -> str:
        return f"the KMS key {self.arn}"


@dataclass(frozen=True)
class _BucketKey:
    """The bucket's default KMS key when it could not be read here (the encryption configuration denied,
    or a key named by id or alias): the grants name every key of the bucket owner's account, but only for
    S3's use on this bucket's objects (``kms:EncryptionContext:aws:s3:arn``), and the commands that must
    name the key read it at run time from the bucket's default encryption."""

    ref: BucketRef
    partition: str
    account: str

    @property
    def via_s3(self) -> dict[str, Any]:
        """S3 in any region (the key's is unknown), for this bucket's objects under the prefix only (the
        bucket's ARN is the context when the bucket uses S3 Bucket Keys)."""
        return {
            "StringLike": {
                "kms:ViaService": [s3_via_service(self.resource)],
                S3_ENCRYPTION_CONTEXT: [self.ref.bucket_arn, self.ref.objects_arn],
            }
        }

    @property
    def resource(self) -> str:
        return f"arn:{self.partition}:kms:*:{self.account}:key/*"

    @property
    def granted(self) -> GrantedKey:
        return GrantedKey(self.account)

    @property
    def name(self) -> str:
        return f"the KMS key of {self.ref.bucket}'s default encryption, whichever key of {self.account}"

    def discovery_lines(self, *, without: str = "exit 0") -> list[str]:
        """Shell lines that set ``$key`` and ``$region`` to the bucket's default KMS key and its region,
        and run ``without`` when the bucket's default encryption uses no KMS key (``$key`` is then empty);
        the key must be one of the owner account's, which the grants name."""
        bucket = shlex.quote(self.ref.bucket)
        query = shlex.quote(
            "ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.KMSMasterKeyID"
        )
        none = shlex.quote(f"{self.ref.bucket}'s default encryption uses no KMS key: no key to change.")
        other = shlex.quote(
            f"The bucket's key is not a key of account {self.account}, which the grants name: run the check "
            "with the admin endpoint, which reads the key."
        )
        return [
            "# The bucket's KMS key could not be read here: read it from the bucket's default encryption.",
            f"if ! key=$(aws s3api get-bucket-encryption --bucket {bucket} --query {query} --output text "
            "2>encryption.err); then",
            "  # A bucket without a default encryption configuration (SSE-S3 only) uses no KMS key.",
            "  grep -q ServerSideEncryptionConfigurationNotFoundError encryption.err || "
            "{ cat encryption.err >&2; exit 1; }",
            '  key=""',
            "fi",
            'if [ -z "$key" ] || [ "$key" = None ]; then',
            f"  echo {none} >&2",
            '  key=""',
            f"  {without}",
            "else",
            f"  region=$(aws s3api get-bucket-location --bucket {bucket} "
            "--query LocationConstraint --output text)",
            '  case "$region" in None|"") region=us-east-1 ;; EU) region=eu-west-1 ;; esac',
            '  key=$(aws kms describe-key --key-id "$key" --region "$region" '
            "--query KeyMetadata.Arn --output text)",
            '  case "$key" in',
            f"    arn:{self.partition}:kms:*:{self.account}:key/*) ;;",
            f"    *) echo {other} >&2; exit 1 ;;",
            "  esac",
            '  echo "the bucket\'s KMS key: $key"',
            "fi",
        ]


_AnyKey = _Key | _BucketKey


def _key_arn_problem(arn: str) -> str:
    """What is wrong with a text that is not a key ARN, for the error message."""
    parts = arn.split(":", 5)
    if any(character in arn for character in "*?"):
        return "it holds a wildcard"
    if any(character.isspace() for character in arn):
        return "it holds whitespace"
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "kms":
        return "it is not an ARN of the kms service"
    if parts[5].startswith("alias/"):
        return "it names an alias, not a key"
    if not re.fullmatch(r"[0-9]{12}", parts[4], re.ASCII):
        return "its account is not 12 digits"
    return "its partition, region or key id is malformed"


def _statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    principal: dict[str, list[str]] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow"}
    if principal is not None:
        statement["Principal"] = principal
    statement["Action"] = list(actions)
    statement["Resource"] = list(resources)
    if condition:
        statement["Condition"] = condition
    return statement


def _s3_statements(plan: _Plan, *, resource_policy: bool = False) -> list[Statement]:
    """Objects under the prefix, and listing limited to it; resource policies add the principal."""
    ref = plan.ref
    actions = _object_actions(plan)
    principal = plan.principal if resource_policy else None
    narrowing = plan.principal_condition if resource_policy else {}
    listing = dict(narrowing)
    if ref.prefix:
        listing["StringLike"] = {"s3:prefix": [f"{policy_literal(ref.prefix)}*"]}
    objects_arn = ref.object_arn(f"{policy_literal(ref.prefix)}*")
    objects = (
        [_statement(plan.stem + "Objects", actions, [objects_arn], principal, narrowing)] if actions else []
    )
    return [*objects, _statement(plan.stem + "List", [LIST_ACTION], [ref.bucket_arn], principal, listing)]


def policy_literal(text: str) -> str:
    """Text as a policy matches it literally: ``$`` written ``${$}``, so a prefix such as
    ``${aws:username}/`` never becomes a live policy variable (IAM's escape; the Resource element and
    StringLike values expand variables)."""
    return text.replace("$", "${$}")


def _object_actions(plan: _Plan) -> tuple[str, ...]:
    """What a grant allows on the objects: nothing for listing only, then reads, then writes."""
    if plan.access is AccessLevel.LIST:
        return ()
    return READ_ACTIONS + (WRITE_ACTIONS if plan.access is AccessLevel.READ_WRITE else ())


def _kms_actions(plan: _Plan) -> list[str]:
    return ["kms:Decrypt"] + (["kms:GenerateDataKey"] if plan.access is AccessLevel.READ_WRITE else [])


def _key_grant(plan: _Plan, key: _AnyKey) -> Statement:
    """The identity-side half of a KMS grant: the key policy alone is not enough."""
    return _statement(plan.stem + "Kms", _kms_actions(plan), [key.resource], condition=key.via_s3)


def _existing(current: Current) -> Document | Unreadable:
    """For documents that always exist (a boundary, a key policy): ``None`` can only mean it was not read,
    and a fresh document would replace everything in it.
    """
    return UNREADABLE if current is None else current


def _new_document(current: Current, statements: Sequence[Statement]) -> Document | None:
    return merge_statements(current, statements) if not isinstance(current, Unreadable) else None


def _unreadable_warning(current: Current, what: str, call: str) -> list[str]:
    if not isinstance(current, Unreadable):
        return []
    return [
        f"The current {what} could not be read, so no complete document is given: merge these statements "
        f"into it and keep every statement already there, since {call} replaces the whole document."
    ]


def _deny_names(current: Current) -> list[str]:
    """The Sid (else the index) of each Deny statement of a known document."""
    return [
        str(statement.get("Sid") or f"Statement[{index}]")
        for index, statement in enumerate(_listed(current))
        if isinstance(statement, dict) and statement.get("Effect") == "Deny"
    ]


def _deny_warning(current: Current, what: str) -> list[str]:
    """An Allow never overrides a Deny, so name the Denies that may be the real block."""
    denies = _deny_names(current)
    if not denies:
        return []
    return [
        f"The current {what} has Deny statements ({', '.join(denies)}); an Allow cannot override a Deny, "
        "so check that none of them matches the caller."
    ]


def _comment(text: str) -> str:
    """A shell comment of one line: a newline or other control character in a value (a tag, a prefix) is
    shown as its escape, so it cannot end the comment and start a command."""
    return f"# {terminal_safe(text)}"


def _heredoc(path: str, value: Any) -> str:
    return f"cat > {path} <<'EOF'\n{json.dumps(value, indent=2)}\nEOF"


def _document_lines(
    document: Document | None, statements: Sequence[Statement], name: str, fetch: str
) -> list[str]:
    """Lines leaving the new document in ``name.json``: written whole when known, else merged (with jq) into
    the live document, because writing only our statements would delete everything else in it.
    """
    if document is not None:
        return [_heredoc(f"{name}.json", document)]
    return [
        "# The current document could not be read here: fetch it, then append our statements (needs jq).",
        _heredoc(f"{name}.add.json", list(statements)),
        *_merge_lines(statements, name, fetch),
    ]


def _merge_lines(statements: Sequence[Statement], name: str, fetch: str) -> list[str]:
    """Fetch the live document and append ``{name}.add.json``'s statements to it, into ``{name}.json``;
    when there is no live document (a bucket without a policy), the statements make a new one."""
    return [
        f"{fetch} > {name}.current.json 2>/dev/null || echo null > {name}.current.json",
        f"jq --slurpfile add {name}.add.json {shlex.quote(_JQ_MERGE_INTO)} {name}.current.json > {name}.json",
    ]


def _root_warning(plan: _Plan) -> list[str]:
    """Why the principal is the account root with a condition; then, in shared mode, how far the grant
    reaches (the identity fix says that part too)."""
    why = (
        f"The principal is account {plan.identity.account}'s root narrowed by an aws:PrincipalArn condition, "
        "not the role ARN: a policy naming a role ARN breaks when the role is deleted and recreated (AWS "
        "replaces the ARN with the old role's unique id, AROA..., which the new role does not match)."
    )
    if plan.scope is not Scope.SHARED:
        return [why]
    return [
        why,
        f"MLSpace runs every notebook as the shared role {plan.identity.role or '(unknown)'}: this grant "
        "reaches every notebook of every project, not only this user's.",
    ]


@dataclass(frozen=True)
class _ResourcePolicy:
    """The bucket's policy or its access point's: its name, and the CLI calls that read and write it."""

    what: str
    target: str
    operation: Operation
    fetch: str
    put: str
    header: tuple[str, ...]

    @classmethod
    def of(cls, ref: BucketRef, owner: str | None) -> _ResourcePolicy:
        credentials = _comment(f"Run with the credentials of account {owner or '(the bucket owner)'}.")
        if ref.access_point_arn:
            region = ref.access_point_arn.split(":")[3]
            where = " ".join(
                f"--{name} {shlex.quote(value)}"
                for name, value in (("account-id", owner or ""), ("name", ref.bucket), ("region", region))
            )
            return cls(
                "access point policy",
                ref.access_point_arn,
                Operation.PUT_ACCESS_POINT_POLICY,
                f"aws s3control get-access-point-policy {where} --query Policy --output text",
                f"aws s3control put-access-point-policy {where} --policy file://policy.json",
                (credentials, _comment(f"Access point {ref.access_point_arn}")),
            )
        bucket = shlex.quote(ref.bucket)
        return cls(
            "bucket policy",
            ref.bucket,
            Operation.PUT_BUCKET_POLICY,
            f"aws s3api get-bucket-policy --bucket {bucket} --query Policy --output text",
            f"aws s3api put-bucket-policy --bucket {bucket} --policy file://policy.json",
            (credentials,),
        )


def _same_account_bucket_policy_advice(plan: _Plan, current: Current) -> Fix:
    """In the caller's own account an identity Allow is enough and an Allow for the account root grants
    nothing more, so a blocking bucket policy can only deny: name the Deny, never add an Allow."""
    owner = plan.identity.account
    policy = _ResourcePolicy.of(plan.ref, owner)
    rule = (
        f"{plan.ref.bucket} is in the caller's own account {owner}, where an identity-policy Allow is enough "
        f"and the {policy.what} blocks only through an explicit Deny: it need not change unless it denies"
    )
    denies = _deny_names(current)
    if isinstance(current, Unreadable):
        found = (
            "it could not be read here; list its Deny statements (needs jq) and narrow any that matches "
            f"{plan.who}"
        )
        lines = [
            *policy.header,
            _comment(f"{rule}: {found}."),
            f"{policy.fetch} | jq {shlex.quote(_JQ_DENIES)}",
        ]
    else:
        found = (
            f"narrow its Deny statements ({', '.join(denies)}) so that none matches {plan.who}"
            if denies
            else "it has no Deny statement, so nothing in it blocks"
        )
        lines = [_comment(f"{rule}: {found}.")]
    return Fix(
        layer="bucket-policy",
        target=policy.target,
        applied_by=f"an administrator of account {owner} who can edit the {policy.what}, only if it denies",
        statements=(),
        document=None,
        command="\n".join(lines),
        summary=f"No Allow to add: {rule}; {found}.",
    )


def _bucket_policy_fix(plan: _Plan, owner: str | None, current: Current) -> Fix:
    ref = plan.ref
    statements = _s3_statements(plan, resource_policy=True)
    document = _new_document(current, statements)
    owner = ref.access_point_account or owner
    policy = _ResourcePolicy.of(ref, owner)
    what = policy.what
    warnings = _root_warning(plan)
    warnings += _unreadable_warning(current, what, policy.operation.value)
    warnings += _deny_warning(current, what)
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
    if document is not None and (size := json_bytes(document)) > BUCKET_POLICY_MAX_BYTES:
        warnings.append(
            f"The new {what} is {size:,} bytes, over S3's 20 KB limit ({BUCKET_POLICY_MAX_BYTES:,}), so S3 "
            "will refuse it: fold grants into fewer statements (one statement can list several resources)."
        )
    return Fix(
        layer="bucket-policy",
        target=policy.target,
        run_as="bucket-owner",
        account=owner,
        applied_by=f"the bucket owner (account {owner or 'unknown'}), with that account's credentials",
        statements=tuple(statements),
        document=document,
        command="\n".join(
            [*policy.header, *_document_lines(document, statements, "policy", policy.fetch), policy.put]
        ),
        warnings=tuple(warnings),
        summary=f"Let {plan.who} {plan.verb} {ref} through the {what} of {ref.bucket}.",
        operation=policy.operation,
        sid_stem=plan.stem,
    )


def _iam_version_lines(policy_arn: str, file: str, *, ours: bool) -> list[str]:
    """A new default version. IAM keeps at most 5 versions: in a policy of ours the oldest non-default one
    goes first; in one we did not create (MLSpace's boundary) none is ever deleted, the command stops and
    says what to do instead."""
    arn = shlex.quote(policy_arn)
    count = f"aws iam list-policy-versions --policy-arn {arn} --query 'length(Versions)' --output text"
    oldest = (
        f"aws iam list-policy-versions --policy-arn {arn} "
        "--query 'sort_by(Versions[?!IsDefaultVersion], &CreateDate)[0].VersionId' --output text"
    )
    if ours:
        at_five = [f'  aws iam delete-policy-version --policy-arn {arn} --version-id "$({oldest})"']
    else:
        stop = shlex.quote(
            f"{policy_arn} already has the 5 versions IAM keeps, and it is not ours to prune: delete a "
            "version you no longer need (aws iam delete-policy-version), then run this again."
        )
        at_five = [f"  echo {stop} >&2", "  exit 1"]
    return [
        "# IAM keeps at most 5 versions of a policy.",
        f'if [ "$({count})" -ge 5 ]; then',
        *at_five,
        "fi",
        f"aws iam create-policy-version --policy-arn {arn} --policy-document file://{file} --set-as-default",
    ]


_ANOTHER_POLICY = "put the grant in another policy attached the same way"


def _size_guard(policy_arn: str, file: str, options: str) -> list[str]:
    """Stops a command that merged into a live policy at run time before it writes a version IAM would
    refuse as over its quota; counted as IAM counts (no whitespace, non-ASCII escaped, as json.dumps)."""
    stop = shlex.quote(
        f"The new version of {policy_arn} would be over IAM's {MANAGED_POLICY_MAX_CHARS:,} characters for a "
        f"managed policy, so IAM would refuse it; nothing was written. Options: {options}."
    )
    return [
        f'if [ "$({_iam_size_of(file)})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
        f"  echo {stop} >&2",
        "  exit 1",
        "fi",
    ]


def _iam_size_of(file: str) -> str:
    """The shell pipeline that counts a policy file's characters as IAM does (whitespace not counted)."""
    return f"jq -ac . {file} | tr -d '[:space:]' | wc -c"


def _iam_fetch(policy_arn: str) -> str:
    arn = shlex.quote(policy_arn)
    default = f'"$(aws iam get-policy --policy-arn {arn} --query Policy.DefaultVersionId --output text)"'
    return (
        f"aws iam get-policy-version --policy-arn {arn} --version-id {default} "
        "--query PolicyVersion.Document --output json"
    )


def _admin(plan: _Plan) -> str:
    return f"an MLSpace admin, with IAM rights in account {plan.identity.account}"


@dataclass(frozen=True)
class _IamGrant:
    """What a boundary or identity fix adds: the S3 statements when its layer blocks, the key grant when a
    KMS key blocks (MLSpace's boundary and policies allow only MLSpace's own key).
    """

    plan: _Plan
    key: _AnyKey | None
    s3: bool

    @property
    def statements(self) -> list[Statement]:
        key_grant = [_key_grant(self.plan, self.key)] if self.key else []
        return (_s3_statements(self.plan) if self.s3 else []) + key_grant

    @property
    def allows(self) -> str:
        parts = [f"{self.plan.verb} on {self.plan.ref}"] if self.s3 else []
        parts += [f"use of {self.key.name} through S3"] if self.key else []
        return " and ".join(parts)


def _boundary_fix(grant: _IamGrant, current: Current) -> Fix:
    plan = grant.plan
    target = plan.identity.boundary or plan.iam_arn(f"policy/{BOUNDARY_POLICY_NAME}")
    current = _existing(current)
    warnings = [
        "Every MLSpace user role carries this boundary: raising it grants nothing by itself, but lets any "
        "role whose identity policies grant this access use it."
    ]
    if plan.identity.boundary is None:
        warnings.append(
            f"The caller's boundary could not be read; this assumes MLSpace's recommended name "
            f"{BOUNDARY_POLICY_NAME}."
        )
    warnings += _unreadable_warning(current, "boundary", Operation.CREATE_POLICY_VERSION.value)
    bucket = GrantedBucket(plan.ref.bucket, plan.owner, write=plan.access is AccessLevel.READ_WRITE)
    this: list[Granted] = [bucket] if grant.s3 else []
    this += [grant.key.granted] if grant.key else []
    document: Document | None = None
    if isinstance(current, Unreadable) or _key_read_at_run_time(plan, grant.key):
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
        if problem and isinstance(grant.key, _BucketKey):  # the bucket may use no KMS key at all
            document, problem = _with_these(plan, current, this[:-1])
            warnings.append(_NO_ROOM_FOR_BUCKET_KEY)
        warnings += [problem] if problem else []
        before = _listed(current)
        statements = [statement for statement in _listed(document) if statement not in before]
        lines = [_heredoc("boundary.json", document)]
    if document is not None and (size := iam_size(document)) > MANAGED_POLICY_MAX_CHARS:
        warnings.append(
            f"The new boundary is {size:,} characters, over IAM's {MANAGED_POLICY_MAX_CHARS:,} for a managed "
            "policy, so IAM will refuse it."
        )
    return Fix(
        layer="boundary",
        target=target,
        run_as="mlspace-admin",
        account=plan.identity.account,
        applied_by=_admin(plan),
        statements=tuple(statements),
        document=document,
        command="\n".join(
            _settle_boundary_lines(plan, target)
            + lines
            + _iam_version_lines(target, "boundary.json", ours=False)
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


def _settle_boundary_lines(plan: _Plan, target: str) -> list[str]:
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


def _with_these(plan: _Plan, document: Document, these: list[Granted]) -> tuple[Document, str | None]:
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
    target: str, plan: _Plan, this: GrantedBucket | None, key: _AnyKey | None
) -> list[str]:
    """Fetch the live boundary, add the bucket's ARNs to MLSpace's S3 statements and the key's to its KMS
    statement (core/ceiling.py), with jq, into ``boundary.json``."""
    lines = [
        "# The current boundary could not be read here: fetch it, then add this grant to it (needs jq).",
        f"{_iam_fetch(target)} > boundary.current.json",
    ]
    step = "boundary.current.json"
    if this is not None:
        read, objects = bucket_arns(str(this.bucket))
        arguments = _jq_arguments(
            ("readhost", list(READ_HOST_ACTIONS)),
            ("writehost", list(WRITE_HOST_ACTIONS)),
            ("read", [read, objects]),
            ("write", [objects] if this.write else []),
            ("own", listing_statement([str(this.bucket)])),
        )
        lines.append(f"jq {arguments} {shlex.quote(_JQ_CEILING)} {step} > boundary.ceiling.json")
        step = "boundary.ceiling.json"
    if key is not None:
        lines += _key_ceiling_lines(plan, key, step)
        step = "boundary.keyed.json"
    lines.append(f"mv {step} boundary.json")
    lines += _size_guard(
        target,
        "boundary.json",
        "revoke a grant no longer needed, or give MLSpace a boundary of your own with room (MLSpace's "
        "PERMISSIONS_BOUNDARY_POLICY_NAME setting)",
    )
    return lines


def _key_read_at_run_time(plan: _Plan, key: _AnyKey | None) -> bool:
    """Whether the boundary must name a key only the command can read: MLSpace's own account is never
    opened key-wide (see core/ceiling.py), so an unread key of that account is read by the admin."""
    return isinstance(key, _BucketKey) and key.account == plan.identity.account


def _key_ceiling_lines(plan: _Plan, key: _AnyKey, step: str) -> list[str]:
    """The key's ARN into MLSpace's KMS statement of the boundary (else a statement of ours); with no room
    for the ARN, or no ARN known, every key of the key's account, as core/ceiling.py does (never MLSpace's
    own account, whose key the command then reads from the bucket)."""

    def keyed(resources: list[str] | None) -> str:
        """``None``: the key the discovery lines put in ``$key``."""
        given = (
            f'--argjson keys "$(jq -cn --arg key "$key" {shlex.quote("[$key]")})"'
            if resources is None
            else _jq_arguments(("keys", resources))
        )
        arguments = _jq_arguments(
            ("keyhost", list(KEY_HOST_ACTIONS)), ("ownactions", list(CEILING_KEY_ACTIONS))
        )
        return f"jq {arguments} {given} {shlex.quote(_JQ_KEY_CEILING)} {step} > boundary.keyed.json"

    if isinstance(key, _BucketKey):
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
        return [*lines, *_without_bucket_key_when_full("boundary.keyed.json", step)]
    lines = [keyed([key.arn])]
    if key.account != plan.identity.account:
        lines += [
            f'if [ "$({_iam_size_of("boundary.keyed.json")})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
            f"  # No room for the key's ARN: every key of account {key.account} (its key policies decide).",
            f"  {keyed([every_key_of(key.account)])}",
            "fi",
        ]
    return lines


_NO_ROOM_FOR_BUCKET_KEY = (
    "There is no room for the bucket's KMS key, which could not be read here (the bucket may use none): it "
    "is left out, and the check says so again once the rest is granted if the bucket uses one."
)


def _without_bucket_key_when_full(keyed: str, without: str) -> list[str]:
    """Shell lines that fall back to ``without`` (the document before the key of a bucket whose encryption
    could not be read was added) when ``keyed`` is over IAM's limit: the bucket may use no KMS key, and the
    rest of the grant must not fail for it."""
    note = shlex.quote(_NO_ROOM_FOR_BUCKET_KEY)
    return [
        f'if [ "$({_iam_size_of(keyed)})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
        f"  echo {note} >&2",
        f"  cp {without} {keyed}",
        "fi",
    ]


def _jq_arguments(*values: tuple[str, Any]) -> str:
    return " ".join(f"--argjson {name} {shlex.quote(json.dumps(value))}" for name, value in values)


def _listed(document: Document | Unreadable | None) -> list[Any]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return statements if isinstance(statements, list) else [statements]


def _grant_policy_name(plan: _Plan) -> str:
    if plan.scope is Scope.PROJECT:
        return f"{GRANT_POLICY_PREFIX}-project-{plan.identity.project}"
    if plan.scope is Scope.USER:
        return f"{GRANT_POLICY_PREFIX}-user-{plan.identity.user}"
    return SHARED_NOTEBOOK_POLICY_NAME


def _attach_lines(plan: _Plan, policy_arn: str) -> list[str]:
    """Attaching is idempotent, so it is repeated for an existing policy: a role made later may lack it.

    The project's roles are matched by the shell, the prefix quoted as a literal: the project comes from an
    editable tag, and inside a JMESPath query a quote in it could widen the match to other roles.
    """
    arn = shlex.quote(policy_arn)
    if plan.scope is Scope.PROJECT:
        prefix = shlex.quote(f"{IAM_RESOURCE_PREFIX}-{plan.identity.project}-")
        return [
            _comment(f"Attach it to every role of project {plan.identity.project} (one per member):"),
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
        _comment(f"Attach {policy_arn} to the caller's role: aws iam attach-role-policy --role-name ROLE ...")
    ]


def _identity_fix(grant: _IamGrant, current: Current) -> Fix:
    plan, statements = grant.plan, grant.statements
    identity = plan.identity
    name = _grant_policy_name(plan)
    target = plan.iam_arn(f"policy/{name}")
    shared = plan.scope is Scope.SHARED
    current = _existing(current) if shared else current
    document = _new_document(current, statements)
    speculative = isinstance(grant.key, _BucketKey)  # the bucket may use no KMS key: never block on it
    if speculative and document is not None and iam_size(document) > MANAGED_POLICY_MAX_CHARS:
        statements = statements[:-1]
        document = _new_document(current, statements)
    user_policy = user_policy_name(identity.user or "<User>")
    project_policy = project_policy_name(identity.project or "<Project>")
    warnings = [
        f"Never put this grant in {user_policy}: MLSpace rewrites that policy on every membership change, "
        f"so the grant would be lost ({project_policy} is rewritten too, on an MLSpace version bump)."
    ]
    if plan.scope is Scope.PROJECT:
        warnings.append(
            f"The policy must be attached to every role of project {identity.project}: MLSpace makes one "
            "role per member and does not attach it to the roles of members who join later."
        )
    elif plan.scope is Scope.USER:
        warnings.append(
            f"This covers {identity.user} in project {identity.project or '(unknown)'} only: "
            f"{identity.user}'s roles in other projects need the policy attached too."
        )
    else:
        warnings += _root_warning(plan)[1:]
        warnings.append(
            f"{SHARED_NOTEBOOK_POLICY_NAME} is an assumption (CDK generates the shared notebook policy's "
            "name): find the real one with aws iam list-attached-role-policies --role-name "
            f"{identity.role or 'ROLE'}. Jobs run under MLSpace's application policy, which needs the "
            "grant too if jobs read this data."
        )
    warnings += _unreadable_warning(current, name, Operation.CREATE_POLICY_VERSION.value)
    if document is not None and (size := iam_size(document)) > MANAGED_POLICY_MAX_CHARS:
        warnings.append(
            f"The new {name} is {size:,} characters, over IAM's {MANAGED_POLICY_MAX_CHARS:,} for a managed "
            f"policy: put this grant in another policy of our own ({name}-2) attached the same way."
        )
    create = f"aws iam create-policy --policy-name {shlex.quote(name)} --policy-document file://grant.json"
    if isinstance(current, Unreadable) and not shared:
        # Whether the policy exists is unknown here: the command finds out, so it works from either state.
        lines = [
            "# The grant policy could not be read here: create it if it does not exist yet, else add these",
            "# statements to it (needs jq).",
            _heredoc("grant.add.json", list(statements)),
            f"if aws iam get-policy --policy-arn {shlex.quote(target)} >/dev/null 2>&1; then",
            *(f"  {line}" for line in _merge_lines(statements, "grant", _iam_fetch(target))),
            *(f"  {line}" for line in (_grant_without_bucket_key(plan) if speculative else [])),
            *(f"  {line}" for line in _size_guard(target, "grant.json", _ANOTHER_POLICY)),
            *(f"  {line}" for line in _iam_version_lines(target, "grant.json", ours=True)),
            "else",
            f"  jq -n --slurpfile add grant.add.json {shlex.quote(_JQ_NEW)} > grant.json",
            f"  {create}",
            "fi",
        ]
        operation = Operation.CREATE_POLICY_VERSION
    elif current is None:
        lines = [*_document_lines(document, statements, "grant", _iam_fetch(target)), create]
        operation = Operation.CREATE_POLICY
    else:
        lines = _document_lines(document, statements, "grant", _iam_fetch(target))
        lines += _grant_without_bucket_key(plan) if document is None and speculative else []
        lines += _size_guard(target, "grant.json", _ANOTHER_POLICY) if document is None else []
        lines += _iam_version_lines(target, "grant.json", ours=not shared)
        operation = Operation.CREATE_POLICY_VERSION
    if not shared:
        lines += _attach_lines(plan, target)
    return Fix(
        layer="identity",
        target=target,
        run_as="mlspace-admin",
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


def _grant_without_bucket_key(plan: _Plan) -> list[str]:
    """For a merge at run time: the grant without its statement for a bucket's unread key when the merged
    policy is over IAM's limit (the bucket may use no KMS key)."""
    drop = shlex.quote(f'.Statement |= map(select(.Sid != "{plan.stem}Kms"))')
    return [
        f"jq {drop} grant.json > grant.keyless.json",
        *_without_bucket_key_when_full("grant.json", "grant.keyless.json"),
    ]


def _key_policy_fix(plan: _Plan, key: _Key, current: Current) -> Fix:
    condition = {**plan.principal_condition, **key.via_s3}
    statement = _statement(plan.stem + "Kms", _kms_actions(plan), ["*"], plan.principal, condition)
    current = _existing(current)
    document = _new_document(current, [statement])
    where = f"--key-id {shlex.quote(key.arn)} --policy-name default --region {shlex.quote(key.region)}"
    put = f"aws kms put-key-policy {where} --policy file://key-policy.json"
    fetch = f"aws kms get-key-policy {where} --query Policy --output text"
    warnings = [
        "A key policy must allow the caller itself: an identity grant alone is not enough. The caller's "
        "identity policy and boundary must allow the key too; the boundary and identity fixes of this plan "
        "carry that statement.",
        *_root_warning(plan),
    ]
    warnings += _unreadable_warning(current, "key policy", Operation.PUT_KEY_POLICY.value)
    warnings += _deny_warning(current, "key policy")
    if document is not None and (size := json_bytes(document)) > KEY_POLICY_MAX_BYTES:
        warnings.append(
            f"The new key policy is {size:,} bytes, over KMS's 32 KB limit ({KEY_POLICY_MAX_BYTES:,}), so "
            "KMS will refuse it: fold grants into fewer statements."
        )
    lines = [_comment(f"Run with the credentials of account {key.account}.")]
    lines += _document_lines(document, [statement], "key-policy", fetch)
    return Fix(
        layer="kms",
        target=key.arn,
        run_as="key-owner",
        account=key.account,
        applied_by=f"the key owner (account {key.account}), with that account's credentials",
        statements=(statement,),
        document=document,
        command="\n".join([*lines, put]),
        warnings=tuple(warnings),
        summary=f"Let {plan.who} use the KMS key through S3 ({', '.join(_kms_actions(plan))}).",
        operation=Operation.PUT_KEY_POLICY,
        sid_stem=plan.stem,
    )


def _bucket_key_policy_fix(plan: _Plan, key: _BucketKey) -> Fix:
    """The key policy of the bucket's key, which only the command can name: run by the bucket owner's
    account, which may read the bucket's default encryption and, owning the key, change its policy."""
    condition = {**plan.principal_condition, **key.via_s3}
    statement = _statement(plan.stem + "Kms", _kms_actions(plan), ["*"], plan.principal, condition)
    where = '--key-id "$key" --policy-name default --region "$region"'
    stop = shlex.quote(
        "The key policy could not be read: nothing was written (a policy of only our statement "
        "would lock out the key's administrators)."
    )
    lines = [
        _comment(
            f"Run with the credentials of account {key.account}, which owns {plan.ref.bucket} and its key."
        ),
        *key.discovery_lines(),
        _heredoc("key-policy.add.json", [statement]),
        f"if ! aws kms get-key-policy {where} --query Policy --output text > key-policy.current.json; then",
        f"  echo {stop} >&2",
        "  exit 1",
        "fi",
        f"jq --slurpfile add key-policy.add.json {shlex.quote(_JQ_MERGE)} key-policy.current.json "
        "> key-policy.json",
        f"aws kms put-key-policy {where} --policy file://key-policy.json",
    ]
    return Fix(
        layer="kms",
        target=f"{plan.ref.bucket}'s default KMS key",
        run_as="key-owner",
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
            *_root_warning(plan),
        ),
        summary=f"Let {plan.who} use the bucket's KMS key through S3 ({', '.join(_kms_actions(plan))}).",
        operation=Operation.PUT_KEY_POLICY,
        sid_stem=plan.stem,
    )


def _unknown_key_advice(plan: _Plan) -> Fix:
    """A KMS key may block, but which one could not be read here: how to name it. A plan needs the key's ARN
    for the key policy and for the identity and boundary grants, which name the key."""
    ref = plan.ref
    target = str(ref)
    bucket = shlex.quote(ref.bucket)
    owner = plan.owner or "(the bucket owner)"
    default = "ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault.KMSMasterKeyID"
    return Fix(
        layer="kms",
        target=target,
        applied_by=f"the bucket owner (account {owner}) or an MLSpace admin with the admin endpoint, to name "
        "the key; then the key's owner",
        statements=(),
        document=None,
        command="\n".join(
            [
                _comment(
                    f"{target}: the objects may be encrypted with a KMS key that could not be read here."
                ),
                _comment(f"The bucket owner (account {owner}) names the bucket's default key with"),
                _comment(
                    f"  aws s3api get-bucket-encryption --bucket {bucket} --query {shlex.quote(default)}"
                ),
                _comment("and anyone who may read an object names its key with"),
                _comment(f"  aws s3api head-object --bucket {bucket} --key KEY --query SSEKMSKeyId"),
                _comment("With the admin endpoint configured, the check reads the key and plans its change."),
            ]
        ),
        summary="Name the KMS key that encrypts the objects, so its key policy can be changed.",
    )


def _advice(plan: _Plan, layer: str, owner: str | None) -> Fix:
    """A layer only others can change: who must act, and what they must allow."""
    account = plan.identity.account
    actions = (*_object_actions(plan), LIST_ACTION)
    wanted = f"{', '.join(actions)} on {plan.ref.bucket_arn} and {plan.ref.objects_arn}"
    advice: dict[str, tuple[str, str, str]] = {
        "scp": (
            f"service control policies over account {account}",
            "the organization's administrators (management account or delegated administrator)",
            f"must allow {wanted}; list them with aws organizations list-policies-for-target "
            f"--target-id {account} --filter SERVICE_CONTROL_POLICY",
        ),
        "rcp": (
            f"resource control policies over account {owner or '(the bucket owner)'}",
            "the administrators of the bucket owner's organization",
            f"must allow principals of account {account} to use {wanted}",
        ),
        "endpoint": (
            "the S3 VPC endpoint policy of the notebook's VPC",
            "the network administrators of the MLSpace VPC",
            f"must allow {wanted} (endpoint policies often allow only the organization's own buckets); "
            "they change it with aws ec2 modify-vpc-endpoint --vpc-endpoint-id VPCE_ID "
            "--policy-document file://endpoint-policy.json",
        ),
        "session": (
            f"the session policy of {plan.identity.arn}",
            "the notebook user, by starting a new session",
            "limits this session below its role: restart the notebook (or assume the role again without a "
            "session policy)",
        ),
        "requester-pays": (
            str(plan.ref),
            "the notebook user, in every request",
            "is in a Requester Pays bucket: send RequestPayer='requester' in boto3 (--request-payer "
            "requester in the CLI), and account for the request and transfer charges",
        ),
        "unknown": (
            str(plan.ref),
            "an MLSpace admin, with the admin endpoint (it reads every layer)",
            "is blocked by a layer the notebook cannot read: ask an admin to diagnose it",
        ),
    }
    target, applied_by, text = advice.get(
        layer,
        (str(plan.ref), "an administrator who can read that layer", f"is blocked by the {layer} layer"),
    )
    return Fix(
        layer=layer,
        target=target,
        applied_by=applied_by,
        statements=(),
        document=None,
        command=_comment(f"{target}: {text}."),
        summary=f"No change we can write: {target} {text}.",
    )
