//! A clinic that is over: a session of yesterday (still in the actor's window) takes no new
//! booking and no place in line; a place freed there (an unpaid hold given up late) is offered to
//! nobody in line; closing the session ends the line. And a segment of today that is over: no
//! booking into it, its free place neither keeps people out of the line nor goes to them. Against
//! the real embedded store, the holds and the line written as they stood earlier.

use chrono::{Duration as Days, NaiveTime, Utc};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, BookingError};
use hospital_domain::account::Relation;
use hospital_domain::booking::{BookError, SessionBook, WaitEntry};
use hospital_domain::schedule::{Segment, SlotId};
use hospital_domain::time::HospitalZone;
use hospital_domain::{DepartmentId, DoctorId};
use hospital_store::conformance::{sample_hold, sample_session};
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, ScheduleStore, Stores};
use std::sync::Arc;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_that_is_over_takes_no_booking_offers_nothing_and_closing_ends_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let system = ActorSystem::start(ActorDeps::new(stores, ActorConfig::default())).await.unwrap();

    let yesterday = HospitalZone::default().local_date(Utc::now()) - Days::days(1);
    let doctor = DoctorId::new();
    let session = sample_session(doctor, DepartmentId::new(), yesterday, 1);
    store.put_sessions(std::slice::from_ref(&session)).await.unwrap();

    // As it stood during the clinic: one place of segment 0 held, unpaid; someone in line.
    let (holder, _) = common::patient(&system, "end-holder", Relation::Myself).await;
    let (waiting, waiting_patient) = common::patient(&system, "end-waiting", Relation::Myself).await;
    let mut book = SessionBook::new(session.clone(), [], vec![]);
    let (held, order) = sample_hold(&mut book, 0, holder, "end-holder");
    let entry = WaitEntry {
        account_id: waiting,
        patient_id: waiting_patient,
        person: "end-waiting".into(),
        patient_name: "患者end-waiting".into(),
        joined_at: Utc::now() - Days::days(1),
    };
    let w = BookingWrite {
        appointments: vec![held.clone()],
        orders: vec![order],
        waitlists: vec![(doctor, session.id, vec![entry])],
        ..Default::default()
    };
    store.apply_booking(w).await.unwrap();

    // The clinic is over: no booking of its free places, no joining its line.
    let r = system.book(waiting, SlotId { session_id: session.id, segment: 1 }, waiting_patient, None).await;
    assert!(matches!(r, Err(BookingError::Book(BookError::BookingClosed))), "{r:?}");
    let (late, late_patient) = common::patient(&system, "end-late", Relation::Myself).await;
    let r = system.join_waitlist(late, session.id, late_patient).await;
    assert!(matches!(r, Err(BookingError::Book(BookError::BookingClosed))), "{r:?}");

    // The hold is given up after the clinic: the place stays free, nobody is offered it.
    system.cancel(doctor, held.id, Some(holder)).await.expect("the holder cancels");
    let line =
        || async { store.waitlists_of_doctor(doctor).await.unwrap().into_iter().find(|(s, _)| *s == session.id) };
    let mine = store.appointments_of_person("end-waiting", yesterday, yesterday).await.unwrap();
    assert!(mine.is_empty(), "an offer for a clinic that is over: {mine:?}");
    assert_eq!(line().await.map(|(_, l)| l.len()), Some(1), "still in line until the session closes");

    // Closing the session ends the line.
    system.close_session(doctor, session.id).await.expect("closed");
    assert_eq!(line().await.map_or(0, |(_, l)| l.len()), 0, "the line ended");
    assert!(store.appointments_of_person("end-waiting", yesterday, yesterday).await.unwrap().is_empty());
    system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_is_over_takes_no_booking_and_its_free_place_is_nobodys_in_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let zone = HospitalZone::parse(&hospital_testkit::zone_near_noon().0).expect("an Etc zone");
    let config = ActorConfig { zone, ..ActorConfig::default() };
    let system = ActorSystem::start(ActorDeps::new(stores, config)).await.unwrap();

    // Today 10:00-11:00 (over: it is past noon there) and 13:00-14:00 (to come), 2 and 1 places.
    let today = zone.local_date(Utc::now());
    let doctor = DoctorId::new();
    let mut session = sample_session(doctor, DepartmentId::new(), today, 1);
    let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    session.segments =
        vec![Segment { start: hm(10), end: hm(11), quota: 2 }, Segment { start: hm(13), end: hm(14), quota: 1 }];
    store.put_sessions(std::slice::from_ref(&session)).await.unwrap();

    // As it stood this morning: one place of the first segment held, the later one held.
    let (early, _) = common::patient(&system, "seg-early", Relation::Myself).await;
    let (later, _) = common::patient(&system, "seg-later", Relation::Myself).await;
    let mut book = SessionBook::new(session.clone(), [], vec![]);
    let (early_hold, early_order) = sample_hold(&mut book, 0, early, "seg-early");
    let (later_hold, later_order) = sample_hold(&mut book, 1, later, "seg-later");
    let w = BookingWrite {
        appointments: vec![early_hold.clone(), later_hold.clone()],
        orders: vec![early_order, later_order],
        ..Default::default()
    };
    store.apply_booking(w).await.unwrap();

    // The morning's free place cannot be booked now...
    let (waiting, waiting_patient) = common::patient(&system, "seg-waiting", Relation::Myself).await;
    let r = system.book(waiting, SlotId { session_id: session.id, segment: 0 }, waiting_patient, None).await;
    assert!(matches!(r, Err(BookingError::Book(BookError::BookingClosed))), "{r:?}");
    // ...so it does not keep anyone out of the line for the afternoon, which is full.
    let r = system.book(waiting, SlotId { session_id: session.id, segment: 1 }, waiting_patient, None).await;
    assert!(matches!(r, Err(BookingError::Book(BookError::SoldOut))), "{r:?}");
    assert_eq!(system.join_waitlist(waiting, session.id, waiting_patient).await.expect("joins the line"), 1);

    // Another morning place freed now goes to nobody; the afternoon's goes to the line.
    system.cancel(doctor, early_hold.id, Some(early)).await.expect("the morning holder cancels");
    let mine = || async { store.appointments_of_person("seg-waiting", today, today).await.unwrap() };
    assert!(mine().await.is_empty(), "offered a place whose time is past: {:?}", mine().await);
    system.cancel(doctor, later_hold.id, Some(later)).await.expect("the afternoon holder cancels");
    let offered = mine().await;
    assert_eq!(offered.len(), 1, "{offered:?}");
    assert_eq!(offered[0].slot.segment, 1, "the offer is the afternoon's place: {offered:?}");
    assert!(offered[0].from_waitlist);
    system.shutdown().await;
}
