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
/** A denial's reason, trimmed: DENIAL_REASON_LENGTH in mlspace_s3magic/admin/service.py, whose 400 (shown in
 * the dialog) stays the judge. Whitespace runs, line breaks among them, become single spaces there too. */
const DENIAL_REASON_MIN_LENGTH = 3;
const DENIAL_REASON_MAX_LENGTH = 1000;
/** Control characters other than tab and line breaks, and those that make text show as other text. */
const NOT_PLAIN = new RegExp(
  '[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f' +
    '\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]'
);

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
      h('div', { class: 's3access-review-reason' }, request.reason),
      request.decision_reason
        ? h('div', { class: 's3access-review-decision' }, `Denied: ${request.decision_reason}`)
        : null
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
    if (action === 'deny') {
      // The dialog sends the denial itself, so a refused reason is shown there, for another try.
      const denied = await askDenial(this._api, review);
      if (denied) {
        this._open.set(review.id, denied);
        this._acted.add(review.id);
        await this.load();
      }
      return;
    }
    if (action === 'revoke') {
      const scope = `s3://${review.bucket}/${review.prefix}`;
      const answer = await showDialog({
        title: `${LABELS[action]} request ${review.id}?`,
        body: `This removes ${review.requester}'s ${review.access} access to ${scope} from every layer.`,
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

/** The length of a reason as the endpoint keeps it: trimmed, each whitespace run one space. */
function plainLength(typed: string): number {
  const trimmed = typed.trim();
  return trimmed ? Array.from(trimmed.split(/\s+/).join(' ')).length : 0;
}

/** What is wrong with a denial's reason as typed, in the words of the limits next to it; '' when nothing. */
function denialProblem(typed: string): string {
  const control = NOT_PLAIN.exec(typed);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    return `Remove the control character U+${code}: the reason is plain text.`;
  }
  const length = plainLength(typed);
  if (length < DENIAL_REASON_MIN_LENGTH) {
    return `Say why in at least ${DENIAL_REASON_MIN_LENGTH} characters: the requester reads it.`;
  }
  if (length > DENIAL_REASON_MAX_LENGTH) {
    return `Shorten it to ${DENIAL_REASON_MAX_LENGTH} characters (it has ${length}).`;
  }
  return '';
}

/** The deny dialog's body: the request, a reason with its limits and counter, and what is wrong with it. */
class DenialForm extends Widget implements Dialog.IBodyWidget<string> {
  constructor(review: IReview) {
    super();
    this.addClass('s3access-deny-form');
    const id = `s3access-deny-${review.id}`;
    this._reason.id = id;
    this._reason.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
    this._error.id = `${id}-error`;
    this._reason.addEventListener('input', () => {
      this._count();
      if (this._tried) {
        this.showProblem(denialProblem(this._reason.value));
      }
    });
    this.node.append(
      h(
        'p',
        { class: 's3access-deny-what' },
        `${review.requester} asked for ${review.access} on s3://${review.bucket}/${review.prefix}.`
      ),
      h(
        'div',
        { class: 's3access-field', 'data-field': 'reason' },
        h('label', { for: id }, 'Reason', this._counter),
        this._reason,
        h(
          'div',
          { class: 's3access-field-hint', id: `${id}-hint` },
          `${DENIAL_REASON_MIN_LENGTH} to ${DENIAL_REASON_MAX_LENGTH} characters of plain text. ` +
            `${review.requester} reads it with their requests.`
        ),
        this._error
      )
    );
    this._count();
  }

  getValue(): string {
    return this._reason.value.trim();
  }

  /** Show what is wrong with the reason; true when nothing is. */
  validate(): boolean {
    this._tried = true;
    const problem = denialProblem(this._reason.value);
    this.showProblem(problem);
    if (problem) {
      this._reason.focus();
    }
    return !problem;
  }

  showProblem(message: string): void {
    this._error.textContent = message;
    this._error.hidden = !message;
    // aria-invalid, not jp-mod-error: that class would disable the Deny button.
    this._reason.setAttribute('aria-invalid', String(!!message));
  }

  private _count(): void {
    this._counter.textContent = `${plainLength(this._reason.value)} / ${DENIAL_REASON_MAX_LENGTH}`;
  }

  private readonly _reason = h('textarea', {
    name: 'reason',
    rows: '4',
    class: 'jp-mod-styled'
  }) as HTMLTextAreaElement;
  private readonly _counter = h('span', { class: 's3access-field-count' });
  private readonly _error = h('div', { class: 's3access-field-error', role: 'alert', hidden: '' });
  private _tried = false;
}

const DENY = 1;

/** Stays open until the endpoint has recorded the denial: Deny checks the reason, then sends it; a refusal
 * is shown under the reason, with what was typed kept. */
class DenialDialog extends Dialog<string> {
  constructor(
    private readonly _form: DenialForm,
    private readonly _send: (reason: string) => Promise<void>,
    id: string
  ) {
    super({
      title: `Deny request ${id}`,
      body: _form,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Deny' })],
      focusNodeSelector: 'textarea[name="reason"]'
    });
    this.addClass('s3access-deny-dialog');
  }

  resolve(index?: number): void {
    if ((index ?? DENY) !== DENY) {
      super.resolve(index);
    } else if (!this._sending && this._form.validate()) {
      void this._deny();
    }
  }

  private async _deny(): Promise<void> {
    this._sending = true;
    try {
      await this._send(this._form.getValue());
    } catch (err) {
      this._sending = false;
      const message = err instanceof Error ? err.message : String(err);
      if (this.isDisposed) {
        void showDialog({ title: 'Deny refused', body: message, buttons: [Dialog.okButton()] });
      } else {
        this._form.showProblem(message);
      }
      return;
    }
    super.resolve(DENY);
  }

  private _sending = false;
}

/** Ask for the reason and deny with it: the review after the denial, or null when the admin cancelled. */
async function askDenial(api: S3AccessApi, review: IReview): Promise<IReview | null> {
  let denied: IReview | null = null;
  const send = async (reason: string): Promise<void> => {
    denied = await api.adminAct(review.id, 'deny', reason);
  };
  await new DenialDialog(new DenialForm(review), send, review.id).launch();
  return denied;
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
