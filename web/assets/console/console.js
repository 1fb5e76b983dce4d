// The agents' console (客服工作台, CS-2): presence, the inbox of assigned conversations with
// unread badges, each group's backlog with counts and waits, a conversation with its history,
// canned replies, read marks, transfer and close. Live through the console socket
// (/api/v1/chat/console/ws); after a reconnect it reloads the desk and asks each open
// conversation for the messages after the last `seq` it has. Every user string is shown as text
// (dom.js), never parsed as HTML.
import { api, token, messageOf, ApiError } from '/static/common/api.js';
import { h, mount, showTime, loadClock } from '/static/common/dom.js';
import { loginView } from '/static/common/login.js';
import { ticketsSection } from './tickets.js';
import { superviseSection } from './supervise.js';
import { imageBody, imagePicker } from './images.js';
import { contextPanel } from './context.js';
import { latestNews, newsBar, showNews } from '/static/common/news.js';

const app = document.getElementById('app');
const TITLE = '客服工作台';
const PRESENCE = { online: '在线', away: '离开', offline: '离线' };
const STATUS = { waiting: '排队中', assigned: '服务中', closed: '已结束' };

const st = {
  agent: null,
  presence: 'online',
  conversations: new Map(), // id -> AgentConversation
  messages: new Map(), // id -> [ChatMessage] in seq order
  groups: new Map(), // code -> { backlog, presence }
  current: null,
  canned: [],
  socket: null,
  connected: false,
};

const els = {};

function unread(c) {
  return Math.max(0, c.last_seq - c.agent_read);
}

function waitText(iso) {
  if (!iso) return '';
  const mins = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
  return mins < 1 ? '不到1分钟' : `${mins}分钟`;
}

function layout() {
  els.presence = h('select', { class: 'presence', 'aria-label': '状态', onchange: (e) => setPresence(e.target.value) },
    Object.entries(PRESENCE).map(([v, label]) => h('option', { value: v }, label)));
  els.presence.value = st.presence;
  els.link = h('span', { class: 'link' }, '连接中…');
  els.news = newsBar();
  latestNews(els.news);
  els.inbox = h('ul', { class: 'inbox' });
  els.backlog = h('div', { class: 'backlog' });
  els.main = h('section', { class: 'conversation' }, h('div', { class: 'empty' }, '选择左侧的会话'));
  mount(app,
    h('header', { class: 'topbar' }, h('span', { class: 'title' }, TITLE), els.presence, els.link,
      h('span', { class: 'spacer' }), h('span', { class: 'me' }, st.agent.name)),
    els.news,
    h('div', { class: 'desk' },
      h('aside', { class: 'side' }, h('h2', {}, '我的会话'), els.inbox, h('h2', {}, '排队'), els.backlog,
        ticketsSection(showMain), els.supervise = h('div', { class: 'supervise-card' })),
      els.main));
  superviseSection(els.supervise, st.agent.id, taken);
}

// The main pane shows something other than a conversation (a ticket).
function showMain(node) {
  st.current = null;
  renderInbox();
  mount(els.main, node);
}

// A supervisor took a conversation over: it is theirs now.
function taken(c) {
  st.conversations.set(c.id, c);
  openConversation(c.id);
}

function renderInbox() {
  const list = [...st.conversations.values()].filter((c) => c.status === 'assigned' && c.agent && c.agent.id === st.agent.id);
  list.sort((a, b) => a.created_at.localeCompare(b.created_at));
  mount(els.inbox, list.length ? list.map((c) => h('li', {
    class: 'item' + (st.current === c.id ? ' active' : ''), dataset: { id: c.id },
    onclick: () => openConversation(c.id),
  }, h('span', { class: 'who' }, c.patient), h('span', { class: 'group muted' }, groupName(c.group)),
  unread(c) ? h('span', { class: 'badge' }, String(unread(c))) : null)) : h('li', { class: 'muted' }, '暂无会话'));
}

function groupName(code) {
  const names = { booking: '预约咨询', billing: '缴费与医保', reports: '报告咨询' };
  return names[code] || code;
}

function renderBacklog() {
  mount(els.backlog, [...st.groups.values()].map(({ backlog, presence }) => h('div', { class: 'group-card' },
    h('div', { class: 'group-title' }, groupName(backlog.group),
      h('span', { class: 'count', dataset: { group: backlog.group } }, `${backlog.waiting}人排队`)),
    h('div', { class: 'muted' }, `最长等待 ${waitText(backlog.oldest_arrived_at) || '—'} · 在线客服 ${backlog.agents_online}`),
    h('ol', { class: 'queue' }, backlog.first.slice(0, 5).map((e) => h('li', {}, `${e.patient} · 已等${waitText(e.arrived_at)}`))),
    h('div', { class: 'muted small' }, presence.agents.map((a) => `${a.name} ${PRESENCE[a.presence]} ${a.load}/${a.cap}`).join('　')))));
}

function bubble(m, c) {
  const mine = m.sender.kind === 'agent';
  const text = m.body.kind === 'text' ? m.body.text : '[图片]';
  const read = mine && c && c.patient_read >= m.seq ? '已读' : (mine ? '未读' : '');
  return h('div', { class: 'msg ' + (mine ? 'out' : m.sender.kind === 'system' ? 'sys' : 'in'), dataset: { seq: String(m.seq) } },
    m.body.kind === 'image' ? imageBody(m) : h('div', { class: 'text' }, text),
    h('div', { class: 'meta muted' }, showTime(m.sent_at), read ? h('span', { class: 'read' }, read) : null));
}

function renderConversation() {
  const c = st.conversations.get(st.current);
  if (!c) return mount(els.main, h('div', { class: 'empty' }, '选择左侧的会话'));
  const msgs = st.messages.get(c.id) || [];
  els.log = h('div', { class: 'log' }, msgs.map((m) => bubble(m, c)));
  const input = h('textarea', { class: 'compose', rows: 3, placeholder: '输入回复，Enter 发送', maxlength: 2000,
    oninput: () => typing(c.id),
    onkeydown: (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); send(input); } } });
  const err = h('div', { class: 'error', role: 'alert' });
  els.err = err;
  const transfer = h('select', { class: 'transfer', 'aria-label': '转接' }, h('option', { value: '' }, '转接到…'),
    ['booking', 'billing', 'reports'].filter((g) => g !== c.group).map((g) => h('option', { value: g }, groupName(g))));
  transfer.onchange = () => transferTo(transfer.value);
  const open = c.status === 'assigned';
  mount(els.main,
    h('div', { class: 'conv-head' }, h('strong', {}, c.patient), h('span', { class: 'muted' }, groupName(c.group)),
      h('span', { class: 'status' }, STATUS[c.status]), els.typing = h('span', { class: 'typing muted' }),
      h('span', { class: 'spacer' }),
      open ? transfer : null,
      open ? h('button', { class: 'secondary close', onclick: () => closeConversation() }, '结束会话') : null),
    h('div', { class: 'conv-body' }, els.log, contextPanel(c)),
    open ? h('div', { class: 'canned' }, st.canned.map((r) => h('button', { class: 'secondary chip', title: r.text,
      onclick: () => { input.value = r.text; input.focus(); } }, r.title))) : null,
    open ? h('div', { class: 'reply' }, input, h('button', { class: 'send', onclick: () => send(input) }, '发送'),
      imagePicker(c.id, appendMine, (msg) => { err.textContent = msg; })) : null,
    err);
  els.log.scrollTop = els.log.scrollHeight;
  markRead(c);
}

async function markRead(c) {
  if (c.status !== 'assigned' || c.agent_read >= c.last_seq) return;
  try {
    await api('POST', `/api/v1/chat/agent/conversations/${c.id}/read`, { seq: c.last_seq });
    c.agent_read = c.last_seq;
    renderInbox();
  } catch { /* the next message marks again */ }
}

async function loadMessages(id) {
  const have = st.messages.get(id) || [];
  let after = have.length ? have[have.length - 1].seq : 0;
  for (;;) {
    const page = await api('GET', `/api/v1/chat/agent/conversations/${id}/messages?after=${after}&limit=200`);
    for (const m of page.messages) addMessage(m);
    if (page.next_after == null) break;
    after = page.next_after;
  }
}

function addMessage(m) {
  const list = st.messages.get(m.conversation_id) || [];
  if (list.length && list[list.length - 1].seq >= m.seq) return false; // seen already
  list.push(m);
  st.messages.set(m.conversation_id, list);
  const c = st.conversations.get(m.conversation_id);
  if (c && m.seq > c.last_seq) c.last_seq = m.seq;
  return true;
}

async function openConversation(id) {
  st.current = id;
  try {
    await loadMessages(id);
    st.canned = await api('GET', `/api/v1/chat/agent/conversations/${id}/canned`);
  } catch (x) {
    st.canned = [];
  }
  renderInbox();
  renderConversation();
}

async function send(input) {
  const text = input.value.trim();
  if (!text) return;
  try {
    const m = await api('POST', `/api/v1/chat/agent/conversations/${st.current}/messages`, { text });
    input.value = '';
    appendMine(m);
  } catch (x) {
    els.err.textContent = messageOf(x);
  }
}

// The agent's own message (text or image), once the server has it durable.
function appendMine(m) {
  const added = addMessage(m); // false if the console socket brought it first
  const c = st.conversations.get(m.conversation_id);
  if (c) c.agent_read = Math.max(c.agent_read, m.seq);
  if (added && st.current === m.conversation_id && els.log) {
    els.log.appendChild(bubble(m, c));
    els.log.scrollTop = els.log.scrollHeight;
  }
}

async function closeConversation() {
  try {
    const c = await api('POST', `/api/v1/chat/agent/conversations/${st.current}/close`);
    st.conversations.set(c.id, c);
    renderInbox();
    renderConversation();
  } catch (x) {
    els.err.textContent = messageOf(x);
  }
}

async function transferTo(group) {
  if (!group) return;
  try {
    const c = await api('POST', `/api/v1/chat/agent/conversations/${st.current}/transfer`, { group });
    st.conversations.set(c.id, c);
    st.current = null;
    renderInbox();
    renderConversation();
  } catch (x) {
    els.err.textContent = messageOf(x);
  }
}

// The agent is typing: the patient sees it (the server passes on at most one a second).
let typingAt = 0;
function typing(id) {
  const now = Date.now();
  if (now - typingAt < 1000 || !st.socket || !st.connected) return;
  typingAt = now;
  st.socket.send(JSON.stringify({ type: 'typing', conversation_id: id }));
}

function setPresence(p) {
  st.presence = p;
  if (st.socket && st.connected) st.socket.send(JSON.stringify({ type: 'presence', presence: p }));
}

async function loadDesk() {
  const d = await api('GET', '/api/v1/chat/agent/desk');
  st.agent = d.agent;
  for (const c of d.conversations) st.conversations.set(c.id, c);
  for (const g of d.groups) st.groups.set(g.backlog.group, g);
  for (const c of d.conversations) await loadMessages(c.id);
}

function onEvent(frame) {
  const p = frame.payload;
  switch (frame.type) {
    case 'welcome':
      st.connected = true;
      els.link.textContent = '已连接';
      els.link.className = 'link ok';
      break;
    case 'assignment':
      st.conversations.set(p.id, p);
      if (p.status === 'assigned') loadMessages(p.id).then(() => { renderInbox(); if (st.current === p.id) renderConversation(); });
      renderInbox();
      if (st.current === p.id) renderConversation();
      break;
    case 'chat_message': {
      // The first we hear of a conversation taken over mid-way: load its history from the start.
      if (!st.messages.has(p.conversation_id) && p.seq > 1) {
        loadMessages(p.conversation_id).then(() => { renderInbox(); if (st.current === p.conversation_id) renderConversation(); });
        break;
      }
      const added = addMessage(p); // false if the REST answer brought it first
      const c = st.conversations.get(p.conversation_id);
      if (added && st.current === p.conversation_id && els.log) {
        els.log.appendChild(bubble(p, c));
        els.log.scrollTop = els.log.scrollHeight;
        if (c) markRead(c);
      }
      renderInbox();
      break;
    }
    case 'chat_read': {
      const c = st.conversations.get(p.conversation_id);
      if (c && p.reader.kind === 'patient') {
        c.patient_read = Math.max(c.patient_read, p.seq);
        if (st.current === c.id) renderConversation();
      }
      break;
    }
    case 'typing':
      // Shown for a few seconds after the last indicator; never stored.
      if (st.current === p.conversation_id && els.typing) {
        els.typing.textContent = '对方正在输入…';
        clearTimeout(st.typingTimer);
        st.typingTimer = setTimeout(() => { if (els.typing) els.typing.textContent = ''; }, 4000);
      }
      break;
    case 'backlog': {
      const g = st.groups.get(p.group) || { presence: { group: p.group, agents: [] } };
      g.backlog = p;
      st.groups.set(p.group, g);
      renderBacklog();
      break;
    }
    case 'announcement':
      // 员工公告 to all staff, at its publishing time.
      if (els.news) showNews(els.news, p);
      break;
    case 'presence': {
      const g = st.groups.get(p.group);
      if (g) { g.presence = p; renderBacklog(); }
      break;
    }
    default:
      break;
  }
}

function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/chat/console/ws?presence=${st.presence}`;
  const ws = new WebSocket(url);
  st.socket = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: token() }));
  ws.onmessage = (e) => { try { onEvent(JSON.parse(e.data)); } catch { /* not ours */ } };
  ws.onclose = () => {
    st.connected = false;
    els.link.textContent = '已断开，正在重连…';
    els.link.className = 'link bad';
    // Reload what changed while away, then listen again.
    setTimeout(async () => { try { await loadDesk(); renderInbox(); renderBacklog(); } catch { /* retry */ } connect(); }, 2000);
  };
}

async function start() {
  if (!token()) return loginView(app, TITLE, start);
  try {
    await loadDesk();
  } catch (x) {
    if (x instanceof ApiError && (x.status === 403 || x.status === 404)) {
      return mount(app, h('header', { class: 'topbar' }, h('span', { class: 'title' }, TITLE)),
        h('div', { class: 'empty' }, '您还不是客服，请联系管理员设置客服组。'));
    }
    return loginView(app, TITLE, start, x instanceof ApiError && x.status !== 401 ? messageOf(x) : '');
  }
  layout();
  renderInbox();
  renderBacklog();
  connect();
  setInterval(renderBacklog, 30000); // waits grow by the minute
}

// The hospital's zone first: every time and "today" on the pages is the hospital's.
loadClock().then(start);
