"""A parsed policy document: the validated, typed form every later step reads instead of raw JSON."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .operators import Operator
from .principal_element import PrincipalElement
from .variables import Template


class Layer(StrEnum):
    """Where a policy sits in AWS's evaluation; names the blocking layer in results."""

    IDENTITY = "identity"
    BOUNDARY = "boundary"
    SESSION = "session"
    RESOURCE = "resource"
    SCP = "scp"
    RCP = "rcp"
    ENDPOINT = "endpoint"


class Effect(StrEnum):
    """A statement's Effect."""

    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class Condition:
    """One operator applied to one key; a statement's conditions must all hold."""

    operator: Operator
    key: str
    values: tuple[Template, ...]


@dataclass(frozen=True)
class Statement:
    """One statement; ``not_action``/``not_resource`` mean the lists name what the statement excludes."""

    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[Template, ...]
    not_resource: bool
    principal: PrincipalElement | None
    conditions: tuple[Condition, ...]

    @property
    def name(self) -> str:
        """The Sid, or the position for statements without one, so people can find it in the document."""
        return self.sid or f"Statement[{self.index}]"


@dataclass(frozen=True)
class Policy:
    """A policy document with the label its caller gave it (``MLSpace-project-demo``, ``bucket policy``)."""

    layer: Layer
    label: str
    version: str | None
    statements: tuple[Statement, ...]
