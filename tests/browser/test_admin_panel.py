"""The admin review panel in JupyterLab: the sandbox's admin reviews alice's request (its plan per layer),
approves and applies it and reads the verification; alice's JupyterLab has no such panel.

The admin's JupyterLab is `make demo`'s launcher run ``--as admin``: the server forwards the panel's calls
as that identity and the endpoint, which lists the admin's ARN, decides. Screenshots in both themes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from ..admin.conftest import free_port
from .test_check_and_dialog import DARK, LIGHT, use_theme
from .test_jupyterlab import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, UI_TIMEOUT_MS, Demo, _wait_until_up, demo

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["demo"]  # the fixture, imported so that pytest finds it here
REASON = "iris study, reviewed in the admin panel"


@pytest.fixture
def admin_demo(tmp_path: Path) -> Iterator[Demo]:
    """test_jupyterlab's demo with JupyterLab running as the sandbox's admin instead of alice."""
    root = tmp_path / "notebooks"
    root.mkdir()
    settings = tmp_path / "jupyter-config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    state_dir, lab_port, admin_port = tmp_path / "state", free_port(), free_port()
    token = secrets.token_hex(16)
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
        "XDG_STATE_HOME": str(tmp_path / "xdg-state"),
    }
    bin_dir = Path(sys.executable).parent
    command = [
        str(bin_dir / "s3access"), "sandbox", "run", "--as", "admin", "--admin-endpoint",
        "--admin-port", str(admin_port), "--state-dir", str(state_dir), "--",
        str(bin_dir / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip", "127.0.0.1",
        "--port", str(lab_port), f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
    ]  # fmt: skip
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        lab_url = f"http://127.0.0.1:{lab_port}"
        _wait_until_up(f"{lab_url}/api/status?token={token}", process, log)
        yield Demo(lab_url, token, f"http://127.0.0.1:{admin_port}", state_dir / "admin.token", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _alice_files(demo: Demo) -> str:
    """Alice's request, filed through the client with her own proof (the dialog is tested elsewhere)."""
    state = SandboxState.load(demo.admin_token_file.parent)
    alice = AdminClient(demo.admin_url, aws=state.aws_for("alice@demo"))
    try:
        filed = alice.submit(
            NewAccessRequest.model_validate(
                {
                    "bucket": SHARED_BUCKET,
                    "prefix": "datasets/",
                    "access": "read",
                    "reason": REASON,
                    "days": 30,
                    "idempotency_key": uuid.uuid4().hex,
                }
            )
        )
    finally:
        alice.close()
    assert filed is not None
    return filed.id


def _new_page(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(UI_TIMEOUT_MS)
    return page


def test_the_admin_reviews_approves_and_applies_alices_request(admin_demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    request_id = _alice_files(admin_demo)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = _new_page(browser)
        try:
            page.goto(f"{admin_demo.lab_url}/lab?token={admin_demo.token}")
            tab = page.locator(".lm-TabBar-tab[data-id='s3access-admin']")
            tab.wait_for()
            if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                tab.click()
            item = page.locator(f".s3access-review[data-id='{request_id}']")
            item.wait_for()
            assert item.get_attribute("data-status") == "pending"
            assert "alice" in item.locator(".s3access-review-who").inner_text()
            assert item.locator(".s3access-review-reason").inner_text() == REASON
            assert f"s3://{SHARED_BUCKET}/datasets/" in item.locator(".s3access-review-scope").inner_text()

            # The plan per layer, each a diff whose added lines name the bucket.
            item.locator(".s3access-review-toggle").click()
            identity = item.locator(".s3access-plan-layer[data-layer='identity']")
            identity.wait_for()
            added = "".join(identity.locator(".s3access-diff-added").all_inner_texts())
            assert SHARED_BUCKET in added, added
            layers = {n.get_attribute("data-layer") for n in item.locator(".s3access-plan-layer").all()}
            assert {"identity", "boundary", "bucket-policy"} <= layers, layers
            assert item.locator(".s3access-review-deny").is_visible()
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-review.png"))

            item.locator(".s3access-review-approve").click()
            item.locator(".s3access-review-apply").click()
            verification = item.locator(".s3access-verification")
            verification.wait_for()
            assert verification.get_attribute("data-verdict") == "allowed"
            verdicts = {
                n.get_attribute("data-capability"): n.get_attribute("data-verdict")
                for n in verification.locator(".s3access-verified").all()
            }
            assert verdicts and set(verdicts.values()) == {"allowed"}, verdicts
            assert item.get_attribute("data-status") == "applied"
            assert item.locator(".s3access-review-revoke").is_visible()
            # Wider than the default sidebar, as an admin reading diffs would drag it.
            page.add_style_tag(content="#s3access-admin { min-width: 420px !important; }")
            item.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-applied.png"))
            use_theme(page, DARK)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-applied-dark.png"))
            use_theme(page, LIGHT)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-failure.png"))
            raise
        finally:
            browser.close()

    admin = AdminClient(admin_demo.admin_url, token=admin_demo.admin_token_file.read_text().strip())
    try:
        assert admin.show(request_id).request.status is RequestStatus.APPLIED
    finally:
        admin.close()


def test_alices_jupyterlab_has_no_admin_panel(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = _new_page(browser)
        try:
            with page.expect_response(lambda response: "/s3access/admin/me" in response.url) as asked:
                page.goto(f"{demo.lab_url}/lab?token={demo.token}")
            me = asked.value.json()
            assert me["admin"] is False and ":assumed-role/MLSpace-" in me["arn"], me
            page.locator(".lm-TabBar-tab[data-id='s3access-sidebar']").wait_for()
            page.wait_for_timeout(300)  # the panel would be added right after the answer
            assert page.locator("#s3access-admin").count() == 0
            assert page.locator(".lm-TabBar-tab[data-id='s3access-admin']").count() == 0
        finally:
            browser.close()
