"""Errors a user can act on.

Every shell (magic, CLI, REST route) shows ``str(error)`` instead of a traceback, so each message says what
went wrong and what to do about it, and never carries a secret.
"""

from __future__ import annotations


class S3MagicError(Exception):
    """Base of the errors we explain to the user instead of printing a traceback."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback; the exception still stops a notebook run."""
        return [f"{type(self).__name__}: {self}"]


class CredentialsMissing(S3MagicError):
    """No AWS credentials could be found in any of boto3's usual places."""


class CredentialsExpired(S3MagicError):
    """The session token has expired; a new session is needed."""


class CredentialsRejected(S3MagicError):
    """AWS does not know the access key, or the signature does not match its secret."""


class EndpointUnreachable(S3MagicError):
    """The AWS (or sandbox) endpoint did not answer."""


class AwsRequestFailed(S3MagicError):
    """An AWS call failed for a reason that is not one of the above."""
