"""The world, the stand-in AWS reads and the oracle behind ``test_fix_harness.py`` (read its docstring first).

A :class:`World` is the truth: every IAM policy of the MLSpace account (MLSpace's own documents, built by
``sandbox/mlspace_policies.py``), the roles with their attachments, tags and boundary, and the buckets and
KMS keys with their policies. :class:`FakeAws` answers the reads that ``whoami``, ``LayerFetcher`` and the
admin ``Planner`` make, from the world, refusing those the situation says the caller may not make, so the
layers the product sees (read, unreadable, absent) come from the product's own fetch code; and it answers
the probes' S3 calls as the evaluator decides them over the world (or with an error that proves nothing).
Fixes are applied to the world as written (:func:`apply_fixes`, with :func:`run_printed` for what only the
printed command holds); :func:`decide` asks the product's evaluator about any principal of the world.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import AwsSettings
from mlspace_s3magic.core.fix import Fix, Operation
from mlspace_s3magic.core.limits import (
    BUCKET_POLICY_MAX_BYTES,
    KEY_POLICY_MAX_BYTES,
    MANAGED_POLICY_MAX_CHARS,
    iam_size,
    json_bytes,
)
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, data_bucket_name, user_role_name
from mlspace_s3magic.core.policy import (
    EvaluationResult,
    Layer,
    Policy,
    PolicyLayers,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from mlspace_s3magic.core.policy_edit import Document, Statement, merge_statements
from mlspace_s3magic.sandbox import mlspace_policies as mlspace

MLSPACE = "111111111111"  # the MLSpace account: the notebooks' roles, the boundary, our grant policies
PARTNER = "222222222222"  # the partner that owns the cross-account bucket and its KMS key
STRANGER_ACCOUNT = "333333333333"  # an unrelated account
PARTITION = "aws"
REGION = "us-east-1"  # the notebook's region (its clients')
KEY_REGION = "us-west-2"  # the bucket's and its key's region: kms:ViaService must name this one
VIA_S3 = f"s3.{KEY_REGION}.amazonaws.com"
DATA_BUCKET = data_bucket_name(MLSPACE)
PREFIX = "datasets/"

ALICE_ROLE = user_role_name("demo", "alice")  # the caller with per-user roles
CAROL_ROLE = user_role_name("demo", "carol")  # a member of the same project, there before alice
BOB_ROLE = user_role_name("other", "bob")  # a member of another project
SHARED_ROLE = mlspace.NOTEBOOK_ROLE_NAME  # every notebook's role without per-user roles
ENGINEER_ROLE = "data-engineer"  # a non-MLSpace role of the MLSpace account, with s3:* and kms:* of its own
ENGINEER_POLICY = "DataEngineerAccess"
NOTEBOOK_POLICY = mlspace.NOTEBOOK_POLICY_NAME
GRANT_POLICY = "MLSpace-s3access-project-demo"
SESSION = "SageMaker"

CROSS_BUCKET, CROSS_OTHER_BUCKET = "partner-data", "partner-archive"
SAME_BUCKET, SAME_OTHER_BUCKET = "demo-team-data", "demo-team-archive"
EARLIER_BUCKET = "partner-reference"  # the bucket of an earlier grant ("later grants")
CROSS_KEY = f"arn:aws:kms:{KEY_REGION}:{PARTNER}:key/1111aaaa-11aa-11aa-11aa-111111aaaaaa"
SAME_KEY = f"arn:aws:kms:{KEY_REGION}:{MLSPACE}:key/2222bbbb-22bb-22bb-22bb-222222bbbbbb"
STRANGER_ARN = f"arn:aws:sts::{STRANGER_ACCOUNT}:assumed-role/analyst/session"
EVERYTHING: Document = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "kms:*"], "Resource": "*"}],
}

# What a caller may read. "role": iam:GetRole on its own role (tags, boundary ARN); "identity": listing and
# reading its attached and inline policies; "admin": iam:ListRoles and iam:ListPolicies (the endpoint's).
NOTEBOOK_READS = frozenset({"role", "identity", "boundary", "bucket-policy", "encryption", "key-policy"})
ADMIN_READS = NOTEBOOK_READS | {"admin"}
VISIBILITY: dict[str, frozenset[str]] = {
    "everything": NOTEBOOK_READS,
    # A real MLSpace notebook: sts:GetCallerIdentity and iam:GetRole, nothing else.
    "mlspace-default": frozenset({"role"}),
    "mlspace-default+boundary": frozenset({"role", "boundary"}),
    **{f"all-but-{layer}": NOTEBOOK_READS - {layer} for layer in sorted(NOTEBOOK_READS)},
}


@dataclass(frozen=True)
class Situation:
    """One row of the matrix. ``blocks`` is the truth: the layers that lack the grant before any fix."""

    mode: str  # "user" (MLSpace-<project>-<hash> roles) or "shared" (mlspace-notebook-role)
    account: str  # "cross" (the partner's bucket and key) or "same" (a bucket and key of the MLSpace account)
    blocks: tuple[str, ...]  # among "identity", "boundary", "bucket-policy", "kms"
    visibility: str = "everything"  # a key of VISIBILITY
    grant: str = "first"  # "first" (no grant policy), "later" (one for another bucket), "joiner" (the same,
    # attached to the project's earlier members only: the caller joined after it was made)
    need: str = "read"  # "list", "read" or "write"
    prefix: str = PREFIX  # as typed: "datasets/" or "datasets"
    probes: str = "unknown"  # "unknown" (probes prove nothing) or "truthful" (they say what AWS would)
    deny: bool = False  # the bucket policy holds an explicit Deny that matches the caller
    no_bucket_policy: bool = False  # the bucket has no policy at all (instead of an unrelated one)
    sse_kms: bool = False  # SSE-KMS even when the key does not block (it always does when "kms" blocks)
    # The admin's own boundary with room (MLSpace's PERMISSIONS_BOUNDARY_POLICY_NAME): MLSpace's without its
    # Bedrock statement, about 700 characters free instead of 140.
    own_boundary: bool = False

    @property
    def id(self) -> str:
        blocked = "+".join(self.blocks) or "nothing"
        parts = [
            f"{self.mode}-roles",
            f"{self.account}-account",
            f"blocked-by-{blocked}{'+DENY' if self.deny else ''}",
            f"reads-{self.visibility}",
            f"{self.grant}-grant",
            f"need-{self.need}",
            f"prefix-{self.prefix}",
            f"probes-{self.probes}",
        ]
        if self.no_bucket_policy:
            parts.append("no-bucket-policy")
        if self.sse_kms and "kms" not in self.blocks:
            parts.append("sse-kms")
        if self.own_boundary:
            parts.append("own-boundary-with-room")
        return "/".join(parts)

    @property
    def kms(self) -> bool:
        """The bucket has SSE-KMS default encryption with a customer managed key (in KEY_REGION)."""
        return self.sse_kms or "kms" in self.blocks

    @property
    def owner(self) -> str:
        return PARTNER if self.account == "cross" else MLSPACE

    @property
    def bucket(self) -> str:
        return CROSS_BUCKET if self.account == "cross" else SAME_BUCKET

    @property
    def other_bucket(self) -> str:
        return CROSS_OTHER_BUCKET if self.account == "cross" else SAME_OTHER_BUCKET

    @property
    def key(self) -> str | None:
        if not self.kms:
            return None
        return CROSS_KEY if self.account == "cross" else SAME_KEY

    @property
    def caller_role(self) -> str:
        return ALICE_ROLE if self.mode == "user" else SHARED_ROLE

    @property
    def caller_arn(self) -> str:
        return session_arn(self.caller_role)


def session_arn(role: str, session: str = SESSION, account: str = MLSPACE) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def role_arn(role: str, account: str = MLSPACE) -> str:
    return f"arn:aws:iam::{account}:role/{role}"


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{MLSPACE}:policy/{name}"


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


# -- the world -------------------------------------------------------------------------------------------


@dataclass
class Role:
    attached: list[str]
    boundary: str | None = None
    inline: dict[str, Document] = field(default_factory=dict)
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Bucket:
    owner: str
    policy: Document | None = None
    key: str | None = None


@dataclass
class World:
    policies: dict[str, Document]  # managed policies of the MLSpace account, by name
    roles: dict[str, Role]
    buckets: dict[str, Bucket]
    keys: dict[str, Document]
    failures: list[str] = field(default_factory=list)  # what AWS would have refused while fixes were applied

    def copy(self) -> World:
        return copy.deepcopy(self)

    def too_large(self) -> list[str]:
        """Documents AWS would refuse for their size: a world holds none, and a fix must not write one."""
        found = [
            f"IAM policy {name}: {iam_size(doc):,} characters"
            for name, doc in self.policies.items()
            if iam_size(doc) > MANAGED_POLICY_MAX_CHARS
        ]
        found += [
            f"bucket policy of {name}: {json_bytes(b.policy):,} bytes"
            for name, b in self.buckets.items()
            if b.policy is not None and json_bytes(b.policy) > BUCKET_POLICY_MAX_BYTES
        ]
        found += [
            f"key policy of {arn}: {json_bytes(doc):,} bytes"
            for arn, doc in self.keys.items()
            if json_bytes(doc) > KEY_POLICY_MAX_BYTES
        ]
        return found

    def layers(self, principal: str, resource_policy: Document | None) -> PolicyLayers:
        """The layers of a principal of the world (a role session) and a resource's policy."""
        caller = Principal.from_arn(principal)
        if caller.account != MLSPACE:
            identity: list[Document] = [EVERYTHING]  # the stranger: broad rights in its own account
            boundary = None
        else:
            role = self.roles[str(caller.name)]
            identity = [self.policies[name] for name in role.attached if name in self.policies]
            identity += list(role.inline.values())
            boundary = self.policies[role.boundary] if role.boundary else None
        return PolicyLayers(
            identity=tuple(_parsed(doc, Layer.IDENTITY, f"identity {i}") for i, doc in enumerate(identity)),
            boundary=_parsed(boundary, Layer.BOUNDARY, "boundary") if boundary else None,
            resource=_parsed(resource_policy, Layer.RESOURCE, "resource") if resource_policy else None,
        )


def _parsed(document: Document, layer: Layer, label: str) -> Policy:
    return parse_policy(document, layer, label)


def decide(
    world: World, principal: str, action: str, resource: str, context: Mapping[str, str] | None = None
) -> EvaluationResult:
    """The evaluator's decision for one request over the world's layers. S3 requests name the bucket owner
    (S3 ARNs do not carry it); a KMS request is decided with the key's policy."""
    if ":kms:" in resource:
        resource_policy, owner = world.keys.get(resource), None
    else:
        bucket = world.buckets[resource.split(":::", 1)[1].split("/", 1)[0]]
        resource_policy, owner = bucket.policy, bucket.owner
    request = Request(Principal.from_arn(principal), action, resource, owner, dict(context or {}))
    return evaluate(request, world.layers(principal, resource_policy))


def _doc(statements: Iterable[Statement]) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}


OBJECT_ACTIONS = {
    "list": [],
    "read": ["s3:GetObject"],
    "write": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
}
KMS_ACTIONS = {"list": [], "read": ["kms:Decrypt"], "write": ["kms:Decrypt", "kms:GenerateDataKey"]}


def earlier_grant(
    bucket: str,
    key: str | None,
    *,
    sid: str,
    need: str,
    principal_condition: dict[str, Any] | None = None,
) -> list[Statement]:
    """A grant as an admin made it before, of exactly ``need`` on ``datasets/`` (and the key through S3);
    with a ``principal_condition`` it is the resource-policy form (account root narrowed to the grantees)."""
    resource_form = principal_condition is not None
    extra: dict[str, Any] = {"Principal": {"AWS": f"arn:aws:iam::{MLSPACE}:root"}} if resource_form else {}
    narrowing = dict(principal_condition or {})
    statements: list[Statement] = []
    if OBJECT_ACTIONS[need]:
        statements.append(
            {
                "Sid": f"{sid}Objects",
                "Effect": "Allow",
                **extra,
                "Action": OBJECT_ACTIONS[need],
                "Resource": f"{bucket_arn(bucket)}/{PREFIX}*",
                **({"Condition": narrowing} if narrowing else {}),
            }
        )
    statements.append(
        {
            "Sid": f"{sid}List",
            "Effect": "Allow",
            **extra,
            "Action": "s3:ListBucket",
            "Resource": bucket_arn(bucket),
            "Condition": {**narrowing, "StringLike": {"s3:prefix": f"{PREFIX}*"}},
        }
    )
    if key and KMS_ACTIONS[need]:
        statements.append(kms_grant(key, sid=sid, need=need, principal_condition=principal_condition))
    return statements


def through_s3(object_arn: str) -> dict[str, str]:
    """The context of a KMS request S3 makes for an object: S3 in the key's region, and the object's ARN
    as encryption context (the bucket's ARN with S3 Bucket Keys, which the worlds do not use):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context"""
    return {"kms:ViaService": VIA_S3, "kms:EncryptionContext:aws:s3:arn": object_arn}


def kms_grant(
    key: str, *, sid: str, need: str, principal_condition: dict[str, Any] | None = None
) -> Statement:
    statement: Statement = {"Sid": f"{sid}Kms", "Effect": "Allow"}
    if principal_condition is not None:
        statement["Principal"] = {"AWS": f"arn:aws:iam::{MLSPACE}:root"}
    statement["Action"] = KMS_ACTIONS[need]
    statement["Resource"] = "*" if principal_condition is not None else key
    statement["Condition"] = {**(principal_condition or {}), "StringEquals": {"kms:ViaService": VIA_S3}}
    return statement


def grantee_condition(mode: str) -> dict[str, Any]:
    """How an earlier grant named its grantees in a partner's policy: the project's roles, or the shared
    role (never the whole MLSpace account)."""
    if mode == "user":
        return {"ArnLike": {"aws:PrincipalArn": role_arn("MLSpace-demo-*")}}
    return {"ArnEquals": {"aws:PrincipalArn": role_arn(SHARED_ROLE)}}


def host_in_boundary(boundary: Document, bucket: str, *, write: bool = True) -> None:
    """Raise the boundary for ``bucket`` as MLSpace's room allows: its ARNs appended to MLSpace's own
    read statement (GetObject, ListBucket) and, for writing, its objects to the data bucket's write one."""
    hosts = {
        ("s3:GetObject", "s3:ListBucket"): [f"arn:*:s3:::{bucket}", f"arn:*:s3:::{bucket}/*"],
        ("s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"): [
            f"arn:*:s3:::{bucket}/*"
        ],
    }
    if not write:
        hosts.popitem()
    found = set()
    for statement in boundary["Statement"]:
        actions = statement.get("Action")
        if isinstance(actions, list) and tuple(actions) in hosts and "Condition" not in statement:
            statement["Resource"] = [*statement["Resource"], *hosts[tuple(actions)]]
            found.add(tuple(actions))
    assert found == set(hosts), "MLSpace's boundary lost the S3 statements grants are appended to"


def host_key_in_boundary(boundary: Document, key: str) -> None:
    """Raise the boundary for a KMS key the only way MLSpace's 140 free characters allow: the key's ARN
    appended to MLSpace's own statement that allows its key (kms:Decrypt, kms:GenerateDataKey...)."""
    for statement in boundary["Statement"]:
        actions = statement.get("Action")
        if isinstance(actions, list) and "kms:Decrypt" in actions and "Condition" not in statement:
            statement["Resource"] = [*statement["Resource"], key]
            return
    raise AssertionError("MLSpace's boundary lost its KMS statement")


def build_world(s: Situation) -> World:
    """The world before any fix: MLSpace's documents, and each layer not in ``s.blocks`` already granting."""
    common = {"partition": PARTITION, "region": REGION, "account": MLSPACE, "data_bucket": DATA_BUCKET}
    policies: dict[str, Document] = {
        BOUNDARY_POLICY_NAME: mlspace.permissions_boundary(**common),
        NOTEBOOK_POLICY: (
            mlspace.notebook_policy(**common)
            if s.mode == "user"
            else mlspace.shared_role_notebook_policy(**common)
        ),
        mlspace.KMS_INSTANCE_CONSTRAINT_POLICY_NAME: mlspace.kms_instance_constraint_policy(),
        mlspace.ENDPOINT_INSTANCE_CONSTRAINT_POLICY_NAME: mlspace.endpoint_instance_constraint_policy(
            partition=PARTITION, region=REGION, account=MLSPACE
        ),
        mlspace.JOB_INSTANCE_CONSTRAINT_POLICY_NAME: mlspace.job_instance_constraint_policy(
            partition=PARTITION, region=REGION, account=MLSPACE
        ),
        ENGINEER_POLICY: copy.deepcopy(EVERYTHING),
    }
    roles: dict[str, Role] = {ENGINEER_ROLE: Role([ENGINEER_POLICY])}
    if s.mode == "user":
        members = (("demo", "alice", ALICE_ROLE), ("demo", "carol", CAROL_ROLE), ("other", "bob", BOB_ROLE))
        for project, user, role in members:
            policies[mlspace.project_policy_name(project)] = mlspace.project_policy(**common, project=project)
            policies[mlspace.user_policy_name(user)] = mlspace.user_policy(**common, username=user)
            roles[role] = Role(
                mlspace.user_role_managed_policy_names(project, user),
                BOUNDARY_POLICY_NAME,
                {mlspace.PASS_ROLE_POLICY_NAME: mlspace.pass_role_inline_policy(role_arn=role_arn(role))},
                mlspace.user_role_tags(project, user),
            )
    else:
        # MLSpace gives the shared notebook role no permissions boundary (only the per-user roles get one).
        roles[SHARED_ROLE] = Role(
            mlspace.notebook_role_managed_policy_names(manage_iam_roles=False),
            None,
            {},
            mlspace.shared_role_tags(),
        )
    key = s.key
    bucket, owner = s.bucket, s.owner

    # The caller's identity side: an earlier grant of another bucket, or of this one when identity allows.
    granted: list[Statement] = []
    if s.grant in ("later", "joiner"):
        granted += earlier_grant(EARLIER_BUCKET, None, sid="EarlierGrantPartnerReference", need="read")
    if "identity" not in s.blocks:
        granted += earlier_grant(bucket, key, sid="EarlierGrantThisBucket", need=s.need)
    if granted and s.mode == "user":
        policies[GRANT_POLICY] = _doc(granted)
        members = [CAROL_ROLE] if s.grant == "joiner" and "identity" in s.blocks else [ALICE_ROLE, CAROL_ROLE]
        for member in members:
            roles[member].attached.append(GRANT_POLICY)
    elif granted:
        policies[NOTEBOOK_POLICY]["Statement"] += granted

    # The boundary: MLSpace's, raised for the earlier grant's bucket, and for this one when it allows.
    boundary = policies[BOUNDARY_POLICY_NAME]
    if s.own_boundary:
        boundary["Statement"] = [
            statement
            for statement in boundary["Statement"]
            if not any(str(action).startswith("bedrock:") for action in statement.get("Action", []))
        ]
    if s.grant in ("later", "joiner"):
        host_in_boundary(boundary, EARLIER_BUCKET, write=False)  # it was a read grant
    if "boundary" not in s.blocks and s.mode == "user":
        host_in_boundary(boundary, bucket, write=s.need == "write")
        if key:
            host_key_in_boundary(boundary, key)

    # The bucket: an unrelated policy (the owner's pipeline, TLS only), or none; then the grant and the Deny.
    statements: list[Statement] = []
    if not s.no_bucket_policy:
        if s.account == "cross":
            statements.append(
                {
                    "Sid": "OwnerPipeline",
                    "Effect": "Allow",
                    "Principal": {"AWS": role_arn("pipeline", PARTNER)},
                    "Action": "s3:*",
                    "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
                }
            )
        statements.append(
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn(bucket), f"{bucket_arn(bucket)}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
    if s.account == "cross" and "bucket-policy" not in s.blocks:
        statements += earlier_grant(
            bucket,
            None,
            sid="EarlierGrantThisBucket",
            need=s.need,
            principal_condition=grantee_condition(s.mode),
        )
    if s.deny:
        statements.append(deny_statement(s))
    buckets = {
        bucket: Bucket(owner, _doc(statements) if statements else None, key),
        # Another bucket of the same owner, open to the whole MLSpace account (cross) or without a policy
        # (same): only the caller's own layers keep the caller out of it.
        s.other_bucket: Bucket(
            owner,
            _doc(
                [
                    {
                        "Sid": "MLSpaceAccountMayUseArchive",
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{MLSPACE}:root"},
                        "Action": "s3:*",
                        "Resource": [bucket_arn(s.other_bucket), f"{bucket_arn(s.other_bucket)}/*"],
                    }
                ]
            )
            if s.account == "cross"
            else None,
        ),
    }
    keys: dict[str, Document] = {}
    if key:
        key_owner = key.split(":")[4]
        # A partner's key trusts its own account; a key of the MLSpace account names only its administrators
        # (a default key policy would delegate to IAM, and the caller's identity side alone would decide).
        trusted = f"arn:aws:iam::{key_owner}:root" if s.account == "cross" else role_arn("KeyAdministrator")
        key_statements: list[Statement] = [
            {
                "Sid": "KeyAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": trusted},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
        if "kms" not in s.blocks:
            key_statements.append(
                kms_grant(
                    key,
                    sid="EarlierGrantThisBucket",
                    need="write" if s.need == "write" else "read",
                    principal_condition=grantee_condition(s.mode),
                )
            )
        keys[key] = _doc(key_statements)
    return World(policies, roles, buckets, keys)


def deny_statement(s: Situation) -> Statement:
    """An explicit Deny in the bucket policy that matches the caller (and every MLSpace notebook)."""
    if s.account == "cross":
        condition = {"StringNotEquals": {"aws:PrincipalAccount": PARTNER}}
    else:
        condition = {"ArnNotLike": {"aws:PrincipalArn": role_arn(ENGINEER_ROLE)}}
    return {
        "Sid": DENY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn(s.bucket), f"{bucket_arn(s.bucket)}/{PREFIX}*"],
        "Condition": condition,
    }


DENY_SID = "DenyDatasetsOutsideTheOwner"


# -- the stand-in AWS ------------------------------------------------------------------------------------


def _error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


class _Meta:
    endpoint_url = "https://stand-in.invalid"


class _Pages:
    def __init__(self, produce: Callable[..., list[dict[str, Any]]]):
        self._produce = produce

    def paginate(self, **params: Any) -> list[dict[str, Any]]:
        return self._produce(**params)


class _Client:  # boto3's parameter names (RoleName...) are kept, so the product's calls land here as is
    """The read calls the product makes, answered from the world; a refused read raises AccessDenied."""

    meta = _Meta()

    def __init__(self, aws: FakeAws):
        self.aws = aws
        self.world = aws.world

    def _allow(self, what: str, operation: str) -> None:
        if what not in self.aws.reads:
            raise _error(
                "AccessDenied",
                operation,
                f"User: {self.aws.caller_arn} is not authorized to perform: {operation}",
            )

    # sts
    def get_caller_identity(self) -> dict[str, Any]:
        return {"Arn": self.aws.caller_arn, "Account": self.aws.caller_arn.split(":")[4]}

    # iam
    def get_role(self, RoleName: str) -> dict[str, Any]:
        self._allow("role", "GetRole")
        role = self.world.roles.get(RoleName)
        if role is None:
            raise _error("NoSuchEntity", "GetRole")
        return {"Role": _role_detail(RoleName, role)}

    def get_paginator(self, operation: str) -> _Pages:
        return _Pages(getattr(self, f"_{operation}"))

    def _list_attached_role_policies(self, RoleName: str) -> list[dict[str, Any]]:
        self._allow("identity", "ListAttachedRolePolicies")
        attached = self.world.roles[RoleName].attached
        listed = [{"PolicyName": n, "PolicyArn": policy_arn(n)} for n in attached if n in self.world.policies]
        return [{"AttachedPolicies": listed}]

    def _list_role_policies(self, RoleName: str) -> list[dict[str, Any]]:
        self._allow("identity", "ListRolePolicies")
        return [{"PolicyNames": list(self.world.roles[RoleName].inline)}]

    def get_role_policy(self, RoleName: str, PolicyName: str) -> dict[str, Any]:
        self._allow("identity", "GetRolePolicy")
        document = self.world.roles[RoleName].inline[PolicyName]
        return {"RoleName": RoleName, "PolicyName": PolicyName, "PolicyDocument": copy.deepcopy(document)}

    def _list_roles(self) -> list[dict[str, Any]]:
        self._allow("admin", "ListRoles")
        return [{"Roles": [{"RoleName": name, "Arn": role_arn(name)} for name in self.world.roles]}]

    def _list_policies(self, Scope: str) -> list[dict[str, Any]]:
        self._allow("admin", "ListPolicies")
        listed = [
            {"PolicyName": name, "Arn": policy_arn(name), "DefaultVersionId": "v1"}
            for name in self.world.policies
        ]
        return [{"Policies": listed}]

    def _managed(self, arn: str, operation: str) -> tuple[str, Document]:
        name = arn.rsplit("/", 1)[-1]
        self._allow("boundary" if name == BOUNDARY_POLICY_NAME else "identity", operation)
        if not arn.startswith(f"arn:aws:iam::{MLSPACE}:policy/") or name not in self.world.policies:
            raise _error("NoSuchEntity", operation)
        return name, self.world.policies[name]

    def get_policy(self, PolicyArn: str) -> dict[str, Any]:
        name, _ = self._managed(PolicyArn, "GetPolicy")
        return {"Policy": {"PolicyName": name, "Arn": PolicyArn, "DefaultVersionId": "v1"}}

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        _, document = self._managed(PolicyArn, "GetPolicyVersion")
        return {"PolicyVersion": {"Document": copy.deepcopy(document), "VersionId": VersionId}}

    def list_policy_versions(self, PolicyArn: str) -> dict[str, Any]:
        """One version each: the plan asks before it writes MLSpace's boundary (IAM keeps five)."""
        self._managed(PolicyArn, "ListPolicyVersions")
        return {"Versions": [{"VersionId": "v1", "IsDefaultVersion": True}]}

    # s3
    def get_bucket_policy(self, Bucket: str) -> dict[str, Any]:
        self._allow("bucket-policy", "GetBucketPolicy")
        policy = self.world.buckets[Bucket].policy
        if policy is None:
            raise _error("NoSuchBucketPolicy", "GetBucketPolicy")
        return {"Policy": json.dumps(policy)}

    def get_bucket_encryption(self, Bucket: str) -> dict[str, Any]:
        self._allow("encryption", "GetBucketEncryption")
        key = self.world.buckets[Bucket].key
        default: dict[str, str] = (
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if key else {"SSEAlgorithm": "AES256"}
        )
        return {
            "ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}
        }

    # s3, the data plane: what the probes call, answered as AWS would decide (or, for probes that prove
    # nothing, with an error that says nothing about permissions)
    def _data(
        self, operation: str, action: str, resource: str, context: Mapping[str, str] | None = None
    ) -> None:
        if not self.aws.answers_truly:
            raise _error("SlowDown", operation, "Please reduce your request rate.")
        if not decide(self.world, self.aws.caller_arn, action, resource, context).allowed:
            raise _error("AccessDenied", operation, "Access Denied")

    def _kms(self, operation: str, bucket: str, object_key: str, action: str) -> None:
        key = self.world.buckets[bucket].key
        context = through_s3(f"{bucket_arn(bucket)}/{object_key}")
        if key and not decide(self.world, self.aws.caller_arn, action, key, context).allowed:
            message = (
                f"User: {self.aws.caller_arn} is not authorized to perform: {action} on resource: {key} "
                f"because no resource-based policy allows the {action} action"
            )
            raise _error("AccessDenied", operation, message)

    def list_objects_v2(self, Bucket: str, Prefix: str = "", **_: Any) -> dict[str, Any]:
        self._data(
            "ListObjectsV2", "s3:ListBucket", bucket_arn(Bucket), {"s3:prefix": Prefix} if Prefix else {}
        )
        return {"Contents": [{"Key": f"{Prefix}example.csv"}], "KeyCount": 1}

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._data("GetObject", "s3:GetObject", f"{bucket_arn(Bucket)}/{Key}")
        self._kms("GetObject", Bucket, Key, "kms:Decrypt")
        return {"ContentLength": 1}

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._data("HeadObject", "s3:GetObject", f"{bucket_arn(Bucket)}/{Key}")  # S3 asks KMS nothing
        key = self.world.buckets[Bucket].key
        return (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key}
            if key
            else {"ServerSideEncryption": "AES256"}
        )

    def put_object(self, Bucket: str, Key: str, ACL: str | None = None, **_: Any) -> dict[str, Any]:
        context = {"s3:x-amz-acl": ACL} if ACL else {}
        self._data("PutObject", "s3:PutObject", f"{bucket_arn(Bucket)}/{Key}", context)
        self._kms("PutObject", Bucket, Key, "kms:GenerateDataKey")
        return {}

    def delete_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        self._data("DeleteObject", "s3:DeleteObject", f"{bucket_arn(Bucket)}/{Key}")
        return {}

    # kms
    def get_key_policy(self, KeyId: str, PolicyName: str) -> dict[str, Any]:
        self._allow("key-policy", "GetKeyPolicy")
        if KeyId not in self.world.keys:
            raise _error("NotFoundException", "GetKeyPolicy")
        return {"Policy": json.dumps(self.world.keys[KeyId]), "PolicyName": PolicyName}


class FakeAws:
    """Stands in for :class:`mlspace_s3magic.core.aws.Aws`: one principal, reading what ``reads`` allows;
    its S3 data-plane calls are decided by the evaluator over the world (``answers_truly``) or all answered
    with an error that proves nothing."""

    def __init__(self, world: World, caller_arn: str, reads: frozenset[str], *, answers_truly: bool = True):
        self.world = world
        self.caller_arn = caller_arn
        self.reads = reads
        self.answers_truly = answers_truly
        self.settings = AwsSettings(region=REGION)
        self.region = REGION

    def client(self, service: str) -> _Client:
        return _Client(self)


# -- applying fixes as written ---------------------------------------------------------------------------

STAND_IN_CLI = r'''
"""A stand-in for the AWS CLI, for one printed fix command: reads answer from the world's state (STATE),
with --query (JMESPath) and --output as the CLI applies them; writes are recorded (CALLS), never applied."""
import json, os, sys
import jmespath

state = json.load(open(os.environ["STATE"]))
service, operation, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
options, index = {}, 0
while index < len(rest):
    name = rest[index]
    if index + 1 < len(rest) and not rest[index + 1].startswith("--"):
        options[name], index = rest[index + 1], index + 2
    else:
        options[name], index = True, index + 1


def fail(code):
    print(f"An error occurred ({code}) when calling the {operation} operation", file=sys.stderr)
    sys.exit(254)


def document(option):
    value = options[option]
    return json.load(open(value[len("file://"):])) if value.startswith("file://") else json.loads(value)


def record(**values):
    with open(os.environ["CALLS"], "a") as calls:
        calls.write(json.dumps({"call": f"{service} {operation}", **values}) + "\n")


policies, response = state["policies"], None
arn = options.get("--policy-arn")
if (service, operation) == ("iam", "get-policy"):
    if arn not in policies:
        fail("NoSuchEntity")
    response = {"Policy": {"Arn": arn, "PolicyName": arn.rsplit("/", 1)[-1], "DefaultVersionId": "v1"}}
elif (service, operation) == ("iam", "get-policy-version"):
    if arn not in policies:
        fail("NoSuchEntity")
    response = {"PolicyVersion": {"Document": policies[arn], "VersionId": "v1", "IsDefaultVersion": True}}
elif (service, operation) == ("iam", "list-policy-versions"):
    if arn not in policies:
        fail("NoSuchEntity")
    version = {"VersionId": "v1", "IsDefaultVersion": True, "CreateDate": "2026-01-01T00:00:00Z"}
    response = {"Versions": [version]}
elif (service, operation) == ("iam", "list-roles"):
    response = {"Roles": [{"RoleName": r["RoleName"], "Arn": r["Arn"]} for r in state["roles"].values()]}
elif (service, operation) == ("iam", "get-role"):
    if options["--role-name"] not in state["roles"]:
        fail("NoSuchEntity")
    response = {"Role": state["roles"][options["--role-name"]]}
elif (service, operation) == ("iam", "list-attached-role-policies"):
    if options["--role-name"] not in state["roles"]:
        fail("NoSuchEntity")
    attached = state["attached"][options["--role-name"]]
    response = {"AttachedPolicies": [{"PolicyName": a.rsplit("/", 1)[-1], "PolicyArn": a} for a in attached]}
elif (service, operation) == ("s3api", "get-bucket-encryption"):
    key = state["encryption"].get(options["--bucket"])
    default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key} if key else {"SSEAlgorithm": "AES256"}
    rule = {"ApplyServerSideEncryptionByDefault": default}
    response = {"ServerSideEncryptionConfiguration": {"Rules": [rule]}}
elif (service, operation) == ("s3api", "get-bucket-location"):
    region = state["regions"][options["--bucket"]]
    response = {"LocationConstraint": None if region == "us-east-1" else region}
elif (service, operation) == ("kms", "describe-key"):
    wanted, region = options["--key-id"], options.get("--region")
    found = [k for k in state["keys"] if wanted in (k, k.rsplit("/", 1)[-1]) and k.split(":")[3] == region]
    if not found:
        fail("NotFoundException")
    response = {"KeyMetadata": {"Arn": found[0], "KeyId": found[0].rsplit("/", 1)[-1]}}
elif (service, operation) == ("iam", "create-policy"):
    arn = f"arn:aws:iam::{state['account']}:policy/{options['--policy-name']}"
    if arn in policies:
        record(error="EntityAlreadyExists", arn=arn)
        fail("EntityAlreadyExists")
    record(arn=arn, document=document("--policy-document"))
    response = {"Policy": {"Arn": arn}}
elif (service, operation) == ("iam", "create-policy-version"):
    if arn not in policies:
        record(error="NoSuchEntity", arn=arn)
        fail("NoSuchEntity")
    record(arn=arn, document=document("--policy-document"))
elif (service, operation) == ("iam", "attach-role-policy"):
    record(arn=arn, role=options["--role-name"])
elif (service, operation) == ("iam", "delete-policy-version"):
    record(arn=arn)
elif (service, operation) == ("s3api", "get-bucket-policy"):
    if state["buckets"].get(options["--bucket"]) is None:
        fail("NoSuchBucketPolicy")
    response = {"Policy": json.dumps(state["buckets"][options["--bucket"]])}
elif (service, operation) == ("s3api", "put-bucket-policy"):
    record(bucket=options["--bucket"], document=document("--policy"))
elif (service, operation) == ("kms", "get-key-policy"):
    if options["--key-id"] not in state["keys"]:
        fail("NotFoundException")
    response = {"Policy": json.dumps(state["keys"][options["--key-id"]]), "PolicyName": "default"}
elif (service, operation) == ("kms", "put-key-policy"):
    record(key=options["--key-id"], document=document("--policy"))
else:
    record(error="not understood by the stand-in", argv=sys.argv[1:])
    fail("StandInDoesNotKnow")
if response is not None:
    if "--query" in options:
        response = jmespath.search(options["--query"], response)
    if options.get("--output") == "text":
        items = response if isinstance(response, list) else [response]
        print("\t".join(str(item) for item in items))
    else:
        print(json.dumps(response, indent=2))
'''


@dataclass(frozen=True)
class Printed:
    """What a printed command did against the stand-in CLI: its writes in order, and its exit status."""

    calls: tuple[dict[str, Any], ...]
    returncode: int
    stderr: str

    def written(self, call: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["call"] == call and "error" not in c]

    def errors(self) -> list[str]:
        return [f"{c['call']}: {c['error']}" for c in self.calls if "error" in c]


_PRINTED: dict[str, Printed] = {}  # the same command over the same world does the same (many cases share)


def run_printed(world: World, command: str) -> Printed:
    """Run a printed command in bash, as pasted (no ``set -e``), with the stand-in CLI over the world."""
    if shutil.which("bash") is None or shutil.which("jq") is None:
        raise RuntimeError("bash and jq are needed to run a printed fix command")
    state = {
        "account": MLSPACE,
        "policies": {policy_arn(name): doc for name, doc in world.policies.items()},
        "roles": {name: _role_detail(name, role) for name, role in world.roles.items()},
        "attached": {
            name: [policy_arn(p) for p in role.attached if p in world.policies]
            for name, role in world.roles.items()
        },
        "encryption": {name: bucket.key for name, bucket in world.buckets.items()},
        "regions": {name: KEY_REGION for name in world.buckets},
        "buckets": {name: bucket.policy for name, bucket in world.buckets.items()},
        "keys": world.keys,
    }
    key = hashlib.sha256(json.dumps([command, state], sort_keys=True).encode()).hexdigest()
    if key not in _PRINTED:
        _PRINTED[key] = _run(command, state)
    return copy.deepcopy(_PRINTED[key])


def _run(command: str, state: dict[str, Any]) -> Printed:
    with tempfile.TemporaryDirectory() as folder:
        bin_dir = os.path.join(folder, "bin")
        os.makedirs(bin_dir)
        cli = os.path.join(bin_dir, "aws")
        with open(cli, "w") as stream:
            stream.write(f"#!{sys.executable}\n{STAND_IN_CLI}")
        os.chmod(cli, 0o755)
        paths = {name: os.path.join(folder, f"{name}.stand-in") for name in ("STATE", "CALLS")}
        with open(paths["STATE"], "w") as stream:
            json.dump(state, stream)
        open(paths["CALLS"], "w").close()
        env = {**os.environ, **paths, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, check=False
        )
        with open(paths["CALLS"]) as stream:
            calls = tuple(json.loads(line) for line in stream if line.strip())
    return Printed(calls, done.returncode, done.stderr)


def _role_detail(name: str, role: Role) -> dict[str, Any]:
    """A role as ``iam get-role`` shows it."""
    detail: dict[str, Any] = {"RoleName": name, "Arn": role_arn(name), "Tags": list(role.tags)}
    if role.boundary:
        detail["PermissionsBoundary"] = {
            "PermissionsBoundaryType": "Policy",
            "PermissionsBoundaryArn": policy_arn(role.boundary),
        }
    return detail


def _statements(document: Document | None) -> list[str]:
    """A document's statements, comparable whatever their order (jq appends, merge_statements replaces)."""
    statements = (document or {}).get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    return sorted(json.dumps(statement, sort_keys=True) for statement in statements)


def apply_fixes(world: World, fixes: Sequence[Fix]) -> list[str]:
    """Apply each fix as written: its complete document when it has one, else its statements merged into the
    live document the harness holds (``merge_statements``: what the printed jq does). The boundary's jq
    (MLSpace's own statements extended; they carry no Sid) and the identity fix's attachments are only in
    the command, so the command is run (bash, jq, the stand-in CLI) for them; every command is run, and a
    document it would write that differs from the fix's is recorded in ``world.failures``, as is whatever
    AWS would refuse. Returns the advisory layers (advice changes nothing)."""
    advice = []
    for fix in fixes:
        if not fix.statements:
            advice.append(fix.layer)
            continue
        kept = world.copy()
        _apply_one(world, fix)
        if refused := [size for size in world.too_large() if size not in kept.too_large()]:
            # AWS refuses the whole write (IAM's LimitExceeded, S3's and KMS's MalformedPolicy).
            failures = world.failures
            world.__dict__.update(kept.__dict__)
            world.failures = [*failures, *(f"AWS refuses the {fix.layer} fix: {size}" for size in refused)]
    return advice


def _apply_one(world: World, fix: Fix) -> None:
    # A command that writes a document it was given whole is tests/core/test_remedy.py's to check; the rest
    # (a merge into the live document, an identity fix's attachments) only the command knows.
    printed = run_printed(world, fix.command) if fix.document is None or fix.layer == "identity" else None
    if printed is not None:
        world.failures += [f"printed {fix.layer} command: {error}" for error in printed.errors()]
    if fix.layer == "bucket-policy":
        bucket = world.buckets[fix.target]
        bucket.policy = fix.document if fix.document is not None else _merged(bucket.policy, fix)
        _compare(world, fix, printed, "s3api put-bucket-policy", bucket.policy)
    elif fix.layer == "kms" and fix.target not in world.keys:
        _apply_read_key(world, fix, printed)
    elif fix.layer == "kms":
        current = world.keys[fix.target]
        world.keys[fix.target] = fix.document if fix.document is not None else _merged(current, fix)
        _compare(world, fix, printed, "kms put-key-policy", world.keys[fix.target])
    elif fix.layer == "boundary":
        _apply_boundary(world, fix, printed)
    elif fix.layer == "identity":
        _apply_identity(world, fix, printed)
    else:
        world.failures.append(f"a fix for a layer the harness does not know: {fix.layer}")


def _apply_read_key(world: World, fix: Fix, printed: Printed | None) -> None:
    """A key policy fix for a key the check could not read: its command reads the bucket's default key at
    run time, so the key it writes to is the one its ``put-key-policy`` names."""
    assert printed is not None, "a fix without a document is always run"
    written = printed.written("kms put-key-policy")
    if not written and printed.returncode == 0 and "uses no KMS key" in printed.stderr:
        return  # the bucket uses no KMS key: rightly nothing to change
    if not written:
        world.failures.append(f"the printed kms command writes nothing ({printed.stderr.strip()})")
        return
    key = written[-1]["key"]
    if key not in world.keys:
        world.failures.append(
            f"the printed kms command writes the policy of a key that does not exist: {key}"
        )
        return
    world.keys[key] = _merged(world.keys[key], fix)
    _compare(world, fix, printed, "kms put-key-policy", world.keys[key])


def _merged(current: Document | None, fix: Fix) -> Document:
    return merge_statements(copy.deepcopy(current), list(fix.statements))


def _compare(world: World, fix: Fix, printed: Printed | None, *calls_and_applied: Any) -> None:
    """Whether the printed command wrote (with its last call among ``calls``) the document applied."""
    *calls, applied = calls_and_applied
    if printed is None:
        return
    written = [call for name in calls for call in printed.written(name)]
    if not written:
        world.failures.append(f"the printed {fix.layer} command writes nothing")
    elif _statements(written[-1]["document"]) != _statements(applied):
        world.failures.append(f"the printed {fix.layer} command writes another document than the fix holds")


def _apply_boundary(world: World, fix: Fix, printed: Printed | None) -> None:
    name = fix.target.rsplit("/", 1)[-1]
    written = printed.written("iam create-policy-version") if printed is not None else []
    if name not in world.policies:
        world.failures.append(f"create-policy-version on {fix.target}: NoSuchEntity")
    elif fix.document is not None:
        world.policies[name] = copy.deepcopy(fix.document)
    elif written:
        world.policies[name] = written[-1]["document"]  # the printed jq over the live boundary
    elif printed is not None and printed.returncode == 0 and "no permissions boundary" in printed.stderr:
        return  # the role, read by the admin at run time, has none (MLSpace's shared notebook role)
    else:
        stderr = printed.stderr.strip() if printed is not None else ""
        world.failures.append(f"the printed boundary command writes nothing ({stderr})")


def _apply_identity(world: World, fix: Fix, printed: Printed | None) -> None:
    assert printed is not None, "an identity fix's command is always run (its attachments are only there)"
    name = fix.target.rsplit("/", 1)[-1]
    exists = name in world.policies
    if fix.document is not None and fix.operation is Operation.CREATE_POLICY:
        if exists:  # IAM refuses (EntityAlreadyExists); a pasted script goes on with the next line
            world.failures.append(f"create-policy {name}: EntityAlreadyExists (the policy exists already)")
        else:
            world.policies[name] = copy.deepcopy(fix.document)
    elif fix.document is not None:
        if exists:
            world.policies[name] = copy.deepcopy(fix.document)
        else:
            world.failures.append(
                f"create-policy-version on {name}: NoSuchEntity (the policy does not exist)"
            )
    elif exists or printed.written("iam create-policy"):  # merged into it, or created by the command
        statements = list(fix.statements)
        if "no room for the bucket's KMS key" in printed.stderr:  # left out, as the command says
            statements = [st for st in statements if st.get("Sid") != f"{fix.sid_stem}Kms"]
        world.policies[name] = merge_statements(copy.deepcopy(world.policies.get(name)), statements)
    else:
        world.failures.append(f"create-policy-version on {name}: NoSuchEntity (the policy does not exist)")
    if name in world.policies:
        _compare(world, fix, printed, "iam create-policy", "iam create-policy-version", world.policies[name])
    attach(world, name, [call["role"] for call in printed.written("iam attach-role-policy")])


def attach(world: World, name: str, roles: Iterable[str]) -> None:
    if name not in world.policies:
        world.failures.append(f"attach-role-policy {name}: NoSuchEntity (the policy does not exist)")
        return
    for role in roles:
        if role not in world.roles:
            world.failures.append(f"attach-role-policy to {role}: no such role")
        elif name not in world.roles[role].attached:
            world.roles[role].attached.append(name)
