"""``s3access``: the notebook magic's commands in a terminal; the admin's and the sandbox's come from their
packages."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mlspace_s3magic.access_requests.actions import (
    InvalidRequest,
    cancel_request,
    file_request,
    my_requests,
    new_request,
)
from mlspace_s3magic.access_requests.client import ADMIN_URL_ENV, AdminClient, admin_url_from_environment
from mlspace_s3magic.access_requests.outbox import Outbox, default_outbox_dir
from mlspace_s3magic.access_requests.results import Receipt, RequestTable
from mlspace_s3magic.admin.cli import add_admin_commands
from mlspace_s3magic.core.aws import Aws, AwsSettings
from mlspace_s3magic.core.browse import DEFAULT_PAGE_SIZE, BrowseDenied, list_level
from mlspace_s3magic.core.check import Verdict
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.identity import whoami
from mlspace_s3magic.core.names import InvalidBucketReference, parse_bucket_reference
from mlspace_s3magic.core.policy import EvaluationResult, PolicyValidationError, simulate
from mlspace_s3magic.core.reachability import DEFAULT_WORKERS
from mlspace_s3magic.core.registry import default_registry_path
from mlspace_s3magic.core.render import terminal_safe
from mlspace_s3magic.sandbox.cli import add_sandbox_commands
from mlspace_s3magic.session import S3AccessSession, SessionSettings

EXIT_BAD_INVOCATION = 2  # argparse's own status for a bad command line
EXIT_DENIED = 3


def _aws_from(args: argparse.Namespace) -> Aws:
    return Aws(AwsSettings(region=args.region, endpoint_url=args.endpoint_url, profile=args.profile))


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def cmd_whoami(args: argparse.Namespace) -> int:
    identity = whoami(_aws_from(args))
    if args.json:
        _print_json(identity.to_dict())
    else:
        print(identity)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    ref = parse_bucket_reference(args.target)
    session = S3AccessSession(SessionSettings(), aws=_aws_from(args))
    try:
        report = session.checker.check(
            ref,
            key=args.key,
            write_probe=args.write_probe,
            need=args.need,
            owner_account=args.owner_account or session.owner_account(ref.bucket),
        )
    finally:
        session.close()
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

    session = S3AccessSession(
        SessionSettings(
            region=args.region,
            endpoint_url=args.endpoint_url,
            profile=args.profile,
            registry_path=args.registry,
            extra_buckets=tuple(args.extra_bucket),
            list_workers=args.workers,
        )
    )
    try:
        buckets = session.buckets(
            progress=lambda total: tqdm(
                total=total,
                desc="Probing buckets",
                leave=False,
                disable=total < 10 or not sys.stderr.isatty(),
            ),
        )
    finally:
        session.close()
    if args.json:
        _print_json(buckets.to_dict())
        for note in buckets.notes:  # text output lists them under the table
            print(f"s3access: {note}", file=sys.stderr)
    else:
        print(buckets)
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    if not 1 <= args.page_size <= DEFAULT_PAGE_SIZE:
        print(f"s3access: --page-size must be between 1 and {DEFAULT_PAGE_SIZE}.", file=sys.stderr)
        return EXIT_BAD_INVOCATION
    ref = parse_bucket_reference(args.target)
    try:
        page = list_level(_aws_from(args), ref, token=args.token, page_size=args.page_size)
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


def _admin_client(args: argparse.Namespace) -> AdminClient:
    if not args.url:
        raise S3MagicError(f"Which admin endpoint? Pass --url or set {ADMIN_URL_ENV}.")
    return AdminClient(args.url, aws=_aws_from(args), outbox=Outbox(default_outbox_dir()))


def _show(result: Receipt | RequestTable, as_json: bool) -> None:
    if as_json:
        _print_json(result.to_dict())
    else:
        print(result)


def cmd_request(args: argparse.Namespace) -> int:
    try:
        new = new_request(parse_bucket_reference(args.target), args.access, args.reason, args.days)
    except InvalidRequest as error:
        print(f"s3access: {terminal_safe(str(error))}", file=sys.stderr)
        return EXIT_BAD_INVOCATION
    _show(file_request(_admin_client(args), new), args.json)
    return 0


def cmd_requests(args: argparse.Namespace) -> int:
    _show(my_requests(_admin_client(args)), args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    client = _admin_client(args)
    cancel_request(client, args.id)
    _show(my_requests(client), args.json)
    return 0


def _read_json(source: str) -> object:
    """Parse FILE (or standard input for ``-``), saying where the JSON is broken if it is."""
    name = "standard input" if source == "-" else source
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as error:
        raise S3MagicError(f"Cannot read {name}: {error.strerror}.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise S3MagicError(
            f"{name} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    except (ValueError, RecursionError) as error:  # numbers too long, or nesting too deep, to read
        raise S3MagicError(f"{name} is not JSON we can read: {error}") from None


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
    return 1 if failures else 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s3access", description="See what S3 access you have from MLSpace, and why a bucket is denied."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    aws_options = argparse.ArgumentParser(add_help=False)
    aws_options.add_argument("--profile", help="AWS profile to use (default: boto3's usual lookup)")
    aws_options.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION or the profile's)")
    aws_options.add_argument(
        "--endpoint-url", help="AWS endpoint (default: AWS_ENDPOINT_URL, else AWS's own)"
    )

    who = commands.add_parser("whoami", parents=[aws_options], help="who you are to AWS and to MLSpace")
    who.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    who.set_defaults(handler=cmd_whoami)

    check = commands.add_parser(
        "check",
        parents=[aws_options],
        help="can you list, read, write a bucket? what blocks it, the fix (exit 0 allowed, 3 denied)",
    )
    check.add_argument("target", help="BUCKET[/PREFIX], s3://bucket/prefix, an S3 ARN or an access point ARN")
    check.add_argument("--key", help="probe reading this object (default: the first key listed)")
    check.add_argument(
        "--write-probe", action="store_true", help="also test writing: put, then delete, a marker"
    )
    check.add_argument(
        "--need",
        choices=("list", "read", "write"),
        default="read",
        help="the access you need, which sets the exit status (default: %(default)s)",
    )
    check.add_argument(
        "--owner-account", help="the bucket owner's account id (default: the one the admin's registry names)"
    )
    check.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    check.set_defaults(handler=cmd_check)

    listing = commands.add_parser(
        "list", parents=[aws_options], help="the buckets you may reach, each with its status"
    )
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    listing.add_argument(
        "--refresh",
        action="store_true",
        help="probe again (a terminal run always does; kept so the magic's options work here too)",
    )
    listing.add_argument(
        "--registry",
        type=Path,
        default=default_registry_path(),
        help="the shared-bucket registry file (default: $S3ACCESS_REGISTRY or %(default)s)",
    )
    listing.add_argument(
        "--extra-bucket",
        action="append",
        default=[],
        metavar="BUCKET",
        help="a bucket of your own to include (repeatable)",
    )
    listing.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="buckets probed at once (default: %(default)s)"
    )
    listing.set_defaults(handler=cmd_list)

    ls = commands.add_parser(
        "ls", parents=[aws_options], help="one level of a bucket, a page at a time (exit 3 if denied)"
    )
    ls.add_argument("target", help="BUCKET[/PREFIX], s3://bucket/prefix or an S3 ARN")
    ls.add_argument("--token", help="continue where the previous page stopped (its last line gives it)")
    ls.add_argument(
        "--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="entries per page (default: %(default)s)"
    )
    ls.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    ls.set_defaults(handler=cmd_ls)

    admin_url = argparse.ArgumentParser(add_help=False)
    admin_url.add_argument(
        "--url", default=admin_url_from_environment(), help=f"the admin endpoint (default: ${ADMIN_URL_ENV})"
    )
    admin_url.add_argument("--json", action="store_true", help="print JSON instead of text")
    request = commands.add_parser(
        "request", parents=[aws_options, admin_url], help="ask the admin for access (queued if unreachable)"
    )
    request.add_argument("target", help="BUCKET[/PREFIX], s3://bucket/prefix or an S3 ARN")
    request.add_argument("--access", choices=("read", "read-write"), default="read", help="default: read")
    request.add_argument("--reason", required=True, help="why you need it, for the admin")
    request.add_argument("--days", type=int, help="let the grant expire after this many days (1-365)")
    request.set_defaults(handler=cmd_request)
    requests = commands.add_parser(
        "requests", parents=[aws_options, admin_url], help="your access requests (sends queued ones first)"
    )
    requests.set_defaults(handler=cmd_requests)
    cancel = commands.add_parser(
        "cancel", parents=[aws_options, admin_url], help="cancel one of your requests"
    )
    cancel.add_argument("id", help="the request id")
    cancel.set_defaults(handler=cmd_cancel)

    sim = commands.add_parser(
        "simulate", help="decide requests with our IAM evaluator, from scenario files (no AWS calls)"
    )
    sim.add_argument("file", help="a JSON scenario, or an array of them; - reads standard input")
    sim.add_argument("--json", action="store_true", help="print JSON results instead of explanations")
    sim.set_defaults(handler=cmd_simulate)

    add_admin_commands(commands)

    add_sandbox_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InvalidBucketReference as error:
        print(f"s3access: {terminal_safe(str(error))}", file=sys.stderr)
        return EXIT_BAD_INVOCATION
    except S3MagicError as error:
        print(f"s3access: {terminal_safe(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (say, `| head`) left early: stop quietly, as a filter should.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
