"""Access requests from a notebook and a terminal: file, follow, cancel, queue while the endpoint is down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mlspace_s3magic.access_requests.results import Receipt, RequestTable
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.access import RequestStatus
from mlspace_s3magic.notebook.magics import S3Access
from mlspace_s3magic.notebook.request_form import RequestForm

from .conftest import Endpoint, free_port


@pytest.fixture
def alice_shell(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InteractiveShell]:
    """IPython as alice@demo, with her own outbox folder and the endpoint configured."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for key, value in endpoint.state.environment_for("alice@demo").items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlspace_s3magic")
    magics = next(c for c in shell.configurables if isinstance(c, S3Access))
    shell.run_line_magic("config", f"S3Access.admin_url = {endpoint.url!r}")
    magics.reset()
    yield shell
    shell.run_line_magic("config", "S3Access.admin_url = None")


def test_request_follow_and_cancel_from_a_notebook(alice_shell: InteractiveShell, endpoint: Endpoint) -> None:
    receipt = alice_shell.run_line_magic(
        "s3access", 'request BucketToBeShared/datasets/iris/ --reason "iris study for the demo" --days 30'
    )
    assert isinstance(receipt, Receipt) and receipt.filed is not None
    assert receipt.filed.status is RequestStatus.PENDING
    assert (receipt.filed.bucket, receipt.filed.prefix, receipt.filed.reason) == (
        "BucketToBeShared",
        "datasets/iris/",
        "iris study for the demo",
    )
    table = alice_shell.run_line_magic("s3access", "requests")
    assert isinstance(table, RequestTable)
    assert [r.id for r in table.requests] == [receipt.filed.id]
    after = alice_shell.run_line_magic("s3access", f"cancel {receipt.filed.id}")
    assert [r.status for r in after.requests] == [RequestStatus.CANCELLED]
    assert endpoint.service.store.get(receipt.filed.id).status is RequestStatus.CANCELLED


def test_the_requests_table_shows_one_line_per_layer_of_an_applied_grant(
    alice_shell: InteractiveShell, endpoint: Endpoint
) -> None:
    receipt = alice_shell.run_line_magic(
        "s3access", 'request BucketToBeShared/datasets/ --reason "iris study for the demo"'
    )
    admin = endpoint.client("admin")
    admin.act(receipt.filed.id, "approve")
    admin.act(receipt.filed.id, "apply")
    table = alice_shell.run_line_magic("s3access", "requests")
    text, html = str(table), table._repr_html_()
    for line in (
        "the bucket's policy: allows your role to read and list s3://BucketToBeShared/datasets/ (written)",
        "the grant policy MLSpace-s3access-project-demo: allows your role to read and list "
        "s3://BucketToBeShared/datasets/ (written)",
        "the permissions boundary mlspace-project-user-permission-boundary: lets read and list "
        "s3://BucketToBeShared/datasets/ pass MLSpace's ceiling (the grant policy still decides) (written)",
    ):
        assert f"    - {line}" in text
        assert escape(line) in html
    (shown,) = table.to_dict()["requests"]
    assert "plan" not in shown and {entry["state"] for entry in shown["summary"]} == {"written"}


def test_bad_requests_are_usage_errors(alice_shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="reason: The reason must have at least 3 characters"):
        alice_shell.run_line_magic("s3access", 'request BucketToBeShared --reason "x"')
    with pytest.raises(UsageError, match="days: Days must be between 1 and 365"):
        alice_shell.run_line_magic("s3access", 'request BucketToBeShared --reason "long enough" --days 900')


def test_a_request_is_queued_while_the_endpoint_is_down_and_sent_later(
    alice_shell: InteractiveShell, endpoint: Endpoint
) -> None:
    alice_shell.run_line_magic("config", f"S3Access.admin_url = 'http://127.0.0.1:{free_port()}'")
    receipt = alice_shell.run_line_magic(
        "s3access", 'request BucketToBeShared --reason "needed while offline"'
    )
    assert receipt.filed is None
    assert "queued" in str(receipt)
    alice_shell.run_line_magic("config", f"S3Access.admin_url = {endpoint.url!r}")
    table = alice_shell.run_line_magic("s3access", "requests")
    assert [r.reason for r in table.requests] == ["needed while offline"]
    assert table.queued == []
    alice_shell.run_line_magic("s3access", "requests")  # sending again files nothing twice
    assert len(endpoint.service.store.list_requests()) == 1


def test_the_list_takes_its_registry_from_the_endpoint(alice_shell: InteractiveShell) -> None:
    buckets = alice_shell.run_line_magic("s3access", "list --refresh")
    statuses = {item.candidate.bucket: item.status.value for item in buckets.items}
    assert statuses["BucketToBeShared"] == "denied"
    assert statuses["partner-shared-readonly"] == "read"


def test_the_cli_files_and_lists(
    endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for key, value in endpoint.state.environment_for("bob@demo").items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert (
        main(
            [
                "request",
                "BucketToBeShared",
                "--access",
                "read-write",
                "--reason",
                "bob's models",
                "--url",
                endpoint.url,
                "--json",
            ]
        )
        == 0
    )
    filed = json.loads(capsys.readouterr().out)
    assert (filed["queued"], filed["status"], filed["access"]) == (False, "pending", "read-write")
    assert main(["requests", "--url", endpoint.url]) == 0
    assert filed["id"] in capsys.readouterr().out
    assert main(["request", "BucketToBeShared", "--reason", "no", "--url", endpoint.url]) == 2
    assert "reason" in capsys.readouterr().err


def test_the_browsers_request_button_files_a_request(
    alice_shell: InteractiveShell, endpoint: Endpoint
) -> None:
    browser = alice_shell.run_line_magic("s3access", "browse BucketToBeShared/datasets/")
    assert browser.denied is not None
    (form,) = browser.request_area.children
    assert isinstance(form, RequestForm)
    form.reason.value = "x"
    assert form.send() is None
    assert "reason" in form.outcome.value  # the rule broken, shown in the form; nothing sent
    form.reason.value = "iris study, from the browser"
    form.access.value = "read-write"
    receipt = form.send()
    assert receipt is not None and receipt.filed is not None
    stored = endpoint.service.store.get(receipt.filed.id)
    assert (stored.bucket, stored.prefix, stored.access.value) == (
        "BucketToBeShared",
        "datasets/",
        "read-write",
    )
    assert stored.requester.user == "alice"
    assert form.button.disabled


def test_without_an_endpoint_the_browser_says_how_to_configure_one(alice_shell: InteractiveShell) -> None:
    alice_shell.run_line_magic("config", "S3Access.admin_url = None")
    browser = alice_shell.run_line_magic("s3access", "browse BucketToBeShared")
    (note,) = browser.request_area.children
    assert "S3Access.admin_url" in note.value
