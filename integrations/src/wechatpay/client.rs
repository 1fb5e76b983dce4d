//! `WechatPayClient`: calls the real WeChat Pay API v3 (api.mch.weixin.qq.com), signing every
//! request with the merchant key and refusing every answer not signed by a known platform key.

use std::fmt;
use std::time::Duration;

use chrono::{FixedOffset, SecondsFormat, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::sign::{self, Authorization, PlatformKeys, WechatpaySignature, RESOURCE_ALGORITHM};
use super::{
    bill, JsapiOrder, Notification, PrepayResult, Refund, RefundNotice, RefundRequest, Transaction, WechatBill,
    WechatPay, WechatPayError,
};
use crate::BoxFuture;

pub const DEFAULT_BASE_URL: &str = "https://api.mch.weixin.qq.com";

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_string()
}

/// Path segments are escaped beyond what the URL parser would do (`|`, `*` and `@` are legal in
/// order numbers), so the path we sign is byte for byte the path that goes on the wire.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// WeChat Pay rejects requests without a User-Agent.
const USER_AGENT: &str = concat!("hospital-integrations/", env!("CARGO_PKG_VERSION"), " (WechatPay APIv3)");

/// The merchant's credentials from the WeChat Pay merchant platform (账户中心 → API安全).
#[derive(Clone, Deserialize)]
pub struct WechatPayConfig {
    /// 商户号.
    pub mchid: String,
    /// The mini-program's appid, bound to the merchant.
    pub appid: String,
    /// Serial number of the merchant API certificate whose key is below.
    pub merchant_serial_no: String,
    /// `apiclient_key.pem` (PKCS#8; PKCS#1 accepted).
    pub merchant_private_key_pem: SecretString,
    /// The 32-character APIv3 key: decrypts notifications.
    pub apiv3_key: SecretString,
    /// `(serial, public key PEM)`: WeChat Pay's public key(s) ("微信支付公钥", serial
    /// `PUB_KEY_ID_...`), or each platform certificate's public key with its serial. Answers
    /// and notifications signed under any other serial are refused.
    pub platform_public_keys: Vec<(String, String)>,
    /// `https://api.mch.weixin.qq.com` by default; the sandbox's base URL in sandbox mode.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Where WeChat Pay POSTs payment and refund notifications (https, no query string).
    pub notify_url: String,
}

impl fmt::Debug for WechatPayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPayConfig")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("merchant_private_key_pem", &"[REDACTED]")
            .field("apiv3_key", &"[REDACTED]")
            .field("platform_public_keys", &self.platform_public_keys.iter().map(|(s, _)| s).collect::<Vec<_>>())
            .field("base_url", &self.base_url)
            .field("notify_url", &self.notify_url)
            .finish()
    }
}

#[derive(Clone)]
pub struct WechatPayClient {
    mchid: String,
    appid: String,
    serial_no: String,
    notify_url: String,
    base_url: String,
    private_key: RsaPrivateKey,
    apiv3_key: SecretString,
    platform_keys: PlatformKeys,
    /// Sent as `Wechatpay-Serial` on every request: the first of `platform_public_keys`.
    platform_serial: String,
    http: reqwest::Client,
}

/// `RsaPrivateKey`'s own Debug prints the private exponent: never use it.
impl fmt::Debug for WechatPayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPayClient")
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .field("serial_no", &self.serial_no)
            .field("base_url", &self.base_url)
            .field("platform_keys", &self.platform_keys)
            .finish_non_exhaustive()
    }
}

/// The body of every non-2xx answer.
#[derive(Deserialize)]
struct ApiErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// The answer of `/v3/bill/tradebill`.
#[derive(Deserialize)]
struct BillLink {
    hash_type: String,
    hash_value: String,
    download_url: String,
}

#[derive(Deserialize)]
struct PrepayBody {
    prepay_id: String,
}

/// A notification as POSTed to `notify_url`.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct NotificationEnvelope {
    pub id: String,
    pub create_time: String,
    pub resource_type: String,
    pub event_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: EncryptedResource,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct EncryptedResource {
    pub original_type: String,
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
}

/// WeChat's limits on `out_trade_no`: 6-32 of digits, letters and `_-|*`.
fn check_out_trade_no(v: &str) -> Result<(), WechatPayError> {
    let ok = (6..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b));
    ok.then_some(())
        .ok_or_else(|| WechatPayError::InvalidRequest(format!("out_trade_no {v:?}: 6-32 of [0-9A-Za-z_-|*]")))
}

/// `out_refund_no`: 1-64 of digits, letters and `_-|*@`.
fn check_out_refund_no(v: &str) -> Result<(), WechatPayError> {
    let ok = (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b));
    ok.then_some(())
        .ok_or_else(|| WechatPayError::InvalidRequest(format!("out_refund_no {v:?}: 1-64 of [0-9A-Za-z_-|*@]")))
}

/// WeChat Pay timestamps are Beijing time with an explicit offset.
pub(super) fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

pub(super) fn now_secs() -> i64 {
    Utc::now().timestamp()
}

impl WechatPayClient {
    pub fn new(config: WechatPayConfig) -> Result<Self, WechatPayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WechatPayError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    /// As `new` with a caller-built HTTP client (it should set a User-Agent).
    pub fn with_http_client(config: WechatPayConfig, http: reqwest::Client) -> Result<Self, WechatPayError> {
        let cfg_err = |m: String| WechatPayError::Config(m);
        for (name, value) in
            [("mchid", &config.mchid), ("appid", &config.appid), ("merchant_serial_no", &config.merchant_serial_no)]
        {
            if value.trim().is_empty() {
                return Err(cfg_err(format!("{name} is empty")));
            }
        }
        let private_key = sign::parse_private_key_pem(config.merchant_private_key_pem.expose_secret())
            .map_err(|e| cfg_err(format!("merchant_private_key_pem: {e}")))?;
        if config.apiv3_key.expose_secret().len() != 32 {
            return Err(cfg_err("apiv3_key must be exactly 32 bytes".into()));
        }
        let platform_keys = PlatformKeys::from_pems(&config.platform_public_keys)
            .map_err(|e| cfg_err(format!("platform_public_keys: {e}")))?;
        if platform_keys.is_empty() {
            // Without one nothing WeChat sends could be verified, so nothing would work.
            return Err(cfg_err("platform_public_keys is empty".into()));
        }
        let platform_serial =
            config.platform_public_keys.first().map(|(serial, _)| serial.trim().to_string()).unwrap_or_default();
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let base = url::Url::parse(&base_url).map_err(|e| cfg_err(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
            return Err(cfg_err(format!("base_url {:?} must be http(s) without a query", config.base_url)));
        }
        let notify = url::Url::parse(&config.notify_url)
            .map_err(|e| cfg_err(format!("notify_url {:?}: {e}", config.notify_url)))?;
        if !matches!(notify.scheme(), "http" | "https") || notify.query().is_some() {
            return Err(cfg_err(format!("notify_url {:?} must be http(s) without a query", config.notify_url)));
        }
        Ok(Self {
            mchid: config.mchid,
            appid: config.appid,
            serial_no: config.merchant_serial_no,
            notify_url: config.notify_url,
            base_url,
            private_key,
            apiv3_key: config.apiv3_key,
            platform_keys,
            platform_serial,
            http,
        })
    }

    pub fn mchid(&self) -> &str {
        &self.mchid
    }

    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// The `Authorization` header value for a request (exposed for the openssl cross-check test
    /// and for debugging signature errors).
    pub fn authorization(
        &self,
        method: &str,
        path_with_query: &str,
        timestamp: i64,
        nonce: &str,
        body: &[u8],
    ) -> String {
        Authorization::sign(
            &self.private_key,
            &self.mchid,
            &self.serial_no,
            method,
            path_with_query,
            timestamp,
            nonce,
            body,
        )
        .header_value()
    }

    /// Sends one signed request and returns the verified status and body of a 2xx answer; a
    /// verified non-2xx becomes `Api`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), WechatPayError> {
        let url = format!("{}{path}", self.base_url);
        // Sign the path exactly as it will be requested, including a base_url prefix.
        let parsed = url::Url::parse(&url).map_err(|e| WechatPayError::Config(format!("request URL: {e}")))?;
        let signed_path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_string(),
        };
        let body_bytes = match body {
            Some(v) => serde_json::to_vec(v).map_err(|e| WechatPayError::InvalidRequest(e.to_string()))?,
            None => Vec::new(),
        };
        let auth = self.authorization(method.as_str(), &signed_path, now_secs(), &sign::nonce(), &body_bytes);
        let mut request = self
            .http
            .request(method.clone(), parsed)
            .header("Authorization", auth)
            .header("Accept", "application/json")
            // Which platform key we verify with: WeChat signs its answer with that one, which
            // is what lets a merchant move from platform certificates to the public key.
            .header(sign::HEADER_SERIAL, &self.platform_serial);
        if body.is_some() {
            request = request.header("Content-Type", "application/json").body(body_bytes);
        }
        let response = request.send().await.map_err(WechatPayError::Transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(WechatPayError::Transport)?.to_vec();

        // Nothing in a success answer is trusted before its signature checks out. WeChat's
        // gateway leaves some refusals unsigned (its own SDKs check the status before the
        // signature): an unsigned refusal is reported with its code, since a refusal changes
        // nothing by itself; a *badly* signed one is not.
        let unsigned_refusal = !(200..300).contains(&status) && !WechatpaySignature::present_in(&headers);
        if unsigned_refusal {
            tracing::warn!(status, %method, path, "WeChat Pay refusal without a signature");
        } else if let Err(reason) = WechatpaySignature::from_headers(&headers)
            .and_then(|sig| sig.verify(&self.platform_keys, &bytes, now_secs()))
        {
            tracing::warn!(status, %reason, %method, path, "WeChat Pay response failed signature verification");
            return Err(WechatPayError::Unverified { status, reason });
        }
        if (200..300).contains(&status) {
            return Ok((status, bytes));
        }
        match serde_json::from_slice::<ApiErrorBody>(&bytes) {
            Ok(err) => {
                tracing::warn!(status, code = %err.code, message = %err.message, %method, path, "WeChat Pay refused");
                Err(WechatPayError::Api { status, code: err.code, message: err.message })
            }
            Err(_) => Err(unexpected(status, &bytes)),
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, WechatPayError> {
        let (status, bytes) = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|_| unexpected(status, &bytes))
    }

    async fn place_jsapi(&self, req: JsapiOrder) -> Result<PrepayResult, WechatPayError> {
        check_out_trade_no(&req.out_trade_no)?;
        if req.description.trim().is_empty() || req.description.len() > 127 {
            return Err(WechatPayError::InvalidRequest("description must be 1-127 bytes".into()));
        }
        if req.amount.get() == 0 {
            return Err(WechatPayError::InvalidRequest("amount must be at least 1 fen".into()));
        }
        if req.payer_openid.trim().is_empty() {
            return Err(WechatPayError::InvalidRequest("payer_openid is required for JSAPI payments".into()));
        }
        let body = json!({
            "appid": self.appid,
            "mchid": self.mchid,
            "description": req.description,
            "out_trade_no": req.out_trade_no,
            "time_expire": req.time_expire.with_timezone(&beijing()).to_rfc3339_opts(SecondsFormat::Secs, false),
            "notify_url": self.notify_url,
            "amount": { "total": i64::from(req.amount), "currency": "CNY" },
            "payer": { "openid": req.payer_openid },
        });
        let prepay: PrepayBody =
            self.call_json(reqwest::Method::POST, "/v3/pay/transactions/jsapi", Some(&body)).await?;
        if prepay.prepay_id.is_empty() {
            return Err(WechatPayError::UnexpectedResponse { status: 200, body: "empty prepay_id".into() });
        }
        tracing::info!(out_trade_no = %req.out_trade_no, amount = req.amount.get(), "WeChat Pay JSAPI order placed");
        let pay_params =
            sign::request_payment_params(&self.private_key, &self.appid, &prepay.prepay_id, now_secs(), &sign::nonce());
        Ok(PrepayResult { prepay_id: prepay.prepay_id, pay_params })
    }

    async fn query(&self, out_trade_no: &str) -> Result<Transaction, WechatPayError> {
        check_out_trade_no(out_trade_no)?;
        let path = format!(
            "/v3/pay/transactions/out-trade-no/{}?mchid={}",
            utf8_percent_encode(out_trade_no, SEGMENT),
            utf8_percent_encode(&self.mchid, SEGMENT)
        );
        self.call_json(reqwest::Method::GET, &path, None).await
    }

    async fn query_by_id(&self, transaction_id: &str) -> Result<Transaction, WechatPayError> {
        if transaction_id.is_empty()
            || transaction_id.len() > 32
            || !transaction_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(WechatPayError::InvalidRequest(format!("transaction_id {transaction_id:?}")));
        }
        let path =
            format!("/v3/pay/transactions/id/{transaction_id}?mchid={}", utf8_percent_encode(&self.mchid, SEGMENT));
        self.call_json(reqwest::Method::GET, &path, None).await
    }

    async fn bill(&self, date: chrono::NaiveDate) -> Result<WechatBill, WechatPayError> {
        let path = format!("/v3/bill/tradebill?bill_date={}&bill_type=ALL&tar_type=GZIP", date.format("%Y-%m-%d"));
        let link: BillLink = self.call_json(reqwest::Method::GET, &path, None).await?;
        if !link.hash_type.eq_ignore_ascii_case("SHA1") {
            return Err(unexpected(200, format!("hash_type {}", link.hash_type).as_bytes()));
        }
        // The link must point back at WeChat Pay: a signed request goes nowhere else.
        let url = url::Url::parse(&link.download_url).map_err(|_| unexpected(200, link.download_url.as_bytes()))?;
        if !link.download_url.starts_with(&format!("{}/", self.base_url)) {
            return Err(unexpected(200, format!("download_url outside {}", self.base_url).as_bytes()));
        }
        let signed_path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let auth = self.authorization("GET", &signed_path, now_secs(), &sign::nonce(), b"");
        let response = self
            .http
            .get(url)
            .header("Authorization", auth)
            .header(sign::HEADER_SERIAL, &self.platform_serial)
            .send()
            .await
            .map_err(WechatPayError::Transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(WechatPayError::Transport)?;
        if status != 200 {
            return Err(unexpected(status, &bytes));
        }
        // The download is not signed: the hash from the signed answer vouches for it.
        let plain = bill::gunzip(&bytes)?;
        let actual = bill::sha1_hex(&plain);
        if !actual.eq_ignore_ascii_case(&link.hash_value) {
            return Err(
                crate::bill::BillError(format!("SHA1 {actual} is not the announced {}", link.hash_value)).into()
            );
        }
        let parsed = bill::parse(&plain)?;
        tracing::info!(%date, lines = parsed.rows.len(), "WeChat Pay bill downloaded");
        Ok(parsed)
    }

    async fn close(&self, out_trade_no: &str) -> Result<(), WechatPayError> {
        check_out_trade_no(out_trade_no)?;
        let path = format!("/v3/pay/transactions/out-trade-no/{}/close", utf8_percent_encode(out_trade_no, SEGMENT));
        let (status, bytes) = self.call(reqwest::Method::POST, &path, Some(&json!({ "mchid": self.mchid }))).await?;
        if status != 204 {
            return Err(unexpected(status, &bytes));
        }
        tracing::info!(out_trade_no, "WeChat Pay order closed");
        Ok(())
    }

    async fn create_refund(&self, req: RefundRequest) -> Result<Refund, WechatPayError> {
        check_out_trade_no(&req.out_trade_no)?;
        check_out_refund_no(&req.out_refund_no)?;
        if req.refund.get() == 0 || req.refund > req.total {
            return Err(WechatPayError::InvalidRequest("refund must be 1 fen to the order total".into()));
        }
        let mut body = json!({
            "out_trade_no": req.out_trade_no,
            "out_refund_no": req.out_refund_no,
            "notify_url": self.notify_url,
            "amount": { "refund": i64::from(req.refund), "total": i64::from(req.total), "currency": "CNY" },
        });
        if let Some(reason) = req.reason.filter(|r| !r.trim().is_empty()) {
            body["reason"] = Value::String(reason);
        }
        let refund: Refund = self.call_json(reqwest::Method::POST, "/v3/refund/domestic/refunds", Some(&body)).await?;
        tracing::info!(out_refund_no = %refund.out_refund_no, status = ?refund.status, "WeChat Pay refund requested");
        Ok(refund)
    }

    async fn get_refund(&self, out_refund_no: &str) -> Result<Refund, WechatPayError> {
        check_out_refund_no(out_refund_no)?;
        let path = format!("/v3/refund/domestic/refunds/{}", utf8_percent_encode(out_refund_no, SEGMENT));
        self.call_json(reqwest::Method::GET, &path, None).await
    }

    fn notification(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notification, WechatPayError> {
        let reject = |m: String| {
            tracing::warn!(reason = %m, "WeChat Pay notification rejected");
            WechatPayError::Notification(m)
        };
        WechatpaySignature::from_headers(headers)
            .and_then(|sig| sig.verify(&self.platform_keys, body, now_secs()))
            .map_err(|e| reject(format!("signature: {e}")))?;
        let envelope: NotificationEnvelope =
            serde_json::from_slice(body).map_err(|e| reject(format!("not a notification: {e}")))?;
        let resource = &envelope.resource;
        if resource.algorithm != RESOURCE_ALGORITHM {
            return Err(reject(format!("unsupported algorithm {:?}", resource.algorithm)));
        }
        let plaintext = sign::decrypt_resource(
            self.apiv3_key.expose_secret().as_bytes(),
            &resource.nonce,
            &resource.associated_data,
            &resource.ciphertext,
        )
        .map_err(|e| reject(e.to_string()))?;
        let id = envelope.id;
        let event_type = envelope.event_type;
        if event_type == "TRANSACTION.SUCCESS" {
            let transaction: Transaction =
                serde_json::from_slice(&plaintext).map_err(|e| reject(format!("transaction resource: {e}")))?;
            // Signed by WeChat but for another merchant or app: not ours to act on.
            if transaction.mchid != self.mchid || transaction.appid != self.appid {
                return Err(reject(format!("transaction for {}/{}", transaction.mchid, transaction.appid)));
            }
            tracing::info!(%id, out_trade_no = %transaction.out_trade_no, "WeChat Pay payment notification");
            Ok(Notification::Transaction { id, event_type, transaction })
        } else if event_type.starts_with("REFUND.") {
            let refund: RefundNotice =
                serde_json::from_slice(&plaintext).map_err(|e| reject(format!("refund resource: {e}")))?;
            if refund.mchid != self.mchid {
                return Err(reject(format!("refund for merchant {}", refund.mchid)));
            }
            tracing::info!(%id, %event_type, out_refund_no = %refund.out_refund_no, "WeChat Pay refund notification");
            Ok(Notification::Refund { id, event_type, refund })
        } else {
            tracing::info!(%id, %event_type, "WeChat Pay notification of an unhandled type");
            Ok(Notification::Other { id, event_type })
        }
    }
}

fn unexpected(status: u16, body: &[u8]) -> WechatPayError {
    WechatPayError::UnexpectedResponse { status, body: String::from_utf8_lossy(body).chars().take(300).collect() }
}

impl WechatPay for WechatPayClient {
    fn jsapi_order(&self, req: JsapiOrder) -> BoxFuture<'_, Result<PrepayResult, WechatPayError>> {
        Box::pin(self.place_jsapi(req))
    }

    fn query_order<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Transaction, WechatPayError>> {
        Box::pin(self.query(out_trade_no))
    }

    fn close_order<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), WechatPayError>> {
        Box::pin(self.close(out_trade_no))
    }

    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<Refund, WechatPayError>> {
        Box::pin(self.create_refund(req))
    }

    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, Result<Refund, WechatPayError>> {
        Box::pin(self.get_refund(out_refund_no))
    }

    fn query_transaction<'a>(&'a self, transaction_id: &'a str) -> BoxFuture<'a, Result<Transaction, WechatPayError>> {
        Box::pin(self.query_by_id(transaction_id))
    }

    fn trade_bill(&self, date: chrono::NaiveDate) -> BoxFuture<'_, Result<WechatBill, WechatPayError>> {
        Box::pin(self.bill(date))
    }

    fn parse_notification(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notification, WechatPayError> {
        self.notification(headers, body)
    }
}
