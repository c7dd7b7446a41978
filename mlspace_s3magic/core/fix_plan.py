"""What every fix of one plan shares: who is granted what on which bucket, the Sid stem, and the statements
and warnings the fix builders of :mod:`core.remedy` and :mod:`core.fix_advice` all write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from mlspace_s3magic.core.ceiling import Granted
from mlspace_s3magic.core.fix_keys import AnyKey
from mlspace_s3magic.core.grant import LIST_ACTION, AccessLevel, GrantScope, object_actions
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind
from mlspace_s3magic.core.mlspace import IAM_RESOURCE_PREFIX
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.policy.arns import require_arn
from mlspace_s3magic.core.policy_edit import (
    ALPHANUMERIC,
    SID_STEM_MAX_LENGTH,
    Document,
    Statement,
    merge_statements,
    policy_literal,
    sid_stem,
    statements_of,
)


class Unread(Enum):
    """A current document that could not be read; distinct from ``None``, which means there is none."""

    UNREAD = "unreadable"


UNREAD: Final = Unread.UNREAD
Current = Document | Unread | None


@dataclass(frozen=True)
class FixPlan:
    """What every fix of one plan shares: who, where, how much, for whom, and the Sid stem."""

    identity: Identity
    ref: BucketRef
    access: AccessLevel
    scope: GrantScope
    sid: str | None
    owner: str | None = None
    granted: Sequence[Granted] | None = None

    def __post_init__(self) -> None:
        if self.scope is GrantScope.PROJECT and not self.identity.project:
            raise ValueError("A project grant needs the caller's MLSpace project, which is unknown.")
        if self.scope is GrantScope.USER and not self.identity.user:
            raise ValueError("A user grant needs the caller's MLSpace user, which is unknown.")
        # A given stem must already be valid: silently rewriting it would hide our statements from a revoke.
        if self.sid is not None and (
            not ALPHANUMERIC.fullmatch(self.sid) or len(self.sid) > SID_STEM_MAX_LENGTH
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
            GrantScope.PROJECT: f"project {self.identity.project}",
            GrantScope.USER: f"user {self.identity.user}",
        }
        return sid_stem(self.ref, self.access, grantee.get(self.scope, ""))

    @property
    def partition(self) -> str:
        return require_arn(self.identity.arn).partition

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
        if self.scope is GrantScope.PROJECT:
            pattern = self.iam_arn(f"role/{IAM_RESOURCE_PREFIX}-{self.identity.project}-*")
            return {"ArnLike": {"aws:PrincipalArn": [pattern]}}
        return {"ArnLike": {"aws:PrincipalArn": [self.identity.role_arn or self.identity.arn]}}

    @property
    def who(self) -> str:
        if self.scope is GrantScope.PROJECT:
            return f"the roles of project {self.identity.project}"
        if self.scope is GrantScope.USER:
            return f"{self.identity.user}'s role {self.identity.role or '(unknown)'}"
        return f"MLSpace's shared notebook role {self.identity.role or '(unknown)'}"

    @property
    def verb(self) -> str:
        return {AccessLevel.LIST: "list", AccessLevel.READ: "read"}.get(self.access, "read and write")


def allow_statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    principal: dict[str, list[str]] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    """An Allow with our Sid; a resource policy's names the principal; a condition only when there is one."""
    statement: Statement = {"Sid": sid, "Effect": "Allow"}
    if principal is not None:
        statement["Principal"] = principal
    statement["Action"] = list(actions)
    statement["Resource"] = list(resources)
    if condition:
        statement["Condition"] = condition
    return statement


def s3_statements(plan: FixPlan, *, resource_policy: bool = False) -> list[Statement]:
    """Objects under the prefix, and listing limited to it; resource policies add the principal."""
    ref = plan.ref
    actions = object_actions(plan.access)
    principal = plan.principal if resource_policy else None
    narrowing = plan.principal_condition if resource_policy else {}
    listing = dict(narrowing)
    if ref.prefix:
        listing["StringLike"] = {"s3:prefix": [f"{policy_literal(ref.prefix)}*"]}
    objects_arn = ref.object_arn(f"{policy_literal(ref.prefix)}*")
    objects = (
        [allow_statement(plan.stem + "Objects", actions, [objects_arn], principal, narrowing)]
        if actions
        else []
    )
    return [
        *objects,
        allow_statement(plan.stem + "List", [LIST_ACTION], [ref.bucket_arn], principal, listing),
    ]


def kms_actions(plan: FixPlan) -> list[str]:
    return ["kms:Decrypt"] + (["kms:GenerateDataKey"] if plan.access is AccessLevel.READ_WRITE else [])


def key_grant(plan: FixPlan, key: AnyKey) -> Statement:
    """The identity-side half of a KMS grant: the key policy alone is not enough."""
    return allow_statement(plan.stem + "Kms", kms_actions(plan), [key.resource], condition=key.via_s3)


def existing(current: Current, layer: LayerKind, *, ours: bool = True) -> Current:
    """For a document that always exists (a boundary, a key policy, a policy of MLSpace's, which we never
    create), ``None`` can only mean it was not read, and a fresh document would replace everything in it.
    """
    always = LAYER_SPECS[layer].always_exists or not ours
    return UNREAD if current is None and always else current


def new_document(current: Current, statements: Sequence[Statement]) -> Document | None:
    return merge_statements(current, statements) if not isinstance(current, Unread) else None


def unreadable_warning(current: Current, what: str, call: str) -> list[str]:
    if not isinstance(current, Unread):
        return []
    return [
        f"The current {what} could not be read, so no complete document is given: merge these statements "
        f"into it and keep every statement already there, since {call} replaces the whole document."
    ]


def deny_names(current: Current) -> list[str]:
    """The Sid (else the index) of each Deny statement of a known document."""
    return [
        str(statement.get("Sid") or f"Statement[{index}]")
        for index, statement in enumerate(statements_of(current))
        if isinstance(statement, dict) and statement.get("Effect") == "Deny"
    ]


def deny_warning(current: Current, what: str) -> list[str]:
    """An Allow never overrides a Deny, so name the Denies that may be the real block."""
    denies = deny_names(current)
    if not denies:
        return []
    return [
        f"The current {what} has Deny statements ({', '.join(denies)}); an Allow cannot override a Deny, "
        "so check that none of them matches the caller."
    ]


def root_warning(plan: FixPlan) -> list[str]:
    """Why the principal is the account root with a condition; then, in shared mode, how far the grant
    reaches (the identity fix says that part too)."""
    why = (
        f"The principal is account {plan.identity.account}'s root narrowed by an aws:PrincipalArn condition, "
        "not the role ARN: a policy naming a role ARN breaks when the role is deleted and recreated (AWS "
        "replaces the ARN with the old role's unique id, AROA..., which the new role does not match)."
    )
    if plan.scope is not GrantScope.SHARED:
        return [why]
    return [
        why,
        f"MLSpace runs every notebook as the shared role {plan.identity.role or '(unknown)'}: this grant "
        "reaches every notebook of every project, not only this user's.",
    ]
