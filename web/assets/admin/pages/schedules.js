// 排班: apply a weekly template to a doctor over a date range, and see the doctor's sessions.
import { api, h, table, field, form } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

const WEEKDAYS = ['一', '二', '三', '四', '五', '六', '日'];
const STATUS = { open: '开放', stopped: '停诊' };
const PERIODS = [['morning', '上午'], ['afternoon', '下午'], ['evening', '夜间']];

function isoDay(d) { return d.toLocaleDateString('sv-SE', { timeZone: 'Asia/Shanghai' }); }

export async function schedulesPage(main, me) {
  const doctors = await api('GET', '/api/v1/doctors?limit=100');
  const list = Array.isArray(doctors) ? doctors : (doctors.items || doctors.doctors || []);
  const sessions = h('div', { class: 'card' }, h('p', { class: 'muted' }, '选择医生查看排班'));
  const today = new Date();
  const later = new Date(today.getTime() + 27 * 86400000);
  const showSessions = async (doctor) => {
    const s = await api('GET', `/api/v1/doctors/${doctor}/schedule?from=${isoDay(today)}&to=${isoDay(later)}`);
    mount(sessions, h('h3', {}, '未来四周的出诊'), table([
      ['日期', (x) => x.date], ['时段', (x) => (PERIODS.find((p) => p[0] === x.period) || [0, x.period])[1]],
      ['号源', (x) => (x.slots || []).map((sl) => `${sl.start.slice(0, 5)}-${sl.end.slice(0, 5)} 余${sl.remaining}`).join('；')],
      ['状态', (x) => STATUS[x.status] || x.status || ''],
    ], s.sessions || [], '没有出诊'));
  };
  const pick = h('select', { name: 'doctor', onchange: (e) => showSessions(e.target.value) },
    list.map((d) => h('option', { value: d.id }, d.name)));
  const apply = form('按周模板排班', [
    field('医生', pick),
    field('开始日期', h('input', { name: 'from', type: 'date', value: isoDay(today), required: true })),
    field('结束日期', h('input', { name: 'to', type: 'date', value: isoDay(later), required: true })),
    field('星期', h('select', { name: 'weekday' }, WEEKDAYS.map((w, i) => h('option', { value: String(i + 1) }, '星期' + w)))),
    field('时段', h('select', { name: 'period' }, PERIODS.map(([v, l]) => h('option', { value: v }, l)))),
    field('开始', h('input', { name: 'start', type: 'time', value: '08:00' })),
    field('结束', h('input', { name: 'end', type: 'time', value: '12:00' })),
    field('每段分钟', h('input', { name: 'minutes', type: 'number', value: '30' })),
    field('每段号数', h('input', { name: 'quota', type: 'number', value: '10' })),
  ], '生成排班', (f) => api('POST', `/api/v1/admin/doctors/${f.doctor.value}/sessions`, {
    from: f.from.value, to: f.to.value,
    weekly: [{ weekday: Number(f.weekday.value), period: f.period.value, start: f.start.value + ':00', end: f.end.value + ':00',
      segment_minutes: Number(f.minutes.value), quota: Number(f.quota.value) }],
    release_days_before: 7, release_time: '08:00:00',
  }), async (r) => {
    await showSessions(pick.value);
    sessions.prepend(h('p', { class: 'ok', id: 'applied' }, `新建 ${r.created.length} 个出诊，跳过已有 ${r.skipped} 个`));
  }, 'apply-template');
  mount(main, h('h2', {}, '排班'), h('div', { class: 'two' }, apply, sessions));
  if (list.length) await showSessions(list[0].id);
}
