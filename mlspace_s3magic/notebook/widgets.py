"""``BucketBrowser``: the buckets a user may reach, and inside one, a level at a time, a page at a time.

Every action is one call into ``core`` on the calling thread, so the widget costs what the user looks at and
tests can drive it through its handler methods (or its buttons' ``click()``) without a browser.

The listing is a grid of widgets: an icon, the name as a button (a click opens a folder or selects an
object), the size and the date. A row's widgets share one layout and one style, are made once per entry and
kept while the level is open, and at most ``ROWS_SHOWN`` more rows are drawn per *Load more*, so a
thousand-key page stays quick to draw. Icons are inline SVG painted with JupyterLab's theme colours, so they
need no emoji font and follow the light and dark themes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any, Protocol

import ipywidgets as widgets

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import (
    DEFAULT_PAGE_SIZE,
    OTHER,
    TABLE,
    TEXT,
    BrowseDenied,
    ObjectEntry,
    format_size,
    format_time,
    kind_of,
    level_of,
    list_level,
    preview,
    s3_uri,
    snippet,
)
from mlspace_s3magic.core.check import AccessReport, Checker, Verdict
from mlspace_s3magic.core.download import DOWNLOAD_LIMIT, download
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference
from mlspace_s3magic.core.reachability import BucketList, Reachability, Status
from mlspace_s3magic.core.render import badge
from mlspace_s3magic.core.upload import MULTIPART_THRESHOLD, checked_upload
from mlspace_s3magic.notebook.request_form import RequestForm, Submit, failure_html

FOLDER = "folder"
OBJECT = "object"
BUCKET = "bucket"
HIDDEN = "none"
SHOWN = ""
ROWS_SHOWN = 200

_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" '
    'aria-hidden="true" fill="currentColor">{}</svg>'
)
_SHEET = '<path d="M3 1h6.5L13 4.5V15H3zm1 1v12h8V5H9V2z"/>'
# One icon per row kind (and per object kind), drawn, never a character of some font.
ICONS: dict[str, str] = {
    BUCKET: _SVG.format('<path d="M1.5 3h13l-1.6 11.2a1 1 0 0 1-1 .8H4.1a1 1 0 0 1-1-.8z"/>'),
    FOLDER: _SVG.format(
        '<path d="M1 3.5C1 2.7 1.7 2 2.5 2h3.7l1.6 1.6h5.7c.8 0 1.5.7 1.5 1.5v7.4c0 .8-.7 '
        '1.5-1.5 1.5h-11c-.8 0-1.5-.7-1.5-1.5z"/>'
    ),
    TABLE: _SVG.format('<path d="M1 2h14v12H1zm1 3v3h4V5zm5 0v3h7V5zM2 9v4h4V9zm5 0v4h7V9z"/>'),
    TEXT: _SVG.format(_SHEET + '<path d="M5 7h6v1H5zm0 2h6v1H5zm0 2h4v1H5z"/>'),
    OTHER: _SVG.format(_SHEET),
}
# The browser's look, in JupyterLab's own CSS variables (light and dark themes alike), scoped to its class.
STYLE = """<style>
.s3magic-browser .s3magic-grid { align-items: center; }
.s3magic-browser .s3magic-icon { color: var(--jp-ui-font-color2); line-height: 0; }
.s3magic-browser .s3magic-icon-folder, .s3magic-browser .s3magic-icon-bucket {
  color: var(--jp-brand-color1); }
.s3magic-browser .s3magic-name, .s3magic-browser .s3magic-crumb {
  text-align: left; background: transparent; box-shadow: none; padding: 0 4px;
  color: var(--jp-content-link-color); }
.s3magic-browser .s3magic-name:hover, .s3magic-browser .s3magic-crumb:hover {
  text-decoration: underline; background: var(--jp-layout-color2); }
.s3magic-browser .s3magic-name.s3magic-selected {
  background: var(--jp-brand-color1); color: var(--jp-ui-inverse-font-color1); }
.s3magic-browser .s3magic-head { font-weight: bold; color: var(--jp-ui-font-color1);
  border-bottom: var(--jp-border-width) solid var(--jp-border-color2); }
.s3magic-browser .s3magic-size { text-align: right; font-variant-numeric: tabular-nums; }
.s3magic-browser .s3magic-meta { color: var(--jp-ui-font-color2); white-space: nowrap; }
.s3magic-browser .s3magic-preview table { border-collapse: collapse; }
.s3magic-browser .s3magic-preview td, .s3magic-browser .s3magic-preview th {
  border: var(--jp-border-width) solid var(--jp-border-color2); padding: 0 6px; text-align: left; }
</style>"""
HEADINGS = {BUCKET: ("", "Bucket", "Access", "Description"), OBJECT: ("", "Name", "Size", "Modified (UTC)")}


class Shell(Protocol):
    """The part of IPython's shell the browser uses: filling the next cell."""

    def set_next_input(self, text: str, /) -> Any: ...


class AccessCheck(Protocol):
    """What explains a denied bucket: the session (which takes the owner from the registry, as every
    shell's check does) or, without one, a bare ``Checker``."""

    def check(self, ref: BucketRef, /, *, need: str = "read") -> AccessReport: ...


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = SHOWN if visible else HIDDEN


def _badge(item: Reachability) -> str:
    """The status badge every table shows, with the probe's detail as its tooltip."""
    shown = f"<span title='{escape(item.detail)}'>{badge(item.status.value)}</span>"
    if item.candidate.mlspace_data:
        shown += (
            " <span style='border:var(--jp-border-width) solid var(--jp-brand-color1);border-radius:4px;"
            "padding:0 6px'>MLSpace data</span>"
        )
    return shown


def _denied_message(ref: BucketRef, report: AccessReport) -> str:
    """The one sentence a denied bucket gets, from the check: what may not be done, and which layers
    block it (the report below it says what must change)."""
    listing = report.capabilities.get("list")
    layers = ", ".join(listing.blocked_by) if listing is not None and listing.blocked_by else ""
    because = f": blocked by {layers}" if layers else ""
    return f"Access denied: you may not list {ref}{because}. The check below says what must change."


def _preview_html(bucket: str, key: str, aws: Aws) -> str:
    """A few rows of a CSV as a table, the first lines of a text, or what a binary object is."""
    shown = preview(aws, bucket, key)
    head = f"<div><code>{escape(s3_uri(bucket, key))}</code> ({escape(shown.summary())})</div>"
    table = shown.table()
    if table:
        header, *rows = table
        cells = "".join(f"<th>{escape(cell)}</th>" for cell in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"{head}<table><tr>{cells}</tr>{body}</table>"
    if shown.text is None:
        return head
    return f"{head}<pre>{escape(chr(10).join(shown.lines()))}</pre>"


@dataclass
class _Row:
    """One row of the grid: what it stands for, and its widgets (made once, drawn while it is shown)."""

    kind: str
    full: str
    name: str
    cells: tuple[Any, ...]

    @property
    def button(self) -> Any:
        return self.cells[1]


class BucketBrowser(widgets.VBox):  # type: ignore[misc]  # a subclass of an untyped class
    """Browse S3 in a notebook: bucket list, breadcrumbs, one level of folders and objects, object actions
    (copy the ``s3://`` path, insert a snippet, preview, download into the working folder), and an upload of
    a file of the working folder into the level shown.

    A denied bucket shows one message from the check's report (which layers block it), the report itself,
    and, in ``request_area``, a form that files an access request through ``request_access`` when the
    admin endpoint is configured.
    """

    def __init__(
        self,
        aws: Aws,
        buckets: BucketList | None,
        *,
        checker: AccessCheck | None = None,
        start: BucketRef | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        shell: Shell | None = None,
        request_access: Submit | None = None,
        workdir: Path | None = None,
        download_limit: int = DOWNLOAD_LIMIT,
    ):
        super().__init__()
        self.add_class("s3magic-browser")
        self.request_access = request_access
        self.aws = aws
        self.buckets = buckets
        self.page_size = page_size
        self.shell = shell
        self.workdir = workdir
        self.download_limit = download_limit
        self._checker = checker
        self._own_checker: Checker | None = None
        self._reachability = {item.candidate.bucket: item for item in buckets.items} if buckets else {}
        self.ref: BucketRef | None = None
        self.recursive = False
        self._folders: list[str] = []
        self._objects: list[ObjectEntry] = []
        self._next_token: str | None = None
        self._filter = ""
        self._shown = ROWS_SHOWN
        self._quiet = False  # set while the code, not the user, changes a box's value
        self._rows: dict[tuple[str, str], _Row] = {}
        self.selected_key: str | None = None
        self.selected_path: str | None = None
        self.downloaded: Path | None = None
        self.uploaded: str | None = None  # the s3:// path of the last upload
        self.denied: BucketRef | None = None
        self.report: AccessReport | None = None

        # Shared by every row: one layout and one style model each, however many rows there are.
        self._cell_layout = widgets.Layout(min_width="0")
        self._name_layout = widgets.Layout(width="100%", min_width="0", margin="0")
        self._name_style = widgets.ButtonStyle()  # its colours come from STYLE, so a selected row can differ
        self._html_style = widgets.widget_string.HTMLStyle()

        self.crumbs = widgets.HBox()
        self.status = widgets.Label()
        self.filter_box = widgets.Text(
            placeholder="Filter the loaded entries", continuous_update=True, layout=widgets.Layout(flex="1")
        )
        self.filter_box.observe(self._on_filter, names="value")
        self.recursive_box = widgets.Checkbox(description="Every object below (no folders)", indent=False)
        self.recursive_box.observe(self._on_recursive, names="value")
        self.upload_path = widgets.Text(
            placeholder="A file of the working folder, e.g. results.csv",
            layout=widgets.Layout(flex="1"),
        )
        self.upload_replace = widgets.Checkbox(description="Replace an existing object", indent=False)
        self.upload_button = widgets.Button(
            description="Upload here",
            icon="upload",
            tooltip=(
                "Copy the file into the level shown, if the check allows writing there; in parts above "
                f"{format_size(MULTIPART_THRESHOLD)}, never over an object unless Replace is ticked"
            ),
        )
        self.upload_button.on_click(
            lambda _: self.upload(self.upload_path.value.strip(), overwrite=self.upload_replace.value)
        )
        self.toolbar = widgets.VBox(
            [
                widgets.HBox([self.filter_box, self.recursive_box]),
                widgets.HBox([self.upload_path, self.upload_replace, self.upload_button]),
            ]
        )
        self.listing = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns="20px minmax(0, 1fr) max-content max-content",
                grid_gap="0 12px",
                width="100%",
            )
        )
        self.listing.add_class("s3magic-grid")
        self._headers = {
            mode: [self._html(escape(title), "s3magic-head") for title in titles]
            for mode, titles in HEADINGS.items()
        }
        self.load_more_button = widgets.Button(description="Load more", icon="angle-down")
        self.load_more_button.on_click(lambda _: self.load_more())
        actions = {
            "Copy s3:// path": (self.copy_path, "Show the object's s3:// path, to select and copy"),
            "Insert snippet": (self.insert_snippet, "Code that loads the object, offered as the next cell"),
            "Preview": (self.show_preview, "The first KiB: a CSV's first rows, a text's first lines"),
            "Download": (
                self.download,
                f"Save into the notebook's working folder; at most {format_size(download_limit)}",
            ),
        }
        buttons = []
        for label, (action, tooltip) in actions.items():
            button = widgets.Button(description=label, tooltip=tooltip, layout=widgets.Layout(width="auto"))
            button.on_click(lambda _, act=action: act(self.selected_key) if self.selected_key else None)
            buttons.append(button)
        self.selection = widgets.HTML()
        self.actions = widgets.HBox([self.selection, *buttons])
        self.path_text = widgets.Text(description="Path", layout=widgets.Layout(width="100%"))
        self.path_text.observe(self._keep_path, names="value")
        self.snippet_area = widgets.Textarea(rows=6, layout=widgets.Layout(width="100%"))
        self.preview_area = widgets.HTML()
        self.preview_area.add_class("s3magic-preview")
        self.progress = widgets.IntProgress(min=0, max=100, description="Download")
        self.download_status = widgets.HTML()
        self.download_box = widgets.VBox([self.progress, self.download_status])
        self.error = widgets.HTML()
        self.request_area = widgets.Box()
        self.children = [
            widgets.HTML(STYLE),
            self.crumbs,
            self.status,
            self.toolbar,
            self.listing,
            self.load_more_button,
            self.actions,
            self.path_text,
            self.snippet_area,
            self.preview_area,
            self.download_box,
            self.error,
            self.request_area,
        ]
        if start is not None:
            self._open(start)
        else:
            self.back_to_buckets()

    # --- what the view shows, as plain data -------------------------------------------------------------

    @property
    def rows(self) -> list[tuple[str, str]]:
        """(kind, name) per row drawn, in display order: buckets, or folders first and then objects."""
        return [(row.kind, row.name) for row in self._drawn()]

    @property
    def status_text(self) -> str:
        return str(self.status.value)

    @property
    def error_html(self) -> str:
        return str(self.error.value)

    @property
    def has_more(self) -> bool:
        """More rows to show: loaded but not drawn yet, or a next page in S3."""
        return self._next_token is not None or len(self._visible()) > self._shown

    @property
    def breadcrumbs(self) -> list[str]:
        return [button.description for button in self.crumbs.children]

    def row_button(self, name: str) -> Any:
        """The button of the row drawn with this name (what a user clicks)."""
        return next(row.button for row in self._drawn() if row.name == name)

    # --- handlers ------------------------------------------------------------------------------------

    def back_to_buckets(self) -> None:
        """Show the bucket list (if the browser was given one)."""
        self._reset(None)
        items = self.buckets.items if self.buckets else ()
        self.status.value = (
            f"{len(items)} bucket(s) you may reach: click one to browse it."
            if self.buckets
            else "No bucket list: open a bucket with %s3access browse BUCKET."
        )
        self._refresh()

    def open_bucket(self, name: str) -> None:
        """Open a bucket (any form ``%s3access check`` takes) at its root, or at the prefix it names."""
        try:
            ref = parse_bucket_reference(name)
        except S3MagicError as error:
            self._reset(None)
            self._fail(str(error))
            return
        self._open(ref)

    def open_prefix(self, prefix: str) -> None:
        """Open a prefix in the current bucket (``""`` is the bucket's root)."""
        if self.ref is not None:
            self._open(replace(self.ref, prefix=prefix))

    def load_more(self) -> None:
        """Draw the next rows already loaded, or else append the next page of the level (one request)."""
        if not self.has_more:
            return
        self._shown += ROWS_SHOWN
        if self.ref is not None and len(self._visible()) < self._shown and self._next_token is not None:
            try:
                page = list_level(
                    self.aws,
                    self.ref,
                    token=self._next_token,
                    page_size=self.page_size,
                    recursive=self.recursive,
                )
            except S3MagicError as error:
                self._fail(str(error))
                return
            self._folders += page.folders
            self._objects += page.objects
            self._next_token = page.next_token
        self._refresh()

    def apply_filter(self, text: str) -> None:
        """Keep the loaded rows whose name holds ``text`` (any case); no request is made."""
        self._filter = text
        if self.filter_box.value != text:
            self.filter_box.value = text
        if self.denied is None:
            self._refresh()

    def show_every_object(self, recursive: bool) -> None:
        """List every object below the prefix (no folders), or one level again; the level is read anew."""
        self.recursive = recursive
        if self.recursive_box.value != recursive:
            self.recursive_box.value = recursive
        if self.ref is not None:
            self._open(self.ref)

    def select(self, key: str) -> None:
        """Make ``key`` the object the action buttons act on."""
        previous = self._rows.get((OBJECT, self.selected_key or ""))
        if previous is not None:
            previous.button.remove_class("s3magic-selected")
        self.selected_key = key
        chosen = self._rows.get((OBJECT, key))
        if chosen is not None:
            chosen.button.add_class("s3magic-selected")
        self.selection.value = f"<code>{escape(key[len(level_of(key)) :])}</code>"
        _show(self.actions, True)

    def copy_path(self, key: str) -> None:
        """Show the object's ``s3://`` path in a text box, selected text being what a user copies (no
        clipboard script: that works in JupyterLab and in a notebook run by nbval alike)."""
        self.selected_path = s3_uri(self._bucket, key)
        self._quiet = True
        try:
            self.path_text.value = self.selected_path
        finally:
            self._quiet = False
        _show(self.path_text, True)

    def insert_snippet(self, key: str) -> None:
        """Code that loads the object: shown here, and offered as the next cell when there is a shell.

        Jupyter delivers ``set_next_input`` from a widget click only with the next cell run, so the code is
        always shown as well.
        """
        code = snippet(self._bucket, key)
        self.snippet_area.value = code
        _show(self.snippet_area, True)
        if self.shell is not None:
            self.shell.set_next_input(code)

    def show_preview(self, key: str) -> None:
        """The first KiB of the object (one ranged GET): a few rows of a CSV as a table, else its lines."""
        try:
            self.preview_area.value = _preview_html(self._bucket, key, self.aws)
        except S3MagicError as error:
            self.preview_area.value = failure_html(str(error))
        _show(self.preview_area, True)

    def download(self, key: str) -> None:
        """Save the object in the working folder (the notebook's), with a progress bar; an object over the
        limit is refused before any of it is read."""
        folder = self.workdir or Path.cwd()
        self.downloaded = None
        self.progress.description = "Download"
        self.progress.value = 0
        self.progress.bar_style = ""
        self.download_status.value = (
            f"Downloading into {escape(str(folder))} (at most {format_size(self.download_limit)})..."
        )
        _show(self.download_box, True)
        try:
            saved = download(
                self.aws, self._bucket, key, folder, limit=self.download_limit, progress=self._progressed
            )
        except S3MagicError as error:
            self.progress.bar_style = "danger"
            self.download_status.value = failure_html(str(error))
            return
        self.downloaded = saved.path
        self.progress.value = 100
        self.progress.bar_style = "success"
        self.download_status.value = f"<p>{escape(str(saved))}</p>"

    def upload(self, name: str, *, overwrite: bool = False) -> None:
        """Copy a file (a path in the working folder, or absolute) into the level shown, as the sidebar's
        Upload does: the check of the place first, in parts above the threshold, never over an object
        unless ``overwrite``; then the level is listed again."""
        assert self.ref is not None, "an upload needs an open bucket"
        path = (self.workdir or Path.cwd()) / name
        self.uploaded = None
        self.progress.description = "Upload"
        self.progress.value = 0
        self.progress.bar_style = ""
        _show(self.download_box, True)
        if not name or not path.is_file():
            self.progress.bar_style = "danger"
            self.download_status.value = failure_html(
                f"{name or 'Nothing'} is not a file of the working folder ({path.parent}): type the name of "
                "one, or a path to it."
            )
            return
        ref = self.ref
        self.download_status.value = f"Uploading {escape(path.name)} to {escape(str(ref))}..."
        try:
            report = self.checker.check(ref, need="write")
            sent = checked_upload(
                self.aws,
                report,
                path,
                self._bucket,
                ref.prefix + path.name,
                overwrite=overwrite,
                progress=self._progressed,
            )
        except S3MagicError as error:
            self.progress.bar_style = "danger"
            self.download_status.value = failure_html(str(error))
            return
        self._open(self.ref)  # the new object among the others
        self.uploaded = sent.uri
        self.progress.value = 100
        self.progress.bar_style = "success"
        self.download_status.value = f"<p>{escape(str(sent))}</p>"
        self._show_view()

    def close(self) -> None:
        if self._own_checker is not None:
            self._own_checker.close()
        self._forget_rows()
        for header in self._headers.values():
            for cell in header:
                cell.close()
        super().close()

    # --- internals -----------------------------------------------------------------------------------

    @property
    def checker(self) -> AccessCheck:
        """The check given, or a checker made on first need (and closed with the widget)."""
        if self._checker is None:
            self._checker = self._own_checker = Checker(self.aws)
        return self._checker

    @property
    def _bucket(self) -> str:
        """What S3 calls take as ``Bucket`` for the open location (an access point ARN, if one was opened)."""
        assert self.ref is not None, "an object action needs an open bucket"
        return self.ref.access_point_arn or self.ref.bucket

    def _progressed(self, done: int, total: int) -> None:
        self.progress.value = 100 if total == 0 else done * 100 // total
        self.download_status.value = f"{format_size(done)} of {format_size(total)}"

    def _open(self, ref: BucketRef) -> None:
        self._reset(ref)
        item = self._reachability.get(ref.bucket)
        if item is not None and item.status is Status.DENIED:
            # The list's status may be old: the check probes anew, and only a denial it confirms is shown.
            checked = self._checked(ref)
            if not isinstance(checked, AccessReport) or checked.verdict("list") is Verdict.DENIED:
                self._show_denied(ref, checked)
                return
        try:
            page = list_level(self.aws, ref, page_size=self.page_size, recursive=self.recursive)
        except BrowseDenied:
            self._show_denied(ref, self._checked(ref))
            return
        except S3MagicError as error:
            self._fail(str(error))
            return
        self._folders, self._objects, self._next_token = (
            list(page.folders),
            list(page.objects),
            page.next_token,
        )
        self._refresh()

    def _reset(self, ref: BucketRef | None) -> None:
        """Forget the previous location: its rows, filter, selection, outputs and any denial."""
        self.ref = ref
        self._folders, self._objects, self._next_token = [], [], None
        self._filter = ""
        self._shown = ROWS_SHOWN
        self.selected_key = self.selected_path = None
        self.downloaded = None
        self.denied = None
        self.report = None
        self._forget_rows()
        self.listing.children = ()
        self._quiet = True
        try:
            self.filter_box.value = self.path_text.value = ""
        finally:
            self._quiet = False
        self.status.value = ""
        self.error.value = self.preview_area.value = self.snippet_area.value = ""
        self.download_status.value = ""
        self.request_area.children = ()
        self._set_crumbs()
        self._show_view()

    def _forget_rows(self) -> None:
        """Close the rows' widgets (their shared layout and style stay, for the next level's rows)."""
        for row in self._rows.values():
            for cell in row.cells:
                cell.close()
        self._rows = {}

    def _set_crumbs(self) -> None:
        crumbs: list[tuple[str, Any]] = []
        if self.buckets is not None:
            crumbs.append(("All buckets", lambda _: self.back_to_buckets()))
        if self.ref is not None:
            crumbs.append((self.ref.bucket, lambda _: self.open_prefix("")))
            prefix = ""
            for part in level_of(self.ref.prefix).split("/")[:-1]:
                prefix += part + "/"
                crumbs.append((f"{part}/", lambda _, target=prefix: self.open_prefix(target)))
        buttons = []
        for label, handler in crumbs:
            button = widgets.Button(description=label, tooltip=label, layout=widgets.Layout(width="auto"))
            button.add_class("s3magic-crumb")
            button.on_click(handler)
            buttons.append(button)
        self.crumbs.children = buttons

    def _html(self, value: str, *classes: str) -> Any:
        cell = widgets.HTML(value, layout=self._cell_layout, style=self._html_style)
        for name in classes:
            cell.add_class(name)
        return cell

    def _row(self, kind: str, full: str, name: str, icon: str, third: str, fourth: str) -> _Row:
        """The row for an entry, made on first need and kept while its level is open."""
        row = self._rows.get((kind, full))
        if row is None:
            button = widgets.Button(
                description=name, tooltip=name, layout=self._name_layout, style=self._name_style
            )
            button.add_class("s3magic-name")
            button.on_click(lambda _: self._clicked(kind, full))
            cells = (
                self._html(ICONS[icon], "s3magic-icon", f"s3magic-icon-{icon}"),
                button,
                self._html(third, "s3magic-size" if kind != BUCKET else "s3magic-meta"),
                self._html(fourth, "s3magic-meta"),
            )
            row = self._rows[(kind, full)] = _Row(kind, full, name, cells)
            if kind == OBJECT and full == self.selected_key:
                button.add_class("s3magic-selected")
        return row

    def _visible(self) -> list[tuple[str, str, str]]:
        """(kind, bucket or prefix or key, name) for the loaded entries the filter keeps, folders first."""
        if self.ref is None:
            names = [item.candidate.bucket for item in self.buckets.items] if self.buckets else []
            entries = [(BUCKET, name, name) for name in names]
        else:
            level = len(level_of(self.ref.prefix))
            entries = [(FOLDER, folder, folder[level:]) for folder in self._folders]
            entries += [(OBJECT, entry.key, entry.key[level:]) for entry in self._objects]
        needle = self._filter.lower()
        return [entry for entry in entries if needle in entry[2].lower()]

    def _drawn(self) -> list[_Row]:
        """The rows drawn: the first ``_shown`` of the visible ones."""
        if self.denied is not None:
            return []
        sizes = {entry.key: entry for entry in self._objects}
        rows = []
        for kind, full, name in self._visible()[: self._shown]:
            if kind == BUCKET:
                item = self._reachability[full]
                rows.append(
                    self._row(kind, full, name, BUCKET, _badge(item), escape(item.candidate.description))
                )
            elif kind == FOLDER:
                rows.append(self._row(kind, full, name, FOLDER, "", ""))
            else:
                entry = sizes[full]
                size, modified = format_size(entry.size), format_time(entry.last_modified)
                rows.append(self._row(kind, full, name, kind_of(full), size, modified))
        return rows

    def _clicked(self, kind: str, full: str) -> None:
        if kind == BUCKET:
            self.open_bucket(full)
        elif kind == FOLDER:
            self.open_prefix(full)
        else:
            self.select(full)

    def _refresh(self) -> None:
        """Redraw the grid from the loaded rows: the header, then each drawn row's cells."""
        drawn = self._drawn()
        header = self._headers[BUCKET if self.ref is None else OBJECT] if drawn else []
        self.listing.children = [*header, *(cell for row in drawn for cell in row.cells)]
        if self.ref is not None and self.denied is None:
            shown = f"; {len(self._visible())} match {self._filter!r}" if self._filter else ""
            more = " (more available: Load more)" if self.has_more else ""
            self.status.value = (
                f"{self.ref}: {len(self._folders)} folder(s), {len(self._objects)} object(s) loaded"
                f"{more}{shown}"
            )
        self._show_view()

    def _on_filter(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.apply_filter(change["new"])

    def _on_recursive(self, change: dict[str, Any]) -> None:
        if change["new"] != self.recursive:
            self.show_every_object(change["new"])

    def _keep_path(self, change: dict[str, Any]) -> None:
        """The path box is for copying: an edit is undone (a disabled box would not let text be selected)."""
        if not self._quiet and change["new"] != (self.selected_path or ""):
            self.path_text.value = self.selected_path or ""

    def _checked(self, ref: BucketRef) -> AccessReport | S3MagicError:
        """The check's report on ``ref``, or why there is none."""
        try:
            return self.checker.check(ref)
        except S3MagicError as error:
            return error

    def _show_denied(self, ref: BucketRef, checked: AccessReport | S3MagicError) -> None:
        """One message, from the check's report (which layers block the listing), the report itself, and
        room for a request button."""
        self.denied = ref
        if isinstance(checked, AccessReport):
            self.report = checked
            message = _denied_message(ref, checked)
            details = f"<details><summary>The check's report</summary>{checked._repr_html_()}</details>"
        else:
            message = f"S3 refused to list {ref}, and the check could not say why: {checked}"
            details = ""
        self.error.value = failure_html(message) + details
        self.request_area.children = (
            [RequestForm(ref, self.request_access)]
            if self.request_access is not None
            else [widgets.HTML("To ask for access here, set <code>%config S3Access.admin_url</code>.")]
        )
        self._refresh()

    def _fail(self, message: str) -> None:
        self.error.value = failure_html(message)
        _show(self.error, True)

    def _show_view(self) -> None:
        """Show only the parts that mean something in the current state."""
        listing = self.ref is not None and self.denied is None
        _show(self.status, bool(self.status.value))
        _show(self.toolbar, listing)
        _show(self.listing, bool(self.listing.children))
        _show(self.load_more_button, self.denied is None and self.has_more)
        _show(self.actions, listing and self.selected_key is not None)
        _show(self.path_text, listing and bool(self.path_text.value))
        _show(self.snippet_area, listing and bool(self.snippet_area.value))
        _show(self.preview_area, listing and bool(self.preview_area.value))
        _show(self.download_box, listing and bool(self.download_status.value))
        _show(self.error, bool(self.error.value))
        _show(self.request_area, self.denied is not None)
