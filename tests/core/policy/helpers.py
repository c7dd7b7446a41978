"""Shared names and builders for the policy tests: an MLSpace-shaped world in two accounts."""

from __future__ import annotations

from typing import Any

from mlspace_s3magic.core.policy import EvaluationResult, Scenario, evaluate_scenario

MLSPACE = "111111111111"
PARTNER = "222222222222"
ROLE_NAME = "MLSpace-demo-ab12"
ROLE = f"arn:aws:iam::{MLSPACE}:role/{ROLE_NAME}"
SESSION = f"arn:aws:sts::{MLSPACE}:assumed-role/{ROLE_NAME}/SageMaker"
OTHER_SESSION = f"arn:aws:sts::{MLSPACE}:assumed-role/{ROLE_NAME}/Other"
USER = f"arn:aws:iam::{MLSPACE}:user/alice"
ROOT = f"arn:aws:iam::{MLSPACE}:root"
DATA_BUCKET = f"mlspace-data-{MLSPACE}"
DATA_OBJECT = f"arn:aws:s3:::{DATA_BUCKET}/project/demo/train.csv"
SHARED_BUCKET = "arn:aws:s3:::BucketToBeShared"
SHARED_OBJECT = f"{SHARED_BUCKET}/datasets/iris/iris.csv"
KEY = f"arn:aws:kms:us-east-1:{MLSPACE}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PARTNER_KEY = f"arn:aws:kms:us-east-1:{PARTNER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

Statement = dict[str, Any]


def statement(
    effect: str = "Allow", action: Any = "s3:GetObject", resource: Any = "*", **extra: Any
) -> Statement:
    """One statement; ``extra`` adds Principal, Condition, Sid, NotAction and so on."""
    result: Statement = {"Effect": effect, "Action": action, "Resource": resource}
    result.update(extra)
    for element, replaced in (("NotAction", "Action"), ("NotResource", "Resource")):
        if element in extra:
            del result[replaced]
    return result


def document(*statements: Statement, version: str | None = "2012-10-17") -> dict[str, Any]:
    """A policy document holding the statements."""
    result: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        result["Version"] = version
    return result


def allow_all() -> dict[str, Any]:
    """Like FullAWSAccess (SCP) or RCPFullAWSAccess (RCP), which AWS attaches by default."""
    return document(statement(action="*", resource="*"))


def rcp_allow_all() -> dict[str, Any]:
    """RCPFullAWSAccess: RCPs name Principal "*"."""
    return document(statement(action="*", resource="*", Principal="*"))


def decide(
    principal: str = SESSION, action: str = "s3:GetObject", resource: str = DATA_OBJECT, **keys: Any
) -> EvaluationResult:
    """Evaluate a scenario built from keyword arguments named as the scenario keys are."""
    return evaluate_scenario(
        Scenario.from_dict({"principal": principal, "action": action, "resource": resource, **keys})
    )
