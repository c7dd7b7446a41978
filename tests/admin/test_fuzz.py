"""The served OpenAPI document, fuzzed: whatever a client sends, the endpoint answers below 500.

Schemathesis generates requests (valid and invalid) for every operation in ``/openapi.json`` as the endpoint
serves it; a 4xx for bad input is correct, a 5xx is a bug. Random bucket names, keys and ids almost never
pass validation or name a real request, so each operation is fuzzed twice: as generated, then with real ones
patched in (the rest of each case stays fuzzed), or the store, the planner and apply would never be reached.
One endpoint serves the whole module; the sandbox is reset afterwards, as fuzzed applies change it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.core.access import NewAccessRequest
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.sandbox.server import Sandbox

from .conftest import Endpoint, serve_endpoint

EXAMPLES_PER_OPERATION = 20
# Patched in on the second pass. Registered, unregistered, and a legacy us-east-1 name: all valid.
BUCKETS = ("BucketToBeShared", "partner-shared-readonly", "not-registered-anywhere", "Legacy_Name.1")
# Few keys, so cases reuse them: a replayed key with another body must find the first request, not fail.
KEYS = tuple(f"fuzz-key-{index:02d}" for index in range(6))
SEEDED = (("BucketToBeShared", AccessLevel.READ), ("partner-shared-readonly", AccessLevel.READ_WRITE))


@dataclass
class Served:
    endpoint: Endpoint
    request_ids: tuple[str, ...]  # alice's, filed before fuzzing, so actions can hit real requests


@pytest.fixture(scope="module")
def served(running_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The endpoint as ``tests/admin/conftest.py`` builds it, once for the module."""
    state = running_sandbox.state
    assert state is not None
    try:
        with serve_endpoint(state, tmp_path_factory.mktemp("fuzz")) as endpoint:
            # Hundreds of calls a minute from one caller: far over the rate limits a notebook gets.
            authenticator = endpoint.service.authenticator
            authenticator.settings = replace(
                authenticator.settings, proofs_per_minute=100_000, diagnoses_per_minute=100_000
            )
            alice = endpoint.client("alice@demo")
            filed = []
            for index, (bucket, access) in enumerate(SEEDED):
                new = NewAccessRequest(
                    bucket=bucket,
                    access=access,
                    reason="fuzz seed",
                    idempotency_key=f"seed-key-{index}",
                    days=3,
                )
                request = alice.submit(new)
                assert request is not None
                filed.append(request.id)
            yield Served(endpoint, tuple(filed))
    finally:
        running_sandbox.reset()  # applies on the seeded requests changed policies in the shared world


def _schema(endpoint: Endpoint) -> OpenApiSchema:
    return schemathesis.openapi.from_url(
        endpoint.url + "/openapi.json", headers={"Authorization": f"Bearer {endpoint.token}"}
    )


def _patch(case: schemathesis.Case, bucket: str, key: str, request_id: str) -> None:
    """Real names where the fuzzed ones would stop at validation or 404; every other field stays fuzzed."""
    if isinstance(case.body, dict):
        case.body = {
            **case.body,
            **({"bucket": bucket} if "bucket" in case.body else {}),
            **({"idempotency_key": key} if "idempotency_key" in case.body else {}),
        }
    if "request_id" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "request_id": request_id}
    if "name" in (case.path_parameters or {}):
        case.path_parameters = {**case.path_parameters, "name": bucket}
    if case.query and "request_id" in case.query:
        case.query = {**case.query, "request_id": request_id}
    if case.query and "bucket" in case.query:
        case.query = {**case.query, "bucket": bucket}


class _Proof(requests.auth.AuthBase):
    """A new identity proof for each fuzzed call, made for its method, path and body as sent (a proof names
    the one call it is for)."""

    def __init__(self, client: AdminClient):
        self.client = client

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = request.body
        body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
        request.headers["Authorization"] = self.client.authorization(
            request.method or "GET", request.path_url, body
        )
        return request


def _fuzz(served: Served, authorization: str | _Proof) -> Counter[tuple[str, int]]:
    """Every operation with valid and invalid input, as generated and then patched; the statuses counted."""
    statuses: Counter[tuple[str, int]] = Counter()
    for result in _schema(served.endpoint).get_all_operations():
        for patched in (False, True):
            _fuzz_operation(served, result.ok(), authorization, patched=patched, statuses=statuses)
    return statuses


def _fuzz_operation(
    served: Served,
    operation: APIOperation,
    authorization: str | _Proof,
    *,
    patched: bool,
    statuses: Counter[tuple[str, int]],
) -> None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a failure here is not a coin toss
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of([operation.as_strategy(mode) for mode in GenerationMode]),
        bucket=st.sampled_from(BUCKETS),
        key=st.sampled_from(KEYS),
        request_id=st.sampled_from(served.request_ids),
    )
    def call(case: schemathesis.Case, bucket: str, key: str, request_id: str) -> None:
        if patched:
            _patch(case, bucket, key, request_id)
        if isinstance(authorization, str):
            response = case.call(base_url=served.endpoint.url, headers={"Authorization": authorization})
        else:
            response = case.call(base_url=served.endpoint.url, auth=authorization)
        statuses[(operation.label, response.status_code)] += 1
        assert response.status_code < 500, (
            f"{operation.label} answered {response.status_code}: {response.text[:1000]}\n"
            f"{case.as_curl_command(headers={'Authorization': '...'})}"
        )

    call()


def _answered(statuses: Counter[tuple[str, int]], label: str) -> set[int]:
    return {status for (operation, status) in statuses if operation == label}


def _operations(served: Served) -> set[str]:
    return {result.ok().label for result in _schema(served.endpoint).get_all_operations()}


def test_the_document_lists_every_route(served: Served) -> None:
    labels = _operations(served)
    actions = {f"POST /v1/requests/{{request_id}}/{name}" for name in ("approve", "deny", "apply", "revoke")}
    assert {"POST /v1/requests", "GET /v1/diagnose", "DELETE /v1/buckets/{name}", "GET /v1/audit"} <= labels
    assert actions | {"POST /v1/requests/{request_id}/cancel"} <= labels


def test_fuzzing_as_the_admin_token_finds_no_server_error(served: Served) -> None:
    statuses = _fuzz(served, f"Bearer {served.endpoint.token}")
    assert {label for label, _ in statuses} == _operations(served)
    # The admin reached the real work, not only validation: a registry write and a decision went through.
    assert 200 in _answered(statuses, "POST /v1/buckets")
    assert 200 in _answered(statuses, "POST /v1/requests/{request_id}/approve")
    assert 400 in _answered(statuses, "POST /v1/buckets")


def test_fuzzing_as_a_notebook_user_finds_no_server_error(served: Served) -> None:
    alice = served.endpoint.client("alice@demo")
    statuses = _fuzz(served, _Proof(alice))
    assert {label for label, _ in statuses} == _operations(served)
    assert {200, 201} <= _answered(statuses, "POST /v1/requests")  # filed, and a replayed key found
    assert 400 in _answered(statuses, "POST /v1/requests")
    assert 200 in _answered(statuses, "GET /v1/diagnose")
    # Fuzzed submissions went into the store whole: they read back through the API in the documented shape.
    assert len(alice.requests()) > len(served.request_ids)
