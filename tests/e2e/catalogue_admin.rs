//! The catalogue set up by staff on a server with the demo data off (INFO-1, INFO-3, BOOK-9):
//! the first administrator is made with `hospital create-staff`; through the API they enter the
//! hospital, a department tree and a doctor, give the doctor a session from a weekly template;
//! each change is in the patient API at once, and a patient books the session. A scheduler may
//! not edit the catalogue; every change is audited.

use chrono::{Datelike, Duration as Days, Utc};
use serde_json::json;
use std::process::Command;

use crate::booking_flow::{book_ok, booking_opts, person, set_release};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};

/// A data directory holding only a first administrator, made with the CLI.
pub(crate) fn dir_with_admin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hospital"))
        .env("HOSPITAL_LOG", "warn")
        // The tests' own setting (screenshots into docs/), not a server key.
        .env_remove("HOSPITAL_SCREENSHOTS")
        .env("HOSPITAL_NEW_STAFF_PASSWORD", "First-admin-2026")
        .args(["create-staff", "--username", "boss", "--name", "院办管理员", "--roles", "admin", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_build_the_catalogue_and_a_patient_books_it() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_DEMO_DATA", false).data_dir(dir_with_admin())).await;
    assert!(s.get_json("/api/v1/departments", None).await.as_array().unwrap().is_empty(), "no demo data");
    let admin = s.staff_login("boss", "First-admin-2026").await;

    let hospital = json!({
        "name": "滨江人民医院", "level": "三级甲等", "introduction": "始建于1952年。", "address": "滨江路1号",
        "phone": "0571-88888888", "latitude": 30.2, "longitude": 120.2, "service_hours": "08:00-17:30",
        "buildings": [{ "code": "A", "name": "门诊楼", "floors": [{ "level": 1, "rooms": ["101", "102"] }] }],
    });
    ok_json(s.request(reqwest::Method::PUT, "/api/v1/admin/hospital", Some(&admin), Some(hospital)).await).await;
    assert_eq!(s.get_json("/api/v1/hospital", None).await["name"], "滨江人民医院");

    let root =
        expect_json(s.post("/api/v1/admin/departments", Some(&admin), json!({ "name": "内科", "sort": 1 })).await, 201)
            .await;
    let root_id = root["id"].as_str().unwrap();
    let body = json!({ "name": "心内科", "parent_id": root_id, "location": "门诊楼2层" });
    let cardio = expect_json(s.post("/api/v1/admin/departments", Some(&admin), body).await, 201).await;
    let cardio_id = cardio["id"].as_str().unwrap();
    // The tree, at once.
    let tree = s.get_json("/api/v1/departments", None).await;
    let text = tree.to_string();
    assert!(text.contains("内科") && text.contains("心内科"), "{tree}");
    // A department cannot go below itself; an unknown parent is refused.
    let e = assert_error(
        s.patch(&format!("/api/v1/admin/departments/{root_id}"), Some(&admin), json!({ "parent_id": cardio_id })).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "parent_id");

    let body = json!({ "department_id": cardio_id, "name": "李建国", "title": "attending_physician", "specialties": ["高血压"] });
    let doctor = expect_json(s.post("/api/v1/admin/doctors", Some(&admin), body).await, 201).await;
    let doctor_id = doctor["id"].as_str().unwrap();
    assert_eq!(s.get_json(&format!("/api/v1/doctors/{doctor_id}"), None).await["name"], "李建国");
    let r = s
        .patch(&format!("/api/v1/admin/doctors/{doctor_id}"), Some(&admin), json!({ "title": "chief_physician" }))
        .await;
    ok_json(r).await;
    assert_eq!(s.get_json(&format!("/api/v1/doctors/{doctor_id}"), None).await["title"], "chief_physician");
    let found = s.get_json("/api/v1/search?q=李建国", None).await;
    assert!(found.to_string().contains(doctor_id), "search finds the new doctor: {found}");

    // A session from a weekly template, released now, in the patient API; a patient books it.
    let date = (Utc::now() + Days::days(2)).date_naive();
    let body = json!({
        "from": date, "to": date,
        "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "morning", "start": "08:00:00",
            "end": "09:00:00", "segment_minutes": 30, "quota": 5 }],
        "release_days_before": 7, "release_time": "08:00:00",
    });
    let made =
        expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor_id}/sessions"), Some(&admin), body).await, 201)
            .await;
    let session = made["created"][0].as_str().unwrap().to_string();
    set_release(&s, &admin, &session, Utc::now() - Days::minutes(1)).await;
    let sched = s.get_json(&format!("/api/v1/doctors/{doctor_id}/schedule?from={date}&to={date}"), None).await;
    let slot = sched["sessions"][0]["slots"][0]["slot_id"].as_str().unwrap().to_string();
    let p = person(&s, 7301).await;
    let booked = book_ok(&s, &p, &slot).await;
    assert_eq!(booked["order"]["amount"], 5000, "the chief physician's fee: {booked}");

    // A scheduler may not edit the catalogue.
    let body =
        json!({ "username": "wang_sched", "name": "王排班", "password": "Sched-pass-2026", "roles": ["scheduler"] });
    expect_json(s.post("/api/v1/admin/staff", Some(&admin), body).await, 201).await;
    let sched_token = s.staff_login("wang_sched", "Sched-pass-2026").await;
    assert_error(
        s.post("/api/v1/admin/departments", Some(&sched_token), json!({ "name": "外科" })).await,
        403,
        "forbidden",
    )
    .await;

    let log = s.get_json("/api/v1/admin/audit?limit=200", Some(&admin)).await;
    let actions: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["event"]["action"].as_str().unwrap()).collect();
    for a in ["hospital.update", "department.create", "doctor.create", "doctor.update", "schedule.write"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}
