//! End-to-end WeChat Pay tests: the real `WechatPayClient` against the sandbox on a real port,
//! with a small notify endpoint standing in for the platform; plus cross-checks against
//! independent implementations (the `openssl` CLI, python's `cryptography`).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use hospital_domain::Fen;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::sign::{self, WechatpaySignature};
use super::*;

const APPID: &str = "wxd678efh567hg6787";
const MCHID: &str = "1230000109";
const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The platform's notify endpoint: records every delivery, failing the first `fail_first`
/// with HTTP 500.
#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    fail_first: Arc<AtomicUsize>,
}

async fn record(State(rec): State<Recorder>, headers: HeaderMap, body: Bytes) -> StatusCode {
    rec.received.lock().unwrap().push((headers, body));
    let failing = rec.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

impl Recorder {
    async fn start(fail_first: usize) -> (Self, String) {
        let rec = Recorder { fail_first: Arc::new(AtomicUsize::new(fail_first)), ..Default::default() };
        let base = serve(Router::new().route("/pay/notify", post(record)).with_state(rec.clone())).await;
        (rec, format!("{base}/pay/notify"))
    }

    /// Waits until at least `n` deliveries arrived.
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, Bytes)> {
        for _ in 0..500 {
            {
                let got = self.received.lock().unwrap();
                if got.len() >= n {
                    return got.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} notifications, got {}", self.received.lock().unwrap().len());
    }
}

fn config(base_url: &str, notify_url: &str) -> WechatPayConfig {
    WechatPayConfig {
        mchid: MCHID.into(),
        appid: APPID.into(),
        merchant_serial_no: test_keys::MERCHANT_SERIAL_NO.into(),
        merchant_private_key_pem: SecretString::from(test_keys::MERCHANT_PRIVATE_KEY_PEM),
        apiv3_key: SecretString::from(test_keys::APIV3_KEY),
        platform_public_keys: vec![(test_keys::PLATFORM_SERIAL_NO.into(), test_keys::PLATFORM_PUBLIC_KEY_PEM.into())],
        base_url: base_url.into(),
        notify_url: notify_url.into(),
    }
}

fn sandbox() -> WechatPaySandbox {
    WechatPaySandbox::new(WechatPaySandboxConfig::with_test_keys(APPID, MCHID))
        .unwrap()
        .with_retry_schedule(vec![Duration::from_millis(20); 5])
        .with_refund_delay(Duration::from_millis(20))
}

struct Env {
    sandbox: WechatPaySandbox,
    base: String,
    client: WechatPayClient,
    notify: Recorder,
}

async fn start_with(sandbox: WechatPaySandbox, fail_first: usize) -> Env {
    let base = serve(sandbox_router(sandbox.clone())).await;
    let (notify, notify_url) = Recorder::start(fail_first).await;
    let client = WechatPayClient::new(config(&base, &notify_url)).unwrap();
    Env { sandbox, base, client, notify }
}

async fn start() -> Env {
    start_with(sandbox(), 0).await
}

fn order(out_trade_no: &str, fen: u64) -> JsapiOrder {
    JsapiOrder {
        out_trade_no: out_trade_no.into(),
        description: "门诊挂号-内科".into(),
        amount: Fen::new(fen),
        payer_openid: OPENID.into(),
        time_expire: Utc::now() + chrono::Duration::minutes(15),
    }
}

fn api_error(err: WechatPayError) -> (u16, String) {
    match err {
        WechatPayError::Api { status, code, message } => {
            assert!(!message.is_empty());
            (status, code)
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn merchant_public_key() -> rsa::RsaPublicKey {
    sign::parse_public_key_pem(test_keys::MERCHANT_PUBLIC_KEY_PEM).unwrap()
}

fn platform_private_key() -> rsa::RsaPrivateKey {
    sign::parse_private_key_pem(test_keys::PLATFORM_PRIVATE_KEY_PEM).unwrap()
}

fn signed_headers(sig: &WechatpaySignature) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in sig.headers() {
        headers.insert(name, value.parse().unwrap());
    }
    headers
}

#[tokio::test]
async fn order_gets_prepay_id_and_a_verifiable_pay_sign() {
    let env = start().await;
    let pay: Arc<dyn WechatPay> = Arc::new(env.client.clone());
    let result = pay.jsapi_order(order("REG20250101000001", 1250)).await.unwrap();
    assert!(result.prepay_id.starts_with("wx"), "{}", result.prepay_id);
    let params = &result.pay_params;
    assert_eq!(params.app_id, APPID);
    assert_eq!(params.package, format!("prepay_id={}", result.prepay_id));
    assert_eq!(params.sign_type, "RSA");
    assert_eq!(params.nonce_str.len(), 32);
    assert!((params.time_stamp.parse::<i64>().unwrap() - Utc::now().timestamp()).abs() < 60);
    sign::verify_request_payment_params(&merchant_public_key(), params).unwrap();

    let stored = env.sandbox.order("REG20250101000001").unwrap();
    assert_eq!(stored.amount, Fen::new(1250));
    assert_eq!(stored.payer_openid, OPENID);
    assert_eq!(stored.trade_state, TradeState::NotPay);
    assert!(stored.notify_url.ends_with("/pay/notify"));

    // The documented retry: same order, same prepay_id, fresh signature.
    let again = pay.jsapi_order(order("REG20250101000001", 1250)).await.unwrap();
    assert_eq!(again.prepay_id, result.prepay_id);
    // Same number, different content.
    let err = pay.jsapi_order(order("REG20250101000001", 1300)).await.unwrap_err();
    assert_eq!(api_error(err), (403, code::OUT_TRADE_NO_USED.to_string()));

    let query = pay.query_order("REG20250101000001").await.unwrap();
    assert_eq!(query.trade_state, TradeState::NotPay);
    assert_eq!(query.transaction_id, None);
    assert!(!query.is_paid());
}

#[tokio::test]
async fn wrong_merchant_key_or_serial_gets_sign_error() {
    let env = start().await;
    let mut cfg = config(&env.base, "https://example.com/notify");
    cfg.merchant_private_key_pem = SecretString::from(test_keys::PLATFORM_PRIVATE_KEY_PEM);
    let impostor = WechatPayClient::new(cfg).unwrap();
    let err = impostor.jsapi_order(order("REG20250101000002", 100)).await.unwrap_err();
    assert_eq!(api_error(err), (401, code::SIGN_ERROR.to_string()));
    assert!(env.sandbox.order("REG20250101000002").is_none());

    let mut cfg = config(&env.base, "https://example.com/notify");
    cfg.merchant_serial_no = "0000".into();
    let err = WechatPayClient::new(cfg).unwrap().query_order("REG20250101000002").await.unwrap_err();
    assert_eq!(api_error(err), (401, code::SIGN_ERROR.to_string()));
}

/// A raw request signed by the real merchant key but otherwise chosen by the test.
async fn raw_request(env: &Env, method: &str, path: &str, body: &str, timestamp: i64) -> (u16, Value) {
    let auth = env.client.authorization(method, path, timestamp, &sign::nonce(), body.as_bytes());
    let http = reqwest::Client::new();
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", env.base))
        .header("Authorization", auth)
        .header("Accept", "application/json");
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sandbox_refuses_bad_amounts_missing_fields_and_stale_signatures() {
    let env = start().await;
    let now = Utc::now().timestamp();
    let good = json!({
        "appid": APPID, "mchid": MCHID, "description": "挂号", "out_trade_no": "REG20250101000003",
        "notify_url": "https://example.com/notify", "amount": {"total": 100, "currency": "CNY"},
        "payer": {"openid": OPENID},
    });
    let path = "/v3/pay/transactions/jsapi";
    for (field, value) in [
        ("amount", json!({"total": 0})),
        ("amount", json!({"total": -5})),
        ("amount", json!({"total": 1.5})),
        ("amount", json!({"total": "100"})),
        ("amount", json!({"total": 100, "currency": "USD"})),
        ("out_trade_no", json!("x")),
        ("notify_url", json!("https://example.com/notify?a=1")),
        ("payer", json!({})),
        ("description", json!("")),
    ] {
        let mut body = good.clone();
        body[field] = value.clone();
        let (status, answer) = raw_request(&env, "POST", path, &body.to_string(), now).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some(code::PARAM_ERROR)), "{field}={value}");
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("amount");
    let (status, answer) = raw_request(&env, "POST", path, &missing.to_string(), now).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some(code::PARAM_ERROR)));
    let mut other_app = good.clone();
    other_app["appid"] = json!("wxother");
    let (status, answer) = raw_request(&env, "POST", path, &other_app.to_string(), now).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some(code::APPID_MCHID_NOT_MATCH)));

    // A signature older than five minutes is a replay.
    let (status, answer) = raw_request(&env, "POST", path, &good.to_string(), now - 301).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some(code::SIGN_ERROR)));
    let (status, answer) = raw_request(&env, "POST", path, &good.to_string(), now).await;
    assert_eq!(status, 200, "{answer}");

    // The client refuses what WeChat would refuse, before sending.
    let err = env.client.jsapi_order(order("REG20250101000004", 0)).await.unwrap_err();
    assert!(matches!(err, WechatPayError::InvalidRequest(_)), "{err:?}");
    let mut no_openid = order("REG20250101000004", 100);
    no_openid.payer_openid = String::new();
    assert!(matches!(env.client.jsapi_order(no_openid).await, Err(WechatPayError::InvalidRequest(_))));
}

#[tokio::test]
async fn payment_sends_a_notification_that_verifies_and_decrypts() {
    let env = start().await;
    env.client.jsapi_order(order("REG20250101000005", 2350)).await.unwrap();
    // The payer pays through the sandbox's HTTP endpoint, as the pay page's button does.
    let resp = reqwest::Client::new().post(format!("{}/sandbox/pay/REG20250101000005", env.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    let received = env.notify.wait_for(1).await;
    let (headers, body) = &received[0];
    assert_eq!(headers["wechatpay-serial"], test_keys::PLATFORM_SERIAL_NO);
    let envelope: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(envelope["resource"]["algorithm"], "AEAD_AES_256_GCM");
    assert!(!String::from_utf8_lossy(body).contains("REG20250101000005"), "the resource must be encrypted");

    let notification = env.client.parse_notification(headers, body).unwrap();
    let Notification::Transaction { id, event_type, transaction } = notification else {
        panic!("expected a transaction notification")
    };
    assert_eq!(id, envelope["id"].as_str().unwrap());
    assert_eq!(event_type, "TRANSACTION.SUCCESS");
    assert_eq!(transaction.out_trade_no, "REG20250101000005");
    assert_eq!(transaction.trade_state, TradeState::Success);
    assert_eq!(transaction.amount.total, Fen::new(2350));
    assert_eq!(transaction.amount.payer_total, Some(Fen::new(2350)));
    assert_eq!(transaction.payer_openid(), Some(OPENID));
    assert!(transaction.transaction_id.as_deref().is_some_and(|t| t.len() == 28), "{:?}", transaction.transaction_id);
    assert_eq!(transaction.success_time.unwrap().offset().local_minus_utc(), 8 * 3600);

    let queried = env.client.query_order("REG20250101000005").await.unwrap();
    assert_eq!(queried.trade_state, TradeState::Success);
    assert_eq!(queried.transaction_id, transaction.transaction_id);
    assert!(queried.is_paid());

    // Paying twice, or re-placing a paid order, is refused.
    assert_eq!(api_error(env.sandbox.pay("REG20250101000005").unwrap_err()).1, code::ORDERPAID);
    let err = env.client.jsapi_order(order("REG20250101000005", 2350)).await.unwrap_err();
    assert_eq!(api_error(err).1, code::ORDERPAID);
    assert_eq!(env.sandbox.notifications_sent(), 1);
}

#[tokio::test]
async fn failed_notifications_are_retried_until_acknowledged() {
    let env = start_with(sandbox(), 2).await;
    env.client.jsapi_order(order("REG20250101000006", 800)).await.unwrap();
    env.sandbox.pay("REG20250101000006").unwrap();

    let received = env.notify.wait_for(3).await;
    let ids: Vec<String> = received
        .iter()
        .map(|(headers, body)| env.client.parse_notification(headers, body).unwrap().id().to_string())
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "one notification, delivered three times: {ids:?}");
    // Each delivery is signed afresh.
    assert_ne!(received[0].0["wechatpay-nonce"], received[1].0["wechatpay-nonce"]);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = env.sandbox.delivery_log();
    let statuses: Vec<Option<u16>> = log.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(204)]);
    assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(log[2].acknowledged && !log[1].acknowledged);
    assert_eq!(env.notify.received.lock().unwrap().len(), 3, "no delivery after the acknowledgement");
    assert_eq!((env.sandbox.notifications_sent(), env.sandbox.notifications_acknowledged()), (1, 1));
}

#[tokio::test]
async fn delivery_gives_up_after_the_schedule() {
    let sandbox = WechatPaySandbox::new(WechatPaySandboxConfig::with_test_keys(APPID, MCHID))
        .unwrap()
        .with_retry_schedule(vec![Duration::from_millis(10); 2]);
    let env = start_with(sandbox, usize::MAX).await;
    env.client.jsapi_order(order("REG20250101000007", 800)).await.unwrap();
    env.sandbox.pay("REG20250101000007").unwrap();
    env.notify.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(env.sandbox.delivery_log().len(), 3, "first delivery plus one per scheduled wait");
    assert_eq!(env.sandbox.notifications_acknowledged(), 0);
}

#[tokio::test]
async fn closing_an_unpaid_order() {
    let env = start().await;
    env.client.jsapi_order(order("REG20250101000008", 500)).await.unwrap();
    env.client.close_order("REG20250101000008").await.unwrap();
    assert_eq!(env.client.query_order("REG20250101000008").await.unwrap().trade_state, TradeState::Closed);
    assert_eq!(api_error(env.sandbox.pay("REG20250101000008").unwrap_err()).1, code::ORDER_CLOSED);
    let err = env.client.jsapi_order(order("REG20250101000008", 500)).await.unwrap_err();
    assert_eq!(api_error(err), (400, code::ORDER_CLOSED.to_string()));

    let err = env.client.close_order("REG20250101000404").await.unwrap_err();
    assert_eq!(api_error(err), (404, code::ORDER_NOT_EXIST.to_string()));
    let err = env.client.query_order("REG20250101000404").await.unwrap_err();
    assert_eq!(api_error(err), (404, code::ORDER_NOT_EXIST.to_string()));

    env.client.jsapi_order(order("REG20250101000009", 500)).await.unwrap();
    env.sandbox.pay("REG20250101000009").unwrap();
    let err = env.client.close_order("REG20250101000009").await.unwrap_err();
    assert_eq!(api_error(err).1, code::ORDERPAID);
}

fn refund_request(out_refund_no: &str, refund: u64, total: u64) -> RefundRequest {
    RefundRequest {
        out_trade_no: "REG20250101000010".into(),
        out_refund_no: out_refund_no.into(),
        reason: Some("患者取消预约".into()),
        refund: Fen::new(refund),
        total: Fen::new(total),
    }
}

#[tokio::test]
async fn refund_completes_with_a_refund_success_notification() {
    let env = start().await;
    env.client.jsapi_order(order("REG20250101000010", 1000)).await.unwrap();
    let err = env.client.refund(refund_request("RF1", 300, 1000)).await.unwrap_err();
    assert_eq!(api_error(err), (400, code::INVALID_REQUEST.to_string()), "unpaid orders cannot be refunded");

    env.sandbox.pay("REG20250101000010").unwrap();
    env.notify.wait_for(1).await;
    let refund = env.client.refund(refund_request("RF1", 300, 1000)).await.unwrap();
    assert_eq!(refund.status, RefundStatus::Processing);
    assert_eq!((refund.amount.refund, refund.amount.total), (Fen::new(300), Fen::new(1000)));
    assert_eq!(refund.out_refund_no, "RF1");
    // A retry of the same refund is the same refund, not a second one.
    let again = env.client.refund(refund_request("RF1", 300, 1000)).await.unwrap();
    assert_eq!(again.refund_id, refund.refund_id);

    let received = env.notify.wait_for(2).await;
    let (headers, body) = &received[1];
    let Notification::Refund { id, event_type, refund: notice } = env.client.parse_notification(headers, body).unwrap()
    else {
        panic!("expected a refund notification")
    };
    assert!(!id.is_empty());
    assert_eq!(event_type, "REFUND.SUCCESS");
    assert_eq!(notice.refund_status, RefundStatus::Success);
    assert_eq!((notice.amount.refund, notice.amount.total), (Fen::new(300), Fen::new(1000)));
    assert_eq!((notice.out_trade_no.as_str(), notice.out_refund_no.as_str()), ("REG20250101000010", "RF1"));
    assert_eq!(notice.refund_id, refund.refund_id);

    assert_eq!(env.client.query_refund("RF1").await.unwrap().status, RefundStatus::Success);
    assert_eq!(env.client.query_order("REG20250101000010").await.unwrap().trade_state, TradeState::Refund);

    // 700 fen are left to refund.
    let err = env.client.refund(refund_request("RF2", 701, 1000)).await.unwrap_err();
    assert_eq!(api_error(err), (400, code::INVALID_REQUEST.to_string()));
    let err = env.client.refund(refund_request("RF3", 100, 999)).await.unwrap_err();
    assert_eq!(api_error(err), (400, code::PARAM_ERROR.to_string()));
    env.client.refund(refund_request("RF4", 700, 1000)).await.unwrap();
    let err = env.client.query_refund("RF404").await.unwrap_err();
    assert_eq!(api_error(err), (404, code::RESOURCE_NOT_EXISTS.to_string()));
}

/// A paid order's notification as delivered, for the tampering tests.
async fn delivered_notification() -> (Env, HeaderMap, Bytes) {
    let env = start().await;
    env.client.jsapi_order(order("REG20250101000011", 100)).await.unwrap();
    env.sandbox.pay("REG20250101000011").unwrap();
    let (headers, body) = env.notify.wait_for(1).await.remove(0);
    env.client.parse_notification(&headers, &body).unwrap();
    (env, headers, body)
}

fn rejected(result: Result<Notification, WechatPayError>) -> String {
    match result {
        Err(WechatPayError::Notification(reason)) => reason,
        other => panic!("expected a rejected notification, got {other:?}"),
    }
}

#[tokio::test]
async fn tampered_notifications_fail_verification() {
    let (env, headers, body) = delivered_notification().await;
    let mut envelope: Value = serde_json::from_slice(&body).unwrap();
    envelope["event_type"] = json!("REFUND.SUCCESS");
    let tampered = serde_json::to_vec(&envelope).unwrap();
    assert!(rejected(env.client.parse_notification(&headers, &tampered)).contains("signature"));
    // Even re-serialising the identical JSON differently breaks the signature: verify raw bytes.
    let mut spaced = body.to_vec();
    spaced.push(b' ');
    assert!(rejected(env.client.parse_notification(&headers, &spaced)).contains("signature"));

    // A correctly signed envelope whose ciphertext was altered fails the AEAD tag.
    let mut envelope: Value = serde_json::from_slice(&body).unwrap();
    let mut ciphertext = BASE64.decode(envelope["resource"]["ciphertext"].as_str().unwrap()).unwrap();
    ciphertext[3] ^= 0x20;
    envelope["resource"]["ciphertext"] = json!(BASE64.encode(ciphertext));
    let body2 = serde_json::to_vec(&envelope).unwrap();
    let sig = WechatpaySignature::sign(
        &platform_private_key(),
        test_keys::PLATFORM_SERIAL_NO,
        Utc::now().timestamp(),
        "n1",
        &body2,
    );
    assert!(rejected(env.client.parse_notification(&signed_headers(&sig), &body2)).contains("decryption"));

    // A client with another APIv3 key cannot read it either.
    let mut cfg = config(&env.base, "https://example.com/notify");
    cfg.apiv3_key = SecretString::from("0123456789abcdef0123456789abcdef");
    let other = WechatPayClient::new(cfg).unwrap();
    assert!(rejected(other.parse_notification(&headers, &body)).contains("decryption"));
}

#[tokio::test]
async fn notifications_signed_by_the_wrong_key_fail() {
    let (env, _headers, body) = delivered_notification().await;
    let now = Utc::now().timestamp();
    let merchant = sign::parse_private_key_pem(test_keys::MERCHANT_PRIVATE_KEY_PEM).unwrap();
    // The right serial, the wrong key.
    let forged = WechatpaySignature::sign(&merchant, test_keys::PLATFORM_SERIAL_NO, now, "n", &body);
    assert!(rejected(env.client.parse_notification(&signed_headers(&forged), &body)).contains("does not verify"));
    // The right key under a serial the client does not know.
    let unknown = WechatpaySignature::sign(&platform_private_key(), "PUB_KEY_ID_UNKNOWN", now, "n", &body);
    assert!(rejected(env.client.parse_notification(&signed_headers(&unknown), &body)).contains("unknown"));
    // The right key, replayed after the five-minute window.
    let stale = WechatpaySignature::sign(&platform_private_key(), test_keys::PLATFORM_SERIAL_NO, now - 600, "n", &body);
    assert!(rejected(env.client.parse_notification(&signed_headers(&stale), &body)).contains("timestamp"));
    // No signature at all.
    assert!(rejected(env.client.parse_notification(&HeaderMap::new(), &body)).contains("missing header"));
}

#[tokio::test]
async fn notifications_for_another_merchant_are_refused() {
    let other = WechatPaySandbox::new(WechatPaySandboxConfig::with_test_keys(APPID, "1900000001"))
        .unwrap()
        .with_retry_schedule(vec![]);
    let base = serve(sandbox_router(other.clone())).await;
    let (notify, notify_url) = Recorder::start(0).await;
    let mut cfg = config(&base, &notify_url);
    cfg.mchid = "1900000001".into();
    WechatPayClient::new(cfg).unwrap().jsapi_order(order("REG20250101000012", 100)).await.unwrap();
    other.pay("REG20250101000012").unwrap();
    let (headers, body) = notify.wait_for(1).await.remove(0);
    // Validly signed and encrypted with shared test keys, but not for our mchid.
    let ours = WechatPayClient::new(config(&base, &notify_url)).unwrap();
    assert!(rejected(ours.parse_notification(&headers, &body)).contains("1900000001"));
}

/// Fake "WeChat Pay" answering 200 with whatever signature headers the test chooses.
async fn fake_server(signature: Option<WechatpaySignature>, body: &'static str) -> String {
    let app = Router::new().fallback(move || {
        let signature = signature.clone();
        async move {
            let mut headers = HeaderMap::new();
            if let Some(sig) = signature {
                headers = signed_headers(&sig);
            }
            (StatusCode::OK, headers, body)
        }
    });
    serve(app).await
}

#[tokio::test]
async fn unsigned_or_badly_signed_answers_are_refused() {
    const BODY: &str = r#"{"prepay_id":"wx_forged"}"#;
    let now = Utc::now().timestamp();
    let merchant = sign::parse_private_key_pem(test_keys::MERCHANT_PRIVATE_KEY_PEM).unwrap();
    let cases = [
        (None, "missing header"),
        (
            Some(WechatpaySignature::sign(&merchant, test_keys::PLATFORM_SERIAL_NO, now, "n", BODY.as_bytes())),
            "does not verify",
        ),
        (
            Some(WechatpaySignature::sign(&platform_private_key(), test_keys::PLATFORM_SERIAL_NO, now, "n", b"{}")),
            "does not verify",
        ),
    ];
    for (signature, expected) in cases {
        let base = fake_server(signature, BODY).await;
        let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
        match client.jsapi_order(order("REG20250101000013", 100)).await {
            Err(WechatPayError::Unverified { status: 200, reason }) => {
                assert!(reason.to_string().contains(expected), "{reason}")
            }
            other => panic!("expected an unverified answer, got {other:?}"),
        }
    }
    // Correctly signed, it is accepted: the failures above are the signature's doing.
    let sig =
        WechatpaySignature::sign(&platform_private_key(), test_keys::PLATFORM_SERIAL_NO, now, "n", BODY.as_bytes());
    let base = fake_server(Some(sig), BODY).await;
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    assert_eq!(client.jsapi_order(order("REG20250101000013", 100)).await.unwrap().prepay_id, "wx_forged");
}

#[tokio::test]
async fn works_nested_under_a_prefix_with_odd_order_numbers() {
    let sandbox = sandbox();
    let root = serve(Router::new().nest("/sandbox/wechatpay", sandbox_router(sandbox.clone()))).await;
    let (_notify, notify_url) = Recorder::start(0).await;
    let client = WechatPayClient::new(config(&format!("{root}/sandbox/wechatpay/"), &notify_url)).unwrap();
    // `|` and `*` are legal in order numbers and must survive signing and routing.
    client.jsapi_order(order("REG|2025*01", 100)).await.unwrap();
    assert_eq!(client.query_order("REG|2025*01").await.unwrap().out_trade_no, "REG|2025*01");
    client.close_order("REG|2025*01").await.unwrap();
}

#[tokio::test]
async fn pay_page_shows_the_order_and_pays_it() {
    let env = start().await;
    let mut o = order("REG20250101000014", 1999);
    o.description = "<script>alert(1)</script>挂号".into();
    env.client.jsapi_order(o).await.unwrap();
    let url = format!("{}/sandbox/pay/REG20250101000014", env.base);
    let http = reqwest::Client::new();
    let page = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("支付</button>") && page.contains("¥19.99") && page.contains("REG20250101000014"), "{page}");
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"), "{page}");
    let paid = http.post(&url).send().await.unwrap();
    assert_eq!(paid.status(), 200);
    assert!(paid.text().await.unwrap().contains("支付成功"));
    assert!(!http.get(&url).send().await.unwrap().text().await.unwrap().contains("</button>"));
    assert_eq!(http.post(&url).send().await.unwrap().status(), 403);
    assert_eq!(http.get(format!("{}/sandbox/pay/NOPE000", env.base)).send().await.unwrap().status(), 404);
    env.notify.wait_for(1).await;
}

#[test]
fn configuration_errors_and_redaction() {
    let good = config("https://api.mch.weixin.qq.com", "https://example.com/notify");
    let client = WechatPayClient::new(good.clone()).unwrap();
    let shown = format!("{client:?} {good:?}");
    assert!(!shown.contains("PRIVATE") && !shown.contains(test_keys::APIV3_KEY), "{shown}");
    for broken in [
        WechatPayConfig { apiv3_key: SecretString::from("short"), ..good.clone() },
        WechatPayConfig { merchant_private_key_pem: SecretString::from("nope"), ..good.clone() },
        WechatPayConfig { platform_public_keys: vec![], ..good.clone() },
        WechatPayConfig { platform_public_keys: vec![("S".into(), "nope".into())], ..good.clone() },
        WechatPayConfig { base_url: "::".into(), ..good.clone() },
        WechatPayConfig { notify_url: "https://example.com/n?x=1".into(), ..good.clone() },
        WechatPayConfig { mchid: " ".into(), ..good.clone() },
    ] {
        assert!(matches!(WechatPayClient::new(broken), Err(WechatPayError::Config(_))));
    }
    let sandbox = WechatPaySandbox::new(WechatPaySandboxConfig::with_test_keys(APPID, MCHID)).unwrap();
    assert!(!format!("{sandbox:?}").contains("PRIVATE"));
    // Outside a runtime no notification could follow, so nothing is marked paid.
    assert!(matches!(sandbox.pay("REG404404"), Err(WechatPayError::Config(_))));
}

// ---- Independent cross-checks -------------------------------------------------------------

fn have(cmd: &str, probe: &[&str]) -> bool {
    Command::new(cmd).args(probe).output().map(|o| o.status.success()).unwrap_or(false)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn openssl(args: &[&str]) -> std::process::Output {
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Our request signature and paySign, checked by OpenSSL rather than by our own verifier.
#[test]
fn openssl_verifies_our_request_signature_and_pay_sign() {
    if !have("openssl", &["version"]) {
        panic!("`openssl` is not on PATH; the independent signature check did not run");
    }
    let dir = tempfile::tempdir().unwrap();
    let client = WechatPayClient::new(config("https://api.mch.weixin.qq.com", "https://example.com/notify")).unwrap();
    let body = r#"{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"挂号"}"#.as_bytes();
    let path = "/v3/pay/transactions/jsapi";
    let header = client.authorization("POST", path, 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", body);
    let auth = sign::Authorization::parse(&header).unwrap();
    assert_eq!((auth.mchid.as_str(), auth.serial_no.as_str()), (MCHID, test_keys::MERCHANT_SERIAL_NO));

    // The message written out by hand from the documentation, not by our request_message.
    let mut message = b"POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n".to_vec();
    message.extend_from_slice(body);
    message.push(b'\n');
    let msg = write(dir.path(), "msg.txt", &message);
    let sig = write(dir.path(), "sig.bin", &BASE64.decode(&auth.signature).unwrap());
    let public = write(dir.path(), "pub.pem", test_keys::MERCHANT_PUBLIC_KEY_PEM.as_bytes());
    let out = openssl(&["dgst", "-sha256", "-verify", &public, "-signature", &sig, &msg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");

    // And OpenSSL refuses it for a different message, so the check above means something.
    let other = write(dir.path(), "other.txt", b"POST\n/v3/pay/transactions/jsapi\n1554208461\n");
    let refused = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify", &public, "-signature", &sig, &other])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    // Signing is deterministic (PKCS#1 v1.5), so OpenSSL's own signature must be identical.
    let private = write(dir.path(), "key.pem", test_keys::MERCHANT_PRIVATE_KEY_PEM.as_bytes());
    let ossl_sig = dir.path().join("ossl.bin");
    openssl(&["dgst", "-sha256", "-sign", &private, "-out", ossl_sig.to_str().unwrap(), &msg]);
    assert_eq!(BASE64.encode(std::fs::read(&ossl_sig).unwrap()), auth.signature);

    let params = sign::request_payment_params(
        &sign::parse_private_key_pem(test_keys::MERCHANT_PRIVATE_KEY_PEM).unwrap(),
        APPID,
        "wx201410272009395522657a690389285100",
        1414561699,
        "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
    );
    let pay_msg = write(
        dir.path(),
        "pay.txt",
        b"wxd678efh567hg6787\n1414561699\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\nprepay_id=wx201410272009395522657a690389285100\n",
    );
    let pay_sig = write(dir.path(), "pay.bin", &BASE64.decode(&params.pay_sign).unwrap());
    let out = openssl(&["dgst", "-sha256", "-verify", &public, "-signature", &pay_sig, &pay_msg]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Verified OK");
}

/// A notification built the way WeChat Pay documents it, entirely outside our code: the
/// resource encrypted by python's `cryptography` AESGCM, the envelope signed by `openssl dgst
/// -sha256 -sign` with the platform key. `parse_notification` must accept and decrypt it.
#[test]
fn parses_a_notification_built_by_openssl_and_python() {
    if !have("openssl", &["version"]) {
        panic!("`openssl` is not on PATH; the independent notification check did not run");
    }
    if !have("python3", &["-c", "import cryptography.hazmat.primitives.ciphers.aead"]) {
        panic!(
            "python3 `cryptography` is missing; the independent AES-GCM check did not run \
             (sign::tests::aes_256_gcm_known_answer still checks GCM against NIST)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let plaintext = r#"{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"1217752501201407033233368018","trade_type":"JSAPI","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"CMC","attach":"自定义数据","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}"#;
    let plain_path = write(dir.path(), "plain.json", plaintext.as_bytes());
    let script = "import base64,sys\n\
from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n\
key, nonce, ad, path = sys.argv[1:5]\n\
data = open(path, 'rb').read()\n\
print(base64.b64encode(AESGCM(key.encode()).encrypt(nonce.encode(), data, ad.encode())).decode())\n";
    let out = Command::new("python3")
        .args(["-c", script, test_keys::APIV3_KEY, "fdasflkja484", "transaction", &plain_path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ciphertext = String::from_utf8(out.stdout).unwrap().trim().to_string();

    // The envelope exactly as the documentation's example lays it out.
    let body = format!(
        r#"{{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00","resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功","resource":{{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"{ciphertext}","associated_data":"transaction","nonce":"fdasflkja484"}}}}"#
    );
    let timestamp = Utc::now().timestamp();
    let nonce = "fdasflkja484fdasflkja484fdasflkj";
    let message = write(dir.path(), "msg.txt", format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
    let key = write(dir.path(), "platform.pem", test_keys::PLATFORM_PRIVATE_KEY_PEM.as_bytes());
    let sig_path = dir.path().join("sig.bin");
    openssl(&["dgst", "-sha256", "-sign", &key, "-out", sig_path.to_str().unwrap(), &message]);
    let signature = BASE64.encode(std::fs::read(&sig_path).unwrap());

    let mut headers = HeaderMap::new();
    headers.insert("Wechatpay-Timestamp", timestamp.to_string().parse().unwrap());
    headers.insert("Wechatpay-Nonce", nonce.parse().unwrap());
    headers.insert("Wechatpay-Signature", signature.parse().unwrap());
    headers.insert("Wechatpay-Serial", test_keys::PLATFORM_SERIAL_NO.parse().unwrap());

    let client = WechatPayClient::new(config("https://api.mch.weixin.qq.com", "https://example.com/notify")).unwrap();
    let Notification::Transaction { id, event_type, transaction } =
        client.parse_notification(&headers, body.as_bytes()).unwrap()
    else {
        panic!("expected a transaction notification")
    };
    assert_eq!((id.as_str(), event_type.as_str()), ("EV-2018022511223320873", "TRANSACTION.SUCCESS"));
    assert_eq!(transaction.out_trade_no, "1217752501201407033233368018");
    assert_eq!(transaction.transaction_id.as_deref(), Some("1217752501201407033233368018"));
    assert_eq!(transaction.trade_state, TradeState::Success);
    assert_eq!((transaction.amount.total, transaction.amount.payer_total), (Fen::new(100), Some(Fen::new(100))));
    assert_eq!(transaction.payer_openid(), Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"));
    assert_eq!(transaction.success_time.unwrap().to_rfc3339(), "2018-06-08T10:34:56+08:00");

    // And our decryption agrees byte for byte with what python encrypted.
    let decrypted =
        sign::decrypt_resource(test_keys::APIV3_KEY.as_bytes(), "fdasflkja484", "transaction", &ciphertext).unwrap();
    assert_eq!(decrypted, plaintext.as_bytes());
    // And our encryption produces python's ciphertext (GCM is deterministic for key+nonce).
    assert_eq!(
        sign::encrypt_resource(test_keys::APIV3_KEY.as_bytes(), "fdasflkja484", "transaction", plaintext.as_bytes())
            .unwrap(),
        ciphertext
    );
}

// ---- Fixes found by checking against an independent SDK, and bills ---------------------------

/// A signed request with extra headers chosen by the test; returns status, headers and body.
async fn raw_with_headers(
    env: &Env,
    method: &str,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let auth = env.client.authorization(method, path, Utc::now().timestamp(), &sign::nonce(), body.as_bytes());
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", env.base))
        .header("Authorization", auth)
        .header("Accept", "application/json");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json").body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn client_names_its_platform_key_and_answers_name_their_signature_type() {
    let env = start().await;
    env.client.jsapi_order(order("REG20250201000001", 100)).await.unwrap();
    env.client.query_order("REG20250201000001").await.unwrap();
    env.client.close_order("REG20250201000001").await.unwrap();
    assert_eq!(env.sandbox.requests_without_serial(), 0, "Wechatpay-Serial went with every request");

    let path = format!("/v3/pay/transactions/out-trade-no/REG20250201000001?mchid={MCHID}");
    let (status, headers, answer) =
        raw_with_headers(&env, "GET", &path, "", &[("Wechatpay-Serial", "PUB_KEY_ID_SOMEONE_ELSE")]).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some(code::PARAM_ERROR)));
    assert_eq!(headers["wechatpay-signature-type"], sign::AUTH_SCHEMA, "refusals are signed too");
    let (status, headers, _) = raw_with_headers(&env, "GET", &path, "", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["wechatpay-signature-type"], sign::AUTH_SCHEMA);
    assert_eq!(env.sandbox.requests_without_serial(), 1);

    env.client.jsapi_order(order("REG20250201000002", 100)).await.unwrap();
    env.sandbox.pay("REG20250201000002").unwrap();
    let (headers, _) = env.notify.wait_for(1).await.remove(0);
    assert_eq!(headers["wechatpay-signature-type"], sign::AUTH_SCHEMA, "notifications carry it");
    // Another signature type is refused rather than guessed at.
    let mut odd = headers.clone();
    odd.insert("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3".parse().unwrap());
    assert!(WechatpaySignature::from_headers(&odd).is_err());
}

#[tokio::test]
async fn orders_are_found_and_refunded_by_transaction_id_with_every_refund_field() {
    let env = start().await;
    env.client.jsapi_order(order("REG20250201000003", 2000)).await.unwrap();
    let paid = env.sandbox.pay("REG20250201000003").unwrap();
    let transaction_id = paid.transaction_id.clone().unwrap();
    let pay: Arc<dyn WechatPay> = Arc::new(env.client.clone());
    let by_id = pay.query_transaction(&transaction_id).await.unwrap();
    assert_eq!((by_id.out_trade_no.as_str(), by_id.trade_state), ("REG20250201000003", TradeState::Success));
    let err = pay.query_transaction("4200000000000000000000000000").await.unwrap_err();
    assert!(err.is_order_not_found(), "{err:?}");
    assert!(matches!(pay.query_transaction("../x").await, Err(WechatPayError::InvalidRequest(_))));

    let body = json!({
        "transaction_id": transaction_id, "out_refund_no": "RFTX1",
        "amount": {"refund": 500, "total": 2000, "currency": "CNY"},
    });
    let (status, _, refund) =
        raw_with_headers(&env, "POST", "/v3/refund/domestic/refunds", &body.to_string(), &[]).await;
    assert_eq!(status, 200, "{refund}");
    assert_eq!(refund["out_trade_no"], "REG20250201000003");
    // Every field WeChat's refund answer has.
    for field in [
        "refund_id",
        "out_refund_no",
        "transaction_id",
        "out_trade_no",
        "channel",
        "user_received_account",
        "create_time",
        "status",
        "funds_account",
        "amount",
        "promotion_detail",
    ] {
        assert!(refund.get(field).is_some(), "{field} missing from {refund}");
    }
    for field in [
        "total",
        "refund",
        "payer_total",
        "payer_refund",
        "settlement_refund",
        "settlement_total",
        "discount_refund",
        "currency",
        "refund_fee",
    ] {
        assert!(refund["amount"].get(field).is_some(), "amount.{field} missing from {refund}");
    }
    let typed = pay.query_refund("RFTX1").await.unwrap();
    assert_eq!(
        (typed.funds_account.as_deref(), typed.amount.settlement_refund),
        (Some("AVAILABLE"), Some(Fen::new(500)))
    );
    let unknown = json!({"transaction_id": "4200000000000000000000000000", "out_refund_no": "RFTX2", "amount": {"refund": 1, "total": 1, "currency": "CNY"}});
    let (status, _, answer) =
        raw_with_headers(&env, "POST", "/v3/refund/domestic/refunds", &unknown.to_string(), &[]).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some(code::RESOURCE_NOT_EXISTS)));
}

/// Fake "WeChat Pay" answering `status` and `body`, signed by `signature` or not at all.
async fn fake_answer(status: StatusCode, signature: Option<WechatpaySignature>, body: &'static str) -> String {
    let app = Router::new().fallback(move || {
        let signature = signature.clone();
        async move { (status, signature.map(|s| signed_headers(&s)).unwrap_or_default(), body) }
    });
    serve(app).await
}

#[tokio::test]
async fn refusals_reach_the_caller_as_their_codes_even_unsigned() {
    const NOT_FOUND: &str = r#"{"code":"ORDERNOTEXIST","message":"订单不存在"}"#;
    let base = fake_answer(StatusCode::NOT_FOUND, None, NOT_FOUND).await;
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    let err = client.query_order("REG20250201000404").await.unwrap_err();
    assert_eq!(err.api_code(), Some(code::ORDERNOTEXIST));
    assert!(err.is_order_not_found());
    const PAID: &str = r#"{"code":"ORDERPAID","message":"该订单已支付"}"#;
    let base = fake_answer(StatusCode::FORBIDDEN, None, PAID).await;
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    assert_eq!(
        api_error(client.close_order("REG20250201000404").await.unwrap_err()),
        (403, code::ORDERPAID.to_string())
    );
    // A refusal carrying a *bad* signature is still refused, and an unsigned success too.
    let forged = WechatpaySignature::sign(
        &platform_private_key(),
        test_keys::PLATFORM_SERIAL_NO,
        Utc::now().timestamp(),
        "n",
        b"{}",
    );
    let base = fake_answer(StatusCode::FORBIDDEN, Some(forged), PAID).await;
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    assert!(matches!(
        client.close_order("REG20250201000404").await,
        Err(WechatPayError::Unverified { status: 403, .. })
    ));
    let base = fake_answer(StatusCode::OK, None, r#"{"prepay_id":"wx1"}"#).await;
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    assert!(matches!(
        client.jsapi_order(order("REG20250201000005", 1)).await,
        Err(WechatPayError::Unverified { status: 200, .. })
    ));
}

#[tokio::test]
async fn trade_bill_is_downloaded_hash_checked_and_shows_planted_differences() {
    let env = start().await;
    for (no, fen) in [("REGWXB1", 1250u64), ("REGWXB2", 3000), ("REGWXB3", 5000), ("REGWXB4", 700)] {
        env.client.jsapi_order(order(no, fen)).await.unwrap();
        env.sandbox.pay(no).unwrap();
    }
    env.client.jsapi_order(order("REGWXBUNPAID", 100)).await.unwrap();
    env.client
        .refund(RefundRequest {
            out_trade_no: "REGWXB1".into(),
            out_refund_no: "RFWXB1".into(),
            reason: None,
            refund: Fen::new(250),
            total: Fen::new(1250),
        })
        .await
        .unwrap();
    let today = Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).date_naive();
    let bill = env.client.trade_bill(today).await.unwrap();
    let entries = bill.entries();
    let payments: Vec<(String, u64)> = entries
        .iter()
        .filter(|e| e.kind == crate::bill::BillEntryKind::Payment)
        .map(|e| (e.out_trade_no.clone(), e.amount.get()))
        .collect();
    assert_eq!(payments.len(), 4, "{payments:?}");
    assert!(payments.contains(&("REGWXB3".to_string(), 5000)));
    let refunds: Vec<_> = entries.iter().filter(|e| e.kind == crate::bill::BillEntryKind::Refund).collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0].out_refund_no.as_deref(), refunds[0].amount), (Some("RFWXB1"), Fen::new(250)));
    assert!(bill.rows.iter().all(|r| r.appid == APPID && r.mchid == MCHID));

    env.sandbox.plant(crate::bill::BillPlant::Missing { out_trade_no: "REGWXB2".into() });
    env.sandbox.plant(crate::bill::BillPlant::Amount { out_trade_no: "REGWXB3".into(), amount: Fen::new(4999) });
    env.sandbox.plant(crate::bill::BillPlant::Unknown {
        date: today,
        out_trade_no: "NEVERPLACEDWX".into(),
        amount: Fen::new(888),
    });
    let planted = env.client.trade_bill(today).await.unwrap().entries();
    assert!(planted.iter().all(|e| e.out_trade_no != "REGWXB2"));
    let amount_of = |no: &str| {
        planted
            .iter()
            .find(|e| e.out_trade_no == no && e.kind == crate::bill::BillEntryKind::Payment)
            .map(|e| e.amount.get())
    };
    assert_eq!(
        (amount_of("REGWXB3"), amount_of("NEVERPLACEDWX"), amount_of("REGWXB4")),
        (Some(4999), Some(888), Some(700))
    );

    let err = env.client.trade_bill(today.succ_opt().unwrap()).await.unwrap_err();
    assert_eq!(api_error(err).1, code::NO_STATEMENT_EXIST);
    // The download link needs a signed request.
    let (status, _, answer) = raw_with_headers(&env, "GET", "/v3/billdownload/file?token=forged", "", &[]).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some(code::RESOURCE_NOT_EXISTS)));
    let unsigned = reqwest::get(format!("{}/v3/billdownload/file?token=forged", env.base)).await.unwrap();
    assert_eq!(unsigned.status(), 401);
}

#[tokio::test]
async fn a_bill_whose_hash_does_not_match_is_refused() {
    let csv = WechatBill::default().to_csv();
    let gz = bill::gzip(csv.as_bytes()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    for (hash, ok) in [(bill::sha1_hex(csv.as_bytes()), true), (bill::sha1_hex(b"something else"), false)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let link = serde_json::to_vec(&json!({"hash_type": "SHA1", "hash_value": hash, "download_url": format!("{base}/v3/billdownload/file?token=t")})).unwrap();
        let sig = WechatpaySignature::sign(
            &platform_private_key(),
            test_keys::PLATFORM_SERIAL_NO,
            Utc::now().timestamp(),
            "n",
            &link,
        );
        let gz = gz.clone();
        let app = Router::new()
            .route("/v3/bill/tradebill", axum::routing::get(move || async move { (signed_headers(&sig), link) }))
            .route("/v3/billdownload/file", axum::routing::get(move || async move { gz }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
        let result = client.trade_bill(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()).await;
        assert_eq!(result.is_ok(), ok, "{result:?}");
        if !ok {
            assert!(matches!(result, Err(WechatPayError::Bill(e)) if e.0.contains("SHA1")));
        }
    }
    // A link pointing elsewhere gets no signed request.
    let link = serde_json::to_vec(
        &json!({"hash_type": "SHA1", "hash_value": "x", "download_url": "https://attacker.example/steal"}),
    )
    .unwrap();
    let sig = WechatpaySignature::sign(
        &platform_private_key(),
        test_keys::PLATFORM_SERIAL_NO,
        Utc::now().timestamp(),
        "n",
        &link,
    );
    let app = Router::new()
        .route("/v3/bill/tradebill", axum::routing::get(move || async move { (signed_headers(&sig), link) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = WechatPayClient::new(config(&base, "https://example.com/notify")).unwrap();
    assert!(matches!(
        client.trade_bill(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()).await,
        Err(WechatPayError::UnexpectedResponse { .. })
    ));
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

const PY_WECHATPAYV3: &str = r#"
import json, sys, gzip, hashlib
from wechatpayv3 import WeChatPay, WeChatPayType
cfg = json.loads(sys.stdin.read())
pay = WeChatPay(wechatpay_type=WeChatPayType.MINIPROG, mchid=cfg["mchid"], private_key=cfg["merchant_private"],
                cert_serial_no=cfg["merchant_serial"], appid=cfg["appid"], apiv3_key=cfg["apiv3_key"],
                notify_url=cfg["notify_url"], public_key=cfg["platform_public"], public_key_id=cfg["platform_serial"])
pay._core._gate_way = cfg["base"]
out = {}
def call(name, result):
    code, body = result
    out[name] = {"status": code, "body": json.loads(body) if isinstance(body, str) and body else None}
# The SDK verifies every 2xx answer's signature (and raises if it fails): these calls passing
# means our sandbox's answers verify with an independent implementation.
call("pay", pay.pay(description="挂号", out_trade_no="REGPYWX001", amount={"total": 1500}, payer={"openid": cfg["openid"]}))
call("query", pay.query(out_trade_no=cfg["paid_trade"]))
call("query_by_id", pay.query(transaction_id=cfg["transaction_id"]))
call("missing", pay.query(out_trade_no="REGPYWX404"))
call("refund", pay.refund(out_refund_no="RFPYWX1", amount={"refund": 300, "total": 2000, "currency": "CNY"}, transaction_id=cfg["transaction_id"]))
call("query_refund", pay.query_refund(out_refund_no="RFPYWX1"))
call("close", pay.close(out_trade_no="REGPYWX001"))
call("close_paid", pay.close(out_trade_no=cfg["paid_trade"]))
code, body = pay.trade_bill(bill_date=cfg["bill_date"])
link = json.loads(body)
code, raw = pay.download_bill(link["download_url"])
csv = gzip.decompress(raw)
out["bill"] = {"status": code, "hash_ok": hashlib.sha1(csv).hexdigest() == link["hash_value"], "lines": csv.decode().splitlines()}
# A notification our sandbox sent, verified and decrypted by the SDK.
out["callback"] = pay.callback(cfg["notification_headers"], cfg["notification_body"])
tampered = cfg["notification_body"].replace("TRANSACTION.SUCCESS", "TRANSACTION.FAILURE")
out["callback_tampered"] = pay.callback(cfg["notification_headers"], tampered)
print(json.dumps(out, ensure_ascii=False))
"#;

/// `wechatpayv3` (PyPI, installed by scripts/test.sh) against our sandbox: it calls every
/// endpoint, verifying each answer with its own code, and verifies and decrypts a notification.
#[tokio::test]
async fn python_wechatpayv3_cross_check() {
    if !python_has("wechatpayv3") {
        panic!(
            "python3 module `wechatpayv3` (PyPI) is missing; the independent WeChat Pay \
             cross-check did not run (scripts/test.sh installs it)"
        );
    }
    let env = start().await;
    env.client.jsapi_order(order("REGPYWXPAID", 2000)).await.unwrap();
    let paid = env.sandbox.pay("REGPYWXPAID").unwrap();
    let (headers, body) = env.notify.wait_for(1).await.remove(0);
    let header_map: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("wechatpay-"))
        .map(|(k, v)| {
            // Canonical capitalisation, as WeChat sends them (the SDK reads them so).
            let name = k.as_str().split('-').map(|p| p[..1].to_uppercase() + &p[1..]).collect::<Vec<_>>().join("-");
            (name, json!(v.to_str().unwrap()))
        })
        .collect();
    let input = json!({
        "mchid": MCHID, "appid": APPID, "openid": OPENID,
        "merchant_private": test_keys::MERCHANT_PRIVATE_KEY_PEM,
        "merchant_serial": test_keys::MERCHANT_SERIAL_NO,
        "apiv3_key": test_keys::APIV3_KEY,
        "platform_public": test_keys::PLATFORM_PUBLIC_KEY_PEM,
        "platform_serial": test_keys::PLATFORM_SERIAL_NO,
        "notify_url": "https://example.com/pay/notify",
        "base": env.base,
        "paid_trade": "REGPYWXPAID",
        "transaction_id": paid.transaction_id.clone().unwrap(),
        "bill_date": Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).format("%Y-%m-%d").to_string(),
        "notification_headers": header_map,
        "notification_body": String::from_utf8(body.to_vec()).unwrap(),
    });
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("python3")
            .args(["-c", PY_WECHATPAYV3])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "python failed: {}", String::from_utf8_lossy(&output.stderr));
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(out["pay"]["status"], 200, "{out}");
    assert!(out["pay"]["body"]["prepay_id"].as_str().unwrap().starts_with("wx"));
    assert_eq!(env.sandbox.order("REGPYWX001").unwrap().amount, Fen::new(1500), "an order the SDK signed was accepted");
    assert_eq!(out["query"]["body"]["trade_state"], "SUCCESS");
    assert_eq!(out["query_by_id"]["body"]["out_trade_no"], "REGPYWXPAID");
    assert_eq!(
        (out["missing"]["status"].as_u64(), out["missing"]["body"]["code"].as_str()),
        (Some(404), Some(code::ORDER_NOT_EXIST))
    );
    assert_eq!(out["refund"]["status"], 200);
    assert_eq!(out["refund"]["body"]["amount"]["refund"], 300);
    assert_eq!(out["query_refund"]["body"]["out_refund_no"], "RFPYWX1");
    assert_eq!(out["close"]["status"], 204);
    assert_eq!(out["close_paid"]["body"]["code"], code::ORDERPAID);
    assert_eq!(out["bill"]["status"], 200);
    assert_eq!(out["bill"]["hash_ok"], true);
    let lines: Vec<&str> = out["bill"]["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines[0].starts_with("交易时间,公众账号ID,商户号"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("`REGPYWXPAID,") && l.contains("`SUCCESS,")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("`RFPYWX1,") && l.contains("`REFUND,")), "{lines:?}");
    assert_eq!(out["callback"]["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(out["callback"]["resource"]["out_trade_no"], "REGPYWXPAID");
    assert_eq!(out["callback"]["resource"]["amount"]["total"], 2000);
    assert!(out["callback_tampered"].is_null(), "the SDK refuses a tampered notification");
    // Our client sees the refund the SDK made by transaction_id.
    assert_eq!(env.client.query_refund("RFPYWX1").await.unwrap().out_trade_no, "REGPYWXPAID");
}
