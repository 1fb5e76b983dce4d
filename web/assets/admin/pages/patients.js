// 患者账号: find an account by phone (shown masked), view it (with a purpose: audited), disable,
// enable, unlock.
import { api, h, table, field, form, when } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

export async function patientsPage(main, me) {
  const canWrite = me.permissions.includes('patients.write');
  const result = h('div', {});
  const show = async (id) => {
    const purpose = prompt('查看原因（将记入审计日志）', '客服咨询');
    if (!purpose) return;
    const d = await api('GET', `/api/v1/admin/patients/${id}?purpose=${encodeURIComponent(purpose)}`);
    mount(result, h('div', { class: 'card' },
      h('h3', {}, `账号 ${d.account.phone || d.account.id}`),
      h('p', {}, `注册时间 ${when(d.account.created_at)}，预约 ${d.appointments} 次`,
        d.disabled ? h('span', { class: 'bad' }, `　已停用：${d.disabled.reason}`) : ''),
      table([['就诊人', (p) => p.name], ['证件号', (p) => p.id_card_no], ['出生日期', (p) => p.birth_date]], d.patients, '没有就诊人'),
      canWrite ? h('div', { class: 'actions' },
        d.disabled
          ? h('button', { onclick: async () => { await api('POST', `/api/v1/admin/patients/${id}/enable`); show(id); } }, '启用账号')
          : h('button', { onclick: async () => {
            const reason = (prompt('停用原因（最多 200 个字）') || '').trim();
            if ([...reason].length > 200) { alert('停用原因最多 200 个字'); return; }
            if (reason) { await api('POST', `/api/v1/admin/patients/${id}/disable`, { reason }); show(id); }
          } }, '停用账号'),
        h('button', { class: 'secondary', onclick: async () => {
          await api('POST', `/api/v1/admin/patients/${id}/unlock`); alert('已解除密码锁定');
        } }, '解除锁定')) : ''));
  };
  const search = form('查找患者账号', [field('手机号', h('input', { name: 'phone', required: true }))], '查找',
    (f) => api('GET', `/api/v1/admin/patients?phone=${encodeURIComponent(f.phone.value.trim())}`),
    (found) => mount(result, h('div', { class: 'card' }, table([
      ['手机号', (a) => a.phone], ['昵称', (a) => a.profile.nickname || ''], ['状态', (a) => a.disabled ? '已停用' : '正常'],
      ['', (a) => h('button', { class: 'secondary', onclick: () => show(a.id) }, '查看')],
    ], found, '没有找到该手机号的账号'))), 'patient-search', { phone: '请输入 11 位手机号，如 13800138000' });
  mount(main, h('h2', {}, '患者账号'), search, result);
}
