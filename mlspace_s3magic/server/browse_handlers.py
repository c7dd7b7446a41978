"""The sidebar browser's routes beyond the listing (``browse``, in :mod:`.handlers`): a peek at an object.

Thin shells over :mod:`mlspace_s3magic.core.browse`, as the notebook widget's Preview is: one ranged GET of
the object's first KiB, its lines or CSV rows worked out by the core.
"""

from __future__ import annotations

import tornado.web

from mlspace_s3magic.core.browse import preview
from mlspace_s3magic.core.errors import InvalidInput
from mlspace_s3magic.core.names import validate_bucket_name
from mlspace_s3magic.server.handlers import S3AccessHandler, explained

MAX_KEY_LENGTH = 1024  # S3's own limit on a key, in bytes of UTF-8


class PreviewHandler(S3AccessHandler):
    """``GET preview?bucket=&key=``: the first lines of a text, the first rows of a CSV parsed."""

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        bucket = self.text_argument("bucket", required=True, limit=255)
        validate_bucket_name(bucket)
        key = self.text_argument("key", required=True, limit=MAX_KEY_LENGTH)
        if key.endswith("/") or len(key.encode()) > MAX_KEY_LENGTH:
            raise InvalidInput(
                f"The query parameter 'key' must name an object (not a folder ending in '/'), at most "
                f"{MAX_KEY_LENGTH} bytes: {key[:70]!r}."
            )
        await self.answer(lambda: preview(self.session.aws, bucket, key).to_dict())
