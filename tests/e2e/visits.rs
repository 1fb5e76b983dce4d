//! Visits end to end against the real binary (issue 11, must-show 2 and the doctor's side of 1):
//! a doctor (a staff account linked to a catalogue doctor) calls the checked-in patient, writes
//! the visit with a prescription and an exam order, finishes it (the appointment `seen`, the exam
//! booked); the session is closed by its durable job, which survives a restart: the two booked
//! patients who never checked in become `missed`, the no-show ban refuses their next booking with
//! its reason and end, and a staff correction lifts it. Another doctor and a patient's token are
//! refused everywhere; the diagnosis is never on disk in clear.

use chrono::Datelike;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

use crate::booking_flow::{
    ahead, book_ok, booking_opts, conflict, departments_with_doctors, eventually, pay, person, staff, today, Person,
};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};

const DIAGNOSIS: &str = "社区获得性肺炎";
/// The exam's result: as distinctive as the diagnosis, sealed like it (REC-5).
const RESULT: &str = "右下肺斑片状渗出影考虑炎症";
const PASSWORD: &str = "Doctor-2026-pass";

/// A session of `doctor` today, evening, one 30-minute segment with 5 places, released now; None
/// if the doctor has an evening session today already (the demo's).
pub(crate) async fn session_today(s: &TestServer, admin: &str, doctor: &str) -> Option<(String, String)> {
    let date = today();
    let body = json!({
        "from": date, "to": date,
        "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "evening",
                     "start": "18:00:00", "end": "18:30:00", "segment_minutes": 30, "quota": 5 }],
        "release_days_before": 7, "release_time": "08:00:00",
    });
    let made =
        expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(admin), body).await, 201).await;
    let session = made["created"].as_array().expect("created").first()?.as_str()?.to_string();
    crate::booking_flow::set_release(s, admin, &session, chrono::Utc::now() - chrono::Duration::minutes(1)).await;
    let view = crate::booking_flow::session_view(s, doctor, date, &session).await;
    let slot = view["slots"][0]["slot_id"].as_str().expect("slot").to_string();
    Some((session, slot))
}

/// A doctor's staff account for catalogue doctor `doctor`; its token.
pub(crate) async fn doctor_login(s: &TestServer, admin: &str, username: &str, doctor: &str) -> String {
    let body = json!({ "username": username, "name": "李医生", "password": PASSWORD, "roles": ["doctor"], "doctor_id": doctor });
    let made = expect_json(s.post("/api/v1/admin/staff", Some(admin), body).await, 201).await;
    assert_eq!(made["doctor_id"], doctor, "{made}");
    s.staff_login(username, PASSWORD).await
}

/// Books `slot` for `p` and pays; the appointment id.
pub(crate) async fn booked(s: &TestServer, p: &Person, slot: &str) -> String {
    let b = book_ok(s, p, slot).await;
    pay(s, p, b["order"]["id"].as_str().unwrap()).await;
    let id = b["appointment"]["id"].as_str().unwrap().to_string();
    status_becomes(s, p, &id, "confirmed").await;
    id
}

pub(crate) async fn status_becomes(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    eventually(&format!("appointment {id} {status}"), Duration::from_secs(30), move || async move {
        let a = s.get_json(&format!("/api/v1/appointments/{id}"), Some(&p.token)).await;
        if a["status"] == status {
            Ok(a)
        } else {
            Err(a.to_string())
        }
    })
    .await
}

pub(crate) async fn put(s: &TestServer, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
    s.request(reqwest::Method::PUT, path, token, Some(body)).await
}

pub(crate) fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path).expect("read").windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[tokio::test]
async fn doctor_writes_a_visit_and_a_closed_session_bans_no_shows_across_a_restart() {
    let vault = tempfile::tempdir().unwrap();
    // One no-show bans (for 30 days); the job runner looks for due jobs only at start (then
    // hourly), so a session closed now waits for the next start: a restart must not lose it.
    let opts = |tick_ms: u64| {
        booking_opts()
            .env("HOSPITAL_VAULT_DIR", vault.path().display())
            .env("HOSPITAL_ACTORS__NO_SHOW_LIMIT", 1)
            .env("HOSPITAL_ACTORS__JOBS__TICK_MS", tick_ms)
            .env("HOSPITAL_ACTORS__JOBS__ERASE_COOLING_OFF_SECS", 2)
    };
    let s = TestServer::start(opts(3_600_000)).await;
    let admin = staff(&s).await;

    // A doctor free this evening, and a doctor of another department.
    let departments = departments_with_doctors(&s).await;
    let mut found = None;
    'outer: for (dept, doctors) in &departments {
        for d in doctors {
            if let Some(made) = session_today(&s, &admin, d).await {
                found = Some((dept.clone(), d.clone(), made));
                break 'outer;
            }
        }
    }
    let (dept, doctor, (session, slot)) = found.expect("a doctor free this evening");
    let other_doctor =
        departments.iter().find(|(d, ds)| *d != dept && !ds.is_empty()).map(|(_, ds)| ds[0].clone()).expect("another");
    let dr = doctor_login(&s, &admin, "dr.visits", &doctor).await;
    let other = doctor_login(&s, &admin, "dr.other", &other_doctor).await;

    // Three patients book and pay; only the first comes.
    let (p1, p2, p3) = (person(&s, 7101).await, person(&s, 7102).await, person(&s, 7103).await);
    let a1 = booked(&s, &p1, &slot).await;
    let a2 = booked(&s, &p2, &slot).await;
    let a3 = booked(&s, &p3, &slot).await;
    ok_json(s.post_empty(&format!("/api/v1/appointments/{a1}/check-in"), Some(&p1.token)).await).await;

    // Today's list: the doctor's session, p1 waiting. Another doctor sees none of it.
    let list = ok_json(s.get("/api/v1/doctor/today", Some(&dr)).await).await;
    let mine = list.as_array().unwrap().iter().find(|x| x["session"]["id"] == session.as_str()).expect("the session");
    assert_eq!(mine["queue"]["waiting"][0]["entry"]["appointment_id"], a1.as_str(), "{mine}");
    let theirs = ok_json(s.get("/api/v1/doctor/today", Some(&other)).await).await;
    assert!(!theirs.to_string().contains(&session), "another doctor's list: {theirs}");
    let call = json!({ "room": "3诊室" });
    assert_error(
        s.post(&format!("/api/v1/doctor/sessions/{session}/call-next"), Some(&other), call.clone()).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        s.post(&format!("/api/v1/doctor/sessions/{session}/call-next"), Some(&p1.token), call.clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(s.get("/api/v1/doctor/today", Some(&admin)).await, 403, "forbidden").await;

    // Call, start, write, finish.
    let called = ok_json(s.post(&format!("/api/v1/doctor/sessions/{session}/call-next"), Some(&dr), call).await).await;
    let visit = called["visit"]["id"].as_str().expect("a visit").to_string();
    assert_eq!(called["visit"]["status"], "called", "{called}");
    assert_eq!(called["visit"]["patient_id"], p1.patient_id.as_str());
    assert_eq!(called["queue"]["calling"]["entry"]["appointment_id"], a1.as_str());
    for token in [&other, &p1.token] {
        let r = s.get(&format!("/api/v1/doctor/visits/{visit}"), Some(token)).await;
        assert!(matches!(r.status().as_u16(), 403 | 404), "another doctor or a patient: {}", r.status());
    }
    let form = json!({
        "chief_complaint": "发热、咳嗽3天",
        "diagnoses": [{ "text": DIAGNOSIS, "icd10": "J18.9" }],
        "prescription": [{ "drug": "阿莫西林胶囊", "spec": "0.25g*24粒", "dose": "0.5g", "route": "口服",
                           "frequency": "tid", "days": 5, "quantity": 2, "unit": "盒", "unit_price": 1850 }],
        "exam_orders": [{ "name": "胸部CT平扫", "kind": "imaging", "price": 28000 }],
        "record": "患者3天前受凉后发热，最高39℃。\n查体：右下肺可闻及湿啰音。",
    });
    let early = put(&s, &format!("/api/v1/doctor/visits/{visit}"), Some(&dr), form.clone()).await;
    assert_error(early, 409, "visit_state").await;
    let started = ok_json(s.post_empty(&format!("/api/v1/doctor/visits/{visit}/start"), Some(&dr)).await).await;
    assert_eq!(started["status"], "in_consultation");
    let bad = json!({ "diagnoses": [{ "text": DIAGNOSIS, "icd10": "not-a-code" }] });
    let r = put(&s, &format!("/api/v1/doctor/visits/{visit}"), Some(&dr), bad).await;
    assert_eq!(r.status().as_u16(), 422, "a bad ICD-10 code is refused whole");
    let written = ok_json(put(&s, &format!("/api/v1/doctor/visits/{visit}"), Some(&dr), form).await).await;
    assert_eq!(written["diagnoses"][0]["text"], DIAGNOSIS, "{written}");
    let r = put(&s, &format!("/api/v1/doctor/visits/{visit}"), Some(&other), json!({})).await;
    assert_eq!(r.status().as_u16(), 404, "another doctor cannot write it");
    let done = ok_json(s.post_empty(&format!("/api/v1/doctor/visits/{visit}/finish"), Some(&dr)).await).await;
    assert_eq!(done["status"], "finished", "{done}");
    let exam_id = done["exam_orders"][0]["exam_id"].as_str().expect("the order became an exam").to_string();
    status_becomes(&s, &p1, &a1, "seen").await;
    let exam = ok_json(s.get(&format!("/api/v1/me/exams/{exam_id}"), Some(&p1.token)).await).await;
    assert_eq!((exam["name"].as_str(), exam["status"].as_str()), (Some("胸部CT平扫"), Some("pending")), "{exam}");
    // Finishing again (a retry) changes nothing.
    let again = ok_json(s.post_empty(&format!("/api/v1/doctor/visits/{visit}/finish"), Some(&dr)).await).await;
    assert_eq!(again["exam_orders"][0]["exam_id"], exam_id.as_str());
    // The exam's result comes in (the doctor may set it, as the lab does through its webhook).
    let exam_status = format!("/api/v1/admin/exams/{exam_id}/status");
    ok_json(s.post(&exam_status, Some(&dr), json!({ "status": "in_progress" })).await).await;
    let result = json!({ "status": "completed", "abnormal": true, "summary": RESULT });
    let done_exam = ok_json(s.post(&exam_status, Some(&dr), result).await).await;
    assert_eq!((done_exam["status"].as_str(), done_exam["summary"].as_str()), (Some("completed"), Some(RESULT)));
    let exam = ok_json(s.get(&format!("/api/v1/me/exams/{exam_id}"), Some(&p1.token)).await).await;
    assert_eq!((exam["abnormal"].as_bool(), exam["summary"].as_str()), (Some(true), Some(RESULT)), "{exam}");
    let mine = ok_json(s.get("/api/v1/me/exams", Some(&p1.token)).await).await;
    assert_eq!(mine[0]["summary"], RESULT, "{mine}");
    // The message centre says the report is out, never what it says.
    let messages = ok_json(s.get("/api/v1/me/messages", Some(&p1.token)).await).await;
    let about: Vec<&Value> = messages.as_array().unwrap().iter().filter(|m| m["related"] == exam_id.as_str()).collect();
    assert_eq!(about.len(), 2, "report out, and the abnormal alert: {messages}");
    assert!(!messages.to_string().contains(RESULT), "no result in a message: {messages}");

    // The patient's side: history (filters, search, paging), detail, the record as a PDF.
    let history = format!("/api/v1/me/patients/{}/visits", p1.patient_id);
    let page = ok_json(s.get(&history, Some(&p1.token)).await).await;
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["id"], visit.as_str());
    assert_eq!(page["items"][0]["diagnosis"], DIAGNOSIS);
    for (query, hits) in [("q=J18", 1), ("q=%E8%82%BA%E7%82%8E", 1), ("q=nothing-like-it", 0)] {
        let page = ok_json(s.get(&format!("{history}?{query}"), Some(&p1.token)).await).await;
        assert_eq!(page["total"], hits, "{query}: {page}");
    }
    let tomorrow = today() + chrono::Duration::days(1);
    let page = ok_json(s.get(&format!("{history}?from={tomorrow}"), Some(&p1.token)).await).await;
    assert_eq!(page["total"], 0, "date range: {page}");
    let page = ok_json(s.get(&format!("{history}?offset=1"), Some(&p1.token)).await).await;
    assert_eq!((page["total"].as_u64(), page["items"].as_array().map(Vec::len)), (Some(1), Some(0)), "paging");
    let detail = ok_json(s.get(&format!("/api/v1/me/visits/{visit}"), Some(&p1.token)).await).await;
    assert_eq!(detail["visit"]["prescription"][0]["drug"], "阿莫西林胶囊", "{detail}");
    assert_eq!(detail["exams"][0]["id"], exam_id.as_str(), "{detail}");
    assert_eq!(detail["exams"][0]["summary"], RESULT, "the linked exam, opened: {detail}");
    let pdf = s.get(&format!("/api/v1/me/visits/{visit}/record.pdf"), Some(&p1.token)).await;
    assert_eq!(pdf.status().as_u16(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("record.pdf");
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(DIAGNOSIS), "the diagnosis extracts from the PDF: {text}");
    // Another account: every one of these is 404, nothing leaked.
    for path in [history.clone(), format!("/api/v1/me/visits/{visit}"), format!("/api/v1/me/visits/{visit}/record.pdf")]
    {
        assert_error(s.get(&path, Some(&p2.token)).await, 404, "not_found").await;
    }

    // Closing the session now: the job is durable, but this runner looks only at its next start.
    let r = s.post_empty(&format!("/api/v1/admin/sessions/{session}/close"), Some(&p2.token)).await;
    assert_eq!(r.status().as_u16(), 403, "a patient cannot close a session");
    expect_json(s.post_empty(&format!("/api/v1/admin/sessions/{session}/close"), Some(&admin)).await, 202).await;
    let a = s.get_json(&format!("/api/v1/appointments/{a2}"), Some(&p2.token)).await;
    assert_eq!(a["status"], "confirmed", "not closed before the runner's next look");

    let data = s.kill_9();
    let s = TestServer::start(opts(200).data_dir(data)).await;
    for (p, a) in [(&p2, &a2), (&p3, &a3)] {
        status_becomes(&s, p, a, "missed").await;
    }
    let seen = s.get_json(&format!("/api/v1/appointments/{a1}"), Some(&p1.token)).await;
    assert_eq!(seen["status"], "seen", "the patient who came is not a no-show");

    // The ban: p2's next booking (another doctor, another day) is refused with why and until when.
    let (_, later) =
        crate::booking_flow::create_session(&s, &staff(&s).await, &other_doctor, ahead(20), 30, 5, None).await;
    let err = conflict(crate::booking_flow::book(&s, &p2, &later[0]).await, "rule_violation").await;
    assert_eq!(err["reason"], "no_show_ban", "{err}");
    let until = (today() + chrono::Duration::days(30)).to_string();
    assert!(err["message"].as_str().unwrap().contains(&until), "the ban's end {until}: {err}");

    // A staff correction lifts it (a patient may not make one).
    let excuse = json!({ "reason": "患者已到院，护士漏签到" });
    let r = s.post(&format!("/api/v1/admin/appointments/{a2}/excuse"), Some(&p2.token), excuse.clone()).await;
    assert_eq!(r.status().as_u16(), 403);
    let admin = staff(&s).await;
    let fixed = ok_json(s.post(&format!("/api/v1/admin/appointments/{a2}/excuse"), Some(&admin), excuse).await).await;
    assert_eq!(fixed["status"], "excused", "{fixed}");
    book_ok(&s, &p2, &later[0]).await;
    // p3 is still banned.
    let err = conflict(crate::booking_flow::book(&s, &p3, &later[0]).await, "rule_violation").await;
    assert_eq!(err["reason"], "no_show_ban");

    // The diagnosis and the exam's result are sealed with the patient's key: nowhere on disk in
    // clear (not in the exam's row, its messages, its live events in the outbox).
    let data = s.stop();
    assert!(files_containing(data.path(), DIAGNOSIS.as_bytes()).is_empty(), "the diagnosis is stored in clear");
    assert!(files_containing(data.path(), RESULT.as_bytes()).is_empty(), "the exam's result is stored in clear");
    assert!(!files_containing(data.path(), "胸部CT平扫".as_bytes()).is_empty(), "the scan reads the store");

    // SET-3: a backup of the data directory (the vault is kept apart), then p1 deletes the
    // account: after the cooling-off the data keys are destroyed and the rows deleted.
    let backup = tempfile::tempdir().unwrap();
    copy_dir(data.path(), backup.path());
    let s = TestServer::start(opts(200).data_dir(data)).await;
    let p1_phone = crate::harness::phone(7101);
    let r = s.post("/api/v1/me/deletion", Some(&p1.token), json!({ "code": "000000" })).await;
    assert_eq!(r.status().as_u16(), 401, "a wrong code is refused");
    let code = s.sms_code(&p1_phone).await;
    let asked = expect_json(s.post("/api/v1/me/deletion", Some(&p1.token), json!({ "code": code })).await, 202).await;
    assert!(asked["erase_at"].as_str().is_some(), "{asked}");
    // Cancelled during the cooling-off: nothing happens.
    let r = s.delete("/api/v1/me/deletion", Some(&p1.token)).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_error(s.get("/api/v1/me/deletion", Some(&p1.token)).await, 404, "not_found").await;
    let page = ok_json(s.get(&history, Some(&p1.token)).await).await;
    assert_eq!(page["total"], 1, "still there after a cancel: {page}");
    // Asked again, and left to run.
    let code = s.sms_code(&p1_phone).await;
    expect_json(s.post("/api/v1/me/deletion", Some(&p1.token), json!({ "code": code })).await, 202).await;
    eventually("p1 erased", Duration::from_secs(30), || async {
        let r = s.get(&history, Some(&p1.token)).await;
        if r.status().as_u16() == 200 {
            Err(r.text().await.unwrap_or_default())
        } else {
            Ok(())
        }
    })
    .await;
    let a = s.get_json(&format!("/api/v1/appointments/{a2}"), Some(&p2.token)).await;
    assert_eq!(a["status"], "excused", "another account is untouched: {a}");
    let data = s.stop();
    assert!(files_containing(data.path(), DIAGNOSIS.as_bytes()).is_empty());
    assert!(files_containing(data.path(), RESULT.as_bytes()).is_empty());

    // The backup taken before the deletion, restored beside the live vault: its visit row is
    // there but nothing can open it any more (the key is gone), so p1 sees no record.
    let s = TestServer::start(opts(3_600_000).data_dir(backup)).await;
    let page = ok_json(s.get(&history, Some(&p1.token)).await).await;
    assert_eq!(page["total"], 0, "the restored copy cannot be decrypted: {page}");
    assert_error(s.get(&format!("/api/v1/me/visits/{visit}"), Some(&p1.token)).await, 404, "not_found").await;
    // Its exam row is there too, its result sealed under the destroyed key: nothing to show.
    assert_error(s.get(&format!("/api/v1/me/exams/{exam_id}"), Some(&p1.token)).await, 404, "not_found").await;
    let mine = ok_json(s.get("/api/v1/me/exams", Some(&p1.token)).await).await;
    assert!(!mine.to_string().contains(RESULT) && !mine.to_string().contains(&exam_id), "{mine}");
    drop(s);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// REC-3 before the visit: a patient leaves notes on an upcoming appointment (booked and paid,
/// then checked in); the doctor of that session reads them in the workstation's today list
/// (audited, in the patient's access history), and the visit made by the call takes them over,
/// as do notes sent after it. Another doctor's list, another patient, an unpaid appointment: none
/// of it. The notes are sealed: nowhere on disk in clear.
#[tokio::test]
async fn notes_on_an_upcoming_appointment_reach_the_doctor_of_its_session() {
    const NOTE: &str = "就诊前留言：对青霉素过敏，近两天夜间咳嗽加重";
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let departments = departments_with_doctors(&s).await;
    let mut found = None;
    'outer: for (_, doctors) in &departments {
        for d in doctors {
            if let Some(made) = session_today(&s, &admin, d).await {
                found = Some((d.clone(), made));
                break 'outer;
            }
        }
    }
    let (doctor, (session, slot)) = found.expect("a doctor free this evening");
    let other_doctor =
        departments.iter().flat_map(|(_, ds)| ds.iter()).find(|d| **d != doctor).expect("another").clone();
    let dr = doctor_login(&s, &admin, "dr.notes", &doctor).await;
    let other = doctor_login(&s, &admin, "dr.notes.other", &other_doctor).await;
    let (p1, p2) = (person(&s, 7111).await, person(&s, 7112).await);
    let a1 = booked(&s, &p1, &slot).await;
    let notes_of = |a: &str| format!("/api/v1/me/appointments/{a}/notes");

    // Booked and paid: the note is kept with the appointment.
    let notes = expect_json(s.post(&notes_of(&a1), Some(&p1.token), json!({ "text": NOTE })).await, 201).await;
    assert_eq!(notes[0]["text"], NOTE, "{notes}");
    // Another patient cannot write on it; an unpaid appointment takes no note; bad text is 422.
    assert_error(s.post(&notes_of(&a1), Some(&p2.token), json!({ "text": "别人的留言" })).await, 404, "not_found")
        .await;
    let held = book_ok(&s, &p2, &slot).await;
    let held = held["appointment"]["id"].as_str().unwrap().to_string();
    let r = s.post(&notes_of(&held), Some(&p2.token), json!({ "text": "未支付" })).await;
    assert_error(r, 409, "appointment_not_upcoming").await;
    let err =
        assert_error(s.post(&notes_of(&a1), Some(&p1.token), json!({ "text": " " })).await, 422, "invalid_field").await;
    assert_eq!(err["field"], "note");

    // The doctor of the session sees it in today's list; another doctor sees nothing of it.
    let list = ok_json(s.get("/api/v1/doctor/today", Some(&dr)).await).await;
    let mine = list.as_array().unwrap().iter().find(|x| x["session"]["id"] == session.as_str()).expect("the session");
    // The list names the noted appointment, not what the note says (and audits no note read).
    assert_eq!(mine["noted"][0]["appointment_id"], a1.as_str(), "{mine}");
    assert_eq!(mine["noted"][0]["patient_id"], p1.patient_id.as_str());
    assert!(!list.to_string().contains(NOTE), "today's list carries no note text: {list}");
    let history = ok_json(s.get("/api/v1/me/access-history", Some(&p1.token)).await).await;
    assert!(!history.to_string().contains("note.read"), "nothing read yet: {history}");
    let read = ok_json(s.get(&format!("/api/v1/doctor/appointments/{a1}/notes"), Some(&dr)).await).await;
    assert_eq!(read["appointment_id"], a1.as_str(), "{read}");
    assert_eq!(read["notes"][0]["text"], NOTE, "{read}");
    let theirs = ok_json(s.get("/api/v1/doctor/today", Some(&other)).await).await;
    assert!(!theirs.to_string().contains(a1.as_str()), "another doctor's list: {theirs}");
    let r = s.get(&format!("/api/v1/doctor/appointments/{a1}/notes"), Some(&other)).await;
    assert!(!r.text().await.unwrap().contains(NOTE), "another doctor reads nothing");
    assert_error(s.get(&format!("/api/v1/doctor/appointments/{a1}/notes"), Some(&other)).await, 404, "not_found").await;
    assert_error(s.get(&format!("/api/v1/doctor/appointments/{a1}/notes"), Some(&p1.token)).await, 403, "forbidden")
        .await;
    let history = ok_json(s.get("/api/v1/me/access-history", Some(&p1.token)).await).await;
    let reads = history.to_string().matches("note.read").count();
    assert_eq!(reads, 1, "the doctor's one read is in the access history once: {history}");

    // Checked in: one more note; the call makes the visit, which carries both.
    ok_json(s.post_empty(&format!("/api/v1/appointments/{a1}/check-in"), Some(&p1.token)).await).await;
    let notes = expect_json(s.post(&notes_of(&a1), Some(&p1.token), json!({ "text": "已到候诊区" })).await, 201).await;
    assert_eq!(notes.as_array().map(Vec::len), Some(2), "{notes}");
    let call = json!({ "room": "6诊室" });
    let called = ok_json(s.post(&format!("/api/v1/doctor/sessions/{session}/call-next"), Some(&dr), call).await).await;
    let visit = called["visit"]["id"].as_str().expect("a visit").to_string();
    assert_eq!(called["visit"]["notes"][0]["text"], NOTE, "the visit took the notes over: {called}");
    // A note after the call goes on the visit.
    let notes =
        expect_json(s.post(&notes_of(&a1), Some(&p1.token), json!({ "text": "诊室在几楼？" })).await, 201).await;
    assert_eq!(notes.as_array().map(Vec::len), Some(3), "{notes}");
    let v = ok_json(s.get(&format!("/api/v1/doctor/visits/{visit}/notes"), Some(&dr)).await).await;
    assert_eq!(v["notes"].as_array().map(Vec::len), Some(3), "{v}");
    assert_eq!(v["notes"][2]["text"], "诊室在几楼？");

    // Sealed with the patient's key.
    let data = s.stop();
    assert!(files_containing(data.path(), NOTE.as_bytes()).is_empty(), "the note is stored in clear");
}
