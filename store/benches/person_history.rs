//! The real-name rules' read of a person's appointments (`appointments_of_person`) on the
//! embedded store: a patient who has come every week for ten years (520 appointments), read for
//! the window the rules ask before a hold (90 days back, 7 ahead), against the same person's
//! whole history (what the store read before it took the window's range, then filtered), and a
//! person with none (answered from the kept partitions, `presence`). 200 such patients in the
//! store, so the partition is one among many.
//!
//! Run: `cargo bench -p hospital-store --bench person_history` (release). Figures in
//! docs/benchmarks.md, "Nobody's history".

mod common;

use chrono::{Days, NaiveDate, NaiveTime, TimeZone, Utc};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus};
use hospital_domain::*;
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore};
use std::time::Instant;

const PERSONS: usize = 200;
const WEEKS: u64 = 520;
const READS: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let session = ClinicSession {
            id: SessionId::new(),
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date: today,
            period: Period::Morning,
            segments: vec![Segment {
                start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
                quota: 100,
            }],
            fee: Fen::new(5000),
            release_at: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
            status: SessionStatus::Open,
        };
        let mut persons = Vec::new();
        for p in 0..PERSONS {
            let person = format!("{p:064x}");
            let mut w = BookingWrite::default();
            for week in 0..WEEKS {
                let date = today - Days::new(7 * week);
                let mut a = common::held(session.doctor_id, session.department_id, session.id, date, Utc::now());
                a.person = person.clone();
                a.status = AppointmentStatus::Seen;
                w.orders.push(Order::registration(&a));
                w.appointments.push(a);
            }
            store.apply_booking(w).await.unwrap();
            persons.push(person);
        }
        let (from, to) = (today - Days::new(90), today + Days::new(7));
        let window = store.appointments_of_person(&persons[0], from, to).await.unwrap().len();
        let all = store.appointments_of_person(&persons[0], NaiveDate::MIN, NaiveDate::MAX).await.unwrap().len();
        assert!(window > 0 && all == WEEKS as usize, "{window} in the window, {all} in all");
        let nobody = format!("{:064x}", u128::MAX);
        // Interleaved, so a change in the host's speed touches all three alike.
        let mut spent = [0f64; 3];
        for i in 0..READS {
            let person = &persons[i % PERSONS];
            let t = Instant::now();
            std::hint::black_box(store.appointments_of_person(person, from, to).await.unwrap());
            spent[0] += t.elapsed().as_secs_f64();
            if i % 10 == 0 {
                // The whole history is slow: one read in ten.
                let t = Instant::now();
                std::hint::black_box(
                    store.appointments_of_person(person, NaiveDate::MIN, NaiveDate::MAX).await.unwrap(),
                );
                spent[1] += t.elapsed().as_secs_f64() * 10.0;
            }
            let t = Instant::now();
            std::hint::black_box(store.appointments_of_person(&nobody, from, to).await.unwrap());
            spent[2] += t.elapsed().as_secs_f64();
        }
        let us = |s: f64| s * 1e6 / READS as f64;
        println!("{PERSONS} persons x {WEEKS} weekly appointments; {READS} reads each, interleaved");
        println!("the rules' window ({window} rows): {:.1} µs a read", us(spent[0]));
        println!("the whole history ({all} rows): {:.1} µs a read", us(spent[1]));
        println!("a person with none: {:.2} µs a read", us(spent[2]));
    });
}
