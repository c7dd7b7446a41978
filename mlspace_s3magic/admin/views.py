"""What each caller may see of a request: an admin everything, a requester their own request's story.

A request's stored ``plan`` and ``result`` hold documents of other accounts (the partner's bucket policy and
key policy, whole, in ``current``, ``new``, the diff and the owner's command), MLSpace's whole boundary, and
statements of other requests merged into the same documents. A requester sees none of that: per layer one
:class:`LayerSummary` (which document, named only when it is in the requester's own account; what the change
allows; whether it is written), and a history whose details are reduced to what they said themselves and
the admin's verdicts (an error or a problem quotes documents, so only its existence is told).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlspace_s3magic.admin.store.changes import AuditAction
from mlspace_s3magic.core.access import (
    AccessRequest,
    AuditEntry,
    LayerState,
    LayerSummary,
    RequestStatus,
    RequestView,
)
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.policy.arns import resource_name

# Step outcomes (admin/apply.py) by what they say of the layer's statements.
WRITE_OUTCOMES = frozenset({"written", "created", "already-applied", "boundary-kept"})
REMOVE_OUTCOMES = frozenset({"removed", "deleted", "detached"})
NOTHING_TO_REMOVE = "nothing-to-remove"
AWAITING_OWNER = "awaiting-owner"
# The statuses after which nothing more is written for a request.
ENDED = frozenset(
    {
        RequestStatus.DENIED,
        RequestStatus.CANCELLED,
        RequestStatus.FAILED,
        RequestStatus.REVOKED,
        RequestStatus.EXPIRED,
    }
)
# History details a requester may read: what they asked for themselves, and verdicts without text.
OWN_WORDS = ("bucket", "prefix", "access")
VERDICTS = ("verified", "rolled_back")
WITHHELD = "withheld from requesters: the admin's view (s3access admin show) has it"


def view_for(
    request: AccessRequest, history: Sequence[AuditEntry], *, admin: bool, with_history: bool = True
) -> RequestView:
    """The view a caller gets: an admin's has everything, anyone else's is :func:`for_requester`."""
    if admin:
        return RequestView(request=request, history=list(history) if with_history else [])
    return for_requester(request, history if with_history else ())


def for_requester(request: AccessRequest, history: Iterable[AuditEntry]) -> RequestView:
    """The requester's own request: its record without ``plan`` and ``result``, one summary per layer,
    and its history with reduced details."""
    own = request.model_copy(update={"plan": None, "result": None, "summary": summaries(request)})
    return RequestView(request=own, history=requester_history(history))


def requester_history(history: Iterable[AuditEntry]) -> list[AuditEntry]:
    """Who did what when, and the statuses; of each detail only the requester's own words, a denial's
    reason (written for them), yes/no verdicts, a count of problems, and that an error happened (its text
    quotes documents and targets)."""
    return [entry.model_copy(update={"detail": _reduced(entry)}) for entry in history]


def _reduced(entry: AuditEntry) -> dict[str, Any]:
    detail = entry.detail
    kept: dict[str, Any] = {key: detail[key] for key in OWN_WORDS if isinstance(detail.get(key), str)}
    if entry.action == AuditAction.DENY and isinstance(detail.get("reason"), str):
        kept["reason"] = detail["reason"]
    kept |= {key: detail[key] for key in VERDICTS if key in detail and detail[key] in (True, False, None)}
    if isinstance(detail.get("problems"), list):
        kept["problems"] = len(detail["problems"])
    if "error" in detail:
        kept["error"] = WITHHELD
    return kept


def summaries(request: AccessRequest) -> list[LayerSummary]:
    """One line per layer the request's plan changes, in the plan's order, with where each stands now."""
    changes = (request.plan or {}).get("changes", [])
    steps = _steps(request.result)
    return [
        LayerSummary(
            layer=str(change.get("layer", "")),
            target=_target(change, request),
            allows=_allows(str(change.get("layer", "")), request),
            state=_state(request, steps.get((change.get("layer"), change.get("target")), [])),
        )
        for change in changes
        if isinstance(change, Mapping)
    ]


def _steps(result: Mapping[str, Any] | None) -> dict[tuple[Any, Any], list[tuple[str, bool]]]:
    """Per (layer, target), the outcomes in the order they happened, each marked whether it is a removal
    pass's: a revoke's result (no ``status``), or the ``rollback`` an apply or a cancel recorded."""
    passes: list[tuple[Mapping[str, Any], bool]] = []
    if isinstance(result, Mapping):
        passes.append((result, "status" not in result))
        if isinstance(result.get("rollback"), Mapping):
            passes.append((result["rollback"], True))
    found: dict[tuple[Any, Any], list[tuple[str, bool]]] = {}
    for outcome, removing in passes:
        for step in outcome.get("steps", []) if isinstance(outcome.get("steps"), list) else []:
            if isinstance(step, Mapping):
                key = (step.get("layer"), step.get("target"))
                found.setdefault(key, []).append((str(step.get("outcome", "")), removing))
    return found


def _state(request: AccessRequest, outcomes: list[tuple[str, bool]]) -> LayerState:
    """The last outcome that says something about the layer's statements decides."""
    state: LayerState | None = None
    for outcome, removing in outcomes:
        if outcome in WRITE_OUTCOMES:
            state = LayerState.WRITTEN
        elif outcome in REMOVE_OUTCOMES:
            state = LayerState.REMOVED
        elif outcome == NOTHING_TO_REMOVE:
            state = LayerState.REMOVED if state is not None else LayerState.NOT_WRITTEN
        elif outcome == AWAITING_OWNER:
            state = LayerState.AWAITING_OWNER_REMOVAL if removing else LayerState.AWAITING_OWNER
    if state is not None:
        return state
    return LayerState.NOT_WRITTEN if request.status in ENDED else LayerState.PLANNED


def _target(change: Mapping[str, Any], request: AccessRequest) -> str:
    """The document, by name only when it is in the requester's own account."""
    layer, target = change.get("layer"), str(change.get("target", ""))
    ours = change.get("account") == request.requester.account
    name = resource_name(target)
    if layer == "identity":
        return f"the grant policy {name}" if ours else "the grant policy"
    if layer == "boundary":
        return f"the permissions boundary {name}" if ours else "the permissions boundary"
    if layer == "bucket-policy":
        return f"the bucket policy of {target}" if ours else "the bucket's policy"
    if layer == "kms":
        return f"the key policy of {target}" if ours else "the key's policy"
    return f"the {layer} layer"


def _allows(layer: str, request: AccessRequest) -> str:
    """What the change lets the requester do: the request itself, in words (the statements stay hidden:
    a bucket or key policy holds the partner's other grants, the boundary MLSpace's)."""
    where = f"s3://{request.bucket}/{request.prefix}"
    if layer == "kms":
        use = "decrypt and encrypt" if request.access == AccessLevel.READ_WRITE else "decrypt"
        return f"lets your role {use} with the key of {where}"
    doing = {
        AccessLevel.LIST: "list",
        AccessLevel.READ: "read and list",
        AccessLevel.READ_WRITE: "read, write and list",
    }[AccessLevel(request.access)]
    if layer == "boundary":
        return f"lets {doing} {where} pass MLSpace's ceiling (the grant policy still decides)"
    return f"allows your role to {doing} {where}"


# -- the admin's review, as data: what `s3access admin show` prints, for a user interface to draw ----------
VERDICT_WORDS = {True: "allowed", False: "denied", None: "unknown"}


def admin_review(view: RequestView) -> dict[str, Any]:
    """An admin's view of a request as JSON a panel draws without parsing text: the request, its plan per
    layer with the diff split into added, removed and kept lines, and the last verification (apply's or
    revoke's) per capability."""
    request = view.request
    plan = request.plan or {}
    verification = (request.result or {}).get("verification")
    return {
        "id": request.id,
        "status": request.status.value,
        "access": request.access.value,
        "bucket": request.bucket,
        "prefix": request.prefix,
        "reason": request.reason,
        "decision_reason": request.decision_reason,
        "days": request.days,
        "requester": request.requester.user or request.requester.arn,
        "requester_arn": request.requester.arn,
        "created_at": request.created_at.isoformat(),
        "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        "problems": [str(problem) for problem in plan.get("problems", [])],
        "notes": [str(note) for note in plan.get("notes", [])],
        "changes": [_change(change) for change in plan.get("changes", []) if isinstance(change, Mapping)],
        "verification": verification_data(verification) if isinstance(verification, Mapping) else None,
    }


def _change(change: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "layer": str(change.get("layer", "")),
        "target": str(change.get("target", "")),
        "account": str(change.get("account", "")),
        "applied_by": str(change.get("applied_by", "")),
        "warnings": [str(warning) for warning in change.get("warnings", [])],
        "diff": [_diff_line(line) for line in str(change.get("diff", "")).splitlines()],
        "command": str(change["command"])
        if change.get("applied_by") == "owner" and change.get("command")
        else None,
    }


def _diff_line(line: str) -> dict[str, str]:
    """A unified diff's line by what it does: ``header`` for ``---``/``+++``/``@@``, else added, removed or
    kept; the text without its marker column."""
    if line.startswith(("---", "+++", "@@")):
        return {"kind": "header", "text": line}
    kind = {"+": "added", "-": "removed"}.get(line[:1], "kept")
    return {"kind": kind, "text": line[1:] if line[:1] in "+- " and line else line}


def verification_data(verification: Mapping[str, Any]) -> dict[str, Any]:
    """What a verification found, with its verdicts in words: overall, and per capability the layers and
    reasons that block one not allowed."""
    checks = [check for check in verification.get("capabilities", []) if isinstance(check, Mapping)]
    return {
        "principal": str(verification.get("principal", "")),
        "verdict": VERDICT_WORDS.get(verification.get("allowed"), "unknown"),
        "capabilities": [
            {
                "capability": str(check.get("capability", "")),
                "verdict": VERDICT_WORDS.get(check.get("allowed"), "unknown"),
                "blocked_by": [str(layer) for layer in check.get("blocked_by", [])],
                "reasons": [] if check.get("allowed") is True else [str(r) for r in check.get("reasons", [])],
            }
            for check in checks
        ],
        "notes": [str(note) for note in verification.get("notes", [])],
    }
