// A readable bucket in the sidebar as a folder view: breadcrumbs, one level per request, "Load more" with
// the continuation token, a filter over the rows loaded, and per object Copy, Insert snippet, Preview and a
// drag of its s3:// path into a cell. Everything per object (name, size, kind, path, snippet) comes worked
// out from the server (Page.to_dict in core/browse.py), so this file only draws it.
import {
  closeIcon,
  fileIcon,
  folderIcon,
  LabIcon,
  spreadsheetIcon,
  textEditorIcon
} from '@jupyterlab/ui-components';

import { S3AccessApi } from './api';
import { button, copyButton, h } from './dom';
import { IBrowseObject, IBrowsePage, IPreview, ObjectKind } from './types';

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
        button(
          'Check',
          's3access-browse-check',
          () => this._options.check(this._options.bucket, this._prefix),
          'Check list, read and write access here, and what would fix a denial'
        )
      ),
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
          button('Preview', 's3access-browse-preview-button', () => void this._showPreview(o.key), 'The first lines')
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
