// The conventional chat relay `hospital-load chat` compares the hospital server with (the
// ceiling): a Node.js server on the `ws` package that relays each message through Redis pub/sub
// (`ioredis`) to whichever relay holds the recipient's socket, and stores nothing. Several relays
// may share one Redis: every relay subscribes to the one channel and delivers what is for its
// own sockets, as a multi-node chat server built the usual way does.
//
// - POST /tokens  [{"token": ..., "id": ...}, ...]  registers the load generator's logins; `id` is
//   who the socket is (a patient or an agent).
// - WebSocket on /ws: bearer token in the Authorization header, then `welcome`; `ping` answers
//   `pong`.
// - POST /messages {"to": id, "conversation_id": ..., "from": "patient"|"agent", "text": ...}
//   (bearer token): published on the channel; answered 200 once Redis took it (no storage: an
//   acknowledged message is only as safe as the recipient's open socket). The recipient gets
//   `{"type":"chat_message","payload":{"conversation_id","sender":{"kind"},"body":{"kind":"text","text"}}}`,
//   the shape of the hospital's chat frames, so the generator reads both the same way.
//
// Environment: PORT (0: a free port), REDIS_URL (redis://127.0.0.1:6379 by default).
// Prints "chat-relay listening on http://127.0.0.1:PORT" once subscribed.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');
const Redis = require('ioredis');

const CHANNEL = 'chat-relay';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const pub = new Redis(redisUrl);
const sub = new Redis(redisUrl);
const tokens = new Map(); // token -> id
const sockets = new Map(); // id -> Set<ws>

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function bearer(req) {
  const auth = req.headers['authorization'] || '';
  return auth.startsWith('Bearer ') ? auth.slice(7).trim() : '';
}

function answer(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/tokens') {
      for (const { token, id } of JSON.parse(await readBody(req))) tokens.set(token, id);
      return answer(res, 200, { tokens: tokens.size });
    }
    if (req.method === 'POST' && req.url === '/messages') {
      const from = tokens.get(bearer(req));
      if (from === undefined) return answer(res, 401, { error: { code: 'unauthenticated', message: 'unknown token' } });
      const m = JSON.parse(await readBody(req));
      const frame = JSON.stringify({
        type: 'chat_message',
        payload: {
          conversation_id: m.conversation_id,
          sender: { kind: m.from },
          body: { kind: 'text', text: m.text },
        },
      });
      // The recipient's id, then the frame: relays split at the first newline.
      await pub.publish(CHANNEL, `${m.to}\n${frame}`);
      return answer(res, 200, { ok: true });
    }
    if (req.method === 'GET' && req.url === '/healthz') return answer(res, 200, { status: 'ok' });
    res.writeHead(404);
    res.end();
  } catch (e) {
    answer(res, 400, { error: { code: 'bad_request', message: String(e) } });
  }
});

sub.on('message', (_channel, message) => {
  const nl = message.indexOf('\n');
  const local = sockets.get(message.slice(0, nl));
  if (!local) return;
  const frame = message.slice(nl + 1);
  for (const ws of local) if (ws.readyState === 1) ws.send(frame);
});

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024, perMessageDeflate: false });

server.on('upgrade', (req, socket, head) => {
  const id = tokens.get(bearer(req));
  if (!req.url.startsWith('/ws') || id === undefined) {
    socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!sockets.has(id)) sockets.set(id, new Set());
    sockets.get(id).add(ws);
    ws.send(JSON.stringify({ type: 'welcome', payload: { id } }));
    ws.on('message', (raw) => {
      let m;
      try {
        m = JSON.parse(raw.toString());
      } catch (e) {
        return;
      }
      if (m.type === 'ping') ws.send(JSON.stringify({ type: 'pong', id: m.id, payload: {} }));
    });
    ws.on('close', () => {
      const s = sockets.get(id);
      if (s) {
        s.delete(ws);
        if (s.size === 0) sockets.delete(id);
      }
    });
  });
});

sub.subscribe(CHANNEL).then(() => {
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    console.log(`chat-relay listening on http://127.0.0.1:${server.address().port}`);
  });
});
process.on('SIGTERM', () => process.exit(0));
