//! `InsuranceClient`: calls the medical insurance mobile-payment platform, sealing every
//! request (SM4 + SM3withSM2 with the channel key) and refusing every answer the platform key
//! did not sign.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use hospital_domain::Fen;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::envelope::{self, Sealer};
use super::yuan::{to_yuan, yuan_field};
use super::{
    code, path, BindRequest, CashChannel, ConfirmRequest, FeeUpload, FeeUploadResult, Insurance, InsuranceError,
    InsuredIdentity, InsuredType, OrderRef, OrderStatus, PreSettleRequest, PreSettlementDetail, RecordKind,
    RefundRequest, RefundResult, RefundStatus, Settlement, SettlementRecord, SplitAmounts,
};
use crate::BoxFuture;

const USER_AGENT: &str = concat!("hospital-integrations/", env!("CARGO_PKG_VERSION"), " (insurance)");
/// Answers stamped further than this from our clock are refused (replays, broken clocks).
pub(super) const TIMESTAMP_WINDOW: chrono::Duration = chrono::Duration::minutes(5);

fn default_user_id() -> String {
    envelope::STANDARD_USER_ID.to_string()
}

/// The channel's credentials from the insurance platform (移动支付 channel registration).
#[derive(Clone, Deserialize)]
pub struct InsuranceConfig {
    /// The platform's base URL; the sandbox's in sandbox mode.
    pub base_url: String,
    /// 渠道 appId (at least 16 characters: its first 16 seed the SM4 key).
    pub app_id: String,
    pub app_secret: SecretString,
    /// The channel's SM2 private key, base64 of the 32-byte scalar (or 64 hex characters).
    pub channel_private_key: SecretString,
    /// The platform's SM2 public key, base64 of `04‖X‖Y` (or hex).
    pub platform_public_key: String,
    /// 定点医药机构编码 (orgCodg).
    pub org_codg: String,
    /// The SM2 distinguishing identifier; GM/T 0009's default unless the centre says otherwise.
    #[serde(default = "default_user_id")]
    pub sm2_user_id: String,
}

impl fmt::Debug for InsuranceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsuranceConfig")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .field("app_secret", &"[REDACTED]")
            .field("channel_private_key", &"[REDACTED]")
            .field("org_codg", &self.org_codg)
            .field("sm2_user_id", &self.sm2_user_id)
            .finish_non_exhaustive()
    }
}

#[cfg(any(test, feature = "sandbox"))]
impl InsuranceConfig {
    /// The client half of [`super::test_keys`], pointed at `base_url` (a sandbox).
    pub fn with_test_keys(base_url: &str) -> Self {
        use super::test_keys as k;
        Self {
            base_url: base_url.into(),
            app_id: k::APP_ID.into(),
            app_secret: SecretString::from(k::APP_SECRET),
            channel_private_key: SecretString::from(k::CHANNEL_PRIVATE_KEY),
            platform_public_key: k::PLATFORM_PUBLIC_KEY.into(),
            org_codg: k::ORG_CODG.into(),
            sm2_user_id: default_user_id(),
        }
    }
}

#[derive(Clone)]
pub struct InsuranceClient {
    base_url: String,
    org_codg: String,
    sealer: Arc<Sealer>,
    http: reqwest::Client,
}

impl fmt::Debug for InsuranceClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsuranceClient")
            .field("base_url", &self.base_url)
            .field("org_codg", &self.org_codg)
            .field("app_id", &self.sealer.app_id())
            .finish_non_exhaustive()
    }
}

/// Shape errors of a verified answer.
type Shape<T> = Result<T, String>;

pub(super) fn text(data: &Value, name: &str) -> Shape<String> {
    opt_text(data, name).ok_or_else(|| format!("{name} is missing"))
}

pub(super) fn opt_text(data: &Value, name: &str) -> Option<String> {
    match data.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn amount(data: &Value, name: &str) -> Shape<Fen> {
    yuan_field(data.get(name)).ok_or_else(|| format!("{name} is not an amount in yuan"))
}

/// `yyyyMMddHHmmss` or `yyyy-MM-dd HH:mm:ss`, Beijing time.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    envelope::parse_timestamp(text).or_else(|| {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").ok()?;
        envelope::beijing().from_local_datetime(&naive).single().map(|t| t.with_timezone(&Utc))
    })
}

/// `yyyy-MM-dd HH:mm:ss` Beijing time: the form of the business time fields.
pub(super) fn format_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&envelope::beijing()).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn split(data: &Value, total: &str, fund: &str, account: &str, cash: &str) -> Shape<SplitAmounts> {
    let amounts = SplitAmounts {
        total: amount(data, total)?,
        fund: amount(data, fund)?,
        account: amount(data, account)?,
        cash: amount(data, cash)?,
    };
    let sum = amounts.fund.get().checked_add(amounts.account.get()).and_then(|s| s.checked_add(amounts.cash.get()));
    if sum != Some(amounts.total.get()) {
        return Err(format!("{fund} + {account} + {cash} != {total}"));
    }
    Ok(amounts)
}

/// A 6202 / confirmation / 6301 answer.
pub(super) fn settlement(data: &Value, expected_pay_ord_id: &str) -> Shape<Settlement> {
    let pay_ord_id = text(data, "payOrdId")?;
    if pay_ord_id != expected_pay_ord_id {
        return Err(format!("payOrdId {pay_ord_id} is not the order asked about"));
    }
    let status = OrderStatus::from_code(&text(data, "ordStas")?);
    let amounts = if data.get("feeSumamt").is_some() {
        Some(split(data, "feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt")?)
    } else if status.is_settled() || status == OrderStatus::PreSettled {
        return Err("a settled order's answer carries no amounts".into());
    } else {
        None
    };
    let detail = match data.pointer("/extData/preSetl") {
        Some(pre) => Some(PreSettlementDetail {
            uncovered: amount(pre, "fulamt_ownpay_amt")?,
            in_scope: amount(pre, "inscp_scp_amt")?,
            deductible: amount(pre, "act_pay_dedc")?,
            account_balance_after: amount(pre, "balc")?,
        }),
        None => None,
    };
    let settled_at = match opt_text(data, "setlTime") {
        Some(t) => Some(parse_time(&t).ok_or_else(|| format!("setlTime {t:?} is not a time"))?),
        None => None,
    };
    Ok(Settlement {
        pay_ord_id,
        status,
        med_org_ord: opt_text(data, "medOrgOrd"),
        amounts,
        detail,
        setl_id: opt_text(data, "setlId"),
        settled_at,
    })
}

fn check_no(value: &str, what: &str, max: usize) -> Result<(), InsuranceError> {
    let ok = (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    ok.then_some(())
        .ok_or_else(|| InsuranceError::InvalidRequest(format!("{what} {value:?}: 1-{max} of [0-9A-Za-z_-]")))
}

fn required(value: &str, what: &str) -> Result<(), InsuranceError> {
    if value.trim().is_empty() {
        return Err(InsuranceError::InvalidRequest(format!("{what} is empty")));
    }
    Ok(())
}

fn flag(on: bool) -> &'static str {
    if on {
        "1"
    } else {
        "0"
    }
}

impl InsuranceClient {
    pub fn new(config: InsuranceConfig) -> Result<Self, InsuranceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| InsuranceError::Config(format!("HTTP client: {e}")))?;
        Self::with_http_client(config, http)
    }

    pub fn with_http_client(config: InsuranceConfig, http: reqwest::Client) -> Result<Self, InsuranceError> {
        let cfg = |m: String| InsuranceError::Config(m);
        if config.org_codg.trim().is_empty() {
            return Err(cfg("org_codg is empty".into()));
        }
        let sealer = Sealer::new(
            &config.app_id,
            config.app_secret.expose_secret(),
            config.channel_private_key.expose_secret(),
            &config.platform_public_key,
            &config.sm2_user_id,
        )
        .map_err(|e| cfg(e.to_string()))?;
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let base = url::Url::parse(&base_url).map_err(|e| cfg(format!("base_url {:?}: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.query().is_some() {
            return Err(cfg(format!("base_url {:?} must be http(s) without a query", config.base_url)));
        }
        Ok(Self { base_url, org_codg: config.org_codg, sealer: Arc::new(sealer), http })
    }

    /// The envelope a request with this business data goes out in (public for the
    /// independent cross-checks).
    pub fn seal_request(&self, data: &Value, at: DateTime<Utc>) -> Value {
        self.sealer.seal(Some(data), Map::new(), &envelope::timestamp(at))
    }

    /// Verifies and opens an answer: the business data of a success, `Api` for a refusal.
    pub fn open_answer(&self, status: u16, body: &[u8]) -> Result<Value, InsuranceError> {
        let unverified = |reason: String| InsuranceError::Unverified { status, reason };
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| unverified(format!("not a JSON envelope ({e}): {}", String::from_utf8_lossy(body))))?;
        let opened = self.sealer.open(&value).map_err(|e| unverified(e.to_string()))?;
        let stamp = opened.field_str("timestamp").unwrap_or_default();
        envelope::check_timestamp(stamp, Utc::now(), TIMESTAMP_WINDOW).map_err(|e| unverified(e.to_string()))?;
        let answer_code = match opened.fields.get("code") {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| InsuranceError::UnexpectedResponse { status, detail: "the answer has no code".into() })?;
        if answer_code != code::OK {
            let message = opened.field_str("message").unwrap_or_default().to_string();
            return Err(InsuranceError::Api { code: answer_code, message });
        }
        opened
            .data
            .filter(Value::is_object)
            .ok_or_else(|| InsuranceError::UnexpectedResponse { status, detail: "a success without data".into() })
    }

    /// Seals `data`, POSTs it to `path` and opens the answer: `(HTTP status, business data)`.
    async fn call(&self, path: &str, mut data: Value) -> Result<(u16, Value), InsuranceError> {
        data["orgCodg"] = Value::String(self.org_codg.clone());
        let envelope = self.seal_request(&data, Utc::now());
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .json(&envelope)
            .send()
            .await
            .map_err(InsuranceError::Transport)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(InsuranceError::Transport)?;
        let answer = self.open_answer(status, &body);
        match &answer {
            Ok(_) => tracing::debug!(path, status, "insurance platform answered"),
            Err(e) => tracing::warn!(path, status, error = %e, "insurance platform call failed"),
        }
        answer.map(|data| (status, data))
    }

    async fn bind_inner(&self, req: BindRequest) -> Result<InsuredIdentity, InsuranceError> {
        required(&req.auth_code, "auth_code")?;
        let (status, data) = self
            .call(path::USER_QUERY, json!({"qrcode": req.auth_code, "openid": req.openid.unwrap_or_default()}))
            .await?;
        let parse = || -> Shape<InsuredIdentity> {
            let insutype = text(&data, "insutype")?;
            let expire = text(&data, "expireTime")?;
            Ok(InsuredIdentity {
                pay_auth_no: text(&data, "payAuthNo")?,
                psn_no: text(&data, "psnNo")?,
                name: text(&data, "userName")?,
                id_type: text(&data, "idType")?,
                id_no: text(&data, "idNo")?,
                insured_type: InsuredType::from_insutype(&insutype)
                    .ok_or_else(|| format!("insutype {insutype:?} is neither 310 (职工) nor 390 (居民)"))?,
                region: text(&data, "insuplcAdmdvs")?,
                expires_at: parse_time(&expire).ok_or_else(|| format!("expireTime {expire:?} is not a time"))?,
            })
        };
        parse().map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    async fn upload_inner(&self, req: FeeUpload) -> Result<FeeUploadResult, InsuranceError> {
        check_no(&req.med_org_ord, "med_org_ord", 40)?;
        check_no(&req.charge_batch, "charge_batch", 30)?;
        for (value, what) in [
            (&req.identity.pay_auth_no, "pay_auth_no"),
            (&req.med_type, "med_type"),
            (&req.dept_code, "dept_code"),
            (&req.dept_name, "dept_name"),
            (&req.caty, "caty"),
        ] {
            required(value, what)?;
        }
        if req.items.is_empty() {
            return Err(InsuranceError::InvalidRequest("a fee upload needs at least one item".into()));
        }
        let mut total = 0u64;
        let mut details = Vec::with_capacity(req.items.len());
        for item in &req.items {
            check_no(&item.feedetl_sn, "feedetl_sn", 30)?;
            required(&item.med_list_codg, "med_list_codg")?;
            if Some(item.amount.get()) != item.unit_price.get().checked_mul(u64::from(item.count)) || item.count == 0 {
                return Err(InsuranceError::InvalidRequest(format!(
                    "item {}: amount {} is not {} × {}",
                    item.feedetl_sn, item.amount, item.count, item.unit_price
                )));
            }
            total += item.amount.get();
            details.push(json!({
                "feedetlSn": item.feedetl_sn,
                "medListCodg": item.med_list_codg,
                "medinsListCodg": item.medins_list_codg,
                "detItemFeeSumamt": to_yuan(item.amount),
                "cnt": item.count.to_string(),
                "pric": to_yuan(item.unit_price),
                "chrgBchno": req.charge_batch,
                "feeOcurTime": format_time(req.begin),
            }));
        }
        if total > Fen::MAX_ACCEPTED.get() {
            return Err(InsuranceError::InvalidRequest(format!(
                "the bill {} is over the accepted maximum",
                Fen::new(total)
            )));
        }
        let id = &req.identity;
        let data = json!({
            "payAuthNo": id.pay_auth_no,
            "psnNo": id.psn_no,
            "insutype": id.insured_type.insutype(),
            "insuplcAdmdvs": id.region,
            "insuCode": id.region,
            "idNo": id.id_no,
            "userName": id.name,
            "idType": id.id_type,
            "medOrgOrd": req.med_org_ord,
            "iptOtpNo": req.med_org_ord,
            "begntime": format_time(req.begin),
            "deptCode": req.dept_code,
            "deptName": req.dept_name,
            "caty": req.caty,
            "medType": req.med_type,
            "feeType": "01",
            "psnSetlway": "01",
            "mdtrtCertType": "01",
            "pubHospRfomFlag": "1",
            "chrgBchno": req.charge_batch,
            "acctUsedFlag": flag(req.use_account),
            "medfeeSumamt": to_yuan(Fen::new(total)),
            "feedetailList": details,
        });
        let (status, answer) = self.call(path::UPLOAD_FEES, data).await?;
        let parse = || -> Shape<FeeUploadResult> {
            let med_org_ord = opt_text(&answer, "medOrgOrd").unwrap_or_else(|| req.med_org_ord.clone());
            if med_org_ord != req.med_org_ord {
                return Err(format!("medOrgOrd {med_org_ord} is not the order uploaded"));
            }
            Ok(FeeUploadResult {
                pay_ord_id: text(&answer, "payOrdId")?,
                pay_token: text(&answer, "payToken")?,
                mdtrt_id: text(&answer, "mdtrtId")?,
                med_org_ord,
                total: Fen::new(total),
            })
        };
        parse().map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    async fn pre_settle_inner(&self, req: PreSettleRequest) -> Result<Settlement, InsuranceError> {
        for (value, what) in [
            (&req.pay_auth_no, "pay_auth_no"),
            (&req.pay_ord_id, "pay_ord_id"),
            (&req.pay_token, "pay_token"),
            (&req.mdtrt_id, "mdtrt_id"),
            (&req.org_biz_ser, "org_biz_ser"),
        ] {
            required(value, what)?;
        }
        let data = json!({
            "payAuthNo": req.pay_auth_no,
            "payOrdId": req.pay_ord_id,
            "payToken": req.pay_token,
            "mdtrtId": req.mdtrt_id,
            "orgBizSer": req.org_biz_ser,
            "chrgBchno": req.charge_batch,
            "feeType": "01",
            "acctUsedFlag": flag(req.use_account),
        });
        let (status, answer) = self.call(path::PAY_ORDER, data).await?;
        settlement(&answer, &req.pay_ord_id).map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    async fn confirm_inner(&self, req: ConfirmRequest) -> Result<Settlement, InsuranceError> {
        required(&req.pay_ord_id, "pay_ord_id")?;
        required(&req.pay_token, "pay_token")?;
        match (req.channel, &req.cash_trade_no) {
            (CashChannel::None, None) if req.cash_amount == Fen::ZERO => {}
            (CashChannel::None, _) => {
                return Err(InsuranceError::InvalidRequest(
                    "no cash channel: no trade number and nothing collected".into(),
                ))
            }
            (_, Some(no)) if !no.trim().is_empty() => {}
            _ => return Err(InsuranceError::InvalidRequest("the cash payment's trade number is missing".into())),
        }
        let data = json!({
            "payOrdId": req.pay_ord_id,
            "payToken": req.pay_token,
            "cashChnl": req.channel.wire(),
            "cashTradeNo": req.cash_trade_no.unwrap_or_default(),
            "ownPayAmt": to_yuan(req.cash_amount),
        });
        let (status, answer) = self.call(path::CONFIRM, data).await?;
        settlement(&answer, &req.pay_ord_id).map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    fn order_ref_data(req: &OrderRef) -> Result<Value, InsuranceError> {
        for (value, what) in
            [(&req.pay_ord_id, "pay_ord_id"), (&req.pay_token, "pay_token"), (&req.id_no, "id_no"), (&req.name, "name")]
        {
            required(value, what)?;
        }
        Ok(json!({
            "payOrdId": req.pay_ord_id,
            "payToken": req.pay_token,
            "idNo": req.id_no,
            "userName": req.name,
            "idType": req.id_type,
        }))
    }

    async fn query_inner(&self, req: OrderRef) -> Result<Settlement, InsuranceError> {
        let (status, answer) = self.call(path::QUERY, Self::order_ref_data(&req)?).await?;
        settlement(&answer, &req.pay_ord_id).map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    async fn revoke_inner(&self, req: OrderRef) -> Result<(), InsuranceError> {
        let (status, answer) = self.call(path::REVOKE, Self::order_ref_data(&req)?).await?;
        match answer.get("success") {
            Some(Value::Bool(true)) => Ok(()),
            _ => {
                Err(InsuranceError::UnexpectedResponse { status, detail: "6401 answered without success=true".into() })
            }
        }
    }

    async fn refund_inner(&self, req: RefundRequest) -> Result<RefundResult, InsuranceError> {
        required(&req.pay_ord_id, "pay_ord_id")?;
        required(&req.pay_auth_no, "pay_auth_no")?;
        check_no(&req.app_refd_sn, "app_refd_sn", 40)?;
        let a = req.amounts;
        if a.fund.get() + a.account.get() + a.cash.get() != a.total.get() {
            return Err(InsuranceError::InvalidRequest("refund parts do not add up to the total".into()));
        }
        let data = json!({
            "payOrdId": req.pay_ord_id,
            "payAuthNo": req.pay_auth_no,
            "appRefdSn": req.app_refd_sn,
            "appRefdTime": envelope::timestamp(req.at),
            "totlRefdAmt": to_yuan(a.total),
            "fundRefdAmt": to_yuan(a.fund),
            "psnAcctRefdAmt": to_yuan(a.account),
            "cashRefdAmt": to_yuan(a.cash),
            "refdType": "ALL",
        });
        let (status, answer) = self.call(path::REFUND, data).await?;
        let parse = || -> Shape<RefundResult> {
            let sn = text(&answer, "appRefdSn")?;
            if sn != req.app_refd_sn {
                return Err(format!("appRefdSn {sn} is not the refund asked for"));
            }
            let refund_status = match text(&answer, "refStatus")?.as_str() {
                "SUCC" => RefundStatus::Success,
                "FAIL" => RefundStatus::Failed,
                "EXP" => RefundStatus::Abnormal,
                other => return Err(format!("refStatus {other:?} is not SUCC, FAIL or EXP")),
            };
            Ok(RefundResult {
                pay_ord_id: opt_text(&answer, "payOrdId").unwrap_or_else(|| req.pay_ord_id.clone()),
                app_refd_sn: sn,
                status: refund_status,
                refunded: split(&answer, "totlRefdAmt", "fundRefdAmt", "psnAcctRefdAmt", "cashRefdAmt")?,
                at: opt_text(&answer, "trxTime").and_then(|t| parse_time(&t)),
            })
        };
        parse().map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }

    async fn list_inner(&self, date: NaiveDate) -> Result<Vec<SettlementRecord>, InsuranceError> {
        let (status, answer) =
            self.call(path::SETTLEMENT_LIST, json!({"setlDate": date.format("%Y%m%d").to_string()})).await?;
        let parse = || -> Shape<Vec<SettlementRecord>> {
            let records = match answer.get("records") {
                None => return Ok(Vec::new()),
                Some(Value::Array(records)) => records,
                Some(_) => return Err("records is not a list".into()),
            };
            records
                .iter()
                .map(|r| {
                    let kind = match text(r, "recType")?.as_str() {
                        "SETL" => RecordKind::Settlement,
                        "REFD" => RecordKind::Refund,
                        other => return Err(format!("recType {other:?} is not SETL or REFD")),
                    };
                    let at = text(r, "trxTime")?;
                    Ok(SettlementRecord {
                        kind,
                        pay_ord_id: text(r, "payOrdId")?,
                        med_org_ord: text(r, "medOrgOrd")?,
                        reference: text(r, "refNo")?,
                        at: parse_time(&at).ok_or_else(|| format!("trxTime {at:?} is not a time"))?,
                        amounts: split(r, "feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt")?,
                    })
                })
                .collect()
        };
        parse().map_err(|detail| InsuranceError::UnexpectedResponse { status, detail })
    }
}

impl Insurance for InsuranceClient {
    fn bind(&self, req: BindRequest) -> BoxFuture<'_, Result<InsuredIdentity, InsuranceError>> {
        Box::pin(self.bind_inner(req))
    }

    fn unbind<'a>(&'a self, pay_auth_no: &'a str) -> BoxFuture<'a, Result<(), InsuranceError>> {
        Box::pin(async move {
            required(pay_auth_no, "pay_auth_no")?;
            self.call(path::AUTH_REVOKE, json!({"payAuthNo": pay_auth_no})).await.map(|_| ())
        })
    }

    fn upload_fees(&self, req: FeeUpload) -> BoxFuture<'_, Result<FeeUploadResult, InsuranceError>> {
        Box::pin(self.upload_inner(req))
    }

    fn pre_settle(&self, req: PreSettleRequest) -> BoxFuture<'_, Result<Settlement, InsuranceError>> {
        Box::pin(self.pre_settle_inner(req))
    }

    fn confirm(&self, req: ConfirmRequest) -> BoxFuture<'_, Result<Settlement, InsuranceError>> {
        Box::pin(self.confirm_inner(req))
    }

    fn query(&self, req: OrderRef) -> BoxFuture<'_, Result<Settlement, InsuranceError>> {
        Box::pin(self.query_inner(req))
    }

    fn revoke(&self, req: OrderRef) -> BoxFuture<'_, Result<(), InsuranceError>> {
        Box::pin(self.revoke_inner(req))
    }

    fn refund(&self, req: RefundRequest) -> BoxFuture<'_, Result<RefundResult, InsuranceError>> {
        Box::pin(self.refund_inner(req))
    }

    fn settlement_list(&self, date: NaiveDate) -> BoxFuture<'_, Result<Vec<SettlementRecord>, InsuranceError>> {
        Box::pin(self.list_inner(date))
    }
}
