// The Request access dialog: a form in a JupyterLab Dialog, posted to s3access/requests. Every limit is
// stated next to its field and checked before sending; a refusal keeps the dialog open with the server's
// words (plain already: core/problems.py) next to the field they name.
import { Dialog, Notification } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { S3AccessApi } from './api';
import { h } from './dom';
import {
  BUCKET_NAME_MAX_LENGTH,
  BUCKET_NAME_MIN_LENGTH,
  DAYS_MAX,
  DAYS_MIN,
  IAccessRequest,
  PREFIX_MAX_LENGTH,
  REASON_MAX_LENGTH,
  REASON_MIN_LENGTH,
  RequestResult,
  REQUESTABLE
} from './types';

export interface IRequestDefaults {
  bucket?: string;
  prefix?: string;
}

type FormValue = Omit<IAccessRequest, 'idempotency_key'>;

/** The fields of a request a person fills in, which the server's messages name. */
export type RequestField = 'bucket' | 'prefix' | 'access' | 'reason' | 'days';
const FIELDS: readonly RequestField[] = ['bucket', 'prefix', 'access', 'reason', 'days'];
const DAYS_RANGE = `Days must be between ${DAYS_MIN} and ${DAYS_MAX}.`;

/** A refusal split by field: what the server said about each field, and whatever named none. */
export interface IRefusal {
  fields: Partial<Record<RequestField, string>>;
  other: string;
}

// "reason: The reason must ..." after the start of the message, a ": " or a "; ": how the jupyter server
// and the admin endpoint both list a validation failure's problems (core/problems.py).
const NAMED = /(^|: |; )(bucket|prefix|access|reason|days|idempotency_key|body): /g;

/**
 * A validation failure's message split by field. The server (and the admin endpoint behind it) says
 * `The request was not sent: reason: The reason must have at least 3 characters; days: ...`, already in
 * plain words (mlspace_s3magic/core/problems.py); each field's words go next to that field, as a sentence.
 * A message naming no field is left whole in `other`.
 */
export function explainRefusal(message: string): IRefusal {
  const marks = [...message.matchAll(NAMED)];
  if (!marks.length) {
    return { fields: {}, other: message };
  }
  const fields: IRefusal['fields'] = {};
  const other: string[] = [];
  const head = message.slice(0, marks[0].index).trim();
  marks.forEach((mark, i) => {
    const start = (mark.index ?? 0) + mark[0].length;
    const end = i + 1 < marks.length ? marks[i + 1].index : message.length;
    const text = message.slice(start, end).trim().replace(/\.$/, '');
    const name = FIELDS.find(field => field === mark[2]);
    if (name) {
      fields[name] = sentence(text);
    } else {
      other.push(`${mark[2]}: ${text}.`);
    }
  });
  if (other.length) {
    other.unshift(head ? `${head}:` : '');
  }
  return { fields, other: other.join(' ').trim() };
}

/** Capitalised, with a full stop. */
function sentence(text: string): string {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** The length the server counts: characters (code points), after trimming. */
function length(text: string): number {
  return Array.from(text.trim()).length;
}

/** What is wrong with each field as typed, before anything is sent (`days` as typed, not as a number). */
function problems(value: FormValue, days: string): Partial<Record<RequestField, string>> {
  const found: Partial<Record<RequestField, string>> = {};
  if (!value.bucket) {
    found.bucket = "Enter the bucket's name.";
  } else if (length(value.bucket) < BUCKET_NAME_MIN_LENGTH) {
    found.bucket = `A bucket name has at least ${BUCKET_NAME_MIN_LENGTH} characters.`;
  }
  if (length(value.prefix) > PREFIX_MAX_LENGTH) {
    const has = length(value.prefix);
    found.prefix = `The prefix must have at most ${PREFIX_MAX_LENGTH} characters (it has ${has}).`;
  }
  const reason = length(value.reason);
  if (reason < REASON_MIN_LENGTH) {
    found.reason = `The reason must have at least ${REASON_MIN_LENGTH} characters (it has ${reason}).`;
  } else if (reason > REASON_MAX_LENGTH) {
    found.reason = `The reason must have at most ${REASON_MAX_LENGTH} characters (it has ${reason}).`;
  }
  if (days && !/^\d+$/.test(days)) {
    found.days = `${DAYS_RANGE} Use a whole number, or leave it empty.`;
  } else if (days && (Number(days) < DAYS_MIN || Number(days) > DAYS_MAX)) {
    found.days = DAYS_RANGE;
  }
  return found;
}

let formCount = 0;

/** The dialog body: each field with its limits, and a place for what is wrong with it. */
class RequestForm extends Widget implements Dialog.IBodyWidget<FormValue> {
  constructor(value: FormValue, buckets: string[]) {
    super();
    this.addClass('s3access-request-form');
    this._id = `s3access-request-${++formCount}`;
    const listId = `${this._id}-buckets`;
    const datalist = h('datalist', { id: listId });
    for (const name of buckets) {
      datalist.append(h('option', { value: name }));
    }
    // No `required`, `min` or `max`: JupyterLab greys out Submit, unexplained, while a field is :invalid.
    this._controls = {
      bucket: input('bucket', value.bucket, { list: listId, autocomplete: 'off' }),
      prefix: input('prefix', value.prefix, { placeholder: 'e.g. datasets/' }),
      access: h(
        'select',
        { name: 'access', class: 'jp-mod-styled' },
        ...REQUESTABLE.map(level => h('option', { value: level }, level))
      ) as HTMLSelectElement,
      reason: h('textarea', { name: 'reason', rows: '3', class: 'jp-mod-styled' }) as HTMLTextAreaElement,
      days: input('days', value.days === null ? '' : String(value.days), {
        inputmode: 'numeric',
        placeholder: 'e.g. 30'
      })
    };
    this._controls.access.value = value.access;
    this._controls.reason.value = value.reason;
    this._counter = h('span', { class: 's3access-field-count' });
    const hints: Record<RequestField, string> = {
      bucket: `${BUCKET_NAME_MIN_LENGTH} to ${BUCKET_NAME_MAX_LENGTH} characters, as S3 names it.`,
      prefix: `Optional (empty: the whole bucket); at most ${PREFIX_MAX_LENGTH} characters.`,
      access: 'read-write also lets you upload and delete.',
      reason: `${REASON_MIN_LENGTH} to ${REASON_MAX_LENGTH} characters, for the admin.`,
      days: `Optional: ${DAYS_MIN} to ${DAYS_MAX} (empty: no expiry asked for).`
    };
    this._general = h('div', { class: 's3access-form-error', role: 'alert', hidden: '' });
    this._status = h('div', { class: 's3access-form-status', 'aria-live': 'polite' });
    this.node.append(this._general, datalist);
    for (const name of FIELDS) {
      this.node.append(this._field(name, hints[name]));
    }
    this.node.append(this._status);
    this._count();
  }

  getValue(): FormValue {
    const days = this._controls.days.value.trim();
    return {
      bucket: this._controls.bucket.value.trim(),
      prefix: this._controls.prefix.value.trim(),
      access: REQUESTABLE.find(level => level === this._controls.access.value) ?? 'read',
      reason: this._controls.reason.value.trim(),
      days: days === '' ? null : Number(days)
    };
  }

  /** Show what is wrong with what was typed; true when nothing is. */
  validate(): boolean {
    this._tried = true;
    const found = problems(this.getValue(), this._controls.days.value.trim());
    this.showProblems(found, '');
    const first = FIELDS.find(name => found[name]);
    if (first) {
      this._controls[first].focus();
    }
    return !first;
  }

  /** Each field's message next to it (none: cleared), and a message no field owns above them all. */
  showProblems(fields: Partial<Record<RequestField, string>>, other: string): void {
    for (const name of FIELDS) {
      this._setError(name, fields[name] ?? '');
    }
    this._general.textContent = other;
    this._general.hidden = !other;
  }

  set sending(sending: boolean) {
    this._status.textContent = sending ? 'Sending…' : '';
  }

  private _field(name: RequestField, hint: string): HTMLElement {
    const control = this._controls[name];
    const id = `${this._id}-${name}`;
    control.id = id;
    control.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
    const error = h('div', { class: 's3access-field-error', id: `${id}-error`, hidden: '' });
    this._errors[name] = error;
    // Once a field was left or Submit tried, its message follows what is typed.
    const recheck = (): void => {
      if (this._tried || control.dataset.touched) {
        const found = problems(this.getValue(), this._controls.days.value.trim());
        this._setError(name, found[name] ?? '');
      }
    };
    control.addEventListener('input', () => {
      this._count();
      recheck();
    });
    control.addEventListener('blur', () => {
      if ((control as HTMLInputElement).value.trim()) {
        control.dataset.touched = 'true';
      }
      recheck();
    });
    return h(
      'div',
      { class: 's3access-field', 'data-field': name },
      h(
        'label',
        { for: id },
        name.charAt(0).toUpperCase() + name.slice(1),
        name === 'reason' ? this._counter : null
      ),
      control,
      h('div', { class: 's3access-field-hint', id: `${id}-hint` }, hint),
      error
    );
  }

  private _setError(name: RequestField, message: string): void {
    const error = this._errors[name];
    if (error) {
      error.textContent = message;
      error.hidden = !message;
    }
    // aria-invalid, not the jp-mod-error class: that class would disable Submit again.
    this._controls[name].setAttribute('aria-invalid', String(!!message));
  }

  private _count(): void {
    this._counter.textContent = `${length(this._controls.reason.value)} / ${REASON_MAX_LENGTH}`;
  }

  private readonly _id: string;
  private readonly _controls: {
    bucket: HTMLInputElement;
    prefix: HTMLInputElement;
    access: HTMLSelectElement;
    reason: HTMLTextAreaElement;
    days: HTMLInputElement;
  };
  private readonly _errors: Partial<Record<RequestField, HTMLElement>> = {};
  private readonly _counter: HTMLElement;
  private readonly _general: HTMLElement;
  private readonly _status: HTMLElement;
  private _tried = false;
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

const SUBMIT = 1;

/**
 * The dialog stays open until the request is filed: Submit first checks the form, then sends it, and a
 * refusal or a failure is shown in the form, with what was typed kept for a retry.
 */
class RequestDialog extends Dialog<FormValue> {
  constructor(
    private readonly _form: RequestForm,
    private readonly _send: (value: FormValue) => Promise<void>,
    focus: string
  ) {
    super({
      title: 'Request S3 access',
      body: _form,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Submit request' })],
      focusNodeSelector: focus
    });
    this.addClass('s3access-request-dialog');
  }

  resolve(index?: number): void {
    if ((index ?? SUBMIT) !== SUBMIT) {
      super.resolve(index);
    } else if (!this._sending && this._form.validate()) {
      void this._submit();
    }
  }

  private async _submit(): Promise<void> {
    this._sending = true;
    this._form.sending = true;
    try {
      await this._send(this._form.getValue());
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this._sending = false;
      if (this.isDisposed) {
        // Cancelled while it was being sent: the form is gone, so say it where it is seen.
        Notification.error(message, { autoClose: false });
        return;
      }
      this._form.sending = false;
      const { fields, other } = explainRefusal(message);
      this._form.showProblems(fields, other);
      return;
    }
    super.resolve(SUBMIT);
  }

  private _sending = false;
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

function announce(value: FormValue, answer: RequestResult): void {
  // JupyterLab's notifications are silent (no toast) without an autoClose.
  if (answer.queued) {
    Notification.warning(
      `Access request for ${value.bucket} queued: the admin endpoint did not answer; it will be sent later`,
      { autoClose: 10000 }
    );
  } else {
    Notification.success(`Access request ${answer.id} filed (${answer.status})`, { autoClose: 5000 });
  }
}

/**
 * Ask for access until it is filed, queued or cancelled. Every attempt of one dialog sends the same
 * idempotency key, so a retry of a request the server did record is not doubled.
 */
export async function requestAccess(
  api: S3AccessApi,
  defaults: IRequestDefaults,
  buckets: string[]
): Promise<void> {
  const key = newIdempotencyKey();
  const form = new RequestForm(
    {
      bucket: defaults.bucket ?? '',
      prefix: defaults.prefix ?? '',
      access: 'read',
      reason: '',
      days: null
    },
    buckets
  );
  const send = async (value: FormValue): Promise<void> =>
    announce(value, await api.request({ ...value, idempotency_key: key }));
  const focus = defaults.bucket ? 'textarea[name="reason"]' : 'input[name="bucket"]';
  await new RequestDialog(form, send, focus).launch();
}
