//! The node's availability gate through `ActorSystem::book`, against the real embedded store:
//! sold out, not yet released and stopped are refused with no actor hop (an account that has no
//! actor and no such patient gets the slot's refusal, and no patient actor starts: the actors
//! would have answered "no such patient"); a freed place goes back to the actors at once; a
//! restarted schedule actor rebuilds the gate. A storm of concurrent bookings holds exactly the
//! places there are, and every "no" the gate gave during it was the actor's answer too (holds
//! only take places, so an actor asked after the gate must refuse as well).

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, BookingError, ScheduleMsg};
use hospital_domain::account::Relation;
use hospital_domain::booking::BookError;
use hospital_domain::schedule::{ClinicSession, Period, Segment, SessionStatus, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, Fen, Gender, PatientId, SessionId};
use hospital_store::{EmbeddedStore, PatientCaps, PatientRecord, ScheduleStore, Sealed, Stores};
use ractor::rpc::CallResult;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

struct Harness {
    _dir: TempDir,
    store: EmbeddedStore,
    system: ActorSystem,
}

async fn start() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let system = ActorSystem::start(ActorDeps::new(stores, ActorConfig::default())).await.unwrap();
    Harness { _dir: dir, store, system }
}

fn tomorrow() -> NaiveDate {
    HospitalZone::default().local_date(Utc::now()) + Days::days(1)
}

/// One morning session with one segment of `quota` places, released at `release_at`.
fn session(doctor: DoctorId, quota: u32, release_at: chrono::DateTime<Utc>) -> ClinicSession {
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: DepartmentId::new(),
        date: tomorrow(),
        period: Period::Morning,
        segments: vec![Segment {
            start: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 30, 0).unwrap(),
            quota,
        }],
        fee: Fen::new(1500),
        release_at,
        status: SessionStatus::Open,
    }
}

/// A new account with one patient of its own (a person of its own too).
async fn patient(system: &ActorSystem, n: usize) -> (AccountId, PatientId) {
    let account = AccountId::new();
    let record = PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: format!("患者{n}"),
        relation: Relation::Myself,
        gender: Gender::Female,
        birth_date: NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
        id_card_sealed: Sealed(format!("k1:sealed-{n}")),
        id_card_masked: "1101**********0011".into(),
        id_card_index: format!("index-{n}"),
        phone_sealed: None,
        created_at: Utc::now(),
    };
    let caps = PatientCaps { per_account: 5, accounts_per_person: 5 };
    let p = system.add_patient(record, caps).await.unwrap();
    (account, p.id)
}

async fn live_patient_actors(system: &ActorSystem) -> usize {
    system.stats().await.unwrap().patients.live
}

/// What the doctor's actor says of a hold of `slot` now (the schedule's own check, no booking).
async fn probe(system: &ActorSystem, doctor: DoctorId, slot: SlotId) -> Result<(), BookingError> {
    let actor = system.schedule(doctor).await.unwrap();
    match actor.call(|reply| ScheduleMsg::Probe { slot, reply }, Some(Duration::from_secs(10))).await {
        Ok(CallResult::Success(r)) => r,
        other => panic!("the schedule actor did not answer: {other:?}"),
    }
}

fn refusal<T: std::fmt::Debug>(r: &Result<T, BookingError>) -> BookError {
    match r {
        Err(BookingError::Book(e)) => e.clone(),
        other => panic!("expected a booking refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_answered_without_an_actor_and_freed_places_go_back_to_the_actors() {
    let h = start().await;
    let doctor = DoctorId::new();
    let s = session(doctor, 2, Utc::now() - Days::hours(1));
    let later = session(doctor, 2, Utc::now() + Days::hours(1));
    let later = ClinicSession { period: Period::Afternoon, ..later };
    h.store.put_sessions(&[s.clone(), later.clone()]).await.unwrap();
    let slot = SlotId { session_id: s.id, segment: 0 };

    // No schedule actor yet: the gate knows nothing and the actors answer (the account has no
    // such patient).
    assert!(h.system.gate().is_empty());
    let stranger = AccountId::new();
    let r = h.system.book(stranger, slot, PatientId::new(), None).await;
    assert!(matches!(r, Err(BookingError::NoSuchPatient)), "{r:?}");

    let (a1, p1) = patient(&h.system, 1).await;
    let (a2, p2) = patient(&h.system, 2).await;
    let first = h.system.book(a1, slot, p1, None).await.unwrap().0;
    h.system.book(a2, slot, p2, None).await.unwrap();
    assert_eq!(h.system.gate().len(), 2, "the running actor published both sessions");

    // Sold out, and not yet released: answered by the gate. A new account without that patient
    // would hear "no such patient" from the actors; no patient actor starts for it.
    let actors_before = live_patient_actors(&h.system).await;
    let r = h.system.book(AccountId::new(), slot, PatientId::new(), None).await;
    assert_eq!(refusal(&r), BookError::SoldOut);
    let not_yet = SlotId { session_id: later.id, segment: 0 };
    let r = h.system.book(AccountId::new(), not_yet, PatientId::new(), None).await;
    assert_eq!(refusal(&r), BookError::NotReleased { release_at: later.release_at });
    assert_eq!(live_patient_actors(&h.system).await, actors_before, "a gate refusal starts no actor");
    // An unknown segment is the actor's to answer.
    assert_eq!(h.system.gate().refusal(SlotId { session_id: s.id, segment: 1 }, Utc::now()), None);

    // A retry (Idempotency-Key) always goes to the actors: only the store knows its first answer.
    let r = h.system.book(stranger, slot, PatientId::new(), Some("retry-1".into())).await;
    assert!(matches!(r, Err(BookingError::NoSuchPatient)), "{r:?}");

    // A cancellation frees a place: the gate lets the next attempt through to the actors at once.
    h.system.cancel(doctor, first.id, Some(a1)).await.unwrap();
    assert_eq!(h.system.gate().refusal(slot, Utc::now()), None);
    let (a3, p3) = patient(&h.system, 3).await;
    h.system.book(a3, slot, p3, None).await.unwrap();
    assert_eq!(h.system.gate().refusal(slot, Utc::now()), Some(BookError::SoldOut));

    // 停诊: the gate says so at once.
    h.system.stop_session(doctor, s.id).await.unwrap();
    let r = h.system.book(AccountId::new(), slot, PatientId::new(), None).await;
    assert_eq!(refusal(&r), BookError::SessionStopped);

    // An earlier release time opens the later session through the gate at once.
    h.system.update_session(doctor, later.id, None, Some(Utc::now() - Days::minutes(1))).await.unwrap();
    assert_eq!(h.system.gate().refusal(not_yet, Utc::now()), None);

    // A restarted actor replaces what its predecessor published with what it loaded.
    h.system.inject_schedule_fault(doctor).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.system.stats().await.unwrap().schedules.restarts < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the schedule actor was not restarted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.system.get_schedule(doctor, tomorrow(), tomorrow()).await.unwrap();
    assert_eq!(h.system.gate().refusal(slot, Utc::now()), Some(BookError::SessionStopped));
    assert_eq!(h.system.gate().refusal(not_yet, Utc::now()), None);

    // Shut down: nobody keeps the entries current, so the gate forgets them.
    h.system.shutdown().await;
    assert!(h.system.gate().is_empty(), "a stopped actor's sessions are forgotten");
}

/// A storm: 40 accounts book 8 places at once. Exactly 8 holds, no place twice, every answer a
/// hold or "sold out"; meanwhile a watcher reads the gate, and each time it says "sold out" asks
/// the actor, which must say so too (nothing frees a place in this storm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_holds_exactly_the_places_and_the_gate_only_refuses_what_the_actor_refuses() {
    let h = start().await;
    let doctor = DoctorId::new();
    let s = session(doctor, 8, Utc::now() - Days::hours(1));
    h.store.put_sessions(std::slice::from_ref(&s)).await.unwrap();
    let slot = SlotId { session_id: s.id, segment: 0 };
    let mut people = Vec::new();
    for n in 0..40 {
        people.push(patient(&h.system, n).await);
    }
    h.system.get_schedule(doctor, tomorrow(), tomorrow()).await.unwrap();
    assert_eq!(h.system.gate().refusal(slot, Utc::now()), None);

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (system, done) = (h.system.clone(), done.clone());
        tokio::spawn(async move {
            let mut confirmed = 0usize;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(e) = system.gate().refusal(slot, Utc::now()) {
                    let actor = probe(&system, doctor, slot).await;
                    assert_eq!(refusal(&actor), e, "the gate refused what the actor accepts");
                    confirmed += 1;
                }
                tokio::task::yield_now().await;
            }
            confirmed
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (account, patient) in people {
        let system = h.system.clone();
        tasks.spawn(async move { system.book(account, slot, patient, None).await });
    }
    let mut places = BTreeSet::new();
    let mut sold_out = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok((a, _)) => assert!(places.insert(a.place), "place {} given twice", a.place),
            Err(BookingError::Book(BookError::SoldOut)) => sold_out += 1,
            Err(e) => panic!("an indefinite or wrong answer: {e:?}"),
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let checked = watcher.await.unwrap();
    assert_eq!(places, (1..=8).collect::<BTreeSet<u32>>());
    assert_eq!(sold_out, 32);
    // After the storm the gate refuses, and the actor agrees.
    assert_eq!(h.system.gate().refusal(slot, Utc::now()), Some(BookError::SoldOut));
    assert_eq!(refusal(&probe(&h.system, doctor, slot).await), BookError::SoldOut);
    eprintln!("the watcher checked {checked} gate refusals against the actor");
    h.system.shutdown().await;
}
