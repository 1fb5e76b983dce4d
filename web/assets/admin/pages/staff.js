// 员工: every staff member with roles and state; create one; deactivate/reactivate; reset a password.
import { api, h, table, field, form, when } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';
import { ApiError, messageOf } from '/static/common/api.js';

/** What staff read for a refused field of this page, in place of the server's English. */
const REFUSALS = {
  username: '用户名须为 3 至 32 个字母、数字、“_”或“.”',
  name: '姓名须为 1 至 32 个字，且不能含控制字符',
  password: '密码须为 8 至 128 位，且同时含有字母和数字',
  roles: '请至少选择一个角色（若已选择，所选角色可能刚被删除，请刷新页面）',
};

export async function staffPage(main, me) {
  const [staff, roles] = await Promise.all([api('GET', '/api/v1/admin/staff'), api('GET', '/api/v1/admin/roles')]);
  const label = Object.fromEntries(roles.map((r) => [r.name, r.label]));
  const canWrite = me.permissions.includes('staff.write');
  const reload = () => staffPage(main, me);

  const actions = (s) => !canWrite ? '' : h('span', { class: 'actions' },
    h('button', { class: 'secondary', 'data-act': 'toggle', 'data-user': s.username, onclick: async () => {
      await api('PATCH', `/api/v1/admin/staff/${s.id}`, { active: !s.active });
      reload();
    } }, s.active ? '停用' : '启用'),
    h('button', { class: 'secondary', onclick: async () => {
      const pw = prompt(`为 ${s.username} 设置新密码（8 至 128 位，含字母和数字）`);
      if (!pw) return;
      try {
        await api('POST', `/api/v1/admin/staff/${s.id}/password`, { password: pw });
      } catch (x) {
        alert(x instanceof ApiError && x.field === 'password' ? REFUSALS.password : messageOf(x));
        return;
      }
      alert('已重置，对方需重新登录');
    } }, '重置密码'));

  const list = table([
    ['用户名', (s) => s.username],
    ['姓名', (s) => s.name],
    ['角色', (s) => s.roles.map((r) => h('span', { class: 'chip' }, label[r] || r))],
    ['状态', (s) => s.active ? h('span', { class: 'ok' }, '在职') : h('span', { class: 'bad' }, '已停用')],
    ['创建时间', (s) => when(s.created_at)],
    ['操作', actions],
  ], staff);

  const boxes = roles.map((r) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'role', value: r.name }), r.label));
  const create = canWrite ? form('新增员工', [
    field('用户名', h('input', { name: 'username', required: true })),
    field('姓名', h('input', { name: 'name', required: true })),
    field('初始密码', h('input', { name: 'password', type: 'password', required: true })),
    field('角色', h('div', { class: 'checks' }, boxes)),
  ], '创建', (f) => api('POST', '/api/v1/admin/staff', {
    username: f.username.value, name: f.name.value, password: f.password.value,
    roles: [...f.querySelectorAll('input[name=role]:checked')].map((i) => i.value),
  }), reload, 'new-staff', REFUSALS) : '';

  mount(main, h('h2', {}, '员工'), h('div', { class: 'card' }, list), create);
}
