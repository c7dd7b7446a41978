"""Wildcard matching as IAM documents it: actions ignore case; resources and ARNs keep it, per segment."""

from __future__ import annotations

import pytest

from mlspace_s3magic.core.policy.matching import action_matches, arn_like, resource_matches, string_like
from mlspace_s3magic.core.policy.variables import Chunks


def policy_text(text: str) -> Chunks:
    return ((text, True),)


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:GetObject", "s3:GetObject", True),
        ("S3:GETOBJECT", "s3:GetObject", True),
        ("s3:getobject", "S3:GetObject", True),
        ("s3:Get*", "s3:GetObjectVersion", True),
        ("s3:*Object", "s3:PutObject", True),
        ("s3:?etObject", "s3:GetObject", True),
        ("s3:?etObject", "s3:GetObjectAcl", False),
        ("*", "kms:Decrypt", True),
        ("s3:*", "s3express:CreateSession", False),
        ("s3:List*", "s3:GetObject", False),
        ("s3:ListBucket", "s3:ListBucketVersions", False),
    ],
)
def test_action_matching(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", "arn:aws:s3:::anything/at/all", True),
        ("arn:aws:s3:::BucketToBeShared", "arn:aws:s3:::BucketToBeShared", True),
        ("arn:aws:s3:::buckettobeshared", "arn:aws:s3:::BucketToBeShared", False),
        ("arn:aws:s3:::buckettobeshared/*", "arn:aws:s3:::BucketToBeShared/a.csv", False),
        ("arn:aws:s3:::BucketToBeShared/*", "arn:aws:s3:::BucketToBeShared/datasets/iris/iris.csv", True),
        ("arn:aws:s3:::BucketToBeShared/*", "arn:aws:s3:::BucketToBeShared", False),
        ("arn:aws:s3:::BucketToBeShared", "arn:aws:s3:::BucketToBeShared/a.csv", False),
        ("arn:aws:s3:::BucketToBeShared*", "arn:aws:s3:::BucketToBeShared/a.csv", True),
        ("arn:aws:s3:::b/key:with:colons/*", "arn:aws:s3:::b/key:with:colons/x", True),
        ("arn:aws:s3:::b/*", "arn:aws:s3:::b/a:b:c", True),
        ("arn:aws:s3:::b/file?.csv", "arn:aws:s3:::b/file1.csv", True),
        ("arn:aws:s3:::b/file?.csv", "arn:aws:s3:::b/file10.csv", False),
        ("arn:aws:s3:::mlspace-data-*/project/demo/*", "arn:aws:s3:::mlspace-data-1/project/demo/x", True),
        ("arn:aws:kms:us-*-1:111111111111:key/*", "arn:aws:kms:us-east-1:111111111111:key/k", True),
        ("arn:aws:kms:us-*1:111111111111:key/*", "arn:aws:kms:us-east-1:111111111111:key/k", True),
        ("arn:aws:kms:*:111111111111:key/*", "arn:aws:kms:us-east-1:111111111111:key/k", True),
        ("arn:aws:s3:*", "arn:aws:s3:::bucket/key", True),
        ("arn:aws:kms:u*t-1:111111111111:key/k", "arn:aws:kms:us-east-1:111111111111:key/k", True),
        ("arn:aws:kms:u*t:111111111111:key/k", "arn:aws:kms:us:east:111111111111:key/k", False),
        ("arn:aws:kms:us-east-1:1?1111111111:key/k", "arn:aws:kms:us-east-1:111111111111:key/k", True),
    ],
)
def test_resource_matching(pattern: str, resource: str, expected: bool) -> None:
    assert resource_matches(policy_text(pattern), resource) is expected


def test_text_from_a_variable_is_literal_in_a_resource() -> None:
    pattern: Chunks = (("arn:aws:s3:::b/", True), ("a*", False), ("/*", True))
    assert resource_matches(pattern, "arn:aws:s3:::b/a*/x")
    assert not resource_matches(pattern, "arn:aws:s3:::b/abc/x")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("home/*", "home/alice/", True),
        ("home/*", "Home/alice/", False),
        ("*", "", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a.c", "abc", False),
        ("multi*line", "multi\nline", True),
    ],
)
def test_string_like(pattern: str, value: str, expected: bool) -> None:
    assert string_like(policy_text(pattern), value) is expected


def test_string_like_keeps_escaped_wildcards_literal() -> None:
    pattern: Chunks = (("file", True), ("*", False))
    assert string_like(pattern, "file*")
    assert not string_like(pattern, "file1")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("arn:aws:iam::111111111111:role/MLSpace*", "arn:aws:iam::111111111111:role/MLSpace-demo-ab12", True),
        ("arn:aws:iam::*:role/MLSpace*", "arn:aws:iam::222222222222:role/MLSpace-x", True),
        ("arn:aws:iam::*:role/MLSpace*", "arn:aws:iam::222222222222:role/Other", False),
        ("arn:aws:iam::111111111111:role/MLSpace*", "arn:aws:iam::111111111111:role/mlspace-demo", False),
        ("arn:aws:*", "arn:aws:iam::111111111111:role/x", False),
        ("arn:aws:iam::1*:role/x", "arn:aws:iam::111111111111:role/x", True),
        ("arn:aws:iam:*:role/x", "arn:aws:iam::111111111111:role/x", False),
        ("arn:aws:sqs:us-east-1:111111111111:q:*", "arn:aws:sqs:us-east-1:111111111111:q:a:b", True),
        ("arn:aws:iam::111111111111:role/x", "not-an-arn", False),
    ],
)
def test_arn_like_matches_each_of_the_six_parts_on_its_own(pattern: str, value: str, expected: bool) -> None:
    assert arn_like(policy_text(pattern), value) is expected
