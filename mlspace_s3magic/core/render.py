"""Plain-text and HTML tables shared by every result object, so all shells show results the same way."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

Row = tuple[str, str]


class Rendered:
    """A result every shell can show: ``str()`` for terminals, ``_repr_html_`` for notebooks.

    ``repr()`` is the same text, so IPython's plain-text display matches the CLI; dataclasses that inherit
    this must say ``repr=False`` or their generated repr would win.
    """

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        raise NotImplementedError


def text_table(rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """Two aligned columns, then the notes as a bulleted list."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [f"{label.ljust(width)}  {value}" for label, value in rows]
    if notes:
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in notes)
    return "\n".join(lines)


def html_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """The same table as HTML; every value is escaped, since ARNs and tags come from AWS, not from us."""
    body = "".join(
        f'<tr><th style="text-align:left;padding-right:1em">{escape(label)}</th>'
        f'<td style="text-align:left"><code>{escape(value)}</code></td></tr>'
        for label, value in rows
    )
    notes_html = "<ul>" + "".join(f"<li>{escape(note)}</li>" for note in notes) + "</ul>" if notes else ""
    return f"<div><strong>{escape(title)}</strong><table>{body}</table>{notes_html}</div>"
