"""Errors by meaning: each of the six bases has one HTTP status and one exit code, which every shell gives."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from typing import cast

import pytest
from fastapi.testclient import TestClient

import mlspace_s3magic
from mlspace_s3magic import cli
from mlspace_s3magic.access_requests.client import AdminRefused, admin_refused
from mlspace_s3magic.admin.app import create_app
from mlspace_s3magic.admin.auth import RateLimited, Unauthenticated
from mlspace_s3magic.admin.service import AdminService
from mlspace_s3magic.core.errors import (
    EXIT_CODE,
    HTTP_STATUS,
    MEANINGS,
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    S3MagicError,
    Unavailable,
    UpstreamFailed,
    meaning,
)

# The contract, written out: a change to core/errors.py's tables must change this too.
EXPECTED: dict[type[S3MagicError], tuple[int, int]] = {
    InvalidInput: (400, 2),
    NotAllowed: (403, 3),
    NotFound: (404, 1),
    Conflict: (409, 1),
    Unavailable: (503, 1),
    UpstreamFailed: (502, 1),
}


def _our_errors() -> list[type[BaseException]]:
    """Every exception class the package defines."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(mlspace_s3magic.__path__, "mlspace_s3magic."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_each_meaning_has_one_status_and_one_exit_code() -> None:
    assert set(MEANINGS) == set(EXPECTED)
    assert all(base.__bases__ == (S3MagicError,) for base in MEANINGS)
    assert {base: (HTTP_STATUS[base], EXIT_CODE[base]) for base in MEANINGS} == EXPECTED


def test_every_error_of_ours_has_exactly_one_meaning() -> None:
    """An error outside the six would get a shell's guess; one under two would get the first table row."""
    without = []
    for kind in _our_errors():
        name = f"{kind.__module__}.{kind.__qualname__}"
        if kind is S3MagicError or kind in MEANINGS or kind is AdminRefused:
            continue
        if kind.__module__.startswith("mlspace_s3magic.sandbox.") and not issubclass(kind, S3MagicError):
            continue  # the sandbox's stand-ins for AWS's own errors, which moto answers with
        meanings = [base for base in MEANINGS if issubclass(kind, base)]
        if not meanings:
            without.append(name)
            continue
        assert len(meanings) == 1, (name, meanings)
    assert not without, without


def test_only_a_meaning_of_the_endpoint_is_raised_for_its_refusals() -> None:
    """The client reads the endpoint's status back as the meaning the endpoint answered it for."""
    for base in MEANINGS:
        refused = admin_refused(HTTP_STATUS[base], "why")
        assert isinstance(refused, AdminRefused) and meaning(refused) is base
        assert refused.status == HTTP_STATUS[base] and "why" in str(refused)
    assert meaning(admin_refused(401, "who?")) is NotAllowed
    assert meaning(admin_refused(429, "slow down")) is Unavailable
    assert meaning(admin_refused(500, "oops")) is UpstreamFailed


def test_an_error_without_a_meaning_counts_as_upstream_failed() -> None:
    assert meaning(S3MagicError("unclassified")) is UpstreamFailed


@pytest.mark.parametrize("base", MEANINGS, ids=lambda base: base.__name__)
def test_the_cli_exits_with_the_code_of_the_meaning(
    base: type[S3MagicError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(args: argparse.Namespace) -> int:
        raise base("what went wrong, and what to do")

    monkeypatch.setitem(cli.HANDLERS, "whoami", failing)
    assert cli.main(["whoami"]) == EXPECTED[base][1]
    assert capsys.readouterr().err == "s3access: what went wrong, and what to do\n"


class _Raising:
    """A stand-in service whose every operation, its caller's authentication first, raises ``error``."""

    def __init__(self, error: S3MagicError):
        self.error = error
        self.authenticator = self

    def __getattr__(self, name: str) -> Callable[..., None]:
        return self._raise

    def _raise(self, *args: object, **kwargs: object) -> None:
        raise self.error


def _endpoint_raising(error: S3MagicError) -> TestClient:
    return TestClient(create_app(cast(AdminService, _Raising(error))))


@pytest.mark.parametrize("base", MEANINGS, ids=lambda base: base.__name__)
def test_the_admin_endpoint_answers_the_status_of_the_meaning(base: type[S3MagicError]) -> None:
    response = _endpoint_raising(base("what went wrong")).get("/v1/requests")
    assert (response.status_code, response.json()) == (EXPECTED[base][0], {"detail": "what went wrong"})


def test_the_admin_endpoint_asks_for_a_proof_and_says_when_to_retry() -> None:
    """HTTP's own refinements of not allowed and unavailable, which a client acts on."""
    unproven = _endpoint_raising(Unauthenticated("no proof")).get("/v1/requests")
    assert unproven.status_code == 401 and unproven.headers["WWW-Authenticate"] == "S3AccessProof, Bearer"
    limited = _endpoint_raising(RateLimited("too many", retry_after=7)).get("/v1/requests")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json() == {"detail": "too many"}
