//! The waiting queue of one clinic session (BOOK-10, 候诊排队与叫号): one doctor, one date, one
//! period, one room. Patients who checked in (签到) wait in order of their appointment time
//! (segment, then place within it), then of check-in; staff call the next one (叫号), skip one
//! who does not come (过号) and call them again later, or move a waiting patient by hand. Every
//! waiting patient gets a position (1 = next) and an estimated wait, from an average consultation
//! time that starts at 8 minutes and follows the observed time between calls.
//!
//! Pure: no I/O and no clock. The queue actor owns one `ClinicQueue`, applies an operation to it
//! with the time, stores the whole queue, and only then answers and publishes positions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::average::moving_average;
use crate::{AccountId, AppointmentId, DoctorId, PatientId, SessionId};

/// The consultation time assumed before any has been observed.
pub const DEFAULT_CONSULTATION_SECS: u32 = 8 * 60;
/// Observed consultations are clamped to this range before they move the average: a doctor's
/// lunch break or a mis-click must not swing every estimate.
pub const MIN_OBSERVED_SECS: i64 = 60;
pub const MAX_OBSERVED_SECS: i64 = 60 * 60;

/// A patient who checked in for an appointment of this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub appointment_id: AppointmentId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub patient_name: String,
    /// The appointment's segment (time range) within the session, from 0.
    pub segment: u16,
    /// The appointment's place (就诊序号) within its segment, from 1.
    pub place: u32,
    pub checked_in_at: DateTime<Utc>,
}

impl QueueEntry {
    /// The natural order: appointment time (segment, then place), then check-in time.
    fn order_key(&self) -> (u16, u32, DateTime<Utc>, AppointmentId) {
        (self.segment, self.place, self.checked_in_at, self.appointment_id)
    }
}

/// The patient being called now, and where to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalledEntry {
    pub entry: QueueEntry,
    /// The consulting room (诊室).
    pub room: String,
    pub called_at: DateTime<Utc>,
}

/// A waiting patient's place in the queue, as they are shown it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePosition {
    pub account_id: AccountId,
    pub appointment_id: AppointmentId,
    /// 1 is next.
    pub position: usize,
    /// Patients ahead (`position - 1`).
    pub ahead: usize,
    pub estimated_wait_minutes: u32,
}

/// Where one appointment stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueueStatus {
    /// Checked in, waiting to be called.
    Waiting,
    /// Called now: go to the room.
    Called,
    /// Called but did not come (过号); staff may call them again.
    Skipped,
    /// Seen: another patient was called after them.
    Done,
}

/// One appointment's standing: its status, its position while waiting, its room when called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStanding {
    pub status: QueueStatus,
    pub position: Option<QueuePosition>,
    pub room: Option<String>,
}

/// Why a queue operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("this patient is not waiting in the queue")]
    NotWaiting,
    #[error("this patient was not skipped")]
    NotSkipped,
    #[error("no patient is being called")]
    NothingCalled,
    #[error("the position must be between 1 and {len}")]
    BadPosition { len: usize },
}

/// The queue of one clinic session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicQueue {
    pub session_id: SessionId,
    pub doctor_id: DoctorId,
    /// Waiting patients, first in line first. Kept in the natural order, except where staff
    /// moved someone by hand; a new check-in goes before the first patient who sorts after it.
    waiting: Vec<QueueEntry>,
    called: Option<CalledEntry>,
    /// Skipped patients, in the order they were skipped.
    skipped: Vec<QueueEntry>,
    /// Patients seen, in the order they finished.
    done: Vec<QueueEntry>,
    /// The moving average consultation time, seconds.
    avg_consultation_secs: u32,
    /// How many consultations the average has seen.
    observed: u32,
    /// The room of the last call: a skipped patient is called again to it.
    last_room: Option<String>,
}

impl ClinicQueue {
    pub fn new(session_id: SessionId, doctor_id: DoctorId) -> Self {
        Self {
            session_id,
            doctor_id,
            waiting: Vec::new(),
            called: None,
            skipped: Vec::new(),
            done: Vec::new(),
            avg_consultation_secs: DEFAULT_CONSULTATION_SECS,
            observed: 0,
            last_room: None,
        }
    }

    pub fn waiting(&self) -> &[QueueEntry] {
        &self.waiting
    }

    pub fn skipped(&self) -> &[QueueEntry] {
        &self.skipped
    }

    pub fn done(&self) -> &[QueueEntry] {
        &self.done
    }

    /// The patient called now, and the room.
    pub fn called(&self) -> Option<(&QueueEntry, &str)> {
        self.called.as_ref().map(|c| (&c.entry, c.room.as_str()))
    }

    pub fn called_entry(&self) -> Option<&CalledEntry> {
        self.called.as_ref()
    }

    pub fn avg_consultation_secs(&self) -> u32 {
        self.avg_consultation_secs
    }

    /// Whether the appointment is anywhere in the queue (waiting, called, skipped or done).
    pub fn contains(&self, appointment: AppointmentId) -> bool {
        self.status(appointment).is_some()
    }

    pub fn status(&self, appointment: AppointmentId) -> Option<QueueStatus> {
        let is = |e: &QueueEntry| e.appointment_id == appointment;
        if self.waiting.iter().any(is) {
            Some(QueueStatus::Waiting)
        } else if self.called.as_ref().is_some_and(|c| is(&c.entry)) {
            Some(QueueStatus::Called)
        } else if self.skipped.iter().any(is) {
            Some(QueueStatus::Skipped)
        } else if self.done.iter().any(is) {
            Some(QueueStatus::Done)
        } else {
            None
        }
    }

    /// The appointment's entry, wherever it is.
    pub fn entry(&self, appointment: AppointmentId) -> Option<&QueueEntry> {
        let is = |e: &&QueueEntry| e.appointment_id == appointment;
        self.waiting
            .iter()
            .find(is)
            .or_else(|| self.called.as_ref().map(|c| &c.entry).filter(is))
            .or_else(|| self.skipped.iter().find(is))
            .or_else(|| self.done.iter().find(is))
    }

    /// Adds a patient who checked in. Idempotent: an appointment already in the queue (in any
    /// state) changes nothing and gives false.
    pub fn check_in(&mut self, entry: QueueEntry) -> bool {
        if self.contains(entry.appointment_id) {
            return false;
        }
        let key = entry.order_key();
        let at = self.waiting.iter().position(|e| e.order_key() > key).unwrap_or(self.waiting.len());
        self.waiting.insert(at, entry);
        true
    }

    /// Ends the current call: a patient who was called and is now replaced was seen, and the
    /// time since their call is an observed consultation.
    fn finish_current(&mut self, now: DateTime<Utc>) {
        if let Some(c) = self.called.take() {
            let secs = (now - c.called_at).num_seconds().clamp(MIN_OBSERVED_SECS, MAX_OBSERVED_SECS) as u64;
            self.avg_consultation_secs = moving_average(self.avg_consultation_secs, self.observed, secs);
            self.observed = self.observed.saturating_add(1);
            self.done.push(c.entry);
        }
    }

    /// 叫号: the patient called before is done; the first in line is called to `room` and leaves
    /// the waiting list. None when nobody waits (the previous patient is still done).
    pub fn call_next(&mut self, room: &str, now: DateTime<Utc>) -> Option<QueueEntry> {
        self.finish_current(now);
        if self.waiting.is_empty() {
            return None;
        }
        let entry = self.waiting.remove(0);
        self.last_room = Some(room.to_string());
        self.called = Some(CalledEntry { entry: entry.clone(), room: room.to_string(), called_at: now });
        Some(entry)
    }

    /// 过号: the patient called now did not come; they go to the skipped list.
    pub fn skip(&mut self) -> Result<QueueEntry, QueueError> {
        let c = self.called.take().ok_or(QueueError::NothingCalled)?;
        self.skipped.push(c.entry.clone());
        Ok(c.entry)
    }

    /// Calls a skipped patient again, to the room of the last call (or `room` if given). The
    /// patient called before is done, as with `call_next`.
    pub fn recall(
        &mut self,
        appointment: AppointmentId,
        room: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<QueueEntry, QueueError> {
        let i = self.skipped.iter().position(|e| e.appointment_id == appointment).ok_or(QueueError::NotSkipped)?;
        let room = room.map(str::to_string).or_else(|| self.last_room.clone()).unwrap_or_default();
        self.finish_current(now);
        let entry = self.skipped.remove(i);
        self.last_room = Some(room.clone());
        self.called = Some(CalledEntry { entry: entry.clone(), room, called_at: now });
        Ok(entry)
    }

    /// Moves a waiting patient to `new_position` (1 = next), by hand.
    pub fn reorder(&mut self, appointment: AppointmentId, new_position: usize) -> Result<(), QueueError> {
        let i = self.waiting.iter().position(|e| e.appointment_id == appointment).ok_or(QueueError::NotWaiting)?;
        if new_position == 0 || new_position > self.waiting.len() {
            return Err(QueueError::BadPosition { len: self.waiting.len() });
        }
        let e = self.waiting.remove(i);
        self.waiting.insert(new_position - 1, e);
        Ok(())
    }

    /// Every waiting patient's position and estimated wait at `now`: the rest of the current
    /// consultation (the average minus the time since the call, never below 0) plus one average
    /// consultation per patient ahead, rounded up to whole minutes.
    pub fn positions(&self, now: DateTime<Utc>) -> Vec<QueuePosition> {
        let avg = i64::from(self.avg_consultation_secs);
        let current = match &self.called {
            Some(c) => (avg - (now - c.called_at).num_seconds()).clamp(0, avg),
            None => 0,
        };
        self.waiting
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let secs = current + avg * i as i64;
                QueuePosition {
                    account_id: e.account_id,
                    appointment_id: e.appointment_id,
                    position: i + 1,
                    ahead: i,
                    estimated_wait_minutes: u32::try_from((secs + 59) / 60).unwrap_or(u32::MAX),
                }
            })
            .collect()
    }

    /// Where one appointment stands.
    pub fn standing(&self, appointment: AppointmentId, now: DateTime<Utc>) -> Option<QueueStanding> {
        let status = self.status(appointment)?;
        let position = match status {
            QueueStatus::Waiting => self.positions(now).into_iter().find(|p| p.appointment_id == appointment),
            _ => None,
        };
        let room = match status {
            QueueStatus::Called => self.called.as_ref().map(|c| c.room.clone()),
            _ => None,
        };
        Some(QueueStanding { status, position, room })
    }

    /// The queue's invariant, for tests: every appointment appears once, in one state.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        let all = self
            .waiting
            .iter()
            .chain(self.called.as_ref().map(|c| &c.entry))
            .chain(self.skipped.iter())
            .chain(self.done.iter());
        for e in all {
            if !seen.insert(e.appointment_id) {
                return Err(format!("appointment {} is in the queue twice", e.appointment_id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn entry(segment: u16, place: u32, checked_in_at: DateTime<Utc>) -> QueueEntry {
        QueueEntry {
            appointment_id: AppointmentId::new(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            patient_name: format!("患者{segment}-{place}"),
            segment,
            place,
            checked_in_at,
        }
    }

    fn order(q: &ClinicQueue) -> Vec<(u16, u32)> {
        q.waiting().iter().map(|e| (e.segment, e.place)).collect()
    }

    fn queue() -> ClinicQueue {
        ClinicQueue::new(SessionId::new(), DoctorId::new())
    }

    #[test]
    fn ordered_by_appointment_time_then_check_in_and_idempotent() {
        let mut q = queue();
        let late = entry(1, 1, t0());
        assert!(q.check_in(late.clone()));
        assert!(q.check_in(entry(0, 2, t0() + Duration::minutes(1))));
        assert!(q.check_in(entry(0, 1, t0() + Duration::minutes(2))));
        // Same segment and place cannot happen for two live bookings, but the tie breaks on
        // check-in time all the same.
        let mut twin = entry(0, 2, t0());
        twin.patient_name = "twin".into();
        assert!(q.check_in(twin.clone()));
        assert_eq!(order(&q), vec![(0, 1), (0, 2), (0, 2), (1, 1)]);
        assert_eq!(q.waiting()[1].appointment_id, twin.appointment_id, "earlier check-in first");
        assert!(!q.check_in(late.clone()), "checking in twice changes nothing");
        assert_eq!(q.waiting().len(), 4);
        let p = q.positions(t0());
        assert_eq!(p.iter().map(|p| p.position).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(p[3].appointment_id, late.appointment_id);
        q.check_invariants().unwrap();
    }

    #[test]
    fn call_skip_recall_and_done() {
        let mut q = queue();
        let a = entry(0, 1, t0());
        let b = entry(0, 2, t0());
        let c = entry(0, 3, t0());
        for e in [&a, &b, &c] {
            q.check_in(e.clone());
        }
        assert_eq!(q.skip(), Err(QueueError::NothingCalled));
        let called = q.call_next("3", t0()).unwrap();
        assert_eq!(called.appointment_id, a.appointment_id);
        assert_eq!(q.called().map(|(e, r)| (e.appointment_id, r)), Some((a.appointment_id, "3")));
        assert_eq!(q.status(a.appointment_id), Some(QueueStatus::Called));
        assert!(!q.check_in(a.clone()), "a called patient checking in again stays called");

        // b is called, a is done; b does not come and is skipped; c is called.
        q.call_next("3", t0() + Duration::minutes(10)).unwrap();
        assert_eq!(q.status(a.appointment_id), Some(QueueStatus::Done));
        assert_eq!(q.skip().unwrap().appointment_id, b.appointment_id);
        assert_eq!(q.called(), None);
        assert_eq!(q.status(b.appointment_id), Some(QueueStatus::Skipped));
        assert_eq!(q.call_next("3", t0() + Duration::minutes(11)).unwrap().appointment_id, c.appointment_id);
        assert_eq!(q.recall(a.appointment_id, None, t0()), Err(QueueError::NotSkipped));
        // b comes back and is called again, to the same room; c is done.
        let again = q.recall(b.appointment_id, None, t0() + Duration::minutes(17)).unwrap();
        assert_eq!(again.appointment_id, b.appointment_id);
        assert_eq!(q.called().map(|(e, r)| (e.appointment_id, r.to_string())), Some((b.appointment_id, "3".into())));
        assert_eq!(q.status(c.appointment_id), Some(QueueStatus::Done));
        assert!(q.skipped().is_empty());
        assert_eq!(q.call_next("3", t0() + Duration::minutes(20)), None, "nobody waits");
        assert_eq!(q.called(), None);
        assert_eq!(q.done().len(), 3);
        q.check_invariants().unwrap();
    }

    #[test]
    fn the_average_follows_observed_consultations() {
        let mut q = queue();
        for p in 1..=5 {
            q.check_in(entry(0, p, t0()));
        }
        assert_eq!(q.avg_consultation_secs(), DEFAULT_CONSULTATION_SECS);
        // Nobody called: the first waits 0, then 8 minutes per patient ahead.
        let w: Vec<u32> = q.positions(t0()).iter().map(|p| p.estimated_wait_minutes).collect();
        assert_eq!(w, vec![0, 8, 16, 24, 32]);
        q.call_next("1", t0());
        // Two minutes into the consultation: 6 minutes left of it.
        let w: Vec<u32> = q.positions(t0() + Duration::minutes(2)).iter().map(|p| p.estimated_wait_minutes).collect();
        assert_eq!(w, vec![6, 14, 22, 30]);
        // A 12-minute consultation replaces the default; then a 4-minute one moves it by 1/4.
        q.call_next("1", t0() + Duration::minutes(12));
        assert_eq!(q.avg_consultation_secs(), 12 * 60);
        q.call_next("1", t0() + Duration::minutes(16));
        assert_eq!(q.avg_consultation_secs(), (12 * 60 * 3 + 4 * 60) / 4);
        // A consultation over the lunch break counts as an hour at most.
        q.call_next("1", t0() + Duration::hours(5));
        assert_eq!(q.avg_consultation_secs(), (600 * 3 + 3600) / 4);
        // A skipped call is not a consultation.
        let before = q.avg_consultation_secs();
        q.skip().unwrap();
        q.call_next("1", t0() + Duration::hours(6));
        assert_eq!(q.avg_consultation_secs(), before);
    }

    #[test]
    fn reorder_by_hand_and_later_check_ins() {
        let mut q = queue();
        let es: Vec<QueueEntry> = (1..=4).map(|p| entry(0, p, t0())).collect();
        for e in &es {
            q.check_in(e.clone());
        }
        q.reorder(es[3].appointment_id, 1).unwrap();
        assert_eq!(order(&q), vec![(0, 4), (0, 1), (0, 2), (0, 3)]);
        q.reorder(es[0].appointment_id, 4).unwrap();
        assert_eq!(order(&q), vec![(0, 4), (0, 2), (0, 3), (0, 1)]);
        assert_eq!(q.reorder(es[0].appointment_id, 0), Err(QueueError::BadPosition { len: 4 }));
        assert_eq!(q.reorder(es[0].appointment_id, 5), Err(QueueError::BadPosition { len: 4 }));
        assert_eq!(q.reorder(AppointmentId::new(), 1), Err(QueueError::NotWaiting));
        // A new check-in goes before the first patient who sorts after it.
        q.check_in(entry(0, 5, t0()));
        q.check_in(entry(0, 0, t0()));
        assert_eq!(order(&q), vec![(0, 0), (0, 4), (0, 2), (0, 3), (0, 1), (0, 5)]);
        q.check_invariants().unwrap();
    }

    #[test]
    fn standing_and_serde_round_trip() {
        let mut q = queue();
        let a = entry(0, 1, t0());
        let b = entry(0, 2, t0());
        q.check_in(a.clone());
        q.check_in(b.clone());
        q.call_next("5", t0());
        let s = q.standing(a.appointment_id, t0()).unwrap();
        assert_eq!((s.status, s.room.as_deref(), s.position), (QueueStatus::Called, Some("5"), None));
        let s = q.standing(b.appointment_id, t0()).unwrap();
        assert_eq!(s.status, QueueStatus::Waiting);
        assert_eq!(s.position.map(|p| (p.position, p.ahead, p.estimated_wait_minutes)), Some((1, 0, 8)));
        assert_eq!(q.standing(AppointmentId::new(), t0()), None);
        let json = serde_json::to_string(&q).unwrap();
        let back: ClinicQueue = serde_json::from_str(&json).unwrap();
        assert_eq!(back, q);
    }

    #[derive(Debug, Clone)]
    enum Op {
        CheckIn { segment: u16, place: u32 },
        CheckInAgain(usize),
        CallNext,
        Skip,
        Recall(usize),
        Reorder { pick: usize, to: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u16..4, 1u32..20).prop_map(|(segment, place)| Op::CheckIn { segment, place }),
            1 => (0usize..64).prop_map(Op::CheckInAgain),
            2 => Just(Op::CallNext),
            1 => Just(Op::Skip),
            1 => (0usize..64).prop_map(Op::Recall),
            2 => (0usize..64, 0usize..70).prop_map(|(pick, to)| Op::Reorder { pick, to }),
        ]
    }

    proptest! {
        /// Whatever staff and patients do, the positions handed out are 1..=n with no gap and no
        /// duplicate, in the order of the waiting list, with waits that never decrease down the
        /// line, and every appointment is in the queue once.
        #[test]
        fn positions_are_always_one_to_n(ops in proptest::collection::vec(op(), 1..80)) {
            let mut q = queue();
            let mut all: Vec<QueueEntry> = Vec::new();
            let mut now = t0();
            for op in ops {
                now += Duration::seconds(97);
                match op {
                    Op::CheckIn { segment, place } => {
                        let e = entry(segment, place, now);
                        all.push(e.clone());
                        prop_assert!(q.check_in(e));
                    }
                    Op::CheckInAgain(i) => {
                        if !all.is_empty() {
                            let e = all[i % all.len()].clone();
                            let before = q.clone();
                            prop_assert!(!q.check_in(e));
                            prop_assert_eq!(&before, &q);
                        }
                    }
                    Op::CallNext => {
                        let first = q.waiting().first().map(|e| e.appointment_id);
                        prop_assert_eq!(q.call_next("1", now).map(|e| e.appointment_id), first);
                    }
                    Op::Skip => {
                        let _ = q.skip();
                    }
                    Op::Recall(i) => {
                        if !q.skipped().is_empty() {
                            let id = q.skipped()[i % q.skipped().len()].appointment_id;
                            prop_assert_eq!(q.recall(id, None, now).unwrap().appointment_id, id);
                        }
                    }
                    Op::Reorder { pick, to } => {
                        if !q.waiting().is_empty() {
                            let id = q.waiting()[pick % q.waiting().len()].appointment_id;
                            let r = q.reorder(id, to);
                            prop_assert_eq!(r.is_ok(), (1..=q.waiting().len()).contains(&to));
                            if r.is_ok() {
                                prop_assert_eq!(q.waiting()[to - 1].appointment_id, id);
                            }
                        }
                    }
                }
                q.check_invariants().map_err(TestCaseError::fail)?;
                let ps = q.positions(now);
                let n = q.waiting().len();
                prop_assert_eq!(ps.iter().map(|p| p.position).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
                prop_assert!(ps.iter().all(|p| p.ahead + 1 == p.position));
                prop_assert!(ps.windows(2).all(|w| w[0].estimated_wait_minutes <= w[1].estimated_wait_minutes));
                let ids: Vec<AppointmentId> = q.waiting().iter().map(|e| e.appointment_id).collect();
                prop_assert_eq!(ps.iter().map(|p| p.appointment_id).collect::<Vec<_>>(), ids);
                // Every appointment that checked in is somewhere.
                prop_assert!(all.iter().all(|e| q.contains(e.appointment_id)));
            }
        }
    }
}
