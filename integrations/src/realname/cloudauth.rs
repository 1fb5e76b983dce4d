//! `AliyunCloudauth`: the Aliyun ID Verification (cloudauth, API version 2019-03-07)
//! `Id2MetaVerify` client, RPC style with signature version 1.0, and its configuration.
//!
//! The request is a POST with every parameter (`ParamType=normal`, `IdentifyNum`, `UserName` and
//! the common ones) in an `application/x-www-form-urlencoded` body, signed over `POST&%2F&...`;
//! cloudauth accepts GET and POST alike, and POST keeps a name and an ID number out of URLs,
//! which proxies and access logs record. The answer is
//! `{"Code":"200","Message":"success","RequestId":...,"ResultObject":{"BizCode":"1"}}`, any
//! other `Code` a refusal (`400` missing parameter, `401` malformed parameter, `402` data source
//! down, `403` repeated calls, `410`-`412` account problems, `500`).

use std::time::Duration;

use hospital_domain::IdCardNo;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::{RealNameError, RealNameVerifier, Verdict, Verification};
use crate::aliyun::{self, sign};
use crate::BoxFuture;

pub const DEFAULT_ENDPOINT: &str = "https://cloudauth.aliyuncs.com";
const API_VERSION: &str = "2019-03-07";
const ACTION: &str = "Id2MetaVerify";

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

/// What a cloudauth account needs. The secret stays a `SecretString`, so `{:?}` never prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudauthConfig {
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    /// Base URL of the RPC endpoint: Aliyun's by default, the sandbox's in sandbox mode.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

/// The cloudauth client. Cheap to clone (the HTTP pool is shared).
#[derive(Debug, Clone)]
pub struct AliyunCloudauth {
    config: CloudauthConfig,
    endpoint: Url,
    http: reqwest::Client,
}

/// The documented answer. `Code` and `BizCode` are strings in the SDKs' models; some examples
/// in Aliyun's pages show them as numbers, so both are read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    code: Value,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    result_object: Option<ResultObject>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResultObject {
    #[serde(default)]
    biz_code: Value,
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

impl AliyunCloudauth {
    /// A client with its own HTTP pool and short timeouts: adding a 就诊人 waits on it.
    pub fn new(config: CloudauthConfig) -> Result<Self, RealNameError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(8))
            .build()
            .map_err(|e| RealNameError::Config(format!("HTTP client: {e}")))?;
        let endpoint = Url::parse(&config.endpoint)
            .map_err(|e| RealNameError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.query().is_some() {
            return Err(RealNameError::Config(format!(
                "endpoint {:?} must be an http(s) URL without a query",
                config.endpoint
            )));
        }
        if config.access_key_id.trim().is_empty() {
            return Err(RealNameError::Config("access_key_id is empty".into()));
        }
        Ok(Self { config, endpoint, http })
    }

    pub fn config(&self) -> &CloudauthConfig {
        &self.config
    }

    /// The signed form body. Nonce and timestamp are arguments so tests can pin (and replay)
    /// them.
    pub(crate) fn signed_body(&self, name: &str, id_card: &str, nonce: &str, timestamp: &str) -> String {
        let mut params = aliyun::common_params(ACTION, API_VERSION, &self.config.access_key_id, nonce, timestamp);
        for (k, v) in [("ParamType", "normal"), ("IdentifyNum", id_card), ("UserName", name)] {
            params.insert(k.to_string(), v.to_string());
        }
        sign::signed_query("POST", &params, self.config.access_key_secret.expose_secret())
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    async fn check(&self, name: &str, id_card: &IdCardNo) -> Result<Verification, RealNameError> {
        let (nonce, timestamp) = aliyun::nonce_and_timestamp();
        let body = self.signed_body(name, id_card.expose(), &nonce, &timestamp);
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| RealNameError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| RealNameError::Transport(e.without_url()))?;
        // Refusals come as JSON under 4xx as well as 200: the body, not the status, decides.
        let unexpected = || RealNameError::UnexpectedResponse { status, body: text.chars().take(500).collect() };
        let answer: Answer = serde_json::from_str(&text).map_err(|_| unexpected())?;
        let code = as_text(&answer.code);
        if code != "200" {
            // `id_card` prints masked; the name is never logged.
            tracing::warn!(%id_card, %code, message = %answer.message, request_id = %answer.request_id,
                "Aliyun cloudauth refused the check");
            return Err(RealNameError::Provider { code, message: answer.message });
        }
        let biz_code = answer.result_object.as_ref().map(|r| as_text(&r.biz_code)).unwrap_or_default();
        let verdict = Verdict::from_biz_code(&biz_code).ok_or_else(unexpected)?;
        tracing::info!(%id_card, ?verdict, request_id = %answer.request_id, "real-name check answered");
        Ok(Verification { verdict, request_id: answer.request_id })
    }
}

impl RealNameVerifier for AliyunCloudauth {
    fn verify<'a>(
        &'a self,
        name: &'a str,
        id_card: &'a IdCardNo,
    ) -> BoxFuture<'a, Result<Verification, RealNameError>> {
        Box::pin(self.check(name, id_card))
    }
}
