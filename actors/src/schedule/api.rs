//! The schedule side of `ActorSystem`: one method per message, through `asks!`.

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::appointment::{Appointment, AppointmentEvent};
use hospital_domain::schedule::{ClinicSession, Segment};
use hospital_domain::{AccountId, AppointmentId, DoctorId, Fen, PatientId, SessionId};
use ractor::ActorRef;

use super::actor::ScheduleKind;
use super::msg::{ScheduleMsg, SessionAvailability, SessionsAdded, StopReport};
use crate::booking::BookingError;
use crate::error::ActorError;
use crate::system::{asks, ActorSystem};

impl ActorSystem {
    /// The doctor's schedule actor, started if it was not running.
    pub async fn schedule(&self, doctor: DoctorId) -> Result<ActorRef<ScheduleMsg>, ActorError> {
        self.resolve::<ScheduleKind>(doctor).await
    }

    /// Makes the doctor's schedule actor panic (see `ScheduleMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_schedule_fault(&self, doctor: DoctorId) -> Result<(), ActorError> {
        self.tell::<ScheduleKind>(doctor, ScheduleMsg::InjectFault).await
    }

    /// Stops the doctor's schedule actor handling messages until the returned sender is used or
    /// dropped (see `ScheduleMsg::Stall`).
    #[cfg(feature = "fault-injection")]
    pub async fn stall_schedule(&self, doctor: DoctorId) -> Result<tokio::sync::oneshot::Sender<()>, ActorError> {
        let (go, until) = tokio::sync::oneshot::channel();
        self.tell::<ScheduleKind>(doctor, ScheduleMsg::Stall { until }).await?;
        Ok(go)
    }

    asks! { ScheduleKind:
        /// The doctor's sessions with `from <= date <= to` (within the actor's window) and the
        /// places left in each.
        pub fn get_schedule(doctor: DoctorId, from: NaiveDate, to: NaiveDate) -> Vec<SessionAvailability>
            = reads |reply| ScheduleMsg::GetSchedule { from, to, reply };
        pub fn leave_waitlist(doctor: DoctorId, session: SessionId, patient: PatientId) -> bool
            = once |reply| ScheduleMsg::LeaveWaitlist { session, patient, reply };
        /// Confirms a paid booking (from the payment side).
        pub fn confirm(doctor: DoctorId, appointment: AppointmentId) -> Appointment, BookingError
            = once |reply| ScheduleMsg::Confirm { appointment, reply };
        /// Cancels an appointment; `account` set means the patient asks (ownership, cutoff).
        pub fn cancel(doctor: DoctorId, appointment: AppointmentId, account: Option<AccountId>) -> Appointment, BookingError
            = once |reply| ScheduleMsg::Cancel { appointment, account, reply };
        /// 加号/减号.
        pub fn set_quota(doctor: DoctorId, session: SessionId, segment: u16, quota: u32) -> ClinicSession, BookingError
            = once |reply| ScheduleMsg::SetQuota { session, segment, quota, reply };
        /// 号源调整 of times: the session and the appointments whose time changed.
        pub fn set_segments(doctor: DoctorId, session: SessionId, segments: Vec<Segment>) -> (ClinicSession, Vec<Appointment>), BookingError
            = once |reply| ScheduleMsg::SetSegments { session, segments: segments.clone(), reply };
        /// 停诊.
        pub fn stop_session(doctor: DoctorId, session: SessionId) -> StopReport, BookingError
            = once |reply| ScheduleMsg::StopSession { session, reply };
        /// Adds the sessions of a weekly template the doctor has no session for on their date and
        /// period (see `ScheduleMsg::AddSessions`).
        pub fn add_sessions(doctor: DoctorId, sessions: Vec<ClinicSession>) -> SessionsAdded, BookingError
            = once |reply| ScheduleMsg::AddSessions { sessions: sessions.clone(), reply };
        /// Changes a session's fee or release time.
        pub fn update_session(doctor: DoctorId, session: SessionId, fee: Option<Fen>, release_at: Option<DateTime<Utc>>) -> ClinicSession, BookingError
            = once |reply| ScheduleMsg::UpdateSession { session, fee, release_at, reply };
        /// A session's live appointments (staff).
        pub fn session_appointments(doctor: DoctorId, session: SessionId) -> Vec<Appointment>
            = reads |reply| ScheduleMsg::SessionAppointments { session, reply };
        /// The schedule actor's half of a check-in (`ScheduleMsg::CheckIn`): the appointment, now
        /// `CheckedIn` and durable.
        pub fn schedule_check_in(doctor: DoctorId, appointment: AppointmentId, account: AccountId) -> Appointment, BookingError
            = once |reply| ScheduleMsg::CheckIn { appointment, account, reply };
        /// The end of a visit (`FinishVisit`) or a no-show struck off (`Excuse`).
        pub fn attend(doctor: DoctorId, appointment: AppointmentId, event: AppointmentEvent) -> Appointment, BookingError
            = once |reply| ScheduleMsg::Attend { appointment, event, reply };
        /// A segment of the session closed to booking: its places are published again; when the
        /// next segment closes (`ScheduleMsg::BookingClosed`).
        pub fn booking_closed(doctor: DoctorId, session: SessionId) -> Option<DateTime<Utc>>
            = reads |reply| ScheduleMsg::BookingClosed { session, reply };
        /// Closes a session: the bookings never checked in become no-shows; those it changed.
        pub fn close_session(doctor: DoctorId, session: SessionId) -> Vec<Appointment>, BookingError
            = once |reply| ScheduleMsg::CloseSession { session, reply };
    }
}
