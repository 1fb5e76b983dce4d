//! Managing canned replies (快捷回复, CS-2): each agent keeps their own (`chat.agent`: only their
//! own, another agent's is 404), and a group's shared ones need `chat.admin`. Templates may use
//! `{patient_name}`, `{agent_name}` and `{group}`; they are filled in per conversation by
//! `GET /api/v1/chat/agent/conversations/{id}/canned` (`domain::chat::canned::render`), as the
//! seeded ones are. Every change is audited (`chat.canned_put`, `chat.canned_delete`); listing
//! them is a routine console read (`permit_quiet`: no patient data in it).

use axum::extract::State;
use axum::http::StatusCode;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::chat::canned::{CannedReply, CannedScope};
use hospital_domain::chat::GroupCode;
use hospital_domain::CannedReplyId;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::{permit, permit_quiet};
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, StaffCaller};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    use Permission::{ChatAdmin, ChatAgent};
    OpenApiRouter::new()
        .routes(permit_quiet(ChatAgent, routes!(mine)))
        .routes(permit(ChatAgent, routes!(create_mine)))
        .routes(permit_quiet(ChatAgent, routes!(of_group)))
        .routes(permit(ChatAdmin, routes!(create_for_group)))
        .routes(permit(ChatAgent, routes!(update, remove)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCanned {
    /// What the agent picks it by: one line, up to 40 characters.
    pub title: String,
    /// Up to 1000 characters; `{patient_name}`, `{agent_name}`, `{group}` are filled in.
    pub template: String,
}

/// The caller's own canned replies.
#[utoipa::path(get, path = "/api/v1/chat/canned/mine", tag = "chat-staff", security(("bearer" = [])),
    responses((status = 200, body = Vec<CannedReply>), (status = 403, body = ErrorBody)))]
async fn mine(State(state): State<AppState>, caller: StaffCaller) -> ApiResult<ApiJson<Vec<CannedReply>>> {
    Ok(ApiJson(state.stores.data.canned_replies(&CannedScope::Agent { agent: caller.staff_id }).await?))
}

async fn save(state: &AppState, audit: &StaffAudit, reply: CannedReply) -> ApiResult<CannedReply> {
    audit.record(audit.event("chat.canned_put", Target::new("canned_reply", reply.id)?)?).await?;
    state.stores.data.put_canned_reply(&reply).await?;
    Ok(reply)
}

/// Adds one of the caller's own canned replies. Audited (`chat.canned_put`).
#[utoipa::path(post, path = "/api/v1/chat/canned/mine", tag = "chat-staff", security(("bearer" = [])),
    request_body = PutCanned,
    responses((status = 201, body = CannedReply), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_mine(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiJson(req): ApiJson<PutCanned>,
) -> ApiResult<(StatusCode, ApiJson<CannedReply>)> {
    let scope = CannedScope::Agent { agent: audit.caller.staff_id };
    let reply = CannedReply::new(CannedReplyId::new(), scope, &req.title, &req.template)?;
    Ok((StatusCode::CREATED, ApiJson(save(&state, &audit, reply).await?)))
}

async fn known_group(state: &AppState, code: &str) -> ApiResult<GroupCode> {
    let code = GroupCode::parse(code).map_err(|_| ApiError::not_found("group"))?;
    if state.stores.data.chat_groups().await?.iter().any(|g| g.code == code) {
        Ok(code)
    } else {
        Err(ApiError::not_found("group"))
    }
}

/// A group's shared canned replies: for its agents, supervisors and chat admins.
#[utoipa::path(get, path = "/api/v1/chat/canned/groups/{code}", tag = "chat-staff", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = Vec<CannedReply>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn of_group(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<Vec<CannedReply>>> {
    let code = known_group(&state, &code).await?;
    let wide = caller.holds(&state, Permission::ChatAdmin) || caller.holds(&state, Permission::ChatSupervise);
    let member = state.stores.data.chat_agent(caller.staff_id).await?.is_some_and(|a| a.groups.contains(&code));
    if !wide && !member {
        return Err(ApiError::Forbidden("not an agent of this group".into()));
    }
    Ok(ApiJson(state.stores.data.canned_replies(&CannedScope::Group { group: code }).await?))
}

/// Adds a canned reply shared by a group's agents. Audited (`chat.canned_put`).
#[utoipa::path(post, path = "/api/v1/chat/canned/groups/{code}", tag = "chat-staff", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PutCanned,
    responses((status = 201, body = CannedReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_for_group(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<PutCanned>,
) -> ApiResult<(StatusCode, ApiJson<CannedReply>)> {
    let group = known_group(&state, &code).await?;
    let reply = CannedReply::new(CannedReplyId::new(), CannedScope::Group { group }, &req.title, &req.template)?;
    Ok((StatusCode::CREATED, ApiJson(save(&state, &audit, reply).await?)))
}

/// The reply if the caller may change it: their own (another agent's is 404, never says it
/// exists), or a group's if they hold `chat.admin` (403 otherwise).
async fn changeable(state: &AppState, caller: &StaffCaller, id: CannedReplyId) -> ApiResult<CannedReply> {
    let r = state.stores.data.canned_reply(id).await?.ok_or_else(|| ApiError::not_found("canned reply"))?;
    match &r.scope {
        CannedScope::Agent { agent } if *agent == caller.staff_id => Ok(r),
        CannedScope::Agent { .. } => Err(ApiError::not_found("canned reply")),
        CannedScope::Group { .. } if caller.holds(state, Permission::ChatAdmin) => Ok(r),
        CannedScope::Group { .. } => {
            Err(ApiError::Forbidden("a group's canned replies need the permission chat.admin".into()))
        }
    }
}

/// Changes a canned reply's title and template (its scope stays). Audited (`chat.canned_put`).
#[utoipa::path(put, path = "/api/v1/chat/canned/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = CannedReplyId, Path)), request_body = PutCanned,
    responses((status = 200, body = CannedReply), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<CannedReplyId>,
    ApiJson(req): ApiJson<PutCanned>,
) -> ApiResult<ApiJson<CannedReply>> {
    let old = changeable(&state, &audit.caller, id).await?;
    let reply = CannedReply::new(id, old.scope, &req.title, &req.template)?;
    Ok(ApiJson(save(&state, &audit, reply).await?))
}

/// Removes a canned reply. Audited (`chat.canned_delete`).
#[utoipa::path(delete, path = "/api/v1/chat/canned/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = CannedReplyId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn remove(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<CannedReplyId>,
) -> ApiResult<StatusCode> {
    changeable(&state, &audit.caller, id).await?;
    audit.record(audit.event("chat.canned_delete", Target::new("canned_reply", id)?)?).await?;
    state.stores.data.delete_canned_reply(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
