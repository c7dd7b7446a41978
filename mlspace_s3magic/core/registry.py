"""Which buckets a notebook user might reach.

Notebooks cannot list buckets, so candidates come from the admin's registry of shared buckets, the bucket
names in the caller's readable policies, and the user's own list.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.errors import UpstreamFailed
from mlspace_s3magic.core.files import config_dir
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.layers import CallerLayers, FetchedPolicy, Unreadable
from mlspace_s3magic.core.mlspace import data_bucket_name
from mlspace_s3magic.core.policy.arns import s3_location
from mlspace_s3magic.core.policy_edit import statements_of

REGISTRY_ENV = "S3ACCESS_REGISTRY"
SOURCE_MLSPACE = "mlspace"
SOURCE_REGISTRY = "registry"
SOURCE_CONFIG = "config"


class RegistryError(UpstreamFailed):
    """The registry file cannot be read or is not in the expected shape."""


# What the registry file holds of a shared bucket: all but the owner's role, which only the admin endpoint
# uses.
REGISTRY_FIELDS = ("bucket", "owner_account", "region", "description")


def _registered(data: Mapping[str, Any], where: str) -> SharedBucket:
    """One entry of the file as the admin's model, so the file and the endpoint validate it alike; the two
    mistakes a hand-written file makes most are named in words of their own."""
    bucket = data.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        raise RegistryError(f'{where}: each entry needs a "bucket" name')
    owner = data.get("owner_account")
    if owner is not None and not (isinstance(owner, str) and owner.isdigit() and len(owner) == 12):
        raise RegistryError(f"{where}: owner_account must be a 12-digit account id, not {owner!r}")
    try:
        return SharedBucket(
            bucket=bucket,
            owner_account=owner,
            region=data.get("region"),
            description=str(data.get("description", "")),
        )
    except ValidationError as error:
        first = error.errors()[0]
        cause = first.get("ctx", {}).get("error")
        field = ".".join(str(part) for part in first["loc"])
        problem = str(cause) if isinstance(cause, ValueError) else f"{field}: {first['msg']}"
        raise RegistryError(f"{where}: {problem}") from None


@dataclass(frozen=True)
class Candidate:
    """A bucket worth probing, with every place that named it."""

    bucket: str
    sources: tuple[str, ...]
    owner_account: str | None = None
    region: str | None = None
    description: str = ""
    mlspace_data: bool = False

    @property
    def source(self) -> str:
        return self.sources[0]


def default_registry_path() -> Path:
    """``$S3ACCESS_REGISTRY``, else the per-user config file (the admin endpoint replaces it later)."""
    configured = os.environ.get(REGISTRY_ENV)
    if configured:
        return Path(configured)
    return config_dir("registry.json")


def load_registry_file(path: Path) -> list[SharedBucket]:
    """Entries from ``{"buckets": [...]}`` (or a bare list); a missing file is an empty registry."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except OSError as error:
        raise RegistryError(f"Cannot read the registry {path}: {error.strerror}.") from None
    except json.JSONDecodeError as error:
        raise RegistryError(f"The registry {path} is not JSON: {error.msg} at line {error.lineno}.") from None
    entries = data.get("buckets") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise RegistryError(f'The registry {path} must hold {{"buckets": [...]}} or a list of entries.')
    return [
        _registered(entry if isinstance(entry, dict) else {}, f"{path}: buckets[{index}]")
        for index, entry in enumerate(entries)
    ]


def save_registry_file(path: Path, entries: Sequence[SharedBucket]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = [entry.model_dump(include=set(REGISTRY_FIELDS)) for entry in entries]
    path.write_text(json.dumps({"buckets": listed}, indent=2) + "\n")


def buckets_named_in(policy: FetchedPolicy) -> list[str]:
    """Bucket names in a policy's S3 resources; wildcards and policy variables name no single bucket."""
    names: list[str] = []
    for statement in statements_of(policy.document):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            location = s3_location(resource) if isinstance(resource, str) else None
            if location is None:
                continue
            bucket = location[0]
            if bucket and not any(mark in bucket for mark in ("*", "?", "${")) and bucket not in names:
                names.append(bucket)
    return names


def candidates(
    identity: Identity,
    caller: CallerLayers,
    registry: Iterable[SharedBucket],
    extra_buckets: Iterable[str] = (),
) -> list[Candidate]:
    """Every source merged, de-duplicated (case-sensitively, as S3 names are), each with its sources."""
    found: dict[str, dict[str, Any]] = {}

    def add(bucket: str, source: str, **details: Any) -> None:
        entry = found.setdefault(bucket, {"sources": []})
        if source not in entry["sources"]:
            entry["sources"].append(source)
        for key, value in details.items():
            if value and not entry.get(key):
                entry[key] = value

    if identity.project or identity.user:
        add(data_bucket_name(identity.account), SOURCE_MLSPACE, owner_account=identity.account)
    for registered in registry:
        add(
            registered.bucket,
            SOURCE_REGISTRY,
            owner_account=registered.owner_account,
            region=registered.region,
            description=registered.description,
        )
    policies: list[FetchedPolicy] = []
    if not isinstance(caller.identity_policies, Unreadable):
        policies.extend(caller.identity_policies)
    if isinstance(caller.boundary, FetchedPolicy):
        policies.append(caller.boundary)
    for policy in policies:
        for bucket in buckets_named_in(policy):
            add(bucket, f"policy:{policy.label}")
    for bucket in extra_buckets:
        add(bucket, SOURCE_CONFIG)
    data_bucket = data_bucket_name(identity.account)
    return [
        Candidate(
            bucket=bucket,
            sources=tuple(entry["sources"]),
            owner_account=entry.get("owner_account"),
            region=entry.get("region"),
            description=entry.get("description", ""),
            mlspace_data=bucket == data_bucket,
        )
        for bucket, entry in found.items()
    ]
