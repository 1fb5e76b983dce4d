// The patient's context beside a conversation (CS-2): their masked name and upcoming
// appointments. Asked once per conversation opened (each read is audited on the server), only
// for one the agent serves; anything else shows nothing. All text goes in as text (dom.js).
import { api } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';

const PERIOD = { morning: '上午', afternoon: '下午', evening: '夜间' };
const STATUS = { held: '待支付', confirmed: '已预约' };
const cache = new Map(); // conversation id -> PatientContext

/** A panel filled in once the context is loaded. */
export function contextPanel(c) {
  const el = h('aside', { class: 'context' });
  if (c.status !== 'assigned') return el;
  const show = (ctx) => mount(el,
    h('h3', {}, '患者信息'),
    h('div', { class: 'who' }, ctx.patient),
    h('h3', {}, '近期预约'),
    ctx.upcoming.length
      ? h('ul', { class: 'visits' }, ctx.upcoming.map((v) => h('li', {},
        h('div', {}, `${v.date} ${PERIOD[v.period] || v.period} · 第${v.place}号`),
        h('div', { class: 'muted small' }, `${v.department_name} ${v.doctor_name} · ${v.patient} · ${STATUS[v.status] || v.status}`))))
      : h('div', { class: 'muted small' }, '暂无预约'));
  if (cache.has(c.id)) {
    show(cache.get(c.id));
  } else {
    api('GET', `/api/v1/chat/agent/conversations/${c.id}/context`)
      .then((ctx) => { cache.set(c.id, ctx); show(ctx); })
      .catch(() => { /* not theirs (any more): nothing to show */ });
  }
  return el;
}
