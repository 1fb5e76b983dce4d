//! The sockets: each one connects from one of several loopback source addresses (one address pair
//! allows only ~28k ports), authenticates with a bearer token, subscribes to one doctor's topic,
//! pings every 20 s, and on every availability update works out which change it shows and records
//! the delivery latency from the driver's send time: to when the client read it, and to when the
//! kernel received it (`wire`: the server's part without the client's own delay).
//!
//! Matching: the driver only ever raises one segment's quota by one place, so the sum of
//! `remaining` of the watched session is `base + changes applied`: the update names its change
//! exactly, with no field added to the server's messages.

use anyhow::{anyhow, bail, Context, Result};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use crate::wire::{self, Ws};

/// Latency histogram with 10 µs buckets up to 10 s (and one overflow bucket), lock-free.
pub struct Histogram {
    buckets: Vec<AtomicU32>,
    max_us: AtomicU64,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 1_000_000;

impl Default for Histogram {
    fn default() -> Self {
        Self { buckets: (0..=BUCKETS).map(|_| AtomicU32::new(0)).collect(), max_us: AtomicU64::new(0) }
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| u64::from(b.load(Ordering::Relaxed))).sum()
    }

    /// The latencies (ms) at each quantile in `qs` (ascending).
    pub fn quantiles_ms(&self, qs: &[f64]) -> Vec<f64> {
        let total = self.count();
        let mut out = Vec::with_capacity(qs.len());
        if total == 0 {
            return qs.iter().map(|_| 0.0).collect();
        }
        let mut seen = 0u64;
        let mut qi = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += u64::from(b.load(Ordering::Relaxed));
            while qi < qs.len() && seen as f64 >= qs[qi] * total as f64 {
                out.push(((i as u64 + 1) * BUCKET_US) as f64 / 1000.0);
                qi += 1;
            }
            if qi == qs.len() {
                break;
            }
        }
        while out.len() < qs.len() {
            out.push(self.max_ms());
        }
        out
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// The non-empty buckets (index, count) and the maximum, to send to another process.
    pub fn sparse(&self) -> (Vec<(u32, u32)>, u64) {
        let b = self.buckets.iter().enumerate().filter_map(|(i, b)| {
            let n = b.load(Ordering::Relaxed);
            (n > 0).then_some((i as u32, n))
        });
        (b.collect(), self.max_us.load(Ordering::Relaxed))
    }

    /// Adds another process's `sparse` figures.
    pub fn merge(&self, buckets: &[(u32, u32)], max_us: u64) {
        for (i, n) in buckets {
            if let Some(b) = self.buckets.get(*i as usize) {
                b.fetch_add(*n, Ordering::Relaxed);
            }
        }
        self.max_us.fetch_max(max_us, Ordering::Relaxed);
    }
}

/// Microseconds since the Unix epoch: the time base every process of a run shares (the driver
/// stamps a change in one process, a socket in another receives it; one machine, one clock).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// What the sockets and the driver share.
pub struct Shared {
    /// When the run began (`unix_us`): every time below counts from it.
    pub epoch_us: u64,
    /// Per doctor: the sum of `remaining` of the watched session before any change.
    pub base_sum: Vec<u64>,
    /// Per doctor: a searcher for the watched session's id, built once. A doctor's topic carries
    /// every session of theirs; only the watched one's updates name a change (with several nodes
    /// started from copies of one data directory, each node's own schedule actors publish their
    /// copy's state as they start, and another session's sum could look like a change).
    watched: Vec<memchr::memmem::Finder<'static>>,
    /// Per doctor, per change: when the driver sent it (µs since `epoch_us`, +1; 0 = not yet).
    pub sent_us: Vec<Vec<AtomicU64>>,
    /// Per socket: the highest change number it has seen (0 = none).
    pub last_seen: Vec<AtomicU32>,
    /// Per socket: the changes 1..=64 it has seen (a bit each), to find an update sent twice.
    seen: Vec<AtomicU64>,
    /// Updates naming a change the socket had already seen (should stay 0).
    pub repeats: AtomicU64,
    /// Per socket: the highest change number received so far, in arrival order (unlike
    /// `last_seen`, which `settle` also moves for updates matched late).
    last_received: Vec<AtomicU32>,
    /// Updates older than one their socket had already received: out of order (should stay 0;
    /// coalescing may skip changes, never reorder them).
    pub out_of_order: AtomicU64,
    /// From the driver's send time to the client's read.
    pub latency: Histogram,
    /// From the driver's send time to the kernel's receipt at the client (`Frame::arrived_us`).
    pub arrival: Histogram,
    /// Deliveries per second since `epoch_us`.
    pub per_second: Vec<AtomicU64>,
    pub deliveries: AtomicU64,
    /// Updates that named no change this run knows (should stay 0).
    pub unmatched: AtomicU64,
    pub closed_early: AtomicU64,
    /// Updates that came before this process learnt their send time (a client shard hears of a
    /// change through a pipe from the driver, and the update can overtake it), matched at the end
    /// by `settle`.
    early: std::sync::Mutex<Vec<Early>>,
}

/// An update that came before its change's send time was known here.
struct Early {
    socket: usize,
    doctor: usize,
    change: usize,
    /// When it was read and when the kernel received it (µs since `epoch_us`).
    read: u64,
    arrived: u64,
}

impl Shared {
    pub fn new(
        sockets: usize,
        base_sum: Vec<u64>,
        sessions: Vec<String>,
        changes_per_doctor: usize,
        seconds: usize,
        epoch_us: u64,
    ) -> Self {
        let doctors = base_sum.len();
        Self {
            epoch_us,
            base_sum,
            watched: sessions.iter().map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned()).collect(),
            sent_us: (0..doctors).map(|_| (0..changes_per_doctor).map(|_| AtomicU64::new(0)).collect()).collect(),
            last_seen: (0..sockets).map(|_| AtomicU32::new(0)).collect(),
            seen: (0..sockets).map(|_| AtomicU64::new(0)).collect(),
            repeats: AtomicU64::new(0),
            last_received: (0..sockets).map(|_| AtomicU32::new(0)).collect(),
            out_of_order: AtomicU64::new(0),
            latency: Histogram::default(),
            arrival: Histogram::default(),
            per_second: (0..seconds).map(|_| AtomicU64::new(0)).collect(),
            deliveries: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            early: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn now_us(&self) -> u64 {
        unix_us().saturating_sub(self.epoch_us)
    }

    /// An update `socket` read now, its bytes received by the kernel at `arrived_us` (µs since
    /// the Unix epoch; 0 = unknown, taken as now).
    fn on_update(&self, socket: usize, doctor: usize, text: &[u8], arrived_us: u64) {
        let now = self.now_us();
        let arrived = if arrived_us == 0 { now } else { arrived_us.saturating_sub(self.epoch_us).min(now) };
        if self.watched.get(doctor).is_none_or(|id| id.find(text).is_none()) {
            return;
        }
        let Some(sum) = remaining_sum(text) else { return };
        let k = sum.saturating_sub(self.base_sum[doctor]) as usize;
        if k == 0 {
            return;
        }
        if let Some(last) = self.last_received.get(socket) {
            if (k as u32) < last.fetch_max(k as u32, Ordering::Relaxed) {
                self.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
        }
        match self.sent_us[doctor].get(k - 1).map(|a| a.load(Ordering::Acquire)) {
            Some(sent) if sent > 0 => self.delivered(socket, k, sent - 1, now, arrived),
            Some(_) => {
                let early = Early { socket, doctor, change: k, read: now, arrived };
                self.early.lock().expect("early").push(early);
            }
            None => {
                self.unmatched.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn delivered(&self, socket: usize, k: usize, sent: u64, now: u64, arrived: u64) {
        if k <= 64 {
            let bit = 1u64 << (k - 1);
            if self.seen[socket].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
                self.repeats.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency.record(now.saturating_sub(sent));
        self.arrival.record(arrived.saturating_sub(sent));
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        let sec = (now / 1_000_000) as usize;
        if let Some(c) = self.per_second.get(sec) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.last_seen[socket].fetch_max(k as u32, Ordering::Relaxed);
    }

    /// Matches the updates that overtook their send time; one whose change was never sent is
    /// unmatched.
    pub fn settle(&self) {
        let early = std::mem::take(&mut *self.early.lock().expect("early"));
        for e in early {
            match self.sent_us[e.doctor][e.change - 1].load(Ordering::Acquire) {
                0 => {
                    self.unmatched.fetch_add(1, Ordering::Relaxed);
                }
                sent => self.delivered(e.socket, e.change, sent - 1, e.read, e.arrived),
            }
        }
    }
}

/// The sum of the numbers in the first `"remaining":[...]` of an availability frame. Only a
/// frame of that type: a `snapshot` (sent on subscribing) lists every session of the doctor, and
/// its first `remaining` may be another session's.
pub fn remaining_sum(text: &[u8]) -> Option<u64> {
    static REMAINING: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"remaining\":["));
    if !text.starts_with(b"{\"type\":\"availability\"") {
        return None;
    }
    let at = REMAINING.find(text)? + REMAINING.needle().len();
    let end = memchr::memchr(b']', &text[at..])? + at;
    text[at..end].split(|b| *b == b',').map(|n| std::str::from_utf8(n).ok()?.trim().parse::<u64>().ok()).sum()
}

/// How to reach the server under test.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `127.0.0.1:PORT`, the upgrade's `Host`.
    pub host: String,
}

/// One socket's set-up: connect from `source`, upgrade with the token, wait for `welcome`,
/// subscribe to `topic`, wait for `subscribed`.
pub async fn open(target: &Target, source: Ipv4Addr, token: &str, topic: &str) -> Result<Ws> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::V4(SocketAddrV4::new(source, 0))).with_context(|| format!("bind {source}"))?;
    let tcp = sock.connect(target.addr).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str()), ("Sec-WebSocket-Protocol", "hospital.json.v1")];
    let mut ws = Ws::connect(tcp, &target.host, "/ws", &headers).await.context("upgrade")?;
    wait_for(&mut ws, "welcome").await?;
    ws.send_text(&format!(r#"{{"type":"subscribe","id":"s","payload":{{"topics":["{topic}"]}}}}"#)).await?;
    wait_for(&mut ws, "subscribed").await?;
    Ok(ws)
}

async fn wait_for(ws: &mut Ws, kind: &str) -> Result<()> {
    let needle = format!("\"type\":\"{kind}\"");
    let deadline = Duration::from_secs(30);
    loop {
        let f = tokio::time::timeout(deadline, ws.next()).await.map_err(|_| anyhow!("no {kind} within 30 s"))?;
        let f = f.with_context(|| format!("waiting for {kind}"))?;
        let text = String::from_utf8_lossy(f.payload);
        match f.opcode {
            wire::OP_TEXT if text.contains(&needle) => return Ok(()),
            wire::OP_TEXT if text.contains("\"type\":\"error\"") => bail!("error instead of {kind}: {text}"),
            wire::OP_CLOSE => bail!("closed waiting for {kind}: {text}"),
            _ => continue,
        }
    }
}

/// Runs an open socket until `stop` turns true: reads updates, pings every 20 s. The timer and
/// the stop signal are made once and polled in place (one made per update, then dropped, was a
/// timer-wheel insert and removal and a waiter-list lock per update).
pub async fn run(mut ws: Ws, socket: usize, doctor: usize, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    // Spread the pings so 20k sockets do not ping in the same millisecond.
    let first = Duration::from_millis(20_000 - (socket as u64 * 7919) % 5_000);
    let ping = tokio::time::sleep(first);
    tokio::pin!(ping);
    let mut signal = stop.clone();
    let stopped = signal.changed();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            f = ws.next() => match f {
                Ok(f) if f.opcode == wire::OP_TEXT => shared.on_update(socket, doctor, f.payload, f.arrived_us),
                Ok(f) if f.opcode != wire::OP_CLOSE => {}
                _ => {
                    if !*stop.borrow() {
                        shared.closed_early.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            },
            _ = &mut ping => {
                if ws.send_text(r#"{"type":"ping","payload":{}}"#).await.is_err() {
                    shared.closed_early.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                ping.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(20));
            }
            _ = &mut stopped => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close()).await;
                return;
            }
        }
    }
}

/// Which sockets to open and how: socket `i` uses token `i / sockets_per_account`, watches
/// doctor `i mod doctors` and connects to node `i mod nodes`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// Per node: `host:port`.
    pub nodes: Vec<String>,
    pub tokens: Vec<String>,
    /// Per doctor: the topic.
    pub topics: Vec<String>,
    pub sockets_per_account: usize,
    pub sockets_per_source: usize,
    pub first_source_octet: u8,
    pub connect_concurrency: usize,
}

/// Sockets opened: their tasks, and how many failed (with the first error).
pub struct Opened {
    pub handles: Vec<tokio::task::JoinHandle<()>>,
    pub failures: usize,
    pub first_error: Option<String>,
}

/// Opens sockets `range` of `plan` (socket `i` is `shared`'s `i - range.start`) and starts each
/// one's task; `opened` is called for each socket that opens.
pub async fn open_range(
    plan: &Plan,
    range: std::ops::Range<usize>,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
    opened: &(dyn Fn() + Sync),
) -> Result<Opened> {
    use futures::{stream, StreamExt};
    let targets: Vec<Target> = plan
        .nodes
        .iter()
        .map(|n| Ok(Target { addr: n.parse().with_context(|| format!("node {n}"))?, host: n.clone() }))
        .collect::<Result<_>>()?;
    let first = range.start;
    let results: Vec<Result<tokio::task::JoinHandle<()>>> = stream::iter(range)
        .map(|i| {
            let (shared, stop) = (shared.clone(), stop.clone());
            let target = &targets[i % targets.len()];
            let token = &plan.tokens[(i / plan.sockets_per_account.max(1)) % plan.tokens.len()];
            let doctor = i % plan.topics.len();
            let source = source_of(i, plan.first_source_octet, plan.sockets_per_source);
            async move {
                let ws = open(target, source, token, &plan.topics[doctor])
                    .await
                    .with_context(|| format!("socket {i} from {source}"))?;
                opened();
                Ok(tokio::spawn(run(ws, i - first, doctor, shared, stop)))
            }
        })
        .buffer_unordered(plan.connect_concurrency.max(1))
        .collect()
        .await;
    let mut out = Opened { handles: Vec::new(), failures: 0, first_error: None };
    for r in results {
        match r {
            Ok(h) => out.handles.push(h),
            Err(e) => {
                out.failures += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    Ok(out)
}

/// The source address of socket `i`: `first_octet`, then the next one every `per_source` sockets.
pub fn source_of(i: usize, first_octet: u8, per_source: usize) -> Ipv4Addr {
    let n = first_octet as usize + i / per_source.max(1);
    Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8 + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An availability update of `session` with `remaining` as given.
    fn frame(session: &str, remaining: &str) -> String {
        format!(
            r#"{{"type":"availability","payload":{{"topic":"doctor:d","data":{{"session_id":"{session}","remaining":[{remaining}]}}}}}}"#
        )
    }

    /// The latency to the read and to the kernel's receipt are kept apart; a receipt time after
    /// the read (clocks disagree) counts as the read's, and none at all as the read's.
    #[test]
    fn records_the_arrival_apart_from_the_read() {
        let epoch = unix_us() - 50_000;
        let s = Shared::new(3, vec![10], vec!["S1".into()], 3, 10, epoch);
        for c in 0..3 {
            s.sent_us[0][c].store(1, Ordering::Release); // sent at the epoch
        }
        s.on_update(0, 0, frame("S1", "11").as_bytes(), epoch + 2_000);
        let (read, arrived) = (s.latency.quantiles_ms(&[1.0])[0], s.arrival.quantiles_ms(&[1.0])[0]);
        assert!(read >= 50.0, "read {read} ms after the send");
        assert_eq!(arrived, 2.01, "arrived 2 ms after the send (10 µs buckets)");
        s.on_update(1, 0, frame("S1", "12").as_bytes(), unix_us() + 10_000_000);
        s.on_update(2, 0, frame("S1", "13").as_bytes(), 0);
        assert!(
            s.arrival.quantiles_ms(&[0.5])[0] >= 50.0,
            "both counted as read: {:?}",
            s.arrival.quantiles_ms(&[0.5])
        );
        assert_eq!(s.arrival.count(), 3);
    }

    /// Only the watched session's updates count; one that overtook its send time is matched when
    /// the run settles; one naming a change never sent is unmatched.
    #[test]
    fn matches_the_watched_session_and_settles_early_updates() {
        let s = Shared::new(2, vec![10], vec!["S1".into()], 3, 10, unix_us());
        s.sent_us[0][0].store(1, Ordering::Release);
        s.on_update(0, 0, frame("S2", "9,2").as_bytes(), 0); // another session's sum 11 would name change 1
        assert_eq!((s.deliveries.load(Ordering::Relaxed), s.last_seen[0].load(Ordering::Relaxed)), (0, 0));
        s.on_update(0, 0, frame("S1", "9,2").as_bytes(), 0);
        assert_eq!((s.deliveries.load(Ordering::Relaxed), s.last_seen[0].load(Ordering::Relaxed)), (1, 1));
        s.on_update(1, 0, frame("S1", "10,2").as_bytes(), 0); // change 2, its send time not known yet
        s.on_update(1, 0, frame("S1", "10,3").as_bytes(), 0); // change 3, never sent
        assert_eq!(s.deliveries.load(Ordering::Relaxed), 1);
        s.sent_us[0][1].store(5, Ordering::Release);
        s.settle();
        assert_eq!(s.deliveries.load(Ordering::Relaxed), 2);
        assert_eq!(s.last_seen[1].load(Ordering::Relaxed), 2);
        assert_eq!(s.unmatched.load(Ordering::Relaxed), 1);
        assert_eq!(s.out_of_order.load(Ordering::Relaxed), 0, "matched late is not out of order");
        s.on_update(1, 0, frame("S1", "10,2").as_bytes(), 0); // change 2 again, after change 3 arrived
        assert_eq!(s.out_of_order.load(Ordering::Relaxed), 1);
        assert_eq!(s.repeats.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn sums_remaining() {
        let t = r#"{"type":"availability","payload":{"topic":"doctor:x","data":{"remaining":[2,0,3],"waiting":0}}}"#;
        assert_eq!(remaining_sum(t.as_bytes()), Some(5));
        assert_eq!(remaining_sum(br#"{"type":"pong"}"#), None);
        let snapshot = r#"{"type":"snapshot","payload":{"updates":[{"type":"availability","remaining":[1]}]}}"#;
        assert_eq!(remaining_sum(snapshot.as_bytes()), None);
    }

    #[test]
    fn quantiles() {
        let h = Histogram::default();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let q = h.quantiles_ms(&[0.5, 0.99]);
        assert!((q[0] - 500.0).abs() < 0.1, "{q:?}");
        assert!((q[1] - 990.0).abs() < 0.1, "{q:?}");
        assert_eq!(h.max_ms(), 1000.0);
    }

    #[test]
    fn sources_spread() {
        assert_eq!(source_of(0, 0, 10), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(source_of(25, 0, 10), Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(source_of(0, 10, 10), Ipv4Addr::new(127, 0, 0, 12));
    }
}
