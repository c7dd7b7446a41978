"""The fixes ``s3access check`` prints work as printed: pasted into bash with the real AWS CLI and jq, run by
the principal each fix names, against the sandbox (which decides every S3 and KMS request over every layer).

No admin endpoint is configured, so alice's check sees what a real notebook sees: almost nothing (not her
role's policies, not the boundary, not the partner's bucket policy or encryption). The rules the fixes must
satisfy, cross-account: the bucket policy and alice's identity policy, within her permissions boundary, must
both allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html); an SSE-KMS object also
needs the key policy and alice's own policies to allow kms:Decrypt
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
The sandbox does not enforce IAM's 6,144-character quota on a managed policy, so the test checks it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.core.registry import save_registry_file
from mlspace_s3magic.sandbox.mlspace_policies import NOTEBOOK_ROLE_NAME
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    KMS_BUCKET,
    MLSPACE_ACCOUNT,
    PARTNER_ACCOUNT,
    PROJECT,
    REGISTRY,
    SHARED_BUCKET,
    USERS,
)

BIN = Path(sys.executable).parent
S3ACCESS = str(BIN / "s3access")
AWS_CLI = BIN / "aws"
JQ = Path("/usr/bin/jq")
DENIED = 3
# Whose credentials run a fix: the sandbox's principal for each run_as (a key owner: the key's account's).
RUN_AS = {"bucket-owner": "owner", "mlspace-admin": "admin"}
ACCOUNT_ADMINS = {PARTNER_ACCOUNT: "owner", MLSPACE_ACCOUNT: "admin"}
GRANT_POLICY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/MLSpace-s3access-project-{PROJECT}"
BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
FOREIGN = {
    "Sid": "PartnerAuditorsList",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
    "Action": "s3:ListBucket",
    "Resource": f"arn:aws:s3:::{SHARED_BUCKET}",
}

pytestmark = pytest.mark.skipif(
    not AWS_CLI.exists() or not JQ.exists(),
    reason=f"needs the AWS CLI at {AWS_CLI} (awscli, in the dev extras) and jq at {JQ}",
)


class Shell:
    """Runs the CLI and the printed commands as sandbox principals, in the test's folder, on loopback only."""

    def __init__(self, state: SandboxState, folder: Path):
        assert state.endpoint_url.startswith("http://127.0.0.1:"), state.endpoint_url
        # The registry `sandbox env` exports: how the check learns that the partner owns the buckets.
        registry = folder / "registry.json"
        save_registry_file(registry, REGISTRY)
        self.state = replace(state, registry_file=str(registry))
        self.folder = folder
        (folder / "aws").mkdir()
        # Nothing from the machine: no proxy, no AWS profile or config, no admin endpoint.
        self.base = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(folder),
            "XDG_STATE_HOME": str(folder / "xdg-state"),
            "XDG_CACHE_HOME": str(folder / "xdg-cache"),
            "AWS_CONFIG_FILE": str(folder / "aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "aws" / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def environment(self, principal: str) -> dict[str, str]:
        return self.state.process_environment(principal, self.base)

    def check(
        self, target: str, *, as_json: bool = False, principal: str = "alice@demo"
    ) -> subprocess.CompletedProcess[str]:
        arguments = [S3ACCESS, "check", target, "--need", "read", *(["--json"] if as_json else [])]
        return subprocess.run(
            arguments,
            env=self.environment(principal),
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def run_fix(self, fix: dict[str, Any], number: int) -> None:
        """The command exactly as printed, with ``bash -e``, in a fresh folder, as the fix's principal."""
        principal = RUN_AS.get(fix["run_as"]) or ACCOUNT_ADMINS[fix["account"]]
        assert self.state.principal(principal).arn.split(":")[4] == fix["account"], fix
        folder = self.folder / f"fix-{number}-{fix['layer']}"
        while folder.exists():  # a second round runs its fixes in folders of their own
            folder = folder.with_name(folder.name + "-again")
        folder.mkdir()
        done = subprocess.run(
            ["bash", "-e", "-c", fix["command"]],
            env=self.environment(principal),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{fix['layer']} fix failed:\n{fix['command']}\n{done.stderr}"

    def apply_printed_fixes(self, target: str) -> list[dict[str, Any]]:
        """alice's check of ``target`` (denied), each fix then run by its principal ("nobody": advice)."""
        done = self.check(target, as_json=True)
        assert done.returncode == DENIED, done.stderr
        report = json.loads(done.stdout)
        assert report["diagnosed_by"] == "notebook"
        fixes: list[dict[str, Any]] = report["fixes"]
        for number, fix in enumerate(fixes, 1):
            if fix["run_as"] != "nobody":
                self.run_fix(fix, number)
        return fixes

    def managed_policy(self, arn: str) -> dict[str, Any]:
        iam = self.state.aws_for("admin").client("iam")
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        return dict(json.loads(document) if isinstance(document, str) else document)


@pytest.fixture
def shell(fresh_sandbox: SandboxState, tmp_path: Path) -> Shell:
    return Shell(fresh_sandbox, tmp_path)


def _assert_granted_exactly(shell: Shell, bucket: str, folder: str, other: str | None) -> None:
    """alice reads ``folder`` now, and still not ``other``; the boundary stays within IAM's quota."""
    allowed = shell.check(f"{bucket}/{folder}")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    if other is not None:
        assert shell.check(f"{bucket}/{other}").returncode == DENIED
    assert iam_size(shell.managed_policy(BOUNDARY_ARN)) <= MANAGED_POLICY_MAX_CHARS


def test_printed_fixes_open_the_datasets_folder_and_nothing_else(shell: Shell) -> None:
    fixes = shell.apply_printed_fixes(f"{SHARED_BUCKET}/datasets/")
    run = {fix["layer"]: fix["run_as"] for fix in fixes if fix["run_as"] != "nobody"}
    # alice cannot read the bucket's encryption, so a KMS key may be behind it: the key owner's command reads
    # the bucket's default encryption and, finding none (SSE-S3), changes nothing.
    assert run == {
        "bucket-policy": "bucket-owner",
        "boundary": "mlspace-admin",
        "identity": "mlspace-admin",
        "kms": "key-owner",
    }
    _assert_granted_exactly(shell, SHARED_BUCKET, "datasets/", "logs/")


def _unattached_grant_policy(shell: Shell) -> None:
    """An earlier grant made the project's policy of ours (for another bucket) but attached it to no role."""
    iam = shell.state.aws_for("admin").client("iam")
    earlier = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EarlierGrant",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::partner-shared-readonly",
            }
        ],
    }
    iam.create_policy(PolicyName=GRANT_POLICY_ARN.rsplit("/", 1)[-1], PolicyDocument=json.dumps(earlier))


def _bucket_with_a_policy(shell: Shell) -> None:
    """The partner's bucket already has a policy of its own, which the fix must keep."""
    s3 = shell.state.aws_for("owner").client("s3")
    document = {"Version": "2012-10-17", "Statement": [FOREIGN]}
    s3.put_bucket_policy(Bucket=SHARED_BUCKET, Policy=json.dumps(document))


@pytest.mark.parametrize(
    "prepare",
    [_unattached_grant_policy, _bucket_with_a_policy],
    ids=["grant-policy-unattached", "bucket-policy"],
)
def test_printed_fixes_work_from_another_starting_state(shell: Shell, prepare: Any) -> None:
    prepare(shell)
    shell.apply_printed_fixes(f"{SHARED_BUCKET}/datasets/")
    _assert_granted_exactly(shell, SHARED_BUCKET, "datasets/", "logs/")
    grant = shell.managed_policy(GRANT_POLICY_ARN)
    iam = shell.state.aws_for("admin").client("iam")
    # Every member's role carries the grant policy, whether it was just created or existed.
    for user in USERS:
        attached = iam.list_attached_role_policies(RoleName=user_role_name(PROJECT, user))["AttachedPolicies"]
        assert GRANT_POLICY_ARN in {policy["PolicyArn"] for policy in attached}
    s3 = shell.state.aws_for("owner").client("s3")
    bucket_policy = json.loads(s3.get_bucket_policy(Bucket=SHARED_BUCKET)["Policy"])
    if prepare is _unattached_grant_policy:
        assert grant["Statement"][0]["Sid"] == "EarlierGrant"
    else:
        assert bucket_policy["Statement"][0] == FOREIGN


def test_mlspace_boundary_has_no_room_for_the_kms_bucket_and_the_printed_fix_stops_saying_so(
    shell: Shell,
) -> None:
    """MLSpace's boundary has 64 of IAM's 6,144 characters free once alice's seeded grant is in it; the KMS
    bucket's ARNs need more, so the printed boundary fix stops before writing, with the figures and the
    options, and the boundary is left as it was."""
    done = shell.check(f"{KMS_BUCKET}/datasets/", as_json=True)
    assert done.returncode == DENIED
    (boundary_fix,) = [fix for fix in json.loads(done.stdout)["fixes"] if fix["layer"] == "boundary"]
    before = shell.managed_policy(BOUNDARY_ARN)
    folder = shell.folder / "boundary-fix"
    folder.mkdir()
    ran = subprocess.run(
        ["bash", "-e", "-c", boundary_fix["command"]],
        env=shell.environment("admin"),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode != 0
    assert "6,144" in ran.stderr and "nothing was written" in ran.stderr
    assert shell.managed_policy(BOUNDARY_ARN) == before


def _boundary_with_room(shell: Shell) -> None:
    """The admin gave MLSpace a boundary of their own (MLSpace's PERMISSIONS_BOUNDARY_POLICY_NAME setting),
    one with room: S3 and KMS within the caps of the identity and resource policies."""
    iam = shell.state.aws_for("admin").client("iam")
    roomy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:*", "kms:*", "iam:Get*", "iam:List*"], "Resource": "*"}
        ],
    }
    for version in iam.list_policy_versions(PolicyArn=BOUNDARY_ARN)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=BOUNDARY_ARN, VersionId=version["VersionId"])
    iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=json.dumps(roomy), SetAsDefault=True)


def test_printed_fixes_open_the_kms_encrypted_datasets_in_one_round(shell: Shell) -> None:
    """The notebook may not read the bucket's encryption, so the fixes grant the bucket's key without
    naming it: every key of the owner, only for S3's use on this bucket's objects
    (kms:EncryptionContext:aws:s3:arn), and the key owner's command reads the key from the bucket. Then
    alice reads, and the key stays closed to direct use."""
    _boundary_with_room(shell)
    fixes = shell.apply_printed_fixes(f"{KMS_BUCKET}/datasets/")
    kms = [fix for fix in fixes if fix["layer"] == "kms"]
    assert [(fix["run_as"], fix["account"]) for fix in kms] == [("key-owner", PARTNER_ACCOUNT)]
    _assert_granted_exactly(shell, KMS_BUCKET, "datasets/", None)
    owner_s3 = shell.state.aws_for("owner").client("s3")
    rules = owner_s3.get_bucket_encryption(Bucket=KMS_BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    key = rules[0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    kms_client = shell.state.aws_for("alice@demo").client("kms")
    with pytest.raises(ClientError, match="AccessDenied"):
        kms_client.decrypt(CiphertextBlob=b"x" * 64, KeyId=key)


@pytest.fixture
def shared_role_shell(tmp_path: Path) -> Iterator[Shell]:
    """A sandbox of its own in MLSpace's shared-role mode (``sandbox serve --shared-role``, on loopback)."""
    state_dir = tmp_path / "state"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    server = subprocess.Popen(
        [S3ACCESS, "sandbox", "serve", "--shared-role", "--port", "0", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Sandbox listening on http://127.0.0.1:")
        folder = tmp_path / "work"
        folder.mkdir()
        yield Shell(SandboxState.load(state_dir), folder)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_shared_role_fixes_let_in_the_notebook_role_and_no_other_principal(shared_role_shell: Shell) -> None:
    """Every notebook runs as the shared role: the bucket policy names it through aws:PrincipalArn, so the
    MLSpace admin, with every S3 right of its own, stays out; an Allow for the account root alone would let
    it in (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html)."""
    shell = shared_role_shell
    fixes = shell.apply_printed_fixes(f"{SHARED_BUCKET}/datasets/")
    (bucket_policy,) = [fix for fix in fixes if fix["layer"] == "bucket-policy"]
    assert any("every notebook of every project" in warning for warning in bucket_policy["warnings"])
    role_arn = f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{NOTEBOOK_ROLE_NAME}"
    for statement in bucket_policy["change"]["add_statements"]:
        assert statement["Condition"]["ArnLike"] == {"aws:PrincipalArn": [role_arn]}
    assert shell.check(f"{SHARED_BUCKET}/datasets/").returncode == 0
    assert shell.check(f"{SHARED_BUCKET}/logs/").returncode == DENIED
    assert shell.check(f"{SHARED_BUCKET}/datasets/", principal="admin").returncode == DENIED
