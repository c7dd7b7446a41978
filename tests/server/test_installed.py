"""Installing the package is enough: both extensions are found and enabled, with no command to run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import mlspace_s3magic

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter(*args: str) -> str:
    jupyter = Path(sys.executable).with_name("jupyter")
    done = subprocess.run([str(jupyter), *args], capture_output=True, text=True, timeout=120, check=True)
    return ANSI.sub("", done.stdout + done.stderr)


def test_the_server_extension_is_enabled_and_loads() -> None:
    listing = _jupyter("server", "extension", "list")
    assert re.search(r"^\s*mlspace_s3magic enabled\s*$", listing, re.MULTILINE), listing
    assert re.search(r"mlspace_s3magic \S+ OK", listing), listing


def test_the_lab_extension_is_installed_and_enabled() -> None:
    listing = _jupyter("labextension", "list")
    line = f"{mlspace_s3magic.LABEXTENSION_NAME} v{mlspace_s3magic.__version__} enabled OK"
    assert line in re.sub(r"\s+", " ", listing), listing
