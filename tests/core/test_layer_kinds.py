"""The layer specifications: one place says how large each layer's document may be and how it is counted."""

from __future__ import annotations

from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind, RunAs, size_problem, spec_of
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
