"""``check``: can the caller list, read and write a bucket; if not, which layer blocks it, and the fix.

Probes are the truth about today. The evaluator explains them, over every layer the caller could read, and
predicts what probes must not test (writes). A layer the caller cannot read is handled honestly: the request
is evaluated once assuming every unreadable layer allows and once assuming each denies; layers that block
even under the first assumption are proven, and unreadable layers whose denial would flip the decision are
reported as unverified suspects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from html import escape
from typing import Any

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.identity import Identity, whoami
from mlspace_s3magic.core.layers import (
    BucketLayers,
    CallerLayers,
    FetchedPolicy,
    LayerFetcher,
    PolicyOrGap,
    Unreadable,
)
from mlspace_s3magic.core.mlspace import data_bucket_name
from mlspace_s3magic.core.names import BucketRef, s3_via_service
from mlspace_s3magic.core.policy import (
    Decision,
    EvaluationResult,
    Layer,
    Policy,
    PolicyLayers,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from mlspace_s3magic.core.probes import Outcome, Probe, run_probes
from mlspace_s3magic.core.remedy import UNREADABLE, AccessLevel, Fix, fixes_html, plan_fixes, render_fixes
from mlspace_s3magic.core.render import Rendered

CAPABILITIES = ("list", "read", "write")
S3_ACTIONS = {"list": "s3:ListBucket", "read": "s3:GetObject", "write": "s3:PutObject"}
KMS_ACTIONS = {"read": "kms:Decrypt", "write": "kms:GenerateDataKey"}
# Layers a notebook never sees; a denial nothing visible explains is theirs (or an ACL's) to answer for.
NOT_VISIBLE = ("scp", "rcp", "endpoint", "session")
UNKNOWN_OWNER = "an unknown account"
EXAMPLE_KEY = "example-object"
POOL_SIZE = 32  # more than the tasks that wait on others (probes, layer fan-outs), so none can starve
_ALLOW_ALL: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_GRANTS_NOTHING: dict[str, Any] = {"Version": "2012-10-17", "Statement": []}


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class S3AccessDenied(S3MagicError):
    """Raised when asked to (``--strict``, ``S3Access.raise_on_denied``), so an unattended run stops."""


@dataclass(frozen=True)
class Evaluation:
    """Our evaluator's view of one capability over the layers we could read."""

    decision: str  # "allowed", "implicit_deny", "explicit_deny" or "undecided"
    blocked_by: tuple[str, ...] = ()
    suspects: tuple[str, ...] = ()
    statements: tuple[dict[str, str], ...] = ()
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "blocked_by": list(self.blocked_by),
            "unverified": list(self.suspects),
            "statements": list(self.statements),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class CapabilityReport:
    capability: str
    verdict: Verdict
    blocked_by: tuple[str, ...]
    probe: Probe
    evaluation: Evaluation
    disagreement: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "blocked_by": list(self.blocked_by),
            "probe": self.probe.to_dict(),
            "evaluation": self.evaluation.to_dict(),
            "disagreement": self.disagreement,
        }


@dataclass(frozen=True, repr=False)
class AccessReport(Rendered):
    ref: BucketRef
    principal: str
    capabilities: Mapping[str, CapabilityReport]
    unreadable_layers: tuple[Unreadable, ...]
    fixes: tuple[Fix, ...]
    notes: tuple[str, ...] = field(default=())

    def verdict(self, capability: str) -> Verdict:
        return self.capabilities[capability].verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.ref.bucket,
            "prefix": self.ref.prefix,
            "principal": self.principal,
            # Who read the layers: this notebook (the admin endpoint's diagnosis is not asked yet).
            "diagnosed_by": "notebook",
            "capabilities": {name: report.to_dict() for name, report in self.capabilities.items()},
            "unreadable_layers": [
                {"layer": gap.layer, "reason": gap.reason} for gap in self.unreadable_layers
            ],
            "not_visible_layers": list(NOT_VISIBLE),
            "fixes": [fix.to_dict() for fix in self.fixes],
            "notes": list(self.notes),
        }

    def _rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        for name, report in self.capabilities.items():
            unverified = [layer for layer in report.blocked_by if layer in report.evaluation.suspects]
            proven = [layer for layer in report.blocked_by if layer not in unverified]
            blocked = ", ".join(proven) or "-"
            if unverified and not proven:
                blocked = f"{', '.join(unverified)} (unverified: could not read them)"
            elif unverified:
                blocked += f"; unverified: {', '.join(unverified)} (could not read)"
            rows.append((name, report.verdict.value, blocked, report.probe.detail))
        return rows

    def __str__(self) -> str:
        width = max(len(row[2]) for row in self._rows())
        lines = [f"S3 access to {self.ref} as {self.principal}", ""]
        lines.append(f"{'capability':<10}  {'verdict':<8}  {'blocked by':<{width}}  evidence")
        lines += [f"{c:<10}  {v:<8}  {b:<{width}}  {e}" for c, v, b, e in self._rows()]
        disagreements = [r.disagreement for r in self.capabilities.values() if r.disagreement]
        extra = [
            *(f"Could not read the {gap.layer} layer: {gap.reason}." for gap in self.unreadable_layers),
            *disagreements,
            *self.notes,
        ]
        if extra:
            lines += ["", "Notes:", *(f"  - {note}" for note in extra)]
        if self.fixes:
            lines += ["", render_fixes(self.fixes)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colours = {"allowed": "#1a7f37", "denied": "#cf222e", "unknown": "#9a6700"}
        body = "".join(
            f"<tr><td>{escape(c)}</td><td style='color:{colours[v]};font-weight:bold'>{escape(v)}</td>"
            f"<td>{escape(b)}</td><td>{escape(e)}</td></tr>"
            for c, v, b, e in self._rows()
        )
        notes = [
            *(f"Could not read the {gap.layer} layer: {gap.reason}." for gap in self.unreadable_layers),
            *(r.disagreement for r in self.capabilities.values() if r.disagreement),
            *self.notes,
        ]
        notes_html = "<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes if n) + "</ul>" if notes else ""
        fixes = (
            f"<details><summary>{len(self.fixes)} fix(es), one per blocking layer</summary>"
            f"{fixes_html(self.fixes)}</details>"
            if self.fixes
            else ""
        )
        return (
            f"<div><strong>S3 access to {escape(str(self.ref))}</strong> "
            f"as <code>{escape(self.principal)}</code>"
            "<table><tr><th>capability</th><th>verdict</th><th>blocked by</th><th>evidence</th></tr>"
            f"{body}</table>{notes_html}{fixes}</div>"
        )


@dataclass(frozen=True)
class KnownLayers:
    """Parsed documents for the evaluator; ``None`` in a field means the layer could not be read."""

    identity: tuple[Policy, ...] | None
    boundary: Policy | None
    boundary_readable: bool
    resource: Policy | None
    resource_readable: bool


def _parse(fetched: FetchedPolicy, layer: Layer) -> Policy:
    return parse_policy(fetched.document, layer, fetched.label)


def known_layers(
    caller: CallerLayers, resource: PolicyOrGap, resource_label: str
) -> tuple[KnownLayers, list[str]]:
    notes: list[str] = []

    def parsed(fetched: PolicyOrGap, layer: Layer) -> tuple[Policy | None, bool]:
        if isinstance(fetched, Unreadable):
            return None, False
        if fetched is None:
            return None, True
        try:
            return _parse(fetched, layer), True
        except S3MagicError as error:
            notes.append(
                f"The {resource_label if layer is Layer.RESOURCE else layer.value} policy could not "
                f"be evaluated: {error}"
            )
            return None, False

    identity: tuple[Policy, ...] | None = None
    if not isinstance(caller.identity_policies, Unreadable):
        try:
            identity = tuple(_parse(p, Layer.IDENTITY) for p in caller.identity_policies)
        except S3MagicError as error:
            notes.append(f"The identity policies could not be evaluated: {error}")
    boundary, boundary_ok = parsed(caller.boundary, Layer.BOUNDARY)
    policy, resource_ok = parsed(resource, Layer.RESOURCE)
    return KnownLayers(identity, boundary, boundary_ok, policy, resource_ok), notes


def evaluate_with_gaps(request: Request, known: KnownLayers, resource_layer_name: str) -> Evaluation:
    """Decide with unreadable layers assumed to allow, then each assumed to deny (see the module doc)."""
    unknown = [
        name
        for name, readable in (
            ("identity", known.identity is not None),
            ("boundary", known.boundary_readable),
            (resource_layer_name, known.resource_readable),
        )
        if not readable
    ]
    caller_arn = request.principal.arn or "*"
    open_resource = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller_arn}, "Action": "*", "Resource": "*"}],
    }

    def assumed(name: str, layer: Layer, allowing: dict[str, Any], deny: set[str]) -> Policy | None:
        """A stand-in for an unread layer: everything allowed, or nothing (a boundary that grants nothing)."""
        if name not in deny:
            return parse_policy(allowing, layer, f"(unread {name}: assumed to allow)")
        if layer is Layer.BOUNDARY:
            return parse_policy(_GRANTS_NOTHING, layer, f"(unread {name}: assumed to deny)")
        return None

    def layers(denying: Iterable[str], lifted: Iterable[str] = ()) -> PolicyLayers:
        """Unread layers assumed to allow but ``denying``; ``lifted`` readable layers as if fixed."""
        deny, lift = set(denying), set(lifted)
        if "identity" in lift:
            identity: tuple[Policy, ...] = (
                parse_policy(_ALLOW_ALL, Layer.IDENTITY, "(identity, as if fixed)"),
            )
        elif known.identity is not None:
            identity = known.identity
        else:
            stand_in = assumed("identity", Layer.IDENTITY, _ALLOW_ALL, deny)
            identity = (stand_in,) if stand_in else ()
        if "boundary" in lift:
            boundary = None
        elif known.boundary_readable:
            boundary = known.boundary
        else:
            boundary = assumed("boundary", Layer.BOUNDARY, _ALLOW_ALL, deny)
        if resource_layer_name in lift:
            resource: Policy | None = parse_policy(open_resource, Layer.RESOURCE, "(as if fixed)")
        elif known.resource_readable:
            resource = known.resource
        else:
            resource = assumed(resource_layer_name, Layer.RESOURCE, open_resource, deny)
        return PolicyLayers(identity=identity, boundary=boundary, resource=resource)

    optimistic = evaluate(request, layers(()))
    pessimistic = evaluate(request, layers(unknown)) if unknown else optimistic
    proven = _layer_names(optimistic, resource_layer_name)
    if optimistic.allowed == pessimistic.allowed:
        # Already denied by layers that were read: an unread layer stays in the diagnosis when it would
        # still block once those are fixed (unknown is never absent).
        suspects = tuple(
            name
            for name in unknown
            if not optimistic.allowed and not evaluate(request, layers((name,), lifted=proven)).allowed
        )
        return Evaluation(
            pessimistic.decision.value,
            proven,
            suspects,
            _refs(optimistic if not optimistic.allowed else pessimistic),
            optimistic.reasons,
        )
    suspects = tuple(name for name in unknown if not evaluate(request, layers((name,))).allowed)
    return Evaluation("undecided", proven, suspects, (), optimistic.reasons)


def _layer_names(result: EvaluationResult, resource_layer_name: str) -> tuple[str, ...]:
    names = {Layer.RESOURCE: resource_layer_name}
    return tuple(dict.fromkeys(names.get(layer, layer.value) for layer in result.blocked_by))


def _refs(result: EvaluationResult) -> tuple[dict[str, str], ...]:
    return tuple(ref.to_dict() for ref in result.statements)


def _combine(
    probe: Probe, evaluation: Evaluation, kms: Evaluation | None, capability: str, unread: tuple[str, ...]
) -> CapabilityReport:
    """The verdict from the probe when it proves something, else from the evaluation; say when they differ,
    naming the layers that could not be read and those no notebook can see."""
    unseen = f"layers we could not read: {', '.join(unread) or 'none'}; layers a notebook cannot see: " + (
        f"{', '.join(NOT_VISIBLE)}, ACLs and Block Public Access"
    )
    kms_blocks = probe.outcome is Outcome.KMS_DENIED or (kms is not None and kms.decision.endswith("deny"))
    proven = tuple(dict.fromkeys((*evaluation.blocked_by, *(("kms",) if kms_blocks else ()))))
    suspects = tuple(dict.fromkeys((*evaluation.suspects, *(kms.suspects if kms else ()))))
    decided = evaluation.decision != "undecided"
    evaluation_allows = evaluation.decision == Decision.ALLOWED.value and not kms_blocks
    disagreement = None
    blocked: tuple[str, ...]
    if probe.allowed is True:
        verdict, blocked = Verdict.ALLOWED, ()
        if decided and not evaluation_allows:
            disagreement = (
                f"{capability}: the probe succeeded, but our evaluation of the layers we read says "
                f"{evaluation.decision} ({', '.join(proven) or 'no layer named'}); a grant we cannot see "
                f"allows it, or a policy changed since it was read ({unseen})."
            )
    elif probe.allowed is False:
        verdict = Verdict.DENIED
        blocked = tuple(dict.fromkeys((*proven, *suspects))) or ("unknown",)
        if decided and evaluation_allows:
            disagreement = (
                f"{capability}: the probe was denied, but every layer we could read allows it; the denial "
                f"comes from a layer we cannot see ({unseen})."
            )
    elif probe.outcome is Outcome.NO_SUCH_BUCKET:
        verdict, blocked = Verdict.UNKNOWN, ()
    elif decided:
        verdict = Verdict.ALLOWED if evaluation_allows else Verdict.DENIED
        blocked = () if evaluation_allows else tuple(dict.fromkeys((*proven, *suspects)))
    else:
        verdict, blocked = Verdict.UNKNOWN, tuple(dict.fromkeys((*proven, *suspects)))
    return CapabilityReport(capability, verdict, blocked, probe, evaluation, disagreement)


class Checker:
    """Checks buckets for one caller; identity and the caller's policies are cached for ``cache_seconds``."""

    def __init__(self, aws: Aws, *, cache_seconds: float = 300.0):
        self.aws = aws
        self._identity: TimedCache[Identity] = TimedCache(cache_seconds)
        self._caller_layers: TimedCache[CallerLayers] = TimedCache(cache_seconds)
        self._pool = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="s3access-check")

    def identity(self) -> Identity:
        return self._identity.get("identity", lambda: whoami(self.aws))

    def caller_layers(self) -> CallerLayers:
        """The caller's identity policies and boundary, as far as the caller may read them (cached)."""
        identity = self.identity()
        return self._caller_layers.get(
            identity.arn, lambda: LayerFetcher(self.aws, self._pool).caller_layers(identity)
        )

    def check(
        self,
        ref: BucketRef,
        *,
        key: str | None = None,
        write_probe: bool = False,
        need: str = "read",
        owner_account: str | None = None,
    ) -> AccessReport:
        ref = ref.as_folder()
        probes = self._pool.submit(run_probes, self.aws, ref, key=key, write=write_probe, pool=self._pool)
        bucket = self._pool.submit(LayerFetcher(self.aws, self._pool).bucket_layers, ref)
        identity = self.identity()
        caller = self.caller_layers()
        return assemble_report(
            ref,
            identity,
            caller,
            bucket.result(),
            probes.result().by_capability(),
            key=key,
            need=need,
            owner_account=owner_account,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def assemble_report(
    ref: BucketRef,
    identity: Identity,
    caller: CallerLayers,
    bucket: BucketLayers,
    probes: dict[str, Probe],
    *,
    key: str | None,
    need: str,
    owner_account: str | None,
) -> AccessReport:
    """The report from what was fetched and probed; pure, so tests can craft every layer moto ignores."""
    owner = owner_account or (identity.account if ref.bucket == data_bucket_name(identity.account) else None)
    notes = list(ref.notes)
    if owner is None:
        notes.append(
            f"The account that owns {ref.bucket} is unknown, so it is treated as another account than "
            f"yours ({identity.account}): the bucket policy must then allow you too."
        )
    known, parse_notes = known_layers(caller, bucket.bucket_policy, "bucket-policy")
    notes += parse_notes
    principal = Principal.from_arn(identity.arn)
    kms_key = (
        bucket.encryption.kms_key_arn
        if not isinstance(bucket.encryption, Unreadable)
        and bucket.encryption is not None
        and bucket.encryption.uses_kms
        else None
    )
    key_known, _ = known_layers(caller, bucket.key_policy, "kms") if kms_key else (None, [])
    gaps = tuple(
        gap
        for gap in (
            caller.identity_policies,
            caller.boundary,
            bucket.bucket_policy,
            bucket.encryption,
            bucket.key_policy,
        )
        if isinstance(gap, Unreadable)
    )
    reports: dict[str, CapabilityReport] = {}
    for capability in CAPABILITIES:
        probe = probes[capability]
        object_key = probe.key or key or f"{ref.prefix}{EXAMPLE_KEY}"
        resource = ref.bucket_arn if capability == "list" else ref.object_arn(object_key)
        context: dict[str, str] = {}
        if capability == "list" and ref.prefix:
            context["s3:prefix"] = ref.prefix
        if capability == "write":
            context["s3:x-amz-acl"] = "bucket-owner-full-control"
        request = Request(principal, S3_ACTIONS[capability], resource, owner or UNKNOWN_OWNER, context)
        evaluation = evaluate_with_gaps(request, known, "bucket-policy")
        kms = None
        if kms_key and key_known and capability in KMS_ACTIONS:
            kms_request = Request(
                principal,
                KMS_ACTIONS[capability],
                kms_key,
                context={"kms:ViaService": s3_via_service(kms_key)},
            )
            kms = evaluate_with_gaps(kms_request, key_known, "kms")
        reports[capability] = _combine(probe, evaluation, kms, capability, tuple(gap.layer for gap in gaps))
    needed = CAPABILITIES[: CAPABILITIES.index(need) + 1] if need != "list" else ("list",)
    blocking = [layer for name in needed for layer in reports[name].blocked_by]
    access = {"list": AccessLevel.LIST, "read": AccessLevel.READ}.get(need, AccessLevel.READ_WRITE)
    fixes = (
        plan_fixes(
            identity=identity,
            ref=ref,
            access=access,
            blocked_by=blocking,
            bucket_owner_account=owner,
            current_bucket_policy=_current(bucket.bucket_policy),
            current_boundary=_current(caller.boundary),
            current_grant_policy=_grant_policy(caller, identity),
            kms_key_arn=kms_key,
            current_key_policy=_current(bucket.key_policy),
        )
        if blocking
        else []
    )
    return AccessReport(ref, identity.arn, reports, gaps, tuple(fixes), tuple(notes))


def _current(fetched: PolicyOrGap) -> Any:
    if isinstance(fetched, Unreadable):
        return UNREADABLE
    return None if fetched is None else fetched.document


def _grant_policy(caller: CallerLayers, identity: Identity) -> Any:
    """Our own grant policy among the caller's attached policies, None if absent, unreadable if unknown."""
    if isinstance(caller.identity_policies, Unreadable):
        return UNREADABLE
    names = {f"MLSpace-s3access-project-{identity.project}", f"MLSpace-s3access-user-{identity.user}"}
    for policy in caller.identity_policies:
        if policy.label in names:
            return json.loads(json.dumps(policy.document))
    return None
