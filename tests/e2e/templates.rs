//! Stored schedule templates and slot times (BOOK-9) against the real binary: a template saved
//! through the back office is applied by the durable job to the configured weeks ahead and its
//! sessions appear in the patient API; a session changed by hand keeps its change when the
//! template is applied again, and applying again makes nothing twice. 号源调整 of times: a
//! booked segment moved to a new time keeps its booking, the patient gets a `time_changed`
//! message and the live appointment event, and a change below the booked places is refused.

use chrono::{Datelike, Duration as Days, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

use crate::admin_import::import;
use crate::booking_flow::{
    ahead, appointment, book_ok, booking_opts, doctors, eventually, messages, pay, person, session_view, set_release,
    staff,
};
use crate::browser::Browser;
use crate::catalogue_admin::dir_with_admin;
use crate::harness::{assert_error, expect_json, ok_json, TestServer};
use crate::realtime::{Enc, Ws};

/// A template line: `weekday` mornings 08:00-10:00 in 30-minute segments of `quota` places.
fn line(weekday: u32, quota: u32) -> Value {
    json!({ "weekday": weekday, "period": "morning", "start": "08:00", "end": "10:00",
            "segment_minutes": 30, "quota": quota, "fee": 1500, "release_days_before": 30 })
}

async fn put_template(s: &TestServer, token: &str, doctor: &str, body: Value) -> reqwest::Response {
    s.request(Method::PUT, &format!("/api/v1/admin/doctors/{doctor}/template"), Some(token), Some(body)).await
}

/// The doctor's sessions from tomorrow for `days` days, as the patient API shows them.
async fn sessions(s: &TestServer, doctor: &str, days: i64) -> Vec<Value> {
    let (from, to) = (ahead(1), ahead(days));
    let v = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={from}&to={to}"), None).await;
    v["sessions"].as_array().expect("sessions").clone()
}

/// Waits until the template's latest application is of `version`; that run.
async fn run_of(s: &TestServer, token: &str, doctor: &str, version: u64) -> Value {
    eventually(&format!("template v{version} applied"), Duration::from_secs(20), || async move {
        let t = s.get_json(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(token)).await;
        if t["last_run"]["template_version"] == version {
            Ok(t["last_run"].clone())
        } else {
            Err(t.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_template_is_applied_ahead_and_keeps_hand_changes() {
    let s = TestServer::start(
        booking_opts()
            .env("HOSPITAL_DEMO_DATA", false)
            .env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)
            .env("HOSPITAL_ACTORS__JOBS__TEMPLATE_WEEKS_AHEAD", 1)
            .data_dir(dir_with_admin()),
    )
    .await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let dep =
        expect_json(s.post("/api/v1/admin/departments", Some(&admin), json!({ "name": "内科" })).await, 201).await;
    let body = json!({ "department_id": dep["id"], "name": "李建国", "title": "attending_physician", "code": "D001" });
    let doctor = expect_json(s.post("/api/v1/admin/doctors", Some(&admin), body).await, 201).await;
    let doctor = doctor["id"].as_str().unwrap().to_string();
    assert_eq!(s.get_json("/api/v1/admin/schedule-templates", Some(&admin)).await, json!([]));
    assert_eq!(sessions(&s, &doctor, 7).await, Vec::<Value>::new());

    // Bad templates are refused with the wrong line's field named, and store nothing.
    let twice = json!({ "lines": [line(1, 2), line(1, 3)] });
    let e = assert_error(put_template(&s, &admin, &doctor, twice).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "lines[1].period", "{e}");
    let mut backwards = line(2, 2);
    backwards["end"] = json!("07:00");
    let e =
        assert_error(put_template(&s, &admin, &doctor, json!({ "lines": [backwards] })).await, 422, "invalid_field")
            .await;
    assert_eq!(e["field"], "lines[0].end", "{e}");
    let e = assert_error(put_template(&s, &admin, &doctor, json!({ "lines": [] })).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "lines", "{e}");
    let nobody = uuid::Uuid::new_v4();
    assert_error(
        put_template(&s, &admin, &nobody.to_string(), json!({ "lines": [line(1, 2)] })).await,
        404,
        "not_found",
    )
    .await;

    // Stored: every weekday's morning. The job applies it at once, to tomorrow .. 7 days ahead.
    let week: Vec<Value> = (1..=7).map(|d| line(d, 2)).collect();
    let saved = expect_json(put_template(&s, &admin, &doctor, json!({ "lines": week })).await, 201).await;
    assert_eq!(saved["version"], 1, "{saved}");
    assert_eq!(saved["lines"].as_array().unwrap().len(), 7);
    let run = run_of(&s, &admin, &doctor, 1).await;
    // (The day's run at start-up may have applied it first; between them, seven sessions.)
    assert_eq!(run["created"].as_u64().unwrap() + run["skipped"].as_u64().unwrap(), 7, "{run}");
    let made = sessions(&s, &doctor, 7).await;
    assert_eq!(made.len(), 7, "one morning a day for a week: {made:?}");
    assert!(made.iter().all(|x| x["fee"] == 1500 && x["slots"].as_array().unwrap().len() == 4), "{made:?}");
    let listed = s.get_json("/api/v1/admin/schedule-templates", Some(&admin)).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["doctor_name"], "李建国");

    // By hand: one session gets more places, another new times.
    let first = made[0]["session_id"].as_str().unwrap().to_string();
    let r = s
        .request(
            Method::PUT,
            &format!("/api/v1/admin/sessions/{first}/segments/0/quota"),
            Some(&admin),
            Some(json!({ "quota": 5 })),
        )
        .await;
    ok_json(r).await;
    let second = made[1]["session_id"].as_str().unwrap().to_string();
    let segs = json!({ "segments": [{ "start": "09:00", "end": "10:00", "quota": 4 }] });
    let r =
        s.request(Method::PUT, &format!("/api/v1/admin/sessions/{second}/segments"), Some(&admin), Some(segs)).await;
    let moved = ok_json(r).await;
    assert_eq!(moved["notified"], json!([]), "nobody was booked: {moved}");

    // Saved again (3 places a segment now): applied again, nothing is made twice and the
    // sessions changed by hand keep their changes.
    let week: Vec<Value> = (1..=7).map(|d| line(d, 3)).collect();
    let saved = ok_json(put_template(&s, &admin, &doctor, json!({ "lines": week.clone(), "version": 1 })).await).await;
    assert_eq!(saved["version"], 2, "{saved}");
    let run = run_of(&s, &admin, &doctor, 2).await;
    assert_eq!((run["created"].clone(), run["skipped"].clone()), (json!(0), json!(7)), "{run}");
    let again = sessions(&s, &doctor, 7).await;
    assert_eq!(again.len(), 7, "{again:?}");
    let by_id = |id: &str| again.iter().find(|x| x["session_id"] == id).cloned().unwrap();
    assert_eq!(by_id(&first)["slots"][0]["quota"], 5, "the hand-set quota stays");
    let times = by_id(&second)["slots"].clone();
    assert_eq!(times.as_array().unwrap().len(), 1, "{times}");
    assert_eq!((times[0]["start"].clone(), times[0]["quota"].clone()), (json!("09:00:00"), json!(4)));

    // A save over a later one is refused.
    let e = assert_error(
        put_template(&s, &admin, &doctor, json!({ "lines": week, "version": 1 })).await,
        409,
        "version_conflict",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("read it again"), "{e}");

    // Each save and the time change were audited by name.
    let log = s.get_json("/api/v1/admin/audit?action=schedule_template.save&limit=50", Some(&admin)).await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 2, "{log}");
    let log = s.get_json("/api/v1/admin/audit?action=session.segments&limit=50", Some(&admin)).await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 1, "{log}");

    // A nurse may read the templates, not change them.
    let body = json!({ "username": "tpl_nurse", "name": "护士", "password": "Nurse-pass-2026", "roles": ["nurse"] });
    expect_json(s.post("/api/v1/admin/staff", Some(&admin), body).await, 201).await;
    let nurse = s.staff_login("tpl_nurse", "Nurse-pass-2026").await;
    assert_eq!(s.get_json("/api/v1/admin/schedule-templates", Some(&nurse)).await.as_array().unwrap().len(), 1);
    assert_error(put_template(&s, &nurse, &doctor, json!({ "lines": [line(1, 2)] })).await, 403, "forbidden").await;

    // Deleted: gone from the list; the sessions it made stay.
    let r = s.delete(&format!("/api/v1/admin/doctors/{doctor}/template"), Some(&admin)).await;
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(s.get_json("/api/v1/admin/schedule-templates", Some(&admin)).await, json!([]));
    let r = s.get(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await;
    assert_error(r, 404, "not_found").await;
    assert_eq!(sessions(&s, &doctor, 7).await.len(), 7);

    // An imported template is stored as the doctor's template too; its dry run stores nothing.
    let csv = "doctor_code,weekday,period,start,end,segment_minutes,quota\nD001,3,afternoon,14:00,16:00,30,3\n";
    let dry = ok_json(import(&s, &admin, "?kind=templates&weeks=1&dry_run=true", "text/csv", csv.into()).await).await;
    assert_eq!((dry["templates"].clone(), dry["written"].clone()), (json!(1), json!(false)), "{dry}");
    assert_eq!(s.get_json("/api/v1/admin/schedule-templates", Some(&admin)).await, json!([]));
    let done = ok_json(import(&s, &admin, "?kind=templates&weeks=1", "text/csv", csv.into()).await).await;
    assert_eq!(done["templates"], 1, "{done}");
    let t = s.get_json(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await;
    let lines = t["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{t}");
    assert_eq!((lines[0]["weekday"].clone(), lines[0]["period"].clone()), (json!(3), json!("afternoon")));
    assert_eq!((lines[0]["quota"].clone(), lines[0]["release_days_before"].clone()), (json!(3), json!(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_booked_segment_tells_its_patient() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let doctor = doctors(&s).await[2].clone();
    // One evening 20 days ahead (past the demo's days): 18:00-19:00 in two segments of 2.
    let date = ahead(20);
    let body = json!({
        "from": date, "to": date,
        "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "evening",
                     "start": "18:00", "end": "19:00", "segment_minutes": 30, "quota": 2 }],
        "release_days_before": 7, "release_time": "08:00",
    });
    let made =
        expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(&admin), body).await, 201).await;
    let session = made["created"][0].as_str().unwrap().to_string();
    set_release(&s, &admin, &session, Utc::now() - Days::minutes(1)).await;
    let view = session_view(&s, &doctor, date, &session).await;
    let slot = view["slots"][0]["slot_id"].as_str().unwrap().to_string();

    // A patient books the first segment and pays.
    let p = person(&s, 8101).await;
    let booked = book_ok(&s, &p, &slot).await;
    let appt = booked["appointment"]["id"].as_str().unwrap().to_string();
    pay(&s, &p, booked["order"]["id"].as_str().unwrap()).await;
    let (sr, pr, ar) = (&s, &p, appt.as_str());
    eventually("the booking confirmed", Duration::from_secs(20), move || async move {
        let a = appointment(sr, pr, ar).await;
        if a["status"] == "confirmed" {
            Ok(())
        } else {
            Err(a.to_string())
        }
    })
    .await;
    let mut ws = Ws::connect(&s, Some(&p.token), Enc::Json).await;
    ws.next_of("welcome").await;

    // Below the booked places, or out of order: refused, nothing changes.
    let path = format!("/api/v1/admin/sessions/{session}/segments");
    let shrink = json!({ "segments": [{ "start": "18:30", "end": "19:00", "quota": 0 },
                                      { "start": "19:00", "end": "19:30", "quota": 2 }] });
    let r = s.request(Method::PUT, &path, Some(&admin), Some(shrink)).await;
    let e = assert_error(r, 409, "quota_below_booked").await;
    assert!(e["message"].as_str().unwrap().contains('1'), "names the booked count: {e}");
    let overlap = json!({ "segments": [{ "start": "18:30", "end": "19:10", "quota": 2 },
                                       { "start": "19:00", "end": "19:30", "quota": 2 }] });
    let e = assert_error(s.request(Method::PUT, &path, Some(&admin), Some(overlap)).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "segments");
    assert_eq!(session_view(&s, &doctor, date, &session).await["slots"][0]["start"], "18:00:00");

    // The session moves half an hour later: the booking keeps its place at the new time.
    let later = json!({ "segments": [{ "start": "18:30", "end": "19:00", "quota": 2 },
                                     { "start": "19:00", "end": "19:30", "quota": 2 }] });
    let moved = ok_json(s.request(Method::PUT, &path, Some(&admin), Some(later)).await).await;
    assert_eq!(moved["notified"], json!([appt]), "{moved}");
    let view = session_view(&s, &doctor, date, &session).await;
    let slots = view["slots"].as_array().unwrap();
    assert_eq!((slots[0]["start"].clone(), slots[0]["end"].clone()), (json!("18:30:00"), json!("19:00:00")));
    assert_eq!((slots[0]["remaining"].clone(), slots[1]["remaining"].clone()), (json!(1), json!(2)), "{view}");
    assert_eq!(appointment(&s, &p, &appt).await["status"], "confirmed");

    // Told live (the message and the appointment's event) and in the message centre.
    let (mut message, mut event) = (None, None);
    while message.is_none() || event.is_none() {
        let v = ws.next().await.expect("a frame");
        match v["type"].as_str() {
            Some("message") if v["payload"]["kind"] == "time_changed" => message = Some(v),
            Some("appointment") if v["payload"]["id"] == appt.as_str() => event = Some(v),
            _ => {}
        }
    }
    let body = message.unwrap()["payload"]["body"].as_str().unwrap().to_string();
    assert!(body.contains("18:30-19:00"), "{body}");
    assert_eq!(event.unwrap()["payload"]["status"], "confirmed");
    let msgs = messages(&s, &p).await;
    let changed: Vec<_> = msgs.iter().filter(|m| m["kind"] == "time_changed").collect();
    assert_eq!(changed.len(), 1, "{msgs:?}");
    assert_eq!(changed[0]["related"], appt.as_str());
}

/// Sets an input's value the way a picker would (time inputs take no typed text in every locale).
async fn set_value(b: &Browser, css: &str, value: &str) {
    let el = b.find(css).await;
    b.client
        .execute("arguments[0].value = arguments[1];", vec![serde_json::to_value(&el).unwrap(), json!(value)])
        .await
        .unwrap();
}

/// The console's schedules page in Chromium: the empty template, a refused save (two lines on
/// the same weekday and period), a good save that the job applies (its sessions listed), then
/// a session's slots adjusted: an overlap refused, a later end saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_stores_a_template_and_adjusts_slot_times() {
    let s = TestServer::start(
        booking_opts()
            .env("HOSPITAL_DEMO_DATA", false)
            .env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)
            .env("HOSPITAL_ACTORS__JOBS__TEMPLATE_WEEKS_AHEAD", 1)
            .data_dir(dir_with_admin()),
    )
    .await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let dep =
        expect_json(s.post("/api/v1/admin/departments", Some(&admin), json!({ "name": "内科" })).await, 201).await;
    let body = json!({ "department_id": dep["id"], "name": "李建国", "title": "attending_physician" });
    let doctor = expect_json(s.post("/api/v1/admin/doctors", Some(&admin), body).await, 201).await;
    let doctor = doctor["id"].as_str().unwrap().to_string();

    let b = Browser::start().await;
    b.client.goto(&s.url("/admin")).await.unwrap();
    b.wait_text("医院管理后台").await;
    b.fill("input[name=username]", "boss").await;
    b.fill("input[name=password]", "First-admin-2026").await;
    b.click("button[type=submit]").await;
    b.find("form#new-staff").await;
    b.click("nav a[data-page=schedules]").await;
    b.wait_text("该医生还没有排班模板").await;
    b.wait_text("未来四周没有出诊").await;
    b.screenshot("admin-templates-empty").await;

    // Two lines, both Monday mornings: refused, the second line named, in the page's words.
    b.click("#add-line").await;
    b.click("#add-line").await;
    b.click("#stored-template button[type=submit]").await;
    b.wait_text("第 2 行：与前面一行的星期和时段相同").await;
    b.screenshot("admin-templates-error").await;
    assert!(
        !b.find("#stored-template .error").await.text().await.unwrap().contains("appears"),
        "no server English for staff"
    );
    assert!(s.get(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await.status() == 404);

    // The second line on Tuesdays instead, 12 places: saved, applied by the job, listed.
    b.click("#stored-template tr.line:nth-child(2) select[name=weekday] option[value='2']").await;
    b.fill("#stored-template tr.line:nth-child(2) input[name=quota]", "12").await;
    b.click("#stored-template button[type=submit]").await;
    b.wait_text("新建 2 个出诊").await;
    b.wait_text("余12").await;
    b.screenshot("admin-templates").await;
    let stored = s.get_json(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await;
    let weekdays: Vec<_> = stored["lines"].as_array().unwrap().iter().map(|l| l["weekday"].clone()).collect();
    assert_eq!(weekdays, [json!(1), json!(2)], "{stored}");
    let listed = sessions(&s, &doctor, 7).await;
    assert_eq!(listed.len(), 2, "{listed:?}");

    // 号源调整 of the first session, a place of its first segment held by a patient (the list
    // shows it live): no places there is refused, the segment named; the first segment moved
    // onto the second is refused; the last segment ending half an hour later is saved.
    let first = listed[0]["session_id"].as_str().unwrap().to_string();
    set_release(&s, &admin, &first, Utc::now() - Days::minutes(1)).await;
    let places = listed[0]["slots"][0]["remaining"].as_u64().unwrap();
    book_ok(&s, &person(&s, 8102).await, listed[0]["slots"][0]["slot_id"].as_str().unwrap()).await;
    b.wait_text(&format!("08:00-08:30 余{}", places - 1)).await;
    b.click(&format!("button.adjust[data-session='{first}']")).await;
    b.find("#segments-editor").await;
    b.fill("#segments-editor tr.segment:nth-child(1) input[name=quota]", "0").await;
    b.click("#segments-editor button[type=submit]").await;
    b.wait_text("第 1 段号数 0 少于已约 1 人").await;
    b.screenshot("admin-slots-below-booked").await;
    b.fill("#segments-editor tr.segment:nth-child(1) input[name=quota]", &places.to_string()).await;
    set_value(&b, "#segments-editor tr.segment:nth-child(1) input[name=start]", "08:30").await;
    set_value(&b, "#segments-editor tr.segment:nth-child(1) input[name=end]", "09:00").await;
    b.click("#segments-editor button[type=submit]").await;
    b.wait_text("号源时段有误：须按时间顺序、互不重叠").await;
    b.screenshot("admin-slots-error").await;
    assert!(
        !b.find("#segments-editor .error").await.text().await.unwrap().contains("overlaps"),
        "no server English for staff"
    );
    set_value(&b, "#segments-editor tr.segment:nth-child(1) input[name=start]", "08:00").await;
    set_value(&b, "#segments-editor tr.segment:nth-child(1) input[name=end]", "08:30").await;
    set_value(&b, "#segments-editor tr.segment:last-child input[name=end]", "12:30").await;
    b.click("#segments-editor button[type=submit]").await;
    b.wait_text("已通知 0 位患者").await;
    b.wait_text("11:30-12:30").await;
    b.screenshot("admin-slots").await;
    let after = sessions(&s, &doctor, 7).await;
    let session = after.iter().find(|x| x["session_id"] == first.as_str()).unwrap();
    let slots = session["slots"].as_array().unwrap();
    assert_eq!(slots.last().unwrap()["end"], "12:30:00", "{session}");
    assert_eq!(slots[0]["start"], "08:00:00", "{session}");

    // The department switched off: patients no longer see the doctor, staff still run the
    // doctor's sessions (listed, marked, adjustable).
    let dep_path = format!("/api/v1/admin/departments/{}", dep["id"].as_str().unwrap());
    let r = s.patch(&dep_path, Some(&admin), json!({ "enabled": false })).await;
    assert_eq!(ok_json(r).await["enabled"], false);
    assert_eq!(s.get(&format!("/api/v1/doctors/{doctor}/schedule"), None).await.status(), 404);
    let listed = s.get_json("/api/v1/admin/schedule-doctors", Some(&admin)).await;
    assert_eq!(
        listed,
        json!([{ "id": doctor, "name": "李建国", "department_name": "内科", "department_open": false }])
    );
    let path = format!("/api/v1/admin/doctors/{doctor}/schedule?from={}&to={}", ahead(1), ahead(7));
    let staff = s.get_json(&path, Some(&admin)).await;
    assert_eq!(staff["sessions"].as_array().unwrap().len(), 2, "{staff}");
    let nobody = s.get(&format!("/api/v1/admin/doctors/{}/schedule", uuid::Uuid::now_v7()), Some(&admin)).await;
    assert_eq!(nobody.status(), 404);
    b.client.refresh().await.unwrap();
    b.wait_text("李建国（内科，科室已停用）").await;
    b.wait_text("11:30-12:30").await;
    b.find(&format!("button.adjust[data-session='{first}']")).await;
    b.screenshot("admin-schedules-switched-off").await;
    let _ = b.client.clone().close().await;
}

/// The jobs are rows: a template saved while no run could pick it up (the jobs' tick a minute
/// long) is applied after a crash and restart; a second restart applies nothing again (the
/// day's run is marked done, the doctor's job is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_template_is_applied_after_a_crash_and_only_once() {
    let opts = |tick_ms: u64| {
        booking_opts()
            .env("HOSPITAL_DEMO_DATA", false)
            .env("HOSPITAL_ACTORS__JOBS__TICK_MS", tick_ms)
            .env("HOSPITAL_ACTORS__JOBS__TEMPLATE_WEEKS_AHEAD", 1)
    };
    let s = TestServer::start(opts(600_000).data_dir(dir_with_admin())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let dep =
        expect_json(s.post("/api/v1/admin/departments", Some(&admin), json!({ "name": "内科" })).await, 201).await;
    let body = json!({ "department_id": dep["id"], "name": "王芳", "title": "chief_physician" });
    let doctor = expect_json(s.post("/api/v1/admin/doctors", Some(&admin), body).await, 201).await;
    let doctor = doctor["id"].as_str().unwrap().to_string();
    let week: Vec<Value> = (1..=7).map(|d| line(d, 2)).collect();
    expect_json(put_template(&s, &admin, &doctor, json!({ "lines": week })).await, 201).await;
    let t = s.get_json(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await;
    assert_eq!(t["last_run"], Value::Null, "not applied yet: {t}");
    assert_eq!(sessions(&s, &doctor, 7).await.len(), 0);

    // Crash; the restart's runner finds the doctor's job and applies the template.
    let s = TestServer::start(opts(200).data_dir(s.kill_9())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    let run = run_of(&s, &admin, &doctor, 1).await;
    assert_eq!((run["created"].clone(), run["skipped"].clone()), (json!(7), json!(0)), "{run}");
    assert_eq!(sessions(&s, &doctor, 7).await.len(), 7);

    // Restarted again: nothing is applied twice.
    let s = TestServer::start(opts(200).data_dir(s.stop())).await;
    let admin = s.staff_login("boss", "First-admin-2026").await;
    // A template saved for a second doctor proves the runner has ticked since the restart.
    let body = json!({ "department_id": dep["id"], "name": "张伟", "title": "attending_physician" });
    let other = expect_json(s.post("/api/v1/admin/doctors", Some(&admin), body).await, 201).await;
    let other = other["id"].as_str().unwrap().to_string();
    expect_json(put_template(&s, &admin, &other, json!({ "lines": [line(1, 2)] })).await, 201).await;
    run_of(&s, &admin, &other, 1).await;
    let t = s.get_json(&format!("/api/v1/admin/schedule-templates/{doctor}"), Some(&admin)).await;
    assert_eq!(t["last_run"], run, "the first doctor's template was not applied again");
    assert_eq!(sessions(&s, &doctor, 7).await.len(), 7);
}
