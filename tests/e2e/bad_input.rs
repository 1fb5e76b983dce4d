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

const SEND: &str = "/api/v1/auth/sms/send";
const PATIENTS: &str = "/api/v1/me/patients";

#[rustfmt::skip] // one case per line reads as a table
const CASES: &[Case] = &[
    case("malformed JSON", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":"), 400, "malformed_json"),
    case("not JSON at all", "POST", SEND, &[JSON], Body::Bytes(b"phone=13800138000"), 400, "malformed_json"),
    case("empty body", "POST", SEND, &[JSON], Body::Bytes(b""), 400, "malformed_json"),
    case("wrong type", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":13800138000}"), 422, "invalid_body"),
    case("unknown field", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"13800138000\",\"admin\":true}"), 422, "invalid_body"),
    case("missing field", "POST", SEND, &[JSON], Body::Bytes(b"{}"), 422, "invalid_body"),
    case("missing code", "POST", "/api/v1/auth/sms/login", &[JSON], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 422, "invalid_body"),
    case("unknown enum value", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"11010519491231002X\",\"relation\":\"cousin\"}".as_bytes()), 422, "invalid_body"),
    case("1 MiB body", "POST", SEND, &[JSON], Body::Large(1 << 20), 413, "payload_too_large"),
    case("no content type", "POST", SEND, &[], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 415, "unsupported_media_type"),
    case("text content type", "POST", SEND, &[("content-type", "text/plain")], Body::Bytes(b"{\"phone\":\"13800138000\"}"), 415, "unsupported_media_type"),
    field(case("invalid phone", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"12345\"}"), 422, "invalid_field"), "phone", "11-digit"),
    field(case("landline phone", "POST", SEND, &[JSON], Body::Bytes(b"{\"phone\":\"0571-86001120\"}"), 422, "invalid_field"), "phone", "mobile"),
    field(case("ID bad check digit", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"110105194912310021\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "check digit"),
    // 1949-02-30 with a correct check digit: only the date is wrong.
    field(case("ID bad date", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"110105194902300020\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "birth date"),
    field(case("ID bad region", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"990105194912310023\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "region"),
    field(case("ID too short", "POST", PATIENTS, &[JSON, AUTH], Body::Bytes("{\"name\":\"张三\",\"id_card_no\":\"1101051949\",\"relation\":\"self\"}".as_bytes()), 422, "invalid_field"), "id_card_no", "18 characters"),
    field(case("future birth date", "PATCH", "/api/v1/me", &[JSON, AUTH], Body::Bytes(b"{\"birth_date\":\"2999-01-01\"}"), 422, "invalid_field"), "birth_date", "past"),
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
