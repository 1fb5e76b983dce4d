// Small SVG charts for the analytics page, drawn here (no library, no build step): columns over
// days, horizontal bars, and a weekday × hour heat map. Labels are text nodes (never parsed as
// markup); each mark carries its figure in data attributes (`data-label`, `data-n`) and a
// <title>, so a reader, a test and a tooltip all see the same number.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A round step (1, 2, 5 × 10^k) for about `ticks` gridlines up to `max`. */
function step(max, ticks = 4) {
  const raw = Math.max(max, 1) / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return Math.max(1, (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p);
}

/** Columns: `points` = [{label, n}], labels on the x axis (every k-th when crowded). */
export function columns(id, points, { height = 220, width = 760, color = '#0b6bcb', unit = '' } = {}) {
  const W = width, H = height, left = 40, bottom = 28, top = 14;
  const max = Math.max(0, ...points.map((p) => p.n));
  const st = step(max);
  const yMax = Math.max(st, Math.ceil(max / st) * st);
  const y = (n) => top + (H - top - bottom) * (1 - n / yMax);
  const bw = (W - left - 8) / Math.max(points.length, 1);
  const every = Math.ceil(points.length / Math.max(4, Math.floor(W / 64)));
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  for (let v = 0; v <= yMax; v += st) {
    svg.appendChild(s('line', { x1: left, x2: W - 4, y1: y(v), y2: y(v), class: 'grid-line' }));
    svg.appendChild(s('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'axis' }, v));
  }
  points.forEach((p, i) => {
    const x = left + i * bw;
    const bar = s('rect', {
      x: x + bw * 0.15, width: Math.max(bw * 0.7, 1), y: y(p.n), height: Math.max(y(0) - y(p.n), 0),
      fill: color, class: 'mark', 'data-label': p.label, 'data-n': p.n,
    }, s('title', {}, `${p.label}：${p.n}${unit}`));
    svg.appendChild(bar);
    if (p.n > 0 && points.length <= 31) {
      svg.appendChild(s('text', { x: x + bw / 2, y: y(p.n) - 3, 'text-anchor': 'middle', class: 'value' }, p.n));
    }
    if (i % every === 0) {
      svg.appendChild(s('text', { x: x + bw / 2, y: H - 10, 'text-anchor': 'middle', class: 'axis' }, p.short || p.label));
    }
  });
  return svg;
}

/** Horizontal bars: `rows` = [{label, n, note}], the largest first. */
export function bars(id, rows, { color = '#1b7f3b', width = 760 } = {}) {
  const W = width, row = 26, left = 120, right = 100;
  const H = row * rows.length + 8;
  const max = Math.max(1, ...rows.map((r) => r.n));
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  rows.forEach((r, i) => {
    const y = 4 + i * row;
    const w = (W - left - right) * (r.n / max);
    svg.appendChild(s('text', { x: left - 8, y: y + 17, 'text-anchor': 'end', class: 'label' }, r.label));
    svg.appendChild(s('rect', { x: left, y: y + 4, width: Math.max(w, r.n ? 2 : 0), height: row - 8, fill: color, rx: 2,
      class: 'mark', 'data-label': r.label, 'data-n': r.n }, s('title', {}, `${r.label}：${r.n}`)));
    svg.appendChild(s('text', { x: left + w + 6, y: y + 17, class: 'value' }, r.note ? `${r.n}（${r.note}）` : r.n));
  });
  return svg;
}

/** A heat map of `grid` (rows × 24 hours), rows labelled `rowLabels`. */
export function heatmap(id, grid, rowLabels) {
  const W = 760, left = 44, top = 18, cw = (W - left - 6) / 24, ch = 24;
  const H = top + ch * grid.length + 4;
  const max = Math.max(1, ...grid.flat());
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  for (let hr = 0; hr < 24; hr += 2) {
    svg.appendChild(s('text', { x: left + hr * cw + cw / 2, y: 12, 'text-anchor': 'middle', class: 'axis' }, `${hr}时`));
  }
  grid.forEach((hours, r) => {
    svg.appendChild(s('text', { x: left - 6, y: top + r * ch + 16, 'text-anchor': 'end', class: 'axis' }, rowLabels[r]));
    hours.forEach((n, hr) => {
      const a = n ? 0.15 + 0.85 * (n / max) : 0;
      svg.appendChild(s('rect', {
        x: left + hr * cw + 1, y: top + r * ch + 1, width: cw - 2, height: ch - 2, rx: 2,
        fill: n ? `rgba(11,107,203,${a.toFixed(3)})` : '#f1f3f5', class: 'mark',
        'data-label': `${rowLabels[r]} ${hr}时`, 'data-n': n,
      }, s('title', {}, `${rowLabels[r]} ${hr}:00-${hr + 1}:00：${n}`)));
    });
  });
  return svg;
}
