"""The sandbox's world, built with real IAM, STS and S3 calls so that it is exactly what boto3 sees.

Account 111111111111 is an MLSpace deployment as v1.6.10 deploys it in a commercial region (the documents of
:mod:`.mlspace_policies`): its data bucket, the permissions boundary, project ``demo`` with users ``alice``
and ``bob`` (one role each, as MLSpace names, tags and bounds them) and an IAM admin. Account 222222222222 is
a partner: ``BucketToBeShared`` (the runbook's example, a legacy-style name) with no grant to MLSpace,
``partner-shared-readonly``, which alice can already read (its bucket policy lets the MLSpace account in,
and an earlier grant of our admin endpoint put the bucket in the boundary and in our grant policy
``MLSpace-s3access-user-alice``), and ``partner-kms-encrypted``, whose objects are encrypted with a
customer managed KMS key: its bucket policy lets the MLSpace account read, its key policy does not yet.

With ``shared_role`` the MLSpace account is deployed with ``MANAGE_IAM_ROLES`` off instead
(:func:`shared_role_documents`): alice and bob are both sessions of the one role ``mlspace-notebook-role``,
and partner-shared-readonly's bucket policy names that role rather than the whole account.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import DEFAULT_REGION, Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.grant import AccessLevel, GrantScope
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.mlspace import (
    BOUNDARY_POLICY_NAME,
    NOTEBOOK_SESSION_NAME,
    data_bucket_name,
    project_policy_name,
    user_policy_name,
    user_role_name,
)
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.policy.arns import iam_role_arn, resource_name
from mlspace_s3magic.core.remedy import plan_fixes
from mlspace_s3magic.sandbox import mlspace_policies
from mlspace_s3magic.sandbox.state import SandboxPrincipal, SandboxState

PARTITION = "aws"
MLSPACE_ACCOUNT = "111111111111"
PARTNER_ACCOUNT = "222222222222"
PROJECT = "demo"
USERS = ("alice", "bob")
DATA_BUCKET = data_bucket_name(MLSPACE_ACCOUNT)
SHARED_BUCKET = "BucketToBeShared"
READABLE_BUCKET = "partner-shared-readonly"
KMS_BUCKET = "partner-kms-encrypted"
# The partner's customer managed key for KMS_BUCKET; its key policy is KMS's default (the partner account
# only).
KMS_KEY_ALIAS = "alias/partner-datasets"
# The grant an admin made before the sandbox starts: alice may read partner-shared-readonly.
READABLE_GRANTEE = "alice"
LOG_OBJECT_COUNT = 300
# A role the partner lets the MLSpace admin assume to edit its bucket policies, so the admin endpoint can
# apply that layer itself instead of waiting for the owner.
OWNER_ROLE_NAME = "S3AccessBucketPolicyEditor"
OWNER_ROLE_ARN = iam_role_arn(PARTITION, PARTNER_ACCOUNT, OWNER_ROLE_NAME)
SHARED_ROLE_ARN = iam_role_arn(PARTITION, MLSPACE_ACCOUNT, mlspace_policies.NOTEBOOK_ROLE_NAME)
# What the sandbox's MLSpace admin has registered as shared: how notebooks learn these buckets exist.
SHARED_BUCKETS = (
    SharedBucket(
        bucket=SHARED_BUCKET,
        owner_account=PARTNER_ACCOUNT,
        region=DEFAULT_REGION,
        description="Partner datasets (the runbook's example)",
        owner_role_arn=OWNER_ROLE_ARN,
    ),
    SharedBucket(
        bucket=READABLE_BUCKET,
        owner_account=PARTNER_ACCOUNT,
        region=DEFAULT_REGION,
        description="Partner reference data, shared read-only",
        owner_role_arn=OWNER_ROLE_ARN,
    ),
    SharedBucket(
        bucket=KMS_BUCKET,
        owner_account=PARTNER_ACCOUNT,
        region=DEFAULT_REGION,
        description="Partner datasets encrypted with the partner's KMS key",
        owner_role_arn=OWNER_ROLE_ARN,
    ),
)
# The registry file notebooks read lists these (``save_registry_file`` leaves the owner's role out).
REGISTRY = SHARED_BUCKETS
SEED_WORKERS = 8


def principal_name(user: str) -> str:
    return f"{user}@{PROJECT}"


def seed_world(endpoint_url: str, *, shared_role: bool = False) -> SandboxState:
    """Build both accounts on a freshly reset server whose enforcement is still off; ``shared_role`` deploys
    MLSpace without per-user roles."""
    settings = AwsSettings(
        region=DEFAULT_REGION, endpoint_url=endpoint_url, max_pool_connections=SEED_WORKERS
    )
    admin = _bootstrap_admin(settings, MLSPACE_ACCOUNT, "admin")
    owner = _bootstrap_admin(settings, PARTNER_ACCOUNT, "owner")
    mlspace = Aws(settings, admin.credentials)
    partner = Aws(settings, owner.credentials)
    _seed_owner_role(partner, admin.arn)
    with ThreadPoolExecutor(SEED_WORKERS) as pool:
        _seed_partner_buckets(partner, pool, readable_by=SHARED_ROLE_ARN if shared_role else None)
        _put_objects(mlspace, DATA_BUCKET, _data_bucket_objects(), pool, create=True)
    users = _seed_shared_role(mlspace) if shared_role else _seed_mlspace_iam(mlspace)
    principals = {p.name: p for p in (admin, owner, *users)}
    return SandboxState(
        endpoint_url=endpoint_url, principals=principals, region=DEFAULT_REGION, shared_role=shared_role
    )


def _bootstrap_admin(settings: AwsSettings, account: str, user_name: str) -> SandboxPrincipal:
    """Create an administrator in ``account``; moto needs the account named in a header before keys exist."""
    iam = Aws(settings, StaticCredentials("bootstrap", "bootstrap")).client("iam")

    def name_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    iam.meta.events.register("before-sign.iam.*", name_account)
    iam.create_user(UserName=user_name)
    # The same document as AWS's AdministratorAccess, inline: moto loads no AWS managed policies by default.
    administrator = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName=user_name, PolicyName="AdministratorAccess", PolicyDocument=json.dumps(administrator)
    )
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return SandboxPrincipal(
        name=user_name,
        arn=f"arn:{PARTITION}:iam::{account}:user/{user_name}",
        credentials=StaticCredentials(key["AccessKeyId"], key["SecretAccessKey"]),
    )


def _create_policy(iam: Any, name: str, document: dict[str, Any]) -> str:
    return str(iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"])


def _readable_grant(boundary: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """alice's read grant on partner-shared-readonly, written as this project's admin endpoint writes one
    (the same :func:`plan_fixes`): the boundary with the bucket in MLSpace's S3 statement, and our user grant
    policy. Returns the new boundary, the grant policy's name and its document."""
    role = user_role_name(PROJECT, READABLE_GRANTEE)
    identity = Identity(
        arn=f"arn:{PARTITION}:sts::{MLSPACE_ACCOUNT}:assumed-role/{role}/{NOTEBOOK_SESSION_NAME}",
        account=MLSPACE_ACCOUNT,
        principal_type="assumed-role",
        role=role,
        role_arn=iam_role_arn(PARTITION, MLSPACE_ACCOUNT, role),
        session=NOTEBOOK_SESSION_NAME,
        user=READABLE_GRANTEE,
        project=PROJECT,
        boundary=mlspace_policies.permissions_boundary_arn(partition=PARTITION, account=MLSPACE_ACCOUNT),
        user_scoped=True,
    )
    fixes = plan_fixes(
        identity=identity,
        ref=parse_bucket_reference(READABLE_BUCKET),
        access=AccessLevel.READ,
        blocked_by=("boundary", "identity"),
        bucket_owner_account=PARTNER_ACCOUNT,
        current_bucket_policy=None,
        current_boundary=boundary,
        scope=GrantScope.USER,
    )
    by_layer = {fix.layer: fix for fix in fixes}
    raised, grant = by_layer["boundary"].document, by_layer["identity"]
    assert raised is not None and grant.document is not None  # both current documents were given
    return raised, resource_name(grant.target), grant.document


def mlspace_documents() -> tuple[dict[str, dict[str, Any]], str]:
    """Every managed policy of the sandbox's MLSpace account by name (the boundary under its own name), as
    MLSpace v1.6.10 deploys them in a commercial region, with alice's grant on partner-shared-readonly; and
    the name of that grant's policy."""
    common: dict[str, Any] = {"partition": PARTITION, "region": DEFAULT_REGION, "account": MLSPACE_ACCOUNT}
    deployment = {**common, "data_bucket": DATA_BUCKET}
    boundary, grant_name, grant = _readable_grant(mlspace_policies.permissions_boundary(**deployment))
    documents: dict[str, dict[str, Any]] = {
        BOUNDARY_POLICY_NAME: boundary,
        mlspace_policies.NOTEBOOK_POLICY_NAME: mlspace_policies.notebook_policy(**deployment),
        mlspace_policies.KMS_INSTANCE_CONSTRAINT_POLICY_NAME: (
            mlspace_policies.kms_instance_constraint_policy()
        ),
        mlspace_policies.ENDPOINT_INSTANCE_CONSTRAINT_POLICY_NAME: (
            mlspace_policies.endpoint_instance_constraint_policy(**common)
        ),
        mlspace_policies.JOB_INSTANCE_CONSTRAINT_POLICY_NAME: mlspace_policies.job_instance_constraint_policy(
            **common
        ),
        project_policy_name(PROJECT): mlspace_policies.project_policy(
            **common, data_bucket=DATA_BUCKET, project=PROJECT
        ),
        grant_name: grant,
    }
    for user in USERS:
        documents[user_policy_name(user)] = mlspace_policies.user_policy(
            **common, data_bucket=DATA_BUCKET, username=user
        )
    return documents, grant_name


def shared_role_documents() -> dict[str, dict[str, Any]]:
    """The managed policies of the sandbox's MLSpace account with ``MANAGE_IAM_ROLES`` off, by name, in the
    order they are attached to the shared notebook role. ``iamConstruct.ts`` then makes no boundary and no
    job or endpoint constraints, and ``iam_manager.py`` no project or user policies."""
    notebook_policy = mlspace_policies.shared_role_notebook_policy(
        partition=PARTITION, region=DEFAULT_REGION, account=MLSPACE_ACCOUNT, data_bucket=DATA_BUCKET
    )
    kms_constraint = mlspace_policies.kms_instance_constraint_policy()
    documents = {
        mlspace_policies.NOTEBOOK_POLICY_NAME: notebook_policy,
        mlspace_policies.KMS_INSTANCE_CONSTRAINT_POLICY_NAME: kms_constraint,
    }
    names = mlspace_policies.notebook_role_managed_policy_names(manage_iam_roles=False)
    return {name: documents[name] for name in names}


def role_policy_names(user: str, grant_name: str) -> list[str]:
    """The managed policies on a user's role: MLSpace's, and our grant policy on the grantee's."""
    names = mlspace_policies.user_role_managed_policy_names(PROJECT, user)
    return [*names, grant_name] if user == READABLE_GRANTEE else names


def _seed_mlspace_iam(aws: Aws) -> list[SandboxPrincipal]:
    """Create the policies and, as MLSpace's ``add_iam_role`` does, one bounded, tagged role per user."""
    iam = aws.client("iam")
    sts = aws.client("sts")
    documents, grant_name = mlspace_documents()
    policy_arns = {name: _create_policy(iam, name, document) for name, document in documents.items()}
    trust = mlspace_policies.user_role_trust_policy(partition=PARTITION, account=MLSPACE_ACCOUNT)
    principals = []
    for user in USERS:
        role_name = user_role_name(PROJECT, user)
        role_arn = iam_role_arn(PARTITION, MLSPACE_ACCOUNT, role_name)
        iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=mlspace_policies.user_role_description(PROJECT, user),
            PermissionsBoundary=policy_arns[BOUNDARY_POLICY_NAME],
            Tags=mlspace_policies.user_role_tags(PROJECT, user),
        )
        for name in role_policy_names(user, grant_name):
            iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arns[name])
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=mlspace_policies.PASS_ROLE_POLICY_NAME,
            PolicyDocument=json.dumps(mlspace_policies.pass_role_inline_policy(role_arn=role_arn)),
        )
        principals.append(_notebook_session(sts, principal_name(user), role_arn))
    return principals


def _seed_shared_role(aws: Aws) -> list[SandboxPrincipal]:
    """MLSpace with ``MANAGE_IAM_ROLES`` off: CDK's one notebook role, tagged for no person or project, with
    no boundary; every user's notebook runs as it."""
    iam = aws.client("iam")
    sts = aws.client("sts")
    # SageMaker's trust, as a user role's (CDK also trusts Translate where it is on; nothing here uses it).
    trust = mlspace_policies.user_role_trust_policy(partition=PARTITION, account=MLSPACE_ACCOUNT)
    iam.create_role(
        RoleName=mlspace_policies.NOTEBOOK_ROLE_NAME,
        AssumeRolePolicyDocument=json.dumps(trust),
        Tags=mlspace_policies.shared_role_tags(),
    )
    for name, document in shared_role_documents().items():
        policy_arn = _create_policy(iam, name, document)
        iam.attach_role_policy(RoleName=mlspace_policies.NOTEBOOK_ROLE_NAME, PolicyArn=policy_arn)
    # Each notebook instance assumes the role under SageMaker's session name, so alice's and bob's sessions
    # have the same ARN: only their keys tell them apart, as in MLSpace.
    return [_notebook_session(sts, principal_name(user), SHARED_ROLE_ARN) for user in USERS]


def _notebook_session(sts: Any, name: str, role_arn: str) -> SandboxPrincipal:
    """A notebook's session of ``role_arn``. Enforcement is still off, so the admin may assume a role whose
    trust names only SageMaker, which is how a notebook instance gets it, under MLSpace's session name."""
    session = sts.assume_role(RoleArn=role_arn, RoleSessionName=NOTEBOOK_SESSION_NAME)
    creds = session["Credentials"]
    return SandboxPrincipal(
        name=name,
        arn=str(session["AssumedRoleUser"]["Arn"]),
        credentials=StaticCredentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
    )


def _seed_owner_role(aws: Aws, trusted_admin_arn: str) -> None:
    """The partner's role for the MLSpace admin: bucket and key policies of the partner's buckets, no data."""
    iam = aws.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": trusted_admin_arn}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=OWNER_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
    buckets = [f"arn:{PARTITION}:s3:::{entry.bucket}" for entry in SHARED_BUCKETS]
    permissions = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Resource": buckets,
                "Action": [
                    "s3:GetBucketPolicy",
                    "s3:PutBucketPolicy",
                    "s3:DeleteBucketPolicy",
                    "s3:GetEncryptionConfiguration",
                    "s3:ListBucket",  # moto checks GetBucketEncryption as this; AWS needs only the above
                ],
            },
            {
                "Effect": "Allow",
                "Resource": "*",
                "Action": ["kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:DescribeKey"],
            },
        ],
    }
    iam.put_role_policy(
        RoleName=OWNER_ROLE_NAME, PolicyName="bucket-policies", PolicyDocument=json.dumps(permissions)
    )


def _account_read_policy(bucket: str, role_arn: str | None = None) -> dict[str, Any]:
    """A bucket policy that lets the MLSpace account list and read the bucket (its policies decide who), or
    only ``role_arn``: the account narrowed by ``aws:PrincipalArn``, so that no other principal of the account
    with broad S3 rights of its own gets in, and a recreated role still matches."""
    statement: dict[str, Any] = {
        "Sid": "MLSpaceNotebookRoleRead" if role_arn else "MLSpaceAccountRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{PARTITION}:iam::{MLSPACE_ACCOUNT}:root"},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"],
    }
    if role_arn:
        statement["Condition"] = {"ArnEquals": {"aws:PrincipalArn": role_arn}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def _seed_partner_buckets(aws: Aws, pool: ThreadPoolExecutor, *, readable_by: str | None) -> None:
    """The partner's buckets; ``readable_by`` is the one role partner-shared-readonly lets in (else the whole
    MLSpace account).

    In shared-role mode only the partner's half of the seeded grant exists: the MLSpace half would go into
    MLSpace's shared notebook policy (where :func:`plan_fixes` puts shared grants), which must stay MLSpace's
    document and which the admin endpoint does not edit; so there the bucket is blocked by identity alone.
    """
    s3 = aws.client("s3")
    _put_objects(aws, SHARED_BUCKET, _shared_bucket_objects(), pool, create=True)
    _put_objects(aws, READABLE_BUCKET, _readable_bucket_objects(), pool, create=True)
    policy = _account_read_policy(READABLE_BUCKET, readable_by)
    s3.put_bucket_policy(Bucket=READABLE_BUCKET, Policy=json.dumps(policy))
    _seed_kms_bucket(aws, pool)


def _seed_kms_bucket(aws: Aws, pool: ThreadPoolExecutor) -> None:
    """An SSE-KMS bucket under a customer managed key whose key policy is KMS's default: only the partner's
    own account may use the key, so the KMS layer blocks the MLSpace account until the owner adds it."""
    kms = aws.client("kms")
    created = kms.create_key(Description=f"Partner datasets (SSE-KMS for {KMS_BUCKET})")
    key_arn = created["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=KMS_KEY_ALIAS, TargetKeyId=key_arn)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=KMS_BUCKET)
    s3.put_bucket_encryption(
        Bucket=KMS_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}
            ]
        },
    )
    s3.put_bucket_policy(Bucket=KMS_BUCKET, Policy=json.dumps(_account_read_policy(KMS_BUCKET)))
    # moto applies no default encryption, so every object names the key, as S3 would store it.
    futures = [
        pool.submit(
            s3.put_object,
            Bucket=KMS_BUCKET,
            Key=key,
            Body=body.encode(),
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=key_arn,
        )
        for key, body in _kms_bucket_objects()
    ]
    for future in futures:
        future.result()


def _put_objects(
    aws: Aws, bucket: str, objects: Iterable[tuple[str, str]], pool: ThreadPoolExecutor, *, create: bool
) -> None:
    s3 = aws.client("s3")
    if create:
        s3.create_bucket(Bucket=bucket)
    futures = [
        pool.submit(s3.put_object, Bucket=bucket, Key=key, Body=body.encode()) for key, body in objects
    ]
    for future in futures:
        future.result()


def _data_bucket_objects() -> list[tuple[str, str]]:
    return [
        ("global/README.txt", "Shared with every MLSpace user.\n"),
        ("global/reference/labels.csv", "id,label\n0,setosa\n1,versicolor\n2,virginica\n"),
        (f"project/{PROJECT}/train.csv", _iris_csv(seed=1, rows=30)),
        (f"project/{PROJECT}/notes.md", "# demo project\n"),
        *((f"private/{user}/scratch.txt", f"{user}'s private notes\n") for user in USERS),
    ]


def _shared_bucket_objects() -> list[tuple[str, str]]:
    objects = [
        ("datasets/iris/iris.csv", _iris_csv(seed=2026, rows=150)),
        (
            "datasets/iris/README.txt",
            "A small iris-shaped dataset: 150 rows, 4 measurements and a species.\n",
        ),
    ]
    objects += [
        (f"logs/2026/11/{day:02d}/part-{index:04d}.log", f"2026-11-{day:02d} request {index} ok\n")
        for index in range(LOG_OBJECT_COUNT)
        for day in (1 + index % 28,)
    ]
    return objects


def _readable_bucket_objects() -> list[tuple[str, str]]:
    return [
        ("README.txt", "Reference data the partner shares with MLSpace, read-only.\n"),
        ("reference/countries.csv", "code,name\nFR,France\nJP,Japan\nUS,United States\n"),
    ]


def _kms_bucket_objects() -> list[tuple[str, str]]:
    return [
        ("datasets/encrypted/iris.csv", _iris_csv(seed=7, rows=30)),
        ("datasets/encrypted/README.txt", "Encrypted with the partner's customer managed KMS key.\n"),
    ]


def _iris_csv(*, seed: int, rows: int) -> str:
    """Deterministic iris-shaped rows: the same bytes on every seed, so notebook outputs can be compared."""
    generator = random.Random(seed)
    species = [
        ("setosa", 5.0, 3.4, 1.5, 0.2),
        ("versicolor", 5.9, 2.8, 4.3, 1.3),
        ("virginica", 6.6, 3.0, 5.6, 2.0),
    ]
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for index in range(rows):
        name, *means = species[index % 3]
        values = ",".join(f"{max(0.1, generator.gauss(mean, 0.3)):.1f}" for mean in means)
        lines.append(f"{values},{name}")
    return "\n".join(lines) + "\n"
