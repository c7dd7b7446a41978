"""The sandbox in MLSpace's shared-role mode (``MANAGE_IAM_ROLES`` off), started as a person would start it.

The session's own sandbox stays in per-user mode: this module runs ``s3access sandbox serve --shared-role`` in
another process (moto keeps one world per process), on loopback, and talks to it through its state file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.cli import main
from mlspace_s3magic.core.mlspace import SHARED_ROLE_PROJECT_TAG, SHARED_ROLE_USER_TAG
from mlspace_s3magic.sandbox import mlspace_policies as mp
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    KMS_BUCKET,
    MLSPACE_ACCOUNT,
    READABLE_BUCKET,
    SHARED_BUCKET,
    SHARED_ROLE_ARN,
    shared_role_documents,
)
from tests.sandbox.test_reference_documents import _deployed, _reference
from tests.test_cli import _act_as

S3ACCESS = str(Path(sys.executable).with_name("s3access"))
SHARED_SESSION_ARN = f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/{mp.NOTEBOOK_ROLE_NAME}/SageMaker"
NOTEBOOK_PRINCIPALS = ("alice@demo", "bob@demo")


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@pytest.fixture(scope="module")
def shared_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``sandbox serve --shared-role`` for this module; yields its state folder, stops it at the end."""
    state_dir = tmp_path_factory.mktemp("shared-role")
    server = subprocess.Popen(
        [S3ACCESS, "sandbox", "serve", "--shared-role", "--port", "0", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("Sandbox listening on http://127.0.0.1:"), banner + (
            server.stderr.read() if server.stderr else ""
        )
        assert f"shared-role mode: every notebook runs as {mp.NOTEBOOK_ROLE_NAME}" in banner
        yield state_dir
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0


@pytest.fixture
def shared(shared_state_dir: Path) -> SandboxState:
    return SandboxState.load(shared_state_dir)


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def _bucket_policy(state: SandboxState, bucket: str) -> dict[str, Any]:
    policy = state.aws_for("owner").client("s3").get_bucket_policy(Bucket=bucket)["Policy"]
    return dict(json.loads(policy))


def test_the_state_remembers_the_mode(shared: SandboxState, sandbox: SandboxState) -> None:
    assert shared.shared_role is True
    assert SandboxState.from_dict(shared.to_dict()).shared_role is True
    assert sandbox.shared_role is False
    older = {key: value for key, value in sandbox.to_dict().items() if key != "shared_role"}
    assert SandboxState.from_dict(older).shared_role is False  # a state file from before the flag


def test_the_shared_mode_documents_equal_mlspaces_reference(shared: SandboxState) -> None:
    """Built and deployed: MLSpace's shared-role notebook policy as is, beside its KMS constraint only."""
    documents = shared_role_documents()
    assert list(documents) == [mp.NOTEBOOK_POLICY_NAME, mp.KMS_INSTANCE_CONSTRAINT_POLICY_NAME]
    reference = _reference("notebook-policy-shared-role.json")
    assert documents[mp.NOTEBOOK_POLICY_NAME] == reference
    assert _deployed(shared, mp.NOTEBOOK_POLICY_NAME) == reference
    assert _deployed(shared, mp.KMS_INSTANCE_CONSTRAINT_POLICY_NAME) == mp.kms_instance_constraint_policy()


def test_one_unbounded_shared_role_and_no_per_user_iam(shared: SandboxState) -> None:
    iam = shared.aws_for("admin").client("iam")
    role = iam.get_role(RoleName=mp.NOTEBOOK_ROLE_NAME)["Role"]
    assert role["Arn"] == SHARED_ROLE_ARN
    assert {(tag["Key"], tag["Value"]) for tag in role["Tags"]} == {
        ("user", SHARED_ROLE_USER_TAG),
        ("project", SHARED_ROLE_PROJECT_TAG),
    }
    assert "PermissionsBoundary" not in role  # MLSpace makes its boundary only for per-user roles
    attached = iam.list_attached_role_policies(RoleName=mp.NOTEBOOK_ROLE_NAME)["AttachedPolicies"]
    assert {policy["PolicyName"] for policy in attached} == set(shared_role_documents())
    assert iam.list_role_policies(RoleName=mp.NOTEBOOK_ROLE_NAME)["PolicyNames"] == []
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == [mp.NOTEBOOK_ROLE_NAME]
    local = {policy["PolicyName"] for policy in iam.list_policies(Scope="Local")["Policies"]}
    assert local == set(shared_role_documents())  # no boundary, project, user or grant policy


def test_every_notebook_principal_is_a_session_of_the_shared_role(shared: SandboxState) -> None:
    """SageMaker names every notebook's session "SageMaker", so alice and bob differ only by their keys."""
    assert set(shared.principals) == {"alice@demo", "bob@demo", "admin", "owner"}
    for name in NOTEBOOK_PRINCIPALS:
        assert shared.principal(name).arn == SHARED_SESSION_ARN
        sts = shared.aws_for(name).client("sts")
        assert sts.get_caller_identity()["Arn"] == SHARED_SESSION_ARN
    keys = {shared.principal(name).credentials.access_key_id for name in NOTEBOOK_PRINCIPALS}
    assert len(keys) == len(NOTEBOOK_PRINCIPALS)
    assert shared.principal("admin").arn == f"arn:aws:iam::{MLSPACE_ACCOUNT}:user/admin"
    assert shared.principal("owner").arn == "arn:aws:iam::222222222222:user/owner"


def test_the_partners_buckets_are_the_per_user_worlds(shared: SandboxState, sandbox: SandboxState) -> None:
    def buckets(state: SandboxState) -> list[str]:
        return sorted(b["Name"] for b in state.aws_for("owner").client("s3").list_buckets()["Buckets"])

    assert buckets(shared) == buckets(sandbox) == sorted([SHARED_BUCKET, READABLE_BUCKET, KMS_BUCKET])
    assert _bucket_policy(shared, KMS_BUCKET) == _bucket_policy(sandbox, KMS_BUCKET)
    with pytest.raises(ClientError) as none:
        shared.aws_for("owner").client("s3").get_bucket_policy(Bucket=SHARED_BUCKET)
    assert _code(none) == "NoSuchBucketPolicy"


def test_partner_shared_readonly_names_the_shared_role_not_the_account(
    shared: SandboxState, sandbox: SandboxState
) -> None:
    """In the per-user world the partner lets the MLSpace account in; in the shared one only the notebook
    role, so the MLSpace admin (every S3 right of its own) is kept out, and notebooks still lack the identity
    grant (which would go into MLSpace's notebook policy)."""
    per_user = _bucket_policy(sandbox, READABLE_BUCKET)["Statement"]
    assert [("Condition" in statement) for statement in per_user] == [False]
    [statement] = _bucket_policy(shared, READABLE_BUCKET)["Statement"]
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{MLSPACE_ACCOUNT}:root"}
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": SHARED_ROLE_ARN}}
    assert sandbox.aws_for("admin").client("s3").list_objects_v2(Bucket=READABLE_BUCKET)["KeyCount"] == 2
    for name in ("admin", "alice@demo"):
        with pytest.raises(ClientError) as denied:
            shared.aws_for(name).client("s3").list_objects_v2(Bucket=READABLE_BUCKET)
        assert _code(denied) == "AccessDenied"


def test_whoami_json_as_alice_says_shared_notebook_role(
    shared: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, shared, "alice@demo")
    assert main(["whoami", "--json"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    assert (printed["role"], printed["session"]) == (mp.NOTEBOOK_ROLE_NAME, "SageMaker")
    assert (printed["user"], printed["project"], printed["user_scoped"]) == (None, None, False)
    assert any("shared notebook role" in note for note in printed["notes"])
    assert main(["whoami"]) == 0
    text = capsys.readouterr().out
    assert "MLSpace user       (shared notebook role)" in text
    assert "Project            (shared notebook role)" in text
    for shown in (out, text):
        assert SHARED_ROLE_USER_TAG not in shown and SHARED_ROLE_PROJECT_TAG not in shown


def test_whoami_in_per_user_mode_is_unchanged(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "alice@demo")
    assert main(["whoami", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["user"], printed["project"], printed["user_scoped"]) == ("alice", "demo", True)
    assert printed["role"] == mp.user_role_name("demo", "alice")


def test_sandbox_env_gives_the_remembered_mode(shared_state_dir: Path) -> None:
    """Another shell, as a person would type it: the exports act as alice in the shared world."""
    exports = f"{S3ACCESS} sandbox env --as alice@demo --state-dir {shared_state_dir}"
    shell = subprocess.run(
        ["bash", "-c", f'eval "$({exports})" && {S3ACCESS} whoami --json'],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    assert "this sandbox runs MLSpace in shared-role mode" in shell.stderr
    printed = json.loads(shell.stdout)
    assert (printed["arn"], printed["user"], printed["project"]) == (SHARED_SESSION_ARN, None, None)


def test_sandbox_run_with_shared_role_and_env_inside_it_agree(tmp_path: Path) -> None:
    """`sandbox run --shared-role` starts the shared world; `sandbox env` from its command reads the same."""
    switch = f'eval "$({S3ACCESS} sandbox env --as alice@demo --state-dir "$S3ACCESS_SANDBOX_STATE_DIR")"'
    run = subprocess.run(
        [
            S3ACCESS,
            "sandbox",
            "run",
            "--shared-role",
            "--as",
            "bob@demo",
            "--state-dir",
            str(tmp_path),
            "--",
            "bash",
            "-c",
            f"{S3ACCESS} whoami --json && {switch} && {S3ACCESS} whoami --json",
        ],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    banner, _, rest = run.stdout.partition("\n")
    assert "shared-role mode" in banner and "running bash as bob@demo" in banner
    assert "this sandbox runs MLSpace in shared-role mode" in run.stderr
    decoder = json.JSONDecoder()
    as_bob, end = decoder.raw_decode(rest)
    as_alice, _ = decoder.raw_decode(rest[end:].lstrip())
    for printed in (as_bob, as_alice):
        assert (printed["arn"], printed["user"], printed["project"]) == (SHARED_SESSION_ARN, None, None)
    assert not (tmp_path / "sandbox.json").exists()
