//! Durable timers (jobs): work that must happen at a time even if no process is running then,
//! kept as rows (like the notifier's reminders) so a restart runs what fell due while it was
//! down. Two kinds: closing a clinic session at its end (its confirmed appointments that never
//! checked in become no-shows, BOOK-6), and carrying out an account deletion after its
//! cooling-off (SET-3); and publishing an announcement at its time (ADM-4). A job's id names what it is for, so scheduling the same work twice keeps
//! one job.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, DoctorId, SessionId};

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// At the end of the session: every confirmed appointment that never checked in is missed.
    CloseSession { session_id: SessionId, doctor_id: DoctorId },
    /// When booking into one of the session's segments closes (its end plus the hospital's
    /// late-booking grace, or its start less the hospital's cutoff): the session's places are published again with that segment closed
    /// (BOOK-2); the job then moves on to the next segment's closing, and ends after the last.
    BookingCloses { session_id: SessionId, doctor_id: DoctorId },
    /// At the start of the day (and at start-up for today): each of the day's sessions gets its
    /// `BookingCloses` job if it has none (a session written before those jobs were, or past the
    /// doctor's actor); when done, the next day's is scheduled.
    DayClosings { date: chrono::NaiveDate },
    /// After the cooling-off: the account's data is erased.
    EraseAccount { account_id: AccountId },
    /// At its time: an announcement goes to every account it addresses (ADM-4).
    PublishAnnouncement { announcement_id: uuid::Uuid },
    /// The next morning: the providers' bills of the day reconciled with the ledger (PAY-4);
    /// when done, the next day's is scheduled.
    Reconcile { date: chrono::NaiveDate },
    /// Now: a doctor's stored schedule template applied to the weeks ahead (saved, BOOK-9).
    ApplyTemplate { doctor_id: DoctorId },
    /// Each day at the configured time: every stored template applied to the weeks ahead; when
    /// done, the next day's is scheduled.
    ApplyTemplates { date: chrono::NaiveDate },
}

/// A job and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// What and whom it is for: `close:<session id>`, `closes:<session id>`, `erase:<account id>`,
    /// `announce:<announcement id>`, ... (one job per id).
    pub id: String,
    pub kind: JobKind,
    pub due_at: DateTime<Utc>,
    /// Failed runs so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Job {
    pub fn close_session(
        session_id: SessionId,
        doctor_id: DoctorId,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::new(format!("close:{session_id}"), JobKind::CloseSession { session_id, doctor_id }, due_at, now)
    }

    /// Publishing a session's places as its next segment closes (`closes:<session id>`; one job
    /// per session, moved on from segment to segment).
    pub fn booking_closes(
        session_id: SessionId,
        doctor_id: DoctorId,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        Self::new(format!("closes:{session_id}"), JobKind::BookingCloses { session_id, doctor_id }, due_at, now)
    }

    /// Making sure each of one day's sessions has its `closes:` job (`closings:<date>`).
    pub fn day_closings(date: chrono::NaiveDate, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::new(format!("closings:{date}"), JobKind::DayClosings { date }, due_at, now)
    }

    pub fn erase_account(account_id: AccountId, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::new(Self::erase_id(account_id), JobKind::EraseAccount { account_id }, due_at, now)
    }

    /// Publishing an announcement at its time (`announcement::Announcement::job_id`).
    pub fn publish_announcement(announcement_id: uuid::Uuid, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let id = crate::announcement::Announcement::job_id(announcement_id);
        Self::new(id, JobKind::PublishAnnouncement { announcement_id }, due_at, now)
    }

    /// Reconciling one business day (`reconcile:<date>`).
    pub fn reconcile(date: chrono::NaiveDate, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::new(format!("reconcile:{date}"), JobKind::Reconcile { date }, due_at, now)
    }

    /// Applying one doctor's stored template (`template:<doctor id>`).
    pub fn apply_template(doctor_id: DoctorId, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::new(format!("template:{doctor_id}"), JobKind::ApplyTemplate { doctor_id }, due_at, now)
    }

    /// Applying every stored template on one day (`templates:<date>`).
    pub fn apply_templates(date: chrono::NaiveDate, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self::new(format!("templates:{date}"), JobKind::ApplyTemplates { date }, due_at, now)
    }

    /// The id of an account's erase job.
    pub fn erase_id(account_id: AccountId) -> String {
        format!("erase:{account_id}")
    }

    fn new(id: String, kind: JobKind, due_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self { id, kind, due_at, attempts: 0, last_error: None, created_at: now }
    }

    /// After a failed run: due again after a backoff doubling from `base` up to `max`.
    pub fn retry_later(&mut self, error: &str, now: DateTime<Utc>, base: Duration, max: Duration) {
        self.attempts = self.attempts.saturating_add(1);
        let factor = 1i32.checked_shl(self.attempts.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
        let wait = base.checked_mul(factor).unwrap_or(max).min(max);
        self.due_at = now + wait;
        self.last_error = Some(error.chars().take(500).collect());
    }
}

/// The bucket of a due time in the due queue: whole days since the epoch (a day of one hospital's
/// session closings and deletions is a small partition).
pub fn due_day(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_work_and_retries_back_off() {
        let now = Utc::now();
        let (s, d) = (SessionId::new(), DoctorId::new());
        let mut j = Job::close_session(s, d, now, now);
        assert_eq!(j.id, format!("close:{s}"));
        assert_eq!(Job::close_session(s, d, now + Duration::hours(1), now).id, j.id, "one job per session");
        let (base, max) = (Duration::seconds(10), Duration::seconds(60));
        j.retry_later("busy", now, base, max);
        assert_eq!((j.attempts, j.due_at - now), (1, Duration::seconds(10)));
        j.retry_later("busy", now, base, max);
        assert_eq!(j.due_at - now, Duration::seconds(20));
        for _ in 0..40 {
            j.retry_later("busy", now, base, max);
        }
        assert_eq!(j.due_at - now, max, "capped");
        assert_eq!(j.last_error.as_deref(), Some("busy"));
        assert_eq!(due_day(DateTime::from_timestamp(86_399, 0).unwrap()), 0);
        assert_eq!(due_day(DateTime::from_timestamp(86_400, 0).unwrap()), 1);
        let a = AccountId::new();
        assert_eq!(Job::erase_account(a, now, now).id, Job::erase_id(a));
    }
}
