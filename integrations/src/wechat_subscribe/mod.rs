//! WeChat mini-program subscribe messages (订阅消息): the `SubscribeMessenger` trait, the client of
//! the real API (`cgi-bin/token` for the access token, `cgi-bin/message/subscribe/send` to send)
//! and a local sandbox speaking the same protocol, which checks credentials and tokens, knows its
//! templates and their keys, validates values as WeChat does and keeps an outbox.

mod client;
#[cfg(feature = "sandbox")]
mod sandbox;
#[cfg(test)]
mod tests;

pub use client::{SubscribeClient, SubscribeConfig, DEFAULT_BASE_URL};
#[cfg(feature = "sandbox")]
pub use sandbox::{sandbox_router, SandboxSubscribeMessage, SubscribeSandbox, DEFAULT_TOKEN_TTL};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::BoxFuture;

/// WeChat's documented `errcode` values for the token and send APIs that callers act on.
pub mod errcode {
    /// System busy: retry shortly.
    pub const BUSY: i64 = -1;
    /// The access token (or the app secret, on `cgi-bin/token`) is invalid.
    pub const INVALID_CREDENTIAL: i64 = 40001;
    pub const INVALID_GRANT_TYPE: i64 = 40002;
    /// The openid is not a user of this mini-program.
    pub const INVALID_OPENID: i64 = 40003;
    pub const INVALID_APPID: i64 = 40013;
    /// The access token is malformed.
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    pub const INVALID_TEMPLATE_ID: i64 = 40037;
    pub const INVALID_APPSECRET: i64 = 40125;
    pub const MISSING_ACCESS_TOKEN: i64 = 41001;
    pub const MISSING_APPID: i64 = 41002;
    pub const MISSING_SECRET: i64 = 41004;
    /// The access token expired (they live `expires_in`, 7200 s).
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    /// The user has not accepted (or has used up) the subscription to this template.
    pub const USER_REFUSED: i64 = 43101;
    /// Too many calls.
    pub const RATE_LIMITED: i64 = 45009;
    /// The request body is not valid JSON or misses a field.
    pub const ARGUMENT_INVALID: i64 = 47001;
    /// A template value breaks the key's rules (`argument invalid! data.thing1.value ...`).
    pub const BAD_TEMPLATE_DATA: i64 = 47003;
}

/// Which version of the mini-program a tap on the message opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MiniprogramState {
    Developer,
    Trial,
    #[default]
    Formal,
}

/// One subscribe message. `data` maps the template's keys (`thing1`, `time2`, ...) to their
/// values; it is sent as `{"thing1": {"value": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    /// The mini-program page a tap opens, with its query (`pages/appointment/detail?id=...`).
    pub page: Option<String>,
    pub miniprogram_state: MiniprogramState,
    /// `zh_CN` by default.
    pub lang: String,
    pub data: BTreeMap<String, String>,
}

impl SubscribeMessage {
    pub fn new(touser: impl Into<String>, template_id: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            template_id: template_id.into(),
            page: None,
            miniprogram_state: MiniprogramState::Formal,
            lang: "zh_CN".into(),
            data: BTreeMap::new(),
        }
    }

    pub fn page(mut self, page: impl Into<String>) -> Self {
        self.page = Some(page.into());
        self
    }

    pub fn value(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.data.insert(key.into(), value.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// WeChat answered with a non-zero `errcode` (see [`errcode`]).
    #[error("WeChat API error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    #[error("WeChat API unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("unexpected WeChat response (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
    #[error("invalid WeChat configuration: {0}")]
    Config(String),
}

impl SubscribeError {
    fn errcode(&self) -> Option<i64> {
        match self {
            SubscribeError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// 43101: the user did not accept (or has used up) the subscription. Sending again will not
    /// help until they subscribe again.
    pub fn is_refused(&self) -> bool {
        self.errcode() == Some(errcode::USER_REFUSED)
    }

    /// 40003: the openid is not a user of this mini-program.
    pub fn is_bad_openid(&self) -> bool {
        self.errcode() == Some(errcode::INVALID_OPENID)
    }

    /// 47003 (or 47001): the template data is wrong; a bug on our side, never fixed by retrying.
    pub fn is_bad_data(&self) -> bool {
        matches!(self.errcode(), Some(errcode::BAD_TEMPLATE_DATA | errcode::ARGUMENT_INVALID))
    }

    /// Busy, rate limited, a token problem that survived a refresh, or the network: the same
    /// message may go through later.
    pub fn is_retryable(&self) -> bool {
        match self {
            SubscribeError::Transport(_) | SubscribeError::UnexpectedResponse { .. } => true,
            SubscribeError::Api { errcode: e, .. } => matches!(
                *e,
                errcode::BUSY | errcode::RATE_LIMITED | errcode::INVALID_CREDENTIAL | errcode::ACCESS_TOKEN_EXPIRED
            ),
            SubscribeError::Config(_) => false,
        }
    }
}

/// Sends subscribe messages. Object safe so the platform holds `Arc<dyn SubscribeMessenger>`
/// and swaps the real API for the sandbox by configuration.
pub trait SubscribeMessenger: Send + Sync {
    fn send<'a>(&'a self, message: &'a SubscribeMessage) -> BoxFuture<'a, Result<(), SubscribeError>>;
}
