//! One WebSocket connection: authentication (the bearer token on the upgrade request, or an
//! `auth` frame first), the account's live events in sequence, resume from a sequence number,
//! topic subscriptions, heartbeats and the limits. The policy for a slow reader:
//! - personal events are never dropped: they wait in a bounded outbox; when it is full the client
//!   is too slow, and the connection is closed with 4008 so it reconnects and resumes losing
//!   nothing;
//! - topic updates are coalesced: a socket keeps only the newest update per topic until it can
//!   send it, so a slow client gets the current state, not every step, and costs bounded memory.
//!
//! Writes have a timeout: a client that stops reading cannot hold a task or memory for long.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use hospital_actors::{LiveEvent, LiveSocket, PatientMsg};
use hospital_domain::AccountId;
use hospital_store::Subject;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

use super::protocol::{close, ClientMsg, Codec, Envelope, Frame};
use super::RealtimeConfig;
use crate::auth::tokens::hash_token;
use crate::state::AppState;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The part of a connection that others hand events to.
pub struct SocketShared {
    pub id: u64,
    pub account: AccountId,
    personal: mpsc::Sender<Arc<LiveEvent>>,
    topics: Mutex<HashMap<String, Arc<Prepared>>>,
    wake: Notify,
    too_slow: AtomicBool,
}

impl std::fmt::Debug for SocketShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("id", &self.id).field("account", &self.account).finish()
    }
}

impl LiveSocket for SocketShared {
    fn id(&self) -> u64 {
        self.id
    }

    fn deliver(&self, event: &Arc<LiveEvent>) -> bool {
        match self.personal.try_send(event.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.too_slow.store(true, Ordering::Relaxed);
                self.wake.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

impl SocketShared {
    /// Keeps the newest update of `topic` until the writer sends it.
    pub fn offer_topic(&self, topic: &str, event: Arc<Prepared>) {
        let replaced = self.topics.lock().expect("topic slot").insert(topic.to_string(), event).is_some();
        if replaced {
            metrics::counter!("ws_drops_total", "reason" => "coalesced").increment(1);
        }
        self.wake.notify_one();
    }
}

/// A topic update on its way to many sockets: encoded at most once per encoding and then shared
/// (the frame bytes are reference-counted), so a popular doctor's thousands of subscribers cost one
/// serialisation, not one each.
pub struct Prepared {
    pub event: Arc<LiveEvent>,
    json: std::sync::OnceLock<axum::extract::ws::Utf8Bytes>,
    msgpack: std::sync::OnceLock<axum::body::Bytes>,
}

impl Prepared {
    pub fn new(event: Arc<LiveEvent>) -> Arc<Self> {
        Arc::new(Self { event, json: Default::default(), msgpack: Default::default() })
    }

    fn message(&self, codec: Codec) -> Message {
        let env = || event_envelope(&self.event);
        match codec {
            Codec::Json => Message::Text(
                self.json.get_or_init(|| serde_json::to_string(&env()).expect("envelopes serialise").into()).clone(),
            ),
            Codec::MsgPack => Message::Binary(
                self.msgpack
                    .get_or_init(|| rmp_serde::to_vec_named(&env()).expect("envelopes serialise").into())
                    .clone(),
            ),
        }
    }
}

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

struct Conn {
    ws: WebSocket,
    codec: Codec,
    cfg: RealtimeConfig,
}

/// Why a send failed.
enum SendFail {
    /// The client did not take the frame within the write timeout: too slow.
    Slow,
    /// The connection is gone.
    Gone,
}

impl SendFail {
    fn close(self) -> Option<(u16, String)> {
        match self {
            SendFail::Slow => Some((close::TOO_SLOW, "too slow: reconnect and resume".into())),
            SendFail::Gone => None,
        }
    }
}

/// Sends, or ends the connection loop with the right close.
macro_rules! send_or_end {
    ($conn:expr, $env:expr) => {
        if let Err(fail) = $conn.send($env).await {
            return fail.close();
        }
    };
}

/// The same, inside a function that returns `Result<_, close>`.
macro_rules! send_or_err {
    ($conn:expr, $env:expr) => {
        if let Err(fail) = $conn.send($env).await {
            return Err(fail.close());
        }
    };
}

impl Conn {
    /// Sends one envelope, or fails if the client does not take it in time.
    async fn send(&mut self, e: &Envelope) -> Result<(), SendFail> {
        let msg = match self.codec.encode(e) {
            Frame::Text(t) => Message::Text(t.into()),
            Frame::Binary(b) => Message::Binary(b.into()),
        };
        self.send_message(msg, &e.kind).await
    }

    /// Sends an already encoded frame (a shared topic update).
    async fn send_prepared(&mut self, p: &Prepared) -> Result<(), SendFail> {
        let msg = p.message(self.codec);
        self.send_message(msg, &p.event.kind).await
    }

    async fn send_message(&mut self, msg: Message, kind: &str) -> Result<(), SendFail> {
        let timeout = Duration::from_secs(self.cfg.write_timeout_secs);
        match tokio::time::timeout(timeout, self.ws.send(msg)).await {
            Ok(Ok(())) => {
                metrics::counter!("ws_frames_out_total", "type" => kind.to_string()).increment(1);
                Ok(())
            }
            Ok(Err(_)) => Err(SendFail::Gone),
            Err(_) => Err(SendFail::Slow),
        }
    }

    /// The closing handshake: send our close frame, then read (and drop) what the client still
    /// sends until its close frame, for a moment. Dropping the connection with unread data would
    /// make the kernel reset it, and the client might never see our close code.
    async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.to_string().into() };
        if tokio::time::timeout(Duration::from_secs(2), self.ws.send(Message::Close(Some(frame)))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(m)) = self.ws.recv().await {
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

fn event_envelope(e: &LiveEvent) -> Envelope {
    let mut env = Envelope::new(&e.kind, e.payload.clone());
    env.seq = e.seq;
    if let Some(t) = &e.topic {
        // A topic update says which topic it is.
        env.payload = serde_json::json!({"topic": t, "data": e.payload});
    }
    env
}

/// Runs one connection to its end. `token` is the bearer token sent with the upgrade, if any.
pub async fn run(ws: WebSocket, state: AppState, codec: Codec, token: Option<String>, resume_from: Option<u64>) {
    let cfg = state.config.realtime.clone();
    let mut conn = Conn { ws, codec, cfg: cfg.clone() };
    metrics::gauge!("ws_open_sockets").increment(1.0);
    let (account, resume_from) = match authenticate(&mut conn, &state, token).await {
        Ok((a, from_frame)) => (a, resume_from.or(from_frame)),
        Err(why) => {
            let _ = conn.send(&Envelope::error("unauthorized", why.clone(), None)).await;
            conn.close(close::UNAUTHORIZED, &why).await;
            metrics::gauge!("ws_open_sockets").decrement(1.0);
            return;
        }
    };
    let (tx, rx) = mpsc::channel(cfg.outbox);
    let shared = Arc::new(SocketShared {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        account,
        personal: tx,
        topics: Mutex::new(HashMap::new()),
        wake: Notify::new(),
        too_slow: AtomicBool::new(false),
    });
    let (code, reason) =
        serve(&mut conn, &state, &shared, rx, resume_from).await.unwrap_or((close::GOING_AWAY, "bye".into()));
    // Clean up: the actor forgets the socket, the hub its subscriptions (they hold a Weak).
    if let Some(actor) = state.actors.running_patient(account) {
        let _ = actor.cast(PatientMsg::SocketClosed { id: shared.id });
    }
    let subscribed: Vec<String> = shared.topics.lock().expect("topic slot").keys().cloned().collect();
    for t in subscribed {
        state.realtime().hub.unsubscribe(&t, shared.id);
    }
    if code == close::TOO_SLOW {
        metrics::counter!("ws_drops_total", "reason" => "too_slow").increment(1);
    }
    conn.close(code, &reason).await;
    metrics::gauge!("ws_open_sockets").decrement(1.0);
}

/// The account, and the `last_seq` an auth frame asked to resume from.
async fn authenticate(
    conn: &mut Conn,
    state: &AppState,
    token: Option<String>,
) -> Result<(AccountId, Option<u64>), String> {
    let mut last_seq = None;
    let token = match token {
        Some(t) => t,
        None => {
            // wx.connectSocket can send headers, but browsers cannot: then the first frame is auth.
            let wait = Duration::from_secs(conn.cfg.auth_timeout_secs);
            let first =
                tokio::time::timeout(wait, conn.ws.recv()).await.map_err(|_| "no auth frame in time".to_string())?;
            let msg = first.and_then(Result::ok).ok_or("closed before authenticating")?;
            let frame = to_frame(&msg).ok_or("the first frame must be an auth frame")?;
            let env = conn.codec.decode(&frame).map_err(|e| e.to_string())?;
            match ClientMsg::try_from(&env).map_err(|e| e.to_string())? {
                ClientMsg::Auth { token, last_seq: l } => {
                    last_seq = l;
                    token
                }
                _ => return Err("the first frame must be an auth frame".into()),
            }
        }
    };
    let session = state
        .sessions
        .get(&hash_token(&token), chrono::Utc::now())
        .await
        .map_err(|_| "sessions are unavailable".to_string())?
        .ok_or("the token is invalid, expired or revoked")?;
    match session.subject {
        Subject::Account { id } => Ok((id, last_seq)),
        Subject::Staff { .. } => Err("this socket is for patient accounts".into()),
    }
}

/// The connection's loop; returns the close code and reason.
async fn serve(
    conn: &mut Conn,
    state: &AppState,
    shared: &Arc<SocketShared>,
    mut personal: mpsc::Receiver<Arc<LiveEvent>>,
    resume_from: Option<u64>,
) -> Option<(u16, String)> {
    let rt = state.realtime();
    let account = shared.account;
    // Register first, then read the head: an event is either at or before the head (the client
    // asks for it by resuming) or reaches this socket through the actor (see docs/realtime.md).
    let actor = state.actors.patient(account).await.ok()?;
    actor.cast(PatientMsg::SocketOpened { socket: shared.clone() }).ok()?;
    let welcome_head = rt.log.head(account).await.ok()?;
    let mut last_sent = welcome_head;
    let mut live_started = false;
    let welcome = serde_json::json!({
        "account_id": account,
        "seq": last_sent,
        "heartbeat_secs": conn.cfg.heartbeat_secs,
        "idle_timeout_secs": conn.cfg.idle_timeout_secs,
        "max_frame_bytes": conn.cfg.max_frame_bytes,
    });
    send_or_end!(conn, &Envelope::new("welcome", welcome));
    if let Some(from) = resume_from {
        // Before the first live event: the replay comes in order, then live continues.
        last_sent =
            match resume(conn, state, account, from, welcome_head, Sent { last: last_sent, live: live_started }, None)
                .await
            {
                Ok(v) => v,
                Err(close) => return close,
            };
    }

    let mut bucket = Bucket {
        tokens: conn.cfg.burst as f64,
        rate: conn.cfg.frames_per_second as f64,
        burst: conn.cfg.burst as f64,
        at: Instant::now(),
    };
    let mut bad = 0u32;
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval(Duration::from_secs(conn.cfg.heartbeat_secs));
    heartbeat.tick().await;

    loop {
        tokio::select! {
            incoming = conn.ws.recv() => {
                let msg = match incoming {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => {
                        let too_big = e.to_string().to_lowercase().contains("too long") || e.to_string().to_lowercase().contains("too big") || e.to_string().contains("Space limit");
                        return Some(if too_big { (close::TOO_BIG, "frame too large".into()) } else { (close::GOING_AWAY, "read error".into()) });
                    }
                    None => return None,
                };
                last_heard = Instant::now();
                let frame = match &msg {
                    Message::Close(_) => return None,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    m => to_frame(m).expect("data frame"),
                };
                if !bucket.take() {
                    bad += 1;
                    metrics::counter!("ws_frames_in_total", "type" => "rate_limited").increment(1);
                    if bad > conn.cfg.max_bad_frames {
                        return Some((close::FLOOD, "too many frames".into()));
                    }
                    send_or_end!(conn, &Envelope::error("rate_limited", format!("at most {} frames per second", conn.cfg.frames_per_second), None));
                    continue;
                }
                let env = match conn.codec.decode(&frame) {
                    Ok(e) => e,
                    Err(e) => {
                        bad += 1;
                        metrics::counter!("ws_frames_in_total", "type" => "invalid").increment(1);
                        if bad > conn.cfg.max_bad_frames {
                            return Some((close::FLOOD, "too many bad frames".into()));
                        }
                        send_or_end!(conn, &Envelope::error(e.code(), e.to_string(), None));
                        continue;
                    }
                };
                let id = env.id.clone();
                match ClientMsg::try_from(&env) {
                    Err(e) => {
                        bad += 1;
                        metrics::counter!("ws_frames_in_total", "type" => "invalid").increment(1);
                        if bad > conn.cfg.max_bad_frames {
                            return Some((close::FLOOD, "too many bad frames".into()));
                        }
                        send_or_end!(conn, &Envelope::error(e.code(), e.to_string(), id));
                    }
                    Ok(m) => {
                        metrics::counter!("ws_frames_in_total", "type" => env.kind.clone()).increment(1);
                        match m {
                            ClientMsg::Ping => send_or_end!(conn, &Envelope::new("pong", serde_json::json!({"seq": last_sent})).reply_to(id)),
                            ClientMsg::Auth { .. } => send_or_end!(conn, &Envelope::error("already_authenticated", "this socket is authenticated", id)),
                            ClientMsg::Resume { last_seq } => {
                                last_sent = match resume(conn, state, account, last_seq, welcome_head, Sent { last: last_sent, live: live_started }, id).await {
                                    Ok(v) => v,
                                    Err(close) => return close,
                                };
                            }
                            ClientMsg::Subscribe { topics } => {
                                if subscribed.len() + topics.len() > conn.cfg.max_topics {
                                    send_or_end!(conn, &Envelope::error("too_many_topics", format!("at most {} topics per socket", conn.cfg.max_topics), id));
                                    continue;
                                }
                                for t in &topics {
                                    rt.hub.subscribe(t, shared);
                                    subscribed.insert(t.clone());
                                }
                                send_or_end!(conn, &Envelope::new("subscribed", serde_json::json!({"topics": topics})).reply_to(id));
                            }
                            ClientMsg::Unsubscribe { topics } => {
                                for t in &topics {
                                    rt.hub.unsubscribe(t, shared.id);
                                    subscribed.remove(t);
                                    shared.topics.lock().expect("topic slot").remove(t);
                                }
                                send_or_end!(conn, &Envelope::new("unsubscribed", serde_json::json!({"topics": topics})).reply_to(id));
                            }
                        }
                    }
                }
            }
            Some(event) = personal.recv() => {
                let seq = event.seq.unwrap_or(0);
                // Already sent by a resume: exactly once.
                if seq <= last_sent {
                    continue;
                }
                send_or_end!(conn, &event_envelope(&event));
                last_sent = seq;
                live_started = true;
                let lag = bus_now_ms().saturating_sub(event.at_ms) as f64 / 1000.0;
                metrics::histogram!("ws_fanout_latency_seconds").record(lag);
            }
            _ = shared.wake.notified() => {
                if shared.too_slow.load(Ordering::Relaxed) {
                    return Some((close::TOO_SLOW, "too slow: reconnect and resume".into()));
                }
                let pending: Vec<(String, Arc<Prepared>)> = shared.topics.lock().expect("topic slot").drain().collect();
                for (topic, prepared) in pending {
                    if !subscribed.contains(&topic) {
                        continue;
                    }
                    if let Err(fail) = conn.send_prepared(&prepared).await {
                        return fail.close();
                    }
                    let lag = bus_now_ms().saturating_sub(prepared.event.at_ms) as f64 / 1000.0;
                    metrics::histogram!("ws_fanout_latency_seconds").record(lag);
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > Duration::from_secs(conn.cfg.idle_timeout_secs) {
                    return Some((close::IDLE, "idle: send a ping at least every heartbeat".into()));
                }
                // A protocol ping keeps NATs open and finds dead peers; clients need not answer it.
                let _ = tokio::time::timeout(Duration::from_secs(conn.cfg.write_timeout_secs), conn.ws.send(Message::Ping(Vec::new().into()))).await;
                // If our actor restarted it no longer knows this socket: register again and
                // replay what may have been missed meanwhile.
                if let Some(actor) = state.actors.running_patient(account) {
                    let known = ractor::call_t!(actor, |reply| PatientMsg::HasSocket { id: shared.id, reply }, 2000).unwrap_or(true);
                    if !known {
                        let _ = actor.cast(PatientMsg::SocketOpened { socket: shared.clone() });
                        last_sent = match resume(conn, state, account, last_sent, welcome_head, Sent { last: last_sent, live: live_started }, None).await {
                            Ok(v) => v,
                            Err(close) => return close,
                        };
                    }
                } else if let Ok(actor) = state.actors.patient(account).await {
                    let _ = actor.cast(PatientMsg::SocketOpened { socket: shared.clone() });
                    last_sent = match resume(conn, state, account, last_sent, welcome_head, Sent { last: last_sent, live: live_started }, None).await {
                            Ok(v) => v,
                            Err(close) => return close,
                        };
                }
            }
        }
    }
}

fn bus_now_ms() -> u64 {
    super::bus::now_ms()
}

/// Replays the events after `from` that this socket has not sent: those up to the head at welcome
/// (before live delivery began) and those after the last one sent live. Returns the new last sent
/// sequence number.
async fn resume(
    conn: &mut Conn,
    state: &AppState,
    account: AccountId,
    from: u64,
    welcome_head: u64,
    sent: Sent,
    id: Option<String>,
) -> Result<u64, Option<(u16, String)>> {
    // Events up to the head at welcome may still be on their way into the log (numbered, not yet
    // stored): give them a moment, so the replay covers everything this socket will not get live.
    let mut attempt = 0;
    let (since, head) = loop {
        let Ok((since, upto)) = state.realtime().log.since(account, from).await else { return Err(None) };
        if upto >= welcome_head || attempt >= 25 || matches!(since, super::log::Since::TooOld) {
            break (since, upto);
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    match since {
        super::log::Since::TooOld => {
            metrics::counter!("ws_resumes_total", "outcome" => "reload").increment(1);
            let body = serde_json::json!({"reason": "missed events are no longer kept; reload over REST", "seq": head});
            send_or_err!(conn, &Envelope::new("reload", body).reply_to(id));
            Ok(head.max(sent.last))
        }
        super::log::Since::Events(events) => {
            metrics::counter!("ws_resumes_total", "outcome" => "replayed").increment(1);
            // Before any live event, the replay is simply everything after `from`, and the
            // sequence continues from the last one replayed (later ones come live, in order).
            // After live events, only what live delivery did not send: up to the welcome head,
            // and past the last one sent.
            let mut last = if sent.live { sent.last } else { from };
            let mut replayed = 0usize;
            for e in events {
                let seq = e.seq.unwrap_or(0);
                if !sent.live || seq <= welcome_head || seq > sent.last {
                    send_or_err!(conn, &event_envelope(&e));
                    last = last.max(seq);
                    replayed += 1;
                }
            }
            let body = serde_json::json!({"from": from, "replayed": replayed, "seq": last});
            send_or_err!(conn, &Envelope::new("resumed", body).reply_to(id));
            Ok(last)
        }
    }
}

/// What a socket has sent of its account's events: the last sequence number, and whether any
/// came live (rather than from a replay).
#[derive(Clone, Copy)]
struct Sent {
    last: u64,
    live: bool,
}
