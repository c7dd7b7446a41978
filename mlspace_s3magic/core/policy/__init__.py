"""The IAM policy evaluator: parse policy documents and decide a request across every layer, as AWS does.

Pure Python, no boto3: the check combines it with real probes, and the CLI's ``simulate`` runs scenarios.
"""

from .document import Condition, Effect, Layer, Policy, Statement
from .errors import PolicyValidationError
from .evaluate import PolicyLayers, evaluate
from .grammar import parse_policy
from .principals import Principal, PrincipalType
from .request import Request
from .result import Decision, EvaluationResult, StatementRef
from .scenario import Scenario, evaluate_scenario, load_scenarios, simulate

__all__ = [
    "Condition",
    "Decision",
    "Effect",
    "EvaluationResult",
    "Layer",
    "Policy",
    "PolicyLayers",
    "PolicyValidationError",
    "Principal",
    "PrincipalType",
    "Request",
    "Scenario",
    "Statement",
    "StatementRef",
    "evaluate",
    "evaluate_scenario",
    "load_scenarios",
    "parse_policy",
    "simulate",
]
