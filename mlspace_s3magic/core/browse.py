"""Browsing a bucket one level at a time: a page of folders and objects, a peek at an object, a code snippet.

Every call is one S3 request (a delimited ``ListObjectsV2`` page, a ranged ``GetObject``), so browsing a
bucket with millions of keys costs what the user looks at, never a full listing.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import ACCESS_DENIED_CODES, Aws, aws_call, error_code
from mlspace_s3magic.core.errors import AwsRequestFailed, NotAllowed, NotFound
from mlspace_s3magic.core.names import BucketRef, modern_rule_broken
from mlspace_s3magic.core.render import Cell, Rendered, columns

DEFAULT_PAGE_SIZE = 1000  # S3's own maximum per ListObjectsV2 page
PREVIEW_BYTES = 1024
SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
DENIED_CODES = ACCESS_DENIED_CODES | {"AllAccessDisabled"}
# Types whose bytes are never worth decoding, whatever they happen to contain.
BINARY_TYPES = (
    "image/",
    "audio/",
    "video/",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/pdf",
    "application/x-parquet",
    "application/vnd.apache.parquet",
)
# pandas infers compression from a path's suffix only, never from a buffer: the snippet names it.
PANDAS_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}
PANDAS_READERS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".csv": ("read_csv", ()),
    ".tsv": ("read_csv", ('sep="\\t"',)),
    ".parquet": ("read_parquet", ()),
    ".json": ("read_json", ()),
    ".jsonl": ("read_json", ("lines=True",)),
}
PREVIEW_ROWS = 10
# What a key's type is, by its name: how the browsers draw it and what a snippet or a preview does with it.
TABLE, TEXT, OTHER = "table", "text", "other"
TEXT_EXTENSIONS = (".txt", ".md", ".log", ".yaml", ".yml", ".py", ".sh", ".xml", ".html", ".ini", ".cfg")
PATH_STYLE_NOTE = (
    "# {bucket} is a legacy bucket name (capitals or underscores): S3 serves it path-style only.\n"
)


class BrowseDenied(NotAllowed):
    """S3 refused to list or read: ``%s3access check`` says which layer blocks it."""

    def __init__(self, message: str, ref: BucketRef):
        super().__init__(message)
        self.ref = ref


class NoSuchBucket(NotFound):
    """No bucket has this name (in any account): a typo, or a bucket deleted since."""


class NoSuchKey(NotFound):
    """The object is gone (deleted since it was listed) or never existed."""


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    last_modified: datetime
    storage_class: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
            "storage_class": self.storage_class,
        }


@dataclass(frozen=True, repr=False)
class Page(Rendered):
    """One level of a prefix, as far as one ``ListObjectsV2`` page reaches; ``next_token`` asks for more."""

    ref: BucketRef
    folders: tuple[str, ...]
    objects: tuple[ObjectEntry, ...]
    next_token: str | None

    def name(self, full: str) -> str:
        """``full`` (a prefix or key) relative to the level listed, as ``aws s3 ls`` shows it."""
        return full[len(level_of(self.ref.prefix)) :]

    def to_dict(self) -> dict[str, Any]:
        """The page, with what every browser shows per object worked out once, here: its name in the level,
        its size for people, its kind, its ``s3://`` path and the snippet that loads it."""
        bucket = self.ref.access_point_arn or self.ref.bucket
        return {
            "bucket": self.ref.bucket,
            "prefix": self.ref.prefix,
            "folders": list(self.folders),
            "objects": [
                {
                    **entry.to_dict(),
                    "name": self.name(entry.key),
                    "size_text": format_size(entry.size),
                    "kind": kind_of(entry.key),
                    "uri": s3_uri(bucket, entry.key),
                    "snippet": snippet(bucket, entry.key),
                }
                for entry in self.objects
            ],
            "next_token": self.next_token,
        }

    def _more(self) -> str:
        return (
            f"More entries remain under {self.ref}; ask for the next page with the continuation token "
            f"{self.next_token}"
        )

    def __str__(self) -> str:
        lines = [f"{'PRE':>30} {self.name(folder)}" for folder in self.folders]
        lines += [
            f"{format_time(entry.last_modified)} {entry.size:>10} {self.name(entry.key)}"
            for entry in self.objects
        ]
        if not lines:
            lines.append(f"(nothing under {self.ref})")
        if self.next_token:
            lines.append(self._more())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows: list[tuple[str, Cell | str, str]] = [
            (self.name(folder), "folder", "") for folder in self.folders
        ]
        rows += [
            (
                self.name(entry.key),
                Cell(format_size(entry.size), align="right"),
                format_time(entry.last_modified),
            )
            for entry in self.objects
        ]
        table = columns(("name", "size", "modified (UTC)"), rows).html()
        more = f"<p>{escape(self._more())}</p>" if self.next_token else ""
        return f"<div><strong>{escape(str(self.ref))}</strong>{table}{more}</div>"


@dataclass(frozen=True, repr=False)
class Preview(Rendered):
    """The first bytes of an object: ``text`` when they decode as UTF-8, ``None`` for binary content."""

    bucket: str
    key: str
    text: str | None
    fetched: int
    size: int | None
    content_type: str | None

    @property
    def truncated(self) -> bool:
        return self.size is None or self.fetched < self.size

    def summary(self) -> str:
        total = "an unknown size" if self.size is None else format_size(self.size)
        if self.text is None:
            kind = f", {self.content_type}" if self.content_type else ""
            return f"binary, {total if self.size is None else f'{self.size} bytes'}{kind}"
        return f"first {format_size(self.fetched)} of {total}" if self.truncated else f"all of {total}"

    def __str__(self) -> str:
        if self.text is None:
            return f"{s3_uri(self.bucket, self.key)}: {self.summary()}"
        return f"{self.text}\n[{s3_uri(self.bucket, self.key)}: {self.summary()}]"

    def lines(self, count: int = PREVIEW_ROWS) -> list[str]:
        """The first ``count`` whole lines: a line the range cut short is left out, not shown half."""
        if not self.text:
            return []
        lines = self.text.splitlines()
        if self.truncated and not self.text.endswith(("\n", "\r")):
            lines = lines[:-1]
        return lines[:count]

    def table(self, count: int = PREVIEW_ROWS) -> list[list[str]] | None:
        """The header and first rows of a CSV or TSV object, parsed; ``None`` for any other object."""
        if kind_of(self.key) != TABLE or not _base_name(self.key).endswith((".csv", ".tsv")):
            return None
        if self.text is None:
            return None
        delimiter = "\t" if _base_name(self.key).endswith(".tsv") else ","
        return list(csv.reader(self.lines(count + 1), delimiter=delimiter))

    def to_dict(self, count: int = PREVIEW_ROWS) -> dict[str, Any]:
        """What a browser shows: the parsed rows of a CSV, else the whole first lines of a text (``text`` is
        ``None`` for binary content), and the summary that says how much of the object this is."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "uri": s3_uri(self.bucket, self.key),
            "kind": kind_of(self.key),
            "binary": self.text is None,
            "lines": self.lines(count),
            "table": self.table(count),
            "summary": self.summary(),
            "truncated": self.truncated,
            "size": self.size,
            "content_type": self.content_type,
        }

    def _repr_html_(self) -> str:
        body = "" if self.text is None else f"<pre>{escape(self.text)}</pre>"
        uri = escape(s3_uri(self.bucket, self.key))
        return f"<div><code>{uri}</code> ({escape(self.summary())}){body}</div>"


def level_of(prefix: str) -> str:
    """The "directory" a prefix lists: ``logs/2026/`` for ``logs/2026/`` and for ``logs/2026/ap``."""
    return prefix[: prefix.rfind("/") + 1]


def list_level(
    aws: Aws,
    ref: BucketRef,
    *,
    token: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    recursive: bool = False,
) -> Page:
    """One delimited page under ``ref.prefix``: its sub-prefixes ("folders") and the objects right in it;
    ``recursive`` lists every object below instead, with no folders (a day-partitioned log prefix)."""
    params: dict[str, Any] = {
        "Bucket": ref.access_point_arn or ref.bucket,
        "Prefix": ref.prefix,
        "MaxKeys": page_size,
    }
    if not recursive:
        params["Delimiter"] = "/"
    if token:
        params["ContinuationToken"] = token
    s3 = aws.client("s3")
    with s3_errors(s3, "s3:ListBucket", ref, str(ref)):
        response = s3.list_objects_v2(**params)
    folders = sorted(str(item["Prefix"]) for item in response.get("CommonPrefixes", []))
    objects = tuple(
        ObjectEntry(
            str(item["Key"]), int(item["Size"]), item["LastModified"], str(item.get("StorageClass", ""))
        )
        for item in response.get("Contents", [])
        # The zero-byte "folder" the S3 console makes is the level itself, not an entry in it.
        if not (ref.prefix.endswith("/") and item["Key"] == ref.prefix)
    )
    next_token = response.get("NextContinuationToken") if response.get("IsTruncated") else None
    return Page(ref, tuple(folders), objects, next_token)


def preview(aws: Aws, bucket: str, key: str, *, limit: int = PREVIEW_BYTES) -> Preview:
    """Read only the first ``limit`` bytes (a ranged GET), whatever the object's size."""
    ref = BucketRef(bucket=bucket, prefix=key)
    uri = s3_uri(bucket, key)
    s3 = aws.client("s3")
    with s3_errors(s3, "s3:GetObject", ref, uri):
        try:
            response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit - 1}")
        except ClientError as error:
            if error_code(error) != "InvalidRange":
                raise
            return Preview(bucket, key, "", 0, 0, None)  # S3 refuses any range of an empty object
    body = response["Body"]
    try:
        data = body.read(limit)  # a server that ignores Range still costs us only `limit` bytes
    finally:
        body.close()
    size = _total_size(response.get("ContentRange"), response.get("ContentLength"))
    content_type = response.get("ContentType")
    complete = size is not None and len(data) >= size
    return Preview(bucket, key, _decode(data, content_type, complete=complete), len(data), size, content_type)


def _total_size(content_range: str | None, content_length: int | None) -> int | None:
    """The object's size from ``bytes 0-1023/4096``; without a range the body is the whole object."""
    if content_range:
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    return None if content_length is None else int(content_length)


def _decode(data: bytes, content_type: str | None, *, complete: bool) -> str | None:
    """The bytes as text, or ``None`` if they are binary; a character cut by the range is dropped."""
    if (content_type or "").lower().startswith(BINARY_TYPES) or b"\x00" in data:
        return None
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=complete)
    except UnicodeDecodeError:
        return None


@contextmanager
def s3_errors(s3: Any, action: str, ref: BucketRef, where: str) -> Iterator[None]:
    """Turn the answers a browser meets (denied, missing) into errors that say so, and the rest into ours."""
    try:
        with aws_call(s3, action):
            yield
    except ClientError as error:
        code = error_code(error)
        if code in DENIED_CODES:
            raise BrowseDenied(
                f"S3 refused {action} on {where} ({code}). Run `%s3access check {ref.bucket}` (or "
                f"`s3access check {ref.bucket}`) to see which layer blocks it and what must change.",
                ref,
            ) from error
        if code == "NoSuchBucket":
            raise NoSuchBucket(
                f"There is no bucket named {ref.bucket} (S3 answered NoSuchBucket, so this is not a denial): "
                "check the spelling; bucket names are case-sensitive."
            ) from error
        if code == "NoSuchKey":
            raise NoSuchKey(f"{where} does not exist (deleted since it was listed?).") from error
        message = error.response.get("Error", {}).get("Message", "")
        raise AwsRequestFailed(f"{action} on {where} failed: S3 answered {code}: {message}") from error


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def _compression_suffix(key: str) -> str:
    """``.gz`` for ``iris.CSV.GZ``; empty when the key names no compression."""
    lower = key.lower()
    return next((ext for ext in PANDAS_COMPRESSIONS if lower.endswith(ext)), "")


def _base_name(key: str) -> str:
    """The key in lower case without a compression suffix: ``iris.CSV.gz`` reads as ``iris.csv``."""
    lower, suffix = key.lower(), _compression_suffix(key)
    return lower[: len(lower) - len(suffix)]


def _reader(key: str) -> tuple[str, tuple[str, ...]] | None:
    base = _base_name(key)
    return next((r for ext, r in PANDAS_READERS.items() if base.endswith(ext)), None)


def kind_of(key: str) -> str:
    """``table`` for what pandas reads (CSV, TSV, Parquet, JSON), ``text`` for plain text, else ``other``."""
    if _reader(key) is not None:
        return TABLE
    return TEXT if key.lower().endswith(TEXT_EXTENSIONS) else OTHER


def snippet(bucket: str, key: str) -> str:
    """A code cell that loads the object: into pandas for tabular formats, as bytes for anything else.

    The bytes come through boto3, as the check's own requests do: the same credentials, endpoint and (for a
    legacy name) path-style addressing, and no s3fs needed for pandas. Bucket and key are untrusted text:
    they enter the code only as ``repr()`` literals."""
    reader = _reader(key)
    get = f'data = s3.get_object(Bucket={bucket!r}, Key={key!r})["Body"].read()\n'
    if reader is None:
        return _s3_client_lines(bucket) + get + "len(data)"
    function, extra = reader
    compression = PANDAS_COMPRESSIONS.get(_compression_suffix(key))
    args = ["io.BytesIO(data)", *extra, *([f"compression={compression!r}"] if compression else [])]
    return _s3_client_lines(bucket, pandas=True) + get + f"df = pd.{function}({', '.join(args)})\ndf.head()"


def listing_snippet(bucket: str, prefix: str = "") -> str:
    """A code cell that lists one level of a bucket, as the browser does: one request, folders and keys."""
    return _s3_client_lines(bucket) + (
        f'page = s3.list_objects_v2(Bucket={bucket!r}, Prefix={prefix!r}, Delimiter="/")\n'
        '[p["Prefix"] for p in page.get("CommonPrefixes", [])] + [o["Key"] for o in page.get("Contents", [])]'
    )


def _s3_client_lines(bucket: str, *, pandas: bool = False) -> str:
    """The imports and an S3 client; path-style (with a note saying why) for a legacy bucket name."""
    imports = "import io\n\nimport boto3\nimport pandas as pd\n" if pandas else "import boto3\n"
    if bucket.startswith("arn:") or modern_rule_broken(bucket) is None:
        return imports + '\ns3 = boto3.client("s3")\n'
    return (
        imports
        + "from botocore.config import Config\n\n"
        + PATH_STYLE_NOTE.format(bucket=bucket)
        + 's3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))\n'
    )


def format_size(n: int) -> str:
    """Bytes as people read them: ``512 B``, ``3.8 KiB``, ``1.2 GiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in SIZE_UNITS[1:-1]:
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} {SIZE_UNITS[-1]}"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
