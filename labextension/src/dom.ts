// A tiny element builder: every string becomes a text node, so server data is never parsed as HTML.
import { Clipboard } from '@jupyterlab/apputils';

export type Child = Node | string | null | undefined | false;

export function h(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child) {
      node.append(child);
    }
  }
  return node;
}

/** A button that runs `onClick` when pressed. */
export function button(
  label: string,
  className: string,
  onClick: () => void,
  title = ''
): HTMLButtonElement {
  const node = h('button', { type: 'button', class: className }, label) as HTMLButtonElement;
  if (title) {
    node.title = title;
  }
  node.addEventListener('click', onClick);
  return node;
}

/** Put `text` on the clipboard: the async Clipboard API where the page may use it (https or localhost),
 * else JupyterLab's copy through a hidden text area. */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // Refused (no permission, or the page lost focus): the older way below still works.
    }
  }
  Clipboard.copyToSystem(text);
}

/** A button that copies `text` and says "Copied" for a moment, so a copy is seen to have happened. */
export function copyButton(text: string, className: string, title: string): HTMLButtonElement {
  let timer = 0;
  const node = button('Copy', className, () => {
    void copyText(text).then(() => {
      node.textContent = 'Copied';
      window.clearTimeout(timer);
      timer = window.setTimeout(() => (node.textContent = 'Copy'), 2000);
    });
  });
  node.title = title;
  return node;
}
