"""JupyterLab in Debian's Chromium: the sidebar shows alice's buckets, the toolbar button files a request.

The whole demo runs as `make demo` starts it (sandbox, admin endpoint, JupyterLab as alice@demo), in
subprocesses on loopback; Playwright drives /usr/bin/chromium (never a downloaded browser).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import READABLE_BUCKET, SHARED_BUCKET

from ..admin.conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google, which this machine refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(
    os.environ.get("S3ACCESS_TEST_ARTIFACTS", Path(__file__).parents[2] / "build" / "test-artifacts")
)
STARTUP_SECONDS = 90
UI_TIMEOUT_MS = 60_000
REASON = "iris study from the JupyterLab button"


@dataclass
class Demo:
    lab_url: str
    token: str
    admin_url: str
    admin_token_file: Path
    log: Path


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the demo exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def _serving(command: list[str], environment: dict[str, str], log: Path, status_url: str) -> Iterator[None]:
    """Run ``command`` (its output in ``log``) until the block ends, once ``status_url`` answers."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(status_url, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _lab_environment(home: Path, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` with Jupyter's folders under ``home``: not this machine's own settings, and Lab's "would you
    like news?" toast off, as it would cover the notifications looked for."""
    settings = home / "jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return {
        **base,
        "JUPYTER_CONFIG_DIR": str(home / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(home / "jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "XDG_STATE_HOME": str(home / "xdg-state"),
    }


def _lab_command(port: int, root: Path, token: str) -> list[str]:
    return [
        str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--allow-root",
        "--ip", "127.0.0.1", "--port", str(port), f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
    ]  # fmt: skip


@contextlib.contextmanager
def running_demo(tmp_path: Path, principal: str) -> Iterator[Demo]:
    """`make demo`'s launcher as ``principal``, with fixed ports, a known Lab token and the notebook folder
    ``tmp_path/notebooks``."""
    root = tmp_path / "notebooks"
    root.mkdir(exist_ok=True)
    environment = _lab_environment(tmp_path, os.environ)
    state_dir, lab_port, admin_port = tmp_path / "state", free_port(), free_port()
    token = secrets.token_hex(16)
    command = [
        str(Path(sys.executable).parent / "s3access"), "sandbox", "run", "--as", principal,
        "--admin-endpoint", "--admin-port", str(admin_port), "--state-dir", str(state_dir), "--",
        *_lab_command(lab_port, root, token),
    ]  # fmt: skip
    log, lab_url = tmp_path / "demo.log", f"http://127.0.0.1:{lab_port}"
    with _serving(command, environment, log, f"{lab_url}/api/status?token={token}"):
        yield Demo(lab_url, token, f"http://127.0.0.1:{admin_port}", state_dir / "admin.token", log)


@contextlib.contextmanager
def joining_lab(tmp_path: Path, state_dir: Path, principal: str) -> Iterator[tuple[str, str]]:
    """A second JupyterLab, as ``principal``, on the sandbox and admin endpoint a running demo serves from
    ``state_dir`` (what `s3access sandbox env --as` gives another shell); yields its URL and token."""
    home = tmp_path / f"lab-{principal.split('@')[0]}"
    (home / "notebooks").mkdir(parents=True)
    state = SandboxState.load(state_dir)
    environment = _lab_environment(home, state.process_environment(principal, os.environ))
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    with _serving(
        _lab_command(port, home / "notebooks", token),
        environment,
        home / "lab.log",
        f"{url}/api/status?token={token}",
    ):
        yield url, token


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo as alice, with a notebook that loads the magics."""
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext mlspace_s3magic"))
    nbformat.write(notebook, root / "request.ipynb")
    with running_demo(tmp_path, "alice@demo") as running:
        yield running


def test_sidebar_shows_the_buckets_and_the_toolbar_button_files_a_request(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab-s3access-sidebar.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{demo.lab_url}/lab/tree/request.ipynb?token={demo.token}")
            toolbar_button = page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='s3access-request']")
            toolbar_button.wait_for()

            tab = page.locator(".lm-TabBar-tab[data-id='s3access-sidebar']")
            tab.wait_for()
            if "lm-mod-current" not in (tab.get_attribute("class") or ""):  # a restored layout has it open
                tab.click()
            shared = page.locator(f".s3access-bucket[data-bucket='{SHARED_BUCKET}'] .s3access-status")
            readable = page.locator(f".s3access-bucket[data-bucket='{READABLE_BUCKET}'] .s3access-status")
            shared.wait_for()
            readable.wait_for()
            assert shared.get_attribute("data-status") == "denied"
            assert readable.get_attribute("data-status") == "read"
            assert "alice" in page.locator(".s3access-identity").inner_text()
            page.screenshot(path=str(screenshot))

            # Insert snippet: a new cell below the active one, with the code that lists the bucket.
            page.locator(f".s3access-bucket[data-bucket='{READABLE_BUCKET}'] .s3access-insert").click()
            page.locator(".jp-Notebook .jp-Cell", has_text=f"Bucket='{READABLE_BUCKET}'").wait_for()

            # A bucket opens its check: per capability the verdict and what blocks it, then the fixes.
            page.locator(f".s3access-bucket[data-bucket='{SHARED_BUCKET}'] .s3access-bucket-name").click()
            check = page.locator(f".s3access-check[data-bucket='{SHARED_BUCKET}'] .s3access-check-result")
            check.wait_for()
            read = check.locator("li.s3access-capability[data-capability='read']")
            assert read.get_attribute("data-verdict") == "denied"
            assert "boundary" in read.locator(".s3access-blocked").inner_text()
            assert {"identity", "boundary"} <= {
                fix.get_attribute("data-layer") for fix in check.locator("li.s3access-fix").all()
            }
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-check.png"))
            page.locator(".s3access-back").click()

            toolbar_button.locator("button").click()
            dialog = page.locator(".jp-Dialog")
            dialog.locator("input[name='bucket']").fill(SHARED_BUCKET)
            dialog.locator("input[name='prefix']").fill("datasets/")
            dialog.locator("textarea[name='reason']").fill(REASON)
            dialog.locator("input[name='days']").fill("30")
            dialog.get_by_role("button", name="Submit request").click()
            toast = page.locator(".Toastify__toast", has_text="filed")
            toast.wait_for()
            toast_text = toast.inner_text()
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-failure.png"))
            raise
        finally:
            browser.close()

    assert screenshot.stat().st_size > 10_000  # a rendered page, not an empty image
    admin = AdminClient(demo.admin_url, token=demo.admin_token_file.read_text().strip())
    try:
        (filed,) = admin.requests()
    finally:
        admin.close()
    assert (filed.bucket, filed.prefix, filed.reason, filed.days) == (SHARED_BUCKET, "datasets/", REASON, 30)
    assert filed.status is RequestStatus.PENDING
    assert (filed.requester.user, filed.requester.project) == ("alice", "demo")
    assert filed.id in toast_text, toast_text
