"""The extension's TypeScript types (``labextension/src/types.ts``) against what the routes really send,
and its access levels, bucket statuses and verdicts against the Python enums: a field renamed on either
side fails here, not in a user's sidebar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.admin.views import admin_review
from mlspace_s3magic.commands import REQUESTABLE
from mlspace_s3magic.core.access import TRANSITIONS, NewAccessRequest, RequestStatus, RequestView
from mlspace_s3magic.core.browse import OTHER, TABLE, TEXT
from mlspace_s3magic.core.check import Verdict
from mlspace_s3magic.core.download import DOWNLOAD_LIMIT
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.names import modern_rule_broken
from mlspace_s3magic.core.objects import OPEN_LIMIT
from mlspace_s3magic.core.reachability import Status
from mlspace_s3magic.core.remedy import AccessLevel
from mlspace_s3magic.core.upload import MULTIPART_THRESHOLD
from mlspace_s3magic.sandbox.state import SandboxState
from mlspace_s3magic.sandbox.world import DATA_BUCKET, READABLE_BUCKET, SHARED_BUCKET

from ..admin.conftest import serve_endpoint
from .conftest import Fetch, get_json
from .ts_types import Checker, Declarations, Object, TypeScriptError, parse

TYPES = Path(__file__).parents[2] / "labextension" / "src" / "types.ts"
# What each route answers, by the type api.ts reads it as.
ROUTE_TYPES = ("IIdentity", "IBucketList", "ICheck", "RequestResult")


def _declarations(source: str | None = None) -> Declarations:
    return parse(TYPES.read_text() if source is None else source)


def _identity() -> dict[str, Any]:
    return Identity(
        arn="arn:aws:sts::111111111111:assumed-role/MLSpace-demo-x/SageMaker",
        account="111111111111",
        principal_type="assumed-role",
        role="MLSpace-demo-x",
        role_arn="arn:aws:iam::111111111111:role/MLSpace-demo-x",
        session="SageMaker",
        user="alice",
        project="demo",
    ).to_dict()


def test_the_access_levels_statuses_and_verdicts_are_the_python_ones() -> None:
    declared = _declarations()
    assert declared.constants["ACCESS_LEVELS"] == tuple(level.value for level in AccessLevel)
    assert declared.literals("AccessLevel") == {level.value for level in AccessLevel}
    assert declared.constants["REQUESTABLE"] == tuple(level.value for level in REQUESTABLE)
    assert declared.literals("BucketStatus") == {status.value for status in Status}
    assert declared.literals("Verdict") == {verdict.value for verdict in Verdict}


def test_the_request_body_is_the_models_fields() -> None:
    """What the dialog posts: every field one the server's model has, every field it requires declared
    required."""
    body = _declarations().resolve(_declarations().types["IAccessRequest"])
    model = NewAccessRequest.model_fields
    assert isinstance(body, Object)
    assert set(body.members) == set(model)
    required = {name for name, member in body.members.items() if not member.optional}
    assert {name for name, info in model.items() if info.is_required()} <= required


def test_the_request_limits_are_the_models() -> None:
    """The dialog states and checks these numbers; the server's model is what enforces them."""
    numbers = _declarations().numbers
    fields = NewAccessRequest.model_fields

    def bound(name: str, attribute: str) -> object:
        (value,) = [getattr(rule, attribute) for rule in fields[name].metadata if hasattr(rule, attribute)]
        return value

    assert numbers["REASON_MIN_LENGTH"] == bound("reason", "min_length")
    assert numbers["REASON_MAX_LENGTH"] == bound("reason", "max_length")
    assert (numbers["DAYS_MIN"], numbers["DAYS_MAX"]) == (bound("days", "ge"), bound("days", "le"))
    assert numbers["PREFIX_MAX_LENGTH"] == bound("prefix", "max_length")
    shortest, longest = numbers["BUCKET_NAME_MIN_LENGTH"], numbers["BUCKET_NAME_MAX_LENGTH"]
    for length in (shortest, longest):
        assert modern_rule_broken("a" * length) is None
    for length in (shortest - 1, longest + 1):
        assert modern_rule_broken("a" * length) == f"it has {length} characters"


async def test_the_types_match_what_every_route_sends(
    jp_fetch: Fetch, sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = Checker(_declarations())
    sent: list[tuple[str, Any]] = [
        ("IIdentity", await get_json(jp_fetch, "identity")),
        ("IBucketList", await get_json(jp_fetch, "buckets")),
        ("ICheck", await get_json(jp_fetch, "check", bucket=SHARED_BUCKET)),
        ("ICheck", await get_json(jp_fetch, "check", bucket=READABLE_BUCKET, prefix="reference/")),
    ]
    body = {
        "bucket": SHARED_BUCKET,
        "prefix": "datasets/",
        "access": "read",
        "reason": "iris study",
        "days": 7,
    }
    with serve_endpoint(sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        filed = {**body, "idempotency_key": "0123456789abcdef0123456789abcdef"}
        response = await jp_fetch("s3access", "requests", method="POST", body=json.dumps(filed))
        sent += [("IAccessRequest", filed), ("RequestResult", json.loads(response.body))]
    # The endpoint is gone: the next request waits in the outbox.
    queued = {**body, "days": None, "idempotency_key": "fedcba9876543210fedcba9876543210"}
    response = await jp_fetch("s3access", "requests", method="POST", body=json.dumps(queued))
    sent += [("IAccessRequest", queued), ("RequestResult", json.loads(response.body))]
    assert [value["queued"] for kind, value in sent if kind == "RequestResult"] == [False, True]

    problems = [problem for kind, value in sent for problem in checker.check(value, kind)]
    assert problems == []
    assert checker.never_sent(*ROUTE_TYPES, "IAccessRequest") == []


def test_a_field_renamed_on_either_side_fails() -> None:
    """The check above can fail: a TypeScript rename, a Python rename, an optional field no route sends."""
    source = TYPES.read_text()
    renamed_in_ts = Checker(_declarations(source.replace("  role_arn:", "  roleArn:")))
    assert renamed_in_ts.check(_identity(), "IIdentity") == [
        f"IIdentity.roleArn is required but missing (sent: {sorted(_identity())})"
    ]
    sent = _identity()
    sent["role"] = sent.pop("role_arn")
    sent["user_scoped"] = "yes"
    problems = Checker(_declarations()).check(sent, "IIdentity")
    assert problems[0].startswith("IIdentity.role_arn is required but missing")
    assert problems[1].startswith("IIdentity.user_scoped: 'yes' fits none of the union's types")

    optional = Checker(_declarations(source.replace("  reason?:", "  reasons?:")))
    assert optional.check({"layer": "kms", "reason": "AccessDenied"}, "ILayerNote") == []
    assert optional.never_sent("ILayerNote") == ["ILayerNote.reasons is declared but no route sent it"]


@pytest.mark.parametrize(
    "declaration",
    [
        "export function call() {}",
        "export interface IX { when: Date; }",  # a name never declared
        "interface IX { a: string; }",  # not exported
        "export interface IX { a: Array<string>; }",  # generics are not read
        "export type X = 'a' | \"b\";",
        "export type X = (typeof MISSING)[number];",
        "export const X = 1.5;",  # whole numbers only
        "export const X = 'a';",  # a single string is not a list
    ],
)
def test_the_reader_refuses_what_it_does_not_understand(declaration: str) -> None:
    with pytest.raises(TypeScriptError):
        parse(declaration)


def test_the_request_statuses_and_what_may_be_cancelled_are_the_python_ones() -> None:
    declared = _declarations()
    assert declared.constants["REQUEST_STATUSES"] == tuple(status.value for status in RequestStatus)
    assert declared.literals("RequestStatus") == {status.value for status in RequestStatus}
    cancellable = [s.value for s in RequestStatus if RequestStatus.CANCELLED in TRANSITIONS[s]]
    assert declared.constants["CANCELLABLE"] == tuple(cancellable)


async def test_the_request_list_types_match_what_the_routes_send(
    jp_fetch: Fetch, fresh_sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """My requests' list as the routes send it: an applied grant (with its expiry and layer lines), a
    cancelled request, and one queued while the endpoint is away."""

    async def filed(prefix: str, key: str) -> str:
        body = {"bucket": SHARED_BUCKET, "prefix": prefix, "access": "read", "reason": "iris", "days": 7}
        response = await jp_fetch(
            "s3access", "requests", method="POST", body=json.dumps({**body, "idempotency_key": key})
        )
        receipt: dict[str, str] = json.loads(response.body)
        return receipt.get("id", "")

    with serve_endpoint(fresh_sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        granted = await filed("datasets/", "1" * 32)
        admin = endpoint.token_client()
        admin.act(granted, "approve")
        admin.act(granted, "apply")
        admin.close()
        withdrawn = await filed("logs/", "2" * 32)
        listed = await get_json(jp_fetch, "requests")
        response = await jp_fetch(
            "s3access", "requests/cancel", method="POST", body=b"", params={"id": withdrawn}
        )
        after_cancel = json.loads(response.body)
    await filed("other/", "3" * 32)  # the endpoint is gone: queued
    with_queued = await get_json(jp_fetch, "requests")

    statuses = {r["id"]: (r["status"], r["expires_at"] is not None) for r in after_cancel["requests"]}
    assert statuses == {granted: ("applied", True), withdrawn: ("cancelled", False)}
    assert [q["prefix"] for q in with_queued["queued"]] == ["other/"]
    checker = Checker(_declarations())
    problems = [
        problem
        for value in (listed, after_cancel, with_queued)
        for problem in checker.check(value, "IRequestList")
    ]
    assert problems == []
    assert checker.never_sent("IRequestList") == []


async def test_the_admin_review_types_match_what_the_admin_routes_send(
    jp_fetch: Fetch, fresh_sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin panel's JSON: ``admin/me`` as alice sends it, and a review before and after an apply as the
    admin routes build it (tests/server/test_admin_routes.py drives those routes as the sandbox's admin)."""
    with serve_endpoint(fresh_sandbox, tmp_path / "admin") as endpoint:
        monkeypatch.setenv("S3ACCESS_ADMIN_URL", endpoint.url)
        me = await get_json(jp_fetch, "admin/me")
        body = {"bucket": SHARED_BUCKET, "prefix": "datasets/", "access": "read", "reason": "iris", "days": 7}
        response = await jp_fetch(
            "s3access", "requests", method="POST", body=json.dumps({**body, "idempotency_key": "4" * 32})
        )
        request_id = json.loads(response.body)["id"]
        admin = endpoint.client("admin")
        shown = admin_review(admin.show(request_id))
        admin.act(request_id, "approve")
        applied = admin_review(RequestView(request=admin.act(request_id, "apply")))
        listed = {"requests": [admin_review(RequestView(request=r)) for r in admin.requests()]}
        admin.close()
    assert shown["verification"] is None and applied["verification"]["verdict"] == "allowed"
    checker = Checker(_declarations())
    sent = [("IAdminMe", me), ("IReview", shown), ("IReview", applied), ("IReviewList", listed)]
    problems = [problem for kind, value in sent for problem in checker.check(value, kind)]
    assert problems == []
    assert checker.never_sent("IAdminMe", "IReviewList") == []


async def test_the_browse_and_preview_types_match_what_the_routes_send(jp_fetch: Fetch) -> None:
    """The sidebar's folder view: a level with folders, one with a CSV, every object below (recursive) on
    pages of one, and the previews of a CSV (rows) and of a text (lines)."""
    checker = Checker(_declarations())
    pages = [
        await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET),
        await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET, prefix="reference/"),
        await get_json(jp_fetch, "browse", bucket=READABLE_BUCKET, recursive="true", page_size="1"),
    ]
    previews = [
        await get_json(jp_fetch, "preview", bucket=READABLE_BUCKET, key="reference/countries.csv"),
        await get_json(jp_fetch, "preview", bucket=READABLE_BUCKET, key="README.txt"),
    ]
    assert pages[2]["next_token"] and previews[0]["table"] and previews[1]["table"] is None
    problems = [p for page in pages for p in checker.check(page, "IBrowsePage")]
    problems += [p for shown in previews for p in checker.check(shown, "IPreview")]
    assert problems == []
    assert checker.never_sent("IBrowsePage", "IBrowseObject", "IPreview") == []
    assert _declarations().literals("ObjectKind") == {TABLE, TEXT, OTHER}


def test_the_transfer_limits_are_the_pythons() -> None:
    numbers = _declarations().numbers
    assert numbers["DOWNLOAD_LIMIT_BYTES"] == DOWNLOAD_LIMIT
    assert numbers["OPEN_LIMIT_BYTES"] == OPEN_LIMIT
    assert numbers["MULTIPART_THRESHOLD_BYTES"] == MULTIPART_THRESHOLD


async def test_the_transfer_types_match_what_the_routes_send(
    jp_fetch: Fetch, jp_root_dir: Path, sandbox: SandboxState
) -> None:
    """A download's stream, an upload's that fails after its parts went (the object appeared meanwhile: its
    last line is the error), and a whole object as text."""

    async def stream(route: str, **params: str) -> list[Any]:
        response = await jp_fetch("s3access", route, method="POST", body=b"", params=params)
        return [json.loads(line) for line in response.body.decode().splitlines()]

    downloaded = await stream("download", bucket=DATA_BUCKET, key="project/demo/train.csv", folder="")
    (jp_root_dir / "big.bin").write_bytes(b"b" * (MULTIPART_THRESHOLD + 1))
    admin = sandbox.aws_for("admin").client("s3")
    admin.put_object(Bucket=DATA_BUCKET, Key="private/alice/big.bin", Body=b"theirs")
    try:
        failed = await stream("upload", bucket=DATA_BUCKET, prefix="private/alice/", path="big.bin")
    finally:
        admin.delete_object(Bucket=DATA_BUCKET, Key="private/alice/big.bin")
    assert [event["event"] for event in downloaded][-1] == "done"
    assert [event["event"] for event in failed] == ["progress", "progress", "error"]
    assert failed[-1]["status"] == 409
    shown = await get_json(jp_fetch, "object", bucket=READABLE_BUCKET, key="reference/countries.csv")
    checker = Checker(_declarations())
    problems = [p for event in downloaded + failed for p in checker.check(event, "TransferEvent")]
    problems += checker.check(shown, "IObjectContent")
    assert problems == []
    assert checker.never_sent("TransferEvent", "IObjectContent") == []
