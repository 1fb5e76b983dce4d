//! The store writer's CPU per durable hold (issue 13): the rows of the everyone-wins storm's
//! holds (a held appointment, its order, their two live events; 100 doctors x 100 places), handed
//! to the embedded store by 100 concurrent writers as the doctors' pipelines do. Prints the CPU
//! seconds of the `store-writer` thread (from /proc) per 10,000 holds, which is the node's serial
//! section.
//!
//! The write is the server's own on its own (no Redis, no ScyllaDB), as the storms run it: the
//! events logged in place (`with_event_log`), the new appointment and order marked `created`,
//! the accounts made before the burst and booking in the storm's order (patient i on doctor
//! i % 100, so a batch's account keys are spread over all of them, not minted in key order),
//! mimalloc as the allocator and transparent huge pages off, as `src/main.rs` has them. (Until
//! stop 50 it wrote through the outbox, read both rows' old versions and minted each account at
//! its hold, whose keys then went into the memtable in order: see docs/benchmarks.md.)
//!
//! Where it still differs: its analytics counters' reads are 12 % of its writer thread, against
//! 1.4 % in the server's storm (stop 50's profiles): a change aimed at them showed 9 % here and
//! nothing in the server. Check a writer change with `load-tests/cpustorm.sh` before keeping it.
//!
//! Run: `cargo bench -p hospital-store --bench writer` (release); `WRITER_BENCH_ROUNDS` storms
//! (default 3) into one store, each reported. To see what a part costs: `WRITER_BENCH_ROLLUPS=0`
//! leaves the analytics counters out, `WRITER_BENCH_EVENTS=0` the live events;
//! `WRITER_BENCH_OUTBOX=1` writes the events through the outbox and removes them after, as a node
//! with Redis or ScyllaDB does.

mod common;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use hospital_domain::live::PersonalEvent;
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus};
use hospital_domain::*;
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, OutboxStore, PendingEvent, ScheduleStore};
use std::time::Instant;

/// The server's allocator (`src/main.rs`): the writer's allocations are a tenth of its CPU under
/// glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DOCTORS: usize = 100;
const PLACES: usize = 100;

/// CPU seconds used so far by this process's threads named `store-writer`.
fn writer_cpu() -> f64 {
    let tck = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "store-writer" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        ticks += f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    }
    ticks as f64 / tck
}

fn main() {
    let rounds: usize = std::env::var("WRITER_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let on = |name: &str| std::env::var(name).map_or(true, |v| v != "0");
    let (rollups, with_events) = (on("WRITER_BENCH_ROLLUPS"), on("WRITER_BENCH_EVENTS"));
    let outbox = std::env::var("WRITER_BENCH_OUTBOX").is_ok_and(|v| v == "1");
    // As `src/main.rs` does at start (it says why); pretouched memory is not modelled here.
    // SAFETY: a process-wide flag; no pointers are passed.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap().with_rollups(rollups).with_event_log(!outbox);
        let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        for round in 0..rounds {
            let sessions: Vec<ClinicSession> = (0..DOCTORS)
                .map(|_| ClinicSession {
                    id: SessionId::new(),
                    doctor_id: DoctorId::new(),
                    department_id: DepartmentId::new(),
                    date,
                    period: Period::Morning,
                    segments: vec![Segment {
                        start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                        end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
                        quota: PLACES as u32,
                    }],
                    fee: Fen::new(5000),
                    release_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
                    status: SessionStatus::Open,
                })
                .collect();
            store.put_sessions(&sessions).await.unwrap();
            // The storm's patients signed up before it: their ids minted in sign-up order, patient
            // i booking doctor i % DOCTORS, each doctor's in that order.
            let accounts: Vec<AccountId> = (0..DOCTORS * PLACES).map(|_| AccountId::new()).collect();
            let (w0, t0) = (writer_cpu(), Instant::now());
            let mut tasks = Vec::new();
            for (d, s) in sessions.into_iter().enumerate() {
                let store = store.clone();
                let mine: Vec<AccountId> = accounts.iter().skip(d).step_by(DOCTORS).copied().collect();
                tasks.push(tokio::spawn(async move {
                    for (place, account) in (1..=PLACES as u32).zip(mine) {
                        let mut a = common::held(s.doctor_id, s.department_id, s.id, s.date, Utc::now());
                        a.place = place;
                        a.account_id = account;
                        let o = Order::registration(&a);
                        let events = if with_events {
                            vec![
                                PendingEvent::new(a.account_id, PersonalEvent::Appointment((&a).into())),
                                PendingEvent::new(o.account_id, PersonalEvent::Order((&o).into())),
                            ]
                        } else {
                            Vec::new()
                        };
                        // Only the outbox path removes them after.
                        let ids: Vec<uuid::Uuid> = if outbox { events.iter().map(|e| e.id).collect() } else { Vec::new() };
                        // As the schedule actor's hold marks them (`ScheduleState::hold`).
                        let created = [a.id.0, o.id.0].into();
                        let w = BookingWrite { appointments: vec![a], orders: vec![o], events, created, ..Default::default() };
                        store.apply_booking(w).await.unwrap();
                        if outbox {
                            store.outbox_remove(&ids).await.unwrap();
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            let (cpu, secs) = (writer_cpu() - w0, t0.elapsed().as_secs_f64());
            let holds = DOCTORS * PLACES;
            println!(
                "round {round}: {holds} holds in {secs:.2} s ({:.0}/s), writer CPU {cpu:.2} s = {:.2} s per 10,000 holds",
                holds as f64 / secs,
                cpu * 10_000.0 / holds as f64
            );
        }
        println!("on disk {:.1} MiB", store.engine().stats().disk_bytes as f64 / (1 << 20) as f64);
    });
}
