"""The settings a user may change, as traitlets: ``%config S3Access.x`` in a kernel, ``c.S3Access.x`` for the
Jupyter server. One definition, so the magic and the server extension accept exactly the same options; the
defaults are those of the settings they fill in (``SessionSettings``, and the ``AwsSettings`` inside it)."""

from __future__ import annotations

from pathlib import Path

from traitlets import Float, Int, List, Unicode
from traitlets.config import Configurable

from mlspace_s3magic.core.aws import AwsSettings
from mlspace_s3magic.session import SessionSettings


class S3AccessSettings(Configurable):
    region = Unicode(None, allow_none=True, help="AWS region; None uses boto3's lookup.").tag(config=True)
    endpoint_url = Unicode(
        None, allow_none=True, help="AWS endpoint; None uses AWS_ENDPOINT_URL or AWS's own."
    ).tag(config=True)
    profile = Unicode(None, allow_none=True, help="AWS profile; None uses boto3's lookup.").tag(config=True)
    max_pool_connections = Int(
        AwsSettings.max_pool_connections, help="HTTP connections kept per AWS service."
    ).tag(config=True)
    registry_path = Unicode(
        None,
        allow_none=True,
        help="The shared-bucket registry file; None uses $S3ACCESS_REGISTRY or ~/.config.",
    ).tag(config=True)
    extra_buckets = List(Unicode(), help="Buckets of your own that list and browse should include.").tag(
        config=True
    )
    list_workers = Int(SessionSettings.list_workers, help="How many buckets list probes at once.").tag(
        config=True
    )
    admin_url = Unicode(
        None, allow_none=True, help="The admin endpoint for access requests; None uses $S3ACCESS_ADMIN_URL."
    ).tag(config=True)
    cache_seconds = Float(
        SessionSettings.cache_seconds, help="How long identity and your policies are reused between checks."
    ).tag(config=True)

    diagnose_timeout = Float(
        SessionSettings.diagnose_timeout,
        help="Seconds a check waits for the admin endpoint's diagnosis before it answers on its own.",
    ).tag(config=True)

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            aws=AwsSettings(
                region=self.region,
                endpoint_url=self.endpoint_url,
                profile=self.profile,
                max_pool_connections=self.max_pool_connections,
            ),
            cache_seconds=self.cache_seconds,
            admin_url=self.admin_url,
            registry_path=Path(self.registry_path) if self.registry_path else None,
            extra_buckets=tuple(self.extra_buckets),
            list_workers=self.list_workers,
            diagnose_timeout=self.diagnose_timeout,
        )
