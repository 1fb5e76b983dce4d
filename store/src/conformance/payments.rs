//! Payments: fee items (idempotent by id, claimed by one order at a time), orders by account and
//! the open ones, the ledger (a key applied once, balances never below zero, each balance's
//! entries) and insurance bindings.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::billing::{FeeItemId, FeeItemStatus, FeeType, NewFeeItem};
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::{Applied, Channel};
use hospital_domain::order::{Order, OrderItem, OrderKind, OrderStatus};
use hospital_domain::*;
use std::sync::Arc;

use super::samples::unique;
use crate::payments::{FeeItemChange, PaymentWrite};
use crate::traits::DataStore;
use crate::{Conflict, StoreError};

fn new_item(account: AccountId, patient: PatientId, fen: u64) -> NewFeeItem {
    NewFeeItem {
        id: FeeItemId::his(&unique("CF")).unwrap(),
        account_id: account,
        patient_id: patient,
        fee_type: FeeType::Exam,
        name: "胸部CT平扫".into(),
        quantity: 1,
        unit_price: Fen::new(fen),
        amount: Fen::new(fen),
        department_id: None,
        insurance_code: None,
        billed_at: Utc::now(),
    }
}

fn conflict<T: std::fmt::Debug>(r: crate::Result<T>) -> Conflict {
    match r {
        Err(StoreError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn payments(store: Arc<dyn DataStore>) {
    let (account, patient) = (AccountId::new(), PatientId::new());
    let now = Utc::now();
    let day = now.date_naive();

    // Fee items: stored once; a repeat is the stored item; other content under the id refused.
    let a = new_item(account, patient, 35000);
    let b = new_item(account, patient, 1200);
    let stored = store.add_fee_items(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(store.add_fee_items(std::slice::from_ref(&a)).await.unwrap(), vec![stored[0].clone()]);
    let changed = NewFeeItem { name: "别的".into(), ..a.clone() };
    assert_eq!(conflict(store.add_fee_items(&[changed]).await), Conflict::FeeItemChanged);
    assert_eq!(store.fee_item(&a.id).await.unwrap().as_ref(), Some(&stored[0]));
    let mut listed = store.fee_items_of_patient(account, patient).await.unwrap();
    listed.sort_by(|x, y| x.id.as_str().cmp(y.id.as_str()));
    let mut want = stored.clone();
    want.sort_by(|x, y| x.id.as_str().cmp(y.id.as_str()));
    assert_eq!(listed, want);
    assert!(store.fee_items_of_patient(AccountId::new(), patient).await.unwrap().is_empty());

    // An order claims both items; a second order cannot take one of them.
    let mut order = Order::new(OrderId::new(), OrderKind::Fees, account, "检查费".into(), Fen::new(36200), now, now);
    order.patient_id = Some(patient);
    order.items = stored
        .iter()
        .map(|i| OrderItem {
            fee_item_id: Some(i.id.clone()),
            fee_type: i.fee_type,
            name: i.name.clone(),
            quantity: i.quantity,
            amount: i.amount,
            department_id: None,
            insurance_code: None,
        })
        .collect();
    let claims: Vec<FeeItemChange> = stored
        .iter()
        .map(|i| {
            let mut c = i.clone();
            c.claim(order.id).unwrap();
            FeeItemChange { item: c, expected_order: None }
        })
        .collect();
    let w = PaymentWrite { orders: vec![order.clone()], fee_items: claims.clone(), ..Default::default() };
    store.apply_payment(w.clone()).await.unwrap();
    store.apply_payment(w).await.expect("the same claim again is a retry");
    let other = OrderId::new();
    let mut steal = stored[0].clone();
    steal.claim(other).unwrap();
    let w = PaymentWrite { fee_items: vec![FeeItemChange { item: steal, expected_order: None }], ..Default::default() };
    assert_eq!(conflict(store.apply_payment(w).await), Conflict::FeeItemTaken);
    assert_eq!(
        store.fee_item(&a.id).await.unwrap().unwrap().order_id,
        Some(order.id),
        "the refused claim left nothing"
    );
    assert_eq!(store.orders_of_account(account).await.unwrap(), vec![order.clone()]);
    let due = store.open_orders_due(now + ChronoDuration::seconds(1)).await.unwrap();
    assert!(due.iter().any(|o| o.order_id == order.id), "an open order is listed when due");
    assert!(!store
        .open_orders_due(now - ChronoDuration::seconds(1))
        .await
        .unwrap()
        .iter()
        .any(|o| o.order_id == order.id));

    // Closed: released, and no longer open.
    let mut closed = order.clone();
    closed.close().unwrap();
    closed.next_check_at = None;
    let releases = claims
        .iter()
        .map(|c| {
            let mut i = c.item.clone();
            i.release(order.id);
            FeeItemChange { item: i, expected_order: Some(order.id) }
        })
        .collect();
    store
        .apply_payment(PaymentWrite { orders: vec![closed.clone()], fee_items: releases, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.fee_item(&a.id).await.unwrap().unwrap().status, FeeItemStatus::Unpaid);
    assert!(!store
        .open_orders_due(now + ChronoDuration::days(1))
        .await
        .unwrap()
        .iter()
        .any(|o| o.order_id == order.id));
    assert_eq!(store.order(order.id).await.unwrap().map(|o| o.status), Some(OrderStatus::Closed));

    // The ledger: a top-up by Alipay, a payment from the balance, an overdraft refused.
    let mut topup = Order::new(OrderId::new(), OrderKind::TopUp, account, "充值".into(), Fen::new(10000), now, now);
    topup.choose_channel(Channel::Alipay).unwrap();
    topup.open_trade(Channel::Alipay, Fen::new(10000));
    topup.record_cash(Channel::Alipay, &unique("T"), Fen::new(10000), now).unwrap();
    let m = topup.payment_movement(now, day).unwrap();
    let w = PaymentWrite { orders: vec![topup.clone()], movements: vec![m.clone()], ..Default::default() };
    assert_eq!(store.apply_payment(w.clone()).await.unwrap(), vec![Applied::New]);
    assert_eq!(store.apply_payment(w).await.unwrap(), vec![Applied::Repeat], "a key is applied once");
    assert_eq!(store.balance(account).await.unwrap(), 10000);
    let mut reused = m.clone();
    reused.legs.iter_mut().for_each(|l| l.amount *= 2);
    assert_eq!(
        conflict(store.apply_payment(PaymentWrite { movements: vec![reused], ..Default::default() }).await),
        Conflict::LedgerKey
    );
    let mut unbalanced = m.clone();
    unbalanced.key = unique("bad");
    unbalanced.legs[0].amount += 1;
    assert_eq!(
        conflict(store.apply_payment(PaymentWrite { movements: vec![unbalanced], ..Default::default() }).await),
        Conflict::Ledger
    );

    let mut fee = Order::new(OrderId::new(), OrderKind::Fees, account, "药费".into(), Fen::new(6000), now, now);
    fee.pay_from_balance(now).unwrap();
    let pay = fee.payment_movement(now + ChronoDuration::milliseconds(1), day).unwrap();
    store
        .apply_payment(PaymentWrite { orders: vec![fee.clone()], movements: vec![pay.clone()], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(store.balance(account).await.unwrap(), 4000);
    let mut fee2 = Order::new(OrderId::new(), OrderKind::Fees, account, "药费".into(), Fen::new(6000), now, now);
    fee2.pay_from_balance(now).unwrap();
    let pay2 = fee2.payment_movement(now, day).unwrap();
    let w = PaymentWrite { orders: vec![fee2.clone()], movements: vec![pay2], ..Default::default() };
    assert_eq!(conflict(store.apply_payment(w).await), Conflict::InsufficientBalance);
    assert_eq!(store.balance(account).await.unwrap(), 4000);
    assert_eq!(store.order(fee2.id).await.unwrap(), None, "a refused write leaves nothing");
    let entries = store.balance_entries(account, 10).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| (e.amount, e.balance_after)).collect::<Vec<_>>(),
        vec![(-6000, 4000), (10000, 10000)]
    );
    assert_eq!(store.movement(&m.key).await.unwrap().as_ref(), Some(&m));
    let of_day = store.movements_of_day(day).await.unwrap();
    assert!(of_day.contains(&m) && of_day.contains(&pay));
    let sum: i64 = of_day.iter().flat_map(|m| m.legs.iter()).map(|l| l.amount).sum();
    assert_eq!(sum, 0, "every movement of the day sums to zero");

    // Insurance bindings.
    let binding = InsuranceBinding {
        account_id: account,
        patient_id: patient,
        psn_no: unique("PSN"),
        pay_auth_no: "k1:sealed".into(),
        name: "张三".into(),
        id_type: "01".into(),
        id_no: "k1:sealed".into(),
        insured_type: "employee".into(),
        region: "440300".into(),
        bound_at: now,
        expires_at: now + ChronoDuration::days(1),
    };
    assert_eq!(store.insurance_binding(account, patient).await.unwrap(), None);
    store.put_insurance_binding(&binding).await.unwrap();
    assert_eq!(store.insurance_binding(account, patient).await.unwrap().as_ref(), Some(&binding));
    assert_eq!(store.insurance_binding(AccountId::new(), patient).await.unwrap(), None);
    assert!(store.remove_insurance_binding(account, patient).await.unwrap());
    assert!(!store.remove_insurance_binding(account, patient).await.unwrap());
    assert_eq!(store.insurance_binding(account, patient).await.unwrap(), None);
}
