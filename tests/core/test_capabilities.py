"""The one capability evaluation: what check, the admin plan, verification and /v1/diagnose all decide with.

Each rule cites the AWS page it follows. Unreadable layers are unknown, never absent.
"""

from __future__ import annotations

from typing import Any

import pytest

from mlspace_s3magic.core.capabilities import (
    CapabilityEvaluation,
    evaluate_capabilities,
    needed_capabilities,
)
from mlspace_s3magic.core.diagnosis import UNREAD_BY_ENDPOINT, Diagnosis
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layers import BucketLayers, CallerLayers, Encryption, FetchedPolicy, Unreadable
from mlspace_s3magic.core.names import parse_bucket_reference

ACCOUNT, PARTNER = "111111111111", "222222222222"
ROLE = "MLSpace-demo-alice1234"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/SageMaker"
REF = parse_bucket_reference("partner-data/datasets/")
WEST_KEY = f"arn:aws:kms:us-west-2:{PARTNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
DENIED = Unreadable("identity", "iam:ListAttachedRolePolicies was denied")


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


S3_ALL = {
    "Effect": "Allow",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::partner-data", "arn:aws:s3:::partner-data/*"],
}
KMS_VIA_WEST = {
    "Effect": "Allow",
    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    "Resource": WEST_KEY,
    "Condition": {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}},
}
PARTNER_GRANT = {**S3_ALL, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
KEY_GRANT = {
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    "Resource": "*",
}


def _caller(identity: Any, boundary: Any = None) -> CallerLayers:
    policies = identity if isinstance(identity, Unreadable) else (FetchedPolicy("grant", identity),)
    fetched = (
        boundary if boundary is None or isinstance(boundary, Unreadable) else FetchedPolicy("b", boundary)
    )
    return CallerLayers(policies, fetched)


def _bucket(policy: Any, encryption: Any = None, key_policy: Any = None) -> BucketLayers:
    return BucketLayers(
        FetchedPolicy("bucket policy", policy) if isinstance(policy, dict) else policy,
        encryption,
        FetchedPolicy("key policy", key_policy, WEST_KEY) if isinstance(key_policy, dict) else key_policy,
    )


def _read(caller: CallerLayers, bucket: BucketLayers, owner: str | None = PARTNER) -> CapabilityEvaluation:
    return evaluate_capabilities(SESSION, REF, caller, bucket, owner_account=owner)["read"]


def test_a_key_in_another_region_is_used_through_s3_in_its_own_region() -> None:
    """Regression: the notebook's region (us-east-1) once stood in for the key's. S3 calls KMS in the key's
    region, so kms:ViaService is s3.<key region>.amazonaws.com
    (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service)."""
    read = _read(
        _caller(_doc(S3_ALL, KMS_VIA_WEST)),
        _bucket(_doc(PARTNER_GRANT), Encryption("aws:kms", WEST_KEY), _doc(KEY_GRANT)),
    )
    assert read.decision == "allowed", read.reasons
    kms = read.requests[1]
    assert (kms.action, kms.resource) == ("kms:Decrypt", WEST_KEY)
    # S3 also names the object as encryption context (its ARN, without S3 Bucket Keys):
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context
    assert kms.context == {
        "kms:ViaService": "s3.us-west-2.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::partner-data/datasets/example-object",
    }


def test_an_unreadable_bucket_policy_in_the_same_account_hides_no_identity_or_boundary_block() -> None:
    """Same account: a bucket policy naming the account delegates to the identity policies, and only a Deny
    in it can block (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    So with it unreadable, the identity and boundary blocks stay proven, and the bucket policy is a suspect
    only as a possible Deny."""
    read = _read(
        _caller(
            _doc(), boundary=_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::other"})
        ),
        _bucket(Unreadable("bucket-policy", "s3:GetBucketPolicy was denied")),
        owner=ACCOUNT,
    )
    assert read.blocked_by == ("identity", "boundary")
    assert read.unverified == ("bucket-policy",)


def test_same_account_identity_grant_with_an_unread_bucket_policy_is_undecided_not_denied() -> None:
    read = _read(
        _caller(_doc(S3_ALL)), _bucket(Unreadable("bucket-policy", "s3:GetBucketPolicy was denied")), ACCOUNT
    )
    assert read.decision == "undecided"
    assert read.blocked_by == ()
    assert read.unverified == ("bucket-policy",)


def test_cross_account_unread_bucket_policy_is_a_suspect_behind_a_proven_identity_block() -> None:
    """Cross-account, both sides must allow
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html)."""
    read = _read(_caller(_doc()), _bucket(Unreadable("bucket-policy", "denied")))
    assert read.blocked_by == ("identity",)
    assert read.unverified == ("bucket-policy",)
    assert read.decision == "implicit_deny"


def test_an_unreadable_boundary_is_unknown_not_absent() -> None:
    """A boundary caps identity grants (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html):
    when the role could not be read, the boundary may block, so it is a suspect."""
    read = _read(
        _caller(_doc(S3_ALL), Unreadable("boundary", "iam:GetRole was denied, so the boundary is unknown")),
        _bucket(_doc(PARTNER_GRANT)),
    )
    assert read.decision == "undecided"
    assert read.unverified == ("boundary",)


def test_unreadable_encryption_makes_kms_a_suspect_for_reads_and_writes_only() -> None:
    gap = Unreadable("encryption", "s3:GetEncryptionConfiguration was denied")
    evaluated = evaluate_capabilities(
        SESSION, REF, _caller(_doc(S3_ALL)), _bucket(_doc(PARTNER_GRANT), gap), owner_account=PARTNER
    )
    assert evaluated["list"].decision == "allowed"
    for capability in ("read", "write"):
        assert evaluated[capability].decision == "undecided"
        assert evaluated[capability].unverified == ("kms",)
    assert gap in evaluated.unreadable


def test_an_explicit_deny_reports_the_layers_behind_it() -> None:
    """A Deny wins, but narrowing it alone leaves the access denied when identity grants nothing
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)."""
    deny = {"Sid": "NoReads", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    read = _read(_caller(_doc()), _bucket(_doc(deny)))
    assert read.explicit_deny
    assert set(read.blocked_by) == {"bucket-policy", "identity"}


def test_needed_capabilities() -> None:
    assert needed_capabilities("list") == ("list",)
    assert needed_capabilities("read") == ("list", "read")
    assert needed_capabilities("write") == needed_capabilities("read-write") == ("list", "read", "write")


# -- what a requester sees of the endpoint's diagnosis ------------------------------------------------------


def _diagnosis(bucket: BucketLayers) -> Diagnosis:
    evaluated = evaluate_capabilities(SESSION, REF, _caller(_doc()), bucket, owner_account=PARTNER)
    return Diagnosis.of(REF.bucket, REF.prefix, SESSION, evaluated)


def test_the_requester_view_keeps_verdicts_and_layers_and_drops_statements_reasons_and_keys() -> None:
    deny = {"Sid": "SecretPartnerSid", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    full = _diagnosis(_bucket(_doc(deny), Encryption("aws:kms", WEST_KEY), _doc(KEY_GRANT)))
    assert "SecretPartnerSid" in str(full.to_dict())
    view = full.for_requester().to_dict()
    text = str(view)
    assert "SecretPartnerSid" not in text and WEST_KEY not in text and PARTNER not in text
    read = view["capabilities"]["read"]
    assert read["explicit_deny"] is True and read["grantable"] is False
    assert set(read["blocked_by"]) == {"bucket-policy", "identity", "kms"}  # identity allows no key use
    assert Diagnosis.from_dict(view) == full.for_requester()


@pytest.mark.parametrize(
    "reason", ["s3:GetBucketPolicy was denied", "s3:GetBucketPolicy failed with NoSuchBucket"]
)
def test_the_requester_view_does_not_tell_a_missing_bucket_from_an_unreadable_one(reason: str) -> None:
    view = _diagnosis(_bucket(Unreadable("bucket-policy", reason))).for_requester().to_dict()
    assert view["unreadable_layers"] == [{"layer": "bucket-policy", "reason": UNREAD_BY_ENDPOINT}]
    assert view["capabilities"]["read"]["grantable"] is True


def test_a_diagnosis_of_an_unknown_shape_is_refused() -> None:
    from mlspace_s3magic.core.errors import S3MagicError

    with pytest.raises(S3MagicError, match="unexpected shape"):
        Diagnosis.from_dict({"bucket": "b", "capabilities": []})


def test_identity_without_a_readable_role_has_an_unknown_boundary() -> None:
    identity = Identity(
        SESSION, ACCOUNT, "assumed-role", role=ROLE, boundary_unreadable="iam:GetRole was denied"
    )
    assert "(unknown: iam:GetRole was denied)" in str(identity)


@pytest.mark.parametrize(
    "named", ["1234abcd-12ab-34cd-56ef-1234567890ab", f"arn:aws:kms:us-west-2:{PARTNER}:alias/datasets"]
)
def test_a_key_named_by_id_or_alias_is_unknown_so_kms_is_a_suspect(named: str) -> None:
    """S3 accepts a key id or an alias ARN as the default key
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ServerSideEncryptionByDefault.html); only the key's
    account resolves it, so it is never put in a policy or a command."""
    evaluated = evaluate_capabilities(
        SESSION,
        REF,
        _caller(_doc(S3_ALL)),
        _bucket(_doc(PARTNER_GRANT), Encryption("aws:kms", named)),
        owner_account=PARTNER,
    )
    assert evaluated.kms_key_arn is None
    assert evaluated["read"].unverified == ("kms",)
    assert evaluated["list"].decision == "allowed"
