"""The sandbox's world exists as DESIGN.md describes it, and enforcement is really on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.sandbox.server import Sandbox
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    DATA_BUCKET,
    MLSPACE_ACCOUNT,
    PARTNER_ACCOUNT,
    READABLE_BUCKET,
    SHARED_BUCKET,
)


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_principals_are_the_documented_ones(sandbox: SandboxState) -> None:
    assert set(sandbox.principals) == {"alice@demo", "bob@demo", "admin", "owner"}
    alice = sandbox.principal("alice@demo")
    assert alice.arn == (
        f"arn:aws:sts::{MLSPACE_ACCOUNT}:assumed-role/{user_role_name('demo', 'alice')}/SageMaker"
    )
    assert alice.credentials.session_token
    assert sandbox.principal("owner").arn == f"arn:aws:iam::{PARTNER_ACCOUNT}:user/owner"
    assert sandbox.principal("owner").credentials.session_token is None


def test_caller_identity_is_the_assumed_role_session(sandbox: SandboxState) -> None:
    for name in ("alice@demo", "bob@demo", "admin", "owner"):
        sts = sandbox.aws_for(name).client("sts")
        assert sts.get_caller_identity()["Arn"] == sandbox.principal(name).arn


def test_alice_reads_her_private_prefix_but_not_bobs(sandbox: SandboxState) -> None:
    s3 = sandbox.aws_for("alice@demo").client("s3")
    body = s3.get_object(Bucket=DATA_BUCKET, Key="private/alice/scratch.txt")["Body"].read()
    assert body == b"alice's private notes\n"
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket=DATA_BUCKET, Key="private/bob/scratch.txt")
    assert _code(denied) == "AccessDenied"


def test_a_wrong_secret_is_refused(sandbox: SandboxState) -> None:
    alice = sandbox.principal("alice@demo").credentials
    forged = StaticCredentials(alice.access_key_id, "not-the-secret", alice.session_token)
    aws = Aws(AwsSettings(region=sandbox.region, endpoint_url=sandbox.endpoint_url, max_attempts=1), forged)
    with pytest.raises(ClientError) as s3_refusal:
        aws.client("s3").get_object(Bucket=DATA_BUCKET, Key="private/alice/scratch.txt")
    assert _code(s3_refusal) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as iam_refusal:
        aws.client("iam").get_role(RoleName=user_role_name("demo", "alice"))
    assert _code(iam_refusal) == "SignatureDoesNotMatch"


def test_an_unknown_access_key_is_refused(sandbox: SandboxState) -> None:
    unknown = StaticCredentials("AKIAUNKNOWNUNKNOWN00", "whatever")
    aws = Aws(AwsSettings(region=sandbox.region, endpoint_url=sandbox.endpoint_url, max_attempts=1), unknown)
    with pytest.raises(ClientError) as refusal:
        aws.client("s3").list_objects_v2(Bucket=DATA_BUCKET)
    assert _code(refusal) == "InvalidAccessKeyId"


def test_alice_can_read_the_shared_readonly_bucket_not_the_one_to_share(sandbox: SandboxState) -> None:
    s3 = sandbox.aws_for("alice@demo").client("s3")
    listed = s3.list_objects_v2(Bucket=READABLE_BUCKET)
    assert [o["Key"] for o in listed["Contents"]] == ["README.txt", "reference/countries.csv"]
    with pytest.raises(ClientError) as denied:
        s3.list_objects_v2(Bucket=SHARED_BUCKET, MaxKeys=1)
    assert _code(denied) == "AccessDenied"


def test_bob_has_no_grant_on_the_shared_readonly_bucket(sandbox: SandboxState) -> None:
    with pytest.raises(ClientError) as denied:
        sandbox.aws_for("bob@demo").client("s3").get_object(Bucket=READABLE_BUCKET, Key="README.txt")
    assert _code(denied) == "AccessDenied"


def test_roles_are_named_tagged_and_bounded_as_mlspace_does(sandbox: SandboxState) -> None:
    iam = sandbox.aws_for("admin").client("iam")
    boundary_arn = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
    for user in ("alice", "bob"):
        role = iam.get_role(RoleName=user_role_name("demo", user))["Role"]
        tags = {tag["Key"]: tag["Value"] for tag in role["Tags"]}
        assert tags["user"] == user
        assert tags["project"] == "demo"
        assert "system" in tags
        assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary_arn
        attached = {
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
        }
        assert {"MLSpace-project-demo", f"MLSpace-user-{user}"} <= attached


def _default_document(iam: Any, name: str) -> Any:
    arn = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{name}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return json.loads(document) if isinstance(document, str) else document


def test_the_readonly_grant_is_in_the_boundary_and_our_grant_policy_for_alice_only(
    sandbox: SandboxState,
) -> None:
    """Written as the admin endpoint writes a grant: never into MLSpace's own user or project policies
    (MLSpace rewrites them), but into our grant policy, attached to alice's role alone."""
    iam = sandbox.aws_for("admin").client("iam")

    def names_bucket(name: str, bucket: str) -> bool:
        return f"s3:::{bucket}" in json.dumps(_default_document(iam, name))

    grant = "MLSpace-s3access-user-alice"
    assert names_bucket(BOUNDARY_POLICY_NAME, READABLE_BUCKET)
    assert names_bucket(grant, READABLE_BUCKET)
    for mlspace in ("MLSpace-user-alice", "MLSpace-user-bob", "MLSpace-project-demo"):
        assert not names_bucket(mlspace, READABLE_BUCKET)
    for name in (
        BOUNDARY_POLICY_NAME,
        grant,
        "MLSpace-user-alice",
        "MLSpace-user-bob",
        "MLSpace-project-demo",
    ):
        assert not names_bucket(name, SHARED_BUCKET)
    attached = {
        user: [
            p["PolicyName"]
            for p in iam.list_attached_role_policies(RoleName=user_role_name("demo", user))[
                "AttachedPolicies"
            ]
        ]
        for user in ("alice", "bob")
    }
    assert grant in attached["alice"] and grant not in attached["bob"]


def test_partner_buckets_hold_the_dataset_and_logs(sandbox: SandboxState) -> None:
    s3 = sandbox.aws_for("owner").client("s3")
    iris = s3.get_object(Bucket=SHARED_BUCKET, Key="datasets/iris/iris.csv")["Body"].read().decode()
    assert iris.splitlines()[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert len(iris.splitlines()) == 151
    logs = [
        o
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SHARED_BUCKET, Prefix="logs/")
        for o in page.get("Contents", [])
    ]
    assert 200 <= len(logs) < 1000
    policy = json.loads(s3.get_bucket_policy(Bucket=READABLE_BUCKET)["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{MLSPACE_ACCOUNT}:root"}
    with pytest.raises(ClientError) as missing:
        s3.get_bucket_policy(Bucket=SHARED_BUCKET)
    assert _code(missing) == "NoSuchBucketPolicy"


def test_data_bucket_has_the_mlspace_prefixes(sandbox: SandboxState) -> None:
    s3 = sandbox.aws_for("admin").client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=DATA_BUCKET)["Contents"]}
    for prefix in ("global/", "project/demo/", "private/alice/", "private/bob/"):
        assert any(key.startswith(prefix) for key in keys), prefix


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of listening TCP sockets on ``port``, read from the kernel's own table."""
    addresses = set()
    for table, width in ((Path("/proc/net/tcp"), 8), (Path("/proc/net/tcp6"), 32)):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A is LISTEN
                addresses.add(address if len(address) == width else "?")
    return addresses


def test_the_server_listens_on_loopback_only(running_sandbox: Sandbox) -> None:
    port = int(running_sandbox.endpoint_url.rsplit(":", 1)[1])
    assert running_sandbox.endpoint_url.startswith("http://127.0.0.1:")
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, little-endian hex


def test_reset_rebuilds_a_world_a_test_changed(running_sandbox: Sandbox, fresh_sandbox: SandboxState) -> None:
    owner = fresh_sandbox.aws_for("owner").client("s3")
    owner.delete_object(Bucket=READABLE_BUCKET, Key="README.txt")
    state = running_sandbox.reset()
    s3 = state.aws_for("owner").client("s3")
    assert s3.get_object(Bucket=READABLE_BUCKET, Key="README.txt")["Body"].read().startswith(b"Reference")
