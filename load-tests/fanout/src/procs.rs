//! The processes under test and what the kernel says about them: the descriptor limit, resident
//! memory and CPU time from /proc, and starting the hospital server, the Node.js peer and Redis.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A process's CPU seconds (user and system, every thread), from /proc (one piece of code with
/// the release storm's).
pub use hospital_load_tests::procs::cpu_seconds;

/// Raises this process's descriptor limit (inherited by the servers it starts) as far as the hard
/// limit allows, towards `want`. Returns (soft limit now, hard limit).
pub fn raise_nofile(want: u64) -> (u64, u64) {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return (0, 0);
        }
        // Raising the hard limit needs CAP_SYS_RESOURCE; try, and fall back to the hard limit.
        if want > r.rlim_max {
            let up = libc::rlimit { rlim_cur: want, rlim_max: want };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &up) == 0 {
                return (want, want);
            }
        }
        let soft = want.min(r.rlim_max);
        let set = libc::rlimit { rlim_cur: soft, rlim_max: r.rlim_max };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &set) == 0 {
            (soft, r.rlim_max)
        } else {
            (r.rlim_cur, r.rlim_max)
        }
    }
}

/// A field of /proc/<pid>/status in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A server process started for the run; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub name: &'static str,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, sends its stderr (and stdout after the first line) to `log`, and waits for a
/// first stdout line starting with `prefix`; the rest of that line is the base URL.
fn start(mut cmd: Command, name: &'static str, prefix: &str, log: &Path) -> Result<Server> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    let logf = std::sync::Arc::new(std::sync::Mutex::new(
        std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?,
    ));
    let mut err = child.stderr.take().expect("piped");
    let l2 = logf.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = l2.lock().map(|mut f| f.write_all(&buf[..n]));
        }
    });
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for l in lines.map_while(Result::ok) {
            let _ = logf.lock().map(|mut f| writeln!(f, "{l}"));
        }
    });
    let line = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} did not print its address within 120 s; see {}", log.display());
        }
    };
    let Some(base) = line.strip_prefix(prefix) else {
        let _ = child.kill();
        bail!("{name}: unexpected first line {line:?}");
    };
    Ok(Server { child, base: base.trim().to_string(), name })
}

impl Server {
    /// Asks the process to stop (SIGTERM) and waits for it (killed after 30 s).
    pub fn stop(mut self) {
        // SAFETY: kill(2) with a pid this process started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A private `redis-server` on a free port (nothing saved): the nodes' shared sessions, event
/// logs and fan-out channel. `base` is its URL.
pub fn start_redis(log: &Path) -> Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--logfile")
        .arg(log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting redis-server (apt-get install redis-server)")?;
    let server = Server { child, base: format!("redis://127.0.0.1:{port}"), name: "redis" };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("redis-server did not listen on {port} within 10 s; see {}", log.display())
}

/// The hospital server, release build, on a free port with a fresh data directory and the per-IP
/// limits out of the way (every socket comes from a handful of loopback addresses). With `redis`,
/// one node of several sharing it (sessions, event logs and fan-out); its key vault is kept inside
/// the data directory so a copy of the directory is a whole node.
pub fn start_hospital(bin: &Path, data_dir: &Path, log: &Path, redis: Option<&str>) -> Result<Server> {
    let mut cmd = hospital_testkit::hospital_command(bin, &["--listen", "127.0.0.1:0"], data_dir);
    cmd.env("HOSPITAL_LOG", "warn")
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", "1000000")
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", "1000000")
        // Tens of thousands of sockets from this machine.
        .env("HOSPITAL_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_IP", "0")
        .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", "50");
    if let Some(url) = redis {
        cmd.env("REDIS_URL", url);
    }
    start(cmd, "hospital", "hospital listening on ", log)
}

/// The Node.js `ws` peer (`load-tests/node-ws/server.js`); installs its packages first if needed.
pub fn start_node(dir: &Path, log: &Path) -> Result<Server> {
    if !dir.join("node_modules/ws").exists() {
        let st = Command::new("npm")
            .arg("ci")
            .arg("--no-audit")
            .arg("--no-fund")
            .current_dir(dir)
            .status()
            .context("running npm ci in load-tests/node-ws (is npm installed?)")?;
        if !st.success() {
            bail!("npm ci failed in {}", dir.display());
        }
    }
    let mut cmd = Command::new("node");
    cmd.arg("server.js").current_dir(dir).env("PORT", "0");
    start(cmd, "node-ws", "node-ws listening on ", log)
}
