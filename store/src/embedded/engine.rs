//! The embedded engine: redb in a data directory, with group commit. One writer thread owns all
//! writes; callers hand it closures, it runs every closure that is waiting in one redb
//! transaction, commits once with an fsync, and only then answers each caller. So an acknowledged
//! write survives kill -9, and a thousand concurrent writers cost one sync, not a thousand.
//! Readers use redb's MVCC snapshots and never wait for the writer.

use redb::{Database, Durability, ReadTransaction, ReadableTable, TableHandle, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

use super::keys::Key;
use super::tables::{self, Def};
use crate::StoreError;

type Result<T> = std::result::Result<T, StoreError>;
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> Completion + Send>;

/// Most closures a single transaction takes, so one huge burst does not delay its first callers
/// behind an enormous commit.
const MAX_BATCH: usize = 2048;
/// How many expired rows one sweep deletes at most.
const SWEEP_LIMIT: usize = 5000;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Value layout: 8 bytes of expiry (unix ms, big-endian, 0 = never), then the payload.
fn encode_value(payload: &[u8], expires_ms: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&expires_ms.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The payload and expiry of a stored value, or None if it has expired.
fn decode_value(raw: &[u8], now: u64) -> Option<(u64, &[u8])> {
    if raw.len() < 8 {
        return None;
    }
    let exp = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    (exp == 0 || exp > now).then_some((exp, &raw[8..]))
}

fn ttl_index_key(expires_ms: u64, table: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Key::new().u64(expires_ms).str(table).into_bytes();
    k.extend_from_slice(key);
    k
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("rows serialise")
}

pub(crate) fn from_json<T: DeserializeOwned>(table: Def, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|source| StoreError::Decode { table: table_name(table), source })
}

fn table_name(t: Def) -> &'static str {
    tables::ALL.iter().find(|d| d.name() == t.name()).map(|d| d.name()).unwrap_or("?")
}

/// A live value: its expiry (unix ms, 0 = never) and payload.
pub type Live = (u64, Vec<u8>);

/// Reads shared by read snapshots and the write transaction.
pub trait Reader {
    fn now(&self) -> u64;
    /// The live value's payload and expiry.
    fn get_raw(&self, table: Def, key: &[u8]) -> Result<Option<Live>>;
    /// Every live row whose key starts with `prefix`, in key order.
    fn scan_raw(&self, table: Def, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// `get_raw` of each key, in order.
    fn get_many_raw(&self, table: Def, keys: &[Key]) -> Result<Vec<Option<Live>>> {
        keys.iter().map(|k| self.get_raw(table, k.bytes())).collect()
    }

    fn get<T: DeserializeOwned>(&self, table: Def, key: &Key) -> Result<Option<T>> {
        self.get_raw(table, key.bytes())?.map(|(_, v)| from_json(table, &v)).transpose()
    }
    fn scan<T: DeserializeOwned>(&self, table: Def, prefix: &Key) -> Result<Vec<T>> {
        self.scan_raw(table, prefix.bytes())?.into_iter().map(|(_, v)| from_json(table, &v)).collect()
    }
}

fn get_from<T: ReadableTable<&'static [u8], &'static [u8]>>(t: &T, key: &[u8], now: u64) -> Result<Option<Live>> {
    Ok(t.get(key)?.and_then(|g| decode_value(g.value(), now).map(|(e, p)| (e, p.to_vec()))))
}

fn scan_from<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    prefix: &[u8],
    now: u64,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for row in t.range(prefix..)? {
        let (k, v) = row?;
        if !k.value().starts_with(prefix) {
            break;
        }
        if let Some((_, p)) = decode_value(v.value(), now) {
            out.push((k.value().to_vec(), p.to_vec()));
        }
    }
    Ok(out)
}

/// A row exactly as stored: key, expiry (unix ms, 0 = never), payload.
pub type StoredRow = (Vec<u8>, u64, Vec<u8>);

/// A consistent read snapshot.
pub struct ReadCtx {
    txn: ReadTransaction,
    now: u64,
}

impl ReadCtx {
    /// Up to `limit` live rows with `prefix <= key < before`, highest key first (`before` must
    /// start with `prefix`): a newest-first page of a partition without reading all of it.
    pub fn scan_back(&self, table: Def, prefix: &[u8], before: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.range(prefix..before)?.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            if let Some((_, p)) = decode_value(v.value(), self.now) {
                out.push((k.value().to_vec(), p.to_vec()));
            }
        }
        Ok(out)
    }

    /// Up to `limit` live rows with `start <= key < end`, in key order (a clustering range of
    /// one partition, or a walk over a whole table page by page).
    pub fn range(&self, table: Def, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.range(start..end)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            if let Some((_, p)) = decode_value(v.value(), self.now) {
                out.push((k.value().to_vec(), p.to_vec()));
            }
        }
        Ok(out)
    }

    /// Up to `limit` live rows with `start <= key` under `prefix`, in key order (`start` must
    /// start with `prefix`): a page of a partition from a clustering key on.
    pub fn scan_from(&self, table: Def, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.range(start..)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            if let Some((_, p)) = decode_value(v.value(), self.now) {
                out.push((k.value().to_vec(), p.to_vec()));
            }
        }
        Ok(out)
    }

    /// Every row under `prefix` exactly as stored: key, expiry (unix ms, 0 = never) and payload,
    /// expired or not. For checks that must see every stored byte (the audit chain's verify).
    pub fn scan_stored(&self, table: Def, prefix: &[u8]) -> Result<Vec<StoredRow>> {
        let t = self.txn.open_table(table)?;
        let mut out = Vec::new();
        for row in t.range(prefix..)? {
            let (k, v) = row?;
            if !k.value().starts_with(prefix) {
                break;
            }
            let raw = v.value();
            let exp = raw.get(..8).map_or(u64::MAX, |h| u64::from_be_bytes(h.try_into().expect("8 bytes")));
            out.push((k.value().to_vec(), exp, raw.get(8..).unwrap_or(&[]).to_vec()));
        }
        Ok(out)
    }
}

impl Reader for ReadCtx {
    fn now(&self) -> u64 {
        self.now
    }
    fn get_raw(&self, table: Def, key: &[u8]) -> Result<Option<Live>> {
        get_from(&self.txn.open_table(table)?, key, self.now)
    }
    fn scan_raw(&self, table: Def, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        scan_from(&self.txn.open_table(table)?, prefix, self.now)
    }
    /// Opens the table once for all the keys (an index partition's rows looked up).
    fn get_many_raw(&self, table: Def, keys: &[Key]) -> Result<Vec<Option<Live>>> {
        let t = self.txn.open_table(table)?;
        keys.iter().map(|k| get_from(&t, k.bytes(), self.now)).collect()
    }
}

enum Op {
    Put { table: Def, key: Vec<u8>, value: Vec<u8>, expires: u64 },
    Delete { table: Def, key: Vec<u8> },
}

type Rows<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// What a write closure sees: reads of the transaction so far (every earlier closure in the batch
/// included) and buffered writes. A closure's writes are applied only if it returns Ok, so a
/// closure that fails half-way leaves nothing behind.
///
/// One context serves a whole batch: the tables it opens stay open until the commit, because
/// opening one walks the table tree and closing it writes its root back, and a batch's closures
/// touch the same few tables (a hold: eight-odd rows in six tables, a hundred holds a batch).
/// Every access goes through `open` (redb refuses to open a table twice in one transaction).
pub struct WriteCtx<'t> {
    txn: &'t WriteTransaction,
    open: RefCell<Vec<(&'static str, Rows<'t>)>>,
    pending: Vec<Op>,
    now: u64,
}

impl<'t> WriteCtx<'t> {
    /// Runs `f` on `def`, opened once per batch.
    fn with_table<R>(&self, def: Def, f: impl FnOnce(&mut Rows<'t>) -> Result<R>) -> Result<R> {
        let mut open = self.open.borrow_mut();
        let i = match open.iter().position(|(name, _)| *name == def.name()) {
            Some(i) => i,
            None => {
                open.push((table_name(def), self.txn.open_table(def)?));
                open.len() - 1
            }
        };
        f(&mut open[i].1)
    }
}

impl Reader for WriteCtx<'_> {
    fn now(&self) -> u64 {
        self.now
    }
    fn get_raw(&self, table: Def, key: &[u8]) -> Result<Option<Live>> {
        // Read-your-writes within the closure.
        for op in self.pending.iter().rev() {
            match op {
                Op::Put { table: t, key: k, value, expires } if t.name() == table.name() && k == key => {
                    return Ok(Some((*expires, value.clone())));
                }
                Op::Delete { table: t, key: k } if t.name() == table.name() && k == key => return Ok(None),
                _ => {}
            }
        }
        self.with_table(table, |t| get_from(t, key, self.now))
    }
    /// Sees what earlier closures committed to the transaction, not this closure's own pending
    /// writes: scans are done before writing, by every caller in this crate.
    fn scan_raw(&self, table: Def, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with_table(table, |t| scan_from(t, prefix, self.now))
    }
}

impl WriteCtx<'_> {
    pub fn put<T: Serialize>(&mut self, table: Def, key: &Key, value: &T) {
        self.put_raw(table, key.bytes().to_vec(), to_json(value), None);
    }
    pub fn put_ttl<T: Serialize>(&mut self, table: Def, key: &Key, value: &T, ttl: Duration) {
        self.put_raw(table, key.bytes().to_vec(), to_json(value), Some(ttl));
    }
    /// Stores raw bytes; `ttl` None keeps the row until deleted.
    pub fn put_raw(&mut self, table: Def, key: Vec<u8>, payload: Vec<u8>, ttl: Option<Duration>) {
        let expires = ttl.map(|t| self.now + (t.as_millis() as u64).max(1)).unwrap_or(0);
        self.put_raw_until(table, key, payload, expires);
    }
    /// Stores raw bytes expiring at `expires` (unix ms, 0 = never).
    pub fn put_raw_until(&mut self, table: Def, key: Vec<u8>, payload: Vec<u8>, expires: u64) {
        self.pending.push(Op::Put { table, key, value: payload, expires });
    }
    pub fn delete(&mut self, table: Def, key: &Key) {
        self.delete_raw(table, key.bytes().to_vec());
    }
    pub fn delete_raw(&mut self, table: Def, key: Vec<u8>) {
        self.pending.push(Op::Delete { table, key });
    }

    fn apply(&mut self) -> std::result::Result<(), StoreError> {
        // In order, so a later op on the same key wins as before.
        for op in std::mem::take(&mut self.pending) {
            match op {
                Op::Put { table: def, key, value, expires } => {
                    self.with_table(def, |t| {
                        t.insert(key.as_slice(), encode_value(&value, expires).as_slice())?;
                        Ok(())
                    })?;
                    if expires != 0 {
                        let ik = ttl_index_key(expires, def.name(), &key);
                        self.with_table(tables::TTL_INDEX, |t| {
                            t.insert(ik.as_slice(), &[][..])?;
                            Ok(())
                        })?;
                    }
                }
                Op::Delete { table: def, key } => {
                    self.with_table(def, |t| {
                        t.remove(key.as_slice())?;
                        Ok(())
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// The engine: a redb database and the writer thread in front of it.
pub struct Engine {
    db: Arc<Database>,
    /// Taken in `drop` so the writer sees the channel close, finishes its batch and exits.
    jobs: Option<crossbeam_channel::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(w) = self.writer.take() {
            // Waiting here means that once the last handle is dropped the database file is
            // closed, so the same directory can be opened again (tests, restarts in-process).
            let _ = w.join();
        }
    }
}

impl Engine {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Engine(format!("create {}: {e}", dir.display())))?;
        let db = Database::builder()
            .set_cache_size(256 << 20)
            .create(dir.join("hospital.redb"))
            .map_err(|e| StoreError::Engine(format!("open {}: {e}", dir.display())))?;
        let txn = db.begin_write()?;
        for t in tables::ALL {
            txn.open_table(*t)?;
        }
        txn.commit()?;
        let db = Arc::new(db);
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&writer_db, rx))
            .map_err(|e| StoreError::Engine(format!("spawn writer: {e}")))?;
        Ok(Self { db, jobs: Some(tx), writer: Some(writer) })
    }

    pub fn read<T>(&self, f: impl FnOnce(&ReadCtx) -> Result<T>) -> Result<T> {
        let ctx = ReadCtx { txn: self.db.begin_read()?, now: now_ms() };
        f(&ctx)
    }

    /// Runs `f` in the next group commit and returns its result once the commit is on disk.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let r = f(ctx);
            if r.is_err() {
                ctx.pending.clear();
            }
            Box::new(move |committed| {
                let _ = tx.send(match committed {
                    Ok(()) => r,
                    Err(e) => Err(StoreError::Engine(e)),
                });
            })
        });
        self.jobs.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Deletes rows whose TTL has passed; returns how many. Called periodically by the store.
    pub async fn sweep_expired(&self) -> Result<usize> {
        self.write(|ctx| {
            let now = ctx.now;
            let due: Vec<Vec<u8>> = ctx.with_table(tables::TTL_INDEX, |idx| {
                let mut due = Vec::new();
                for row in idx.range::<&[u8]>(..)? {
                    let (k, _) = row?;
                    let k = k.value();
                    let exp = u64::from_be_bytes(k[..8].try_into().expect("8-byte expiry"));
                    if exp > now || due.len() >= SWEEP_LIMIT {
                        break;
                    }
                    due.push(k.to_vec());
                }
                Ok(due)
            })?;
            for ik in &due {
                // Layout: expiry(8) | table name (escaped, terminated by 0x00 0x01) | row key.
                let rest = &ik[8..];
                let end = rest.windows(2).position(|w| w == [0, 1]).unwrap_or(rest.len());
                let name = std::str::from_utf8(&rest[..end]).unwrap_or("");
                let row_key = rest.get(end + 2..).unwrap_or(&[]).to_vec();
                if let Some(table) = tables::ALL.iter().find(|t| t.name() == name) {
                    // Delete only if the row still holds this expiry: a later put may have renewed it.
                    ctx.with_table(*table, |t| {
                        let raw = t.get(row_key.as_slice())?.map(|g| g.value().to_vec());
                        if let Some(raw) = raw {
                            let exp = u64::from_be_bytes(raw[..8].try_into().unwrap_or([0; 8]));
                            if exp != 0 && exp <= now {
                                t.remove(row_key.as_slice())?;
                            }
                        }
                        Ok(())
                    })?;
                }
                ctx.with_table(tables::TTL_INDEX, |t| {
                    t.remove(ik.as_slice())?;
                    Ok(())
                })?;
            }
            Ok(due.len())
        })
        .await
    }
}

fn writer_loop(db: &Database, rx: crossbeam_channel::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let n = jobs.len();
        let started = Instant::now();
        let (completions, outcome) = run_batch(db, jobs);
        let elapsed = started.elapsed().as_secs_f64();
        metrics::counter!("store_write_batches_total").increment(1);
        metrics::histogram!("store_write_batch_size").record(n as f64);
        metrics::histogram!("store_commit_seconds").record(elapsed);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, jobs = n, "store write batch failed");
            metrics::counter!("store_write_errors_total").increment(1);
        }
        for c in completions {
            c(outcome.clone());
        }
    }
    tracing::debug!("store writer stopped");
}

fn run_batch(db: &Database, jobs: Vec<Job>) -> (Vec<Completion>, std::result::Result<(), String>) {
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let e = e.to_string();
            // The closures never ran; complete each with the error.
            let noop: Vec<Completion> = Vec::new();
            drop(jobs);
            return (noop, Err(e));
        }
    };
    txn.set_durability(Durability::Immediate);
    let mut completions = Vec::with_capacity(jobs.len());
    let mut failure: Option<String> = None;
    let mut ctx = WriteCtx { txn: &txn, open: RefCell::new(Vec::new()), pending: Vec::new(), now: 0 };
    for job in jobs {
        ctx.now = now_ms();
        let c = job(&mut ctx);
        if failure.is_none() {
            if let Err(e) = ctx.apply() {
                failure = Some(e.to_string());
            }
        }
        ctx.pending.clear();
        completions.push(c);
    }
    // The batch's tables are closed (their roots written back) before the commit.
    drop(ctx);
    let outcome = match failure {
        Some(e) => {
            let _ = txn.abort();
            Err(e)
        }
        None => txn.commit().map_err(|e| e.to_string()),
    };
    (completions, outcome)
}
