"""What a requester sees of their own request, what the admin's terminal shows, and `${` in a prefix.

A requester reads their request's status, history and one line per layer; never the partner's bucket policy,
MLSpace's boundary, the owner's command, a diff, or the statements (and Sids) of other requests that share
those documents. An admin still gets everything.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.views import for_requester, summaries, view_for
from mlspace_s3magic.cli import main
from mlspace_s3magic.core.access import (
    AccessRequest,
    AuditEntry,
    LayerState,
    NewAccessRequest,
    RequestStatus,
    SharedBucket,
)
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME

from .conftest import Endpoint

BUCKET = "BucketToBeShared"
READABLE = "partner-shared-readonly"
PARTNER_SID = "PartnerAnalyticsTeamOnly"
PARTNER_PRINCIPAL = "arn:aws:iam::333333333333:role/analytics"
# Words only the documents hold: IAM's and S3's policy grammar, MLSpace's boundary, the owner's command.
DOCUMENT_WORDS = ('"Statement"', '"Principal"', "bedrock:", "put-bucket-policy", "@@", "2012-10-17")


def _new(
    prefix: str, reason: str = "iris study for the demo project", bucket: str = BUCKET, **extra: object
) -> NewAccessRequest:
    return NewAccessRequest.model_validate(
        {
            "bucket": bucket,
            "prefix": prefix,
            "access": "read",
            "reason": reason,
            "idempotency_key": uuid.uuid4().hex,
            **extra,
        }
    )


def _partner_policy(endpoint: Endpoint) -> None:
    """The partner's own statement for another account: alice's plan merges hers into this document."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": PARTNER_SID,
                "Effect": "Allow",
                "Principal": {"AWS": PARTNER_PRINCIPAL},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/analytics/*",
            }
        ],
    }
    endpoint.state.aws_for("owner").client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))


def _granted(endpoint: Endpoint, who: str, prefix: str, bucket: str = BUCKET) -> AccessRequest:
    """A request of ``who`` approved and applied by the admin."""
    filed = endpoint.client(who).submit(_new(prefix, bucket=bucket))
    assert filed is not None
    admin = endpoint.client("admin")
    admin.act(filed.id, "approve")
    return admin.act(filed.id, "apply")


def _raw(client: AdminClient, method: str, path: str) -> tuple[str, Any]:
    """The endpoint's answer as sent, before the client's models read it."""
    data = client._call(method, path)
    return json.dumps(data), data


def _assert_nothing_of_others(text: str, others: AccessRequest) -> None:
    assert PARTNER_SID not in text and PARTNER_PRINCIPAL not in text
    assert others.sid_stem not in text and others.id not in text
    for word in DOCUMENT_WORDS:
        assert word not in text, word
    assert '"current"' not in text and '"diff"' not in text and '"command"' not in text


def test_a_requester_sees_one_line_per_layer_and_no_document(endpoint: Endpoint) -> None:
    _partner_policy(endpoint)
    # bob's statements go into the project's grant policy, where alice's plan adds hers
    bobs = _granted(endpoint, "bob@demo", "", READABLE)
    assert bobs.status is RequestStatus.APPLIED, bobs.result
    mine = _granted(endpoint, "alice@demo", "datasets/")
    assert mine.status is RequestStatus.APPLIED, mine.result

    # The admin's view is whole: the partner's policy, bob's statements, MLSpace's boundary are in it.
    full = json.dumps(endpoint.client("admin").show(mine.id).model_dump(mode="json"))
    assert PARTNER_SID in full and bobs.sid_stem in full and "bedrock:" in full

    alice = endpoint.client("alice@demo")
    text, shown = _raw(alice, "GET", f"/v1/requests/{mine.id}")
    _assert_nothing_of_others(text, bobs)
    request = shown["request"]
    assert request["plan"] is None and request["result"] is None
    assert request["status"] == "applied" and request["reason"] == "iris study for the demo project"
    lines = {line["layer"]: line for line in request["summary"]}
    assert set(lines) == {"bucket-policy", "boundary", "identity"}
    assert {line["state"] for line in lines.values()} == {LayerState.WRITTEN.value}
    assert lines["bucket-policy"]["target"] == "the bucket's policy"  # the partner's account: not named
    assert lines["boundary"]["target"] == f"the permissions boundary {BOUNDARY_POLICY_NAME}"
    assert lines["identity"]["target"] == "the grant policy MLSpace-s3access-project-demo"
    assert all(f"s3://{BUCKET}/datasets/" in line["allows"] for line in lines.values())
    actions = [entry["action"] for entry in shown["history"]]
    assert actions[0] == "submit" and "approve" in actions and actions[-1] == "apply"
    assert all(
        set(entry["detail"]) <= {"bucket", "prefix", "access", "verified", "rolled_back", "problems", "error"}
        for entry in shown["history"]
    )

    listed_text, listed = _raw(alice, "GET", "/v1/requests")
    _assert_nothing_of_others(listed_text, bobs)
    (only,) = listed
    assert [line["state"] for line in only["request"]["summary"]] == ["written"] * 3

    # The notebook's rendering shows those lines, and its client still reads the answer.
    (parsed,) = alice.requests()
    assert parsed.summary is not None and len(parsed.summary) == 3
    assert (
        "the bucket's policy: allows your role to read and list s3://BucketToBeShared/datasets/ (written)"
        in [line.line() for line in parsed.summary]
    )


def test_a_bucket_policy_left_to_the_owner_is_awaiting_the_owner_without_the_owners_command(
    endpoint: Endpoint,
) -> None:
    admin = endpoint.client("admin")
    admin.put_bucket(SharedBucket(bucket=BUCKET, owner_account="222222222222"))  # no owner role
    _partner_policy(endpoint)
    bobs = _granted(endpoint, "bob@demo", "", READABLE)
    mine = _granted(endpoint, "alice@demo", "datasets/")
    assert mine.status is RequestStatus.AWAITING_OWNER
    assert "put-bucket-policy" in json.dumps(admin.show(mine.id).model_dump(mode="json"))

    text, shown = _raw(endpoint.client("alice@demo"), "GET", f"/v1/requests/{mine.id}")
    _assert_nothing_of_others(text, bobs)
    states = {line["layer"]: line["state"] for line in shown["request"]["summary"]}
    assert states == {"bucket-policy": "awaiting the owner", "boundary": "written", "identity": "written"}


def test_an_approved_plan_is_planned_and_a_pending_request_has_no_lines(endpoint: Endpoint) -> None:
    alice = endpoint.client("alice@demo")
    filed = alice.submit(_new("datasets/"))
    assert filed is not None
    assert alice.show(filed.id).request.summary == []
    endpoint.client("admin").act(filed.id, "approve")
    (shown,) = alice.requests()
    assert shown.summary is not None
    assert {line.state for line in shown.summary} == {LayerState.PLANNED}
    assert shown.plan is None and alice.show(filed.id).request.plan is None


def test_the_answers_to_submit_and_cancel_are_the_requesters_view(endpoint: Endpoint) -> None:
    _partner_policy(endpoint)
    alice = endpoint.client("alice@demo")
    new = _new("datasets/")
    filed = alice.submit(new)
    assert filed is not None
    admin = endpoint.client("admin")
    admin.act(filed.id, "approve")
    again = alice._call("POST", "/v1/requests", json=new.model_dump(mode="json"))  # the same key, resent
    assert again["request"]["plan"] is None and PARTNER_SID not in json.dumps(again)
    cancelled = alice._call("POST", f"/v1/requests/{filed.id}/cancel")
    assert cancelled["request"]["plan"] is None and PARTNER_SID not in json.dumps(cancelled)


def test_a_policy_variable_in_a_prefix_reaches_the_plan_escaped(endpoint: Endpoint) -> None:
    """``${aws:username}/`` is a folder of that literal name, never alice's own name filled in by IAM."""
    filed = endpoint.client("alice@demo").submit(_new("${aws:username}/"))
    assert filed is not None and filed.prefix == "${aws:username}/"
    plan = endpoint.client("admin").show(filed.id).request.plan
    assert plan is not None
    ours = [
        statement
        for change in plan["changes"]
        if change["layer"] in ("identity", "bucket-policy")
        for statement in change["statements"]
    ]
    assert ours
    text = json.dumps(ours)
    assert "${aws:username}" not in text.replace("${$}{aws:username}", "")
    objects = [s for s in ours if s["Sid"].endswith("Objects")]
    listing = [s for s in ours if s["Sid"].endswith("List")]
    assert objects and listing
    for statement in objects:
        assert statement["Resource"] == [f"arn:aws:s3:::{BUCKET}/${{$}}{{aws:username}}/*"]
    for statement in listing:
        assert statement["Condition"]["StringLike"]["s3:prefix"] == ["${$}{aws:username}/*"]


ESCAPES = "\x1b[2K\x1b[1A\r\x9b2K\u202e\u061c"


def test_escape_sequences_in_a_reason_are_inert_in_the_admins_terminal(
    endpoint: Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Filed through the API (cleaned on input) and stored by an older client (not cleaned): either way
    ``admin requests``, ``show``, ``approve`` and ``buckets``, as text or JSON, print no control character."""
    alice = endpoint.client("alice@demo")
    filed = alice.submit(_new("datasets/", reason=f"iris{ESCAPES} read of datasets/"))
    assert filed is not None and "\x1b" not in filed.reason and "\u061c" not in filed.reason
    forged = NewAccessRequest.model_construct(
        bucket=BUCKET,
        prefix=f"logs{ESCAPES}/",
        access=AccessLevel.READ,
        reason=f"x{ESCAPES}req-0001  pending  read  alice  s3://{BUCKET}/datasets/",
        days=None,
        idempotency_key=uuid.uuid4().hex,
    )
    requester = endpoint.service.store.get(filed.id).requester
    stored, _ = endpoint.service.store.create_request(forged, requester, now=filed.created_at)
    token = tmp_path / "admin.token"
    token.write_text(endpoint.token)
    admin = ["--url", endpoint.url, "--token-file", str(token)]
    runs = [
        ["admin", "requests", *admin],
        ["admin", "requests", "--json", *admin],
        ["admin", "show", filed.id, *admin],
        ["admin", "show", stored.id, *admin],
        ["admin", "show", stored.id, "--json", *admin],
        ["admin", "approve", stored.id, *admin],
        ["admin", "approve", filed.id, "--json", *admin],
        ["admin", "audit", *admin],
        ["admin", "buckets", *admin],
    ]
    for run in runs:
        assert main(run) == 0, run
        out = capsys.readouterr().out
        assert out.strip(), run
        for character in ("\x1b", "\r", "\x9b", "\u202e", "\u061c"):
            assert character not in out, (run, character)
        if "--json" in run:
            json.loads(out)  # still valid JSON: the characters are escaped, not mangled
        elif run[1] in ("requests", "show"):
            assert "\\x1b[2K" in out or stored.id not in out


def test_an_owner_role_arn_with_control_characters_and_such_bucket_names_are_refused() -> None:
    with pytest.raises(ValueError, match="owner_role_arn"):
        SharedBucket(bucket=BUCKET, owner_role_arn="arn:aws:iam::222222222222:role/x\x1b[2K")
    with pytest.raises(ValueError, match="owner_role_arn"):
        SharedBucket(bucket=BUCKET, owner_role_arn="arn:aws:iam::222222222222:role/${aws:username}")
    ok = SharedBucket(bucket=BUCKET, owner_role_arn="arn:aws:iam::222222222222:role/team/S3Editor_1+=,.@-")
    assert ok.owner_role_arn is not None
    for bucket in ("data${aws:username}", f"data{ESCAPES}"):  # S3 names hold neither; refused, not escaped
        with pytest.raises(ValueError, match="not a valid S3 bucket name"):
            _new("", bucket=bucket)


# -- the requester's view, from stored records alone ------------------------------------------------------

MLSPACE, PARTNER = "111111111111", "222222222222"
GRANT = f"arn:aws:iam::{MLSPACE}:policy/MLSpace-s3access-project-demo"
BOUNDARY = f"arn:aws:iam::{MLSPACE}:policy/{BOUNDARY_POLICY_NAME}"


def _record(status: RequestStatus, result: dict[str, Any] | None) -> AccessRequest:
    def change(layer: str, target: str, account: str) -> dict[str, Any]:
        return {"layer": layer, "target": target, "account": account, "current": {"Sid": PARTNER_SID}}

    return AccessRequest.model_validate(
        {
            "id": "req1",
            "requester": {"arn": f"arn:aws:sts::{MLSPACE}:assumed-role/R/SageMaker", "account": MLSPACE},
            "bucket": BUCKET,
            "prefix": "datasets/",
            "access": "read-write",
            "reason": "iris",
            "days": None,
            "idempotency_key": "key-req1",
            "status": status,
            "created_at": "2026-12-01T00:00:00Z",
            "updated_at": "2026-12-01T00:00:00Z",
            "plan": {
                "changes": [
                    change("bucket-policy", BUCKET, PARTNER),
                    change("kms", f"arn:aws:kms:us-east-1:{PARTNER}:key/k", PARTNER),
                    change("boundary", BOUNDARY, MLSPACE),
                    change("identity", GRANT, MLSPACE),
                ]
            },
            "result": result,
        }
    )


def _states(request: AccessRequest) -> list[str]:
    return [line.state.value for line in summaries(request)]


def _steps(*outcomes: tuple[str, str, str]) -> list[dict[str, str]]:
    return [
        {"layer": layer, "target": target, "outcome": outcome, "detail": "cat > policy.json"}
        for layer, target, outcome in outcomes
    ]


APPLIED_STEPS = _steps(
    ("bucket-policy", BUCKET, "awaiting-owner"),
    ("kms", f"arn:aws:kms:us-east-1:{PARTNER}:key/k", "written"),
    ("boundary", BOUNDARY, "written"),
    ("identity", GRANT, "created"),
    ("identity", GRANT, "attached"),
)
REMOVED_STEPS = _steps(
    ("identity", GRANT, "deleted"),
    ("boundary", BOUNDARY, "boundary-kept"),
    ("kms", f"arn:aws:kms:us-east-1:{PARTNER}:key/k", "removed"),
    ("bucket-policy", BUCKET, "awaiting-owner"),
)


def test_each_layers_state_follows_the_stored_apply_revoke_and_rollback() -> None:
    assert _states(_record(RequestStatus.APPROVED, None)) == ["planned"] * 4
    assert _states(_record(RequestStatus.CANCELLED, None)) == ["not written"] * 4
    apply_result = {"status": "awaiting-owner", "steps": APPLIED_STEPS, "verification": {}}
    assert _states(_record(RequestStatus.AWAITING_OWNER, apply_result)) == [
        "awaiting the owner",
        "written",
        "written",
        "written",
    ]
    revoked = {"steps": REMOVED_STEPS, "verification": None}  # a revoke's result has no status
    assert _states(_record(RequestStatus.REVOKED, revoked)) == [
        "awaiting the owner's removal",
        "removed",
        "written",  # the boundary is only a ceiling, kept raised when it holds five versions
        "removed",
    ]
    rolled_back = {**apply_result, "status": "failed", "rollback": {"steps": REMOVED_STEPS}}
    assert _states(_record(RequestStatus.FAILED, rolled_back)) == _states(
        _record(RequestStatus.REVOKED, revoked)
    )
    untouched = {"rollback": {"steps": _steps(("identity", GRANT, "nothing-to-remove"))}}
    assert _states(_record(RequestStatus.FAILED, untouched)) == ["not written"] * 4


def test_only_the_requesters_own_documents_are_named_and_no_detail_quotes_a_document() -> None:
    request = _record(RequestStatus.AWAITING_OWNER, {"status": "awaiting-owner", "steps": APPLIED_STEPS})
    lines = [line.line() for line in summaries(request)]
    assert lines == [
        "the bucket's policy: allows your role to read, write and list s3://BucketToBeShared/datasets/ "
        "(awaiting the owner)",
        "the key's policy: lets your role decrypt and encrypt with the key of "
        "s3://BucketToBeShared/datasets/ (written)",
        f"the permissions boundary {BOUNDARY_POLICY_NAME}: lets read, write and list "
        "s3://BucketToBeShared/datasets/ pass MLSpace's ceiling (the grant policy still decides) (written)",
        "the grant policy MLSpace-s3access-project-demo: allows your role to read, write and list "
        "s3://BucketToBeShared/datasets/ (written)",
    ]
    history = [
        AuditEntry(
            seq=1,
            at=request.created_at,
            actor="a",
            action="submit",
            detail={"bucket": BUCKET, "prefix": "datasets/", "access": "read-write"},
        ),
        AuditEntry(
            seq=2,
            at=request.created_at,
            actor="admin",
            action="approve",
            detail={"problems": [f"The bucket-policy ({PARTNER_SID}) could not be read"]},
        ),
        AuditEntry(
            seq=3,
            at=request.created_at,
            actor="admin",
            action="start-apply",
            detail={"sid_stem": "S3AccessReqreq1", "writes": [{"layer": "kms", "target": GRANT}]},
        ),
        AuditEntry(
            seq=4,
            at=request.created_at,
            actor="admin",
            action="apply",
            detail={
                "error": f"The bucket-policy document ({BUCKET}) changed: {PARTNER_SID}",
                "verified": False,
                "rolled_back": True,
                "rollback": {"steps": []},
            },
        ),
    ]
    view = for_requester(request, history)
    assert view.request.plan is None and view.request.result is None
    details = [entry.detail for entry in view.history]
    assert details[0] == {"bucket": BUCKET, "prefix": "datasets/", "access": "read-write"}
    assert details[1] == {"problems": 1} and details[2] == {}
    assert details[3]["verified"] is False and details[3]["rolled_back"] is True
    assert PARTNER_SID not in view.model_dump_json() and GRANT not in json.dumps(details)
    assert view_for(request, history, admin=True).request == request  # the admin's, whole


def test_a_requesters_diagnosis_names_no_statement_and_quotes_no_document(endpoint: Endpoint) -> None:
    """The partner's Deny shows as an explicit Deny in the bucket policy, never by its Sid or text."""
    deny = {
        "Sid": "PartnerNoUploadsFromOutside",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
        "Condition": {"StringNotEquals": {"aws:PrincipalAccount": "222222222222"}},
    }
    policy = {"Version": "2012-10-17", "Statement": [deny]}
    endpoint.state.aws_for("owner").client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))
    alice = endpoint.client("alice@demo")
    diagnosis = alice.diagnose(f"{BUCKET}/datasets/")
    text = json.dumps(diagnosis)
    assert diagnosis["detailed"] is False
    assert "PartnerNoUploadsFromOutside" not in text and "aws:PrincipalAccount" not in text
    for word in DOCUMENT_WORDS:
        assert word not in text, word
    write = diagnosis["capabilities"]["write"]
    assert write["explicit_deny"] is True and "bucket-policy" in write["blocked_by"]
