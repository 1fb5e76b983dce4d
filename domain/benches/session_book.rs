//! A hold's cost in one session's book as its places fill: N holds into a session of N places,
//! each by another person, timed together. The book's own work only (no actor, no store); it
//! should not grow with N (docs/benchmarks.md, the storm of 18,000). Run: `cargo bench -p
//! hospital-domain --bench session_book`.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime};
use hospital_domain::booking::{HoldRequest, SessionBook};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, Fen, OrderId, PatientId, SessionId};

fn main() {
    for places in [100u32, 180, 500, 2000] {
        let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("09:00");
        let session = ClinicSession {
            id: SessionId::new(),
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("a date"),
            period: Period::Morning,
            // One segment holding every place.
            segments: split_segments(NaiveTime::from_hms_opt(8, 0, 0).expect("08:00"), nine, 60, places),
            fee: Fen::new(1500),
            release_at: DateTime::from_timestamp(1_000, 0).expect("a time"),
            status: SessionStatus::Open,
        };
        let now = DateTime::from_timestamp(2_000, 0).expect("a time");
        let requests: Vec<HoldRequest> = (0..u64::from(places))
            .map(|i| HoldRequest {
                appointment_id: AppointmentId::new(),
                order_id: OrderId::new(),
                account_id: AccountId::new(),
                patient_id: PatientId::new(),
                // An ID-number index is a 64-character hex digest.
                person: format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                patient_name: "张三".into(),
                idempotency_key: None,
                now,
                hold_for: Duration::minutes(15),
            })
            .collect();
        let started = std::time::Instant::now();
        let mut book = SessionBook::new(session, [], vec![]);
        for r in &requests {
            book.hold(0, r).expect("a place for each");
        }
        let per_hold = started.elapsed().as_secs_f64() * 1e6 / f64::from(places);
        println!("{places:>5} places: {per_hold:.2} µs per hold");
    }
}
