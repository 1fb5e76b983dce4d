//! Report files (REC-4, issue 11 must-show 3) end to end against the real binary, with a real
//! S3-compatible server (moto) and with the data directory: after a real visit whose exam order
//! booked an exam, the lab uploads a PDF report and PACS a DICOM file through the signed
//! integration API (a bad or replayed signature refused, a repeated external id stored once);
//! the bytes in the bucket hold no plaintext; the patient lists them and downloads through a
//! signed link (whole, by range, with cache headers) that expires; a share link works without an
//! account until the patient revokes it. Another patient, a doctor of another department and a
//! patient's token on the doctor's route are refused with nothing leaked; the treating doctor's
//! read is audited once and shows in the patient's access history (not in another's).

use chrono::Utc;
use hospital_gateway::http::exams::lab_signature_parts;
use hospital_testkit::S3Server;
use reqwest::Response;
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;

use crate::booking_flow::{booking_opts, departments_with_doctors, person, staff, Person};
use crate::harness::{assert_error, expect_json, ok_json, Opts, TestServer};
use crate::visits::{booked, doctor_login, files_containing, put, session_today};

/// The lab webhook's secret these tests configure.
pub(crate) const LAB_SECRET: &str = "e2e-reports-lab-secret-51c2";
/// Text inside the uploaded PDF that must never be stored in clear.
const PLAIN: &str = "REPORT-PLAINTEXT 右下肺斑片影";
pub(crate) const DIAGNOSIS: &str = "社区获得性肺炎";

pub(crate) fn opts() -> Opts {
    booking_opts().env("HOSPITAL_GATEWAY__LAB_WEBHOOK_SECRET", LAB_SECRET).env("HOSPITAL_OBJECTS__LINK_TTL_SECS", 3)
}

fn s3_opts(s3: &S3Server) -> Opts {
    opts().s3(s3)
}

/// A patient seen by a doctor: the visit finished, its exam order booked as an exam.
pub(crate) struct Treated {
    pub admin: String,
    pub p1: Person,
    /// Another account (with a patient of its own), never seen.
    pub p2: Person,
    /// The treating doctor, and a doctor of another department.
    pub dr: String,
    pub other: String,
    pub visit: String,
    pub exam: String,
}

/// Books, pays, checks in, and has the doctor call, write (a prescription and an exam order)
/// and finish the visit. `n` picks the phones (n, n + 1) and staff user names.
pub(crate) async fn treated(s: &TestServer, n: u32) -> Treated {
    let admin = staff(s).await;
    let departments = departments_with_doctors(s).await;
    let mut found = None;
    'outer: for (dept, doctors) in &departments {
        for d in doctors {
            if let Some(made) = session_today(s, &admin, d).await {
                found = Some((dept.clone(), d.clone(), made));
                break 'outer;
            }
        }
    }
    let (dept, doctor, (session, slot)) = found.expect("a doctor free this evening");
    let other_doctor =
        departments.iter().find(|(d, ds)| *d != dept && !ds.is_empty()).map(|(_, ds)| ds[0].clone()).expect("another");
    let dr = doctor_login(s, &admin, &format!("dr.rep{n}"), &doctor).await;
    let other = doctor_login(s, &admin, &format!("dr.oth{n}"), &other_doctor).await;
    let (p1, p2) = (person(s, n).await, person(s, n + 1).await);
    let a1 = booked(s, &p1, &slot).await;
    ok_json(s.post_empty(&format!("/api/v1/appointments/{a1}/check-in"), Some(&p1.token)).await).await;
    let call = json!({ "room": "3诊室" });
    let called = ok_json(s.post(&format!("/api/v1/doctor/sessions/{session}/call-next"), Some(&dr), call).await).await;
    let visit = called["visit"]["id"].as_str().expect("a visit").to_string();
    ok_json(s.post_empty(&format!("/api/v1/doctor/visits/{visit}/start"), Some(&dr)).await).await;
    let form = json!({
        "chief_complaint": "发热、咳嗽3天",
        "diagnoses": [{ "text": DIAGNOSIS, "icd10": "J18.9" }],
        "prescription": [{ "drug": "阿莫西林胶囊", "spec": "0.25g*24粒", "dose": "0.5g", "route": "口服",
                           "frequency": "tid", "days": 5, "quantity": 2, "unit": "盒", "unit_price": 1850 }],
        "exam_orders": [{ "name": "胸部CT平扫", "kind": "imaging", "price": 28000 }],
        "record": "患者3天前受凉后发热，最高39℃。",
    });
    ok_json(put(s, &format!("/api/v1/doctor/visits/{visit}"), Some(&dr), form).await).await;
    let done = ok_json(s.post_empty(&format!("/api/v1/doctor/visits/{visit}/finish"), Some(&dr)).await).await;
    let exam = done["exam_orders"][0]["exam_id"].as_str().expect("the order became an exam").to_string();
    Treated { admin, p1, p2, dr, other, visit, exam }
}

/// A timestamp never used before (two deliveries within a second are two signatures).
pub(crate) fn fresh_t() -> i64 {
    static LAST: Mutex<i64> = Mutex::new(i64::MAX);
    let mut last = LAST.lock().unwrap();
    *last = Utc::now().timestamp().min(*last - 1);
    *last
}

/// Percent-encodes a query value (everything but unreserved ASCII).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The upload's path and query for an exam's report.
pub(crate) fn upload_target(exam: &str, external_id: &str, title: &str, source: &str) -> String {
    format!("/api/v1/lab/exams/{exam}/reports/{external_id}?title={}&source={source}", enc(title))
}

/// Sends an upload to `target` signed over `signed_target` (normally the same), or unsigned.
async fn upload_raw(
    s: &TestServer,
    target: &str,
    signed_target: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (Response, Option<String>) {
    let mut rb = s.client().put(s.url(target)).header("content-type", content_type).body(body.to_vec());
    let mut sig = None;
    if let Some(t) = signed_target {
        let ts = fresh_t();
        let v = lab_signature_parts(LAB_SECRET.as_bytes(), ts, &[t.as_bytes(), b"\n", body]);
        let h = format!("t={ts},v1={v}");
        rb = rb.header("X-Lab-Signature", &h);
        sig = Some(h);
    }
    (rb.send().await.expect("upload"), sig)
}

pub(crate) async fn upload(s: &TestServer, target: &str, content_type: &str, body: &[u8]) -> Response {
    upload_raw(s, target, Some(target), content_type, body).await.0
}

/// The lab's status webhook, signed.
pub(crate) async fn lab_status(s: &TestServer, exam: &str, body: Value) -> Value {
    let body = body.to_string();
    let sig = hospital_gateway::http::exams::lab_signature_header(LAB_SECRET.as_bytes(), fresh_t(), body.as_bytes());
    let r = s
        .client()
        .post(s.url(&format!("/api/v1/lab/exams/{exam}/status")))
        .header("content-type", "application/json")
        .header("X-Lab-Signature", sig)
        .body(body)
        .send()
        .await
        .expect("lab webhook");
    ok_json(r).await
}

pub(crate) fn pdf() -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend_from_slice(format!("BT ({PLAIN}) Tj ET\n").as_bytes());
    v.extend((0..4000).map(|i| b'a' + (i % 26) as u8));
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

fn dicom() -> Vec<u8> {
    let mut v = vec![0u8; 128];
    v.extend_from_slice(b"DICM");
    v.extend_from_slice(format!("PatientName {PLAIN}").as_bytes());
    v.extend(std::iter::repeat_n(7u8, 2000));
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every object in the moto bucket: (key, raw bytes), read straight from the server.
async fn bucket_objects(s3: &S3Server) -> Vec<(String, Vec<u8>)> {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("{}/{}", s3.endpoint(), s3.bucket);
    let list = http.get(format!("{base}?list-type=2")).send().await.unwrap().text().await.unwrap();
    let mut out = Vec::new();
    for part in list.split("<Key>").skip(1) {
        let key = part.split("</Key>").next().unwrap().to_string();
        let bytes = http.get(format!("{base}/{key}")).send().await.unwrap().bytes().await.unwrap().to_vec();
        out.push((key, bytes));
    }
    out
}

/// Everything must-show 3 asks, on whichever backend the server runs; returns the treated
/// patient's report ids.
async fn exercise(s: &TestServer) -> (Treated, Vec<String>) {
    let t = treated(s, 7301).await;
    let p = &t.p1;
    // The lab completes the exam (the result preview), then uploads its report.
    lab_status(s, &t.exam, json!({ "status": "in_progress" })).await;
    lab_status(s, &t.exam, json!({ "status": "completed", "abnormal": true, "summary": "右下肺炎症" })).await;

    let body = pdf();
    let target = upload_target(&t.exam, "LIS-2026-0001", "胸部CT报告", "lab");
    // Unsigned, signed over another title, and for an exam that does not exist: refused.
    assert_error(upload_raw(s, &target, None, "application/pdf", &body).await.0, 401, "signature_missing").await;
    let forged = upload_target(&t.exam, "LIS-2026-0001", "别的标题", "lab");
    assert_error(upload_raw(s, &target, Some(&forged), "application/pdf", &body).await.0, 401, "signature_invalid")
        .await;
    let nowhere = upload_target(&uuid::Uuid::new_v4().to_string(), "LIS-X", "x", "lab");
    assert_error(upload(s, &nowhere, "application/pdf", &body).await, 404, "not_found").await;
    let png_claim = upload_target(&t.exam, "LIS-2026-0009", "胸部CT报告", "lab");
    assert_eq!(upload(s, &png_claim, "image/png", &body).await.status().as_u16(), 415, "declared type checked");

    let (r, sig) = upload_raw(s, &target, Some(&target), "application/pdf", &body).await;
    let first = expect_json(r, 201).await;
    let report = first["id"].as_str().unwrap().to_string();
    assert_eq!(
        (first["title"].as_str(), first["content_type"].as_str()),
        (Some("胸部CT报告"), Some("application/pdf"))
    );
    assert_eq!(first["size"].as_u64(), Some(body.len() as u64));
    assert_eq!(first["visit_id"], t.visit.as_str(), "linked to the visit that ordered the exam: {first}");
    assert_eq!(first["summary"], "右下肺炎症", "the result preview: {first}");
    // The same delivery again is a replay; the same external id, signed afresh, is stored once.
    let replay = s
        .client()
        .put(s.url(&target))
        .header("content-type", "application/pdf")
        .header("X-Lab-Signature", sig.unwrap())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(replay, 401, "signature_replayed").await;
    let again = expect_json(upload(s, &target, "application/pdf", &body).await, 200).await;
    assert_eq!(again["id"], report.as_str(), "idempotent by external id");
    let dcm_target = upload_target(&t.exam, "PACS-1.2.840.1", "胸部CT影像", "pacs");
    let dcm = expect_json(upload(s, &dcm_target, "application/dicom", &dicom()).await, 201).await;
    assert_eq!(dcm["content_type"], "application/dicom");
    let dcm_id = dcm["id"].as_str().unwrap().to_string();

    // The patient's list.
    let list_path = format!("/api/v1/me/patients/{}/reports", p.patient_id);
    let list = ok_json(s.get(&list_path, Some(&p.token)).await).await;
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "two reports, none doubled: {list}");
    assert!(ids.contains(&report.as_str()) && ids.contains(&dcm_id.as_str()));

    // A signed link: whole, by range, cached privately no longer than it lives; then expired.
    let got = ok_json(s.get(&format!("/api/v1/me/reports/{report}"), Some(&p.token)).await).await;
    let url = got["url"].as_str().unwrap().to_string();
    let r = s.client().get(s.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let cache = r.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.starts_with("private, max-age="), "{cache}");
    assert!(r.headers()["etag"].to_str().unwrap().starts_with('"'));
    assert_eq!(r.bytes().await.unwrap(), body, "the plaintext, decrypted by the server");
    let r = s.client().get(s.url(&url)).header("range", "bytes=0-8").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 0-8/{}", body.len()));
    assert_eq!(&r.bytes().await.unwrap()[..], b"%PDF-1.7\n");
    let d = ok_json(s.get(&format!("/api/v1/me/reports/{dcm_id}"), Some(&p.token)).await).await;
    let r = s.client().get(s.url(d["url"].as_str().unwrap())).send().await.unwrap();
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"), "DICOM is saved");
    assert_eq!(r.bytes().await.unwrap(), dicom(), "stored as it came");
    let expires = chrono::DateTime::parse_from_rfc3339(got["expires_at"].as_str().unwrap()).unwrap().timestamp();
    while Utc::now().timestamp() <= expires {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_error(s.client().get(s.url(&url)).send().await.unwrap(), 403, "link_expired").await;

    // A share link: works without an account, until revoked.
    let short = json!({ "expires_in_secs": 10 });
    let e = assert_error(
        s.post(&format!("/api/v1/me/reports/{report}/shares"), Some(&p.token), short).await,
        422,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "expires_in_secs");
    let made = expect_json(
        s.post(&format!("/api/v1/me/reports/{report}/shares"), Some(&p.token), json!({ "expires_in_secs": 3600 }))
            .await,
        201,
    )
    .await;
    let share_url = made["url"].as_str().unwrap().to_string();
    let share_id = made["share"]["id"].as_str().unwrap().to_string();
    let r = s.client().get(s.url(&share_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.bytes().await.unwrap(), body);
    let wrong = format!("/api/v1/shared/{share_id}?token={}", "0".repeat(64));
    assert_error(s.client().get(s.url(&wrong)).send().await.unwrap(), 404, "not_found").await;
    let shares = ok_json(s.get(&format!("/api/v1/me/reports/{report}/shares"), Some(&p.token)).await).await;
    assert_eq!(shares[0]["state"], "active", "{shares}");
    assert!(!shares.to_string().contains(&share_url[share_url.len() - 64..]), "the token is shown only once");

    // Another patient, a doctor of another department: refused everywhere, nothing leaked.
    let other_paths = [
        list_path.clone(),
        format!("/api/v1/me/reports/{report}"),
        format!("/api/v1/me/reports/{report}/shares"),
        format!("/api/v1/me/patients/{}/reports", t.p2.patient_id),
    ];
    for path in &other_paths[..3] {
        let e = assert_error(s.get(path, Some(&t.p2.token)).await, 404, "not_found").await;
        assert!(!e.to_string().contains("胸部"), "{e}");
        let r = s.get(path, Some(&t.other)).await;
        assert_eq!(r.status().as_u16(), 403, "a doctor's token on a patient's route: {path}");
    }
    assert_eq!(ok_json(s.get(&other_paths[3], Some(&t.p2.token)).await).await, json!([]), "p2 has no reports");
    let share_body = json!({ "expires_in_secs": 3600 });
    let r = s.post(&format!("/api/v1/me/reports/{report}/shares"), Some(&t.p2.token), share_body).await;
    assert_error(r, 404, "not_found").await;
    assert_error(s.delete(&format!("/api/v1/me/shares/{share_id}"), Some(&t.p2.token)).await, 404, "not_found").await;
    let doctor_path = format!("/api/v1/doctor/reports/{report}");
    assert_error(s.get(&doctor_path, Some(&t.other)).await, 404, "not_found").await;
    assert_error(s.get(&doctor_path, Some(&t.p1.token)).await, 403, "forbidden").await;
    assert_error(s.get(&doctor_path, Some(&t.admin)).await, 403, "forbidden").await;

    // The treating doctor reads it (audited), through a signed link.
    let read = ok_json(s.get(&doctor_path, Some(&t.dr)).await).await;
    let r = s.client().get(s.url(read["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), body);
    let audit = ok_json(s.get("/api/v1/admin/audit?action=report.read", Some(&t.admin)).await).await;
    let hits: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{audit}"))
        .iter()
        .filter(|e| e.to_string().contains(&report))
        .collect();
    assert_eq!(hits.len(), 1, "one audit entry for the one read: {audit}");

    // The patient's access history lists that read: who (masked), their role, what, when. Another
    // account's history does not show it, nor may it ask for this patient's.
    let history = ok_json(s.get("/api/v1/me/access-history", Some(&p.token)).await).await;
    let reads: Vec<&Value> =
        history["entries"].as_array().unwrap().iter().filter(|e| e["target_id"] == report.as_str()).collect();
    assert_eq!(reads.len(), 1, "{history}");
    assert_eq!(reads[0]["action"], "report.read");
    assert_eq!(reads[0]["action_label"], "查看检查报告");
    assert_eq!(reads[0]["staff_name"], "李**", "the name is masked: {history}");
    assert_eq!(reads[0]["roles"], json!(["doctor"]));
    assert_eq!(reads[0]["patient_id"], p.patient_id.as_str());
    assert!(reads[0]["at"].as_str().is_some());
    assert!(!history.to_string().contains("visit.call"), "only reads are listed: {history}");
    let mine = format!("/api/v1/me/access-history?patient_id={}", p.patient_id);
    assert_eq!(ok_json(s.get(&mine, Some(&p.token)).await).await["entries"].as_array().unwrap().len(), 1);
    let theirs = ok_json(s.get("/api/v1/me/access-history", Some(&t.p2.token)).await).await;
    assert_eq!(theirs["entries"], json!([]), "another account's history: {theirs}");
    assert_error(s.get(&mine, Some(&t.p2.token)).await, 404, "not_found").await;
    assert_error(s.get(&mine, Some(&t.other)).await, 403, "forbidden").await;

    // Revoked: refused at once; revoking again changes nothing.
    let revoked = ok_json(s.delete(&format!("/api/v1/me/shares/{share_id}"), Some(&p.token)).await).await;
    assert_eq!(revoked["state"], "revoked");
    assert_error(s.client().get(s.url(&share_url)).send().await.unwrap(), 403, "share_revoked").await;
    let again = ok_json(s.delete(&format!("/api/v1/me/shares/{share_id}"), Some(&p.token)).await).await;
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    (t, vec![report, dcm_id])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_sealed_in_an_s3_compatible_server() {
    let s3 = tokio::task::spawn_blocking(|| S3Server::start("hospital-reports")).await.unwrap();
    let s = TestServer::start(s3_opts(&s3)).await;
    exercise(&s).await;
    let objects = bucket_objects(&s3).await;
    assert_eq!(
        objects.len(),
        2,
        "the PDF and the DICOM file, once each: {:?}",
        objects.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    for (key, bytes) in &objects {
        assert!(key.starts_with("reports/"), "{key}");
        assert!(!contains(bytes, PLAIN.as_bytes()), "{key} holds the plaintext");
        assert!(!contains(bytes, b"%PDF") && !contains(bytes, b"DICM"), "{key} is not the file as sent");
    }
    let dir = s.stop();
    assert!(!dir.path().join("objects").exists(), "nothing went to the local directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_sealed_in_the_data_directory() {
    let s = TestServer::start(opts()).await;
    exercise(&s).await;
    let dir = s.stop();
    let stored = dir.path().join("objects").join("reports");
    assert!(stored.is_dir(), "stored under the data directory");
    assert!(files_containing(&stored, b"%PDF").is_empty() && files_containing(&stored, b"DICM").is_empty());
    assert!(files_containing(dir.path(), PLAIN.as_bytes()).is_empty(), "no plaintext anywhere in the data directory");
}
