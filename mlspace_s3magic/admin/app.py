"""The admin endpoint's HTTP API: thin routes over :class:`AdminService`, every one authenticated.

Routes are plain ``def`` functions, so FastAPI runs them (and their AWS and SQLite calls) in its worker
threads, off the event loop. Errors are JSON ``{"detail": message}`` with the status of their meaning
(:data:`~mlspace_s3magic.core.errors.HTTP_STATUS`).

Every route authenticates the call it serves: an identity proof must name this call's method, path (with
query, as received) and body, so the dependency reads the body (FastAPI reads it once and keeps it).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from mlspace_s3magic.access_requests.proof import Call
from mlspace_s3magic.admin.auth import Caller, RateLimited, Unauthenticated
from mlspace_s3magic.admin.service import DENIAL_REASON_LENGTH, AdminService
from mlspace_s3magic.core.access import (
    REQUEST_SUBJECTS,
    AuditEntry,
    NewAccessRequest,
    RequestStatus,
    RequestView,
    SharedBucket,
)
from mlspace_s3magic.core.errors import HTTP_STATUS, S3MagicError, meaning
from mlspace_s3magic.core.problems import plain_problems


class Decision(BaseModel):
    """A deny's body; the reason is checked by the service, whose 400 states the rule in words."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None,
        description="Required: why, for the requester "
        f"({DENIAL_REASON_LENGTH[0]} to {DENIAL_REASON_LENGTH[1]} characters of plain text; whitespace "
        "runs become single spaces).",
    )


def create_app(service: AdminService) -> FastAPI:
    """The API over ``service``; the OpenAPI document is served (authenticated) at ``/openapi.json``."""
    app = FastAPI(
        title="mlspace-s3magic admin endpoint",
        version="1",
        description="Access requests to S3 buckets from MLSpace notebooks: file, review, apply, revoke.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )

    async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Caller:
        call = Call.of(request.method, received_path(request), await request.body())
        source = request.client.host if request.client else None
        # STS and IAM are called off the event loop, as the routes are.
        return await run_in_threadpool(service.authenticator.authenticate, authorization, call, source=source)

    Authenticated = Annotated[Caller, Depends(caller)]

    @app.exception_handler(S3MagicError)
    def _known(request: Request, error: S3MagicError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=HTTP_STATUS[meaning(error)])

    # Two answers of HTTP's own protocol, beside the meanings (not allowed, unavailable) they refine: a
    # client retries a 401 with a proof and a 429 after the time it is told.
    @app.exception_handler(Unauthenticated)
    def _unproven(request: Request, error: Unauthenticated) -> JSONResponse:
        headers = {"WWW-Authenticate": "S3AccessProof, Bearer"}
        return JSONResponse({"detail": str(error)}, status_code=401, headers=headers)

    @app.exception_handler(RateLimited)
    def _limited(request: Request, error: RateLimited) -> JSONResponse:
        headers = {"Retry-After": str(error.retry_after)}
        return JSONResponse({"detail": str(error)}, status_code=429, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        """400 naming each field, rather than FastAPI's 422 with internals."""
        problems = plain_problems(error.errors(), NewAccessRequest, REQUEST_SUBJECTS)
        return JSONResponse({"detail": f"{problems}."}, status_code=400)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(who: Authenticated) -> dict[str, Any]:
        return app.openapi()

    @app.get("/v1/me")
    def me(who: Authenticated) -> dict[str, Any]:
        return service.me(who)

    @app.post("/v1/requests", status_code=201, response_model=RequestView)
    def submit(new: NewAccessRequest, who: Authenticated, response: Response) -> RequestView:
        view, created = service.submit(who, new)
        if not created:
            response.status_code = 200
        return view

    @app.get("/v1/requests", response_model=list[RequestView])
    def list_requests(
        who: Authenticated,
        status: Annotated[RequestStatus | None, Query(description="Only requests in this status.")] = None,
    ) -> list[RequestView]:
        return service.list_requests(who, status)

    @app.get("/v1/requests/{request_id}", response_model=RequestView)
    def show(request_id: str, who: Authenticated) -> RequestView:
        return service.show(who, request_id)

    @app.post("/v1/requests/{request_id}/deny", response_model=RequestView, summary="Deny a request")
    def deny(
        request_id: str, who: Authenticated, decision: Annotated[Decision | None, Body()] = None
    ) -> RequestView:
        """Deny, saying why in the body's ``reason``: the requester reads it, the audit log keeps it."""
        return service.deny(who, request_id, decision.reason if decision else None)

    actions: dict[str, Callable[[Caller, str], RequestView]] = {
        "approve": service.approve,
        "apply": service.apply,
        "revoke": service.revoke,
        "cancel": service.cancel,
    }
    for name, action in actions.items():
        app.add_api_route(
            f"/v1/requests/{{request_id}}/{name}",
            _action_route(action, caller),
            methods=["POST"],
            response_model=RequestView,
            name=name,
            summary=f"{name.capitalize()} a request",
        )

    @app.get("/v1/buckets", response_model=list[SharedBucket])
    def buckets(who: Authenticated) -> list[SharedBucket]:
        return service.buckets(who)

    @app.post("/v1/buckets", response_model=SharedBucket)
    def put_bucket(bucket: SharedBucket, who: Authenticated) -> SharedBucket:
        return service.put_bucket(who, bucket)

    @app.delete("/v1/buckets/{name}", status_code=204)
    def delete_bucket(name: str, who: Authenticated) -> Response:
        service.delete_bucket(who, name)
        return Response(status_code=204)

    @app.get("/v1/audit", response_model=list[AuditEntry])
    def audit(
        who: Authenticated,
        request_id: Annotated[str | None, Query(description="Only this request's entries.")] = None,
    ) -> list[AuditEntry]:
        return service.audit(who, request_id)

    @app.get("/v1/diagnose")
    def diagnose(
        who: Authenticated,
        bucket: Annotated[
            str, Query(min_length=1, max_length=1100, description="BUCKET[/PREFIX] or s3://...")
        ],
    ) -> dict[str, Any]:
        service.authenticator.limit_diagnosis(who)
        return service.diagnose(who, bucket)

    @app.post("/v1/reconcile")
    def reconcile(
        who: Authenticated,
        remove_orphans: Annotated[
            bool, Query(description="Also remove statements of ours that no live grant owns.")
        ] = False,
    ) -> dict[str, Any]:
        return service.reconcile(who, remove_orphans=remove_orphans).to_dict()

    return app


def received_path(request: Request) -> str:
    """The path and query of the call as the client sent them (percent-encoded, relative to the endpoint's
    root path), which is what an identity proof names."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    root = str(request.scope.get("root_path") or "").rstrip("/")
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def _action_route(
    action: Callable[[Caller, str], RequestView], caller: Callable[..., Awaitable[Caller]]
) -> Any:
    """A POST route for one state change without a body, so the four of them share one shape."""

    def route(request_id: str, who: Annotated[Caller, Depends(caller)]) -> RequestView:
        return action(who, request_id)

    route.__doc__ = action.__doc__
    return route
