"""mlspace-s3magic: see why an S3 bucket says AccessDenied, and ask for access.

In a notebook: ``%load_ext mlspace_s3magic`` then ``%s3access whoami``. In a terminal: ``s3access --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register ``%s3access``; imported lazily so the core never pulls in IPython."""
    from mlspace_s3magic.notebook.magics import S3Access

    shell.register_magics(S3Access(shell=shell))
