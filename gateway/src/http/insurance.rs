//! Medical insurance (医保, PAY-2, PAY-3): a 就诊人's insurance identity bound from the
//! 医保电子凭证 authorisation (the `authCode` the mini-program received; the centre answers the
//! `payAuthNo`, the insured type 职工/居民 and region), read and unbound; and the insurance
//! checkout of a fee order: pre-settlement (6201 + 6202) showing the split (`feeSumamt` =
//! `fundPay` + `psnAcctPay` + `ownPayAmt`), after which the cash part is paid by Alipay or WeChat
//! Pay through the order's ordinary pay routes and the order's payment actor confirms the
//! settlement. The authorisation number and the ID number are sealed at rest and never shown.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use hospital_domain::insured::InsuranceBinding;
use hospital_domain::ledger::Channel;
use hospital_domain::order::{InsuranceStage, Order, Reversal};
use hospital_domain::{Fen, OrderId, PatientId, Permission};
use hospital_integrations::insurance::{BindRequest, InsuredType};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, StaffCaller};
use crate::http::booking::{order_view, OrderView};
use crate::http::payments::owned_order;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(bind, get_binding, unbind))
        .routes(routes!(pre_settle, order_insurance))
        .routes(permit(Permission::PaymentsRead, routes!(staff_order_insurance)))
}

fn client(state: &AppState) -> ApiResult<std::sync::Arc<dyn hospital_integrations::Insurance>> {
    state.insurance.clone().ok_or_else(|| ApiError::Unavailable("medical insurance is not configured".into()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BindInsurance {
    /// What the 医保电子凭证 authorisation handed the mini-program (`authCode`).
    pub auth_code: String,
    /// The payer's openid in our mini-program, when the authorisation was bound to it.
    #[serde(default)]
    pub openid: Option<String>,
}

/// A bound insurance identity as its owner sees it: no authorisation number, the ID number
/// masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BindingView {
    pub patient_id: PatientId,
    /// 人员编号.
    pub psn_no: String,
    pub name: String,
    /// The ID number, masked (first 3 and last 4 shown).
    pub id_no_masked: String,
    /// `employee` (职工) or `resident` (居民).
    pub insured_type: String,
    /// 职工 or 居民.
    pub insured_type_label: String,
    /// `310` or `390`.
    pub insutype: String,
    /// 参保地医保区划.
    pub region: String,
    /// In the hospital's zone.
    pub bound_at: String,
    /// The authorisation lapses then (authorise again), in the hospital's zone.
    pub expires_at: String,
    pub live: bool,
}

fn mask(id_no: &str) -> String {
    let n = id_no.chars().count();
    id_no.chars().enumerate().map(|(i, c)| if i < 3 || i + 4 >= n { c } else { '*' }).collect()
}

fn binding_view(state: &AppState, b: &InsuranceBinding) -> BindingView {
    let kind = if b.insured_type == "resident" { InsuredType::Resident } else { InsuredType::Employee };
    let id_no =
        state.cipher.open(&hospital_store::model::Sealed(b.id_no.clone())).map(|n| mask(&n)).unwrap_or_default();
    BindingView {
        patient_id: b.patient_id,
        psn_no: b.psn_no.clone(),
        name: b.name.clone(),
        id_no_masked: id_no,
        insured_type: b.insured_type.clone(),
        insured_type_label: kind.label().into(),
        insutype: kind.insutype().into(),
        region: b.region.clone(),
        bound_at: state.zone.show(b.bound_at),
        expires_at: state.zone.show(b.expires_at),
        live: b.is_live(Utc::now()),
    }
}

async fn own_patient(state: &AppState, caller: &AccountCaller, id: PatientId) -> ApiResult<()> {
    match state.stores.data.patient(caller.account_id, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("patient")),
    }
}

/// Binds a 就诊人's insurance identity from the 医保电子凭证 authorisation (PAY-2), replacing
/// an earlier binding. The insured type (职工/居民) and region come from the centre.
#[utoipa::path(post, path = "/api/v1/me/patients/{id}/insurance", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), request_body = BindInsurance,
    responses((status = 201, body = BindingView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn bind(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
    ApiJson(req): ApiJson<BindInsurance>,
) -> ApiResult<(StatusCode, ApiJson<BindingView>)> {
    own_patient(&state, &caller, id).await?;
    let bounded = |s: &str| !s.trim().is_empty() && s.len() <= 128;
    if !bounded(&req.auth_code) {
        return Err(ApiError::OutOfRange { field: "auth_code".into(), message: "1 to 128 characters".into() });
    }
    if req.openid.as_deref().is_some_and(|o| !bounded(o)) {
        return Err(ApiError::OutOfRange { field: "openid".into(), message: "1 to 128 characters".into() });
    }
    let client = client(&state)?;
    let identity = client
        .bind(BindRequest { auth_code: req.auth_code.trim().to_string(), openid: req.openid })
        .await
        .map_err(ApiError::from)?;
    let binding = InsuranceBinding {
        account_id: caller.account_id,
        patient_id: id,
        psn_no: identity.psn_no.clone(),
        pay_auth_no: state.cipher.seal(&identity.pay_auth_no).0,
        name: identity.name.clone(),
        id_type: identity.id_type.clone(),
        id_no: state.cipher.seal(&identity.id_no).0,
        insured_type: match identity.insured_type {
            InsuredType::Employee => "employee".into(),
            InsuredType::Resident => "resident".into(),
        },
        region: identity.region.clone(),
        bound_at: Utc::now(),
        expires_at: identity.expires_at,
    };
    let earlier = state.stores.data.insurance_binding(caller.account_id, id).await?;
    state.stores.data.put_insurance_binding(&binding).await?;
    if let Some(old) = earlier {
        // The replaced authorisation is withdrawn at the centre (best effort: it lapses anyway).
        revoke_authorisation(&state, &old).await;
    }
    tracing::info!(patient = %id, insured_type = %binding.insured_type, region = %binding.region, "insurance bound");
    Ok((StatusCode::CREATED, ApiJson(binding_view(&state, &binding))))
}

async fn revoke_authorisation(state: &AppState, b: &InsuranceBinding) {
    let (Some(client), Ok(no)) =
        (state.insurance.clone(), state.cipher.open(&hospital_store::model::Sealed(b.pay_auth_no.clone())))
    else {
        return;
    };
    if let Err(e) = client.unbind(&no).await {
        tracing::warn!(patient = %b.patient_id, error = %e, "withdrawing an insurance authorisation failed");
    }
}

/// A 就诊人's bound insurance identity; 404 when none is bound.
#[utoipa::path(get, path = "/api/v1/me/patients/{id}/insurance", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), responses((status = 200, body = BindingView), (status = 404, body = ErrorBody)))]
async fn get_binding(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<ApiJson<BindingView>> {
    own_patient(&state, &caller, id).await?;
    let b = state.stores.data.insurance_binding(caller.account_id, id).await?;
    let b = b.ok_or_else(|| ApiError::not_found("insurance binding"))?;
    Ok(ApiJson(binding_view(&state, &b)))
}

/// Unbinds a 就诊人's insurance identity (the authorisation is withdrawn at the centre too).
#[utoipa::path(delete, path = "/api/v1/me/patients/{id}/insurance", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn unbind(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<StatusCode> {
    own_patient(&state, &caller, id).await?;
    let b = state.stores.data.insurance_binding(caller.account_id, id).await?;
    let b = b.ok_or_else(|| ApiError::not_found("insurance binding"))?;
    state.stores.data.remove_insurance_binding(caller.account_id, id).await?;
    revoke_authorisation(&state, &b).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreSettle {
    /// Let the personal account (个人账户) pay the patient's share (default true).
    #[serde(default)]
    pub use_account: Option<bool>,
}

/// An order's insurance part: the split and how far it has gone.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InsuranceCheckoutView {
    pub order: OrderView,
    /// `employee` (职工) or `resident` (居民).
    pub insured_type: String,
    pub region: String,
    /// The centre's order id (payOrdId).
    pub pay_ord_id: String,
    /// `pre_settled`, `settled`, `revoked`, `refunded`.
    pub stage: InsuranceStage,
    /// feeSumamt, in fen.
    pub fee_sumamt: Fen,
    /// fundPay (统筹基金), in fen.
    pub fund_pay: Fen,
    /// psnAcctPay (个人账户), in fen.
    pub psn_acct_pay: Fen,
    /// ownPayAmt (自付, paid by Alipay or WeChat Pay), in fen.
    pub own_pay_amt: Fen,
    /// Not covered (丙类), in scope, and the deductible (起付线) this bill paid, in fen.
    pub uncovered: Fen,
    pub in_scope: Fen,
    pub deductible: Fen,
    /// Where the cash part was paid, once it was.
    pub cash_channel: Option<Channel>,
    pub cash_trade_no: Option<String>,
    /// 结算 ID, once settled.
    pub setl_id: Option<String>,
    /// A checkout undone in full (the settlement refused): why, and how far.
    pub reversal: Option<Reversal>,
}

fn checkout_view(state: &AppState, o: &Order) -> ApiResult<InsuranceCheckoutView> {
    let p = o.insurance.as_ref().ok_or_else(|| ApiError::not_found("insurance settlement"))?;
    let trade = o.paid_trade();
    Ok(InsuranceCheckoutView {
        order: order_view(state, o),
        insured_type: p.insured_type.clone(),
        region: p.region.clone(),
        pay_ord_id: p.pay_ord_id.clone(),
        stage: p.stage,
        fee_sumamt: p.split.total,
        fund_pay: p.split.fund,
        psn_acct_pay: p.split.account,
        own_pay_amt: p.split.cash,
        uncovered: p.uncovered,
        in_scope: p.in_scope,
        deductible: p.deductible,
        cash_channel: trade.map(|t| t.channel),
        cash_trade_no: trade.and_then(|t| t.trade_no.clone()),
        setl_id: p.setl_id.clone(),
        reversal: o.reversal.clone(),
    })
}

/// Pre-settles an unpaid fee order through insurance (6201 fee upload + 6202), under the
/// 就诊人's bound identity: answers the split. Then pay `own_pay_amt` through the order's Alipay
/// or WeChat Pay route; the settlement is confirmed once it is paid. Asking again before paying
/// answers the same split.
#[utoipa::path(post, path = "/api/v1/orders/{id}/insurance", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)), request_body = PreSettle,
    responses((status = 200, body = InsuranceCheckoutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn pre_settle(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<PreSettle>,
) -> ApiResult<ApiJson<InsuranceCheckoutView>> {
    let o = owned_order(&state, &caller, id).await?;
    let Some(patient) = o.patient_id else {
        return Err(ApiError::Conflict {
            code: "insurance_unavailable",
            message: "only a fee order of a 就诊人 is settled through insurance".into(),
        });
    };
    let binding =
        state.stores.data.insurance_binding(caller.account_id, patient).await?.ok_or_else(|| ApiError::Conflict {
            code: "insurance_not_bound",
            message: "bind the 就诊人's insurance first (POST /api/v1/me/patients/{id}/insurance)".into(),
        })?;
    let o = state.actors.insurance_pre_settle(id, binding, req.use_account.unwrap_or(true)).await?;
    Ok(ApiJson(checkout_view(&state, &o)?))
}

/// One of the caller's orders' insurance part: the split, the stage, every part recorded.
#[utoipa::path(get, path = "/api/v1/orders/{id}/insurance", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)), responses((status = 200, body = InsuranceCheckoutView), (status = 404, body = ErrorBody)))]
async fn order_insurance(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<ApiJson<InsuranceCheckoutView>> {
    let o = owned_order(&state, &caller, id).await?;
    Ok(ApiJson(checkout_view(&state, &o)?))
}

/// Any order's insurance part, for finance staff (`payments.read`).
#[utoipa::path(get, path = "/api/v1/admin/orders/{id}/insurance", tag = "back office", security(("bearer" = [])),
    params(("id" = OrderId, Path)), responses((status = 200, body = InsuranceCheckoutView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn staff_order_insurance(
    State(state): State<AppState>,
    _caller: StaffCaller,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<ApiJson<InsuranceCheckoutView>> {
    let o = state.stores.data.order(id).await?.ok_or_else(|| ApiError::not_found("order"))?;
    Ok(ApiJson(checkout_view(&state, &o)?))
}
