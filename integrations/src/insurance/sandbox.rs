//! `InsuranceSandbox`: a local insurance centre speaking the mobile-payment protocol. It
//! decrypts and verifies every request with the channel's key (refusing bad signatures, wrong
//! keys and stale timestamps), keeps authorisations, orders and refunds in memory, splits bills
//! by the rules of [`super::rules`], and answers signed with its own platform key and encrypted.
//! Tests drive the patient's side (`authorize`) and plant differences in the settlement list.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use hospital_domain::Fen;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::client::{format_time, opt_text, parse_time, text, TIMESTAMP_WINDOW};
use super::envelope::{self, canonical_json, EnvelopeError, Sealer};
use super::rules::{compute_split, ItemClass, Rules, SandboxPerson, Split, YearToDate};
use super::yuan::{to_yuan, yuan_field};
use super::{code, path, CashChannel, InsuranceError, OrderStatus, RecordKind, SettlementRecord, SplitAmounts};

/// How long a payAuthNo stays usable unless configured otherwise.
pub const DEFAULT_AUTH_LIFETIME: Duration = Duration::hours(2);
/// An unused authCode lapses after this.
const AUTH_CODE_LIFETIME: Duration = Duration::minutes(5);

/// What the sandbox plays the platform with. The channel half must match the client's
/// configuration; the platform key is the sandbox's own.
#[derive(Clone)]
pub struct InsuranceSandboxConfig {
    pub app_id: String,
    pub app_secret: SecretString,
    /// Signs answers.
    pub platform_private_key: SecretString,
    /// Verifies requests.
    pub channel_public_key: String,
    /// The one hospital (orgCodg) this sandbox serves.
    pub org_codg: String,
    pub sm2_user_id: String,
    pub rules: Rules,
    pub auth_lifetime: Duration,
}

impl fmt::Debug for InsuranceSandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsuranceSandboxConfig")
            .field("app_id", &self.app_id)
            .field("org_codg", &self.org_codg)
            .field("sm2_user_id", &self.sm2_user_id)
            .finish_non_exhaustive()
    }
}

impl InsuranceSandboxConfig {
    /// The platform half of [`super::test_keys`] with the shipped rules.
    pub fn with_test_keys() -> Self {
        use super::test_keys as k;
        Self {
            app_id: k::APP_ID.into(),
            app_secret: SecretString::from(k::APP_SECRET),
            platform_private_key: SecretString::from(k::PLATFORM_PRIVATE_KEY),
            channel_public_key: k::CHANNEL_PUBLIC_KEY.into(),
            org_codg: k::ORG_CODG.into(),
            sm2_user_id: envelope::STANDARD_USER_ID.into(),
            rules: Rules::default_rules(),
            auth_lifetime: DEFAULT_AUTH_LIFETIME,
        }
    }
}

/// A difference planted in the settlement list, for reconciliation tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlantedDifference {
    /// The list leaves out this order's settlement.
    Missing { pay_ord_id: String },
    /// The list has a settlement the hospital never made.
    Extra(SettlementRecord),
    /// The list shows this order's settlement with other amounts.
    Amounts { pay_ord_id: String, amounts: SplitAmounts },
}

/// An order as the sandbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxOrder {
    pub pay_ord_id: String,
    pub pay_token: String,
    pub mdtrt_id: String,
    pub med_org_ord: String,
    pub psn_no: String,
    pub pay_auth_no: String,
    pub items: Vec<(ItemClass, Fen)>,
    pub total: Fen,
    pub use_account: bool,
    #[serde(skip)]
    pub status: OrderStatus,
    /// 6202's split.
    pub pre_split: Option<Split>,
    /// The split committed by the confirmation.
    pub settled: Option<Split>,
    pub setl_id: Option<String>,
    pub settled_at: Option<DateTime<Utc>>,
    pub cash_channel: Option<CashChannel>,
    pub cash_trade_no: Option<String>,
    pub refund_sn: Option<String>,
    /// Canonical 6201 data: a retry must match it.
    #[serde(skip)]
    upload_fingerprint: String,
}

struct AuthCode {
    psn_no: String,
    openid: Option<String>,
    expires: DateTime<Utc>,
}

struct Authorization {
    psn_no: String,
    expires: DateTime<Utc>,
    revoked: bool,
}

struct StoredRefund {
    fingerprint: String,
    answer: Value,
}

struct SandboxState {
    persons: HashMap<String, SandboxPerson>,
    auth_codes: HashMap<String, AuthCode>,
    authorizations: HashMap<String, Authorization>,
    orders: HashMap<String, SandboxOrder>,
    by_med_org_ord: HashMap<String, String>,
    refunds: HashMap<String, StoredRefund>,
    ledger: Vec<SettlementRecord>,
    planted: Vec<PlantedDifference>,
    seq: u64,
}

struct Inner {
    sealer: Sealer,
    org_codg: String,
    rules: Rules,
    auth_lifetime: Duration,
    state: Mutex<SandboxState>,
}

/// The sandbox's shared state; clones share it.
#[derive(Clone)]
pub struct InsuranceSandbox {
    inner: Arc<Inner>,
}

impl fmt::Debug for InsuranceSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsuranceSandbox").field("app_id", &self.inner.sealer.app_id()).finish_non_exhaustive()
    }
}

/// A refusal: the code and message go back signed, with no data.
#[derive(Debug)]
struct Refusal {
    code: i64,
    message: String,
}

fn refuse(code: i64, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

fn param(message: impl Into<String>) -> Refusal {
    refuse(code::PARAM_ERROR, message)
}

fn field(data: &Value, name: &str) -> Result<String, Refusal> {
    text(data, name).map_err(|_| param(format!("{name} 必填")))
}

fn yuan(data: &Value, name: &str) -> Result<Fen, Refusal> {
    yuan_field(data.get(name)).ok_or_else(|| param(format!("{name} 须为以元为单位、至多两位小数的金额")))
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

fn split_amounts(split: &Split) -> SplitAmounts {
    SplitAmounts { total: split.total, fund: split.fund, account: split.account, cash: split.cash }
}

fn amounts_json(data: &mut Map<String, Value>, a: &SplitAmounts) {
    data.insert("feeSumamt".into(), to_yuan(a.total).into());
    data.insert("fundPay".into(), to_yuan(a.fund).into());
    data.insert("psnAcctPay".into(), to_yuan(a.account).into());
    data.insert("ownPayAmt".into(), to_yuan(a.cash).into());
}

fn account_flag(data: &Value) -> Result<bool, Refusal> {
    match opt_text(data, "acctUsedFlag").as_deref() {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(param(format!("acctUsedFlag {other:?} 须为 0 或 1"))),
    }
}

impl InsuranceSandbox {
    pub fn new(config: InsuranceSandboxConfig) -> Result<Self, InsuranceError> {
        let sealer = Sealer::new(
            &config.app_id,
            config.app_secret.expose_secret(),
            config.platform_private_key.expose_secret(),
            &config.channel_public_key,
            &config.sm2_user_id,
        )
        .map_err(|e| InsuranceError::Config(e.to_string()))?;
        let persons = config.rules.persons.iter().map(|p| (p.psn_no.clone(), p.clone())).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                sealer,
                org_codg: config.org_codg,
                rules: config.rules,
                auth_lifetime: config.auth_lifetime,
                state: Mutex::new(SandboxState {
                    persons,
                    auth_codes: HashMap::new(),
                    authorizations: HashMap::new(),
                    orders: HashMap::new(),
                    by_med_org_ord: HashMap::new(),
                    refunds: HashMap::new(),
                    ledger: Vec::new(),
                    planted: Vec::new(),
                    seq: 0,
                }),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // A panic while holding the lock leaves nothing half-written that matters here.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plays the patient authorising in the 医保电子凭证 mini-program: an authCode for this
    /// person (single use, 5 minutes), bound to `openid` when given.
    pub fn authorize(&self, psn_no: &str, openid: Option<&str>) -> Option<String> {
        let mut state = self.state();
        state.persons.get(psn_no)?;
        let code = format!("AC{}", random_hex(16));
        state.auth_codes.insert(
            code.clone(),
            AuthCode {
                psn_no: psn_no.into(),
                openid: openid.map(str::to_string),
                expires: Utc::now() + AUTH_CODE_LIFETIME,
            },
        );
        Some(code)
    }

    pub fn person(&self, psn_no: &str) -> Option<SandboxPerson> {
        self.state().persons.get(psn_no).cloned()
    }

    /// Overwrites a person's year (e.g. another hospital settled in between).
    pub fn set_year(&self, psn_no: &str, year: YearToDate) -> bool {
        self.state().persons.get_mut(psn_no).map(|p| p.year = year).is_some()
    }

    pub fn order(&self, pay_ord_id: &str) -> Option<SandboxOrder> {
        self.state().orders.get(pay_ord_id).cloned()
    }

    pub fn plant(&self, difference: PlantedDifference) {
        self.state().planted.push(difference);
    }

    pub fn clear_planted(&self) {
        self.state().planted.clear();
    }

    /// Seals an answer the way every route does (public for the cross-checks).
    pub fn seal_answer(&self, data: Option<&Value>, answer_code: i64, message: &str) -> Value {
        let mut fields = Map::new();
        fields.insert("code".into(), answer_code.into());
        fields.insert("message".into(), message.into());
        fields.insert("success".into(), (answer_code == code::OK).into());
        self.inner.sealer.seal(data, fields, &envelope::timestamp(Utc::now()))
    }

    /// Opens, verifies and routes one request; every outcome is a signed envelope.
    fn handle(&self, route: &str, body: &[u8]) -> Value {
        match self.open_request(body).and_then(|data| self.dispatch(route, &data)) {
            Ok(data) => self.seal_answer(Some(&data), code::OK, "success"),
            Err(refusal) => {
                tracing::info!(route, code = refusal.code, message = %refusal.message, "sandbox insurance: refused");
                self.seal_answer(None, refusal.code, &refusal.message)
            }
        }
    }

    fn open_request(&self, body: &[u8]) -> Result<Value, Refusal> {
        let envelope: Value = serde_json::from_slice(body).map_err(|e| param(format!("报文不是 JSON: {e}")))?;
        match envelope.get("appId").and_then(Value::as_str) {
            Some(id) if id == self.inner.sealer.app_id() => {}
            _ => return Err(refuse(code::APP_ID_UNKNOWN, "appId 不存在")),
        }
        let opened = self.inner.sealer.open(&envelope).map_err(|e| match e {
            EnvelopeError::Signature => refuse(code::SIGN_ERROR, "验签失败"),
            EnvelopeError::Decrypt(m) => refuse(code::DECRYPT_ERROR, format!("解密失败: {m}")),
            other => param(other.to_string()),
        })?;
        envelope::check_timestamp(opened.field_str("timestamp").unwrap_or_default(), Utc::now(), TIMESTAMP_WINDOW)
            .map_err(|_| refuse(code::TIMESTAMP_ERROR, "timestamp 缺失或与平台时间相差超过 5 分钟"))?;
        let data = opened.data.filter(Value::is_object).ok_or_else(|| param("encData 缺失"))?;
        if field(&data, "orgCodg")? != self.inner.org_codg {
            return Err(param("orgCodg 与渠道不符"));
        }
        Ok(data)
    }

    fn dispatch(&self, route: &str, data: &Value) -> Result<Value, Refusal> {
        let mut state = self.state();
        match route {
            path::USER_QUERY => self.user_query(&mut state, data),
            path::AUTH_REVOKE => Self::auth_revoke(&mut state, data),
            path::UPLOAD_FEES => self.upload_fees(&mut state, data),
            path::PAY_ORDER => self.pay_order(&mut state, data),
            path::CONFIRM => self.confirm(&mut state, data),
            path::QUERY => Self::query(&state, data),
            path::REVOKE => Self::revoke(&mut state, data),
            path::REFUND => Self::refund(&mut state, data),
            path::SETTLEMENT_LIST => Self::settlement_list(&state, data),
            _ => Err(param(format!("unknown route {route}"))),
        }
    }

    fn user_query(&self, state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let qrcode = field(data, "qrcode")?;
        let now = Utc::now();
        // Single use: a replayed authCode is refused even if the first use failed later on.
        let code_entry =
            state.auth_codes.remove(&qrcode).ok_or_else(|| refuse(code::AUTH_INVALID, "授权码无效或已使用"))?;
        if code_entry.expires < now {
            return Err(refuse(code::AUTH_INVALID, "授权码已过期"));
        }
        if code_entry.openid.is_some() && code_entry.openid != opt_text(data, "openid") {
            return Err(refuse(code::AUTH_INVALID, "授权码不属于该用户"));
        }
        let person =
            state.persons.get(&code_entry.psn_no).cloned().ok_or_else(|| refuse(code::AUTH_INVALID, "参保人不存在"))?;
        let pay_auth_no = format!("AUTH{}", random_digits(24));
        let expires = now + self.inner.auth_lifetime;
        state
            .authorizations
            .insert(pay_auth_no.clone(), Authorization { psn_no: person.psn_no.clone(), expires, revoked: false });
        Ok(json!({
            "payAuthNo": pay_auth_no,
            "psnNo": person.psn_no,
            "userName": person.name,
            "idNo": person.id_no,
            "idType": person.id_type,
            "insutype": person.insured_type.insutype(),
            "insuplcAdmdvs": person.region,
            "expireTime": envelope::timestamp(expires),
        }))
    }

    fn auth_revoke(state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let pay_auth_no = field(data, "payAuthNo")?;
        let auth =
            state.authorizations.get_mut(&pay_auth_no).ok_or_else(|| refuse(code::AUTH_INVALID, "payAuthNo 不存在"))?;
        auth.revoked = true;
        Ok(json!({"payAuthNo": pay_auth_no}))
    }

    /// The person behind a payAuthNo that may still be used.
    fn authorised(state: &SandboxState, pay_auth_no: &str) -> Result<SandboxPerson, Refusal> {
        let auth = state.authorizations.get(pay_auth_no).ok_or_else(|| refuse(code::AUTH_INVALID, "payAuthNo 无效"))?;
        if auth.revoked {
            return Err(refuse(code::AUTH_INVALID, "payAuthNo 已解除授权"));
        }
        if auth.expires < Utc::now() {
            return Err(refuse(code::AUTH_INVALID, "payAuthNo 已过期"));
        }
        state.persons.get(&auth.psn_no).cloned().ok_or_else(|| refuse(code::AUTH_INVALID, "参保人不存在"))
    }

    fn same_person(person: &SandboxPerson, data: &Value) -> Result<(), Refusal> {
        let matches = field(data, "idNo")? == person.id_no
            && field(data, "userName")? == person.name
            && field(data, "idType")? == person.id_type;
        matches.then_some(()).ok_or_else(|| param("证件信息与参保人不符"))
    }

    fn next_seq(state: &mut SandboxState) -> u64 {
        state.seq += 1;
        state.seq
    }

    fn upload_fees(&self, state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let med_org_ord = field(data, "medOrgOrd")?;
        let fingerprint = canonical_json(data);
        if let Some(existing) = state.by_med_org_ord.get(&med_org_ord).and_then(|id| state.orders.get(id)) {
            // The documented retry: the same upload gets the same order back.
            if existing.upload_fingerprint != fingerprint {
                return Err(refuse(code::DUPLICATE_CONFLICT, "medOrgOrd 已上传且内容不同"));
            }
            return Ok(json!({
                "payOrdId": existing.pay_ord_id,
                "payToken": existing.pay_token,
                "mdtrtId": existing.mdtrt_id,
                "medOrgOrd": existing.med_org_ord,
            }));
        }
        let pay_auth_no = field(data, "payAuthNo")?;
        let person = Self::authorised(state, &pay_auth_no)?;
        Self::same_person(&person, data)?;
        let insured_ok = field(data, "psnNo")? == person.psn_no
            && field(data, "insutype")? == person.insured_type.insutype()
            && field(data, "insuplcAdmdvs")? == person.region;
        if !insured_ok {
            return Err(param("psnNo/insutype/insuplcAdmdvs 与授权参保人不符"));
        }
        for name in ["medType", "deptCode", "deptName", "caty", "chrgBchno", "begntime"] {
            field(data, name)?;
        }
        let use_account = account_flag(data)?;
        if self.inner.rules.policy(&person.region, person.insured_type).is_none() {
            return Err(refuse(code::NOT_COVERED, "参保地与险种无可用待遇"));
        }
        let details = match data.get("feedetailList") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            _ => return Err(param("feedetailList 必填")),
        };
        let mut items = Vec::with_capacity(details.len());
        let mut seen = std::collections::HashSet::new();
        let mut sum = 0u64;
        for detail in details {
            let sn = field(detail, "feedetlSn")?;
            if !seen.insert(sn.clone()) {
                return Err(param(format!("feedetlSn {sn} 重复")));
            }
            let amount = yuan(detail, "detItemFeeSumamt")?;
            let price = yuan(detail, "pric")?;
            let count: u64 = field(detail, "cnt")?.parse().map_err(|_| param(format!("明细 {sn}: cnt 须为正整数")))?;
            if count == 0 || price.get().checked_mul(count) != Some(amount.get()) {
                return Err(refuse(code::AMOUNT_MISMATCH, format!("明细 {sn}: detItemFeeSumamt ≠ cnt × pric")));
            }
            sum += amount.get();
            items.push((self.inner.rules.class_of(&field(detail, "medListCodg")?), amount));
        }
        if yuan(data, "medfeeSumamt")?.get() != sum {
            return Err(refuse(code::AMOUNT_MISMATCH, "medfeeSumamt 与明细合计不符"));
        }
        let seq = Self::next_seq(state);
        let today = Utc::now().with_timezone(&envelope::beijing()).format("%Y%m%d");
        let order = SandboxOrder {
            pay_ord_id: format!("ORD{today}{seq:06}{}", random_digits(6)),
            pay_token: random_hex(16),
            mdtrt_id: format!("MDTRT{today}{seq:06}"),
            med_org_ord: med_org_ord.clone(),
            psn_no: person.psn_no,
            pay_auth_no,
            items,
            total: Fen::new(sum),
            use_account,
            status: OrderStatus::Saved,
            pre_split: None,
            settled: None,
            setl_id: None,
            settled_at: None,
            cash_channel: None,
            cash_trade_no: None,
            refund_sn: None,
            upload_fingerprint: fingerprint,
        };
        let answer = json!({
            "payOrdId": order.pay_ord_id,
            "payToken": order.pay_token,
            "mdtrtId": order.mdtrt_id,
            "medOrgOrd": order.med_org_ord,
        });
        tracing::info!(pay_ord_id = %order.pay_ord_id, med_org_ord, total = %order.total, "sandbox insurance: fees uploaded");
        state.by_med_org_ord.insert(med_org_ord, order.pay_ord_id.clone());
        state.orders.insert(order.pay_ord_id.clone(), order);
        Ok(answer)
    }

    /// The order named by payOrdId, its payToken checked.
    fn order_mut<'a>(state: &'a mut SandboxState, data: &Value) -> Result<&'a mut SandboxOrder, Refusal> {
        let pay_ord_id = field(data, "payOrdId")?;
        let token = field(data, "payToken")?;
        let order = state.orders.get_mut(&pay_ord_id).ok_or_else(|| refuse(code::ORDER_NOT_FOUND, "订单不存在"))?;
        if order.pay_token != token {
            return Err(param("payToken 与订单不符"));
        }
        Ok(order)
    }

    fn split_now(&self, state: &SandboxState, order: &SandboxOrder) -> Result<Split, Refusal> {
        let person = state.persons.get(&order.psn_no).ok_or_else(|| refuse(code::SYSTEM_ERROR, "参保人不存在"))?;
        let policy = self
            .inner
            .rules
            .policy(&person.region, person.insured_type)
            .ok_or_else(|| refuse(code::NOT_COVERED, "参保地与险种无可用待遇"))?;
        Ok(compute_split(policy, &person.year, &order.items, order.use_account))
    }

    fn pay_order(&self, state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let pay_auth_no = field(data, "payAuthNo")?;
        let use_account = account_flag(data)?;
        let mut order = Self::order_mut(state, data)?.clone();
        if order.pay_auth_no != pay_auth_no {
            return Err(refuse(code::AUTH_INVALID, "payAuthNo 与订单不符"));
        }
        if field(data, "mdtrtId")? != order.mdtrt_id {
            return Err(param("mdtrtId 与订单不符"));
        }
        field(data, "orgBizSer")?;
        if !matches!(order.status, OrderStatus::Saved | OrderStatus::PreSettled) {
            return Err(refuse(code::ORDER_STATE, format!("订单状态 {} 不可下单", order.status.code())));
        }
        let person = Self::authorised(state, &pay_auth_no)?;
        order.use_account = use_account;
        let split = self.split_now(state, &order)?;
        let stored = state.orders.get_mut(&order.pay_ord_id).expect("found above");
        stored.use_account = use_account;
        stored.pre_split = Some(split);
        stored.status = OrderStatus::PreSettled;
        let mut answer = Map::new();
        answer.insert("payOrdId".into(), order.pay_ord_id.clone().into());
        answer.insert("ordStas".into(), OrderStatus::PreSettled.code().into());
        answer.insert("medOrgOrd".into(), order.med_org_ord.clone().into());
        amounts_json(&mut answer, &split_amounts(&split));
        answer.insert("deposit".into(), "0.00".into());
        answer.insert(
            "extData".into(),
            json!({"preSetl": {
                "psn_no": person.psn_no,
                "insutype": person.insured_type.insutype(),
                "medfee_sumamt": to_yuan(split.total),
                "fulamt_ownpay_amt": to_yuan(split.uncovered),
                "inscp_scp_amt": to_yuan(split.in_scope),
                "act_pay_dedc": to_yuan(split.deductible),
                "hifp_pay": to_yuan(split.fund),
                "fund_pay_sumamt": to_yuan(split.fund),
                "acct_pay": to_yuan(split.account),
                "psn_cash_pay": to_yuan(split.cash),
                "balc": to_yuan(Fen::new(person.year.account_balance.get() - split.account.get())),
            }}),
        );
        tracing::info!(pay_ord_id = %order.pay_ord_id, fund = %split.fund, account = %split.account, cash = %split.cash, "sandbox insurance: pre-settled");
        Ok(Value::Object(answer))
    }

    /// The 6301-shaped description of an order.
    fn describe(order: &SandboxOrder) -> Value {
        let mut answer = Map::new();
        answer.insert("payOrdId".into(), order.pay_ord_id.clone().into());
        answer.insert("ordStas".into(), order.status.code().into());
        answer.insert("medOrgOrd".into(), order.med_org_ord.clone().into());
        answer.insert("traceTime".into(), format_time(Utc::now()).into());
        if let Some(split) = order.settled.as_ref().or(order.pre_split.as_ref()) {
            amounts_json(&mut answer, &split_amounts(split));
        }
        if order.settled.is_some() {
            answer.insert("setlType".into(), "ALL".into());
        }
        if let Some(id) = &order.setl_id {
            answer.insert("setlId".into(), id.clone().into());
        }
        if let Some(at) = order.settled_at {
            answer.insert("setlTime".into(), format_time(at).into());
        }
        if let Some(channel) = order.cash_channel {
            answer.insert("cashChnl".into(), channel.wire().into());
        }
        if let Some(no) = &order.cash_trade_no {
            answer.insert("cashTradeNo".into(), no.clone().into());
        }
        Value::Object(answer)
    }

    fn confirm(&self, state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let channel = CashChannel::from_wire(&field(data, "cashChnl")?)
            .ok_or_else(|| param("cashChnl 须为 WECHAT、ALIPAY 或 NONE"))?;
        let trade_no = opt_text(data, "cashTradeNo");
        let cash = yuan(data, "ownPayAmt")?;
        let order = Self::order_mut(state, data)?.clone();
        if order.status == OrderStatus::Settled {
            // A repeated confirmation of the same payment is answered, not applied twice.
            if order.cash_channel == Some(channel) && order.cash_trade_no == trade_no {
                return Ok(Self::describe(&order));
            }
            return Err(refuse(code::ORDER_STATE, "订单已结算"));
        }
        let Some(pre) = order.pre_split.filter(|_| order.status == OrderStatus::PreSettled) else {
            return Err(refuse(code::ORDER_STATE, format!("订单状态 {} 不可结算，请先支付下单", order.status.code())));
        };
        if cash != pre.cash {
            return Err(refuse(code::AMOUNT_MISMATCH, format!("ownPayAmt 应为 {}", to_yuan(pre.cash))));
        }
        if cash > Fen::ZERO && (channel == CashChannel::None || trade_no.is_none()) {
            return Err(param("现金部分须有支付渠道和交易号"));
        }
        let now_split = self.split_now(state, &order)?;
        if now_split != pre {
            return Err(refuse(code::SPLIT_CHANGED, "参保人待遇已变化，请重新支付下单"));
        }
        let person = state.persons.get_mut(&order.psn_no).expect("split_now found the person");
        person.year.account_balance = Fen::new(person.year.account_balance.get() - pre.account.get());
        person.year.fund_paid = Fen::new(person.year.fund_paid.get() + pre.fund.get());
        person.year.deductible_used = Fen::new(person.year.deductible_used.get() + pre.deductible.get());
        let now = Utc::now();
        let setl_id = format!("SETL{}{}", now.with_timezone(&envelope::beijing()).format("%Y%m%d"), random_digits(10));
        let stored = state.orders.get_mut(&order.pay_ord_id).expect("found above");
        stored.status = OrderStatus::Settled;
        stored.settled = Some(pre);
        stored.setl_id = Some(setl_id.clone());
        stored.settled_at = Some(now);
        stored.cash_channel = Some(channel);
        stored.cash_trade_no = trade_no;
        let answer = Self::describe(stored);
        state.ledger.push(SettlementRecord {
            kind: RecordKind::Settlement,
            pay_ord_id: order.pay_ord_id.clone(),
            med_org_ord: order.med_org_ord.clone(),
            reference: setl_id,
            at: now,
            amounts: split_amounts(&pre),
        });
        tracing::info!(pay_ord_id = %order.pay_ord_id, "sandbox insurance: settled");
        Ok(answer)
    }

    fn query(state: &SandboxState, data: &Value) -> Result<Value, Refusal> {
        let pay_ord_id = field(data, "payOrdId")?;
        let order = state.orders.get(&pay_ord_id).ok_or_else(|| refuse(code::ORDER_NOT_FOUND, "订单不存在"))?;
        if order.pay_token != field(data, "payToken")? {
            return Err(param("payToken 与订单不符"));
        }
        Self::same_person(
            state.persons.get(&order.psn_no).ok_or_else(|| refuse(code::SYSTEM_ERROR, "参保人不存在"))?,
            data,
        )?;
        Ok(Self::describe(order))
    }

    fn revoke(state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let order = Self::order_mut(state, data)?.clone();
        Self::same_person(
            state.persons.get(&order.psn_no).ok_or_else(|| refuse(code::SYSTEM_ERROR, "参保人不存在"))?,
            data,
        )?;
        match order.status {
            OrderStatus::Saved | OrderStatus::PreSettled | OrderStatus::Revoked => {}
            other => return Err(refuse(code::ORDER_STATE, format!("订单状态 {} 不可撤销", other.code()))),
        }
        state.orders.get_mut(&order.pay_ord_id).expect("found above").status = OrderStatus::Revoked;
        Ok(json!({"payOrdId": order.pay_ord_id, "success": true, "message": "撤销成功"}))
    }

    fn refund(state: &mut SandboxState, data: &Value) -> Result<Value, Refusal> {
        let sn = field(data, "appRefdSn")?;
        let pay_ord_id = field(data, "payOrdId")?;
        if field(data, "refdType")? != "ALL" {
            return Err(param("refdType 仅支持 ALL（全部退款）"));
        }
        let refund = SplitAmounts {
            total: yuan(data, "totlRefdAmt")?,
            fund: yuan(data, "fundRefdAmt")?,
            account: yuan(data, "psnAcctRefdAmt")?,
            cash: yuan(data, "cashRefdAmt")?,
        };
        // The refund's identity: a retry may carry a fresh appRefdTime.
        let fingerprint = canonical_json(&json!([
            pay_ord_id,
            to_yuan(refund.total),
            to_yuan(refund.fund),
            to_yuan(refund.account),
            to_yuan(refund.cash)
        ]));
        if let Some(stored) = state.refunds.get(&sn) {
            if stored.fingerprint != fingerprint {
                return Err(refuse(code::DUPLICATE_CONFLICT, "appRefdSn 已使用且内容不同"));
            }
            return Ok(stored.answer.clone());
        }
        let refund_time = field(data, "appRefdTime")?;
        if refund_time.len() != 14 || parse_time(&refund_time).is_none() {
            return Err(param("appRefdTime 须为 yyyyMMddHHmmss"));
        }
        let pay_auth_no = field(data, "payAuthNo")?;
        let order = state.orders.get(&pay_ord_id).ok_or_else(|| refuse(code::ORDER_NOT_FOUND, "订单不存在"))?.clone();
        if order.pay_auth_no != pay_auth_no {
            return Err(refuse(code::AUTH_INVALID, "payAuthNo 与订单不符"));
        }
        let settled = match (&order.status, order.settled) {
            (OrderStatus::Settled, Some(split)) => split,
            (status, _) => return Err(refuse(code::ORDER_STATE, format!("订单状态 {} 不可退款", status.code()))),
        };
        if refund != split_amounts(&settled) {
            return Err(refuse(code::AMOUNT_MISMATCH, "全部退款须与结算金额逐项一致"));
        }
        // Every part back: the account balance, the year's fund use and deductible.
        let person = state.persons.get_mut(&order.psn_no).ok_or_else(|| refuse(code::SYSTEM_ERROR, "参保人不存在"))?;
        person.year.account_balance = Fen::new(person.year.account_balance.get() + settled.account.get());
        person.year.fund_paid = Fen::new(person.year.fund_paid.get().saturating_sub(settled.fund.get()));
        person.year.deductible_used =
            Fen::new(person.year.deductible_used.get().saturating_sub(settled.deductible.get()));
        let stored = state.orders.get_mut(&pay_ord_id).expect("found above");
        stored.status = OrderStatus::Refunded;
        stored.refund_sn = Some(sn.clone());
        let now = Utc::now();
        let answer = json!({
            "payOrdId": pay_ord_id,
            "appRefdSn": sn,
            "trxTime": envelope::timestamp(now),
            "refdType": "ALL",
            "refStatus": "SUCC",
            "totlRefdAmt": to_yuan(refund.total),
            "fundRefdAmt": to_yuan(refund.fund),
            "psnAcctRefdAmt": to_yuan(refund.account),
            "cashRefdAmt": to_yuan(refund.cash),
        });
        state.ledger.push(SettlementRecord {
            kind: RecordKind::Refund,
            pay_ord_id: pay_ord_id.clone(),
            med_org_ord: order.med_org_ord,
            reference: sn.clone(),
            at: now,
            amounts: refund,
        });
        state.refunds.insert(sn, StoredRefund { fingerprint, answer: answer.clone() });
        tracing::info!(pay_ord_id, "sandbox insurance: refunded");
        Ok(answer)
    }

    fn settlement_list(state: &SandboxState, data: &Value) -> Result<Value, Refusal> {
        let date_text = field(data, "setlDate")?;
        let date = NaiveDate::parse_from_str(&date_text, "%Y%m%d").map_err(|_| param("setlDate 须为 yyyyMMdd"))?;
        let on_date = |at: &DateTime<Utc>| at.with_timezone(&envelope::beijing()).date_naive() == date;
        let mut records: Vec<SettlementRecord> = state.ledger.iter().filter(|r| on_date(&r.at)).cloned().collect();
        for difference in &state.planted {
            match difference {
                PlantedDifference::Missing { pay_ord_id } => {
                    records.retain(|r| !(r.kind == RecordKind::Settlement && &r.pay_ord_id == pay_ord_id))
                }
                PlantedDifference::Amounts { pay_ord_id, amounts } => {
                    for r in
                        records.iter_mut().filter(|r| r.kind == RecordKind::Settlement && &r.pay_ord_id == pay_ord_id)
                    {
                        r.amounts = *amounts;
                    }
                }
                PlantedDifference::Extra(record) if on_date(&record.at) => records.push(record.clone()),
                PlantedDifference::Extra(_) => {}
            }
        }
        records.sort_by_key(|r| r.at);
        let rows: Vec<Value> = records
            .iter()
            .map(|r| {
                let mut row = Map::new();
                row.insert("recType".into(), if r.kind == RecordKind::Settlement { "SETL" } else { "REFD" }.into());
                row.insert("payOrdId".into(), r.pay_ord_id.clone().into());
                row.insert("medOrgOrd".into(), r.med_org_ord.clone().into());
                row.insert("refNo".into(), r.reference.clone().into());
                row.insert("trxTime".into(), envelope::timestamp(r.at).into());
                amounts_json(&mut row, &r.amounts);
                Value::Object(row)
            })
            .collect();
        Ok(json!({"setlDate": date_text, "recordCount": rows.len().to_string(), "records": rows}))
    }
}

async fn answer(sandbox: InsuranceSandbox, route: &'static str, body: Bytes) -> Response {
    // Verification and the split are quick and in memory; no need for a blocking thread.
    let envelope = sandbox.handle(route, &body);
    ([(header::CONTENT_TYPE, "application/json")], envelope.to_string()).into_response()
}

/// What the patient's side of the authorisation sends (`/sandbox/authorize`).
#[derive(serde::Deserialize)]
struct AuthorizeRequest {
    psn_no: String,
    #[serde(default)]
    openid: Option<String>,
}

/// Plays the patient authorising in the 医保电子凭证 mini-program (a test and demo helper, not
/// part of the platform's protocol): `{psn_no, openid?}` → `{auth_code}`, 404 for an unknown
/// person.
async fn authorize_route(
    State(sandbox): State<InsuranceSandbox>,
    axum::Json(req): axum::Json<AuthorizeRequest>,
) -> Response {
    match sandbox.authorize(&req.psn_no, req.openid.as_deref()) {
        Some(code) => axum::Json(json!({ "auth_code": code })).into_response(),
        None => (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such insured person" })))
            .into_response(),
    }
}

/// An order as the sandbox centre holds it, with its status code (`ordStas`), for tests and the
/// demo: what a hospital learns through 6301 needs the order's payToken, which this shows.
async fn order_route(
    State(sandbox): State<InsuranceSandbox>,
    axum::extract::Path(pay_ord_id): axum::extract::Path<String>,
) -> Response {
    match sandbox.order(&pay_ord_id) {
        Some(order) => {
            let mut v = serde_json::to_value(&order).unwrap_or_default();
            v["ord_stas"] = order.status.code().into();
            axum::Json(v).into_response()
        }
        None => (axum::http::StatusCode::NOT_FOUND, axum::Json(json!({ "error": "no such order" }))).into_response(),
    }
}

/// The sandbox's routes, at the platform's paths (mount the router at the sandbox base URL),
/// the patient's side of the authorisation at `/sandbox/authorize` and the orders it holds at
/// `/sandbox/orders/{payOrdId}`.
pub fn sandbox_router(sandbox: InsuranceSandbox) -> Router {
    let mut router = Router::new()
        .route("/sandbox/authorize", post(authorize_route))
        .route("/sandbox/orders/{pay_ord_id}", axum::routing::get(order_route));
    for route in [
        path::USER_QUERY,
        path::AUTH_REVOKE,
        path::UPLOAD_FEES,
        path::PAY_ORDER,
        path::CONFIRM,
        path::QUERY,
        path::REVOKE,
        path::REFUND,
        path::SETTLEMENT_LIST,
    ] {
        router =
            router.route(route, post(move |State(sb): State<InsuranceSandbox>, body: Bytes| answer(sb, route, body)));
    }
    router.with_state(sandbox)
}
