"""The MLSpace documents the sandbox deploys: names, limits, and what they do and do not reach.

The little evaluator below only matches Action/Resource wildcards (and ``StringLike`` when a context is
given); that is enough to prove which prefixes and buckets a document can touch at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, TypedDict

import pytest

from mlspace_s3magic.sandbox import mlspace_policies as mp

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT = "123456789012"
DATA_BUCKET = f"mlspace-data-{ACCOUNT}"


class _Where(TypedDict):
    partition: str
    region: str
    account: str


class _WhereWithBucket(_Where):
    data_bucket: str


BASE = _Where(partition=PARTITION, region=REGION, account=ACCOUNT)
WITH_BUCKET = _WhereWithBucket(partition=PARTITION, region=REGION, account=ACCOUNT, data_bucket=DATA_BUCKET)
EXTERNAL_BUCKET_ARN = "arn:aws:s3:::BucketToBeShared"


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """True only when every condition is a ``StringLike`` we can check against ``context``."""
    for operator, operands in statement.get("Condition", {}).items():
        if operator != "StringLike":
            return False
        for key, patterns in operands.items():
            if key not in context or not any(fnmatchcase(context[key], p) for p in _as_list(patterns)):
                return False
    return True


def allows(
    document: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None
) -> bool:
    """Whether an Allow statement covers ``action`` on ``resource``.

    With ``context=None`` conditions are ignored, giving the most the document could ever allow (the safe
    reading for "never reaches"); with a context, conditions must be satisfiable from it.
    """
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatchcase(action.lower(), a.lower()) for a in _as_list(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in _as_list(statement["Resource"])):
            continue
        if context is None or _conditions_hold(statement, context):
            return True
    return False


def _object_arn(key: str, bucket: str = DATA_BUCKET) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _all_documents() -> list[tuple[str, dict[str, Any], int]]:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{mp.user_role_name('demo', 'alice')}"
    return [
        ("permissions_boundary", mp.permissions_boundary(**WITH_BUCKET), mp.MANAGED_POLICY_MAX_CHARS),
        ("project_policy", mp.project_policy(**WITH_BUCKET, project="demo"), mp.MANAGED_POLICY_MAX_CHARS),
        ("user_policy", mp.user_policy(**WITH_BUCKET, username="alice"), mp.MANAGED_POLICY_MAX_CHARS),
        (
            "user_policy_groups",
            mp.user_policy(**WITH_BUCKET, username="alice", group_datasets=["g1", "g2"]),
            mp.MANAGED_POLICY_MAX_CHARS,
        ),
        ("notebook_policy", mp.notebook_policy(**WITH_BUCKET), mp.MANAGED_POLICY_MAX_CHARS),
        (
            "notebook_policy_unmanaged",
            mp.notebook_policy(**WITH_BUCKET, manage_iam_roles=False),
            mp.MANAGED_POLICY_MAX_CHARS,
        ),
        (
            "shared_role_notebook_policy",
            mp.shared_role_notebook_policy(**WITH_BUCKET),
            mp.MANAGED_POLICY_MAX_CHARS,
        ),
        ("kms_constraint", mp.kms_instance_constraint_policy(), mp.MANAGED_POLICY_MAX_CHARS),
        (
            "endpoint_constraint",
            mp.endpoint_instance_constraint_policy(**BASE, instance_types=["ml.m5.large"]),
            mp.MANAGED_POLICY_MAX_CHARS,
        ),
        ("job_constraint", mp.job_instance_constraint_policy(**BASE), mp.MANAGED_POLICY_MAX_CHARS),
        ("app_policy", mp.app_policy(**BASE), mp.MANAGED_POLICY_MAX_CHARS),
        (
            "trust_policy",
            mp.user_role_trust_policy(partition=PARTITION, account=ACCOUNT),
            mp.TRUST_POLICY_MAX_CHARS,
        ),
        ("pass_role_inline", mp.pass_role_inline_policy(role_arn=role_arn), mp.INLINE_ROLE_POLICY_MAX_CHARS),
    ]


# ------------------------------------------------------------------------------------------ role name


def test_role_name_short_project_is_prefix_plus_hash_cut_to_63() -> None:
    digest = hashlib.sha256(b"alice@example.com").hexdigest()
    name = mp.user_role_name("demo", "alice@example.com")
    assert name == ("MLSpace-demo-" + digest)[:63]
    assert len(name) == 63


def test_role_name_long_project_keeps_project_and_shortens_hash() -> None:
    project = "p" * 40
    prefix = f"MLSpace-{project}-"
    name = mp.user_role_name(project, "bob")
    assert name.startswith(prefix)
    assert name[len(prefix) :] == hashlib.sha256(b"bob").hexdigest()[: 63 - len(prefix)]
    assert len(name) == 63


def test_role_name_prefix_of_63_leaves_no_hash() -> None:
    project = "x" * 54  # "MLSpace-" + 54 + "-" == 63 characters
    assert mp.user_role_name(project, "bob") == f"MLSpace-{project}-"


def test_role_name_too_long_is_refused_like_mlspace() -> None:
    # MLSpace's own test project: its prefix is past 64, the negative slice yields 127 characters.
    with pytest.raises(ValueError, match=r"\(127 characters\) is over the 64 character limit"):
        mp.user_role_name("VeryLongProjectNameThatWillCauseThePolicyNameToGoOverTheLimit", "jdoe")


def test_role_name_differs_per_user_and_is_stable() -> None:
    assert mp.user_role_name("demo", "alice") != mp.user_role_name("demo", "bob")
    assert mp.user_role_name("demo", "alice") == mp.user_role_name("demo", "alice")


# ------------------------------------------------------------------------------------- all documents


@pytest.mark.parametrize(
    ("name", "document", "limit"), _all_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_document_is_valid_json_under_iam_size_limit(name: str, document: dict[str, Any], limit: int) -> None:
    assert json.loads(json.dumps(document)) == document
    assert document["Version"] == "2012-10-17"
    assert document["Statement"], name
    for statement in document["Statement"]:
        assert statement["Effect"] in {"Allow", "Deny"}
        assert "Action" in statement
        assert "Resource" in statement or "Principal" in statement
    assert mp.policy_size(document) <= limit, f"{name} is {mp.policy_size(document)} characters"


def test_policy_size_ignores_whitespace() -> None:
    assert mp.policy_size({"a": "b c"}) == len('{"a":"bc"}')


# -------------------------------------------------------------------------------------- user policy


def test_user_policy_reaches_own_private_prefix_only() -> None:
    policy = mp.user_policy(**WITH_BUCKET, username="alice")
    assert allows(policy, "s3:GetObject", _object_arn("private/alice/data.csv"))
    assert not allows(policy, "s3:GetObject", _object_arn("private/bob/data.csv"))
    assert not allows(policy, "s3:GetObject", _object_arn("private/alice-other/data.csv"))
    assert not allows(policy, "s3:GetObject", _object_arn("project/demo/data.csv"))
    assert allows(policy, "s3:GetObject", _object_arn("global/shared.csv"))


def test_user_policy_lists_only_own_prefixes() -> None:
    policy = mp.user_policy(**WITH_BUCKET, username="alice")
    bucket = f"arn:aws:s3:::{DATA_BUCKET}"
    assert allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "private/alice/"})
    assert not allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "private/bob/"})


def test_user_policy_adds_group_datasets_to_objects_not_listing() -> None:
    policy = mp.user_policy(**WITH_BUCKET, username="alice", group_datasets=["team-a"])
    bucket = f"arn:aws:s3:::{DATA_BUCKET}"
    assert allows(policy, "s3:GetObject", _object_arn("group/team-a/x.csv"))
    assert not allows(policy, "s3:GetObject", _object_arn("group/team-b/x.csv"))
    assert not allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "group/team-a/"})


def test_user_and_project_policies_do_not_grant_get_role() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{mp.user_role_name('demo', 'alice')}"
    assert not allows(mp.user_policy(**WITH_BUCKET, username="alice"), "iam:GetRole", role_arn)
    assert not allows(mp.project_policy(**WITH_BUCKET, project="demo"), "iam:GetRole", role_arn)


# ----------------------------------------------------------------------------------- project policy


def test_project_policy_covers_its_project_prefix() -> None:
    policy = mp.project_policy(**WITH_BUCKET, project="demo")
    bucket = f"arn:aws:s3:::{DATA_BUCKET}"
    assert allows(policy, "s3:GetObject", _object_arn("project/demo/train.csv"))
    assert allows(policy, "s3:PutObject", _object_arn("project/demo/out/model.tar.gz"))
    assert not allows(policy, "s3:GetObject", _object_arn("project/other/train.csv"))
    assert allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "project/demo/"})
    assert not allows(policy, "s3:ListBucket", bucket, {"s3:prefix": "project/other/"})


# ------------------------------------------------------------------------------------------ boundary


def test_boundary_covers_the_data_bucket() -> None:
    boundary = mp.permissions_boundary(**WITH_BUCKET)
    bucket = f"arn:aws:s3:::{DATA_BUCKET}"
    assert allows(boundary, "s3:GetObject", _object_arn("private/alice/data.csv"))
    assert allows(boundary, "s3:PutObject", _object_arn("project/demo/data.csv"))
    assert allows(boundary, "s3:GetObject", _object_arn("group/team-a/data.csv"))
    assert allows(boundary, "s3:ListBucket", bucket, {"s3:prefix": "private/alice/"})
    assert not allows(boundary, "s3:GetObject", _object_arn("elsewhere/data.csv"))


@pytest.mark.parametrize("action", ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"])
@pytest.mark.parametrize("resource", [EXTERNAL_BUCKET_ARN, f"{EXTERNAL_BUCKET_ARN}/any/key.csv"])
def test_boundary_never_reaches_an_external_bucket(action: str, resource: str) -> None:
    assert not allows(mp.permissions_boundary(**WITH_BUCKET), action, resource)


def test_boundary_has_no_bedrock_wildcard_and_passes_roles_to_sagemaker_and_translate_only() -> None:
    boundary = mp.permissions_boundary(**WITH_BUCKET)
    assert not any("bedrock:*" in _as_list(s["Action"]) for s in boundary["Statement"])
    services = {
        service
        for s in boundary["Statement"]
        if "iam:PassRole" in _as_list(s["Action"])
        for service in _as_list(s["Condition"]["StringEquals"]["iam:PassedToService"])
    }
    assert services == {"sagemaker.amazonaws.com", "translate.amazonaws.com"}


def test_boundary_room_is_computed_from_the_document() -> None:
    boundary = mp.permissions_boundary(**WITH_BUCKET)
    assert mp.boundary_room(**WITH_BUCKET) == mp.MANAGED_POLICY_MAX_CHARS - mp.policy_size(boundary)
    assert mp.managed_policy_room(boundary) == mp.boundary_room(**WITH_BUCKET) > 0


def test_translate_follows_the_region() -> None:
    assert mp.translate_enabled("us-east-1") and mp.translate_enabled("us-gov-west-1")
    assert not mp.translate_enabled("us-isob-east-1")
    assert mp.partition_for_region("us-isob-east-1") == "aws-iso-b"
    assert mp.partition_for_region("us-gov-west-1") == "aws-us-gov"
    assert mp.partition_for_region("eu-west-1") == "aws"


def test_project_and_user_deny_39_actions_without_their_tags() -> None:
    for document, tag, value in (
        (mp.project_policy(**WITH_BUCKET, project="demo"), "project", "demo"),
        (mp.user_policy(**WITH_BUCKET, username="alice"), "user", "alice"),
    ):
        deny = [s for s in document["Statement"] if s["Effect"] == "Deny" and s["Resource"] == "*"]
        assert len(deny) == 1
        assert len(deny[0]["Action"]) == 39
        assert deny[0]["Condition"] == {
            "StringNotEqualsIgnoreCase": {f"aws:RequestTag/{tag}": value, f"aws:ResourceTag/{tag}": value}
        }


def test_prefix_is_configurable() -> None:
    assert mp.user_role_name("demo", "alice", prefix="Acme").startswith("Acme-demo-")
    assert mp.project_policy_name("demo", prefix="Acme") == "Acme-project-demo"
    assert mp.user_policy_name("alice", prefix="Acme") == "Acme-user-alice"
    names = mp.user_role_managed_policy_names("demo", "alice", prefix="Acme")
    assert names[-2:] == ["Acme-project-demo", "Acme-user-alice"]
    assert "Acme-kms-instance-constraint-policy" in names
    boundary = mp.permissions_boundary(**WITH_BUCKET, prefix="Acme")
    assert allows(boundary, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/Acme-demo-x")
    assert not allows(boundary, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/MLSpace-demo-x")


def test_shared_role_tags_name_no_person_or_project() -> None:
    assert mp.shared_role_tags() == [
        {"Key": "user", "Value": "MLSpaceApplication"},
        {"Key": "project", "Value": "MLSpaceInfrastructure"},
    ]
    assert mp.notebook_role_managed_policy_names(manage_iam_roles=False) == [
        "mlspace-notebook-policy",
        "MLSpace-kms-instance-constraint-policy",
    ]


def test_boundary_replaces_instance_denies_with_allows() -> None:
    boundary = mp.permissions_boundary(**WITH_BUCKET)
    assert all(s["Effect"] == "Allow" for s in boundary["Statement"])
    assert any(s["Effect"] == "Deny" for s in mp.notebook_policy(**WITH_BUCKET)["Statement"])


# ----------------------------------------------------------------------------- notebook and GetRole


def test_get_role_comes_from_notebook_policy_on_any_role() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{mp.user_role_name('demo', 'alice')}"
    assert allows(mp.notebook_policy(**WITH_BUCKET), "iam:GetRole", role_arn)
    assert allows(
        mp.notebook_policy(**WITH_BUCKET), "iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    )
    assert allows(mp.permissions_boundary(**WITH_BUCKET), "iam:GetRole", role_arn)


def test_notebook_policy_opens_data_bucket_only_without_managed_roles() -> None:
    key = _object_arn("private/bob/secret.csv")
    assert not allows(mp.notebook_policy(**WITH_BUCKET), "s3:GetObject", key)
    assert allows(mp.notebook_policy(**WITH_BUCKET, manage_iam_roles=False), "s3:GetObject", key)
    assert not allows(mp.notebook_policy(**WITH_BUCKET), "s3:GetObject", f"{EXTERNAL_BUCKET_ARN}/x")


def test_notebook_policy_reads_config_bucket_and_samples() -> None:
    policy = mp.notebook_policy(**WITH_BUCKET)
    assert allows(policy, "s3:GetObject", _object_arn("notebook-params.json", f"mlspace-config-{ACCOUNT}"))
    assert allows(policy, "s3:GetObject", _object_arn("global-read-only/examples/x.ipynb"))
    assert allows(policy, "s3:GetObject", "arn:aws:s3:::sagemaker-sample-files/datasets/x.csv")


# ------------------------------------------------------------------------------------ role assembly


def test_user_role_tags() -> None:
    assert mp.user_role_tags("demo", "alice") == [
        {"Key": "user", "Value": "alice"},
        {"Key": "project", "Value": "demo"},
        {"Key": "system", "Value": "MLSpace"},
        {"Key": "dynamic-user-role", "Value": "true"},
    ]
    assert mp.user_role_tags("demo", "alice", system_tag="Other")[2] == {"Key": "system", "Value": "Other"}


def test_user_role_trust_policy_trusts_sagemaker_only_by_default() -> None:
    trust = mp.user_role_trust_policy(partition=PARTITION, account=ACCOUNT)
    assert trust["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    relaxed = mp.user_role_trust_policy(partition=PARTITION, account=ACCOUNT, sandbox_assumable=True)
    assert {"AWS": f"arn:aws:iam::{ACCOUNT}:root"} in [s["Principal"] for s in relaxed["Statement"]]


def test_user_role_managed_policy_names() -> None:
    assert mp.user_role_managed_policy_names("demo", "alice") == [
        "mlspace-notebook-policy",
        "MLSpace-kms-instance-constraint-policy",
        "MLSpace-endpoint-instance-constraint",
        "MLSpace-job-instance-constraint",
        "MLSpace-project-demo",
        "MLSpace-user-alice",
    ]
    with_denied = mp.user_role_managed_policy_names("demo", "alice", app_denied_services=True)
    assert "MLSpace-app-denied-services" in with_denied


def test_pass_role_inline_policy_names_only_the_role_itself() -> None:
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{mp.user_role_name('demo', 'alice')}"
    policy = mp.pass_role_inline_policy(role_arn=role_arn)
    assert allows(policy, "iam:PassRole", role_arn)
    assert not allows(
        policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{mp.user_role_name('demo', 'bob')}"
    )


def test_condition_keys_the_sandbox_must_know_about() -> None:
    used: set[str] = set()
    for _, document, _ in _all_documents():
        used |= mp.condition_keys(document)
    assert used == {
        "s3:prefix",
        "aws:RequestTag/project",
        "aws:RequestTag/user",
        "aws:RequestTag/system",
        "aws:ResourceTag/project",
        "aws:ResourceTag/user",
        "aws:ResourceTag/system",
        "iam:PassedToService",
        "iam:PermissionsBoundary",
        "iam:PolicyARN",
        "iam:ResourceTag/system",
        "kms:GrantIsForAWSResource",
        "sagemaker:VpcSecurityGroupIds",
        "sagemaker:VpcSubnets",
        "sagemaker:VolumeKmsKey",
        "sagemaker:InstanceTypes",
        "sagemaker:DirectInternetAccess",
        "sagemaker:RootAccess",
    }
    assert not any(key.startswith("aws:PrincipalTag") for key in used)
