"""Where this package keeps its files (the XDG state and config folders, looked up here only), and files
that hold secrets or requests (``sandbox.json``, admin tokens, the outbox, ``admin.db``): created readable
by their owner only, in one step, never through a symlink someone left in the way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE = 0o600
APP_FOLDER = "mlspace-s3magic"


def state_dir(*parts: str) -> Path:
    """Where this package keeps state for the user (``$XDG_STATE_HOME``, else ``~/.local/state``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base, APP_FOLDER, *parts)


def config_dir(*parts: str) -> Path:
    """Where this package reads the user's configuration (``$XDG_CONFIG_HOME``, else ``~/.config``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base, APP_FOLDER, *parts)


def write_private(path: Path, text: str, *, durable: bool = False) -> Path:
    """Replace ``path`` with ``text``, mode 0600: the text goes to a new file beside it (created exclusively
    under a random name, so neither a leftover temporary file nor a symlink there is ever opened), which is
    then renamed over ``path`` (a rename replaces a symlink, it does not follow it). ``durable`` also syncs
    the file and the rename to disk, for what must survive a crash."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as stream:
            os.fchmod(stream.fileno(), PRIVATE)  # exactly 0600, whatever the umask
            stream.write(text)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


def create_private(path: Path) -> None:
    """Create an empty file with mode 0600 unless one exists, without following a symlink; a database made
    in it keeps that mode (SQLite gives its WAL and shared-memory files the database file's mode)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        if path.is_symlink():
            raise
        return
    os.close(descriptor)
