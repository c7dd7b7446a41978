"""The admin review panel in JupyterLab: the sandbox's admin reviews alice's request (its plan per layer),
approves and applies it and reads the verification, while alice's own JupyterLab on the same sandbox tells
her and her check turns readable; alice's JupyterLab has no such panel.

The admin's JupyterLab is `make demo`'s launcher run ``--as admin``: the server forwards the panel's calls
as that identity and the endpoint, which lists the admin's ARN, decides. Screenshots in both themes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import NewAccessRequest, RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from .test_check_and_dialog import DARK, LIGHT, use_theme
from .test_jupyterlab import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    UI_TIMEOUT_MS,
    Demo,
    demo,
    joining_lab,
    running_demo,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["demo"]  # the fixture, imported so that pytest finds it here
REASON = "iris study, reviewed in the admin panel"
DENIAL = "Use the public iris copy instead."


@pytest.fixture
def admin_demo(tmp_path: Path) -> Iterator[Demo]:
    """test_jupyterlab's demo with JupyterLab running as the sandbox's admin instead of alice."""
    with running_demo(tmp_path, "admin") as running:
        yield running


def _alice_files(demo: Demo, prefix: str = "datasets/") -> str:
    """Alice's request, filed through the client with her own proof (the dialog is tested elsewhere)."""
    state = SandboxState.load(demo.admin_token_file.parent)
    alice = AdminClient(demo.admin_url, aws=state.aws_for("alice@demo"))
    try:
        filed = alice.submit(
            NewAccessRequest.model_validate(
                {
                    "bucket": SHARED_BUCKET,
                    "prefix": prefix,
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


def test_the_admin_reviews_approves_and_applies_alices_request(admin_demo: Demo, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    request_id = _alice_files(admin_demo)
    with (
        joining_lab(tmp_path, admin_demo.admin_token_file.parent, "alice@demo") as (alice_url, alice_token),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = _new_page(browser)
        alice = _new_page(browser)
        try:
            # Alice's Lab, polling her requests every half second: her request is pending.
            alice.goto(f"{alice_url}/lab?token={alice_token}&s3access-poll=0.5")
            sidebar = alice.locator(".lm-TabBar-tab[data-id='s3access-sidebar']")
            sidebar.wait_for()
            if "lm-mod-current" not in (sidebar.get_attribute("class") or ""):
                sidebar.click()
            alice.locator(f".s3access-request[data-id='{request_id}'][data-status='pending']").wait_for()
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

            # Alice is told, and her Re-check finds the folder readable now.
            told = alice.locator(".Toastify__toast", has_text="Access request applied")
            told.wait_for()
            told.get_by_role("button", name="Re-check").click()
            check = alice.locator(f".s3access-check[data-bucket='{SHARED_BUCKET}'][data-prefix='datasets/']")
            read = check.locator("li.s3access-capability[data-capability='read']")
            read.wait_for()
            assert read.get_attribute("data-verdict") == "allowed"
            # Wider than the default sidebar, as an admin reading diffs would drag it.
            page.add_style_tag(content="#s3access-admin { min-width: 420px !important; }")
            item.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-applied.png"))
            use_theme(page, DARK)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-applied-dark.png"))
            use_theme(page, LIGHT)

            # Deny asks why, with the limits stated; a too-short reason is refused in the dialog itself.
            denied_id = _alice_files(admin_demo, "logs/")
            page.locator(".s3access-admin-refresh").click()
            other = page.locator(f".s3access-review[data-id='{denied_id}']")
            other.locator(".s3access-review-toggle").click()
            other.locator(".s3access-review-deny").click()
            dialog = page.locator(".s3access-deny-dialog")
            assert "3 to 1000 characters" in dialog.locator(".s3access-field-hint").inner_text()
            reason = dialog.locator("textarea[name='reason']")
            reason.fill("no")
            dialog.locator(".jp-Dialog-button.jp-mod-warn").click()
            problem = dialog.locator(".s3access-field-error")
            problem.wait_for()
            assert "at least 3 characters" in problem.inner_text()
            reason.fill(DENIAL)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-deny.png"))
            dialog.locator(".jp-Dialog-button.jp-mod-warn").click()
            dialog.wait_for(state="detached")
            decision = other.locator(".s3access-review-decision")
            decision.wait_for()
            assert decision.inner_text() == f"Denied: {DENIAL}"
            assert other.get_attribute("data-status") == "denied"
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-failure.png"))
            alice.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-admin-alice-failure.png"))
            raise
        finally:
            browser.close()

    admin = AdminClient(admin_demo.admin_url, token=admin_demo.admin_token_file.read_text().strip())
    try:
        assert admin.show(request_id).request.status is RequestStatus.APPLIED
        assert admin.show(denied_id).request.decision_reason == DENIAL
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
