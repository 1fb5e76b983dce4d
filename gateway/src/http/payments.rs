//! Paying for bookings (PAY-4, PAY-6): an order's state, the WeChat Pay parameters for
//! `wx.requestPayment`, and WeChat Pay's notifications (verified and decrypted, each handled
//! once by the order's payment actor). The message centre is in `messages`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hospital_domain::OrderId;
use hospital_integrations::wechatpay::{Notification, RequestPaymentParams};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, RawBody};
use crate::http::booking::{order_view, OrderView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_order)).routes(routes!(wechat_pay)).routes(routes!(wechat_notify))
}

/// The caller's order as stored: 404 for another account's or an unknown id. Every patient route
/// on an order reads it through the store first, so an unknown id never starts an actor.
pub(crate) async fn own_stored_order(
    state: &AppState,
    caller: &AccountCaller,
    id: OrderId,
) -> ApiResult<hospital_domain::order::Order> {
    state
        .stores
        .data
        .order(id)
        .await?
        .filter(|o| o.account_id == caller.account_id)
        .ok_or_else(|| ApiError::not_found("order"))
}

/// The caller's order as its actor holds it (the live state), after `own_stored_order`.
pub(crate) async fn owned_order(
    state: &AppState,
    caller: &AccountCaller,
    id: OrderId,
) -> ApiResult<hospital_domain::order::Order> {
    own_stored_order(state, caller, id).await?;
    Ok(state.actors.order(id).await?)
}

/// One of the caller's orders.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)), responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<ApiJson<OrderView>> {
    let o = owned_order(&state, &caller, id).await?;
    Ok(ApiJson(order_view(&state, &o)))
}

/// What the mini-program passes to `wx.requestPayment` (camelCase keys, `signType` RSA).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayParams {
    pub app_id: String,
    pub time_stamp: String,
    pub nonce_str: String,
    pub package: String,
    pub sign_type: String,
    pub pay_sign: String,
}

impl From<RequestPaymentParams> for PayParams {
    fn from(p: RequestPaymentParams) -> Self {
        Self {
            app_id: p.app_id,
            time_stamp: p.time_stamp,
            nonce_str: p.nonce_str,
            package: p.package,
            sign_type: p.sign_type,
            pay_sign: p.pay_sign,
        }
    }
}

/// Creates the WeChat Pay JSAPI order for an unpaid order and returns the signed
/// `wx.requestPayment` parameters. Calling it again returns parameters for the same prepay order.
#[utoipa::path(post, path = "/api/v1/orders/{id}/wechat-pay", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)), responses((status = 200, body = PayParams), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn wechat_pay(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<ApiJson<PayParams>> {
    owned_order(&state, &caller, id).await?;
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let openid = match account.wechat_openid {
        Some(o) => o,
        // The sandbox accepts any payer; a real payment needs the mini-program's openid.
        None if state.sandbox.is_some() => format!("sandbox-{}", account.id.0.simple()),
        None => {
            return Err(ApiError::Conflict {
                code: "wechat_not_bound",
                message: "log in with WeChat in the mini-program to pay with WeChat Pay".into(),
            })
        }
    };
    let params = state.actors.prepay(id, openid).await?;
    Ok(ApiJson(params.into()))
}

/// WeChat Pay's notification endpoint (`notify_url`): the signature is verified with the platform
/// key and the resource decrypted with the APIv3 key; each notification is handled exactly once.
/// 204 when accepted; any error makes WeChat Pay deliver it again.
#[utoipa::path(post, path = "/api/v1/payments/wechat/notify", tag = "payments",
    request_body(content = String, content_type = "application/json", description = "WeChat Pay's signed notification envelope, read as raw bytes"),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn wechat_notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<StatusCode> {
    let provider =
        state.wechat_pay.as_ref().ok_or_else(|| ApiError::Unavailable("WeChat Pay is not configured".into()))?;
    let n = provider.parse_notification(&headers, &body).map_err(|e| {
        metrics::counter!("payment_notifications_total", "outcome" => "rejected").increment(1);
        tracing::warn!(error = %e, "rejected a WeChat Pay notification");
        ApiError::BadCredentials { code: "notification_rejected", message: "the notification did not verify".into() }
    })?;
    let order_of = |out_trade_no: &str| {
        uuid::Uuid::try_parse(out_trade_no)
            .map(OrderId)
            .map_err(|_| ApiError::BadRequest("unknown out_trade_no".into()))
    };
    match n {
        Notification::Transaction { id, transaction, .. } => {
            let order = order_of(&transaction.out_trade_no)?;
            if state.stores.data.order(order).await?.is_none() {
                return Err(ApiError::BadRequest("unknown out_trade_no".into()));
            }
            state.actors.payment_notified(order, id, transaction).await?;
        }
        Notification::Refund { id, refund, .. } => {
            let order = order_of(&refund.out_trade_no)?;
            if state.stores.data.order(order).await?.is_none() {
                return Err(ApiError::BadRequest("unknown out_trade_no".into()));
            }
            state.actors.refund_notified(order, id, refund).await?;
        }
        Notification::Other { id, event_type } => tracing::info!(%id, %event_type, "ignored a WeChat Pay notification"),
    }
    Ok(StatusCode::NO_CONTENT)
}
