"""What a running sandbox tells its clients: its endpoint and principals' keys (``sandbox.json``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlspace_s3magic.access_requests.client import ADMIN_URL_ENV
from mlspace_s3magic.core.access import SharedBucket
from mlspace_s3magic.core.aws import DEFAULT_REGION, Aws, AwsSettings, StaticCredentials
from mlspace_s3magic.core.errors import NotFound, Unavailable
from mlspace_s3magic.core.files import state_dir, write_private
from mlspace_s3magic.core.registry import REGISTRY_ENV, save_registry_file
from mlspace_s3magic.sandbox.mlspace_policies import NOTEBOOK_ROLE_NAME

STATE_FILE_NAME = "sandbox.json"
REGISTRY_FILE_NAME = "registry.json"
# Set for a command `sandbox run` starts, so it can find the sandbox's files (the demo's admin token).
STATE_DIR_ENV = "S3ACCESS_SANDBOX_STATE_DIR"


def default_state_dir() -> Path:
    return state_dir("sandbox")


@dataclass(frozen=True)
class SandboxPrincipal:
    """One sandbox identity: a name people type (``alice@demo``), its ARN and its keys."""

    name: str
    arn: str
    credentials: StaticCredentials = field(repr=False)


@dataclass(frozen=True)
class SandboxState:
    endpoint_url: str
    principals: dict[str, SandboxPrincipal]
    region: str = DEFAULT_REGION
    # The shared-bucket registry the sandbox's admin keeps, once saved next to the state.
    registry_file: str | None = None
    # The admin endpoint `sandbox run --admin-endpoint` serves beside the sandbox, while it runs.
    admin_url: str | None = None
    # MLSpace without per-user roles (`--shared-role`): remembered so that every command tells the same world.
    shared_role: bool = False

    @property
    def mode(self) -> str:
        """How the sandbox's MLSpace runs its notebooks, in words for the lines that announce it."""
        if self.shared_role:
            return f"shared-role mode: every notebook runs as {NOTEBOOK_ROLE_NAME}"
        return "per-user roles"

    def principal(self, name: str) -> SandboxPrincipal:
        try:
            return self.principals[name]
        except KeyError:
            raise NotFound(
                f"The sandbox has no principal {name!r}; choose one of: {', '.join(self.principals)}."
            ) from None

    def aws_for(self, name: str) -> Aws:
        """Clients that talk to the sandbox as ``name``, whatever the process environment says."""
        settings = AwsSettings(region=self.region, endpoint_url=self.endpoint_url)
        return Aws(settings, self.principal(name).credentials)

    def environment_for(self, name: str) -> dict[str, str | None]:
        """The variables that make any boto3 code act as ``name``; ``None`` means "unset it"."""
        creds = self.principal(name).credentials
        # Only a running demo endpoint is exported: one the user configured themselves is left alone.
        admin = {ADMIN_URL_ENV: self.admin_url} if self.admin_url else {}
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_SESSION_TOKEN": creds.session_token,
            "AWS_DEFAULT_REGION": self.region,
            REGISTRY_ENV: self.registry_file,
            # A profile would not override these keys, but it could name another endpoint or region.
            "AWS_PROFILE": None,
            **admin,
        }

    def process_environment(self, name: str, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (say, ``os.environ``) changed so that a child process acts as ``name``."""
        environment = dict(base)
        for key, value in self.environment_for(name).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        return environment

    def shell_exports(self, name: str) -> str:
        lines = []
        for key, value in self.environment_for(name).items():
            lines.append(f"unset {key}" if value is None else f"export {key}={shlex.quote(value)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "registry_file": self.registry_file,
            "admin_url": self.admin_url,
            "shared_role": self.shared_role,
            "principals": {
                p.name: {
                    "arn": p.arn,
                    "access_key_id": p.credentials.access_key_id,
                    "secret_access_key": p.credentials.secret_access_key,
                    "session_token": p.credentials.session_token,
                }
                for p in self.principals.values()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SandboxState:
        principals = {
            name: SandboxPrincipal(
                name,
                entry["arn"],
                StaticCredentials(
                    entry["access_key_id"], entry["secret_access_key"], entry.get("session_token")
                ),
            )
            for name, entry in data["principals"].items()
        }
        return cls(
            data["endpoint_url"],
            principals,
            data.get("region", DEFAULT_REGION),
            data.get("registry_file"),
            data.get("admin_url"),
            bool(data.get("shared_role", False)),
        )

    def save(self, state_dir: Path, registry: Sequence[SharedBucket] = ()) -> Path:
        """Write ``sandbox.json`` readable by its owner only (it holds secrets), and the bucket registry."""
        state_dir.mkdir(parents=True, exist_ok=True)
        registry_path = state_dir.resolve() / REGISTRY_FILE_NAME
        save_registry_file(registry_path, registry)
        return replace(self, registry_file=str(registry_path))._write(state_dir)

    def with_admin_url(self, state_dir: Path, url: str | None) -> SandboxState:
        """Record the admin endpoint serving beside this sandbox (``None`` once it stops) in ``sandbox.json``,
        so that ``sandbox env`` exports it to other shells."""
        state = replace(self, admin_url=url)
        state._write(state_dir)
        return state

    def _write(self, state_dir: Path) -> Path:
        """Replace ``sandbox.json`` at once, so a reader never sees half of it."""
        return write_private(state_dir / STATE_FILE_NAME, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> SandboxState:
        path = state_dir / STATE_FILE_NAME
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise Unavailable(
                f"No sandbox is running for {state_dir} (there is no {path}). Start one with "
                f"`s3access sandbox serve --state-dir {state_dir}`."
            ) from None
        except (ValueError, KeyError, TypeError) as error:
            raise Unavailable(f"{path} is not a sandbox state file ({error}); restart the sandbox.") from None
