//! `WechatPaySandbox`: a local stand-in for WeChat Pay API v3 with its own platform key. It
//! verifies each request's merchant signature, keeps orders and refunds in memory, signs every
//! answer, and delivers signed, encrypted notifications to `notify_url`, retrying on failure on
//! WeChat's schedule, so the platform's real client and notify handler run end to end. It also
//! serves each day's trade bill (`/v3/bill/tradebill` + the signed download of `download_url`,
//! gzip, SHA1) from the orders and refunds it holds, with differences tests can plant.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat, Utc};
use hospital_domain::Fen;
use rand::Rng;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Value};

use super::bill::{self, WechatBill, WechatBillRow};
use super::client::{beijing, now_secs, EncryptedResource, NotificationEnvelope};
use super::sign::{self, Authorization, WechatpaySignature, RESOURCE_ALGORITHM};
use super::{
    code, test_keys, Payer, Refund, RefundAmount, RefundNotice, RefundStatus, TradeState, Transaction,
    TransactionAmount, WechatPayError,
};
use crate::bill::BillPlant;

/// WeChat Pay's documented notification retry intervals (15s/15s/30s/3m/10m/20m/30m/30m/30m/
/// 60m/3h/3h/3h/6h/6h, about 24h4m in all); the first delivery is immediate.
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 15] = [
    Duration::from_secs(15),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(3 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(20 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(6 * 3600),
];
/// How long a sandbox refund stays PROCESSING before it succeeds.
pub const DEFAULT_REFUND_DELAY: Duration = Duration::from_secs(2);
/// WeChat waits about 5 seconds for the merchant to answer a notification.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
const DELIVERY_LOG_CAPACITY: usize = 1000;
const MAX_ORDERS: usize = 100_000;
/// A `download_url` lives five minutes, as WeChat's does.
const BILL_URL_TTL: Duration = Duration::from_secs(5 * 60);

/// 0.6% of `amount` in fen, rounded half up: the sandbox's fee rate.
fn fee_fen(amount: Fen) -> u64 {
    (amount.get() * 6 + 500) / 1000
}

/// What the sandbox plays WeChat Pay with. The merchant half must match the client's config;
/// the platform half is the sandbox's own, its public key going into the client's
/// `platform_public_keys`.
#[derive(Clone)]
pub struct WechatPaySandboxConfig {
    pub appid: String,
    pub mchid: String,
    /// The serial the client puts in `serial_no`.
    pub merchant_serial_no: String,
    /// Verifies request signatures.
    pub merchant_public_key_pem: String,
    /// The serial answers and notifications are signed under (`Wechatpay-Serial`).
    pub platform_serial_no: String,
    pub platform_private_key_pem: SecretString,
    pub apiv3_key: SecretString,
}

impl fmt::Debug for WechatPaySandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPaySandboxConfig")
            .field("appid", &self.appid)
            .field("mchid", &self.mchid)
            .field("merchant_serial_no", &self.merchant_serial_no)
            .field("platform_serial_no", &self.platform_serial_no)
            .finish_non_exhaustive()
    }
}

impl WechatPaySandboxConfig {
    /// A sandbox using the published TEST keys of [`test_keys`], for development and tests.
    pub fn with_test_keys(appid: impl Into<String>, mchid: impl Into<String>) -> Self {
        Self {
            appid: appid.into(),
            mchid: mchid.into(),
            merchant_serial_no: test_keys::MERCHANT_SERIAL_NO.into(),
            merchant_public_key_pem: test_keys::MERCHANT_PUBLIC_KEY_PEM.into(),
            platform_serial_no: test_keys::PLATFORM_SERIAL_NO.into(),
            platform_private_key_pem: SecretString::from(test_keys::PLATFORM_PRIVATE_KEY_PEM),
            apiv3_key: SecretString::from(test_keys::APIV3_KEY),
        }
    }
}

/// An order as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxOrder {
    pub out_trade_no: String,
    pub description: String,
    pub amount: Fen,
    pub payer_openid: String,
    pub notify_url: String,
    pub time_expire: Option<DateTime<FixedOffset>>,
    pub prepay_id: String,
    pub trade_state: TradeState,
    pub transaction_id: Option<String>,
    pub success_time: Option<DateTime<FixedOffset>>,
    /// Sum of refunds not closed.
    pub refunded: Fen,
}

#[derive(Debug, Clone)]
struct SandboxRefund {
    refund: Refund,
    notify_url: String,
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub notification_id: String,
    pub event_type: String,
    pub url: String,
    /// 1 for the first delivery.
    pub attempt: u32,
    /// The HTTP status the platform answered, if it answered.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub acknowledged: bool,
    pub at: DateTime<Utc>,
}

/// The sandbox's shared state; clones share orders, refunds and the delivery log.
#[derive(Clone)]
pub struct WechatPaySandbox {
    inner: Arc<Inner>,
}

struct Inner {
    appid: String,
    mchid: String,
    merchant_serial_no: String,
    merchant_key: RsaPublicKey,
    platform_serial_no: String,
    platform_key: RsaPrivateKey,
    apiv3_key: SecretString,
    http: reqwest::Client,
    state: Mutex<SandboxState>,
}

struct SandboxState {
    orders: HashMap<String, SandboxOrder>,
    refunds: HashMap<String, SandboxRefund>,
    deliveries: VecDeque<DeliveryAttempt>,
    notifications_sent: usize,
    notifications_acknowledged: usize,
    retry_schedule: Vec<Duration>,
    refund_delay: Duration,
    /// Bills handed out by `/v3/bill/tradebill`: token -> (uncompressed CSV, gzip?, issued).
    bill_tokens: HashMap<String, (Vec<u8>, bool, Instant)>,
    plants: Vec<BillPlant>,
    requests_without_serial: usize,
}

/// Keys stay out of Debug output.
impl fmt::Debug for WechatPaySandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WechatPaySandbox")
            .field("appid", &self.inner.appid)
            .field("mchid", &self.inner.mchid)
            .field("platform_serial_no", &self.inner.platform_serial_no)
            .finish_non_exhaustive()
    }
}

/// A refusal in WeChat Pay's shape: HTTP status plus `{code, message}`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

fn param_error(message: impl Into<String>) -> Refusal {
    refuse(StatusCode::BAD_REQUEST, code::PARAM_ERROR, message)
}

impl From<Refusal> for WechatPayError {
    fn from(r: Refusal) -> Self {
        WechatPayError::Api { status: r.status.as_u16(), code: r.code.to_string(), message: r.message }
    }
}

fn now_beijing() -> DateTime<FixedOffset> {
    // Whole seconds, as WeChat reports times.
    let now = Utc::now().with_timezone(&beijing());
    DateTime::parse_from_rfc3339(&now.to_rfc3339_opts(SecondsFormat::Secs, false)).unwrap_or(now)
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

fn valid_no(v: &str, len: std::ops::RangeInclusive<usize>, extra: &[u8]) -> bool {
    len.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str, Refusal> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| param_error(format!("输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项")))
}

/// A positive integer amount in fen; WeChat refuses 0, negatives and decimals alike.
fn fen_field(amount: &Value, name: &str) -> Result<Fen, Refusal> {
    amount
        .get(name)
        .and_then(Value::as_i64)
        .filter(|v| *v >= 1)
        .and_then(|v| Fen::try_from(v).ok())
        .ok_or_else(|| param_error(format!("amount.{name} 必须为大于0的整数（单位：分）")))
}

fn check_currency(amount: &Value) -> Result<(), Refusal> {
    match amount.get("currency") {
        None => Ok(()),
        Some(Value::String(c)) if c == "CNY" => Ok(()),
        Some(_) => Err(param_error("currency 仅支持 CNY")),
    }
}

fn check_notify_url(url: &str) -> Result<(), Refusal> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => Ok(()),
        _ => Err(param_error("notify_url 格式错误：须为不带参数的 http(s) 地址")),
    }
}

fn trade_state_desc(state: TradeState) -> &'static str {
    match state {
        TradeState::Success => "支付成功",
        TradeState::Refund => "转入退款",
        TradeState::NotPay => "未支付",
        TradeState::Closed => "已关闭",
        TradeState::Revoked => "已撤销",
        TradeState::UserPaying => "用户支付中",
        TradeState::PayError => "支付失败",
        TradeState::Unknown => "",
    }
}

impl WechatPaySandbox {
    pub fn new(config: WechatPaySandboxConfig) -> Result<Self, WechatPayError> {
        let cfg_err = |m: String| WechatPayError::Config(m);
        let merchant_key = sign::parse_public_key_pem(&config.merchant_public_key_pem)
            .map_err(|e| cfg_err(format!("merchant_public_key_pem: {e}")))?;
        let platform_key = sign::parse_private_key_pem(config.platform_private_key_pem.expose_secret())
            .map_err(|e| cfg_err(format!("platform_private_key_pem: {e}")))?;
        if config.apiv3_key.expose_secret().len() != 32 {
            return Err(cfg_err("apiv3_key must be exactly 32 bytes".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(NOTIFY_TIMEOUT)
            .timeout(NOTIFY_TIMEOUT)
            .user_agent("Mozilla/4.0 (WechatPay sandbox notifier)")
            .build()
            .map_err(|e| cfg_err(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                appid: config.appid,
                mchid: config.mchid,
                merchant_serial_no: config.merchant_serial_no,
                merchant_key,
                platform_serial_no: config.platform_serial_no,
                platform_key,
                apiv3_key: config.apiv3_key,
                http,
                state: Mutex::new(SandboxState {
                    orders: HashMap::new(),
                    refunds: HashMap::new(),
                    deliveries: VecDeque::new(),
                    notifications_sent: 0,
                    notifications_acknowledged: 0,
                    retry_schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
                    refund_delay: DEFAULT_REFUND_DELAY,
                    bill_tokens: HashMap::new(),
                    plants: Vec::new(),
                    requests_without_serial: 0,
                }),
            }),
        })
    }

    /// Waits between delivery attempts (the first is immediate); attempts stop after the last
    /// wait. Tests use milliseconds.
    pub fn with_retry_schedule(self, schedule: Vec<Duration>) -> Self {
        self.state().retry_schedule = schedule;
        self
    }

    /// How long a refund stays PROCESSING before REFUND.SUCCESS.
    pub fn with_refund_delay(self, delay: Duration) -> Self {
        self.state().refund_delay = delay;
        self
    }

    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    pub fn mchid(&self) -> &str {
        &self.inner.mchid
    }

    pub fn order(&self, out_trade_no: &str) -> Option<SandboxOrder> {
        self.state().orders.get(out_trade_no).cloned()
    }

    /// Notifications created (each counted once, however often it is delivered).
    pub fn notifications_sent(&self) -> usize {
        self.state().notifications_sent
    }

    /// Notifications the platform answered 200/204 to.
    pub fn notifications_acknowledged(&self) -> usize {
        self.state().notifications_acknowledged
    }

    /// Signed requests that came without a `Wechatpay-Serial` header.
    pub fn requests_without_serial(&self) -> usize {
        self.state().requests_without_serial
    }

    /// Plants a difference in the bills handed out from now on (see [`BillPlant`]).
    pub fn plant(&self, plant: BillPlant) {
        self.state().plants.push(plant);
    }

    /// The ALL bill of `date` as the sandbox would serve it now (plants included): payments by
    /// their success time, refunds by the time they were accepted.
    pub fn bill(&self, date: NaiveDate) -> WechatBill {
        let state = self.state();
        let on_day = |t: &DateTime<FixedOffset>| t.date_naive() == date;
        let time = |t: &DateTime<FixedOffset>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        let mut rows = Vec::new();
        let mut paid: Vec<&SandboxOrder> =
            state.orders.values().filter(|o| o.success_time.as_ref().is_some_and(on_day)).collect();
        paid.sort_by_key(|o| o.success_time);
        let row = |o: &SandboxOrder| WechatBillRow {
            time: o.success_time.as_ref().map(time).unwrap_or_default(),
            appid: self.inner.appid.clone(),
            mchid: self.inner.mchid.clone(),
            transaction_id: o.transaction_id.clone().unwrap_or_default(),
            out_trade_no: o.out_trade_no.clone(),
            openid: o.payer_openid.clone(),
            trade_type: "JSAPI".into(),
            trade_state: "SUCCESS".into(),
            settlement_total: o.amount,
            refund_id: None,
            out_refund_no: None,
            refund: Fen::ZERO,
            refund_status: String::new(),
            description: o.description.clone(),
            fee: i64::try_from(o.amount.get() * 6).unwrap_or(i64::MAX),
            total: o.amount,
            requested_refund: Fen::ZERO,
        };
        rows.extend(paid.into_iter().map(row));
        let mut refunds: Vec<&SandboxRefund> =
            state.refunds.values().filter(|r| r.refund.create_time.as_ref().is_some_and(on_day)).collect();
        refunds.sort_by_key(|r| r.refund.create_time);
        for r in refunds {
            let Some(order) = state.orders.get(&r.refund.out_trade_no) else { continue };
            let refund = r.refund.amount.refund;
            rows.push(WechatBillRow {
                time: r.refund.create_time.as_ref().map(time).unwrap_or_default(),
                trade_state: "REFUND".into(),
                settlement_total: Fen::ZERO,
                refund_id: Some(r.refund.refund_id.clone()),
                out_refund_no: Some(r.refund.out_refund_no.clone()),
                refund,
                refund_status: match r.refund.status {
                    RefundStatus::Success => "SUCCESS",
                    RefundStatus::Processing => "PROCESSING",
                    _ => "CHANGE",
                }
                .into(),
                fee: -i64::try_from(refund.get() * 6).unwrap_or(i64::MAX),
                requested_refund: refund,
                ..row(order)
            });
        }
        for plant in &state.plants {
            match plant {
                BillPlant::Missing { out_trade_no } => rows.retain(|r| &r.out_trade_no != out_trade_no),
                BillPlant::Amount { out_trade_no, amount } => {
                    for r in rows.iter_mut().filter(|r| &r.out_trade_no == out_trade_no && r.trade_state == "SUCCESS") {
                        r.total = *amount;
                        r.settlement_total = *amount;
                        r.fee = i64::try_from(amount.get() * 6).unwrap_or(i64::MAX);
                    }
                }
                BillPlant::Unknown { date: day, out_trade_no, amount } if *day == date => rows.push(WechatBillRow {
                    time: format!("{} 12:00:00", date.format("%Y-%m-%d")),
                    appid: self.inner.appid.clone(),
                    mchid: self.inner.mchid.clone(),
                    transaction_id: format!("4200{}", random_digits(24)),
                    out_trade_no: out_trade_no.clone(),
                    openid: "oSandboxUnknownPayer".into(),
                    trade_type: "JSAPI".into(),
                    trade_state: "SUCCESS".into(),
                    settlement_total: *amount,
                    refund_id: None,
                    out_refund_no: None,
                    refund: Fen::ZERO,
                    refund_status: String::new(),
                    description: "未知交易".into(),
                    fee: i64::try_from(amount.get() * 6).unwrap_or(i64::MAX),
                    total: *amount,
                    requested_refund: Fen::ZERO,
                }),
                BillPlant::Unknown { .. } => {}
            }
        }
        WechatBill { rows }
    }

    /// `/v3/bill/tradebill`: hands out a link to the bill as it is now, with its SHA1.
    fn trade_bill(&self, query: Option<&str>, base: &str) -> Result<(StatusCode, Option<Value>), Refusal> {
        let params: HashMap<String, String> =
            url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        let date = params
            .get("bill_date")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(|| param_error("bill_date 须为 yyyy-MM-DD"))?;
        let today = Utc::now().with_timezone(&beijing()).date_naive();
        // WeChat serves yesterday's bill from 10:00; the sandbox also serves today's so tests
        // need not wait for a day to end.
        if date > today || date < today - chrono::Duration::days(90) {
            return Err(refuse(StatusCode::BAD_REQUEST, code::NO_STATEMENT_EXIST, "账单文件不存在"));
        }
        let gzip = match params.get("tar_type").map(String::as_str) {
            None => false,
            Some("GZIP") => true,
            Some(_) => return Err(param_error("tar_type 仅支持 GZIP")),
        };
        let mut bill = self.bill(date);
        match params.get("bill_type").map(String::as_str).unwrap_or("ALL") {
            "ALL" => {}
            "SUCCESS" => bill.rows.retain(|r| r.trade_state != "REFUND"),
            "REFUND" => bill.rows.retain(|r| r.trade_state == "REFUND"),
            _ => return Err(param_error("bill_type 须为 ALL、SUCCESS 或 REFUND")),
        }
        let csv = bill.to_csv().into_bytes();
        let hash = bill::sha1_hex(&csv);
        let token = sign::nonce();
        let mut state = self.state();
        state.bill_tokens.retain(|_, (_, _, at)| at.elapsed() < BILL_URL_TTL);
        state.bill_tokens.insert(token.clone(), (csv, gzip, Instant::now()));
        Ok((
            StatusCode::OK,
            Some(json!({
                "hash_type": "SHA1",
                "hash_value": hash,
                "download_url": format!("{base}/v3/billdownload/file?token={token}"),
            })),
        ))
    }

    /// Delivery attempts, oldest first (the last 1000).
    pub fn delivery_log(&self) -> Vec<DeliveryAttempt> {
        self.state().deliveries.iter().cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // A panic while holding the lock leaves nothing half-written that matters here.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plays the payer confirming payment in WeChat: the order becomes SUCCESS and a
    /// `TRANSACTION.SUCCESS` notification goes to its notify_url. Needs a Tokio runtime.
    pub fn pay(&self, out_trade_no: &str) -> Result<Transaction, WechatPayError> {
        self.pay_as(out_trade_no, false, true)
    }

    /// Plays a payer whose confirmation crossed the merchant's close: WeChat took the money
    /// although the order was being closed (the race real providers have). The merchant must
    /// give such a second payment back.
    pub fn pay_crossing_close(&self, out_trade_no: &str) -> Result<Transaction, WechatPayError> {
        self.pay_as(out_trade_no, true, true)
    }

    /// Plays a payment whose notification never arrives (WeChat's side lost it): the order is
    /// SUCCESS, in queries and in the bill, and nobody is told. What reconciliation must find.
    pub fn pay_without_notice(&self, out_trade_no: &str) -> Result<Transaction, WechatPayError> {
        self.pay_as(out_trade_no, false, false)
    }

    fn pay_as(&self, out_trade_no: &str, crossing_close: bool, notify: bool) -> Result<Transaction, WechatPayError> {
        // Checked first so an order is never marked paid without its notification.
        tokio::runtime::Handle::try_current()
            .map_err(|_| WechatPayError::Config("the sandbox pays from within a Tokio runtime".into()))?;
        let transaction = {
            let mut state = self.state();
            let order = state
                .orders
                .get_mut(out_trade_no)
                .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::ORDER_NOT_EXIST, "订单不存在"))?;
            match order.trade_state {
                TradeState::NotPay => {}
                TradeState::Closed if crossing_close => {}
                TradeState::Closed => {
                    return Err(refuse(StatusCode::BAD_REQUEST, code::ORDER_CLOSED, "订单已关闭").into())
                }
                _ => return Err(refuse(StatusCode::FORBIDDEN, code::ORDERPAID, "订单已支付").into()),
            }
            if order.time_expire.is_some_and(|t| t < Utc::now()) && !crossing_close {
                return Err(refuse(StatusCode::BAD_REQUEST, code::ORDER_CLOSED, "订单已过期").into());
            }
            order.trade_state = TradeState::Success;
            order.transaction_id = Some(format!("4200{}", random_digits(24)));
            order.success_time = Some(now_beijing());
            (self.transaction(order), order.notify_url.clone())
        };
        let (transaction, notify_url) = transaction;
        tracing::info!(out_trade_no, notify, "sandbox WeChat Pay: order paid");
        if notify {
            self.notify("TRANSACTION.SUCCESS", "支付成功", "transaction", &transaction, notify_url)?;
        }
        Ok(transaction)
    }

    fn transaction(&self, order: &SandboxOrder) -> Transaction {
        let paid = order.success_time.is_some();
        Transaction {
            appid: self.inner.appid.clone(),
            mchid: self.inner.mchid.clone(),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: order.transaction_id.clone(),
            trade_type: paid.then(|| "JSAPI".to_string()),
            trade_state: order.trade_state,
            trade_state_desc: trade_state_desc(order.trade_state).to_string(),
            bank_type: paid.then(|| "OTHERS".to_string()),
            success_time: order.success_time,
            payer: Some(Payer { openid: order.payer_openid.clone() }),
            amount: TransactionAmount {
                total: order.amount,
                payer_total: paid.then_some(order.amount),
                currency: "CNY".into(),
                payer_currency: paid.then(|| "CNY".to_string()),
            },
        }
    }

    /// Builds the encrypted notification and starts delivering it in the background.
    fn notify<T: Serialize>(
        &self,
        event_type: &str,
        summary: &str,
        original_type: &str,
        resource: &T,
        url: String,
    ) -> Result<(), WechatPayError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| WechatPayError::Config("the sandbox notifies from a Tokio runtime".into()))?;
        let plaintext = serde_json::to_vec(resource).map_err(|e| WechatPayError::Config(e.to_string()))?;
        let nonce = sign::resource_nonce();
        // WeChat uses the resource type as associated data.
        let ciphertext =
            sign::encrypt_resource(self.inner.apiv3_key.expose_secret().as_bytes(), &nonce, original_type, &plaintext)
                .map_err(|e| WechatPayError::Config(e.to_string()))?;
        let envelope = NotificationEnvelope {
            id: uuid::Uuid::new_v4().to_string(),
            create_time: now_beijing().to_rfc3339_opts(SecondsFormat::Secs, false),
            resource_type: "encrypt-resource".into(),
            event_type: event_type.into(),
            summary: summary.into(),
            resource: EncryptedResource {
                original_type: original_type.into(),
                algorithm: RESOURCE_ALGORITHM.into(),
                ciphertext,
                associated_data: original_type.into(),
                nonce,
            },
        };
        let body = serde_json::to_vec(&envelope).map_err(|e| WechatPayError::Config(e.to_string()))?;
        let schedule = {
            let mut state = self.state();
            state.notifications_sent += 1;
            state.retry_schedule.clone()
        };
        let sandbox = self.clone();
        runtime.spawn(async move { sandbox.deliver(envelope.id, envelope.event_type, url, body, schedule).await });
        Ok(())
    }

    async fn deliver(&self, id: String, event_type: String, url: String, body: Vec<u8>, schedule: Vec<Duration>) {
        let mut waits = schedule.into_iter();
        for attempt in 1.. {
            // Each delivery is signed afresh: the platform checks the timestamp window.
            let signature = WechatpaySignature::sign(
                &self.inner.platform_key,
                &self.inner.platform_serial_no,
                now_secs(),
                &sign::nonce(),
                &body,
            );
            let mut request = self.inner.http.post(&url).header("Content-Type", "application/json").body(body.clone());
            for (name, value) in signature.headers() {
                request = request.header(name, value);
            }
            let (status, error) = match request.send().await {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(e) => (None, Some(e.without_url().to_string())),
            };
            // WeChat counts only 200 and 204 as received.
            let acknowledged = matches!(status, Some(200 | 204));
            {
                let mut state = self.state();
                if state.deliveries.len() == DELIVERY_LOG_CAPACITY {
                    state.deliveries.pop_front();
                }
                state.deliveries.push_back(DeliveryAttempt {
                    notification_id: id.clone(),
                    event_type: event_type.clone(),
                    url: url.clone(),
                    attempt,
                    status,
                    error: error.clone(),
                    acknowledged,
                    at: Utc::now(),
                });
                if acknowledged {
                    state.notifications_acknowledged += 1;
                }
            }
            if acknowledged {
                tracing::info!(%id, %event_type, attempt, "sandbox WeChat Pay notification delivered");
                return;
            }
            tracing::info!(%id, %event_type, attempt, ?status, ?error, "sandbox WeChat Pay notification not accepted");
            match waits.next() {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    tracing::warn!(%id, %event_type, attempt, "sandbox WeChat Pay gave up delivering a notification");
                    return;
                }
            }
        }
    }

    /// Checks the `Authorization` header as WeChat Pay does: our merchant, our serial, a fresh
    /// timestamp and a signature over exactly this method, path, query and body.
    fn authenticate(
        &self,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let sign_error = |m: &str| refuse(StatusCode::UNAUTHORIZED, code::SIGN_ERROR, m);
        let value = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| sign_error("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"))?;
        let auth = Authorization::parse(value)
            .map_err(|_| sign_error("Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"))?;
        if auth.mchid != self.inner.mchid {
            return Err(refuse(StatusCode::BAD_REQUEST, code::MCH_NOT_EXISTS, "商户号不存在"));
        }
        // `Wechatpay-Serial` names the platform key the merchant verifies with; WeChat signs
        // the answer with it, so a key id it does not have is refused.
        match headers.get(sign::HEADER_SERIAL).map(|v| v.to_str().unwrap_or_default().trim()) {
            Some(serial) if serial != self.inner.platform_serial_no => {
                return Err(param_error("Wechatpay-Serial 与商户的微信支付公钥ID不匹配"));
            }
            Some(_) => {}
            None => self.state().requests_without_serial += 1,
        }
        if auth.serial_no != self.inner.merchant_serial_no {
            return Err(sign_error("商户证书序列号有误。请使用签名私钥匹配的证书序列号"));
        }
        auth.verify(&self.inner.merchant_key, method.as_str(), path_and_query, body, now_secs()).map_err(|e| {
            tracing::info!(reason = %e, "sandbox WeChat Pay refused a request signature");
            sign_error("签名错误，请检查后再试")
        })
    }

    /// A signed answer, as every WeChat Pay answer is.
    fn respond(&self, status: StatusCode, body: Option<&Value>) -> Response {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap_or_default()).unwrap_or_default();
        let signature = WechatpaySignature::sign(
            &self.inner.platform_key,
            &self.inner.platform_serial_no,
            now_secs(),
            &sign::nonce(),
            &bytes,
        );
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        for (name, value) in signature.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
        if body.is_some() {
            headers.insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
        }
        headers.insert("request-id", HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).expect("uuid is ASCII"));
        response
    }

    fn answer(&self, result: Result<(StatusCode, Option<Value>), Refusal>) -> Response {
        match result {
            Ok((status, body)) => self.respond(status, body.as_ref()),
            Err(r) => {
                tracing::info!(status = r.status.as_u16(), code = r.code, message = %r.message, "sandbox WeChat Pay refused");
                self.respond(r.status, Some(&json!({ "code": r.code, "message": r.message })))
            }
        }
    }

    fn parse_body(body: &[u8]) -> Result<Value, Refusal> {
        serde_json::from_slice::<Value>(body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| param_error("请求体不是有效的JSON对象"))
    }

    fn check_mchid(&self, body: &Value) -> Result<(), Refusal> {
        if str_field(body, "mchid")? != self.inner.mchid {
            return Err(refuse(StatusCode::BAD_REQUEST, code::APPID_MCHID_NOT_MATCH, "mchid与请求方不一致"));
        }
        Ok(())
    }

    fn jsapi(&self, body: &Value) -> Result<(StatusCode, Option<Value>), Refusal> {
        if str_field(body, "appid")? != self.inner.appid {
            return Err(refuse(StatusCode::BAD_REQUEST, code::APPID_MCHID_NOT_MATCH, "appid和mch_id不匹配"));
        }
        self.check_mchid(body)?;
        let description = str_field(body, "description")?;
        if description.len() > 127 {
            return Err(param_error("description 长度超过127字节"));
        }
        let out_trade_no = str_field(body, "out_trade_no")?;
        if !valid_no(out_trade_no, 6..=32, b"_-|*") {
            return Err(param_error("out_trade_no 须为6-32位数字、字母或_-|*"));
        }
        let notify_url = str_field(body, "notify_url")?;
        check_notify_url(notify_url)?;
        let amount = body.get("amount").filter(|a| a.is_object()).ok_or_else(|| param_error("amount 为必填项"))?;
        let total = fen_field(amount, "total")?;
        check_currency(amount)?;
        let openid = body
            .get("payer")
            .map(|p| str_field(p, "openid"))
            .ok_or_else(|| param_error("payer 为必填项"))??
            .to_string();
        let time_expire = match body.get("time_expire") {
            None => None,
            Some(v) => Some(
                v.as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .ok_or_else(|| param_error("time_expire 须为 RFC3339 格式，如 2018-06-08T10:34:56+08:00"))?,
            ),
        };
        if time_expire.is_some_and(|t| t < Utc::now()) {
            return Err(refuse(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, "time_expire 已过期"));
        }

        let mut state = self.state();
        if let Some(existing) = state.orders.get(out_trade_no) {
            // Re-placing an unpaid order with identical content is WeChat's documented retry:
            // the same prepay_id comes back.
            let same = existing.description == description
                && existing.amount == total
                && existing.payer_openid == openid
                && existing.notify_url == notify_url;
            return match existing.trade_state {
                TradeState::Closed => Err(refuse(StatusCode::BAD_REQUEST, code::ORDER_CLOSED, "订单已关闭")),
                TradeState::NotPay if same => Ok((StatusCode::OK, Some(json!({ "prepay_id": existing.prepay_id })))),
                TradeState::NotPay => Err(refuse(StatusCode::FORBIDDEN, code::OUT_TRADE_NO_USED, "商户订单号重复")),
                _ => Err(refuse(StatusCode::FORBIDDEN, code::ORDERPAID, "订单已支付")),
            };
        }
        if state.orders.len() >= MAX_ORDERS {
            return Err(refuse(StatusCode::TOO_MANY_REQUESTS, code::FREQUENCY_LIMITED, "沙箱订单数已达上限"));
        }
        let prepay_id = format!("wx{}{}", Utc::now().with_timezone(&beijing()).format("%d%H%M%S"), random_digits(24));
        state.orders.insert(
            out_trade_no.to_string(),
            SandboxOrder {
                out_trade_no: out_trade_no.to_string(),
                description: description.to_string(),
                amount: total,
                payer_openid: openid,
                notify_url: notify_url.to_string(),
                time_expire,
                prepay_id: prepay_id.clone(),
                trade_state: TradeState::NotPay,
                transaction_id: None,
                success_time: None,
                refunded: Fen::ZERO,
            },
        );
        tracing::info!(out_trade_no, amount = total.get(), "sandbox WeChat Pay: order placed");
        Ok((StatusCode::OK, Some(json!({ "prepay_id": prepay_id }))))
    }

    fn query(&self, out_trade_no: &str, query: Option<&str>) -> Result<(StatusCode, Option<Value>), Refusal> {
        let mchid = query
            .unwrap_or_default()
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "mchid")
            .map(|(_, v)| v)
            .ok_or_else(|| param_error("mchid 为必填项"))?;
        if mchid != self.inner.mchid {
            return Err(refuse(StatusCode::BAD_REQUEST, code::APPID_MCHID_NOT_MATCH, "mchid与请求方不一致"));
        }
        let state = self.state();
        let order = state
            .orders
            .get(out_trade_no)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::ORDER_NOT_EXIST, "订单不存在"))?;
        let transaction = serde_json::to_value(self.transaction(order)).unwrap_or_default();
        Ok((StatusCode::OK, Some(transaction)))
    }

    /// `/v3/pay/transactions/id/{transaction_id}`: paid orders only have one.
    fn query_by_id(&self, transaction_id: &str, query: Option<&str>) -> Result<(StatusCode, Option<Value>), Refusal> {
        let out_trade_no = {
            let state = self.state();
            state
                .orders
                .values()
                .find(|o| o.transaction_id.as_deref() == Some(transaction_id))
                .map(|o| o.out_trade_no.clone())
                .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::ORDER_NOT_EXIST, "订单不存在"))?
        };
        self.query(&out_trade_no, query)
    }

    fn close(&self, out_trade_no: &str, body: &Value) -> Result<(StatusCode, Option<Value>), Refusal> {
        self.check_mchid(body)?;
        let mut state = self.state();
        let order = state
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::ORDER_NOT_EXIST, "订单不存在"))?;
        match order.trade_state {
            TradeState::NotPay | TradeState::Closed => {
                order.trade_state = TradeState::Closed;
                tracing::info!(out_trade_no, "sandbox WeChat Pay: order closed");
                Ok((StatusCode::NO_CONTENT, None))
            }
            _ => Err(refuse(StatusCode::BAD_REQUEST, code::ORDERPAID, "订单已支付，不能关闭")),
        }
    }

    fn create_refund(&self, body: &Value) -> Result<(StatusCode, Option<Value>), Refusal> {
        // Either number names the order; WeChat prefers transaction_id when both are given.
        let by_transaction = body.get("transaction_id").and_then(Value::as_str).filter(|v| !v.is_empty());
        let resolved;
        let out_trade_no = match by_transaction {
            Some(id) => {
                let state = self.state();
                resolved = state
                    .orders
                    .values()
                    .find(|o| o.transaction_id.as_deref() == Some(id))
                    .map(|o| o.out_trade_no.clone())
                    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::RESOURCE_NOT_EXISTS, "订单不存在"))?;
                resolved.as_str()
            }
            None => str_field(body, "out_trade_no")?,
        };
        let out_refund_no = str_field(body, "out_refund_no")?;
        if !valid_no(out_refund_no, 1..=64, b"_-|*@") {
            return Err(param_error("out_refund_no 须为1-64位数字、字母或_-|*@"));
        }
        if let Some(reason) = body.get("reason") {
            if reason.as_str().is_none_or(|r| r.len() > 80) {
                return Err(param_error("reason 不超过80字节"));
            }
        }
        let notify_url = match body.get("notify_url") {
            None => None,
            Some(v) => {
                let url = v.as_str().ok_or_else(|| param_error("notify_url 格式错误"))?;
                check_notify_url(url)?;
                Some(url.to_string())
            }
        };
        let amount = body.get("amount").filter(|a| a.is_object()).ok_or_else(|| param_error("amount 为必填项"))?;
        let refund_amount = fen_field(amount, "refund")?;
        let total = fen_field(amount, "total")?;
        check_currency(amount)?;

        let mut state = self.state();
        if let Some(existing) = state.refunds.get(out_refund_no) {
            let r = &existing.refund;
            return if r.out_trade_no == out_trade_no && r.amount.refund == refund_amount {
                Ok((StatusCode::OK, Some(serde_json::to_value(r).unwrap_or_default())))
            } else {
                Err(refuse(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, "退款单号重复，且与原请求参数不一致"))
            };
        }
        let order = state
            .orders
            .get_mut(out_trade_no)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::RESOURCE_NOT_EXISTS, "订单不存在"))?;
        if !matches!(order.trade_state, TradeState::Success | TradeState::Refund) {
            return Err(refuse(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, "订单未支付，不能退款"));
        }
        if total != order.amount {
            return Err(param_error("订单金额与原订单金额不一致"));
        }
        let refundable = order.amount.checked_sub(order.refunded).unwrap_or(Fen::ZERO);
        if refund_amount > refundable {
            return Err(refuse(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, "申请退款金额超过订单可退金额"));
        }
        order.refunded = order.refunded.checked_add(refund_amount).unwrap_or(order.amount);
        let refund = Refund {
            refund_id: format!("5030{}", random_digits(25)),
            out_refund_no: out_refund_no.to_string(),
            transaction_id: order.transaction_id.clone().unwrap_or_default(),
            out_trade_no: out_trade_no.to_string(),
            channel: Some("ORIGINAL".into()),
            user_received_account: Some("支付用户零钱".into()),
            status: RefundStatus::Processing,
            funds_account: Some("AVAILABLE".into()),
            create_time: Some(now_beijing()),
            success_time: None,
            amount: RefundAmount {
                total,
                refund: refund_amount,
                payer_total: Some(total),
                payer_refund: Some(refund_amount),
                settlement_refund: Some(refund_amount),
                settlement_total: Some(total),
                discount_refund: Some(Fen::ZERO),
                refund_fee: Some(Fen::new(fee_fen(refund_amount))),
                from: Vec::new(),
                currency: "CNY".into(),
            },
            promotion_detail: Vec::new(),
        };
        let notify_url = notify_url.unwrap_or_else(|| order.notify_url.clone());
        state.refunds.insert(out_refund_no.to_string(), SandboxRefund { refund: refund.clone(), notify_url });
        let delay = state.refund_delay;
        drop(state);

        tracing::info!(out_refund_no, refund = refund_amount.get(), "sandbox WeChat Pay: refund accepted");
        let sandbox = self.clone();
        let id = out_refund_no.to_string();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            sandbox.complete_refund(&id);
        });
        Ok((StatusCode::OK, Some(serde_json::to_value(&refund).unwrap_or_default())))
    }

    /// The bank side finished: the refund succeeds and the platform is told.
    fn complete_refund(&self, out_refund_no: &str) {
        let (notice, url) = {
            let mut state = self.state();
            let Some(entry) = state.refunds.get_mut(out_refund_no) else { return };
            entry.refund.status = RefundStatus::Success;
            entry.refund.success_time = Some(now_beijing());
            let r = entry.refund.clone();
            let url = entry.notify_url.clone();
            if let Some(order) = state.orders.get_mut(&r.out_trade_no) {
                order.trade_state = TradeState::Refund;
            }
            let notice = RefundNotice {
                mchid: self.inner.mchid.clone(),
                out_trade_no: r.out_trade_no,
                transaction_id: r.transaction_id,
                out_refund_no: r.out_refund_no,
                refund_id: r.refund_id,
                refund_status: RefundStatus::Success,
                success_time: r.success_time,
                user_received_account: r.user_received_account,
                amount: r.amount,
            };
            (notice, url)
        };
        if let Err(e) = self.notify("REFUND.SUCCESS", "退款成功", "refund", &notice, url) {
            tracing::warn!(error = %e, out_refund_no, "sandbox WeChat Pay could not send a refund notification");
        }
    }

    fn get_refund(&self, out_refund_no: &str) -> Result<(StatusCode, Option<Value>), Refusal> {
        let state = self.state();
        let entry = state
            .refunds
            .get(out_refund_no)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, code::RESOURCE_NOT_EXISTS, "退款单不存在"))?;
        Ok((StatusCode::OK, Some(serde_json::to_value(&entry.refund).unwrap_or_default())))
    }
}

/// The WeChat Pay v3 paths the client uses, plus `/sandbox/pay/{out_trade_no}` (GET: a page
/// with a 支付 button; POST: pay). Mount at the root or under a prefix given to the client as
/// `base_url`.
pub fn sandbox_router(sandbox: WechatPaySandbox) -> Router {
    Router::new()
        .route("/v3/pay/transactions/jsapi", post(jsapi))
        .route("/v3/pay/transactions/out-trade-no/{out_trade_no}", get(query_order))
        .route("/v3/pay/transactions/id/{transaction_id}", get(query_by_id))
        .route("/v3/bill/tradebill", get(trade_bill))
        .route("/v3/billdownload/file", get(download_bill))
        .route("/v3/pay/transactions/out-trade-no/{out_trade_no}/close", post(close_order))
        .route("/v3/refund/domestic/refunds", post(refund))
        .route("/v3/refund/domestic/refunds/{out_refund_no}", get(query_refund))
        .route("/sandbox/pay/{out_trade_no}", get(pay_page).post(pay_now))
        .with_state(sandbox)
}

/// A request whose WeChat Pay v3 signature checked out (mchid, serial, fresh timestamp, a
/// signature over exactly this method, path with query, and body): every v3 endpoint takes one,
/// so no handler can forget to authenticate. A refusal is WeChat Pay's own signed error answer.
struct Signed {
    body: Bytes,
    query: Option<String>,
}

impl FromRequest<WechatPaySandbox> for Signed {
    type Rejection = Response;

    async fn from_request(req: Request, sandbox: &WechatPaySandbox) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        // Nested under a prefix, the client signed the full path: use the original URI.
        let uri = parts.extensions.get::<OriginalUri>().map(|u| u.0.clone()).unwrap_or_else(|| parts.uri.clone());
        let path = uri.path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| uri.path().to_string());
        let body = axum::body::to_bytes(body, 1 << 20)
            .await
            .map_err(|_| sandbox.answer(Err(param_error("请求体无法读取"))))?;
        sandbox.authenticate(&parts.method, &path, &parts.headers, &body).map_err(|r| sandbox.answer(Err(r)))?;
        Ok(Signed { body, query: uri.query().map(str::to_string) })
    }
}

async fn jsapi(State(sandbox): State<WechatPaySandbox>, signed: Signed) -> Response {
    sandbox.answer(WechatPaySandbox::parse_body(&signed.body).and_then(|body| sandbox.jsapi(&body)))
}

async fn query_order(
    State(sandbox): State<WechatPaySandbox>,
    Path(out_trade_no): Path<String>,
    signed: Signed,
) -> Response {
    sandbox.answer(sandbox.query(&out_trade_no, signed.query.as_deref()))
}

async fn query_by_id(
    State(sandbox): State<WechatPaySandbox>,
    Path(transaction_id): Path<String>,
    signed: Signed,
) -> Response {
    sandbox.answer(sandbox.query_by_id(&transaction_id, signed.query.as_deref()))
}

async fn trade_bill(
    State(sandbox): State<WechatPaySandbox>,
    uri: OriginalUri,
    headers: HeaderMap,
    signed: Signed,
) -> Response {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let prefix = uri.0.path().strip_suffix("/v3/bill/tradebill").unwrap_or_default();
    sandbox.answer(sandbox.trade_bill(signed.query.as_deref(), &format!("http://{host}{prefix}")))
}

/// The bill itself: a signed request, an unsigned answer (as WeChat's), the hash vouching for it.
async fn download_bill(State(sandbox): State<WechatPaySandbox>, signed: Signed) -> Response {
    let token = url::form_urlencoded::parse(signed.query.as_deref().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let found = {
        let state = sandbox.state();
        state
            .bill_tokens
            .get(&token)
            .filter(|(_, _, at)| at.elapsed() < BILL_URL_TTL)
            .map(|(csv, gz, _)| (csv.clone(), *gz))
    };
    let Some((csv, gzip)) = found else {
        return sandbox.answer(Err(refuse(StatusCode::NOT_FOUND, code::RESOURCE_NOT_EXISTS, "下载链接不存在或已过期")));
    };
    let bytes = if gzip {
        match bill::gzip(&csv) {
            Ok(b) => b,
            Err(e) => {
                return sandbox.answer(Err(refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    code::SYSTEM_ERROR,
                    e.to_string(),
                )))
            }
        }
    } else {
        csv
    };
    ([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

async fn close_order(
    State(sandbox): State<WechatPaySandbox>,
    Path(out_trade_no): Path<String>,
    signed: Signed,
) -> Response {
    sandbox.answer(WechatPaySandbox::parse_body(&signed.body).and_then(|body| sandbox.close(&out_trade_no, &body)))
}

async fn refund(State(sandbox): State<WechatPaySandbox>, signed: Signed) -> Response {
    sandbox.answer(WechatPaySandbox::parse_body(&signed.body).and_then(|body| sandbox.create_refund(&body)))
}

async fn query_refund(
    State(sandbox): State<WechatPaySandbox>,
    Path(out_refund_no): Path<String>,
    _signed: Signed,
) -> Response {
    sandbox.answer(sandbox.get_refund(&out_refund_no))
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title></head>\
<body style=\"font-family:sans-serif;max-width:28rem;margin:2rem auto\"><h1>{title}</h1>{body}\
<p><small>微信支付沙箱：不会产生真实扣款。</small></p></body></html>",
        title = escape_html(title)
    )
}

async fn pay_page(State(sandbox): State<WechatPaySandbox>, Path(out_trade_no): Path<String>) -> Response {
    let Some(order) = sandbox.order(&out_trade_no) else {
        return (StatusCode::NOT_FOUND, Html(page("订单不存在", ""))).into_response();
    };
    let button = if order.trade_state == TradeState::NotPay {
        // An empty action posts back to this same URL, prefix and all.
        "<form method=\"post\" action=\"\"><button type=\"submit\" style=\"font-size:1.2rem\">支付</button></form>"
    } else {
        ""
    };
    let body = format!(
        "<dl><dt>商品</dt><dd>{}</dd><dt>订单号</dt><dd>{}</dd><dt>金额</dt><dd>{}</dd><dt>状态</dt><dd>{}</dd></dl>{button}",
        escape_html(&order.description),
        escape_html(&order.out_trade_no),
        escape_html(&order.amount.to_string()),
        trade_state_desc(order.trade_state),
    );
    Html(page("微信支付（沙箱）", &body)).into_response()
}

/// `?crossing_close=1`: the payer's confirmation crossed the merchant's close (see
/// `pay_crossing_close`).
async fn pay_now(
    State(sandbox): State<WechatPaySandbox>,
    Path(out_trade_no): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let crossing = query.as_deref() == Some("crossing_close=1");
    match sandbox.pay_as(&out_trade_no, crossing, true) {
        Ok(t) => {
            let body = format!(
                "<p>已支付 {}，订单号 {}。</p>",
                escape_html(&t.amount.total.to_string()),
                escape_html(&t.out_trade_no)
            );
            Html(page("支付成功", &body)).into_response()
        }
        Err(WechatPayError::Api { status, message, .. }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, Html(page("支付失败", &format!("<p>{}</p>", escape_html(&message))))).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Html(page("支付失败", &escape_html(&e.to_string())))).into_response()
        }
    }
}
