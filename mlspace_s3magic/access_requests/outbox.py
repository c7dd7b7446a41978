"""Requests the admin endpoint has not acknowledged yet, kept on disk until it has.

Each request is one file, written atomically (a temporary file, fsync, rename) so a crash leaves either the
whole request or nothing. Sending it again later is safe: its idempotency key makes the endpoint return
the request it already filed instead of filing a second one.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.core.errors import Unavailable
from mlspace_s3magic.core.files import state_dir, write_private


def default_outbox_dir() -> Path:
    return state_dir("outbox")


class Outbox:
    """A folder of pending requests, one JSON file each, named by idempotency key."""

    def __init__(self, folder: Path):
        self.folder = folder

    def put(self, request: NewAccessRequest) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / f"{request.idempotency_key}.json"
        return write_private(
            path, request.model_dump_json(), durable=True
        )  # a queued request survives a crash

    def pending(self) -> list[NewAccessRequest]:
        """Queued requests, oldest first; a file that cannot be read is reported, never silently dropped."""
        if not self.folder.exists():
            return []
        requests = []
        for path in sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                requests.append(NewAccessRequest.model_validate(json.loads(path.read_text())))
            except (OSError, ValueError, ValidationError) as error:
                raise Unavailable(
                    f"The queued request {path} cannot be read ({error}); move it aside."
                ) from None
        return requests

    def remove(self, idempotency_key: str) -> None:
        (self.folder / f"{idempotency_key}.json").unlink(missing_ok=True)
