"""`s3access sandbox run` as `make demo` uses it: one Ctrl-C stops everything, each start is fresh, and a
running demo's folder is never taken over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlspace_s3magic.access_requests.actions import new_request
from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.sandbox.admin_endpoint import serve_admin_endpoint
from mlspace_s3magic.sandbox.state import SandboxState

from ..admin.conftest import free_port

S3ACCESS = str(Path(sys.executable).with_name("s3access"))
STOP_SECONDS = 10  # from the Ctrl-C to every process gone and every port free

# A server that behaves as Jupyter does: asks on SIGINT and runs on, stops cleanly on SIGTERM.
ASKS_ON_SIGINT = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    signal.signal(signal.SIGINT, lambda signum, frame: print("Shut down this server (y/[n])?", flush=True))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print("ready", os.getpid(), flush=True)
    while True:
        time.sleep(0.1)
    """
)
# One that ignores both, until killed.
STUBBORN = ASKS_ON_SIGINT.replace("lambda signum, frame: sys.exit(0)", "signal.SIG_IGN")


def _environment(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment["XDG_STATE_HOME"] = str(tmp_path / "xdg-state")
    return environment


def _demo(state_dir: Path) -> list[str]:
    return [
        S3ACCESS,
        "sandbox",
        "run",
        "--as",
        "alice@demo",
        "--admin-endpoint",
        "--state-dir",
        str(state_dir),
    ]


def _port_is_free(port: int) -> bool:
    """Nothing listens there (SO_REUSEADDR: closed connections lingering in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _start(child: str, tmp_path: Path) -> tuple[subprocess.Popen[str], int, list[int]]:
    """`sandbox run` with the admin endpoint and ``child``, in a process group of its own as a terminal's
    foreground job is; returns it once the child is up, the child's pid and the three ports in use."""
    ports = [free_port(), free_port(), free_port()]  # the sandbox, the admin endpoint, the child
    sandbox, admin, served = ports
    command = [
        S3ACCESS, "sandbox", "run", "--as", "alice@demo", "--port", str(sandbox), "--admin-endpoint",
        "--admin-port", str(admin), "--state-dir", str(tmp_path / "state"), "--",
        sys.executable, "-c", child, str(served),
    ]  # fmt: skip
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(tmp_path),
        start_new_session=True,
    )
    assert run.stdout is not None
    for line in run.stdout:
        if line.startswith("ready "):
            return run, int(line.split()[1]), ports
    run.wait(timeout=30)
    pytest.fail(f"the child never started: {run.stderr.read() if run.stderr else ''}")


def _ctrl_c(run: subprocess.Popen[str]) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(run.pid, signal.SIGINT)


def _stop_everything(run: subprocess.Popen[str], child: int) -> None:
    """After a failed step: leave no process behind."""
    if _is_running(child):
        os.kill(child, signal.SIGKILL)
    if run.poll() is None:
        run.kill()
        run.wait(timeout=30)


def test_one_ctrl_c_stops_a_child_that_asks_first_then_the_endpoint_and_the_sandbox(tmp_path: Path) -> None:
    run, child, ports = _start(ASKS_ON_SIGINT, tmp_path)
    try:
        _ctrl_c(run)
        stopped_at = time.monotonic()
        status = run.wait(timeout=STOP_SECONDS)
        elapsed = time.monotonic() - stopped_at
        assert run.stdout is not None and run.stderr is not None
        printed, errors = run.stdout.read(), run.stderr.read()
    finally:
        _stop_everything(run, child)
    assert "Shut down this server (y/[n])?" in printed  # the child did get the Ctrl-C, and only asked
    assert "Stopping " in errors and "Ctrl-C again kills it" in errors
    assert status == 0, errors
    assert elapsed < STOP_SECONDS
    assert not _is_running(child)
    assert [port for port in ports if not _port_is_free(port)] == []
    assert not (tmp_path / "state" / "sandbox.json").exists()


def test_a_second_ctrl_c_kills_a_child_that_ignores_the_first(tmp_path: Path) -> None:
    run, child, ports = _start(STUBBORN, tmp_path)
    try:
        _ctrl_c(run)
        time.sleep(1)
        assert run.poll() is None and _is_running(child)  # SIGTERM ignored: still waiting for it
        _ctrl_c(run)
        status = run.wait(timeout=STOP_SECONDS)
    finally:
        _stop_everything(run, child)
    assert status == 128 + signal.SIGKILL
    assert not _is_running(child)
    assert [port for port in ports if not _port_is_free(port)] == []


def test_each_start_empties_the_admin_store_and_says_so(sandbox: SandboxState, tmp_path: Path) -> None:
    """An earlier run's requests name grants the newly seeded sandbox does not have; the token is kept."""
    state_dir = tmp_path / "state"
    sandbox.save(state_dir)
    asked = new_request(parse_bucket_reference("BucketToBeShared/datasets/"), "read", "iris study", 30)
    with serve_admin_endpoint(state_dir) as earlier:
        alice = AdminClient(earlier.url, aws=sandbox.aws_for("alice@demo"))
        assert alice.submit(asked) is not None
        alice.close()
    (state_dir / "sandbox.json").unlink()  # that run's sandbox stopped, as `sandbox run` leaves it
    token = (state_dir / "admin.token").read_text()
    listing = [S3ACCESS, "admin", "requests", "--json", "--token-file", str(state_dir / "admin.token")]
    run = subprocess.run(
        [*_demo(state_dir), "--", *listing],
        capture_output=True,
        text=True,
        env=_environment(tmp_path),
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1] == (
        "Started fresh: a newly seeded sandbox and an empty admin store (an earlier run's requests went "
        "with its grants)."
    )
    assert lines[-1] == "[]"  # the child, as the admin, sees no request
    assert (state_dir / "admin.token").read_text() == token


def test_a_running_sandbox_s_folder_is_refused_and_its_store_kept(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    sandbox.save(state_dir)  # the session's sandbox, which runs, published there
    (state_dir / "admin.db").write_text("a running endpoint's store")
    run = subprocess.run(
        [*_demo(state_dir), "--", "true"],
        capture_output=True,
        text=True,
        env=_environment(tmp_path),
        timeout=120,
    )
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"s3access: A sandbox is already running for {state_dir} on {sandbox.endpoint_url}: stop it, or give "
        f"another --state-dir (if none runs, remove {state_dir / 'sandbox.json'})."
    )
    assert (state_dir / "admin.db").read_text() == "a running endpoint's store"
    assert SandboxState.load(state_dir).endpoint_url == sandbox.endpoint_url
