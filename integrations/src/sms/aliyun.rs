//! `AliyunSms`: the Aliyun Dysmsapi `SendSms` client (RPC style, signature version 1.0) and
//! its configuration.

use std::time::Duration;

use hospital_domain::Phone;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{SmsError, SmsReceipt, SmsSender};
use crate::aliyun::{self, sign};
use crate::BoxFuture;

pub const DEFAULT_ENDPOINT: &str = "https://dysmsapi.aliyuncs.com";
const API_VERSION: &str = "2017-05-25";
const REGION_ID: &str = "cn-hangzhou";

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

/// What an Aliyun SMS account needs. Deserialisable so it can sit in the server's config file;
/// the secret stays a `SecretString` so `{:?}` of the config never prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct AliyunSmsConfig {
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    /// The approved signature shown in 【】 at the start of every message, e.g. `示例医院`.
    pub sign_name: String,
    /// Template used by `send_code`; it must take one `${code}` variable.
    pub code_template: String,
    /// Base URL of the RPC endpoint: Aliyun's by default, the sandbox's in sandbox mode.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

/// The Aliyun SMS client. Cheap to clone (the HTTP pool is shared).
#[derive(Debug, Clone)]
pub struct AliyunSms {
    config: AliyunSmsConfig,
    endpoint: Url,
    http: reqwest::Client,
}

/// The documented response shape of every Dysmsapi call, success or failure.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendSmsResponse {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    biz_id: Option<String>,
    #[serde(default)]
    request_id: String,
}

impl AliyunSms {
    /// A client with its own HTTP pool and conservative timeouts: a login must not hang on a
    /// slow provider.
    pub fn new(config: AliyunSmsConfig) -> Result<Self, SmsError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SmsError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    /// A client sharing an existing `reqwest::Client`.
    pub fn with_http_client(config: AliyunSmsConfig, http: reqwest::Client) -> Result<Self, SmsError> {
        let endpoint = Url::parse(&config.endpoint)
            .map_err(|e| SmsError::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.query().is_some() {
            return Err(SmsError::Config(format!(
                "endpoint {:?} must be an http(s) URL without a query",
                config.endpoint
            )));
        }
        for (name, value) in [("access_key_id", &config.access_key_id), ("sign_name", &config.sign_name)] {
            if value.trim().is_empty() {
                return Err(SmsError::Config(format!("{name} is empty")));
            }
        }
        Ok(Self { config, endpoint, http })
    }

    pub fn config(&self) -> &AliyunSmsConfig {
        &self.config
    }

    /// The complete signed GET URL. Nonce and timestamp are arguments so tests can pin them
    /// (and replay them on purpose).
    pub(crate) fn signed_url(
        &self,
        phone_numbers: &str,
        template_code: &str,
        template_param: &str,
        nonce: &str,
        timestamp: &str,
    ) -> Url {
        let mut params = aliyun::common_params("SendSms", API_VERSION, &self.config.access_key_id, nonce, timestamp);
        for (k, v) in [
            ("PhoneNumbers", phone_numbers),
            ("RegionId", REGION_ID),
            ("SignName", self.config.sign_name.as_str()),
            ("TemplateCode", template_code),
            ("TemplateParam", template_param),
        ] {
            params.insert(k.to_string(), v.to_string());
        }
        let query = sign::signed_query("GET", &params, self.config.access_key_secret.expose_secret());
        // `Url` normalises the bare host to path `/`, which is what Aliyun expects, and keeps a
        // sandbox mount path (e.g. `/sandbox/aliyun-sms`) as it is. The query only holds
        // unreserved characters and %XX escapes, so `set_query` leaves it byte for byte.
        let mut url = self.endpoint.clone();
        url.set_query(Some(&query));
        url
    }

    async fn send(
        &self,
        phone: &Phone,
        template_code: &str,
        params: serde_json::Value,
    ) -> Result<SmsReceipt, SmsError> {
        if !params.is_object() {
            return Err(SmsError::Params(format!("template parameters must be a JSON object, got {params}")));
        }
        let (nonce, timestamp) = aliyun::nonce_and_timestamp();
        let url = self.signed_url(phone.as_str(), template_code, &params.to_string(), &nonce, &timestamp);

        // `without_url`: the URL carries the AccessKeyId and the phone number in full.
        let response = self.http.get(url).send().await.map_err(|e| SmsError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| SmsError::Transport(e.without_url()))?;
        // Aliyun answers refusals with a JSON body under 4xx as well as 200, so the body, not
        // the status, decides.
        let parsed: SendSmsResponse = serde_json::from_str(&body)
            .map_err(|_| SmsError::UnexpectedResponse { status, body: body.chars().take(500).collect() })?;
        if parsed.code != "OK" {
            tracing::warn!(%phone, template_code, code = %parsed.code, message = %parsed.message,
                request_id = %parsed.request_id, "Aliyun SMS refused");
            return Err(SmsError::Provider { code: parsed.code, message: parsed.message });
        }
        let biz_id = parsed.biz_id.unwrap_or_default();
        tracing::info!(%phone, template_code, %biz_id, request_id = %parsed.request_id, "SMS sent via Aliyun");
        Ok(SmsReceipt { biz_id, request_id: parsed.request_id })
    }
}

impl SmsSender for AliyunSms {
    fn send_code<'a>(&'a self, phone: &'a Phone, code: &'a str) -> BoxFuture<'a, Result<SmsReceipt, SmsError>> {
        Box::pin(self.send(phone, &self.config.code_template, serde_json::json!({ "code": code })))
    }

    fn send_template<'a>(
        &'a self,
        phone: &'a Phone,
        template_code: &'a str,
        params: serde_json::Value,
    ) -> BoxFuture<'a, Result<SmsReceipt, SmsError>> {
        Box::pin(self.send(phone, template_code, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(endpoint: &str) -> AliyunSmsConfig {
        AliyunSmsConfig {
            access_key_id: "testId".into(),
            access_key_secret: SecretString::from("testSecret"),
            sign_name: "阿里云短信测试专用".into(),
            code_template: "SMS_71390007".into(),
            endpoint: endpoint.into(),
        }
    }

    #[test]
    fn signed_url_carries_signature_and_every_parameter() {
        let sms = AliyunSms::new(config(DEFAULT_ENDPOINT)).unwrap();
        let url =
            sms.signed_url("15300000001", "SMS_71390007", r#"{"customer":"test"}"#, "n-1", "2017-07-12T02:42:19Z");
        assert_eq!(url.path(), "/");
        assert_eq!(url.host_str(), Some("dysmsapi.aliyuncs.com"));
        let q = url.query().unwrap();
        assert!(q.starts_with("Signature="), "{q}");
        let pairs: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs["Format"], "JSON");
        assert_eq!(pairs["TemplateParam"], r#"{"customer":"test"}"#);
        assert_eq!(pairs["Timestamp"], "2017-07-12T02:42:19Z");
        assert!(sign::verify("GET", &pairs, "testSecret", &pairs["Signature"]));
    }

    #[test]
    fn mount_path_is_kept() {
        let sms = AliyunSms::new(config("http://127.0.0.1:9/sandbox/aliyun-sms")).unwrap();
        let url = sms.signed_url("15300000001", "T", "{}", "n", "t");
        assert_eq!(url.path(), "/sandbox/aliyun-sms");
    }

    #[test]
    fn rejects_bad_config_and_debug_hides_secret() {
        assert!(matches!(AliyunSms::new(config("not a url")), Err(SmsError::Config(_))));
        assert!(matches!(AliyunSms::new(config("ftp://x")), Err(SmsError::Config(_))));
        let debug = format!("{:?}", config(DEFAULT_ENDPOINT));
        assert!(!debug.contains("testSecret"), "{debug}");
    }
}
