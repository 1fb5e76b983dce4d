//! The real-name rules (BOOK-6), read from a person's appointments across all accounts: checked
//! by the account's actor before a hold, a move or joining a waitlist (in the person's turn,
//! `patient::person_lock`), and by the doctor's actor before it offers a waitlisted person a
//! freed place (the person may have booked elsewhere since joining).

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
