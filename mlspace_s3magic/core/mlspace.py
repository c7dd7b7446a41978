"""MLSpace's naming rules, as its own code applies them (awslabs/mlspace, ``iam_manager.py``).

The role and policy name prefix is MLSpace's ``IAM_RESOURCE_PREFIX`` (configurable since v1.6.9, default
``MLSpace``); every function here takes it as ``prefix`` and defaults to ``MLSpace``.
"""

from __future__ import annotations

import hashlib
import re

IAM_RESOURCE_PREFIX = "MLSpace"
BOUNDARY_POLICY_NAME = "mlspace-project-user-permission-boundary"
IAM_ROLE_NAME_MAX_LENGTH = 64
NOTEBOOK_SESSION_NAME = "SageMaker"
# With MANAGE_IAM_ROLES off every notebook runs as one shared role, which MLSpace tags with these values in
# the commercial and GovCloud partitions: they name no person and no project.
SHARED_ROLE_USER_TAG = "MLSpaceApplication"
SHARED_ROLE_PROJECT_TAG = "MLSpaceInfrastructure"
# Our own grant policies (one per project or user) start with this; never MLSpace's own policies.
GRANT_POLICY_PREFIX = f"{IAM_RESOURCE_PREFIX}-s3access"
# CDK gives the shared notebook policy a generated name; MLSpace's construct id stands in for it.
SHARED_NOTEBOOK_POLICY_NAME = "mlspace-notebook-policy"


def _user_role_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}-(?P<project>[A-Za-z0-9]+)-(?P<digest>[0-9a-f]+)$")


def user_role_name(project: str, username: str, *, prefix: str = IAM_RESOURCE_PREFIX) -> str:
    """The per-user, per-project role MLSpace creates: ``<prefix>-<project>-`` + sha256(username) hex.

    MLSpace slices the hash to ``64 - len(name prefix) - 1`` characters (``_generate_iam_role_name``), so the
    name is 63 long whenever the name prefix fits. For a name prefix of 64 or more the negative slice keeps
    most of the hash, the name passes 64, and MLSpace refuses the project (``_check_name_length``); so do we.
    """
    digest = hashlib.sha256(username.encode("utf-8")).hexdigest()
    name_prefix = f"{prefix}-{project}-"
    name = name_prefix + digest[: IAM_ROLE_NAME_MAX_LENGTH - len(name_prefix) - 1]
    if len(name) > IAM_ROLE_NAME_MAX_LENGTH:
        raise ValueError(
            f"IAM role name '{name}' ({len(name)} characters) is over the {IAM_ROLE_NAME_MAX_LENGTH} "
            "character limit for IAM role names."
        )
    return name


def project_from_role_name(role_name: str, *, prefix: str = IAM_RESOURCE_PREFIX) -> str | None:
    """The project a user-scoped role belongs to, read from its name alone (no IAM call needed)."""
    match = _user_role_pattern(prefix).match(role_name)
    return match.group("project") if match else None


def role_belongs_to(
    role_name: str, project: str, username: str, *, prefix: str = IAM_RESOURCE_PREFIX
) -> bool:
    """Whether ``role_name`` is the role MLSpace would create for this user in this project."""
    return role_name == user_role_name(project, username, prefix=prefix)


def data_bucket_name(account: str) -> str:
    """The one bucket MLSpace gives notebooks, ``mlspace-data-<account>`` in a default deployment."""
    return f"mlspace-data-{account}"


def owner_of(bucket: str, account: str, registered: str | None) -> str | None:
    """The account owning ``bucket`` as a caller of ``account`` knows it: the registry's word, else
    ``account`` itself for MLSpace's own data bucket (which MLSpace creates there, and no registry lists),
    else unknown. The check and the admin endpoint's plan both ask here, so they judge the owner alike."""
    if registered:
        return registered
    return account if bucket == data_bucket_name(account) else None


def project_policy_name(project: str, *, prefix: str = IAM_RESOURCE_PREFIX) -> str:
    return f"{prefix}-project-{project}"


def user_policy_name(username: str, *, prefix: str = IAM_RESOURCE_PREFIX) -> str:
    return f"{prefix}-user-{username}"


def is_shared_role(tags: dict[str, str]) -> bool:
    """Whether a role's ``user`` and ``project`` tags are the shared notebook role's (no person, project)."""
    return tags.get("user") == SHARED_ROLE_USER_TAG and tags.get("project") == SHARED_ROLE_PROJECT_TAG


def grant_policy_name(scope: str, grantee: str | None) -> str:
    """The policy a grant goes into: ours, ``MLSpace-s3access-project-<P>`` or ``MLSpace-s3access-user-<U>``;
    for the shared notebook role (scope ``shared``) MLSpace's shared notebook policy, the only one it has."""
    if scope == "shared":
        return SHARED_NOTEBOOK_POLICY_NAME
    return f"{GRANT_POLICY_PREFIX}-{scope}-{grantee}"


def grant_policy_project(name: str) -> str | None:
    """The project a project grant policy is for, read back from its name; None for any other policy."""
    prefix = grant_policy_name("project", "")
    return name.removeprefix(prefix) if name.startswith(prefix) else None


def is_grant_policy_name(name: str) -> bool:
    """Whether a managed policy is one of our grant policies, the only ones the admin endpoint edits."""
    return name.startswith(f"{GRANT_POLICY_PREFIX}-")
