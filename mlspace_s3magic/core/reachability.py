"""Probe many candidate buckets at once and say, for each, how far the caller gets: read, list only, denied...

Every candidate is probed concurrently through a bounded pool whose size the HTTP connection pool matches, so
200 buckets cost about as long as the slowest few, not the sum of all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from enum import StrEnum
from html import escape
from typing import Any, Protocol

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.check import Checker
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layers import Unreadable
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.probes import READ_PROBE_KEY, Outcome, PayerProbe, Probe, Prober
from mlspace_s3magic.core.registry import Candidate, candidates
from mlspace_s3magic.core.render import Cell, Columns, Rendered, columns

DEFAULT_WORKERS = 64
QUICK_READ_DETAIL = (
    "Reading and listing are allowed: a probe for a missing key got NoSuchKey, which S3 answers only to "
    "callers who may list."
)


class Status(StrEnum):
    READ_WRITE = "read-write"
    READ = "read"
    LIST_ONLY = "list-only"
    DENIED = "denied"
    MISSING = "missing"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Reachability:
    candidate: Candidate
    status: Status
    detail: str
    prefix: str = ""

    def to_dict(self) -> dict[str, Any]:
        candidate = self.candidate
        return {
            "bucket": candidate.bucket,
            "status": self.status.value,
            "source": candidate.source,
            "sources": list(candidate.sources),
            "owner_account": candidate.owner_account,
            "region": candidate.region,
            "description": candidate.description,
            "mlspace_data": candidate.mlspace_data,
            "probed_prefix": self.prefix,
            "detail": self.detail,
        }


@dataclass(frozen=True, repr=False)
class BucketList(Rendered):
    """The answer to ``list``: every candidate with its status, the MLSpace data bucket first."""

    items: tuple[Reachability, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> list[dict[str, Any]]:
        return [item.to_dict() for item in self.items]

    def _table(self) -> Columns:
        rows = [
            (
                Cell(
                    item.candidate.bucket + (" (MLSpace data)" if item.candidate.mlspace_data else ""),
                    code=True,
                ),
                Cell(item.status.value, status=True),
                item.candidate.owner_account or "-",
                ", ".join(item.candidate.sources),
                item.candidate.description or "-",
            )
            for item in self.items
        ]
        return columns(("bucket", "status", "owner", "found in", "description"), rows)

    def __str__(self) -> str:
        lines = [self._table().text()]
        if not self.items:
            lines.append(
                "(no candidate buckets: ask your admin to register shared buckets, or set "
                "S3Access.extra_buckets)"
            )
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{escape(note)}</li>" for note in self.notes)
        return (
            f"<div><strong>S3 buckets you may reach</strong>{self._table().html()}"
            + (f"<ul>{notes}</ul>" if notes else "")
            + "</div>"
        )


def probe_target(candidate: Candidate, identity: Identity) -> BucketRef:
    """Where to probe: the MLSpace data bucket under the user's own prefix, others at their root."""
    if candidate.mlspace_data and identity.user:
        return BucketRef(candidate.bucket, f"private/{identity.user}/")
    return BucketRef(candidate.bucket)


def status_of(list_probe: Probe, read_probe: Probe) -> tuple[Status, str]:
    """Condense two probes into one status, keeping the more telling probe's words as the detail."""
    if Outcome.NO_SUCH_BUCKET in (list_probe.outcome, read_probe.outcome):
        return Status.MISSING, list_probe.detail
    can_list, can_read = list_probe.allowed, read_probe.allowed
    if can_read:
        return Status.READ, read_probe.detail
    if can_list:
        return Status.LIST_ONLY, read_probe.detail
    if can_list is False and can_read is False:
        return Status.DENIED, list_probe.detail
    return Status.UNKNOWN, f"{list_probe.detail} {read_probe.detail}".strip()


def reachability(
    aws: Aws,
    identity: Identity,
    candidates: Sequence[Candidate],
    *,
    workers: int = DEFAULT_WORKERS,
    on_progress: Callable[[int], None] | None = None,
) -> BucketList:
    """Probe every candidate concurrently; ``on_progress(n)`` reports finished buckets."""
    pooled = aws.with_pool(workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3access-list") as pool:
        futures = {
            pool.submit(_probe_one, pooled, identity, candidate): index
            for index, candidate in enumerate(candidates)
        }
        results: list[Reachability | None] = [None] * len(candidates)
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if on_progress is not None:
                on_progress(1)
    ordered = sorted(
        (r for r in results if r is not None),
        key=lambda r: (not r.candidate.mlspace_data, r.candidate.bucket.lower()),
    )
    return BucketList(tuple(ordered))


def _probe_one(aws: Aws, identity: Identity, candidate: Candidate) -> Reachability:
    """One request answers the common cases, two a denial; more only for the rare list-only or paying bucket.

    A GetObject for a key that cannot exist gets NoSuchKey only from a caller allowed both to read and to
    list (S3 hides a missing key from anyone who cannot list), and NoSuchBucket when there is no bucket.
    """
    ref = probe_target(candidate, identity)
    prober = Prober(aws, ref)
    quick = prober.read(f"{ref.prefix}{READ_PROBE_KEY}")
    if quick.outcome is Outcome.NO_SUCH_KEY:
        return Reachability(candidate, Status.READ, QUICK_READ_DETAIL, ref.prefix)
    if quick.outcome in (Outcome.NO_SUCH_BUCKET, Outcome.ALLOWED):
        return Reachability(candidate, *status_of(quick, quick), ref.prefix)
    listing, first_key = prober.list(payer=PayerProbe.FIRST)
    read = prober.read(first_key) if first_key else quick
    return Reachability(candidate, *status_of(listing, read), ref.prefix)


class Progress(Protocol):
    """What a progress bar must offer (``tqdm`` does); the shells choose the bar, the core only counts."""

    def update(self, n: int = 1) -> Any: ...

    def __enter__(self) -> Progress: ...

    def __exit__(self, *exc: object) -> Any: ...


def reachable_buckets(
    checker: Checker,
    registry: Iterable[SharedBucket],
    extra_buckets: Iterable[str] = (),
    *,
    workers: int = DEFAULT_WORKERS,
    progress: Callable[[int], Progress] | None = None,
) -> BucketList:
    """The candidates from every source, each probed: what ``%s3access list`` and ``s3access list`` show."""
    identity = checker.identity()
    caller = checker.caller_layers()
    found = candidates(identity, caller, registry, extra_buckets)
    notes: list[str] = []
    if isinstance(caller.identity_policies, Unreadable):
        notes.append(
            "Your own policies could not be read, so only the registry and your configured buckets "
            "were considered, not the buckets your policies name."
        )
    if progress is None:
        result = reachability(checker.aws, identity, found, workers=workers)
    else:
        with progress(len(found)) as bar:
            result = reachability(checker.aws, identity, found, workers=workers, on_progress=bar.update)
    return BucketList(result.items, tuple(notes))
