"""MLSpace's IAM documents, rebuilt statement by statement, so the sandbox allows what MLSpace allows.

Why this exists: an AccessDenied can only be explained (and reproduced locally) if the sandbox holds the same
roles, boundary and policies as a real MLSpace deployment. Everything here is our own code that *builds* the
documents MLSpace deploys; nothing is copied. The target is MLSpace v1.6.10 (``main`` at
``3bad6dac368ca50bb9cc7b874ee9670e98ab44d9``, 2025-09-12). Sources read in the public repository
``awslabs/mlspace``:

``lib/constructs/iamConstruct.ts`` @ ``3bad6dac368ca50bb9cc7b874ee9670e98ab44d9`` (v1.6.10):

* :func:`notebook_policy` - ``notebookPolicyStatements(scope.partition, Aws.REGION)`` (the
  ``mlspace-notebook-policy`` managed policy); :func:`shared_role_notebook_policy` - the same with
  ``MANAGE_IAM_ROLES`` off (the policy of ``mlspace-notebook-role`` when MLSpace makes no per-user roles).
* :func:`permissions_boundary` - ``mlspace-project-user-permission-boundary``: five statements of its own,
  then ``notebookPolicyStatements('*', '*', true)``.
* :func:`kms_instance_constraint_policy`, :func:`endpoint_instance_constraint_policy`,
  :func:`job_instance_constraint_policy` - the constraint policies added to ``notebookManagedPolicies``.
* :func:`app_policy` - ``appPolicyAndStatements`` (the app role's own policy; not on user roles).

CDK renders those documents with MLSpace's ``cdk.json`` flag ``@aws-cdk/aws-iam:minimizePolicies: true``:
statements with the same effect and conditions whose actions *or* resources are equal are merged, and every
Action and Resource list is de-duplicated and sorted. :func:`minimize_statements` does the same, so the
documents have the deployed layout and size (checked against ``/work/shared/mlspace-reference/``, synthesized
from ``develop`` at 8301680 with aws-cdk-lib 2.212.0). In CDK the KMS key ARN is an unresolved token, and
tokens sort before literal ARNs: that is why the key comes first in the EC2/KMS statement.

Translate is not a deployment setting since v1.6.2: MLSpace derives it from the region, on everywhere but
``us-isob-east-1`` (:func:`translate_enabled`).

``backend/src/ml_space_lambda/utils/iam_manager.py`` (``IAMManager``): :func:`project_policy`
(``self.project_policy``), :func:`user_policy` (``_generate_user_policy``, group datasets as
``group/<dataset>/*``), :func:`user_role_trust_policy`, :func:`user_role_tags`, :func:`user_role_description`
(``_create_iam_role``), :func:`pass_role_inline_policy` (``SMPassRolePolicy`` in ``add_iam_role``) and
:func:`user_role_managed_policy_names` (``add_iam_role``). Read @ ``2a4ee8b0286e3b32af80c83e84c6a944236f2235``
(group datasets, ``dynamic-user-role`` tag) for the code. The v1.6.10 version of this file is not in the
source store available to us; the Deny of 39 actions with request *and* resource tag conditions (since v1.6.8,
"enhanced enforcement of proper resource tagging") is taken from MLSpace's own rendering of these two
documents, ``frontend/docs/admin-guide/security/policies/project-policy-raw.json`` and
``user-policy-raw.json`` @ ``ef4fcd4667c544a98bd115650bb1795e5632e499`` (its bedrock list is the one
``iamConstruct.ts`` v1.6.10 uses).

``backend/src/ml_space_lambda/utils/common_functions.py`` @ ``cef99cec1945a44ef0d0d09fa1f4a0d048bb1aef``:
``generate_tags`` (tag order ``user``, ``project``, ``system`` then extras).

The role and policy name prefix is MLSpace's ``IAM_RESOURCE_PREFIX`` (configurable since v1.6.9, default
``MLSpace``): every builder that writes a name takes ``prefix``. MLSpace writes no ``Sid`` in any of these
documents, so none are invented here. CDK renders a one-element action or resource list as a bare string; the
CDK-sourced builders do the same, the ``iam_manager`` ones keep MLSpace's literal JSON shapes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS
from mlspace_s3magic.core.limits import iam_size as policy_size
from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    IAM_RESOURCE_PREFIX,
    SHARED_ROLE_PROJECT_TAG,
    SHARED_ROLE_USER_TAG,
    project_policy_name,
    user_policy_name,
    user_role_name,
)
from mlspace_s3magic.core.policy_edit import Document as PolicyDocument
from mlspace_s3magic.core.policy_edit import Statement

__all__ = ["project_policy_name", "user_policy_name", "user_role_name"]  # re-exported for the sandbox world

Tag = dict[str, str]

POLICY_VERSION = "2012-10-17"
DEFAULT_SYSTEM_TAG = "MLSpace"
IAM_POLICY_NAME_MAX_LENGTH = 128

NOTEBOOK_ROLE_NAME = "mlspace-notebook-role"
APP_ROLE_NAME = "mlspace-app-role"
PASS_ROLE_POLICY_NAME = "SMPassRolePolicy"
# CDK gives these two managed policies generated physical names; the construct ids stand in for them.
NOTEBOOK_POLICY_NAME = "mlspace-notebook-policy"
APP_POLICY_NAME = "mlspace-app-policy"
KMS_INSTANCE_CONSTRAINT_POLICY_NAME = f"{IAM_RESOURCE_PREFIX}-kms-instance-constraint-policy"
ENDPOINT_INSTANCE_CONSTRAINT_POLICY_NAME = f"{IAM_RESOURCE_PREFIX}-endpoint-instance-constraint"
JOB_INSTANCE_CONSTRAINT_POLICY_NAME = f"{IAM_RESOURCE_PREFIX}-job-instance-constraint"
APP_DENIED_SERVICES_POLICY_NAME = f"{IAM_RESOURCE_PREFIX}-app-denied-services"
DYNAMIC_USER_ROLE_TAG: Tag = {"Key": "dynamic-user-role", "Value": "true"}

# IAM's published quotas, counted without whitespace (the managed-policy one in core/limits.py).
INLINE_ROLE_POLICY_MAX_CHARS = 10240
TRUST_POLICY_MAX_CHARS = 2048

# Stand-ins for resources a real deployment creates (VPC, KMS key); the sandbox has none of them. They are the
# reference synthesis's stand-ins, so the default documents equal /work/shared/mlspace-reference/ exactly.
DEFAULT_KMS_KEY_ID = "01234567-89ab-cdef-0123-456789abcdef"
DEFAULT_PRIVATE_SUBNET_IDS: tuple[str, ...] = (
    "subnet-0123456789abcdef0",
    "subnet-0123456789abcdef1",
    "subnet-0123456789abcdef2",
)
DEFAULT_SECURITY_GROUP_ID = "sg-0123456789abcdef0"

# The only region where MLSpace turns Translate off (``ENABLE_TRANSLATE`` is derived from it since v1.6.2).
TRANSLATE_UNAVAILABLE_REGIONS = frozenset({"us-isob-east-1"})

_REQUEST_TAGS_PRESENT = {"aws:RequestTag/project": "false", "aws:RequestTag/user": "false"}
_RESOURCE_TAGS_PRESENT = {
    "aws:ResourceTag/project": "false",
    "aws:ResourceTag/system": "false",
    "aws:ResourceTag/user": "false",
}

# ``notebookPolicyStatements``' bedrock actions, as MLSpace lists them (``Retrieve*`` twice; CDK drops one).
_NOTEBOOK_BEDROCK_ACTIONS = (
    "bedrock:Associate*",
    "bedrock:Create*",
    "bedrock:BatchDelete*",
    "bedrock:Delete*",
    "bedrock:Put*",
    "bedrock:Retrieve*",
    "bedrock:Start*",
    "bedrock:Update*",
    "bedrock:Apply*",
    "bedrock:Detect*",
    "bedrock:List*",
    "bedrock:Get*",
    "bedrock:Invoke*",
    "bedrock:Retrieve*",
)

_PARTITION_BY_REGION_PREFIX = (
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("us-gov-", "aws-us-gov"),
    ("cn-", "aws-cn"),
)


# --------------------------------------------------------------------------------------------- helpers


def _document(statements: Iterable[Statement]) -> PolicyDocument:
    """Wrap statements the way every MLSpace document is wrapped."""
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def _cdk_value(values: Sequence[str]) -> str | list[str]:
    """CDK renders a single action/resource as a string; keep that so documents match what is deployed."""
    return values[0] if len(values) == 1 else list(values)


def _cdk_statement(
    effect: str,
    actions: Sequence[str],
    resources: Sequence[str],
    conditions: Mapping[str, Any] | None = None,
) -> Statement:
    """One CDK ``PolicyStatement`` as CloudFormation receives it (keys in CDK's order)."""
    statement: Statement = {"Action": _cdk_value(actions)}
    if conditions:
        statement["Condition"] = dict(conditions)
    statement["Effect"] = effect
    statement["Resource"] = _cdk_value(resources)
    return statement


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def minimize_statements(statements: Sequence[Statement], *, tokens: Collection[str] = ()) -> list[Statement]:
    """CDK's ``minimizePolicies``: merge statements, then de-duplicate and sort every Action/Resource list.

    Two statements merge when they have the same effect and conditions and either the same actions (their
    resources are joined) or the same resources (their actions are joined); each statement absorbs every later
    one it can, in order, and passes repeat until nothing merges. ``tokens`` are values that are unresolved
    tokens in CDK (the KMS key ARN): they sort before every literal, as ``${Token[...]}`` does.
    """

    def key(value: str) -> tuple[bool, str]:
        return (value not in tokens, value)

    def normal(values: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(values), key=key))

    pending = [
        (
            str(s["Effect"]),
            json.dumps(s.get("Condition", {}), sort_keys=True),
            s.get("Condition"),
            normal(_as_list(s["Action"])),
            normal(_as_list(s["Resource"])),
        )
        for s in statements
    ]
    merged_any = True
    while merged_any:
        merged_any = False
        result: list[tuple[str, str, Any, tuple[str, ...], tuple[str, ...]]] = []
        for candidate in pending:
            for index, current in enumerate(result):
                same_frame = current[0] == candidate[0] and current[1] == candidate[1]
                if same_frame and (current[3] == candidate[3] or current[4] == candidate[4]):
                    result[index] = (
                        current[0],
                        current[1],
                        current[2],
                        normal((*current[3], *candidate[3])),
                        normal((*current[4], *candidate[4])),
                    )
                    merged_any = True
                    break
            else:
                result.append(candidate)
        pending = result
    return [
        _cdk_statement(effect, actions, resources, conditions)
        for effect, _, conditions, actions, resources in pending
    ]


def _inverted(conditions: Mapping[str, str]) -> dict[str, str]:
    """MLSpace's ``invertedBooleanConditions``: flip each ``Null`` check so a Deny fires on missing tags."""
    return {key: "false" if value == "true" else "true" for key, value in conditions.items()}


def _system_tag_equals(key: str, system_tag: str, *, negate: bool = False) -> dict[str, dict[str, str]]:
    """MLSpace's ``request/resourceSystemTagEqualsConditions`` (Equals or NotEquals, ignoring case)."""
    operator = "StringNotEqualsIgnoreCase" if negate else "StringEqualsIgnoreCase"
    return {operator: {key: system_tag}}


def partition_for_region(region: str) -> str:
    """The AWS partition of a region (``aws-iso-b`` for ``us-isob-east-1``, ``aws`` for commercial ones)."""
    for region_prefix, partition in _PARTITION_BY_REGION_PREFIX:
        if region.startswith(region_prefix):
            return partition
    return "aws"


def translate_enabled(region: str) -> bool:
    """Whether MLSpace deploys Translate statements in ``region`` (v1.6.2+: everywhere but us-isob-east-1)."""
    return region not in TRANSLATE_UNAVAILABLE_REGIONS


def default_kms_key_arn(*, partition: str, region: str, account: str) -> str:
    """The stand-in for MLSpace's KMS master key (``props.encryptionKey.keyArn``)."""
    return f"arn:{partition}:kms:{region}:{account}:key/{DEFAULT_KMS_KEY_ID}"


def default_config_bucket(account: str) -> str:
    """MLSpace names its config bucket ``mlspace-config-<account>`` (``CONFIG_BUCKET_NAME`` + account)."""
    return f"mlspace-config-{account}"


def permissions_boundary_arn(*, partition: str, account: str) -> str:
    """Where the boundary lives, as ``PERMISSIONS_BOUNDARY_ARN`` points to it."""
    return f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY_NAME}"


def managed_policy_room(document: Mapping[str, Any]) -> int:
    """Characters still free in a managed policy: IAM's 6,144 minus the document's size (boundary: 140).

    With 140 free a new Sid-carrying statement does not fit; appending a bucket's two ARNs to an existing S3
    statement costs about 2 x (bucket name length) + 30 characters.
    """
    return MANAGED_POLICY_MAX_CHARS - policy_size(document)


def condition_keys(document: Mapping[str, Any]) -> set[str]:
    """Every condition key a document tests, so callers know what moto would have to evaluate."""
    keys: set[str] = set()
    for statement in document.get("Statement", []):
        for operands in statement.get("Condition", {}).values():
            keys.update(operands)
    return keys


# ------------------------------------------------------------------------------ iam_manager.py (backend)

# The actions MLSpace's project and user policies deny unless the request and the resource carry the
# project (user) tag: 25 SageMaker actions and 14 bedrock patterns (``bedrock:Retrieve*`` twice, as MLSpace
# writes it), 39 in all.
TAG_ENFORCED_ACTIONS: tuple[str, ...] = (
    "sagemaker:CreateModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateTransformJob",
    "sagemaker:DeleteModel",
    "sagemaker:DescribeModel",
    "sagemaker:DeleteEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:InvokeEndpoint",
    "sagemaker:DeleteEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:DescribeLabelingJob",
    "sagemaker:StopLabelingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:DescribeTransformJob",
    "sagemaker:StopTransformJob",
    "sagemaker:UpdateEndpoint",
    "sagemaker:UpdateEndpointWeightsAndCapacities",
    *_NOTEBOOK_BEDROCK_ACTIONS,  # the same list, in the same order, as the notebook policy's
)


def _tag_enforcing_statements(partition: str, tag: str, value: str) -> list[Statement]:
    """The endpoint Deny/Allow pair and the 39-action Deny shared by the project and user policies."""
    return [
        {
            "Effect": "Deny",
            "Action": ["sagemaker:CreateEndpoint"],
            "Resource": f"arn:{partition}:sagemaker:*:*:endpoint/*",
            "Condition": {"StringNotEqualsIgnoreCase": {f"aws:RequestTag/{tag}": value}},
        },
        {
            "Effect": "Allow",
            "Action": ["sagemaker:CreateEndpoint"],
            "Resource": f"arn:{partition}:sagemaker:*:*:endpoint-config/*",
        },
        {
            "Effect": "Deny",
            "Action": list(TAG_ENFORCED_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringNotEqualsIgnoreCase": {
                    f"aws:RequestTag/{tag}": value,
                    f"aws:ResourceTag/{tag}": value,
                }
            },
        },
    ]


def project_policy(
    *, partition: str, region: str, account: str, data_bucket: str, project: str
) -> PolicyDocument:
    """``MLSpace-project-<project>``: read/write ``project/<project>/*`` and tag-gated SageMaker/Bedrock use.

    ``region`` and ``account`` are accepted for a uniform call shape; MLSpace's template uses ``*`` for both.
    """
    del region, account
    bucket_arn = f"arn:{partition}:s3:::{data_bucket}"
    return _document(
        [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging"],
                "Resource": f"{bucket_arn}/project/{project}/*",
            },
            *_tag_enforcing_statements(partition, "project", project),
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": f"project/{project}/*"}},
            },
        ]
    )


def user_policy(
    *,
    partition: str,
    region: str,
    account: str,
    data_bucket: str,
    username: str,
    group_datasets: Iterable[str] = (),
) -> PolicyDocument:
    """``MLSpace-user-<user>``: the user's ``private/<user>/*``, ``global/*``, ``index/*`` and group datasets.

    ``group_datasets`` are the names of datasets shared with the user's groups; MLSpace adds
    ``group/<dataset>/*`` to the object statement (not to the ``s3:prefix`` list). ``iam:GetRole`` is not
    here: MLSpace grants it in the notebook policy. ``region``/``account`` are unused, as in MLSpace.
    """
    del region, account
    bucket_arn = f"arn:{partition}:s3:::{data_bucket}"
    resources = [f"{bucket_arn}/private/{username}/*", f"{bucket_arn}/global/*"]
    # MLSpace collects these in a set; sorting keeps our output deterministic.
    resources.extend(sorted({f"{bucket_arn}/group/{name}/*" for name in group_datasets}))
    return _document(
        [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:DeleteObject", "s3:PutObject", "s3:PutObjectTagging"],
                "Resource": resources,
            },
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
                "Resource": f"{bucket_arn}/index/*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"private/{username}/*", "global/*", "index/*"]}},
            },
            {"Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": bucket_arn},
            *_tag_enforcing_statements(partition, "user", username),
        ]
    )


def user_role_trust_policy(
    *, partition: str, account: str, sandbox_assumable: bool = False
) -> PolicyDocument:
    """Trust policy of a user role: only SageMaker may assume it, exactly as MLSpace writes it.

    ``sandbox_assumable`` is *not* MLSpace: it also trusts ``arn:<partition>:iam::<account>:root`` so a local
    test identity can assume the role. Leave it off to keep MLSpace's document.
    """
    statements: list[Statement] = [
        {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    if sandbox_assumable:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": "sts:AssumeRole",
            }
        )
    return _document(statements)


def user_role_tags(project: str, username: str, *, system_tag: str = DEFAULT_SYSTEM_TAG) -> list[Tag]:
    """Tags MLSpace gives a user role, in order: ``user``, ``project``, ``system``, ``dynamic-user-role``."""
    return [
        {"Key": "user", "Value": username},
        {"Key": "project", "Value": project},
        {"Key": "system", "Value": system_tag},
        dict(DYNAMIC_USER_ROLE_TAG),
    ]


def user_role_description(project: str, username: str) -> str:
    """The role description MLSpace sets (it searches roles by it in its own tests)."""
    return f"Default SageMaker Notebook role for Project: {project} - User: {username}"


def pass_role_inline_policy(*, role_arn: str) -> PolicyDocument:
    """``SMPassRolePolicy``: lets a role pass *itself* to SageMaker or Translate (jobs run as the user)."""
    return _document(
        [
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": role_arn,
                "Condition": {
                    "StringEqualsIgnoreCase": {
                        "iam:PassedToService": ["sagemaker.amazonaws.com", "translate.amazonaws.com"]
                    }
                },
            }
        ]
    )


def notebook_role_managed_policy_names(
    *, app_denied_services: bool = False, manage_iam_roles: bool = True, prefix: str = IAM_RESOURCE_PREFIX
) -> list[str]:
    """Managed policies on ``mlspace-notebook-role`` with ``MANAGE_IAM_ROLES`` on, in CDK's order.

    With ``manage_iam_roles`` off (shared-role mode) CDK adds no instance constraint policies.
    ``app_denied_services``: MLSpace attaches ``MLSpace-app-denied-services`` to the notebook role the first
    time an admin saves the service configuration, so roles created after that inherit it too.
    """
    names = [NOTEBOOK_POLICY_NAME, f"{prefix}-kms-instance-constraint-policy"]
    if manage_iam_roles:
        names += [f"{prefix}-endpoint-instance-constraint", f"{prefix}-job-instance-constraint"]
    if app_denied_services:
        names.append(f"{prefix}-app-denied-services")
    return names


def user_role_managed_policy_names(
    project: str, username: str, *, app_denied_services: bool = False, prefix: str = IAM_RESOURCE_PREFIX
) -> list[str]:
    """Managed policies MLSpace attaches to a new user role: the notebook role's, then project, then user.

    The role additionally carries the inline ``SMPassRolePolicy`` and has the permissions boundary set.
    """
    return [
        *notebook_role_managed_policy_names(app_denied_services=app_denied_services, prefix=prefix),
        project_policy_name(project, prefix=prefix),
        user_policy_name(username, prefix=prefix),
    ]


def shared_role_tags() -> list[Tag]:
    """The ``user`` and ``project`` tags of ``mlspace-notebook-role`` in shared-role mode.

    That is ``MANAGE_IAM_ROLES`` off, commercial and GovCloud partitions: they name no person and no project.
    """
    return [
        {"Key": "user", "Value": SHARED_ROLE_USER_TAG},
        {"Key": "project", "Value": SHARED_ROLE_PROJECT_TAG},
    ]


# --------------------------------------------------------------------------- iamConstruct.ts (CDK stack)


def _notebook_statements(
    *,
    arn_partition: str,
    arn_region: str,
    partition: str,
    region: str,
    account: str,
    data_bucket: str,
    config_bucket: str,
    kms_key_arn: str,
    private_subnet_ids: Sequence[str],
    security_group_id: str,
    system_tag: str,
    enable_translate: bool,
    manage_iam_roles: bool,
    allow_all_instances: bool,
    prefix: str,
) -> list[Statement]:
    """``notebookPolicyStatements(partition, region, allow_all_instances)``, before CDK merges them.

    ``arn_partition``/``arn_region`` are the function's arguments (``*`` when the boundary reuses it); the EC2
    ARNs always use the real partition and region, as in MLSpace.
    """
    sagemaker_arn = f"arn:{arn_partition}:sagemaker:{arn_region}:{account}"
    sagemaker_any = f"{sagemaker_arn}:*"
    ec2_arn_base = f"arn:{partition}:ec2:{region}:{account}"
    request_system_tag = _system_tag_equals("aws:RequestTag/system", system_tag)
    ml_actions = ["comprehend:Detect*", "comprehend:BatchDetect*"]
    if enable_translate:
        ml_actions.append("translate:TranslateText")

    statements = [
        _cdk_statement(
            "Allow", ["kms:CreateGrant"], [kms_key_arn], {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        ),
        _cdk_statement(
            "Allow",
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:Encrypt",
                "kms:GenerateDataKey",
            ],
            [
                *(f"{ec2_arn_base}:subnet/{subnet}" for subnet in private_subnet_ids),
                f"{ec2_arn_base}:security-group/{security_group_id}",
                f"{ec2_arn_base}:network-interface/*",
                kms_key_arn,
            ],
        ),
        _cdk_statement("Allow", ["sagemaker:AddTags"], [sagemaker_any]),
        _cdk_statement(
            "Allow",
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeVpcs",
                "sagemaker:DescribeWorkteam",
                "sagemaker:ListEndpointConfigs",
                "sagemaker:ListEndpoints",
                "sagemaker:ListLabelingJobs",
                "sagemaker:ListModels",
                "sagemaker:ListTags",
                "sagemaker:ListTrainingJobs",
                "sagemaker:ListTransformJobs",
                "sagemaker:ListHyperParameterTuningJobs",
                "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                "sagemaker:ListWorkteams",
                # MLSpace's grant for a notebook to read its own role (on "*", not only itself).
                "iam:GetRole",
                "cloudwatch:PutMetricData",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            ["*"],
        ),
        _cdk_statement(
            "Allow",
            ["sagemaker:CreateEndpoint", "sagemaker:CreateLabelingJob"],
            [sagemaker_any],
            {"Null": dict(_REQUEST_TAGS_PRESENT), **request_system_tag},
        ),
        _cdk_statement("Allow", ["sagemaker:CreateEndpoint"], [f"{sagemaker_arn}:endpoint-config/*"]),
        _cdk_statement(
            "Allow",
            ["sagemaker:CreateModel"],
            [f"{sagemaker_arn}:model/*"],
            {
                "Null": {
                    "sagemaker:VpcSecurityGroupIds": "false",
                    "sagemaker:VpcSubnets": "false",
                    **_REQUEST_TAGS_PRESENT,
                },
                **request_system_tag,
            },
        ),
        _cdk_statement(
            "Allow",
            [
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:DescribeModel",
                "sagemaker:DeleteModel",
                "sagemaker:DescribeHyperParameterTuningJob",
                "sagemaker:StopHyperParameterTuningJob",
                "sagemaker:DescribeEndpoint",
                "sagemaker:DeleteEndpoint",
                "sagemaker:InvokeEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:DeleteEndpointConfig",
                "sagemaker:DescribeLabelingJob",
                "sagemaker:StopLabelingJob",
            ],
            [sagemaker_any],
            {
                "Null": dict(_RESOURCE_TAGS_PRESENT),
                **_system_tag_equals("aws:ResourceTag/system", system_tag),
            },
        ),
        _cdk_statement("Allow", ml_actions, ["*"]),
        _cdk_statement(
            "Allow",
            ["s3:GetObject", "s3:ListBucket"],
            [
                f"arn:{arn_partition}:s3:::{config_bucket}",
                f"arn:{arn_partition}:s3:::{config_bucket}/*",
                f"arn:{arn_partition}:s3:::sagemaker-sample-files",
                f"arn:{arn_partition}:s3:::sagemaker-sample-files/*",
                f"arn:{arn_partition}:s3:::{data_bucket}/global-read-only/*",
            ],
        ),
        _cdk_statement(
            "Allow",
            ["s3:ListBucket"],
            [f"arn:{arn_partition}:s3:::{data_bucket}"],
            {"StringLike": {"s3:prefix": "global-read-only/*"}},
        ),
        # MLSpace scopes its bedrock grant to SageMaker ARNs (as it is written in v1.6.10).
        _cdk_statement(
            "Allow",
            _NOTEBOOK_BEDROCK_ACTIONS,
            [sagemaker_any],
            {"Null": {**_REQUEST_TAGS_PRESENT, **_RESOURCE_TAGS_PRESENT}, **request_system_tag},
        ),
    ]
    if enable_translate:
        statements.append(
            _cdk_statement(
                "Allow",
                [
                    "translate:StopTextTranslationJob",
                    "translate:List*",
                    "translate:StartTextTranslationJob",
                    "translate:DescribeTextTranslationJob",
                    "translate:TranslateDocument",
                    "translate:TranslateText",
                ],
                ["*"],
            )
        )
        statements.append(
            _cdk_statement(
                "Allow",
                ["iam:PassRole"],
                [f"arn:{arn_partition}:iam::{account}:role/{prefix}*"],
                {"StringEquals": {"iam:PassedToService": "translate.amazonaws.com"}},
            )
        )
    if not manage_iam_roles:
        # Without per-user roles the notebook role alone must reach every dataset.
        statements.append(_cdk_statement("Allow", ["s3:*"], [f"arn:{arn_partition}:s3:::{data_bucket}/*"]))

    job_resources = [f"{sagemaker_arn}:training-job/*", f"{sagemaker_arn}:hyper-parameter-tuning-job/*"]
    if not manage_iam_roles or allow_all_instances:
        statements.append(
            _cdk_statement(
                "Allow",
                ["sagemaker:CreateEndpointConfig", "sagemaker:CreateTransformJob"],
                [sagemaker_any],
                {"Null": dict(_REQUEST_TAGS_PRESENT), **request_system_tag},
            )
        )
        statements.append(
            _cdk_statement(
                "Allow",
                ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateTrainingJob"],
                job_resources,
                {
                    "Null": {
                        "sagemaker:VpcSecurityGroupIds": "false",
                        "sagemaker:VpcSubnets": "false",
                        **_REQUEST_TAGS_PRESENT,
                    },
                    **request_system_tag,
                },
            )
        )
    else:
        request_system_tag_differs = _system_tag_equals("aws:RequestTag/system", system_tag, negate=True)
        statements.append(
            _cdk_statement(
                "Deny",
                ["sagemaker:CreateEndpointConfig", "sagemaker:CreateTransformJob"],
                [sagemaker_any],
                {"Null": _inverted(_REQUEST_TAGS_PRESENT), **request_system_tag_differs},
            )
        )
        statements.append(
            _cdk_statement(
                "Deny",
                ["sagemaker:CreateHyperParameterTuningJob", "sagemaker:CreateTrainingJob"],
                job_resources,
                {
                    "Null": {
                        "sagemaker:VpcSecurityGroupIds": "true",
                        "sagemaker:VpcSubnets": "true",
                        **_inverted(_REQUEST_TAGS_PRESENT),
                    },
                    **request_system_tag_differs,
                },
            )
        )
    return statements


def notebook_policy(
    *,
    partition: str,
    region: str,
    account: str,
    data_bucket: str,
    config_bucket: str | None = None,
    kms_key_arn: str | None = None,
    private_subnet_ids: Sequence[str] = DEFAULT_PRIVATE_SUBNET_IDS,
    security_group_id: str = DEFAULT_SECURITY_GROUP_ID,
    system_tag: str = DEFAULT_SYSTEM_TAG,
    manage_iam_roles: bool = True,
    prefix: str = IAM_RESOURCE_PREFIX,
) -> PolicyDocument:
    """``mlspace-notebook-policy``: what every notebook (and so every user role) may do beyond its data.

    It holds MLSpace's only ``iam:GetRole`` grant for notebooks (on ``*``), read access to the config bucket,
    ``sagemaker-sample-files`` and ``global-read-only/*``, and, when ``manage_iam_roles`` is off, ``s3:*`` on
    the whole data bucket. ``config_bucket`` defaults to ``mlspace-config-<account>``. Translate follows the
    region (:func:`translate_enabled`). 14 statements, 5,389 characters in a commercial region.
    """
    key_arn = kms_key_arn or default_kms_key_arn(partition=partition, region=region, account=account)
    return _document(
        minimize_statements(
            _notebook_statements(
                arn_partition=partition,
                arn_region=region,
                partition=partition,
                region=region,
                account=account,
                data_bucket=data_bucket,
                config_bucket=config_bucket or default_config_bucket(account),
                kms_key_arn=key_arn,
                private_subnet_ids=private_subnet_ids,
                security_group_id=security_group_id,
                system_tag=system_tag,
                enable_translate=translate_enabled(region),
                manage_iam_roles=manage_iam_roles,
                allow_all_instances=False,
                prefix=prefix,
            ),
            tokens={key_arn},
        )
    )


def shared_role_notebook_policy(
    *,
    partition: str,
    region: str,
    account: str,
    data_bucket: str,
    config_bucket: str | None = None,
    kms_key_arn: str | None = None,
    private_subnet_ids: Sequence[str] = DEFAULT_PRIVATE_SUBNET_IDS,
    security_group_id: str = DEFAULT_SECURITY_GROUP_ID,
    system_tag: str = DEFAULT_SYSTEM_TAG,
    prefix: str = IAM_RESOURCE_PREFIX,
) -> PolicyDocument:
    """The notebook policy of ``mlspace-notebook-role`` when MLSpace's ``MANAGE_IAM_ROLES`` is off.

    Every notebook then runs as that one role (tagged :func:`shared_role_tags`), with ``s3:*`` on the whole
    data bucket and the job/endpoint creations allowed instead of denied; 14 statements, 5,247 characters.
    """
    return notebook_policy(
        partition=partition,
        region=region,
        account=account,
        data_bucket=data_bucket,
        config_bucket=config_bucket,
        kms_key_arn=kms_key_arn,
        private_subnet_ids=private_subnet_ids,
        security_group_id=security_group_id,
        system_tag=system_tag,
        manage_iam_roles=False,
        prefix=prefix,
    )


def kms_instance_constraint_policy() -> PolicyDocument:
    """``MLSpace-kms-instance-constraint-policy``: no SageMaker volume without a KMS key."""
    return _document(
        [
            _cdk_statement(
                "Deny",
                [
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:CreateNotebookInstance",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateTransformJob",
                ],
                ["*"],
                {"Null": {"sagemaker:VolumeKmsKey": "true"}},
            )
        ]
    )


def _instance_constraint_statement(
    *, partition: str, region: str, account: str, pairs: Mapping[str, str], instance_types: Sequence[str]
) -> Statement:
    """``instanceConstraintPolicyStatement``: allow the actions only for the admin-enabled instance types."""
    return _cdk_statement(
        "Allow",
        [f"sagemaker:{action}" for action in pairs],
        [f"arn:{partition}:sagemaker:{region}:{account}:{resource}/*" for resource in pairs.values()],
        {"ForAnyValue:StringEquals": {"sagemaker:InstanceTypes": list(instance_types)}},
    )


def endpoint_instance_constraint_policy(
    *, partition: str, region: str, account: str, instance_types: Sequence[str] = ()
) -> PolicyDocument:
    """``MLSpace-endpoint-instance-constraint``; CDK deploys it with no types, app config fills them in."""
    return _document(
        [
            _instance_constraint_statement(
                partition=partition,
                region=region,
                account=account,
                pairs={"CreateEndpointConfig": "endpoint-config"},
                instance_types=instance_types,
            )
        ]
    )


def job_instance_constraint_policy(
    *, partition: str, region: str, account: str, instance_types: Sequence[str] = ()
) -> PolicyDocument:
    """``MLSpace-job-instance-constraint`` for training, tuning and transform jobs (see the endpoint one)."""
    return _document(
        [
            _instance_constraint_statement(
                partition=partition,
                region=region,
                account=account,
                pairs={
                    "CreateHyperParameterTuningJob": "hyper-parameter-tuning-job",
                    "CreateTrainingJob": "training-job",
                },
                instance_types=instance_types,
            ),
            _instance_constraint_statement(
                partition=partition,
                region=region,
                account=account,
                pairs={"CreateTransformJob": "transform-job"},
                instance_types=instance_types,
            ),
        ]
    )


def permissions_boundary(
    *,
    partition: str,
    region: str,
    account: str,
    data_bucket: str,
    config_bucket: str | None = None,
    kms_key_arn: str | None = None,
    private_subnet_ids: Sequence[str] = DEFAULT_PRIVATE_SUBNET_IDS,
    security_group_id: str = DEFAULT_SECURITY_GROUP_ID,
    system_tag: str = DEFAULT_SYSTEM_TAG,
    prefix: str = IAM_RESOURCE_PREFIX,
) -> PolicyDocument:
    """``mlspace-project-user-permission-boundary``: the most any user role can ever do.

    S3 is limited to the data bucket's ``project/``, ``group/``, ``global/``, ``private/`` and ``index/``
    prefixes plus what the notebook statements add (config bucket, ``sagemaker-sample-files``,
    ``global-read-only/*``); no other bucket is reachable, whatever a policy grants. MLSpace writes its own
    S3/PassRole ARNs with partition ``*`` and reuses the notebook statements with partition and region ``*``
    and every instance allowed. Merged as CDK deploys it: 18 statements, 6,004 characters (140 free, see
    :func:`boundary_room`) in a commercial region; 17 and 5,616 where Translate is off.
    """
    translate = translate_enabled(region)
    pass_role_services: list[str] = ["sagemaker.amazonaws.com"]
    if translate:
        pass_role_services.append("translate.amazonaws.com")
    any_bucket = f"arn:*:s3:::{data_bucket}"
    key_arn = kms_key_arn or default_kms_key_arn(partition=partition, region=region, account=account)
    own_statements = [
        _cdk_statement(
            "Allow",
            ["s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
            [
                f"{any_bucket}/project/*",
                f"{any_bucket}/group/*",
                f"{any_bucket}/global/*",
                f"{any_bucket}/private/*",
            ],
        ),
        _cdk_statement(
            "Allow", ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"], [f"{any_bucket}/index/*"]
        ),
        _cdk_statement(
            "Allow",
            ["s3:ListBucket"],
            [any_bucket],
            {"StringLike": {"s3:prefix": ["global/*", "index/*", "private/*", "project/*", "group/*"]}},
        ),
        _cdk_statement("Allow", ["s3:GetBucketLocation"], [any_bucket]),
        _cdk_statement(
            "Allow",
            ["iam:PassRole"],
            [f"arn:*:iam::{account}:role/{prefix}*"],
            {"StringEquals": {"iam:PassedToService": _cdk_value(pass_role_services)}},
        ),
    ]
    notebook_statements = _notebook_statements(
        arn_partition="*",
        arn_region="*",
        partition=partition,
        region=region,
        account=account,
        data_bucket=data_bucket,
        config_bucket=config_bucket or default_config_bucket(account),
        kms_key_arn=key_arn,
        private_subnet_ids=private_subnet_ids,
        security_group_id=security_group_id,
        system_tag=system_tag,
        enable_translate=translate,
        manage_iam_roles=True,
        allow_all_instances=True,
        prefix=prefix,
    )
    return _document(minimize_statements([*own_statements, *notebook_statements], tokens={key_arn}))


def boundary_room(**boundary_arguments: Any) -> int:
    """Characters left free in the boundary :func:`permissions_boundary` builds with these arguments.

    Computed from the document (IAM's 6,144 minus its size): 140 in a commercial region with the defaults.
    """
    return managed_policy_room(permissions_boundary(**boundary_arguments))


def app_policy(
    *,
    partition: str,
    region: str,
    account: str,
    kms_key_arn: str | None = None,
    system_tag: str = DEFAULT_SYSTEM_TAG,
    enable_translate: bool = True,
    manage_iam_roles: bool = True,
    role_name: str = APP_ROLE_NAME,
    prefix: str = IAM_RESOURCE_PREFIX,
) -> PolicyDocument:
    """``mlspace-app-policy`` (``appPolicyAndStatements``): the web app's Lambda role, never a notebook's.

    Useful to explain why the MLSpace UI can list a bucket a notebook cannot: the app holds ``s3:List*`` and
    ``s3:Get*`` on every bucket. With ``role_name="mlspace-system-role"`` it is the system policy.
    """
    arn_iam = f"arn:{partition}:iam::{account}"
    prefixed_roles = f"{arn_iam}:role/{prefix}*"
    sagemaker_arn = f"arn:{partition}:sagemaker:{region}:{account}"
    key_arn = kms_key_arn or default_kms_key_arn(partition=partition, region=region, account=account)
    statements = [
        _cdk_statement("Allow", ["kms:RetireGrant"], [key_arn]),
        _cdk_statement("Allow", ["logs:FilterLogEvents"], ["*"]),
        _cdk_statement(
            "Allow",
            ["iam:PassRole", "iam:ListRoleTags"],
            [
                f"{arn_iam}:role/EMR_DefaultRole",
                f"{arn_iam}:role/EMR_EC2_DefaultRole",
                f"{arn_iam}:role/{role_name}",
            ],
        ),
        _cdk_statement(
            "Allow",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:Scan",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:UpdateItem",
            ],
            [f"arn:{partition}:dynamodb:{region}:{account}:table/mlspace-*"],
        ),
        _cdk_statement(
            "Allow",
            ["secretsmanager:GetSecretValue"],
            [f"arn:{partition}:secretsmanager:{region}:{account}:secret:mlspace/auth/*"],
        ),
        _cdk_statement(
            "Allow",
            ["ec2:AuthorizeSecurityGroupIngress"],
            [f"arn:{partition}:ec2:{region}:{account}:security-group/*"],
        ),
        _cdk_statement(
            "Allow",
            [
                "ec2:DescribeInstances",
                "ec2:DescribeRouteTables",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeVpcEndpoints",
            ],
            ["*"],
        ),
        _cdk_statement(
            "Allow",
            [
                "s3:List*",
                "s3:Get*",
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:DeleteObject",
                "s3:PutBucketNotification",
            ],
            [f"arn:{partition}:s3:::*"],
        ),
        _cdk_statement(
            "Allow",
            ["sagemaker:CreateNotebookInstance"],
            [f"{sagemaker_arn}:notebook-instance/*"],
            {
                "StringEquals": {
                    "sagemaker:DirectInternetAccess": "Disabled",
                    "sagemaker:RootAccess": "Disabled",
                },
                "Null": {
                    "sagemaker:VpcSecurityGroupIds": "false",
                    "sagemaker:VpcSubnets": "false",
                    **_REQUEST_TAGS_PRESENT,
                },
            },
        ),
        _cdk_statement(
            "Allow",
            [
                "sagemaker:CreateNotebookInstanceLifecycleConfig",
                "sagemaker:UpdateNotebookInstanceLifecycleConfig",
                "sagemaker:DeleteNotebookInstanceLifecycleConfig",
                "sagemaker:DescribeNotebookInstanceLifecycleConfig",
            ],
            [f"{sagemaker_arn}:notebook-instance-lifecycle-config/*"],
        ),
        _cdk_statement(
            "Allow",
            [
                "sagemaker:DeleteNotebookInstance",
                "sagemaker:DescribeNotebookInstance",
                "sagemaker:StartNotebookInstance",
                "sagemaker:StopNotebookInstance",
                "sagemaker:UpdateNotebookInstance",
            ],
            [f"{sagemaker_arn}:notebook-instance/*"],
            {"Null": dict(_RESOURCE_TAGS_PRESENT)},
        ),
        _cdk_statement(
            "Allow",
            ["sagemaker:CreatePresignedNotebookInstanceUrl"],
            [f"{sagemaker_arn}:notebook-instance/*"],
        ),
        _cdk_statement(
            "Allow",
            ["sagemaker:ListNotebookInstanceLifecycleConfigs", "sagemaker:ListNotebookInstances"],
            ["*"],
        ),
        _cdk_statement(
            "Allow",
            ["lambda:InvokeFunction"],
            [f"arn:{partition}:lambda:{region}:{account}:function:mls-lambda-*"],
        ),
        _cdk_statement(
            "Allow",
            [
                "elasticmapreduce:RunJobFlow",
                "elasticmapreduce:ListClusters",
                "elasticmapreduce:ListReleaseLabels",
            ],
            ["*"],
        ),
        _cdk_statement(
            "Allow",
            [
                "elasticmapreduce:DescribeCluster",
                "elasticmapreduce:ListInstances",
                "elasticmapreduce:AddTags",
                "elasticmapreduce:TerminateJobFlows",
                "elasticmapreduce:SetTerminationProtection",
            ],
            [f"arn:{partition}:elasticmapreduce:{region}:{account}:cluster/*"],
        ),
    ]
    if manage_iam_roles:
        system_resource_tag = {"iam:ResourceTag/system": system_tag}
        statements += [
            _cdk_statement(
                "Allow",
                ["iam:CreateRole"],
                [prefixed_roles],
                {
                    "StringEqualsIgnoreCase": dict(system_resource_tag),
                    "StringEquals": {
                        "iam:PermissionsBoundary": permissions_boundary_arn(
                            partition=partition, account=account
                        )
                    },
                },
            ),
            _cdk_statement(
                "Allow",
                [
                    "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:DeleteRole",
                    "iam:DeleteRolePolicy",
                    "iam:PutRolePolicy",
                ],
                [prefixed_roles],
                {"StringEqualsIgnoreCase": dict(system_resource_tag)},
            ),
            _cdk_statement(
                "Allow",
                ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                [f"{arn_iam}:role/{APP_ROLE_NAME}", f"{arn_iam}:role/{NOTEBOOK_ROLE_NAME}", prefixed_roles],
                {
                    "StringEqualsIgnoreCase": {
                        "iam:PolicyARN": f"{arn_iam}:policy/{prefix}-app-denied-services",
                        **system_resource_tag,
                    }
                },
            ),
            _cdk_statement(
                "Allow",
                [
                    "iam:ListRoles",
                    "iam:ListEntitiesForPolicy",
                    "iam:ListPolicyVersions",
                    "iam:ListAttachedRolePolicies",
                    "iam:GetRole",
                    "iam:GetPolicy",
                    "iam:ListRoleTags",
                ],
                ["*"],
            ),
            _cdk_statement(
                "Allow",
                [
                    "iam:CreatePolicy",
                    "iam:CreatePolicyVersion",
                    "iam:DeletePolicy",
                    "iam:DeletePolicyVersion",
                    "iam:TagPolicy",
                ],
                [f"{arn_iam}:policy/{prefix}*"],
            ),
            _cdk_statement(
                "Allow",
                ["iam:SimulatePrincipalPolicy", "iam:TagRole", "iam:AttachRolePolicy"],
                [prefixed_roles],
            ),
            _cdk_statement(
                "Allow",
                ["iam:PassRole"],
                [prefixed_roles],
                {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        ]
    if enable_translate:
        statements.append(
            _cdk_statement(
                "Allow",
                ["iam:PassRole"],
                [f"{arn_iam}:role/{role_name}"],
                {"StringEquals": {"iam:PassedToService": "translate.amazonaws.com"}},
            )
        )
    return _document(statements)
