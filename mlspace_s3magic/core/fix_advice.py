"""The fixes that are advice: layers only others can change (an SCP, a VPC endpoint policy), a KMS key that
could not be named, and a same-account bucket policy, which can block only through a Deny.
"""

from __future__ import annotations

import shlex

from mlspace_s3magic.core.fix import Fix
from mlspace_s3magic.core.fix_commands import JQ_DENIES, ResourcePolicy, comment
from mlspace_s3magic.core.fix_plan import Current, FixPlan, Unread, deny_names
from mlspace_s3magic.core.grant import LIST_ACTION, object_actions


def same_account_bucket_policy_advice(plan: FixPlan, current: Current) -> Fix:
    """In the caller's own account an identity Allow is enough and an Allow for the account root grants
    nothing more, so a blocking bucket policy can only deny: name the Deny, never add an Allow."""
    owner = plan.identity.account
    policy = ResourcePolicy.of(plan.ref, owner)
    rule = (
        f"{plan.ref.bucket} is in the caller's own account {owner}, where an identity-policy Allow is enough "
        f"and the {policy.what} blocks only through an explicit Deny: it need not change unless it denies"
    )
    denies = deny_names(current)
    if isinstance(current, Unread):
        found = (
            "it could not be read here; list its Deny statements (needs jq) and narrow any that matches "
            f"{plan.who}"
        )
        lines = [
            *policy.header,
            comment(f"{rule}: {found}."),
            f"{policy.fetch} | jq {shlex.quote(JQ_DENIES)}",
        ]
    else:
        found = (
            f"narrow its Deny statements ({', '.join(denies)}) so that none matches {plan.who}"
            if denies
            else "it has no Deny statement, so nothing in it blocks"
        )
        lines = [comment(f"{rule}: {found}.")]
    return Fix(
        layer="bucket-policy",
        target=policy.target,
        applied_by=f"an administrator of account {owner} who can edit the {policy.what}, only if it denies",
        statements=(),
        document=None,
        command="\n".join(lines),
        summary=f"No Allow to add: {rule}; {found}.",
    )


def unknown_key_advice(plan: FixPlan) -> Fix:
    """A KMS key may block, but which one could not be read here: how to name it. A plan needs the key's ARN
    for the key policy and for the identity and boundary grants, which name the key."""
    ref = plan.ref
    target = str(ref)
    bucket = shlex.quote(ref.bucket)
    owner = plan.owner or "(the bucket owner)"
    default = "ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault.KMSMasterKeyID"
    return Fix(
        layer="kms",
        target=target,
        applied_by=f"the bucket owner (account {owner}) or an MLSpace admin with the admin endpoint, to name "
        "the key; then the key's owner",
        statements=(),
        document=None,
        command="\n".join(
            [
                comment(
                    f"{target}: the objects may be encrypted with a KMS key that could not be read here."
                ),
                comment(f"The bucket owner (account {owner}) names the bucket's default key with"),
                comment(
                    f"  aws s3api get-bucket-encryption --bucket {bucket} --query {shlex.quote(default)}"
                ),
                comment("and anyone who may read an object names its key with"),
                comment(f"  aws s3api head-object --bucket {bucket} --key KEY --query SSEKMSKeyId"),
                comment("With the admin endpoint configured, the check reads the key and plans its change."),
            ]
        ),
        summary="Name the KMS key that encrypts the objects, so its key policy can be changed.",
    )


def advice(plan: FixPlan, layer: str, owner: str | None) -> Fix:
    """A layer only others can change: who must act, and what they must allow."""
    account = plan.identity.account
    actions = (*object_actions(plan.access), LIST_ACTION)
    wanted = f"{', '.join(actions)} on {plan.ref.bucket_arn} and {plan.ref.objects_arn}"
    advice: dict[str, tuple[str, str, str]] = {
        "scp": (
            f"service control policies over account {account}",
            "the organization's administrators (management account or delegated administrator)",
            f"must allow {wanted}; list them with aws organizations list-policies-for-target "
            f"--target-id {account} --filter SERVICE_CONTROL_POLICY",
        ),
        "rcp": (
            f"resource control policies over account {owner or '(the bucket owner)'}",
            "the administrators of the bucket owner's organization",
            f"must allow principals of account {account} to use {wanted}",
        ),
        "endpoint": (
            "the S3 VPC endpoint policy of the notebook's VPC",
            "the network administrators of the MLSpace VPC",
            f"must allow {wanted} (endpoint policies often allow only the organization's own buckets); "
            "they change it with aws ec2 modify-vpc-endpoint --vpc-endpoint-id VPCE_ID "
            "--policy-document file://endpoint-policy.json",
        ),
        "session": (
            f"the session policy of {plan.identity.arn}",
            "the notebook user, by starting a new session",
            "limits this session below its role: restart the notebook (or assume the role again without a "
            "session policy)",
        ),
        "requester-pays": (
            str(plan.ref),
            "the notebook user, in every request",
            "is in a Requester Pays bucket: send RequestPayer='requester' in boto3 (--request-payer "
            "requester in the CLI), and account for the request and transfer charges",
        ),
        "unknown": (
            str(plan.ref),
            "an MLSpace admin, with the admin endpoint (it reads every layer)",
            "is blocked by a layer the notebook cannot read: ask an admin to diagnose it",
        ),
    }
    target, applied_by, text = advice.get(
        layer,
        (str(plan.ref), "an administrator who can read that layer", f"is blocked by the {layer} layer"),
    )
    return Fix(
        layer=layer,
        target=target,
        applied_by=applied_by,
        statements=(),
        document=None,
        command=comment(f"{target}: {text}."),
        summary=f"No change we can write: {target} {text}.",
    )
