"""What a grant allows and whom it covers: the two choices every fix, request and admin grant is made of."""

from __future__ import annotations

from enum import StrEnum

from mlspace_s3magic.core.identity import Identity


class AccessLevel(StrEnum):
    """What the grant allows: listing only, reading (and listing), or reading and writing."""

    LIST = "list"
    READ = "read"
    READ_WRITE = "read-write"


class GrantScope(StrEnum):
    """Whom the grant covers: every role of the project, one user's role, or the shared notebook role."""

    PROJECT = "project"
    USER = "user"
    SHARED = "shared"


def default_scope(identity: Identity) -> GrantScope:
    """Project grants where MLSpace has user-scoped roles, the shared policy where it does not."""
    if identity.user_scoped and identity.project:
        return GrantScope.PROJECT
    if identity.user_scoped is False:
        return GrantScope.SHARED
    if identity.user:
        return GrantScope.USER
    return GrantScope.SHARED


READ_ACTIONS = ("s3:GetObject",)
WRITE_ACTIONS = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
LIST_ACTION = "s3:ListBucket"


def object_actions(access: AccessLevel) -> tuple[str, ...]:
    """What a grant allows on the objects: nothing for listing only, then reads, then writes."""
    if access is AccessLevel.LIST:
        return ()
    return READ_ACTIONS + (WRITE_ACTIONS if access is AccessLevel.READ_WRITE else ())
