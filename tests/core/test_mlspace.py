"""MLSpace's naming rules."""

from __future__ import annotations

import hashlib

from mlspace_s3magic.core.mlspace import project_from_role_name, role_belongs_to, user_role_name


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
