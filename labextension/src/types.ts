// The JSON the s3access routes send and accept. tests/server/test_ts_interfaces.py reads this file and
// checks it against what the routes answer and against the Python enums, so keep it to the declarations
// that test understands: interfaces, type aliases, `as const` lists and whole-number constants.

/** The access a request asks for: AccessLevel in mlspace_s3magic/core/remedy.py. */
export const ACCESS_LEVELS = ['list', 'read', 'read-write'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];
/** The levels a form offers, as the magic and the CLI do: REQUESTABLE in mlspace_s3magic/commands.py. */
export const REQUESTABLE = ['read', 'read-write'] as const;

/** A request's limits: NewAccessRequest in mlspace_s3magic/core/access.py (the reason is trimmed first). */
export const REASON_MIN_LENGTH = 3;
export const REASON_MAX_LENGTH = 2000;
export const DAYS_MIN = 1;
export const DAYS_MAX = 365;
export const PREFIX_MAX_LENGTH = 1024;
/** Today's bucket names: modern_rule_broken in mlspace_s3magic/core/names.py (older names may be longer). */
export const BUCKET_NAME_MIN_LENGTH = 3;
export const BUCKET_NAME_MAX_LENGTH = 63;

/** How far the caller reaches a bucket: Status in mlspace_s3magic/core/reachability.py. */
export type BucketStatus = 'read-write' | 'read' | 'list-only' | 'denied' | 'missing' | 'unknown';

/** A capability's verdict: Verdict in mlspace_s3magic/core/check.py. */
export type Verdict = 'allowed' | 'denied' | 'unknown';

export interface IIdentity {
  arn: string | null;
  account: string | null;
  principal_type: string | null;
  role: string | null;
  role_arn: string | null;
  session: string | null;
  user: string | null;
  project: string | null;
  boundary: string | null;
  user_scoped: boolean | null;
  notes: string[] | null;
}

export interface IBucket {
  bucket: string;
  status: BucketStatus;
  source: string | null;
  sources: string[] | null;
  owner_account: string | null;
  region: string | null;
  description: string | null;
  mlspace_data: boolean;
  probed_prefix: string | null;
  detail: string | null;
  uri: string;
  snippet: string;
}

export interface IBucketList {
  buckets: IBucket[];
  notes: string[] | null;
}

export interface ICapability {
  verdict: Verdict;
  blocked_by: string[] | null;
  probe: { outcome?: string | null; detail?: string | null } | null;
  disagreement: string | null;
}

export interface ILayerNote {
  layer: string;
  reason?: string | null;
}

export interface IFix {
  layer: string;
  target: string | null;
  applied_by: string | null;
  summary: string;
  command: string | null;
  warnings: string[] | null;
}

export interface ICheck {
  bucket: string;
  prefix: string | null;
  principal: string | null;
  capabilities: { list?: ICapability; read?: ICapability; write?: ICapability };
  unreadable_layers: ILayerNote[] | null;
  // The server may send layer names or {layer, reason} objects here.
  not_visible_layers: (string | ILayerNote)[] | null;
  fixes: IFix[] | null;
  notes: string[] | null;
}

/** The body of a POST to s3access/requests. */
export interface IAccessRequest {
  bucket: string;
  prefix: string;
  access: AccessLevel;
  reason: string;
  days: number | null;
  idempotency_key: string;
}

/** The answer to that POST: the request as filed, or queued until the admin endpoint answers. */
export type RequestResult =
  | { queued: false; id: string; status: string; bucket: string }
  | { queued: true; idempotency_key: string; endpoint: string | null };

/** A request's status: RequestStatus in mlspace_s3magic/core/access.py. */
export const REQUEST_STATUSES = [
  'pending',
  'approved',
  'awaiting-owner',
  'applied',
  'denied',
  'failed',
  'revoked',
  'expired',
  'cancelled'
] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
/** The statuses its requester may cancel from: those TRANSITIONS in core/access.py lead to cancelled from. */
export const CANCELLABLE = ['pending', 'approved', 'awaiting-owner', 'failed'] as const;

/** One layer of a request as its requester may read it: LayerSummary in core/access.py. */
export interface ILayerSummary {
  layer: string;
  target: string;
  allows: string;
  state: string;
}

/** One of the caller's requests as the endpoint recorded it (its plan and result left out). */
export interface IMyRequest {
  id: string;
  bucket: string;
  prefix: string;
  access: AccessLevel;
  reason: string;
  days: number | null;
  status: RequestStatus;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  /** Why an admin denied it, in their words; null unless denied. */
  decision_reason: string | null;
  summary: ILayerSummary[] | null;
}

/** GET s3access/requests, and POST s3access/requests/cancel: the caller's requests, and those queued
 * locally until the admin endpoint answers. */
export interface IRequestList {
  requests: IMyRequest[];
  queued: IAccessRequest[];
}

/** What a key holds, by its name: TABLE, TEXT and OTHER in mlspace_s3magic/core/browse.py. */
export type ObjectKind = 'table' | 'text' | 'other';

/** One object of a level: ObjectEntry with what Page.to_dict in core/browse.py adds for the browsers. */
export interface IBrowseObject {
  key: string;
  size: number;
  last_modified: string;
  storage_class: string;
  name: string;
  size_text: string;
  kind: ObjectKind;
  uri: string;
  snippet: string;
}

/** GET s3access/browse: one level (or, `recursive`, every object below), one ListObjectsV2 page. */
export interface IBrowsePage {
  bucket: string;
  prefix: string;
  folders: string[];
  objects: IBrowseObject[];
  next_token: string | null;
}

/** GET s3access/preview: Preview.to_dict in core/browse.py (`table` is a CSV's header and first rows). */
export interface IPreview {
  bucket: string;
  key: string;
  uri: string;
  kind: ObjectKind;
  binary: boolean;
  lines: string[];
  table: string[][] | null;
  summary: string;
  truncated: boolean;
  size: number | null;
  content_type: string | null;
}

/** Transfers' limits: DOWNLOAD_LIMIT in mlspace_s3magic/core/download.py, OPEN_LIMIT in core/objects.py and
 * MULTIPART_THRESHOLD in core/upload.py (a larger upload goes in parts, each part's progress shown). */
export const DOWNLOAD_LIMIT_BYTES = 1073741824;
export const OPEN_LIMIT_BYTES = 20971520;
export const MULTIPART_THRESHOLD_BYTES = 8388608;

/** A line of POST s3access/download or s3access/upload's NDJSON stream: bytes moved so far. */
export interface ITransferProgress {
  event: 'progress';
  done: number;
  total: number;
}

/** The stream's last line when the transfer worked: `path` is the local file (relative to Jupyter's root
 * folder, as the file browser names it), `uri` the object; `message` says it in a sentence. */
export interface ITransferDone {
  event: 'done';
  uri: string;
  path: string;
  size: number;
  size_text: string;
  message: string;
}

/** The stream's last line when the transfer failed after it started; `status` is the HTTP status the same
 * failure gets before the stream starts (403 refused, 404 missing, 409 exists, 502 AWS failed...). */
export interface ITransferError {
  event: 'error';
  status: number;
  message: string;
}

export type TransferEvent = ITransferProgress | ITransferDone | ITransferError;

/** GET s3access/object: a whole object (at most OPEN_LIMIT_BYTES) for JupyterLab's own viewers; `content` is
 * the text when it is UTF-8, else base64. */
export interface IObjectContent {
  bucket: string;
  key: string;
  uri: string;
  name: string;
  size: number;
  last_modified: string;
  mimetype: string;
  format: 'text' | 'base64';
  content: string;
}

/** GET s3access/admin/me: who the admin endpoint takes the notebook for, and whether it is an admin. */
export interface IAdminMe {
  arn: string | null;
  admin: boolean;
}

/** One line of a layer's diff: admin_review in mlspace_s3magic/admin/views.py. */
export interface IReviewDiffLine {
  kind: 'header' | 'added' | 'removed' | 'kept';
  text: string;
}

/** One layer a request's plan changes, as `s3access admin show` prints it. */
export interface IReviewChange {
  layer: string;
  target: string;
  account: string;
  applied_by: string;
  warnings: string[];
  diff: IReviewDiffLine[];
  command: string | null;
}

/** What the verification after an apply or revoke found for one capability. */
export interface IVerifiedCapability {
  capability: string;
  verdict: Verdict;
  blocked_by: string[];
  reasons: string[];
}

export interface IVerification {
  principal: string;
  verdict: Verdict;
  capabilities: IVerifiedCapability[];
  notes: string[];
}

/** A request as its admin reviews it: GET s3access/admin/request, POST s3access/admin/act. */
export interface IReview {
  id: string;
  status: RequestStatus;
  access: AccessLevel;
  bucket: string;
  prefix: string;
  reason: string;
  /** Why an admin denied it; null unless denied. */
  decision_reason: string | null;
  days: number | null;
  requester: string;
  requester_arn: string;
  created_at: string;
  expires_at: string | null;
  problems: string[];
  notes: string[];
  changes: IReviewChange[];
  verification: IVerification | null;
}

/** GET s3access/admin/requests: the requests under review, newest first. */
export interface IReviewList {
  requests: IReview[];
}
