"""The store's failures, apart from any backend, so the changes and both backends raise the same ones."""

from __future__ import annotations

from mlspace_s3magic.core.errors import Conflict, Unavailable


class StoreError(Unavailable):
    """The store cannot be opened or used; the message names the store and what failed."""


class TransitionRefused(Conflict):
    """The request is not in a status the change may start from, so no route can skip a step."""
