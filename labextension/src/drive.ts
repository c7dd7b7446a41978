// A read-only Contents drive over S3 objects, so JupyterLab's own viewers (CSV, text, JSON, notebooks,
// images) open an object as they open a local file: `S3:bucket/key` in the document manager. Every write
// is refused: an object opened here is a view of the bucket, and editing means downloading it first.
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { S3AccessApi } from './api';
import { IObjectContent } from './types';

/** The drive's name: a document's path is `S3:bucket/key`. */
export const S3_DRIVE_NAME = 'S3';

/** What every write says: the object can be read here, not changed. */
export const READ_ONLY_MESSAGE =
  'This S3 object is open read-only: download it (S3 Access sidebar, Download) to edit a copy.';

export class S3Drive implements Contents.IDrive {
  readonly name = S3_DRIVE_NAME;

  constructor(
    private readonly _api: S3AccessApi,
    readonly serverSettings: ServerConnection.ISettings
  ) {}

  get fileChanged(): ISignal<Contents.IDrive, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    this._isDisposed = true;
    Signal.clearData(this);
  }

  /** The object `bucket/key` as the viewer asked for it (a notebook parsed, a text as base64 for an image
   * viewer); without content when only its model is asked for. */
  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const slash = localPath.indexOf('/');
    if (slash < 1 || slash === localPath.length - 1) {
      throw new Error(`Not an S3 object: ${localPath} (expected bucket/key).`);
    }
    const object = await this._api.object(localPath.slice(0, slash), localPath.slice(slash + 1));
    const notebook = options?.type === 'notebook' || (!options?.type && object.key.endsWith('.ipynb'));
    let content: unknown = null;
    let format: Contents.FileFormat = object.format;
    if (notebook) {
      format = 'json';
      content = JSON.parse(decoded(object));
    } else if (options?.format === 'base64' && object.format === 'text') {
      format = 'base64';
      content = encoded(object.content);
    } else {
      content = object.content;
    }
    return {
      name: object.name,
      path: `${S3_DRIVE_NAME}:${localPath}`,
      type: notebook ? 'notebook' : 'file',
      writable: false,
      created: object.last_modified,
      last_modified: object.last_modified,
      mimetype: notebook ? 'application/x-ipynb+json' : object.mimetype,
      content: options?.content === false ? null : content,
      format: options?.content === false ? null : format,
      size: object.size
    };
  }

  getDownloadUrl(_localPath: string): Promise<string> {
    return refuse();
  }

  newUntitled(_options?: Contents.ICreateOptions): Promise<Contents.IModel> {
    return refuse();
  }

  delete(_localPath: string): Promise<void> {
    return refuse();
  }

  rename(_oldLocalPath: string, _newLocalPath: string): Promise<Contents.IModel> {
    return refuse();
  }

  save(_localPath: string, _options?: Partial<Contents.IModel>): Promise<Contents.IModel> {
    return refuse();
  }

  copy(_localPath: string, _toLocalDir: string): Promise<Contents.IModel> {
    return refuse();
  }

  createCheckpoint(_localPath: string): Promise<Contents.ICheckpointModel> {
    return refuse();
  }

  listCheckpoints(_localPath: string): Promise<Contents.ICheckpointModel[]> {
    return Promise.resolve([]);
  }

  restoreCheckpoint(_localPath: string, _checkpointID: string): Promise<void> {
    return refuse();
  }

  deleteCheckpoint(_localPath: string, _checkpointID: string): Promise<void> {
    return refuse();
  }

  private readonly _fileChanged = new Signal<Contents.IDrive, Contents.IChangedArgs>(this);
  private _isDisposed = false;
}

function refuse<T>(): Promise<T> {
  return Promise.reject(new Error(READ_ONLY_MESSAGE));
}

/** The object's text, whichever way the server sent it. */
function decoded(object: IObjectContent): string {
  if (object.format === 'text') {
    return object.content;
  }
  const bytes = Uint8Array.from(atob(object.content), c => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** A text as base64 of its UTF-8 bytes (btoa alone takes only Latin-1). */
function encoded(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary);
}
