//! Real-name rules for 就诊人 across accounts: knowing someone's ID number is not enough to add
//! them (name and number are checked together with the real-name provider, here the Aliyun
//! cloudauth sandbox), only a few accounts may hold one person, and the account holding the
//! person's `self` record is told when another account adds them.

use serde_json::{json, Value};

use crate::harness::{assert_error, expect_json, ok_json, phone, TestServer};

/// A valid ID number (GB 11643 check character) that no other test uses.
const PERSON: &str = "330106198807150015";
/// Registered in the sandbox as having no record at the provider.
const UNKNOWN: &str = "330106198807150023";

async fn add(s: &TestServer, token: &str, name: &str, id_card_no: &str, relation: &str) -> reqwest::Response {
    s.post("/api/v1/me/patients", Some(token), json!({ "name": name, "id_card_no": id_card_no, "relation": relation }))
        .await
}

async fn patients(s: &TestServer, token: &str) -> Vec<Value> {
    s.get_json("/api/v1/me/patients", Some(token)).await.as_array().expect("a list").clone()
}

async fn system_notices(s: &TestServer, token: &str) -> Vec<Value> {
    let list = s.get_json("/api/v1/me/messages?category=system", Some(token)).await;
    list.as_array().expect("a list").iter().filter(|m| m["kind"] == "system_notice").cloned().collect()
}

#[tokio::test]
async fn another_account_needs_the_real_name_is_capped_and_the_person_is_told() {
    let s = TestServer::start(crate::booking_flow::booking_opts()).await;
    let a = s.login(&phone(7101)).await;
    let b = s.login(&phone(7102)).await;
    let c = s.login(&phone(7103)).await;
    let d = s.login(&phone(7104)).await;

    // A adds herself.
    let own = expect_json(add(&s, &a, "王小明", PERSON, "self").await, 201).await;
    assert!(system_notices(&s, &a).await.is_empty(), "adding oneself tells nobody");

    // B knows A's ID number but not her name: refused, nothing stored, A not bothered.
    let refused = assert_error(add(&s, &b, "李四", PERSON, "parent").await, 422, "real_name_mismatch").await;
    assert!(!refused.to_string().contains(PERSON), "the error does not echo the ID number: {refused}");
    assert!(patients(&s, &b).await.is_empty(), "a refused add stores nothing");
    assert!(system_notices(&s, &a).await.is_empty(), "a refused add tells nobody");

    // With the right name B may add her, and A is told (in her message centre).
    let added = expect_json(add(&s, &b, "王小明", PERSON, "parent").await, 201).await;
    assert_eq!(added["name"], "王小明");
    let notices = system_notices(&s, &a).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let text = format!("{} {}", notices[0]["title"], notices[0]["body"]);
    assert!(text.contains("王小明") && text.contains(own["id_card_no"].as_str().unwrap()), "{text}");
    assert!(!text.contains(PERSON), "the message shows the ID number masked: {text}");
    assert_eq!(notices[0]["related"], own["id"], "it points at A's own record");
    assert_eq!(notices[0]["read"], false);
    assert!(system_notices(&s, &b).await.is_empty(), "the adder is not told about itself");

    // A third account reaches the cap (3 accounts per person); a fourth is refused.
    expect_json(add(&s, &c, "王小明", PERSON, "child").await, 201).await;
    assert_eq!(system_notices(&s, &a).await.len(), 2);
    assert_error(add(&s, &d, "王小明", PERSON, "other").await, 409, "person_account_cap").await;
    assert!(patients(&s, &d).await.is_empty());
    assert_eq!(system_notices(&s, &a).await.len(), 2, "a refused add tells nobody");

    // B lets go of her: the place is free for D.
    let b_record = added["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("/api/v1/me/patients/{b_record}"), Some(&b)).await.status(), 204);
    expect_json(add(&s, &d, "王小明", PERSON, "other").await, 201).await;
    assert_eq!(system_notices(&s, &a).await.len(), 3);

    // The provider was asked twice (A's add and B's wrong name): a name it confirmed once is
    // not checked again for the same ID number.
    let record = s.get_json(&format!("/sandbox/real-name/persons?id_card_no={PERSON}"), None).await;
    assert_eq!(record["name"], "王小明", "{record}");
    assert_eq!(record["checks"], 2, "{record}");

    // An ID number the provider has no record of is refused too.
    let r = s.post("/sandbox/real-name/persons", None, json!({ "id_card_no": UNKNOWN, "name": null })).await;
    ok_json(r).await;
    assert_error(add(&s, &d, "赵六", UNKNOWN, "child").await, 422, "real_name_no_record").await;
    assert_eq!(patients(&s, &d).await.len(), 1);
}

#[tokio::test]
async fn provider_outage_is_503_and_stores_nothing() {
    // A configured provider is used even in sandbox mode; this one is a closed port, so every
    // check fails in transport.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let opts = crate::booking_flow::booking_opts()
        .env("HOSPITAL_ALIYUN_CLOUDAUTH__ACCESS_KEY_ID", "LTAI-test")
        .env("HOSPITAL_ALIYUN_CLOUDAUTH__ACCESS_KEY_SECRET", "not-used")
        .env("HOSPITAL_ALIYUN_CLOUDAUTH__ENDPOINT", format!("http://{closed}"));
    let s = TestServer::start(opts).await;
    let a = s.login(&phone(7111)).await;
    assert_error(add(&s, &a, "王小明", PERSON, "self").await, 503, "unavailable").await;
    assert!(patients(&s, &a).await.is_empty());
}

#[tokio::test]
async fn guessing_names_is_capped_per_day() {
    let opts = crate::booking_flow::booking_opts().env("HOSPITAL_GATEWAY__REAL_NAME__DAILY_FAILURES", 2);
    let s = TestServer::start(opts).await;
    let (a, b) = (s.login(&phone(7121)).await, s.login(&phone(7122)).await);
    expect_json(add(&s, &a, "王小明", PERSON, "self").await, 201).await;
    for guess in ["王小红", "王晓明"] {
        assert_error(add(&s, &b, guess, PERSON, "other").await, 422, "real_name_mismatch").await;
    }
    // The third guess of the day is not even asked.
    let r = add(&s, &b, "王小民", PERSON, "other").await;
    let wait = crate::harness::retry_after(&r).expect("Retry-After");
    assert!(wait > 0 && wait <= 24 * 3600, "until the hospital's midnight: {wait}");
    assert_error(r, 429, "real_name_attempts").await;
    let record = s.get_json(&format!("/sandbox/real-name/persons?id_card_no={PERSON}"), None).await;
    assert_eq!(record["checks"], 3, "A's check and B's two guesses: {record}");
    // Another account is not held back by B's guesses.
    let c = s.login(&phone(7123)).await;
    expect_json(add(&s, &c, "王小明", PERSON, "child").await, 201).await;
}
