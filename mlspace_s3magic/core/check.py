"""``check``: can the caller list, read and write a bucket; if not, which layer blocks it, and the fix.

Probes are the truth about today. The evaluator explains them, over every layer the caller could read, and
predicts what probes must not test (writes). A layer the caller cannot read is handled honestly: the request
is evaluated once assuming every unreadable layer allows and once assuming each denies; layers that block
even under the first assumption are proven, and unreadable layers whose denial would flip the decision are
reported as unverified suspects.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from html import escape
from typing import Any

from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.cache import TimedCache
from mlspace_s3magic.core.capabilities import (
    CAPABILITIES,
    Capabilities,
    CapabilityEvaluation,
    evaluate_capabilities,
    needed_capabilities,
)
from mlspace_s3magic.core.diagnosis import Diagnosis
from mlspace_s3magic.core.errors import NotAllowed, S3MagicError
from mlspace_s3magic.core.fix import Fix, fixes_html, render_fixes
from mlspace_s3magic.core.fix_plan import UNREAD
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.identity import Identity, whoami
from mlspace_s3magic.core.layers import (
    BucketLayers,
    CallerLayers,
    Encryption,
    LayerFetcher,
    PolicyOrGap,
    Unreadable,
)
from mlspace_s3magic.core.mlspace import owner_of
from mlspace_s3magic.core.names import BucketRef, is_kms_key_arn
from mlspace_s3magic.core.probes import Outcome, Probe, Prober, run_probes
from mlspace_s3magic.core.remedy import plan_fixes
from mlspace_s3magic.core.render import Cell, Columns, Rendered, columns, notes_html

# Layers a notebook never sees; a denial nothing visible explains is theirs (or an ACL's) to answer for.
NOT_VISIBLE = ("scp", "rcp", "endpoint", "session")
POOL_SIZE = 32  # more than the tasks that wait on others (probes, layer fan-outs), so none can starve
NOTEBOOK, ENDPOINT = "notebook", "endpoint"
# Asks the admin endpoint to diagnose a bucket for this caller; raises S3MagicError when it cannot.
Diagnose = Callable[[BucketRef], Diagnosis]


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class S3AccessDenied(NotAllowed):
    """Raised when asked to (``--strict``, ``S3Access.raise_on_denied``), so an unattended run stops."""


@dataclass(frozen=True)
class CapabilityReport:
    capability: str
    verdict: Verdict
    blocked_by: tuple[str, ...]
    probe: Probe
    evaluation: CapabilityEvaluation
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
    diagnosed_by: str = NOTEBOOK  # who read the layers: this notebook, or the admin endpoint (all of them)

    def verdict(self, capability: str) -> Verdict:
        return self.capabilities[capability].verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.ref.bucket,
            "prefix": self.ref.prefix,
            "principal": self.principal,
            "diagnosed_by": self.diagnosed_by,
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
            unverified = [layer for layer in report.blocked_by if layer in report.evaluation.unverified]
            proven = [layer for layer in report.blocked_by if layer not in unverified]
            blocked = ", ".join(proven) or "-"
            if unverified and not proven:
                blocked = f"{', '.join(unverified)} (unverified: could not read them)"
            elif unverified:
                blocked += f"; unverified: {', '.join(unverified)} (could not read)"
            rows.append((name, report.verdict.value, blocked, report.probe.detail))
        return rows

    def _table(self) -> Columns:
        rows = [(c, Cell(v, status=True), b, e) for c, v, b, e in self._rows()]
        return columns(("capability", "verdict", "blocked by", "evidence"), rows)

    def __str__(self) -> str:
        lines = [f"S3 access to {self.ref} as {self.principal}", "", self._table().text()]
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
        notes = [
            *(f"Could not read the {gap.layer} layer: {gap.reason}." for gap in self.unreadable_layers),
            *(r.disagreement for r in self.capabilities.values() if r.disagreement),
            *self.notes,
        ]
        fixes = (
            f"<details><summary>{len(self.fixes)} fix(es), one per blocking layer</summary>"
            f"{fixes_html(self.fixes)}</details>"
            if self.fixes
            else ""
        )
        return (
            f"<div><strong>S3 access to {escape(str(self.ref))}</strong> "
            f"as <code>{escape(self.principal)}</code>"
            f"{self._table().html()}{notes_html(notes)}{fixes}</div>"
        )


def _combine(
    probe: Probe, evaluation: CapabilityEvaluation, capability: str, unread: tuple[str, ...]
) -> CapabilityReport:
    """The verdict from the probe when it proves something, else from the evaluation; say when they differ,
    naming the layers that could not be read and those no notebook can see."""
    unseen = f"layers we could not read: {', '.join(unread) or 'none'}; layers a notebook cannot see: " + (
        f"{', '.join(NOT_VISIBLE)}, ACLs and Block Public Access"
    )
    kms_denied = probe.outcome is Outcome.KMS_DENIED
    proven = tuple(dict.fromkeys((*evaluation.blocked_by, *(("kms",) if kms_denied else ()))))
    suspects = tuple(layer for layer in evaluation.unverified if layer not in proven)
    if kms_denied:  # S3 authorized the request before it asked KMS: no S3 layer blocks it
        proven, suspects = ("kms",), ()
    decided = evaluation.allowed is not None
    evaluation_allows = evaluation.allowed is True and not kms_denied
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
        blocked = (*proven, *suspects) or ("unknown",)
        if decided and evaluation_allows:
            disagreement = (
                f"{capability}: the probe was denied, but every layer we could read allows it; the denial "
                f"comes from a layer we cannot see ({unseen})."
            )
    elif probe.outcome is Outcome.NO_SUCH_BUCKET:
        verdict, blocked = Verdict.UNKNOWN, ()
    elif decided:
        verdict = Verdict.ALLOWED if evaluation_allows else Verdict.DENIED
        blocked = () if evaluation_allows else (*proven, *suspects)
    else:
        verdict, blocked = Verdict.UNKNOWN, (*proven, *suspects)
    return CapabilityReport(capability, verdict, blocked, probe, evaluation, disagreement)


class Checker:
    """Checks buckets for one caller; identity and the caller's policies are cached for ``cache_seconds``.

    With ``diagnose`` (the admin endpoint), the endpoint's evaluation over every layer replaces the
    notebook's own reading, asked at the same time as the probes; when it fails, the notebook's reading
    answers and the report says why in one line.
    """

    def __init__(self, aws: Aws, *, cache_seconds: float = 300.0, diagnose: Diagnose | None = None):
        self.aws = aws
        self.diagnose = diagnose
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
        asked: Future[Diagnosis] | None = (
            self._pool.submit(self.diagnose, ref) if self.diagnose is not None else None
        )
        probes = self._pool.submit(run_probes, self.aws, ref, key=key, write=write_probe, pool=self._pool)
        bucket = self._pool.submit(LayerFetcher(self.aws, self._pool).bucket_layers, ref)
        identity = self.identity()
        probed = probes.result().by_capability()
        layers = self._with_learned_key(ref, bucket.result(), probed["read"])
        diagnosis, fallback = _answer(asked)
        # The endpoint read every layer: the caller's own (mostly refused) reads would only delay the answer,
        # and the printed commands fetch the live documents when they run.
        caller = self.caller_layers() if diagnosis is None else _NOT_READ_HERE
        report = assemble_report(
            ref,
            identity,
            caller,
            layers,
            probed,
            key=key,
            need=need,
            owner_account=owner_account,
            diagnosis=diagnosis,
        )
        if fallback:
            return replace(report, notes=(fallback, *report.notes))
        return report

    def _with_learned_key(self, ref: BucketRef, bucket: BucketLayers, read: Probe) -> BucketLayers:
        """When KMS refused the read and the bucket's encryption could not be read, the object's own
        metadata names the key (one HeadObject): its key policy can then be fixed, not only guessed at."""
        if (
            read.outcome is not Outcome.KMS_DENIED
            or not read.key
            or not isinstance(bucket.encryption, Unreadable)
        ):
            return bucket
        key_arn = Prober(self.aws, ref).kms_key_of(read.key)
        if key_arn is None or not is_kms_key_arn(key_arn):
            return bucket
        key_policy = LayerFetcher(self.aws, self._pool).key_policy(key_arn)
        return replace(bucket, encryption=Encryption("aws:kms", key_arn), key_policy=key_policy)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


_NOT_READ_HERE = CallerLayers(
    Unreadable("identity", "not read by the notebook: the admin endpoint diagnosed"),
    Unreadable("boundary", "not read by the notebook: the admin endpoint diagnosed"),
)


def _answer(asked: Future[Diagnosis] | None) -> tuple[Diagnosis | None, str | None]:
    """The endpoint's diagnosis, or None and the one line saying why the notebook's own reading answers."""
    if asked is None:
        return None, None
    try:
        return asked.result(), None
    except S3MagicError as error:
        return (
            None,
            f"The admin endpoint could not diagnose this ({error}); this is the notebook's own reading.",
        )


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
    diagnosis: Diagnosis | None = None,
) -> AccessReport:
    """The report from what was fetched, probed and (with ``diagnosis``) what the admin endpoint evaluated;
    pure, so tests can craft every layer moto ignores."""
    owner = owner_of(ref.bucket, identity.account, owner_account)
    notes = list(ref.notes)
    if identity.user_scoped is False and identity.role:
        notes.append(
            f"You run as MLSpace's shared notebook role {identity.role}: every notebook of every project "
            "does, so whatever it is granted, they all get."
        )
    if owner is None and diagnosis is None:
        notes.append(
            f"The account that owns {ref.bucket} is unknown, so it is treated as another account than "
            f"yours ({identity.account}): the bucket policy must then allow you too."
        )
    object_keys = {name: str(probe.key or key) for name, probe in probes.items() if probe.key or key}
    ours = evaluate_capabilities(
        identity.arn, ref, caller, bucket, owner_account=owner, object_keys=object_keys
    )
    evaluated, gaps = _evaluations(ours, diagnosis)
    notes += ours.notes if diagnosis is None else diagnosis.notes
    if diagnosis is not None:
        notes.append(
            "Diagnosed by the admin endpoint, which reads every layer; the probes ran from this notebook."
        )
    reports = {
        capability: _combine(
            probes[capability], evaluated[capability], capability, tuple(g.layer for g in gaps)
        )
        for capability in CAPABILITIES
    }
    needed = needed_capabilities(need)
    blocking = list(dict.fromkeys(layer for name in needed for layer in reports[name].blocked_by))
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
            kms_key_arn=ours.kms_key_arn,
            current_key_policy=_current(bucket.key_policy),
        )
        if blocking
        else []
    )
    if diagnosis is not None and any(
        Diagnosis.grantable(evaluated[name]) and reports[name].verdict is not Verdict.ALLOWED
        for name in needed
    ):
        notes.append("An admin can grant this: ask with `%s3access request` (or `s3access request`).")
    return AccessReport(
        ref,
        identity.arn,
        reports,
        gaps,
        tuple(fixes),
        tuple(notes),
        ENDPOINT if diagnosis is not None else NOTEBOOK,
    )


def _evaluations(
    ours: Capabilities, diagnosis: Diagnosis | None
) -> tuple[dict[str, CapabilityEvaluation], tuple[Unreadable, ...]]:
    """Each capability's evaluation and the layers it could not read: the endpoint's where it answered."""
    if diagnosis is None:
        return {name: ours[name] for name in CAPABILITIES}, ours.unreadable
    evaluated = {name: diagnosis.evaluation(name) or ours[name] for name in CAPABILITIES}
    return evaluated, tuple(Unreadable(layer, why) for layer, why in diagnosis.unreadable.items())


def _current(fetched: PolicyOrGap) -> Any:
    if isinstance(fetched, Unreadable):
        return UNREAD
    return None if fetched is None else fetched.document


def _grant_policy(caller: CallerLayers, identity: Identity) -> Any:
    """Our own grant policy among the caller's attached policies, else unknown: one not attached to this
    role may still exist (a member who joined after it was made), so the printed command decides at run
    time whether to create it or add a version, and attaches it."""
    if isinstance(caller.identity_policies, Unreadable):
        return UNREAD
    names = {f"MLSpace-s3access-project-{identity.project}", f"MLSpace-s3access-user-{identity.user}"}
    for policy in caller.identity_policies:
        if policy.label in names:
            return json.loads(json.dumps(policy.document))
    return UNREAD
