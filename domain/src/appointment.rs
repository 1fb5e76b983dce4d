//! The appointment state machine (挂号/预约). Every change of state goes through
//! `AppointmentStatus::transition`, so no code path can, say, confirm a cancelled booking.

use serde::{Deserialize, Serialize};

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    /// The slot is reserved while the fee is paid (锁号).
    Held,
    /// Paid: a registration slip was issued.
    Confirmed,
    /// Cancelled by the patient or by a clinic stop.
    Cancelled,
    /// The hold lapsed unpaid.
    Expired,
    /// The patient arrived (签到).
    CheckedIn,
    /// The doctor saw the patient.
    Seen,
    /// A confirmed appointment not attended (爽约).
    Missed,
    /// A no-show struck off by staff (爽约已撤销): the patient came, or the hospital was at
    /// fault. It no longer counts towards a no-show ban.
    Excused,
}

/// What happens to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentEvent {
    Pay,
    Cancel,
    Expire,
    CheckIn,
    FinishVisit,
    MarkMissed,
    /// Staff correct a wrong `Missed`.
    Excuse,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an appointment that is {from:?} cannot take {event:?}")]
pub struct InvalidTransition {
    pub from: AppointmentStatus,
    pub event: AppointmentEvent,
}

impl AppointmentStatus {
    pub fn transition(self, event: AppointmentEvent) -> Result<AppointmentStatus, InvalidTransition> {
        use AppointmentEvent as E;
        use AppointmentStatus as S;
        let next = match (self, event) {
            (S::Held, E::Pay) => S::Confirmed,
            (S::Held, E::Cancel) | (S::Confirmed, E::Cancel) => S::Cancelled,
            (S::Held, E::Expire) => S::Expired,
            (S::Confirmed, E::CheckIn) => S::CheckedIn,
            (S::CheckedIn, E::FinishVisit) => S::Seen,
            (S::Confirmed, E::MarkMissed) => S::Missed,
            (S::Missed, E::Excuse) => S::Excused,
            (from, event) => return Err(InvalidTransition { from, event }),
        };
        Ok(next)
    }

    /// Whether the appointment still occupies its slot.
    pub fn occupies_slot(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Held
                | AppointmentStatus::Confirmed
                | AppointmentStatus::CheckedIn
                | AppointmentStatus::Seen
                | AppointmentStatus::Missed
                | AppointmentStatus::Excused
        )
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            AppointmentStatus::Cancelled
                | AppointmentStatus::Expired
                | AppointmentStatus::Seen
                | AppointmentStatus::Missed
                | AppointmentStatus::Excused
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppointmentEvent as E;
    use AppointmentStatus as S;

    #[test]
    fn happy_path_and_forbidden_moves() {
        let s = S::Held.transition(E::Pay).unwrap();
        assert_eq!(s, S::Confirmed);
        assert_eq!(s.transition(E::CheckIn).unwrap(), S::CheckedIn);
        assert!(S::Cancelled.transition(E::Pay).is_err());
        assert!(S::Expired.transition(E::Pay).is_err(), "a lapsed hold cannot be paid");
        assert!(S::Confirmed.transition(E::Expire).is_err(), "a paid booking never expires");
        for s in [S::Cancelled, S::Expired, S::Seen, S::Excused] {
            for e in [E::Pay, E::Cancel, E::Expire, E::CheckIn, E::FinishVisit, E::MarkMissed, E::Excuse] {
                assert!(s.transition(e).is_err(), "{s:?} is final");
            }
        }
        // A no-show is final too, except that staff may strike it off (once).
        for e in [E::Pay, E::Cancel, E::Expire, E::CheckIn, E::FinishVisit, E::MarkMissed] {
            assert!(S::Missed.transition(e).is_err(), "Missed takes {e:?}");
        }
        assert_eq!(S::Missed.transition(E::Excuse).unwrap(), S::Excused);
        assert!(S::Confirmed.transition(E::Excuse).is_err(), "only a no-show is excused");
        assert!(!S::Cancelled.occupies_slot());
        assert!(S::Held.occupies_slot());
    }
}

/// Why an appointment was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The patient cancelled.
    Patient,
    /// Moved to another slot (改约); `Appointment::rescheduled_to` names the new one.
    Rescheduled,
    /// The hospital stopped the clinic (停诊).
    ClinicStopped,
    /// Paid after the hold had lapsed and the place was gone: refunded.
    PaidTooLate,
}

/// A patient's booking of one place in one segment of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    pub id: crate::AppointmentId,
    pub slot: crate::schedule::SlotId,
    /// The place within the segment (就诊序号), from 1; unique among the segment's live bookings.
    pub place: u32,
    pub doctor_id: crate::DoctorId,
    pub department_id: crate::DepartmentId,
    #[serde(serialize_with = "crate::timestamp::date")]
    pub date: chrono::NaiveDate,
    pub period: crate::schedule::Period,
    pub account_id: crate::AccountId,
    pub patient_id: crate::PatientId,
    /// The person's blind index (keyed hash of the ID number): the key of the real-name rules.
    pub person: String,
    pub patient_name: String,
    pub fee: crate::Fen,
    pub status: AppointmentStatus,
    /// The payment order of the registration fee.
    pub order_id: crate::OrderId,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When an unpaid hold lapses.
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub hold_expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::timestamp::serialize_opt")]
    pub confirmed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The registration slip number (挂号单号), issued on payment.
    pub slip_no: Option<String>,
    #[serde(serialize_with = "crate::timestamp::serialize_opt")]
    pub cancelled_at: Option<chrono::DateTime<chrono::Utc>>,
    pub cancel_reason: Option<CancelReason>,
    /// The client's `Idempotency-Key`: a retried booking finds this appointment again.
    pub idempotency_key: Option<String>,
    /// Offered from the waitlist (候补).
    pub from_waitlist: bool,
    pub rescheduled_from: Option<crate::AppointmentId>,
    pub rescheduled_to: Option<crate::AppointmentId>,
}

impl Appointment {
    /// Applies an event through the state machine, stamping the time it happened.
    pub fn apply(
        &mut self,
        event: AppointmentEvent,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), InvalidTransition> {
        self.status = self.status.transition(event)?;
        match event {
            AppointmentEvent::Pay => self.confirmed_at = Some(now),
            AppointmentEvent::Cancel => self.cancelled_at = Some(now),
            _ => {}
        }
        Ok(())
    }

    /// The slip number: date, then the appointment id's random tail (unique, not guessable).
    pub fn make_slip_no(&self) -> String {
        let tail = self.id.0.simple().to_string();
        format!("GH{}{}", self.date.format("%y%m%d"), tail[tail.len() - 8..].to_uppercase())
    }
}
