"""Who makes a request: parsed from the ARN that ``sts get-caller-identity`` prints, or anonymous."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from enum import StrEnum
from functools import cached_property

from .arns import caller_parts, iam_role_arn, is_account_id, parse_arn
from .errors import PolicyValidationError

ACCEPTED = (
    "arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, arn:aws:iam::ACCOUNT:user/NAME, "
    'arn:aws:sts::ACCOUNT:federated-user/NAME, arn:aws:iam::ACCOUNT:root, or "anonymous"'
)


class PrincipalType(StrEnum):
    """The caller's kind, spelled as AWS spells it in ``aws:PrincipalType``."""

    USER = "User"
    ASSUMED_ROLE = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ACCOUNT = "Account"
    ANONYMOUS = "Anonymous"


@dataclass(frozen=True)
class Principal:
    """The caller; for a role session ``name`` is the role's name and ``session`` the session's (``None`` when
    the caller was given as the role's ARN)."""

    type: PrincipalType
    arn: str | None = None
    account: str | None = None
    partition: str = "aws"
    name: str | None = None
    session: str | None = None

    @classmethod
    def anonymous(cls) -> Principal:
        """An unauthenticated caller, which only a resource policy open to everyone can allow."""
        return cls(PrincipalType.ANONYMOUS)

    @classmethod
    def from_arn(cls, text: str) -> Principal:
        """Parse a caller ARN; a role ARN stands for a session of that role whose session name is unknown."""
        if text.strip().lower() == "anonymous":
            return cls.anonymous()
        arn = parse_arn(text)
        if arn is None or not is_account_id(arn.account) or "*" in text or "?" in text:
            raise PolicyValidationError("", f"not a caller ARN: {text!r}; expected {ACCEPTED}")
        kind, name, session = caller_parts(arn.resource)
        if arn.service == "iam" and arn.resource == "root":
            return cls(PrincipalType.ACCOUNT, text, arn.account, arn.partition)
        if arn.service == "iam" and kind == "user" and name:
            return cls(PrincipalType.USER, text, arn.account, arn.partition, name)
        if arn.service == "sts" and kind == "assumed-role" and name and session:
            return cls(PrincipalType.ASSUMED_ROLE, text, arn.account, arn.partition, name, session)
        if arn.service == "sts" and kind == "federated-user" and name:
            return cls(PrincipalType.FEDERATED_USER, text, arn.account, arn.partition, name)
        if arn.service == "iam" and kind == "role" and name:
            # Roles act only through sessions; without the session's name, a grant to the session ARN
            # cannot match, while grants to the role and the account still do.
            return cls(PrincipalType.ASSUMED_ROLE, text, arn.account, arn.partition, name)
        raise PolicyValidationError("", f"not a caller ARN: {text!r}; expected {ACCEPTED}")

    @property
    def role_arn(self) -> str | None:
        """The IAM role behind a role session (without its path, which a session ARN does not carry)."""
        if self.type is not PrincipalType.ASSUMED_ROLE:
            return None
        if self.session is None and self.arn is not None:
            return self.arn  # given as the role's own ARN, path included
        if self.account is None or self.name is None:
            return None
        return iam_role_arn(self.partition, self.account, self.name)

    def context_defaults(self) -> dict[str, str]:
        """The global condition keys AWS fills in from the caller, so policies can test them."""
        values = {"aws:PrincipalType": self.type.value}
        if self.arn is not None and self.account is not None:
            values["aws:PrincipalArn"] = self.role_arn or self.arn
            values["aws:PrincipalAccount"] = self.account
        if self.type is PrincipalType.USER and self.name is not None:
            values["aws:username"] = self.name
        return values

    def __str__(self) -> str:
        return self.arn or "anonymous"

    def __hash__(self) -> int:
        return self._hash

    @cached_property
    def _hash(self) -> int:
        """Worked out once: a caller keys the evaluator's caches on every statement it meets."""
        return hash(astuple(self))
