//! Supervisors (`chat.supervise`, CS-2): every group's backlog, agents and conversations with an
//! agent at a glance, and taking a conversation over. A supervisor also reads any conversation
//! through the agents' routes (`chat_agent::visible`), each read audited as for agents.
//!
//! Taking over moves the conversation to the supervisor through the dispatcher, exactly as a
//! transfer between agents (so caps and places stay right): the supervisor must be an agent of
//! the group, online (their console open) and with room. The patient's socket gets the
//! conversation with its new agent's name and a system message saying who took over; the
//! previous agent's console gets the conversation as no longer theirs.

use axum::extract::State;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::chat::console::{AgentConversation, BacklogSummary, GroupPresence};
use hospital_domain::chat::conversation::{ConversationStatus, MessageBody};
use hospital_domain::chat::{GroupCode, GroupKey};
use hospital_domain::ConversationId;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::{permit, permit_quiet};
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // The supervisor's console polls it like an agent's desk: masked names and counts only.
        .routes(permit_quiet(Permission::ChatSupervise, routes!(overview)))
        .routes(permit(Permission::ChatSupervise, routes!(take_over)))
}

/// One group as a supervisor sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SupervisedGroup {
    pub code: GroupCode,
    pub name: String,
    pub backlog: BacklogSummary,
    pub presence: GroupPresence,
    /// The conversations its agents hold now (patients' names masked).
    pub conversations: Vec<AgentConversation>,
    /// Messages left outside service hours not yet answered.
    pub open_tickets: usize,
}

/// Every group's backlog, agents, conversations with an agent, and open tickets.
#[utoipa::path(get, path = "/api/v1/chat/supervise/groups", tag = "chat-staff", security(("bearer" = [])),
    responses((status = 200, body = Vec<SupervisedGroup>), (status = 403, body = ErrorBody)))]
async fn overview(State(state): State<AppState>) -> ApiResult<ApiJson<Vec<SupervisedGroup>>> {
    let data = &state.stores.data;
    let mut out = Vec::new();
    for g in data.chat_groups().await? {
        let v = state.actors.chat_dispatcher(GroupKey::from(&g.code)).await?;
        let mut conversations = Vec::new();
        for id in v.held.values().flatten() {
            if let Some(c) = hospital_store::chat::conversation_with_marks(data.as_ref(), *id).await? {
                conversations.push(AgentConversation::of(&c, None));
            }
        }
        let open_tickets = data.open_tickets_of_group(&g.code).await?.len();
        out.push(SupervisedGroup {
            code: g.code,
            name: g.name,
            backlog: v.backlog,
            presence: v.presence,
            conversations,
            open_tickets,
        });
    }
    Ok(ApiJson(out))
}

/// Takes a conversation over from its agent (see the module's description): 409
/// `conversation_state` if nobody serves it, 409 `agent_unavailable` if the supervisor is not
/// online with room in its group, 422 if they are not an agent of it. Audited (`chat.take_over`).
#[utoipa::path(post, path = "/api/v1/chat/supervise/conversations/{id}/take-over", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = AgentConversation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn take_over(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<AgentConversation>> {
    let me = audit.caller.staff_id;
    let c = hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    let from = match (&c.agent, c.status) {
        (Some(a), ConversationStatus::Assigned) => a.clone(),
        _ => {
            return Err(ApiError::Conflict {
                code: "conversation_state",
                message: "only a conversation an agent serves can be taken over".into(),
            })
        }
    };
    if from.id == me {
        return Err(ApiError::Conflict { code: "same_target", message: "you already serve it".into() });
    }
    let event = audit.event("chat.take_over", Target::new("conversation", id)?)?.concerning(c.account_id, None);
    audit.record(event).await?;
    // The serving agent's hand-over, asked for by the supervisor: the dispatcher moves it.
    let c = state.actors.chat_transfer_to_agent(id, from.id, me).await?;
    let name = c.agent.as_ref().map_or_else(String::new, |a| a.name.clone());
    if let Ok(body) = MessageBody::text(&format!("{name}（客服主管）已接管您的会话，将继续为您服务"))
    {
        if let Err(e) = state.actors.chat_notice(id, body).await {
            tracing::warn!(conversation = %id, error = %e, "take-over notice not sent");
        }
    }
    Ok(ApiJson(AgentConversation::of(&c, Some(me))))
}
