"""Callers parsed from ARNs, and Principal/NotPrincipal matching as AWS documents it."""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.policy import PolicyValidationError, Principal, PrincipalType
from mlspace_s3magic.core.policy.arns import caller_parts
from mlspace_s3magic.core.policy.principal_element import Grant, grant_for, parse_principal_element

from .helpers import MLSPACE, OTHER_SESSION, PARTNER, ROLE, ROLE_NAME, ROOT, SESSION, USER


@pytest.mark.parametrize(
    ("arn", "kind", "name", "session"),
    [
        (SESSION, PrincipalType.ASSUMED_ROLE, ROLE_NAME, "SageMaker"),
        (USER, PrincipalType.USER, "alice", None),
        (f"arn:aws:iam::{MLSPACE}:user/division/bob", PrincipalType.USER, "bob", None),
        (f"arn:aws:sts::{MLSPACE}:federated-user/carol", PrincipalType.FEDERATED_USER, "carol", None),
        (ROOT, PrincipalType.ACCOUNT, None, None),
    ],
)
def test_caller_from_arn(arn: str, kind: PrincipalType, name: str | None, session: str | None) -> None:
    caller = Principal.from_arn(arn)
    assert (caller.type, caller.account, caller.name, caller.session) == (kind, MLSPACE, name, session)
    assert str(caller) == arn


@pytest.mark.parametrize(
    ("resource", "parts"),
    [
        (f"assumed-role/{ROLE_NAME}/SageMaker", ("assumed-role", ROLE_NAME, "SageMaker")),
        ("user/division/bob", ("user", "bob", "")),
        (f"role/path/{ROLE_NAME}", ("role", ROLE_NAME, "")),
        ("root", ("root", "", "")),
        ("assumed-role/", ("assumed-role", "", "")),
    ],
)
def test_caller_parts_drop_paths_and_keep_the_session(resource: str, parts: tuple[str, str, str]) -> None:
    assert caller_parts(resource) == parts


@pytest.mark.parametrize("text", ["anonymous", "Anonymous", " anonymous "])
def test_anonymous_caller(text: str) -> None:
    caller = Principal.from_arn(text)
    assert caller.type is PrincipalType.ANONYMOUS and caller.account is None
    assert str(caller) == "anonymous"


def test_a_role_arn_stands_for_a_session_whose_name_is_unknown() -> None:
    caller = Principal.from_arn(ROLE)
    assert (caller.type, caller.name, caller.session, caller.account) == (
        PrincipalType.ASSUMED_ROLE,
        ROLE_NAME,
        None,
        MLSPACE,
    )
    assert caller.role_arn == ROLE
    assert caller.context_defaults()["aws:PrincipalArn"] == ROLE


@pytest.mark.parametrize(
    "text",
    ["", "alice", "111111111111", "arn:aws:s3:::bucket", "arn:aws:iam::12:user/x", f"{SESSION[:-9]}*"],
)
def test_other_text_is_not_a_caller(text: str) -> None:
    with pytest.raises(PolicyValidationError, match="not a caller ARN"):
        Principal.from_arn(text)


def test_session_context_defaults_name_the_role() -> None:
    caller = Principal.from_arn(SESSION)
    assert caller.role_arn == ROLE
    assert caller.context_defaults() == {
        "aws:PrincipalType": "AssumedRole",
        "aws:PrincipalArn": ROLE,
        "aws:PrincipalAccount": MLSPACE,
    }


def test_user_context_defaults_include_the_user_name() -> None:
    defaults = Principal.from_arn(USER).context_defaults()
    assert defaults["aws:username"] == "alice"
    assert defaults["aws:PrincipalArn"] == USER


def test_anonymous_context_defaults() -> None:
    assert Principal.anonymous().context_defaults() == {"aws:PrincipalType": "Anonymous"}


def grant(
    raw: Any, caller: str, *, negated: bool = False, deny: bool = False, boundary: bool = False
) -> Grant | None:
    element = parse_principal_element(raw, negated=negated, path="Principal")
    return grant_for(element, Principal.from_arn(caller), deny=deny, has_boundary=boundary)


@pytest.mark.parametrize(
    ("raw", "caller", "expected"),
    [
        ("*", SESSION, Grant.DIRECT),
        ("*", "anonymous", Grant.DIRECT),
        ({"AWS": "*"}, "anonymous", Grant.DIRECT),
        ({"AWS": MLSPACE}, SESSION, Grant.ACCOUNT),
        ({"AWS": ROOT}, SESSION, Grant.ACCOUNT),
        ({"AWS": ROOT}, USER, Grant.ACCOUNT),
        ({"AWS": MLSPACE}, "anonymous", None),
        ({"AWS": PARTNER}, SESSION, None),
        ({"AWS": ROLE}, SESSION, Grant.ROLE),
        ({"AWS": f"arn:aws:iam::{MLSPACE}:role/mlspace/{ROLE_NAME}"}, SESSION, Grant.ROLE),
        ({"AWS": f"arn:aws:iam::{MLSPACE}:role/Other"}, SESSION, None),
        ({"AWS": f"arn:aws:iam::{PARTNER}:role/{ROLE_NAME}"}, SESSION, None),
        ({"AWS": SESSION}, SESSION, Grant.DIRECT),
        ({"AWS": OTHER_SESSION}, SESSION, None),
        ({"AWS": [MLSPACE, ROLE, SESSION]}, SESSION, Grant.DIRECT),
        ({"AWS": [MLSPACE, ROLE]}, SESSION, Grant.ROLE),
        ({"AWS": USER}, USER, Grant.DIRECT),
        ({"AWS": f"arn:aws:iam::{MLSPACE}:user/bob"}, USER, None),
        ({"AWS": "AROAEXAMPLEID1234567"}, SESSION, None),
        ({"AWS": "AIDAEXAMPLEID1234567"}, USER, None),
        ({"Service": "s3.amazonaws.com"}, SESSION, None),
        ({"Federated": "cognito-identity.amazonaws.com"}, SESSION, None),
        ({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}, USER, None),
        (
            {"AWS": f"arn:aws:sts::{MLSPACE}:federated-user/carol"},
            f"arn:aws:sts::{MLSPACE}:federated-user/carol",
            Grant.DIRECT,
        ),
        ({"AWS": MLSPACE}, ROOT, Grant.ACCOUNT),
    ],
)
def test_principal_matching(raw: Any, caller: str, expected: Grant | None) -> None:
    assert grant(raw, caller) is expected


@pytest.mark.parametrize(
    ("listed", "applies"),
    [
        ([SESSION], True),
        ([SESSION, ROLE], True),
        ([SESSION, MLSPACE], True),
        ([ROLE, MLSPACE], True),
        ([SESSION, ROLE, ROOT], False),
        ([SESSION, ROLE, MLSPACE], False),
        ([OTHER_SESSION, ROLE, MLSPACE], True),
    ],
)
def test_not_principal_spares_a_session_only_when_session_role_and_account_are_listed(
    listed: list[str], applies: bool
) -> None:
    result = grant({"AWS": listed}, SESSION, negated=True, deny=True)
    assert (result is not None) is applies


@pytest.mark.parametrize(
    ("listed", "caller", "applies"),
    [
        ([USER, MLSPACE], USER, False),
        ([USER], USER, True),
        ([USER, MLSPACE], f"arn:aws:iam::{MLSPACE}:user/bob", True),
        ([MLSPACE], ROOT, False),
        ([USER, MLSPACE], "anonymous", True),
        ("*", "anonymous", False),
        ("*", SESSION, False),
    ],
)
def test_not_principal_for_users_root_and_anonymous(listed: Any, caller: str, applies: bool) -> None:
    raw = listed if listed == "*" else {"AWS": listed}
    assert (grant(raw, caller, negated=True, deny=True) is not None) is applies


def test_deny_with_not_principal_always_applies_to_a_caller_with_a_boundary() -> None:
    listed = {"AWS": [SESSION, ROLE, MLSPACE]}
    assert grant(listed, SESSION, negated=True, deny=True, boundary=True) is Grant.DIRECT
    assert grant(listed, SESSION, negated=True, deny=False, boundary=True) is None
