// My requests: the caller's access requests below the S3 Access sidebar, kept current by polling, with a
// notification when one changes status and a warning before a grant expires.
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { S3AccessApi } from './api';
import { IRequestDefaults } from './dialog';
import { button, h } from './dom';
import {
  CANCELLABLE,
  IAccessRequest,
  ILayerSummary,
  IMyRequest,
  IRequestList,
  RequestStatus
} from './types';

/** The first wait between polls; it doubles while nothing changes, up to LONGEST_WAIT times it (2 min). */
const POLL_SECONDS = 15;
const LONGEST_WAIT = 8;
/** A grant this close to its expiry is announced once, so its user can ask again in time. */
const EXPIRY_WARNING_DAYS = 3;
const STORAGE_KEY = 's3access:my-requests';
const DAY_MS = 86_400_000;
/** JupyterLab cuts a notification's message at 140 characters; a denial's reason is ellipsized to fit. */
const NOTIFICATION_LENGTH = 140;

export interface IMyRequestsOptions {
  api: S3AccessApi;
  /** Re-check a bucket in the sidebar: a status change's notification offers it. */
  recheck(bucket: string, prefix: string): void;
  /** Open the request form: an expiry warning offers to ask again. */
  requestAccess(defaults: IRequestDefaults): void;
  /** The first wait between polls in seconds (POLL_SECONDS); the longest is LONGEST_WAIT times it. */
  pollSeconds?: number;
}

type Load =
  | { state: 'loading' }
  | { state: 'error'; message: string }
  | { state: 'ok'; value: IRequestList };

/** What this browser last saw of a request, kept across reloads so a change while Lab was closed is told. */
interface ISeen {
  status: RequestStatus;
  warned?: boolean;
}

/** How a change to each status is told: its lead words, the notification's kind, and how long it stays
 * (those that ask the user to act stay until dismissed). */
const CHANGES: Record<
  RequestStatus,
  { words: string; type: Notification.TypeOptions; autoClose: number | false }
> = {
  pending: { words: 'Access request pending again', type: 'info', autoClose: 15000 },
  approved: { words: 'Access request approved, to be applied', type: 'info', autoClose: 15000 },
  'awaiting-owner': { words: 'Access request awaits the bucket owner', type: 'info', autoClose: 15000 },
  applied: { words: 'Access request applied', type: 'success', autoClose: 15000 },
  denied: { words: 'Access request denied', type: 'warning', autoClose: false },
  failed: { words: 'Access request failed to apply', type: 'error', autoClose: false },
  revoked: { words: 'Access revoked', type: 'warning', autoClose: false },
  expired: { words: 'Access expired', type: 'warning', autoClose: false },
  cancelled: { words: 'Access request cancelled', type: 'info', autoClose: 15000 }
};

/**
 * The "My requests" section. It polls from the start (so a change is told even while the sidebar is closed),
 * backing off while nothing changes and pausing while the browser tab is hidden; `refresh()` asks now.
 */
export class MyRequests extends Widget {
  constructor(private readonly _options: IMyRequestsOptions) {
    super();
    this.id = 's3access-my-requests';
    this.addClass('s3access-my-requests');
    this.title.label = 'My requests';
    this._seen = loadSeen();
    const seconds = _options.pollSeconds ?? POLL_SECONDS;
    this._poll = new BackoffPoll(() => this._load(), seconds * 1000, seconds * LONGEST_WAIT * 1000);
    this._render();
    this._poll.reset();
  }

  /** Load the list now and poll often again: a request was just filed, or the user asked. */
  refresh(): void {
    this._poll.reset();
  }

  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  /** One poll: whether anything the user sees changed, which keeps the polling brisk. */
  private async _load(): Promise<boolean> {
    const seq = ++this._seq;
    let loaded: Load;
    try {
      loaded = { state: 'ok', value: await this._options.api.requests() };
    } catch (err) {
      loaded = { state: 'error', message: (err as Error).message };
    }
    // A cancel's answer, newer than this one, may have arrived meanwhile.
    return seq === this._seq && this._show(loaded);
  }

  private _show(loaded: Load): boolean {
    const signature = JSON.stringify(
      loaded.state === 'ok'
        ? [
            loaded.value.requests.map(r => [r.id, r.status, r.updated_at]),
            loaded.value.queued.map(q => q.idempotency_key)
          ]
        : loaded
    );
    const changed = signature !== this._signature;
    this._signature = signature;
    this._list = loaded;
    if (loaded.state === 'ok') {
      this._tell(loaded.value.requests);
    }
    this._render(); // even unchanged: the ages and expiries move on
    return changed;
  }

  /** A notification per request whose status moved since last seen, and a warning per grant about to end. */
  private _tell(requests: IMyRequest[]): void {
    const now = Date.now();
    const seen: Record<string, ISeen> = {};
    for (const r of requests) {
      const before = this._seen[r.id];
      if (before && before.status !== r.status) {
        this._announce(r);
      }
      const warned =
        (before?.warned ?? false) || (r.status === 'applied' && this._warnExpiry(r, now));
      seen[r.id] = { status: r.status, warned };
    }
    this._seen = seen;
    saveSeen(seen);
  }

  private _announce(r: IMyRequest): void {
    const change = CHANGES[r.status];
    const actions: Notification.IAction[] =
      r.status === 'cancelled'
        ? []
        : [
            {
              label: 'Re-check',
              caption: `Check s3://${r.bucket}/${r.prefix} again in the S3 Access sidebar`,
              callback: () => this._options.recheck(r.bucket, r.prefix)
            }
          ];
    const told = `${change.words}: ${r.access} on ${scope(r)}`;
    const because = r.status === 'denied' && r.decision_reason ? ' — because: ' : '';
    const room = NOTIFICATION_LENGTH - told.length - because.length;
    const message = because ? told + because + ellipsized(r.decision_reason ?? '', room) : told;
    Notification.emit(message, change.type, { autoClose: change.autoClose, actions });
  }

  /** Warn once when the grant ends within EXPIRY_WARNING_DAYS; whether it warned. */
  private _warnExpiry(r: IMyRequest, now: number): boolean {
    const left = r.expires_at ? Date.parse(r.expires_at) - now : NaN;
    if (!(left > 0 && left <= EXPIRY_WARNING_DAYS * DAY_MS)) {
      return false;
    }
    Notification.warning(`Your ${r.access} access to ${scope(r)} ends ${inTime(left)}`, {
      autoClose: false,
      actions: [
        {
          label: 'Ask again',
          caption: 'Request the same access again, for after it ends',
          callback: () => this._options.requestAccess({ bucket: r.bucket, prefix: r.prefix })
        }
      ]
    });
    return true;
  }

  private async _cancel(r: IMyRequest, control: HTMLButtonElement): Promise<void> {
    const answer = await showDialog({
      title: 'Cancel this access request?',
      body: `${r.access} on ${scope(r)} (request ${r.id}). Anything already written for it is taken back.`,
      buttons: [
        Dialog.cancelButton({ label: 'Keep it' }),
        Dialog.warnButton({ label: 'Cancel request' })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    control.disabled = true;
    const seq = ++this._seq;
    try {
      const list = await this._options.api.cancelRequest(r.id);
      // The user's own doing: no notification for it.
      this._seen[r.id] = { ...this._seen[r.id], status: 'cancelled' };
      if (seq === this._seq) {
        this._show({ state: 'ok', value: list });
      }
    } catch (err) {
      // The endpoint decides: e.g. the request was applied meanwhile, which only an admin revokes.
      Notification.error((err as Error).message, { autoClose: false });
      control.disabled = false;
      this.refresh();
    }
  }

  private _render(): void {
    const list = this._list;
    const count = list.state === 'ok' ? list.value.requests.length + list.value.queued.length : 0;
    const header = h(
      'header',
      { class: 's3access-requests-header' },
      h(
        'button',
        {
          type: 'button',
          class: 's3access-requests-toggle',
          'aria-expanded': String(!this._collapsed),
          title: this._collapsed ? 'Show your access requests' : 'Hide your access requests'
        },
        h('span', { class: 's3access-requests-title' }, 'My requests'),
        count ? h('span', { class: 's3access-requests-count' }, String(count)) : null
      ),
      button(
        'Refresh',
        's3access-requests-refresh jp-mod-styled',
        () => this.refresh(),
        'Load your requests now'
      )
    );
    header.firstElementChild?.addEventListener('click', () => {
      this._collapsed = !this._collapsed;
      this._render();
    });
    this.toggleClass('s3access-mod-collapsed', this._collapsed);
    this.node.replaceChildren(header, this._collapsed ? '' : this._renderBody());
  }

  private _renderBody(): HTMLElement {
    const list = this._list;
    if (list.state === 'loading') {
      return h('div', { class: 's3access-requests-note' }, 'Loading your requests…');
    }
    if (list.state === 'error') {
      return h('div', { class: 's3access-requests-error', role: 'alert' }, list.message);
    }
    const { requests, queued } = list.value;
    if (!requests.length && !queued.length) {
      return h(
        'div',
        { class: 's3access-requests-note' },
        "No requests yet: ask with a bucket's Request access, or the notebook toolbar's button."
      );
    }
    const now = Date.now();
    return h(
      'ul',
      { class: 's3access-requests' },
      ...queued.map(q => renderQueued(q)),
      ...requests.map(r => this._renderRequest(r, now))
    );
  }

  /** Two lines: the scope, in full width; then status, access, age, expiry and Cancel where allowed. */
  private _renderRequest(r: IMyRequest, now: number): HTMLElement {
    const expiry = expiryText(r, now);
    const meta = h(
      'div',
      { class: 's3access-request-meta' },
      statusBadge(r.status),
      h('span', { class: 's3access-request-access' }, r.access),
      h('span', { title: r.created_at }, `filed ${ago(now - Date.parse(r.created_at))}`),
      expiry &&
        h(
          'span',
          {
            class: `s3access-request-expiry${expiry.soon ? ' s3access-mod-soon' : ''}`,
            title: r.expires_at ?? ''
          },
          expiry.text
        )
    );
    if ((CANCELLABLE as readonly string[]).includes(r.status)) {
      const control = button(
        'Cancel',
        's3access-request-cancel',
        () => void this._cancel(r, control),
        'Withdraw this request'
      );
      meta.append(control);
    }
    return h(
      'li',
      { class: 's3access-request', 'data-id': r.id, 'data-status': r.status },
      h('div', { class: 's3access-request-scope', title: `${scope(r)}\nRequest ${r.id}` }, scope(r)),
      meta,
      r.status === 'denied' && r.decision_reason
        ? h(
            'div',
            { class: 's3access-request-decision' },
            h('span', { class: 's3access-request-decision-label' }, 'Denied because: '),
            r.decision_reason
          )
        : null,
      r.summary?.length ? this._renderChanges(r.id, r.summary) : null
    );
  }

  /** One line per layer the request changes; stays open across renders once the user opened it. */
  private _renderChanges(id: string, summary: ILayerSummary[]): HTMLElement {
    const node = h(
      'details',
      { class: 's3access-request-changes' },
      h('summary', {}, 'What it changes'),
      h('ul', {}, ...summary.map(s => h('li', {}, `${s.target}: ${s.allows} (${s.state})`)))
    ) as HTMLDetailsElement;
    node.open = this._open.has(id);
    node.addEventListener('toggle', () => (node.open ? this._open.add(id) : this._open.delete(id)));
    return node;
  }

  private _poll: BackoffPoll;
  private _list: Load = { state: 'loading' };
  private _signature = '';
  private _seen: Record<string, ISeen>;
  private _seq = 0;
  private _collapsed = false;
  private readonly _open = new Set<string>();
}

function renderQueued(q: IAccessRequest): HTMLElement {
  return h(
    'li',
    { class: 's3access-request', 'data-status': 'queued', 'data-key': q.idempotency_key },
    h('div', { class: 's3access-request-scope', title: scope(q) }, scope(q)),
    h(
      'div',
      { class: 's3access-request-meta' },
      statusBadge('queued'),
      h('span', { class: 's3access-request-access' }, q.access),
      h('span', {}, 'not sent yet: the admin endpoint did not answer; it goes once it does')
    )
  );
}

function statusBadge(status: RequestStatus | 'queued'): HTMLElement {
  return h('span', { class: 's3access-request-status', 'data-status': status }, status);
}

function scope(r: { bucket: string; prefix: string }): string {
  return `s3://${r.bucket}/${r.prefix}`;
}

/** "expires in 2 d" (soon when within EXPIRY_WARNING_DAYS), "ended"; nothing for a request without days. */
function expiryText(r: IMyRequest, now: number): { text: string; soon: boolean } | null {
  if (r.expires_at) {
    const left = Date.parse(r.expires_at) - now;
    if (Number.isNaN(left)) {
      return { text: `expires ${r.expires_at}`, soon: false };
    }
    return left > 0
      ? { text: `expires ${inTime(left)}`, soon: left <= EXPIRY_WARNING_DAYS * DAY_MS }
      : { text: 'ended', soon: false };
  }
  if (r.days !== null && !['applied', 'revoked', 'expired'].includes(r.status)) {
    return { text: `${r.days} d once applied`, soon: false };
  }
  return null;
}

/** `text` in at most `room` characters (at least a few words' worth), an ellipsis marking a cut. */
function ellipsized(text: string, room: number): string {
  const chars = Array.from(text);
  const fits = Math.max(room, 24);
  return chars.length <= fits ? text : `${chars.slice(0, fits - 1).join('').trimEnd()}…`;
}

function inTime(ms: number): string {
  return `in ${span(ms)}`;
}

function ago(ms: number): string {
  return Number.isNaN(ms) ? '' : ms < 60_000 ? 'just now' : `${span(ms)} ago`;
}

function span(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000));
  if (minutes < 60) {
    return `${minutes} min`;
  }
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} d`;
}

function loadSeen(): Record<string, ISeen> {
  try {
    const stored: unknown = JSON.parse(window.localStorage.getItem(STORAGE_KEY) ?? '{}');
    return stored && typeof stored === 'object' ? (stored as Record<string, ISeen>) : {};
  } catch {
    return {}; // no storage (a private window), or something else's text: start afresh
  }
}

function saveSeen(seen: Record<string, ISeen>): void {
  try {
    window.localStorage.setItem(STORAGE_KEY, JSON.stringify(seen));
  } catch {
    // Full or forbidden: changes are still told while this page stays open.
  }
}

/**
 * Runs `tick` after `base` ms, doubling the wait up to `max` while a tick reports no change and going back
 * to `base` on a change or `reset()`; no tick while the page is hidden, and one as soon as it shows again.
 */
class BackoffPoll {
  constructor(
    private readonly _tick: () => Promise<boolean>,
    private readonly _base: number,
    private readonly _max: number
  ) {
    this._interval = _base;
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  /** Tick now, then at the shortest interval. */
  reset(): void {
    this._interval = this._base;
    void this._run();
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._timer);
    document.removeEventListener('visibilitychange', this._onVisibility);
  }

  private async _run(): Promise<void> {
    window.clearTimeout(this._timer);
    if (this._disposed) {
      return;
    }
    if (document.visibilityState === 'hidden') {
      this._due = true;
      return;
    }
    if (this._running) {
      this._again = true; // a reset while a tick is out: tick again once it is back
      return;
    }
    this._running = true;
    const changed = await this._tick().catch(() => false);
    this._running = false;
    if (this._again) {
      this._again = false;
      this._interval = this._base;
      return this._run();
    }
    this._interval = changed ? this._base : Math.min(this._interval * 2, this._max);
    if (!this._disposed) {
      this._timer = window.setTimeout(() => void this._run(), this._interval);
    }
  }

  private readonly _onVisibility = (): void => {
    if (document.visibilityState === 'visible' && this._due) {
      this._due = false;
      void this._run();
    }
  };

  private _interval: number;
  private _timer: number | undefined = undefined;
  private _running = false;
  private _again = false;
  private _due = false;
  private _disposed = false;
}
