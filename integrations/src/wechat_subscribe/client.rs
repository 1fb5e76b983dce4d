//! `SubscribeClient`: the real `cgi-bin/token` and `cgi-bin/message/subscribe/send` APIs of
//! api.weixin.qq.com. The access token is cached until shortly before `expires_in` runs out and
//! fetched again at once when WeChat says it is invalid or expired (40001, 40014, 42001): another
//! server fetching a token for the same app, or a clock drift, can void it early.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;
use url::Url;

use super::{errcode, SubscribeError, SubscribeMessage, SubscribeMessenger};
use crate::BoxFuture;

pub const DEFAULT_BASE_URL: &str = "https://api.weixin.qq.com";

/// A token is refreshed this long before WeChat says it expires (or at half its life, if
/// shorter), so a request never goes out with a token about to lapse.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

/// The mini-program's credentials (the same appid and secret as login).
#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeConfig {
    pub appid: String,
    pub secret: SecretString,
    /// `https://api.weixin.qq.com` by default; the sandbox's base URL in sandbox mode.
    #[serde(default = "default_base_url")]
    pub base_url: String,
}

#[derive(Debug)]
struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

#[derive(Debug)]
pub struct SubscribeClient {
    appid: String,
    secret: SecretString,
    base: String,
    http: reqwest::Client,
    /// One refresh at a time: concurrent senders wait for it instead of each fetching a token
    /// (every fetch voids the previous token after a grace period).
    token: Mutex<Option<CachedToken>>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct SendResponse {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl SubscribeClient {
    pub fn new(config: SubscribeConfig) -> Result<Self, SubscribeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SubscribeError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    pub fn with_http_client(config: SubscribeConfig, http: reqwest::Client) -> Result<Self, SubscribeError> {
        if config.appid.trim().is_empty() {
            return Err(SubscribeError::Config("appid is empty".into()));
        }
        // Joined as text so a sandbox mounted under a prefix keeps its prefix.
        let base = config.base_url.trim_end_matches('/').to_string();
        let probe = Url::parse(&format!("{base}/cgi-bin/token"))
            .map_err(|e| SubscribeError::Config(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(probe.scheme(), "http" | "https") {
            return Err(SubscribeError::Config(format!("base_url {:?} must be http(s)", config.base_url)));
        }
        Ok(Self { appid: config.appid, secret: config.secret, base, http, token: Mutex::new(None) })
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Forgets the cached token, so the next send fetches a new one.
    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    /// The cached token, or a fresh one.
    async fn access_token(&self) -> Result<SecretString, SubscribeError> {
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.token.clone());
        }
        let mut url = Url::parse(&format!("{}/cgi-bin/token", self.base)).expect("checked in new");
        url.query_pairs_mut()
            .append_pair("grant_type", "client_credential")
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose_secret());
        // The URL holds the app secret: strip it from any error before it can be logged.
        let response = self.http.get(url).send().await.map_err(|e| SubscribeError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| SubscribeError::Transport(e.without_url()))?;
        let unexpected = || SubscribeError::UnexpectedResponse { status, body: body.chars().take(300).collect() };
        let parsed: TokenResponse = serde_json::from_str(&body).map_err(|_| unexpected())?;
        if parsed.errcode != 0 {
            tracing::warn!(errcode = parsed.errcode, errmsg = %parsed.errmsg, "WeChat cgi-bin/token refused");
            return Err(SubscribeError::Api { errcode: parsed.errcode, errmsg: parsed.errmsg });
        }
        let (Some(token), Some(expires_in)) = (parsed.access_token.filter(|t| !t.is_empty()), parsed.expires_in) else {
            return Err(unexpected());
        };
        let life = Duration::from_secs(expires_in);
        let margin = REFRESH_MARGIN.min(life / 2);
        let token = SecretString::from(token);
        *cached = Some(CachedToken { token: token.clone(), refresh_at: Instant::now() + life - margin });
        tracing::debug!(expires_in, "WeChat access token fetched");
        Ok(token)
    }

    fn body(message: &SubscribeMessage) -> Value {
        let data: Map<String, Value> = message.data.iter().map(|(k, v)| (k.clone(), json!({ "value": v }))).collect();
        let mut body = json!({
            "touser": message.touser,
            "template_id": message.template_id,
            "miniprogram_state": message.miniprogram_state,
            "lang": message.lang,
            "data": data,
        });
        if let Some(page) = &message.page {
            body["page"] = json!(page);
        }
        body
    }

    async fn send_once(&self, token: &SecretString, message: &SubscribeMessage) -> Result<(), SubscribeError> {
        let mut url = Url::parse(&format!("{}/cgi-bin/message/subscribe/send", self.base)).expect("checked in new");
        url.query_pairs_mut().append_pair("access_token", token.expose_secret());
        let response = self
            .http
            .post(url)
            .json(&Self::body(message))
            .send()
            .await
            .map_err(|e| SubscribeError::Transport(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| SubscribeError::Transport(e.without_url()))?;
        let parsed: SendResponse = serde_json::from_str(&body)
            .map_err(|_| SubscribeError::UnexpectedResponse { status, body: body.chars().take(300).collect() })?;
        if parsed.errcode != 0 {
            return Err(SubscribeError::Api { errcode: parsed.errcode, errmsg: parsed.errmsg });
        }
        Ok(())
    }

    async fn send_message(&self, message: &SubscribeMessage) -> Result<(), SubscribeError> {
        let token = self.access_token().await?;
        match self.send_once(&token, message).await {
            Err(SubscribeError::Api {
                errcode: errcode::INVALID_CREDENTIAL | errcode::INVALID_ACCESS_TOKEN | errcode::ACCESS_TOKEN_EXPIRED,
                ..
            }) => {
                // Voided early (another fetch, a reset in the console): fetch a new one, once.
                tracing::info!("WeChat access token rejected; fetching a new one");
                {
                    let mut cached = self.token.lock().await;
                    // Someone else may have refreshed it meanwhile; drop only the one that failed.
                    if cached.as_ref().is_some_and(|t| t.token.expose_secret() == token.expose_secret()) {
                        *cached = None;
                    }
                }
                let token = self.access_token().await?;
                self.send_once(&token, message).await
            }
            other => other,
        }
        .inspect_err(|e| tracing::warn!(error = %e, template = %message.template_id, "WeChat subscribe send failed"))
    }
}

impl SubscribeMessenger for SubscribeClient {
    fn send<'a>(&'a self, message: &'a SubscribeMessage) -> BoxFuture<'a, Result<(), SubscribeError>> {
        Box::pin(self.send_message(message))
    }
}
