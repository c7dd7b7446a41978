"""MLSpace's IAM documents, rebuilt statement by statement, so the sandbox allows what MLSpace allows.

Why this exists: an AccessDenied can only be explained (and reproduced locally) if the sandbox holds the same
roles, boundary and policies as a real MLSpace deployment. Everything here is our own code that *builds* the
documents MLSpace deploys; nothing is copied. Sources read in the public repository ``awslabs/mlspace``:

``backend/src/ml_space_lambda/utils/iam_manager.py`` @ ``2a4ee8b0286e3b32af80c83e84c6a944236f2235``
(the release with group datasets and the ``dynamic-user-role`` tag; cross-checked against @ ``a67fea2b``,
``c7ec9d19``, ``0a8f35c4`` and ``e15cd04d``, whose project/user statements are identical):

* the role and policy names live in :mod:`mlspace_s3magic.core.mlspace` (``_generate_iam_role_name``).
* :func:`project_policy` - ``self.project_policy`` template in ``__init__``.
* :func:`user_policy` - ``_generate_user_policy`` (group datasets included).
* :func:`user_role_trust_policy`, :func:`user_role_tags`, :func:`user_role_description` -
  ``_create_iam_role``.
* :func:`pass_role_inline_policy` - the ``SMPassRolePolicy`` document put on each role in ``add_iam_role``.
* :func:`user_role_managed_policy_names` - ``add_iam_role``: every policy attached to the notebook role,
  then the project policy, then the user policy (plus ``update_dynamic_policy`` for the denied-services one).

``backend/src/ml_space_lambda/utils/common_functions.py`` @ ``cef99cec1945a44ef0d0d09fa1f4a0d048bb1aef``:
``generate_tags`` (tag order ``user``, ``project``, ``system`` then extras).

``lib/constructs/iamConstruct.ts`` @ ``3b81e5337ffe4107060fb108090f65bf8075bdfd`` (it builds every statement
inline with CDK ``PolicyStatement``; it imports no other statement files):

* :func:`notebook_policy` - ``notebookPolicyStatements`` (the ``mlspace-notebook-policy`` managed policy).
* :func:`kms_instance_constraint_policy`, :func:`endpoint_instance_constraint_policy`,
  :func:`job_instance_constraint_policy` - the three constraint policies added to ``notebookManagedPolicies``.
* :func:`permissions_boundary` - ``mlspace-project-user-permission-boundary``.
* :func:`app_policy` - ``appPolicyAndStatements`` (the app role's own policy; not on user roles).

``lib/constants.ts`` supplies the defaults (``SYSTEM_TAG``/``IAM_RESOURCE_PREFIX`` = ``MLSpace``,
``MANAGE_IAM_ROLES`` and ``ENABLE_TRANSLATE`` true); the CDK app names buckets ``mlspace-<kind>-<account>``.

MLSpace writes no ``Sid`` in any of these documents, so none are invented here. CDK renders a one-element
action or resource list as a bare string; the CDK-sourced builders do the same, the ``iam_manager`` ones keep
MLSpace's literal JSON shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    IAM_RESOURCE_PREFIX,
    project_policy_name,
    user_policy_name,
    user_role_name,
)

__all__ = ["project_policy_name", "user_policy_name", "user_role_name"]  # re-exported for the sandbox world

PolicyDocument = dict[str, Any]
Statement = dict[str, Any]
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

# IAM's published quotas, counted without whitespace.
MANAGED_POLICY_MAX_CHARS = 6144
INLINE_ROLE_POLICY_MAX_CHARS = 10240
TRUST_POLICY_MAX_CHARS = 2048

# Stand-ins for resources a real deployment creates (VPC, KMS key); the sandbox has none of them.
DEFAULT_KMS_KEY_ID = "00000000-0000-0000-0000-000000000000"
DEFAULT_PRIVATE_SUBNET_IDS: tuple[str, ...] = ("subnet-0000000000000000a", "subnet-0000000000000000b")
DEFAULT_SECURITY_GROUP_ID = "sg-0000000000000000a"

_REQUEST_TAGS_PRESENT = {"aws:RequestTag/project": "false", "aws:RequestTag/user": "false"}
_RESOURCE_TAGS_PRESENT = {
    "aws:ResourceTag/project": "false",
    "aws:ResourceTag/system": "false",
    "aws:ResourceTag/user": "false",
}


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
    """One CDK ``PolicyStatement`` as CloudFormation receives it."""
    statement: Statement = {
        "Effect": effect,
        "Action": _cdk_value(actions),
        "Resource": _cdk_value(resources),
    }
    if conditions:
        statement["Condition"] = dict(conditions)
    return statement


def _inverted(conditions: Mapping[str, str]) -> dict[str, str]:
    """MLSpace's ``invertedBooleanConditions``: flip each ``Null`` check so a Deny fires on missing tags."""
    return {key: "false" if value == "true" else "true" for key, value in conditions.items()}


def _system_tag_equals(key: str, system_tag: str, *, negate: bool = False) -> dict[str, dict[str, str]]:
    """MLSpace's ``request/resourceSystemTagEqualsConditions`` (Equals or NotEquals, ignoring case)."""
    operator = "StringNotEqualsIgnoreCase" if negate else "StringEqualsIgnoreCase"
    return {operator: {key: system_tag}}


def default_kms_key_arn(*, partition: str, region: str, account: str) -> str:
    """The stand-in for MLSpace's KMS master key (``props.encryptionKey.keyArn``)."""
    return f"arn:{partition}:kms:{region}:{account}:key/{DEFAULT_KMS_KEY_ID}"


def default_config_bucket(account: str) -> str:
    """MLSpace names its config bucket ``mlspace-config-<account>`` (``CONFIG_BUCKET_NAME`` + account)."""
    return f"mlspace-config-{account}"


def permissions_boundary_arn(*, partition: str, account: str) -> str:
    """Where the boundary lives, as ``PERMISSIONS_BOUNDARY_ARN`` points to it."""
    return f"arn:{partition}:iam::{account}:policy/{BOUNDARY_POLICY_NAME}"


def policy_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against its size quotas: the JSON without any whitespace."""
    return sum(not char.isspace() for char in json.dumps(document))


def condition_keys(document: Mapping[str, Any]) -> set[str]:
    """Every condition key a document tests, so callers know what moto would have to evaluate."""
    keys: set[str] = set()
    for statement in document.get("Statement", []):
        for operands in statement.get("Condition", {}).values():
            keys.update(operands)
    return keys


# ------------------------------------------------------------------------------ iam_manager.py (backend)


def project_policy(
    *, partition: str, region: str, account: str, data_bucket: str, project: str
) -> PolicyDocument:
    """``MLSpace-project-<project>``: read/write ``project/<project>/*`` and tag-gated SageMaker creation.

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
            {
                "Effect": "Deny",
                "Action": ["sagemaker:CreateEndpoint"],
                "Resource": f"arn:{partition}:sagemaker:*:*:endpoint/*",
                "Condition": {"StringNotEqualsIgnoreCase": {"aws:RequestTag/project": project}},
            },
            {
                "Effect": "Allow",
                "Action": ["sagemaker:CreateEndpoint"],
                "Resource": f"arn:{partition}:sagemaker:*:*:endpoint-config/*",
            },
            {
                "Effect": "Deny",
                "Action": [
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:CreateTransformJob",
                ],
                "Resource": "*",
                "Condition": {"StringNotEqualsIgnoreCase": {"aws:RequestTag/project": project}},
            },
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
            {
                "Effect": "Deny",
                "Action": ["sagemaker:CreateEndpoint"],
                "Resource": f"arn:{partition}:sagemaker:*:*:endpoint/*",
                "Condition": {"StringNotEqualsIgnoreCase": {"aws:RequestTag/user": username}},
            },
            {
                "Effect": "Allow",
                "Action": ["sagemaker:CreateEndpoint"],
                "Resource": f"arn:{partition}:sagemaker:*:*:endpoint-config/*",
            },
            {
                "Effect": "Deny",
                "Action": [
                    "sagemaker:CreateModel",
                    "sagemaker:CreateEndpointConfig",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:CreateTransformJob",
                ],
                "Resource": "*",
                "Condition": {"StringNotEqualsIgnoreCase": {"aws:RequestTag/user": username}},
            },
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


def notebook_role_managed_policy_names(*, app_denied_services: bool = False) -> list[str]:
    """Managed policies on ``mlspace-notebook-role`` with ``MANAGE_IAM_ROLES`` on, in CDK's order.

    ``app_denied_services``: MLSpace attaches ``MLSpace-app-denied-services`` to the notebook role the first
    time an admin saves the service configuration, so roles created after that inherit it too.
    """
    names = [
        NOTEBOOK_POLICY_NAME,
        KMS_INSTANCE_CONSTRAINT_POLICY_NAME,
        ENDPOINT_INSTANCE_CONSTRAINT_POLICY_NAME,
        JOB_INSTANCE_CONSTRAINT_POLICY_NAME,
    ]
    if app_denied_services:
        names.append(APP_DENIED_SERVICES_POLICY_NAME)
    return names


def user_role_managed_policy_names(
    project: str, username: str, *, app_denied_services: bool = False
) -> list[str]:
    """Managed policies MLSpace attaches to a new user role: the notebook role's, then project, then user.

    The role additionally carries the inline ``SMPassRolePolicy`` and has the permissions boundary set.
    """
    return [
        *notebook_role_managed_policy_names(app_denied_services=app_denied_services),
        project_policy_name(project),
        user_policy_name(username),
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
) -> list[Statement]:
    """``notebookPolicyStatements(partition, region, allow_all_instances)``.

    ``arn_partition``/``arn_region`` are the function's arguments (``*`` when the boundary reuses it); the EC2
    and KMS ARNs always use the real partition and region, as in MLSpace.
    """
    sagemaker_any = f"arn:{arn_partition}:sagemaker:{arn_region}:{account}:*"
    sagemaker_arn = f"arn:{arn_partition}:sagemaker:{arn_region}:{account}"
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
                "sagemaker:DescribeWorkforce",
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
        _cdk_statement("Allow", ["bedrock:*"], ["*"]),
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
                [f"arn:{arn_partition}:iam::{account}:role/{IAM_RESOURCE_PREFIX}*"],
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
    enable_translate: bool = True,
    manage_iam_roles: bool = True,
) -> PolicyDocument:
    """``mlspace-notebook-policy``: what every notebook (and so every user role) may do beyond its data.

    It holds MLSpace's only ``iam:GetRole`` grant for notebooks (on ``*``), read access to the config bucket,
    ``sagemaker-sample-files`` and ``global-read-only/*``, and, when ``manage_iam_roles`` is off, ``s3:*`` on
    the whole data bucket. ``config_bucket`` defaults to ``mlspace-config-<account>``.
    """
    return _document(
        _notebook_statements(
            arn_partition=partition,
            arn_region=region,
            partition=partition,
            region=region,
            account=account,
            data_bucket=data_bucket,
            config_bucket=config_bucket or default_config_bucket(account),
            kms_key_arn=kms_key_arn
            or default_kms_key_arn(partition=partition, region=region, account=account),
            private_subnet_ids=private_subnet_ids,
            security_group_id=security_group_id,
            system_tag=system_tag,
            enable_translate=enable_translate,
            manage_iam_roles=manage_iam_roles,
            allow_all_instances=False,
        )
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
    enable_translate: bool = True,
) -> PolicyDocument:
    """``mlspace-project-user-permission-boundary``: the most any user role can ever do.

    S3 is limited to the data bucket's ``project/``, ``group/``, ``global/``, ``private/`` and ``index/``
    prefixes plus what the notebook statements add (config bucket, ``sagemaker-sample-files``,
    ``global-read-only/*``); no other bucket is reachable, whatever a policy grants. MLSpace writes its own
    S3/PassRole ARNs with partition ``*`` and reuses the notebook statements with partition and region ``*``.
    """
    pass_role_services = ["sagemaker.amazonaws.com", "bedrock.amazonaws.com"]
    if enable_translate:
        pass_role_services.append("translate.amazonaws.com")
    any_bucket = f"arn:*:s3:::{data_bucket}"
    notebook_statements = _notebook_statements(
        arn_partition="*",
        arn_region="*",
        partition=partition,
        region=region,
        account=account,
        data_bucket=data_bucket,
        config_bucket=config_bucket or default_config_bucket(account),
        kms_key_arn=kms_key_arn or default_kms_key_arn(partition=partition, region=region, account=account),
        private_subnet_ids=private_subnet_ids,
        security_group_id=security_group_id,
        system_tag=system_tag,
        enable_translate=enable_translate,
        manage_iam_roles=True,
        allow_all_instances=True,
    )

    def _mentions_bedrock(statement: Statement) -> bool:
        actions = statement["Action"]
        return any(
            action.startswith("bedrock") for action in ([actions] if isinstance(actions, str) else actions)
        )

    return _document(
        [
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
                [f"arn:*:iam::{account}:role/{IAM_RESOURCE_PREFIX}*"],
                {"StringEquals": {"iam:PassedToService": pass_role_services}},
            ),
            _cdk_statement(
                "Allow",
                ["bedrock:*"],
                ["*"],
                {
                    "ForAllValues:StringNotLike": {
                        "bedrock:Action": ["bedrock:TagResource", "bedrock:UntagResource"]
                    }
                },
            ),
            *(statement for statement in notebook_statements if not _mentions_bedrock(statement)),
        ]
    )


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
) -> PolicyDocument:
    """``mlspace-app-policy`` (``appPolicyAndStatements``): the web app's Lambda role, never a notebook's.

    Useful to explain why the MLSpace UI can list a bucket a notebook cannot: the app holds ``s3:List*`` and
    ``s3:Get*`` on every bucket. With ``role_name="mlspace-system-role"`` it is the system policy.
    """
    arn_iam = f"arn:{partition}:iam::{account}"
    prefixed_roles = f"{arn_iam}:role/{IAM_RESOURCE_PREFIX}*"
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
                        "iam:PolicyARN": f"{arn_iam}:policy/{APP_DENIED_SERVICES_POLICY_NAME}",
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
                [f"{arn_iam}:policy/{IAM_RESOURCE_PREFIX}*"],
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
