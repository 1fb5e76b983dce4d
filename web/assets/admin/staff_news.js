// 员工公告 (ADM-4): announcements to staff as a banner under the back office's top bar. On load
// the newest published one not yet dismissed in this tab is shown; new ones arrive live on the
// staff socket (`/api/v1/staff/ws`, `{"type":"announcement"}` frames) at their publishing time.
// The socket reconnects after a drop while the tab is signed in, and re-reads the list then.
import { api, token } from '/static/common/api.js';
import { h, mount } from '/static/common/dom.js';
import { when } from '/admin/ui.js';

const DISMISSED = 'hospital.staff.dismissed-announcements';
let socket = null;

function dismissed() {
  try { return JSON.parse(sessionStorage.getItem(DISMISSED) || '[]'); } catch { return []; }
}

function show(bar, a) {
  if (!a || dismissed().includes(a.id)) return mount(bar);
  mount(bar, h('strong', {}, `员工公告：${a.title}`), h('span', { class: 'text' }, a.body),
    h('span', { class: 'muted' }, when(a.published_at || a.publish_at)),
    h('button', { class: 'secondary', id: 'dismiss-news', onclick: () => {
      sessionStorage.setItem(DISMISSED, JSON.stringify([...dismissed(), a.id].slice(-50)));
      mount(bar);
    } }, '知道了'));
}

async function latest(bar) {
  try {
    const list = await api('GET', '/api/v1/staff/announcements');
    show(bar, list.find((a) => !dismissed().includes(a.id)));
  } catch { /* the banner is a courtesy: the page works without it */ }
}

/** Fills `bar` and keeps it current; a second call (after a new login) replaces the first. */
export function staffNews(bar) {
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  latest(bar);
  const connect = () => {
    if (!token() || !bar.isConnected) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/staff/ws`);
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', token: token() }));
    ws.onmessage = (e) => {
      let f = null;
      try { f = JSON.parse(e.data); } catch { return; }
      if (f.type === 'announcement') show(bar, f.payload);
      if (f.type === 'welcome') bar.dataset.live = 'yes';
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      delete bar.dataset.live;
      setTimeout(() => { if (socket === ws) { latest(bar); connect(); } }, 5000);
    };
  };
  connect();
}
