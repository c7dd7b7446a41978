"""Copying one local file to an object: in one PutObject when small, in parts (with progress) when large,
never over an existing object unless asked.

"Never over" is S3's own conditional write (``If-None-Match: *``), so an object written meanwhile by someone
else is not replaced either. A multipart upload that fails is aborted, so no invisible parts stay billed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlspace_s3magic.core.aws import Aws, error_code
from mlspace_s3magic.core.browse import BrowseDenied, format_size, s3_errors, s3_uri
from mlspace_s3magic.core.check import AccessReport, Verdict
from mlspace_s3magic.core.errors import Conflict, NotAllowed, S3MagicError
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.objects import guess_type
from mlspace_s3magic.core.probes import Outcome
from mlspace_s3magic.core.render import Rendered

MULTIPART_THRESHOLD = 8 * 1024**2  # 8 MiB: a file this large or larger goes in parts
MAX_PARTS = 10_000  # S3's limit on a multipart upload's parts
EXISTS_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

Progress = Callable[[int, int], None]  # (bytes sent so far, total bytes)


class ObjectExists(Conflict):
    """An object already has the key, and replacing it was not asked for."""


class UploadDenied(NotAllowed):
    """The check, or S3 itself, says this caller may not write there."""


@dataclass(frozen=True, repr=False)
class Uploaded(Rendered):
    """Which file went where, how many bytes, and in how many parts (1: a single PutObject)."""

    path: Path
    uri: str
    size: int
    parts: int

    def __str__(self) -> str:
        return f"Uploaded {self.path} to {self.uri} ({format_size(self.size)})."

    def _repr_html_(self) -> str:
        return f"<p>{escape(str(self))}</p>"


def part_size(total: int) -> int:
    """At least the threshold, and large enough that the file fits in S3's 10,000 parts."""
    return max(MULTIPART_THRESHOLD, math.ceil(total / MAX_PARTS))


def upload(
    aws: Aws,
    path: Path,
    bucket: str,
    key: str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    threshold: int = MULTIPART_THRESHOLD,
) -> Uploaded:
    """Copy the file at ``path`` to ``s3://bucket/key``; without ``overwrite`` an existing object is kept
    and :class:`ObjectExists` raised."""
    uri = s3_uri(bucket, key)
    total = path.stat().st_size
    extra: dict[str, Any] = {}
    content_type = guess_type(key)
    if content_type:
        extra["ContentType"] = content_type
    condition = {} if overwrite else {"IfNoneMatch": "*"}
    s3 = aws.client("s3")
    if total < threshold:
        with _s3_errors(s3, "s3:PutObject", bucket, key), path.open("rb") as stream:
            s3.put_object(Bucket=bucket, Key=key, Body=stream, **extra, **condition)
        if progress is not None:
            progress(total, total)
        return Uploaded(path, uri, total, 1)
    with _s3_errors(s3, "s3:PutObject", bucket, key):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    try:
        parts, sent = _send_parts(s3, path, bucket, key, upload_id, part_size(total), total, progress)
        with _s3_errors(s3, "s3:PutObject", bucket, key):
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **condition
            )
    except BaseException:
        with suppress(ClientError, BotoCoreError, S3MagicError):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return Uploaded(path, uri, sent, len(parts))


def _send_parts(
    s3: Any,
    path: Path,
    bucket: str,
    key: str,
    upload_id: str,
    size: int,
    total: int,
    progress: Progress | None,
) -> tuple[list[dict[str, Any]], int]:
    """Each part in turn, read from the file as it goes (one part in memory at a time); the parts for
    CompleteMultipartUpload and the bytes sent."""
    parts: list[dict[str, Any]] = []
    sent = 0
    with path.open("rb") as stream:
        while chunk := stream.read(size):
            number = len(parts) + 1
            with _s3_errors(s3, "s3:PutObject", bucket, key):
                answer = s3.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
            parts.append({"ETag": answer["ETag"], "PartNumber": number})
            sent += len(chunk)
            if progress is not None:
                progress(sent, max(total, sent))
    return parts, sent


@contextmanager
def _s3_errors(s3: Any, action: str, bucket: str, key: str) -> Iterator[None]:
    """:func:`~mlspace_s3magic.core.browse.s3_errors`, with S3's "an object has this key" (the conditional
    write refused) said as a conflict the caller can resolve."""
    uri = s3_uri(bucket, key)
    with s3_errors(s3, action, BucketRef(bucket=bucket, prefix=key), uri):
        try:
            yield
        except ClientError as error:
            if error_code(error) in EXISTS_CODES:
                raise ObjectExists(
                    f"{uri} already exists: upload again with Replace to overwrite it."
                ) from error
            raise


def check_reason(report: AccessReport) -> str:
    """What the check knows about writing there: its verdict, the layers that block it (or may), the
    probe's evidence when one ran, and where the fixes are."""
    write = report.capabilities["write"]
    layers = ", ".join(write.blocked_by)
    if write.verdict is Verdict.DENIED:
        said = f"The access check finds writing to {report.ref} denied" + (
            f", blocked by {layers}" if layers else ""
        )
    else:
        said = f"The access check could not tell whether you may write to {report.ref}" + (
            f"; the layers that may block it: {layers}" if layers else ""
        )
    evidence = "" if write.probe.outcome is Outcome.NOT_RUN else f" Evidence: {write.probe.detail}"
    return f"{said}.{evidence} Open the check for the fixes."


def checked_upload(
    aws: Aws,
    report: AccessReport,
    path: Path,
    bucket: str,
    key: str,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> Uploaded:
    """The upload as every shell makes it, given the check of the place (``need="write"``): refused before
    any byte is sent when the check finds writing there denied; when S3 refuses what the check could not
    rule out, its refusal comes with what the check knows."""
    if report.verdict("write") is Verdict.DENIED:
        raise UploadDenied(f"You may not upload to {report.ref}. {check_reason(report)}")
    try:
        return upload(aws, path, bucket, key, overwrite=overwrite, progress=progress)
    except BrowseDenied as error:
        raise UploadDenied(f"{error} {check_reason(report)}") from error
