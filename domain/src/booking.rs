//! The booking rules of one doctor's sessions, as a pure state machine (BOOK-3..7, BOOK-9): holds
//! with expiry, confirmation, cancellation, rescheduling, quota changes (加号/减号), clinic stops
//! (停诊) and the waitlist (候补). No I/O and no clock: the schedule actor owns a `DoctorBook`,
//! feeds it events with the time, persists what each event changed, and only then answers. The
//! invariant it keeps (`check_invariants`): in every segment, the live appointments hold distinct
//! places and are never more than the quota.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::appointment::{Appointment, AppointmentEvent, AppointmentStatus, CancelReason, InvalidTransition};
use crate::schedule::{ClinicSession, SessionStatus, SlotId};
use crate::{AccountId, AppointmentId, OrderId, PatientId, SessionId};

/// Why a booking operation was refused. Each maps to a stable API error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("no such slot")]
    NoSuchSlot,
    #[error("no such appointment")]
    NoSuchAppointment,
    #[error("the clinic was stopped (停诊)")]
    SessionStopped,
    #[error("slots are released at {release_at}")]
    NotReleased { release_at: DateTime<Utc> },
    #[error("no places left in this slot")]
    SoldOut,
    #[error("this person already has a place in this session")]
    AlreadyInSession,
    #[error("booking has closed: this slot's time is past")]
    BookingClosed,
    #[error("the quota cannot go below the {booked} places already booked")]
    QuotaBelowBooked { booked: u32 },
    #[error("this person is already on the waitlist")]
    AlreadyWaiting,
    #[error("places are still free: book one instead of joining the waitlist")]
    NotSoldOut,
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
}

/// Who is booking, and what the new appointment is to be called.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    pub appointment_id: AppointmentId,
    pub order_id: OrderId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub person: String,
    pub patient_name: String,
    pub idempotency_key: Option<String>,
    pub now: DateTime<Utc>,
    /// How long the hold lasts unpaid.
    pub hold_for: Duration,
}

/// A patient waiting for a place in a full session (候补).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitEntry {
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub person: String,
    pub patient_name: String,
    pub joined_at: DateTime<Utc>,
}

/// Stopped, not released, sold out: the refusals of a hold that depend on the session alone,
/// never on who books. `check` answers them exactly as `SessionBook::bookable` does from the
/// book; a copy of this, kept current by the doctor's schedule actor, lets a node refuse without
/// asking the actor (see the actors' `AvailabilityGate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGate {
    pub status: SessionStatus,
    pub release_at: DateTime<Utc>,
    /// Places left per segment (0 for every segment of a stopped session).
    pub remaining: Vec<u32>,
    /// The session's department and day, which never change: what the real-name rules of a
    /// hold need, so a booking the gate lets through does not read the session from the store.
    pub department_id: crate::DepartmentId,
    pub date: chrono::NaiveDate,
}

impl SessionGate {
    /// The refusal a hold of `segment` at `now` would get from these facts, in `hold`'s order.
    pub fn check(&self, segment: u16, now: DateTime<Utc>) -> Result<(), BookError> {
        let Some(left) = self.remaining.get(segment as usize) else { return Err(BookError::NoSuchSlot) };
        check_open(self.status, self.release_at, now)?;
        if *left == 0 {
            return Err(BookError::SoldOut);
        }
        Ok(())
    }
}

fn check_open(status: SessionStatus, release_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), BookError> {
    if status == SessionStatus::Stopped {
        return Err(BookError::SessionStopped);
    }
    if now < release_at {
        return Err(BookError::NotReleased { release_at });
    }
    Ok(())
}

/// One session's places, live appointments and waitlist.
#[derive(Debug, Clone)]
pub struct SessionBook {
    pub session: ClinicSession,
    /// Live (slot-occupying) appointments by id. Changed only through `put_live` and `take_live`,
    /// which keep `persons` with it.
    live: BTreeMap<AppointmentId, Appointment>,
    /// How many live appointments each person (ID-number index) has here: one at most, by the
    /// invariant. The "already in this session" check of a hold asks it instead of walking every
    /// live appointment, which was a cache miss per appointment and so grew with the session's
    /// places (docs/benchmarks.md, the storm of 18,000).
    persons: HashMap<String, u32>,
    /// Per segment: the places taken by live appointments (`first_free` finds the lowest free one).
    taken: Vec<BTreeSet<u32>>,
    pub waitlist: VecDeque<WaitEntry>,
}

/// The lowest place number (from 1) not in `taken`: the first gap in its ascending walk.
fn first_free(taken: &BTreeSet<u32>) -> u32 {
    // Places taken in order, none let go (every release storm): distinct numbers from 1 whose
    // largest is their count are exactly 1..=count, so the next is count + 1 without the walk.
    let counted = taken.len() as u32 - u32::from(taken.contains(&0));
    if taken.last().is_none_or(|&last| last == counted) {
        return counted + 1;
    }
    let mut next = 1;
    for &p in taken.range(1..) {
        if p != next {
            break;
        }
        next += 1;
    }
    next
}

impl SessionBook {
    /// Rebuilds a session's book from what the store holds (after a restart).
    pub fn new(
        session: ClinicSession,
        appointments: impl IntoIterator<Item = Appointment>,
        waitlist: Vec<WaitEntry>,
    ) -> Self {
        let mut b = SessionBook {
            taken: vec![BTreeSet::new(); session.segments.len()],
            session,
            live: BTreeMap::new(),
            persons: HashMap::new(),
            waitlist: waitlist.into(),
        };
        for a in appointments {
            if a.status.occupies_slot() && a.slot.session_id == b.session.id {
                if let Some(t) = b.taken.get_mut(a.slot.segment as usize) {
                    t.insert(a.place);
                    b.put_live(a);
                }
            }
        }
        b
    }

    /// Puts `a` among the live appointments (in place of the same id's, whose person is the same).
    fn put_live(&mut self, a: Appointment) {
        if !self.live.contains_key(&a.id) {
            *self.persons.entry(a.person.clone()).or_default() += 1;
        }
        self.live.insert(a.id, a);
    }

    /// Takes appointment `id` out of the live ones.
    fn take_live(&mut self, id: AppointmentId) -> Option<Appointment> {
        let a = self.live.remove(&id)?;
        if let Some(n) = self.persons.get_mut(&a.person) {
            *n -= 1;
            if *n == 0 {
                self.persons.remove(&a.person);
            }
        }
        Some(a)
    }

    /// Whether `person` has a live appointment here.
    fn has_person(&self, person: &str) -> bool {
        self.persons.contains_key(person)
    }

    pub fn remaining(&self, segment: usize) -> u32 {
        let quota = self.session.segments.get(segment).map(|s| s.quota).unwrap_or(0);
        let taken = self.taken.get(segment).map(|t| t.len() as u32).unwrap_or(0);
        if self.session.status == SessionStatus::Stopped {
            0
        } else {
            quota.saturating_sub(taken)
        }
    }

    pub fn remaining_all(&self) -> Vec<u32> {
        (0..self.session.segments.len()).map(|i| self.remaining(i)).collect()
    }

    /// Places left in the segments from `open_from` on.
    fn free_from(&self, open_from: usize) -> u32 {
        (open_from..self.session.segments.len()).map(|i| self.remaining(i)).sum()
    }

    pub fn sold_out(&self) -> bool {
        self.remaining_all().iter().all(|r| *r == 0)
    }

    pub fn live(&self) -> impl Iterator<Item = &Appointment> {
        self.live.values()
    }

    pub fn appointment(&self, id: AppointmentId) -> Option<&Appointment> {
        self.live.get(&id)
    }

    /// When the session starts (its first segment), in UTC.
    pub fn starts_at(&self, zone: crate::time::HospitalZone) -> DateTime<Utc> {
        let first = self.session.segments.first().map(|s| s.start).unwrap_or_default();
        zone.to_utc(self.session.date, first)
    }

    fn check_open(&self, now: DateTime<Utc>) -> Result<(), BookError> {
        check_open(self.session.status, self.session.release_at, now)
    }

    /// Whether a place of `segment` could be taken at `now`: the same checks, in the same order,
    /// as `hold`, without taking it (what `SessionGate::check` decides, from the book itself).
    pub fn bookable(&self, segment: u16, now: DateTime<Utc>) -> Result<(), BookError> {
        let seg = segment as usize;
        if seg >= self.session.segments.len() {
            return Err(BookError::NoSuchSlot);
        }
        self.check_open(now)?;
        if self.remaining(seg) == 0 {
            return Err(BookError::SoldOut);
        }
        Ok(())
    }

    /// What decides the refusals that need no person (stopped, not released, sold out), as of
    /// now: the session's entry in a node's availability gate.
    pub fn gate(&self) -> SessionGate {
        SessionGate {
            status: self.session.status,
            release_at: self.session.release_at,
            remaining: self.remaining_all(),
            department_id: self.session.department_id,
            date: self.session.date,
        }
    }

    /// Takes the lowest free place of `segment` for the request. The order of the checks is
    /// the order patients care about: stopped, not released, sold out.
    pub fn hold(&mut self, segment: u16, req: &HoldRequest) -> Result<Appointment, BookError> {
        self.bookable(segment, req.now)?;
        let seg = segment as usize;
        if self.has_person(&req.person) {
            return Err(BookError::AlreadyInSession);
        }
        let place = first_free(&self.taken[seg]);
        let a = Appointment {
            id: req.appointment_id,
            slot: self.session.slot_id(segment),
            place,
            doctor_id: self.session.doctor_id,
            department_id: self.session.department_id,
            date: self.session.date,
            period: self.session.period,
            account_id: req.account_id,
            patient_id: req.patient_id,
            person: req.person.clone(),
            patient_name: req.patient_name.clone(),
            fee: self.session.fee,
            status: AppointmentStatus::Held,
            order_id: req.order_id,
            created_at: req.now,
            hold_expires_at: req.now + req.hold_for,
            confirmed_at: None,
            slip_no: None,
            cancelled_at: None,
            cancel_reason: None,
            idempotency_key: req.idempotency_key.clone(),
            from_waitlist: false,
            rescheduled_from: None,
            rescheduled_to: None,
        };
        self.taken[seg].insert(place);
        self.put_live(a.clone());
        // A person who gets a place no longer waits for one.
        self.waitlist.retain(|w| w.person != req.person);
        Ok(a)
    }

    /// Paid: the hold becomes a confirmed booking with its slip number.
    pub fn confirm(&mut self, id: AppointmentId, now: DateTime<Utc>) -> Result<Appointment, BookError> {
        let a = self.live.get_mut(&id).ok_or(BookError::NoSuchAppointment)?;
        a.apply(AppointmentEvent::Pay, now)?;
        a.slip_no = Some(a.make_slip_no());
        Ok(a.clone())
    }

    fn release(
        &mut self,
        id: AppointmentId,
        event: AppointmentEvent,
        now: DateTime<Utc>,
    ) -> Result<Appointment, BookError> {
        let a = self.live.get_mut(&id).ok_or(BookError::NoSuchAppointment)?;
        a.apply(event, now)?;
        let a = self.take_live(id).expect("present");
        self.taken[a.slot.segment as usize].remove(&a.place);
        Ok(a)
    }

    pub fn cancel(
        &mut self,
        id: AppointmentId,
        now: DateTime<Utc>,
        reason: CancelReason,
    ) -> Result<Appointment, BookError> {
        let mut a = self.release(id, AppointmentEvent::Cancel, now)?;
        a.cancel_reason = Some(reason);
        Ok(a)
    }

    pub fn expire(&mut self, id: AppointmentId, now: DateTime<Utc>) -> Result<Appointment, BookError> {
        self.release(id, AppointmentEvent::Expire, now)
    }

    /// Moves a live appointment through an event after which it keeps its place: check-in, the
    /// end of its visit (seen), a no-show (missed) and staff striking one off (excused). Events
    /// that free the place are `cancel` and `expire`. Nothing changes on error.
    pub fn advance(
        &mut self,
        id: AppointmentId,
        event: AppointmentEvent,
        now: DateTime<Utc>,
    ) -> Result<Appointment, BookError> {
        let a = self.live.get_mut(&id).ok_or(BookError::NoSuchAppointment)?;
        let mut next = a.clone();
        next.apply(event, now)?;
        if !next.status.occupies_slot() {
            // Would free the place without freeing it here: a caller's mistake, refused.
            return Err(BookError::Transition(InvalidTransition { from: a.status, event }));
        }
        *a = next.clone();
        Ok(next)
    }

    /// The confirmed appointments of the session that never checked in: at the session's end
    /// they are no-shows.
    pub fn not_checked_in(&self) -> Vec<AppointmentId> {
        self.live.values().filter(|a| a.status == AppointmentStatus::Confirmed).map(|a| a.id).collect()
    }

    /// Holds whose time ran out by `now`, oldest first.
    pub fn due_holds(&self, now: DateTime<Utc>) -> Vec<AppointmentId> {
        let mut v: Vec<&Appointment> =
            self.live.values().filter(|a| a.status == AppointmentStatus::Held && a.hold_expires_at <= now).collect();
        v.sort_by_key(|a| a.hold_expires_at);
        v.into_iter().map(|a| a.id).collect()
    }

    /// 加号/减号: sets a segment's quota; never below the places already taken.
    pub fn set_quota(&mut self, segment: u16, quota: u32) -> Result<(), BookError> {
        let seg = segment as usize;
        let booked = self.taken.get(seg).ok_or(BookError::NoSuchSlot)?.len() as u32;
        if quota < booked {
            return Err(BookError::QuotaBelowBooked { booked });
        }
        self.session.segments[seg].quota = quota;
        Ok(())
    }

    /// 号源调整 of times (and counts): replaces the session's segments. Segment `i` keeps its
    /// bookings (the same places, now at the new segment's time), so a segment with bookings can
    /// neither go nor have fewer places than it has booked. The caller has checked the segments
    /// are in order (`ClinicSession::validate`). Answers the live appointments whose time changed.
    pub fn set_segments(&mut self, segments: Vec<crate::schedule::Segment>) -> Result<Vec<Appointment>, BookError> {
        for (i, taken) in self.taken.iter().enumerate() {
            let booked = taken.len() as u32;
            if segments.get(i).map_or(0, |s| s.quota) < booked {
                return Err(BookError::QuotaBelowBooked { booked });
            }
        }
        let moved: BTreeSet<usize> = (0..self.session.segments.len())
            .filter(|&i| {
                let old = &self.session.segments[i];
                segments.get(i).is_none_or(|new| (new.start, new.end) != (old.start, old.end))
            })
            .collect();
        self.taken.resize(segments.len(), BTreeSet::new());
        self.session.segments = segments;
        Ok(self.live.values().filter(|a| moved.contains(&(a.slot.segment as usize))).cloned().collect())
    }

    /// 停诊: cancels every live appointment and empties the waitlist; returns both.
    pub fn stop(&mut self, now: DateTime<Utc>) -> (Vec<Appointment>, Vec<WaitEntry>) {
        self.session.status = SessionStatus::Stopped;
        let ids: Vec<AppointmentId> = self.live.keys().copied().collect();
        let cancelled =
            ids.into_iter().filter_map(|id| self.cancel(id, now, CancelReason::ClinicStopped).ok()).collect();
        (cancelled, self.end_waitlist())
    }

    /// Ends the waitlist (the clinic stopped or closed): those who were in it, in order.
    pub fn end_waitlist(&mut self) -> Vec<WaitEntry> {
        self.waitlist.drain(..).collect()
    }

    /// Puts `entry` at the end of the line, if every place of the segments from `open_from` on
    /// (those whose time is not past: `ClinicSession::open_from`) is taken; its 1-based position.
    pub fn join_waitlist(
        &mut self,
        entry: WaitEntry,
        now: DateTime<Utc>,
        open_from: usize,
    ) -> Result<usize, BookError> {
        self.check_open(now)?;
        if self.free_from(open_from) > 0 {
            return Err(BookError::NotSoldOut);
        }
        if self.waitlist.iter().any(|w| w.person == entry.person) || self.has_person(&entry.person) {
            return Err(BookError::AlreadyWaiting);
        }
        self.waitlist.push_back(entry);
        Ok(self.waitlist.len())
    }

    pub fn leave_waitlist(&mut self, patient: PatientId) -> bool {
        let before = self.waitlist.len();
        self.waitlist.retain(|w| w.patient_id != patient);
        before != self.waitlist.len()
    }

    pub fn waitlist_position(&self, patient: PatientId) -> Option<usize> {
        self.waitlist.iter().position(|w| w.patient_id == patient).map(|i| i + 1)
    }

    /// Offers freed places of the segments from `open_from` on (a place whose time is past is no
    /// use to anyone) to the waitlist, first in line first: each offer is a hold (marked
    /// `from_waitlist`) that lapses like any other. `ids` names the new appointments and orders.
    /// Those in `passed_over` get no offer this time and keep their places in line.
    pub fn offer_to_waitlist(
        &mut self,
        now: DateTime<Utc>,
        open_from: usize,
        hold_for: Duration,
        passed_over: &[PatientId],
        mut ids: impl FnMut() -> (AppointmentId, OrderId),
    ) -> Vec<Appointment> {
        let mut offers = Vec::new();
        if !self.offers_open(now) {
            return offers;
        }
        while let Some(seg) = (open_from..self.session.segments.len()).find(|&s| self.remaining(s) > 0) {
            let Some(next) = self.waitlist.iter().position(|w| !passed_over.contains(&w.patient_id)) else { break };
            let Some(w) = self.waitlist.remove(next) else { break };
            let (appointment_id, order_id) = ids();
            let req = HoldRequest {
                appointment_id,
                order_id,
                account_id: w.account_id,
                patient_id: w.patient_id,
                person: w.person,
                patient_name: w.patient_name,
                idempotency_key: None,
                now,
                hold_for,
            };
            match self.hold(seg as u16, &req) {
                Ok(mut a) => {
                    a.from_waitlist = true;
                    self.put_live(a.clone());
                    offers.push(a);
                }
                // The person got a place here meanwhile: skip them.
                Err(_) => continue,
            }
        }
        offers
    }

    /// Whether freed places go to the waitlist now (released, not stopped).
    fn offers_open(&self, now: DateTime<Utc>) -> bool {
        self.session.status != SessionStatus::Stopped && now >= self.session.release_at
    }

    /// Those first in line whom `offer_to_waitlist` would offer a place now, `passed_over`
    /// aside: as many as places are free (none before the release or once stopped).
    pub fn offer_candidates<'a>(
        &'a self,
        now: DateTime<Utc>,
        open_from: usize,
        passed_over: &'a [PatientId],
    ) -> impl Iterator<Item = &'a WaitEntry> {
        // An empty line (most sessions, at every tick) needs no count of free places.
        let open = !self.waitlist.is_empty() && self.offers_open(now);
        let free = if open { self.free_from(open_from) } else { 0 };
        self.waitlist.iter().filter(|w| !passed_over.contains(&w.patient_id)).take(free as usize)
    }

    /// Moves a live appointment to another segment of this session, atomically: the new place is
    /// taken and the old one freed in one step, so the patient never holds both or neither.
    pub fn move_within(
        &mut self,
        id: AppointmentId,
        segment: u16,
        new_id: AppointmentId,
        now: DateTime<Utc>,
    ) -> Result<(Appointment, Appointment), BookError> {
        let old = self.live.get(&id).cloned().ok_or(BookError::NoSuchAppointment)?;
        let seg = segment as usize;
        if seg >= self.session.segments.len() {
            return Err(BookError::NoSuchSlot);
        }
        self.check_open(now)?;
        if self.remaining(seg) == 0 {
            return Err(BookError::SoldOut);
        }
        let mut cancelled = self.cancel(id, now, CancelReason::Rescheduled)?;
        let place = first_free(&self.taken[seg]);
        let mut moved = old.clone();
        moved.id = new_id;
        moved.slot = self.session.slot_id(segment);
        moved.place = place;
        moved.created_at = now;
        moved.rescheduled_from = Some(id);
        moved.slip_no = old.slip_no.as_ref().map(|_| moved.make_slip_no());
        cancelled.rescheduled_to = Some(new_id);
        self.taken[seg].insert(place);
        self.put_live(moved.clone());
        Ok((cancelled, moved))
    }

    /// Takes a place for an appointment moving in from another session (cross-session 改约):
    /// same patient, order and payment state, a new id and place here.
    pub fn accept_moved(
        &mut self,
        from: &Appointment,
        segment: u16,
        new_id: AppointmentId,
        now: DateTime<Utc>,
    ) -> Result<Appointment, BookError> {
        let seg = segment as usize;
        if seg >= self.session.segments.len() {
            return Err(BookError::NoSuchSlot);
        }
        self.check_open(now)?;
        if self.remaining(seg) == 0 {
            return Err(BookError::SoldOut);
        }
        if self.has_person(&from.person) {
            return Err(BookError::AlreadyInSession);
        }
        let place = first_free(&self.taken[seg]);
        let mut moved = from.clone();
        moved.id = new_id;
        moved.slot = self.session.slot_id(segment);
        moved.place = place;
        moved.doctor_id = self.session.doctor_id;
        moved.department_id = self.session.department_id;
        moved.date = self.session.date;
        moved.period = self.session.period;
        moved.created_at = now;
        moved.rescheduled_from = Some(from.id);
        moved.rescheduled_to = None;
        moved.slip_no = from.slip_no.as_ref().map(|_| moved.make_slip_no());
        self.taken[seg].insert(place);
        self.put_live(moved.clone());
        // As with `hold`: a person who gets a place here no longer waits for one.
        self.waitlist.retain(|w| w.person != from.person);
        Ok(moved)
    }

    /// Undoes `accept_moved` when the other half of a cross-session move failed.
    pub fn forget(&mut self, id: AppointmentId) {
        if let Some(a) = self.take_live(id) {
            self.taken[a.slot.segment as usize].remove(&a.place);
        }
    }

    /// The book's invariant, for tests and debug assertions.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, seg) in self.session.segments.iter().enumerate() {
            let live: Vec<&Appointment> = self.live.values().filter(|a| a.slot.segment as usize == i).collect();
            let places: BTreeSet<u32> = live.iter().map(|a| a.place).collect();
            if places.len() != live.len() {
                return Err(format!("segment {i}: two live appointments share a place"));
            }
            if places != self.taken[i] {
                return Err(format!("segment {i}: the taken set disagrees with the live appointments"));
            }
            if live.len() as u32 > seg.quota {
                return Err(format!("segment {i}: {} live appointments over a quota of {}", live.len(), seg.quota));
            }
            if live.iter().any(|a| !a.status.occupies_slot()) {
                return Err(format!("segment {i}: a final appointment is still live"));
            }
        }
        if self.session.status == SessionStatus::Stopped && (!self.live.is_empty() || !self.waitlist.is_empty()) {
            return Err("a stopped session still has bookings or a waitlist".into());
        }
        let persons: BTreeSet<&str> = self.live.values().map(|a| a.person.as_str()).collect();
        if persons.len() != self.live.len() {
            return Err("one person holds two places in a session".into());
        }
        if self.persons.len() != persons.len() || persons.iter().any(|p| self.persons.get(*p) != Some(&1)) {
            return Err("the persons index disagrees with the live appointments".into());
        }
        Ok(())
    }
}

/// All of one doctor's session books, and where each live appointment is.
#[derive(Debug, Clone, Default)]
pub struct DoctorBook {
    pub sessions: BTreeMap<SessionId, SessionBook>,
    index: HashMap<AppointmentId, SessionId>,
}

impl DoctorBook {
    pub fn new(books: impl IntoIterator<Item = SessionBook>) -> Self {
        let mut d = DoctorBook::default();
        for b in books {
            d.insert(b);
        }
        d
    }

    pub fn insert(&mut self, b: SessionBook) {
        for a in b.live() {
            self.index.insert(a.id, b.session.id);
        }
        self.sessions.insert(b.session.id, b);
    }

    pub fn session(&self, id: SessionId) -> Option<&SessionBook> {
        self.sessions.get(&id)
    }

    pub fn session_mut(&mut self, id: SessionId) -> Option<&mut SessionBook> {
        self.sessions.get_mut(&id)
    }

    pub fn find(&self, id: AppointmentId) -> Option<&Appointment> {
        self.index.get(&id).and_then(|s| self.sessions.get(s)).and_then(|b| b.appointment(id))
    }

    pub fn session_of(&self, id: AppointmentId) -> Option<SessionId> {
        self.index.get(&id).copied()
    }

    /// Re-indexes after an operation on a session book (appointments come and go).
    pub fn reindex(&mut self, session: SessionId) {
        self.index.retain(|_, s| *s != session);
        if let Some(b) = self.sessions.get(&session) {
            for a in b.live() {
                self.index.insert(a.id, session);
            }
        }
    }

    pub fn hold(&mut self, slot: SlotId, req: &HoldRequest) -> Result<Appointment, BookError> {
        let b = self.sessions.get_mut(&slot.session_id).ok_or(BookError::NoSuchSlot)?;
        let a = b.hold(slot.segment, req)?;
        self.index.insert(a.id, slot.session_id);
        Ok(a)
    }

    pub fn has_holds(&self) -> bool {
        self.sessions.values().any(|b| b.live().any(|a| a.status == AppointmentStatus::Held))
    }

    pub fn has_waitlists(&self) -> bool {
        self.sessions.values().any(|b| !b.waitlist.is_empty())
    }

    pub fn check_invariants(&self) -> Result<(), String> {
        for b in self.sessions.values() {
            b.check_invariants()?;
            for a in b.live() {
                if self.index.get(&a.id) != Some(&b.session.id) {
                    return Err(format!("appointment {} is not indexed", a.id));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{split_segments, Period};
    use crate::{DepartmentId, DoctorId, Fen};
    use chrono::{NaiveDate, NaiveTime};

    fn session(quota: u32) -> ClinicSession {
        ClinicSession {
            id: SessionId::new(),
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            period: Period::Morning,
            segments: split_segments(
                NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
                30,
                quota,
            ),
            fee: Fen::new(1500),
            release_at: DateTime::from_timestamp(1_000, 0).unwrap(),
            status: SessionStatus::Open,
        }
    }

    fn req(person: &str, now: DateTime<Utc>) -> HoldRequest {
        HoldRequest {
            appointment_id: AppointmentId::new(),
            order_id: OrderId::new(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            person: person.into(),
            patient_name: "张三".into(),
            idempotency_key: None,
            now,
            hold_for: Duration::minutes(15),
        }
    }

    /// Someone joining a line as `person`, at `at`.
    fn waiting(person: &str, at: DateTime<Utc>) -> WaitEntry {
        WaitEntry {
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            person: person.into(),
            patient_name: "x".into(),
            joined_at: at,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(2_000, 0).unwrap()
    }

    /// A book rebuilt from the store after a restart knows who holds a place: the same person
    /// is refused again, and may book once their appointment is cancelled.
    #[test]
    fn a_rebuilt_book_knows_its_persons() {
        let s = session(3);
        let mut first = SessionBook::new(s.clone(), [], vec![]);
        let held = first.hold(0, &req("p1", now())).unwrap();
        let mut b = SessionBook::new(s, [held.clone()], vec![]);
        assert_eq!(b.hold(1, &req("p1", now())).unwrap_err(), BookError::AlreadyInSession);
        b.check_invariants().unwrap();
        b.cancel(held.id, now(), CancelReason::Patient).unwrap();
        assert!(b.hold(1, &req("p1", now())).is_ok(), "the place let go, the person may book again");
        b.check_invariants().unwrap();
    }

    #[test]
    fn holds_until_sold_out_then_frees_on_cancel() {
        let mut b = SessionBook::new(session(2), [], vec![]);
        let a1 = b.hold(0, &req("p1", now())).unwrap();
        let a2 = b.hold(0, &req("p2", now())).unwrap();
        assert_eq!((a1.place, a2.place), (1, 2));
        assert_eq!(b.hold(0, &req("p3", now())), Err(BookError::SoldOut));
        assert_eq!(b.remaining(0), 0);
        assert_eq!(b.remaining(1), 2);
        b.cancel(a1.id, now(), CancelReason::Patient).unwrap();
        assert_eq!(b.hold(0, &req("p3", now())).unwrap().place, 1, "the freed place is reused");
        b.check_invariants().unwrap();
    }

    #[test]
    fn advance_keeps_the_place_through_the_visit_and_no_shows() {
        let mut b = SessionBook::new(session(3), [], vec![]);
        let came = b.hold(0, &req("p1", now())).unwrap();
        let stayed_away = b.hold(0, &req("p2", now())).unwrap();
        let unpaid = b.hold(0, &req("p3", now())).unwrap();
        b.confirm(came.id, now()).unwrap();
        b.confirm(stayed_away.id, now()).unwrap();
        assert_eq!(b.advance(came.id, AppointmentEvent::CheckIn, now()).unwrap().status, AppointmentStatus::CheckedIn);
        assert_eq!(b.not_checked_in(), vec![stayed_away.id], "a hold is not a booking; a checked-in one came");
        assert_eq!(b.advance(came.id, AppointmentEvent::FinishVisit, now()).unwrap().status, AppointmentStatus::Seen);
        let missed = b.advance(stayed_away.id, AppointmentEvent::MarkMissed, now()).unwrap();
        assert_eq!(missed.status, AppointmentStatus::Missed);
        assert_eq!(
            b.advance(stayed_away.id, AppointmentEvent::Excuse, now()).unwrap().status,
            AppointmentStatus::Excused
        );
        assert_eq!(b.remaining(0), 0, "every place stays taken");
        // A refused event changes nothing; an event that would free the place is not for advance.
        assert!(b.advance(came.id, AppointmentEvent::MarkMissed, now()).is_err());
        assert!(b.advance(unpaid.id, AppointmentEvent::Expire, now()).is_err());
        assert_eq!(b.appointment(unpaid.id).unwrap().status, AppointmentStatus::Held);
        assert_eq!(
            b.advance(AppointmentId::new(), AppointmentEvent::CheckIn, now()),
            Err(BookError::NoSuchAppointment)
        );
        b.check_invariants().unwrap();
    }

    #[test]
    fn refuses_before_release_and_after_stop() {
        let mut s = session(2);
        s.release_at = now() + Duration::hours(1);
        let mut b = SessionBook::new(s, [], vec![]);
        assert!(matches!(b.hold(0, &req("p1", now())), Err(BookError::NotReleased { .. })));
        let later = now() + Duration::hours(2);
        let a = b.hold(0, &req("p1", later)).unwrap();
        b.join_waitlist(waiting("w", later), later, 0).unwrap_err();
        let (cancelled, _) = b.stop(later);
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0].id, a.id);
        assert_eq!(cancelled[0].cancel_reason, Some(CancelReason::ClinicStopped));
        assert_eq!(b.hold(0, &req("p2", later)), Err(BookError::SessionStopped));
        b.check_invariants().unwrap();
    }

    #[test]
    fn one_place_per_person_per_session() {
        let mut b = SessionBook::new(session(3), [], vec![]);
        b.hold(0, &req("p1", now())).unwrap();
        assert_eq!(b.hold(1, &req("p1", now())), Err(BookError::AlreadyInSession));
    }

    #[test]
    fn expiry_confirm_and_quota() {
        let mut b = SessionBook::new(session(1), [], vec![]);
        let a = b.hold(0, &req("p1", now())).unwrap();
        assert!(b.due_holds(now()).is_empty());
        assert_eq!(b.due_holds(now() + Duration::minutes(15)), vec![a.id]);
        let c = b.confirm(a.id, now()).unwrap();
        assert!(c.slip_no.as_deref().unwrap().starts_with("GH261201"));
        assert!(b.due_holds(now() + Duration::hours(1)).is_empty(), "a confirmed booking never lapses");
        assert_eq!(
            b.expire(a.id, now()).unwrap_err(),
            BookError::Transition(InvalidTransition {
                from: AppointmentStatus::Confirmed,
                event: AppointmentEvent::Expire
            })
        );
        assert_eq!(b.set_quota(0, 0), Err(BookError::QuotaBelowBooked { booked: 1 }));
        // Times: a booked segment can move, not go; the booking comes back as moved.
        let mut moved_segments = b.session.segments.clone();
        moved_segments[0].start += Duration::minutes(30);
        moved_segments[0].end += Duration::minutes(30);
        let unbooked_only = b.session.segments[..0].to_vec();
        assert_eq!(b.clone().set_segments(unbooked_only), Err(BookError::QuotaBelowBooked { booked: 1 }));
        let moved = b.set_segments(moved_segments.clone()).unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(b.session.segments, moved_segments);
        b.check_invariants().unwrap();
        b.set_quota(0, 3).unwrap();
        assert_eq!(b.remaining(0), 2);
        b.check_invariants().unwrap();
    }

    #[test]
    fn waitlist_gets_freed_places_in_order() {
        let mut b = SessionBook::new(session(1), [], vec![]);
        let a = b.hold(0, &req("p1", now())).unwrap();
        b.hold(1, &req("p2", now())).unwrap();
        for (i, p) in ["w1", "w2"].iter().enumerate() {
            assert_eq!(b.join_waitlist(waiting(p, now()), now(), 0).unwrap(), i + 1);
        }
        b.cancel(a.id, now(), CancelReason::Patient).unwrap();
        let offers =
            b.offer_to_waitlist(now(), 0, Duration::minutes(10), &[], || (AppointmentId::new(), OrderId::new()));
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].person, "w1");
        assert!(offers[0].from_waitlist);
        assert_eq!(b.waitlist.len(), 1);
        b.check_invariants().unwrap();
    }

    #[test]
    fn a_passed_over_entry_keeps_its_place_in_line() {
        let mut b = SessionBook::new(session(1), [], vec![]);
        let a = b.hold(0, &req("p1", now())).unwrap();
        b.hold(1, &req("p2", now())).unwrap();
        let mut ids = Vec::new();
        for p in ["w1", "w2", "w3"] {
            let w = waiting(p, now());
            ids.push(w.patient_id);
            b.join_waitlist(w, now(), 0).unwrap();
        }
        b.cancel(a.id, now(), CancelReason::Patient).unwrap();
        let passed = [ids[0]];
        let candidates: Vec<&str> = b.offer_candidates(now(), 0, &passed).map(|w| w.person.as_str()).collect();
        assert_eq!(candidates, ["w2"]);
        let offers =
            b.offer_to_waitlist(now(), 0, Duration::minutes(10), &passed, || (AppointmentId::new(), OrderId::new()));
        assert_eq!(offers.iter().map(|o| o.person.as_str()).collect::<Vec<_>>(), ["w2"]);
        // w1 is still first, w3 second.
        assert_eq!((b.waitlist_position(ids[0]), b.waitlist_position(ids[2])), (Some(1), Some(2)));
        assert_eq!(b.offer_candidates(now(), 0, &[]).count(), 0, "no place left to offer");
        b.check_invariants().unwrap();
    }

    #[test]
    fn a_free_place_whose_time_is_past_neither_keeps_people_out_of_line_nor_is_offered() {
        // Two segments; the place of segment 0 is freed once segment 0 is over (open from 1).
        let mut b = SessionBook::new(session(1), [], vec![]);
        let early = b.hold(0, &req("p1", now())).unwrap();
        b.hold(1, &req("p2", now())).unwrap();
        b.cancel(early.id, now(), CancelReason::Patient).unwrap();
        let entry = |p: &str| waiting(p, now());
        // With every segment open the free place says "book it"; with segment 0 over, the line.
        assert!(matches!(b.join_waitlist(entry("w1"), now(), 0), Err(BookError::NotSoldOut)));
        assert_eq!(b.join_waitlist(entry("w1"), now(), 1).unwrap(), 1);
        assert_eq!(b.offer_candidates(now(), 1, &[]).count(), 0, "the past place is nobody's");
        let offers =
            b.offer_to_waitlist(now(), 1, Duration::minutes(10), &[], || (AppointmentId::new(), OrderId::new()));
        assert!(offers.is_empty(), "offered a place whose time is past: {offers:?}");
        assert_eq!(b.waitlist.len(), 1, "still in line for a later place");
        b.check_invariants().unwrap();
    }

    #[test]
    fn move_within_is_atomic() {
        let mut b = SessionBook::new(session(1), [], vec![]);
        let a = b.hold(0, &req("p1", now())).unwrap();
        b.confirm(a.id, now()).unwrap();
        let (old, new) = b.move_within(a.id, 1, AppointmentId::new(), now()).unwrap();
        assert_eq!(old.status, AppointmentStatus::Cancelled);
        assert_eq!(old.rescheduled_to, Some(new.id));
        assert_eq!(new.status, AppointmentStatus::Confirmed);
        assert_eq!((b.remaining(0), b.remaining(1)), (1, 0));
        // Into a full segment: refused, the old booking stays.
        b.hold(0, &req("p2", now())).unwrap();
        assert_eq!(b.move_within(new.id, 0, AppointmentId::new(), now()).unwrap_err(), BookError::SoldOut);
        assert!(b.appointment(new.id).is_some());
        b.check_invariants().unwrap();
    }
}

#[cfg(test)]
mod first_free_tests {
    use super::*;

    #[test]
    fn the_lowest_free_place_is_the_first_gap() {
        let set = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
        assert_eq!(first_free(&set(&[])), 1);
        assert_eq!(first_free(&set(&[1, 2, 3])), 4);
        assert_eq!(first_free(&set(&[2, 3])), 1);
        assert_eq!(first_free(&set(&[1, 2, 4, 5])), 3);
        assert_eq!(first_free(&set(&[0, 1, 3])), 2);
        // The same answer as looking each number up, for every set of places 0..=7 (the
        // in-order shortcut and the walk alike).
        for bits in 0u32..256 {
            let taken: BTreeSet<u32> = (0..8).filter(|p| bits & (1 << p) != 0).collect();
            assert_eq!(first_free(&taken), (1..).find(|p| !taken.contains(p)).unwrap(), "{taken:?}");
        }
    }
}
