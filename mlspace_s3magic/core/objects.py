"""A whole object read for a viewer (JupyterLab opens a CSV, a notebook, an image from a bucket), capped.

The cap keeps a click from pulling a large object into the server's memory and the browser: a larger one
is refused before its body is read, with Download (which streams to a file) as the way to read it.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import format_size, s3_errors, s3_uri
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.names import BucketRef

OPEN_LIMIT = 20 * 1024**2  # 20 MiB
# What S3 says when nobody set a type: the key's extension says more.
GENERIC_TYPES = frozenset({"", "binary/octet-stream", "application/octet-stream"})
# Types the mimetypes module does not know, or knows differently on some systems.
KNOWN_TYPES = {".ipynb": "application/x-ipynb+json", ".csv": "text/csv", ".json": "application/json"}
FALLBACK_TYPE = "application/octet-stream"


class TooLargeToOpen(InvalidInput):
    """The object is larger than a viewer may load: download it instead."""


@dataclass(frozen=True)
class ObjectContent:
    """An object's bytes and what a viewer needs to show them."""

    bucket: str
    key: str
    data: bytes
    last_modified: datetime
    mimetype: str

    def text(self) -> str | None:
        """The bytes as text when they are UTF-8, else ``None``."""
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def to_dict(self) -> dict[str, Any]:
        text = self.text()
        return {
            "bucket": self.bucket,
            "key": self.key,
            "uri": s3_uri(self.bucket, self.key),
            "name": self.key.rsplit("/", 1)[-1],
            "size": len(self.data),
            "last_modified": self.last_modified.isoformat(),
            "mimetype": self.mimetype,
            "format": "base64" if text is None else "text",
            "content": base64.b64encode(self.data).decode("ascii") if text is None else text,
        }


def guess_type(key: str) -> str | None:
    """The media type the key's extension names, or ``None``."""
    lower = key.lower()
    known = next((kind for ext, kind in KNOWN_TYPES.items() if lower.endswith(ext)), None)
    return known or mimetypes.guess_type(lower, strict=False)[0]


def read_object(aws: Aws, bucket: str, key: str, *, limit: int = OPEN_LIMIT) -> ObjectContent:
    """One GetObject: an object over ``limit`` is refused on its length, before its body is read."""
    uri = s3_uri(bucket, key)
    ref = BucketRef(bucket=bucket, prefix=key)
    s3 = aws.client("s3")
    with s3_errors(s3, "s3:GetObject", ref, uri):
        response = s3.get_object(Bucket=bucket, Key=key)
    body = response["Body"]
    try:
        size = int(response.get("ContentLength") or 0)
        if size > limit:
            raise _too_large(uri, f"is {format_size(size)}", limit)
        with s3_errors(s3, "s3:GetObject", ref, uri):
            data = body.read(limit + 1)
        if len(data) > limit:  # the object grew since its length was sent
            raise _too_large(uri, "grew while it was read", limit)
    finally:
        body.close()
    stated = str(response.get("ContentType") or "").split(";")[0].strip().lower()
    mimetype = stated if stated not in GENERIC_TYPES else guess_type(key) or FALLBACK_TYPE
    return ObjectContent(bucket, key, data, response["LastModified"], mimetype)


def _too_large(uri: str, how: str, limit: int) -> TooLargeToOpen:
    return TooLargeToOpen(
        f"{uri} {how}, over the {format_size(limit)} a viewer may open: use Download to save it in a "
        "folder and open it from there, or read it in code (Insert snippet)."
    )
