//! Issue 13, a person's turn across nodes: two actor systems (two nodes) over one store and one
//! Redis. Each person is a patient of two accounts (their own and a parent's), whose actors run
//! on the two nodes; both book the person at the same instant, at two doctors of one department
//! on one day, one doctor run by each node. The real-name rule (one booking per person per
//! department per day, BOOK-6) holds across the nodes: exactly one of each pair gets through.
//! Then the same for a waitlist offer made on one node against the person's booking on another.

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_actors::ownership::Ownership;
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, BookingError};
use hospital_domain::account::Relation;
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, Fen, Gender, PatientId, SessionId};
use hospital_store::{
    BookingStore, EmbeddedStore, PatientCaps, PatientRecord, RedisKv, RedisLeases, ScheduleStore, Sealed, Stores,
};
use hospital_testkit::RedisServer;
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "turns";
const PERSONS: usize = 60;

async fn node(store: &EmbeddedStore, redis: &RedisServer, name: &str) -> ActorSystem {
    let kv = RedisKv::connect(&redis.url(), PREFIX).await.unwrap();
    let ownership = Ownership::new(RedisLeases::new(kv.connection(), PREFIX), name, Duration::from_secs(60));
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    ActorSystem::start(ActorDeps::new(stores, ActorConfig::default()).with_ownership(ownership)).await.unwrap()
}

/// Person `n` added under a new account on `system`, as `relation`.
async fn patient(system: &ActorSystem, n: usize, relation: Relation) -> (AccountId, PatientId) {
    let account = AccountId::new();
    let record = PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: format!("患者{n}"),
        relation,
        gender: Gender::Female,
        birth_date: NaiveDate::from_ymd_opt(1950, 3, 1).unwrap(),
        id_card_sealed: Sealed(format!("k1:sealed-{n}")),
        id_card_masked: "1101**********0022".into(),
        id_card_index: format!("turn-index-{n}"),
        phone_sealed: None,
        created_at: Utc::now(),
    };
    let p = system.add_patient(record, PatientCaps { per_account: 5, accounts_per_person: 5 }).await.unwrap();
    (account, p.id)
}

fn session(doctor: DoctorId, department: DepartmentId, date: NaiveDate) -> ClinicSession {
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: department,
        date,
        period: Period::Morning,
        segments: vec![Segment {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            quota: 2 * PERSONS as u32,
        }],
        fee: Fen::new(1500),
        release_at: Utc::now() - Days::hours(1),
        status: SessionStatus::Open,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_booked_from_two_nodes_gets_one_place_per_department_day() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = node(&store, &redis, "node-a").await;
    let b = node(&store, &redis, "node-b").await;

    let department = DepartmentId::new();
    let date = HospitalZone::default().local_date(Utc::now()) + Days::days(2);
    let (s1, s2) = (session(DoctorId::new(), department, date), session(DoctorId::new(), department, date));
    store.put_sessions(&[s1.clone(), s2.clone()]).await.unwrap();
    let (slot_1, slot_2) = (SlotId { session_id: s1.id, segment: 0 }, SlotId { session_id: s2.id, segment: 0 });

    let mut own = Vec::new();
    let mut parents = Vec::new();
    for n in 0..PERSONS {
        own.push(patient(&a, n, Relation::Myself).await);
        parents.push(patient(&b, n, Relation::Parent).await);
    }
    // Each node runs one of the doctors (its first booking takes the doctor's lease).
    let (warm_a, warm_pa) = patient(&a, 1000, Relation::Myself).await;
    a.book(warm_a, slot_1, warm_pa, None).await.expect("node A runs doctor 1");
    let (warm_b, warm_pb) = patient(&b, 1001, Relation::Myself).await;
    b.book(warm_b, slot_2, warm_pb, None).await.expect("node B runs doctor 2");

    let mut shots = Vec::new();
    for (&(own_account, own_patient), &(parent_account, parent_patient)) in own.iter().zip(&parents) {
        let (a, b) = (a.clone(), b.clone());
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

    a.shutdown().await;
    b.shutdown().await;
}

/// A waitlist offer on one node against the same person's booking on another: doctor 1's actor,
/// on node A, offers freed places to those in its line (their own accounts, on A) while their
/// parents' accounts, on node B, book them at doctor 2 of the same department. Never both; once
/// the line is empty each person has exactly one booking that day in the department.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_offer_on_one_node_and_a_booking_on_another_never_both_land() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = node(&store, &redis, "node-a").await;
    let b = node(&store, &redis, "node-b").await;

    let department = DepartmentId::new();
    let date = HospitalZone::default().local_date(Utc::now()) + Days::days(3);
    let (mut s1, s2) = (session(DoctorId::new(), department, date), session(DoctorId::new(), department, date));
    s1.segments[0].quota = PERSONS as u32;
    store.put_sessions(&[s1.clone(), s2.clone()]).await.unwrap();
    let (slot_1, slot_2) = (SlotId { session_id: s1.id, segment: 0 }, SlotId { session_id: s2.id, segment: 0 });

    // Doctor 1 (node A) is full, held by others; the persons wait in its line.
    let mut held = Vec::new();
    for n in 0..PERSONS {
        let (account, holder) = patient(&a, 3000 + n, Relation::Myself).await;
        held.push((account, a.book(account, slot_1, holder, None).await.expect("a place at doctor 1").0.id));
    }
    let mut parents = Vec::new();
    for n in 0..PERSONS {
        let (account, waiting) = patient(&a, n, Relation::Myself).await;
        assert_eq!(a.join_waitlist(account, s1.id, waiting).await.expect("joins the line"), n + 1);
        parents.push(patient(&b, n, Relation::Parent).await);
    }
    let (warm_b, warm_pb) = patient(&b, 4000, Relation::Myself).await;
    b.book(warm_b, slot_2, warm_pb, None).await.expect("node B runs doctor 2");

    let mut cancels = Vec::new();
    let mut bookings = Vec::new();
    for (&(holder, appointment), &(parent, parent_patient)) in held.iter().zip(&parents) {
        let (a, b) = (a.clone(), b.clone());
        let doctor = s1.doctor_id;
        cancels.push(tokio::spawn(async move { a.cancel(doctor, appointment, Some(holder)).await }));
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
        let lines = store.waitlists_of_doctor(s1.doctor_id).await.unwrap();
        if lines.iter().all(|(_, line)| line.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "doctor 1's line never emptied: {lines:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let live = |s: AppointmentStatus| {
        matches!(s, AppointmentStatus::Held | AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn)
    };
    let mut offered = 0;
    for n in 0..PERSONS {
        let mine = store.appointments_of_person(&format!("turn-index-{n}"), date, date).await.unwrap();
        let l: Vec<_> = mine.iter().filter(|x| live(x.status) && x.department_id == department).collect();
        assert_eq!(l.len(), 1, "person {n}: exactly one booking in the department that day: {l:?}");
        offered += usize::from(l[0].from_waitlist);
    }
    eprintln!(
        "offer on one node, booking on another: {PERSONS} persons, offered {offered}, booked at doctor 2 {booked_at_2}"
    );
    assert_eq!(offered + booked_at_2, PERSONS);

    a.shutdown().await;
    b.shutdown().await;
}
