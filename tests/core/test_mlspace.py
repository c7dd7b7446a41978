"""MLSpace's naming rules."""

from __future__ import annotations

import hashlib

from mlspace_s3magic.core.mlspace import (
    SHARED_NOTEBOOK_POLICY_NAME,
    grant_policy_name,
    grant_policy_project,
    is_grant_policy_name,
    project_from_role_name,
    role_belongs_to,
    user_role_name,
)


def test_role_name_is_project_and_sha256_of_user_cut_to_63() -> None:
    digest = hashlib.sha256(b"alice").hexdigest()
    name = user_role_name("demo", "alice")
    assert len(name) == 63
    assert name == ("MLSpace-demo-" + digest)[:63]


def test_short_names_are_not_padded() -> None:
    assert user_role_name("p", "u") == ("MLSpace-p-" + hashlib.sha256(b"u").hexdigest())[:63]


def test_project_is_read_back_from_a_role_name() -> None:
    assert project_from_role_name(user_role_name("demo", "alice")) == "demo"
    assert project_from_role_name("mlspace-notebook-role") is None
    assert project_from_role_name("MLSpace-demo-NOTHEX") is None


def test_role_belongs_only_to_its_user() -> None:
    name = user_role_name("demo", "alice")
    assert role_belongs_to(name, "demo", "alice")
    assert not role_belongs_to(name, "demo", "bob")
    assert not role_belongs_to(name, "other", "alice")


def test_the_grant_policy_name_is_made_and_read_back_in_one_place() -> None:
    assert grant_policy_name("project", "demo") == "MLSpace-s3access-project-demo"
    assert grant_policy_name("user", "alice") == "MLSpace-s3access-user-alice"
    assert grant_policy_name("shared", None) == SHARED_NOTEBOOK_POLICY_NAME
    assert grant_policy_project("MLSpace-s3access-project-demo") == "demo"
    assert grant_policy_project("MLSpace-s3access-user-alice") is None
    assert is_grant_policy_name("MLSpace-s3access-user-alice")
    assert not is_grant_policy_name("MLSpace-project-demo")
