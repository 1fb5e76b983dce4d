//! Service hours and leave-a-message tickets (留言, CS-4). Staff with `chat.admin` set a group's
//! hours (local wall-clock spans in the hospital's zone, `domain::chat::service_hours`; the
//! instants compared are UTC). Outside them a patient who opens a conversation is refused with
//! 409 `outside_service_hours` (the message says when the group opens and that a message can be
//! left): a mini-program asks `GET /api/v1/chat/groups/{code}/hours` first to show the form
//! instead of the chat, and the refusal covers a client that did not. Creating a ticket in the
//! open route instead would answer one route with two shapes, and a patient might not want their
//! first line left as a message. The patient then leaves a message (`POST /api/v1/chat/tickets`),
//! which the group's agents list oldest first and answer once; the answer reaches the patient's
//! message centre and live socket (the ticket's actor writes both with the ticket, see
//! `hospital_actors::ticket`). The patient lists their tickets and closes (withdraws) one.
//!
//! Who answers: an agent of the ticket's group, or a holder of `chat.supervise`; another agent is
//! refused (403). Two agents answering at once are serialised by the ticket's actor: the second
//! gets 409 `ticket_state`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use hospital_actors::{TicketFailure, TicketParty};
use hospital_domain::access::Permission;
use hospital_domain::audit::{Outcome, Target};
use hospital_domain::chat::service_hours::ServiceHours;
use hospital_domain::chat::ticket::{Ticket, TicketError};
use hospital_domain::chat::{GroupCode, ServiceGroup};
use hospital_domain::{TicketId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery, StaffCaller};
use crate::state::AppState;
use crate::validate::ListLimit;
use crate::validate::ListQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hours))
        .routes(permit(Permission::ChatAdmin, routes!(put_hours)))
        .routes(routes!(leave, mine))
        .routes(routes!(one))
        .routes(routes!(close))
        .routes(permit(Permission::ChatAgent, routes!(open_tickets)))
        .routes(permit(Permission::ChatAgent, routes!(answer)))
}

impl From<TicketFailure> for ApiError {
    fn from(e: TicketFailure) -> Self {
        match e {
            TicketFailure::NoSuchTicket => ApiError::not_found("ticket"),
            TicketFailure::Rule(TicketError::Invalid(v)) => v.into(),
            TicketFailure::Rule(r @ TicketError::NotAllowed(_)) => {
                ApiError::Conflict { code: "ticket_state", message: r.to_string() }
            }
            TicketFailure::Unavailable(cause) => {
                tracing::warn!(error = %cause, "tickets unavailable");
                ApiError::Unavailable("the chat is busy; try again shortly".into())
            }
        }
    }
}

/// A group's service hours and whether it answers now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupHours {
    pub code: GroupCode,
    pub name: String,
    /// Local spans per weekday (`{"mon": ["08:00-12:00"], ..., "closed_on": ["2027-02-06"]}`).
    #[schema(value_type = Object)]
    pub hours: ServiceHours,
    /// Agents answer now; when false, leave a message (`POST /api/v1/chat/tickets`).
    pub open_now: bool,
    /// When it next opens (now when open; None if not within a year).
    pub next_opening: Option<DateTime<Utc>>,
    /// The same in the hospital's zone, as shown to patients.
    pub next_opening_local: Option<String>,
}

fn hours_of(state: &AppState, g: ServiceGroup, now: DateTime<Utc>) -> GroupHours {
    let next = g.hours.next_opening(&state.zone, now);
    GroupHours {
        open_now: g.hours.is_open(&state.zone, now),
        next_opening: next,
        next_opening_local: next.map(|t| state.zone.show(t)),
        code: g.code,
        name: g.name,
        hours: g.hours,
    }
}

async fn group(state: &AppState, code: &GroupCode) -> ApiResult<Option<ServiceGroup>> {
    Ok(state.stores.data.chat_groups().await?.into_iter().find(|g| &g.code == code))
}

/// Refuses to open a conversation in `code` outside its service hours (409
/// `outside_service_hours`, saying when it opens and that a message can be left). Called by the
/// open route.
pub(crate) async fn refuse_if_closed(state: &AppState, code: &GroupCode) -> ApiResult<()> {
    let Some(g) = group(state, code).await? else { return Ok(()) };
    let h = hours_of(state, g, Utc::now());
    if h.open_now {
        return Ok(());
    }
    let when = match &h.next_opening_local {
        Some(t) => format!("下次服务时间 {t}"),
        None => "暂无服务时间".to_string(),
    };
    Err(ApiError::Conflict {
        code: "outside_service_hours",
        message: format!(
            "{}当前不在服务时间（{when}），您可以留言（POST /api/v1/chat/tickets），客服上班后答复",
            h.name
        ),
    })
}

/// A group's service hours and whether it answers now (a client shows the chat or the
/// leave-a-message form from `open_now`).
#[utoipa::path(get, path = "/api/v1/chat/groups/{code}/hours", tag = "chat",
    params(("code" = String, Path)),
    responses((status = 200, body = GroupHours), (status = 404, body = ErrorBody)))]
async fn hours(State(state): State<AppState>, ApiPath(code): ApiPath<String>) -> ApiResult<ApiJson<GroupHours>> {
    let code = GroupCode::parse(&code).map_err(|_| ApiError::not_found("group"))?;
    let g = group(&state, &code).await?.ok_or_else(|| ApiError::not_found("group"))?;
    Ok(ApiJson(hours_of(&state, g, Utc::now())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutHours {
    /// Local spans per weekday, in the hospital's zone: `{"mon": ["08:00-12:00", "13:30-17:30"],
    /// ..., "closed_on": ["2027-02-06"]}`; a missing day is closed; `24:00` ends at midnight.
    #[schema(value_type = Object)]
    pub hours: ServiceHours,
}

/// Sets a group's service hours. Audited (`chat.hours_put`).
#[utoipa::path(put, path = "/api/v1/chat/groups/{code}/hours", tag = "chat-staff", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PutHours,
    responses((status = 200, body = GroupHours), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_hours(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<PutHours>,
) -> ApiResult<ApiJson<GroupHours>> {
    let code = GroupCode::parse(&code).map_err(|_| ApiError::not_found("group"))?;
    let mut g = group(&state, &code).await?.ok_or_else(|| ApiError::not_found("group"))?;
    g.hours = req.hours;
    audit.record(audit.event("chat.hours_put", Target::new("chat_group", &code)?)?).await?;
    state.stores.data.put_chat_group(&g).await?;
    Ok(ApiJson(hours_of(&state, g, Utc::now())))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaveMessage {
    /// The service group's code.
    pub group: GroupCode,
    /// 1 to 2000 characters, stored and shown as text.
    pub text: String,
}

/// Leaves a message for a group (留言): a ticket its agents answer later, the answer arriving in
/// the message centre (`system_notice`, `related` = `ticket:<id>`) and as live events `message`
/// and `ticket`.
#[utoipa::path(post, path = "/api/v1/chat/tickets", tag = "chat", security(("bearer" = [])),
    request_body = LeaveMessage,
    responses((status = 200, body = Ticket), (status = 422, body = ErrorBody)))]
async fn leave(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<LeaveMessage>,
) -> ApiResult<ApiJson<Ticket>> {
    if group(&state, &req.group).await?.is_none() {
        return Err(ValidationError::new("group", format!("no service group {}", req.group)).into());
    }
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let name = account.profile.name.clone().unwrap_or_else(|| "患者".to_string());
    let id = TicketId::new();
    let t = Ticket::leave(id, caller.account_id, &name, req.group, &req.text, Vec::new(), Utc::now())?;
    Ok(ApiJson(state.actors.ticket_leave(id, t).await?))
}

/// The caller's tickets, newest first.
#[utoipa::path(get, path = "/api/v1/chat/tickets", tag = "chat", security(("bearer" = [])),
    params(ListQuery), responses((status = 200, body = Vec<Ticket>)))]
async fn mine(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<Vec<Ticket>>> {
    let limit = q.limit.map_or(50, ListLimit::get);
    Ok(ApiJson(state.stores.data.tickets_of_account(caller.account_id, limit).await?))
}

/// The caller's ticket (404 for another account's).
async fn owned(state: &AppState, caller: &AccountCaller, id: TicketId) -> ApiResult<Ticket> {
    match state.actors.ticket(id).await? {
        Some(t) if t.account_id == caller.account_id => Ok(t),
        _ => Err(ApiError::not_found("ticket")),
    }
}

/// One of the caller's tickets, with its answer.
#[utoipa::path(get, path = "/api/v1/chat/tickets/{id}", tag = "chat", security(("bearer" = [])),
    params(("id" = TicketId, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
async fn one(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<TicketId>,
) -> ApiResult<ApiJson<Ticket>> {
    Ok(ApiJson(owned(&state, &caller, id).await?))
}

/// Closes the caller's ticket: withdraws it while open, or is done with the answer.
#[utoipa::path(post, path = "/api/v1/chat/tickets/{id}/close", tag = "chat", security(("bearer" = [])),
    params(("id" = TicketId, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn close(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<TicketId>,
) -> ApiResult<ApiJson<Ticket>> {
    owned(&state, &caller, id).await?;
    Ok(ApiJson(state.actors.ticket_close(id, TicketParty::Patient(caller.account_id)).await?))
}

/// The groups whose tickets the caller answers: their own (none if they are not set up as an
/// agent yet), or every group for a supervisor.
async fn answerable(state: &AppState, caller: &StaffCaller) -> ApiResult<Vec<GroupCode>> {
    if caller.holds(state, Permission::ChatSupervise) {
        return Ok(state.stores.data.chat_groups().await?.into_iter().map(|g| g.code).collect());
    }
    Ok(state.stores.data.chat_agent(caller.staff_id).await?.map(|a| a.groups).unwrap_or_default())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketsQuery {
    /// One group (default: every group the caller answers).
    pub group: Option<String>,
}

/// The open tickets of the caller's groups (or of one), oldest first. Audited
/// (`chat.tickets_read`): they hold what patients wrote.
#[utoipa::path(get, path = "/api/v1/chat/agent/tickets", tag = "chat-staff", security(("bearer" = [])),
    params(TicketsQuery),
    responses((status = 200, body = Vec<Ticket>), (status = 403, body = ErrorBody)))]
async fn open_tickets(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiQuery(q): ApiQuery<TicketsQuery>,
) -> ApiResult<ApiJson<Vec<Ticket>>> {
    let mut groups = answerable(&state, &audit.caller).await?;
    if let Some(g) = q.group {
        let g = GroupCode::parse(&g)?;
        if !groups.contains(&g) {
            return Err(ApiError::Forbidden("not an agent of this group".into()));
        }
        groups = vec![g];
    }
    let mut out = Vec::new();
    for g in &groups {
        out.extend(state.stores.data.open_tickets_of_group(g).await?);
    }
    // Oldest first across groups too (ids are time-ordered, so ties keep their order).
    out.sort_by_key(|t| (t.created_at, t.id));
    let target = Target::new("chat_groups", groups.iter().map(GroupCode::as_str).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|_| Target::new("chat_groups", "*").expect("a valid target"));
    audit.record(audit.event("chat.tickets_read", target)?).await?;
    Ok(ApiJson(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerTicket {
    /// 1 to 2000 characters.
    pub text: String,
}

/// Answers an open ticket of one of the caller's groups, once (409 `ticket_state` after the
/// first answer, also when two agents race). Audited (`chat.ticket_answer`).
#[utoipa::path(post, path = "/api/v1/chat/agent/tickets/{id}/answer", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = TicketId, Path)), request_body = AnswerTicket,
    responses((status = 200, body = Ticket), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn answer(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<TicketId>,
    ApiJson(req): ApiJson<AnswerTicket>,
) -> ApiResult<ApiJson<Ticket>> {
    let t = state.actors.ticket(id).await?.ok_or_else(|| ApiError::not_found("ticket"))?;
    if !answerable(&state, &audit.caller).await?.contains(&t.group) {
        return Err(ApiError::Forbidden("not an agent of this ticket's group".into()));
    }
    let staff = state.stores.data.staff(audit.caller.staff_id).await?.ok_or(ApiError::InvalidToken)?;
    let agent = hospital_domain::chat::AgentRef { id: staff.id, name: staff.name };
    let group_name = group(&state, &t.group).await?.map_or_else(|| t.group.to_string(), |g| g.name);
    let answered = state.actors.ticket_answer(id, agent, req.text, group_name).await;
    // Recorded with its outcome before the caller hears of it: a refused second answer is in the
    // log as `failed`, the one that counted as `success`.
    let outcome = if answered.is_ok() { Outcome::Success } else { Outcome::Failed };
    let event =
        audit.event("chat.ticket_answer", Target::new("ticket", id)?)?.concerning(t.account_id, None).outcome(outcome);
    audit.record(event).await?;
    Ok(ApiJson(answered?))
}
