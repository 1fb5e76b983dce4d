//! SET-2 against the real binary: nothing is asked until the hospital publishes a text; after a
//! version is published every patient route but reading the texts, accepting them and logging in
//! answers 403 `consent_required` naming what to accept, until the patient accepts; a new
//! version asks again; staff are never asked; only `content.write` publishes. The patient socket
//! is held to the same gate.

use serde_json::json;

use crate::booking_flow::{booking_opts, person, staff};
use crate::harness::{assert_error, expect_json, ok_json, phone, TestServer};
use crate::realtime::{Enc, End, Ws};

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

/// The error frame and the close a socket gets from the consent gate.
async fn refused_by_consent(ws: &mut Ws) {
    let frame = ws.next().await.expect("an error frame before the close");
    assert_eq!((frame["type"].as_str(), frame["payload"]["code"].as_str()), (Some("error"), Some("consent_required")));
    assert!(frame["payload"]["message"].as_str().unwrap().contains("隐私政策"), "names what to accept: {frame}");
    assert_eq!(ws.until_end().await, End::Close(4003));
}

/// SET-2 on the patient socket: no more than REST allows. Before consenting a socket is refused
/// (the token on the upgrade or in an auth frame) with REST's code, and an open socket is closed
/// within a heartbeat when a new version is published; after consenting it opens again.
#[tokio::test]
async fn the_patient_socket_is_held_to_the_consent_gate() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_GATEWAY__REALTIME__HEARTBEAT_SECS", 1)).await;
    let p = person(&s, 9411).await;
    let admin = staff(&s).await;

    // Nothing published: the socket opens and stays open across heartbeats.
    let mut open = Ws::connect(&s, Some(&p.token), Enc::Json).await;
    assert!(open.next_of("welcome").await["payload"]["account_id"].is_string());
    open.send(json!({ "type": "ping", "id": "p1", "payload": {} })).await;
    open.next_of("pong").await;

    // A version is published: the open socket is told why and closed.
    let v1 = json!({ "kind": "privacy", "title": "隐私政策", "body": "我们如何处理您的个人信息。" });
    expect_json(s.post("/api/v1/admin/policies", Some(&admin), v1).await, 201).await;
    refused_by_consent(&mut open).await;

    // New sockets are refused the same way, whichever way the token comes.
    refused_by_consent(&mut Ws::connect(&s, Some(&p.token), Enc::Json).await).await;
    let mut framed = Ws::connect(&s, None, Enc::Json).await;
    framed.send(json!({ "type": "auth", "payload": { "token": p.token } })).await;
    refused_by_consent(&mut framed).await;
    assert_error(s.get("/api/v1/me/patients", Some(&p.token)).await, 403, "consent_required").await;

    // Accepted: the socket opens again.
    let accept = json!({ "kind": "privacy", "version": 1 });
    expect_json(s.post("/api/v1/me/consents", Some(&p.token), accept).await, 201).await;
    let mut back = Ws::connect(&s, Some(&p.token), Enc::Json).await;
    back.next_of("welcome").await;
    back.send(json!({ "type": "ping", "id": "p2", "payload": {} })).await;
    back.next_of("pong").await;
}
