//! End-to-end SMS tests: the real `AliyunSms` client against the sandbox on a real TCP port.

use std::net::SocketAddr;

use axum::Router;
use chrono::{Duration, Utc};
use hospital_domain::Phone;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::*;

const KEY_ID: &str = "LTAI-sandbox";
const SECRET: &str = "sandbox-secret";

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn client(endpoint: String, key_id: &str, secret: &str) -> AliyunSms {
    AliyunSms::new(AliyunSmsConfig {
        access_key_id: key_id.into(),
        access_key_secret: SecretString::from(secret),
        sign_name: "示例医院".into(),
        code_template: LOGIN_CODE_TEMPLATE.into(),
        endpoint,
    })
    .unwrap()
}

async fn start() -> (SmsSandbox, String) {
    let sandbox = SmsSandbox::new(KEY_ID, SecretString::from(SECRET));
    let addr = serve(sandbox_router(sandbox.clone())).await;
    (sandbox, format!("http://{addr}"))
}

fn phone() -> Phone {
    Phone::parse("13800138000").unwrap()
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn get_json(url: url::Url) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn code_arrives_in_the_outbox() {
    let (sandbox, endpoint) = start().await;
    let sms: std::sync::Arc<dyn SmsSender> = std::sync::Arc::new(client(endpoint, KEY_ID, SECRET));
    let receipt = sms.send_code(&phone(), "123456").await.unwrap();
    assert!(receipt.biz_id.ends_with("^0"), "{receipt:?}");
    assert_eq!(receipt.request_id.len(), 36);

    let got = sandbox.messages_for(&phone());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "【示例医院】您的验证码为123456,5分钟内有效。");
    assert_eq!(got[0].template_code, LOGIN_CODE_TEMPLATE);
    assert_eq!(got[0].params, json!({"code": "123456"}));
    assert!(sandbox.messages_for(&Phone::parse("13900139000").unwrap()).is_empty());
}

#[tokio::test]
async fn wrong_secret_is_signature_mismatch_and_stores_nothing() {
    let (sandbox, endpoint) = start().await;
    let err = client(endpoint, KEY_ID, "not-the-secret").send_code(&phone(), "123456").await.unwrap_err();
    match err {
        SmsError::Provider { code, message } => {
            assert_eq!(code, "SignatureDoesNotMatch");
            assert!(message.contains("server string to sign is:GET&%2F&"), "{message}");
        }
        other => panic!("expected SignatureDoesNotMatch, got {other:?}"),
    }
    assert!(sandbox.all_messages().is_empty());
}

#[tokio::test]
async fn unknown_access_key_is_refused() {
    let (sandbox, endpoint) = start().await;
    let err = client(endpoint, "LTAI-other", SECRET).send_code(&phone(), "1").await.unwrap_err();
    assert!(matches!(err, SmsError::Provider { ref code, .. } if code == "InvalidAccessKeyId.NotFound"), "{err:?}");
    assert!(sandbox.all_messages().is_empty());
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let (sandbox, endpoint) = start().await;
    let sms = client(endpoint, KEY_ID, SECRET);
    let url = sms.signed_url("13800138000", LOGIN_CODE_TEMPLATE, r#"{"code":"654321"}"#, "fixed-nonce", &now());
    let (status, body) = get_json(url.clone()).await;
    assert_eq!((status, body["Code"].as_str()), (200, Some("OK")), "{body}");
    let (status, body) = get_json(url).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureNonceUsed")), "{body}");
    assert_eq!(sandbox.messages_for(&phone()).len(), 1);
}

#[tokio::test]
async fn stale_timestamp_and_tampered_query_are_refused() {
    let (sandbox, endpoint) = start().await;
    let sms = client(endpoint, KEY_ID, SECRET);
    let old = (Utc::now() - Duration::minutes(16)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let url = sms.signed_url("13800138000", LOGIN_CODE_TEMPLATE, r#"{"code":"1"}"#, "n-old", &old);
    let (status, body) = get_json(url).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("InvalidTimeStamp.Expired")), "{body}");

    // Redirect a correctly signed message to another number: the signature no longer fits.
    let url = sms.signed_url("13800138000", LOGIN_CODE_TEMPLATE, r#"{"code":"1"}"#, "n-tamper", &now());
    let tampered: url::Url =
        url.as_str().replace("PhoneNumbers=13800138000", "PhoneNumbers=13900139000").parse().unwrap();
    let (status, body) = get_json(tampered).await;
    assert_eq!((status, body["Code"].as_str()), (400, Some("SignatureDoesNotMatch")), "{body}");
    assert!(sandbox.all_messages().is_empty());
}

#[tokio::test]
async fn business_errors_use_aliyun_isv_codes() {
    let (sandbox, endpoint) = start().await;
    let sms = client(endpoint, KEY_ID, SECRET);

    let url = sms.signed_url("12345", LOGIN_CODE_TEMPLATE, r#"{"code":"1"}"#, "n-phone", &now());
    let (status, body) = get_json(url).await;
    assert_eq!((status, body["Code"].as_str()), (200, Some("isv.MOBILE_NUMBER_ILLEGAL")), "{body}");

    let err = sms.send_template(&phone(), "SMS_UNKNOWN", json!({"code": "1"})).await.unwrap_err();
    assert!(matches!(err, SmsError::Provider { ref code, .. } if code == "isv.SMS_TEMPLATE_ILLEGAL"), "{err:?}");

    let err = sms.send_template(&phone(), LOGIN_CODE_TEMPLATE, json!({"other": "1"})).await.unwrap_err();
    assert!(matches!(err, SmsError::Provider { ref code, .. } if code == "isv.TEMPLATE_MISSING_PARAMETERS"), "{err:?}");

    let err = sms.send_template(&phone(), LOGIN_CODE_TEMPLATE, json!({"code": 123456})).await.unwrap_err();
    assert!(matches!(err, SmsError::Provider { ref code, .. } if code == "isv.INVALID_JSON_PARAM"), "{err:?}");

    let err = sms.send_template(&phone(), LOGIN_CODE_TEMPLATE, json!(["not", "an", "object"])).await.unwrap_err();
    assert!(matches!(err, SmsError::Params(_)), "{err:?}");
    assert!(sandbox.all_messages().is_empty());
}

#[tokio::test]
async fn custom_template_and_nested_mount() {
    let sandbox = SmsSandbox::new(KEY_ID, SecretString::from(SECRET));
    sandbox.add_template("SMS_VISIT_REMINDER", "${name}您好,您预约的${dept}将于${time}就诊。");
    let addr = serve(Router::new().nest("/sandbox/aliyun-sms", sandbox_router(sandbox.clone()))).await;
    let sms = client(format!("http://{addr}/sandbox/aliyun-sms"), KEY_ID, SECRET);
    let params = json!({"name": "张 三", "dept": "心内科*专家", "time": "明天 09:30"});
    sms.send_template(&phone(), "SMS_VISIT_REMINDER", params.clone()).await.unwrap();
    let got = sandbox.messages_for(&phone());
    assert_eq!(got.len(), 1);
    // Spaces, `*` and CJK survive the round trip through Aliyun's encoding and signature.
    assert_eq!(got[0].text, "【示例医院】张 三您好,您预约的心内科*专家将于明天 09:30就诊。");
    assert_eq!(got[0].params, params);
}

#[tokio::test]
async fn unreachable_provider_is_a_retryable_transport_error() {
    // Bind then drop a listener so the port is very likely closed.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = client(format!("http://{addr}"), KEY_ID, SECRET).send_code(&phone(), "1").await.unwrap_err();
    assert!(matches!(err, SmsError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
}
