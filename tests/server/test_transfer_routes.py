"""The sidebar's transfers as alice@demo against the sandbox: ``download`` into a folder of Jupyter's root,
``upload`` from it, ``object`` for the viewers; NDJSON progress streams, and refusals before any byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPResponse

from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import DATA_BUCKET, READABLE_BUCKET, SHARED_BUCKET
from mlspace_s3magic.server.transfer_handlers import NDJSON, TRANSFER_ROUTES, DownloadHandler

from .conftest import Fetch, refused

TRAIN = "project/demo/train.csv"  # iris-shaped rows alice's project may read


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
