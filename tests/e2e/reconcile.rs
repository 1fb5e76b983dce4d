//! Reconciliation end to end against the real binary (issue 12, PAY-4, must-show 5 and 8): fee
//! orders paid through the WeChat Pay and Alipay sandboxes, whose bills are made from what
//! really happened in them; three differences planted, one of each kind (a payment left out of
//! WeChat's bill, an amount changed in Alipay's, a WeChat payment whose notification never
//! came), plus a trade we never placed. Finance runs the day: every difference is found; the
//! lost notification is resolved by asking WeChat Pay and applied through the order's payment
//! actor (the order paid once, the ledger's income right); the rest are left for finance, who
//! closes one with a note (audited). Running the day again doubles nothing. Other patients and
//! staff who may not see money are refused and see nothing.

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::booking_flow::{booking_opts, pay, person, Person};
use crate::harness::{assert_error, expect_json, ok_json, Opts, TestServer};
use crate::insurance::exam_item;

/// Fee orders paid promptly in the sandboxes; the payment actor never chases a missing
/// notification by itself during the test (so only reconciliation can find it).
pub fn recon_opts() -> Opts {
    booking_opts().env("HOSPITAL_SANDBOX_PAY_RETRY_SECS", 1).env("HOSPITAL_ACTORS__PAYMENT_CHECK_AFTER_SECS", 3600)
}

pub fn today() -> String {
    hospital_domain::time::HospitalZone::default().local_date(Utc::now()).to_string()
}

/// A staff member with `roles`, created by the admin and logged in: the token.
pub async fn staff_with(s: &TestServer, admin: &str, username: &str, roles: &[&str]) -> String {
    let body = json!({ "username": username, "name": "测试员工", "password": "Recon-pass-2026", "roles": roles });
    expect_json(s.post("/api/v1/admin/staff", Some(admin), body).await, 201).await;
    s.staff_login(username, "Recon-pass-2026").await
}

/// One exam item of `fen` handed in by the HIS, checked out as its own order: the order id.
pub async fn fee_order(s: &TestServer, p: &Person, his_id: &str, fen: u64) -> String {
    let item = exam_item(s, p, his_id, fen).await;
    let o = expect_json(
        s.post("/api/v1/me/fee-orders", Some(&p.token), json!({ "patient_id": p.patient_id, "fee_item_ids": [item] }))
            .await,
        201,
    )
    .await;
    o["id"].as_str().expect("order id").to_string()
}

pub fn out_trade_no(order_id: &str) -> String {
    order_id.replace('-', "")
}

/// Pays an order through the Alipay sandbox (the mini-program flow).
pub async fn pay_alipay(s: &TestServer, p: &Person, id: &str) {
    ok_json(
        s.post(&format!("/api/v1/orders/{id}/alipay"), Some(&p.token), json!({ "buyer_open_id": "074a1CcTG1Lel" }))
            .await,
    )
    .await;
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{}", out_trade_no(id)), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
}

pub async fn until_status(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = s.get_json(&format!("/api/v1/orders/{id}"), Some(&p.token)).await;
        if o["status"] == status {
            return o;
        }
        assert!(Instant::now() < deadline, "order never became {status}: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn messages_titled(s: &TestServer, p: &Person, title: &str, order_id: &str) -> usize {
    let v = s.get_json("/api/v1/me/messages", Some(&p.token)).await;
    let list = v["messages"].as_array().or_else(|| v.as_array()).cloned().unwrap_or_default();
    list.iter().filter(|m| m["title"] == title && m["related"].as_str() == Some(order_id)).count()
}

fn run_of<'a>(runs: &'a Value, provider: &str) -> &'a Value {
    runs.as_array()
        .expect("runs")
        .iter()
        .find(|r| r["provider"] == provider)
        .unwrap_or_else(|| panic!("no {provider} run: {runs}"))
}

/// (kind, out_trade_no, status) of every difference of a run, sorted.
fn kinds(run: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = run["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["out_trade_no"].as_str().unwrap().to_string(),
                d["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_differences_found_the_safe_one_resolved_and_a_rerun_doubles_nothing() {
    let s = TestServer::start(recon_opts()).await;
    let a = person(&s, 7401).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let finance = s.staff_login("finance", "finance-demo-2026").await;

    // Four orders: WeChat (left out of WeChat's bill), Alipay (its amount changed in Alipay's
    // bill), WeChat paid with its notification lost, and WeChat matching.
    let left_out = fee_order(&s, &a, "RC-7401", 1200).await;
    pay(&s, &a, &left_out).await;
    until_status(&s, &a, &left_out, "paid").await;
    let changed = fee_order(&s, &a, "RC-7402", 2500).await;
    pay_alipay(&s, &a, &changed).await;
    until_status(&s, &a, &changed, "paid").await;
    let lost = fee_order(&s, &a, "RC-7403", 3300).await;
    ok_json(s.post_empty(&format!("/api/v1/orders/{lost}/wechat-pay"), Some(&a.token)).await).await;
    let r = s
        .post(
            "/sandbox/payments/lost-notice",
            None,
            json!({ "provider": "wechat_pay", "out_trade_no": out_trade_no(&lost) }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", r.text().await.unwrap_or_default());
    let matching = fee_order(&s, &a, "RC-7404", 4100).await;
    pay(&s, &a, &matching).await;
    until_status(&s, &a, &matching, "paid").await;
    // Paid at WeChat, not known here: no notification came and nobody asked.
    let before = s.get_json(&format!("/api/v1/orders/{lost}"), Some(&a.token)).await;
    assert_ne!(before["status"], "paid", "{before}");

    for plant in [
        json!({ "provider": "wechat_pay", "kind": "missing", "out_trade_no": out_trade_no(&left_out) }),
        json!({ "provider": "alipay", "kind": "amount", "out_trade_no": out_trade_no(&changed), "amount": 4999 }),
        json!({ "provider": "wechat_pay", "kind": "unknown", "out_trade_no": "NEVERPLACED7401", "amount": 888 }),
    ] {
        let r = s.post("/sandbox/bills/plant", None, plant).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", r.text().await.unwrap_or_default());
    }

    // Finance runs the day.
    let day = today();
    let runs = ok_json(s.post("/api/v1/admin/reconciliation/runs", Some(&finance), json!({ "date": day })).await).await;
    let wx = run_of(&runs, "wechat_pay");
    let ali = run_of(&runs, "alipay");
    let ins = run_of(&runs, "insurance");
    for r in [wx, ali, ins] {
        assert_eq!(r["status"], "done", "{r}");
    }
    let mut expected: Vec<(String, String, String)> = vec![
        ("missing_here".into(), "NEVERPLACED7401".into(), "for_finance".into()),
        ("missing_here".into(), out_trade_no(&lost), "resolved".into()),
        ("missing_there".into(), out_trade_no(&left_out), "for_finance".into()),
    ];
    expected.sort();
    assert_eq!(kinds(wx), expected, "{wx}");
    assert_eq!(wx["matched"], 1, "only the matching order matched at first: {wx}");
    assert_eq!(kinds(ali), vec![("amount_differs".into(), out_trade_no(&changed), "for_finance".into())], "{ali}");
    let d = &ali["differences"][0];
    assert_eq!((d["ours"].as_u64(), d["theirs"].as_u64()), (Some(2500), Some(4999)), "{d}");
    assert!(d["note"].as_str().unwrap().contains("支付宝查询"), "the provider was asked: {d}");
    assert_eq!((ins["their_lines"].as_u64(), ins["our_lines"].as_u64()), (Some(0), Some(0)), "{ins}");

    // The lost payment is applied through the order's actor: paid once, with its message.
    let paid = until_status(&s, &a, &lost, "paid").await;
    assert_eq!(paid["channel"], "wechat_pay");
    assert_eq!(messages_titled(&s, &a, "支付成功", &lost).await, 1);
    // The ledger: WeChat Pay brought in the three WeChat orders, Alipay the one.
    let q = format!("/api/v1/admin/finance/income?from={day}&to={day}&by=channel");
    let report = ok_json(s.get(&q, Some(&finance)).await).await;
    let net = |key: &str| {
        report["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).map(|r| r["net"].as_i64().unwrap())
    };
    assert_eq!((net("wechat_pay"), net("alipay")), (Some(1200 + 3300 + 4100), Some(2500)), "{report}");

    // Running the day again: the resolved payment now matches, nothing is applied twice,
    // nothing listed twice, what was found out is kept.
    let again =
        ok_json(s.post("/api/v1/admin/reconciliation/runs", Some(&finance), json!({ "date": day })).await).await;
    let wx2 = run_of(&again, "wechat_pay");
    assert_eq!(kinds(wx2), kinds(wx), "{wx2}");
    assert_eq!(wx2["matched"], 2, "the resolved payment matches now: {wx2}");
    assert_eq!(wx2["attempts"], 2);
    assert_eq!(kinds(run_of(&again, "alipay")), kinds(ali));
    assert_eq!(messages_titled(&s, &a, "支付成功", &lost).await, 1, "paid once");
    assert_eq!(ok_json(s.get(&q, Some(&finance)).await).await["total_net"], report["total_net"]);
    let stored = ok_json(s.get(&format!("/api/v1/admin/reconciliation/runs?date={day}"), Some(&finance)).await).await;
    assert_eq!(stored.as_array().unwrap().len(), 3, "one run per provider: {stored}");

    // Finance closes the amount difference with a note (audited); once only; a rerun keeps it.
    let id = ali["differences"][0]["id"].as_str().unwrap().to_string();
    let handle = format!("/api/v1/admin/reconciliation/runs/{day}/differences/{id}/handle");
    let r = s.post(&handle, Some(&finance), json!({ "note": "" })).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "note");
    let closed =
        ok_json(s.post(&handle, Some(&finance), json!({ "note": "支付宝账单金额有误，已与支付宝核实" })).await).await;
    assert_eq!(closed["status"], "closed", "{closed}");
    assert!(closed["handled_by"].is_string());
    let r = s.post(&handle, Some(&finance), json!({ "note": "again" })).await;
    assert_error(r, 409, "already_handled").await;
    let r = s
        .post(
            &format!("/api/v1/admin/reconciliation/runs/{day}/differences/alipay:nothing/handle"),
            Some(&finance),
            json!({ "note": "x" }),
        )
        .await;
    assert_error(r, 404, "not_found").await;
    let third =
        ok_json(s.post("/api/v1/admin/reconciliation/runs", Some(&finance), json!({ "date": day })).await).await;
    assert_eq!(
        kinds(run_of(&third, "alipay")),
        vec![("amount_differs".into(), out_trade_no(&changed), "closed".into())]
    );
    let open = ok_json(
        s.get(
            &format!("/api/v1/admin/reconciliation/differences?from={day}&to={day}&status=for_finance"),
            Some(&finance),
        )
        .await,
    )
    .await;
    let mut open_nos: Vec<&str> =
        open.as_array().unwrap().iter().map(|d| d["out_trade_no"].as_str().unwrap()).collect();
    open_nos.sort();
    let mut expected = vec!["NEVERPLACED7401".to_string(), out_trade_no(&left_out)];
    expected.sort();
    assert_eq!(open_nos, expected, "{open}");
    assert!(open.as_array().unwrap().iter().all(|d| d["date"] == day.as_str()));
    let audit = ok_json(s.get("/api/v1/admin/audit?action=reconciliation.handle", Some(&admin)).await).await;
    let entries = audit["entries"].as_array().or_else(|| audit.as_array()).cloned().unwrap_or_default();
    assert!(
        entries.iter().any(
            |e| e["event"]["purpose"] == "支付宝账单金额有误，已与支付宝核实" && e["event"]["outcome"] == "success"
        ),
        "the close is in the audit log with its note: {audit}"
    );
    let r = s.post("/api/v1/admin/reconciliation/runs", Some(&finance), json!({ "date": "2999-01-01" })).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "date");

    // Must-show 8: a patient and staff who may not see money are refused, and see nothing.
    let doctor = staff_with(&s, &admin, "recon_doctor", &["doctor"]).await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let agent = s.staff_login("agent", "agent-demo-2026").await;
    let b = person(&s, 7402).await;
    let reads = [
        format!("/api/v1/admin/reconciliation/runs?date={day}"),
        format!("/api/v1/admin/reconciliation/differences?from={day}&to={day}"),
    ];
    for token in [&doctor, &nurse, &agent, &a.token, &b.token] {
        for path in &reads {
            let r = s.get(path, Some(token)).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(matches!(status, 401 | 403), "{path}: {status} {body}");
            assert!(!body.contains("NEVERPLACED") && !body.contains(&out_trade_no(&lost)), "nothing leaked: {body}");
        }
        let r = s.post("/api/v1/admin/reconciliation/runs", Some(token), json!({ "date": day })).await;
        assert!(matches!(r.status().as_u16(), 401 | 403), "run: {}", r.status());
        let r = s.post(&handle, Some(token), json!({ "note": "x" })).await;
        assert!(matches!(r.status().as_u16(), 401 | 403), "handle: {}", r.status());
    }
}
