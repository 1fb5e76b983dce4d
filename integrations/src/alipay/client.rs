//! `AlipayClient`: calls Alipay's OpenAPI gateway (`https://openapi.alipay.com/gateway.do`),
//! signing every request with the app key and trusting no success answer that Alipay's key did
//! not sign.

use std::fmt;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use encoding_rs::Encoding;
use hospital_domain::Fen;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::sign::{self, SignError};
use super::{
    bill, code, format_time, parse_time, Alipay, AlipayBill, AlipayError, Buyer, CreateTrade, CreatedTrade,
    Notification, RefundQuery, RefundRequest, RefundResult, Trade, TradeStatus, WapPay,
};
use crate::yuan::{fen_to_yuan, parse_yuan};
use crate::BoxFuture;

pub const DEFAULT_GATEWAY_URL: &str = "https://openapi.alipay.com/gateway.do";
const USER_AGENT: &str = concat!("hospital-integrations/", env!("CARGO_PKG_VERSION"), " (Alipay OpenAPI)");
/// A bill is a few MiB; more is not a bill.
const MAX_BILL_BYTES: usize = 64 << 20;

fn default_gateway_url() -> String {
    DEFAULT_GATEWAY_URL.to_string()
}

/// The app's credentials from Alipay's open platform (开放平台 → 应用 → 开发设置, 公钥模式).
#[derive(Clone, Deserialize)]
pub struct AlipayConfig {
    /// The app's APPID (the mini-program's, or the web app's for H5).
    pub app_id: String,
    /// 应用私钥: PEM or the bare base64 Alipay's key tool prints.
    pub app_private_key: SecretString,
    /// 支付宝公钥 (not the app public key): verifies answers and notifications.
    pub alipay_public_key: String,
    /// The merchant's PID (`2088...`); when set, notifications for another seller are refused.
    #[serde(default)]
    pub seller_id: Option<String>,
    /// `https://openapi.alipay.com/gateway.do`, or the sandbox's `.../gateway.do`.
    #[serde(default = "default_gateway_url")]
    pub gateway_url: String,
    /// Where Alipay POSTs notifications (http(s), no query string).
    pub notify_url: String,
}

impl fmt::Debug for AlipayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayConfig")
            .field("app_id", &self.app_id)
            .field("app_private_key", &"[REDACTED]")
            .field("seller_id", &self.seller_id)
            .field("gateway_url", &self.gateway_url)
            .field("notify_url", &self.notify_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct AlipayClient {
    app_id: String,
    seller_id: Option<String>,
    gateway_url: String,
    notify_url: String,
    app_key: RsaPrivateKey,
    alipay_key: RsaPublicKey,
    http: reqwest::Client,
}

/// Keys stay out of Debug output (`RsaPrivateKey`'s own Debug prints them).
impl fmt::Debug for AlipayClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayClient")
            .field("app_id", &self.app_id)
            .field("gateway_url", &self.gateway_url)
            .finish_non_exhaustive()
    }
}

/// Alipay's rule for `out_trade_no` / `out_request_no`: 1-64 of letters, digits and `_`.
fn check_no(name: &str, v: &str) -> Result<(), AlipayError> {
    let ok = (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    ok.then_some(()).ok_or_else(|| AlipayError::InvalidRequest(format!("{name} {v:?}: 1-64 of [0-9A-Za-z_]")))
}

fn check_amount(amount: Fen) -> Result<(), AlipayError> {
    // Alipay's range is [0.01, 100000000].
    if amount.get() == 0 || amount.get() > 10_000_000_000 {
        return Err(AlipayError::InvalidRequest(format!("amount {amount} outside ¥0.01-¥100000000.00")));
    }
    Ok(())
}

fn check_subject(subject: &str) -> Result<(), AlipayError> {
    if subject.trim().is_empty() || subject.chars().count() > 256 || subject.contains(['/', '=', '&']) {
        return Err(AlipayError::InvalidRequest("subject must be 1-256 characters without / = &".into()));
    }
    Ok(())
}

fn unexpected(status: u16, body: &str) -> AlipayError {
    AlipayError::UnexpectedResponse { status, body: body.chars().take(300).collect() }
}

fn str_of<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn amount_of(v: &Value, name: &str) -> Result<Option<Fen>, AlipayError> {
    match str_of(v, name) {
        None => Ok(None),
        Some(s) => {
            parse_yuan(s).map(Some).ok_or_else(|| unexpected(200, &format!("{name} {s:?} is not a yuan amount")))
        }
    }
}

fn required<'a>(v: &'a Value, name: &str) -> Result<&'a str, AlipayError> {
    str_of(v, name).ok_or_else(|| unexpected(200, &format!("answer without {name}: {v}")))
}

/// Decodes a form body in `charset` (Alipay sends notifications in the charset of the request
/// that created the trade; this client always asks for utf-8, but GBK apps exist).
pub(super) fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let raw: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let decode = |s: &[u8]| {
                let plus: Vec<u8> = s.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
                percent_encoding::percent_decode(&plus).collect::<Vec<u8>>()
            };
            (decode(k), decode(v))
        })
        .collect();
    let charset = raw
        .iter()
        .find(|(k, _)| k == b"charset")
        .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        .unwrap_or_else(|| "utf-8".into());
    let encoding =
        Encoding::for_label(charset.trim().as_bytes()).ok_or_else(|| format!("unknown charset {charset:?}"))?;
    raw.into_iter()
        .map(|(k, v)| {
            let (k, _, bad_k) = encoding.decode(&k);
            let (v, _, bad_v) = encoding.decode(&v);
            if bad_k || bad_v {
                return Err(format!("a parameter is not valid {charset}"));
            }
            Ok((k.into_owned(), v.into_owned()))
        })
        .collect()
}

impl AlipayClient {
    pub fn new(config: AlipayConfig) -> Result<Self, AlipayError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| AlipayError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    pub fn with_http_client(config: AlipayConfig, http: reqwest::Client) -> Result<Self, AlipayError> {
        let cfg = |m: String| AlipayError::Config(m);
        if config.app_id.trim().is_empty() {
            return Err(cfg("app_id is empty".into()));
        }
        let app_key = sign::parse_private_key(config.app_private_key.expose_secret())
            .map_err(|e| cfg(format!("app_private_key: {e}")))?;
        let alipay_key =
            sign::parse_public_key(&config.alipay_public_key).map_err(|e| cfg(format!("alipay_public_key: {e}")))?;
        if app_key.to_public_key() == alipay_key {
            // The commonest setup mistake: the app's own public key where Alipay's belongs.
            return Err(cfg("alipay_public_key is the app's own public key, not Alipay's".into()));
        }
        for (name, value) in [("gateway_url", &config.gateway_url), ("notify_url", &config.notify_url)] {
            let url = url::Url::parse(value).map_err(|e| cfg(format!("{name} {value:?}: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                return Err(cfg(format!("{name} {value:?} must be http(s) without a query")));
            }
        }
        Ok(Self {
            app_id: config.app_id,
            seller_id: config.seller_id.filter(|s| !s.trim().is_empty()),
            gateway_url: config.gateway_url,
            notify_url: config.notify_url,
            app_key,
            alipay_key,
            http,
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    pub fn notify_url(&self) -> &str {
        &self.notify_url
    }

    /// The common parameters plus `biz_content`, signed: what goes on the wire.
    pub fn signed_params(
        &self,
        method: &str,
        biz_content: &Value,
        extra: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, AlipayError> {
        let biz = serde_json::to_string(biz_content).map_err(|e| AlipayError::InvalidRequest(e.to_string()))?;
        let timestamp = format_time(Utc::now());
        let mut params: Vec<(String, String)> = [
            ("app_id", self.app_id.as_str()),
            ("method", method),
            ("format", sign::FORMAT),
            ("charset", sign::CHARSET),
            ("sign_type", sign::SIGN_TYPE),
            ("timestamp", timestamp.as_str()),
            ("version", sign::VERSION),
            ("biz_content", biz.as_str()),
        ]
        .iter()
        .chain(extra.iter())
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sign = sign::sign_request(&self.app_key, params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| AlipayError::InvalidRequest(e.to_string()))?;
        params.push(("sign".into(), sign));
        Ok(params)
    }

    /// One signed call; returns the verified `..._response` object of a `10000` answer.
    async fn call(&self, method: &str, biz_content: Value, extra: &[(&str, &str)]) -> Result<Value, AlipayError> {
        let params = self.signed_params(method, &biz_content, extra)?;
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        let response = self
            .http
            .post(format!("{}?charset={}", self.gateway_url, sign::CHARSET))
            .header("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(AlipayError::Transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(AlipayError::Transport)?;
        if status != 200 {
            return Err(unexpected(status, &text));
        }
        self.verify_answer(method, &text)
    }

    /// Cuts out, verifies and parses the answer to `method` (exposed for tests and debugging).
    pub fn verify_answer(&self, method: &str, text: &str) -> Result<Value, AlipayError> {
        let key = sign::response_key(method);
        let outer: Value = serde_json::from_str(text).map_err(|_| unexpected(200, text))?;
        let (key, content) = match sign::response_sign_content(text, &key) {
            Some(content) => (key, content),
            // Unknown method, bad app_id...: the gateway's own error envelope.
            None => (
                "error_response".to_string(),
                sign::response_sign_content(text, "error_response").ok_or_else(|| unexpected(200, text))?,
            ),
        };
        let answer: Value = serde_json::from_str(content).map_err(|_| unexpected(200, text))?;
        let signed = match outer.get("sign").and_then(Value::as_str) {
            Some(signature) => {
                sign::verify_rsa2(&self.alipay_key, content, signature).map_err(|e| {
                    tracing::warn!(method, %e, "Alipay answer failed signature verification");
                    AlipayError::Unverified(e)
                })?;
                true
            }
            None => false,
        };
        let code_value = str_of(&answer, "code").unwrap_or_default();
        if code_value == code::SUCCESS && key != "error_response" {
            if !signed {
                return Err(AlipayError::Unverified(SignError::MissingHeader("sign")));
            }
            return Ok(answer);
        }
        let err = AlipayError::Api {
            code: code_value.to_string(),
            msg: str_of(&answer, "msg").unwrap_or_default().to_string(),
            sub_code: str_of(&answer, "sub_code").unwrap_or_default().to_string(),
            sub_msg: str_of(&answer, "sub_msg").unwrap_or_default().to_string(),
            signed,
        };
        tracing::warn!(method, error = %err, "Alipay refused");
        Err(err)
    }

    async fn create(&self, req: CreateTrade) -> Result<CreatedTrade, AlipayError> {
        check_no("out_trade_no", &req.out_trade_no)?;
        check_subject(&req.subject)?;
        check_amount(req.amount)?;
        let mut biz = json!({
            "out_trade_no": req.out_trade_no,
            "total_amount": fen_to_yuan(req.amount),
            "subject": req.subject,
            "product_code": "JSAPI_PAY",
            "time_expire": format_time(req.time_expire),
        });
        match &req.buyer {
            Buyer::UserId(id) if !id.trim().is_empty() => biz["buyer_id"] = json!(id),
            Buyer::OpenId(id) if !id.trim().is_empty() => biz["buyer_open_id"] = json!(id),
            _ => return Err(AlipayError::InvalidRequest("the buyer's user id or openid is required".into())),
        }
        let answer = self.call("alipay.trade.create", biz, &[("notify_url", &self.notify_url)]).await?;
        let created = CreatedTrade {
            trade_no: required(&answer, "trade_no")?.to_string(),
            out_trade_no: required(&answer, "out_trade_no")?.to_string(),
        };
        if created.out_trade_no != req.out_trade_no {
            return Err(unexpected(200, &format!("answer for another trade {:?}", created.out_trade_no)));
        }
        tracing::info!(out_trade_no = %created.out_trade_no, trade_no = %created.trade_no, "Alipay trade created");
        Ok(created)
    }

    fn wap_url(&self, req: WapPay) -> Result<String, AlipayError> {
        check_no("out_trade_no", &req.out_trade_no)?;
        check_subject(&req.subject)?;
        check_amount(req.amount)?;
        let mut biz = json!({
            "out_trade_no": req.out_trade_no,
            "total_amount": fen_to_yuan(req.amount),
            "subject": req.subject,
            "product_code": "QUICK_WAP_WAY",
            "time_expire": format_time(req.time_expire),
        });
        if let Some(quit) = &req.quit_url {
            biz["quit_url"] = json!(quit);
        }
        let return_url = req.return_url.unwrap_or_default();
        let params = self.signed_params(
            "alipay.trade.wap.pay",
            &biz,
            &[("notify_url", &self.notify_url), ("return_url", &return_url)],
        )?;
        let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        Ok(format!("{}?{query}", self.gateway_url))
    }

    async fn query(&self, out_trade_no: &str) -> Result<Trade, AlipayError> {
        check_no("out_trade_no", out_trade_no)?;
        let a = self.call("alipay.trade.query", json!({ "out_trade_no": out_trade_no }), &[]).await?;
        let status = required(&a, "trade_status")?;
        Ok(Trade {
            trade_no: required(&a, "trade_no")?.to_string(),
            out_trade_no: required(&a, "out_trade_no")?.to_string(),
            trade_status: TradeStatus::parse(status)
                .ok_or_else(|| unexpected(200, &format!("unknown trade_status {status:?}")))?,
            total_amount: amount_of(&a, "total_amount")?.ok_or_else(|| unexpected(200, "no total_amount"))?,
            buyer_pay_amount: amount_of(&a, "buyer_pay_amount")?,
            receipt_amount: amount_of(&a, "receipt_amount")?,
            buyer_user_id: str_of(&a, "buyer_user_id").map(str::to_string),
            buyer_open_id: str_of(&a, "buyer_open_id").map(str::to_string),
            buyer_logon_id: str_of(&a, "buyer_logon_id").map(str::to_string),
            send_pay_date: str_of(&a, "send_pay_date").and_then(parse_time),
        })
    }

    async fn close(&self, out_trade_no: &str) -> Result<(), AlipayError> {
        check_no("out_trade_no", out_trade_no)?;
        self.call("alipay.trade.close", json!({ "out_trade_no": out_trade_no }), &[]).await?;
        tracing::info!(out_trade_no, "Alipay trade closed");
        Ok(())
    }

    async fn do_refund(&self, req: RefundRequest) -> Result<RefundResult, AlipayError> {
        check_no("out_trade_no", &req.out_trade_no)?;
        check_no("out_request_no", &req.out_request_no)?;
        check_amount(req.amount)?;
        let mut biz = json!({
            "out_trade_no": req.out_trade_no,
            "refund_amount": fen_to_yuan(req.amount),
            "out_request_no": req.out_request_no,
        });
        if let Some(reason) = req.reason.filter(|r| !r.trim().is_empty()) {
            biz["refund_reason"] = json!(reason);
        }
        let a = self.call("alipay.trade.refund", biz, &[]).await?;
        let result = RefundResult {
            trade_no: required(&a, "trade_no")?.to_string(),
            out_trade_no: required(&a, "out_trade_no")?.to_string(),
            fund_change: str_of(&a, "fund_change") == Some("Y"),
            refund_fee: amount_of(&a, "refund_fee")?.ok_or_else(|| unexpected(200, "no refund_fee"))?,
            gmt_refund_pay: str_of(&a, "gmt_refund_pay").and_then(parse_time),
        };
        tracing::info!(out_request_no = %req.out_request_no, fund_change = result.fund_change, "Alipay refund done");
        Ok(result)
    }

    async fn refund_query(&self, out_trade_no: &str, out_request_no: &str) -> Result<Option<RefundQuery>, AlipayError> {
        check_no("out_trade_no", out_trade_no)?;
        check_no("out_request_no", out_request_no)?;
        let biz = json!({ "out_trade_no": out_trade_no, "out_request_no": out_request_no, "query_options": ["gmt_refund_pay"] });
        let a = self.call("alipay.trade.fastpay.refund.query", biz, &[]).await?;
        // Alipay answers 10000 without a refund_amount when it knows no such refund.
        let Some(refund_amount) = amount_of(&a, "refund_amount")? else { return Ok(None) };
        Ok(Some(RefundQuery {
            trade_no: required(&a, "trade_no")?.to_string(),
            out_trade_no: required(&a, "out_trade_no")?.to_string(),
            out_request_no: str_of(&a, "out_request_no").unwrap_or(out_request_no).to_string(),
            refund_amount,
            total_amount: amount_of(&a, "total_amount")?.ok_or_else(|| unexpected(200, "no total_amount"))?,
            refund_status: str_of(&a, "refund_status").map(str::to_string),
        }))
    }

    fn notification(&self, body: &[u8]) -> Result<Notification, AlipayError> {
        let reject = |m: String| {
            tracing::warn!(reason = %m, "Alipay notification rejected");
            AlipayError::Notification(m)
        };
        let params = decode_form(body).map_err(reject)?;
        let get =
            |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let signature = get("sign").ok_or_else(|| reject("no sign".into()))?;
        if let Some(t) = get("sign_type") {
            if t != sign::SIGN_TYPE {
                return Err(reject(format!("sign_type {t:?} is not RSA2")));
            }
        }
        let content = sign::notification_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|e| reject(e.to_string()))?;
        sign::verify_rsa2(&self.alipay_key, &content, signature).map_err(|e| reject(format!("signature: {e}")))?;
        // Signed by Alipay, but possibly for another app or seller of the same key holder.
        let app_id = get("app_id").ok_or_else(|| reject("no app_id".into()))?;
        if app_id != self.app_id || get("auth_app_id").is_some_and(|a| a != self.app_id) {
            return Err(reject(format!("app_id {app_id:?} is not ours")));
        }
        if let (Some(ours), Some(theirs)) = (&self.seller_id, get("seller_id")) {
            if ours != theirs {
                return Err(reject(format!("seller_id {theirs:?} is not ours")));
            }
        }
        let need = |name: &str| get(name).map(str::to_string).ok_or_else(|| reject(format!("no {name}")));
        let amount = |name: &str| -> Result<Option<Fen>, AlipayError> {
            get(name)
                .map(|v| parse_yuan(v).ok_or_else(|| reject(format!("{name} {v:?} is not a yuan amount"))))
                .transpose()
        };
        let status = need("trade_status")?;
        let notification = Notification {
            notify_id: need("notify_id")?,
            notify_type: need("notify_type")?,
            notify_time: need("notify_time")?,
            app_id: app_id.to_string(),
            trade_no: need("trade_no")?,
            out_trade_no: need("out_trade_no")?,
            trade_status: TradeStatus::parse(&status)
                .ok_or_else(|| reject(format!("unknown trade_status {status:?}")))?,
            total_amount: amount("total_amount")?.ok_or_else(|| reject("no total_amount".into()))?,
            receipt_amount: amount("receipt_amount")?,
            buyer_pay_amount: amount("buyer_pay_amount")?,
            buyer_id: get("buyer_id").map(str::to_string),
            buyer_open_id: get("buyer_open_id").map(str::to_string),
            seller_id: get("seller_id").map(str::to_string),
            refund_fee: amount("refund_fee")?,
            out_biz_no: get("out_biz_no").map(str::to_string),
            gmt_payment: get("gmt_payment").and_then(parse_time),
            gmt_refund: get("gmt_refund").map(str::to_string),
            gmt_close: get("gmt_close").and_then(parse_time),
        };
        if notification.notify_type != "trade_status_sync" {
            return Err(reject(format!("notify_type {:?}", notification.notify_type)));
        }
        tracing::info!(
            notify_id = %notification.notify_id,
            out_trade_no = %notification.out_trade_no,
            trade_status = notification.trade_status.as_str(),
            "Alipay notification verified"
        );
        Ok(notification)
    }

    async fn bill(&self, date: NaiveDate) -> Result<AlipayBill, AlipayError> {
        let biz = json!({ "bill_type": "trade", "bill_date": date.format("%Y-%m-%d").to_string() });
        let a = self.call("alipay.data.dataservice.bill.downloadurl.query", biz, &[]).await?;
        let url = required(&a, "bill_download_url")?.to_string();
        // The URL is pre-signed by Alipay and lives 30 seconds: fetch it at once, no auth.
        let response = self.http.get(&url).send().await.map_err(AlipayError::Transport)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(unexpected(status, &response.text().await.unwrap_or_default()));
        }
        if response.content_length().is_some_and(|n| n > MAX_BILL_BYTES as u64) {
            return Err(unexpected(status, "bill larger than 64 MiB"));
        }
        let bytes = response.bytes().await.map_err(AlipayError::Transport)?;
        let parsed = bill::parse_zip(&bytes)?;
        if parsed.date != date {
            return Err(AlipayError::Bill(crate::bill::BillError(format!(
                "asked for {date}, got the bill of {}",
                parsed.date
            ))));
        }
        tracing::info!(%date, lines = parsed.rows.len(), "Alipay bill downloaded");
        Ok(parsed)
    }
}

impl Alipay for AlipayClient {
    fn create_trade(&self, req: CreateTrade) -> BoxFuture<'_, Result<CreatedTrade, AlipayError>> {
        Box::pin(self.create(req))
    }

    fn wap_pay_url(&self, req: WapPay) -> Result<String, AlipayError> {
        self.wap_url(req)
    }

    fn query_trade<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Trade, AlipayError>> {
        Box::pin(self.query(out_trade_no))
    }

    fn close_trade<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), AlipayError>> {
        Box::pin(self.close(out_trade_no))
    }

    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<RefundResult, AlipayError>> {
        Box::pin(self.do_refund(req))
    }

    fn query_refund<'a>(
        &'a self,
        out_trade_no: &'a str,
        out_request_no: &'a str,
    ) -> BoxFuture<'a, Result<Option<RefundQuery>, AlipayError>> {
        Box::pin(self.refund_query(out_trade_no, out_request_no))
    }

    fn parse_notification(&self, body: &[u8]) -> Result<Notification, AlipayError> {
        self.notification(body)
    }

    fn download_bill(&self, date: NaiveDate) -> BoxFuture<'_, Result<AlipayBill, AlipayError>> {
        Box::pin(self.bill(date))
    }
}
