"""Reconcile: keep every live grant whole in AWS, and find statements of ours that no live grant owns.

Grants decay without anyone asking: MLSpace makes a role for a member who joins a project later and attaches
none of our policies to it; an MLSpace upgrade or a hand edit drops statements or rewrites the boundary.
For every grant with live statements (applied, or awaiting the owner) this attaches the project's grant policy
to the project's roles that lack it, puts back the request's statements that are missing from the documents
the endpoint writes, and recomputes the boundary's room for every live grant. Statements carrying a
request's Sid (``S3AccessReq...``) that belong to no live grant are orphans: listed, and removed only when
asked (``remove_orphans``), since a statement we did not expect may be the evidence someone needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mlspace_s3magic.admin.apply import Documents, VersionsFull
from mlspace_s3magic.admin.plan import (
    ENDPOINT,
    Accounts,
    OwnerSessions,
    Plan,
    live_grants,
    project_roles,
)
from mlspace_s3magic.core.access import AccessRequest, SharedBucket
from mlspace_s3magic.core.aws import Aws, aws_call
from mlspace_s3magic.core.ceiling import CeilingDoesNotFit, with_ceiling
from mlspace_s3magic.core.mlspace import grant_policy_project, is_grant_policy_name
from mlspace_s3magic.core.policy.arns import resource_name
from mlspace_s3magic.core.policy_edit import (
    SID_SUFFIXES,
    Document,
    merge_statements,
    remove_statements,
    statements_of,
)
from mlspace_s3magic.core.render import Columns, Rendered, columns, notes_html, notes_text

# Every request's statements carry a Sid from ``AccessRequest.sid_stem``: this prefix, then the id.
REQUEST_SID = re.compile(r"^(S3AccessReq[A-Za-z0-9]+?)(" + "|".join(SID_SUFFIXES) + r")$")
ATTACH, RESTORE, RECOMPUTE, ORPHAN = "attach", "restore", "boundary", "orphan"
WHOLE = "Every live grant is whole, and no statement of ours is orphaned."


@dataclass(frozen=True)
class Finding:
    """One thing reconcile found: ``done`` when it was changed in AWS, else only reported."""

    kind: str  # ATTACH, RESTORE, RECOMPUTE or ORPHAN
    layer: str
    target: str
    detail: str
    request_id: str | None = None
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "layer": self.layer,
            "target": self.target,
            "detail": self.detail,
            "request_id": self.request_id,
            "done": self.done,
        }


@dataclass(frozen=True, repr=False)
class ReconcileReport(Rendered):
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [finding.to_dict() for finding in self.findings], "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReconcileReport:
        return cls(
            tuple(Finding(**finding) for finding in data.get("findings", [])),
            tuple(str(note) for note in data.get("notes", [])),
        )

    def _table(self) -> Columns:
        return columns(
            ("STATE", "KIND", "LAYER", "REQUEST", "TARGET", "DETAIL"),
            [
                (
                    "done" if finding.done else "found",
                    finding.kind,
                    finding.layer,
                    finding.request_id or "-",
                    finding.target,
                    finding.detail,
                )
                for finding in self.findings
            ],
        )

    def __str__(self) -> str:
        table = self._table().text() if self.findings else WHOLE
        return "\n".join([table, *notes_text(self.notes)])

    def _repr_html_(self) -> str:
        table = self._table().html() if self.findings else f"<p>{WHOLE}</p>"
        return f"<div><strong>Reconcile</strong>{table}{notes_html(self.notes)}</div>"


@dataclass(frozen=True)
class Reconciler:
    """Reconciles with the MLSpace admin's clients and, for partner buckets, the registry's owner roles."""

    aws: Aws
    mlspace_account: str
    owner_sessions: OwnerSessions
    registry: Sequence[SharedBucket]
    owners: Callable[[str], str | None]
    boundary_arn: str  # MLSpace's boundary, kept to the live grants even when no live plan names it

    def reconcile(self, live: Sequence[AccessRequest], *, remove_orphans: bool) -> ReconcileReport:
        findings: list[Finding] = []
        notes: list[str] = []
        stems = {request.sid_stem for request in live}
        for request in live:
            if request.plan is None:
                continue
            plan = Plan.from_dict(request.plan)
            documents = Documents(self._accounts(request.bucket))
            for change in plan.changes:
                if change.applied_by != ENDPOINT or change.layer == "boundary":
                    continue
                findings += self._restore(
                    documents, change.layer, change.target, change.account, change.statements, request.id
                )
                if change.layer == "identity":
                    findings += self._attach(documents, change.target, request.id)
        orphans, orphaned = self._orphans(stems, remove_orphans)
        findings += self._boundary(live, orphaned, notes)
        findings += orphans
        return ReconcileReport(tuple(findings), tuple(notes))

    # -- keeping live grants whole ----------------------------------------------------------------------

    def _restore(
        self,
        documents: Documents,
        layer: str,
        target: str,
        account: str,
        statements: Sequence[Document],
        request_id: str,
    ) -> list[Finding]:
        if documents.writer(layer, account) is None:
            return []
        live = documents.read(layer, target, account)
        present = statements_of(live)
        missing = [statement for statement in statements if statement not in present]
        if not missing:
            return []
        documents.write(layer, target, account, merge_statements(live, missing), live)
        sids = ", ".join(str(statement.get("Sid")) for statement in missing)
        return [Finding(RESTORE, layer, target, f"put back {sids}", request_id, done=True)]

    def _attach(self, documents: Documents, policy_arn: str, request_id: str) -> list[Finding]:
        """A project grant reaches every member's role, those made after the grant too."""
        project = grant_policy_project(resource_name(policy_arn))
        if project is None:
            return []  # a user's grant: its one role was attached when applied
        roles = project_roles(self.aws, project)
        iam = self.aws.client("iam")
        with aws_call(iam, "iam:ListEntitiesForPolicy"):
            attached = {
                str(role["RoleName"])
                for page in iam.get_paginator("list_entities_for_policy").paginate(
                    PolicyArn=policy_arn, EntityFilter="Role"
                )
                for role in page["PolicyRoles"]
            }
        lacking = tuple(role for role in roles if role not in attached)
        if not lacking:
            return []
        documents.attach(policy_arn, lacking)
        return [
            Finding(ATTACH, "identity", policy_arn, f"attached to {role}", request_id, True)
            for role in lacking
        ]

    def _boundary(self, live: Sequence[AccessRequest], orphaned: set[str], notes: list[str]) -> list[Finding]:
        """MLSpace's boundary keeps room for every live grant's bucket (an upgrade may have rewritten it);
        statements of ``orphaned`` stems, which no grant owns, get none."""
        targets = {self.boundary_arn} | {
            change.target
            for request in live
            if request.plan
            for change in Plan.from_dict(request.plan).changes
            if change.layer == "boundary"
        }
        findings = []
        documents = Documents(self._accounts(None))
        granted = live_grants(self.aws, self.owners, without=orphaned)
        for target in sorted(targets):
            current = documents.read("boundary", target, self.mlspace_account)
            if current is None:
                continue
            try:
                wanted = with_ceiling(current, granted, previous=granted, home_account=self.mlspace_account)
            except CeilingDoesNotFit as full:
                notes.append(f"The boundary {target} cannot hold every live grant: {full}")
                continue
            if wanted == current:
                continue
            try:
                documents.write("boundary", target, self.mlspace_account, wanted, current)
            except VersionsFull as full:
                notes.append(str(full))
                findings.append(Finding(RECOMPUTE, "boundary", target, "live grants lack room", None, False))
                continue
            findings.append(Finding(RECOMPUTE, "boundary", target, "room for every live grant", None, True))
        return findings

    # -- orphans -------------------------------------------------------------------------------------------

    def _orphans(self, live_stems: set[str], remove: bool) -> tuple[list[Finding], set[str]]:
        """The orphans found (removed when ``remove``), and the stems of those still in place."""
        findings = []
        kept: set[str] = set()
        for layer, target, account, documents in self._scanned():
            live = documents.read(layer, target, account) if documents.writer(layer, account) else None
            orphaned = sorted(
                {
                    match.group(1)
                    for statement in statements_of(live)
                    if isinstance(statement, dict)
                    and (match := REQUEST_SID.match(str(statement.get("Sid", ""))))
                    and match.group(1) not in live_stems
                }
            )
            for stem in orphaned:
                done = False
                if remove and live is not None:
                    after = remove_statements(live, stem)
                    if statements_of(after):
                        documents.write(layer, target, account, after, live)
                    else:
                        documents.delete(layer, target, account)
                    live = after
                    done = True
                else:
                    kept.add(stem)
                findings.append(
                    Finding(ORPHAN, layer, target, f"statements {stem}* of no live grant", None, done)
                )
        return findings, kept

    def _scanned(self) -> list[tuple[str, str, str, Documents]]:
        """Every document the endpoint writes: our grant policies, and the registered buckets' policies."""
        mlspace = Documents(self._accounts(None))
        iam = self.aws.client("iam")
        with aws_call(iam, "iam:ListPolicies"):
            ours = [
                str(policy["Arn"])
                for page in iam.get_paginator("list_policies").paginate(Scope="Local")
                for policy in page["Policies"]
                if is_grant_policy_name(str(policy["PolicyName"]))
            ]
        scanned = [("identity", arn, self.mlspace_account, mlspace) for arn in ours]
        for entry in self.registry:
            accounts = self._accounts(entry.bucket)
            if accounts.owner is not None and accounts.owner_account:
                scanned.append(("bucket-policy", entry.bucket, accounts.owner_account, Documents(accounts)))
        return scanned

    def _accounts(self, bucket: str | None) -> Accounts:
        entry = next((item for item in self.registry if item.bucket == bucket), None)
        owner: Aws | None = None
        if entry is not None and entry.owner_role_arn:
            owner = self.owner_sessions(entry.owner_role_arn)
        elif entry is not None and entry.owner_account == self.mlspace_account:
            owner = self.aws
        return Accounts(self.aws, self.mlspace_account, owner, entry.owner_account if entry else None)
