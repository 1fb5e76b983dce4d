//! The money ledger (PAY-5, PAY-7): double entry. Every movement of money is a `Movement` of two
//! or more legs whose amounts sum to zero, under an idempotency key: the same key applied twice
//! is one movement, the same key with other legs is refused. A patient's balance (账户余额) is a
//! ledger account like the others, and it may never go below zero.
//!
//! Sign convention: a leg's amount is a credit when positive and a debit when negative, and an
//! account's balance is the sum of its legs. So the patient's balance (money the hospital holds
//! for them) and income accounts grow with credits, and the accounts of the channels money
//! arrives through (WeChat Pay, Alipay, the insurance fund and personal account) go negative as
//! money arrives: what a channel brought in is minus its balance.
//!
//! Accounts:
//! - `balance:<account id>`: a patient account's prepaid balance;
//! - `channel:<channel>`: money received (debits) or paid back (credits) through a channel;
//! - `income:<fee type>:<department id | none>`: the hospital's income by fee type and department;
//! - `suspense`: cash received for an insurance checkout whose settlement is not final yet
//!   (暂收款), cleared when it settles or is reversed.
//!
//! `Ledger` is the rules over memory: the stores apply the same rules (`Movement::check`,
//! `balance_after`) inside their write transaction, and the property tests check both.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

use crate::billing::FeeType;
use crate::{AccountId, DepartmentId, Fen, OrderId};

/// How money reaches the hospital, or goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 微信支付
    WechatPay,
    /// 支付宝
    Alipay,
    /// 医保统筹基金 (the fund's share of an insurance settlement)
    InsuranceFund,
    /// 医保个人账户
    PersonalAccount,
    /// 账户余额 (the patient's prepaid balance)
    Balance,
}

impl Channel {
    pub const ALL: [Channel; 5] =
        [Channel::InsuranceFund, Channel::PersonalAccount, Channel::WechatPay, Channel::Alipay, Channel::Balance];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WechatPay => "wechat_pay",
            Channel::Alipay => "alipay",
            Channel::InsuranceFund => "insurance_fund",
            Channel::PersonalAccount => "personal_account",
            Channel::Balance => "balance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Channel::WechatPay => "微信支付",
            Channel::Alipay => "支付宝",
            Channel::InsuranceFund => "医保统筹基金",
            Channel::PersonalAccount => "医保个人账户",
            Channel::Balance => "账户余额",
        }
    }

    /// A provider the patient pays through online (a cash channel of a checkout).
    pub fn is_online(self) -> bool {
        matches!(self, Channel::WechatPay | Channel::Alipay)
    }
}

/// A ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LedgerAccount {
    /// A patient account's prepaid balance: never negative.
    Balance(AccountId),
    /// Money through a channel (never `Channel::Balance`: that is `Balance(account)`).
    Channel(Channel),
    /// Income by fee type and department (`None`: no department known).
    Income { fee_type: FeeType, department: Option<DepartmentId> },
    /// Cash held for an insurance checkout not yet settled.
    Suspense,
}

impl LedgerAccount {
    /// The stored name: `balance:<uuid>`, `channel:alipay`, `income:exam:<uuid>|none`, `suspense`.
    pub fn name(&self) -> String {
        match self {
            LedgerAccount::Balance(a) => format!("balance:{a}"),
            LedgerAccount::Channel(c) => format!("channel:{}", c.as_str()),
            LedgerAccount::Income { fee_type, department } => format!(
                "income:{}:{}",
                fee_type.as_str(),
                department.map(|d| d.to_string()).unwrap_or_else(|| "none".into())
            ),
            LedgerAccount::Suspense => "suspense".into(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split(':');
        let account = match (parts.next()?, parts.next(), parts.next()) {
            ("balance", Some(id), None) => LedgerAccount::Balance(AccountId::parse(id).ok()?),
            ("channel", Some(c), None) => {
                let c = Channel::parse(c)?;
                if c == Channel::Balance {
                    return None;
                }
                LedgerAccount::Channel(c)
            }
            ("income", Some(t), Some(d)) => LedgerAccount::Income {
                fee_type: FeeType::parse(t)?,
                department: if d == "none" { None } else { Some(DepartmentId::parse(d).ok()?) },
            },
            ("suspense", None, None) => LedgerAccount::Suspense,
            _ => return None,
        };
        parts.next().is_none().then_some(account)
    }

    /// The kind part of the name (`balance`, `channel`, `income`, `suspense`): how the stores
    /// list accounts.
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerAccount::Balance(_) => "balance",
            LedgerAccount::Channel(_) => "channel",
            LedgerAccount::Income { .. } => "income",
            LedgerAccount::Suspense => "suspense",
        }
    }

    /// The account of money through `channel`: the patient's balance for `Channel::Balance`.
    pub fn of_channel(channel: Channel, patient: AccountId) -> Self {
        match channel {
            Channel::Balance => LedgerAccount::Balance(patient),
            c => LedgerAccount::Channel(c),
        }
    }

    /// The channel money moved through when this account is one side of a payment.
    pub fn channel(&self) -> Option<Channel> {
        match self {
            LedgerAccount::Balance(_) => Some(Channel::Balance),
            LedgerAccount::Channel(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for LedgerAccount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for LedgerAccount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LedgerAccount::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a ledger account: {s:?}")))
    }
}

/// One side of a movement: credit when positive, debit when negative, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub account: LedgerAccount,
    pub amount: i64,
}

/// What a movement is, for the patient's transaction list (PAY-5) and the reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// 充值: money into a balance.
    TopUp,
    /// 缴费: a fee paid (income).
    Payment,
    /// 退费: a fee paid back (to its channels or to the balance).
    Refund,
    /// Cash received for an insurance checkout that has not settled yet (into suspense).
    CashReceived,
    /// Cash held in suspense paid back: the checkout was reversed.
    CashReturned,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::TopUp => "top_up",
            MovementKind::Payment => "payment",
            MovementKind::Refund => "refund",
            MovementKind::CashReceived => "cash_received",
            MovementKind::CashReturned => "cash_returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::TopUp, Self::Payment, Self::Refund, Self::CashReceived, Self::CashReturned]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            MovementKind::TopUp => "充值",
            MovementKind::Payment => "缴费",
            MovementKind::Refund => "退费",
            MovementKind::CashReceived => "暂收",
            MovementKind::CashReturned => "暂收退回",
        }
    }
}

/// Which provider a reference is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    WechatPay,
    Alipay,
    /// The medical insurance platform.
    Insurance,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::WechatPay, Provider::Alipay, Provider::Insurance];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::WechatPay => "wechat_pay",
            Provider::Alipay => "alipay",
            Provider::Insurance => "insurance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The provider behind an online cash channel.
    pub fn of_channel(c: Channel) -> Option<Self> {
        match c {
            Channel::WechatPay => Some(Provider::WechatPay),
            Channel::Alipay => Some(Provider::Alipay),
            Channel::InsuranceFund | Channel::PersonalAccount => Some(Provider::Insurance),
            Channel::Balance => None,
        }
    }
}

/// How a movement appears at a provider: what reconciliation matches against the provider's
/// bill line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRef {
    pub provider: Provider,
    /// A payment or a refund at the provider.
    pub refund: bool,
    /// Our order number there (`out_trade_no`; for insurance our `medOrgOrd`).
    pub out_trade_no: String,
    /// Our refund number there (`out_refund_no`, `out_request_no`, `appRefdSn`).
    pub out_refund_no: Option<String>,
    /// The provider's own id (`transaction_id`, `trade_no`, `payOrdId`).
    pub provider_no: Option<String>,
    /// What the provider moved: the cash amount, or for insurance fund + personal account.
    pub amount: Fen,
}

/// One movement of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The idempotency key (`pay:<order>`, `refund:<order>:<n>`, ...): at most once per key.
    pub key: String,
    pub kind: MovementKind,
    pub legs: Vec<Leg>,
    pub at: DateTime<Utc>,
    /// The business day (the hospital's date of the provider's event): reports and
    /// reconciliation group by it.
    pub day: NaiveDate,
    /// The patient account it concerns.
    pub account_id: Option<AccountId>,
    pub order_id: Option<OrderId>,
    pub description: String,
    #[serde(default)]
    pub refs: Vec<ProviderRef>,
    /// The channel the order's cash came through: what suspense legs stand for in the
    /// reports by channel.
    #[serde(default)]
    pub cash_channel: Option<Channel>,
}

/// Why the ledger refused a movement. Nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("a movement needs a key of 1 to 128 characters and at least two legs")]
    Malformed,
    #[error("the legs of a movement must sum to zero (they sum to {0})")]
    Unbalanced(i64),
    #[error("an account appears twice, or a leg is zero")]
    BadLeg,
    #[error("the balance of {account} would fall to {would_be} fen")]
    InsufficientBalance { account: AccountId, would_be: i64 },
    #[error("key {0:?} was already used for another movement")]
    KeyReused(String),
}

/// What applying a movement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    New,
    /// The same movement under the same key was already applied: nothing changed.
    Repeat,
}

impl Movement {
    /// The rules every movement obeys, whatever the balances.
    pub fn check(&self) -> Result<(), LedgerError> {
        if self.key.is_empty() || self.key.len() > 128 || self.legs.len() < 2 {
            return Err(LedgerError::Malformed);
        }
        let mut sum: i64 = 0;
        for (i, leg) in self.legs.iter().enumerate() {
            if leg.amount == 0 || self.legs[..i].iter().any(|l| l.account == leg.account) {
                return Err(LedgerError::BadLeg);
            }
            sum = sum.checked_add(leg.amount).ok_or(LedgerError::Unbalanced(i64::MAX))?;
        }
        if sum != 0 {
            return Err(LedgerError::Unbalanced(sum));
        }
        Ok(())
    }

    /// What the movement does to `account`.
    pub fn delta(&self, account: &LedgerAccount) -> i64 {
        self.legs.iter().filter(|l| &l.account == account).map(|l| l.amount).sum()
    }

    /// The balance accounts it touches (the ones that must not go negative).
    pub fn balances(&self) -> impl Iterator<Item = (AccountId, i64)> + '_ {
        self.legs.iter().filter_map(|l| match l.account {
            LedgerAccount::Balance(a) => Some((a, l.amount)),
            _ => None,
        })
    }

    /// Whether `other` is this movement again (a retry): same key, kind and legs. The time may
    /// differ (a retry is stamped anew).
    pub fn same_as(&self, other: &Movement) -> bool {
        self.key == other.key && self.kind == other.kind && self.legs == other.legs
    }
}

/// A balance after a movement, or why not: the one check of "never negative".
pub fn balance_after(current: i64, account: AccountId, delta: i64) -> Result<i64, LedgerError> {
    let next = current.checked_add(delta).ok_or(LedgerError::InsufficientBalance { account, would_be: i64::MIN })?;
    if next < 0 {
        return Err(LedgerError::InsufficientBalance { account, would_be: next });
    }
    Ok(next)
}

/// The ledger's rules over memory: what the stores do in their write transactions, and what the
/// property tests compare them with.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    movements: HashMap<String, Movement>,
    order: Vec<String>,
    balances: HashMap<LedgerAccount, i64>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a movement, all or nothing.
    pub fn apply(&mut self, m: &Movement) -> Result<Applied, LedgerError> {
        m.check()?;
        if let Some(old) = self.movements.get(&m.key) {
            return if old.same_as(m) { Ok(Applied::Repeat) } else { Err(LedgerError::KeyReused(m.key.clone())) };
        }
        for (account, delta) in m.balances() {
            balance_after(self.balance(&LedgerAccount::Balance(account)), account, delta)?;
        }
        for leg in &m.legs {
            *self.balances.entry(leg.account).or_default() += leg.amount;
        }
        self.movements.insert(m.key.clone(), m.clone());
        self.order.push(m.key.clone());
        Ok(Applied::New)
    }

    pub fn balance(&self, account: &LedgerAccount) -> i64 {
        self.balances.get(account).copied().unwrap_or(0)
    }

    /// Every movement applied, in order.
    pub fn movements(&self) -> impl Iterator<Item = &Movement> {
        self.order.iter().filter_map(|k| self.movements.get(k))
    }

    /// The sum of every leg on `account` (what `balance` must always equal).
    pub fn sum_of_legs(&self, account: &LedgerAccount) -> i64 {
        self.movements().map(|m| m.delta(account)).sum()
    }

    /// Every account with a leg.
    pub fn accounts(&self) -> impl Iterator<Item = &LedgerAccount> {
        self.balances.keys()
    }
}

/// Income legs for `amount` spread over `lines` (fee type, department, amount) in order: each
/// line takes what it can, so a partial refund comes off the first lines first. Returns the legs
/// with `sign` applied (+1 income, -1 a refund). None if the lines hold less than `amount`.
pub fn income_legs(lines: &[(FeeType, Option<DepartmentId>, Fen)], amount: Fen, sign: i64) -> Option<Vec<Leg>> {
    let mut left = amount.get();
    let mut by_account: Vec<(LedgerAccount, u64)> = Vec::new();
    for &(fee_type, department, line) in lines {
        if left == 0 {
            break;
        }
        let take = line.get().min(left);
        if take == 0 {
            continue;
        }
        left -= take;
        let account = LedgerAccount::Income { fee_type, department };
        match by_account.iter_mut().find(|(a, _)| *a == account) {
            Some((_, v)) => *v += take,
            None => by_account.push((account, take)),
        }
    }
    if left > 0 {
        return None;
    }
    Some(by_account.into_iter().map(|(account, v)| Leg { account, amount: sign * v as i64 }).collect())
}

/// A patient-facing view of one movement on their balance: the transaction list (PAY-5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BalanceEntry {
    /// The entry's place on its balance: 1, 2, 3, ... in the order the movements were applied
    /// (the list's order, and its paging cursor: two movements in one millisecond keep the
    /// order they were written in).
    #[serde(default)]
    pub seq: u64,
    pub key: String,
    pub kind: MovementKind,
    /// Into the balance when positive, out of it when negative, in fen.
    pub amount: i64,
    /// The balance after it, in fen.
    pub balance_after: i64,
    pub at: DateTime<Utc>,
    pub order_id: Option<OrderId>,
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movement(key: &str, legs: &[(LedgerAccount, i64)]) -> Movement {
        Movement {
            key: key.into(),
            kind: MovementKind::TopUp,
            legs: legs.iter().map(|&(account, amount)| Leg { account, amount }).collect(),
            at: Utc::now(),
            day: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            account_id: None,
            order_id: None,
            description: String::new(),
            refs: vec![],
            cash_channel: None,
        }
    }

    #[test]
    fn names_round_trip() {
        let a = AccountId::new();
        let d = DepartmentId::new();
        for acct in [
            LedgerAccount::Balance(a),
            LedgerAccount::Channel(Channel::Alipay),
            LedgerAccount::Income { fee_type: FeeType::Exam, department: Some(d) },
            LedgerAccount::Income { fee_type: FeeType::Drug, department: None },
            LedgerAccount::Suspense,
        ] {
            assert_eq!(LedgerAccount::parse(&acct.name()), Some(acct), "{acct}");
            let json = serde_json::to_string(&acct).unwrap();
            assert_eq!(serde_json::from_str::<LedgerAccount>(&json).unwrap(), acct);
        }
        for bad in ["", "balance", "channel:balance", "income:exam", "income:x:none", "suspense:1", "balance:x:y"] {
            assert_eq!(LedgerAccount::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn movements_balance_and_balances_stay_positive() {
        let a = AccountId::new();
        let bal = LedgerAccount::Balance(a);
        let wx = LedgerAccount::Channel(Channel::WechatPay);
        let exam = LedgerAccount::Income { fee_type: FeeType::Exam, department: None };
        let mut l = Ledger::new();
        assert_eq!(l.apply(&movement("t1", &[(bal, 10000), (wx, -10000)])), Ok(Applied::New));
        assert_eq!(l.apply(&movement("t1", &[(bal, 10000), (wx, -10000)])), Ok(Applied::Repeat));
        assert_eq!(l.apply(&movement("t1", &[(bal, 1), (wx, -1)])), Err(LedgerError::KeyReused("t1".into())));
        assert_eq!(l.apply(&movement("p1", &[(bal, -3000), (exam, 3000)])), Ok(Applied::New));
        assert_eq!(
            l.apply(&movement("p2", &[(bal, -7001), (exam, 7001)])),
            Err(LedgerError::InsufficientBalance { account: a, would_be: -1 })
        );
        assert_eq!(l.apply(&movement("p3", &[(bal, -1), (exam, 2)])), Err(LedgerError::Unbalanced(1)));
        assert_eq!(l.apply(&movement("p4", &[(bal, -1)])), Err(LedgerError::Malformed));
        assert_eq!(l.apply(&movement("p5", &[(bal, 0), (exam, 0)])), Err(LedgerError::BadLeg));
        assert_eq!(l.balance(&bal), 7000);
        assert_eq!(l.sum_of_legs(&bal), 7000);
        assert_eq!(l.balance(&wx) + l.balance(&exam) + l.balance(&bal), 0, "a trial balance sums to zero");
    }

    #[test]
    fn income_is_spread_over_lines_in_order() {
        let d = DepartmentId::new();
        let lines = [
            (FeeType::Exam, Some(d), Fen::new(300)),
            (FeeType::Drug, Some(d), Fen::new(200)),
            (FeeType::Exam, Some(d), Fen::new(100)),
        ];
        let legs = income_legs(&lines, Fen::new(600), 1).unwrap();
        assert_eq!(legs.iter().map(|l| l.amount).collect::<Vec<_>>(), vec![400, 200], "same account merged");
        let refund = income_legs(&lines, Fen::new(350), -1).unwrap();
        assert_eq!(refund.iter().map(|l| l.amount).collect::<Vec<_>>(), vec![-300, -50]);
        assert_eq!(income_legs(&lines, Fen::new(601), 1), None);
    }
}
