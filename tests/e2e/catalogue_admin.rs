//! The catalogue set up by staff on a server with the demo data off (INFO-1, INFO-3, BOOK-9):
//! the first administrator is made with `hospital create-staff`; through the API they enter the
//! hospital, a department tree and a doctor, give the doctor a session from a weekly template;
//! each change is in the patient API at once, and a patient books the session. A scheduler may
//! not edit the catalogue; every change is audited.

use chrono::{Datelike, Duration as Days, Utc};
use serde_json::json;

use crate::booking_flow::{book_ok, booking_opts, person, set_release};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};

/// A data directory holding only a first administrator, made with the CLI.
pub(crate) fn dir_with_admin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::harness::cli(
        &["create-staff", "--username", "boss", "--name", "院办管理员", "--roles", "admin"],
        dir.path(),
    )
    .env("HOSPITAL_NEW_STAFF_PASSWORD", "First-admin-2026")
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

/// Uploads `body` as a doctor's photo with a declared type.
pub(crate) async fn put_photo(
    s: &TestServer,
    admin: &str,
    doctor: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    s.client()
        .put(s.url(&format!("/api/v1/admin/doctors/{doctor}/photo")))
        .bearer_auth(admin)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("upload")
}

/// A department with one attending physician: (department, doctor).
async fn clinic(s: &TestServer, admin: &str, parent: Option<&str>, name: &str) -> (String, String) {
    let body = json!({ "name": name, "parent_id": parent });
    let dep = expect_json(s.post("/api/v1/admin/departments", Some(admin), body).await, 201).await;
    let dep = dep["id"].as_str().unwrap().to_string();
    let body = json!({ "department_id": dep, "name": format!("{name}医生"), "title": "attending_physician" });
    let doctor = expect_json(s.post("/api/v1/admin/doctors", Some(admin), body).await, 201).await;
    (dep, doctor["id"].as_str().unwrap().to_string())
}

/// A session of `doctor` in two days, released now; its first two slots.
async fn session_of(s: &TestServer, admin: &str, doctor: &str) -> (String, Vec<String>, serde_json::Value) {
    let date = (Utc::now() + Days::days(2)).date_naive();
    let body = json!({
        "from": date, "to": date,
        "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "afternoon", "start": "14:00:00",
            "end": "15:00:00", "segment_minutes": 30, "quota": 5 }],
        "release_days_before": 7, "release_time": "08:00:00",
    });
    let made =
        expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(admin), body).await, 201).await;
    let session = made["created"][0].as_str().unwrap().to_string();
    set_release(s, admin, &session, Utc::now() - Days::minutes(1)).await;
    let sched = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={date}&to={date}"), None).await;
    let slots =
        sched["sessions"][0]["slots"].as_array().unwrap().iter().map(|x| x["slot_id"].as_str().unwrap().to_string());
    (session, slots.collect(), sched["sessions"][0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctors_photos_and_fees_and_departments_switched_off() {
    use crate::chat_images::png;
    // Images capped below the photos' own 2 MiB: the smaller cap applies.
    let opts = booking_opts().env("HOSPITAL_DEMO_DATA", false).env("HOSPITAL_OBJECTS__MAX_IMAGE_BYTES", 300_000);
    let s = TestServer::start(opts.data_dir(dir_with_admin())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let (root, _) = clinic(&s, &admin, None, "内科").await;
    let (cardio, doctor) = clinic(&s, &admin, Some(&root), "心内科").await;
    let (_, other_doctor) = clinic(&s, &admin, None, "眼科").await;

    // The doctor's own fee: in the patient API at once, and on new sessions; null goes back.
    let path = format!("/api/v1/doctors/{doctor}");
    assert_eq!(s.get_json(&path, None).await["fee"], 1500, "the attending physician's default");
    let admin_path = format!("/api/v1/admin/doctors/{doctor}");
    let d = ok_json(s.patch(&admin_path, Some(&admin), json!({ "own_fee": 4200 })).await).await;
    assert_eq!(d["own_fee"], 4200);
    assert_eq!(s.get_json(&path, None).await["fee"], 4200);
    ok_json(s.patch(&admin_path, Some(&admin), json!({ "own_fee": null })).await).await;
    let view = s.get_json(&path, None).await;
    assert_eq!((view["fee"].as_u64(), view.get("own_fee")), (Some(1500), None), "{view}");
    ok_json(s.patch(&admin_path, Some(&admin), json!({ "own_fee": 4200 })).await).await;
    let e =
        assert_error(s.patch(&admin_path, Some(&admin), json!({ "own_fee": -1 })).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "own_fee");
    let (_, slots, session) = session_of(&s, &admin, &doctor).await;
    assert_eq!(session["fee"], 4200, "a new session gets the doctor's own fee: {session}");

    // The photo: checked by content, stored, served with cache headers under a URL naming it.
    let photo = png(4096, 7);
    let d = ok_json(put_photo(&s, &admin, &doctor, "image/png", photo.clone()).await).await;
    let url = d["photo_url"].as_str().expect("a photo URL").to_string();
    assert_eq!(s.get_json(&path, None).await["photo_url"], url.as_str(), "in the patient API");
    let r = s.client().get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    let cache = r.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.starts_with("public") && cache.contains("immutable"), "{cache}");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(r.bytes().await.unwrap() == photo, "the bytes uploaded come back");
    let r = s.client().get(s.url(&url)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304, "a cached copy is still good");
    // Refused: a program renamed, a GIF (not a photo format here), too large, empty.
    let elf = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    assert_error(put_photo(&s, &admin, &doctor, "image/png", elf).await, 415, "unsupported_media_type").await;
    let gif = b"GIF89a\x01\0\x01\0\0\0\0".to_vec();
    assert_error(put_photo(&s, &admin, &doctor, "image/gif", gif).await, 415, "unsupported_media_type").await;
    let big = png(300_001, 1);
    let e = assert_error(put_photo(&s, &admin, &doctor, "image/png", big).await, 413, "payload_too_large").await;
    assert!(e["message"].as_str().unwrap().contains("300000"), "{e}");
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F'];
    jpeg.resize(3000, 9);
    assert_error(put_photo(&s, &admin, &doctor, "image/png", jpeg.clone()).await, 415, "unsupported_media_type").await;
    assert_eq!(s.get_json(&path, None).await["photo_url"], url.as_str(), "a refused upload changes nothing");
    // Replaced: the new URL serves the JPEG, the old one is gone.
    let d = ok_json(put_photo(&s, &admin, &doctor, "image/jpeg", jpeg.clone()).await).await;
    let new_url = d["photo_url"].as_str().unwrap().to_string();
    assert_ne!(new_url, url);
    let r = s.client().get(s.url(&new_url)).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/jpeg"));
    assert_error(s.get(&url, None).await, 404, "not_found").await;
    // A doctor with no photo has none to remove.
    assert_error(
        s.delete(&format!("/api/v1/admin/doctors/{other_doctor}/photo"), Some(&admin)).await,
        404,
        "not_found",
    )
    .await;

    // A booking made while the department is on.
    let p = person(&s, 7401).await;
    let kept = book_ok(&s, &p, &slots[0]).await;
    assert_eq!(kept["order"]["amount"], 4200, "the doctor's own fee is charged: {kept}");
    let kept_id = kept["appointment"]["id"].as_str().unwrap().to_string();

    // 内科 off: it, 心内科 below it, the doctor, the schedule, the photo leave the patient API.
    let r = s.patch(&format!("/api/v1/admin/departments/{root}"), Some(&admin), json!({ "enabled": false })).await;
    assert_eq!(ok_json(r).await["enabled"], false);
    let tree = s.get_json("/api/v1/departments", None).await.to_string();
    assert!(!tree.contains("内科") && tree.contains("眼科"), "{tree}");
    assert_error(s.get(&format!("/api/v1/departments/{cardio}"), None).await, 404, "not_found").await;
    assert_error(s.get(&path, None).await, 404, "not_found").await;
    assert_error(s.get(&format!("{path}/schedule"), None).await, 404, "not_found").await;
    assert_error(s.get(&new_url, None).await, 404, "not_found").await;
    let list = s.get_json("/api/v1/doctors", None).await.to_string();
    assert!(!list.contains(&doctor) && list.contains(&other_doctor), "{list}");
    let found = s.get_json("/api/v1/search?q=心内科", None).await;
    assert!(found["departments"].as_array().unwrap().is_empty() && found["doctors"].as_array().unwrap().is_empty());
    assert!(!s.get_json("/api/v1/doctors/popular", None).await.to_string().contains(&doctor));
    // New bookings refused with a clear code; the one made stays.
    let q = person(&s, 7402).await;
    let e = assert_error(
        s.post("/api/v1/appointments", Some(&q.token), json!({ "slot_id": slots[1], "patient_id": q.patient_id }))
            .await,
        409,
        "department_closed",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("department"), "{e}");
    let mine = s.get_json(&format!("/api/v1/appointments/{kept_id}"), Some(&p.token)).await;
    assert_eq!(mine["status"], "held", "an existing booking is kept: {mine}");
    // Staff still see it all, marked.
    let all = s.get_json("/api/v1/admin/catalogue", Some(&admin)).await;
    let closed: Vec<&str> = all["closed"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
    assert!(closed.contains(&root.as_str()) && closed.contains(&cardio.as_str()) && closed.len() == 2, "{all}");
    assert!(all["doctors"].to_string().contains(&doctor), "{all}");
    assert_eq!(all["departments"][0]["enabled"], false, "{all}");

    // Back on: visible again, bookable.
    ok_json(s.patch(&format!("/api/v1/admin/departments/{root}"), Some(&admin), json!({ "enabled": true })).await)
        .await;
    assert_eq!(s.get_json(&path, None).await["fee"], 4200);
    book_ok(&s, &q, &slots[1]).await;

    let log = s.get_json("/api/v1/admin/audit?limit=200", Some(&admin)).await;
    let actions: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["event"]["action"].as_str().unwrap()).collect();
    for a in ["doctor.photo", "department.disable", "department.enable"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}
