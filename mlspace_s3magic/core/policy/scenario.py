"""Scenarios for ``s3access simulate FILE``: one request and its policies as JSON, validated with messages
that say which key is wrong, what was wrong with it and what is accepted, so the CLI stays a thin shell.

A scenario is a JSON object with ``principal`` (a caller ARN or "anonymous"), ``action`` and ``resource`` (an
ARN, or ``"*"`` for an action that takes no resource, such as ``s3:ListAllMyBuckets``), and optionally
``name``, ``resource_account``, ``context`` (condition keys: a string, or a list for multivalued keys),
``identity_policies`` (a list), ``permissions_boundary``, ``session_policy``, ``resource_policy`` (the bucket
policy, key policy or role trust policy), ``scps`` and ``rcps`` (levels of the organization tree, root first,
each a list of the policies attached there; omitted or ``[]``: no organization) and ``endpoint_policy``.

``rcps`` holds your organization's own RCPs only: AWS attaches ``RCPFullAWSAccess`` (allow everything) to the
root, every OU and every account, and it cannot be detached, so it is implied at every level and a level's
own RCPs can only deny. SCPs have no such implied policy: list ``FullAWSAccess`` where it is attached.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from .actions import needs_resource, takes_no_resource
from .arns import is_account_id, parse_arn
from .document import Layer, Policy
from .errors import PolicyValidationError
from .evaluate import Levels, PolicyLayers, evaluate
from .grammar import parse_policy
from .principals import Principal
from .request import ContextValue, Request
from .result import EvaluationResult

_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9]+")
_REQUIRED = ("principal", "action", "resource")
_OPTIONAL = (
    "name",
    "resource_account",
    "context",
    "identity_policies",
    "permissions_boundary",
    "session_policy",
    "resource_policy",
    "scps",
    "rcps",
    "endpoint_policy",
)


@dataclass(frozen=True)
class Scenario:
    """One request and the policies of every layer; omitted layers mean "no such policy"."""

    request: Request
    layers: PolicyLayers
    name: str | None = None
    ignored_keys: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: object, path: str = "") -> Scenario:
        """Validate one scenario object; raises PolicyValidationError with the path of the faulty key."""
        if not isinstance(data, Mapping):
            raise PolicyValidationError(path, f"a scenario must be a JSON object with {', '.join(_REQUIRED)}")
        # Keys we do not know (a corpus's "expected" or "description") are reported, not fatal.
        ignored = tuple(str(key) for key in data if key not in _REQUIRED and key not in _OPTIONAL)
        for key in _REQUIRED:
            if not isinstance(data.get(key), str) or not data[key]:
                raise PolicyValidationError(_join(path, key), "required, as a non-empty string")
        action = _action(data["action"], _join(path, "action"))
        request = Request(
            principal=_principal(data["principal"], _join(path, "principal")),
            action=action,
            resource=_resource(data["resource"], action, _join(path, "resource")),
            resource_account=_account(data.get("resource_account"), _join(path, "resource_account")),
            context=_context(data.get("context"), _join(path, "context")),
        )
        return cls(request, _layers(data, path), _name(data.get("name"), _join(path, "name")), ignored)


def load_scenarios(obj: object) -> list[Scenario]:
    """Scenarios from parsed JSON: one scenario object, a list of them, or ``{"scenarios": [...]}``."""
    if isinstance(obj, Mapping) and "scenarios" in obj:
        if len(obj) != 1:
            raise PolicyValidationError("", 'an object with "scenarios" must hold nothing else')
        return _scenario_list(obj["scenarios"], "scenarios")
    if isinstance(obj, list):
        return _scenario_list(obj, "")
    return [Scenario.from_dict(obj)]


def evaluate_scenario(scenario: Scenario) -> EvaluationResult:
    """Evaluate the scenario's request against its policies."""
    result = evaluate(scenario.request, scenario.layers)
    if not scenario.ignored_keys:
        return result
    accepted = ", ".join((*_REQUIRED, *_OPTIONAL))
    note = f"Ignored the keys {', '.join(scenario.ignored_keys)} (accepted: {accepted})."
    return replace(result, notes=(*result.notes, note))


def simulate(obj: object) -> tuple[bool, list[EvaluationResult | PolicyValidationError]]:
    """Evaluate every scenario in parsed JSON, keeping order; a malformed one yields its error in its place.

    Returns whether the input was a batch (a list, or ``{"scenarios": [...]}``) so the output can mirror it.
    """
    if isinstance(obj, Mapping) and set(obj) == {"scenarios"} and isinstance(obj["scenarios"], list):
        return True, _each(obj["scenarios"], "scenarios")
    if isinstance(obj, list):
        return True, _each(obj, "")
    return False, _each([obj], None)


def _each(items: Sequence[object], path: str | None) -> list[EvaluationResult | PolicyValidationError]:
    outcomes: list[EvaluationResult | PolicyValidationError] = []
    for index, item in enumerate(items):
        where = "" if path is None else f"{path}[{index}]"
        try:
            outcomes.append(evaluate_scenario(Scenario.from_dict(item, where)))
        except PolicyValidationError as error:
            outcomes.append(error)
    return outcomes


def _scenario_list(items: object, path: str) -> list[Scenario]:
    if not isinstance(items, list) or not items:
        raise PolicyValidationError(path, "expected a non-empty list of scenario objects")
    return [Scenario.from_dict(item, f"{path}[{index}]") for index, item in enumerate(items)]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _principal(value: str, path: str) -> Principal:
    try:
        return Principal.from_arn(value)
    except PolicyValidationError as error:
        raise error.within(path) from None


def _action(value: str, path: str) -> str:
    if not _ACTION.fullmatch(value):
        raise PolicyValidationError(
            path, f'{value!r} is not an action; expected one action such as "s3:GetObject", without wildcards'
        )
    return value


def _resource(value: str, action: str, path: str) -> str:
    """An ARN, or "*" for an action that takes no resource."""
    if value == "*" and not takes_no_resource(action):
        raise PolicyValidationError(path, needs_resource(action))
    if value != "*" and parse_arn(value) is None:
        raise PolicyValidationError(
            path,
            f"{value!r} is not an ARN; expected e.g. arn:aws:s3:::bucket or arn:aws:s3:::bucket/key "
            '(or "*" for an action that takes no resource, such as s3:ListAllMyBuckets)',
        )
    return value


def _account(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not is_account_id(value):
        raise PolicyValidationError(path, f"expected a 12-digit account id as a string, got {value!r}")
    return value


def _name(value: object, path: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise PolicyValidationError(path, "expected a string")
    return value


def _context(value: object, path: str) -> dict[str, ContextValue]:
    """Condition keys and their values: a string, or a list of strings for multivalued keys."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyValidationError(path, 'expected an object such as {"aws:SourceVpc": "vpc-1"}')
    context: dict[str, ContextValue] = {}
    for key, item in value.items():
        where = _join(path, str(key))
        if isinstance(item, str):
            context[key] = item
        elif isinstance(item, list) and all(isinstance(element, str) for element in item):
            context[key] = tuple(item)
        else:
            raise PolicyValidationError(
                where,
                f"expected a string or a list of strings, got {item!r}; "
                'write booleans and numbers as strings, such as "true" or "10"',
            )
    return context


def _policy(document: object, layer: Layer, path: str) -> Policy:
    """One policy document, given as a JSON object or as JSON text; its label is its place in the scenario."""
    if not isinstance(document, Mapping | str):
        raise PolicyValidationError(path, "expected a policy document, as a JSON object or a JSON string")
    try:
        return parse_policy(document, layer, label=path.rsplit(".", 1)[-1])
    except PolicyValidationError as error:
        raise error.within(path) from None


def _optional_policy(data: Mapping[str, object], key: str, layer: Layer, path: str) -> Policy | None:
    document = data.get(key)
    return None if document is None else _policy(document, layer, _join(path, key))


def _policy_list(value: object, layer: Layer, path: str) -> tuple[Policy, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyValidationError(path, "expected a list of policy documents")
    return tuple(_policy(document, layer, f"{path}[{index}]") for index, document in enumerate(value))


def _levels(value: object, layer: Layer, path: str) -> Levels:
    """Organization levels, root first, each a list of documents; [] means no organization."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PolicyValidationError(
            path, "expected a list of levels (root first), each a list of policy documents"
        )
    return tuple(_policy_list(level, layer, f"{path}[{index}]") for index, level in enumerate(value))


def _layers(data: Mapping[str, object], path: str) -> PolicyLayers:
    return PolicyLayers(
        identity=_policy_list(
            data.get("identity_policies"), Layer.IDENTITY, _join(path, "identity_policies")
        ),
        boundary=_optional_policy(data, "permissions_boundary", Layer.BOUNDARY, path),
        session=_optional_policy(data, "session_policy", Layer.SESSION, path),
        resource=_optional_policy(data, "resource_policy", Layer.RESOURCE, path),
        scps=_levels(data.get("scps"), Layer.SCP, _join(path, "scps")),
        rcps=_levels(data.get("rcps"), Layer.RCP, _join(path, "rcps")),
        endpoint=_optional_policy(data, "endpoint_policy", Layer.ENDPOINT, path),
    )
