"""``s3access``: the notebook magic's commands in a terminal; the admin's and the sandbox's come from their
packages."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlspace_s3magic.access_requests.actions import cancel_request, file_request, my_requests, new_request
from mlspace_s3magic.access_requests.results import Receipt, RequestTable
from mlspace_s3magic.admin.cli import add_admin_commands
from mlspace_s3magic.commands import COMMANDS, Where, json_text
from mlspace_s3magic.core.aws import AwsSettings
from mlspace_s3magic.core.browse import DEFAULT_PAGE_SIZE, BrowseDenied, list_level
from mlspace_s3magic.core.check import Verdict
from mlspace_s3magic.core.errors import EXIT_CODE, InvalidInput, NotAllowed, S3MagicError, meaning
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.policy import EvaluationResult, PolicyValidationError, simulate
from mlspace_s3magic.core.render import terminal_safe
from mlspace_s3magic.sandbox.cli import add_sandbox_commands
from mlspace_s3magic.session import S3AccessSession, SessionSettings

EXIT_DENIED = EXIT_CODE[NotAllowed]  # also what `check` answers for a denied verdict


def _session(args: argparse.Namespace, **settings: Any) -> contextlib.closing[S3AccessSession]:
    """The session the magic and the server use, from the command's AWS options and ``settings``; closed
    when the command is done."""
    aws = AwsSettings(region=args.region, endpoint_url=args.endpoint_url, profile=args.profile)
    return contextlib.closing(S3AccessSession(SessionSettings(aws=aws, **settings)))


def _print_json(data: object) -> None:
    print(json_text(data))


def cmd_whoami(args: argparse.Namespace) -> int:
    with _session(args) as session:
        identity = session.checker.identity()
    if args.json:
        _print_json(identity.to_dict())
    else:
        print(identity)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    ref = parse_bucket_reference(args.target)
    with _session(args) as session:
        report = session.check(
            ref,
            key=args.key,
            write_probe=args.write_probe,
            need=args.need,
            owner_account=args.owner_account,
        )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report)
    verdict = report.verdict(args.need)
    if verdict is Verdict.UNKNOWN:
        print(f"s3access: could not tell whether {args.need} access to {ref} is allowed.", file=sys.stderr)
        return 1
    return 0 if verdict is Verdict.ALLOWED else EXIT_DENIED


def cmd_list(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm  # only the list command draws a progress bar

    with _session(
        args, registry_path=args.registry, extra_buckets=tuple(args.extra_bucket), list_workers=args.workers
    ) as session:
        buckets = session.buckets(
            progress=lambda total: tqdm(
                total=total,
                desc="Probing buckets",
                leave=False,
                disable=total < 10 or not sys.stderr.isatty(),
            ),
        )
    if args.json:
        _print_json(buckets.to_dict())
        for note in buckets.notes:  # text output lists them under the table
            print(f"s3access: {note}", file=sys.stderr)
    else:
        print(buckets)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    if not 1 <= args.page_size <= DEFAULT_PAGE_SIZE:
        raise InvalidInput(f"--page-size must be between 1 and {DEFAULT_PAGE_SIZE}.")
    ref = parse_bucket_reference(args.target)
    try:
        with _session(args) as session:
            page = list_level(session.aws, ref, token=args.token, page_size=args.page_size)
    except BrowseDenied as error:
        print(
            f"s3access: {error} `s3access check {args.target}` says which layer and the fix.", file=sys.stderr
        )
        return EXIT_DENIED
    if args.json:
        _print_json(page.to_dict())
    else:
        print(page)
    return 0


def _show(result: Receipt | RequestTable, as_json: bool) -> None:
    if as_json:
        _print_json(result.to_dict())
    else:
        print(result)


def cmd_request(args: argparse.Namespace) -> int:
    new = new_request(parse_bucket_reference(args.target), args.access, args.reason, args.days)
    with _session(args, admin_url=args.url) as session:
        _show(file_request(session.admin(), new), args.json)
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    with _session(args, admin_url=args.url) as session:
        _show(my_requests(session.admin()), args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with _session(args, admin_url=args.url) as session:
        cancel_request(session.admin(), args.id)
        _show(my_requests(session.admin()), args.json)
    return 0


def _read_json(source: str) -> object:
    """Parse FILE (or standard input for ``-``), saying where the JSON is broken if it is."""
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise InvalidInput(f"Cannot read {name}: {error.strerror}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(
            f"{name} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except (ValueError, RecursionError) as error:  # numbers too long, or nesting too deep, to read
        raise InvalidInput(f"{name} is not JSON we can read: {error}") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    batch, outcomes = simulate(_read_json(args.file))

    def as_json(outcome: EvaluationResult | PolicyValidationError) -> dict[str, object]:
        if isinstance(outcome, PolicyValidationError):
            return {"error": str(outcome), "path": outcome.path}
        return outcome.to_dict()

    if args.json:
        _print_json([as_json(o) for o in outcomes] if batch else as_json(outcomes[0]))
    else:
        for index, outcome in enumerate(outcomes):
            title = f"Scenario {index}: " if batch else ""
            print(
                f"{title}invalid: {outcome}"
                if isinstance(outcome, PolicyValidationError)
                else f"{title}{outcome}"
            )
            if batch and index < len(outcomes) - 1:
                print()
    failures = [o for o in outcomes if isinstance(o, PolicyValidationError)]
    if failures and not batch:
        print(f"s3access: {failures[0]}", file=sys.stderr)
    return EXIT_CODE[InvalidInput] if failures else 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3access", description="See what S3 access you have from MLSpace, and why a bucket is denied."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        if Where.TERMINAL in command.where:
            sub = commands.add_parser(command.name, help=command.terminal_help, description=command.summary)
            for option in command.options_in(Where.TERMINAL):
                option.add_to(sub)
            sub.set_defaults(handler=HANDLERS[command.name])
    add_admin_commands(commands)
    add_sandbox_commands(commands)
    return parser


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "whoami": cmd_whoami,
    "check": cmd_check,
    "list": cmd_list,
    "ls": cmd_ls,
    "request": cmd_request,
    "requests": cmd_requests,
    "cancel": cmd_cancel,
    "simulate": cmd_simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except S3MagicError as error:
        print(f"s3access: {terminal_safe(str(error))}", file=sys.stderr)
        return EXIT_CODE[meaning(error)]
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (say, `| head`) left early: stop quietly, as a filter should.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
