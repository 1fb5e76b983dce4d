//! Payment orders (订单) and their state machine (PAY-4, PAY-6): created, paying, paid, closed,
//! refunding, refunded. Amounts are integer fen; a refund never exceeds what was paid.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AccountId, AppointmentId, Fen, OrderId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Waiting for the patient to pay.
    Created,
    /// A prepay order exists at the provider; the patient may be paying.
    Paying,
    Paid,
    /// Closed unpaid (the hold lapsed, or the booking was cancelled before payment).
    Closed,
    /// A refund was asked of the provider and has not completed.
    Refunding,
    /// Fully refunded.
    Refunded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Registration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefundRecord {
    /// Our refund number (`out_refund_no`).
    pub refund_no: String,
    pub amount: Fen,
    pub reason: String,
    pub status: RefundStatus,
    pub requested_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub kind: OrderKind,
    pub account_id: AccountId,
    pub appointment_id: AppointmentId,
    pub description: String,
    pub amount: Fen,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    /// After this the order can no longer be paid (the hold lapses).
    pub expires_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    /// The provider's transaction id.
    pub transaction_id: Option<String>,
    pub refunds: Vec<RefundRecord>,
    /// Provider notification ids already handled: a repeat is acknowledged and ignored.
    pub notifications_seen: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order that is {0:?} cannot do this")]
    InvalidState(OrderStatus),
    #[error("the amount paid ({paid}) is not the amount due ({due})")]
    WrongAmount { paid: Fen, due: Fen },
    #[error("refunds would exceed the amount paid")]
    RefundTooLarge,
}

impl Order {
    /// The order's own out_trade_no at the provider: its id without hyphens (32 characters,
    /// within WeChat Pay's 6-32 limit).
    pub fn out_trade_no(&self) -> String {
        self.id.0.simple().to_string()
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

    /// A provider says it was paid. Returns false if this order was already paid (a repeated
    /// notification): nothing changes then.
    pub fn mark_paid(&mut self, amount: Fen, transaction_id: &str, at: DateTime<Utc>) -> Result<bool, OrderError> {
        if amount != self.amount {
            return Err(OrderError::WrongAmount { paid: amount, due: self.amount });
        }
        match self.status {
            OrderStatus::Paid | OrderStatus::Refunding | OrderStatus::Refunded => Ok(false),
            // Closed, then paid anyway (clock skew at the provider): money arrived, record it;
            // the caller refunds if the booking is gone.
            OrderStatus::Created | OrderStatus::Paying | OrderStatus::Closed => {
                self.status = OrderStatus::Paid;
                self.paid_at = Some(at);
                self.transaction_id = Some(transaction_id.to_string());
                Ok(true)
            }
        }
    }

    pub fn close(&mut self) -> Result<(), OrderError> {
        match self.status {
            OrderStatus::Created | OrderStatus::Paying => {
                self.status = OrderStatus::Closed;
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

    /// Starts a refund of `amount` (full or partial).
    pub fn start_refund(
        &mut self,
        refund_no: String,
        amount: Fen,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), OrderError> {
        if !matches!(self.status, OrderStatus::Paid | OrderStatus::Refunding) {
            return Err(OrderError::InvalidState(self.status));
        }
        let total = self.refunded_total().checked_add(amount).ok_or(OrderError::RefundTooLarge)?;
        if total > self.amount || amount == Fen::ZERO {
            return Err(OrderError::RefundTooLarge);
        }
        self.refunds.push(RefundRecord {
            refund_no,
            amount,
            reason: reason.into(),
            status: RefundStatus::Pending,
            requested_at: at,
            completed_at: None,
        });
        self.status = OrderStatus::Refunding;
        Ok(())
    }

    /// The provider finished a refund. Returns false if it was already recorded.
    pub fn finish_refund(&mut self, refund_no: &str, ok: bool, at: DateTime<Utc>) -> bool {
        let Some(r) = self.refunds.iter_mut().find(|r| r.refund_no == refund_no) else { return false };
        if r.status != RefundStatus::Pending {
            return false;
        }
        r.status = if ok { RefundStatus::Succeeded } else { RefundStatus::Failed };
        r.completed_at = Some(at);
        if self.refunds.iter().all(|r| r.status != RefundStatus::Pending) {
            let refunded: u64 =
                self.refunds.iter().filter(|r| r.status == RefundStatus::Succeeded).map(|r| r.amount.get()).sum();
            self.status = if refunded == self.amount.get() { OrderStatus::Refunded } else { OrderStatus::Paid };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            id: OrderId::new(),
            kind: OrderKind::Registration,
            account_id: AccountId::new(),
            appointment_id: AppointmentId::new(),
            description: "挂号费".into(),
            amount: Fen::new(1500),
            status: OrderStatus::Created,
            created_at: Utc::now(),
            expires_at: Utc::now(),
            paid_at: None,
            transaction_id: None,
            refunds: vec![],
            notifications_seen: vec![],
        }
    }

    #[test]
    fn paid_once_refunded_within_amount() {
        let mut o = order();
        assert_eq!(o.out_trade_no().len(), 32);
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
}
