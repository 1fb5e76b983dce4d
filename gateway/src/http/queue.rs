//! Check-in and the waiting queue (BOOK-10): a patient checks in (签到) on the day and sees a
//! live position and estimated wait; nurses and doctors call the next patient (叫号), skip one who
//! does not come (过号), call them again, and move a waiting patient by hand. The work happens in
//! the session's queue actor (and, for check-in, the doctor's schedule actor); live updates go out
//! as `queue` events (personal) and on topic `queue:<session id>`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use hospital_actors::QueueError;
use hospital_domain::queue::{ClinicQueue, QueueEntry, QueueError as Rule, QueueStanding, QueueStatus};
use hospital_domain::schedule::ClinicSession;
use hospital_domain::{AppointmentId, DoctorId, PatientId, Permission, SessionId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, StaffCaller};
use crate::http::booking::owned;
use crate::state::AppState;
use crate::validate::QueuePosition;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(my_queue))
        .routes(permit(Permission::QueueOperate, routes!(session_queue)))
        .routes(permit(Permission::QueueOperate, routes!(call_next)))
        .routes(permit(Permission::QueueOperate, routes!(skip)))
        .routes(permit(Permission::QueueOperate, routes!(recall)))
        .routes(permit(Permission::QueueOperate, routes!(reorder)))
}

/// Maps a queue refusal to the API error.
pub fn queue_error(e: QueueError) -> ApiError {
    let conflict = |code: &'static str, e: &dyn std::fmt::Display| ApiError::Conflict { code, message: e.to_string() };
    match e {
        QueueError::NotCheckable(m) => ApiError::Conflict { code: "not_checkable", message: m },
        QueueError::NoSuchAppointment => ApiError::not_found("appointment"),
        QueueError::Queue(r @ Rule::NothingCalled) => conflict("nothing_called", &r),
        QueueError::Queue(r @ Rule::NotSkipped) => conflict("not_skipped", &r),
        QueueError::Queue(r @ Rule::NotWaiting) => conflict("not_waiting", &r),
        QueueError::Queue(r @ Rule::BadPosition { .. }) => ValidationError::new("position", r.to_string()).into(),
        QueueError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "queue unavailable");
            ApiError::Unavailable("the queue is busy; try again shortly".into())
        }
    }
}

/// Where one of the patient's appointments stands in its session's queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueStandingView {
    pub session_id: SessionId,
    pub appointment_id: AppointmentId,
    pub status: QueueStatus,
    /// 1 is next; only while waiting.
    pub position: Option<usize>,
    /// Patients ahead; only while waiting.
    pub ahead: Option<usize>,
    /// Only while waiting.
    pub estimated_wait_minutes: Option<u32>,
    /// The consulting room to go to; only once called.
    pub room: Option<String>,
}

fn standing_view(session: SessionId, appointment: AppointmentId, s: &QueueStanding) -> QueueStandingView {
    QueueStandingView {
        session_id: session,
        appointment_id: appointment,
        status: s.status,
        position: s.position.map(|p| p.position),
        ahead: s.position.map(|p| p.ahead),
        estimated_wait_minutes: s.position.map(|p| p.estimated_wait_minutes),
        room: s.room.clone(),
    }
}

/// 签到: checks in for one of the caller's appointments and joins the session's queue. Only a
/// paid (confirmed) appointment for today (409 `not_checkable` otherwise). Idempotent: checking
/// in again answers the current standing.
#[utoipa::path(post, path = "/api/v1/appointments/{id}/check-in", tag = "queue", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)),
    responses((status = 200, body = QueueStandingView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn check_in(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
) -> ApiResult<ApiJson<QueueStandingView>> {
    let a = owned(&state, &caller, id).await?;
    let session = a.slot.session_id;
    let s = state.actors.check_in(session, caller.account_id, id).await.map_err(queue_error)?;
    Ok(ApiJson(standing_view(session, id, &s)))
}

/// The caller's appointment in its session's queue: position and estimated wait while waiting,
/// the room once called. 404 until checked in.
#[utoipa::path(get, path = "/api/v1/appointments/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)),
    responses((status = 200, body = QueueStandingView), (status = 404, body = ErrorBody)))]
async fn my_queue(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
) -> ApiResult<ApiJson<QueueStandingView>> {
    let a = owned(&state, &caller, id).await?;
    let session = a.slot.session_id;
    let q = state.actors.queue_state(session).await?;
    let s = q.standing(id, Utc::now()).ok_or_else(|| ApiError::NotFound("not checked in".into()))?;
    Ok(ApiJson(standing_view(session, id, &s)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueEntryView {
    pub appointment_id: AppointmentId,
    pub patient_id: PatientId,
    pub patient_name: String,
    /// The appointment's segment within the session, from 0.
    pub segment: u16,
    /// 就诊序号 within the segment.
    pub place: u32,
    pub checked_in_at: DateTime<Utc>,
}

fn entry_view(e: &QueueEntry) -> QueueEntryView {
    QueueEntryView {
        appointment_id: e.appointment_id,
        patient_id: e.patient_id,
        patient_name: e.patient_name.clone(),
        segment: e.segment,
        place: e.place,
        checked_in_at: e.checked_in_at,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WaitingView {
    /// 1 is next.
    pub position: usize,
    pub estimated_wait_minutes: u32,
    pub entry: QueueEntryView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalledView {
    pub room: String,
    pub called_at: DateTime<Utc>,
    pub entry: QueueEntryView,
}

/// A session's queue as staff see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub session_id: SessionId,
    pub doctor_id: DoctorId,
    /// The patient called now.
    pub calling: Option<CalledView>,
    /// In order: the first is called next.
    pub waiting: Vec<WaitingView>,
    /// Called but did not come (过号), in the order skipped; each can be called again.
    pub skipped: Vec<QueueEntryView>,
    /// Patients seen so far.
    pub done: usize,
    /// The moving average the estimates use.
    pub average_consultation_minutes: u32,
}

pub(crate) fn queue_view(q: &ClinicQueue) -> QueueView {
    let positions = q.positions(Utc::now());
    QueueView {
        session_id: q.session_id,
        doctor_id: q.doctor_id,
        calling: q.called_entry().map(|c| CalledView {
            room: c.room.clone(),
            called_at: c.called_at,
            entry: entry_view(&c.entry),
        }),
        waiting: q
            .waiting()
            .iter()
            .zip(positions)
            .map(|(e, p)| WaitingView {
                position: p.position,
                estimated_wait_minutes: p.estimated_wait_minutes,
                entry: entry_view(e),
            })
            .collect(),
        skipped: q.skipped().iter().map(entry_view).collect(),
        done: q.done().len(),
        average_consultation_minutes: q.avg_consultation_secs().div_ceil(60),
    }
}

/// A session that exists (the route's permission, `queue.operate`, was checked by the gate).
async fn staff_session(state: &AppState, _caller: &StaffCaller, id: SessionId) -> ApiResult<ClinicSession> {
    state.stores.data.session(id).await?.ok_or_else(|| ApiError::not_found("session"))
}

/// A session's queue: who is called, who waits (in order, with estimates), who was skipped.
#[utoipa::path(get, path = "/api/v1/admin/sessions/{id}/queue", tag = "queue", security(("bearer" = [])),
    params(("id" = SessionId, Path)),
    responses((status = 200, body = QueueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn session_queue(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<ApiJson<QueueView>> {
    staff_session(&state, &caller, id).await?;
    let q = state.actors.queue_state(id).await?;
    Ok(ApiJson(queue_view(&q)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallNextRequest {
    /// The consulting room (诊室), e.g. "3" or "3诊室"; 1 to 16 characters.
    pub room: String,
}

/// 叫号: the patient called before is done; the first in line is called to `room` (they get a
/// live `called` event and a 就诊提醒 message). With nobody waiting, `calling` becomes empty.
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/queue/call-next", tag = "queue", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = CallNextRequest,
    responses((status = 200, body = QueueView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn call_next(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<CallNextRequest>,
) -> ApiResult<ApiJson<QueueView>> {
    let room = req.room.trim();
    let n = room.chars().count();
    if n == 0 || n > 16 || room.chars().any(char::is_control) {
        return Err(ValidationError::new("room", "1 to 16 printable characters").into());
    }
    staff_session(&state, &caller, id).await?;
    let q = state.actors.call_next(id, room.to_string()).await.map_err(queue_error)?;
    tracing::info!(by = %caller.staff_id, session = %id, room, "next patient called");
    Ok(ApiJson(queue_view(&q)))
}

/// 过号: the patient called now did not come and goes to the skipped list (409 `nothing_called`).
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/queue/skip", tag = "queue", security(("bearer" = [])),
    params(("id" = SessionId, Path)),
    responses((status = 200, body = QueueView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn skip(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<ApiJson<QueueView>> {
    staff_session(&state, &caller, id).await?;
    let q = state.actors.skip(id).await.map_err(queue_error)?;
    Ok(ApiJson(queue_view(&q)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecallRequest {
    pub appointment_id: String,
}

/// Calls a skipped patient again, to the room of the last call; the patient called before is
/// done (409 `not_skipped` if they were not skipped).
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/queue/recall", tag = "queue", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = RecallRequest,
    responses((status = 200, body = QueueView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn recall(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<RecallRequest>,
) -> ApiResult<ApiJson<QueueView>> {
    let appointment = AppointmentId::parse(&req.appointment_id)?;
    staff_session(&state, &caller, id).await?;
    let q = state.actors.recall(id, appointment).await.map_err(queue_error)?;
    Ok(ApiJson(queue_view(&q)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderRequest {
    pub appointment_id: String,
    /// The new position, 1 = next.
    pub position: QueuePosition,
}

/// Moves a waiting patient to `position` by hand (409 `not_waiting`; 422 for a position outside
/// 1..=waiting).
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/queue/reorder", tag = "queue", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = ReorderRequest,
    responses((status = 200, body = QueueView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn reorder(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<ReorderRequest>,
) -> ApiResult<ApiJson<QueueView>> {
    let appointment = AppointmentId::parse(&req.appointment_id)?;
    staff_session(&state, &caller, id).await?;
    let position = req.position.get();
    let q = state.actors.reorder(id, appointment, position).await.map_err(queue_error)?;
    tracing::info!(by = %caller.staff_id, session = %id, %appointment, position, "queue reordered");
    Ok(ApiJson(queue_view(&q)))
}
