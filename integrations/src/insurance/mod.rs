//! Medical insurance (医保) through the national medical security platform's mobile-payment
//! interface (国家医保 移动支付): binding a patient's insurance identity from the electronic
//! insurance certificate (医保电子凭证) authorisation (`payAuthNo`), fee upload (6201),
//! pre-settlement (6202) splitting a bill into fund, personal account and cash, confirmation
//! once the cash part is paid, query (6301), revocation (6401), refund (6203) and the day's
//! settlement list for reconciliation. The `Insurance` trait the platform depends on, the real
//! client, a sandbox centre speaking the same signed and encrypted protocol whose split comes
//! from rules held as data ([`rules`]), and the envelope both share ([`envelope`]).
//!
//! # Sources, and what had to be decided
//!
//! The specification itself (《医保移动支付接口规范》, national v2.x and provincial editions) is
//! not published in full. What this module follows, and where from:
//!
//! * **The envelope** — HTTPS POST of JSON in UTF-8, `{appId, encType:"SM4", signType:"SM2",
//!   timestamp, version:"2.0.1", encData, signData}`; the signature is SM3withSM2 over the
//!   string built by taking every field but `signData`/`encData`/`extra`, dropping empty
//!   values, sorting keys by ASCII, joining `key=value` with `&` (objects such as `data` as
//!   compact JSON with sorted keys), and appending `&key=<appSecret>`: the interface rules
//!   chapter (§2.1 协议规则, §2.3 安全规范) as reproduced publicly from the Tianjin edition,
//!   with its worked signing example (reproduced in `envelope::tests`).
//! * **SM4 and key formats** — SM4-ECB with PKCS#7; the message key is the first 16 ASCII
//!   characters of the upper-case hex of SM4(appSecret) under the first 16 bytes of the appId;
//!   `encData` hex; `signData` base64 of the 64-byte `r‖s`; private keys base64 of the 32-byte
//!   scalar, public keys base64 of `04‖X‖Y`: the platform's SDK as public integrations port it
//!   (a decompiled .NET SDK's `SignUtil`, and a TypeScript port citing national spec v2.2.5
//!   §2.3 and the Shanxi edition v1.3.35 §5.6.5). We send upper-case hex and accept either.
//!   (A property worth knowing: only the appSecret's first 16 bytes reach the SM4 key; the
//!   whole secret enters every signature, so a secret wrong past byte 16 fails as SIGN_ERROR.)
//! * **The SM2 user id** — the sources disagree: the .NET SDK passes the appSecret, the port
//!   uses GM/T 0009's default `1234567812345678`. Configurable (`sm2_user_id`), default the
//!   standard value; a deployment sets it to what its centre uses.
//! * **Transactions and their fields** — 6201 费用明细上传 (`/org/local/api/hos/uldFeeInfo`,
//!   answers `payOrdId`, `payToken`), 6202 支付下单 (`pay_order`, answers the split `feeSumamt`
//!   = `fundPay` + `psnAcctPay` + `ownPayAmt` and `extData.preSetl`), 6203 退费
//!   (`refund_Order`: `appRefdSn`, `totlRefdAmt` = `fundRefdAmt` + `psnAcctRefdAmt` +
//!   `cashRefdAmt`, `refdType` ALL/CASH/HI, answers `refStatus` SUCC/FAIL/EXP), 6301 查询
//!   (`query_order_info`: `ordStas`, `setlType`), 6401 撤销 (`revoke_order`); the order status
//!   dictionary (0 保存 … 6 结算完成, 7 已退款, 12 已撤销 …); amounts as yuan strings with two
//!   decimals (§2.2.2): the provincial (Shanxi) routes and contracts as public integration code
//!   uses them, and public DTOs of the national 6202 output.
//! * **Authorisation** — the patient authorises in the 医保电子凭证 mini-program, which hands
//!   our mini-program an `authCode`; the channel exchanges it (with the openid) for
//!   `payAuthNo`, and the person's insured type (insutype 310 职工 / 390 居民) and region
//!   (`insuplcAdmdvs`) come from the person query (1101). *Decided:* both are one call on the
//!   same envelope, `/org/local/api/hos/user_query` (`qrcode`, `openid` → `payAuthNo`,
//!   `psnNo`, `insutype`, `insuplcAdmdvs`, `userName`, `idNo`, `idType`, `expireTime`), and
//!   unbinding is `/org/local/api/hos/auth_revoke` (`payAuthNo`), after which the centre
//!   refuses that `payAuthNo`.
//! * **Confirmation** — in the national flow the payment channel's mixed-payment cashier
//!   settles the insurance part when the payer pays the cash part. Our platform collects the
//!   cash with its own WeChat Pay or Alipay order in the same checkout, so it confirms:
//!   *decided* `/org/local/api/hos/setl_confirm` (`payOrdId`, `payToken`, `cashChnl`,
//!   `cashTradeNo`, `ownPayAmt`), answering as 6301 does. The centre recomputes the split and
//!   refuses (`SPLIT_CHANGED`) if it no longer matches 6202's, so nothing settles at figures
//!   nobody saw.
//! * **Settlement list** — *decided* `/org/local/api/hos/setl_list` (`setlDate` yyyyMMdd →
//!   `records` of settlements `SETL` and refunds `REFD` that day, Beijing time).
//! * **Answers** — *decided*: every answer is enveloped and signed by the platform key, with
//!   `code` (0 = success, else one of [`code`]), `message` and `success` as signed top-level
//!   fields; refusals carry no `encData`. Timestamps are `yyyyMMddHHmmss` Beijing time (the
//!   specification's example; 13-digit epoch milliseconds are accepted) and are refused more
//!   than 5 minutes off, both ways. Only `refdType=ALL` refunds are made (every part back).
//!   Retrying 6201 with the same `medOrgOrd` and content, or 6203 with the same `appRefdSn`
//!   and content, returns the first answer; the same key with other content is refused
//!   (`DUPLICATE_CONFLICT`).

mod client;
pub mod envelope;
pub mod rules;
#[cfg(feature = "sandbox")]
mod sandbox;
/// Fixed, public keys for the sandbox and tests: never a real merchant's.
#[cfg(any(test, feature = "sandbox"))]
pub mod test_keys;
#[cfg(test)]
mod tests;
pub mod yuan;

pub use client::{InsuranceClient, InsuranceConfig};
pub use rules::{compute_split, ItemClass, Policy, Rules, SandboxPerson, Split, YearToDate};
#[cfg(feature = "sandbox")]
pub use sandbox::{sandbox_router, InsuranceSandbox, InsuranceSandboxConfig, PlantedDifference, SandboxOrder};

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::Fen;
use serde::{Deserialize, Serialize};

use crate::BoxFuture;

/// The routes, relative to the platform's base URL.
pub mod path {
    pub const USER_QUERY: &str = "/org/local/api/hos/user_query";
    pub const AUTH_REVOKE: &str = "/org/local/api/hos/auth_revoke";
    /// 6201
    pub const UPLOAD_FEES: &str = "/org/local/api/hos/uldFeeInfo";
    /// 6202
    pub const PAY_ORDER: &str = "/org/local/api/hos/pay_order";
    pub const CONFIRM: &str = "/org/local/api/hos/setl_confirm";
    /// 6301
    pub const QUERY: &str = "/org/local/api/hos/query_order_info";
    /// 6401
    pub const REVOKE: &str = "/org/local/api/hos/revoke_order";
    /// 6203
    pub const REFUND: &str = "/org/local/api/hos/refund_Order";
    pub const SETTLEMENT_LIST: &str = "/org/local/api/hos/setl_list";
}

/// The answer codes (`code`) the sandbox gives and callers act on; 0 is success.
pub mod code {
    pub const OK: i64 = 0;
    /// A required field is missing or malformed.
    pub const PARAM_ERROR: i64 = 10001;
    pub const APP_ID_UNKNOWN: i64 = 10002;
    /// `signData` does not verify under the channel's key.
    pub const SIGN_ERROR: i64 = 10003;
    /// `encData` does not decrypt under the appId/appSecret key.
    pub const DECRYPT_ERROR: i64 = 10004;
    /// `timestamp` missing or more than 5 minutes off.
    pub const TIMESTAMP_ERROR: i64 = 10005;
    /// The authCode or payAuthNo is unknown, used, expired or revoked.
    pub const AUTH_INVALID: i64 = 20001;
    pub const ORDER_NOT_FOUND: i64 = 20002;
    /// The order is not in a state that allows this (e.g. refunding an unsettled order).
    pub const ORDER_STATE: i64 = 20003;
    /// The same medOrgOrd / appRefdSn with different content.
    pub const DUPLICATE_CONFLICT: i64 = 20004;
    /// The person's year changed since 6202: pre-settle again.
    pub const SPLIT_CHANGED: i64 = 20005;
    /// Amounts that do not add up or do not match the order.
    pub const AMOUNT_MISMATCH: i64 = 20006;
    /// No policy covers the person (region and insured type).
    pub const NOT_COVERED: i64 = 20007;
    pub const SYSTEM_ERROR: i64 = 99999;
}

/// 险种类型: employee (职工基本医疗保险, 310) or resident (城乡居民基本医疗保险, 390).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsuredType {
    Employee,
    Resident,
}

impl InsuredType {
    /// The national `insutype` code.
    pub fn insutype(self) -> &'static str {
        match self {
            InsuredType::Employee => "310",
            InsuredType::Resident => "390",
        }
    }

    pub fn from_insutype(code: &str) -> Option<Self> {
        match code {
            "310" => Some(InsuredType::Employee),
            "390" => Some(InsuredType::Resident),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            InsuredType::Employee => "职工",
            InsuredType::Resident => "居民",
        }
    }
}

/// What the mini-program received from the 医保电子凭证 authorisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest {
    pub auth_code: String,
    /// The payer's openid in our mini-program, when the channel is WeChat.
    pub openid: Option<String>,
}

/// A bound insurance identity. `id_no` is sensitive: store it encrypted, show it masked.
#[derive(Clone, PartialEq, Eq)]
pub struct InsuredIdentity {
    /// The payment authorisation number every settlement call carries; it expires.
    pub pay_auth_no: String,
    /// 人员编号.
    pub psn_no: String,
    pub name: String,
    /// 证件类型 (01 = 居民身份证).
    pub id_type: String,
    pub id_no: String,
    pub insured_type: InsuredType,
    /// 参保地医保区划.
    pub region: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for InsuredIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked: String = self
            .id_no
            .chars()
            .enumerate()
            .map(|(i, c)| if i < 3 || i + 4 >= self.id_no.chars().count() { c } else { '*' })
            .collect();
        f.debug_struct("InsuredIdentity")
            .field("pay_auth_no", &self.pay_auth_no)
            .field("psn_no", &self.psn_no)
            .field("name", &self.name)
            .field("id_type", &self.id_type)
            .field("id_no", &masked)
            .field("insured_type", &self.insured_type)
            .field("region", &self.region)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One billed item (`feedetailList` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeItem {
    /// 费用明细流水号, unique within the order.
    pub feedetl_sn: String,
    /// 医疗目录编码: the national catalogue code, which decides 甲/乙/丙.
    pub med_list_codg: String,
    /// 医药机构目录编码: the hospital's own code.
    pub medins_list_codg: String,
    pub count: u32,
    pub unit_price: Fen,
    /// Must equal `count × unit_price`.
    pub amount: Fen,
}

/// 6201: the bill of one order, uploaded against a bound identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeUpload {
    pub identity: InsuredIdentity,
    /// 医疗机构订单号: our order number; the idempotency key of the upload.
    pub med_org_ord: String,
    /// 医疗类别, e.g. `11` 普通门诊.
    pub med_type: String,
    pub dept_code: String,
    pub dept_name: String,
    /// 科别 (national department code).
    pub caty: String,
    pub begin: DateTime<Utc>,
    /// 收费批次号.
    pub charge_batch: String,
    /// 个人账户使用标志: let the personal account pay the patient's share.
    pub use_account: bool,
    pub items: Vec<FeeItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeUploadResult {
    pub pay_ord_id: String,
    /// Carried by 6202, 6301 and 6401 for this order.
    pub pay_token: String,
    /// 就诊 ID.
    pub mdtrt_id: String,
    pub med_org_ord: String,
    pub total: Fen,
}

/// 6202.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreSettleRequest {
    pub pay_auth_no: String,
    pub pay_ord_id: String,
    pub pay_token: String,
    pub mdtrt_id: String,
    /// 机构业务流水号: our reference for this pre-settlement.
    pub org_biz_ser: String,
    pub charge_batch: String,
    pub use_account: bool,
}

/// How a bill divides; always `fund + account + cash == total` (checked on every answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitAmounts {
    /// feeSumamt
    pub total: Fen,
    /// fundPay
    pub fund: Fen,
    /// psnAcctPay
    pub account: Fen,
    /// ownPayAmt: what WeChat Pay or Alipay collects.
    pub cash: Fen,
}

/// 6202's `extData.preSetl`: how the fund's share came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreSettlementDetail {
    /// fulamt_ownpay_amt: not covered (丙类).
    pub uncovered: Fen,
    /// inscp_scp_amt
    pub in_scope: Fen,
    /// act_pay_dedc: deductible paid by this bill.
    pub deductible: Fen,
    /// balc: the personal account balance after this bill.
    pub account_balance_after: Fen,
}

/// `ordStas`, the national order status dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    /// 0 已保存 (fees uploaded)
    Saved,
    /// 1 预结算完成
    PreSettled,
    /// 2 结算中
    Settling,
    /// 3 自费完成
    CashPaid,
    /// 4 医保支付完成
    InsurancePaid,
    /// 5 院内结算完成
    HospitalSettled,
    /// 6 结算完成
    Settled,
    /// 7 已退款
    Refunded,
    /// 8 已医保全部退款
    InsuranceRefunded,
    /// 9 仅自费全部退款
    CashRefunded,
    /// 10 仅自费部分退款
    CashPartlyRefunded,
    /// 11 医保全部退自费部分退款
    InsuranceRefundedCashPartly,
    /// 12 已撤销
    Revoked,
    /// 13 医保已撤销
    InsuranceRevoked,
    /// 14 异常
    Abnormal,
    /// 15 结算失败
    Failed,
    /// 16 医保结算失败自费冲正失败
    FailedReversalFailed,
    /// A code this build does not know: treat as not settled, query again later.
    Other(String),
}

const ORDER_STATUSES: [OrderStatus; 17] = [
    OrderStatus::Saved,
    OrderStatus::PreSettled,
    OrderStatus::Settling,
    OrderStatus::CashPaid,
    OrderStatus::InsurancePaid,
    OrderStatus::HospitalSettled,
    OrderStatus::Settled,
    OrderStatus::Refunded,
    OrderStatus::InsuranceRefunded,
    OrderStatus::CashRefunded,
    OrderStatus::CashPartlyRefunded,
    OrderStatus::InsuranceRefundedCashPartly,
    OrderStatus::Revoked,
    OrderStatus::InsuranceRevoked,
    OrderStatus::Abnormal,
    OrderStatus::Failed,
    OrderStatus::FailedReversalFailed,
];

impl OrderStatus {
    pub fn code(&self) -> String {
        match self {
            OrderStatus::Other(code) => code.clone(),
            known => ORDER_STATUSES.iter().position(|s| s == known).expect("every known status is listed").to_string(),
        }
    }

    pub fn from_code(code: &str) -> Self {
        code.parse::<usize>()
            .ok()
            .and_then(|i| ORDER_STATUSES.get(i).cloned())
            .unwrap_or_else(|| OrderStatus::Other(code.into()))
    }

    /// Settled, the insurance part final (3-6).
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            OrderStatus::CashPaid | OrderStatus::InsurancePaid | OrderStatus::HospitalSettled | OrderStatus::Settled
        )
    }
}

/// An order as 6202, the confirmation and 6301 describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub pay_ord_id: String,
    pub status: OrderStatus,
    pub med_org_ord: Option<String>,
    /// Absent while the centre is still processing (6301 of status 0 or 2 may carry none).
    pub amounts: Option<SplitAmounts>,
    /// 6202 only.
    pub detail: Option<PreSettlementDetail>,
    /// 结算 ID, once settled.
    pub setl_id: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// The channel that collected the cash part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CashChannel {
    WechatPay,
    Alipay,
    /// Nothing to collect (ownPayAmt 0).
    None,
}

impl CashChannel {
    pub fn wire(self) -> &'static str {
        match self {
            CashChannel::WechatPay => "WECHAT",
            CashChannel::Alipay => "ALIPAY",
            CashChannel::None => "NONE",
        }
    }

    pub fn from_wire(text: &str) -> Option<Self> {
        match text {
            "WECHAT" => Some(CashChannel::WechatPay),
            "ALIPAY" => Some(CashChannel::Alipay),
            "NONE" => Some(CashChannel::None),
            _ => None,
        }
    }
}

/// Settles the insurance part once the cash part is paid (or is zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmRequest {
    pub pay_ord_id: String,
    pub pay_token: String,
    pub channel: CashChannel,
    /// WeChat's transaction_id or Alipay's trade_no; `None` with `CashChannel::None`.
    pub cash_trade_no: Option<String>,
    /// What was collected: must equal 6202's ownPayAmt.
    pub cash_amount: Fen,
}

/// Names an order for 6301 and 6401: its credentials and the patient's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    pub pay_ord_id: String,
    pub pay_token: String,
    pub id_type: String,
    pub id_no: String,
    pub name: String,
}

impl OrderRef {
    pub fn new(pay_ord_id: &str, pay_token: &str, identity: &InsuredIdentity) -> Self {
        Self {
            pay_ord_id: pay_ord_id.into(),
            pay_token: pay_token.into(),
            id_type: identity.id_type.clone(),
            id_no: identity.id_no.clone(),
            name: identity.name.clone(),
        }
    }
}

/// 6203, `refdType=ALL`: every part back (fund, personal account, and the cash part, which
/// the platform refunds through WeChat Pay or Alipay itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub pay_ord_id: String,
    pub pay_auth_no: String,
    /// 应用退款流水号: our refund number, the idempotency key.
    pub app_refd_sn: String,
    pub at: DateTime<Utc>,
    /// Must equal the settled amounts, part by part.
    pub amounts: SplitAmounts,
}

/// `refStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Success,
    Failed,
    /// EXP: unknown outcome, query again.
    Abnormal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    pub pay_ord_id: String,
    pub app_refd_sn: String,
    pub status: RefundStatus,
    pub refunded: SplitAmounts,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// `SETL`
    Settlement,
    /// `REFD`
    Refund,
}

/// One line of the centre's settlement list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettlementRecord {
    pub kind: RecordKind,
    pub pay_ord_id: String,
    pub med_org_ord: String,
    /// setlId for a settlement, appRefdSn for a refund.
    pub reference: String,
    pub at: DateTime<Utc>,
    /// Refunds are listed with positive amounts.
    pub amounts: SplitAmounts,
}

#[derive(Debug, thiserror::Error)]
pub enum InsuranceError {
    /// The platform answered (signed) and refused: `code` is one of [`code`].
    #[error("insurance platform refused ({code}): {message}")]
    Api { code: i64, message: String },
    /// No answer (DNS, TLS, timeout, connection reset).
    #[error("insurance platform unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// An answer that is not verifiably the platform's (signature, appId, encryption, clock):
    /// nothing in it is trusted.
    #[error("unverifiable insurance platform answer (HTTP {status}): {reason}")]
    Unverified { status: u16, reason: String },
    /// A verified answer that is not the documented shape, or whose amounts do not add up.
    #[error("unexpected insurance platform answer (HTTP {status}): {detail}")]
    UnexpectedResponse { status: u16, detail: String },
    /// Refused before sending: the platform would refuse it too.
    #[error("invalid insurance request: {0}")]
    InvalidRequest(String),
    #[error("invalid insurance configuration: {0}")]
    Config(String),
}

impl InsuranceError {
    /// A network failure, a 5xx or the platform's system error: the same call (same
    /// medOrgOrd / appRefdSn) may succeed later and is safe to repeat.
    pub fn is_retryable(&self) -> bool {
        match self {
            InsuranceError::Transport(_) => true,
            InsuranceError::Api { code, .. } => *code == code::SYSTEM_ERROR,
            InsuranceError::Unverified { status, .. } | InsuranceError::UnexpectedResponse { status, .. } => {
                *status >= 500
            }
            _ => false,
        }
    }

    pub fn api_code(&self) -> Option<i64> {
        match self {
            InsuranceError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The medical insurance platform for the hospital's orders. Object safe, so the server holds
/// `Arc<dyn Insurance>` and points the real client at the sandbox by configuration.
///
/// The checkout: `bind` (once per authorisation) → `upload_fees` (6201) → `pre_settle` (6202,
/// shows the split) → collect `cash` by WeChat Pay or Alipay (skip if zero) → `confirm` →
/// settled. Cancel before confirming with `revoke` (6401); reverse a settled order with
/// `refund` (6203, plus the cash refund through the payment channel). `query` (6301) tells
/// the truth after a timeout; `settlement_list` feeds reconciliation.
pub trait Insurance: Send + Sync {
    fn bind(&self, req: BindRequest) -> BoxFuture<'_, Result<InsuredIdentity, InsuranceError>>;

    /// Withdraws a payAuthNo: the centre refuses it afterwards.
    fn unbind<'a>(&'a self, pay_auth_no: &'a str) -> BoxFuture<'a, Result<(), InsuranceError>>;

    /// 6201.
    fn upload_fees(&self, req: FeeUpload) -> BoxFuture<'_, Result<FeeUploadResult, InsuranceError>>;

    /// 6202: the split (status PreSettled).
    fn pre_settle(&self, req: PreSettleRequest) -> BoxFuture<'_, Result<Settlement, InsuranceError>>;

    /// Settles at the pre-settled split once the cash part is collected (status Settled).
    fn confirm(&self, req: ConfirmRequest) -> BoxFuture<'_, Result<Settlement, InsuranceError>>;

    /// 6301.
    fn query(&self, req: OrderRef) -> BoxFuture<'_, Result<Settlement, InsuranceError>>;

    /// 6401: cancels an uploaded order not yet settled.
    fn revoke(&self, req: OrderRef) -> BoxFuture<'_, Result<(), InsuranceError>>;

    /// 6203 with refdType ALL.
    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<RefundResult, InsuranceError>>;

    /// The centre's settlements and refunds of one day (Beijing time).
    fn settlement_list(&self, date: NaiveDate) -> BoxFuture<'_, Result<Vec<SettlementRecord>, InsuranceError>>;
}
