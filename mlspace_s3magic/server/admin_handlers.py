"""The admin review panel's routes, under ``/s3access/admin/``: the Jupyter server only forwards.

Each call goes to the configured admin endpoint as the notebook's own identity (the session's AWS
credentials prove it, as for the requester's routes), so the endpoint decides who is an admin, exactly as
for ``s3access admin``; its refusals keep their meaning (403, 404, 409...). The answers are
:func:`~mlspace_s3magic.admin.views.admin_review`'s JSON, the data ``s3access admin show`` prints.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from mlspace_s3magic.access_requests.client import AdminClient
from mlspace_s3magic.admin.views import admin_review
from mlspace_s3magic.core.access import RequestStatus, RequestView
from mlspace_s3magic.core.errors import InvalidInput, NotAllowed
from mlspace_s3magic.server.handlers import REQUEST_ID, S3AccessHandler, explained

ADMIN_ACTIONS = ("approve", "deny", "apply", "revoke")
# What the panel lists: requests that wait for a decision, an apply, or may be revoked.
UNDER_REVIEW = frozenset(
    {
        RequestStatus.PENDING,
        RequestStatus.APPROVED,
        RequestStatus.AWAITING_OWNER,
        RequestStatus.FAILED,
        RequestStatus.APPLIED,
    }
)


class NotAnAdmin(NotAllowed):
    """The endpoint does not take the notebook's identity for one of its admins."""


def as_admin(client: AdminClient) -> AdminClient:
    """The client, once the endpoint says its caller is an admin: a requester's list or show would answer
    with their own requests, which is not a review."""
    me = client.me()
    if me.get("admin") is not True:
        raise NotAnAdmin(f"The admin endpoint does not take {me.get('arn')} for one of its admins.")
    return client


class AdminHandler(S3AccessHandler):
    def request_id(self) -> str:
        request_id = self.text_argument("id", required=True)
        if not REQUEST_ID.fullmatch(request_id):
            raise InvalidInput(
                f"{request_id[:70]!r} is not a request id: ids are letters, digits, '-' and '_' (at most 64)."
            )
        return request_id


class MeHandler(AdminHandler):
    """``GET admin/me``: whether to show the panel; without an endpoint configured, nobody is an admin."""

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        if not self.session.admin_url():
            await self.answer(lambda: {"arn": None, "admin": False})
            return
        await self.answer(lambda: self.session.admin().me())


class ReviewListHandler(AdminHandler):
    """``GET admin/requests``: the requests under review, newest first, each with the plan it holds."""

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        def listed() -> dict[str, Any]:
            found = as_admin(self.session.admin()).requests()
            under_review = [r for r in found if r.status in UNDER_REVIEW]
            under_review.sort(key=lambda r: r.created_at, reverse=True)
            return {"requests": [admin_review(RequestView(request=r)) for r in under_review]}

        await self.answer(listed)


class ReviewHandler(AdminHandler):
    """``GET admin/request?id=``: one request as ``s3access admin show`` has it (a pending one with the plan
    it would get now)."""

    @tornado.web.authenticated
    @explained
    async def get(self) -> None:
        request_id = self.request_id()
        await self.answer(lambda: admin_review(as_admin(self.session.admin()).show(request_id)))


class ActHandler(AdminHandler):
    """``POST admin/act?id=&action=``: approve, deny, apply or revoke; a deny's body is ``{"reason": ...}``,
    which the endpoint checks and keeps for the requester. The answer carries what the verification after
    an apply or revoke found."""

    @tornado.web.authenticated
    @explained
    async def post(self) -> None:
        request_id = self.request_id()
        action = self.text_argument("action", required=True, limit=16)
        if action not in ADMIN_ACTIONS:
            raise InvalidInput(f"The action must be one of {', '.join(ADMIN_ACTIONS)}, not {action!r}.")
        reason = self.reason(action)
        await self.answer(
            lambda: admin_review(
                RequestView(request=self.session.admin().act(request_id, action, reason=reason))
            )
        )

    def reason(self, action: str) -> str | None:
        """The body's reason, if there is a body: only a deny takes one (the endpoint says whether it is
        a good one), so a reason sent with another action is refused rather than lost."""
        if not self.request.body:
            return None
        body = self.json_body('only "reason", the text of a denial\'s reason')
        reason = body.get("reason")
        if set(body) != {"reason"} or not isinstance(reason, str):
            raise InvalidInput(f'The request body must be {{"reason": "..."}}, not one with {sorted(body)}.')
        if action != "deny":
            raise InvalidInput(f"Only a deny takes a reason; {action} does not.")
        return reason


ADMIN_ROUTES: tuple[tuple[str, type[S3AccessHandler]], ...] = (
    ("admin/me", MeHandler),
    ("admin/requests", ReviewListHandler),
    ("admin/request", ReviewHandler),
    ("admin/act", ActHandler),
)
