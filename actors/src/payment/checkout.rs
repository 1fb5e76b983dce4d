//! A checkout (PAY-1): one order paying several fee items of one 就诊人. The order is made here,
//! with its claims on the items and its `created` event, in one store write that refuses an item
//! another order holds; from then on the order's payment actor is its only writer.

use chrono::Utc;
use hospital_domain::billing::{FeeItem, FeeItemId, FeeItemStatus};
use hospital_domain::live::PersonalEvent;
use hospital_domain::order::{Order, OrderItem, OrderKind, OrderStatus};
use hospital_domain::{AccountId, Fen, OrderId, PatientId};
use hospital_store::{Conflict, DataStore, FeeItemChange, PaymentWrite, PendingEvent, StoreError};

use super::msg::PaymentError;
use super::state::next_check;
use crate::events::Events;
use crate::system::ActorSystem;

/// The most items one checkout pays.
pub const MAX_ITEMS: usize = 50;

impl ActorSystem {
    /// Makes the order paying `items` (ids of the caller's 就诊人's unpaid fee items). A repeat of
    /// a checkout whose order is still open (the same items, all held by one open order of this
    /// account) answers that order, so a retried request makes no second order.
    pub async fn create_fee_order(
        &self,
        data: &dyn DataStore,
        events: &Events,
        account: AccountId,
        patient: PatientId,
        ids: &[FeeItemId],
    ) -> Result<Order, PaymentError> {
        if ids.is_empty() || ids.len() > MAX_ITEMS {
            return Err(PaymentError::FeeItems(format!("a checkout pays 1 to {MAX_ITEMS} fee items")));
        }
        let mut items: Vec<FeeItem> = Vec::with_capacity(ids.len());
        for id in ids {
            let item = data
                .fee_item(id)
                .await?
                .filter(|i| i.account_id == account && i.patient_id == patient)
                .ok_or_else(|| PaymentError::FeeItems(format!("no fee item {id} for this patient")))?;
            if items.iter().any(|i| i.id == item.id) {
                return Err(PaymentError::FeeItems(format!("fee item {id} is named twice")));
            }
            items.push(item);
        }
        if let Some(existing) = self.same_open_order(data, &items).await? {
            return Ok(existing);
        }
        if let Some(i) = items.iter().find(|i| i.status != FeeItemStatus::Unpaid) {
            let why = if i.status == FeeItemStatus::Paid { "is paid" } else { "is in another open order" };
            return Err(PaymentError::FeeItems(format!("fee item {} {why}", i.id)));
        }
        let total = items.iter().try_fold(Fen::ZERO, |a, i| a.checked_add(i.amount));
        let total = total
            .filter(|t| *t <= Fen::MAX_ACCEPTED)
            .ok_or_else(|| PaymentError::FeeItems("too much for one order".into()))?;
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.config().fee_order_ttl).unwrap_or(chrono::Duration::minutes(30));
        let description = match items.as_slice() {
            [one] => format!("{} {}", one.fee_type.label(), one.name),
            [first, ..] => format!("{} 等{}项", first.name, items.len()),
            [] => unreachable!("checked non-empty"),
        };
        let mut order = Order::new(OrderId::new(), OrderKind::Fees, account, description, total, now, now + ttl);
        order.patient_id = Some(patient);
        order.items = items
            .iter()
            .map(|i| OrderItem {
                fee_item_id: Some(i.id.clone()),
                fee_type: i.fee_type,
                name: i.name.clone(),
                quantity: i.quantity,
                amount: i.amount,
                department_id: i.department_id,
                insurance_code: i.insurance_code.clone(),
            })
            .collect();
        order.next_check_at = next_check(&order, now);
        let claims = items
            .iter()
            .map(|i| {
                let mut c = i.clone();
                c.claim(order.id).map_err(|e| PaymentError::FeeItems(e.to_string()))?;
                Ok(FeeItemChange { item: c, expected_order: None })
            })
            .collect::<Result<Vec<_>, PaymentError>>()?;
        let event = vec![PendingEvent::new(account, PersonalEvent::Order((&order).into()))];
        let w = PaymentWrite {
            orders: vec![order.clone()],
            fee_items: claims,
            events: event.clone(),
            ..Default::default()
        };
        match data.apply_payment(w).await {
            Ok(_) => {}
            Err(StoreError::Conflict(Conflict::FeeItemTaken)) => {
                return Err(PaymentError::FeeItems("a fee item was just ordered or paid elsewhere".into()))
            }
            Err(e) => return Err(e.into()),
        }
        events.durable(event);
        metrics::counter!("payment_fee_orders_total").increment(1);
        // The order's actor starts now, so it closes the order itself when it expires.
        let _ = self.order(order.id).await;
        Ok(order)
    }

    /// The open order holding exactly these items, if one does.
    async fn same_open_order(&self, data: &dyn DataStore, items: &[FeeItem]) -> Result<Option<Order>, PaymentError> {
        let Some(first) = items[0].order_id.filter(|_| items[0].status == FeeItemStatus::Ordered) else {
            return Ok(None);
        };
        if !items.iter().all(|i| i.order_id == Some(first) && i.status == FeeItemStatus::Ordered) {
            return Ok(None);
        }
        let Some(o) = data.order(first).await? else { return Ok(None) };
        let same = o.items.len() == items.len() && matches!(o.status, OrderStatus::Created | OrderStatus::Paying);
        Ok(same.then_some(o))
    }
}
