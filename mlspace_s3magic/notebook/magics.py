"""``%s3access``: one magic whose subcommands come from a table, configurable with ``%config S3Access.x``."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, kwds, magic_arguments, parse_argstring
from IPython.display import display
from tqdm.auto import tqdm
from traitlets import Bool, observe

from mlspace_s3magic.access_requests.actions import (
    InvalidRequest,
    cancel_request,
    file_request,
    my_requests,
    new_request,
)
from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.access_requests.results import Receipt, RequestTable
from mlspace_s3magic.commands import COMMANDS, Where, json_text
from mlspace_s3magic.core.aws import Aws
from mlspace_s3magic.core.browse import DEFAULT_PAGE_SIZE
from mlspace_s3magic.core.check import AccessReport, Checker, S3AccessDenied, Verdict
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.names import InvalidBucketReference, parse_bucket_reference
from mlspace_s3magic.core.reachability import BucketList
from mlspace_s3magic.notebook.widgets import BucketBrowser
from mlspace_s3magic.session import NoAdminEndpoint, S3AccessSession
from mlspace_s3magic.settings import S3AccessSettings

Handler = Callable[..., Any]
HELP_FLAGS = frozenset({"-h", "--help"})
PROGRESS_FROM = 10  # buckets; fewer finish before a bar would be worth drawing


def _subcommand(name: str) -> Callable[[Handler], Handler]:
    """``@magic_arguments`` with the notebook's share of the options ``commands`` declares for ``name``: the
    parser raises ``UsageError`` on a bad invocation and its description is the command's summary."""
    command = COMMANDS[name]

    def decorate(handler: Handler) -> Handler:
        for option in reversed(command.options_in(Where.NOTEBOOK)):
            handler = argument(*option.flags, help=option.help, **option.keywords)(handler)
        handler = kwds(description=command.summary)(handler)
        return magic_arguments(f"%s3access {name}")(handler)  # type: ignore[no-any-return]

    return decorate


class _Result(Protocol):
    def to_dict(self) -> object: ...


R = TypeVar("R", bound=_Result)


def _json_or(result: R, as_json: bool) -> R | None:
    """With ``--json`` the result is printed as the terminal prints it, and nothing is left to display."""
    if as_json:
        print(json_text(result.to_dict()))
        return None
    return result


def _unquoted(text: str) -> str:
    """IPython's argument splitter keeps the quotes around a quoted argument; the user meant the text."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


@magics_class
class S3Access(Magics, S3AccessSettings):
    """Check, list and request access to S3 buckets from an MLSpace notebook.

    Usage: ``%s3access SUBCOMMAND [options]``; ``%s3access`` alone lists the subcommands and
    ``%s3access SUBCOMMAND --help`` explains one.
    """

    raise_on_denied = Bool(
        False,
        help="Raise S3AccessDenied when a check finds the needed access denied (stops unattended runs).",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self._session: S3AccessSession | None = None
        # The one table of subcommands: name -> handler; each one's summary and options are in COMMANDS.
        self.subcommands: dict[str, Callable[[Namespace], Any]] = {
            "whoami": self.whoami,
            "check": self.check,
            "list": self.list_buckets,
            "browse": self.browse,
            "request": self.request,
            "requests": self.requests,
            "cancel": self.cancel,
        }

    # Every session setting makes a new session; raise_on_denied only changes what check does with a report.
    @observe(*S3AccessSettings.class_trait_names(config=True))
    def _settings_changed(self, change: Any) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget clients, identity and the bucket list: after switching credentials outside ``%config``."""
        if self._session is not None:
            self._session.close()
        self._session = None

    @property
    def session(self) -> S3AccessSession:
        """Clients and caches for the current settings, made again only when ``%config`` changes one."""
        if self._session is None:
            self._session = S3AccessSession(self.session_settings())
        return self._session

    @property
    def checker(self) -> Checker:
        return self.session.checker

    @property
    def aws(self) -> Aws:
        return self.checker.aws

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
        lines += (f"  {name:<10} {COMMANDS[name].summary}" for name in self.subcommands)
        return "\n".join(lines)

    @_subcommand("whoami")
    def whoami(self, args: Namespace) -> Identity | None:
        return _json_or(self.checker.identity(), args.json)

    @_subcommand("check")
    def check(self, args: Namespace) -> AccessReport | None:
        try:
            ref = parse_bucket_reference(_unquoted(args.target))
        except InvalidBucketReference as error:
            raise UsageError(str(error)) from None
        report = self.session.check(
            ref,
            key=args.key,
            write_probe=args.write_probe,
            need=args.need,
            owner_account=args.owner_account,
        )
        shown = _json_or(report, args.json)
        verdict = report.verdict(args.need)
        if (args.strict or self.raise_on_denied) and verdict is not Verdict.ALLOWED:
            if shown is not None:
                display(shown)
            raise S3AccessDenied(f"{args.need} access to {ref} is {verdict.value}: see the report above.")
        return shown

    @_subcommand("list")
    def list_buckets(self, args: Namespace) -> BucketList | None:
        return _json_or(self._buckets(refresh=args.refresh), args.json)

    def _buckets(self, *, refresh: bool = False) -> BucketList:
        """This session's bucket list, probed again only when asked or when the settings changed."""
        return self.session.buckets(
            refresh=refresh,
            progress=lambda total: tqdm(
                total=total, desc="Probing buckets", leave=False, disable=total < PROGRESS_FROM
            ),
        )

    @_subcommand("browse")
    def browse(self, args: Namespace) -> BucketBrowser:
        ref = None
        if args.target:
            try:
                ref = parse_bucket_reference(_unquoted(args.target))
            except InvalidBucketReference as error:
                raise UsageError(str(error)) from None
        if not 1 <= args.page_size <= DEFAULT_PAGE_SIZE:
            raise UsageError(
                f"--page-size must be between 1 and {DEFAULT_PAGE_SIZE} (S3's most per request)."
            )
        buckets = None if ref else self._buckets(refresh=args.refresh)
        return BucketBrowser(
            self.aws,
            buckets,
            checker=self.session,
            start=ref,
            page_size=args.page_size,
            shell=self.shell,
            request_access=(lambda new: file_request(self._admin(), new))
            if self.session.admin_url()
            else None,
        )

    def _admin(self) -> AdminClient:
        try:
            return self.session.admin()
        except NoAdminEndpoint as error:
            raise UsageError(str(error)) from None

    @_subcommand("request")
    def request(self, args: Namespace) -> Receipt:
        try:
            ref = parse_bucket_reference(_unquoted(args.target))
            new = new_request(ref, args.access, _unquoted(args.reason), args.days)
        except (InvalidBucketReference, InvalidRequest) as error:
            raise UsageError(str(error)) from None
        return file_request(self._admin(), new)

    @_subcommand("requests")
    def requests(self, args: Namespace) -> RequestTable | None:
        return _json_or(my_requests(self._admin()), args.json)

    @_subcommand("cancel")
    def cancel(self, args: Namespace) -> RequestTable:
        admin = self._admin()
        cancel_request(admin, args.id)
        return my_requests(admin)
