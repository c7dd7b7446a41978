"""``s3access sandbox ...``: start a local AWS shaped like MLSpace, and act in it as its principals."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from mlspace_s3magic.core.errors import Conflict, InvalidInput, NotFound, S3MagicError, Unavailable
from mlspace_s3magic.sandbox.state import STATE_DIR_ENV, STATE_FILE_NAME, SandboxState, default_state_dir

if TYPE_CHECKING:
    from mlspace_s3magic.sandbox.admin_endpoint import AdminEndpoint
    from mlspace_s3magic.sandbox.server import Sandbox

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _start_sandbox(args: argparse.Namespace) -> tuple[Sandbox, SandboxState, Path]:
    """Start and seed the sandbox, and publish its state; imported late so plain use needs no moto."""
    try:
        from mlspace_s3magic.sandbox.server import Sandbox
        from mlspace_s3magic.sandbox.world import REGISTRY
    except ImportError as error:
        raise Unavailable(
            f"The sandbox needs moto ({error.name} is missing): pip install 'mlspace-s3magic[sandbox]'."
        ) from None
    if args.host not in LOOPBACK_HOSTS:
        print(
            f"warning: the sandbox will listen on {args.host}, not loopback; anyone who can reach it "
            "can use or reset it.",
            file=sys.stderr,
        )
    _refuse_a_running_sandbox(args.state_dir)
    sandbox = Sandbox(host=args.host, port=args.port, shared_role=args.shared_role)
    state = sandbox.start()
    return sandbox, state, state.save(args.state_dir, REGISTRY)


def _refuse_a_running_sandbox(state_dir: Path) -> None:
    """Another sandbox over a running one's folder would replace its ``sandbox.json`` under its clients (and
    with the admin endpoint, empty its store): a ``sandbox.json`` whose endpoint answers means one runs."""
    try:
        running = SandboxState.load(state_dir)
    except S3MagicError:  # none there, or unreadable: nothing to protect
        return
    address = urllib.parse.urlsplit(running.endpoint_url)
    if address.hostname is None or address.port is None:
        return
    try:
        socket.create_connection((address.hostname, address.port), timeout=1).close()
    except OSError:  # left behind by a sandbox that was killed
        return
    raise Conflict(
        f"A sandbox is already running for {state_dir} on {running.endpoint_url}: stop it, or give another "
        f"--state-dir (if none runs, remove {state_dir / STATE_FILE_NAME})."
    )


def _wait_for_stop_signal() -> None:
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stop.wait()


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    sandbox, state, state_path = _start_sandbox(args)
    try:
        print(
            f"Sandbox listening on {sandbox.endpoint_url} ({state.mode}; state in {state_path}); Ctrl-C "
            "stops it.",
            flush=True,
        )
        _wait_for_stop_signal()
    finally:
        sandbox.stop()
        state_path.unlink(missing_ok=True)
    return 0


def cmd_sandbox_env(args: argparse.Namespace) -> int:
    state = SandboxState.load(args.state_dir)
    print(state.shell_exports(args.principal))
    if state.shared_role:  # on stderr, so `eval "$(...)"` reads only the exports
        print(f"s3access: this sandbox runs MLSpace in {state.mode}.", file=sys.stderr)
    return 0


def cmd_sandbox_run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise InvalidInput(
            "Give the command to run after `--`, e.g. `s3access sandbox run --as alice@demo -- jupyter lab`."
        )
    if args.admin_port is not None and not args.admin_endpoint:
        raise InvalidInput("--admin-port is the admin endpoint's port: give --admin-endpoint too.")
    sandbox, _, state_path = _start_sandbox(args)
    try:
        with contextlib.ExitStack() as stack:
            admin = stack.enter_context(_serve_admin_endpoint(args)) if args.admin_endpoint else None
            state = SandboxState.load(args.state_dir)  # with the endpoint's URL, which the child gets
            environment = state.process_environment(args.principal, os.environ)
            environment[STATE_DIR_ENV] = str(args.state_dir.resolve())
            beside = f", admin endpoint on {admin.url}" if admin else ""
            print(
                f"Sandbox listening on {state.endpoint_url} ({state.mode}; state in {state_path}){beside}; "
                f"running {command[0]} as {args.principal}.",
                flush=True,
            )
            if admin:
                print(
                    "Started fresh: a newly seeded sandbox and an empty admin store (an earlier run's "
                    "requests went with its grants).",
                    flush=True,
                )
                print(admin.admin_instructions(), flush=True)
            try:
                child = subprocess.Popen(command, env=environment)
            except FileNotFoundError as error:
                raise NotFound(f"Cannot run {command[0]!r}: {error.strerror}.") from None
            return _supervise(child, command[0])
    finally:
        sandbox.stop()
        state_path.unlink(missing_ok=True)


def _supervise(child: subprocess.Popen[bytes], name: str) -> int:
    """Wait for ``child`` to finish (then the sandbox stops): one Ctrl-C stops it, a second kills it.

    The terminal sends Ctrl-C to the child too, and a server may only ask about it (Jupyter asks "Shut down
    this Jupyter server (y/[n])?" and runs on), so the first also sends it SIGTERM, which stops it without
    asking; a child that ignores that too is killed by the second.
    """
    interrupts = 0

    def interrupt(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            print(f"Stopping {name}, then the sandbox (Ctrl-C again kills it).", file=sys.stderr, flush=True)
            child.terminate()
        else:
            child.kill()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signum))
    status = child.wait()
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as shells say


def _serve_admin_endpoint(args: argparse.Namespace) -> contextlib.AbstractContextManager[AdminEndpoint]:
    """The demo's admin endpoint beside the sandbox; imported late, as only it needs uvicorn and FastAPI."""
    try:
        from mlspace_s3magic.sandbox.admin_endpoint import serve_admin_endpoint
    except ImportError as error:
        raise Unavailable(
            f"The admin endpoint needs {error.name}, which is missing: pip install 'mlspace-s3magic[admin]'."
        ) from None
    # The sandbox was just seeded, so requests kept from an earlier run would name grants it lacks.
    return serve_admin_endpoint(args.state_dir, port=args.admin_port or 0, fresh=True)


def add_sandbox_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sandbox = commands.add_parser("sandbox", help="a local AWS shaped like MLSpace, for demos and tests")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="COMMAND")
    state_dir = argparse.ArgumentParser(add_help=False)
    state_dir.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help=f"folder of the sandbox's {STATE_FILE_NAME} (default: %(default)s)",
    )
    listen = argparse.ArgumentParser(add_help=False)
    listen.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    listen.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    listen.add_argument(
        "--shared-role",
        action="store_true",
        help="MLSpace without per-user roles (MANAGE_IAM_ROLES off): every notebook principal is a session "
        "of the one mlspace-notebook-role; remembered in the state, so `sandbox env` gives the same world",
    )
    principal = argparse.ArgumentParser(add_help=False)
    principal.add_argument(
        "--as",
        dest="principal",
        required=True,
        help="who to act as: alice@demo, bob@demo (notebook sessions), admin (MLSpace), owner (partner)",
    )

    serve = sandbox_commands.add_parser(
        "serve", parents=[listen, state_dir], help="run the sandbox in the foreground until Ctrl-C"
    )
    serve.set_defaults(handler=cmd_sandbox_serve)
    env = sandbox_commands.add_parser(
        "env", parents=[principal, state_dir], help="print `export` lines that act as a sandbox principal"
    )
    env.set_defaults(handler=cmd_sandbox_env)
    run = sandbox_commands.add_parser(
        "run",
        parents=[principal, listen, state_dir],
        help="start the sandbox, run a command as a principal, stop the sandbox when it ends",
    )
    run.add_argument(
        "--admin-endpoint",
        action="store_true",
        help="also serve the admin endpoint on 127.0.0.1 (requests kept in the state folder's admin.db, "
        "emptied at the start as the sandbox is seeded anew; the shared buckets registered) and give the "
        "command S3ACCESS_ADMIN_URL",
    )
    run.add_argument(
        "--admin-port", type=int, metavar="PORT", help="the admin endpoint's port (default: any free port)"
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command, after `--`")
    run.set_defaults(handler=cmd_sandbox_run)
