//! Scenario 2 of issue 5: WebSocket fan-out. C authenticated sockets subscribed to the
//! availability topics of a few popular doctors; a driver makes K changes per second for a fixed
//! time; each socket measures the delivery latency of every update (from the driver's send time,
//! to its read and to the kernel's receipt of its bytes);
//! the server's resident memory per socket and CPU time come from /proc. The same sockets, the
//! same generator and the same changes then go to a Node.js `ws` server (load-tests/node-ws) that
//! broadcasts them, and every figure is also given as a ratio to that peer.
//!
//! The change is a back-office 加号 (`PUT /api/v1/admin/sessions/{id}/segments/{n}/quota`, one
//! more place in one segment): it goes through the doctor's schedule actor, is durable before the
//! answer, and publishes the session's new `remaining` to `doctor:<id>`, exactly as a booking or a
//! cancellation does, and it makes every update name its change (see `clients`).

pub mod clients;
pub mod procs;
pub mod report;
pub mod shard;
pub mod wire;

use anyhow::{anyhow, bail, Context, Result};
use futures::stream::{self, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

use clients::Shared;
use shard::Shard;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sockets wanted (capped by the descriptor limit).
    pub sockets: usize,
    /// Changes per second, over all doctors.
    pub changes_per_second: f64,
    /// Popular doctors whose topics the sockets watch.
    pub doctors: usize,
    pub duration: Duration,
    /// Devices per account (many sockets share an account, as many devices may).
    pub sockets_per_account: usize,
    /// Sockets per loopback source address (one address pair allows ~28k ports).
    pub sockets_per_source: usize,
    /// Sockets being set up at once.
    pub connect_concurrency: usize,
    pub hospital_bin: PathBuf,
    /// Server processes of each system (the hospital's share a private Redis).
    pub nodes: usize,
    /// Client processes holding the sockets, when more than one (needs `shard_bin`).
    pub shards: usize,
    /// This load tool's binary, run as `shard` for each client process; None: the sockets are
    /// held in this process.
    pub shard_bin: Option<PathBuf>,
    /// The Node.js peer's folder; None: the hospital alone (the test suite's small version).
    pub node_dir: Option<PathBuf>,
    pub out_dir: PathBuf,
    pub progress: bool,
}

/// A watched session as the driver and the Node peer need it.
#[derive(Debug, Clone, Serialize)]
pub struct Watched {
    pub doctor_id: String,
    pub department_id: String,
    pub session_id: String,
    pub date: String,
    pub period: String,
    pub quotas: Vec<u64>,
    pub remaining: Vec<u64>,
}

/// The figures of one server.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Phase {
    pub server: String,
    pub sockets_requested: usize,
    pub sockets_open: usize,
    pub open_failures: usize,
    pub first_open_error: Option<String>,
    pub open_seconds: f64,
    pub rss_before_kib: u64,
    pub rss_open_kib: u64,
    pub rss_end_kib: u64,
    pub rss_peak_kib: u64,
    pub kib_per_socket: f64,
    pub drive_seconds: f64,
    pub server_cpu_seconds: f64,
    /// Server CPU over the drive, in percent of one core.
    pub server_cpu_percent: f64,
    pub client_cpu_seconds: f64,
    pub changes: usize,
    pub changes_failed: usize,
    pub change_request_p50_ms: f64,
    pub change_request_p99_ms: f64,
    pub deliveries: u64,
    /// Every socket getting every change, had nothing been coalesced.
    pub deliveries_possible: u64,
    pub unmatched: u64,
    /// Updates naming a change their socket had already seen (should stay 0).
    pub repeats: u64,
    /// Updates older than one their socket had already received (should stay 0).
    pub out_of_order: u64,
    pub closed_early: u64,
    /// Sockets whose last update was the last change of their doctor.
    pub sockets_with_last_value: usize,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_p999_ms: f64,
    pub latency_max_ms: f64,
    /// (quantile, ms) for the distribution plot.
    pub latency_curve: Vec<(f64, f64)>,
    /// The same from the driver's send to the kernel's receipt at the client (`wire`): the
    /// servers' part, without the client shards' own delay in reading on the shared cores.
    pub arrival_p50_ms: f64,
    pub arrival_p90_ms: f64,
    pub arrival_p99_ms: f64,
    pub arrival_p999_ms: f64,
    pub arrival_max_ms: f64,
    /// Per server process: its port and resident memory before and with the sockets.
    pub processes: Vec<ProcessFigures>,
    /// Deliveries in each second since the sockets began to open.
    pub deliveries_per_second: Vec<u64>,
    pub drive_started_at_s: f64,
}

/// One server process's memory (KiB).
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessFigures {
    pub port: u16,
    pub rss_before_kib: u64,
    pub rss_open_kib: u64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: String,
    pub sockets_wanted: usize,
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    pub sockets: usize,
    /// Server processes per system.
    pub nodes: usize,
    pub client_processes: usize,
    pub accounts: usize,
    pub doctors: usize,
    pub changes_per_second: f64,
    pub duration_s: f64,
    pub source_addresses: usize,
    pub watched: Vec<Watched>,
    pub phases: Vec<Phase>,
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

async fn json_ok(r: reqwest::Result<reqwest::Response>, what: &str) -> Result<Value> {
    let r = r.with_context(|| what.to_string())?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{what}: {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"))
}

/// Logs in an account by SMS through the sandbox; returns its token.
async fn login(c: &reqwest::Client, base: &str, phone: &str) -> Result<String> {
    json_ok(c.post(format!("{base}/api/v1/auth/sms/send")).json(&json!({"phone": phone})).send().await, "sms send")
        .await?;
    let out = json_ok(c.get(format!("{base}/sandbox/sms?phone={phone}")).send().await, "sms outbox").await?;
    let code = out
        .as_array()
        .and_then(|a| a.last())
        .and_then(|m| m["params"]["code"].as_str())
        .ok_or_else(|| anyhow!("no code"))?;
    let body = json!({"phone": phone, "code": code, "device": "fanout"});
    let v = json_ok(c.post(format!("{base}/api/v1/auth/sms/login")).json(&body).send().await, "sms login").await?;
    v["token"].as_str().map(str::to_string).ok_or_else(|| anyhow!("no token in {v}"))
}

/// The popular doctors and, for each, a session after today to watch and change.
async fn watched_sessions(c: &reqwest::Client, base: &str, n: usize) -> Result<Vec<Watched>> {
    let docs = json_ok(
        c.get(format!("{base}/api/v1/doctors/popular?limit={}", (n.max(1) * 2).min(50))).send().await,
        "popular",
    )
    .await?;
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive().to_string();
    let mut out = Vec::new();
    for d in docs.as_array().into_iter().flatten() {
        if out.len() == n {
            break;
        }
        let id = d["id"].as_str().ok_or_else(|| anyhow!("doctor id"))?;
        let sched = json_ok(c.get(format!("{base}/api/v1/doctors/{id}/schedule")).send().await, "schedule").await?;
        let pick = sched["sessions"].as_array().into_iter().flatten().find(|s| {
            s["status"] == "open"
                && s["date"].as_str().is_some_and(|x| x > today.as_str())
                && s["slots"].as_array().is_some_and(|a| !a.is_empty())
        });
        let Some(s) = pick else { continue };
        let slots = s["slots"].as_array().expect("checked");
        out.push(Watched {
            doctor_id: id.to_string(),
            department_id: d["department_id"].as_str().unwrap_or_default().to_string(),
            session_id: s["session_id"].as_str().unwrap_or_default().to_string(),
            date: s["date"].as_str().unwrap_or_default().to_string(),
            period: s["period"].as_str().unwrap_or_default().to_string(),
            quotas: slots.iter().map(|x| x["quota"].as_u64().unwrap_or(0)).collect(),
            remaining: slots.iter().map(|x| x["remaining"].as_u64().unwrap_or(0)).collect(),
        });
    }
    if out.len() < n {
        bail!("found {} popular doctors with a future session, wanted {n}", out.len());
    }
    Ok(out)
}

/// How the driver makes a change.
#[derive(Clone)]
enum Change {
    /// 加号 through the back office.
    Hospital { base: String, staff: String },
    /// The Node peers' broadcast endpoints, with the payload the hospital would publish.
    Node { bases: Vec<String> },
}

fn bar(mp: &MultiProgress, len: u64, msg: &str) -> ProgressBar {
    let b = mp.add(ProgressBar::new(len));
    b.set_style(
        ProgressStyle::with_template("{msg:28} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})")
            .expect("template"),
    );
    b.set_message(msg.to_string());
    b
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Where a phase's sockets are: in this process, or in client shard processes.
enum Clients {
    Local { shared: Arc<Shared>, opened: clients::Opened, stop: watch::Sender<bool> },
    Shards(Vec<Shard>),
}

/// One system's phase: open the sockets (over its processes), measure memory, drive, check the
/// last value arrived everywhere.
#[allow(clippy::too_many_arguments)]
async fn phase(
    cfg: &Config,
    mp: &MultiProgress,
    name: &str,
    servers: &[procs::Server],
    tokens: &[String],
    watched: &[Watched],
    change: Change,
    first_source_octet: u8,
) -> Result<Phase> {
    let c = http();
    let sockets = cfg.sockets;
    let d = watched.len();
    let per_doctor = ((cfg.duration.as_secs_f64() * cfg.changes_per_second) / d as f64).floor().max(1.0) as usize;
    let seconds = 3600;
    let base_sum: Vec<u64> = watched.iter().map(|w| w.remaining.iter().sum()).collect();
    let sessions: Vec<String> = watched.iter().map(|w| w.session_id.clone()).collect();
    let epoch_us = clients::unix_us();
    let mut ph = Phase { server: name.to_string(), sockets_requested: sockets, ..Default::default() };

    tokio::time::sleep(Duration::from_secs(1)).await;
    let pids: Vec<u32> = servers.iter().map(procs::Server::pid).collect();
    let rss_before: Vec<u64> = pids.iter().map(|p| procs::status_kib(*p, "VmRSS")).collect();

    // Open the sockets.
    let plan = clients::Plan {
        nodes: servers.iter().map(|s| format!("127.0.0.1:{}", s.port())).collect(),
        tokens: tokens.to_vec(),
        topics: watched.iter().map(|w| format!("doctor:{}", w.doctor_id)).collect(),
        sockets_per_account: cfg.sockets_per_account,
        sockets_per_source: cfg.sockets_per_source,
        first_source_octet,
        connect_concurrency: cfg.connect_concurrency,
    };
    let opening = bar(mp, sockets as u64, &format!("{name}: sockets"));
    let started = Instant::now();
    let mut clients = match (&cfg.shard_bin, cfg.shards) {
        (Some(bin), n) if n > 1 => {
            let per = sockets.div_ceil(n);
            let mut shards = Vec::with_capacity(n);
            for k in 0..n {
                let job = shard::Job {
                    plan: plan.clone(),
                    from: (k * per).min(sockets),
                    to: ((k + 1) * per).min(sockets),
                    base_sum: base_sum.clone(),
                    sessions: sessions.clone(),
                    changes_per_doctor: per_doctor,
                    epoch_us,
                };
                shards.push(Shard::start(bin, &job).await?);
            }
            for s in &mut shards {
                let r = s.ready().await?;
                ph.sockets_open += r.opened;
                ph.open_failures += r.failures;
                if ph.first_open_error.is_none() {
                    ph.first_open_error = r.first_error;
                }
                opening.inc((r.opened + r.failures) as u64);
            }
            Clients::Shards(shards)
        }
        _ => {
            let shared =
                Arc::new(Shared::new(sockets, base_sum.clone(), sessions.clone(), per_doctor, seconds, epoch_us));
            let (stop, stop_rx) = watch::channel(false);
            let bar = opening.clone();
            let opened = clients::open_range(&plan, 0..sockets, &shared, &stop_rx, &move || bar.inc(1)).await?;
            ph.sockets_open = opened.handles.len();
            ph.open_failures = opened.failures;
            ph.first_open_error = opened.first_error.clone();
            Clients::Local { shared, opened, stop }
        }
    };
    opening.finish();
    ph.open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_open: Vec<u64> = pids.iter().map(|p| procs::status_kib(*p, "VmRSS")).collect();
    ph.rss_before_kib = rss_before.iter().sum();
    ph.rss_open_kib = rss_open.iter().sum();
    ph.kib_per_socket = (ph.rss_open_kib.saturating_sub(ph.rss_before_kib)) as f64 / ph.sockets_open.max(1) as f64;

    // Drive: each doctor gets a change every D/K seconds, the doctors staggered evenly. With
    // shards, every send time goes to each of them (through one forwarding task).
    let period = Duration::from_secs_f64(d as f64 / cfg.changes_per_second);
    let driving = bar(mp, (per_doctor * d) as u64, &format!("{name}: changes"));
    let cpu0: f64 = pids.iter().map(|p| procs::cpu_seconds(*p)).sum();
    let me = std::process::id();
    let me0 = procs::cpu_seconds(me);
    ph.drive_started_at_s = (clients::unix_us() - epoch_us) as f64 / 1e6;
    let t0 = Instant::now();
    let (sent_tx, forward) = match clients {
        Clients::Shards(mut shards) => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, u64)>();
            let task = tokio::spawn(async move {
                while let Some((di, j, at)) = rx.recv().await {
                    for s in &mut shards {
                        s.sent(di, j, at).await?;
                    }
                }
                Ok::<_, anyhow::Error>(shards)
            });
            clients = Clients::Shards(Vec::new());
            (Some(tx), Some(task))
        }
        local => {
            clients = local;
            (None, None)
        }
    };
    let local_shared = match &clients {
        Clients::Local { shared, .. } => Some(shared.clone()),
        Clients::Shards(_) => None,
    };
    let mut drivers = Vec::new();
    for (di, w) in watched.iter().enumerate() {
        let (c, change, w, driving) = (c.clone(), change.clone(), w.clone(), driving.clone());
        let (local_shared, sent_tx) = (local_shared.clone(), sent_tx.clone());
        let offset = period.mul_f64(di as f64 / d as f64);
        drivers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut quotas = w.quotas.clone();
            let mut remaining = w.remaining.clone();
            let mut times = Vec::with_capacity(per_doctor);
            let mut failed = 0usize;
            for j in 0..per_doctor {
                tick.tick().await;
                let seg = j % quotas.len();
                quotas[seg] += 1;
                remaining[seg] += 1;
                let sent = Instant::now();
                let at = clients::unix_us() - epoch_us;
                if let Some(sh) = &local_shared {
                    sh.sent_us[di][j].store(at + 1, Ordering::Release);
                }
                if let Some(tx) = &sent_tx {
                    let _ = tx.send((di, j, at));
                }
                let r = match &change {
                    Change::Hospital { base, staff } => {
                        c.put(format!("{base}/api/v1/admin/sessions/{}/segments/{seg}/quota", w.session_id))
                            .bearer_auth(staff)
                            .json(&json!({"quota": quotas[seg]}))
                            .send()
                            .await
                    }
                    Change::Node { bases } => {
                        // Each peer process holds its own sockets: every one gets the change.
                        let data = json!({
                            "doctor_id": w.doctor_id, "department_id": w.department_id, "session_id": w.session_id,
                            "date": w.date, "period": w.period, "status": "open", "remaining": remaining, "waiting": 0,
                        });
                        let body = json!({"topic": format!("doctor:{}", w.doctor_id), "data": data});
                        let posts = bases.iter().map(|b| c.post(format!("{b}/publish")).json(&body).send());
                        let mut answers = futures::future::join_all(posts).await;
                        // The first failed answer, if any, stands for the change.
                        let failed = answers.iter().position(|r| !matches!(r, Ok(r) if r.status().is_success()));
                        answers.swap_remove(failed.unwrap_or(0))
                    }
                };
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        failed += 1;
                        eprintln!("change {j} of doctor {di}: {} {}", r.status(), r.text().await.unwrap_or_default());
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("change {j} of doctor {di}: {e}");
                    }
                }
                times.push(sent.elapsed().as_secs_f64() * 1000.0);
                driving.inc(1);
            }
            (times, failed)
        }));
    }
    let mut req_ms = Vec::new();
    for h in drivers {
        let (t, f) = h.await?;
        req_ms.extend(t);
        ph.changes_failed += f;
    }
    driving.finish();
    drop(sent_tx);
    if let Some(task) = forward {
        clients = Clients::Shards(task.await??);
    }
    ph.drive_seconds = t0.elapsed().as_secs_f64();
    ph.changes = per_doctor * d;
    req_ms.sort_by(f64::total_cmp);
    ph.change_request_p50_ms = percentile(&req_ms, 0.5);
    ph.change_request_p99_ms = percentile(&req_ms, 0.99);

    // The last value must reach every socket (coalescing may skip intermediate ones).
    let last = per_doctor as u32;
    let wait = Instant::now();
    loop {
        let ok = match &mut clients {
            Clients::Local { shared, .. } => {
                shared.last_seen.iter().filter(|s| s.load(Ordering::Relaxed) == last).count()
            }
            Clients::Shards(shards) => {
                let mut n = 0;
                for s in shards.iter_mut() {
                    n += s.count_last(last).await?;
                }
                n
            }
        };
        ph.sockets_with_last_value = ok;
        if ok >= ph.sockets_open || wait.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // CPU over the drive and the delivery of its tail.
    let busy = t0.elapsed().as_secs_f64();
    ph.server_cpu_seconds = pids.iter().map(|p| procs::cpu_seconds(*p)).sum::<f64>() - cpu0;
    ph.server_cpu_percent = 100.0 * ph.server_cpu_seconds / busy.max(1e-9);
    ph.rss_end_kib = pids.iter().map(|p| procs::status_kib(*p, "VmRSS")).sum();
    ph.rss_peak_kib = pids.iter().map(|p| procs::status_kib(*p, "VmHWM")).sum();
    ph.processes = servers
        .iter()
        .zip(rss_before.iter().zip(&rss_open))
        .map(|(s, (b, o))| ProcessFigures { port: s.port(), rss_before_kib: *b, rss_open_kib: *o })
        .collect();

    // Close the sockets and gather what they saw.
    let (h, client_cpu) = match clients {
        Clients::Local { shared, opened, stop } => {
            let _ = stop.send(true);
            let closing = async {
                for h in opened.handles {
                    let _ = h.await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(30), closing).await;
            ph.deliveries = shared.deliveries.load(Ordering::Relaxed);
            ph.unmatched = shared.unmatched.load(Ordering::Relaxed);
            ph.repeats = shared.repeats.load(Ordering::Relaxed);
            ph.out_of_order = shared.out_of_order.load(Ordering::Relaxed);
            ph.closed_early = shared.closed_early.load(Ordering::Relaxed);
            let used = ((shared.now_us() / 1_000_000) as usize + 1).min(seconds);
            ph.deliveries_per_second = shared.per_second[..used].iter().map(|x| x.load(Ordering::Relaxed)).collect();
            (shared, procs::cpu_seconds(me) - me0)
        }
        Clients::Shards(shards) => {
            let all = Arc::new(Shared::new(0, base_sum.clone(), sessions.clone(), 0, 0, epoch_us));
            let mut cpu = procs::cpu_seconds(me) - me0;
            for s in shards {
                let o = s.stop().await?;
                ph.deliveries += o.deliveries;
                ph.unmatched += o.unmatched;
                ph.repeats += o.repeats;
                ph.out_of_order += o.out_of_order;
                ph.closed_early += o.closed_early;
                all.latency.merge(&o.buckets, o.max_us);
                all.arrival.merge(&o.arrival_buckets, o.arrival_max_us);
                if ph.deliveries_per_second.len() < o.per_second.len() {
                    ph.deliveries_per_second.resize(o.per_second.len(), 0);
                }
                for (a, b) in ph.deliveries_per_second.iter_mut().zip(&o.per_second) {
                    *a += b;
                }
                // The shard's whole life (opening included): the figure is an upper bound.
                cpu += o.cpu_seconds;
            }
            (all, cpu)
        }
    };
    ph.client_cpu_seconds = client_cpu;
    let q = h.latency.quantiles_ms(&[0.5, 0.9, 0.99, 0.999]);
    (ph.latency_p50_ms, ph.latency_p90_ms, ph.latency_p99_ms, ph.latency_p999_ms) = (q[0], q[1], q[2], q[3]);
    ph.latency_max_ms = h.latency.max_ms();
    let q = h.arrival.quantiles_ms(&[0.5, 0.9, 0.99, 0.999]);
    (ph.arrival_p50_ms, ph.arrival_p90_ms, ph.arrival_p99_ms, ph.arrival_p999_ms) = (q[0], q[1], q[2], q[3]);
    ph.arrival_max_ms = h.arrival.max_ms();
    let qs: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0 * 0.999).chain([0.9995, 0.9999, 1.0]).collect();
    ph.latency_curve = qs.iter().copied().zip(h.latency.quantiles_ms(&qs)).collect();
    ph.deliveries_possible = (ph.sockets_open * per_doctor) as u64;
    Ok(ph)
}

/// Runs the scenario: the hospital server, then (if configured) the Node peer, each with the same
/// sockets and changes. Servers started here are stopped here. With `nodes` > 1 the hospital runs
/// as that many processes sharing a private Redis (started from copies of one seeded data
/// directory, so they hold the same catalogue), socket `i` on node `i mod nodes`, every change made
/// on the first node; the Node peer as as many processes, each told of every change.
pub async fn run(mut cfg: Config) -> Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let wanted = cfg.sockets;
    let nodes = cfg.nodes.max(1);
    // Client processes: the shards, or this process alone (without a shard binary).
    let client_processes = if cfg.shard_bin.is_some() { cfg.shards.max(1) } else { 1 };
    // Each process (a server node, a client shard) may hold what the descriptor limit allows.
    let per_process = cfg.sockets.div_ceil(nodes).max(cfg.sockets.div_ceil(client_processes));
    let (soft, hard) = procs::raise_nofile(per_process as u64 + 1000);
    let room = soft.saturating_sub(1000) as usize;
    if per_process > room {
        let cap = room * nodes.min(client_processes);
        eprintln!(
            "descriptor limit: soft {soft}, hard {hard} per process (raising the hard limit needs \
             CAP_SYS_RESOURCE): {wanted} sockets over {nodes} server process(es) and {} client process(es) \
             capped at {cap}",
            client_processes
        );
        cfg.sockets = cap;
    }
    if cfg.sockets == 0 {
        bail!("no sockets to open (descriptor limit {soft})");
    }
    let mp = MultiProgress::with_draw_target(if cfg.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let accounts = cfg.sockets.div_ceil(cfg.sockets_per_account.max(1));
    let c = http();

    // The hospital: one node, or several from copies of a seeded data directory.
    let data = tempfile::tempdir()?;
    let redis = if nodes > 1 { Some(procs::start_redis(&cfg.out_dir.join("redis.log"))?) } else { None };
    let redis_url = redis.as_ref().map(|r| r.base.clone());
    let log =
        |k: usize| cfg.out_dir.join(if k == 0 { "hospital.log".to_string() } else { format!("hospital-{k}.log") });
    let mut hospitals = Vec::with_capacity(nodes);
    if nodes > 1 {
        let seed = data.path().join("node-0");
        procs::start_hospital(&cfg.hospital_bin, &seed, &log(0), redis_url.as_deref())?.stop();
        for k in 1..nodes {
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&seed)
                .arg(data.path().join(format!("node-{k}")))
                .status()?;
            if !st.success() {
                bail!("copying the seeded data directory failed");
            }
        }
    }
    for k in 0..nodes {
        let dir = data.path().join(format!("node-{k}"));
        hospitals.push(procs::start_hospital(&cfg.hospital_bin, &dir, &log(k), redis_url.as_deref())?);
    }
    let base = hospitals[0].base.clone();
    let staff = {
        let body = json!({"username": "scheduler", "password": "scheduler-demo-2026"});
        let v =
            json_ok(c.post(format!("{base}/api/v1/auth/staff/login")).json(&body).send().await, "staff login").await?;
        v["token"].as_str().ok_or_else(|| anyhow!("staff token"))?.to_string()
    };
    let watched = watched_sessions(&c, &base, cfg.doctors).await?;
    let logging = bar(&mp, accounts as u64, "logging in accounts");
    let tokens: Vec<String> = stream::iter(0..accounts)
        .map(|i| {
            let (c, base, logging) = (c.clone(), base.clone(), logging.clone());
            async move {
                let t = login(&c, &base, &format!("137{:08}", i)).await;
                logging.inc(1);
                t
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<Result<String>>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    logging.finish();
    let change = Change::Hospital { base, staff };
    let mut phases = vec![phase(&cfg, &mp, "hospital", &hospitals, &tokens, &watched, change, 0).await?];
    drop(hospitals);
    drop(redis);

    // The Node peer: same tokens (it accepts exactly these), same sockets, same changes.
    if let Some(dir) = &cfg.node_dir {
        let mut peers = Vec::with_capacity(nodes);
        for k in 0..nodes {
            let log = cfg.out_dir.join(if k == 0 { "node-ws.log".to_string() } else { format!("node-ws-{k}.log") });
            let node = procs::start_node(dir, &log)?;
            json_ok(c.post(format!("{}/tokens", node.base)).json(&tokens).send().await, "node tokens").await?;
            peers.push(node);
        }
        let change = Change::Node { bases: peers.iter().map(|p| p.base.clone()).collect() };
        // Other source addresses: the hospital's client ports may still be in TIME_WAIT.
        let octet = (cfg.sockets.div_ceil(cfg.sockets_per_source.max(1)) + 5) as u8;
        phases.push(phase(&cfg, &mp, "node-ws", &peers, &tokens, &watched, change, octet).await?);
    }

    Ok(Report {
        started_at: chrono::Utc::now().to_rfc3339(),
        machine: report::machine(),
        sockets_wanted: wanted,
        nofile_soft: soft,
        nofile_hard: hard,
        sockets: cfg.sockets,
        nodes,
        client_processes,
        accounts,
        doctors: watched.len(),
        changes_per_second: cfg.changes_per_second,
        duration_s: cfg.duration.as_secs_f64(),
        source_addresses: cfg.sockets.div_ceil(cfg.sockets_per_source.max(1)),
        watched,
        phases,
    })
}
