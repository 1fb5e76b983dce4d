//! The back office's schedule work (BOOK-9), staff only (permission `schedule.write`, or
//! `schedule.read` to list a session's bookings, `payments.refund` for refunds): weekly templates applied over a date range, quota changes
//! (加号/减号), fees and release times, clinic stops (停诊) and staff-initiated refunds (PAY-6).
//! Every change to a doctor's sessions goes through the doctor's schedule actor, never around it:
//! the handlers parse, authorise, call the actor and render.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration as Days, NaiveTime};
use hospital_domain::schedule::{ClinicSession, Period, TemplateLine, WeeklyTemplate};
use hospital_domain::{DoctorId, OrderId, Permission, SessionId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, StaffCaller};
use crate::http::booking::{appointment_view, booking_error, order_view, AppointmentView, OrderView};
use crate::state::AppState;
use crate::validate::{Day, IsoWeekday, Moment, Money, Quota, ReleaseDays, SegmentMinutes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::ScheduleWrite, routes!(apply_template)))
        .routes(permit(Permission::ScheduleWrite, routes!(update_session)))
        .routes(permit(Permission::ScheduleWrite, routes!(set_quota)))
        .routes(permit(Permission::ScheduleWrite, routes!(stop_session)))
        .routes(permit(Permission::ScheduleRead, routes!(session_appointments)))
        .routes(permit(Permission::PaymentsRefund, routes!(refund_order)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateEntry {
    /// 1 = Monday ... 7 = Sunday.
    pub weekday: IsoWeekday,
    pub period: Period,
    #[schema(value_type = String, example = "08:00")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "12:00")]
    pub end: NaiveTime,
    /// Minutes per segment (分时段).
    pub segment_minutes: SegmentMinutes,
    /// Places per segment.
    pub quota: Quota,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyTemplate {
    pub from: Day,
    pub to: Day,
    pub weekly: Vec<TemplateEntry>,
    /// The fee in fen; default the doctor's fee (their own, else their title's).
    pub fee: Option<Money>,
    /// Slots open this many days before the session (放号), at `release_time` local time.
    pub release_days_before: ReleaseDays,
    #[schema(value_type = String, example = "08:00")]
    pub release_time: NaiveTime,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateResult {
    pub created: Vec<SessionId>,
    /// Dates and periods that already had a session (left as they were).
    pub skipped: usize,
}

/// Creates a doctor's sessions from a weekly template over a date range (at most 92 days).
#[utoipa::path(post, path = "/api/v1/admin/doctors/{id}/sessions", tag = "back office", security(("bearer" = [])),
    params(("id" = DoctorId, Path)), request_body = ApplyTemplate,
    responses((status = 201, body = TemplateResult), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn apply_template(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(doctor): ApiPath<DoctorId>,
    ApiJson(req): ApiJson<ApplyTemplate>,
) -> ApiResult<(StatusCode, ApiJson<TemplateResult>)> {
    let d = state.catalog().doctor(doctor).cloned().ok_or_else(|| ApiError::not_found("doctor"))?;
    let (from, to) = (req.from.get(), req.to.get());
    if to < from || to - from > Days::days(92) {
        return Err(ValidationError::new("to", "must be on or after from, within 92 days").into());
    }
    if req.weekly.iter().any(|e| e.start >= e.end) {
        return Err(ValidationError::new("weekly", "each entry's start must be before its end").into());
    }
    let template = WeeklyTemplate {
        lines: req
            .weekly
            .iter()
            .map(|e| TemplateLine {
                weekday: e.weekday.get(),
                period: e.period,
                start: e.start,
                end: e.end,
                segment_minutes: e.segment_minutes.get(),
                quota: e.quota.get(),
            })
            .collect(),
        fee: req.fee.map_or_else(|| d.fee(), Money::fen),
        release_days_before: req.release_days_before.get(),
        release_time: req.release_time,
    };
    let sessions = template.sessions(doctor, d.department_id, from, to, state.zone)?;
    // The doctor's actor decides which are new (a date and period it has is left) and writes them.
    let added = state.actors.add_sessions(doctor, sessions).await.map_err(|e| booking_error(&state, e))?;
    tracing::info!(by = %caller.staff_id, %doctor, sessions = added.created.len(), "schedule template applied");
    Ok((StatusCode::CREATED, ApiJson(TemplateResult { created: added.created, skipped: added.skipped })))
}

async fn session_of(state: &AppState, id: SessionId) -> ApiResult<ClinicSession> {
    state.stores.data.session(id).await?.ok_or_else(|| ApiError::not_found("session"))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    pub fee: Option<Money>,
    /// RFC 3339.
    pub release_at: Option<Moment>,
}

/// Changes a session's fee (for bookings made from now on) or release time.
#[utoipa::path(patch, path = "/api/v1/admin/sessions/{id}", tag = "back office", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = UpdateSession,
    responses((status = 200, body = ClinicSession), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_session(
    State(state): State<AppState>,
    _caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<UpdateSession>,
) -> ApiResult<ApiJson<ClinicSession>> {
    let s = session_of(&state, id).await?;
    let s = state
        .actors
        .update_session(s.doctor_id, id, req.fee.map(Money::fen), req.release_at.map(Moment::get))
        .await
        .map_err(|e| booking_error(&state, e))?;
    Ok(ApiJson(s))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuota {
    pub quota: Quota,
}

/// 加号/减号: sets a segment's places; never below those already booked (409
/// `quota_below_booked`). Freed capacity goes to the waitlist first.
#[utoipa::path(put, path = "/api/v1/admin/sessions/{id}/segments/{segment}/quota", tag = "back office", security(("bearer" = [])),
    params(("id" = SessionId, Path), ("segment" = u16, Path)), request_body = SetQuota,
    responses((status = 200, body = ClinicSession), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn set_quota(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath((id, segment)): ApiPath<(SessionId, u16)>,
    ApiJson(req): ApiJson<SetQuota>,
) -> ApiResult<ApiJson<ClinicSession>> {
    let quota = req.quota.get();
    let s = session_of(&state, id).await?;
    let s = state.actors.set_quota(s.doctor_id, id, segment, quota).await.map_err(|e| booking_error(&state, e))?;
    tracing::info!(by = %caller.staff_id, session = %id, segment, quota, "quota changed");
    Ok(ApiJson(s))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StopResult {
    pub cancelled: Vec<AppointmentView>,
    /// Paid bookings sent for refund.
    pub refunds: usize,
    pub waitlist_cleared: usize,
}

/// 停诊: cancels every booking of the session, refunds each paid one through its payment actor,
/// notifies every patient (booked or waiting) and clears the waitlist.
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/stop", tag = "back office", security(("bearer" = [])),
    params(("id" = SessionId, Path)), responses((status = 200, body = StopResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn stop_session(
    State(state): State<AppState>,
    caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<ApiJson<StopResult>> {
    let s = session_of(&state, id).await?;
    let r = state.actors.stop_session(s.doctor_id, id).await.map_err(|e| booking_error(&state, e))?;
    tracing::info!(by = %caller.staff_id, session = %id, cancelled = r.cancelled.len(), "clinic stopped");
    Ok(ApiJson(StopResult {
        cancelled: r.cancelled.iter().map(|a| appointment_view(&state, a)).collect(),
        refunds: r.refunds,
        waitlist_cleared: r.waitlist_cleared,
    }))
}

/// A session's live appointments (staff view).
#[utoipa::path(get, path = "/api/v1/admin/sessions/{id}/appointments", tag = "back office", security(("bearer" = [])),
    params(("id" = SessionId, Path)), responses((status = 200, body = [AppointmentView]), (status = 403, body = ErrorBody)))]
async fn session_appointments(
    State(state): State<AppState>,
    _caller: StaffCaller,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<ApiJson<Vec<AppointmentView>>> {
    let s = session_of(&state, id).await?;
    let list = state.actors.session_appointments(s.doctor_id, id).await?;
    Ok(ApiJson(list.iter().map(|a| appointment_view(&state, a)).collect()))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    /// Fen to refund; all that is left when absent. Partial refunds never sum above what was paid.
    pub amount: Option<Money>,
    pub reason: String,
    /// Where the cash part goes: `channel` (back the way it was paid, the default) or
    /// `balance` (the patient's account balance; not for a top-up).
    #[serde(default)]
    pub to: Option<RefundTo>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundTo {
    Channel,
    Balance,
}

/// A staff-initiated refund, full or partial (PAY-6), role `finance`: back through its channel
/// or to the account balance (`to`).
#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "back office", security(("bearer" = [])),
    params(("id" = OrderId, Path)), request_body = RefundOrder,
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn refund_order(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<OrderId>,
    ApiJson(req): ApiJson<RefundOrder>,
) -> ApiResult<ApiJson<OrderView>> {
    if req.reason.trim().is_empty() || req.reason.chars().count() > 80 {
        return Err(ValidationError::new("reason", "1 to 80 characters").into());
    }
    let Some(order) = state.stores.data.order(id).await? else {
        return Err(ApiError::not_found("order"));
    };
    // Audited before it is done: a staff action on a patient's money.
    let target = hospital_domain::audit::Target::new("order", id)?;
    let event = audit.event("payment.refund", target)?.concerning(order.account_id, order.patient_id);
    audit.record(event.purpose(req.reason.trim())?).await?;
    let to_balance = req.to == Some(RefundTo::Balance);
    let o = state.actors.refund(id, req.amount.map(Money::fen), req.reason.clone(), to_balance).await?;
    tracing::info!(by = %audit.caller.staff_id, order = %id, amount = ?req.amount, "refund requested by staff");
    Ok(ApiJson(order_view(&state, &o)))
}
