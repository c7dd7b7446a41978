"""The jupyter_server extension: the REST routes the JupyterLab sidebar and request dialog call.

Enabled on install (``jupyter-config/server-config/mlspace_s3magic.json``); configured like the magic, with
``c.S3Access.admin_url = ...`` and the other ``S3Access`` settings in ``jupyter_server_config.py``.
"""

from __future__ import annotations

from typing import Any

from mlspace_s3magic.server.handlers import SESSION_SETTING, route_table
from mlspace_s3magic.session import S3AccessSession
from mlspace_s3magic.settings import S3AccessSettings


class S3Access(S3AccessSettings):
    """The server's ``S3Access`` settings: the same options as ``%config S3Access`` in a kernel."""


def load(server_app: Any) -> None:
    """One session for the server, with the credentials the server runs with (the notebook's role)."""
    settings = S3Access(parent=server_app)
    web_app = server_app.web_app
    web_app.settings[SESSION_SETTING] = S3AccessSession(settings.session_settings())
    web_app.add_handlers(".*$", route_table(web_app.settings["base_url"]))
    server_app.log.info("mlspace_s3magic: S3 access routes at %ss3access/", web_app.settings["base_url"])
