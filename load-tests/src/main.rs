//! `hospital-load storm`: the release storm end to end (see the README's "Load tests"). Builds
//! and starts the hospital server (release), sets up the patients and sessions, fires the storm,
//! then the same storm at the peers (PostgreSQL service, Redis + Lua with defaults and durable)
//! and at `GET /healthz` (the ceiling), checks every system's answers, stops everything it
//! started, and writes the table, a Markdown report, the raw figures (JSON) and plots.
//!
//! `hospital-load chat`: customer-service chat, the hospital server against the Node relay (see
//! `hospital_load_tests::chat`).
//!
//! `hospital-load peer pg|redis` runs one peer service (the command starts them itself).

use anyhow::Context;
use clap::{Parser, Subcommand};
use hospital_load_tests::load::{self, CpuPerAttempt, Figures, Outcome};
use hospital_load_tests::peers::{self, PgCluster, RedisServer};
use hospital_load_tests::procs::{self, HospitalServer, Proc};
use hospital_load_tests::report::{Machine, Report, Verdict};
use hospital_load_tests::storm::{self, Prepared, Scenario, StormConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "hospital-load", about = "Load tests for the hospital platform")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The release storm (放号), against the hospital server and its peers.
    Storm(StormArgs),
    /// Customer-service chat: conversations and agents exchanging messages over WebSockets, against
    /// the hospital server and the conventional relay (Node.js `ws` + Redis pub/sub, no storage).
    Chat(ChatArgs),
    /// One peer service (started by `storm`).
    #[command(hide = true)]
    Peer {
        #[command(subcommand)]
        kind: PeerKind,
    },
}

#[derive(Subcommand)]
enum PeerKind {
    Pg {
        #[arg(long)]
        db_url: String,
        #[arg(long, default_value_t = 32)]
        pool: usize,
    },
    Redis {
        #[arg(long)]
        redis_url: String,
    },
}

#[derive(clap::Args)]
struct StormArgs {
    /// Which storm: its patients, doctors, places and spread (each overridable below) and the
    /// targets it is judged by.
    #[arg(long, value_enum, default_value = "sold-out")]
    scenario: Scenario,
    /// Logged-in patients; each books once at the release (default: the scenario's).
    #[arg(long)]
    patients: Option<usize>,
    /// Popular doctors, one session each (default: the scenario's).
    #[arg(long)]
    doctors: Option<usize>,
    /// Places per doctor (default: the scenario's).
    #[arg(long)]
    slots: Option<u32>,
    /// Where the report, figures and plots go (default load-tests/out/<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Patients set up at once.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Time between opening the connections and the release.
    #[arg(long, default_value_t = 3000)]
    lead_ms: u64,
    /// Spread the patients' taps over this window after the release (0: all at once; default:
    /// the scenario's).
    #[arg(long)]
    spread_ms: Option<u64>,
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
    /// The PostgreSQL service's connection pool.
    #[arg(long, default_value_t = 32)]
    pg_pool: usize,
    /// Use this hospital binary instead of building it (`cargo build --profile production --bin hospital`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The hospital alone (no peers, no ceiling unless `--ceiling`).
    #[arg(long)]
    no_peers: bool,
    /// With `--no-peers`: still measure the /healthz ceiling after the storm, on the same server
    /// (`load-tests/holdprofile.sh` profiles a refusal and a bare request side by side).
    #[arg(long)]
    ceiling: bool,
    /// The hospital server's `pretouch_mib`: memory mapped at start-up and kept, as a node that
    /// takes release storms is configured (config/production.example.toml); 0: the default.
    #[arg(long, default_value_t = 768)]
    pretouch_mib: usize,
    /// Profile the hospital server during its storm with `perf record -g` (perf.txt in --out).
    #[arg(long)]
    perf: bool,
    /// Measure the /healthz ceiling before the booking storm instead of after it (to see
    /// whether the order favours either).
    #[arg(long)]
    ceiling_first: bool,
    /// The server binary runs under valgrind's callgrind with collection off
    /// (`load-tests/instrstorm.sh`): count its instructions over each storm alone.
    #[arg(long)]
    callgrind: bool,
}

#[derive(clap::Args)]
struct ChatArgs {
    /// Concurrent conversations (one patient each).
    #[arg(long, default_value_t = 2000)]
    conversations: usize,
    /// Agents (online, sharing the conversations).
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Messages per second, both directions together.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// How long messages are sent, seconds.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Where the report and figures go (default load-tests/out/chat-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use this hospital binary instead of building it (`cargo build --profile production --bin hospital`).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// The hospital alone (no Node relay).
    #[arg(long)]
    no_relay: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.cmd {
        Cmd::Peer { kind: PeerKind::Pg { db_url, pool } } => rt.block_on(peers::serve_pg(&db_url, pool)),
        Cmd::Peer { kind: PeerKind::Redis { redis_url } } => rt.block_on(peers::serve_redis(&redis_url)),
        Cmd::Chat(args) => rt.block_on(async {
            tokio::select! {
                r = run_chat(args) => r,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: stopped everything started"),
            }
        }),
        Cmd::Storm(args) => rt.block_on(async {
            // Dropping the run (Ctrl-C or an error) stops every process it started.
            tokio::select! {
                r = run(args) => r,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: stopped everything started"),
            }
        }),
    }
}

async fn run(args: StormArgs) -> anyhow::Result<()> {
    let started_at = chrono::Local::now();
    let out = args.out.clone().unwrap_or_else(|| {
        procs::workspace_root().join("load-tests/out").join(started_at.format("%Y%m%d-%H%M%S").to_string())
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let machine = Machine::describe();
    let (patients, doctors, slots, spread_ms) = args.scenario.shape();
    let patients = args.patients.unwrap_or(patients);
    let nofile = procs::raise_nofile();
    if (nofile as usize) < patients + 1000 {
        eprintln!("warning: the descriptor limit is {nofile}; {patients} connections need more");
    }
    let cfg = StormConfig {
        scenario: args.scenario,
        patients,
        doctors: args.doctors.unwrap_or(doctors),
        slots: args.slots.unwrap_or(slots),
        setup_concurrency: args.setup_concurrency,
        lead_ms: args.lead_ms,
        spread_ms: args.spread_ms.unwrap_or(spread_ms),
        timeout_ms: args.timeout_ms,
        callgrind: args.callgrind,
        ..StormConfig::default()
    };
    eprintln!(
        "storm {}: {} patients, {} doctors x {} places, taps spread over {} ms",
        cfg.scenario.name(),
        cfg.patients,
        cfg.doctors,
        cfg.slots,
        cfg.spread_ms
    );
    let mut notes = vec![
        "The load generator runs on the same machine as the systems it measures, sharing its cores.".to_string(),
        format!(
            "Every patient has its own keep-alive connection, opened before the release; each sends one request \
             at the release (spread over {} ms).",
            cfg.spread_ms
        ),
    ];
    if !args.no_peers {
        // Install what the peers need before anything is timed.
        procs::ensure_debian(&["postgresql"], || Path::new("/usr/lib/postgresql").exists())?;
        procs::ensure_debian(&["redis-server"], || Command::new("redis-server").arg("--version").output().is_ok())?;
    }

    anyhow::ensure!(
        !args.callgrind || (args.no_peers && args.server_bin.is_some()),
        "--callgrind needs --no-peers and --server-bin"
    );
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => {
            eprintln!("building the hospital server (cargo build --profile production --bin hospital; about 20 minutes the first time)...");
            procs::build_hospital(true)?
        }
    };
    let mut systems: Vec<Figures> = Vec::new();
    let mut verdicts: Vec<Verdict> = Vec::new();

    // ---- The hospital server: setup, the storm, the check, then the ceiling.
    let mut server = HospitalServer::start(&bin, &out.join("hospital.log"), args.pretouch_mib)?;
    eprintln!("hospital server at {} (pid {})", server.base, server.proc.pid());
    notes.push(format!(
        "hospital server: pretouch_mib = {} (memory mapped at start-up and kept; 0 is the server's default).",
        args.pretouch_mib
    ));
    let prep = storm::prepare(&server.base, &cfg).await?;
    eprintln!("setup: {} patients, {} sessions in {:.1} s", prep.people.len(), prep.targets.len(), prep.setup_s);
    let with_ceiling = !args.no_peers || args.ceiling;
    let ceiling_first = if args.ceiling_first && with_ceiling {
        notes.push("the /healthz ceiling was measured before the booking storm (--ceiling-first).".into());
        Some(ceiling(&server, &prep, &cfg).await?)
    } else {
        None
    };
    let perf = if args.perf { start_perf(server.proc.pid(), &out) } else { None };
    let (outcomes, cpu) = storm::storm(&server.base, server.addr, &prep, &cfg, Some(server.proc.pid())).await?;
    if let Some(p) = perf {
        stop_perf(p, &out);
        notes.push("perf profile of the server during its storm: perf.txt".into());
    }
    let mut fig = Figures::of("hospital booking", &outcomes, 201);
    fig.cpu_us = cpu;
    let k = storm::check(&server.base, &prep, &outcomes, &cfg).await?;
    verdicts.push(Verdict {
        system: "hospital booking".into(),
        ok: k.ok(),
        detail: format!(
            "holds answered {} / listed {} for capacity {}; places distinct {}; every answer definite {}; answers \
             match the staff view {}{}",
            k.holds_answered,
            k.holds_listed,
            k.capacity,
            k.places_distinct,
            k.all_definite,
            k.answers_match_listing,
            problems(&k.problems)
        ),
    });
    notes.extend(load::unexpected_examples(&outcomes, 201).into_iter().map(|e| format!("hospital booking: {e}")));
    save_outcomes(&out, "hospital-booking", &outcomes)?;
    systems.push(fig);

    if with_ceiling {
        let (figures, verdict) = match ceiling_first {
            Some(c) => c,
            None => ceiling(&server, &prep, &cfg).await?,
        };
        verdicts.push(verdict);
        systems.push(figures);
    }
    server.proc.stop(Duration::from_secs(20));
    drop(server);

    if !args.no_peers {
        let capacity = capacities(&prep, cfg.slots);
        // ---- PostgreSQL.
        {
            let pg = PgCluster::start(&out.join("postgres.log"))?;
            peers::seed_pg(&pg.url(), &prep, cfg.slots).await?;
            let (_peer, addr) =
                start_peer(&["pg", "--db-url", &pg.url(), "--pool", &args.pg_pool.to_string()], &out, "peer-pg")?;
            let (o, _) = shoot(addr, storm::booking_requests(addr, &prep), &cfg, "postgres", &[201], None).await?;
            let mut v = verdict_of("postgres", &prep, &o, &capacity);
            let rb = peers::readback_pg(&pg.url()).await?;
            for (slot, n, places, patients, taken) in rb {
                let cap = capacity.get(&slot).copied().unwrap_or(0) as i64;
                if n != cap || places != n || patients != n || i64::from(taken) != n {
                    v.ok = false;
                    v.detail.push_str(&format!(
                        "; slot {slot}: {n} bookings, {places} places, counter {taken}, capacity {cap}"
                    ));
                }
            }
            notes.push(format!("PostgreSQL: synchronous_commit=on, fsync=on, pool of {} connections.", args.pg_pool));
            verdicts.push(v);
            systems.push(Figures::of("postgres", &o, 201));
        }
        // ---- Redis, defaults then durable.
        for (name, durable) in [("redis", false), ("redis durable", true)] {
            let file = name.replace(' ', "-");
            let r = RedisServer::start(durable, &out.join(format!("{file}.log")))?;
            peers::seed_redis(&r.url(), &prep, cfg.slots).await?;
            let (_peer, addr) = start_peer(&["redis", "--redis-url", &r.url()], &out, &format!("peer-{file}"))?;
            let (o, _) = shoot(addr, storm::booking_requests(addr, &prep), &cfg, name, &[201], None).await?;
            let mut v = verdict_of(name, &prep, &o, &capacity);
            for (slot, n, left) in peers::readback_redis(&r.url(), &prep).await? {
                let cap = capacity.get(&slot).copied().unwrap_or(0) as i64;
                if n != cap || left != i64::from(cfg.slots) - cap {
                    v.ok = false;
                    v.detail.push_str(&format!("; slot {slot}: {n} booked, {left} left, capacity {cap}"));
                }
            }
            verdicts.push(v);
            systems.push(Figures::of(name, &o, 201));
        }
        notes.push(
            "Redis: one multiplexed connection from the service, the Lua script by EVALSHA; `redis` is Redis' \
                    defaults (RDB snapshots), `redis durable` is appendonly yes + appendfsync always."
                .into(),
        );
    }

    let report = Report {
        started_at: started_at.to_rfc3339(),
        machine,
        config: serde_json::to_value(&cfg)?,
        setup_s: prep.setup_s,
        systems,
        verdicts,
        notes,
    };
    report.write_all(&out)?;
    println!("\n{}", report.table());
    println!("{}", report.ratios());
    println!("{}", report.targets());
    println!("{}", report.cpu());
    for v in &report.verdicts {
        println!("correct {:<18} {}  {}", v.system, if v.ok { "yes" } else { "NO" }, v.detail);
    }
    println!("\nreport, figures.json and plots in {}", out.display());
    if report.verdicts.iter().any(|v| !v.ok) {
        anyhow::bail!("a correctness check failed (see above)");
    }
    Ok(())
}

async fn run_chat(args: ChatArgs) -> anyhow::Result<()> {
    use hospital_load_tests::chat::{self, ChatConfig};
    let started_at = chrono::Local::now();
    let out = args.out.clone().unwrap_or_else(|| {
        procs::workspace_root().join("load-tests/out").join(started_at.format("chat-%Y%m%d-%H%M%S").to_string())
    });
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let machine = Machine::describe();
    let nofile = procs::raise_nofile();
    // A socket and a keep-alive connection per patient and per agent, plus one more each to send.
    if (nofile as usize) < 3 * (args.conversations + args.agents) + 1000 {
        eprintln!("warning: the descriptor limit is {nofile}; this run needs more");
    }
    let cfg = ChatConfig {
        conversations: args.conversations,
        agents: args.agents,
        rate: args.rate,
        duration: Duration::from_secs(args.duration_secs),
        setup_concurrency: args.setup_concurrency,
        ..ChatConfig::default()
    };
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => {
            eprintln!("building the hospital server (cargo build --profile production --bin hospital; about 20 minutes the first time)...");
            procs::build_hospital(true)?
        }
    };
    let mut systems = Vec::new();
    {
        let mut server = HospitalServer::start(&bin, &out.join("hospital.log"), 0)?;
        eprintln!("hospital server at {} (pid {})", server.base, server.proc.pid());
        systems.push(chat::run_hospital(&server.base, &cfg).await?);
        server.proc.stop(Duration::from_secs(20));
    }
    if !args.no_relay {
        let redis = RedisServer::start(false, &out.join("redis.log"))?;
        let (_relay, base) = chat::start_relay(&redis.url(), &out.join("chat-relay.log"))?;
        eprintln!("chat relay at {base}");
        systems.push(chat::run_relay(&base, &cfg).await?);
    }
    let md = chat::markdown(&started_at.to_rfc3339(), &machine, &cfg, &systems);
    std::fs::write(out.join("report.md"), &md)?;
    chat::plot(&systems, &out)?;
    std::fs::write(
        out.join("figures.json"),
        serde_json::to_string_pretty(&serde_json::json!({"machine": machine, "config": cfg, "systems": systems}))?,
    )?;
    println!("\n{}", chat::table(&systems));
    for f in &systems {
        println!("correct {:<24} {}  {}", f.system, if f.ok() { "yes" } else { "NO" }, f.problems.join("; "));
    }
    println!("\nreport.md and figures.json in {}", out.display());
    if systems.iter().any(|f| !f.ok()) {
        anyhow::bail!("a correctness check failed (see above)");
    }
    Ok(())
}

fn problems(p: &[String]) -> String {
    if p.is_empty() {
        String::new()
    } else {
        format!("; PROBLEMS: {}", p.join("; "))
    }
}

/// The ceiling: every patient sends `GET /healthz` to the hospital server as the storm sends its
/// bookings (a connection each, opened ahead, all fired at one instant), with the server's CPU
/// per request.
async fn ceiling(server: &HospitalServer, prep: &Prepared, cfg: &StormConfig) -> anyhow::Result<(Figures, Verdict)> {
    let reqs: Vec<Arc<Vec<u8>>> = prep
        .people
        .iter()
        .map(|p| Arc::new(hospital_load_tests::http1::request_bytes("GET", server.addr, "/healthz", &p.token, None)))
        .collect();
    let (o, cpu) = shoot(server.addr, reqs, cfg, "hospital /healthz", &[], Some(server.proc.pid())).await?;
    let mut f = Figures::of("hospital /healthz", &o, 200);
    f.cpu_us = cpu;
    let verdict = Verdict {
        system: "hospital /healthz".into(),
        ok: f.ok == f.attempts,
        detail: format!("{} of {} answered 200", f.ok, f.attempts),
    };
    Ok((f, verdict))
}

/// Slot id -> places that can be taken (patients wanting it, at most the quota).
fn capacities(prep: &Prepared, quota: u32) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (i, t) in prep.targets.iter().enumerate() {
        let wanting = prep.people.iter().filter(|p| p.doctor == i).count();
        m.insert(t.slot_id.clone(), wanting.min(quota as usize));
    }
    m
}

/// A peer's answers: every one definite, holds equal capacity, places distinct per slot.
fn verdict_of(system: &str, prep: &Prepared, o: &[Outcome], capacity: &BTreeMap<String, usize>) -> Verdict {
    let definite = o
        .iter()
        .filter(|x| x.status == Some(201) || (x.status == Some(409) && x.code.as_deref() == Some("sold_out")))
        .count();
    let mut places: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut twice = 0;
    let mut holds = 0;
    for x in o.iter().filter(|x| x.status == Some(201)) {
        holds += 1;
        let b = &x.body["booking"];
        let slot = b["slot_id"].as_str().unwrap_or_default().to_string();
        if !places.entry(slot).or_default().insert(b["place"].as_i64().unwrap_or(-1)) {
            twice += 1;
        }
    }
    let cap: usize = capacity.values().sum();
    let ok = definite == o.len() && holds == cap && twice == 0 && o.len() == prep.people.len();
    Verdict {
        system: system.into(),
        ok,
        detail: format!(
            "holds answered {holds} for capacity {cap}; places given twice {twice}; definite answers {definite} of {}",
            o.len()
        ),
    }
}

/// Connects one connection per request, then fires them all one second later.
async fn shoot(
    addr: SocketAddr,
    reqs: Vec<Arc<Vec<u8>>>,
    cfg: &StormConfig,
    label: &str,
    keep: &'static [u16],
    server: Option<u32>,
) -> anyhow::Result<(Vec<Outcome>, Option<CpuPerAttempt>)> {
    let conns = load::connect_all(addr, reqs.len(), label).await?;
    // Under callgrind the server accepts slowly: its accepts must be done before the phase.
    let lead = if cfg.callgrind { cfg.lead_ms } else { 1000 };
    let at = tokio::time::Instant::now() + Duration::from_millis(lead);
    let opts = load::FireOpts {
        spread: Duration::from_millis(cfg.spread_ms),
        timeout: Duration::from_millis(cfg.timeout_ms),
        keep_body: keep,
    };
    Ok(load::measured(server, at, cfg.callgrind.then_some(label), load::fire(addr, conns, reqs, at, opts, label)).await)
}

fn start_peer(args: &[&str], out: &Path, name: &str) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("peer").args(args);
    let (p, base) = procs::spawn_announcing(
        name,
        cmd,
        "peer listening on ",
        &out.join(format!("{name}.log")),
        Duration::from_secs(60),
    )?;
    let addr = procs::addr_of(&base)?;
    Ok((p, addr))
}

fn save_outcomes(out: &Path, name: &str, o: &[Outcome]) -> anyhow::Result<()> {
    let f = std::fs::File::create(out.join(format!("{name}-outcomes.json")))?;
    serde_json::to_writer(std::io::BufWriter::new(f), o)?;
    Ok(())
}

fn start_perf(pid: u32, out: &Path) -> Option<std::process::Child> {
    let child = Command::new("perf")
        .args(["record", "-F", "499", "-g", "-p", &pid.to_string(), "-o"])
        .arg(out.join("perf.data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("perf not available ({e}); install linux-perf to profile");
            None
        }
    }
}

fn stop_perf(mut child: std::process::Child, out: &Path) {
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--percent-limit",
            "1",
            "-g",
            "none",
            "--sort",
            "dso,symbol",
            "-i",
        ])
        .arg(out.join("perf.data"))
        .output();
    if let Ok(r) = report {
        let _ = std::fs::write(out.join("perf.txt"), r.stdout);
    }
}
