"""The error a malformed policy or scenario raises, so shells can show a message instead of a traceback."""

from __future__ import annotations

from mlspace_s3magic.core.errors import InvalidInput


class PolicyValidationError(InvalidInput, ValueError):
    """A policy document or scenario is malformed; ``path`` says where, the message says what."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    def within(self, prefix: str) -> PolicyValidationError:
        """The same error seen from an enclosing document, so nested paths read from the outermost key."""
        if not prefix:
            return self
        return PolicyValidationError(f"{prefix}.{self.path}" if self.path else prefix, self.message)
