//! SET-2 against the real binary: nothing is asked until the hospital publishes a text; after a
//! version is published every patient route but reading the texts, accepting them and logging in
//! answers 403 `consent_required` naming what to accept, until the patient accepts; a new
//! version asks again; staff are never asked; only `content.write` publishes.

use serde_json::json;

use crate::booking_flow::{booking_opts, person, staff};
use crate::harness::{assert_error, expect_json, ok_json, phone, TestServer};

#[tokio::test]
async fn a_published_policy_must_be_accepted_before_anything_else() {
    let s = TestServer::start(booking_opts()).await;
    let p1 = person(&s, 9401).await;
    let p2 = person(&s, 9402).await;
    let admin = staff(&s).await;
    let mine = "/api/v1/me/patients";

    // Nothing published: nothing asked.
    let none = s.get_json("/api/v1/policies", None).await;
    assert_eq!(none, json!([]), "no policy by default");
    ok_json(s.get(mine, Some(&p1.token)).await).await;

    // Only content.write publishes.
    let v1 =
        json!({ "kind": "privacy", "title": "隐私政策", "body": "我们如何收集、使用和保护您的个人信息（第一版）。" });
    assert_error(s.post("/api/v1/admin/policies", Some(&p1.token), v1.clone()).await, 403, "forbidden").await;
    let published = expect_json(s.post("/api/v1/admin/policies", Some(&admin), v1).await, 201).await;
    assert_eq!((published["kind"].as_str(), published["version"].as_u64()), (Some("privacy"), Some(1)));

    // Refused until accepted, the message naming what to accept; the texts read without login.
    let err = assert_error(s.get(mine, Some(&p1.token)).await, 403, "consent_required").await;
    assert!(err["message"].as_str().unwrap().contains("隐私政策"), "{err}");
    assert_error(s.get("/api/v1/me/exams", Some(&p2.token)).await, 403, "consent_required").await;
    let texts = s.get_json("/api/v1/policies", None).await;
    assert_eq!(texts.as_array().map(Vec::len), Some(1), "{texts}");
    assert_eq!(texts[0]["body"], "我们如何收集、使用和保护您的个人信息（第一版）。");
    let one = s.get_json("/api/v1/policies/privacy/1", None).await;
    assert_eq!(one["version"], 1);
    let status = ok_json(s.get("/api/v1/me/consents", Some(&p1.token)).await).await;
    assert_eq!(status["pending"][0]["version"], 1, "{status}");
    // Logging in is allowed (and the new session is refused the same way).
    let again = s.login(&phone(9401)).await;
    assert_error(s.get(mine, Some(&again)).await, 403, "consent_required").await;
    // Staff are not asked.
    ok_json(s.get("/api/v1/staff/me", Some(&admin)).await).await;

    // Accepting lets the patient in; the other patient is still asked.
    let accept = json!({ "kind": "privacy", "version": 1 });
    let c = expect_json(s.post("/api/v1/me/consents", Some(&p1.token), accept.clone()).await, 201).await;
    assert!(c["accepted_at"].is_string(), "{c}");
    ok_json(s.get(mine, Some(&p1.token)).await).await;
    ok_json(s.get(mine, Some(&again)).await).await;
    assert_error(s.get(mine, Some(&p2.token)).await, 403, "consent_required").await;
    assert_error(s.post("/api/v1/me/consents", Some(&admin), accept).await, 403, "forbidden").await;

    // A new version asks again; the old one can no longer be accepted.
    let v2 =
        json!({ "kind": "privacy", "title": "隐私政策（修订）", "body": "第二版：新增了人脸识别信息的处理规则。" });
    let published = expect_json(s.post("/api/v1/admin/policies", Some(&admin), v2).await, 201).await;
    assert_eq!(published["version"], 2);
    let err = assert_error(s.get(mine, Some(&p1.token)).await, 403, "consent_required").await;
    assert!(err["message"].as_str().unwrap().contains("第2版"), "{err}");
    let old = json!({ "kind": "privacy", "version": 1 });
    assert_error(s.post("/api/v1/me/consents", Some(&p1.token), old).await, 409, "policy_outdated").await;
    let missing = json!({ "kind": "terms", "version": 1 });
    assert_error(s.post("/api/v1/me/consents", Some(&p1.token), missing).await, 404, "not_found").await;
    let current = json!({ "kind": "privacy", "version": 2 });
    expect_json(s.post("/api/v1/me/consents", Some(&p1.token), current).await, 201).await;
    ok_json(s.get(mine, Some(&p1.token)).await).await;
    let status = ok_json(s.get("/api/v1/me/consents", Some(&p1.token)).await).await;
    assert_eq!(status["pending"], json!([]));
    assert_eq!(status["accepted"].as_array().map(Vec::len), Some(2), "each version's consent kept: {status}");
    // The old text is still readable by its number.
    assert_eq!(s.get_json("/api/v1/policies/privacy/1", None).await["title"], "隐私政策");
}
