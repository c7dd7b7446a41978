"""Real S3 calls that show what the caller can do today: list, read, and (only when asked) write.

Each probe is as small as S3 allows (one key listed, one byte read, a zero-byte marker written and deleted),
and its outcome is classified so a missing bucket, an archived object or a KMS refusal is never reported as
a plain "denied".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlspace_s3magic.core.aws import Aws, aws_call, error_code
from mlspace_s3magic.core.errors import EndpointUnreachable, S3MagicError
from mlspace_s3magic.core.names import BucketRef

# "~" sorts after letters and digits, so a concurrent listing of the prefix rarely sees the marker first.
MARKER_NAME = "~s3access-write-probe-"
READ_PROBE_KEY = "~s3access-read-probe"
PAYER = {"RequestPayer": "requester"}
REQUESTER_PAYS_HOW = (
    "Allowed, but this is a Requester Pays bucket: every request must say you pay, or S3 refuses it. "
    "boto3: RequestPayer='requester'; AWS CLI: --request-payer requester; pandas/s3fs: "
    "storage_options={'requester_pays': True}."
)


class PayerProbe(StrEnum):
    """When the listing that offers to pay (Requester Pays) is sent, relative to the plain one."""

    ALONGSIDE = "alongside"
    AFTER_DENIAL = "after-denial"
    FIRST = "first"


class Outcome(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    KMS_DENIED = "kms-denied"
    NO_SUCH_BUCKET = "no-such-bucket"
    NO_SUCH_KEY = "no-such-key"
    NOTHING_TO_READ = "nothing-to-read"
    ARCHIVED = "archived"
    REQUESTER_PAYS = "requester-pays"
    UNREACHABLE = "unreachable"
    ERROR = "error"
    NOT_RUN = "not-run"


@dataclass(frozen=True)
class Probe:
    """One S3 call and what came back, in AWS's terms (code) and in plain words (detail)."""

    capability: str  # "list", "read" or "write"
    action: str
    resource: str
    outcome: Outcome
    detail: str
    code: str | None = None
    key: str | None = None
    bucket_region: str | None = None

    @property
    def allowed(self) -> bool | None:
        """True/False when the probe proves the permission; None when it proves nothing either way."""
        if self.outcome in (Outcome.ALLOWED, Outcome.ARCHIVED, Outcome.NO_SUCH_KEY, Outcome.REQUESTER_PAYS):
            return True  # S3 checks permission before it looks at the object's state.
        if self.outcome in (Outcome.DENIED, Outcome.KMS_DENIED):
            return False
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


@dataclass(frozen=True)
class ProbeResults:
    list: Probe
    read: Probe
    write: Probe

    def by_capability(self) -> dict[str, Probe]:
        return {"list": self.list, "read": self.read, "write": self.write}


def _region_of(response: Any) -> str | None:
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


# AWS's AccessDenied names the refused action ("... not authorized to perform: kms:Decrypt on ..."); a bare
# "kms" could be part of a bucket name or key.
_KMS_ACTION = re.compile(r"\bkms:[A-Za-z]+")


def _classify(error: ClientError, *, capability: str, ref: BucketRef) -> tuple[Outcome, str]:
    code = error_code(error)
    message = str(error.response.get("Error", {}).get("Message", ""))
    if code == "NoSuchBucket":
        return (
            Outcome.NO_SUCH_BUCKET,
            f"There is no bucket named {ref.bucket} (a missing bucket, not a denial).",
        )
    if code == "NoSuchKey":
        return Outcome.NO_SUCH_KEY, "The key does not exist; S3 only says so to callers allowed to read."
    if code == "InvalidObjectState":
        return Outcome.ARCHIVED, (
            "The object is archived (Glacier or Deep Archive): reading is allowed, but it must be restored "
            "first (s3.restore_object)."
        )
    if code == "KMS.AccessDeniedException" or (code == "AccessDenied" and _KMS_ACTION.search(message)):
        return (
            Outcome.KMS_DENIED,
            f"S3 allowed the {capability} but KMS refused to use the bucket's key: {message}",
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return Outcome.DENIED, f"S3 answered {code} to the {capability} probe."
    return Outcome.ERROR, f"S3 answered {code}: {message}"


class Prober:
    """Runs the probes for one bucket reference with one set of clients."""

    def __init__(self, aws: Aws, ref: BucketRef, pool: ThreadPoolExecutor | None = None):
        self.aws = aws
        self.ref = ref
        self.pool = pool
        self.s3 = aws.client("s3")
        self.requester_pays = False

    def _call(
        self,
        capability: str,
        action: str,
        resource: str,
        call: Callable[[], dict[str, Any]],
        key: str | None = None,
    ) -> tuple[Probe, dict[str, Any] | None]:
        try:
            with aws_call(self.s3, action):
                response = call()
        except ClientError as error:
            outcome, detail = _classify(error, capability=capability, ref=self.ref)
            region = _region_of(error.response)
            probe = Probe(capability, action, resource, outcome, detail, error_code(error), key, region)
            return probe, None
        except EndpointUnreachable as error:
            return Probe(capability, action, resource, Outcome.UNREACHABLE, str(error), None, key), None
        except (S3MagicError, BotoCoreError) as error:
            return Probe(capability, action, resource, Outcome.ERROR, str(error), None, key), None
        region = _region_of(response)
        detail = f"{action} succeeded."
        if region and region != self.aws.region:
            detail += (
                f" The bucket is in {region}, not {self.aws.region}: S3 redirected the request there "
                f"(set S3Access.region = '{region}', or --region, to skip the redirect)."
            )
        return Probe(capability, action, resource, Outcome.ALLOWED, detail, None, key, region), response

    def list(self, *, payer: PayerProbe = PayerProbe.ALONGSIDE) -> tuple[Probe, str | None]:
        """ListObjectsV2 with MaxKeys=1 under the prefix; returns the first key seen for the read probe.

        A listing that offers to pay tells a Requester Pays bucket apart from a denial (S3 ignores the offer
        on other buckets). ``payer`` says when to send it: alongside the plain one (no extra round trip),
        only after the plain one is denied, or first (a refusal then settles it in one request).
        """
        if payer is PayerProbe.ALONGSIDE and self.pool is not None:
            paying = self.pool.submit(self._list, PAYER)
            probe, response = self._list({})
            paid_probe, paid_response = paying.result()
        elif payer is PayerProbe.FIRST:
            paid_probe, paid_response = self._list(PAYER)
            probe, response = (paid_probe, None) if paid_probe.allowed is False else self._list({})
        else:
            probe, response = self._list({})
            paid_probe, paid_response = (
                self._list(PAYER) if probe.outcome is Outcome.DENIED else (probe, None)
            )
        if probe.outcome is Outcome.DENIED and paid_probe.outcome is Outcome.ALLOWED:
            self.requester_pays = True
            probe = replace(paid_probe, outcome=Outcome.REQUESTER_PAYS, detail=REQUESTER_PAYS_HOW)
            response = paid_response
        keys = [str(item["Key"]) for item in (response or {}).get("Contents", [])]
        readable = [key for key in keys if MARKER_NAME not in key]
        return probe, (readable[0] if readable else None)

    def _list(self, extra: dict[str, str]) -> tuple[Probe, dict[str, Any] | None]:
        return self._call(
            "list",
            "s3:ListBucket",
            self.ref.bucket_arn,
            lambda: self.s3.list_objects_v2(Bucket=self._bucket, Prefix=self.ref.prefix, MaxKeys=1, **extra),
        )

    def read(self, key: str) -> Probe:
        """A 1-byte ranged GetObject: proves read access without downloading the object."""
        extra = PAYER if self.requester_pays else {}
        probe, _ = self._call(
            "read",
            "s3:GetObject",
            self.ref.object_arn(key),
            lambda: self.s3.get_object(Bucket=self._bucket, Key=key, Range="bytes=0-0", **extra),
            key,
        )
        if self.requester_pays and probe.outcome is Outcome.ALLOWED:
            return replace(probe, outcome=Outcome.REQUESTER_PAYS, detail=REQUESTER_PAYS_HOW)
        return probe

    def kms_key_of(self, key: str) -> str | None:
        """The KMS key ARN an object is encrypted with (HeadObject, which S3 answers without asking KMS), or
        None when it is not SSE-KMS or cannot be read: how a notebook learns a key it may not look up."""
        try:
            with aws_call(self.s3, "s3:GetObject"):
                head = self.s3.head_object(Bucket=self._bucket, Key=key)
        except (ClientError, S3MagicError, BotoCoreError):
            return None
        arn = str(head.get("SSEKMSKeyId") or "")
        return arn if str(head.get("ServerSideEncryption", "")).startswith("aws:kms") and arn else None

    def write(self) -> Probe:
        """Put a zero-byte marker the bucket owner will own, then delete it."""
        key = f"{self.ref.prefix}{MARKER_NAME}{uuid.uuid4().hex}"
        probe, response = self._call(
            "write",
            "s3:PutObject",
            self.ref.object_arn(key),
            lambda: self.s3.put_object(
                Bucket=self._bucket, Key=key, Body=b"", ACL="bucket-owner-full-control"
            ),
            key,
        )
        if response is not None:
            deleted, _ = self._call(
                "write",
                "s3:DeleteObject",
                self.ref.object_arn(key),
                lambda: self.s3.delete_object(Bucket=self._bucket, Key=key),
                key,
            )
            if deleted.outcome is not Outcome.ALLOWED:
                return Probe(
                    probe.capability,
                    probe.action,
                    probe.resource,
                    probe.outcome,
                    f"Writing works, but deleting the marker failed ({deleted.detail}); "
                    f"it remains at s3://{self.ref.bucket}/{key}.",
                    None,
                    key,
                    probe.bucket_region,
                )
        return probe

    @property
    def _bucket(self) -> str:
        return self.ref.access_point_arn or self.ref.bucket

    def not_run(self, capability: str, action: str, why: str) -> Probe:
        return Probe(capability, action, self.ref.bucket_arn, Outcome.NOT_RUN, why)


def _read_without_a_key(prober: Prober, list_probe: Probe) -> Probe:
    """Read a key that is surely absent: NoSuchKey proves GetObject is allowed, AccessDenied suggests not.

    S3 answers AccessDenied for a missing key to a caller without s3:ListBucket even when GetObject is
    allowed, so a denial is conclusive only when listing works; otherwise the detail says so.
    """
    probe = prober.read(f"{prober.ref.prefix}{READ_PROBE_KEY}")
    if probe.outcome is Outcome.NO_SUCH_KEY:
        return replace(
            probe,
            detail="GetObject is allowed (a probe for a missing key got NoSuchKey); no "
            "key was listed to read, so pass --key to probe a real object.",
        )
    if probe.outcome is Outcome.DENIED and list_probe.outcome is not Outcome.ALLOWED:
        return replace(
            probe,
            detail=f"{probe.detail} No key could be listed, so a missing key was probed: S3 "
            "refuses those to callers who cannot list, so pass --key to confirm with a real object.",
        )
    return probe


def run_probes(
    aws: Aws,
    ref: BucketRef,
    *,
    key: str | None = None,
    write: bool = False,
    pool: ThreadPoolExecutor | None = None,
) -> ProbeResults:
    """Run list, read and (if asked) write together; read waits for list only when no key was given.

    The listing runs on the calling thread; the pool carries what runs beside it. A caller's ``pool`` must
    have more workers than tasks that wait on others, or this could starve.
    """
    own_pool = pool is None
    executor = pool or ThreadPoolExecutor(max_workers=3)
    try:
        prober = Prober(aws, ref, executor)
        reading: Future[Probe] | None = executor.submit(prober.read, key) if key else None
        writing: Future[Probe] | None = executor.submit(prober.write) if write else None
        list_probe, first_key = prober.list()
        if reading is not None:
            read_probe = reading.result()
            if prober.requester_pays and read_probe.outcome is Outcome.DENIED:
                read_probe = prober.read(str(key))  # it ran before we knew the bucket wants a payer
        elif first_key is not None:
            read_probe = prober.read(first_key)
        elif list_probe.outcome is Outcome.NO_SUCH_BUCKET:
            read_probe = replace(list_probe, capability="read", action="s3:GetObject")
        else:
            read_probe = _read_without_a_key(prober, list_probe)
        write_probe = (
            writing.result()
            if writing is not None
            else prober.not_run("write", "s3:PutObject", "Not probed: pass --write-probe to test writing.")
        )
        return ProbeResults(list_probe, read_probe, write_probe)
    finally:
        if own_pool:
            executor.shutdown(wait=False)
