"""The sidebar's transfers: ``download`` (an object into a folder of Jupyter's), ``upload`` (a file of
Jupyter's into a bucket) and ``object`` (a whole object for JupyterLab's viewers, plain JSON).

A transfer answers NDJSON, one event a line, flushed as it goes (progress, then ``done`` or ``error``), so
the sidebar can draw a progress bar over one plain POST. What refuses a transfer before any byte moves
(a bad path, denied, missing, too large) is answered as every other route's refusals are, JSON with the
status of its meaning; so is a failure that comes before the first event. Local paths are relative to the
Jupyter server's root folder, as its file browser names them, and never lead out of it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import tornado.web
from jupyter_core.paths import is_hidden
from tornado.iostream import StreamClosedError

from mlspace_s3magic.core.browse import format_size
from mlspace_s3magic.core.download import DOWNLOAD_LIMIT, Progress, open_download
from mlspace_s3magic.core.errors import (
    HTTP_STATUS,
    InvalidInput,
    NotFound,
    S3MagicError,
    Unavailable,
    meaning,
)
from mlspace_s3magic.core.objects import OPEN_LIMIT, read_object
from mlspace_s3magic.core.upload import checked_upload
from mlspace_s3magic.server.handlers import MAX_KEY_LENGTH, S3AccessHandler, explained

NDJSON = "application/x-ndjson"
PROGRESS_INTERVAL = 0.1  # seconds: at most ten progress lines a second
Event = dict[str, Any]


class ClientGone(Unavailable):
    """The browser closed the connection: the transfer stops at its next step (a download leaves no part
    file behind, an upload aborts its multipart upload). Never answered: nobody is left to read it."""


class TransferHandler(S3AccessHandler):
    """Local paths under Jupyter's root, and a transfer run in a thread whose progress is streamed."""

    _gone: threading.Event

    def initialize(self) -> None:
        self._gone = threading.Event()

    def on_connection_close(self) -> None:
        self._gone.set()

    @property
    def root(self) -> Path:
        return Path(self.contents_manager.root_dir).resolve()

    def local_path(self, name: str, *, folder: bool) -> Path:
        """The query parameter ``name``, a path relative to Jupyter's root ('' is the root), resolved: a
        folder or a regular file inside the root, reached through no hidden folder unless Jupyter shows
        hidden files."""
        relative = self.text_argument(name, limit=4096)
        what = "folder" if folder else "file"
        shown = f"{relative[:100]!r}"
        pure = PurePosixPath(relative)
        if "\x00" in relative or pure.is_absolute() or relative.startswith("\\") or ".." in pure.parts:
            raise InvalidInput(
                f"The {what} {shown} must be a path relative to Jupyter's root folder, as the file browser "
                "names it, without '..'."
            )
        if not folder and not relative:
            raise InvalidInput("The query parameter 'path' is required: the file to upload.")
        root = self.root
        try:
            resolved = (root / pure).resolve(strict=True)
        except FileNotFoundError:
            raise NotFound(f"There is no {what} {shown} in Jupyter's root folder.") from None
        except (OSError, RuntimeError) as error:  # a symlink loop, a path too long
            raise InvalidInput(f"The {what} {shown} cannot be opened: {error}.") from None
        if not resolved.is_relative_to(root):
            raise InvalidInput(f"The {what} {shown} leads out of Jupyter's root folder (a symlink?).")
        if not self.contents_manager.allow_hidden and (
            is_hidden(str(root / pure), str(root)) or is_hidden(str(resolved), str(root))
        ):
            raise InvalidInput(
                f"The {what} {shown} is hidden, and this Jupyter server does not show hidden files."
            )
        if folder and not resolved.is_dir():
            raise InvalidInput(f"{shown} is not a folder.")
        if not folder and not resolved.is_file():
            raise InvalidInput(f"{shown} is not a regular file.")
        return resolved

    def relative(self, path: Path) -> str:
        """``path`` as the file browser names it."""
        return path.relative_to(self.root).as_posix()

    async def stream(self, work: Callable[[Progress], Event]) -> None:
        """Run ``work`` in a thread and send its progress, then ``done`` with what it returns, or ``error``.

        The answer's status is decided by its first event: a failure before any progress is an ordinary
        JSON refusal with its status; once a line went out, a failure is the stream's last line.
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        last = 0.0

        def send(event: Event) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def progressed(done: int, total: int) -> None:
            nonlocal last
            if self._gone.is_set():
                raise ClientGone
            now = time.monotonic()
            if done >= total or now - last >= PROGRESS_INTERVAL:
                last = now
                send({"event": "progress", "done": done, "total": total})

        def run() -> None:
            try:
                send({"event": "done", **work(progressed)})
            except ClientGone:
                send({"event": "gone"})
            except S3MagicError as error:
                send({"event": "error", "status": HTTP_STATUS[meaning(error)], "message": str(error)})
            except Exception as error:  # the stream must end with a line that says it failed
                self.log.exception("s3access: a transfer failed")
                send({"event": "error", "status": 500, "message": f"The transfer failed: {error!r}."})

        worker = asyncio.create_task(asyncio.to_thread(run))
        started = False
        try:
            while True:
                event = await events.get()
                if event["event"] == "gone":
                    return
                if event["event"] == "error" and not started:
                    self.set_status(event["status"])
                    await self.finish(json.dumps({"message": event["message"]}))
                    return
                if not started:
                    self.set_header("Content-Type", NDJSON)
                    self.set_header("Cache-Control", "no-store")
                    started = True
                self.write(json.dumps(event) + "\n")
                if event["event"] != "progress":
                    await self.finish(set_content_type=NDJSON)
                    return
                await self.flush()
        except StreamClosedError:
            self._gone.set()  # the thread stops at its next step; nobody is left to answer
        finally:
            await worker


class DownloadHandler(TransferHandler):
    """``POST download?bucket=&key=&folder=``: the object into ``folder`` under its own name (never over a
    file), at most :data:`~mlspace_s3magic.core.download.DOWNLOAD_LIMIT`."""

    limit = DOWNLOAD_LIMIT

    @tornado.web.authenticated
    @explained
    async def post(self) -> None:
        bucket, key = self.object_argument()
        folder = self.local_path("folder", folder=True)
        opened = await asyncio.to_thread(open_download, self.session.aws, bucket, key, limit=self.limit)

        def save(progress: Progress) -> Event:
            try:
                saved = opened.save(folder, progress=progress)
            finally:
                opened.close()
            path = self.relative(saved.path)
            return {
                "uri": saved.uri,
                "path": path,
                "size": saved.size,
                "size_text": format_size(saved.size),
                "message": str(replace(saved, path=Path(path))),
            }

        await self.stream(save)


class UploadHandler(TransferHandler):
    """``POST upload?bucket=&prefix=&path=&overwrite=``: the file ``path`` to ``prefix`` + its name; an
    existing object is replaced only with ``overwrite``. The check goes first: when it finds writing there
    denied, nothing is sent and the refusal says why."""

    @tornado.web.authenticated
    @explained
    async def post(self) -> None:
        ref = self.bucket_reference()
        if ref.prefix and not ref.prefix.endswith("/"):
            raise InvalidInput(
                "The query parameter 'prefix' must be a folder ending in '/' (or empty): "
                f"{ref.prefix[:70]!r}."
            )
        path = self.local_path("path", folder=False)
        given = PurePosixPath(self.text_argument("path", limit=4096))
        key = ref.prefix + given.name  # the name the file browser shows, not a symlink's target's
        if len(key.encode()) > MAX_KEY_LENGTH:
            raise InvalidInput(f"The key {key[:70]!r}... would be longer than S3's {MAX_KEY_LENGTH} bytes.")
        overwrite = self.bool_argument("overwrite")

        def send(progress: Progress) -> Event:
            report = self.session.check(ref, need="write")  # a denial here is answered before any line
            sent = checked_upload(
                self.session.aws,
                report,
                path,
                ref.access_point_arn or ref.bucket,
                key,
                overwrite=overwrite,
                progress=progress,
            )
            return {
                "uri": sent.uri,
                "path": given.as_posix(),
                "size": sent.size,
                "size_text": format_size(sent.size),
                "message": str(replace(sent, path=Path(given))),
            }

        await self.stream(send)


class ObjectHandler(S3AccessHandler):
    """``GET object?bucket=&key=``: the whole object for JupyterLab's viewers, text when it is UTF-8 else
    base64, at most :data:`~mlspace_s3magic.core.objects.OPEN_LIMIT` (refused on its length, unread)."""

    limit = OPEN_LIMIT

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        bucket, key = self.object_argument()
        await self.answer(lambda: read_object(self.session.aws, bucket, key, limit=self.limit).to_dict())


TRANSFER_ROUTES: tuple[tuple[str, type[S3AccessHandler]], ...] = (
    ("download", DownloadHandler),
    ("upload", UploadHandler),
    ("object", ObjectHandler),
)
