// 资讯与常见问题: news and health-education articles (write, edit, publish, take down, delete)
// and, for holders of `chat.admin`, the FAQ patients search. Article bodies are HTML the server
// sanitises; the preview shows the server's sanitised copy in a sandboxed frame (no scripts), so
// what staff see is what patients get.
import { api, h, table, field, form, when, flatten } from '/admin/ui.js';
import { mount } from '/static/common/dom.js';

const KINDS = [['news', '医院新闻'], ['health_education', '健康宣教']];
const kindLabel = Object.fromEntries(KINDS);

/** The article form: empty for a new one, filled for `editing` (then a revision of its version). */
function articleForm(depts, editing, reload) {
  const a = editing || {};
  const dept = h('select', { name: 'department' }, h('option', { value: '' }, '（全院）'),
    depts.map((d) => h('option', { value: d.id }, '　'.repeat(d.depth) + d.name)));
  dept.value = a.department_id || '';
  const kind = h('select', { name: 'kind' }, KINDS.map(([v, l]) => h('option', { value: v }, l)));
  kind.value = a.kind || 'health_education';
  const published = h('input', { name: 'published', type: 'checkbox' });
  published.checked = !!a.published;
  const body = h('textarea', { name: 'body', required: true, rows: '8' });
  body.value = a.body_html || '';
  return form(editing ? `编辑：${a.title}` : '新文章', [
    field('类别', kind),
    field('标题', h('input', { name: 'title', required: true, maxlength: '64', value: a.title || '' })),
    field('摘要', h('input', { name: 'summary', maxlength: '200', value: a.summary || '' })),
    field('科室', dept),
    field('正文（HTML，保存时去除脚本与样式）', body),
    h('label', { class: 'check' }, published, ' 发布（患者可见）'),
  ], editing ? '保存修改' : '保存', (f) => {
    const draft = {
      kind: f.kind.value, title: f.title.value, summary: f.summary.value, body_html: f.body.value,
      department_id: f.department.value || null, published: f.published.checked,
    };
    return editing ? api('PUT', `/api/v1/admin/articles/${a.id}`, { version: a.version, article: draft })
      : api('POST', '/api/v1/admin/articles', draft);
  }, (saved) => reload(saved.id), 'article-form', {
    title: '标题须为 1 至 64 个字，且不能含控制字符',
    summary: '摘要最多 200 个字，且只能写一行',
    body_html: '正文不能为空（去除脚本与样式后仍须有内容），最多 100000 个字',
    department_id: '所选科室已不存在，请刷新页面后重试',
  });
}

/** The FAQ: entries with their service group (none: every group); add, edit, remove. */
async function faqCard(reload, editingId) {
  const entries = await api('GET', '/api/v1/chat/faq?limit=100');
  const editing = entries.find((e) => e.id === editingId);
  const rows = table([
    ['问题', (e) => e.question],
    ['回答', (e) => e.answer],
    ['分组', (e) => e.group || '全部分组'],
    ['操作', (e) => h('span', { class: 'actions' },
      h('button', { class: 'secondary', 'data-edit-faq': e.id, onclick: () => reload(e.id) }, '编辑'),
      h('button', { class: 'secondary', 'data-delete-faq': e.id, onclick: async () => {
        await api('DELETE', `/api/v1/chat/faq/${e.id}`);
        reload();
      } }, '删除'))],
  ], entries, '还没有常见问题');
  const e = editing || {};
  const answer = h('textarea', { name: 'answer', required: true, rows: '3' });
  answer.value = e.answer || '';
  const put = form(editing ? '编辑常见问题' : '新增常见问题', [
    field('问题', h('input', { name: 'question', required: true, maxlength: '200', value: e.question || '' })),
    field('回答', answer),
    field('关键词（逗号分隔）', h('input', { name: 'keywords', value: (e.keywords || []).join('，') })),
    field('客服分组代码（留空适用全部分组）', h('input', { name: 'group', value: e.group || '' })),
  ], editing ? '保存修改' : '添加', (f) => {
    const body = {
      group: f.group.value.trim() || null, question: f.question.value, answer: f.answer.value,
      keywords: f.keywords.value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean),
    };
    return editing ? api('PUT', `/api/v1/chat/faq/${e.id}`, body) : api('POST', '/api/v1/chat/faq', body);
  }, () => reload(), 'new-faq', {
    question: '问题须为 1 至 200 个字，且只能写一行',
    answer: '回答须为 1 至 4000 个字',
    keywords: '关键词最多 20 个，每个最多 20 个字',
    group: (x, f) => `没有代码为“${f.group.value.trim()}”的客服分组：请填写已有分组的代码（由小写字母、数字、- 或 _ 组成），或留空适用全部分组`,
  });
  return h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '常见问题'), rows),
    h('div', {}, put, editing ? h('button', { class: 'secondary', onclick: () => reload() }, '新增常见问题') : null));
}

export async function contentPage(main, me, selected, faqEditing) {
  const [articles, tree] = await Promise.all([api('GET', '/api/v1/admin/articles'), api('GET', '/api/v1/departments')]);
  const depts = flatten(tree);
  const deptName = Object.fromEntries(depts.map((d) => [d.id, d.name]));
  const reload = (id) => contentPage(main, me, id);
  const editing = articles.find((a) => a.id === selected);

  const list = table([
    ['标题', (a) => h('a', { href: '#content', 'data-article': a.id, onclick: (e) => { e.preventDefault(); reload(a.id); } }, a.title)],
    ['类别', (a) => kindLabel[a.kind] || a.kind],
    ['科室', (a) => deptName[a.department_id] || '全院'],
    ['状态', (a) => h('span', { class: a.published ? 'ok' : '' }, a.published ? '已发布' : '草稿')],
    ['更新时间', (a) => when(a.updated_at)],
    ['操作', (a) => h('button', { class: 'secondary', 'data-delete-article': a.id, onclick: async () => {
      if (!confirm(`删除《${a.title}》？`)) return;
      await api('DELETE', `/api/v1/admin/articles/${a.id}`);
      reload();
    } }, '删除')],
  ], articles, '还没有文章');

  const preview = editing ? h('div', { class: 'card' }, h('h3', {}, '预览（患者看到的内容）'),
    h('iframe', { class: 'preview', id: 'article-preview', sandbox: '', title: '预览', srcdoc: editing.body_html })) : null;
  const side = h('div', {}, articleForm(depts, editing, reload), preview,
    editing ? h('button', { class: 'secondary', onclick: () => reload() }, '写新文章') : null);

  mount(main, h('h2', {}, '资讯与常见问题'),
    h('div', { class: 'two' }, h('div', { class: 'card' }, h('h3', {}, '文章'), list), side),
    me.permissions.includes('chat.admin') ? await faqCard((id) => contentPage(main, me, selected, id), faqEditing) : null);
}
