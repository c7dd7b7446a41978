"""The user commands and their options, declared once: `s3access`'s parser and `%s3access`'s come from here.

Each shell handles a command its own way (the terminal prints and exits with a status, the magic returns an
object to display), but what a command is called, what it takes and what each option means is written only
here, so the two cannot drift apart. An option either shell lacks says so in ``where``: the terminal takes the
AWS settings and the admin endpoint as options, the notebook from ``%config S3Access``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from enum import Flag, auto
from pathlib import Path
from typing import Any

from mlspace_s3magic.access_requests.client import ADMIN_URL_ENV
from mlspace_s3magic.core.browse import DEFAULT_PAGE_SIZE
from mlspace_s3magic.core.capabilities import CAPABILITIES
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.reachability import DEFAULT_WORKERS

# The levels a user may ask for (reading includes listing), offered by every shell's option and form.
REQUESTABLE = (AccessLevel.READ, AccessLevel.READ_WRITE)


class Where(Flag):
    """The shells a command or an option exists in."""

    TERMINAL = auto()
    NOTEBOOK = auto()
    BOTH = TERMINAL | NOTEBOOK


@dataclass(frozen=True)
class Option:
    """One argument as ``argparse`` takes it: its flags (or name), its help, and the other keywords."""

    flags: tuple[str, ...]
    help: str
    where: Where
    keywords: dict[str, Any]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(*self.flags, help=self.help, **self.keywords)

    def only_in(self, shell: Where) -> Option:
        return replace(self, where=shell)


def option(*flags: str, help: str, where: Where = Where.BOTH, **keywords: Any) -> Option:
    return Option(flags, help, where, keywords)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, the one-line summary both shells show, and its options in order."""

    name: str
    summary: str
    options: tuple[Option, ...]
    where: Where = Where.BOTH
    exits: str = ""  # the terminal's exit statuses, when they say more than 0 and 1

    def options_in(self, shell: Where) -> tuple[Option, ...]:
        return tuple(option for option in self.options if shell in option.where)

    @property
    def terminal_help(self) -> str:
        return f"{self.summary} ({self.exits})" if self.exits else self.summary


JSON = option("--json", action="store_true", help="Print JSON instead of showing the result.")


def json_text(data: object) -> str:
    """What ``--json`` prints, in either shell: one format, so a script reads the magic's as the CLI's."""
    return json.dumps(data, indent=2, sort_keys=True)


# The magic takes these from %config S3Access; a terminal command, from its options.
AWS = (
    option("--profile", where=Where.TERMINAL, help="AWS profile to use (default: boto3's usual lookup)."),
    option(
        "--region", where=Where.TERMINAL, help="AWS region (default: AWS_DEFAULT_REGION or the profile's)."
    ),
    option(
        "--endpoint-url",
        where=Where.TERMINAL,
        help="AWS endpoint (default: AWS_ENDPOINT_URL, else AWS's own).",
    ),
)
ADMIN = (
    *AWS,
    option("--url", where=Where.TERMINAL, help=f"The admin endpoint (default: ${ADMIN_URL_ENV})."),
)
PAGE_SIZE = option(
    "--page-size",
    type=int,
    default=DEFAULT_PAGE_SIZE,
    help="Entries per page, one request each (default: %(default)s, S3's most).",
)

COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        Command(
            "whoami",
            "Who you are to AWS and to MLSpace: ARN, account, role, user, project, boundary.",
            (JSON, *AWS),
        ),
        Command(
            "check",
            "Can you list, read and write a bucket? If not, which layer blocks it, and the exact fix.",
            (
                option(
                    "target", help="BUCKET[/PREFIX], s3://bucket/prefix, an S3 ARN or an access point ARN."
                ),
                option(
                    "--key",
                    help="Probe reading this object (default: the first key listed under the prefix).",
                ),
                option(
                    "--write-probe",
                    action="store_true",
                    help="Also test writing: put then delete a 0-byte marker.",
                ),
                option(
                    "--need",
                    choices=CAPABILITIES,
                    default="read",
                    help="The access you need: the exit status follows it, and in a notebook --strict and "
                    "S3Access.raise_on_denied (default: %(default)s).",
                ),
                option(
                    "--owner-account",
                    help="The bucket owner's account id (default: the one the admin's registry names).",
                ),
                option(
                    "--strict",
                    action="store_true",
                    where=Where.NOTEBOOK,
                    help="Raise S3AccessDenied if the needed access is denied.",
                ),
                JSON,
                *AWS,
            ),
            exits="exit 0 allowed, 3 denied",
        ),
        Command(
            "list",
            "The buckets you may reach (registry, your policies, your own list), each with its status.",
            (
                JSON,
                option(
                    "--refresh",
                    action="store_true",
                    where=Where.NOTEBOOK,
                    help="Probe again instead of reusing this session's answer.",
                ),
                option(
                    "--registry",
                    type=Path,
                    where=Where.TERMINAL,
                    help="The shared-bucket registry file (default: $S3ACCESS_REGISTRY, else "
                    "~/.config/mlspace-s3magic/registry.json).",
                ),
                option(
                    "--extra-bucket",
                    action="append",
                    default=[],
                    metavar="BUCKET",
                    where=Where.TERMINAL,
                    help="A bucket of your own to include (repeatable).",
                ),
                option(
                    "--workers",
                    type=int,
                    default=DEFAULT_WORKERS,
                    where=Where.TERMINAL,
                    help="Buckets probed at once (default: %(default)s).",
                ),
                *AWS,
            ),
        ),
        Command(
            "browse",
            "Browse your buckets: folders, objects, paging, paths, snippets and previews.",
            (
                option(
                    "target", nargs="?", help="BUCKET[/PREFIX] to open; without it, the list of your buckets."
                ),
                PAGE_SIZE,
                option(
                    "--refresh", action="store_true", help="Probe the bucket list again before showing it."
                ),
            ),
            where=Where.NOTEBOOK,
        ),
        Command(
            "ls",
            "One level of a bucket, a page at a time.",
            (
                option("target", help="BUCKET[/PREFIX], s3://bucket/prefix or an S3 ARN."),
                option("--token", help="Continue where the previous page stopped (its last line gives it)."),
                PAGE_SIZE,
                JSON,
                *AWS,
            ),
            where=Where.TERMINAL,
            exits="exit 3 if denied",
        ),
        Command(
            "request",
            "Ask your admin for access; queued locally if the endpoint cannot be reached.",
            (
                option("target", help="BUCKET[/PREFIX], s3://bucket/prefix or an S3 ARN you need."),
                option(
                    "--access",
                    choices=[level.value for level in REQUESTABLE],
                    default=AccessLevel.READ.value,
                    help="What you need (default: %(default)s).",
                ),
                option("--reason", required=True, help="Why you need it, for the admin (quote it)."),
                option("--days", type=int, help="Let the grant expire after this many days (1-365)."),
                JSON.only_in(Where.TERMINAL),
                *ADMIN,
            ),
        ),
        Command(
            "requests",
            "Your access requests and their status (sends any queued ones first).",
            (JSON, *ADMIN),
        ),
        Command(
            "cancel",
            "Cancel one of your requests that is not applied yet.",
            (
                option("id", help="The request id (from the requests command)."),
                JSON.only_in(Where.TERMINAL),
                *ADMIN,
            ),
        ),
        Command(
            "simulate",
            "Decide requests with our IAM evaluator, from scenario files (no AWS calls).",
            (
                option("file", help="A JSON scenario, or an array of them; - reads standard input."),
                JSON,
            ),
            where=Where.TERMINAL,
        ),
    )
}
