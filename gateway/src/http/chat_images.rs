//! Images in customer-service chat, both ways (CS-1): the patient of a conversation, or the agent
//! serving it, posts an image's bytes; they are checked by their content (magic bytes, never the
//! name or the declared type), capped (`objects.max_image_bytes`), stored through the one object
//! storage seam (`FileService`) under `chat/<conversation>/`, and sent as a
//! `MessageBody::Image` in one step, so a message can only ever name an image uploaded for its
//! own conversation.
//!
//! Links: a message names its image by key only. Whoever reads it (the history of a participant,
//! a live `chat_message` on the patient's socket or the agent's console) gets an `image_link`
//! made at that moment: a short-lived signed URL of `GET /api/v1/files/{key}`
//! (`objects.link_ttl_secs`), never stored. Reading is already limited to the conversation's
//! participants (the patient, agents who serve or served it, supervisors), so only they get
//! links.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap};
use hospital_actors::Party;
use hospital_domain::access::Permission;
use hospital_domain::audit::Target;
use hospital_domain::chat::conversation::{Conversation, ConversationStatus, MessageBody};
use hospital_domain::ConversationId;
use hospital_objects::StoredObject;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath};
use crate::files::{read_capped, FileService};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    // Uploads are capped by the image policy (`read_capped`), not the router's small JSON limit.
    OpenApiRouter::new()
        .routes(routes!(patient_image))
        .routes(permit(Permission::ChatAgent, routes!(agent_image)))
        .layer(DefaultBodyLimit::disable())
}

use crate::image_links::{linked, LinkedMessage};

/// Checks and stores the request's bytes under the conversation's prefix.
async fn store(files: &FileService, c: &Conversation, headers: &HeaderMap, body: Body) -> ApiResult<StoredObject> {
    let policy = &files.image_policy;
    let bytes = read_capped(body, policy.max_bytes).await?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    files.put(&prefix_of(c.id), bytes, declared, policy).await
}

/// Where a conversation's images are stored.
pub fn prefix_of(id: ConversationId) -> String {
    format!("chat/{id}")
}

/// Sends the stored image as a message; if the conversation refuses it (closed meanwhile), the
/// object is deleted again rather than left behind unreferenced.
async fn send(state: &AppState, c: &Conversation, from: Party, stored: StoredObject) -> ApiResult<LinkedMessage> {
    let body = MessageBody::image(&stored.key, stored.content_type.mime())?;
    match state.actors.chat_send(c.id, from, body).await {
        Ok(m) => Ok(linked(&state.files, m)),
        Err(e) => {
            if let Err(d) = state.files.objects.delete(&stored.key).await {
                tracing::warn!(key = %stored.key, error = %d, "an unsent chat image was not deleted");
            }
            Err(e.into())
        }
    }
}

/// Sends an image in the caller's conversation (waiting or with an agent). The body is the
/// image's bytes (PNG, JPEG, GIF or WebP, judged by its content; `Content-Type` if given must
/// agree); answered once the message is durable, with its link.
#[utoipa::path(post, path = "/api/v1/chat/conversations/{id}/images", tag = "chat", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The image's bytes"),
    responses((status = 200, body = LinkedMessage), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody, description = "Larger than objects.max_image_bytes"),
        (status = 415, body = ErrorBody, description = "Not an image (an executable, say), whatever its name or declared type")))]
async fn patient_image(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ConversationId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<LinkedMessage>> {
    let c = match hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), id).await? {
        Some(c) if c.account_id == caller.account_id => c,
        _ => return Err(ApiError::not_found("conversation")),
    };
    if c.status == ConversationStatus::Closed {
        return Err(ApiError::Conflict { code: "conversation_state", message: "the conversation is closed".into() });
    }
    let stored = store(&state.files, &c, &headers, body).await?;
    Ok(ApiJson(send(&state, &c, Party::Patient(caller.account_id), stored).await?))
}

/// Sends an image in a conversation the caller serves (403 otherwise, 404 for one they may not
/// see). Audited (`chat.image`).
#[utoipa::path(post, path = "/api/v1/chat/agent/conversations/{id}/images", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The image's bytes"),
    responses((status = 200, body = LinkedMessage), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn agent_image(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<ApiJson<LinkedMessage>> {
    let me = audit.caller.staff_id;
    let c = hospital_store::chat::conversation_with_marks(state.stores.data.as_ref(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    let supervisor = crate::http::chat_agent::is_supervisor(&state, &audit.caller);
    if !c.is_served_by(me) {
        // Someone who may see it learns why; anyone else learns nothing.
        let sees = supervisor || c.agent_read.contains_key(&me) || c.last_agent.as_ref().is_some_and(|a| a.id == me);
        return Err(if sees {
            ApiError::Forbidden("only the agent serving this conversation may send in it".into())
        } else {
            ApiError::not_found("conversation")
        });
    }
    let event = audit.event("chat.image", Target::new("conversation", c.id)?)?.concerning(c.account_id, None);
    audit.record(event).await?;
    let stored = store(&state.files, &c, &headers, body).await?;
    Ok(ApiJson(send(&state, &c, Party::Agent(me), stored).await?))
}
