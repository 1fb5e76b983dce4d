// 公告: publish a notice to every patient, one department's patients (those booked there) or
// staff, now or at a set time (the hospital's local time); withdraw one before its time.
import { api, h, table, field, form, when, flatten } from '/admin/ui.js';
import { mount, fromHospitalLocal, hospitalZoneLabel } from '/static/common/dom.js';

const STATES = { scheduled: '待发布', published: '已发布', cancelled: '已撤回' };

export async function announcementsPage(main, me) {
  const [list, tree] = await Promise.all([api('GET', '/api/v1/admin/announcements'), api('GET', '/api/v1/departments')]);
  const depts = flatten(tree);
  const deptName = Object.fromEntries(depts.map((d) => [d.id, d.name]));
  const reload = () => announcementsPage(main, me);
  const audienceLabel = (a) => a.kind === 'all_patients' ? '全部患者'
    : a.kind === 'staff' ? '员工' : `${deptName[a.department_id] || '科室'}的患者`;

  const rows = table([
    ['标题', (a) => a.title],
    ['对象', (a) => audienceLabel(a.audience)],
    ['发布时间', (a) => when(a.publish_at)],
    ['状态', (a) => h('span', { class: a.state === 'published' ? 'ok' : '' }, STATES[a.state] || a.state)],
    ['送达', (a) => a.state === 'published' && a.audience.kind !== 'staff' ? `${a.recipients} 个账号` : ''],
    ['操作', (a) => a.state !== 'scheduled' ? '' : h('button', { class: 'secondary', 'data-cancel': a.id, onclick: async () => {
      await api('DELETE', `/api/v1/admin/announcements/${a.id}`);
      reload();
    } }, '撤回')],
  ], list, '还没有公告');

  const audience = h('select', { name: 'audience' },
    h('option', { value: 'all_patients' }, '全部患者'),
    depts.map((d) => h('option', { value: 'dept:' + d.id }, '　'.repeat(d.depth) + d.name + '的患者')),
    h('option', { value: 'staff' }, '员工'));
  const create = form('发布公告', [
    field('标题', h('input', { name: 'title', required: true, maxlength: '64' })),
    field('内容', h('textarea', { name: 'body', required: true, rows: '4' })),
    field('对象', audience),
    field(`定时发布（${hospitalZoneLabel()}，留空即刻发布）`, h('input', { name: 'at', type: 'datetime-local' })),
  ], '发布', (f) => {
    const v = f.audience.value;
    const aud = v.startsWith('dept:') ? { kind: 'department', department_id: v.slice(5) } : { kind: v };
    return api('POST', '/api/v1/admin/announcements', {
      title: f.title.value, body: f.body.value, audience: aud, publish_at: fromHospitalLocal(f.at.value),
    });
  }, reload, 'new-announcement', {
    publish_at: '定时发布的时间须在现在到一年之内：不能早于现在',
    title: '标题须为 1 到 64 个字',
    body: '内容须为 1 到 4000 个字',
  });

  mount(main, h('h2', {}, '公告'), h('div', { class: 'two' }, h('div', { class: 'card' }, rows), create));
}
