//! Sending SMS: the `SmsSender` trait the rest of the platform depends on, its errors and
//! receipt, the Aliyun Dysmsapi client, and a local sandbox speaking the same protocol.

mod aliyun;
#[cfg(feature = "sandbox")]
mod sandbox;

pub use aliyun::{AliyunSms, AliyunSmsConfig, DEFAULT_ENDPOINT};
#[cfg(feature = "sandbox")]
pub use sandbox::{sandbox_router, SandboxSms, SmsSandbox};

/// Template code of the login code SMS, rendered as `【签名】您的验证码为${code},5分钟内有效。`.
pub const LOGIN_CODE_TEMPLATE: &str = "SMS_LOGIN_CODE";

use hospital_domain::Phone;

use crate::BoxFuture;

/// What the provider hands back for an accepted message; `biz_id` is the key for delivery
/// reports, `request_id` the one Aliyun support asks for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SmsReceipt {
    pub biz_id: String,
    pub request_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider answered and refused, e.g. `isv.MOBILE_NUMBER_ILLEGAL`,
    /// `isv.BUSINESS_LIMIT_CONTROL` (rate limit) or `SignatureDoesNotMatch`.
    #[error("SMS provider refused the message: {code}: {message}")]
    Provider { code: String, message: String },
    /// The request never got a provider answer (DNS, TLS, timeout, connection reset).
    #[error("SMS provider unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The provider answered something that is not its documented JSON shape.
    #[error("unexpected SMS provider response (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
    #[error("invalid SMS configuration: {0}")]
    Config(String),
    #[error("invalid SMS template parameters: {0}")]
    Params(String),
}

impl SmsError {
    /// Aliyun's flow control (`isv.BUSINESS_LIMIT_CONTROL`) and network failures are worth
    /// retrying later; a bad number or a bad signature never is.
    pub fn is_retryable(&self) -> bool {
        match self {
            SmsError::Transport(_) => true,
            SmsError::Provider { code, .. } => code == "isv.BUSINESS_LIMIT_CONTROL" || code == "ServiceUnavailable",
            _ => false,
        }
    }
}

/// A way to text a patient. Object safe so the server can hold `Arc<dyn SmsSender>` and swap
/// the real provider for the sandbox by configuration.
pub trait SmsSender: Send + Sync {
    /// Sends a login/verification code with the sender's configured code template.
    fn send_code<'a>(&'a self, phone: &'a Phone, code: &'a str) -> BoxFuture<'a, Result<SmsReceipt, SmsError>>;

    /// Sends any approved template; `params` must be a JSON object whose keys are the
    /// template's `${variables}`.
    fn send_template<'a>(
        &'a self,
        phone: &'a Phone,
        template_code: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<SmsReceipt, SmsError>>;
}

#[cfg(test)]
mod tests;
