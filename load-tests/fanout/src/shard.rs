//! Client shards: more sockets than one process may hold (each process is limited to 20,000
//! open files here) are opened by several child processes of this binary (`hospital-fanout-load
//! shard`), each holding a range of the sockets. The driver talks to them over their stdin and
//! stdout, one JSON object per line:
//!
//! 1. the driver writes the `Job`; the shard opens its sockets and answers `Ready`;
//! 2. for every change the driver writes `Cmd::Sent` with its send time (the shared time base is
//!    the Unix clock, `clients::unix_us`); an update that overtakes this line is matched at the end
//!    (`Shared::settle`), so the race costs nothing;
//! 3. `Cmd::CountLast` asks how many sockets have seen a change number (answer `Count`);
//! 4. `Cmd::Stop` closes the sockets; the shard answers `Outcome` (its histogram in sparse form)
//!    and exits.

use anyhow::{anyhow, bail, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

use crate::clients::{self, Plan, Shared};

/// What one shard opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub plan: Plan,
    /// Socket indices `from..to` of the plan.
    pub from: usize,
    pub to: usize,
    pub base_sum: Vec<u64>,
    /// Per doctor: the watched session.
    pub sessions: Vec<String>,
    pub changes_per_doctor: usize,
    pub epoch_us: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Cmd {
    Sent { doctor: usize, change: usize, at_us: u64 },
    CountLast { last: u32 },
    Stop,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub opened: usize,
    pub failures: usize,
    pub first_error: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Count {
    pub with_last: usize,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub deliveries: u64,
    pub unmatched: u64,
    pub repeats: u64,
    #[serde(default)]
    pub out_of_order: u64,
    pub closed_early: u64,
    pub buckets: Vec<(u32, u32)>,
    pub max_us: u64,
    /// The latency to the kernel's receipt, as `buckets` and `max_us` are to the read.
    pub arrival_buckets: Vec<(u32, u32)>,
    pub arrival_max_us: u64,
    pub per_second: Vec<u64>,
    pub cpu_seconds: f64,
}

const SECONDS: usize = 3600;

fn say<T: Serialize>(v: &T) {
    // stdout is line-buffered: each answer leaves whole.
    println!("{}", serde_json::to_string(v).expect("answers serialise"));
}

/// The child's side: reads the job, opens the sockets, follows the driver's commands.
pub async fn serve() -> Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let job: Job = serde_json::from_str(&lines.next_line().await?.ok_or_else(|| anyhow!("no job"))?)?;
    crate::procs::raise_nofile((job.to - job.from) as u64 + 200);
    let n = job.to - job.from;
    let shared = Arc::new(Shared::new(
        n,
        job.base_sum.clone(),
        job.sessions.clone(),
        job.changes_per_doctor,
        SECONDS,
        job.epoch_us,
    ));
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = clients::open_range(&job.plan, job.from..job.to, &shared, &stop_rx, &|| {}).await?;
    say(&Ready { opened: opened.handles.len(), failures: opened.failures, first_error: opened.first_error.clone() });
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Cmd>(&line).with_context(|| format!("command {line:?}"))? {
            Cmd::Sent { doctor, change, at_us } => {
                if let Some(a) = shared.sent_us.get(doctor).and_then(|d| d.get(change)) {
                    a.store(at_us + 1, Ordering::Release);
                }
            }
            Cmd::CountLast { last } => {
                let with_last = shared.last_seen.iter().filter(|s| s.load(Ordering::Relaxed) == last).count();
                say(&Count { with_last });
            }
            Cmd::Stop => break,
        }
    }
    let _ = stop_tx.send(true);
    let closing = async {
        for h in opened.handles {
            let _ = h.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), closing).await;
    shared.settle();
    let (buckets, max_us) = shared.latency.sparse();
    let (arrival_buckets, arrival_max_us) = shared.arrival.sparse();
    let used = (shared.now_us() / 1_000_000) as usize + 1;
    say(&Outcome {
        deliveries: shared.deliveries.load(Ordering::Relaxed),
        unmatched: shared.unmatched.load(Ordering::Relaxed),
        repeats: shared.repeats.load(Ordering::Relaxed),
        out_of_order: shared.out_of_order.load(Ordering::Relaxed),
        closed_early: shared.closed_early.load(Ordering::Relaxed),
        buckets,
        max_us,
        arrival_buckets,
        arrival_max_us,
        per_second: shared.per_second[..used.min(SECONDS)].iter().map(|x| x.load(Ordering::Relaxed)).collect(),
        cpu_seconds: crate::procs::cpu_seconds(std::process::id()),
    });
    Ok(())
}

/// The driver's side of one shard.
pub struct Shard {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    pub pid: u32,
}

impl Shard {
    /// Starts `bin shard` with `job`.
    pub async fn start(bin: &Path, job: &Job) -> Result<Shard> {
        let mut child = Command::new(bin)
            .arg("shard")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the client shard {}", bin.display()))?;
        let pid = child.id().unwrap_or(0);
        let stdin = child.stdin.take().expect("piped");
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut s = Shard { child, stdin, lines, pid };
        s.send(job).await?;
        Ok(s)
    }

    async fn send<T: Serialize>(&mut self, v: &T) -> Result<()> {
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        self.stdin.write_all(&line).await.context("writing to a client shard")?;
        self.stdin.flush().await?;
        Ok(())
    }

    async fn answer<T: DeserializeOwned>(&mut self) -> Result<T> {
        let Some(line) = self.lines.next_line().await? else {
            let status = self.child.wait().await?;
            bail!("a client shard ended ({status})");
        };
        serde_json::from_str(&line).with_context(|| format!("a client shard said {line:?}"))
    }

    /// Waits until the shard's sockets are open.
    pub async fn ready(&mut self) -> Result<Ready> {
        self.answer().await
    }

    pub async fn sent(&mut self, doctor: usize, change: usize, at_us: u64) -> Result<()> {
        self.send(&Cmd::Sent { doctor, change, at_us }).await
    }

    pub async fn count_last(&mut self, last: u32) -> Result<usize> {
        self.send(&Cmd::CountLast { last }).await?;
        Ok(self.answer::<Count>().await?.with_last)
    }

    /// Closes the sockets and returns what they saw.
    pub async fn stop(mut self) -> Result<Outcome> {
        self.send(&Cmd::Stop).await?;
        let out = self.answer().await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        Ok(out)
    }
}
