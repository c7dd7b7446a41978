// Client for the s3access REST routes of the mlspace_s3magic server extension.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IAccessRequest,
  IAdminMe,
  IBrowsePage,
  IBucketList,
  ICheck,
  IIdentity,
  IPreview,
  IRequestList,
  IReview,
  IReviewList,
  RequestResult
} from './types';

/** What an admin may do to a request through the review panel (the endpoint decides whether it may). */
export type AdminAction = 'approve' | 'deny' | 'apply' | 'revoke';

/**
 * The routes, through the server settings the plugin was given (its service manager's), so the base URL,
 * token and XSRF header are JupyterLab's own. A failure throws JupyterLab's errors: a
 * `ServerConnection.NetworkError` when the server cannot be reached, a `ServerConnection.ResponseError`
 * when it refuses; their message is fit to show the user.
 */
export class S3AccessApi {
  constructor(private readonly _settings: ServerConnection.ISettings) {}

  identity(): Promise<IIdentity> {
    return this._call<IIdentity>('identity');
  }

  buckets(refresh: boolean): Promise<IBucketList> {
    return this._call<IBucketList>('buckets', refresh ? { refresh: 'true' } : {});
  }

  check(bucket: string, prefix: string): Promise<ICheck> {
    return this._call<ICheck>('check', { bucket, prefix });
  }

  /** One page of a level (every object below it when `recursive`), from `token` on. */
  browse(
    bucket: string,
    prefix: string,
    options: { token?: string | null; pageSize?: number; recursive?: boolean } = {}
  ): Promise<IBrowsePage> {
    const query: Record<string, string> = { bucket, prefix };
    if (options.token) {
      query.continuation = options.token;
    }
    if (options.pageSize) {
      query.page_size = String(options.pageSize);
    }
    if (options.recursive) {
      query.recursive = 'true';
    }
    return this._call<IBrowsePage>('browse', query);
  }

  /** The first lines of an object, or a CSV's first rows. */
  preview(bucket: string, key: string): Promise<IPreview> {
    return this._call<IPreview>('preview', { bucket, key });
  }

  request(request: IAccessRequest): Promise<RequestResult> {
    return this._call<RequestResult>(
      'requests',
      {},
      { method: 'POST', body: JSON.stringify(request) }
    );
  }

  /** The caller's requests, and those queued until the admin endpoint answers. */
  requests(): Promise<IRequestList> {
    return this._call<IRequestList>('requests');
  }

  /** Withdraw one of the caller's requests; the answer is the list after it. */
  cancelRequest(id: string): Promise<IRequestList> {
    return this._call<IRequestList>('requests/cancel', { id }, { method: 'POST' });
  }

  /** Whether the admin endpoint takes this notebook's identity for one of its admins. */
  adminMe(): Promise<IAdminMe> {
    return this._call<IAdminMe>('admin/me');
  }

  /** The requests awaiting review or live (admins only: the endpoint refuses anyone else). */
  adminRequests(): Promise<IReviewList> {
    return this._call<IReviewList>('admin/requests');
  }

  /** One request with its plan per layer. */
  adminReview(id: string): Promise<IReview> {
    return this._call<IReview>('admin/request', { id });
  }

  adminAct(id: string, action: AdminAction): Promise<IReview> {
    return this._call<IReview>('admin/act', { id, action }, { method: 'POST' });
  }

  private async _call<T>(
    path: string,
    query: Record<string, string> = {},
    init: RequestInit = {}
  ): Promise<T> {
    const search = new URLSearchParams(query).toString();
    const url =
      URLExt.join(this._settings.baseUrl, 's3access', path) + (search ? `?${search}` : '');
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, init, this._settings);
    } catch (err) {
      throw new ServerConnection.NetworkError(
        new TypeError(`Could not reach the Jupyter server: ${(err as Error).message}`)
      );
    }
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: e.g. jupyter_server's HTML 404 page when the routes are missing.
    }
    if (!response.ok) {
      const message = (body as { message?: unknown } | null)?.message;
      const hint =
        response.status === 404
          ? ': is the mlspace_s3magic server extension installed and enabled?'
          : '';
      throw new ServerConnection.ResponseError(
        response,
        typeof message === 'string' && message
          ? message
          : `The server answered ${response.status} ${response.statusText}${hint}`
      );
    }
    return body as T;
  }
}
