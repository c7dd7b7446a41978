"""Uploading one file: one PutObject when small, parts when large (aborted on failure), never over an
existing object unless asked."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import BrowseDenied
from mlspace_s3magic.core.errors import AwsRequestFailed, Conflict
from mlspace_s3magic.core.upload import (
    MAX_PARTS,
    MULTIPART_THRESHOLD,
    ObjectExists,
    part_size,
    upload,
)
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

MiB = 1024**2


@pytest.fixture
def owner(sandbox: SandboxState) -> Iterator[Aws]:
    """The shared bucket's owner, writing under a prefix of this test's own, removed afterwards."""
    aws = sandbox.aws_for("owner")
    yield aws
    s3 = aws.client("s3")
    for item in s3.list_objects_v2(Bucket=SHARED_BUCKET, Prefix="upload-tests/").get("Contents", []):
        s3.delete_object(Bucket=SHARED_BUCKET, Key=item["Key"])
    for pending in s3.list_multipart_uploads(Bucket=SHARED_BUCKET).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=SHARED_BUCKET, Key=pending["Key"], UploadId=pending["UploadId"])


def key() -> str:
    return f"upload-tests/{uuid.uuid4().hex}/data.csv"


def body(aws: Aws, name: str) -> tuple[bytes, dict[str, Any]]:
    answer = aws.client("s3").get_object(Bucket=SHARED_BUCKET, Key=name)
    return answer["Body"].read(), answer


def test_a_small_file_is_one_put_with_its_type(owner: Aws, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    seen: list[tuple[int, int]] = []
    name = key()
    done = upload(owner, path, SHARED_BUCKET, name, progress=lambda d, t: seen.append((d, t)))
    data, answer = body(owner, name)
    assert data == b"a,b\n1,2\n" and answer["ContentType"] == "text/csv"
    assert (done.size, done.parts, seen) == (8, 1, [(8, 8)])
    assert str(done) == f"Uploaded {path} to s3://{SHARED_BUCKET}/{name} (8 B)."


def test_a_large_file_goes_in_parts_with_progress(owner: Aws, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    content = bytes(range(256)) * (MULTIPART_THRESHOLD // 256 * 2 + 1000)  # 16 MiB and a bit: 3 parts
    path.write_bytes(content)
    seen: list[tuple[int, int]] = []
    name = key()
    done = upload(owner, path, SHARED_BUCKET, name, progress=lambda d, t: seen.append((d, t)))
    data, answer = body(owner, name)
    assert data == content
    assert done.parts == 3 and answer["ETag"].strip('"').endswith("-3")
    assert [d for d, _ in seen] == [8 * MiB, 16 * MiB, len(content)]
    assert {t for _, t in seen} == {len(content)}
    assert owner.client("s3").list_multipart_uploads(Bucket=SHARED_BUCKET).get("Uploads", []) == []


def test_a_failed_part_aborts_the_upload(owner: Aws, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (MULTIPART_THRESHOLD + 10))
    s3 = owner.client("s3")
    calls: list[int] = []

    def fail_the_second(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")

    s3.meta.events.register("before-parameter-build.s3.UploadPart", fail_the_second)
    name = key()
    try:
        with pytest.raises(AwsRequestFailed, match="InternalError"):
            upload(owner, path, SHARED_BUCKET, name)
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.UploadPart", fail_the_second)
    assert calls == [1, 2]
    assert s3.list_multipart_uploads(Bucket=SHARED_BUCKET).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=SHARED_BUCKET, Prefix=name).get("KeyCount") == 0


@pytest.mark.parametrize("size", [10, MULTIPART_THRESHOLD + 10])
def test_an_existing_object_is_kept_unless_replacing_is_asked(owner: Aws, tmp_path: Path, size: int) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"n" * size)
    name = key()
    owner.client("s3").put_object(Bucket=SHARED_BUCKET, Key=name, Body=b"theirs")
    with pytest.raises(ObjectExists) as refused:
        upload(owner, path, SHARED_BUCKET, name)
    assert isinstance(refused.value, Conflict)
    assert str(refused.value) == (
        f"s3://{SHARED_BUCKET}/{name} already exists: upload again with Replace to overwrite it."
    )
    assert body(owner, name)[0] == b"theirs"
    assert owner.client("s3").list_multipart_uploads(Bucket=SHARED_BUCKET).get("Uploads", []) == []
    upload(owner, path, SHARED_BUCKET, name, overwrite=True)
    assert body(owner, name)[0] == b"n" * size


def test_an_empty_file_and_a_denied_bucket(sandbox: SandboxState, owner: Aws, tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    seen: list[tuple[int, int]] = []
    name = key()
    assert upload(owner, path, SHARED_BUCKET, name, progress=lambda d, t: seen.append((d, t))).size == 0
    assert seen == [(0, 0)] and body(owner, name)[0] == b""
    with pytest.raises(BrowseDenied, match="s3:PutObject"):
        upload(sandbox.aws_for("alice@demo"), path, SHARED_BUCKET, key())


def test_parts_fit_in_ten_thousand() -> None:
    assert part_size(1) == part_size(MULTIPART_THRESHOLD * MAX_PARTS) == MULTIPART_THRESHOLD
    huge = 5 * 1024**4  # S3's largest object
    assert part_size(huge) * MAX_PARTS >= huge > (part_size(huge) - 1) * MAX_PARTS
