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
from mlspace_s3magic.core.registry import save_registry_file
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import REGISTRY

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


def test_requests_without_an_admin_endpoint_say_how_to_name_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("S3ACCESS_ADMIN_URL", raising=False)
    assert main(["requests"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("s3access: No admin endpoint is configured") and "pass --url" in err


def test_list_has_no_refresh_option_to_keep_in_step_with_the_magic(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A terminal run always probes; only the magic, which keeps a session, has --refresh."""
    with pytest.raises(SystemExit) as exited:
        main(["list", "--refresh"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --refresh" in capsys.readouterr().err


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
    assert main(["sandbox", "run", "--as", "alice@demo", "--state-dir", str(tmp_path), "--"]) == 2
    assert "Give the command to run" in capsys.readouterr().err


SESSION = "arn:aws:sts::111111111111:assumed-role/MLSpace-demo-ab12/SageMaker"
IRIS = "arn:aws:s3:::BucketToBeShared/datasets/iris/iris.csv"


def _scenario(**overrides: object) -> dict[str, object]:
    grant = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::BucketToBeShared/*"}
    scenario: dict[str, object] = {
        "principal": SESSION,
        "action": "s3:GetObject",
        "resource": IRIS,
        "resource_account": "222222222222",
        "identity_policies": [{"Version": "2012-10-17", "Statement": [grant]}],
        "resource_policy": {
            "Version": "2012-10-17",
            "Statement": [{**grant, "Sid": "MLSpaceRead", "Principal": {"AWS": "111111111111"}}],
        },
    }
    scenario.update(overrides)
    return scenario


def test_simulate_one_scenario_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(_scenario()))
    assert main(["simulate", str(path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["decision"] == "allowed"
    assert result["blocked_by"] == []
    assert {
        "layer": "resource",
        "policy": "resource_policy",
        "statement": "MLSpaceRead",
        "effect": "Allow",
    } in (result["statements"])


def test_simulate_a_batch_keeps_order_and_reports_bad_entries_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "batch.json"
    no_bucket_policy = _scenario(resource_policy=None)
    path.write_text(json.dumps([_scenario(), {"principal": SESSION}, no_bucket_policy]))
    assert main(["simulate", str(path), "--json"]) == 2
    results = json.loads(capsys.readouterr().out)
    assert [r.get("decision") for r in results] == ["allowed", None, "implicit_deny"]
    assert results[1]["path"] == "[1].action"
    assert "resource" in results[2]["blocked_by"]


def test_simulate_text_explains_the_decision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "NoIris", "Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
    }
    monkeypatch.setattr(
        "sys.stdin", __import__("io").StringIO(json.dumps(_scenario(permissions_boundary=deny)))
    )
    assert main(["simulate", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DENIED (an explicit Deny)")
    assert "Blocked by: boundary" in out
    assert "NoIris" in out


def test_simulate_ignores_unknown_keys_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(_scenario(expected="allowed")))
    assert main(["simulate", str(path), "--json"]) == 0
    assert any("Ignored the keys expected" in note for note in json.loads(capsys.readouterr().out)["notes"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "is not JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        ("[" * 100_000, "is not JSON we can read: maximum recursion depth exceeded"),
        ('{"a": ' + "1" * 5000 + "}", "is not JSON we can read: Exceeds the limit"),
        (
            json.dumps(
                {
                    "principal": SESSION,
                    "action": "s3:GetObject",
                    "resource": IRIS,
                    "identity_policies": [{"Statement": [{"Effect": "Alow"}]}],
                }
            ),
            "identity_policies[0]",
        ),
    ],
)
def test_simulate_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_simulate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "nope.json")]) == 2
    assert "Cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("principal", "target", "need", "status"),
    [
        ("alice@demo", "partner-shared-readonly", "read", 0),
        ("alice@demo", "BucketToBeShared", "read", 3),
        ("alice@demo", "BucketToBeShared", "list", 3),
        ("alice@demo", "s3://mlspace-data-111111111111/private/bob/", "read", 3),
        ("bob@demo", "s3://mlspace-data-111111111111/private/bob/", "list", 0),
    ],
)
def test_check_exit_status_follows_the_needed_access(
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    principal: str,
    target: str,
    need: str,
    status: int,
) -> None:
    _act_as(monkeypatch, sandbox, principal)
    assert main(["check", target, "--need", need]) == status
    assert "S3 access to" in capsys.readouterr().out


def test_check_json_for_the_bucket_to_share(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "alice@demo")
    assert main(["check", "BucketToBeShared", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    for capability in ("list", "read"):
        assert report["capabilities"][capability]["verdict"] == "denied"
        assert "identity" in report["capabilities"][capability]["blocked_by"]
    # The encryption settings are unreadable to alice, so a possible KMS key comes last, as advice.
    assert [fix["layer"] for fix in report["fixes"]] == ["bucket-policy", "boundary", "identity", "kms"]
    assert report["fixes"][-1]["run_as"] == "nobody"


def test_check_bad_bucket_name_is_a_bad_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "s3://bad bucket/x"]) == 2
    assert "is not a valid S3 bucket name" in capsys.readouterr().err


def test_list_json_from_the_registry(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    save_registry_file(tmp_path / "registry.json", REGISTRY)
    _act_as(monkeypatch, sandbox, "alice@demo")
    monkeypatch.setenv("S3ACCESS_REGISTRY", str(tmp_path / "registry.json"))
    assert main(["list", "--json", "--registry", str(tmp_path / "registry.json")]) == 0
    rows = {row["bucket"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["partner-shared-readonly"]["status"] == "read"
    assert rows["BucketToBeShared"]["status"] == "denied"
    assert rows["mlspace-data-111111111111"]["mlspace_data"] is True
    assert rows["mlspace-data-111111111111"]["source"] == "mlspace"


def test_list_text_with_an_extra_bucket(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _act_as(monkeypatch, sandbox, "owner")
    assert (
        main(["list", "--registry", str(tmp_path / "none.json"), "--extra-bucket", "BucketToBeShared"]) == 0
    )
    out = capsys.readouterr().out
    assert "BucketToBeShared" in out and "read" in out and "config" in out


def test_list_with_a_broken_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "registry.json").write_text("[{")
    assert main(["list", "--registry", str(tmp_path / "registry.json")]) == 1
    assert "is not JSON" in capsys.readouterr().err


def test_ls_pages_through_one_level(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "owner")
    assert main(["ls", "BucketToBeShared"]) == 0
    assert [line.strip() for line in capsys.readouterr().out.splitlines()] == ["PRE datasets/", "PRE logs/"]
    assert main(["ls", "s3://BucketToBeShared/logs/2026/11/01/", "--page-size", "4", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["objects"]) == 4 and first["next_token"]
    assert (
        main(
            [
                "ls",
                "BucketToBeShared/logs/2026/11/01/",
                "--page-size",
                "4",
                "--token",
                first["next_token"],
                "--json",
            ]
        )
        == 0
    )
    second = json.loads(capsys.readouterr().out)
    assert not {o["key"] for o in first["objects"]} & {o["key"] for o in second["objects"]}


def test_ls_denied_and_bad_page_size(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _act_as(monkeypatch, sandbox, "alice@demo")
    assert main(["ls", "BucketToBeShared"]) == 3
    assert "check BucketToBeShared" in capsys.readouterr().err
    assert main(["ls", "BucketToBeShared", "--page-size", "0"]) == 2


def test_an_error_naming_hostile_input_prints_inert(capsys: pytest.CaptureFixture[str]) -> None:
    """Escape sequences in an argument reach the terminal as text, never as commands to it."""
    assert main(["check", "s3://bad\x1b[2Jbucket/x"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "is not a valid S3 bucket name" in err
