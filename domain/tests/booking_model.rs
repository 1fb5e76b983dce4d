//! Model-based tests of the booking state machine (`DoctorBook` / `SessionBook`): random
//! sequences of hold, pay, cancel, expire, reschedule, quota change (加号/减号), clinic stop (停诊)
//! and waitlist (候补) operations, run against the real book and, side by side, against a model
//! simple enough to be obviously right. After every step: the book's own invariant holds, every
//! answer (Ok or the exact error) is the one the model predicts, no place is held twice, and
//! "remaining = quota - live" in every segment.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use hospital_domain::appointment::{AppointmentEvent, AppointmentStatus, CancelReason, InvalidTransition};
use hospital_domain::booking::{BookError, DoctorBook, HoldRequest, SessionBook, WaitEntry};
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus, SlotId};
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, Fen, OrderId, PatientId, SessionId};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const PERSONS: usize = 8;
const HOLD_MINUTES: i64 = 15;
const OFFER_MINUTES: i64 = 10;

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// Which appointment an operation is about: the `k`-th live one (mod their number), or, when
/// `any`, the `k`-th of every appointment ever made (so dead ones are tried too).
#[derive(Debug, Clone, Copy)]
struct Target {
    k: usize,
    any: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Hold {
        person: usize,
        session: usize,
        segment: u16,
    },
    Confirm(Target),
    Cancel(Target),
    /// Advance the clock by `minutes`, then lapse every due hold.
    Expire {
        minutes: i64,
    },
    Move {
        target: Target,
        session: usize,
        segment: u16,
    },
    SetQuota {
        session: usize,
        segment: u16,
        quota: u32,
    },
    Stop {
        session: usize,
    },
    /// `smart`: pick among the sessions where joining can succeed (sold out, open).
    JoinWaitlist {
        person: usize,
        session: usize,
        smart: bool,
    },
    /// `smart`: pick among the sessions with someone waiting.
    OfferWaitlist {
        session: usize,
        smart: bool,
    },
}

fn target() -> impl Strategy<Value = Target> {
    (0..64usize, prop::bool::weighted(0.2)).prop_map(|(k, any)| Target { k, any })
}

fn op() -> impl Strategy<Value = Op> {
    // Segment numbers reach 3 now and then, so sessions with fewer segments see unknown slots.
    let segment = || prop_oneof![12 => 0..3u16, 1 => Just(3u16)];
    prop_oneof![
        16 => (0..PERSONS, 0..3usize, segment()).prop_map(|(person, session, segment)| Op::Hold { person, session, segment }),
        6 => target().prop_map(Op::Confirm),
        5 => target().prop_map(Op::Cancel),
        3 => (1..=20i64).prop_map(|minutes| Op::Expire { minutes }),
        6 => (target(), 0..3usize, segment()).prop_map(|(target, session, segment)| Op::Move { target, session, segment }),
        4 => (0..3usize, segment(), 0..=5u32).prop_map(|(session, segment, quota)| Op::SetQuota { session, segment, quota }),
        1 => (0..3usize).prop_map(|session| Op::Stop { session }),
        8 => (0..PERSONS, 0..3usize, prop::bool::weighted(0.7))
            .prop_map(|(person, session, smart)| Op::JoinWaitlist { person, session, smart }),
        5 => (0..3usize, prop::bool::weighted(0.7)).prop_map(|(session, smart)| Op::OfferWaitlist { session, smart }),
    ]
}

/// 2-3 sessions of 2-3 segments, quotas 0-4.
fn layout() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(prop_oneof![4 => 0..=2u32, 1 => 3..=4u32], 2..=3), 2..=3)
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Held,
    Confirmed,
    Cancelled(CancelReason),
    Expired,
}

impl St {
    fn live(self) -> bool {
        matches!(self, St::Held | St::Confirmed)
    }
}

#[derive(Debug, Clone)]
struct MAppt {
    id: AppointmentId,
    session: usize,
    segment: u16,
    place: u32,
    person: usize,
    status: St,
    expires_at: DateTime<Utc>,
    from_waitlist: bool,
    rescheduled_to: Option<AppointmentId>,
    rescheduled_from: Option<AppointmentId>,
}

#[derive(Debug, Clone)]
struct MSession {
    quotas: Vec<u32>,
    stopped: bool,
    waitlist: VecDeque<usize>,
}

#[derive(Debug, Clone)]
struct Model {
    sessions: Vec<MSession>,
    /// Every appointment ever made, oldest first.
    appts: Vec<MAppt>,
    now: DateTime<Utc>,
}

impl Model {
    fn live_in(&self, session: usize, segment: u16) -> impl Iterator<Item = &MAppt> {
        self.appts.iter().filter(move |a| a.status.live() && a.session == session && a.segment == segment)
    }

    fn live_count(&self, session: usize, segment: u16) -> u32 {
        self.live_in(session, segment).count() as u32
    }

    fn remaining(&self, session: usize, segment: u16) -> u32 {
        let s = &self.sessions[session];
        if s.stopped {
            0
        } else {
            s.quotas[segment as usize] - self.live_count(session, segment)
        }
    }

    fn sold_out(&self, session: usize) -> bool {
        (0..self.sessions[session].quotas.len()).all(|g| self.remaining(session, g as u16) == 0)
    }

    /// The lowest place number not taken by a live appointment of the segment.
    fn free_place(&self, session: usize, segment: u16) -> u32 {
        let taken: BTreeSet<u32> = self.live_in(session, segment).map(|a| a.place).collect();
        (1..).find(|p| !taken.contains(p)).unwrap()
    }

    fn person_live_in(&self, session: usize, person: usize) -> bool {
        self.appts.iter().any(|a| a.status.live() && a.session == session && a.person == person)
    }

    fn find(&self, id: AppointmentId) -> Option<usize> {
        self.appts.iter().position(|a| a.id == id)
    }

    /// The appointment a `Target` names, if any exists.
    fn pick(&self, t: Target) -> Option<AppointmentId> {
        let pool: Vec<&MAppt> =
            if t.any { self.appts.iter().collect() } else { self.appts.iter().filter(|a| a.status.live()).collect() };
        (!pool.is_empty()).then(|| pool[t.k % pool.len()].id)
    }

    /// Session number `k` (mod their number), or with `smart` the `k`-th of those where `fit`
    /// holds, if any does.
    fn pick_session(&self, k: usize, smart: bool, fit: impl Fn(&Model, usize) -> bool) -> usize {
        let fitting: Vec<usize> = (0..self.sessions.len()).filter(|s| fit(self, *s)).collect();
        if smart && !fitting.is_empty() {
            fitting[k % fitting.len()]
        } else {
            k % self.sessions.len()
        }
    }

    /// What a hold in (session, segment) for `person` answers: the exact refusal, or the place.
    fn predict_hold(&self, person: usize, session: usize, segment: u16) -> Result<u32, BookError> {
        if segment as usize >= self.sessions[session].quotas.len() {
            return Err(BookError::NoSuchSlot);
        }
        if self.sessions[session].stopped {
            return Err(BookError::SessionStopped);
        }
        if self.remaining(session, segment) == 0 {
            return Err(BookError::SoldOut);
        }
        if self.person_live_in(session, person) {
            return Err(BookError::AlreadyInSession);
        }
        Ok(self.free_place(session, segment))
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test, and the harness that runs both side by side
// ---------------------------------------------------------------------------------------------

struct Person {
    account: AccountId,
    patient: PatientId,
    key: String,
}

struct Harness {
    book: DoctorBook,
    model: Model,
    session_ids: Vec<SessionId>,
    persons: Vec<Person>,
    /// Counters of what the run exercised, for the coverage summary.
    stats: BTreeMap<&'static str, usize>,
    /// Offer freed places to the waitlist after every operation that frees one, as the schedule
    /// actor does (otherwise only the explicit `OfferWaitlist` does).
    auto_offer: bool,
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

impl Harness {
    fn new(layout: &[Vec<u32>], auto_offer: bool) -> Self {
        let doctor = DoctorId::new();
        let department = DepartmentId::new();
        let mut sessions = Vec::new();
        let mut session_ids = Vec::new();
        let mut msessions = Vec::new();
        for (i, quotas) in layout.iter().enumerate() {
            let segments = quotas
                .iter()
                .enumerate()
                .map(|(g, q)| Segment { start: hm(8 + g as u32, 0), end: hm(8 + g as u32, 30), quota: *q })
                .collect();
            let s = ClinicSession {
                id: SessionId::new(),
                doctor_id: doctor,
                department_id: department,
                date: NaiveDate::from_ymd_opt(2026, 12, 1 + i as u32).unwrap(),
                period: Period::Morning,
                segments,
                fee: Fen::new(1500),
                release_at: t0() - Duration::days(1),
                status: SessionStatus::Open,
            };
            session_ids.push(s.id);
            sessions.push(SessionBook::new(s, [], vec![]));
            msessions.push(MSession { quotas: quotas.clone(), stopped: false, waitlist: VecDeque::new() });
        }
        let persons = (0..PERSONS)
            .map(|i| Person { account: AccountId::new(), patient: PatientId::new(), key: format!("person-{i}") })
            .collect();
        Harness {
            book: DoctorBook::new(sessions),
            model: Model { sessions: msessions, appts: Vec::new(), now: t0() },
            session_ids,
            persons,
            stats: BTreeMap::new(),
            auto_offer,
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn person_of(&self, key: &str) -> usize {
        self.persons.iter().position(|p| p.key == key).expect("a known person")
    }

    fn request(&self, person: usize, id: AppointmentId) -> HoldRequest {
        let p = &self.persons[person];
        HoldRequest {
            appointment_id: id,
            order_id: OrderId::new(),
            account_id: p.account,
            patient_id: p.patient,
            person: p.key.clone(),
            patient_name: format!("患者{person}"),
            idempotency_key: None,
            now: self.model.now,
            hold_for: Duration::minutes(HOLD_MINUTES),
        }
    }

    fn entry(&self, person: usize) -> WaitEntry {
        let p = &self.persons[person];
        WaitEntry {
            account_id: p.account,
            patient_id: p.patient,
            person: p.key.clone(),
            patient_name: format!("患者{person}"),
            joined_at: self.model.now,
        }
    }

    fn sb(&mut self, session: usize) -> &mut SessionBook {
        let id = self.session_ids[session];
        self.book.session_mut(id).expect("session present")
    }

    /// Runs one operation on the book and on the model; panics (via `prop_assert!`) where they
    /// disagree.
    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.model.now;
        let n = self.session_ids.len();
        match *op {
            Op::Hold { person, session, segment } => {
                let session = session % n;
                let expect = self.model.predict_hold(person, session, segment);
                let id = AppointmentId::new();
                let req = self.request(person, id);
                let got = self.book.hold(SlotId { session_id: self.session_ids[session], segment }, &req);
                match (&expect, &got) {
                    (Ok(place), Ok(a)) => {
                        self.count("hold ok");
                        prop_assert_eq!(a.id, id);
                        prop_assert_eq!(a.place, *place);
                        prop_assert_eq!(a.status, AppointmentStatus::Held);
                        prop_assert_eq!(a.hold_expires_at, now + Duration::minutes(HOLD_MINUTES));
                        self.model.appts.push(MAppt {
                            id,
                            session,
                            segment,
                            place: *place,
                            person,
                            status: St::Held,
                            expires_at: a.hold_expires_at,
                            from_waitlist: false,
                            rescheduled_to: None,
                            rescheduled_from: None,
                        });
                        // Getting a place ends waiting for one.
                        self.model.sessions[session].waitlist.retain(|w| *w != person);
                    }
                    (Err(e), Err(g)) => {
                        self.count(if *e == BookError::SoldOut { "hold sold out" } else { "hold refused" });
                        prop_assert_eq!(e, g);
                    }
                    _ => prop_assert!(false, "hold: model {:?}, book {:?}", expect, got),
                }
            }
            Op::Confirm(t) => {
                let Some(id) = self.model.pick(t) else { return Ok(()) };
                let i = self.model.find(id).unwrap();
                let m = self.model.appts[i].clone();
                let got = match self.book.session_of(id) {
                    None => Err(BookError::NoSuchAppointment),
                    Some(s) => self.book.session_mut(s).unwrap().confirm(id, now),
                };
                match m.status {
                    St::Held => {
                        self.count("confirm ok");
                        let a = got.map_err(|e| TestCaseError::fail(format!("confirm of a hold refused: {e}")))?;
                        prop_assert_eq!(a.status, AppointmentStatus::Confirmed);
                        prop_assert!(a.slip_no.is_some());
                        prop_assert_eq!(a.confirmed_at, Some(now));
                        self.model.appts[i].status = St::Confirmed;
                    }
                    St::Confirmed => {
                        self.count("confirm twice");
                        prop_assert_eq!(
                            got.unwrap_err(),
                            BookError::Transition(InvalidTransition {
                                from: AppointmentStatus::Confirmed,
                                event: AppointmentEvent::Pay
                            })
                        );
                    }
                    _ => {
                        self.count("confirm dead");
                        prop_assert_eq!(got.unwrap_err(), BookError::NoSuchAppointment);
                    }
                }
            }
            Op::Cancel(t) => {
                let Some(id) = self.model.pick(t) else { return Ok(()) };
                let i = self.model.find(id).unwrap();
                let m = self.model.appts[i].clone();
                let got = match self.book.session_of(id) {
                    None => Err(BookError::NoSuchAppointment),
                    Some(s) => {
                        let r = self.book.session_mut(s).unwrap().cancel(id, now, CancelReason::Patient);
                        self.book.reindex(s);
                        r
                    }
                };
                if m.status.live() {
                    self.count("cancel ok");
                    let a = got.map_err(|e| TestCaseError::fail(format!("cancel of a live booking refused: {e}")))?;
                    prop_assert_eq!(a.status, AppointmentStatus::Cancelled);
                    prop_assert_eq!(a.cancel_reason, Some(CancelReason::Patient));
                    prop_assert_eq!(a.cancelled_at, Some(now));
                    self.model.appts[i].status = St::Cancelled(CancelReason::Patient);
                    self.auto_offer(m.session)?;
                } else {
                    self.count("cancel dead");
                    prop_assert_eq!(got.unwrap_err(), BookError::NoSuchAppointment);
                }
            }
            Op::Expire { minutes } => {
                self.model.now += Duration::minutes(minutes);
                let now = self.model.now;
                for s in 0..n {
                    let mut expect: Vec<&MAppt> = self
                        .model
                        .appts
                        .iter()
                        .filter(|a| a.session == s && a.status == St::Held && a.expires_at <= now)
                        .collect();
                    expect.sort_by_key(|a| a.expires_at);
                    let expect_ids: BTreeSet<AppointmentId> = expect.iter().map(|a| a.id).collect();
                    let expect_len = expect.len();
                    let due = self.sb(s).due_holds(now);
                    prop_assert_eq!(due.iter().copied().collect::<BTreeSet<_>>(), expect_ids, "due holds");
                    prop_assert_eq!(due.len(), expect_len, "a due hold listed twice");
                    // Oldest first.
                    let exp: Vec<DateTime<Utc>> =
                        due.iter().map(|id| self.model.appts[self.model.find(*id).unwrap()].expires_at).collect();
                    prop_assert!(exp.windows(2).all(|w| w[0] <= w[1]), "due holds not oldest first");
                    for id in due {
                        let a = self
                            .sb(s)
                            .expire(id, now)
                            .map_err(|e| TestCaseError::fail(format!("expiring a due hold: {e}")))?;
                        prop_assert_eq!(a.status, AppointmentStatus::Expired);
                        let i = self.model.find(id).unwrap();
                        self.model.appts[i].status = St::Expired;
                        self.count("expired");
                    }
                    let sid = self.session_ids[s];
                    self.book.reindex(sid);
                    if expect_len > 0 {
                        self.auto_offer(s)?;
                    }
                }
            }
            Op::Move { target, session, segment } => {
                let Some(id) = self.model.pick(target) else { return Ok(()) };
                let dst = session % n;
                let i = self.model.find(id).unwrap();
                let m = self.model.appts[i].clone();
                let new_id = AppointmentId::new();
                if !m.status.live() {
                    self.count("move dead");
                    prop_assert!(self.book.session_of(id).is_none());
                    return Ok(());
                }
                let src = m.session;
                prop_assert_eq!(self.book.session_of(id), Some(self.session_ids[src]));
                // What the model expects: the refusal, or the new place.
                let expect: Result<u32, BookError> = if segment as usize >= self.model.sessions[dst].quotas.len() {
                    Err(BookError::NoSuchSlot)
                } else if self.model.sessions[dst].stopped {
                    Err(BookError::SessionStopped)
                } else if self.model.remaining(dst, segment) == 0 {
                    Err(BookError::SoldOut)
                } else if dst != src && self.model.person_live_in(dst, m.person) {
                    Err(BookError::AlreadyInSession)
                } else if dst == src && segment == m.segment {
                    // The old place is freed first, then the lowest free one taken.
                    let taken: BTreeSet<u32> =
                        self.model.live_in(src, segment).filter(|a| a.id != id).map(|a| a.place).collect();
                    Ok((1..).find(|p| !taken.contains(p)).unwrap())
                } else {
                    Ok(self.model.free_place(dst, segment))
                };
                // As the schedule actor does it: within a session atomically; across sessions
                // the new place first, then the old one freed.
                let got = if dst == src {
                    let r = self.sb(src).move_within(id, segment, new_id, now);
                    self.book.reindex(self.session_ids[src]);
                    r
                } else {
                    let current = self.book.find(id).cloned().unwrap();
                    match self.sb(dst).accept_moved(&current, segment, new_id, now) {
                        Err(e) => Err(e),
                        Ok(new) => {
                            let old = self.sb(src).cancel(id, now, CancelReason::Rescheduled);
                            let mut old =
                                old.map_err(|e| TestCaseError::fail(format!("freeing the old place: {e}")))?;
                            old.rescheduled_to = Some(new_id);
                            self.book.reindex(self.session_ids[src]);
                            self.book.reindex(self.session_ids[dst]);
                            Ok((old, new))
                        }
                    }
                };
                match (expect, got) {
                    (Ok(place), Ok((old, new))) => {
                        self.count(if dst == src { "move within" } else { "move across" });
                        prop_assert_eq!(old.id, id);
                        prop_assert_eq!(old.status, AppointmentStatus::Cancelled);
                        prop_assert_eq!(old.cancel_reason, Some(CancelReason::Rescheduled));
                        prop_assert_eq!(old.rescheduled_to, Some(new_id));
                        prop_assert_eq!(new.id, new_id);
                        prop_assert_eq!(new.rescheduled_from, Some(id));
                        prop_assert_eq!(new.place, place);
                        prop_assert_eq!(new.slot, SlotId { session_id: self.session_ids[dst], segment });
                        prop_assert_eq!(new.person.clone(), self.persons[m.person].key.clone());
                        prop_assert_eq!(new.order_id, self.book.find(new_id).unwrap().order_id);
                        let same_status = match m.status {
                            St::Held => AppointmentStatus::Held,
                            _ => AppointmentStatus::Confirmed,
                        };
                        prop_assert_eq!(new.status, same_status, "a move keeps the payment state");
                        prop_assert_eq!(new.slip_no.is_some(), m.status == St::Confirmed);
                        self.model.appts[i].status = St::Cancelled(CancelReason::Rescheduled);
                        self.model.appts[i].rescheduled_to = Some(new_id);
                        self.model.appts.push(MAppt {
                            id: new_id,
                            session: dst,
                            segment,
                            place,
                            person: m.person,
                            status: m.status,
                            expires_at: m.expires_at,
                            from_waitlist: m.from_waitlist,
                            rescheduled_to: None,
                            rescheduled_from: Some(id),
                        });
                        // Getting a place ends waiting for one.
                        self.model.sessions[dst].waitlist.retain(|w| *w != m.person);
                        self.auto_offer(src)?;
                    }
                    (Err(e), Err(g)) => {
                        self.count("move refused");
                        prop_assert_eq!(e, g);
                        prop_assert!(self.book.find(id).is_some(), "a refused move keeps the booking");
                    }
                    (e, g) => prop_assert!(false, "move: model {:?}, book {:?}", e, g.map(|(_, n)| n.place)),
                }
            }
            Op::SetQuota { session, segment, quota } => {
                let session = session % n;
                let expect = if segment as usize >= self.model.sessions[session].quotas.len() {
                    Err(BookError::NoSuchSlot)
                } else {
                    let booked = self.model.live_count(session, segment);
                    if quota < booked {
                        Err(BookError::QuotaBelowBooked { booked })
                    } else {
                        Ok(())
                    }
                };
                let got = self.sb(session).set_quota(segment, quota);
                prop_assert_eq!(&got, &expect);
                if got.is_ok() {
                    self.count("quota set");
                    self.model.sessions[session].quotas[segment as usize] = quota;
                    self.auto_offer(session)?;
                } else {
                    self.count("quota refused");
                }
            }
            Op::Stop { session } => {
                let session = session % n;
                let expect_cancelled: BTreeSet<AppointmentId> =
                    self.model.appts.iter().filter(|a| a.session == session && a.status.live()).map(|a| a.id).collect();
                let expect_waiting: Vec<usize> = self.model.sessions[session].waitlist.iter().copied().collect();
                let (cancelled, waiting) = self.sb(session).stop(now);
                self.book.reindex(self.session_ids[session]);
                self.count("stop");
                prop_assert_eq!(cancelled.iter().map(|a| a.id).collect::<BTreeSet<_>>(), expect_cancelled);
                prop_assert!(cancelled.iter().all(|a| a.status == AppointmentStatus::Cancelled
                    && a.cancel_reason == Some(CancelReason::ClinicStopped)));
                let waiting: Vec<usize> = waiting.iter().map(|w| self.person_of(&w.person)).collect();
                prop_assert_eq!(waiting, expect_waiting);
                for a in self.model.appts.iter_mut().filter(|a| a.session == session && a.status.live()) {
                    a.status = St::Cancelled(CancelReason::ClinicStopped);
                }
                let s = &mut self.model.sessions[session];
                s.stopped = true;
                s.waitlist.clear();
            }
            Op::JoinWaitlist { person, session, smart } => {
                let session = self.model.pick_session(session, smart, |m, s| m.sold_out(s) && !m.sessions[s].stopped);
                let expect = if self.model.sessions[session].stopped {
                    Err(BookError::SessionStopped)
                } else if !self.model.sold_out(session) {
                    Err(BookError::NotSoldOut)
                } else if self.model.sessions[session].waitlist.contains(&person)
                    || self.model.person_live_in(session, person)
                {
                    Err(BookError::AlreadyWaiting)
                } else {
                    Ok(self.model.sessions[session].waitlist.len() + 1)
                };
                let entry = self.entry(person);
                let got = self.sb(session).join_waitlist(entry, now, 0);
                prop_assert_eq!(&got, &expect);
                match &got {
                    Ok(_) => {
                        self.count("waitlist joined");
                        self.model.sessions[session].waitlist.push_back(person);
                    }
                    Err(BookError::NotSoldOut) => self.count("waitlist refused: places free"),
                    Err(_) => self.count("waitlist refused"),
                }
            }
            Op::OfferWaitlist { session, smart } => {
                let session = self.model.pick_session(session, smart, |m, s| !m.sessions[s].waitlist.is_empty());
                self.offer(session)?;
            }
        }
        Ok(())
    }

    /// Offers free places of `session` to its waitlist and checks the offers against the model's.
    /// In the actor's discipline, freed places go to the waitlist at once.
    fn auto_offer(&mut self, session: usize) -> Result<(), TestCaseError> {
        if self.auto_offer {
            self.offer(session)?;
        }
        Ok(())
    }

    fn offer(&mut self, session: usize) -> Result<(), TestCaseError> {
        let now = self.model.now;
        // The model's offers: first in line first, each into the first segment with room;
        // someone who already has a place here is skipped (and leaves the line).
        let mut expect: Vec<(usize, u16, u32)> = Vec::new();
        let mut scratch = self.model.clone();
        if !scratch.sessions[session].stopped {
            let nseg = scratch.sessions[session].quotas.len() as u16;
            while let Some(seg) = (0..nseg).find(|g| scratch.remaining(session, *g) > 0) {
                let Some(p) = scratch.sessions[session].waitlist.pop_front() else { break };
                if scratch.person_live_in(session, p) {
                    continue;
                }
                let place = scratch.free_place(session, seg);
                expect.push((p, seg, place));
                scratch.appts.push(MAppt {
                    id: AppointmentId::new(),
                    session,
                    segment: seg,
                    place,
                    person: p,
                    status: St::Held,
                    expires_at: now + Duration::minutes(OFFER_MINUTES),
                    from_waitlist: true,
                    rescheduled_to: None,
                    rescheduled_from: None,
                });
            }
        }
        let offers = self.sb(session).offer_to_waitlist(now, 0, Duration::minutes(OFFER_MINUTES), &[], || {
            (AppointmentId::new(), OrderId::new())
        });
        self.book.reindex(self.session_ids[session]);
        let got: Vec<(usize, u16, u32)> =
            offers.iter().map(|a| (self.person_of(&a.person), a.slot.segment, a.place)).collect();
        prop_assert_eq!(&got, &expect, "waitlist offers");
        for a in &offers {
            self.count("waitlist offer");
            prop_assert!(a.from_waitlist);
            prop_assert_eq!(a.status, AppointmentStatus::Held);
            prop_assert_eq!(a.hold_expires_at, now + Duration::minutes(OFFER_MINUTES));
            prop_assert!(self.book.find(a.id).is_some_and(|b| b.from_waitlist), "the live copy is marked too");
            self.model.appts.push(MAppt {
                id: a.id,
                session,
                segment: a.slot.segment,
                place: a.place,
                person: self.person_of(&a.person),
                status: St::Held,
                expires_at: a.hold_expires_at,
                from_waitlist: true,
                rescheduled_to: None,
                rescheduled_from: None,
            });
        }
        self.model.sessions[session].waitlist = scratch.sessions[session].waitlist.clone();
        Ok(())
    }

    /// Everything the book shows agrees with the model, and the counts add up.
    fn check(&self) -> Result<(), TestCaseError> {
        self.book.check_invariants().map_err(TestCaseError::fail)?;
        for (s, ms) in self.model.sessions.iter().enumerate() {
            let sid = self.session_ids[s];
            let b = self.book.session(sid).expect("present");
            prop_assert_eq!(b.session.status == SessionStatus::Stopped, ms.stopped);
            let quotas: Vec<u32> = b.session.segments.iter().map(|g| g.quota).collect();
            prop_assert_eq!(&quotas, &ms.quotas);
            // The gate a node refuses from says exactly what the book says, for every segment
            // (and one past the end), before and after the release time.
            let gate = b.gate();
            for g in 0..=ms.quotas.len() as u16 {
                for at in [self.model.now, b.session.release_at - Duration::seconds(1), b.session.release_at] {
                    prop_assert_eq!(gate.check(g, at), b.bookable(g, at), "gate of {}.{} at {}", s, g, at);
                }
            }
            for g in 0..ms.quotas.len() as u16 {
                let live = self.model.live_count(s, g);
                prop_assert!(live <= ms.quotas[g as usize], "more live bookings than places");
                let expect = if ms.stopped { 0 } else { ms.quotas[g as usize] - live };
                prop_assert_eq!(b.remaining(g as usize), expect, "remaining of {}.{}", s, g);
                prop_assert_eq!(self.model.remaining(s, g), expect);
            }
            prop_assert_eq!(b.sold_out(), self.model.sold_out(s));
            // The live bookings: the same ids, places, people and states as the model's.
            let got: BTreeMap<AppointmentId, (u16, u32, String, AppointmentStatus, bool)> = b
                .live()
                .map(|a| (a.id, (a.slot.segment, a.place, a.person.clone(), a.status, a.from_waitlist)))
                .collect();
            let expect: BTreeMap<AppointmentId, (u16, u32, String, AppointmentStatus, bool)> = self
                .model
                .appts
                .iter()
                .filter(|a| a.session == s && a.status.live())
                .map(|a| {
                    let st = if a.status == St::Held { AppointmentStatus::Held } else { AppointmentStatus::Confirmed };
                    (a.id, (a.segment, a.place, self.persons[a.person].key.clone(), st, a.from_waitlist))
                })
                .collect();
            prop_assert_eq!(&got, &expect, "live bookings of session {}", s);
            // No place twice, no person twice.
            let places: BTreeSet<(u16, u32)> = got.values().map(|v| (v.0, v.1)).collect();
            prop_assert_eq!(places.len(), got.len(), "a place is double booked");
            let people: BTreeSet<&String> = got.values().map(|v| &v.2).collect();
            prop_assert_eq!(people.len(), got.len(), "a person holds two places in one session");
            for a in b.live() {
                let m = &self.model.appts[self.model.find(a.id).unwrap()];
                prop_assert_eq!(a.hold_expires_at, m.expires_at);
                prop_assert_eq!(a.rescheduled_from, m.rescheduled_from);
                prop_assert_eq!(a.slot.session_id, sid);
            }
            // The waitlist, in order; nobody waits for a place they already have.
            let waiting: Vec<usize> = b.waitlist.iter().map(|w| self.person_of(&w.person)).collect();
            prop_assert_eq!(&waiting, &ms.waitlist.iter().copied().collect::<Vec<_>>(), "waitlist of session {}", s);
            for p in &waiting {
                prop_assert!(!self.model.person_live_in(s, *p), "person {} both waits and has a place", p);
            }
            if self.auto_offer && !waiting.is_empty() {
                prop_assert!(b.sold_out(), "people wait in session {} while places are free", s);
            }
        }
        // Every appointment is findable exactly while it is live, in the right session.
        for a in &self.model.appts {
            let found = self.book.find(a.id);
            prop_assert_eq!(found.is_some(), a.status.live(), "find({}) while {:?}", a.id, a.status);
            if a.status.live() {
                prop_assert_eq!(self.book.session_of(a.id), Some(self.session_ids[a.session]));
            }
            if let St::Cancelled(CancelReason::Rescheduled) = a.status {
                prop_assert!(a.rescheduled_to.is_some());
            }
        }
        Ok(())
    }
}

fn run(layout: &[Vec<u32>], auto_offer: bool, ops: &[Op]) -> Result<BTreeMap<&'static str, usize>, TestCaseError> {
    let mut h = Harness::new(layout, auto_offer);
    h.check()?;
    for (i, op) in ops.iter().enumerate() {
        h.step(op).map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
        h.check().map_err(|e| TestCaseError::fail(format!("after step {i} {op:?}: {e}")))?;
    }
    Ok(h.stats)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn booking_book_agrees_with_the_model(
        layout in layout(),
        auto_offer in any::<bool>(),
        ops in prop::collection::vec(op(), 1..=60),
    ) {
        run(&layout, auto_offer, &ops)?;
    }
}

/// The generator reaches the interesting states: sold out, waitlist offers, moves both ways,
/// expiry, stops. (Runs a fixed number of generated cases and counts what they exercised.)
#[test]
fn generated_sequences_cover_every_kind_of_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = (layout(), any::<bool>(), prop::collection::vec(op(), 1..=60));
    let mut total: BTreeMap<&'static str, usize> = BTreeMap::new();
    for _ in 0..300 {
        let (layout, auto_offer, ops) = strategy.new_tree(&mut runner).unwrap().current();
        for (k, v) in run(&layout, auto_offer, &ops).unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    eprintln!("outcomes over 300 sequences: {total:?}");
    for k in [
        "hold ok",
        "hold sold out",
        "hold refused",
        "confirm ok",
        "confirm twice",
        "confirm dead",
        "cancel ok",
        "cancel dead",
        "expired",
        "move within",
        "move across",
        "move refused",
        "quota set",
        "quota refused",
        "stop",
        "waitlist joined",
        "waitlist refused",
        "waitlist refused: places free",
        "waitlist offer",
    ] {
        assert!(total.get(k).copied().unwrap_or(0) > 0, "no sequence exercised {k:?}: {total:?}");
    }
}
