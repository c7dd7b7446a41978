"""Tell a chat room or ticket system about new requests and decisions, without ever slowing the endpoint.

Notifications go through a bounded queue to one background thread that retries with backoff; a full queue
or a webhook that stays down drops the notification with a log line (the audit log keeps the record).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import httpx

LOG = logging.getLogger(__name__)
ATTEMPTS = 4
QUEUE_SIZE = 1000


class Webhook:
    """POSTs JSON events to one URL from a background thread."""

    def __init__(self, url: str, *, timeout: float = 5.0, backoff: float = 0.5):
        self.url = url
        self._backoff = backoff
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="s3access-webhook", daemon=True)
        self._thread.start()

    def notify(self, event: str, payload: dict[str, Any]) -> None:
        """Queue an event; returns at once whatever the webhook's state."""
        try:
            self._queue.put_nowait({"event": event, **payload})
        except queue.Full:
            LOG.warning("webhook queue full; dropped the %s notification (the audit log has it)", event)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            for attempt in range(ATTEMPTS):
                try:
                    self._client.post(self.url, json=message).raise_for_status()
                    break
                except httpx.HTTPError as error:
                    LOG.info("webhook attempt %d failed: %s", attempt + 1, type(error).__name__)
                    time.sleep(self._backoff * 2**attempt)
            else:
                LOG.warning(
                    "webhook gave up on the %s notification after %d attempts", message["event"], ATTEMPTS
                )

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        self._client.close()
