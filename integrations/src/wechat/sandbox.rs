//! `WechatSandbox`: a local stand-in for WeChat's `jscode2session`. It mints login codes the
//! way `wx.login()` would, accepts each once within its lifetime, checks appid and secret, and
//! answers with WeChat's JSON (HTTP 200 even for errors, as WeChat does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use rand::distributions::Alphanumeric;
use rand::{Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::errcode;

/// WeChat login codes are valid for five minutes.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(5 * 60);
const MAX_USER_LEN: usize = 64;

/// The sandbox's shared state; clones share the minted codes.
#[derive(Debug, Clone)]
pub struct WechatSandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    appid: String,
    secret: SecretString,
    code_ttl: Duration,
    codes: Mutex<HashMap<String, Minted>>,
}

#[derive(Debug)]
struct Minted {
    user: String,
    minted_at: Instant,
    used: bool,
}

fn sha256(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

/// WeChat ids are 28 characters starting with `o`; a hash keeps them stable per user.
fn wechat_id(parts: &[&str]) -> String {
    format!("o{}", &BASE64URL.encode(sha256(parts))[..27])
}

impl WechatSandbox {
    /// A sandbox for the mini-program `appid`, accepting only `secret`.
    pub fn new(appid: impl Into<String>, secret: SecretString) -> Self {
        Self::with_code_ttl(appid, secret, DEFAULT_CODE_TTL)
    }

    /// As `new`, with a code lifetime other than WeChat's five minutes (tests use this).
    pub fn with_code_ttl(appid: impl Into<String>, secret: SecretString, code_ttl: Duration) -> Self {
        Self { inner: Arc::new(Inner { appid: appid.into(), secret, code_ttl, codes: Mutex::default() }) }
    }

    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// Plays the mini-program's `wx.login()` for `user`: a fresh one-time code.
    pub fn mint_code(&self, user: &str) -> String {
        let code: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
        let mut codes = self.codes();
        Self::prune(&mut codes, self.inner.code_ttl);
        codes.insert(code.clone(), Minted { user: user.to_string(), minted_at: Instant::now(), used: false });
        code
    }

    /// The openid `user` gets in this mini-program: the same user always lands in the same
    /// account, and the same user in another appid gets another openid, as on WeChat.
    pub fn openid_for(&self, user: &str) -> String {
        wechat_id(&[&self.inner.appid, user])
    }

    /// The unionid is per user across all apps of one Open Platform account, so no appid.
    pub fn unionid_for(&self, user: &str) -> String {
        wechat_id(&["unionid:", user])
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<String, Minted>> {
        // Poisoning cannot leave the map inconsistent in a way that matters here.
        self.inner.codes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets expired codes; an expired or forgotten code then reads as unknown (40029).
    fn prune(codes: &mut HashMap<String, Minted>, ttl: Duration) {
        codes.retain(|_, m| m.minted_at.elapsed() <= ttl);
    }

    /// The `jscode2session` logic: success body or `(errcode, errmsg)`.
    fn exchange(&self, q: &HashMap<String, String>) -> Result<Value, (i64, &'static str)> {
        let param = |name: &str| q.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let appid = param("appid").ok_or((errcode::MISSING_APPID, "appid missing"))?;
        if appid != self.inner.appid {
            return Err((errcode::INVALID_APPID, "invalid appid"));
        }
        let secret = param("secret").ok_or((errcode::MISSING_SECRET, "appsecret missing"))?;
        // Compare digests so the comparison time says nothing about the secret's prefix.
        if sha256(&[secret]) != sha256(&[self.inner.secret.expose_secret()]) {
            return Err((errcode::INVALID_APPSECRET, "invalid appsecret"));
        }
        if param("grant_type") != Some("authorization_code") {
            return Err((errcode::INVALID_GRANT_TYPE, "invalid grant_type"));
        }
        let code = param("js_code").ok_or((errcode::MISSING_CODE, "missing code"))?;

        let mut codes = self.codes();
        Self::prune(&mut codes, self.inner.code_ttl);
        let minted = codes.get_mut(code).ok_or((errcode::INVALID_CODE, "invalid code"))?;
        if minted.used {
            return Err((errcode::CODE_BEEN_USED, "code been used"));
        }
        minted.used = true;
        let user = minted.user.clone();
        drop(codes);

        // A new session_key per login, as WeChat rotates it on every wx.login().
        let mut key = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        Ok(json!({
            "session_key": BASE64.encode(key),
            "openid": self.openid_for(&user),
            "unionid": self.unionid_for(&user),
        }))
    }
}

/// `GET /sns/jscode2session` (the WeChat API) and `POST /sandbox/login-code` (the developer's
/// `wx.login()`), to mount at the root or under a prefix given to the client as `base_url`.
pub fn sandbox_router(sandbox: WechatSandbox) -> Router {
    Router::new()
        .route("/sns/jscode2session", get(jscode2session))
        .route("/sandbox/login-code", post(login_code))
        .with_state(sandbox)
}

async fn jscode2session(State(sandbox): State<WechatSandbox>, Query(q): Query<HashMap<String, String>>) -> Response {
    match sandbox.exchange(&q) {
        Ok(body) => Json(body).into_response(),
        Err((errcode, errmsg)) => {
            tracing::info!(errcode, errmsg, "sandbox jscode2session refused");
            // WeChat appends a request id to every error message.
            let rid =
                format!("{:08x}-{:08x}-{:08x}", rand::random::<u32>(), rand::random::<u32>(), rand::random::<u32>());
            Json(json!({"errcode": errcode, "errmsg": format!("{errmsg}, rid: {rid}")})).into_response()
        }
    }
}

#[derive(Deserialize)]
struct LoginCodeRequest {
    user: String,
}

async fn login_code(State(sandbox): State<WechatSandbox>, Json(req): Json<LoginCodeRequest>) -> Response {
    let user = req.user.trim();
    if user.is_empty() || user.chars().count() > MAX_USER_LEN {
        let error = format!("user must be 1 to {MAX_USER_LEN} characters");
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    }
    Json(json!({ "code": sandbox.mint_code(user) })).into_response()
}
