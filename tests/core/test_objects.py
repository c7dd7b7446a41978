"""A whole object for a viewer: text or base64, its media type, refused over the limit before its body."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import BrowseDenied, NoSuchKey
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.objects import TooLargeToOpen, guess_type, read_object
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import READABLE_BUCKET, SHARED_BUCKET

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture
def owner(sandbox: SandboxState) -> Iterator[Aws]:
    """The shared bucket's owner, writing under a prefix of this test's own, removed afterwards."""
    aws = sandbox.aws_for("owner")
    yield aws
    s3 = aws.client("s3")
    for item in s3.list_objects_v2(Bucket=SHARED_BUCKET, Prefix="object-tests/").get("Contents", []):
        s3.delete_object(Bucket=SHARED_BUCKET, Key=item["Key"])


def put(aws: Aws, name: str, data: bytes, **extra: str) -> str:
    key = f"object-tests/{uuid.uuid4().hex}/{name}"
    aws.client("s3").put_object(Bucket=SHARED_BUCKET, Key=key, Body=data, **extra)
    return key


def test_a_csv_is_text_typed_by_its_name(sandbox: SandboxState) -> None:
    """The sandbox's objects carry S3's generic type: the extension names a better one."""
    shown = read_object(sandbox.aws_for("alice@demo"), READABLE_BUCKET, "reference/countries.csv").to_dict()
    assert shown["content"].startswith("code,name\nFR,France\n")
    assert (shown["format"], shown["mimetype"], shown["name"]) == ("text", "text/csv", "countries.csv")
    assert shown["size"] == len(shown["content"].encode())
    assert shown["uri"] == f"s3://{READABLE_BUCKET}/reference/countries.csv" and shown["last_modified"]


def test_binary_is_base64_and_a_stated_type_wins(owner: Aws) -> None:
    key = put(owner, "pixel", PNG, ContentType="image/png; charset=binary")
    shown = read_object(owner, SHARED_BUCKET, key).to_dict()
    assert (shown["format"], shown["mimetype"]) == ("base64", "image/png")
    assert base64.b64decode(shown["content"]) == PNG
    unknown = read_object(owner, SHARED_BUCKET, put(owner, "blob", b"\xff\xfe")).to_dict()
    assert unknown["mimetype"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("key", "mimetype"),
    [
        ("a/b.ipynb", "application/x-ipynb+json"),
        ("a/B.CSV", "text/csv"),
        ("x.json", "application/json"),
        ("x.png", "image/png"),
        ("x.unknown-ext", None),
    ],
)
def test_the_type_a_name_says(key: str, mimetype: str | None) -> None:
    assert guess_type(key) == mimetype


def test_an_object_over_the_limit_is_refused_unread(owner: Aws) -> None:
    key = put(owner, "big.txt", b"x" * 2000)
    requests: list[str] = []
    owner.client("s3").meta.events.register("before-send.s3.GetObject", lambda **_: requests.append("get"))
    with pytest.raises(TooLargeToOpen) as refused:
        read_object(owner, SHARED_BUCKET, key, limit=1000)
    assert isinstance(refused.value, InvalidInput) and requests == ["get"]
    assert "is 2.0 KiB, over the 1000 B a viewer may open: use Download" in str(refused.value)
    assert read_object(owner, SHARED_BUCKET, key, limit=2000).to_dict()["content"] == "x" * 2000


def test_denied_and_missing(sandbox: SandboxState) -> None:
    with pytest.raises(BrowseDenied):
        read_object(sandbox.aws_for("alice@demo"), SHARED_BUCKET, "datasets/iris/iris.csv")
    with pytest.raises(NoSuchKey):
        read_object(sandbox.aws_for("alice@demo"), READABLE_BUCKET, "nope.csv")
