// The admin review panel: the requests the admin endpoint holds for review, each request's plan per layer as
// a diff, and Approve, Deny, Apply and Revoke. Shown only when the endpoint says the notebook's identity is
// one of its admins; the Jupyter server forwards each call as that identity, so the endpoint decides.
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { lockIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { AdminAction, S3AccessApi } from './api';
import { button, h } from './dom';
import {
  IAdminMe,
  IReview,
  IReviewChange,
  IVerification,
  RequestStatus
} from './types';

/** The admin's actions a status allows: TRANSITIONS in mlspace_s3magic/core/access.py and the endpoint's
 * APPLICABLE and MAY_BE_LIVE (admin/service.py); the endpoint refuses any other with a 409. */
const ACTIONS: Partial<Record<RequestStatus, AdminAction[]>> = {
  pending: ['approve', 'deny'],
  approved: ['apply'],
  'awaiting-owner': ['apply', 'revoke'],
  failed: ['apply', 'revoke'],
  applied: ['revoke']
};
const LABELS: Record<AdminAction, string> = {
  approve: 'Approve',
  deny: 'Deny',
  apply: 'Apply',
  revoke: 'Revoke'
};
const DIFF_MARKS = { header: '', added: '+ ', removed: '- ', kept: '  ' };

/**
 * Add the panel to the left area when the admin endpoint takes this notebook for an admin; for anyone else
 * (or with no endpoint, or one that does not answer) nothing is added.
 */
export async function mountAdminPanel(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null
): Promise<void> {
  const api = new S3AccessApi(app.serviceManager.serverSettings);
  const me = await api.adminMe().catch(() => null);
  if (!me?.admin) {
    return;
  }
  const panel = new AdminPanel(api, me);
  app.shell.add(panel, 'left', { rank: 610 });
  restorer?.add(panel, panel.id);
}

/** The requests under review; one opens into its plan and actions. */
export class AdminPanel extends Widget {
  constructor(
    private readonly _api: S3AccessApi,
    me: IAdminMe
  ) {
    super();
    this.id = 's3access-admin';
    this.addClass('s3access-admin');
    this.title.icon = lockIcon;
    this.title.caption = 'S3 access review (admin)';
    const refresh = button('Refresh', 's3access-admin-refresh jp-mod-styled', () => void this.load());
    this.node.append(
      h('div', { class: 's3access-admin-header' }, h('h2', {}, 'Access review'), refresh),
      h('div', { class: 's3access-admin-caller', title: me.arn ?? '' }, `as ${me.arn ?? '?'}`),
      this._listNode
    );
    void this.load();
  }

  /** Ask the endpoint again; open reviews stay open, with their latest state. */
  async load(): Promise<void> {
    try {
      const listed = await this._api.adminRequests();
      this._requests = listed.requests;
      this._error = '';
    } catch (err) {
      this._error = (err as Error).message;
    }
    for (const [id, open] of this._open) {
      const listed = this._requests.find(r => r.id === id);
      if (!listed && !this._acted.has(id)) {
        this._open.delete(id);
      } else if (listed && listed.status !== open.status) {
        this._open.set(id, listed); // changed elsewhere (the CLI, another admin): its recorded plan and result
      }
    }
    this._render();
  }

  private _render(): void {
    const items: HTMLElement[] = [];
    const shown = new Set<string>();
    for (const request of this._requests) {
      shown.add(request.id);
      items.push(this._item(this._open.get(request.id) ?? request));
    }
    // What was acted on just now stays until the admin has read it, even if it left the list (denied).
    for (const [id, review] of this._open) {
      if (!shown.has(id) && this._acted.has(id)) {
        items.push(this._item(review));
      }
    }
    const note = this._error
      ? h('p', { class: 's3access-admin-error' }, this._error)
      : items.length
        ? null
        : h('p', { class: 's3access-admin-note' }, 'No requests to review.');
    const list = h('ul', { class: 's3access-reviews' }, ...items);
    this._listNode.replaceChildren(...(note ? [note, list] : [list]));
  }

  private _item(request: IReview): HTMLElement {
    const open = this._open.has(request.id);
    const scope = `s3://${request.bucket}/${request.prefix}`;
    const toggle = button(
      open ? 'Hide' : 'Review',
      's3access-review-toggle jp-mod-styled',
      () => void this._toggle(request.id),
      open ? 'Fold this review' : 'Show the plan per layer and the actions'
    );
    const item = h(
      'li',
      { class: 's3access-review', 'data-id': request.id, 'data-status': request.status },
      h(
        'div',
        { class: 's3access-review-line' },
        h('span', { class: 's3access-review-status', 'data-status': request.status }, request.status),
        h('span', { class: 's3access-review-access' }, request.access),
        h('span', { class: 's3access-review-scope', title: scope }, scope),
        toggle
      ),
      h(
        'div',
        { class: 's3access-review-who', title: request.requester_arn },
        `${request.requester} · ${request.id}` + (request.days ? ` · ${request.days} days` : '')
      ),
      h('div', { class: 's3access-review-reason' }, request.reason)
    );
    if (open) {
      item.append(this._details(request));
    }
    return item;
  }

  private async _toggle(id: string): Promise<void> {
    if (this._open.has(id)) {
      this._open.delete(id);
      this._acted.delete(id);
      this._render();
      return;
    }
    try {
      this._open.set(id, await this._api.adminReview(id));
    } catch (err) {
      void showDialog({
        title: 'Cannot show the request',
        body: (err as Error).message,
        buttons: [Dialog.okButton()]
      });
    }
    this._render();
  }

  private _details(review: IReview): HTMLElement {
    const busy = this._busy.has(review.id);
    const actions = (ACTIONS[review.status] ?? []).map(action => {
      const control = button(
        LABELS[action],
        `s3access-review-${action} jp-mod-styled` +
          (action === 'approve' || action === 'apply' ? ' jp-mod-accept' : '') +
          (action === 'deny' || action === 'revoke' ? ' jp-mod-warn' : ''),
        () => void this._act(review, action)
      );
      control.disabled = busy;
      return control;
    });
    return h(
      'div',
      { class: 's3access-review-details' },
      ...review.problems.map(p => h('p', { class: 's3access-review-problem' }, `Problem: ${p}`)),
      ...review.notes.map(n => h('p', { class: 's3access-review-note' }, n)),
      // What the last apply or revoke found comes first: it is what the admin waited for.
      review.verification ? verification(review.verification) : null,
      actions.length ? h('div', { class: 's3access-review-actions' }, ...actions) : null,
      review.changes.length
        ? h('div', { class: 's3access-plan' }, ...review.changes.map(change => planLayer(change)))
        : h('p', { class: 's3access-review-note' }, 'No plan is recorded for this request.')
    );
  }

  private async _act(review: IReview, action: AdminAction): Promise<void> {
    if (action === 'deny' || action === 'revoke') {
      const scope = `s3://${review.bucket}/${review.prefix}`;
      const answer = await showDialog({
        title: `${LABELS[action]} request ${review.id}?`,
        body:
          action === 'deny'
            ? `${review.requester} asked for ${review.access} on ${scope}. The endpoint records the denial; it takes no reason.`
            : `This removes ${review.requester}'s ${review.access} access to ${scope} from every layer.`,
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: LABELS[action] })]
      });
      if (!answer.button.accept) {
        return;
      }
    }
    this._busy.add(review.id);
    this._render();
    try {
      const after = await this._api.adminAct(review.id, action);
      this._open.set(review.id, after);
      this._acted.add(review.id);
    } catch (err) {
      void showDialog({
        title: `${LABELS[action]} refused`,
        body: (err as Error).message,
        buttons: [Dialog.okButton()]
      });
    } finally {
      this._busy.delete(review.id);
    }
    await this.load();
  }

  private readonly _listNode = h('div', { class: 's3access-admin-list' });
  private _requests: IReview[] = [];
  private _error = '';
  /** The reviews opened, by request id, as last loaded or as the last action answered. */
  private readonly _open = new Map<string, IReview>();
  private readonly _acted = new Set<string>();
  private readonly _busy = new Set<string>();
}

/** One layer of the plan: where it writes, who applies it, its warnings, and its diff line by line. */
function planLayer(change: IReviewChange): HTMLElement {
  const lines = change.diff.map(line =>
    h(
      'span',
      { class: `s3access-diff-line s3access-diff-${line.kind}` },
      `${DIFF_MARKS[line.kind]}${line.text}\n`
    )
  );
  return h(
    'section',
    { class: 's3access-plan-layer', 'data-layer': change.layer },
    h(
      'div',
      { class: 's3access-plan-target', title: change.target },
      h('strong', {}, change.layer),
      ` ${change.target}`
    ),
    h(
      'div',
      { class: 's3access-plan-who' },
      `account ${change.account}, applied by ${change.applied_by}`
    ),
    ...change.warnings.map(w => h('p', { class: 's3access-review-problem' }, `Warning: ${w}`)),
    lines.length ? h('pre', { class: 's3access-diff' }, ...lines) : null,
    change.command
      ? h(
          'div',
          { class: 's3access-plan-command' },
          'The owner runs:',
          h('pre', { class: 's3access-diff' }, change.command)
        )
      : null
  );
}

/** What the verification after an apply or revoke found: the verdict per capability, and why not. */
function verification(found: IVerification): HTMLElement {
  return h(
    'div',
    { class: 's3access-verification', 'data-verdict': found.verdict },
    h(
      'div',
      { class: 's3access-verification-head', title: found.principal },
      `Verified as the requester: ${found.verdict}`
    ),
    h(
      'ul',
      {},
      ...found.capabilities.map(c =>
        h(
          'li',
          { class: 's3access-verified', 'data-capability': c.capability, 'data-verdict': c.verdict },
          h('span', { class: 's3access-verified-name' }, c.capability),
          h('span', { class: 's3access-verified-verdict', 'data-verdict': c.verdict }, c.verdict),
          c.blocked_by.length ? ` blocked by ${c.blocked_by.join(', ')}` : '',
          ...c.reasons.map(r => h('div', { class: 's3access-verified-reason' }, r))
        )
      )
    ),
    ...found.notes.map(n => h('p', { class: 's3access-review-note' }, n))
  );
}
