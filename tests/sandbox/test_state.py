"""``sandbox.json`` and the ``export`` lines made from it."""

from __future__ import annotations

import shlex
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import StaticCredentials
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.registry import load_registry_file
from mlspace_s3magic.sandbox.state import SandboxPrincipal, SandboxState


def _state() -> SandboxState:
    return SandboxState(
        endpoint_url="http://127.0.0.1:5555",
        principals={
            "alice@demo": SandboxPrincipal(
                "alice@demo",
                "arn:aws:sts::1:assumed-role/r/SageMaker",
                StaticCredentials("ASIAALICE", "alice's $ecret `x`", "token'with\"quotes"),
            ),
            "admin": SandboxPrincipal(
                "admin", "arn:aws:iam::1:user/admin", StaticCredentials("AKIAADMIN", "s3cr3t")
            ),
        },
    )


def test_exports_survive_the_shell_with_awkward_characters(tmp_path: Path) -> None:
    script = (
        _state().shell_exports("alice@demo") + '\nprintf "%s\\n%s\\n%s" "$AWS_SECRET_ACCESS_KEY" '
        '"$AWS_SESSION_TOKEN" "$AWS_DEFAULT_REGION"'
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["alice's $ecret `x`", "token'with\"quotes", "us-east-1"]


def test_a_principal_without_token_unsets_a_stale_one() -> None:
    exports = _state().shell_exports("admin")
    assert "unset AWS_SESSION_TOKEN" in exports.splitlines()
    script = "export AWS_SESSION_TOKEN=stale\n" + exports + '\necho "[${AWS_SESSION_TOKEN-unset}]"'
    assert subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout == "[unset]\n"


def test_unknown_principal_names_the_valid_ones() -> None:
    with pytest.raises(S3MagicError, match=r"no principal 'carol'.*alice@demo, admin"):
        _state().shell_exports("carol")


def test_state_round_trips_and_is_private(tmp_path: Path) -> None:
    entry = SharedBucket(
        bucket="partner-bucket", owner_account="222222222222", region="us-east-1", description="shared"
    )
    path = _state().save(tmp_path / "state", [entry])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = SandboxState.load(tmp_path / "state")
    assert loaded == replace(_state(), registry_file=str((tmp_path / "state" / "registry.json").resolve()))
    assert "s3cr3t" not in repr(loaded)
    assert loaded.registry_file is not None
    assert load_registry_file(Path(loaded.registry_file)) == [entry]
    assert loaded.environment_for("admin")["S3ACCESS_REGISTRY"] == loaded.registry_file


def test_missing_state_says_how_to_start_a_sandbox(tmp_path: Path) -> None:
    with pytest.raises(S3MagicError, match=r"s3access sandbox serve --state-dir"):
        SandboxState.load(tmp_path)


def test_a_corrupt_state_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "sandbox.json").write_text("{not json")
    with pytest.raises(S3MagicError, match=r"sandbox.json is not a sandbox state file"):
        SandboxState.load(tmp_path)


def test_export_values_are_quoted() -> None:
    line = next(x for x in _state().shell_exports("alice@demo").splitlines() if "SECRET" in x)
    assert shlex.split(line) == ["export", "AWS_SECRET_ACCESS_KEY=alice's $ecret `x`"]
