//! The doctor's workstation (BOOK-10, REC-2) and attendance corrections (BOOK-6).
//!
//! Doctors (staff with the doctor role whose account names their catalogue entry) work on their
//! own sessions only: another doctor's session or visit is 404, as if it did not exist. Today's
//! list in queue order, call next (the called patient's visit is made), start the consultation,
//! write the visit (the whole form each time), finish it (exam orders become exams, the orders
//! become unpaid fee items, the appointment `seen`). Staff strike off a wrong no-show and close a
//! session now (its durable close job is moved to now).
//!
//! Every route writes one audit entry (who, role, what, from where): reads of patient data as
//! `*.read`, actions by their name.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use hospital_actors::VisitFailure;
use hospital_domain::access::Permission;
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus};
use hospital_domain::audit::Target;
use hospital_domain::jobs::Job;
use hospital_domain::schedule::ClinicSession;
use hospital_domain::visit::{ConsultationInput, PatientNote, Visit, VisitId};
use hospital_domain::{AppointmentId, DoctorId, PatientId, Role, SessionId, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::access::permit;
use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::http::booking::{appointment_view, booking_error, AppointmentView};
use crate::http::queue::{queue_error, queue_view, QueueView};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(doctor_today))
        .routes(routes!(doctor_call_next))
        .routes(routes!(doctor_visit, doctor_write))
        .routes(routes!(doctor_start))
        .routes(routes!(doctor_finish))
        .routes(routes!(doctor_notes))
        .routes(routes!(doctor_appointment_notes))
        // The front desk's corrections: whoever runs the queue (nurses, doctors) may make them.
        .routes(permit(Permission::QueueOperate, routes!(excuse_missed)))
        .routes(permit(Permission::QueueOperate, routes!(close_session_now)))
}

/// Maps a visit refusal to the API error.
pub fn visit_error(state: &AppState, e: VisitFailure) -> ApiError {
    use hospital_domain::visit::VisitError as V;
    match e {
        VisitFailure::NotFound => ApiError::not_found("visit"),
        VisitFailure::Exists => {
            ApiError::Conflict { code: "visit_exists", message: "this visit exists already".into() }
        }
        VisitFailure::Rejected(V::Invalid(v)) => v.into(),
        VisitFailure::Rejected(r @ (V::InvalidTransition { .. } | V::NotWritable(_) | V::NotCheckedIn(_))) => {
            ApiError::Conflict { code: "visit_state", message: r.to_string() }
        }
        VisitFailure::Rejected(r) => ApiError::Conflict { code: "visit_rule", message: r.to_string() },
        VisitFailure::Booking(b) => booking_error(state, b),
        VisitFailure::Unavailable(cause) => {
            tracing::warn!(error = %cause, "visit unavailable");
            ApiError::Unavailable("the visit is busy; try again shortly".into())
        }
    }
}

/// The caller's doctor id: a doctor-role staff account linked to a catalogue doctor.
async fn doctor_of(state: &AppState, audit: &StaffAudit) -> ApiResult<DoctorId> {
    audit.caller.require(&[Role::Doctor])?;
    let me = state.stores.data.staff(audit.caller.staff_id).await?.ok_or(ApiError::InvalidToken)?;
    me.doctor_id.ok_or_else(|| ApiError::Forbidden("this staff account is not a doctor's".into()))
}

/// A session of the caller's own; another doctor's is 404.
async fn own_session(state: &AppState, doctor: DoctorId, id: SessionId) -> ApiResult<ClinicSession> {
    match state.stores.data.session(id).await? {
        Some(s) if s.doctor_id == doctor => Ok(s),
        _ => Err(ApiError::not_found("session")),
    }
}

/// A visit of the caller's own; another doctor's is 404.
async fn own_visit(state: &AppState, doctor: DoctorId, id: VisitId) -> ApiResult<Visit> {
    // The store first: an unknown id never starts an actor.
    match state.stores.data.visit(id).await? {
        Some(row) if row.doctor_id == doctor => {}
        _ => return Err(ApiError::not_found("visit")),
    }
    state.actors.visit(id).await.map_err(|e| visit_error(state, e))
}

/// One of today's sessions with its queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DoctorSessionView {
    pub session: ClinicSession,
    pub queue: QueueView,
    /// REC-3: the session's appointments (booked or checked in) whose patients left notes for the
    /// doctor; their text is read with `GET /api/v1/doctor/appointments/{id}/notes`, one audited
    /// read per patient, so this list stays one `queue.read`.
    pub noted: Vec<NotedAppointment>,
}

/// An appointment of the session that carries notes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotedAppointment {
    pub appointment_id: AppointmentId,
    pub patient_id: PatientId,
    pub patient_name: String,
}

/// A patient's notes on an appointment of the session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppointmentNotes {
    pub appointment_id: AppointmentId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub notes: Vec<PatientNote>,
}

/// The session's upcoming appointments (booked or checked in) that carry notes: which ones, not
/// what they say (nothing is opened, so nothing is audited here).
async fn noted_appointments(
    state: &AppState,
    appointments: &[Appointment],
    session: SessionId,
) -> ApiResult<Vec<NotedAppointment>> {
    let mut out = Vec::new();
    for a in appointments.iter().filter(|a| a.slot.session_id == session) {
        if !matches!(a.status, AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn) {
            continue;
        }
        if state.stores.data.appointment_notes(a.id).await?.is_some() {
            out.push(NotedAppointment {
                appointment_id: a.id,
                patient_id: a.patient_id,
                patient_name: a.patient_name.clone(),
            });
        }
    }
    Ok(out)
}

/// REC-3: a patient's notes on an upcoming appointment, for the doctor of its session only
/// (anyone else gets 404). The read is audited once (`note.read`) and shows in the patient's
/// access history.
#[utoipa::path(get, path = "/api/v1/doctor/appointments/{id}/notes", tag = "doctor", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)),
    responses((status = 200, body = AppointmentNotes), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_appointment_notes(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AppointmentId>,
) -> ApiResult<ApiJson<AppointmentNotes>> {
    let doctor = doctor_of(&state, &audit).await?;
    let a = match state.stores.data.appointment(id).await? {
        Some(a) if a.doctor_id == doctor => a,
        _ => return Err(ApiError::not_found("appointment")),
    };
    let notes = match state.stores.data.appointment_notes(a.id).await? {
        Some(row) => match state.records.existing_key(a.patient_id).await? {
            Some(key) => row.open(&key)?,
            None => Vec::new(),
        },
        None => Vec::new(),
    };
    let target = Target::new("appointment", a.id)?;
    audit.record(audit.event("note.read", target)?.concerning(a.account_id, Some(a.patient_id))).await?;
    Ok(ApiJson(AppointmentNotes {
        appointment_id: a.id,
        patient_id: a.patient_id,
        patient_name: a.patient_name,
        notes,
    }))
}

/// The doctor's sessions today, each with its queue in order (who is called, who waits next)
/// and which appointments carry notes its patients left for the doctor.
#[utoipa::path(get, path = "/api/v1/doctor/today", tag = "doctor", security(("bearer" = [])),
    responses((status = 200, body = [DoctorSessionView]), (status = 403, body = ErrorBody)))]
async fn doctor_today(State(state): State<AppState>, audit: StaffAudit) -> ApiResult<ApiJson<Vec<DoctorSessionView>>> {
    let doctor = doctor_of(&state, &audit).await?;
    let today = state.zone.local_date(Utc::now());
    let sessions = state.stores.data.sessions_of_doctor(doctor, today, today).await?;
    let appointments = state.stores.data.appointments_of_doctor(doctor, today, today).await?;
    let mut out = Vec::with_capacity(sessions.len());
    for s in sessions {
        let q = state.actors.queue_state(s.id).await?;
        let noted = noted_appointments(&state, &appointments, s.id).await?;
        out.push(DoctorSessionView { queue: queue_view(&q), session: s, noted });
    }
    audit.record(audit.event("queue.read", Target::new("doctor", doctor)?)?).await?;
    Ok(ApiJson(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorCallRequest {
    /// The consulting room (诊室); 1 to 16 characters.
    pub room: String,
}

/// What calling the next patient did: the queue, and the called patient's visit (none when
/// nobody was waiting).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallView {
    pub queue: QueueView,
    pub visit: Option<Visit>,
}

/// 叫号 from the workstation: the first in line is called to `room`, and their visit is made.
#[utoipa::path(post, path = "/api/v1/doctor/sessions/{id}/call-next", tag = "doctor", security(("bearer" = [])),
    params(("id" = SessionId, Path)), request_body = DoctorCallRequest,
    responses((status = 200, body = CallView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_call_next(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<SessionId>,
    ApiJson(req): ApiJson<DoctorCallRequest>,
) -> ApiResult<ApiJson<CallView>> {
    let room = req.room.trim().to_string();
    let n = room.chars().count();
    if n == 0 || n > 16 || room.chars().any(char::is_control) {
        return Err(ValidationError::new("room", "1 to 16 printable characters").into());
    }
    let doctor = doctor_of(&state, &audit).await?;
    own_session(&state, doctor, id).await?;
    let q = state.actors.call_next(id, room.clone()).await.map_err(queue_error)?;
    let mut visit = None;
    if let Some((entry, room)) = q.called() {
        let a: Appointment = state
            .stores
            .data
            .appointment(entry.appointment_id)
            .await?
            .ok_or_else(|| ApiError::not_found("appointment"))?;
        let v = state.actors.call_visit(a, room.to_string()).await.map_err(|e| visit_error(&state, e))?;
        audit
            .record(
                audit.event("visit.call", Target::new("visit", v.id)?)?.concerning(v.account_id, Some(v.patient_id)),
            )
            .await?;
        visit = Some(v);
    } else {
        audit.record(audit.event("visit.call", Target::new("session", id)?)?).await?;
    }
    Ok(ApiJson(CallView { queue: queue_view(&q), visit }))
}

/// A visit of the doctor's own, as written so far.
#[utoipa::path(get, path = "/api/v1/doctor/visits/{id}", tag = "doctor", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, body = Visit), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_visit(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<ApiJson<Visit>> {
    let doctor = doctor_of(&state, &audit).await?;
    let v = own_visit(&state, doctor, id).await?;
    record_visit(&audit, "record.read", &v).await?;
    Ok(ApiJson(v))
}

/// The patient is in: the consultation starts (a repeat changes nothing).
#[utoipa::path(post, path = "/api/v1/doctor/visits/{id}/start", tag = "doctor", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, body = Visit), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn doctor_start(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<ApiJson<Visit>> {
    let doctor = doctor_of(&state, &audit).await?;
    own_visit(&state, doctor, id).await?;
    let v = state.actors.start_visit(id).await.map_err(|e| visit_error(&state, e))?;
    record_visit(&audit, "visit.start", &v).await?;
    Ok(ApiJson(v))
}

/// Writes the visit: the whole form (chief complaint, diagnoses with optional ICD-10 codes,
/// prescription, exam orders, the record), validated whole; only in consultation.
#[utoipa::path(put, path = "/api/v1/doctor/visits/{id}", tag = "doctor", security(("bearer" = [])),
    params(("id" = VisitId, Path)), request_body = ConsultationInput,
    responses((status = 200, body = Visit), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn doctor_write(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<VisitId>,
    ApiJson(input): ApiJson<ConsultationInput>,
) -> ApiResult<ApiJson<Visit>> {
    let doctor = doctor_of(&state, &audit).await?;
    own_visit(&state, doctor, id).await?;
    let v = state.actors.write_visit(id, input).await.map_err(|e| visit_error(&state, e))?;
    record_visit(&audit, "record.write", &v).await?;
    Ok(ApiJson(v))
}

/// Ends the visit: the exam orders become exams, the prescription and exams become the
/// patient's unpaid fee items, the appointment is `seen`. Needs a chief complaint and a diagnosis.
#[utoipa::path(post, path = "/api/v1/doctor/visits/{id}/finish", tag = "doctor", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, body = Visit), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn doctor_finish(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<ApiJson<Visit>> {
    let doctor = doctor_of(&state, &audit).await?;
    own_visit(&state, doctor, id).await?;
    let v = state.actors.finish_visit(id).await.map_err(|e| visit_error(&state, e))?;
    record_visit(&audit, "visit.finish", &v).await?;
    Ok(ApiJson(v))
}

/// A visit's notes from the patient, for the doctor's patient view.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitNotes {
    pub visit_id: VisitId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub notes: Vec<PatientNote>,
}

/// REC-3: the patient's notes on a visit, for any doctor of the visit's department (not only the
/// one who saw them: a colleague may see the patient next); another department's doctor gets
/// 404. Every read is audited (`note.read`) and shows in the patient's access history.
#[utoipa::path(get, path = "/api/v1/doctor/visits/{id}/notes", tag = "doctor", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, body = VisitNotes), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_notes(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<ApiJson<VisitNotes>> {
    let doctor = doctor_of(&state, &audit).await?;
    let department = state.catalog().doctor(doctor).map(|d| d.department_id);
    match state.stores.data.visit(id).await? {
        Some(row) if Some(row.department_id) == department => {}
        _ => return Err(ApiError::not_found("visit")),
    }
    let v = state.actors.visit(id).await.map_err(|e| visit_error(&state, e))?;
    record_visit(&audit, "note.read", &v).await?;
    Ok(ApiJson(VisitNotes { visit_id: v.id, patient_id: v.patient_id, patient_name: v.patient_name, notes: v.notes }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExcuseRequest {
    /// Why the no-show is struck off (the patient came; the hospital was at fault), for the audit.
    pub reason: String,
}

/// Strikes off a wrong no-show (爽约撤销): the appointment becomes `excused` and no longer counts
/// towards a ban.
#[utoipa::path(post, path = "/api/v1/admin/appointments/{id}/excuse", tag = "doctor", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)), request_body = ExcuseRequest,
    responses((status = 200, body = AppointmentView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn excuse_missed(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(req): ApiJson<ExcuseRequest>,
) -> ApiResult<ApiJson<AppointmentView>> {
    let event = audit.event("appointment.excuse", Target::new("appointment", id)?)?.purpose(&req.reason)?;
    let stored = state.stores.data.appointment(id).await?.ok_or_else(|| ApiError::not_found("appointment"))?;
    let a = state
        .actors
        .attend(stored.doctor_id, id, AppointmentEvent::Excuse)
        .await
        .map_err(|e| booking_error(&state, e))?;
    audit.record(event.concerning(a.account_id, Some(a.patient_id))).await?;
    Ok(ApiJson(appointment_view(&state, &a)))
}

/// When a session's close job will run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CloseView {
    pub session_id: SessionId,
    pub due_at: DateTime<Utc>,
}

/// Closes a session now (the doctor ended the clinic early): its durable close job is moved to
/// now and runs within a tick of the job runner: every booking never checked in becomes `missed`.
#[utoipa::path(post, path = "/api/v1/admin/sessions/{id}/close", tag = "doctor", security(("bearer" = [])),
    params(("id" = SessionId, Path)),
    responses((status = 202, body = CloseView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn close_session_now(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<SessionId>,
) -> ApiResult<(StatusCode, ApiJson<CloseView>)> {
    let s = state.stores.data.session(id).await?.ok_or_else(|| ApiError::not_found("session"))?;
    if audit.caller.roles == [Role::Doctor] {
        // A doctor alone closes only their own sessions.
        let mine = doctor_of(&state, &audit).await?;
        own_session(&state, mine, id).await?;
    }
    let now = Utc::now();
    let job = Job::close_session(s.id, s.doctor_id, now, now);
    state.stores.data.put_job(&job).await?;
    audit.record(audit.event("session.close", Target::new("session", id)?)?).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(CloseView { session_id: id, due_at: job.due_at })))
}

/// The audit entry of a doctor's action on a visit, naming the patient it concerns.
async fn record_visit(audit: &StaffAudit, action: &str, v: &Visit) -> ApiResult<()> {
    audit
        .record(audit.event(action, Target::new("visit", v.id)?)?.concerning(v.account_id, Some(v.patient_id)))
        .await
        .map(drop)
}
