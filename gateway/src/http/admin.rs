//! The back office's schedule work (BOOK-9), staff only (permission `schedule.write`, or
//! `schedule.read` to list a session's bookings or the templates, `payments.refund` for
//! refunds): weekly templates applied over a date range, stored templates the jobs apply ahead
//! (`actors::templates`), quota changes (加号/减号), slot times (号源调整), fees and release
//! times, clinic stops (停诊) and staff-initiated refunds (PAY-6).
//! Every change to a doctor's sessions goes through the doctor's schedule actor, never around it:
//! the handlers parse, authorise, call the actor and render.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{Duration as Days, NaiveTime};
use hospital_domain::audit::Target;
use hospital_domain::schedule::{
    ClinicSession, Period, Segment, StoredLine, StoredTemplate, TemplateLine, TemplateRun, WeeklyTemplate,
    TEMPLATE_DOCS, TEMPLATE_RUNS,
};
use hospital_domain::{AppointmentId, DoctorId, OrderId, Permission, SessionId, ValidationError};
use hospital_store::{Docs, Versioned};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, StaffCaller};
use crate::http::booking::{appointment_view, booking_error, order_view, AppointmentView, OrderView};
use crate::http::catalog::{schedule_of, ScheduleQuery, ScheduleView};
use crate::state::AppState;
use crate::validate::{Day, IsoWeekday, Moment, Money, Quota, ReleaseDays, SegmentMinutes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(permit(Permission::ScheduleWrite, routes!(apply_template)))
        .routes(permit(Permission::ScheduleWrite, routes!(update_session)))
        .routes(permit(Permission::ScheduleWrite, routes!(set_quota)))
        .routes(permit(Permission::ScheduleWrite, routes!(set_segments)))
        .routes(permit(Permission::ScheduleRead, routes!(schedule_doctors)))
        .routes(permit(Permission::ScheduleRead, routes!(staff_schedule)))
        .routes(permit(Permission::ScheduleRead, routes!(list_templates)))
        .routes(permit(Permission::ScheduleRead, routes!(get_template)))
        .routes(permit(Permission::ScheduleWrite, routes!(save_template, delete_template)))
        .routes(permit(Permission::ScheduleWrite, routes!(stop_session)))
        .routes(permit(Permission::ScheduleRead, routes!(session_appointments)))
        .routes(permit(Permission::PaymentsRefund, routes!(refund_order)))
}

/// A doctor as the schedules page lists them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleDoctor {
    pub id: DoctorId,
    pub name: String,
    pub department_name: String,
    /// False when the department (or one above it) is switched off: patients do not see the
    /// doctor, but the sessions and their bookings are still staff's to run.
    pub department_open: bool,
}

/// Every doctor, by name, those of switched-off departments too (marked): whose schedules staff run.
#[utoipa::path(get, path = "/api/v1/admin/schedule-doctors", tag = "back office", security(("bearer" = [])),
    responses((status = 200, body = [ScheduleDoctor]), (status = 403, body = ErrorBody)))]
async fn schedule_doctors(State(state): State<AppState>) -> ApiJson<Vec<ScheduleDoctor>> {
    let idx = state.catalog();
    let mut list: Vec<ScheduleDoctor> = idx
        .doctors
        .iter()
        .map(|d| ScheduleDoctor {
            id: d.id,
            name: d.name.clone(),
            department_name: idx.department(d.department_id).map(|x| x.name.clone()).unwrap_or_default(),
            department_open: idx.open(d.department_id),
        })
        .collect();
    list.sort_by(|a, b| (&a.department_name, &a.name).cmp(&(&b.department_name, &b.name)));
    ApiJson(list)
}

/// A doctor's sessions as staff see them: also when patients cannot (a switched-off department).
#[utoipa::path(get, path = "/api/v1/admin/doctors/{id}/schedule", tag = "back office", security(("bearer" = [])),
    params(("id" = DoctorId, Path), ScheduleQuery),
    responses((status = 200, body = ScheduleView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn staff_schedule(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<DoctorId>,
    ApiQuery(q): ApiQuery<ScheduleQuery>,
) -> ApiResult<ApiJson<ScheduleView>> {
    if state.catalog().doctor(id).is_none() {
        return Err(ApiError::not_found("doctor"));
    }
    schedule_of(&state, id, q).await.map(ApiJson)
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
        lines: lines_of(&req.weekly),
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

fn lines_of(weekly: &[TemplateEntry]) -> Vec<TemplateLine> {
    weekly
        .iter()
        .map(|e| TemplateLine {
            weekday: e.weekday.get(),
            period: e.period,
            start: e.start,
            end: e.end,
            segment_minutes: e.segment_minutes.get(),
            quota: e.quota.get(),
        })
        .collect()
}

/// One line of a stored template.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveLine {
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
    /// The fee in fen; absent: the doctor's title fee.
    pub fee: Option<Money>,
    /// Slots open this many days before the session (放号; default 7), at `release_time`
    /// local time (default 08:00).
    pub release_days_before: Option<ReleaseDays>,
    #[schema(value_type = Option<String>, example = "08:00")]
    pub release_time: Option<NaiveTime>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SaveTemplate {
    /// At most one line per weekday and period (a doctor has one session per date and period).
    pub lines: Vec<SaveLine>,
    /// The version read (a save over someone else's later save is refused, 409
    /// `version_conflict`); absent: whatever is stored is replaced.
    pub version: Option<u64>,
}

/// A doctor's stored template as the console shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    pub doctor_id: DoctorId,
    pub doctor_name: String,
    pub lines: Vec<StoredLine>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Name it when saving again.
    pub version: u64,
    /// What the latest application did (the jobs apply it every day and when saved).
    pub last_run: Option<TemplateRun>,
}

fn template_view(
    state: &AppState,
    t: Versioned<StoredTemplate>,
    runs: &HashMap<DoctorId, TemplateRun>,
) -> TemplateView {
    let v = t.value;
    TemplateView {
        doctor_id: v.doctor_id,
        doctor_name: state.catalog().doctor(v.doctor_id).map(|d| d.name.clone()).unwrap_or_default(),
        last_run: runs.get(&v.doctor_id).cloned(),
        lines: v.lines,
        updated_at: v.updated_at,
        version: t.version,
    }
}

/// Every doctor's stored schedule template, with what its latest application did.
#[utoipa::path(get, path = "/api/v1/admin/schedule-templates", tag = "back office", security(("bearer" = [])),
    responses((status = 200, body = [TemplateView]), (status = 403, body = ErrorBody)))]
async fn list_templates(State(state): State<AppState>, _caller: StaffCaller) -> ApiResult<ApiJson<Vec<TemplateView>>> {
    let data = state.stores.data.as_ref();
    let runs: HashMap<DoctorId, TemplateRun> = Docs::<TemplateRun>::new(data, TEMPLATE_RUNS)
        .list()
        .await?
        .into_iter()
        .map(|r| (r.value.doctor_id, r.value))
        .collect();
    let list = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS).list().await?;
    Ok(ApiJson(list.into_iter().map(|t| template_view(&state, t, &runs)).collect()))
}

/// One doctor's stored template (404 if the doctor has none).
#[utoipa::path(get, path = "/api/v1/admin/schedule-templates/{id}", tag = "back office", security(("bearer" = [])),
    params(("id" = DoctorId, Path)),
    responses((status = 200, body = TemplateView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<AppState>,
    _caller: StaffCaller,
    ApiPath(doctor): ApiPath<DoctorId>,
) -> ApiResult<ApiJson<TemplateView>> {
    Ok(ApiJson(read_template(&state, doctor).await?.ok_or_else(|| ApiError::not_found("template"))?))
}

async fn read_template(state: &AppState, doctor: DoctorId) -> ApiResult<Option<TemplateView>> {
    let data = state.stores.data.as_ref();
    let Some(t) = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS).get(&doctor.to_string()).await? else {
        return Ok(None);
    };
    let run = Docs::<TemplateRun>::new(data, TEMPLATE_RUNS).get(&doctor.to_string()).await?;
    let runs: HashMap<DoctorId, TemplateRun> = run.map(|r| (doctor, r.value)).into_iter().collect();
    Ok(Some(template_view(state, t, &runs)))
}

/// Stores (creates or replaces) a doctor's weekly template (排班模板). The jobs apply it at once
/// and every day to the configured weeks ahead (`actors.jobs.template_weeks_ahead`), adding only
/// dates and periods the doctor has no session for: sessions already there, changed by hand or
/// booked, are never touched.
#[utoipa::path(put, path = "/api/v1/admin/doctors/{id}/template", tag = "back office", security(("bearer" = [])),
    params(("id" = DoctorId, Path)), request_body = SaveTemplate,
    responses((status = 200, body = TemplateView), (status = 201, body = TemplateView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_template(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(doctor): ApiPath<DoctorId>,
    ApiJson(req): ApiJson<SaveTemplate>,
) -> ApiResult<(StatusCode, ApiJson<TemplateView>)> {
    let d = state.catalog().doctor(doctor).cloned().ok_or_else(|| ApiError::not_found("doctor"))?;
    let lines: Vec<StoredLine> = req
        .lines
        .iter()
        .map(|e| StoredLine {
            weekday: e.weekday.get(),
            period: e.period,
            start: e.start,
            end: e.end,
            segment_minutes: e.segment_minutes.get(),
            quota: e.quota.get(),
            fee: e.fee.map(Money::fen),
            release_days_before: e.release_days_before.map_or(7, ReleaseDays::get),
            release_time: e.release_time.unwrap_or(NaiveTime::from_hms_opt(8, 0, 0).expect("08:00")),
        })
        .collect();
    check_lines(&lines)?;
    let template = StoredTemplate { doctor_id: doctor, lines, updated_at: chrono::Utc::now() };
    // Every line must make a valid session (one week is every weekday once).
    let today = state.zone.local_date(chrono::Utc::now());
    template.sessions(d.department_id, d.fee(), today, today + Days::days(6), state.zone)?;
    let data = state.stores.data.as_ref();
    let docs = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS);
    let stored = docs.get(&doctor.to_string()).await?.map_or(0, |t| t.version);
    let expected = req.version.unwrap_or(stored);
    let conflict = || ApiError::Conflict {
        code: "version_conflict",
        message: "the template was changed by someone else since it was read; read it again".into(),
    };
    if expected != stored {
        return Err(conflict());
    }
    let target = Target::new("schedule_template", doctor)?;
    audit.record(audit.event("schedule_template.save", target)?).await?;
    if !docs.put(&doctor.to_string(), &template, expected).await? {
        return Err(conflict());
    }
    hospital_actors::templates::schedule_now(data, doctor).await?;
    tracing::info!(by = %audit.caller.staff_id, %doctor, lines = template.lines.len(), "schedule template saved");
    let view = read_template(&state, doctor).await?.ok_or_else(|| ApiError::not_found("template"))?;
    let status = if stored == 0 { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, ApiJson(view)))
}

/// A template's lines: at most one per weekday and period, each starting before it ends. A
/// wrong line is named by its path (`lines[2].end`, `lines[2].period`), so the page can say which.
fn check_lines(lines: &[StoredLine]) -> ApiResult<()> {
    if lines.is_empty() || lines.len() > 21 {
        return Err(ValidationError::new("lines", "1 to 21 lines (one per weekday and period)").into());
    }
    for (i, l) in lines.iter().enumerate() {
        if l.start >= l.end {
            return Err(ValidationError::new(format!("lines[{i}].end"), "the start must be before the end").into());
        }
        if lines[..i].iter().any(|o| (o.weekday, o.period) == (l.weekday, l.period)) {
            let reason = format!("weekday {} {} appears twice", l.weekday, l.period.label());
            return Err(ValidationError::new(format!("lines[{i}].period"), reason).into());
        }
    }
    Ok(())
}

/// Removes a doctor's stored template: no more sessions are made from it (those made stay).
#[utoipa::path(delete, path = "/api/v1/admin/doctors/{id}/template", tag = "back office", security(("bearer" = [])),
    params(("id" = DoctorId, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_template(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(doctor): ApiPath<DoctorId>,
) -> ApiResult<StatusCode> {
    let data = state.stores.data.as_ref();
    let docs = Docs::<StoredTemplate>::new(data, TEMPLATE_DOCS);
    if docs.get(&doctor.to_string()).await?.is_none() {
        return Err(ApiError::not_found("template"));
    }
    audit.record(audit.event("schedule_template.delete", Target::new("schedule_template", doctor)?)?).await?;
    docs.delete(&doctor.to_string()).await?;
    Docs::<TemplateRun>::new(data, TEMPLATE_RUNS).delete(&doctor.to_string()).await?;
    tracing::info!(by = %audit.caller.staff_id, %doctor, "schedule template deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    #[schema(value_type = String, example = "08:30")]
    pub start: NaiveTime,
    #[schema(value_type = String, example = "09:00")]
    pub end: NaiveTime,
    pub quota: Quota,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSegments {
    /// The session's segments in time order; segment `i` keeps the bookings it has.
    pub segments: Vec<SegmentEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentsResult {
    pub session: ClinicSession,
    /// The bookings whose time changed: each patient got a `time_changed` message.
    pub notified: Vec<AppointmentId>,
}

/// 号源调整: changes a session's segment times and places (move 08:00-08:30 to 08:30-09:00, or
/// the session's start and end). Segment `i` keeps its bookings at its new time, so a segment
/// with bookings can neither go nor have fewer places than booked (409 `quota_below_booked`).
/// Every patient booked in a segment whose time changed is told (message centre and live).
#[utoipa::path(put, path = "/api/v1/admin/sessions/{id}/segments", tag = "back office", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = SetSegments,
    responses((status = 200, body = SegmentsResult), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn set_segments(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<SetSegments>,
) -> ApiResult<ApiJson<SegmentsResult>> {
    let mut s = session_of(&state, id).await?;
    if req.segments.len() > 48 {
        return Err(ValidationError::new("segments", "at most 48 segments").into());
    }
    s.segments = req.segments.iter().map(|e| Segment { start: e.start, end: e.end, quota: e.quota.get() }).collect();
    s.validate()?;
    audit.record(audit.event("session.segments", Target::new("session", id)?)?).await?;
    let (session, moved) =
        state.actors.set_segments(s.doctor_id, id, s.segments).await.map_err(|e| booking_error(&state, e))?;
    tracing::info!(by = %audit.caller.staff_id, session = %id, notified = moved.len(), "session times changed");
    Ok(ApiJson(SegmentsResult { session, notified: moved.iter().map(|a| a.id).collect() }))
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
