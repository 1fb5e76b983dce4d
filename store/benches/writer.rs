//! The store writer's CPU per durable hold (issue 13): the rows of the everyone-wins storm's
//! holds (a held appointment, its order, their two live events; 100 doctors x 100 places), handed
//! to the embedded store by 100 concurrent writers as the doctors' pipelines do, then the outbox
//! rows removed as the dispatcher does. Prints the CPU seconds of the `store-writer` thread (from
//! /proc) per 10,000 holds, which is the node's serial section.
//!
//! Run: `cargo bench -p hospital-store --bench writer` (release); `WRITER_BENCH_ROUNDS` storms
//! (default 3) into one store, each reported. To see what a part costs: `WRITER_BENCH_ROLLUPS=0`
//! leaves the analytics counters out, `WRITER_BENCH_EVENTS=0` the live events.

mod common;

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};
use hospital_domain::live::PersonalEvent;
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus};
use hospital_domain::*;
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, OutboxStore, PendingEvent, ScheduleStore};
use std::time::Instant;

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
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap().with_rollups(rollups);
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
            let (w0, t0) = (writer_cpu(), Instant::now());
            let mut tasks = Vec::new();
            for s in sessions {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    for place in 1..=PLACES as u32 {
                        let mut a = common::held(s.doctor_id, s.department_id, s.id, s.date, Utc::now());
                        a.place = place;
                        let o = Order::registration(&a);
                        let events = if with_events {
                            vec![
                                PendingEvent::new(a.account_id, PersonalEvent::Appointment((&a).into())),
                                PendingEvent::new(o.account_id, PersonalEvent::Order((&o).into())),
                            ]
                        } else {
                            Vec::new()
                        };
                        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
                        let w = BookingWrite { appointments: vec![a], orders: vec![o], events, ..Default::default() };
                        store.apply_booking(w).await.unwrap();
                        store.outbox_remove(&ids).await.unwrap();
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
