//! The schedule actor's half of a check-in (签到, BOOK-10): the appointment moves to `CheckedIn`
//! in its doctor's book; the session's queue actor then queues it.

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus};
use hospital_domain::booking::{DoctorBook, SessionBook};
use hospital_domain::{AccountId, AppointmentId};

use crate::booking::BookingError;

/// The stable reason code of a refused check-in.
pub const NOT_CHECKABLE: &str = "not_checkable";

/// The schedule actor's side of a check-in, on its `DoctorBook` (called from its `CheckIn`
/// handler): the appointment must be live, the account's, for `today`, and the state machine
/// must allow `CheckIn` (only from `Confirmed`). Returns the appointment and whether it changed
/// (false: it was already checked in, a retry).
pub(crate) fn check_in_book(
    book: &mut DoctorBook,
    appointment: AppointmentId,
    account: AccountId,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(Appointment, bool), BookingError> {
    let not_checkable = |message: String| BookingError::Rule { reason: NOT_CHECKABLE, message };
    let Some(mut a) = book.find(appointment).cloned() else {
        // Known to the caller (it read the store) but not live here: cancelled, lapsed, or
        // outside the schedule window.
        return Err(not_checkable("only a paid appointment for today can be checked in".into()));
    };
    if a.account_id != account {
        return Err(BookingError::NoSuchAppointment);
    }
    if a.status == AppointmentStatus::CheckedIn {
        return Ok((a, false));
    }
    if a.date != today {
        return Err(not_checkable(format!("this appointment is for {}; check in on the day", a.date)));
    }
    a.apply(AppointmentEvent::CheckIn, now)
        .map_err(|e| not_checkable(format!("only a paid appointment can be checked in ({e})")))?;
    // `SessionBook` keeps its live appointments private: rebuild the session's book with the
    // checked-in one in place (the same places, the same waitlist).
    let sid = a.slot.session_id;
    let b = book.session(sid).ok_or(BookingError::NoSuchAppointment)?;
    let live: Vec<Appointment> = b.live().map(|x| if x.id == a.id { a.clone() } else { x.clone() }).collect();
    let rebuilt = SessionBook::new(b.session.clone(), live, b.waitlist.iter().cloned().collect());
    book.insert(rebuilt);
    Ok((a, true))
}
