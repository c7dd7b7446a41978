"""The sidebar's transfers as alice@demo against the sandbox: ``download`` into a folder of Jupyter's root,
``upload`` from it, ``object`` for the viewers; NDJSON progress streams, and refusals before any byte."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from mlspace_s3magic.core.upload import MULTIPART_THRESHOLD
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import DATA_BUCKET, READABLE_BUCKET, SHARED_BUCKET
from mlspace_s3magic.server.transfer_handlers import NDJSON, TRANSFER_ROUTES, DownloadHandler, ObjectHandler

from ..admin.conftest import serve_endpoint
from .conftest import Fetch, get_json, refused

TRAIN = "project/demo/train.csv"  # iris-shaped rows alice's project may read
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def events(response: HTTPResponse) -> list[dict[str, Any]]:
    assert response.code == 200
    assert response.headers["Content-Type"] == NDJSON
    text = response.body.decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def transfer(fetch: Fetch, route: str, **params: str) -> list[dict[str, Any]]:
    return events(await fetch("s3access", route, method="POST", body=b"", params=params))


async def test_download_saves_the_object_in_the_folder_with_progress(
    jp_fetch: Fetch, jp_root_dir: Path, sandbox: SandboxState
) -> None:
    expected = sandbox.aws_for("admin").client("s3").get_object(Bucket=DATA_BUCKET, Key=TRAIN)["Body"].read()
    (jp_root_dir / "work" / "data").mkdir(parents=True)
    (jp_root_dir / "work" / "data" / "train.csv").write_text("mine")
    sent = await transfer(jp_fetch, "download", bucket=DATA_BUCKET, key=TRAIN, folder="work/data")
    *progress, done = sent
    assert progress and all(event["event"] == "progress" for event in progress)
    assert progress[-1] == {"event": "progress", "done": len(expected), "total": len(expected)}
    assert done == {
        "event": "done",
        "uri": f"s3://{DATA_BUCKET}/{TRAIN}",
        "path": "work/data/train-1.csv",
        "size": len(expected),
        "size_text": done["size_text"],
        "message": f"Saved s3://{DATA_BUCKET}/{TRAIN} as work/data/train-1.csv ({done['size_text']}).",
    }
    assert done["size_text"] == f"{len(expected)} B"
    assert (jp_root_dir / "work" / "data" / "train-1.csv").read_bytes() == expected
    assert (jp_root_dir / "work" / "data" / "train.csv").read_text() == "mine"
    again = await transfer(jp_fetch, "download", bucket=DATA_BUCKET, key=TRAIN, folder="")
    assert again[-1]["path"] == "train.csv" and (jp_root_dir / "train.csv").read_bytes() == expected


@pytest.mark.parametrize(
    ("folder", "status", "named"),
    [
        ("..", 400, "'..'"),
        ("work/../..", 400, "'..'"),
        ("/tmp", 400, "relative"),
        ("out", 400, "leads out"),  # a symlink to a folder outside the root
        ("notes.txt", 400, "not a folder"),
        (".secret", 400, "hidden"),
        ("missing", 404, "no folder"),
    ],
)
async def test_a_folder_outside_the_root_or_not_one_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, tmp_path: Path, folder: str, status: int, named: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (jp_root_dir / "out").symlink_to(outside)
    (jp_root_dir / "notes.txt").write_text("a file")
    (jp_root_dir / ".secret").mkdir()
    code, message = await refused(
        jp_fetch,
        "download",
        method="POST",
        body=b"",
        params={"bucket": DATA_BUCKET, "key": TRAIN, "folder": folder},
    )
    assert (code, named in message) == (status, True), message
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("bucket", "key", "status", "named"),
    [
        (SHARED_BUCKET, "datasets/iris/iris.csv", 403, f"check {SHARED_BUCKET}"),
        (READABLE_BUCKET, "nope.csv", 404, "nope.csv"),
        (READABLE_BUCKET, "reference/", 400, "folder"),
    ],
)
async def test_a_download_refused_before_its_body_is_plain_json(
    jp_fetch: Fetch, jp_root_dir: Path, bucket: str, key: str, status: int, named: str
) -> None:
    code, message = await refused(
        jp_fetch, "download", method="POST", body=b"", params={"bucket": bucket, "key": key, "folder": ""}
    )
    assert (code, named in message) == (status, True), message
    assert list(jp_root_dir.iterdir()) == []


async def test_a_download_over_the_limit_is_400_and_writes_nothing(
    jp_fetch: Fetch, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DownloadHandler, "limit", 100)
    code, message = await refused(
        jp_fetch, "download", method="POST", body=b"", params={"bucket": DATA_BUCKET, "key": TRAIN}
    )
    assert code == 400 and "over the 100 B download limit" in message
    assert list(jp_root_dir.iterdir()) == []


async def test_no_transfer_route_answers_without_a_token(jp_fetch: Fetch) -> None:
    for name, _ in TRANSFER_ROUTES:
        method = "GET" if name == "object" else "POST"
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "s3access",
                name,
                method=method,
                body=b"" if method == "POST" else None,
                params={"bucket": DATA_BUCKET, "key": TRAIN, "prefix": "private/alice/", "path": "x"},
                headers={"Authorization": ""},
            )
        assert caught.value.code in (401, 403), name


async def test_upload_puts_the_file_in_alices_prefix_and_replaces_only_when_asked(
    jp_fetch: Fetch, jp_root_dir: Path, fresh_sandbox: SandboxState
) -> None:
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / "work" / "mine.csv").write_text("a,b\n1,2\n")
    asked = {"bucket": DATA_BUCKET, "prefix": "private/alice/", "path": "work/mine.csv"}
    key = "private/alice/mine.csv"
    *progress, done = await transfer(jp_fetch, "upload", **asked)
    assert progress == [{"event": "progress", "done": 8, "total": 8}]
    assert done == {
        "event": "done",
        "uri": f"s3://{DATA_BUCKET}/{key}",
        "path": "work/mine.csv",
        "size": 8,
        "size_text": "8 B",
        "message": f"Uploaded work/mine.csv to s3://{DATA_BUCKET}/{key} (8 B).",
    }
    s3 = fresh_sandbox.aws_for("admin").client("s3")
    assert s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read() == b"a,b\n1,2\n"

    (jp_root_dir / "work" / "mine.csv").write_text("a,b\n3,4\n")
    status, message = await refused(jp_fetch, "upload", method="POST", body=b"", params=asked)
    assert (status, message) == (
        409,
        f"s3://{DATA_BUCKET}/{key} already exists: upload again with Replace to overwrite it.",
    )
    assert s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read() == b"a,b\n1,2\n"
    replaced = await transfer(jp_fetch, "upload", **asked, overwrite="true")
    assert replaced[-1]["event"] == "done"
    assert s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read() == b"a,b\n3,4\n"

    (jp_root_dir / "big.bin").write_bytes(b"b" * (MULTIPART_THRESHOLD + 1))
    *parts, done = await transfer(jp_fetch, "upload", **{**asked, "path": "big.bin"})
    assert [event["done"] for event in parts] == [MULTIPART_THRESHOLD, MULTIPART_THRESHOLD + 1]
    assert done["size"] == MULTIPART_THRESHOLD + 1
    head = s3.head_object(Bucket=DATA_BUCKET, Key="private/alice/big.bin")
    assert head["ContentLength"] == MULTIPART_THRESHOLD + 1 and head["ETag"].strip('"').endswith("-2")


async def test_upload_to_a_read_only_bucket_is_403_with_what_the_check_knows(
    jp_fetch: Fetch, jp_root_dir: Path, sandbox: SandboxState
) -> None:
    """Alice's notebook cannot read its own policies, so the check cannot tell beforehand: S3 refuses, and
    the refusal says which layers may block it and where the fixes are."""
    (jp_root_dir / "mine.csv").write_text("a,b\n")
    status, message = await refused(
        jp_fetch,
        "upload",
        method="POST",
        body=b"",
        params={"bucket": READABLE_BUCKET, "prefix": "reference/", "path": "mine.csv"},
    )
    assert status == 403
    assert message.startswith(f"S3 refused s3:PutObject on s3://{READABLE_BUCKET}/reference/mine.csv")
    assert f"whether you may write to s3://{READABLE_BUCKET}/reference/; the layers that may block it:" in (
        message
    )
    assert "bucket-policy" in message and message.endswith("Open the check for the fixes.")
    listed = sandbox.aws_for("owner").client("s3").list_objects_v2(Bucket=READABLE_BUCKET)
    assert "reference/mine.csv" not in [item["Key"] for item in listed["Contents"]]


async def test_upload_denied_by_the_endpoints_check_sends_nothing(
    jp_fetch: Fetch,
    jp_root_dir: Path,
    sandbox: SandboxState,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the admin endpoint, which reads every layer, the check finds writing denied: refused before
    any byte is sent, with the layers that block it."""
    (jp_root_dir / "mine.csv").write_text("a,b\n")
    puts: list[str] = []
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        monkeypatch.setattr("mlspace_s3magic.core.upload.upload", lambda *args, **kwargs: puts.append("put"))
        status, message = await refused(
            jp_fetch,
            "upload",
            method="POST",
            body=b"",
            params={"bucket": READABLE_BUCKET, "prefix": "", "path": "mine.csv"},
        )
    assert status == 403 and puts == []
    assert message.startswith(f"You may not upload to s3://{READABLE_BUCKET}/. The access check finds")
    assert "blocked by" in message and message.endswith("Open the check for the fixes.")


@pytest.mark.parametrize(
    ("params", "status", "named"),
    [
        ({"path": "work"}, 400, "not a regular file"),
        ({"path": ""}, 400, "required"),
        ({"path": "gone.csv"}, 404, "no file"),
        ({"path": "../x.csv"}, 400, "'..'"),
        ({"path": "work/mine.csv", "prefix": "private/alice"}, 400, "ending in '/'"),
    ],
)
async def test_an_upload_of_no_file_or_to_no_folder_is_refused(
    jp_fetch: Fetch, jp_root_dir: Path, params: dict[str, str], status: int, named: str
) -> None:
    (jp_root_dir / "work").mkdir()
    (jp_root_dir / "work" / "mine.csv").write_text("a")
    asked = {"bucket": DATA_BUCKET, "prefix": "private/alice/", **params}
    code, message = await refused(jp_fetch, "upload", method="POST", body=b"", params=asked)
    assert (code, named in message) == (status, True), message


async def test_object_is_a_csvs_text_or_binary_as_base64(jp_fetch: Fetch, sandbox: SandboxState) -> None:
    shown = await get_json(jp_fetch, "object", bucket=READABLE_BUCKET, key="reference/countries.csv")
    assert (shown["format"], shown["mimetype"]) == ("text", "text/csv")
    assert shown["content"].splitlines()[:2] == ["code,name", "FR,France"]
    admin = sandbox.aws_for("admin").client("s3")
    key = f"private/alice/pixel-{uuid.uuid4().hex}.png"
    admin.put_object(Bucket=DATA_BUCKET, Key=key, Body=PNG)
    try:
        binary = await get_json(jp_fetch, "object", bucket=DATA_BUCKET, key=key)
    finally:
        admin.delete_object(Bucket=DATA_BUCKET, Key=key)
    assert (binary["format"], binary["mimetype"], binary["size"]) == ("base64", "image/png", len(PNG))
    assert base64.b64decode(binary["content"]) == PNG


async def test_object_over_the_limit_is_400_suggesting_download(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ObjectHandler, "limit", 10)
    status, message = await refused(
        jp_fetch, "object", params={"bucket": READABLE_BUCKET, "key": "reference/countries.csv"}
    )
    assert status == 400 and "over the 10 B a viewer may open: use Download" in message
    status, message = await refused(jp_fetch, "object", params={"bucket": SHARED_BUCKET, "key": TRAIN})
    assert status == 403


async def test_a_client_gone_mid_download_stops_it_and_leaves_no_file(
    jp_fetch: Fetch,
    jp_root_dir: Path,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    sandbox: SandboxState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The browser reads the first progress line and closes: the server's next line fails to go, the
    download stops at its next chunk, removes its part file, and the server goes on serving."""
    monkeypatch.setattr("mlspace_s3magic.core.download.CHUNK_BYTES", 1024)
    monkeypatch.setattr("mlspace_s3magic.server.transfer_handlers.PROGRESS_INTERVAL", 0)
    admin = sandbox.aws_for("admin").client("s3")
    key = f"private/alice/long-{uuid.uuid4().hex}.bin"
    admin.put_object(Bucket=DATA_BUCKET, Key=key, Body=b"z" * (4 * 1024**2))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
        path = f"{jp_base_url}s3access/download?bucket={DATA_BUCKET}&key={key}&folder="
        headers = "".join(f"{name}: {value}\r\n" for name, value in jp_auth_header.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: 0\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and NDJSON.encode() in head
        await reader.readuntil(b"\n")
        writer.close()
        for _ in range(100):  # the thread notices at its next chunk
            if not list(jp_root_dir.iterdir()):
                break
            await asyncio.sleep(0.05)
        assert list(jp_root_dir.iterdir()) == []
    finally:
        admin.delete_object(Bucket=DATA_BUCKET, Key=key)
    shown = await get_json(jp_fetch, "object", bucket=READABLE_BUCKET, key="README.txt")
    assert shown["format"] == "text"
