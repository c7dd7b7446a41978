"""The sandbox decides S3 and KMS requests over every layer, as AWS does, through real boto3 calls.

Each test changes the world as its real owner would (the MLSpace admin for IAM, the partner's owner for the
bucket and key policies) and asks as alice. The rules:
- cross-account: the bucket policy and the caller's identity policies, within its boundary, must both allow
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html);
- a permissions boundary caps identity-based grants
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html);
- an explicit Deny in any policy wins
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html);
- listing sends ``s3:prefix``
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html);
- reading an SSE-KMS object needs ``kms:Decrypt`` allowed by the key policy and, across accounts, by the
  caller's identity policies too
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.ceiling import GrantedBucket, with_ceiling
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, user_role_name
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    KMS_BUCKET,
    KMS_KEY_ALIAS,
    MLSPACE_ACCOUNT,
    PARTNER_ACCOUNT,
    PROJECT,
    READABLE_BUCKET,
    SHARED_BUCKET,
)

S3ACCESS = str(Path(sys.executable).with_name("s3access"))
ALICE_ROLE = user_role_name(PROJECT, "alice")
ALICE_ROLE_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:role/{ALICE_ROLE}"
BOUNDARY_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/{BOUNDARY_POLICY_NAME}"
READ = ["s3:GetObject", "s3:ListBucket"]


def _bucket_arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def _denied(call: Callable[[], Any]) -> str:
    """The AccessDenied message of a call that must be refused."""
    with pytest.raises(ClientError) as refused:
        call()
    error = refused.value.response["Error"]
    assert error["Code"] in ("AccessDenied", "AccessDeniedException"), error
    return str(error["Message"])


def _grant_identity(state: SandboxState, name: str, statements: list[dict[str, Any]]) -> None:
    """As the MLSpace admin: a managed policy of ours attached to alice's role."""
    iam = state.aws_for("admin").client("iam")
    document = {"Version": "2012-10-17", "Statement": statements}
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ALICE_ROLE, PolicyArn=arn)


def _boundary(state: SandboxState) -> dict[str, Any]:
    iam = state.aws_for("admin").client("iam")
    version = iam.get_policy(PolicyArn=BOUNDARY_ARN)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=BOUNDARY_ARN, VersionId=version)["PolicyVersion"]["Document"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def _put_boundary(state: SandboxState, document: dict[str, Any]) -> None:
    """As the MLSpace admin: a new default version of the boundary, within IAM's size limit."""
    assert iam_size(document) <= MANAGED_POLICY_MAX_CHARS
    iam = state.aws_for("admin").client("iam")
    iam.create_policy_version(PolicyArn=BOUNDARY_ARN, PolicyDocument=json.dumps(document), SetAsDefault=True)


def _grant_boundary(state: SandboxState, bucket: str) -> None:
    """As the MLSpace admin: the bucket in MLSpace's S3 read statement (the boundary has 140 characters
    free, and partner-shared-readonly's grant uses 76 of them)."""
    seeded = GrantedBucket(READABLE_BUCKET, PARTNER_ACCOUNT)
    granted = [seeded, GrantedBucket(bucket, PARTNER_ACCOUNT)]
    _put_boundary(
        state, with_ceiling(_boundary(state), granted, previous=[seeded], home_account=MLSPACE_ACCOUNT)
    )


def _put_bucket_policy(state: SandboxState, bucket: str, statements: list[dict[str, Any]]) -> None:
    """As the partner's owner: replace the bucket policy."""
    document = {"Version": "2012-10-17", "Statement": statements}
    state.aws_for("owner").client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))


def _mlspace_read(bucket: str) -> dict[str, Any]:
    return {
        "Sid": "MLSpaceRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{MLSPACE_ACCOUNT}:root"},
        "Action": READ,
        "Resource": _bucket_arns(bucket),
    }


def test_each_layer_of_a_cross_account_read_must_allow(fresh_sandbox: SandboxState) -> None:
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")

    def read() -> Any:
        return s3.get_object(Bucket=SHARED_BUCKET, Key="datasets/iris/README.txt")

    _grant_identity(
        fresh_sandbox,
        "alice-shared-read",
        [{"Effect": "Allow", "Action": READ, "Resource": _bucket_arns(SHARED_BUCKET)}],
    )
    # Identity alone: moto used to allow this; the bucket policy (cross-account) and the boundary still block.
    assert "because no resource-based policy allows the s3:GetObject action" in _denied(read)
    _put_bucket_policy(fresh_sandbox, SHARED_BUCKET, [_mlspace_read(SHARED_BUCKET)])
    assert "because no permissions boundary allows the s3:GetObject action" in _denied(read)
    _grant_boundary(fresh_sandbox, SHARED_BUCKET)
    assert read()["Body"].read().startswith(b"A small iris-shaped dataset")
    assert s3.list_objects_v2(Bucket=SHARED_BUCKET, MaxKeys=1)["KeyCount"] == 1
    # Read was granted, not write.
    message = _denied(lambda: s3.put_object(Bucket=SHARED_BUCKET, Key="datasets/new.txt", Body=b"x"))
    assert "s3:PutObject" in message


def test_a_boundary_and_bucket_policy_without_an_identity_grant_deny(fresh_sandbox: SandboxState) -> None:
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")
    _put_bucket_policy(fresh_sandbox, SHARED_BUCKET, [_mlspace_read(SHARED_BUCKET)])
    _grant_boundary(fresh_sandbox, SHARED_BUCKET)
    message = _denied(lambda: s3.list_objects_v2(Bucket=SHARED_BUCKET, MaxKeys=1))
    assert "because no identity-based policy allows the s3:ListBucket action" in message
    assert f"assumed-role/{ALICE_ROLE}/SageMaker" in message


def _all_layers_read(state: SandboxState, bucket: str, identity: list[dict[str, Any]]) -> None:
    _put_bucket_policy(state, bucket, [_mlspace_read(bucket)])
    _grant_boundary(state, bucket)
    _grant_identity(state, "alice-grant", identity)


def test_a_prefix_scoped_list_grant_lists_that_prefix_only(fresh_sandbox: SandboxState) -> None:
    bucket_arn, objects = _bucket_arns(SHARED_BUCKET)
    _all_layers_read(
        fresh_sandbox,
        SHARED_BUCKET,
        [
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": ["datasets/*"]}},
            },
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/datasets/*"},
        ],
    )
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")
    listed = s3.list_objects_v2(Bucket=SHARED_BUCKET, Prefix="datasets/", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["datasets/iris/"]
    for prefix in ("", "logs/"):
        message = _denied(lambda prefix=prefix: s3.list_objects_v2(Bucket=SHARED_BUCKET, Prefix=prefix))
        assert "s3:ListBucket" in message
    assert s3.get_object(Bucket=SHARED_BUCKET, Key="datasets/iris/iris.csv")["Body"].read()
    _denied(lambda: s3.get_object(Bucket=SHARED_BUCKET, Key="logs/2026/11/01/part-0000.log"))
    assert objects.endswith("/*")


def test_an_explicit_deny_in_the_bucket_policy_wins_over_every_allow(fresh_sandbox: SandboxState) -> None:
    _all_layers_read(fresh_sandbox, SHARED_BUCKET, [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}])
    deny_logs = {
        "Sid": "NoLogs",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{SHARED_BUCKET}/logs/*",
    }
    _put_bucket_policy(fresh_sandbox, SHARED_BUCKET, [_mlspace_read(SHARED_BUCKET), deny_logs])
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")
    assert s3.get_object(Bucket=SHARED_BUCKET, Key="datasets/iris/iris.csv")["Body"].read()
    message = _denied(lambda: s3.get_object(Bucket=SHARED_BUCKET, Key="logs/2026/11/01/part-0000.log"))
    assert "with an explicit deny in a resource-based policy" in message
    # The bucket's own account is denied too: a Deny applies to every principal it names.
    owner = fresh_sandbox.aws_for("owner").client("s3")
    _denied(lambda: owner.get_object(Bucket=SHARED_BUCKET, Key="logs/2026/11/01/part-0000.log"))


def test_reading_an_sse_kms_object_needs_the_key_policy(fresh_sandbox: SandboxState) -> None:
    kms_owner = fresh_sandbox.aws_for("owner").client("kms")
    key = kms_owner.describe_key(KeyId=KMS_KEY_ALIAS)["KeyMetadata"]
    decrypt = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key["Arn"]}
    _all_layers_read(
        fresh_sandbox,
        KMS_BUCKET,
        [{"Effect": "Allow", "Action": READ, "Resource": _bucket_arns(KMS_BUCKET)}, decrypt],
    )
    # MLSpace's boundary allows kms:Decrypt on MLSpace's own key only, and its 140 free characters hold the
    # bucket or the key ARN, not both: this admin runs a boundary of their own (MLSpace's
    # PERMISSIONS_BOUNDARY_POLICY_NAME), MLSpace's without its Bedrock statement, and the key joins the
    # statement that allows MLSpace's key.
    own = _boundary(fresh_sandbox)
    own["Statement"] = [s for s in own["Statement"] if not str(s["Action"]).count("bedrock:")]
    boundary = with_ceiling(
        own,
        [GrantedBucket(READABLE_BUCKET, PARTNER_ACCOUNT), GrantedBucket(KMS_BUCKET, PARTNER_ACCOUNT)],
        home_account=MLSPACE_ACCOUNT,
    )
    mlspace_kms = next(s for s in boundary["Statement"] if "kms:Decrypt" in s["Action"])
    mlspace_kms["Resource"] = [*mlspace_kms["Resource"], key["Arn"]]
    _put_boundary(fresh_sandbox, boundary)
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")
    assert s3.list_objects_v2(Bucket=KMS_BUCKET)["KeyCount"] == 2  # listing needs no key
    key_name = "datasets/encrypted/README.txt"
    message = _denied(lambda: s3.get_object(Bucket=KMS_BUCKET, Key=key_name))
    assert f'kms:Decrypt on resource: "{key["Arn"]}"' in message
    assert "because no resource-based policy allows the kms:Decrypt action" in message
    policy = json.loads(kms_owner.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    policy["Statement"].append(
        {
            "Sid": "MLSpaceDecryptViaS3",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{MLSPACE_ACCOUNT}:root"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": f"s3.{fresh_sandbox.region}.amazonaws.com"}},
        }
    )
    kms_owner.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    assert s3.get_object(Bucket=KMS_BUCKET, Key=key_name)["Body"].read().startswith(b"Encrypted")
    # The key policy allows Decrypt only through S3: the key itself stays out of alice's direct reach.
    kms_alice = fresh_sandbox.aws_for("alice@demo").client("kms")
    assert "kms:DescribeKey" in _denied(lambda: kms_alice.describe_key(KeyId=key["Arn"]))


def test_the_bucket_owner_reads_its_own_encrypted_objects(sandbox: SandboxState) -> None:
    s3 = sandbox.aws_for("owner").client("s3")
    body = s3.get_object(Bucket=KMS_BUCKET, Key="datasets/encrypted/README.txt")["Body"].read()
    assert body.startswith(b"Encrypted")


def test_delete_objects_is_decided_per_key(fresh_sandbox: SandboxState) -> None:
    data = f"mlspace-data-{MLSPACE_ACCOUNT}"
    s3 = fresh_sandbox.aws_for("alice@demo").client("s3")
    s3.put_object(Bucket=data, Key="private/alice/a.txt", Body=b"a")
    deleted = s3.delete_objects(Bucket=data, Delete={"Objects": [{"Key": "private/alice/a.txt"}]})
    assert [d["Key"] for d in deleted.get("Deleted", [])] == ["private/alice/a.txt"]
    refused = s3.delete_objects(Bucket=data, Delete={"Objects": [{"Key": "private/bob/scratch.txt"}]})
    assert [e["Code"] for e in refused.get("Errors", [])] == ["AccessDenied"]
    assert s3.get_object  # bob's object is still there, read as the admin
    admin = fresh_sandbox.aws_for("admin").client("s3")
    assert admin.get_object(Bucket=data, Key="private/bob/scratch.txt")["Body"].read()


def test_an_identity_grant_alone_leaves_the_check_denied(fresh_sandbox: SandboxState) -> None:
    """The issue's acceptance case: a prefix grant in alice's identity policy only; the bucket policy and the
    boundary still block, so ``s3access check`` exits 3 (denied by probe)."""
    bucket_arn, _ = _bucket_arns(SHARED_BUCKET)
    _grant_identity(
        fresh_sandbox,
        "alice-datasets",
        [
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": ["datasets/*"]}},
            },
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/datasets/*"},
        ],
    )
    environment = fresh_sandbox.process_environment("alice@demo", {"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    done = subprocess.run(
        [S3ACCESS, "check", f"{SHARED_BUCKET}/datasets/", "--need", "read", "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["capabilities"]["read"]["verdict"] == "denied"


def test_actions_without_a_resource_are_decided_on_star(sandbox: SandboxState) -> None:
    """ListAllMyBuckets and kms:ListKeys name no resource: decided on "*" by the caller's own policies
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html). MLSpace's
    notebooks have neither; the admin has both."""
    alice = sandbox.aws_for("alice@demo")
    assert 'on resource: "*"' in _denied(lambda: alice.client("s3").list_buckets())
    assert "kms:ListKeys" in _denied(lambda: alice.client("kms").list_keys())
    admin = sandbox.aws_for("admin")
    assert f"mlspace-data-{MLSPACE_ACCOUNT}" in {
        b["Name"] for b in admin.client("s3").list_buckets()["Buckets"]
    }
    assert "Keys" in admin.client("kms").list_keys()
