"""Reconcile keeps live grants whole (a member who joined later, a statement removed by hand) and finds
statements of ours that no live grant owns, removing them only when asked."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.admin.reconcile import WHOLE, Finding, ReconcileReport
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.access import AccessRequest, NewAccessRequest, RequestStatus
from mlspace_s3magic.core.mlspace import user_role_name
from mlspace_s3magic.sandbox.world import MLSPACE_ACCOUNT, SHARED_BUCKET

from .conftest import Endpoint

GRANT_ARN = f"arn:aws:iam::{MLSPACE_ACCOUNT}:policy/MLSpace-s3access-project-demo"
CAROL = user_role_name("demo", "carol")


def _applied(endpoint: Endpoint) -> AccessRequest:
    new = NewAccessRequest.model_validate(
        {
            "bucket": SHARED_BUCKET,
            "prefix": "datasets/",
            "access": "read",
            "reason": "iris study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    filed = endpoint.client("alice@demo").submit(new)
    assert filed is not None
    admin = endpoint.client("admin")
    admin.act(filed.id, "approve")
    applied = admin.act(filed.id, "apply")
    assert applied.status is RequestStatus.APPLIED
    return applied


def _grant(endpoint: Endpoint) -> dict[str, Any]:
    iam = endpoint.state.aws_for("admin").client("iam")
    version = iam.get_policy(PolicyArn=GRANT_ARN)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=GRANT_ARN, VersionId=version)["PolicyVersion"]["Document"]
    return dict(json.loads(document) if isinstance(document, str) else document)


def _set_grant(endpoint: Endpoint, document: dict[str, Any]) -> None:
    iam = endpoint.state.aws_for("admin").client("iam")
    for version in iam.list_policy_versions(PolicyArn=GRANT_ARN)["Versions"]:
        if not version["IsDefaultVersion"]:
            iam.delete_policy_version(PolicyArn=GRANT_ARN, VersionId=version["VersionId"])
    iam.create_policy_version(PolicyArn=GRANT_ARN, PolicyDocument=json.dumps(document), SetAsDefault=True)


def _sids(document: dict[str, Any]) -> list[str]:
    return [str(statement.get("Sid")) for statement in document["Statement"]]


def test_a_member_who_joined_after_the_grant_gets_the_grant_policy(endpoint: Endpoint) -> None:
    request = _applied(endpoint)
    iam = endpoint.state.aws_for("admin").client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(
        RoleName=CAROL, AssumeRolePolicyDocument=json.dumps(trust)
    )  # MLSpace attaches none of ours
    report = endpoint.client("admin").reconcile()
    attached = [item for item in report["findings"] if item["kind"] == "attach"]
    assert [(item["detail"], item["request_id"], item["done"]) for item in attached] == [
        (f"attached to {CAROL}", request.id, True)
    ]
    roles = iam.list_entities_for_policy(PolicyArn=GRANT_ARN, EntityFilter="Role")["PolicyRoles"]
    assert CAROL in {role["RoleName"] for role in roles}
    assert endpoint.client("admin").reconcile()["findings"] == []  # whole again: nothing more to do
    assert any(entry.action == "reconcile" for entry in endpoint.client("admin").audit(request.id))


def test_a_statement_removed_by_hand_comes_back(endpoint: Endpoint) -> None:
    request = _applied(endpoint)
    whole = _grant(endpoint)
    objects = f"{request.sid_stem}Objects"
    _set_grant(endpoint, {**whole, "Statement": [s for s in whole["Statement"] if s.get("Sid") != objects]})
    (restored,) = endpoint.client("admin").reconcile()["findings"]
    assert (restored["kind"], restored["layer"], restored["done"]) == ("restore", "identity", True)
    assert objects in _sids(_grant(endpoint))


def test_an_orphan_is_listed_then_removed_with_apply(endpoint: Endpoint, tmp_path: Path, capsys: Any) -> None:
    request = _applied(endpoint)
    whole = _grant(endpoint)
    orphan = {
        "Sid": "S3AccessReqgone1234Objects",
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::somewhere-else/*",
    }
    _set_grant(endpoint, {**whole, "Statement": [*whole["Statement"], orphan]})
    token = tmp_path / "token"
    token.write_text(endpoint.token)
    cli = ["admin", "reconcile", "--url", endpoint.url, "--token-file", str(token)]
    assert main(cli) == 0
    listed = capsys.readouterr().out
    assert "found  orphan" in listed and "S3AccessReqgone1234" in listed
    assert orphan["Sid"] in _sids(_grant(endpoint))  # only listed
    assert main([*cli, "--apply"]) == 0
    assert "done   orphan" in capsys.readouterr().out
    assert _sids(_grant(endpoint)) == _sids(whole)  # the live grant's statements stay
    assert request.sid_stem in json.dumps(_grant(endpoint))


@pytest.mark.parametrize("principal", ["alice@demo"])
def test_only_an_admin_reconciles(endpoint: Endpoint, principal: str) -> None:
    from mlspace_s3magic.access_requests.client import AdminRefused

    with pytest.raises(AdminRefused, match="403"):
        endpoint.client(principal).reconcile()


def test_the_report_is_one_table_in_a_terminal_and_in_a_notebook() -> None:
    report = ReconcileReport(
        (
            Finding("orphan", "bucket-policy", "partner-data", "S3AccessReqgone1234Objects\x1b[2K"),
            Finding("attach", "identity", GRANT_ARN, f"attached to {CAROL}", "req-1", done=True),
        ),
        ("Could not read the kms layer.",),
    )
    header, orphan, attach, *notes = str(report).splitlines()
    assert header.split() == ["STATE", "KIND", "LAYER", "REQUEST", "TARGET", "DETAIL"]
    assert orphan.split() == [
        "found",
        "orphan",
        "bucket-policy",
        "-",
        "partner-data",
        "S3AccessReqgone1234Objects\\x1b[2K",
    ]
    assert attach.startswith("done   attach") and attach.index("req-1") == header.index("REQUEST")
    assert notes == ["Notes:", "  - Could not read the kms layer."]
    html = report._repr_html_()
    assert "<th>DETAIL</th>" in html and "<td>orphan</td>" in html
    assert "<li>Could not read the kms layer.</li>" in html
    assert str(ReconcileReport(())) == WHOLE
