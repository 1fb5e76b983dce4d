//! Fee orders end to end against the real binary (PAY-1): fee items from the HIS's signed,
//! idempotent API; one checkout paying several items of one 就诊人, pushed live from `created`;
//! paid through the Alipay sandbox (the mini-program flow) with its notifications duplicated,
//! forged or with a wrong amount handled exactly once; paid by WeChat Pay; switching channel
//! closes the first trade; unpaid orders expire and free their items; another account sees
//! nothing.

use chrono::Utc;
use hospital_gateway::http::exams::lab_signature_header;
use hospital_gateway::http::fees::SANDBOX_HIS_WEBHOOK_SECRET;
use hospital_integrations::alipay::{sign, test_keys};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::booking_flow::{booking_opts, pay, person, Person};
use crate::harness::{assert_error, expect_json, ok_json, Opts, TestServer};
use crate::realtime::{Enc, Ws};

/// The sandbox's Alipay app and merchant (see `src/app.rs`).
pub(crate) const ALIPAY_APP_ID: &str = "2021000000000001";
const ALIPAY_SELLER_ID: &str = "2088000000000001";

pub(crate) fn fee_opts() -> Opts {
    booking_opts().env("HOSPITAL_SANDBOX_PAY_RETRY_SECS", 1)
}

pub(crate) async fn account_id(s: &TestServer, p: &Person) -> String {
    s.get_json("/api/v1/me", Some(&p.token)).await["id"].as_str().expect("account id").to_string()
}

/// POSTs `body` to the HIS route signed with `secret` at `t`.
async fn his_post(s: &TestServer, secret: &[u8], t: i64, body: &str) -> reqwest::Response {
    s.client()
        .post(s.url("/api/v1/his/fee-items"))
        .header("Content-Type", "application/json")
        .header("X-His-Signature", lab_signature_header(secret, t, body.as_bytes()))
        .body(body.to_string())
        .send()
        .await
        .expect("HIS request")
}

pub(crate) fn item(his_id: &str, account: &str, patient: &str, name: &str, fee_type: &str, fen: u64) -> Value {
    json!({
        "his_id": his_id, "account_id": account, "patient_id": patient, "fee_type": fee_type,
        "name": name, "quantity": 1, "unit_price": fen, "amount": fen,
    })
}

/// Hands `items` in through the HIS API, signed now; the stored items' ids.
pub(crate) async fn his_items(s: &TestServer, items: Vec<Value>) -> Vec<String> {
    let body = json!({ "items": items }).to_string();
    let r = his_post(s, SANDBOX_HIS_WEBHOOK_SECRET.as_bytes(), Utc::now().timestamp(), &body).await;
    let v = ok_json(r).await;
    v.as_array().expect("items").iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

pub(crate) async fn checkout(s: &TestServer, p: &Person, ids: &[String]) -> reqwest::Response {
    s.post("/api/v1/me/fee-orders", Some(&p.token), json!({ "patient_id": p.patient_id, "fee_item_ids": ids })).await
}

async fn order(s: &TestServer, p: &Person, id: &str) -> Value {
    s.get_json(&format!("/api/v1/orders/{id}"), Some(&p.token)).await
}

/// Waits until the order's status is `status` (the providers notify asynchronously).
pub(crate) async fn until_status(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = order(s, p, id).await;
        if o["status"] == status {
            return o;
        }
        assert!(Instant::now() < deadline, "order never became {status}: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `order` events for `id` a socket receives until one has `last` status; their statuses.
async fn order_statuses(ws: &mut Ws, id: &str, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let v = ws.next_of("order").await;
        if v["payload"]["id"] == id {
            let st = v["payload"]["status"].as_str().unwrap_or_default().to_string();
            seen.push(st.clone());
            if st == last {
                return seen;
            }
        }
    }
}

/// An Alipay `trade_status_sync` notification, built and signed as Alipay does (with the
/// sandbox's "Alipay" key, the published test key), form-encoded.
pub(crate) fn alipay_notification(out_trade_no: &str, trade_no: &str, yuan: &str, key_pem: &str) -> String {
    let now = Utc::now().with_timezone(&hospital_integrations::alipay::beijing());
    let time = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut params: Vec<(String, String)> = vec![
        ("notify_time".into(), time.clone()),
        ("notify_type".into(), "trade_status_sync".into()),
        ("notify_id".into(), uuid::Uuid::new_v4().simple().to_string()),
        ("app_id".into(), ALIPAY_APP_ID.into()),
        ("charset".into(), "utf-8".into()),
        ("version".into(), "1.0".into()),
        ("sign_type".into(), "RSA2".into()),
        ("trade_no".into(), trade_no.into()),
        ("out_trade_no".into(), out_trade_no.into()),
        ("seller_id".into(), ALIPAY_SELLER_ID.into()),
        ("trade_status".into(), "TRADE_SUCCESS".into()),
        ("total_amount".into(), yuan.into()),
        ("receipt_amount".into(), yuan.into()),
        ("buyer_pay_amount".into(), yuan.into()),
        ("gmt_payment".into(), time),
    ];
    let key = sign::parse_private_key(key_pem).expect("key");
    let content = sign::notification_signing_string(params.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    params.push(("sign".into(), sign::sign_rsa2(&key, &content)));
    params.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn alipay_notify(s: &TestServer, body: String) -> String {
    let r = s
        .client()
        .post(s.url("/api/v1/payments/alipay/notify"))
        .header("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body)
        .send()
        .await
        .expect("notify");
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

pub(crate) async fn messages_titled(s: &TestServer, p: &Person, title: &str, order_id: &str) -> usize {
    let v = s.get_json("/api/v1/me/messages", Some(&p.token)).await;
    let list = v["messages"].as_array().or_else(|| v.as_array()).cloned().unwrap_or_default();
    list.iter().filter(|m| m["title"] == title && m["related"].as_str() == Some(order_id)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn his_items_one_checkout_paid_by_alipay_once() {
    let s = TestServer::start(fee_opts()).await;
    let a = person(&s, 7101).await;
    let b = person(&s, 7102).await;
    let account = account_id(&s, &a).await;
    let secret = SANDBOX_HIS_WEBHOOK_SECRET.as_bytes();
    let ct = item("CT-7101", &account, &a.patient_id, "胸部CT平扫", "exam", 35000);
    let drug = item("RX-7101", &account, &a.patient_id, "阿莫西林胶囊", "drug", 2350);
    let body = json!({ "items": [ct.clone(), drug.clone()] }).to_string();

    // The HIS API: unsigned, forged, stale and replayed calls are refused; items are idempotent.
    let r = s.client().post(s.url("/api/v1/his/fee-items")).body(body.clone()).send().await.unwrap();
    assert_error(r, 401, "signature_missing").await;
    let now = Utc::now().timestamp();
    assert_error(his_post(&s, b"not-the-secret", now, &body).await, 401, "signature_invalid").await;
    assert_error(his_post(&s, secret, now - 3600, &body).await, 401, "signature_expired").await;
    let first = ok_json(his_post(&s, secret, now, &body).await).await;
    assert_error(his_post(&s, secret, now, &body).await, 401, "signature_replayed").await;
    let again = ok_json(his_post(&s, secret, now + 1, &body).await).await;
    assert_eq!(first, again, "a repeated item is the stored item");
    let changed = json!({ "items": [item("CT-7101", &account, &a.patient_id, "胸部CT增强", "exam", 35000)] });
    let r = his_post(&s, secret, now + 2, &changed.to_string()).await;
    assert_error(r, 409, "fee_item_changed").await;
    let foreign = json!({ "items": [item("X-1", &account, &b.patient_id, "血常规", "exam", 100)] });
    let r = his_post(&s, secret, now + 3, &foreign.to_string()).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "items[0].patient_id");
    let ids: Vec<String> = first.as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();

    // Another account sees none of it.
    let r = s.get(&format!("/api/v1/me/patients/{}/fee-items", a.patient_id), Some(&b.token)).await;
    assert_error(r, 404, "not_found").await;
    let r = s
        .post("/api/v1/me/fee-orders", Some(&b.token), json!({ "patient_id": a.patient_id, "fee_item_ids": ids }))
        .await;
    assert_error(r, 404, "not_found").await;
    let r = s
        .post("/api/v1/me/fee-orders", Some(&b.token), json!({ "patient_id": b.patient_id, "fee_item_ids": ids }))
        .await;
    assert_error(r, 409, "fee_items_unavailable").await;

    // One checkout for both items, pushed live from `created`; a retry is the same order.
    let mut ws = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws.next_of("welcome").await;
    let o = expect_json(checkout(&s, &a, &ids).await, 201).await;
    let id = o["id"].as_str().unwrap().to_string();
    assert_eq!(
        (o["status"].as_str(), o["amount"].as_u64(), o["kind"].as_str()),
        (Some("created"), Some(37350), Some("fees"))
    );
    assert_eq!(o["items"].as_array().unwrap().len(), 2);
    let retry = expect_json(checkout(&s, &a, &ids).await, 201).await;
    assert_eq!(retry["id"], o["id"], "a retried checkout makes no second order");
    let r = checkout(&s, &a, &ids[..1]).await;
    assert_error(r, 409, "fee_items_unavailable").await;
    let items = s.get_json(&format!("/api/v1/me/patients/{}/fee-items", a.patient_id), Some(&a.token)).await;
    assert!(items.as_array().unwrap().iter().all(|i| i["status"] == "ordered" && i["order_id"] == o["id"]), "{items}");
    let r = s.get(&format!("/api/v1/orders/{id}"), Some(&b.token)).await;
    assert_error(r, 404, "not_found").await;
    let r = s.post(&format!("/api/v1/orders/{id}/alipay"), Some(&b.token), json!({ "buyer_open_id": "x" })).await;
    assert_error(r, 404, "not_found").await;

    // Alipay, the mini-program flow: the trade, then the payer pays in the sandbox, which
    // notifies (signed) until answered `success`.
    let pay = ok_json(
        s.post(
            &format!("/api/v1/orders/{id}/alipay"),
            Some(&a.token),
            json!({ "buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5" }),
        )
        .await,
    )
    .await;
    let out_trade_no = pay["out_trade_no"].as_str().unwrap().to_string();
    let trade_no = pay["trade_no"].as_str().expect("trade_no for my.tradePay").to_string();
    assert_eq!(out_trade_no, id.replace('-', ""));
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{out_trade_no}"), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    let paid = until_status(&s, &a, &id, "paid").await;
    assert_eq!(paid["channel"], "alipay");
    let statuses = order_statuses(&mut ws, &id, "paid").await;
    assert_eq!(statuses.first().map(String::as_str), Some("created"), "created is pushed too: {statuses:?}");
    let items = s.get_json(&format!("/api/v1/me/patients/{}/fee-items", a.patient_id), Some(&a.token)).await;
    assert!(items.as_array().unwrap().iter().all(|i| i["status"] == "paid"), "{items}");

    // Notifications duplicated 5 times: `success`, nothing new. Forged (another key) and with
    // a wrong amount: refused (`failure`), nothing changed.
    for _ in 0..5 {
        let n = alipay_notification(&out_trade_no, &trade_no, "373.50", test_keys::ALIPAY_PRIVATE_KEY_PEM);
        assert_eq!(alipay_notify(&s, n).await, "success");
    }
    let forged = alipay_notification(&out_trade_no, &trade_no, "373.50", test_keys::APP_PRIVATE_KEY_PEM);
    assert_eq!(alipay_notify(&s, forged).await, "failure");
    let wrong = alipay_notification(&out_trade_no, &trade_no, "0.01", test_keys::ALIPAY_PRIVATE_KEY_PEM);
    assert_eq!(alipay_notify(&s, wrong).await, "failure");
    let after = order(&s, &a, &id).await;
    assert_eq!((after["status"].as_str(), after["refunded"].as_u64()), (Some("paid"), Some(0)));
    assert_eq!(after["paid_at"], paid["paid_at"], "paid once");
    assert_eq!(messages_titled(&s, &a, "支付成功", &id).await, 1, "one payment message");
    let mine = s.get_json("/api/v1/me/orders", Some(&a.token)).await;
    assert!(mine.as_array().unwrap().iter().any(|o| o["id"] == id.as_str()));
    let theirs = s.get_json("/api/v1/me/orders", Some(&b.token)).await;
    assert!(theirs.as_array().unwrap().is_empty(), "{theirs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_pay_channel_switch_and_expiry() {
    let s = TestServer::start(
        fee_opts().env("HOSPITAL_ACTORS__FEE_ORDER_TTL_SECS", 4).env("HOSPITAL_ACTORS__ORDER_SWEEP_SECS", 1),
    )
    .await;
    let a = person(&s, 7201).await;
    let account = account_id(&s, &a).await;
    let ids = his_items(
        &s,
        vec![
            item("E-7201", &account, &a.patient_id, "血常规", "exam", 2500),
            item("E-7202", &account, &a.patient_id, "尿常规", "exam", 1500),
            item("E-7203", &account, &a.patient_id, "肝功能", "exam", 6000),
        ],
    )
    .await;

    // WeChat Pay, through the existing route and sandbox.
    let o1 = expect_json(checkout(&s, &a, &ids[..1]).await, 201).await;
    let id1 = o1["id"].as_str().unwrap().to_string();
    pay(&s, &a, &id1).await;
    let paid = until_status(&s, &a, &id1, "paid").await;
    assert_eq!((paid["channel"].as_str(), paid["amount"].as_u64()), (Some("wechat_pay"), Some(2500)));

    // WeChat Pay opened, then Alipay chosen: the WeChat trade is closed first, so the payer
    // cannot pay it; the order is paid once, by Alipay.
    let o2 = expect_json(checkout(&s, &a, &ids[1..2]).await, 201).await;
    let id2 = o2["id"].as_str().unwrap().to_string();
    ok_json(s.post_empty(&format!("/api/v1/orders/{id2}/wechat-pay"), Some(&a.token)).await).await;
    let pay2 = ok_json(
        s.post(&format!("/api/v1/orders/{id2}/alipay"), Some(&a.token), json!({ "buyer_open_id": "074a1CcTG1LelxKe" }))
            .await,
    )
    .await;
    let out2 = pay2["out_trade_no"].as_str().unwrap().to_string();
    let r = s.post_empty(&format!("/sandbox/wechatpay/sandbox/pay/{out2}"), None).await;
    assert_ne!(r.status(), StatusCode::OK, "the closed WeChat trade cannot be paid");
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{out2}"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let paid2 = until_status(&s, &a, &id2, "paid").await;
    assert_eq!(paid2["channel"], "alipay");

    // Unpaid: it expires, is closed (pushed live), and its item may be ordered again.
    let mut ws = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws.next_of("welcome").await;
    let o3 = expect_json(checkout(&s, &a, &ids[2..]).await, 201).await;
    let id3 = o3["id"].as_str().unwrap().to_string();
    let statuses = order_statuses(&mut ws, &id3, "closed").await;
    assert_eq!(statuses, vec!["created".to_string(), "closed".to_string()]);
    until_status(&s, &a, &id3, "closed").await;
    let r = s.post(&format!("/api/v1/orders/{id3}/alipay"), Some(&a.token), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "an expired order cannot be paid");
    let items = s.get_json(&format!("/api/v1/me/patients/{}/fee-items", a.patient_id), Some(&a.token)).await;
    let third = items.as_array().unwrap().iter().find(|i| i["id"] == ids[2].as_str()).cloned().unwrap();
    assert_eq!(third["status"], "unpaid", "{third}");
    let o4 = expect_json(checkout(&s, &a, &ids[2..]).await, 201).await;
    assert_ne!(o4["id"], o3["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_refund_by_alipay_and_income_report_equal_the_ledger() {
    let s = TestServer::start(fee_opts()).await;
    let a = person(&s, 7301).await;
    let account = account_id(&s, &a).await;
    let ids = his_items(
        &s,
        vec![
            item("F-7301", &account, &a.patient_id, "头颅CT平扫", "exam", 28000),
            item("F-7302", &account, &a.patient_id, "布洛芬缓释胶囊", "drug", 3600),
        ],
    )
    .await;
    // One order paid by Alipay, one by WeChat Pay.
    let o1 = expect_json(checkout(&s, &a, &ids[..1]).await, 201).await;
    let id1 = o1["id"].as_str().unwrap().to_string();
    let p1 = ok_json(
        s.post(&format!("/api/v1/orders/{id1}/alipay"), Some(&a.token), json!({ "buyer_open_id": "074a1CcTG1Lelx" }))
            .await,
    )
    .await;
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{}", p1["out_trade_no"].as_str().unwrap()), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    until_status(&s, &a, &id1, "paid").await;
    let o2 = expect_json(checkout(&s, &a, &ids[1..]).await, 201).await;
    let id2 = o2["id"].as_str().unwrap().to_string();
    pay(&s, &a, &id2).await;
    until_status(&s, &a, &id2, "paid").await;

    // Who may refund and read reports: finance (and admin), not a nurse, not a patient.
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let refund = json!({ "amount": 10000, "reason": "部分检查未做" });
    let r = s.post(&format!("/api/v1/admin/orders/{id1}/refund"), Some(&nurse), refund.clone()).await;
    assert_error(r, 403, "forbidden").await;
    let r = s.post(&format!("/api/v1/admin/orders/{id1}/refund"), Some(&a.token), refund.clone()).await;
    assert!(matches!(r.status().as_u16(), 401 | 403), "a patient cannot refund: {}", r.status());

    // A partial refund by Alipay completes at once (its answer is synchronous).
    ok_json(s.post(&format!("/api/v1/admin/orders/{id1}/refund"), Some(&finance), refund).await).await;
    let after = until_status(&s, &a, &id1, "paid").await;
    assert_eq!(after["refunded"], 10000, "{after}");
    assert_eq!(messages_titled(&s, &a, "退费成功", &id1).await, 1);

    let today = hospital_domain::time::HospitalZone::default().local_date(Utc::now());
    let q = format!("/api/v1/admin/finance/income?from={today}&to={today}&by=channel");
    let r = s.get(&q, Some(&nurse)).await;
    assert_error(r, 403, "forbidden").await;
    let r = s.get(&q, Some(&a.token)).await;
    assert!(matches!(r.status().as_u16(), 401 | 403), "a patient reads no report: {}", r.status());
    let report = ok_json(s.get(&q, Some(&finance)).await).await;
    let row =
        |key: &str| report["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).cloned().unwrap_or(Value::Null);
    let (ali, wx) = (row("alipay"), row("wechat_pay"));
    assert_eq!(
        (ali["paid"].as_i64(), ali["refunded"].as_i64(), ali["net"].as_i64()),
        (Some(28000), Some(10000), Some(18000)),
        "{report}"
    );
    assert_eq!((wx["paid"].as_i64(), wx["net"].as_i64()), (Some(3600), Some(3600)), "{report}");
    assert_eq!(report["total_net"], 21600, "{report}");
    // By fee type the same money, the other way round: income, not channels.
    let by_type = ok_json(s.get(&q.replace("by=channel", "by=fee_type"), Some(&finance)).await).await;
    assert_eq!(by_type["total_net"], report["total_net"], "{by_type}");
    // CSV: the same rows and total.
    let r = s.get(&format!("{q}&format=csv"), Some(&finance)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("key,label,paid_fen,refunded_fen,net_fen,movements\n"), "{csv}");
    assert!(csv.contains("alipay,支付宝,28000,10000,18000,"), "{csv}");
    assert!(csv.trim_end().ends_with("total,合计,31600,10000,21600,"), "{csv}");
    let r = s.get(&q.replace("by=channel", "by=nonsense"), Some(&finance)).await;
    assert!(r.status().is_client_error(), "a bad group is refused: {}", r.status());
}
