//! The conformance suite: one set of checks, written against the store traits, that every
//! backend must pass (embedded, Redis for the ephemeral part, ScyllaDB where a cluster is at
//! hand). Each function panics with a message naming the broken promise.

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveTime, Utc};
use hospital_domain::account::Relation;
use hospital_domain::appointment::{Appointment, AppointmentStatus, CancelReason};
use hospital_domain::booking::{HoldRequest, SessionBook, WaitEntry};
use hospital_domain::catalog::{Department, Doctor, DoctorTitle, Hospital};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::{Order, OrderKind, OrderStatus};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::*;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Conflict;
use crate::model::*;
use crate::persons::{PersonHolder, RealNameCheck};
use crate::sessions::SessionStore;
use crate::traits::{BookingWrite, DataStore, EphemeralKv};
use crate::{FieldCipher, StoreError};

fn unique(tag: &str) -> String {
    format!("{tag}-{}", uuid::Uuid::new_v4().simple())
}

fn phone() -> Phone {
    // A random, valid, mainland mobile number so suites can share one backend.
    let n = uuid::Uuid::new_v4().as_u128() % 100_000_000;
    Phone::parse(&format!("139{n:08}")).unwrap()
}

pub fn sample_account() -> Account {
    Account {
        id: AccountId::new(),
        phone: Some(phone()),
        email: None,
        password_hash: None,
        wechat_openid: None,
        wechat_unionid: None,
        profile: Profile::default(),
        created_at: Utc::now(),
    }
}

pub fn sample_patient(cipher: &FieldCipher, account: AccountId, id_card: &str) -> PatientRecord {
    let card = IdCardNo::parse(id_card).unwrap();
    PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: "张三".into(),
        relation: Relation::Myself,
        gender: card.gender(),
        birth_date: card.birth_date(),
        id_card_sealed: cipher.seal(card.expose()),
        id_card_masked: card.masked(),
        id_card_index: cipher.blind_index(card.expose()),
        phone_sealed: None,
        created_at: Utc::now(),
    }
}

/// Accounts: create, find by each key, conflicts, key moves on update.
pub async fn accounts(store: Arc<dyn DataStore>) {
    let mut a = sample_account();
    store.create_account(&a).await.unwrap();
    assert_eq!(store.account(a.id).await.unwrap().as_ref(), Some(&a), "read back by id");
    assert_eq!(store.account_by_phone(a.phone.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));

    let mut clash = sample_account();
    clash.phone = a.phone.clone();
    assert!(
        matches!(store.create_account(&clash).await, Err(StoreError::Conflict(Conflict::Phone))),
        "a second account with the same phone is refused"
    );
    assert!(store.account(clash.id).await.unwrap().is_none(), "a refused create writes nothing");

    // Bind an e-mail and an openid, and move the phone.
    let old_phone = a.phone.clone().unwrap();
    a.email = Some(Email::parse(&format!("{}@example.com", unique("u"))).unwrap());
    a.wechat_openid = Some(unique("o"));
    a.phone = Some(phone());
    store.update_account(&a, &[]).await.unwrap();
    assert!(store.account_by_phone(&old_phone).await.unwrap().is_none(), "old phone released");
    assert_eq!(store.account_by_phone(a.phone.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));
    assert_eq!(store.account_by_email(a.email.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));
    assert_eq!(store.account_by_openid(a.wechat_openid.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));

    let mut other = sample_account();
    store.create_account(&other).await.unwrap();
    other.email = a.email.clone();
    assert!(matches!(store.update_account(&other, &[]).await, Err(StoreError::Conflict(Conflict::Email))));
}

/// Patients: cap, duplicates, order, removal, sealed fields.
pub async fn patients(store: Arc<dyn DataStore>) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    let a = sample_account();
    store.create_account(&a).await.unwrap();
    let cards = ["11010519491231002X", "440524198001010013", "310115199003071239"];
    // These fixed persons are added again by every run on a long-lived cluster: no person cap.
    let caps = |per_account| PatientCaps { per_account, accounts_per_person: usize::MAX };
    let mut ids = Vec::new();
    for c in &cards[..2] {
        let p = sample_patient(&cipher, a.id, c);
        ids.push(p.id);
        store.add_patient(&p, caps(2)).await.unwrap();
    }
    let third = sample_patient(&cipher, a.id, cards[2]);
    assert!(
        matches!(store.add_patient(&third, caps(2)).await, Err(StoreError::Conflict(Conflict::PatientCap))),
        "cap holds"
    );
    let dup = sample_patient(&cipher, a.id, cards[0]);
    assert!(
        matches!(store.add_patient(&dup, caps(5)).await, Err(StoreError::Conflict(Conflict::Patient))),
        "same person twice"
    );

    let listed = store.patients_of(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), ids, "oldest first");
    assert_eq!(cipher.open(&listed[0].id_card_sealed).unwrap(), cards[0]);

    let other = sample_account();
    assert!(store.patient(other.id, ids[0]).await.unwrap().is_none(), "a patient is found only under its account");
    assert!(store.remove_patient(a.id, ids[0]).await.unwrap());
    assert!(!store.remove_patient(a.id, ids[0]).await.unwrap());
    store.add_patient(&third, caps(2)).await.unwrap();
    assert_eq!(store.patients_of(a.id).await.unwrap().len(), 2);
}

/// One person under several accounts: the holders listing, the accounts-per-person cap (checked
/// with the account's own rules, refusals storing nothing), removal and relation changes keeping
/// the listing right; and the cache of real-name checks with its TTL (it sleeps 2 s).
pub async fn persons(store: Arc<dyn DataStore>) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    // A fresh person (the index is opaque to the store), so runs never meet each other's rows.
    let person = unique("person");
    let record = |account: AccountId, relation: Relation| {
        let mut p = sample_patient(&cipher, account, "11010519491231002X");
        p.id_card_index = person.clone();
        p.relation = relation;
        p
    };
    let caps = PatientCaps { per_account: 5, accounts_per_person: 2 };
    let [a, b, c] = [sample_account(), sample_account(), sample_account()];
    for acc in [&a, &b, &c] {
        store.create_account(acc).await.unwrap();
    }
    assert!(store.holders_of_person(&person).await.unwrap().is_empty());

    let pa = record(a.id, Relation::Myself);
    assert_eq!(store.add_patient(&pa, caps).await.unwrap(), vec![], "nobody else held the person");
    let mut pb = record(b.id, Relation::Parent);
    let others = store.add_patient(&pb, caps).await.unwrap();
    assert_eq!(others, vec![PersonHolder::of(&pa)], "the adder learns who held the person");
    assert_eq!(others[0].relation, Relation::Myself);
    let sorted = |mut v: Vec<PersonHolder>| {
        v.sort_by_key(|h| h.account_id);
        v
    };
    let listed = sorted(store.holders_of_person(&person).await.unwrap());
    assert_eq!(listed, sorted(vec![PersonHolder::of(&pa), PersonHolder::of(&pb)]));

    // The cap: two accounts hold the person, a third is refused and nothing of it is stored.
    let pc = record(c.id, Relation::Child);
    assert!(matches!(store.add_patient(&pc, caps).await, Err(StoreError::Conflict(Conflict::PersonCap))), "person cap");
    assert!(store.patients_of(c.id).await.unwrap().is_empty(), "a refused add leaves no patient");
    assert_eq!(store.holders_of_person(&person).await.unwrap().len(), 2, "nor a holder");
    // The account's own rules come first: the same person twice under one account.
    let again = record(b.id, Relation::Other);
    assert!(matches!(store.add_patient(&again, caps).await, Err(StoreError::Conflict(Conflict::Patient))));

    // A relation change shows in the listing; the person itself cannot change.
    pb.relation = Relation::Spouse;
    store.update_patient(&pb).await.unwrap();
    let b_row = store.holders_of_person(&person).await.unwrap().into_iter().find(|h| h.account_id == b.id);
    assert_eq!(b_row.map(|h| h.relation), Some(Relation::Spouse));
    let mut moved = pb.clone();
    moved.id_card_index = unique("other-person");
    assert!(matches!(store.update_patient(&moved).await, Err(StoreError::Conflict(Conflict::PatientPerson))));

    // Removing frees the place.
    assert!(!store.remove_patient(c.id, pc.id).await.unwrap());
    assert!(store.remove_patient(b.id, pb.id).await.unwrap());
    assert_eq!(store.holders_of_person(&person).await.unwrap(), vec![PersonHolder::of(&pa)]);
    assert_eq!(store.add_patient(&pc, caps).await.unwrap(), vec![PersonHolder::of(&pa)]);
    assert_eq!(store.patients_of(c.id).await.unwrap(), vec![pc.clone()]);

    // Real-name checks: found by person and name, gone after their TTL.
    let check = RealNameCheck {
        person: person.clone(),
        name_hash: unique("name"),
        verified_at: Utc::now(),
        request_id: "130A2C10-B9EE-4D84-88E3-5384FF039795".into(),
    };
    assert_eq!(store.real_name_check(&person, &check.name_hash).await.unwrap(), None);
    store.put_real_name_check(&check, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(store.real_name_check(&person, &check.name_hash).await.unwrap(), Some(check.clone()));
    assert_eq!(store.real_name_check(&person, "another name").await.unwrap(), None);
    assert_eq!(store.real_name_check(&unique("person"), &check.name_hash).await.unwrap(), None);
    let brief = RealNameCheck { name_hash: unique("name"), ..check.clone() };
    store.put_real_name_check(&brief, Duration::from_secs(1)).await.unwrap();
    assert!(store.real_name_check(&person, &brief.name_hash).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.real_name_check(&person, &brief.name_hash).await.unwrap(), None, "expired");
    assert!(store.real_name_check(&person, &check.name_hash).await.unwrap().is_some());
}

pub async fn staff(store: Arc<dyn DataStore>) {
    let s = StaffMember {
        id: StaffId::new(),
        username: unique("staff"),
        name: "李护士".into(),
        password_hash: "$argon2id$dummy".into(),
        roles: vec![Role::Nurse],
        active: true,
        created_at: Utc::now(),
    };
    store.create_staff(&s).await.unwrap();
    assert_eq!(store.staff_by_username(&s.username).await.unwrap().map(|x| x.id), Some(s.id));
    assert_eq!(store.staff(s.id).await.unwrap().as_ref(), Some(&s));
    let mut again = s.clone();
    again.id = StaffId::new();
    assert!(matches!(store.create_staff(&again).await, Err(StoreError::Conflict(Conflict::Username))));
}

/// Catalogue and schedules: listings by partition, in clustering order.
pub async fn catalogue(store: Arc<dyn DataStore>) {
    let h = Hospital {
        name: "测试医院".into(),
        level: "三级甲等".into(),
        introduction: "".into(),
        address: "".into(),
        phone: "".into(),
        latitude: 31.2,
        longitude: 121.5,
        service_hours: "".into(),
        buildings: vec![],
    };
    store.put_hospital(&h).await.unwrap();
    assert_eq!(store.hospital().await.unwrap(), Some(h));

    let dept = Department {
        id: DepartmentId::new(),
        parent_id: None,
        name: unique("科"),
        description: "".into(),
        location: "".into(),
        sort: 1,
    };
    store.put_departments(std::slice::from_ref(&dept)).await.unwrap();
    assert!(store.departments().await.unwrap().contains(&dept));
    let mut doc = Doctor {
        id: DoctorId::new(),
        department_id: dept.id,
        name: "王医生".into(),
        title: DoctorTitle::AttendingPhysician,
        specialties: vec!["高血压".into()],
        introduction: "".into(),
        popularity: 3,
    };
    store.put_doctors(std::slice::from_ref(&doc)).await.unwrap();
    assert_eq!(store.doctor(doc.id).await.unwrap().as_ref(), Some(&doc));
    assert_eq!(store.doctors_in_department(dept.id).await.unwrap(), vec![doc.clone()]);
    // Moving a doctor moves the listing.
    let dept2 = DepartmentId::new();
    doc.department_id = dept2;
    store.put_doctors(std::slice::from_ref(&doc)).await.unwrap();
    assert!(store.doctors_in_department(dept.id).await.unwrap().is_empty(), "left the old department");
    assert_eq!(store.doctors_in_department(dept2).await.unwrap().len(), 1);

    let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
    let mk = |date: NaiveDate, period| ClinicSession {
        id: SessionId::new(),
        doctor_id: doc.id,
        department_id: dept2,
        date,
        period,
        segments: split_segments(
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            30,
            3,
        ),
        fee: Fen::new(1500),
        release_at: Utc::now(),
        status: SessionStatus::Open,
    };
    let d = |n| today + ChronoDuration::days(n);
    // Inserted out of order on purpose.
    let sessions = vec![
        mk(d(2), Period::Afternoon),
        mk(d(0), Period::Afternoon),
        mk(d(2), Period::Morning),
        mk(d(5), Period::Morning),
    ];
    store.put_sessions(&sessions).await.unwrap();
    let got = store.sessions_of_doctor(doc.id, d(0), d(2)).await.unwrap();
    let order: Vec<(NaiveDate, Period)> = got.iter().map(|s| (s.date, s.period)).collect();
    assert_eq!(order, vec![(d(0), Period::Afternoon), (d(2), Period::Morning), (d(2), Period::Afternoon)]);
    let mut stopped = sessions[0].clone();
    stopped.status = SessionStatus::Stopped;
    store.put_sessions(std::slice::from_ref(&stopped)).await.unwrap();
    assert_eq!(store.session(stopped.id).await.unwrap().unwrap().status, SessionStatus::Stopped);
    assert_eq!(store.sessions_of_doctor(doc.id, d(2), d(2)).await.unwrap().len(), 2, "replaced, not duplicated");
}

/// A bookable session of `doctor` on `date`: two half-hour segments of `quota` places each,
/// released an hour ago.
pub fn sample_session(doctor: DoctorId, department: DepartmentId, date: NaiveDate, quota: u32) -> ClinicSession {
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: department,
        date,
        period: Period::Morning,
        segments: split_segments(
            NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            30,
            quota,
        ),
        fee: Fen::new(1500),
        release_at: Utc::now() - ChronoDuration::hours(1),
        status: SessionStatus::Open,
    }
}

/// A hold of the next free place in `segment`, as the schedule actor makes it, with its order.
pub fn sample_hold(book: &mut SessionBook, segment: u16, account: AccountId, person: &str) -> (Appointment, Order) {
    let now = Utc::now();
    let req = HoldRequest {
        appointment_id: AppointmentId::new(),
        order_id: OrderId::new(),
        account_id: account,
        patient_id: PatientId::new(),
        person: person.to_string(),
        patient_name: "张三".into(),
        idempotency_key: Some(unique("idem")),
        now,
        hold_for: ChronoDuration::minutes(15),
    };
    let a = book.hold(segment, &req).unwrap();
    let o = Order {
        id: a.order_id,
        kind: OrderKind::Registration,
        account_id: account,
        appointment_id: a.id,
        description: "挂号费".into(),
        amount: a.fee,
        status: OrderStatus::Created,
        created_at: now,
        expires_at: a.hold_expires_at,
        paid_at: None,
        transaction_id: None,
        refunds: vec![],
        notifications_seen: vec![],
    };
    (a, o)
}

fn wait_entry(person: &str) -> WaitEntry {
    WaitEntry {
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        person: person.to_string(),
        patient_name: "李四".into(),
        joined_at: Utc::now(),
    }
}

fn ids(v: &[Appointment]) -> Vec<AppointmentId> {
    v.iter().map(|a| a.id).collect()
}

/// Appointments, orders, waitlists and messages: every listing by its partition, in its order,
/// updates replacing rather than duplicating, and one `apply_booking` writing everything.
pub async fn booking(store: Arc<dyn DataStore>) {
    let (doctor, dept) = (DoctorId::new(), DepartmentId::new());
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let d = |n| day + ChronoDuration::days(n);
    let (s1, s2) = (sample_session(doctor, dept, d(0), 5), sample_session(doctor, dept, d(3), 5));
    store.put_sessions(&[s1.clone(), s2.clone()]).await.unwrap();
    let (mut b1, mut b2) = (SessionBook::new(s1.clone(), [], vec![]), SessionBook::new(s2.clone(), [], vec![]));
    let (acct_a, acct_b) = (AccountId::new(), AccountId::new());
    let (person, other) = (unique("person"), unique("person"));

    store.apply_booking(BookingWrite::default()).await.unwrap();

    // One appointment: found by id, by doctor in range and not outside it.
    let (a1, o1) = sample_hold(&mut b1, 0, acct_a, &person);
    store
        .apply_booking(BookingWrite { appointments: vec![a1.clone()], orders: vec![o1.clone()], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.appointment(a1.id).await.unwrap().as_ref(), Some(&a1), "read back by id");
    assert!(store.appointment(AppointmentId::new()).await.unwrap().is_none());
    assert_eq!(store.appointments_of_doctor(doctor, d(0), d(0)).await.unwrap(), vec![a1.clone()]);
    assert!(store.appointments_of_doctor(doctor, d(1), d(10)).await.unwrap().is_empty(), "after the range");
    assert!(store.appointments_of_doctor(doctor, d(-10), d(-1)).await.unwrap().is_empty(), "before the range");
    assert!(store.appointments_of_doctor(DoctorId::new(), d(-10), d(10)).await.unwrap().is_empty());

    // The same person from another account, on another day; another person under account A.
    let (a2, o2) = sample_hold(&mut b2, 0, acct_b, &person);
    let (a3, o3) = sample_hold(&mut b1, 1, acct_a, &other);
    store
        .apply_booking(BookingWrite {
            appointments: vec![a3.clone(), a2.clone()],
            orders: vec![o2.clone(), o3.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(&store.appointments_of_doctor(doctor, d(0), d(3)).await.unwrap()), vec![a1.id, a3.id, a2.id]);
    assert_eq!(ids(&store.appointments_of_doctor(doctor, d(1), d(3)).await.unwrap()), vec![a2.id]);
    assert_eq!(ids(&store.appointments_of_account(acct_a).await.unwrap()), vec![a1.id, a3.id], "oldest first");
    assert_eq!(store.appointments_of_account(acct_b).await.unwrap(), vec![a2.clone()]);
    assert!(store.appointments_of_account(AccountId::new()).await.unwrap().is_empty());
    assert_eq!(
        ids(&store.appointments_of_person(&person, d(0), d(3)).await.unwrap()),
        vec![a1.id, a2.id],
        "one person across two accounts, by date"
    );
    assert_eq!(ids(&store.appointments_of_person(&person, d(1), d(5)).await.unwrap()), vec![a2.id]);
    assert_eq!(ids(&store.appointments_of_person(&other, d(0), d(3)).await.unwrap()), vec![a3.id]);

    // Paying: the status changes; every listing holds the new row and only it.
    let c1 = b1.confirm(a1.id, Utc::now()).unwrap();
    let mut paid = o1.clone();
    assert!(paid.mark_paid(paid.amount, "wx-transaction-1", Utc::now()).unwrap());
    store
        .apply_booking(BookingWrite {
            appointments: vec![c1.clone()],
            orders: vec![paid.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.appointment(a1.id).await.unwrap().map(|a| a.status), Some(AppointmentStatus::Confirmed));
    let by_doctor = store.appointments_of_doctor(doctor, d(0), d(3)).await.unwrap();
    assert_eq!(by_doctor, vec![c1.clone(), a3.clone(), a2.clone()], "replaced, not duplicated, by doctor");
    assert_eq!(store.appointments_of_account(acct_a).await.unwrap(), vec![c1.clone(), a3.clone()], "by account");
    assert_eq!(store.appointments_of_person(&person, d(0), d(3)).await.unwrap(), vec![c1.clone(), a2.clone()]);

    // The same row twice in one write: the later value wins (as if written one after another).
    let c3 = b1.confirm(a3.id, Utc::now()).unwrap();
    store
        .apply_booking(BookingWrite { appointments: vec![a3.clone(), c3.clone()], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.appointment(a3.id).await.unwrap().as_ref(), Some(&c3), "the later of two writes wins");
    assert_eq!(store.appointments_of_account(acct_a).await.unwrap(), vec![c1.clone(), c3.clone()]);

    // Orders round-trip, and an update replaces.
    assert_eq!(store.order(o1.id).await.unwrap().as_ref(), Some(&paid));
    assert_eq!(store.order(o2.id).await.unwrap().as_ref(), Some(&o2));
    assert!(store.order(OrderId::new()).await.unwrap().is_none());

    // Waitlists: a whole list per session, replaced, and gone when emptied.
    let (w1, w2, w3) = (wait_entry(&unique("w")), wait_entry(&unique("w")), wait_entry(&unique("w")));
    store
        .apply_booking(BookingWrite {
            waitlists: vec![(doctor, s2.id, vec![w3.clone()]), (doctor, s1.id, vec![w1.clone(), w2.clone()])],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        store.waitlists_of_doctor(doctor).await.unwrap(),
        vec![(s1.id, vec![w1.clone(), w2.clone()]), (s2.id, vec![w3.clone()])],
        "by session, each list in its order"
    );
    store
        .apply_booking(BookingWrite { waitlists: vec![(doctor, s1.id, vec![w2.clone()])], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        store.waitlists_of_doctor(doctor).await.unwrap(),
        vec![(s1.id, vec![w2.clone()]), (s2.id, vec![w3.clone()])],
        "a list is replaced whole"
    );
    store.apply_booking(BookingWrite { waitlists: vec![(doctor, s1.id, vec![])], ..Default::default() }).await.unwrap();
    assert_eq!(store.waitlists_of_doctor(doctor).await.unwrap(), vec![(s2.id, vec![w3.clone()])], "empty: removed");
    assert!(store.waitlists_of_doctor(DoctorId::new()).await.unwrap().is_empty());

    // Messages: newest first, at most `limit`, whatever order they were written in.
    let reader = AccountId::new();
    let msgs: Vec<Message> = (0..5)
        .map(|i| Message::new(reader, MessageKind::SystemNotice, format!("m{i}"), "", None, Utc::now()))
        .collect();
    store
        .apply_booking(BookingWrite { messages: vec![msgs[2].clone(), msgs[0].clone()], ..Default::default() })
        .await
        .unwrap();
    store
        .apply_booking(BookingWrite {
            messages: vec![msgs[4].clone(), msgs[1].clone(), msgs[3].clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let newest: Vec<Message> = msgs.iter().rev().cloned().collect();
    assert_eq!(store.messages_of(reader, 3).await.unwrap(), newest[..3].to_vec(), "newest first, limited");
    assert_eq!(store.messages_of(reader, 50).await.unwrap(), newest);
    assert!(store.messages_of(reader, 0).await.unwrap().is_empty());
    assert!(store.messages_of(AccountId::new(), 10).await.unwrap().is_empty());

    // One event, every kind of row: a clinic stop (停诊) of s2 cancels its booking, closes its
    // order, empties its waitlist, stops the session and tells the patient, in one write.
    b2.waitlist.push_back(w3.clone());
    let (cancelled, _) = b2.stop(Utc::now());
    assert_eq!(ids(&cancelled), vec![a2.id]);
    let mut closed = o2.clone();
    closed.close().unwrap();
    let notice = Message::new(acct_b, MessageKind::ClinicStopped, "停诊通知", "", Some(a2.id.to_string()), Utc::now());
    store
        .apply_booking(BookingWrite {
            appointments: cancelled.clone(),
            orders: vec![closed.clone()],
            waitlists: vec![(doctor, s2.id, vec![])],
            sessions: vec![b2.session.clone()],
            messages: vec![notice.clone()],
            events: vec![],
        })
        .await
        .unwrap();
    assert_eq!(store.session(s2.id).await.unwrap().map(|s| s.status), Some(SessionStatus::Stopped));
    assert_eq!(store.sessions_of_doctor(doctor, d(0), d(3)).await.unwrap().len(), 2, "sessions replaced");
    let a2_now = store.appointment(a2.id).await.unwrap().unwrap();
    assert_eq!(
        (a2_now.status, a2_now.cancel_reason),
        (AppointmentStatus::Cancelled, Some(CancelReason::ClinicStopped))
    );
    assert_eq!(store.appointments_of_account(acct_b).await.unwrap(), cancelled, "by account");
    assert_eq!(store.appointments_of_person(&person, d(3), d(3)).await.unwrap(), cancelled, "by person");
    assert_eq!(store.appointments_of_doctor(doctor, d(3), d(3)).await.unwrap(), cancelled, "by doctor");
    assert_eq!(store.order(o2.id).await.unwrap().map(|o| o.status), Some(OrderStatus::Closed));
    assert!(store.waitlists_of_doctor(doctor).await.unwrap().is_empty(), "the stopped session's waitlist is gone");
    assert_eq!(store.messages_of(acct_b, 10).await.unwrap(), vec![notice]);

    // A large event lands whole: stopping a session with 80 bookings is 400+ rows, more than a
    // backend may put in one batch (ScyllaDB splits it); every row is there afterwards.
    let big_doctor = DoctorId::new();
    let s3 = sample_session(big_doctor, dept, d(7), 40);
    store.put_sessions(std::slice::from_ref(&s3)).await.unwrap();
    let mut b3 = SessionBook::new(s3.clone(), [], vec![]);
    let mut holds = BookingWrite::default();
    for i in 0..80 {
        let (a, o) = sample_hold(&mut b3, (i % 2) as u16, AccountId::new(), &unique("p"));
        holds.appointments.push(a);
        holds.orders.push(o);
    }
    store.apply_booking(holds.clone()).await.unwrap();
    assert_eq!(store.appointments_of_doctor(big_doctor, d(7), d(7)).await.unwrap().len(), 80);
    let (cancelled, _) = b3.stop(Utc::now());
    let stop_events: Vec<crate::PendingEvent> = cancelled
        .iter()
        .map(|a| crate::PendingEvent::new(a.account_id, hospital_domain::live::PersonalEvent::Appointment(a.into())))
        .collect();
    let stop = BookingWrite {
        events: stop_events.clone(),
        messages: cancelled
            .iter()
            .map(|a| Message::new(a.account_id, MessageKind::ClinicStopped, "停诊通知", "", None, Utc::now()))
            .collect(),
        orders: holds
            .orders
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.close().unwrap();
                o
            })
            .collect(),
        appointments: cancelled,
        sessions: vec![b3.session.clone()],
        waitlists: vec![],
    };
    store.apply_booking(stop.clone()).await.unwrap();
    let listed = store.appointments_of_doctor(big_doctor, d(7), d(7)).await.unwrap();
    assert_eq!(listed.len(), 80, "replaced, not duplicated");
    assert!(listed.iter().all(|a| a.status == AppointmentStatus::Cancelled), "every booking cancelled");
    for (a, o) in stop.appointments.iter().zip(&stop.orders) {
        assert_eq!(store.appointment(a.id).await.unwrap().as_ref(), Some(a));
        assert_eq!(store.order(o.id).await.unwrap().map(|o| o.status), Some(OrderStatus::Closed));
    }
    for m in &stop.messages {
        assert_eq!(store.messages_of(m.account_id, 5).await.unwrap(), vec![m.clone()]);
    }
    assert_eq!(store.session(s3.id).await.unwrap().map(|s| s.status), Some(SessionStatus::Stopped));
    let pending = store.outbox_pending(100_000).await.unwrap();
    assert!(stop_events.iter().all(|e| pending.contains(e)), "every event of the large write is pending");
    store.outbox_remove(&stop_events.iter().map(|e| e.id).collect::<Vec<_>>()).await.unwrap();
}

/// The live-event outbox: events written with a change are pending (oldest first) until removed;
/// a write that fails leaves none behind.
pub async fn outbox(store: Arc<dyn DataStore>) {
    use crate::PendingEvent;
    use hospital_domain::live::{PersonalEvent, UnreadCount};
    let account = AccountId::new();
    let m = Message::new(account, MessageKind::SystemNotice, "通知", "内容", None, Utc::now());
    let e1 = PendingEvent::new(account, PersonalEvent::Message(m.clone()));
    let e2 = PendingEvent::new(account, PersonalEvent::Unread(UnreadCount { count: 1 }));
    store
        .apply_booking(BookingWrite {
            messages: vec![m.clone()],
            events: vec![e1.clone(), e2.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let e3 = PendingEvent::unread(account);
    assert!(store.mark_read(account, m.id, std::slice::from_ref(&e3)).await.unwrap());
    let mine = |all: Vec<PendingEvent>| all.into_iter().filter(|e| e.account == account).collect::<Vec<_>>();
    let pending = mine(store.outbox_pending(10_000).await.unwrap());
    assert_eq!(pending, vec![e1.clone(), e2.clone(), e3.clone()], "pending in write order, whole");
    // Marking read again changes nothing, so it writes no event.
    let e4 = PendingEvent::unread(account);
    assert!(store.mark_read(account, m.id, &[e4]).await.unwrap());
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()).len(), 3, "no change, no event");
    // A refused write leaves no event behind.
    let mut taken = sample_account();
    taken.id = AccountId::new();
    assert!(store.update_account(&taken, &[PendingEvent::unread(account)]).await.is_err());
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()).len(), 3, "a refused write has no events");
    store.outbox_remove(&[e1.id, e3.id, uuid::Uuid::now_v7()]).await.unwrap();
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()), vec![e2.clone()]);
    store.outbox_remove(&[e2.id]).await.unwrap();
    assert!(mine(store.outbox_pending(10_000).await.unwrap()).is_empty());
}

/// Every data-store check in turn.
pub async fn data_store(store: Arc<dyn DataStore>) {
    accounts(store.clone()).await;
    patients(store.clone()).await;
    persons(store.clone()).await;
    staff(store.clone()).await;
    catalogue(store.clone()).await;
    booking(store.clone()).await;
    outbox(store.clone()).await;
    store.ping().await.unwrap();
}

/// The ephemeral key-value contract, TTLs included (it sleeps about a second).
pub async fn ephemeral_kv(kv: Arc<dyn EphemeralKv>) {
    let k = unique("k");
    assert_eq!(kv.get(&k).await.unwrap(), None);
    kv.put(&k, b"v1", Duration::from_secs(60)).await.unwrap();
    assert_eq!(kv.get(&k).await.unwrap().as_deref(), Some(&b"v1"[..]));
    let ttl = kv.ttl(&k).await.unwrap().unwrap();
    assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(50), "ttl {ttl:?}");
    assert!(!kv.put_if_absent(&k, b"v2", Duration::from_secs(60)).await.unwrap(), "NX refuses an existing key");
    assert_eq!(kv.take(&k).await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(kv.take(&k).await.unwrap(), None, "take is single-use");
    assert!(kv.put_if_absent(&k, b"v3", Duration::from_secs(60)).await.unwrap());
    kv.delete(&k).await.unwrap();
    assert_eq!(kv.ttl(&k).await.unwrap(), None);

    // Only one of many concurrent takers gets the value.
    let t = unique("t");
    kv.put(&t, b"once", Duration::from_secs(60)).await.unwrap();
    let takers: Vec<_> = (0..20)
        .map(|_| {
            let kv = kv.clone();
            let t = t.clone();
            tokio::spawn(async move { kv.take(&t).await.unwrap() })
        })
        .collect();
    let mut got = 0;
    for h in takers {
        got += usize::from(h.await.unwrap().is_some());
    }
    assert_eq!(got, 1, "exactly one taker wins");

    // Counters: atomic under concurrency, expiry set once.
    let c = unique("c");
    let incs: Vec<_> = (0..50)
        .map(|_| {
            let kv = kv.clone();
            let c = c.clone();
            tokio::spawn(async move { kv.incr(&c, Duration::from_secs(30)).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for h in incs {
        seen.push(h.await.unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=50).collect::<Vec<i64>>(), "every increment counted once");
    assert!(kv.ttl(&c).await.unwrap().unwrap() <= Duration::from_secs(30));

    // Sets.
    let s = unique("s");
    kv.set_add(&s, "m1", Duration::from_secs(60)).await.unwrap();
    kv.set_add(&s, "m2", Duration::from_secs(60)).await.unwrap();
    kv.set_add(&s, "m1", Duration::from_secs(60)).await.unwrap();
    let mut m = kv.set_members(&s).await.unwrap();
    m.sort();
    assert_eq!(m, vec!["m1".to_string(), "m2".to_string()]);
    kv.set_remove(&s, "m1").await.unwrap();
    assert_eq!(kv.set_members(&s).await.unwrap(), vec!["m2".to_string()]);

    // A log: numbers without holes, each value with its number, each event id once, even under
    // concurrent appends.
    let stream = unique("log");
    assert_eq!(kv.log_head(&stream).await.unwrap(), 0);
    let appends: Vec<_> = (0..30)
        .map(|i| {
            let (kv, stream) = (kv.clone(), stream.clone());
            tokio::spawn(async move {
                let id = format!("{stream}-ev{}", i % 20);
                kv.log_append(&stream, &id, id.as_bytes(), Duration::from_secs(60)).await.unwrap()
            })
        })
        .collect();
    let mut fresh = Vec::new();
    for h in appends {
        let (n, is_fresh) = h.await.unwrap();
        if is_fresh {
            fresh.push(n);
        }
    }
    fresh.sort();
    assert_eq!(fresh, (1..=20).collect::<Vec<u64>>(), "20 distinct ids, numbered 1..=20 once each");
    assert_eq!(kv.log_head(&stream).await.unwrap(), 20);
    let values = kv.log_range(&stream, 1, 20).await.unwrap();
    assert!(values.iter().all(|v| v.is_some()), "every number has its value");
    let again = kv.log_append(&stream, &format!("{stream}-ev3"), b"x", Duration::from_secs(60)).await.unwrap();
    assert!(!again.1 && values[again.0 as usize - 1].as_deref() == Some(format!("{stream}-ev3").as_bytes()));
    assert_eq!(kv.log_range(&stream, 21, 22).await.unwrap(), vec![None, None], "past the head: nothing");

    // Expiry.
    let e = unique("e");
    kv.put(&e, b"short", Duration::from_millis(300)).await.unwrap();
    kv.incr(&format!("{e}-n"), Duration::from_millis(300)).await.unwrap();
    kv.set_add(&format!("{e}-s"), "x", Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(kv.get(&e).await.unwrap(), None, "expired keys are gone");
    assert_eq!(kv.incr(&format!("{e}-n"), Duration::from_secs(5)).await.unwrap(), 1, "an expired counter restarts");
    assert!(kv.set_members(&format!("{e}-s")).await.unwrap().is_empty(), "an expired set is empty");
    kv.ping().await.unwrap();
}

/// Login sessions over a kv: idle timeout, absolute expiry, logout, revoke all.
pub async fn sessions(kv: Arc<dyn EphemeralKv>) {
    let store = SessionStore::new(kv);
    let subject = Subject::Account { id: AccountId::new() };
    let now = Utc::now();
    let mk = |hash: &str, idle: u64, life: i64| LoginSession {
        token_hash: hash.to_string(),
        subject: subject.clone(),
        created_at: now,
        last_seen_at: now,
        expires_at: now + ChronoDuration::seconds(life),
        idle_timeout_secs: idle,
        device: Some("test".into()),
    };
    let a = mk(&unique("h"), 600, 3600);
    let b = mk(&unique("h"), 600, 3600);
    store.create(&a, now).await.unwrap();
    store.create(&b, now).await.unwrap();
    assert!(store.get(&a.token_hash, now).await.unwrap().is_some());
    assert_eq!(store.list(&subject, now).await.unwrap().len(), 2, "two devices");

    // Idle: not used for longer than the idle timeout.
    let later = now + ChronoDuration::seconds(601);
    assert!(store.get(&a.token_hash, later).await.unwrap().is_none(), "idle session ended");
    // Touching pushes the idle end out, but never past the absolute expiry.
    let touched = store.touch(&a, now + ChronoDuration::seconds(500)).await.unwrap();
    assert!(store.get(&a.token_hash, later).await.unwrap().is_some(), "touched session lives on");
    let past_abs = now + ChronoDuration::seconds(3601);
    let mut t = touched.clone();
    t.last_seen_at = now + ChronoDuration::seconds(3500);
    assert!(!t.is_live(past_abs), "absolute expiry wins over activity");

    store.delete(&a).await.unwrap();
    assert!(store.get(&a.token_hash, now).await.unwrap().is_none(), "logged out");
    assert_eq!(store.delete_all(&subject, now).await.unwrap(), 1);
    assert!(store.get(&b.token_hash, now).await.unwrap().is_none(), "revoked everywhere");
    assert!(store.list(&subject, now).await.unwrap().is_empty());
}

/// Exams (REC-4): written under both keys, replaced in place as they change, listed per account
/// newest first, never seen by another account.
pub async fn exams(store: Arc<dyn DataStore>) {
    use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
    let account = AccountId::new();
    let other = AccountId::new();
    let t0 = Utc::now();
    let mut first = Exam::new(account, PatientId::new(), "胸部CT平扫", ExamKind::Imaging, t0).unwrap();
    let second = Exam::new(account, PatientId::new(), "血常规", ExamKind::Lab, t0).unwrap();
    let foreign = Exam::new(other, PatientId::new(), "尿常规", ExamKind::Lab, t0).unwrap();
    assert_eq!(store.exam(first.id).await.unwrap(), None);
    assert!(store.exams_of_account(account).await.unwrap().is_empty());
    for e in [&first, &second, &foreign] {
        store.put_exam(e, &[], &[]).await.unwrap();
    }
    assert_eq!(store.exam(first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.exams_of_account(account).await.unwrap(), vec![second.clone(), first.clone()], "newest first");
    assert_eq!(store.exams_of_account(other).await.unwrap(), vec![foreign.clone()]);

    first.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, t0).unwrap();
    store.put_exam(&first, &[], &[]).await.unwrap();
    let done =
        ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary: Some("右肺上叶结节".into()) };
    first.apply(done, t0 + ChronoDuration::hours(1)).unwrap();
    store.put_exam(&first, &[], &[]).await.unwrap();
    assert_eq!(store.exam(first.id).await.unwrap().as_ref(), Some(&first), "replaced in place");
    let listed = store.exams_of_account(account).await.unwrap();
    assert_eq!(listed, vec![second, first.clone()], "one row per exam, updated under both keys");
    assert!(listed[1].abnormal && listed[1].summary.as_deref() == Some("右肺上叶结节"));
    assert!(store.exams_of_account(AccountId::new()).await.unwrap().is_empty());
}

/// Clinic session queues (BOOK-10): a whole-row upsert per session, read back exactly; sessions
/// are apart; an unknown session has no queue.
pub async fn queues(store: Arc<dyn DataStore>) {
    use hospital_domain::queue::{ClinicQueue, QueueEntry};
    let (session, doctor) = (SessionId::new(), DoctorId::new());
    assert_eq!(store.queue(session).await.unwrap(), None, "no queue before the first check-in");
    let now = Utc::now();
    let mut q = ClinicQueue::new(session, doctor);
    for place in 1..=3 {
        q.check_in(QueueEntry {
            appointment_id: AppointmentId::new(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            patient_name: format!("患者{place}"),
            segment: 0,
            place,
            checked_in_at: now,
        });
    }
    store.put_queue(session, doctor, &q, &[]).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap().as_ref(), Some(&q));
    // The next change replaces the row whole.
    q.call_next("3", now + ChronoDuration::minutes(1)).unwrap();
    q.skip().unwrap();
    q.call_next("3", now + ChronoDuration::minutes(2)).unwrap();
    store.put_queue(session, doctor, &q, &[]).await.unwrap();
    let back = store.queue(session).await.unwrap().expect("stored");
    assert_eq!(back, q, "the latest queue, with its called, skipped and waiting patients");
    assert_eq!(back.waiting().len(), 1);
    assert_eq!(back.skipped().len(), 1);
    let other = ClinicQueue::new(SessionId::new(), doctor);
    store.put_queue(other.session_id, doctor, &other, &[]).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap(), Some(q), "another session's queue is apart");
    assert_eq!(store.queue(other.session_id).await.unwrap(), Some(other));
}

/// Notifications (MSG-1..4): read state, categories and the unread count of messages;
/// preferences (defaults until saved); reminders scheduled once, scanned by due time, claimed by
/// one worker at a time, rescheduled or finished with their queue row moved or removed.
pub async fn notify(store: Arc<dyn DataStore>) {
    use crate::notify::{Claim, MessageFilter};
    use hospital_domain::notify::{
        Channel, ChannelDelivery, DeliveryState, KindChannels, MessageCategory, NotificationPreferences, Reminder,
        ReminderKind, ReminderStatus,
    };
    let account = AccountId::new();
    let other = AccountId::new();
    let t0 = Utc::now();
    let all = |limit| MessageFilter { category: None, unread_only: false, limit };

    // Messages: read state, categories, newest first, unread count.
    let booked = Message::new(account, MessageKind::BookingSuccess, "预约成功", "b", None, t0);
    let paid = Message::new(account, MessageKind::PaymentSuccess, "支付成功", "p", None, t0);
    let notice = Message::new(account, MessageKind::Announcement, "公告", "n", None, t0);
    let foreign = Message::new(other, MessageKind::BookingSuccess, "预约成功", "x", None, t0);
    for m in [&booked, &paid, &notice, &foreign] {
        store.put_message(m, &[]).await.unwrap();
    }
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_messages(account, all(10)).await.unwrap()), vec![notice.id, paid.id, booked.id]);
    assert_eq!(ids(store.list_messages(account, all(2)).await.unwrap()), vec![notice.id, paid.id]);
    let payments = MessageFilter { category: Some(MessageCategory::Payment), unread_only: false, limit: 10 };
    assert_eq!(ids(store.list_messages(account, payments).await.unwrap()), vec![paid.id]);
    assert_eq!(store.unread_count(account).await.unwrap(), 3);
    assert!(store.mark_read(account, paid.id, &[]).await.unwrap());
    assert!(store.mark_read(account, paid.id, &[]).await.unwrap(), "marking again is fine");
    assert!(!store.mark_read(account, foreign.id, &[]).await.unwrap(), "another account's message is absent");
    assert!(!store.mark_read(account, MessageId::new(), &[]).await.unwrap());
    assert_eq!(store.unread_count(account).await.unwrap(), 2);
    let unread = MessageFilter { category: None, unread_only: true, limit: 10 };
    assert_eq!(ids(store.list_messages(account, unread).await.unwrap()), vec![notice.id, booked.id]);
    assert_eq!(store.mark_all_read(account, &[]).await.unwrap(), 2);
    assert_eq!(store.unread_count(account).await.unwrap(), 0);
    assert_eq!(store.unread_count(other).await.unwrap(), 1, "another account is untouched");
    assert!(store.list_messages(account, all(10)).await.unwrap().iter().all(|m| m.read));
    // The booking engine's messages count too.
    store
        .apply_booking(BookingWrite {
            messages: vec![Message::new(account, MessageKind::WaitlistOffer, "候补成功", "w", None, Utc::now())],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.unread_count(account).await.unwrap(), 1);

    // Preferences.
    assert_eq!(store.notification_preferences(account).await.unwrap(), NotificationPreferences::default());
    let prefs = NotificationPreferences::default().with_changes(&[KindChannels {
        kind: MessageKind::VisitReminder,
        in_app: true,
        sms: false,
        wechat: false,
    }]);
    store.put_notification_preferences(account, &prefs).await.unwrap();
    assert_eq!(store.notification_preferences(account).await.unwrap(), prefs);
    assert_eq!(store.notification_preferences(other).await.unwrap(), NotificationPreferences::default());

    // Reminders.
    let now = Utc::now();
    let appt = AppointmentId::new();
    let due = Reminder::new(
        account,
        appt,
        ReminderKind::DayBefore,
        now - ChronoDuration::seconds(5),
        now + ChronoDuration::hours(3),
        now,
    );
    let later = Reminder::new(
        account,
        appt,
        ReminderKind::SoonBefore,
        now + ChronoDuration::hours(2),
        now + ChronoDuration::hours(3),
        now,
    );
    assert_eq!(store.schedule_reminders(&[due.clone(), later.clone()]).await.unwrap(), 2);
    assert_eq!(store.schedule_reminders(std::slice::from_ref(&due)).await.unwrap(), 0, "scheduled once");
    assert_eq!(store.reminder(due.id).await.unwrap(), Some(due.clone()));
    let window_from = now - ChronoDuration::hours(24);
    let found = store.due_reminders(window_from, now, 100).await.unwrap();
    assert!(found.iter().any(|r| r.id == due.id));
    assert!(!found.iter().any(|r| r.id == later.id), "not due yet");
    let in_three_hours = store.due_reminders(window_from, now + ChronoDuration::hours(3), 100).await.unwrap();
    let pos = |id| in_three_hours.iter().position(|r| r.id == id).unwrap();
    assert!(pos(due.id) < pos(later.id), "oldest first");

    let (me, them) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let lease = now + ChronoDuration::seconds(60);
    assert!(matches!(store.claim_reminder(&later, me, now, lease).await.unwrap(), Claim::NotDue), "not due");
    let Claim::Claimed(mut r) = store.claim_reminder(&due, me, now, lease).await.unwrap() else {
        panic!("a due reminder is claimed")
    };
    assert_eq!(store.claim_reminder(&due, them, now, lease).await.unwrap(), Claim::NotDue, "one worker at a time");
    // A retry: SMS sent, WeChat failed; back in the queue 30 s later.
    r.attempts = 1;
    r.channels = vec![
        ChannelDelivery {
            state: DeliveryState::Sent,
            attempts: 1,
            sent_at: Some(now),
            ..ChannelDelivery::pending(Channel::Sms)
        },
        ChannelDelivery { attempts: 1, last_error: Some("busy".into()), ..ChannelDelivery::pending(Channel::Wechat) },
    ];
    r.due_at = now + ChronoDuration::seconds(30);
    assert!(!store.finish_reminder(&r, them).await.unwrap(), "only the lease holder finishes");
    assert!(store.finish_reminder(&r, me).await.unwrap());
    assert_eq!(store.reminder(r.id).await.unwrap(), Some(r.clone()));
    let now_due = store.due_reminders(window_from, now, 100).await.unwrap();
    assert!(!now_due.iter().any(|x| x.id == r.id), "moved to its retry time");
    let at_retry = now + ChronoDuration::seconds(31);
    let entries = store.due_reminders(window_from, at_retry, 100).await.unwrap();
    let entry = entries.iter().find(|x| x.id == r.id).expect("queued at the retry time").clone();
    assert_eq!(entry, r);
    // A stale entry (the old due time) claims nothing.
    assert_eq!(store.claim_reminder(&due, me, at_retry, lease).await.unwrap(), Claim::NotDue);
    let Claim::Claimed(mut r) =
        store.claim_reminder(&entry, them, at_retry, at_retry + ChronoDuration::seconds(60)).await.unwrap()
    else {
        panic!("the lease was released, so another worker may claim it")
    };
    r.channels[1].state = DeliveryState::Sent;
    r.status = ReminderStatus::Done;
    assert!(store.finish_reminder(&r, them).await.unwrap());
    let far = now + ChronoDuration::hours(4);
    assert!(
        !store.due_reminders(window_from, far, 100).await.unwrap().iter().any(|x| x.id == r.id),
        "done leaves the queue"
    );
    assert_eq!(store.reminder(r.id).await.unwrap().map(|x| x.status), Some(ReminderStatus::Done));
    assert_eq!(store.claim_reminder(&entry, me, far, far).await.unwrap(), Claim::NotDue);
    assert_eq!(
        store.schedule_reminders(std::slice::from_ref(&due)).await.unwrap(),
        0,
        "a done reminder is not scheduled again"
    );
    assert_eq!(store.reminder(due.id).await.unwrap().map(|x| x.status), Some(ReminderStatus::Done));
}

/// The audit log: appends continue the head or are refused (a second writer, a gap, a forged
/// link), a retried append is accepted once more, the chain reads back in seq order and
/// verifies, every index finds its entries newest first in pages, the writer serialises
/// concurrent callers into one chain and refuses to fork it, and exports carry every entry.
pub async fn audit(store: Arc<dyn DataStore>) {
    use crate::audit::{
        export, search, verify_chain, AuditCursor, AuditIndex, AuditLog, AuditQuery, AuditStore, ExportFormat,
    };
    use hospital_domain::audit::{Action, Actor, AuditEntry, AuditEvent, Bucket, Outcome, Target, GENESIS_HASH};
    let audit: Arc<dyn AuditStore> = store.clone();
    let chain = unique("chain");
    assert_eq!(audit.audit_head(&chain).await.unwrap(), None);

    // A past hour no other suite writes to (suites may share one backend).
    let base =
        chrono::DateTime::from_timestamp(946_684_800 + (uuid::Uuid::new_v4().as_u128() % 100_000_000) as i64 * 3600, 0)
            .unwrap();
    let doctor = StaffId::new();
    let nurse = StaffId::new();
    let patient_account = AccountId::new();
    let ev = |staff: StaffId, action: &str, account: Option<AccountId>| {
        let mut e = AuditEvent::new(
            Actor::Staff { id: staff, roles: vec![Role::Doctor] },
            Action::parse(action).unwrap(),
            Target::new("record", "r-1").unwrap(),
        )
        .from_ip(Some("10.0.0.7".parse().unwrap()));
        if let Some(a) = account {
            e = e.concerning(a, None).purpose("treatment").unwrap();
        }
        e
    };
    let events = [
        ev(doctor, "record.read", Some(patient_account)),
        ev(nurse, "record.read", Some(patient_account)),
        ev(doctor, "staff.create", None),
        ev(doctor, "record.read", Some(patient_account)),
        ev(nurse, "report.read", Some(AccountId::new())),
    ];
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let prev = entries.last().map_or(GENESIS_HASH.to_string(), |p| p.hash.clone());
        let at = base + ChronoDuration::minutes(20 * i as i64); // spans two hour buckets
        entries.push(AuditEntry::seal(&chain, i as u64 + 1, &prev, at, e.clone()));
    }
    audit.append_audit(&entries[..3]).await.unwrap();
    audit.append_audit(&entries[3..]).await.unwrap();
    let head = audit.audit_head(&chain).await.unwrap().expect("a head");
    assert_eq!((head.seq, head.hash.as_str(), head.first_at), (5, entries[4].hash.as_str(), entries[0].at));
    assert!(audit.audit_heads().await.unwrap().iter().any(|h| h.chain == chain));

    // Retrying an acknowledged append changes nothing.
    audit.append_audit(&entries[3..]).await.unwrap();
    assert_eq!(audit.audit_head(&chain).await.unwrap().unwrap().seq, 5);

    // Refusals: a different entry under a taken seq, a gap, a forged link, a foreign chain.
    let mut forked = entries[4].clone();
    forked.event.outcome = Outcome::Denied;
    forked.hash = forked.compute_hash();
    let gap = AuditEntry::seal(&chain, 7, &entries[4].hash, base + ChronoDuration::hours(2), events[0].clone());
    let forged = AuditEntry::seal(&chain, 6, &entries[2].hash, base + ChronoDuration::hours(2), events[0].clone());
    let mut unhashed =
        AuditEntry::seal(&chain, 6, &entries[4].hash, base + ChronoDuration::hours(2), events[0].clone());
    unhashed.event.purpose = Some("changed after sealing".into());
    for bad in [vec![forked], vec![gap], vec![forged], vec![unhashed]] {
        assert!(
            matches!(audit.append_audit(&bad).await, Err(StoreError::Conflict(Conflict::AuditChain))),
            "refused: seq {}",
            bad[0].seq
        );
    }
    assert_eq!(audit.audit_head(&chain).await.unwrap().unwrap().seq, 5, "a refused append writes nothing");

    // The chain, by hour, in seq order; and it verifies.
    let mut walked = Vec::new();
    for hour in Bucket::Hour.of(entries[0].at)..=Bucket::Hour.of(entries[4].at) {
        for row in audit.audit_chain_hour(&chain, hour).await.unwrap() {
            assert_eq!(row.entry.as_ref().map(|e| e.seq), Ok(row.seq));
            walked.push(row.entry.unwrap());
        }
    }
    assert_eq!(walked, entries);
    let report = verify_chain(audit.as_ref(), &chain).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, 5);

    // Search: each index, newest first, time-bounded, paged.
    let (from, to) = (base - ChronoDuration::minutes(1), base + ChronoDuration::hours(3));
    let seqs = |v: &[AuditEntry]| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    let page = search(audit.as_ref(), &AuditQuery::new(AuditIndex::staff(doctor), from, to, 10)).await.unwrap();
    assert_eq!(seqs(&page.entries), vec![4, 3, 1], "the doctor's actions, newest first");
    assert_eq!(page.next, None);
    let page =
        search(audit.as_ref(), &AuditQuery::new(AuditIndex::Account(patient_account), from, to, 10)).await.unwrap();
    assert_eq!(seqs(&page.entries), vec![4, 2, 1], "the patient's access history");
    let page = search(audit.as_ref(), &AuditQuery::new(AuditIndex::Action("staff.create".into()), from, to, 10))
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), vec![3]);
    let mut q = AuditQuery::new(AuditIndex::Time, from, to, 2);
    let mut all = Vec::new();
    loop {
        let page = search(audit.as_ref(), &q).await.unwrap();
        assert!(page.entries.len() <= 2);
        all.extend(page.entries.into_iter().filter(|e| e.chain == chain));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    assert_eq!(seqs(&all), vec![5, 4, 3, 2, 1], "pages by time join up without gaps or repeats");
    let window = AuditQuery::new(
        AuditIndex::staff(nurse),
        base + ChronoDuration::minutes(10),
        base + ChronoDuration::minutes(30),
        10,
    );
    assert_eq!(seqs(&search(audit.as_ref(), &window).await.unwrap().entries), vec![2], "the time range bounds it");
    let mut reads = AuditQuery::new(AuditIndex::staff(nurse), from, to, 10);
    reads.filter.action = Some("report.read".into());
    assert_eq!(seqs(&search(audit.as_ref(), &reads).await.unwrap().entries), vec![5], "narrowed by action");
    let cursor = AuditCursor::of(&entries[3]);
    assert_eq!(AuditCursor::decode(&cursor.encode()), Some(cursor));

    // Export: every matching entry, as JSON Lines that parse back to the stored entries, or CSV.
    let q = AuditQuery::new(AuditIndex::Account(patient_account), from, to, 2);
    let mut jsonl = Vec::new();
    assert_eq!(export(audit.as_ref(), &q, ExportFormat::JsonLines, &mut jsonl).await.unwrap(), 3);
    let back: Vec<AuditEntry> =
        String::from_utf8(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, vec![entries[3].clone(), entries[1].clone(), entries[0].clone()]);
    let mut csv = Vec::new();
    export(audit.as_ref(), &q, ExportFormat::Csv, &mut csv).await.unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 4, "a header and three rows");
    assert!(csv.lines().nth(1).unwrap().contains(&format!(",record.read,record,r-1,{patient_account},")));

    // The writer: concurrent callers become one unbroken chain, each answered with its entry.
    let live = unique("node");
    let log = AuditLog::start(audit.clone(), &live).await.unwrap();
    let clerk = StaffId::new();
    let calls = (0..40).map(|_| {
        let log = log.clone();
        let e = ev(clerk, "record.read", None);
        tokio::spawn(async move { log.record(e).await.unwrap() })
    });
    let mut written: Vec<u64> = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        written.push(c.await.unwrap().seq);
    }
    written.sort();
    assert_eq!(written, (1..=40).collect::<Vec<_>>());
    let report = verify_chain(audit.as_ref(), &live).await.unwrap();
    assert!(report.is_intact() && report.verified == 40, "{report:?}");
    let now = Utc::now();
    let mine =
        search(audit.as_ref(), &AuditQuery::new(AuditIndex::staff(clerk), now - ChronoDuration::hours(1), now, 100))
            .await
            .unwrap();
    assert_eq!(mine.entries.len(), 40);

    // A second writer on the same chain cannot fork it: its stale append is refused, then it
    // picks up the stored head and continues the one chain.
    let second = AuditLog::start(audit.clone(), &live).await.unwrap();
    log.record(ev(clerk, "record.read", None)).await.unwrap();
    assert!(second.record(ev(clerk, "record.read", None)).await.is_err(), "seq 41 is taken");
    assert_eq!(second.record(ev(clerk, "record.read", None)).await.unwrap().seq, 42);
    assert!(verify_chain(audit.as_ref(), &live).await.unwrap().is_intact());
}
