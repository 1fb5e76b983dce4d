//! Scenario 2 of issue 5: WebSocket fan-out. C authenticated sockets subscribed to the
//! availability topics of a few popular doctors; a driver makes K changes per second for a fixed
//! time; each socket measures the delivery latency of every update (from the driver's send time);
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

use clients::{Shared, Target};

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
    /// Deliveries in each second since the sockets began to open.
    pub deliveries_per_second: Vec<u64>,
    pub drive_started_at_s: f64,
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
    /// The Node peer's broadcast endpoint, with the payload the hospital would publish.
    Node { base: String },
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

/// One server's phase: open the sockets, measure memory, drive, check the last value arrived.
#[allow(clippy::too_many_arguments)]
async fn phase(
    cfg: &Config,
    mp: &MultiProgress,
    server: &procs::Server,
    tokens: &[String],
    watched: &[Watched],
    change: Change,
    first_source_octet: u8,
) -> Result<Phase> {
    let c = http();
    let pid = server.pid();
    let sockets = cfg.sockets;
    let d = watched.len();
    let per_doctor = ((cfg.duration.as_secs_f64() * cfg.changes_per_second) / d as f64).floor().max(1.0) as usize;
    let seconds = 3600;
    let base_sum: Vec<u64> = watched.iter().map(|w| w.remaining.iter().sum()).collect();
    let shared = Arc::new(Shared::new(sockets, base_sum, per_doctor, seconds));
    let mut ph = Phase { server: server.name.to_string(), sockets_requested: sockets, ..Default::default() };

    tokio::time::sleep(Duration::from_secs(1)).await;
    ph.rss_before_kib = procs::status_kib(pid, "VmRSS");

    // Open the sockets.
    let target = Target {
        addr: format!("127.0.0.1:{}", server.port()).parse()?,
        url: format!("ws://127.0.0.1:{}/ws", server.port()),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let opening = bar(mp, sockets as u64, &format!("{}: sockets", server.name));
    let started = Instant::now();
    let results: Vec<Result<tokio::task::JoinHandle<()>>> = stream::iter(0..sockets)
        .map(|i| {
            let (target, shared, stop_rx, opening) = (target.clone(), shared.clone(), stop_rx.clone(), opening.clone());
            let token = tokens[(i / cfg.sockets_per_account.max(1)) % tokens.len()].clone();
            let doctor = i % d;
            let topic = format!("doctor:{}", watched[doctor].doctor_id);
            let source = clients::source_of(i, first_source_octet, cfg.sockets_per_source);
            async move {
                let ws = clients::open(&target, source, &token, &topic)
                    .await
                    .with_context(|| format!("socket {i} from {source}"))?;
                opening.inc(1);
                Ok(tokio::spawn(clients::run(ws, i, doctor, shared, stop_rx)))
            }
        })
        .buffer_unordered(cfg.connect_concurrency)
        .collect()
        .await;
    opening.finish();
    ph.open_seconds = started.elapsed().as_secs_f64();
    let mut handles = Vec::new();
    for r in results {
        match r {
            Ok(h) => handles.push(h),
            Err(e) => {
                ph.open_failures += 1;
                if ph.first_open_error.is_none() {
                    ph.first_open_error = Some(format!("{e:#}"));
                }
            }
        }
    }
    ph.sockets_open = handles.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    ph.rss_open_kib = procs::status_kib(pid, "VmRSS");
    ph.kib_per_socket = (ph.rss_open_kib.saturating_sub(ph.rss_before_kib)) as f64 / ph.sockets_open.max(1) as f64;

    // Drive: each doctor gets a change every D/K seconds, the doctors staggered evenly.
    let period = Duration::from_secs_f64(d as f64 / cfg.changes_per_second);
    let driving = bar(mp, (per_doctor * d) as u64, &format!("{}: changes", server.name));
    let cpu0 = procs::cpu_seconds(pid);
    let me = std::process::id();
    let me0 = procs::cpu_seconds(me);
    ph.drive_started_at_s = shared.start.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let mut drivers = Vec::new();
    for (di, w) in watched.iter().enumerate() {
        let (c, shared, change, w, driving) = (c.clone(), shared.clone(), change.clone(), w.clone(), driving.clone());
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
                shared.sent_us[di][j].store(shared.now_us() + 1, Ordering::Release);
                let r = match &change {
                    Change::Hospital { base, staff } => {
                        c.put(format!("{base}/api/v1/admin/sessions/{}/segments/{seg}/quota", w.session_id))
                            .bearer_auth(staff)
                            .json(&json!({"quota": quotas[seg]}))
                            .send()
                            .await
                    }
                    Change::Node { base } => {
                        let data = json!({
                            "doctor_id": w.doctor_id, "department_id": w.department_id, "session_id": w.session_id,
                            "date": w.date, "period": w.period, "status": "open", "remaining": remaining, "waiting": 0,
                        });
                        c.post(format!("{base}/publish"))
                            .json(&json!({"topic": format!("doctor:{}", w.doctor_id), "data": data}))
                            .send()
                            .await
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
    ph.drive_seconds = t0.elapsed().as_secs_f64();
    ph.changes = per_doctor * d;
    req_ms.sort_by(f64::total_cmp);
    ph.change_request_p50_ms = percentile(&req_ms, 0.5);
    ph.change_request_p99_ms = percentile(&req_ms, 0.99);

    // The last value must reach every socket (coalescing may skip intermediate ones).
    let last = per_doctor as u32;
    let wait = Instant::now();
    loop {
        let ok = shared.last_seen.iter().filter(|s| s.load(Ordering::Relaxed) == last).count();
        ph.sockets_with_last_value = ok;
        if ok >= ph.sockets_open || wait.elapsed() > Duration::from_secs(20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // CPU over the drive and the delivery of its tail.
    let busy = t0.elapsed().as_secs_f64();
    ph.server_cpu_seconds = procs::cpu_seconds(pid) - cpu0;
    ph.server_cpu_percent = 100.0 * ph.server_cpu_seconds / busy.max(1e-9);
    ph.client_cpu_seconds = procs::cpu_seconds(me) - me0;
    ph.rss_end_kib = procs::status_kib(pid, "VmRSS");
    ph.rss_peak_kib = procs::status_kib(pid, "VmHWM");

    let h = &shared.latency;
    let q = h.quantiles_ms(&[0.5, 0.9, 0.99, 0.999]);
    (ph.latency_p50_ms, ph.latency_p90_ms, ph.latency_p99_ms, ph.latency_p999_ms) = (q[0], q[1], q[2], q[3]);
    ph.latency_max_ms = h.max_ms();
    let qs: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0 * 0.999).chain([0.9995, 0.9999, 1.0]).collect();
    ph.latency_curve = qs.iter().copied().zip(h.quantiles_ms(&qs)).collect();
    ph.deliveries = shared.deliveries.load(Ordering::Relaxed);
    ph.deliveries_possible = (ph.sockets_open * per_doctor) as u64;
    ph.unmatched = shared.unmatched.load(Ordering::Relaxed);
    ph.closed_early = shared.closed_early.load(Ordering::Relaxed);
    let used = (shared.start.elapsed().as_secs() as usize + 1).min(seconds);
    ph.deliveries_per_second = shared.per_second[..used].iter().map(|x| x.load(Ordering::Relaxed)).collect();

    let _ = stop_tx.send(true);
    let closing = async {
        for h in handles {
            let _ = h.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), closing).await;
    Ok(ph)
}

/// Runs the scenario: the hospital server, then (if configured) the Node peer, each with the same
/// sockets and changes. Servers started here are stopped here.
pub async fn run(mut cfg: Config) -> Result<Report> {
    std::fs::create_dir_all(&cfg.out_dir)?;
    let wanted = cfg.sockets;
    let (soft, hard) = procs::raise_nofile(cfg.sockets as u64 + 1000);
    if (cfg.sockets as u64) + 1000 > soft {
        let cap = soft.saturating_sub(1000) as usize;
        eprintln!(
            "descriptor limit: soft {soft}, hard {hard} (raising the hard limit needs CAP_SYS_RESOURCE): \
             {wanted} sockets capped at {cap}"
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

    // The hospital.
    let data = tempfile::tempdir()?;
    let hospital = procs::start_hospital(&cfg.hospital_bin, data.path(), &cfg.out_dir.join("hospital.log"))?;
    let base = hospital.base.clone();
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
    let mut phases = vec![phase(&cfg, &mp, &hospital, &tokens, &watched, Change::Hospital { base, staff }, 0).await?];
    drop(hospital);

    // The Node peer: same tokens (it accepts exactly these), same sockets, same changes.
    if let Some(dir) = &cfg.node_dir {
        let node = procs::start_node(dir, &cfg.out_dir.join("node-ws.log"))?;
        json_ok(c.post(format!("{}/tokens", node.base)).json(&tokens).send().await, "node tokens").await?;
        let change = Change::Node { base: node.base.clone() };
        // Other source addresses: the hospital's client ports may still be in TIME_WAIT.
        let octet = (cfg.sockets.div_ceil(cfg.sockets_per_source.max(1)) + 5) as u8;
        phases.push(phase(&cfg, &mp, &node, &tokens, &watched, change, octet).await?);
    }

    Ok(Report {
        started_at: chrono::Utc::now().to_rfc3339(),
        machine: report::machine(),
        sockets_wanted: wanted,
        nofile_soft: soft,
        nofile_hard: hard,
        sockets: cfg.sockets,
        accounts,
        doctors: watched.len(),
        changes_per_second: cfg.changes_per_second,
        duration_s: cfg.duration.as_secs_f64(),
        source_addresses: cfg.sockets.div_ceil(cfg.sockets_per_source.max(1)),
        watched,
        phases,
    })
}
