//! The account balance (账户余额, PAY-5, PAY-6): the balance, in fen, from the ledger; top-up
//! orders, paid by WeChat Pay or Alipay through the order's ordinary pay routes and credited
//! once by the order's payment actor however often the provider notifies; an order paid from the
//! balance (never below zero: `insufficient_balance`); a top-up given back to where it came
//! from; the balance's transactions, newest first, by kind, paged by their `seq`, and one
//! transaction's detail. Every movement is pushed live on the account's sockets as `balance`.
//! Finance staff read an account's balance and transactions (`payments.read`, audited).
//!
//! Only the caller's own account: another account's order or transaction is 404, and staff
//! tokens are refused on the patient routes.

use axum::extract::State;
use axum::http::StatusCode;
use hospital_domain::audit::Target;
use hospital_domain::ledger::{BalanceEntry, Channel, LedgerAccount, MovementKind};
use hospital_domain::{AccountId, Fen, OrderId, Permission};
use hospital_store::BalancePage;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::http::booking::{order_view, OrderView};
use crate::http::payments::own_stored_order;
use crate::state::AppState;
use crate::validate::Money;

/// The most transactions one page lists.
pub const MAX_PAGE: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(my_balance))
        .routes(routes!(top_up))
        .routes(routes!(refund_top_up))
        .routes(routes!(my_transactions))
        .routes(routes!(my_transaction))
        .routes(routes!(pay_from_balance))
        .routes(permit(Permission::PaymentsRead, routes!(account_balance)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    /// In fen.
    pub balance: i64,
}

/// One transaction of the balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransactionView {
    /// Its place on the balance (1 = the first movement): the list's order and paging cursor.
    pub seq: u64,
    /// The movement's idempotency key: the detail route's id.
    pub key: String,
    /// `top_up`, `payment` or `refund`.
    pub kind: MovementKind,
    /// 充值, 缴费, 退费.
    pub kind_label: String,
    /// Into the balance when positive, out of it when negative, in fen.
    pub amount: i64,
    /// The balance after it, in fen.
    pub balance_after: i64,
    /// In the hospital's zone.
    pub at: String,
    pub order_id: Option<OrderId>,
    pub description: String,
}

fn transaction_view(state: &AppState, e: &BalanceEntry) -> TransactionView {
    TransactionView {
        seq: e.seq,
        key: e.key.clone(),
        kind: e.kind,
        kind_label: e.kind.label().into(),
        amount: e.amount,
        balance_after: e.balance_after,
        at: state.zone.show(e.at),
        order_id: e.order_id,
        description: e.description.clone(),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransactionPage {
    pub transactions: Vec<TransactionView>,
    /// Pass as `before` for the next (older) page; none when this is the last.
    pub next_before: Option<u64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// Only this kind: `top_up`, `payment` or `refund`.
    #[serde(default)]
    pub kind: Option<MovementKind>,
    /// Only transactions older than this `seq` (the previous page's `next_before`).
    #[serde(default)]
    pub before: Option<u64>,
    /// 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

async fn page_of(state: &AppState, account: AccountId, q: TransactionQuery) -> ApiResult<TransactionPage> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::OutOfRange { field: "limit".into(), message: format!("1 to {MAX_PAGE}") });
    }
    let page = BalancePage { before: q.before, kind: q.kind, limit: limit + 1 };
    let mut entries = state.stores.data.balance_page(account, page).await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_before = more.then(|| entries.last().map(|e| e.seq)).flatten();
    Ok(TransactionPage { transactions: entries.iter().map(|e| transaction_view(state, e)).collect(), next_before })
}

/// The caller's balance, in fen (0 before any movement).
#[utoipa::path(get, path = "/api/v1/me/balance", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = BalanceView)))]
async fn my_balance(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<BalanceView>> {
    Ok(ApiJson(BalanceView { balance: state.stores.data.balance(caller.account_id).await? }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// In fen: 1 to 500000 (¥5,000.00).
    #[schema(value_type = u64)]
    pub amount: Money,
}

/// A top-up order (pushed live as `created`): pay it through its `pay_with_wechat` or
/// `pay_with_alipay` route; the balance is credited once the provider's payment is in, once.
#[utoipa::path(post, path = "/api/v1/me/balance/top-ups", tag = "me", security(("bearer" = [])),
    request_body = TopUpRequest,
    responses((status = 201, body = OrderView), (status = 422, body = ErrorBody)))]
async fn top_up(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<TopUpRequest>,
) -> ApiResult<(StatusCode, ApiJson<OrderView>)> {
    let amount = req.amount.fen();
    if amount == Fen::ZERO || amount > hospital_actors::payment::MAX_TOP_UP {
        return Err(ApiError::OutOfRange {
            field: "amount".into(),
            message: format!("1 to {} fen", hospital_actors::payment::MAX_TOP_UP.get()),
        });
    }
    let o = state.actors.create_top_up(state.stores.data.as_ref(), &state.events, caller.account_id, amount).await?;
    Ok((StatusCode::CREATED, ApiJson(order_view(&state, &o))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundTopUp {
    /// Fen to give back; all that is left of the top-up when absent.
    #[serde(default)]
    #[schema(value_type = Option<u64>)]
    pub amount: Option<Money>,
}

/// Gives (part of) a paid top-up back through the channel it came by (退余额): the amount
/// leaves the balance with the request, so only what the balance still holds can go
/// (`insufficient_balance`).
#[utoipa::path(post, path = "/api/v1/me/balance/top-ups/{id}/refund", tag = "me", security(("bearer" = [])),
    params(("id" = OrderId, Path)), request_body = RefundTopUp,
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn refund_top_up(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<RefundTopUp>,
) -> ApiResult<ApiJson<OrderView>> {
    let owned = state.stores.data.order(id).await?.filter(|o| o.account_id == caller.account_id);
    match owned {
        Some(o) if o.kind == hospital_domain::order::OrderKind::TopUp => {}
        _ => return Err(ApiError::not_found("top-up")),
    }
    let amount = req.amount.map(Money::fen);
    if amount == Some(Fen::ZERO) {
        return Err(ApiError::OutOfRange { field: "amount".into(), message: "at least 1 fen".into() });
    }
    let o = state.actors.refund(id, amount, "余额退回".into(), false).await?;
    Ok(ApiJson(order_view(&state, &o)))
}

/// The caller's balance transactions, newest first (in the order they were applied), of one
/// kind when `kind` is given, `limit` at a time; `next_before` pages on.
#[utoipa::path(get, path = "/api/v1/me/balance/transactions", tag = "me", security(("bearer" = [])),
    params(TransactionQuery),
    responses((status = 200, body = TransactionPage), (status = 422, body = ErrorBody)))]
async fn my_transactions(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<TransactionQuery>,
) -> ApiResult<ApiJson<TransactionPage>> {
    Ok(ApiJson(page_of(&state, caller.account_id, q).await?))
}

/// One transaction in detail: where the money came from or went (`channel`), and its order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransactionDetail {
    #[serde(flatten)]
    pub transaction: TransactionView,
    /// The other side: `wechat_pay` or `alipay` for a top-up or a top-up given back; none for a
    /// fee paid from or refunded to the balance.
    pub channel: Option<Channel>,
    pub order: Option<OrderView>,
}

/// One of the caller's balance transactions, by its key (another account's is 404).
#[utoipa::path(get, path = "/api/v1/me/balance/transactions/{key}", tag = "me", security(("bearer" = [])),
    params(("key" = String, Path, description = "the transaction's key")),
    responses((status = 200, body = TransactionDetail), (status = 404, body = ErrorBody)))]
async fn my_transaction(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<ApiJson<TransactionDetail>> {
    if key.is_empty() || key.len() > 128 {
        return Err(ApiError::not_found("transaction"));
    }
    let Some(entry) = state.stores.data.balance_entry(caller.account_id, &key).await? else {
        return Err(ApiError::not_found("transaction"));
    };
    let movement = state.stores.data.movement(&key).await?;
    let channel = movement.as_ref().and_then(|m| {
        m.legs.iter().find_map(|l| match l.account {
            LedgerAccount::Channel(c) => Some(c),
            _ => None,
        })
    });
    let order = match entry.order_id {
        Some(id) => state.stores.data.order(id).await?.filter(|o| o.account_id == caller.account_id),
        None => None,
    };
    Ok(ApiJson(TransactionDetail {
        transaction: transaction_view(&state, &entry),
        channel,
        order: order.map(|o| order_view(&state, &o)),
    }))
}

/// Pays one of the caller's unpaid orders (a fee or registration order without insurance) in
/// full from the balance: the debit and the order becoming paid are one write; 409
/// `insufficient_balance` when the balance is short (nothing taken). Open trades at WeChat Pay
/// or Alipay are closed first, so the order cannot be paid twice.
#[utoipa::path(post, path = "/api/v1/orders/{id}/pay-from-balance", tag = "payments", security(("bearer" = [])),
    params(("id" = OrderId, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn pay_from_balance(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<ApiJson<OrderView>> {
    own_stored_order(&state, &caller, id).await?;
    let o = state.actors.pay_from_balance(id).await?;
    Ok(ApiJson(order_view(&state, &o)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountBalanceView {
    pub account_id: AccountId,
    /// In fen.
    pub balance: i64,
    #[serde(flatten)]
    pub page: TransactionPage,
}

/// An account's balance and transactions (finance staff, `payments.read`; audited as
/// `balance.read`).
#[utoipa::path(get, path = "/api/v1/admin/accounts/{id}/balance", tag = "back office", security(("bearer" = [])),
    params(("id" = AccountId, Path), TransactionQuery),
    responses((status = 200, body = AccountBalanceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn account_balance(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AccountId>,
    ApiQuery(q): ApiQuery<TransactionQuery>,
) -> ApiResult<ApiJson<AccountBalanceView>> {
    if state.stores.data.account(id).await?.is_none() {
        return Err(ApiError::not_found("account"));
    }
    let page = page_of(&state, id, q).await?;
    let balance = state.stores.data.balance(id).await?;
    let event = audit.event("balance.read", Target::new("account", id)?)?.concerning(id, None);
    audit.record(event).await?;
    Ok(ApiJson(AccountBalanceView { account_id: id, balance, page }))
}
