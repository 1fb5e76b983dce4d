//! `SmsSandbox`: a local stand-in for Aliyun's Dysmsapi RPC endpoint. It verifies what a real
//! client sends (signature, access key, timestamp window, nonce reuse, phone numbers, template
//! and parameters), answers in Aliyun's JSON shape and keeps a bounded outbox that developers
//! read instead of a phone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hospital_domain::Phone;
use rand::Rng;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{json, Value};

use super::LOGIN_CODE_TEMPLATE;
use crate::aliyun::gate::{self, Refusal, RpcGate};

const OUTBOX_CAPACITY: usize = 1000;
const API_VERSION: &str = "2017-05-25";
const MAX_PHONE_NUMBERS: usize = 1000;

/// One message as the patient's phone would have shown it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SandboxSms {
    pub phone: Phone,
    pub template_code: String,
    pub params: Value,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

/// The sandbox's shared state; clones share one outbox.
#[derive(Debug, Clone)]
pub struct SmsSandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gate: RpcGate,
    state: Mutex<SandboxState>,
}

#[derive(Debug, Default)]
struct SandboxState {
    outbox: VecDeque<SandboxSms>,
    /// template code -> body with Aliyun-style `${var}` placeholders.
    templates: HashMap<String, String>,
}

/// Business refusals (`isv.*`) come back from Aliyun with HTTP 200 and a non-OK Code; only
/// gateway-level failures (auth, signature, missing parameter) use 4xx.
fn isv(code: &'static str, message: &str) -> Refusal {
    Refusal::new(StatusCode::OK, code, message)
}

impl SmsSandbox {
    /// A sandbox that accepts requests signed with this AccessKey pair. It knows the
    /// `SMS_LOGIN_CODE` template; add others with `add_template`.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: SecretString) -> Self {
        let mut state = SandboxState::default();
        state.templates.insert(LOGIN_CODE_TEMPLATE.to_string(), "您的验证码为${code},5分钟内有效。".to_string());
        Self {
            inner: Arc::new(Inner {
                gate: RpcGate::new(API_VERSION, access_key_id, access_key_secret),
                state: Mutex::new(state),
            }),
        }
    }

    /// Registers (or replaces) a template body using `${name}` placeholders, as in the Aliyun
    /// console; requests naming unknown templates are refused like unapproved ones.
    pub fn add_template(&self, template_code: impl Into<String>, body: impl Into<String>) {
        self.state().templates.insert(template_code.into(), body.into());
    }

    pub fn access_key_id(&self) -> &str {
        self.inner.gate.access_key_id()
    }

    /// Messages sent to `phone`, oldest first (what `GET /sandbox/sms?phone=` shows).
    pub fn messages_for(&self, phone: &Phone) -> Vec<SandboxSms> {
        self.state().outbox.iter().filter(|m| &m.phone == phone).cloned().collect()
    }

    /// Every message still in the outbox, oldest first.
    pub fn all_messages(&self) -> Vec<SandboxSms> {
        self.state().outbox.iter().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // A panic while holding the lock cannot leave the outbox half-written in a way that
        // matters for a sandbox, so poisoning is ignored rather than cascading.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(state: &mut SandboxState, sms: SandboxSms) {
        if state.outbox.len() >= OUTBOX_CAPACITY {
            state.outbox.pop_front();
        }
        state.outbox.push_back(sms);
    }

    /// Handles one `SendSms` query string at time `now`; returns the BizId on success.
    fn handle(&self, raw_query: &str, now: DateTime<Utc>) -> Result<String, Refusal> {
        let params = gate::parse_params(&[raw_query])?;
        self.inner.gate.authenticate("GET", &params, &["SendSms"], now)?;
        let get = |name: &str| gate::required(&params, name);
        let phones = get("PhoneNumbers")?;
        let sign_name = get("SignName")?;
        let template_code = get("TemplateCode")?;
        let phones: Vec<Phone> = phones
            .split(',')
            .map(Phone::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| isv("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"))?;
        if phones.len() > MAX_PHONE_NUMBERS {
            return Err(isv("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制"));
        }
        if sign_name.trim().is_empty() {
            return Err(isv("isv.SMS_SIGNATURE_ILLEGAL", "签名不合法"));
        }
        let template_params: Value = match params.get("TemplateParam") {
            None => json!({}),
            Some(raw) => serde_json::from_str(raw).map_err(|_| isv("isv.INVALID_JSON_PARAM", "JSON参数不合法"))?,
        };
        // Aliyun only accepts an object of string values.
        let Some(vars) = template_params.as_object().filter(|o| o.values().all(Value::is_string)) else {
            return Err(isv("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值"));
        };

        let mut state = self.state();
        let Some(body) = state.templates.get(template_code) else {
            return Err(isv("isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)"));
        };
        let text = format!("【{sign_name}】{}", render(body, vars)?);
        for phone in phones {
            let sms = SandboxSms {
                phone,
                template_code: template_code.to_string(),
                params: template_params.clone(),
                text: text.clone(),
                sent_at: now,
            };
            tracing::debug!(phone = %sms.phone, text = %sms.text, "sandbox SMS stored");
            Self::push(&mut state, sms);
        }
        Ok(format!("{}^0", rand::thread_rng().gen_range(100_000_000_000_000u64..1_000_000_000_000_000)))
    }
}

/// Fills `${name}` placeholders; a placeholder without a value is Aliyun's
/// `isv.TEMPLATE_MISSING_PARAMETERS`.
fn render(body: &str, vars: &serde_json::Map<String, Value>) -> Result<String, Refusal> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            // An unclosed `${` is literal text, not a placeholder.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let value = vars
            .get(&after[..end])
            .and_then(Value::as_str)
            .ok_or_else(|| isv("isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The Aliyun RPC endpoint: mount at the root (endpoint `http://host:port`) or nest it
/// (endpoint `http://host:port/prefix`).
pub fn sandbox_router(sandbox: SmsSandbox) -> Router {
    Router::new().route("/", get(rpc)).with_state(sandbox)
}

async fn rpc(State(sandbox): State<SmsSandbox>, RawQuery(query): RawQuery) -> Response {
    let request_id = gate::request_id();
    match sandbox.handle(query.as_deref().unwrap_or(""), Utc::now()) {
        Ok(biz_id) => {
            Json(json!({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})).into_response()
        }
        Err(r) => r.into_response(&request_id, "dysmsapi.aliyuncs.com"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_placeholders_and_refuses_missing_ones() {
        let vars = json!({"code": "123456", "name": "张三"});
        let vars = vars.as_object().unwrap();
        assert_eq!(render("${name},验证码${code}。", vars).unwrap(), "张三,验证码123456。");
        assert_eq!(render("${missing}", vars).unwrap_err().code, "isv.TEMPLATE_MISSING_PARAMETERS");
        assert_eq!(render("价格${code}元 ${未闭合", vars).unwrap(), "价格123456元 ${未闭合");
    }

    #[test]
    fn outbox_keeps_only_the_newest_messages() {
        let sandbox = SmsSandbox::new("id", SecretString::from("s"));
        let phone = Phone::parse("13800138000").unwrap();
        let mut state = sandbox.state();
        for i in 0..OUTBOX_CAPACITY + 5 {
            let sms = SandboxSms {
                phone: phone.clone(),
                template_code: format!("T{i}"),
                params: json!({}),
                text: String::new(),
                sent_at: Utc::now(),
            };
            SmsSandbox::push(&mut state, sms);
        }
        assert_eq!(state.outbox.len(), OUTBOX_CAPACITY);
        assert_eq!(state.outbox.front().unwrap().template_code, "T5");
        assert_eq!(state.outbox.back().unwrap().template_code, format!("T{}", OUTBOX_CAPACITY + 4));
    }
}
