//! `hospital-fanout-load`: the WebSocket fan-out scenario end to end. Builds the hospital server
//! in release mode, starts it on a free port with a fresh data directory, logs in the accounts,
//! opens the sockets, drives the changes, checks that every socket got the last value, stops it,
//! then does the same against the Node.js `ws` peer, and prints the table with the ratios. The
//! Markdown report, the raw figures (JSON) and the plots go to `--out`.
//!
//! ```sh
//! cargo run --release -p hospital-fanout-load -- --sockets 50000 --changes-per-second 10 --duration 60
//! # 50,000 sockets over three server processes sharing a Redis (and as many client processes)
//! cargo run --release -p hospital-fanout-load -- --sockets 50000 --nodes 3 --shards 3
//! ```

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "WebSocket fan-out load test: the hospital server against a Node.js ws server")]
struct Args {
    /// Sockets to open (capped by the descriptor limit, with 1000 to spare).
    #[arg(long, default_value_t = 50_000)]
    sockets: usize,
    /// Changes per second, over all watched doctors.
    #[arg(long, default_value_t = 10.0)]
    changes_per_second: f64,
    /// Popular doctors whose topics the sockets watch (socket i watches doctor i mod N).
    #[arg(long, default_value_t = 10)]
    doctors: usize,
    /// Seconds of driving.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    #[arg(long, default_value_t = 50)]
    sockets_per_account: usize,
    /// Sockets per loopback source address (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 10_000)]
    sockets_per_source: usize,
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    /// Server processes of each system: the hospital's share a private Redis (sessions, event
    /// logs, fan-out), each change is made on the first; socket i goes to process i mod N.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Client processes holding the sockets (each process may hold only what the descriptor limit
    /// allows; default: enough for that).
    #[arg(long)]
    shards: Option<usize>,
    /// A hospital binary to use instead of building one (`cargo build --profile production --bin hospital`).
    #[arg(long)]
    hospital_bin: Option<PathBuf>,
    /// Skip the Node.js peer.
    #[arg(long)]
    no_peer: bool,
    /// Where the report, the JSON and the plots go.
    #[arg(long, default_value = "load-tests/out/fanout")]
    out: PathBuf,
}

fn main() -> Result<()> {
    // A client shard started by the driver (see `shard`): one thread. Its sockets only read and
    // record, and a second worker per shard bought nothing but cross-thread wake-ups (futex calls,
    // work stealing) on the cores the servers under test need.
    if std::env::args().nth(1).as_deref() == Some("shard") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        return rt.block_on(hospital_fanout_load::shard::serve());
    }
    tokio::runtime::Runtime::new()?.block_on(drive())
}

async fn drive() -> Result<()> {
    let a = Args::parse();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize()?;
    let hospital_bin = match a.hospital_bin {
        Some(b) => b,
        None => {
            eprintln!("building the hospital server (cargo build --profile production --bin hospital)...");
            hospital_load_tests::procs::build_hospital(true)?
        }
    };
    let cfg = hospital_fanout_load::Config {
        sockets: a.sockets,
        changes_per_second: a.changes_per_second,
        doctors: a.doctors,
        duration: Duration::from_secs(a.duration),
        sockets_per_account: a.sockets_per_account,
        sockets_per_source: a.sockets_per_source,
        connect_concurrency: a.connect_concurrency,
        hospital_bin,
        nodes: a.nodes,
        shards: a.shards.unwrap_or_else(|| {
            // Room per process: the soft limit this process can raise itself to, less 1,000.
            let (soft, _) = hospital_fanout_load::procs::raise_nofile(a.sockets as u64 + 1000);
            a.sockets.div_ceil(soft.saturating_sub(1000).max(1) as usize)
        }),
        shard_bin: Some(std::env::current_exe()?),
        node_dir: (!a.no_peer).then(|| workspace.join("load-tests/node-ws")),
        out_dir: a.out.clone(),
        progress: true,
    };
    let report = hospital_fanout_load::run(cfg).await?;
    hospital_fanout_load::report::write_all(&report, &a.out)?;
    println!("{}", hospital_fanout_load::report::table(&report));
    println!("report: {}", a.out.join("report.md").display());
    Ok(())
}
