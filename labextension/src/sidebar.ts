// The left sidebar: who I am, the buckets I can reach, and a bucket's check with its fixes. It must stay
// readable at JupyterLab's narrowest sidebar: one line per bucket and per capability, long names ellipsized
// with the full name on hover, and the fixes' commands folded away until asked for.
import { Clipboard, Notification } from '@jupyterlab/apputils';
import { checkIcon, closeIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { S3AccessApi } from './api';
import { BrowseView, ILocalFiles } from './browse';
import { IRequestDefaults } from './dialog';
import { button, Child, copyButton, h } from './dom';
import { bucketIcon } from './icon';
import {
  IBucket,
  IBucketList,
  ICapability,
  ICheck,
  IFix,
  IIdentity,
  ILayerNote,
  Verdict
} from './types';

type Load<T> =
  | { state: 'loading' }
  | { state: 'error'; message: string }
  | { state: 'ok'; value: T };

interface ICheckView {
  bucket: string;
  prefix: string;
  check: Load<ICheck>;
  /** The layers whose fix the user unfolded, kept open when the view is drawn again. */
  openFixes: Set<string>;
}

export interface ISidebarOptions {
  api: S3AccessApi;
  insertSnippet(snippet: string): void;
  requestAccess(defaults: IRequestDefaults): void;
  /** The file browser and document manager for Download, Upload and Open; null without them. */
  files: ILocalFiles | null;
}

const CAPABILITIES = ['list', 'read', 'write'] as const;
/** The statuses whose bucket opens as a folder view; any other opens its check. */
const LISTABLE = new Set(['read-write', 'read', 'list-only']);

export class S3AccessSidebar extends Widget {
  constructor(private readonly _options: ISidebarOptions) {
    super();
    this.id = 's3access-sidebar';
    this.title.icon = bucketIcon;
    this.title.caption = 'S3 Access';
    this.addClass('s3access-sidebar');
    this._render();
  }

  /** The names last listed, or null before a listing arrived. */
  get bucketNames(): string[] | null {
    return this._buckets.state === 'ok' ? this._buckets.value.buckets.map(b => b.bucket) : null;
  }

  /** Reload identity and buckets (probing them again when `probe`), and the open check. */
  refresh(probe: boolean): void {
    this._started = true;
    void this._loadIdentity();
    void this._loadBuckets(probe);
    this._browse?.reload();
    if (this._check) {
      void this._loadCheck(this._check.bucket, this._check.prefix, this._check.openFixes);
    }
  }

  showCheck(bucket: string, prefix: string): void {
    void this._loadCheck(bucket, prefix); // My requests' Re-check (index.ts)
  }

  // Load only once the panel is first seen: listing probes every bucket, which costs AWS calls.
  protected onAfterAttach(_msg: Message): void {
    this._startIfVisible();
  }

  protected onAfterShow(_msg: Message): void {
    this._startIfVisible();
  }

  private _startIfVisible(): void {
    if (!this._started && this.isVisible) {
      this.refresh(false);
    }
  }

  private async _loadIdentity(): Promise<void> {
    const seq = ++this._identitySeq;
    this._identity = { state: 'loading' };
    this._render();
    const result = await settle(this._options.api.identity());
    if (seq === this._identitySeq) {
      this._identity = result;
      this._render();
    }
  }

  private async _loadBuckets(probe: boolean): Promise<void> {
    const seq = ++this._bucketsSeq;
    this._buckets = { state: 'loading' };
    this._render();
    const result = await settle(this._options.api.buckets(probe));
    if (seq === this._bucketsSeq) {
      this._buckets = result;
      this._render();
    }
  }

  private _openBucket(b: IBucket): void {
    if (!LISTABLE.has(b.status)) {
      void this._loadCheck(b.bucket, b.probed_prefix ?? '');
      return;
    }
    this._browse = new BrowseView({
      api: this._options.api,
      bucket: b.bucket,
      prefix: b.probed_prefix ?? '',
      insertSnippet: this._options.insertSnippet,
      close: () => {
        this._browse = null;
        this._render();
      },
      check: (bucket, prefix) => void this._loadCheck(bucket, prefix),
      files: this._options.files
    });
    this._render();
  }

  private async _loadCheck(bucket: string, prefix: string, openFixes = new Set<string>()): Promise<void> {
    this._browse = null;
    const view: ICheckView = { bucket, prefix, check: { state: 'loading' }, openFixes };
    this._check = view;
    this._render();
    const result = await settle(this._options.api.check(bucket, prefix));
    // The user may have gone back or opened another bucket meanwhile.
    if (this._check === view) {
      view.check = result;
      this._render();
    }
  }

  private _render(): void {
    const header = h(
      'header',
      { class: 's3access-header' },
      h('h2', {}, 'S3 Access'),
      button(
        'Refresh',
        's3access-refresh jp-mod-styled',
        () => this.refresh(true),
        'Probe the buckets again and reload your identity'
      )
    );
    const body = this._browse
      ? this._browse.node
      : this._check
        ? this._renderCheck(this._check)
        : this._renderBuckets();
    this.node.replaceChildren(header, this._renderIdentity(), body);
  }

  private _renderIdentity(): HTMLElement {
    const id = this._identity;
    if (id.state !== 'ok') {
      return h('section', { class: 's3access-identity' }, status(id, 'Loading identity…'));
    }
    const fields: [string, keyof IIdentity][] = [
      ['User', 'user'],
      ['Project', 'project'],
      ['ARN', 'arn'],
      ['Account', 'account']
    ];
    const dl = h('dl');
    for (const [label, key] of fields) {
      dl.append(h('dt', {}, label), h('dd', { 'data-field': key }, String(id.value[key] ?? '—')));
    }
    // Who is asking, once: a line that unfolds into the full identity (the ARN is long).
    const { user, role, project, account, arn } = id.value;
    const line = [user ?? role ?? 'unknown caller', project, account].filter(Boolean).join(' · ');
    const details = h(
      'details',
      { class: 's3access-identity' },
      h('summary', { class: 's3access-identity-line', title: arn ?? '' }, line),
      dl,
      notes(id.value.notes)
    ) as HTMLDetailsElement;
    details.open = this._identityOpen;
    details.addEventListener('toggle', () => (this._identityOpen = details.open));
    return details;
  }

  private _renderBuckets(): HTMLElement {
    const list = this._buckets;
    if (list.state !== 'ok') {
      return status(list, 'Loading buckets…');
    }
    const { buckets, notes: listNotes } = list.value;
    return h(
      'div',
      { class: 's3access-bucket-list' },
      buckets.length
        ? h('ul', { class: 's3access-buckets' }, ...buckets.map(b => this._renderBucket(b)))
        : h('p', { class: 's3access-empty' }, 'No buckets found.'),
      notes(listNotes)
    );
  }

  private _renderBucket(b: IBucket): HTMLElement {
    const meta = [
      b.description,
      b.owner_account && `account ${b.owner_account}`,
      b.region,
      b.detail
    ]
      .filter(Boolean)
      .join(' · ');
    return h(
      'li',
      {
        class: 's3access-bucket',
        'data-bucket': b.bucket,
        'data-status': b.status,
        'data-mlspace-data': String(b.mlspace_data)
      },
      h(
        'div',
        { class: 's3access-bucket-head' },
        button(
          b.bucket,
          's3access-bucket-name',
          () => this._openBucket(b),
          LISTABLE.has(b.status)
            ? `${b.bucket}\nBrowse its folders and objects`
            : `${b.bucket}\nCheck list, read and write access`
        ),
        h('span', { class: 's3access-badge s3access-status', 'data-status': b.status }, b.status)
      ),
      (meta || b.mlspace_data) &&
        h(
          'div',
          { class: 's3access-bucket-meta', title: meta },
          b.mlspace_data &&
            h(
              'span',
              { class: 's3access-mlspace-data', title: "This notebook's data bucket" },
              'MLSpace data'
            ),
          meta
        ),
      h(
        'div',
        { class: 's3access-bucket-actions' },
        button('Copy s3:// path', 's3access-copy', () => {
          Clipboard.copyToSystem(b.uri);
          Notification.info(`Copied ${b.uri}`, { autoClose: 3000 });
        }),
        button(
          'Insert snippet',
          's3access-insert',
          () => this._options.insertSnippet(b.snippet),
          'Insert code that reads this bucket as a new cell below the active one'
        )
      )
    );
  }

  private _renderCheck(view: ICheckView): HTMLElement {
    const uri = `s3://${view.bucket}/${view.prefix}`;
    const node = h(
      'div',
      { class: 's3access-check', 'data-bucket': view.bucket, 'data-prefix': view.prefix },
      h(
        'div',
        { class: 's3access-check-bar' },
        button('← All buckets', 's3access-back', () => {
          this._check = null;
          this._render();
        }),
        button('Request access', 's3access-request-button jp-mod-styled jp-mod-accept', () =>
          this._options.requestAccess({ bucket: view.bucket, prefix: view.prefix })
        )
      ),
      h('h3', { title: uri }, uri)
    );
    if (view.check.state !== 'ok') {
      node.append(status(view.check, 'Checking…'));
      return node;
    }
    const c = view.check.value;
    const capabilities = h('ul', { class: 's3access-capabilities' });
    for (const name of CAPABILITIES) {
      const cap = c.capabilities[name];
      if (cap) {
        capabilities.append(renderCapability(name, cap));
      }
    }
    // The identity line above already names the caller; say who was checked only if it is someone else.
    const me = this._identity.state === 'ok' ? this._identity.value.arn : null;
    const fixes = c.fixes ?? [];
    node.append(
      h(
        'div',
        { class: 's3access-check-result' },
        c.principal &&
          c.principal !== me &&
          h('p', { class: 's3access-principal', title: c.principal }, `Checked as ${c.principal}`),
        capabilities,
        section(
          `Fixes (${fixes.length})`,
          's3access-fixes',
          fixes.map(fix => renderFix(fix, view.openFixes))
        ),
        layerChips('Could not be read:', 's3access-unreadable', c.unreadable_layers ?? []),
        layerChips('Not visible from here:', 's3access-not-visible', c.not_visible_layers ?? []),
        notes(c.notes)
      )
    );
    return node;
  }

  private _identity: Load<IIdentity> = { state: 'loading' };
  private _buckets: Load<IBucketList> = { state: 'loading' };
  private _check: ICheckView | null = null;
  private _browse: BrowseView | null = null;
  private _identityOpen = false;
  private _identitySeq = 0;
  private _bucketsSeq = 0;
  private _started = false;
}

/** A promise's outcome as a Load: the server's message on failure. */
async function settle<T>(promise: Promise<T>): Promise<Load<T>> {
  try {
    return { state: 'ok', value: await promise };
  } catch (err) {
    return { state: 'error', message: (err as Error).message };
  }
}

function status(load: Load<unknown>, loadingText: string): HTMLElement {
  return load.state === 'error'
    ? h('div', { class: 's3access-error', role: 'alert' }, load.message)
    : h('div', { class: 's3access-loading' }, loadingText);
}

function notes(items: string[] | null): Child {
  return items?.length
    ? h('ul', { class: 's3access-notes' }, ...items.map(n => h('li', {}, n)))
    : null;
}

function section(title: string, className: string, items: HTMLElement[]): Child {
  return items.length
    ? h('section', { class: className }, h('h4', {}, title), h('ul', {}, ...items))
    : null;
}

function renderCapability(name: string, cap: ICapability): HTMLElement {
  const blocked = cap.verdict === 'allowed' ? [] : (cap.blocked_by ?? []);
  // For an unknown verdict these are the layers that could block, not ones proven to.
  const blockedLabel = cap.verdict === 'denied' ? 'Blocked by' : 'Could be blocked by';
  const said = [`${name}: ${cap.verdict}`];
  if (blocked.length) {
    said.push(`${blockedLabel} ${blocked.join(', ')}`);
  }
  if (cap.probe?.outcome) {
    said.push(`Probe: ${[cap.probe.outcome, cap.probe.detail].filter(Boolean).join(': ')}`);
  }
  return h(
    'li',
    {
      class: 's3access-capability',
      'data-capability': name,
      'data-verdict': cap.verdict,
      title: said.join('\n')
    },
    verdictMark(cap.verdict),
    h('span', { class: 's3access-capability-name' }, name),
    blocked.length > 0 &&
      h(
        'span',
        { class: 's3access-blocked', 'aria-label': `${blockedLabel}: ${blocked.join(', ')}` },
        ...blocked.map(layer => chip(CHIP_LABELS[layer] ?? layer, `${blockedLabel} ${layer}`))
      ),
    cap.disagreement && h('div', { class: 's3access-disagreement' }, cap.disagreement)
  );
}

/** Shorter names where a capability's line has no room for the layer's own (its title gives it whole). */
const CHIP_LABELS: Record<string, string> = { 'bucket-policy': 'bucket', 'requester-pays': 'payer' };

/** The verdict as a mark that needs no font of its own: JupyterLab's check and cross icons, or "?". */
function verdictMark(verdict: Verdict): HTMLElement {
  const icon = verdict === 'allowed' ? checkIcon : verdict === 'denied' ? closeIcon : null;
  const node = icon ? icon.element({ tag: 'span' }) : h('span', {}, '?');
  node.className = 's3access-verdict';
  node.dataset.verdict = verdict;
  node.setAttribute('role', 'img');
  node.setAttribute('aria-label', verdict);
  node.title = verdict;
  return node;
}

function chip(text: string, title: string): HTMLElement {
  return h('span', { class: 's3access-chip', title }, text);
}

/** A fix folded to one line (its layer and target); unfolded, what it does and the command to copy. */
function renderFix(fix: IFix, open: Set<string>): HTMLElement {
  const details = h(
    'details',
    {},
    h(
      'summary',
      { title: fix.target ? `${fix.layer} on ${fix.target}` : fix.layer },
      h('span', { class: 's3access-chip' }, fix.layer),
      fix.target ? ` ${fix.target}` : ''
    ),
    h('p', {}, fix.summary),
    fix.applied_by && h('div', { class: 's3access-fix-by' }, `Applied by: ${fix.applied_by}`),
    fix.command &&
      h(
        'div',
        { class: 's3access-command-head' },
        h('span', {}, 'Command'),
        copyButton(fix.command, 's3access-copy-command', `Copy the ${fix.layer} command`)
      ),
    fix.command && h('pre', { class: 's3access-command' }, fix.command),
    fix.warnings?.length
      ? h('ul', { class: 's3access-warnings' }, ...fix.warnings.map(w => h('li', {}, w)))
      : null
  ) as HTMLDetailsElement;
  details.open = open.has(fix.layer);
  details.addEventListener('toggle', () =>
    details.open ? open.add(fix.layer) : open.delete(fix.layer)
  );
  return h('li', { class: 's3access-fix', 'data-layer': fix.layer }, details);
}

/** Layers the check could not take into account, as chips (the reason, when known, on hover). */
function layerChips(label: string, className: string, layers: (string | ILayerNote)[]): Child {
  return layers.length
    ? h(
        'div',
        { class: `s3access-layer-chips ${className}` },
        h('span', {}, label),
        ...layers.map(layer =>
          typeof layer === 'string'
            ? chip(layer, layer)
            : chip(layer.layer, layer.reason ? `${layer.layer}: ${layer.reason}` : layer.layer)
        )
      )
    : null;
}
