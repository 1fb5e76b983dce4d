//! Benchmark: CPU cost of the durable "hold" write pattern, redb 2.6.4 vs fjall 2.x.
//!
//! usage: enginebench <redb|fjall> <holds_per_txn> <data_dir> [n_holds]
//! Prints one line of `key=value` results on stdout.

use rand::prelude::*;
use rand::rngs::SmallRng;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------- tables
const APPT: usize = 0;
const APPT_DOC: usize = 1;
const APPT_ACCT: usize = 2;
const APPT_PERSON: usize = 3;
const ORDERS: usize = 4;
const ORDERS_ACCT: usize = 5;
const FENCES: usize = 6;
const ANALYTICS: usize = 7;
const OUTBOX: usize = 8;
const KV: usize = 9;
const TTL: usize = 10;
const NTABLES: usize = 11;
const NAMES: [&str; NTABLES] = [
    "appointments",
    "appointments_by_doctor",
    "appointments_by_account",
    "appointments_by_person",
    "orders",
    "orders_by_account",
    "fences",
    "analytics",
    "live_outbox",
    "kv",
    "ttl_index",
];

/// Minimal transactional interface both engines implement.
trait Tx {
    /// Reads `key` into `out`; returns false when absent.
    fn get(&mut self, t: usize, key: &[u8], out: &mut Vec<u8>) -> bool;
    fn put(&mut self, t: usize, key: &[u8], val: &[u8]);
    fn del(&mut self, t: usize, key: &[u8]);
}

// ---------------------------------------------------------------- redb
mod redb_engine {
    use super::*;
    use redb::{Database, Durability, ReadableTable, Table, TableDefinition};

    const DEFS: [TableDefinition<&[u8], &[u8]>; NTABLES] = [
        TableDefinition::new(NAMES[0]),
        TableDefinition::new(NAMES[1]),
        TableDefinition::new(NAMES[2]),
        TableDefinition::new(NAMES[3]),
        TableDefinition::new(NAMES[4]),
        TableDefinition::new(NAMES[5]),
        TableDefinition::new(NAMES[6]),
        TableDefinition::new(NAMES[7]),
        TableDefinition::new(NAMES[8]),
        TableDefinition::new(NAMES[9]),
        TableDefinition::new(NAMES[10]),
    ];

    pub struct Tables<'txn>(Vec<Table<'txn, &'static [u8], &'static [u8]>>);

    impl Tx for Tables<'_> {
        fn get(&mut self, t: usize, key: &[u8], out: &mut Vec<u8>) -> bool {
            match self.0[t].get(key).unwrap() {
                Some(g) => {
                    out.clear();
                    out.extend_from_slice(g.value());
                    true
                }
                None => false,
            }
        }
        fn put(&mut self, t: usize, key: &[u8], val: &[u8]) {
            self.0[t].insert(key, val).unwrap();
        }
        fn del(&mut self, t: usize, key: &[u8]) {
            self.0[t].remove(key).unwrap();
        }
    }

    pub struct Eng {
        db: Option<Database>,
        path: std::path::PathBuf,
    }

    fn open(path: &Path) -> Database {
        Database::builder()
            .set_cache_size(256 << 20)
            .create(path)
            .unwrap()
    }

    impl Eng {
        pub fn new(dir: &Path) -> Self {
            let path = dir.join("bench.redb");
            Eng { db: Some(open(&path)), path }
        }
        pub fn reopen(&mut self) {
            drop(self.db.take());
            self.db = Some(open(&self.path));
        }
        /// Runs `f` inside one write transaction, committed with the given durability.
        pub fn txn(&self, durable: bool, f: &mut dyn FnMut(&mut dyn Tx)) {
            let mut tx = self.db.as_ref().unwrap().begin_write().unwrap();
            tx.set_durability(if durable { Durability::Immediate } else { Durability::None });
            {
                let mut tables = Tables(DEFS.iter().map(|d| tx.open_table(*d).unwrap()).collect());
                f(&mut tables);
            }
            tx.commit().unwrap();
        }
        pub fn info(&self) -> String {
            let sz = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            format!("file_bytes={sz}")
        }
    }
}

// ---------------------------------------------------------------- fjall
mod fjall_engine {
    use super::*;
    use fjall::{Config, PartitionCreateOptions, PersistMode, TxKeyspace, TxPartitionHandle, WriteTransaction};

    pub struct FTx<'a> {
        tx: WriteTransaction<'a>,
        parts: &'a [TxPartitionHandle],
    }

    impl Tx for FTx<'_> {
        fn get(&mut self, t: usize, key: &[u8], out: &mut Vec<u8>) -> bool {
            match self.tx.get(&self.parts[t], key).unwrap() {
                Some(v) => {
                    out.clear();
                    out.extend_from_slice(&v);
                    true
                }
                None => false,
            }
        }
        fn put(&mut self, t: usize, key: &[u8], val: &[u8]) {
            self.tx.insert(&self.parts[t], key, val);
        }
        fn del(&mut self, t: usize, key: &[u8]) {
            self.tx.remove(&self.parts[t], key);
        }
    }

    pub struct Eng {
        ks: Option<TxKeyspace>,
        parts: Vec<TxPartitionHandle>,
        path: std::path::PathBuf,
    }

    fn open(path: &Path) -> (TxKeyspace, Vec<TxPartitionHandle>) {
        let ks = Config::new(path)
            .cache_size(256 << 20)
            .open_transactional()
            .unwrap();
        let parts = NAMES
            .iter()
            .map(|n| ks.open_partition(n, PartitionCreateOptions::default()).unwrap())
            .collect();
        (ks, parts)
    }

    impl Eng {
        pub fn new(dir: &Path) -> Self {
            let path = dir.join("fjall");
            let (ks, parts) = open(&path);
            Eng { ks: Some(ks), parts, path }
        }
        pub fn reopen(&mut self) {
            self.ks.as_ref().unwrap().persist(PersistMode::SyncAll).unwrap();
            self.parts.clear();
            drop(self.ks.take());
            // give background threads a moment to release the keyspace
            std::thread::sleep(Duration::from_millis(500));
            let (ks, parts) = open(&self.path);
            self.ks = Some(ks);
            self.parts = parts;
        }
        /// One write transaction; when `durable`, the commit itself fdatasyncs the journal
        /// (WriteTransaction::durability(Some(PersistMode::SyncData))) before returning.
        pub fn txn(&self, durable: bool, f: &mut dyn FnMut(&mut dyn Tx)) {
            let ks = self.ks.as_ref().unwrap();
            let tx = ks
                .write_tx()
                .durability(if durable { Some(PersistMode::SyncData) } else { None });
            let mut ftx = FTx { tx, parts: &self.parts };
            f(&mut ftx);
            ftx.tx.commit().unwrap();
        }
        pub fn info(&self) -> String {
            let ks = self.ks.as_ref().unwrap();
            format!(
                "disk_space={} journal_count={} segments={}",
                ks.disk_space(),
                ks.journal_count(),
                self.parts.iter().map(|p| p.inner().segment_count()).sum::<usize>()
            )
        }
    }
}

enum Engine {
    Redb(redb_engine::Eng),
    Fjall(fjall_engine::Eng),
}

impl Engine {
    fn txn(&self, durable: bool, f: &mut dyn FnMut(&mut dyn Tx)) {
        match self {
            Engine::Redb(e) => e.txn(durable, f),
            Engine::Fjall(e) => e.txn(durable, f),
        }
    }
    fn reopen(&mut self) {
        match self {
            Engine::Redb(e) => e.reopen(),
            Engine::Fjall(e) => e.reopen(),
        }
    }
    fn info(&self) -> String {
        match self {
            Engine::Redb(e) => e.info(),
            Engine::Fjall(e) => e.info(),
        }
    }
}

// ---------------------------------------------------------------- workload data
const N_ACCOUNTS: usize = 10_000;
const N_DOCTORS: usize = 100;
const N_DATES: u32 = 60;
const BASE_DAY: u32 = 20_788; // 2026-12-01 in days since epoch (approx.)

struct World {
    accounts: Vec<[u8; 16]>,
    persons: Vec<[u8; 18]>,
    doctors: Vec<[u8; 16]>,
    text: Vec<u8>, // JSON-like corpus that values are sliced from
}

impl World {
    fn new(rng: &mut SmallRng) -> Self {
        let accounts = (0..N_ACCOUNTS).map(|_| rng.r#gen::<[u8; 16]>()).collect();
        let doctors = (0..N_DOCTORS).map(|_| rng.r#gen::<[u8; 16]>()).collect();
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let persons = (0..N_ACCOUNTS)
            .map(|_| {
                let mut p = [0u8; 18];
                for c in p.iter_mut() {
                    *c = ALNUM[rng.gen_range(0..ALNUM.len())];
                }
                p
            })
            .collect();
        // ~4 MiB of JSON-ish text with random ids/numbers/words
        const WORDS: &[&str] = &[
            "held", "confirmed", "cardiology", "follow-up", "first visit", "room", "floor",
            "notes", "patient", "requested", "morning", "afternoon", "insurance", "private",
            "referral", "dr", "check", "blood", "xray", "consult",
        ];
        let mut text = Vec::with_capacity(4 << 20);
        while text.len() < (4 << 20) {
            let id: u128 = rng.r#gen();
            let doc: u128 = rng.r#gen();
            let mut note = String::new();
            for _ in 0..rng.gen_range(3..12) {
                note.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
                note.push(' ');
            }
            let rec = format!(
                "{{\"id\":\"{id:032x}\",\"doctor\":\"{doc:032x}\",\"slot\":\"2026-12-{:02}T{:02}:{:02}\",\"price_cents\":{},\"status\":\"{}\",\"note\":\"{}\"}},",
                rng.gen_range(1..31),
                rng.gen_range(7..20),
                rng.gen_range(0..4) * 15,
                rng.gen_range(1000..90000),
                WORDS[rng.gen_range(0..3)],
                note
            );
            text.extend_from_slice(rec.as_bytes());
        }
        World { accounts, persons, doctors, text }
    }
    fn val(&self, off: u32, len: usize) -> &[u8] {
        &self.text[off as usize..off as usize + len]
    }
    fn rand_off(&self, rng: &mut SmallRng) -> u32 {
        rng.gen_range(0..(self.text.len() - 1024)) as u32
    }
}

/// Everything random about one hold, generated before the timed phase.
struct Hold {
    appt_id: [u8; 16],
    order_id: [u8; 16],
    outbox: [[u8; 16]; 2],
    events: [[u8; 16]; 2],
    doctor: u16,
    account: u16,
    date: u32,
    dept: u8,
    offs: [u32; 6], // appt, order, outbox0, outbox1, log0, log1
}

fn v7() -> [u8; 16] {
    *uuid::Uuid::now_v7().as_bytes()
}

fn gen_holds(n: usize, w: &World, rng: &mut SmallRng) -> Vec<Hold> {
    (0..n)
        .map(|_| Hold {
            appt_id: v7(),
            order_id: v7(),
            outbox: [v7(), v7()],
            events: [v7(), v7()],
            doctor: rng.gen_range(0..N_DOCTORS) as u16,
            account: rng.gen_range(0..N_ACCOUNTS) as u16,
            date: BASE_DAY + rng.gen_range(0..N_DATES),
            dept: rng.gen_range(0..10),
            offs: std::array::from_fn(|_| w.rand_off(rng)),
        })
        .collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ttl_key(expiry_ms: u64, table: &str, key: &[u8]) -> Vec<u8> {
    cat(&[&expiry_ms.to_be_bytes(), table.as_bytes(), key])
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The write pattern of one hold (steps 1-10).
fn apply_hold(t: &mut dyn Tx, w: &World, h: &Hold, now: u64, buf: &mut Vec<u8>) {
    let acct = &w.accounts[h.account as usize];
    let person = &w.persons[h.account as usize];
    let doctor = &w.doctors[h.doctor as usize];
    let date = h.date.to_be_bytes();
    // 1-4 appointment + indexes
    t.put(APPT, &h.appt_id, w.val(h.offs[0], 700));
    t.put(APPT_DOC, &cat(&[doctor, &date, &h.appt_id]), b"");
    t.put(APPT_ACCT, &cat(&[acct, &h.appt_id]), b"");
    t.put(APPT_PERSON, &cat(&[person, &date, &h.appt_id]), b"");
    // 5-6 order
    t.put(ORDERS, &h.order_id, w.val(h.offs[1], 400));
    t.put(ORDERS_ACCT, &cat(&[acct, &h.order_id]), b"");
    // 7 fence
    let fk = cat(&[b"schedule:", doctor]);
    let f = if t.get(FENCES, &fk, buf) { u64::from_le_bytes(buf[..8].try_into().unwrap()) } else { 0 };
    t.put(FENCES, &fk, &(f + 1).to_le_bytes());
    // 8 analytics counters
    let day = format!("2026-12-{:02}", (h.date - BASE_DAY) % 31 + 1);
    let keys = [
        format!("held:{day}:dept{}", h.dept),
        format!("held:{day}:doctor:{}", h.doctor),
        format!("held:{day}:all"),
        format!("held:month:2026-12:dept{}", h.dept),
    ];
    for k in &keys {
        let c = if t.get(ANALYTICS, k.as_bytes(), buf) { i64::from_le_bytes(buf[..8].try_into().unwrap()) } else { 0 };
        t.put(ANALYTICS, k.as_bytes(), &(c + 1).to_le_bytes());
    }
    // 9 live outbox
    t.put(OUTBOX, &h.outbox[0], w.val(h.offs[2], 600));
    t.put(OUTBOX, &h.outbox[1], w.val(h.offs[3], 600));
    // 10 event log, two events
    let expiry = now + 24 * 3600 * 1000;
    let acct_hex = hex(acct);
    for e in 0..2 {
        let head_key = format!("log:acct:{acct_hex}:head");
        let n: u64 = if t.get(KV, head_key.as_bytes(), buf) {
            std::str::from_utf8(buf).unwrap().parse().unwrap()
        } else {
            0
        } + 1;
        let ns = n.to_string();
        t.put(KV, head_key.as_bytes(), ns.as_bytes());
        let log_key = format!("log:acct:{acct_hex}:{n}");
        t.put(KV, log_key.as_bytes(), w.val(h.offs[4 + e], 700));
        let id_key = cat(&[b"logid:", &h.events[e]]);
        t.put(KV, &id_key, ns.as_bytes());
        t.put(TTL, &ttl_key(expiry, "kv", head_key.as_bytes()), b"");
        t.put(TTL, &ttl_key(expiry, "kv", log_key.as_bytes()), b"");
        t.put(TTL, &ttl_key(expiry, "kv", &id_key), b"");
    }
}

// ---------------------------------------------------------------- prefill
fn prefill(eng: &Engine, w: &World, rng: &mut SmallRng) {
    let expiry = now_ms() + 24 * 3600 * 1000;
    // appointments + by_doctor (20k), orders (20k)
    for chunk in 0..4 {
        eng.txn(false, &mut |t| {
            for _ in 0..5_000 {
                let id = v7();
                let d = &w.doctors[rng.gen_range(0..N_DOCTORS)];
                let date = (BASE_DAY - 30 + rng.gen_range(0..N_DATES)).to_be_bytes();
                t.put(APPT, &id, w.val(w.rand_off(rng), 700));
                t.put(APPT_DOC, &cat(&[d, &date, &id]), b"");
                let oid = v7();
                t.put(ORDERS, &oid, w.val(w.rand_off(rng), 400));
            }
        });
        let _ = chunk;
    }
    // per-account rows: 3 appt_by_account, 3 by_person, 3 orders_by_account,
    // kv: head + 3 log rows + 2 logid rows (=60k kv rows), ttl rows for log/logid rows
    for chunk in 0..10 {
        eng.txn(false, &mut |t| {
            for a in chunk * 1000..(chunk + 1) * 1000 {
                let acct = &w.accounts[a];
                let person = &w.persons[a];
                for _ in 0..3 {
                    let id = v7();
                    let date = (BASE_DAY - 30 + rng.gen_range(0..N_DATES)).to_be_bytes();
                    t.put(APPT_ACCT, &cat(&[acct, &id]), b"");
                    t.put(APPT_PERSON, &cat(&[person, &date, &id]), b"");
                    t.put(ORDERS_ACCT, &cat(&[acct, &v7()]), b"");
                }
                let ah = hex(acct);
                t.put(KV, format!("log:acct:{ah}:head").as_bytes(), b"3");
                for n in 1..=3 {
                    let k = format!("log:acct:{ah}:{n}");
                    t.put(KV, k.as_bytes(), w.val(w.rand_off(rng), 700));
                    t.put(TTL, &ttl_key(expiry, "kv", k.as_bytes()), b"");
                }
                for n in 2..=3 {
                    let k = cat(&[b"logid:", &v7()]);
                    t.put(KV, &k, n.to_string().as_bytes());
                    t.put(TTL, &ttl_key(expiry, "kv", &k), b"");
                }
            }
        });
    }
    // fences + analytics
    eng.txn(true, &mut |t| {
        for d in &w.doctors {
            t.put(FENCES, &cat(&[b"schedule:", d]), &1u64.to_le_bytes());
        }
        for day in 1..=31 {
            for dept in 0..10 {
                t.put(ANALYTICS, format!("held:2026-12-{day:02}:dept{dept}").as_bytes(), &5i64.to_le_bytes());
            }
        }
    });
}

// ---------------------------------------------------------------- measurement
fn rusage(who: libc::c_int) -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

fn proc_io(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field).map(|r| r.trim_start_matches(':').trim().parse().unwrap()))
        .unwrap()
}

/// sectors written to the block device holding the data dir (vda), whole system
fn dev_sectors_written() -> u64 {
    std::fs::read_to_string("/sys/block/vda/stat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(6).map(|x| x.parse().unwrap()))
        .unwrap_or(0)
}

fn clock(id: libc::clockid_t) -> f64 {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

struct Snap {
    thr_clk: f64,
    proc_clk: f64,
    thr: (f64, f64),
    proc_: (f64, f64),
    wbytes: u64,
    cancelled: u64,
    sectors: u64,
    t: Instant,
}

fn snap() -> Snap {
    Snap {
        thr_clk: clock(libc::CLOCK_THREAD_CPUTIME_ID),
        proc_clk: clock(libc::CLOCK_PROCESS_CPUTIME_ID),
        thr: rusage(libc::RUSAGE_THREAD),
        proc_: rusage(libc::RUSAGE_SELF),
        wbytes: proc_io("write_bytes"),
        cancelled: proc_io("cancelled_write_bytes"),
        sectors: dev_sectors_written(),
        t: Instant::now(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let engine = args[1].as_str();
    let per_txn: usize = args[2].parse().unwrap();
    let dir = Path::new(&args[3]);
    let n_holds: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(10_000);
    std::fs::create_dir_all(dir).unwrap();

    let mut rng = SmallRng::seed_from_u64(0xC0FFEE);
    let w = World::new(&mut rng);

    let mut eng = match engine {
        "redb" => Engine::Redb(redb_engine::Eng::new(dir)),
        "fjall" => Engine::Fjall(fjall_engine::Eng::new(dir)),
        _ => panic!("engine must be redb or fjall"),
    };
    let t0 = Instant::now();
    prefill(&eng, &w, &mut rng);
    eng.reopen();
    let prefill_s = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3)); // let any background flush/compaction settle
    let info_before = eng.info();

    let holds = gen_holds(n_holds, &w, &mut rng);
    let mut buf = Vec::with_capacity(1024);

    let a = snap();
    let mut prev: Option<&[Hold]> = None;
    let mut txns = 0;
    for batch in holds.chunks(per_txn) {
        let now = now_ms();
        eng.txn(true, &mut |t| {
            // step 11: delete the previous transaction's outbox rows
            if let Some(p) = prev {
                for h in p {
                    t.del(OUTBOX, &h.outbox[0]);
                    t.del(OUTBOX, &h.outbox[1]);
                }
            }
            for h in batch {
                apply_hold(t, &w, h, now, &mut buf);
            }
        });
        txns += 1;
        prev = Some(batch);
    }
    // final transaction: delete the last batch's outbox rows
    eng.txn(true, &mut |t| {
        for h in prev.unwrap() {
            t.del(OUTBOX, &h.outbox[0]);
            t.del(OUTBOX, &h.outbox[1]);
        }
    });
    txns += 1;
    let b = snap();
    let info_after = eng.info();
    // background work (flush/compaction) that continues after the last commit
    std::thread::sleep(Duration::from_secs(3));
    let c = snap();

    // sanity: outbox empty, head counters advanced
    let mut out_rows = 0usize;
    eng.txn(false, &mut |t| {
        for h in holds.iter().take(50) {
            if t.get(OUTBOX, &h.outbox[0], &mut buf) {
                out_rows += 1;
            }
        }
    });

    let thr_u = b.thr.0 - a.thr.0;
    let thr_s = b.thr.1 - a.thr.1;
    let pr_u = b.proc_.0 - a.proc_.0;
    let pr_s = b.proc_.1 - a.proc_.1;
    let wall = b.t.duration_since(a.t).as_secs_f64();
    let wb = b.wbytes - a.wbytes;
    let canc = b.cancelled - a.cancelled;
    let dev = (b.sectors - a.sectors) * 512;
    println!(
        "engine={engine} holds_per_txn={per_txn} holds={n_holds} txns={txns} \
         thread_cpu_us_per_hold={:.1} proc_cpu_us_per_hold_clk={:.1} proc_cpu_us_per_hold_incl_3s_tail={:.1} write_MB_incl_tail={:.2} thread_user_ms={:.1} thread_sys_ms={:.1} \
         proc_cpu_us_per_hold_rusage={:.1} proc_user_ms={:.1} proc_sys_ms={:.1} \
         wall_ms={:.1} write_MB={:.2} cancelled_MB={:.2} dev_written_MB={:.2} \
         prefill_s={prefill_s:.1} outbox_left={out_rows} before[{info_before}] after[{}]",
        (b.thr_clk - a.thr_clk) / n_holds as f64,
        (b.proc_clk - a.proc_clk) / n_holds as f64,
        (c.proc_clk - a.proc_clk) / n_holds as f64,
        (c.wbytes - a.wbytes) as f64 / 1e6,
        thr_u / 1e3,
        thr_s / 1e3,
        (pr_u + pr_s) / n_holds as f64,
        pr_u / 1e3,
        pr_s / 1e3,
        wall * 1e3,
        wb as f64 / 1e6,
        canc as f64 / 1e6,
        dev as f64 / 1e6,
        info_after
    );
    let _ = (thr_s, thr_u);
}
