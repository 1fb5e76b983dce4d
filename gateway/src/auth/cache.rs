//! This node's cache of patient login sessions, so that a request's session check (the `Caller`
//! extractor) does not read the session store on the hot path.
//!
//! Why a cached "yes" is never wrong:
//! - An entry lives `ttl` (a minute by default) and is used only while the session it holds is
//!   live by its own clocks (absolute end, idle end). Its `last_seen_at` may be older than the
//!   stored one (another node touched it): that makes the cached idle end earlier, never later,
//!   and an entry that looks ended is not believed: the store is asked.
//! - A logout or logout-everywhere deletes the session in the store, then revokes it through the
//!   real-time fan-out (`realtime::bus`): every node, this one first, drops the matching entries
//!   (`revoke`) when the revocation reaches it, and the logout waits until every node said it
//!   did (at most `ack_wait`). So when the logout answers, no node accepts the token any more.
//! - The lifetime is not what bounds a missed revocation: a node believes its cache only while it
//!   is subscribed to the fan-out. With several nodes the cache starts `suspend`ed; the
//!   subscriber `resume`s it once subscribed and suspends it (every entry dropped, nothing cached)
//!   the moment the subscription ends or stops answering a PING, which it sends every second and
//!   waits for at most two: a node cut off from Redis, which would miss revocations, has emptied
//!   its cache before a logout's `ack_wait` runs out.
//! - A request that read the session from the store just before the delete must not put it back
//!   after the revocation passed: every revocation (and every suspend and resume) bumps a
//!   generation, and an entry is inserted only if none came between the start of its read and
//!   the insert (`insert`).
//!
//! What is left: a node that is subscribed but so overloaded that its subscriber has not reached
//! the revocation when the logout stops waiting (`auth_revocation_ack_timeouts_total` counts
//! these) accepts the token until it does.
//!
//! Only patient sessions are cached: revocations travel per account; staff sessions (few, and
//! not on the booking path) are read from the store every time.

use hospital_domain::AccountId;
use hospital_store::{LoginSession, Subject};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Entries kept at most; when full, the stale ones go, and if none is stale nothing is added.
const CAPACITY: usize = 200_000;

/// The longest a logout waits for every node to say it dropped the session (or the cache's
/// lifetime, if shorter). Longer than a cut-off node takes to notice and empty its cache (the
/// subscriber's PING every second, answered within two).
pub const ACK_WAIT: Duration = Duration::from_secs(5);

struct Entry {
    session: Arc<LoginSession>,
    account: AccountId,
    cached_at: Instant,
}

/// Keyed by token hash, hashed with foldhash: the keys are a digest's hex digits, and SipHash
/// over 64 bytes was a measurable part of a request's login check (docs/benchmarks.md, stop 51).
#[derive(Default)]
struct Map {
    entries: HashMap<String, Entry, foldhash::fast::RandomState>,
    /// Bumped by every revocation, suspend and resume, under the same lock as the entries.
    generation: u64,
    /// Not subscribed to the fan-out: nothing is cached or believed (see the module comment).
    suspended: bool,
    /// A full cache is swept for stale entries no earlier than this: when the oldest entry left
    /// by the last sweep turns stale. Without it, every insert into a cache full of fresh
    /// entries (a burst of more than `capacity` logins within the lifetime) scanned them all
    /// under the write lock, and found nothing to drop.
    next_sweep: Option<Instant>,
    /// Sweeps done (tests).
    sweeps: u64,
}

/// The cache (see the module comment), with the acknowledgements a logout waits for.
pub struct LoginCache {
    ttl: Duration,
    capacity: usize,
    map: RwLock<Map>,
    /// Revocations this node sent and is waiting to hear back from every node: id -> how many
    /// nodes acknowledged it so far.
    acks: Mutex<HashMap<u64, watch::Sender<usize>>>,
    next_ack: AtomicU64,
    /// This node's name in acknowledgements (each node numbers its own revocations).
    node: uuid::Uuid,
}

impl Default for LoginCache {
    /// No caching (a hub built without configuration).
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl LoginCache {
    /// A cache whose entries live `ttl`; zero turns caching off.
    pub fn new(ttl: Duration) -> Self {
        Self::with_capacity(ttl, CAPACITY)
    }

    /// A cache of at most `capacity` entries (tests fill a small one).
    fn with_capacity(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            map: RwLock::default(),
            acks: Mutex::default(),
            next_ack: AtomicU64::new(1),
            node: uuid::Uuid::new_v4(),
        }
    }

    /// This node's name in acknowledgements.
    pub fn node(&self) -> uuid::Uuid {
        self.node
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The live session for this token hash if it is cached and fresh.
    pub fn get(&self, token_hash: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Arc<LoginSession>> {
        let map = self.map.read().expect("login cache");
        if map.suspended {
            return None;
        }
        let e = map.entries.get(token_hash)?;
        (e.cached_at.elapsed() < self.ttl && e.session.is_live(now)).then(|| e.session.clone())
    }

    /// Read before reading a session from the store; pass it to `insert`.
    pub fn generation(&self) -> u64 {
        self.map.read().expect("login cache").generation
    }

    /// Caches a patient session read from the store, unless a revocation arrived since
    /// `generation` was read (it may have been for this very session).
    pub fn insert(&self, session: &Arc<LoginSession>, generation: u64) {
        let Subject::Account { id } = session.subject else { return };
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().expect("login cache");
        if map.generation != generation || map.suspended {
            return;
        }
        if map.entries.len() >= self.capacity && !self.sweep(&mut map) {
            return;
        }
        let entry = Entry { session: session.clone(), account: id, cached_at: Instant::now() };
        map.entries.insert(session.token_hash.clone(), entry);
    }

    /// Drops the stale entries of a full cache, unless none can be stale yet; true if there is
    /// room now.
    fn sweep(&self, map: &mut Map) -> bool {
        let now = Instant::now();
        if map.next_sweep.is_some_and(|at| now < at) {
            return false;
        }
        let ttl = self.ttl;
        let mut oldest: Option<Instant> = None;
        map.entries.retain(|_, e| {
            let keep = now.duration_since(e.cached_at) < ttl;
            if keep && oldest.is_none_or(|o| e.cached_at < o) {
                oldest = Some(e.cached_at);
            }
            keep
        });
        map.sweeps += 1;
        map.next_sweep = oldest.map(|o| o + ttl);
        map.entries.len() < self.capacity
    }

    /// Drops one login (`token_hash`) or every login of the account.
    pub fn revoke(&self, account: AccountId, token_hash: Option<&str>) {
        let mut map = self.map.write().expect("login cache");
        map.generation += 1;
        match token_hash {
            Some(t) => {
                map.entries.remove(t);
            }
            None => map.entries.retain(|_, e| e.account != account),
        }
    }

    /// This node cannot hear revocations (its fan-out subscription is not there yet, or was
    /// lost): drops every entry and caches nothing until `resume`.
    pub fn suspend(&self) {
        let mut map = self.map.write().expect("login cache");
        if !map.suspended {
            metrics::counter!("auth_session_cache_suspensions_total").increment(1);
        }
        map.generation += 1;
        map.suspended = true;
        map.entries.clear();
    }

    /// Subscribed again: revocations reach this node from now on. A read that began before
    /// (while a revocation may have been missed) is not cached: the generation moves.
    pub fn resume(&self) {
        let mut map = self.map.write().expect("login cache");
        map.generation += 1;
        map.suspended = false;
    }

    /// How many entries are cached (tests, metrics).
    pub fn len(&self) -> usize {
        self.map.read().expect("login cache").entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a revocation about to be sent to every node; `wait_acks` waits for them.
    pub fn expect_acks(&self) -> (u64, watch::Receiver<usize>) {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(0);
        self.acks.lock().expect("acks").insert(id, tx);
        (id, rx)
    }

    /// A node says it applied revocation `id` of node `sender` (each node numbers its own).
    pub fn acked(&self, sender: uuid::Uuid, id: u64) {
        if sender != self.node {
            return;
        }
        if let Some(tx) = self.acks.lock().expect("acks").get(&id) {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// Waits until `nodes` acknowledged revocation `id`, or `ACK_WAIT` passed (or the lifetime,
    /// if shorter: then every entry cached before the revocation has expired everywhere). True
    /// if all answered.
    pub async fn wait_acks(&self, id: u64, mut rx: watch::Receiver<usize>, nodes: usize) -> bool {
        let wait = self.ttl.min(ACK_WAIT);
        let all = tokio::time::timeout(wait, rx.wait_for(|n| *n >= nodes)).await.is_ok_and(|r| r.is_ok());
        self.acks.lock().expect("acks").remove(&id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn session(account: AccountId, hash: &str) -> Arc<LoginSession> {
        let now = Utc::now();
        Arc::new(LoginSession {
            token_hash: hash.into(),
            subject: Subject::Account { id: account },
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono::Duration::hours(1),
            idle_timeout_secs: 600,
            device: None,
        })
    }

    #[test]
    fn a_revocation_drops_entries_and_blocks_a_read_that_started_before_it() {
        let cache = LoginCache::new(Duration::from_secs(60));
        let (a, b) = (AccountId::new(), AccountId::new());
        let g = cache.generation();
        cache.insert(&session(a, "a1"), g);
        cache.insert(&session(a, "a2"), g);
        cache.insert(&session(b, "b1"), g);
        assert!(cache.get("a1", Utc::now()).is_some());

        cache.revoke(a, Some("a1"));
        assert!(cache.get("a1", Utc::now()).is_none());
        assert!(cache.get("a2", Utc::now()).is_some());

        // A read that began before a revocation does not put its (maybe revoked) session back.
        let before = cache.generation();
        cache.revoke(a, None);
        cache.insert(&session(a, "a1"), before);
        assert!(cache.get("a1", Utc::now()).is_none());
        assert!(cache.get("a2", Utc::now()).is_none(), "logout everywhere drops every login");
        assert!(cache.get("b1", Utc::now()).is_some(), "other accounts keep theirs");
    }

    #[test]
    fn ended_sessions_and_old_entries_are_not_believed() {
        let cache = LoginCache::new(Duration::from_millis(30));
        let a = AccountId::new();
        let mut s = session(a, "t");
        Arc::make_mut(&mut s).expires_at = Utc::now() + chrono::Duration::milliseconds(5);
        cache.insert(&s, cache.generation());
        assert!(cache.get("t", Utc::now() + chrono::Duration::seconds(1)).is_none(), "past its end");
        cache.insert(&session(a, "u"), cache.generation());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("u", Utc::now()).is_none(), "older than the ttl");
        let off = LoginCache::new(Duration::ZERO);
        off.insert(&session(a, "v"), off.generation());
        assert!(off.is_empty());
    }

    #[test]
    fn a_suspended_cache_believes_nothing_and_a_read_from_before_the_resume_is_not_kept() {
        let cache = LoginCache::new(Duration::from_secs(60));
        let a = AccountId::new();
        cache.insert(&session(a, "a1"), cache.generation());
        assert!(cache.get("a1", Utc::now()).is_some());

        let before = cache.generation();
        cache.suspend();
        assert!(cache.is_empty(), "suspending drops every entry");
        assert!(cache.get("a1", Utc::now()).is_none());
        cache.insert(&session(a, "a2"), cache.generation());
        assert!(cache.is_empty(), "nothing is cached while suspended");

        cache.resume();
        cache.insert(&session(a, "a1"), before);
        assert!(cache.get("a1", Utc::now()).is_none(), "a read from before the suspension is not kept");
        cache.insert(&session(a, "a2"), cache.generation());
        assert!(cache.get("a2", Utc::now()).is_some(), "caching again once resumed");
    }

    #[test]
    fn a_full_cache_is_swept_once_until_its_oldest_entry_can_be_stale() {
        let cache = LoginCache::with_capacity(Duration::from_millis(500), 3);
        let a = AccountId::new();
        for t in ["t1", "t2", "t3"] {
            cache.insert(&session(a, t), cache.generation());
        }
        cache.insert(&session(a, "t4"), cache.generation());
        let sweeps = || cache.map.read().unwrap().sweeps;
        assert_eq!((cache.len(), sweeps()), (3, 1), "full of fresh entries: swept once, nothing added");
        for t in ["t5", "t6", "t7"] {
            cache.insert(&session(a, t), cache.generation());
        }
        assert_eq!((cache.len(), sweeps()), (3, 1), "no entry can be stale yet: no more sweeps");
        assert!(cache.get("t4", Utc::now()).is_none() && cache.get("t1", Utc::now()).is_some());
        std::thread::sleep(Duration::from_millis(600));
        cache.insert(&session(a, "t8"), cache.generation());
        assert_eq!((cache.len(), sweeps()), (1, 2), "the stale ones went and the new one is in");
        assert!(cache.get("t8", Utc::now()).is_some() && cache.get("t1", Utc::now()).is_none());
    }

    #[tokio::test]
    async fn a_logout_waits_for_every_node_or_the_ttl() {
        let cache = LoginCache::new(Duration::from_secs(30));
        let (id, rx) = cache.expect_acks();
        let me = cache.node();
        cache.acked(me, id);
        cache.acked(uuid::Uuid::new_v4(), id); // another node's revocation with the same number
        cache.acked(me, id);
        assert!(cache.wait_acks(id, rx, 2).await);
        let short = LoginCache::new(Duration::from_millis(20));
        let (id, rx) = short.expect_acks();
        short.acked(short.node(), id);
        assert!(!short.wait_acks(id, rx, 2).await, "a node that never answers costs the ttl");
    }
}
