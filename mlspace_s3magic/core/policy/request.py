"""One request to decide: who, what action, on which resource, with which condition keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .arns import is_account_id, parse_arn
from .principals import Principal

ContextValue = str | Sequence[str]


class RequestContext:
    """The request's condition keys: names compare case-insensitively, as AWS does; values keep their case."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values = {
            key.lower(): (value,) if isinstance(value, str) else tuple(value) for key, value in values.items()
        }

    def get(self, key: str) -> tuple[str, ...] | None:
        """The key's values, or None when the request does not carry the key."""
        return self._values.get(key.lower())


@dataclass(frozen=True)
class Request:
    """A request; ``resource_account`` is needed for S3, whose ARNs do not name the owning account."""

    principal: Principal
    action: str
    resource: str
    resource_account: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    @property
    def owner_account(self) -> str | None:
        """The resource's account: as given, else from the ARN (KMS keys carry it), else unknown."""
        if self.resource_account:
            return self.resource_account
        arn = parse_arn(self.resource)
        return arn.account if arn is not None and is_account_id(arn.account) else None

    @property
    def is_kms_key(self) -> bool:
        """KMS key policies must allow the caller themselves, so the evaluator treats them apart."""
        arn = parse_arn(self.resource)
        return arn is not None and arn.service == "kms"

    def condition_keys(self, owner_account: str | None) -> RequestContext:
        """The keys AWS derives from the caller and the resource, overridden by the ones given."""
        values: dict[str, ContextValue] = {}
        values.update(self.principal.context_defaults())
        if owner_account is not None:
            values["aws:ResourceAccount"] = owner_account
        lowered = {key.lower() for key in self.context}
        values = {key: value for key, value in values.items() if key.lower() not in lowered}
        values.update(self.context)
        return RequestContext(values)
