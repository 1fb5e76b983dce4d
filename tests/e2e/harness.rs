//! The real `hospital` binary on a free port with its own data directory, driven over real HTTP.
//! `TestServer::start` waits for the "hospital listening on ..." line (with a timeout, stderr in
//! the panic message on failure); dropping the server kills it. `kill_9` / `stop` hand the data
//! directory back so a test can start a new server on it.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

pub use hospital_testkit::RedisServer;

/// Where sessions, codes and counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store (no Redis).
    Embedded,
    /// A throwaway `redis-server` started for this test.
    Redis,
}

/// How to start a server.
#[derive(Default)]
pub struct Opts {
    /// Extra environment variables (`HOSPITAL_GATEWAY__...`).
    pub env: Vec<(String, String)>,
    /// Start a `redis-server` for this server and pass its URL as `REDIS_URL`.
    pub redis: bool,
    /// An explicit Redis URL (a server the test owns).
    pub redis_url: Option<String>,
    /// Reuse this data directory (a restart); a fresh one otherwise.
    pub data_dir: Option<TempDir>,
    /// Listen here (a restart that pages in a browser must find again); any free port otherwise.
    pub listen: Option<String>,
}

impl Opts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn backend(mut self, b: Backend) -> Self {
        self.redis = b == Backend::Redis;
        self
    }

    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Listens on `addr` (`127.0.0.1:<port>`).
    pub fn listen(mut self, addr: &str) -> Self {
        self.listen = Some(addr.to_string());
        self
    }

    pub fn data_dir(mut self, dir: TempDir) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Object storage in a real S3-compatible server (the tests' moto) instead of the data directory.
    pub fn s3(self, s3: &hospital_testkit::S3Server) -> Self {
        self.env("HOSPITAL_OBJECTS__BACKEND", "s3")
            .env("HOSPITAL_OBJECTS__S3__ENDPOINT", s3.endpoint())
            .env("HOSPITAL_OBJECTS__S3__BUCKET", &s3.bucket)
            .env("HOSPITAL_OBJECTS__S3__REGION", "us-east-1")
            .env("HOSPITAL_OBJECTS__S3__ACCESS_KEY_ID", "e2e-key")
            .env("HOSPITAL_OBJECTS__S3__SECRET_ACCESS_KEY", "e2e-secret")
            .env("HOSPITAL_OBJECTS__S3__PATH_STYLE", "true")
    }
}

/// A running `hospital` process.
pub struct TestServer {
    child: Option<Child>,
    pub base: String,
    data_dir: Option<TempDir>,
    stderr: Arc<Mutex<Vec<u8>>>,
    client: reqwest::Client,
    // Declared after `child`: the server is killed before its Redis goes away.
    _redis: Option<RedisServer>,
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings that put a server or an administrative command on the ScyllaDB backend of the
/// CQL test server at `uri` (keyspace `e2e`).
#[cfg(feature = "scylla")]
pub(crate) fn scylla_env(uri: &str) -> [(&'static str, String); 3] {
    [
        ("HOSPITAL_SCYLLA_URI", uri.to_string()),
        ("HOSPITAL_SCYLLA_KEYSPACE", "e2e".to_string()),
        ("HOSPITAL_SCYLLA_TEST_SERVER", "true".to_string()),
    ]
}

/// `E2E_ON_SCYLLA=1` with `--features scylla` runs every server of the suite on the
/// ScyllaDB backend: durable data (and, without Redis, sessions and codes) on a kassandra server
/// of its own, one per data directory, so a restart on the same directory finds its data and
/// takes its own node lease back (the node is named after the directory); the tests' CLI runs
/// on a directory (`create-staff`) use it too. Tests that open the embedded store's files
/// themselves fail in that mode by design.
#[cfg(feature = "scylla")]
pub(crate) fn on_scylla(data_dir: &std::path::Path, cmd: &mut Command) {
    if std::env::var_os("E2E_ON_SCYLLA").is_none() {
        return;
    }
    let file = data_dir.join("e2e-cql-server");
    let uri = std::fs::read_to_string(&file).unwrap_or_else(|_| {
        let uri = hospital_testkit::kassandra::KassandraServer::start().uri();
        std::fs::write(&file, &uri).expect("note the CQL server");
        uri
    });
    cmd.envs(scylla_env(&uri))
        .env("HOSPITAL_SCYLLA_CREATE_SCHEMA", "1")
        .env("HOSPITAL_SCYLLA_NODE_NAME", data_dir.display().to_string());
}

#[cfg(not(feature = "scylla"))]
pub(crate) fn on_scylla(_data_dir: &std::path::Path, _cmd: &mut Command) {}

/// The `hospital` binary with `args` on `data_dir` (its key vault inside, as the suite's servers
/// keep it), hermetic and quiet.
pub(crate) fn command(args: &[&str], data_dir: &std::path::Path) -> Command {
    let mut cmd = hospital_testkit::hospital_command(env!("CARGO_BIN_EXE_hospital"), args, data_dir);
    cmd.env("HOSPITAL_LOG", "warn");
    cmd
}

/// The administrative command `args` on `data_dir`, on the directory's CQL server with
/// `E2E_ON_SCYLLA` (as the servers of the suite are).
pub(crate) fn cli(args: &[&str], data_dir: &std::path::Path) -> Command {
    let mut cmd = command(args, data_dir);
    on_scylla(data_dir, &mut cmd);
    cmd
}

impl TestServer {
    pub async fn start(opts: Opts) -> TestServer {
        tokio::task::spawn_blocking(move || Self::start_blocking(opts)).await.expect("server start task")
    }

    fn start_blocking(opts: Opts) -> TestServer {
        let data_dir = opts.data_dir.unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
        let redis = opts.redis.then(RedisServer::start);
        let redis_url = opts.redis_url.or_else(|| redis.as_ref().map(RedisServer::url));

        // HOSPITAL_TEST_BIN runs the tests against another build (e.g. an older commit's binary,
        // to see that a test fails there).
        let bin = std::env::var("HOSPITAL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hospital").to_string());
        // The key vault inside the data directory, so it goes with it (a test that keeps them
        // apart sets its own `HOSPITAL_VAULT_DIR`).
        let listen = opts.listen.as_deref().unwrap_or("127.0.0.1:0");
        let mut cmd = hospital_testkit::hospital_command(bin, &["--listen", listen], data_dir.path());
        // Quiet logs (HOSPITAL_LOG is the filter, not a config key: the server must accept it).
        cmd.env("HOSPITAL_LOG", "warn,hospital=warn");
        if let Some(url) = &redis_url {
            cmd.env("REDIS_URL", url);
        }
        on_scylla(data_dir.path(), &mut cmd);
        // The suite books today's sessions (the demo's, and evening ones it makes) at whatever hour
        // it runs: a slot stays bookable for a day after its time (a session of an earlier day
        // never is), and a session's close job (no-shows) is due a day after its end, so a demo
        // session that ended an hour ago is not closed under a test that has just booked it. The
        // tests of the closing set their own.
        cmd.env("HOSPITAL_ACTORS__LATE_BOOKING_SECS", "86400");
        cmd.env("HOSPITAL_ACTORS__JOBS__SESSION_CLOSE_GRACE_SECS", "86400");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn the hospital binary");

        // stderr: kept for the panic message; drained so the server never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        // stdout: the first line carries the address; the rest is drained.
        let out = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });

        let fail = |child: &mut Child, why: String| -> ! {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            let err = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
            panic!("the hospital server did not start: {why}\n--- stderr ---\n{err}");
        };
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(l) => l,
            Err(e) => fail(&mut child, format!("no address line within {START_TIMEOUT:?} ({e})")),
        };
        let Some(base) = line.strip_prefix("hospital listening on ") else {
            fail(&mut child, format!("unexpected first line {line:?}"))
        };
        let base = base.trim().to_string();
        assert!(
            base.starts_with("http://127.0.0.1:") || base.starts_with("https://127.0.0.1:"),
            "address line: {line}"
        );
        // A TLS test server has a self-signed certificate the test made.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .danger_accept_invalid_certs(base.starts_with("https://"))
            .build()
            .expect("HTTP client");
        TestServer { child: Some(child), base, data_dir: Some(data_dir), stderr, client, _redis: redis }
    }

    /// The server's process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The server's stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// SIGKILL: no shutdown code runs. Returns the data directory for a restart.
    pub fn kill_9(mut self) -> TempDir {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9 the server");
            c.wait().expect("reap the server");
        }
        self.data_dir.take().expect("data dir")
    }

    /// SIGTERM and wait for a clean exit (killed after 20 s). Returns the data directory.
    pub fn stop(self) -> TempDir {
        self.stop_with_stderr().0
    }

    /// `stop`, with everything the server wrote to stderr.
    pub fn stop_with_stderr(mut self) -> (TempDir, String) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                match c.try_wait() {
                    Ok(Some(status)) => {
                        assert!(status.success(), "the server exited with {status}:\n{}", self.stderr());
                        break;
                    }
                    _ if std::time::Instant::now() > deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        panic!("the server did not stop on SIGTERM:\n{}", self.stderr());
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        let stderr = self.stderr();
        (self.data_dir.take().expect("data dir"), stderr)
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let mut rb = self.client.request(method.clone(), self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}\n--- server stderr ---\n{}", self.stderr()))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    /// A POST without a body (logout).
    pub async fn post_empty(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::POST, path, token, None).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::DELETE, path, token, None).await
    }

    /// GET, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        ok_json(self.get(path, token).await).await
    }

    /// Asks for a login code for `phone`; a cooldown (from an earlier send) is waited out. Returns
    /// the code, read from the SMS sandbox's outbox.
    pub async fn sms_code(&self, phone: &str) -> String {
        for _ in 0..5 {
            let r = self.post("/api/v1/auth/sms/send", None, json!({ "phone": phone })).await;
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(&r).expect("429 has Retry-After");
                let body: Value = r.json().await.expect("JSON");
                assert_eq!(body["error"]["code"], "sms_cooldown", "{body}");
                assert!(wait <= 5, "the tests run with short cooldowns: {wait}");
                tokio::time::sleep(Duration::from_millis(wait * 1000 + 100)).await;
                continue;
            }
            let body = ok_json(r).await;
            assert_eq!(body["sent"], true, "{body}");
            return self.last_code(phone).await;
        }
        panic!("could not send a code to {phone}");
    }

    /// The latest code in the SMS sandbox's outbox for `phone`.
    pub async fn last_code(&self, phone: &str) -> String {
        let out = self.get_json(&format!("/sandbox/sms?phone={phone}"), None).await;
        let last = out.as_array().and_then(|a| a.last()).unwrap_or_else(|| panic!("no SMS for {phone}: {out}"));
        let code = last["params"]["code"].as_str().unwrap_or_else(|| panic!("no code in {last}")).to_string();
        assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()), "code {code:?}");
        code
    }

    /// SMS login end to end; returns the whole login response.
    pub async fn login_full(&self, phone: &str, device: &str) -> Value {
        let code = self.sms_code(phone).await;
        let r =
            self.post("/api/v1/auth/sms/login", None, json!({ "phone": phone, "code": code, "device": device })).await;
        let body = ok_json(r).await;
        assert!(body["token"].as_str().is_some_and(|t| t.starts_with("hsp_")), "{body}");
        assert_eq!(body["token_type"], "Bearer");
        body
    }

    /// SMS login; returns the bearer token.
    pub async fn login(&self, phone: &str) -> String {
        self.login_full(phone, "e2e").await["token"].as_str().expect("token").to_string()
    }

    /// Staff login; returns the bearer token.
    pub async fn staff_login(&self, username: &str, password: &str) -> String {
        let r =
            self.post("/api/v1/auth/staff/login", None, json!({ "username": username, "password": password })).await;
        let body = ok_json(r).await;
        assert_eq!(body["staff"]["username"], username, "{body}");
        body["token"].as_str().expect("token").to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `Retry-After` header in whole seconds, if present.
pub fn retry_after(r: &Response) -> Option<u64> {
    r.headers().get(reqwest::header::RETRY_AFTER).map(|v| {
        v.to_str().ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("Retry-After is not seconds: {v:?}"))
    })
}

/// Asserts a 2xx status and returns the JSON body.
pub async fn ok_json(r: Response) -> Value {
    let status = r.status();
    let url = r.url().clone();
    let text = r.text().await.expect("body");
    assert!(status.is_success(), "{url}: expected success, got {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(r: Response, status: u16) -> Value {
    let got = r.status();
    let url = r.url().clone();
    let text = r.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: not JSON ({e}): {text}"))
}

/// Checks the one error shape of the API: the status, `{"error":{"code","message"}}` with
/// exactly those keys (plus `field` for validation errors), a JSON content type, and the code.
/// Returns the error object.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status();
    let url = r.url().clone();
    let ctype =
        r.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = r.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{url}: wrong status; body {text}");
    assert!(ctype.starts_with("application/json"), "{url}: error content type {ctype:?}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: error is not JSON ({e}): {text}"));
    let top = body.as_object().unwrap_or_else(|| panic!("{url}: error body is not an object: {text}"));
    assert_eq!(top.keys().collect::<Vec<_>>(), ["error"], "{url}: top-level keys: {text}");
    let err = top["error"].as_object().unwrap_or_else(|| panic!("{url}: error is not an object: {text}"));
    let mut keys: Vec<&str> = err.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert!(keys == ["code", "message"] || keys == ["code", "field", "message"], "{url}: error keys {keys:?}: {text}");
    assert_eq!(err["code"], code, "{url}: wrong error code: {text}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(!message.trim().is_empty(), "{url}: empty message: {text}");
    if let Some(f) = err.get("field") {
        assert!(f.as_str().is_some_and(|f| !f.is_empty()), "{url}: field must be a name: {text}");
    }
    top["error"].clone()
}

/// A unique, valid mainland mobile number for a test (`139` + 8 digits).
pub fn phone(n: u32) -> String {
    format!("139{:08}", n)
}

/// An HTTP/1.1 answer read off a raw socket: what the server really wrote, below any client
/// library that might tidy it up.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Asserts the one error shape (as `assert_error` does for reqwest responses) and returns
    /// the error object.
    pub fn assert_error(&self, status: u16, code: &str) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, status, "status; body {text}");
        let ctype = self.header("content-type").unwrap_or_default();
        assert!(ctype.starts_with("application/json"), "content type {ctype:?}: {text}");
        let body: Value = serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
        let err = body.get("error").and_then(Value::as_object).unwrap_or_else(|| panic!("no error object: {text}"));
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "top-level keys: {text}");
        assert_eq!(err.get("code").and_then(Value::as_str), Some(code), "code: {text}");
        assert!(err.get("message").and_then(Value::as_str).is_some_and(|m| !m.trim().is_empty()), "message: {text}");
        body["error"].clone()
    }
}

/// Parses one response from raw bytes (a `content-length` body, or everything to the end).
pub fn parse_raw_response(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match len {
        Some(n) => rest.get(..n)?.to_vec(),
        None => rest.to_vec(),
    };
    Some(RawResponse { status, headers, body })
}

impl TestServer {
    /// The server's `host:port`.
    pub fn addr(&self) -> std::net::SocketAddr {
        let hostport = self.base.split("://").nth(1).expect("scheme://host:port");
        hostport.parse().expect("host:port")
    }

    /// Writes `bytes` on a fresh connection, then reads until the server closes it or `wait`
    /// passes. Returns what was read and whether the server closed the connection.
    pub async fn raw_exchange(&self, bytes: &[u8], wait: Duration) -> (Vec<u8>, bool) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(self.addr()).await.expect("connect");
        // The server may answer and close before it has read everything (a refused head).
        let _ = sock.write_all(bytes).await;
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Sends a raw request (the server is expected to answer and close) and parses the answer.
    pub async fn raw_request(&self, bytes: &[u8]) -> RawResponse {
        let (out, _) = self.raw_exchange(bytes, Duration::from_secs(15)).await;
        parse_raw_response(&out).unwrap_or_else(|| {
            panic!("no HTTP answer: {:?}\n--- server stderr ---\n{}", String::from_utf8_lossy(&out), self.stderr())
        })
    }
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
