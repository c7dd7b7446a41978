"""``%s3access``: one magic whose subcommands come from a table, configurable with ``%config S3Access.x``."""

from __future__ import annotations

import json
from argparse import Namespace
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Int, Unicode, observe
from traitlets.config import Configurable

from mlspace_s3magic.core.aws import Aws, AwsSettings
from mlspace_s3magic.core.identity import Identity, whoami

HELP_FLAGS = frozenset({"-h", "--help"})


@magics_class
class S3Access(Magics, Configurable):
    """Check, list and request access to S3 buckets from an MLSpace notebook.

    Usage: ``%s3access SUBCOMMAND [options]``; ``%s3access`` alone lists the subcommands and
    ``%s3access SUBCOMMAND --help`` explains one.
    """

    region = Unicode(None, allow_none=True, help="AWS region; None uses boto3's lookup.").tag(config=True)
    endpoint_url = Unicode(
        None, allow_none=True, help="AWS endpoint; None uses AWS_ENDPOINT_URL or AWS's own."
    ).tag(config=True)
    profile = Unicode(None, allow_none=True, help="AWS profile; None uses boto3's lookup.").tag(config=True)
    max_pool_connections = Int(10, help="HTTP connections kept per AWS service.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self._aws: Aws | None = None
        # The one table of subcommands: name -> handler (its docstring's first line is its summary).
        self.subcommands: dict[str, Callable[[Namespace], Any]] = {"whoami": self.whoami}

    @observe("region", "endpoint_url", "profile", "max_pool_connections")
    def _settings_changed(self, change: Any) -> None:
        self._aws = None

    @property
    def aws(self) -> Aws:
        """Clients for the current settings, made again only when ``%config`` changes one."""
        if self._aws is None:
            self._aws = Aws(
                AwsSettings(
                    region=self.region,
                    endpoint_url=self.endpoint_url,
                    profile=self.profile,
                    max_pool_connections=self.max_pool_connections,
                )
            )
        return self._aws

    @line_magic
    def s3access(self, line: str) -> Any:
        name, _, rest = line.strip().partition(" ")
        if not name or name in HELP_FLAGS:
            print(self.overview())
            return None
        handler = self.subcommands.get(name)
        if handler is None:
            raise UsageError(
                f"Unknown subcommand {name!r}. Valid subcommands: {', '.join(self.subcommands)}."
            )
        parser = handler.parser  # type: ignore[attr-defined]
        if HELP_FLAGS.intersection(rest.split()):
            print(parser.format_help())
            return None
        return handler(parse_argstring(handler, rest))

    def overview(self) -> str:
        lines = ["Usage: %s3access SUBCOMMAND [options]   (SUBCOMMAND --help for its options)", ""]
        for name, handler in self.subcommands.items():
            # @magic_arguments rewrites __doc__ into full help; the parser keeps the original summary.
            summary = (handler.parser.description or "").strip().splitlines()[0]  # type: ignore[attr-defined]
            lines.append(f"  {name:<10} {summary}")
        return "\n".join(lines)

    @magic_arguments("%s3access whoami")
    @argument("--json", action="store_true", help="Print a JSON object instead of returning the result.")
    def whoami(self, args: Namespace) -> Identity | None:
        """Who you are to AWS and to MLSpace: ARN, account, role, user, project, boundary."""
        identity = whoami(self.aws)
        if args.json:
            print(json.dumps(identity.to_dict(), indent=2, sort_keys=True))
            return None
        return identity
