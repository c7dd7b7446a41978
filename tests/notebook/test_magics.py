"""``%s3access`` in a real IPython shell: loading, ``%config``, the subcommand table, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mlspace_s3magic.core.check import AccessReport, S3AccessDenied, Verdict
from mlspace_s3magic.core.errors import CredentialsMissing
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.reachability import BucketList
from mlspace_s3magic.core.registry import save_registry_file
from mlspace_s3magic.notebook.magics import S3Access
from mlspace_s3magic.notebook.widgets import BucketBrowser
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import REGISTRY


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlspace_s3magic")
    yield ip


def _magics(ip: InteractiveShell) -> S3Access:
    return next(c for c in ip.configurables if isinstance(c, S3Access))


def _configure_for(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, state: SandboxState, who: str
) -> None:
    creds = state.principal(who).credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", creds.session_token or "")
    ip.run_line_magic("config", f"S3Access.endpoint_url = {state.endpoint_url!r}")
    ip.run_line_magic("config", "S3Access.region = 'us-east-1'")
    _magics(ip).reset()  # the environment's credentials changed, which %config cannot see


def test_whoami_returns_the_identity(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    me = shell.run_line_magic("s3access", "whoami")
    assert isinstance(me, Identity)
    assert (me.user, me.project, me.account) == ("alice", "demo", "111111111111")
    assert "<table>" in me._repr_html_()


def test_config_changes_rebuild_the_clients(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    magics = _magics(shell)
    assert magics.endpoint_url == sandbox.endpoint_url
    first = magics.aws
    assert magics.aws is first
    shell.run_line_magic("config", "S3Access.max_pool_connections = 32")
    assert magics.aws is not first
    assert magics.aws.settings.max_pool_connections == 32


def test_whoami_json_prints_an_object(
    shell: InteractiveShell,
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "bob@demo")
    assert shell.run_line_magic("s3access", "whoami --json") is None
    printed = json.loads(capsys.readouterr().out)
    assert {"arn", "account", "role", "session", "user", "project", "boundary"} <= set(printed)
    assert printed["user"] == "bob"


def test_unknown_subcommand_lists_the_valid_ones(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"Unknown subcommand 'whomai'\. Valid subcommands: whoami"):
        shell.run_line_magic("s3access", "whomai")


def test_bad_option_is_a_usage_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="unrecognized arguments: --jsn"):
        shell.run_line_magic("s3access", "whoami --jsn")


def test_overview_and_subcommand_help(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("s3access", "")
    overview = capsys.readouterr().out
    assert "whoami" in overview and "Who you are to AWS" in overview
    shell.run_line_magic("s3access", "whoami --help")
    assert "--json" in capsys.readouterr().out


def test_every_argument_has_help(shell: InteractiveShell) -> None:
    for name, handler in _magics(shell).subcommands.items():
        for action in handler.parser._actions:  # type: ignore[attr-defined]
            assert action.help, f"{name} {action.option_strings} has no help"


def test_aws_failures_raise_our_error_not_a_usage_error(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "S3Access.endpoint_url = 'http://127.0.0.1:9'")
    with pytest.raises(CredentialsMissing):
        shell.run_line_magic("s3access", "whoami")


def test_check_returns_the_report(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    report = shell.run_line_magic("s3access", "check partner-shared-readonly")
    assert isinstance(report, AccessReport)
    assert report.verdict("read") is Verdict.ALLOWED


def test_check_strict_raises_on_denial(
    shell: InteractiveShell,
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    with pytest.raises(S3AccessDenied, match="read access to s3://BucketToBeShared/datasets/ is denied"):
        shell.run_line_magic("s3access", "check BucketToBeShared/datasets/ --strict")
    assert "BucketToBeShared" in capsys.readouterr().out  # the report was shown before the error


def test_raise_on_denied_is_a_setting(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    shell.run_line_magic("config", "S3Access.raise_on_denied = True")
    try:
        with pytest.raises(S3AccessDenied):
            shell.run_line_magic("s3access", "check BucketToBeShared --json")
        assert shell.run_line_magic("s3access", "check partner-shared-readonly") is not None
    finally:
        shell.run_line_magic("config", "S3Access.raise_on_denied = False")


def test_check_json_and_bad_names(
    shell: InteractiveShell,
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    assert shell.run_line_magic("s3access", "check BucketToBeShared --json") is None
    printed = json.loads(capsys.readouterr().out)
    assert printed["capabilities"]["list"]["verdict"] == "denied"
    with pytest.raises(UsageError, match="not a valid S3 bucket name"):
        shell.run_line_magic("s3access", "check 'bad bucket'")
    with pytest.raises(UsageError, match="argument --need: invalid choice"):
        shell.run_line_magic("s3access", "check x-bucket --need everything")


def test_list_is_cached_until_refreshed(
    shell: InteractiveShell,
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    save_registry_file(tmp_path / "registry.json", REGISTRY)
    shell.run_line_magic("config", f"S3Access.registry_path = {str(tmp_path / 'registry.json')!r}")
    shell.run_line_magic("config", "S3Access.extra_buckets = ['no-such-bucket-of-alice']")
    try:
        first = shell.run_line_magic("s3access", "list")
        assert isinstance(first, BucketList)
        statuses = {item.candidate.bucket: item.status.value for item in first.items}
        assert statuses["BucketToBeShared"] == "denied"
        assert statuses["partner-shared-readonly"] == "read"
        assert "no-such-bucket-of-alice" in statuses
        assert shell.run_line_magic("s3access", "list") is first
        assert shell.run_line_magic("s3access", "list --refresh") is not first
        shell.run_line_magic("s3access", "list --json")
        printed = json.loads(capsys.readouterr().out)
        assert {row["bucket"] for row in printed} == set(statuses)
    finally:
        shell.run_line_magic("config", "S3Access.registry_path = None")
        shell.run_line_magic("config", "S3Access.extra_buckets = []")


def test_browse_opens_a_bucket_or_the_list(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _configure_for(shell, monkeypatch, sandbox, "owner")
    opened = shell.run_line_magic("s3access", "browse BucketToBeShared/datasets/ --page-size 5")
    assert isinstance(opened, BucketBrowser)
    assert opened.rows == [("folder", "iris/")]
    save_registry_file(tmp_path / "registry.json", REGISTRY)
    shell.run_line_magic("config", f"S3Access.registry_path = {str(tmp_path / 'registry.json')!r}")
    try:
        listing = shell.run_line_magic("s3access", "browse --refresh")
        assert ("bucket", "BucketToBeShared") in listing.rows
    finally:
        shell.run_line_magic("config", "S3Access.registry_path = None")
    with pytest.raises(UsageError, match="--page-size must be between 1 and 1000"):
        shell.run_line_magic("s3access", "browse BucketToBeShared --page-size 5000")


def test_check_takes_the_owner_from_the_registry(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Same or cross account changes how AWS decides; the admin's registry says whose bucket it is."""
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    unknown = "The account that owns BucketToBeShared is unknown"
    without = shell.run_line_magic("s3access", "check BucketToBeShared")
    assert any(unknown in note for note in without.notes)
    save_registry_file(tmp_path / "registry.json", REGISTRY)
    shell.run_line_magic("config", f"S3Access.registry_path = {str(tmp_path / 'registry.json')!r}")
    try:
        report = shell.run_line_magic("s3access", "check BucketToBeShared")
        assert not any(unknown in note for note in report.notes)
        assert report.verdict("read") is Verdict.DENIED
        (tmp_path / "broken.json").write_text("{not json")
        shell.run_line_magic("config", f"S3Access.registry_path = {str(tmp_path / 'broken.json')!r}")
        unreadable = shell.run_line_magic("s3access", "check BucketToBeShared")  # a check all the same
        assert any(unknown in note for note in unreadable.notes)
    finally:
        shell.run_line_magic("config", "S3Access.registry_path = None")


def test_browse_explains_a_denial_with_the_owner_from_the_registry(
    shell: InteractiveShell, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The widget checks through the session, so it knows whose bucket it is as ``check`` does."""
    _configure_for(shell, monkeypatch, sandbox, "alice@demo")
    save_registry_file(tmp_path / "registry.json", REGISTRY)
    shell.run_line_magic("config", f"S3Access.registry_path = {str(tmp_path / 'registry.json')!r}")
    try:
        browser = shell.run_line_magic("s3access", "browse BucketToBeShared")
        assert browser.report is not None and browser.report.verdict("list") is Verdict.DENIED
        assert not any("The account that owns BucketToBeShared is unknown" in n for n in browser.report.notes)
    finally:
        shell.run_line_magic("config", "S3Access.registry_path = None")
