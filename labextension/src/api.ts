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
  IObjectContent,
  IPreview,
  IRequestList,
  IReview,
  IReviewList,
  ITransferDone,
  ITransferProgress,
  RequestResult,
  TransferEvent
} from './types';

/** Called with each progress line of a transfer. */
export type OnProgress = (progress: ITransferProgress) => void;

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

  /** `reason` goes with a deny: the requester sees it. */
  adminAct(id: string, action: AdminAction, reason?: string): Promise<IReview> {
    const init: RequestInit = { method: 'POST' };
    if (reason !== undefined) {
      init.body = JSON.stringify({ reason });
    }
    return this._call<IReview>('admin/act', { id, action }, init);
  }

  /** Copy an object into `folder` (a path relative to Jupyter's root, as the file browser names it). */
  download(bucket: string, key: string, folder: string, onProgress: OnProgress): Promise<ITransferDone> {
    return this._stream('download', { bucket, key, folder }, onProgress);
  }

  /** Copy the local file `path` (relative to Jupyter's root) to `prefix` + its name; an existing object is
   * replaced only with `overwrite` (else the server refuses with 409). */
  upload(
    bucket: string,
    prefix: string,
    path: string,
    overwrite: boolean,
    onProgress: OnProgress
  ): Promise<ITransferDone> {
    const query: Record<string, string> = { bucket, prefix, path };
    if (overwrite) {
      query.overwrite = 'true';
    }
    return this._stream('upload', query, onProgress);
  }

  /** A whole object, for JupyterLab's viewers. */
  object(bucket: string, key: string): Promise<IObjectContent> {
    return this._call<IObjectContent>('object', { bucket, key });
  }

  private async _call<T>(
    path: string,
    query: Record<string, string> = {},
    init: RequestInit = {}
  ): Promise<T> {
    const response = await this._fetch(path, query, init);
    let body: unknown = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: e.g. jupyter_server's HTML 404 page when the routes are missing.
    }
    if (!response.ok) {
      throw refusal(response, body);
    }
    return body as T;
  }

  /**
   * A POST whose answer is NDJSON, one `TransferEvent` a line, sent as the transfer goes: progress lines,
   * then `done` (resolved) or `error` (thrown). A refusal before the transfer starts is plain JSON with its
   * status, as every other route's.
   */
  private async _stream(
    path: string,
    query: Record<string, string>,
    onProgress: OnProgress
  ): Promise<ITransferDone> {
    const response = await this._fetch(path, query, { method: 'POST' });
    if (!response.ok || !response.body) {
      let body: unknown = null;
      try {
        body = await response.json();
      } catch {
        // Not JSON: see _call.
      }
      throw refusal(response, body);
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      buffered += value ?? '';
      const lines = buffered.split('\n');
      buffered = done ? '' : (lines.pop() ?? '');
      for (const line of lines.filter(l => l.trim())) {
        const event = JSON.parse(line) as TransferEvent;
        if (event.event === 'progress') {
          onProgress(event);
        } else if (event.event === 'done') {
          void reader.cancel();
          return event;
        } else {
          void reader.cancel();
          // The stream's status is 200; the failure's own (403, 409...) is the event's.
          const failed = new Response(null, { status: event.status });
          throw new ServerConnection.ResponseError(failed, event.message);
        }
      }
      if (done) {
        throw new ServerConnection.ResponseError(
          response,
          'The server stopped answering before the transfer finished: look in the file browser or the ' +
            'bucket for what arrived, and try again.'
        );
      }
    }
  }

  private async _fetch(
    path: string,
    query: Record<string, string>,
    init: RequestInit
  ): Promise<Response> {
    const search = new URLSearchParams(query).toString();
    const url =
      URLExt.join(this._settings.baseUrl, 's3access', path) + (search ? `?${search}` : '');
    try {
      return await ServerConnection.makeRequest(url, init, this._settings);
    } catch (err) {
      throw new ServerConnection.NetworkError(
        new TypeError(`Could not reach the Jupyter server: ${(err as Error).message}`)
      );
    }
  }
}

/** A refused call as JupyterLab's error, with the server's message when it sent one. */
function refusal(response: Response, body: unknown): ServerConnection.ResponseError {
  const message = (body as { message?: unknown } | null)?.message;
  const hint =
    response.status === 404 ? ': is the mlspace_s3magic server extension installed and enabled?' : '';
  return new ServerConnection.ResponseError(
    response,
    typeof message === 'string' && message
      ? message
      : `The server answered ${response.status} ${response.statusText}${hint}`
  );
}
