//! Income reports (PAY-7): income by day, department, fee type and channel, computed from the
//! ledger's movements, so a report's totals are the ledger's by construction and the test that
//! compares them with the ledger's account balances checks the store's two records of each
//! movement (the movement by day, and its legs by account) against each other.
//!
//! Income is what payments credit to income accounts, less what refunds debit from them. By
//! channel, a payment or refund is attributed to the channels of its other legs (the insurance
//! fund, the personal account, WeChat Pay, Alipay, the balance; suspense stands for the cash
//! channel of the order): the total is the same, as every movement sums to zero.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::ledger::{Channel, LedgerAccount, Movement, MovementKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Day,
    Department,
    FeeType,
    Channel,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(GroupBy::Day),
            "department" => Some(GroupBy::Department),
            "fee_type" => Some(GroupBy::FeeType),
            "channel" => Some(GroupBy::Channel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Day => "day",
            GroupBy::Department => "department",
            GroupBy::FeeType => "fee_type",
            GroupBy::Channel => "channel",
        }
    }
}

/// One row: income paid, refunded and net, in fen, and how many movements it counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportRow {
    /// The group: a date (`2026-11-25`), a department id (`none`: no department), a fee type or
    /// a channel.
    pub key: String,
    /// What it is called (the department's name, 检查费, 微信支付 ...); filled by the caller for
    /// departments.
    pub label: String,
    pub paid: i64,
    pub refunded: i64,
    pub net: i64,
    pub movements: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IncomeReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub by: GroupBy,
    pub rows: Vec<ReportRow>,
    pub total_paid: i64,
    pub total_refunded: i64,
    pub total_net: i64,
}

/// The channel a leg of `m` on `account` stands for: the channel's own account, a patient's
/// balance, or suspense (the order's cash channel). None for income.
pub fn channel_of(m: &Movement, account: &LedgerAccount) -> Option<Channel> {
    match account {
        LedgerAccount::Suspense => Some(m.cash_channel.unwrap_or(Channel::WechatPay)),
        a => a.channel(),
    }
}

/// The income report of `movements` (those of days `from..=to`) grouped `by`.
pub fn income_report(movements: &[Movement], from: NaiveDate, to: NaiveDate, by: GroupBy) -> IncomeReport {
    let mut rows: BTreeMap<String, ReportRow> = BTreeMap::new();
    for m in movements.iter().filter(|m| m.day >= from && m.day <= to) {
        if !matches!(m.kind, MovementKind::Payment | MovementKind::Refund) {
            continue;
        }
        let mut touched: Vec<String> = Vec::new();
        for leg in &m.legs {
            let (key, label, amount) = match (by, leg.account) {
                (GroupBy::Day, LedgerAccount::Income { .. }) => (m.day.to_string(), m.day.to_string(), leg.amount),
                (GroupBy::Department, LedgerAccount::Income { department, .. }) => {
                    (department.map(|d| d.to_string()).unwrap_or_else(|| "none".into()), String::new(), leg.amount)
                }
                (GroupBy::FeeType, LedgerAccount::Income { fee_type, .. }) => {
                    (fee_type.as_str().to_string(), fee_type.label().to_string(), leg.amount)
                }
                (GroupBy::Channel, LedgerAccount::Income { .. }) => continue,
                (GroupBy::Channel, other) => {
                    let Some(channel) = channel_of(m, &other) else { continue };
                    (channel.as_str().to_string(), channel.label().to_string(), -leg.amount)
                }
                _ => continue,
            };
            let row = rows.entry(key.clone()).or_insert_with(|| ReportRow {
                key: key.clone(),
                label,
                paid: 0,
                refunded: 0,
                net: 0,
                movements: 0,
            });
            if m.kind == MovementKind::Payment {
                row.paid += amount;
            } else {
                row.refunded -= amount;
            }
            row.net += amount;
            if !touched.contains(&key) {
                row.movements += 1;
                touched.push(key);
            }
        }
    }
    let rows: Vec<ReportRow> = rows.into_values().collect();
    IncomeReport {
        from,
        to,
        by,
        total_paid: rows.iter().map(|r| r.paid).sum(),
        total_refunded: rows.iter().map(|r| r.refunded).sum(),
        total_net: rows.iter().map(|r| r.net).sum(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::FeeType;
    use crate::ledger::Leg;
    use chrono::Utc;

    fn m(kind: MovementKind, day: u32, legs: &[(LedgerAccount, i64)]) -> Movement {
        Movement {
            key: format!("{kind:?}{day}{}", legs.len()),
            kind,
            legs: legs.iter().map(|&(account, amount)| Leg { account, amount }).collect(),
            at: Utc::now(),
            day: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            account_id: None,
            order_id: None,
            description: String::new(),
            refs: vec![],
            cash_channel: Some(Channel::Alipay),
        }
    }

    #[test]
    fn every_grouping_has_the_same_total() {
        let exam = LedgerAccount::Income { fee_type: FeeType::Exam, department: None };
        let drug = LedgerAccount::Income { fee_type: FeeType::Drug, department: None };
        let fund = LedgerAccount::Channel(Channel::InsuranceFund);
        let wx = LedgerAccount::Channel(Channel::WechatPay);
        let moves = vec![
            m(MovementKind::Payment, 24, &[(exam, 35000), (fund, -13500), (LedgerAccount::Suspense, -21500)]),
            m(MovementKind::Payment, 25, &[(drug, 1000), (wx, -1000)]),
            m(MovementKind::Refund, 25, &[(drug, -400), (wx, 400)]),
            m(MovementKind::TopUp, 25, &[(wx, -5000), (LedgerAccount::Balance(crate::AccountId::new()), 5000)]),
        ];
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        for by in [GroupBy::Day, GroupBy::Department, GroupBy::FeeType, GroupBy::Channel] {
            let r = income_report(&moves, from, to, by);
            assert_eq!((r.total_paid, r.total_refunded, r.total_net), (36000, 400, 35600), "{by:?}");
        }
        let by_channel = income_report(&moves, from, to, GroupBy::Channel);
        let alipay = by_channel.rows.iter().find(|r| r.key == "alipay").unwrap();
        assert_eq!(alipay.net, 21500, "suspense is the order's cash channel");
        let by_day = income_report(&moves, from, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(), GroupBy::Day);
        assert_eq!(by_day.total_net, 35000, "days outside the range are left out");
    }
}
