"""The demo's admin endpoint beside the sandbox: loopback only, the registry set, requests kept on disk."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from mlspace_s3magic.access_requests.actions import new_request
from mlspace_s3magic.access_requests.client import ADMIN_URL_ENV, AdminClient
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.admin_endpoint import (
    ACTION_ARGUMENTS,
    ADMIN_ACTIONS,
    AdminEndpoint,
    serve_admin_endpoint,
)
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import KMS_BUCKET, OWNER_ROLE_ARN, READABLE_BUCKET, SHARED_BUCKET

from ..admin.conftest import free_port

S3ACCESS = str(Path(sys.executable).with_name("s3access"))
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_dir(sandbox: SandboxState, tmp_path: Path) -> Path:
    """The session's sandbox published in a fresh state folder, as `sandbox serve` publishes its own."""
    folder = tmp_path / "state"
    sandbox.save(folder)
    return folder


def _token_client(endpoint: AdminEndpoint) -> AdminClient:
    return AdminClient(endpoint.url, token=endpoint.token_file.read_text().strip())


def _non_loopback_address() -> str | None:
    """This host's address on its default route (a UDP connect sends nothing), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def _environment(tmp_path: Path) -> dict[str, str]:
    """A child's environment without the machine's AWS settings, with its outbox under ``tmp_path``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    return environment


def test_it_listens_on_loopback_only(state_dir: Path) -> None:
    port = free_port()
    with serve_admin_endpoint(state_dir, port=port) as endpoint:
        assert endpoint.url == f"http://127.0.0.1:{port}"
        assert httpx.get(f"{endpoint.url}/v1/buckets").status_code == 401  # it answers, and asks who
        other = _non_loopback_address()
        if other is None:
            pytest.skip("this host has no address but loopback to try")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((other, port), timeout=5).close()


def test_it_registers_the_shared_buckets_with_the_owner_role(state_dir: Path) -> None:
    with serve_admin_endpoint(state_dir) as endpoint:
        token = endpoint.token_file.read_text().strip()
        response = httpx.get(f"{endpoint.url}/v1/buckets", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    buckets = {entry["bucket"]: entry for entry in response.json()}
    assert set(buckets) == {SHARED_BUCKET, READABLE_BUCKET, KMS_BUCKET}
    assert buckets[SHARED_BUCKET]["owner_role_arn"] == OWNER_ROLE_ARN
    assert buckets[SHARED_BUCKET]["owner_account"] == "222222222222"


def test_the_token_stays_in_its_private_file_and_the_url_is_published_while_it_runs(state_dir: Path) -> None:
    with serve_admin_endpoint(state_dir) as endpoint:
        token = endpoint.token_file.read_text().strip()
        assert endpoint.token_file == state_dir.resolve() / "admin.token"
        assert stat.S_IMODE(endpoint.token_file.stat().st_mode) == 0o600
        running = SandboxState.load(state_dir)
        assert running.admin_url == endpoint.url
        assert f"export {ADMIN_URL_ENV}={endpoint.url}" in running.shell_exports("alice@demo").splitlines()
        assert token not in (state_dir / "sandbox.json").read_text()
        assert token not in endpoint.admin_instructions()
        assert str(endpoint.token_file) in endpoint.admin_instructions()
    stopped = SandboxState.load(state_dir)
    assert stopped.admin_url is None
    # With no endpoint running, a URL the user set themselves is left alone rather than unset.
    assert ADMIN_URL_ENV not in stopped.shell_exports("alice@demo")


def test_a_request_survives_a_restart_on_the_same_state_dir(sandbox: SandboxState, state_dir: Path) -> None:
    asked = new_request(parse_bucket_reference("BucketToBeShared/datasets/"), "read", "iris study", 30)
    with serve_admin_endpoint(state_dir) as first:
        alice = AdminClient(first.url, aws=sandbox.aws_for("alice@demo"))
        filed = alice.submit(asked)
        alice.close()
    assert filed is not None
    with serve_admin_endpoint(state_dir) as second:
        alice = AdminClient(second.url, aws=sandbox.aws_for("alice@demo"))
        kept = [(r.id, r.status.value, r.reason) for r in alice.requests()]
        alice.close()
        admin = _token_client(second)  # the same token file still works
        buckets = sorted(b.bucket for b in admin.buckets())
        admin.close()
    assert kept == [(filed.id, "pending", "iris study")]
    assert buckets == sorted(
        [SHARED_BUCKET, READABLE_BUCKET, KMS_BUCKET]
    )  # registering again changed nothing


def test_a_taken_port_is_said_clearly(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(
                S3MagicError, match=rf"Port {port} on 127\.0\.0\.1 is already in use.*--admin-port"
            ),
            serve_admin_endpoint(state_dir, port=port),
        ):
            pass
    assert SandboxState.load(state_dir).admin_url is None


def test_an_impossible_port_is_said_clearly(state_dir: Path) -> None:
    with (
        pytest.raises(S3MagicError, match=r"--admin-port must be between 0 .* and 65535, not 70000"),
        serve_admin_endpoint(state_dir, port=70000),
    ):
        pass


def test_admin_port_without_admin_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sandbox", "run", "--as", "alice@demo", "--admin-port", "8765", "--state-dir", str(tmp_path)]
    assert main([*argv, "--", "true"]) == 2
    assert "--admin-port is the admin endpoint's port: give --admin-endpoint too." in capsys.readouterr().err


CHILD = textwrap.dedent(
    """
    import json, os, subprocess, sys
    seen = [os.environ[name] for name in ("S3ACCESS_ADMIN_URL", "S3ACCESS_SANDBOX_STATE_DIR")]
    print("child sees", *seen, flush=True)
    filed = subprocess.run(
        [sys.argv[1], "request", "BucketToBeShared/datasets/", "--reason", "iris study", "--json"],
        capture_output=True, text=True,
    )
    receipt = json.loads(filed.stdout) if filed.returncode == 0 else {"id": filed.stderr, "status": "-"}
    print("child filed", receipt["id"], receipt["status"], flush=True)
    sys.stdin.read()  # until the test has acted as the admin
    """
)


def test_sandbox_run_with_the_admin_endpoint_and_the_printed_admin_line(tmp_path: Path) -> None:
    """The demo's whole loop in processes: the child files a request, the printed line reviews it."""
    state_dir = tmp_path / "state"
    environment = _environment(tmp_path)
    demo = ["sandbox", "run", "--as", "alice@demo", "--admin-endpoint", "--state-dir", str(state_dir)]
    run = subprocess.Popen(
        [S3ACCESS, *demo, "--", sys.executable, "-c", CHILD, S3ACCESS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert run.stdout is not None and run.stdin is not None
        banner = run.stdout.readline()
        assert ", admin endpoint on http://127.0.0.1:" in banner, banner + (
            run.stderr.read() if run.stderr else ""
        )
        url = banner.split(", admin endpoint on ")[1].split(";")[0]
        assert run.stdout.readline().startswith(
            "Started fresh: a newly seeded sandbox and an empty admin store"
        )
        instructions = run.stdout.readline().strip()
        assert instructions.startswith("To act as the admin: eval ")
        where = f"--url {url} --token-file {state_dir.resolve() / 'admin.token'}"
        assert where in instructions
        assert run.stdout.readline().strip() == "Then, in any shell, with a request's ID in place of ID:"
        pasted = {}  # action: the printed line, each by the full path of this installation's s3access
        for action in ADMIN_ACTIONS:
            line = run.stdout.readline().strip()
            extra = ACTION_ARGUMENTS.get(action, "")
            assert line == f"{Path(S3ACCESS).resolve()} admin {action} ID {extra}{where}"
            pasted[action] = line
        assert run.stdout.readline().split() == ["child", "sees", url, str(state_dir.resolve())]
        _, _, request_id, status = run.stdout.readline().split()
        assert status == "pending", request_id

        new_shell = {**environment, "PATH": os.defpath}

        def as_admin(script: str) -> str:
            """Run in a new shell, whose PATH has no virtualenv's bin folder (as a terminal's would not)."""
            shell = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, env=new_shell, timeout=60
            )
            assert shell.returncode == 0, shell.stderr
            return shell.stdout

        def paste(action: str) -> str:
            return as_admin(pasted[action].replace(" ID ", f" {request_id} "))

        printed = as_admin(instructions.removeprefix("To act as the admin: "))
        header, first = printed.splitlines()[:2]
        assert header.split()[:2] == ["ID", "STATUS"]
        assert first.split()[:2] == [request_id, "pending"]
        assert "== bucket-policy: BucketToBeShared (account 222222222222, applied by endpoint)" in paste(
            "show"
        )
        # `make admin` finds the endpoint and the token through the state folder, as the README says.
        plan = _make_admin(f"show {request_id}", state_dir, new_shell)
        assert plan.returncode == 0, plan.stderr
        assert "== bucket-policy: BucketToBeShared (account 222222222222, applied by endpoint)" in plan.stdout
        # deny's printed line runs as pasted once WHY and ID are replaced: here on a request that does not
        # exist, refused by the endpoint (not by the command line's parser).
        denied = subprocess.run(
            ["bash", "-c", pasted["deny"].replace(" ID ", " no-such-request ").replace("WHY", "not needed")],
            capture_output=True,
            text=True,
            env=new_shell,
            timeout=60,
        )
        assert denied.returncode != 0 and "no-such-request" in denied.stderr, denied.stderr
        assert "usage:" not in denied.stderr
        approved, applied = paste("approve").splitlines(), paste("apply").splitlines()
        assert approved[0].split()[:2] == [request_id, "approved"]
        assert applied[0].split()[:2] == [request_id, "applied"]
        # apply prints what its verification found, as the requester, over the live layers
        assert applied[1].startswith("verification as ") and applied[1].endswith(": allowed"), applied
        listed = _make_admin("requests --status applied", state_dir, new_shell).stdout.splitlines()
        assert [line.split()[:2] for line in listed] == [["ID", "STATUS"], [request_id, "applied"]]
        assert paste("revoke").splitlines()[0].split()[:2] == [request_id, "revoked"]
        run.stdin.close()  # the child ends, and with it the endpoint and the sandbox
        assert run.wait(timeout=60) == 0, run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:  # a failed step above: stop the child, the endpoint and the sandbox
            run.terminate()
            run.wait(timeout=60)
    assert not (state_dir / "sandbox.json").exists()
    assert (state_dir / "admin.db").exists() and (state_dir / "admin.token").exists()


def _make_admin(
    arguments: str, state_dir: Path, environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``make admin ARGS=...`` in the project's folder, for the demo whose state is in ``state_dir``, with
    this installation's tools."""
    outer_make = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # a `make unit` around the tests is not this make's
    settings = [f"ARGS={arguments}", f"STATE_DIR={state_dir}", f"BIN={Path(S3ACCESS).parent}"]
    return subprocess.run(
        ["make", "--no-print-directory", "-s", "-C", str(PROJECT), "admin", *settings],
        capture_output=True,
        text=True,
        env={k: v for k, v in environment.items() if k not in outer_make},
        timeout=60,
    )


def test_make_admin_without_a_running_demo_says_so(tmp_path: Path) -> None:
    made = _make_admin("requests", tmp_path / "state", _environment(tmp_path))
    assert made.returncode != 0
    assert "make admin acts in the running demo: start `make demo` first." in made.stderr


def test_sandbox_run_says_a_taken_admin_port_without_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = ["sandbox", "run", "--as", "alice@demo", "--admin-endpoint", "--admin-port", str(port)]
        run = subprocess.run(
            [S3ACCESS, *demo, "--state-dir", str(tmp_path / "state"), "--", "true"],
            capture_output=True,
            text=True,
            env=_environment(tmp_path),
            timeout=120,
        )
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"s3access: Port {port} on 127.0.0.1 is already in use, so the admin endpoint cannot listen there: "
        "pick another --admin-port, or leave it out to take any free port."
    )
    assert not (tmp_path / "state" / "sandbox.json").exists()
