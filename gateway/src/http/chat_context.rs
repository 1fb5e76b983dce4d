//! The patient's context in the agents' console (CS-2): who they are (name masked) and their
//! upcoming appointments (held or confirmed, from today in the hospital's zone), so the agent
//! can answer "when is my appointment" without asking. Only the agent serving the conversation
//! or a supervisor gets it (404 for anyone else: it never says the conversation exists), and
//! each read is audited as a staff read of the patient's data (`chat.context`).

use axum::extract::State;
use chrono::{NaiveDate, Utc};
use hospital_domain::access::Permission;
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::audit::Target;
use hospital_domain::chat::console::mask_name;
use hospital_domain::schedule::Period;
use hospital_domain::{AppointmentId, ConversationId};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// The most upcoming appointments shown.
const MAX_UPCOMING: usize = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(permit(Permission::ChatAgent, routes!(context)))
}

/// An upcoming appointment as the console shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpcomingVisit {
    pub appointment_id: AppointmentId,
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub period: Period,
    pub department_name: String,
    pub doctor_name: String,
    /// The person the appointment is for (one of the account's patients), masked.
    pub patient: String,
    /// 就诊序号.
    pub place: u32,
    pub status: AppointmentStatus,
}

/// What the console shows beside a conversation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PatientContext {
    pub conversation_id: ConversationId,
    /// The patient's name, masked (张**).
    pub patient: String,
    /// Held or confirmed appointments from today, soonest first (at most 10).
    pub upcoming: Vec<UpcomingVisit>,
}

/// The patient's context for a conversation the caller serves (or any, for a supervisor).
/// Audited (`chat.context`).
#[utoipa::path(get, path = "/api/v1/chat/agent/conversations/{id}/context", tag = "chat-staff", security(("bearer" = [])),
    params(("id" = ConversationId, Path)),
    responses((status = 200, body = PatientContext), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn context(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ConversationId>,
) -> ApiResult<ApiJson<PatientContext>> {
    let c = state.stores.data.conversation(id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    let supervisor = crate::http::chat_agent::is_supervisor(&state, &audit.caller);
    if !supervisor && !c.is_served_by(audit.caller.staff_id) {
        return Err(ApiError::not_found("conversation"));
    }
    let event = audit.event("chat.context", Target::new("conversation", c.id)?)?.concerning(c.account_id, None);
    audit.record(event).await?;

    let today = state.zone.local_date(Utc::now());
    let idx = state.catalog();
    let mut list: Vec<_> = state
        .stores
        .data
        .appointments_of_account(c.account_id)
        .await?
        .into_iter()
        .filter(|a| a.date >= today && matches!(a.status, AppointmentStatus::Held | AppointmentStatus::Confirmed))
        .collect();
    list.sort_by_key(|a| (a.date, a.period, a.place));
    let upcoming = list
        .iter()
        .take(MAX_UPCOMING)
        .map(|a| UpcomingVisit {
            appointment_id: a.id,
            date: a.date,
            period: a.period,
            department_name: idx.department(a.department_id).map(|d| d.name.clone()).unwrap_or_default(),
            doctor_name: idx.doctor(a.doctor_id).map(|d| d.name.clone()).unwrap_or_default(),
            patient: mask_name(&a.patient_name),
            place: a.place,
            status: a.status,
        })
        .collect();
    Ok(ApiJson(PatientContext { conversation_id: c.id, patient: mask_name(&c.patient_name), upcoming }))
}
