//! Medical insurance (医保) end to end against the real binary (issue 12, must-show 1, 2, 8): a
//! 就诊人's insurance identity bound from the centre's authorisation; the ¥350.00 exam of an
//! employee-insured (职工) patient pre-settled with the split the sandbox rules give (computed
//! here from the rules file, independently of the server), the self-pay part paid through the
//! Alipay sandbox, the order paid once with every part recorded, and a refund reversing the
//! insurance part (6203, checked at the centre through 6301) and the self-pay part. Every new
//! route is tried with another patient's token and with staff who may not see money.

use chrono::Utc;
use hospital_gateway::http::exams::lab_signature_header;
use hospital_gateway::http::fees::SANDBOX_HIS_WEBHOOK_SECRET;
use hospital_integrations::insurance::{InsuranceClient, InsuranceConfig, OrderRef, OrderStatus};
use hospital_integrations::Insurance;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

use crate::booking_flow::{booking_opts, person, Person};
use crate::harness::{assert_error, expect_json, ok_json, TestServer};
use crate::realtime::{Enc, Ws};

/// 张三 of the sandbox rules: employee-insured (310) in 广州 (440100), ¥120.00 in the account.
const EMPLOYEE_PSN_NO: &str = "44010000000000000001";
/// 检查费 (一般检查) in the sandbox catalogue.
const EXAM_CODE: &str = "002101000010000";
const EXAM_FEN: u64 = 35000;

/// The split the sandbox rules file gives for one item, computed here from the file itself
/// (not from the server, nor the integrations crate's rules code): (total, fund, account, cash).
pub fn expected_split(psn_no: &str, code: &str, amount: u64, use_account: bool) -> (u64, u64, u64, u64) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/src/insurance/sandbox_rules.toml"))
            .expect("the sandbox rules file");
    let rules: toml::Value = toml::from_str(&text).expect("rules parse");
    let fen = |v: Option<&toml::Value>| -> u64 {
        let s = v.and_then(|v| v.as_str()).unwrap_or("0.00");
        let (y, f) = s.split_once('.').unwrap_or((s, "0"));
        y.parse::<u64>().unwrap() * 100 + format!("{f:0<2}")[..2].parse::<u64>().unwrap()
    };
    let person = rules["person"].as_array().unwrap().iter().find(|p| p["psn_no"].as_str() == Some(psn_no)).unwrap();
    let policy = rules["policy"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["region"] == person["region"] && p["insutype"] == person["insutype"])
        .unwrap();
    let class = rules["catalogue"].get(code).and_then(|c| c.as_str()).unwrap_or("C");
    let ratio = policy[&format!("ratio_{}", class.to_lowercase())].as_integer().unwrap() as u64;
    let fund = if ratio == 0 {
        0
    } else {
        let deductible_left = fen(policy.get("deductible")).saturating_sub(fen(person.get("ytd_deductible_used")));
        let over = amount - amount.min(deductible_left);
        let cap_left = fen(policy.get("annual_cap")).saturating_sub(fen(person.get("ytd_fund_paid")));
        (over * ratio / 100).min(cap_left)
    };
    let patient = amount - fund;
    let account = if use_account && policy["personal_account"].as_bool() == Some(true) {
        patient.min(fen(person.get("account_balance")))
    } else {
        0
    };
    (amount, fund, account, patient - account)
}

/// The rules file's ID number and name of a person (what 6301 names the patient with).
pub fn person_identity(psn_no: &str) -> (String, String) {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/src/insurance/sandbox_rules.toml"))
            .unwrap();
    let rules: toml::Value = toml::from_str(&text).unwrap();
    let p = rules["person"].as_array().unwrap().iter().find(|p| p["psn_no"].as_str() == Some(psn_no)).unwrap();
    (p["id_no"].as_str().unwrap().into(), p["name"].as_str().unwrap().into())
}

/// 6301 at a centre (`base` is its URL), for the order `pay_ord_id`: the payToken is read from
/// the sandbox's own view of the order (at `sandbox_orders`), the query is the real protocol.
pub async fn centre_query(
    http: &reqwest::Client,
    base: &str,
    pay_ord_id: &str,
    psn_no: &str,
) -> hospital_integrations::insurance::Settlement {
    let held: Value = http
        .get(format!("{base}/sandbox/orders/{pay_ord_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .expect("the sandbox's order");
    let (id_no, name) = person_identity(psn_no);
    let client = InsuranceClient::new(InsuranceConfig::with_test_keys(base)).unwrap();
    client
        .query(OrderRef {
            pay_ord_id: pay_ord_id.into(),
            pay_token: held["pay_token"].as_str().expect("pay_token").into(),
            id_type: "01".into(),
            id_no,
            name,
        })
        .await
        .expect("6301")
}

pub async fn account_id(s: &TestServer, p: &Person) -> String {
    s.get_json("/api/v1/me", Some(&p.token)).await["id"].as_str().expect("account id").to_string()
}

/// Hands one exam item in through the HIS API; its id.
pub async fn exam_item(s: &TestServer, p: &Person, his_id: &str, fen: u64) -> String {
    let account = account_id(s, p).await;
    let body = json!({ "items": [{
        "his_id": his_id, "account_id": account, "patient_id": p.patient_id, "fee_type": "exam",
        "name": "胸部检查", "quantity": 1, "unit_price": fen, "amount": fen, "insurance_code": EXAM_CODE,
    }]})
    .to_string();
    let t = Utc::now().timestamp();
    let r = s
        .client()
        .post(s.url("/api/v1/his/fee-items"))
        .header("Content-Type", "application/json")
        .header("X-His-Signature", lab_signature_header(SANDBOX_HIS_WEBHOOK_SECRET.as_bytes(), t, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    ok_json(r).await[0]["id"].as_str().unwrap().to_string()
}

/// The patient's side of the 医保电子凭证 authorisation at the centre: an authCode.
pub async fn authorize(http: &reqwest::Client, centre: &str, psn_no: &str) -> String {
    let r = http.post(format!("{centre}/sandbox/authorize")).json(&json!({ "psn_no": psn_no })).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["auth_code"].as_str().unwrap().to_string()
}

pub async fn until_status(s: &TestServer, p: &Person, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let o = s.get_json(&format!("/api/v1/orders/{id}"), Some(&p.token)).await;
        if o["status"] == status {
            return o;
        }
        assert!(Instant::now() < deadline, "order never became {status}: {o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Refused to someone who is not the owner: 404 for another patient, 401/403 for staff.
async fn refused(r: reqwest::Response, who: &str) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    assert!(matches!(status, 401 | 403 | 404), "{who} was not refused ({status}): {body}");
    for leak in ["fund_pay", "psn_no", "pay_ord_id", "440106", "张三"] {
        assert!(!body.contains(leak), "{who}'s refusal leaks {leak}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn employee_exam_split_paid_by_alipay_once_and_refunded_in_full() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_SANDBOX_PAY_RETRY_SECS", 1)).await;
    let centre = s.url("/sandbox/insurance");
    let http = s.client().clone();
    let a = person(&s, 7401).await;
    let b = person(&s, 7402).await;
    let nurse = s.staff_login("nurse", "nurse-demo-2026").await;
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    let binding_path = format!("/api/v1/me/patients/{}/insurance", a.patient_id);

    // PAY-2: binding from the authorisation; the insured type and region recognised; nothing
    // secret shown.
    let code = authorize(&http, &centre, EMPLOYEE_PSN_NO).await;
    for (token, who) in [(&b.token, "another patient"), (&nurse, "a nurse"), (&finance, "finance staff")] {
        refused(s.post(&binding_path, Some(token), json!({ "auth_code": code })).await, who).await;
    }
    let r = s.post(&binding_path, Some(&a.token), json!({ "auth_code": "" })).await;
    assert_eq!(expect_json(r, 422).await["error"]["field"], "auth_code");
    let bound = expect_json(s.post(&binding_path, Some(&a.token), json!({ "auth_code": code })).await, 201).await;
    assert_eq!(
        (bound["insured_type"].as_str(), bound["insured_type_label"].as_str(), bound["region"].as_str()),
        (Some("employee"), Some("职工"), Some("440100")),
        "{bound}"
    );
    assert_eq!((bound["insutype"].as_str(), bound["psn_no"].as_str()), (Some("310"), Some(EMPLOYEE_PSN_NO)));
    let (id_no, _) = person_identity(EMPLOYEE_PSN_NO);
    assert_eq!(bound["id_no_masked"].as_str().unwrap().len(), id_no.len());
    assert!(!bound.to_string().contains(&id_no), "the ID number is masked: {bound}");
    assert!(!bound.to_string().contains("AUTH"), "the payAuthNo is never shown: {bound}");
    // An authCode is single use.
    let r = s.post(&binding_path, Some(&a.token), json!({ "auth_code": code })).await;
    assert_error(r, 409, "insurance_auth_invalid").await;
    let read = ok_json(s.get(&binding_path, Some(&a.token)).await).await;
    assert_eq!(read["psn_no"], bound["psn_no"]);
    for (token, who) in [(&b.token, "another patient"), (&nurse, "a nurse"), (&finance, "finance staff")] {
        refused(s.get(&binding_path, Some(token)).await, who).await;
        refused(s.delete(&binding_path, Some(token)).await, who).await;
    }

    // The checkout: a fee order, then the insurance pre-settlement showing the split.
    let item = exam_item(&s, &a, "EXAM-7401", EXAM_FEN).await;
    let mut ws = Ws::connect(&s, Some(&a.token), Enc::Json).await;
    ws.next_of("welcome").await;
    let body = json!({ "patient_id": a.patient_id, "fee_item_ids": [item] });
    let o = expect_json(s.post("/api/v1/me/fee-orders", Some(&a.token), body).await, 201).await;
    let id = o["id"].as_str().unwrap().to_string();
    let ins_path = format!("/api/v1/orders/{id}/insurance");
    for (token, who) in [(&b.token, "another patient"), (&nurse, "a nurse"), (&finance, "finance staff")] {
        refused(s.post(&ins_path, Some(token), json!({})).await, who).await;
    }
    let pre = ok_json(s.post(&ins_path, Some(&a.token), json!({})).await).await;
    let (total, fund, account, cash) = expected_split(EMPLOYEE_PSN_NO, EXAM_CODE, EXAM_FEN, true);
    assert_eq!(
        (
            pre["fee_sumamt"].as_u64(),
            pre["fund_pay"].as_u64(),
            pre["psn_acct_pay"].as_u64(),
            pre["own_pay_amt"].as_u64()
        ),
        (Some(total), Some(fund), Some(account), Some(cash)),
        "the split the rules give: {pre}"
    );
    assert_eq!(fund + account + cash, EXAM_FEN);
    assert!(fund > 0 && account > 0 && cash > 0, "every part is used in this example: {pre}");
    assert_eq!(pre["stage"], "pre_settled");
    let pay_ord_id = pre["pay_ord_id"].as_str().unwrap().to_string();
    let again = ok_json(s.post(&ins_path, Some(&a.token), json!({})).await).await;
    assert_eq!(again["pay_ord_id"], pre["pay_ord_id"], "asking again is the same pre-settlement");
    for (token, who) in [(&b.token, "another patient"), (&nurse, "a nurse"), (&finance, "finance staff")] {
        refused(s.get(&ins_path, Some(token)).await, who).await;
    }
    let held = centre_query(&http, &centre, &pay_ord_id, EMPLOYEE_PSN_NO).await;
    assert_eq!(held.status, OrderStatus::PreSettled);

    // The self-pay part through the Alipay sandbox: the trade is for the cash part only.
    let pay = ok_json(
        s.post(
            &format!("/api/v1/orders/{id}/alipay"),
            Some(&a.token),
            json!({ "buyer_open_id": "074a1CcTG1LelxKe4x" }),
        )
        .await,
    )
    .await;
    let out_trade_no = pay["out_trade_no"].as_str().unwrap().to_string();
    let r = s.post_empty(&format!("/sandbox/alipay/sandbox/pay/{out_trade_no}"), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap_or_default());
    let paid = until_status(&s, &a, &id, "paid").await;
    assert_eq!(paid["channel"], "alipay");
    // Pushed live: created, then paying (the cash in, the settlement being confirmed), then paid.
    let mut statuses = Vec::new();
    while statuses.last().map(String::as_str) != Some("paid") {
        let v = ws.next_of("order").await;
        if v["payload"]["id"] == id.as_str() {
            statuses.push(v["payload"]["status"].as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(statuses.first().map(String::as_str), Some("created"), "{statuses:?}");
    assert!(statuses.iter().any(|s| s == "paying"), "{statuses:?}");

    // Every part recorded, settled at the centre once.
    let settled = ok_json(s.get(&ins_path, Some(&a.token)).await).await;
    assert_eq!((settled["stage"].as_str(), settled["cash_channel"].as_str()), (Some("settled"), Some("alipay")));
    assert!(settled["setl_id"].as_str().is_some_and(|x| x.starts_with("SETL")), "{settled}");
    let at_centre = centre_query(&http, &centre, &pay_ord_id, EMPLOYEE_PSN_NO).await;
    assert_eq!(at_centre.status, OrderStatus::Settled);
    let amounts = at_centre.amounts.unwrap();
    assert_eq!(
        (amounts.total.get(), amounts.fund.get(), amounts.account.get(), amounts.cash.get()),
        (total, fund, account, cash)
    );
    let staff_path = format!("/api/v1/admin/orders/{id}/insurance");
    let staff_view = ok_json(s.get(&staff_path, Some(&finance)).await).await;
    assert_eq!(staff_view["fund_pay"].as_u64(), Some(fund));
    refused(s.get(&staff_path, Some(&nurse)).await, "a nurse").await;
    refused(s.get(&staff_path, Some(&a.token)).await, "the patient on a staff route").await;
    let messages = s.get_json("/api/v1/me/messages", Some(&a.token)).await;
    let list = messages["messages"].as_array().or_else(|| messages.as_array()).cloned().unwrap_or_default();
    let paid_messages = list.iter().filter(|m| m["title"] == "支付成功" && m["related"] == id.as_str()).count();
    assert_eq!(paid_messages, 1, "paid once: {list:?}");

    // Finance splits income by channel: the fund, the personal account, Alipay.
    let today = hospital_domain::time::HospitalZone::default().local_date(Utc::now());
    let q = format!("/api/v1/admin/finance/income?from={today}&to={today}&by=channel");
    let report = ok_json(s.get(&q, Some(&finance)).await).await;
    let net = |key: &str| {
        report["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).and_then(|r| r["net"].as_i64()).unwrap_or(0)
    };
    assert_eq!(
        (net("insurance_fund"), net("personal_account"), net("alipay")),
        (fund as i64, account as i64, cash as i64),
        "{report}"
    );

    // A refund reverses the insurance part (6203) and the self-pay part.
    let r = s.post(&format!("/api/v1/admin/orders/{id}/refund"), Some(&finance), json!({ "reason": "检查取消" })).await;
    ok_json(r).await;
    until_status(&s, &a, &id, "refunded").await;
    let refunded = ok_json(s.get(&ins_path, Some(&a.token)).await).await;
    assert_eq!(refunded["stage"], "refunded", "{refunded}");
    let at_centre = centre_query(&http, &centre, &pay_ord_id, EMPLOYEE_PSN_NO).await;
    assert_eq!(at_centre.status, OrderStatus::Refunded, "the centre gave every insured part back");
    let report = ok_json(s.get(&q, Some(&finance)).await).await;
    let net = |key: &str| {
        report["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).and_then(|r| r["net"].as_i64()).unwrap_or(0)
    };
    assert_eq!((net("insurance_fund"), net("personal_account"), net("alipay")), (0, 0, 0), "{report}");

    // Unbinding: the binding is gone, a new insurance checkout is refused until bound again.
    let r = s.delete(&binding_path, Some(&a.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(s.get(&binding_path, Some(&a.token)).await, 404, "not_found").await;
    let item2 = exam_item(&s, &a, "EXAM-7401-2", 2000).await;
    let body = json!({ "patient_id": a.patient_id, "fee_item_ids": [item2] });
    let o2 = expect_json(s.post("/api/v1/me/fee-orders", Some(&a.token), body).await, 201).await;
    let r =
        s.post(&format!("/api/v1/orders/{}/insurance", o2["id"].as_str().unwrap()), Some(&a.token), json!({})).await;
    assert_error(r, 409, "insurance_not_bound").await;
}

// ---- crash safety (must-show 2) ----
//
// The insurance centre and Alipay run in this test process (the real sandboxes, on their own
// ports), so they outlive the hospital server killed with SIGKILL, as the real ones would. A
// gate in front of the centre holds one chosen request (before it reaches the centre, or after
// the centre applied it, its answer never sent) so the server is killed at a known moment;
// Alipay's notifications reach whichever server runs now through a forwarder, which can drop
// them.

mod outside {
    use axum::body::{Body, Bytes};
    use axum::extract::{Request, State};
    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::Router;
    use hospital_integrations::alipay::test_keys as alipay_keys;
    use hospital_integrations::insurance::test_keys as insurance_keys;
    use hospital_integrations::{AlipaySandbox, AlipaySandboxConfig, InsuranceSandbox, InsuranceSandboxConfig};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tower::ServiceExt;

    pub const ALIPAY_APP_ID: &str = "2021000000000009";
    pub const ALIPAY_SELLER_ID: &str = "2088000000000009";

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Hold {
        /// The request never reaches the centre.
        Before,
        /// The centre applies it; its answer is never sent.
        After,
    }

    pub struct Shared {
        pub insurance: InsuranceSandbox,
        pub alipay: AlipaySandbox,
        rule: Mutex<Option<(String, Hold)>>,
        held: AtomicBool,
        /// Where Alipay's notifications go (None: dropped, answered `failure`).
        pub hospital: Mutex<Option<String>>,
        http: reqwest::Client,
    }

    impl Shared {
        /// Holds the next request to `path`.
        pub fn hold(&self, path: &str, how: Hold) {
            self.held.store(false, Ordering::SeqCst);
            *self.rule.lock().unwrap() = Some((path.to_string(), how));
        }

        /// Waits until the held request came (and, `After`, was applied).
        pub async fn until_held(&self) {
            let deadline = std::time::Instant::now() + Duration::from_secs(40);
            while !self.held.load(Ordering::SeqCst) {
                assert!(std::time::Instant::now() < deadline, "the held request never came");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn centre(State(o): State<Arc<Shared>>, req: Request) -> Response {
        let path = req.uri().path().to_string();
        let rule = {
            let mut r = o.rule.lock().unwrap();
            if r.as_ref().is_some_and(|(p, _)| *p == path) {
                r.take()
            } else {
                None
            }
        };
        let inner = hospital_integrations::insurance_sandbox_router(o.insurance.clone());
        match rule {
            Some((_, Hold::Before)) => {
                o.held.store(true, Ordering::SeqCst);
                std::future::pending::<Response>().await
            }
            Some((_, Hold::After)) => {
                let _ = inner.oneshot(req).await;
                o.held.store(true, Ordering::SeqCst);
                std::future::pending::<Response>().await
            }
            None => inner.oneshot(req).await.into_response(),
        }
    }

    async fn forward(State(o): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
        let Some(base) = o.hospital.lock().unwrap().clone() else {
            return (StatusCode::OK, "failure").into_response();
        };
        let kind = headers.get(header::CONTENT_TYPE).cloned();
        let mut r = o.http.post(format!("{base}/api/v1/payments/alipay/notify")).body(body);
        if let Some(k) = kind {
            r = r.header(header::CONTENT_TYPE, k);
        }
        match r.send().await {
            Ok(a) => (StatusCode::OK, a.text().await.unwrap_or_default()).into_response(),
            Err(_) => (StatusCode::BAD_GATEWAY, Body::from("failure")).into_response(),
        }
    }

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    /// Starts the centre and Alipay; (shared state, the server's environment pointing at them,
    /// the centre's URL).
    pub async fn start() -> (Arc<Shared>, Vec<(String, String)>, String) {
        let alipay = AlipaySandbox::new(AlipaySandboxConfig::with_test_keys(ALIPAY_APP_ID, ALIPAY_SELLER_ID))
            .unwrap()
            .with_retry_schedule(vec![Duration::from_secs(1); 30]);
        let shared = Arc::new(Shared {
            insurance: InsuranceSandbox::new(InsuranceSandboxConfig::with_test_keys()).unwrap(),
            alipay: alipay.clone(),
            rule: Mutex::new(None),
            held: AtomicBool::new(false),
            hospital: Mutex::new(None),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        });
        let centre_url = serve(Router::new().fallback(centre).with_state(shared.clone())).await;
        let pay_url = serve(
            Router::new()
                .route("/notify", post(forward))
                .with_state(shared.clone())
                .nest_service("/alipay", hospital_integrations::alipay_sandbox_router(alipay)),
        )
        .await;
        // Quoted: figment reads a bare number as a number, not as the string these are.
        let q = |s: &str| format!("\"{s}\"");
        let env = [
            ("HOSPITAL_INSURANCE__BASE_URL", centre_url.clone()),
            ("HOSPITAL_INSURANCE__APP_ID", q(insurance_keys::APP_ID)),
            ("HOSPITAL_INSURANCE__APP_SECRET", q(insurance_keys::APP_SECRET)),
            ("HOSPITAL_INSURANCE__CHANNEL_PRIVATE_KEY", q(insurance_keys::CHANNEL_PRIVATE_KEY)),
            ("HOSPITAL_INSURANCE__PLATFORM_PUBLIC_KEY", q(insurance_keys::PLATFORM_PUBLIC_KEY)),
            ("HOSPITAL_INSURANCE__ORG_CODG", q(insurance_keys::ORG_CODG)),
            ("HOSPITAL_ALIPAY__APP_ID", q(ALIPAY_APP_ID)),
            ("HOSPITAL_ALIPAY__SELLER_ID", q(ALIPAY_SELLER_ID)),
            ("HOSPITAL_ALIPAY__APP_PRIVATE_KEY", alipay_keys::APP_PRIVATE_KEY_PEM.to_string()),
            ("HOSPITAL_ALIPAY__ALIPAY_PUBLIC_KEY", alipay_keys::ALIPAY_PUBLIC_KEY_PEM.to_string()),
            ("HOSPITAL_ALIPAY__GATEWAY_URL", format!("{pay_url}/alipay/gateway.do")),
            ("HOSPITAL_ALIPAY__NOTIFY_URL", format!("{pay_url}/notify")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (shared, env, centre_url)
    }
}

/// A fee order's insurance checkout up to the split: (order id, payOrdId, cash part in fen).
async fn pre_settled_order(s: &TestServer, p: &Person, his_id: &str) -> (String, String, u64) {
    let item = exam_item(s, p, his_id, EXAM_FEN).await;
    let body = json!({ "patient_id": p.patient_id, "fee_item_ids": [item] });
    let o = expect_json(s.post("/api/v1/me/fee-orders", Some(&p.token), body).await, 201).await;
    let id = o["id"].as_str().unwrap().to_string();
    let pre = ok_json(s.post(&format!("/api/v1/orders/{id}/insurance"), Some(&p.token), json!({})).await).await;
    (id, pre["pay_ord_id"].as_str().unwrap().to_string(), pre["own_pay_amt"].as_u64().unwrap())
}

/// Opens the order's Alipay trade and pays it as the payer (the sandbox, in this process).
async fn pay_by_alipay(s: &TestServer, p: &Person, outside: &outside::Shared, id: &str) -> String {
    let r = s.post(&format!("/api/v1/orders/{id}/alipay"), Some(&p.token), json!({ "buyer_open_id": "074a1Cc" })).await;
    let out_trade_no = ok_json(r).await["out_trade_no"].as_str().unwrap().to_string();
    outside.alipay.pay(&out_trade_no).expect("the payer pays");
    out_trade_no
}

/// Waits until the order is in one of `statuses`.
async fn until_one_of(s: &TestServer, p: &Person, id: &str, statuses: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let o = s.get_json(&format!("/api/v1/orders/{id}"), Some(&p.token)).await;
        if statuses.iter().any(|x| o["status"] == *x) {
            return o;
        }
        assert!(Instant::now() < deadline, "order {id} never became one of {statuses:?}: {o}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_settlement_and_self_pay_ends_every_order_completed_or_fully_reversed() {
    use hospital_integrations::insurance::path;
    use outside::Hold;

    let (outside, env, centre) = outside::start().await;
    let opts = |dir: Option<tempfile::TempDir>| {
        let mut o = booking_opts()
            .env("HOSPITAL_ACTORS__FEE_ORDER_TTL_SECS", 20)
            .env("HOSPITAL_ACTORS__ORDER_SWEEP_SECS", 1)
            .env("HOSPITAL_ACTORS__PAYMENT_CHECK_AFTER_SECS", 2);
        for (k, v) in &env {
            o = o.env(k, v);
        }
        match dir {
            Some(d) => o.data_dir(d),
            None => o,
        }
    };
    let restart = |s: TestServer| {
        let dir = s.kill_9();
        let outside = outside.clone();
        let o = opts(Some(dir));
        async move {
            let s = TestServer::start(o).await;
            *outside.hospital.lock().unwrap() = Some(s.base.clone());
            s
        }
    };
    let mut s = TestServer::start(opts(None)).await;
    *outside.hospital.lock().unwrap() = Some(s.base.clone());
    let a = person(&s, 7501).await;
    let code = outside.insurance.authorize(EMPLOYEE_PSN_NO, None).unwrap();
    let binding = format!("/api/v1/me/patients/{}/insurance", a.patient_id);
    expect_json(s.post(&binding, Some(&a.token), json!({ "auth_code": code })).await, 201).await;

    // 1. Killed right after the split was shown, before any payment: nobody pays; it expires
    //    and is revoked at the centre.
    let (unpaid, unpaid_ord, _) = pre_settled_order(&s, &a, "CRASH-1").await;
    s = restart(s).await;

    // 2. The payer paid at Alipay; the server never heard (notifications dropped) and is killed.
    let (heard_late, heard_late_ord, _) = pre_settled_order(&s, &a, "CRASH-2").await;
    *outside.hospital.lock().unwrap() = None;
    pay_by_alipay(&s, &a, &outside, &heard_late).await;
    s = restart(s).await;
    until_one_of(&s, &a, &heard_late, &["paid"]).await;

    // 3. The cash recorded; the confirmation never reached the centre.
    outside.hold(path::CONFIRM, Hold::Before);
    let (before_confirm, before_confirm_ord, _) = pre_settled_order(&s, &a, "CRASH-3").await;
    pay_by_alipay(&s, &a, &outside, &before_confirm).await;
    outside.until_held().await;
    s = restart(s).await;
    until_one_of(&s, &a, &before_confirm, &["paid"]).await;

    // 4. The centre settled; its answer was lost in the kill.
    outside.hold(path::CONFIRM, Hold::After);
    let (after_confirm, after_confirm_ord, _) = pre_settled_order(&s, &a, "CRASH-4").await;
    pay_by_alipay(&s, &a, &outside, &after_confirm).await;
    outside.until_held().await;
    s = restart(s).await;
    until_one_of(&s, &a, &after_confirm, &["paid"]).await;

    // 5. The confirmation never arrived, and while the server was down the person's year
    //    changed (another hospital used up the fund's cap): the centre refuses the old split, so
    //    the checkout is reversed in full: revoked there, the cash given back.
    outside.hold(path::CONFIRM, Hold::Before);
    let (changed, changed_ord, changed_cash) = pre_settled_order(&s, &a, "CRASH-5").await;
    let changed_trade = pay_by_alipay(&s, &a, &outside, &changed).await;
    outside.until_held().await;
    let dir = s.kill_9();
    let mut year = outside.insurance.person(EMPLOYEE_PSN_NO).unwrap().year;
    year.fund_paid = hospital_domain::Fen::new(300_000);
    outside.insurance.set_year(EMPLOYEE_PSN_NO, year);
    s = TestServer::start(opts(Some(dir))).await;
    *outside.hospital.lock().unwrap() = Some(s.base.clone());
    until_one_of(&s, &a, &changed, &["closed"]).await;

    // 6. A refund: the centre refunded (6203) but its answer was lost in the kill.
    let finance = s.staff_login("finance", "finance-demo-2026").await;
    outside.hold(path::REFUND, Hold::After);
    let refund_path = format!("/api/v1/admin/orders/{before_confirm}/refund");
    ok_json(s.post(&refund_path, Some(&finance), json!({ "reason": "退费" })).await).await;
    outside.until_held().await;
    s = restart(s).await;
    until_one_of(&s, &a, &before_confirm, &["refunded"]).await;
    until_one_of(&s, &a, &unpaid, &["closed"]).await;

    // Every order ended completed or fully reversed, at the centre and at Alipay alike.
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let status_at_centre = |ord: String| {
        let (http, centre) = (http.clone(), centre.clone());
        async move { centre_query(&http, &centre, &ord, EMPLOYEE_PSN_NO).await.status }
    };
    assert_eq!(status_at_centre(unpaid_ord).await, OrderStatus::Revoked, "unpaid: revoked at the centre");
    assert!(outside.alipay.trade(&unpaid.replace('-', "")).is_none(), "unpaid: nothing was asked of Alipay");
    for (id, ord) in [(&heard_late, heard_late_ord), (&after_confirm, after_confirm_ord)] {
        let o = until_one_of(&s, &a, id, &["paid"]).await;
        assert_eq!(status_at_centre(ord).await, OrderStatus::Settled, "{o}");
        let t = outside.alipay.trade(&id.replace('-', "")).unwrap();
        assert_eq!(t.refunded.get(), 0, "{t:?}");
    }
    assert_eq!(status_at_centre(before_confirm_ord.clone()).await, OrderStatus::Refunded, "refunded at the centre");
    let t = outside.alipay.trade(&before_confirm.replace('-', "")).unwrap();
    assert_eq!(t.refunded, t.amount, "the cash part refunded in full: {t:?}");
    assert_eq!(status_at_centre(changed_ord).await, OrderStatus::Revoked, "reversed: revoked at the centre");
    let t = outside.alipay.trade(&changed_trade).unwrap();
    assert_eq!((t.amount.get(), t.refunded.get()), (changed_cash, changed_cash), "reversed: the cash given back");
    let reversed = ok_json(s.get(&format!("/api/v1/orders/{changed}/insurance"), Some(&a.token)).await).await;
    assert_eq!(reversed["stage"], "revoked", "{reversed}");
    assert_eq!(reversed["reversal"]["cash_returned"], true, "{reversed}");

    // Nobody paid twice: one settlement per order in the centre's list, one payment message.
    let client = InsuranceClient::new(InsuranceConfig::with_test_keys(&centre)).unwrap();
    let today = Utc::now().with_timezone(&hospital_integrations::insurance::envelope::beijing()).date_naive();
    let list = client.settlement_list(today).await.expect("the settlement list");
    let mut settled: std::collections::HashMap<String, usize> = Default::default();
    for r in list.iter().filter(|r| r.kind == hospital_integrations::insurance::RecordKind::Settlement) {
        *settled.entry(r.pay_ord_id.clone()).or_default() += 1;
    }
    assert_eq!(settled.len(), 3, "three orders settled: {settled:?}");
    assert!(settled.values().all(|n| *n == 1), "each settled once: {settled:?}");
    let messages = s.get_json("/api/v1/me/messages", Some(&a.token)).await;
    let list = messages["messages"].as_array().or_else(|| messages.as_array()).cloned().unwrap_or_default();
    for id in [&heard_late, &before_confirm, &after_confirm] {
        let n = list.iter().filter(|m| m["title"] == "支付成功" && m["related"] == id.as_str()).count();
        assert_eq!(n, 1, "order {id}: one payment: {list:?}");
    }
}

/// 李四 of the sandbox rules: resident-insured (390) in 广州, no personal account.
const RESIDENT_PSN_NO: &str = "44010000000000000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_split_paid_by_wechat_pay() {
    let s = TestServer::start(booking_opts().env("HOSPITAL_SANDBOX_PAY_RETRY_SECS", 1)).await;
    let centre = s.url("/sandbox/insurance");
    let http = s.client().clone();
    let a = person(&s, 7601).await;
    let code = authorize(&http, &centre, RESIDENT_PSN_NO).await;
    let binding = format!("/api/v1/me/patients/{}/insurance", a.patient_id);
    let bound = expect_json(s.post(&binding, Some(&a.token), json!({ "auth_code": code })).await, 201).await;
    assert_eq!(
        (bound["insured_type"].as_str(), bound["insured_type_label"].as_str()),
        (Some("resident"), Some("居民"))
    );
    let item = exam_item(&s, &a, "EXAM-7601", EXAM_FEN).await;
    let body = json!({ "patient_id": a.patient_id, "fee_item_ids": [item] });
    let o = expect_json(s.post("/api/v1/me/fee-orders", Some(&a.token), body).await, 201).await;
    let id = o["id"].as_str().unwrap().to_string();
    let pre = ok_json(s.post(&format!("/api/v1/orders/{id}/insurance"), Some(&a.token), json!({})).await).await;
    let (total, fund, account, cash) = expected_split(RESIDENT_PSN_NO, EXAM_CODE, EXAM_FEN, true);
    assert_eq!(account, 0, "a resident has no personal account to use");
    assert_eq!(
        (
            pre["fee_sumamt"].as_u64(),
            pre["fund_pay"].as_u64(),
            pre["psn_acct_pay"].as_u64(),
            pre["own_pay_amt"].as_u64()
        ),
        (Some(total), Some(fund), Some(account), Some(cash)),
        "{pre}"
    );
    crate::booking_flow::pay(&s, &a, &id).await;
    let paid = until_status(&s, &a, &id, "paid").await;
    assert_eq!(paid["channel"], "wechat_pay");
    let view = ok_json(s.get(&format!("/api/v1/orders/{id}/insurance"), Some(&a.token)).await).await;
    assert_eq!((view["stage"].as_str(), view["cash_channel"].as_str()), (Some("settled"), Some("wechat_pay")));
    let at_centre = centre_query(&http, &centre, pre["pay_ord_id"].as_str().unwrap(), RESIDENT_PSN_NO).await;
    assert_eq!(at_centre.status, OrderStatus::Settled);
    assert_eq!(at_centre.amounts.map(|x| x.cash.get()), Some(cash));
}
