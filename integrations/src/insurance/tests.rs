//! End-to-end insurance tests: the real `InsuranceClient` against the sandbox centre over HTTP
//! on a free port, every call sealed and opened for real; plus the cross-check against an
//! independent SM2/SM3/SM4 implementation (python `gmssl`, run through `gmssl_check.py`).

use std::process::Command;
use std::sync::Arc;

use chrono::{Duration, Utc};
use hospital_domain::Fen;
use secrecy::SecretString;
use serde_json::{json, Value};

use super::envelope::{self, Sealer};
use super::yuan::parse_yuan;
use super::*;

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const ZHANG_SAN: &str = "44010000000000000001"; // 440100 employee, ¥120.00 in the account
const LI_SI: &str = "44010000000000000002"; // 440100 resident
const WANG_WU: &str = "44030000000000000003"; // 440300 employee, ¥1950 of ¥2000 cap used
const ZHAO_LIU: &str = "44030000000000000004"; // 440300 resident, ¥40 of ¥100 deductible used
const EXAM_A: &str = "002101000010000";
const CT_B: &str = "002206000010000";
const VIP_C: &str = "003101000010000";

fn yuan(text: &str) -> Fen {
    parse_yuan(text).unwrap()
}

fn amounts(total: &str, fund: &str, account: &str, cash: &str) -> SplitAmounts {
    SplitAmounts { total: yuan(total), fund: yuan(fund), account: yuan(account), cash: yuan(cash) }
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

struct Env {
    sandbox: InsuranceSandbox,
    base: String,
    client: InsuranceClient,
}

async fn start_with(config: InsuranceSandboxConfig) -> Env {
    let sandbox = InsuranceSandbox::new(config).unwrap();
    let base = serve(sandbox_router(sandbox.clone())).await;
    let client = InsuranceClient::new(InsuranceConfig::with_test_keys(&base)).unwrap();
    Env { sandbox, base, client }
}

async fn start() -> Env {
    start_with(InsuranceSandboxConfig::with_test_keys()).await
}

fn api_code(err: InsuranceError) -> i64 {
    match err {
        InsuranceError::Api { code, message } => {
            assert!(!message.is_empty());
            code
        }
        other => panic!("expected a refusal from the platform, got {other:?}"),
    }
}

impl Env {
    async fn bind(&self, psn_no: &str) -> InsuredIdentity {
        let auth_code = self.sandbox.authorize(psn_no, Some(OPENID)).unwrap();
        self.client.bind(BindRequest { auth_code, openid: Some(OPENID.into()) }).await.unwrap()
    }

    async fn upload(&self, identity: &InsuredIdentity, order: &str, items: &[(&str, u32, &str)]) -> FeeUploadResult {
        self.client.upload_fees(fee_upload(identity, order, items)).await.unwrap()
    }

    async fn pre_settle(&self, identity: &InsuredIdentity, uploaded: &FeeUploadResult) -> Settlement {
        self.client.pre_settle(pre_settle_request(identity, uploaded)).await.unwrap()
    }

    /// Upload, pre-settle and confirm (paying the cash part by WeChat Pay if there is one).
    async fn checkout(
        &self,
        identity: &InsuredIdentity,
        order: &str,
        items: &[(&str, u32, &str)],
    ) -> (FeeUploadResult, Settlement) {
        let uploaded = self.upload(identity, order, items).await;
        let pre = self.pre_settle(identity, &uploaded).await;
        let settled = self.client.confirm(confirm_request(&uploaded, &pre)).await.unwrap();
        (uploaded, settled)
    }
}

fn fee_upload(identity: &InsuredIdentity, order: &str, items: &[(&str, u32, &str)]) -> FeeUpload {
    FeeUpload {
        identity: identity.clone(),
        med_org_ord: order.into(),
        med_type: "11".into(),
        dept_code: "A03".into(),
        dept_name: "内科".into(),
        caty: "A03".into(),
        begin: Utc::now(),
        charge_batch: format!("B{order}"),
        use_account: true,
        items: items
            .iter()
            .enumerate()
            .map(|(i, (code, count, price))| FeeItem {
                feedetl_sn: format!("{order}-{i}"),
                med_list_codg: (*code).into(),
                medins_list_codg: format!("H-{code}"),
                count: *count,
                unit_price: yuan(price),
                amount: Fen::new(yuan(price).get() * u64::from(*count)),
            })
            .collect(),
    }
}

fn pre_settle_request(identity: &InsuredIdentity, uploaded: &FeeUploadResult) -> PreSettleRequest {
    PreSettleRequest {
        pay_auth_no: identity.pay_auth_no.clone(),
        pay_ord_id: uploaded.pay_ord_id.clone(),
        pay_token: uploaded.pay_token.clone(),
        mdtrt_id: uploaded.mdtrt_id.clone(),
        org_biz_ser: format!("BIZ{}", uploaded.med_org_ord),
        charge_batch: format!("B{}", uploaded.med_org_ord),
        use_account: true,
    }
}

fn confirm_request(uploaded: &FeeUploadResult, pre: &Settlement) -> ConfirmRequest {
    let cash = pre.amounts.unwrap().cash;
    let paid = cash > Fen::ZERO;
    ConfirmRequest {
        pay_ord_id: uploaded.pay_ord_id.clone(),
        pay_token: uploaded.pay_token.clone(),
        channel: if paid { CashChannel::WechatPay } else { CashChannel::None },
        cash_trade_no: paid.then(|| format!("4200{}", uploaded.med_org_ord)),
        cash_amount: cash,
    }
}

#[tokio::test]
async fn bind_recognises_insured_type_and_region_and_unbind_withdraws_it() {
    let env = start().await;
    let insurance: Arc<dyn Insurance> = Arc::new(env.client.clone());

    let auth_code = env.sandbox.authorize(ZHANG_SAN, Some(OPENID)).unwrap();
    let zhang =
        insurance.bind(BindRequest { auth_code: auth_code.clone(), openid: Some(OPENID.into()) }).await.unwrap();
    assert!(zhang.pay_auth_no.starts_with("AUTH"), "{}", zhang.pay_auth_no);
    assert_eq!((zhang.psn_no.as_str(), zhang.name.as_str()), (ZHANG_SAN, "张三"));
    assert_eq!((zhang.insured_type, zhang.region.as_str()), (InsuredType::Employee, "440100"));
    assert_eq!((zhang.id_type.as_str(), zhang.id_no.as_str()), ("01", "440106199001011234"));
    assert!(zhang.expires_at > Utc::now() + Duration::minutes(100));
    // The identity number never shows in logs.
    assert!(!format!("{zhang:?}").contains("199001011234"));

    // An authCode works once.
    let again = insurance.bind(BindRequest { auth_code, openid: Some(OPENID.into()) }).await.unwrap_err();
    assert_eq!(api_code(again), code::AUTH_INVALID);
    // ... and only for the openid it was given to.
    let other_user = env.sandbox.authorize(ZHANG_SAN, Some(OPENID)).unwrap();
    let err =
        insurance.bind(BindRequest { auth_code: other_user, openid: Some("someone-else".into()) }).await.unwrap_err();
    assert_eq!(api_code(err), code::AUTH_INVALID);

    let li = env.bind(LI_SI).await;
    assert_eq!(
        (li.insured_type, li.insured_type.insutype(), li.insured_type.label()),
        (InsuredType::Resident, "390", "居民")
    );
    let zhao = env.bind(ZHAO_LIU).await;
    assert_eq!((zhao.insured_type, zhao.region.as_str()), (InsuredType::Resident, "440300"));
    assert!(env.sandbox.authorize("no-such-person", None).is_none());

    // Unbound: the centre refuses the payAuthNo from then on.
    insurance.unbind(&zhang.pay_auth_no).await.unwrap();
    let err = insurance.upload_fees(fee_upload(&zhang, "REG0001", &[(EXAM_A, 1, "350.00")])).await.unwrap_err();
    assert_eq!(api_code(err), code::AUTH_INVALID);
    assert_eq!(api_code(insurance.unbind("AUTH000").await.unwrap_err()), code::AUTH_INVALID);
}

#[tokio::test]
async fn expired_authorisation_is_refused() {
    let env = start_with(InsuranceSandboxConfig {
        auth_lifetime: Duration::seconds(-1),
        ..InsuranceSandboxConfig::with_test_keys()
    })
    .await;
    let zhang = env.bind(ZHANG_SAN).await;
    let err = env.client.upload_fees(fee_upload(&zhang, "REG0002", &[(EXAM_A, 1, "350.00")])).await.unwrap_err();
    assert_eq!(api_code(err), code::AUTH_INVALID);
}

/// The module's worked example, over the wire: ¥350.00 exam, employee, ¥120.00 account.
#[tokio::test]
async fn employee_exam_worked_example_end_to_end() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let uploaded = env.upload(&zhang, "EXAM20250101001", &[(EXAM_A, 1, "350.00")]).await;
    assert!(uploaded.pay_ord_id.starts_with("ORD"));
    assert_eq!((uploaded.total, uploaded.med_org_ord.as_str()), (yuan("350.00"), "EXAM20250101001"));
    assert_eq!(env.sandbox.order(&uploaded.pay_ord_id).unwrap().status, OrderStatus::Saved);

    let pre = env.pre_settle(&zhang, &uploaded).await;
    assert_eq!(pre.status, OrderStatus::PreSettled);
    assert_eq!(pre.amounts, Some(amounts("350.00", "135.00", "120.00", "95.00")));
    let detail = pre.detail.unwrap();
    assert_eq!((detail.deductible, detail.in_scope, detail.uncovered), (yuan("200.00"), yuan("350.00"), Fen::ZERO));
    assert_eq!(detail.account_balance_after, Fen::ZERO);
    // Pre-settlement commits nothing.
    assert_eq!(env.sandbox.person(ZHANG_SAN).unwrap().year.account_balance, yuan("120.00"));

    // The ¥95.00 is paid by WeChat Pay, then the insurance part is confirmed.
    let settled = env.client.confirm(confirm_request(&uploaded, &pre)).await.unwrap();
    assert_eq!(settled.status, OrderStatus::Settled);
    assert!(settled.status.is_settled());
    assert_eq!(settled.amounts, pre.amounts);
    assert!(settled.setl_id.as_deref().unwrap().starts_with("SETL"));
    assert!((settled.settled_at.unwrap() - Utc::now()).num_seconds().abs() < 60);
    let year = env.sandbox.person(ZHANG_SAN).unwrap().year;
    assert_eq!(
        year,
        YearToDate { account_balance: Fen::ZERO, fund_paid: yuan("135.00"), deductible_used: yuan("200.00") }
    );

    let queried = env.client.query(OrderRef::new(&uploaded.pay_ord_id, &uploaded.pay_token, &zhang)).await.unwrap();
    assert_eq!(
        (queried.status, queried.amounts, queried.setl_id.clone()),
        (OrderStatus::Settled, pre.amounts, settled.setl_id.clone())
    );
    assert_eq!(queried.med_org_ord.as_deref(), Some("EXAM20250101001"));
    // 6301 wants the patient's identity too.
    let mut wrong = OrderRef::new(&uploaded.pay_ord_id, &uploaded.pay_token, &zhang);
    wrong.name = "李四".into();
    assert_eq!(api_code(env.client.query(wrong).await.unwrap_err()), code::PARAM_ERROR);
    let mut wrong_token = OrderRef::new(&uploaded.pay_ord_id, "0000", &zhang);
    wrong_token.pay_token = "0000".into();
    assert_eq!(api_code(env.client.query(wrong_token).await.unwrap_err()), code::PARAM_ERROR);

    // The second bill of the year: the deductible is used up and the account empty.
    let (_, second) = env.checkout(&zhang, "EXAM20250101002", &[(EXAM_A, 2, "50.00")]).await;
    assert_eq!(second.amounts, Some(amounts("100.00", "90.00", "0.00", "10.00")));
}

#[tokio::test]
async fn splits_follow_the_rules_for_each_case() {
    let env = start().await;

    // Resident (李四, 440100): deductible ¥300, 60%, no personal account even if asked.
    let li = env.bind(LI_SI).await;
    let (_, s) = env.checkout(&li, "R-LI-1", &[(EXAM_A, 1, "350.00")]).await;
    assert_eq!(s.amounts, Some(amounts("350.00", "30.00", "0.00", "320.00")));

    // Deductible partly used (赵六, 440300 resident: ¥40 of ¥100): 60 left, 50% of 290.
    let zhao = env.bind(ZHAO_LIU).await;
    let uploaded = env.upload(&zhao, "R-ZHAO-1", &[(EXAM_A, 1, "350.00")]).await;
    let pre = env.pre_settle(&zhao, &uploaded).await;
    assert_eq!(pre.amounts, Some(amounts("350.00", "145.00", "0.00", "205.00")));
    assert_eq!(pre.detail.unwrap().deductible, yuan("60.00"));

    // Cap reached (王五, 440300 employee: ¥1950 of ¥2000): 70% of 350 = 245, capped at 50;
    // the account covers the rest, so nothing is left for WeChat Pay.
    let wang = env.bind(WANG_WU).await;
    let (uploaded, s) = env.checkout(&wang, "R-WANG-1", &[(EXAM_A, 1, "350.00")]).await;
    assert_eq!(s.amounts, Some(amounts("350.00", "50.00", "300.00", "0.00")));
    assert_eq!(env.sandbox.order(&uploaded.pay_ord_id).unwrap().cash_channel, Some(CashChannel::None));
    assert_eq!(env.sandbox.person(WANG_WU).unwrap().year.fund_paid, yuan("2000.00"));
    // And the next bill gets nothing from the fund.
    let (_, s) = env.checkout(&wang, "R-WANG-2", &[(EXAM_A, 1, "10.00")]).await;
    assert_eq!(s.amounts, Some(amounts("10.00", "0.00", "10.00", "0.00")));

    // 丙类 not covered (张三): ¥100 特需 paid in full; ¥300 CT (乙) takes the ¥200 deductible,
    // 80% of the other 100 from the fund.
    let zhang = env.bind(ZHANG_SAN).await;
    let uploaded = env.upload(&zhang, "R-ZHANG-1", &[(VIP_C, 1, "100.00"), (CT_B, 1, "300.00")]).await;
    let pre = env.pre_settle(&zhang, &uploaded).await;
    assert_eq!(pre.amounts, Some(amounts("400.00", "80.00", "120.00", "200.00")));
    let detail = pre.detail.unwrap();
    assert_eq!(
        (detail.uncovered, detail.in_scope, detail.deductible),
        (yuan("100.00"), yuan("300.00"), yuan("200.00"))
    );
    // Without the account (acctUsedFlag=0) the same bill is all cash past the fund.
    let mut no_account = pre_settle_request(&zhang, &uploaded);
    no_account.use_account = false;
    let pre = env.client.pre_settle(no_account).await.unwrap();
    assert_eq!(pre.amounts, Some(amounts("400.00", "80.00", "0.00", "320.00")));
}

#[tokio::test]
async fn refund_reverses_every_part_and_repeats_safely() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let (uploaded, settled) = env.checkout(&zhang, "REF-1", &[(EXAM_A, 1, "350.00")]).await;
    let paid = settled.amounts.unwrap();

    let request = RefundRequest {
        pay_ord_id: uploaded.pay_ord_id.clone(),
        pay_auth_no: zhang.pay_auth_no.clone(),
        app_refd_sn: "RFD-1".into(),
        at: Utc::now(),
        amounts: paid,
    };
    // Anything but every part, exactly, is refused.
    let partial = RefundRequest { amounts: amounts("95.00", "0.00", "0.00", "95.00"), ..request.clone() };
    assert_eq!(api_code(env.client.refund(partial).await.unwrap_err()), code::AMOUNT_MISMATCH);

    let refund = env.client.refund(request.clone()).await.unwrap();
    assert_eq!((refund.status, refund.refunded, refund.app_refd_sn.as_str()), (RefundStatus::Success, paid, "RFD-1"));
    assert!(refund.at.is_some());
    // Every part back: the account, the fund used this year, the deductible.
    assert_eq!(
        env.sandbox.person(ZHANG_SAN).unwrap().year,
        YearToDate { account_balance: yuan("120.00"), ..YearToDate::default() }
    );
    let order = env.client.query(OrderRef::new(&uploaded.pay_ord_id, &uploaded.pay_token, &zhang)).await.unwrap();
    assert_eq!(order.status, OrderStatus::Refunded);

    // The same refund again (a retry after a timeout, with a fresh time): the same answer,
    // nothing reversed twice.
    let again =
        env.client.refund(RefundRequest { at: Utc::now() + Duration::seconds(3), ..request.clone() }).await.unwrap();
    assert_eq!((again.status, again.refunded), (RefundStatus::Success, paid));
    assert_eq!(env.sandbox.person(ZHANG_SAN).unwrap().year.account_balance, yuan("120.00"));
    // The same number for something else, or a second refund of the order: refused.
    let conflict = RefundRequest { amounts: amounts("1.00", "0.00", "0.00", "1.00"), ..request.clone() };
    assert_eq!(api_code(env.client.refund(conflict).await.unwrap_err()), code::DUPLICATE_CONFLICT);
    let second = RefundRequest { app_refd_sn: "RFD-2".into(), ..request.clone() };
    assert_eq!(api_code(env.client.refund(second).await.unwrap_err()), code::ORDER_STATE);

    // The year is back as it was, so the same bill splits as the first time did.
    let (_, s) = env.checkout(&zhang, "REF-2", &[(EXAM_A, 1, "350.00")]).await;
    assert_eq!(s.amounts, Some(paid));

    // The day's list: two settlements and the refund.
    let today = Utc::now().with_timezone(&envelope::beijing()).date_naive();
    let list = env.client.settlement_list(today).await.unwrap();
    let kinds: Vec<(RecordKind, &str)> = list.iter().map(|r| (r.kind, r.med_org_ord.as_str())).collect();
    assert_eq!(
        kinds,
        [(RecordKind::Settlement, "REF-1"), (RecordKind::Refund, "REF-1"), (RecordKind::Settlement, "REF-2")]
    );
    assert_eq!(list[1].reference, "RFD-1");
    assert!(list.iter().all(|r| r.amounts == paid));
}

#[tokio::test]
async fn repeated_uploads_and_confirmations_are_idempotent() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let upload = fee_upload(&zhang, "IDEM-1", &[(EXAM_A, 1, "350.00")]);
    let first = env.client.upload_fees(upload.clone()).await.unwrap();
    let again = env.client.upload_fees(upload.clone()).await.unwrap();
    assert_eq!(first, again);
    // Same order number, another bill.
    let mut changed = upload.clone();
    changed.items[0].unit_price = yuan("300.00");
    changed.items[0].amount = yuan("300.00");
    assert_eq!(api_code(env.client.upload_fees(changed).await.unwrap_err()), code::DUPLICATE_CONFLICT);

    let pre = env.pre_settle(&zhang, &first).await;
    let confirm = confirm_request(&first, &pre);
    // The cash collected must be 6202's ownPayAmt.
    let short = ConfirmRequest { cash_amount: yuan("90.00"), ..confirm.clone() };
    assert_eq!(api_code(env.client.confirm(short).await.unwrap_err()), code::AMOUNT_MISMATCH);
    let settled = env.client.confirm(confirm.clone()).await.unwrap();
    let repeated = env.client.confirm(confirm.clone()).await.unwrap();
    assert_eq!((repeated.status, repeated.setl_id.clone()), (OrderStatus::Settled, settled.setl_id.clone()));
    // Applied once.
    assert_eq!(env.sandbox.person(ZHANG_SAN).unwrap().year.fund_paid, yuan("135.00"));
    // A different payment for a settled order is refused; so is pre-settling it again.
    let other = ConfirmRequest { cash_trade_no: Some("4200999".into()), ..confirm };
    assert_eq!(api_code(env.client.confirm(other).await.unwrap_err()), code::ORDER_STATE);
    assert_eq!(
        api_code(env.client.pre_settle(pre_settle_request(&zhang, &first)).await.unwrap_err()),
        code::ORDER_STATE
    );
    // A retried upload after settlement still names the same order.
    assert_eq!(env.client.upload_fees(upload).await.unwrap().pay_ord_id, first.pay_ord_id);
}

#[tokio::test]
async fn a_changed_year_refuses_confirmation_and_revoke_cancels() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let uploaded = env.upload(&zhang, "CHG-1", &[(EXAM_A, 1, "350.00")]).await;
    let pre = env.pre_settle(&zhang, &uploaded).await;
    // Another hospital settled in between: the deductible is used up.
    env.sandbox.set_year(
        ZHANG_SAN,
        YearToDate { account_balance: yuan("120.00"), fund_paid: Fen::ZERO, deductible_used: yuan("200.00") },
    );
    let err = env.client.confirm(confirm_request(&uploaded, &pre)).await.unwrap_err();
    assert_eq!(api_code(err), code::SPLIT_CHANGED);
    assert_eq!(env.sandbox.person(ZHANG_SAN).unwrap().year.fund_paid, Fen::ZERO, "nothing settled");
    // Pre-settle again and it goes through at the new figures.
    let pre = env.pre_settle(&zhang, &uploaded).await;
    assert_eq!(pre.amounts, Some(amounts("350.00", "315.00", "35.00", "0.00")));
    env.client.confirm(confirm_request(&uploaded, &pre)).await.unwrap();

    // 6401 cancels an order not settled; it cannot be confirmed afterwards.
    let uploaded = env.upload(&zhang, "CHG-2", &[(EXAM_A, 1, "20.00")]).await;
    let pre = env.pre_settle(&zhang, &uploaded).await;
    let order = OrderRef::new(&uploaded.pay_ord_id, &uploaded.pay_token, &zhang);
    env.client.revoke(order.clone()).await.unwrap();
    env.client.revoke(order.clone()).await.unwrap();
    assert_eq!(env.client.query(order.clone()).await.unwrap().status, OrderStatus::Revoked);
    assert_eq!(api_code(env.client.confirm(confirm_request(&uploaded, &pre)).await.unwrap_err()), code::ORDER_STATE);
    // A settled order is not revoked: it is refunded.
    let (done, _) = env.checkout(&zhang, "CHG-3", &[(EXAM_A, 1, "20.00")]).await;
    let err = env.client.revoke(OrderRef::new(&done.pay_ord_id, &done.pay_token, &zhang)).await.unwrap_err();
    assert_eq!(api_code(err), code::ORDER_STATE);
    // Confirming before pre-settling is refused too.
    let fresh = env.upload(&zhang, "CHG-4", &[(EXAM_A, 1, "20.00")]).await;
    let premature = ConfirmRequest {
        pay_ord_id: fresh.pay_ord_id,
        pay_token: fresh.pay_token,
        channel: CashChannel::None,
        cash_trade_no: None,
        cash_amount: Fen::ZERO,
    };
    assert_eq!(api_code(env.client.confirm(premature).await.unwrap_err()), code::ORDER_STATE);
}

#[tokio::test]
async fn bad_bills_are_refused_before_or_by_the_centre() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let mut upload = fee_upload(&zhang, "BAD-1", &[(EXAM_A, 2, "10.00")]);
    upload.items[0].amount = yuan("25.00");
    assert!(matches!(env.client.upload_fees(upload).await, Err(InsuranceError::InvalidRequest(_))));
    let empty = FeeUpload { items: vec![], ..fee_upload(&zhang, "BAD-2", &[(EXAM_A, 1, "1.00")]) };
    assert!(matches!(env.client.upload_fees(empty).await, Err(InsuranceError::InvalidRequest(_))));
    let bad_no = fee_upload(&zhang, "BAD 3 with spaces", &[(EXAM_A, 1, "1.00")]);
    assert!(matches!(env.client.upload_fees(bad_no).await, Err(InsuranceError::InvalidRequest(_))));
    // Someone else's identity with this payAuthNo.
    let mut impostor = zhang.clone();
    impostor.id_no = "440106199001019999".into();
    let err = env.client.upload_fees(fee_upload(&impostor, "BAD-4", &[(EXAM_A, 1, "1.00")])).await.unwrap_err();
    assert_eq!(api_code(err), code::PARAM_ERROR);
    let mut other_region = zhang.clone();
    other_region.region = "440300".into();
    let err = env.client.upload_fees(fee_upload(&other_region, "BAD-5", &[(EXAM_A, 1, "1.00")])).await.unwrap_err();
    assert_eq!(api_code(err), code::PARAM_ERROR);
    // Nothing was stored for the refused uploads.
    let unknown = OrderRef {
        pay_ord_id: "ORD404".into(),
        pay_token: "x".into(),
        id_type: "01".into(),
        id_no: "1".into(),
        name: "x".into(),
    };
    assert_eq!(api_code(env.client.query(unknown).await.unwrap_err()), code::ORDER_NOT_FOUND);
}

#[tokio::test]
async fn settlement_list_serves_planted_differences() {
    let env = start().await;
    let zhang = env.bind(ZHANG_SAN).await;
    let li = env.bind(LI_SI).await;
    let (a, sa) = env.checkout(&zhang, "LIST-1", &[(EXAM_A, 1, "350.00")]).await;
    let (b, _) = env.checkout(&li, "LIST-2", &[(EXAM_A, 1, "20.00")]).await;
    let today = Utc::now().with_timezone(&envelope::beijing()).date_naive();
    let clean = env.client.settlement_list(today).await.unwrap();
    assert_eq!(clean.len(), 2);
    assert_eq!(clean[0].amounts, sa.amounts.unwrap());
    assert_eq!(clean[0].reference, sa.setl_id.clone().unwrap());
    assert!(env.client.settlement_list(today - chrono::Days::new(1)).await.unwrap().is_empty());

    env.sandbox.plant(PlantedDifference::Missing { pay_ord_id: a.pay_ord_id.clone() });
    env.sandbox.plant(PlantedDifference::Amounts {
        pay_ord_id: b.pay_ord_id.clone(),
        amounts: amounts("20.00", "20.00", "0.00", "0.00"),
    });
    let phantom = SettlementRecord {
        kind: RecordKind::Settlement,
        pay_ord_id: "ORD-PHANTOM".into(),
        med_org_ord: "NEVER-MADE".into(),
        reference: "SETL-PHANTOM".into(),
        at: Utc::now(),
        amounts: amounts("8.00", "4.00", "0.00", "4.00"),
    };
    env.sandbox.plant(PlantedDifference::Extra(phantom.clone()));
    let planted = env.client.settlement_list(today).await.unwrap();
    assert!(planted.iter().all(|r| r.pay_ord_id != a.pay_ord_id));
    let b_row = planted.iter().find(|r| r.pay_ord_id == b.pay_ord_id).unwrap();
    assert_eq!(b_row.amounts, amounts("20.00", "20.00", "0.00", "0.00"));
    let extra = planted.iter().find(|r| r.pay_ord_id == "ORD-PHANTOM").unwrap();
    assert_eq!((extra.med_org_ord.as_str(), extra.amounts), ("NEVER-MADE", phantom.amounts));

    env.sandbox.clear_planted();
    assert_eq!(env.client.settlement_list(today).await.unwrap(), clean);
}

async fn post_raw(base: &str, route: &str, envelope: &Value) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new().post(format!("{base}{route}")).json(envelope).send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

fn user_query_data(env: &Env, psn_no: &str) -> Value {
    json!({"orgCodg": test_keys::ORG_CODG, "qrcode": env.sandbox.authorize(psn_no, None).unwrap()})
}

#[tokio::test]
async fn tampered_signatures_wrong_keys_and_stale_timestamps_are_refused() {
    let env = start().await;

    // A flipped byte in signData.
    let mut envelope = env.client.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    let sign = envelope["signData"].as_str().unwrap().to_string();
    let first = if sign.starts_with('A') { "B" } else { "A" };
    let flipped = format!("{first}{}", &sign[1..]);
    envelope["signData"] = flipped.into();
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &envelope).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::SIGN_ERROR);

    // encData swapped for another request's (each half genuine, not together).
    let mut mixed = env.client.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    let other = env.client.seal_request(&user_query_data(&env, LI_SI), Utc::now());
    mixed["encData"] = other["encData"].clone();
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &mixed).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::SIGN_ERROR);

    // Ten minutes old.
    let stale = env.client.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now() - Duration::minutes(10));
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &stale).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::TIMESTAMP_ERROR);

    // A channel key the platform does not know: the sandbox refuses (signed), nothing bound.
    let (impostor_key, _) = envelope::generate_key_pair();
    let impostor = InsuranceClient::new(InsuranceConfig {
        channel_private_key: SecretString::from(impostor_key),
        ..InsuranceConfig::with_test_keys(&env.base)
    })
    .unwrap();
    let code_for_impostor = env.sandbox.authorize(ZHANG_SAN, None).unwrap();
    let err = impostor.bind(BindRequest { auth_code: code_for_impostor.clone(), openid: None }).await.unwrap_err();
    assert_eq!(api_code(err), code::SIGN_ERROR);
    // The code was not consumed by the refused call.
    env.client.bind(BindRequest { auth_code: code_for_impostor, openid: None }).await.unwrap();

    // The wrong appSecret: the centre cannot decrypt, and its answer does not verify for us.
    // (Only the secret's first 16 bytes enter the SM4 key; the whole of it enters the
    // signature, so a secret wrong only further on fails as SIGN_ERROR instead.)
    let wrong_tail = InsuranceClient::new(InsuranceConfig {
        app_secret: SecretString::from("1HOSPSANDBOX0SECRET0000000000X99"),
        ..InsuranceConfig::with_test_keys(&env.base)
    })
    .unwrap();
    let sealed = wrong_tail.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &sealed).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::SIGN_ERROR);
    let wrong_secret = InsuranceClient::new(InsuranceConfig {
        app_secret: SecretString::from("2XOSPSANDBOX0SECRET0000000000S01"),
        ..InsuranceConfig::with_test_keys(&env.base)
    })
    .unwrap();
    let err = wrong_secret.bind(BindRequest { auth_code: "AC0".into(), openid: None }).await.unwrap_err();
    assert!(matches!(err, InsuranceError::Unverified { .. }), "{err:?}");
    let sealed = wrong_secret.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &sealed).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::DECRYPT_ERROR);

    // A centre signing with another key: every answer is refused as unverifiable.
    let (rogue_private, _) = envelope::generate_key_pair();
    let rogue = start_with(InsuranceSandboxConfig {
        platform_private_key: SecretString::from(rogue_private),
        ..InsuranceSandboxConfig::with_test_keys()
    })
    .await;
    let code = rogue.sandbox.authorize(ZHANG_SAN, None).unwrap();
    let err = env_client_for(&rogue.base).bind(BindRequest { auth_code: code, openid: None }).await.unwrap_err();
    assert!(matches!(err, InsuranceError::Unverified { status: 200, .. }), "{err:?}");

    // An unknown appId.
    let mut foreign = env.client.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    foreign["appId"] = "SOMEONEELSE00000000000000000000X".into();
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &foreign).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::APP_ID_UNKNOWN);
    // Not an envelope at all.
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &json!({"hello": 1})).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::APP_ID_UNKNOWN);
    // An answer that is not JSON is unverifiable, not a crash.
    assert!(matches!(
        env.client.open_answer(502, b"<html>bad gateway</html>"),
        Err(InsuranceError::Unverified { status: 502, .. })
    ));
}

fn env_client_for(base: &str) -> InsuranceClient {
    InsuranceClient::new(InsuranceConfig::with_test_keys(base)).unwrap()
}

#[test]
fn configuration_is_checked_and_secrets_stay_out_of_debug() {
    let good = InsuranceConfig::with_test_keys("http://127.0.0.1:1");
    assert!(InsuranceClient::new(good.clone()).is_ok());
    for broken in [
        InsuranceConfig { base_url: "ftp://x".into(), ..good.clone() },
        InsuranceConfig { app_id: "short".into(), ..good.clone() },
        InsuranceConfig { org_codg: " ".into(), ..good.clone() },
        InsuranceConfig { channel_private_key: SecretString::from("AAAA"), ..good.clone() },
        InsuranceConfig { platform_public_key: "not a key".into(), ..good.clone() },
    ] {
        assert!(matches!(InsuranceClient::new(broken), Err(InsuranceError::Config(_))));
    }
    let shown = format!("{good:?} {:?}", InsuranceClient::new(good.clone()).unwrap());
    assert!(!shown.contains(test_keys::APP_SECRET) && !shown.contains(test_keys::CHANNEL_PRIVATE_KEY));
    let sandbox = InsuranceSandboxConfig::with_test_keys();
    assert!(!format!("{sandbox:?}").contains(test_keys::PLATFORM_PRIVATE_KEY));
    // The published test key pairs belong together.
    let channel = envelope::parse_private_key(test_keys::CHANNEL_PRIVATE_KEY, envelope::STANDARD_USER_ID).unwrap();
    assert_eq!(envelope::public_key_base64(&channel), test_keys::CHANNEL_PUBLIC_KEY);
    let platform = envelope::parse_private_key(test_keys::PLATFORM_PRIVATE_KEY, envelope::STANDARD_USER_ID).unwrap();
    assert_eq!(envelope::public_key_base64(&platform), test_keys::PLATFORM_PUBLIC_KEY);
}

// ---- The independent cross-check: python gmssl -------------------------------------------

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/insurance/gmssl_check.py");

/// gmssl is installed by scripts/test.sh; under CI its absence fails the test instead of
/// skipping it, so a green run always means the cross-check ran.
fn have_gmssl() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import gmssl.sm2, gmssl.sm4"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    // A cross-check that did not run is not a pass: scripts/test.sh installs gmssl.
    assert!(ok, "python3 gmssl is missing: the independent SM2/SM3/SM4 check cannot run (scripts/test.sh installs it)");
    ok
}

fn gmssl(args: &[&str], input: &Value) -> Result<Value, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.json");
    std::fs::write(&file, input.to_string()).unwrap();
    let mut full = vec![SCRIPT, args[0], file.to_str().unwrap()];
    full.extend_from_slice(&args[1..]);
    let out = Command::new("python3").args(&full).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    if out.status.success() {
        Ok(serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("gmssl_check printed {stdout:?}: {e}")))
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn gmssl_open(envelope: &Value, peer_public: &str, uid: &str) -> Result<Value, String> {
    gmssl(
        &[
            "open",
            "--peer-public",
            peer_public,
            "--app-id",
            test_keys::APP_ID,
            "--app-secret",
            test_keys::APP_SECRET,
            "--uid",
            uid,
        ],
        envelope,
    )
}

fn gmssl_seal(data: &Value, private: &str, public: &str, fields: &Value) -> Value {
    let stamp = envelope::timestamp(Utc::now());
    let fields = fields.to_string();
    gmssl(
        &[
            "seal",
            "--private",
            private,
            "--public",
            public,
            "--app-id",
            test_keys::APP_ID,
            "--app-secret",
            test_keys::APP_SECRET,
            "--timestamp",
            &stamp,
            "--fields",
            &fields,
        ],
        data,
    )
    .unwrap()
}

#[test]
fn gmssl_verifies_and_decrypts_our_request_envelope() {
    if !have_gmssl() {
        return;
    }
    let client = env_client_for("http://127.0.0.1:1");
    let data = json!({
        "orgCodg": test_keys::ORG_CODG,
        "medOrgOrd": "EXAM20250101001",
        "userName": "张三",
        "medfeeSumamt": "350.00",
        "empty": "",
        "feedetailList": [{"feedetlSn": "1", "detItemFeeSumamt": "350.00", "cnt": "1", "pric": "350.00", "memo": null}],
    });
    let envelope = client.seal_request(&data, Utc::now());
    let opened = gmssl_open(&envelope, test_keys::CHANNEL_PUBLIC_KEY, envelope::STANDARD_USER_ID).unwrap();
    assert_eq!(opened["verified"], true);
    // gmssl's SM4 gives back our data (empties dropped, as signed).
    assert_eq!(opened["data"], envelope::clean(&data).unwrap());
    // gmssl's signing string is ours byte for byte.
    let mut fields = envelope.as_object().unwrap().clone();
    fields.remove("encData");
    fields.insert("data".into(), data.clone());
    assert_eq!(opened["signString"], envelope::sign_string(&fields, test_keys::APP_SECRET));

    // gmssl refuses a tampered envelope and the wrong key, so its yes above means something.
    let mut tampered = envelope.clone();
    tampered["timestamp"] = "20200101000000".into();
    assert!(gmssl_open(&tampered, test_keys::CHANNEL_PUBLIC_KEY, envelope::STANDARD_USER_ID).is_err());
    assert!(gmssl_open(&envelope, test_keys::PLATFORM_PUBLIC_KEY, envelope::STANDARD_USER_ID).is_err());

    // With the appSecret as the SM2 user id (the vendor SDK's choice) gmssl agrees as well.
    let client = InsuranceClient::new(InsuranceConfig {
        sm2_user_id: test_keys::APP_SECRET.into(),
        ..InsuranceConfig::with_test_keys("http://127.0.0.1:1")
    })
    .unwrap();
    let envelope = client.seal_request(&data, Utc::now());
    assert!(gmssl_open(&envelope, test_keys::CHANNEL_PUBLIC_KEY, test_keys::APP_SECRET).is_ok());
    assert!(gmssl_open(&envelope, test_keys::CHANNEL_PUBLIC_KEY, envelope::STANDARD_USER_ID).is_err());
}

#[tokio::test]
async fn gmssl_verifies_and_decrypts_our_sandbox_answers() {
    if !have_gmssl() {
        return;
    }
    let env = start().await;
    let sealed = env.client.seal_request(&user_query_data(&env, ZHANG_SAN), Utc::now());
    let (_, body) = post_raw(&env.base, path::USER_QUERY, &sealed).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    let opened = gmssl_open(&answer, test_keys::PLATFORM_PUBLIC_KEY, envelope::STANDARD_USER_ID).unwrap();
    assert_eq!((opened["fields"]["code"].as_i64(), opened["fields"]["success"].as_bool()), (Some(0), Some(true)));
    assert_eq!(opened["data"]["psnNo"], ZHANG_SAN);
    assert_eq!(opened["data"]["insutype"], "310");
    assert!(opened["data"]["payAuthNo"].as_str().unwrap().starts_with("AUTH"));
    // And a refusal (no data) verifies too.
    let (_, body) = post_raw(&env.base, path::USER_QUERY, &sealed).await;
    let refusal: Value = serde_json::from_slice(&body).unwrap();
    let opened = gmssl_open(&refusal, test_keys::PLATFORM_PUBLIC_KEY, envelope::STANDARD_USER_ID).unwrap();
    assert_eq!((opened["fields"]["code"].as_i64(), opened["data"].is_null()), (Some(code::AUTH_INVALID), true));
}

#[tokio::test]
async fn envelopes_built_by_gmssl_are_accepted_by_the_sandbox_and_the_client() {
    if !have_gmssl() {
        return;
    }
    let env = start().await;
    // A request signed by gmssl with the channel key: the sandbox binds the person.
    let data =
        json!({"orgCodg": test_keys::ORG_CODG, "qrcode": env.sandbox.authorize(WANG_WU, None).unwrap(), "openid": ""});
    let request = gmssl_seal(&data, test_keys::CHANNEL_PRIVATE_KEY, test_keys::CHANNEL_PUBLIC_KEY, &json!({}));
    assert!(request.get("data").is_none() && request["encData"].is_string());
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &request).await;
    let bound = env.client.open_answer(status, &body).unwrap();
    assert_eq!((bound["psnNo"].as_str(), bound["insuplcAdmdvs"].as_str()), (Some(WANG_WU), Some("440300")));
    // The same request signed with the platform's key instead is refused.
    let forged = gmssl_seal(
        &user_query_data(&env, WANG_WU),
        test_keys::PLATFORM_PRIVATE_KEY,
        test_keys::PLATFORM_PUBLIC_KEY,
        &json!({}),
    );
    let (status, body) = post_raw(&env.base, path::USER_QUERY, &forged).await;
    assert_eq!(api_code(env.client.open_answer(status, &body).unwrap_err()), code::SIGN_ERROR);

    // An answer built by gmssl with the platform key: our client opens it.
    let answer_data = json!({"payOrdId": "ORD1", "ordStas": "6", "feeSumamt": "350.00", "fundPay": "135.00",
                             "psnAcctPay": "120.00", "ownPayAmt": "95.00", "medOrgOrd": "甲-1"});
    let answer = gmssl_seal(
        &answer_data,
        test_keys::PLATFORM_PRIVATE_KEY,
        test_keys::PLATFORM_PUBLIC_KEY,
        &json!({"code": 0, "message": "success", "success": true}),
    );
    let opened = env.client.open_answer(200, answer.to_string().as_bytes()).unwrap();
    assert_eq!(opened, answer_data);
    let settlement = client::settlement(&opened, "ORD1").unwrap();
    assert_eq!(settlement.amounts, Some(amounts("350.00", "135.00", "120.00", "95.00")));
    // A refusal built by gmssl.
    let refusal = gmssl_seal(
        &Value::Null,
        test_keys::PLATFORM_PRIVATE_KEY,
        test_keys::PLATFORM_PUBLIC_KEY,
        &json!({"code": code::ORDER_STATE, "message": "订单已结算", "success": false}),
    );
    let err = env.client.open_answer(200, refusal.to_string().as_bytes()).unwrap_err();
    assert!(matches!(err, InsuranceError::Api { code: code::ORDER_STATE, ref message } if message == "订单已结算"));
    // And one signed by the channel key posing as the platform is not trusted.
    let fake =
        gmssl_seal(&answer_data, test_keys::CHANNEL_PRIVATE_KEY, test_keys::CHANNEL_PUBLIC_KEY, &json!({"code": 0}));
    assert!(matches!(env.client.open_answer(200, fake.to_string().as_bytes()), Err(InsuranceError::Unverified { .. })));

    // Our own Sealer, playing the platform, agrees with gmssl's sealing of the same answer:
    // both open to the same data under the same keys.
    let ours = Sealer::new(
        test_keys::APP_ID,
        test_keys::APP_SECRET,
        test_keys::PLATFORM_PRIVATE_KEY,
        test_keys::CHANNEL_PUBLIC_KEY,
        envelope::STANDARD_USER_ID,
    )
    .unwrap();
    let mut fields = serde_json::Map::new();
    fields.insert("code".into(), 0.into());
    let sealed_by_us = ours.seal(Some(&answer_data), fields, &envelope::timestamp(Utc::now()));
    assert_eq!(sealed_by_us["encData"], answer["encData"], "SM4-ECB is deterministic: the same ciphertext");
}
