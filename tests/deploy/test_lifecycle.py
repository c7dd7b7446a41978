"""deploy/notebook-lifecycle/on-start.sh, run in a fake SageMaker notebook layout.

The layout is a temporary anaconda3/envs/ with the Jupyter server's environment (JupyterSystemEnv) and kernel
environments. Their ``bin/python`` is a stub that records ``-m pip`` calls and acts out what installing the
wheel does (a dist-info folder, the shared-data lab extension and server-config file), answers ``--version``
with the environment's Python version, and runs everything else (the script's JSON edits) with the real
Python, without site-packages: those edits must need nothing beyond the standard library.
``jupyter lab --version`` answers from a file, so a test can say 4.x or 3.x; ``aws`` copies from a folder that
stands for S3; ``systemctl`` records its arguments. Nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "notebook-lifecycle" / "on-start.sh"
CONFIG_EXAMPLE = ROOT / "deploy" / "notebook-lifecycle" / "s3access.conf.example"
SHELLCHECK = Path(sys.executable).with_name("shellcheck")

BUCKET = "mlspace-data-111111111111"
PREFIX = f"s3://{BUCKET}/global-read-only/s3access"
WHEEL = "mlspace_s3magic-0.1.0-py3-none-any.whl"
EXAMPLE_URL = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/v1"
TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ s3access-lifecycle: ")

FAKE_PYTHON = r"""#!/bin/bash
env_dir="$(cd "$(dirname "$0")/.." && pwd)"
version="$(cat "$env_dir/python-version")"
printf '%s %s\n' "${VIA_SUDO:-direct}" "$1" >>"$env_dir/python-calls.log"
if [[ "$1" == --version ]]; then
    echo "Python $version"
    exit 0
fi
if [[ "$1" == -m && "$2" == pip ]]; then
    shift 2
    printf '%s\n' "$*" >>"$env_dir/pip-calls.log"
    [[ -f "$env_dir/pip-fails" ]] && { echo "ERROR: no network" >&2; exit 1; }
    for arg in "$@"; do
        if [[ "$arg" == *.whl ]]; then
            [[ -f "$arg" ]] || { echo "ERROR: no such wheel $arg" >&2; exit 1; }
            base="$(basename "$arg")"
            wheel_version="${base#mlspace_s3magic-}"
            wheel_version="${wheel_version%%-*}"
            site="$env_dir/lib/python${version%.*}/site-packages"
            rm -rf "$site"/mlspace_s3magic-*.dist-info
            mkdir -p "$site/mlspace_s3magic-$wheel_version.dist-info"
            sha256sum "$arg" | cut -d' ' -f1 >"$site/mlspace_s3magic-$wheel_version.dist-info/FROM_WHEEL"
            lab="$env_dir/share/jupyter/labextensions/mlspace-s3magic"
            mkdir -p "$lab" "$env_dir/etc/jupyter/jupyter_server_config.d"
            echo '{"name": "mlspace-s3magic"}' >"$lab/package.json"
            echo '{"ServerApp": {"jpserver_extensions": {"mlspace_s3magic": true}}}' \
                >"$env_dir/etc/jupyter/jupyter_server_config.d/mlspace_s3magic.json"
        fi
    done
    exit 0
fi
exec REAL_PYTHON -S "$@"  # the script's own Python snippets need the standard library only
"""

FAKE_JUPYTER = r"""#!/bin/bash
env_dir="$(cd "$(dirname "$0")/.." && pwd)"
printf '%s %s\n' "${VIA_SUDO:-direct}" "$*" >>"$env_dir/jupyter-calls.log"
case "$1 $2" in
    "lab --version") cat "$env_dir/lab-version" ;;
    "server --version") cat "$env_dir/server-version" 2>/dev/null || echo 2.14.2 ;;
    *) echo "unexpected: jupyter $*" >&2; exit 2 ;;
esac
"""

FAKE_AWS = r"""#!/bin/bash
printf '%s\n' "$*" >>"$FAKE_CALLS/aws.log"
args=()
for arg in "$@"; do [[ "$arg" == --only-show-errors ]] || args+=("$arg"); done
local_path() { printf '%s/%s\n' "$FAKE_S3" "${1#s3://}"; }
case "${args[0]} ${args[1]}" in
    "s3 cp")
        source="$(local_path "${args[2]}")"
        if [[ ! -f "$source" ]]; then
            echo "fatal error: An error occurred (404) when calling the HeadObject operation" >&2
            exit 1
        fi
        cp "$source" "${args[3]}" ;;
    "s3 sync")
        mkdir -p "${args[3]}"; cp -r "$(local_path "${args[2]}")/." "${args[3]}" ;;
    "sts get-caller-identity") echo 111111111111 ;;
    *) echo "unexpected: aws $*" >&2; exit 2 ;;
esac
"""

FAKE_SYSTEMCTL = r"""#!/bin/bash
printf '%s\n' "$*" >>"$FAKE_CALLS/systemctl.log"
"""

# sudo -u USER -H -- COMMAND...: records the user, runs the command marked as run through sudo.
FAKE_SUDO = r"""#!/bin/bash
[[ "$1" == -u && "$3" == -H && "$4" == -- ]] || { echo "unexpected: sudo $*" >&2; exit 2; }
printf '%s\n' "$2" >>"$FAKE_CALLS/sudo.log"
shift 4
VIA_SUDO=sudo exec "$@"
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@dataclass
class Notebook:
    """A fake notebook instance: conda environments, S3, stubs, and how to run the script in it."""

    root: Path

    @property
    def envs(self) -> Path:
        return self.root / "anaconda3" / "envs"

    @property
    def server(self) -> Path:
        return self.envs / "JupyterSystemEnv"

    @property
    def log(self) -> Path:
        return self.root / "var" / "log" / "s3access-lifecycle.log"

    @property
    def stage(self) -> Path:
        return self.root / "stage"

    @property
    def s3(self) -> Path:
        return self.root / "s3" / BUCKET / "global-read-only" / "s3access"

    @property
    def calls(self) -> Path:
        return self.root / "calls"

    def add_env(self, name: str, python: str | None, *, kernel: bool = True) -> Path:
        env = self.envs / name
        (env / "bin").mkdir(parents=True)
        if python is not None:
            (env / "python-version").write_text(python + "\n")
            _executable(env / "bin" / "python", FAKE_PYTHON.replace("REAL_PYTHON", sys.executable))
            if kernel:
                site = env / "lib" / f"python{python.rsplit('.', 1)[0]}" / "site-packages"
                (site / "ipykernel").mkdir(parents=True)
                (site / "ipykernel" / "__init__.py").touch()
        return env

    def set_lab_version(self, version: str) -> None:
        (self.server / "lab-version").write_text(version + "\n")

    def stage_wheel(self, content: bytes = b"wheel 0.1.0", name: str = WHEEL) -> str:
        (self.s3 / name).write_bytes(content)
        return hashlib.sha256(content).hexdigest()

    def stage_config(self, text: str) -> None:
        (self.s3 / "s3access.conf").write_text(text)

    def environment(self, **overrides: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.root / 'stubs'}:{os.environ['PATH']}",
            "HOME": str(self.root / "home"),
            "S3ACCESS_S3_PREFIX": PREFIX,
            "S3ACCESS_CONDA_ENVS": str(self.envs),
            "S3ACCESS_LOG": str(self.log),
            "S3ACCESS_STAGE_DIR": str(self.stage),
            "S3ACCESS_PROFILE_D": str(self.root / "etc" / "profile.d"),
            "S3ACCESS_RUN_AS": "",
            "S3ACCESS_KERNELS": "foreground",
            "FAKE_S3": str(self.root / "s3"),
            "FAKE_CALLS": str(self.calls),
            # A credential in the environment must never reach the log or stdout.
            "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        }
        env.update(overrides)
        return env

    def run(self, **overrides: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", str(SCRIPT)],
            env=self.environment(**overrides),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "wJalrXUtnFEMI" not in result.stdout + result.stderr
        if self.log.exists():
            assert "wJalrXUtnFEMI" not in self.log.read_text()
        return result

    def pip_calls(self, env: Path) -> list[str]:
        log = env / "pip-calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def restarts(self) -> list[str]:
        log = self.calls / "systemctl.log"
        return log.read_text().splitlines() if log.exists() else []

    def installed_from(self, env: Path) -> str:
        [marker] = env.glob("lib/python3*/site-packages/mlspace_s3magic-*.dist-info/FROM_WHEEL")
        return marker.read_text().strip()

    def snapshot(self) -> dict[str, str]:
        """Every file the script may write, with content and modification time (staged downloads aside)."""
        files = {}
        for path in sorted(self.root.rglob("*")):
            scratch = (
                path.is_relative_to(self.calls)
                or path.is_relative_to(self.stage)
                or path == self.log
                or path.name.endswith("-calls.log")  # the stubs' records
            )
            if path.is_file() and not scratch:
                files[str(path)] = f"{path.stat().st_mtime_ns} {path.read_bytes()!r}"
        return files


@pytest.fixture
def notebook(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.add_env("JupyterSystemEnv", "3.11.9")
    _executable(nb.server / "bin" / "jupyter", FAKE_JUPYTER)
    nb.set_lab_version("4.2.5")
    nb.add_env("python3", "3.12.4")
    nb.add_env("pytorch_p311", "3.11.10")
    nb.add_env("legacy_p310", "3.10.14")
    nb.add_env("tools", "3.12.1", kernel=False)
    nb.add_env("R", None)
    nb.s3.mkdir(parents=True)
    nb.stage_wheel()
    nb.stage_config(CONFIG_EXAMPLE.read_text())
    _executable(tmp_path / "stubs" / "aws", FAKE_AWS)
    _executable(tmp_path / "stubs" / "systemctl", FAKE_SYSTEMCTL)
    nb.calls.mkdir()
    return nb


def _json(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())


def _requirements_from_pyproject() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [dep for dep in project["dependencies"] if not dep.startswith("jupyter_server")]


def test_shellcheck_is_clean() -> None:
    result = subprocess.run(
        [str(SHELLCHECK), "--severity=style", str(SCRIPT)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


def test_the_magics_requirements_are_the_packages_dependencies_without_jupyter_server() -> None:
    text = SCRIPT.read_text()
    listed = re.search(r"^MAGIC_REQUIREMENTS=\((.*?)\)$", text, re.M | re.S)
    assert listed is not None
    assert re.findall(r'"([^"]+)"', listed.group(1)) == _requirements_from_pyproject()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f'MIN_PYTHON="{project["requires-python"].removeprefix(">=")}"' in text


def test_jupyterlab_4_installs_everything_and_a_second_run_changes_nothing(notebook: Notebook) -> None:
    first = notebook.run()
    assert first.returncode == 0, first.stdout + first.stderr
    staged = notebook.stage / WHEEL

    # The server: the wheel without dependencies (Jupyter itself untouched), then what the magics import.
    server_calls = notebook.pip_calls(notebook.server)
    assert len(server_calls) == 2
    assert "--no-deps --force-reinstall" in server_calls[0] and server_calls[0].endswith(str(staged))
    assert server_calls[1].endswith(" ".join(_requirements_from_pyproject()))
    assert notebook.installed_from(notebook.server) == hashlib.sha256(b"wheel 0.1.0").hexdigest()
    assert (notebook.server / "share/jupyter/labextensions/mlspace-s3magic/package.json").exists()
    assert _json(notebook.server / "etc/jupyter/jupyter_server_config.json") == {
        "S3Access": {"admin_url": EXAMPLE_URL}
    }
    profile = (notebook.root / "etc/profile.d/s3access.sh").read_text()
    assert f"export S3ACCESS_ADMIN_URL='{EXAMPLE_URL}'" in profile
    assert notebook.restarts() == ["restart jupyter-server"]

    # The kernels: every environment with a new enough Python, the same two installs and the IPython setting.
    for name in ("python3", "pytorch_p311"):
        env = notebook.envs / name
        calls = notebook.pip_calls(env)
        assert len(calls) == 2 and calls[0].endswith(str(staged)) and "--no-deps" in calls[0]
        assert _json(env / "etc/ipython/ipython_config.json") == {"S3Access": {"admin_url": EXAMPLE_URL}}
    assert notebook.pip_calls(notebook.envs / "legacy_p310") == []
    assert notebook.pip_calls(notebook.envs / "tools") == []
    assert not (notebook.envs / "legacy_p310" / "etc").exists()
    every_call = [call for env in notebook.envs.iterdir() for call in notebook.pip_calls(env)]
    assert not any("jupyter_server" in call for call in every_call)

    log = notebook.log.read_text()
    lines = [line for line in log.splitlines() if not line.startswith("    ")]
    assert lines and all(TIMESTAMPED.match(line) for line in lines)
    assert "kernel legacy_p310: skipped: Python 3.10 is older than 3.11" in log
    assert "kernel R: skipped: no Python in this environment" in log
    assert "kernel tools: skipped: no ipykernel" in log
    assert "lab extension skipped" not in log and "warning" not in log
    assert "restarting the Jupyter server" in first.stdout and "kernels: done" in first.stdout

    before = notebook.snapshot()
    second = notebook.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(notebook.pip_calls(notebook.server)) == 2
    assert all(len(notebook.pip_calls(notebook.envs / name)) == 2 for name in ("python3", "pytorch_p311"))
    assert notebook.restarts() == ["restart jupyter-server"]
    assert notebook.snapshot() == before
    assert "server: mlspace_s3magic 0.1.0 already installed from this wheel; nothing to install" in (
        second.stdout
    )
    assert "nothing changed for the Jupyter server; not restarting it" in second.stdout


def test_jupyterlab_3_installs_the_server_extension_and_magics_without_the_lab_extension(
    notebook: Notebook,
) -> None:
    notebook.set_lab_version("3.6.8")
    (notebook.server / "server-version").write_text("1.24.0\n")
    result = notebook.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "server: warning: Jupyter Server 1.24.0: the server extension is made for 2.4" in result.stdout

    assert len(notebook.pip_calls(notebook.server)) == 2
    assert not (notebook.server / "share/jupyter/labextensions/mlspace-s3magic").exists()
    assert _json(notebook.server / "etc/jupyter/jupyter_server_config.d/mlspace_s3magic.json") == {
        "ServerApp": {"jpserver_extensions": {"mlspace_s3magic": True}}
    }
    assert _json(notebook.server / "etc/jupyter/jupyter_server_config.json")["S3Access"] == {
        "admin_url": EXAMPLE_URL
    }
    assert len(notebook.pip_calls(notebook.envs / "python3")) == 2
    assert notebook.restarts() == ["restart jupyter-server"]
    skipped = [line for line in result.stdout.splitlines() if "lab extension skipped" in line]
    assert len(skipped) == 1 and "JupyterLab 3.6.8" in skipped[0] and "notebook-al2-v3" in skipped[0]

    before = notebook.snapshot()
    again = notebook.run()
    assert again.returncode == 0
    assert len(notebook.pip_calls(notebook.server)) == 2
    assert notebook.restarts() == ["restart jupyter-server"]
    assert notebook.snapshot() == before


def test_a_server_that_turns_from_jupyterlab_4_to_3_loses_the_lab_extension(notebook: Notebook) -> None:
    assert notebook.run().returncode == 0
    assert (notebook.server / "share/jupyter/labextensions/mlspace-s3magic").exists()
    notebook.set_lab_version("3.6.8")
    result = notebook.run()
    assert result.returncode == 0
    assert len(notebook.pip_calls(notebook.server)) == 4
    assert not (notebook.server / "share/jupyter/labextensions/mlspace-s3magic").exists()
    assert len(notebook.pip_calls(notebook.envs / "python3")) == 2  # the kernels' stamp did not change
    assert notebook.restarts() == ["restart jupyter-server"] * 2


def test_a_new_wheel_is_installed_everywhere_and_restarts_the_server(notebook: Notebook) -> None:
    assert notebook.run().returncode == 0
    (notebook.s3 / WHEEL).unlink()
    new = "mlspace_s3magic-0.2.0-py3-none-any.whl"
    sha = notebook.stage_wheel(b"wheel 0.2.0", name=new)
    notebook.stage_config(f"wheel={new}\nadmin_url={EXAMPLE_URL}\n")
    result = notebook.run()
    assert result.returncode == 0, result.stdout
    for env in (notebook.server, notebook.envs / "python3", notebook.envs / "pytorch_p311"):
        assert len(notebook.pip_calls(env)) == 4
        assert notebook.installed_from(env) == sha
    assert notebook.restarts() == ["restart jupyter-server"] * 2


def test_a_new_endpoint_url_rewrites_the_configuration_without_reinstalling(notebook: Notebook) -> None:
    jupyter_config = notebook.server / "etc/jupyter/jupyter_server_config.json"
    jupyter_config.parent.mkdir(parents=True)
    jupyter_config.write_text('{"ServerApp": {"terminado_settings": {"shell_command": ["/bin/bash"]}}}')
    assert notebook.run().returncode == 0
    url = "https://vpce-0abc.execute-api.us-east-1.vpce.amazonaws.com/v1"
    notebook.stage_config(f"wheel = {WHEEL}   # the wheel\nadmin_url = {url}\n")
    result = notebook.run()
    assert result.returncode == 0, result.stdout
    assert len(notebook.pip_calls(notebook.server)) == 2
    assert _json(jupyter_config) == {
        "ServerApp": {"terminado_settings": {"shell_command": ["/bin/bash"]}},
        "S3Access": {"admin_url": url},
    }
    kernel_config = notebook.envs / "python3/etc/ipython/ipython_config.json"
    assert _json(kernel_config) == {"S3Access": {"admin_url": url}}
    assert f"S3ACCESS_ADMIN_URL='{url}'" in (notebook.root / "etc/profile.d/s3access.sh").read_text()
    assert notebook.restarts() == ["restart jupyter-server"] * 2


def test_the_written_configuration_is_what_jupyter_server_and_ipython_read(notebook: Notebook) -> None:
    assert notebook.run().returncode == 0
    from traitlets.config.loader import JSONFileConfigLoader

    from mlspace_s3magic.notebook.magics import S3Access as KernelSettings
    from mlspace_s3magic.server import S3Access as ServerSettings

    for path, settings in (
        (notebook.server / "etc/jupyter/jupyter_server_config.json", ServerSettings),
        (notebook.envs / "python3/etc/ipython/ipython_config.json", KernelSettings),
    ):
        config = JSONFileConfigLoader(path.name, str(path.parent)).load_config()
        assert settings.__name__ in config and config[settings.__name__]["admin_url"] == EXAMPLE_URL
        assert "admin_url" in settings.class_trait_names(config=True)


def test_kernels_install_in_the_background_by_default(notebook: Notebook) -> None:
    started = time.monotonic()
    result = notebook.run(S3ACCESS_KERNELS="background")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kernels: installing in the background" in result.stdout
    assert len(notebook.pip_calls(notebook.server)) == 2
    while "kernels: done" not in notebook.log.read_text():
        assert time.monotonic() - started < 20, notebook.log.read_text()
        time.sleep(0.1)
    assert "kernels: done" not in result.stdout
    for name in ("python3", "pytorch_p311"):
        assert len(notebook.pip_calls(notebook.envs / name)) == 2


def test_the_prefix_defaults_to_mlspaces_data_bucket(notebook: Notebook) -> None:
    result = notebook.run(S3ACCESS_S3_PREFIX="", S3ACCESS_KERNELS="skip")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"copying {PREFIX}/s3access.conf" in result.stdout
    assert "sts get-caller-identity --query Account --output text" in (notebook.calls / "aws.log").read_text()


def test_a_wheelhouse_makes_pip_use_the_staged_wheels_only(notebook: Notebook) -> None:
    (notebook.s3 / "wheelhouse").mkdir()
    (notebook.s3 / "wheelhouse" / "tqdm-4.66.0-py3-none-any.whl").write_bytes(b"tqdm")
    notebook.stage_config(f"wheel={WHEEL}\nadmin_url={EXAMPLE_URL}\nwheelhouse=wheelhouse\noffline=true\n")
    assert notebook.run(S3ACCESS_KERNELS="skip").returncode == 0
    assert (notebook.stage / "wheelhouse" / "tqdm-4.66.0-py3-none-any.whl").exists()
    for call in notebook.pip_calls(notebook.server):
        assert f"--find-links {notebook.stage / 'wheelhouse'} --no-index" in call


def test_failures_are_logged_and_leave_the_server_alone(notebook: Notebook) -> None:
    (notebook.s3 / "s3access.conf").unlink()
    missing = notebook.run()
    assert missing.returncode == 1
    assert f"FAILED: could not copy {PREFIX}/s3access.conf" in missing.stdout
    assert "(404)" in notebook.log.read_text()
    assert notebook.pip_calls(notebook.server) == [] and notebook.restarts() == []

    notebook.stage_config("wheel=../../etc/passwd\n")
    assert notebook.run().returncode == 1
    notebook.stage_config(f"wheel={WHEEL}\nadmin_url=https://x.example/'; rm -rf /\n")
    assert notebook.run().returncode == 1
    assert notebook.pip_calls(notebook.server) == [] and notebook.restarts() == []

    notebook.stage_config(CONFIG_EXAMPLE.read_text())
    (notebook.server / "pip-fails").touch()
    failed = notebook.run()
    assert failed.returncode == 1
    assert "FAILED: server: installation failed" in failed.stdout
    assert notebook.restarts() == []
    (notebook.server / "pip-fails").unlink()
    (notebook.envs / "python3" / "pip-fails").touch()
    partial = notebook.run()
    assert partial.returncode == 1
    assert "kernels: done, 1 environment(s) failed" in partial.stdout
    assert len(notebook.pip_calls(notebook.envs / "pytorch_p311")) == 2
    assert notebook.restarts() == ["restart jupyter-server"]


def test_the_script_is_executable_and_needs_no_tool_beyond_bash_coreutils_and_the_aws_cli() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/bin/bash\n")
    assert shutil.which("sha256sum") and shutil.which("sed")


def _documented_line() -> str:
    """The line deploy/README.md tells the admin to append to MLSpace's on-start script."""
    readme = (ROOT / "deploy" / "README.md").read_text()
    block = re.search(r"cat >> on-start\.sh\.new <<EOF\n(.*?)\nEOF\n", readme, re.S)
    assert block is not None
    [line] = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    return line


def test_the_line_the_readme_documents_runs_the_script_and_never_fails_the_start(notebook: Notebook) -> None:
    copy = notebook.root / "s3access-on-start.sh"
    line = _documented_line().replace("$PREFIX", PREFIX).replace("/tmp/s3access-on-start.sh", str(copy))
    shutil.copy(SCRIPT, notebook.s3 / "on-start.sh")
    environment = notebook.environment()
    del environment["S3ACCESS_S3_PREFIX"]  # the line sets it
    ran = subprocess.run(["bash", "-c", line], env=environment, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert notebook.restarts() == ["restart jupyter-server"]
    assert len(notebook.pip_calls(notebook.envs / "python3")) == 2
    assert f"copying {PREFIX}/s3access.conf" in ran.stdout

    (notebook.s3 / "s3access.conf").unlink()
    failed = subprocess.run(["bash", "-c", line], env=environment, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 0
    assert "s3access: lifecycle script failed; see /var/log/s3access-lifecycle.log" in failed.stdout


def test_the_readmes_wheelhouse_holds_what_the_script_installs() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    download = re.search(r"pip download .*?--dest wheelhouse \\\n(.*?)\n", readme)
    assert download is not None
    assert re.findall(r'"([^"]+)"', download.group(1)) == _requirements_from_pyproject()


@pytest.mark.skipif(os.geteuid() != 0, reason="the script changes user only when it runs as root")
def test_as_root_everything_from_the_environments_runs_as_their_owner(notebook: Notebook) -> None:
    _executable(notebook.root / "stubs" / "sudo", FAKE_SUDO)
    result = notebook.run(S3ACCESS_RUN_AS="root")  # a user that exists here; ec2-user on a notebook
    assert result.returncode == 0, result.stdout + result.stderr
    assert set((notebook.calls / "sudo.log").read_text().split()) == {"root"}
    for env in (notebook.server, notebook.envs / "python3", notebook.envs / "pytorch_p311"):
        calls = (env / "python-calls.log").read_text().splitlines()
        assert {"sudo --version", "sudo -m", "sudo -"} <= set(calls)
        assert all(call.startswith("sudo ") for call in calls), calls
    jupyter = (notebook.server / "jupyter-calls.log").read_text().splitlines()
    assert jupyter == ["sudo lab --version", "sudo server --version"]
    assert notebook.restarts() == ["restart jupyter-server"]
