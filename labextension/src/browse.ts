// A readable bucket in the sidebar as a folder view: breadcrumbs, one level per request, "Load more" with
// the continuation token, a filter over the rows loaded, and per object Copy, Insert snippet, Preview and a
// drag of its s3:// path into a cell, Download into the file browser's folder and Open in JupyterLab's own
// viewer; Upload here sends the file browser's selected files to the level shown, each transfer with its
// progress. Everything per object (name, size, kind, path, snippet) comes worked out from the server
// (Page.to_dict in core/browse.py), so this file only draws it.
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';
import {
  closeIcon,
  downloadIcon,
  fileIcon,
  fileUploadIcon,
  folderIcon,
  LabIcon,
  launchIcon,
  spreadsheetIcon,
  textEditorIcon
} from '@jupyterlab/ui-components';

import { S3AccessApi } from './api';
import { button, copyButton, h } from './dom';
import {
  DOWNLOAD_LIMIT_BYTES,
  IBrowseObject,
  IBrowsePage,
  IPreview,
  ITransferDone,
  MULTIPART_THRESHOLD_BYTES,
  ObjectKind,
  OPEN_LIMIT_BYTES
} from './types';

/** Rows per request: a few screens of a narrow sidebar; "Load more" asks for the next ones. */
export const BROWSE_PAGE_SIZE = 100;

export interface IBrowseOptions {
  api: S3AccessApi;
  bucket: string;
  prefix: string;
  insertSnippet(snippet: string): void;
  /** Back to the bucket list. */
  close(): void;
  /** The bucket's check, for a listing S3 refused after all. */
  check(bucket: string, prefix: string): void;
  /** JupyterLab's side of Download, Upload and Open; without it (no file browser) they are not offered. */
  files: ILocalFiles | null;
}

/** The file browser and the document manager, as the folder view uses them (index.ts provides them). */
export interface ILocalFiles {
  /** The file browser's folder, relative to Jupyter's root. */
  folder(): string;
  /** The files (not folders) selected in the file browser, relative to Jupyter's root. */
  selectedFiles(): string[];
  /** After a download: the file browser refreshed, and the file selected when its folder is shown. */
  reveal(path: string): Promise<void>;
  /** Whether JupyterLab has a viewer for a file of this name. */
  canOpen(name: string): boolean;
  /** The object in JupyterLab's own viewer, read-only. */
  open(bucket: string, key: string): Promise<void>;
}

/** A download or an upload as the transfers area shows it. */
interface ITransfer {
  direction: 'download' | 'upload';
  /** The object's or the file's name. */
  name: string;
  /** Where it goes, for the title. */
  to: string;
  state: 'running' | 'done' | 'error';
  done: number;
  total: number;
  message: string;
  /** A failed transfer's HTTP status (403 refused, 409 exists...). */
  status?: number;
  /** Set for a refused upload: the prefix whose check says why. */
  checkPrefix?: string;
}

const KIND_ICONS: Record<ObjectKind, LabIcon> = {
  table: spreadsheetIcon,
  text: textEditorIcon,
  other: fileIcon
};

type Preview = { key: string; state: 'loading' | 'ok' | 'error'; value?: IPreview; message?: string };

export class BrowseView {
  readonly node: HTMLElement;

  constructor(private readonly _options: IBrowseOptions) {
    this._filter = h('input', {
      type: 'search',
      class: 's3access-browse-filter jp-mod-styled',
      placeholder: 'Filter loaded rows',
      'aria-label': 'Filter the rows loaded'
    }) as HTMLInputElement;
    this._filter.addEventListener('input', () => this._renderList());
    this._recursive = button('All objects below', 's3access-browse-recursive', () => {
      this._open(this._prefix, !this._isRecursive);
    });
    this.node = h(
      'div',
      { class: 's3access-browse', 'data-bucket': _options.bucket },
      this._crumbs,
      h(
        'div',
        { class: 's3access-browse-tools' },
        this._filter,
        this._recursive,
        _options.files &&
          iconButton(
            fileUploadIcon,
            'Upload here',
            's3access-browse-upload',
            () => void this._upload(),
            "Upload the files selected in JupyterLab's file browser to this level " +
              `(in parts above ${formatBytes(MULTIPART_THRESHOLD_BYTES)})`
          ),
        button(
          'Check',
          's3access-browse-check',
          () => this._options.check(this._options.bucket, this._prefix),
          'Check list, read and write access here, and what would fix a denial'
        )
      ),
      this._transfers,
      this._list,
      this._preview
    );
    this._open(_options.prefix, false);
  }

  get bucket(): string {
    return this._options.bucket;
  }

  /** Load the level again (Refresh in the sidebar's header). */
  reload(): void {
    this._open(this._prefix, this._isRecursive);
  }

  private _open(prefix: string, recursive: boolean): void {
    this._prefix = prefix;
    this._isRecursive = recursive;
    this._folders = [];
    this._objects = [];
    this._next = null;
    this._filter.value = '';
    this._recursive.setAttribute('aria-pressed', String(recursive));
    this._recursive.title = recursive
      ? 'Show this level as folders again'
      : 'List every object below this level, without folders (a partitioned log prefix)';
    this.node.dataset.prefix = prefix;
    this._renderCrumbs();
    void this._load(null);
  }

  private async _load(token: string | null): Promise<void> {
    const seq = ++this._seq;
    this._error = null;
    this._loading = true;
    this._renderList();
    let page: IBrowsePage | null = null;
    try {
      page = await this._options.api.browse(this._options.bucket, this._prefix, {
        token,
        pageSize: BROWSE_PAGE_SIZE,
        recursive: this._isRecursive
      });
    } catch (err) {
      if (seq === this._seq) {
        this._error = (err as Error).message;
      }
    }
    if (seq !== this._seq) {
      return; // the user went elsewhere meanwhile
    }
    this._loading = false;
    if (page) {
      this._folders.push(...page.folders);
      this._objects.push(...page.objects);
      this._next = page.next_token;
    }
    this._renderList();
  }

  private _renderCrumbs(): void {
    const { bucket } = this._options;
    const crumbs: HTMLElement[] = [
      button('Buckets', 's3access-crumb s3access-browse-back', () => this._options.close(), 'All buckets'),
      button(bucket, 's3access-crumb', () => this._open('', false), `s3://${bucket}/`)
    ];
    let path = '';
    for (const part of this._prefix.split('/').filter(Boolean)) {
      path += `${part}/`;
      const target = path;
      crumbs.push(
        button(part, 's3access-crumb', () => this._open(target, false), `s3://${bucket}/${target}`)
      );
    }
    crumbs[crumbs.length - 1].setAttribute('aria-current', 'location');
    const separated = crumbs.flatMap((crumb, i) =>
      i ? [h('span', { class: 's3access-crumb-sep', 'aria-hidden': 'true' }, '/'), crumb] : [crumb]
    );
    this._crumbs.replaceChildren(...separated);
  }

  private _renderList(): void {
    const needle = this._filter.value.trim().toLowerCase();
    const shown = (name: string): boolean => !needle || name.toLowerCase().includes(needle);
    const folders = this._folders.filter(f => shown(this._name(f)));
    const objects = this._objects.filter(o => shown(o.name));
    const rows = h(
      'ul',
      { class: 's3access-browse-list' },
      ...folders.map(f => this._renderFolder(f)),
      ...objects.map(o => this._renderObject(o))
    );
    const loaded = this._folders.length + this._objects.length;
    const counted =
      `${this._folders.length} folder${this._folders.length === 1 ? '' : 's'}, ` +
      `${this._objects.length} object${this._objects.length === 1 ? '' : 's'} loaded` +
      (needle ? `, ${folders.length + objects.length} shown` : '');
    this._list.replaceChildren(
      rows,
      this._error
        ? h('div', { class: 's3access-error', role: 'alert' }, this._error)
        : '',
      this._loading
        ? h('div', { class: 's3access-loading' }, 'Loading…')
        : h(
            'div',
            { class: 's3access-browse-footer' },
            h(
              'span',
              { class: 's3access-browse-count' },
              loaded || this._error ? counted : 'Nothing here.'
            ),
            this._next &&
              button(
                'Load more',
                's3access-browse-more jp-mod-styled',
                () => void this._load(this._next),
                `The next ${BROWSE_PAGE_SIZE} entries`
              )
          )
    );
  }

  private _renderFolder(prefix: string): HTMLElement {
    const name = this._name(prefix);
    return h(
      'li',
      { class: 's3access-browse-row s3access-browse-folder', 'data-prefix': prefix },
      icon(folderIcon),
      button(name, 's3access-browse-name', () => this._open(prefix, false), `s3://${this._options.bucket}/${prefix}`)
    );
  }

  private _renderObject(o: IBrowseObject): HTMLElement {
    const when = new Date(o.last_modified);
    const name = h(
      'span',
      { class: 's3access-browse-name', title: `${o.uri}\nDrag into a cell to paste this path`, draggable: 'true' },
      o.name
    );
    name.addEventListener('dragstart', event => {
      event.dataTransfer?.setData('text/plain', o.uri);
      if (event.dataTransfer) {
        event.dataTransfer.effectAllowed = 'copy';
      }
    });
    return h(
      'li',
      { class: 's3access-browse-row s3access-browse-object', 'data-key': o.key, 'data-kind': o.kind },
      icon(KIND_ICONS[o.kind] ?? fileIcon),
      name,
      h('span', { class: 's3access-browse-size', title: `${o.size} bytes` }, o.size_text),
      h('span', { class: 's3access-browse-date', title: when.toString() }, shortDate(when)),
      h(
        'span',
        { class: 's3access-browse-actions' },
        copyButton(o.uri, 's3access-browse-copy', `Copy ${o.uri}`),
        button(
          'Insert',
          's3access-browse-insert',
          () => this._options.insertSnippet(o.snippet),
          'Insert code that loads this object as a new cell below the active one'
        ),
        o.kind !== 'other' &&
          button('Preview', 's3access-browse-preview-button', () => void this._showPreview(o.key), 'The first lines'),
        ...this._transferButtons(o)
      )
    );
  }

  /** Open and Download for an object, disabled with the reason when it is larger than they take. */
  private _transferButtons(o: IBrowseObject): HTMLElement[] {
    const files = this._options.files;
    if (!files) {
      return [];
    }
    const buttons: HTMLButtonElement[] = [];
    if (o.kind !== 'other' || files.canOpen(o.name)) {
      const open = iconButton(
        launchIcon,
        'Open',
        's3access-browse-open',
        () => void this._openInViewer(o),
        "Open in JupyterLab's viewer, read-only " + `(up to ${formatBytes(OPEN_LIMIT_BYTES)})`,
        false
      );
      if (o.size > OPEN_LIMIT_BYTES) {
        open.disabled = true;
        open.title = `${o.size_text}: larger than the ${formatBytes(OPEN_LIMIT_BYTES)} a viewer is given; download it instead`;
      }
      buttons.push(open);
    }
    const download = iconButton(
      downloadIcon,
      'Download',
      's3access-browse-download',
      () => void this._download(o),
      `Download into the file browser's folder (up to ${formatBytes(DOWNLOAD_LIMIT_BYTES)})`,
      false
    );
    if (o.size > DOWNLOAD_LIMIT_BYTES) {
      download.disabled = true;
      download.title =
        `${o.size_text}: larger than the ${formatBytes(DOWNLOAD_LIMIT_BYTES)} a download may be; ` +
        'read it from S3 in code instead (Insert)';
    }
    buttons.push(download);
    return buttons;
  }

  private async _openInViewer(o: IBrowseObject): Promise<void> {
    try {
      await this._options.files?.open(this._options.bucket, o.key);
    } catch (err) {
      this._notice(`Could not open ${o.name}: ${(err as Error).message}`);
    }
  }

  private async _download(o: IBrowseObject): Promise<void> {
    const files = this._options.files;
    if (!files) {
      return;
    }
    const folder = files.folder();
    const transfer = this._start('download', o.name, `/${folder}`, o.size);
    const done = await this._run(transfer, onProgress =>
      this._options.api.download(this._options.bucket, o.key, folder, onProgress)
    );
    if (done) {
      await files.reveal(done.path).catch(() => undefined); // the file is there even if the browser lags
    }
  }

  /** Upload the file browser's selected files, one after the other, to the level shown; then list it again. */
  private async _upload(): Promise<void> {
    const files = this._options.files;
    if (!files) {
      return;
    }
    const paths = files.selectedFiles();
    if (!paths.length) {
      this._notice('Select files in the file browser first: Upload here sends the selected files.');
      return;
    }
    const { bucket } = this._options;
    const prefix = this._prefix;
    let uploaded = 0;
    for (const path of paths) {
      const name = path.slice(path.lastIndexOf('/') + 1);
      let overwrite = false;
      for (;;) {
        const transfer = this._start('upload', name, `s3://${bucket}/${prefix}${name}`, 0);
        const done = await this._run(
          transfer,
          onProgress => this._options.api.upload(bucket, prefix, path, overwrite, onProgress),
          prefix
        );
        if (done) {
          uploaded++;
        } else if (transfer.status === 409 && !overwrite && (await confirmReplace(transfer.to, path))) {
          this._dismiss(transfer);
          overwrite = true;
          continue;
        }
        break;
      }
    }
    if (uploaded && this._prefix === prefix) {
      this.reload();
    }
  }

  private _start(direction: ITransfer['direction'], name: string, to: string, total: number): ITransfer {
    const transfer: ITransfer = { direction, name, to, state: 'running', done: 0, total, message: '' };
    this._transferList.push(transfer);
    this._renderTransfers();
    return transfer;
  }

  /** Run one transfer, showing its progress, then its message; null when it failed. */
  private async _run(
    transfer: ITransfer,
    send: (onProgress: (p: { done: number; total: number }) => void) => Promise<ITransferDone>,
    checkPrefix?: string
  ): Promise<ITransferDone | null> {
    let drawn = 0;
    try {
      const done = await send(progress => {
        transfer.done = progress.done;
        transfer.total = progress.total;
        // Redraw at most ~10 times a second: a large transfer reports every part.
        const now = Date.now();
        if (now - drawn > 100) {
          drawn = now;
          this._renderTransfers();
        }
      });
      transfer.state = 'done';
      transfer.done = transfer.total = done.size;
      transfer.message = done.message;
      return done;
    } catch (err) {
      transfer.state = 'error';
      transfer.message = (err as Error).message;
      transfer.status = err instanceof ServerConnection.ResponseError ? err.response.status : undefined;
      if (transfer.status === 403 && checkPrefix !== undefined) {
        transfer.checkPrefix = checkPrefix;
      }
      return null;
    } finally {
      this._renderTransfers();
    }
  }

  /** A line in the transfers area that is not a transfer (nothing selected, a viewer that failed). */
  private _notice(message: string): void {
    this._transferList.push({
      direction: 'upload',
      name: '',
      to: '',
      state: 'error',
      done: 0,
      total: 0,
      message
    });
    this._renderTransfers();
  }

  private _dismiss(transfer: ITransfer): void {
    this._transferList = this._transferList.filter(t => t !== transfer);
    this._renderTransfers();
  }

  private _renderTransfers(): void {
    const items = this._transferList.map(t => this._renderTransfer(t));
    this._transfers.replaceChildren(
      items.length ? h('ul', { class: 's3access-transfers', 'aria-label': 'Transfers' }, ...items) : ''
    );
  }

  private _renderTransfer(t: ITransfer): HTMLElement {
    const percent = t.total ? Math.min(100, Math.floor((t.done / t.total) * 100)) : t.state === 'done' ? 100 : 0;
    const dismiss = h('button', {
      type: 'button',
      class: 's3access-transfer-dismiss',
      title: 'Remove this line',
      'aria-label': 'Remove this line'
    });
    dismiss.append(closeIcon.element({ tag: 'span' }));
    dismiss.addEventListener('click', () => this._dismiss(t));
    const running = t.state === 'running';
    const fill = h('div', { class: 's3access-transfer-fill' });
    fill.style.width = `${percent}%`;
    return h(
      'li',
      {
        class: 's3access-transfer',
        'data-direction': t.direction,
        'data-state': t.state,
        'data-name': t.name
      },
      t.name &&
        h(
          'div',
          { class: 's3access-transfer-head' },
          h('span', { class: 's3access-transfer-kind' }, t.direction === 'download' ? 'Download' : 'Upload'),
          h('span', { class: 's3access-transfer-name', title: `${t.name}\nto ${t.to}` }, t.name),
          !running && dismiss
        ),
      t.name &&
        t.state !== 'error' &&
        h(
          'div',
          {
            class: 's3access-transfer-bar',
            role: 'progressbar',
            'aria-valuemin': '0',
            'aria-valuemax': '100',
            'aria-valuenow': String(percent),
            'aria-label': `${t.name}: ${percent} %`
          },
          fill
        ),
      running
        ? h(
            'div',
            { class: 's3access-transfer-progress' },
            t.total
              ? `${formatBytes(t.done)} of ${formatBytes(t.total)} (${percent} %)`
              : `${formatBytes(t.done)}…`
          )
        : h(
            'div',
            {
              class: t.state === 'error' ? 's3access-transfer-message s3access-error' : 's3access-transfer-message',
              role: t.state === 'error' ? 'alert' : 'status'
            },
            t.message,
            !t.name && dismiss
          ),
      t.checkPrefix !== undefined &&
        button(
          'Check',
          's3access-transfer-check',
          () => this._options.check(this._options.bucket, t.checkPrefix ?? ''),
          `Check list, read and write access to s3://${this._options.bucket}/${t.checkPrefix}, and what would fix a denial`
        )
    );
  }

  private async _showPreview(key: string): Promise<void> {
    const shown: Preview = { key, state: 'loading' };
    this._shown = shown;
    this._renderPreview();
    try {
      shown.value = await this._options.api.preview(this._options.bucket, key);
      shown.state = 'ok';
    } catch (err) {
      shown.state = 'error';
      shown.message = (err as Error).message;
    }
    if (this._shown === shown) {
      this._renderPreview();
    }
  }

  private _renderPreview(): void {
    const shown = this._shown;
    if (!shown) {
      this._preview.replaceChildren();
      return;
    }
    const close = closeIcon.element({ tag: 'span' });
    const closeButton = h('button', {
      type: 'button',
      class: 's3access-browse-preview-close',
      title: 'Close the preview',
      'aria-label': 'Close the preview'
    });
    closeButton.append(close);
    closeButton.addEventListener('click', () => {
      this._shown = null;
      this._renderPreview();
    });
    const head = h(
      'div',
      { class: 's3access-browse-preview-head' },
      h('code', { title: shown.key }, this._name(shown.key)),
      closeButton
    );
    let body: HTMLElement;
    if (shown.state === 'loading') {
      body = h('div', { class: 's3access-loading' }, 'Loading preview…');
    } else if (shown.state === 'error' || !shown.value) {
      body = h('div', { class: 's3access-error', role: 'alert' }, shown.message ?? '');
    } else {
      body = renderPreview(shown.value);
    }
    this._preview.replaceChildren(
      h('section', { class: 's3access-browse-preview', 'data-key': shown.key }, head, body)
    );
  }

  /** A prefix or key relative to the level shown, as the server names objects. */
  private _name(full: string): string {
    const level = this._prefix.slice(0, this._prefix.lastIndexOf('/') + 1);
    return full.startsWith(level) ? full.slice(level.length) : full;
  }

  private readonly _crumbs = h('nav', { class: 's3access-breadcrumbs', 'aria-label': 'Location' });
  private readonly _list = h('div', { class: 's3access-browse-body' });
  private readonly _preview = h('div', {});
  private readonly _transfers = h('div', { class: 's3access-transfers-area' });
  private _transferList: ITransfer[] = [];
  private readonly _filter: HTMLInputElement;
  private readonly _recursive: HTMLButtonElement;
  private _prefix = '';
  private _isRecursive = false;
  private _folders: string[] = [];
  private _objects: IBrowseObject[] = [];
  private _next: string | null = null;
  private _loading = false;
  private _error: string | null = null;
  private _shown: Preview | null = null;
  private _seq = 0;
}

function renderPreview(p: IPreview): HTMLElement {
  const summary = h('div', { class: 's3access-browse-preview-summary' }, p.summary);
  if (p.table?.length) {
    const [header, ...rows] = p.table;
    const table = h(
      'table',
      { class: 's3access-browse-table' },
      h('thead', {}, h('tr', {}, ...header.map(c => h('th', {}, c)))),
      h('tbody', {}, ...rows.map(row => h('tr', {}, ...row.map(c => h('td', {}, c)))))
    );
    return h('div', {}, summary, h('div', { class: 's3access-browse-table-wrap' }, table));
  }
  if (p.binary) {
    return h('div', {}, summary);
  }
  return h('div', {}, summary, h('pre', { class: 's3access-browse-lines' }, p.lines.join('\n')));
}

/** A button with JupyterLab's icon, labelled, or (`showLabel` false) the label only for screen readers and
 * in the title. */
function iconButton(
  labIcon: LabIcon,
  label: string,
  className: string,
  onClick: () => void,
  title: string,
  showLabel = true
): HTMLButtonElement {
  const node = button('', `${className} s3access-icon-button`, onClick, title);
  node.setAttribute('aria-label', label);
  node.append(icon(labIcon));
  if (showLabel) {
    node.append(h('span', {}, label));
  }
  return node;
}

/** Ask before replacing an object an upload would overwrite. */
async function confirmReplace(uri: string, path: string): Promise<boolean> {
  const result = await showDialog({
    title: 'Replace the object?',
    body: `${uri} already exists. Replace it with ${path}?`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Replace' })]
  });
  return result.button.accept;
}

/** Bytes in binary units, as `1 GiB` or `4.4 KiB`: the limits are powers of two. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 || value >= 100 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${units[unit]}`;
}

function icon(labIcon: LabIcon): HTMLElement {
  const node = labIcon.element({ tag: 'span' });
  node.classList.add('s3access-browse-icon');
  node.setAttribute('aria-hidden', 'true');
  return node;
}

/** The day in the viewer's time zone, all a narrow row has room for; the full moment is in the title. */
function shortDate(when: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
}
