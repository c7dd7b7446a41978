"""Who is calling: the caller's ARN, and the MLSpace user, project and boundary behind it.

``sts:GetCallerIdentity`` always works; ``iam:GetRole`` on the caller's own role adds the tags MLSpace puts
on user-scoped roles (``user``, ``project``, ``system``) and the permissions boundary. When that is denied we
still answer, and say what we could not find.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import Aws, aws_call, error_code, is_access_denied
from mlspace_s3magic.core.mlspace import is_shared_role, project_from_role_name, role_belongs_to
from mlspace_s3magic.core.policy.arns import caller_parts, iam_role_arn, require_arn
from mlspace_s3magic.core.render import Rendered, Row, html_table, text_table


@dataclass(frozen=True)
class CallerArn:
    """The parts of a caller ARN as STS returns it."""

    arn: str
    partition: str
    account: str
    kind: str  # "assumed-role", "user", "root", "federated-user" or another resource type
    name: str | None  # role name, user name or federated user name
    session: str | None

    @classmethod
    def parse(cls, arn: str) -> CallerArn:
        parts = require_arn(arn)
        kind, name, session = caller_parts(parts.resource)
        return cls(arn, parts.partition, parts.account, kind, name or None, session or None)


@dataclass(frozen=True, repr=False)
class Identity(Rendered):
    """The answer to ``whoami``: rendered as text, HTML and JSON by every shell."""

    arn: str
    account: str
    principal_type: str
    role: str | None = None
    role_arn: str | None = None
    session: str | None = None
    user: str | None = None
    project: str | None = None
    boundary: str | None = None
    user_scoped: bool | None = None
    notes: tuple[str, ...] = ()
    # Why the boundary is unknown (the role could not be read), so no one takes "no boundary" for a fact.
    boundary_unreadable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    def _rows(self) -> list[Row]:
        def shown(value: str | None) -> str:
            return value if value is not None else "(unknown)"

        scoped = {True: "yes (one role per user and project)", False: "no (a shared role)", None: "(unknown)"}
        rows: list[Row] = [("Caller", self.arn), ("Account", self.account)]
        if self.principal_type == "assumed-role":
            rows += [("Role", shown(self.role)), ("Session", shown(self.session))]
        shared = "(shared notebook role)" if self.user_scoped is False and self.role else None
        rows += [
            ("MLSpace user", shared or shown(self.user)),
            ("Project", shared or shown(self.project)),
            ("Boundary", self.boundary or _unknown_boundary(self.boundary_unreadable)),
            ("User-scoped roles", scoped[self.user_scoped]),
        ]
        return rows

    def __str__(self) -> str:
        return text_table(self._rows(), self.notes)

    def _repr_html_(self) -> str:
        return html_table("S3 access: who am I", self._rows(), self.notes)


def _unknown_boundary(reason: str | None) -> str:
    return f"(unknown: {reason})" if reason else "(none)"


def whoami(aws: Aws) -> Identity:
    """Identify the caller with one STS call and, for a role, one ``iam:GetRole`` (or ``GetUser``)."""
    sts = aws.client("sts")
    with aws_call(sts, "sts:GetCallerIdentity"):
        caller = CallerArn.parse(sts.get_caller_identity()["Arn"])
    if caller.kind == "assumed-role" and caller.name:
        return _role_identity(aws, caller)
    if caller.kind == "user" and caller.name:
        return _user_identity(aws, caller)
    return Identity(
        arn=caller.arn,
        account=caller.account,
        principal_type=caller.kind,
        notes=(
            f"The caller is a {caller.kind} principal, not an MLSpace notebook role: "
            "it has no MLSpace user or project.",
        ),
    )


def _read(aws: Aws, action: str, call: str, **params: str) -> tuple[dict[str, Any] | None, str | None]:
    """Run one IAM read; on a refusal return why instead of raising, since whoami must still answer."""
    iam = aws.client("iam")
    try:
        with aws_call(iam, action):
            return getattr(iam, call)(**params), None
    except ClientError as error:
        if is_access_denied(error):
            return None, f"{action} was denied"
        return None, f"{action} failed with {error_code(error)}"


def boundary_of(entity: Mapping[str, Any]) -> str | None:
    """The permissions boundary of a role or user as ``iam:GetRole`` and ``iam:GetUser`` describe it."""
    boundary = entity.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn")
    return None if boundary is None else str(boundary)


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    """Tag keys as MLSpace writes them; IAM keeps keys unique regardless of case, so match loosely."""
    return {str(tag["Key"]).lower(): str(tag["Value"]) for tag in entity.get("Tags", [])}


def _role_identity(aws: Aws, caller: CallerArn) -> Identity:
    role_name = str(caller.name)
    notes: list[str] = []
    response, problem = _read(aws, "iam:GetRole", "get_role", RoleName=role_name)
    role = response["Role"] if response else None
    if role is None:
        tags: dict[str, str] = {}
        boundary = None
        role_arn = iam_role_arn(caller.partition, caller.account, role_name)
        notes.append(
            f"Could not read the role {role_name} ({problem}), so the MLSpace user tag and the permissions "
            "boundary are unknown; the role ARN assumes no path."
        )
    else:
        tags = _tags(role)
        boundary = boundary_of(role)
        role_arn = str(role["Arn"])
        if boundary is None:
            notes.append(f"The role {role_name} has no permissions boundary.")

    unreadable = None if role is not None else problem
    if is_shared_role(tags):
        notes.append(
            f"{role_name} is MLSpace's shared notebook role (MLSpace runs without per-user roles): every "
            "notebook of every project uses it, and its tags name no user or project."
        )
        return _identity(caller, role_name, role_arn, boundary, None, None, False, notes, unreadable)
    user = tags.get("user")
    project = tags.get("project")
    if project is None and (named := project_from_role_name(role_name)):
        project = named
        notes.append(f"The project {named!r} was read from the role's name, not from its tags.")

    if user and project:
        user_scoped: bool | None = True
        if not role_belongs_to(role_name, project, user):
            notes.append(
                f"The role's tags say user {user!r} in project {project!r}, but MLSpace would name that "
                "role differently: the tags may have been edited."
            )
    elif role is not None:
        user_scoped = project_from_role_name(role_name) is not None
        if not user_scoped:
            notes.append(
                f"The role {role_name} has no `user` tag: notebooks share one role, so grants go in the "
                "shared notebook policy rather than per user or project."
            )
    else:
        user_scoped = True if project else None
    return _identity(caller, role_name, role_arn, boundary, user, project, user_scoped, notes, unreadable)


def _identity(
    caller: CallerArn,
    role_name: str,
    role_arn: str,
    boundary: str | None,
    user: str | None,
    project: str | None,
    user_scoped: bool | None,
    notes: list[str],
    boundary_unreadable: str | None,
) -> Identity:
    return Identity(
        arn=caller.arn,
        account=caller.account,
        principal_type=caller.kind,
        role=role_name,
        role_arn=role_arn,
        session=caller.session,
        user=user,
        project=project,
        boundary=boundary,
        user_scoped=user_scoped,
        notes=tuple(notes),
        boundary_unreadable=boundary_unreadable,
    )


def _user_identity(aws: Aws, caller: CallerArn) -> Identity:
    user_name = str(caller.name)
    notes = [
        f"The caller is the IAM user {user_name}, not an MLSpace notebook role: it has no MLSpace project."
    ]
    response, problem = _read(aws, "iam:GetUser", "get_user", UserName=user_name)
    boundary = None
    if response is None:
        notes.append(f"Could not read the user {user_name} ({problem}), so its boundary is unknown.")
    else:
        boundary = boundary_of(response["User"])
    return Identity(
        arn=caller.arn,
        account=caller.account,
        principal_type=caller.kind,
        boundary=boundary,
        notes=tuple(notes),
        boundary_unreadable=problem if response is None else None,
    )
