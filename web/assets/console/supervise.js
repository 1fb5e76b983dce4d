// The supervisor's view (chat.supervise) in the agents' console: every group's backlog, agents,
// conversations with an agent and open tickets, refreshed every 15 s (a routine read the server
// does not audit: masked names and counts only), and 接管 to take a conversation over. Hidden for
// agents without the permission.
import { api, ApiError, messageOf } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';

/** Fills `el` with the view if the caller supervises; `taken(conversation)` after a take-over. */
export async function superviseSection(el, myId, taken) {
  let groups;
  try {
    groups = await api('GET', '/api/v1/chat/supervise/groups');
  } catch (x) {
    if (!(x instanceof ApiError && x.status === 403)) mount(el, h('div', { class: 'muted' }, messageOf(x)));
    return;
  }
  const err = h('div', { class: 'error', role: 'alert' });
  const body = h('div');
  mount(el, h('h2', {}, '主管视图'), body, err);

  function render() {
    mount(body, groups.map((g) => h('div', { class: 'group-card supervise', dataset: { group: g.code } },
      h('div', { class: 'group-title' }, g.name, h('span', { class: 'count' }, `${g.backlog.waiting}人排队 · ${g.open_tickets}条留言`)),
      h('ul', { class: 'held' }, g.conversations.length ? g.conversations.map((c) => h('li', {},
        h('span', { class: 'who' }, c.patient), h('span', { class: 'muted small' }, ` · ${c.agent ? c.agent.name : ''}`),
        c.agent && c.agent.id !== myId
          ? h('button', { class: 'secondary chip take-over', dataset: { id: c.id }, onclick: () => takeOver(c.id) }, '接管')
          : null)) : h('li', { class: 'muted small' }, '无进行中的会话')))));
  }

  async function refresh() {
    try { groups = await api('GET', '/api/v1/chat/supervise/groups'); render(); } catch { /* next time */ }
  }

  async function takeOver(id) {
    try {
      const c = await api('POST', `/api/v1/chat/supervise/conversations/${id}/take-over`);
      err.textContent = '';
      taken(c);
      refresh();
    } catch (x) {
      err.textContent = x.code === 'agent_unavailable' ? '请先切换为在线，且接待数未满' : messageOf(x);
    }
  }

  render();
  setInterval(refresh, 15000);
}
