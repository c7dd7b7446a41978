"""MLSpace's naming rules."""

from __future__ import annotations

import hashlib

from mlspace_s3magic.core.mlspace import (
    SHARED_NOTEBOOK_POLICY_NAME,
    grant_policy_name,
    grant_policy_project,
    is_grant_policy_name,
    owner_of,
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


def test_the_owner_is_the_registrys_else_our_account_for_our_data_bucket_only() -> None:
    """MLSpace creates its data bucket, mlspace-data-<account>, in its own account and no registry lists it;
    another account's data bucket name proves nothing about who owns it."""
    assert owner_of("mlspace-data-111111111111", "111111111111", None) == "111111111111"
    assert owner_of("mlspace-data-999999999999", "111111111111", None) is None
    assert owner_of("team-data", "111111111111", None) is None
    assert owner_of("team-data", "111111111111", "222222222222") == "222222222222"


def test_the_admin_plan_and_the_check_take_our_data_bucket_for_ours() -> None:
    """The endpoint's plan judged MLSpace's data bucket another account's (and blamed its missing bucket
    policy for a write the notebook may make); both now ask ``owner_of``."""
    from mlspace_s3magic.admin.plan import accounts_for
    from mlspace_s3magic.core.access import Requester

    requester = Requester(arn="arn:aws:sts::111111111111:assumed-role/r/s", account="111111111111")
    ours = object()
    accounts = accounts_for(
        requester,
        "mlspace-data-111111111111",
        None,
        aws=ours,  # type: ignore[arg-type]  # only passed through, never called
        owner_sessions=lambda arn: None,
    )
    assert (accounts.owner_account, accounts.owner, accounts.notes) == ("111111111111", ours, ())
    other = accounts_for(
        requester,
        "mlspace-data-999999999999",
        None,
        aws=ours,  # type: ignore[arg-type]
        owner_sessions=lambda arn: None,
    )
    assert (
        other.owner_account is None and other.owner is None and "treated as another account" in other.notes[0]
    )
