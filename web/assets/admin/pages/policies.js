// 隐私政策与用户协议 (SET-2): the texts in force, every version with when it was published, and
// publishing a new version. Once published, every patient must accept the new version before
// using the app again (the consent gate), so the form asks before it publishes.
import { api, h, table, field, form, when } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

const KINDS = [['privacy', '隐私政策'], ['terms', '用户协议']];
const kindLabel = Object.fromEntries(KINDS);

export async function policiesPage(main, me, shown) {
  const versions = await api('GET', '/api/v1/admin/policies/versions');
  const reload = (v) => policiesPage(main, me, v);
  const current = KINDS.map(([k]) => versions.find((v) => v.kind === k)).filter(Boolean);
  const viewing = versions.find((v) => shown && v.kind === shown.kind && v.version === shown.version);

  const inForce = table([
    ['文本', (v) => kindLabel[v.kind] || v.kind],
    ['版本', (v) => `第${v.version}版`],
    ['标题', (v) => v.title],
    ['发布时间', (v) => when(v.published_at)],
  ], current, '尚未发布，患者无需同意任何文本');
  const history = table([
    ['文本', (v) => kindLabel[v.kind] || v.kind],
    ['版本', (v) => h('a', { href: '#policies', 'data-version': `${v.kind}-${v.version}`,
      onclick: (e) => { e.preventDefault(); reload(v); } }, `第${v.version}版`)],
    ['标题', (v) => v.title],
    ['发布时间', (v) => when(v.published_at)],
    ['状态', (v) => current.includes(v) ? h('span', { class: 'ok' }, '现行') : '已被替代'],
  ], versions, '还没有任何版本');

  const body = h('textarea', { name: 'body', rows: '10', required: true });
  const kind = h('select', { name: 'kind' }, KINDS.map(([v, l]) => h('option', { value: v }, l)));
  const publish = form('发布新版本', [
    field('文本', kind),
    field('标题', h('input', { name: 'title', required: true, maxlength: '100' })),
    field('正文', body),
  ], '发布', async (f) => {
    const label = kindLabel[f.kind.value];
    if (!confirm(`发布新版${label}后，所有患者需重新阅读并同意才能继续使用。确定发布？`)) return null;
    return api('POST', '/api/v1/admin/policies', { kind: f.kind.value, title: f.title.value, body: f.body.value });
  }, (v) => reload(v || undefined), 'publish-policy', {
    title: '标题须为 1 至 100 个字，且不能含控制字符',
    body: '正文不能为空，最多 100000 个字',
  });

  const text = viewing ? h('div', { class: 'card', id: 'policy-text' },
    h('h3', {}, `${kindLabel[viewing.kind]} 第${viewing.version}版：${viewing.title}`),
    h('p', { class: 'muted' }, `发布于 ${when(viewing.published_at)}`),
    h('pre', { class: 'policy' }, viewing.body)) : null;

  mount(main, h('h2', {}, '隐私政策与用户协议'),
    h('div', { class: 'two' }, h('div', {}, h('div', { class: 'card' }, h('h3', {}, '现行版本'), inForce),
      h('div', { class: 'card' }, h('h3', {}, '全部版本'), history), text), publish));
}
