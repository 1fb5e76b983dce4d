//! The patient's side of visits and records (REC-1..3), for every 就诊人 of the account: visit
//! history (by time, a date range, search by department, doctor or diagnosis, paging), a visit's
//! detail (doctor, diagnoses, prescription, the record, linked exams), and the medical record as
//! a PDF the server renders (`documents`, a CJK font subset into the file), and the patient's
//! notes for the doctor, on a past visit or on an upcoming appointment.
//!
//! And SET-3's account deletion: asked for with an SMS code, carried out after a cooling-off
//! (`actors.jobs.erase_cooling_off_secs`, 7 days) by a durable job unless cancelled: every
//! patient's data key destroyed (crypto-erasure), then the account's rows deleted.
//!
//! Visits are sealed with the patient's data key; they are opened here, for their owner only:
//! another account's patient or visit is 404, as if it did not exist.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use hospital_documents::{render_medical_record, CjkFont, FontConfig, HospitalHeader, MedicalRecordInput, PatientInfo};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::exam::Exam;
use hospital_domain::jobs::Job;
use hospital_domain::privacy::DeletionRequest;
use hospital_domain::visit::{PatientNote, Visit, VisitId, VisitStatus};
use hospital_domain::{AppointmentId, DepartmentId, DoctorId, PatientId};
use hospital_store::PatientRecord;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::validate::{Day, ListLimit, ListOffset};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(visit_history))
        .routes(routes!(visit_detail))
        .routes(routes!(record_pdf))
        .routes(routes!(add_note))
        .routes(routes!(add_appointment_note))
        .routes(routes!(request_deletion, deletion_status, cancel_deletion))
}

/// The account's patient, or 404.
async fn own_patient(state: &AppState, caller: &AccountCaller, id: PatientId) -> ApiResult<PatientRecord> {
    state.stores.data.patient(caller.account_id, id).await?.ok_or_else(|| ApiError::not_found("patient"))
}

/// Every visit of the account's patient, opened (none if the patient has no data key: never
/// seen, or erased).
async fn visits_of(state: &AppState, caller: &AccountCaller, patient: PatientId) -> ApiResult<Vec<Visit>> {
    let rows = state.stores.data.visits_of_patient(caller.account_id, patient).await?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let Some(key) = state.records.existing_key(patient).await? else { return Ok(vec![]) };
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(r.open(&key)?);
    }
    Ok(out)
}

/// One visit of the caller's, opened; another account's is 404.
async fn own_visit(state: &AppState, caller: &AccountCaller, id: VisitId) -> ApiResult<Visit> {
    let row = match state.stores.data.visit(id).await? {
        Some(r) if r.account_id == caller.account_id => r,
        _ => return Err(ApiError::not_found("visit")),
    };
    let key = state.records.existing_key(row.patient_id).await?.ok_or_else(|| ApiError::not_found("visit"))?;
    Ok(row.open(&key)?)
}

/// A visit in a history list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitSummary {
    pub id: VisitId,
    pub patient_id: PatientId,
    /// The local date of the visit.
    pub date: NaiveDate,
    pub called_at: DateTime<Utc>,
    pub status: VisitStatus,
    pub doctor_id: DoctorId,
    pub doctor_name: String,
    pub department_id: DepartmentId,
    pub department_name: String,
    /// The diagnoses in one line (主要诊断 first).
    pub diagnosis: String,
}

/// A page of the history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitPage {
    /// Visits matching the filters (all pages).
    pub total: usize,
    pub items: Vec<VisitSummary>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Visits on or after this local date.
    #[param(inline)]
    pub from: Option<Day>,
    /// Visits on or before this local date.
    #[param(inline)]
    pub to: Option<Day>,
    /// Matches the department, the doctor or a diagnosis (text or ICD-10 code); at most 50
    /// characters.
    pub q: Option<String>,
    #[param(inline)]
    pub limit: Option<ListLimit>,
    #[param(inline)]
    pub offset: Option<ListOffset>,
}

fn names(state: &AppState, v: &Visit) -> (String, String) {
    let idx = state.catalog();
    let doctor = idx.doctor(v.doctor_id).map(|d| d.name.clone()).unwrap_or_default();
    let department = idx.department(v.department_id).map(|d| d.name.clone()).unwrap_or_default();
    (doctor, department)
}

/// REC-1: a 就诊人's visits, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/v1/me/patients/{id}/visits", tag = "records", security(("bearer" = [])),
    params(("id" = PatientId, Path), HistoryQuery),
    responses((status = 200, body = VisitPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn visit_history(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<ApiJson<VisitPage>> {
    if q.q.as_ref().is_some_and(|s| s.chars().count() > 50) {
        return Err(ApiError::BadRequest("q: at most 50 characters".into()));
    }
    own_patient(&state, &caller, id).await?;
    let needle = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
    let matches = |v: &Visit, s: &VisitSummary| {
        let Some(n) = &needle else { return true };
        let code = v.diagnoses.iter().any(|d| d.icd10.as_ref().is_some_and(|c| c.as_str().to_lowercase().contains(n)));
        code || [&s.doctor_name, &s.department_name, &s.diagnosis].iter().any(|f| f.to_lowercase().contains(n))
    };
    let mut items: Vec<VisitSummary> = visits_of(&state, &caller, id)
        .await?
        .into_iter()
        .filter_map(|v| {
            let (doctor_name, department_name) = names(&state, &v);
            let s = VisitSummary {
                id: v.id,
                patient_id: v.patient_id,
                date: state.zone.local_date(v.called_at),
                called_at: v.called_at,
                status: v.status,
                doctor_id: v.doctor_id,
                doctor_name,
                department_id: v.department_id,
                department_name,
                diagnosis: v.diagnosis_summary(),
            };
            let in_range = q.from.is_none_or(|f| s.date >= f.get()) && q.to.is_none_or(|t| s.date <= t.get());
            (in_range && matches(&v, &s)).then_some(s)
        })
        .collect();
    items.sort_by_key(|s| std::cmp::Reverse(s.called_at));
    let total = items.len();
    let offset = q.offset.map_or(0, ListOffset::get);
    let limit = q.limit.map_or(20, ListLimit::get);
    let items = items.into_iter().skip(offset).take(limit).collect();
    Ok(ApiJson(VisitPage { total, items }))
}

/// REC-2: a visit with its doctor, department and the exams of its orders.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitDetail {
    pub visit: Visit,
    pub doctor_name: String,
    pub department_name: String,
    /// The exams booked for the visit's exam orders, as they stand.
    pub exams: Vec<Exam>,
}

/// REC-2: one visit of the account's patients.
#[utoipa::path(get, path = "/api/v1/me/visits/{id}", tag = "records", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, body = VisitDetail), (status = 404, body = ErrorBody)))]
async fn visit_detail(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<ApiJson<VisitDetail>> {
    let visit = own_visit(&state, &caller, id).await?;
    let mut rows = Vec::new();
    for eid in visit.exam_orders.iter().filter_map(|o| o.exam_id) {
        if let Some(e) = state.stores.data.exam(eid).await?.filter(|e| e.account_id == caller.account_id) {
            rows.push(e);
        }
    }
    let exams = crate::http::exams::open_rows(&state, rows).await?;
    let (doctor_name, department_name) = names(&state, &visit);
    Ok(ApiJson(VisitDetail { visit, doctor_name, department_name, exams }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    /// For the doctor: 1 to 1000 characters, line breaks kept (e.g. a symptom since the visit,
    /// a drug allergy).
    pub text: String,
}

/// REC-3: leaves a note for the doctor on a visit (at any stage; at most 20 per visit). Sealed
/// with the visit; the doctors of the visit's department read it on the workstation. Answers
/// the visit's notes.
#[utoipa::path(post, path = "/api/v1/me/visits/{id}/notes", tag = "records", security(("bearer" = [])),
    params(("id" = VisitId, Path)), request_body = NoteRequest,
    responses((status = 201, body = [PatientNote]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<VisitId>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, ApiJson<Vec<PatientNote>>)> {
    own_visit(&state, &caller, id).await?;
    let v = state.actors.add_visit_note(id, req.text).await.map_err(|e| crate::http::visits::visit_error(&state, e))?;
    Ok((StatusCode::CREATED, ApiJson(v.notes)))
}

/// REC-3: leaves a note for the doctor on an upcoming appointment (booked and paid, or checked
/// in): a symptom, an allergy, a question, for the doctor of that clinic session to read before
/// and during the visit. Sealed with the patient's key; once the patient is called the visit
/// takes the notes over (at most 20). 409 `appointment_not_upcoming` for an appointment that is
/// over, cancelled or unpaid. Answers the appointment's notes.
#[utoipa::path(post, path = "/api/v1/me/appointments/{id}/notes", tag = "records", security(("bearer" = [])),
    params(("id" = AppointmentId, Path)), request_body = NoteRequest,
    responses((status = 201, body = [PatientNote]), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_appointment_note(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<AppointmentId>,
    ApiJson(req): ApiJson<NoteRequest>,
) -> ApiResult<(StatusCode, ApiJson<Vec<PatientNote>>)> {
    let a = match state.stores.data.appointment(id).await? {
        Some(a) if a.account_id == caller.account_id => a,
        _ => return Err(ApiError::not_found("appointment")),
    };
    if !matches!(a.status, AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn) {
        return Err(ApiError::Conflict {
            code: "appointment_not_upcoming",
            message: "notes go on an appointment that is booked and paid or checked in; after the visit, add them to the visit".into(),
        });
    }
    let notes = state
        .actors
        .add_appointment_note(a, req.text)
        .await
        .map_err(|e| crate::http::visits::visit_error(&state, e))?;
    Ok((StatusCode::CREATED, ApiJson(notes)))
}

/// The CJK font, loaded once (the first of Debian's CJK fonts that exists).
fn font() -> ApiResult<&'static CjkFont> {
    static FONT: OnceLock<Result<CjkFont, String>> = OnceLock::new();
    FONT.get_or_init(|| FontConfig::default().load().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ApiError::Unavailable(format!("no CJK font for the record PDF: {e}")))
}

/// REC-3: the visit's medical record (门诊病历) as a PDF: the hospital's header, the patient, the
/// complaint, diagnoses, prescription, exam orders and the record text.
#[utoipa::path(get, path = "/api/v1/me/visits/{id}/record.pdf", tag = "records", security(("bearer" = [])),
    params(("id" = VisitId, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn record_pdf(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<VisitId>,
) -> ApiResult<Response> {
    let visit = own_visit(&state, &caller, id).await?;
    let p = own_patient(&state, &caller, visit.patient_id).await?;
    let idx = state.catalog();
    let hospital = idx.hospital.as_ref().map(HospitalHeader::from).unwrap_or(HospitalHeader {
        name: "医院".into(),
        address: String::new(),
        phone: None,
    });
    let (doctor_name, department_name) = names(&state, &visit);
    let input = MedicalRecordInput {
        hospital,
        patient: PatientInfo { id: p.id, name: p.name, gender: p.gender, birth_date: Some(p.birth_date), phone: None },
        visit,
        doctor_name,
        department_name,
        zone: state.zone,
        generated_at: Utc::now(),
    };
    let font = font()?;
    let pdf = tokio::task::spawn_blocking(move || render_medical_record(font, &input))
        .await
        .map_err(|e| ApiError::Internal(format!("the PDF renderer failed: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot render the record: {e}")))?;
    let name = format!("attachment; filename=\"record-{id}.pdf\"");
    Ok(([(header::CONTENT_TYPE, "application/pdf".to_string()), (header::CONTENT_DISPOSITION, name)], pdf)
        .into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionAsk {
    /// The SMS code sent to the account's phone (`POST /api/v1/auth/sms/send`).
    pub code: String,
}

/// SET-3: asks for the account's deletion. After the cooling-off (`erase_at`) every 就诊人's data
/// key is destroyed and the account's rows are deleted; until then it can be cancelled. Asking
/// again keeps the first request.
#[utoipa::path(post, path = "/api/v1/me/deletion", tag = "records", security(("bearer" = [])), request_body = DeletionAsk,
    responses((status = 202, body = DeletionRequest), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn request_deletion(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiJson(req): ApiJson<DeletionAsk>,
) -> ApiResult<(StatusCode, ApiJson<DeletionRequest>)> {
    let account = state.stores.data.account(caller.account_id).await?.ok_or(ApiError::InvalidToken)?;
    let phone = account.phone.ok_or_else(|| ApiError::Conflict {
        code: "phone_required",
        message: "bind a phone first: deletion is confirmed by an SMS code".into(),
    })?;
    state.limits.check_phone(phone.as_str())?;
    crate::auth::codes::verify(&state, &phone, &req.code).await?;
    if let Some(existing) = state.stores.data.deletion(caller.account_id).await? {
        let job = Job::erase_account(caller.account_id, existing.erase_at, existing.requested_at);
        state.stores.data.schedule_job(&job).await?;
        return Ok((StatusCode::ACCEPTED, ApiJson(existing)));
    }
    let now = Utc::now();
    let cooling = chrono::Duration::from_std(state.actors.config().jobs.erase_cooling_off)
        .unwrap_or(chrono::Duration::days(hospital_domain::privacy::DEFAULT_COOLING_OFF_DAYS));
    let request = DeletionRequest::new(caller.account_id, now, cooling);
    // The request first: the job erases only while a request stands (a job left behind by a
    // failed write or a cancellation does nothing); a request whose job was not written is
    // written again by asking again.
    state.stores.data.put_deletion(&request).await?;
    state.stores.data.put_job(&Job::erase_account(caller.account_id, request.erase_at, now)).await?;
    tracing::info!(account = %caller.account_id, erase_at = %request.erase_at, "account deletion requested");
    Ok((StatusCode::ACCEPTED, ApiJson(request)))
}

/// The pending deletion request, if any (404 when none).
#[utoipa::path(get, path = "/api/v1/me/deletion", tag = "records", security(("bearer" = [])),
    responses((status = 200, body = DeletionRequest), (status = 404, body = ErrorBody)))]
async fn deletion_status(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<ApiJson<DeletionRequest>> {
    let d = state.stores.data.deletion(caller.account_id).await?;
    d.map(ApiJson).ok_or_else(|| ApiError::not_found("deletion request"))
}

/// Cancels the pending deletion (during the cooling-off).
#[utoipa::path(delete, path = "/api/v1/me/deletion", tag = "records", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn cancel_deletion(State(state): State<AppState>, caller: AccountCaller) -> ApiResult<StatusCode> {
    if !state.stores.data.remove_deletion(caller.account_id).await? {
        return Err(ApiError::not_found("deletion request"));
    }
    state.stores.data.cancel_job(&Job::erase_id(caller.account_id)).await?;
    tracing::info!(account = %caller.account_id, "account deletion cancelled");
    Ok(StatusCode::NO_CONTENT)
}
