//! The `EventBus` actors publish to. A personal event comes here once the change it reports is
//! durable (it was written in the store's outbox with that change); the bus numbers it in the
//! account's `EventLog` (once per event id), fans it out, and removes it from the outbox. A
//! topic update is fanned out as it is. Fan-out is local on one machine, or through Redis
//! pub/sub when several gateway nodes share a Redis: every node subscribes to one channel and
//! delivers what concerns its own sockets (PLAT-4). Revoked logins travel the same way, so a
//! logout closes its sockets on every node; so do the agents' console events (the node that
//! made one delivers it to its own consoles at once, the others from the channel) and typing
//! indicators for a patient's sockets, both in the order they were made and never logged.
//!
//! On one machine without Redis the store keeps the log and a booking write numbers its plain
//! events itself, in its own transaction (`hospital_store::Placed`): the bus only fans those
//! out, and nothing of theirs is in the outbox.
//!
//! Order: the personal events of one account are handled by one worker (accounts are spread
//! over a few workers by hash), so they are numbered in the order they were published, while
//! different accounts proceed in parallel and share the store's group commits.
//!
//! Crash safety: an event that was written but not yet logged when the process died is still in
//! the outbox; the sweeper logs it at start-up (and every few seconds, for any the fast path
//! could not log), with the next number of its account, so a client resuming gets it; an event
//! logged but not yet removed from the outbox is not logged twice (the log knows its id).
//!
//! Derived events: after a `message` (and for an `unread` marker) the bus logs `unread` with the
//! count it reads from the store at that moment, so the last count a client gets is the count
//! after the last change, whoever made it.

use hospital_actors::EventBus;
use hospital_domain::chat::console::StaffEvent;
use hospital_domain::live::{PersonalEvent, TopicEvent, UnreadCount};
use hospital_domain::AccountId;
use hospital_store::{DataStore, PendingEvent, Placed};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::hub::{Hub, Revocation};
use super::log::{now_ms, EventLog, Logged};

/// Workers logging events, each owning the accounts that hash to it (order per account). Each
/// waits for its durable log append, so this is how many appends can share one commit of the
/// store's group commit: with 8, agents' chat replies at 1,000 a second queued for seconds
/// (docs/benchmarks.md, "Customer-service chat"). A worker is a task and a channel: cheap.
const WORKERS: usize = 64;
/// The sweeper logs outbox events older than this (younger ones are on the fast path).
const SWEEP_AFTER: Duration = Duration::from_secs(5);
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Outbox rows read per sweep.
const SWEEP_BATCH: usize = 2000;
/// Logged events are removed from the outbox in batches of at most this many (one write each).
const REMOVE_BATCH: usize = 512;

/// What travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
enum Wire {
    Personal {
        account: AccountId,
        logged: Logged,
    },
    Topic {
        event: TopicEvent,
        at_ms: u64,
    },
    Revoke(Revocation),
    /// Cached state (`"roles"`, `"catalog"`) changed: every node reloads it.
    Invalidate(String),
    /// A node applied the revocation `id` sent by `node` (`auth::cache`).
    RevokeAck {
        node: uuid::Uuid,
        id: u64,
    },
    /// A console event from `node` (which delivered it to its own consoles already).
    Console {
        node: uuid::Uuid,
        event: StaffEvent,
    },
    /// A transient event for an account's sockets wherever they are (typing), not logged.
    Direct {
        account: AccountId,
        event: TopicEvent,
        at_ms: u64,
    },
}

enum Job {
    /// One account's events, in order.
    Personal(AccountId, Vec<PendingEvent>),
    Topic(TopicEvent, u64),
}

#[derive(Clone)]
pub enum Fanout {
    /// One node: deliver here.
    Local,
    /// Several nodes: publish on the channel; every node (this one too) delivers what it receives.
    Redis { conn: redis::aio::ConnectionManager, channel: String },
}

pub struct Bus {
    /// Unbounded: fed only by durable changes (each already paid a store write), drained by
    /// workers doing one kv write per event (or per run of an account's events that need nothing
    /// read between them); its length is bounded by the store's write rate.
    workers: Vec<mpsc::UnboundedSender<Job>>,
    hub: Arc<Hub>,
    fanout: Fanout,
    data: Arc<dyn DataStore>,
    /// Console and direct events for the other nodes, published in order (with Redis only).
    relay: Option<mpsc::UnboundedSender<Wire>>,
}

/// Everything a worker needs, shared.
#[derive(Clone)]
struct Worker {
    log: EventLog,
    hub: Arc<Hub>,
    fanout: Fanout,
    data: Arc<dyn DataStore>,
    /// Ids of logged events, for the outbox remover.
    logged: mpsc::UnboundedSender<uuid::Uuid>,
}

impl Worker {
    async fn publish(&self, wire: Wire) {
        match &self.fanout {
            Fanout::Local => deliver(&self.hub, wire),
            Fanout::Redis { conn, channel } => {
                let body = serde_json::to_vec(&wire).expect("events serialise");
                let r: Result<i64, _> =
                    redis::cmd("PUBLISH").arg(channel).arg(body).query_async(&mut conn.clone()).await;
                if let Err(e) = r {
                    // A personal event is in the log: a socket fills the gap from the log when
                    // the next event comes, and a client resuming gets it.
                    tracing::warn!(error = %e, "publishing an event to Redis failed");
                }
            }
        }
    }

    /// The account's unread count now.
    async fn unread(&self, account: AccountId) -> Option<PendingEvent> {
        match self.data.unread_count(account).await {
            Ok(count) => Some(PendingEvent::new(account, PersonalEvent::Unread(UnreadCount { count }))),
            Err(e) => {
                tracing::warn!(error = %e, %account, "unread count unavailable");
                None
            }
        }
    }

    /// Logs `events` (one account's) in one append and fans out those numbered now, in order;
    /// false if they could not be logged (they stay in the outbox). One logged before (a
    /// re-delivery) is not fanned out again: the clients had their chance at it.
    async fn log_events(&self, account: AccountId, events: Vec<PendingEvent>) -> bool {
        let n = events.len();
        match self.log.append_all(account, events).await {
            Ok(numbered) => {
                for logged in numbered.into_iter().flatten() {
                    self.publish(Wire::Personal { account, logged }).await;
                }
                true
            }
            // A kv that appends one by one (ScyllaDB) may have logged the first few: not lost (a
            // socket fills a gap from the log at the next event, a resume gets them), and the
            // sweeper finds them all in the outbox, where a logged one is not numbered again.
            Err(err) => {
                tracing::warn!(error = %err, %account, "event log append failed; the outbox keeps the events");
                metrics::counter!("ws_drops_total", "reason" => "log_failed").increment(n as u64);
                false
            }
        }
    }

    async fn personal(&self, account: AccountId, events: Vec<PendingEvent>) {
        // Events that need nothing read between them (a hold's appointment and order) go in one
        // append: each append is a durable write this worker waits for.
        let plain = |e: &PendingEvent| {
            e.placed().is_none() && !matches!(e.event, PersonalEvent::Unread(_)) && !e.event.changes_unread()
        };
        let mut rest = events.into_iter().peekable();
        while let Some(e) = rest.next() {
            if let Some(Placed { seq, at_ms }) = e.placed() {
                // Numbered by the store in the write of its change (it keeps the log): only
                // fanned out. A socket that got a later number first fills the gap from the log.
                self.publish(Wire::Personal { account, logged: Logged { seq, event: e.event, at_ms } }).await;
                continue;
            }
            if plain(&e) {
                let mut run = vec![e];
                while let Some(next) = rest.next_if(plain) {
                    run.push(next);
                }
                let ids: Vec<uuid::Uuid> = run.iter().map(|e| e.id).collect();
                if self.log_events(account, run).await {
                    for id in ids {
                        let _ = self.logged.send(id);
                    }
                }
                continue;
            }
            let (id, changes_unread) = (e.id, e.event.changes_unread());
            let logged = if matches!(e.event, PersonalEvent::Unread(_)) {
                // A marker: log the count as it is now.
                match self.unread(account).await {
                    Some(mut fresh) => {
                        fresh.id = id;
                        self.log_events(account, vec![fresh]).await
                    }
                    None => false,
                }
            } else {
                self.log_events(account, vec![e]).await
            };
            if logged {
                let _ = self.logged.send(id);
            }
            if changes_unread {
                if let Some(u) = self.unread(account).await {
                    self.log_events(account, vec![u]).await;
                }
            }
        }
    }
}

fn deliver(hub: &Hub, wire: Wire) {
    match wire {
        Wire::Personal { account, logged } => hub.deliver_personal(account, Arc::new(logged)),
        Wire::Topic { event, at_ms } => hub.deliver_topic(event, at_ms),
        Wire::Revoke(r) => hub.revoke(&r),
        Wire::Invalidate(what) => hub.invalidated(&what),
        Wire::RevokeAck { node, id } => hub.logins.acked(node, id),
        Wire::Console { node, event } => {
            if node != hub.logins.node() {
                if let Some(consoles) = hub.consoles.get().and_then(std::sync::Weak::upgrade) {
                    consoles.deliver(&event);
                }
            }
        }
        Wire::Direct { account, event, at_ms } => hub.deliver_direct(account, event, at_ms),
    }
}

/// Publishes console and direct events in the order they were made, many per round trip.
async fn relay(conn: redis::aio::ConnectionManager, channel: String, mut rx: mpsc::UnboundedReceiver<Wire>) {
    let mut batch = Vec::with_capacity(256);
    let mut conn = conn;
    while rx.recv_many(&mut batch, 256).await > 0 {
        let mut pipe = redis::pipe();
        for w in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&channel).arg(serde_json::to_vec(&w).expect("events serialise")).ignore();
        }
        let r: Result<(), _> = pipe.query_async(&mut conn).await;
        if let Err(e) = r {
            // Not logged: a console reloads what it missed on reconnect; typing is transient.
            tracing::warn!(error = %e, "publishing console events to Redis failed");
            metrics::counter!("ws_drops_total", "reason" => "console_publish_failed").increment(1);
        }
    }
}

impl Bus {
    /// Starts the workers, the outbox remover and the sweeper (which logs what a crash left in
    /// the outbox at once).
    pub fn start(log: EventLog, hub: Arc<Hub>, data: Arc<dyn DataStore>, fanout: Fanout) -> Arc<Bus> {
        let (logged_tx, logged_rx) = mpsc::unbounded_channel();
        tokio::spawn(remove_logged(data.clone(), logged_rx));
        let worker = Worker { log, hub: hub.clone(), fanout: fanout.clone(), data: data.clone(), logged: logged_tx };
        let mut workers = Vec::with_capacity(WORKERS);
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let w = worker.clone();
            tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    match job {
                        Job::Personal(account, events) => w.personal(account, events).await,
                        Job::Topic(event, at_ms) => w.publish(Wire::Topic { event, at_ms }).await,
                    }
                }
            });
            workers.push(tx);
        }
        let relay_tx = match &fanout {
            Fanout::Local => None,
            Fanout::Redis { conn, channel } => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(relay(conn.clone(), channel.clone(), rx));
                Some(tx)
            }
        };
        let bus = Arc::new(Bus { workers, hub, fanout, data, relay: relay_tx });
        let weak = Arc::downgrade(&bus);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Some(bus) = weak.upgrade() else { break };
                // At start-up everything left is a crash's leftover; later, only what the fast
                // path has not managed in a while.
                let age = if first { Duration::ZERO } else { SWEEP_AFTER };
                first = false;
                if let Err(e) = bus.sweep(age).await {
                    tracing::warn!(error = %e, "sweeping the live-event outbox failed");
                }
                drop(bus);
                tokio::time::sleep(SWEEP_EVERY).await;
            }
        });
        bus
    }

    fn worker(&self, key: &[u8]) -> &mpsc::UnboundedSender<Job> {
        let h = key.iter().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(*b as usize));
        &self.workers[h % self.workers.len()]
    }

    /// Logs the outbox events older than `age` (through the workers, in order per account).
    pub async fn sweep(&self, age: Duration) -> Result<usize, hospital_store::StoreError> {
        let cutoff = now_ms().saturating_sub(age.as_millis() as u64);
        let pending: Vec<PendingEvent> = self
            .data
            .outbox_pending(SWEEP_BATCH)
            .await?
            .into_iter()
            .filter(|e| {
                let made = e.id.get_timestamp().map(|t| {
                    let (s, n) = t.to_unix();
                    s * 1000 + u64::from(n) / 1_000_000
                });
                made.is_none_or(|ms| ms <= cutoff)
            })
            .collect();
        let n = pending.len();
        if n > 0 {
            tracing::info!(events = n, "logging live events left in the outbox");
            metrics::counter!("ws_outbox_swept_total").increment(n as u64);
            self.dispatch(pending);
        }
        Ok(n)
    }

    /// Hands events to their accounts' workers, keeping each account's order.
    fn dispatch(&self, mut events: Vec<PendingEvent>) {
        // Grouped by a stable sort (each account's events keep their order): a change's few
        // events and a sweep's thousands alike, without a map.
        events.sort_by_key(|e| e.account);
        let mut rest = events.into_iter().peekable();
        while let Some(e) = rest.next() {
            let account = e.account;
            let mut run = vec![e];
            while let Some(next) = rest.next_if(|n| n.account == account) {
                run.push(next);
            }
            let _ = self.worker(account.0.as_bytes()).send(Job::Personal(account, run));
        }
    }

    /// Closes a revoked login's sockets on every node and drops it from every node's login
    /// cache; with several nodes, returns once every node that received it said it applied it
    /// (or `auth::cache::ACK_WAIT` passed: a node cut off from Redis has emptied its cache by then).
    pub async fn revoke(&self, mut r: Revocation) {
        match &self.fanout {
            Fanout::Local => self.hub.revoke(&r),
            Fanout::Redis { conn, channel } => {
                // This node at once (the channel brings it back here too; closing twice is a no-op).
                self.hub.revoke(&r);
                let logins = &self.hub.logins;
                let (id, acks) = logins.expect_acks();
                r.ack = Some((logins.node(), id));
                let body = serde_json::to_vec(&Wire::Revoke(r)).expect("revocations serialise");
                let sent: Result<usize, _> =
                    redis::cmd("PUBLISH").arg(channel).arg(body).query_async(&mut conn.clone()).await;
                let nodes = match sent {
                    Ok(n) => n,
                    Err(e) => {
                        // The other nodes' sockets still close at their session check; their
                        // caches forget the session within the cache's lifetime, waited out here.
                        tracing::warn!(error = %e, "publishing a revocation to Redis failed");
                        usize::MAX
                    }
                };
                if !logins.wait_acks(id, acks, nodes).await {
                    metrics::counter!("auth_revocation_ack_timeouts_total").increment(1);
                }
            }
        }
    }
}

impl Bus {
    /// Sends a console event to the other nodes' consoles (this node's have it already).
    pub fn console(&self, event: &StaffEvent) {
        if let Some(tx) = &self.relay {
            let _ = tx.send(Wire::Console { node: self.hub.logins.node(), event: event.clone() });
        }
    }

    /// A transient event (typing) for `account`'s sockets on every node; never logged.
    pub fn direct(&self, account: AccountId, event: TopicEvent) {
        match &self.relay {
            None => self.hub.deliver_direct(account, event, now_ms()),
            Some(tx) => {
                let _ = tx.send(Wire::Direct { account, event, at_ms: now_ms() });
            }
        }
    }
}

impl Bus {
    /// Tells every node (this one at once) that cached state named `what` changed.
    pub async fn invalidate(&self, what: &str) {
        self.hub.invalidated(what);
        if let Fanout::Redis { conn, channel } = &self.fanout {
            let body = serde_json::to_vec(&Wire::Invalidate(what.to_string())).expect("serialises");
            let sent: Result<i64, _> =
                redis::cmd("PUBLISH").arg(channel).arg(body).query_async(&mut conn.clone()).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, what, "publishing an invalidation to Redis failed");
            }
        }
    }
}

/// Removes logged events from the outbox, many per write.
async fn remove_logged(data: Arc<dyn DataStore>, mut rx: mpsc::UnboundedReceiver<uuid::Uuid>) {
    let mut batch = Vec::with_capacity(REMOVE_BATCH);
    while rx.recv_many(&mut batch, REMOVE_BATCH).await > 0 {
        if let Err(e) = data.outbox_remove(&batch).await {
            // They are logged: the sweeper finds them again and the log refuses them as repeats.
            tracing::warn!(error = %e, "removing logged events from the outbox failed");
        }
        batch.clear();
    }
}

impl EventBus for Bus {
    fn personal(&self, events: Vec<PendingEvent>) {
        self.dispatch(events);
    }

    fn topic(&self, event: TopicEvent) {
        let key = event.topic().as_bytes().to_vec();
        let _ = self.worker(&key).send(Job::Topic(event, now_ms()));
    }
}

/// How often the subscriber checks that its subscription still answers, and how long it waits.
/// Together under `auth::cache::ACK_WAIT`: a node cut off from Redis empties its login cache
/// before a logout stops waiting for it.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Receives what every node publishes and delivers it to this node's sockets. Reconnects with a
/// back-off when Redis goes away (events published meanwhile are in the log: resume finds them).
/// The login cache is believed only while subscribed (see `auth::cache`): suspended from the
/// moment this is called until the subscription is up, and again whenever it is lost or stops
/// answering a PING.
pub fn subscribe_redis(url: String, channel: String, hub: Arc<Hub>) -> impl std::future::Future<Output = ()> {
    hub.logins.suspend();
    async move {
        let mut backoff = Duration::from_millis(200);
        loop {
            let result = listen(&url, &channel, &hub).await;
            hub.logins.suspend();
            match result {
                Ok(()) => tracing::warn!("event channel closed; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "event channel lost; reconnecting"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// One subscription, until it ends, fails or stops answering.
async fn listen(url: &str, channel: &str, hub: &Hub) -> Result<(), redis::RedisError> {
    use futures::StreamExt;
    let client = redis::Client::open(url)?;
    // For acknowledging revocations (a subscribed connection cannot publish).
    let mut acks = client.get_multiplexed_async_connection().await?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let (mut sink, mut stream) = pubsub.split();
    hub.logins.resume();
    tracing::info!(%channel, "subscribed to the event channel");
    // A connection that went silent (no reset, no answer) ends no stream: the PINGs find it.
    let pinger = async move {
        let mut every = tokio::time::interval(PING_EVERY);
        loop {
            every.tick().await;
            match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return e,
                Err(_) => return redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)),
            }
        }
    };
    tokio::pin!(pinger);
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            e = &mut pinger => return Err(e),
        };
        let Some(msg) = msg else { return Ok(()) };
        let body: Vec<u8> = msg.get_payload()?;
        match serde_json::from_slice::<Wire>(&body) {
            Ok(Wire::Revoke(r)) => {
                hub.revoke(&r);
                if let Some((node, id)) = r.ack {
                    let ack = serde_json::to_vec(&Wire::RevokeAck { node, id }).expect("acks serialise");
                    let sent: Result<i64, _> = redis::cmd("PUBLISH").arg(channel).arg(ack).query_async(&mut acks).await;
                    if let Err(e) = sent {
                        tracing::warn!(error = %e, "acknowledging a revocation failed");
                    }
                }
            }
            Ok(w) => deliver(hub, w),
            Err(e) => tracing::warn!(error = %e, "undecodable event on the channel"),
        }
    }
}
