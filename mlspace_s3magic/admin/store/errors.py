"""The store's failures, apart from any backend, so the changes and both backends raise the same ones."""

from __future__ import annotations

from mlspace_s3magic.core.errors import S3MagicError


class StoreError(S3MagicError):
    """The store cannot be opened or used; the message names the store and what failed."""


class TransitionRefused(S3MagicError):
    """The request is not in a status the change may start from, so no route can skip a step."""


class NotFound(S3MagicError):
    """No request, or no registry entry, by that name."""
