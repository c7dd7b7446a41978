"""The size limits AWS sets on policy documents, and how each service counts a document against them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# IAM's quota for a managed policy (a boundary is one), counted in characters without whitespace.
MANAGED_POLICY_MAX_CHARS = 6144
# S3's for a bucket policy and KMS's for a key policy, counted in bytes.
BUCKET_POLICY_MAX_BYTES = 20 * 1024
KEY_POLICY_MAX_BYTES = 32 * 1024


def iam_size(document: Mapping[str, Any]) -> int:
    """Characters IAM counts against its quotas: the JSON without any whitespace."""
    return sum(not char.isspace() for char in json.dumps(document, separators=(",", ":")))


def json_bytes(document: Mapping[str, Any]) -> int:
    """Bytes S3 and KMS count: the compact JSON, UTF-8 encoded."""
    return len(json.dumps(document, separators=(",", ":")).encode("utf-8"))
