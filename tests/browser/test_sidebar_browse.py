"""Browsing a bucket in the sidebar, after a grant: into a folder and back by its breadcrumbs, 300 log objects
paged with Load more and filtered, the iris CSV previewed as a table, a path dragged into a cell, snippets
inserted into the open notebook and one run there (the kernel runs as alice against the sandbox).

The demo is test_jupyterlab's; alice's read of BucketToBeShared is filed through the server route and
approved and applied by the sandbox's admin, as test_my_requests does.
"""

from __future__ import annotations

import json

import httpx
import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import RequestStatus
from mlspace_s3magic.sandbox.world import LOG_OBJECT_COUNT, SHARED_BUCKET

from .test_check_and_dialog import DARK, LIGHT, use_theme
from .test_jupyterlab import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, UI_TIMEOUT_MS, Demo, demo

__all__ = ["demo"]  # the fixture, imported to be used here
PAGE_SIZE = 100  # BROWSE_PAGE_SIZE in labextension/src/browse.ts
IRIS_README = "A small iris-shaped dataset: 150 rows, 4 measurements and a species.\n"


def _grant_read_of_the_shared_bucket(demo: Demo) -> None:
    """Alice files a read of the whole bucket (the dialog's own route), the admin approves and applies it."""
    body = {"bucket": SHARED_BUCKET, "prefix": "", "access": "read", "reason": "browse it", "days": 1}
    response = httpx.post(
        f"{demo.lab_url}/s3access/requests",
        content=json.dumps({**body, "idempotency_key": "b" * 32}),
        headers={"Authorization": f"token {demo.token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    admin = AdminClient(demo.admin_url, token=demo.admin_token_file.read_text().strip())
    try:
        admin.act(response.json()["id"], "approve")
        assert admin.act(response.json()["id"], "apply").status is RequestStatus.APPLIED
    finally:
        admin.close()


def test_a_readable_bucket_opens_as_folders_with_paging_preview_and_snippets(demo: Demo) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _grant_read_of_the_shared_bucket(demo)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{demo.lab_url}/lab/tree/request.ipynb?token={demo.token}")
            page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='s3access-request']").wait_for()
            tab = page.locator(".lm-TabBar-tab[data-id='s3access-sidebar']")
            if "lm-mod-current" not in (tab.get_attribute("class") or ""):
                tab.click()
            bucket = page.locator(f".s3access-bucket[data-bucket='{SHARED_BUCKET}']")
            bucket.locator(".s3access-status[data-status='read']").wait_for()
            bucket.locator(".s3access-bucket-name").click()

            # A level per request: the bucket's folders; into datasets/iris/ by clicks, back by a breadcrumb.
            view = page.locator(f".s3access-browse[data-bucket='{SHARED_BUCKET}']")
            rows = view.locator(".s3access-browse-list > li")
            view.locator(".s3access-browse-folder[data-prefix='datasets/'] button").click()
            view.locator(".s3access-browse-folder[data-prefix='datasets/iris/'] button").click()
            iris = view.locator(".s3access-browse-object[data-key='datasets/iris/iris.csv']")
            iris.wait_for()
            assert view.get_attribute("data-prefix") == "datasets/iris/"
            assert [c.inner_text() for c in view.locator(".s3access-crumb").all()] == [
                "Buckets",
                SHARED_BUCKET,
                "datasets",
                "iris",
            ]
            assert rows.count() == 2
            assert "KiB" in iris.locator(".s3access-browse-size").inner_text()
            assert iris.get_attribute("data-kind") == "table"

            # Preview: a few rows of the CSV as a table.
            iris.locator(".s3access-browse-preview-button").click()
            table = view.locator(".s3access-browse-preview[data-key='datasets/iris/iris.csv'] table")
            table.wait_for()
            assert [th.inner_text() for th in table.locator("th").all()] == [
                "sepal_length",
                "sepal_width",
                "petal_length",
                "petal_width",
                "species",
            ]
            assert table.locator("tbody tr").count() == 10
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-browse.png"))
            use_theme(page, DARK)
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-browse-dark.png"))
            use_theme(page, LIGHT)

            # A row dragged carries its s3:// path as text; dropped on a cell's editor, the path lands there.
            dragged = iris.locator(".s3access-browse-name").evaluate(
                """el => { const data = new DataTransfer();
                el.dispatchEvent(new DragEvent('dragstart', { dataTransfer: data, bubbles: true }));
                return data.getData('text/plain'); }"""
            )
            assert dragged == f"s3://{SHARED_BUCKET}/datasets/iris/iris.csv"
            first_cell = page.locator(".jp-Notebook .jp-CodeCell").first
            iris.locator(".s3access-browse-name").drag_to(first_cell.locator(".cm-content"))
            first_cell.locator(".cm-content", has_text=dragged).wait_for()

            # Insert snippet: a new cell below the active one. The CSV's (pandas) and the README's (bytes)
            # are run there, in alice's kernel.
            iris.locator(".s3access-browse-insert").click()
            table = page.locator(".jp-Notebook .jp-CodeCell", has_text="pd.read_csv")
            table.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            head = table.locator(".jp-OutputArea-output table")
            head.wait_for()
            assert head.locator("tbody tr").count() == 5  # df.head()
            assert "species" in head.locator("thead").inner_text()
            readme = view.locator(".s3access-browse-object[data-key='datasets/iris/README.txt']")
            readme.locator(".s3access-browse-insert").click()
            cell = page.locator(".jp-Notebook .jp-CodeCell", has_text="Key='datasets/iris/README.txt'")
            cell.locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            result = cell.locator(".jp-OutputArea-output")
            result.wait_for()
            assert result.inner_text().strip() == str(len(IRIS_README))

            # Back to the bucket by its breadcrumb, then logs/: every object below it, a page at a time.
            view.locator(".s3access-crumb", has_text=SHARED_BUCKET).click()
            view.locator(".s3access-browse-folder[data-prefix='logs/'] button").click()
            view.locator(".s3access-browse-folder[data-prefix='logs/2026/']").wait_for()
            view.locator(".s3access-browse-recursive").click()
            more = view.locator(".s3access-browse-more")
            for loaded in range(PAGE_SIZE, LOG_OBJECT_COUNT, PAGE_SIZE):
                view.locator(".s3access-browse-count", has_text=f"{loaded} objects loaded").wait_for()
                assert rows.count() == loaded
                more.click()
            view.locator(".s3access-browse-count", has_text=f"{LOG_OBJECT_COUNT} objects loaded").wait_for()
            assert rows.count() == LOG_OBJECT_COUNT == 300
            assert more.count() == 0  # the last page has no continuation
            view.locator(".s3access-browse-filter").fill("part-0299")
            assert [r.get_attribute("data-key") for r in rows.all()] == ["logs/2026/11/20/part-0299.log"]

            # The first breadcrumb returns to the bucket list.
            view.locator(".s3access-browse-back").click()
            bucket.wait_for()
            assert view.count() == 0
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-browse-failure.png"))
            raise
        finally:
            browser.close()
