"""Download, Open and Upload in the sidebar's folder view, in Debian's Chromium: the iris CSV downloaded into
the file browser's folder (found there, selected, with the object's bytes), opened read-only in JupyterLab's
CSV viewer, a local file selected in the file browser uploaded into alice's private prefix (and replaced
after the dialog asks), and an upload into a bucket alice may only read refused with the check's reason.

One demo (test_jupyterlab's), alice's read of BucketToBeShared granted as test_sidebar_browse grants it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import DATA_BUCKET, READABLE_BUCKET, SHARED_BUCKET

from .test_check_and_dialog import DARK, LIGHT, lab_page, use_theme
from .test_jupyterlab import ARTIFACTS, Demo, demo
from .test_sidebar_browse import _grant_read_of_the_shared_bucket

if TYPE_CHECKING:
    from playwright.sync_api import Locator

__all__ = ["demo"]  # the fixture, imported to be used here
IRIS = "datasets/iris/iris.csv"
LOCAL = "hello-s3.txt"
LOCAL_TEXT = "uploaded from JupyterLab's file browser\n"


def test_download_open_and_upload_from_the_sidebar(demo: Demo, tmp_path: Path) -> None:
    root = tmp_path / "notebooks"  # the demo's notebook folder, Jupyter's root
    (root / LOCAL).write_text(LOCAL_TEXT)
    _grant_read_of_the_shared_bucket(demo)
    sandbox = SandboxState.load(tmp_path / "state")
    partner, s3 = sandbox.aws_for("owner").client("s3"), sandbox.aws_for("admin").client("s3")
    iris_bytes = partner.get_object(Bucket=SHARED_BUCKET, Key=IRIS)["Body"].read()

    with lab_page(demo, "transfer") as page:
        sidebar_tab = page.locator(".lm-TabBar-tab[data-id='s3access-sidebar']")
        files_tab = page.locator(".lm-TabBar-tab[data-id='filebrowser']")
        listing = page.locator("#filebrowser .jp-DirListing-content")

        def bucket_view(bucket: str) -> Locator:
            """Open a bucket of the list as a folder view."""
            page.locator(f".s3access-bucket[data-bucket='{bucket}'] .s3access-status").wait_for()
            page.locator(f".s3access-bucket[data-bucket='{bucket}'] .s3access-bucket-name").click()
            return page.locator(f".s3access-browse[data-bucket='{bucket}']")

        # Upload here with nothing selected in the file browser says what to do.
        view = bucket_view(SHARED_BUCKET)
        view.locator(".s3access-browse-upload").click()
        notice = view.locator(
            ".s3access-transfer[data-state='error']", has_text="Select files in the file browser"
        )
        notice.wait_for()
        notice.locator(".s3access-transfer-dismiss").click()

        # Download: into the file browser's folder (Jupyter's root), with its progress and the saved path.
        view.locator(".s3access-browse-folder[data-prefix='datasets/'] button").click()
        view.locator(".s3access-browse-folder[data-prefix='datasets/iris/'] button").click()
        iris = view.locator(f".s3access-browse-object[data-key='{IRIS}']")
        download = iris.locator(".s3access-browse-download")
        assert "1 GiB" in (download.get_attribute("title") or "")
        download.click()
        done = view.locator(".s3access-transfer[data-direction='download'][data-state='done']")
        done.wait_for()
        assert "iris.csv" in done.locator(".s3access-transfer-message").inner_text()
        assert done.locator("[role='progressbar']").get_attribute("aria-valuenow") == "100"
        assert (root / "iris.csv").read_bytes() == iris_bytes
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-download.png"))
        files_tab.click()
        listing.locator(".jp-DirListing-item.jp-mod-selected", has_text="iris.csv").wait_for()

        # Open: JupyterLab's CSV viewer in a tab named after the object, read-only, its rows drawn.
        sidebar_tab.click()
        iris.locator(".s3access-browse-open").click()
        tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
        tab.locator(".lm-TabBar-tabLabel", has_text="iris.csv").wait_for()
        viewer = page.locator("#jp-main-dock-panel .lm-DockPanel-widget:visible")
        viewer.locator(".jp-CSVViewer").wait_for()
        viewer.locator("[data-jp-item-name='read-only-indicator']").wait_for()
        caption = tab.get_attribute("title") or ""
        assert f"S3:{SHARED_BUCKET}/{IRIS}" in caption and "Read-only" in caption, caption
        page.wait_for_function(
            """() => { const canvas = document.querySelector('.jp-CSVViewer canvas');
            if (!canvas || !canvas.width) return false;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const colours = new Set();
            for (let i = 0; i < data.length; i += 28) {
              colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            }
            return colours.size > 20; }"""
        )  # text is drawn: anti-aliased glyphs, not a blank grid
        viewer.locator(".jp-CSVViewer").click()
        page.keyboard.press("Control+s")
        page.locator(".Toastify__toast", has_text="is read-only").wait_for()  # Lab's own refusal to save
        assert partner.get_object(Bucket=SHARED_BUCKET, Key=IRIS)["Body"].read() == iris_bytes

        # Upload: nothing selected says so; the file selected in the file browser goes to private/alice/.
        view.locator(".s3access-browse-back").click()
        view = bucket_view(DATA_BUCKET)
        for part in ("private/", "private/alice/"):
            if view.get_attribute("data-prefix") != "private/alice/":
                view.locator(f".s3access-browse-folder[data-prefix='{part}'] button").click()
        view.locator(".s3access-browse-object[data-key='private/alice/scratch.txt']").wait_for()
        files_tab.click()
        listing.locator(".jp-DirListing-item", has_text=LOCAL).click()
        listing.locator(".jp-DirListing-item.jp-mod-selected", has_text=LOCAL).wait_for()
        sidebar_tab.click()
        view.locator(".s3access-browse-upload").click()
        uploaded = view.locator(".s3access-transfer[data-direction='upload'][data-state='done']")
        uploaded.wait_for()
        view.locator(f".s3access-browse-object[data-key='private/alice/{LOCAL}']").wait_for()
        assert (
            s3.get_object(Bucket=DATA_BUCKET, Key=f"private/alice/{LOCAL}")["Body"].read()
            == LOCAL_TEXT.encode()
        )
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-upload.png"))
        use_theme(page, DARK)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-upload-dark.png"))
        use_theme(page, LIGHT)

        # Again: the object exists, so a dialog asks before replacing it.
        uploaded.locator(".s3access-transfer-dismiss").click()
        view.locator(".s3access-browse-upload").click()
        ask = page.locator(".jp-Dialog", has_text="Replace")
        ask.wait_for()
        assert f"s3://{DATA_BUCKET}/private/alice/{LOCAL}" in ask.inner_text()
        ask.get_by_role("button", name="Replace").click()
        uploaded.wait_for()

        # A bucket alice may only read refuses the upload, with the check's reason and a way to that check.
        view.locator(".s3access-browse-back").click()
        view = bucket_view(READABLE_BUCKET)
        view.locator(".s3access-browse-upload").click()
        refused = view.locator(".s3access-transfer[data-direction='upload'][data-state='error']")
        refused.wait_for()
        reason = refused.locator(".s3access-transfer-message").inner_text()
        assert READABLE_BUCKET in reason, reason
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-upload-refused.png"))
        use_theme(page, DARK)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-s3access-upload-refused-dark.png"))
        use_theme(page, LIGHT)
        refused.locator(".s3access-transfer-check").click()
        check = page.locator(f".s3access-check[data-bucket='{READABLE_BUCKET}'] .s3access-check-result")
        check.locator("li.s3access-capability[data-capability='write'][data-verdict='denied']").wait_for()
