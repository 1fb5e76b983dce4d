// Building the page from data without ever parsing it as HTML: every string a user or the server
// gave becomes a text node, so a chat message like `<img src=x onerror=...>` shows as text.

/**
 * h('div', {class: 'x', onclick: fn}, 'text', child, [children]) -> HTMLElement.
 * Attributes named on* are event listeners; `class` and `dataset` are handled; strings are text.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A time in the hospital's zone (Asia/Shanghai), as staff read it. */
export function showTime(iso, withDate = false) {
  if (!iso) return '';
  const opts = { timeZone: 'Asia/Shanghai', hour: '2-digit', minute: '2-digit', hour12: false };
  if (withDate) Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return new Intl.DateTimeFormat('zh-CN', opts).format(new Date(iso));
}

/** Money in fen as yuan, ¥1,234.50. */
export function yuan(fen) {
  const sign = fen < 0 ? '-' : '';
  const a = Math.abs(fen);
  const y = Math.floor(a / 100).toLocaleString('zh-CN');
  return `${sign}¥${y}.${String(a % 100).padStart(2, '0')}`;
}
