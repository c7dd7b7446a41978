"""Run the admin endpoint: build the service from configuration and serve it with uvicorn on loopback.

``ServerConfig`` and ``build_service`` are shared with the Lambda handler (admin/aws_lambda.py), so uvicorn
is imported only by :func:`serve`: a Lambda cold start neither pays for it nor needs it installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlspace_s3magic.admin.app import create_app
from mlspace_s3magic.admin.auth import TOKEN_CALLER_ARN, Authenticator, AuthSettings
from mlspace_s3magic.admin.lease import layer_lock_for
from mlspace_s3magic.admin.plan import owner_role_sessions
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.admin.webhook import Webhook
from mlspace_s3magic.core.aws import Aws, AwsSettings
from mlspace_s3magic.core.errors import InvalidInput

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    store_url: str = "sqlite:///:memory:"
    audience: str | None = None  # default: the URL it serves, http://HOST:PORT
    sts_endpoint: str | None = None  # default: AWS_ENDPOINT_URL, else STS in the region
    region: str = "us-east-1"
    admin_arn_patterns: tuple[str, ...] = ()
    token_file: Path | None = None
    # The MLSpace accounts whose principals may call; empty: the endpoint's own (from its credentials).
    accounts: tuple[str, ...] = ()
    token_identity: str = TOKEN_CALLER_ARN  # who the admin token acts as (see AuthSettings)
    proofs_per_minute: int = 60  # verified identity proofs per caller
    refusals_per_minute: int = 60  # refused attempts (401) per source address
    diagnoses_per_minute: int = 30  # /v1/diagnose per caller
    webhook_url: str | None = None
    expiry_seconds: float = 60.0
    # Sent when assuming partners' owner roles, which deploy/partner-owner-role.yaml makes require one.
    owner_external_id: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def build_service(config: ServerConfig, aws: Aws | None = None) -> AdminService:
    """The service with the process's own AWS credentials, which must be the MLSpace account's admin's."""
    aws = aws or Aws(AwsSettings(region=config.region))
    sts_endpoint = (
        config.sts_endpoint
        or os.environ.get("AWS_ENDPOINT_URL")
        or (f"https://sts.{config.region}.amazonaws.com")
    )
    try:  # first: with no accounts configured it asks STS whose credentials these are
        authenticator = Authenticator(
            AuthSettings(
                audience=(config.audience or config.url).rstrip("/"),
                sts_endpoint=sts_endpoint,
                sts_region=config.region,
                admin_arn_patterns=config.admin_arn_patterns,
                admin_token_file=config.token_file,
                accounts=config.accounts,
                token_identity=config.token_identity,
                proofs_per_minute=config.proofs_per_minute,
                refusals_per_minute=config.refusals_per_minute,
                diagnoses_per_minute=config.diagnoses_per_minute,
            ),
            aws,
        )
    except ValueError as error:
        raise InvalidInput(f"The admin endpoint cannot start: {error}.") from None
    store = open_store(config.store_url, aws)
    return AdminService(
        store,
        authenticator,
        aws,
        owner_sessions=owner_role_sessions(aws, config.owner_external_id),
        webhook=Webhook(config.webhook_url) if config.webhook_url else None,
        lock=layer_lock_for(store, aws),
    )


def _expire_periodically(service: AdminService, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            for request in service.housekeeping():
                LOG.info("expired request %s", request.id)
        except Exception:  # a failed round must not end the loop; the next one retries
            LOG.exception("housekeeping round failed")


@contextlib.contextmanager
def expiring(service: AdminService, every: float) -> Iterator[None]:
    """Housekeeping (crash repair, expiry, reconcile) every ``every`` seconds while the block runs."""
    stop = threading.Event()
    expiry = threading.Thread(
        target=_expire_periodically, args=(service, every, stop), daemon=True, name="expiry"
    )
    expiry.start()
    try:
        yield
    finally:
        stop.set()


def serve(config: ServerConfig) -> None:
    """Serve until interrupted; grants past their days are revoked every ``expiry_seconds``."""
    import uvicorn  # here, not at the top: see the module's docstring

    service = build_service(config)
    try:
        with expiring(service, config.expiry_seconds):
            uvicorn.run(create_app(service), host=config.host, port=config.port, log_level="warning")
    finally:
        service.authenticator.close()
        service.store.close()
