//! Bad input of every kind gets the one error shape with the right status and code, and the
//! server keeps serving. Table-driven: one row per case.

use reqwest::Method;

use crate::harness::{assert_error, phone, Opts, TestServer};

#[derive(Clone, Copy)]
enum Body {
    None,
    Bytes(&'static [u8]),
    /// A JSON object of about this many bytes (too large for the 64 KiB limit).
    Large(usize),
}

struct Case {
    name: &'static str,
    method: &'static str,
    /// `$DOCTOR` is replaced by a real doctor's id.
    path: &'static str,
    /// `$TOKEN` is replaced by a real patient token.
    headers: &'static [(&'static str, &'static str)],
    body: Body,
    status: u16,
    code: &'static str,
    /// The `field` the error must name (and no `field` when `None`).
    field: Option<&'static str>,
    /// A fragment the message must contain.
    message: Option<&'static str>,
}

const JSON: (&str, &str) = ("content-type", "application/json");
const AUTH: (&str, &str) = ("authorization", "Bearer $TOKEN");

const fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case { name, method, path, headers, body, status, code, field: None, message: None }
}

const fn field(c: Case, field: &'static str, message: &'static str) -> Case {
    Case { field: Some(field), message: Some(message), ..c }
}

/// A case whose message must contain `message` (and that names no field).
const fn says(c: Case, message: &'static str) -> Case {
    Case { message: Some(message), ..c }
}

const SEND: &str = "/api/v1/auth/sms/send";
const BOOK: &str = "/api/v1/appointments";
const PATIENTS: &str = "/api/v1/me/patients";

#[rustfmt::skip] // one case per line reads as a table
const CASES: &[Case] = &[
    case("malformed JSON", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":"), 400, "malformed_json"),
    case("not JSON at all", "POST", SEND, &[JSON], Body::Bytes(b"phone=13800138000"), 400, "malformed_json"),
    case("empty body", "POST", SEND, &[JSON], Body::Bytes(b""), 400, "malformed_json"),
    case("wrong type", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":13800138000}"), 422, "invalid_body"),
    case("unknown field", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"13800138000\",\"admin\":true}"), 422, "invalid_body"),
    // The plain parse fails, the second (tracking the path) says where.
    says(case("wrong type inside the body", "POST", BOOK, &[JSON, AUTH], Body::Bytes(b"{\"slot_id\":7,\"patient_id\":\"p\"}"), 422, "invalid_body"), "slot_id"),
    field(case("Idempotency-Key too long", "POST", BOOK, &[JSON, AUTH, ("idempotency-key", "k123456789k123456789k123456789k123456789k123456789k123456789k1234")], Body::Bytes(b"{\"slot_id\":\"s\",\"patient_id\":\"p\"}"), 422, "invalid_field"), "Idempotency-Key", "printable"),
    field(case("Idempotency-Key with a space", "POST", BOOK, &[JSON, AUTH, ("idempotency-key", "retry 1")], Body::Bytes(b"{\"slot_id\":\"s\",\"patient_id\":\"p\"}"), 422, "invalid_field"), "Idempotency-Key", "printable"),
    case("missing field", "POST", SEND, &[JSON], Body::Bytes(b"{}"), 422, "invalid_body"),
    case("missing code", "POST", "/api/v1/auth/sms/login", &[JSON], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 422, "invalid_body"),
    case("unknown enum value", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"11010519491231002X\",\"relation\":\"cousin\"}".as_bytes()), 422, "invalid_body"),
    case("JSON array for an object", "POST", SEND, &[JSON], Body::Bytes(b"[\"13800138000\"]"), 422, "invalid_body"),
    case("JSON string for an object", "POST", SEND, &[JSON], Body::Bytes(b"\"13800138000\""), 422, "invalid_body"),
    case("JSON null for an object", "POST", SEND, &[JSON], Body::Bytes(b"null"), 422, "invalid_body"),
    case("JSON array for a patient", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("[\"张三\",\"11010519491231002X\",\"self\"]".as_bytes()), 422, "invalid_body"),
    case("1 MiB body", "POST", SEND, &[JSON], Body::Large(1 << 20), 413, "payload_too_large"),
    case("1 MiB to the WeChat Pay notify", "POST", "/api/v1/payments/wechat/notify", &[JSON], Body::Large(1 << 20), 413, "payload_too_large"),
    case("1 MiB to the lab webhook", "POST", "/api/v1/lab/exams/00000000-0000-7000-8000-000000000000/status", &[JSON], Body::Large(1 << 20), 413, "payload_too_large"),
    case("unknown method", "FROB", "/healthz", &[], Body::None, 405, "method_not_allowed"),
    case("bad UTF-8 in a path parameter", "GET", "/api/v1/doctors/%FF%FE", &[], Body::None, 404, "not_found"),
    field(case("limit above its maximum", "GET", "/api/v1/doctors?limit=201", &[], Body::None, 422, "invalid_field"), "limit", "200"),
    field(case("limit below its minimum", "GET", "/api/v1/doctors/popular?limit=0", &[], Body::None, 422, "invalid_field"), "limit", "1"),
    field(case("limit beyond 64 bits", "GET", "/api/v1/me/messages?limit=99999999999999999999999", &[AUTH], Body::None, 422, "invalid_field"), "limit", "200"),
    field(case("birth date in year 200000", "PATCH", "/api/v1/me", &[JSON, AUTH], Body::Bytes(b"{\"birth_date\":\"+200000-01-01\"}"), 422, "invalid_field"), "birth_date", "1900"),
    field(case("schedule in year -262143", "GET", "/api/v1/doctors/$DOCTOR/schedule?from=-262143-01-01&to=-262143-01-10", &[], Body::None, 422, "invalid_field"), "from", "1900"),
    case("no content type", "POST", SEND, &[], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 415, "unsupported_media_type"),
    case("text content type", "POST", SEND, &[("content-type", "text/plain")], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 415, "unsupported_media_type"),
    field(case("invalid phone", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"12345\"}"), 422, "invalid_field"), "phone", "11-digit"),
    field(case("landline phone", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"0571-86001120\"}"), 422, "invalid_field"), "phone", "mobile"),
    field(case("ID bad check digit", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"110105194912310021\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "check digit"),
    // 1949-02-30 with a correct check digit: only the date is wrong.
    field(case("ID bad date", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"110105194902300020\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "birth date"),
    field(case("ID bad region", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"990105194912310023\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "region"),
    field(case("ID too short", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"1101051949\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "18 characters"),
    field(case("future birth date", "PATCH", "/api/v1/me", &[JSON, AUTH], Body::Bytes(b"{\"birth_date\":\"2150-01-01\"}"), 422, "invalid_field"), "birth_date", "past"),
    field(case("phone and email", "POST", "/api/v1/auth/register", &[JSON], Body::Bytes(b"{\"phone\":\"13800138000\",\"email\":\"a@example.com\",\"password\":\"abc-12345\"}"), 422, "invalid_field"), "phone", "exactly one"),
    field(case("empty WeChat code", "POST", "/api/v1/auth/wechat/login", &[JSON], Body::Bytes(b"{\"code\":\"  \"}"), 422, "invalid_field"), "code", "wx.login"),
    case("unknown route", "GET", "/api/v1/no-such-thing", &[], Body::None, 404, "not_found"),
    case("unknown route outside the API", "GET", "/wp-admin.php", &[], Body::None, 404, "not_found"),
    case("wrong method", "DELETE", "/api/v1/departments", &[], Body::None, 405, "method_not_allowed"),
    case("GET on a POST route", "GET", SEND, &[], Body::None, 405, "method_not_allowed"),
    case("no token", "GET", "/api/v1/me", &[], Body::None, 401, "unauthenticated"),
    case("no token on logout", "POST", "/api/v1/auth/logout", &[], Body::None, 401, "unauthenticated"),
    case("forged token", "GET", "/api/v1/me", &[("authorization", "Bearer hsp_xxx")], Body::None, 401, "invalid_token"),
    case("basic auth", "GET", "/api/v1/me", &[("authorization", "Basic YWRtaW46YWRtaW4=")], Body::None, 401, "invalid_token"),
    case("bearer without token", "GET", "/api/v1/me", &[("authorization", "Bearer ")], Body::None, 401, "invalid_token"),
    case("token without scheme", "GET", "/api/v1/me", &[("authorization", "hsp_abcdef")], Body::None, 401, "invalid_token"),
    case("bad UUID in a path", "GET", "/api/v1/doctors/not-a-uuid", &[], Body::None, 404, "not_found"),
    case("unknown doctor", "GET", "/api/v1/doctors/00000000-0000-7000-8000-000000000000", &[], Body::None, 404, "not_found"),
    case("bad UUID for a patient", "GET", "/api/v1/me/patients/not-a-uuid", &[AUTH], Body::None, 404, "not_found"),
    case("unknown patient", "DELETE", "/api/v1/me/patients/00000000-0000-7000-8000-000000000000", &[AUTH], Body::None, 404, "not_found"),
    case("bad query", "GET", "/api/v1/doctors?limit=abc", &[], Body::None, 400, "bad_request"),
    case("unknown query parameter", "GET", "/api/v1/doctors?sort=name", &[], Body::None, 400, "bad_request"),
    case("search without q", "GET", "/api/v1/search", &[], Body::None, 400, "bad_request"),
    case("empty search", "GET", "/api/v1/search?q=", &[], Body::None, 400, "bad_request"),
    case("bad date in a query", "GET", "/api/v1/doctors/$DOCTOR/schedule?from=2026-13-01", &[], Body::None, 400, "bad_request"),
    case("schedule ends before it starts", "GET", "/api/v1/doctors/$DOCTOR/schedule?from=2026-05-10&to=2026-05-01", &[], Body::None, 400, "bad_request"),
];

#[tokio::test]
async fn bad_input_gets_the_error_shape_and_the_server_keeps_serving() {
    let s = TestServer::start(Opts::new()).await;
    let token = s.login(&phone(31)).await;
    let doctors = s.get_json("/api/v1/doctors?limit=1", None).await;
    let doctor = doctors[0]["id"].as_str().expect("a doctor").to_string();

    for c in CASES {
        let path = c.path.replace("$DOCTOR", &doctor);
        let method = Method::from_bytes(c.method.as_bytes()).expect("method");
        let mut rb = s.client().request(method, s.url(&path));
        for (k, v) in c.headers {
            rb = rb.header(*k, v.replace("$TOKEN", &token));
        }
        rb = match c.body {
            Body::None => rb,
            Body::Bytes(b) => rb.body(b),
            Body::Large(n) => rb.body(format!("{{\"phone\":\"{}\"}}", "1".repeat(n))),
        };
        let r = rb.send().await.unwrap_or_else(|e| panic!("case {:?}: {e}", c.name));
        let ctx = format!("case {:?} ({} {})", c.name, c.method, path);
        let got = r.status().as_u16();
        assert_eq!(got, c.status, "{ctx}: status");
        let err = assert_error(r, c.status, c.code).await;
        assert_eq!(err.get("field").and_then(|f| f.as_str()), c.field, "{ctx}: field in {err}");
        if let Some(m) = c.message {
            assert!(err["message"].as_str().unwrap().contains(m), "{ctx}: message {err}");
        }
    }

    // Nothing above hurt the server, the session, or anyone's data.
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.get_json("/api/v1/me", Some(&token)).await["phone"], "139****0031");
    assert_eq!(s.get_json(crate::bad_input::PATIENTS, Some(&token)).await, serde_json::json!([]));
}

/// A schedule template for `doctor` over a week far ahead, with `change` applied to it.
fn template(change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
    // Within the 60 days a doctor's schedule shows; evenings, which the demo leaves free.
    let from = crate::booking_flow::today() + chrono::Duration::days(40);
    let mut t = serde_json::json!({
        "from": from,
        "to": from + chrono::Duration::days(6),
        "weekly": [{"weekday": 3, "period": "evening", "start": "18:00:00", "end": "20:00:00", "segment_minutes": 30, "quota": 4}],
        "release_days_before": 7,
        "release_time": "08:00:00",
    });
    change(&mut t);
    t
}

/// Every number (and date) of every request has a range: out of it is a 422 `invalid_field`
/// naming the field, never a crash, and nothing is written. Among them the two that crashed a
/// handler (`release_days_before` 4294967295, `segment_minutes` 2^62).
#[tokio::test]
async fn numbers_out_of_range_are_422_naming_the_field() {
    let s = TestServer::start(Opts::new()).await;
    let admin = crate::booking_flow::staff(&s).await;
    let doctor = s.get_json("/api/v1/doctors?limit=1", None).await[0]["id"].as_str().expect("doctor").to_string();
    let sessions = format!("/api/v1/admin/doctors/{doctor}/sessions");
    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "release_days_before u32::MAX",
            Box::new(|t| t["release_days_before"] = 4294967295u64.into()),
            "release_days_before",
        ),
        (
            "release_days_before past u32",
            Box::new(|t| t["release_days_before"] = 4294967296u64.into()),
            "release_days_before",
        ),
        ("release_days_before negative", Box::new(|t| t["release_days_before"] = (-1).into()), "release_days_before"),
        (
            "segment_minutes 2^62",
            Box::new(|t| t["weekly"][0]["segment_minutes"] = 4611686018427387904u64.into()),
            "weekly[0].segment_minutes",
        ),
        (
            "segment_minutes beyond u64",
            Box::new(|t| t["weekly"][0]["segment_minutes"] = serde_json::json!(1e30)),
            "weekly[0].segment_minutes",
        ),
        (
            "segment_minutes zero",
            Box::new(|t| t["weekly"][0]["segment_minutes"] = 0.into()),
            "weekly[0].segment_minutes",
        ),
        ("quota u32::MAX", Box::new(|t| t["weekly"][0]["quota"] = 4294967295u64.into()), "weekly[0].quota"),
        ("weekday 8", Box::new(|t| t["weekly"][0]["weekday"] = 8.into()), "weekly[0].weekday"),
        (
            "from at chrono's minimum",
            Box::new(|t| {
                t["from"] = "-262143-01-01".into();
                t["to"] = "-262143-01-07".into();
            }),
            "from",
        ),
        (
            "to at chrono's maximum",
            Box::new(|t| {
                t["from"] = "+262142-12-25".into();
                t["to"] = "+262142-12-31".into();
            }),
            "from",
        ),
    ];
    for (name, change, field) in cases {
        let r = s.post(&sessions, Some(&admin), template(change)).await;
        let err = assert_error(r, 422, "invalid_field").await;
        assert_eq!(err["field"], field, "case {name}: {err}");
    }
    // A queue position and a quota change, out of range.
    let session = "00000000-0000-7000-8000-000000000000";
    let r = s
        .post(
            &format!("/api/v1/admin/sessions/{session}/queue/reorder"),
            Some(&admin),
            serde_json::json!({"appointment_id": session, "position": 18446744073709551615u64}),
        )
        .await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "position");
    let r = s
        .request(
            Method::PUT,
            &format!("/api/v1/admin/sessions/{session}/segments/0/quota"),
            Some(&admin),
            Some(serde_json::json!({"quota": 4294967295u64})),
        )
        .await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "quota");

    // Nothing above was written: the same week is still free, and the server still serves.
    let r = s.post(&sessions, Some(&admin), template(|_| {})).await;
    let made = crate::harness::expect_json(r, 201).await;
    assert_eq!(made["skipped"], 0, "a refused template wrote nothing: {made}");
    assert_eq!(made["created"].as_array().map(Vec::len), Some(1), "{made}");
}

/// Money from outside has an upper bound (¥10,000,000.00): a fee or a refund above it is a 422
/// naming the field, and never reaches the payment parameters.
#[tokio::test]
async fn money_above_the_maximum_is_refused_where_it_enters() {
    let s = TestServer::start(Opts::new()).await;
    let admin = crate::booking_flow::staff(&s).await;
    let doctor = s.get_json("/api/v1/doctors?limit=1", None).await[0]["id"].as_str().expect("doctor").to_string();
    let sessions = format!("/api/v1/admin/doctors/{doctor}/sessions");
    for fee in [9223372036854775807u64, 1_000_000_001] {
        let r = s.post(&sessions, Some(&admin), template(|t| t["fee"] = fee.into())).await;
        assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "fee", "fee {fee}");
    }
    // The largest accepted fee is accepted.
    let r = s.post(&sessions, Some(&admin), template(|t| t["fee"] = 1_000_000_000u64.into())).await;
    let made = crate::harness::expect_json(r, 201).await;
    let session = made["created"][0].as_str().expect("a session").to_string();
    let r = s
        .patch(
            &format!("/api/v1/admin/sessions/{session}"),
            Some(&admin),
            serde_json::json!({"fee": 9223372036854775807u64}),
        )
        .await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "fee");
    let r = s
        .post(
            &format!("/api/v1/admin/orders/{session}/refund"),
            Some(&admin),
            serde_json::json!({"amount": 9223372036854775807u64, "reason": "test"}),
        )
        .await;
    assert_eq!(assert_error(r, 422, "invalid_field").await["field"], "amount");
    // The session kept the fee it was created with.
    let from = template(|_| {})["from"].as_str().unwrap().to_string();
    let view = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={from}"), None).await;
    let fee = view["sessions"].as_array().unwrap().iter().find(|x| x["session_id"] == session.as_str()).unwrap()["fee"]
        .clone();
    assert_eq!(fee, 1_000_000_000u64, "{view}");
}

/// Label values come from a closed set: requests with made-up method names, without a login,
/// do not add a `method` label value each (they are counted as `other`).
#[tokio::test]
async fn made_up_methods_share_one_metrics_label() {
    let s = TestServer::start(Opts::new()).await;
    for i in 0..50 {
        let m = Method::from_bytes(format!("XMETHOD{i}").as_bytes()).unwrap();
        let r = s.client().request(m, s.url("/api/v1/departments")).send().await.expect("request");
        assert_error(r, 405, "method_not_allowed").await;
    }
    let text = s.client().get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("XMETHOD"), "a made-up method became a label value");
    let methods: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert!(methods.contains("other"), "{methods:?}");
    let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other"];
    assert!(methods.iter().all(|m| known.contains(m)), "{methods:?}");
}

/// Requests that hyper refuses before any handler runs (an unparsable request line, bytes that
/// are not allowed in a path, a URI or headers too large) still get the one error shape.
#[tokio::test]
async fn requests_refused_below_the_router_get_the_error_shape() {
    let s = TestServer::start(Opts::new()).await;
    let mut long_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    long_header.extend(std::iter::repeat_n(b'a', 200 * 1024));
    long_header.extend_from_slice(b"\r\n\r\n");
    let mut many_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..300 {
        many_headers.extend_from_slice(format!("X-H{i}: a\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let mut long_uri = b"GET /".to_vec();
    long_uri.extend(std::iter::repeat_n(b'a', 70 * 1024));
    long_uri.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut medium_uri = b"GET /api/v1/doctors?q=".to_vec();
    medium_uri.extend(std::iter::repeat_n(b'a', 16 * 1024));
    medium_uri.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("a byte 0xFF in the path", b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 400, "bad_request"),
        (
            "half a UTF-8 character in the path",
            b"GET /api/v1/doctors/\xe4\xb8 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        ("a request line that is not HTTP", b"GARBAGE\r\n\r\n".to_vec(), 400, "bad_request"),
        ("a 200 KiB header", long_header, 431, "headers_too_large"),
        ("300 headers", many_headers, 431, "headers_too_large"),
        ("a 70 KiB URI (the head is over its limit)", long_uri, 431, "headers_too_large"),
        ("a 16 KiB URI", medium_uri, 414, "uri_too_long"),
    ];
    for (name, bytes, status, code) in cases {
        let r = s.raw_request(&bytes).await;
        let err = r.assert_error(status, code);
        assert!(err.get("field").is_none(), "case {name}: {err}");
    }
    assert_eq!(s.get("/healthz", None).await.status(), 200);
}
