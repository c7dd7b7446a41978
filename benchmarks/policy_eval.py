"""How many decisions per second the policy evaluator makes on the sandbox's MLSpace policy set.

Why: ``%s3access`` and ``s3access simulate`` explain every denied request by evaluating it locally, and the
check may sweep thousands of keys, so evaluation must stay cheap (target: 50,000 decisions per second on one
core). Two figures: decisions per second with the policies parsed once (their plans cached), and decisions per
second when every request carries its own freshly parsed policies (parse plus decide, as a caller that reads
the policies anew for each request would), which shows what parsing once buys.

Run from the repository root: ``.venv/bin/python benchmarks/policy_eval.py``. It prints figures, asserts
nothing, and uses a fixed seed so runs compare.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.core.mlspace import BOUNDARY_POLICY_NAME, NOTEBOOK_SESSION_NAME, user_role_name
from mlspace_s3magic.core.policy import (
    Decision,
    Layer,
    Policy,
    PolicyLayers,
    Principal,
    Request,
    evaluate,
    parse_policy,
)
from mlspace_s3magic.sandbox import mlspace_policies
from mlspace_s3magic.sandbox.world import (
    DATA_BUCKET,
    MLSPACE_ACCOUNT,
    PARTITION,
    PARTNER_ACCOUNT,
    PROJECT,
    READABLE_BUCKET,
    SHARED_BUCKET,
    USERS,
    mlspace_documents,
    role_policy_names,
)

SEED = 20240611
REQUESTS = 10_000
PASSES = 3
BASELINE_REQUESTS = 1_000  # re-parsing is slow; its rate is measured on the first requests only
BUCKET_POLICY_STATEMENTS = 50
OTHER_BUCKETS = 50
TARGET = 50_000

ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject")
PREFIXES = (
    f"project/{PROJECT}/",
    "project/other/",
    "private/alice/",
    "private/bob/",
    "global/",
    "global-read-only/",
    "index/",
    "group/shared/",
    "datasets/",
    "logs/",
    "",
)
SANDBOX_BUCKETS = (
    DATA_BUCKET,
    mlspace_policies.default_config_bucket(MLSPACE_ACCOUNT),
    "sagemaker-sample-files",
    SHARED_BUCKET,
    READABLE_BUCKET,
)
PARTNER_BUCKETS = {SHARED_BUCKET, READABLE_BUCKET}
PARTNER_USER = f"arn:{PARTITION}:iam::{PARTNER_ACCOUNT}:user/partner"
SOURCE_NETWORKS = ("10.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")

Document = dict[str, Any]


@dataclass(frozen=True, eq=False)
class Caller:
    """A principal and the documents of its identity-side layers (the boundary only for MLSpace roles);
    compared by identity, so it can key the parsed layers."""

    principal: Principal
    identity: tuple[Document, ...]
    boundary: Document | None


@dataclass(frozen=True)
class Case:
    """One request to decide, with the caller whose policies apply."""

    caller: Caller
    request: Request


def _session_arn(user: str) -> str:
    role = user_role_name(PROJECT, user)
    return f"arn:{PARTITION}:sts::{MLSPACE_ACCOUNT}:assumed-role/{role}/{NOTEBOOK_SESSION_NAME}"


def mlspace_callers() -> list[Caller]:
    """alice's and bob's notebook sessions with the policies the sandbox attaches, and a partner user."""
    documents, grant_name = mlspace_documents()
    boundary = documents[BOUNDARY_POLICY_NAME]
    callers = [
        Caller(
            Principal.from_arn(_session_arn(user)),
            tuple(documents[name] for name in role_policy_names(user, grant_name)),
            boundary,
        )
        for user in USERS
    ]
    partner_doc = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:{PARTITION}:s3:::*/datasets/*"},
        ],
    }
    callers.append(Caller(Principal.from_arn(PARTNER_USER), (partner_doc,), None))
    return callers


def bucket_policy(rng: random.Random, buckets: Sequence[str]) -> Document:
    """Fifty statements mixing grantees, prefixes and the conditions bucket policies use most."""
    grantees: list[Any] = [
        "*",
        {"AWS": _session_arn("alice")},
        {"AWS": f"arn:{PARTITION}:iam::{MLSPACE_ACCOUNT}:role/{user_role_name(PROJECT, 'bob')}"},
        {"AWS": f"arn:{PARTITION}:iam::{MLSPACE_ACCOUNT}:root"},
        {"AWS": [PARTNER_USER, PARTNER_ACCOUNT]},
    ]
    statements = []
    for index in range(BUCKET_POLICY_STATEMENTS):
        bucket = f"arn:{PARTITION}:s3:::{_pick_bucket(rng, buckets)}"
        prefix = rng.choice(PREFIXES)
        kind = index % 5
        statement: Document = {"Sid": f"S{index:02d}", "Principal": rng.choice(grantees)}
        if kind == 0:  # listing a prefix
            statement |= {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*", f"{rng.choice(PREFIXES)}*"]}},
            }
        elif kind == 1:  # reading a prefix from known networks
            statement |= {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:Get*Tagging"],
                "Resource": f"{bucket}/{prefix}*",
                "Condition": {"IpAddress": {"aws:SourceIp": rng.sample(SOURCE_NETWORKS, 2)}},
            }
        elif kind == 2:  # writing a prefix
            statement |= {
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": [f"{bucket}/{prefix}*", f"{bucket}/tmp/?*"],
            }
        elif kind == 3:  # TLS only
            statement |= {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket, f"{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        else:  # no deletes from outside the networks
            statement |= {
                "Effect": "Deny",
                "Action": "s3:Delete*",
                "Resource": f"{bucket}/{prefix}*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": rng.choice(SOURCE_NETWORKS)}},
            }
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def _pick_bucket(rng: random.Random, buckets: Sequence[str]) -> str:
    """The data bucket four times in ten, as a notebook mostly reads its own data; else any bucket."""
    return DATA_BUCKET if rng.random() < 0.4 else rng.choice(buckets)


def requests(rng: random.Random, callers: Sequence[Caller], buckets: Sequence[str]) -> list[Case]:
    """Random S3 requests: the four common actions, any bucket, keys under likely and unlikely prefixes."""
    cases = []
    for _ in range(REQUESTS):
        caller = rng.choice(callers)
        action = rng.choice(ACTIONS)
        bucket = _pick_bucket(rng, buckets)
        prefix = rng.choice(PREFIXES)
        network = rng.choice(SOURCE_NETWORKS).split("/")[0].rsplit(".", 1)[0]
        context: dict[str, str] = {
            "aws:SourceIp": f"{network}.{rng.randrange(1, 255)}",
            "aws:SecureTransport": "true" if rng.random() < 0.9 else "false",
        }
        if action == "s3:ListBucket":
            resource = f"arn:{PARTITION}:s3:::{bucket}"
            context["s3:prefix"] = prefix
        else:
            name = f"{rng.choice(('data', 'x', 'part'))}-{rng.randrange(1000)}.csv"
            resource = f"arn:{PARTITION}:s3:::{bucket}/{prefix}{name}"
        owner = PARTNER_ACCOUNT if bucket in PARTNER_BUCKETS else MLSPACE_ACCOUNT
        request = Request(caller.principal, action, resource, resource_account=owner, context=context)
        cases.append(Case(caller, request))
    return cases


def layers_for(
    caller: Caller, resource: Document, parse: Callable[[Document, Layer, str], Policy]
) -> PolicyLayers:
    """The caller's layers, parsed with ``parse``."""
    return PolicyLayers(
        identity=tuple(parse(doc, Layer.IDENTITY, f"identity[{i}]") for i, doc in enumerate(caller.identity)),
        boundary=None if caller.boundary is None else parse(caller.boundary, Layer.BOUNDARY, "boundary"),
        resource=parse(resource, Layer.RESOURCE, "bucket policy"),
    )


@dataclass(frozen=True)
class Timing:
    """One pass over the cases: wall and CPU seconds, and the decisions in order."""

    wall: float
    cpu: float
    decisions: list[Decision]

    def rate(self) -> float:
        return len(self.decisions) / self.wall


def timed(cases: Sequence[Case], layers: Callable[[Caller], PolicyLayers]) -> Timing:
    """Decide every case in turn; CPU time is shown too, since a busy machine inflates only the wall time."""
    decisions = []
    wall, cpu = time.perf_counter(), time.process_time()
    for case in cases:
        decisions.append(evaluate(case.request, layers(case.caller)).decision)
    return Timing(time.perf_counter() - wall, time.process_time() - cpu, decisions)


def _line(label: str, timing: Timing) -> str:
    return (
        f"{label:<22} {timing.wall:6.3f} s wall ({timing.cpu:.3f} s CPU)  "
        f"{timing.rate():>9,.0f} decisions per second"
    )


def main() -> None:
    """Build the world, time the parsed-once evaluator and the naive one, and print the figures."""
    rng = random.Random(SEED)
    buckets = [
        *SANDBOX_BUCKETS,
        *(f"bucket-{index:02d}-{rng.randrange(10**6):06d}" for index in range(OTHER_BUCKETS)),
    ]
    callers = mlspace_callers()
    resource = bucket_policy(rng, buckets)
    cases = requests(rng, callers, buckets)

    # The first pass starts cold: the policies then work out, per action and bucket, which statements to
    # match, as they would on the first requests of a session. The later passes show the steady state.
    parsed = {caller: layers_for(caller, resource, parse_policy) for caller in callers}
    passes = [timed(cases, parsed.__getitem__) for _ in range(PASSES)]
    first, best = passes[0], min(passes, key=lambda timing: timing.wall)
    naive = timed(cases[:BASELINE_REQUESTS], lambda caller: layers_for(caller, resource, parse_policy))

    alice = parsed[callers[0]]
    identity = sum(len(policy.statements) for policy in alice.identity)
    boundary = len(alice.boundary.statements) if alice.boundary else 0
    print(
        f"policy set (alice): {identity} identity statements in {len(alice.identity)} policies, "
        f"{boundary} in the boundary, {BUCKET_POLICY_STATEMENTS} in the bucket policy"
    )
    print(f"decisions per pass:    {len(cases):,} (one process, one thread, seed {SEED})")
    print(_line("first pass (cold):", first))
    print(_line(f"best of {PASSES} passes:", best))
    verdict = "met" if best.rate() >= TARGET else "NOT met"
    print(f"target:                {TARGET:,} decisions per second ({verdict} by the best pass)")
    shares = Counter(first.decisions)
    print(
        "decisions:             "
        + ", ".join(
            f"{decision.value} {shares[decision]:,} ({shares[decision] / len(cases):.1%})"
            for decision in Decision
        )
    )
    print(
        "fresh policies, every request parsing its own before deciding "
        f"(first {len(naive.decisions):,} requests):"
    )
    print(_line("  parse + decide:", naive))
    agree = naive.decisions == first.decisions[: len(naive.decisions)]
    print(
        f"  parsing once is {best.rate() / naive.rate():,.0f}x faster (first pass: "
        f"{first.rate() / naive.rate():,.0f}x); same decisions: {agree}"
    )


if __name__ == "__main__":
    main()
