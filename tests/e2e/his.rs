//! The hospital systems' integration API (issue 11) against the real binary: the HIS pushes a
//! finished visit (diagnosis, prescription, exam order), its record text and the exam's result,
//! signed over method, path, query and body. Pushing the same item twice makes one visit and
//! answers the same id; other content under a used external id is 409; a tampered signature, a
//! stale time and a replayed delivery are refused with their stable codes. The patient sees the
//! pushed visit in history and detail like a doctor-written one; another account cannot read
//! it; the diagnosis, the record and the result are nowhere on disk in clear. A pushed visit that
//! names an appointment booked here marks it `seen`, once.

use chrono::{Duration, Utc};
use hospital_gateway::http::exams::lab_signature_parts;
use reqwest::Response;
use serde_json::{json, Value};

use crate::booking_flow::{booking_opts, departments_with_doctors, person, staff};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};
use crate::reports::fresh_t;
use crate::visits::{booked, files_containing, session_today, status_becomes};

/// The HIS key these tests configure.
pub(crate) const HIS_SECRET: &str = "e2e-his-integration-secret-7d1e";
const DIAGNOSIS: &str = "急性化脓性扁桃体炎HIS";
const RECORD: &str = "HIS病历：咽痛2天，扁桃体Ⅱ度肿大，见脓性分泌物。";
const RESULT: &str = "白细胞 13.2×10^9/L 偏高，中性粒细胞比例升高";

/// `PUT path` with `body`, signed at `t` over `"<t>.PUT <path>\n<body>"` (or over `signed_as`).
pub(crate) async fn his_put_at(s: &TestServer, path: &str, body: &Value, t: i64, signed_as: Option<&str>) -> Response {
    let raw = serde_json::to_vec(body).unwrap();
    let target = signed_as.unwrap_or(path);
    let v = lab_signature_parts(HIS_SECRET.as_bytes(), t, &[b"PUT ", target.as_bytes(), b"\n", &raw]);
    s.client()
        .put(s.url(path))
        .header("content-type", "application/json")
        .header("X-His-Signature", format!("t={t},v1={v}"))
        .body(raw)
        .send()
        .await
        .expect("HIS push")
}

pub(crate) async fn his_put(s: &TestServer, path: &str, body: &Value) -> Response {
    his_put_at(s, path, body, fresh_t(), None).await
}

#[tokio::test]
async fn the_his_pushes_a_visit_record_and_result_once_signed_and_sealed() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_GATEWAY__HIS_WEBHOOK_SECRET", HIS_SECRET)).await;
    let (p1, p2) = (person(&s, 9301).await, person(&s, 9302).await);
    let account = s.get_json("/api/v1/me", Some(&p1.token)).await["id"].as_str().unwrap().to_string();
    let departments = departments_with_doctors(&s).await;
    let (_, doctors) = departments.iter().find(|(_, d)| !d.is_empty()).expect("a doctor");
    let started = Utc::now() - Duration::hours(2);
    let visit = json!({
        "account_id": account, "patient_id": p1.patient_id, "doctor_id": doctors[0], "room": "5诊室",
        "started_at": started, "finished_at": started + Duration::minutes(20),
        "consultation": {
            "chief_complaint": "咽痛2天",
            "diagnoses": [{ "text": DIAGNOSIS, "icd10": "J03.9" }],
            "prescription": [{ "drug": "头孢克肟分散片", "dose": "0.1g", "frequency": "bid", "days": 5,
                               "quantity": 1, "unit": "盒", "unit_price": 3260 }],
            "exam_orders": [{ "name": "血常规", "kind": "lab", "price": 2500 }],
        },
    });
    let path = "/api/v1/his/visits/HIS-V-20261129-001";

    // Refused before anything is made: no signature, another key, a stale time, a signature made
    // for another path, a body changed after signing.
    let unsigned = s.client().put(s.url(path)).header("content-type", "application/json").body(visit.to_string());
    assert_error(unsigned.send().await.unwrap(), 401, "signature_missing").await;
    let raw = serde_json::to_vec(&visit).unwrap();
    let t = fresh_t();
    let forged = lab_signature_parts(b"not-the-his-key", t, &[b"PUT ", path.as_bytes(), b"\n", &raw]);
    let r = s
        .client()
        .put(s.url(path))
        .header("content-type", "application/json")
        .header("X-His-Signature", format!("t={t},v1={forged}"))
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "signature_invalid").await;
    let stale = Utc::now().timestamp() - 301;
    assert_error(his_put_at(&s, path, &visit, stale, None).await, 401, "signature_expired").await;
    let elsewhere = his_put_at(&s, path, &visit, fresh_t(), Some("/api/v1/his/visits/HIS-V-OTHER")).await;
    assert_error(elsewhere, 401, "signature_invalid").await;
    let history = format!("/api/v1/me/patients/{}/visits", p1.patient_id);
    assert_eq!(s.get_json(&history, Some(&p1.token)).await["total"], 0, "nothing made by refused pushes");

    // The first push makes the visit (finished: its exam order became an exam).
    let t = fresh_t();
    let made = expect_json(his_put_at(&s, path, &visit, t, None).await, 201).await;
    let id = made["id"].as_str().expect("visit id").to_string();
    assert_eq!(made["status"], "finished", "{made}");
    let exam = made["exam_orders"][0]["exam_id"].as_str().expect("the order became an exam").to_string();
    // The very same delivery again: a replay.
    assert_error(his_put_at(&s, path, &visit, t, None).await, 401, "signature_replayed").await;
    // Pushed again (signed afresh): the same visit, nothing doubles.
    let again = expect_json(his_put(&s, path, &visit).await, 200).await;
    assert_eq!(again["id"], id.as_str());
    // Other content under the same external id: a clear 409, nothing changed.
    let mut changed = visit.clone();
    changed["consultation"]["diagnoses"][0]["text"] = json!("慢性咽炎");
    let err = assert_error(his_put(&s, path, &changed).await, 409, "external_id_reused").await;
    assert!(err["message"].as_str().unwrap().contains("HIS-V-20261129-001"), "{err}");
    // Bad content is refused naming the field, and claims nothing.
    let mut bad = visit.clone();
    bad["doctor_id"] = json!(uuid::Uuid::new_v4());
    let err = assert_error(his_put(&s, "/api/v1/his/visits/HIS-V-BAD", &bad).await, 422, "invalid_field").await;
    assert_eq!(err["field"], "doctor_id", "{err}");

    // The patient sees it like a doctor-written visit: once in the history, with the detail.
    let page = s.get_json(&history, Some(&p1.token)).await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], id.as_str());
    assert_eq!(page["items"][0]["diagnosis"], DIAGNOSIS);
    let found = s.get_json(&format!("{history}?q=J03"), Some(&p1.token)).await;
    assert_eq!(found["total"], 1, "search by ICD-10 code: {found}");
    let detail = s.get_json(&format!("/api/v1/me/visits/{id}"), Some(&p1.token)).await;
    assert_eq!(detail["visit"]["prescription"][0]["drug"], "头孢克肟分散片");
    assert_eq!(detail["exams"][0]["id"], exam.as_str(), "{detail}");
    assert_eq!(detail["exams"][0]["status"], "pending");

    // The record text, pushed on its own: once; other text under its id is 409.
    let record = json!({ "visit_external_id": "HIS-V-20261129-001", "text": RECORD });
    let rpath = "/api/v1/his/records/HIS-R-20261129-001";
    let v = expect_json(his_put(&s, rpath, &record).await, 201).await;
    assert_eq!(v["record"], RECORD);
    let v = expect_json(his_put(&s, rpath, &record).await, 200).await;
    assert_eq!(v["id"], id.as_str());
    let other = json!({ "visit_external_id": "HIS-V-20261129-001", "text": "改过的病历" });
    assert_error(his_put(&s, rpath, &other).await, 409, "external_id_reused").await;
    let unknown = json!({ "visit_external_id": "HIS-V-NEVER", "text": RECORD });
    let err = assert_error(his_put(&s, "/api/v1/his/records/HIS-R-X", &unknown).await, 422, "invalid_field").await;
    assert_eq!(err["field"], "visit_external_id");
    let detail = s.get_json(&format!("/api/v1/me/visits/{id}"), Some(&p1.token)).await;
    assert_eq!(detail["visit"]["record"], RECORD);

    // The exam's result: the exam is completed, once.
    let result = json!({ "exam_id": exam, "abnormal": true, "summary": RESULT });
    let epath = "/api/v1/his/exam-results/LIS-E-20261129-001";
    let e = expect_json(his_put(&s, epath, &result).await, 201).await;
    assert_eq!((e["status"].as_str(), e["abnormal"].as_bool()), (Some("completed"), Some(true)), "{e}");
    let e = expect_json(his_put(&s, epath, &result).await, 200).await;
    assert_eq!(e["id"], exam.as_str());
    let mut other = result.clone();
    other["abnormal"] = json!(false);
    assert_error(his_put(&s, epath, &other).await, 409, "external_id_reused").await;
    let mine = ok_json(s.get(&format!("/api/v1/me/exams/{exam}"), Some(&p1.token)).await).await;
    assert_eq!((mine["status"].as_str(), mine["summary"].as_str()), (Some("completed"), Some(RESULT)), "{mine}");

    // Another account reads none of it.
    for path in [
        format!("/api/v1/me/visits/{id}"),
        format!("/api/v1/me/visits/{id}/record.pdf"),
        format!("/api/v1/me/patients/{}/visits", p1.patient_id),
        format!("/api/v1/me/exams/{exam}"),
    ] {
        let body = assert_error(s.get(&path, Some(&p2.token)).await, 404, "not_found").await;
        assert!(!body.to_string().contains(DIAGNOSIS), "{path} leaked: {body}");
    }
    let own = s.get_json(&format!("/api/v1/me/patients/{}/visits", p2.patient_id), Some(&p2.token)).await;
    assert_eq!(own["total"], 0, "{own}");
    // A patient's token is no HIS signature.
    let r = crate::visits::put(&s, path, Some(&p2.token), visit.clone()).await;
    assert_error(r, 401, "signature_missing").await;

    // Sealed with the patient's key: neither the diagnosis, the record nor the exam's result is
    // on disk in clear.
    let data = s.stop();
    assert!(files_containing(data.path(), DIAGNOSIS.as_bytes()).is_empty(), "the diagnosis is stored in clear");
    assert!(files_containing(data.path(), "扁桃体Ⅱ度肿大".as_bytes()).is_empty(), "the record is stored in clear");
    assert!(files_containing(data.path(), "13.2×10^9/L".as_bytes()).is_empty(), "the result is stored in clear");
}

/// A visit the HIS pushes for an appointment booked here brings the appointment along, once: a
/// patient who went straight to the consulting room (never checked in here) is `seen`, and the
/// session's close (which makes no-shows of those never checked in) leaves them so; a repeat of
/// the push changes nothing; a second visit for the same appointment is refused.
#[tokio::test]
async fn a_his_visit_of_an_appointment_booked_here_marks_it_seen_once() {
    let opts = booking_opts()
        .env("HOSPITAL_GATEWAY__HIS_WEBHOOK_SECRET", HIS_SECRET)
        .env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)
        // Today's 18:00-18:30 session would close (its unseen visits missed) half an hour after
        // its end: from 19:00 in the hospital's zone this test ran into it. Closed a day later.
        .env("HOSPITAL_ACTORS__JOBS__SESSION_CLOSE_GRACE_SECS", 86_400);
    let s = TestServer::start(opts).await;
    let admin = staff(&s).await;
    let mut found = None;
    'outer: for (_, doctors) in departments_with_doctors(&s).await {
        for d in doctors {
            if let Some(made) = session_today(&s, &admin, &d).await {
                found = Some((d, made));
                break 'outer;
            }
        }
    }
    let (doctor, (session, slot)) = found.expect("a doctor free this evening");
    let (p1, p2) = (person(&s, 9311).await, person(&s, 9312).await);
    let a1 = booked(&s, &p1, &slot).await;
    let a2 = booked(&s, &p2, &slot).await;
    let account = s.get_json("/api/v1/me", Some(&p1.token)).await["id"].as_str().unwrap().to_string();

    // p1 was seen in the HIS without checking in here: the pushed visit names the appointment.
    let started = Utc::now() - Duration::minutes(30);
    let visit = json!({
        "account_id": account, "patient_id": p1.patient_id, "doctor_id": doctor, "room": "2诊室",
        "appointment_id": a1, "started_at": started, "finished_at": started + Duration::minutes(10),
        "consultation": { "chief_complaint": "头痛1天", "diagnoses": [{ "text": "紧张型头痛" }] },
    });
    let path = "/api/v1/his/visits/HIS-V-SEEN-001";
    let made = expect_json(his_put(&s, path, &visit).await, 201).await;
    assert_eq!((made["status"].as_str(), made["appointment_id"].as_str()), (Some("finished"), Some(a1.as_str())));
    let seen = status_becomes(&s, &p1, &a1, "seen").await;
    // Pushed again: the same visit, the appointment untouched.
    let again = expect_json(his_put(&s, path, &visit).await, 200).await;
    assert_eq!(again["id"], made["id"]);
    assert_eq!(s.get_json(&format!("/api/v1/appointments/{a1}"), Some(&p1.token)).await, seen, "changed once");
    // Another visit for the same appointment, under another id: refused, nothing changes.
    let r = his_put(&s, "/api/v1/his/visits/HIS-V-SEEN-002", &visit).await;
    assert_error(r, 409, "visit_exists").await;
    // An appointment of another patient cannot be named.
    let mut foreign = visit.clone();
    foreign["appointment_id"] = json!(a2);
    let err =
        assert_error(his_put(&s, "/api/v1/his/visits/HIS-V-SEEN-003", &foreign).await, 422, "invalid_field").await;
    assert_eq!(err["field"], "appointment_id");

    // The session closes: p2, who never came, is a no-show; p1 stays seen.
    expect_json(s.post_empty(&format!("/api/v1/admin/sessions/{session}/close"), Some(&admin)).await, 202).await;
    status_becomes(&s, &p2, &a2, "missed").await;
    assert_eq!(s.get_json(&format!("/api/v1/appointments/{a1}"), Some(&p1.token)).await["status"], "seen");
}
