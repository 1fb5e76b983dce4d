//! Finance reports and payment records end to end against the real binary (issue 12, PAY-7,
//! must-show 6 and 8): payments across channels (Alipay, WeChat Pay, and an insured checkout
//! split into the fund, the personal account and Alipay) in two departments and three fee
//! types, and a partial refund. The income reports by day, department, fee type and channel
//! are downloaded as XLSX and read by an independent reader (openpyxl), and as CSV; every total
//! and row equals the ledger's, computed here from what the test paid (and, for the insured
//! order, from the sandbox's rules file). Payment records are searched by channel, kind, order
//! number and status, and exported. Patients and staff who may not see money are refused.

use chrono::Utc;
use hospital_gateway::http::exams::lab_signature_header;
use hospital_gateway::http::fees::SANDBOX_HIS_WEBHOOK_SECRET;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::booking_flow::{pay, person, Person};
use crate::harness::{ok_json, TestServer};
use crate::insurance::{account_id, authorize, expected_split};
use crate::reconcile::{out_trade_no, pay_alipay, recon_opts, staff_with, today, until_status};

/// 张三 of the sandbox rules (employee-insured) and a 甲类 exam code of its catalogue.
const PSN_NO: &str = "44010000000000000001";
const EXAM_CODE: &str = "002101000010000";

/// Hands one item in through the HIS API (signed): its id.
async fn his_item(
    s: &TestServer,
    p: &Person,
    his_id: &str,
    fee_type: &str,
    fen: u64,
    dept: &str,
    code: Option<&str>,
) -> String {
    let account = account_id(s, p).await;
    let mut item = json!({
        "his_id": his_id, "account_id": account, "patient_id": p.patient_id, "fee_type": fee_type,
        "name": format!("项目{his_id}"), "quantity": 1, "unit_price": fen, "amount": fen, "department_id": dept,
    });
    if let Some(c) = code {
        item["insurance_code"] = json!(c);
    }
    let body = json!({ "items": [item] }).to_string();
    let r = s
        .client()
        .post(s.url("/api/v1/his/fee-items"))
        .header("Content-Type", "application/json")
        .header(
            "X-His-Signature",
            lab_signature_header(SANDBOX_HIS_WEBHOOK_SECRET.as_bytes(), Utc::now().timestamp(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    ok_json(r).await[0]["id"].as_str().unwrap().to_string()
}

async fn checkout(s: &TestServer, p: &Person, item: &str) -> String {
    let r = s
        .post("/api/v1/me/fee-orders", Some(&p.token), json!({ "patient_id": p.patient_id, "fee_item_ids": [item] }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

/// Every row of the workbook's first sheet as openpyxl reads it, as JSON.
fn openpyxl_rows(xlsx: &[u8]) -> Vec<Vec<Value>> {
    let script = "import sys, json, io, openpyxl\n\
wb = openpyxl.load_workbook(io.BytesIO(sys.stdin.buffer.read()), read_only=True)\n\
ws = wb.worksheets[0]\n\
print(json.dumps([list(r) for r in ws.iter_rows(values_only=True)], ensure_ascii=False, default=str))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(xlsx).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openpyxl cannot read the workbook (pip install openpyxl; scripts/test.sh does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Vec<Value>>>(&out.stdout).expect("rows")
}

/// A report table (header, then rows `key,label,paid,refunded,net,movements`) as
/// key -> (paid, refunded, net).
fn table(rows: &[Vec<Value>]) -> BTreeMap<String, (i64, i64, i64)> {
    assert_eq!(
        rows[0][..5],
        [json!("key"), json!("label"), json!("paid_fen"), json!("refunded_fen"), json!("net_fen")]
    );
    let int = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).expect("a number") as i64;
    rows[1..].iter().map(|r| (r[0].as_str().unwrap().to_string(), (int(&r[2]), int(&r[3]), int(&r[4])))).collect()
}

fn csv_rows(text: &str) -> Vec<Vec<Value>> {
    text.lines()
        .map(|l| l.split(',').map(|f| f.parse::<i64>().map(|n| json!(n)).unwrap_or_else(|_| json!(f))).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xlsx_and_csv_reports_equal_the_ledger_and_records_are_searchable() {
    let s = TestServer::start(recon_opts()).await;
    let a = person(&s, 7501).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    let depts = s.get_json("/api/v1/departments", None).await;
    let dept = |i: usize| depts[i]["id"].as_str().expect("a demo department").to_string();
    let (d1, d2) = (dept(0), dept(1));

    // Exam ¥280.00 in d1 by Alipay, then ¥100.00 of it refunded; drug ¥36.00 in d2 by WeChat
    // Pay; registration ¥15.00 in d1 by WeChat Pay; an insured exam ¥350.00 in d2 split into
    // fund, personal account and Alipay.
    let o1 = checkout(&s, &a, &his_item(&s, &a, "FN-1", "exam", 28000, &d1, None).await).await;
    pay_alipay(&s, &a, &o1).await;
    until_status(&s, &a, &o1, "paid").await;
    let o2 = checkout(&s, &a, &his_item(&s, &a, "FN-2", "drug", 3600, &d2, None).await).await;
    pay(&s, &a, &o2).await;
    until_status(&s, &a, &o2, "paid").await;
    let o3 = checkout(&s, &a, &his_item(&s, &a, "FN-3", "registration", 1500, &d1, None).await).await;
    pay(&s, &a, &o3).await;
    until_status(&s, &a, &o3, "paid").await;
    let code = authorize(s.client(), &s.url("/sandbox/insurance"), PSN_NO).await;
    let binding = format!("/api/v1/me/patients/{}/insurance", a.patient_id);
    let r = s.post(&binding, Some(&a.token), json!({ "auth_code": code })).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o4 = checkout(&s, &a, &his_item(&s, &a, "FN-4", "exam", 35000, &d2, Some(EXAM_CODE)).await).await;
    ok_json(s.post(&format!("/api/v1/orders/{o4}/insurance"), Some(&a.token), json!({})).await).await;
    pay_alipay(&s, &a, &o4).await;
    until_status(&s, &a, &o4, "paid").await;
    let refund = json!({ "amount": 10000, "reason": "部分检查未做" });
    ok_json(s.post(&format!("/api/v1/admin/orders/{o1}/refund"), Some(&finance), refund).await).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.get_json(&format!("/api/v1/orders/{o1}"), Some(&a.token)).await["refunded"] != 10000 {
        assert!(std::time::Instant::now() < deadline, "the refund never completed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The ledger, computed here from what was paid.
    let (_, fund, account, cash) = expected_split(PSN_NO, EXAM_CODE, 35000, true);
    let day = today();
    let expected: BTreeMap<&str, BTreeMap<String, (i64, i64, i64)>> = [
        ("day", BTreeMap::from([(day.clone(), (28000 + 3600 + 1500 + 35000, 10000, 58100))])),
        ("department", BTreeMap::from([(d1.clone(), (29500, 10000, 19500)), (d2.clone(), (38600, 0, 38600))])),
        (
            "fee_type",
            BTreeMap::from([
                ("exam".to_string(), (63000, 10000, 53000)),
                ("drug".to_string(), (3600, 0, 3600)),
                ("registration".to_string(), (1500, 0, 1500)),
            ]),
        ),
        (
            "channel",
            BTreeMap::from([
                ("alipay".to_string(), (28000 + cash as i64, 10000, 18000 + cash as i64)),
                ("wechat_pay".to_string(), (5100, 0, 5100)),
                ("insurance_fund".to_string(), (fund as i64, 0, fund as i64)),
                ("personal_account".to_string(), (account as i64, 0, account as i64)),
            ]),
        ),
    ]
    .into_iter()
    .collect();

    for (by, want) in &expected {
        let q = format!("/api/v1/admin/finance/income?from={day}&to={day}&by={by}");
        let r = s.get(&format!("{q}&format=xlsx"), Some(&finance)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"].to_str().unwrap().contains("spreadsheetml"), "{:?}", r.headers());
        let rows = openpyxl_rows(&r.bytes().await.unwrap());
        let mut got = table(&rows);
        let total = got.remove("total").expect("a total row");
        assert_eq!(&got, want, "by {by}: {rows:?}");
        assert_eq!(total, (68100, 10000, 58100), "by {by}: the total is the ledger's");
        let csv = s.get(&format!("{q}&format=csv"), Some(&finance)).await.text().await.unwrap();
        let mut from_csv = table(&csv_rows(&csv));
        assert_eq!(from_csv.remove("total"), Some(total), "{csv}");
        assert_eq!(&from_csv, want, "{csv}");
    }

    // Payment records: search and filter.
    let records = |filter: String| {
        let s = &s;
        let finance = &finance;
        let day = day.clone();
        async move {
            ok_json(s.get(&format!("/api/v1/admin/finance/records?from={day}&to={day}{filter}"), Some(finance)).await)
                .await
        }
    };
    let all = records(String::new()).await;
    let kinds: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "payment").count(), 4, "{all}");
    assert_eq!(kinds.iter().filter(|k| **k == "refund").count(), 1, "{all}");
    let income: i64 = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["kind"].as_str(), Some("payment" | "refund")))
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(income, 58100, "the records add up to the ledger's income");
    let ali = records("&channel=alipay".into()).await;
    let mut ali_orders: Vec<&str> = ali.as_array().unwrap().iter().map(|r| r["order_id"].as_str().unwrap()).collect();
    ali_orders.sort();
    ali_orders.dedup();
    let mut want_ali = vec![o1.as_str(), o4.as_str()];
    want_ali.sort();
    assert_eq!(ali_orders, want_ali, "{ali}");
    let refunds = records("&kind=refund".into()).await;
    assert_eq!(refunds.as_array().unwrap().len(), 1);
    assert_eq!((refunds[0]["amount"].as_i64(), refunds[0]["order_id"].as_str()), (Some(-10000), Some(o1.as_str())));
    let by_no = records(format!("&order={}", out_trade_no(&o2))).await;
    assert_eq!(by_no.as_array().unwrap().len(), 1, "{by_no}");
    assert_eq!(by_no[0]["channels"], json!([{ "channel": "wechat_pay", "amount": 3600 }]));
    let insured = records(format!("&order={o4}&kind=payment")).await;
    let mut split: Vec<(String, i64)> = insured[0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["channel"].as_str().unwrap().to_string(), c["amount"].as_i64().unwrap()))
        .collect();
    split.sort();
    assert_eq!(
        split,
        vec![
            ("alipay".into(), cash as i64),
            ("insurance_fund".into(), fund as i64),
            ("personal_account".into(), account as i64)
        ]
    );
    let mine = records(format!("&patient_id={}&status=paid", a.patient_id)).await;
    assert_eq!(mine.as_array().unwrap().len(), all.as_array().unwrap().len(), "every record is this 就诊人's");
    assert!(records("&status=refunded".into()).await.as_array().unwrap().is_empty());
    let r = s.get(&format!("/api/v1/admin/finance/records?from={day}&to={day}&status=nonsense"), Some(&finance)).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = s.get(&format!("/api/v1/admin/finance/records?from={day}&to={day}&format=xlsx"), Some(&finance)).await;
    let rows = openpyxl_rows(&r.bytes().await.unwrap());
    assert_eq!(rows.len(), 1 + all.as_array().unwrap().len());
    let amount_col = rows[0].iter().position(|h| h == "amount_fen").unwrap();
    let kind_col = rows[0].iter().position(|h| h == "kind").unwrap();
    let xlsx_income: i64 = rows[1..]
        .iter()
        .filter(|r| r[kind_col] == "缴费" || r[kind_col] == "退费")
        .map(|r| r[amount_col].as_f64().unwrap() as i64)
        .sum();
    assert_eq!(xlsx_income, 58100);

    // The insurance centre's list agrees with the ledger (reconciliation of the insured order).
    let runs = ok_json(s.post("/api/v1/admin/reconciliation/runs", Some(&finance), json!({ "date": day })).await).await;
    let ins = runs.as_array().unwrap().iter().find(|r| r["provider"] == "insurance").unwrap();
    assert_eq!((ins["matched"].as_u64(), ins["differences"].as_array().map(Vec::len)), (Some(1), Some(0)), "{ins}");
    for r in runs.as_array().unwrap() {
        assert!(r["differences"].as_array().unwrap().is_empty(), "the bills agree: {r}");
    }

    // Must-show 8: other patients and staff who may not see money.
    let doctor = staff_with(&s, &admin, "finance_doctor", &["doctor"]).await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let agent = s.staff_login("agent", "agent-demo-2026").await;
    let b = person(&s, 7502).await;
    for token in [&doctor, &nurse, &agent, &a.token, &b.token] {
        for path in [
            format!("/api/v1/admin/finance/income?from={day}&to={day}&by=channel&format=xlsx"),
            format!("/api/v1/admin/finance/records?from={day}&to={day}"),
            format!("/api/v1/admin/finance/records?from={day}&to={day}&format=csv&patient_id={}", a.patient_id),
        ] {
            let r = s.get(&path, Some(token)).await;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(matches!(status, 401 | 403), "{path}: {status}");
            assert!(
                !body.contains(&o1) && !body.contains("58100") && !body.contains("alipay"),
                "nothing leaked: {body}"
            );
        }
    }
}
