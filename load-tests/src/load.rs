//! The generator: N keep-alive connections opened before the release, then every one fires its
//! prepared request at the release time (optionally spread over a window, as human taps are), and
//! every answer is recorded with its latency. The same code measures every system.

use futures::stream::{self, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::http1::{Answer, Conn};

/// How many connects run at once while warming up (a listen backlog is finite).
const CONNECT_CONCURRENCY: usize = 256;

/// One attempt's fate.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// When it was sent, in microseconds after the release time.
    pub sent_us: u64,
    /// Send to complete answer, in microseconds (to the timeout when there was none).
    pub latency_us: u64,
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// `error.code` of an error body.
    pub code: Option<String>,
    /// No answer: why (timeout, connection error).
    pub failure: Option<String>,
    /// The parsed body of a success (kept for the correctness check), else null.
    #[serde(skip)]
    pub body: serde_json::Value,
    /// The answer's bytes until `Fired::read` parses them.
    #[serde(skip)]
    raw: Vec<u8>,
}

impl Outcome {
    pub fn timed_out(&self) -> bool {
        self.failure.as_deref() == Some("timeout")
    }

    fn failed(sent_us: u64, latency_us: u64, why: String) -> Outcome {
        let (status, code, body, raw) = (None, None, serde_json::Value::Null, Vec::new());
        Outcome { sent_us, latency_us, status, code, failure: Some(why), body, raw }
    }

    /// Parses the answer's bytes: its `error.code`, and the whole body if its status is kept.
    fn read(&mut self, keep_body: &[u16]) {
        let raw = std::mem::take(&mut self.raw);
        let Some(status) = self.status else { return };
        let parsed: serde_json::Value = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
        self.code = parsed["error"]["code"].as_str().map(str::to_string);
        if keep_body.contains(&status) {
            self.body = parsed;
        }
    }
}

/// The outcomes of one `fire`, their answers not yet parsed. Parsing them is the correctness
/// check's work, not the storm's: done during the storm it cost the generator, which shares the
/// server's two cores, about ten µs more for one of the hospital's 201s (an appointment and an
/// order, about 1 KiB of JSON) than for a peer's (three fields), and that time was taken from
/// the server under test.
pub struct Fired {
    outcomes: Vec<Outcome>,
    keep_body: &'static [u16],
}

impl Fired {
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Every answer parsed (see `Outcome::read`).
    pub fn read(self) -> Vec<Outcome> {
        let Fired { mut outcomes, keep_body } = self;
        for o in &mut outcomes {
            o.read(keep_body);
        }
        outcomes
    }
}

pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>22} [{bar:40}] {pos}/{len} {per_sec} {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Opens one connection per request, `CONNECT_CONCURRENCY` at a time.
pub async fn connect_all(addr: SocketAddr, n: usize, label: &str) -> anyhow::Result<Vec<Conn>> {
    let pb = bar(n as u64, &format!("{label}: connect"));
    let conns: Vec<std::io::Result<Conn>> = stream::iter(0..n)
        .map(|_| {
            let pb = pb.clone();
            async move {
                let mut last = None;
                for _ in 0..5 {
                    match Conn::connect(addr).await {
                        Ok(c) => {
                            pb.inc(1);
                            return Ok(c);
                        }
                        Err(e) => {
                            last = Some(e);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                Err(last.expect("an error"))
            }
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    pb.finish();
    conns.into_iter().collect::<std::io::Result<Vec<_>>>().map_err(|e| anyhow::anyhow!("connecting to {addr}: {e}"))
}

/// How to fire: the spread of the sends after the start, the per-request timeout, and the
/// statuses whose parsed body is kept.
#[derive(Debug, Clone, Copy)]
pub struct FireOpts {
    pub spread: Duration,
    pub timeout: Duration,
    pub keep_body: &'static [u16],
}

/// Fires `requests[i]` on `conns[i]` at `at` plus `i`'s share of the spread. The answers are
/// kept as bytes, parsed by `Fired::read` once the last is in.
pub async fn fire(
    addr: SocketAddr,
    conns: Vec<Conn>,
    requests: Vec<Arc<Vec<u8>>>,
    at: Instant,
    opts: FireOpts,
    label: &str,
) -> Fired {
    let FireOpts { spread, timeout, keep_body } = opts;
    assert_eq!(conns.len(), requests.len());
    let n = requests.len();
    let pb = bar(n as u64, &format!("{label}: answers"));
    let mut tasks = Vec::with_capacity(n);
    for (i, (mut conn, req)) in conns.into_iter().zip(requests).enumerate() {
        let offset = if n > 1 { spread.mul_f64(i as f64 / (n - 1) as f64) } else { Duration::ZERO };
        let pb = pb.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at + offset).await;
            let sent = Instant::now();
            let mut r = tokio::time::timeout(timeout, conn.send(&req)).await;
            // A keep-alive connection the server dropped while idle: one fresh connection, as any
            // HTTP client would do (rare; counted in the latency).
            if matches!(&r, Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof
                || e.kind() == std::io::ErrorKind::ConnectionReset
                || e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                let left = timeout.saturating_sub(sent.elapsed());
                r = tokio::time::timeout(left, async {
                    let mut c = Conn::connect(addr).await?;
                    c.send(&req).await
                })
                .await;
            }
            let latency = sent.elapsed();
            pb.inc(1);
            let sent_us = sent.saturating_duration_since(at).as_micros() as u64;
            let latency_us = latency.as_micros() as u64;
            match r {
                Err(_) => Outcome::failed(sent_us, latency_us, "timeout".into()),
                Ok(Err(e)) => Outcome::failed(sent_us, latency_us, format!("connection: {e}")),
                Ok(Ok(Answer { status, body })) => {
                    let (code, failure, parsed) = (None, None, serde_json::Value::Null);
                    Outcome { sent_us, latency_us, status: Some(status), code, failure, body: parsed, raw: body }
                }
            }
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("a fire task panicked"));
    }
    pb.finish();
    Fired { outcomes: out, keep_body }
}

/// The figures of one system's run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub system: String,
    pub attempts: usize,
    /// First send to last answer, seconds.
    pub duration_s: f64,
    pub attempts_per_s: f64,
    /// 201s (or 200s for the ceiling).
    pub ok: usize,
    /// 409 sold_out.
    pub sold_out: usize,
    pub timeouts: usize,
    pub connection_errors: usize,
    pub server_errors: usize,
    /// Any other status or code.
    pub unexpected: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// Answers completed per 50 ms bucket after the release (for the plot).
    pub throughput_series: Vec<u32>,
    /// Latency at percentiles 0, 1, ..., 100 and 99.9 (ms), for the plot.
    pub percentile_curve: Vec<(f64, f64)>,
    /// CPU per attempt, µs, of the server and of this generator, from connecting to the last
    /// answer (the hospital's phases only: a peer is several processes). Steadier than the rate
    /// of one short storm, whose ceiling moves with the machine.
    pub cpu_us: Option<CpuPerAttempt>,
}

/// Runs `phase` (a `fire` at `at`), and with `server` what it cost the server and this generator
/// per attempt, from just before `at` to the last answer. The connections were opened before and
/// are not counted: opening them is not the storm, and opening 10,000 again right after a phase
/// closed as many costs the generator's kernel twice the first time (its ports in TIME_WAIT).
/// With `callgrind` (`hospital-load storm --callgrind`, the server under valgrind's callgrind:
/// `load-tests/instrstorm.sh`), also counts the server's instructions over the phase alone: the
/// instrumentation is on from just before `at` to the last answer and the phase is dumped under
/// that name.
pub async fn measured(
    server: Option<u32>,
    at: Instant,
    callgrind: Option<&str>,
    phase: impl std::future::Future<Output = Fired>,
) -> (Vec<Outcome>, Option<CpuPerAttempt>) {
    let Some(pid) = server else { return (phase.await.read(), None) };
    // Starts a moment before `at` (`fire` spawns the sends' tasks then), not over the wait.
    tokio::time::sleep_until(at.checked_sub(Duration::from_millis(50)).unwrap_or(at)).await;
    if callgrind.is_some() {
        callgrind_control(pid, &["--instr=on"]);
    }
    let (fired, cpu) = CpuPerAttempt::measure(pid, Fired::len, phase).await;
    if let Some(label) = callgrind {
        callgrind_control(pid, &["--instr=off"]);
        callgrind_control(pid, &[&format!("--dump={label}")]);
    }
    (fired.read(), Some(cpu))
}

/// Runs `callgrind_control <args> <pid>`; a failure is printed, not fatal (the counts are then
/// missing, which the script that reads them says).
fn callgrind_control(pid: u32, args: &[&str]) {
    let r = std::process::Command::new("callgrind_control").args(args).arg(pid.to_string()).output();
    match r {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!("callgrind_control {args:?}: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => eprintln!("callgrind_control {args:?}: {e}"),
    }
}

/// CPU time per attempt over a phase, µs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuPerAttempt {
    pub server: f64,
    pub generator: f64,
}

impl CpuPerAttempt {
    /// Runs `phase`, charging the CPU `server` and this process spent to its `attempts`.
    pub async fn measure<T>(
        server: u32,
        attempts: impl Fn(&T) -> usize,
        phase: impl std::future::Future<Output = T>,
    ) -> (T, CpuPerAttempt) {
        let me = std::process::id();
        let (s0, g0) = (crate::procs::cpu_seconds(server), crate::procs::cpu_seconds(me));
        let out = phase.await;
        let n = attempts(&out).max(1) as f64;
        let per = |a: f64, b: f64| (b - a) * 1e6 / n;
        let cpu = CpuPerAttempt {
            server: per(s0, crate::procs::cpu_seconds(server)),
            generator: per(g0, crate::procs::cpu_seconds(me)),
        };
        (out, cpu)
    }
}

pub const BUCKET_MS: u64 = 50;

impl Figures {
    pub fn errors(&self) -> usize {
        self.timeouts + self.connection_errors + self.server_errors + self.unexpected
    }

    /// `ok_status` is 201 for bookings, 200 for the ceiling; 409 `sold_out` is the other definite
    /// answer of a booking.
    pub fn of(system: &str, outcomes: &[Outcome], ok_status: u16) -> Figures {
        let mut lat: Vec<u64> = outcomes.iter().map(|o| o.latency_us).collect();
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let idx = ((lat.len() as f64) * p).ceil() as usize;
            lat[idx.clamp(1, lat.len()) - 1] as f64 / 1000.0
        };
        let first = outcomes.iter().map(|o| o.sent_us).min().unwrap_or(0);
        let last = outcomes.iter().map(|o| o.sent_us + o.latency_us).max().unwrap_or(0);
        let duration_s = (last.saturating_sub(first)) as f64 / 1e6;
        let mut series = vec![0u32; (last / 1000 / BUCKET_MS + 1) as usize];
        for o in outcomes {
            series[((o.sent_us + o.latency_us) / 1000 / BUCKET_MS) as usize] += 1;
        }
        let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        let mut curve: Vec<(f64, f64)> = (0..=100).map(|p| (p as f64, pct(p as f64 / 100.0))).collect();
        curve.insert(100, (99.9, pct(0.999)));
        Figures {
            system: system.to_string(),
            attempts: outcomes.len(),
            duration_s,
            attempts_per_s: if duration_s > 0.0 { outcomes.len() as f64 / duration_s } else { 0.0 },
            ok: count(&|o| o.status == Some(ok_status)),
            sold_out: count(&|o| o.status == Some(409) && o.code.as_deref() == Some("sold_out")),
            timeouts: count(&|o| o.timed_out()),
            connection_errors: count(&|o| o.failure.is_some() && !o.timed_out()),
            server_errors: count(&|o| o.status.is_some_and(|s| s >= 500)),
            unexpected: count(&|o| {
                o.status
                    .is_some_and(|s| s < 500 && s != ok_status && !(s == 409 && o.code.as_deref() == Some("sold_out")))
            }),
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            max_ms: lat.last().map(|&l| l as f64 / 1000.0).unwrap_or(0.0),
            mean_ms: if lat.is_empty() { 0.0 } else { lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0 },
            throughput_series: series,
            percentile_curve: curve,
            cpu_us: None,
        }
    }
}

/// A few examples of unexpected answers, for the report.
pub fn unexpected_examples(outcomes: &[Outcome], ok_status: u16) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes {
        let definite = o.status == Some(ok_status) || (o.status == Some(409) && o.code.as_deref() == Some("sold_out"));
        if !definite {
            out.push(format!("status {:?} code {:?} failure {:?}", o.status, o.code, o.failure));
            if out.len() >= 5 {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::CpuPerAttempt;
    use std::time::{Duration, Instant};

    /// Burns this process's CPU until `secs` of it are spent (by /proc's count), at most 10 s of
    /// wall time: a parse that reads the wrong fields counts nothing and fails here.
    fn burn(secs: f64) {
        let me = std::process::id();
        let (start, wall) = (crate::procs::cpu_seconds(me), Instant::now());
        let mut x = 0u64;
        while crate::procs::cpu_seconds(me) - start < secs {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            assert!(wall.elapsed() < Duration::from_secs(10), "no CPU time counted for this process");
        }
        std::hint::black_box(x);
    }

    #[tokio::test]
    async fn a_phase_is_charged_the_cpu_it_spent_per_attempt() {
        let me = std::process::id();
        // This process is both "server" and generator here: both are charged the same CPU.
        let (n, cpu) = CpuPerAttempt::measure(me, |n: &usize| *n, async {
            burn(0.05);
            10usize
        })
        .await;
        assert_eq!(n, 10);
        assert!(cpu.server >= 5_000.0, "50 ms over 10 attempts is at least 5,000 µs each: {cpu:?}");
        assert!(cpu.server < 1_000_000.0, "{cpu:?}");
        // The same process read twice, a moment apart: at most a clock tick (10 ms) between them.
        assert!((cpu.server - cpu.generator).abs() <= 2_000.0, "{cpu:?}");
    }
}
