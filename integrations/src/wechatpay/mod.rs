//! WeChat Pay API v3 (直连商户, JSAPI/mini-program payments): the `WechatPay` trait the platform
//! depends on, its request/response types and errors, the real client, a local sandbox speaking
//! the same signed and encrypted protocol, and the protocol primitives both share (`sign`).

mod bill;
mod client;
#[cfg(feature = "sandbox")]
mod sandbox;
pub mod sign;
/// Fixed, public keys for the sandbox and tests: never a real merchant's.
#[cfg(any(test, feature = "sandbox"))]
pub mod test_keys;
#[cfg(test)]
mod tests;

pub use bill::{WechatBill, WechatBillRow};
pub use client::{WechatPayClient, WechatPayConfig, DEFAULT_BASE_URL};
#[cfg(feature = "sandbox")]
pub use sandbox::{
    sandbox_router, DeliveryAttempt, SandboxOrder, WechatPaySandbox, WechatPaySandboxConfig, DEFAULT_REFUND_DELAY,
    DEFAULT_RETRY_SCHEDULE,
};
pub use sign::{generate_keys, SignError};

use chrono::{DateTime, FixedOffset, Utc};
use hospital_domain::Fen;
use serde::{Deserialize, Serialize};

use crate::BoxFuture;

/// WeChat Pay's documented error `code`s that callers act on.
pub mod code {
    pub const PARAM_ERROR: &str = "PARAM_ERROR";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const SIGN_ERROR: &str = "SIGN_ERROR";
    pub const APPID_MCHID_NOT_MATCH: &str = "APPID_MCHID_NOT_MATCH";
    pub const MCH_NOT_EXISTS: &str = "MCH_NOT_EXISTS";
    /// Same `out_trade_no` with different content: the order number must change.
    pub const OUT_TRADE_NO_USED: &str = "OUT_TRADE_NO_USED";
    pub const ORDER_CLOSED: &str = "ORDER_CLOSED";
    pub const ORDERPAID: &str = "ORDERPAID";
    pub const ORDER_NOT_EXIST: &str = "ORDER_NOT_EXIST";
    /// The spelling some v3 endpoints (and older docs) use for the same refusal.
    pub const ORDERNOTEXIST: &str = "ORDERNOTEXIST";
    /// `/v3/bill/tradebill` for a day with no bill (yet).
    pub const NO_STATEMENT_EXIST: &str = "NO_STATEMENT_EXIST";
    pub const RESOURCE_NOT_EXISTS: &str = "RESOURCE_NOT_EXISTS";
    pub const NOT_ENOUGH: &str = "NOT_ENOUGH";
    pub const FREQUENCY_LIMITED: &str = "FREQUENCY_LIMITED";
    pub const SYSTEM_ERROR: &str = "SYSTEM_ERROR";
}

/// A JSAPI (mini-program) order. `amount` is integer fen, never yuan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiOrder {
    /// The platform's order number: 6-32 of `[0-9A-Za-z_-|*]`, unique per merchant.
    pub out_trade_no: String,
    /// Shown to the payer in WeChat (at most 127 bytes).
    pub description: String,
    pub amount: Fen,
    /// The payer's openid in our mini-program. Required by WeChat for JSAPI: accounts that
    /// logged in by SMS only have none, and pay through the sandbox in development.
    pub payer_openid: String,
    /// After this WeChat refuses to collect payment; sent as RFC 3339 in +08:00.
    pub time_expire: DateTime<Utc>,
}

/// What `wx.requestPayment` takes, serialised with its camelCase keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPaymentParams {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    /// `prepay_id=...`
    pub package: String,
    /// Always `RSA` in API v3.
    pub sign_type: String,
    pub pay_sign: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepayResult {
    /// Valid for two hours; the same order placed again returns the same id.
    pub prepay_id: String,
    /// Hand these to the mini-program as they are.
    pub pay_params: RequestPaymentParams,
}

/// `trade_state` of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    Success,
    /// Paid, then (partly) refunded.
    Refund,
    #[serde(rename = "NOTPAY")]
    NotPay,
    Closed,
    Revoked,
    #[serde(rename = "USERPAYING")]
    UserPaying,
    #[serde(rename = "PAYERROR")]
    PayError,
    /// A state this code does not know yet: treat as not paid, query again later.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionAmount {
    /// What the order was for.
    pub total: Fen,
    /// What the payer actually paid (less coupons); present once paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<Fen>,
    #[serde(default = "cny")]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_currency: Option<String>,
}

fn cny() -> String {
    "CNY".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub openid: String,
}

/// A transaction as `query_order` and `TRANSACTION.SUCCESS` notifications describe it (the
/// same JSON in both places).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub appid: String,
    pub mchid: String,
    pub out_trade_no: String,
    /// WeChat's id; absent until paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<String>,
    pub trade_state: TradeState,
    #[serde(default)]
    pub trade_state_desc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    pub amount: TransactionAmount,
}

impl Transaction {
    pub fn is_paid(&self) -> bool {
        matches!(self.trade_state, TradeState::Success | TradeState::Refund)
    }

    pub fn payer_openid(&self) -> Option<&str> {
        self.payer.as_ref().map(|p| p.openid.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: String,
    /// The platform's refund number, unique per merchant; retrying with the same number and
    /// content is safe and returns the same refund.
    pub out_refund_no: String,
    /// Shown to the payer; optional.
    pub reason: Option<String>,
    pub refund: Fen,
    /// The original order's total (WeChat checks it matches).
    pub total: Fen,
}

/// `status` of a refund (`refund_status` in refund notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Success,
    Closed,
    Processing,
    /// Could not be paid back (e.g. the payer's card was cancelled): needs a human.
    Abnormal,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    pub total: Fen,
    pub refund: Fen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_refund: Option<Fen>,
    /// What the merchant's settlement gives back (less non-recharge coupons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_refund: Option<Fen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settlement_total: Option<Fen>,
    /// Coupon part of the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_refund: Option<Fen>,
    /// The fee returned with the refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_fee: Option<Fen>,
    /// Which accounts the refund came from (`[{account, amount}]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<serde_json::Value>,
    #[serde(default = "cny")]
    pub currency: String,
}

/// A refund as `refund` and `query_refund` return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub out_refund_no: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    pub status: RefundStatus,
    /// Which merchant account paid the refund (`AVAILABLE`, `UNSETTLED`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funds_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<DateTime<FixedOffset>>,
    pub amount: RefundAmount,
    /// Coupons refunded with it; `[]` when none.
    #[serde(default)]
    pub promotion_detail: Vec<serde_json::Value>,
}

/// The decrypted resource of a `REFUND.*` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundNotice {
    pub mchid: String,
    pub out_trade_no: String,
    pub transaction_id: String,
    pub out_refund_no: String,
    pub refund_id: String,
    pub refund_status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    pub amount: RefundAmount,
}

/// A verified, decrypted notification. `id` is WeChat's notification id: the same
/// notification is delivered again until acknowledged, so the platform dedupes on it (and on
/// the business keys inside, which stay the same across deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `TRANSACTION.SUCCESS`
    Transaction { id: String, event_type: String, transaction: Transaction },
    /// `REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`
    Refund { id: String, event_type: String, refund: RefundNotice },
    /// A correctly signed event type this code does not handle: acknowledge it so WeChat stops
    /// resending, and log it.
    Other { id: String, event_type: String },
}

impl Notification {
    pub fn id(&self) -> &str {
        match self {
            Notification::Transaction { id, .. } | Notification::Refund { id, .. } | Notification::Other { id, .. } => {
                id
            }
        }
    }

    pub fn event_type(&self) -> &str {
        match self {
            Notification::Transaction { event_type, .. }
            | Notification::Refund { event_type, .. }
            | Notification::Other { event_type, .. } => event_type,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WechatPayError {
    /// WeChat Pay answered (with a valid signature) and refused: `code` is one of [`code`].
    #[error("WeChat Pay API error (HTTP {status}) {code}: {message}")]
    Api { status: u16, code: String, message: String },
    /// The request never got an answer (DNS, TLS, timeout, connection reset).
    #[error("WeChat Pay unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer whose signature is missing or wrong: it may not come from WeChat Pay at all,
    /// so nothing in it is trusted.
    #[error("unverifiable WeChat Pay response (HTTP {status}): {reason}")]
    Unverified { status: u16, reason: SignError },
    /// A signed answer that is not WeChat Pay's documented JSON.
    #[error("unexpected WeChat Pay response (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
    /// A notification that fails verification or decryption, or is not the documented shape.
    #[error("rejected WeChat Pay notification: {0}")]
    Notification(String),
    /// A bill whose download fails its hash or cannot be read.
    #[error(transparent)]
    Bill(#[from] crate::bill::BillError),
    /// Refused before sending: WeChat would refuse it too.
    #[error("invalid WeChat Pay request: {0}")]
    InvalidRequest(String),
    #[error("invalid WeChat Pay configuration: {0}")]
    Config(String),
}

impl WechatPayError {
    /// Busy, rate limited, a 5xx or a network failure: the same call (same `out_trade_no` /
    /// `out_refund_no`) may succeed later and is safe to repeat.
    pub fn is_retryable(&self) -> bool {
        match self {
            WechatPayError::Transport(_) => true,
            WechatPayError::Api { status, code, .. } => {
                *status >= 500 || *status == 429 || code == code::SYSTEM_ERROR || code == code::FREQUENCY_LIMITED
            }
            WechatPayError::Unverified { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The API error code, if WeChat Pay answered with one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            WechatPayError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// WeChat Pay knows no such order (either spelling of the code).
    pub fn is_order_not_found(&self) -> bool {
        matches!(self.api_code(), Some(code::ORDER_NOT_EXIST | code::ORDERNOTEXIST))
    }
}

/// WeChat Pay for the platform's orders. Object safe so the server holds `Arc<dyn WechatPay>`
/// and swaps the real client for one pointed at the sandbox by configuration.
pub trait WechatPay: Send + Sync {
    /// `POST /v3/pay/transactions/jsapi`, then signs the `wx.requestPayment` parameters.
    fn jsapi_order(&self, req: JsapiOrder) -> BoxFuture<'_, Result<PrepayResult, WechatPayError>>;

    /// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=`
    fn query_order<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Transaction, WechatPayError>>;

    /// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` (an unpaid order only).
    fn close_order<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), WechatPayError>>;

    /// `POST /v3/refund/domestic/refunds`; completes asynchronously (`REFUND.*` notification).
    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<Refund, WechatPayError>>;

    /// `GET /v3/pay/transactions/id/{transaction_id}?mchid=` (paid orders only).
    fn query_transaction<'a>(&'a self, transaction_id: &'a str) -> BoxFuture<'a, Result<Transaction, WechatPayError>>;

    /// `GET /v3/bill/tradebill?bill_date=&bill_type=ALL&tar_type=GZIP`, then downloads the bill
    /// from its `download_url` (signed request, unsigned answer), checks its SHA1 and parses it.
    fn trade_bill(&self, date: chrono::NaiveDate) -> BoxFuture<'_, Result<WechatBill, WechatPayError>>;

    /// `GET /v3/refund/domestic/refunds/{out_refund_no}`
    fn query_refund<'a>(&'a self, out_refund_no: &'a str) -> BoxFuture<'a, Result<Refund, WechatPayError>>;

    /// Verifies (platform key, 5-minute timestamp window) and decrypts a notification POSTed to
    /// `notify_url`. `body` must be the raw bytes received. Answer 200/204 only once the
    /// result is stored; any error means "not accepted" (WeChat will deliver it again).
    fn parse_notification(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<Notification, WechatPayError>;
}
