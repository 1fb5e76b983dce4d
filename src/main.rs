//! `hospital`: runs the platform (`serve`, the default) and its administrative commands.

use anyhow::Context;
use clap::{Parser, Subcommand};
use hospital::{app, config, keys};
use std::net::SocketAddr;
use std::path::PathBuf;

/// mimalloc, not glibc's malloc: a storm's many small, short-lived allocations across threads
/// cost glibc ~12 % of the CPU in the profile of docs/benchmarks.md ("Three storms").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks the kernel for them on its
/// arenas (`madvise(MADV_HUGEPAGE)`), so the first touch of each fresh 2 MiB range zeroes all of
/// it, and every purge and re-use of memory zeroes it again: in an everyone-can-win storm the
/// kernel's `clear_page_erms` was 30 % of the server's CPU (docs/benchmarks.md, "Release storm",
/// 2026-11-30 05:xx). With 4 KiB pages the same storm zeroes only what it touches.
fn no_transparent_huge_pages() {
    // SAFETY: a process-wide flag; no pointers are passed.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        eprintln!("prctl(PR_SET_THP_DISABLE) failed: {}", std::io::Error::last_os_error());
    }
}

#[derive(Parser)]
#[command(name = "hospital", version, about = "Real-time hospital platform", args_conflicts_with_subcommands = true)]
struct Cli {
    /// `hospital --listen ...` is `hospital serve --listen ...`.
    #[command(flatten)]
    serve: ServeArgs,
    /// A TOML config file (see config/production.example.toml).
    #[arg(long, global = true, env = "HOSPITAL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the platform (the default).
    Serve(ServeArgs),
    /// Create a staff account in the store (the first administrator, say).
    CreateStaff {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: admin, scheduler, doctor, nurse, agent, finance.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// The password, read from this environment variable (never from the command line).
        #[arg(long, default_value = "HOSPITAL_NEW_STAFF_PASSWORD")]
        password_env: String,
        #[arg(long, env = "HOSPITAL_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print a fresh field-encryption key (base64) for `encryption.keys`.
    Keygen,
    /// The audit log: verify its hash chains, export entries.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every chain (or one) and check each entry's hash and link. Exits 1 naming the first
    /// broken entry's seq. Reads the data directory directly: stop the server first, or run it
    /// on a copy (the embedded store allows one process at a time).
    Verify {
        #[arg(long, env = "HOSPITAL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Only this chain (a node's `audit_chain`).
        #[arg(long)]
        chain: Option<String>,
    },
    /// Write the entries of a time range as JSON Lines (verifiable: each line is the stored,
    /// hashed entry) or CSV, newest first, optionally one staff member's, one action's or one
    /// patient account's.
    Export {
        #[arg(long, env = "HOSPITAL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Start of the range (RFC 3339); 30 days ago by default.
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the range (RFC 3339); now by default.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, conflicts_with_all = ["action", "account"])]
        staff: Option<hospital_domain::StaffId>,
        #[arg(long, conflicts_with = "account")]
        action: Option<String>,
        #[arg(long)]
        account: Option<hospital_domain::AccountId>,
        #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
        format: String,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Address to listen on [env: HOSPITAL_LISTEN] [default: 127.0.0.1:8080]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory of the embedded store [env: HOSPITAL_DATA_DIR] [default: ./data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HOSPITAL_LOG").unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let mut cfg = config::load(cli.config.as_deref()).context("configuration")?;
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(args) => {
            if let Some(l) = args.listen {
                cfg.listen = l;
            }
            if let Some(d) = args.data_dir {
                cfg.data_dir = d;
            }
            init_logging(cfg.log_json);
            serve(cfg).await
        }
        Command::CreateStaff { username, name, roles, password_env, data_dir } => {
            init_logging(false);
            let password =
                std::env::var(&password_env).with_context(|| format!("set the password in ${password_env}"))?;
            let roles = roles
                .iter()
                .map(|r| hospital_domain::RoleName::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .context("a role name")?;
            let store = app::open_data(&cfg, data_dir.as_deref()).await?;
            // The built-in roles exist before the first administrator does.
            hospital_gateway::roles::Roles::load(&*store).await?;
            let req = hospital_gateway::http::staff::CreateStaff { username, name, password, roles, doctor_id: None };
            let s = hospital_gateway::http::staff::create(&*store, req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created staff {} ({})", s.username, s.id);
            Ok(())
        }
        Command::Audit(cmd) => {
            init_logging(false);
            audit(cmd, &cfg).await
        }
        Command::Keygen => {
            let _ = keys::field_cipher; // the same generator the server uses for its first key
            println!("{}", hospital_store::FieldCipher::generate_key_b64());
            Ok(())
        }
    }
}

async fn audit(cmd: AuditCommand, cfg: &config::Config) -> anyhow::Result<()> {
    use hospital_store::audit::{export, verify_chain, AuditIndex, AuditQuery, ExportFormat};
    match cmd {
        AuditCommand::Verify { data_dir, chain } => {
            let store = app::open_data(cfg, data_dir.as_deref()).await?;
            let chains: Vec<String> = match chain {
                Some(c) => vec![c],
                None => store.audit_heads().await?.into_iter().map(|h| h.chain).collect(),
            };
            let mut broken = false;
            for chain in &chains {
                let r = verify_chain(&*store, chain).await?;
                match (&r.broken, &r.head) {
                    (None, Some(h)) => println!(
                        "chain {chain}: intact, {} entries, head seq {} hash {} at {}",
                        r.verified,
                        h.seq,
                        h.hash,
                        h.at.to_rfc3339()
                    ),
                    (None, None) => println!("chain {chain}: no entries"),
                    (Some((seq, why)), _) => {
                        broken = true;
                        println!(
                            "chain {chain}: BROKEN at seq {seq}: {why} ({} entries before it verified)",
                            r.verified
                        );
                    }
                }
            }
            if chains.is_empty() {
                println!("the audit log is empty");
            }
            if broken {
                std::process::exit(1);
            }
            Ok(())
        }
        AuditCommand::Export { data_dir, from, to, staff, action, account, format } => {
            let store = app::open_data(cfg, data_dir.as_deref()).await?;
            let to = to.unwrap_or_else(chrono::Utc::now);
            let from = from.unwrap_or(to - chrono::Duration::days(30));
            let index = match (staff, &action, account) {
                (Some(s), _, _) => AuditIndex::staff(s),
                (_, Some(a), _) => AuditIndex::Action(a.clone()),
                (_, _, Some(a)) => AuditIndex::Account(a),
                _ => AuditIndex::Time,
            };
            let format = if format == "csv" { ExportFormat::Csv } else { ExportFormat::JsonLines };
            let query = AuditQuery::new(index, from, to, 500);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let n = export(&*store, &query, format, &mut out).await?;
            eprintln!("exported {n} entries");
            Ok(())
        }
    }
}

async fn serve(cfg: config::Config) -> anyhow::Result<()> {
    hospital::memory::pretouch(cfg.pretouch_mib);
    let mut running = app::start(cfg).await?;
    let base = format!("{}://{}", running.scheme, running.addr);
    // Tests read this exact line to learn the port.
    println!("hospital listening on {base}");
    println!("  API description   {base}/api/openapi.json");
    println!("  departments       {base}/api/v1/departments");
    println!("  search doctors    {base}/api/v1/doctors?q=建国");
    println!("  health, metrics   {base}/healthz  {base}/metrics");
    if running.sandbox {
        println!("  SMS sandbox       {base}/sandbox/sms?phone=13800138000");
        println!("  demo staff        admin / admin-demo-2026 (POST /api/v1/auth/staff/login)");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::select! {
        r = running.wait() => r,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            running.stop().await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
