// The back office's staff socket (`/api/v1/staff/ws`): 员工公告 (ADM-4) in the banner
// (common/news.js; `{"type":"announcement"}` frames at their publishing time), and the public
// topics a page watches (排班 watches its doctor: `{"type":"availability"}` frames as patients
// book). The socket reconnects after a drop while the tab is signed in, re-reads the
// announcements and watches again.
import { token } from '/static/common/api.js';
import { latestNews as latest, showNews as show } from '/static/common/news.js';

let socket = null;
/** The socket the server welcomed (signed in): watch frames go to it. */
let welcomed = null;
/** Welcomes so far: one after the first is a reconnection, after which a page reads again. */
let welcomes = 0;
/**
 * What the current page watches: its topics, what to do with an update, when the socket drops
 * and after it is back (updates may have been missed meanwhile), the pending answer.
 */
let watching = { topics: [], on: {}, answered: null };

/** The server's `watching` answer is for the topics asked last (it sends them sorted). */
function answers(topics) {
  return JSON.stringify([...topics].sort()) === JSON.stringify([...watching.topics].sort());
}

function sendWatch(ws) {
  if (ws && ws === welcomed && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: 'watch', topics: watching.topics }));
    return true;
  }
  return false;
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
      if (f.type === 'welcome') {
        bar.dataset.live = 'yes';
        welcomed = ws;
        welcomes += 1;
        if (watching.topics.length && sendWatch(ws) && welcomes > 1 && watching.on.resync) watching.on.resync();
      }
      if (f.type === 'watching' && watching.answered && answers(f.payload.topics)) {
        watching.answered(true);
        watching.answered = null;
      }
      if (f.type === 'availability' && watching.on.update) watching.on.update(f.payload);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      delete bar.dataset.live;
      if (welcomed === ws && watching.on.down) watching.on.down();
      welcomed = null;
      setTimeout(() => { if (socket === ws) { latest(bar); connect(); } }, 5000);
    };
  };
  connect();
}

/**
 * Watches `topics` (replacing what the last page watched). `on.update` gets each update's
 * payload (`{topic, data}`), `on.down` is called when the socket drops and `on.resync` once it
 * is back. Resolves true once the server watches them, false if the socket is not up (the page
 * then shows what it read, without live updates). Read the state after this resolves: an
 * update that lands in between then reaches the page.
 */
export function watch(topics, on = {}) {
  if (watching.answered) watching.answered(false);
  watching = { topics, on, answered: null };
  return new Promise((resolve) => {
    watching.answered = resolve;
    if (!sendWatch(socket)) { watching.answered = null; resolve(false); return; }
    setTimeout(() => { if (watching.answered === resolve) { watching.answered = null; resolve(false); } }, 3000);
  });
}
