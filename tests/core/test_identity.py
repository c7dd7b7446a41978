"""``whoami`` against the sandbox: MLSpace sessions, IAM users, and roles that cannot read themselves."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlspace_s3magic.core.aws import Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.identity import CallerArn, whoami
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.core.policy import Principal
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT

BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"


def test_alice_is_an_mlspace_user_in_project_demo(sandbox: SandboxState) -> None:
    me = whoami(sandbox.aws_for("alice@demo"))
    role = user_role_name("demo", "alice")
    assert me.to_dict() == {
        "arn": f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/{role}/SageMaker",
        "account": MLSPACE_ACCOUNT,
        "principal_type": "assumed-role",
        "role": role,
        "role_arn": f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{role}",
        "session": "SageMaker",
        "user": "alice",
        "project": "demo",
        "boundary": BOUNDARY_ARN,
        "user_scoped": True,
        "notes": [],
        "boundary_unreadable": None,
    }


def test_text_and_html_show_the_same_facts(sandbox: SandboxState) -> None:
    me = whoami(sandbox.aws_for("bob@demo"))
    text, html = str(me), me._repr_html_()
    assert repr(me) == text
    for fact in ("bob", "demo", BOUNDARY_ARN, user_role_name("demo", "bob")):
        assert fact in text
        assert fact in html
    assert "yes (one role per user and project)" in text


def test_a_plain_iam_user_says_it_is_not_an_mlspace_session(sandbox: SandboxState) -> None:
    me = whoami(sandbox.aws_for("owner"))
    assert me.principal_type == "user"
    assert me.account == "222222222222"
    assert (me.user, me.project, me.role, me.user_scoped) == (None, None, None, None)
    assert any("IAM user owner" in note for note in me.notes)


def _assume(state: SandboxState, role_name: str, policy: dict[str, Any], tags: list[dict[str, str]]) -> Aws:
    """Create a role with one inline policy as the admin, and return clients for a session of it."""
    admin = state.aws_for("admin")
    # moto matches trust principals literally, so name the admin user rather than the account.
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": state.principal("admin").arn},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    admin.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags)
    admin.client("iam").put_role_policy(
        RoleName=role_name, PolicyName="only", PolicyDocument=json.dumps(policy)
    )
    creds = admin.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{role_name}", RoleSessionName="SageMaker"
    )["Credentials"]
    return Aws(
        AwsSettings(region=state.region, endpoint_url=state.endpoint_url),
        StaticCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
    )


def test_a_role_without_iam_getrole_still_answers_and_says_what_is_missing(
    fresh_sandbox: SandboxState,
) -> None:
    role = user_role_name("demo", "carol")
    s3_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    me = whoami(_assume(fresh_sandbox, role, s3_only, [{"Key": "user", "Value": "carol"}]))
    assert me.role == role
    assert me.user is None
    assert me.project == "demo"
    assert me.boundary is None
    assert me.user_scoped is True
    assert any("iam:GetRole was denied" in note for note in me.notes)
    assert any("read from the role's name" in note for note in me.notes)


def test_a_shared_notebook_role_is_not_user_scoped(fresh_sandbox: SandboxState) -> None:
    get_role = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}],
    }
    me = whoami(_assume(fresh_sandbox, "mlspace-notebook-role", get_role, []))
    assert me.user_scoped is False
    assert (me.user, me.project) == (None, None)
    assert any("no `user` tag" in note for note in me.notes)


def test_tags_that_do_not_match_the_role_name_are_flagged(fresh_sandbox: SandboxState) -> None:
    get_role = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}],
    }
    tags = [{"Key": "user", "Value": "mallory"}, {"Key": "project", "Value": "demo"}]
    me = whoami(_assume(fresh_sandbox, user_role_name("demo", "carol"), get_role, tags))
    assert me.user == "mallory"
    assert any("MLSpace would name that role differently" in note for note in me.notes)


@pytest.mark.parametrize(
    ("arn", "kind", "name", "session"),
    [
        (
            "arn:aws:sts::111111111111:assumed-role/MLSpace-demo-ab/SageMaker",
            "assumed-role",
            "MLSpace-demo-ab",
            "SageMaker",
        ),
        ("arn:aws:iam::111111111111:user/admin", "user", "admin", None),
        ("arn:aws:iam::111111111111:user/division/team/dev", "user", "dev", None),
        ("arn:aws:iam::111111111111:root", "root", None, None),
        ("arn:aws:sts::111111111111:federated-user/bob", "federated-user", "bob", None),
        ("arn:aws-us-gov:sts::111111111111:assumed-role/R/s@x.com", "assumed-role", "R", "s@x.com"),
    ],
)
def test_caller_arns_are_split_as_sts_writes_them(
    arn: str, kind: str, name: str | None, session: str | None
) -> None:
    parsed = CallerArn.parse(arn)
    assert (parsed.kind, parsed.name, parsed.session, parsed.account) == (kind, name, session, "111111111111")


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:sts::111111111111:assumed-role/MLSpace-demo-ab/SageMaker",
        "arn:aws:iam::111111111111:user/division/team/dev",
        "arn:aws:sts::111111111111:federated-user/bob",
        "arn:aws:iam::111111111111:root",
    ],
)
def test_whoami_and_the_evaluator_read_a_caller_arn_alike(arn: str) -> None:
    """Both read the one split in core/policy/arns.py, so a name never differs between a check and a plan."""
    parsed, caller = CallerArn.parse(arn), Principal.from_arn(arn)
    assert (parsed.account, parsed.name, parsed.session) == (caller.account, caller.name, caller.session)


def test_not_an_arn_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an ARN"):
        CallerArn.parse("arn:aws:sts")


def test_mlspaces_shared_notebook_role_names_no_user_and_no_project(fresh_sandbox: SandboxState) -> None:
    """With MANAGE_IAM_ROLES off every notebook runs as mlspace-notebook-role, tagged user=MLSpaceApplication
    and project=MLSpaceInfrastructure: whoami says "shared notebook role", never user MLSpaceApplication."""
    get_role = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}],
    }
    tags = [
        {"Key": "user", "Value": "MLSpaceApplication"},
        {"Key": "project", "Value": "MLSpaceInfrastructure"},
    ]
    me = whoami(_assume(fresh_sandbox, "mlspace-notebook-role", get_role, tags))
    assert (me.user, me.project, me.user_scoped) == (None, None, False)
    assert any("shared notebook role" in note for note in me.notes)
    text = str(me)
    assert "MLSpaceApplication" not in text and "MLSpaceInfrastructure" not in text
    assert "(shared notebook role)" in text and "(shared notebook role)" in me._repr_html_()
