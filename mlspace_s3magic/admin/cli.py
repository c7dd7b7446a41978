"""``s3access admin ...``: run the endpoint, and review, apply and revoke requests from a terminal."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlspace_s3magic.access_requests.client import ADMIN_URL_ENV, AdminClient
from mlspace_s3magic.admin.auth import (
    TOKEN_CALLER_ARN,
    check_account,
    check_admin_arn_pattern,
    create_admin_token,
    token_caller_arn,
)
from mlspace_s3magic.admin.reconcile import ReconcileReport
from mlspace_s3magic.admin.service import DENIAL_REASON_LENGTH
from mlspace_s3magic.admin.views import verification_data
from mlspace_s3magic.core.access import AccessRequest, RequestView, SharedBucket
from mlspace_s3magic.core.aws import Aws, AwsSettings
from mlspace_s3magic.core.errors import InvalidInput, Unavailable
from mlspace_s3magic.core.files import state_dir
from mlspace_s3magic.core.problems import plain_problems
from mlspace_s3magic.core.render import columns, terminal_safe

ACTIONS = ("approve", "deny", "apply", "revoke")
GREEN, RED, RESET = "\033[32m", "\033[31m", "\033[0m"


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = commands.add_parser("admin", help="the admin endpoint: serve it, review and apply requests")
    sub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the admin endpoint (with the MLSpace admin's AWS credentials)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: %(default)s)")
    serve.add_argument(
        "--store",
        default=f"sqlite://{default_store_path()}",
        help="sqlite:///ABSOLUTE/PATH (default: %(default)s) or dynamodb://TABLE",
    )
    serve.add_argument(
        "--admin-arn",
        action="append",
        default=[],
        type=_admin_arn,
        metavar="PATTERN",
        help="ARN pattern (fnmatch) of admins, in a literal account; a role session also matches its role "
        "(repeatable)",
    )
    serve.add_argument("--token-file", type=Path, help="a local admin token file (see `admin token`)")
    serve.add_argument(
        "--token-identity",
        type=_token_identity,
        default=TOKEN_CALLER_ARN,
        metavar="ARN",
        help="the admin's own AWS principal, which the token acts as, so it never approves that admin's own "
        "requests (an IAM user, role or assumed-role ARN; default: %(default)s)",
    )
    serve.add_argument(
        "--account",
        action="append",
        default=[],
        type=_account,
        help="an MLSpace account whose principals may call (repeatable; default: the endpoint's own, "
        "from its credentials); callers of any other account get 403",
    )
    for limit, default, what in (
        ("proofs", 60, "verified identity proofs per caller"),
        ("diagnoses", 30, "diagnoses (/v1/diagnose) per caller"),
        ("refusals", 60, "refused attempts (401) per source address"),
    ):
        serve.add_argument(
            f"--{limit}-per-minute",
            type=_positive,
            default=default,
            metavar="N",
            help=f"rate limit: {what} a minute, over which 429 with Retry-After (default: %(default)s)",
        )
    serve.add_argument("--audience", help="the endpoint's name in proofs (default: http://HOST:PORT)")
    serve.add_argument(
        "--sts-endpoint", help="STS used to verify proofs (default: AWS_ENDPOINT_URL or AWS's)"
    )
    serve.add_argument(
        "--region", default="us-east-1", help="the region of STS and IAM (default: %(default)s)"
    )
    serve.add_argument("--webhook", help="URL to POST a JSON notice of new requests and decisions to")
    serve.add_argument(
        "--expiry-seconds",
        type=float,
        default=60.0,
        help="how often grants past their days are revoked (default: %(default)s)",
    )
    serve.set_defaults(handler=cmd_serve)

    token = sub.add_parser("token", help="create a local admin token file (mode 0600)")
    token.add_argument("path", type=Path, help="where to write it")
    token.add_argument("--overwrite", action="store_true", help="replace an existing token file")
    token.set_defaults(handler=cmd_token)

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--url", default=os.environ.get(ADMIN_URL_ENV), help=f"the endpoint (default: ${ADMIN_URL_ENV})"
    )
    client.add_argument("--token-file", type=Path, help="use this admin token instead of AWS credentials")
    client.add_argument("--json", action="store_true", help="print JSON instead of text")

    listing = sub.add_parser("requests", parents=[client], help="list requests (admins see all)")
    listing.add_argument("--status", help="only this status (pending, approved, applied, ...)")
    listing.set_defaults(handler=cmd_requests)
    show = sub.add_parser("show", parents=[client], help="a request with its plan (as a diff) and history")
    show.add_argument("id", help="the request id")
    show.set_defaults(handler=cmd_show)
    for action in ACTIONS:
        parser = sub.add_parser(action, parents=[client], help=f"{action} a request")
        parser.add_argument("id", help="the request id")
        if action == "deny":
            low, high = DENIAL_REASON_LENGTH
            parser.add_argument(
                "--reason",
                required=True,
                help=f"why, for the requester, who reads it with their requests ({low} to {high} characters)",
            )
        parser.set_defaults(handler=cmd_action, action=action, reason=None)
    audit = sub.add_parser("audit", parents=[client], help="the audit log, oldest first")
    audit.add_argument("--request", help="only this request's entries")
    audit.set_defaults(handler=cmd_audit)
    buckets = sub.add_parser("buckets", parents=[client], help="the registry of shared buckets")
    buckets.add_argument("--add", metavar="BUCKET", help="register (or update) this bucket")
    buckets.add_argument("--owner-account", help="with --add: the owner's 12-digit account id")
    buckets.add_argument(
        "--owner-role", help="with --add: a role in the owner's account the endpoint may assume"
    )
    buckets.add_argument("--region", help="with --add: the bucket's region")
    buckets.add_argument("--description", default="", help="with --add: what is in it")
    buckets.add_argument("--remove", metavar="BUCKET", help="remove this bucket from the registry")
    buckets.set_defaults(handler=cmd_buckets)
    reconcile = sub.add_parser(
        "reconcile",
        parents=[client],
        help="attach grant policies to new members' roles, put back removed statements, list orphans",
    )
    reconcile.add_argument(
        "--apply", action="store_true", help="also remove statements of ours that no live grant owns"
    )
    reconcile.set_defaults(handler=cmd_reconcile)


def _token_identity(text: str) -> str:
    try:
        token_caller_arn(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _account(text: str) -> str:
    try:
        return check_account(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def _admin_arn(text: str) -> str:
    try:
        return check_admin_arn_pattern(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def default_store_path() -> Path:
    return state_dir("admin.db")


def cmd_serve(args: argparse.Namespace) -> int:
    from mlspace_s3magic.admin.server import ServerConfig, serve  # uvicorn only when serving

    config = ServerConfig(
        host=args.host,
        port=args.port,
        store_url=args.store,
        audience=args.audience,
        sts_endpoint=args.sts_endpoint,
        region=args.region,
        admin_arn_patterns=tuple(args.admin_arn),
        token_file=args.token_file,
        accounts=tuple(args.account),
        token_identity=args.token_identity,
        proofs_per_minute=args.proofs_per_minute,
        refusals_per_minute=args.refusals_per_minute,
        diagnoses_per_minute=args.diagnoses_per_minute,
        webhook_url=args.webhook,
        expiry_seconds=args.expiry_seconds,
    )
    print(f"Admin endpoint on {config.url} (store {args.store}); Ctrl-C stops it.", flush=True)
    serve(config)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    create_admin_token(args.path, overwrite=args.overwrite)
    print(f"Wrote an admin token to {args.path} (mode 0600); pass --token-file {args.path}.")
    return 0


def _client(args: argparse.Namespace) -> AdminClient:
    if not args.url:
        raise Unavailable(f"Which endpoint? Pass --url or set {ADMIN_URL_ENV}.")
    if args.token_file:
        try:
            token = args.token_file.read_text().strip()
        except OSError as error:
            raise InvalidInput(f"Cannot read the token file {args.token_file}: {error.strerror}.") from None
        return AdminClient(args.url, token=token)
    return AdminClient(args.url, aws=Aws(AwsSettings()))


# A line our own code paints (a diff's + and - lines), as (colour, text); the text is still made inert.
Painted = tuple[str, str]
Line = str | Painted


def screen(lines: Iterable[Line], *, colour: bool = False) -> str:
    """The one way text reaches the admin's terminal: each line with every control character shown as its
    escape (a reason, description, bucket, prefix, ARN, actor, note, problem, diff or command cannot move
    the cursor, erase a line, or break one line into two), then our own colours when ``colour``."""
    shown = []
    for line in lines:
        paint, text = line if isinstance(line, tuple) else ("", line)
        safe = terminal_safe(text)
        shown.append(f"{paint}{safe}{RESET}" if colour and paint else safe)
    return "\n".join(shown)


def _print(lines: Iterable[Line] | str, *, colour: bool = False) -> None:
    print(screen(lines.splitlines() if isinstance(lines, str) else lines, colour=colour))


def _json(data: Any) -> str:
    """JSON with every character past ASCII escaped (``\\u202e``), so it prints inert and stays valid."""
    return json.dumps(data, indent=2, ensure_ascii=True)


REQUEST_HEADER = ("ID", "STATUS", "ACCESS", "REQUESTER", "TARGET", "REASON")


def _request_cells(request: AccessRequest) -> tuple[str, ...]:
    who = request.requester.user or request.requester.arn
    target = f"s3://{request.bucket}/{request.prefix}"
    return request.id, request.status.value, request.access.value, who, target, request.reason


def _request_line(request: AccessRequest) -> str:
    """One request on one line (made inert where it is printed, see :func:`screen`)."""
    return columns((), [_request_cells(request)]).text()


def cmd_requests(args: argparse.Namespace) -> int:
    requests = _client(args).requests(args.status)
    if args.json:
        _print(_json([r.model_dump(mode="json") for r in requests]))
    elif requests:
        _print(columns(REQUEST_HEADER, [_request_cells(r) for r in requests]).text())
    else:
        _print(["(no requests)"])
    return 0


def view_lines(view: RequestView) -> list[Line]:
    """A request, its plan layer by layer (diff lines painted), and its history."""
    request = view.request
    lines: list[Line] = [_request_line(request), f"requester: {request.requester.arn}"]
    if request.decision_reason:
        lines.append(f"denied because: {request.decision_reason}")
    if request.expires_at:
        lines.append(f"expires: {request.expires_at.isoformat()}")
    plan = request.plan or {}
    lines += [f"PROBLEM: {problem}" for problem in plan.get("problems", [])]
    lines += [f"note: {note}" for note in plan.get("notes", [])]
    for change in plan.get("changes", []):
        lines += [
            "",
            f"== {change['layer']}: {change['target']} (account {change['account']}, "
            f"applied by {change['applied_by']})",
        ]
        lines += [f"WARNING: {warning}" for warning in change.get("warnings", [])]
        for line in str(change.get("diff", "")).splitlines():
            painted = GREEN if line.startswith("+") else RED if line.startswith("-") else ""
            lines.append((painted, line) if painted else line)
        if change.get("applied_by") == "owner" and change.get("command"):
            lines += ["-- the owner runs:", *str(change["command"]).splitlines()]
    lines += [summary.line() for summary in request.summary or []]
    if view.history:
        lines += ["", "history:"]
        lines += [
            f"  {e.at.isoformat()}  {e.actor}  {e.action}  {(e.from_status or '-')}->{(e.to_status or '-')}"
            for e in view.history
        ]
    return lines


def render_view(view: RequestView, *, colour: bool) -> str:
    return screen(view_lines(view), colour=colour)


def cmd_show(args: argparse.Namespace) -> int:
    view = _client(args).show(args.id)
    if args.json:
        _print(_json(view.model_dump(mode="json")))
    else:
        _print(view_lines(view), colour=sys.stdout.isatty())
    return 0


def verification_lines(verification: dict[str, Any]) -> list[str]:
    """What the verification after an apply (or revoke) found: the requester's verdict per capability
    over the live layers, with the layers and reasons that block one not allowed, and what it could not
    read (the data the JupyterLab review panel shows, from ``views.verification_data``)."""
    found = verification_data(verification)
    checks = found["capabilities"]
    lines = [f"verification as {found['principal'] or '?'}: {found['verdict']}"]
    if checks:
        table = columns(
            ("CAPABILITY", "VERDICT", "BLOCKED BY"),
            [
                (check["capability"], check["verdict"], ", ".join(check["blocked_by"]) or "-")
                for check in checks
            ],
            below=[check["reasons"] for check in checks],
        )
        lines += table.text().splitlines()
    return lines + [f"note: {note}" for note in found["notes"]]


def cmd_action(args: argparse.Namespace) -> int:
    request = _client(args).act(args.id, args.action, reason=args.reason)
    if args.json:
        _print(_json(request.model_dump(mode="json")))
        return 0
    lines = [_request_line(request)]
    verification = (request.result or {}).get("verification") if args.action in ("apply", "revoke") else None
    if isinstance(verification, dict):
        lines += verification_lines(verification)
    _print(lines)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    entries = _client(args).audit(args.request)
    if args.json:
        _print(_json([e.model_dump(mode="json") for e in entries]))
    elif entries:
        rows = [
            (
                str(e.seq),
                e.at.isoformat(),
                e.actor,
                e.action,
                e.request_id or "-",
                f"{e.from_status or '-'}->{e.to_status or '-'}",
            )
            for e in entries
        ]
        _print(columns(("SEQ", "AT", "ACTOR", "ACTION", "REQUEST", "STATUS"), rows).text())
    else:
        _print(["(no entries)"])
    return 0


def cmd_buckets(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.add:
        client.put_bucket(_shared_bucket(args))
    if args.remove:
        client.delete_bucket(args.remove)
    buckets = client.buckets()
    if args.json:
        _print(_json([b.model_dump(mode="json") for b in buckets]))
    elif buckets:
        rows = [
            (
                b.bucket,
                b.owner_account or "-",
                b.region or "-",
                b.owner_role_arn or "(owner applies by hand)",
                b.description,
            )
            for b in buckets
        ]
        _print(columns(("BUCKET", "OWNER ACCOUNT", "REGION", "OWNER ROLE", "DESCRIPTION"), rows).text())
    else:
        _print(["(no buckets registered)"])
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    data = _client(args).reconcile(remove_orphans=args.apply)
    _print(_json(data) if args.json else str(ReconcileReport.from_dict(data)))
    return 0


def _shared_bucket(args: argparse.Namespace) -> SharedBucket:
    """The registry entry ``--add`` describes, or an error naming each field and rule (never its value,
    which may hold what a terminal would act on)."""
    try:
        return SharedBucket(
            bucket=args.add,
            owner_account=args.owner_account,
            region=args.region,
            description=args.description,
            owner_role_arn=args.owner_role,
        )
    except ValidationError as error:
        problems = plain_problems(error.errors(), SharedBucket, {"owner_account": "The owner's account"})
        raise InvalidInput(f"Nothing was registered: {problems}.") from None
