"""The Jupyter server's routes answer each meaning of error with its status, as JSON ``{"message": ...}``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPClientError

from mlspace_s3magic.core.errors import (
    MEANINGS,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    S3MagicError,
    Unavailable,
    UpstreamFailed,
)
from mlspace_s3magic.server.handlers import ROUTES, SESSION_SETTING, explained
from mlspace_s3magic.session import S3AccessSession

from .conftest import Fetch
from .test_routes import _verbs

STATUS = {
    InvalidInput: 400,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    Unavailable: 503,
    UpstreamFailed: 502,
}


def test_every_verb_of_every_route_explains_its_errors() -> None:
    """A verb without it would answer one of our errors as a bare 500 "Unhandled error"."""
    wrapper = explained(lambda self: None).__code__
    for _, handler in ROUTES:
        for verb in _verbs(handler):
            method: Any = getattr(handler, verb)
            layers = []
            while method is not None:
                layers.append(method.__code__)
                method = getattr(method, "__wrapped__", None)
            assert wrapper in layers, f"{handler.__name__}.{verb} does not explain its errors"


@pytest.mark.parametrize("base", MEANINGS, ids=lambda base: base.__name__)
async def test_a_route_answers_the_status_of_the_meaning_as_json(
    base: type[S3MagicError], jp_fetch: Fetch, jp_serverapp: ServerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    session: S3AccessSession = jp_serverapp.web_app.settings[SESSION_SETTING]

    def failing(**kwargs: Any) -> Any:
        raise base("100% of what went wrong")  # a '%' is text, never a format directive

    monkeypatch.setattr(session, "buckets", failing)
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("s3access", "buckets")
    response = caught.value.response
    assert response is not None
    assert caught.value.code == STATUS[base]
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(response.body) == {"message": "100% of what went wrong"}


async def test_a_bad_parameter_is_answered_before_any_work(jp_fetch: Fetch) -> None:
    """Raised while reading the query, before the work's thread: the same JSON, the status of bad input."""
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("s3access", "check", params={"bucket": "Not A Bucket"})
    assert caught.value.code == 400 and caught.value.response is not None
    assert set(json.loads(caught.value.response.body)) == {"message"}
