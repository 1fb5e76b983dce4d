//! This node's sockets and what reaches them: the index of open sockets by account (personal
//! events, and closing a revoked login's sockets) and by topic (public updates, coalesced). The
//! hub is the only owner of the index: an event goes bus -> hub -> socket with no actor in
//! between, and an open socket keeps no actor in memory.

use hospital_domain::live::TopicEvent;
use hospital_domain::AccountId;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use tokio::sync::Notify;

use super::line::Line;
use super::log::Logged;
use super::protocol::{close, Codec};
use super::topics::{new_sink_id, Prepared, TopicSink, TopicSlots};

use crate::auth::cache::LoginCache;

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
    /// The connection, which the hub writes topic updates on while its task is idle (`line`).
    pub(super) line: Arc<Line>,
    codec: Codec,
    pub(super) wake: Notify,
    closing: OnceLock<(u16, &'static str)>,
}

impl std::fmt::Debug for SocketShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("id", &self.id).field("account", &self.account).finish()
    }
}

impl SocketShared {
    /// A socket of `account` on `line`, speaking `codec`; its personal outbox holds `outbox`
    /// events.
    pub fn new(account: AccountId, token_hash: String, outbox: usize, codec: Codec, line: Arc<Line>) -> Arc<Self> {
        Arc::new(SocketShared {
            id: new_sink_id(),
            account,
            token_hash,
            personal: Mutex::new(VecDeque::new()),
            outbox,
            topics: TopicSlots::default(),
            line,
            codec,
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
    }

    fn send_offered(&self) {
        // Written here when the connection is idle: waking the socket's task for it cost more
        // than the write (docs/benchmarks.md, the fan-out of 2026-12-02). Otherwise, or when the
        // kernel takes only part, the task does it.
        if self.closing.get().is_none() {
            if let Some(mut line) = self.line.try_lock() {
                if line.idle() && matches!(line.write_topics(&self.topics, self.codec), Ok(true)) {
                    return;
                }
            }
        }
        self.wake.notify_one();
    }
}

/// A topic's subscribers here, by `sink_id`; held weakly, so a closed socket's entry only waits
/// for its `unsubscribe`.
type Subscribers = HashMap<u64, Weak<dyn TopicSink>>;

/// Subscribers one task writes an update to: more are split over tasks, so that a topic with
/// tens of thousands of subscribers here is written by every core, and no task holds its worker
/// for more than a few milliseconds.
const SINKS_PER_TASK: usize = 512;

/// Has every subscriber in `subs` send what it was offered: here, or over several tasks.
fn send_all_offered(subs: Vec<Arc<dyn TopicSink>>) {
    let runtime = match tokio::runtime::Handle::try_current() {
        Ok(runtime) if subs.len() > SINKS_PER_TASK => runtime,
        _ => {
            subs.iter().for_each(|s| s.send_offered());
            return;
        }
    };
    let mut subs = subs.into_iter();
    loop {
        let part: Vec<_> = subs.by_ref().take(SINKS_PER_TASK).collect();
        if part.is_empty() {
            break;
        }
        runtime.spawn(async move { part.iter().for_each(|s| s.send_offered()) });
    }
}

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
        for s in &subs {
            s.offer_topic(prepared.clone());
        }
        send_all_offered(subs);
    }

    /// Offers a transient event (the agent typing) to every socket of `account` here, subscribed
    /// to its topic or not; never logged.
    pub fn deliver_direct(&self, account: AccountId, event: TopicEvent, at_ms: u64) {
        let prepared = Prepared::new(event, at_ms);
        let map = self.accounts.read().expect("socket index");
        for s in map.get(&account).into_iter().flatten() {
            s.offer_topic(prepared.clone());
            s.send_offered();
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
    use crate::realtime::topics::tests::update;
    use hospital_domain::{DoctorId, SessionId};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A subscriber that counts what it is offered and asked to send.
    #[derive(Default)]
    struct Counting {
        id: u64,
        offered: AtomicUsize,
        /// Offers seen when asked to send (all of them, if offering comes first).
        sent_after: AtomicUsize,
        sends: AtomicUsize,
    }

    impl TopicSink for Counting {
        fn sink_id(&self) -> u64 {
            self.id
        }
        fn offer_topic(&self, _: Arc<Prepared>) {
            self.offered.fetch_add(1, Ordering::SeqCst);
        }
        fn send_offered(&self) {
            self.sent_after.store(self.offered.load(Ordering::SeqCst), Ordering::SeqCst);
            self.sends.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// An update to more subscribers than one task writes is split over tasks: each subscriber
    /// is offered it and then asked to send exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_to_thousands_is_sent_to_each_once() {
        let hub = Hub::new();
        let d = DoctorId::new();
        let sinks: Vec<Arc<Counting>> = (0..SINKS_PER_TASK * 2 + 100)
            .map(|_| Arc::new(Counting { id: new_sink_id(), ..Default::default() }))
            .collect();
        for s in &sinks {
            hub.subscribe(&format!("doctor:{d}"), s);
        }
        hub.deliver_topic(update(d, SessionId::new(), 3, 1).event.clone(), 1);
        for _ in 0..500 {
            if sinks.iter().all(|s| s.sends.load(Ordering::SeqCst) > 0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        for s in &sinks {
            assert_eq!(s.offered.load(Ordering::SeqCst), 1);
            assert_eq!(s.sends.load(Ordering::SeqCst), 1, "asked to send once");
            assert_eq!(s.sent_after.load(Ordering::SeqCst), 1, "offered before asked to send");
        }
    }
}
