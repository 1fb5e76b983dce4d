//! The real-name rules (BOOK-6), read from a person's appointments across all accounts: checked
//! by the account's actor before a hold, a move or joining a waitlist, and by the doctor's actor
//! before it offers a waitlisted person a freed place (the person may have booked elsewhere since
//! joining).
//!
//! The person's turn. The rules are the person's (the ID number's), and a person may be a
//! patient of several accounts (a family's phones, each booking the grandmother during a
//! release): each account has its own actor, so the accounts' actors alone let two attempts for
//! one person read the same history and both pass. An account's actor therefore takes the
//! person's lock (`ActorSystem::persons`, a `KeyedLocks`) from the rules' read until the doctor's
//! actor has answered the hold (durable), so the next attempt reads a history that holds it. A
//! lock, not an actor: the turn is taken inside the account's actor, already the serial owner of
//! the attempt, and a further actor hop would cost every hold of a storm about what the account's
//! own hop costs. The doctor's actor offering a waitlisted person a place tries the turn and never
//! waits for it (the account's actor holding it may be waiting on that very doctor's actor):
//! `schedule::state`'s `screen_waitlist`. Across nodes the turn is not shared (ARCHITECTURE.md,
//! "Several nodes sharing ScyllaDB").

use chrono::{Datelike, Duration as Days, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::AppointmentId;

use crate::booking::BookingError;
use crate::deps::Context;

/// The real-name rules (BOOK-6) for `person` booking in `department` on `date`, read from
/// the person's appointments across all accounts. `moving` is an appointment being moved,
/// which does not count against its own move.
pub(crate) async fn check(
    ctx: &Context,
    person: &str,
    department: hospital_domain::DepartmentId,
    date: chrono::NaiveDate,
    moving: Option<AppointmentId>,
) -> Result<(), BookingError> {
    let cfg = &ctx.config;
    let window = Days::from_std(cfg.no_show_window).unwrap_or(Days::days(90));
    let from = (date - window).min(date - Days::days(7));
    let to = date + Days::days(7);
    let history = ctx.stores.data.appointments_of_person(person, from, to).await?;
    let live = |a: &&Appointment| {
        Some(a.id) != moving
            && matches!(a.status, AppointmentStatus::Held | AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn)
    };
    if history.iter().filter(live).any(|a| a.department_id == department && a.date == date) {
        return Err(BookingError::Rule {
            reason: "one_per_department_day",
            message: "this person already has a booking in this department on this day".into(),
        });
    }
    let week = date.iso_week();
    let this_week = history
        .iter()
        .filter(|a| Some(a.id) != moving && a.date.iso_week() == week)
        .filter(|a| {
            matches!(
                a.status,
                AppointmentStatus::Held
                    | AppointmentStatus::Confirmed
                    | AppointmentStatus::CheckedIn
                    | AppointmentStatus::Seen
            )
        })
        .count();
    if this_week >= cfg.weekly_cap {
        return Err(BookingError::Rule {
            reason: "weekly_cap",
            message: format!("at most {} bookings per person per week", cfg.weekly_cap),
        });
    }
    let today = cfg.zone.local_date(Utc::now());
    let missed: Vec<_> = history
        .iter()
        .filter(|a| a.status == AppointmentStatus::Missed && a.date > today - window)
        .map(|a| a.date)
        .collect();
    if missed.len() >= cfg.no_show_limit {
        let last = missed.iter().max().copied().unwrap_or(today);
        let until = last + Days::from_std(cfg.no_show_ban).unwrap_or(Days::days(30));
        if today < until {
            return Err(BookingError::Rule {
                reason: "no_show_ban",
                message: format!("{} missed appointments: booking is suspended until {until}", missed.len()),
            });
        }
    }
    Ok(())
}

/// A refusal's reason as a patient's message says it (in the hospital's language).
pub(crate) fn reason_zh(reason: &str) -> &'static str {
    match reason {
        "one_per_department_day" => "当日已有该科室的预约",
        "weekly_cap" => "本周预约已达上限",
        _ => "因爽约暂停预约",
    }
}
