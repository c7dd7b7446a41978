"""Files access requests in a loop and prints each id once the store has acknowledged it.

The crash test runs this as a separate process and kills it with SIGKILL midway: every id printed here must
still be in the store afterwards.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime

from mlspace_s3magic.admin.store import open_store
from mlspace_s3magic.core.access import NewAccessRequest, Requester
from mlspace_s3magic.core.grant import AccessLevel

REQUESTER = Requester(
    arn="arn:aws:sts::111111111111:assumed-role/MLSpace-demo-x/SageMaker", account="111111111111"
)


def main(url: str) -> None:
    store = open_store(url)
    number = 0
    while True:
        new = NewAccessRequest(
            bucket="BucketToBeShared",
            prefix=f"crash/{number}/",
            access=AccessLevel.READ,
            reason="crash test",
            idempotency_key=uuid.uuid4().hex,
        )
        request, _ = store.create_request(new, REQUESTER, now=datetime.now(UTC))
        print(request.id, flush=True)
        number += 1


if __name__ == "__main__":
    main(sys.argv[1])
