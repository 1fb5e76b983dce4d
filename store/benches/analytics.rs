//! The analytics benchmark (issue 10, must-show 7), on the embedded store:
//!
//! 1. One year of a large hospital's bookings (`ANALYTICS_BENCH_APPTS`, 3 000 000 by default:
//!    40 departments, 400 doctors, 20 half-hour slots a day, booked 0..7 days ahead at hours
//!    weighted to the morning; 8 % cancelled, 2 % lapsed unpaid, 5 % no-shows, the rest seen)
//!    is turned into counters by the same domain code the booking writes run
//!    (`analytics::appointment_deltas`), summed, and written into `analytics_daily` a day at a
//!    time (`add_rollups`).
//! 2. The report over the whole year (every metric's range read + `report::build`), timed
//!    `QUERY_RUNS` times: the cost of an analytics query.
//! 3. The same booking write (a new held appointment, its order and its session) on two stores,
//!    one adding the counters in the write and one not (`with_rollups(false)`), interleaved one
//!    by one: the cost the rollups add to each booking.
//!
//! Run: `cargo bench -p hospital-store --bench analytics` (release). Figures in
//! docs/benchmarks.md, "Analytics".

mod common;

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use hospital_domain::analytics::{self, report, RollupDelta, RollupRow, METRICS};
use hospital_domain::appointment::AppointmentEvent;
use hospital_domain::order::{Order, OrderKind};
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus};
use hospital_domain::time::HospitalZone;
use hospital_domain::*;
use hospital_store::{BackOfficeStore, BookingStore, BookingWrite, EmbeddedStore, ScheduleStore};
use std::collections::HashMap;
use std::time::Instant;

const QUERY_RUNS: usize = 7;

/// xorshift64*: deterministic and fast.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let appts: u64 = std::env::var("ANALYTICS_BENCH_APPTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000_000);
    let bookings: usize = std::env::var("ANALYTICS_BENCH_BOOKINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(run(appts, bookings));
}

async fn run(appts: u64, bookings: usize) {
    let zone = HospitalZone::default();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let departments: Vec<DepartmentId> = (0..40).map(|_| DepartmentId::new()).collect();
    let doctors: Vec<(DoctorId, DepartmentId)> =
        (0..400).map(|i| (DoctorId::new(), departments[i % departments.len()])).collect();
    let first = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let (from, to) = (first, first + Duration::days(364));
    // Booking hours, weighted: most between 07:00 and 10:00 (the release time) and the evening.
    let hours: Vec<u32> = (0..24u32)
        .flat_map(|h| {
            let w = match h {
                7..=9 => 12,
                10..=11 | 19..=21 => 6,
                12..=18 => 4,
                22..=23 => 2,
                _ => 1,
            };
            std::iter::repeat_n(h, w)
        })
        .collect();

    // 1. A year of bookings into counters.
    let t = Instant::now();
    let session = SessionId::new();
    let mut sums: HashMap<(&'static str, NaiveDate, String), i64> = HashMap::new();
    // Bookings made within the year (those of its first days' visits made before it are not).
    let mut made_in_year = 0u64;
    let per_day = appts / 365;
    for day in 0..365u64 {
        let date = from + Duration::days(day as i64);
        for _ in 0..per_day + u64::from(day < appts % 365) {
            let (doctor, department) = doctors[rng.below(doctors.len() as u64) as usize];
            let ahead = rng.below(8) as i64;
            let hour = hours[rng.below(hours.len() as u64) as usize];
            let made = date - Duration::days(ahead);
            made_in_year += u64::from(made >= from);
            let created = zone.to_utc(made, NaiveTime::from_hms_opt(hour, rng.below(60) as u32, 0).unwrap());
            let slot = NaiveTime::from_hms_opt(8, 0, 0).unwrap() + Duration::minutes(30 * rng.below(20) as i64);
            let held = common::held(doctor, department, session, date, created);
            let mut deltas = analytics::appointment_deltas(None, &held, Some(slot), zone);
            let fate = rng.below(100);
            let mut a = held.clone();
            let events: &[AppointmentEvent] = match fate {
                0..=1 => &[AppointmentEvent::Expire],
                2..=5 => &[AppointmentEvent::Cancel],
                6..=9 => &[AppointmentEvent::Pay, AppointmentEvent::Cancel],
                10..=14 => &[AppointmentEvent::Pay, AppointmentEvent::MarkMissed],
                _ => &[AppointmentEvent::Pay, AppointmentEvent::CheckIn, AppointmentEvent::FinishVisit],
            };
            for e in events {
                let before = a.clone();
                a.apply(*e, created).unwrap();
                deltas.extend(analytics::appointment_deltas(Some(&before), &a, None, zone));
            }
            for d in deltas {
                *sums.entry((d.metric, d.day, d.dim)).or_insert(0) += d.n;
            }
        }
    }
    let computed = t.elapsed();
    let mut by_day: HashMap<NaiveDate, Vec<RollupDelta>> = HashMap::new();
    let rows = sums.len();
    for ((metric, day, dim), n) in sums {
        by_day.entry(day).or_default().push(RollupDelta { metric, day, dim, n });
    }
    let t = Instant::now();
    for (_, deltas) in by_day {
        store.add_rollups(&deltas).await.unwrap();
    }
    let written = t.elapsed();
    println!("generated {appts} appointments over {from}..{to}: {rows} counter rows");
    println!(
        "  counting them with the domain code: {:.1} s; writing the counters: {:.1} s",
        computed.as_secs_f64(),
        written.as_secs_f64()
    );

    // 2. The year's report.
    let mut times = Vec::new();
    let mut booked = 0;
    for _ in 0..QUERY_RUNS {
        let t = Instant::now();
        let mut rows: HashMap<&str, Vec<RollupRow>> = HashMap::new();
        let mut read = 0;
        for m in METRICS {
            let r = store.rollups(m, from, to).await.unwrap();
            read += r.len();
            rows.insert(m, r);
        }
        let r = report::build(from, to, &rows);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        booked = r.totals.booked;
        let _ = read;
    }
    assert_eq!(booked as u64, made_in_year, "the report counts every booking made in the year once");
    let one_metric = {
        let t = Instant::now();
        let r = store.rollups("booked.dept", from, to).await.unwrap();
        assert!(!r.is_empty());
        t.elapsed().as_secs_f64() * 1000.0
    };
    println!(
        "report over the year ({} metrics, {QUERY_RUNS} runs): median {:.1} ms, min {:.1} ms, max {:.1} ms; one metric (booked.dept): {:.2} ms",
        METRICS.len(),
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        times.iter().cloned().fold(0.0, f64::max),
        one_metric
    );

    // 3. The booking write with and without the counters.
    let on_dir = tempfile::tempdir().unwrap();
    let off_dir = tempfile::tempdir().unwrap();
    let on = EmbeddedStore::open(on_dir.path()).unwrap();
    let off = EmbeddedStore::open(off_dir.path()).unwrap().with_rollups(false);
    let (doctor, department) = doctors[0];
    let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let mut sess = ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: department,
        date,
        period: Period::Morning,
        segments: vec![Segment {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
            quota: 1_000_000,
        }],
        fee: Fen::new(5000),
        release_at: Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap(),
        status: SessionStatus::Open,
    };
    for s in [&on, &off] {
        s.put_sessions(std::slice::from_ref(&sess)).await.unwrap();
    }
    let write = |sess: &ClinicSession| {
        let now = Utc::now();
        let a = common::held(doctor, department, sess.id, date, now);
        let mut o = Order::new(
            a.order_id,
            OrderKind::Registration,
            a.account_id,
            "挂号费".into(),
            a.fee,
            now,
            a.hold_expires_at,
        );
        o.appointment_id = Some(a.id);
        BookingWrite { appointments: vec![a], orders: vec![o], sessions: vec![sess.clone()], ..Default::default() }
    };
    // Warm up both, then interleave so the disk's moods fall on both alike.
    let (mut with, mut without) = (Vec::with_capacity(bookings), Vec::with_capacity(bookings));
    for i in 0..bookings + 50 {
        sess.segments[0].quota -= 1;
        let (w1, w2) = (write(&sess), write(&sess));
        let t = Instant::now();
        on.apply_booking(w1).await.unwrap();
        let a = t.elapsed().as_secs_f64() * 1e6;
        let t = Instant::now();
        off.apply_booking(w2).await.unwrap();
        let b = t.elapsed().as_secs_f64() * 1e6;
        if i >= 50 {
            with.push(a);
            without.push(b);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "booking write ({bookings} each, interleaved): with counters median {:.1} µs (mean {:.1}), without median {:.1} µs (mean {:.1}): the counters add {:.1} µs (median)",
        median(with.clone()),
        mean(&with),
        median(without.clone()),
        mean(&without),
        median(with.clone()) - median(without.clone())
    );
    // The counters' own work, without the disk: the deltas of a booking and their merge.
    let a = write(&sess).appointments.remove(0);
    let t = Instant::now();
    let n = 100_000;
    let mut k = 0;
    for _ in 0..n {
        k += analytics::merge(analytics::appointment_deltas(None, &a, Some(sess.segments[0].start), zone)).len();
    }
    println!(
        "computing a booking's counters (no disk): {:.2} µs ({k} deltas)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let on_rows = on.rollups("booked.total", date - Duration::days(400), date + Duration::days(1)).await.unwrap();
    assert_eq!(
        on_rows.iter().map(|r| r.n).sum::<i64>(),
        (bookings + 50) as i64,
        "every benchmarked booking counted once"
    );
    assert!(off
        .rollups("booked.total", date - Duration::days(400), date + Duration::days(1))
        .await
        .unwrap()
        .is_empty());
}
