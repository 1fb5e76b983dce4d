//! Check-in and the waiting queue (BOOK-10) against the real embedded store, with a recording
//! event bus: 50 patients with confirmed appointments for today check in (40 one by one in a
//! scrambled order, 10 at once); staff call next 10 times with one skip, one re-call and one
//! manual reorder. After every change, the positions sent to the waiting patients must be exactly
//! 1..=n in the order of an independent model of the queue; the called, skipped and finished
//! patients must be told so; the queue must survive a restart of its actor and of the system.

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, EventBus, Events, QueueError};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::booking::{HoldRequest, SessionBook};
use hospital_domain::message::MessageKind;
use hospital_domain::queue::{ClinicQueue, QueueStatus};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, Fen, OrderId, PatientId, SessionId};
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, ScheduleStore, Stores};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;

/// One published event, in publication order.
#[derive(Debug, Clone)]
enum Rec {
    Personal { account: AccountId, kind: String, payload: Value },
    Topic { topic: String, kind: String, payload: Value },
}

#[derive(Default)]
struct RecordingBus {
    events: Mutex<Vec<Rec>>,
}

/// The wire form of a typed event: its `type` and `payload`.
fn wire(v: impl serde::Serialize) -> (String, Value) {
    let v = serde_json::to_value(v).unwrap();
    (v["type"].as_str().unwrap().to_string(), v["payload"].clone())
}

impl EventBus for RecordingBus {
    fn personal(&self, events: Vec<hospital_store::PendingEvent>) {
        for e in events {
            let (kind, payload) = wire(&e.event);
            self.events.lock().unwrap().push(Rec::Personal { account: e.account, kind, payload });
        }
    }
    fn topic(&self, event: hospital_domain::live::TopicEvent) {
        let topic = event.topic().to_string();
        let (kind, payload) = wire(&event);
        // The topic's state itself (the wire wraps it as {topic, data}).
        self.events.lock().unwrap().push(Rec::Topic { topic, kind, payload: payload["data"].clone() });
    }
}

impl RecordingBus {
    fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
    fn since(&self, from: usize) -> Vec<Rec> {
        self.events.lock().unwrap()[from..].to_vec()
    }
}

fn today() -> NaiveDate {
    HospitalZone::default().local_date(Utc::now())
}

fn session(doctor: DoctorId, date: NaiveDate) -> ClinicSession {
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: DepartmentId::new(),
        date,
        period: Period::Morning,
        // 8 segments of 7 places: 56 places.
        segments: split_segments(
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            30,
            7,
        ),
        fee: Fen::new(1500),
        release_at: Utc::now() - Days::days(7),
        status: SessionStatus::Open,
    }
}

/// Books a place in `book` for a fresh account; confirmed (paid) unless `pay` is false.
fn book(b: &mut SessionBook, segment: u16, n: usize, pay: bool) -> Appointment {
    let now = Utc::now();
    let req = HoldRequest {
        appointment_id: AppointmentId::new(),
        order_id: OrderId::new(),
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        person: format!("person-{n}"),
        patient_name: format!("患者{n}"),
        idempotency_key: None,
        now,
        hold_for: Days::minutes(15),
    };
    let a = b.hold(segment, &req).unwrap();
    if pay {
        b.confirm(a.id, now).unwrap()
    } else {
        a
    }
}

struct Harness {
    _dir: TempDir,
    store: EmbeddedStore,
    bus: Arc<RecordingBus>,
    system: ActorSystem,
}

async fn start_system(store: &EmbeddedStore, bus: &Arc<RecordingBus>) -> ActorSystem {
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let deps = ActorDeps::new(stores, ActorConfig::default()).with_events(Events::new(bus.clone()));
    ActorSystem::start(deps).await.unwrap()
}

/// What the test believes the queue is, kept without the domain code.
#[derive(Debug, Default)]
struct Model {
    waiting: Vec<AppointmentId>,
    called: Option<AppointmentId>,
    skipped: Vec<AppointmentId>,
    done: Vec<AppointmentId>,
}

fn appointment_of(payload: &Value) -> AppointmentId {
    AppointmentId::parse(payload["appointment_id"].as_str().expect("appointment_id")).unwrap()
}

/// The events of one change: its `queue` personal events and its one topic update, which comes
/// last (the topic closes every change's batch).
struct Batch {
    statuses: Vec<(AccountId, Value)>,
    topic: Value,
}

fn split_batches(events: Vec<Rec>, session: SessionId) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut statuses = Vec::new();
    for e in events {
        match e {
            Rec::Personal { account, kind, payload } if kind == "queue" => {
                assert_eq!(payload["session_id"].as_str().unwrap(), session.to_string());
                statuses.push((account, payload));
            }
            Rec::Personal { .. } => {}
            // The schedule actor's availability updates (a check-in changes an appointment).
            Rec::Topic { topic, .. } if !topic.starts_with("queue:") => {}
            Rec::Topic { topic, kind, payload } => {
                assert_eq!((topic, kind.as_str()), (format!("queue:{session}"), "queue_summary"));
                out.push(Batch { statuses: std::mem::take(&mut statuses), topic: payload });
            }
        }
    }
    assert!(statuses.is_empty(), "queue events after the last topic update: {statuses:?}");
    out
}

/// The waiting positions of a batch are exactly 1..=n, each for the right patient, in `order`,
/// with the right `ahead` and waits that never decrease down the line; the topic agrees.
fn check_positions(b: &Batch, order: &[AppointmentId], owner: &dyn Fn(AppointmentId) -> AccountId) {
    let mut waiting: Vec<&(AccountId, Value)> = b.statuses.iter().filter(|(_, p)| p["status"] == "waiting").collect();
    waiting.sort_by_key(|(_, p)| p["position"].as_u64().unwrap());
    let positions: Vec<u64> = waiting.iter().map(|(_, p)| p["position"].as_u64().unwrap()).collect();
    assert_eq!(positions, (1..=order.len() as u64).collect::<Vec<_>>(), "positions are 1..=n, no gap, no duplicate");
    let ids: Vec<AppointmentId> = waiting.iter().map(|(_, p)| appointment_of(p)).collect();
    assert_eq!(ids, order, "positions follow the queue order");
    for (account, p) in &waiting {
        assert_eq!(*account, owner(appointment_of(p)), "sent to the patient's own account");
        assert_eq!(p["ahead"].as_u64().unwrap() + 1, p["position"].as_u64().unwrap());
    }
    let waits: Vec<u64> = waiting.iter().map(|(_, p)| p["estimated_wait_minutes"].as_u64().unwrap()).collect();
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "waits grow down the line: {waits:?}");
    assert_eq!(b.topic["waiting"].as_u64().unwrap(), order.len() as u64);
}

fn status_events<'a>(b: &'a Batch, status: &str) -> Vec<&'a Value> {
    b.statuses.iter().filter(|(_, p)| p["status"] == status).map(|(_, p)| p).collect()
}

fn assert_matches(q: &ClinicQueue, m: &Model) {
    let ids = |v: &[hospital_domain::queue::QueueEntry]| v.iter().map(|e| e.appointment_id).collect::<Vec<_>>();
    assert_eq!(ids(q.waiting()), m.waiting, "waiting order");
    assert_eq!(q.called().map(|(e, _)| e.appointment_id), m.called, "called");
    assert_eq!(ids(q.skipped()), m.skipped, "skipped");
    assert_eq!(ids(q.done()), m.done, "done");
    q.check_invariants().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_patients_check_in_and_are_called() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    hospital_store::conformance::queues(Arc::new(store.clone())).await;

    // One session today with 50 paid bookings, one unpaid hold, and a paid booking tomorrow.
    let doctor = DoctorId::new();
    let s = session(doctor, today());
    let tomorrow = session(doctor, today() + Days::days(1));
    let mut b = SessionBook::new(s.clone(), [], vec![]);
    let booked: Vec<Appointment> = (0..50).map(|i| book(&mut b, (i / 7) as u16, i, true)).collect();
    let unpaid = book(&mut b, 7, 50, false);
    let mut bt = SessionBook::new(tomorrow.clone(), [], vec![]);
    let later = book(&mut bt, 0, 51, true);
    store.put_sessions(&[s.clone(), tomorrow.clone()]).await.unwrap();
    let mut all = booked.clone();
    all.extend([unpaid.clone(), later.clone()]);
    store.apply_booking(BookingWrite { appointments: all, ..Default::default() }).await.unwrap();

    let bus = Arc::new(RecordingBus::default());
    let h = Harness { system: start_system(&store, &bus).await, _dir: dir, store, bus };
    let sys = &h.system;
    let owner_of: std::collections::HashMap<AppointmentId, AccountId> =
        booked.iter().map(|a| (a.id, a.account_id)).collect();
    let owner = |id: AppointmentId| owner_of[&id];
    let natural = |ids: &mut Vec<AppointmentId>| {
        let key: std::collections::HashMap<AppointmentId, (u16, u32)> =
            booked.iter().map(|a| (a.id, (a.slot.segment, a.place))).collect();
        ids.sort_by_key(|id| key[id]);
    };

    // Refusals first: nothing is queued, nothing is published.
    let mark = h.bus.len();
    let err = sys.check_in(s.id, unpaid.account_id, unpaid.id).await.unwrap_err();
    assert!(matches!(err, QueueError::NotCheckable(_)), "an unpaid hold: {err:?}");
    let err = sys.check_in(tomorrow.id, later.account_id, later.id).await.unwrap_err();
    assert!(matches!(err, QueueError::NotCheckable(_)), "tomorrow's booking: {err:?}");
    let err = sys.check_in(s.id, AccountId::new(), booked[0].id).await.unwrap_err();
    assert!(matches!(err, QueueError::NoSuchAppointment), "another account's: {err:?}");
    let err = sys.check_in(tomorrow.id, booked[0].account_id, booked[0].id).await.unwrap_err();
    assert!(matches!(err, QueueError::NoSuchAppointment), "routed to the wrong session: {err:?}");
    assert_eq!(h.bus.len(), mark);
    assert_eq!(h.store.appointment(unpaid.id).await.unwrap().unwrap().status, AppointmentStatus::Held);

    // 40 check in one by one, in a scrambled order: each lands at its place in the line.
    let mut m = Model::default();
    let order: Vec<usize> = (0..50).map(|i| (i * 17 + 3) % 50).collect();
    for &i in &order[..40] {
        let a = &booked[i];
        let mark = h.bus.len();
        let standing = sys.check_in(s.id, a.account_id, a.id).await.unwrap();
        m.waiting.push(a.id);
        natural(&mut m.waiting);
        let expected = m.waiting.iter().position(|x| *x == a.id).unwrap() + 1;
        assert_eq!(standing.status, QueueStatus::Waiting);
        assert_eq!(standing.position.map(|p| p.position), Some(expected));
        let batches = split_batches(h.bus.since(mark), s.id);
        assert_eq!(batches.len(), 1, "one change, one batch");
        check_positions(&batches[0], &m.waiting, &owner);
    }
    // A repeat check-in is answered from the queue and changes nothing.
    let first = &booked[order[0]];
    let mark = h.bus.len();
    let again = sys.check_in(s.id, first.account_id, first.id).await.unwrap();
    assert_eq!(again.position.map(|p| p.position), Some(m.waiting.iter().position(|x| *x == first.id).unwrap() + 1));
    assert_eq!(h.bus.len(), mark, "nothing published for a repeat");

    // The last 10 at once: the actor takes them one at a time, each change a consistent batch.
    let mark = h.bus.len();
    let mut tasks = Vec::new();
    for &i in &order[40..] {
        let (sys, a) = (sys.clone(), booked[i].clone());
        tasks.push(tokio::spawn(async move { sys.check_in(a.slot.session_id, a.account_id, a.id).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, QueueStatus::Waiting);
    }
    let batches = split_batches(h.bus.since(mark), s.id);
    assert_eq!(batches.len(), 10);
    for (k, b) in batches.iter().enumerate() {
        // Whatever the arrival order, each batch is the queue of 41.. patients in natural order.
        let mut ids: Vec<AppointmentId> = status_events(b, "waiting").iter().map(|p| appointment_of(p)).collect();
        assert_eq!(ids.len(), 41 + k);
        natural(&mut ids);
        check_positions(b, &ids, &owner);
    }
    m.waiting = booked.iter().map(|a| a.id).collect();
    natural(&mut m.waiting);
    assert_matches(&sys.queue_state(s.id).await.unwrap(), &m);
    for a in &booked {
        assert_eq!(h.store.appointment(a.id).await.unwrap().unwrap().status, AppointmentStatus::CheckedIn);
    }

    // Staff: 10 calls, with one skip, one manual reorder and one re-call.
    #[derive(Debug)]
    enum Op {
        Call,
        Skip,
        Reorder,
        Recall,
    }
    use Op::*;
    let script = [Call, Call, Call, Skip, Call, Call, Reorder, Call, Recall, Call, Call, Call, Call];
    let mut calls = 0;
    for op in script {
        let mark = h.bus.len();
        let before_called = m.called;
        let q = match op {
            Call => {
                calls += 1;
                if let Some(c) = m.called.take() {
                    m.done.push(c);
                }
                m.called = Some(m.waiting.remove(0));
                sys.call_next(s.id, "3".into()).await.unwrap()
            }
            Skip => {
                m.skipped.push(m.called.take().unwrap());
                sys.skip(s.id).await.unwrap()
            }
            Reorder => {
                // The last in line is moved to second place by hand.
                let last = m.waiting.pop().unwrap();
                m.waiting.insert(1, last);
                sys.reorder(s.id, last, 2).await.unwrap()
            }
            Recall => {
                if let Some(c) = m.called.take() {
                    m.done.push(c);
                }
                m.called = Some(m.skipped.remove(0));
                sys.recall(s.id, m.called.unwrap()).await.unwrap()
            }
        };
        assert_matches(&q, &m);
        let batches = split_batches(h.bus.since(mark), s.id);
        assert_eq!(batches.len(), 1, "{op:?}: one change, one batch");
        let b = &batches[0];
        check_positions(b, &m.waiting, &owner);
        let called = status_events(b, "called");
        let done = status_events(b, "done");
        let skipped = status_events(b, "skipped");
        match op {
            Call | Recall => {
                assert_eq!(called.len(), 1, "{op:?}: the called patient is told");
                assert_eq!(Some(appointment_of(called[0])), m.called);
                assert_eq!(called[0]["room"], "3");
                assert_eq!(
                    done.iter().map(|p| appointment_of(p)).collect::<Vec<_>>(),
                    before_called.into_iter().collect::<Vec<_>>()
                );
                let c = booked.iter().find(|a| Some(a.id) == m.called).unwrap();
                assert_eq!(b.topic["calling"]["place"].as_u64(), Some(u64::from(c.place)));
                assert_eq!(b.topic["calling"]["segment"].as_u64(), Some(u64::from(c.slot.segment)));
            }
            Skip => {
                assert_eq!(
                    skipped.iter().map(|p| appointment_of(p)).collect::<Vec<_>>(),
                    before_called.into_iter().collect::<Vec<_>>()
                );
                assert!(called.is_empty() && done.is_empty());
                assert!(b.topic["calling"].is_null());
            }
            Reorder => assert!(called.is_empty() && done.is_empty() && skipped.is_empty()),
        }
    }
    assert_eq!(calls, 10);
    // 10 patients called (one of them twice): 9 seen, 1 in the room, 40 waiting.
    assert_eq!((m.waiting.len(), m.done.len(), m.skipped.len()), (40, 9, 0));

    // Final positions: the last event each patient got says where they are now.
    let mut last: std::collections::HashMap<AppointmentId, Value> = std::collections::HashMap::new();
    for e in h.bus.since(0) {
        if let Rec::Personal { kind, payload, .. } = e {
            if kind == "queue" {
                last.insert(appointment_of(&payload), payload);
            }
        }
    }
    for (i, id) in m.waiting.iter().enumerate() {
        assert_eq!(last[id]["status"], "waiting");
        assert_eq!(last[id]["position"].as_u64(), Some(i as u64 + 1));
    }
    for id in &m.done {
        assert_eq!(last[id]["status"], "done");
    }
    assert_eq!(last[&m.called.unwrap()]["status"], "called");
    let state = sys.queue_state(s.id).await.unwrap();
    let final_positions = state.positions(Utc::now());
    assert_eq!(final_positions.iter().map(|p| p.appointment_id).collect::<Vec<_>>(), m.waiting);
    assert_eq!(final_positions.iter().map(|p| p.position).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>());

    // Each call left a stored 就诊提醒; the re-called patient has two.
    let mut reminders = 0;
    for id in m.done.iter().chain(m.called.iter()) {
        let msgs = h.store.messages_of(owner(*id), 10).await.unwrap();
        let r: Vec<_> = msgs.iter().filter(|m| m.kind == MessageKind::VisitReminder).collect();
        assert!(!r.is_empty() && r.iter().all(|m| m.body.contains("请到3诊室就诊")), "{r:?}");
        reminders += r.len();
    }
    assert_eq!(reminders, 11, "10 calls and one re-call");

    // The queue actor panics: its supervisor restarts it and it reloads the same queue.
    let before = sys.queue(s.id).await.unwrap().get_id();
    sys.inject_queue_fault(s.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now_id = sys.queue(s.id).await.unwrap().get_id();
        if now_id != before {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the queue actor was not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sys.queue_state(s.id).await.unwrap(), state, "the queue survived the restart");
    // It carries on where it was.
    let q = sys.call_next(s.id, "3诊室".into()).await.unwrap();
    m.done.push(m.called.take().unwrap());
    m.called = Some(m.waiting.remove(0));
    assert_matches(&q, &m);
    assert_eq!(q.called().map(|(_, r)| r), Some("3诊室"));

    // And the whole system: a new one on the same store finds the same queue.
    let state = sys.queue_state(s.id).await.unwrap();
    h.system.shutdown().await;
    let system = start_system(&h.store, &h.bus).await;
    assert_eq!(system.queue_state(s.id).await.unwrap(), state);
    let again = system.check_in(s.id, first.account_id, first.id).await.unwrap();
    assert_eq!(Some(again.status), state.status(first.id), "a repeat check-in after the restart changes nothing");
    assert_eq!(system.queue_state(s.id).await.unwrap(), state);
    system.shutdown().await;
}
