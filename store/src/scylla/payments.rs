//! Payments on ScyllaDB: the payment tables of `schema.cql`. The rules that span rows are
//! conditional statements, each on one partition, done before the logged batch of the rest:
//! a fee item is claimed with `UPDATE .. IF order_id = <expected>`, a movement key with
//! `INSERT .. IF NOT EXISTS` (an existing equal movement is a repeat and skipped), and a balance
//! moves by compare-and-set on its `version`. Unlike the embedded store these steps are not one
//! transaction: a crash after a claim and before the batch leaves the claim without the rest,
//! which the payment actor's retry of the same write (same order, same keys) completes, since
//! every claim it made answers as already its own.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::billing::{FeeItem, FeeItemId, FeeItemStatus, NewFeeItem};
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::{balance_after, Applied, BalanceEntry, Movement};
use hospital_domain::order::Order;
use hospital_domain::{AccountId, OrderId, PatientId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::fence::{within_deadline, wrong_fence};
use super::{cql_date, decode, encode, text, ScyllaStore, Writes};
use crate::embedded::payments_shard as open_shard;
use crate::error::Result;
use crate::payments::{settle_balance_events, BalanceMoves, BalancePage, OpenOrder, PaymentStore, PaymentWrite};
use crate::PendingEvent;
use crate::{Conflict, Owned, StoreError};

const PUT_ORDER: &str = "INSERT INTO {ks}.orders (order_id, body) VALUES (?, ?)";
pub(super) const PUT_ORDER_BY_ACCOUNT: &str =
    "INSERT INTO {ks}.orders_by_account (account_id, order_id, body) VALUES (?, ?, ?)";
const ORDERS_OF_ACCOUNT: &str = "SELECT body FROM {ks}.orders_by_account WHERE account_id = ?";
const PUT_OPEN: &str = "INSERT INTO {ks}.open_orders (shard, order_id, body) VALUES (?, ?, ?)";
const DELETE_OPEN: &str = "DELETE FROM {ks}.open_orders WHERE shard = ? AND order_id = ?";
const OPEN_OF_SHARD: &str = "SELECT order_id, body FROM {ks}.open_orders WHERE shard = ?";

const CLAIM_NEW_ITEM: &str =
    "INSERT INTO {ks}.fee_items (fee_item_id, order_id, body) VALUES (?, null, ?) IF NOT EXISTS";
const CLAIM_ITEM: &str = "UPDATE {ks}.fee_items SET order_id = ?, body = ? WHERE fee_item_id = ? IF order_id = ?";
const GET_ITEM: &str = "SELECT body FROM {ks}.fee_items WHERE fee_item_id = ?";
const PUT_ITEM_BY_PATIENT: &str =
    "INSERT INTO {ks}.fee_items_by_patient (account_id, patient_id, fee_item_id, body) VALUES (?, ?, ?, ?)";
const ITEMS_OF_PATIENT: &str = "SELECT body FROM {ks}.fee_items_by_patient WHERE account_id = ? AND patient_id = ?";

const CLAIM_MOVEMENT: &str = "INSERT INTO {ks}.ledger_movements (movement_key, body) VALUES (?, ?) IF NOT EXISTS";
const GET_MOVEMENT: &str = "SELECT body FROM {ks}.ledger_movements WHERE movement_key = ?";
const PUT_BY_DAY: &str = "INSERT INTO {ks}.ledger_by_day (day, movement_key, body) VALUES (?, ?, ?)";
const MOVEMENTS_OF_DAY: &str = "SELECT body FROM {ks}.ledger_by_day WHERE day = ?";
const PUT_BY_ACCOUNT: &str = "INSERT INTO {ks}.ledger_by_account_seq (account_id, seq, body) VALUES (?, ?, ?)";
const ENTRIES_OF_ACCOUNT: &str = "SELECT body FROM {ks}.ledger_by_account_seq WHERE account_id = ? AND seq < ? LIMIT ?";
const GET_BALANCE: &str = "SELECT balance, version FROM {ks}.balances WHERE account_id = ?";
const NEW_BALANCE: &str = "INSERT INTO {ks}.balances (account_id, balance, version) VALUES (?, ?, 1) IF NOT EXISTS";
const CAS_BALANCE: &str = "UPDATE {ks}.balances SET balance = ?, version = ? WHERE account_id = ? IF version = ?";

const PUT_BINDING: &str = "INSERT INTO {ks}.insurance_bindings (account_id, patient_id, body) VALUES (?, ?, ?)";
const GET_BINDING: &str = "SELECT body FROM {ks}.insurance_bindings WHERE account_id = ? AND patient_id = ?";
const DELETE_BINDING: &str = "DELETE FROM {ks}.insurance_bindings WHERE account_id = ? AND patient_id = ?";

/// A bound uuid, or CQL null (`IF order_id = null` holds for an unclaimed item).
fn uuid_or_null(id: Option<OrderId>) -> Option<CqlValue> {
    id.map(|o| CqlValue::Uuid(o.0))
}

impl ScyllaStore {
    /// An order's rows; its own row goes to `own` when given (a fenced write's conditional batch).
    fn order_writes(&self, w: &mut Writes, o: &Order, own: Option<&mut Writes>) {
        let body = encode(o);
        own.unwrap_or(w).push(self, PUT_ORDER, vec![CqlValue::Uuid(o.id.0), text(body.clone())]);
        w.push(self, PUT_ORDER_BY_ACCOUNT, vec![CqlValue::Uuid(o.account_id.0), CqlValue::Uuid(o.id.0), text(body)]);
        let shard = CqlValue::TinyInt(open_shard(o.id) as i8);
        match o.next_check_at.filter(|_| !o.status.is_final()) {
            Some(due) => w.push(self, PUT_OPEN, vec![shard, CqlValue::Uuid(o.id.0), text(encode(&due))]),
            None => w.push(self, DELETE_OPEN, vec![shard, CqlValue::Uuid(o.id.0)]),
        }
    }

    fn item_by_patient(&self, w: &mut Writes, item: &FeeItem) {
        w.push(
            self,
            PUT_ITEM_BY_PATIENT,
            vec![
                CqlValue::Uuid(item.account_id.0),
                CqlValue::Uuid(item.patient_id.0),
                text(item.id.as_str()),
                text(encode(item)),
            ],
        );
    }

    /// Moves a balance by compare-and-set; refuses a move below zero. Answers the balance after
    /// and its new version, the `seq` of the movement's entry.
    async fn move_balance(&self, account: AccountId, delta: i64) -> Result<(i64, u64)> {
        loop {
            let row: Option<(Option<i64>, Option<i64>)> = self.row(GET_BALANCE, (account.0,)).await?;
            match row {
                None => {
                    let next = balance_after(0, account, delta)
                        .map_err(|_| StoreError::Conflict(Conflict::InsufficientBalance))?;
                    if self.lwt(NEW_BALANCE, (account.0, next)).await?.applied {
                        return Ok((next, 1));
                    }
                }
                Some((balance, version)) => {
                    let (balance, version) = (balance.unwrap_or(0), version.unwrap_or(0));
                    let next = balance_after(balance, account, delta)
                        .map_err(|_| StoreError::Conflict(Conflict::InsufficientBalance))?;
                    if self.lwt(CAS_BALANCE, (next, version + 1, account.0, version)).await?.applied {
                        return Ok((next, (version + 1) as u64));
                    }
                }
            }
        }
    }

    async fn stored_item(&self, id: &FeeItemId) -> Result<Option<FeeItem>> {
        match self.row::<(String,)>(GET_ITEM, (id.as_str(),)).await? {
            Some((body,)) => Ok(Some(decode("fee_items", &body)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl PaymentStore for ScyllaStore {
    async fn add_fee_items(&self, items: &[NewFeeItem]) -> Result<Vec<FeeItem>> {
        // Checked first, so a changed item refuses the call before anything is written.
        for n in items {
            if let Some(old) = self.stored_item(&n.id).await? {
                if !old.same_as(n) {
                    return Err(Conflict::FeeItemChanged.into());
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for n in items {
            let item = FeeItem::new(n.clone());
            let r = self.lwt(CLAIM_NEW_ITEM, (n.id.as_str(), encode(&item))).await?;
            if r.applied {
                let mut w = Writes::default();
                self.item_by_patient(&mut w, &item);
                self.run_batch(w, BatchType::Unlogged).await?;
                out.push(item);
            } else {
                let old = self.stored_item(&n.id).await?.ok_or(Conflict::FeeItemChanged)?;
                if !old.same_as(n) {
                    return Err(Conflict::FeeItemChanged.into());
                }
                out.push(old);
            }
        }
        Ok(out)
    }

    async fn fee_item(&self, id: &FeeItemId) -> Result<Option<FeeItem>> {
        self.stored_item(id).await
    }

    async fn fee_items_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<FeeItem>> {
        self.bodies("fee_items_by_patient", ITEMS_OF_PATIENT, (account.0, patient.0)).await
    }

    async fn apply_payment_live(&self, w: PaymentWrite) -> Result<(Vec<Applied>, Vec<PendingEvent>)> {
        // Several nodes: the payment actor's fence, checked (or claimed) in the order's row before
        // anything else, so a stale owner's write takes no fee item and moves no money; each of
        // those claims is an LWT of its own partition, which the fence cannot reach, so each is
        // also sent only within the lease's deadline (`within_deadline`). A movement's key is the
        // order's and the decision's, so a newer owner making the same decision finds it a repeat.
        let fenced = match &w.fence {
            Some(f) => {
                let (owned, token, at) = self.start_fenced(f)?;
                let Owned::Payment(order) = owned else { return Err(wrong_fence("payment", owned)) };
                self.fenced_batch(owned, token, Writes::default(), true).await?;
                Some((order, token, at))
            }
            None => None,
        };
        // Revenue by channel (analytics): counters cannot join the logged batch; added after it.
        let deltas = self.order_deltas(&w.orders, &Default::default()).await?;
        let mut batch = Writes::default();
        let mut moves = BalanceMoves::new();
        for c in &w.fee_items {
            within_deadline(w.fence.as_ref())?;
            let new_owner = c.item.order_id;
            let r = self
                .lwt(
                    CLAIM_ITEM,
                    vec![
                        uuid_or_null(new_owner),
                        Some(text(encode(&c.item))),
                        Some(text(c.item.id.as_str())),
                        uuid_or_null(c.expected_order),
                    ],
                )
                .await?;
            if !r.applied {
                // A retry of this very change finds it done already.
                let stored = self.stored_item(&c.item.id).await?;
                if stored.as_ref() != Some(&c.item) {
                    return Err(Conflict::FeeItemTaken.into());
                }
            } else if let Some(s) = self.stored_item(&c.item.id).await? {
                if s.status == FeeItemStatus::Paid && s != c.item {
                    return Err(Conflict::FeeItemTaken.into());
                }
            }
            self.item_by_patient(&mut batch, &c.item);
        }
        let mut applied = Vec::with_capacity(w.movements.len());
        for m in &w.movements {
            within_deadline(w.fence.as_ref())?;
            m.check().map_err(|_| StoreError::Conflict(Conflict::Ledger))?;
            let claim = self.lwt(CLAIM_MOVEMENT, (m.key.as_str(), encode(m))).await?;
            if !claim.applied {
                let old: Option<(String,)> = self.row(GET_MOVEMENT, (m.key.as_str(),)).await?;
                let old: Movement = decode("ledger_movements", &old.ok_or(Conflict::LedgerKey)?.0)?;
                if !old.same_as(m) {
                    return Err(Conflict::LedgerKey.into());
                }
                moves.extend(m.balances().map(|(a, _)| (m.key.clone(), a, None)));
                applied.push(Applied::Repeat);
                continue;
            }
            for (account, delta) in m.balances() {
                let (next, seq) = self.move_balance(account, delta).await?;
                moves.push((m.key.clone(), account, Some(next)));
                let entry = BalanceEntry {
                    seq,
                    key: m.key.clone(),
                    kind: m.kind,
                    amount: delta,
                    balance_after: next,
                    at: m.at,
                    order_id: m.order_id,
                    description: m.description.clone(),
                };
                batch.push(
                    self,
                    PUT_BY_ACCOUNT,
                    vec![CqlValue::Uuid(account.0), CqlValue::BigInt(seq as i64), text(encode(&entry))],
                );
            }
            batch.push(self, PUT_BY_DAY, vec![CqlValue::Date(cql_date(m.day)), text(m.key.clone()), text(encode(m))]);
            applied.push(Applied::New);
        }
        // A fenced write's own order row goes in a conditional batch on its fence again: the row
        // the next owner loads changes only under the current token (as a doctor's book does).
        let mut own = Writes::default();
        for o in &w.orders {
            let mine = fenced.is_some_and(|(order, _, _)| order == o.id);
            self.order_writes(&mut batch, o, mine.then_some(&mut own));
        }
        for m in &w.messages {
            super::notify::push_new_message(self, &mut batch, m);
        }
        let events = settle_balance_events(w.events, &moves);
        self.outbox_writes(&mut batch, &events);
        match fenced {
            Some((order, token, at)) => {
                if !own.is_empty() {
                    self.fenced_batch(Owned::Payment(order), token, own, false).await?;
                }
                // The other rows at the timestamp taken before the fence: written late, they
                // lose to a newer owner's (scylla/fence.rs).
                self.write_rest(vec![batch], at).await?;
            }
            None => self.run_batch(batch, BatchType::Logged).await?,
        }
        crate::backoffice::BackOfficeStore::add_rollups(self, &deltas).await?;
        Ok((applied, events))
    }

    async fn orders_of_account(&self, account: AccountId) -> Result<Vec<Order>> {
        self.bodies("orders_by_account", ORDERS_OF_ACCOUNT, (account.0,)).await
    }

    async fn open_orders_due(&self, before: DateTime<Utc>) -> Result<Vec<OpenOrder>> {
        let mut out = Vec::new();
        for shard in 0..crate::embedded::OPEN_ORDER_SHARDS {
            let rows: Vec<(uuid::Uuid, String)> = self.rows(OPEN_OF_SHARD, (shard as i8,)).await?;
            for (id, body) in rows {
                let due: DateTime<Utc> = decode("open_orders", &body)?;
                if due <= before {
                    out.push(OpenOrder { order_id: OrderId(id), due });
                }
            }
        }
        out.sort_by_key(|o| (o.due, o.order_id));
        Ok(out)
    }

    async fn movement(&self, key: &str) -> Result<Option<Movement>> {
        match self.row::<(String,)>(GET_MOVEMENT, (key,)).await? {
            Some((body,)) => Ok(Some(decode("ledger_movements", &body)?)),
            None => Ok(None),
        }
    }

    async fn movements_of_day(&self, day: NaiveDate) -> Result<Vec<Movement>> {
        self.bodies("ledger_by_day", MOVEMENTS_OF_DAY, (cql_date(day),)).await
    }

    async fn balance(&self, account: AccountId) -> Result<i64> {
        let row: Option<(Option<i64>, Option<i64>)> = self.row(GET_BALANCE, (account.0,)).await?;
        Ok(row.and_then(|r| r.0).unwrap_or(0))
    }

    async fn balance_page(&self, account: AccountId, page: BalancePage) -> Result<Vec<BalanceEntry>> {
        // Newest first, a chunk at a time, until the page is full (a kind filter skips some).
        let chunk = page.limit.clamp(1, 500);
        let mut before = page.before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let mut out = Vec::new();
        while out.len() < page.limit {
            let rows: Vec<BalanceEntry> =
                self.bodies("ledger_by_account_seq", ENTRIES_OF_ACCOUNT, (account.0, before, chunk as i32)).await?;
            let Some(last) = rows.last() else { break };
            before = last.seq as i64;
            let done = rows.len() < chunk;
            out.extend(rows.into_iter().filter(|e| page.kind.is_none_or(|k| k == e.kind)));
            if done {
                break;
            }
        }
        out.truncate(page.limit);
        Ok(out)
    }

    async fn put_insurance_binding(&self, b: &InsuranceBinding) -> Result<()> {
        self.exec(PUT_BINDING, (b.account_id.0, b.patient_id.0, encode(b))).await?;
        Ok(())
    }

    async fn insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<Option<InsuranceBinding>> {
        match self.row::<(String,)>(GET_BINDING, (account.0, patient.0)).await? {
            Some((body,)) => Ok(Some(decode("insurance_bindings", &body)?)),
            None => Ok(None),
        }
    }

    async fn remove_insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<bool> {
        let had = self.insurance_binding(account, patient).await?.is_some();
        self.exec(DELETE_BINDING, (account.0, patient.0)).await?;
        Ok(had)
    }
}
