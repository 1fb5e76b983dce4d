//! Patient accounts in the back office (ADM-1), against the real binary: an agent finds an
//! account by phone (masked), views it (audited with the purpose, and only with one), may not
//! disable it; an administrator disables it (the patient's open session is refused at once and
//! no login succeeds), enables it again, and unlocks its password lockout.

use serde_json::json;

use crate::harness::{assert_error, expect_json, ok_json, phone, Opts, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_view_disable_enable_and_unlock_an_account() {
    let opts = Opts::new()
        .env("HOSPITAL_GATEWAY__AUTH__PASSWORD_MAX_WRONG", 2)
        .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", 50);
    let s = TestServer::start(opts).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let body = json!({ "username": "zhou_agent", "name": "周客服", "password": "Agent-pass-2026", "roles": ["agent"] });
    expect_json(s.post("/api/v1/admin/staff", Some(&admin), body).await, 201).await;
    let agent = s.staff_login("zhou_agent", "Agent-pass-2026").await;

    let p = phone(5151);
    let patient = s.login(&p).await;
    let account = s.get_json("/api/v1/me", Some(&patient)).await["id"].as_str().unwrap().to_string();

    // Found by phone, shown masked.
    let found = s.get_json(&format!("/api/v1/admin/patients?phone={p}"), Some(&agent)).await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], account.as_str());
    assert_eq!(found[0]["phone"], format!("{}****{}", &p[..3], &p[7..]));
    assert_eq!(found[0]["disabled"], false);
    assert!(!found[0].to_string().contains(&p), "the full phone never leaves: {}", found[0]);
    assert!(s
        .get_json(&format!("/api/v1/admin/patients?phone={}", phone(5152)), Some(&agent))
        .await
        .as_array()
        .unwrap()
        .is_empty());

    // A view needs a purpose and is audited with it.
    let r = s.get(&format!("/api/v1/admin/patients/{account}"), Some(&agent)).await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "purpose");
    let detail = s.get_json(&format!("/api/v1/admin/patients/{account}?purpose=complaint%20123"), Some(&agent)).await;
    assert_eq!(detail["account"]["id"], account.as_str());
    assert!(detail["disabled"].is_null());
    let log = s.get_json(&format!("/api/v1/admin/audit?account={account}"), Some(&admin)).await;
    let view = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"]["action"] == "patient.view")
        .expect("view audited");
    assert_eq!(view["event"]["purpose"], "complaint 123");
    assert_eq!(view["event"]["actor"]["roles"], json!(["agent"]));

    // An agent may not disable; an administrator may, and the open session ends at once.
    let reason = json!({ "reason": "冒用他人身份" });
    assert_error(
        s.post(&format!("/api/v1/admin/patients/{account}/disable"), Some(&agent), reason.clone()).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(s.get("/api/v1/me", Some(&patient)).await.status(), 200);
    let r = s.post(&format!("/api/v1/admin/patients/{account}/disable"), Some(&admin), reason).await;
    assert_eq!(r.status(), 204);
    assert_error(s.get("/api/v1/me", Some(&patient)).await, 401, "invalid_token").await;
    let code = s.sms_code(&p).await;
    let r = s.post("/api/v1/auth/sms/login", None, json!({ "phone": p, "code": code })).await;
    assert_error(r, 403, "account_disabled").await;
    let detail = s.get_json(&format!("/api/v1/admin/patients/{account}?purpose=review"), Some(&admin)).await;
    assert_eq!(detail["disabled"]["reason"], "冒用他人身份");

    // Enabled again: logins work.
    assert_eq!(s.post_empty(&format!("/api/v1/admin/patients/{account}/enable"), Some(&admin)).await.status(), 204);
    let patient = s.login(&p).await;
    assert_eq!(s.get("/api/v1/me", Some(&patient)).await.status(), 200);

    // Wrong passwords lock the phone; unlocking clears it.
    let wrong = json!({ "login": p, "password": "Wrong-pass-1" });
    for _ in 0..2 {
        assert_error(s.post("/api/v1/auth/password/login", None, wrong.clone()).await, 401, "invalid_credentials")
            .await;
    }
    assert_error(s.post("/api/v1/auth/password/login", None, wrong.clone()).await, 429, "login_locked").await;
    assert_eq!(s.post_empty(&format!("/api/v1/admin/patients/{account}/unlock"), Some(&admin)).await.status(), 204);
    assert_error(s.post("/api/v1/auth/password/login", None, wrong).await, 401, "invalid_credentials").await;

    // Every one of these is in the account's access history.
    let log = ok_json(s.get(&format!("/api/v1/admin/audit?account={account}"), Some(&admin)).await).await;
    let actions: Vec<&str> =
        log["entries"].as_array().unwrap().iter().map(|e| e["event"]["action"].as_str().unwrap()).collect();
    for a in ["patient.view", "patient.disable", "patient.enable", "patient.unlock"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
}
