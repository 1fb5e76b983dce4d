//! Test support shared by every crate's tests: a real `redis-server` started from the installed
//! binary on a free port, a real S3-compatible server (moto's, `S3Server`), and free-port
//! helpers. Nothing here fakes a service.

#[cfg(feature = "kassandra")]
pub mod kassandra;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hospital binary `bin` with `args` (a server's or one of its commands') on the data
/// directory `dir` (after `args`: a command takes `--data-dir` after its own name):
/// - with nothing from the developer's environment that would configure it (`HOSPITAL_*`,
///   `REDIS_URL`): a test or load test sets what it means to, and an exported
///   `HOSPITAL_DATA_DIR` or `REDIS_URL` never leaks in;
/// - with its key vault inside `dir` (`HOSPITAL_VAULT_DIR`) instead of beside it (the server's
///   default, `<dir>.vault`): the directory is then the whole node, and a temporary one leaves
///   nothing behind when it goes.
pub fn hospital_command(bin: impl AsRef<std::ffi::OsStr>, args: &[&str], dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if k.starts_with("HOSPITAL_") || k == "REDIS_URL" {
                cmd.env_remove(k);
            }
        }
    }
    cmd.arg("--data-dir").arg(dir).env("HOSPITAL_VAULT_DIR", dir.join("vault"));
    cmd
}

/// An IANA zone where it is now between noon and one in the afternoon, and its offset from UTC
/// in hours: a test that needs a session of today with a segment that is over and one still to
/// come (10:00-12:00 and 12:00-14:00 there) has them whatever the hour it runs at. `Etc/GMT-N`
/// is UTC+N (the names have the sign the other way round).
pub fn zone_near_noon() -> (String, i64) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let utc_hour = ((secs / 3600) % 24) as i64;
    let offset = 12 - utc_hour;
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o => format!("Etc/GMT{:+}", -o),
    };
    (name, offset)
}

/// A port nobody is listening on right now (bind to :0, read it, let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind :0").local_addr().expect("local addr").port()
}

/// A throwaway redis-server, killed (and its directory removed) on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` (from PATH, or `REDIS_SERVER_BIN`) on a free port with persistence
    /// off, and waits until it answers PING. Panics with a clear message if the binary is
    /// missing: the README's test command installs it.
    pub fn start() -> Self {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin}: {e} (install it: apt-get install redis-server)"));
            let mut server = RedisServer { child, port, _dir: tempfile::tempdir().expect("tempdir") };
            if server.wait_ready(Duration::from_secs(10)) {
                server._dir = dir;
                return server;
            }
            // Lost a race for the port: try another.
            let _ = server.child.kill();
        }
        panic!("redis-server did not start");
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        use std::io::{Read, Write};
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf).map(|n| buf[..n].starts_with(b"+PONG")).unwrap_or(false)
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway S3-compatible server: moto in server mode (`pip install 'moto[server]'`, which
/// `scripts/test.sh` does), on a free port, with one bucket created. Killed on drop.
pub struct S3Server {
    child: Child,
    pub port: u16,
    pub bucket: String,
}

impl S3Server {
    /// Starts `moto_server` (from PATH, or `MOTO_SERVER_BIN`), waits until it answers, and
    /// creates `bucket`. Panics with a clear message if moto is missing.
    pub fn start(bucket: &str) -> Self {
        let bin = std::env::var("MOTO_SERVER_BIN").unwrap_or_else(|_| "moto_server".into());
        for _ in 0..5 {
            let port = free_port();
            let args = ["-H", "127.0.0.1", "-p", &port.to_string()];
            let quiet = |c: &mut Command| {
                c.stdout(Stdio::null()).stderr(Stdio::null());
            };
            let mut cmd = Command::new(&bin);
            cmd.args(args);
            quiet(&mut cmd);
            // Without the console script on PATH, the module itself (`python3 -m moto.server`).
            let child = cmd.spawn().or_else(|e| {
                let mut py = Command::new("python3");
                py.args(["-m", "moto.server"]).args(args);
                quiet(&mut py);
                py.spawn().map_err(|_| e)
            });
            let child =
                child.unwrap_or_else(|e| panic!("cannot start {bin}: {e} (install it: pip install 'moto[server]')"));
            let mut server = S3Server { child, port, bucket: bucket.to_string() };
            if server.wait_ready(Duration::from_secs(30)) {
                let status = server.http("PUT", &format!("/{bucket}"));
                assert!(status == Some(200), "moto did not create bucket {bucket}: {status:?}");
                return server;
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        panic!("moto_server did not start");
    }

    /// The endpoint to point an S3 client at (path-style addressing, plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.http("GET", "/").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// One unsigned HTTP/1.1 request with no body (moto accepts them); the status code.
    fn http(&self, method: &str, path: &str) -> Option<u16> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
