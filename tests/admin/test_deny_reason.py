"""A denial comes with the admin's reason: the endpoint refuses one without a good reason (400, stating the
rule), keeps it on the request and in the audit log, and the requester reads it in their requests."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from mlspace_s3magic.access_requests.actions import my_requests
from mlspace_s3magic.access_requests.client import AdminForbade, AdminRefusedInput
from mlspace_s3magic.admin.views import admin_review
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from .conftest import Endpoint

RULE = "A denial needs a reason, for the requester: 3 to 1000 characters of plain text"


def _alice_files(endpoint: Endpoint, prefix: str = "datasets/") -> str:
    new = NewAccessRequest.model_validate(
        {
            "bucket": SHARED_BUCKET,
            "prefix": prefix,
            "access": "read",
            "reason": "iris study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    filed = endpoint.client("alice@demo").submit(new)
    assert filed is not None
    return filed.id


def _deny(endpoint: Endpoint, request_id: str, body: bytes) -> httpx.Response:
    """A deny with exactly this body, as the admin token."""
    headers = {"Authorization": f"Bearer {endpoint.token}", "Content-Type": "application/json"}
    return httpx.post(f"{endpoint.url}/v1/requests/{request_id}/deny", headers=headers, content=body)


# Each body, and what the endpoint's answer says about it (after the rule, or the field it names).
REFUSED = [
    (b"", f'{RULE} (the body\'s "reason"); none was given.'),
    (b"{}", "none was given"),
    (b'{"reason": null}', "none was given"),
    (b'{"reason": "  no  "}', "this one has 2."),
    (json.dumps({"reason": "x" * 1001}).encode(), "this one has 1001."),
    (json.dumps({"reason": "fine \x1b[2J text"}).encode(), "control character U+001B"),
    (json.dumps({"reason": "fine \u202e text"}).encode(), "control character U+202E"),
    (b'{"reason": 42}', "reason: The reason must be text"),
    (b'{"reason": "why not", "why": 1}', "why: Not a field accepted here"),
]


def test_a_deny_without_a_good_reason_is_a_400_stating_the_rule(endpoint: Endpoint) -> None:
    request_id = _alice_files(endpoint)
    for body, said in REFUSED:
        response = _deny(endpoint, request_id, body)
        assert response.status_code == 400, (body, response.text)
        assert said in response.json()["detail"], (body, response.text)
    assert endpoint.service.store.get(request_id).status is RequestStatus.PENDING
    assert [e.action for e in endpoint.service.store.audit(request_id=request_id)] == ["submit"]


def test_the_reason_reaches_the_requester_and_the_audit_log(endpoint: Endpoint) -> None:
    request_id = _alice_files(endpoint)
    alice, admin = endpoint.client("alice@demo"), endpoint.client("admin")
    with pytest.raises(AdminForbade, match="Only an admin"):
        alice.act(request_id, "deny", reason="I changed my mind")
    with pytest.raises(AdminRefusedInput, match="none was given"):
        admin.act(request_id, "deny")

    denied = admin.act(request_id, "deny", reason="  The data is under\nembargo until June.  ")
    said = "The data is under embargo until June."  # trimmed, its line break a space
    assert (denied.status, denied.decision_reason) == (RequestStatus.DENIED, said)

    # The requester's list, their view of the request and its history all say why.
    (mine,) = alice.requests()
    assert (mine.id, mine.decision_reason) == (request_id, said)
    view = alice.show(request_id)
    assert view.request.decision_reason == said
    assert [(e.action, e.detail) for e in view.history][-1] == ("deny", {"reason": said})
    table = my_requests(alice)
    assert f"denied because: {said}" in str(table)
    assert f"denied because: {said}" in table._repr_html_()
    assert table.to_dict()["requests"][0]["decision_reason"] == said

    # The admin's: the audit entry, and the review the panel draws.
    (entry,) = [e for e in admin.audit(request_id) if e.action == "deny"]
    assert entry.detail == {"reason": said} and entry.to_status is RequestStatus.DENIED
    assert admin_review(admin.show(request_id))["decision_reason"] == said
    # Other actions take no body, as before.
    other = _alice_files(endpoint, "logs/")
    assert admin.act(other, "approve").decision_reason is None
    alice.close()
    admin.close()


def _admin(endpoint: Endpoint, tmp_path: Path, *command: str) -> list[str]:
    token = tmp_path / "token"
    token.write_text(endpoint.token)
    return ["admin", *command, "--url", endpoint.url, "--token-file", str(token)]


def test_the_cli_denies_with_a_reason_and_show_prints_it(
    endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = _alice_files(endpoint)
    with pytest.raises(SystemExit) as exited:
        main(_admin(endpoint, tmp_path, "deny", request_id))
    assert exited.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err

    assert main(_admin(endpoint, tmp_path, "deny", request_id, "--reason", "no")) == 2
    assert "this one has 2" in capsys.readouterr().err
    assert endpoint.service.store.get(request_id).status is RequestStatus.PENDING

    reason = "Use the public copy in s3://open-data/iris/ \x1b[31m instead"
    assert main(_admin(endpoint, tmp_path, "deny", request_id, "--reason", reason)) == 2
    assert "U+001B" in capsys.readouterr().err
    reason = "Use the public copy in s3://open-data/iris/ instead"
    assert main(_admin(endpoint, tmp_path, "deny", request_id, "--reason", reason)) == 0
    assert capsys.readouterr().out.split()[:2] == [request_id, "denied"]
    assert main(_admin(endpoint, tmp_path, "show", request_id)) == 0
    assert f"denied because: {reason}" in capsys.readouterr().out.splitlines()
