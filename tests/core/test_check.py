"""The check: verdicts from probes, explanations from the evaluator, with crafted layers for every rule moto
does not enforce (boundaries, bucket policies, KMS key policies), and the sandbox for the real path."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from mlspace_s3magic.core.check import Checker, Verdict, assemble_report
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layers import BucketLayers, CallerLayers, Encryption, FetchedPolicy, Unreadable
from mlspace_s3magic.core.mlspace import user_role_name
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.probes import Outcome, Probe
from mlspace_s3magic.sandbox.state import SandboxState

ROLE = user_role_name("demo", "alice")
ALICE = Identity(
    arn=f"arn:aws:sts::111111111111:assumed-role/{ROLE}/SageMaker",
    account="111111111111",
    principal_type="assumed-role",
    role=ROLE,
    role_arn=f"arn:aws:iam::111111111111:role/{ROLE}",
    session="SageMaker",
    user="alice",
    project="demo",
    boundary="arn:aws:iam::111111111111:policy/mlspace-project-user-permission-boundary",
    user_scoped=True,
)
BUCKET = "partner-data"
KEY_ARN = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REF = parse_bucket_reference(f"{BUCKET}/datasets/")


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


S3_READ = {
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
}
KMS_USE = {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": KEY_ARN}
GRANTS_ALICE_ACCOUNT = {
    **S3_READ,
    "Sid": "PartnerShares",
    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
}
UNRELATED = {
    "Sid": "KeepMe",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:DeleteBucket",
    "Resource": f"arn:aws:s3:::{BUCKET}",
}


def _caller(identity: list[dict[str, Any]] | None, boundary: dict[str, Any] | None) -> CallerLayers:
    return CallerLayers(
        identity_policies=(
            Unreadable("identity", "iam:ListAttachedRolePolicies was denied")
            if identity is None
            else tuple(FetchedPolicy(f"policy{i}", doc) for i, doc in enumerate(identity))
        ),
        boundary=FetchedPolicy("mlspace-project-user-permission-boundary", boundary) if boundary else None,
    )


def _bucket(
    policy: dict[str, Any] | Unreadable | None, *, key_policy: dict[str, Any] | None = None
) -> BucketLayers:
    return BucketLayers(
        bucket_policy=FetchedPolicy("bucket policy", policy) if isinstance(policy, dict) else policy,
        encryption=Encryption("aws:kms", KEY_ARN) if key_policy is not None else None,
        key_policy=FetchedPolicy("key policy", key_policy, KEY_ARN) if key_policy is not None else None,
    )


def _probes(
    list_outcome: Outcome, read_outcome: Outcome, write_outcome: Outcome = Outcome.NOT_RUN
) -> dict[str, Probe]:
    def probe(capability: str, action: str, outcome: Outcome) -> Probe:
        return Probe(
            capability, action, REF.bucket_arn, outcome, f"crafted {outcome.value}", key="datasets/a.csv"
        )

    return {
        "list": probe("list", "s3:ListBucket", list_outcome),
        "read": probe("read", "s3:GetObject", read_outcome),
        "write": probe("write", "s3:PutObject", write_outcome),
    }


def _report(caller: CallerLayers, bucket: BucketLayers, probes: dict[str, Probe], need: str = "read") -> Any:
    return assemble_report(
        REF,
        ALICE,
        caller,
        bucket,
        probes,
        key=None,
        need=need,
        owner_account="222222222222",
    )


def test_boundary_only_denial() -> None:
    report = _report(
        _caller(
            [_doc(S3_READ)],
            boundary=_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::mlspace-data-*"}),
        ),
        _bucket(_doc(GRANTS_ALICE_ACCOUNT)),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    for capability in ("list", "read", "write"):
        assert report.capabilities[capability].verdict is Verdict.DENIED
        assert report.capabilities[capability].blocked_by == ("boundary",)
    assert report.capabilities["write"].probe.outcome is Outcome.NOT_RUN  # predicted, not probed
    assert [fix.layer for fix in report.fixes] == ["boundary"]
    assert report.fixes[0].target == ALICE.boundary


def test_bucket_policy_only_denial_merges_into_the_live_policy() -> None:
    report = _report(
        _caller([_doc(S3_READ)], _doc(S3_READ)),
        _bucket(_doc(UNRELATED)),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    assert report.capabilities["read"].blocked_by == ("bucket-policy",)
    assert report.capabilities["read"].evaluation.decision == "implicit_deny"
    (fix,) = report.fixes
    assert fix.layer == "bucket-policy"
    assert fix.document is not None
    assert fix.document["Statement"][0] == UNRELATED  # the owner's statement survives, first
    assert len(fix.document["Statement"]) > 1


def test_an_explicit_deny_names_its_statement() -> None:
    deny = {
        "Sid": "NoPartners",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    report = _report(
        _caller([_doc(S3_READ)], _doc(S3_READ)),
        _bucket(_doc(GRANTS_ALICE_ACCOUNT, deny)),
        _probes(Outcome.ALLOWED, Outcome.DENIED),
    )
    read = report.capabilities["read"]
    assert read.evaluation.decision == "explicit_deny"
    assert read.blocked_by == ("bucket-policy",)
    assert {"layer": "resource", "policy": "bucket policy", "statement": "NoPartners", "effect": "Deny"} in (
        read.evaluation.statements
    )
    assert report.capabilities["list"].verdict is Verdict.ALLOWED


def test_kms_denial_from_the_key_policy() -> None:
    key_policy = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    report = _report(
        _caller([_doc(S3_READ, KMS_USE)], _doc(S3_READ, KMS_USE)),
        _bucket(_doc(GRANTS_ALICE_ACCOUNT), key_policy=key_policy),
        _probes(Outcome.ALLOWED, Outcome.KMS_DENIED),
    )
    assert report.capabilities["list"].verdict is Verdict.ALLOWED
    read = report.capabilities["read"]
    assert read.verdict is Verdict.DENIED
    assert read.blocked_by == ("kms",)
    kms_fixes = [fix for fix in report.fixes if fix.layer == "kms"]
    assert kms_fixes and kms_fixes[0].target == KEY_ARN
    assert "kms:Decrypt" in json.dumps(kms_fixes[0].statements)


def test_a_kms_refusal_proves_that_s3_authorized_the_read() -> None:
    """S3 asks KMS only once it has authorized the request itself
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html), so a read refused by
    KMS clears the unread identity policies and bucket policy of suspicion: only the key is fixed, and no
    S3 statement is added again to a policy that may already hold one."""
    key_policy = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    report = _report(
        _caller(None, _doc(S3_READ, KMS_USE)),
        BucketLayers(
            bucket_policy=Unreadable("bucket-policy", "s3:GetBucketPolicy was denied"),
            encryption=Encryption("aws:kms", KEY_ARN),
            key_policy=FetchedPolicy("key policy", key_policy, KEY_ARN),
        ),
        _probes(Outcome.ALLOWED, Outcome.KMS_DENIED),
    )
    read = report.capabilities["read"]
    assert (read.verdict, read.blocked_by) == (Verdict.DENIED, ("kms",))
    assert "bucket-policy" not in [fix.layer for fix in report.fixes]
    (identity,) = [fix for fix in report.fixes if fix.layer == "identity"]
    assert [statement["Action"] for statement in identity.statements] == [["kms:Decrypt"]]


def test_kms_key_policy_that_allows_lets_the_read_through() -> None:
    key_policy = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "*",
        }
    )
    report = _report(
        _caller([_doc(S3_READ, KMS_USE)], _doc(S3_READ, KMS_USE)),
        _bucket(_doc(GRANTS_ALICE_ACCOUNT), key_policy=key_policy),
        _probes(Outcome.ALLOWED, Outcome.ALLOWED),
    )
    assert report.capabilities["read"].verdict is Verdict.ALLOWED
    assert report.capabilities["write"].verdict is Verdict.ALLOWED  # predicted by the evaluation
    assert report.fixes == ()


def test_the_key_policy_is_judged_in_the_keys_region_not_the_clients() -> None:
    """Regression: a key in us-west-2 whose key policy allows Decrypt via S3 in us-west-2 lets the read
    through, whatever region the notebook's client uses (kms:ViaService is S3's in the key's region;
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service)."""
    west = KEY_ARN.replace("us-east-1", "us-west-2")
    via_west = {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}}
    key_policy = _doc(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": via_west,
        }
    )
    use = {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": west, "Condition": via_west}
    bucket = replace(
        _bucket(_doc(GRANTS_ALICE_ACCOUNT), key_policy=key_policy),
        encryption=Encryption("aws:kms", west),
        key_policy=FetchedPolicy("key policy", key_policy, west),
    )
    report = _report(
        _caller([_doc(S3_READ, use)], _doc(S3_READ, use)), bucket, _probes(Outcome.ALLOWED, Outcome.ALLOWED)
    )
    read = report.capabilities["read"]
    assert (read.verdict, read.blocked_by, read.disagreement) == (Verdict.ALLOWED, (), None)
    assert not [fix for fix in report.fixes if fix.layer == "kms"]


def test_an_unreadable_bucket_policy_stays_in_the_diagnosis_when_a_read_layer_blocks() -> None:
    """Unknown is never absent: the boundary (read) blocks, and the partner's bucket policy, which could
    not be read, would still block once the boundary is fixed, so it is named (unverified) and fixed."""
    report = _report(
        _caller([_doc(S3_READ)], _doc()),
        _bucket(Unreadable("bucket-policy", "s3:GetBucketPolicy was denied")),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    read = report.capabilities["read"]
    assert read.blocked_by == ("boundary", "bucket-policy")
    assert read.evaluation.unverified == ("bucket-policy",)
    assert "boundary; unverified: bucket-policy (could not read)" in str(report)
    assert {fix.layer for fix in report.fixes} >= {"boundary", "bucket-policy"}


def test_probe_denied_but_every_readable_layer_allows() -> None:
    report = _report(
        _caller([_doc(S3_READ)], _doc(S3_READ)),
        _bucket(_doc(GRANTS_ALICE_ACCOUNT)),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    read = report.capabilities["read"]
    assert read.verdict is Verdict.DENIED
    assert read.blocked_by == ("unknown",)
    assert read.disagreement is not None and "scp" in read.disagreement
    assert read.disagreement in str(report)


def test_probe_allowed_but_the_evaluation_denies() -> None:
    report = _report(
        _caller([_doc(S3_READ)], _doc(S3_READ)), _bucket(None), _probes(Outcome.ALLOWED, Outcome.ALLOWED)
    )
    read = report.capabilities["read"]
    assert read.verdict is Verdict.ALLOWED
    assert read.blocked_by == ()
    assert read.disagreement is not None and "bucket-policy" in read.disagreement


def test_unreadable_layers_become_unverified_suspects() -> None:
    report = _report(
        _caller(None, None),
        _bucket(Unreadable("bucket-policy", "s3:GetBucketPolicy was denied")),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    read = report.capabilities["read"]
    assert read.evaluation.decision == "undecided"
    assert set(read.blocked_by) == {"identity", "bucket-policy"}
    assert [gap.layer for gap in report.unreadable_layers] == ["identity", "bucket-policy"]
    assert "unverified" in str(report)


def test_a_readable_layer_still_proves_a_block_beside_unreadable_ones() -> None:
    report = _report(
        _caller(None, _doc({"Effect": "Allow", "Action": "ec2:*", "Resource": "*"})),
        _bucket(Unreadable("bucket-policy", "denied")),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    assert report.capabilities["read"].evaluation.blocked_by == ("boundary",)
    # The unread layers that would still block once the boundary is fixed stay named, as unverified.
    assert report.capabilities["read"].blocked_by == ("boundary", "identity", "bucket-policy")
    assert report.capabilities["read"].evaluation.unverified == ("identity", "bucket-policy")


def test_json_has_the_documented_shape() -> None:
    report = _report(_caller([_doc(S3_READ)], None), _bucket(None), _probes(Outcome.DENIED, Outcome.DENIED))
    data = json.loads(json.dumps(report.to_dict()))
    assert {"bucket", "prefix", "principal", "capabilities", "unreadable_layers", "fixes"} <= set(data)
    assert (data["bucket"], data["prefix"]) == (BUCKET, "datasets/")
    assert data["diagnosed_by"] == "notebook"
    assert set(data["capabilities"]) == {"list", "read", "write"}
    for capability in data["capabilities"].values():
        assert {"verdict", "blocked_by", "probe", "evaluation"} <= set(capability)
    for fix in data["fixes"]:
        assert {"layer", "target", "change", "command", "run_as", "account"} <= set(fix)


def test_html_escapes_and_folds_the_fixes() -> None:
    report = _report(
        _caller(None, None),
        _bucket(Unreadable("bucket-policy", "<denied>")),
        _probes(Outcome.DENIED, Outcome.DENIED),
    )
    html = report._repr_html_()
    assert "&lt;denied&gt;" in html and "<denied>" not in html
    assert "<details>" in html


# --- against the sandbox ------------------------------------------------------------------------------


def test_alice_is_denied_the_bucket_to_share_with_a_fix_per_runbook_layer(sandbox: SandboxState) -> None:
    checker = Checker(sandbox.aws_for("alice@demo"))
    report = checker.check(parse_bucket_reference("BucketToBeShared"))
    for capability in ("list", "read"):
        assert report.verdict(capability) is Verdict.DENIED
        assert "identity" in report.capabilities[capability].blocked_by
    assert {fix.layer for fix in report.fixes if fix.statements} == {"bucket-policy", "boundary", "identity"}
    # alice may not read the partner's encryption settings: a KMS key is possible, so it is named, unverified,
    # with the command that finds the key (unknown is never absent).
    assert report.capabilities["read"].evaluation.unverified[-1] == "kms"
    (kms,) = [fix for fix in report.fixes if fix.layer == "kms"]
    assert not kms.statements and "SSEKMSKeyId" in kms.command
    assert any("legacy bucket name" in note for note in report.notes)


def test_alice_reads_the_shared_readonly_bucket(sandbox: SandboxState) -> None:
    report = Checker(sandbox.aws_for("alice@demo")).check(parse_bucket_reference("partner-shared-readonly"))
    assert report.verdict("list") is Verdict.ALLOWED
    assert report.verdict("read") is Verdict.ALLOWED
    assert report.capabilities["read"].probe.key == "README.txt"


def test_write_probe_on_her_own_prefix_leaves_nothing_behind(sandbox: SandboxState) -> None:
    aws = sandbox.aws_for("alice@demo")
    ref = parse_bucket_reference("s3://mlspace-data-111111111111/private/alice/")
    report = Checker(aws).check(ref, write_probe=True, need="write")
    assert report.verdict("write") is Verdict.ALLOWED
    assert report.verdict("read") is Verdict.ALLOWED
    assert report.capabilities["read"].probe.key == "private/alice/scratch.txt"
    keys = [
        o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=ref.bucket, Prefix=ref.prefix)["Contents"]
    ]
    assert keys == ["private/alice/scratch.txt"]


def test_bob_cannot_read_alices_prefix_but_can_list_the_data_bucket(sandbox: SandboxState) -> None:
    report = Checker(sandbox.aws_for("bob@demo")).check(
        parse_bucket_reference("mlspace-data-111111111111/private/alice/")
    )
    assert report.verdict("read") is Verdict.DENIED
    assert not any("unknown" in note and "owns" in note for note in report.notes)  # the data bucket is ours


def test_identity_is_cached_between_checks(sandbox: SandboxState) -> None:
    checker = Checker(sandbox.aws_for("alice@demo"))
    assert checker.identity() is checker.identity()


def test_the_shared_notebook_role_is_named_as_such_never_as_a_user() -> None:
    shared = Identity(
        arn="arn:aws:sts::111111111111:assumed-role/mlspace-notebook-role/SageMaker",
        account="111111111111",
        principal_type="assumed-role",
        role="mlspace-notebook-role",
        role_arn="arn:aws:iam::111111111111:role/mlspace-notebook-role",
        user_scoped=False,
    )
    report = assemble_report(
        REF,
        shared,
        _caller([_doc()], None),
        _bucket(None),
        _probes(Outcome.DENIED, Outcome.DENIED),
        key=None,
        need="read",
        owner_account="222222222222",
    )
    text = str(report)
    assert "shared notebook role mlspace-notebook-role" in text
    assert "MLSpaceApplication" not in text and "MLSpaceApplication" not in json.dumps(report.to_dict())
