"""Files holding secrets or requests: mode 0600 in one step, whatever lies in the way (a leftover temporary
file, a symlink planted where the file goes, a permissive umask)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlspace_s3magic.access_requests.outbox import Outbox
from mlspace_s3magic.admin.auth import create_admin_token
from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.core.access import NewAccessRequest, Requester
from mlspace_s3magic.core.files import create_private, write_private
from mlspace_s3magic.sandbox.state import SandboxState


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    yield
    os.umask(previous)


def test_a_leftover_temporary_file_and_the_umask_change_nothing(tmp_path: Path, open_umask: None) -> None:
    target = tmp_path / "sandbox.json"
    (tmp_path / "sandbox.tmp").write_text("left by a crash")
    (tmp_path / "sandbox.tmp").chmod(0o666)
    write_private(target, "{}")
    assert _mode(target) == 0o600 and target.read_text() == "{}"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["sandbox.json", "sandbox.tmp"]


def test_a_symlink_where_the_file_goes_is_replaced_never_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    planted = tmp_path / "admin.token"
    planted.symlink_to(elsewhere)
    write_private(planted, "secret\n")
    assert not planted.is_symlink() and _mode(planted) == 0o600
    assert elsewhere.read_text() == "not yours"
    link = tmp_path / "link.db"
    link.symlink_to(elsewhere)
    with pytest.raises(OSError):
        create_private(link)  # a database is never opened through a planted link
    assert elsewhere.read_text() == "not yours"


def test_sandbox_state_token_and_outbox_are_private(tmp_path: Path, open_umask: None) -> None:
    state = SandboxState("http://127.0.0.1:9", {})
    assert _mode(state.save(tmp_path)) == 0o600
    token = tmp_path / "admin.token"
    create_admin_token(token)
    assert _mode(token) == 0o600
    create_admin_token(token, overwrite=True)
    assert _mode(token) == 0o600
    new = NewAccessRequest(
        bucket="BucketToBeShared", access="read", reason="iris", idempotency_key="key-000001"
    )
    assert _mode(Outbox(tmp_path / "outbox").put(new)) == 0o600


def test_the_admin_store_and_its_wal_files_are_private(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "admin.db"
    store = open_store(f"sqlite:///{path}")
    new = NewAccessRequest(
        bucket="BucketToBeShared", access="read", reason="iris", idempotency_key="key-000001"
    )
    requester = Requester(arn="arn:aws:sts::111111111111:assumed-role/R/SageMaker", account="111111111111")
    store.create_request(new, requester, now=datetime(2026, 12, 1, tzinfo=UTC))
    files = [p for p in tmp_path.iterdir() if p.name.startswith("admin.db")]
    assert {p.name for p in files} >= {"admin.db", "admin.db-wal"}
    assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
    store.close()
