"""The one reader of a layer's live document: the check and the admin read through it, and differ only in
what a refusal means to them (an unreadable layer, or a stop)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlspace_s3magic.core.layer_kinds import LAYER_SPECS, LayerKind
from mlspace_s3magic.core.layers import LayerFetcher, Unreadable, read_document

ARN = "arn:aws:iam::111111111111:policy/MLSpace-s3access-project-demo"


class _Meta:
    endpoint_url = "https://stand-in.invalid"


class _Iam:
    """Answers GetPolicy, and GetPolicyVersion with ``version`` (an error code raises it)."""

    meta = _Meta()

    def __init__(self, policy: str | None = None, version: str | None = None):
        self.policy, self.version = policy, version

    def _raise(self, code: str | None, operation: str) -> None:
        if code:
            raise ClientError({"Error": {"Code": code, "Message": code}}, operation)

    def get_policy(self, PolicyArn: str) -> dict[str, Any]:
        self._raise(self.policy, "GetPolicy")
        return {"Policy": {"PolicyName": "ignored", "DefaultVersionId": "v3"}}

    def get_policy_version(self, PolicyArn: str, VersionId: str) -> dict[str, Any]:
        self._raise(self.version, "GetPolicyVersion")
        return {"PolicyVersion": {"Document": "%7B%22Statement%22%3A%20%5B%5D%7D"}}


class _Aws:
    def __init__(self, iam: _Iam):
        self.iam = iam

    def client(self, _service: str) -> _Iam:
        return self.iam


IDENTITY = LAYER_SPECS[LayerKind.IDENTITY]


def test_a_document_is_decoded_and_an_absent_one_is_none() -> None:
    assert read_document(IDENTITY, _Iam(), ARN) == {"Statement": []}
    assert read_document(IDENTITY, _Iam(policy="NoSuchEntity"), ARN) is None


def test_a_refusal_raises_for_the_admin() -> None:
    with pytest.raises(ClientError):
        read_document(IDENTITY, _Iam(version="AccessDenied"), ARN)


@pytest.mark.parametrize(
    ("iam", "reason"),
    [
        (_Iam(policy="AccessDenied"), "iam:GetPolicy was denied"),
        (_Iam(version="AccessDenied"), "iam:GetPolicyVersion was denied"),
        (_Iam(version="Throttling"), "iam:GetPolicyVersion failed with Throttling"),
    ],
)
def test_the_check_records_a_refusal_naming_the_call_refused(iam: _Iam, reason: str) -> None:
    with ThreadPoolExecutor(1) as pool:
        fetched = LayerFetcher(_Aws(iam), pool).managed_policy("identity", ARN)  # type: ignore[arg-type]
    assert fetched == Unreadable("identity", reason)


def test_the_check_labels_a_managed_policy_by_its_name() -> None:
    with ThreadPoolExecutor(1) as pool:
        fetched = LayerFetcher(_Aws(_Iam()), pool).managed_policy("boundary", ARN)  # type: ignore[arg-type]
    assert fetched is not None and not isinstance(fetched, Unreadable)
    assert (fetched.label, fetched.document, fetched.arn) == (
        "MLSpace-s3access-project-demo",
        {"Statement": []},
        ARN,
    )
