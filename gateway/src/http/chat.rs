//! Customer-service chat, the patient's side (CS-1, CS-3): the service groups, opening a
//! conversation, sending text, reading the history (paged by `seq`), read marks, closing, the
//! rating. The work happens in the conversation's actor (the only writer) and the group's
//! dispatcher actor; live updates go out as personal events (`conversation`, `chat_message`,
//! `chat_read`, `chat_queue` with the place in line and the estimated wait). A patient sees
//! only their own conversations: anything else is 404.

use axum::extract::State;
use chrono::{DateTime, Utc};
use hospital_actors::{ChatFailure, Party};
use hospital_domain::chat::conversation::{
    ChatError, ChatMessage, Conversation, ConversationStatus, MessageBody, Rating,
};
use hospital_domain::chat::dispatcher::{ChatQueuePosition, DispatchError};
use hospital_domain::chat::{AgentRef, GroupCode, GroupKey};
use hospital_domain::{ConversationId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::{ChatScore, ChatSeq, ListLimit, ListQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(groups))
        .routes(routes!(open, mine))
        .routes(routes!(one))
        .routes(routes!(messages, send))
        .routes(routes!(read))
        .routes(routes!(typing))
        .routes(routes!(close))
        .routes(routes!(rate))
}

impl From<ChatFailure> for ApiError {
    fn from(e: ChatFailure) -> Self {
        let conflict =
            |code: &'static str, e: &dyn std::fmt::Display| ApiError::Conflict { code, message: e.to_string() };
        match e {
            ChatFailure::NoSuchConversation => ApiError::not_found("conversation"),
            ChatFailure::NoSuchGroup(g) => ValidationError::new("group", format!("no service group {g}")).into(),
            ChatFailure::Rule(ChatError::Invalid(v)) => v.into(),
            ChatFailure::Rule(r @ ChatError::NotAllowed { .. }) => conflict("conversation_state", &r),
            ChatFailure::Rule(r @ ChatError::NotAssignedAgent) => ApiError::Forbidden(r.to_string()),
            ChatFailure::Rule(r @ ChatError::AlreadyRated) => conflict("already_rated", &r),
            ChatFailure::Rule(r @ ChatError::NotServed) => conflict("not_served", &r),
            ChatFailure::Rule(r @ (ChatError::SameAgent | ChatError::SameGroup)) => conflict("same_target", &r),
            ChatFailure::Rule(r @ ChatError::ReadBeyondLast { .. }) => {
                ValidationError::new("seq", r.to_string()).into()
            }
            ChatFailure::Dispatch(DispatchError::Invalid(v)) => v.into(),
            ChatFailure::Dispatch(DispatchError::UnknownAgent(_)) => {
                ValidationError::new("agent", "not an agent of this group").into()
            }
            ChatFailure::Dispatch(r @ (DispatchError::AgentNotOnline | DispatchError::AgentFull { .. })) => {
                conflict("agent_unavailable", &r)
            }
            ChatFailure::Dispatch(r) => conflict("conversation_state", &r),
            ChatFailure::Unavailable(cause) => {
                tracing::warn!(error = %cause, "chat unavailable");
                ApiError::Unavailable("the chat is busy; try again shortly".into())
            }
        }
    }
}

/// A service group patients can open a conversation in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupView {
    pub code: GroupCode,
    pub name: String,
}

/// The service groups (预约咨询, 缴费与医保, 报告咨询).
#[utoipa::path(get, path = "/api/v1/chat/groups", tag = "chat",
    responses((status = 200, body = Vec<GroupView>)))]
async fn groups(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<GroupView>>> {
    let g = state.stores.data.chat_groups().await?;
    Ok(ApiJson(g.into_iter().map(|g| GroupView { code: g.code, name: g.name }).collect()))
}

/// A conversation as its patient sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    pub id: ConversationId,
    pub group: GroupCode,
    pub status: ConversationStatus,
    /// The agent serving it now (their name is shown when called).
    pub agent: Option<AgentRef>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub last_seq: u64,
    /// How far the patient has read.
    pub patient_read: u64,
    /// How far the serving agent has read (已读).
    pub agent_read: u64,
    /// Closed, served, not yet rated.
    pub can_rate: bool,
    pub rating: Option<Rating>,
    /// The place in the backlog while waiting (CS-3).
    pub queue: Option<ChatQueuePosition>,
}

pub(crate) fn view(c: &Conversation, queue: Option<ChatQueuePosition>) -> ConversationView {
    let agent_read = c.agent.as_ref().and_then(|a| c.agent_read.get(&a.id).copied()).unwrap_or(0);
    ConversationView {
        id: c.id,
        group: c.group.clone(),
        status: c.status,
        agent: c.agent.clone(),
        created_at: c.created_at,
        closed_at: c.closed_at,
        last_seq: c.last_seq,
        patient_read: c.patient_read,
        agent_read,
        can_rate: c.status == ConversationStatus::Closed && c.rating.is_none() && c.last_agent.is_some(),
        rating: c.rating.clone(),
        queue,
    }
}

/// The waiting conversation's place in line, from its group's dispatcher.
pub(crate) async fn place_of(state: &AppState, c: &Conversation) -> Option<ChatQueuePosition> {
    if c.status != ConversationStatus::Waiting {
        return None;
    }
    match state.actors.chat_dispatcher(GroupKey::from(&c.group)).await {
        Ok(v) => v.positions.into_iter().find(|p| p.conversation_id == c.id),
        Err(e) => {
            tracing::warn!(conversation = %c.id, error = %e, "place in line unknown");
            None
        }
    }
}

/// The caller's conversation (404 for another account's).
async fn owned(state: &AppState, caller: &AccountCaller, id: ConversationId) -> ApiResult<Conversation> {
    match hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), id).await? {
        Some(c) if c.account_id == caller.account_id => Ok(c),
        _ => Err(ApiError::not_found("conversation")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenConversation {
    /// The service group's code (`GET /api/v1/chat/groups`).
    pub group: GroupCode,
    /// The first message (optional).
    pub text: Option<String>,
}

/// Opens a conversation: it waits in the group's backlog (its place and estimated wait in
/// `queue`, then pushed as `chat_queue` events) until an agent takes it. Outside the group's
/// service hours: 409 `outside_service_hours` (leave a message instead, `POST /api/v1/chat/tickets`).
#[utoipa::path(post, path = "/api/v1/chat/conversations", tag = "chat", security(("bearer" = [])),
    request_body = OpenConversation,
    responses((status = 200, body = ConversationView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<OpenConversation>,
) -> ApiResult<ApiJson<ConversationView>> {
    if !state.stores.data.chat_groups().await?.iter().any(|g| g.code == req.group) {
        return Err(ValidationError::new("group", format!("no service group {}", req.group)).into());
    }
    crate::http::chat_tickets::refuse_if_closed(&state, &req.group).await?;
    let first = req.text.as_deref().map(MessageBody::text).transpose()?;
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let name = account.profile.name.clone().unwrap_or_else(|| "患者".to_string());
    let id = ConversationId::new();
    let c = state.actors.chat_open(id, caller.account_id, name, req.group, first.clone()).await?;
    crate::http::chat_faq::suggest_on_open(&state, &c, first.as_ref()).await;
    let queue = place_of(&state, &c).await;
    Ok(ApiJson(view(&c, queue)))
}

/// The caller's conversations, newest first.
#[utoipa::path(get, path = "/api/v1/chat/conversations", tag = "chat", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Vec<ConversationView>)))]
async fn mine(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<Vec<ConversationView>>> {
    let limit = q.limit.map_or(50, ListLimit::get);
    let list = state.stores.data.conversations_of_account(caller.account_id, limit).await?;
    let mut out = Vec::with_capacity(list.len());
    for listed in list {
        // A listing shows a conversation as of its last change of state; the row is current.
        if let Some(c) = hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), listed.id).await? {
            out.push(view(&c, None));
        }
    }
    Ok(ApiJson(out))
}

/// One of the caller's conversations, with its place in line while waiting.
#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody)))]
async fn one(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<ConversationView>> {
    let c = owned(&state, &caller, id).await?;
    let queue = place_of(&state, &c).await;
    Ok(ApiJson(view(&c, queue)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Messages after this `seq` (0: from the first).
    pub after: Option<ChatSeq>,
    pub limit: Option<ListLimit>,
}

/// A page of the history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// Image messages carry a fresh `image_link` (see `chat_images`).
    pub messages: Vec<crate::image_links::LinkedMessage>,
    /// Ask again with `after` = this for the next page; None when this was the last.
    pub next_after: Option<u64>,
}

pub(crate) async fn history(state: &AppState, c: &Conversation, q: &HistoryQuery) -> ApiResult<HistoryPage> {
    let after = q.after.map_or(0, ChatSeq::get);
    let limit = q.limit.map_or(50, ListLimit::get);
    let messages = state.stores.data.chat_messages(c.id, after, limit).await?;
    let last = messages.last().map(|m| m.seq);
    let next_after = last.filter(|l| *l < c.last_seq && messages.len() == limit);
    let messages = messages.into_iter().map(|m| crate::image_links::linked(&state.files, m)).collect();
    Ok(HistoryPage { messages, next_after })
}

/// The history in order, `limit` messages after `after` (exact: the same on both sides).
#[utoipa::path(get, path = "/api/v1/chat/conversations/{id}/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn messages(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<HistoryPage>> {
    let c = owned(&state, &caller, id).await?;
    Ok(ApiJson(history(&state, &c, &q).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendText {
    /// 1 to 2000 characters, stored and shown as text (never HTML).
    pub text: String,
}

/// Sends a text message; answered once it is durable, with its `seq`.
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/messages", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = SendText,
    responses((status = 200, body = ChatMessage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn send(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<SendText>,
) -> ApiResult<ApiJson<ChatMessage>> {
    let body = MessageBody::text(&req.text)?;
    owned(&state, &caller, id).await?;
    Ok(ApiJson(state.actors.chat_send(id, Party::Patient(caller.account_id), body).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadUpTo {
    /// Every message up to this one was read.
    pub seq: ChatSeq,
}

/// The read mark after a read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadMark {
    pub seq: u64,
    /// False when the mark was there already.
    pub moved: bool,
}

/// Marks the conversation read up to `seq` (the agent's console shows 已读).
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/read", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = ReadUpTo,
    responses((status = 200, body = ReadMark), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn read(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<ReadUpTo>,
) -> ApiResult<ApiJson<ReadMark>> {
    owned(&state, &caller, id).await?;
    let seq = req.seq.get();
    let r = state.actors.chat_read(id, Party::Patient(caller.account_id), seq).await?;
    Ok(ApiJson(ReadMark { seq, moved: r.is_some() }))
}

/// Closes the conversation (waiting or with an agent).
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/close", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn close(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<ConversationView>> {
    owned(&state, &caller, id).await?;
    let c = state.actors.chat_close(id, Party::Patient(caller.account_id)).await?;
    Ok(ApiJson(view(&c, None)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateConversation {
    pub score: ChatScore,
    /// Up to 500 characters.
    pub comment: Option<String>,
}

/// The satisfaction rating (满意度), once, after a served conversation closed.
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/rating", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = RateConversation,
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rate(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<RateConversation>,
) -> ApiResult<ApiJson<ConversationView>> {
    let rating = Rating::new(req.score.get(), req.comment.as_deref(), Utc::now())?;
    owned(&state, &caller, id).await?;
    let c = state.actors.chat_rate(id, caller.account_id, rating).await?;
    Ok(ApiJson(view(&c, None)))
}

/// The patient is typing: passed on to the serving agent's consoles, never stored, at most once a
/// second per conversation (429 `rate_limited` otherwise). Nothing is passed on while nobody
/// serves the conversation.
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/typing", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn typing(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<axum::http::StatusCode> {
    use hospital_domain::chat::console::{ChatTyping, ConsoleEvent, StaffEvent, Typist};
    let c = owned(&state, &caller, id).await?;
    let Some(agent) = c.agent.filter(|_| c.status == ConversationStatus::Assigned) else {
        return Ok(axum::http::StatusCode::NO_CONTENT);
    };
    if !state.consoles.typing_allowed(id) {
        return Err(ApiError::RateLimited {
            code: "rate_limited",
            message: "typing is passed on at most once a second".into(),
            retry_after: crate::consoles::TYPING_EVERY,
        });
    }
    let event = ConsoleEvent::Typing(ChatTyping { conversation_id: id, who: Typist::Patient });
    hospital_actors::ConsoleBus::send(state.consoles.as_ref(), StaffEvent::agent(agent.id, event));
    Ok(axum::http::StatusCode::NO_CONTENT)
}
