//! Booking end to end against the real binary (must-shows 4 and 6): hold, WeChat Pay through the
//! sandbox, confirmation with a slip; notifications delivered many times and confirmed once;
//! forged and wrong-amount notifications refused; unpaid holds lapsing; cancellation with refund;
//! 停诊 with refunds, closures, messages and a cleared waitlist; waitlist offers; rescheduling;
//! and who may see what. The helpers here are shared with `storm`.

use chrono::{DateTime, Datelike, Duration as Days, FixedOffset, NaiveDate, SecondsFormat, Timelike, Utc};
use hospital_integrations::wechatpay::{sign, test_keys};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, TestServer};

/// The sandbox's merchant and mini-program (see `src/app.rs`): a notification must name them.
const SANDBOX_APPID: &str = "wxsandbox0000000";
const SANDBOX_MCHID: &str = "1900000109";

/// A valid 18-character resident ID number, distinct for each `n` below 900 * 20 000: region
/// 110105, a birth date from 1960 on, a 3-digit sequence, and the GB 11643 check character.
pub(crate) fn id_card(n: u32) -> String {
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1).expect("a date") + Days::days(i64::from(n / 900));
    let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), 100 + n % 900);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

/// Server options for booking tests: sandbox (the default), no per-IP limit worth the name (all
/// test traffic comes from 127.0.0.1), short SMS cooldowns so an account can log in twice.
pub(crate) fn booking_opts() -> Opts {
    Opts::new()
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
        // The storm opens a connection per patient, all from 127.0.0.1.
        .env("HOSPITAL_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_IP", 0)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", 50)
        .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1)
}

/// A logged-in account with one patient (就诊人): itself.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub token: String,
    pub patient_id: String,
}

/// Logs in `phone(n)` by SMS and adds a patient with `id_card(n)`.
pub(crate) async fn person(s: &TestServer, n: u32) -> Person {
    let token = s.login(&phone(n)).await;
    with_patient(s, token, n).await
}

/// The signed-in account of `token` with a patient (self) of `id_card(n)` added.
pub(crate) async fn with_patient(s: &TestServer, token: String, n: u32) -> Person {
    let p = ok_json(
        s.post(
            "/api/v1/me/patients",
            Some(&token),
            json!({ "name": "张三", "id_card_no": id_card(n), "relation": "self" }),
        )
        .await,
    )
    .await;
    Person { token, patient_id: p["id"].as_str().expect("patient id").to_string() }
}

pub(crate) async fn staff(s: &TestServer) -> String {
    s.staff_login("admin", "admin-demo-2026").await
}

/// The hospital's local date today (Asia/Shanghai has no daylight saving).
pub(crate) fn today() -> NaiveDate {
    (Utc::now() + Days::hours(8)).date_naive()
}

/// A date `days` ahead. The demo schedules today and the next 13 days, so from 14 days on every
/// doctor's days are free for sessions a test creates.
pub(crate) fn ahead(days: i64) -> NaiveDate {
    today() + Days::days(days)
}

/// Leaf departments' doctors, in tree order: `(department id, [doctor ids])`.
/// Two doctors of one department (for the real-name rule across doctors).
pub(crate) async fn two_doctors_of_a_department(s: &TestServer) -> (String, String) {
    departments_with_doctors(s)
        .await
        .into_iter()
        .find(|(_, d)| d.len() >= 2)
        .map(|(_, d)| (d[0].clone(), d[1].clone()))
        .expect("a department with two doctors")
}

pub(crate) async fn departments_with_doctors(s: &TestServer) -> Vec<(String, Vec<String>)> {
    let tree = s.get_json("/api/v1/departments", None).await;
    let mut leaves = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        for d in v.as_array().into_iter().flatten() {
            let children = d["children"].as_array().map(Vec::len).unwrap_or(0);
            if children == 0 {
                out.push(d["id"].as_str().expect("department id").to_string());
            } else {
                walk(&d["children"], out);
            }
        }
    }
    walk(&tree, &mut leaves);
    let mut out = Vec::new();
    for id in leaves {
        let detail = s.get_json(&format!("/api/v1/departments/{id}"), None).await;
        let doctors: Vec<String> = detail["doctors"]
            .as_array()
            .expect("doctors")
            .iter()
            .map(|d| d["id"].as_str().expect("doctor id").to_string())
            .collect();
        out.push((id, doctors));
    }
    out
}

/// Any doctor: the `i`-th one of the leaf departments, in tree order.
pub(crate) async fn doctors(s: &TestServer) -> Vec<String> {
    departments_with_doctors(s).await.into_iter().flat_map(|(_, d)| d).collect()
}

/// A session created through the back office: one weekly-template entry applied to `date`
/// alone, in the evening, ONE segment of `minutes` from 18:00 with `quota` places, released a
/// minute ago (or at `release_at`). Returns the session id and its slot (one).
pub(crate) async fn create_session(
    s: &TestServer,
    staff: &str,
    doctor: &str,
    date: NaiveDate,
    minutes: u32,
    quota: u32,
    release_at: Option<DateTime<Utc>>,
) -> (String, Vec<String>) {
    let end_minutes = 18 * 60 + minutes;
    let body = json!({
        "from": date,
        "to": date,
        "weekly": [{
            "weekday": date.weekday().number_from_monday(),
            "period": "evening",
            "start": "18:00:00",
            "end": format!("{:02}:{:02}:00", end_minutes / 60, end_minutes % 60),
            "segment_minutes": minutes,
            "quota": quota,
        }],
        "release_days_before": 7,
        "release_time": "08:00:00",
    });
    let r = s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(staff), body).await;
    let made = expect_json(r, 201).await;
    assert_eq!(made["skipped"], 0, "the day must be free for this doctor: {made}");
    let created = made["created"].as_array().expect("created");
    assert_eq!(created.len(), 1, "{made}");
    let session = created[0].as_str().expect("session id").to_string();
    let release = release_at.unwrap_or_else(|| Utc::now() - Days::minutes(1));
    set_release(s, staff, &session, release).await;
    let view = session_view(s, doctor, date, &session).await;
    let slots: Vec<String> =
        view["slots"].as_array().expect("slots").iter().map(|x| x["slot_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(slots.len(), 1, "{view}");
    (session, slots)
}

pub(crate) async fn set_release(s: &TestServer, staff: &str, session: &str, at: DateTime<Utc>) {
    let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let r = s.patch(&format!("/api/v1/admin/sessions/{session}"), Some(staff), json!({ "release_at": at })).await;
    ok_json(r).await;
}

/// A session as the public schedule shows it (slots with `remaining`, `waiting`, `status`).
pub(crate) async fn session_view(s: &TestServer, doctor: &str, date: NaiveDate, session: &str) -> Value {
    let sched = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={date}&to={date}"), None).await;
    sched["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|x| x["session_id"] == session)
        .unwrap_or_else(|| panic!("session {session} not in the schedule: {sched}"))
        .clone()
}

/// Waits until nobody is in `session`'s line (offered, screened out or the line ended).
pub(crate) async fn line_empties(s: &TestServer, doctor: &str, date: NaiveDate, session: &str) {
    eventually("the line empties", Duration::from_secs(20), || async {
        let v = session_view(s, doctor, date, session).await;
        if v["waiting"] == 0 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

pub(crate) async fn remaining(s: &TestServer, doctor: &str, date: NaiveDate, session: &str) -> Vec<u64> {
    let v = session_view(s, doctor, date, session).await;
    v["slots"].as_array().unwrap().iter().map(|x| x["remaining"].as_u64().unwrap()).collect()
}

pub(crate) async fn book(s: &TestServer, p: &Person, slot: &str) -> reqwest::Response {
    s.post("/api/v1/appointments", Some(&p.token), json!({ "slot_id": slot, "patient_id": p.patient_id })).await
}

/// Books and expects the 201; returns the whole answer (`appointment` and `order`).
pub(crate) async fn book_ok(s: &TestServer, p: &Person, slot: &str) -> Value {
    let b = expect_json(book(s, p, slot).await, 201).await;
    assert_eq!(b["appointment"]["status"], "held", "{b}");
    assert_eq!(b["appointment"]["order_id"], b["order"]["id"], "{b}");
    assert_eq!(b["order"]["status"], "created", "{b}");
    b
}

/// Expects a 409 with `code`; returns the error object (rule violations carry a `reason`).
pub(crate) async fn conflict(r: reqwest::Response, code: &str) -> Value {
    let body = expect_json(r, 409).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body["error"].clone()
}

pub(crate) async fn appointment(s: &TestServer, p: &Person, id: &str) -> Value {
    s.get_json(&format!("/api/v1/appointments/{id}"), Some(&p.token)).await
}

pub(crate) async fn order(s: &TestServer, p: &Person, id: &str) -> Value {
    s.get_json(&format!("/api/v1/orders/{id}"), Some(&p.token)).await
}

pub(crate) async fn messages(s: &TestServer, p: &Person) -> Vec<Value> {
    s.get_json("/api/v1/me/messages?limit=200", Some(&p.token)).await.as_array().expect("messages").clone()
}

fn count_kind(msgs: &[Value], kind: &str) -> usize {
    msgs.iter().filter(|m| m["kind"] == kind).count()
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `limit`; panics with `what`
/// and the last value seen otherwise. (A deadline for liveness, not a timing assertion.)
pub(crate) async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > limit => panic!("{what}: not within {limit:?}; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub(crate) async fn appointment_becomes(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    eventually(&format!("appointment {id} {status}"), Duration::from_secs(20), move || async move {
        let a = appointment(s, p, id).await;
        if a["status"] == status {
            Ok(a)
        } else {
            Err(a.to_string())
        }
    })
    .await
}

async fn order_becomes(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    eventually(&format!("order {id} {status}"), Duration::from_secs(20), move || async move {
        let o = order(s, p, id).await;
        if o["status"] == status {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    })
    .await
}

/// `out_trade_no`: the order id's 32 hex digits.
pub(crate) fn out_trade_no(order_id: &str) -> String {
    order_id.replace('-', "")
}

/// The mini-program's part: gets the `wx.requestPayment` parameters (checking their `paySign`
/// with the merchant's public key, as WeChat does), then the payer pays in the sandbox.
pub(crate) async fn pay(s: &TestServer, p: &Person, order_id: &str) {
    let r = s.post_empty(&format!("/api/v1/orders/{order_id}/wechat-pay"), Some(&p.token)).await;
    let params = ok_json(r).await;
    assert_eq!(params["appId"], SANDBOX_APPID, "{params}");
    assert_eq!(params["signType"], "RSA", "{params}");
    assert!(params["package"].as_str().is_some_and(|x| x.starts_with("prepay_id=")), "{params}");
    let typed: hospital_integrations::wechatpay::RequestPaymentParams =
        serde_json::from_value(params.clone()).expect("wx.requestPayment parameters");
    let merchant = sign::parse_public_key_pem(test_keys::MERCHANT_PUBLIC_KEY_PEM).expect("merchant key");
    sign::verify_request_payment_params(&merchant, &typed).expect("paySign verifies with the merchant key");
    let r = s.post_empty(&format!("/sandbox/wechatpay/sandbox/pay/{}", out_trade_no(order_id)), None).await;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "sandbox pay: {text}");
}

/// A `TRANSACTION.SUCCESS` notification built as WeChat Pay documents it: the transaction JSON
/// encrypted with AEAD_AES_256_GCM under the APIv3 key (associated data `transaction`), in the
/// envelope WeChat POSTs. Returns the notification id and the body; sign it with `signed`.
pub(crate) fn transaction_notification(order_id: &str, amount: u64) -> (String, Vec<u8>) {
    let now = Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).expect("+08:00"));
    let transaction = json!({
        "appid": SANDBOX_APPID,
        "mchid": SANDBOX_MCHID,
        "out_trade_no": out_trade_no(order_id),
        "transaction_id": format!("4200{}", &uuid::Uuid::new_v4().simple().to_string()[..24]),
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": now.to_rfc3339_opts(SecondsFormat::Secs, false),
        "payer": { "openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" },
        "amount": { "total": amount, "payer_total": amount, "currency": "CNY", "payer_currency": "CNY" },
    });
    let plaintext = serde_json::to_vec(&transaction).expect("JSON");
    let nonce = sign::resource_nonce();
    let ciphertext = sign::encrypt_resource(test_keys::APIV3_KEY.as_bytes(), &nonce, "transaction", &plaintext)
        .expect("encrypt the resource");
    let id = uuid::Uuid::new_v4().to_string();
    let envelope = json!({
        "id": id,
        "create_time": now.to_rfc3339_opts(SecondsFormat::Secs, false),
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": {
            "original_type": "transaction",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": "transaction",
            "nonce": nonce,
        },
    });
    (id, serde_json::to_vec(&envelope).expect("JSON"))
}

/// The four `Wechatpay-*` headers, signed with the platform's private key over this body.
pub(crate) fn signed(body: &[u8]) -> Vec<(&'static str, String)> {
    let key = sign::parse_private_key_pem(test_keys::PLATFORM_PRIVATE_KEY_PEM).expect("platform key");
    let sig = sign::WechatpaySignature::sign(
        &key,
        test_keys::PLATFORM_SERIAL_NO,
        Utc::now().timestamp(),
        &sign::nonce(),
        body,
    );
    sig.headers().to_vec()
}

pub(crate) async fn notify(s: &TestServer, headers: &[(&'static str, String)], body: &[u8]) -> reqwest::Response {
    let mut rb = s
        .client()
        .post(s.url("/api/v1/payments/wechat/notify"))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    rb.send().await.expect("notify")
}

/// Cancels one of `p`'s appointments (200).
async fn cancel_ok(s: &TestServer, p: &Person, appointment: &str) {
    ok_json(s.post_empty(&format!("/api/v1/appointments/{appointment}/cancel"), Some(&p.token)).await).await;
}

/// `p`'s one live appointment, once they have exactly one (`what` names it in a failure).
async fn only_live(s: &TestServer, p: &Person, what: &str) -> Value {
    eventually(what, Duration::from_secs(10), move || async move {
        let list = s.get_json("/api/v1/appointments", Some(&p.token)).await;
        match live(&list).as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(list.to_string()),
        }
    })
    .await
}

/// `p` asks to join `session`'s waitlist (候补).
pub(crate) async fn join_waitlist(s: &TestServer, session: &str, p: &Person) -> reqwest::Response {
    s.post(&format!("/api/v1/sessions/{session}/waitlist"), Some(&p.token), json!({ "patient_id": p.patient_id })).await
}

/// Each of `people` in turn is refused `slot` as sold out and joins `session`'s waitlist, at
/// positions 1, 2, ...
async fn queue_after_sold_out(s: &TestServer, session: &str, slot: &str, people: &[&Person]) {
    for (i, w) in people.iter().enumerate() {
        conflict(book(s, w, slot).await, "sold_out").await;
        assert_eq!(expect_json(join_waitlist(s, session, w).await, 201).await["position"], i + 1);
    }
}

/// The live (slot-holding) appointments in a list.
pub(crate) fn live(list: &Value) -> Vec<Value> {
    list.as_array()
        .expect("appointments")
        .iter()
        .filter(|a| matches!(a["status"].as_str(), Some("held" | "confirmed" | "checked_in")))
        .cloned()
        .collect()
}

/// Closing a session (the doctor ends the clinic, or its close job at the end) ends its waitlist:
/// each still waiting is told, the line is empty, and a place freed after the close (an unpaid
/// hold given up) is offered to nobody.
#[tokio::test]
async fn closing_a_session_ends_its_waitlist() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let doctor = departments_with_doctors(&s).await.into_iter().flat_map(|(_, d)| d).next().expect("a doctor");
    let date = ahead(24);
    let (session, slots) = create_session(&s, &admin, &doctor, date, 30, 1, None).await;
    let (holder, w1, w2) = (person(&s, 81).await, person(&s, 82).await, person(&s, 83).await);
    let held = book_ok(&s, &holder, &slots[0]).await;
    queue_after_sold_out(&s, &session, &slots[0], &[&w1, &w2]).await;
    assert_eq!(session_view(&s, &doctor, date, &session).await["waiting"], 2);

    expect_json(s.post_empty(&format!("/api/v1/admin/sessions/{session}/close"), Some(&admin)).await, 202).await;
    line_empties(&s, &doctor, date, &session).await;
    for w in [&w1, &w2] {
        // The close is answered 202 and the line empties in the doctor's actor before the
        // messages are durable: the view can show it empty a moment before they are in the store
        // (a full run under load read them too early once).
        eventually("the waiting are told", Duration::from_secs(20), || async {
            let msgs = messages(&s, w).await;
            if msgs.iter().any(|m| m["title"] == "候补未成功") {
                Ok(())
            } else {
                Err(format!("{msgs:?}"))
            }
        })
        .await;
        let msgs = messages(&s, w).await;
        let ended: Vec<&Value> = msgs.iter().filter(|m| m["title"] == "候补未成功").collect();
        assert_eq!(ended.len(), 1, "{msgs:?}");
        assert!(ended[0]["body"].as_str().unwrap().contains("门诊已结束"), "{msgs:?}");
    }
    // The holder gives the place up: nobody in line any more, so nobody is offered it.
    cancel_ok(&s, &holder, held["appointment"]["id"].as_str().unwrap()).await;
    assert_eq!(remaining(&s, &doctor, date, &session).await, vec![1]);
    for w in [&w1, &w2] {
        let list = s.get_json("/api/v1/appointments", Some(&w.token)).await;
        assert!(live(&list).is_empty(), "{list}");
        assert_eq!(count_kind(&messages(&s, w).await, "waitlist_offer"), 0);
    }
}

/// A session on `date` of the first doctor free that afternoon, from `start` to `end` in slots of
/// `minutes` with three places each, released: (doctor, session).
async fn afternoon(
    s: &TestServer,
    admin: &str,
    date: NaiveDate,
    (start, end, minutes): (&str, &str, u32),
) -> (String, String) {
    for doctor in doctors(s).await {
        let body = json!({
            "from": date, "to": date,
            "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "afternoon",
                         "start": start, "end": end, "segment_minutes": minutes, "quota": 3 }],
            "release_days_before": 7, "release_time": "08:00:00",
        });
        let r = expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(admin), body).await, 201);
        if let Some(session) = r.await["created"][0].as_str() {
            set_release(s, admin, session, Utc::now() - Days::minutes(1)).await;
            return (doctor, session.to_string());
        }
    }
    panic!("no doctor free this afternoon");
}

/// `session` (two slots of three places) shows its first slot closed and the second open; a new
/// person (`n`) is refused the first (`booking_closed`, nothing taken) and books the second.
async fn first_closed_second_books(s: &TestServer, doctor: &str, date: NaiveDate, session: &str, n: u32) -> Person {
    let view = session_view(s, doctor, date, session).await;
    let slots = view["slots"].as_array().expect("slots");
    let closed: Vec<&Value> = slots.iter().map(|x| &x["closed"]).collect();
    assert_eq!(closed, [true, false], "{view}");
    let (over, to_come) = (slots[0]["slot_id"].as_str().unwrap(), slots[1]["slot_id"].as_str().unwrap());
    let p = person(s, n).await;
    conflict(book(s, &p, over).await, "booking_closed").await;
    assert_eq!(remaining(s, doctor, date, session).await, vec![3, 3], "the refusal took nothing");
    let booked = book_ok(s, &p, to_come).await;
    assert_eq!(booked["appointment"]["slot_id"], to_come, "{booked}");
    assert_eq!(remaining(s, doctor, date, session).await, vec![3, 2]);
    p
}

/// A slot closing to booking reaches the clients watching its doctor as it happens (BOOK-2). The
/// server runs in a zone where it is just past noon, with a late-booking grace that ends 20 s
/// after the test starts, so today's 10:00-12:00 slot closes while a socket watches: the update
/// comes no earlier than that and marks the slot closed (`open_from` 1, was 0 in the
/// subscription's snapshot), and the REST schedule agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_closing_reaches_the_watchers_live() {
    use crate::realtime::{Enc, Ws};
    let (zone, offset) = hospital_testkit::zone_near_noon();
    let now = Utc::now().with_nanosecond(0).unwrap();
    // The zone is whole hours from UTC: this many seconds past noon there, the grace ends 20 s on.
    let late = i64::from(now.minute()) * 60 + i64::from(now.second()) + 20;
    let closes = now + Days::seconds(20);
    let opts = booking_opts()
        .env("HOSPITAL_GATEWAY__TIMEZONE", &zone)
        .env("HOSPITAL_ACTORS__LATE_BOOKING_SECS", late)
        .env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200);
    let s = TestServer::start(opts).await;
    let admin = staff(&s).await;
    let date = (now + Days::hours(offset)).date_naive();
    let (doctor, session) = afternoon(&s, &admin, date, ("10:00:00", "14:00:00", 120)).await;

    let watcher = person(&s, 8901).await;
    let mut ws = Ws::connect(&s, Some(&watcher.token), Enc::Json).await;
    ws.next_of("welcome").await;
    ws.send(json!({"type": "subscribe", "id": "s1", "payload": {"topics": [format!("doctor:{doctor}")]}})).await;
    ws.next_of("subscribed").await;
    // The subscription's snapshot: both slots open.
    let snapshot = ws.next_of("snapshot").await;
    let mine = |u: &&Value| u["payload"]["data"]["session_id"] == session.as_str();
    let at_first = snapshot["payload"]["updates"].as_array().expect("updates").iter().find(mine).cloned();
    let at_first = at_first.unwrap_or_else(|| panic!("the session in the snapshot: {snapshot}"));
    assert_eq!(at_first["payload"]["data"]["open_from"], 0, "set-up took under 20 s: {at_first}");
    let update = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let u = ws.next_quiet().await.expect("the socket stays open");
            if u["type"] == "availability" && mine(&&u) {
                return u;
            }
        }
    })
    .await
    .expect("the closing is pushed within a minute");
    let seen = Utc::now();
    assert_eq!(update["payload"]["data"]["open_from"], 1, "{update}");
    assert!(seen >= closes, "pushed at {seen}, before the slot closed at {closes}");
    assert_eq!(update["payload"]["data"]["remaining"], json!([3, 3]), "{update}");
    let view = session_view(&s, &doctor, date, &session).await;
    let closed: Vec<&Value> = view["slots"].as_array().expect("slots").iter().map(|x| &x["closed"]).collect();
    assert_eq!(closed, [true, false], "{view}");
}

/// A slot whose time is past takes no booking (409 `booking_closed`) and the schedule shows it
/// `closed` (the back office: 已截止); the next slot of the same day books. The server runs in a zone where it is now just
/// past noon (`zone_near_noon`), with no grace after a slot's end, so today's 10:00-12:00 slot is
/// over and the 12:00-14:00 one is not, whatever the hour the test runs at.
#[tokio::test]
async fn a_slot_whose_time_is_past_is_closed_to_booking() {
    let (zone, offset) = hospital_testkit::zone_near_noon();
    let opts = booking_opts().env("HOSPITAL_GATEWAY__TIMEZONE", &zone).env("HOSPITAL_ACTORS__LATE_BOOKING_SECS", 0);
    let s = TestServer::start(opts).await;
    let admin = staff(&s).await;
    let date = (Utc::now() + Days::hours(offset)).date_naive();
    // The hospital's clock, which the staff pages go by (not the browser's zone or the default).
    let clock: Value = s.get("/api/v1/clock", None).await.json().await.unwrap();
    assert_eq!(
        (clock["zone"].as_str(), clock["today"].as_str()),
        (Some(zone.as_str()), Some(date.to_string().as_str()))
    );
    let (doctor, session) = afternoon(&s, &admin, date, ("10:00:00", "14:00:00", 120)).await;
    first_closed_second_books(&s, &doctor, date, &session, 8801).await;

    // The back office's list of the doctor's sessions marks the slot that is over, and follows
    // the places as patients book (the staff socket's watch), with no reload.
    let b = schedule_page(&s, &doctor).await;
    b.wait_text("10:00-12:00 余3（已截止）").await;
    b.wait_text("12:00-14:00 余2").await;
    b.find("#sessions-live").await;
    let view = session_view(&s, &doctor, date, &session).await;
    let later_slot = view["slots"][1]["slot_id"].as_str().expect("slot").to_string();
    book_ok(&s, &person(&s, 8802).await, &later_slot).await;
    b.wait_text("12:00-14:00 余1").await;
    let shown = b.find("#sessions").await.text().await.expect("the sessions' text");
    assert!(shown.contains("10:00-12:00 余3（已截止）"), "the closed slot stays marked: {shown}");
    b.screenshot("admin-schedule-slot-closed").await;
}

/// The back office's 排班 page for `doctor`, signed in as the demo administrator.
async fn schedule_page(s: &TestServer, doctor: &str) -> crate::browser::Browser {
    let b = crate::browser::Browser::start().await;
    b.sign_in(&s.url("/admin"), "admin", "admin-demo-2026").await;
    b.click("nav a[data-page=schedules]").await;
    b.click(&format!("#doctor-pick option[value='{doctor}']")).await;
    b
}

/// 排班 reads its sessions again when its staff socket comes back from a drop: a booking made
/// while the page was not watching (the server restarted on the same address, the page not yet
/// reconnected: it waits 5 s) shows once it is, where the re-watch alone would leave it stale.
#[tokio::test]
async fn the_schedule_page_reads_again_after_its_socket_came_back() {
    let addr = format!("127.0.0.1:{}", hospital_testkit::free_port());
    let s = TestServer::start(booking_opts().listen(&addr)).await;
    let admin = staff(&s).await;
    let doctor = doctors(&s).await.remove(0);
    let date = ahead(22);
    let (session, slots) = create_session(&s, &admin, &doctor, date, 25, 7, None).await;
    let b = schedule_page(&s, &doctor).await;
    b.find("#sessions-live").await;
    b.wait_text("18:00-18:25 余7").await;

    // Down: the list no longer says it is live.
    let dir = s.stop();
    b.wait_gone("#sessions-live", "（实时） with the server down").await;
    let s = TestServer::start(booking_opts().listen(&addr).data_dir(dir)).await;
    book_ok(&s, &person(&s, 8831).await, &slots[0]).await;
    assert_eq!(remaining(&s, &doctor, date, &session).await[0], 6);
    b.wait_text("18:00-18:25 余6").await;
    b.find("#sessions-live").await;

    // A stop (停诊) changes more than the places (the status, the row's 调整号源 goes): the page
    // reads the sessions again on that update.
    ok_json(s.post_empty(&format!("/api/v1/admin/sessions/{session}/stop"), Some(&admin)).await).await;
    b.wait_gone(&format!("button.adjust[data-session='{session}']"), "the stopped session's 调整号源").await;
    let row = b.find(&format!("[data-status='{session}']")).await.text().await.unwrap();
    assert_eq!(row, "停诊");
    let stopped = b.find(&format!("[data-status='{session}']")).await;
    let el = serde_json::to_value(&stopped).unwrap();
    b.client.execute("arguments[0].scrollIntoView({block: 'center'});", vec![el]).await.unwrap();
    b.screenshot("admin-schedule-live-after-restart").await;
}

/// The back office's staff socket watches public topics: a doctor's places come to it as a
/// patient books, nothing more once it watches nothing, and a topic that is not public (or not
/// a topic) is refused with a reason.
#[tokio::test]
async fn the_staff_socket_follows_a_watched_doctor() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    let date = ahead(21);
    let (session, slots) = create_session(&s, &admin, &docs[0], date, 30, 4, None).await;
    let mut office = crate::announcements::staff_socket(&s, &admin).await;
    office.send(json!({ "type": "watch", "topics": [format!("conversation:{session}")] })).await;
    let e = office.next_of("error").await;
    assert_eq!(e["payload"]["code"], "bad_frame", "{e}");
    assert!(e["payload"]["message"].as_str().unwrap().contains("conversation:"), "{e}");

    let topic = format!("doctor:{}", docs[0]);
    office.send(json!({ "type": "watch", "topics": [&topic] })).await;
    assert_eq!(office.next_of("watching").await["payload"]["topics"], json!([&topic]));
    book_ok(&s, &person(&s, 8821).await, &slots[0]).await;
    let u = office.next_of("availability").await;
    assert_eq!(
        (u["payload"]["topic"].as_str(), u["payload"]["data"]["session_id"].as_str()),
        (Some(topic.as_str()), Some(session.as_str())),
        "{u}"
    );
    assert_eq!(u["payload"]["data"]["remaining"][0], 3, "{u}");

    // Watching nothing: the next booking sends nothing; the next frame is the heartbeat's answer.
    office.send(json!({ "type": "watch", "topics": [] })).await;
    assert_eq!(office.next_of("watching").await["payload"]["topics"], json!([]));
    book_ok(&s, &person(&s, 8822).await, &slots[0]).await;
    assert_eq!(remaining(&s, &docs[0], date, &session).await[0], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    office.send(json!({ "type": "heartbeat" })).await;
    let next = office.next().await.unwrap();
    assert_eq!(next["type"], "heartbeat", "nothing between: {next}");
}

/// A hospital that stops taking bookings ahead of each slot (`booking_cutoff_before_start_secs`,
/// an hour here; the suite's day of grace after a slot's end then plays no part). Just past noon
/// in the server's zone, today's 13:00-14:00 slot closed at 12:00 and 14:00-15:00 is open until
/// 13:00: the schedule, a booking and the subscription's snapshot agree.
#[tokio::test]
async fn booking_closes_ahead_of_each_slot_where_the_hospital_says_so() {
    use crate::realtime::{Enc, Ws};
    let (zone, offset) = hospital_testkit::zone_near_noon();
    let opts = booking_opts()
        .env("HOSPITAL_GATEWAY__TIMEZONE", &zone)
        .env("HOSPITAL_ACTORS__BOOKING_CUTOFF_BEFORE_START_SECS", 3600);
    let s = TestServer::start(opts).await;
    let admin = staff(&s).await;
    let date = (Utc::now() + Days::hours(offset)).date_naive();
    let (doctor, session) = afternoon(&s, &admin, date, ("13:00:00", "15:00:00", 60)).await;
    let p = first_closed_second_books(&s, &doctor, date, &session, 8811).await;

    let mut ws = Ws::connect(&s, Some(&p.token), Enc::Json).await;
    ws.next_of("welcome").await;
    ws.send(json!({"type": "subscribe", "id": "s1", "payload": {"topics": [format!("doctor:{doctor}")]}})).await;
    let snapshot = ws.next_of("snapshot").await;
    let mine = snapshot["payload"]["updates"]
        .as_array()
        .expect("updates")
        .iter()
        .find(|u| u["payload"]["data"]["session_id"] == session.as_str())
        .cloned();
    let mine = mine.unwrap_or_else(|| panic!("the session in the snapshot: {snapshot}"));
    assert_eq!(
        (mine["payload"]["data"]["open_from"].as_u64(), &mine["payload"]["data"]["remaining"]),
        (Some(1), &json!([3, 2])),
        "{mine}"
    );
}

/// (a), (b), (c): pay through the sandbox; one notification delivered five times; forged and
/// wrong-amount notifications. Ends by reading the orders from the stopped server's store.
#[tokio::test]
async fn pay_confirm_once_and_refuse_forgeries() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    let date = ahead(20);
    let (session, slots) = create_session(&s, &admin, &docs[0], date, 30, 10, None).await;

    // (a) Book, get the wx.requestPayment parameters, the payer pays in the sandbox; the sandbox
    // notifies the platform, which confirms the booking with a slip.
    let a = person(&s, 1).await;
    let booked = book_ok(&s, &a, &slots[0]).await;
    let (appt_id, order_id) = (
        booked["appointment"]["id"].as_str().unwrap().to_string(),
        booked["order"]["id"].as_str().unwrap().to_string(),
    );
    assert_eq!(booked["appointment"]["place"], 1, "{booked}");
    assert!(booked["order"]["amount"].as_u64().is_some_and(|x| x > 0), "{booked}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![9]);
    pay(&s, &a, &order_id).await;
    let confirmed = appointment_becomes(&s, &a, &appt_id, "confirmed").await;
    let slip = confirmed["slip_no"].as_str().expect("a slip number once paid");
    assert!(!slip.is_empty(), "{confirmed}");
    let o = order(&s, &a, &order_id).await;
    assert_eq!(o["status"], "paid", "{o}");
    assert!(o["paid_at"].is_string(), "{o}");
    let msgs = messages(&s, &a).await;
    assert_eq!(count_kind(&msgs, "booking_success"), 1, "{msgs:?}");
    assert_eq!(count_kind(&msgs, "payment_success"), 1, "{msgs:?}");
    let success = msgs.iter().find(|m| m["kind"] == "booking_success").unwrap();
    assert!(success["body"].as_str().unwrap().contains(slip), "the message names the slip: {success}");
    assert_eq!(success["related"], appt_id.as_str());
    // Paying again is refused at the sandbox (already paid), and nothing changes.
    let again = s.post_empty(&format!("/sandbox/wechatpay/sandbox/pay/{}", out_trade_no(&order_id)), None).await;
    assert!(again.status().is_client_error(), "paying twice: {}", again.status());

    // (b) One notification, built and signed as WeChat Pay does, delivered five times at once.
    let b = person(&s, 2).await;
    let booked = book_ok(&s, &b, &slots[0]).await;
    let (b_appt, b_order) = (
        booked["appointment"]["id"].as_str().unwrap().to_string(),
        booked["order"]["id"].as_str().unwrap().to_string(),
    );
    let amount = booked["order"]["amount"].as_u64().unwrap();
    let (notification_id, body) = transaction_notification(&b_order, amount);
    let deliveries = (0..5).map(|_| {
        let body = body.clone();
        let s = &s;
        // WeChat signs every delivery afresh (new timestamp and nonce), same body.
        async move { notify(s, &signed(&body), &body).await }
    });
    for r in futures::future::join_all(deliveries).await {
        let status = r.status();
        assert!(status.is_success(), "every delivery is acknowledged: {status} {}", r.text().await.unwrap_or_default());
    }
    let confirmed = appointment_becomes(&s, &b, &b_appt, "confirmed").await;
    assert!(confirmed["slip_no"].as_str().is_some_and(|x| !x.is_empty()), "{confirmed}");
    assert_eq!(order(&s, &b, &b_order).await["status"], "paid");
    // A sixth, later delivery of the same notification changes nothing either.
    let r = notify(&s, &signed(&body), &body).await;
    assert!(r.status().is_success(), "{}", r.status());
    let again = appointment(&s, &b, &b_appt).await;
    assert_eq!(again["slip_no"], confirmed["slip_no"], "one slip");
    let msgs = messages(&s, &b).await;
    assert_eq!(count_kind(&msgs, "booking_success"), 1, "confirmed once: {msgs:?}");
    assert_eq!(count_kind(&msgs, "payment_success"), 1, "paid once: {msgs:?}");
    let list = s.get_json("/api/v1/appointments", Some(&b.token)).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![8], "two places taken, no more");

    // (c) A forged notification (signature flipped; body altered under a valid signature) and a
    // correctly signed one with the wrong amount: all refused with a 4xx; nothing changes.
    let c = person(&s, 3).await;
    let booked = book_ok(&s, &c, &slots[0]).await;
    let (c_appt, c_order) = (
        booked["appointment"]["id"].as_str().unwrap().to_string(),
        booked["order"]["id"].as_str().unwrap().to_string(),
    );
    let amount = booked["order"]["amount"].as_u64().unwrap();
    let (_, body) = transaction_notification(&c_order, amount);
    let mut headers = signed(&body);
    let sig = &mut headers.iter_mut().find(|(k, _)| *k == sign::HEADER_SIGNATURE).unwrap().1;
    let mut bytes = sig.clone().into_bytes();
    bytes[20] = if bytes[20] == b'A' { b'B' } else { b'A' };
    *sig = String::from_utf8(bytes).unwrap();
    let r = notify(&s, &headers, &body).await;
    assert_error(r, 401, "notification_rejected").await;
    let headers = signed(&body);
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'"').unwrap() + 1; // inside the "id" key
    tampered[at] ^= 0x01;
    let r = notify(&s, &headers, &tampered).await;
    assert_error(r, 401, "notification_rejected").await;
    let (_, wrong) = transaction_notification(&c_order, amount + 1);
    let r = notify(&s, &signed(&wrong), &wrong).await;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_client_error(), "a wrong amount is refused with a 4xx: {status} {text}");
    // Unsigned: refused too.
    let r = notify(&s, &[], &body).await;
    assert_error(r, 401, "notification_rejected").await;
    let o = order(&s, &c, &c_order).await;
    assert_eq!(o["status"], "created", "unpaid: {o}");
    assert!(o["paid_at"].is_null(), "{o}");
    let held = appointment(&s, &c, &c_appt).await;
    assert_eq!(held["status"], "held", "{held}");
    assert!(held["slip_no"].is_null(), "{held}");
    let msgs = messages(&s, &c).await;
    assert_eq!(count_kind(&msgs, "booking_success") + count_kind(&msgs, "payment_success"), 0, "{msgs:?}");

    // The stored orders: the delivered-five-times notification is recorded once.
    // The metrics agree: two payments (a and b), every other delivery of b a duplicate.
    let metrics = s.get("/metrics", None).await.text().await.unwrap();
    let counter = |outcome: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("payment_notifications_total{") && l.contains(&format!("outcome=\"{outcome}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or(0)
    };
    eprintln!(
        "booking_flow: notifications paid {}, duplicate {}, rejected {}",
        counter("paid"),
        counter("duplicate"),
        counter("rejected")
    );
    assert_eq!(counter("paid"), 2, "{metrics}");
    assert!(counter("duplicate") >= 5, "{metrics}");
    assert!(counter("rejected") >= 3, "{metrics}");
    let dir = s.stop();
    let store = hospital_store::EmbeddedStore::open(dir.path()).expect("open the store");
    use hospital_store::BookingStore;
    let id = hospital_domain::OrderId(uuid::Uuid::parse_str(&b_order).unwrap());
    let stored = store.order(id).await.expect("read").expect("the order");
    assert_eq!(stored.notifications_seen, vec![notification_id], "the notification id, once");
    let id = hospital_domain::OrderId(uuid::Uuid::parse_str(&c_order).unwrap());
    let stored = store.order(id).await.expect("read").expect("the order");
    assert!(stored.notifications_seen.is_empty(), "refused notifications are not recorded: {stored:?}");
    let id = hospital_domain::OrderId(uuid::Uuid::parse_str(&order_id).unwrap());
    let stored = store.order(id).await.expect("read").expect("the order");
    assert_eq!(stored.notifications_seen.len(), 1, "the sandbox's notification, once: {stored:?}");
}

/// (d) An unpaid hold lapses: the appointment expires, the order closes (at the provider too),
/// the place is back, and someone else books it.
#[tokio::test]
async fn unpaid_hold_expires_and_the_place_returns() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_ACTORS__HOLD_TTL_SECS", 2)).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    let date = ahead(20);
    let (session, slots) = create_session(&s, &admin, &docs[1], date, 30, 1, None).await;
    let a = person(&s, 11).await;
    let b = person(&s, 12).await;
    let booked = book_ok(&s, &a, &slots[0]).await;
    let (appt, order_id) = (
        booked["appointment"]["id"].as_str().unwrap().to_string(),
        booked["order"]["id"].as_str().unwrap().to_string(),
    );
    // A prepay order exists at the provider; the payer never pays.
    let r = s.post_empty(&format!("/api/v1/orders/{order_id}/wechat-pay"), Some(&a.token)).await;
    ok_json(r).await;
    assert_eq!(remaining(&s, &docs[1], date, &session).await, vec![0]);
    conflict(book(&s, &b, &slots[0]).await, "sold_out").await;

    let expired = appointment_becomes(&s, &a, &appt, "expired").await;
    assert!(expired["slip_no"].is_null(), "{expired}");
    order_becomes(&s, &a, &order_id, "closed").await;
    assert_eq!(remaining(&s, &docs[1], date, &session).await, vec![1], "the place is back");
    // Too late to pay: the provider refuses too.
    let r = s.post_empty(&format!("/sandbox/wechatpay/sandbox/pay/{}", out_trade_no(&order_id)), None).await;
    assert!(r.status().is_client_error(), "paying a closed order: {}", r.status());
    assert_eq!(appointment(&s, &a, &appt).await["status"], "expired");
    let msgs = messages(&s, &a).await;
    assert_eq!(count_kind(&msgs, "booking_failure"), 1, "{msgs:?}");

    let booked = book_ok(&s, &b, &slots[0]).await;
    assert_eq!(booked["appointment"]["place"], 1, "the freed place: {booked}");
    assert_eq!(remaining(&s, &docs[1], date, &session).await, vec![0]);
}

/// (e) cancelling a paid booking refunds it; (f) 停诊; (g) a waitlist offer; (h) rescheduling;
/// (i) access control. One server, a session each.
#[tokio::test]
async fn cancel_stop_waitlist_reschedule_and_access() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    let date = ahead(20);

    // (e) Cancel a paid booking: refunding, then refunded (the sandbox's REFUND.SUCCESS), the
    // place is free, a refund message.
    let doc = &docs[2];
    let (session, slots) = create_session(&s, &admin, doc, date, 30, 1, None).await;
    let p = person(&s, 21).await;
    let booked = book_ok(&s, &p, &slots[0]).await;
    let (appt, order_id) = (
        booked["appointment"]["id"].as_str().unwrap().to_string(),
        booked["order"]["id"].as_str().unwrap().to_string(),
    );
    pay(&s, &p, &order_id).await;
    appointment_becomes(&s, &p, &appt, "confirmed").await;
    let r = s.post_empty(&format!("/api/v1/appointments/{appt}/cancel"), Some(&p.token)).await;
    let cancelled = ok_json(r).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cancel_reason"], "patient", "{cancelled}");
    assert_eq!(remaining(&s, doc, date, &session).await, vec![1], "the place is free again");
    // Polled by hand: every state seen is recorded, to check the order of states.
    let mut seen: Vec<String> = Vec::new();
    let started = Instant::now();
    let refunded = loop {
        let o = order(&s, &p, &order_id).await;
        let st = o["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "refunded" {
            break o;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "not refunded within 20 s: {o}; states {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("booking_flow: order states seen after the cancel: {seen:?}");
    let order_of = |st: &str| ["paid", "refunding", "refunded"].iter().position(|x| *x == st);
    let ranks: Vec<_> = seen.iter().map(|x| order_of(x).unwrap_or_else(|| panic!("unexpected state {x}"))).collect();
    assert!(ranks.windows(2).all(|w| w[0] < w[1]), "paid -> refunding -> refunded, never back: {seen:?}");
    assert_eq!(refunded["refunded"], refunded["amount"], "refunded in full: {refunded}");
    let (sr, pr) = (&s, &p);
    let msgs = eventually("a refund message", Duration::from_secs(10), move || async move {
        let m = messages(sr, pr).await;
        if count_kind(&m, "refund") == 1 {
            Ok(m)
        } else {
            Err(format!("{m:?}"))
        }
    })
    .await;
    assert_eq!(count_kind(&msgs, "booking_success"), 1);
    let other = person(&s, 22).await;
    book_ok(&s, &other, &slots[0]).await;

    // (f) 停诊 with one paid booking, one hold, two on the waitlist.
    let doc = &docs[3];
    let (session, slots) = create_session(&s, &admin, doc, date, 30, 2, None).await;
    let paid = person(&s, 31).await;
    let holding = person(&s, 32).await;
    let w1 = person(&s, 33).await;
    let w2 = person(&s, 34).await;
    let b1 = book_ok(&s, &paid, &slots[0]).await;
    let paid_order = b1["order"]["id"].as_str().unwrap().to_string();
    pay(&s, &paid, &paid_order).await;
    appointment_becomes(&s, &paid, b1["appointment"]["id"].as_str().unwrap(), "confirmed").await;
    let b2 = book_ok(&s, &holding, &slots[0]).await;
    let held_order = b2["order"]["id"].as_str().unwrap().to_string();
    queue_after_sold_out(&s, &session, &slots[0], &[&w1, &w2]).await;
    assert_eq!(session_view(&s, doc, date, &session).await["waiting"], 2);
    let r = s.post_empty(&format!("/api/v1/admin/sessions/{session}/stop"), Some(&admin)).await;
    let stop = ok_json(r).await;
    let cancelled = stop["cancelled"].as_array().expect("cancelled");
    assert_eq!(cancelled.len(), 2, "{stop}");
    assert!(cancelled.iter().all(|a| a["status"] == "cancelled" && a["cancel_reason"] == "clinic_stopped"), "{stop}");
    assert_eq!(stop["refunds"], 1, "{stop}");
    assert_eq!(stop["waitlist_cleared"], 2, "{stop}");
    order_becomes(&s, &paid, &paid_order, "refunded").await;
    order_becomes(&s, &holding, &held_order, "closed").await;
    for who in [&paid, &holding, &w1, &w2] {
        let msgs = messages(&s, who).await;
        assert_eq!(count_kind(&msgs, "clinic_stopped"), 1, "{msgs:?}");
    }
    let late = person(&s, 35).await;
    conflict(book(&s, &late, &slots[0]).await, "session_stopped").await;
    conflict(join_waitlist(&s, &session, &late).await, "session_stopped").await;
    let view = session_view(&s, doc, date, &session).await;
    assert_eq!(view["waiting"], 0, "{view}");
    assert_eq!(view["status"], "stopped", "{view}");
    let listed = s.get_json(&format!("/api/v1/admin/sessions/{session}/appointments"), Some(&admin)).await;
    assert_eq!(listed, json!([]), "no live bookings left");

    // (g) A waitlist offer: A holds the only place, B waits, A cancels: B holds it.
    let doc = &docs[4];
    let (session, slots) = create_session(&s, &admin, doc, date, 30, 1, None).await;
    let a = person(&s, 41).await;
    let b = person(&s, 42).await;
    let ba = book_ok(&s, &a, &slots[0]).await;
    assert_eq!(expect_json(join_waitlist(&s, &session, &b).await, 201).await["position"], 1);
    cancel_ok(&s, &a, ba["appointment"]["id"].as_str().unwrap()).await;
    let offered = only_live(&s, &b, "B's offer").await;
    assert_eq!(offered["status"], "held", "{offered}");
    assert_eq!(offered["from_waitlist"], true, "{offered}");
    assert_eq!(offered["slot_id"], slots[0].as_str(), "{offered}");
    let msgs = messages(&s, &b).await;
    assert_eq!(count_kind(&msgs, "waitlist_offer"), 1, "{msgs:?}");
    assert_eq!(session_view(&s, doc, date, &session).await["waiting"], 0);
    assert_eq!(remaining(&s, doc, date, &session).await, vec![0]);
    // The offer is an order like any other: B pays it.
    let offered_order = offered["order_id"].as_str().unwrap().to_string();
    pay(&s, &b, &offered_order).await;
    appointment_becomes(&s, &b, offered["id"].as_str().unwrap(), "confirmed").await;

    // (h) Reschedule to another session of the same doctor: one live appointment throughout.
    let doc = &docs[5];
    let d2 = ahead(22);
    let d3 = ahead(24);
    let (s1, slots1) = create_session(&s, &admin, doc, date, 30, 1, None).await;
    let (s2, slots2) = create_session(&s, &admin, doc, d2, 30, 1, None).await;
    let (_s3, slots3) = create_session(&s, &admin, doc, d3, 30, 1, None).await;
    let p = person(&s, 51).await;
    let q = person(&s, 52).await;
    let first = book_ok(&s, &p, &slots1[0]).await;
    let old_id = first["appointment"]["id"].as_str().unwrap().to_string();
    pay(&s, &p, first["order"]["id"].as_str().unwrap()).await;
    appointment_becomes(&s, &p, &old_id, "confirmed").await;
    let r = s
        .post(&format!("/api/v1/appointments/{old_id}/reschedule"), Some(&p.token), json!({ "slot_id": slots2[0] }))
        .await;
    let moved = ok_json(r).await;
    let new_id = moved["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);
    assert_eq!(moved["status"], "confirmed", "a paid booking stays paid: {moved}");
    assert_eq!(moved["rescheduled_from"], old_id.as_str(), "{moved}");
    assert_eq!(moved["date"], d2.to_string(), "{moved}");
    let old = appointment(&s, &p, &old_id).await;
    assert_eq!(old["status"], "cancelled", "{old}");
    assert_eq!(old["cancel_reason"], "rescheduled", "{old}");
    let list = s.get_json("/api/v1/appointments", Some(&p.token)).await;
    let l = live(&list);
    assert_eq!(l.len(), 1, "exactly one live appointment: {list}");
    assert_eq!(l[0]["id"], new_id.as_str());
    assert_eq!(remaining(&s, doc, date, &s1).await, vec![1], "the old place is free");
    assert_eq!(remaining(&s, doc, d2, &s2).await, vec![0]);
    // Into a full slot: 409, and the booking stays where it was.
    book_ok(&s, &q, &slots3[0]).await;
    let r = s
        .post(&format!("/api/v1/appointments/{new_id}/reschedule"), Some(&p.token), json!({ "slot_id": slots3[0] }))
        .await;
    conflict(r, "sold_out").await;
    let still = appointment(&s, &p, &new_id).await;
    assert_eq!(still["status"], "confirmed", "{still}");
    assert_eq!(still["slot_id"], slots2[0].as_str(), "{still}");
    let list = s.get_json("/api/v1/appointments", Some(&p.token)).await;
    assert_eq!(live(&list).len(), 1, "{list}");
    assert_eq!(remaining(&s, doc, d2, &s2).await, vec![0]);

    // (i) A patient's token on the back office: 403. Another account: my appointment and
    // order do not exist for it (404).
    let r = s.post_empty(&format!("/api/v1/admin/sessions/{s2}/stop"), Some(&q.token)).await;
    assert_error(r, 403, "forbidden").await;
    let r = s.get(&format!("/api/v1/admin/sessions/{s2}/appointments"), Some(&q.token)).await;
    assert_error(r, 403, "forbidden").await;
    let r = s.patch(&format!("/api/v1/admin/sessions/{s2}"), Some(&q.token), json!({ "release_at": Utc::now() })).await;
    assert_error(r, 403, "forbidden").await;
    let r = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/sessions/{s2}/segments/0/quota"),
            Some(&q.token),
            Some(json!({ "quota": 9 })),
        )
        .await;
    assert_error(r, 403, "forbidden").await;
    let r = s.post(&format!("/api/v1/admin/doctors/{doc}/sessions"), Some(&q.token), json!({})).await;
    assert_eq!(r.status(), 403, "{}", r.text().await.unwrap_or_default());
    let r = s.post(&format!("/api/v1/admin/orders/{order_id}/refund"), Some(&q.token), json!({ "reason": "x" })).await;
    assert_error(r, 403, "forbidden").await;
    let my_order = moved["order_id"].as_str().unwrap();
    assert_error(s.get(&format!("/api/v1/appointments/{new_id}"), Some(&q.token)).await, 404, "not_found").await;
    assert_error(s.get(&format!("/api/v1/orders/{my_order}"), Some(&q.token)).await, 404, "not_found").await;
    let r = s.post_empty(&format!("/api/v1/appointments/{new_id}/cancel"), Some(&q.token)).await;
    assert_error(r, 404, "not_found").await;
    let r = s.post_empty(&format!("/api/v1/orders/{my_order}/wechat-pay"), Some(&q.token)).await;
    assert_error(r, 404, "not_found").await;
    let r = s
        .post(&format!("/api/v1/appointments/{new_id}/reschedule"), Some(&q.token), json!({ "slot_id": slots1[0] }))
        .await;
    assert_error(r, 404, "not_found").await;
    // Booking with someone else's patient: not found either.
    let r = s
        .post("/api/v1/appointments", Some(&q.token), json!({ "slot_id": slots1[0], "patient_id": p.patient_id }))
        .await;
    assert_error(r, 404, "not_found").await;
    // And my own still work.
    assert_eq!(appointment(&s, &p, &new_id).await["status"], "confirmed");
    let listed = s.get_json(&format!("/api/v1/admin/sessions/{s2}/appointments"), Some(&admin)).await;
    let ids: BTreeSet<&str> = listed.as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, BTreeSet::from([new_id.as_str()]), "{listed}");
}

/// (j) A waitlist offer keeps the real-name rules: W1 waits for doctor A's only place, then books
/// doctor B of the same department on the same day; when A's place frees, W1 (who may not hold
/// two bookings in one department on one day) leaves the line with a message and the place goes
/// to W2, next in line.
#[tokio::test]
async fn a_waitlist_offer_passes_over_who_booked_the_department_that_day() {
    let s = TestServer::start(booking_opts()).await;
    let admin = staff(&s).await;
    let (doc_a, doc_b) = two_doctors_of_a_department(&s).await;
    let date = ahead(23);
    let (session_a, slots_a) = create_session(&s, &admin, &doc_a, date, 30, 1, None).await;
    let (_, slots_b) = create_session(&s, &admin, &doc_b, date, 30, 5, None).await;
    let (holder, w1, w2) = (person(&s, 71).await, person(&s, 72).await, person(&s, 73).await);
    let held = book_ok(&s, &holder, &slots_a[0]).await;
    queue_after_sold_out(&s, &session_a, &slots_a[0], &[&w1, &w2]).await;
    // While waiting at A, W1 takes a place at B (allowed: a waitlist entry is not a booking).
    let at_b = book_ok(&s, &w1, &slots_b[0]).await;

    cancel_ok(&s, &holder, held["appointment"]["id"].as_str().unwrap()).await;
    let offered = only_live(&s, &w2, "W2's offer").await;
    assert_eq!(offered["from_waitlist"], true, "{offered}");
    assert_eq!(offered["slot_id"], slots_a[0].as_str(), "{offered}");
    // W1 still has exactly the booking at B, and was told why the offer passed them over.
    let list = s.get_json("/api/v1/appointments", Some(&w1.token)).await;
    let l = live(&list);
    assert_eq!(l.len(), 1, "{list}");
    assert_eq!(l[0]["id"], at_b["appointment"]["id"], "{list}");
    let msgs = messages(&s, &w1).await;
    let passed: Vec<&Value> = msgs.iter().filter(|m| m["title"] == "候补未成功").collect();
    assert_eq!(passed.len(), 1, "{msgs:?}");
    assert!(passed[0]["body"].as_str().unwrap().contains("当日已有该科室的预约"), "{msgs:?}");
    assert_eq!(count_kind(&msgs, "waitlist_offer"), 0, "{msgs:?}");
    assert_eq!(session_view(&s, &doc_a, date, &session_a).await["waiting"], 0);
    assert_eq!(remaining(&s, &doc_a, date, &session_a).await, vec![0]);
}
