"""The admin endpoint's diagnosis of one caller's access to one bucket, as it travels to the notebook.

The endpoint reads every layer with its own rights, so its blocking layers are proven where a notebook's are
guesses. What a requester may learn from it is limited (:meth:`Diagnosis.for_requester`): per capability
the verdict and the blocking layers, whether an explicit Deny is involved, and whether an admin can grant
it; never another account's documents, statement ids or key ARNs, nor (through a reason naming
``NoSuchBucket``) whether a bucket exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mlspace_s3magic.core.capabilities import Capabilities, CapabilityEvaluation
from mlspace_s3magic.core.errors import UpstreamFailed

# The layers the endpoint can change for a request; any other blocking layer needs someone else.
GRANTABLE_LAYERS = frozenset({"identity", "boundary", "bucket-policy", "kms"})
UNREAD_BY_ENDPOINT = "the admin endpoint could not read it"


@dataclass(frozen=True)
class Diagnosis:
    """Per capability the endpoint's evaluation; ``unreadable`` maps a layer to why it could not be read."""

    bucket: str
    prefix: str
    principal: str
    evaluations: tuple[CapabilityEvaluation, ...]
    unreadable: Mapping[str, str]
    notes: tuple[str, ...] = ()
    detailed: bool = True  # False: the requester's view, with nothing but verdicts and layer names

    @classmethod
    def of(cls, bucket: str, prefix: str, principal: str, capabilities: Capabilities) -> Diagnosis:
        return cls(
            bucket,
            prefix,
            principal,
            capabilities.evaluations,
            {gap.layer: gap.reason for gap in capabilities.unreadable},
            capabilities.notes,
        )

    def evaluation(self, capability: str) -> CapabilityEvaluation | None:
        return next((item for item in self.evaluations if item.capability == capability), None)

    @staticmethod
    def grantable(evaluation: CapabilityEvaluation) -> bool:
        """Whether approving a request can give it: denied by no Deny, only in layers the endpoint edits."""
        return (
            evaluation.allowed is not True
            and not evaluation.explicit_deny
            and set(evaluation.blocking) <= GRANTABLE_LAYERS
        )

    def for_requester(self) -> Diagnosis:
        """What a notebook user may see: verdicts and layer names; no documents, statements, reasons, key
        ARNs or read errors (a ``NoSuchBucket`` would tell a bucket exists or not)."""
        return replace(
            self,
            evaluations=tuple(
                CapabilityEvaluation(item.capability, item.decision, item.blocked_by, item.unverified)
                for item in self.evaluations
            ),
            unreadable=dict.fromkeys(self.unreadable, UNREAD_BY_ENDPOINT),
            notes=(),
            detailed=False,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "principal": self.principal,
            "detailed": self.detailed,
            "capabilities": {
                item.capability: {
                    **item.to_dict(),
                    "explicit_deny": item.explicit_deny,
                    "grantable": self.grantable(item),
                }
                for item in self.evaluations
            },
            "unreadable_layers": [{"layer": layer, "reason": why} for layer, why in self.unreadable.items()],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnosis:
        """The endpoint's JSON answer; a shape we do not know is an error, never half a diagnosis."""
        try:
            return cls(
                bucket=str(data["bucket"]),
                prefix=str(data["prefix"]),
                principal=str(data["principal"]),
                evaluations=tuple(
                    CapabilityEvaluation.from_dict(item) for item in dict(data["capabilities"]).values()
                ),
                unreadable={str(gap["layer"]): str(gap["reason"]) for gap in data["unreadable_layers"]},
                notes=tuple(str(note) for note in data.get("notes", ())),
                detailed=bool(data.get("detailed", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UpstreamFailed(
                f"The admin endpoint's diagnosis has an unexpected shape ({error!r})."
            ) from None
