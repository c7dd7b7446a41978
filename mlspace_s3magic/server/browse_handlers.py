"""The sidebar browser's routes beyond the listing (``browse``, in :mod:`.handlers`): a peek at an object.

Thin shells over :mod:`mlspace_s3magic.core.browse`, as the notebook widget's Preview is: one ranged GET of
the object's first KiB, its lines or CSV rows worked out by the core.
"""

from __future__ import annotations

import tornado.web

from mlspace_s3magic.core.browse import preview
from mlspace_s3magic.server.handlers import S3AccessHandler, explained


class PreviewHandler(S3AccessHandler):
    """``GET preview?bucket=&key=``: the first lines of a text, the first rows of a CSV parsed."""

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        bucket, key = self.object_argument()
        await self.answer(lambda: preview(self.session.aws, bucket, key).to_dict())
