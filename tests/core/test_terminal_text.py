"""Text from requesters and AWS reaches a terminal inert: escape sequences cannot rewrite what an admin reads.

An escape in a request's reason could otherwise erase the line and print another (``\\x1b[2K\\r``), making a
read-write request for a whole bucket look like a read of one prefix in ``admin requests``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mlspace_s3magic.admin.cli import GREEN, RESET, _request_line, render_view, screen
from mlspace_s3magic.core.access import (
    AccessRequest,
    NewAccessRequest,
    Requester,
    RequestStatus,
    RequestView,
    SharedBucket,
)
from mlspace_s3magic.core.render import terminal_safe, text_table

REWRITE = "\x1b[2K\r\x1b[1A"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _request(**changes: object) -> AccessRequest:
    fields: dict[str, object] = {
        "id": "req-0001",
        "requester": Requester(
            arn="arn:aws:sts::111111111111:assumed-role/R/SageMaker", account="111111111111"
        ),
        "bucket": "BucketToBeShared",
        "prefix": "",
        "access": "read-write",
        "reason": "ok",
        "days": None,
        "idempotency_key": "key-req-0001",
        "status": RequestStatus.PENDING,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return AccessRequest.model_validate(fields)


def test_control_characters_are_shown_as_their_escapes() -> None:
    assert terminal_safe(f"read{REWRITE}datasets/") == "read\\x1b[2K\\r\\x1b[1Adatasets/"
    assert terminal_safe("a\u202eb") == "a\\u202eb"  # a right-to-left override would reorder the line
    assert terminal_safe("a\u061cb\u2028c") == "a\\u061cb\\u2028c"  # the Arabic letter mark; a separator
    assert terminal_safe("\x9b2K") == "\\x9b2K"  # the one-byte CSI
    assert terminal_safe("two\nlines", lines=True) == "two\nlines"
    assert "\x1b" not in text_table([("Reason", f"x{REWRITE}")], [f"note{REWRITE}"])


def test_a_stored_reason_with_escapes_is_inert_in_every_admin_line() -> None:
    """A record stored before input was cleaned (or by another client) still prints inert."""
    forged = _request(reason=f"x{REWRITE}req-0001  pending  read  alice  s3://BucketToBeShared/datasets/")
    line = screen([_request_line(forged)])
    assert "\x1b" not in line and "\r" not in line and "read-write" in line
    view = render_view(RequestView(request=forged), colour=True)
    assert "\x1b[2K" not in view and "\\x1b[2K" in view


def test_input_drops_control_characters_from_reasons_and_descriptions_and_refuses_them_in_prefixes() -> None:
    new = NewAccessRequest.model_validate(
        {
            "bucket": "BucketToBeShared",
            "access": "read",
            "reason": f"iris{REWRITE} study\nline two",
            "idempotency_key": "0b8f2c8e-4f7a-4c1e-9a59-1f0e2d3c4b5a",
        }
    )
    assert new.reason == "iris[2K[1A study\nline two"
    assert SharedBucket(bucket="partner-data", description=f"a{REWRITE}b").description == "a[2K[1Ab"
    with pytest.raises(ValidationError, match="control characters"):
        NewAccessRequest.model_validate(
            {
                "bucket": "BucketToBeShared",
                "prefix": f"data{REWRITE}/",
                "access": "read",
                "reason": "iris",
                "idempotency_key": "0b8f2c8e-4f7a-4c1e-9a59-1f0e2d3c4b5a",
            }
        )


def test_the_admins_screen_escapes_every_line_once_and_paints_only_our_own_lines() -> None:
    """A reason may not open a second line that reads as another request; a diff line keeps its colour."""
    forged = _request(reason="ok\nreq-0002  pending  read  alice  s3://BucketToBeShared/datasets/")
    (line,) = screen([_request_line(forged)]).splitlines()
    assert "\\n" in line
    painted = screen([(GREEN, f"+ {REWRITE}x"), "plain"], colour=True)
    assert painted == f"{GREEN}+ \\x1b[2K\\r\\x1b[1Ax{RESET}\nplain"
    assert screen([(GREEN, "+ x")], colour=False) == "+ x"


def test_a_plan_and_a_requesters_lines_are_shown_inert() -> None:
    change = {
        "layer": "bucket-policy",
        "target": f"Bucket{REWRITE}",
        "account": "222222222222",
        "applied_by": "owner",
        "diff": f'+  "Sid": "x{REWRITE}"\n- old',
        "warnings": [f"warned{REWRITE}"],
        "command": f"aws s3api put-bucket-policy --bucket 'Bucket{REWRITE}'\n# then tell the admin",
    }
    plan = {"changes": [change], "problems": [f"too big{REWRITE}"], "notes": [f"noted{REWRITE}"]}
    shown = render_view(RequestView(request=_request(plan=plan)), colour=True)
    assert "\x1b[2K" not in shown and "\r" not in shown.replace("\\r", "")
    assert shown.count("\\x1b[2K") == 6 and f"{GREEN}+" in shown
    assert "-- the owner runs:\naws s3api put-bucket-policy" in shown and "\n# then tell the admin" in shown
    summary = [{"layer": "identity", "target": "t", "allows": f"a{REWRITE}", "state": "written"}]
    lines = render_view(RequestView(request=_request(summary=summary)), colour=False)
    assert "t: a\\x1b[2K\\r\\x1b[1A (written)" in lines
