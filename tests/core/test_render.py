"""The one table renderer and the one status colour map every result (and the sidebar's CSS) shares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlspace_s3magic.core.check import Verdict
from mlspace_s3magic.core.reachability import Status
from mlspace_s3magic.core.render import GREY, STATUS_COLOURS, Cell, badge, columns

CSS = Path(__file__).parents[2] / "labextension" / "style" / "base.css"


def test_text_pads_every_column_but_the_last_and_lists_lines_under_their_row() -> None:
    table = columns(
        ("id", "status", "reason"),
        [("r1", Cell("denied", status=True), "needs it"), ("request-2", "ok", "")],
        below=[["wrote the bucket policy"], []],
    )
    assert table.text().splitlines() == [
        "id         status  reason",
        "r1         denied  needs it",
        "    - wrote the bucket policy",
        "request-2  ok",
    ]


def test_text_is_inert_in_a_terminal() -> None:
    table = columns(("name", "note"), [("a\x1b[2Kb", "c\u202ed")], below=[["e\rf"]])
    assert "\x1b" not in table.text() and "\u202e" not in table.text() and "\r" not in table.text()
    assert "a\\x1b[2Kb" in table.text()


def test_html_escapes_every_text_and_paints_statuses_from_the_one_map() -> None:
    hostile = "<script>alert(1)</script>"
    html = columns(
        (hostile, "status"),
        [(Cell(hostile, code=True), Cell("list-only", status=True))],
        below=[[hostile]],
    ).html()
    assert "<script>" not in html and html.count("&lt;script&gt;") == 3
    assert html.startswith("<table><tr><th>&lt;script&gt;")
    assert f"background:{STATUS_COLOURS['list-only']}" in html and ">list-only</span>" in html
    assert '<td colspan="2"' in html


def test_a_table_without_header_labels_each_row() -> None:
    table = columns((), [(Cell("Caller", heading=True), Cell("arn:aws:sts::1:x", code=True, align="left"))])
    assert table.text() == "Caller  arn:aws:sts::1:x"
    assert table.html() == (
        '<table><tr><th style="text-align:left;padding-right:1em">Caller</th>'
        '<td style="text-align:left"><code>arn:aws:sts::1:x</code></td></tr></table>'
    )


def test_rows_must_fit_the_header() -> None:
    with pytest.raises(ValueError, match="same number of cells"):
        columns(("a", "b"), [("only one",)])
    with pytest.raises(ValueError, match="one list of lines per row"):
        columns(("a",), [("x",), ("y",)], below=[["under x"]])


def test_every_status_and_verdict_has_its_colour_and_other_words_are_grey() -> None:
    assert {*Status, *Verdict} <= STATUS_COLOURS.keys()
    assert GREY in badge("pending")


def _painted_by_css() -> dict[str, str]:
    """Each status or verdict word base.css paints, with its theme variable; "" is a badge's own colour."""
    css = CSS.read_text()
    palette = dict(re.findall(r"--s3access-(\w+):\s*var\((--jp-[\w-]+)\);", css))
    painted = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        colour = re.search(r"background: var\(--s3access-(\w+)\)", body)
        if colour is None:
            continue
        if selectors.strip() == ".s3access-badge":
            painted[""] = palette[colour[1]]
        for word in re.findall(r"\[data-(?:status|verdict)='([\w-]+)'\]", selectors):
            painted[word] = palette[colour[1]]
    return painted


def _variable(colour: str) -> str:
    """``--jp-success-color1`` of ``var(--jp-success-color1, #1a7f37)``."""
    found = re.fullmatch(r"var\((--jp-[\w-]+), #[0-9a-f]{6}\)", colour)
    assert found, colour
    return found[1]


def test_the_sidebar_paints_its_badges_with_the_same_colours() -> None:
    """A word the CSS gives no rule of its own gets the badge's grey, as ``badge`` does here."""
    painted = _painted_by_css()
    assert painted.pop("") == _variable(GREY)
    assert painted == {word: _variable(colour) for word, colour in STATUS_COLOURS.items() if colour != GREY}
