//! Customer-service chat, the staff side (CS-2): agents' inbox, their groups' backlog and
//! presence, a conversation's history, replies, read marks, transfer and close; admins set up
//! the service groups and the agents (groups, cap). Agents' presence comes from their console
//! socket (`crate::chat`). Every staff action and every read of a patient's conversation is
//! audited. Access: an agent sees the conversations they serve or served and those waiting in
//! their groups' backlogs; admins (supervisors) see all.
//!
//! Routes are guarded by permission (`access::permit`): `chat.agent` for the desk and the
//! conversations, `chat.admin` for groups and agents; `chat.supervise` widens what an agent sees
//! to every group (see `router` for which reads are audited how).

use axum::extract::State;
use hospital_actors::Party;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::chat::console::{AgentConversation, BacklogSummary, GroupPresence};
use hospital_domain::chat::conversation::{ChatMessage, Conversation, ConversationStatus, MessageBody};
use hospital_domain::chat::dispatcher::DEFAULT_CAP;
use hospital_domain::chat::service_hours::ServiceHours;
use hospital_domain::chat::{AgentProfile, GroupCode, GroupKey, ServiceGroup};
use hospital_domain::{ConversationId, StaffId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::{permit, permit_quiet};
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, StaffCaller};
use crate::http::chat::{history, HistoryPage, HistoryQuery, ReadMark, ReadUpTo, SendText};
use crate::state::AppState;
use crate::validate::ChatCap;

pub fn router() -> OpenApiRouter<AppState> {
    use Permission::{ChatAdmin, ChatAgent};
    // Audit: every action and every read of a patient's conversation writes an entry (the
    // handlers' own, naming the patient, or the gate's). The console's routine reads of the
    // agent's own desk (desk, backlog counts, canned replies of a conversation already opened,
    // its read mark, all repeated all day) use `permit_quiet`: refusals and failures are still
    // audited, successes are not, so polling does not flood the log.
    OpenApiRouter::new()
        .routes(permit(ChatAdmin, routes!(put_group)))
        .routes(permit(ChatAdmin, routes!(put_agent)))
        .routes(permit_quiet(ChatAgent, routes!(desk)))
        .routes(permit_quiet(ChatAgent, routes!(group_view)))
        .routes(permit(ChatAgent, routes!(conversation)))
        .routes(permit(ChatAgent, routes!(agent_messages)))
        // A reply is itself the record of who wrote what to whom (the conversation's history, with
        // the agent on each message): a second, audit-log entry per message only doubled each
        // reply's durable writes (docs/benchmarks.md, "Customer-service chat"). Refusals and
        // failures are still audited.
        .routes(permit_quiet(ChatAgent, routes!(reply)))
        .routes(permit_quiet(ChatAgent, routes!(agent_read)))
        .routes(permit(ChatAgent, routes!(agent_close)))
        .routes(permit(ChatAgent, routes!(transfer)))
        .routes(permit_quiet(ChatAgent, routes!(canned)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutGroup {
    /// The name patients see (预约咨询).
    pub name: String,
}

/// Creates or renames a service group (open all day; service hours are not yet settable here).
/// Permission `chat.admin`.
#[utoipa::path(put, path = "/api/v1/chat/groups/{code}", tag = "chat-staff", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = PutGroup,
    responses((status = 200, body = crate::http::chat::GroupView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_group(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(code): ApiPath<String>,
    ApiJson(req): ApiJson<PutGroup>,
) -> ApiResult<ApiJson<crate::http::chat::GroupView>> {
    let code = GroupCode::parse(&code)?;
    let name = hospital_domain::account::parse_name("name", &req.name)?;
    let hours = match state.stores.data.chat_groups().await?.into_iter().find(|g| g.code == code) {
        Some(g) => g.hours,
        None => ServiceHours::always(),
    };
    let group = ServiceGroup { code: code.clone(), name: name.clone(), hours };
    audit.record(audit.event("chat.group_put", Target::new("chat_group", &code)?)?).await?;
    state.stores.data.put_chat_group(&group).await?;
    Ok(ApiJson(crate::http::chat::GroupView { code, name }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutAgent {
    /// The groups they answer in (each must exist).
    pub groups: Vec<GroupCode>,
    /// Concurrent conversations (default 5).
    pub cap: Option<ChatCap>,
}

/// Makes a staff member whose roles hold `chat.agent` a chat agent of `groups` with a cap (default 5). Takes
/// effect in a group when their console next states a presence. Permission `chat.admin`.
#[utoipa::path(put, path = "/api/v1/chat/agents/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = StaffId, Path)), request_body = PutAgent,
    responses((status = 200, body = AgentProfile), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_agent(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<StaffId>,
    ApiJson(req): ApiJson<PutAgent>,
) -> ApiResult<ApiJson<AgentProfile>> {
    let staff = state.stores.data.staff(id).await?.filter(|s| s.active).ok_or_else(|| ApiError::not_found("staff"))?;
    if !state.roles.table().allows(&staff.roles, Permission::ChatAgent) {
        return Err(ValidationError::new("id", "the staff member needs a role with chat.agent").into());
    }
    let known = state.stores.data.chat_groups().await?;
    if let Some(g) = req.groups.iter().find(|g| !known.iter().any(|k| k.code == **g)) {
        return Err(ValidationError::new("groups", format!("no service group {g}")).into());
    }
    let cap = req.cap.map_or(DEFAULT_CAP, ChatCap::get);
    let profile = AgentProfile::new(id, &staff.name, req.groups, cap)?;
    audit.record(audit.event("chat.agent_put", Target::new("staff", id)?)?).await?;
    state.stores.data.put_chat_agent(&profile).await?;
    Ok(ApiJson(profile))
}

/// The caller's agent profile; 404 if they hold the permission but are not set up as an agent
/// of any group yet (nothing of theirs to show, and no refusal of what their role allows).
async fn profile(state: &AppState, caller: &StaffCaller) -> ApiResult<AgentProfile> {
    state
        .stores
        .data
        .chat_agent(caller.staff_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no chat agent profile: no groups are set for you".into()))
}

/// Holds `chat.supervise`: sees every group's conversations and backlog.
pub(crate) fn is_supervisor(state: &AppState, caller: &StaffCaller) -> bool {
    caller.holds(state, Permission::ChatSupervise)
}

/// A group's backlog and agents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GroupDesk {
    pub backlog: BacklogSummary,
    pub presence: GroupPresence,
}

/// An agent's desk: their profile, the conversations they serve, their groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Desk {
    pub agent: AgentProfile,
    pub conversations: Vec<AgentConversation>,
    pub groups: Vec<GroupDesk>,
}

/// The caller's desk (the console's first load, and its reload after a reconnect). Permission `chat.agent`.
#[utoipa::path(get, path = "/api/v1/chat/agent/desk", tag = "chat-staff", security(("bearer" = [])),
    responses((status = 200, body = Desk), (status = 403, body = ErrorBody)))]
async fn desk(State(state): State<AppState>, caller: StaffCaller) -> ApiResult<ApiJson<Desk>> {
    let agent = profile(&state, &caller).await?;
    let mut conversations = Vec::new();
    let mut groups = Vec::new();
    for g in &agent.groups {
        let v = state.actors.chat_dispatcher(GroupKey::from(g)).await?;
        for id in v.held.get(&agent.id).into_iter().flatten() {
            if let Some(c) = hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), *id).await? {
                conversations.push(AgentConversation::of(&c, Some(agent.id)));
            }
        }
        groups.push(GroupDesk { backlog: v.backlog, presence: v.presence });
    }
    Ok(ApiJson(Desk { agent, conversations, groups }))
}

/// A group's backlog and agents: its agents' and supervisors'. Permission
/// `chat.agent`; another group's needs `chat.supervise` too.
#[utoipa::path(get, path = "/api/v1/chat/agent/groups/{code}", tag = "chat-staff", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = GroupDesk), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn group_view(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<ApiJson<GroupDesk>> {
    let code = GroupCode::parse(&code).map_err(|_| ApiError::not_found("group"))?;
    if !is_supervisor(&state, &caller) && !profile(&state, &caller).await?.groups.contains(&code) {
        return Err(ApiError::Forbidden("not an agent of this group".into()));
    }
    if !state.stores.data.chat_groups().await?.iter().any(|g| g.code == code) {
        return Err(ApiError::not_found("group"));
    }
    let v = state.actors.chat_dispatcher(GroupKey::from(&code)).await?;
    Ok(ApiJson(GroupDesk { backlog: v.backlog, presence: v.presence }))
}

/// The conversation if the caller may see it: one they serve or served, one waiting in one of
/// their groups, or any for a supervisor. 404 otherwise (never says it exists).
async fn visible(state: &AppState, caller: &StaffCaller, id: ConversationId) -> ApiResult<Conversation> {
    let c = hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    if is_supervisor(state, caller) {
        return Ok(c);
    }
    let agent = profile(state, caller).await?;
    let served = c.is_served_by(agent.id) || c.agent_read.contains_key(&agent.id);
    let waiting_here = c.status == ConversationStatus::Waiting && agent.groups.contains(&c.group);
    if served || waiting_here {
        Ok(c)
    } else {
        Err(ApiError::not_found("conversation"))
    }
}

async fn audited(audit: &StaffAudit, action: &str, c: &Conversation) -> ApiResult<()> {
    let event = audit.event(action, Target::new("conversation", c.id)?)?.concerning(c.account_id, None);
    audit.record(event).await?;
    Ok(())
}

/// A conversation as the caller's console shows it (the patient's name masked). Audited
/// (`chat.read`). Permission `chat.agent`.
#[utoipa::path(get, path = "/api/v1/chat/agent/conversations/{id}", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = AgentConversation), (status = 404, body = ErrorBody)))]
async fn conversation(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<AgentConversation>> {
    let c = visible(&state, &audit.caller, id).await?;
    audited(&audit, "chat.read", &c).await?;
    Ok(ApiJson(AgentConversation::of(&c, Some(audit.caller.staff_id))))
}

/// A conversation's history, paged by `seq` (a console resumes with `after` = the last it has).
/// Audited (`chat.read`). Permission `chat.agent`.
#[utoipa::path(get, path = "/api/v1/chat/agent/conversations/{id}/messages", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn agent_messages(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<HistoryPage>> {
    let c = visible(&state, &audit.caller, id).await?;
    audited(&audit, "chat.read", &c).await?;
    Ok(ApiJson(history(&state, &c, &q).await?))
}

/// Replies in a conversation the caller serves (403 otherwise); answered once durable. The message
/// itself, with its agent, is the record (refusals are audited by the gate). Permission `chat.agent`.
#[utoipa::path(post, path = "/api/v1/chat/agent/conversations/{id}/messages", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = SendText,
    responses((status = 200, body = ChatMessage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn reply(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<SendText>,
) -> ApiResult<ApiJson<ChatMessage>> {
    let body = MessageBody::text(&req.text)?;
    let c = visible(&state, &caller, id).await?;
    if !c.is_served_by(caller.staff_id) {
        return Err(ApiError::Forbidden("only the agent serving this conversation may reply".into()));
    }
    Ok(ApiJson(state.actors.chat_send(id, Party::Agent(caller.staff_id), body).await?))
}

/// Marks a conversation the caller serves read up to `seq` (the patient sees 已读). Permission `chat.agent`.
#[utoipa::path(post, path = "/api/v1/chat/agent/conversations/{id}/read", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = ReadUpTo,
    responses((status = 200, body = ReadMark), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn agent_read(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<ReadUpTo>,
) -> ApiResult<ApiJson<ReadMark>> {
    visible(&state, &caller, id).await?;
    let seq = req.seq.get();
    let r = state.actors.chat_read(id, Party::Agent(caller.staff_id), seq).await?;
    Ok(ApiJson(ReadMark { seq, moved: r.is_some() }))
}

/// Closes a conversation the caller serves. Audited (`chat.close`). Permission `chat.agent`.
#[utoipa::path(post, path = "/api/v1/chat/agent/conversations/{id}/close", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = AgentConversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn agent_close(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<AgentConversation>> {
    let c = visible(&state, &audit.caller, id).await?;
    audited(&audit, "chat.close", &c).await?;
    let c = state.actors.chat_close(id, Party::Agent(audit.caller.staff_id)).await?;
    Ok(ApiJson(AgentConversation::of(&c, Some(audit.caller.staff_id))))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Another agent of the group (online, with room)...
    pub agent: Option<StaffId>,
    /// ...or another group's backlog (keeping its place in line). Exactly one of the two.
    pub group: Option<GroupCode>,
}

/// Transfers a conversation the caller serves to another agent or group. Audited
/// (`chat.transfer`). Permission `chat.agent`.
#[utoipa::path(post, path = "/api/v1/chat/agent/conversations/{id}/transfer", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)), request_body = Transfer,
    responses((status = 200, body = AgentConversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn transfer(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<Transfer>,
) -> ApiResult<ApiJson<AgentConversation>> {
    let by = audit.caller.staff_id;
    let c = visible(&state, &audit.caller, id).await?;
    if !c.is_served_by(by) {
        return Err(ApiError::Forbidden("only the agent serving this conversation may transfer it".into()));
    }
    let c = match (req.agent, req.group) {
        (Some(to), None) => {
            audited(&audit, "chat.transfer", &c).await?;
            state.actors.chat_transfer_to_agent(id, by, to).await?
        }
        (None, Some(g)) => {
            audited(&audit, "chat.transfer", &c).await?;
            state.actors.chat_transfer_to_group(id, by, g).await?
        }
        _ => return Err(ValidationError::new("agent", "give exactly one of agent and group").into()),
    };
    Ok(ApiJson(AgentConversation::of(&c, Some(by))))
}

/// A canned reply filled in for one conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CannedView {
    pub id: hospital_domain::CannedReplyId,
    pub title: String,
    /// The text with its variables (`{patient_name}`, `{agent_name}`, `{group}`) filled in.
    pub text: String,
}

/// The canned replies (快捷回复) the caller may use in a conversation they serve, their own first,
/// filled in with its variables. Permission `chat.agent`.
#[utoipa::path(get, path = "/api/v1/chat/agent/conversations/{id}/canned", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = Vec<CannedView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn canned(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<Vec<CannedView>>> {
    use hospital_domain::chat::canned::{usable_by, CannedScope, Vars};
    let c = visible(&state, &caller, id).await?;
    let data = &state.stores.data;
    let mut all = data.canned_replies(&CannedScope::Agent { agent: caller.staff_id }).await?;
    all.extend(data.canned_replies(&CannedScope::Group { group: c.group.clone() }).await?);
    let group_name = data.chat_groups().await?.into_iter().find(|g| g.code == c.group).map(|g| g.name);
    let agent_name = match &c.agent {
        Some(a) if a.id == caller.staff_id => a.name.clone(),
        _ => data.staff(caller.staff_id).await?.map(|s| s.name).unwrap_or_default(),
    };
    let vars = Vars {
        patient_name: &c.patient_name,
        agent_name: &agent_name,
        group: group_name.as_deref().unwrap_or(c.group.as_str()),
    };
    let out = usable_by(&all, caller.staff_id, &c.group)
        .into_iter()
        .map(|r| CannedView { id: r.id, title: r.title.clone(), text: r.render(&vars) })
        .collect();
    Ok(ApiJson(out))
}
