"""The shell lines fixes are made of: heredocs, jq merges of a live document, IAM's version and size rules.

Why apart: every fix builder writes its command from these, and they must all quote, merge and stop the
same way (a pasted command must never write a document AWS would refuse or that loses statements).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.core.fix import Operation
from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind
from mlspace_s3magic.core.limits import MANAGED_POLICY_MAX_CHARS
from mlspace_s3magic.core.names import BucketRef
from mlspace_s3magic.core.policy.arns import require_arn
from mlspace_s3magic.core.policy_edit import Document, Statement
from mlspace_s3magic.core.render import terminal_safe

# A boundary and an identity policy are both IAM managed policies, read and written by the same commands.
MANAGED_POLICY = LAYER_SPECS[LayerKind.IDENTITY]
# Lists the Deny statements of a live bucket policy, for a same-account block the notebook could not read.
JQ_DENIES = '[.Statement] | flatten | map(select(.Effect == "Deny"))'
# Merges our statements into a live document with jq: drop statements carrying one of our Sids, append ours.
JQ_MERGE = (
    "($add[0] | map(.Sid)) as $ours"
    " | .Statement = ([.Statement] | flatten | map(select((.Sid | IN($ours[])) | not))) + $add[0]"
)
# A new document of our statements, and the document standing in for one that does not exist.
JQ_NEW = '{"Version": "2012-10-17", "Statement": $add[0]}'
_JQ_EMPTY = '{"Version": "2012-10-17", "Statement": []}'
JQ_MERGE_INTO = f"(. // {_JQ_EMPTY}) | {JQ_MERGE}"
# Adds a bucket's ARNs to MLSpace's S3 statements of the boundary (see core/ceiling.py), or, without them,
# appends $own; run on a boundary that could not be read when the fix was planned.
JQ_CEILING = (
    'def host($a): .Effect == "Allow" and (has("Condition") | not) and .Action == $a'
    ' and (.Resource | type) == "array";'
    " .Statement |= ([.] | flatten)"
    " | if any(.Statement[]; host($readhost)) and ($write == [] or any(.Statement[]; host($writehost)))"
    " then .Statement |= map(if host($readhost) then .Resource = (.Resource - $read) + $read"
    " elif host($writehost) and $write != [] then .Resource = (.Resource - $write) + $write else . end)"
    " else .Statement += [$own] end"
)
# Adds keys to MLSpace's KMS statement of the boundary, else to the statement of ours that lists keys, else
# appends that statement (see core/ceiling.py).
JQ_KEY_CEILING = (
    'def host($a): .Effect == "Allow" and (has("Condition") | not) and .Action == $a'
    ' and (.Resource | type) == "array";'
    ' def ours: (has("Sid") | not) and .Effect == "Allow" and .Action == $ownactions;'
    " .Statement |= ([.] | flatten)"
    " | if any(.Statement[]; host($keyhost))"
    " then .Statement |= map(if host($keyhost) then .Resource = (.Resource - $keys) + $keys else . end)"
    " elif any(.Statement[]; ours)"
    " then .Statement |= map(if ours then .Resource = (([.Resource] | flatten) - $keys) + $keys else . end)"
    ' else .Statement += [{"Effect": "Allow", "Action": $ownactions, "Resource": $keys}] end'
)


def comment(text: str) -> str:
    """A shell comment of one line: a newline or other control character in a value (a tag, a prefix) is
    shown as its escape, so it cannot end the comment and start a command."""
    return f"# {terminal_safe(text)}"


def heredoc(path: str, value: Any) -> str:
    return f"cat > {path} <<'EOF'\n{json.dumps(value, indent=2)}\nEOF"


def document_lines(
    document: Document | None, statements: Sequence[Statement], name: str, fetch: str
) -> list[str]:
    """Lines leaving the new document in ``name.json``: written whole when known, else merged (with jq) into
    the live document, because writing only our statements would delete everything else in it.
    """
    if document is not None:
        return [heredoc(f"{name}.json", document)]
    return [
        "# The current document could not be read here: fetch it, then append our statements (needs jq).",
        heredoc(f"{name}.add.json", list(statements)),
        *merge_lines(statements, name, fetch),
    ]


def merge_lines(statements: Sequence[Statement], name: str, fetch: str) -> list[str]:
    """Fetch the live document and append ``{name}.add.json``'s statements to it, into ``{name}.json``;
    when there is no live document (a bucket without a policy), the statements make a new one."""
    return [
        f"{fetch} > {name}.current.json 2>/dev/null || echo null > {name}.current.json",
        f"jq --slurpfile add {name}.add.json {shlex.quote(JQ_MERGE_INTO)} {name}.current.json > {name}.json",
    ]


@dataclass(frozen=True)
class ResourcePolicy:
    """The bucket's policy or its access point's: its name, and the CLI calls that read and write it."""

    what: str
    target: str
    operation: Operation
    fetch: str
    put: str
    header: tuple[str, ...]

    @classmethod
    def of(cls, ref: BucketRef, owner: str | None) -> ResourcePolicy:
        credentials = comment(f"Run with the credentials of account {owner or '(the bucket owner)'}.")
        if ref.access_point_arn:
            region = require_arn(ref.access_point_arn).region
            where = " ".join(
                f"--{name} {shlex.quote(value)}"
                for name, value in (("account-id", owner or ""), ("name", ref.bucket), ("region", region))
            )
            return cls(
                "access point policy",
                ref.access_point_arn,
                Operation.PUT_ACCESS_POINT_POLICY,
                f"aws s3control get-access-point-policy {where} --query Policy --output text",
                f"aws s3control put-access-point-policy {where} --policy file://policy.json",
                (credentials, comment(f"Access point {ref.access_point_arn}")),
            )
        spec = LAYER_SPECS[LayerKind.BUCKET_POLICY]
        return cls(
            "bucket policy",
            ref.bucket,
            Operation.PUT_BUCKET_POLICY,
            spec.read_command(ref.bucket),
            spec.write_command(ref.bucket, "policy.json"),
            (credentials,),
        )


def iam_version_lines(policy_arn: str, file: str, *, ours: bool) -> list[str]:
    """A new default version. IAM keeps at most 5 versions: in a policy of ours the oldest non-default one
    goes first; in one we did not create (MLSpace's boundary) none is ever deleted, the command stops and
    says what to do instead."""
    arn = shlex.quote(policy_arn)
    count = f"aws iam list-policy-versions --policy-arn {arn} --query 'length(Versions)' --output text"
    oldest = (
        f"aws iam list-policy-versions --policy-arn {arn} "
        "--query 'sort_by(Versions[?!IsDefaultVersion], &CreateDate)[0].VersionId' --output text"
    )
    if ours:
        at_five = [f'  aws iam delete-policy-version --policy-arn {arn} --version-id "$({oldest})"']
    else:
        stop = shlex.quote(
            f"{policy_arn} already has the 5 versions IAM keeps, and it is not ours to prune: delete a "
            "version you no longer need (aws iam delete-policy-version), then run this again."
        )
        at_five = [f"  echo {stop} >&2", "  exit 1"]
    return [
        "# IAM keeps at most 5 versions of a policy.",
        f'if [ "$({count})" -ge 5 ]; then',
        *at_five,
        "fi",
        MANAGED_POLICY.write_command(policy_arn, file),
    ]


ANOTHER_POLICY = "put the grant in another policy attached the same way"


def size_guard(policy_arn: str, file: str, options: str) -> list[str]:
    """Stops a command that merged into a live policy at run time before it writes a version IAM would
    refuse as over its quota; counted as IAM counts (no whitespace, non-ASCII escaped, as json.dumps)."""
    stop = shlex.quote(
        f"The new version of {policy_arn} would be over IAM's {MANAGED_POLICY_MAX_CHARS:,} characters for a "
        f"managed policy, so IAM would refuse it; nothing was written. Options: {options}."
    )
    return [
        f'if [ "$({iam_size_of(file)})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
        f"  echo {stop} >&2",
        "  exit 1",
        "fi",
    ]


def iam_size_of(file: str) -> str:
    """The shell pipeline that counts a policy file's characters as IAM does (whitespace not counted)."""
    return f"jq -ac . {file} | tr -d '[:space:]' | wc -c"


NO_ROOM_FOR_BUCKET_KEY = (
    "There is no room for the bucket's KMS key, which could not be read here (the bucket may use none): it "
    "is left out, and the check says so again once the rest is granted if the bucket uses one."
)


def without_bucket_key_when_full(keyed: str, without: str) -> list[str]:
    """Shell lines that fall back to ``without`` (the document before the key of a bucket whose encryption
    could not be read was added) when ``keyed`` is over IAM's limit: the bucket may use no KMS key, and the
    rest of the grant must not fail for it."""
    note = shlex.quote(NO_ROOM_FOR_BUCKET_KEY)
    return [
        f'if [ "$({iam_size_of(keyed)})" -gt {MANAGED_POLICY_MAX_CHARS} ]; then',
        f"  echo {note} >&2",
        f"  cp {without} {keyed}",
        "fi",
    ]


def jq_arguments(*values: tuple[str, Any]) -> str:
    return " ".join(f"--argjson {name} {shlex.quote(json.dumps(value))}" for name, value in values)
