//! The catalogue and schedules.

use chrono::{Duration as ChronoDuration, NaiveDate, NaiveTime, Utc};
use hospital_domain::catalog::{Department, Doctor, DoctorTitle, Hospital};
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::*;
use std::sync::Arc;

use super::samples::*;
use crate::traits::DataStore;

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
        // Switched off: the flag is kept like any other field.
        enabled: false,
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
        own_fee: Some(hospital_domain::Fen::new(4200)),
        photo: Some("doctors/a/b.png".into()),
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
