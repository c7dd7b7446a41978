"""The REST routes JupyterLab calls, under ``/s3access/``: thin shells over the session's core calls.

Every verb is ``@tornado.web.authenticated`` (jupyter_server's token or login cookie, with its XSRF check on
writes); AWS work runs in a thread so the event loop keeps serving; errors are JSON ``{"message": ...}``
with the status of their meaning (:data:`~mlspace_s3magic.core.errors.HTTP_STATUS`), as the admin endpoint's.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from mlspace_s3magic.access_requests.actions import (
    cancel_request,
    file_request,
    my_requests,
    parse_new_request,
)
from mlspace_s3magic.core.browse import DEFAULT_PAGE_SIZE, list_level, listing_snippet, s3_uri, snippet
from mlspace_s3magic.core.errors import HTTP_STATUS, InvalidInput, S3MagicError, meaning
from mlspace_s3magic.core.names import BucketRef, parse_bucket_reference, validate_bucket_name
from mlspace_s3magic.session import S3AccessSession

SESSION_SETTING = "s3access_session"
MAX_BODY_BYTES = 16 * 1024  # a request's fields fit in a fraction of this
MAX_KEY_LENGTH = 1024  # S3's own limit on a key, in bytes of UTF-8
TRUE_WORDS = frozenset({"1", "true", "yes"})
FALSE_WORDS = frozenset({"0", "false", "no", ""})
# A request id goes into the endpoint's URL path: nothing that could name another path or action there.
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
Handler = TypeVar("Handler", bound="S3AccessHandler")


def explained(verb: Callable[[Handler], Awaitable[None]]) -> Callable[[Handler], Awaitable[None]]:
    """Answer an error we explain, wherever the verb raises it, as JSON ``{"message": ...}`` with the status
    of its meaning; every verb of every route wears this, under ``@tornado.web.authenticated``."""

    @functools.wraps(verb)
    async def answering(handler: Handler) -> None:
        try:
            await verb(handler)
        except S3MagicError as error:
            handler.set_status(HTTP_STATUS[meaning(error)])
            handler.set_header("Content-Type", "application/json")
            await handler.finish(json.dumps({"message": str(error)}))

    return answering


class S3AccessHandler(APIHandler):
    """The shared session, work off the event loop, and its parameters read as the magic reads them."""

    @property
    def session(self) -> S3AccessSession:
        session: S3AccessSession = self.settings[SESSION_SETTING]
        return session

    async def answer(self, work: Callable[[], Any], *, status: int = 200) -> None:
        """Run ``work`` (blocking AWS calls) in a thread and send what it returns as JSON."""
        result = await asyncio.to_thread(work)
        self.set_status(status)
        await self.finish(json.dumps(result))

    def text_argument(self, name: str, *, required: bool = False, limit: int = 1024) -> str:
        value = self.get_query_argument(name, default="")
        if required and not value:
            raise InvalidInput(f"The query parameter {name!r} is required.")
        if len(value) > limit:
            raise InvalidInput(f"The query parameter {name!r} is longer than {limit} characters.")
        return value

    def bool_argument(self, name: str) -> bool:
        value = self.get_query_argument(name, default="").lower()
        if value in TRUE_WORDS:
            return True
        if value in FALSE_WORDS:
            return False
        raise InvalidInput(f"The query parameter {name!r} must be true or false, not {value[:40]!r}.")

    def json_body(self, fields: str) -> dict[str, Any]:
        """The body as a JSON object of at most ``MAX_BODY_BYTES``; ``fields`` says what it holds."""
        if len(self.request.body) > MAX_BODY_BYTES:
            raise InvalidInput(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        try:
            found = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):
            raise InvalidInput("The request body is not JSON.") from None
        if not isinstance(found, dict):
            raise InvalidInput(f"The request body must be a JSON object with {fields}.")
        return found

    def bucket_reference(self) -> BucketRef:
        """``bucket`` and ``prefix`` as one reference, validated as the magic and the endpoint do."""
        bucket = self.text_argument("bucket", required=True, limit=255)
        prefix = self.text_argument("prefix")
        validate_bucket_name(bucket)
        return parse_bucket_reference(f"s3://{bucket}/{prefix}")

    def object_argument(self) -> tuple[str, str]:
        """``bucket`` and ``key`` naming one object (not a folder), within S3's limits."""
        bucket = self.text_argument("bucket", required=True, limit=255)
        validate_bucket_name(bucket)
        key = self.text_argument("key", required=True, limit=MAX_KEY_LENGTH)
        if key.endswith("/") or len(key.encode()) > MAX_KEY_LENGTH:
            raise InvalidInput(
                f"The query parameter 'key' must name an object (not a folder ending in '/'), at most "
                f"{MAX_KEY_LENGTH} bytes: {key[:70]!r}."
            )
        return bucket, key


class IdentityHandler(S3AccessHandler):
    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        await self.answer(lambda: self.session.checker.identity().to_dict())


class BucketsHandler(S3AccessHandler):
    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        refresh = self.bool_argument("refresh")

        def listed() -> dict[str, Any]:
            found = self.session.buckets(refresh=refresh)
            buckets = [
                {**item, "uri": s3_uri(item["bucket"], ""), "snippet": listing_snippet(item["bucket"])}
                for item in found.to_dict()
            ]
            return {"buckets": buckets, "notes": list(found.notes)}

        await self.answer(listed)


class CheckHandler(S3AccessHandler):
    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        ref = self.bucket_reference()
        await self.answer(lambda: self.session.check(ref).to_dict())


class BrowseHandler(S3AccessHandler):
    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        ref = self.bucket_reference()
        # Not ``token``: jupyter_server takes a ``token`` query parameter for its own login token.
        token = self.text_argument("continuation", limit=4096) or None
        size = self.text_argument("page_size", limit=4) or str(DEFAULT_PAGE_SIZE)
        if not size.isdigit() or not 1 <= int(size) <= DEFAULT_PAGE_SIZE:
            raise InvalidInput(
                f"The query parameter 'page_size' must be 1 to {DEFAULT_PAGE_SIZE}, not {size!r}."
            )
        recursive = self.bool_argument("recursive")

        def page() -> dict[str, Any]:
            listed = list_level(
                self.session.aws, ref, token=token, page_size=int(size), recursive=recursive
            ).to_dict()
            for entry in listed["objects"]:
                entry["uri"] = s3_uri(ref.bucket, entry["key"])
                entry["snippet"] = snippet(ref.bucket, entry["key"])
            return listed

        await self.answer(page)


class RequestsHandler(S3AccessHandler):
    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        await self.answer(lambda: my_requests(self.session.admin()).to_dict())

    @tornado.web.authenticated
    @explained
    async def post(self) -> None:
        new = parse_new_request(
            self.json_body("bucket, access, reason and, optionally, prefix, days and idempotency_key")
        )
        await self.answer(lambda: file_request(self.session.admin(), new).to_dict(), status=201)


class CancelRequestHandler(S3AccessHandler):
    """The requester withdraws a request; the endpoint decides whether its status still allows that (an
    applied grant is the admin's to revoke), and its refusal keeps its meaning (409, 404...)."""

    @tornado.web.authenticated
    @explained
    async def post(self) -> None:
        request_id = self.text_argument("id", required=True)
        if not REQUEST_ID.fullmatch(request_id):
            raise InvalidInput(
                f"{request_id[:70]!r} is not a request id: ids are letters, digits, '-' and '_' (at most 64)."
            )

        def cancelled() -> dict[str, Any]:
            """As ``%s3access cancel``: the caller's requests after the cancel, so the list is current."""
            admin = self.session.admin()
            cancel_request(admin, request_id)
            return my_requests(admin).to_dict()

        await self.answer(cancelled)


# Routes kept in their own modules subclass S3AccessHandler above, so they are imported once it exists (the
# package imports this module first).
from mlspace_s3magic.server.admin_handlers import ADMIN_ROUTES  # noqa: E402
from mlspace_s3magic.server.browse_handlers import PreviewHandler  # noqa: E402
from mlspace_s3magic.server.transfer_handlers import TRANSFER_ROUTES  # noqa: E402

ROUTES: tuple[tuple[str, type[S3AccessHandler]], ...] = (
    ("identity", IdentityHandler),
    ("buckets", BucketsHandler),
    ("check", CheckHandler),
    ("browse", BrowseHandler),
    ("requests", RequestsHandler),
    ("requests/cancel", CancelRequestHandler),
    *ADMIN_ROUTES,
    ("preview", PreviewHandler),
    *TRANSFER_ROUTES,
)


def route_table(base_url: str) -> list[tuple[str, type[S3AccessHandler]]]:
    return [(url_path_join(base_url, "s3access", name), handler) for name, handler in ROUTES]
