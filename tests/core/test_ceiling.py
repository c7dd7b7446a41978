"""The boundary's room shared by every grant (core/ceiling.py), on MLSpace's real commercial boundary.

A permissions boundary is a ceiling: an action is allowed only when an identity policy and the boundary both
allow it (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html), so what the
ceiling opens is judged with an identity policy that allows everything and a bucket policy that lets the
caller in. IAM counts a managed policy's size without whitespace, at most 6,144 characters
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.ceiling import (
    KEY_HOST_ACTIONS,
    CeilingDoesNotFit,
    GrantedBucket,
    GrantedKey,
    bucket_arns,
    is_ceiling_statement,
    with_ceiling,
)
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS, iam_size
from mlspace_s3magic.core.mlspace import user_role_name
from mlspace_s3magic.core.policy import Layer, PolicyLayers, Principal, Request, evaluate, parse_policy
from mlspace_s3magic.sandbox.mlspace_policies import permissions_boundary

MLSPACE = "111111111111"
PARTNER = "222222222222"
OTHER = "333333333333"
BOUNDARY = permissions_boundary(
    partition="aws", region="us-east-1", account=MLSPACE, data_bucket=f"mlspace-data-{MLSPACE}"
)
ALICE = Principal.from_arn(f"arn:aws:sts::{MLSPACE}:assumed-role/{user_role_name('demo', 'alice')}/SageMaker")
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _reaches(boundary: dict[str, Any], bucket: str, owner: str, action: str = "s3:GetObject") -> bool:
    """Whether the boundary lets an identity grant through for this bucket (the bucket policy lets in)."""
    resource = f"arn:aws:s3:::{bucket}" if action == "s3:ListBucket" else f"arn:aws:s3:::{bucket}/data/x.csv"
    bucket_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": MLSPACE}, "Action": "s3:*", "Resource": "*"}],
    }
    layers = PolicyLayers(
        identity=(parse_policy(ALLOW_ALL, Layer.IDENTITY),),
        boundary=parse_policy(boundary, Layer.BOUNDARY),
        resource=parse_policy(bucket_policy, Layer.RESOURCE),
    )
    return evaluate(Request(ALICE, action, resource, owner, {"s3:prefix": "data/"}), layers).allowed


def test_one_bucket_joins_mlspaces_read_statement_and_leaves_it_as_it_was() -> None:
    granted = [GrantedBucket("BucketToBeShared", PARTNER)]
    raised = with_ceiling(BOUNDARY, granted, home_account=MLSPACE)
    assert iam_size(raised) == iam_size(BOUNDARY) + 62 <= MANAGED_POLICY_MAX_CHARS
    assert len(raised["Statement"]) == len(BOUNDARY["Statement"])
    assert _reaches(raised, "BucketToBeShared", PARTNER)
    assert _reaches(raised, "BucketToBeShared", PARTNER, "s3:ListBucket")
    assert not _reaches(raised, "BucketToBeShared", PARTNER, "s3:PutObject")  # a read grant: no write room
    assert not _reaches(raised, "partner-other", PARTNER)
    assert with_ceiling(raised, [], previous=granted, home_account=MLSPACE) == BOUNDARY


def test_a_write_grant_adds_the_objects_to_mlspaces_object_statement() -> None:
    raised = with_ceiling(
        BOUNDARY, [GrantedBucket("BucketToBeShared", PARTNER, write=True)], home_account=MLSPACE
    )
    assert _reaches(raised, "BucketToBeShared", PARTNER, "s3:PutObject")
    assert not _reaches(raised, "BucketToBeShared", PARTNER, "s3:PutBucketPolicy")


def test_ten_buckets_of_one_partner_fit_and_revoking_one_keeps_the_others() -> None:
    buckets = [
        GrantedBucket(f"partner-dataset-{index:02d}", PARTNER, write=index % 2 == 0) for index in range(10)
    ]
    raised = with_ceiling(BOUNDARY, buckets, home_account=MLSPACE)
    assert iam_size(raised) <= MANAGED_POLICY_MAX_CHARS
    (ours,) = [statement for statement in raised["Statement"] if is_ceiling_statement(statement)]
    assert ours["Condition"] == {"StringEquals": {"aws:ResourceAccount": PARTNER}}
    for revoked in buckets:
        remaining = [bucket for bucket in buckets if bucket != revoked]
        lowered = with_ceiling(raised, remaining, previous=buckets, home_account=MLSPACE)
        assert iam_size(lowered) <= MANAGED_POLICY_MAX_CHARS
        assert all(_reaches(lowered, str(bucket.bucket), PARTNER) for bucket in remaining)
    # The ceiling never opens another account's buckets, nor MLSpace's data bucket beyond its prefixes.
    assert not _reaches(raised, "someone-else", OTHER)
    assert not _reaches(raised, f"mlspace-data-{MLSPACE}", MLSPACE, "s3:ListBucket")
    assert with_ceiling(raised, [], previous=buckets, home_account=MLSPACE) == BOUNDARY


def test_a_grant_that_cannot_fit_is_refused_with_the_figures() -> None:
    granted = [GrantedBucket("partner-dataset", PARTNER), GrantedBucket("another-dataset-bucket", OTHER)]
    with pytest.raises(CeilingDoesNotFit) as refused:
        with_ceiling(
            BOUNDARY,
            [*granted, GrantedBucket("third-dataset-bucket", OTHER, write=True)],
            home_account=MLSPACE,
        )
    message = str(refused.value)
    assert "6,004 of IAM's 6,144 characters (140 free)" in message
    assert "PERMISSIONS_BOUNDARY_POLICY_NAME" in message
    assert iam_size(refused.value.smallest) > MANAGED_POLICY_MAX_CHARS


def test_the_per_account_form_is_never_used_for_mlspaces_own_account() -> None:
    many = [GrantedBucket(f"mlspace-team-bucket-{index}", MLSPACE) for index in range(4)]
    with pytest.raises(CeilingDoesNotFit, match="not used for MLSpace's own account"):
        with_ceiling(BOUNDARY, many, home_account=MLSPACE)


def test_mlspaces_own_entries_keep_their_place_as_our_buckets_come_and_go() -> None:
    """Our ARNs go after MLSpace's own (sagemaker-sample-files and the rest) and leave them untouched."""
    granted = [GrantedBucket("BucketToBeShared", PARTNER)]
    raised = with_ceiling(BOUNDARY, granted, home_account=MLSPACE)
    host = next(s for s in raised["Statement"] if s["Action"] == ["s3:GetObject", "s3:ListBucket"])
    assert list(bucket_arns("sagemaker-sample-files")) == host["Resource"][3:5]
    assert (
        with_ceiling(raised, [], previous=granted, home_account=MLSPACE)["Statement"] == BOUNDARY["Statement"]
    )


# -- KMS keys: a grant on an SSE-KMS bucket needs kms:Decrypt (reading) and kms:GenerateDataKey (writing)
# through S3, which the boundary caps like any action
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).

PARTNER_KEY = f"arn:aws:kms:us-west-2:{PARTNER}:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa"
OTHER_KEY = f"arn:aws:kms:us-west-2:{PARTNER}:key/3333cccc-33cc-33cc-33cc-333333cccccc"
MLSPACE_KEY = f"arn:aws:kms:us-east-1:{MLSPACE}:key/01234567-89ab-cdef-0123-456789abcdef"


def _key_reaches(boundary: dict[str, Any], key: str, action: str = "kms:Decrypt") -> bool:
    """Whether the boundary lets an identity grant of the key through (the key policy lets in)."""
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": MLSPACE}, "Action": "kms:*", "Resource": "*"}],
    }
    layers = PolicyLayers(
        identity=(parse_policy(ALLOW_ALL, Layer.IDENTITY),),
        boundary=parse_policy(boundary, Layer.BOUNDARY),
        resource=parse_policy(key_policy, Layer.RESOURCE),
    )
    return evaluate(Request(ALICE, action, key, key.split(":")[4], {}), layers).allowed


def _key_host(boundary: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in boundary["Statement"] if s["Action"] == list(KEY_HOST_ACTIONS))


def test_a_key_joins_mlspaces_kms_statement_beside_the_bucket_and_leaves_with_it() -> None:
    granted = [GrantedBucket("partner-data", PARTNER), GrantedKey(PARTNER, PARTNER_KEY)]
    raised = with_ceiling(BOUNDARY, granted, home_account=MLSPACE)
    assert iam_size(raised) == iam_size(BOUNDARY) + 54 + len(PARTNER_KEY) + 3 <= MANAGED_POLICY_MAX_CHARS
    assert _key_host(raised)["Resource"][-1] == PARTNER_KEY
    assert len(raised["Statement"]) == len(BOUNDARY["Statement"])
    assert _key_reaches(raised, PARTNER_KEY) and _key_reaches(raised, PARTNER_KEY, "kms:GenerateDataKey")
    assert not _key_reaches(BOUNDARY, PARTNER_KEY)
    assert not _key_reaches(raised, OTHER_KEY)
    assert with_ceiling(raised, [], previous=granted, home_account=MLSPACE) == BOUNDARY


def test_mlspaces_own_key_is_never_taken_out_even_when_a_revoked_grant_named_it() -> None:
    revoked = [GrantedKey(MLSPACE, MLSPACE_KEY)]
    assert with_ceiling(BOUNDARY, [], previous=revoked, home_account=MLSPACE) == BOUNDARY
    assert _key_reaches(BOUNDARY, MLSPACE_KEY)


def test_without_room_for_the_keys_arn_every_key_of_its_account_is_let_through() -> None:
    """A longer bucket name leaves no room for the key's ARN: the boundary, only a ceiling, lets through
    every key of the partner (the key policies and the grant policy still decide), never MLSpace's own."""
    granted = [GrantedBucket("partner-kms-encrypted", PARTNER), GrantedKey(PARTNER, PARTNER_KEY)]
    raised = with_ceiling(BOUNDARY, granted, home_account=MLSPACE)
    assert iam_size(raised) <= MANAGED_POLICY_MAX_CHARS
    assert _key_host(raised)["Resource"][-1] == f"arn:*:kms:*:{PARTNER}:key/*"
    assert _key_reaches(raised, PARTNER_KEY) and _key_reaches(raised, OTHER_KEY)
    assert not _key_reaches(raised, f"arn:aws:kms:us-west-2:{OTHER}:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa")
    assert with_ceiling(raised, [], previous=granted, home_account=MLSPACE) == BOUNDARY
    with pytest.raises(CeilingDoesNotFit, match="not used for MLSpace's own account"):
        same = f"arn:aws:kms:us-west-2:{MLSPACE}:key/2222bbbb-22bb-22bb-22bb-222222bbbbbb"
        with_ceiling(
            BOUNDARY,
            [GrantedBucket("demo-team-data", MLSPACE, write=True), GrantedKey(MLSPACE, same)],
            home_account=MLSPACE,
        )


def test_revoking_one_of_two_keys_keeps_the_other() -> None:
    first, second = GrantedKey(PARTNER, PARTNER_KEY), GrantedKey(PARTNER, OTHER_KEY)
    both = with_ceiling(BOUNDARY, [first, second], home_account=MLSPACE)
    one = with_ceiling(both, [second], previous=[first, second], home_account=MLSPACE)
    assert _key_reaches(one, OTHER_KEY) and not _key_reaches(one, PARTNER_KEY)


def test_without_mlspaces_kms_statement_keys_go_into_a_statement_of_ours() -> None:
    bare = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    raised = with_ceiling(bare, [GrantedKey(PARTNER, PARTNER_KEY)], home_account=MLSPACE)
    (ours,) = [statement for statement in raised["Statement"] if is_ceiling_statement(statement)]
    assert ours == {
        "Effect": "Allow",
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": [PARTNER_KEY],
    }
    assert with_ceiling(raised, [], previous=[GrantedKey(PARTNER, PARTNER_KEY)], home_account=MLSPACE) == bare
