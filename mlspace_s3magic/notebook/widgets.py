"""``BucketBrowser``: the buckets a user may reach, and inside one, a level at a time, a page at a time.

Every action is one call into ``core.browse`` on the calling thread, so the widget costs what the user looks
at and tests can drive it through its handler methods without a browser. The listing is one ``Select``
whatever the page size: a widget per row would make a thousand-key page slow to draw.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from typing import Any, Protocol

import ipywidgets as widgets

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import (
    DEFAULT_PAGE_SIZE,
    BrowseDenied,
    ObjectEntry,
    format_size,
    format_time,
    level_of,
    list_level,
    preview,
    s3_uri,
    snippet,
)
from mlspace_s3magic.core.check import AccessReport, Checker
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference
from mlspace_s3magic.core.reachability import BucketList, Reachability, Status
from mlspace_s3magic.core.render import GREY, badge
from mlspace_s3magic.notebook.request_form import RequestForm, Submit, failure_html

FOLDER = "folder"
OBJECT = "object"
BUCKET = "bucket"
HIDDEN = "none"
SHOWN = ""


class Shell(Protocol):
    """The part of IPython's shell the browser uses: filling the next cell."""

    def set_next_input(self, text: str, /) -> Any: ...


class AccessCheck(Protocol):
    """What explains a denied bucket: the session (which takes the owner from the registry, as every
    shell's check does) or, without one, a bare ``Checker``."""

    def check(self, ref: BucketRef, /) -> AccessReport: ...


def _show(widget: Any, visible: bool) -> None:
    widget.layout.display = SHOWN if visible else HIDDEN


def _badge(item: Reachability) -> str:
    """The status badge every table shows, with the probe's detail as its tooltip."""
    shown = f"<span title='{escape(item.detail)}'>{badge(item.status.value)}</span>"
    if item.candidate.mlspace_data:
        shown += " <span style='border:1px solid #0969da;border-radius:4px;padding:0 6px'>MLSpace data</span>"
    if item.candidate.description:
        shown += f" <span style='color:{GREY}'>{escape(item.candidate.description)}</span>"
    return shown


class BucketBrowser(widgets.VBox):  # type: ignore[misc]  # a subclass of an untyped class
    """Browse S3 in a notebook: bucket list, breadcrumbs, one level of folders and objects, object actions.

    A denied bucket shows the check's report (which layers block it) and, in ``request_area``, a form that
    files an access request through ``request_access`` when the admin endpoint is configured.
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
    ):
        super().__init__()
        self.request_access = request_access
        self.aws = aws
        self.buckets = buckets
        self.page_size = page_size
        self.shell = shell
        self._checker = checker
        self._own_checker: Checker | None = None
        self._reachability = {item.candidate.bucket: item for item in buckets.items} if buckets else {}
        self.ref: BucketRef | None = None
        self._folders: list[str] = []
        self._objects: list[ObjectEntry] = []
        self._next_token: str | None = None
        self._filter = ""
        self._quiet = False  # set while the code, not the user, changes the listing's selection
        self.selected_key: str | None = None
        self.selected_path: str | None = None
        self.denied: BucketRef | None = None
        self.report: AccessReport | None = None

        self.crumbs = widgets.HBox()
        self.status = widgets.Label()
        self.bucket_list = widgets.VBox()
        self.filter_box = widgets.Text(placeholder="Filter the loaded entries", continuous_update=True)
        self.filter_box.observe(self._on_filter, names="value")
        self.entries = widgets.Select(rows=15, layout=widgets.Layout(width="100%"))
        self.entries.observe(self._on_pick, names="value")
        self.load_more_button = widgets.Button(description="Load more", icon="angle-down")
        self.load_more_button.on_click(lambda _: self.load_more())
        actions = {"Copy path": self.copy_path, "Snippet": self.insert_snippet, "Preview": self.show_preview}
        buttons = []
        for label, action in actions.items():
            button = widgets.Button(description=label)
            button.on_click(lambda _, act=action: act(self.selected_key) if self.selected_key else None)
            buttons.append(button)
        self.selection = widgets.HTML()
        self.actions = widgets.HBox([self.selection, *buttons])
        self.path_text = widgets.Text(description="Path", layout=widgets.Layout(width="100%"))
        self.path_text.observe(self._keep_path, names="value")
        self.snippet_area = widgets.Textarea(rows=6, layout=widgets.Layout(width="100%"))
        self.preview_area = widgets.HTML()
        self.error = widgets.HTML()
        self.request_area = widgets.Box()
        self.children = [
            self.crumbs,
            self.status,
            self.bucket_list,
            self.filter_box,
            self.entries,
            self.load_more_button,
            self.actions,
            self.path_text,
            self.snippet_area,
            self.preview_area,
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
        """(kind, name) per visible row in display order: buckets, or folders first and then objects."""
        if self.ref is None:
            return [(BUCKET, item.candidate.bucket) for item in self.buckets.items] if self.buckets else []
        return [(kind, name) for kind, _, name, _ in self._visible()]

    @property
    def status_text(self) -> str:
        return str(self.status.value)

    @property
    def error_html(self) -> str:
        return str(self.error.value)

    @property
    def has_more(self) -> bool:
        return self._next_token is not None

    @property
    def breadcrumbs(self) -> list[str]:
        return [button.description for button in self.crumbs.children]

    # --- handlers ------------------------------------------------------------------------------------

    def back_to_buckets(self) -> None:
        """Show the bucket list (if the browser was given one)."""
        self._reset(None)
        items = self.buckets.items if self.buckets else ()
        rows = []
        for item in items:
            button = widgets.Button(
                description=item.candidate.bucket, tooltip=f"Browse {item.candidate.bucket}"
            )
            button.on_click(lambda _, name=item.candidate.bucket: self.open_bucket(name))
            rows.append(widgets.HBox([button, widgets.HTML(_badge(item))]))
        self.bucket_list.children = rows
        self.status.value = (
            f"{len(items)} bucket(s) you may reach: click one to browse it."
            if self.buckets
            else "No bucket list: open a bucket with %s3access browse BUCKET."
        )
        self._show_view()

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
        """Append the next page of the current level (one request)."""
        if self.ref is None or self._next_token is None:
            return
        try:
            page = list_level(self.aws, self.ref, token=self._next_token, page_size=self.page_size)
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
        if self.ref is not None and self.denied is None:
            self._refresh()

    def select(self, key: str) -> None:
        """Make ``key`` the object the action buttons act on."""
        self.selected_key = key
        self.selection.value = f"<code>{escape(key[len(level_of(key)) :])}</code>"
        _show(self.actions, True)

    def copy_path(self, key: str) -> None:
        """Show the object's ``s3://`` path where it can be copied, and keep it in ``selected_path``."""
        self.selected_path = s3_uri(self._bucket, key)
        self.path_text.value = self.selected_path
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
        """The first KiB of the object (one ranged GET)."""
        try:
            self.preview_area.value = preview(self.aws, self._bucket, key)._repr_html_()
        except S3MagicError as error:
            self.preview_area.value = failure_html(str(error))
        _show(self.preview_area, True)

    def close(self) -> None:
        if self._own_checker is not None:
            self._own_checker.close()
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

    def _open(self, ref: BucketRef) -> None:
        self._reset(ref)
        item = self._reachability.get(ref.bucket)
        if item is not None and item.status is Status.DENIED:
            self._show_denied(ref, f"The bucket list found {ref.bucket} denied: {item.detail}")
            return
        try:
            page = list_level(self.aws, ref, page_size=self.page_size)
        except BrowseDenied:
            self._show_denied(ref, f"S3 refused to list {ref}.")
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
        self.selected_key = self.selected_path = None
        self.denied = None
        self.report = None
        self._quiet = True
        try:
            self.entries.index = None
            self.entries.options = []
            self.filter_box.value = self.path_text.value = ""
        finally:
            self._quiet = False
        self.error.value = self.preview_area.value = self.snippet_area.value = ""
        self._set_crumbs()
        self._show_view()

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
            button = widgets.Button(description=label, layout=widgets.Layout(width="auto"))
            button.on_click(handler)
            buttons.append(button)
        self.crumbs.children = buttons

    def _visible(self) -> list[tuple[str, str, str, str]]:
        """(kind, full prefix or key, name, label) for the loaded rows the filter keeps, folders first."""
        assert self.ref is not None
        level = len(level_of(self.ref.prefix))
        needle = self._filter.lower()
        rows = [
            (FOLDER, folder, folder[level:], f"\N{FILE FOLDER} {folder[level:]}") for folder in self._folders
        ]
        rows += [
            (
                OBJECT,
                entry.key,
                entry.key[level:],
                f"{entry.key[level:]} \N{MIDDLE DOT} {format_size(entry.size)} \N{MIDDLE DOT} "
                f"{format_time(entry.last_modified)}",
            )
            for entry in self._objects
        ]
        return [row for row in rows if needle in row[2].lower()]

    def _refresh(self) -> None:
        """Redraw the listing from the loaded rows, keeping the selected object selected if still shown."""
        visible = self._visible()
        self._quiet = True
        try:
            self.entries.index = None
            self.entries.options = [(label, (kind, full)) for kind, full, _, label in visible]
            if self.selected_key is not None and any(full == self.selected_key for _, full, _, _ in visible):
                self.entries.value = (OBJECT, self.selected_key)
        finally:
            self._quiet = False
        shown = f"; {len(visible)} match {self._filter!r}" if self._filter else ""
        more = " (more available: Load more)" if self.has_more else ""
        self.status.value = (
            f"{self.ref}: {len(self._folders)} folder(s), {len(self._objects)} object(s) loaded{more}{shown}"
        )
        self._show_view()

    def _on_filter(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.apply_filter(change["new"])

    def _on_pick(self, change: dict[str, Any]) -> None:
        if self._quiet or change["new"] is None:
            return
        kind, full = change["new"]
        if kind == FOLDER:
            self.open_prefix(full)
        else:
            self.select(full)

    def _keep_path(self, change: dict[str, Any]) -> None:
        """The path box is for copying: an edit is undone (a disabled box would not let text be selected)."""
        if change["new"] != (self.selected_path or ""):
            self.path_text.value = self.selected_path or ""

    def _show_denied(self, ref: BucketRef, why: str) -> None:
        """Say why the bucket is denied with the check's report, and make room for a request button."""
        self.denied = ref
        try:
            self.report = self.checker.check(ref)
            explanation = self.report._repr_html_()
        except S3MagicError as error:
            explanation = f"<p>The check could not explain it: {escape(str(error))}</p>"
        self.status.value = f"Access to {ref} is denied: the check below says which layers block it."
        self.error.value = failure_html(why) + explanation
        self.request_area.children = (
            [RequestForm(ref, self.request_access)]
            if self.request_access is not None
            else [widgets.HTML("To ask for access here, set <code>%config S3Access.admin_url</code>.")]
        )
        self._show_view()

    def _fail(self, message: str) -> None:
        self.error.value = failure_html(message)
        _show(self.error, True)

    def _show_view(self) -> None:
        """Show only the parts that mean something in the current state."""
        listing = self.ref is not None and self.denied is None
        _show(self.bucket_list, self.ref is None)
        _show(self.filter_box, listing)
        _show(self.entries, listing)
        _show(self.load_more_button, listing and self.has_more)
        _show(self.actions, listing and self.selected_key is not None)
        _show(self.path_text, listing and bool(self.path_text.value))
        _show(self.snippet_area, listing and bool(self.snippet_area.value))
        _show(self.preview_area, listing and bool(self.preview_area.value))
        _show(self.error, bool(self.error.value))
        _show(self.request_area, self.denied is not None)
