//! End-to-end WeChat login tests: the real `WechatClient` against the sandbox on a real port.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::*;

const APPID: &str = "wx0123456789abcdef";
const SECRET: &str = "sandbox-app-secret";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(base_url: &str, appid: &str, secret: &str) -> WechatClient {
    WechatClient::new(WechatConfig {
        appid: appid.into(),
        secret: SecretString::from(secret),
        base_url: base_url.into(),
    })
    .unwrap()
}

async fn start() -> (WechatSandbox, String) {
    let sandbox = WechatSandbox::new(APPID, SecretString::from(SECRET));
    let base = serve(sandbox_router(sandbox.clone())).await;
    (sandbox, base)
}

/// What a developer does from the mini-program side: ask the sandbox for a login code.
async fn wx_login(base: &str, user: &str) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/sandbox/login-code"))
        .json(&json!({ "user": user }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["code"].as_str().unwrap().to_string()
}

fn api_errcode(err: WechatError) -> i64 {
    match err {
        WechatError::Api { errcode, errmsg } => {
            assert!(errmsg.contains("rid: "), "{errmsg}");
            errcode
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn minted_code_works_exactly_once() {
    let (sandbox, base) = start().await;
    let wechat: Arc<dyn WechatLogin> = Arc::new(client(&base, APPID, SECRET));
    let code = wx_login(&base, "alice").await;

    let session = wechat.code2session(&code).await.unwrap();
    assert_eq!(session.openid, sandbox.openid_for("alice"));
    assert!(session.openid.starts_with('o') && session.openid.len() == 28, "{}", session.openid);
    assert_eq!(session.unionid.as_deref(), Some(sandbox.unionid_for("alice").as_str()));
    let key = base64::engine::general_purpose::STANDARD.decode(session.session_key.expose_secret()).unwrap();
    assert_eq!(key.len(), 16);
    assert!(!format!("{session:?}").contains(session.session_key.expose_secret()));

    let err = wechat.code2session(&code).await.unwrap_err();
    assert!(err.is_bad_code());
    assert_eq!(api_errcode(err), errcode::CODE_BEEN_USED);
}

#[tokio::test]
async fn same_user_same_openid_new_session_key() {
    let (sandbox, base) = start().await;
    let wechat = client(&base, APPID, SECRET);
    let first = wechat.code2session(&sandbox.mint_code("alice")).await.unwrap();
    let second = wechat.code2session(&wx_login(&base, "alice").await).await.unwrap();
    let bob = wechat.code2session(&sandbox.mint_code("bob")).await.unwrap();
    assert_eq!(first.openid, second.openid);
    assert_ne!(first.session_key.expose_secret(), second.session_key.expose_secret());
    assert_ne!(first.openid, bob.openid);
    // Another mini-program sees another openid for the same person, but the same unionid.
    let other_app = WechatSandbox::new("wxother", SecretString::from(SECRET));
    assert_ne!(other_app.openid_for("alice"), first.openid);
    assert_eq!(other_app.unionid_for("alice"), first.unionid.unwrap());
}

#[tokio::test]
async fn unknown_code_is_invalid() {
    let (_sandbox, base) = start().await;
    let err = client(&base, APPID, SECRET).code2session("0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P").await.unwrap_err();
    assert_eq!(api_errcode(err), errcode::INVALID_CODE);
}

#[tokio::test]
async fn wrong_credentials_are_refused_without_consuming_the_code() {
    let (sandbox, base) = start().await;
    let code = sandbox.mint_code("alice");
    let err = client(&base, APPID, "wrong-secret").code2session(&code).await.unwrap_err();
    assert_eq!(api_errcode(err), errcode::INVALID_APPSECRET);
    let err = client(&base, "wx_wrong", SECRET).code2session(&code).await.unwrap_err();
    assert_eq!(api_errcode(err), errcode::INVALID_APPID);
    // The genuine app can still use it.
    assert_eq!(client(&base, APPID, SECRET).code2session(&code).await.unwrap().openid, sandbox.openid_for("alice"));
}

#[tokio::test]
async fn codes_expire() {
    let sandbox = WechatSandbox::with_code_ttl(APPID, SecretString::from(SECRET), Duration::from_millis(50));
    let base = serve(sandbox_router(sandbox.clone())).await;
    let code = sandbox.mint_code("alice");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let err = client(&base, APPID, SECRET).code2session(&code).await.unwrap_err();
    assert_eq!(api_errcode(err), errcode::INVALID_CODE);
}

#[tokio::test]
async fn works_nested_under_a_prefix_and_rejects_blank_users() {
    let sandbox = WechatSandbox::new(APPID, SecretString::from(SECRET));
    let root = serve(Router::new().nest("/sandbox/wechat", sandbox_router(sandbox.clone()))).await;
    let base = format!("{root}/sandbox/wechat/");
    let code = wx_login(base.trim_end_matches('/'), "carol").await;
    assert_eq!(client(&base, APPID, SECRET).code2session(&code).await.unwrap().openid, sandbox.openid_for("carol"));

    let resp = reqwest::Client::new()
        .post(format!("{root}/sandbox/wechat/sandbox/login-code"))
        .json(&json!({"user": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn transport_errors_never_show_the_secret() {
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let wechat = client(&format!("http://{addr}"), APPID, SECRET);
    assert!(!format!("{wechat:?}").contains(SECRET));
    let err = wechat.code2session("abc").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(SECRET), "{err:?}");
}

#[test]
fn bad_base_url_is_a_config_error() {
    let cfg = WechatConfig { appid: APPID.into(), secret: SecretString::from(SECRET), base_url: "::nope".into() };
    assert!(matches!(WechatClient::new(cfg), Err(WechatError::Config(_))));
}
