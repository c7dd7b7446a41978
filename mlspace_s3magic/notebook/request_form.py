"""The "Request access" form the bucket browser shows on a denied bucket."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import ipywidgets as widgets

from mlspace_s3magic.access_requests.actions import new_request
from mlspace_s3magic.access_requests.results import Receipt
from mlspace_s3magic.commands import REQUESTABLE
from mlspace_s3magic.core.access import MAX_DAYS, NewAccessRequest
from mlspace_s3magic.core.errors import S3MagicError
from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.render import RED

Submit = Callable[[NewAccessRequest], Receipt]


def failure_html(message: str) -> str:
    """What went wrong, in the red of a denied badge, for every widget of the notebook."""
    return f"<p style='color:{RED}'>{escape(message)}</p>"


class RequestForm(widgets.VBox):  # type: ignore[misc]  # a subclass of an untyped class
    """Access level, reason and days for one bucket; submitting files (or queues) the request."""

    def __init__(self, ref: BucketRef, submit: Submit):
        super().__init__()
        self.ref = ref
        self._submit = submit
        self.receipt: Receipt | None = None
        self.access = widgets.ToggleButtons(
            options=[level.value for level in REQUESTABLE], value=AccessLevel.READ.value, description="Access"
        )
        self.reason = widgets.Textarea(placeholder="Why you need it, for the admin", description="Reason")
        self.days = widgets.BoundedIntText(value=30, min=1, max=MAX_DAYS, description="Days")
        self.button = widgets.Button(description="Request access", button_style="primary", icon="paper-plane")
        self.button.on_click(lambda _: self.send())
        self.outcome = widgets.HTML()
        self.children = [
            widgets.HTML(f"<strong>Request access to {escape(str(ref))}</strong>"),
            self.access,
            self.reason,
            self.days,
            self.button,
            self.outcome,
        ]

    def send(self) -> Receipt | None:
        """File the request with what the form holds; say what happened either way."""
        try:
            self.receipt = self._submit(
                new_request(self.ref, self.access.value, self.reason.value, self.days.value)
            )
        except S3MagicError as error:
            self.outcome.value = failure_html(str(error))
            return None
        self.outcome.value = self.receipt._repr_html_()
        self.button.disabled = self.receipt.filed is not None
        return self.receipt
