//! End-to-end real-name tests: the real `AliyunCloudauth` client against the sandbox on a real
//! TCP port.

use std::net::SocketAddr;

use axum::Router;
use chrono::Utc;
use hospital_domain::IdCardNo;
use secrecy::SecretString;
use serde_json::Value;

use super::*;

const KEY_ID: &str = "LTAI-sandbox";
const SECRET: &str = "sandbox-secret";
const ZHANG: &str = "11010519491231002X";

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn client(endpoint: String, key_id: &str, secret: &str) -> AliyunCloudauth {
    AliyunCloudauth::new(CloudauthConfig {
        access_key_id: key_id.into(),
        access_key_secret: SecretString::from(secret),
        endpoint,
    })
    .unwrap()
}

async fn start(sandbox: RealNameSandbox) -> String {
    format!("http://{}", serve(sandbox_router(sandbox)).await)
}

fn card(s: &str) -> IdCardNo {
    IdCardNo::parse(s).unwrap()
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// POSTs a raw form body, as the client would.
async fn post_form(endpoint: &url::Url, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(endpoint.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn each_biz_code_reaches_the_caller() {
    let sandbox = RealNameSandbox::strict(KEY_ID, SecretString::from(SECRET));
    sandbox.register(&card(ZHANG), Some("张三"));
    sandbox.register(&card("440524198001010013"), None);
    let verifier: std::sync::Arc<dyn RealNameVerifier> =
        std::sync::Arc::new(client(start(sandbox.clone()).await, KEY_ID, SECRET));

    let ok = verifier.verify("张三", &card(ZHANG)).await.unwrap();
    assert_eq!(ok.verdict, Verdict::Consistent);
    assert_eq!(ok.request_id.len(), 36, "{ok:?}");
    assert_eq!(verifier.verify("李四", &card(ZHANG)).await.unwrap().verdict, Verdict::Inconsistent);
    assert_eq!(verifier.verify("王五", &card("440524198001010013")).await.unwrap().verdict, Verdict::NoRecord);
    // A strict sandbox has no record of what it was not told.
    assert_eq!(verifier.verify("赵六", &card("310115199003071239")).await.unwrap().verdict, Verdict::NoRecord);
    assert_eq!(sandbox.person(&card(ZHANG)), Some(SandboxPerson { name: Some("张三".into()), checks: 2 }));
}

#[tokio::test]
async fn a_learning_sandbox_keeps_the_first_name_it_sees() {
    let sandbox = RealNameSandbox::new(KEY_ID, SecretString::from(SECRET));
    let cloudauth = client(start(sandbox.clone()).await, KEY_ID, SECRET);
    assert_eq!(cloudauth.verify("张三", &card(ZHANG)).await.unwrap().verdict, Verdict::Consistent);
    assert_eq!(cloudauth.verify("张三", &card(ZHANG)).await.unwrap().verdict, Verdict::Consistent);
    assert_eq!(cloudauth.verify("张 三", &card(ZHANG)).await.unwrap().verdict, Verdict::Inconsistent);
    assert_eq!(sandbox.person(&card(ZHANG)).unwrap().checks, 3);
    // Registering overrides what was learned.
    sandbox.register(&card(ZHANG), Some("张叁"));
    assert_eq!(cloudauth.verify("张三", &card(ZHANG)).await.unwrap().verdict, Verdict::Inconsistent);
    assert_eq!(cloudauth.verify("张叁", &card(ZHANG)).await.unwrap().verdict, Verdict::Consistent);
}

#[tokio::test]
async fn wrong_secret_or_key_is_refused_and_checks_nothing() {
    let sandbox = RealNameSandbox::new(KEY_ID, SecretString::from(SECRET));
    let endpoint = start(sandbox.clone()).await;
    let err = client(endpoint.clone(), KEY_ID, "not-the-secret").verify("张三", &card(ZHANG)).await.unwrap_err();
    match &err {
        RealNameError::Provider { code, message } => {
            assert_eq!(code, "SignatureDoesNotMatch");
            assert!(message.contains("server string to sign is:POST&%2F&"), "{message}");
        }
        other => panic!("expected SignatureDoesNotMatch, got {other:?}"),
    }
    assert!(!err.is_invalid_input());
    let err = client(endpoint, "LTAI-other", SECRET).verify("张三", &card(ZHANG)).await.unwrap_err();
    assert!(
        matches!(err, RealNameError::Provider { ref code, .. } if code == "InvalidAccessKeyId.NotFound"),
        "{err:?}"
    );
    assert_eq!(sandbox.person(&card(ZHANG)), None, "a refused request is not a check");
}

#[tokio::test]
async fn replayed_nonce_and_tampered_body_are_refused() {
    let sandbox = RealNameSandbox::new(KEY_ID, SecretString::from(SECRET));
    let cloudauth = client(start(sandbox.clone()).await, KEY_ID, SECRET);
    let body = cloudauth.signed_body("张三", ZHANG, "fixed-nonce", &now());
    let (status, answer) = post_form(cloudauth.endpoint(), body.clone()).await;
    assert_eq!((status, answer["Code"].as_str()), (200, Some("200")), "{answer}");
    assert_eq!(answer["ResultObject"]["BizCode"], "1");
    let (status, answer) = post_form(cloudauth.endpoint(), body).await;
    assert_eq!((status, answer["Code"].as_str()), (400, Some("SignatureNonceUsed")), "{answer}");

    // Another name under a signature made for the first: the signature no longer fits.
    let body = cloudauth.signed_body("张三", ZHANG, "n-tamper", &now());
    let tampered = body.replace("UserName=%E5%BC%A0%E4%B8%89", "UserName=%E6%9D%8E%E5%9B%9B");
    assert_ne!(tampered, body);
    let (status, answer) = post_form(cloudauth.endpoint(), tampered).await;
    assert_eq!((status, answer["Code"].as_str()), (400, Some("SignatureDoesNotMatch")), "{answer}");
    assert_eq!(answer["HostId"], "cloudauth.aliyuncs.com");

    // Signed for POST, sent as GET: the method is part of what is signed.
    let body = cloudauth.signed_body("张三", ZHANG, "n-get", &now());
    let mut url = cloudauth.endpoint().clone();
    url.set_query(Some(&body));
    let resp = reqwest::get(url).await.unwrap();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["Code"], "SignatureDoesNotMatch", "{answer}");
    assert_eq!(sandbox.person(&card(ZHANG)).unwrap().checks, 1);
}

#[tokio::test]
async fn malformed_parameters_are_cloudauth_401() {
    let sandbox = RealNameSandbox::new(KEY_ID, SecretString::from(SECRET));
    let cloudauth = client(start(sandbox).await, KEY_ID, SECRET);
    let err = cloudauth.verify("张三\u{7}", &card(ZHANG)).await.unwrap_err();
    assert!(
        matches!(err, RealNameError::Provider { ref code, ref message } if code == "401" && message.contains("userName")),
        "{err:?}"
    );
    assert!(err.is_invalid_input());
    let err = cloudauth.verify("", &card(ZHANG)).await.unwrap_err();
    assert!(matches!(err, RealNameError::Provider { ref code, .. } if code == "400"), "{err:?}");
    assert!(!err.is_invalid_input());
}

#[tokio::test]
async fn nested_mount_and_unreachable_provider() {
    let sandbox = RealNameSandbox::new(KEY_ID, SecretString::from(SECRET));
    let addr = serve(Router::new().nest("/sandbox/aliyun-cloudauth", sandbox_router(sandbox))).await;
    let cloudauth = client(format!("http://{addr}/sandbox/aliyun-cloudauth"), KEY_ID, SECRET);
    assert_eq!(cloudauth.verify("张三", &card(ZHANG)).await.unwrap().verdict, Verdict::Consistent);

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = client(format!("http://{closed}"), KEY_ID, SECRET).verify("张三", &card(ZHANG)).await.unwrap_err();
    assert!(matches!(err, RealNameError::Transport(_)), "{err:?}");
}

#[test]
fn bad_config_is_refused_and_debug_hides_the_secret() {
    let config = |endpoint: &str| CloudauthConfig {
        access_key_id: "id".into(),
        access_key_secret: SecretString::from("top-secret"),
        endpoint: endpoint.into(),
    };
    assert!(matches!(AliyunCloudauth::new(config("not a url")), Err(RealNameError::Config(_))));
    assert!(matches!(AliyunCloudauth::new(config("ftp://x")), Err(RealNameError::Config(_))));
    let c = AliyunCloudauth::new(config(DEFAULT_ENDPOINT)).unwrap();
    assert_eq!(c.endpoint().host_str(), Some("cloudauth.aliyuncs.com"));
    assert!(!format!("{c:?}").contains("top-secret"));
    let body = c.signed_body("张三", ZHANG, "n", "2026-01-01T00:00:00Z");
    let params = crate::aliyun::gate::parse_params(&[&body]).unwrap();
    assert_eq!(params["Action"], "Id2MetaVerify");
    assert_eq!(params["Version"], "2019-03-07");
    assert_eq!(params["ParamType"], "normal");
    assert_eq!(params["IdentifyNum"], ZHANG);
    assert_eq!(params["UserName"], "张三");
    assert!(crate::aliyun::sign::verify("POST", &params, "top-secret", &params["Signature"]));
}
