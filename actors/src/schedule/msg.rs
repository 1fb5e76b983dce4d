//! What a schedule actor is sent (`ScheduleMsg`) and the payloads of its answers.

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::{SessionBook, WaitEntry};
use hospital_domain::live::Availability;
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Segment, SlotId};
use hospital_domain::{AccountId, AppointmentId, Fen, PatientId, SessionId};
use ractor::RpcReplyPort;

use crate::booking::BookingError;
use crate::config::ActorConfig;

/// A session with its places left, as the schedule shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAvailability {
    pub session: ClinicSession,
    /// Places left per segment.
    pub remaining: Vec<u32>,
    /// Patients on the waitlist.
    pub waiting: usize,
}

impl SessionAvailability {
    pub(crate) fn of(b: &SessionBook) -> Self {
        Self { session: b.session.clone(), remaining: b.remaining_all(), waiting: b.waitlist.len() }
    }

    /// As the `availability` topic carries it at `now` (which segments have closed, by the
    /// hospital's zone and `ActorConfig::booking_close`).
    pub fn live(&self, config: &ActorConfig, now: DateTime<Utc>) -> Availability {
        let s = &self.session;
        Availability {
            doctor_id: s.doctor_id,
            department_id: s.department_id,
            session_id: s.id,
            date: s.date,
            period: s.period,
            status: s.status,
            remaining: self.remaining.clone(),
            open_from: s.open_from(&config.zone, config.booking_close(), now),
            waiting: self.waiting,
        }
    }
}

/// Who is booking: the actor builds the hold from this and its own clock.
#[derive(Debug, Clone)]
pub struct Booker {
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub person: String,
    pub patient_name: String,
    pub idempotency_key: Option<String>,
    /// The person's turn (`real_name`), taken before the rules were read: this actor keeps it
    /// until the hold is durable, or lets it go with a refusal. Empty (`Default`) when the caller
    /// keeps it itself.
    pub turn: crate::real_name::HeldTurn,
}

/// What `AddSessions` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionsAdded {
    pub created: Vec<SessionId>,
    /// Sessions left out: the doctor had one on that date and period already.
    pub skipped: usize,
}

/// What a clinic stop did.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    pub cancelled: Vec<Appointment>,
    pub refunds: usize,
    pub waitlist_cleared: usize,
}

pub(crate) type Reply<T> = RpcReplyPort<Result<T, BookingError>>;

/// Messages of a doctor schedule actor.
#[derive(Debug)]
pub enum ScheduleMsg {
    /// Sessions with `from <= date <= to` and their places left, from memory.
    GetSchedule {
        from: NaiveDate,
        to: NaiveDate,
        reply: RpcReplyPort<Vec<SessionAvailability>>,
    },
    /// Whether `slot` could be booked now (released, open, a place left), from memory: the
    /// patient actor asks before paying for the real-name rules.
    Probe {
        slot: SlotId,
        reply: Reply<()>,
    },
    /// Holds a place in `slot` for `booker` (BOOK-3): the hold and its payment order.
    Hold {
        slot: SlotId,
        booker: Booker,
        reply: Reply<(Appointment, Order)>,
    },
    /// The order was paid: confirm the booking and issue its slip (BOOK-4). A hold that lapsed
    /// meanwhile is confirmed only if a place is still free in its slot.
    Confirm {
        appointment: AppointmentId,
        reply: Reply<Appointment>,
    },
    /// Cancels (BOOK-5). `account` set means the patient asks: ownership and the cutoff apply.
    Cancel {
        appointment: AppointmentId,
        account: Option<AccountId>,
        reply: Reply<Appointment>,
    },
    /// Moves a booking to another slot of this doctor in one durable step (改约).
    Move {
        appointment: AppointmentId,
        account: AccountId,
        slot: SlotId,
        reply: Reply<Appointment>,
    },
    /// Joins a full session's waitlist (BOOK-7); the 1-based position.
    JoinWaitlist {
        session: SessionId,
        entry: WaitEntry,
        reply: Reply<usize>,
    },
    LeaveWaitlist {
        session: SessionId,
        patient: PatientId,
        reply: RpcReplyPort<bool>,
    },
    /// 加号/减号 (BOOK-9).
    SetQuota {
        session: SessionId,
        segment: u16,
        quota: u32,
        reply: Reply<ClinicSession>,
    },
    /// 号源调整 of times (BOOK-9): replaces a session's segments (segment `i` keeps its bookings);
    /// every patient booked in a segment whose time changed is told. The session, and the
    /// appointments whose time changed.
    SetSegments {
        session: SessionId,
        segments: Vec<Segment>,
        reply: Reply<(ClinicSession, Vec<Appointment>)>,
    },
    /// 停诊: cancels, refunds and notifies every booking, clears the waitlist (BOOK-9).
    StopSession {
        session: SessionId,
        reply: Reply<StopReport>,
    },
    /// A session's live appointments, for staff.
    SessionAppointments {
        session: SessionId,
        reply: RpcReplyPort<Vec<Appointment>>,
    },
    /// Adds the sessions staff made (a weekly template, 排班) whose date and period the doctor
    /// has no session for yet; the others are left out.
    AddSessions {
        sessions: Vec<ClinicSession>,
        reply: Reply<SessionsAdded>,
    },
    /// Changes a session's fee (for bookings made from now on) or its release time (放号).
    UpdateSession {
        session: SessionId,
        fee: Option<Fen>,
        release_at: Option<DateTime<Utc>>,
        reply: Reply<ClinicSession>,
    },
    /// 签到 (BOOK-10): the account's confirmed appointment for today moves to `CheckedIn`
    /// (durable before the answer); a repeat answers the checked-in appointment.
    CheckIn {
        appointment: AppointmentId,
        account: AccountId,
        reply: Reply<Appointment>,
    },
    /// The end of a visit (`FinishVisit`: seen) or staff striking off a no-show (`Excuse`); a
    /// repeat answers the appointment as it is.
    Attend {
        appointment: AppointmentId,
        event: hospital_domain::appointment::AppointmentEvent,
        reply: Reply<Appointment>,
    },
    /// Booking into a segment of `session` closed (its durable job, `JobKind::BookingCloses`):
    /// the session's places are published again, that segment closed, after any write queued
    /// before; the answer is when the next segment closes (`None`: none is left open, or no open
    /// session of this doctor has that id).
    BookingClosed {
        session: SessionId,
        reply: RpcReplyPort<Option<DateTime<Utc>>>,
    },
    /// Closes a session (its durable job, at its end): the bookings never checked in are missed.
    CloseSession {
        session: SessionId,
        reply: Reply<Vec<Appointment>>,
    },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// Handles nothing else until `until` is sent or dropped, so tests can hold messages in the
    /// mailbox. Only with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    Stall {
        until: tokio::sync::oneshot::Receiver<()>,
    },
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
    /// Once a second: lapse due holds; internal.
    #[doc(hidden)]
    ExpireTick,
    /// Renew the lease (several nodes); internal.
    #[doc(hidden)]
    RenewLease,
    /// The write pipeline failed: restart from the store; internal.
    #[doc(hidden)]
    WriteFailed(String),
}
