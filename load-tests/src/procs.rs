//! Processes the command starts, each stopped when its guard is dropped (on success, on error and
//! on Ctrl-C alike): the hospital server, the PostgreSQL cluster, the Redis servers and the peer
//! services. Also: free ports, the descriptor limit, and installing Debian packages if missing.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The workspace root (this crate's parent).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("load-tests has a parent").to_path_buf()
}

/// `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the hospital server (`production`, the profile a hospital runs, or debug) and returns
/// the binary's path.
pub fn build_hospital(production: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()).args(["build", "--bin", "hospital"]);
    if production {
        cmd.args(["--profile", "production"]);
    }
    let status = cmd.status().context("running cargo build --bin hospital")?;
    if !status.success() {
        bail!("cargo build --bin hospital failed: {status}");
    }
    let bin = target_dir().join(if production { "production" } else { "debug" }).join("hospital");
    if !bin.exists() {
        bail!("built, but {} is missing", bin.display());
    }
    Ok(bin)
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it right away).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Raises this process' descriptor limit to its hard limit (children inherit it). Returns it.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            return r.rlim_cur;
        }
    }
    0
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Installs Debian packages with apt-get when `probe` says they are missing.
pub fn ensure_debian(packages: &[&str], present: impl Fn() -> bool) -> anyhow::Result<()> {
    if present() {
        return Ok(());
    }
    eprintln!("installing {} (Debian packages)...", packages.join(" "));
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut all: Vec<&str> = sudo.clone();
        all.extend_from_slice(args);
        let st = Command::new(all[0])
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .with_context(|| format!("running {}", all.join(" ")))?;
        if !st.success() {
            bail!("{} failed: {st}", all.join(" "));
        }
        Ok(())
    };
    run(&["apt-get", "update", "-qq"])?;
    let mut args = vec!["apt-get", "install", "-y", "-qq"];
    args.extend_from_slice(packages);
    run(&args)?;
    if !present() {
        bail!("{} installed, but still not found", packages.join(" "));
    }
    Ok(())
}

/// A child process killed (and reaped) on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = std::time::Instant::now() + grace;
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// Spawns `cmd` with stdout piped and stderr to `log`, and waits (up to `timeout`) for a stdout
/// line starting with `prefix`; returns the process and the rest of that line.
pub fn spawn_announcing(
    name: &str,
    mut cmd: Command,
    prefix: &str,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<(Proc, String)> {
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log_file);
    let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    let out = child.stdout.take().expect("stdout piped");
    let mut proc = Proc { name: name.to_string(), child: Some(child) };
    let (tx, rx) = mpsc::channel::<String>();
    let prefix_owned = prefix.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if !sent && line.starts_with(&prefix_owned) {
                let _ = tx.send(line[prefix_owned.len()..].trim().to_string());
                sent = true;
            }
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(rest) => Ok((proc, rest)),
        Err(_) => {
            proc.stop(Duration::from_secs(1));
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: String =
                tail.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            bail!("{name} did not announce \"{prefix}\" within {timeout:?}; its log ({}):\n{tail}", log.display())
        }
    }
}

/// Parses `http://127.0.0.1:PORT` into a socket address.
pub fn addr_of(base: &str) -> anyhow::Result<SocketAddr> {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    hostport.parse().with_context(|| format!("not an address: {base}"))
}

/// The hospital server, release or debug, on a free port with a fresh data directory.
pub struct HospitalServer {
    pub proc: Proc,
    pub base: String,
    pub addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl HospitalServer {
    /// With `pretouch_mib` (0: the server's default) as the server's `pretouch_mib`.
    pub fn start(bin: &Path, log: &Path, pretouch_mib: usize) -> anyhow::Result<HospitalServer> {
        let data = tempfile::Builder::new().prefix("hospital-load-data-").tempdir()?;
        let mut cmd = hospital_testkit::hospital_command(bin, &["--listen", "127.0.0.1:0"], data.path());
        cmd.env("HOSPITAL_LOG", "warn")
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", "10000000")
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", "10000000")
            // Every simulated patient connects from this machine.
            .env("HOSPITAL_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_IP", "0")
            .env("HOSPITAL_ACTORS__WEEKLY_CAP", "1000")
            .env("HOSPITAL_PRETOUCH_MIB", pretouch_mib.to_string());
        let (proc, base) = spawn_announcing("hospital", cmd, "hospital listening on ", log, Duration::from_secs(120))?;
        let addr = addr_of(&base)?;
        Ok(HospitalServer { proc, base, addr, _data: data })
    }
}

/// Spawns `cmd` with stdout and stderr to `log`.
pub fn spawn_logged(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<(Proc, String)> {
    let f = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(f.try_clone()?).stderr(f);
    let child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    Ok((Proc { name: name.to_string(), child: Some(child) }, String::new()))
}

/// A process's CPU seconds so far: user and system time of all its threads, from /proc (0 if
/// it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may hold spaces: count fields after the last ')'.
    let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else { return 0.0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let ticks: u64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0u64) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0u64);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz
}
