"""Browsing: one delimited page per call, previews from a ranged GET, snippets that run, clear denials."""

from __future__ import annotations

import ast
import bz2
import gzip
import json
from collections.abc import Callable, Iterator
from math import ceil
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import (
    OTHER,
    TABLE,
    TEXT,
    BrowseDenied,
    NoSuchBucket,
    NoSuchKey,
    Page,
    Preview,
    format_size,
    kind_of,
    list_level,
    preview,
    s3_uri,
    snippet,
)
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import LOG_OBJECT_COUNT, SHARED_BUCKET

LOG_DAYS = 28
IRIS = "datasets/iris/iris.csv"
LOG_KEYS = {f"logs/2026/11/{1 + i % LOG_DAYS:02d}/part-{i:04d}.log" for i in range(LOG_OBJECT_COUNT)}


class Requests:
    """Records each request a client sends for one S3 operation, with its query parameters and headers."""

    def __init__(self, aws: Aws, operation: str):
        self.sent: list[tuple[dict[str, list[str]], dict[str, Any]]] = []
        aws.client("s3").meta.events.register(f"before-send.s3.{operation}", self._record)

    def _record(self, request: Any, **_: Any) -> None:
        self.sent.append((parse_qs(urlsplit(request.url).query), dict(request.headers)))

    def __len__(self) -> int:
        return len(self.sent)


def _all_pages(aws: Aws, ref: BucketRef, page_size: int) -> Iterator[Page]:
    token: str | None = None
    while True:
        page = list_level(aws, ref, token=token, page_size=page_size)
        yield page
        token = page.next_token
        if token is None:
            return


def test_one_level_lists_folders_then_objects_like_aws_s3_ls(sandbox: SandboxState) -> None:
    owner = sandbox.aws_for("owner")
    root = list_level(owner, parse_bucket_reference(SHARED_BUCKET))
    assert root.folders == ("datasets/", "logs/")
    assert root.objects == ()
    assert root.next_token is None
    assert str(root).splitlines() == [f"{'PRE':>30} datasets/", f"{'PRE':>30} logs/"]

    iris = list_level(owner, parse_bucket_reference(f"s3://{SHARED_BUCKET}/datasets/iris/"))
    assert [entry.key for entry in iris.objects] == ["datasets/iris/README.txt", "datasets/iris/iris.csv"]
    lines = str(iris).splitlines()
    assert lines[1].endswith(" iris.csv") and lines[1].split()[2].isdigit()
    assert iris.objects[1].size == int(lines[1].split()[2]) > 1024
    assert json.loads(json.dumps(iris.to_dict()))["objects"][1]["key"] == "datasets/iris/iris.csv"
    assert "<table>" in iris._repr_html_() and "iris.csv" in iris._repr_html_()


def test_a_partial_prefix_lists_like_aws_s3_ls(sandbox: SandboxState) -> None:
    page = list_level(sandbox.aws_for("owner"), parse_bucket_reference(f"{SHARED_BUCKET}/data"))
    assert page.folders == ("datasets/",)
    assert page.name("datasets/") == "datasets/"


def test_paging_follows_tokens_with_one_request_per_page(sandbox: SandboxState) -> None:
    owner = sandbox.aws_for("owner")
    requests = Requests(owner, "ListObjectsV2")
    days = list(_all_pages(owner, parse_bucket_reference(f"{SHARED_BUCKET}/logs/2026/11/"), 7))
    assert len(days) == len(requests) == ceil(LOG_DAYS / 7)
    folders = [folder for page in days for folder in page.folders]
    assert folders == [f"logs/2026/11/{day:02d}/" for day in range(1, LOG_DAYS + 1)]
    assert days[0].next_token is not None and days[0].next_token in str(days[0])
    assert "more entries remain" in str(days[0]).splitlines()[-1].lower()

    keys: list[str] = []
    for folder in folders:
        before = len(requests)
        pages = list(_all_pages(owner, parse_bucket_reference(f"{SHARED_BUCKET}/{folder}"), 7))
        assert len(requests) - before == len(pages)
        assert all(len(page.objects) <= 7 and not page.folders for page in pages)
        keys += [entry.key for page in pages for entry in page.objects]
    assert len(keys) == len(set(keys)) == LOG_OBJECT_COUNT
    assert set(keys) == LOG_KEYS
    assert all(query["max-keys"] == ["7"] and query["delimiter"] == ["/"] for query, _ in requests.sent)
    assert sum("continuation-token" in query for query, _ in requests.sent) == len(requests) - LOG_DAYS - 1


def test_preview_reads_only_the_first_bytes(sandbox: SandboxState) -> None:
    owner = sandbox.aws_for("owner")
    requests = Requests(owner, "GetObject")
    first = preview(owner, SHARED_BUCKET, "datasets/iris/iris.csv")
    assert first.text is not None
    assert first.text.splitlines()[0] == "sepal_length,sepal_width,petal_length,petal_width,species"
    assert first.fetched == 1024 and first.size is not None and first.size > 1024 and first.truncated
    assert "first 1.0 KiB of" in str(first)
    assert [headers["Range"] for _, headers in requests.sent] == [b"bytes=0-1023"]

    whole = preview(owner, SHARED_BUCKET, "datasets/iris/README.txt")
    assert whole.text is not None and whole.text.startswith("A small iris-shaped dataset")
    assert not whole.truncated and "all of" in str(whole)


def test_binary_empty_cut_text_and_folder_markers(fresh_sandbox: SandboxState) -> None:
    """Objects the seed lacks, in one changed world (rebuilding it is the slow part)."""
    owner = fresh_sandbox.aws_for("owner")
    s3 = owner.client("s3")
    s3.put_object(Bucket=SHARED_BUCKET, Key="blobs/", Body=b"")  # the console's "folder"
    s3.put_object(Bucket=SHARED_BUCKET, Key="blobs/model.bin", Body=bytes(range(256)) * 8)
    s3.put_object(Bucket=SHARED_BUCKET, Key="blobs/empty.txt", Body=b"")
    s3.put_object(Bucket=SHARED_BUCKET, Key="blobs/accents.txt", Body=("é" * 1000).encode())

    page = list_level(owner, parse_bucket_reference(f"{SHARED_BUCKET}/blobs/"))
    assert [page.name(entry.key) for entry in page.objects] == ["accents.txt", "empty.txt", "model.bin"]

    binary = preview(owner, SHARED_BUCKET, "blobs/model.bin")
    assert binary.text is None
    assert (
        str(binary) == f"{s3_uri(SHARED_BUCKET, 'blobs/model.bin')}: binary, 2048 bytes, binary/octet-stream"
    )
    assert "<pre>" not in binary._repr_html_()

    empty = preview(owner, SHARED_BUCKET, "blobs/empty.txt")
    assert (empty.text, empty.size, empty.truncated) == ("", 0, False)

    cut = preview(owner, SHARED_BUCKET, "blobs/accents.txt", limit=1023)
    assert cut.text == "é" * 511  # the half character at the end of the range is dropped, not an error


def test_denial_and_missing_bucket_raise_errors_that_say_what_happened(sandbox: SandboxState) -> None:
    ref = parse_bucket_reference(SHARED_BUCKET)
    with pytest.raises(BrowseDenied) as denied:
        list_level(sandbox.aws_for("alice@demo"), ref)
    assert denied.value.ref == ref
    message = str(denied.value)
    assert "s3:ListBucket" in message and "AccessDenied" in message
    assert f"s3access check {SHARED_BUCKET}" in message

    with pytest.raises(BrowseDenied, match="s3:GetObject"):
        preview(sandbox.aws_for("alice@demo"), SHARED_BUCKET, "datasets/iris/iris.csv")
    with pytest.raises(NoSuchBucket, match="no bucket named no-such-bucket-here"):
        list_level(sandbox.aws_for("owner"), parse_bucket_reference("no-such-bucket-here"))
    with pytest.raises(NoSuchKey, match="does not exist"):
        preview(sandbox.aws_for("owner"), SHARED_BUCKET, "datasets/nothing.csv")


def _call_in(code: str) -> ast.Call:
    """The last top-level call that reads the object, from the snippet parsed as Python."""
    calls = [node for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call)]
    return next(
        c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr.startswith(("read_", "get_"))
    )


@pytest.fixture
def put(sandbox: SandboxState) -> Iterator[Callable[[str, bytes], None]]:
    """Put objects into the shared bucket as its owner, and delete them afterwards: other tests list it."""
    s3 = sandbox.aws_for("owner").client("s3")
    keys: list[str] = []

    def putting(key: str, body: bytes) -> None:
        keys.append(key)
        s3.put_object(Bucket=SHARED_BUCKET, Key=key, Body=body)

    yield putting
    for key in keys:
        s3.delete_object(Bucket=SHARED_BUCKET, Key=key)


def _run(code: str, sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Run a snippet as a notebook cell would, as the sandbox's owner, and return its variables."""
    for name, value in sandbox.environment_for("owner").items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    variables: dict[str, Any] = {}
    exec(compile(code, "<snippet>", "exec"), variables)  # the snippet is the code under test
    return variables


ROWS = [{"sepal": 5.1, "species": "setosa"}, {"sepal": 6.3, "species": "virginica"}]
TABLES = {
    "snippets/rows.csv": b"sepal,species\n5.1,setosa\n6.3,virginica\n",
    "snippets/rows.CSV.gz": gzip.compress(b"sepal,species\n5.1,setosa\n6.3,virginica\n"),
    "snippets/rows.tsv": b"sepal\tspecies\n5.1\tsetosa\n6.3\tvirginica\n",
    "snippets/rows.json": json.dumps(ROWS).encode(),
    "snippets/rows.jsonl": "".join(json.dumps(row) + "\n" for row in ROWS).encode(),
    "snippets/rows.jsonl.bz2": bz2.compress("".join(json.dumps(row) + "\n" for row in ROWS).encode()),
}


@pytest.mark.parametrize("key", sorted(TABLES))
def test_table_snippets_run_and_load_the_rows_with_pandas(
    key: str, sandbox: SandboxState, put: Callable[[str, bytes], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas infers compression from a path's suffix, never from a buffer's bytes: the snippet must say it
    (https://pandas.pydata.org/docs/reference/api/pandas.read_csv.html, ``compression``)."""
    put(key, TABLES[key])
    frame = _run(snippet(SHARED_BUCKET, key), sandbox, monkeypatch)["df"]
    assert frame.to_dict("records") == ROWS


def test_a_parquet_snippet_reads_it_with_pandas() -> None:
    """pyarrow is not installed here, so this one is read, not run."""
    code = snippet("team-data", "data/table.parquet")
    call = _call_in(code)
    assert isinstance(call.func, ast.Attribute) and call.func.attr == "read_parquet"
    assert ast.unparse(call.args[0]) == "io.BytesIO(data)" and not call.keywords


def test_other_objects_load_as_bytes_and_odd_keys_stay_literals(
    sandbox: SandboxState, put: Callable[[str, bytes], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key is untrusted text: quotes and ``${`` reach S3 as they are, never as code; a newline too (moto's
    server cannot store that key, so that one is parsed, not run)."""
    with_newline = _call_in(snippet("team-data", "odd\n.bin"))
    assert {k.arg: ast.literal_eval(k.value) for k in with_newline.keywords} == {
        "Bucket": "team-data",
        "Key": "odd\n.bin",
    }
    key = 'snippets/odd/it\'s "quoted" ${x}.bin'
    put(key, b"\x00\x01\x02")
    code = snippet(SHARED_BUCKET, key)
    assert "import boto3" in code and "pandas" not in code
    assert _run(code, sandbox, monkeypatch)["data"] == b"\x00\x01\x02"
    quoted = "snippets/it's.csv"
    put(quoted, TABLES["snippets/rows.csv"])
    assert _run(snippet(SHARED_BUCKET, quoted), sandbox, monkeypatch)["df"].to_dict("records") == ROWS


def test_legacy_bucket_names_get_path_style_requests() -> None:
    """A name with capitals or underscores is no DNS label: S3 answers it path-style only
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, legacy names).
    The runs above read BucketToBeShared, a legacy name, through these lines."""
    for code in (snippet(SHARED_BUCKET, "datasets/iris/iris.csv"), snippet(SHARED_BUCKET, "model.bin")):
        assert 'config=Config(s3={"addressing_style": "path"})' in code and "legacy bucket name" in code
        ast.parse(code)
    assert "Config" not in snippet("team-data", "model.bin")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536 * 1024, "1.5 MiB"),
        (3 * 1024**4, "3.0 TiB"),
        (5 * 1024**6, "5120.0 PiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_every_object_below_a_prefix_pages_without_folders(sandbox: SandboxState) -> None:
    owner = sandbox.aws_for("owner")
    ref = parse_bucket_reference(f"{SHARED_BUCKET}/logs/")
    pages = []
    token: str | None = None
    while True:
        page = list_level(owner, ref, token=token, page_size=128, recursive=True)
        pages.append(page)
        token = page.next_token
        if token is None:
            break
    assert [len(page.objects) for page in pages] == [128, 128, LOG_OBJECT_COUNT - 256]
    assert all(page.folders == () for page in pages)
    assert {entry.key for page in pages for entry in page.objects} == LOG_KEYS
    assert pages[0].name(pages[0].objects[0].key).startswith("2026/11/")


def test_a_page_dict_says_per_object_what_every_browser_shows(sandbox: SandboxState) -> None:
    page = list_level(sandbox.aws_for("owner"), parse_bucket_reference(f"{SHARED_BUCKET}/datasets/iris/"))
    readme, iris = json.loads(json.dumps(page.to_dict()))["objects"]
    assert (iris["name"], iris["kind"], iris["uri"]) == ("iris.csv", "table", f"s3://{SHARED_BUCKET}/{IRIS}")
    assert iris["size_text"] == format_size(iris["size"]) and iris["size_text"].endswith("KiB")
    assert iris["snippet"] == snippet(SHARED_BUCKET, IRIS)
    assert (readme["name"], readme["kind"]) == ("README.txt", "text")


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("a/b.csv", TABLE),
        ("a/b.CSV.gz", TABLE),
        ("a/b.parquet", TABLE),
        ("a/b.jsonl", TABLE),
        ("a/b.txt", TEXT),
        ("a/b.log", TEXT),
        ("a/model.bin", OTHER),
        ("a/csv", OTHER),
    ],
)
def test_kind_of(key: str, kind: str) -> None:
    assert kind_of(key) == kind


def test_a_preview_gives_whole_lines_and_a_csv_as_rows(sandbox: SandboxState) -> None:
    owner = sandbox.aws_for("owner")
    first = preview(owner, SHARED_BUCKET, IRIS)
    table = first.table(5)
    assert table is not None and len(table) == 6
    assert table[0] == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert all(len(row) == 5 for row in table)
    lines = first.lines(1000)
    assert first.text is not None and first.text.startswith("\n".join(lines))
    assert len(lines) < first.text.count("\n") + 1  # the line the range cut is left out
    assert all(line.count(",") == 4 for line in lines)
    assert preview(owner, SHARED_BUCKET, "datasets/iris/README.txt").table() is None


def test_a_csv_preview_parses_quoted_fields() -> None:
    shown = Preview("b", "k.tsv", 'a\tb\n"x\ty"\t2\nhalf', 14, 100, "text/plain")
    assert shown.table() == [["a", "b"], ["x\ty", "2"]]
    assert Preview("b", "k.csv", None, 10, 10, "application/zip").table() is None
