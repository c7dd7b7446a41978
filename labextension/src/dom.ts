// A tiny element builder: every string becomes a text node, so server data is never parsed as HTML.

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
