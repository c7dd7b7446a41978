"""The admin's terminal tables: every listing has a header row; apply shows what its verification found."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mlspace_s3magic.admin.cli import verification_lines
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.sandbox.world import SHARED_BUCKET

from .conftest import Endpoint


def _admin(endpoint: Endpoint, tmp_path: Path, *command: str) -> list[str]:
    token = tmp_path / "token"
    token.write_text(endpoint.token)
    return ["admin", *command, "--url", endpoint.url, "--token-file", str(token)]


def test_requests_audit_and_buckets_print_a_header_row_and_apply_its_verification(
    endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = NewAccessRequest.model_validate(
        {
            "bucket": SHARED_BUCKET,
            "prefix": "datasets/",
            "access": "read",
            "reason": "iris study",
            "idempotency_key": uuid.uuid4().hex,
        }
    )
    filed = endpoint.client("alice@demo").submit(new)
    assert filed is not None

    assert main(_admin(endpoint, tmp_path, "requests")) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "STATUS", "ACCESS", "REQUESTER", "TARGET", "REASON"]
    assert row.startswith(filed.id) and f"s3://{SHARED_BUCKET}/datasets/" in row
    assert row.index("pending") == header.index("STATUS")

    assert main(_admin(endpoint, tmp_path, "approve", filed.id)) == 0
    assert "verification" not in capsys.readouterr().out
    assert main(_admin(endpoint, tmp_path, "apply", filed.id)) == 0
    request_line, verdict, table_header, *checks = capsys.readouterr().out.splitlines()
    assert request_line.startswith(filed.id) and "applied" in request_line
    assert verdict == f"verification as {filed.requester.arn}: allowed"
    assert table_header.split()[:2] == ["CAPABILITY", "VERDICT"]
    assert checks and all(line.split()[1:] == ["allowed", "-"] for line in checks)  # no reasons under them
    assert any(line.startswith("list") for line in checks)

    assert main(_admin(endpoint, tmp_path, "audit", "--request", filed.id)) == 0
    header, *entries = capsys.readouterr().out.splitlines()
    assert header.split() == ["SEQ", "AT", "ACTOR", "ACTION", "REQUEST", "STATUS"]
    assert entries and all(filed.id in entry for entry in entries)

    assert main(_admin(endpoint, tmp_path, "buckets")) == 0
    header, *buckets = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["BUCKET", "OWNER"] and any(SHARED_BUCKET in line for line in buckets)


def test_a_denied_capability_shows_what_blocks_it_and_every_text_is_inert() -> None:
    verification = {
        "principal": "arn:aws:sts::111111111111:assumed-role/R/S",
        "allowed": False,
        "capabilities": [
            {"capability": "list", "allowed": True, "blocked_by": [], "reasons": []},
            {
                "capability": "read",
                "allowed": False,
                "blocked_by": ["boundary"],
                "reasons": ["the boundary denies s3:GetObject\x1b[2K"],
            },
        ],
        "notes": ["Could not read the kms layer."],
    }
    assert verification_lines(verification) == [
        "verification as arn:aws:sts::111111111111:assumed-role/R/S: denied",
        "CAPABILITY  VERDICT  BLOCKED BY",
        "list        allowed  -",
        "read        denied   boundary",
        "    - the boundary denies s3:GetObject\\x1b[2K",
        "note: Could not read the kms layer.",
    ]
