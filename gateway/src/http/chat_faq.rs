//! The customer-service FAQ (常见问题, CS-4): staff with `chat.admin` add, change and remove
//! entries; anyone searches them (Chinese fragments, pinyin initials, abbreviations, as the
//! catalogue is searched: `domain::chat::faq`), before opening a conversation and while waiting;
//! and a patient's first message gets suggestions, answered with the conversation it opened
//! (`GET /api/v1/chat/conversations/{id}/faq`) and pushed into the conversation as a system
//! message while it waits (so the socket and the history both have it).
//!
//! The FAQ is read from the store on each search: it is small (tens of entries), and reading it
//! keeps every node current without an invalidation channel.

use axum::extract::State;
use axum::http::StatusCode;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::chat::conversation::{Conversation, ConversationStatus, MessageBody, Sender};
use hospital_domain::chat::faq::{Faq, FaqEntry};
use hospital_domain::chat::GroupCode;
use hospital_domain::{ConversationId, FaqId};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::ListLimit;

/// How many suggestions a first message gets.
const SUGGESTIONS: usize = 3;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(suggestions))
        .routes(permit(Permission::ChatAdmin, routes!(create)))
        .routes(permit(Permission::ChatAdmin, routes!(update, remove)))
}

async fn faq(state: &AppState) -> ApiResult<Faq> {
    Ok(Faq::new(state.stores.data.faq_entries().await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FaqQuery {
    /// Chinese, pinyin initials (`ybjs` for 医保结算) or an abbreviation; empty: every entry.
    pub q: Option<String>,
    /// A group's code: its entries and those for every group.
    pub group: Option<String>,
    pub limit: Option<ListLimit>,
}

/// Searches the FAQ, best first (no sign-in needed).
#[utoipa::path(get, path = "/api/v1/chat/faq", tag = "chat", params(FaqQuery),
    responses((status = 200, body = Vec<FaqEntry>), (status = 422, body = ErrorBody)))]
async fn search(State(state): State<AppState>, ApiQuery(q): ApiQuery<FaqQuery>) -> ApiResult<ApiJson<Vec<FaqEntry>>> {
    let group = q.group.as_deref().map(GroupCode::parse).transpose()?;
    let limit = q.limit.map_or(20, ListLimit::get);
    let faq = faq(&state).await?;
    let query = q.q.as_deref().map(str::trim).unwrap_or("");
    let found: Vec<FaqEntry> = if query.is_empty() {
        faq.entries()
            .filter(|e| group.is_none() || e.group.is_none() || e.group == group)
            .take(limit)
            .cloned()
            .collect()
    } else {
        faq.search(query, group.as_ref(), limit).into_iter().cloned().collect()
    };
    Ok(ApiJson(found))
}

/// The entries worth suggesting for a conversation's first message.
fn suggest_for(faq: &Faq, c: &Conversation, first: &str) -> Vec<FaqEntry> {
    faq.suggest(first, Some(&c.group), SUGGESTIONS).into_iter().cloned().collect()
}

/// Suggests FAQ entries from a conversation's first message and, while it waits, pushes them
/// into it as a system message (one line per question). Called by the open route; a failure
/// costs the patient only the suggestion, so it is logged, not returned.
pub(crate) async fn suggest_on_open(state: &AppState, c: &Conversation, first: Option<&MessageBody>) {
    let Some(MessageBody::Text { text }) = first else { return };
    if c.status != ConversationStatus::Waiting {
        return;
    }
    let found = match faq(state).await {
        Ok(faq) => suggest_for(&faq, c, text),
        Err(e) => {
            tracing::warn!(conversation = %c.id, error = ?e, "FAQ not read for suggestions");
            return;
        }
    };
    if found.is_empty() {
        return;
    }
    let lines: Vec<String> = found.iter().map(|e| format!("· {}", e.question)).collect();
    let text = format!("在等待客服时，您可以先看看这些常见问题：\n{}", lines.join("\n"));
    let body = match MessageBody::text(&text) {
        Ok(b) => b,
        Err(_) => return,
    };
    if let Err(e) = state.actors.chat_notice(c.id, body).await {
        tracing::warn!(conversation = %c.id, error = %e, "FAQ suggestions not pushed");
    }
}

/// The FAQ entries suggested from the caller's conversation's first message (404 for another
/// account's conversation).
#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/faq", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = Vec<FaqEntry>), (status = 404, body = ErrorBody)))]
async fn suggestions(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<Vec<FaqEntry>>> {
    let c = match state.stores.data.conversation(id).await? {
        Some(c) if c.account_id == caller.account_id => c,
        _ => return Err(ApiError::not_found("conversation")),
    };
    let messages = state.stores.data.chat_messages(id, 0, 5).await?;
    let first = messages.iter().find_map(|m| match (&m.sender, &m.body) {
        (Sender::Patient, MessageBody::Text { text }) => Some(text.clone()),
        _ => None,
    });
    let Some(first) = first else { return Ok(ApiJson(Vec::new())) };
    Ok(ApiJson(suggest_for(&faq(&state).await?, &c, &first)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFaq {
    /// A group's code; none: for every group.
    pub group: Option<GroupCode>,
    /// One line, up to 200 characters.
    pub question: String,
    /// Up to 4000 characters, shown as text.
    pub answer: String,
    /// Words patients use for it that the question does not (up to 20, one line each).
    #[serde(default)]
    pub keywords: Vec<String>,
}

async fn entry(state: &AppState, id: FaqId, req: &PutFaq) -> ApiResult<FaqEntry> {
    if let Some(g) = &req.group {
        if !state.stores.data.chat_groups().await?.iter().any(|k| &k.code == g) {
            return Err(hospital_domain::ValidationError::new("group", format!("no service group {g}")).into());
        }
    }
    let keywords: Vec<&str> = req.keywords.iter().map(String::as_str).collect();
    Ok(FaqEntry::new(id, req.group.clone(), &req.question, &req.answer, &keywords)?)
}

/// Adds an FAQ entry. Audited (`chat.faq_put`).
#[utoipa::path(post, path = "/api/v1/chat/faq", tag = "chat-staff", security(("bearer" = [])),
    request_body = PutFaq,
    responses((status = 201, body = FaqEntry), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<PutFaq>,
) -> ApiResult<(StatusCode, ApiJson<FaqEntry>)> {
    let e = entry(&state, FaqId::new(), &req).await?;
    audit.record(audit.event("chat.faq_put", Target::new("faq", e.id)?)?).await?;
    state.stores.data.put_faq(&e).await?;
    Ok((StatusCode::CREATED, ApiJson(e)))
}

async fn existing(state: &AppState, id: FaqId) -> ApiResult<()> {
    if state.stores.data.faq_entries().await?.iter().any(|e| e.id == id) {
        Ok(())
    } else {
        Err(ApiError::not_found("faq entry"))
    }
}

/// Changes an FAQ entry. Audited (`chat.faq_put`).
#[utoipa::path(put, path = "/api/v1/chat/faq/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = FaqId, Path)), request_body = PutFaq,
    responses((status = 200, body = FaqEntry), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<FaqId>,
    ApiJson(req): ApiJson<PutFaq>,
) -> ApiResult<ApiJson<FaqEntry>> {
    existing(&state, id).await?;
    let e = entry(&state, id, &req).await?;
    audit.record(audit.event("chat.faq_put", Target::new("faq", id)?)?).await?;
    state.stores.data.put_faq(&e).await?;
    Ok(ApiJson(e))
}

/// Removes an FAQ entry. Audited (`chat.faq_delete`).
#[utoipa::path(delete, path = "/api/v1/chat/faq/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = FaqId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<FaqId>,
) -> ApiResult<StatusCode> {
    existing(&state, id).await?;
    audit.record(audit.event("chat.faq_delete", Target::new("faq", id)?)?).await?;
    state.stores.data.delete_faq(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
