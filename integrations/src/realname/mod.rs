//! Real-name verification (身份二要素核验): does this name belong to this resident ID number,
//! according to the authoritative source? The `RealNameVerifier` trait the platform depends on,
//! its verdicts and errors, the Aliyun cloudauth `Id2MetaVerify` client, and a local sandbox
//! speaking the same protocol.

mod cloudauth;
#[cfg(feature = "sandbox")]
mod sandbox;
#[cfg(test)]
mod tests;

pub use cloudauth::{AliyunCloudauth, CloudauthConfig, DEFAULT_ENDPOINT};
#[cfg(feature = "sandbox")]
pub use sandbox::{sandbox_router, RealNameSandbox, SandboxPerson};

use hospital_domain::IdCardNo;

use crate::BoxFuture;

/// The provider's answer about one name and ID number (cloudauth's `BizCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// `1`: the name is the name of this ID number's holder.
    Consistent,
    /// `2`: the ID number exists but belongs to someone of another name.
    Inconsistent,
    /// `3`: the authoritative source has no record of this ID number.
    NoRecord,
}

impl Verdict {
    /// Cloudauth's `BizCode` for this verdict.
    pub fn biz_code(self) -> &'static str {
        match self {
            Verdict::Consistent => "1",
            Verdict::Inconsistent => "2",
            Verdict::NoRecord => "3",
        }
    }

    pub fn from_biz_code(code: &str) -> Option<Self> {
        match code {
            "1" => Some(Verdict::Consistent),
            "2" => Some(Verdict::Inconsistent),
            "3" => Some(Verdict::NoRecord),
            _ => None,
        }
    }
}

/// One answered check: the verdict and the provider's request id (what its support asks for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub verdict: Verdict,
    pub request_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RealNameError {
    /// The provider answered and refused: a bad signature or key, an account in arrears, flow
    /// control, its data source down (`402`), or input it calls malformed (`401`).
    #[error("real-name provider refused the check: {code}: {message}")]
    Provider { code: String, message: String },
    /// The request never got an answer (DNS, TLS, timeout, connection refused).
    #[error("real-name provider unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The provider answered something that is not its documented JSON shape.
    #[error("unexpected real-name provider response (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
    #[error("invalid real-name provider configuration: {0}")]
    Config(String),
}

impl RealNameError {
    /// Cloudauth's `401 参数非法`: the name or number is malformed in the provider's eyes, so
    /// the person must correct their input; every other failure is the provider's side.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, RealNameError::Provider { code, .. } if code == "401")
    }
}

/// Checks a name against a resident ID number. Object safe, so the server holds
/// `Arc<dyn RealNameVerifier>` and swaps the real provider for the sandbox by configuration.
pub trait RealNameVerifier: Send + Sync {
    fn verify<'a>(&'a self, name: &'a str, id_card: &'a IdCardNo)
        -> BoxFuture<'a, Result<Verification, RealNameError>>;
}
