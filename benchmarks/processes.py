"""What the benchmarks run beside them: the sandbox in its own process, so its work does not compete with
the code being measured for one interpreter, and free loopback ports."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from mlspace_s3magic.sandbox.state import SandboxState


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(state_dir: Path) -> Iterator[SandboxState]:
    """``s3access sandbox serve`` until the block ends; yields its state once it is seeded."""
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("s3access")), "sandbox", "serve", "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # the line saying where it listens, once seeded
        yield SandboxState.load(state_dir)
    finally:
        server.terminate()
        server.wait(timeout=30)
