//! Fee orders (PAY-1): the fee items a 就诊人 has to pay (检查费, 药费), handed in by the hospital's
//! HIS through a signed, idempotent integration API (the visits add theirs too); one checkout
//! paying several items of one 就诊人; the caller's orders; and Alipay (PAY-1, the mini-program's
//! `my.tradePay` and the H5 cashier), whose notifications are verified and handled once by the
//! order's payment actor. WeChat Pay for any order is `POST /api/v1/orders/{id}/wechat-pay`
//! (`payments`).
//!
//! # The HIS signature
//!
//! `POST /api/v1/his/fee-items` carries `X-His-Signature: t=<unix seconds>,v1=<hex>`, the same
//! scheme as the lab webhook (`exams`): lowercase hex HMAC-SHA256, keyed with
//! `gateway.his_webhook_secret`, of `"<t>.<raw body>"`, within 5 minutes of the server's clock,
//! each signature accepted once; checked by the one verifier of signed deliveries
//! (`exams::Delivery::accept_from` with `HIS`, as the HIS's visits and results). Items are
//! idempotent by `his_id`: sending one again (a new signature) answers the stored item; the same
//! id with other content is 409.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hospital_domain::billing::{FeeItem, FeeItemId, FeeItemStatus, FeeType, NewFeeItem};
use hospital_domain::{AccountId, DepartmentId, Fen, OrderId, PatientId};
use hospital_integrations::alipay::{NOTIFY_ACK, NOTIFY_NACK};
use hospital_store::{Conflict, StoreError};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, AccountCaller, ApiJson, ApiPath, RawBody};
use crate::http::booking::{order_view, OrderView};
use crate::http::exams::{Channel, Delivery};
use crate::http::payments::own_stored_order;
use crate::state::AppState;

/// The HIS's signature header.
pub const HIS_SIGNATURE_HEADER: &str = "x-his-signature";
/// The public development key sandbox mode uses when none is configured (never in production).
pub const SANDBOX_HIS_WEBHOOK_SECRET: &str = "sandbox-his-webhook-secret";
/// The most items one HIS call hands in.
pub const MAX_HIS_ITEMS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(his_fee_items))
        .routes(routes!(patient_fee_items))
        .routes(routes!(create_fee_order))
        .routes(routes!(my_orders))
        .routes(routes!(alipay_pay))
        .routes(routes!(alipay_notify))
}

/// One fee item as the HIS sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HisFeeItem {
    /// The HIS's own id of the item (1 to 90 of letters, digits, `-_.:`): the idempotency key.
    pub his_id: String,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub fee_type: FeeType,
    pub name: String,
    pub quantity: u32,
    /// In fen.
    pub unit_price: Fen,
    /// In fen: quantity × unit price.
    pub amount: Fen,
    #[serde(default)]
    pub department_id: Option<DepartmentId>,
    /// 医疗目录编码 (the national insurance catalogue code); none: not billed to insurance.
    #[serde(default)]
    pub insurance_code: Option<String>,
    /// When it was billed (now when absent).
    #[serde(default)]
    pub billed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HisFeeItems {
    pub items: Vec<HisFeeItem>,
}

/// A fee item as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeeItemView {
    #[schema(value_type = String)]
    pub id: FeeItemId,
    pub patient_id: PatientId,
    pub fee_type: FeeType,
    pub name: String,
    pub quantity: u32,
    /// In fen.
    pub unit_price: Fen,
    /// In fen.
    pub amount: Fen,
    pub department_id: Option<DepartmentId>,
    pub insurance_code: Option<String>,
    /// `unpaid`, `ordered` (in an open order) or `paid`.
    pub status: FeeItemStatus,
    pub order_id: Option<OrderId>,
    /// In the hospital's zone.
    pub billed_at: String,
}

fn item_view(state: &AppState, i: &FeeItem) -> FeeItemView {
    FeeItemView {
        id: i.id.clone(),
        patient_id: i.patient_id,
        fee_type: i.fee_type,
        name: i.name.clone(),
        quantity: i.quantity,
        unit_price: i.unit_price,
        amount: i.amount,
        department_id: i.department_id,
        insurance_code: i.insurance_code.clone(),
        status: i.status,
        order_id: i.order_id,
        billed_at: state.zone.show(i.billed_at),
    }
}

/// The HIS as a signer (the fee items' route here and the visits' and results' in `http::his`).
pub(crate) const HIS: Channel = Channel {
    header: HIS_SIGNATURE_HEADER,
    header_name: "X-His-Signature",
    secret: his_secret,
    replay_prefix: "his-sig",
    metric: "his_calls_total",
    name: "the HIS integration",
};

/// The HIS key: configured, else the public development key in sandbox mode.
pub(crate) fn his_secret(state: &AppState) -> Option<Vec<u8>> {
    match &state.config.his_webhook_secret {
        Some(s) if !s.expose_secret().is_empty() => Some(s.expose_secret().as_bytes().to_vec()),
        _ if state.config.sandbox => Some(SANDBOX_HIS_WEBHOOK_SECRET.as_bytes().to_vec()),
        _ => None,
    }
}

/// The HIS hands in fee items to pay (idempotent by `his_id`), authenticated by
/// `X-His-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (5-minute
/// window, each signature accepted once). Answers the stored items. 503 when no secret is
/// configured.
#[utoipa::path(post, path = "/api/v1/his/fee-items", tag = "payments",
    params(("X-His-Signature" = String, Header, description = "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256 of \"<t>.<raw body>\">")),
    request_body(content = HisFeeItems, content_type = "application/json", description = "Read as raw bytes: the signature covers them exactly"),
    responses((status = 200, body = [FeeItemView]), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn his_fee_items(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<ApiJson<Vec<FeeItemView>>> {
    // Signed over the raw body alone (`"<t>.<raw body>"`): the other HIS routes sign the method
    // and path too.
    let delivery = Delivery::accept_from(&HIS, &state, &headers, &[&body], "fee items").await?;
    let result = add_items(&state, &body).await;
    delivery.settle(&state, result).await
}

async fn add_items(state: &AppState, body: &[u8]) -> ApiResult<ApiJson<Vec<FeeItemView>>> {
    let req: HisFeeItems = parse_json(body)?;
    if req.items.is_empty() || req.items.len() > MAX_HIS_ITEMS {
        return Err(ApiError::OutOfRange { field: "items".into(), message: format!("1 to {MAX_HIS_ITEMS} items") });
    }
    let now = Utc::now();
    let mut items = Vec::with_capacity(req.items.len());
    for (n, i) in req.items.into_iter().enumerate() {
        let field = |f: &str| format!("items[{n}].{f}");
        let id = FeeItemId::his(&i.his_id).map_err(|_| ApiError::OutOfRange {
            field: field("his_id"),
            message: "1 to 90 of letters, digits, -_.:".into(),
        })?;
        if state.stores.data.patient(i.account_id, i.patient_id).await?.is_none() {
            return Err(ApiError::OutOfRange {
                field: field("patient_id"),
                message: "no such patient of the account".into(),
            });
        }
        let new = NewFeeItem {
            id,
            account_id: i.account_id,
            patient_id: i.patient_id,
            fee_type: i.fee_type,
            name: i.name,
            quantity: i.quantity,
            unit_price: i.unit_price,
            amount: i.amount,
            department_id: i.department_id,
            insurance_code: i.insurance_code,
            billed_at: i.billed_at.unwrap_or(now),
        };
        new.validate().map_err(|e| ApiError::OutOfRange { field: field(&e.field), message: e.reason })?;
        items.push(new);
    }
    let stored = match state.stores.data.add_fee_items(&items).await {
        Ok(s) => s,
        Err(StoreError::Conflict(Conflict::FeeItemChanged)) => {
            return Err(ApiError::Conflict {
                code: "fee_item_changed",
                message: "a fee item was sent before with other content".into(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    Ok(ApiJson(stored.iter().map(|i| item_view(state, i)).collect()))
}

/// A 就诊人's fee items (every status, unpaid first to pay); another account's patient is 404.
#[utoipa::path(get, path = "/api/v1/me/patients/{id}/fee-items", tag = "me", security(("bearer" = [])),
    params(("id" = PatientId, Path)), responses((status = 200, body = [FeeItemView]), (status = 404, body = ErrorBody)))]
async fn patient_fee_items(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<ApiJson<Vec<FeeItemView>>> {
    if state.stores.data.patient(caller.account_id, id).await?.is_none() {
        return Err(ApiError::not_found("patient"));
    }
    let items = state.stores.data.fee_items_of_patient(caller.account_id, id).await?;
    Ok(ApiJson(items.iter().map(|i| item_view(&state, i)).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFeeOrder {
    pub patient_id: PatientId,
    /// The items to pay (1 to 50), all of this 就诊人 and unpaid.
    #[schema(value_type = Vec<String>)]
    pub fee_item_ids: Vec<String>,
}

/// One checkout: an order paying several unpaid items of one 就诊人, pushed live as `created`.
/// A retry (the same items, still in their open order) answers that order.
#[utoipa::path(post, path = "/api/v1/me/fee-orders", tag = "payments", security(("bearer" = [])),
    request_body = CreateFeeOrder,
    responses((status = 201, body = OrderView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_fee_order(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<CreateFeeOrder>,
) -> ApiResult<(StatusCode, ApiJson<OrderView>)> {
    if state.stores.data.patient(caller.account_id, req.patient_id).await?.is_none() {
        return Err(ApiError::not_found("patient"));
    }
    let mut ids = Vec::with_capacity(req.fee_item_ids.len());
    for (n, s) in req.fee_item_ids.iter().enumerate() {
        ids.push(FeeItemId::parse(s).map_err(|_| ApiError::OutOfRange {
            field: format!("fee_item_ids[{n}]"),
            message: "not a fee item id".into(),
        })?);
    }
    let order = state
        .actors
        .create_fee_order(state.stores.data.as_ref(), &state.events, caller.account_id, req.patient_id, &ids)
        .await?;
    Ok((StatusCode::CREATED, ApiJson(order_view(&state, &order))))
}

/// The caller's orders (registration, fees, top-ups), newest first.
#[utoipa::path(get, path = "/api/v1/me/orders", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = [OrderView]), (status = 401, body = ErrorBody)))]
async fn my_orders(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<Vec<OrderView>>> {
    let mut list = state.stores.data.orders_of_account(caller.account_id).await?;
    list.reverse();
    Ok(ApiJson(list.iter().map(|o| order_view(&state, o)).collect()))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlipayPayRequest {
    /// The payer's Alipay open id (the mini-program's `my.getAuthCode` login): the mini-program
    /// flow. Without it, the H5 cashier URL.
    #[serde(default)]
    pub buyer_open_id: Option<String>,
    /// H5: where Alipay sends the browser back (an http(s) URL).
    #[serde(default)]
    pub return_url: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlipayPayView {
    pub out_trade_no: String,
    /// The mini-program flow: pass to `my.tradePay({ tradeNO })`.
    pub trade_no: Option<String>,
    /// The H5 flow: open in the payer's browser.
    pub pay_url: Option<String>,
}

/// Pays an unpaid order by Alipay: the trade for `my.tradePay` (with `buyer_open_id`) or the H5
/// cashier URL. An open WeChat Pay trade of the order is closed first, so it cannot be paid twice.
#[utoipa::path(post, path = "/api/v1/orders/{id}/alipay", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)), request_body = AlipayPayRequest,
    responses((status = 200, body = AlipayPayView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn alipay_pay(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<AlipayPayRequest>,
) -> ApiResult<ApiJson<AlipayPayView>> {
    own_stored_order(&state, &caller, id).await?;
    let bounded = |s: &Option<String>, max: usize| s.as_ref().is_none_or(|s| !s.is_empty() && s.len() <= max);
    if !bounded(&req.buyer_open_id, 128) {
        return Err(ApiError::OutOfRange { field: "buyer_open_id".into(), message: "1 to 128 characters".into() });
    }
    if !bounded(&req.return_url, 512) || req.return_url.as_ref().is_some_and(|u| !u.starts_with("http")) {
        return Err(ApiError::OutOfRange { field: "return_url".into(), message: "an http(s) URL".into() });
    }
    let p = state.actors.alipay_pay(id, req.buyer_open_id, req.return_url).await?;
    Ok(ApiJson(AlipayPayView { out_trade_no: p.out_trade_no, trade_no: p.trade_no, pay_url: p.pay_url }))
}

/// Alipay's notification endpoint (`notify_url`, form-encoded): verified with Alipay's public key
/// (signature, app_id, seller, amounts), checked against the order (out_trade_no, total_amount),
/// handled once by the order's actor, answered `success` once stored; anything else answers
/// `failure`, and Alipay delivers it again.
#[utoipa::path(post, path = "/api/v1/payments/alipay/notify", tag = "payments",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "Alipay's signed notification, read as raw bytes"),
    responses((status = 200, body = String, content_type = "text/plain", description = "`success` when handled, `failure` otherwise")))]
async fn alipay_notify(State(state): State<AppState>, RawBody(body): RawBody) -> Response {
    let answer = |ok: bool| (StatusCode::OK, if ok { NOTIFY_ACK } else { NOTIFY_NACK }).into_response();
    let Some(client) = state.alipay.as_ref() else { return answer(false) };
    let n = match client.parse_notification(&body) {
        Ok(n) => n,
        Err(e) => {
            metrics::counter!("payment_notifications_total", "outcome" => "rejected").increment(1);
            tracing::warn!(error = %e, "rejected an Alipay notification");
            return answer(false);
        }
    };
    let Some(order_id) = hospital_domain::order::Order::id_of_out_trade_no(&n.out_trade_no) else {
        return answer(false);
    };
    let order = match state.stores.data.order(order_id).await {
        Ok(Some(o)) => o,
        _ => return answer(false),
    };
    // The trade's amount is what was asked of Alipay: the cash part.
    let due = order.trade(hospital_domain::ledger::Channel::Alipay).map(|t| t.amount).unwrap_or(order.cash_due());
    if let Err(e) = n.check_order(&order.out_trade_no(), due) {
        metrics::counter!("payment_notifications_total", "outcome" => "rejected").increment(1);
        tracing::warn!(order = %order_id, error = %e, "an Alipay notification does not match its order");
        return answer(false);
    }
    match state.actors.alipay_notified(order_id, n).await {
        Ok(_) => answer(true),
        Err(e) => {
            tracing::warn!(order = %order_id, error = %e, "an Alipay notification was not handled");
            answer(false)
        }
    }
}
