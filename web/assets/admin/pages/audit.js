// 审计日志: search by staff member, action, patient account and time; export CSV.
import { api, h, table, field, form, when, download } from '/admin/ui.js';
import { mount, fromHospitalLocal, hospitalZoneLabel } from '/static/common/dom.js';

const OUTCOME = { success: '成功', denied: '拒绝', failed: '失败' };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IDS = { staff: '员工 ID', account: '患者账号 ID' };

/** The search as a query string; times typed are the hospital's (as the table shows them). */
function query(f) {
  const q = new URLSearchParams();
  for (const k of ['staff', 'action', 'account', 'outcome']) {
    const v = f[k].value.trim();
    if (!v) continue;
    if (IDS[k] && !UUID.test(v)) throw new Error(`${IDS[k]}应为 36 位的编号，如 0193a4f2-7c1d-7e3a-9b2f-4d5e6f708192`);
    q.set(k, v);
  }
  if (f.from.value) q.set('from', fromHospitalLocal(f.from.value));
  if (f.to.value) q.set('to', fromHospitalLocal(f.to.value));
  return q;
}

export async function auditPage(main) {
  const result = h('div', { class: 'card' });
  const render = (page) => mount(result, table([
    ['时间', (e) => when(e.at)],
    ['操作人', (e) => e.event.actor.kind === 'staff' ? `${e.event.actor.id.slice(0, 8)}（${e.event.actor.roles.join(',')}）` : e.event.actor.name],
    ['动作', (e) => h('code', {}, e.event.action)],
    ['对象', (e) => `${e.event.target.kind} ${e.event.target.id}`],
    ['原因', (e) => e.event.purpose || ''],
    ['结果', (e) => h('span', { class: e.event.outcome === 'success' ? 'ok' : 'bad' }, OUTCOME[e.event.outcome] || e.event.outcome)],
    ['来源', (e) => e.event.source_ip || ''],
    ['序号', (e) => `${e.chain}#${e.seq}`],
  ], page.entries, '没有符合条件的记录'));
  const f = form('查询审计日志', [
    field('员工 ID', h('input', { name: 'staff' })),
    field('动作', h('input', { name: 'action', placeholder: 'staff.create' })),
    field('患者账号 ID', h('input', { name: 'account' })),
    field('结果', h('select', { name: 'outcome' }, h('option', { value: '' }, '全部'),
      Object.entries(OUTCOME).map(([v, l]) => h('option', { value: v }, l)))),
    field(`开始（${hospitalZoneLabel()}）`, h('input', { name: 'from', type: 'datetime-local' })),
    field(`结束（${hospitalZoneLabel()}）`, h('input', { name: 'to', type: 'datetime-local' })),
  ], '查询', (form) => api('GET', '/api/v1/admin/audit?' + query(form)), render, 'audit-search', {
    from: '开始须早于结束，且相隔不超过一年',
    account: '员工 ID 和患者账号 ID 只能填一个',
  });
  f.appendChild(h('button', { type: 'button', class: 'secondary', id: 'export', onclick: () =>
    download('/api/v1/admin/audit/export?format=csv&' + query(f), 'audit.csv') }, '导出 CSV'));
  mount(main, h('h2', {}, '审计日志'), f, result);
  render(await api('GET', '/api/v1/admin/audit?limit=100'));
}
