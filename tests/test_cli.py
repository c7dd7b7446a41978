"""``s3access`` in a terminal: whoami, and the sandbox's serve / env / run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlspace_s3magic.cli import main
from mlspace_s3magic.sandbox.state import SandboxState

S3ACCESS = str(Path(sys.executable).with_name("s3access"))


def _act_as(monkeypatch: pytest.MonkeyPatch, state: SandboxState, principal: str) -> None:
    for key, value in state.environment_for(principal).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)


def test_whoami_json_from_the_environment(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "bob@demo")
    assert main(["whoami", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {key: printed[key] for key in ("user", "project", "account", "session")} == {
        "user": "bob",
        "project": "demo",
        "account": "111111111111",
        "session": "SageMaker",
    }
    assert printed["boundary"].endswith(":policy/mlspace-project-user-permission-boundary")


def test_whoami_text(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "alice@demo")
    assert main(["whoami"]) == 0
    out = capsys.readouterr().out
    assert "MLSpace user       alice" in out
    assert "Project            demo" in out


def test_errors_are_one_line_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whoami", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("s3access: No AWS credentials were found")
    assert "Traceback" not in err


def test_sandbox_env_for_an_unknown_principal(
    sandbox: SandboxState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox.save(tmp_path)
    assert main(["sandbox", "env", "--as", "carol", "--state-dir", str(tmp_path)]) == 1
    assert "choose one of: admin, owner, alice@demo, bob@demo" in capsys.readouterr().err


def test_sandbox_env_without_a_sandbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "env", "--as", "alice@demo", "--state-dir", str(tmp_path / "none")]) == 1
    assert "No sandbox is running" in capsys.readouterr().err


def test_serve_then_env_then_whoami_in_another_shell(tmp_path: Path) -> None:
    """The issue's acceptance run, as a person would type it, ending with Ctrl-C's cousin SIGTERM."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen(
        [S3ACCESS, "sandbox", "serve", "--port", "0", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("Sandbox listening on http://127.0.0.1:"), banner + (
            server.stderr.read() if server.stderr else ""
        )
        exports = f"{S3ACCESS} sandbox env --as alice@demo --state-dir {tmp_path}"
        script = f'eval "$({exports})"; {S3ACCESS} whoami --json'
        shell = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=environment, timeout=60
        )
        assert shell.returncode == 0, shell.stderr
        printed = json.loads(shell.stdout)
        assert (printed["user"], printed["project"], printed["account"]) == ("alice", "demo", "111111111111")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
    assert not (tmp_path / "sandbox.json").exists()


def test_sandbox_run_passes_the_principal_and_the_exit_code(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [
            S3ACCESS,
            "sandbox",
            "run",
            "--as",
            "owner",
            "--state-dir",
            str(tmp_path),
            "--",
            "bash",
            "-c",
            f"{S3ACCESS} whoami --json && exit 7",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert run.returncode == 7, run.stderr
    assert json.loads(run.stdout[run.stdout.index("{") :])["arn"] == "arn:aws:iam::222222222222:user/owner"
    assert not (tmp_path / "sandbox.json").exists()


def test_sandbox_run_without_a_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "run", "--as", "alice@demo", "--state-dir", str(tmp_path), "--"]) == 1
    assert "Give the command to run" in capsys.readouterr().err
