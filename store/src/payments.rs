//! Payments (PAY-1..7): fee items waiting to be paid, orders by account and the open ones, the
//! double-entry ledger (movements and balances), and bound insurance identities. One write,
//! `PaymentWrite`, carries everything one decision of a payment actor changes: the order, the fee
//! items it takes, pays or gives back, the ledger movements, messages and live events. The store
//! checks the rules that span rows inside the write: an item taken by another order, a movement
//! key used for other legs, a balance that would go below zero. Any of them refuses the whole
//! write (`Conflict`), so nothing is half done.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::billing::{FeeItem, FeeItemId, NewFeeItem};
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::{Applied, BalanceEntry, Movement, MovementKind};
use hospital_domain::live::PersonalEvent;
use hospital_domain::message::Message;
use hospital_domain::order::Order;
use hospital_domain::{AccountId, OrderId, PatientId};

use crate::error::Result;
use crate::PendingEvent;

/// A fee item as a write changes it, with the order that must hold it before (None: nobody).
/// The write is refused (`Conflict::FeeItemTaken`) if the stored item is held by another order,
/// or is paid, unless it is already exactly what the write puts (a retry).
#[derive(Debug, Clone)]
pub struct FeeItemChange {
    pub item: FeeItem,
    pub expected_order: Option<OrderId>,
}

/// Everything one payment decision changes, written in one durable transaction (a logged batch
/// after the conditional claims on ScyllaDB).
#[derive(Debug, Clone, Default)]
pub struct PaymentWrite {
    pub orders: Vec<Order>,
    pub fee_items: Vec<FeeItemChange>,
    /// Applied once per key: a repeat of the same movement is skipped, another movement under a
    /// used key is `Conflict::LedgerKey`, an unbalanced one `Conflict::Ledger`, one that would
    /// take a balance below zero `Conflict::InsufficientBalance`.
    pub movements: Vec<Movement>,
    pub messages: Vec<Message>,
    pub events: Vec<PendingEvent>,
    /// Several nodes: the payment actor's lease token (`payment:<order>`). The store refuses the
    /// write if it has seen a newer token for the order (`Conflict::StaleFence`), and remembers
    /// this one. A write with a fence and nothing else is the new owner's claim.
    pub fence: Option<crate::Fence>,
}

impl PaymentWrite {
    pub fn order(order: Order) -> Self {
        Self { orders: vec![order], ..Default::default() }
    }
}

/// Which balance entries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancePage {
    /// Only entries with a lower `seq` (the cursor of the page before); None: from the newest.
    pub before: Option<u64>,
    pub kind: Option<MovementKind>,
    pub limit: usize,
}

/// What a write did to the balances, for its live events: per movement key and balance account,
/// the balance after (None: the movement was a repeat and moved nothing).
pub(crate) type BalanceMoves = Vec<(String, AccountId, Option<i64>)>;

/// Sets each `balance` event of a write to the balance the write left, and drops those of
/// movements that were repeats: the one place that decides what the live balance says.
pub(crate) fn settle_balance_events(events: Vec<PendingEvent>, moves: &BalanceMoves) -> Vec<PendingEvent> {
    events
        .into_iter()
        .filter_map(|mut e| {
            if let PersonalEvent::Balance(b) = &mut e.event {
                let found = moves.iter().find(|(key, account, _)| *key == b.key && *account == e.account);
                match found {
                    Some((_, _, Some(next))) => b.balance = *next,
                    Some((_, _, None)) => return None,
                    None => {}
                }
            }
            Some(e)
        })
        .collect()
}

/// An open order and when its actor should look at it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOrder {
    pub order_id: OrderId,
    pub due: DateTime<Utc>,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Stores fee items from a source (the HIS, a visit). An item already stored with the same
    /// content is left as it is (an idempotent repeat); one with other content refuses the
    /// whole call (`Conflict::FeeItemChanged`). Returns the stored items, in the order given.
    async fn add_fee_items(&self, items: &[NewFeeItem]) -> Result<Vec<FeeItem>>;
    async fn fee_item(&self, id: &FeeItemId) -> Result<Option<FeeItem>>;
    /// A 就诊人's items, every status, oldest first (by id).
    async fn fee_items_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<FeeItem>>;

    /// Applies one payment decision; answers, per movement, whether it was new or a repeat.
    async fn apply_payment(&self, write: PaymentWrite) -> Result<Vec<Applied>> {
        Ok(self.apply_payment_live(write).await?.0)
    }
    /// `apply_payment`, answering also the live events as written: each `balance` event carries
    /// the balance the write left (read inside the write, so two movements of one balance at
    /// once each show their own), and a repeated movement's `balance` event is dropped (nothing
    /// moved). See `settle_balance_events`.
    async fn apply_payment_live(&self, write: PaymentWrite) -> Result<(Vec<Applied>, Vec<PendingEvent>)>;
    /// An account's orders (every kind and status), oldest first.
    async fn orders_of_account(&self, account: AccountId) -> Result<Vec<Order>>;
    /// Orders not final whose `next_check_at` is at or before `before` (the expiry sweeper).
    async fn open_orders_due(&self, before: DateTime<Utc>) -> Result<Vec<OpenOrder>>;

    async fn movement(&self, key: &str) -> Result<Option<Movement>>;
    /// The movements of a business day (reports, reconciliation), by key.
    async fn movements_of_day(&self, day: NaiveDate) -> Result<Vec<Movement>>;
    /// An account's balance, in fen (0 when it never moved).
    async fn balance(&self, account: AccountId) -> Result<i64>;
    /// The movements of an account's balance, newest first, at most `limit`.
    async fn balance_entries(&self, account: AccountId, limit: usize) -> Result<Vec<BalanceEntry>> {
        self.balance_page(account, BalancePage { before: None, kind: None, limit }).await
    }
    /// A page of an account's balance entries, newest (highest `seq`) first: those before the
    /// `before` seq, of one kind when given.
    async fn balance_page(&self, account: AccountId, page: BalancePage) -> Result<Vec<BalanceEntry>>;
    /// The entry a movement made on an account's balance (the detail of a transaction).
    async fn balance_entry(&self, account: AccountId, key: &str) -> Result<Option<BalanceEntry>> {
        let mut before = None;
        loop {
            let page = self.balance_page(account, BalancePage { before, kind: None, limit: 200 }).await?;
            if let Some(e) = page.iter().find(|e| e.key == key) {
                return Ok(Some(e.clone()));
            }
            match page.last() {
                Some(last) if page.len() == 200 => before = Some(last.seq),
                _ => return Ok(None),
            }
        }
    }

    /// Binds (or binds again, replacing) a 就诊人's insurance identity.
    async fn put_insurance_binding(&self, binding: &InsuranceBinding) -> Result<()>;
    async fn insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<Option<InsuranceBinding>>;
    /// Unbinds; false if nothing was bound.
    async fn remove_insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<bool>;
}
