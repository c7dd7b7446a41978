"""A parsed policy document: the validated, typed form every later step reads instead of raw JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from .matching import action_matches, literal_head, resource_matches, resources_glob
from .operators import Operator
from .principal_element import PrincipalElement
from .variables import Chunks, Lookup, Template

# Per policy; past this many (action, bucket) pairs the remembered plans start over rather than grow.
_PLANS_REMEMBERED = 4096


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

    @cached_property
    def static_values(self) -> tuple[Chunks, ...] | None:
        """The values' chunks when none holds a policy variable, so requests need not expand them."""
        chunks = [value.static for value in self.values]
        if any(chunk is None for chunk in chunks):
            return None
        return tuple(chunk for chunk in chunks if chunk is not None)


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

    def covers_action(self, action: str) -> bool:
        """Whether the Action element lists the action, or the NotAction element leaves it out."""
        return any(action_matches(pattern, action) for pattern in self.actions) != self.not_action

    def covers_resource(self, resource: str, lookup: Lookup, unresolved: list[str]) -> bool:
        """Whether the Resource element lists the resource, or the NotResource element leaves it out.

        An entry whose policy variable has no value matches nothing (so in NotResource it excludes nothing)
        while the other entries still count; its text is appended to ``unresolved`` for the notes.
        """
        pattern = self._static_resources
        if pattern is not None:
            return (pattern.fullmatch(resource) is not None) != self.not_resource
        listed = False
        for template in self.resources:
            chunks = template.expand(lookup)
            if chunks is None:
                unresolved.append(
                    f"{'NotResource' if self.not_resource else 'Resource'} entry {template.text!r}"
                )
            elif not listed and resource_matches(chunks, resource):
                listed = True
        return listed != self.not_resource

    def covers_no_resource(self, everything: tuple[str, ...]) -> bool:
        """Whether the statement covers an action that takes no resource (the request's resource is "*"):
        only the entries in ``everything`` list it (``"*"``, and for S3 actions ``arn:PARTITION:s3:::*``)."""
        listed = any(template.text in everything for template in self.resources)
        return listed != self.not_resource

    @property
    def resource_variables(self) -> bool:
        """Whether a Resource (or NotResource) entry holds a policy variable, expanded per request."""
        return self._static_resources is None

    def may_cover(self, head: str) -> bool:
        """False only when the Resource element cannot list a resource whose head (the text before its first
        ``/``) is ``head``; cheap, so policies can set statements aside before matching them in full."""
        heads = self._heads
        return heads is None or head in heads

    @cached_property
    def _static_chunks(self) -> tuple[Chunks, ...] | None:
        """The entries' chunks when none holds a policy variable: then they are the same for all requests."""
        chunks = [template.static for template in self.resources]
        if any(chunk is None for chunk in chunks):
            return None
        return tuple(chunk for chunk in chunks if chunk is not None)

    @cached_property
    def _static_resources(self) -> re.Pattern[str] | None:
        """All the entries as one compiled pattern, when none holds a policy variable."""
        chunks = self._static_chunks
        return None if chunks is None else resources_glob(chunks)

    @cached_property
    def _heads(self) -> frozenset[str] | None:
        """The resource heads the Resource element can list, or None when it may list any (a NotResource,
        a variable, or a wildcard before the first ``/``)."""
        if self.not_resource or self._static_chunks is None:
            return None
        heads = [literal_head(chunks) for chunks in self._static_chunks]
        if any(head is None for head in heads):
            return None
        return frozenset(head for head in heads if head is not None)


@dataclass(frozen=True)
class Policy:
    """A policy document with the label its caller gave it (``MLSpace-project-demo``, ``bucket policy``).

    ``warnings`` name what IAM stores but AWS evaluates in a way its author may not expect (an action entry
    that names no action, an Allow with NotPrincipal...); results of requests the policy takes part in carry
    them as notes.
    """

    layer: Layer
    label: str
    version: str | None
    statements: tuple[Statement, ...]
    warnings: tuple[str, ...] = ()

    def plan(self, action: str, head: str) -> Plan:
        """The statements worth matching against requests for the action on resources with this head (the
        text before the resource's first ``/``; for S3, the bucket's ARN): their Action element covers the
        action and their Resource element may cover such resources. Each comes with its Resource pattern when
        that is fixed (None: it holds a variable, which the evaluator expands per request).

        Why: one parsed policy decides many requests, and most statements name other actions or buckets; the
        plan is remembered, so a request costs one regex match per statement left.
        """
        plan = self._plans.get((action, head))
        if plan is None:
            plan = self._plan((action, head))
        return plan

    def _plan(self, key: tuple[str, str]) -> Plan:
        """Work out and remember :meth:`plan`; the statements covering an action are remembered too."""
        action, head = key
        plans = self._plans
        if len(plans) >= _PLANS_REMEMBERED:
            plans.clear()
            self._by_action.clear()
        covering = self._by_action.get(action)
        if covering is None:
            covering = self._by_action[action] = tuple(s for s in self.statements if s.covers_action(action))
        plan = tuple((s, s._static_resources) for s in covering if s.may_cover(head))
        plans[key] = plan
        return plan

    @cached_property
    def _plans(self) -> dict[tuple[str, str], Plan]:
        return {}

    @cached_property
    def _by_action(self) -> dict[str, tuple[Statement, ...]]:
        return {}


# The statements worth matching for one action and resource head, each with its fixed Resource pattern.
Plan = tuple[tuple[Statement, re.Pattern[str] | None], ...]
