"""The ``/s3access/`` routes through a real jupyter_server, as alice@demo against the sandbox."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPClientError
from tornado.web import RequestHandler

from mlspace_s3magic.access_requests.outbox import Outbox, default_outbox_dir
from mlspace_s3magic.core.access import RequestStatus
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import READABLE_BUCKET, SHARED_BUCKET
from mlspace_s3magic.server.handlers import ROUTES, SESSION_SETTING
from mlspace_s3magic.session import S3AccessSession

from ..admin.conftest import free_port, serve_endpoint
from .conftest import CONFIGURED_CACHE_SECONDS, Fetch, get_json, refused

VERBS = ("get", "post", "put", "patch", "delete", "head", "options")
GOOD_REQUEST = {"bucket": SHARED_BUCKET, "prefix": "datasets/", "access": "read", "reason": "iris study"}


def _verbs(handler: type[RequestHandler]) -> list[str]:
    """The HTTP verbs our handler answers itself; the rest are tornado's 405 or jupyter_server's own
    (its CORS preflight ``options``)."""
    return [verb for verb in VERBS if getattr(handler, verb) is not getattr(APIHandler, verb)]


def test_every_verb_of_every_route_is_authenticated() -> None:
    wrapper = tornado.web.authenticated(lambda self: None).__code__
    for name, handler in ROUTES:
        assert _verbs(handler), f"{name} answers no verb"
        for verb in _verbs(handler):
            method: Any = getattr(handler, verb)
            layers = []
            while method is not None:
                layers.append(method.__code__)
                method = getattr(method, "__wrapped__", None)
            assert wrapper in layers, f"{handler.__name__}.{verb} is not @tornado.web.authenticated"


async def test_no_route_answers_without_a_token(jp_fetch: Fetch, jp_serverapp: ServerApp) -> None:
    for name, handler in ROUTES:
        for verb in _verbs(handler):
            body = json.dumps(GOOD_REQUEST) if verb in ("post", "put", "patch") else None
            with pytest.raises(HTTPClientError) as caught:
                await jp_fetch(
                    "s3access",
                    name,
                    method=verb.upper(),
                    body=body,
                    params={"bucket": SHARED_BUCKET},
                    headers={"Authorization": ""},  # jp_fetch adds the server's token unless told otherwise
                    follow_redirects=False,
                )
            assert caught.value.code == 403, (name, verb)
    session: S3AccessSession = jp_serverapp.web_app.settings[SESSION_SETTING]
    assert session._checker is None, "an unauthenticated request reached AWS"


async def test_the_server_config_reaches_the_session(jp_serverapp: ServerApp) -> None:
    session: S3AccessSession = jp_serverapp.web_app.settings[SESSION_SETTING]
    assert session.settings.cache_seconds == CONFIGURED_CACHE_SECONDS


async def test_identity_is_alice_as_the_sandbox_knows_her(jp_fetch: Fetch, sandbox: SandboxState) -> None:
    identity = await get_json(jp_fetch, "identity")
    assert identity["arn"] == sandbox.principal("alice@demo").arn
    assert ":assumed-role/" in identity["arn"] and identity["session"] == "SageMaker"
    assert (identity["user"], identity["project"], identity["account"]) == ("alice", "demo", "111111111111")


async def test_buckets_lists_both_registered_buckets_with_their_status(jp_fetch: Fetch) -> None:
    listed = await get_json(jp_fetch, "buckets")
    status = {item["bucket"]: item["status"] for item in listed["buckets"]}
    assert status[SHARED_BUCKET] == "denied"
    assert status[READABLE_BUCKET] == "read"
    shared = next(item for item in listed["buckets"] if item["bucket"] == SHARED_BUCKET)
    assert shared["uri"] == f"s3://{SHARED_BUCKET}/"
    assert f"Bucket={SHARED_BUCKET!r}" in shared["snippet"] and "addressing_style" in shared["snippet"]
    again = await get_json(jp_fetch, "buckets", refresh="true")
    assert {item["bucket"]: item["status"] for item in again["buckets"]} == status


async def test_check_names_the_layers_that_block_alice(jp_fetch: Fetch) -> None:
    report = await get_json(jp_fetch, "check", bucket=SHARED_BUCKET)
    assert report["bucket"] == SHARED_BUCKET
    # The registry names the owner, so the check knows this is another account's bucket.
    assert not [note for note in report["notes"] if "owns BucketToBeShared is unknown" in note]
    read = report["capabilities"]["read"]
    assert read["verdict"] == "denied"
    assert {"identity", "boundary"} <= set(read["blocked_by"])
    assert {fix["layer"] for fix in report["fixes"]} >= {"identity", "boundary"}
    readable = await get_json(jp_fetch, "check", bucket=READABLE_BUCKET, prefix="reference/")
    assert (readable["prefix"], readable["capabilities"]["read"]["verdict"]) == ("reference/", "allowed")


async def test_browse_pages_a_level_with_paths_and_snippets(jp_fetch: Fetch) -> None:
    page = await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET)
    assert page["folders"] == ["reference/"]
    assert [entry["key"] for entry in page["objects"]] == ["README.txt"]
    deeper = await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET, prefix="reference/")
    (csv,) = deeper["objects"]
    assert csv["uri"] == f"s3://{READABLE_BUCKET}/reference/countries.csv"
    assert "pd.read_csv" in csv["snippet"] and deeper["next_token"] is None


async def test_browse_of_a_denied_bucket_is_403_with_the_reason(jp_fetch: Fetch) -> None:
    status, message = await refused(jp_fetch, "browse", params={"bucket": SHARED_BUCKET})
    assert status == 403
    assert SHARED_BUCKET in message


@pytest.mark.parametrize(
    ("route", "params", "named"),
    [
        ("check", {}, "bucket"),
        ("check", {"bucket": "no spaces allowed"}, "no spaces allowed"),
        ("browse", {"bucket": "a/b"}, "a/b"),
        ("check", {"bucket": "x" * 300}, "bucket"),
        ("buckets", {"refresh": "perhaps"}, "refresh"),
    ],
)
async def test_bad_query_parameters_are_400_naming_them(
    jp_fetch: Fetch, route: str, params: dict[str, str], named: str
) -> None:
    status, message = await refused(jp_fetch, route, params=params)
    assert status == 400
    assert named in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({**GOOD_REQUEST, "reason": ""}), "reason"),
        (json.dumps({**GOOD_REQUEST, "access": "admin"}), "access"),
        (json.dumps({**GOOD_REQUEST, "days": 0}), "days"),
        (json.dumps({**GOOD_REQUEST, "bucket": "Not A Bucket"}), "bucket"),
        (json.dumps({**GOOD_REQUEST, "prefix": "/data"}), "prefix"),
        (json.dumps({**GOOD_REQUEST, "requester": "arn:aws:iam::111111111111:user/admin"}), "requester"),
        (json.dumps({**GOOD_REQUEST, "idempotency_key": "short"}), "idempotency_key"),
    ],
)
async def test_bad_request_bodies_are_400_naming_the_field(jp_fetch: Fetch, body: str, named: str) -> None:
    status, message = await refused(jp_fetch, "requests", method="POST", body=body)
    assert status == 400
    assert named in message


async def test_requests_without_an_admin_endpoint_say_how_to_configure_one(jp_fetch: Fetch) -> None:
    status, message = await refused(jp_fetch, "requests")
    assert status == 503
    assert "S3Access.admin_url" in message and "S3ACCESS_ADMIN_URL" in message


async def test_a_request_reaches_the_admin_store_as_proven_alice(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        response = await jp_fetch(
            "s3access", "requests", method="POST", body=json.dumps({**GOOD_REQUEST, "days": 7})
        )
        assert response.code == 201
        receipt = json.loads(response.body)
        assert receipt["queued"] is False and receipt["status"] == "pending"
        stored = endpoint.service.store.get(receipt["id"])
        assert stored.status is RequestStatus.PENDING
        assert stored.requester.arn == sandbox.principal("alice@demo").arn
        assert (stored.bucket, stored.prefix, stored.days) == (SHARED_BUCKET, "datasets/", 7)
        mine = await get_json(jp_fetch, "requests")
        assert [r["id"] for r in mine["requests"]] == [receipt["id"]]


async def test_a_request_to_an_unreachable_endpoint_is_kept_in_the_outbox(
    jp_fetch: Fetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("S3ACCESS_ADMIN_URL", unreachable)
    key = "0123456789abcdef0123456789abcdef"
    response = await jp_fetch(
        "s3access", "requests", method="POST", body=json.dumps({**GOOD_REQUEST, "idempotency_key": key})
    )
    assert response.code == 201
    assert json.loads(response.body) == {"queued": True, "idempotency_key": key, "endpoint": unreachable}
    assert [q.idempotency_key for q in Outbox(default_outbox_dir()).pending()] == [key]
    listed = await get_json(jp_fetch, "requests")  # still unreachable: the queued one is shown
    assert [q["idempotency_key"] for q in listed["queued"]] == [key]


async def test_aws_work_runs_off_the_event_loop(
    jp_fetch: Fetch, jp_serverapp: ServerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one route waits on AWS, another is answered: the wait is in a thread, not on the loop."""
    release = threading.Event()
    session: S3AccessSession = jp_serverapp.web_app.settings[SESSION_SETTING]
    original = session.buckets

    def slow_buckets(**kwargs: Any) -> Any:
        assert release.wait(timeout=20)
        return original(**kwargs)

    monkeypatch.setattr(session, "buckets", slow_buckets)
    waiting = asyncio.ensure_future(get_json(jp_fetch, "buckets"))
    identity = await asyncio.wait_for(get_json(jp_fetch, "identity"), timeout=15)
    assert identity["user"] == "alice" and not waiting.done()
    release.set()
    assert any(item["bucket"] == SHARED_BUCKET for item in (await waiting)["buckets"])


async def test_a_post_with_the_browser_cookie_needs_the_xsrf_token(
    jp_fetch: Fetch, jp_serverapp: ServerApp
) -> None:
    """A page on another site can make the browser send the login cookie, but cannot read the XSRF token."""
    token = jp_serverapp.identity_provider.token
    signed_in = await jp_fetch("api", "status", params={"token": token}, headers={"Authorization": ""})
    login_cookie = signed_in.headers["Set-Cookie"].split(";")[0]
    bad_body = json.dumps({**GOOD_REQUEST, "days": 0})
    as_browser = {"Authorization": "", "Cookie": login_cookie}
    status, message = await refused(jp_fetch, "requests", method="POST", body=bad_body, headers=as_browser)
    assert status == 403 and "_xsrf" in message
    with_xsrf = {
        **as_browser,
        "Cookie": f"{login_cookie}; _xsrf=k3yfr0mth3c00k1e",
        "X-XSRFToken": "k3yfr0mth3c00k1e",
    }
    status, message = await refused(jp_fetch, "requests", method="POST", body=bad_body, headers=with_xsrf)
    assert status == 400 and "days" in message  # past the XSRF check, to our own validation
