"""`make demo`'s JupyterLab: settings of the demo's own that turn off Jupyter's news prompt, and no
"Shut down?" question on Ctrl-C. The recipe runs with a stand-in launcher that records its command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..admin.conftest import free_port

PROJECT = Path(__file__).resolve().parents[2]
NOTIFICATION_PLUGIN = "@jupyterlab/apputils-extension:notification"
STARTUP_SECONDS = 60

# Records its arguments, as `s3access sandbox run ... -- jupyter lab ...` would receive them.
RECORDER = """#!{python}
import json, sys
with open({record!r}, "w") as out:
    json.dump(sys.argv[1:], out)
"""


@pytest.fixture
def demo_command(tmp_path: Path) -> list[str]:
    """The command `make demo` runs, with its state folder in ``tmp_path``; the install is left alone."""
    bin_dir, record = tmp_path / "bin", tmp_path / "command.json"
    bin_dir.mkdir()
    launcher = bin_dir / "s3access"
    launcher.write_text(RECORDER.format(python=sys.executable, record=str(record)))
    launcher.chmod(0o755)
    outer_make = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")  # a `make unit` around the tests is not this make's
    arguments = [
        "make", "--no-print-directory", "-s", "-C", str(PROJECT),
        "-o", ".venv/.installed", "-o", "mlspace_s3magic/labextension/static/style.js",  # no install
        "demo", f"BIN={bin_dir}", f"STATE_DIR={tmp_path / 'state'}", "NOTEBOOK_PORT=0",
    ]  # fmt: skip
    made = subprocess.run(
        arguments,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in outer_make},
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert 'make admin ARGS="show ID"' in made.stdout  # how to act as the admin, said before the launch
    command: list[str] = json.loads(record.read_text())
    return command


def _lab_option(command: list[str], name: str) -> str:
    values = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    assert len(values) == 1, command
    return values[0]


def test_the_demo_s_jupyterlab_skips_the_shutdown_question(demo_command: list[str]) -> None:
    assert demo_command[demo_command.index("--") + 2] == "lab"
    assert _lab_option(demo_command, "ServerApp.answer_yes") == "True"


def test_the_demo_s_own_lab_settings_turn_the_news_prompt_off(
    demo_command: list[str], tmp_path: Path
) -> None:
    """JupyterLab 4 asks "get notified about official Jupyter news?" while ``fetchNews`` is "none" (its
    default), whatever ``news_url`` says; the demo's settings folder makes "false" the default, without
    touching the user's own settings."""
    settings_dir = Path(_lab_option(demo_command, "LabApp.app_settings_dir"))
    assert settings_dir == tmp_path / "state" / "lab-settings"
    port, token = free_port(), "demo-settings-test"
    command = [
        str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser", "--allow-root",
        "--ip", "127.0.0.1", "--port", str(port), f"--ServerApp.root_dir={tmp_path}",
        f"--IdentityProvider.token={token}", f"--LabApp.app_settings_dir={settings_dir}",
    ]  # fmt: skip
    lab = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),  # no user settings of this machine
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        },
    )
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/{NOTIFICATION_PLUGIN}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert lab.poll() is None, "JupyterLab exited while starting"
            try:
                response = httpx.get(url, headers={"Authorization": f"token {token}"}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, f"JupyterLab did not answer within {STARTUP_SECONDS} s"
                time.sleep(0.3)
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    assert response.status_code == 200, response.text
    plugin = response.json()
    assert plugin["settings"] == {}  # nothing the user chose...
    assert plugin["schema"]["properties"]["fetchNews"]["default"] == "false"  # ...so "Never": no prompt
