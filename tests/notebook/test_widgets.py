"""The bucket browser driven through its handlers, as a user's clicks would, against the sandbox."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import snippet
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.reachability import BucketList, Reachability, Status
from mlspace_s3magic.core.registry import Candidate
from mlspace_s3magic.core.render import STATUS_COLOURS
from mlspace_s3magic.notebook.widgets import ICONS, ROWS_SHOWN, STYLE, BucketBrowser
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import (
    DATA_BUCKET,
    LOG_OBJECT_COUNT,
    PARTNER_ACCOUNT,
    READABLE_BUCKET,
    SHARED_BUCKET,
)

IRIS = "datasets/iris/iris.csv"
DAYS = [f"{day:02d}/" for day in range(1, 29)]
# Emoji and pictographs (what needs an emoji font), dingbats and misc symbols, variation selectors.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0e\ufe0f\u2b00-\u2bff]")


class FakeShell:
    def __init__(self) -> None:
        self.inputs: list[str] = []

    def set_next_input(self, text: str, /) -> None:
        self.inputs.append(text)


class ListRequests:
    """Counts the ListObjectsV2 requests a client sends."""

    def __init__(self, aws: Aws):
        self.count = 0
        aws.client("s3").meta.events.register("before-send.s3.ListObjectsV2", self._record)

    def _record(self, **_: Any) -> None:
        self.count += 1


def _bucket_list(shared_status: Status) -> BucketList:
    def item(bucket: str, status: Status, **extra: Any) -> Reachability:
        return Reachability(Candidate(bucket, ("registry",), **extra), status, f"{bucket} is {status.value}")

    return BucketList(
        (
            item(DATA_BUCKET, Status.READ, owner_account="111111111111", mlspace_data=True),
            item(SHARED_BUCKET, shared_status, owner_account=PARTNER_ACCOUNT, description="Partner data"),
            item(READABLE_BUCKET, Status.READ, owner_account=PARTNER_ACCOUNT),
        )
    )


@pytest.fixture
def owner(sandbox: SandboxState) -> Aws:
    return sandbox.aws_for("owner")


@pytest.fixture
def alice_checker(sandbox: SandboxState) -> Iterator[Checker]:
    checker = Checker(sandbox.aws_for("alice@demo"))
    yield checker
    checker.close()


def _cells(browser: BucketBrowser) -> list[list[Any]]:
    """The grid's rows of four cells, the header first."""
    cells = list(browser.listing.children)
    return [cells[i : i + 4] for i in range(0, len(cells), 4)]


def _texts(widget: Any) -> Iterator[str]:
    """Every text a widget tree shows: HTML values, labels, button captions and tooltips, box values."""
    for name in ("value", "description", "tooltip", "placeholder"):
        value = getattr(widget, name, None)
        if isinstance(value, str):
            yield value
    for child in getattr(widget, "children", ()):
        yield from _texts(child)


def test_the_bucket_list_is_a_table_with_full_names_badges_and_drawn_icons(owner: Aws) -> None:
    browser = BucketBrowser(owner, _bucket_list(Status.READ))
    assert browser.ref is None
    assert browser.rows == [("bucket", DATA_BUCKET), ("bucket", SHARED_BUCKET), ("bucket", READABLE_BUCKET)]
    header, data_row, shared_row, readable_row = _cells(browser)
    assert [cell.value for cell in header] == ["", "Bucket", "Access", "Description"]
    assert "MLSpace data" in data_row[2].value
    assert STATUS_COLOURS[Status.READ] in shared_row[2].value and shared_row[3].value == "Partner data"
    assert shared_row[0].value == ICONS["bucket"] and "<svg" in shared_row[0].value
    # the whole name, with the whole name as tooltip too; the grid gives it all the width there is
    assert readable_row[1].description == readable_row[1].tooltip == READABLE_BUCKET
    assert "minmax(0, 1fr)" in browser.listing.layout.grid_template_columns
    assert readable_row[1].layout.width == "100%"

    shared_row[1].click()
    assert browser.ref is not None and (browser.ref.bucket, browser.ref.prefix) == (SHARED_BUCKET, "")
    assert browser.rows == [("folder", "datasets/"), ("folder", "logs/")]
    assert [cell.value for cell in _cells(browser)[0]] == ["", "Name", "Size", "Modified (UTC)"]


def test_folders_come_first_and_clicking_rows_navigates_or_selects(owner: Aws) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/"))
    assert browser.rows == [("folder", "iris/")]
    assert _cells(browser)[1][0].value == ICONS["folder"]
    browser.row_button("iris/").click()
    assert browser.rows == [("object", "README.txt"), ("object", "iris.csv")]
    _, readme, iris = _cells(browser)
    assert readme[0].value == ICONS["text"] and iris[0].value == ICONS["table"]
    assert iris[2].value.endswith(" KiB") and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", iris[3].value)
    assert browser.actions.layout.display == "none"
    browser.row_button("iris.csv").click()
    assert browser.selected_key == IRIS
    assert browser.actions.layout.display == ""
    assert "s3magic-selected" in iris[1]._dom_classes
    browser.row_button("README.txt").click()
    assert "s3magic-selected" not in iris[1]._dom_classes
    assert "s3magic-selected" in readme[1]._dom_classes


def test_load_more_appends_one_page_per_click_and_disappears_at_the_end(owner: Aws) -> None:
    requests = ListRequests(owner)
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "logs/2026/11/"), page_size=7)
    assert requests.count == 1
    assert browser.rows == [("folder", day) for day in DAYS[:7]]
    assert browser.has_more and browser.load_more_button.layout.display == ""
    for pages in (2, 3, 4):
        browser.load_more_button.click()
        assert requests.count == pages
        assert browser.rows == [("folder", day) for day in DAYS[: 7 * pages]]
    assert not browser.has_more
    assert browser.load_more_button.layout.display == "none"
    browser.load_more()
    assert requests.count == 4


def test_every_object_under_logs_pages_with_load_more(owner: Aws) -> None:
    """``logs/`` holds one folder at its level but 300 objects below: listed flat, they come a page a
    click; a thousand-key page is drawn a part at a time without asking S3 again."""
    requests = ListRequests(owner)
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "logs/"), page_size=120)
    assert browser.rows == [("folder", "2026/")]
    browser.recursive_box.value = True  # ticking "Every object below"
    assert requests.count == 2
    assert len(browser.rows) == 120 and {kind for kind, _ in browser.rows} == {"object"}
    assert browser.rows[0][1].startswith("2026/11/") and browser.has_more
    browser.load_more_button.click()
    browser.load_more_button.click()
    assert requests.count == 4
    assert len(browser.rows) == len(set(browser.rows)) == LOG_OBJECT_COUNT
    assert not browser.has_more and browser.load_more_button.layout.display == "none"
    assert f"{LOG_OBJECT_COUNT} object(s) loaded" in browser.status_text

    whole = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "logs/"))
    whole.show_every_object(True)
    assert requests.count == 6 and len(whole._objects) == LOG_OBJECT_COUNT
    assert len(whole.rows) == ROWS_SHOWN and whole.has_more
    assert len(whole.listing.children) == 4 * (ROWS_SHOWN + 1)
    whole.load_more()
    assert requests.count == 6 and len(whole.rows) == LOG_OBJECT_COUNT and not whole.has_more
    whole.show_every_object(False)
    assert whole.rows == [("folder", "2026/")]


def test_a_prefix_larger_than_a_page_is_listed_one_page_per_request(owner: Aws) -> None:
    requests = ListRequests(owner)
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET), page_size=5)
    browser.open_prefix("logs/2026/11/01/")  # 11 objects
    assert requests.count == 2
    assert len(browser.rows) == 5 and {kind for kind, _ in browser.rows} == {"object"}
    browser.load_more()
    browser.load_more()
    assert requests.count == 4
    assert len(browser.rows) == len(set(browser.rows)) == 11
    assert "11 object(s) loaded" in browser.status_text


def test_the_filter_works_on_loaded_rows_without_a_request(owner: Aws) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "logs/2026/11/"), page_size=14)
    requests = ListRequests(owner)
    browser.apply_filter("1")
    assert browser.rows == [("folder", day) for day in DAYS[:14] if "1" in day]
    browser.filter_box.value = "0"  # typing in the box
    assert browser.rows == [("folder", day) for day in DAYS[:10]]
    assert len(browser.listing.children) == 4 * 11
    assert "10 match '0'" in browser.status_text
    browser.load_more()
    assert browser.rows == [("folder", day) for day in DAYS if "0" in day]  # the filter holds for new rows
    assert requests.count == 1
    browser.apply_filter("")
    assert len(browser.rows) == 28
    assert requests.count == 1
    browser.apply_filter("no such name")
    assert browser.rows == [] and browser.listing.children == ()


def test_breadcrumbs_lead_back_up_and_to_the_bucket_list(owner: Aws) -> None:
    browser = BucketBrowser(owner, _bucket_list(Status.READ), start=BucketRef(SHARED_BUCKET, "logs/2026/11/"))
    assert browser.breadcrumbs == ["All buckets", SHARED_BUCKET, "logs/", "2026/", "11/"]
    browser.crumbs.children[3].click()
    assert browser.ref == BucketRef(SHARED_BUCKET, "logs/2026/")
    assert browser.rows == [("folder", "11/")]
    browser.crumbs.children[1].click()
    assert browser.rows == [("folder", "datasets/"), ("folder", "logs/")]
    assert browser.breadcrumbs == ["All buckets", SHARED_BUCKET]
    browser.crumbs.children[0].click()
    assert browser.ref is None and browser.rows[0] == ("bucket", DATA_BUCKET)
    browser.open_bucket(READABLE_BUCKET)
    assert browser.rows == [("folder", "reference/"), ("object", "README.txt")]
    browser.back_to_buckets()
    assert browser.ref is None


def test_copy_path_snippet_and_preview_act_on_an_object(owner: Aws) -> None:
    shell = FakeShell()
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/iris/"), shell=shell)
    browser.row_button("iris.csv").click()
    copy, insert, show, _ = browser.actions.children[1:]
    assert [copy.description, insert.description, show.description] == [
        "Copy s3:// path",
        "Insert snippet",
        "Preview",
    ]
    copy.click()
    assert browser.selected_path == browser.path_text.value == f"s3://{SHARED_BUCKET}/{IRIS}"
    browser.path_text.value = "edited"  # the box is for copying; an edit does not stick
    assert browser.path_text.value == f"s3://{SHARED_BUCKET}/{IRIS}"

    insert.click()
    assert shell.inputs == [snippet(SHARED_BUCKET, IRIS)]
    assert "pd.read_csv" in shell.inputs[0]
    assert browser.snippet_area.value == shell.inputs[0]

    show.click()  # a CSV: its header and first rows as a table
    shown = browser.preview_area.value
    assert "first 1.0 KiB" in shown
    header = re.findall(r"<th>([^<]*)</th>", shown)
    assert header == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert shown.count("<tr>") == 11 and "<td>setosa</td>" in shown

    browser.show_preview("datasets/iris/README.txt")  # a text: its lines
    assert "<pre>A small iris-shaped dataset" in browser.preview_area.value

    browser.open_prefix("datasets/")
    assert browser.selected_path is None and browser.preview_area.value == ""


def test_without_a_shell_the_snippet_is_shown(owner: Aws) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/iris/"))
    browser.insert_snippet("datasets/iris/README.txt")
    assert "s3.get_object(" in browser.snippet_area.value
    assert browser.snippet_area.layout.display == ""


@pytest.mark.parametrize(
    ("key", "reader"),
    [
        ("d/t.csv", "pd.read_csv("),
        ("d/t.parquet", "pd.read_parquet("),
        ("d/t.json", "pd.read_json("),
        ("d/model.bin", "s3.get_object("),
        ('d/it\'s "x"\n<b>.csv', "pd.read_csv("),
        ("d/a'''\n\\\"b.bin", "s3.get_object("),
    ],
)
def test_snippets_per_kind_are_valid_python_for_any_key(owner: Aws, key: str, reader: str) -> None:
    shell = FakeShell()
    browser = BucketBrowser(owner, None, start=BucketRef(READABLE_BUCKET), shell=shell)
    browser.insert_snippet(key)
    (code,) = shell.inputs
    assert reader in code
    literals = [
        node.value
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert key in literals


def test_download_streams_into_the_working_folder_with_progress(owner: Aws, tmp_path: Path) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/iris/"), workdir=tmp_path)
    seen: list[int] = []
    browser.progress.observe(lambda change: seen.append(change["new"]), names="value")
    browser.row_button("iris.csv").click()
    button = browser.actions.children[4]
    assert button.description == "Download" and button.tooltip.endswith("at most 1.0 GiB")
    button.click()
    expected = owner.client("s3").get_object(Bucket=SHARED_BUCKET, Key=IRIS)["Body"].read()
    assert browser.downloaded == tmp_path / "iris.csv"
    assert (tmp_path / "iris.csv").read_bytes() == expected
    assert browser.progress.value == browser.progress.max == 100 and seen[-1] == 100
    assert browser.progress.bar_style == "success"
    assert "iris.csv" in browser.download_status.value and browser.download_box.layout.display == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == ["iris.csv"]  # no partial file left

    browser.download(IRIS)  # a second copy never replaces the first
    assert browser.downloaded == tmp_path / "iris-1.csv"
    assert (tmp_path / "iris-1.csv").read_bytes() == expected


def test_a_download_over_the_limit_is_refused_before_reading(owner: Aws, tmp_path: Path) -> None:
    browser = BucketBrowser(
        owner, None, start=BucketRef(SHARED_BUCKET, "datasets/iris/"), workdir=tmp_path, download_limit=1024
    )
    browser.download(IRIS)
    message = browser.download_status.value
    assert "over the 1.0 KiB download limit" in message and "Insert snippet" in message
    assert browser.downloaded is None and browser.progress.bar_style == "danger"
    assert list(tmp_path.iterdir()) == []
    browser.download("datasets/iris/README.txt")  # under the limit
    assert browser.downloaded == tmp_path / "README.txt"


def test_a_denied_bucket_shows_one_message_from_the_check_and_a_request_area(
    sandbox: SandboxState, alice_checker: Checker
) -> None:
    alice = sandbox.aws_for("alice@demo")
    browser = BucketBrowser(alice, None, checker=alice_checker, start=BucketRef(SHARED_BUCKET))
    assert browser.denied == BucketRef(SHARED_BUCKET)
    assert browser.report is not None and browser.report.verdict("list") is Verdict.DENIED
    blocked = browser.report.capabilities["list"].blocked_by
    message = browser.error_html.split("<details>")[0]
    assert message.count("denied") == 1 and all(layer in message for layer in blocked)
    shown = re.sub("<details>.*</details>", "", " ".join(_texts(browser)), flags=re.S)
    assert shown.lower().count("denied") == 1  # the check's report is folded away below it
    assert "<details><summary>The check's report</summary>" in browser.error_html
    (note,) = browser.request_area.children  # no endpoint given: it says how to configure one
    assert "S3Access.admin_url" in note.value
    assert browser.request_area.layout.display == ""
    assert browser.listing.layout.display == "none" and browser.rows == []
    assert browser.status.layout.display == "none"  # no "0 objects loaded" under the message


def test_a_bucket_listed_as_denied_is_explained_without_listing_it(
    sandbox: SandboxState, alice_checker: Checker
) -> None:
    alice = sandbox.aws_for("alice@demo")
    browser = BucketBrowser(alice, _bucket_list(Status.DENIED), checker=alice_checker)
    requests = ListRequests(alice)
    assert browser.request_area.layout.display == "none"
    browser.open_bucket(SHARED_BUCKET)
    assert requests.count == 0
    message = browser.error_html.split("<details>")[0]
    assert message.count("denied") == 1 and f"{SHARED_BUCKET} is denied" not in browser.error_html
    assert "<table>" in browser.error_html
    assert browser.request_area.layout.display == ""
    browser.open_bucket(READABLE_BUCKET)
    assert browser.denied is None and browser.request_area.layout.display == "none"
    assert browser.rows == [("folder", "reference/"), ("object", "README.txt")]


def test_icons_and_every_text_shown_need_no_emoji_font(owner: Aws) -> None:
    assert all(icon.startswith("<svg") and 'fill="currentColor"' in icon for icon in ICONS.values())
    assert not any(EMOJI.search(icon) for icon in ICONS.values())
    assert "var(--jp-" in STYLE and not EMOJI.search(STYLE)
    browser = BucketBrowser(owner, _bucket_list(Status.READ))
    browser.open_bucket(f"{SHARED_BUCKET}/datasets/iris/")
    browser.select(IRIS)
    texts = list(_texts(browser))
    assert any("<svg" in text for text in texts)
    assert [text for text in texts if EMOJI.search(text)] == []
    assert all(not isinstance(w, widgets.Select) for w in browser.children)


def test_errors_that_are_not_denials_are_shown_as_they_are(owner: Aws) -> None:
    browser = BucketBrowser(owner, _bucket_list(Status.READ))
    browser.open_bucket("no-such-bucket-here")
    assert "no bucket named no-such-bucket-here" in browser.error_html and browser.denied is None
    browser.open_bucket("Not A Bucket!")
    assert "not a valid S3 bucket name" in browser.error_html
    browser.close()


def test_hostile_keys_are_text_in_the_listing_and_literals_in_snippets(
    fresh_sandbox: SandboxState, tmp_path: Path
) -> None:
    owner = fresh_sandbox.aws_for("owner")
    key = "odd/<img src=x onerror=alert(1)>'\" &amp;.csv"  # S3 keys hold any text (moto's no newline)
    owner.client("s3").put_object(Bucket=READABLE_BUCKET, Key=key, Body=b"a,b\n<i>1</i>,2\n")
    shell = FakeShell()
    browser = BucketBrowser(
        owner, None, start=BucketRef(READABLE_BUCKET, "odd/"), shell=shell, workdir=tmp_path
    )
    name = key.removeprefix("odd/")
    assert browser.rows == [("object", name)]
    browser.row_button(name).click()
    assert browser.row_button(name).description == name  # a button's caption is text, never HTML
    assert "&lt;img" in browser.selection.value and "<img" not in browser.selection.value
    browser.show_preview(key)
    assert (
        "<td>&lt;i&gt;1&lt;/i&gt;</td>" in browser.preview_area.value
        and "<img" not in browser.preview_area.value
    )
    browser.insert_snippet(key)
    assert key in {
        node.value for node in ast.walk(ast.parse(shell.inputs[0])) if isinstance(node, ast.Constant)
    }
    browser.download(key)
    assert browser.downloaded is not None and browser.downloaded.parent == tmp_path
    assert "\n" not in browser.downloaded.name and browser.downloaded.read_bytes().startswith(b"a,b")


def test_a_bucket_the_list_found_denied_but_the_check_now_reads_is_listed(owner: Aws) -> None:
    """The list's statuses are kept for the session; a grant applied since should not need a refresh."""
    browser = BucketBrowser(owner, _bucket_list(Status.DENIED))
    browser.open_bucket(SHARED_BUCKET)
    assert browser.denied is None and browser.error_html == ""
    assert browser.rows == [("folder", "datasets/"), ("folder", "logs/")]
    browser.close()


def test_upload_puts_a_working_folder_file_into_the_level_and_lists_it(
    fresh_sandbox: SandboxState, alice_checker: Checker, tmp_path: Path
) -> None:
    """As alice, into her own prefix of the MLSpace data bucket; a second upload of the same name keeps the
    object unless Replace is asked for."""
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    alice = fresh_sandbox.aws_for("alice@demo")
    browser = BucketBrowser(
        alice, None, checker=alice_checker, start=BucketRef(DATA_BUCKET, "private/alice/"), workdir=tmp_path
    )
    browser.upload("results.csv")
    assert browser.uploaded == f"s3://{DATA_BUCKET}/private/alice/results.csv"
    assert ("object", "results.csv") in browser.rows
    assert browser.progress.value == 100 and browser.progress.bar_style == "success"
    body = alice.client("s3").get_object(Bucket=DATA_BUCKET, Key="private/alice/results.csv")["Body"]
    assert body.read() == b"a,b\n1,2\n"

    (tmp_path / "results.csv").write_text("a,b\n3,4\n")
    browser.upload("results.csv")
    assert browser.uploaded is None and "already exists" in browser.download_status.value
    browser.upload("results.csv", overwrite=True)
    body = alice.client("s3").get_object(Bucket=DATA_BUCKET, Key="private/alice/results.csv")["Body"]
    assert body.read() == b"a,b\n3,4\n"


def test_an_upload_s3_refuses_says_what_the_check_knows_and_a_missing_file_is_named(
    sandbox: SandboxState, alice_checker: Checker, tmp_path: Path
) -> None:
    (tmp_path / "results.csv").write_text("a,b\n")
    browser = BucketBrowser(
        sandbox.aws_for("alice@demo"),
        None,
        checker=alice_checker,
        start=BucketRef(READABLE_BUCKET),
        workdir=tmp_path,
    )
    browser.upload("results.csv")
    status = browser.download_status.value
    assert browser.uploaded is None and browser.progress.bar_style == "danger"
    assert "s3:PutObject" in status and "Open the check for the fixes." in status
    browser.upload("nothing.csv")
    assert "nothing.csv is not a file of the working folder" in browser.download_status.value
