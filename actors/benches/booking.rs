//! Booking throughput through the real actors and the real embedded store (fsync on every commit):
//!
//! - (a) "sold out" answers per second from ONE schedule actor (answered from memory);
//! - (b) holds per second into ONE schedule actor, each durable before it is answered;
//! - (c) confirmed bookings per second (hold, then confirm) into one actor;
//! - (d) the same as (b) spread over 20 doctors.
//!
//! Concurrent holds share syncs twice over: the actor's write pipeline merges what queued while
//! the previous write was on disk into one `apply_booking`, and the store's writer thread commits
//! every `apply_booking` waiting (from any actor) in one transaction. A metrics recorder counts
//! both batchings. Run: `cargo bench -p hospital-actors --bench booking`.

use chrono::{Duration as Days, NaiveTime, Utc};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, Booker, BookingError, ScheduleMsg};
use hospital_domain::appointment::Appointment;
use hospital_domain::order::Order;
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, Fen, PatientId, SessionId};
use hospital_store::{EmbeddedStore, ScheduleStore, Stores};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use ractor::rpc::CallResult;
use ractor::ActorRef;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A tiny recorder: count and sum of the histograms the write path records
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Sum {
    count: AtomicU64,
    /// Sum of the recorded values (batch sizes are whole numbers).
    total: AtomicU64,
}

impl HistogramFn for Sum {
    fn record(&self, value: f64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(value as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Sums(Mutex<HashMap<String, Arc<Sum>>>);

impl Sums {
    fn get(&self, name: &str) -> Arc<Sum> {
        self.0.lock().unwrap().entry(name.to_string()).or_default().clone()
    }
    /// (how many batches, how many items in them)
    fn read(&self, name: &str) -> (u64, u64) {
        let s = self.get(name);
        (s.count.load(Ordering::Relaxed), s.total.load(Ordering::Relaxed))
    }
}

static SUMS: OnceLock<Arc<Sums>> = OnceLock::new();

struct SumRecorder(Arc<Sums>);

impl Recorder for SumRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match key.name() {
            n @ ("booking_write_batch_size" | "store_write_batch_size") => Histogram::from_arc(self.0.get(n)),
            _ => Histogram::noop(),
        }
    }
}

fn sums() -> &'static Sums {
    SUMS.get().expect("recorder installed")
}

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

struct Bench {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    system: ActorSystem,
}

async fn start() -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let config = ActorConfig {
        hold_ttl: Duration::from_secs(3600),
        call_timeout: Duration::from_secs(60),
        start_timeout: Duration::from_secs(60),
        ..ActorConfig::default()
    };
    let system = ActorSystem::start(ActorDeps::new(stores, config)).await.unwrap();
    Bench { _dir: dir, store, system }
}

/// `days` x 3 periods of sessions for `doctor`, each with 8 segments of `quota` places.
async fn add_sessions(store: &EmbeddedStore, doctor: DoctorId, days: i64, quota: u32) -> Vec<SessionId> {
    let today = HospitalZone::default().local_date(Utc::now());
    let department = DepartmentId::new();
    let mut sessions = Vec::new();
    for d in 1..=days {
        for (period, start) in [(Period::Morning, 8), (Period::Afternoon, 13), (Period::Evening, 18)] {
            sessions.push(ClinicSession {
                id: SessionId::new(),
                doctor_id: doctor,
                department_id: department,
                date: today + Days::days(d),
                period,
                segments: split_segments(
                    NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
                    NaiveTime::from_hms_opt(start + 4, 0, 0).unwrap(),
                    30,
                    quota,
                ),
                fee: Fen::new(1500),
                release_at: Utc::now() - Days::hours(1),
                status: SessionStatus::Open,
            });
        }
    }
    store.put_sessions(&sessions).await.unwrap();
    sessions.into_iter().map(|s| s.id).collect()
}

static NEXT_PERSON: AtomicU64 = AtomicU64::new(0);

fn booker() -> Booker {
    let n = NEXT_PERSON.fetch_add(1, Ordering::Relaxed);
    Booker {
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        person: format!("bench-person-{n}"),
        patient_name: format!("患者{n}"),
        idempotency_key: None,
        turn: Default::default(),
    }
}

async fn hold(actor: &ActorRef<ScheduleMsg>, slot: SlotId) -> Result<(Appointment, Order), BookingError> {
    let booker = booker();
    match actor.call(|reply| ScheduleMsg::Hold { slot, booker, reply }, Some(Duration::from_secs(60))).await {
        Ok(CallResult::Success(r)) => r,
        other => panic!("hold call failed: {other:?}"),
    }
}

async fn confirm(actor: &ActorRef<ScheduleMsg>, a: &Appointment) -> Appointment {
    let appointment = a.id;
    match actor.call(|reply| ScheduleMsg::Confirm { appointment, reply }, Some(Duration::from_secs(60))).await {
        Ok(CallResult::Success(r)) => r.expect("confirmed"),
        other => panic!("confirm call failed: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

struct Row {
    name: String,
    callers: usize,
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
    note: String,
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

/// Runs `callers` tasks, each doing `per_caller` operations (`op(caller, i)`), and measures each.
async fn measure<F, Fut>(name: &str, callers: usize, per_caller: usize, op: F) -> Row
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..callers {
        let op = op.clone();
        tasks.spawn(async move {
            let mut lat = Vec::with_capacity(per_caller);
            for i in 0..per_caller {
                let t = Instant::now();
                op(c, i).await;
                lat.push(t.elapsed());
            }
            lat
        });
    }
    let mut all = Vec::with_capacity(callers * per_caller);
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    Row {
        name: name.into(),
        callers,
        ops: all.len(),
        secs,
        p50: pct(&all, 0.50),
        p99: pct(&all, 0.99),
        note: String::new(),
    }
}

/// The pipeline and store batching between two readings.
fn batching(before: [(u64, u64); 2]) -> String {
    let now = [sums().read("booking_write_batch_size"), sums().read("store_write_batch_size")];
    let (writes, merged) = (now[0].0 - before[0].0, now[0].1 - before[0].1);
    let (commits, jobs) = (now[1].0 - before[1].0, now[1].1 - before[1].1);
    let avg = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    format!(
        "{merged} changes in {writes} apply_booking (avg {:.1}/write); {jobs} store jobs in {commits} commits (avg {:.1}/fsync)",
        avg(merged, writes),
        avg(jobs, commits)
    )
}

fn reading() -> [(u64, u64); 2] {
    [sums().read("booking_write_batch_size"), sums().read("store_write_batch_size")]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

async fn sold_out(b: &Bench, callers: usize, per_caller: usize) -> Row {
    let doctor = DoctorId::new();
    let sessions = add_sessions(&b.store, doctor, 1, 1).await;
    let actor = b.system.schedule(doctor).await.unwrap();
    // Fill the first session: 8 segments of one place.
    for g in 0..8 {
        hold(&actor, SlotId { session_id: sessions[0], segment: g }).await.unwrap();
    }
    let slot = SlotId { session_id: sessions[0], segment: 0 };
    let before = reading();
    let mut row = measure("(a) sold out, 1 actor", callers, per_caller, move |_, _| {
        let actor = actor.clone();
        async move {
            let r = hold(&actor, slot).await;
            assert!(matches!(r, Err(BookingError::Book(hospital_domain::booking::BookError::SoldOut))), "{r:?}");
        }
    })
    .await;
    row.note = batching(before);
    row
}

/// Holds on `doctors` doctors, each with 30 days x 3 sessions x 8 segments x 25 places; caller
/// `c` books doctor `c % doctors`, walking through that doctor's slots. With `then_confirm`,
/// each operation is a hold followed by its confirmation.
async fn holds(b: &Bench, name: &str, doctors: usize, callers: usize, per_caller: usize, then_confirm: bool) -> Row {
    let mut targets = Vec::new();
    for _ in 0..doctors {
        let doctor = DoctorId::new();
        let sessions = add_sessions(&b.store, doctor, 30, 25).await;
        let actor = b.system.schedule(doctor).await.unwrap();
        targets.push((actor, sessions));
    }
    let targets = Arc::new(targets);
    let next = Arc::new(AtomicU64::new(0));
    let before = reading();
    let mut row = measure(name, callers, per_caller, move |c, _| {
        let targets = targets.clone();
        let n = next.fetch_add(1, Ordering::Relaxed) as usize;
        async move {
            let (actor, sessions) = &targets[c % targets.len()];
            // Spread over sessions and segments so no session's book grows large.
            let slot = SlotId { session_id: sessions[n % sessions.len()], segment: ((n / sessions.len()) % 8) as u16 };
            let (a, _) = hold(actor, slot).await.expect("a place is free");
            if then_confirm {
                confirm(actor, &a).await;
            }
        }
    })
    .await;
    row.note = batching(before);
    row
}

fn main() {
    let sums = Arc::new(Sums::default());
    let _ = SUMS.set(sums.clone());
    metrics::set_global_recorder(SumRecorder(sums)).expect("no other recorder");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let quick = std::env::args().any(|a| a == "--quick");
    let scale = if quick { 10 } else { 1 };
    rt.block_on(async {
        let b = start().await;
        // Warm-up: start an actor, one durable write.
        let _ = holds(&b, "warm-up", 1, 4, 10, false).await;
        let rows = vec![
            sold_out(&b, 64, 5_000 / scale).await,
            holds(&b, "(b) holds, 1 actor", 1, 64, 150 / scale, false).await,
            holds(&b, "(b') holds, 1 actor, 1 caller", 1, 1, 200 / scale, false).await,
            holds(&b, "(c) hold+confirm, 1 actor", 1, 64, 100 / scale, true).await,
            holds(&b, "(d) holds, 20 actors", 20, 200, 50 / scale, false).await,
        ];
        println!();
        println!(
            "{:<32} {:>7} {:>8} {:>8} {:>10} {:>9} {:>9}",
            "scenario", "callers", "ops", "secs", "ops/s", "p50 ms", "p99 ms"
        );
        for r in &rows {
            println!(
                "{:<32} {:>7} {:>8} {:>8.2} {:>10.0} {:>9} {:>9}",
                r.name,
                r.callers,
                r.ops,
                r.secs,
                r.ops as f64 / r.secs,
                ms(r.p50),
                ms(r.p99)
            );
        }
        println!();
        for r in &rows {
            println!("{}: {}", r.name, r.note);
        }
        println!("(machine: {} cores available)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
        b.system.shutdown().await;
    });
}
