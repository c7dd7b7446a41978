"""The layer specifications: one place says how large each layer's document may be and how it is counted,
and which commands and API calls read, write and delete it."""

from __future__ import annotations

import shlex

from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind, RunAs, Shell, size_problem, spec_of
from mlspace_s3magic.core.limits import (
    BUCKET_POLICY_MAX_BYTES,
    KEY_POLICY_MAX_BYTES,
    MANAGED_POLICY_MAX_CHARS,
)


def test_the_kinds_are_the_names_the_json_uses() -> None:
    assert [str(kind) for kind in LAYER_SPECS] == ["bucket-policy", "boundary", "identity", "kms"]
    assert spec_of("kms") is LAYER_SPECS[LayerKind.KMS]
    assert spec_of("scp") is None


def test_iam_counts_characters_without_whitespace_and_s3_and_kms_count_bytes() -> None:
    padded = {"Statement": [{"Sid": "é " * 10}]}
    assert LAYER_SPECS["boundary"].size.count(padded) < LAYER_SPECS["bucket-policy"].size.count(padded)
    assert LAYER_SPECS["bucket-policy"].size.count(padded) == LAYER_SPECS["kms"].size.count(padded)
    assert [spec.size.limit for spec in LAYER_SPECS.values()] == [
        BUCKET_POLICY_MAX_BYTES,
        MANAGED_POLICY_MAX_CHARS,
        MANAGED_POLICY_MAX_CHARS,
        KEY_POLICY_MAX_BYTES,
    ]


def test_who_writes_each_layer_and_which_always_exist() -> None:
    assert {kind: spec.run_as for kind, spec in LAYER_SPECS.items()} == {
        "bucket-policy": RunAs.BUCKET_OWNER,
        "boundary": RunAs.MLSPACE_ADMIN,
        "identity": RunAs.MLSPACE_ADMIN,
        "kms": RunAs.KEY_OWNER,
    }
    assert [kind for kind, spec in LAYER_SPECS.items() if spec.always_exists] == ["boundary", "kms"]


def test_an_advisory_layer_has_no_size_limit() -> None:
    assert size_problem("scp", {"Statement": ["x" * 100_000]}) is None
    assert size_problem("kms", {"Statement": ["x" * 40_000]}) is not None


BUCKET = LAYER_SPECS[LayerKind.BUCKET_POLICY]
KEY = LAYER_SPECS[LayerKind.KMS]
KEY_ARN = "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
POLICY_ARN = "arn:aws:iam::111111111111:policy/MLSpace-s3access-project-demo"


def test_a_bucket_policy_is_read_written_and_deleted_by_s3api() -> None:
    assert BUCKET.read_command("partner-data") == (
        "aws s3api get-bucket-policy --bucket partner-data --query Policy --output text"
    )
    assert BUCKET.write_command("partner-data", "policy.json") == (
        "aws s3api put-bucket-policy --bucket partner-data --policy file://policy.json"
    )
    assert BUCKET.delete_command("partner-data") == "aws s3api delete-bucket-policy --bucket partner-data"


def test_a_hostile_bucket_name_stays_one_quoted_word() -> None:
    """Bucket names are validated elsewhere; the command builder quotes anyway."""
    for name in ("it's", "$(rm -rf ~)", "a b;c", "`id`"):
        for command in (
            BUCKET.read_command(name),
            BUCKET.write_command(name, "policy.json"),
            str(BUCKET.delete_command(name)),
        ):
            words = shlex.split(command)
            assert words[words.index("--bucket") + 1] == name, command
    assert BUCKET.read_command("it's").startswith("aws s3api get-bucket-policy --bucket 'it'\"'\"'s' ")
    assert "--bucket '$(rm -rf ~)' " in BUCKET.write_command("$(rm -rf ~)", "policy.json")


def test_a_key_policy_is_the_default_one_in_the_keys_region_and_never_deleted() -> None:
    where = f"--key-id {KEY_ARN} --policy-name default --region eu-west-1"
    assert KEY.read_command(KEY_ARN) == f"aws kms get-key-policy {where} --query Policy --output text"
    assert KEY.write_command(KEY_ARN, "key-policy.json") == (
        f"aws kms put-key-policy {where} --policy file://key-policy.json"
    )
    assert KEY.delete_command(KEY_ARN) is None
    # A key read when the command runs: its shell variables are put in as they are.
    assert KEY.read_command(Shell('"$key"'), region=Shell('"$region"')) == (
        'aws kms get-key-policy --key-id "$key" --policy-name default --region "$region" '
        "--query Policy --output text"
    )
    assert "--key-id '\"$key\"'" in KEY.read_command('"$key"', region="us-east-1")  # a plain str is quoted


def test_a_managed_policy_is_read_as_its_default_version_and_written_as_a_new_one() -> None:
    for kind in (LayerKind.BOUNDARY, LayerKind.IDENTITY):
        spec = LAYER_SPECS[kind]
        assert spec.read_command(POLICY_ARN) == (
            f"aws iam get-policy-version --policy-arn {POLICY_ARN} --version-id "
            f'"$(aws iam get-policy --policy-arn {POLICY_ARN} --query Policy.DefaultVersionId '
            '--output text)" '
            "--query PolicyVersion.Document --output json"
        )
        assert spec.write_command(POLICY_ARN, "grant.json") == (
            f"aws iam create-policy-version --policy-arn {POLICY_ARN} --policy-document file://grant.json "
            "--set-as-default"
        )
        assert spec.delete_command(POLICY_ARN) is None


def test_each_layer_names_its_api_calls_on_one_client() -> None:
    assert {kind: (spec.api_read.action, spec.api_write.action) for kind, spec in LAYER_SPECS.items()} == {
        "bucket-policy": ("s3:GetBucketPolicy", "s3:PutBucketPolicy"),
        "boundary": ("iam:GetPolicyVersion", "iam:CreatePolicyVersion"),
        "identity": ("iam:GetPolicyVersion", "iam:CreatePolicyVersion"),
        "kms": ("kms:GetKeyPolicy", "kms:PutKeyPolicy"),
    }
    assert [kind for kind, spec in LAYER_SPECS.items() if spec.api_delete] == ["bucket-policy"]
    assert {spec.client for spec in LAYER_SPECS.values()} == {"s3", "iam", "kms"}


def test_a_fix_warning_names_the_limit_as_each_service_states_it() -> None:
    big = {"Statement": [{"Sid": "x" * 40_000}]}
    assert KEY.size_warning("key policy", big, ".") == (
        f"The new key policy is {KEY.size.count(big):,} bytes, over KMS's 32 KB limit (32,768)."
    )
    assert str(BUCKET.size_warning("bucket policy", big, "")).endswith("over S3's 20 KB limit (20,480)")
    boundary = LAYER_SPECS[LayerKind.BOUNDARY]
    assert str(boundary.size_warning("boundary", big, "!")).endswith("over IAM's 6,144 for a managed policy!")
    assert KEY.size_warning("key policy", {"Statement": []}, ".") is None
