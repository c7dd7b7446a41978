"""The bucket browser driven through its handlers, as a user's clicks would, against the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import snippet
from mlspace_s3magic.core.check import Checker, Verdict
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.reachability import BucketList, Reachability, Status
from mlspace_s3magic.core.registry import Candidate
from mlspace_s3magic.core.render import STATUS_COLOURS
from mlspace_s3magic.notebook.widgets import BucketBrowser
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import DATA_BUCKET, PARTNER_ACCOUNT, READABLE_BUCKET, SHARED_BUCKET

IRIS = "datasets/iris/iris.csv"
DAYS = [f"{day:02d}/" for day in range(1, 29)]


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


def test_the_bucket_list_shows_a_badge_per_bucket_and_opens_one_on_click(owner: Aws) -> None:
    browser = BucketBrowser(owner, _bucket_list(Status.READ))
    assert browser.ref is None
    assert browser.rows == [("bucket", DATA_BUCKET), ("bucket", SHARED_BUCKET), ("bucket", READABLE_BUCKET)]
    data_row, shared_row, _ = browser.bucket_list.children
    assert "MLSpace data" in data_row.children[1].value
    assert STATUS_COLOURS[Status.READ] in shared_row.children[1].value
    assert "Partner data" in shared_row.children[1].value

    shared_row.children[0].click()
    assert browser.ref is not None and (browser.ref.bucket, browser.ref.prefix) == (SHARED_BUCKET, "")
    assert browser.rows == [("folder", "datasets/"), ("folder", "logs/")]
    assert browser.bucket_list.layout.display == "none"


def test_folders_come_first_and_picking_rows_navigates_or_selects(owner: Aws) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/"))
    assert browser.rows == [("folder", "iris/")]
    browser.entries.value = ("folder", "datasets/iris/")  # what clicking the row does
    assert browser.rows == [("object", "README.txt"), ("object", "iris.csv")]
    assert browser.actions.layout.display == "none"
    browser.entries.value = ("object", IRIS)
    assert browser.selected_key == IRIS
    assert browser.actions.layout.display == ""
    assert "iris.csv" in browser.entries.label and "KiB" in browser.entries.label


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
    assert "10 match '0'" in browser.status_text
    browser.load_more()
    assert browser.rows == [("folder", day) for day in DAYS if "0" in day]  # the filter holds for new rows
    assert requests.count == 1
    browser.apply_filter("")
    assert len(browser.rows) == 28
    assert requests.count == 1


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
    browser.select(IRIS)
    copy, insert, show = browser.actions.children[1:]
    copy.click()
    assert browser.selected_path == browser.path_text.value == f"s3://{SHARED_BUCKET}/{IRIS}"
    browser.path_text.value = "edited"  # the box is for copying; an edit does not stick
    assert browser.path_text.value == f"s3://{SHARED_BUCKET}/{IRIS}"

    insert.click()
    assert shell.inputs == [snippet(SHARED_BUCKET, IRIS)]
    assert "pd.read_csv" in shell.inputs[0]
    assert browser.snippet_area.value == shell.inputs[0]

    show.click()
    assert "sepal_length,sepal_width,petal_length,petal_width,species" in browser.preview_area.value
    assert "first 1.0 KiB" in browser.preview_area.value

    browser.open_prefix("datasets/")
    assert browser.selected_path is None and browser.preview_area.value == ""


def test_without_a_shell_the_snippet_is_shown(owner: Aws) -> None:
    browser = BucketBrowser(owner, None, start=BucketRef(SHARED_BUCKET, "datasets/iris/"))
    browser.insert_snippet("datasets/iris/README.txt")
    assert "s3.get_object(" in browser.snippet_area.value
    assert browser.snippet_area.layout.display == ""


def test_a_denied_bucket_shows_the_check_and_a_request_area(
    sandbox: SandboxState, alice_checker: Checker
) -> None:
    alice = sandbox.aws_for("alice@demo")
    browser = BucketBrowser(alice, None, checker=alice_checker, start=BucketRef(SHARED_BUCKET))
    assert browser.denied == BucketRef(SHARED_BUCKET)
    assert browser.report is not None and browser.report.verdict("list") is Verdict.DENIED
    blocked = browser.report.capabilities["list"].blocked_by
    assert blocked and all(layer in browser.error_html for layer in blocked)
    assert "S3 refused to list" in browser.error_html
    (note,) = browser.request_area.children  # no endpoint given: it says how to configure one
    assert "S3Access.admin_url" in note.value
    assert browser.request_area.layout.display == ""
    assert browser.entries.layout.display == "none" and browser.rows == []
    assert "denied" in browser.status_text


def test_a_bucket_listed_as_denied_is_explained_without_listing_it(
    sandbox: SandboxState, alice_checker: Checker
) -> None:
    alice = sandbox.aws_for("alice@demo")
    browser = BucketBrowser(alice, _bucket_list(Status.DENIED), checker=alice_checker)
    requests = ListRequests(alice)
    assert browser.request_area.layout.display == "none"
    browser.open_bucket(SHARED_BUCKET)
    assert requests.count == 0
    assert f"{SHARED_BUCKET} is denied" in browser.error_html and "<table>" in browser.error_html
    assert browser.request_area.layout.display == ""
    browser.open_bucket(READABLE_BUCKET)
    assert browser.denied is None and browser.request_area.layout.display == "none"
    assert browser.rows == [("folder", "reference/"), ("object", "README.txt")]


def test_errors_that_are_not_denials_are_shown_as_they_are(owner: Aws) -> None:
    browser = BucketBrowser(owner, _bucket_list(Status.READ))
    browser.open_bucket("no-such-bucket-here")
    assert "no bucket named no-such-bucket-here" in browser.error_html and browser.denied is None
    browser.open_bucket("Not A Bucket!")
    assert "not a valid S3 bucket name" in browser.error_html
    browser.close()
