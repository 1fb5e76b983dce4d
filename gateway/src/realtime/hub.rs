//! This node's sockets and what reaches them: the index of open sockets by account (personal
//! events, and closing a revoked login's sockets) and by topic (public updates, coalesced). The
//! hub is the only owner of the index: an event goes bus -> hub -> socket with no actor in
//! between, and an open socket keeps no actor in memory.

use hospital_domain::live::TopicEvent;
use hospital_domain::{AccountId, SessionId};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use tokio::sync::Notify;

use super::log::Logged;
use super::protocol::{close, Codec, Outgoing};
use axum::extract::ws::Message;

use crate::auth::cache::LoginCache;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A login revoked on some node: its sockets close (4001) on every node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocation {
    pub account: AccountId,
    /// One login (logout); None: every login of the account (logout everywhere, a disabled
    /// account).
    pub token_hash: Option<String>,
    /// Set by the node that revokes: every node that applied it answers `(node, id)` so that
    /// the logout can wait until no node's login cache still holds the session.
    #[serde(default)]
    pub ack: Option<(uuid::Uuid, u64)>,
}

/// What replaces what in a socket's topic slots: one value per topic and session.
type SlotKey = (String, Option<SessionId>);

/// A number for a new topic subscriber, unique on this node (the topic index's key).
pub fn new_sink_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What topic updates are offered to: a patient's socket, a back-office page's staff socket.
pub trait TopicSink: Send + Sync {
    /// Its number in the topic index (`new_sink_id`).
    fn sink_id(&self) -> u64;
    /// Keeps `event` as its topic's newest until the subscriber's writer sends it.
    fn offer_topic(&self, event: Arc<Prepared>);
}

/// The newest update of each topic and session a subscriber has not sent yet (coalesced: a
/// slow subscriber gets the latest value, never a backlog). A list, not a map: a socket's writer
/// takes what is pending at once, so it holds one update or a few, and an update reaching
/// thousands of sockets then costs each one a pointer pushed, not a key copied and hashed into
/// a fresh table (docs/benchmarks.md, the fan-out's profile of 2026-12-01 22:00).
#[derive(Default)]
pub struct TopicSlots(Mutex<Vec<Arc<Prepared>>>);

impl TopicSlots {
    /// Keeps `event`, replacing an older one of its topic and session.
    pub fn offer(&self, event: Arc<Prepared>) {
        let mut slots = self.0.lock().expect("topic slots");
        match slots.iter_mut().find(|p| p.key == event.key) {
            Some(older) => {
                *older = event;
                drop(slots);
                metrics::counter!("ws_drops_total", "reason" => "coalesced").increment(1);
            }
            None => slots.push(event),
        }
    }

    /// The pending updates, oldest first.
    pub fn take(&self) -> Vec<Arc<Prepared>> {
        // Taken whole: an idle subscriber keeps no list's capacity.
        let mut v = std::mem::take(&mut *self.0.lock().expect("topic slots"));
        v.sort_by_key(|p| p.at_ms);
        v
    }

    /// Forgets pending updates of `topic` older than `before_ms` (a snapshot was just sent).
    pub(super) fn drop_older(&self, topic: &str, before_ms: u64) {
        self.0.lock().expect("topic slots").retain(|p| p.key.0 != topic || p.at_ms >= before_ms);
    }
}

/// The part of a connection that the hub hands events to.
pub struct SocketShared {
    pub id: u64,
    pub account: AccountId,
    /// The login this socket authenticated with (SHA-256 of the token).
    pub token_hash: String,
    /// Personal events waiting for the writer, at most `outbox` (a queue, not a channel: an
    /// empty one costs no allocation, where a tokio channel costs ~0.8 KiB per socket).
    personal: Mutex<VecDeque<Arc<Logged>>>,
    outbox: usize,
    pub(super) topics: TopicSlots,
    pub(super) wake: Notify,
    closing: OnceLock<(u16, &'static str)>,
}

impl std::fmt::Debug for SocketShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("id", &self.id).field("account", &self.account).finish()
    }
}

impl SocketShared {
    /// A socket of `account`; its personal outbox holds `outbox` events.
    pub fn new(account: AccountId, token_hash: String, outbox: usize) -> Arc<Self> {
        Arc::new(SocketShared {
            id: new_sink_id(),
            account,
            token_hash,
            personal: Mutex::new(VecDeque::new()),
            outbox,
            topics: TopicSlots::default(),
            wake: Notify::new(),
            closing: OnceLock::new(),
        })
    }

    /// Queues a personal event. A full outbox means the client is too slow: it is closed and
    /// resumes from the log.
    fn deliver(&self, event: &Arc<Logged>) {
        let mut q = self.personal.lock().expect("outbox");
        if q.len() >= self.outbox {
            drop(q);
            self.close(close::TOO_SLOW, "too slow: reconnect and resume");
            return;
        }
        q.push_back(event.clone());
        drop(q);
        self.wake.notify_one();
    }

    /// The next personal event waiting, if any; the queue's memory is let go once it is empty.
    pub(super) fn next_personal(&self) -> Option<Arc<Logged>> {
        let mut q = self.personal.lock().expect("outbox");
        let next = q.pop_front();
        if q.is_empty() && q.capacity() > 0 {
            *q = VecDeque::new();
        }
        next
    }

    /// Asks the connection to close with `code` (the first reason wins).
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.closing.set((code, reason)).is_ok() {
            self.wake.notify_one();
        }
    }

    pub(super) fn closing(&self) -> Option<(u16, &'static str)> {
        self.closing.get().copied()
    }
}

impl TopicSink for SocketShared {
    fn sink_id(&self) -> u64 {
        self.id
    }

    fn offer_topic(&self, event: Arc<Prepared>) {
        self.topics.offer(event);
        self.wake.notify_one();
    }
}

/// A topic update on its way to many sockets: encoded at most once per encoding and then shared
/// (the frame bytes are reference-counted), so a popular doctor's thousands of subscribers cost
/// one serialisation, not one each.
pub struct Prepared {
    pub event: TopicEvent,
    pub at_ms: u64,
    /// What a newer update replaces (`TopicEvent::coalesce_key`), worked out once.
    key: SlotKey,
    json: OnceLock<axum::extract::ws::Utf8Bytes>,
    msgpack: OnceLock<axum::body::Bytes>,
}

impl Prepared {
    pub fn new(event: TopicEvent, at_ms: u64) -> Arc<Self> {
        let key = event.coalesce_key();
        Arc::new(Self { event, at_ms, key, json: OnceLock::new(), msgpack: OnceLock::new() })
    }

    pub(crate) fn message(&self, codec: Codec) -> Message {
        let frame = || codec.encode(&Outgoing::new(&self.event));
        match codec {
            Codec::Json => Message::Text(
                self.json
                    .get_or_init(|| match frame() {
                        super::protocol::Frame::Text(t) => t.into(),
                        super::protocol::Frame::Binary(_) => unreachable!("JSON is text"),
                    })
                    .clone(),
            ),
            Codec::MsgPack => Message::Binary(
                self.msgpack
                    .get_or_init(|| match frame() {
                        super::protocol::Frame::Binary(b) => b.into(),
                        super::protocol::Frame::Text(_) => unreachable!("MessagePack is binary"),
                    })
                    .clone(),
            ),
        }
    }
}

/// A topic's subscribers here, by `sink_id`; held weakly, so a closed socket's entry only waits
/// for its `unsubscribe`.
type Subscribers = HashMap<u64, Weak<dyn TopicSink>>;

/// This node's agents' consoles as the hub sees them (`consoles::ConsoleHub`): where console
/// events published by other nodes are delivered.
pub trait LocalConsoles: Send + Sync {
    fn deliver(&self, event: &hospital_domain::chat::console::StaffEvent);
}

#[derive(Default)]
pub struct Hub {
    accounts: RwLock<HashMap<AccountId, Vec<Arc<SocketShared>>>>,
    topics: RwLock<HashMap<String, Subscribers>>,
    invalidations: Invalidations,
    /// This node's cache of patient sessions: revocations reach it here, with the sockets.
    pub logins: LoginCache,
    /// This node's agents' consoles: console events published by other nodes go there
    /// (`crate::consoles::ConsoleHub::join`).
    pub consoles: std::sync::OnceLock<Weak<dyn LocalConsoles>>,
}

/// What a node keeps in memory and another node changed (`"roles"`, `"catalog"`): every node
/// reloads it when the name arrives (the back office's caches; see `Bus::invalidate`).
pub struct Invalidations(tokio::sync::broadcast::Sender<String>);

impl Default for Invalidations {
    fn default() -> Self {
        Self(tokio::sync::broadcast::channel(64).0)
    }
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// A hub whose login cache keeps sessions `ttl` (zero: no caching).
    pub fn with_login_cache(ttl: std::time::Duration) -> Self {
        Self { logins: LoginCache::new(ttl), ..Self::default() }
    }

    /// A socket of its account opened here.
    pub fn register(&self, socket: &Arc<SocketShared>) {
        self.accounts.write().expect("socket index").entry(socket.account).or_default().push(socket.clone());
    }

    /// A socket closed: it leaves the account's list and its topics.
    pub fn unregister(&self, socket: &SocketShared, topics: impl IntoIterator<Item = String>) {
        let mut map = self.accounts.write().expect("socket index");
        if let Some(list) = map.get_mut(&socket.account) {
            list.retain(|s| s.id != socket.id);
            if list.is_empty() {
                map.remove(&socket.account);
            }
        }
        drop(map);
        for t in topics {
            self.unsubscribe(&t, socket.id);
        }
    }

    /// Open sockets here (for tests and the gauge's sanity).
    pub fn sockets_of(&self, account: AccountId) -> usize {
        self.accounts.read().expect("socket index").get(&account).map_or(0, Vec::len)
    }

    /// Hands a logged personal event to each of the account's sockets here.
    pub fn deliver_personal(&self, account: AccountId, event: Arc<Logged>) {
        let map = self.accounts.read().expect("socket index");
        if let Some(list) = map.get(&account) {
            for s in list {
                s.deliver(&event);
            }
        }
    }

    /// Offers a topic update to every socket subscribed to it here (latest value wins there).
    pub fn deliver_topic(&self, event: TopicEvent, at_ms: u64) {
        let subs: Vec<Arc<dyn TopicSink>> = {
            let map = self.topics.read().expect("topic index");
            map.get(event.topic()).map(|s| s.values().filter_map(Weak::upgrade).collect()).unwrap_or_default()
        };
        if subs.is_empty() {
            return;
        }
        let prepared = Prepared::new(event, at_ms);
        for s in subs {
            s.offer_topic(prepared.clone());
        }
    }

    /// Offers a transient event (the agent typing) to every socket of `account` here, subscribed
    /// to its topic or not; never logged.
    pub fn deliver_direct(&self, account: AccountId, event: TopicEvent, at_ms: u64) {
        let prepared = Prepared::new(event, at_ms);
        let map = self.accounts.read().expect("socket index");
        for s in map.get(&account).into_iter().flatten() {
            s.offer_topic(prepared.clone());
        }
    }

    /// Closes the sockets of a revoked login (or of every login of the account).
    pub fn revoke(&self, r: &Revocation) {
        self.logins.revoke(r.account, r.token_hash.as_deref());
        let map = self.accounts.read().expect("socket index");
        for s in map.get(&r.account).into_iter().flatten() {
            if r.token_hash.as_deref().is_none_or(|t| t == s.token_hash) {
                s.close(close::UNAUTHORIZED, "logged out: log in again");
            }
        }
    }

    /// Tells this node's listeners that `what` changed somewhere.
    pub fn invalidated(&self, what: &str) {
        let _ = self.invalidations.0.send(what.to_string());
    }

    /// Listens for changes of cached state (`invalidated`).
    pub fn invalidations(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.invalidations.0.subscribe()
    }

    /// `sink` gets `topic`'s updates from now on (until `unsubscribe` or its last `Arc` goes).
    pub fn subscribe<S: TopicSink + 'static>(&self, topic: &str, sink: &Arc<S>) {
        let weak: Weak<S> = Arc::downgrade(sink);
        let weak: Weak<dyn TopicSink> = weak;
        self.topics.write().expect("topic index").entry(topic.to_string()).or_default().insert(sink.sink_id(), weak);
    }

    pub fn unsubscribe(&self, topic: &str, socket: u64) {
        let mut map = self.topics.write().expect("topic index");
        if let Some(subs) = map.get_mut(topic) {
            subs.remove(&socket);
            if subs.is_empty() {
                map.remove(topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::live::{Availability, TopicEvent};
    use hospital_domain::schedule::{Period, SessionStatus};
    use hospital_domain::{DepartmentId, DoctorId};

    fn update(doctor: DoctorId, session: SessionId, left: u32, at_ms: u64) -> Arc<Prepared> {
        let data = Availability {
            doctor_id: doctor,
            department_id: DepartmentId::new(),
            session_id: session,
            date: chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(),
            period: Period::Morning,
            status: SessionStatus::Open,
            remaining: vec![left],
            open_from: 0,
            waiting: 0,
        };
        Prepared::new(TopicEvent::availability(format!("doctor:{doctor}"), data), at_ms)
    }

    fn left(p: &Prepared) -> u32 {
        match &p.event {
            TopicEvent::Availability(u) => u.data.remaining[0],
            _ => unreachable!(),
        }
    }

    /// A subscriber's pending updates: the newest per topic and session, oldest first; a
    /// snapshot's time drops the older ones of its topic.
    #[test]
    fn topic_slots_keep_the_newest_per_topic_and_session() {
        let slots = TopicSlots::default();
        let (d, e) = (DoctorId::new(), DoctorId::new());
        let (s1, s2) = (SessionId::new(), SessionId::new());
        slots.offer(update(d, s1, 9, 10));
        slots.offer(update(e, s1, 5, 11));
        slots.offer(update(d, s2, 7, 12));
        slots.offer(update(d, s1, 8, 13));
        let got: Vec<(u64, u32)> = slots.take().iter().map(|p| (p.at_ms, left(p))).collect();
        assert_eq!(got, [(11, 5), (12, 7), (13, 8)], "d/s1's 9 replaced by its 8; oldest first");
        assert!(slots.take().is_empty(), "taken whole");

        slots.offer(update(d, s1, 6, 20));
        slots.offer(update(d, s2, 4, 30));
        slots.offer(update(e, s2, 3, 21));
        slots.drop_older(&format!("doctor:{d}"), 25);
        let got: Vec<(u64, u32)> = slots.take().iter().map(|p| (p.at_ms, left(p))).collect();
        assert_eq!(got, [(21, 3), (30, 4)], "only d's update older than the snapshot went");
    }
}
