// Client for the s3access REST routes of the mlspace_s3magic server extension.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export type BucketStatus = 'read-write' | 'read' | 'list-only' | 'denied' | 'missing' | 'unknown';

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

export type Verdict = 'allowed' | 'denied' | 'unknown';

export interface ICapability {
  verdict: Verdict;
  blocked_by: string[] | null;
  probe: { outcome?: string | null } | null;
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

export interface IAccessRequest {
  bucket: string;
  prefix: string;
  access: 'read' | 'read-write';
  reason: string;
  days: number | null;
  idempotency_key: string;
}

export type RequestResult =
  | { queued: false; id: string; status: string; bucket: string }
  | { queued: true; idempotency_key: string; endpoint: string | null };

/** GET or POST one route; a failure throws an Error whose message is fit to show the user. */
async function call<T>(
  path: string,
  query: Record<string, string> = {},
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const search = new URLSearchParams(query).toString();
  const url = URLExt.join(settings.baseUrl, 's3access', path) + (search ? `?${search}` : '');
  let response: Response;
  try {
    // makeRequest adds the token and the XSRF header.
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (err) {
    throw new Error(`Could not reach the Jupyter server: ${(err as Error).message}`);
  }
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: e.g. jupyter_server's HTML 404 page when the routes are missing.
  }
  if (!response.ok) {
    const message = (body as { message?: unknown } | null)?.message;
    if (typeof message === 'string' && message) {
      throw new Error(message);
    }
    const hint =
      response.status === 404
        ? ': is the mlspace_s3magic server extension installed and enabled?'
        : '';
    throw new Error(`The server answered ${response.status} ${response.statusText}${hint}`);
  }
  return body as T;
}

export function getIdentity(): Promise<IIdentity> {
  return call<IIdentity>('identity');
}

export function getBuckets(refresh: boolean): Promise<IBucketList> {
  return call<IBucketList>('buckets', refresh ? { refresh: 'true' } : {});
}

export function getCheck(bucket: string, prefix: string): Promise<ICheck> {
  return call<ICheck>('check', { bucket, prefix });
}

export function postRequest(request: IAccessRequest): Promise<RequestResult> {
  return call<RequestResult>('requests', {}, { method: 'POST', body: JSON.stringify(request) });
}
