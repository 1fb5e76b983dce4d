//! Payments on the embedded engine: fee items (by id, and by 就诊人), orders by account, the open
//! orders, the ledger (movements by key, by day, and each balance's entries) and balances, and
//! insurance bindings, as in schema.cql. `apply_payment` checks the fee-item claims, the movement
//! keys and the balances inside the one write transaction, so a refused rule leaves nothing.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use hospital_domain::billing::{FeeItem, FeeItemId, NewFeeItem};
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::{balance_after, Applied, BalanceEntry, Movement};
use hospital_domain::order::Order;
use hospital_domain::{AccountId, OrderId, PatientId};

use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::Result;
use crate::payments::{settle_balance_events, BalanceMoves, BalancePage, OpenOrder, PaymentStore, PaymentWrite};
use crate::PendingEvent;
use crate::{Conflict, StoreError};

/// How many partitions the open orders are spread over (a ScyllaDB partition each).
pub(crate) const OPEN_ORDER_SHARDS: u8 = 16;

pub(crate) fn open_shard(id: OrderId) -> u8 {
    id.0.as_bytes()[15] % OPEN_ORDER_SHARDS
}

fn item_key(id: &FeeItemId) -> Key {
    Key::new().str(id.as_str())
}

fn put_item(ctx: &mut WriteCtx<'_>, item: &FeeItem) {
    ctx.put(FEE_ITEMS, &item_key(&item.id), item);
    ctx.put(
        FEE_ITEMS_BY_PATIENT,
        &Key::new().uuid(&item.account_id.0).uuid(&item.patient_id.0).str(item.id.as_str()),
        item,
    );
}

/// Writes an order under its id, its account, and (while it is open) the open orders.
pub(crate) fn put_order(ctx: &mut WriteCtx<'_>, o: &Order) {
    ctx.put(ORDERS, &Key::new().uuid(&o.id.0), o);
    put_order_index(ctx, o);
    let open = Key::new().u8(open_shard(o.id)).uuid(&o.id.0);
    match o.next_check_at.filter(|_| !o.status.is_final()) {
        Some(due) => ctx.put(OPEN_ORDERS, &open, &due),
        None => ctx.delete(OPEN_ORDERS, &open),
    }
}

/// An order's entry by account beside its row by id: the key only (`index`).
pub(crate) fn put_order_index(ctx: &mut WriteCtx<'_>, o: &Order) {
    super::index::put_key_only(ctx, ORDERS_BY_ACCOUNT, Key::new().uuid(&o.account_id.0).uuid(&o.id.0));
}

/// Applies one movement inside the transaction: once per key, balances never below zero. Each
/// balance's entry is numbered after the balance's last (its `version`), so the list keeps the
/// order the movements were applied in, whatever their times.
fn apply_movement(ctx: &mut WriteCtx<'_>, m: &Movement, moves: &mut BalanceMoves) -> Result<Applied> {
    m.check().map_err(|_| StoreError::Conflict(Conflict::Ledger))?;
    let key = Key::new().str(&m.key);
    if let Some(old) = ctx.get::<Movement>(LEDGER_MOVEMENTS, &key)? {
        if !old.same_as(m) {
            return Err(Conflict::LedgerKey.into());
        }
        moves.extend(m.balances().map(|(a, _)| (m.key.clone(), a, None)));
        return Ok(Applied::Repeat);
    }
    for (account, delta) in m.balances() {
        let bkey = Key::new().uuid(&account.0);
        let current: i64 = ctx.get(BALANCES, &bkey)?.unwrap_or(0);
        let next =
            balance_after(current, account, delta).map_err(|_| StoreError::Conflict(Conflict::InsufficientBalance))?;
        ctx.put(BALANCES, &bkey, &next);
        let seq = ctx.get::<u64>(BALANCE_VERSIONS, &bkey)?.unwrap_or(0) + 1;
        ctx.put(BALANCE_VERSIONS, &bkey, &seq);
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
        ctx.put(LEDGER_BY_ACCOUNT_SEQ, &Key::new().uuid(&account.0).u64(seq), &entry);
    }
    ctx.put(LEDGER_MOVEMENTS, &key, m);
    ctx.put(LEDGER_BY_DAY, &Key::new().date(m.day).str(&m.key), m);
    Ok(Applied::New)
}

#[async_trait]
impl PaymentStore for EmbeddedStore {
    async fn add_fee_items(&self, items: &[NewFeeItem]) -> Result<Vec<FeeItem>> {
        let items = items.to_vec();
        self.engine
            .write(move |ctx| {
                let mut out = Vec::with_capacity(items.len());
                for n in &items {
                    match ctx.get::<FeeItem>(FEE_ITEMS, &item_key(&n.id))? {
                        Some(old) if old.same_as(n) => out.push(old),
                        Some(_) => return Err(Conflict::FeeItemChanged.into()),
                        None => {
                            let item = FeeItem::new(n.clone());
                            put_item(ctx, &item);
                            out.push(item);
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn fee_item(&self, id: &FeeItemId) -> Result<Option<FeeItem>> {
        self.engine.read(|r| r.get(FEE_ITEMS, &item_key(id)))
    }

    async fn fee_items_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<FeeItem>> {
        self.engine.read(|r| r.scan(FEE_ITEMS_BY_PATIENT, &Key::new().uuid(&account.0).uuid(&patient.0)))
    }

    async fn apply_payment_live(&self, w: PaymentWrite) -> Result<(Vec<Applied>, Vec<PendingEvent>)> {
        let (zone, rollups) = (self.zone, self.rollups);
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, w.fence.as_ref())?;
                // Revenue and refunds by channel (analytics), from each order as stored before
                // this write, added in the same transaction.
                let mut deltas = Vec::new();
                if rollups {
                    for o in &w.orders {
                        let old: Option<Order> = ctx.get(ORDERS, &Key::new().uuid(&o.id.0))?;
                        deltas.extend(hospital_domain::analytics::order_deltas(old.as_ref(), o, zone));
                    }
                }
                for c in &w.fee_items {
                    let stored: Option<FeeItem> = ctx.get(FEE_ITEMS, &item_key(&c.item.id))?;
                    match stored {
                        Some(s) if s == c.item => {}
                        Some(s)
                            if s.order_id == c.expected_order
                                && s.status != hospital_domain::billing::FeeItemStatus::Paid => {}
                        _ => return Err(Conflict::FeeItemTaken.into()),
                    }
                    put_item(ctx, &c.item);
                }
                let mut applied = Vec::with_capacity(w.movements.len());
                let mut moves = BalanceMoves::new();
                for m in &w.movements {
                    applied.push(apply_movement(ctx, m, &mut moves)?);
                }
                let events = settle_balance_events(w.events, &moves);
                for o in &w.orders {
                    put_order(ctx, o);
                }
                for m in &w.messages {
                    super::notify::put_new_message(ctx, m)?;
                }
                super::outbox::put_events(ctx, &events);
                super::backoffice::add_deltas(ctx, deltas)?;
                Ok((applied, events))
            })
            .await
    }

    async fn orders_of_account(&self, account: AccountId) -> Result<Vec<Order>> {
        self.engine.read(|r| super::index::resolve(r, ORDERS_BY_ACCOUNT, &Key::new().uuid(&account.0), ORDERS))
    }

    async fn open_orders_due(&self, before: DateTime<Utc>) -> Result<Vec<OpenOrder>> {
        let rows = self.engine.read(|r| r.scan_raw(OPEN_ORDERS, &[]))?;
        let mut out = Vec::new();
        for (k, v) in rows {
            let due: DateTime<Utc> = super::engine::from_json(OPEN_ORDERS, &v)?;
            let id = uuid::Uuid::from_slice(&k[1..17]).map_err(|e| StoreError::Engine(e.to_string()))?;
            if due <= before {
                out.push(OpenOrder { order_id: OrderId(id), due });
            }
        }
        out.sort_by_key(|o| (o.due, o.order_id));
        Ok(out)
    }

    async fn movement(&self, key: &str) -> Result<Option<Movement>> {
        self.engine.read(|r| r.get(LEDGER_MOVEMENTS, &Key::new().str(key)))
    }

    async fn movements_of_day(&self, day: NaiveDate) -> Result<Vec<Movement>> {
        self.engine.read(|r| r.scan(LEDGER_BY_DAY, &Key::new().date(day)))
    }

    async fn balance(&self, account: AccountId) -> Result<i64> {
        Ok(self.engine.read(|r| r.get(BALANCES, &Key::new().uuid(&account.0)))?.unwrap_or(0))
    }

    async fn balance_page(&self, account: AccountId, page: BalancePage) -> Result<Vec<BalanceEntry>> {
        let prefix = Key::new().uuid(&account.0);
        let mut before = Key::new().uuid(&account.0).u64(page.before.unwrap_or(u64::MAX)).into_bytes();
        // Newest first, a chunk at a time, until the page is full (a kind filter skips some).
        let chunk = page.limit.clamp(1, 500);
        let mut out = Vec::new();
        while out.len() < page.limit {
            let rows = self.engine.read(|r| r.scan_back(LEDGER_BY_ACCOUNT_SEQ, prefix.bytes(), &before, chunk))?;
            let Some((last, _)) = rows.last() else { break };
            before = last.clone();
            let done = rows.len() < chunk;
            for (_, v) in rows {
                let e: BalanceEntry = super::engine::from_json(LEDGER_BY_ACCOUNT_SEQ, &v)?;
                if page.kind.is_none_or(|k| k == e.kind) && out.len() < page.limit {
                    out.push(e);
                }
            }
            if done {
                break;
            }
        }
        Ok(out)
    }

    async fn put_insurance_binding(&self, b: &InsuranceBinding) -> Result<()> {
        let b = b.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(INSURANCE_BINDINGS, &Key::new().uuid(&b.account_id.0).uuid(&b.patient_id.0), &b);
                Ok(())
            })
            .await
    }

    async fn insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<Option<InsuranceBinding>> {
        self.engine.read(|r| r.get(INSURANCE_BINDINGS, &Key::new().uuid(&account.0).uuid(&patient.0)))
    }

    async fn remove_insurance_binding(&self, account: AccountId, patient: PatientId) -> Result<bool> {
        self.engine
            .write(move |ctx| {
                let key = Key::new().uuid(&account.0).uuid(&patient.0);
                let had = ctx.get::<InsuranceBinding>(INSURANCE_BINDINGS, &key)?.is_some();
                ctx.delete(INSURANCE_BINDINGS, &key);
                Ok(had)
            })
            .await
    }
}
