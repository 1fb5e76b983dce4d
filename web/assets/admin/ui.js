// Small pieces the back-office pages share: a table, a labelled field, a form that shows the
// API's error (with the field it names), a date-time in the hospital's zone.
import { api, messageOf, ApiError, errorOf, token } from '/static/common/api.js';
import { h, hospitalZone } from '/static/common/dom.js';

/** A table: `cols` = [[header, row => cell]]; cells are strings or nodes. */
export function table(cols, rows, empty = '暂无数据') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, cols.map(([t]) => h('th', {}, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map(([, f]) => h('td', {}, f(r)))))));
}

export function field(label, input) {
  return h('label', { class: 'field' }, h('span', {}, label), input);
}

/**
 * A form whose submit runs `action(form)`; errors show under it, `done` runs after success.
 * `refusals` says in staff's words what a refused field (`invalid_field`) must be, by the API's
 * field name: a text, or a function of the error and the form. A field it does not name shows
 * the server's message after the field's label on the form (or its API name).
 */
export function form(title, fields, submitLabel, action, done, id, refusals = {}) {
  const err = h('div', { class: 'error', role: 'alert' });
  const f = h('form', { class: 'card form', id, onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const r = await action(f);
      if (done) await done(r);
    } catch (x) {
      err.textContent = refusalOf(x, refusals, f);
    }
  } }, h('h3', {}, title), h('div', { class: 'fields' }, fields), h('button', { type: 'submit' }, submitLabel), err);
  return f;
}

/**
 * What staff read for error `x`: `refusals`' words for its field (see `form`), else the server's
 * message after the field's label on form `f` (or the field's API name, without a form).
 */
export function refusalOf(x, refusals = {}, f = null) {
  if (!(x instanceof ApiError) || !x.field) return messageOf(x);
  const own = x.code === 'invalid_field' && refusals[x.field];
  if (own) return typeof own === 'function' ? own(x, f) : own;
  const input = f && f.elements[x.field];
  const label = input && input.closest && input.closest('label.field');
  const name = label ? label.firstChild.textContent : x.field;
  return `${name}：${messageOf(x)}`;
}

/** The department tree (as `/api/v1/departments` gives it) flattened in display order, with depth. */
export function flatten(nodes, depth = 0, out = []) {
  for (const n of nodes) {
    out.push({ ...n, depth });
    flatten(n.children || [], depth + 1, out);
  }
  return out;
}

/** Local time in the hospital's zone. */
export function when(iso) {
  if (!iso) return '';
  return new Date(iso).toLocaleString('zh-CN', { timeZone: hospitalZone(), hour12: false });
}

/** Downloads an API answer as a file (the bearer token cannot ride on a plain link). */
export async function download(path, name) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (!res.ok) throw errorOf(res, await res.text());
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export { api, h };
