//! `WechatClient`: calls the real `GET /sns/jscode2session` API of api.weixin.qq.com.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{WechatError, WechatLogin, WechatSession};
use crate::BoxFuture;

pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

/// The mini-program's credentials from the WeChat console (开发管理 → 开发设置).
#[derive(Debug, Clone, Deserialize)]
pub struct WechatConfig {
    pub appid: String,
    pub secret: SecretString,
    /// `https://api.weixin.qq.com` by default; the sandbox's base URL in sandbox mode.
    #[serde(default = "default_base_url")]
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct WechatClient {
    appid: String,
    secret: SecretString,
    endpoint: Url,
    http: reqwest::Client,
}

/// Success and failure share one body: `errcode` absent (or 0) on success.
#[derive(Debug, Deserialize)]
struct Code2SessionResponse {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    openid: Option<String>,
    session_key: Option<String>,
    unionid: Option<String>,
}

impl WechatClient {
    pub fn new(config: WechatConfig) -> Result<Self, WechatError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| WechatError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    pub fn with_http_client(config: WechatConfig, http: reqwest::Client) -> Result<Self, WechatError> {
        if config.appid.trim().is_empty() {
            return Err(WechatError::Config("appid is empty".into()));
        }
        // Joined as text so a sandbox mounted under a prefix keeps its prefix.
        let joined = format!("{}/sns/jscode2session", config.base_url.trim_end_matches('/'));
        let endpoint =
            Url::parse(&joined).map_err(|e| WechatError::Config(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(WechatError::Config(format!("base_url {:?} must be http(s)", config.base_url)));
        }
        Ok(Self { appid: config.appid, secret: config.secret, endpoint, http })
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    async fn exchange(&self, js_code: &str) -> Result<WechatSession, WechatError> {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose_secret())
            .append_pair("js_code", js_code)
            .append_pair("grant_type", "authorization_code");
        // The URL holds the app secret: strip it from any error before it can be logged.
        let response = self.http.get(url).send().await.map_err(|e| WechatError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| WechatError::Transport(e.without_url()))?;
        // WeChat labels this JSON `text/plain`, so parse the text rather than trust headers.
        let unexpected = || WechatError::UnexpectedResponse { status, body: body.chars().take(300).collect() };
        let parsed: Code2SessionResponse = serde_json::from_str(&body).map_err(|_| unexpected())?;
        if parsed.errcode != 0 {
            tracing::warn!(errcode = parsed.errcode, errmsg = %parsed.errmsg, "WeChat code2session refused");
            return Err(WechatError::Api { errcode: parsed.errcode, errmsg: parsed.errmsg });
        }
        match (parsed.openid, parsed.session_key) {
            (Some(openid), Some(session_key)) if !openid.is_empty() && !session_key.is_empty() => {
                tracing::debug!(%openid, "WeChat code2session ok");
                Ok(WechatSession {
                    openid,
                    unionid: parsed.unionid.filter(|u| !u.is_empty()),
                    session_key: SecretString::from(session_key),
                })
            }
            _ => Err(unexpected()),
        }
    }
}

impl WechatLogin for WechatClient {
    fn code2session<'a>(&'a self, js_code: &'a str) -> BoxFuture<'a, Result<WechatSession, WechatError>> {
        Box::pin(self.exchange(js_code))
    }
}
