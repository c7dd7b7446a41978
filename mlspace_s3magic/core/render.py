"""Plain-text and HTML tables shared by every result object, so all shells show results the same way."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

Row = tuple[str, str]
# C0 and C1 control characters (escape sequences start with one), Unicode's line and paragraph separators,
# and every bidirectional control (marks, embeddings, overrides, isolates), which can make a terminal show
# text other than what it holds; newlines are kept only where a text may span lines.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")
_UNSAFE_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}]")


def terminal_safe(text: str, *, lines: bool = False) -> str:
    """Text for a terminal, every control character shown as its escape (``\x1b``) instead of acting, so
    a request's reason cannot rewrite what an admin sees; ``lines`` keeps newlines."""
    pattern = _UNSAFE if lines else _UNSAFE_ONE_LINE
    return pattern.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def without_controls(text: str, *, lines: bool = False) -> str:
    """Text with its control characters removed, for input that is kept (a request's reason)."""
    return (_UNSAFE if lines else _UNSAFE_ONE_LINE).sub("", text)


class Rendered:
    """A result every shell can show: ``str()`` for terminals, ``_repr_html_`` for notebooks.

    ``repr()`` is the same text, so IPython's plain-text display matches the CLI; dataclasses that inherit
    this must say ``repr=False`` or their generated repr would win.
    """

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        raise NotImplementedError


# One colour per status word, for a bucket's reach and a capability's verdict alike; the sidebar's CSS
# (labextension/style/base.css) paints its badges with the same four.
# Each status colour is the theme's own where JupyterLab shows the output, so the light and the dark theme
# both keep their contrast, with a fallback where no theme is (nbviewer, an exported page); the sidebar's
# labextension/style/base.css paints with the same theme variables.
THEME_COLOURS: Mapping[str, tuple[str, str]] = {
    "green": ("--jp-success-color1", "#1a7f37"),
    "amber": ("--jp-warn-color0", "#9a6700"),
    "red": ("--jp-error-color1", "#cf222e"),
    "grey": ("--jp-inverse-layout-color3", "#6e7781"),
}
GREEN, AMBER, RED, GREY = (f"var({variable}, {fallback})" for variable, fallback in THEME_COLOURS.values())
ON_COLOUR = "var(--jp-ui-inverse-font-color1, white)"  # text on a status colour: white, or dark on dark
STATUS_COLOURS: Mapping[str, str] = {
    "read-write": GREEN,
    "read": GREEN,
    "allowed": GREEN,
    "list-only": AMBER,
    "denied": RED,
    "missing": GREY,
    "unknown": GREY,
}
_LEFT = "text-align:left"
_ALIGN = {"left": _LEFT, "right": "text-align:right"}


def badge(status: str) -> str:
    """A status word as a coloured badge; a word without a colour of its own is grey."""
    colour = STATUS_COLOURS.get(status, GREY)
    return (
        f'<span style="background:{colour};color:{ON_COLOUR};border-radius:4px;padding:0 6px">'
        f"{escape(status)}</span>"
    )


@dataclass(frozen=True)
class Cell:
    """A cell whose HTML shows more than its text (in a terminal it is just ``text``).

    ``code`` sets it in monospace (names, ARNs), ``status`` paints it as a badge, ``heading`` makes it
    its row's label (``<th>``), and ``align`` overrides a notebook's own alignment (JupyterLab's is right).
    """

    text: str
    code: bool = False
    status: bool = False
    heading: bool = False
    align: Literal["left", "right"] | None = None

    def html(self) -> str:
        if self.status:
            content = badge(self.text)
        elif self.code:
            content = f"<code>{escape(self.text)}</code>"
        else:
            content = escape(self.text)
        if self.heading:
            return f'<th style="{_LEFT};padding-right:1em">{content}</th>'
        style = f' style="{_ALIGN[self.align]}"' if self.align else ""
        return f"<td{style}>{content}</td>"


@dataclass(frozen=True)
class Columns:
    """A table with one text form (aligned columns) and one HTML form, built by :func:`columns`."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    below: tuple[tuple[str, ...], ...]

    def text(self) -> str:
        """Every column but the last padded to its widest cell; each row's ``below`` lines as bullets
        under it; every cell made inert for a terminal."""
        header = [tuple(terminal_safe(title) for title in self.header)] if self.header else []
        cells = [tuple(terminal_safe(cell.text) for cell in row) for row in self.rows]
        widths = [max(map(len, column)) for column in zip(*header, *cells, strict=True)][:-1]

        def line(row: tuple[str, ...]) -> str:
            padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            return "  ".join([*padded, row[-1]]).rstrip()

        shown = [line(row) for row in header]
        for row, notes in zip(cells, self.below or [()] * len(cells), strict=True):
            shown.append(line(row))
            shown.extend(f"    - {terminal_safe(note)}" for note in notes)
        return "\n".join(shown)

    def html(self) -> str:
        """The same table as HTML: every text is escaped, since names, ARNs and reasons come from outside;
        each row's ``below`` lines under it, across the row."""
        head = "<tr>" + "".join(f"<th>{escape(title)}</th>" for title in self.header) + "</tr>"
        body = []
        for row, notes in zip(self.rows, self.below or [()] * len(self.rows), strict=True):
            body.append("<tr>" + "".join(cell.html() for cell in row) + "</tr>")
            if notes:
                items = "".join(f"<li>{escape(note)}</li>" for note in notes)
                body.append(f'<tr><td colspan="{len(row)}" style="{_LEFT}"><ul>{items}</ul></td></tr>')
        return f"<table>{head if self.header else ''}{''.join(body)}</table>"


def columns(
    header: Sequence[str], rows: Sequence[Sequence[Cell | str]], *, below: Sequence[Sequence[str]] = ()
) -> Columns:
    """The one table every result shows, in a terminal and in a notebook.

    ``header`` may be empty (a table of labelled values); ``below`` holds, per row, lines shown under it
    (what a request changed). A plain ``str`` is a plain cell.
    """
    cells = tuple(tuple(cell if isinstance(cell, Cell) else Cell(cell) for cell in row) for row in rows)
    if len({len(row) for row in cells} | ({len(header)} if header else set())) > 1:
        raise ValueError(f"every row needs the same number of cells (the header's: {list(header)})")
    if below and len(below) != len(cells):
        raise ValueError("below needs one list of lines per row")
    return Columns(tuple(header), cells, tuple(tuple(notes) for notes in below))


def notes_text(notes: Sequence[str]) -> list[str]:
    """Notes under a table, for a terminal."""
    return ["Notes:", *(f"  - {terminal_safe(note)}" for note in notes)] if notes else []


def notes_html(notes: Sequence[str]) -> str:
    """Notes under a table, for a notebook."""
    return "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>" if notes else ""


def _labelled(rows: Sequence[Row]) -> Columns:
    return columns(
        (), [(Cell(label, heading=True), Cell(value, code=True, align="left")) for label, value in rows]
    )


def text_table(rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """Labelled values in two aligned columns, then the notes as a bulleted list."""
    return "\n".join([_labelled(rows).text(), *notes_text(notes)] if rows else notes_text(notes))


def html_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """The same table as HTML, under its title."""
    return f"<div><strong>{escape(title)}</strong>{_labelled(rows).html()}{notes_html(notes)}</div>"
