//! Alipay (支付宝开放平台, OpenAPI `gateway.do`, `sign_type=RSA2`) for the mini-program/JSAPI
//! flow (`alipay.trade.create` + `my.tradePay`) and the H5 flow (`alipay.trade.wap.pay`): the
//! `Alipay` trait the platform depends on, its types and errors, the real client, a local sandbox
//! speaking the same signed protocol, the signature rules both share (`sign`) and the daily bill
//! (`bill`, `alipay.data.dataservice.bill.downloadurl.query`).
//!
//! Money: our amounts are integer fen, Alipay's are yuan strings with two decimals; the
//! conversion is exact (`crate::yuan`), never through a float.
//!
//! Protocol sources: Alipay's API pages for `alipay.trade.create`, `alipay.trade.wap.pay`
//! (common request parameters `app_id, method, format, charset, sign_type, sign, timestamp
//! "yyyy-MM-dd HH:mm:ss", version 1.0, notify_url, biz_content`), `alipay.trade.query`,
//! `alipay.trade.close`, `alipay.trade.refund`, `alipay.trade.fastpay.refund.query`, the
//! asynchronous notification page (异步通知说明: form-encoded POST, `notify_type=trade_status_sync`,
//! answer the bare text `success`, otherwise resent for about 25 hours) and
//! `alipay.data.dataservice.bill.downloadurl.query`; and the independent `python-alipay-sdk`
//! 3.4.0, which the cross-check test runs against the client and the sandbox.

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
mod zip;

pub use bill::{AlipayBill, AlipayBillKind, AlipayBillRow};
pub use client::{AlipayClient, AlipayConfig, DEFAULT_GATEWAY_URL};
#[cfg(feature = "sandbox")]
pub use sandbox::{
    sandbox_router, AlipaySandbox, AlipaySandboxConfig, DeliveryAttempt, SandboxTrade, DEFAULT_RETRY_SCHEDULE,
};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use hospital_domain::Fen;
use serde::{Deserialize, Serialize};

use crate::bill::BillError;
use crate::BoxFuture;
pub use sign::SignError;

/// What a notification must be answered with for Alipay to stop resending it.
pub const NOTIFY_ACK: &str = "success";
/// Anything else means "not accepted" (Alipay resends); this is the conventional word.
pub const NOTIFY_NACK: &str = "failure";

/// Alipay's gateway `code`s (公共错误码).
pub mod code {
    pub const SUCCESS: &str = "10000";
    /// 服务不可用: retry with the same parameters.
    pub const UNKNOWN_ERROR: &str = "20000";
    pub const INSUFFICIENT_AUTH: &str = "20001";
    pub const MISSING_PARAMETER: &str = "40001";
    pub const INVALID_PARAMETER: &str = "40002";
    pub const BUSINESS_FAILED: &str = "40004";
    pub const INSUFFICIENT_PERMISSIONS: &str = "40006";
}

/// The `sub_code`s callers act on.
pub mod sub_code {
    pub const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";
    /// Closing a paid trade, refunding an unpaid or closed one.
    pub const TRADE_STATUS_ERROR: &str = "ACQ.TRADE_STATUS_ERROR";
    /// Creating again a trade that is already paid.
    pub const TRADE_HAS_SUCCESS: &str = "ACQ.TRADE_HAS_SUCCESS";
    pub const TRADE_HAS_CLOSE: &str = "ACQ.TRADE_HAS_CLOSE";
    /// The same `out_trade_no` with other content (交易信息被篡改).
    pub const CONTEXT_INCONSISTENT: &str = "ACQ.CONTEXT_INCONSISTENT";
    pub const INVALID_PARAMETER: &str = "ACQ.INVALID_PARAMETER";
    /// Refunding more than is left.
    pub const REFUND_AMT_NOT_EQUAL_TOTAL: &str = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL";
    /// The same `out_request_no` with another amount.
    pub const DISCORDANT_REPEAT_REQUEST: &str = "ACQ.DISCORDANT_REPEAT_REQUEST";
    pub const SYSTEM_ERROR: &str = "ACQ.SYSTEM_ERROR";
    pub const BILL_NOT_EXIST: &str = "isp.bill_not_exist";
    pub const MISSING_SIGNATURE: &str = "isv.missing-signature";
    pub const INVALID_SIGNATURE: &str = "isv.invalid-signature";
    pub const INVALID_SIGNATURE_TYPE: &str = "isv.invalid-signature-type";
    pub const INVALID_APP_ID: &str = "isv.invalid-app-id";
    pub const INVALID_TIMESTAMP: &str = "isv.invalid-timestamp";
    pub const INVALID_METHOD: &str = "isv.invalid-method";
    pub const INVALID_CHARSET: &str = "isv.invalid-charset";
    pub const INVALID_VERSION: &str = "isv.invalid-version";
    pub const MISSING_PARAMETER: &str = "isv.missing-parameter";
}

/// Who pays a mini-program trade: Alipay's user id (`2088...`, 16 digits) or, for apps in
/// Alipay's OpenID mode, the openid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buyer {
    UserId(String),
    OpenId(String),
}

/// `alipay.trade.create` with `product_code=JSAPI_PAY`: the mini-program then calls
/// `my.tradePay({ tradeNO })`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTrade {
    /// The platform's order number: 1-64 of letters, digits and `_`, unique per app.
    pub out_trade_no: String,
    /// 订单标题 (at most 256 characters; no `/ = &`, which Alipay refuses).
    pub subject: String,
    pub amount: Fen,
    pub buyer: Buyer,
    /// After this Alipay refuses payment (`time_expire`, Beijing time).
    pub time_expire: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTrade {
    /// Alipay's trade number: what `my.tradePay` takes as `tradeNO`.
    pub trade_no: String,
    pub out_trade_no: String,
}

/// `alipay.trade.wap.pay` (H5 in a mobile browser): no server call; the signed URL sends the
/// payer's browser to Alipay's cashier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WapPay {
    pub out_trade_no: String,
    pub subject: String,
    pub amount: Fen,
    pub time_expire: DateTime<Utc>,
    /// Where the browser returns after paying (`return_url`).
    pub return_url: Option<String>,
    /// Where the browser goes if the payer gives up (`quit_url`).
    pub quit_url: Option<String>,
}

/// `trade_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeStatus {
    /// Created, not paid.
    WaitBuyerPay,
    /// Closed unpaid (timeout or `alipay.trade.close`), or fully refunded.
    TradeClosed,
    /// Paid; refunds are still possible.
    TradeSuccess,
    /// Paid and past the refund window.
    TradeFinished,
}

impl TradeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeFinished => "TRADE_FINISHED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::WaitBuyerPay, Self::TradeClosed, Self::TradeSuccess, Self::TradeFinished]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    pub fn is_paid(self) -> bool {
        matches!(self, TradeStatus::TradeSuccess | TradeStatus::TradeFinished)
    }
}

/// A trade as `alipay.trade.query` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: TradeStatus,
    pub total_amount: Fen,
    /// What the payer paid (present once paid).
    pub buyer_pay_amount: Option<Fen>,
    /// What the merchant received.
    pub receipt_amount: Option<Fen>,
    pub buyer_user_id: Option<String>,
    pub buyer_open_id: Option<String>,
    pub buyer_logon_id: Option<String>,
    /// When it was paid (`send_pay_date`).
    pub send_pay_date: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: String,
    /// `out_request_no`: the platform's refund number, unique per trade. Retrying with the same
    /// number and amount is safe: the refund happens once (`fund_change` is `false` the second time).
    pub out_request_no: String,
    pub amount: Fen,
    pub reason: Option<String>,
}

/// `alipay.trade.refund` is synchronous: the answer says whether money moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    pub trade_no: String,
    pub out_trade_no: String,
    /// `fund_change=Y`: this call moved money; `N` on a retry of a refund already done.
    pub fund_change: bool,
    /// `refund_fee`: everything refunded on this trade so far.
    pub refund_fee: Fen,
    pub gmt_refund_pay: Option<DateTime<FixedOffset>>,
}

/// One refund as `alipay.trade.fastpay.refund.query` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuery {
    pub trade_no: String,
    pub out_trade_no: String,
    pub out_request_no: String,
    pub refund_amount: Fen,
    pub total_amount: Fen,
    /// `REFUND_SUCCESS` when done.
    pub refund_status: Option<String>,
}

impl RefundQuery {
    pub fn is_success(&self) -> bool {
        self.refund_status.as_deref().is_none_or(|s| s == "REFUND_SUCCESS")
    }
}

/// A verified asynchronous notification (`notify_type=trade_status_sync`): a payment, or a
/// refund (then `out_biz_no` and `refund_fee` are set). Alipay resends it until answered
/// [`NOTIFY_ACK`], so the same one arrives many times: handle it once by [`Notification::dedupe_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub notify_id: String,
    pub notify_type: String,
    pub notify_time: String,
    pub app_id: String,
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: TradeStatus,
    pub total_amount: Fen,
    pub receipt_amount: Option<Fen>,
    pub buyer_pay_amount: Option<Fen>,
    pub buyer_id: Option<String>,
    pub buyer_open_id: Option<String>,
    pub seller_id: Option<String>,
    /// Refund notifications: everything refunded so far.
    pub refund_fee: Option<Fen>,
    /// Refund notifications: the refund's `out_request_no`.
    pub out_biz_no: Option<String>,
    pub gmt_payment: Option<DateTime<FixedOffset>>,
    pub gmt_refund: Option<String>,
    pub gmt_close: Option<DateTime<FixedOffset>>,
}

impl Notification {
    /// The same for every delivery of one event and different between events of one trade
    /// (paid; each refund; closed): what "handled once" is keyed on.
    pub fn dedupe_key(&self) -> String {
        format!("alipay:{}:{}:{}", self.trade_no, self.trade_status.as_str(), self.out_biz_no.as_deref().unwrap_or("-"))
    }

    pub fn is_refund(&self) -> bool {
        self.out_biz_no.is_some() || self.refund_fee.is_some_and(|f| f.get() > 0)
    }

    /// The checks Alipay asks of every notification beyond its signature and app_id (which
    /// `parse_notification` did): it is for this order and for its amount. A mismatch means
    /// "do not act": the notification is not ours or was built to deceive.
    pub fn check_order(&self, out_trade_no: &str, total: Fen) -> Result<(), AlipayError> {
        if self.out_trade_no != out_trade_no {
            return Err(AlipayError::Notification(format!(
                "out_trade_no {:?} is not the order {out_trade_no:?}",
                self.out_trade_no
            )));
        }
        if self.total_amount != total {
            return Err(AlipayError::Notification(format!(
                "total_amount {} differs from the order's {}",
                self.total_amount, total
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlipayError {
    /// Alipay answered and refused (`code` other than 10000). `signed` says whether the answer
    /// carried a valid signature: Alipay leaves some gateway errors unsigned, and its SDKs
    /// report those too, as the refusal changes nothing on its own.
    #[error("Alipay refused: {code} {msg}; {sub_code} {sub_msg}")]
    Api { code: String, msg: String, sub_code: String, sub_msg: String, signed: bool },
    /// No answer (DNS, TLS, timeout, reset).
    #[error("Alipay unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// A success answer whose signature is missing or wrong: nothing in it is trusted.
    #[error("unverifiable Alipay answer: {0}")]
    Unverified(SignError),
    /// A signed answer that is not Alipay's documented shape.
    #[error("unexpected Alipay answer (HTTP {status}): {body}")]
    UnexpectedResponse { status: u16, body: String },
    /// A notification that fails verification or does not check out.
    #[error("rejected Alipay notification: {0}")]
    Notification(String),
    #[error(transparent)]
    Bill(#[from] BillError),
    /// Refused before sending: Alipay would refuse it too.
    #[error("invalid Alipay request: {0}")]
    InvalidRequest(String),
    #[error("invalid Alipay configuration: {0}")]
    Config(String),
}

impl AlipayError {
    /// The most specific code Alipay gave (`sub_code`, else `code`).
    pub fn api_code(&self) -> Option<&str> {
        match self {
            AlipayError::Api { code, sub_code, .. } => Some(if sub_code.is_empty() { code } else { sub_code }),
            _ => None,
        }
    }

    /// Busy, a system error or the network: the same call (same `out_trade_no` /
    /// `out_request_no`) is safe to repeat later.
    pub fn is_retryable(&self) -> bool {
        match self {
            AlipayError::Transport(_) => true,
            AlipayError::Api { code, sub_code, .. } => {
                code == code::UNKNOWN_ERROR || sub_code == sub_code::SYSTEM_ERROR
            }
            AlipayError::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Beijing time, which every Alipay timestamp is in.
pub fn beijing() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// `yyyy-MM-dd HH:mm:ss` (Beijing) as Alipay writes times.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&beijing()).format(sign::TIME_FORMAT).to_string()
}

/// The inverse of [`format_time`]; also accepts Alipay's millisecond form (`gmt_refund`).
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    let naive = NaiveDateTime::parse_from_str(s, sign::TIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    beijing().from_local_datetime(&naive).single()
}

/// Alipay for the platform's orders. Object safe, so the server holds `Arc<dyn Alipay>` and
/// points the same client at the sandbox by configuration.
pub trait Alipay: Send + Sync {
    /// `alipay.trade.create` (`JSAPI_PAY`): the trade the mini-program pays with `my.tradePay`.
    fn create_trade(&self, req: CreateTrade) -> BoxFuture<'_, Result<CreatedTrade, AlipayError>>;

    /// `alipay.trade.wap.pay`: the signed URL of Alipay's cashier for a mobile browser (GET).
    fn wap_pay_url(&self, req: WapPay) -> Result<String, AlipayError>;

    /// `alipay.trade.query` by `out_trade_no`.
    fn query_trade<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Trade, AlipayError>>;

    /// `alipay.trade.close`: an unpaid trade only.
    fn close_trade<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), AlipayError>>;

    /// `alipay.trade.refund` (synchronous).
    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<RefundResult, AlipayError>>;

    /// `alipay.trade.fastpay.refund.query`; `None` when Alipay knows no such refund.
    fn query_refund<'a>(
        &'a self,
        out_trade_no: &'a str,
        out_request_no: &'a str,
    ) -> BoxFuture<'a, Result<Option<RefundQuery>, AlipayError>>;

    /// Verifies a notification POSTed to `notify_url` (`body` is the raw form-encoded bytes):
    /// Alipay's signature, our `app_id` (and `seller_id` when configured), a known
    /// `trade_status`, exact amounts. Then the caller checks it against its order
    /// ([`Notification::check_order`]), handles it once ([`Notification::dedupe_key`]) and
    /// answers [`NOTIFY_ACK`] only once the result is stored.
    fn parse_notification(&self, body: &[u8]) -> Result<Notification, AlipayError>;

    /// `alipay.data.dataservice.bill.downloadurl.query` (`bill_type=trade`) for one day, then
    /// downloads (the URL lives 30 seconds) and parses the bill.
    fn download_bill(&self, date: chrono::NaiveDate) -> BoxFuture<'_, Result<AlipayBill, AlipayError>>;
}
