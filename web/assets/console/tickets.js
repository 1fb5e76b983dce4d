// 留言 (tickets, CS-4) in the agents' console: the open messages patients left outside service
// hours for the agent's groups, oldest first, each answered once (the answer reaches the
// patient's message centre and phone). Loaded when the console starts and on 刷新, not polled:
// the list holds what patients wrote, and every read of it is audited. Text only, never HTML.
import { api, messageOf } from '/static/common/api.js';
import { h, mount, showTime } from '/static/common/dom.js';
import { groupName, mask } from './names.js';

/** The side section listing open tickets; `show(node)` puts a ticket in the main pane. */
export function ticketsSection(show) {
  const list = h('ul', { class: 'tickets' });
  const count = h('span', { class: 'count' });
  const section = h('div', { class: 'tickets-card' },
    h('h2', {}, '留言 ', count, h('button', { class: 'secondary chip refresh', onclick: () => load() }, '刷新')), list);

  async function load() {
    let tickets;
    try {
      tickets = await api('GET', '/api/v1/chat/agent/tickets');
    } catch (x) {
      mount(list, h('li', { class: 'muted' }, messageOf(x)));
      return;
    }
    count.textContent = tickets.length ? `${tickets.length}条待答复` : '';
    mount(list, tickets.length ? tickets.map((t) => h('li', {
      class: 'item ticket', dataset: { id: t.id }, onclick: () => show(ticketView(t, load)),
    }, h('div', { class: 'row' }, h('span', { class: 'who' }, mask(t.patient_name)),
      h('span', { class: 'group muted' }, groupName(t.group)),
      h('span', { class: 'muted small' }, showTime(t.created_at, true))),
    h('div', { class: 'preview muted' }, t.text))) : h('li', { class: 'muted' }, '暂无留言'));
  }

  load();
  return section;
}

/** One ticket with the answer form. */
function ticketView(t, reload) {
  const input = h('textarea', { class: 'compose', rows: 4, maxlength: 2000, placeholder: '输入答复，患者将在消息中心收到' });
  const err = h('div', { class: 'error', role: 'alert' });
  const done = h('div', { class: 'done' });
  const button = h('button', { class: 'send answer' }, '答复');
  button.onclick = async () => {
    const text = input.value.trim();
    if (!text) return;
    button.disabled = true;
    try {
      const answered = await api('POST', `/api/v1/chat/agent/tickets/${t.id}/answer`, { text });
      err.textContent = '';
      done.textContent = `已答复（${showTime(answered.answer.answered_at)}）`;
      input.disabled = true;
      reload();
    } catch (x) {
      button.disabled = false;
      err.textContent = x.code === 'ticket_state' ? '该留言已被答复或已关闭' : messageOf(x);
    }
  };
  return h('div', { class: 'ticket-view' },
    h('div', { class: 'conv-head' }, h('strong', {}, mask(t.patient_name)), h('span', { class: 'muted' }, groupName(t.group)),
      h('span', { class: 'status' }, '留言'), h('span', { class: 'muted' }, showTime(t.created_at, true))),
    h('div', { class: 'log' }, h('div', { class: 'msg in' }, h('div', { class: 'text' }, t.text))),
    h('div', { class: 'reply' }, input, button), done, err);
}
