"""Actions the evaluator treats apart: those that take no resource, the one AWS never refuses, and the ones
that assume a role. One list each, so the scenario reader, the matcher and the evaluator agree.

Sources: the Service Authorization Reference lists an action without a resource type when its policies
must name ``"*"`` (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html);
for KMS, https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html names the operations
that use no particular key.
"""

from __future__ import annotations

# Lowered, as action names compare without case.
_RESOURCELESS = {
    "s3": (
        "ListAllMyBuckets",
        "ListAccessPoints",
        "ListAccessPointsForObjectLambda",
        "ListMultiRegionAccessPoints",
        "ListJobs",
        "CreateJob",
        "GetAccessPoint",
        "GetAccountPublicAccessBlock",
        "PutAccountPublicAccessBlock",
        "ListStorageLensConfigurations",
    ),
    "kms": (
        "CreateKey",
        "GenerateRandom",
        "ListAliases",
        "ListKeys",
        "ListRetirableGrants",
        "CreateCustomKeyStore",
        "ConnectCustomKeyStore",
        "DeleteCustomKeyStore",
        "DescribeCustomKeyStores",
        "DisconnectCustomKeyStore",
        "UpdateCustomKeyStore",
    ),
    "sts": (
        "GetCallerIdentity",
        "GetSessionToken",
        "GetAccessKeyInfo",
        "DecodeAuthorizationMessage",
        "GetServiceBearerToken",
    ),
    "iam": (
        "ListRoles",
        "ListUsers",
        "ListGroups",
        "ListPolicies",
        "GetAccountSummary",
        "GetAccountAuthorizationDetails",
        "GetAccountPasswordPolicy",
        "UpdateAccountPasswordPolicy",
        "DeleteAccountPasswordPolicy",
        "ListAccountAliases",
        "CreateAccountAlias",
        "DeleteAccountAlias",
        "GenerateCredentialReport",
        "GetCredentialReport",
        "ListOpenIDConnectProviders",
        "ListSAMLProviders",
        "ListVirtualMFADevices",
        "ListServerCertificates",
    ),
}
RESOURCELESS_ACTIONS = frozenset(
    f"{service}:{name}".lower() for service, names in _RESOURCELESS.items() for name in names
)

# https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html: no permission is needed,
# and an explicit Deny does not stop it.
ALWAYS_ALLOWED = "sts:getcalleridentity"

# Requests on a role ARN that its trust policy must allow, as a KMS key policy must.
ASSUME_ROLE_ACTIONS = frozenset(("sts:assumerole", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml"))


def takes_no_resource(action: str) -> bool:
    """Whether the action has no resource type, so its request's resource is ``"*"``."""
    return action.lower() in RESOURCELESS_ACTIONS


def needs_resource(action: str) -> str:
    """Why ``"*"`` cannot be the resource of an action that takes one."""
    return (
        f'"*" is the resource only of actions that take none, such as s3:ListAllMyBuckets or kms:ListKeys; '
        f"{action} acts on a resource: give its ARN, such as arn:aws:s3:::bucket/key"
    )
