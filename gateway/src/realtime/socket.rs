//! One WebSocket connection: authentication (the bearer token on the upgrade request, or an
//! `auth` frame first), the account's personal events in sequence, resume from a sequence
//! number, topic subscriptions with a snapshot on subscribe, heartbeats, and the limits.
//!
//! Exactly once, in order: the socket remembers the last sequence number it sent; a live event
//! at or below it is skipped, and one past the next (events from several nodes can arrive out of
//! order) makes the socket fill the gap from the log first.
//!
//! The policy for a slow reader, which must cost bounded memory and stay inside the log:
//! - personal events wait in a bounded outbox; when it is full the client is too slow;
//! - the client acknowledges what it processed (`ack`, or `last_seq` in `ping`); a client more
//!   than `max_unacked` events or `ack_timeout_secs` behind is too slow. This is what catches a
//!   client that stopped reading while the kernel buffers (ours and its own) still take bytes;
//! - a write that does not complete within `write_timeout_secs` means too slow as well.
//!
//! Too slow closes with 4008; the client reconnects and resumes, losing nothing (the bound on
//! unacknowledged events is below what the log keeps). Topic updates are coalesced: a socket
//! keeps only the newest update per topic and session until it can send it.
//!
//! The login: a logout (one login or all) closes the socket with 4001 at once, on every node
//! (`Hub::revoke`); the session is re-read when it would end, and an ended one closes the socket
//! (4001). A connected, heartbeating app keeps its session alive like REST use does.
//!
//! Consent (SET-2): a patient who has not accepted the latest privacy texts is refused as REST
//! refuses them (`consent_required`, close 4003), at connection and at every heartbeat.

use axum::extract::ws::{CloseFrame, Message};
use hospital_domain::AccountId;
use hospital_store::{LoginSession, Subject};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hub::SocketShared;
use super::line::{frame_out, Line};
use super::log::{Logged, Since};
use super::protocol::{
    close, codes, ClientMsg, Codec, Control, Frame, Outgoing, Pong, Reload, Resumed, Snapshot, Topics, Welcome,
};
use super::websocket::WebSocket;
use super::wire::WsError;
use crate::auth::tokens::hash_token;
use crate::config::RealtimeConfig;
use crate::state::AppState;

/// A tiny token bucket per connection (a governor limiter per socket would cost more memory).
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Wake-ups from the hub a socket takes before its other branches first (see `serve_until_end`).
const WAKES_IN_A_ROW: u32 = 8;

/// How a connection ends: the close code and reason to send, or None (the peer is gone).
type End = Option<(u16, String)>;

fn end(code: u16, reason: impl Into<String>) -> End {
    Some((code, reason.into()))
}

struct Conn<'a> {
    /// Shared with the hub, which writes topic updates on it while this task is idle.
    line: Arc<Line>,
    codec: Codec,
    /// Borrowed from the node's config: a copy in every socket's future would cost ~100 bytes.
    cfg: &'a RealtimeConfig,
}

impl Conn<'_> {
    /// Sends one frame, or says how the connection ends: a client that does not take it within
    /// the write timeout is too slow.
    async fn send<B: serde::Serialize>(&mut self, out: Outgoing<'_, B>, kind: &'static str) -> Result<(), End> {
        let msg = match self.codec.encode(&out) {
            Frame::Text(t) => Message::Text(t.into()),
            Frame::Binary(b) => Message::Binary(b.into()),
        };
        self.send_message(msg, kind).await
    }

    async fn control(&mut self, c: Control, id: Option<&str>) -> Result<(), End> {
        let kind = match &c {
            Control::Welcome(_) => "welcome",
            Control::Resumed(_) => "resumed",
            Control::Reload(_) => "reload",
            Control::Subscribed(_) => "subscribed",
            Control::Unsubscribed(_) => "unsubscribed",
            Control::Snapshot(_) => "snapshot",
            Control::Pong(_) => "pong",
            Control::Error(_) => "error",
        };
        self.send(Outgoing::new(&c).reply_to(id), kind).await
    }

    async fn send_message(&mut self, msg: Message, kind: &'static str) -> Result<(), End> {
        self.within_write_timeout(self.line.send(msg)).await?;
        frame_out(kind);
        Ok(())
    }

    /// A write that must complete within the write timeout: a client that does not take it in
    /// time is too slow; an error means the peer is gone.
    async fn within_write_timeout(&self, write: impl Future<Output = Result<(), WsError>>) -> Result<(), End> {
        match tokio::time::timeout(Duration::from_secs(self.cfg.write_timeout_secs), write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(None),
            Err(_) => Err(end(close::TOO_SLOW, "too slow: reconnect and resume")),
        }
    }

    /// The closing handshake: send our close frame, then read (and drop) what the client still
    /// sends until its close frame, for a moment. Dropping the connection with unread data would
    /// make the kernel reset it, and the client might never see our close code.
    async fn close(self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.to_string().into() };
        if tokio::time::timeout(Duration::from_secs(2), self.line.send(Message::Close(Some(frame)))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(m)) = self.line.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

fn to_frame(m: &Message) -> Option<Frame> {
    match m {
        Message::Text(t) => Some(Frame::Text(t.to_string())),
        Message::Binary(b) => Some(Frame::Binary(b.to_vec())),
        _ => None,
    }
}

/// The close a read error calls for (RFC 6455 section 7.4.1): a text frame that is not UTF-8 is
/// 1007, a frame over the limit 1009, anything else that breaks the protocol 1002; a transport
/// error means the peer is gone.
fn read_error_close(e: WsError) -> End {
    match e {
        WsError::Utf8 => end(close::INVALID_PAYLOAD, "text frames must be UTF-8"),
        WsError::TooBig(_) => end(close::TOO_BIG, "frame too large"),
        WsError::Io(_) | WsError::Closed => None,
        WsError::Protocol(p) => end(close::PROTOCOL_ERROR, format!("protocol error: {p}")),
    }
}

/// Runs one connection to its end. `token` is the bearer token sent with the upgrade, if any.
pub async fn run(ws: WebSocket, state: AppState, codec: Codec, token: Option<String>, resume_from: Option<u64>) {
    let cfg = &state.config.realtime;
    let mut conn = Conn { line: Line::new(ws), codec, cfg };
    metrics::gauge!("ws_open_sockets").increment(1.0);
    let (session, resume_from) = match Box::pin(authenticate(&mut conn, &state, token)).await {
        Ok((s, from_frame)) => (s, resume_from.or(from_frame)),
        Err(Some(why)) => {
            let _ = conn.control(Control::error(codes::UNAUTHORIZED, why.clone()), None).await;
            Box::pin(conn.close(close::UNAUTHORIZED, &why)).await;
            metrics::gauge!("ws_open_sockets").decrement(1.0);
            return;
        }
        Err(None) => {
            metrics::gauge!("ws_open_sockets").decrement(1.0);
            return;
        }
    };
    let Subject::Account { id: account } = session.subject else { unreachable!("authenticate checks") };
    // SET-2: a patient who has not accepted the latest privacy texts gets no more than REST gives.
    if let Some(why) = Box::pin(consent_refusal(&state, account)).await {
        let _ = conn.control(Control::error(codes::CONSENT_REQUIRED, why), None).await;
        conn.close(close::CONSENT_REQUIRED, codes::CONSENT_REQUIRED).await;
        metrics::gauge!("ws_open_sockets").decrement(1.0);
        return;
    }
    let shared = SocketShared::new(account, session.token_hash.clone(), cfg.outbox, codec, conn.line.clone());
    let rt = state.realtime();
    // Registered before the head is read: an event is either at or below the head (the resume
    // replays it) or reaches this socket live.
    rt.hub.register(&shared);
    let mut s = Session { conn, state: &state, shared: &shared, account, login: session };
    let ending = s.serve(resume_from).await;
    let Session { conn, .. } = s;
    let subscribed = {
        let mut line = conn.line.lock();
        // Ending: the hub writes on it no more.
        line.busy = true;
        std::mem::take(&mut line.subscribed)
    };
    rt.hub.unregister(&shared, subscribed);
    // A close asked for from outside (revocation, a full outbox) wins over what the loop saw.
    let (code, reason) = match (shared.closing(), ending) {
        (Some((code, reason)), _) => (code, reason.to_string()),
        (None, Some(e)) => e,
        (None, None) => {
            metrics::gauge!("ws_open_sockets").decrement(1.0);
            return;
        }
    };
    let why = match code {
        close::NORMAL => "normal",
        close::TOO_SLOW => "too_slow",
        close::UNAUTHORIZED => "unauthorized",
        close::IDLE => "idle",
        close::FLOOD => "flood",
        close::CONSENT_REQUIRED => "consent_required",
        close::PROTOCOL_ERROR | close::INVALID_PAYLOAD | close::TOO_BIG => "protocol",
        _ => "other",
    };
    metrics::counter!("ws_closes_total", "reason" => why).increment(1);
    if code == close::TOO_SLOW {
        metrics::counter!("ws_drops_total", "reason" => "too_slow").increment(1);
    }
    Box::pin(conn.close(code, &reason)).await;
    metrics::gauge!("ws_open_sockets").decrement(1.0);
}

/// The login session, and the `last_seq` an auth frame asked to resume from. Err(Some(why)):
/// refuse with 4001; Err(None): the peer went away.
async fn authenticate(
    conn: &mut Conn<'_>,
    state: &AppState,
    token: Option<String>,
) -> Result<(LoginSession, Option<u64>), Option<String>> {
    let mut last_seq = None;
    let token = match token {
        Some(t) => t,
        None => {
            // wx.connectSocket can send headers, but browsers cannot: then the first frame is auth.
            let wait = Duration::from_secs(conn.cfg.auth_timeout_secs);
            let first = tokio::time::timeout(wait, conn.line.recv())
                .await
                .map_err(|_| Some("no auth frame in time".to_string()))?;
            let msg = match first {
                Some(Ok(m)) => m,
                Some(Err(_)) | None => return Err(None),
            };
            let frame = to_frame(&msg).ok_or(Some("the first frame must be an auth frame".to_string()))?;
            let env = conn.codec.decode(&frame).map_err(|e| Some(e.to_string()))?;
            match ClientMsg::try_from(&env).map_err(|e| Some(e.to_string()))? {
                ClientMsg::Auth { token, last_seq: l } => {
                    last_seq = l;
                    token
                }
                _ => return Err(Some("the first frame must be an auth frame".into())),
            }
        }
    };
    let session = state
        .sessions
        .get(&hash_token(&token), chrono::Utc::now())
        .await
        .map_err(|_| Some("sessions are unavailable".to_string()))?
        .ok_or(Some("the token is invalid, expired or revoked".to_string()))?;
    match session.subject {
        Subject::Account { .. } => Ok((session, last_seq)),
        Subject::Staff { .. } => Err(Some("this socket is for patient accounts".into())),
    }
}

/// SET-2: the REST gate's refusal (`consent_required`) of a patient who has not accepted the
/// latest privacy texts, its message; None if they have (or nothing is published). A store that
/// cannot answer lets the socket be (the next heartbeat asks again).
async fn consent_refusal(state: &AppState, account: AccountId) -> Option<String> {
    match state.consent.check(state.stores.data.as_ref(), account).await {
        Ok(()) => None,
        Err(crate::error::ApiError::Denied { code, message }) if code == codes::CONSENT_REQUIRED => Some(message),
        Err(e) => {
            tracing::warn!(error = %e, "could not check consent for a socket");
            None
        }
    }
}

/// One authenticated connection's state.
struct Session<'a> {
    conn: Conn<'a>,
    state: &'a AppState,
    shared: &'a Arc<SocketShared>,
    account: AccountId,
    login: LoginSession,
}

/// What the socket has sent and had acknowledged of its account's events.
struct Progress {
    /// Every event up to this one was sent (or the client was told to reload past it).
    last_sent: u64,
    last_acked: u64,
    /// When the oldest unacknowledged event went out.
    unacked_since: Option<Instant>,
}

impl Progress {
    fn sent(&mut self, seq: u64) {
        self.last_sent = self.last_sent.max(seq);
        if self.last_sent > self.last_acked && self.unacked_since.is_none() {
            self.unacked_since = Some(Instant::now());
        }
    }

    fn ack(&mut self, seq: u64) {
        // An ack past what was sent is the client's mistake; it acknowledges what was sent.
        self.last_acked = self.last_acked.max(seq.min(self.last_sent));
        self.unacked_since = (self.last_acked < self.last_sent).then(Instant::now);
    }
}

impl Session<'_> {
    /// The connection's loop; returns how it ends.
    async fn serve(&mut self, resume_from: Option<u64>) -> End {
        match self.serve_until_end(resume_from).await {
            Ok(never) => match never {},
            Err(end) => end,
        }
    }

    /// The welcome (and the replay a resume asks for): once per connection, so boxed where it is
    /// called, keeping its store reads out of the future every idle socket holds.
    async fn open(&mut self, resume_from: Option<u64>) -> Result<Progress, End> {
        let cfg = &self.conn.cfg;
        let head = self.state.realtime().log.head(self.account).await.map_err(|_| ()).ok();
        let Some(head) = head else {
            let _ = self.conn.control(Control::error(codes::UNAVAILABLE, "events are unavailable"), None).await;
            return Err(end(close::GOING_AWAY, "events are unavailable: reconnect later"));
        };
        let welcome = Welcome {
            account_id: self.account,
            seq: head,
            heartbeat_secs: cfg.heartbeat_secs,
            idle_timeout_secs: cfg.idle_timeout_secs,
            max_frame_bytes: cfg.max_frame_bytes,
            max_unacked: cfg.max_unacked,
            ack_timeout_secs: cfg.ack_timeout_secs,
        };
        self.conn.control(Control::Welcome(welcome), None).await?;
        let mut p = Progress { last_sent: head, last_acked: head, unacked_since: None };
        if let Some(from) = resume_from {
            // Before the first live event: the replay comes in order, then live continues.
            p.last_acked = from.min(head);
            self.resume(&mut p, from, head, None).await?;
        }
        Ok(p)
    }

    async fn serve_until_end(&mut self, resume_from: Option<u64>) -> Result<std::convert::Infallible, End> {
        let cfg = self.conn.cfg;
        let mut p = Box::pin(self.open(resume_from)).await?;
        // Welcomed: from now on the hub may write topic updates itself.
        self.conn.line.lock().busy = false;
        let mut bucket = Bucket {
            tokens: cfg.burst as f64,
            rate: cfg.frames_per_second as f64,
            burst: cfg.burst as f64,
            at: Instant::now(),
        };
        let mut bad = 0u32;
        let mut last_heard = Instant::now();
        let mut last_touch = Instant::now();
        let mut heartbeat = tokio::time::interval(Duration::from_secs(cfg.heartbeat_secs));
        heartbeat.tick().await;
        // Made once and reset, not made per wake-up: one made in the `select!` below was a timer
        // entered in tokio's wheel and taken out again for every frame the socket sent.
        let session_check = tokio::time::sleep(until(self.login.ends_at()));
        tokio::pin!(session_check);
        let mut woken = 0u32;

        loop {
            // Biased, the hub's wake-up first: nearly every wake-up of an open socket is an
            // update to send, and polling the read side and both timers first (tokio's default
            // is a random order) was about a tenth of the server's own time in the fan-out's
            // profile (docs/benchmarks.md, 2026-12-01 22:00). The others are polled whenever it
            // is not ready; and after `WAKES_IN_A_ROW` wake-ups it goes last once, so a socket
            // whose topics change without pause still reads its client's frames and heartbeats.
            tokio::select! {
                biased;
                _ = self.shared.wake.notified(), if woken < WAKES_IN_A_ROW => {
                    woken += 1;
                    self.send_pending(&mut p).await?;
                }
                incoming = self.conn.line.recv() => {
                    let msg = match incoming {
                        Some(Ok(m)) => m,
                        Some(Err(e)) => return Err(read_error_close(e)),
                        None => return Err(None),
                    };
                    last_heard = Instant::now();
                    woken = 0;
                    let frame = match &msg {
                        // Answered with a close of our own (completing the closing handshake).
                        Message::Close(_) => return Err(end(close::NORMAL, "bye")),
                        Message::Ping(_) | Message::Pong(_) => continue,
                        m => to_frame(m).expect("data frame"),
                    };
                    if last_touch.elapsed() >= Duration::from_secs(self.login.idle_timeout_secs / 10) {
                        // An app that is open and heartbeating is in use: its session stays alive.
                        last_touch = Instant::now();
                        if let Ok(s) = Box::pin(self.state.sessions.touch(&self.login, chrono::Utc::now())).await {
                            self.login = s;
                        }
                    }
                    if !bucket.take() {
                        bad += 1;
                        metrics::counter!("ws_frames_in_total", "type" => "rate_limited").increment(1);
                        if bad > cfg.max_bad_frames {
                            return Err(end(close::FLOOD, "too many frames"));
                        }
                        let why = format!("at most {} frames per second", cfg.frames_per_second);
                        self.conn.control(Control::error(codes::RATE_LIMITED, why), None).await?;
                        continue;
                    }
                    // The envelope, then its payload: each refusal has its own code.
                    let parsed = self.conn.codec.decode(&frame).map_err(|e| (e, None)).and_then(|env| {
                        ClientMsg::try_from(&env).map(|m| (m, env.id.clone())).map_err(|e| (e, env.id))
                    });
                    let (msg, id) = match parsed {
                        Ok(v) => v,
                        Err((e, id)) => {
                            bad += 1;
                            metrics::counter!("ws_frames_in_total", "type" => "invalid").increment(1);
                            if bad > cfg.max_bad_frames {
                                return Err(end(close::FLOOD, "too many bad frames"));
                            }
                            self.conn.control(Control::error(e.code(), e.to_string()), id.as_deref()).await?;
                            continue;
                        }
                    };
                    // Answering the client: topic updates wait for this task meanwhile (`LineState::busy`).
                    self.conn.line.lock().busy = true;
                    Box::pin(self.handle(msg, id.as_deref(), &mut p)).await?;
                    self.conn.line.lock().busy = false;
                }
                _ = heartbeat.tick() => {
                    woken = 0;
                    if last_heard.elapsed() > Duration::from_secs(cfg.idle_timeout_secs) {
                        return Err(end(close::IDLE, "idle: send a ping at least every heartbeat"));
                    }
                    if p.unacked_since.is_some_and(|t| t.elapsed() > Duration::from_secs(cfg.ack_timeout_secs)) {
                        return Err(end(close::TOO_SLOW, "events unacknowledged for too long: reconnect and resume"));
                    }
                    // A version published while connected: the socket ends as REST refuses.
                    if let Some(why) = Box::pin(consent_refusal(self.state, self.account)).await {
                        self.conn.control(Control::error(codes::CONSENT_REQUIRED, why), None).await?;
                        return Err(end(close::CONSENT_REQUIRED, codes::CONSENT_REQUIRED));
                    }
                    // A protocol ping keeps NATs open and finds dead peers; clients need not answer it.
                    self.conn.send_message(Message::Ping(Vec::new().into()), "ping").await?;
                }
                _ = &mut session_check => {
                    // The session would have ended by now unless it was used meanwhile.
                    let next = match Box::pin(self.state.sessions.get(&self.login.token_hash, chrono::Utc::now())).await {
                        Ok(Some(s)) => {
                            let next = until(s.ends_at());
                            self.login = s;
                            next
                        }
                        Ok(None) => return Err(end(close::UNAUTHORIZED, "the session ended: log in again")),
                        // Sessions unreachable: look again shortly rather than drop the socket.
                        Err(_) => Duration::from_secs(5),
                    };
                    session_check.as_mut().reset(tokio::time::Instant::now() + next);
                }
                _ = self.shared.wake.notified(), if woken >= WAKES_IN_A_ROW => {
                    // Every other branch was polled and not ready: favour the wake-up again.
                    woken = 0;
                    self.send_pending(&mut p).await?;
                }
            }
        }
    }

    /// What the hub left for this socket: the personal events first (in sequence), then the
    /// topics' latest values; or the close asked for from outside.
    async fn send_pending(&mut self, p: &mut Progress) -> Result<(), End> {
        if let Some((code, reason)) = self.shared.closing() {
            return Err(end(code, reason));
        }
        while let Some(event) = self.shared.next_personal() {
            self.live(p, event).await?;
            if p.last_sent.saturating_sub(p.last_acked) > self.conn.cfg.max_unacked {
                return Err(end(close::TOO_SLOW, "too many unacknowledged events: reconnect and resume"));
            }
        }
        // The topics' updates as the hub writes them; what the kernel did not take at once (the
        // rest of one the hub began, or of one written here) within the write timeout.
        loop {
            self.conn.within_write_timeout(self.conn.line.flush()).await?;
            let done = self.conn.line.lock().write_topics(&self.shared.topics, self.conn.codec).map_err(|_| None)?;
            if done {
                return Ok(());
            }
        }
    }

    async fn handle(&mut self, msg: ClientMsg, id: Option<&str>, p: &mut Progress) -> Result<(), End> {
        let cfg = self.conn.cfg;
        let rt = self.state.realtime();
        let kind = match &msg {
            ClientMsg::Auth { .. } => "auth",
            ClientMsg::Resume { .. } => "resume",
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::Unsubscribe { .. } => "unsubscribe",
            ClientMsg::Ping { .. } => "ping",
            ClientMsg::Ack { .. } => "ack",
        };
        metrics::counter!("ws_frames_in_total", "type" => kind).increment(1);
        match msg {
            ClientMsg::Ping { last_seq } => {
                if let Some(seq) = last_seq {
                    p.ack(seq);
                }
                self.conn.control(Control::Pong(Pong { seq: p.last_sent }), id).await
            }
            ClientMsg::Ack { seq } => {
                p.ack(seq);
                Ok(())
            }
            ClientMsg::Auth { .. } => {
                self.conn
                    .control(Control::error(codes::ALREADY_AUTHENTICATED, "this socket is authenticated"), id)
                    .await
            }
            ClientMsg::Resume { last_seq } => {
                let to = p.last_sent;
                self.resume(p, last_seq, to, id).await
            }
            ClientMsg::Subscribe { topics } => {
                let (new, had) = {
                    let line = self.conn.line.lock();
                    let new: Vec<String> = topics.iter().filter(|t| !line.subscribed.contains(*t)).cloned().collect();
                    (new, line.subscribed.len())
                };
                if had + new.len() > cfg.max_topics {
                    let why = format!("at most {} topics per socket", cfg.max_topics);
                    return self.conn.control(Control::error(codes::TOO_MANY_TOPICS, why), id).await;
                }
                for t in &new {
                    rt.hub.subscribe(t, self.shared);
                    self.conn.line.lock().subscribed.insert(t.clone());
                }
                self.conn.control(Control::Subscribed(Topics { topics: topics.clone() }), id).await?;
                // The current state of each new topic, so the client need not wait for a change.
                for t in new {
                    let taken_ms = super::log::now_ms();
                    match super::snapshot::of(self.state, &t).await {
                        Ok(updates) => {
                            self.shared.topics.drop_older(&t, taken_ms);
                            self.conn.control(Control::Snapshot(Snapshot { topic: t, updates }), id).await?;
                        }
                        Err(e) => {
                            tracing::debug!(topic = %t, error = %e, "no snapshot");
                            let why = format!("{t}: the current state is unavailable; updates will follow");
                            self.conn.control(Control::error(codes::UNAVAILABLE, why), id).await?;
                        }
                    }
                }
                Ok(())
            }
            ClientMsg::Unsubscribe { topics } => {
                for t in &topics {
                    rt.hub.unsubscribe(t, self.shared.id);
                    self.conn.line.lock().subscribed.remove(t);
                }
                self.conn.control(Control::Unsubscribed(Topics { topics }), id).await
            }
        }
    }

    /// Sends a live event exactly once and in order: skipped if already sent, and preceded by
    /// the events in between (from the log) if some did not come live yet.
    async fn live(&mut self, p: &mut Progress, event: Arc<Logged>) -> Result<(), End> {
        if event.seq <= p.last_sent {
            return Ok(());
        }
        if event.seq > p.last_sent + 1 {
            let from = p.last_sent + 1;
            Box::pin(self.replay(p, from, event.seq - 1, None)).await?;
        }
        self.send_event(p, &event).await?;
        let lag = super::log::now_ms().saturating_sub(event.at_ms) as f64 / 1000.0;
        hospital_actors::observe!("ws_fanout_latency_seconds", lag);
        Ok(())
    }

    async fn send_event(&mut self, p: &mut Progress, e: &Logged) -> Result<(), End> {
        // An image message gets its download link now, as it goes out (links are never logged).
        let body = crate::image_links::personal(&self.state.files, &e.event);
        self.conn.send(Outgoing::new(&body).seq(e.seq), e.event.kind()).await?;
        p.sent(e.seq);
        Ok(())
    }

    /// Sends the logged events `from..=to`; if any is no longer kept, `reload` instead (the
    /// client fetches the state over REST and continues from `to`). Returns how many it sent,
    /// None for a reload.
    async fn replay(&mut self, p: &mut Progress, from: u64, to: u64, id: Option<&str>) -> Result<Option<usize>, End> {
        let since = match self.state.realtime().log.range(self.account, from, to).await {
            Ok(s) => s,
            Err(_) => return Err(end(close::GOING_AWAY, "events are unavailable: reconnect and resume")),
        };
        match since {
            Since::TooOld => {
                metrics::counter!("ws_resumes_total", "outcome" => "reload").increment(1);
                let reload = Reload { reason: "missed events are no longer kept; reload over REST".into(), seq: to };
                self.conn.control(Control::Reload(reload), id).await?;
                p.sent(to);
                Ok(None)
            }
            Since::Events(events) => {
                let n = events.len();
                for e in events {
                    self.send_event(p, &e).await?;
                }
                Ok(Some(n))
            }
        }
    }

    /// Replays every event after `from` up to `to` (the last one this socket has sent, or the
    /// head at welcome), then `resumed`; or `reload`.
    async fn resume(&mut self, p: &mut Progress, from: u64, to: u64, id: Option<&str>) -> Result<(), End> {
        if from > to {
            // The client holds a number this account never reached here: the log was lost.
            metrics::counter!("ws_resumes_total", "outcome" => "reload").increment(1);
            let reload = Reload { reason: "your last_seq is ahead of the log; reload over REST".into(), seq: to };
            return self.conn.control(Control::Reload(reload), id).await;
        }
        if let Some(replayed) = self.replay(p, from + 1, to, id).await? {
            metrics::counter!("ws_resumes_total", "outcome" => "replayed").increment(1);
            let seq = p.last_sent;
            self.conn.control(Control::Resumed(Resumed { from, replayed, seq }), id).await?;
        }
        Ok(())
    }
}

/// Time from now until `at` (zero if past).
fn until(at: chrono::DateTime<chrono::Utc>) -> Duration {
    (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<F, Fut>(_: F) -> usize
    where
        F: FnOnce(WebSocket, AppState, Codec, Option<String>, Option<u64>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every open socket holds one `run` future (inside the task the upgrade spawns), so its
    /// size is memory per socket: the work done once per connection or per client frame is
    /// boxed where it is awaited, and only the wait stays inline (2,328 bytes since the connection
    /// moved into the `Line` it shares with the hub, 2,752 in a debug build with our own
    /// `WebSocket` inline, 3,312 with axum's; axum's whole upgrade task was ~5.7 KiB per
    /// socket in a release build before, docs/benchmarks.md). A new inline await of a store or
    /// Redis call would push it back up, and this says so.
    #[test]
    fn the_future_each_socket_holds_stays_small() {
        let size = future_size(run);
        let (ws, shared) = (std::mem::size_of::<WebSocket>(), std::mem::size_of::<SocketShared>());
        println!("socket::run future: {size} bytes; WebSocket {ws}; SocketShared {shared}");
        assert!(size <= 3072, "socket::run's future is {size} bytes; box the new await (see this module's comments)");
        assert!(shared <= 512, "SocketShared is {shared} bytes");
    }
}
