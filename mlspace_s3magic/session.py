"""One user's S3 access session: the clients and caches that the magic and the server extension share.

The magic keeps one per kernel, the JupyterLab server extension one per server and the terminal one per
command, so all three answer ``list``, ``check`` and ``request`` from the same code, with the same caches and
the same errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlspace_s3magic.access_requests.actions import shared_buckets
from mlspace_s3magic.access_requests.client import (
    ADMIN_URL_ENV,
    DIAGNOSE_TIMEOUT_SECONDS,
    AdminClient,
    admin_url_from_environment,
)
from mlspace_s3magic.access_requests.outbox import Outbox, default_outbox_dir
from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import Aws, AwsSettings
from mlspace_s3magic.core.check import AccessReport, Checker
from mlspace_s3magic.core.diagnosis import Diagnosis
from mlspace_s3magic.core.errors import S3MagicError, Unavailable
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.reachability import DEFAULT_WORKERS, BucketList, Progress, reachable_buckets
from mlspace_s3magic.core.registry import default_registry_path


class NoAdminEndpoint(Unavailable):
    """Access requests need the admin endpoint's URL, and none is configured."""


@dataclass(frozen=True)
class SessionSettings:
    """What a user may configure: how to reach AWS, and what the session does there."""

    aws: AwsSettings = field(default_factory=AwsSettings)
    cache_seconds: float = 300.0
    admin_url: str | None = None  # None: $S3ACCESS_ADMIN_URL
    registry_path: Path | None = None  # None: $S3ACCESS_REGISTRY or ~/.config
    extra_buckets: tuple[str, ...] = ()
    list_workers: int = DEFAULT_WORKERS
    diagnose_timeout: float = DIAGNOSE_TIMEOUT_SECONDS  # how long a check waits for the endpoint's diagnosis


class S3AccessSession:
    """Clients made once per settings; the bucket list is probed once and reused until refreshed.

    Safe to share between threads: the server extension answers several routes at once from its pool.
    """

    def __init__(self, settings: SessionSettings, *, aws: Aws | None = None):
        """``aws``: clients to use instead of ones made from the settings (a sandbox principal's, say)."""
        self.settings = settings
        self._aws = aws
        self._lock = threading.Lock()
        self._checker: Checker | None = None
        self._admin: AdminClient | None = None
        self._bucket_list: BucketList | None = None
        self._registry: tuple[list[SharedBucket], tuple[str, ...]] | None = None

    @property
    def checker(self) -> Checker:
        with self._lock:
            if self._checker is None:
                aws = self._aws or Aws(self.settings.aws)
                diagnose = self._diagnose if self.admin_url() else None
                self._checker = Checker(aws, cache_seconds=self.settings.cache_seconds, diagnose=diagnose)
            return self._checker

    @property
    def aws(self) -> Aws:
        return self.checker.aws

    def admin_url(self) -> str | None:
        return self.settings.admin_url or admin_url_from_environment()

    def admin(self) -> AdminClient:
        """The endpoint's client, with the outbox that keeps requests it could not take."""
        url = self.admin_url()
        if not url:
            raise NoAdminEndpoint(
                "No admin endpoint is configured: set S3Access.admin_url (%config in a notebook, "
                "c.S3Access.admin_url for the Jupyter server), pass --url in a terminal, or set "
                f"{ADMIN_URL_ENV}."
            )
        aws = self.aws
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(
                    url,
                    aws=aws,
                    outbox=Outbox(default_outbox_dir()),
                    diagnose_timeout=self.settings.diagnose_timeout,
                )
            return self._admin

    def _diagnose(self, ref: BucketRef) -> Diagnosis:
        """The admin endpoint's diagnosis of the caller's access, every layer read with its rights."""
        return Diagnosis.from_dict(self.admin().diagnose(str(ref)))

    def registry(self, *, refresh: bool = False) -> tuple[list[SharedBucket], tuple[str, ...]]:
        """The shared buckets the admin registered (the endpoint's when configured, else the file), with
        notes on where they came from; read once per session unless refreshed."""
        with self._lock:
            cached = self._registry
        if cached is not None and not refresh:
            return cached
        found = shared_buckets(
            self.admin() if self.admin_url() else None,
            self.settings.registry_path or default_registry_path(),
        )
        with self._lock:
            self._registry = found
        return found

    def buckets(
        self, *, refresh: bool = False, progress: Callable[[int], Progress] | None = None
    ) -> BucketList:
        """The candidates from the registry, the caller's policies and the settings, each probed."""
        with self._lock:
            cached = self._bucket_list
        if cached is not None and not refresh:
            return cached
        registry, notes = self.registry(refresh=refresh)
        found = reachable_buckets(
            self.checker,
            registry,
            self.settings.extra_buckets,
            workers=self.settings.list_workers,
            progress=progress,
        )
        if notes:
            found = replace(found, notes=(*notes, *found.notes))
        with self._lock:
            self._bucket_list = found
        return found

    def check(
        self,
        ref: BucketRef,
        *,
        key: str | None = None,
        write_probe: bool = False,
        need: str = "read",
        owner_account: str | None = None,
    ) -> AccessReport:
        """The checker's report, the bucket's owner taken from the registry unless given: every shell checks
        here, so the magic, the terminal, the server and the browser widget judge the owner alike."""
        return self.checker.check(
            ref,
            key=key,
            write_probe=write_probe,
            need=need,
            owner_account=owner_account or self.owner_account(ref.bucket),
        )

    def owner_account(self, bucket: str) -> str | None:
        """The owner the registry names for ``bucket``: a check needs it to tell same- from cross-account.

        A registry that cannot be read (the endpoint refuses, the file is broken) must not fail a check,
        which then says that it does not know the owner.
        """
        try:
            registry, _ = self.registry()
        except S3MagicError:
            return None
        return next((entry.owner_account for entry in registry if entry.bucket == bucket), None)

    def close(self) -> None:
        with self._lock:
            if self._checker is not None:
                self._checker.close()
            if self._admin is not None:
                self._admin.close()
            self._checker = self._admin = self._bucket_list = self._registry = None
