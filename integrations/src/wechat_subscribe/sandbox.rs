//! `SubscribeSandbox`: a local stand-in for WeChat's `cgi-bin/token` and
//! `cgi-bin/message/subscribe/send`. It checks appid and secret, issues access tokens with a
//! lifetime and checks them (unknown: 40001, lapsed: 42001), knows its templates and their keys,
//! validates every value by its key's type as WeChat does (`thing` at most 20 characters, `time`
//! a 24-hour time, ...: 47003), refuses users who did not subscribe (43101) and openids that are
//! not openids (40003), and keeps an outbox developers read instead of a phone. Like WeChat it
//! answers HTTP 200 with an `errcode` for every refusal.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::errcode;

/// WeChat access tokens live two hours.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(7200);
const OUTBOX_CAPACITY: usize = 1000;

/// One message as the user's WeChat would have shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxSubscribeMessage {
    pub msgid: u64,
    pub openid: String,
    pub template_id: String,
    pub page: Option<String>,
    pub miniprogram_state: String,
    pub lang: String,
    /// key -> value, in key order.
    pub data: std::collections::BTreeMap<String, String>,
    pub sent_at: DateTime<Utc>,
}

/// The sandbox's shared state; clones share the tokens, templates and outbox.
#[derive(Debug, Clone)]
pub struct SubscribeSandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    appid: String,
    secret: SecretString,
    token_ttl: Duration,
    state: Mutex<SandboxState>,
}

#[derive(Debug, Default)]
struct SandboxState {
    /// token -> when it lapses.
    tokens: HashMap<String, Instant>,
    /// template id -> its keys (`thing1`, `time2`, ...).
    templates: HashMap<String, Vec<String>>,
    /// (openid, template id) pairs the user refused.
    refused: HashSet<(String, String)>,
    /// While set, every send answers -1 (system busy), as WeChat does under trouble.
    busy: bool,
    next_msgid: u64,
    outbox: VecDeque<SandboxSubscribeMessage>,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl SubscribeSandbox {
    pub fn new(appid: impl Into<String>, secret: SecretString) -> Self {
        Self::with_token_ttl(appid, secret, DEFAULT_TOKEN_TTL)
    }

    /// As `new`, with a token lifetime other than WeChat's two hours (tests use this).
    pub fn with_token_ttl(appid: impl Into<String>, secret: SecretString, token_ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                appid: appid.into(),
                secret,
                token_ttl,
                state: Mutex::new(SandboxState { next_msgid: 1, ..Default::default() }),
            }),
        }
    }

    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// Registers (or replaces) a template and its keys, as chosen in the WeChat console.
    pub fn add_template(&self, template_id: impl Into<String>, keys: &[&str]) {
        self.state().templates.insert(template_id.into(), keys.iter().map(|k| k.to_string()).collect());
    }

    /// The user `openid` refuses (or stops accepting) messages of `template_id`: 43101.
    pub fn refuse(&self, openid: &str, template_id: &str) {
        self.state().refused.insert((openid.to_string(), template_id.to_string()));
    }

    /// The user accepts `template_id` again.
    pub fn accept(&self, openid: &str, template_id: &str) {
        self.state().refused.remove(&(openid.to_string(), template_id.to_string()));
    }

    /// While `busy`, every send is answered with -1 (system busy).
    pub fn set_busy(&self, busy: bool) {
        self.state().busy = busy;
    }

    /// Voids every token issued so far, as if they had lapsed: the next send gets 42001.
    pub fn expire_tokens(&self) {
        let past = Instant::now();
        for t in self.state().tokens.values_mut() {
            *t = past;
        }
    }

    /// How many tokens were issued (tests check the client caches them).
    pub fn tokens_issued(&self) -> usize {
        self.state().tokens.len()
    }

    /// Messages sent to `openid`, oldest first (what `GET .../outbox?openid=` shows).
    pub fn messages_for(&self, openid: &str) -> Vec<SandboxSubscribeMessage> {
        self.state().outbox.iter().filter(|m| m.openid == openid).cloned().collect()
    }

    /// Every message still in the outbox, oldest first.
    pub fn all_messages(&self) -> Vec<SandboxSubscribeMessage> {
        self.state().outbox.iter().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // Poisoning cannot leave the state inconsistent in a way that matters for a sandbox.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn issue_token(&self, q: &HashMap<String, String>) -> Result<Value, (i64, String)> {
        let param = |name: &str| q.get(name).map(String::as_str).filter(|v| !v.is_empty());
        if param("grant_type") != Some("client_credential") {
            return Err((errcode::INVALID_GRANT_TYPE, "invalid grant_type".into()));
        }
        let appid = param("appid").ok_or((errcode::MISSING_APPID, "appid missing".to_string()))?;
        if appid != self.inner.appid {
            return Err((errcode::INVALID_APPID, "invalid appid".into()));
        }
        let secret = param("secret").ok_or((errcode::MISSING_SECRET, "appsecret missing".to_string()))?;
        // Compare digests so the comparison time says nothing about the secret's prefix.
        if sha256(secret) != sha256(self.inner.secret.expose_secret()) {
            return Err((errcode::INVALID_APPSECRET, "invalid appsecret".into()));
        }
        let token: String = rand::thread_rng().sample_iter(&Alphanumeric).take(64).map(char::from).collect();
        self.state().tokens.insert(token.clone(), Instant::now() + self.inner.token_ttl);
        Ok(json!({ "access_token": token, "expires_in": self.inner.token_ttl.as_secs() }))
    }

    fn send(&self, token: Option<&str>, body: &[u8]) -> Result<u64, (i64, String)> {
        let mut state = self.state();
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or((errcode::MISSING_ACCESS_TOKEN, "access_token missing".to_string()))?;
        match state.tokens.get(token) {
            None => {
                return Err((
                    errcode::INVALID_CREDENTIAL,
                    "invalid credential, access_token is invalid or not latest".into(),
                ))
            }
            Some(until) if *until <= Instant::now() => {
                return Err((errcode::ACCESS_TOKEN_EXPIRED, "access_token expired".into()))
            }
            Some(_) => {}
        }
        if state.busy {
            return Err((errcode::BUSY, "system error".into()));
        }
        let req: SendRequest =
            serde_json::from_slice(body).map_err(|e| (errcode::ARGUMENT_INVALID, format!("data format error: {e}")))?;
        if !is_openid(&req.touser) {
            return Err((errcode::INVALID_OPENID, "invalid openid".into()));
        }
        let keys = state
            .templates
            .get(&req.template_id)
            .cloned()
            .ok_or((errcode::INVALID_TEMPLATE_ID, "invalid template id".to_string()))?;
        let miniprogram_state = req.miniprogram_state.unwrap_or_else(|| "formal".into());
        if !matches!(miniprogram_state.as_str(), "developer" | "trial" | "formal") {
            return Err((errcode::BAD_TEMPLATE_DATA, "argument invalid! miniprogram_state".into()));
        }
        let lang = req.lang.unwrap_or_else(|| "zh_CN".into());
        if !matches!(lang.as_str(), "zh_CN" | "en_US" | "zh_HK" | "zh_TW") {
            return Err((errcode::BAD_TEMPLATE_DATA, "argument invalid! lang".into()));
        }
        let mut data = std::collections::BTreeMap::new();
        for key in &keys {
            let value = req.data.get(key).map(|v| v.value.as_str()).unwrap_or("");
            if let Err(why) = check_value(key, value) {
                return Err((errcode::BAD_TEMPLATE_DATA, format!("argument invalid! data.{key}.value {why}")));
            }
            data.insert(key.clone(), value.to_string());
        }
        if state.refused.contains(&(req.touser.clone(), req.template_id.clone())) {
            return Err((errcode::USER_REFUSED, "user refuse to accept the msg".into()));
        }
        let msgid = state.next_msgid;
        state.next_msgid += 1;
        if state.outbox.len() >= OUTBOX_CAPACITY {
            state.outbox.pop_front();
        }
        state.outbox.push_back(SandboxSubscribeMessage {
            msgid,
            openid: req.touser,
            template_id: req.template_id,
            page: req.page,
            miniprogram_state,
            lang,
            data,
            sent_at: Utc::now(),
        });
        Ok(msgid)
    }
}

#[derive(Deserialize)]
struct DataValue {
    value: String,
}

#[derive(Deserialize)]
struct SendRequest {
    touser: String,
    template_id: String,
    page: Option<String>,
    miniprogram_state: Option<String>,
    lang: Option<String>,
    data: HashMap<String, DataValue>,
}

/// An openid as WeChat issues them: 28 characters of base64url.
fn is_openid(s: &str) -> bool {
    s.len() == 28 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3400}'..='\u{4dbf}').contains(&c)
}

fn parse_time(v: &str) -> bool {
    const DATETIME: &[&str] = &["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y年%m月%d日 %H:%M", "%Y年%m月%d日 %H:%M:%S"];
    NaiveTime::parse_from_str(v, "%H:%M").is_ok()
        || DATETIME.iter().any(|f| NaiveDateTime::parse_from_str(v, f).is_ok())
}

fn parse_date(v: &str) -> bool {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
        || NaiveDate::parse_from_str(v, "%Y年%m月%d日").is_ok()
        || parse_time(v)
}

/// WeChat's rules for a template value, by the type its key names (`thing1` is a `thing`).
pub(crate) fn check_value(key: &str, value: &str) -> Result<(), &'static str> {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let n = value.chars().count();
    if n == 0 {
        return Err("is empty");
    }
    let ok = match kind {
        "thing" => n <= 20,
        "number" => {
            n <= 32
                && value.chars().filter(|c| *c == '.').count() <= 1
                && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        }
        "letter" => n <= 32 && value.chars().all(|c| c.is_ascii_alphabetic()),
        "symbol" => n <= 5,
        "character_string" => n <= 32 && value.is_ascii(),
        "time" => parse_time(value),
        "date" => parse_date(value),
        "amount" => {
            let digits = value.trim_start_matches(|c: char| !c.is_ascii_digit());
            digits.len() <= 10 + 3 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        }
        "phone_number" => n <= 17 && value.chars().all(|c| c.is_ascii_digit() || "+- ".contains(c)),
        "car_number" => n <= 8,
        "name" => {
            if value.chars().all(is_cjk) {
                n <= 10
            } else {
                n <= 20
            }
        }
        "phrase" => n <= 5 && value.chars().all(is_cjk),
        _ => n <= 20,
    };
    if ok {
        Ok(())
    } else {
        Err(match kind {
            "thing" => "is longer than 20 characters",
            "time" | "date" => "is not a valid time",
            _ => "does not fit the key's type",
        })
    }
}

/// `GET /cgi-bin/token` and `POST /cgi-bin/message/subscribe/send` (the WeChat API), and
/// `GET /outbox?openid=` (what the user received), to mount at the root or under a prefix given
/// to the client as `base_url`.
pub fn sandbox_router(sandbox: SubscribeSandbox) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route("/cgi-bin/message/subscribe/send", post(send))
        .route("/outbox", get(outbox))
        .with_state(sandbox)
}

fn wechat_error(errcode: i64, errmsg: &str) -> Response {
    // WeChat appends a request id to every error message.
    let rid = format!("{:08x}-{:08x}-{:08x}", rand::random::<u32>(), rand::random::<u32>(), rand::random::<u32>());
    Json(json!({"errcode": errcode, "errmsg": format!("{errmsg} rid: {rid}")})).into_response()
}

async fn token(State(sandbox): State<SubscribeSandbox>, Query(q): Query<HashMap<String, String>>) -> Response {
    match sandbox.issue_token(&q) {
        Ok(body) => Json(body).into_response(),
        Err((code, msg)) => {
            tracing::info!(errcode = code, errmsg = %msg, "sandbox cgi-bin/token refused");
            wechat_error(code, &msg)
        }
    }
}

async fn send(
    State(sandbox): State<SubscribeSandbox>,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    match sandbox.send(q.get("access_token").map(String::as_str), &body) {
        Ok(msgid) => Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid})).into_response(),
        Err((code, msg)) => {
            tracing::info!(errcode = code, errmsg = %msg, "sandbox subscribe/send refused");
            wechat_error(code, &msg)
        }
    }
}

#[derive(Deserialize)]
struct OutboxQuery {
    openid: String,
}

async fn outbox(State(sandbox): State<SubscribeSandbox>, Query(q): Query<OutboxQuery>) -> Response {
    Json(sandbox.messages_for(&q.openid)).into_response()
}
