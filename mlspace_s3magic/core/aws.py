"""The one place boto3 clients are made, and where low-level AWS failures become errors a user can act on.

Clients take boto3's standard configuration (profiles, ``AWS_ENDPOINT_URL``, regions), so the same code runs
against AWS in an MLSpace notebook and against the local sandbox.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from mlspace_s3magic.core.errors import (
    AwsRequestFailed,
    CredentialsExpired,
    CredentialsMissing,
    CredentialsRejected,
    EndpointUnreachable,
    RegionUnusable,
    S3MagicError,
)
from mlspace_s3magic.core.render import without_controls

DEFAULT_REGION = "us-east-1"

EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"})
REJECTED_CODES = frozenset(
    {"InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId", "UnrecognizedClientException"}
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
# Every place a region comes from, in the words each shell uses (settings.py, commands.py, boto3's lookup).
SET_A_REGION = (
    "set AWS_REGION or AWS_DEFAULT_REGION, or `region` in your AWS profile; in a terminal pass --region, "
    "in a notebook run `%config S3Access.region = 'us-east-1'` (c.S3Access.region for the Jupyter server)"
)


@dataclass(frozen=True)
class AwsSettings:
    """How to reach AWS; ``None`` means "boto3's usual lookup" (environment, profile, instance role)."""

    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    max_pool_connections: int = 10
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3


@dataclass(frozen=True)
class StaticCredentials:
    """Explicit keys, for the sandbox and tests; the secret and token never appear in a repr."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


class Aws:
    """boto3 clients for one set of settings and credentials, made once per service and shared by threads."""

    def __init__(self, settings: AwsSettings | None = None, credentials: StaticCredentials | None = None):
        self.settings = settings or AwsSettings()
        self._credentials = credentials
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._session: boto3.Session | None = None

    def with_pool(self, connections: int) -> Aws:
        """The same identity with room for ``connections`` concurrent requests per service, or self if it has.

        Sharing the botocore session keeps credential lookups (and refreshes) in one place.
        """
        if self.settings.max_pool_connections >= connections:
            return self
        wider = Aws(replace(self.settings, max_pool_connections=connections), self._credentials)
        wider._session = self._boto_session()
        return wider

    def _boto_session(self) -> boto3.Session:
        if self._session is None:
            creds = self._credentials
            try:
                self._session = boto3.Session(
                    profile_name=self.settings.profile,
                    region_name=self.settings.region,
                    aws_access_key_id=creds.access_key_id if creds else None,
                    aws_secret_access_key=creds.secret_access_key if creds else None,
                    aws_session_token=creds.session_token if creds else None,
                )
            except ProfileNotFound as exc:
                raise CredentialsMissing(
                    f"The AWS profile {self.settings.profile!r} is not in your AWS config files; "
                    "set S3Access.profile (or --profile) to one that is, or leave it empty."
                ) from exc
        return self._session

    def frozen_credentials(self) -> ReadOnlyCredentials:
        """The keys requests are signed with right now (refreshed if temporary), for signing by hand."""
        credentials = self._boto_session().get_credentials()
        if credentials is None:
            raise explain(NoCredentialsError(), action="signing an identity proof", endpoint="")
        frozen: ReadOnlyCredentials = credentials.get_frozen_credentials()
        return frozen

    @property
    def region(self) -> str:
        return self.settings.region or self._boto_session().region_name or DEFAULT_REGION

    def client(self, service: str) -> Any:
        """A client for ``service``; botocore clients are thread-safe, so one per service is enough."""
        with self._lock:
            if service not in self._clients:
                config = Config(
                    region_name=self.region,
                    max_pool_connections=self.settings.max_pool_connections,
                    connect_timeout=self.settings.connect_timeout,
                    read_timeout=self.settings.read_timeout,
                    retries={"max_attempts": self.settings.max_attempts, "mode": "standard"},
                    s3={"addressing_style": "path"} if self.settings.endpoint_url else None,
                )
                # Any: boto3's stubs type each service name separately; callers get the service they name.
                session: Any = self._boto_session()
                try:
                    self._clients[service] = session.client(
                        service, endpoint_url=self.settings.endpoint_url, config=config
                    )
                except InvalidRegionError:
                    raise RegionUnusable(
                        f"{self.region!r} is not an AWS region name (such as us-east-1): {SET_A_REGION}."
                    ) from None
            return self._clients[service]


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_access_denied(error: ClientError) -> bool:
    return error_code(error) in ACCESS_DENIED_CODES


def aws_said(error: ClientError) -> str:
    """AWS's answer in its own words, its error code and message and nothing else of the response (no
    request id, no signature details such as the string to sign), with control characters removed: AWS
    messages quote what the request held, which may be anyone's text."""
    message = str(error.response.get("Error", {}).get("Message") or "").strip()
    return without_controls(f"{error_code(error)}: {message}" if message else error_code(error))


class AwsErrorAnswer(AwsRequestFailed, ClientError):
    """An error answer from AWS that :func:`explain` did not classify: still the ``ClientError`` its
    caller may decide on by code (a denial, a missing entity), and, left undecided, an upstream failure
    whose message is our action and AWS's code and message only."""

    def __init__(self, error: ClientError, *, action: str, endpoint: str):
        ClientError.__init__(self, error.response, error.operation_name)
        self.args = (f"{action} at {endpoint} failed: AWS answered {aws_said(error)}",)


def explain(error: BotoCoreError | ClientError, *, action: str, endpoint: str) -> S3MagicError:
    """The user-facing error for a failed call.

    Messages are our own words: AWS's code and message are quoted only for unclassified errors, and none
    ever contains a secret (botocore puts no keys in messages; we add none).
    """
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return CredentialsMissing(
            f"No AWS credentials were found for {action}. In an MLSpace notebook they come from the "
            "notebook's role; elsewhere set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            '(for the local sandbox: eval "$(s3access sandbox env --as alice@demo)").'
        )
    if isinstance(error, NoRegionError):
        return RegionUnusable(f"No AWS region is set for {action}: {SET_A_REGION}.")
    if isinstance(
        error, EndpointConnectionError | ConnectTimeoutError | ConnectionClosedError | ReadTimeoutError
    ):
        return EndpointUnreachable(
            f"Could not reach the AWS endpoint {endpoint} for {action} ({type(error).__name__}). "
            "Check AWS_ENDPOINT_URL or S3Access.endpoint_url; for the local sandbox, is "
            "`s3access sandbox serve` running?"
        )
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in EXPIRED_CODES:
            return CredentialsExpired(
                f"Your AWS session has expired ({code} from {action} at {endpoint}). Get fresh credentials: "
                "in MLSpace, restart the kernel; with the sandbox, run `s3access sandbox env` again."
            )
        if code in REJECTED_CODES:
            return CredentialsRejected(
                f"AWS rejected your credentials ({code} from {action} at {endpoint}): the access key is "
                "unknown there or the secret does not match it. Check which credentials are in use "
                "(AWS_ACCESS_KEY_ID, AWS_PROFILE) and that they belong to this endpoint."
            )
        return AwsErrorAnswer(error, action=action, endpoint=endpoint)
    return AwsRequestFailed(f"{action} at {endpoint} failed: {without_controls(str(error))}")


@contextmanager
def aws_call(client: Any, action: str) -> Iterator[None]:
    """Turn every botocore failure inside the block into one of our errors; AWS's unclassified answers
    stay catchable as ``ClientError`` (:class:`AwsErrorAnswer`) for callers that decide by code."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise explain(error, action=action, endpoint=str(client.meta.endpoint_url)) from error
