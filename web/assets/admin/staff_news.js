// 员工公告 (ADM-4) in the back office: the banner (common/news.js) kept current by the staff
// socket (`/api/v1/staff/ws`, `{"type":"announcement"}` frames at their publishing time). The
// socket reconnects after a drop while the tab is signed in, and re-reads the list then.
import { token } from '/static/common/api.js';
import { latestNews as latest, showNews as show } from '/static/common/news.js';

let socket = null;

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
