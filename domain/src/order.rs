//! Payment orders (订单) and their state machine (PAY-1, PAY-3..6): created, paying, paid,
//! closed, refunding, refunded. An order pays a registration (挂号费), fee items of one 就诊人
//! (检查费, 药费: one checkout, several items), or a top-up of the account balance. Its money may
//! come in parts: the insurance fund and personal account (医保统筹, 个人账户, settled through the
//! insurance platform) and the cash part (自付) by WeChat Pay, Alipay or the balance. Amounts are
//! integer fen; a refund never exceeds what was paid.
//!
//! What the parts do to the ledger is decided here too (`*_movement`), so an order and its
//! ledger movement are one decision, written in one store write by the order's payment actor.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::billing::{FeeItemId, FeeType};
use crate::ledger::{income_legs, Channel, LedgerAccount, Leg, Movement, MovementKind, Provider, ProviderRef};
use crate::{AccountId, AppointmentId, DepartmentId, Fen, OrderId, PatientId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for the patient to pay.
    Created,
    /// A payment is under way: a prepay order exists at a provider, or cash arrived and the
    /// insurance settlement is being confirmed.
    Paying,
    Paid,
    /// Closed unpaid (expired, cancelled, or a checkout reversed in full).
    Closed,
    /// A refund was asked of the providers and has not completed.
    Refunding,
    /// Fully refunded.
    Refunded,
}

impl OrderStatus {
    /// Nothing more will happen to the order by itself.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Closed | OrderStatus::Refunded)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paying => "paying",
            OrderStatus::Paid => "paid",
            OrderStatus::Closed => "closed",
            OrderStatus::Refunding => "refunding",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Created, Self::Paying, Self::Paid, Self::Closed, Self::Refunding, Self::Refunded]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// 挂号费: made by the doctor's schedule actor with the hold.
    Registration,
    /// Fee items of one 就诊人 (检查费, 药费).
    Fees,
    /// 充值: money into the account balance.
    TopUp,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Registration => "registration",
            OrderKind::Fees => "fees",
            OrderKind::TopUp => "top_up",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

/// The insurance part of a refund (6203, every part back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InsuranceRefund {
    /// 应用退款流水号, the platform's idempotency key.
    pub app_refd_sn: String,
    pub fund: Fen,
    pub account: Fen,
    pub done: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundRecord {
    /// Our refund number at the cash channel (`out_refund_no` / `out_request_no`).
    pub refund_no: String,
    /// Everything this refund gives back (insurance parts included).
    pub amount: Fen,
    pub reason: String,
    pub status: RefundStatus,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// Where the cash part came from (None: a registration order of before, WeChat Pay).
    #[serde(default)]
    pub channel: Option<Channel>,
    /// The cash part of `amount` (None: all of it).
    #[serde(default)]
    pub cash: Option<Fen>,
    /// The cash part goes to the account balance instead of back through its channel.
    #[serde(default)]
    pub to_balance: bool,
    #[serde(default)]
    pub cash_done: bool,
    #[serde(default)]
    pub insurance: Option<InsuranceRefund>,
}

impl RefundRecord {
    pub fn cash_amount(&self) -> Fen {
        self.cash.unwrap_or(self.amount)
    }

    /// Where the cash part of the refund goes.
    pub fn cash_destination(&self) -> Option<Channel> {
        if self.to_balance {
            Some(Channel::Balance)
        } else {
            Some(self.channel.unwrap_or(Channel::WechatPay))
        }
    }

    fn all_parts_done(&self) -> bool {
        (self.cash_done || self.cash_amount() == Fen::ZERO) && self.insurance.as_ref().is_none_or(|i| i.done)
    }
}

/// One line of what an order pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderItem {
    /// The fee item paid (none for a registration or a top-up).
    pub fee_item_id: Option<FeeItemId>,
    pub fee_type: FeeType,
    pub name: String,
    pub quantity: u32,
    pub amount: Fen,
    pub department_id: Option<DepartmentId>,
    /// 医疗目录编码; none: not billed to insurance.
    pub insurance_code: Option<String>,
}

/// Where a cash trade at an online provider stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TradeState {
    /// Placed at the provider, not paid (yet).
    Open,
    Paid,
    /// Closed at the provider unpaid: it can never be paid.
    Closed,
}

/// The cash part at one provider. One trade per provider per order, numbered with the order's
/// `out_trade_no`, so a patient who switches from one provider to another cannot pay both: the
/// first trade is closed at its provider before the second is placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CashTrade {
    pub channel: Channel,
    pub out_trade_no: String,
    pub amount: Fen,
    pub state: TradeState,
    /// The provider's id (WeChat `transaction_id`, Alipay `trade_no`) once paid.
    pub trade_no: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    /// A second payment of an order already paid another way (PAY-6): not the order's money,
    /// given back through its channel under this refund number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_no: Option<String>,
    /// That second payment is back with the payer.
    #[serde(default)]
    pub returned: bool,
}

/// How far the insurance part has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InsuranceStage {
    /// 6202 answered: the split is known, nothing is settled.
    PreSettled,
    /// Confirmed at the centre: the fund and the personal account paid.
    Settled,
    /// Cancelled (6401) before settling.
    Revoked,
    /// Refunded (6203).
    Refunded,
}

/// An insurance split, always `fund + account + cash == total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InsuranceSplit {
    /// 医疗费总额 (feeSumamt)
    pub total: Fen,
    /// 统筹基金支付 (fundPay)
    pub fund: Fen,
    /// 个人账户支付 (psnAcctPay)
    pub account: Fen,
    /// 个人现金支付 (ownPayAmt): what WeChat Pay or Alipay collects.
    pub cash: Fen,
}

impl InsuranceSplit {
    pub fn adds_up(&self) -> bool {
        self.fund.get().checked_add(self.account.get()).and_then(|s| s.checked_add(self.cash.get()))
            == Some(self.total.get())
    }

    /// What the insurance platform pays: fund plus personal account.
    pub fn insured(&self) -> Fen {
        Fen::new(self.fund.get() + self.account.get())
    }
}

/// The insurance part of a checkout (PAY-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InsurancePart {
    /// 人员编号
    pub psn_no: String,
    /// The authorisation the settlement was made under, sealed (the store's field cipher).
    pub pay_auth_no: String,
    pub name: String,
    /// 证件类型 and the ID number (sealed): 6301 and 6401 name the patient.
    pub id_type: String,
    pub id_no: String,
    /// `employee` (职工) or `resident` (居民).
    pub insured_type: String,
    /// 参保地区划
    pub region: String,
    /// Our order number at the platform (medOrgOrd).
    pub med_org_ord: String,
    pub pay_ord_id: String,
    pub pay_token: String,
    pub mdtrt_id: String,
    pub split: InsuranceSplit,
    /// The intermediate figures of 6202: not covered (丙类), in scope, deductible paid.
    pub uncovered: Fen,
    pub in_scope: Fen,
    pub deductible: Fen,
    pub stage: InsuranceStage,
    pub setl_id: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
}

/// A checkout being undone in full: the settlement was refused after the cash arrived, or the
/// order lapsed mid-way. The cash goes back through its channel, the insurance order is
/// revoked, and the order ends closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reversal {
    pub reason: String,
    pub started_at: DateTime<Utc>,
    /// The refund number of the cash given back (when cash had arrived).
    pub cash_refund_no: Option<String>,
    pub cash_returned: bool,
    pub insurance_revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub kind: OrderKind,
    pub account_id: AccountId,
    /// The appointment a registration order pays for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<AppointmentId>,
    /// The 就诊人 a fee order is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<PatientId>,
    pub description: String,
    pub amount: Fen,
    pub status: OrderStatus,
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    /// After this the order can no longer be paid (the hold lapses, the fee order expires).
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub expires_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::serialize_opt")]
    pub paid_at: Option<DateTime<Utc>>,
    /// The provider's id of the cash payment.
    pub transaction_id: Option<String>,
    pub refunds: Vec<RefundRecord>,
    /// Provider notification ids already handled: a repeat is acknowledged and ignored.
    pub notifications_seen: Vec<String>,
    /// What it pays, line by line (empty for an order of before: one registration line).
    #[serde(default)]
    pub items: Vec<OrderItem>,
    /// The cash channel chosen at checkout (WeChat Pay, Alipay or the balance).
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub trades: Vec<CashTrade>,
    #[serde(default)]
    pub insurance: Option<InsurancePart>,
    #[serde(default)]
    pub reversal: Option<Reversal>,
    /// When the order's actor should look at it again (a payment to chase, an expiry, a refund
    /// to finish): the open-order sweeper's due time. None once final.
    #[serde(default, serialize_with = "crate::timestamp::serialize_opt")]
    pub next_check_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order that is {0:?} cannot do this")]
    InvalidState(OrderStatus),
    #[error("the amount paid ({paid}) is not the amount due ({due})")]
    WrongAmount { paid: Fen, due: Fen },
    #[error("refunds would exceed the amount paid")]
    RefundTooLarge,
    #[error("an order with an insurance settlement is refunded in full (every part back)")]
    PartialInsuranceRefund,
    #[error("the insurance split does not add up to the order's amount")]
    SplitMismatch,
    #[error("this order cannot be paid that way: {0}")]
    Channel(&'static str),
}

/// Whether a cash payment was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CashOutcome {
    /// First time: the trade is now paid.
    First,
    /// Already recorded: nothing changed.
    Repeat,
    /// The order was already paid another way: this money is not the order's and goes back.
    Extra,
}

/// One digit per channel, for numbers that must differ by channel.
fn channel_digit(c: Channel) -> u8 {
    match c {
        Channel::WechatPay => 1,
        Channel::Alipay => 2,
        Channel::InsuranceFund => 3,
        Channel::PersonalAccount => 4,
        Channel::Balance => 5,
    }
}

impl Order {
    /// A new, unpaid order with no lines.
    pub fn new(
        id: OrderId,
        kind: OrderKind,
        account_id: AccountId,
        description: String,
        amount: Fen,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            kind,
            account_id,
            appointment_id: None,
            patient_id: None,
            description,
            amount,
            status: OrderStatus::Created,
            created_at,
            expires_at,
            paid_at: None,
            transaction_id: None,
            refunds: vec![],
            notifications_seen: vec![],
            items: vec![],
            channel: None,
            trades: vec![],
            insurance: None,
            reversal: None,
            next_check_at: Some(expires_at),
        }
    }

    /// The registration fee's order (挂号费) of a held appointment: unpaid, lapsing with the hold.
    pub fn registration(a: &crate::appointment::Appointment) -> Self {
        let description = format!("挂号费 {} {}", a.date, a.period.label());
        let mut o = Self::new(
            a.order_id,
            OrderKind::Registration,
            a.account_id,
            description,
            a.fee,
            a.created_at,
            a.hold_expires_at,
        );
        o.appointment_id = Some(a.id);
        o
    }

    /// The order's own out_trade_no at every provider: its id without hyphens (32 characters,
    /// within WeChat Pay's 6-32 and Alipay's 1-64 of `[0-9A-Za-z_]`).
    pub fn out_trade_no(&self) -> String {
        self.id.0.simple().to_string()
    }

    /// The order an `out_trade_no` belongs to.
    pub fn id_of_out_trade_no(s: &str) -> Option<OrderId> {
        (s.len() == 32).then(|| uuid::Uuid::try_parse(s).ok().map(OrderId)).flatten()
    }

    /// The lines income is booked to: the items, or one registration line for an order of
    /// before.
    pub fn income_lines(&self) -> Vec<(FeeType, Option<DepartmentId>, Fen)> {
        if self.items.is_empty() {
            return vec![(FeeType::Registration, None, self.amount)];
        }
        self.items.iter().map(|i| (i.fee_type, i.department_id, i.amount)).collect()
    }

    /// What the cash channel must collect: everything, or what the insurance split leaves.
    pub fn cash_due(&self) -> Fen {
        match &self.insurance {
            Some(i) if matches!(i.stage, InsuranceStage::PreSettled | InsuranceStage::Settled) => i.split.cash,
            _ => self.amount,
        }
    }

    pub fn trade(&self, channel: Channel) -> Option<&CashTrade> {
        self.trades.iter().find(|t| t.channel == channel)
    }

    /// The trade that paid the order (never a second payment, which is given back).
    pub fn paid_trade(&self) -> Option<&CashTrade> {
        self.trades.iter().find(|t| t.state == TradeState::Paid && t.return_no.is_none())
    }

    /// Second payments still to give back.
    pub fn returns_due(&self) -> impl Iterator<Item = &CashTrade> {
        self.trades.iter().filter(|t| t.return_no.is_some() && !t.returned)
    }

    /// A second payment given back: recorded once. Returns whether it was new.
    pub fn extra_returned(&mut self, return_no: &str) -> bool {
        match self.trades.iter_mut().find(|t| t.return_no.as_deref() == Some(return_no)) {
            Some(t) if !t.returned => {
                t.returned = true;
                true
            }
            _ => false,
        }
    }

    /// Chooses the cash channel for a checkout. While no cash has arrived it may change; a
    /// trade already closed at its provider cannot be used again.
    pub fn choose_channel(&mut self, channel: Channel) -> Result<(), OrderError> {
        if !matches!(self.status, OrderStatus::Created | OrderStatus::Paying) || self.reversal.is_some() {
            return Err(OrderError::InvalidState(self.status));
        }
        if matches!(channel, Channel::InsuranceFund | Channel::PersonalAccount) {
            return Err(OrderError::Channel("the insurance parts are settled, not chosen"));
        }
        if self.kind == OrderKind::TopUp && channel == Channel::Balance {
            return Err(OrderError::Channel("a top-up is paid by WeChat Pay or Alipay"));
        }
        if self.insurance.is_some() && channel == Channel::Balance {
            return Err(OrderError::Channel(
                "the self-pay part of an insurance checkout is paid by WeChat Pay or Alipay",
            ));
        }
        if self.paid_trade().is_some() {
            return Err(OrderError::InvalidState(OrderStatus::Paying));
        }
        if self.trade(channel).is_some_and(|t| t.state == TradeState::Closed) {
            return Err(OrderError::Channel("this channel's trade was closed: create a new order"));
        }
        self.channel = Some(channel);
        Ok(())
    }

    /// A trade was placed at the provider (again: the provider answers with the same one).
    pub fn open_trade(&mut self, channel: Channel, amount: Fen) {
        if self.trade(channel).is_none() {
            self.trades.push(CashTrade {
                channel,
                out_trade_no: self.out_trade_no(),
                amount,
                state: TradeState::Open,
                trade_no: None,
                paid_at: None,
                return_no: None,
                returned: false,
            });
        }
        if self.status == OrderStatus::Created {
            self.status = OrderStatus::Paying;
        }
    }

    /// The provider closed a trade unpaid.
    pub fn trade_closed(&mut self, channel: Channel) {
        if let Some(t) = self.trades.iter_mut().find(|t| t.channel == channel && t.state == TradeState::Open) {
            t.state = TradeState::Closed;
        }
    }

    pub fn start_paying(&mut self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Created | OrderStatus::Paying => {
                self.status = OrderStatus::Paying;
                Ok(())
            }
            s => Err(OrderError::InvalidState(s)),
        }
    }

    /// Records cash that arrived through `channel` (a verified notification or a query). The
    /// amount must be the trade's (the cash due). Without an insurance part the order is then
    /// paid; with one it stays paying until the settlement is confirmed (`settle`). A closed
    /// order paid anyway (the provider's clock) records the money: the caller gives it back. A
    /// second payment of an order already paid another way is `Extra`: not counted, given back.
    pub fn record_cash(
        &mut self,
        channel: Channel,
        trade_no: &str,
        amount: Fen,
        at: DateTime<Utc>,
    ) -> Result<CashOutcome, OrderError> {
        let due = self.trade(channel).map(|t| t.amount).unwrap_or_else(|| self.cash_due());
        if amount != due {
            return Err(OrderError::WrongAmount { paid: amount, due });
        }
        if self.trade(channel).is_some_and(|t| t.state == TradeState::Paid)
            || self.transaction_id.as_deref() == Some(trade_no)
        {
            return Ok(CashOutcome::Repeat);
        }
        let extra = self.paid_trade().is_some()
            || matches!(self.status, OrderStatus::Paid | OrderStatus::Refunding | OrderStatus::Refunded)
            || (self.status == OrderStatus::Closed && self.insurance.is_some());
        // A second payment is numbered for its way back: `X`, 30 of the order number, the channel.
        let return_no = extra.then(|| format!("X{}{}", &self.out_trade_no()[..30], channel_digit(channel)));
        match self.trades.iter_mut().find(|t| t.channel == channel) {
            Some(t) => {
                t.state = TradeState::Paid;
                t.trade_no = Some(trade_no.to_string());
                t.paid_at = Some(at);
                t.return_no = return_no;
            }
            None => self.trades.push(CashTrade {
                channel,
                out_trade_no: self.out_trade_no(),
                amount,
                state: TradeState::Paid,
                trade_no: Some(trade_no.to_string()),
                paid_at: Some(at),
                return_no,
                returned: false,
            }),
        }
        if extra {
            return Ok(CashOutcome::Extra);
        }
        self.channel = Some(channel);
        self.transaction_id = Some(trade_no.to_string());
        let insured = self.insurance.as_ref().is_some_and(|i| i.stage == InsuranceStage::PreSettled);
        if insured {
            self.status = OrderStatus::Paying;
        } else {
            self.status = OrderStatus::Paid;
            self.paid_at = Some(at);
        }
        Ok(CashOutcome::First)
    }

    /// A provider says the registration order was paid (WeChat Pay). Returns false if this
    /// order was already paid (a repeated notification): nothing changes then.
    pub fn mark_paid(&mut self, amount: Fen, transaction_id: &str, at: DateTime<Utc>) -> Result<bool, OrderError> {
        self.record_cash(Channel::WechatPay, transaction_id, amount, at).map(|o| o == CashOutcome::First)
    }

    /// Paid in full from the balance (the movement is written with this change).
    pub fn pay_from_balance(&mut self, at: DateTime<Utc>) -> Result<(), OrderError> {
        if !matches!(self.status, OrderStatus::Created | OrderStatus::Paying) || self.insurance.is_some() {
            return Err(OrderError::InvalidState(self.status));
        }
        self.channel = Some(Channel::Balance);
        self.status = OrderStatus::Paid;
        self.paid_at = Some(at);
        Ok(())
    }

    /// The insurance part was pre-settled (6201 + 6202).
    pub fn pre_settled(&mut self, part: InsurancePart) -> Result<(), OrderError> {
        if !matches!(self.status, OrderStatus::Created | OrderStatus::Paying) || !self.trades.is_empty() {
            return Err(OrderError::InvalidState(self.status));
        }
        if part.split.total != self.amount || !part.split.adds_up() {
            return Err(OrderError::SplitMismatch);
        }
        if self.channel == Some(Channel::Balance) {
            self.channel = None;
        }
        self.insurance = Some(part);
        Ok(())
    }

    /// The centre confirmed the settlement: the order is paid, every part.
    pub fn settle(&mut self, setl_id: Option<String>, at: DateTime<Utc>) -> Result<bool, OrderError> {
        let Some(part) = self.insurance.as_mut() else { return Err(OrderError::InvalidState(self.status)) };
        if part.stage == InsuranceStage::Settled {
            return Ok(false);
        }
        if part.stage != InsuranceStage::PreSettled {
            return Err(OrderError::InvalidState(self.status));
        }
        part.stage = InsuranceStage::Settled;
        part.setl_id = setl_id;
        part.settled_at = Some(at);
        self.status = OrderStatus::Paid;
        self.paid_at = Some(at);
        Ok(true)
    }

    /// Whether an insurance checkout has its cash and waits for the centre's confirmation.
    pub fn awaiting_settlement(&self) -> bool {
        self.reversal.is_none()
            && self.insurance.as_ref().is_some_and(|i| i.stage == InsuranceStage::PreSettled)
            && (self.paid_trade().is_some() || self.cash_due() == Fen::ZERO)
            && self.status == OrderStatus::Paying
    }

    /// Starts undoing a checkout that cannot complete.
    pub fn start_reversal(&mut self, reason: &str, at: DateTime<Utc>) {
        if self.reversal.is_none() {
            let cash_refund_no = self.paid_trade().map(|_| format!("V{}", &self.out_trade_no()[..30]));
            self.reversal = Some(Reversal {
                reason: reason.into(),
                started_at: at,
                cash_refund_no,
                cash_returned: false,
                insurance_revoked: self.insurance.as_ref().is_none_or(|i| i.stage != InsuranceStage::PreSettled),
            });
            if self.status == OrderStatus::Created {
                self.status = OrderStatus::Paying;
            }
        }
    }

    /// A reversal whose parts are all undone closes the order.
    pub fn finish_reversal_if_done(&mut self) -> bool {
        let Some(r) = &self.reversal else { return false };
        let cash_done = r.cash_refund_no.is_none() || r.cash_returned;
        if cash_done && r.insurance_revoked && self.status != OrderStatus::Closed {
            self.status = OrderStatus::Closed;
            return true;
        }
        false
    }

    pub fn close(&mut self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Created | OrderStatus::Paying if self.paid_trade().is_none() => {
                self.status = OrderStatus::Closed;
                for t in self.trades.iter_mut().filter(|t| t.state == TradeState::Open) {
                    t.state = TradeState::Closed;
                }
                Ok(())
            }
            OrderStatus::Closed => Ok(()),
            s => Err(OrderError::InvalidState(s)),
        }
    }

    pub fn refunded_total(&self) -> Fen {
        self.refunds
            .iter()
            .filter(|r| r.status != RefundStatus::Failed)
            .fold(Fen::ZERO, |a, r| a.checked_add(r.amount).unwrap_or(a))
    }

    /// Starts a refund of `amount` (full or partial; an insurance order in full only): cash
    /// back through its channel, or to the balance.
    pub fn start_refund(
        &mut self,
        refund_no: String,
        amount: Fen,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        self.start_refund_to(refund_no, amount, reason, false, at)
    }

    pub fn start_refund_to(
        &mut self,
        refund_no: String,
        amount: Fen,
        reason: &str,
        to_balance: bool,
        at: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        if !matches!(self.status, OrderStatus::Paid | OrderStatus::Refunding) {
            return Err(OrderError::InvalidState(self.status));
        }
        let total = self.refunded_total().checked_add(amount).ok_or(OrderError::RefundTooLarge)?;
        if total > self.amount || amount == Fen::ZERO {
            return Err(OrderError::RefundTooLarge);
        }
        if self.kind == OrderKind::TopUp && to_balance {
            return Err(OrderError::Channel("a top-up is given back through its channel"));
        }
        let settled = self.insurance.as_ref().filter(|i| i.stage == InsuranceStage::Settled);
        let (cash, insurance) = match settled {
            Some(part) => {
                if amount != self.amount {
                    return Err(OrderError::PartialInsuranceRefund);
                }
                let sn = format!("I{}{:02}", &self.out_trade_no()[..28], self.refunds.len() + 1);
                let ins = InsuranceRefund {
                    app_refd_sn: sn,
                    fund: part.split.fund,
                    account: part.split.account,
                    done: false,
                };
                (part.split.cash, Some(ins))
            }
            None => (amount, None),
        };
        let channel = self.channel.or(Some(Channel::WechatPay));
        let to_balance = to_balance || channel == Some(Channel::Balance);
        self.refunds.push(RefundRecord {
            refund_no,
            amount,
            reason: reason.into(),
            status: RefundStatus::Pending,
            requested_at: at,
            completed_at: None,
            channel,
            cash: Some(cash),
            to_balance,
            cash_done: false,
            insurance,
        });
        self.status = OrderStatus::Refunding;
        Ok(())
    }

    /// Marks one part of a refund done (`cash` true: the cash part, else the insurance part);
    /// when every part is, the refund succeeded. Returns whether the refund just completed.
    pub fn refund_part_done(&mut self, refund_no: &str, cash: bool, at: DateTime<Utc>) -> bool {
        let Some(r) = self.refunds.iter_mut().find(|r| r.refund_no == refund_no) else { return false };
        if r.status != RefundStatus::Pending {
            return false;
        }
        if cash {
            r.cash_done = true;
        } else if let Some(i) = r.insurance.as_mut() {
            i.done = true;
        }
        if !r.all_parts_done() {
            return false;
        }
        r.status = RefundStatus::Succeeded;
        r.completed_at = Some(at);
        let insurance_back = r.insurance.is_some();
        if let Some(i) = self.insurance.as_mut().filter(|_| insurance_back) {
            i.stage = InsuranceStage::Refunded;
        }
        self.settle_refund_status();
        true
    }

    /// The provider finished a refund's cash part (`ok`) or refused it. Returns false if it was
    /// already recorded.
    pub fn finish_refund(&mut self, refund_no: &str, ok: bool, at: DateTime<Utc>) -> bool {
        if ok {
            return self.refund_part_done(refund_no, true, at);
        }
        let Some(r) = self.refunds.iter_mut().find(|r| r.refund_no == refund_no) else { return false };
        if r.status != RefundStatus::Pending {
            return false;
        }
        r.status = RefundStatus::Failed;
        r.completed_at = Some(at);
        self.settle_refund_status();
        true
    }

    fn settle_refund_status(&mut self) {
        if self.refunds.iter().all(|r| r.status != RefundStatus::Pending) {
            let refunded: u64 =
                self.refunds.iter().filter(|r| r.status == RefundStatus::Succeeded).map(|r| r.amount.get()).sum();
            self.status = if refunded == self.amount.get() { OrderStatus::Refunded } else { OrderStatus::Paid };
        }
    }

    // ---- what the order's money does to the ledger ----

    /// A top-up's refund the provider refused: what left the balance with the request comes
    /// back into it.
    pub fn refund_reversal_movement(&self, refund_no: &str, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        let r = self.refunds.iter().find(|r| r.refund_no == refund_no && r.status == RefundStatus::Failed)?;
        if self.kind != OrderKind::TopUp {
            return None;
        }
        let amount = r.amount.get() as i64;
        let legs = vec![
            Leg { account: LedgerAccount::Channel(self.channel?), amount: -amount },
            Leg { account: LedgerAccount::Balance(self.account_id), amount },
        ];
        let key = format!("refund-failed:{}:{}", self.id, r.refund_no);
        Some(self.movement(key, MovementKind::TopUp, legs, at, day))
    }

    /// A second payment arrived through `channel`: held in suspense until it is given back.
    pub fn extra_received_movement(&self, channel: Channel, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        let trade = self.trades.iter().find(|t| t.channel == channel && t.return_no.is_some())?;
        let amount = trade.amount.get() as i64;
        let legs = vec![
            Leg { account: LedgerAccount::Channel(channel), amount: -amount },
            Leg { account: LedgerAccount::Suspense, amount },
        ];
        let mut m =
            self.movement(format!("extra:{}:{}", self.id, channel.as_str()), MovementKind::CashReceived, legs, at, day);
        m.cash_channel = Some(channel);
        m.refs.extend(self.cash_ref(trade, None, trade.amount));
        Some(m)
    }

    /// That second payment given back through its channel.
    pub fn extra_returned_movement(&self, return_no: &str, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        let trade = self.trades.iter().find(|t| t.return_no.as_deref() == Some(return_no) && t.returned)?;
        let amount = trade.amount.get() as i64;
        let legs = vec![
            Leg { account: LedgerAccount::Suspense, amount: -amount },
            Leg { account: LedgerAccount::Channel(trade.channel), amount },
        ];
        let key = format!("extra-return:{}:{}", self.id, trade.channel.as_str());
        let mut m = self.movement(key, MovementKind::CashReturned, legs, at, day);
        m.cash_channel = Some(trade.channel);
        m.refs.extend(self.cash_ref(trade, Some(return_no), trade.amount));
        Some(m)
    }

    fn movement(&self, key: String, kind: MovementKind, legs: Vec<Leg>, at: DateTime<Utc>, day: NaiveDate) -> Movement {
        Movement {
            key,
            kind,
            legs,
            at,
            day,
            account_id: Some(self.account_id),
            order_id: Some(self.id),
            description: self.description.clone(),
            refs: vec![],
            cash_channel: self.paid_trade().map(|t| t.channel).or(self.channel),
        }
    }

    fn cash_ref(&self, trade: &CashTrade, refund: Option<&str>, amount: Fen) -> Option<ProviderRef> {
        Some(ProviderRef {
            provider: Provider::of_channel(trade.channel)?,
            refund: refund.is_some(),
            out_trade_no: trade.out_trade_no.clone(),
            out_refund_no: refund.map(str::to_string),
            provider_no: trade.trade_no.clone(),
            amount,
        })
    }

    fn insurance_ref(&self, part: &InsurancePart, refund: Option<&str>) -> ProviderRef {
        ProviderRef {
            provider: Provider::Insurance,
            refund: refund.is_some(),
            out_trade_no: part.med_org_ord.clone(),
            out_refund_no: refund.map(str::to_string),
            provider_no: Some(part.pay_ord_id.clone()),
            amount: part.split.insured(),
        }
    }

    /// Cash that arrived for an insurance checkout, held in suspense until it settles.
    pub fn cash_received_movement(&self, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        let trade = self.paid_trade()?;
        let amount = trade.amount.get() as i64;
        let legs = vec![
            Leg { account: LedgerAccount::of_channel(trade.channel, self.account_id), amount: -amount },
            Leg { account: LedgerAccount::Suspense, amount },
        ];
        let mut m = self.movement(format!("cash:{}", self.id), MovementKind::CashReceived, legs, at, day);
        m.refs.extend(self.cash_ref(trade, None, trade.amount));
        Some(m)
    }

    /// Cash held in suspense given back: the checkout was reversed.
    pub fn cash_returned_movement(&self, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        let trade = self.paid_trade()?;
        let refund_no = self.reversal.as_ref()?.cash_refund_no.clone()?;
        let amount = trade.amount.get() as i64;
        let legs = vec![
            Leg { account: LedgerAccount::Suspense, amount: -amount },
            Leg { account: LedgerAccount::of_channel(trade.channel, self.account_id), amount },
        ];
        let mut m = self.movement(format!("cash-return:{}", self.id), MovementKind::CashReturned, legs, at, day);
        m.refs.extend(self.cash_ref(trade, Some(&refund_no), trade.amount));
        Some(m)
    }

    /// The paid order's movement: income by line, from its channels (or, for a top-up, into the
    /// balance). None before it is paid.
    pub fn payment_movement(&self, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        if !matches!(self.status, OrderStatus::Paid | OrderStatus::Refunding | OrderStatus::Refunded) {
            return None;
        }
        let channel = self.channel?;
        let mut legs = Vec::new();
        let mut refs = Vec::new();
        if self.kind == OrderKind::TopUp {
            let trade = self.paid_trade()?;
            legs.push(Leg { account: LedgerAccount::Channel(channel), amount: -(self.amount.get() as i64) });
            legs.push(Leg { account: LedgerAccount::Balance(self.account_id), amount: self.amount.get() as i64 });
            refs.extend(self.cash_ref(trade, None, trade.amount));
            let mut m = self.movement(format!("topup:{}", self.id), MovementKind::TopUp, legs, at, day);
            m.refs = refs;
            return Some(m);
        }
        legs.extend(income_legs(&self.income_lines(), self.amount, 1)?);
        match self.insurance.as_ref().filter(|i| i.settled_at.is_some()) {
            Some(part) => {
                let s = part.split;
                for (account, amount) in [
                    (LedgerAccount::Channel(Channel::InsuranceFund), s.fund),
                    (LedgerAccount::Channel(Channel::PersonalAccount), s.account),
                    (LedgerAccount::Suspense, s.cash),
                ] {
                    if amount > Fen::ZERO {
                        legs.push(Leg { account, amount: -(amount.get() as i64) });
                    }
                }
                refs.push(self.insurance_ref(part, None));
            }
            None => {
                legs.push(Leg {
                    account: LedgerAccount::of_channel(channel, self.account_id),
                    amount: -(self.amount.get() as i64),
                });
                if let Some(trade) = self.paid_trade() {
                    refs.extend(self.cash_ref(trade, None, trade.amount));
                }
            }
        }
        let mut m = self.movement(format!("pay:{}", self.id), MovementKind::Payment, legs, at, day);
        m.refs = refs;
        Some(m)
    }

    /// A completed refund's movement: income back out, each part to where it goes.
    pub fn refund_movement(&self, refund_no: &str, at: DateTime<Utc>, day: NaiveDate) -> Option<Movement> {
        self.refund_movement_of(refund_no, false, at, day)
    }

    /// A refund's movement; `pending` too when `requested` (a top-up given back leaves the
    /// balance when it is asked for: the same movement, under the same key, as when it
    /// completes).
    pub fn refund_movement_of(
        &self,
        refund_no: &str,
        requested: bool,
        at: DateTime<Utc>,
        day: NaiveDate,
    ) -> Option<Movement> {
        let r = self.refunds.iter().find(|r| {
            r.refund_no == refund_no
                && (r.status == RefundStatus::Succeeded || (requested && r.status == RefundStatus::Pending))
        })?;
        let mut legs = Vec::new();
        let mut refs = Vec::new();
        if self.kind == OrderKind::TopUp {
            legs.push(Leg { account: LedgerAccount::Balance(self.account_id), amount: -(r.amount.get() as i64) });
            legs.push(Leg { account: LedgerAccount::Channel(self.channel?), amount: r.amount.get() as i64 });
        } else {
            legs.extend(income_legs(&self.income_lines(), r.amount, -1)?);
            if let Some(i) = &r.insurance {
                for (account, amount) in [
                    (LedgerAccount::Channel(Channel::InsuranceFund), i.fund),
                    (LedgerAccount::Channel(Channel::PersonalAccount), i.account),
                ] {
                    if amount > Fen::ZERO {
                        legs.push(Leg { account, amount: amount.get() as i64 });
                    }
                }
                if let Some(part) = &self.insurance {
                    refs.push(self.insurance_ref(part, Some(&i.app_refd_sn)));
                }
            }
            let cash = r.cash_amount();
            if cash > Fen::ZERO {
                let to = r.cash_destination()?;
                legs.push(Leg { account: LedgerAccount::of_channel(to, self.account_id), amount: cash.get() as i64 });
            }
        }
        if !r.to_balance {
            if let Some(trade) = self.paid_trade() {
                refs.extend(self.cash_ref(trade, Some(&r.refund_no), r.cash_amount()));
            }
        }
        let mut m = self.movement(format!("refund:{}:{}", self.id, r.refund_no), MovementKind::Refund, legs, at, day);
        m.refs = refs;
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    fn order() -> Order {
        let mut o = Order::new(
            OrderId::new(),
            OrderKind::Registration,
            AccountId::new(),
            "挂号费".into(),
            Fen::new(1500),
            Utc::now(),
            Utc::now(),
        );
        o.appointment_id = Some(AppointmentId::new());
        o
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn paid_once_refunded_within_amount() {
        let mut o = order();
        assert_eq!(o.out_trade_no().len(), 32);
        assert_eq!(Order::id_of_out_trade_no(&o.out_trade_no()), Some(o.id));
        o.start_paying().unwrap();
        assert!(matches!(o.mark_paid(Fen::new(1), "t", Utc::now()), Err(OrderError::WrongAmount { .. })));
        assert!(o.mark_paid(Fen::new(1500), "t", Utc::now()).unwrap());
        assert!(!o.mark_paid(Fen::new(1500), "t", Utc::now()).unwrap(), "a second notification changes nothing");
        assert!(o.close().is_err(), "a paid order is not closed");
        o.start_refund("r1".into(), Fen::new(500), "partial", Utc::now()).unwrap();
        assert_eq!(
            o.start_refund("r2".into(), Fen::new(1001), "too much", Utc::now()),
            Err(OrderError::RefundTooLarge)
        );
        assert!(o.finish_refund("r1", true, Utc::now()));
        assert!(!o.finish_refund("r1", true, Utc::now()));
        assert_eq!(o.status, OrderStatus::Paid, "partly refunded");
        o.start_refund("r2".into(), Fen::new(1000), "rest", Utc::now()).unwrap();
        o.finish_refund("r2", true, Utc::now());
        assert_eq!(o.status, OrderStatus::Refunded);
    }

    fn exam_order() -> Order {
        let mut o = Order::new(
            OrderId::new(),
            OrderKind::Fees,
            AccountId::new(),
            "检查费".into(),
            Fen::new(35000),
            Utc::now(),
            Utc::now(),
        );
        o.items.push(OrderItem {
            fee_item_id: Some(FeeItemId::his("CT-1").unwrap()),
            fee_type: FeeType::Exam,
            name: "胸部CT平扫".into(),
            quantity: 1,
            amount: Fen::new(35000),
            department_id: Some(DepartmentId::new()),
            insurance_code: Some("002101000010000".into()),
        });
        o
    }

    fn part() -> InsurancePart {
        InsurancePart {
            psn_no: "p".into(),
            pay_auth_no: "a".into(),
            name: "张三".into(),
            id_type: "01".into(),
            id_no: "sealed".into(),
            insured_type: "employee".into(),
            region: "440100".into(),
            med_org_ord: "m".into(),
            pay_ord_id: "ORD1".into(),
            pay_token: "tok".into(),
            mdtrt_id: "md".into(),
            split: InsuranceSplit {
                total: Fen::new(35000),
                fund: Fen::new(13500),
                account: Fen::new(12000),
                cash: Fen::new(9500),
            },
            uncovered: Fen::ZERO,
            in_scope: Fen::new(35000),
            deductible: Fen::new(20000),
            stage: InsuranceStage::PreSettled,
            setl_id: None,
            settled_at: None,
        }
    }

    #[test]
    fn an_insurance_checkout_moves_every_part_and_reverses_them() {
        let mut o = exam_order();
        o.pre_settled(part()).unwrap();
        assert_eq!(o.cash_due(), Fen::new(9500));
        o.choose_channel(Channel::Alipay).unwrap();
        assert!(o.choose_channel(Channel::Balance).is_err(), "insurance cash is paid online");
        o.open_trade(Channel::Alipay, o.cash_due());
        assert_eq!(o.status, OrderStatus::Paying);
        assert!(matches!(
            o.record_cash(Channel::Alipay, "T", Fen::new(35000), Utc::now()),
            Err(OrderError::WrongAmount { .. })
        ));
        assert_eq!(o.record_cash(Channel::Alipay, "T", Fen::new(9500), Utc::now()), Ok(CashOutcome::First));
        assert_eq!(o.record_cash(Channel::Alipay, "T", Fen::new(9500), Utc::now()), Ok(CashOutcome::Repeat));
        assert_eq!(o.status, OrderStatus::Paying, "the settlement is still to confirm");
        assert!(o.awaiting_settlement());
        let mut ledger = Ledger::new();
        ledger.apply(&o.cash_received_movement(Utc::now(), day()).unwrap()).unwrap();
        assert!(o.settle(Some("S1".into()), Utc::now()).unwrap());
        assert_eq!(o.status, OrderStatus::Paid);
        let pay = o.payment_movement(Utc::now(), day()).unwrap();
        ledger.apply(&pay).unwrap();
        assert_eq!(ledger.balance(&LedgerAccount::Suspense), 0, "suspense cleared");
        assert_eq!(ledger.balance(&LedgerAccount::Channel(Channel::InsuranceFund)), -13500);
        assert_eq!(ledger.balance(&LedgerAccount::Channel(Channel::PersonalAccount)), -12000);
        assert_eq!(ledger.balance(&LedgerAccount::Channel(Channel::Alipay)), -9500);
        assert_eq!(
            o.start_refund("R1".into(), Fen::new(100), "x", Utc::now()),
            Err(OrderError::PartialInsuranceRefund)
        );
        o.start_refund("R1".into(), Fen::new(35000), "退费", Utc::now()).unwrap();
        assert!(!o.refund_part_done("R1", false, Utc::now()), "the cash part is still out");
        assert!(o.refund_part_done("R1", true, Utc::now()));
        assert_eq!(o.status, OrderStatus::Refunded);
        ledger.apply(&o.refund_movement("R1", Utc::now(), day()).unwrap()).unwrap();
        for c in [Channel::InsuranceFund, Channel::PersonalAccount, Channel::Alipay] {
            assert_eq!(ledger.balance(&LedgerAccount::Channel(c)), 0, "{c:?} given back");
        }
    }

    #[test]
    fn a_reversal_returns_the_cash_and_closes() {
        let mut o = exam_order();
        o.pre_settled(part()).unwrap();
        o.choose_channel(Channel::WechatPay).unwrap();
        o.open_trade(Channel::WechatPay, o.cash_due());
        o.record_cash(Channel::WechatPay, "T", Fen::new(9500), Utc::now()).unwrap();
        o.start_reversal("split changed", Utc::now());
        assert!(!o.finish_reversal_if_done());
        let r = o.reversal.as_mut().unwrap();
        r.cash_returned = true;
        r.insurance_revoked = true;
        assert!(o.finish_reversal_if_done());
        assert_eq!(o.status, OrderStatus::Closed);
        let mut ledger = Ledger::new();
        ledger.apply(&o.cash_received_movement(Utc::now(), day()).unwrap()).unwrap();
        ledger.apply(&o.cash_returned_movement(Utc::now(), day()).unwrap()).unwrap();
        assert_eq!(ledger.balance(&LedgerAccount::Channel(Channel::WechatPay)), 0);
        assert_eq!(ledger.balance(&LedgerAccount::Suspense), 0);
    }

    #[test]
    fn switching_channels_and_balance_payments() {
        let mut o = exam_order();
        o.choose_channel(Channel::WechatPay).unwrap();
        o.open_trade(Channel::WechatPay, o.amount);
        o.trade_closed(Channel::WechatPay);
        assert!(o.choose_channel(Channel::WechatPay).is_err(), "a closed trade is not reopened");
        o.choose_channel(Channel::Balance).unwrap();
        o.pay_from_balance(Utc::now()).unwrap();
        let m = o.payment_movement(Utc::now(), day()).unwrap();
        assert_eq!(m.delta(&LedgerAccount::Balance(o.account_id)), -35000);
        o.start_refund_to("R1".into(), Fen::new(5000), "部分退费", false, Utc::now()).unwrap();
        assert!(o.refunds[0].to_balance, "a balance payment goes back to the balance");
    }
}
