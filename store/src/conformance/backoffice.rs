//! The back office's store: staff edits keep the username, documents are compare-and-set on
//! their version, analytics counters move with the booking write that counts them (and read back
//! by metric and date range), and paging through accounts covers each once.

use chrono::{Duration as ChronoDuration, NaiveDate, Utc};
use hospital_domain::analytics::RollupDelta;
use hospital_domain::appointment::AppointmentEvent;
use hospital_domain::booking::SessionBook;
use hospital_domain::{AccountId, DepartmentId, DoctorId, Role, StaffId};
use std::sync::Arc;

use super::booking::{sample_hold, sample_session};
use super::samples::{sample_account, unique};
use crate::traits::{BookingWrite, DataStore};
use crate::{Docs, StaffMember};

pub async fn backoffice(store: Arc<dyn DataStore>) {
    // Staff: listed, edited in place; the username never changes through an edit.
    let s = StaffMember {
        id: StaffId::new(),
        username: unique("ed"),
        name: "王护士".into(),
        password_hash: "x".into(),
        roles: vec![Role::Nurse.into()],
        doctor_id: None,
        active: true,
        created_at: Utc::now(),
    };
    store.create_staff(&s).await.unwrap();
    let edited =
        StaffMember { username: "renamed".into(), active: false, roles: vec![Role::Doctor.into()], ..s.clone() };
    assert!(store.update_staff(&edited).await.unwrap());
    let back = store.staff(s.id).await.unwrap().unwrap();
    assert_eq!((back.username.as_str(), back.active, back.roles.clone()), (s.username.as_str(), false, edited.roles));
    assert!(store.all_staff().await.unwrap().iter().any(|x| x.id == s.id));
    assert!(!store.update_staff(&StaffMember { id: StaffId::new(), ..s.clone() }).await.unwrap(), "no such staff");

    // Documents: version 0 means new; a stale version loses and writes nothing.
    let kind: &'static str = Box::leak(unique("kind").into_boxed_str());
    let docs: Docs<'_, serde_json::Value> = Docs::new(store.as_ref(), kind);
    assert!(docs.put("b", &serde_json::json!({"v": 1}), 0).await.unwrap());
    assert!(!docs.put("b", &serde_json::json!({"v": 9}), 0).await.unwrap(), "exists already");
    assert!(docs.put("a", &serde_json::json!({"v": 2}), 0).await.unwrap());
    let b = docs.get("b").await.unwrap().unwrap();
    assert_eq!((b.version, b.value["v"].as_i64()), (1, Some(1)));
    assert!(docs.put("b", &serde_json::json!({"v": 3}), 1).await.unwrap());
    assert!(!docs.put("b", &serde_json::json!({"v": 4}), 1).await.unwrap(), "a stale version loses");
    let b = docs.get("b").await.unwrap().unwrap();
    assert_eq!((b.version, b.value["v"].as_i64()), (2, Some(3)));
    let ids: Vec<String> = store.docs(kind).await.unwrap().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["a", "b"], "one partition, by id");
    assert!(docs.delete("a").await.unwrap());
    assert!(!docs.delete("a").await.unwrap());
    assert!(docs.get("a").await.unwrap().is_none());

    // Counters: added, read back by metric over a day range.
    let metric = "booked.doctor";
    let (d1, d2) = (NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(), NaiveDate::from_ymd_opt(2030, 1, 2).unwrap());
    let dim = unique("doc");
    let delta = |day, n| RollupDelta { metric, day, dim: dim.clone(), n };
    store.add_rollups(&[delta(d1, 2), delta(d2, 5), delta(d1, 1)]).await.unwrap();
    let rows: Vec<_> = store.rollups(metric, d1, d2).await.unwrap().into_iter().filter(|r| r.dim == dim).collect();
    assert_eq!(rows.iter().map(|r| (r.day, r.n)).collect::<Vec<_>>(), [(d1, 3), (d2, 5)]);
    assert!(store.rollups(metric, d2, d1).await.unwrap().is_empty(), "an empty range");

    // A booking write counts itself: a hold is one booking (by its doctor, on the local day it
    // was made), its payment one paid visit; writing the same rows again counts nothing.
    let doctor = DoctorId::new();
    let date = Utc::now().date_naive() + ChronoDuration::days(400);
    let session = sample_session(doctor, DepartmentId::new(), date, 2);
    store.put_sessions(std::slice::from_ref(&session)).await.unwrap();
    let mut book = SessionBook::new(session.clone(), [], vec![]);
    let (a, o) = sample_hold(&mut book, 0, AccountId::new(), &unique("person"));
    let hold = BookingWrite { appointments: vec![a.clone()], orders: vec![o.clone()], ..Default::default() };
    store.apply_booking(hold.clone()).await.unwrap();
    store.apply_booking(hold).await.unwrap();
    let made = hospital_domain::time::HospitalZone::default().local_date(a.created_at);
    let booked = store.rollups("booked.doctor", made, made).await.unwrap();
    assert_eq!(booked.iter().filter(|r| r.dim == doctor.to_string()).map(|r| r.n).sum::<i64>(), 1);
    // A hold naming its new rows (`created`: not read first) counts the same: one more.
    let (a2, o2) = sample_hold(&mut book, 0, AccountId::new(), &unique("person"));
    let created = [a2.id.0, o2.id.0].into();
    let hold2 = BookingWrite { appointments: vec![a2.clone()], orders: vec![o2], created, ..Default::default() };
    store.apply_booking(hold2).await.unwrap();
    let made2 = hospital_domain::time::HospitalZone::default().local_date(a2.created_at);
    let booked = store.rollups("booked.doctor", made.min(made2), made.max(made2)).await.unwrap();
    assert_eq!(booked.iter().filter(|r| r.dim == doctor.to_string()).map(|r| r.n).sum::<i64>(), 2);
    let slots = store.rollups("booked.slot", date, date).await.unwrap();
    assert!(slots.iter().any(|r| r.dim == "08:00" && r.n >= 1), "{slots:?}");
    let mut paid = a.clone();
    paid.apply(AppointmentEvent::Pay, Utc::now()).unwrap();
    let before: i64 = store.rollups("paid.total", date, date).await.unwrap().iter().map(|r| r.n).sum();
    store.apply_booking(BookingWrite { appointments: vec![paid], ..Default::default() }).await.unwrap();
    let after: i64 = store.rollups("paid.total", date, date).await.unwrap().iter().map(|r| r.n).sum();
    assert_eq!(after - before, 1);

    // Accounts, page by page: each once.
    let mut mine = Vec::new();
    for _ in 0..3 {
        let a = sample_account();
        store.create_account(&a).await.unwrap();
        mine.push(a.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.account_ids(after, 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().copied();
        seen.extend(page);
    }
    for id in &mine {
        assert_eq!(seen.iter().filter(|x| *x == id).count(), 1, "every account once");
    }
}
