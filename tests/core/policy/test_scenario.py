"""Scenarios for ``s3access simulate``: loading, validation messages, and evaluation end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlspace_s3magic.core.policy import (
    Decision,
    Layer,
    PolicyValidationError,
    PrincipalType,
    Scenario,
    evaluate_scenario,
    load_scenarios,
)

from .helpers import MLSPACE, PARTNER, SESSION, SHARED_BUCKET, SHARED_OBJECT, document, statement

BRIEF_EXAMPLE: dict[str, Any] = {
    "principal": SESSION,
    "action": "s3:GetObject",
    "resource": SHARED_OBJECT,
    "resource_account": PARTNER,
    "context": {"aws:SourceVpc": "vpc-1", "aws:PrincipalTag/project": "demo"},
    "identity_policies": [],
    "permissions_boundary": None,
    "session_policy": None,
    "resource_policy": None,
    "scps": [[]],
    "rcps": [[]],
    "endpoint_policy": None,
}

READ_SHARED = document(statement(Sid="Read", action="s3:GetObject", resource=f"{SHARED_BUCKET}/*"))
TRUST_MLSPACE = document(
    statement(
        Sid="TrustMLSpace", action="s3:GetObject", resource=f"{SHARED_BUCKET}/*", Principal={"AWS": MLSPACE}
    )
)


def minimal(**extra: Any) -> dict[str, Any]:
    return {"principal": SESSION, "action": "s3:GetObject", "resource": SHARED_OBJECT, **extra}


def error_for(obj: Any) -> PolicyValidationError:
    with pytest.raises(PolicyValidationError) as caught:
        load_scenarios(obj)
    return caught.value


def test_the_example_scenario_loads_and_explains_every_missing_allow() -> None:
    [scenario] = load_scenarios(BRIEF_EXAMPLE)
    assert scenario.request.principal.type is PrincipalType.ASSUMED_ROLE
    assert scenario.request.context["aws:SourceVpc"] == "vpc-1"
    result = evaluate_scenario(scenario)
    assert result.decision is Decision.IMPLICIT_DENY
    # An RCP level without policies still holds RCPFullAWSAccess, so only the SCP level blocks there.
    assert result.blocked_by == (Layer.SCP, Layer.RESOURCE, Layer.IDENTITY)


def test_the_example_with_its_grants_filled_in_is_allowed() -> None:
    filled = {
        **BRIEF_EXAMPLE,
        "identity_policies": [READ_SHARED],
        "resource_policy": json.dumps(TRUST_MLSPACE),
        "scps": [],
        "rcps": [],
    }
    result = evaluate_scenario(Scenario.from_dict(filled))
    assert result.allowed
    assert [ref.policy for ref in result.statements] == ["resource_policy", "identity_policies[0]"]


def test_omitted_keys_mean_no_policy() -> None:
    [scenario] = load_scenarios(minimal())
    assert scenario.layers.identity == () and scenario.layers.resource is None and scenario.layers.scps == ()
    assert scenario.request.resource_account is None and scenario.name is None


def test_a_list_and_a_scenarios_object_both_load() -> None:
    second = minimal(name="second", action="s3:ListBucket", resource=SHARED_BUCKET)
    assert [s.name for s in load_scenarios([minimal(name="first"), second])] == ["first", "second"]
    assert len(load_scenarios({"scenarios": [minimal(), second]})) == 2


def test_policy_labels_follow_the_scenario_keys() -> None:
    [scenario] = load_scenarios(
        minimal(
            scps=[
                [document(statement(action="*"))],
                [document(statement(action="*")), document(statement(action="*"))],
            ]
        )
    )
    labels = [[p.label for p in level] for level in scenario.layers.scps]
    assert labels == [["scps[0][0]"], ["scps[1][0]", "scps[1][1]"]]
    assert all(p.layer is Layer.SCP for level in scenario.layers.scps for p in level)


def test_a_kms_key_policy_is_given_as_the_resource_policy() -> None:
    key = f"arn:aws:kms:us-east-1:{MLSPACE}:key/abcd"
    key_policy = document(statement(action="kms:*", Principal={"AWS": f"arn:aws:iam::{MLSPACE}:root"}))
    decrypt = document(statement(action="kms:Decrypt"))
    scenario = minimal(
        action="kms:Decrypt", resource=key, resource_policy=key_policy, identity_policies=[decrypt]
    )
    assert evaluate_scenario(Scenario.from_dict(scenario)).allowed
    without = {**scenario, "resource_policy": None}
    assert evaluate_scenario(Scenario.from_dict(without)).blocked_by == (Layer.RESOURCE,)


def test_multivalued_context_values_are_lists_of_strings() -> None:
    tags = document(statement(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["project", "user"]}}))
    allowed = minimal(resource_account=MLSPACE, identity_policies=[tags], context={"aws:TagKeys": ["user"]})
    assert evaluate_scenario(Scenario.from_dict(allowed)).allowed
    denied = {**allowed, "context": {"aws:TagKeys": ["user", "cost"]}}
    assert not evaluate_scenario(Scenario.from_dict(denied)).allowed


@pytest.mark.parametrize(
    ("obj", "path", "fragment"),
    [
        ("text", "", "JSON object"),
        ({"scenarios": []}, "scenarios", "non-empty list"),
        ({"scenarios": [minimal()], "extra": 1}, "", "nothing else"),
        ([], "", "non-empty list"),
        ({"action": "s3:GetObject", "resource": SHARED_OBJECT}, "principal", "required"),
        (minimal(principal=""), "principal", "required"),
        (minimal(principal=7), "principal", "required"),
        (minimal(principal="bob"), "principal", "not a caller ARN"),
        (minimal(action="s3:Get*"), "action", "without wildcards"),
        (minimal(action="GetObject"), "action", "not an action"),
        (minimal(resource="s3://BucketToBeShared/x"), "resource", "not an ARN"),
        (minimal(resource_account="2222"), "resource_account", "12-digit"),
        (minimal(resource_account=222222222222), "resource_account", "12-digit"),
        (minimal(name=3), "name", "string"),
        (minimal(context=["aws:SourceVpc"]), "context", "expected an object"),
        (minimal(context={"aws:SecureTransport": True}), "context.aws:SecureTransport", '"true"'),
        (minimal(context={"aws:TagKeys": ["a", 1]}), "context.aws:TagKeys", "list of strings"),
        (minimal(identity_policies={}), "identity_policies", "list of policy documents"),
        (minimal(identity_policies=[5]), "identity_policies[0]", "JSON object or a JSON string"),
        (minimal(identity_policies=["{not json"]), "identity_policies[0]", "not valid JSON"),
        (
            minimal(identity_policies=[document(statement(effect="allow"))]),
            "identity_policies[0].Statement[0].Effect",
            'Effect must be "Allow" or "Deny"',
        ),
        (
            minimal(permissions_boundary=document(statement(Principal="*"))),
            "permissions_boundary.Statement[0].Principal",
            "not allowed in a boundary policy",
        ),
        (minimal(resource_policy=document(statement())), "resource_policy.Statement[0]", "needs a Principal"),
        (minimal(endpoint_policy=document(statement())), "endpoint_policy.Statement[0]", "needs a Principal"),
        (minimal(session_policy="[]"), "session_policy", "JSON object"),
        (minimal(scps={}), "scps", "list of levels"),
        (minimal(scps=[{}]), "scps[0]", "list of policy documents"),
        (
            minimal(
                rcps=[
                    [document(statement(Principal="*"))],
                    [document(statement(action="s3GetObject", Principal="*"))],
                ]
            ),
            "rcps[1][0].Statement[0].Action",
            "not an action",
        ),
        (
            minimal(rcps=[[document(statement(Principal="*", Condition={"StringEqualz": {"k": "v"}}))]]),
            "rcps[0][0].Statement[0].Condition",
            "unknown operator StringEqualz",
        ),
        ([minimal(), minimal(action="nope")], "[1].action", "not an action"),
        ({"scenarios": [minimal(principal="x")]}, "scenarios[0].principal", "not a caller ARN"),
        (
            {"scenarios": [minimal(identity_policies=[document(statement(action=3))])]},
            "scenarios[0].identity_policies[0].Statement[0].Action",
            "non-empty string",
        ),
    ],
)
def test_scenario_errors_say_which_key_and_what_is_accepted(obj: Any, path: str, fragment: str) -> None:
    error = error_for(obj)
    assert error.path == path
    assert fragment in error.message
