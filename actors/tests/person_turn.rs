//! Issue 13, a person's turn across nodes: two actor systems (two nodes) over one store and one
//! Redis. Each person is a patient of two accounts (their own and a parent's), whose actors run
//! on the two nodes; both book the person at the same instant, at two doctors of one department
//! on one day, one doctor run by each node. The real-name rule (one booking per person per
//! department per day, BOOK-6) holds across the nodes: exactly one of each pair gets through.
//! Then the same for a waitlist offer made on one node against the person's booking on another.

use chrono::{Duration as Days, NaiveDate, Utc};
use hospital_actors::{ActorConfig, ActorError, ActorSystem, BookingError};
use hospital_domain::account::Relation;
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::schedule::{ClinicSession, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, PatientId};
use hospital_store::conformance::sample_session;
use hospital_store::{BookingStore, EmbeddedStore, ScheduleStore};
use hospital_testkit::RedisServer;
use std::time::Duration;

mod common;

const PREFIX: &str = "turns";
const PERSONS: usize = 60;

/// Two nodes over one store and one Redis, and two doctors of one department with a session
/// each on one day (`sample_session`: two segments, `quota_1` places each at doctor 1, plenty
/// at doctor 2).
struct TwoNodes {
    _redis: RedisServer,
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    a: ActorSystem,
    b: ActorSystem,
    department: DepartmentId,
    date: NaiveDate,
    s1: ClinicSession,
    s2: ClinicSession,
}

impl TwoNodes {
    async fn start(quota_1: u32) -> TwoNodes {
        Self::start_with(quota_1, ActorConfig::default()).await
    }

    /// `start`, the nodes' actors on `config`.
    async fn start_with(quota_1: u32, config: ActorConfig) -> TwoNodes {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let a = common::node_with(&store, &redis, PREFIX, "node-a", config.clone()).await;
        let b = common::node_with(&store, &redis, PREFIX, "node-b", config).await;
        let department = DepartmentId::new();
        let date = HospitalZone::default().local_date(Utc::now()) + Days::days(2);
        let s1 = sample_session(DoctorId::new(), department, date, quota_1);
        let s2 = sample_session(DoctorId::new(), department, date, 2 * PERSONS as u32);
        store.put_sessions(&[s1.clone(), s2.clone()]).await.unwrap();
        TwoNodes { _redis: redis, _dir: dir, store, a, b, department, date, s1, s2 }
    }

    /// A slot of doctor `n`'s session.
    fn slot(&self, n: u8, segment: u16) -> SlotId {
        SlotId { session_id: if n == 1 { self.s1.id } else { self.s2.id }, segment }
    }

    /// Node B runs doctor 2 from here on (its first booking takes the doctor's lease).
    async fn b_runs_doctor_2(&self) {
        let (account, patient) = common::patient(&self.b, "warm-b", Relation::Myself).await;
        self.b.book(account, self.slot(2, 0), patient, None).await.expect("node B runs doctor 2");
    }

    /// Node A runs both doctors (a booking at each, so its gate knows both sessions); person 0
    /// becomes a patient of two accounts on A (their own, then a parent's); then doctor 1's actor
    /// is stalled until the returned sender is used or dropped.
    async fn person_0_twice_and_doctor_1_stalled(
        &self,
    ) -> ((AccountId, PatientId), (AccountId, PatientId), tokio::sync::oneshot::Sender<()>) {
        for n in [1, 2] {
            let (warm, warm_patient) = common::patient(&self.a, &format!("warm-{n}"), Relation::Myself).await;
            self.a.book(warm, self.slot(n, 0), warm_patient, None).await.expect("node A runs the doctor");
        }
        let own = patient(&self.a, 0, Relation::Myself).await;
        let parent = patient(&self.a, 0, Relation::Parent).await;
        (own, parent, self.a.stall_schedule(self.s1.doctor_id).await.unwrap())
    }

    /// Person `n`'s live bookings in the department that day.
    async fn live(&self, n: usize) -> usize {
        let live = |s: AppointmentStatus| {
            matches!(s, AppointmentStatus::Held | AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn)
        };
        let mine = self.store.appointments_of_person(&person(n), self.date, self.date).await.unwrap();
        mine.iter().filter(|x| live(x.status) && x.department_id == self.department).count()
    }

    async fn stop(self) {
        self.a.shutdown().await;
        self.b.shutdown().await;
    }
}

/// Person `n`'s blind index.
fn person(n: usize) -> String {
    format!("turn-index-{n}")
}

/// Person `n` under a new account on `system`.
async fn patient(system: &ActorSystem, n: usize, relation: Relation) -> (AccountId, PatientId) {
    common::patient(system, &person(n), relation).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_booked_from_two_nodes_gets_one_place_per_department_day() {
    let t = TwoNodes::start(2 * PERSONS as u32).await;
    let (slot_1, slot_2) = (t.slot(1, 0), t.slot(2, 0));
    let mut own = Vec::new();
    let mut parents = Vec::new();
    for n in 0..PERSONS {
        own.push(patient(&t.a, n, Relation::Myself).await);
        parents.push(patient(&t.b, n, Relation::Parent).await);
    }
    // Each node runs one of the doctors (a node's first booking of a doctor takes its lease).
    let (warm, warm_patient) = common::patient(&t.a, "warm-a", Relation::Myself).await;
    t.a.book(warm, slot_1, warm_patient, None).await.expect("node A runs doctor 1");
    t.b_runs_doctor_2().await;

    let mut shots = Vec::new();
    for (&(own_account, own_patient), &(parent_account, parent_patient)) in own.iter().zip(&parents) {
        let (a, b) = (t.a.clone(), t.b.clone());
        shots.push(tokio::spawn(async move { a.book(own_account, slot_1, own_patient, None).await }));
        shots.push(tokio::spawn(async move { b.book(parent_account, slot_2, parent_patient, None).await }));
    }
    let mut results = Vec::new();
    for shot in shots {
        results.push(shot.await.expect("booking task"));
    }
    let (mut both, mut none, mut rule) = (0, 0, 0);
    for (n, pair) in results.chunks(2).enumerate() {
        let ok = pair.iter().filter(|r| r.is_ok()).count();
        both += usize::from(ok == 2);
        none += usize::from(ok == 0);
        for r in pair.iter().filter_map(|r| r.as_ref().err()) {
            assert!(
                matches!(r, BookingError::Rule { reason: "one_per_department_day", .. }),
                "person {n}: refused for another reason: {r:?}"
            );
            rule += 1;
        }
    }
    eprintln!(
        "one person from two nodes: {PERSONS} persons, both booked {both}, neither {none}, refused by the rule {rule}"
    );
    assert_eq!(both, 0, "never two bookings of one person in one department on one day, whichever node books");
    assert_eq!((none, rule), (0, PERSONS));
    for n in 0..PERSONS {
        assert_eq!(t.live(n).await, 1, "person {n}");
    }
    t.stop().await;
}

/// A waitlist offer on one node against the same person's booking on another: doctor 1's actor,
/// on node A, offers freed places to those in its line (their own accounts, on A) while their
/// parents' accounts, on node B, book them at doctor 2 of the same department. Never both; once
/// the line is empty each person has exactly one booking that day in the department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_offer_on_one_node_and_a_booking_on_another_never_both_land() {
    let t = TwoNodes::start(PERSONS as u32 / 2).await;
    // Doctor 1 (node A) is full, held by others; the persons wait in its line.
    let mut held = Vec::new();
    for n in 0..PERSONS {
        let (account, holder) = common::patient(&t.a, &format!("holder-{n}"), Relation::Myself).await;
        let slot = t.slot(1, (n % 2) as u16);
        held.push((account, t.a.book(account, slot, holder, None).await.expect("a place at doctor 1").0.id));
    }
    let mut parents = Vec::new();
    for n in 0..PERSONS {
        let (account, waiting) = patient(&t.a, n, Relation::Myself).await;
        assert_eq!(t.a.join_waitlist(account, t.s1.id, waiting).await.expect("joins the line"), n + 1);
        parents.push(patient(&t.b, n, Relation::Parent).await);
    }
    t.b_runs_doctor_2().await;

    // Every holder cancels at doctor 1 as every waiting person's parent books them at doctor 2.
    let (doctor_1, slot_2) = (t.s1.doctor_id, t.slot(2, 0));
    let mut cancels = Vec::new();
    let mut bookings = Vec::new();
    for (&(holder, appointment), &(parent, parent_patient)) in held.iter().zip(&parents) {
        let (a, b) = (t.a.clone(), t.b.clone());
        cancels.push(tokio::spawn(async move { a.cancel(doctor_1, appointment, Some(holder)).await }));
        bookings.push(tokio::spawn(async move { b.book(parent, slot_2, parent_patient, None).await }));
    }
    for c in cancels {
        c.await.expect("cancel task").expect("the holder cancels");
    }
    let mut booked_at_2 = 0;
    for (n, r) in bookings.into_iter().enumerate() {
        match r.await.expect("booking task") {
            Ok(_) => booked_at_2 += 1,
            Err(BookingError::Rule { reason: "one_per_department_day", .. }) => {}
            Err(e) => panic!("person {n}: refused for another reason: {e:?}"),
        }
    }

    // Those passed over while their other account was booking are screened on the next ticks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lines = t.store.waitlists_of_doctor(doctor_1).await.unwrap();
        if lines.iter().all(|(_, line)| line.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "doctor 1's line never emptied: {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..PERSONS {
        assert_eq!(t.live(n).await, 1, "person {n}: exactly one booking in the department that day");
    }
    let offered = t.a.session_appointments(doctor_1, t.s1.id).await.unwrap();
    let offered = offered.iter().filter(|x| x.from_waitlist).count();
    eprintln!(
        "offer on one node, booking on another: {PERSONS} persons, offered {offered}, booked at doctor 2 {booked_at_2}"
    );
    assert_eq!(offered + booked_at_2, PERSONS);
    t.stop().await;
}

/// A booking whose caller stops waiting once its hold is on its way (a timeout, a client gone)
/// keeps the person's turn until that hold is durable: the turn travels with the hold, and the
/// doctor's actor lets it go only then. Here doctor 1's actor is stalled with the hold of the
/// person's own account in its mailbox, and that booking's task is aborted; the parent's account
/// then books the person at doctor 2, same department and day. It must wait for the turn, and
/// once the stall ends and the first hold is durable, be refused by the rule: had the turn gone
/// with the aborted task, it would have read a history without that hold and booked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_stops_waiting_keeps_the_person_s_turn_until_its_hold_is_durable() {
    let t = TwoNodes::start(4).await;
    let (slot_1, slot_2) = (t.slot(1, 0), t.slot(2, 0));
    let ((own, own_patient), (parent, parent_patient), go) = t.person_0_twice_and_doctor_1_stalled().await;
    let a = t.a.clone();
    let first = tokio::spawn(async move { a.book(own, slot_1, own_patient, None).await });
    // Time to pass the rules and send the hold; then its caller goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled(), "the first booking was still waiting for its hold");

    let a = t.a.clone();
    let mut second = tokio::spawn(async move { a.book(parent, slot_2, parent_patient, None).await });
    let waited = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
    assert!(waited.is_err(), "the person's second booking went ahead while the first hold was in flight: {waited:?}");
    go.send(()).unwrap();
    let second = second.await.expect("second booking task");
    assert!(
        matches!(second, Err(BookingError::Rule { reason: "one_per_department_day", .. })),
        "the second booking read a history with the first hold: {second:?}"
    );
    assert_eq!(t.live(0).await, 1, "one booking for the person in the department that day");
    let held = t.store.appointments_of_person(&person(0), t.date, t.date).await.unwrap();
    assert_eq!(held[0].doctor_id, t.s1.doctor_id, "the aborted caller's hold stands");
    t.stop().await;
}

/// A person's turn is waited for at most `call_timeout`, as a call to an actor is: with the
/// doctor's actor stalled holding the person's first hold (and so the turn), the person's next
/// booking is answered "unavailable" once the timeout passes instead of queueing behind it (the
/// stall lasts five times as long); the first hold lands when the stall ends, and the person has
/// that one booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_s_turn_is_waited_for_at_most_the_call_timeout() {
    let timeout = Duration::from_secs(1);
    let t = TwoNodes::start_with(4, ActorConfig { call_timeout: timeout, ..ActorConfig::default() }).await;
    let (slot_1, slot_2) = (t.slot(1, 0), t.slot(2, 0));
    let ((own, own_patient), (parent, parent_patient), go) = t.person_0_twice_and_doctor_1_stalled().await;
    let first = t.a.book(own, slot_1, own_patient, None).await;
    assert!(
        matches!(first, Err(BookingError::Unavailable(ActorError::Timeout { kind: "schedule", .. }))),
        "the stalled doctor's actor did not answer in time: {first:?}"
    );
    // The stall ends well after the timeout: a booking still waiting for the turn then would get
    // it once the first hold lands, and be refused by the rule instead.
    let release = tokio::spawn(async move {
        tokio::time::sleep(timeout * 5).await;
        let _ = go.send(());
    });
    let second = t.a.book(parent, slot_2, parent_patient, None).await;
    assert!(
        matches!(second, Err(BookingError::Unavailable(ActorError::Timeout { kind: "person", .. }))),
        "the person's next booking waited for the turn at most the call timeout: {second:?}"
    );
    release.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while t.live(0).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first hold never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(t.live(0).await, 1, "one booking for the person in the department that day");
    t.stop().await;
}
