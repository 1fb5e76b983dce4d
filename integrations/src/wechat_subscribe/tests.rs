//! End-to-end subscribe-message tests: the real `SubscribeClient` against the sandbox on a real
//! port.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use secrecy::SecretString;
use serde_json::Value;

use super::sandbox::check_value;
use super::*;

const APPID: &str = "wx0123456789abcdef";
const SECRET: &str = "sandbox-app-secret";
const TEMPLATE: &str = "tmpl-visit-reminder";
const OPENID: &str = "oAbCdEfGhIjKlMnOpQrStUvWxYz0";

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(base_url: &str, secret: &str) -> SubscribeClient {
    SubscribeClient::new(SubscribeConfig {
        appid: APPID.into(),
        secret: SecretString::from(secret),
        base_url: base_url.into(),
    })
    .unwrap()
}

async fn start(ttl: Duration) -> (SubscribeSandbox, String) {
    let sandbox = SubscribeSandbox::with_token_ttl(APPID, SecretString::from(SECRET), ttl);
    sandbox.add_template(TEMPLATE, &["thing1", "time2", "thing3"]);
    let base = serve(sandbox_router(sandbox.clone())).await;
    (sandbox, base)
}

fn reminder(openid: &str) -> SubscribeMessage {
    SubscribeMessage::new(openid, TEMPLATE)
        .page("pages/appointment/detail?id=1")
        .value("thing1", "张三")
        .value("time2", "2026-03-05 08:30")
        .value("thing3", "请提前15分钟到院签到")
}

fn errcode_of(e: SubscribeError) -> i64 {
    match e {
        SubscribeError::Api { errcode, errmsg } => {
            assert!(errmsg.contains("rid: "), "{errmsg}");
            errcode
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn sends_and_caches_the_token() {
    let (sandbox, base) = start(DEFAULT_TOKEN_TTL).await;
    let wx: Arc<dyn SubscribeMessenger> = Arc::new(client(&base, SECRET));
    wx.send(&reminder(OPENID)).await.unwrap();
    wx.send(&reminder(OPENID)).await.unwrap();
    assert_eq!(sandbox.tokens_issued(), 1, "the token is cached");
    let got = sandbox.messages_for(OPENID);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data["thing1"], "张三");
    assert_eq!(got[0].data["time2"], "2026-03-05 08:30");
    assert_eq!(got[0].page.as_deref(), Some("pages/appointment/detail?id=1"));
    assert_eq!(got[0].miniprogram_state, "formal");
    assert_eq!(got[0].lang, "zh_CN");

    // The outbox over HTTP.
    let list: Value = reqwest::get(format!("{base}/outbox?openid={OPENID}")).await.unwrap().json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["template_id"], TEMPLATE);
}

#[tokio::test]
async fn a_voided_or_lapsed_token_is_refreshed() {
    let (sandbox, base) = start(DEFAULT_TOKEN_TTL).await;
    let wx = client(&base, SECRET);
    wx.send(&reminder(OPENID)).await.unwrap();
    sandbox.expire_tokens();
    wx.send(&reminder(OPENID)).await.unwrap();
    assert_eq!(sandbox.tokens_issued(), 2, "42001 made the client fetch a new token");
    assert_eq!(sandbox.messages_for(OPENID).len(), 2);

    // A token whose short life runs out is refreshed before use (margin = half its life).
    let (sandbox, base) = start(Duration::from_secs(1)).await;
    let wx = client(&base, SECRET);
    wx.send(&reminder(OPENID)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    wx.send(&reminder(OPENID)).await.unwrap();
    assert_eq!(sandbox.tokens_issued(), 2);
}

#[tokio::test]
async fn errcodes_are_mapped() {
    let (sandbox, base) = start(DEFAULT_TOKEN_TTL).await;
    let wx = client(&base, SECRET);

    let e = wx.send(&reminder("not-an-openid")).await.unwrap_err();
    assert!(e.is_bad_openid() && !e.is_retryable(), "{e:?}");
    assert_eq!(errcode_of(e), errcode::INVALID_OPENID);

    sandbox.refuse(OPENID, TEMPLATE);
    let e = wx.send(&reminder(OPENID)).await.unwrap_err();
    assert!(e.is_refused() && !e.is_retryable(), "{e:?}");
    sandbox.accept(OPENID, TEMPLATE);

    let long = reminder(OPENID).value("thing1", "一二三四五六七八九十一二三四五六七八九十一");
    let e = wx.send(&long).await.unwrap_err();
    assert!(e.is_bad_data() && !e.is_retryable(), "{e:?}");
    let bad_time = reminder(OPENID).value("time2", "tomorrow morning");
    assert!(wx.send(&bad_time).await.unwrap_err().is_bad_data());
    let missing = SubscribeMessage::new(OPENID, TEMPLATE).value("thing1", "张三");
    assert!(wx.send(&missing).await.unwrap_err().is_bad_data());

    let e = wx.send(&SubscribeMessage::new(OPENID, "nope").value("thing1", "x")).await.unwrap_err();
    assert_eq!(errcode_of(e), errcode::INVALID_TEMPLATE_ID);

    sandbox.set_busy(true);
    let e = wx.send(&reminder(OPENID)).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    sandbox.set_busy(false);
    wx.send(&reminder(OPENID)).await.unwrap();
    assert_eq!(sandbox.messages_for(OPENID).len(), 1, "only the accepted message reached the user");
}

#[tokio::test]
async fn wrong_secret_and_closed_port() {
    let (_sandbox, base) = start(DEFAULT_TOKEN_TTL).await;
    let e = client(&base, "wrong").send(&reminder(OPENID)).await.unwrap_err();
    assert_eq!(errcode_of(e), errcode::INVALID_APPSECRET);

    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let wx = client(&format!("http://{addr}"), SECRET);
    assert!(!format!("{wx:?}").contains(SECRET));
    let e = wx.send(&reminder(OPENID)).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(!format!("{e} {e:?}").contains(SECRET));
}

#[tokio::test]
async fn works_nested_under_a_prefix() {
    let sandbox = SubscribeSandbox::new(APPID, SecretString::from(SECRET));
    sandbox.add_template(TEMPLATE, &["thing1", "time2", "thing3"]);
    let root = serve(Router::new().nest("/sandbox/wechat-subscribe", sandbox_router(sandbox.clone()))).await;
    client(&format!("{root}/sandbox/wechat-subscribe/"), SECRET).send(&reminder(OPENID)).await.unwrap();
    assert_eq!(sandbox.messages_for(OPENID).len(), 1);
}

#[test]
fn value_rules() {
    assert!(check_value("thing1", "二十个字以内的内容").is_ok());
    assert!(check_value("thing1", &"字".repeat(21)).is_err());
    assert!(check_value("thing1", "").is_err());
    for ok in ["15:01", "2026-03-05 08:30", "2026年3月5日 08:30", "2026-03-05 08:30:00"] {
        assert!(check_value("time2", ok).is_ok(), "{ok}");
    }
    for bad in ["25:00", "8点", "2026/03/05 08:30"] {
        assert!(check_value("time2", bad).is_err(), "{bad}");
    }
    assert!(check_value("date3", "2026-03-05").is_ok());
    assert!(check_value("number4", "12.5").is_ok() && check_value("number4", "12a").is_err());
    assert!(check_value("phrase5", "已预约").is_ok() && check_value("phrase5", "预约成功了吗啊").is_err());
    assert!(check_value("character_string6", "GH260305ABCD").is_ok());
    assert!(check_value("character_string6", "挂号").is_err());
    assert!(check_value("name7", "张三").is_ok());
}

#[test]
fn bad_base_url_is_a_config_error() {
    let cfg = SubscribeConfig { appid: APPID.into(), secret: SecretString::from(SECRET), base_url: "::nope".into() };
    assert!(matches!(SubscribeClient::new(cfg), Err(SubscribeError::Config(_))));
}
