"""The builders' documents equal what a real MLSpace (v1.6.10) deploys, statement for statement.

The reference files are MLSpace's ``iamConstruct.ts`` synthesized by CDK (account 111111111111, us-east-1 and
us-isob-east-1, the reference's stand-in key, subnets and security group); see their README.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.core.ceiling import GrantedBucket, bucket_arns, with_ceiling
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME
from mlspace_s3magic.sandbox import mlspace_policies as mp
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import PARTNER_ACCOUNT, READABLE_BUCKET

# A copy of the team's reference (shared/mlspace-reference), kept with the tests so that they always run.
REFERENCE = Path(__file__).with_name("mlspace-reference")
ACCOUNT = "111111111111"
COMMERCIAL: dict[str, Any] = {
    "partition": "aws",
    "region": "us-east-1",
    "account": ACCOUNT,
    "data_bucket": f"mlspace-data-{ACCOUNT}",
}
# us-isob-east-1 has two private subnets in the reference deployment.
ISOB: dict[str, Any] = {
    "partition": mp.partition_for_region("us-isob-east-1"),
    "region": "us-isob-east-1",
    "account": ACCOUNT,
    "data_bucket": f"mlspace-data-{ACCOUNT}",
    "private_subnet_ids": mp.DEFAULT_PRIVATE_SUBNET_IDS[:2],
}

Builder = Callable[..., dict[str, Any]]
CASES: list[tuple[str, Builder, dict[str, Any], int, int]] = [
    ("boundary-commercial.json", mp.permissions_boundary, COMMERCIAL, 18, 6004),
    ("notebook-policy-commercial.json", mp.notebook_policy, COMMERCIAL, 14, 5389),
    ("boundary-us-isob-east-1.json", mp.permissions_boundary, ISOB, 17, 5616),
    ("notebook-policy-us-isob-east-1.json", mp.notebook_policy, ISOB, 13, 5162),
    ("notebook-policy-shared-role.json", mp.shared_role_notebook_policy, COMMERCIAL, 14, 5247),
]


def _reference(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REFERENCE / name).read_text())
    return document


def test_every_reference_file_is_covered() -> None:
    assert {path.name for path in REFERENCE.glob("*.json")} == {case[0] for case in CASES}


@pytest.mark.parametrize(
    ("name", "builder", "arguments", "statements", "size"), CASES, ids=[c[0] for c in CASES]
)
def test_builder_equals_reference_statement_for_statement(
    name: str, builder: Builder, arguments: dict[str, Any], statements: int, size: int
) -> None:
    built = builder(**arguments)
    reference = _reference(name)
    assert built["Version"] == reference["Version"]
    assert len(built["Statement"]) == len(reference["Statement"]) == statements
    for index, (ours, theirs) in enumerate(zip(built["Statement"], reference["Statement"], strict=True)):
        assert ours == theirs, f"{name} statement {index}"
    assert built == reference


@pytest.mark.parametrize(
    ("name", "builder", "arguments", "statements", "size"), CASES, ids=[c[0] for c in CASES]
)
def test_builder_size_is_iams_count_of_the_reference(
    name: str, builder: Builder, arguments: dict[str, Any], statements: int, size: int
) -> None:
    assert mp.policy_size(builder(**arguments)) == mp.policy_size(_reference(name)) == size


def test_boundary_room_matches_the_deployed_boundary() -> None:
    assert mp.boundary_room(**COMMERCIAL) == mp.MANAGED_POLICY_MAX_CHARS - 6004 == 140
    assert mp.managed_policy_room(_reference("boundary-commercial.json")) == 140


def _deployed(sandbox: SandboxState, name: str) -> dict[str, Any]:
    iam = sandbox.aws_for("admin").client("iam")
    arn = f"arn:aws:iam::{ACCOUNT}:policy/{name}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def test_the_sandbox_deploys_mlspaces_documents(sandbox: SandboxState) -> None:
    """What the running sandbox holds in IAM: MLSpace's notebook policy as is, and MLSpace's boundary with
    one change, the seeded grant's bucket in MLSpace's S3 read statement (76 of the 140 free characters)."""
    assert _deployed(sandbox, mp.NOTEBOOK_POLICY_NAME) == _reference("notebook-policy-commercial.json")
    boundary = _deployed(sandbox, BOUNDARY_POLICY_NAME)
    reference = _reference("boundary-commercial.json")
    assert (len(boundary["Statement"]), mp.policy_size(boundary)) == (18, 6004 + 76)
    seeded = GrantedBucket(READABLE_BUCKET, PARTNER_ACCOUNT)
    assert with_ceiling(boundary, [], previous=[seeded], home_account=ACCOUNT) == reference
    changed = [
        index
        for index, statement in enumerate(boundary["Statement"])
        if statement not in reference["Statement"]
    ]
    assert [boundary["Statement"][index]["Resource"][-2:] for index in changed] == [
        list(bucket_arns(READABLE_BUCKET))
    ]
