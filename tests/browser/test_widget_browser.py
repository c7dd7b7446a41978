"""The notebook's bucket browser (``%s3access browse``) drawn by JupyterLab in Debian's Chromium: a table
whose names are whole when the cell is wide, icons drawn as SVG (no emoji font on this machine either),
rows that open and select on click, and a CSV preview as a table; screenshots in both themes.

The demo is test_jupyterlab.py's (sandbox, admin endpoint and JupyterLab as alice@demo).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import pytest

from mlspace_s3magic.sandbox.world import READABLE_BUCKET

from .test_jupyterlab import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, UI_TIMEOUT_MS, Demo, demo

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

__all__ = ["demo"]  # the fixture, imported so that pytest finds it here


def _notebook(folder: Path) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells.append(nbformat.v4.new_code_cell("%load_ext mlspace_s3magic\n%s3access browse"))
    nbformat.write(notebook, folder / "browse.ipynb")


def _use_theme(page: Page, theme: str) -> None:
    """Switch through JupyterLab's own menu, as a person would."""
    page.locator(".lm-MenuBar-item", has_text="Settings").click()
    page.locator(".lm-Menu-item", has_text=re.compile("^Theme$")).hover()
    page.get_by_role("menuitem", name=theme, exact=True).click()
    page.locator(f"body[data-jp-theme-name='{theme}']").wait_for(state="attached")
    page.locator("#jupyterlab-splash").wait_for(state="detached")


def _row(page: Page, name: str) -> Locator:
    return page.locator(".s3magic-browser button.s3magic-name", has_text=name).first


def test_the_widget_lists_a_table_with_whole_names_and_drawn_icons(demo: Demo, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's package (make test does).")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    _notebook(tmp_path / "notebooks")  # the demo's notebook folder
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(UI_TIMEOUT_MS)
        try:
            page.goto(f"{demo.lab_url}/lab/tree/browse.ipynb?token={demo.token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()  # the kernel is up and connected
            page.locator(".jp-Notebook .jp-Cell").first.click()
            page.keyboard.press("Shift+Enter")

            readable = _row(page, READABLE_BUCKET)
            readable.wait_for()
            # The whole name shows in a wide cell (no ellipsis), left-aligned as a table's names are.
            fits = readable.evaluate("node => node.scrollWidth <= node.clientWidth")
            assert fits, readable.inner_text()
            assert readable.inner_text() == READABLE_BUCKET
            assert readable.evaluate("node => getComputedStyle(node).textAlign") == "left"
            icon = page.locator(".s3magic-browser .s3magic-icon svg").first
            size = icon.bounding_box()
            assert size is not None and (round(size["width"]), round(size["height"])) == (16, 16)
            assert page.locator(".s3magic-browser select").count() == 0
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3magic-widget-buckets.png"))

            readable.click()
            _row(page, "reference/").click()
            countries = _row(page, "countries.csv")
            countries.click()
            page.locator(
                ".s3magic-browser .s3magic-name.s3magic-selected", has_text="countries.csv"
            ).wait_for()
            colours = countries.evaluate("node => getComputedStyle(node).backgroundColor")
            assert colours not in ("rgba(0, 0, 0, 0)", "transparent")  # the selected row stands out
            page.locator(".s3magic-browser button", has_text="Preview").click()
            preview = page.locator(".s3magic-preview table")
            preview.wait_for()
            assert preview.locator("th").all_inner_texts() == ["code", "name"]
            assert "Japan" in preview.inner_text()
            size_cell = page.locator(".s3magic-browser .s3magic-size", has_text=" B").first
            assert size_cell.inner_text().strip().endswith(" B")
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3magic-widget-light.png"))
            _use_theme(page, "JupyterLab Dark")
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3magic-widget-dark.png"))
            _use_theme(page, "JupyterLab Light")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3magic-widget-failure.png"))
            raise
        finally:
            browser.close()
