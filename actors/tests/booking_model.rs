//! Model-based tests of the REAL schedule actor on the real embedded store: random sequences of
//! hold, pay, cancel, expiry, reschedule, quota change (加号/减号), clinic stop (停诊) and waitlist
//! operations, each answer checked against a simple model; after every step the actor's schedule
//! (places left, waitlist lengths) and live bookings equal the model's; at the end the store holds
//! exactly the model's appointments (every status), waitlists and sessions, and an actor restarted
//! from the store shows the same schedule.
//!
//! Time: holds last 10 minutes, so nothing lapses on its own during a case. The `Lapse` step makes
//! time pass the way a crash-and-restart sees it: every unpaid hold's expiry is moved into the
//! past in the store, the actor is made to panic, and the restarted actor (which loads the store
//! and runs its expiry at once) must lapse them all and offer the places to the waitlist. One
//! separate test waits for the real 1 s expiry tick with a 300 ms hold.

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, Booker, BookingError, ScheduleMsg};
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus, CancelReason, InvalidTransition};
use hospital_domain::booking::{BookError, WaitEntry};
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, Fen, PatientId, SessionId};
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, ScheduleStore, Stores};
use proptest::prelude::*;
use ractor::rpc::CallResult;
use ractor::RpcReplyPort;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tempfile::TempDir;

const PERSONS: usize = 7;

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Target {
    k: usize,
    any: bool,
}

/// Who asks for a cancel or a move: the booking's own account, staff (no account), or a
/// stranger (whose request must look like "no such appointment").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Owner,
    Staff,
    Stranger,
}

#[derive(Debug, Clone)]
enum Op {
    Hold {
        person: usize,
        session: usize,
        segment: u16,
    },
    /// Holds for one person after another until the session is sold out.
    Fill {
        session: usize,
    },
    /// Payment arrived (also for lapsed holds: "paid too late").
    Confirm(Target),
    Cancel(Target, Who),
    /// Every unpaid hold lapses (see the module comment); the actor restarts from the store.
    Lapse,
    Move {
        target: Target,
        session: usize,
        segment: u16,
        who: Who,
        other_doctor: bool,
    },
    SetQuota {
        session: usize,
        segment: u16,
        quota: u32,
    },
    Stop {
        session: usize,
    },
    JoinWaitlist {
        person: usize,
        session: usize,
        smart: bool,
    },
    LeaveWaitlist {
        person: usize,
        session: usize,
    },
}

/// What the test compares of a stored appointment: session index, segment, place, person index,
/// status, cancel reason, from the waitlist.
type Stored = (usize, u16, u32, usize, AppointmentStatus, Option<CancelReason>, bool);

fn target() -> impl Strategy<Value = Target> {
    (0..64usize, prop::bool::weighted(0.25)).prop_map(|(k, any)| Target { k, any })
}

fn op() -> impl Strategy<Value = Op> {
    let segment = || prop_oneof![12 => 0..3u16, 1 => Just(3u16)];
    let who = prop_oneof![6 => Just(Who::Owner), 2 => Just(Who::Staff), 1 => Just(Who::Stranger)];
    let mover = prop_oneof![8 => Just(Who::Owner), 1 => Just(Who::Stranger)];
    prop_oneof![
        14 => (0..PERSONS, 0..3usize, segment()).prop_map(|(person, session, segment)| Op::Hold { person, session, segment }),
        2 => (0..3usize).prop_map(|session| Op::Fill { session }),
        5 => target().prop_map(Op::Confirm),
        5 => (target(), who).prop_map(|(t, w)| Op::Cancel(t, w)),
        2 => Just(Op::Lapse),
        5 => (target(), 0..3usize, segment(), mover, prop::bool::weighted(0.05)).prop_map(
            |(target, session, segment, who, other_doctor)| Op::Move { target, session, segment, who, other_doctor }
        ),
        3 => (0..3usize, segment(), 0..=5u32).prop_map(|(session, segment, quota)| Op::SetQuota { session, segment, quota }),
        1 => (0..3usize).prop_map(|session| Op::Stop { session }),
        6 => (0..PERSONS, 0..3usize, prop::bool::weighted(0.7))
            .prop_map(|(person, session, smart)| Op::JoinWaitlist { person, session, smart }),
        1 => (0..PERSONS, 0..3usize).prop_map(|(person, session)| Op::LeaveWaitlist { person, session }),
    ]
}

fn layout() -> impl Strategy<Value = Vec<Vec<u32>>> {
    prop::collection::vec(prop::collection::vec(prop_oneof![4 => 0..=2u32, 1 => 3..=4u32], 2..=3), 2..=3)
}

// ---------------------------------------------------------------------------------------------
// The model (the same one as the domain's model test, plus the actor's habit of offering freed
// places to the waitlist at once)
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
    fn status(self) -> AppointmentStatus {
        match self {
            St::Held => AppointmentStatus::Held,
            St::Confirmed => AppointmentStatus::Confirmed,
            St::Cancelled(_) => AppointmentStatus::Cancelled,
            St::Expired => AppointmentStatus::Expired,
        }
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
    from_waitlist: bool,
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
    appts: Vec<MAppt>,
}

impl Model {
    fn live_in(&self, session: usize, segment: u16) -> impl Iterator<Item = &MAppt> {
        self.appts.iter().filter(move |a| a.status.live() && a.session == session && a.segment == segment)
    }
    fn remaining(&self, session: usize, segment: u16) -> u32 {
        let s = &self.sessions[session];
        if s.stopped {
            0
        } else {
            s.quotas[segment as usize] - self.live_in(session, segment).count() as u32
        }
    }
    fn remaining_all(&self, session: usize) -> Vec<u32> {
        (0..self.sessions[session].quotas.len() as u16).map(|g| self.remaining(session, g)).collect()
    }
    fn sold_out(&self, session: usize) -> bool {
        self.remaining_all(session).iter().all(|r| *r == 0)
    }
    fn free_place(&self, session: usize, segment: u16) -> u32 {
        let taken: BTreeSet<u32> = self.live_in(session, segment).map(|a| a.place).collect();
        (1..).find(|p| !taken.contains(p)).unwrap()
    }
    fn person_live_in(&self, session: usize, person: usize) -> bool {
        self.appts.iter().any(|a| a.status.live() && a.session == session && a.person == person)
    }
    fn find(&self, id: AppointmentId) -> usize {
        self.appts.iter().position(|a| a.id == id).expect("a known appointment")
    }
    fn pick(&self, t: Target) -> Option<AppointmentId> {
        let pool: Vec<&MAppt> =
            if t.any { self.appts.iter().collect() } else { self.appts.iter().filter(|a| a.status.live()).collect() };
        (!pool.is_empty()).then(|| pool[t.k % pool.len()].id)
    }
    fn pick_session(&self, k: usize, smart: bool, fit: impl Fn(&Model, usize) -> bool) -> usize {
        let fitting: Vec<usize> = (0..self.sessions.len()).filter(|s| fit(self, *s)).collect();
        if smart && !fitting.is_empty() {
            fitting[k % fitting.len()]
        } else {
            k % self.sessions.len()
        }
    }
    /// The refusal a new place in (session, segment) for `person` meets, or its place number.
    fn predict_place(&self, person: usize, session: usize, segment: u16) -> Result<u32, BookError> {
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
    /// Offers free places of `session` to its waitlist on a copy of the model: the expected
    /// offers (person, segment, place), and the waitlist left.
    fn predict_offers(&self, session: usize) -> (BTreeSet<(usize, u16, u32)>, VecDeque<usize>) {
        let mut m = self.clone();
        let mut offers = BTreeSet::new();
        if !m.sessions[session].stopped {
            let nseg = m.sessions[session].quotas.len() as u16;
            while let Some(seg) = (0..nseg).find(|g| m.remaining(session, *g) > 0) {
                let Some(p) = m.sessions[session].waitlist.pop_front() else { break };
                if m.person_live_in(session, p) {
                    continue;
                }
                let place = m.free_place(session, seg);
                offers.insert((p, seg, place));
                m.appts.push(MAppt {
                    id: AppointmentId::new(),
                    session,
                    segment: seg,
                    place,
                    person: p,
                    status: St::Held,
                    from_waitlist: true,
                });
            }
        }
        (offers, m.sessions[session].waitlist.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// The harness: a fresh store and actor system per case
// ---------------------------------------------------------------------------------------------

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

fn today() -> NaiveDate {
    HospitalZone::default().local_date(Utc::now())
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

struct Person {
    account: AccountId,
    patient: PatientId,
    key: String,
}

/// What a step's answer is compared by: BookingError has no `PartialEq`, its `Debug` is exact.
fn show<T>(r: &Result<T, BookingError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => format!("Err({e:?})"),
    }
}

struct Harness {
    _dir: TempDir,
    store: EmbeddedStore,
    system: ActorSystem,
    doctor: DoctorId,
    session_ids: Vec<SessionId>,
    persons: Vec<Person>,
    model: Model,
    stats: BTreeMap<&'static str, usize>,
    restarts: u64,
}

fn config() -> ActorConfig {
    ActorConfig {
        hold_ttl: Duration::from_secs(600),
        waitlist_hold_ttl: Duration::from_secs(600),
        // Lapse steps restart the actor on purpose, many times a minute.
        max_restarts: 100_000,
        restart_window: Duration::from_secs(1),
        ..ActorConfig::default()
    }
}

async fn start(config: ActorConfig) -> (TempDir, EmbeddedStore, ActorSystem) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let system = ActorSystem::start(ActorDeps::new(stores, config)).await.unwrap();
    (dir, store, system)
}

fn sessions_for(doctor: DoctorId, layout: &[Vec<u32>]) -> Vec<ClinicSession> {
    let department = DepartmentId::new();
    layout
        .iter()
        .enumerate()
        .map(|(i, quotas)| ClinicSession {
            id: SessionId::new(),
            doctor_id: doctor,
            department_id: department,
            // From tomorrow: far from the cancellation cutoff.
            date: today() + Days::days(1 + i as i64),
            period: Period::Morning,
            segments: quotas
                .iter()
                .enumerate()
                .map(|(g, q)| Segment { start: hm(8 + g as u32, 0), end: hm(8 + g as u32, 30), quota: *q })
                .collect(),
            fee: Fen::new(1500),
            release_at: Utc::now() - Days::hours(1),
            status: SessionStatus::Open,
        })
        .collect()
}

impl Harness {
    async fn new(layout: &[Vec<u32>]) -> Self {
        let (dir, store, system) = start(config()).await;
        let doctor = DoctorId::new();
        let sessions = sessions_for(doctor, layout);
        store.put_sessions(&sessions).await.unwrap();
        let persons = (0..PERSONS)
            .map(|i| Person { account: AccountId::new(), patient: PatientId::new(), key: format!("person-{i}") })
            .collect();
        Harness {
            _dir: dir,
            store,
            system,
            doctor,
            session_ids: sessions.iter().map(|s| s.id).collect(),
            persons,
            model: Model {
                sessions: layout
                    .iter()
                    .map(|q| MSession { quotas: q.clone(), stopped: false, waitlist: VecDeque::new() })
                    .collect(),
                appts: vec![],
            },
            stats: BTreeMap::new(),
            restarts: 0,
        }
    }

    fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    fn person_of(&self, key: &str) -> usize {
        self.persons.iter().position(|p| p.key == key).expect("a known person")
    }

    /// Sends a message to the doctor's schedule actor and waits for the answer.
    async fn call<T: Send + 'static>(&self, build: impl FnOnce(RpcReplyPort<T>) -> ScheduleMsg) -> T {
        let actor = self.system.schedule(self.doctor).await.expect("the schedule actor runs");
        match actor.call(build, Some(Duration::from_secs(10))).await {
            Ok(CallResult::Success(r)) => r,
            Ok(CallResult::Timeout) => panic!("the schedule actor did not answer"),
            _ => panic!("the schedule actor stopped"),
        }
    }

    async fn live_of(&self, session: usize) -> Vec<Appointment> {
        self.system.session_appointments(self.doctor, self.session_ids[session]).await.unwrap()
    }

    /// Offers the model expects after places were freed in `session`; the actor's offers are
    /// read back (their ids are new) and must be exactly those.
    ///
    /// Some may come a tick later (the actor's 1 s expiry pass): one pass freeing places in two
    /// sessions where the same person waits offers the first and passes the person over in the
    /// second, their turn being held by that first offer until it is durable (`screen_waitlist`:
    /// a second check would read a history without the first offer). So a missing offer is
    /// waited for, a few ticks at most; an unexpected one fails at once.
    async fn settle_offers(&mut self, session: usize) -> Result<(), TestCaseError> {
        let (expect, left) = self.model.predict_offers(session);
        let known: BTreeSet<AppointmentId> = self.model.appts.iter().map(|a| a.id).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let (fresh, got) = loop {
            let fresh: Vec<Appointment> =
                self.live_of(session).await.into_iter().filter(|a| !known.contains(&a.id)).collect();
            let got: BTreeSet<(usize, u16, u32)> =
                fresh.iter().map(|a| (self.person_of(&a.person), a.slot.segment, a.place)).collect();
            if got == expect || !got.is_subset(&expect) || tokio::time::Instant::now() >= deadline {
                break (fresh, got);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        prop_assert_eq!(&got, &expect, "waitlist offers in session {}", session);
        prop_assert_eq!(got.len(), fresh.len());
        for a in fresh {
            prop_assert!(a.from_waitlist && a.status == AppointmentStatus::Held, "an offer is a marked hold: {:?}", a);
            self.count("waitlist offer");
            self.model.appts.push(MAppt {
                id: a.id,
                session,
                segment: a.slot.segment,
                place: a.place,
                person: self.person_of(&a.person),
                status: St::Held,
                from_waitlist: true,
            });
        }
        self.model.sessions[session].waitlist = left;
        Ok(())
    }

    async fn wait_for_restarts(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.system.stats().await.unwrap().schedules.restarts >= n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the schedule actor was not restarted");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Makes the actor panic and waits for its successor, which loads everything from the store.
    async fn restart(&mut self) {
        self.system.inject_schedule_fault(self.doctor).await.unwrap();
        self.restarts += 1;
        self.wait_for_restarts(self.restarts).await;
    }

    async fn hold(&mut self, person: usize, session: usize, segment: u16) -> Result<(), TestCaseError> {
        let expect = self.model.predict_place(person, session, segment);
        let p = &self.persons[person];
        let booker = Booker {
            account_id: p.account,
            patient_id: p.patient,
            person: p.key.clone(),
            patient_name: format!("患者{person}"),
            idempotency_key: None,
            turn: Default::default(),
        };
        let slot = SlotId { session_id: self.session_ids[session], segment };
        let got: Result<(Appointment, Order), BookingError> =
            self.call(|reply| ScheduleMsg::Hold { slot, booker, reply }).await;
        prop_assert_eq!(show(&got), show(&expect.clone().map_err(BookingError::Book)), "hold");
        if let (Ok(place), Ok((a, o))) = (expect, got) {
            self.count("hold ok");
            prop_assert_eq!(a.place, place);
            prop_assert_eq!(a.status, AppointmentStatus::Held);
            prop_assert_eq!((o.id, o.appointment_id, o.amount), (a.order_id, Some(a.id), Fen::new(1500)));
            prop_assert!(a.hold_expires_at > Utc::now() + Days::minutes(9));
            self.model.appts.push(MAppt {
                id: a.id,
                session,
                segment,
                place,
                person,
                status: St::Held,
                from_waitlist: false,
            });
            self.model.sessions[session].waitlist.retain(|w| *w != person);
        } else {
            self.count("hold refused");
        }
        Ok(())
    }

    async fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.session_ids.len();
        match *op {
            Op::Hold { person, session, segment } => self.hold(person, session % n, segment).await?,
            Op::Fill { session } => {
                // Everyone, in turn, takes the first place free until the session is full.
                let session = session % n;
                for person in 0..PERSONS {
                    let Some(segment) = (0..self.model.sessions[session].quotas.len() as u16)
                        .find(|g| self.model.remaining(session, *g) > 0)
                    else {
                        break;
                    };
                    if !self.model.person_live_in(session, person) {
                        self.hold(person, session, segment).await?;
                    }
                }
                self.count("fill");
            }
            Op::Confirm(t) => {
                let Some(id) = self.model.pick(t) else { return Ok(()) };
                let i = self.model.find(id);
                let m = self.model.appts[i].clone();
                let got = self.system.confirm(self.doctor, id).await;
                match m.status {
                    St::Held => {
                        self.count("confirm ok");
                        prop_assert_eq!(show(&got), "Ok");
                        let a = got.unwrap();
                        prop_assert_eq!(a.status, AppointmentStatus::Confirmed);
                        prop_assert!(a.slip_no.is_some());
                        prop_assert_eq!(a.place, m.place);
                        self.model.appts[i].status = St::Confirmed;
                    }
                    St::Confirmed => {
                        self.count("confirm twice");
                        let e = BookError::Transition(InvalidTransition {
                            from: AppointmentStatus::Confirmed,
                            event: AppointmentEvent::Pay,
                        });
                        prop_assert_eq!(show(&got), show::<()>(&Err(BookingError::Book(e))));
                    }
                    St::Expired => {
                        // Paid after the hold lapsed: confirmed if a place is still free in the
                        // same slot (a new place, the same appointment id).
                        let expect = self.model.predict_place(m.person, m.session, m.segment);
                        prop_assert_eq!(show(&got), show(&expect.clone().map_err(BookingError::Book)), "paid late");
                        if let (Ok(place), Ok(a)) = (expect, got) {
                            self.count("paid late: confirmed");
                            prop_assert_eq!((a.id, a.status, a.place), (id, AppointmentStatus::Confirmed, place));
                            let mm = &mut self.model.appts[i];
                            mm.status = St::Confirmed;
                            mm.place = place;
                            mm.from_waitlist = false;
                            self.model.sessions[m.session].waitlist.retain(|w| *w != m.person);
                        } else {
                            self.count("paid late: refused");
                        }
                    }
                    St::Cancelled(_) => {
                        self.count("confirm cancelled");
                        prop_assert_eq!(show(&got), show::<()>(&Err(BookingError::Book(BookError::NoSuchAppointment))));
                    }
                }
            }
            Op::Cancel(t, who) => {
                let Some(id) = self.model.pick(t) else { return Ok(()) };
                let i = self.model.find(id);
                let m = self.model.appts[i].clone();
                let account = match who {
                    Who::Owner => Some(self.persons[m.person].account),
                    Who::Staff => None,
                    Who::Stranger => Some(AccountId::new()),
                };
                let got = self.system.cancel(self.doctor, id, account).await;
                if m.status.live() && who != Who::Stranger {
                    self.count("cancel ok");
                    prop_assert_eq!(show(&got), "Ok");
                    let a = got.unwrap();
                    prop_assert_eq!(
                        (a.status, a.cancel_reason),
                        (AppointmentStatus::Cancelled, Some(CancelReason::Patient))
                    );
                    self.model.appts[i].status = St::Cancelled(CancelReason::Patient);
                    self.settle_offers(m.session).await?;
                } else {
                    self.count("cancel refused");
                    prop_assert_eq!(show(&got), show::<()>(&Err(BookingError::NoSuchAppointment)));
                }
            }
            Op::Lapse => {
                let held: Vec<AppointmentId> =
                    self.model.appts.iter().filter(|a| a.status == St::Held).map(|a| a.id).collect();
                let mut w = BookingWrite::default();
                for id in &held {
                    let mut a = self.store.appointment(*id).await.unwrap().expect("a hold is stored");
                    prop_assert_eq!(a.status, AppointmentStatus::Held);
                    a.hold_expires_at = Utc::now() - Days::seconds(1);
                    w.appointments.push(a);
                }
                if !w.is_empty() {
                    self.store.apply_booking(w).await.unwrap();
                }
                self.restart().await;
                // The new actor lapses them at its first expiry pass (at once on start).
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                loop {
                    let mut live = BTreeSet::new();
                    for s in 0..n {
                        live.extend(self.live_of(s).await.into_iter().map(|a| a.id));
                    }
                    if held.iter().all(|id| !live.contains(id)) {
                        break;
                    }
                    prop_assert!(tokio::time::Instant::now() < deadline, "lapsed holds were not expired");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                // The expiry pass is the actor's own write (nobody waits for it): wait until it is
                // durable too, so what follows sees it in the store.
                for id in &held {
                    loop {
                        let a = self.store.appointment(*id).await.unwrap().expect("stored");
                        if a.status == AppointmentStatus::Expired {
                            break;
                        }
                        prop_assert!(tokio::time::Instant::now() < deadline, "the lapse of {} was not saved", id);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                let mut touched = BTreeSet::new();
                for id in &held {
                    let i = self.model.find(*id);
                    self.model.appts[i].status = St::Expired;
                    touched.insert(self.model.appts[i].session);
                    self.count("expired");
                }
                for s in touched {
                    self.settle_offers(s).await?;
                }
                self.count("lapse (restart)");
            }
            Op::Move { target, session, segment, who, other_doctor } => {
                let Some(id) = self.model.pick(target) else { return Ok(()) };
                let i = self.model.find(id);
                let m = self.model.appts[i].clone();
                let dst = session % n;
                let account = if who == Who::Owner { self.persons[m.person].account } else { AccountId::new() };
                let slot =
                    SlotId { session_id: if other_doctor { SessionId::new() } else { self.session_ids[dst] }, segment };
                let expect: Result<u32, BookingError> = if !m.status.live() || who == Who::Stranger {
                    Err(BookingError::NoSuchAppointment)
                } else if other_doctor {
                    Err(BookingError::OtherDoctor)
                } else if dst == m.session {
                    // Within a session: only the segment's room counts; the old place is freed
                    // before the new one is taken.
                    if segment as usize >= self.model.sessions[dst].quotas.len() {
                        Err(BookingError::Book(BookError::NoSuchSlot))
                    } else if self.model.remaining(dst, segment) == 0 {
                        Err(BookingError::Book(BookError::SoldOut))
                    } else {
                        let taken: BTreeSet<u32> =
                            self.model.live_in(dst, segment).filter(|a| a.id != id).map(|a| a.place).collect();
                        Ok((1..).find(|p| !taken.contains(p)).unwrap())
                    }
                } else {
                    self.model.predict_place(m.person, dst, segment).map_err(BookingError::Book)
                };
                let got: Result<Appointment, BookingError> =
                    self.call(|reply| ScheduleMsg::Move { appointment: id, account, slot, reply }).await;
                prop_assert_eq!(show(&got), show(&expect), "move");
                if let (Ok(place), Ok(new)) = (expect, got) {
                    self.count(if dst == m.session { "move within" } else { "move across" });
                    prop_assert_eq!((new.place, new.slot.segment, new.rescheduled_from), (place, segment, Some(id)));
                    prop_assert_eq!(new.status, m.status.status(), "a move keeps the payment state");
                    self.model.appts[i].status = St::Cancelled(CancelReason::Rescheduled);
                    self.model.appts.push(MAppt {
                        id: new.id,
                        session: dst,
                        segment,
                        place,
                        person: m.person,
                        status: m.status,
                        from_waitlist: m.from_waitlist,
                    });
                    self.model.sessions[dst].waitlist.retain(|w| *w != m.person);
                    self.settle_offers(m.session).await?;
                } else {
                    self.count("move refused");
                }
            }
            Op::SetQuota { session, segment, quota } => {
                let session = session % n;
                let expect: Result<(), BookError> = if segment as usize >= self.model.sessions[session].quotas.len() {
                    Err(BookError::NoSuchSlot)
                } else {
                    let booked = self.model.live_in(session, segment).count() as u32;
                    if quota < booked {
                        Err(BookError::QuotaBelowBooked { booked })
                    } else {
                        Ok(())
                    }
                };
                let got = self.system.set_quota(self.doctor, self.session_ids[session], segment, quota).await;
                prop_assert_eq!(show(&got), show(&expect.clone().map_err(BookingError::Book)), "set quota");
                if let Ok(s) = got {
                    self.count("quota set");
                    prop_assert_eq!(s.segments[segment as usize].quota, quota);
                    self.model.sessions[session].quotas[segment as usize] = quota;
                    self.settle_offers(session).await?;
                } else {
                    self.count("quota refused");
                }
            }
            Op::Stop { session } => {
                let session = session % n;
                let live: Vec<MAppt> =
                    self.model.appts.iter().filter(|a| a.session == session && a.status.live()).cloned().collect();
                let waiting = self.model.sessions[session].waitlist.len();
                let report = self.system.stop_session(self.doctor, self.session_ids[session]).await;
                prop_assert_eq!(show(&report), "Ok");
                let report = report.unwrap();
                self.count("stop");
                let got: BTreeSet<AppointmentId> = report.cancelled.iter().map(|a| a.id).collect();
                prop_assert_eq!(got, live.iter().map(|a| a.id).collect::<BTreeSet<_>>());
                prop_assert_eq!(report.refunds, live.iter().filter(|a| a.status == St::Confirmed).count());
                prop_assert_eq!(report.waitlist_cleared, waiting);
                for a in &live {
                    let i = self.model.find(a.id);
                    self.model.appts[i].status = St::Cancelled(CancelReason::ClinicStopped);
                }
                self.model.sessions[session].stopped = true;
                self.model.sessions[session].waitlist.clear();
            }
            Op::JoinWaitlist { person, session, smart } => {
                let session = self.model.pick_session(session, smart, |m, s| m.sold_out(s) && !m.sessions[s].stopped);
                let ms = &self.model.sessions[session];
                let expect: Result<usize, BookError> = if ms.stopped {
                    Err(BookError::SessionStopped)
                } else if !self.model.sold_out(session) {
                    Err(BookError::NotSoldOut)
                } else if ms.waitlist.contains(&person) || self.model.person_live_in(session, person) {
                    Err(BookError::AlreadyWaiting)
                } else {
                    Ok(ms.waitlist.len() + 1)
                };
                let p = &self.persons[person];
                let entry = WaitEntry {
                    account_id: p.account,
                    patient_id: p.patient,
                    person: p.key.clone(),
                    patient_name: format!("患者{person}"),
                    joined_at: Utc::now(),
                };
                let sid = self.session_ids[session];
                let got: Result<usize, BookingError> =
                    self.call(|reply| ScheduleMsg::JoinWaitlist { session: sid, entry, reply }).await;
                prop_assert_eq!(show(&got), show(&expect.clone().map_err(BookingError::Book)), "join waitlist");
                if let Ok(pos) = got {
                    self.count("waitlist joined");
                    prop_assert_eq!(Ok(pos), expect);
                    self.model.sessions[session].waitlist.push_back(person);
                } else {
                    self.count("waitlist refused");
                }
            }
            Op::LeaveWaitlist { person, session } => {
                let session = session % n;
                let expect = self.model.sessions[session].waitlist.contains(&person);
                let got = self
                    .system
                    .leave_waitlist(self.doctor, self.session_ids[session], self.persons[person].patient)
                    .await
                    .unwrap();
                prop_assert_eq!(got, expect, "leave waitlist");
                self.model.sessions[session].waitlist.retain(|w| *w != person);
                self.count(if got { "waitlist left" } else { "waitlist leave: not there" });
            }
        }
        Ok(())
    }

    /// The actor's schedule and live bookings equal the model's; the counts add up.
    async fn check_actor(&self) -> Result<(), TestCaseError> {
        let d = today();
        let schedule = self.system.get_schedule(self.doctor, d, d + Days::days(10)).await.unwrap();
        prop_assert_eq!(schedule.len(), self.session_ids.len());
        for (s, ms) in self.model.sessions.iter().enumerate() {
            let avail = schedule.iter().find(|a| a.session.id == self.session_ids[s]).expect("listed");
            prop_assert_eq!(&avail.remaining, &self.model.remaining_all(s), "places left in session {}", s);
            prop_assert_eq!(avail.waiting, ms.waitlist.len(), "waiting in session {}", s);
            prop_assert_eq!(avail.session.status == SessionStatus::Stopped, ms.stopped);
            let quotas: Vec<u32> = avail.session.segments.iter().map(|g| g.quota).collect();
            prop_assert_eq!(&quotas, &ms.quotas);
            for (g, q) in ms.quotas.iter().enumerate() {
                let live = self.model.live_in(s, g as u16).count() as u32;
                prop_assert!(live <= *q, "over the quota");
                prop_assert_eq!(avail.remaining[g], if ms.stopped { 0 } else { q - live });
            }
            // The node's availability gate, which refuses without asking the actor, says exactly
            // what the model says for every segment (and one past the end: "ask the actor"),
            // so it never refuses what the actor would accept and is current after every step.
            let now = Utc::now();
            for g in 0..=ms.quotas.len() as u16 {
                let slot = SlotId { session_id: self.session_ids[s], segment: g };
                let expect = match self.model.predict_place(usize::MAX, s, g) {
                    Err(e @ (BookError::SessionStopped | BookError::SoldOut)) => Some(e),
                    _ => None,
                };
                prop_assert_eq!(self.system.gate().refusal(slot, now), expect, "the gate of {}.{}", s, g);
            }
            // The actor offers freed places at once: nobody waits while a place is free.
            if !ms.waitlist.is_empty() {
                prop_assert!(avail.remaining.iter().all(|r| *r == 0), "people wait while places are free in {}", s);
            }
            let got: BTreeMap<AppointmentId, (u16, u32, usize, AppointmentStatus)> = self
                .live_of(s)
                .await
                .into_iter()
                .map(|a| (a.id, (a.slot.segment, a.place, self.person_of(&a.person), a.status)))
                .collect();
            let expect: BTreeMap<AppointmentId, (u16, u32, usize, AppointmentStatus)> = self
                .model
                .appts
                .iter()
                .filter(|a| a.session == s && a.status.live())
                .map(|a| (a.id, (a.segment, a.place, a.person, a.status.status())))
                .collect();
            prop_assert_eq!(&got, &expect, "live bookings of session {}", s);
            let places: BTreeSet<(u16, u32)> = got.values().map(|v| (v.0, v.1)).collect();
            prop_assert_eq!(places.len(), got.len(), "a place is double booked");
            let people: BTreeSet<usize> = got.values().map(|v| v.2).collect();
            prop_assert_eq!(people.len(), got.len(), "a person holds two places in one session");
        }
        Ok(())
    }

    /// The store holds exactly what the model says: every appointment in its final state, the
    /// waitlists, the sessions; every booking has its order.
    async fn check_store(&self) -> Result<(), TestCaseError> {
        let d = today();
        let expect: BTreeMap<AppointmentId, Stored> = self
            .model
            .appts
            .iter()
            .map(|a| {
                let reason = if let St::Cancelled(r) = a.status { Some(r) } else { None };
                (a.id, (a.session, a.segment, a.place, a.person, a.status.status(), reason, a.from_waitlist))
            })
            .collect();
        // An offer the actor made on its own tick shows in its live view at once and reaches the
        // store with its write, which nothing here waits on (under a loaded full suite it had
        // not landed yet): read until the store agrees, a few seconds at most, then compare.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let (stored, got) = loop {
            let stored = self.store.appointments_of_doctor(self.doctor, d, d + Days::days(10)).await.unwrap();
            let got: BTreeMap<AppointmentId, Stored> = stored
                .iter()
                .map(|a| {
                    let s = self.session_ids.iter().position(|x| *x == a.slot.session_id).expect("our session");
                    (
                        a.id,
                        (
                            s,
                            a.slot.segment,
                            a.place,
                            self.person_of(&a.person),
                            a.status,
                            a.cancel_reason,
                            a.from_waitlist,
                        ),
                    )
                })
                .collect();
            if got == expect || tokio::time::Instant::now() >= deadline {
                break (stored, got);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        prop_assert_eq!(got.len(), stored.len(), "an appointment stored twice");
        prop_assert_eq!(&got, &expect, "stored appointments");
        for a in &stored {
            prop_assert!(self.store.order(a.order_id).await.unwrap().is_some(), "the order of {} is stored", a.id);
        }
        let waitlists: BTreeMap<SessionId, Vec<usize>> = self
            .store
            .waitlists_of_doctor(self.doctor)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(s, l)| (s, l.iter().map(|w| self.person_of(&w.person)).collect()))
            .collect();
        let expect: BTreeMap<SessionId, Vec<usize>> = self
            .model
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, m)| !m.waitlist.is_empty())
            .map(|(s, m)| (self.session_ids[s], m.waitlist.iter().copied().collect()))
            .collect();
        prop_assert_eq!(waitlists, expect, "stored waitlists");
        let sessions = self.store.sessions_of_doctor(self.doctor, d, d + Days::days(10)).await.unwrap();
        for (s, ms) in self.model.sessions.iter().enumerate() {
            let got = sessions.iter().find(|x| x.id == self.session_ids[s]).expect("stored");
            let quotas: Vec<u32> = got.segments.iter().map(|g| g.quota).collect();
            prop_assert_eq!((&quotas, got.status == SessionStatus::Stopped), (&ms.quotas, ms.stopped));
        }
        Ok(())
    }
}

async fn run(layout: Vec<Vec<u32>>, ops: Vec<Op>) -> Result<BTreeMap<&'static str, usize>, TestCaseError> {
    let mut h = Harness::new(&layout).await;
    let result = async {
        h.check_actor().await?;
        for (i, op) in ops.iter().enumerate() {
            h.step(op).await.map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
            h.check_actor().await.map_err(|e| TestCaseError::fail(format!("after step {i} {op:?}: {e}")))?;
        }
        h.check_store().await.map_err(|e| TestCaseError::fail(format!("store at the end: {e}")))?;
        // A restarted actor rebuilds the same schedule from the store.
        h.restart().await;
        h.check_actor().await.map_err(|e| TestCaseError::fail(format!("after the final restart: {e}")))?;
        Ok(())
    }
    .await;
    h.system.shutdown().await;
    result.map(|_| h.stats)
}

/// Totals over every case of the property, printed at the end (with `--nocapture`).
static TOTALS: std::sync::Mutex<BTreeMap<&'static str, usize>> = std::sync::Mutex::new(BTreeMap::new());

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        max_shrink_iters: 200,
        // Each case builds a store; shrinking replays cases, so keep failures' reruns bounded.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn schedule_actor_agrees_with_the_model(
        layout in layout(),
        ops in prop::collection::vec(op(), 5..=40),
    ) {
        let stats = runtime().block_on(run(layout, ops))?;
        let mut totals = TOTALS.lock().unwrap();
        for (k, v) in stats {
            *totals.entry(k).or_default() += v;
        }
        totals.entry("cases").and_modify(|c| *c += 1).or_insert(1);
        eprintln!("running totals: {totals:?}");
    }
}

/// A case the property found (shrunk): one person waits in two sessions and one lapse frees
/// places in both. The actor offers the first and passes the person over in the second until
/// that offer is durable; the next tick offers the second (`settle_offers` waits for it).
#[test]
fn one_lapse_frees_two_lines_the_same_person_waits_in() {
    let ops = vec![
        Op::Fill { session: 1 },
        Op::Fill { session: 2 },
        Op::JoinWaitlist { person: 5, session: 0, smart: false },
        Op::JoinWaitlist { person: 5, session: 1, smart: false },
        Op::Lapse,
    ];
    let stats = runtime().block_on(run(vec![vec![0, 3], vec![2, 0]], ops)).unwrap();
    assert_eq!(stats.get("waitlist offer"), Some(&2), "both lines' offers: {stats:?}");
}

/// The real expiry tick: a 300 ms hold lapses within about a second, its place goes to the
/// first in line, and the late payer gets "sold out" (refunded by the payment side), while a
/// late payer whose place is still free is confirmed.
#[test]
fn holds_lapse_on_the_real_tick() {
    runtime().block_on(async {
        let config = ActorConfig {
            hold_ttl: Duration::from_millis(300),
            waitlist_hold_ttl: Duration::from_secs(600),
            ..ActorConfig::default()
        };
        let (_dir, store, system) = start(config).await;
        let doctor = DoctorId::new();
        let sessions = sessions_for(doctor, &[vec![1, 1], vec![2]]);
        store.put_sessions(&sessions).await.unwrap();
        let (s0, s1) = (sessions[0].id, sessions[1].id);
        let persons: Vec<Person> = (0..5)
            .map(|i| Person { account: AccountId::new(), patient: PatientId::new(), key: format!("person-{i}") })
            .collect();
        let actor = || async { system.schedule(doctor).await.unwrap() };
        let hold = |p: usize, slot: SlotId| {
            let booker = Booker {
                account_id: persons[p].account,
                patient_id: persons[p].patient,
                person: persons[p].key.clone(),
                patient_name: format!("患者{p}"),
                idempotency_key: None,
                turn: Default::default(),
            };
            let actor = actor();
            async move {
                let r: Result<(Appointment, Order), BookingError> = actor
                    .await
                    .call(|reply| ScheduleMsg::Hold { slot, booker, reply }, Some(Duration::from_secs(5)))
                    .await
                    .unwrap()
                    .unwrap();
                r.unwrap().0
            }
        };
        let join = |p: usize, session: SessionId| {
            let entry = WaitEntry {
                account_id: persons[p].account,
                patient_id: persons[p].patient,
                person: persons[p].key.clone(),
                patient_name: format!("患者{p}"),
                joined_at: Utc::now(),
            };
            let actor = actor();
            async move {
                let r: Result<usize, BookingError> = actor
                    .await
                    .call(|reply| ScheduleMsg::JoinWaitlist { session, entry, reply }, Some(Duration::from_secs(5)))
                    .await
                    .unwrap()
                    .unwrap();
                r.unwrap()
            }
        };
        let slot = |session_id, segment| SlotId { session_id, segment };
        let late = hold(0, slot(s0, 0)).await; // will lapse; its place goes to the waitlist
        let paid = hold(1, slot(s0, 1)).await;
        system.confirm(doctor, paid.id).await.unwrap();
        let lone = hold(2, slot(s1, 0)).await; // will lapse; nobody wants its place
        assert_eq!(join(3, s0).await, 1);
        assert_eq!(join(4, s0).await, 2);
        let remaining = |system: ActorSystem| async move {
            let d = today();
            let v = system.get_schedule(doctor, d, d + Days::days(5)).await.unwrap();
            v.into_iter().map(|s| (s.remaining, s.waiting)).collect::<Vec<_>>()
        };
        assert_eq!(remaining(system.clone()).await, vec![(vec![0, 0], 2), (vec![1], 0)]);

        // Within ttl + one tick (plus slack for a loaded machine) both holds lapse.
        let started = std::time::Instant::now();
        loop {
            let live: Vec<AppointmentId> =
                system.session_appointments(doctor, s0).await.unwrap().into_iter().map(|a| a.id).collect();
            if !live.contains(&late.id) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "the hold did not lapse");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let lapsed_after = started.elapsed();
        // The expiry pass is the actor's own write, answered to nobody: memory shows it first,
        // the store once the sync is done.
        for id in [late.id, lone.id] {
            while store.appointment(id).await.unwrap().unwrap().status != AppointmentStatus::Expired {
                assert!(started.elapsed() < Duration::from_secs(5), "the lapse was not saved");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Person 3 got the place (a 10-minute offer); person 4 still waits.
        let live = system.session_appointments(doctor, s0).await.unwrap();
        let offer = live.iter().find(|a| a.person == "person-3").expect("offered to the first in line");
        assert!(offer.from_waitlist && offer.status == AppointmentStatus::Held);
        assert_eq!((offer.slot.segment, offer.place), (0, 1));
        assert_eq!(remaining(system.clone()).await, vec![(vec![0, 0], 1), (vec![2], 0)]);

        // Paid too late: the place is gone in session 0, still free in session 1.
        let r = system.confirm(doctor, late.id).await;
        assert!(matches!(r, Err(BookingError::Book(BookError::SoldOut))), "{r:?}");
        let c = system.confirm(doctor, lone.id).await.unwrap();
        assert_eq!((c.id, c.status, c.place), (lone.id, AppointmentStatus::Confirmed, 1));
        assert_eq!(remaining(system.clone()).await, vec![(vec![0, 0], 1), (vec![1], 0)]);
        // The offer does not lapse on the short hold ttl: it has the waitlist's.
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(system.session_appointments(doctor, s0).await.unwrap().iter().any(|a| a.id == offer.id));
        eprintln!("a 300 ms hold lapsed {lapsed_after:?} after the wait began");
        system.shutdown().await;
    });
}
