// The Request access dialog: a form in a JupyterLab Dialog, posted to s3access/requests.
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { S3AccessApi } from './api';
import { h } from './dom';
import { IAccessRequest, REQUESTABLE } from './types';

export interface IRequestDefaults {
  bucket?: string;
  prefix?: string;
}

type FormValue = Omit<IAccessRequest, 'idempotency_key'>;

let datalistCount = 0;

/** The dialog body; getValue() is what Dialog hands back on submit. */
class RequestForm extends Widget implements Dialog.IBodyWidget<FormValue> {
  constructor(value: FormValue, buckets: string[], error: string) {
    super();
    this.addClass('s3access-request-form');
    const listId = `s3access-bucket-list-${++datalistCount}`;
    const datalist = h('datalist', { id: listId });
    for (const name of buckets) {
      datalist.append(h('option', { value: name }));
    }
    this._bucket = input('bucket', value.bucket, { list: listId, required: '' });
    this._prefix = input('prefix', value.prefix, { placeholder: 'optional, e.g. datasets/' });
    this._access = h(
      'select',
      { name: 'access', class: 'jp-mod-styled' },
      ...REQUESTABLE.map(level => h('option', { value: level }, level))
    ) as HTMLSelectElement;
    this._access.value = value.access;
    this._reason = h('textarea', {
      name: 'reason',
      rows: '3',
      required: '',
      class: 'jp-mod-styled'
    }) as HTMLTextAreaElement;
    this._reason.value = value.reason;
    this._days = input('days', value.days === null ? '' : String(value.days), {
      type: 'number',
      min: '1',
      max: '365',
      step: '1',
      placeholder: 'optional, 1-365'
    });
    this.node.append(
      error ? h('div', { class: 's3access-form-error', role: 'alert' }, error) : '',
      field('Bucket', this._bucket),
      datalist,
      field('Prefix', this._prefix),
      field('Access', this._access),
      field('Reason', this._reason),
      field('Days', this._days)
    );
  }

  getValue(): FormValue {
    const days = this._days.value.trim();
    return {
      bucket: this._bucket.value.trim(),
      prefix: this._prefix.value.trim(),
      access: REQUESTABLE.find(level => level === this._access.value) ?? 'read',
      reason: this._reason.value.trim(),
      // An empty or unparsable number input gives '': no expiry asked for. The server checks the range.
      days: days === '' ? null : Number(days)
    };
  }

  private _bucket: HTMLInputElement;
  private _prefix: HTMLInputElement;
  private _access: HTMLSelectElement;
  private _reason: HTMLTextAreaElement;
  private _days: HTMLInputElement;
}

function input(name: string, value: string, attrs: Record<string, string>): HTMLInputElement {
  const node = h('input', {
    type: 'text',
    name,
    class: 'jp-mod-styled',
    ...attrs
  }) as HTMLInputElement;
  node.value = value;
  return node;
}

function field(label: string, control: HTMLElement): HTMLElement {
  return h('label', { class: 's3access-field' }, h('span', {}, label), control);
}

/** 32 hex characters (a UUID4 without dashes), the server's idempotency key format. */
function newIdempotencyKey(): string {
  // randomUUID exists only in secure contexts (https or localhost); getRandomValues exists everywhere.
  if (typeof crypto.randomUUID === 'function') {
    return crypto.randomUUID().replace(/-/g, '');
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Ask for access until it is filed, queued or cancelled. A failed submission reopens the form with what
 * was typed and the same idempotency key, so a retry of a request the server did record is not doubled.
 */
export async function requestAccess(
  api: S3AccessApi,
  defaults: IRequestDefaults,
  buckets: string[]
): Promise<void> {
  const key = newIdempotencyKey();
  let value: FormValue = {
    bucket: defaults.bucket ?? '',
    prefix: defaults.prefix ?? '',
    access: 'read',
    reason: '',
    days: null
  };
  let error = '';
  for (;;) {
    const result = await showDialog<FormValue>({
      title: 'Request S3 access',
      body: new RequestForm(value, buckets, error),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit request' })],
      focusNodeSelector: value.bucket ? 'textarea[name="reason"]' : 'input[name="bucket"]'
    });
    if (!result.button.accept || !result.value) {
      return;
    }
    value = result.value;
    if (!value.bucket || !value.reason) {
      error = 'A bucket and a reason are required.';
      continue;
    }
    // JupyterLab's notifications are silent (no toast) without an autoClose; errors stay until dismissed.
    try {
      const answer = await api.request({ ...value, idempotency_key: key });
      if (answer.queued) {
        Notification.warning(
          `Access request for ${value.bucket} queued: the admin endpoint did not answer; it will be sent later`,
          { autoClose: 10000 }
        );
      } else {
        Notification.success(`Access request ${answer.id} filed (${answer.status})`, {
          autoClose: 5000
        });
      }
      return;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      Notification.error(error, { autoClose: false });
    }
  }
}
