//! The message centre and notification preferences (MSG-1..4): the caller's messages (filtered by
//! category and read state, newest first), one message in full, the unread count, marking one
//! read or unread again or all read, and for
//! each kind of message the channels it goes out by. Every change of the unread count is
//! published as a personal `unread` event (`{"count": n}`), so every open client of the account
//! updates its badge.

use axum::extract::State;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::notify::{KindChannels, MessageCategory, NotificationPreferences};
use hospital_domain::MessageId;
use hospital_store::MessageFilter;
use hospital_store::PendingEvent;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::ListLimit;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(messages))
        .routes(routes!(unread_count))
        .routes(routes!(message))
        .routes(routes!(mark_read))
        .routes(routes!(mark_unread))
        .routes(routes!(mark_all_read))
        .routes(routes!(get_preferences, put_preferences))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessagesQuery {
    /// Only this category: `appointment`, `payment`, `report` or `system`.
    pub category: Option<String>,
    /// Only unread messages (default false).
    pub unread_only: Option<bool>,
    /// At most this many (default 50, at most 200).
    #[param(inline)]
    pub limit: Option<ListLimit>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    /// Unread messages of the caller.
    pub count: usize,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadAll {
    /// How many messages were marked read.
    pub marked: usize,
    /// Unread messages left (0 unless one arrived meanwhile).
    pub count: usize,
}

/// The channels of some kinds of message; kinds not listed keep theirs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    pub kinds: Vec<KindChannels>,
}

/// The caller's messages (booking results, reminders, waitlist offers, clinic stops, payments,
/// reports, notices), newest first.
#[utoipa::path(get, path = "/api/v1/me/messages", tag = "me", security(("bearer" = [])), params(MessagesQuery),
    responses((status = 200, body = [Message]), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn messages(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<MessagesQuery>,
) -> ApiResult<ApiJson<Vec<Message>>> {
    let category = match q.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(MessageCategory::parse(c).ok_or_else(|| {
            ApiError::BadRequest(format!("unknown category {c:?}: appointment, payment, report or system"))
        })?),
    };
    let filter = MessageFilter {
        category,
        unread_only: q.unread_only.unwrap_or(false),
        limit: q.limit.map_or(50, ListLimit::get),
    };
    Ok(ApiJson(state.stores.data.list_messages(caller.account_id, filter).await?))
}

/// How many of the caller's messages are unread.
#[utoipa::path(get, path = "/api/v1/me/messages/unread-count", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody)))]
async fn unread_count(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<UnreadCount>> {
    Ok(ApiJson(UnreadCount { count: state.stores.data.unread_count(caller.account_id).await? }))
}

/// One of the caller's messages in full (404 for another account's).
#[utoipa::path(get, path = "/api/v1/me/messages/{id}", tag = "me", security(("bearer" = [])),
    params(("id" = MessageId, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn message(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<ApiJson<Message>> {
    let m = state.stores.data.message(caller.account_id, id).await?.ok_or_else(|| ApiError::not_found("message"))?;
    Ok(ApiJson(m))
}

/// Marks one of the caller's messages read (again is fine); answers the unread count.
#[utoipa::path(post, path = "/api/v1/me/messages/{id}/read", tag = "me", security(("bearer" = [])),
    params(("id" = MessageId, Path)),
    responses((status = 200, body = UnreadCount), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<ApiJson<UnreadCount>> {
    set_read(&state, &caller, id, true).await
}

/// Marks one of the caller's messages unread again (to come back to it); answers the unread count.
#[utoipa::path(post, path = "/api/v1/me/messages/{id}/unread", tag = "me", security(("bearer" = [])),
    params(("id" = MessageId, Path)),
    responses((status = 200, body = UnreadCount), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn mark_unread(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<MessageId>,
) -> ApiResult<ApiJson<UnreadCount>> {
    set_read(&state, &caller, id, false).await
}

async fn set_read(
    state: &AppState,
    caller: &AccountCaller,
    id: MessageId,
    read: bool,
) -> ApiResult<ApiJson<UnreadCount>> {
    // The live `unread` is written with the change (and counted when it is logged).
    let events = vec![PendingEvent::unread(caller.account_id)];
    if !state.stores.data.set_read(caller.account_id, id, read, &events).await? {
        return Err(ApiError::not_found("message"));
    }
    state.events.durable(events);
    Ok(ApiJson(UnreadCount { count: state.stores.data.unread_count(caller.account_id).await? }))
}

/// Marks every message of the caller read.
#[utoipa::path(post, path = "/api/v1/me/messages/read-all", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = ReadAll), (status = 401, body = ErrorBody)))]
async fn mark_all_read(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<ReadAll>> {
    let events = vec![PendingEvent::unread(caller.account_id)];
    let marked = state.stores.data.mark_all_read(caller.account_id, &events).await?;
    if marked > 0 {
        state.events.durable(events);
    }
    let count = state.stores.data.unread_count(caller.account_id).await?;
    Ok(ApiJson(ReadAll { marked, count }))
}

/// For each kind of message, the channels it goes out by (`in_app`, `sms`, `wechat`); the
/// defaults until the caller changes them.
#[utoipa::path(get, path = "/api/v1/me/notification-preferences", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = NotificationPreferences), (status = 401, body = ErrorBody)))]
async fn get_preferences(
    State(state): State<AppState>,
    caller: AccountCaller,
) -> ApiResult<ApiJson<NotificationPreferences>> {
    Ok(ApiJson(state.stores.data.notification_preferences(caller.account_id).await?))
}

/// Changes the channels of the kinds listed (each kind at most once); answers all of them.
#[utoipa::path(put, path = "/api/v1/me/notification-preferences", tag = "me", security(("bearer" = [])),
    request_body = PreferencesUpdate,
    responses((status = 200, body = NotificationPreferences), (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn put_preferences(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(update): ApiJson<PreferencesUpdate>,
) -> ApiResult<ApiJson<NotificationPreferences>> {
    let mut seen: Vec<MessageKind> = Vec::new();
    for k in &update.kinds {
        if seen.contains(&k.kind) {
            return Err(hospital_domain::ValidationError::new("kinds", "each kind at most once").into());
        }
        seen.push(k.kind);
    }
    Ok(ApiJson(state.actors.set_notification_preferences(caller.account_id, update.kinds).await?))
}
