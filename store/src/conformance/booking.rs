//! Bookings (appointments, orders, waitlists, messages in one write) and the live-event outbox.

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveTime, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus, CancelReason};
use hospital_domain::booking::{HoldRequest, SessionBook, WaitEntry};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::{Order, OrderKind, OrderStatus};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::*;
use std::sync::Arc;

use super::samples::*;
use crate::traits::{BookingWrite, DataStore, ScheduleStore};

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
/// A sample session of `quota` places a segment for `doctor` on `date`, stored, and its book.
pub async fn stored_sample_book(
    store: &dyn ScheduleStore,
    doctor: DoctorId,
    date: NaiveDate,
    quota: u32,
) -> SessionBook {
    let s = sample_session(doctor, DepartmentId::new(), date, quota);
    store.put_sessions(std::slice::from_ref(&s)).await.unwrap();
    SessionBook::new(s, [], vec![])
}

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
    let o = {
        let mut o =
            Order::new(a.order_id, OrderKind::Registration, account, "挂号费".into(), a.fee, now, a.hold_expires_at);
        o.appointment_id = Some(a.id);
        o
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
            fence: None,
            created: Default::default(),
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
        created: Default::default(),
        waitlists: vec![],
        fence: None,
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
    // A page is the oldest `limit` of them, in order (ids are v7), not more.
    let page = store.outbox_pending(3).await.unwrap();
    assert_eq!(page.len(), 3, "a page of three");
    assert_eq!(page[..], pending[..3], "the oldest three");
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
    assert!(store.set_read(account, m.id, true, std::slice::from_ref(&e3)).await.unwrap());
    let mine = |all: Vec<PendingEvent>| all.into_iter().filter(|e| e.account == account).collect::<Vec<_>>();
    let pending = mine(store.outbox_pending(10_000).await.unwrap());
    assert_eq!(pending, vec![e1.clone(), e2.clone(), e3.clone()], "pending in write order, whole");
    // Marking read again changes nothing, so it writes no event.
    let e4 = PendingEvent::unread(account);
    assert!(store.set_read(account, m.id, true, &[e4]).await.unwrap());
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()).len(), 3, "no change, no event");
    // A refused write leaves no event behind.
    let mut taken = sample_account();
    taken.id = AccountId::new();
    assert!(store.update_account(&taken, &[PendingEvent::unread(account)], None).await.is_err());
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()).len(), 3, "a refused write has no events");
    store.outbox_remove(&[e1.id, e3.id, uuid::Uuid::now_v7()]).await.unwrap();
    assert_eq!(mine(store.outbox_pending(10_000).await.unwrap()), vec![e2.clone()]);
    store.outbox_remove(&[e2.id]).await.unwrap();
    assert!(mine(store.outbox_pending(10_000).await.unwrap()).is_empty());
}
