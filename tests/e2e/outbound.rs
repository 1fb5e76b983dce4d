//! Messages sent on by SMS and WeChat (MSG-2, MSG-3) against the real binary: a clinic stop, a
//! payment result and a waitlist offer each reach the sandbox SMS gateway and the WeChat
//! subscribe-message sandbox exactly as each patient's preferences for that kind say, with the
//! kind's approved template; and across kill -9 nothing already sent goes again and nothing
//! written but not yet sent is lost.

use serde_json::{json, Value};
use std::time::Duration;

use crate::booking_flow::{
    ahead, book_ok, booking_opts, create_session, doctors, eventually, pay, person, staff, with_patient, Person,
};
use crate::harness::{ok_json, phone, Opts, TestServer};

/// The sandbox mini-program (src/app.rs): a sandbox user's openid is derived from it.
const SANDBOX_APPID: &str = "wxsandbox0000000";

/// A patient who logged in with WeChat and bound a phone: both channels can reach them.
struct Reachable {
    person: Person,
    phone: String,
    openid: String,
}

fn opts(tick_ms: u64) -> Opts {
    booking_opts().env("HOSPITAL_ACTORS__NOTIFIER__TICK_MS", tick_ms)
}

async fn reachable(s: &TestServer, user: &str, n: u32) -> Reachable {
    let wx = ok_json(s.post("/sandbox/wechat/login-code", None, json!({ "user": user })).await).await;
    let login =
        ok_json(s.post("/api/v1/auth/wechat/login", None, json!({ "code": wx["code"], "device": "mp" })).await).await;
    let token = login["token"].as_str().expect("token").to_string();
    let p = phone(n);
    let code = s.sms_code(&p).await;
    ok_json(s.post("/api/v1/me/phone", Some(&token), json!({ "phone": p, "code": code })).await).await;
    let openid = hospital_integrations::WechatSandbox::new(SANDBOX_APPID, "unused".to_string().into()).openid_for(user);
    Reachable { person: with_patient(s, token, n).await, phone: p, openid }
}

async fn set_channels(s: &TestServer, who: &Person, kind: &str, sms: bool, wechat: bool) {
    let body = json!({ "kinds": [{ "kind": kind, "in_app": true, "sms": sms, "wechat": wechat }] });
    let prefs = ok_json(
        s.request(reqwest::Method::PUT, "/api/v1/me/notification-preferences", Some(&who.token), Some(body)).await,
    )
    .await;
    let set = prefs["kinds"].as_array().unwrap().iter().find(|k| k["kind"] == kind).cloned().unwrap();
    assert_eq!((set["sms"].as_bool(), set["wechat"].as_bool()), (Some(sms), Some(wechat)), "{prefs}");
}

/// The SMS the sandbox gateway took for `phone` with `template`.
async fn sms(s: &TestServer, phone: &str, template: &str) -> Vec<Value> {
    let all = s.get_json(&format!("/sandbox/sms?phone={phone}"), None).await;
    all.as_array().unwrap().iter().filter(|m| m["template_code"] == template).cloned().collect()
}

/// The WeChat subscribe messages the sandbox took for `openid` with `template` and title `thing1`.
async fn wechat(s: &TestServer, openid: &str, template: &str, title: &str) -> Vec<Value> {
    let all = s.get_json(&format!("/sandbox/wechat-subscribe/outbox?openid={openid}"), None).await;
    all.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["template_id"] == template && m["data"]["thing1"] == title)
        .cloned()
        .collect()
}

/// Waits until `probe` counts `n`, then returns what it found.
async fn until_n<F, Fut>(what: &str, n: usize, probe: F) -> Vec<Value>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<Value>>,
{
    let probe = &probe;
    eventually(what, Duration::from_secs(20), move || async move {
        let v = probe().await;
        if v.len() >= n {
            Ok(v)
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await
}

async fn live_appointment(s: &TestServer, who: &Person) -> Value {
    let list = s.get_json("/api/v1/appointments", Some(&who.token)).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["status"] == "held" || a["status"] == "confirmed")
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinic_stops_payments_and_offers_go_out_as_each_patient_chose_once_across_kill_9() {
    let s = TestServer::start(opts(200)).await;
    let admin = staff(&s).await;
    let docs = doctors(&s).await;
    let date = ahead(27);
    // A: every default, plus SMS for payment results (off by default). B: no SMS for clinic stops.
    let a = reachable(&s, "outbound-a", 9101).await;
    let b = reachable(&s, "outbound-b", 9102).await;
    set_channels(&s, &a.person, "payment_success", true, true).await;
    set_channels(&s, &b.person, "clinic_stopped", false, true).await;

    // Both book and pay one session: payment success by WeChat to both, by SMS to A only.
    let (session, slots) = create_session(&s, &admin, &docs[6], date, 30, 2, None).await;
    for who in [&a, &b] {
        let booked = book_ok(&s, &who.person, &slots[0]).await;
        pay(&s, &who.person, booked["order"]["id"].as_str().unwrap()).await;
    }
    let paid_sms = until_n("A's payment SMS", 1, || sms(&s, &a.phone, "SMS_PAYMENT_RESULT")).await;
    assert_eq!(paid_sms[0]["params"]["title"], "支付成功", "{paid_sms:?}");
    assert!(paid_sms[0]["text"].as_str().unwrap().contains("如有疑问请联系医院收费处"), "{paid_sms:?}");
    for who in [&a, &b] {
        until_n("a WeChat payment result", 1, || wechat(&s, &who.openid, "payment-result-tmpl", "支付成功")).await;
    }

    // The clinic stops: SMS to A only, WeChat to both, each once.
    let stop = ok_json(s.post_empty(&format!("/api/v1/admin/sessions/{session}/stop"), Some(&admin)).await).await;
    assert_eq!(stop["cancelled"].as_array().unwrap().len(), 2, "{stop}");
    let stopped = until_n("A's clinic-stop SMS", 1, || sms(&s, &a.phone, "SMS_CLINIC_STOPPED")).await;
    assert_eq!(stopped[0]["params"]["title"], "停诊通知");
    let content = stopped[0]["params"]["content"].as_str().unwrap();
    assert!(content.contains("因故停诊") && content.contains("张三"), "{content}");
    assert!(stopped[0]["text"].as_str().unwrap().ends_with("如需就诊请重新预约。"), "{stopped:?}");
    for who in [&a, &b] {
        let wx =
            until_n("a WeChat clinic stop", 1, || wechat(&s, &who.openid, "clinic-stopped-tmpl", "停诊通知")).await;
        assert!(wx[0]["data"]["thing3"].as_str().unwrap().contains("的门诊因故停"), "{wx:?}");
        assert!(wx[0]["page"].as_str().unwrap().starts_with("pages/messages/detail?id="), "{wx:?}");
    }
    // The refunds of the stop went out by WeChat (the default for refunds): by then every row
    // of the stop has been worked on.
    for who in [&a, &b] {
        until_n("a WeChat refund", 1, || wechat(&s, &who.openid, "payment-result-tmpl", "退费成功")).await;
    }
    assert_eq!(sms(&s, &a.phone, "SMS_CLINIC_STOPPED").await.len(), 1, "once");
    assert!(sms(&s, &b.phone, "SMS_CLINIC_STOPPED").await.is_empty(), "B turned SMS off for clinic stops");
    assert!(sms(&s, &b.phone, "SMS_PAYMENT_RESULT").await.is_empty(), "SMS is off by default for payments");
    assert!(
        sms(&s, &a.phone, "SMS_PAYMENT_RESULT").await.iter().all(|m| m["params"]["title"] == "支付成功"),
        "refunds keep their own preference (SMS off)"
    );
    for who in [&a, &b] {
        assert_eq!(wechat(&s, &who.openid, "clinic-stopped-tmpl", "停诊通知").await.len(), 1, "once");
        let msgs = s.get_json("/api/v1/me/messages?limit=200", Some(&who.person.token)).await;
        let in_app = msgs.as_array().unwrap().iter().filter(|m| m["kind"] == "clinic_stopped").count();
        assert_eq!(in_app, 1, "the message centre has it once, as before");
    }

    // A waitlist offer: C holds the only place, A waits, C cancels: A is offered it.
    let (session2, slots2) = create_session(&s, &admin, &docs[7], date, 30, 1, None).await;
    let c = person(&s, 9103).await;
    let held = book_ok(&s, &c, &slots2[0]).await;
    let r = s
        .post(
            &format!("/api/v1/sessions/{session2}/waitlist"),
            Some(&a.person.token),
            json!({ "patient_id": a.person.patient_id }),
        )
        .await;
    ok_json(r).await;
    let cancel = format!("/api/v1/appointments/{}/cancel", held["appointment"]["id"].as_str().unwrap());
    ok_json(s.post_empty(&cancel, Some(&c.token)).await).await;
    let offer = until_n("A's offer SMS", 1, || sms(&s, &a.phone, "SMS_WAITLIST_OFFER")).await;
    assert_eq!(offer[0]["params"]["title"], "候补成功");
    until_n("A's WeChat offer", 1, || wechat(&s, &a.openid, "waitlist-offer-tmpl", "候补成功")).await;
    assert_eq!(live_appointment(&s, &a.person).await["from_waitlist"], true);

    // Both hold a place in a third session; it is stopped on a server whose notifier takes
    // nothing from its queue (a batch of 0), then killed: the rows are written, not sent.
    // Another day: one booking per department and day.
    let (session3, slots3) = create_session(&s, &admin, &docs[8], ahead(29), 30, 2, None).await;
    for who in [&a, &b] {
        book_ok(&s, &who.person, &slots3[0]).await;
    }
    let dir = s.kill_9();
    let s = TestServer::start(opts(200).env("HOSPITAL_ACTORS__NOTIFIER__BATCH", 0).data_dir(dir)).await;
    let admin = staff(&s).await;
    let stop = ok_json(s.post_empty(&format!("/api/v1/admin/sessions/{session3}/stop"), Some(&admin)).await).await;
    assert_eq!(stop["cancelled"].as_array().unwrap().len(), 2, "{stop}");
    assert!(sms(&s, &a.phone, "SMS_CLINIC_STOPPED").await.is_empty(), "not sent before the kill");
    let dir = s.kill_9();

    // After the restart: the written rows go, once; nothing sent before the kills goes again.
    let s = TestServer::start(opts(200).data_dir(dir)).await;
    let stopped = until_n("A's second clinic-stop SMS", 1, || sms(&s, &a.phone, "SMS_CLINIC_STOPPED")).await;
    assert!(stopped[0]["params"]["content"].as_str().unwrap().contains("因故停诊"), "{stopped:?}");
    for who in [&a, &b] {
        until_n("a WeChat clinic stop after the restart", 1, || {
            wechat(&s, &who.openid, "clinic-stopped-tmpl", "停诊通知")
        })
        .await;
    }
    // Rows are worked on in due order, so by now every older row was looked at again.
    assert_eq!(sms(&s, &a.phone, "SMS_CLINIC_STOPPED").await.len(), 1, "once");
    assert!(sms(&s, &b.phone, "SMS_CLINIC_STOPPED").await.is_empty(), "B's preference still holds");
    assert!(sms(&s, &a.phone, "SMS_PAYMENT_RESULT").await.is_empty(), "not sent again");
    assert!(sms(&s, &a.phone, "SMS_WAITLIST_OFFER").await.is_empty(), "not sent again");
    for who in [&a, &b] {
        assert_eq!(wechat(&s, &who.openid, "clinic-stopped-tmpl", "停诊通知").await.len(), 1, "once");
        assert!(wechat(&s, &who.openid, "payment-result-tmpl", "支付成功").await.is_empty(), "not sent again");
    }
}
