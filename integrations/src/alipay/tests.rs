//! End-to-end Alipay tests: the real `AlipayClient` against the sandbox on a real port, with a
//! small notify endpoint standing in for the platform; and a cross-check against an independent
//! implementation (PyPI `python-alipay-sdk`, run by python3).

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use hospital_domain::Fen;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::client::decode_form;
use super::*;
use crate::bill::{BillEntryKind, BillPlant};

const APP_ID: &str = "2021000122671234";
const SELLER_ID: &str = "2088621955998920";
const BUYER: &str = "2088102177846880";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The platform's notify endpoint: records every delivery and answers `failure` to the first
/// `fail_first`, then `success`. It handles each notification once, by its dedupe key, as the
/// payment actor will.
#[derive(Clone)]
struct Recorder {
    received: Arc<Mutex<Vec<Bytes>>>,
    handled: Arc<Mutex<Vec<Notification>>>,
    seen: Arc<Mutex<HashSet<String>>>,
    fail_first: Arc<AtomicUsize>,
    client: Arc<Mutex<Option<AlipayClient>>>,
}

async fn record(State(rec): State<Recorder>, body: Bytes) -> &'static str {
    rec.received.lock().unwrap().push(body.clone());
    if rec.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return NOTIFY_NACK;
    }
    let client = rec.client.lock().unwrap().clone();
    if let Some(client) = client {
        match client.parse_notification(&body) {
            Ok(n) => {
                if rec.seen.lock().unwrap().insert(n.dedupe_key()) {
                    rec.handled.lock().unwrap().push(n);
                }
            }
            Err(_) => return NOTIFY_NACK,
        }
    }
    NOTIFY_ACK
}

impl Recorder {
    async fn start(fail_first: usize) -> (Self, String) {
        let rec = Recorder {
            received: Arc::default(),
            handled: Arc::default(),
            seen: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            client: Arc::default(),
        };
        let base = serve(Router::new().route("/alipay/notify", post(record)).with_state(rec.clone())).await;
        (rec, format!("{base}/alipay/notify"))
    }

    async fn wait_for(&self, n: usize) -> Vec<Bytes> {
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

fn config(gateway_url: &str, notify_url: &str) -> AlipayConfig {
    AlipayConfig {
        app_id: APP_ID.into(),
        app_private_key: SecretString::from(test_keys::APP_PRIVATE_KEY_PEM),
        alipay_public_key: test_keys::ALIPAY_PUBLIC_KEY_PEM.into(),
        seller_id: Some(SELLER_ID.into()),
        gateway_url: gateway_url.into(),
        notify_url: notify_url.into(),
    }
}

fn sandbox() -> AlipaySandbox {
    AlipaySandbox::new(AlipaySandboxConfig::with_test_keys(APP_ID, SELLER_ID))
        .unwrap()
        .with_retry_schedule(vec![Duration::from_millis(20); 5])
}

struct Env {
    sandbox: AlipaySandbox,
    base: String,
    client: AlipayClient,
    notify: Recorder,
}

async fn start_with(sandbox: AlipaySandbox, fail_first: usize) -> Env {
    let base = serve(Router::new().nest("/sandbox/alipay", sandbox_router(sandbox.clone()))).await;
    let base = format!("{base}/sandbox/alipay");
    let (notify, notify_url) = Recorder::start(fail_first).await;
    let client = AlipayClient::new(config(&format!("{base}/gateway.do"), &notify_url)).unwrap();
    *notify.client.lock().unwrap() = Some(client.clone());
    Env { sandbox, base, client, notify }
}

async fn start() -> Env {
    start_with(sandbox(), 0).await
}

fn trade(out_trade_no: &str, fen: u64) -> CreateTrade {
    CreateTrade {
        out_trade_no: out_trade_no.into(),
        subject: "门诊挂号-内科".into(),
        amount: Fen::new(fen),
        buyer: Buyer::UserId(BUYER.into()),
        time_expire: Utc::now() + chrono::Duration::minutes(15),
    }
}

fn refund(out_trade_no: &str, no: &str, fen: u64) -> RefundRequest {
    RefundRequest {
        out_trade_no: out_trade_no.into(),
        out_request_no: no.into(),
        amount: Fen::new(fen),
        reason: Some("患者取消预约".into()),
    }
}

fn api_code(err: AlipayError) -> String {
    match &err {
        AlipayError::Api { signed, .. } => {
            assert!(*signed, "the sandbox signs its refusals: {err:?}");
            err.api_code().unwrap().to_string()
        }
        other => panic!("expected an Alipay refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn mini_program_trade_is_created_paid_notified_and_refunded() {
    let env = start().await;
    let pay: Arc<dyn Alipay> = Arc::new(env.client.clone());
    let created = pay.create_trade(trade("REG20250101000001", 1250)).await.unwrap();
    assert_eq!(created.out_trade_no, "REG20250101000001");
    assert_eq!(created.trade_no.len(), 28, "{}", created.trade_no);
    let stored = env.sandbox.trade("REG20250101000001").unwrap();
    assert_eq!((stored.amount, stored.product_code.as_str()), (Fen::new(1250), "JSAPI_PAY"));
    assert!(stored.notify_url.as_deref().unwrap().ends_with("/alipay/notify"));
    // The documented retry: same content, same trade.
    assert_eq!(pay.create_trade(trade("REG20250101000001", 1250)).await.unwrap().trade_no, created.trade_no);

    let before = pay.query_trade("REG20250101000001").await.unwrap();
    assert_eq!((before.trade_status, before.total_amount), (TradeStatus::WaitBuyerPay, Fen::new(1250)));
    assert_eq!(before.buyer_pay_amount, None);

    // The payer pays (what my.tradePay does), through the sandbox's HTTP endpoint.
    let paid = reqwest::Client::new().post(format!("{}/sandbox/pay/REG20250101000001", env.base)).send().await.unwrap();
    assert_eq!(paid.status(), 200);
    let bodies = env.notify.wait_for(1).await;
    let n = env.client.parse_notification(&bodies[0]).unwrap();
    assert_eq!((n.out_trade_no.as_str(), n.trade_no.as_str()), ("REG20250101000001", created.trade_no.as_str()));
    assert_eq!(
        (n.trade_status, n.total_amount, n.receipt_amount),
        (TradeStatus::TradeSuccess, Fen::new(1250), Some(Fen::new(1250)))
    );
    assert_eq!(
        (n.app_id.as_str(), n.seller_id.as_deref(), n.buyer_id.as_deref()),
        (APP_ID, Some(SELLER_ID), Some(BUYER))
    );
    assert!(!n.is_refund() && n.gmt_payment.is_some());
    n.check_order("REG20250101000001", Fen::new(1250)).unwrap();

    let after = pay.query_trade("REG20250101000001").await.unwrap();
    assert_eq!(after.trade_status, TradeStatus::TradeSuccess);
    assert_eq!((after.buyer_pay_amount, after.receipt_amount), (Some(Fen::new(1250)), Some(Fen::new(1250))));
    assert_eq!(after.buyer_user_id.as_deref(), Some(BUYER));
    assert_eq!(after.send_pay_date.unwrap().offset().local_minus_utc(), 8 * 3600);

    // A partial refund, synchronous; its retry moves no money.
    let r1 = pay.refund(refund("REG20250101000001", "RF1", 300)).await.unwrap();
    assert!(r1.fund_change);
    assert_eq!(r1.refund_fee, Fen::new(300));
    let again = pay.refund(refund("REG20250101000001", "RF1", 300)).await.unwrap();
    assert!(!again.fund_change);
    assert_eq!(again.refund_fee, Fen::new(300));
    let bodies = env.notify.wait_for(2).await;
    let rn = env.client.parse_notification(&bodies[1]).unwrap();
    assert!(rn.is_refund());
    assert_eq!(
        (rn.trade_status, rn.out_biz_no.as_deref(), rn.refund_fee),
        (TradeStatus::TradeSuccess, Some("RF1"), Some(Fen::new(300)))
    );
    assert_ne!(rn.dedupe_key(), n.dedupe_key());

    let q = pay.query_refund("REG20250101000001", "RF1").await.unwrap().unwrap();
    assert_eq!((q.refund_amount, q.total_amount, q.out_request_no.as_str()), (Fen::new(300), Fen::new(1250), "RF1"));
    assert!(q.is_success());
    assert_eq!(pay.query_refund("REG20250101000001", "RF404").await.unwrap(), None);

    // 950 fen are left.
    assert_eq!(
        api_code(pay.refund(refund("REG20250101000001", "RF2", 951)).await.unwrap_err()),
        sub_code::REFUND_AMT_NOT_EQUAL_TOTAL
    );
    assert_eq!(
        api_code(pay.refund(refund("REG20250101000001", "RF1", 200)).await.unwrap_err()),
        sub_code::DISCORDANT_REPEAT_REQUEST
    );
    // Refunding the rest closes the trade, and Alipay says so.
    let r2 = pay.refund(refund("REG20250101000001", "RF2", 950)).await.unwrap();
    assert_eq!(r2.refund_fee, Fen::new(1250));
    let bodies = env.notify.wait_for(3).await;
    let closed = env.client.parse_notification(&bodies[2]).unwrap();
    assert_eq!((closed.trade_status, closed.refund_fee), (TradeStatus::TradeClosed, Some(Fen::new(1250))));
    assert!(closed.gmt_close.is_some());
    assert_eq!(pay.query_trade("REG20250101000001").await.unwrap().trade_status, TradeStatus::TradeClosed);
    assert_eq!(env.sandbox.notifications_sent(), 3);
    assert_eq!(env.notify.handled.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn every_refusal_reaches_the_caller_as_its_code() {
    let env = start().await;
    let c = &env.client;
    assert_eq!(api_code(c.query_trade("REG404").await.unwrap_err()), sub_code::TRADE_NOT_EXIST);
    assert_eq!(api_code(c.close_trade("REG404").await.unwrap_err()), sub_code::TRADE_NOT_EXIST);
    assert_eq!(api_code(c.refund(refund("REG404", "RF1", 1)).await.unwrap_err()), sub_code::TRADE_NOT_EXIST);

    c.create_trade(trade("REG20250101000002", 500)).await.unwrap();
    assert_eq!(
        api_code(c.create_trade(trade("REG20250101000002", 600)).await.unwrap_err()),
        sub_code::CONTEXT_INCONSISTENT
    );
    assert_eq!(
        api_code(c.refund(refund("REG20250101000002", "RF1", 100)).await.unwrap_err()),
        sub_code::TRADE_STATUS_ERROR
    );
    c.close_trade("REG20250101000002").await.unwrap();
    c.close_trade("REG20250101000002").await.unwrap();
    assert_eq!(c.query_trade("REG20250101000002").await.unwrap().trade_status, TradeStatus::TradeClosed);
    assert_eq!(api_code(c.create_trade(trade("REG20250101000002", 500)).await.unwrap_err()), sub_code::TRADE_HAS_CLOSE);
    assert_eq!(api_code(env.sandbox.pay("REG20250101000002").unwrap_err()), sub_code::TRADE_HAS_CLOSE);

    c.create_trade(trade("REG20250101000003", 500)).await.unwrap();
    env.sandbox.pay("REG20250101000003").unwrap();
    assert_eq!(api_code(c.close_trade("REG20250101000003").await.unwrap_err()), sub_code::TRADE_STATUS_ERROR);
    assert_eq!(
        api_code(c.create_trade(trade("REG20250101000003", 500)).await.unwrap_err()),
        sub_code::TRADE_HAS_SUCCESS
    );
    assert_eq!(api_code(env.sandbox.pay("REG20250101000003").unwrap_err()), sub_code::TRADE_HAS_SUCCESS);

    // The client refuses what Alipay would refuse, before sending.
    for bad in [
        trade("REG20250101000004", 0),
        trade("bad-no!", 100),
        CreateTrade { subject: "a&b".into(), ..trade("REG5", 1) },
    ] {
        assert!(matches!(c.create_trade(bad).await, Err(AlipayError::InvalidRequest(_))));
    }
    assert!(matches!(
        c.create_trade(CreateTrade { buyer: Buyer::OpenId(" ".into()), ..trade("REG6", 1) }).await,
        Err(AlipayError::InvalidRequest(_))
    ));
    assert!(env.sandbox.trade("REG20250101000004").is_none());
}

/// A request signed by the test with the parameters it chooses.
async fn raw_call(env: &Env, params: &[(&str, &str)], key: &str) -> Value {
    let private = sign::parse_private_key(key).unwrap();
    let mut params: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let s = sign::sign_request(&private, params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    params.push(("sign".into(), s));
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let text = reqwest::Client::new()
        .post(format!("{}/gateway.do", env.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn the_gateway_checks_app_signature_timestamp_and_method() {
    let env = start().await;
    let now = format_time(Utc::now());
    let stale = format_time(Utc::now() - chrono::Duration::minutes(11));
    let biz = r#"{"out_trade_no":"REG404"}"#;
    let base = |ts: &str, sign_type: &'static str, app: &'static str| {
        vec![
            ("app_id", app),
            ("method", "alipay.trade.query"),
            ("charset", "utf-8"),
            ("sign_type", sign_type),
            ("version", "1.0"),
            ("biz_content", biz),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .chain([("timestamp", ts.to_string())])
        .collect::<Vec<_>>()
    };
    let call = |params: Vec<(&'static str, String)>, key: &'static str| {
        let env = &env;
        async move {
            let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            raw_call(env, &borrowed, key).await
        }
    };
    let sub = |v: &Value| v["alipay_trade_query_response"]["sub_code"].as_str().unwrap_or_default().to_string();

    let ok = call(base(&now, "RSA2", APP_ID), test_keys::APP_PRIVATE_KEY_PEM).await;
    assert_eq!(sub(&ok), sub_code::TRADE_NOT_EXIST, "a well-signed request reaches the business check: {ok}");
    let wrong_key = call(base(&now, "RSA2", APP_ID), test_keys::ALIPAY_PRIVATE_KEY_PEM).await;
    assert_eq!(sub(&wrong_key), sub_code::INVALID_SIGNATURE);
    assert_eq!(wrong_key["alipay_trade_query_response"]["code"], code::INVALID_PARAMETER);
    assert_eq!(
        sub(&call(base(&stale, "RSA2", APP_ID), test_keys::APP_PRIVATE_KEY_PEM).await),
        sub_code::INVALID_TIMESTAMP
    );
    assert_eq!(
        sub(&call(base(&now, "RSA", APP_ID), test_keys::APP_PRIVATE_KEY_PEM).await),
        sub_code::INVALID_SIGNATURE_TYPE
    );
    assert_eq!(
        sub(&call(base(&now, "RSA2", "2021000000000000"), test_keys::APP_PRIVATE_KEY_PEM).await),
        sub_code::INVALID_APP_ID
    );

    // A parameter changed after signing.
    let private = sign::parse_private_key(test_keys::APP_PRIVATE_KEY_PEM).unwrap();
    let mut params = base(&now, "RSA2", APP_ID);
    let s = sign::sign_request(&private, params.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
    params.retain(|(k, _)| *k != "biz_content");
    params.push(("biz_content", r#"{"out_trade_no":"REG405"}"#.into()));
    params.push(("sign", s));
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
    let tampered: Value = reqwest::Client::new()
        .post(format!("{}/gateway.do", env.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sub(&tampered), sub_code::INVALID_SIGNATURE);

    // An unknown method gets the gateway's unsigned error envelope; the client still reports
    // its code, marked unsigned.
    let err = env.client.signed_params("alipay.trade.nonexistent", &json!({}), &[]).unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&err).finish();
    let text = reqwest::Client::new()
        .post(format!("{}/gateway.do", env.base))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.starts_with(r#"{"error_response":"#) && !text.contains("\"sign\""), "{text}");
    match env.client.verify_answer("alipay.trade.nonexistent", &text) {
        Err(AlipayError::Api { sub_code, signed: false, .. }) => assert_eq!(sub_code, sub_code::INVALID_METHOD),
        other => panic!("expected an unsigned refusal, got {other:?}"),
    }
}

/// Fake "Alipay" answering whatever body the test chooses.
async fn fake_gateway(body: String) -> String {
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { body }
    });
    format!("{}/gateway.do", serve(app).await)
}

#[tokio::test]
async fn unsigned_or_badly_signed_answers_are_refused() {
    let inner = r#"{"code":"10000","msg":"Success","out_trade_no":"REG1","trade_no":"2025010122001400000000000001"}"#;
    let alipay = sign::parse_private_key(test_keys::ALIPAY_PRIVATE_KEY_PEM).unwrap();
    let app = sign::parse_private_key(test_keys::APP_PRIVATE_KEY_PEM).unwrap();
    let wrap = |sig: Option<String>| match sig {
        Some(s) => format!(r#"{{"alipay_trade_create_response":{inner},"sign":"{s}"}}"#),
        None => format!(r#"{{"alipay_trade_create_response":{inner}}}"#),
    };
    let cases = [
        wrap(None),
        wrap(Some(sign::sign_rsa2(&app, inner))),
        wrap(Some(sign::sign_rsa2(&alipay, &inner.replace("REG1", "REG2")))),
    ];
    for body in cases {
        let client =
            AlipayClient::new(config(&fake_gateway(body.clone()).await, "https://example.com/notify")).unwrap();
        match client.create_trade(trade("REG1", 100)).await {
            Err(AlipayError::Unverified(_)) => {}
            other => panic!("expected an unverified answer for {body}, got {other:?}"),
        }
    }
    // Correctly signed, the same answer is accepted: the failures above are the signature's.
    let client = AlipayClient::new(config(
        &fake_gateway(wrap(Some(sign::sign_rsa2(&alipay, inner)))).await,
        "https://example.com/n",
    ))
    .unwrap();
    assert_eq!(client.create_trade(trade("REG1", 100)).await.unwrap().trade_no, "2025010122001400000000000001");
    // An answer for another trade is not ours.
    let client = AlipayClient::new(config(
        &fake_gateway(wrap(Some(sign::sign_rsa2(&alipay, inner)))).await,
        "https://example.com/n",
    ))
    .unwrap();
    assert!(matches!(client.create_trade(trade("REG9", 100)).await, Err(AlipayError::UnexpectedResponse { .. })));
    // An unsigned refusal still reaches the caller as its code.
    let refusal = r#"{"alipay_trade_create_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}}"#;
    let client = AlipayClient::new(config(&fake_gateway(refusal.into()).await, "https://example.com/n")).unwrap();
    let err = client.create_trade(trade("REG1", 100)).await.unwrap_err();
    assert!(matches!(&err, AlipayError::Api { signed: false, .. }), "{err:?}");
    assert_eq!(err.api_code(), Some(sub_code::SYSTEM_ERROR));
    assert!(err.is_retryable());
}

#[tokio::test]
async fn wap_pay_url_opens_the_cashier_and_returns_signed() {
    let env = start().await;
    let url = env
        .client
        .wap_pay_url(WapPay {
            out_trade_no: "REG20250101000007".into(),
            subject: "<b>体检套餐".into(),
            amount: Fen::new(19_900),
            time_expire: Utc::now() + chrono::Duration::minutes(30),
            return_url: Some("https://h5.example.com/paid?from=alipay".into()),
            quit_url: Some("https://h5.example.com/cancel".into()),
        })
        .unwrap();
    assert!(url.starts_with(&format!("{}/gateway.do?", env.base)) && url.contains("method=alipay.trade.wap.pay"));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let cashier = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(cashier.contains("支付</button>") && cashier.contains("¥199.00"), "{cashier}");
    assert!(cashier.contains("&lt;b&gt;体检") && !cashier.contains("<b>体检"), "escaped: {cashier}");
    let stored = env.sandbox.trade("REG20250101000007").unwrap();
    assert_eq!(stored.product_code, "QUICK_WAP_WAY");

    // Tampering with the amount in the URL breaks the signature.
    let tampered = url.replace("199.00", "1.99");
    assert_ne!(tampered, url);
    let refused = http.get(&tampered).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains(sub_code::INVALID_SIGNATURE));

    let action = format!("{}/sandbox/pay/REG20250101000007", env.base);
    assert!(cashier.contains("/sandbox/alipay/sandbox/pay/REG20250101000007"), "the form posts under the prefix");
    let back = http.post(&action).send().await.unwrap();
    assert_eq!(back.status(), 303);
    let location = back.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("https://h5.example.com/paid?from=alipay&"), "{location}");
    // The return parameters are signed by Alipay's key like a notification.
    let params = decode_form(location.split_once('?').unwrap().1.as_bytes()).unwrap();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!((get("out_trade_no"), get("total_amount")), ("REG20250101000007".to_string(), "199.00".to_string()));
    let content = sign::notification_signing_string(
        params.iter().filter(|(k, _)| k != "from").map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .unwrap();
    let alipay = sign::parse_public_key(test_keys::ALIPAY_PUBLIC_KEY_PEM).unwrap();
    sign::verify_rsa2(&alipay, &content, &get("sign")).unwrap();
    let n = env.client.parse_notification(&env.notify.wait_for(1).await[0]).unwrap();
    assert_eq!((n.out_trade_no.as_str(), n.total_amount), ("REG20250101000007", Fen::new(19_900)));
    assert_eq!(http.post(&action).send().await.unwrap().status(), 409, "paying twice");
}

#[tokio::test]
async fn notifications_are_resent_until_answered_success_and_handled_once() {
    let env = start_with(sandbox(), 2).await;
    env.client.create_trade(trade("REG20250101000008", 800)).await.unwrap();
    env.sandbox.pay("REG20250101000008").unwrap();
    let bodies = env.notify.wait_for(3).await;
    let ids: Vec<String> = bodies.iter().map(|b| env.client.parse_notification(b).unwrap().notify_id).collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "one notification delivered three times: {ids:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = env.sandbox.delivery_log();
    assert_eq!(log.iter().map(|a| a.acknowledged).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(log[0].answer.as_deref(), Some(NOTIFY_NACK));
    assert_eq!(env.notify.received.lock().unwrap().len(), 3, "nothing after the acknowledgement");
    assert_eq!(env.notify.handled.lock().unwrap().len(), 1, "handled once");
    // A redelivery of an already handled notification changes nothing either.
    let before = env.notify.handled.lock().unwrap().len();
    reqwest::Client::new()
        .post(format!("{}/alipay/notify", log[0].url.trim_end_matches("/alipay/notify")))
        .body(bodies[0].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(env.notify.handled.lock().unwrap().len(), before);
}

#[tokio::test]
async fn only_the_exact_word_success_acknowledges() {
    async fn ok_not_success() -> &'static str {
        "OK"
    }
    let sandbox = sandbox().with_retry_schedule(vec![Duration::from_millis(10); 2]);
    let base = serve(Router::new().nest("/sandbox/alipay", sandbox_router(sandbox.clone()))).await;
    let notify = serve(Router::new().route("/n", post(ok_not_success))).await;
    let client =
        AlipayClient::new(config(&format!("{base}/sandbox/alipay/gateway.do"), &format!("{notify}/n"))).unwrap();
    client.create_trade(trade("REG20250101000009", 100)).await.unwrap();
    sandbox.pay("REG20250101000009").unwrap();
    for _ in 0..300 {
        if sandbox.delivery_log().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = sandbox.delivery_log();
    assert_eq!(log.len(), 3, "first delivery plus one per scheduled wait");
    assert!(log.iter().all(|a| a.status == Some(200) && !a.acknowledged));
    assert_eq!(sandbox.notifications_acknowledged(), 0);
}

fn rejected(result: Result<Notification, AlipayError>) -> String {
    match result {
        Err(AlipayError::Notification(reason)) => reason,
        other => panic!("expected a rejected notification, got {other:?}"),
    }
}

/// Re-signs a notification's parameters (minus `sign`) with `key`, after `edit`.
fn resign(body: &[u8], key: &str, edit: impl Fn(&mut Vec<(String, String)>)) -> Vec<u8> {
    let mut params = decode_form(body).unwrap();
    params.retain(|(k, _)| k != "sign");
    edit(&mut params);
    let private = sign::parse_private_key(key).unwrap();
    let content = sign::notification_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    params.push(("sign".into(), sign::sign_rsa2(&private, &content)));
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish().into_bytes()
}

fn set(params: &mut [(String, String)], name: &str, value: &str) {
    params.iter_mut().find(|(k, _)| k == name).unwrap().1 = value.to_string();
}

#[tokio::test]
async fn forged_foreign_and_wrong_amount_notifications_are_refused() {
    let env = start().await;
    env.client.create_trade(trade("REG20250101000010", 1000)).await.unwrap();
    env.sandbox.pay("REG20250101000010").unwrap();
    let body = env.notify.wait_for(1).await.remove(0).to_vec();
    let good = env.client.parse_notification(&body).unwrap();

    // Changed after signing.
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(rejected(
        env.client.parse_notification(text.replace("total_amount=10.00", "total_amount=0.01").as_bytes())
    )
    .contains("signature"));
    // Signed by anyone but Alipay.
    let forged = resign(&body, test_keys::APP_PRIVATE_KEY_PEM, |_| {});
    assert!(rejected(env.client.parse_notification(&forged)).contains("signature"));
    // Correctly signed by Alipay's key, but for another app or seller.
    let other_app = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| {
        set(p, "app_id", "2021000000000001");
        set(p, "auth_app_id", "2021000000000001");
    });
    assert!(rejected(env.client.parse_notification(&other_app)).contains("app_id"));
    let other_seller = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| set(p, "seller_id", "2088000000000001"));
    assert!(rejected(env.client.parse_notification(&other_seller)).contains("seller_id"));
    let odd_status = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| set(p, "trade_status", "TRADE_PENDING"));
    assert!(rejected(env.client.parse_notification(&odd_status)).contains("trade_status"));
    let bad_amount = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| set(p, "total_amount", "10.001"));
    assert!(rejected(env.client.parse_notification(&bad_amount)).contains("total_amount"));
    let rsa1 = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| set(p, "sign_type", "RSA"));
    assert!(rejected(env.client.parse_notification(&rsa1)).contains("sign_type"));
    let unsigned = text.split('&').filter(|kv| !kv.starts_with("sign=")).collect::<Vec<_>>().join("&");
    assert!(rejected(env.client.parse_notification(unsigned.as_bytes())).contains("no sign"));
    assert!(env.client.parse_notification(b"%FF%FE=1&charset=utf-8").is_err());

    // Genuine, but not this order or not its amount: the caller's check refuses it.
    assert!(good.check_order("REG20250101000010", Fen::new(1000)).is_ok());
    assert!(
        matches!(good.check_order("REG20250101000010", Fen::new(999)), Err(AlipayError::Notification(m)) if m.contains("total_amount"))
    );
    assert!(matches!(good.check_order("REG20250101000011", Fen::new(1000)), Err(AlipayError::Notification(_))));

    // A GBK notification (an app whose requests said charset=gbk) verifies over decoded text.
    let gbk = resign(&body, test_keys::ALIPAY_PRIVATE_KEY_PEM, |p| set(p, "charset", "gbk"));
    let gbk_text = String::from_utf8(gbk).unwrap();
    let (encoded, _, _) = encoding_rs::GBK.encode("门诊挂号-内科");
    let subject_gbk = percent_encoding::percent_encode(&encoded, percent_encoding::NON_ALPHANUMERIC).to_string();
    let subject_utf8 = url::form_urlencoded::byte_serialize("门诊挂号-内科".as_bytes()).collect::<String>();
    let as_gbk = gbk_text.replace(&subject_utf8, &subject_gbk);
    assert_ne!(as_gbk, gbk_text);
    assert_eq!(env.client.parse_notification(as_gbk.as_bytes()).unwrap().out_trade_no, "REG20250101000010");
}

#[tokio::test]
async fn bill_download_shows_trades_refunds_and_planted_differences() {
    let env = start().await;
    for (no, fen) in [("REGBILL1", 1250), ("REGBILL2", 3000), ("REGBILL3", 5000), ("REGBILL4", 700)] {
        env.client.create_trade(trade(no, fen)).await.unwrap();
        env.sandbox.pay(no).unwrap();
    }
    env.client.create_trade(trade("REGBILLUNPAID", 100)).await.unwrap();
    env.client.refund(refund("REGBILL1", "RFB1", 250)).await.unwrap();
    let today = Utc::now().with_timezone(&beijing()).date_naive();

    let clean = env.client.download_bill(today).await.unwrap();
    assert_eq!((clean.account.as_str(), clean.date), (SELLER_ID, today));
    let entries = clean.entries();
    let payments: Vec<(&str, u64)> = entries
        .iter()
        .filter(|e| e.kind == BillEntryKind::Payment)
        .map(|e| (e.out_trade_no.as_str(), e.amount.get()))
        .collect();
    assert_eq!(payments.len(), 4);
    for expected in [("REGBILL1", 1250), ("REGBILL2", 3000), ("REGBILL3", 5000), ("REGBILL4", 700)] {
        assert!(payments.contains(&expected), "{expected:?} in {payments:?}");
    }
    let refunds: Vec<_> = entries.iter().filter(|e| e.kind == BillEntryKind::Refund).collect();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        (refunds[0].out_trade_no.as_str(), refunds[0].out_refund_no.as_deref(), refunds[0].amount),
        ("REGBILL1", Some("RFB1"), Fen::new(250))
    );
    assert_eq!(refunds[0].provider_trade_no, env.sandbox.trade("REGBILL1").unwrap().trade_no);
    assert!(entries.iter().all(|e| e.out_trade_no != "REGBILLUNPAID"), "unpaid trades are not in the bill");

    env.sandbox.plant(BillPlant::Missing { out_trade_no: "REGBILL2".into() });
    env.sandbox.plant(BillPlant::Amount { out_trade_no: "REGBILL3".into(), amount: Fen::new(4999) });
    env.sandbox.plant(BillPlant::Unknown { date: today, out_trade_no: "NEVERPLACED1".into(), amount: Fen::new(888) });
    let planted = env.client.download_bill(today).await.unwrap().entries();
    assert!(planted.iter().all(|e| e.out_trade_no != "REGBILL2"), "missing from the bill");
    let amount_of = |no: &str| {
        planted.iter().find(|e| e.out_trade_no == no && e.kind == BillEntryKind::Payment).map(|e| e.amount.get())
    };
    assert_eq!(amount_of("REGBILL3"), Some(4999));
    assert_eq!(amount_of("NEVERPLACED1"), Some(888));
    assert_eq!(amount_of("REGBILL4"), Some(700), "the rest is unchanged");

    let err = env.client.download_bill(today.succ_opt().unwrap()).await.unwrap_err();
    assert_eq!(api_code(err), sub_code::BILL_NOT_EXIST);
    let yesterday = env.client.download_bill(today.pred_opt().unwrap()).await.unwrap();
    assert!(yesterday.rows.is_empty());
    let dead = reqwest::get(format!("{}/downloadBillFile.resource?token=forged", env.base)).await.unwrap();
    assert_eq!(dead.status(), 403);
}

#[test]
fn configuration_errors_and_redaction() {
    let good = config("https://openapi.alipay.com/gateway.do", "https://example.com/alipay/notify");
    let client = AlipayClient::new(good.clone()).unwrap();
    let shown = format!("{client:?} {good:?}");
    assert!(!shown.contains("PRIVATE") && !shown.contains("MII"), "{shown}");
    for broken in [
        AlipayConfig { app_private_key: SecretString::from("nope"), ..good.clone() },
        AlipayConfig { alipay_public_key: "nope".into(), ..good.clone() },
        AlipayConfig { alipay_public_key: test_keys::APP_PUBLIC_KEY_PEM.into(), ..good.clone() },
        AlipayConfig { gateway_url: "::".into(), ..good.clone() },
        AlipayConfig { notify_url: "https://example.com/n?x=1".into(), ..good.clone() },
        AlipayConfig { app_id: " ".into(), ..good.clone() },
    ] {
        assert!(matches!(AlipayClient::new(broken), Err(AlipayError::Config(_))));
    }
    let sandbox = AlipaySandbox::new(AlipaySandboxConfig::with_test_keys(APP_ID, SELLER_ID)).unwrap();
    assert!(!format!("{sandbox:?}").contains("PRIVATE"));
    assert!(matches!(sandbox.pay("REG404"), Err(AlipayError::Config(_))));
}

// ---- Independent cross-check: python-alipay-sdk ------------------------------------------

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

const PY_CROSS_CHECK: &str = r#"
import json, sys, io, zipfile, csv, urllib.parse
from urllib.request import urlopen
from alipay import AliPay
cfg = json.loads(sys.stdin.read())
out = {}
# 1. Our client's request signature, verified by the SDK's own RSA2 code with the app public key.
verifier = AliPay(appid=cfg["app_id"], app_private_key_string=cfg["alipay_private"], alipay_public_key_string=cfg["app_public"], sign_type="RSA2")
params = dict(cfg["signed_params"])
signature = params.pop("sign")
unsigned = "&".join("{}={}".format(k, v) for k, v in verifier._ordered_data(params))
out["client_signature_ok"] = verifier._verify(unsigned, signature)
out["client_signature_tampered"] = verifier._verify(unsigned.replace("12.50", "12.51"), signature)
# 2. A notification our sandbox sent, verified by the SDK's notification check.
sdk = AliPay(appid=cfg["app_id"], app_notify_url=cfg["notify_url"], app_private_key_string=cfg["app_private"], alipay_public_key_string=cfg["alipay_public"], sign_type="RSA2")
sdk._gateway = cfg["gateway"]
data = dict(urllib.parse.parse_qsl(cfg["notification"], keep_blank_values=True))
sig = data.pop("sign")
out["notification_ok"] = sdk.verify(dict(data), sig)
data["total_amount"] = "0.01"
out["notification_tampered"] = sdk.verify(dict(data), sig)
# 3. The SDK calls our sandbox: it signs, we verify; we sign, it verifies.
out["query"] = sdk.api_alipay_trade_query(out_trade_no=cfg["paid_trade"])
out["missing"] = sdk.api_alipay_trade_query(out_trade_no="REGPY404")
out["create"] = sdk.server_api("alipay.trade.create", biz_content={"out_trade_no": "REGPY0001", "total_amount": "66.60", "subject": "python sdk", "product_code": "JSAPI_PAY", "buyer_id": "2088102177846880"})
out["close"] = sdk.api_alipay_trade_close(out_trade_no="REGPY0001")
out["refund"] = sdk.api_alipay_trade_refund(refund_amount="1.00", out_trade_no=cfg["paid_trade"], out_request_no="PYRF1")
out["refund_query"] = sdk.api_alipay_trade_fastpay_refund_query("PYRF1", out_trade_no=cfg["paid_trade"])
bill = sdk.server_api("alipay.data.dataservice.bill.downloadurl.query", biz_content={"bill_type": "trade", "bill_date": cfg["bill_date"]})
archive = zipfile.ZipFile(io.BytesIO(urlopen(bill["bill_download_url"]).read()))
names = [n.encode("cp437").decode("gbk") for n in archive.namelist()]
detail = [n for n in archive.namelist() if n.encode("cp437").decode("gbk").endswith("业务明细.csv")][0]
lines = archive.read(detail).decode("gbk").splitlines()
start = [i for i, l in enumerate(lines) if "业务明细列表" in l][0]
end = [i for i, l in enumerate(lines) if "业务明细列表结束" in l][0]
rows = [[f.strip() for f in r] for r in csv.reader(lines[start + 1:end])]
out["bill"] = {"names": names, "header": rows[0], "rows": rows[1:]}
# 4. A wap.pay URL built by the SDK opens our cashier (the signature checks out).
query = sdk.api_alipay_trade_wap_pay(subject="python wap", out_trade_no="REGPYWAP1", total_amount="9.90", return_url="https://h5.example.com/r")
out["wap_page"] = urlopen(cfg["gateway"] + "?" + query).read().decode()
print(json.dumps(out, ensure_ascii=False))
"#;

/// `python-alipay-sdk` (PyPI, installed by scripts/test.sh) against our code, both ways.
#[tokio::test]
async fn python_alipay_sdk_cross_check() {
    if !python_has("alipay") {
        panic!(
            "python3 module `alipay` (PyPI python-alipay-sdk) is missing; the independent \
             Alipay cross-check did not run (scripts/test.sh installs it)"
        );
    }
    let env = start().await;
    env.client.create_trade(trade("REGPYPAID1", 1250)).await.unwrap();
    env.sandbox.pay("REGPYPAID1").unwrap();
    let notification = String::from_utf8(env.notify.wait_for(1).await.remove(0).to_vec()).unwrap();
    let signed = env
        .client
        .signed_params(
            "alipay.trade.create",
            &json!({"out_trade_no": "REGX1", "total_amount": "12.50", "subject": "挂号 内科"}),
            &[("notify_url", "https://example.com/n")],
        )
        .unwrap();
    let input = json!({
        "app_id": APP_ID,
        "app_private": test_keys::APP_PRIVATE_KEY_PEM,
        "app_public": test_keys::APP_PUBLIC_KEY_PEM,
        "alipay_private": test_keys::ALIPAY_PRIVATE_KEY_PEM,
        "alipay_public": test_keys::ALIPAY_PUBLIC_KEY_PEM,
        "gateway": format!("{}/gateway.do", env.base),
        "notify_url": env.client.notify_url(),
        "signed_params": signed,
        "notification": notification,
        "paid_trade": "REGPYPAID1",
        "bill_date": Utc::now().with_timezone(&beijing()).format("%Y-%m-%d").to_string(),
    });
    // python-alipay-sdk stamps requests with the local clock: make that Beijing time.
    let script = PY_CROSS_CHECK.to_string();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new("python3")
            .args(["-c", &script])
            .env("TZ", "Asia/Shanghai")
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
    assert_eq!(out["client_signature_ok"], true, "the SDK verifies our request signature");
    assert_eq!(out["client_signature_tampered"], false);
    assert_eq!(out["notification_ok"], true, "the SDK verifies our sandbox's notification");
    assert_eq!(out["notification_tampered"], false);
    assert_eq!(out["query"]["trade_status"], "TRADE_SUCCESS", "{out}");
    assert_eq!(out["query"]["total_amount"], "12.50");
    assert_eq!(out["missing"]["sub_code"], sub_code::TRADE_NOT_EXIST);
    assert_eq!(out["create"]["code"], "10000");
    assert_eq!(env.sandbox.trade("REGPY0001").unwrap().amount, Fen::new(6660), "a trade the SDK signed was accepted");
    assert_eq!(out["close"]["code"], "10000");
    assert_eq!(env.sandbox.trade("REGPY0001").unwrap().status, TradeStatus::TradeClosed);
    assert_eq!(
        (out["refund"]["fund_change"].as_str(), out["refund"]["refund_fee"].as_str()),
        (Some("Y"), Some("1.00"))
    );
    assert_eq!(out["refund_query"]["refund_amount"], "1.00");
    // Our client sees the SDK's refund.
    assert_eq!(env.client.query_refund("REGPYPAID1", "PYRF1").await.unwrap().unwrap().refund_amount, Fen::new(100));
    let bill = &out["bill"];
    assert!(
        bill["names"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().ends_with("_业务明细(汇总).csv")),
        "{bill}"
    );
    assert_eq!(bill["header"][0], "支付宝交易号");
    let rows = bill["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r[1] == "REGPYPAID1" && r[2] == "交易" && r[11] == "12.50"), "{rows:?}");
    assert!(
        rows.iter().any(|r| r[1] == "REGPYPAID1" && r[2] == "退款" && r[12] == "-1.00" && r[21] == "PYRF1"),
        "{rows:?}"
    );
    assert!(out["wap_page"].as_str().unwrap().contains("支付</button>"), "{}", out["wap_page"]);
    assert_eq!(env.sandbox.trade("REGPYWAP1").unwrap().amount, Fen::new(990));
}
