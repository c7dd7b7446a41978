"""mlspace-s3magic: see why an S3 bucket says AccessDenied, and ask for access.

In a notebook: ``%load_ext mlspace_s3magic`` then ``%s3access whoami``. In a terminal: ``s3access --help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__version__ = "0.1.0"
LABEXTENSION_NAME = "mlspace-s3magic"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built JupyterLab extension lies, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "mlspace_s3magic"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Add the ``/s3access/`` routes; imported lazily so the magic and the CLI never import the server."""
    from mlspace_s3magic.server import load

    load(server_app)


def load_ipython_extension(shell: InteractiveShell) -> None:
    """Register ``%s3access``; imported lazily so the core never pulls in IPython."""
    from mlspace_s3magic.notebook.magics import S3Access

    shell.register_magics(S3Access(shell=shell))
