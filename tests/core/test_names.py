"""Bucket references: every accepted form, and errors that name the rule a bad name breaks."""

from __future__ import annotations

import pytest

from mlspace_s3magic.core.names import BucketRef, InvalidBucketReference, parse_bucket_reference


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("my-bucket", "my-bucket", ""),
        ("my-bucket/data/2026/", "my-bucket", "data/2026/"),
        ("s3://my-bucket", "my-bucket", ""),
        ("s3://my-bucket/data/x.csv", "my-bucket", "data/x.csv"),
        ("S3A://my-bucket/data/", "my-bucket", "data/"),
        ("arn:aws:s3:::my-bucket", "my-bucket", ""),
        ("arn:aws:s3:::my-bucket/datasets/*", "my-bucket", "datasets/*"),
        ("  my.bucket.example  ", "my.bucket.example", ""),
        ("my-ap-abc123xyz-s3alias", "my-ap-abc123xyz-s3alias", ""),
        ("logs--use1-az4--x-s3/2026/", "logs--use1-az4--x-s3", "2026/"),
    ],
)
def test_accepted_forms(text: str, bucket: str, prefix: str) -> None:
    ref = parse_bucket_reference(text)
    assert (ref.bucket, ref.prefix, ref.legacy_name) == (bucket, prefix, False)


def test_arns_for_policies() -> None:
    ref = parse_bucket_reference("s3://my-bucket/data/")
    assert ref.bucket_arn == "arn:aws:s3:::my-bucket"
    assert ref.object_arn("data/x.csv") == "arn:aws:s3:::my-bucket/data/x.csv"
    assert ref.objects_arn == "arn:aws:s3:::my-bucket/data/*"
    assert str(ref) == "s3://my-bucket/data/"


def test_partition_is_kept_from_the_arn() -> None:
    ref = parse_bucket_reference("arn:aws-us-gov:s3:::gov-bucket/x/")
    assert ref.bucket_arn == "arn:aws-us-gov:s3:::gov-bucket"


def test_access_point_arn() -> None:
    ref = parse_bucket_reference("arn:aws:s3:us-west-2:123456789012:accesspoint/analytics/object/raw/2026/")
    assert ref.access_point_arn == "arn:aws:s3:us-west-2:123456789012:accesspoint/analytics"
    assert ref.access_point_account == "123456789012"
    assert ref.prefix == "raw/2026/"
    assert (
        ref.object_arn("raw/a.csv")
        == "arn:aws:s3:us-west-2:123456789012:accesspoint/analytics/object/raw/a.csv"
    )
    assert ref.bucket_arn == ref.access_point_arn


def test_legacy_name_is_accepted_with_a_note() -> None:
    ref = parse_bucket_reference("BucketToBeShared/datasets/iris/")
    assert (ref.bucket, ref.prefix, ref.legacy_name) == ("BucketToBeShared", "datasets/iris/", True)
    assert len(ref.notes) == 1
    assert "legacy bucket name" in ref.notes[0]
    assert "'B', 'S', 'T'" in ref.notes[0]
    assert "us-east-1" in ref.notes[0]


@pytest.mark.parametrize("name", ["my_bucket", "UPPER", "a" * 100, "my..bucket", "-leading"])
def test_other_legacy_names(name: str) -> None:
    assert parse_bucket_reference(name).legacy_name


def test_modern_names_have_no_note() -> None:
    assert parse_bucket_reference("partner-shared-readonly").notes == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "No bucket given"),
        ("my bucket", "contains ' '"),
        ("s3://bücket", "contains 'ü'"),
        ("ab", "it has 2 characters"),
        ("a" * 256, "it has 256 characters"),
        ("192.168.5.4", "formatted as an IP address"),
        ("gs://my-bucket/x", "uses the scheme 'gs'"),
        ("arn:aws:iam::111111111111:role/x", "is not an S3 ARN"),
        ("arn:aws:s3:us-east-1:111111111111:my-bucket", "names a region or account"),
        ("arn:aws:s3:us-east-1:111111111111:accesspoint/AP", "not a valid access point ARN"),
        ("s3://", "it is empty"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidBucketReference) as error:
        parse_bucket_reference(text)
    assert message in str(error.value)


def test_errors_say_what_is_accepted() -> None:
    with pytest.raises(InvalidBucketReference, match="lowercase letters, digits, dots and hyphens"):
        parse_bucket_reference("bad bucket!")


def test_bucket_ref_defaults() -> None:
    assert BucketRef("b").partition == "aws"
