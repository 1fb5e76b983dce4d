//! The conventional designs the hospital server is compared with, each behind a small axum
//! service answering the same request (`POST /api/v1/appointments` with a bearer token and
//! `{slot_id, patient_id}`):
//!
//! - PostgreSQL: the token is looked up in a table (as its SHA-256, as a real service stores it),
//!   then one transaction reserves the place with a conditional `UPDATE ... WHERE taken < quota
//!   RETURNING` and inserts the booking; `synchronous_commit = on`, `fsync = on`.
//! - Redis: one Lua script (the usual flash-sale design): the token with `GET`, the patient's
//!   owner, `DECR` if positive and `SADD` of the booking, atomically.
//!
//! Also here: the private PostgreSQL cluster and Redis servers the command starts and stops.

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::procs::{self, Proc};
use crate::storm::Prepared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookRequest {
    slot_id: String,
    patient_id: String,
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": code } }))).into_response()
}

fn bearer_hash(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?;
    Some(hex::encode(Sha256::digest(t.as_bytes())))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A listener with the same deep backlog as the hospital server's.
fn listener(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(4096)?;
    Ok(tokio::net::TcpListener::from_std(sock.into())?)
}

async fn serve(router: Router) -> anyhow::Result<()> {
    let l = listener("127.0.0.1:0".parse()?)?;
    println!("peer listening on http://{}", l.local_addr()?);
    axum::serve(l, router).await?;
    Ok(())
}

// ---------------------------------------------------------------- PostgreSQL

pub const PG_SCHEMA: &str = "
CREATE TABLE tokens (token_hash text PRIMARY KEY, account_id bigint NOT NULL);
CREATE TABLE patients (id text PRIMARY KEY, account_id bigint NOT NULL);
CREATE TABLE slots (id text PRIMARY KEY, quota int NOT NULL, taken int NOT NULL DEFAULT 0 CHECK (taken <= quota));
CREATE TABLE bookings (
    id bigserial PRIMARY KEY,
    slot_id text NOT NULL REFERENCES slots (id),
    patient_id text NOT NULL REFERENCES patients (id),
    place int NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (slot_id, place),
    UNIQUE (slot_id, patient_id)
);";

/// The PostgreSQL booking service (run in its own process: `hospital-load peer pg`).
pub async fn serve_pg(db_url: &str, pool_size: usize) -> anyhow::Result<()> {
    let cfg: tokio_postgres::Config = db_url.parse()?;
    let mgr = deadpool_postgres::Manager::from_config(
        cfg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
    );
    let pool = deadpool_postgres::Pool::builder(mgr).max_size(pool_size).build()?;
    // Open the whole pool now, as a long-running service would have.
    let warm: Vec<_> = futures::future::join_all((0..pool_size).map(|_| pool.get())).await;
    for c in warm {
        let _conn = c.context("connecting to PostgreSQL")?;
    }
    serve(Router::new().route("/api/v1/appointments", post(pg_book)).with_state(pool)).await
}

async fn pg_book(State(pool): State<deadpool_postgres::Pool>, headers: HeaderMap, body: Json<BookRequest>) -> Response {
    match pg_book_inner(&pool, &headers, &body).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pg peer: {e:#}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

async fn pg_book_inner(
    pool: &deadpool_postgres::Pool,
    headers: &HeaderMap,
    req: &BookRequest,
) -> anyhow::Result<Response> {
    let Some(hash) = bearer_hash(headers) else { return Ok(error(StatusCode::UNAUTHORIZED, "invalid_token")) };
    let mut client = pool.get().await?;
    let auth = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM patients p WHERE p.id = $2 AND p.account_id = t.account_id) \
             FROM tokens t WHERE t.token_hash = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&auth, &[&hash, &req.patient_id]).await? else {
        return Ok(error(StatusCode::UNAUTHORIZED, "invalid_token"));
    };
    if !row.get::<_, bool>(0) {
        return Ok(error(StatusCode::NOT_FOUND, "not_found"));
    }
    let reserve = client
        .prepare_cached("UPDATE slots SET taken = taken + 1 WHERE id = $1 AND taken < quota RETURNING taken")
        .await?;
    let insert = client
        .prepare_cached("INSERT INTO bookings (slot_id, patient_id, place) VALUES ($1, $2, $3) RETURNING id")
        .await?;
    let tx = client.transaction().await?;
    let Some(r) = tx.query_opt(&reserve, &[&req.slot_id]).await? else {
        tx.rollback().await?;
        return Ok(error(StatusCode::CONFLICT, "sold_out"));
    };
    let place: i32 = r.get(0);
    let id: i64 = match tx.query_one(&insert, &[&req.slot_id, &req.patient_id, &place]).await {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            tx.rollback().await?;
            return Ok(error(StatusCode::CONFLICT, "already_booked"));
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    let b = json!({ "booking": { "id": id, "slot_id": req.slot_id, "patient_id": req.patient_id, "place": place } });
    Ok((StatusCode::CREATED, Json(b)).into_response())
}

/// A private PostgreSQL cluster in a temp dir on a free port (never the system service); run as
/// the `postgres` user when we are root. `pg_ctl stop` on drop.
pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
}

fn pg_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

impl PgCluster {
    pub fn start(log: &Path) -> anyhow::Result<PgCluster> {
        procs::ensure_debian(&["postgresql"], || pg_bin_dir().is_some())?;
        let bin = pg_bin_dir().context("PostgreSQL's binaries")?;
        let dir = tempfile::Builder::new().prefix("hospital-load-pg-").tempdir()?;
        let as_postgres = procs::is_root();
        if as_postgres {
            let st = Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()).status()?;
            if !st.success() {
                bail!("chown of {} to postgres failed", dir.path().display());
            }
        }
        let port = procs::free_port()?;
        let c = PgCluster { port, bin, dir, as_postgres };
        let data = c.dir.path().join("data");
        c.run("initdb", &["-D", p(&data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions"])?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on \
             -c max_connections=200 -c shared_buffers=256MB",
            c.dir.path().display()
        );
        let logfile = c.dir.path().join("postgres.log");
        c.run("pg_ctl", &["-D", p(&data), "-o", &opts, "-l", p(&logfile), "-w", "-t", "60", "start"]).map_err(|e| {
            let log = std::fs::read_to_string(&logfile).unwrap_or_default();
            anyhow::anyhow!("{e}\n{log}")
        })?;
        let _ = std::fs::write(log, format!("PostgreSQL cluster in {} on port {port}\n", data.display()));
        Ok(c)
    }

    fn run(&self, tool: &str, args: &[&str]) -> anyhow::Result<()> {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            bail!("{tool} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.port)
    }

    pub fn stop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self.run("pg_ctl", &["-D", p(&data), "-m", "fast", "-w", "stop"]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Creates the tables and loads the same patients, tokens and slots as the hospital storm.
pub async fn seed_pg(url: &str, prep: &Prepared, quota: u32) -> anyhow::Result<()> {
    let c = pg_connect(url).await?;
    c.batch_execute(PG_SCHEMA).await?;
    let hashes: Vec<String> = prep.people.iter().map(|x| token_hash(&x.token)).collect();
    let accounts: Vec<i64> = (0..prep.people.len() as i64).collect();
    let patients: Vec<String> = prep.people.iter().map(|x| x.patient_id.clone()).collect();
    c.execute("INSERT INTO tokens SELECT * FROM unnest($1::text[], $2::bigint[])", &[&hashes, &accounts]).await?;
    c.execute("INSERT INTO patients SELECT * FROM unnest($1::text[], $2::bigint[])", &[&patients, &accounts]).await?;
    for t in &prep.targets {
        c.execute("INSERT INTO slots (id, quota) VALUES ($1, $2)", &[&t.slot_id, &(quota as i32)]).await?;
    }
    c.batch_execute("VACUUM ANALYZE").await?;
    c.batch_execute("CHECKPOINT").await?;
    Ok(())
}

/// Per slot: (bookings, distinct places, distinct patients, the counter).
pub async fn readback_pg(url: &str) -> anyhow::Result<Vec<(String, i64, i64, i64, i32)>> {
    let c = pg_connect(url).await?;
    let rows = c
        .query(
            "SELECT s.id, count(b.id), count(DISTINCT b.place), count(DISTINCT b.patient_id), s.taken \
             FROM slots s LEFT JOIN bookings b ON b.slot_id = s.id GROUP BY s.id, s.taken ORDER BY s.id",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
}

// ---------------------------------------------------------------- Redis

/// KEYS: token, the patient's owner, the slot's places left, its quota, its bookings (a set).
/// ARGV: the patient. Returns the place (> 0), 0 sold out, -1 bad token, -2 not the caller's
/// patient, -3 already booked, -4 no such slot.
pub const LUA_BOOK: &str = r#"
local account = redis.call('GET', KEYS[1])
if not account then return -1 end
if redis.call('GET', KEYS[2]) ~= account then return -2 end
local left = redis.call('GET', KEYS[3])
if not left then return -4 end
left = tonumber(left)
if left <= 0 then return 0 end
if redis.call('SISMEMBER', KEYS[5], ARGV[1]) == 1 then return -3 end
redis.call('DECR', KEYS[3])
redis.call('SADD', KEYS[5], ARGV[1])
return tonumber(redis.call('GET', KEYS[4])) - left + 1
"#;

#[derive(Clone)]
struct RedisPeer {
    conn: redis::aio::MultiplexedConnection,
    script: std::sync::Arc<redis::Script>,
}

/// The Redis booking service (its own process: `hospital-load peer redis`).
pub async fn serve_redis(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    // No response timeout: the client's default (500 ms) turned a burst's answers that waited
    // behind thousands of scripts and `appendfsync always` into errors (1,148 of 10,000 in a
    // storm of 2026-12-02), where the hospital's side of the same storm waits as long as it takes.
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let conn = client.get_multiplexed_async_connection_with_config(&config).await?;
    let state = RedisPeer { conn, script: std::sync::Arc::new(redis::Script::new(LUA_BOOK)) };
    serve(Router::new().route("/api/v1/appointments", post(redis_book)).with_state(state)).await
}

async fn redis_book(State(mut s): State<RedisPeer>, headers: HeaderMap, Json(req): Json<BookRequest>) -> Response {
    let Some(hash) = bearer_hash(&headers) else { return error(StatusCode::UNAUTHORIZED, "invalid_token") };
    let r: redis::RedisResult<i64> = s
        .script
        .key(format!("tok:{hash}"))
        .key(format!("pat:{}", req.patient_id))
        .key(format!("slot:{}:left", req.slot_id))
        .key(format!("slot:{}:quota", req.slot_id))
        .key(format!("slot:{}:booked", req.slot_id))
        .arg(&req.patient_id)
        .invoke_async(&mut s.conn)
        .await;
    match r {
        Ok(place) if place > 0 => {
            let b = json!({ "booking": { "slot_id": req.slot_id, "patient_id": req.patient_id, "place": place } });
            (StatusCode::CREATED, Json(b)).into_response()
        }
        Ok(0) => error(StatusCode::CONFLICT, "sold_out"),
        Ok(-1) => error(StatusCode::UNAUTHORIZED, "invalid_token"),
        Ok(-3) => error(StatusCode::CONFLICT, "already_booked"),
        Ok(_) => error(StatusCode::NOT_FOUND, "not_found"),
        Err(e) => {
            eprintln!("redis peer: {e}");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

/// A `redis-server` on a free port in a temp dir: Redis' defaults, or durable (`appendonly yes`,
/// `appendfsync always`).
pub struct RedisServer {
    pub port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start(durable: bool, log: &Path) -> anyhow::Result<RedisServer> {
        procs::ensure_debian(&["redis-server"], || which("redis-server"))?;
        let dir = tempfile::Builder::new().prefix("hospital-load-redis-").tempdir()?;
        let port = procs::free_port()?;
        let (proc, _) = Self::spawn_plain(durable, port, dir.path(), log)?;
        // Wait until it answers.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!("redis-server did not listen on {port}; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(RedisServer { port, _proc: proc, _dir: dir })
    }

    fn spawn_plain(durable: bool, port: u16, dir: &Path, log: &Path) -> anyhow::Result<(Proc, String)> {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--daemonize", "no"]).arg("--dir").arg(dir);
        if durable {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        }
        procs::spawn_logged("redis-server", cmd, log)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file())).unwrap_or(false)
}

/// Loads the same tokens, patients and slots as the hospital storm.
pub async fn seed_redis(url: &str, prep: &Prepared, quota: u32) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    for (chunk_no, chunk) in prep.people.chunks(1000).enumerate() {
        let mut pipe = redis::pipe();
        for (i, x) in chunk.iter().enumerate() {
            let account = chunk_no * 1000 + i;
            pipe.set(format!("tok:{}", token_hash(&x.token)), account).ignore();
            pipe.set(format!("pat:{}", x.patient_id), account).ignore();
        }
        pipe.query_async::<()>(&mut c).await?;
    }
    for t in &prep.targets {
        let mut pipe = redis::pipe();
        pipe.set(format!("slot:{}:left", t.slot_id), quota).ignore();
        pipe.set(format!("slot:{}:quota", t.slot_id), quota).ignore();
        pipe.query_async::<()>(&mut c).await?;
    }
    Ok(())
}

/// Per slot: (bookings in the set, places left).
pub async fn readback_redis(url: &str, prep: &Prepared) -> anyhow::Result<Vec<(String, i64, i64)>> {
    let client = redis::Client::open(url)?;
    let mut c = client.get_multiplexed_async_connection().await?;
    let mut out = Vec::new();
    for t in &prep.targets {
        let n: i64 = redis::cmd("SCARD").arg(format!("slot:{}:booked", t.slot_id)).query_async(&mut c).await?;
        let left: i64 = redis::cmd("GET").arg(format!("slot:{}:left", t.slot_id)).query_async(&mut c).await?;
        out.push((t.slot_id.clone(), n, left));
    }
    Ok(out)
}
