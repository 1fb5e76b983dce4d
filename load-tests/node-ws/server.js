// The conventional design the fan-out scenario compares with: a Node.js server on the `ws`
// package holding the same sockets and broadcasting the same availability updates.
//
// - WebSocket on /ws: bearer token in the Authorization header (accepted if registered through
//   POST /tokens, as the hospital accepts tokens of live sessions), then `welcome`; `subscribe`
//   answers `subscribed`; `ping` answers `pong`; the same JSON envelope as docs/realtime.md.
// - POST /tokens  [token, ...]            registers the tokens the load generator logged in with.
// - POST /publish {"topic": ..., "data": ...}  serialises one availability frame and sends it to
//   every socket subscribed to the topic, then answers 200 (the driver's "change").
//
// Prints "node-ws listening on http://127.0.0.1:PORT" first (PORT=0: a free port).
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const tokens = new Set();
const topics = new Map(); // topic -> Set<ws>

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/tokens') {
      for (const t of JSON.parse(await readBody(req))) tokens.add(t);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ tokens: tokens.size }));
      return;
    }
    if (req.method === 'POST' && req.url === '/publish') {
      const { topic, data } = JSON.parse(await readBody(req));
      const frame = JSON.stringify({ type: 'availability', payload: { topic, data } });
      const subs = topics.get(topic);
      let sent = 0;
      if (subs) {
        for (const ws of subs) {
          if (ws.readyState === 1) {
            ws.send(frame);
            sent++;
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sent }));
      return;
    }
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    res.writeHead(404);
    res.end();
  } catch (e) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'bad_request', message: String(e) } }));
  }
});

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 16 * 1024,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('hospital.json.v1') ? 'hospital.json.v1' : false),
});

server.on('upgrade', (req, socket, head) => {
  const auth = req.headers['authorization'] || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
  if (!req.url.startsWith('/ws') || !tokens.has(token)) {
    socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.subs = [];
    ws.lastHeard = Date.now();
    ws.send(JSON.stringify({ type: 'welcome', payload: { seq: 0, heartbeat_secs: 25, idle_timeout_secs: 75, max_frame_bytes: 16384 } }));
    ws.on('message', (raw) => {
      ws.lastHeard = Date.now();
      let m;
      try {
        m = JSON.parse(raw.toString());
      } catch (e) {
        ws.send(JSON.stringify({ type: 'error', payload: { code: 'malformed_frame', message: 'not JSON' } }));
        return;
      }
      if (m.type === 'subscribe' && m.payload && Array.isArray(m.payload.topics)) {
        for (const t of m.payload.topics) {
          if (!topics.has(t)) topics.set(t, new Set());
          topics.get(t).add(ws);
          ws.subs.push(t);
        }
        ws.send(JSON.stringify({ type: 'subscribed', id: m.id, payload: { topics: m.payload.topics } }));
      } else if (m.type === 'ping') {
        ws.send(JSON.stringify({ type: 'pong', id: m.id, payload: { seq: 0 } }));
      } else {
        ws.send(JSON.stringify({ type: 'error', id: m.id, payload: { code: 'unknown_type', message: 'unknown type' } }));
      }
    });
    ws.on('close', () => {
      for (const t of ws.subs) {
        const s = topics.get(t);
        if (s) {
          s.delete(ws);
          if (s.size === 0) topics.delete(t);
        }
      }
    });
  });
});

// Heartbeats, as the hospital does: a ping frame every 25 s, close 4002 after 75 s of silence.
setInterval(() => {
  const now = Date.now();
  for (const ws of wss.clients) {
    if (now - ws.lastHeard > 75000) ws.close(4002, 'idle');
    else ws.ping();
  }
}, 25000).unref();

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  console.log(`node-ws listening on http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
