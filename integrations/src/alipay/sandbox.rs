//! `AlipaySandbox`: a local stand-in for Alipay's `gateway.do` with its own key. It checks every
//! request as Alipay does (app_id, RSA2 signature over the sorted parameters, timestamp, charset,
//! version), keeps trades and refunds in memory, signs every answer, delivers signed
//! notifications to `notify_url` until they are answered `success` (on Alipay's retry schedule),
//! and serves each day's trade bill through `alipay.data.dataservice.bill.downloadurl.query`,
//! with differences tests can plant. The payer is played by `/sandbox/pay/{out_trade_no}` (a
//! page with a 支付 button) or [`AlipaySandbox::pay`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use hospital_domain::Fen;
use rand::distributions::Alphanumeric;
use rand::Rng;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::bill::{AlipayBill, AlipayBillKind, AlipayBillRow};
use super::client::decode_form;
use super::{beijing, code, format_time, parse_time, sign, sub_code, test_keys, AlipayError, TradeStatus};
use crate::bill::BillPlant;
use crate::yuan::{fen_to_yuan, parse_yuan};

/// Alipay's documented notification schedule: after the first delivery, again at 4m, 10m, 10m,
/// 1h, 2h, 6h and 15h (8 deliveries within about 25 hours).
pub const DEFAULT_RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(4 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(15 * 3600),
];
/// Requests whose `timestamp` is further than this from the sandbox clock are refused.
const MAX_CLOCK_SKEW_SECS: i64 = 10 * 60;
/// `bill_download_url` lives this long, as Alipay's does.
const BILL_URL_TTL: Duration = Duration::from_secs(30);
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
const DELIVERY_LOG_CAPACITY: usize = 1000;
const MAX_TRADES: usize = 100_000;
/// The sandbox's payer when a page (wap) trade names none.
const SANDBOX_BUYER_ID: &str = "2088102177846880";

/// What the sandbox plays Alipay with: the app half must match the client's config, the key is
/// the sandbox's own (its public half is the client's `alipay_public_key`).
#[derive(Clone)]
pub struct AlipaySandboxConfig {
    pub app_id: String,
    /// The app's public key: verifies request signatures.
    pub app_public_key: String,
    /// Signs answers and notifications ("Alipay's" key).
    pub alipay_private_key: SecretString,
    /// The merchant's PID (`2088...`): `seller_id` in notifications and the bill's account.
    pub seller_id: String,
}

impl fmt::Debug for AlipaySandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipaySandboxConfig")
            .field("app_id", &self.app_id)
            .field("seller_id", &self.seller_id)
            .finish_non_exhaustive()
    }
}

impl AlipaySandboxConfig {
    /// A sandbox using the published TEST keys of [`test_keys`].
    pub fn with_test_keys(app_id: impl Into<String>, seller_id: impl Into<String>) -> Self {
        Self {
            app_id: app_id.into(),
            app_public_key: test_keys::APP_PUBLIC_KEY_PEM.into(),
            alipay_private_key: SecretString::from(test_keys::ALIPAY_PRIVATE_KEY_PEM),
            seller_id: seller_id.into(),
        }
    }
}

/// A trade as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxTrade {
    pub out_trade_no: String,
    pub trade_no: String,
    pub subject: String,
    pub amount: Fen,
    pub product_code: String,
    pub buyer_id: Option<String>,
    pub buyer_open_id: Option<String>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub status: TradeStatus,
    pub created_at: DateTime<FixedOffset>,
    pub paid_at: Option<DateTime<FixedOffset>>,
    pub closed_at: Option<DateTime<FixedOffset>>,
    pub time_expire: Option<DateTime<FixedOffset>>,
    pub refunded: Fen,
}

#[derive(Debug, Clone)]
struct SandboxRefund {
    out_trade_no: String,
    out_request_no: String,
    amount: Fen,
    at: DateTime<FixedOffset>,
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryAttempt {
    pub notify_id: String,
    pub out_trade_no: String,
    pub url: String,
    /// 1 for the first delivery.
    pub attempt: u32,
    pub status: Option<u16>,
    /// The first bytes of what the platform answered.
    pub answer: Option<String>,
    pub error: Option<String>,
    /// Answered HTTP 200 with the body `success`.
    pub acknowledged: bool,
    pub at: DateTime<Utc>,
}

/// The sandbox's shared state; clones share everything.
#[derive(Clone)]
pub struct AlipaySandbox {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    seller_id: String,
    app_key: RsaPublicKey,
    alipay_key: RsaPrivateKey,
    http: reqwest::Client,
    state: Mutex<SandboxState>,
}

struct SandboxState {
    trades: HashMap<String, SandboxTrade>,
    refunds: Vec<SandboxRefund>,
    bill_tokens: HashMap<String, (NaiveDate, Instant)>,
    plants: Vec<BillPlant>,
    deliveries: VecDeque<DeliveryAttempt>,
    notifications_sent: usize,
    notifications_acknowledged: usize,
    retry_schedule: Vec<Duration>,
}

impl fmt::Debug for AlipaySandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipaySandbox").field("app_id", &self.inner.app_id).finish_non_exhaustive()
    }
}

/// A refusal in Alipay's shape.
#[derive(Debug, Clone)]
struct Refusal {
    code: &'static str,
    msg: &'static str,
    sub_code: &'static str,
    sub_msg: String,
}

fn business(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
    Refusal { code: code::BUSINESS_FAILED, msg: "Business Failed", sub_code, sub_msg: sub_msg.into() }
}

fn invalid(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
    Refusal { code: code::INVALID_PARAMETER, msg: "Invalid Arguments", sub_code, sub_msg: sub_msg.into() }
}

fn missing(sub_code: &'static str, sub_msg: impl Into<String>) -> Refusal {
    Refusal { code: code::MISSING_PARAMETER, msg: "Missing Required Arguments", sub_code, sub_msg: sub_msg.into() }
}

fn bad_param(sub_msg: impl Into<String>) -> Refusal {
    business(sub_code::INVALID_PARAMETER, sub_msg)
}

impl From<Refusal> for AlipayError {
    fn from(r: Refusal) -> Self {
        AlipayError::Api {
            code: r.code.into(),
            msg: r.msg.into(),
            sub_code: r.sub_code.into(),
            sub_msg: r.sub_msg,
            signed: true,
        }
    }
}

type Answer = Result<Map<String, Value>, Refusal>;

const METHODS: [&str; 8] = [
    "alipay.trade.create",
    "alipay.trade.wap.pay",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.data.dataservice.bill.downloadurl.query",
    "alipay.trade.page.pay",
];

fn now_beijing() -> DateTime<FixedOffset> {
    // Whole seconds, as Alipay reports times.
    parse_time(&format_time(Utc::now())).unwrap_or_else(|| Utc::now().with_timezone(&beijing()))
}

fn random_alnum(n: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

fn valid_no(v: &str) -> bool {
    (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn biz_str<'a>(biz: &'a Value, name: &str) -> Option<&'a str> {
    biz.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn biz_amount(biz: &Value, name: &str) -> Result<Fen, Refusal> {
    let raw = biz_str(biz, name).ok_or_else(|| bad_param(format!("{name}不能为空")))?;
    parse_yuan(raw)
        .filter(|f| (1..=10_000_000_000).contains(&f.get()))
        .ok_or_else(|| bad_param(format!("{name}格式错误：须为0.01~100000000之间、最多两位小数的金额")))
}

fn mask(buyer: &str) -> String {
    let tail: String = buyer.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("***{tail}")
}

/// 0.6% of `amount`, rounded half up: the sandbox's fee rate.
fn fee(amount: Fen) -> i64 {
    let fen = i64::from(amount);
    (fen * 6 + 500) / 1000
}

impl AlipaySandbox {
    pub fn new(config: AlipaySandboxConfig) -> Result<Self, AlipayError> {
        let cfg = |m: String| AlipayError::Config(m);
        let app_key =
            sign::parse_public_key(&config.app_public_key).map_err(|e| cfg(format!("app_public_key: {e}")))?;
        let alipay_key = sign::parse_private_key(config.alipay_private_key.expose_secret())
            .map_err(|e| cfg(format!("alipay_private_key: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(NOTIFY_TIMEOUT)
            .timeout(NOTIFY_TIMEOUT)
            .user_agent("Mozilla/4.0 (Alipay sandbox notifier)")
            .build()
            .map_err(|e| cfg(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                app_id: config.app_id,
                seller_id: config.seller_id,
                app_key,
                alipay_key,
                http,
                state: Mutex::new(SandboxState {
                    trades: HashMap::new(),
                    refunds: Vec::new(),
                    bill_tokens: HashMap::new(),
                    plants: Vec::new(),
                    deliveries: VecDeque::new(),
                    notifications_sent: 0,
                    notifications_acknowledged: 0,
                    retry_schedule: DEFAULT_RETRY_SCHEDULE.to_vec(),
                }),
            }),
        })
    }

    /// Waits between delivery attempts (the first is immediate). Tests use milliseconds.
    pub fn with_retry_schedule(self, schedule: Vec<Duration>) -> Self {
        self.state().retry_schedule = schedule;
        self
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn trade(&self, out_trade_no: &str) -> Option<SandboxTrade> {
        self.state().trades.get(out_trade_no).cloned()
    }

    /// Notifications created (each once, however often delivered).
    pub fn notifications_sent(&self) -> usize {
        self.state().notifications_sent
    }

    /// Notifications the platform answered `success` to.
    pub fn notifications_acknowledged(&self) -> usize {
        self.state().notifications_acknowledged
    }

    pub fn delivery_log(&self) -> Vec<DeliveryAttempt> {
        self.state().deliveries.iter().cloned().collect()
    }

    /// Plants a difference in the bills served from now on (see [`BillPlant`]).
    pub fn plant(&self, plant: BillPlant) {
        self.state().plants.push(plant);
    }

    /// Plays the payer paying in Alipay: the trade becomes TRADE_SUCCESS and a notification
    /// goes to its notify_url. Needs a Tokio runtime.
    pub fn pay(&self, out_trade_no: &str) -> Result<SandboxTrade, AlipayError> {
        self.pay_and_notify(out_trade_no, true)
    }

    /// Plays a payment whose notification never arrives: paid in queries and in the bill, and
    /// nobody is told. What reconciliation must find.
    pub fn pay_without_notice(&self, out_trade_no: &str) -> Result<SandboxTrade, AlipayError> {
        self.pay_and_notify(out_trade_no, false)
    }

    fn pay_and_notify(&self, out_trade_no: &str, notify: bool) -> Result<SandboxTrade, AlipayError> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| AlipayError::Config("the sandbox pays from within a Tokio runtime".into()))?;
        let trade = {
            let mut state = self.state();
            let trade =
                state.trades.get_mut(out_trade_no).ok_or_else(|| business(sub_code::TRADE_NOT_EXIST, "交易不存在"))?;
            match trade.status {
                TradeStatus::WaitBuyerPay => {}
                TradeStatus::TradeClosed => return Err(business(sub_code::TRADE_HAS_CLOSE, "交易已关闭").into()),
                _ => return Err(business(sub_code::TRADE_HAS_SUCCESS, "交易已被支付").into()),
            }
            if trade.time_expire.is_some_and(|t| t < Utc::now()) {
                trade.status = TradeStatus::TradeClosed;
                trade.closed_at = Some(now_beijing());
                return Err(business(sub_code::TRADE_HAS_CLOSE, "交易已超时关闭").into());
            }
            trade.status = TradeStatus::TradeSuccess;
            trade.paid_at = Some(now_beijing());
            if trade.buyer_id.is_none() && trade.buyer_open_id.is_none() {
                trade.buyer_id = Some(SANDBOX_BUYER_ID.into());
            }
            trade.clone()
        };
        tracing::info!(out_trade_no, notify, "sandbox Alipay: trade paid");
        if notify {
            self.notify(&trade, None);
        }
        Ok(trade)
    }

    /// The bill of `date` as the sandbox would serve it now (planted differences included).
    pub fn bill(&self, date: NaiveDate) -> AlipayBill {
        let state = self.state();
        let on_day = |t: &DateTime<FixedOffset>| t.date_naive() == date;
        let mut rows = Vec::new();
        let mut trades: Vec<&SandboxTrade> =
            state.trades.values().filter(|t| t.paid_at.as_ref().is_some_and(on_day)).collect();
        trades.sort_by_key(|t| t.paid_at);
        for t in trades {
            rows.push(AlipayBillRow {
                trade_no: t.trade_no.clone(),
                out_trade_no: t.out_trade_no.clone(),
                kind: AlipayBillKind::Trade,
                subject: t.subject.clone(),
                created_at: t.created_at.format(sign::TIME_FORMAT).to_string(),
                finished_at: t.paid_at.map(|p| p.format(sign::TIME_FORMAT).to_string()).unwrap_or_default(),
                counterparty: mask(t.buyer_id.as_deref().or(t.buyer_open_id.as_deref()).unwrap_or_default()),
                order_amount: i64::from(t.amount),
                received: i64::from(t.amount),
                refund_request_no: None,
                service_fee: -fee(t.amount),
            });
        }
        for r in state.refunds.iter().filter(|r| on_day(&r.at)) {
            let Some(t) = state.trades.get(&r.out_trade_no) else { continue };
            rows.push(AlipayBillRow {
                trade_no: t.trade_no.clone(),
                out_trade_no: t.out_trade_no.clone(),
                kind: AlipayBillKind::Refund,
                subject: t.subject.clone(),
                created_at: t.created_at.format(sign::TIME_FORMAT).to_string(),
                finished_at: r.at.format(sign::TIME_FORMAT).to_string(),
                counterparty: mask(t.buyer_id.as_deref().or(t.buyer_open_id.as_deref()).unwrap_or_default()),
                order_amount: i64::from(t.amount),
                received: -i64::from(r.amount),
                refund_request_no: Some(r.out_request_no.clone()),
                service_fee: fee(r.amount),
            });
        }
        for plant in &state.plants {
            match plant {
                BillPlant::Missing { out_trade_no } => rows.retain(|r| &r.out_trade_no != out_trade_no),
                BillPlant::Amount { out_trade_no, amount } => {
                    for r in
                        rows.iter_mut().filter(|r| &r.out_trade_no == out_trade_no && r.kind == AlipayBillKind::Trade)
                    {
                        r.order_amount = i64::from(*amount);
                        r.received = i64::from(*amount);
                        r.service_fee = -fee(*amount);
                    }
                }
                BillPlant::Unknown { date: day, out_trade_no, amount } if *day == date => {
                    let at = format!("{} 12:00:00", date.format("%Y-%m-%d"));
                    rows.push(AlipayBillRow {
                        trade_no: format!("{}22001{}", date.format("%Y%m%d"), random_digits(15)),
                        out_trade_no: out_trade_no.clone(),
                        kind: AlipayBillKind::Trade,
                        subject: "未知交易".into(),
                        created_at: at.clone(),
                        finished_at: at,
                        counterparty: mask(SANDBOX_BUYER_ID),
                        order_amount: i64::from(*amount),
                        received: i64::from(*amount),
                        refund_request_no: None,
                        service_fee: -fee(*amount),
                    });
                }
                BillPlant::Unknown { .. } => {}
            }
        }
        AlipayBill { account: self.inner.seller_id.clone(), date, rows }
    }

    /// Builds, signs and starts delivering the notification of `trade` (a refund when
    /// `refund` is given).
    fn notify(&self, trade: &SandboxTrade, refund: Option<&SandboxRefund>) {
        let Some(url) = trade.notify_url.clone() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let now = format_time(Utc::now());
        let paid = trade.paid_at.map(|t| t.format(sign::TIME_FORMAT).to_string()).unwrap_or_default();
        let amount = fen_to_yuan(trade.amount);
        let mut params: Vec<(String, String)> = vec![
            ("notify_time".into(), now),
            ("notify_type".into(), "trade_status_sync".into()),
            ("notify_id".into(), random_alnum(34)),
            ("app_id".into(), self.inner.app_id.clone()),
            ("auth_app_id".into(), self.inner.app_id.clone()),
            ("charset".into(), sign::CHARSET.into()),
            ("version".into(), sign::VERSION.into()),
            ("sign_type".into(), sign::SIGN_TYPE.into()),
            ("trade_no".into(), trade.trade_no.clone()),
            ("out_trade_no".into(), trade.out_trade_no.clone()),
            ("seller_id".into(), self.inner.seller_id.clone()),
            ("trade_status".into(), trade.status.as_str().into()),
            ("total_amount".into(), amount.clone()),
            ("receipt_amount".into(), amount.clone()),
            ("invoice_amount".into(), amount.clone()),
            ("buyer_pay_amount".into(), amount.clone()),
            ("point_amount".into(), "0.00".into()),
            ("subject".into(), trade.subject.clone()),
            ("gmt_create".into(), trade.created_at.format(sign::TIME_FORMAT).to_string()),
            ("gmt_payment".into(), paid),
            ("fund_bill_list".into(), json!([{ "amount": amount, "fundChannel": "ALIPAYACCOUNT" }]).to_string()),
        ];
        if let Some(id) = &trade.buyer_id {
            params.push(("buyer_id".into(), id.clone()));
        }
        if let Some(id) = &trade.buyer_open_id {
            params.push(("buyer_open_id".into(), id.clone()));
        }
        if let Some(r) = refund {
            params.push(("out_biz_no".into(), r.out_request_no.clone()));
            params.push(("refund_fee".into(), fen_to_yuan(trade.refunded)));
            params.push(("gmt_refund".into(), format!("{}.000", r.at.format(sign::TIME_FORMAT))));
        }
        if let Some(closed) = trade.closed_at {
            params.push(("gmt_close".into(), closed.format(sign::TIME_FORMAT).to_string()));
        }
        let content = sign::notification_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let Ok(content) = content else { return };
        params.push(("sign".into(), sign::sign_rsa2(&self.inner.alipay_key, &content)));
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
        let notify_id = params[2].1.clone();
        let schedule = {
            let mut state = self.state();
            state.notifications_sent += 1;
            state.retry_schedule.clone()
        };
        let sandbox = self.clone();
        let out_trade_no = trade.out_trade_no.clone();
        runtime.spawn(async move { sandbox.deliver(notify_id, out_trade_no, url, body, schedule).await });
    }

    async fn deliver(
        &self,
        notify_id: String,
        out_trade_no: String,
        url: String,
        body: String,
        schedule: Vec<Duration>,
    ) {
        let mut waits = schedule.into_iter();
        for attempt in 1.. {
            let result = self
                .inner
                .http
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            let (status, answer, error) = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    (Some(status), Some(text.chars().take(100).collect::<String>()), None)
                }
                Err(e) => (None, None, Some(e.without_url().to_string())),
            };
            // Alipay counts a delivery as received only when the body is exactly `success`.
            let acknowledged = status == Some(200) && answer.as_deref().map(str::trim) == Some(super::NOTIFY_ACK);
            {
                let mut state = self.state();
                if state.deliveries.len() == DELIVERY_LOG_CAPACITY {
                    state.deliveries.pop_front();
                }
                state.deliveries.push_back(DeliveryAttempt {
                    notify_id: notify_id.clone(),
                    out_trade_no: out_trade_no.clone(),
                    url: url.clone(),
                    attempt,
                    status,
                    answer,
                    error,
                    acknowledged,
                    at: Utc::now(),
                });
                if acknowledged {
                    state.notifications_acknowledged += 1;
                }
            }
            if acknowledged {
                tracing::info!(%notify_id, attempt, "sandbox Alipay notification delivered");
                return;
            }
            match waits.next() {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    tracing::warn!(%notify_id, attempt, "sandbox Alipay gave up delivering a notification");
                    return;
                }
            }
        }
    }

    /// The checks `gateway.do` makes before looking at the method's own parameters.
    fn check_common(&self, params: &[(String, String)]) -> Result<(String, Value), Refusal> {
        let get =
            |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        let app_id = get("app_id").ok_or_else(|| missing(sub_code::MISSING_PARAMETER, "缺少参数app_id"))?;
        if app_id != self.inner.app_id {
            return Err(invalid(sub_code::INVALID_APP_ID, "无效的AppID参数"));
        }
        let method = get("method").ok_or_else(|| missing(sub_code::MISSING_PARAMETER, "缺少方法名参数"))?;
        let signature = get("sign").ok_or_else(|| missing(sub_code::MISSING_SIGNATURE, "缺少签名参数"))?;
        if get("sign_type") != Some(sign::SIGN_TYPE) {
            return Err(invalid(sub_code::INVALID_SIGNATURE_TYPE, "无效的签名类型（沙箱只支持RSA2）"));
        }
        match get("charset").map(str::to_ascii_lowercase).as_deref() {
            Some("utf-8" | "gbk" | "gb2312") => {}
            _ => return Err(invalid(sub_code::INVALID_CHARSET, "字符集错误")),
        }
        if get("version") != Some(sign::VERSION) {
            return Err(invalid(sub_code::INVALID_VERSION, "版本号错误，须为1.0"));
        }
        let timestamp = get("timestamp").ok_or_else(|| missing(sub_code::MISSING_PARAMETER, "缺少时间戳参数"))?;
        parse_time(timestamp)
            .filter(|t| (t.timestamp() - Utc::now().timestamp()).abs() <= MAX_CLOCK_SKEW_SECS)
            .ok_or_else(|| invalid(sub_code::INVALID_TIMESTAMP, "非法的时间戳参数"))?;
        let content = sign::request_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|_| invalid(sub_code::INVALID_SIGNATURE, "参数重复"))?;
        sign::verify_rsa2(&self.inner.app_key, &content, signature).map_err(|e| {
            tracing::info!(reason = %e, method, "sandbox Alipay refused a request signature");
            invalid(sub_code::INVALID_SIGNATURE, "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")
        })?;
        let biz = match get("biz_content") {
            Some(raw) => serde_json::from_str::<Value>(raw)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| bad_param("biz_content不是合法的JSON对象"))?,
            None => return Err(missing(sub_code::MISSING_PARAMETER, "缺少biz_content参数")),
        };
        Ok((method.to_string(), biz))
    }

    /// Places (or, for the same content, finds again) a trade.
    fn place(&self, biz: &Value, params: &[(String, String)], product_codes: &[&str]) -> Result<SandboxTrade, Refusal> {
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
        let out_trade_no = biz_str(biz, "out_trade_no").ok_or_else(|| bad_param("out_trade_no不能为空"))?;
        if !valid_no(out_trade_no) {
            return Err(bad_param("out_trade_no须为64个字符以内的字母、数字、下划线"));
        }
        let amount = biz_amount(biz, "total_amount")?;
        let subject = biz_str(biz, "subject").ok_or_else(|| bad_param("subject不能为空"))?;
        if subject.chars().count() > 256 || subject.contains(['/', '=', '&']) {
            return Err(bad_param("subject不能超过256个字符，且不能包含/ = &"));
        }
        let product_code = biz_str(biz, "product_code").unwrap_or_default();
        if !product_codes.contains(&product_code) {
            return Err(bad_param(format!("product_code须为{}", product_codes.join("或"))));
        }
        let buyer_id = biz_str(biz, "buyer_id").map(str::to_string);
        let buyer_open_id = biz_str(biz, "buyer_open_id").map(str::to_string);
        if product_code == "JSAPI_PAY" && buyer_id.is_none() && buyer_open_id.is_none() {
            return Err(bad_param("JSAPI_PAY须传buyer_id或buyer_open_id"));
        }
        let time_expire = match biz_str(biz, "time_expire") {
            None => None,
            Some(t) => Some(parse_time(t).ok_or_else(|| bad_param("time_expire格式须为yyyy-MM-dd HH:mm:ss"))?),
        };
        if time_expire.is_some_and(|t| t < Utc::now()) {
            return Err(bad_param("time_expire已过期"));
        }
        let notify_url = get("notify_url");
        if let Some(url) = &notify_url {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(bad_param("notify_url须为http(s)地址"));
            }
        }
        let mut state = self.state();
        if let Some(existing) = state.trades.get(out_trade_no) {
            let same = existing.amount == amount && existing.subject == subject && existing.buyer_id == buyer_id;
            return match existing.status {
                TradeStatus::TradeClosed => Err(business(sub_code::TRADE_HAS_CLOSE, "交易已经关闭")),
                TradeStatus::WaitBuyerPay if same => Ok(existing.clone()),
                TradeStatus::WaitBuyerPay => Err(business(sub_code::CONTEXT_INCONSISTENT, "交易信息被篡改")),
                _ => Err(business(sub_code::TRADE_HAS_SUCCESS, "交易已被支付")),
            };
        }
        if state.trades.len() >= MAX_TRADES {
            return Err(business(sub_code::SYSTEM_ERROR, "沙箱交易数已达上限"));
        }
        let now = now_beijing();
        let trade = SandboxTrade {
            out_trade_no: out_trade_no.to_string(),
            trade_no: format!("{}22001{}", now.format("%Y%m%d"), random_digits(15)),
            subject: subject.to_string(),
            amount,
            product_code: product_code.to_string(),
            buyer_id,
            buyer_open_id,
            notify_url,
            return_url: get("return_url"),
            status: TradeStatus::WaitBuyerPay,
            created_at: now,
            paid_at: None,
            closed_at: None,
            time_expire,
            refunded: Fen::ZERO,
        };
        state.trades.insert(out_trade_no.to_string(), trade.clone());
        tracing::info!(out_trade_no, amount = amount.get(), product_code, "sandbox Alipay: trade created");
        Ok(trade)
    }

    /// Finds the trade named by `out_trade_no` or `trade_no`.
    fn find<'a>(state: &'a mut SandboxState, biz: &Value) -> Result<&'a mut SandboxTrade, Refusal> {
        let by_out = biz_str(biz, "out_trade_no").map(str::to_string);
        let by_no = biz_str(biz, "trade_no").map(str::to_string);
        if by_out.is_none() && by_no.is_none() {
            return Err(bad_param("out_trade_no和trade_no不能同时为空"));
        }
        state
            .trades
            .values_mut()
            .find(|t| {
                by_no.as_ref().is_none_or(|n| &t.trade_no == n) && by_out.as_ref().is_none_or(|o| &t.out_trade_no == o)
            })
            .ok_or_else(|| business(sub_code::TRADE_NOT_EXIST, "交易不存在"))
    }

    fn query(&self, biz: &Value) -> Answer {
        let mut state = self.state();
        let t = Self::find(&mut state, biz)?;
        let mut a = Map::new();
        a.insert("trade_no".into(), json!(t.trade_no));
        a.insert("out_trade_no".into(), json!(t.out_trade_no));
        a.insert("trade_status".into(), json!(t.status.as_str()));
        a.insert("total_amount".into(), json!(fen_to_yuan(t.amount)));
        a.insert("buyer_logon_id".into(), json!("138******00"));
        if let Some(id) = &t.buyer_id {
            a.insert("buyer_user_id".into(), json!(id));
        }
        if let Some(id) = &t.buyer_open_id {
            a.insert("buyer_open_id".into(), json!(id));
        }
        if let Some(paid) = t.paid_at {
            let amount = fen_to_yuan(t.amount);
            a.insert("buyer_pay_amount".into(), json!(amount));
            a.insert("receipt_amount".into(), json!(amount));
            a.insert("invoice_amount".into(), json!(amount));
            a.insert("point_amount".into(), json!("0.00"));
            a.insert("send_pay_date".into(), json!(paid.format(sign::TIME_FORMAT).to_string()));
            a.insert("fund_bill_list".into(), json!([{ "amount": amount, "fund_channel": "ALIPAYACCOUNT" }]));
        }
        Ok(a)
    }

    fn close(&self, biz: &Value) -> Answer {
        let mut state = self.state();
        let t = Self::find(&mut state, biz)?;
        match t.status {
            TradeStatus::WaitBuyerPay | TradeStatus::TradeClosed if t.paid_at.is_none() => {
                t.status = TradeStatus::TradeClosed;
                t.closed_at.get_or_insert_with(now_beijing);
                let mut a = Map::new();
                a.insert("trade_no".into(), json!(t.trade_no));
                a.insert("out_trade_no".into(), json!(t.out_trade_no));
                Ok(a)
            }
            _ => Err(business(sub_code::TRADE_STATUS_ERROR, "交易状态不合法：已支付的交易不能关闭")),
        }
    }

    fn refund(&self, biz: &Value) -> Answer {
        let amount = biz_amount(biz, "refund_amount")?;
        let (trade, record, fund_change) = {
            let mut state = self.state();
            let t = Self::find(&mut state, biz)?.clone();
            let out_request_no = biz_str(biz, "out_request_no").unwrap_or(&t.out_trade_no).to_string();
            if !valid_no(&out_request_no) {
                return Err(bad_param("out_request_no须为64个字符以内的字母、数字、下划线"));
            }
            let existing =
                state.refunds.iter().find(|r| r.out_trade_no == t.out_trade_no && r.out_request_no == out_request_no);
            match existing {
                Some(r) if r.amount == amount => (t, r.clone(), false),
                Some(_) => {
                    return Err(business(
                        sub_code::DISCORDANT_REPEAT_REQUEST,
                        "不一致的请求：同一退款请求号的退款金额不同",
                    ))
                }
                None => {
                    if t.paid_at.is_none() {
                        return Err(business(sub_code::TRADE_STATUS_ERROR, "交易状态不合法：未支付的交易不能退款"));
                    }
                    let left = t.amount.checked_sub(t.refunded).unwrap_or(Fen::ZERO);
                    if amount > left {
                        return Err(business(sub_code::REFUND_AMT_NOT_EQUAL_TOTAL, "退款金额超限"));
                    }
                    let record = SandboxRefund {
                        out_trade_no: t.out_trade_no.clone(),
                        out_request_no,
                        amount,
                        at: now_beijing(),
                    };
                    state.refunds.push(record.clone());
                    let stored = state
                        .trades
                        .get_mut(&t.out_trade_no)
                        .ok_or_else(|| business(sub_code::SYSTEM_ERROR, "系统错误"))?;
                    stored.refunded = stored.refunded.checked_add(amount).unwrap_or(stored.amount);
                    if stored.refunded == stored.amount {
                        // A full refund closes the trade.
                        stored.status = TradeStatus::TradeClosed;
                        stored.closed_at = Some(record.at);
                    }
                    (stored.clone(), record, true)
                }
            }
        };
        if fund_change {
            tracing::info!(out_trade_no = %trade.out_trade_no, refund = amount.get(), "sandbox Alipay: refunded");
            self.notify(&trade, Some(&record));
        }
        let mut a = Map::new();
        a.insert("trade_no".into(), json!(trade.trade_no));
        a.insert("out_trade_no".into(), json!(trade.out_trade_no));
        a.insert("buyer_logon_id".into(), json!("138******00"));
        a.insert("fund_change".into(), json!(if fund_change { "Y" } else { "N" }));
        a.insert("refund_fee".into(), json!(fen_to_yuan(trade.refunded)));
        a.insert("gmt_refund_pay".into(), json!(record.at.format(sign::TIME_FORMAT).to_string()));
        if let Some(id) = &trade.buyer_id {
            a.insert("buyer_user_id".into(), json!(id));
        }
        Ok(a)
    }

    fn refund_query(&self, biz: &Value) -> Answer {
        let out_request_no =
            biz_str(biz, "out_request_no").ok_or_else(|| bad_param("out_request_no不能为空"))?.to_string();
        let mut state = self.state();
        let t = Self::find(&mut state, biz)?.clone();
        let mut a = Map::new();
        a.insert("trade_no".into(), json!(t.trade_no));
        a.insert("out_trade_no".into(), json!(t.out_trade_no));
        a.insert("out_request_no".into(), json!(out_request_no));
        if let Some(r) =
            state.refunds.iter().find(|r| r.out_trade_no == t.out_trade_no && r.out_request_no == out_request_no)
        {
            a.insert("refund_amount".into(), json!(fen_to_yuan(r.amount)));
            a.insert("total_amount".into(), json!(fen_to_yuan(t.amount)));
            a.insert("refund_status".into(), json!("REFUND_SUCCESS"));
            a.insert("gmt_refund_pay".into(), json!(r.at.format(sign::TIME_FORMAT).to_string()));
        }
        Ok(a)
    }

    fn bill_url(&self, biz: &Value, base: &str) -> Answer {
        if biz_str(biz, "bill_type") != Some("trade") {
            return Err(bad_param("沙箱只提供bill_type=trade的业务账单"));
        }
        let raw = biz_str(biz, "bill_date").ok_or_else(|| bad_param("bill_date不能为空"))?;
        let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| bad_param("bill_date须为yyyy-MM-dd（沙箱不提供月账单）"))?;
        // Real Alipay serves days before today only; the sandbox also serves today so tests
        // need not wait for midnight.
        if date > now_beijing().date_naive() {
            return Err(business(sub_code::BILL_NOT_EXIST, "账单不存在"));
        }
        let token = random_alnum(32);
        let mut state = self.state();
        state.bill_tokens.retain(|_, (_, at)| at.elapsed() < BILL_URL_TTL);
        state.bill_tokens.insert(token.clone(), (date, Instant::now()));
        let mut a = Map::new();
        a.insert(
            "bill_download_url".into(),
            json!(format!(
                "{base}/downloadBillFile.resource?bizType=trade&fileType=csv.zip&bizDates={}&token={token}",
                date.format("%Y%m%d")
            )),
        );
        Ok(a)
    }

    /// A signed answer: `{"<method>_response":{...},"sign":"..."}`, signed over the exact text
    /// of the inner object.
    fn answer(&self, method: &str, result: Answer) -> Response {
        let inner = match result {
            Ok(mut fields) => {
                fields.insert("code".into(), json!(code::SUCCESS));
                fields.insert("msg".into(), json!("Success"));
                fields
            }
            Err(r) => {
                tracing::info!(method, sub_code = r.sub_code, sub_msg = %r.sub_msg, "sandbox Alipay refused");
                let mut fields = Map::new();
                fields.insert("code".into(), json!(r.code));
                fields.insert("msg".into(), json!(r.msg));
                fields.insert("sub_code".into(), json!(r.sub_code));
                fields.insert("sub_msg".into(), json!(r.sub_msg));
                fields
            }
        };
        let content = Value::Object(inner).to_string();
        let body = format!(
            r#"{{"{}":{content},"sign":"{}"}}"#,
            sign::response_key(method),
            sign::sign_rsa2(&self.inner.alipay_key, &content)
        );
        json_response(body)
    }

    /// The gateway's own envelope for requests it cannot route (unknown method): unsigned,
    /// as Alipay leaves it.
    fn error_envelope(r: Refusal) -> Response {
        let content = json!({ "code": r.code, "msg": r.msg, "sub_code": r.sub_code, "sub_msg": r.sub_msg });
        json_response(format!(r#"{{"error_response":{content}}}"#))
    }

    /// The parameters of the return to `return_url` after an H5 payment, signed as
    /// notifications are.
    fn return_params(&self, trade: &SandboxTrade) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = vec![
            ("charset".into(), sign::CHARSET.into()),
            ("out_trade_no".into(), trade.out_trade_no.clone()),
            ("method".into(), "alipay.trade.wap.pay.return".into()),
            ("total_amount".into(), fen_to_yuan(trade.amount)),
            ("trade_no".into(), trade.trade_no.clone()),
            ("auth_app_id".into(), self.inner.app_id.clone()),
            ("version".into(), sign::VERSION.into()),
            ("app_id".into(), self.inner.app_id.clone()),
            ("sign_type".into(), sign::SIGN_TYPE.into()),
            ("seller_id".into(), self.inner.seller_id.clone()),
            ("timestamp".into(), format_time(Utc::now())),
        ];
        if let Ok(content) = sign::notification_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            params.push(("sign".into(), sign::sign_rsa2(&self.inner.alipay_key, &content)));
        }
        params
    }
}

fn json_response(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf-8"));
    response
}

/// `gateway.do` (GET and POST), `/downloadBillFile.resource` (the bill link) and
/// `/sandbox/pay/{out_trade_no}` (the payer). Mount at the root or under a prefix; the client's
/// `gateway_url` is `{prefix}/gateway.do`.
pub fn sandbox_router(sandbox: AlipaySandbox) -> Router {
    Router::new()
        .route("/gateway.do", get(gateway).post(gateway))
        .route("/downloadBillFile.resource", get(download_bill))
        .route("/sandbox/pay/{out_trade_no}", get(pay_page).post(pay_now))
        .with_state(sandbox)
}

/// The prefix the router is mounted under, from the original URI and the route it matched.
fn prefix_of(uri: &OriginalUri, route_path: &str) -> String {
    uri.0.path().strip_suffix(route_path).unwrap_or_default().to_string()
}

async fn gateway(State(sandbox): State<AlipaySandbox>, uri: OriginalUri, headers: HeaderMap, body: Bytes) -> Response {
    let mut params = match decode_form(uri.0.query().unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return AlipaySandbox::error_envelope(invalid(sub_code::INVALID_CHARSET, e)),
    };
    match decode_form(&body) {
        // SDKs put some parameters in the URL and the rest in the body, `charset` often in
        // both: the same value twice is one parameter, two values are refused at signing.
        Ok(p) => {
            for pair in p {
                if !params.contains(&pair) {
                    params.push(pair);
                }
            }
        }
        Err(e) => return AlipaySandbox::error_envelope(invalid(sub_code::INVALID_CHARSET, e)),
    }
    let method = params.iter().find(|(k, _)| k == "method").map(|(_, v)| v.clone()).unwrap_or_default();
    if !METHODS.contains(&method.as_str()) {
        return AlipaySandbox::error_envelope(invalid(sub_code::INVALID_METHOD, "不存在的方法名"));
    }
    let prefix = prefix_of(&uri, "/gateway.do");
    if method == "alipay.trade.wap.pay" || method == "alipay.trade.page.pay" {
        // A browser, not a server: answer with the cashier page.
        return match sandbox.check_common(&params).and_then(|(_, biz)| {
            sandbox.place(&biz, &params, &["QUICK_WAP_WAY", "QUICK_WAP_PAY", "FAST_INSTANT_TRADE_PAY"])
        }) {
            Ok(trade) => Html(cashier(&trade, &prefix)).into_response(),
            Err(r) => (
                StatusCode::BAD_REQUEST,
                Html(page("支付宝（沙箱）- 错误", &format!("<p>{}：{}</p>", r.sub_code, escape_html(&r.sub_msg)))),
            )
                .into_response(),
        };
    }
    let (method, biz) = match sandbox.check_common(&params) {
        Ok(ok) => ok,
        Err(r) => return sandbox.answer(&method, Err(r)),
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let result = match method.as_str() {
        "alipay.trade.create" => sandbox.place(&biz, &params, &["JSAPI_PAY"]).map(|t| {
            let mut a = Map::new();
            a.insert("out_trade_no".into(), json!(t.out_trade_no));
            a.insert("trade_no".into(), json!(t.trade_no));
            a
        }),
        "alipay.trade.query" => sandbox.query(&biz),
        "alipay.trade.close" => sandbox.close(&biz),
        "alipay.trade.refund" => sandbox.refund(&biz),
        "alipay.trade.fastpay.refund.query" => sandbox.refund_query(&biz),
        _ => sandbox.bill_url(&biz, &format!("http://{host}{prefix}")),
    };
    sandbox.answer(&method, result)
}

async fn download_bill(State(sandbox): State<AlipaySandbox>, Query(q): Query<HashMap<String, String>>) -> Response {
    let date = {
        let state = sandbox.state();
        q.get("token")
            .and_then(|t| state.bill_tokens.get(t))
            .filter(|(_, at)| at.elapsed() < BILL_URL_TTL)
            .map(|(d, _)| *d)
    };
    let Some(date) = date else {
        return (StatusCode::FORBIDDEN, "下载链接已失效").into_response();
    };
    let exported = Utc::now().with_timezone(&beijing()).format("%Y年%m月%d日 %H:%M:%S").to_string();
    match sandbox.bill(date).to_zip(&exported) {
        Ok(bytes) => {
            let name = format!("{}_{}.csv.zip", sandbox.inner.seller_id, date.format("%Y%m%d"));
            (
                [
                    (header::CONTENT_TYPE, "application/oct-stream".to_string()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename={name}")),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
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
<p><small>支付宝沙箱：不会产生真实扣款。</small></p></body></html>",
        title = escape_html(title)
    )
}

fn cashier(trade: &SandboxTrade, prefix: &str) -> String {
    let button = if trade.status == TradeStatus::WaitBuyerPay {
        format!(
            "<form method=\"post\" action=\"{}/sandbox/pay/{}\"><button type=\"submit\" style=\"font-size:1.2rem\">支付</button></form>",
            escape_html(prefix),
            escape_html(&trade.out_trade_no)
        )
    } else {
        String::new()
    };
    let status = match trade.status {
        TradeStatus::WaitBuyerPay => "待支付",
        TradeStatus::TradeClosed => "已关闭",
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => "已支付",
    };
    page(
        "支付宝（沙箱）",
        &format!(
            "<dl><dt>商品</dt><dd>{}</dd><dt>订单号</dt><dd>{}</dd><dt>金额</dt><dd>{}</dd><dt>状态</dt><dd>{status}</dd></dl>{button}",
            escape_html(&trade.subject),
            escape_html(&trade.out_trade_no),
            escape_html(&trade.amount.to_string()),
        ),
    )
}

async fn pay_page(
    State(sandbox): State<AlipaySandbox>,
    uri: OriginalUri,
    Path(out_trade_no): Path<String>,
) -> Response {
    let prefix = prefix_of(&uri, &format!("/sandbox/pay/{out_trade_no}"));
    match sandbox.trade(&out_trade_no) {
        Some(trade) => Html(cashier(&trade, &prefix)).into_response(),
        None => (StatusCode::NOT_FOUND, Html(page("交易不存在", ""))).into_response(),
    }
}

async fn pay_now(State(sandbox): State<AlipaySandbox>, Path(out_trade_no): Path<String>) -> Response {
    match sandbox.pay(&out_trade_no) {
        Ok(trade) => match &trade.return_url {
            // The H5 flow: back to the merchant's page with the signed return parameters.
            Some(return_url) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(sandbox.return_params(&trade))
                    .finish();
                let sep = if return_url.contains('?') { '&' } else { '?' };
                Redirect::to(&format!("{return_url}{sep}{query}")).into_response()
            }
            None => Html(page(
                "支付成功",
                &format!(
                    "<p>已支付 {}，订单号 {}。</p>",
                    escape_html(&trade.amount.to_string()),
                    escape_html(&trade.out_trade_no)
                ),
            ))
            .into_response(),
        },
        Err(AlipayError::Api { sub_code, sub_msg, .. }) => {
            let status =
                if sub_code == sub_code::TRADE_NOT_EXIST { StatusCode::NOT_FOUND } else { StatusCode::CONFLICT };
            (status, Html(page("支付失败", &format!("<p>{}</p>", escape_html(&sub_msg))))).into_response()
        }
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Html(page("支付失败", &escape_html(&e.to_string())))).into_response()
        }
    }
}
