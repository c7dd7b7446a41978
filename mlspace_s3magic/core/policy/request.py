"""One request to decide: who, what action, on which resource, with which condition keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from .arns import is_account_id, parse_arn
from .principals import Principal

ContextValue = str | Sequence[str]


class RequestContext:
    """The request's condition keys: names compare case-insensitively, as AWS does; values keep their case."""

    def __init__(self, values: Mapping[str, ContextValue]) -> None:
        self._values = {key.lower(): _as_values(value) for key, value in values.items()}

    @classmethod
    def _lowered(cls, values: dict[str, tuple[str, ...]]) -> RequestContext:
        """A context from names already lowered, so each request does not lower them twice."""
        context = cls.__new__(cls)
        context._values = values
        return context

    def get(self, key: str) -> tuple[str, ...] | None:
        """The key's values, or None when the request does not carry the key."""
        return self._values.get(key.lower())


def _as_values(value: ContextValue) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@lru_cache(maxsize=256)
def _caller_keys(principal: Principal) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The keys derived from the caller, names lowered; worked out once, as a caller makes many requests."""
    return tuple((key.lower(), (value,)) for key, value in principal.context_defaults().items())


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
        if ":kms:" not in self.resource:  # every request asks; most are not about KMS
            return False
        arn = parse_arn(self.resource)
        return arn is not None and arn.service == "kms"

    def condition_keys(self, owner_account: str | None) -> RequestContext:
        """The keys AWS derives from the caller and the resource, overridden by the ones given (names compare
        without case, so ``aws:sourceip`` given overrides ``aws:SourceIp`` derived)."""
        values = dict(_caller_keys(self.principal))
        if owner_account is not None:
            values["aws:resourceaccount"] = (owner_account,)
        for key, value in self.context.items():
            values[key.lower()] = _as_values(value)
        return RequestContext._lowered(values)
