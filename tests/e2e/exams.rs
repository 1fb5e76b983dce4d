//! Exam status (REC-4) end to end against the real binary: staff book an exam; the lab system's
//! signed webhook moves it to in progress, then to completed with an abnormal result; the patient
//! reads the status, the result preview and the two messages (报告已出, and the alert). Bad
//! signatures, stale timestamps and replayed signatures are refused with 401 and change nothing;
//! a backwards move is 409; another account sees 404. (The live push is tested by the WebSocket
//! work; here the stored messages are checked.)

use chrono::Utc;
use hospital_gateway::http::exams::{lab_signature_header, SANDBOX_LAB_WEBHOOK_SECRET};
use reqwest::Response;
use serde_json::{json, Value};
use std::sync::Mutex;

use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, TestServer};

/// The secret this test configures for the lab webhook (`gateway.lab_webhook_secret`).
const LAB_SECRET: &str = "e2e-lab-webhook-secret-7f3a";

fn opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", 50)
        .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1)
        .env("HOSPITAL_GATEWAY__LAB_WEBHOOK_SECRET", LAB_SECRET)
}

/// A valid 18-character resident ID number for `n` (region 110105, GB 11643 check character).
fn id_card(n: u32) -> String {
    let first17 = format!("11010519800101{:03}", 100 + n % 900);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    format!("{first17}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

struct Patient {
    token: String,
    account_id: String,
    patient_id: String,
}

async fn patient(s: &TestServer, n: u32) -> Patient {
    let token = s.login(&phone(n)).await;
    let me = s.get_json("/api/v1/me", Some(&token)).await;
    let body = json!({ "name": "李四", "id_card_no": id_card(n), "relation": "self" });
    let p = expect_json(s.post("/api/v1/me/patients", Some(&token), body).await, 201).await;
    Patient {
        token,
        account_id: me["id"].as_str().expect("account id").to_string(),
        patient_id: p["id"].as_str().expect("patient id").to_string(),
    }
}

/// Sends the lab webhook with `body` exactly as given, signed (or not) by `signature`.
async fn lab_raw(s: &TestServer, exam: &str, body: &str, signature: Option<&str>) -> Response {
    let mut rb = s
        .client()
        .post(s.url(&format!("/api/v1/lab/exams/{exam}/status")))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(sig) = signature {
        rb = rb.header("X-Lab-Signature", sig);
    }
    rb.send().await.unwrap_or_else(|e| panic!("lab webhook: {e}\n{}", s.stderr()))
}

/// A timestamp for a new delivery: now, but never one used before, so that two deliveries of
/// the same body within one second are two signatures (the same one would be a replay).
fn fresh_t() -> i64 {
    static LAST: Mutex<i64> = Mutex::new(i64::MAX);
    let mut last = LAST.lock().unwrap();
    *last = Utc::now().timestamp().min(*last - 1);
    *last
}

/// A correctly signed delivery; returns the response and the signature used.
async fn lab(s: &TestServer, exam: &str, body: &Value) -> (Response, String) {
    let raw = body.to_string();
    let sig = lab_signature_header(LAB_SECRET.as_bytes(), fresh_t(), raw.as_bytes());
    (lab_raw(s, exam, &raw, Some(&sig)).await, sig)
}

async fn my_exam(s: &TestServer, p: &Patient, exam: &str) -> Value {
    s.get_json(&format!("/api/v1/me/exams/{exam}"), Some(&p.token)).await
}

/// The account's messages about `exam`, newest first.
async fn exam_messages(s: &TestServer, p: &Patient, exam: &str) -> Vec<Value> {
    let all = s.get_json("/api/v1/me/messages", Some(&p.token)).await;
    all.as_array().expect("a list").iter().filter(|m| m["related"] == exam).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exam_status_through_staff_and_the_signed_lab_webhook() {
    let s = TestServer::start(opts()).await;
    let a = patient(&s, 7001).await;
    let b = patient(&s, 7002).await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;

    // Staff book an exam; the patient must exist under that account, and only staff may book.
    let create =
        json!({ "account_id": a.account_id, "patient_id": a.patient_id, "name": "胸部CT平扫", "kind": "imaging" });
    assert_error(s.post("/api/v1/admin/exams", Some(&a.token), create.clone()).await, 403, "forbidden").await;
    let wrong =
        json!({ "account_id": b.account_id, "patient_id": a.patient_id, "name": "胸部CT平扫", "kind": "imaging" });
    assert_error(s.post("/api/v1/admin/exams", Some(&nurse), wrong).await, 404, "not_found").await;
    let e = expect_json(s.post("/api/v1/admin/exams", Some(&nurse), create).await, 201).await;
    let id = e["id"].as_str().expect("exam id").to_string();
    assert_eq!((e["status"].as_str(), e["status_label"].as_str()), (Some("pending"), Some("待检查")), "{e}");
    assert_eq!(e["abnormal"], false);
    assert!(e["summary"].is_null());
    let listed = s.get_json("/api/v1/me/exams", Some(&a.token)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());

    // The lab system: pending -> in progress.
    let (r, _) = lab(&s, &id, &json!({ "status": "in_progress" })).await;
    let v = ok_json(r).await;
    assert_eq!((v["status"].as_str(), v["status_label"].as_str()), (Some("in_progress"), Some("检查中")), "{v}");
    assert_eq!(my_exam(&s, &a, &id).await["status"], "in_progress");

    // Refused deliveries change nothing: each is 401 and the exam stays in progress.
    let done =
        json!({ "status": "completed", "abnormal": true, "summary": "右肺上叶见磨玻璃结节，约8mm，建议3个月后复查" });
    let raw = done.to_string();
    let now = fresh_t();
    let forged = lab_signature_header(b"not-the-secret", now, raw.as_bytes());
    assert_error(lab_raw(&s, &id, &raw, Some(&forged)).await, 401, "signature_invalid").await;
    let dev = lab_signature_header(SANDBOX_LAB_WEBHOOK_SECRET.as_bytes(), now, raw.as_bytes());
    assert_error(lab_raw(&s, &id, &raw, Some(&dev)).await, 401, "signature_invalid").await;
    let other_body = lab_signature_header(LAB_SECRET.as_bytes(), now, br#"{"status":"completed"}"#);
    assert_error(lab_raw(&s, &id, &raw, Some(&other_body)).await, 401, "signature_invalid").await;
    let stale = lab_signature_header(LAB_SECRET.as_bytes(), now - 301, raw.as_bytes());
    assert_error(lab_raw(&s, &id, &raw, Some(&stale)).await, 401, "signature_expired").await;
    let future = lab_signature_header(LAB_SECRET.as_bytes(), now + 600, raw.as_bytes());
    assert_error(lab_raw(&s, &id, &raw, Some(&future)).await, 401, "signature_expired").await;
    assert_error(lab_raw(&s, &id, &raw, None).await, 401, "signature_missing").await;
    assert_error(lab_raw(&s, &id, &raw, Some("t=1,v1=abc")).await, 401, "signature_missing").await;
    let still = my_exam(&s, &a, &id).await;
    assert_eq!(
        (still["status"].as_str(), &still["abnormal"], &still["summary"]),
        (Some("in_progress"), &json!(false), &Value::Null)
    );
    assert!(exam_messages(&s, &a, &id).await.is_empty(), "no message before the result");

    // In progress -> completed, abnormal: the exam, then two messages.
    let (r, sig) = lab(&s, &id, &done).await;
    let v = ok_json(r).await;
    assert_eq!((v["status"].as_str(), v["status_label"].as_str()), (Some("completed"), Some("已完成")), "{v}");
    assert_eq!(v["abnormal"], true);
    assert!(v["completed_at"].is_string());

    // The same signature again (a replay, even of an accepted delivery): 401, nothing changes.
    let before = my_exam(&s, &a, &id).await;
    assert_error(lab_raw(&s, &id, &raw, Some(&sig)).await, 401, "signature_replayed").await;
    assert_eq!(my_exam(&s, &a, &id).await, before);

    // The patient sees the status, the preview, and the two messages.
    let mine = my_exam(&s, &a, &id).await;
    assert_eq!(mine["status"], "completed");
    assert_eq!(mine["abnormal"], true);
    assert_eq!(mine["summary"], "右肺上叶见磨玻璃结节，约8mm，建议3个月后复查");
    assert_eq!(mine["name"], "胸部CT平扫");
    let msgs = exam_messages(&s, &a, &id).await;
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[0]["title"], "检查结果异常提醒", "the alert is the newest: {msgs:?}");
    assert_eq!(msgs[0]["alert"], true);
    assert_eq!(msgs[0]["kind"], "report_ready");
    // The finding itself stays behind the login (no medical result in a message's text, which
    // also goes out by SMS and WeChat): the message says where to look.
    assert!(msgs[0]["body"].as_str().is_some_and(|b| !b.contains("磨玻璃结节") && b.contains("我的检查")), "{msgs:?}");
    assert_eq!(msgs[1]["title"], "检查报告已出");
    assert_eq!(msgs[1]["alert"], false);
    assert_eq!(msgs[1]["kind"], "report_ready");

    // Never backwards: 409 from staff and from the lab; a result without completion is 422.
    let back = json!({ "status": "in_progress" });
    let r = s.post(&format!("/api/v1/admin/exams/{id}/status"), Some(&nurse), back.clone()).await;
    assert_error(r, 409, "invalid_exam_transition").await;
    let (r, _) = lab(&s, &id, &back).await;
    assert_error(r, 409, "invalid_exam_transition").await;
    let (r, _) = lab(&s, &id, &json!({ "status": "completed", "abnormal": false, "summary": "正常" })).await;
    assert_error(r, 409, "invalid_exam_transition").await;
    assert_eq!(my_exam(&s, &a, &id).await, before, "refused moves change nothing");
    assert_eq!(exam_messages(&s, &a, &id).await.len(), 2, "and add no message");
    // Resending the exact current state is a no-op that answers the exam (a retry).
    let (r, _) = lab(&s, &id, &done).await;
    assert_eq!(ok_json(r).await["status"], "completed");
    assert_eq!(exam_messages(&s, &a, &id).await.len(), 2, "a retry does not repeat the messages");

    // Another account: 404 for the exam, an empty list; patients cannot use the staff endpoint.
    assert_error(s.get(&format!("/api/v1/me/exams/{id}"), Some(&b.token)).await, 404, "not_found").await;
    assert_eq!(s.get_json("/api/v1/me/exams", Some(&b.token)).await, json!([]));
    let r = s.post(&format!("/api/v1/admin/exams/{id}/status"), Some(&b.token), back).await;
    assert_error(r, 403, "forbidden").await;

    // A lab item may skip 检查中; an imaging item may not; a result only with completed.
    let lab_item = json!({ "account_id": a.account_id, "patient_id": a.patient_id, "name": "血常规", "kind": "lab" });
    let blood = expect_json(s.post("/api/v1/admin/exams", Some(&nurse), lab_item).await, 201).await;
    let blood_id = blood["id"].as_str().unwrap().to_string();
    let (r, _) = lab(&s, &blood_id, &json!({ "status": "in_progress", "summary": "x" })).await;
    let err = assert_error(r, 422, "invalid_field").await;
    assert_eq!(err["field"], "summary");
    let r = s
        .post(
            &format!("/api/v1/admin/exams/{blood_id}/status"),
            Some(&nurse),
            json!({ "status": "completed", "summary": "各项指标正常" }),
        )
        .await;
    let v = ok_json(r).await;
    assert_eq!((v["status"].as_str(), &v["abnormal"]), (Some("completed"), &json!(false)));
    let blood_msgs = exam_messages(&s, &a, &blood_id).await;
    assert_eq!(blood_msgs.len(), 1, "a normal result: the report message only: {blood_msgs:?}");
    assert_eq!(blood_msgs[0]["alert"], false);
    let ct = json!({ "account_id": a.account_id, "patient_id": a.patient_id, "name": "头颅MRI", "kind": "imaging" });
    let mri = expect_json(s.post("/api/v1/admin/exams", Some(&nurse), ct).await, 201).await;
    let (r, _) = lab(&s, mri["id"].as_str().unwrap(), &json!({ "status": "completed" })).await;
    assert_error(r, 409, "invalid_exam_transition").await;

    // Newest first; an unknown exam is 404 to a correctly signed delivery.
    let listed = s.get_json("/api/v1/me/exams", Some(&a.token)).await;
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["头颅MRI", "血常规", "胸部CT平扫"]);
    let (r, _) = lab(&s, &uuid_like(), &json!({ "status": "in_progress" })).await;
    assert_error(r, 404, "not_found").await;
}

/// An exam id that does not exist.
fn uuid_like() -> String {
    "0190f1a2-0000-7000-8000-000000000000".to_string()
}
