"""One request to decide: who, what action, on which resource, with which condition keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

from .actions import ASSUME_ROLE_ACTIONS
from .arns import is_account_id, parse_arn
from .principals import Principal

ContextValue = str | Sequence[str]

# Global keys AWS documents as multivalued (lowered): they call for ForAnyValue: or ForAllValues:
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
MULTIVALUED_KEYS = frozenset(
    (
        "aws:calledvia",
        "aws:principalorgpaths",
        "aws:principalservicenameslist",
        "aws:resourceorgpaths",
        "aws:sourceorgpaths",
        "aws:tagkeys",
    )
)


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


class ResourceKind(Enum):
    """What stands on the resource's side of a request, which decides how it combines with the caller's."""

    NONE = "no resource"  # an action that takes none: the resource is "*", decided by the caller's side
    RESOURCE = "resource policy"  # a bucket, an object...: its policy may grant on its own in its account
    KEY = "key policy"  # a KMS key: its policy must allow the caller, or delegate to the account
    TRUST = "trust policy"  # a role being assumed: the same as a key policy
    ALIAS = "KMS alias"  # has no policy of its own: decided by the caller's side


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
    def resource_kind(self) -> ResourceKind:
        """Which policy, if any, the resource has; see :class:`ResourceKind`."""
        resource = self.resource
        if resource == "*":
            return ResourceKind.NONE
        if ":kms:" in resource:  # every request asks; most are about S3, so test the text first
            arn = parse_arn(resource)
            if arn is not None and arn.service == "kms":
                return ResourceKind.ALIAS if arn.resource.startswith("alias/") else ResourceKind.KEY
        elif ":iam:" in resource and self.action.lower() in ASSUME_ROLE_ACTIONS:
            arn = parse_arn(resource)
            if arn is not None and arn.service == "iam" and arn.resource.startswith("role/"):
                return ResourceKind.TRUST
        return ResourceKind.RESOURCE

    def condition_keys(self, owner_account: str | None) -> RequestContext:
        """The keys AWS derives from the caller and the resource, overridden by the ones given (names compare
        without case, so ``aws:sourceip`` given overrides ``aws:SourceIp`` derived)."""
        values = dict(_caller_keys(self.principal))
        if owner_account is not None:
            values["aws:resourceaccount"] = (owner_account,)
        for key, value in self.context.items():
            values[key.lower()] = _as_values(value)
        return RequestContext._lowered(values)
