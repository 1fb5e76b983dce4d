// 角色与权限: the role table (built-in and custom) and the permissions; create or change a role.
import { api, h, table, field, form } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

export async function rolesPage(main, me) {
  const [roles, perms] = await Promise.all([api('GET', '/api/v1/admin/roles'), api('GET', '/api/v1/admin/permissions')]);
  const label = Object.fromEntries(perms.map((p) => [p.name, p.label]));
  const canWrite = me.permissions.includes('roles.write');
  const reload = () => rolesPage(main, me);

  const list = table([
    ['角色', (r) => h('span', {}, r.label, ' ', h('code', {}, r.name))],
    ['类型', (r) => r.builtin ? '内置' : '自定义'],
    ['权限', (r) => r.name === 'admin' ? h('span', { class: 'chip' }, '全部权限')
      : r.permissions.map((p) => h('span', { class: 'chip', title: p }, label[p] || p))],
    ['操作', (r) => !canWrite || r.builtin ? '' : h('button', { class: 'secondary', onclick: async () => {
      if (confirm(`删除角色 ${r.label}？`)) { await api('DELETE', `/api/v1/admin/roles/${r.name}`); reload(); }
    } }, '删除')],
  ], roles);

  const boxes = perms.filter((p) => p.name !== 'staff.self')
    .map((p) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'perm', value: p.name }), p.label));
  const create = canWrite ? form('新建或修改角色', [
    field('角色标识（小写字母、数字、下划线）', h('input', { name: 'rolename', required: true, placeholder: 'refund_clerk' })),
    field('名称', h('input', { name: 'label', required: true, placeholder: '退款专员' })),
    field('权限', h('div', { class: 'checks' }, boxes)),
  ], '保存', (f) => api('PUT', `/api/v1/admin/roles/${encodeURIComponent(f.rolename.value.trim())}`, {
    label: f.label.value,
    permissions: [...f.querySelectorAll('input[name=perm]:checked')].map((i) => i.value),
  }), reload, 'new-role', {
    role: '角色标识须为 2 至 32 个小写字母、数字或“_”，以字母开头',
    label: '名称须为 1 至 32 个字，且不能含控制字符',
    permissions: '所选权限已不存在，请刷新页面后重试',
  }) : '';

  mount(main, h('h2', {}, '角色与权限'), h('div', { class: 'card' }, list), create);
}
