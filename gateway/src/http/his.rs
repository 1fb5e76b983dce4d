//! The hospital systems' integration API (issue 11): most hospitals keep their records in their
//! own HIS/LIS, which push here a visit (diagnoses, prescription, exam orders), the medical record
//! text and an exam's result. The patient then sees a pushed visit in their history and detail
//! exactly like one a doctor wrote here: it is made by the visit's actor (`Visit::imported`),
//! sealed with the patient's data key, and a finished visit's exam orders become exams and its
//! orders fee items.
//!
//! # Authentication
//!
//! Signed like the lab's report upload (`exams::Delivery`, one verifier for both), with the HIS
//! key (`gateway.his_webhook_secret`): `X-His-Signature: t=<unix seconds>,v1=<hex>`, the
//! lowercase hex HMAC-SHA256 of `"<t>.<METHOD> <path and query as sent>\n<raw body>"`. Refused
//! with 401 `signature_missing`, `signature_expired` (more than 5 minutes from our clock),
//! `signature_invalid` or `signature_replayed` (each signature is accepted once).
//!
//! # Idempotency
//!
//! Each item is `PUT` under the sending system's id (`/api/v1/his/visits/{external_id}`, ...).
//! The first push answers 201; the same item again answers 200 with the same object and changes
//! nothing; other content under an id already used is 409 `external_id_reused` (a change is sent
//! as a new item). The claim remembers a SHA-256 of the item sealed with the patient's key, so
//! nothing of the item's content is stored in clear beside it.

use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use chrono::{DateTime, Utc};
use hospital_domain::exam::ExamChange;
use hospital_domain::exam::ExamStatus;
use hospital_domain::report::parse_external_id;
use hospital_domain::visit::{ConsultationInput, ImportedVisit, Visit, VisitId, VisitStatus};
use hospital_domain::{AccountId, AppointmentId, DoctorId, ExamId, PatientId, ValidationError};
use hospital_store::PersonKey;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{parse_json, ApiJson, ApiPath, RawBody};
use crate::http::exams::{Delivery, ExamView};
use crate::http::fees::HIS;
use crate::http::visits::visit_error;
use crate::state::AppState;

/// The claim systems of the items (`external_refs`).
const VISITS: &str = "his:visit";
const RECORDS: &str = "his:record";
const RESULTS: &str = "his:exam-result";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(his_visit)).routes(routes!(his_record)).routes(routes!(his_exam_result))
}

/// A visit as the HIS sends it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HisVisit {
    pub account_id: AccountId,
    /// A 就诊人 of that account.
    pub patient_id: PatientId,
    /// The doctor (of our catalogue); the visit is in their department.
    pub doctor_id: DoctorId,
    /// The appointment made here, if the visit was booked here; none for one registered at the
    /// counter.
    #[serde(default)]
    pub appointment_id: Option<AppointmentId>,
    /// The consulting room (诊室).
    pub room: String,
    pub started_at: DateTime<Utc>,
    /// When the visit closed; absent while it is open.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// What the doctor wrote: chief complaint, diagnoses, prescription, exam orders, record.
    pub consultation: ConsultationInput,
}

/// The medical record text of a visit pushed before.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HisRecord {
    /// The HIS's id of the visit (as pushed to `/api/v1/his/visits/{external_id}`).
    pub visit_external_id: String,
    /// The record (电子病历), up to 20000 characters; replaces the visit's record.
    pub text: String,
}

/// An exam's result, from the HIS or LIS.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HisExamResult {
    /// Our exam (as booked for a visit's exam order; see the visit's `exam_orders`).
    pub exam_id: ExamId,
    pub abnormal: bool,
    /// The result preview, up to 2000 characters.
    pub summary: String,
}

/// The signed bytes of a HIS call: `"<METHOD> <path and query>\n<body>"` (after `"<t>."`).
async fn accept(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    subject: &str,
) -> ApiResult<Delivery> {
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let parts: [&[u8]; 5] = [method.as_str().as_bytes(), b" ", target.as_bytes(), b"\n", body];
    Delivery::accept_from(&HIS, state, headers, &parts, subject).await
}

/// What claiming an external id found.
enum Claim {
    /// This call claimed it: make the item.
    New,
    /// The same item was pushed before: our id of it.
    Repeat(String),
}

/// Claims `external_id` of `system` for our `id`, remembering the item's fingerprint sealed with
/// the patient's key; a repeat with the same item is `Repeat`, with another 409.
async fn claim<T: Serialize>(
    state: &AppState,
    system: &str,
    external_id: &str,
    id: &str,
    key: &PersonKey,
    item: &T,
) -> ApiResult<Claim> {
    let context = format!("{system}:{external_id}");
    let canonical = serde_json::to_vec(item).map_err(|e| ApiError::Internal(e.to_string()))?;
    let fingerprint = hex::encode(Sha256::digest(&canonical));
    let value = format!("{id} {}", key.seal_text(&context, &fingerprint));
    let Some(before) = state.stores.data.claim_external_id(system, external_id, &value).await? else {
        return Ok(Claim::New);
    };
    let (before_id, sealed) = before.split_once(' ').unwrap_or((before.as_str(), ""));
    let same = key.open_text(&context, sealed).is_ok_and(|f| f == fingerprint);
    if !same {
        return Err(ApiError::Conflict {
            code: "external_id_reused",
            message: format!(
                "{external_id} was pushed before with other content; send a change under a new external id"
            ),
        });
    }
    Ok(Claim::Repeat(before_id.to_string()))
}

/// Frees a claim after a failed push, so a retry can make the item.
async fn release(state: &AppState, system: &str, external_id: &str) {
    if let Err(e) = state.stores.data.release_external_id(system, external_id).await {
        tracing::warn!(error = %e, system, "could not release a failed HIS push's external id");
    }
}

/// A repeat whose first push is still being made (or failed half-way) is 409, to retry.
fn pending() -> ApiError {
    ApiError::Conflict {
        code: "his_push_pending",
        message: "this external id is being stored by another request; try again shortly".into(),
    }
}

/// Parses the body after the signature is checked.
fn body<T: DeserializeOwned>(raw: &[u8]) -> ApiResult<T> {
    parse_json(raw)
}

/// The HIS pushes a visit, made here as it stands in the HIS (see the module's doc for the
/// signature and idempotency). 201 the first time, 200 with the same visit for a repeat.
#[utoipa::path(put, path = "/api/v1/his/visits/{external_id}", tag = "his",
    params(("external_id" = String, Path, description = "The HIS's id of the visit: 1 to 128 printable ASCII characters"),
        ("X-His-Signature" = String, Header, description = "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256 of \"<t>.<METHOD> <path and query>\\n<raw body>\">")),
    request_body(content = HisVisit, content_type = "application/json", description = "Read as raw bytes: the signature covers them exactly"),
    responses((status = 201, body = Visit), (status = 200, body = Visit, description = "A repeat: the visit made before"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn his_visit(
    State(state): State<AppState>,
    ApiPath(external_id): ApiPath<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> ApiResult<(StatusCode, ApiJson<Visit>)> {
    let delivery = accept(&state, &method, &uri, &headers, &raw, "visit").await?;
    let result = push_visit(&state, &external_id, &raw).await;
    let (status, v) = delivery.settle(&state, result).await?;
    Ok((status, ApiJson(v)))
}

async fn push_visit(state: &AppState, external_id: &str, raw: &[u8]) -> ApiResult<(StatusCode, Visit)> {
    let external_id = parse_external_id(external_id)?;
    let req: HisVisit = body(raw)?;
    let patient = state
        .stores
        .data
        .patient(req.account_id, req.patient_id)
        .await?
        .ok_or_else(|| ValidationError::new("patient_id", "no such patient of the account"))?;
    let department_id = state
        .catalog()
        .doctor(req.doctor_id)
        .map(|d| d.department_id)
        .ok_or_else(|| ValidationError::new("doctor_id", "no such doctor"))?;
    if let Some(a) = req.appointment_id {
        match state.stores.data.appointment(a).await? {
            Some(a) if a.account_id == req.account_id && a.patient_id == req.patient_id => {}
            _ => return Err(ValidationError::new("appointment_id", "no such appointment of the patient").into()),
        }
    }
    let id = req.appointment_id.map(VisitId::of_appointment).unwrap_or_default();
    let visit = Visit::imported(
        ImportedVisit {
            id,
            appointment_id: req.appointment_id.unwrap_or(AppointmentId(id.0)),
            account_id: req.account_id,
            patient_id: req.patient_id,
            patient_name: patient.name.clone(),
            doctor_id: req.doctor_id,
            department_id,
            room: req.room.clone(),
            started_at: req.started_at,
            finished_at: req.finished_at,
        },
        &req.consultation,
    )
    .map_err(|e| visit_error(state, e.into()))?;
    let key = state.records.key(req.patient_id).await?;
    match claim(state, VISITS, &external_id, &id.to_string(), &key, &req).await? {
        Claim::Repeat(before) => {
            let before = VisitId::parse(&before).map_err(|_| pending())?;
            let mut v = state.actors.visit(before).await.map_err(|_| pending())?;
            if v.status == VisitStatus::Finished {
                // Finishes what a first push left undone (its exams, the appointment `seen`);
                // done already, it changes nothing.
                v = state.actors.finish_visit(before).await.map_err(|e| visit_error(state, e))?;
            }
            Ok((StatusCode::OK, v))
        }
        Claim::New => match state.actors.import_visit(visit).await {
            Ok(v) => {
                tracing::info!(visit = %v.id, status = ?v.status, "HIS visit stored");
                Ok((StatusCode::CREATED, v))
            }
            Err(e) => {
                // A visit stored before the failure (booking its exams, attending its
                // appointment) keeps the claim: the HIS's retry is a repeat, which finishes it.
                let stored = matches!(e, hospital_actors::VisitFailure::Unavailable(_))
                    && matches!(state.stores.data.visit(id).await, Ok(Some(_)));
                if !stored {
                    release(state, VISITS, &external_id).await;
                }
                Err(visit_error(state, e))
            }
        },
    }
}

/// The HIS pushes the medical record text of a visit it pushed before: it replaces the visit's
/// record. 201 the first time, 200 for a repeat; other text under the same id is 409.
#[utoipa::path(put, path = "/api/v1/his/records/{external_id}", tag = "his",
    params(("external_id" = String, Path, description = "The HIS's id of this record text: 1 to 128 printable ASCII characters"),
        ("X-His-Signature" = String, Header, description = "As for /api/v1/his/visits/{external_id}")),
    request_body(content = HisRecord, content_type = "application/json", description = "Read as raw bytes: the signature covers them exactly"),
    responses((status = 201, body = Visit), (status = 200, body = Visit, description = "A repeat"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn his_record(
    State(state): State<AppState>,
    ApiPath(external_id): ApiPath<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> ApiResult<(StatusCode, ApiJson<Visit>)> {
    let delivery = accept(&state, &method, &uri, &headers, &raw, "record").await?;
    let result = push_record(&state, &external_id, &raw).await;
    let (status, v) = delivery.settle(&state, result).await?;
    Ok((status, ApiJson(v)))
}

async fn push_record(state: &AppState, external_id: &str, raw: &[u8]) -> ApiResult<(StatusCode, Visit)> {
    let external_id = parse_external_id(external_id)?;
    let req: HisRecord = body(raw)?;
    let visit_ext = parse_external_id(&req.visit_external_id)
        .map_err(|_| ValidationError::new("visit_external_id", "1 to 128 printable ASCII characters"))?;
    let not_pushed = || ValidationError::new("visit_external_id", "no visit was pushed under this id");
    let claimed = state.stores.data.external_ref(VISITS, &visit_ext).await?.ok_or_else(not_pushed)?;
    let visit_id = claimed.split(' ').next().and_then(|s| VisitId::parse(s).ok()).ok_or_else(not_pushed)?;
    let row = state.stores.data.visit(visit_id).await?.ok_or_else(pending)?;
    let key = state.records.key(row.patient_id).await?;
    match claim(state, RECORDS, &external_id, &visit_id.to_string(), &key, &req).await? {
        Claim::Repeat(_) => {
            Ok((StatusCode::OK, state.actors.visit(visit_id).await.map_err(|e| visit_error(state, e))?))
        }
        Claim::New => match state.actors.amend_visit_record(visit_id, req.text.clone()).await {
            Ok(v) => Ok((StatusCode::CREATED, v)),
            Err(e) => {
                release(state, RECORDS, &external_id).await;
                Err(visit_error(state, e))
            }
        },
    }
}

/// The HIS or LIS pushes an exam's result: the exam is completed with it (the patient is told,
/// with an alert when abnormal). 201 the first time, 200 for a repeat; another result under the
/// same id is 409.
#[utoipa::path(put, path = "/api/v1/his/exam-results/{external_id}", tag = "his",
    params(("external_id" = String, Path, description = "The sending system's id of the result: 1 to 128 printable ASCII characters"),
        ("X-His-Signature" = String, Header, description = "As for /api/v1/his/visits/{external_id}")),
    request_body(content = HisExamResult, content_type = "application/json", description = "Read as raw bytes: the signature covers them exactly"),
    responses((status = 201, body = ExamView), (status = 200, body = ExamView, description = "A repeat"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn his_exam_result(
    State(state): State<AppState>,
    ApiPath(external_id): ApiPath<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    RawBody(raw): RawBody,
) -> ApiResult<(StatusCode, ApiJson<ExamView>)> {
    let delivery = accept(&state, &method, &uri, &headers, &raw, "exam result").await?;
    let result = push_result(&state, &external_id, &raw).await;
    let (status, e) = delivery.settle(&state, result).await?;
    Ok((status, ApiJson(e)))
}

async fn push_result(state: &AppState, external_id: &str, raw: &[u8]) -> ApiResult<(StatusCode, ExamView)> {
    let external_id = parse_external_id(external_id)?;
    let req: HisExamResult = body(raw)?;
    let exam =
        state.stores.data.exam(req.exam_id).await?.ok_or_else(|| ValidationError::new("exam_id", "no such exam"))?;
    let key = state.records.key(exam.patient_id).await?;
    match claim(state, RESULTS, &external_id, &exam.id.to_string(), &key, &req).await? {
        Claim::Repeat(_) => {
            let e = crate::http::exams::stored_exam(state, exam.id).await?.ok_or_else(pending)?;
            Ok((StatusCode::OK, ExamView::from(&e)))
        }
        Claim::New => {
            let change =
                ExamChange { status: ExamStatus::Completed, abnormal: Some(req.abnormal), summary: Some(req.summary) };
            match state.actors.change_exam(exam.id, change).await {
                Ok(e) => Ok((StatusCode::CREATED, ExamView::from(&e))),
                Err(e) => {
                    release(state, RESULTS, &external_id).await;
                    Err(e.into())
                }
            }
        }
    }
}
