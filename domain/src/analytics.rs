//! Analytics rollups (ADM-3): what each booking change adds to the daily counters. The store
//! applies these deltas in the same write as the change (so a counter is never ahead of or
//! behind the rows it counts, and a crash loses neither), and a report reads the counters of a
//! date range, never the appointments themselves.
//!
//! A counter is `(metric, day, dim) -> n`. Each metric is one kind of count with one kind of
//! dimension, so a report reads one metric's rows for the days it covers:
//!
//! | metric | day | dim | counts |
//! |---|---|---|---|
//! | `booked.total` | booking made | `""` | bookings (a hold taken, from the waitlist or not) |
//! | `booked.dept` / `booked.doctor` | booking made | department / doctor id | bookings |
//! | `booked.slot` | visit | the segment's start, `HH:MM` | bookings (time-slot demand) |
//! | `booked.hour` | booking made | local hour of booking, `00`..`23` | bookings (with the day's weekday: the weekday × hour preference) |
//! | `paid.total` / `paid.dept` | visit | `""` / department | bookings paid (confirmed) |
//! | `cancelled.total` / `cancelled.dept` | visit | `""` / department | paid or held bookings cancelled (by the patient, a reschedule, a clinic stop) |
//! | `expired.total` | visit | `""` | holds that lapsed unpaid |
//! | `checked_in.total` / `seen.total` | visit | `""` | patients who checked in (签到) / were seen |
//! | `missed.total` / `missed.dept` | visit | `""` / department | no-shows (爽约; a no-show struck off staff later takes one off) |
//! | `waitlist.joined` | joined | `""` | places taken in a waitlist |
//! | `waitlist.offered` / `waitlist.converted` | visit | `""` | holds offered from a waitlist / of those, paid |
//! | `consults.doctor` / `consult_secs.doctor` | local day | doctor | patients seen through the queue / seconds from call to the next call |
//! | `sessions.doctor` | local day | doctor | sessions in which the doctor saw at least one patient |
//! | `revenue.channel` / `refunds.channel` | paid / refunded | payment channel | fen received / refunded |
//!
//! Rates are quotients of counters over the same range: cancellation = `cancelled.total /
//! booked.total`, no-show = `missed.total / paid.total`, waitlist conversion =
//! `waitlist.converted / waitlist.joined`, patients per session = `consults / sessions`,
//! average consultation = `consult_secs / consults`.

pub mod report;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::appointment::{Appointment, AppointmentStatus};
use crate::booking::WaitEntry;
use crate::order::Order;
use crate::queue::ClinicQueue;
use crate::time::HospitalZone;

/// One counter change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupDelta {
    pub metric: &'static str,
    pub day: NaiveDate,
    pub dim: String,
    pub n: i64,
}

/// A stored counter, as a report reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RollupRow {
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    pub dim: String,
    pub n: i64,
}

/// Every metric name (reports and the conformance suite check against it).
pub const METRICS: &[&str] = &[
    "booked.total",
    "booked.dept",
    "booked.doctor",
    "booked.slot",
    "booked.hour",
    "paid.total",
    "paid.dept",
    "cancelled.total",
    "cancelled.dept",
    "expired.total",
    "checked_in.total",
    "seen.total",
    "missed.total",
    "missed.dept",
    "waitlist.joined",
    "waitlist.offered",
    "waitlist.converted",
    "consults.doctor",
    "consult_secs.doctor",
    "sessions.doctor",
    "revenue.channel",
    "refunds.channel",
];

pub fn is_metric(m: &str) -> bool {
    METRICS.contains(&m)
}

fn d(metric: &'static str, day: NaiveDate, dim: impl Into<String>, n: i64) -> RollupDelta {
    RollupDelta { metric, day, dim: dim.into(), n }
}

/// What an appointment's change adds: `old` as stored before the write (None for a new one),
/// `new` as written; `slot_start` the start of its segment, if known.
pub fn appointment_deltas(
    old: Option<&Appointment>,
    new: &Appointment,
    slot_start: Option<NaiveTime>,
    zone: HospitalZone,
) -> Vec<RollupDelta> {
    use AppointmentStatus as S;
    let mut out = Vec::new();
    let visit = new.date;
    let dept = new.department_id.to_string();
    if old.is_none() {
        let local = new.created_at.with_timezone(&zone.0);
        let made = local.date_naive();
        out.push(d("booked.total", made, "", 1));
        out.push(d("booked.dept", made, dept.clone(), 1));
        out.push(d("booked.doctor", made, new.doctor_id.to_string(), 1));
        out.push(d("booked.hour", made, format!("{:02}", local.hour()), 1));
        if let Some(t) = slot_start {
            out.push(d("booked.slot", visit, t.format("%H:%M").to_string(), 1));
        }
        if new.from_waitlist {
            out.push(d("waitlist.offered", visit, "", 1));
        }
    }
    let before = old.map(|o| o.status);
    if before == Some(new.status) {
        return out;
    }
    let was_paid = matches!(before, Some(S::Confirmed | S::CheckedIn | S::Seen | S::Missed));
    match new.status {
        S::Confirmed | S::CheckedIn | S::Seen | S::Missed if !was_paid => {
            out.push(d("paid.total", visit, "", 1));
            out.push(d("paid.dept", visit, dept.clone(), 1));
            if new.from_waitlist {
                out.push(d("waitlist.converted", visit, "", 1));
            }
        }
        _ => {}
    }
    match new.status {
        S::Cancelled => {
            out.push(d("cancelled.total", visit, "", 1));
            out.push(d("cancelled.dept", visit, dept, 1));
        }
        S::Expired => out.push(d("expired.total", visit, "", 1)),
        S::Missed => {
            out.push(d("missed.total", visit, "", 1));
            out.push(d("missed.dept", visit, dept, 1));
        }
        // A no-show struck off was not one after all.
        S::Excused if before == Some(S::Missed) => {
            out.push(d("missed.total", visit, "", -1));
            out.push(d("missed.dept", visit, dept, -1));
        }
        S::CheckedIn => out.push(d("checked_in.total", visit, "", 1)),
        S::Seen => {
            if before != Some(S::CheckedIn) {
                out.push(d("checked_in.total", visit, "", 1));
            }
            out.push(d("seen.total", visit, "", 1))
        }
        _ => {}
    }
    out
}

/// Places newly taken in a session's waitlist (the list replaced whole by a write).
pub fn waitlist_deltas(old: &[WaitEntry], new: &[WaitEntry], zone: HospitalZone) -> Vec<RollupDelta> {
    new.iter()
        .filter(|n| !old.iter().any(|o| o.person == n.person && o.joined_at == n.joined_at))
        .map(|n| d("waitlist.joined", zone.local_date(n.joined_at), "", 1))
        .collect()
}

/// The payment channel an order's cash was paid by (`ledger::Channel`: WeChat Pay, Alipay, the
/// balance, ...); an order of before channels were recorded was paid by WeChat Pay.
pub fn channel_of(order: &Order) -> &'static str {
    order.channel.map_or(crate::ledger::Channel::WechatPay.as_str(), |c| c.as_str())
}

/// Money received and refunded by an order's change (the revenue hook: every write of an order
/// passes through here).
pub fn order_deltas(old: Option<&Order>, new: &Order, zone: HospitalZone) -> Vec<RollupDelta> {
    let mut out = Vec::new();
    let channel = channel_of(new);
    if let (Some(paid_at), None) = (new.paid_at, old.and_then(|o| o.paid_at)) {
        out.push(d("revenue.channel", zone.local_date(paid_at), channel, new.amount.get() as i64));
    }
    let refunded = |o: &Order| -> i64 {
        o.refunds
            .iter()
            .filter(|r| r.status == crate::order::RefundStatus::Succeeded)
            .map(|r| r.amount.get() as i64)
            .sum()
    };
    let delta = refunded(new) - old.map_or(0, refunded);
    if delta != 0 {
        let at = new.refunds.iter().filter_map(|r| r.completed_at).max().unwrap_or(new.created_at);
        out.push(d("refunds.channel", zone.local_date(at), channel, delta));
    }
    out
}

/// Consultations a queue change finished: each patient newly done (the one who was called is
/// done when the next is called) counts once, with the time since their call; the first of a
/// session also counts the session.
pub fn queue_deltas(
    old: Option<&ClinicQueue>,
    new: &ClinicQueue,
    now: DateTime<Utc>,
    zone: HospitalZone,
) -> Vec<RollupDelta> {
    let before = old.map_or(0, |q| q.done().len());
    let after = new.done().len();
    if after <= before {
        return Vec::new();
    }
    let day = zone.local_date(now);
    let doctor = new.doctor_id.to_string();
    let mut out = vec![d("consults.doctor", day, doctor.clone(), (after - before) as i64)];
    let secs: i64 = new.done()[before..]
        .iter()
        .filter_map(|e| {
            let c = old?.called_entry()?;
            (c.entry.appointment_id == e.appointment_id).then(|| {
                (now - c.called_at)
                    .num_seconds()
                    .clamp(crate::queue::MIN_OBSERVED_SECS, crate::queue::MAX_OBSERVED_SECS)
            })
        })
        .sum();
    if secs > 0 {
        out.push(d("consult_secs.doctor", day, doctor.clone(), secs));
    }
    if before == 0 {
        out.push(d("sessions.doctor", day, doctor, 1));
    }
    out
}

/// Adds deltas of the same counter together (one write per counter per batch).
pub fn merge(deltas: Vec<RollupDelta>) -> Vec<RollupDelta> {
    let mut out: Vec<RollupDelta> = Vec::with_capacity(deltas.len());
    for x in deltas {
        match out.iter_mut().find(|o| o.metric == x.metric && o.day == x.day && o.dim == x.dim) {
            Some(o) => o.n += x.n,
            None => out.push(x),
        }
    }
    out.retain(|o| o.n != 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appointment::AppointmentEvent;
    use crate::schedule::{Period, SlotId};
    use crate::*;
    use chrono::TimeZone;

    fn appt(created: DateTime<Utc>, from_waitlist: bool) -> Appointment {
        Appointment {
            id: AppointmentId::new(),
            slot: SlotId { session_id: SessionId::new(), segment: 0 },
            place: 1,
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
            period: Period::Morning,
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            person: "p".into(),
            patient_name: "张三".into(),
            fee: Fen::new(1500),
            status: AppointmentStatus::Held,
            order_id: OrderId::new(),
            created_at: created,
            hold_expires_at: created,
            confirmed_at: None,
            slip_no: None,
            cancelled_at: None,
            cancel_reason: None,
            idempotency_key: None,
            from_waitlist,
            rescheduled_from: None,
            rescheduled_to: None,
        }
    }

    fn count(ds: &[RollupDelta], metric: &str) -> i64 {
        ds.iter().filter(|d| d.metric == metric).map(|d| d.n).sum()
    }

    #[test]
    fn a_booking_counts_once_in_each_metric_through_its_life() {
        let zone = HospitalZone::default();
        // 23:30 UTC on the 1st is 07:30 on the 2nd in Shanghai.
        let created = Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap();
        let held = appt(created, true);
        let made = appointment_deltas(None, &held, NaiveTime::from_hms_opt(8, 30, 0), zone);
        assert_eq!(count(&made, "booked.total"), 1);
        let hour = made.iter().find(|d| d.metric == "booked.hour").unwrap();
        assert_eq!((hour.day, hour.dim.as_str()), (NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), "07"));
        assert_eq!(made.iter().find(|d| d.metric == "booked.slot").unwrap().dim, "08:30");
        assert_eq!(count(&made, "waitlist.offered"), 1);
        assert_eq!(count(&made, "paid.total"), 0);

        let mut paid = held.clone();
        paid.apply(AppointmentEvent::Pay, created).unwrap();
        let p = appointment_deltas(Some(&held), &paid, None, zone);
        assert_eq!((count(&p, "paid.total"), count(&p, "waitlist.converted"), count(&p, "booked.total")), (1, 1, 0));
        // Written again unchanged (a batch that merged it): nothing.
        assert!(appointment_deltas(Some(&paid), &paid, None, zone).is_empty());
        let mut missed = paid.clone();
        missed.apply(AppointmentEvent::MarkMissed, created).unwrap();
        let m = appointment_deltas(Some(&paid), &missed, None, zone);
        assert_eq!((count(&m, "missed.total"), count(&m, "paid.total")), (1, 0), "paid once, not again");
        let mut excused = missed.clone();
        excused.apply(AppointmentEvent::Excuse, created).unwrap();
        assert_eq!(count(&appointment_deltas(Some(&missed), &excused, None, zone), "missed.dept"), -1);
        let mut came = paid.clone();
        came.apply(AppointmentEvent::CheckIn, created).unwrap();
        assert_eq!(count(&appointment_deltas(Some(&paid), &came, None, zone), "checked_in.total"), 1);
        let mut seen = came.clone();
        seen.apply(AppointmentEvent::FinishVisit, created).unwrap();
        let s = appointment_deltas(Some(&came), &seen, None, zone);
        assert_eq!((count(&s, "seen.total"), count(&s, "checked_in.total")), (1, 0));
        let mut cancelled = paid.clone();
        cancelled.apply(AppointmentEvent::Cancel, created).unwrap();
        assert_eq!(count(&appointment_deltas(Some(&paid), &cancelled, None, zone), "cancelled.dept"), 1);
        let merged = merge([made, p].concat());
        assert_eq!(merged.iter().filter(|d| d.metric == "booked.total").count(), 1);
    }
}
