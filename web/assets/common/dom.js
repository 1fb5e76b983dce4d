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

/**
 * The hospital's zone and how far the server's clock is from this browser's, from
 * `GET /api/v1/clock` (`loadClock`, once before a page renders): a staff member's computer may sit
 * in another zone or run late, and "today" and every time shown are the hospital's.
 */
let clock = { zone: 'Asia/Shanghai', skewMs: 0 };

export async function loadClock() {
  try {
    const r = await fetch('/api/v1/clock');
    if (!r.ok) return;
    const c = await r.json();
    clock = { zone: c.zone, skewMs: Date.parse(c.now) - Date.now() };
  } catch (_) {
    // Unreachable now: the pages say so on their first call; the default zone stands meanwhile.
  }
}

/** The hospital's IANA zone. */
export function hospitalZone() { return clock.zone; }

/** How staff name the hospital's time: 北京时间 for China's zone, else the zone itself. */
export function hospitalZoneLabel() {
  return clock.zone === 'Asia/Shanghai' ? '北京时间' : `医院时区 ${clock.zone}`;
}

/** How far the hospital's zone is ahead of UTC at instant `t` (ms since 1970), in ms. */
function offsetAt(t) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: clock.zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  }).formatToParts(new Date(t));
  const p = Object.fromEntries(parts.map((x) => [x.type, Number(x.value)]));
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(t / 1000) * 1000;
}

/**
 * The instant (ISO, UTC) of a wall-clock time in the hospital's zone, as a datetime-local input
 * gives it (`YYYY-MM-DDTHH:MM`); '' gives null. The offset is taken at the instant it names
 * (looked up twice, for a zone whose offset changes that day).
 */
export function fromHospitalLocal(v) {
  if (!v) return null;
  const wall = Date.parse(`${v}:00Z`);
  let t = wall - offsetAt(wall);
  t = wall - offsetAt(t);
  return new Date(t).toISOString();
}

/** The hospital's date `days` from today (by the server's clock), as YYYY-MM-DD. */
export function hospitalDay(days = 0) {
  const d = new Date(Date.now() + clock.skewMs + days * 86400000);
  return new Intl.DateTimeFormat('en-CA', { timeZone: clock.zone }).format(d);
}

/** A time in the hospital's zone, as staff read it. */
export function showTime(iso, withDate = false) {
  if (!iso) return '';
  const opts = { timeZone: clock.zone, hour: '2-digit', minute: '2-digit', hour12: false };
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
