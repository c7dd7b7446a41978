"""Plain-text and HTML tables shared by every result object, so all shells show results the same way."""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

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


def text_table(rows: Sequence[Row], notes: Sequence[str] = ()) -> str:
    """Two aligned columns, then the notes as a bulleted list."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [f"{label.ljust(width)}  {terminal_safe(value)}" for label, value in rows]
    if notes:
        lines.append("Notes:")
        lines.extend(f"  - {terminal_safe(note)}" for note in notes)
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
