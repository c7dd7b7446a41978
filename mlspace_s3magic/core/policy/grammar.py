"""Parse and validate policy documents, reporting what is wrong and where (``Statement[2].Condition``)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping

from .document import Condition, Effect, Layer, Policy, Statement
from .errors import PolicyValidationError
from .operators import Operator, parse_operator
from .principal_element import EntryKind, PrincipalElement, parse_principal_element
from .request import MULTIVALUED_KEYS
from .variables import VARIABLE_VERSION, Template, parse_template

VERSIONS = ("2012-10-17", "2008-10-17")
_TOP_KEYS = ("Version", "Id", "Statement")
_STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
_PRINCIPAL_LAYERS = {Layer.RESOURCE, Layer.RCP, Layer.ENDPOINT}
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
# IAM and Organizations store an action entry that names no action ("s3:", "s3:GetObject,PutObject") and
# evaluate it as matching nothing; S3, VPC endpoints and RCPs refuse such a policy.
_LENIENT_ACTIONS = {Layer.IDENTITY, Layer.BOUNDARY, Layer.SESSION, Layer.SCP}
_NOT_PRINCIPAL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html"
)
_GATEWAY_PRINCIPALS = "https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-access.html#vpc-endpoint-policies-gateway"


def parse_policy(
    document: Mapping[str, object] | str, layer: Layer | str = Layer.IDENTITY, label: str | None = None
) -> Policy:
    """Validate a policy document (a JSON object or its text) for its layer, which decides whether statements
    must name a Principal (resource, RCP, endpoint) or must not (identity, boundary, session, SCP).

    Raises PolicyValidationError naming the element at fault; what AWS stores but may not evaluate as its
    author expects becomes one of the Policy's ``warnings``.
    """
    try:
        kind = Layer(layer)
    except ValueError:
        accepted = ", ".join(member.value for member in Layer)
        raise PolicyValidationError("", f"unknown policy layer {layer!r}; accepted: {accepted}") from None
    raw = _load(document)
    _check_keys(raw, _TOP_KEYS, "")
    version = raw.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyValidationError("Version", f'unsupported Version {version!r}; use "{VERSIONS[0]}"')
    if "Id" in raw and not isinstance(raw["Id"], str):
        raise PolicyValidationError("Id", "Id must be a string")
    if "Statement" not in raw:
        raise PolicyValidationError("", "the document has no Statement")
    listed = raw["Statement"]
    items = listed if isinstance(listed, list) else [listed]
    variables = version == VARIABLE_VERSION
    warnings: list[str] = []
    statements = tuple(
        _statement(item, index, f"Statement[{index}]", kind, variables, warnings)
        for index, item in enumerate(items)
    )
    return Policy(
        kind, label or kind.value, version if isinstance(version, str) else None, statements, tuple(warnings)
    )


def _load(document: Mapping[str, object] | str) -> dict[str, object]:
    """The document as a JSON object, from a mapping or from JSON text."""
    raw: object = document
    if isinstance(document, str):
        try:
            raw = json.loads(document)
        except json.JSONDecodeError as error:
            raise PolicyValidationError(
                "", f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            ) from None
        # json.loads refuses a number past Python's integer-digit limit with a plain ValueError, and nesting
        # past the recursion limit with RecursionError; both must reach the caller as a validation error.
        except ValueError as error:
            raise PolicyValidationError("", f"not valid JSON: {error}") from None
        except RecursionError:
            raise PolicyValidationError("", "not valid JSON: nested too deeply to read") from None
    if not isinstance(raw, Mapping):
        raise PolicyValidationError("", "a policy document must be a JSON object with a Statement")
    return {str(key): value for key, value in raw.items()}


def _check_keys(raw: Mapping[str, object], accepted: tuple[str, ...], path: str) -> None:
    """Refuse unknown elements, suggesting the right spelling, since AWS element names are case-sensitive."""
    for key in map(str, raw):
        if key not in accepted:
            close = [name for name in accepted if name.lower() == key.lower()] or difflib.get_close_matches(
                key, accepted, n=1
            )
            hint = f"did you mean {close[0]!r}?" if close else f"accepted: {', '.join(accepted)}"
            raise PolicyValidationError(path, f"unknown element {key!r}; {hint}")


def _statement(
    raw: object, index: int, path: str, layer: Layer, variables: bool, warnings: list[str]
) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyValidationError(path, "a statement must be a JSON object")
    _check_keys(raw, _STATEMENT_KEYS, path)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyValidationError(f"{path}.Sid", "Sid must be a string")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyValidationError(f"{path}.Effect", f'Effect must be "Allow" or "Deny", got {effect!r}')
    action_key, listed = _one_of(raw, "Action", "NotAction", path)
    actions = _actions(listed, action_key, raw, path, layer, warnings)
    resource_key, resources = _one_of(raw, "Resource", "NotResource", path)
    templates = tuple(
        _resource(value, _item(path, resource_key, raw, position), variables)
        for position, value in enumerate(resources)
    )
    principal = _principal(raw, path, layer, warnings)
    if principal is not None and principal.negated and effect == "Allow":
        warnings.append(
            f"{path}: an Allow with NotPrincipal, which AWS does not support ({_NOT_PRINCIPAL}); evaluated "
            "as granting every caller none of whose identities (user or session, role, account) is listed"
        )
    return Statement(
        index=index,
        sid=sid or None,
        effect=Effect(effect),
        actions=actions,
        not_action=action_key == "NotAction",
        resources=templates,
        not_resource=resource_key == "NotResource",
        principal=principal,
        conditions=_conditions(raw["Condition"], f"{path}.Condition", variables, warnings)
        if "Condition" in raw
        else (),
    )


def _actions(
    listed: tuple[str, ...], key: str, raw: Mapping[str, object], path: str, layer: Layer, warnings: list[str]
) -> tuple[str, ...]:
    """The entries that name actions; the others are refused, or (where AWS stores them) left out with a
    warning, so that an Action entry never matches and a NotAction entry excludes nothing."""
    actions: list[str] = []
    for position, action in enumerate(listed):
        if action == "*" or _ACTION.fullmatch(action):
            actions.append(action)
            continue
        where = _item(path, key, raw, position)
        expected = 'expected "service:Action" such as "s3:GetObject" (wildcards * and ? allowed), or "*"'
        if layer not in _LENIENT_ACTIONS:
            raise PolicyValidationError(where, f"{action!r} is not an action; {expected}")
        effect = "never matches" if key == "Action" else "excludes nothing"
        warnings.append(
            f"{where}: {action!r} names no action ({expected}); IAM stores it and evaluates it as matching "
            f"nothing, so this {key} entry {effect}"
        )
    return tuple(actions)


def _item(path: str, key: str, raw: Mapping[str, object], position: int) -> str:
    """The path of one value of an element that may be a string or a list."""
    return f"{path}.{key}[{position}]" if isinstance(raw[key], list) else f"{path}.{key}"


def _one_of(raw: Mapping[str, object], key: str, negated: str, path: str) -> tuple[str, tuple[str, ...]]:
    """Exactly one of an element and its Not form, as a non-empty tuple of strings."""
    if key in raw and negated in raw:
        raise PolicyValidationError(path, f"a statement takes {key} or {negated}, not both")
    if key not in raw and negated not in raw:
        raise PolicyValidationError(path, f"the statement has no {key} (or {negated})")
    name = key if key in raw else negated
    value = raw[name]
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) and item for item in values):
        raise PolicyValidationError(f"{path}.{name}", "expected a non-empty string or list of strings")
    return name, tuple(str(item) for item in values)


def _resource(value: str, path: str, variables: bool) -> Template:
    if value != "*" and not value.startswith("arn:"):
        raise PolicyValidationError(
            path, f'{value!r} is not a resource; expected an ARN such as arn:aws:s3:::bucket/key, or "*"'
        )
    return _template(value, path, variables)


def _template(value: str, path: str, variables: bool) -> Template:
    try:
        return parse_template(value, variables=variables)
    except ValueError as error:
        raise PolicyValidationError(path, str(error)) from None


def _principal(
    raw: Mapping[str, object], path: str, layer: Layer, warnings: list[str]
) -> PrincipalElement | None:
    """Principal or NotPrincipal, required in resource-side policies and refused in the others."""
    present = [key for key in ("Principal", "NotPrincipal") if key in raw]
    if len(present) == 2:
        raise PolicyValidationError(path, "a statement takes Principal or NotPrincipal, not both")
    if layer not in _PRINCIPAL_LAYERS:
        if present:
            raise PolicyValidationError(
                f"{path}.{present[0]}", f"{present[0]} is not allowed in a {layer} policy"
            )
        return None
    if not present:
        raise PolicyValidationError(path, f"a {layer} policy statement needs a Principal (or NotPrincipal)")
    key = present[0]
    element = parse_principal_element(raw[key], negated=key == "NotPrincipal", path=f"{path}.{key}")
    accounts = [entry.value for entry in element.entries if entry.kind is EntryKind.ACCOUNT]
    if layer is Layer.ENDPOINT and accounts:
        warnings.append(
            f"{path}.{key}: names the account {', '.join(accounts)}; in an S3 gateway endpoint policy "
            "that means the account's root user only, not its users and roles "
            f"({_GATEWAY_PRINCIPALS}); evaluated here as the whole account, as for an interface endpoint. "
            'Use "*" with a condition on aws:PrincipalArn or aws:PrincipalAccount instead'
        )
    return element


def _conditions(raw: object, path: str, variables: bool, warnings: list[str]) -> tuple[Condition, ...]:
    """The Condition block: every operator, every key and every value checked for its operator."""
    if not isinstance(raw, dict):
        raise PolicyValidationError(
            path, 'expected an object such as {"StringEquals": {"aws:SourceVpc": "vpc-1"}}'
        )
    conditions: list[Condition] = []
    for name, block in raw.items():
        try:
            operator = parse_operator(name)
        except ValueError as error:
            raise PolicyValidationError(path, str(error)) from None
        where = f"{path}.{name}"
        if not isinstance(block, dict) or not block:
            raise PolicyValidationError(where, "expected an object of condition keys and their values")
        for key, value in block.items():
            conditions.append(_condition(operator, key, value, f"{where}.{key}", variables))
            if (
                operator.set_operator is None
                and operator.base.compare is not None
                and key.lower() in MULTIVALUED_KEYS
            ):
                warnings.append(
                    f"{where}.{key}: {name} without ForAnyValue: or ForAllValues: on {key}, a multivalued "
                    "key; AWS does not document how a plain operator compares several request values. "
                    "Evaluated here as ForAnyValue: (ForAllValues: for a negated operator)"
                )
    return tuple(conditions)


def _condition(operator: Operator, key: object, value: object, path: str, variables: bool) -> Condition:
    if not isinstance(key, str) or not key:
        raise PolicyValidationError(path, "a condition key must be a non-empty string")
    # An empty list is valid IAM (MLSpace's CDK deploys one): no value can match it, so a positive operator
    # is false and a negated one true.
    values = value if isinstance(value, list) else [value]
    templates: list[Template] = []
    for position, item in enumerate(values):
        where = f"{path}[{position}]" if isinstance(value, list) else path
        text = _scalar(item, where)
        problem = operator.base.check(text)
        if problem is not None:
            raise PolicyValidationError(where, f"{operator.base.name}: {problem}")
        templates.append(_template(text, where, variables and operator.base.variables))
    return Condition(operator, key, tuple(templates))


def _scalar(item: object, path: str) -> str:
    """A condition value as AWS reads it: JSON numbers and booleans count as their text."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, str | int | float):
        return str(item)
    raise PolicyValidationError(path, "a condition value must be a string, number or boolean")
