//! The account's settings against the real binary (SET-1, MSG-1): a first password set with an
//! SMS code, then changed with the current one (a wrong one refused), each change ending the
//! other devices' sessions but not this one; ending the other sessions on demand; unbinding the
//! phone refused while it is the only way to sign in and allowed, with a code, once WeChat is
//! bound; a message read in full, marked unread again and read, never another account's.

use serde_json::{json, Value};
use std::time::Duration;

use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, TestServer};

async fn put_password(s: &TestServer, token: &str, body: Value) -> reqwest::Response {
    s.request(reqwest::Method::PUT, "/api/v1/me/password", Some(token), Some(body)).await
}

async fn password_login(s: &TestServer, login: &str, password: &str) -> reqwest::Response {
    s.post("/api/v1/auth/password/login", None, json!({ "login": login, "password": password })).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_phones_and_other_devices_are_the_accounts_to_change() {
    let s = TestServer::start(
        Opts::new()
            .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", 50),
    )
    .await;
    let p = phone(8801);
    let phone_token = s.login(&p).await;
    let tablet = s.login_full(&p, "tablet").await["token"].as_str().unwrap().to_string();

    // A first password needs a code sent to the bound phone, and a policy-conforming password.
    let r = put_password(&s, &phone_token, json!({ "new_password": "First-pass-2026" })).await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "code");
    let code = s.sms_code(&p).await;
    let r = put_password(&s, &phone_token, json!({ "new_password": "short", "code": code })).await;
    assert_eq!(r.status().as_u16(), 422);
    let body = json!({ "new_password": "First-pass-2026", "code": "000000" });
    assert_eq!(put_password(&s, &phone_token, body).await.status().as_u16() / 100, 4, "a wrong code is refused");
    let code = s.sms_code(&p).await;
    let set = expect_json(
        put_password(&s, &phone_token, json!({ "new_password": "First-pass-2026", "code": code })).await,
        200,
    )
    .await;
    assert_eq!(
        (set["account"]["has_password"].as_bool(), set["ended_sessions"].as_u64()),
        (Some(true), Some(1)),
        "{set}"
    );
    // The tablet is signed out; this device is not; the password signs in.
    assert_error(s.get("/api/v1/me", Some(&tablet)).await, 401, "invalid_token").await;
    ok_json(s.get("/api/v1/me", Some(&phone_token)).await).await;
    ok_json(password_login(&s, &p, "First-pass-2026").await).await;

    // Changing it needs the current one; a wrong one is refused and changes nothing.
    let r = put_password(&s, &phone_token, json!({ "new_password": "Second-pass-2026" })).await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "current_password");
    let wrong = json!({ "current_password": "Not-it-2026", "new_password": "Second-pass-2026" });
    assert_error(put_password(&s, &phone_token, wrong).await, 401, "invalid_credentials").await;
    ok_json(password_login(&s, &p, "First-pass-2026").await).await;
    let right = json!({ "current_password": "First-pass-2026", "new_password": "Second-pass-2026" });
    let changed = expect_json(put_password(&s, &phone_token, right).await, 200).await;
    assert_eq!(changed["ended_sessions"], 2, "both password logins ended: {changed}");
    assert_error(password_login(&s, &p, "First-pass-2026").await, 401, "invalid_credentials").await;
    ok_json(password_login(&s, &p, "Second-pass-2026").await).await;

    // Ending the other devices' sessions on demand.
    let other = s.login_full(&p, "other").await["token"].as_str().unwrap().to_string();
    let ended = ok_json(s.post_empty("/api/v1/auth/logout-others", Some(&phone_token)).await).await;
    assert_eq!(ended["ended"], 2, "the password login and `other`: {ended}");
    assert_error(s.get("/api/v1/me", Some(&other)).await, 401, "invalid_token").await;
    let devices = ok_json(s.get("/api/v1/auth/sessions", Some(&phone_token)).await).await;
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");

    // The phone is this account's only way to sign in (no WeChat, no e-mail): unbinding refused.
    let code = s.sms_code(&p).await;
    let r = s.post("/api/v1/me/phone/unbind", Some(&phone_token), json!({ "code": code })).await;
    assert_error(r, 409, "last_sign_in_method").await;
    assert_eq!(
        ok_json(s.get("/api/v1/me", Some(&phone_token)).await).await["phone"].as_str().map(|p| p.contains('*')),
        Some(true)
    );

    // A WeChat account with a bound phone may unbind it, with a code sent to it.
    let wx = ok_json(s.post("/sandbox/wechat/login-code", None, json!({ "user": "settings-user" })).await).await;
    let login =
        ok_json(s.post("/api/v1/auth/wechat/login", None, json!({ "code": wx["code"], "device": "mp" })).await).await;
    let wx_token = login["token"].as_str().unwrap().to_string();
    let q = phone(8802);
    let code = s.sms_code(&q).await;
    let bound = ok_json(s.post("/api/v1/me/phone", Some(&wx_token), json!({ "phone": q, "code": code })).await).await;
    assert!(bound["phone"].is_string(), "{bound}");
    let r = s.post("/api/v1/me/phone/unbind", Some(&wx_token), json!({ "code": "000000" })).await;
    assert_eq!(r.status().as_u16() / 100, 4, "a wrong code is refused");
    let code = s.sms_code(&q).await;
    let unbound = ok_json(s.post("/api/v1/me/phone/unbind", Some(&wx_token), json!({ "code": code })).await).await;
    assert!(unbound["phone"].is_null(), "{unbound}");
    // The phone is free: an SMS login to it is a new account.
    assert_eq!(s.login_full(&q, "new").await["new_account"], true);
    let code = s.sms_code(&q).await;
    let r = s.post("/api/v1/me/phone/unbind", Some(&wx_token), json!({ "code": code })).await;
    assert_error(r, 409, "no_phone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_read_in_full_marked_unread_again_and_kept_from_other_accounts() {
    let s = TestServer::start(Opts::new().env("HOSPITAL_ACTORS__JOBS__TICK_MS", 200)).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let mine = s.login(&phone(8811)).await;
    let theirs = s.login(&phone(8812)).await;
    let body = json!({ "title": "门诊楼电梯检修", "body": "周六上午门诊楼电梯检修，请走楼梯。", "audience": { "kind": "all_patients" } });
    expect_json(s.post("/api/v1/admin/announcements", Some(&admin), body).await, 201).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let list = ok_json(s.get("/api/v1/me/messages", Some(&mine)).await).await;
        if list.as_array().is_some_and(|l| l.iter().any(|m| m["title"] == "门诊楼电梯检修")) {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "never delivered: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = listed.as_array().unwrap().iter().find(|m| m["title"] == "门诊楼电梯检修").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/api/v1/me/messages/{id}");

    let full = ok_json(s.get(&path, Some(&mine)).await).await;
    assert_eq!(
        (full["body"].as_str(), full["read"].as_bool()),
        (Some("周六上午门诊楼电梯检修，请走楼梯。"), Some(false))
    );
    let count = ok_json(s.get("/api/v1/me/messages/unread-count", Some(&mine)).await).await;
    let before = count["count"].as_u64().unwrap();
    let after_read = ok_json(s.post_empty(&format!("{path}/read"), Some(&mine)).await).await;
    assert_eq!(after_read["count"].as_u64(), Some(before - 1));
    assert_eq!(ok_json(s.get(&path, Some(&mine)).await).await["read"], true);
    let again = ok_json(s.post_empty(&format!("{path}/unread"), Some(&mine)).await).await;
    assert_eq!(again["count"].as_u64(), Some(before), "unread again");
    assert_eq!(ok_json(s.get(&path, Some(&mine)).await).await["read"], false);

    // Another account's token finds nothing of it, and changes nothing.
    assert_error(s.get(&path, Some(&theirs)).await, 404, "not_found").await;
    assert_error(s.post_empty(&format!("{path}/read"), Some(&theirs)).await, 404, "not_found").await;
    assert_error(s.post_empty(&format!("{path}/unread"), Some(&theirs)).await, 404, "not_found").await;
    assert_eq!(ok_json(s.get(&path, Some(&mine)).await).await["read"], false);
    assert_error(s.get(&path, None).await, 401, "unauthenticated").await;
}
