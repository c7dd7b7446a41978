"""Downloading one object into a folder: streamed with progress, capped, never over a file or out of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.core.browse import BrowseDenied, NoSuchKey
from mlspace_s3magic.core.download import TooLargeToDownload, download, local_name
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

IRIS = "datasets/iris/iris.csv"


class GetRequests:
    """Counts GetObject requests and the body bytes read."""

    def __init__(self, client: Any):
        self.count = 0
        client.meta.events.register("before-send.s3.GetObject", self._record)

    def _record(self, **_: Any) -> None:
        self.count += 1


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("datasets/iris/iris.csv", "iris.csv"),
        ("../../etc/passwd", "passwd"),
        ("a/..", "download"),
        ("folder/", "download"),
        ("a/line\nbreak\x1b[2J.txt", "line_break_[2J.txt"),
        ("a\\b.csv", "a_b.csv"),
        ("x/" + "n" * 300 + ".csv", "n" * 196 + ".csv"),
    ],
)
def test_a_local_name_stays_in_the_folder(key: str, name: str) -> None:
    assert local_name(key) == name


def test_download_streams_the_object_with_progress_and_keeps_existing_files(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    owner = sandbox.aws_for("owner")
    expected = owner.client("s3").get_object(Bucket=SHARED_BUCKET, Key=IRIS)["Body"].read()
    seen: list[tuple[int, int]] = []
    saved = download(
        owner, SHARED_BUCKET, IRIS, tmp_path, progress=lambda done, total: seen.append((done, total))
    )
    assert saved.path == tmp_path / "iris.csv" and saved.size == len(expected)
    assert saved.path.read_bytes() == expected
    assert saved.path.stat().st_mode & 0o777 == 0o644
    assert seen[-1] == (len(expected), len(expected))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert f"s3://{SHARED_BUCKET}/{IRIS}" in str(saved) and "KiB" in str(saved)

    (tmp_path / "iris-1.csv").write_text("mine")
    (tmp_path / "iris-2.csv").symlink_to(tmp_path / "elsewhere")
    again = download(owner, SHARED_BUCKET, IRIS, tmp_path)
    assert again.path == tmp_path / "iris-3.csv"
    assert (tmp_path / "iris-1.csv").read_text() == "mine" and not (tmp_path / "elsewhere").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".part")]


def test_an_object_over_the_limit_is_refused_before_its_body_is_read(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    owner = sandbox.aws_for("owner")
    requests = GetRequests(owner.client("s3"))
    with pytest.raises(TooLargeToDownload) as refused:
        download(owner, SHARED_BUCKET, IRIS, tmp_path, limit=1000)
    assert isinstance(refused.value, InvalidInput)
    assert "over the 1000 B download limit" in str(refused.value) and "aws s3 cp" in str(refused.value)
    assert requests.count == 1 and list(tmp_path.iterdir()) == []


def test_denied_and_missing_objects_say_so(sandbox: SandboxState, tmp_path: Path) -> None:
    with pytest.raises(BrowseDenied, match="s3:GetObject"):
        download(sandbox.aws_for("alice@demo"), SHARED_BUCKET, IRIS, tmp_path)
    with pytest.raises(NoSuchKey):
        download(sandbox.aws_for("owner"), SHARED_BUCKET, "datasets/none.csv", tmp_path)
    assert list(tmp_path.iterdir()) == []
