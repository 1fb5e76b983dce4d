//! Announcements (ADM-4, issue 10 must-show 6) against the real binary: staff schedule one for a
//! few seconds ahead; it is in nobody's message centre before its time, then reaches connected
//! patients' real WebSockets (a `message` event) and their message centres, not before its
//! time. One addressed to a department reaches the patient with a booking there and not the
//! patient without one; a scheduled one can be withdrawn; a staff one is for the console only.

use chrono::{DateTime, Duration as Days, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::time::Duration;

use crate::booking_flow::{book_ok, booking_opts, person, Person};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};
use crate::realtime::{open_slot, Enc, Ws};

/// The next `message` event carrying the announcement `title`, skipping every other frame.
async fn announcement_on(ws: &mut Ws, title: &str) -> Value {
    loop {
        let v = ws.next_of("message").await;
        if v["payload"]["kind"] == "announcement" && v["payload"]["title"] == title {
            return v;
        }
    }
}

/// The announcements in a patient's message centre.
async fn centre(s: &TestServer, p: &Person) -> Vec<Value> {
    let list = s.get_json("/api/v1/me/messages?category=system", Some(&p.token)).await;
    list.as_array().unwrap().iter().filter(|m| m["kind"] == "announcement").cloned().collect()
}

async fn schedule(s: &TestServer, staff: &str, title: &str, audience: Value, at: DateTime<Utc>) -> Value {
    let body = json!({
        "title": title, "body": format!("{title}：详见医院公告栏。"), "audience": audience,
        "publish_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    let a = expect_json(s.post("/api/v1/admin/announcements", Some(staff), body).await, 201).await;
    assert_eq!(a["state"], "scheduled", "{a}");
    a
}

/// Waits until the announcement is published (its job ran); the stored announcement.
async fn published(s: &TestServer, staff: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = s.get_json("/api/v1/admin/announcements", Some(staff)).await;
        let a = list.as_array().unwrap().iter().find(|a| a["id"] == id).expect("listed").clone();
        if a["state"] == "published" {
            return a;
        }
        assert!(std::time::Instant::now() < deadline, "never published: {a}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_announcement_reaches_sockets_and_message_centres_at_its_time() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    // Patient A books with 王建国; patient B has no appointment anywhere.
    let (doctor, slot, ..) = open_slot(&s).await;
    let department =
        s.get_json(&format!("/api/v1/doctors/{doctor}"), None).await["department_id"].as_str().unwrap().to_string();
    let a = person(&s, 7601).await;
    book_ok(&s, &a, &slot).await;
    let b = person(&s, 7602).await;
    let mut ws_a = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws_a.next_of("welcome").await;
    let mut ws_b = Ws::connect(&s, Some(&b.token), Enc::Json).await;
    ws_b.next_of("welcome").await;

    // To every patient, in three seconds.
    let at = Utc::now() + Days::seconds(3);
    let all = schedule(&s, &admin, "停车场施工通知", json!({ "kind": "all_patients" }), at).await;
    assert!(centre(&s, &a).await.is_empty() && centre(&s, &b).await.is_empty(), "nothing before its time");
    for (ws, p) in [(&mut ws_a, &a), (&mut ws_b, &b)] {
        let event = announcement_on(ws, "停车场施工通知").await;
        assert!(Utc::now() >= at, "delivered before its time");
        assert_eq!(event["payload"]["related"], all["id"]);
        let got = centre(&s, p).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["title"], "停车场施工通知");
        assert_eq!(got[0]["id"], event["payload"]["id"], "the socket's message is the centre's");
    }
    let done = published(&s, &admin, all["id"].as_str().unwrap()).await;
    assert!(done["recipients"].as_u64().unwrap() >= 2, "{done}");

    // To 王建国's department: A (booked there) gets it live and in the centre; B does not.
    let at = Utc::now() + Days::seconds(2);
    let audience = json!({ "kind": "department", "department_id": department });
    let dep = schedule(&s, &admin, "门诊搬迁通知", audience, at).await;
    announcement_on(&mut ws_a, "门诊搬迁通知").await;
    assert!(Utc::now() >= at, "delivered before its time");
    let done = published(&s, &admin, dep["id"].as_str().unwrap()).await;
    assert_eq!(done["recipients"], 1, "only the patient booked there: {done}");
    assert_eq!(centre(&s, &a).await.len(), 2);
    let b_has: Vec<Value> = centre(&s, &b).await;
    assert_eq!(b_has.len(), 1, "B has no booking in the department: {b_has:?}");
    assert_eq!(b_has[0]["title"], "停车场施工通知");

    // A scheduled one can be withdrawn before its time, once; it then never goes out.
    let later =
        schedule(&s, &admin, "撤回的公告", json!({ "kind": "all_patients" }), Utc::now() + Days::hours(1)).await;
    let path = format!("/api/v1/admin/announcements/{}", later["id"].as_str().unwrap());
    assert_eq!(ok_json(s.delete(&path, Some(&admin)).await).await["state"], "cancelled");
    assert_error(s.delete(&path, Some(&admin)).await, 409, "already_published").await;
    // An unknown department, an empty title and a time in the past are refused.
    let bad = json!({ "title": "x", "body": "y", "audience": { "kind": "department", "department_id": uuid::Uuid::new_v4() } });
    assert_error(s.post("/api/v1/admin/announcements", Some(&admin), bad).await, 422, "invalid_field").await;
    let bad = json!({ "title": " ", "body": "y", "audience": { "kind": "staff" } });
    assert_error(s.post("/api/v1/admin/announcements", Some(&admin), bad).await, 422, "invalid_field").await;
    let past = (Utc::now() - Days::hours(2)).to_rfc3339();
    let bad = json!({ "title": "x", "body": "y", "audience": { "kind": "staff" }, "publish_at": past });
    assert_error(s.post("/api/v1/admin/announcements", Some(&admin), bad).await, 422, "invalid_field").await;

    // A staff announcement, now: the console lists it; no patient's centre has it.
    let body = json!({ "title": "本周例会改期", "body": "改至周五下午。", "audience": { "kind": "staff" } });
    let staff_one = expect_json(s.post("/api/v1/admin/announcements", Some(&admin), body).await, 201).await;
    published(&s, &admin, staff_one["id"].as_str().unwrap()).await;
    let notices = s.get_json("/api/v1/staff/announcements", Some(&admin)).await;
    assert_eq!(notices[0]["title"], "本周例会改期", "{notices}");
    assert_eq!(centre(&s, &a).await.len(), 2);
    // Patients may not publish; every staff action is audited.
    let body = json!({ "title": "x", "body": "y", "audience": { "kind": "all_patients" } });
    assert_error(s.post("/api/v1/admin/announcements", Some(&a.token), body).await, 403, "forbidden").await;
    let log = s.get_json("/api/v1/admin/audit?action=announcement.create&limit=50", Some(&admin)).await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 4, "{log}");
}

/// The console's announcement page in Chromium: one for a department's patients, scheduled
/// for tomorrow, is listed as waiting and can be withdrawn. The hospital runs in Tokyo's zone
/// here (UTC+9): the time typed is the hospital's wall clock, whatever the browser's zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_schedules_and_withdraws_an_announcement() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_GATEWAY__TIMEZONE", "Asia/Tokyo")).await;
    let b = crate::browser::Browser::start().await;
    b.sign_in(&s.url("/admin#announcements"), "admin", "admin-demo-2026").await;
    b.click("nav a[data-page=announcements]").await;
    b.wait_text("还没有公告").await;
    b.screenshot("admin-announcements-empty").await;
    b.fill("#new-announcement input[name=title]", "端午节门诊安排").await;
    b.fill("#new-announcement textarea[name=body]", "端午节当天上午照常开诊。<b>不是HTML</b>").await;
    // The first department in the list (after 全部患者).
    b.click("#new-announcement select[name=audience] option:nth-child(2)").await;
    let at = b.find("#new-announcement input[name=at]").await;
    // A datetime-local input takes its value from script (typing depends on the locale).
    let set_at = |wall: String| {
        b.client.execute("arguments[0].value = arguments[1];", vec![serde_json::to_value(&at).unwrap(), json!(wall)])
    };
    b.wait_text("定时发布（医院时区 Asia/Tokyo，留空即刻发布）").await;
    // A time in the past is refused, and the form says so in staff's words.
    set_at((Utc::now() - Days::days(2)).format("%Y-%m-%dT%H:%M").to_string()).await.unwrap();
    b.click("#new-announcement button[type=submit]").await;
    b.wait_text("定时发布的时间须在现在到一年之内：不能早于现在").await;
    b.screenshot("admin-announcements-error").await;
    // Tomorrow 10:30 in Tokyo is 01:30 UTC that day.
    let tomorrow = (Utc::now() + Days::hours(9)).date_naive() + Days::days(1);
    set_at(format!("{tomorrow}T10:30")).await.unwrap();
    b.click("#new-announcement button[type=submit]").await;
    b.wait_text("待发布").await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let list = s.get_json("/api/v1/admin/announcements", Some(&admin)).await;
    assert_eq!(list[0]["title"], "端午节门诊安排", "{list}");
    let expected = tomorrow.and_hms_opt(1, 30, 0).unwrap().and_utc();
    let stored: DateTime<Utc> = list[0]["publish_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(stored, expected, "the typed time is the hospital's wall clock: {list}");
    // The list shows it back in the hospital's zone.
    b.wait_text(&format!("{} 10:30:00", tomorrow.format("%Y/%-m/%-d"))).await;
    assert_eq!(list[0]["audience"]["kind"], "department");
    assert_eq!(list[0]["body"], "端午节当天上午照常开诊。<b>不是HTML</b>", "stored as typed");
    b.screenshot("admin-announcements").await;
    b.click(&format!("button[data-cancel='{}']", list[0]["id"].as_str().unwrap())).await;
    b.wait_text("已撤回").await;
    let list = s.get_json("/api/v1/admin/announcements", Some(&admin)).await;
    assert_eq!(list[0]["state"], "cancelled");
    let _ = b.client.clone().close().await;
}

/// The back office's staff socket, signed in with `token` (header), after its welcome.
pub(crate) async fn staff_socket(s: &TestServer, token: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = (s.base.replace("http://", "ws://") + "/api/v1/staff/ws").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("staff socket");
    let mut ws = Ws { stream, enc: Enc::Json };
    ws.next_of("welcome").await;
    ws
}

/// A staff announcement set for a few seconds ahead reaches, at its time, every staff socket
/// (the back office's, an agent's console) and no patient's; a patient's token and a bad token
/// get no staff socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_announcement_reaches_staff_sockets_at_its_time() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let mut office = staff_socket(&s, &admin).await;
    let (_, agent) = crate::chat::agent(&s, &admin, "news_agent", &["booking"], 2).await;
    let mut console = crate::chat::console(&s, &agent, "online").await;
    let p = person(&s, 7611).await;
    let mut patient = Ws::connect(&s, Some(&p.token), Enc::Json).await;
    patient.next_of("welcome").await;

    let at = Utc::now() + Days::seconds(2);
    let a = schedule(&s, &admin, "消防演练通知", json!({ "kind": "staff" }), at).await;
    for ws in [&mut office, &mut console] {
        let got = ws.next_of("announcement").await;
        assert!(Utc::now() >= at, "delivered before its time");
        assert_eq!(got["payload"]["id"], a["id"], "{got}");
        assert_eq!(got["payload"]["title"], "消防演练通知");
        assert_eq!(got["payload"]["state"], "published");
    }
    published(&s, &admin, a["id"].as_str().unwrap()).await;
    assert!(centre(&s, &p).await.is_empty(), "no patient's message centre has it");
    // The patient's socket got no announcement: the next frame it gets is the one we cause now.
    let body = json!({ "title": "全体患者通知", "body": "仅为检验。", "audience": { "kind": "all_patients" } });
    expect_json(s.post("/api/v1/admin/announcements", Some(&admin), body).await, 201).await;
    loop {
        let v = patient.next().await.unwrap();
        assert!(
            v["type"] != "announcement" && v["payload"]["title"] != "消防演练通知",
            "a staff notice on a patient socket: {v}"
        );
        if v["type"] == "message" && v["payload"]["title"] == "全体患者通知" {
            break;
        }
    }
    // Frames that are not staff announcements never reach the office socket; it answers heartbeats.
    use futures::SinkExt;
    office.stream.send(tokio_tungstenite::tungstenite::Message::Text(r#"{"type":"heartbeat"}"#.into())).await.unwrap();
    assert_eq!(office.next().await.unwrap()["type"], "heartbeat");

    // A patient's token: refused with a reason, then closed.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = (s.base.replace("http://", "ws://") + "/api/v1/staff/ws").into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", p.token).parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("upgrade");
    let mut ws = Ws { stream, enc: Enc::Json };
    let e = ws.next_of("error").await;
    assert_eq!(e["payload"]["code"], "unauthenticated", "{e}");
}
