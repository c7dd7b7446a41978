"""The admin endpoint on AWS Lambda behind an API Gateway REST API, configured from the environment.

The same FastAPI app as ``s3access admin serve`` (admin/app.py), through Mangum. The service is built on
the first invocation of a Lambda instance and kept for the next ones (its clients, caches and STS
connection are what a warm instance saves). An EventBridge scheduled event runs the housekeeping (crash
repair, expiry, reconcile) that ``serve`` runs in a thread.

Identity proofs name the call's path relative to the endpoint's public URL (``S3ACCESS_AUDIENCE``), which
for API Gateway includes the stage (``https://ID.execute-api.REGION.amazonaws.com/prod``) or a custom
domain's base path. The event's ``path`` leaves the stage out (and keeps a base path), so the app is given
``requestContext.path`` (the path as the client sent it) less the audience URL's path: routing and the
proof check then see exactly what the client signed. The audience itself is configuration, never a header.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from mangum import Mangum
from starlette.types import ASGIApp, Receive, Scope, Send

from mlspace_s3magic.admin.app import create_app
from mlspace_s3magic.admin.server import ServerConfig, build_service
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.core.errors import InvalidInput

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)  # Lambda's root logger shows warnings only; what housekeeping did is info

STORE_URL = "S3ACCESS_STORE_URL"
ACCOUNTS = "S3ACCESS_ACCOUNTS"
ADMIN_ARN_PATTERNS = "S3ACCESS_ADMIN_ARN_PATTERNS"
AUDIENCE = "S3ACCESS_AUDIENCE"
STS_ENDPOINT = "S3ACCESS_STS_ENDPOINT"
WEBHOOK_URL = "S3ACCESS_WEBHOOK_URL"
OWNER_EXTERNAL_ID = "S3ACCESS_OWNER_EXTERNAL_ID"
REGION = "AWS_REGION"
# Characters a path keeps as they are when it is put back in its sent form (RFC 3986 pchar, and "/" and an
# existing percent-escape).
PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class LambdaMisconfigured(InvalidInput):
    """A required environment variable is missing or wrong; the message names it."""


def _listed(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def config_from_environment(environ: Mapping[str, str]) -> ServerConfig:
    """The endpoint's configuration from the function's environment (deploy/endpoint.yaml sets it)."""

    def required(name: str, what: str) -> str:
        value = environ.get(name, "").strip()
        if not value:
            raise LambdaMisconfigured(f"The admin endpoint cannot start: set {name} to {what}.")
        return value

    region = required(REGION, "the function's region (Lambda sets it)")
    audience = required(
        AUDIENCE,
        "the endpoint's public URL that identity proofs name, with the API's stage or base path (such as "
        "https://ID.execute-api.REGION.amazonaws.com/prod)",
    ).rstrip("/")
    if urlsplit(audience).scheme != "https":
        raise LambdaMisconfigured(f"{AUDIENCE} must be the endpoint's https:// URL, not {audience!r}.")
    return ServerConfig(
        store_url=required(STORE_URL, "the request store, such as dynamodb://TABLE"),
        audience=audience,
        sts_endpoint=environ.get(STS_ENDPOINT, "").strip() or f"https://sts.{region}.amazonaws.com",
        region=region,
        admin_arn_patterns=_listed(environ.get(ADMIN_ARN_PATTERNS, "")),
        accounts=_listed(environ.get(ACCOUNTS, "")),
        webhook_url=environ.get(WEBHOOK_URL, "").strip() or None,
        owner_external_id=environ.get(OWNER_EXTERNAL_ID, "").strip() or None,
    )


class SentPath:
    """ASGI middleware: the path of a REST API event as the client sent it, relative to the audience URL.

    Mangum builds the scope from the event's ``path``, which for the API's own host leaves the stage out
    and behind a custom domain keeps the base path; ``requestContext.path`` is the whole path the client
    sent, so the audience URL's path (stage or base path) is taken off it instead. An event that does not
    start with that path (another API's stage, say) keeps Mangum's path: its proof names another audience
    and is refused there.
    """

    def __init__(self, app: ASGIApp, audience: str) -> None:
        self.app = app
        self.prefix = urlsplit(audience).path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        event = scope.get("aws.event") or {}
        sent = str((event.get("requestContext") or {}).get("path") or "")
        if scope["type"] == "http" and sent.startswith(self.prefix + "/"):
            raw = quote(sent[len(self.prefix) :], safe=PATH_SAFE)
            scope = {**scope, "path": unquote(raw), "raw_path": raw.encode("ascii"), "root_path": ""}
        await self.app(scope, receive, send)


class LambdaEndpoint:
    """One Lambda instance's endpoint: API Gateway events go to the app, scheduled events to housekeeping."""

    def __init__(self, service: AdminService) -> None:
        self.service = service
        audience = service.authenticator.settings.audience
        self._http = Mangum(SentPath(create_app(service), audience), lifespan="off")

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if is_scheduled(event):
            return self.housekeeping()
        answer: dict[str, Any] = self._http(event, context)
        return answer

    def housekeeping(self) -> dict[str, Any]:
        """Crash repair, expiry and reconcile, once; every change they make is in the audit log too."""
        started = time.monotonic()
        expired = self.service.housekeeping()
        LOG.info(
            "housekeeping: %d grant(s) expired%s in %.1f s",
            len(expired),
            f" ({', '.join(request.id for request in expired)})" if expired else "",
            time.monotonic() - started,
        )
        return {"expired": [request.id for request in expired]}


def is_scheduled(event: Mapping[str, Any]) -> bool:
    """An EventBridge schedule's event (the rule's default input), rather than an HTTP call."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


@functools.cache
def _instance() -> LambdaEndpoint:
    """Built once per Lambda instance, on its first invocation (importing stays cheap and needs no
    configuration)."""
    return LambdaEndpoint(build_service(config_from_environment(os.environ)))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function's entry point (``mlspace_s3magic.admin.aws_lambda.handler``)."""
    return _instance()(event, context)
