//! The embedded engine: an LSM tree (fjall) in a data directory, with group commit. One writer
//! thread owns all writes; callers hand it closures, it runs every closure that is waiting in one
//! transaction, commits once with an fdatasync of the journal, and only then answers each caller.
//! So an acknowledged write survives kill -9, and a thousand concurrent writers cost one sync,
//! not a thousand. Readers use the keyspace's snapshots and never wait for the writer.
//!
//! Why an LSM and not a B-tree: a hold writes eight-odd rows under random keys; a copy-on-write
//! B-tree (redb, this engine until stop 25) rewrites a 4 KiB leaf per row, 20 KB per hold, where
//! an LSM appends the rows to its journal and memtable (docs/benchmarks.md, "a durable hold taken
//! apart by elimination").

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode, Slice, Snapshot};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

use super::keys::Key;
use super::migrate;
use super::presence::{self, Presence};
use super::tables::{self, engine_key, ttl_index_key, Def, TABLE_PREFIX};
use crate::StoreError;

type Result<T> = std::result::Result<T, StoreError>;
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type Job = Box<dyn FnOnce(&mut WriteCtx<'_>) -> Completion + Send>;

/// Most closures a single transaction takes, so one huge burst does not delay its first callers
/// behind an enormous commit.
const MAX_BATCH: usize = 2048;
/// The LSM's block cache.
const CACHE_BYTES: u64 = 128 << 20;
/// How large the memtable grows before it is written out as a segment. Bookings come in bursts
/// (放号: ten thousand holds in a second, about 3 KB each with their index rows and events): a
/// memtable that holds a whole burst sorts and compresses it to disk after the burst, on the
/// flusher's thread, instead of during it beside the requests. The journal has every row
/// already, so this is memory, not durability.
const MEMTABLE_BYTES: u32 = 64 << 20;
/// A memtable smaller than this is left alone before a burst: writing out a few rows as a segment
/// of their own would only add a segment for compaction to merge.
pub const ROTATE_AT_LEAST: u64 = 4 << 20;
/// How many expired rows one sweep deletes at most.
const SWEEP_LIMIT: usize = 5000;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Value layout: 8 bytes of expiry (unix ms, big-endian, 0 = never), then the payload. Made
/// as the LSM's own byte string, so the batch hands it over as it is: built as a `Vec` it was
/// copied a second time into one (a copy of every row's bytes on the writer thread).
fn encode_value(payload: &[u8], expires_ms: u64) -> Slice {
    Slice::fused(&expires_ms.to_be_bytes(), payload)
}

/// Adds a row's engine key to a TTL index entry's list: its length (2 bytes, big-endian), then
/// the key.
fn push_listed(list: &mut Vec<u8>, row: &[u8]) {
    list.extend_from_slice(&(row.len() as u16).to_be_bytes());
    list.extend_from_slice(row);
}

/// The rows a TTL index entry's value lists (`push_listed`; entries written before lists, and
/// single rows, have none).
fn listed_rows(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let len = u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let row = rest.get(2..2 + len)?;
        rest = &rest[2 + len..];
        Some(row)
    })
}

/// The payload and expiry of a stored value, or None if it has expired.
fn decode_value(raw: &[u8], now: u64) -> Option<(u64, &[u8])> {
    if raw.len() < 8 {
        return None;
    }
    let exp = u64::from_be_bytes(raw[..8].try_into().expect("8 bytes"));
    (exp == 0 || exp > now).then_some((exp, &raw[8..]))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // An appointment or order row is several hundred bytes: grown from nothing, its buffer is
    // reallocated and copied half a dozen times (a hold's profile showed it).
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, v).expect("rows serialise");
    out
}

pub(crate) fn from_json<T: DeserializeOwned>(table: Def, raw: &[u8]) -> Result<T> {
    serde_json::from_slice(raw).map_err(|source| StoreError::Decode { table: table.name(), source })
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

/// Up to `limit` live rows from `rows` (engine keys of one table), with the table's id taken off
/// their keys.
fn live_rows<K: AsRef<[u8]>, V: AsRef<[u8]>, E: Into<StoreError>>(
    rows: impl Iterator<Item = std::result::Result<(K, V), E>>,
    now: u64,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    for row in rows {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(Into::into)?;
        if let Some((_, p)) = decode_value(v.as_ref(), now) {
            out.push((k.as_ref()[TABLE_PREFIX..].to_vec(), p.to_vec()));
        }
    }
    Ok(out)
}

fn live_value(raw: Option<&[u8]>, now: u64) -> Option<Live> {
    raw.and_then(|v| decode_value(v, now).map(|(e, p)| (e, p.to_vec())))
}

/// A row exactly as stored: key, expiry (unix ms, 0 = never), payload.
pub type StoredRow = (Vec<u8>, u64, Vec<u8>);

/// A consistent read snapshot.
pub struct ReadCtx<'e> {
    snap: Snapshot,
    now: u64,
    /// Taken after the snapshot: it holds every partition the snapshot can see.
    presence: &'e Presence,
}

impl ReadCtx<'_> {
    /// Up to `limit` live rows with `prefix <= key < before`, highest key first (`before` must
    /// start with `prefix`): a newest-first page of a partition without reading all of it.
    pub fn scan_back(&self, table: Def, prefix: &[u8], before: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let range = engine_key(table, prefix)..engine_key(table, before);
        live_rows(self.snap.range(range).rev(), self.now, limit)
    }

    /// Whether a scan of `prefix` in `table` may find a row (`presence`): false only for a whole
    /// partition of a kept table that never held one.
    pub fn may_hold(&self, table: Def, prefix: &[u8]) -> bool {
        self.presence.may_hold(table, prefix)
    }

    /// Up to `limit` live rows with `start <= key < end`, in key order (a clustering range of
    /// one partition, or a walk over a whole table page by page).
    pub fn range(&self, table: Def, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let range = engine_key(table, start)..engine_key(table, end);
        live_rows(self.snap.range(range), self.now, limit)
    }

    /// Up to `limit` live rows with `start <= key` under `prefix`, in key order (`start` must
    /// start with `prefix`): a page of a partition from a clustering key on.
    pub fn scan_from(&self, table: Def, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let under = engine_key(table, prefix);
        let rows = self
            .snap
            .range(engine_key(table, start)..)
            .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(&under)));
        live_rows(rows, self.now, limit)
    }

    /// Every row under `prefix` exactly as stored: key, expiry (unix ms, 0 = never) and payload,
    /// expired or not. For checks that must see every stored byte (the audit chain's verify).
    pub fn scan_stored(&self, table: Def, prefix: &[u8]) -> Result<Vec<StoredRow>> {
        let mut out = Vec::new();
        for row in self.snap.prefix(engine_key(table, prefix)) {
            let (k, raw) = row?;
            let exp = raw.get(..8).map_or(u64::MAX, |h| u64::from_be_bytes(h.try_into().expect("8 bytes")));
            out.push((k[TABLE_PREFIX..].to_vec(), exp, raw.get(8..).unwrap_or(&[]).to_vec()));
        }
        Ok(out)
    }
}

impl Reader for ReadCtx<'_> {
    fn now(&self) -> u64 {
        self.now
    }
    fn get_raw(&self, table: Def, key: &[u8]) -> Result<Option<Live>> {
        Ok(live_value(self.snap.get(engine_key(table, key))?.as_deref(), self.now))
    }
    fn scan_raw(&self, table: Def, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if !self.may_hold(table, prefix) {
            return Ok(Vec::new());
        }
        live_rows(self.snap.prefix(engine_key(table, prefix)), self.now, usize::MAX)
    }
}

enum Op {
    /// `indexed`: the row has a TTL index entry due no later than `expires` already (a renewal,
    /// `put_raw_renewing`), so it needs no new one.
    Put {
        table: Def,
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
        indexed: bool,
    },
    Delete {
        table: Def,
        key: Vec<u8>,
    },
}

/// The batch's writes so far by engine key, encoded as stored (None: deleted).
///
/// Hashed, with the order kept only once asked for: a release's batch puts thousands of rows
/// and reads them back by key alone, and in an ordered map each put compared its key with a
/// dozen others, each in a row of its own elsewhere in memory (14 % of the writer thread in the
/// everyone-wins storm's profile; hashed, the writer's CPU a hold fell by about a tenth:
/// docs/benchmarks.md, stop 46). A scan (the TTL sweep, a patient's rows when one is added)
/// needs the keys in order: the batch's first scan sorts them, and from then on every put keeps
/// them sorted as well.
struct Overlay {
    rows: RowTable,
    /// The keys in order, from the batch's first scan on.
    order: RefCell<Option<BTreeSet<Slice>>>,
}

/// The overlay's rows by key.
type RowTable = HashMap<Slice, Option<Slice>, foldhash::fast::RandomState>;

/// The most rows a kept table keeps room for between batches (some 15 MiB); a larger burst's
/// table is let go after its batch.
const KEPT_TABLE_ROWS: usize = 1 << 18;

impl Overlay {
    /// An overlay over `rows`, an empty table kept from the batch before with its room.
    fn over(rows: RowTable) -> Self {
        Self { rows, order: RefCell::default() }
    }

    /// The table, emptied, with its room unless that is more than `KEPT_TABLE_ROWS`.
    fn emptied(mut rows: RowTable) -> RowTable {
        if rows.capacity() > KEPT_TABLE_ROWS {
            return RowTable::default();
        }
        rows.clear();
        rows
    }

    fn get(&self, key: &[u8]) -> Option<&Option<Slice>> {
        self.rows.get(key)
    }

    fn insert(&mut self, key: Slice, value: Option<Slice>) {
        if let Some(order) = self.order.get_mut() {
            order.insert(key.clone());
        }
        self.rows.insert(key, value);
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows whose keys start with `prefix`, in key order (copies of the handles, not of
    /// the bytes).
    fn under(&self, prefix: &[u8]) -> Vec<(Slice, Option<Slice>)> {
        // Nothing to order yet: a scan by the batch's first closure does not commit the rest of
        // the batch to ordered puts.
        if self.rows.is_empty() {
            return Vec::new();
        }
        let mut order = self.order.borrow_mut();
        let order = order.get_or_insert_with(|| self.rows.keys().cloned().collect());
        order
            .range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|k| k.starts_with(prefix))
            .map(|k| (k.clone(), self.rows[&**k].clone()))
            .collect()
    }

    /// Every row, in key order, as the ordered map gave them: the memtable's skip list then
    /// takes each insert along a path the one before has just walked. And the table, emptied
    /// for the next batch.
    fn into_sorted(mut self) -> (Vec<(Slice, Option<Slice>)>, RowTable) {
        let mut rows: Vec<_> = self.rows.drain().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        (rows, Self::emptied(self.rows))
    }
}

/// What a write closure sees: the stored rows with every earlier closure's writes of the batch
/// over them, and its own buffered writes. A closure's writes are applied only if it returns Ok,
/// so a closure that fails half-way leaves nothing behind.
///
/// The batch is the engine's write transaction: the writer thread is the only writer, so it
/// reads the tree directly under its own overlay and hands the whole batch to the LSM as one
/// atomic, journalled write at the end (fjall's own transactions kept a second memtable per
/// transaction: a quarter of the writer's time in the profile of docs/benchmarks.md).
pub struct WriteCtx<'t> {
    rows: &'t PartitionHandle,
    /// Noted as each closure's puts move into the batch, so before the batch is visible.
    presence: &'t Presence,
    batch: Overlay,
    pending: Vec<Op>,
    now: u64,
}

impl WriteCtx<'_> {
    /// `f` of the row under engine key `key` as stored with the batch so far over it (expiry
    /// header and payload), expired or not, read where it lies (the overlay or the tree).
    fn with_stored<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        Ok(match self.batch.get(key) {
            Some(v) => f(v.as_deref()),
            None => f(self.rows.get(key)?.as_deref()),
        })
    }

    /// Every row whose engine key starts with `prefix`, as stored with the batch so far over it,
    /// in key order; lazily, so a caller that stops early reads no further.
    fn merged<'a>(&'a self, prefix: &[u8]) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a {
        enum Next {
            Stored,
            Own,
            /// The batch rewrote or deleted this stored row: its version wins.
            Both,
        }
        let mut stored = self.rows.prefix(prefix.to_vec()).peekable();
        let mut own = self.batch.under(prefix).into_iter().peekable();
        std::iter::from_fn(move || loop {
            let next = match (stored.peek(), own.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return stored.next().and_then(|r| r.err()).map(|e| Err(e.into())),
                (Some(Ok(_)), None) => Next::Stored,
                (None, Some(_)) => Next::Own,
                (Some(Ok((sk, _))), Some((ok, _))) => match (**sk).cmp(&**ok) {
                    std::cmp::Ordering::Less => Next::Stored,
                    std::cmp::Ordering::Equal => Next::Both,
                    std::cmp::Ordering::Greater => Next::Own,
                },
            };
            if let Next::Stored = next {
                if let Some(Ok((k, v))) = stored.next() {
                    return Some(Ok((k.to_vec(), v.to_vec())));
                }
                continue;
            }
            if let Next::Both = next {
                stored.next();
            }
            if let Some((k, Some(v))) = own.next() {
                return Some(Ok((k.to_vec(), v.to_vec())));
            }
            // Deleted in this batch: skipped.
        })
    }
}

impl Reader for WriteCtx<'_> {
    fn now(&self) -> u64 {
        self.now
    }
    fn get_raw(&self, table: Def, key: &[u8]) -> Result<Option<Live>> {
        if let Some(own) = self.own_write(table, key) {
            return Ok(own);
        }
        // A row of a kept partition that never held one (`presence`: an event log's counter for
        // a stream new to it) is not there: no read of every memtable and segment.
        if !self.presence.may_hold(table, key) {
            return Ok(None);
        }
        // Decoded where it lies (the overlay or the tree), copied once.
        self.with_stored(&engine_key(table, key), |raw| live_value(raw, self.now))
    }
    /// Sees what earlier closures wrote in the batch, not this closure's own pending writes:
    /// scans are done before writing, by every caller in this crate.
    fn scan_raw(&self, table: Def, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        live_rows(self.merged(&engine_key(table, prefix)), self.now, usize::MAX)
    }
}

impl WriteCtx<'_> {
    pub fn put<T: Serialize>(&mut self, table: Def, key: &Key, value: &T) {
        self.put_raw(table, key.bytes().to_vec(), to_json(value), None);
    }
    pub fn put_ttl<T: Serialize>(&mut self, table: Def, key: &Key, value: &T, ttl: Duration) {
        self.put_raw(table, key.bytes().to_vec(), to_json(value), Some(ttl));
    }
    /// The closure's own latest write of the row, if it wrote it (`Some(None)`: deleted):
    /// read-your-writes within a closure.
    pub fn own_write(&self, table: Def, key: &[u8]) -> Option<Option<Live>> {
        self.pending.iter().rev().find_map(|op| match op {
            Op::Put { table: t, key: k, value, expires, .. } if *t == table && k == key => {
                Some(Some((*expires, value.clone())))
            }
            Op::Delete { table: t, key: k } if *t == table && k == key => Some(None),
            _ => None,
        })
    }
    /// Stores raw bytes; `ttl` None keeps the row until deleted.
    pub fn put_raw(&mut self, table: Def, key: Vec<u8>, payload: Vec<u8>, ttl: Option<Duration>) {
        let expires = ttl.map(|t| self.now + (t.as_millis() as u64).max(1)).unwrap_or(0);
        self.put_raw_until(table, key, payload, expires);
    }
    /// Stores raw bytes expiring at `expires` (unix ms, 0 = never).
    pub fn put_raw_until(&mut self, table: Def, key: Vec<u8>, payload: Vec<u8>, expires: u64) {
        self.pending.push(Op::Put { table, key, value: payload, expires, indexed: false });
    }
    /// Rewrites a row this closure read with expiry `stored` (from `get_raw`), now living for
    /// `ttl`. A row rewritten on every use with a long life (an event log's counter, 30 days)
    /// would leave a TTL index entry behind each time; while it has one due no later than the
    /// new expiry, it gets none: the sweeper, finding the row renewed when that entry comes due,
    /// indexes it again at its expiry then.
    pub fn put_raw_renewing(&mut self, table: Def, key: Vec<u8>, payload: Vec<u8>, ttl: Duration, stored: Option<u64>) {
        let expires = self.now + (ttl.as_millis() as u64).max(1);
        let indexed = stored.is_some_and(|e| e != 0 && e <= expires);
        self.pending.push(Op::Put { table, key, value: payload, expires, indexed });
    }
    pub fn delete(&mut self, table: Def, key: &Key) {
        self.delete_raw(table, key.bytes().to_vec());
    }
    pub fn delete_raw(&mut self, table: Def, key: Vec<u8>) {
        self.pending.push(Op::Delete { table, key });
    }

    /// Moves the closure's buffered writes into the batch, in order, so a later op on the same
    /// key wins.
    ///
    /// The closure's rows with one expiry share one TTL index entry: the first row's, listing
    /// the others (`push_listed`). An event log's append writes each event's value and id
    /// marker for a day: one index row instead of one each, as many fewer for the sweeper to
    /// delete, and an entry is a row of the LSM like any other (journal, memtable, compaction).
    fn apply(&mut self) {
        let mut groups: Vec<(u64, Slice, Vec<u8>)> = Vec::new();
        for op in std::mem::take(&mut self.pending) {
            match op {
                Op::Put { table, key, value, expires, indexed } => {
                    self.presence.note(table, &key);
                    let row = engine_key(table, &key);
                    if expires != 0 && !indexed {
                        match groups.iter_mut().find(|g| g.0 == expires) {
                            Some((_, _, others)) => push_listed(others, &row),
                            None => groups.push((expires, row.clone(), Vec::new())),
                        }
                    }
                    self.batch.insert(row, Some(encode_value(&value, expires)));
                }
                Op::Delete { table, key } => {
                    self.batch.insert(engine_key(table, &key), None);
                }
            }
        }
        for (expires, first, mut others) in groups {
            let entry = ttl_index_key(expires, &first);
            // An earlier closure of the batch may have indexed the same first row at the same
            // instant with rows of its own: keep its list too. (Across batches the entry is not
            // read back: the later list would win, and the earlier's other rows would expire
            // unswept. No caller gives two closures one first row and expiry: the one
            // writing lists is the event log's append, whose first row is its next number.)
            if let Some(Some(earlier)) = self.batch.get(&entry) {
                others.extend_from_slice(earlier);
            }
            self.batch.insert(entry, Some(others.into()));
        }
    }
}

/// The LSM's size and shape at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    /// Journals and segments on disk.
    pub disk_bytes: u64,
    /// Journal files not yet made redundant by flushed segments (each up to the journal limit).
    pub journals: usize,
    /// Sorted segments; compaction keeps the count bounded.
    pub segments: usize,
    /// Bytes in memtables not yet written out as segments.
    pub write_buffer_bytes: u64,
}

/// The engine: an LSM keyspace (fjall) and the writer thread in front of it.
pub struct Engine {
    keyspace: Keyspace,
    rows: PartitionHandle,
    /// Which partitions of the kept tables hold a row (`presence`), shared with the writer.
    presence: Arc<Presence>,
    /// Taken in `drop` so the writer sees the channel close, finishes its batch and exits.
    jobs: Option<crossbeam_channel::Sender<Job>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// The thread filling `presence` from the tree (it holds the keyspace: joined on drop).
    fill: Option<std::thread::JoinHandle<()>>,
    /// An exclusive lock on the directory's `LOCK` file: the engine has no lock of its own and
    /// two processes writing one journal would corrupt it. Released last, after the keyspace.
    _lock: std::fs::File,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.presence.stop();
        if let Some(f) = self.fill.take() {
            let _ = f.join();
        }
        self.jobs.take();
        if let Some(w) = self.writer.take() {
            // Waiting here means that once the last handle is dropped the keyspace is closed, so
            // the same directory can be opened again (tests, restarts in-process).
            let _ = w.join();
        }
    }
}

impl Engine {
    pub fn open(dir: &Path) -> Result<Self> {
        let fail = |what: &str, e: &dyn std::fmt::Display| StoreError::Engine(format!("{what} {}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(|e| fail("create", &e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| fail("open lock of", &e))?;
        lock.try_lock().map_err(|e| fail("lock (is another process using it?)", &e))?;
        let keyspace = Config::new(dir.join("lsm"))
            .cache_size(CACHE_BYTES)
            .max_write_buffer_size(2 * u64::from(MEMTABLE_BYTES))
            .open()
            .map_err(|e| fail("open", &e))?;
        let rows =
            keyspace.open_partition("rows", PartitionCreateOptions::default().max_memtable_size(MEMTABLE_BYTES))?;
        migrate::from_redb(dir, &keyspace, &rows)?;
        let presence = Arc::new(Presence::default());
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let (writer_keyspace, writer_rows, writer_presence) = (keyspace.clone(), rows.clone(), presence.clone());
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(&writer_keyspace, &writer_rows, &writer_presence, rx))
            .map_err(|e| StoreError::Engine(format!("spawn writer: {e}")))?;
        // After the writer is noting its puts (see `presence`), which it does from its first batch.
        let fill = presence::start_fill(keyspace.clone(), rows.clone(), presence.clone())
            .map_err(|e| StoreError::Engine(format!("spawn presence fill: {e}")))?;
        Ok(Self { keyspace, rows, presence, jobs: Some(tx), writer: Some(writer), fill: Some(fill), _lock: lock })
    }

    /// What the LSM holds now, for the operators' gauges (`EmbeddedStore::start_sweeper`).
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            disk_bytes: self.keyspace.disk_space(),
            journals: self.keyspace.journal_count(),
            segments: self.rows.segment_count(),
            write_buffer_bytes: self.keyspace.write_buffer_size(),
        }
    }

    /// Seals the active memtable and has the flusher write it out, if it holds at least
    /// `at_least` bytes; whether it did. The rows stay readable throughout (a sealed memtable is
    /// read until its segment is in), and the journal already has them.
    pub fn rotate_memtable(&self, at_least: u64) -> Result<bool> {
        use fjall::AbstractTree;
        if u64::from(self.rows.tree.active_memtable_size()) < at_least {
            return Ok(false);
        }
        Ok(self.rows.rotate_memtable()?)
    }

    pub fn read<T>(&self, f: impl FnOnce(&ReadCtx) -> Result<T>) -> Result<T> {
        // At the keyspace's visible instant: a batch becomes visible whole, once all of it is in.
        let snap = self.rows.snapshot_at(self.keyspace.instant());
        let ctx = ReadCtx { snap, now: now_ms(), presence: &self.presence };
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
            let mut due = Vec::new();
            for row in ctx.merged(&engine_key(tables::TTL_INDEX, &[])) {
                let (k, listed) = row?;
                let ik = &k[TABLE_PREFIX..];
                let exp = u64::from_be_bytes(ik[..8].try_into().expect("8-byte expiry"));
                if exp > now || due.len() >= SWEEP_LIMIT {
                    break;
                }
                due.push((ik.to_vec(), listed));
            }
            let (mut expired, mut renewed) = (Vec::new(), Vec::new());
            for (ik, listed) in &due {
                // Layout: expiry(8) | the row's engine key (table id, row key); the value lists
                // the rows of the same closure and expiry (`apply`).
                for row in std::iter::once(&ik[8..]).chain(listed_rows(listed)) {
                    let Some(table) = row.first().and_then(|id| tables::by_id(*id)) else { continue };
                    // Delete only if the row still holds an expiry now past: a later put may
                    // have renewed it, and one renewed without an entry of its own
                    // (`put_raw_renewing`) is indexed again at its new expiry.
                    let exp = ctx.with_stored(row, |raw| {
                        raw.and_then(|r| r.get(..8)).map(|h| u64::from_be_bytes(h.try_into().expect("8 bytes")))
                    })?;
                    match exp {
                        Some(e) if e != 0 && e <= now => expired.push((table, row[TABLE_PREFIX..].to_vec())),
                        Some(e) if e != 0 => renewed.push(ttl_index_key(e, row)),
                        _ => {}
                    }
                }
            }
            // Deleted after every read, so no read walks a long list of this closure's deletes.
            for (table, key) in expired {
                ctx.delete_raw(table, key);
            }
            // Index entries are stored bare (no expiry header), as `apply` writes them; only where
            // the row has none at its expiry yet: one renewed by an ordinary put has its own,
            // which may list other rows that an empty entry would drop.
            for entry in renewed {
                if ctx.with_stored(&entry, |raw| raw.is_none())? {
                    ctx.batch.insert(entry, Some(Slice::empty()));
                }
            }
            let n = due.len();
            for (ik, _) in due {
                ctx.delete_raw(tables::TTL_INDEX, ik);
            }
            Ok(n)
        })
        .await
    }
}

fn writer_loop(keyspace: &Keyspace, rows: &PartitionHandle, presence: &Presence, rx: crossbeam_channel::Receiver<Job>) {
    // The overlay's table, kept from one batch to the next: a burst's batches find it grown
    // already instead of growing it by doubling, rehashing every row each time (3,000
    // instructions a hold under callgrind: docs/benchmarks.md, stop 49).
    let mut table = RowTable::default();
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
        let (completions, outcome) = run_batch(keyspace, rows, presence, jobs, &mut table);
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

/// Runs a batch of closures over one overlay and writes what they wrote as one atomic batch,
/// journalled with one fdatasync.
fn run_batch(
    keyspace: &Keyspace,
    rows: &PartitionHandle,
    presence: &Presence,
    jobs: Vec<Job>,
    table: &mut RowTable,
) -> (Vec<Completion>, std::result::Result<(), String>) {
    let batch = Overlay::over(std::mem::take(table));
    let mut ctx = WriteCtx { rows, presence, batch, pending: Vec::new(), now: 0 };
    let mut completions = Vec::with_capacity(jobs.len());
    for job in jobs {
        ctx.now = now_ms();
        let c = job(&mut ctx);
        ctx.apply();
        completions.push(c);
    }
    if ctx.batch.is_empty() {
        // Only reads: what they read was already durable (every answer waits for its sync).
        *table = Overlay::emptied(ctx.batch.rows);
        return (completions, Ok(()));
    }
    let (sorted, emptied) = ctx.batch.into_sorted();
    *table = emptied;
    let mut batch = keyspace.batch().durability(Some(PersistMode::SyncData));
    for (key, value) in sorted {
        match value {
            Some(v) => batch.insert(rows, key, v),
            None => batch.remove(rows, key),
        }
    }
    (completions, batch.commit().map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_engine_on_one_directory_is_refused_while_the_first_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let first = Engine::open(dir.path()).unwrap();
        let second = Engine::open(dir.path());
        assert!(matches!(&second, Err(StoreError::Engine(m)) if m.contains("lock")), "{:?}", second.err());
        drop(first);
        Engine::open(dir.path()).unwrap();
    }

    /// The kept partitions (`presence`): a scan of one that never held a row finds nothing
    /// without reading the tree, and one that holds rows finds them, written in this process or
    /// found on disk at the next open (the set is rebuilt there: without that the real-name
    /// rules would read nobody's history after a restart).
    #[tokio::test]
    async fn a_kept_partition_is_found_after_its_write_and_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let table = tables::APPOINTMENTS_BY_PERSON;
        let row = |p: &str, n: u64| Key::new().str(p).u64(n);
        let scan = |engine: &Engine, p: &str| engine.read(|r| r.scan_raw(table, Key::new().str(p).bytes())).unwrap();
        let opened = || {
            let engine = Engine::open(dir.path()).unwrap();
            let t = Instant::now();
            while !engine.presence.is_ready() {
                assert!(t.elapsed() < Duration::from_secs(10), "the fill never finished");
                std::thread::sleep(Duration::from_millis(1));
            }
            engine
        };
        {
            let engine = opened();
            assert!(scan(&engine, "alice").is_empty());
            engine
                .write(move |ctx| {
                    ctx.put_raw(table, row("alice", 1).into_bytes(), Vec::new(), None);
                    ctx.put_raw(table, row("alice", 2).into_bytes(), Vec::new(), None);
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(scan(&engine, "alice").len(), 2);
            assert!(scan(&engine, "bob").is_empty());
            engine
                .write(move |ctx| {
                    ctx.put_raw(table, row("carol", 1).into_bytes(), Vec::new(), None);
                    Ok(())
                })
                .await
                .unwrap();
        }
        let engine = opened();
        assert_eq!(engine.presence.len(), 2, "alice and carol, from the tree");
        assert_eq!(scan(&engine, "alice").len(), 2);
        assert_eq!(scan(&engine, "carol").len(), 1);
        assert!(scan(&engine, "bob").is_empty());
    }

    /// An event log's counter is a kept partition too: a stream's numbering goes on after a
    /// reopen (the fill finds the counter; without it the next number would be 1 again, over a
    /// stored event), and a stream new to the log starts at 1 without a read.
    #[tokio::test]
    async fn a_log_counter_is_found_after_a_reopen_and_numbering_goes_on() {
        use crate::embedded::kv::LogHead;
        let dir = tempfile::tempdir().unwrap();
        let opened = || {
            let engine = Engine::open(dir.path()).unwrap();
            let t = Instant::now();
            while !engine.presence.is_ready() {
                assert!(t.elapsed() < Duration::from_secs(10), "the fill never finished");
                std::thread::sleep(Duration::from_millis(1));
            }
            engine
        };
        async fn append(engine: &Engine, stream: &'static str, n: usize) -> Vec<u64> {
            let write = engine.write(move |ctx| {
                let mut head = LogHead::read(ctx, stream)?;
                let seqs: Vec<u64> =
                    (0..n).map(|_| head.push(ctx, stream, b"{}".to_vec(), Duration::from_secs(60))).collect();
                head.write(ctx);
                Ok(seqs)
            });
            write.await.unwrap()
        }
        {
            let engine = opened();
            assert_eq!(append(&engine, "acct:a", 2).await, [1, 2]);
            assert_eq!(append(&engine, "acct:a", 1).await, [3]);
            // Not a counter: not kept.
            engine
                .write(|ctx| {
                    ctx.put_raw(tables::KV_ENTRIES, Key::new().str("session:s").into_bytes(), Vec::new(), None);
                    Ok(())
                })
                .await
                .unwrap();
            assert_eq!(engine.presence.len(), 1);
        }
        let engine = opened();
        assert_eq!(engine.presence.len(), 1, "acct:a's counter, from the tree");
        assert_eq!(append(&engine, "acct:a", 1).await, [4]);
        assert_eq!(append(&engine, "acct:b", 1).await, [1]);
        let session = engine.read(|r| r.get_raw(tables::KV_ENTRIES, Key::new().str("session:s").bytes())).unwrap();
        assert!(session.is_some(), "a key not kept is read from the tree");
    }

    /// The TTL index rows under the engine (stored bare, so not through a `Reader`).
    fn index_entries(engine: &Engine) -> usize {
        engine.rows.prefix(engine_key(tables::TTL_INDEX, &[])).count()
    }

    /// A `kv_entries` row's key in these tests.
    fn kv_key(s: &str) -> Vec<u8> {
        Key::new().str(s).into_bytes()
    }

    /// Puts `(key, value, ttl)` rows of `kv_entries` in one write closure.
    async fn put_kv(engine: &Engine, rows: &[(&str, &[u8], Duration)]) {
        let rows: Vec<_> = rows.iter().map(|(k, v, ttl)| (kv_key(k), v.to_vec(), *ttl)).collect();
        engine
            .write(move |ctx| {
                for (k, v, ttl) in rows {
                    ctx.put_raw(tables::KV_ENTRIES, k, v, Some(ttl));
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// Rows one closure writes with one expiry share one TTL index entry, and the sweeper
    /// deletes every row it lists once due, but not one rewritten since to live longer.
    #[tokio::test]
    async fn rows_of_one_closure_and_expiry_share_an_index_entry_and_all_expire() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let t = tables::KV_ENTRIES;
        let key = kv_key;
        let (short, hour) = (Duration::from_millis(300), Duration::from_secs(3600));
        put_kv(&engine, &[("a", b"x", short), ("b", b"x", short), ("c", b"x", short), ("d", b"x", hour)]).await;
        assert_eq!(index_entries(&engine), 2, "one for a, b and c, one for d");
        put_kv(&engine, &[("b", b"y", hour)]).await;
        assert_eq!(index_entries(&engine), 3);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(engine.sweep_expired().await.unwrap(), 1, "the one entry due");
        let present = |k: &str| engine.read(|r| r.get_raw(t, &key(k))).unwrap().map(|(_, v)| v);
        assert_eq!(present("a"), None);
        assert_eq!(present("c"), None);
        assert_eq!(present("b"), Some(b"y".to_vec()), "rewritten to live an hour");
        assert_eq!(present("d"), Some(b"x".to_vec()));
        assert_eq!(index_entries(&engine), 2, "b's and d's");
        // Gone from the tree, not only hidden by their expiry.
        assert!(engine.rows.get(engine_key(t, &key("a"))).unwrap().is_none());
    }

    /// A row renewed with `put_raw_renewing` gets no new index entry while its old one is due
    /// first; the sweeper indexes it again at its new expiry, and deletes it then.
    #[tokio::test]
    async fn a_renewed_row_is_indexed_again_when_its_entry_comes_due_and_expires_at_its_new_time() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let t = tables::KV_ENTRIES;
        let key = kv_key("head");
        put_kv(&engine, &[("head", b"1", Duration::from_millis(300))]).await;
        let k = key.clone();
        engine
            .write(move |ctx| {
                let stored = ctx.get_raw(t, &k)?.map(|(e, _)| e);
                assert!(stored.is_some());
                ctx.put_raw_renewing(t, k, b"2".to_vec(), Duration::from_millis(1500), stored);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(index_entries(&engine), 1, "still the first entry only");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(engine.sweep_expired().await.unwrap(), 1);
        let value = || engine.read(|r| r.get_raw(t, &key)).unwrap().map(|(_, v)| v);
        assert_eq!(value(), Some(b"2".to_vec()), "renewed: kept");
        assert_eq!(index_entries(&engine), 1, "indexed again, at its new expiry");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert_eq!(engine.sweep_expired().await.unwrap(), 1);
        assert_eq!(value(), None);
        assert_eq!(index_entries(&engine), 0);
        // Without a stored expiry (a first write) the row is indexed as any other.
        let k = key.clone();
        engine
            .write(move |ctx| {
                ctx.put_raw_renewing(t, k, b"3".to_vec(), Duration::from_secs(60), None);
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(index_entries(&engine), 1);
    }

    /// A row renewed by an ordinary put that indexed it with another row keeps that entry's
    /// list when its old entry comes due: the other row is swept at its time too.
    #[tokio::test]
    async fn a_renewal_by_an_ordinary_put_keeps_its_entry_and_the_rows_it_lists() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let t = tables::KV_ENTRIES;
        let key = kv_key;
        put_kv(&engine, &[("r", b"1", Duration::from_millis(300))]).await;
        let later = Duration::from_millis(900);
        put_kv(&engine, &[("r", b"2", later), ("s", b"2", later)]).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(engine.sweep_expired().await.unwrap(), 1, "r's first entry");
        assert_eq!(index_entries(&engine), 1, "r's second, listing s");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(engine.sweep_expired().await.unwrap(), 1);
        for k in ["r", "s"] {
            assert!(engine.rows.get(engine_key(t, &key(k))).unwrap().is_none(), "{k} swept");
        }
        assert_eq!(index_entries(&engine), 0);
    }

    #[tokio::test]
    async fn stats_follow_the_writes() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let before = engine.stats();
        assert_eq!(before.write_buffer_bytes, 0, "{before:?}");
        engine
            .write(|ctx| {
                for i in 0..100u32 {
                    ctx.put(tables::ACCOUNTS, &Key::new().str(&i.to_string()), &"x".repeat(100));
                }
                Ok(())
            })
            .await
            .unwrap();
        let after = engine.stats();
        assert!(after.write_buffer_bytes > 100 * 100, "{after:?}");
        // The journal is preallocated (32 MiB), so it is on disk before the first row.
        assert!(before.disk_bytes > 0 && after.disk_bytes >= before.disk_bytes, "{before:?} -> {after:?}");
        assert!(after.journals >= 1, "{after:?}");
    }

    /// Before a burst: a memtable under the floor is left alone; a bigger one is written out as a
    /// segment by the flusher, and its rows read the same before, during and after.
    #[tokio::test]
    async fn a_memtable_is_written_out_before_a_burst_and_its_rows_stay() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let key = |i: u32| Key::new().str(&format!("{i:06}"));
        let put = |from: u32, to: u32| {
            engine.write(move |ctx| {
                for i in from..to {
                    ctx.put(tables::ACCOUNTS, &key(i), &"x".repeat(1000));
                }
                Ok(())
            })
        };
        put(0, 10).await.unwrap();
        assert!(!engine.rotate_memtable(ROTATE_AT_LEAST).unwrap(), "ten rows are not worth a segment");
        assert_eq!(engine.stats().segments, 0);
        put(10, 6000).await.unwrap();
        assert!(engine.stats().write_buffer_bytes >= ROTATE_AT_LEAST, "{:?}", engine.stats());
        assert!(engine.rotate_memtable(ROTATE_AT_LEAST).unwrap());
        let read = |i: u32| engine.read(|r| r.get::<String>(tables::ACCOUNTS, &key(i))).unwrap();
        assert_eq!(read(5999).as_deref(), Some("x".repeat(1000).as_str()), "readable while sealed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while engine.stats().segments == 0 {
            assert!(Instant::now() < deadline, "the flusher never wrote the segment: {:?}", engine.stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(read(0).as_deref(), Some("x".repeat(1000).as_str()), "readable from the segment");
        assert!(engine.stats().write_buffer_bytes < ROTATE_AT_LEAST, "{:?}", engine.stats());
    }

    /// One batch, closure by closure: each sees the stored rows under every earlier closure's
    /// writes (point reads and merged scans, deletes included); a failed closure leaves nothing.
    /// The overlay orders its keys at the batch's first scan: a put and a delete after that
    /// scan are in the next scan, in their places.
    #[tokio::test]
    async fn a_closure_sees_the_batch_before_it_and_a_failed_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path()).unwrap();
        let k = |s: &str| Key::new().str("t").str(s);
        engine
            .write(move |ctx| {
                ctx.put(tables::KV_ENTRIES, &k("x"), &"stored x");
                ctx.put(tables::KV_ENTRIES, &k("y"), &"stored y");
                Ok(())
            })
            .await
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        type Step = Box<dyn FnOnce(&mut WriteCtx<'_>) -> Result<()> + Send>;
        let job = |f: Step| -> Job {
            Box::new(move |ctx| {
                if f(ctx).is_err() {
                    ctx.pending.clear();
                }
                Box::new(|_| {})
            })
        };
        let (seen2, seen3) = (seen.clone(), seen.clone());
        let jobs = vec![
            job(Box::new(move |ctx| {
                ctx.put(tables::KV_ENTRIES, &k("a"), &"new a");
                ctx.delete(tables::KV_ENTRIES, &k("x"));
                ctx.put(tables::KV_ENTRIES, &k("y"), &"new y");
                Ok(())
            })),
            job(Box::new(move |ctx| {
                ctx.put(tables::KV_ENTRIES, &k("z"), &"never");
                Err(StoreError::Engine("refused".into()))
            })),
            job(Box::new(move |ctx| {
                let rows: Vec<String> = ctx.scan(tables::KV_ENTRIES, &Key::new().str("t"))?;
                let x: Option<String> = ctx.get(tables::KV_ENTRIES, &k("x"))?;
                let z: Option<String> = ctx.get(tables::KV_ENTRIES, &k("z"))?;
                seen2.lock().unwrap().push((rows, x, z));
                Ok(())
            })),
            job(Box::new(move |ctx| {
                ctx.put(tables::KV_ENTRIES, &k("b"), &"new b");
                ctx.delete(tables::KV_ENTRIES, &k("y"));
                Ok(())
            })),
            job(Box::new(move |ctx| {
                let rows: Vec<String> = ctx.scan(tables::KV_ENTRIES, &Key::new().str("t"))?;
                let y: Option<String> = ctx.get(tables::KV_ENTRIES, &k("y"))?;
                seen3.lock().unwrap().push((rows, y, None));
                Ok(())
            })),
        ];
        let mut table = RowTable::default();
        let (_, outcome) = run_batch(&engine.keyspace, &engine.rows, &engine.presence, jobs, &mut table);
        outcome.unwrap();
        // The overlay's table is kept for the next batch with its room, and nothing in it.
        assert!(table.is_empty() && table.capacity() > 0, "kept, emptied: {} rows", table.len());
        let seen = seen.lock().unwrap().clone();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(seen, vec![(strings(&["new a", "new y"]), None, None), (strings(&["new a", "new b"]), None, None)]);
        let after: Vec<String> = engine.read(|r| r.scan(tables::KV_ENTRIES, &Key::new().str("t"))).unwrap();
        assert_eq!(after, strings(&["new a", "new b"]), "as the batch left them, nothing of the failed closure");
    }
}
