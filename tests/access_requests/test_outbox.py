"""The outbox keeps unacknowledged requests whole, in order, until they are sent."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from mlspace_s3magic.access_requests.outbox import Outbox
from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.remedy import AccessLevel


def _request(key: str) -> NewAccessRequest:
    return NewAccessRequest(
        bucket="BucketToBeShared", access=AccessLevel.READ, reason="iris study", idempotency_key=key
    )


def test_requests_come_back_in_order_and_whole(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    assert outbox.pending() == []
    first = outbox.put(_request("key-00000001"))
    os.utime(first, (time.time() - 10, time.time() - 10))
    outbox.put(_request("key-00000002"))
    assert [r.idempotency_key for r in outbox.pending()] == ["key-00000001", "key-00000002"]
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert not list((tmp_path / "outbox").glob("*.tmp"))


def test_putting_the_same_key_again_keeps_one_file(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.put(_request("key-00000001"))
    outbox.put(_request("key-00000001"))
    assert len(outbox.pending()) == 1
    outbox.remove("key-00000001")
    assert outbox.pending() == []


def test_a_damaged_file_is_reported_not_dropped(tmp_path: Path) -> None:
    Outbox(tmp_path).put(_request("key-00000001"))
    (tmp_path / "key-00000001.json").write_text("{half")
    with pytest.raises(S3MagicError, match="cannot be read"):
        Outbox(tmp_path).pending()
    assert (tmp_path / "key-00000001.json").exists()
