//! `SmsSandbox`: a local stand-in for Aliyun's Dysmsapi RPC endpoint. It verifies what a real
//! client sends (signature, access key, timestamp window, nonce reuse, phone numbers, template
//! and parameters), answers in Aliyun's JSON shape and keeps a bounded outbox that developers
//! read instead of a phone.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use hospital_domain::Phone;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Value};

use super::sign;

/// Template code of the login code SMS, rendered as `【签名】您的验证码为${code},5分钟内有效。`.
pub const LOGIN_CODE_TEMPLATE: &str = "SMS_LOGIN_CODE";
const OUTBOX_CAPACITY: usize = 1000;
/// Aliyun accepts a Timestamp at most 15 minutes away from its own clock.
const MAX_CLOCK_SKEW_MINUTES: i64 = 15;
/// A nonce must be remembered as long as a request carrying it could still pass the timestamp
/// check: its timestamp may be 15 minutes ahead of first use and accepted until 15 after.
const NONCE_MEMORY_MINUTES: i64 = 2 * MAX_CLOCK_SKEW_MINUTES;
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
    access_key_id: String,
    access_key_secret: SecretString,
    state: Mutex<SandboxState>,
}

#[derive(Debug, Default)]
struct SandboxState {
    outbox: VecDeque<SandboxSms>,
    /// nonce -> when it was first seen.
    nonces: HashMap<String, DateTime<Utc>>,
    /// template code -> body with Aliyun-style `${var}` placeholders.
    templates: HashMap<String, String>,
}

/// Why a request was refused, in Aliyun's vocabulary.
#[derive(Debug, PartialEq)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// Business refusals (`isv.*`) come back from Aliyun with HTTP 200 and a non-OK Code; only
/// gateway-level failures (auth, signature, missing parameter) use 4xx.
fn isv(code: &'static str, message: &str) -> Refusal {
    refuse(StatusCode::OK, code, message)
}

impl SmsSandbox {
    /// A sandbox that accepts requests signed with this AccessKey pair. It knows the
    /// `SMS_LOGIN_CODE` template; add others with `add_template`.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: SecretString) -> Self {
        let mut state = SandboxState::default();
        state.templates.insert(LOGIN_CODE_TEMPLATE.to_string(), "您的验证码为${code},5分钟内有效。".to_string());
        Self {
            inner: Arc::new(Inner { access_key_id: access_key_id.into(), access_key_secret, state: Mutex::new(state) }),
        }
    }

    /// Registers (or replaces) a template body using `${name}` placeholders, as in the Aliyun
    /// console; requests naming unknown templates are refused like unapproved ones.
    pub fn add_template(&self, template_code: impl Into<String>, body: impl Into<String>) {
        self.state().templates.insert(template_code.into(), body.into());
    }

    pub fn access_key_id(&self) -> &str {
        &self.inner.access_key_id
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
        let mut params = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
            if params.insert(k.to_string(), v.to_string()).is_some() {
                return Err(refuse(StatusCode::BAD_REQUEST, "InvalidParameter", format!("Parameter {k} is repeated.")));
            }
        }
        let get = |name: &'static str| -> Result<&str, Refusal> {
            params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| Refusal {
                status: StatusCode::BAD_REQUEST,
                code: missing_code(name),
                message: format!("{name} is mandatory for this action."),
            })
        };
        let action = get("Action")?;
        if action != "SendSms" {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        if get("Version")? != "2017-05-25" {
            return Err(refuse(StatusCode::BAD_REQUEST, "InvalidVersion", "Specified parameter Version is not valid."));
        }
        if get("AccessKeyId")? != self.inner.access_key_id {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            ));
        }
        if get("SignatureMethod")? != "HMAC-SHA1" {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "InvalidSignatureMethod",
                "Specified signature method is not supported.",
            ));
        }
        if get("SignatureVersion")? != "1.0" {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "InvalidSignatureVersion",
                "Specified signature version is not supported.",
            ));
        }
        let signature = get("Signature")?;
        let nonce = get("SignatureNonce")?;
        let timestamp = get("Timestamp")?;
        if !sign::verify(&params, self.inner.access_key_secret.expose_secret(), signature) {
            // Like Aliyun, echo the server's string-to-sign: it is how a developer debugs an
            // encoding mismatch, and it contains no secret.
            let sts = sign::string_to_sign("GET", &sign::canonicalized_query(&params));
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
            ));
        }
        let sent =
            NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%SZ").map(|t| t.and_utc()).map_err(|_| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidTimeStamp.Format",
                    "Specified time stamp or date value is not well formatted.",
                )
            })?;
        if (now - sent).num_seconds().abs() > MAX_CLOCK_SKEW_MINUTES * 60 {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Expired",
                "Specified time stamp or date value is expired.",
            ));
        }
        // The nonce is consumed once the request is authentic, whatever the business outcome,
        // and only then: a forged request must not be able to burn someone else's nonce.
        {
            let mut state = self.state();
            state.nonces.retain(|_, seen| (now - *seen).num_minutes() < NONCE_MEMORY_MINUTES);
            if state.nonces.contains_key(nonce) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "SignatureNonceUsed",
                    "Specified signature nonce was used already.",
                ));
            }
            state.nonces.insert(nonce.to_string(), now);
        }

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

/// Aliyun names missing-parameter errors `Missing<Name>`.
fn missing_code(name: &'static str) -> &'static str {
    match name {
        "Action" => "MissingAction",
        "Version" => "MissingVersion",
        "AccessKeyId" => "MissingAccessKeyId",
        "SignatureMethod" => "MissingSignatureMethod",
        "SignatureVersion" => "MissingSignatureVersion",
        "Signature" => "MissingSignature",
        "SignatureNonce" => "MissingSignatureNonce",
        "Timestamp" => "MissingTimestamp",
        "PhoneNumbers" => "MissingPhoneNumbers",
        "SignName" => "MissingSignName",
        "TemplateCode" => "MissingTemplateCode",
        _ => "MissingParameter",
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
    let request_id = uuid::Uuid::new_v4().to_string().to_uppercase();
    match sandbox.handle(query.as_deref().unwrap_or(""), Utc::now()) {
        Ok(biz_id) => {
            Json(json!({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})).into_response()
        }
        Err(r) => {
            tracing::info!(code = r.code, message = %r.message, "sandbox SMS refused");
            let body = json!({"Code": r.code, "Message": r.message, "RequestId": request_id, "HostId": "dysmsapi.aliyuncs.com"});
            (r.status, Json(body)).into_response()
        }
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
