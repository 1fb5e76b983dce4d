//! WeChat mini-program login: the `WechatLogin` trait (`code2session`), its session and errors,
//! the real API client and a local sandbox that mints and checks `wx.login()` codes.

mod client;
#[cfg(feature = "sandbox")]
mod sandbox;
#[cfg(test)]
mod tests;

pub use client::{WechatClient, WechatConfig, DEFAULT_BASE_URL};
#[cfg(feature = "sandbox")]
pub use sandbox::{sandbox_router, WechatSandbox, DEFAULT_CODE_TTL};

use secrecy::SecretString;

use crate::BoxFuture;

/// WeChat's documented `errcode` values for `jscode2session` that callers act on.
pub mod errcode {
    /// System busy: retry shortly.
    pub const BUSY: i64 = -1;
    pub const INVALID_APPSECRET_OR_TOKEN: i64 = 40001;
    pub const INVALID_GRANT_TYPE: i64 = 40002;
    pub const INVALID_APPID: i64 = 40013;
    /// The code is unknown or expired (codes live 5 minutes).
    pub const INVALID_CODE: i64 = 40029;
    pub const INVALID_APPSECRET: i64 = 40125;
    /// The code was already exchanged once.
    pub const CODE_BEEN_USED: i64 = 40163;
    pub const MISSING_APPID: i64 = 41002;
    pub const MISSING_SECRET: i64 = 41004;
    pub const MISSING_CODE: i64 = 41008;
    /// Too many calls (100 per minute per user).
    pub const RATE_LIMITED: i64 = 45011;
}

/// The result of a successful login. `session_key` decrypts the user's encrypted data (phone
/// number) and must never reach a log or a client, hence `SecretString`.
#[derive(Debug, Clone)]
pub struct WechatSession {
    pub openid: String,
    /// Present only when the mini-program is bound to a WeChat Open Platform account.
    pub unionid: Option<String>,
    pub session_key: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum WechatError {
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

impl WechatError {
    /// The user's code is bad (unknown, expired or already used): ask the mini-program to call
    /// `wx.login()` again rather than retrying the same code.
    pub fn is_bad_code(&self) -> bool {
        matches!(self, WechatError::Api { errcode: errcode::INVALID_CODE | errcode::CODE_BEEN_USED, .. })
    }

    /// Busy, rate limited or a network failure: the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            WechatError::Transport(_) | WechatError::Api { errcode: errcode::BUSY | errcode::RATE_LIMITED, .. }
        )
    }
}

/// Exchanges a mini-program `wx.login()` code for the user's identity. Object safe so the
/// server can hold `Arc<dyn WechatLogin>`.
pub trait WechatLogin: Send + Sync {
    fn code2session<'a>(&'a self, js_code: &'a str) -> BoxFuture<'a, Result<WechatSession, WechatError>>;
}
