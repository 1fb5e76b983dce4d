//! Issue 12, must-show 4: a property test of the ledger in the real embedded store. Random
//! top-ups (WeChat Pay, Alipay), payments from the balance, refunds to the balance and refunds
//! out of it, over three patient accounts and a small pool of idempotency keys (so keys repeat,
//! with the same movement or with another one), each applied through `apply_payment`, one write
//! at a time, and side by side to the domain's `Ledger` (the rules over memory). After every step:
//! - the store's answer is the model's: applied, a repeat (nothing changed), or the same refusal
//!   (`KeyReused` = `Conflict::LedgerKey`, `InsufficientBalance`);
//! - every balance the store reports equals the sum of the legs of the movements the store
//!   itself lists for it, equals the model's, and is never negative;
//! - the patient's transaction list (`balance_entries`) adds up to the balance, and its newest
//!   entry's `balance_after` is the balance;
//! - the list is in the order the movements were applied, though many share one millisecond
//!   (every step's time is drawn from a few milliseconds, often going backwards): each entry's
//!   `seq` is one more than the one before, and its balance after is the one before's plus its
//!   amount; a page of it (`balance_page`, a `before` cursor, a kind) is that list's slice.
//!
//! Then the store is reopened from disk and the balances are the same.

use chrono::{NaiveDate, Utc};
use hospital_domain::billing::FeeType;
use hospital_domain::ledger::{Applied, Channel, Ledger, LedgerAccount, LedgerError, Leg, Movement, MovementKind};
use hospital_domain::AccountId;
use hospital_store::{BalancePage, Conflict, EmbeddedStore, PaymentStore, PaymentWrite, StoreError};
use proptest::prelude::*;

const DAY: (i32, u32, u32) = (2026, 11, 29);
const ACCOUNTS: usize = 3;
const KEYS: u8 = 10;

#[derive(Debug, Clone)]
enum Op {
    TopUp {
        who: usize,
        amount: i64,
        key: u8,
        alipay: bool,
    },
    Pay {
        who: usize,
        amount: i64,
        key: u8,
    },
    /// A fee paid back into the balance.
    RefundToBalance {
        who: usize,
        amount: i64,
        key: u8,
    },
    /// Money taken out of the balance back to the channel it came by (退余额).
    RefundOut {
        who: usize,
        amount: i64,
        key: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..ACCOUNTS;
    let amount = 1i64..20_000;
    let key = 0..KEYS;
    prop_oneof![
        (who.clone(), amount.clone(), key.clone(), any::<bool>()).prop_map(|(who, amount, key, alipay)| Op::TopUp {
            who,
            amount,
            key,
            alipay
        }),
        (who.clone(), amount.clone(), key.clone()).prop_map(|(who, amount, key)| Op::Pay { who, amount, key }),
        (who.clone(), amount.clone(), key.clone()).prop_map(|(who, amount, key)| Op::RefundToBalance {
            who,
            amount,
            key
        }),
        (who, amount, key).prop_map(|(who, amount, key)| Op::RefundOut { who, amount, key }),
    ]
}

fn base() -> chrono::DateTime<Utc> {
    day().and_hms_opt(2, 0, 0).unwrap().and_utc()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(DAY.0, DAY.1, DAY.2).unwrap()
}

fn movement(op: &Op, accounts: &[AccountId], step: usize) -> Movement {
    let income = LedgerAccount::Income { fee_type: FeeType::Exam, department: None };
    let (who, key, kind, legs) = match *op {
        Op::TopUp { who, amount, key, alipay } => {
            let channel = if alipay { Channel::Alipay } else { Channel::WechatPay };
            let legs =
                vec![(LedgerAccount::Balance(accounts[who]), amount), (LedgerAccount::Channel(channel), -amount)];
            (who, key, MovementKind::TopUp, legs)
        }
        Op::Pay { who, amount, key } => {
            (who, key, MovementKind::Payment, vec![(LedgerAccount::Balance(accounts[who]), -amount), (income, amount)])
        }
        Op::RefundToBalance { who, amount, key } => {
            (who, key, MovementKind::Refund, vec![(LedgerAccount::Balance(accounts[who]), amount), (income, -amount)])
        }
        Op::RefundOut { who, amount, key } => {
            let legs = vec![
                (LedgerAccount::Balance(accounts[who]), -amount),
                (LedgerAccount::Channel(Channel::WechatPay), amount),
            ];
            (who, key, MovementKind::Refund, legs)
        }
    };
    Movement {
        key: format!("k{key}"),
        kind,
        legs: legs.into_iter().map(|(account, amount)| Leg { account, amount }).collect(),
        // A few milliseconds for all of them, in no order: the list must keep the order the
        // movements were applied in, not their times nor their keys.
        at: base() + chrono::Duration::milliseconds((step as i64 * 7) % 3),
        day: day(),
        account_id: Some(accounts[who]),
        order_id: None,
        description: format!("{op:?}"),
        refs: vec![],
        cash_channel: None,
    }
}

/// The store's answer in the model's terms.
fn outcome(r: Result<Vec<Applied>, StoreError>) -> Result<Applied, &'static str> {
    match r {
        Ok(v) => Ok(*v.first().expect("one movement, one outcome")),
        Err(StoreError::Conflict(Conflict::LedgerKey)) => Err("key reused"),
        Err(StoreError::Conflict(Conflict::InsufficientBalance)) => Err("insufficient balance"),
        Err(StoreError::Conflict(Conflict::Ledger)) => Err("unbalanced"),
        Err(e) => panic!("the store failed: {e}"),
    }
}

fn expected(r: Result<Applied, LedgerError>) -> Result<Applied, &'static str> {
    match r {
        Ok(a) => Ok(a),
        Err(LedgerError::KeyReused(_)) => Err("key reused"),
        Err(LedgerError::InsufficientBalance { .. }) => Err("insufficient balance"),
        Err(e) => panic!("the model refused a movement the test builds well-formed: {e}"),
    }
}

async fn check_balances(store: &EmbeddedStore, model: &Ledger, accounts: &[AccountId]) {
    let movements = store.movements_of_day(day()).await.unwrap();
    for &a in accounts {
        let account = LedgerAccount::Balance(a);
        let balance = store.balance(a).await.unwrap();
        let legs: i64 = movements.iter().map(|m| m.delta(&account)).sum();
        assert_eq!(balance, legs, "the balance is the sum of its legs");
        assert_eq!(balance, model.balance(&account), "the store agrees with the model");
        assert!(balance >= 0, "never negative");
        let entries = store.balance_entries(a, 1000).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), balance, "the transaction list adds up");
        assert_eq!(entries.first().map(|e| e.balance_after).unwrap_or(0), balance, "newest entry's balance after");
        let applied: Vec<&Movement> =
            model.movements().filter(|m| m.delta(&account) != 0).collect::<Vec<_>>().into_iter().rev().collect();
        assert_eq!(
            entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            applied.iter().map(|m| m.key.as_str()).collect::<Vec<_>>(),
            "newest first, in the order applied"
        );
        for w in entries.windows(2) {
            assert_eq!(w[0].seq, w[1].seq + 1, "numbered in order");
            assert_eq!(w[0].balance_after - w[0].amount, w[1].balance_after, "each follows the one before");
        }
        // Pages of two, and one kind: slices of the same list.
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = store.balance_page(a, BalancePage { before, kind: None, limit: 2 }).await.unwrap();
            before = page.last().map(|e| e.seq);
            let last = page.len() < 2;
            paged.extend(page);
            if last {
                break;
            }
        }
        assert_eq!(paged, entries, "the pages are the list");
        let kind = MovementKind::TopUp;
        let top_ups = store.balance_page(a, BalancePage { before: None, kind: Some(kind), limit: 1000 }).await.unwrap();
        let want: Vec<_> = entries.iter().filter(|e| e.kind == kind).cloned().collect();
        assert_eq!(top_ups, want, "by kind");
    }
}

fn run(ops: Vec<Op>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let accounts: Vec<AccountId> = (0..ACCOUNTS).map(|_| AccountId::new()).collect();
        let mut model = Ledger::new();
        // What each key was first used for, to build exact repeats: a key reused by the
        // generator with the same op is then the same movement, retried.
        let mut first_use: std::collections::HashMap<String, Movement> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            let mut m = movement(op, &accounts, i);
            if i % 3 == 2 {
                if let Some(earlier) = first_use.get(&m.key) {
                    // Every third step with a used key retries that movement, stamped anew
                    // as a retry is (`Movement::same_as` ignores the time).
                    m = Movement { at: m.at, ..earlier.clone() };
                }
            }
            first_use.entry(m.key.clone()).or_insert_with(|| m.clone());
            let want = expected(model.apply(&m));
            let got =
                outcome(store.apply_payment(PaymentWrite { movements: vec![m.clone()], ..Default::default() }).await);
            assert_eq!(got, want, "step {i}: {op:?}");
            check_balances(&store, &model, &accounts).await;
        }
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        check_balances(&store, &model, &accounts).await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_in_the_store_matches_the_rules_and_balances_equal_their_legs(ops in prop::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
