"""MLSpace's naming rules, as its own code applies them (awslabs/mlspace, ``iam_manager.py``)."""

from __future__ import annotations

import hashlib
import re

IAM_RESOURCE_PREFIX = "MLSpace"
BOUNDARY_POLICY_NAME = "mlspace-project-user-permission-boundary"
IAM_ROLE_NAME_MAX_LENGTH = 64
NOTEBOOK_SESSION_NAME = "SageMaker"
_USER_ROLE_PATTERN = re.compile(r"^MLSpace-(?P<project>[A-Za-z0-9]+)-(?P<digest>[0-9a-f]+)$")


def user_role_name(project: str, username: str) -> str:
    """The per-user, per-project role MLSpace creates: ``MLSpace-<project>-`` + sha256(username) hex.

    MLSpace slices the hash to ``64 - len(prefix) - 1`` characters (``_generate_iam_role_name``), so the name
    is 63 long whenever the prefix fits. For a prefix of 64 or more the negative slice keeps most of the
    hash, the name passes 64, and MLSpace refuses the project (``_check_name_length``); so do we.
    """
    digest = hashlib.sha256(username.encode("utf-8")).hexdigest()
    prefix = f"{IAM_RESOURCE_PREFIX}-{project}-"
    name = prefix + digest[: IAM_ROLE_NAME_MAX_LENGTH - len(prefix) - 1]
    if len(name) > IAM_ROLE_NAME_MAX_LENGTH:
        raise ValueError(
            f"IAM role name '{name}' ({len(name)} characters) is over the {IAM_ROLE_NAME_MAX_LENGTH} "
            "character limit for IAM role names."
        )
    return name


def project_from_role_name(role_name: str) -> str | None:
    """The project a user-scoped role belongs to, read from its name alone (no IAM call needed)."""
    match = _USER_ROLE_PATTERN.match(role_name)
    return match.group("project") if match else None


def role_belongs_to(role_name: str, project: str, username: str) -> bool:
    """Whether ``role_name`` is the role MLSpace would create for this user in this project."""
    return role_name == user_role_name(project, username)


def data_bucket_name(account: str) -> str:
    """The one bucket MLSpace gives notebooks, ``mlspace-data-<account>`` in a default deployment."""
    return f"mlspace-data-{account}"


def project_policy_name(project: str) -> str:
    return f"{IAM_RESOURCE_PREFIX}-project-{project}"


def user_policy_name(username: str) -> str:
    return f"{IAM_RESOURCE_PREFIX}-user-{username}"
