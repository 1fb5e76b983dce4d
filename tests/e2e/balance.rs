//! The account balance end to end against the real binary (issue 12, PAY-5, PAY-6, must-show 3
//! and 8): top-ups by Alipay and by WeChat Pay through their sandboxes, with the providers'
//! notifications duplicated 5 times, reordered, forged and with a wrong amount: each top-up
//! credited once; a fee paid from the balance (and refused, nothing taken, when it is short);
//! the live `balance` frame on the account's socket after every movement and none for a repeat;
//! the transactions newest first, by kind, paged, in the order they were applied, with their
//! detail; refunds to the balance and back through the channel, partial ones never above what
//! was paid; a top-up given back; a second payment of an order (Alipay, then WeChat Pay's
//! confirmation crossing the close) given back automatically; an insurance order whose self-pay
//! part is 0 completed without cash. Every new route is tried with another patient's token and
//! with staff who may not see money. At the end the stopped server's ledger is read from its
//! store: every movement's legs, and all of them together, sum to zero, and each balance is the
//! sum of its legs.

use chrono::Utc;
use hospital_domain::ledger::LedgerAccount;
use hospital_integrations::alipay::test_keys as alipay_keys;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::booking_flow::{booking_opts, notify, out_trade_no, pay, person, signed, transaction_notification, Person};
use crate::fees::{
    account_id, alipay_notification, alipay_notify, checkout, fee_opts, his_items, item, messages_titled, until_status,
};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};
use crate::realtime::{Enc, Ws};

async fn balance(s: &TestServer, p: &Person) -> i64 {
    ok_json(s.get("/api/v1/me/balance", Some(&p.token)).await).await["balance"].as_i64().expect("balance")
}

/// Waits until the balance is `want` (providers notify asynchronously).
async fn until_balance(s: &TestServer, p: &Person, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let b = balance(s, p).await;
        if b == want {
            return;
        }
        assert!(Instant::now() < deadline, "the balance never became {want}: {b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn top_up(s: &TestServer, p: &Person, fen: u64) -> String {
    let o =
        expect_json(s.post("/api/v1/me/balance/top-ups", Some(&p.token), json!({ "amount": fen })).await, 201).await;
    assert_eq!(
        (o["kind"].as_str(), o["amount"].as_u64(), o["status"].as_str()),
        (Some("top_up"), Some(fen), Some("created"))
    );
    o["id"].as_str().unwrap().to_string()
}

/// Pays an order through the Alipay sandbox (the mini-program flow); its Alipay `trade_no`.
async fn pay_alipay(s: &TestServer, p: &Person, id: &str) -> String {
    let r = s
        .post(&format!("/api/v1/orders/{id}/alipay"), Some(&p.token), json!({ "buyer_open_id": "074a1CcTG1Lelx" }))
        .await;
    let pay = ok_json(r).await;
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{}", out_trade_no(id)), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    pay["trade_no"].as_str().unwrap().to_string()
}

async fn transactions(s: &TestServer, p: &Person, query: &str) -> Value {
    ok_json(s.get(&format!("/api/v1/me/balance/transactions{query}"), Some(&p.token)).await).await
}

/// The `balance` frames a socket receives until one shows `last`; their balances.
async fn balance_frames(ws: &mut Ws, last: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let v = ws.next_of("balance").await;
        let b = v["payload"]["balance"].as_i64().unwrap_or_else(|| panic!("a balance frame: {v}"));
        seen.push(b);
        if b == last {
            return seen;
        }
    }
}

/// Refused to someone who may not see it: 404 for another patient, 401/403 for staff; the
/// answer names none of the owner's money.
async fn refused(r: reqwest::Response, who: &str, secrets: &[&str]) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(matches!(status, 401 | 403 | 404), "{who} was not refused ({status}): {body}");
    for leak in secrets {
        assert!(!body.contains(leak), "{who}'s refusal leaks {leak}: {body}");
    }
}

/// Reads the stopped server's ledger: every movement balanced, all together zero, and each
/// listed balance equal to the sum of its legs. Returns the movements.
async fn ledger_sums_to_zero(dir: &tempfile::TempDir, accounts: &[&str]) -> Vec<hospital_domain::ledger::Movement> {
    use hospital_store::PaymentStore;
    let store = hospital_store::EmbeddedStore::open(dir.path()).expect("open the store");
    let today = hospital_domain::time::HospitalZone::default().local_date(Utc::now());
    let mut movements = Vec::new();
    for day in [today.pred_opt().unwrap(), today, today.succ_opt().unwrap()] {
        movements.extend(store.movements_of_day(day).await.expect("movements"));
    }
    assert!(!movements.is_empty());
    for m in &movements {
        assert_eq!(m.legs.iter().map(|l| l.amount).sum::<i64>(), 0, "a movement's legs sum to zero: {m:?}");
    }
    let all: i64 = movements.iter().flat_map(|m| m.legs.iter()).map(|l| l.amount).sum();
    assert_eq!(all, 0, "the ledger's legs sum to zero");
    for a in accounts {
        let id = hospital_domain::AccountId(uuid::Uuid::parse_str(a).unwrap());
        let legs: i64 = movements.iter().map(|m| m.delta(&LedgerAccount::Balance(id))).sum();
        assert_eq!(store.balance(id).await.unwrap(), legs, "the balance is the sum of its legs");
        let entries = store.balance_entries(id, 1000).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), legs, "the transaction list adds up");
    }
    movements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_ups_credit_once_pay_from_balance_live_and_listed() {
    let s = TestServer::start(fee_opts()).await;
    let a = person(&s, 7601).await;
    let b = person(&s, 7602).await;
    let account = account_id(&s, &a).await;
    let mut ws = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws.next_of("welcome").await;
    assert_eq!(balance(&s, &a).await, 0);
    let r = s.post("/api/v1/me/balance/top-ups", Some(&a.token), json!({ "amount": 0 })).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "amount");
    let r = s.post("/api/v1/me/balance/top-ups", Some(&a.token), json!({ "amount": 500_001 })).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "amount");

    // By Alipay: the sandbox's notification, then 5 duplicates, a forged one and one with a
    // wrong amount. One credit.
    let t1 = top_up(&s, &a, 50_000).await;
    let trade_no = pay_alipay(&s, &a, &t1).await;
    until_balance(&s, &a, 50_000).await;
    until_status(&s, &a, &t1, "paid").await;
    for _ in 0..5 {
        let n = alipay_notification(&out_trade_no(&t1), &trade_no, "500.00", alipay_keys::ALIPAY_PRIVATE_KEY_PEM);
        assert_eq!(alipay_notify(&s, n).await, "success");
    }
    let forged = alipay_notification(&out_trade_no(&t1), &trade_no, "500.00", alipay_keys::APP_PRIVATE_KEY_PEM);
    assert_eq!(alipay_notify(&s, forged).await, "failure");
    let wrong = alipay_notification(&out_trade_no(&t1), &trade_no, "5000.00", alipay_keys::ALIPAY_PRIVATE_KEY_PEM);
    assert_eq!(alipay_notify(&s, wrong).await, "failure");
    assert_eq!(balance(&s, &a).await, 50_000, "credited once");
    assert_eq!(balance_frames(&mut ws, 50_000).await, vec![50_000], "the live balance");

    // By WeChat Pay: the sandbox's notification, then one notification delivered 5 times at
    // once, a forged one (signed with another key) and one with a wrong amount.
    let t2 = top_up(&s, &a, 30_000).await;
    pay(&s, &a, &t2).await;
    until_balance(&s, &a, 80_000).await;
    let (_, body) = transaction_notification(&t2, 30_000);
    let deliveries = (0..5).map(|_| {
        let body = body.clone();
        let s = &s;
        async move { notify(s, &signed(&body), &body).await }
    });
    for r in futures::future::join_all(deliveries).await {
        assert!(r.status().is_success(), "a duplicate is acknowledged: {}", r.status());
    }
    let (_, forged) = transaction_notification(&t2, 30_000);
    let mut headers = signed(&forged);
    let other = hospital_integrations::wechatpay::sign::parse_private_key_pem(
        hospital_integrations::wechatpay::test_keys::MERCHANT_PRIVATE_KEY_PEM,
    )
    .unwrap();
    let sig = hospital_integrations::wechatpay::sign::WechatpaySignature::sign(
        &other,
        hospital_integrations::wechatpay::test_keys::PLATFORM_SERIAL_NO,
        Utc::now().timestamp(),
        &hospital_integrations::wechatpay::sign::nonce(),
        &forged,
    );
    headers.clone_from(&sig.headers().to_vec());
    assert!(notify(&s, &headers, &forged).await.status().is_client_error(), "a forgery is refused");
    let (_, wrong) = transaction_notification(&t2, 1);
    assert!(!notify(&s, &signed(&wrong), &wrong).await.status().is_success(), "a wrong amount is refused");
    assert_eq!(balance(&s, &a).await, 80_000, "credited once");
    assert_eq!(balance_frames(&mut ws, 80_000).await, vec![80_000]);

    // Reordered: two top-ups' notifications arrive the other way round, the first again after.
    let t3 = top_up(&s, &a, 1_000).await;
    let t4 = top_up(&s, &a, 2_000).await;
    let (_, n3) = transaction_notification(&t3, 1_000);
    let (_, n4) = transaction_notification(&t4, 2_000);
    for n in [&n4, &n3, &n4, &n3] {
        assert!(notify(&s, &signed(n), n).await.status().is_success());
    }
    until_balance(&s, &a, 83_000).await;
    let frames = balance_frames(&mut ws, 83_000).await;
    assert_eq!(frames, vec![82_000, 83_000], "one frame per movement, in order");

    // A fee paid from the balance: the order paid, its item paid, the balance debited, once.
    let ids = his_items(&s, vec![item("BAL-7601", &account, &a.patient_id, "腹部B超", "exam", 25_000)]).await;
    let o = expect_json(checkout(&s, &a, &ids).await, 201).await;
    let fee = o["id"].as_str().unwrap().to_string();
    let pay_path = format!("/api/v1/orders/{fee}/pay-from-balance");
    refused(s.post_empty(&pay_path, Some(&b.token)).await, "another patient", &["58000", "腹部B超"]).await;
    let paid = ok_json(s.post_empty(&pay_path, Some(&a.token)).await).await;
    assert_eq!((paid["status"].as_str(), paid["channel"].as_str()), (Some("paid"), Some("balance")), "{paid}");
    let again = ok_json(s.post_empty(&pay_path, Some(&a.token)).await).await;
    assert_eq!(again["paid_at"], paid["paid_at"], "a retry pays nothing more");
    assert_eq!(balance(&s, &a).await, 58_000);
    assert_eq!(balance_frames(&mut ws, 58_000).await, vec![58_000]);
    let items = s.get_json(&format!("/api/v1/me/patients/{}/fee-items", a.patient_id), Some(&a.token)).await;
    assert_eq!(items[0]["status"], "paid", "{items}");
    assert_eq!(messages_titled(&s, &a, "支付成功", &fee).await, 1);

    // Short: refused with a stable code, nothing taken; the order can still be paid online.
    let ids = his_items(&s, vec![item("BAL-7602", &account, &a.patient_id, "核磁共振", "exam", 60_000)]).await;
    let o = expect_json(checkout(&s, &a, &ids).await, 201).await;
    let short = o["id"].as_str().unwrap().to_string();
    let r = s.post_empty(&format!("/api/v1/orders/{short}/pay-from-balance"), Some(&a.token)).await;
    assert_error(r, 409, "insufficient_balance").await;
    assert_eq!(balance(&s, &a).await, 58_000);
    assert_eq!(ok_json(s.get(&format!("/api/v1/orders/{short}"), Some(&a.token)).await).await["status"], "created");
    // A top-up is not paid from the balance.
    let r = s.post_empty(&format!("/api/v1/orders/{t3}/pay-from-balance"), Some(&a.token)).await;
    assert_error(r, 409, "invalid_order_state").await;

    // The transactions, newest first in the order applied, each balance after the one before.
    let all = transactions(&s, &a, "").await;
    let list = all["transactions"].as_array().unwrap().clone();
    let kinds: Vec<&str> = list.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["payment", "top_up", "top_up", "top_up", "top_up"], "{all}");
    let amounts: Vec<i64> = list.iter().map(|t| t["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [-25_000, 1_000, 2_000, 30_000, 50_000]);
    assert_eq!(list[0]["balance_after"], 58_000);
    for w in list.windows(2) {
        assert_eq!(w[0]["seq"].as_u64().unwrap(), w[1]["seq"].as_u64().unwrap() + 1, "{all}");
        assert_eq!(
            w[0]["balance_after"].as_i64().unwrap() - w[0]["amount"].as_i64().unwrap(),
            w[1]["balance_after"].as_i64().unwrap(),
            "each entry follows the one before: {all}"
        );
    }
    assert!(all["next_before"].is_null());
    // Paged, two at a time; by kind.
    let p1 = transactions(&s, &a, "?limit=2").await;
    assert_eq!(p1["transactions"].as_array().unwrap().len(), 2);
    let before = p1["next_before"].as_u64().expect("more");
    let p2 = transactions(&s, &a, &format!("?limit=2&before={before}")).await;
    let p3 = transactions(&s, &a, &format!("?limit=2&before={}", p2["next_before"].as_u64().unwrap())).await;
    let paged: Vec<Value> =
        [&p1, &p2, &p3].iter().flat_map(|p| p["transactions"].as_array().unwrap().clone()).collect();
    assert_eq!(paged, list, "the pages are the list");
    assert!(p3["next_before"].is_null());
    let top_ups = transactions(&s, &a, "?kind=top_up").await;
    assert_eq!(top_ups["transactions"].as_array().unwrap().len(), 4);
    let payments = transactions(&s, &a, "?kind=payment").await;
    assert_eq!(payments["transactions"][0]["order_id"], fee.as_str());
    let r = s.get("/api/v1/me/balance/transactions?limit=0", Some(&a.token)).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "limit");
    let r = s.get("/api/v1/me/balance/transactions?kind=nonsense", Some(&a.token)).await;
    assert!(r.status().is_client_error());
    // The detail: the channel a top-up came by; the order a payment paid.
    let top_key = list[4]["key"].as_str().unwrap().to_string();
    let detail_path = format!("/api/v1/me/balance/transactions/{top_key}");
    let d = ok_json(s.get(&detail_path, Some(&a.token)).await).await;
    assert_eq!(
        (d["channel"].as_str(), d["amount"].as_i64(), d["order"]["id"].as_str()),
        (Some("alipay"), Some(50_000), Some(t1.as_str())),
        "{d}"
    );
    let pay_key = list[0]["key"].as_str().unwrap();
    let d = ok_json(s.get(&format!("/api/v1/me/balance/transactions/{pay_key}"), Some(&a.token)).await).await;
    assert_eq!(
        (d["kind"].as_str(), d["channel"].as_str(), d["order"]["id"].as_str()),
        (Some("payment"), None, Some(fee.as_str())),
        "{d}"
    );
    assert_error(s.get("/api/v1/me/balance/transactions/nonsense", Some(&a.token)).await, 404, "not_found").await;

    // Another patient sees none of it; staff who may not see money are refused; finance may.
    assert_eq!(balance(&s, &b).await, 0);
    assert!(transactions(&s, &b, "").await["transactions"].as_array().unwrap().is_empty());
    refused(s.get(&detail_path, Some(&b.token)).await, "another patient", &["50000", "alipay"]).await;
    let r = s.post(&format!("/api/v1/me/balance/top-ups/{t1}/refund"), Some(&b.token), json!({})).await;
    refused(r, "another patient", &["50000"]).await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let agent = s.staff_login("agent", "agent-demo-2026").await;
    let scheduler = s.staff_login("scheduler", "scheduler-demo-2026").await;
    let admin_path = format!("/api/v1/admin/accounts/{account}/balance");
    for (token, who) in [(&nurse, "a nurse"), (&agent, "an agent"), (&scheduler, "a scheduler")] {
        refused(s.get("/api/v1/me/balance", Some(token)).await, who, &["58000"]).await;
        refused(s.get("/api/v1/me/balance/transactions", Some(token)).await, who, &["58000"]).await;
        refused(s.get(&detail_path, Some(token)).await, who, &["50000"]).await;
        refused(s.post("/api/v1/me/balance/top-ups", Some(token), json!({ "amount": 100 })).await, who, &[]).await;
        refused(s.post_empty(&pay_path, Some(token)).await, who, &["58000"]).await;
        let r = s.post(&format!("/api/v1/me/balance/top-ups/{t1}/refund"), Some(token), json!({})).await;
        refused(r, who, &["50000"]).await;
        refused(s.get(&admin_path, Some(token)).await, who, &["58000", "50000"]).await;
    }
    refused(s.get(&admin_path, Some(&a.token)).await, "the patient", &["58000"]).await;
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    let seen = ok_json(s.get(&format!("{admin_path}?limit=2"), Some(&finance)).await).await;
    assert_eq!(
        (seen["balance"].as_i64(), seen["transactions"].as_array().map(Vec::len)),
        (Some(58_000), Some(2)),
        "{seen}"
    );

    drop(ws);
    let dir = s.stop();
    let movements = ledger_sums_to_zero(&dir, &[&account]).await;
    assert_eq!(movements.iter().filter(|m| m.key.starts_with("topup:")).count(), 4, "one credit per top-up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_to_balance_and_channel_partial_and_a_second_payment_given_back() {
    let s = TestServer::start(fee_opts()).await;
    let a = person(&s, 7701).await;
    let b = person(&s, 7702).await;
    let account = account_id(&s, &a).await;
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let ids = his_items(
        &s,
        vec![
            item("RF-7701", &account, &a.patient_id, "心脏彩超", "exam", 20_000),
            item("RF-7702", &account, &a.patient_id, "血脂四项", "exam", 8_000),
            item("RF-7703", &account, &a.patient_id, "甲状腺功能", "exam", 9_000),
        ],
    )
    .await;

    // Paid by Alipay; refunded in parts, to the balance and back to Alipay, never above what
    // was paid.
    let o1 = expect_json(checkout(&s, &a, &ids[..1]).await, 201).await;
    let id1 = o1["id"].as_str().unwrap().to_string();
    pay_alipay(&s, &a, &id1).await;
    until_status(&s, &a, &id1, "paid").await;
    let refund_path = format!("/api/v1/admin/orders/{id1}/refund");
    let r = s.post(&refund_path, Some(&nurse), json!({ "amount": 5000, "reason": "部分退费", "to": "balance" })).await;
    assert_error(r, 403, "forbidden").await;
    let r =
        s.post(&refund_path, Some(&a.token), json!({ "amount": 5000, "reason": "部分退费", "to": "balance" })).await;
    assert!(matches!(r.status().as_u16(), 401 | 403), "a patient cannot refund: {}", r.status());
    let r = s.post(&refund_path, Some(&finance), json!({ "amount": 5000, "reason": "部分退费", "to": "wallet" })).await;
    assert!(r.status().is_client_error(), "an unknown destination is refused: {}", r.status());
    let mut ws = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws.next_of("welcome").await;
    ok_json(
        s.post(&refund_path, Some(&finance), json!({ "amount": 5000, "reason": "部分检查未做", "to": "balance" }))
            .await,
    )
    .await;
    until_balance(&s, &a, 5_000).await;
    assert_eq!(balance_frames(&mut ws, 5_000).await, vec![5_000]);
    ok_json(
        s.post(&refund_path, Some(&finance), json!({ "amount": 5000, "reason": "部分检查未做", "to": "channel" }))
            .await,
    )
    .await;
    let after = until_status(&s, &a, &id1, "paid").await;
    assert_eq!(after["refunded"], 10_000, "{after}");
    let r = s.post(&refund_path, Some(&finance), json!({ "amount": 10_001, "reason": "超额" })).await;
    assert_error(r, 409, "invalid_order_state").await;
    ok_json(
        s.post(&refund_path, Some(&finance), json!({ "amount": 10_000, "reason": "全部退费", "to": "balance" })).await,
    )
    .await;
    let done = until_status(&s, &a, &id1, "refunded").await;
    assert_eq!(done["refunded"], 20_000, "{done}");
    assert_eq!(balance(&s, &a).await, 15_000, "5000 + 10000 to the balance; 5000 back to Alipay");
    let refunds = transactions(&s, &a, "?kind=refund").await;
    let amounts: Vec<i64> =
        refunds["transactions"].as_array().unwrap().iter().map(|t| t["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, [10_000, 5_000]);

    // Paid by WeChat Pay and refunded in full back to it (completed by WeChat's notification).
    let o2 = expect_json(checkout(&s, &a, &ids[1..2]).await, 201).await;
    let id2 = o2["id"].as_str().unwrap().to_string();
    pay(&s, &a, &id2).await;
    until_status(&s, &a, &id2, "paid").await;
    let r = s.post(&format!("/api/v1/admin/orders/{id2}/refund"), Some(&finance), json!({ "reason": "退号" })).await;
    ok_json(r).await;
    until_status(&s, &a, &id2, "refunded").await;
    assert_eq!(balance(&s, &a).await, 15_000, "back to WeChat Pay, not the balance");

    // A top-up given back (退余额) through Alipay: out of the balance with the request; more
    // than the top-up, or again, is refused.
    let t = top_up(&s, &a, 3_000).await;
    pay_alipay(&s, &a, &t).await;
    until_balance(&s, &a, 18_000).await;
    let back = format!("/api/v1/me/balance/top-ups/{t}/refund");
    refused(s.post(&back, Some(&b.token), json!({})).await, "another patient", &["3000"]).await;
    let r = s.post(&back, Some(&a.token), json!({ "amount": 3_001 })).await;
    assert_error(r, 409, "invalid_order_state").await;
    ok_json(s.post(&back, Some(&a.token), json!({})).await).await;
    until_status(&s, &a, &t, "refunded").await;
    assert_eq!(balance(&s, &a).await, 15_000);
    let r = s.post(&back, Some(&a.token), json!({})).await;
    assert_error(r, 409, "invalid_order_state").await;
    assert_error(
        s.post(&format!("/api/v1/me/balance/top-ups/{id1}/refund"), Some(&a.token), json!({})).await,
        404,
        "not_found",
    )
    .await;

    // A second payment: WeChat Pay opened, then Alipay chosen (the WeChat trade closed) and
    // paid; then WeChat's confirmation crosses the close and it takes the money too. The order
    // stays paid once, by Alipay; the WeChat money goes back by itself.
    let o3 = expect_json(checkout(&s, &a, &ids[2..]).await, 201).await;
    let id3 = o3["id"].as_str().unwrap().to_string();
    ok_json(s.post_empty(&format!("/api/v1/orders/{id3}/wechat-pay"), Some(&a.token)).await).await;
    pay_alipay(&s, &a, &id3).await;
    let paid = until_status(&s, &a, &id3, "paid").await;
    assert_eq!(paid["channel"], "alipay");
    let r =
        s.post_empty(&format!("/sandbox/wechatpay/sandbox/pay/{}?crossing_close=1", out_trade_no(&id3)), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(30);
    while messages_titled(&s, &a, "重复支付已退回", &id3).await == 0 {
        assert!(Instant::now() < deadline, "the second payment was never given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let o = ok_json(s.get(&format!("/api/v1/orders/{id3}"), Some(&a.token)).await).await;
    assert_eq!(
        (o["status"].as_str(), o["channel"].as_str(), o["refunded"].as_u64()),
        (Some("paid"), Some("alipay"), Some(0)),
        "{o}"
    );
    assert_eq!(messages_titled(&s, &a, "支付成功", &id3).await, 1, "paid once");
    assert_eq!(balance(&s, &a).await, 15_000, "the balance is untouched by it");

    drop(ws);
    let dir = s.stop();
    let movements = ledger_sums_to_zero(&dir, &[&account]).await;
    let suspense: i64 = movements.iter().map(|m| m.delta(&LedgerAccount::Suspense)).sum();
    assert_eq!(suspense, 0, "the second payment passed through suspense and out again");
    let extra: Vec<&str> = movements.iter().filter(|m| m.key.starts_with("extra")).map(|m| m.key.as_str()).collect();
    assert_eq!(extra.len(), 2, "in and back out: {extra:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insurance_with_no_self_pay_completes_without_cash() {
    use crate::insurance::{authorize, exam_item, expected_split};
    const EMPLOYEE_PSN_NO: &str = "44010000000000000001";
    const EXAM_CODE: &str = "002101000010000";
    let s = TestServer::start(booking_opts().env("HOSPITAL_SANDBOX_PAY_RETRY_SECS", 1)).await;
    let a = person(&s, 7801).await;
    let http = reqwest::Client::new();
    let code = authorize(&http, &s.url("/sandbox/insurance"), EMPLOYEE_PSN_NO).await;
    let binding = format!("/api/v1/me/patients/{}/insurance", a.patient_id);
    expect_json(s.post(&binding, Some(&a.token), json!({ "auth_code": code })).await, 201).await;
    // Small enough that the personal account covers all the patient's part.
    let fen = 2_000;
    let (_, fund, account, cash) = expected_split(EMPLOYEE_PSN_NO, EXAM_CODE, fen, true);
    assert_eq!(cash, 0, "the rules leave nothing to pay in cash: fund {fund}, account {account}");
    let item = exam_item(&s, &a, "ZERO-7801", fen).await;
    let body = json!({ "patient_id": a.patient_id, "fee_item_ids": [item] });
    let o = expect_json(s.post("/api/v1/me/fee-orders", Some(&a.token), body).await, 201).await;
    let id = o["id"].as_str().unwrap().to_string();
    let pre = ok_json(s.post(&format!("/api/v1/orders/{id}/insurance"), Some(&a.token), json!({})).await).await;
    assert_eq!(pre["own_pay_amt"].as_u64().or(pre["cash"].as_u64()), Some(0), "{pre}");
    let paid = until_status(&s, &a, &id, "paid").await;
    assert!(paid["channel"].is_null() || paid["channel"] != "alipay", "{paid}");
    let r = s.post(&format!("/api/v1/orders/{id}/alipay"), Some(&a.token), json!({ "buyer_open_id": "x" })).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "nothing to pay in cash");
    assert_eq!(balance(&s, &a).await, 0);
}
