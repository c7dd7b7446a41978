"""Merging our statements into any bucket policy keeps every other statement unchanged and in order, and
revoking them restores the document exactly, including a single-object ``Statement``."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlspace_s3magic.core.grant import AccessLevel
from mlspace_s3magic.core.identity import Identity
from mlspace_s3magic.core.mlspace import user_role_name
from mlspace_s3magic.core.names import parse_bucket_reference
from mlspace_s3magic.core.policy_edit import SID_SUFFIXES, is_ours, merge_statements, remove_statements
from mlspace_s3magic.core.remedy import plan_fixes

MLSPACE = "111111111111"
STEM = "S3AccessReq1"
ROLE = user_role_name("demo", "alice")
ALICE = Identity(
    arn=f"arn:aws:sts::{MLSPACE}:assumed-role/{ROLE}/SageMaker",
    account=MLSPACE,
    principal_type="assumed-role",
    role=ROLE,
    role_arn=f"arn:aws:iam::{MLSPACE}:role/{ROLE}",
    session="SageMaker",
    user="alice",
    project="demo",
    boundary=None,
    user_scoped=True,
)


def _ours(access: AccessLevel) -> list[dict[str, Any]]:
    """The bucket-policy statements a real plan adds, so the property covers what apply writes."""
    (fix,) = plan_fixes(
        identity=ALICE,
        ref=parse_bucket_reference("BucketToBeShared/datasets/"),
        access=access,
        blocked_by=["bucket-policy"],
        bucket_owner_account="222222222222",
        current_bucket_policy=None,
        current_boundary=None,
        sid=STEM,
    )
    return list(fix.statements)


OURS = _ours(AccessLevel.READ)

texts = st.text(alphabet="abcXYZ019:/*-_ ", max_size=12)
values = st.one_of(texts, st.lists(texts, max_size=3))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
# Sids that look like ours but are not: another request's stem that starts with ours, other suffixes.
near_sids = st.sampled_from([f"{STEM}2Objects", f"{STEM}Object", f"{STEM}List2", STEM, "S3AccessReq", "X"])
sids = st.one_of(st.text(alphabet="AbZ019", min_size=1, max_size=10), near_sids)
statements = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny"])},
    optional={
        "Sid": sids,
        "Principal": st.one_of(st.just("*"), st.fixed_dictionaries({"AWS": values})),
        "NotPrincipal": st.fixed_dictionaries({"AWS": values}),
        "Action": values,
        "NotAction": values,
        "Resource": values,
        "NotResource": values,
        "Condition": st.dictionaries(texts, st.dictionaries(texts, values, max_size=2), max_size=2),
        "Extra": json_values,
    },
)
documents = st.fixed_dictionaries(
    {"Statement": st.one_of(statements, st.lists(statements, max_size=5))},
    optional={
        "Version": st.sampled_from(["2012-10-17", "2008-10-17"]),
        "Id": texts,
        "Other": json_values,
    },
)


def _listed(document: dict[str, Any]) -> list[Any]:
    statement = document["Statement"]
    return statement if isinstance(statement, list) else [statement]


@settings(max_examples=300, deadline=None)
@given(documents)
def test_merge_keeps_every_other_statement_and_revoke_restores_the_document(original: dict[str, Any]) -> None:
    assume(not any(is_ours(statement, STEM) for statement in _listed(original)))
    before = copy.deepcopy(original)
    merged = merge_statements(original, OURS)
    assert original == before  # merging never edits its input
    assert {key: value for key, value in merged.items() if key != "Statement"} == {
        key: value for key, value in original.items() if key != "Statement"
    }
    theirs = [statement for statement in merged["Statement"] if not is_ours(statement, STEM)]
    assert theirs == _listed(original)
    assert merged["Statement"][len(theirs) :] == OURS
    assert merge_statements(merged, OURS) == merged

    single = isinstance(original["Statement"], dict)
    assert remove_statements(merged, STEM, as_object=single) == original


@settings(max_examples=150, deadline=None)
@given(documents, st.sampled_from(list(AccessLevel)))
def test_a_changed_grant_replaces_ours_in_place_and_revoke_still_restores(
    original: dict[str, Any], access: AccessLevel
) -> None:
    assume(not any(is_ours(statement, STEM) for statement in _listed(original)))
    older = merge_statements(original, _ours(AccessLevel.READ))
    newer = merge_statements(older, _ours(access))
    assert [s for s in newer["Statement"] if not is_ours(s, STEM)] == _listed(original)
    assert remove_statements(newer, STEM, as_object=isinstance(original["Statement"], dict)) == original


@given(documents)
def test_removing_from_a_document_without_ours_changes_nothing(original: dict[str, Any]) -> None:
    assume(not any(is_ours(statement, STEM) for statement in _listed(original)))
    assert remove_statements(original, STEM, as_object=True) == original


def test_revoke_of_a_new_document_leaves_no_statement() -> None:
    assert remove_statements(merge_statements(None, OURS), STEM) == {"Version": "2012-10-17", "Statement": []}


def test_only_exact_suffixes_are_ours() -> None:
    assert all(is_ours({"Sid": STEM + suffix}, STEM) for suffix in SID_SUFFIXES)
    assert [statement["Sid"] for statement in OURS] == [f"{STEM}Objects", f"{STEM}List"]
    for sid in (f"{STEM}2Objects", STEM, f"{STEM}Objects2", "Objects", None):
        assert not is_ours({"Sid": sid}, STEM)
    assert not is_ours("not a statement", STEM)


def test_a_list_of_one_stays_a_list_unless_asked() -> None:
    theirs = {"Sid": "Theirs", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    merged = merge_statements({"Statement": theirs}, OURS)
    assert remove_statements(merged, STEM) == {"Statement": [theirs]}
    assert remove_statements(merged, STEM, as_object=True) == {"Statement": theirs}
