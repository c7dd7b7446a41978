"""Errors a user can act on, by meaning.

Every shell (magic, CLI, REST route) shows ``str(error)`` instead of a traceback, so each message says what
went wrong and what to do about it, and never carries a secret. Every error is one of six meanings (the
bases below); the HTTP status and the exit code are decided here, once per meaning, and each shell reads
them through :func:`meaning`.
"""

from __future__ import annotations


class S3MagicError(Exception):
    """Base of the errors we explain to the user instead of printing a traceback."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback; the exception still stops a notebook run."""
        return [f"{type(self).__name__}: {self}"]


class InvalidInput(S3MagicError):
    """What the caller gave breaks a rule (a name, a field, a file, an option); the message says which."""


class NotAllowed(S3MagicError):
    """The caller is known, or not proven, and may not do this; the message says who decides and why."""


class NotFound(S3MagicError):
    """What the caller named does not exist (or is not theirs to see)."""


class Conflict(S3MagicError):
    """The thing acted on is not in a state that allows this now (a request's status, a changed document)."""


class Unavailable(S3MagicError):
    """What we need cannot be used now (not configured, not running, unreachable, no working credentials);
    the same call may work once that is fixed."""


class UpstreamFailed(S3MagicError):
    """A service we rely on (AWS, the admin endpoint, a file the admin publishes) failed or answered what
    we cannot use."""


MEANINGS: tuple[type[S3MagicError], ...] = (
    InvalidInput,
    NotAllowed,
    NotFound,
    Conflict,
    Unavailable,
    UpstreamFailed,
)

# The one HTTP status of each meaning, for both HTTP shells (the admin endpoint, the Jupyter server).
HTTP_STATUS: dict[type[S3MagicError], int] = {
    InvalidInput: 400,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
    UpstreamFailed: 502,
}

# The one exit code of each meaning for ``s3access``: 2 as argparse says a bad command line, 3 as ``check``
# says denied, 1 for the rest.
EXIT_CODE: dict[type[S3MagicError], int] = {
    InvalidInput: 2,
    NotAllowed: 3,
    NotFound: 1,
    Conflict: 1,
    Unavailable: 1,
    UpstreamFailed: 1,
}


def meaning(error: S3MagicError) -> type[S3MagicError]:
    """The base ``error`` is an instance of; one not yet given a meaning counts as upstream failed, the
    answer a shell gave an unclassified error before there were meanings."""
    return next((base for base in MEANINGS if isinstance(error, base)), UpstreamFailed)


class CredentialsMissing(Unavailable):
    """No AWS credentials could be found in any of boto3's usual places."""


class CredentialsExpired(Unavailable):
    """The session token has expired; a new session is needed."""


class CredentialsRejected(Unavailable):
    """AWS does not know the access key, or the signature does not match its secret."""


class RegionUnusable(InvalidInput):
    """No AWS region is set, or the one set is no region name: a setting of ours to fix, not AWS failing."""


class EndpointUnreachable(Unavailable):
    """The AWS (or sandbox) endpoint did not answer."""


class AwsRequestFailed(UpstreamFailed):
    """An AWS call failed for a reason that is not one of the above."""
