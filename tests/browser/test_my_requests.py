"""My requests in JupyterLab: a request filed from the toolbar shows at once, the admin's approve and apply
reach alice as a new status and a notification (with Re-check, and a warning of the grant's near end), and
a pending request is cancelled from the list.

The demo is test_jupyterlab's; the page's ``s3access-poll`` parameter makes the plugin poll every half
second (doubling to 4 s while nothing changes) instead of every 15 s.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import RequestStatus
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from .test_jupyterlab import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, UI_TIMEOUT_MS, Demo, demo

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request

__all__ = ["demo"]  # the fixture, imported to be used here
# The page as a browser has it when its tab is in the background, and back.
SET_HIDDEN = """() => {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  document.dispatchEvent(new Event('visibilitychange'));
}"""
SET_VISIBLE = """() => {
  delete document.visibilityState;
  document.dispatchEvent(new Event('visibilitychange'));
}"""
REASON = "iris study, followed in My requests"


def _file_as_alice(demo: Demo, prefix: str) -> str:
    """Another request, through the server route the dialog uses (the dialog itself is tested above)."""
    body = {"bucket": SHARED_BUCKET, "prefix": prefix, "access": "read", "reason": REASON, "days": None}
    response = httpx.post(
        f"{demo.lab_url}/s3access/requests",
        content=json.dumps({**body, "idempotency_key": uuid.uuid4().hex}),
        headers={"Authorization": f"token {demo.token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    request_id: str = response.json()["id"]
    return request_id


# Longer than a notification shows (140 characters): ellipsized there, in full on the row.
DENIAL = (
    "Use the public iris copy in the shared datasets instead: it is the same data, refreshed every night, "
    "and it needs no grant at all."
)


def test_my_requests_follows_a_request_from_filing_to_its_grant(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    admin = AdminClient(demo.admin_url, token=demo.admin_token_file.read_text().strip())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{demo.lab_url}/lab/tree/request.ipynb?token={demo.token}&s3access-poll=0.5")
            toolbar_button = page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='s3access-request']")
            toolbar_button.wait_for()
            tab = page.locator(".lm-TabBar-tab[data-id='s3access-sidebar']")
            if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                tab.click()
            mine = page.locator(".s3access-my-requests")
            mine.locator(".s3access-requests-note", has_text="No requests yet").wait_for()

            # Filed from the toolbar's dialog: in the list without a reload.
            toolbar_button.locator("button").click()
            dialog = page.locator(".jp-Dialog")
            dialog.locator("input[name='bucket']").fill(SHARED_BUCKET)
            dialog.locator("input[name='prefix']").fill("datasets/")
            dialog.locator("textarea[name='reason']").fill(REASON)
            dialog.locator("input[name='days']").fill("2")
            dialog.get_by_role("button", name="Submit request").click()
            pending = mine.locator(".s3access-request[data-status='pending']")
            pending.wait_for()
            (filed,) = admin.requests()
            assert pending.get_attribute("data-id") == filed.id
            assert f"s3://{SHARED_BUCKET}/datasets/" in pending.inner_text()
            assert "2 d once applied" in pending.inner_text()

            # The admin approves and applies; the next poll brings the new status and tells alice.
            admin.act(filed.id, "approve")
            assert admin.act(filed.id, "apply").status is RequestStatus.APPLIED
            mine.locator(f".s3access-request[data-id='{filed.id}'][data-status='applied']").wait_for()
            told = page.locator(".Toastify__toast", has_text="Access request applied")
            told.wait_for()
            assert f"s3://{SHARED_BUCKET}/datasets/" in told.inner_text()
            warned = page.locator(".Toastify__toast", has_text="ends in")
            warned.wait_for()  # a 2-day grant is within the 3 days' warning
            expiry = mine.locator(f".s3access-request[data-id='{filed.id}'] .s3access-request-expiry")
            assert "s3access-mod-soon" in (expiry.get_attribute("class") or "")
            _screenshot_when_toasts_settle(page, "jupyterlab-s3access-my-requests.png")

            # Re-check: the sidebar checks the bucket again, and alice may read it now.
            told.get_by_role("button", name="Re-check").click()
            check = page.locator(f".s3access-check[data-bucket='{SHARED_BUCKET}'][data-prefix='datasets/']")
            read = check.locator("li.s3access-capability[data-capability='read']")
            read.wait_for()
            assert read.get_attribute("data-verdict") == "allowed"

            # Cancel from the list: only a request whose status allows it offers Cancel.
            second = _file_as_alice(demo, "logs/")
            mine.locator(".s3access-requests-refresh").click()
            row = mine.locator(f".s3access-request[data-id='{second}']")
            row.locator(".s3access-request-cancel").click()
            page.locator(".jp-Dialog").get_by_role("button", name="Cancel request").click()
            mine.locator(f".s3access-request[data-id='{second}'][data-status='cancelled']").wait_for()
            assert row.locator(".s3access-request-cancel").count() == 0
            applied_row = mine.locator(f".s3access-request[data-id='{filed.id}']")
            assert applied_row.locator(".s3access-request-cancel").count() == 0
            assert page.locator(".Toastify__toast", has_text="Access request cancelled").count() == 0

            # Denied with the admin's reason: on the row in full, and in the notification.
            third = _file_as_alice(demo, "other/")
            mine.locator(".s3access-requests-refresh").click()
            mine.locator(f".s3access-request[data-id='{third}'][data-status='pending']").wait_for()
            admin.act(third, "deny", reason=DENIAL)
            decision = mine.locator(f".s3access-request[data-id='{third}'] .s3access-request-decision")
            decision.wait_for()
            assert decision.inner_text() == f"Denied because: {DENIAL}"
            denied = page.locator(".Toastify__toast", has_text="Access request denied")
            denied.wait_for()
            told_why = denied.inner_text()
            assert f"because: {DENIAL[:40]}" in told_why and "…" in told_why and DENIAL not in told_why

            # The polling: after a Refresh, waits that double while nothing changes (from the 0.5 s base:
            # 1, 2, 4 s); none while the tab is hidden; one at once when it shows again.
            polls: list[float] = []
            page.on("request", lambda r: _note_poll(r, polls))
            mine.locator(".s3access-requests-refresh").click()
            deadline = time.monotonic() + 30
            while len(polls) < 4 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
            assert len(gaps) == 3, gaps
            assert gaps[0] < 2.5, gaps  # the shortest wait, from the page's s3access-poll
            for i, gap in enumerate(gaps):
                assert gap >= 0.5 * 2 ** (i + 1) * 0.9, gaps  # a timer never fires early: each wait doubled
            page.evaluate(SET_HIDDEN)
            hidden_at = len(polls)
            page.wait_for_timeout(5_000)  # longer than the longest wait (4 s)
            assert len(polls) == hidden_at, polls  # its due poll (4 s after the last) never went out
            shown_at = len(polls)
            page.evaluate(SET_VISIBLE)
            page.wait_for_timeout(1_000)
            assert len(polls) > shown_at, polls

            # The same list in the dark theme: JupyterLab's colours only, so it reads there too.
            page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
            page.locator(".lm-Menu-itemLabel").get_by_text("Theme", exact=True).hover()
            page.locator(".lm-Menu-itemLabel").get_by_text("JupyterLab Dark", exact=True).click()
            page.locator("body[data-jp-theme-light='false']").wait_for(state="attached")
            _screenshot_when_toasts_settle(page, "jupyterlab-s3access-my-requests-dark.png")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-my-requests-failure.png"))
            raise
        finally:
            browser.close()
            admin.close()
    assert admin_status(demo, second) is RequestStatus.CANCELLED


def _note_poll(request: Request, polls: list[float]) -> None:
    if request.method == "GET" and request.url.split("?")[0].endswith("/s3access/requests"):
        polls.append(time.monotonic())


def _screenshot_when_toasts_settle(page: Page, name: str) -> None:
    """A screenshot once every notification has slid fully into view (they arrive animated)."""
    page.wait_for_function(
        "[...document.querySelectorAll('.Toastify__toast')]"
        ".every(t => t.getBoundingClientRect().right <= window.innerWidth)"
    )
    page.wait_for_timeout(300)  # the last frames of the theme's or the toasts' transitions
    page.screenshot(path=str(ARTIFACTS / name))


def admin_status(demo: Demo, request_id: str) -> RequestStatus:
    admin = AdminClient(demo.admin_url, token=demo.admin_token_file.read_text().strip())
    try:
        return admin.show(request_id).request.status
    finally:
        admin.close()
