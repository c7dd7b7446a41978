"""The sidebar browser's routes: ``preview`` (a CSV's first rows, a text's first lines) and ``browse``'s
paging, as alice@demo against the sandbox."""

from __future__ import annotations

import pytest

from mlspace_s3magic.core.browse import PREVIEW_ROWS
from mlspace_s3magic.sandbox.world import DATA_BUCKET, READABLE_BUCKET, SHARED_BUCKET

from .conftest import Fetch, get_json, refused


async def test_a_csv_preview_is_its_header_and_first_rows_parsed(jp_fetch: Fetch) -> None:
    shown = await get_json(jp_fetch, "preview", bucket=READABLE_BUCKET, key="reference/countries.csv")
    assert shown["table"] == [["code", "name"], ["FR", "France"], ["JP", "Japan"], ["US", "United States"]]
    assert shown["kind"] == "table" and shown["binary"] is False and shown["truncated"] is False
    assert shown["uri"] == f"s3://{READABLE_BUCKET}/reference/countries.csv"
    assert shown["summary"].startswith("all of ")


async def test_a_long_csv_shows_only_whole_rows(jp_fetch: Fetch) -> None:
    """The data bucket's train.csv is longer than the preview's KiB: the row the range cut is left out."""
    shown = await get_json(jp_fetch, "preview", bucket=DATA_BUCKET, key="project/demo/train.csv")
    header, *rows = shown["table"]
    assert len(rows) == PREVIEW_ROWS
    assert all(len(row) == len(header) for row in rows)


async def test_a_text_preview_is_its_first_lines(jp_fetch: Fetch) -> None:
    shown = await get_json(jp_fetch, "preview", bucket=READABLE_BUCKET, key="README.txt")
    assert shown["lines"] == ["Reference data the partner shares with MLSpace, read-only."]
    assert shown["table"] is None and shown["kind"] == "text"


async def test_a_denied_object_is_403_naming_the_check(jp_fetch: Fetch) -> None:
    status, message = await refused(
        jp_fetch, "preview", params={"bucket": SHARED_BUCKET, "key": "datasets/iris/iris.csv"}
    )
    assert status == 403
    assert f"check {SHARED_BUCKET}" in message


async def test_a_missing_object_is_404(jp_fetch: Fetch) -> None:
    status, message = await refused(
        jp_fetch, "preview", params={"bucket": READABLE_BUCKET, "key": "nope.csv"}
    )
    assert status == 404
    assert "nope.csv" in message


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bucket": READABLE_BUCKET}, "key"),
        ({"bucket": READABLE_BUCKET, "key": "reference/"}, "folder"),
        ({"bucket": READABLE_BUCKET, "key": "k" * 1025}, "key"),
        ({"bucket": READABLE_BUCKET, "key": "é" * 600}, "1024 bytes"),  # 600 characters, 1,200 bytes
        ({"bucket": "a/b", "key": "README.txt"}, "a/b"),
    ],
)
async def test_a_bad_key_or_bucket_is_400_naming_it(
    jp_fetch: Fetch, params: dict[str, str], named: str
) -> None:
    status, message = await refused(jp_fetch, "preview", params=params)
    assert status == 400
    assert named in message


async def test_browse_pages_by_the_size_asked_and_lists_all_below_when_recursive(jp_fetch: Fetch) -> None:
    """Alice's project prefix, one object per page; and every object below a level, without its folders."""
    asked = {"bucket": DATA_BUCKET, "prefix": "project/demo/", "page_size": "1"}
    first = await get_json(jp_fetch, "browse", **asked)
    (one,) = first["objects"]
    assert first["next_token"]
    rest = await get_json(jp_fetch, "browse", **asked, continuation=first["next_token"])
    (two,) = rest["objects"]
    assert rest["next_token"] is None
    assert {one["name"], two["name"]} == {"notes.md", "train.csv"}
    level = await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET)
    below = await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET, recursive="true")
    assert (level["folders"], [o["name"] for o in level["objects"]]) == (["reference/"], ["README.txt"])
    assert (below["folders"], [o["name"] for o in below["objects"]]) == (
        [],
        ["README.txt", "reference/countries.csv"],
    )


@pytest.mark.parametrize("size", ["0", "1001", "ten", "-1"])
async def test_a_bad_page_size_is_400(jp_fetch: Fetch, size: str) -> None:
    status, message = await refused(jp_fetch, "browse", params={"bucket": READABLE_BUCKET, "page_size": size})
    assert status == 400
    assert "page_size" in message
