"""Copying one object into a local folder (the notebook's working folder): streamed, with progress, capped.

The cap keeps a click from filling the notebook instance's disk: a larger object is refused before its body
is read, with the ways to read it from S3 instead.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import format_size, s3_errors, s3_uri
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.render import Rendered

DOWNLOAD_LIMIT = 1024**3  # 1 GiB
CHUNK_BYTES = 1024 * 1024
READABLE = 0o644
MAX_NAME_BYTES = 200  # below the 255 most file systems allow, leaving room for "-N" and the suffix
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")

Progress = Callable[[int, int], None]  # (bytes written so far, total bytes)


class TooLargeToDownload(InvalidInput):
    """The object is larger than the download limit: read it from S3 in code instead."""


@dataclass(frozen=True, repr=False)
class Downloaded(Rendered):
    """Where the object was saved, and how many bytes it had."""

    uri: str
    path: Path
    size: int

    def __str__(self) -> str:
        return f"Saved {self.uri} as {self.path} ({format_size(self.size)})."

    def _repr_html_(self) -> str:
        return f"<p>{escape(str(self))}</p>"


def local_name(key: str) -> str:
    """A file name for the key's last part that cannot leave the folder or hide control characters:
    ``../x`` gives ``x``, a key ending in ``/`` or ``..`` gives ``download``."""
    name = _UNSAFE_NAME.sub("_", key.rsplit("/", 1)[-1]).strip()
    if name in ("", ".", ".."):
        name = "download"
    while len(name.encode()) > MAX_NAME_BYTES:
        name = name[1:]  # keep the end: the extension says how to open it
    return name


def _free_path(folder: Path, name: str, taken: Callable[[Path], bool]) -> Path:
    """``name`` in ``folder``, or ``stem-1.ext``, ``stem-2.ext``... when a file already has it."""
    stem, dot, suffix = name.partition(".") if not name.startswith(".") else (name, "", "")
    candidate, number = folder / name, 0
    while taken(candidate):
        number += 1
        candidate = folder / f"{stem}-{number}{dot}{suffix}"
    return candidate


@dataclass(frozen=True)
class OpenDownload:
    """An object S3 agreed to send and whose size is within the limit, its body not read yet: whatever
    refuses a download (denied, missing, too large) is known here, before a byte is written."""

    bucket: str
    key: str
    size: int
    limit: int
    body: Any
    s3: Any

    @property
    def uri(self) -> str:
        return s3_uri(self.bucket, self.key)

    def save(self, folder: Path, *, progress: Progress | None = None) -> Downloaded:
        """Stream the body into ``folder`` under the key's own name, never over an existing file: the bytes
        go to a hidden temporary file that is linked to its final name only when complete."""
        name = local_name(self.key)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            written = 0
            with os.fdopen(descriptor, "wb") as stream:
                os.fchmod(stream.fileno(), READABLE)  # mkstemp's 0600 would stay on the linked file
                with s3_errors(
                    self.s3, "s3:GetObject", BucketRef(bucket=self.bucket, prefix=self.key), self.uri
                ):
                    for chunk in self.body.iter_chunks(CHUNK_BYTES):
                        written += len(chunk)
                        if written > self.limit:  # the object grew since its length was sent
                            raise TooLargeToDownload(
                                f"{self.uri} grew past the {format_size(self.limit)} download limit while "
                                "it was read."
                            )
                        stream.write(chunk)
                        if progress is not None:
                            progress(written, max(self.size, written))
            if progress is not None and written == 0:
                progress(0, 0)
            path = _link_free(Path(temporary), folder, name)
        finally:
            Path(temporary).unlink(missing_ok=True)
        return Downloaded(self.uri, path, written)

    def close(self) -> None:
        self.body.close()


def open_download(aws: Aws, bucket: str, key: str, *, limit: int = DOWNLOAD_LIMIT) -> OpenDownload:
    """One GetObject: its length is known before the body is read, so a too large object costs no
    transfer. Close what this returns (or use :func:`download`, which does)."""
    uri = s3_uri(bucket, key)
    s3 = aws.client("s3")
    with s3_errors(s3, "s3:GetObject", BucketRef(bucket=bucket, prefix=key), uri):
        response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    total = int(response.get("ContentLength") or 0)
    if total > limit:
        body.close()
        raise TooLargeToDownload(
            f"{uri} is {format_size(total)}, over the {format_size(limit)} download limit: read it from "
            "S3 in code instead (Insert snippet), or copy it with `aws s3 cp` in a terminal."
        )
    return OpenDownload(bucket, key, total, limit, body, s3)


def download(
    aws: Aws,
    bucket: str,
    key: str,
    folder: Path,
    *,
    limit: int = DOWNLOAD_LIMIT,
    progress: Progress | None = None,
) -> Downloaded:
    """Stream ``s3://bucket/key`` into ``folder`` under its own name, never over an existing file."""
    opened = open_download(aws, bucket, key, limit=limit)
    try:
        return opened.save(folder, progress=progress)
    finally:
        opened.close()


def _link_free(temporary: Path, folder: Path, name: str) -> Path:
    """Give the finished file a free name: a hard link fails, instead of replacing, when the name is taken
    (by a file made meanwhile too)."""
    while True:
        path = _free_path(folder, name, lambda candidate: candidate.exists() or candidate.is_symlink())
        try:
            os.link(temporary, path)
        except FileExistsError:
            continue
        return path
