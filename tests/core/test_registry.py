"""Candidates: the admin's registry, bucket names in readable policies, the user's own list, merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layers import CallerLayers, FetchedPolicy, Unreadable
from mlspace_s3magic.core.registry import (
    RegistryError,
    buckets_named_in,
    candidates,
    load_registry_file,
    save_registry_file,
)

ALICE = Identity(
    arn="arn:aws:sts::111111111111:assumed-role/MLSpace-demo-x/SageMaker",
    account="111111111111",
    principal_type="assumed-role",
    role="MLSpace-demo-x",
    role_arn=None,
    session="SageMaker",
    user="alice",
    project="demo",
    boundary=None,
    user_scoped=True,
)


def _policy(label: str, *resources: str, effect: str = "Allow") -> FetchedPolicy:
    statement = {"Effect": effect, "Action": "s3:GetObject", "Resource": list(resources)}
    return FetchedPolicy(label, {"Version": "2012-10-17", "Statement": [statement]})


def test_a_missing_registry_is_empty(tmp_path: Path) -> None:
    assert load_registry_file(tmp_path / "none.json") == []


def test_registry_in_both_shapes(tmp_path: Path) -> None:
    entry = {
        "bucket": "partner-data",
        "owner_account": "222222222222",
        "region": "eu-west-1",
        "description": "x",
    }
    (tmp_path / "a.json").write_text(json.dumps({"buckets": [entry]}))
    (tmp_path / "b.json").write_text(json.dumps([entry]))
    expected = [
        SharedBucket(bucket="partner-data", owner_account="222222222222", region="eu-west-1", description="x")
    ]
    assert load_registry_file(tmp_path / "a.json") == expected == load_registry_file(tmp_path / "b.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON"),
        ('{"buckets": {}}', 'must hold {"buckets": [...]}'),
        ('[{"owner_account": "1"}]', 'buckets[0]: each entry needs a "bucket" name'),
        ('[{"bucket": "ok-bucket", "owner_account": "12"}]', "owner_account must be a 12-digit account id"),
        ('[{"bucket": "ok-bucket"}, {"bucket": "bad bucket"}]', "buckets[1]: 'bad bucket' is not a valid"),
        ('[{"bucket": "ok-bucket", "region": "Mars"}]', "buckets[0]: region: String should match pattern"),
    ],
)
def test_bad_registries_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "registry.json"
    path.write_text(content)
    with pytest.raises(RegistryError) as error:
        load_registry_file(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_the_file_holds_all_but_the_owner_s_role_in_the_same_shape(tmp_path: Path) -> None:
    shared = SharedBucket(
        bucket="partner-data",
        owner_account="222222222222",
        region="eu-west-1",
        description="x",
        owner_role_arn="arn:aws:iam::222222222222:role/Editor",
    )
    path = tmp_path / "registry.json"
    save_registry_file(path, [shared])
    listed = {
        "bucket": "partner-data",
        "owner_account": "222222222222",
        "region": "eu-west-1",
        "description": "x",
    }
    (written,) = json.loads(path.read_text())["buckets"]
    assert list(written.items()) == list(listed.items())  # the same keys, in the same order
    assert load_registry_file(path) == [shared.model_copy(update={"owner_role_arn": None})]


def test_a_lone_statement_object_names_its_buckets() -> None:
    lone = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::lone-bucket/*"}
    assert buckets_named_in(FetchedPolicy("p", {"Statement": lone})) == ["lone-bucket"]


def test_bucket_names_come_only_from_concrete_allows() -> None:
    policy = _policy(
        "p",
        "arn:aws:s3:::named-bucket",
        "arn:aws:s3:::named-bucket/*",
        "arn:aws:s3:::other/prefix/*",
        "arn:aws:s3:::wild-*",
        "arn:aws:s3:::${aws:username}-home/*",
        "arn:aws:s3:::a?c",
        "*",
        "arn:aws:kms:us-east-1:1:key/k",
    )
    assert buckets_named_in(policy) == ["named-bucket", "other"]
    assert buckets_named_in(_policy("d", "arn:aws:s3:::denied-bucket", effect="Deny")) == []


def test_candidates_merge_every_source_once() -> None:
    caller = CallerLayers(
        identity_policies=(_policy("MLSpace-user-alice", "arn:aws:s3:::partner-shared-readonly/*"),),
        boundary=_policy(
            "boundary", "arn:aws:s3:::mlspace-data-111111111111/*", "arn:aws:s3:::partner-shared-readonly"
        ),
    )
    registry = [
        SharedBucket(
            bucket="partner-shared-readonly",
            owner_account="222222222222",
            region="us-east-1",
            description="reference",
        ),
        SharedBucket(bucket="BucketToBeShared", owner_account="222222222222"),
    ]
    found = {c.bucket: c for c in candidates(ALICE, caller, registry, ["my-scratch", "BucketToBeShared"])}
    assert list(found) == [
        "mlspace-data-111111111111",
        "partner-shared-readonly",
        "BucketToBeShared",
        "my-scratch",
    ]
    assert found["mlspace-data-111111111111"].mlspace_data
    assert found["mlspace-data-111111111111"].sources == ("mlspace", "policy:boundary")
    assert found["partner-shared-readonly"].sources == (
        "registry",
        "policy:MLSpace-user-alice",
        "policy:boundary",
    )
    assert found["partner-shared-readonly"].description == "reference"
    assert found["BucketToBeShared"].sources == ("registry", "config")
    assert found["my-scratch"].source == "config"
    assert not found["my-scratch"].mlspace_data


def test_unreadable_policies_contribute_nothing() -> None:
    caller = CallerLayers(Unreadable("identity", "denied"), Unreadable("boundary", "denied"))
    assert [c.bucket for c in candidates(ALICE, caller, [], [])] == ["mlspace-data-111111111111"]
