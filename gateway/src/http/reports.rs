//! Report files (REC-4): the lab or PACS uploads a report file (a PDF, an image, a DICOM file as
//! it comes) for an exam; it is stored in object storage sealed with the patient's data key
//! (`PersonKey`), so the bucket holds no plaintext and crypto-erasure covers it. The patient lists
//! the reports of each 就诊人 and downloads them through short-lived signed links (decrypted on
//! the way out by `ReportOpener`, with ranges and cache headers: `http::files`), and makes share
//! links with an expiry that they can revoke. A doctor reads a report of a patient their
//! department has seen, and every such read writes an audit entry.
//!
//! # The upload
//!
//! `PUT /api/v1/lab/exams/{exam}/reports/{external_id}?title=..&source=lab|pacs|his` with the
//! file as the raw body and its type in `Content-Type` (checked against its content). Signed
//! like the lab webhook (`X-Lab-Signature: t=<unix s>,v1=<hex>`, 5-minute window, each
//! signature once), over `"<t>."`, the request's path and query exactly as sent, a newline, then
//! the body: so the title and the exam are signed with the file. Idempotent by the sending
//! system's id: the same `external_id` from the same source again answers 200 with the report
//! stored the first time (201 the first time), and nothing doubles.
//!
//! Another account's report or share is 404, as if it did not exist.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hospital_domain::audit::Target;
use hospital_domain::report::{parse_external_id, parse_title, ReportFile, ReportSource, ShareLink, ShareState};
use hospital_domain::visit::VisitId;
use hospital_domain::{ExamId, PatientId, ReportId, Role, ShareId};
use hospital_objects::{ObjectError, Outbound};
use hospital_store::{PersonCipher, ReportRow};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::StaffAudit;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{AccountCaller, ApiJson, ApiPath, ApiQuery};
use crate::http::exams::Delivery;
use crate::state::AppState;

/// Where report files are stored: `reports/<patient id>/<uuid>.<ext>`.
pub const PREFIX: &str = "reports";

pub fn router() -> OpenApiRouter<AppState> {
    // The upload is capped by the report policy (`read_capped`), not the router's JSON limit.
    let upload = OpenApiRouter::new().routes(routes!(lab_upload)).layer(DefaultBodyLimit::disable());
    OpenApiRouter::new()
        .routes(routes!(patient_reports))
        .routes(routes!(my_report))
        .routes(routes!(create_share, list_shares))
        .routes(routes!(revoke_share))
        .routes(routes!(shared_file))
        .routes(routes!(doctor_report))
        .merge(upload)
}

/// The sealing context of a report file's bytes.
fn file_context(key: &str) -> String {
    format!("report:{key}")
}

/// The patient a report file's key belongs to.
fn patient_of_key(key: &str) -> Option<PatientId> {
    let rest = key.strip_prefix(PREFIX)?.strip_prefix('/')?;
    rest.split('/').next()?.parse().ok()
}

/// Opens report files on their way out (`FileService::with_outbound(PREFIX, ..)`): with the data
/// key of the patient the key names. An erased patient's files are gone (404).
pub struct ReportOpener {
    keys: PersonCipher,
}

impl ReportOpener {
    pub fn new(keys: PersonCipher) -> Self {
        ReportOpener { keys }
    }
}

#[async_trait::async_trait]
impl Outbound for ReportOpener {
    async fn reveal(&self, key: &str, stored: Bytes) -> Result<Bytes, ObjectError> {
        let patient = patient_of_key(key).ok_or(ObjectError::NotFound)?;
        let k = self
            .keys
            .existing_key(patient)
            .await
            .map_err(|e| ObjectError::Backend(format!("the vault: {e}")))?
            .ok_or(ObjectError::NotFound)?;
        let plain = k.open(&file_context(key), &stored).map_err(|e| ObjectError::Backend(e.to_string()))?;
        Ok(plain.into())
    }
}

/// A report file as the API shows it, with its exam's result preview.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub id: ReportId,
    pub patient_id: PatientId,
    pub exam_id: Option<ExamId>,
    pub visit_id: Option<VisitId>,
    /// e.g. 胸部CT报告
    pub title: String,
    /// application/pdf, image/png, image/jpeg, application/dicom, ...
    pub content_type: String,
    /// Bytes (of the file, not of its encrypted form).
    pub size: u64,
    pub source: ReportSource,
    pub uploaded_at: DateTime<Utc>,
    /// The exam's name (e.g. 胸部CT平扫).
    pub exam_name: Option<String>,
    /// The exam's result is abnormal.
    pub abnormal: bool,
    /// The exam's result preview.
    pub summary: Option<String>,
}

async fn view(state: &AppState, r: &ReportFile) -> ApiResult<ReportView> {
    let exam = match r.exam_id {
        Some(id) => crate::http::exams::stored_exam(state, id).await?.filter(|e| e.patient_id == r.patient_id),
        None => None,
    };
    Ok(ReportView {
        id: r.id,
        patient_id: r.patient_id,
        exam_id: r.exam_id,
        visit_id: r.visit_id,
        title: r.title.clone(),
        content_type: r.content_type.clone(),
        size: r.size,
        source: r.source,
        uploaded_at: r.uploaded_at,
        exam_name: exam.as_ref().map(|e| e.name.clone()),
        abnormal: exam.as_ref().is_some_and(|e| e.abnormal),
        summary: exam.and_then(|e| e.summary),
    })
}

/// A report with a signed link to download it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportDownload {
    pub report: ReportView,
    /// `GET` it (relative to the API's base): the file, decrypted, with `Range` support. Valid
    /// until `expires_at`, for whoever holds it: do not pass it on (make a share link instead).
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The file name a download carries: the title and the type's extension.
fn file_name(r: &ReportFile) -> String {
    let ext = r.object_key.rsplit('.').next().unwrap_or("bin");
    format!("{}.{ext}", r.title)
}

fn download(state: &AppState, view: ReportView, r: &ReportFile) -> ReportDownload {
    let (url, exp) = state.files.link(&r.object_key, None, Some(&file_name(r)));
    ReportDownload { report: view, url, expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_else(Utc::now) }
}

/// A report row opened; None if its patient's key is gone (erased).
async fn open(state: &AppState, row: &ReportRow) -> ApiResult<Option<ReportFile>> {
    match state.records.existing_key(row.patient_id).await? {
        Some(k) => Ok(Some(row.open(&k)?)),
        None => Ok(None),
    }
}

/// One report of the caller's, opened; another account's is 404.
async fn own_report(state: &AppState, caller: &AccountCaller, id: ReportId) -> ApiResult<ReportFile> {
    match state.stores.data.report(id).await? {
        Some(row) if row.account_id == caller.account_id => {
            open(state, &row).await?.ok_or_else(|| ApiError::not_found("report"))
        }
        _ => Err(ApiError::not_found("report")),
    }
}

/// Every report of an account's patient, opened, newest first.
pub(crate) async fn reports_of(
    state: &AppState,
    account: hospital_domain::AccountId,
    patient: PatientId,
) -> ApiResult<Vec<ReportFile>> {
    let rows = state.stores.data.reports_of_patient(account, patient).await?;
    let Some(key) = (if rows.is_empty() { None } else { state.records.existing_key(patient).await? }) else {
        return Ok(vec![]);
    };
    let mut out = rows.iter().map(|r| r.open(&key)).collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|r| std::cmp::Reverse((r.uploaded_at, r.id)));
    Ok(out)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The report's title, 1 to 100 characters (e.g. 胸部CT报告).
    pub title: String,
    /// Which system sends it: `lab`, `pacs` or `his`.
    #[param(inline)]
    pub source: ReportSource,
}

/// The hospital systems' upload of a report file for an exam (REC-4); see the module's doc for
/// the signature. 201 the first time, 200 with the same report for a repeat of `external_id`.
#[utoipa::path(put, path = "/api/v1/lab/exams/{id}/reports/{external_id}", tag = "reports",
    params(("id" = ExamId, Path), ("external_id" = String, Path, description = "The sending system's id of the file: 1 to 128 printable ASCII characters"),
        UploadQuery,
        ("X-Lab-Signature" = String, Header, description = "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256 of \"<t>.<path and query>\\n<raw body>\">")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file: PDF, PNG, JPEG or DICOM, with its type in Content-Type"),
    responses((status = 201, body = ReportView), (status = 200, body = ReportView, description = "A repeat: the report stored before"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn lab_upload(
    State(state): State<AppState>,
    ApiPath((id, external_id)): ApiPath<(ExamId, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, ApiJson<ReportView>)> {
    let bytes = crate::files::read_capped(body, state.files.report_policy.max_bytes).await?;
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()).to_string();
    let signed: [&[u8]; 3] = [target.as_bytes(), b"\n", &bytes];
    let delivery = Delivery::accept(&state, &headers, &signed, &format!("report of exam {id}")).await?;
    let result = store_upload(&state, id, &external_id, q, &headers, bytes).await;
    let (status, r) = delivery.settle(&state, result).await?;
    Ok((status, ApiJson(view(&state, &r).await?)))
}

async fn store_upload(
    state: &AppState,
    exam_id: ExamId,
    external_id: &str,
    q: UploadQuery,
    headers: &HeaderMap,
    bytes: Bytes,
) -> ApiResult<(StatusCode, ReportFile)> {
    let external_id = parse_external_id(external_id)?;
    let title = parse_title(&q.title)?;
    if q.source == ReportSource::Doctor {
        return Err(hospital_domain::ValidationError::new("source", "must be lab, pacs or his").into());
    }
    // Only the exam's ids are needed here: its row, not opened.
    let exam = state.stores.data.exam(exam_id).await?.ok_or_else(|| ApiError::not_found("exam"))?;
    let system = format!("{}:report", source_name(q.source));
    let id = ReportId::new();
    if let Some(before) = state.stores.data.claim_external_id(&system, &external_id, &id.to_string()).await? {
        // A repeat: the report stored the first time (or, if that is still being stored, 409).
        let row = match before.parse::<ReportId>() {
            Ok(rid) => state.stores.data.report(rid).await?,
            Err(_) => None,
        };
        let r = match &row {
            Some(row) => open(state, row).await?,
            None => None,
        };
        return r.map(|r| (StatusCode::OK, r)).ok_or_else(|| ApiError::Conflict {
            code: "report_pending",
            message: "this external_id is being stored by another request; try again shortly".into(),
        });
    }
    let stored = async {
        let key = state.records.key(exam.patient_id).await?;
        let visit_id = visit_of_exam(state, &exam, &key).await?;
        let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let prefix = format!("{PREFIX}/{}", exam.patient_id);
        let obj = state
            .files
            .objects
            .put_sealed(&prefix, bytes, declared, &state.files.report_policy, |k, b| {
                Ok(key.seal(&file_context(k), &b).into())
            })
            .await?;
        let r = ReportFile {
            id,
            account_id: exam.account_id,
            patient_id: exam.patient_id,
            exam_id: Some(exam.id),
            visit_id,
            title,
            content_type: obj.content_type.mime().to_string(),
            size: obj.size,
            object_key: obj.key.clone(),
            source: q.source,
            external_id: Some(external_id.clone()),
            uploaded_at: Utc::now(),
        };
        if let Err(e) = state.stores.data.put_report(&ReportRow::seal(&r, &key)).await {
            let _ = state.files.objects.delete(&obj.key).await;
            return Err(e.into());
        }
        ApiResult::Ok(r)
    }
    .await;
    match stored {
        Ok(r) => {
            tracing::info!(report = %r.id, exam = %exam_id, source = source_name(r.source), size = r.size, "report file stored");
            Ok((StatusCode::CREATED, r))
        }
        Err(e) => {
            // Nothing stored: a retry may claim the id again.
            if let Err(rel) = state.stores.data.release_external_id(&system, &external_id).await {
                tracing::warn!(error = %rel, "could not release a failed report's external id");
            }
            Err(e)
        }
    }
}

fn source_name(s: ReportSource) -> &'static str {
    match s {
        ReportSource::Lab => "lab",
        ReportSource::Pacs => "pacs",
        ReportSource::His => "his",
        ReportSource::Doctor => "doctor",
    }
}

/// The visit whose exam order booked `exam`, if any.
async fn visit_of_exam(
    state: &AppState,
    exam: &hospital_store::ExamRow,
    key: &hospital_store::PersonKey,
) -> ApiResult<Option<VisitId>> {
    for row in state.stores.data.visits_of_patient(exam.account_id, exam.patient_id).await? {
        let v = row.open(key)?;
        if v.exam_orders.iter().any(|o| o.exam_id == Some(exam.id)) {
            return Ok(Some(v.id));
        }
    }
    Ok(None)
}

/// REC-4: the report files of one of the account's 就诊人, newest first.
#[utoipa::path(get, path = "/api/v1/me/patients/{id}/reports", tag = "reports", security(("bearer" = [])),
    params(("id" = PatientId, Path)),
    responses((status = 200, body = [ReportView]), (status = 404, body = ErrorBody)))]
async fn patient_reports(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<PatientId>,
) -> ApiResult<ApiJson<Vec<ReportView>>> {
    state.stores.data.patient(caller.account_id, id).await?.ok_or_else(|| ApiError::not_found("patient"))?;
    let mut out = Vec::new();
    for r in reports_of(&state, caller.account_id, id).await? {
        out.push(view(&state, &r).await?);
    }
    Ok(ApiJson(out))
}

/// REC-4: one report of the account's, with a fresh signed download link.
#[utoipa::path(get, path = "/api/v1/me/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = ReportId, Path)),
    responses((status = 200, body = ReportDownload), (status = 404, body = ErrorBody)))]
async fn my_report(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ReportId>,
) -> ApiResult<ApiJson<ReportDownload>> {
    let r = own_report(&state, &caller, id).await?;
    let v = view(&state, &r).await?;
    Ok(ApiJson(download(&state, v, &r)))
}

/// A share link as its owner sees it (never its token, which only the creation shows).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShareView {
    pub id: ShareId,
    pub report_id: ReportId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub state: ShareState,
}

impl ShareView {
    fn of(s: &ShareLink, now: DateTime<Utc>) -> Self {
        ShareView {
            id: s.id,
            report_id: s.report_id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            state: s.state(now),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShare {
    /// How long the link works: 60 s to 30 days.
    pub expires_in_secs: i64,
}

/// A new share link: `url` carries its secret token, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShareCreated {
    pub share: ShareView,
    /// `GET` it (relative to the API's base), no account needed, until it expires or is revoked.
    pub url: String,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a share link of a report, for someone without an account (another hospital, a relative).
#[utoipa::path(post, path = "/api/v1/me/reports/{id}/shares", tag = "reports", security(("bearer" = [])),
    params(("id" = ReportId, Path)), request_body = CreateShare,
    responses((status = 201, body = ShareCreated), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_share(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ReportId>,
    ApiJson(req): ApiJson<CreateShare>,
) -> ApiResult<(StatusCode, ApiJson<ShareCreated>)> {
    let r = own_report(&state, &caller, id).await?;
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = hex::encode(raw);
    let now = Utc::now();
    let share = ShareLink::new(&r, token_hash(&token), req.expires_in_secs, now)?;
    state.stores.data.put_share(&share).await?;
    let url = format!("/api/v1/shared/{}?token={token}", share.id);
    Ok((StatusCode::CREATED, ApiJson(ShareCreated { share: ShareView::of(&share, now), url })))
}

/// The share links of a report, newest first.
#[utoipa::path(get, path = "/api/v1/me/reports/{id}/shares", tag = "reports", security(("bearer" = [])),
    params(("id" = ReportId, Path)),
    responses((status = 200, body = [ShareView]), (status = 404, body = ErrorBody)))]
async fn list_shares(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ReportId>,
) -> ApiResult<ApiJson<Vec<ShareView>>> {
    let r = own_report(&state, &caller, id).await?;
    let now = Utc::now();
    let mut shares: Vec<ShareLink> = state
        .stores
        .data
        .shares_of_patient(caller.account_id, r.patient_id)
        .await?
        .into_iter()
        .filter(|s| s.report_id == id)
        .collect();
    shares.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(ApiJson(shares.iter().map(|s| ShareView::of(s, now)).collect()))
}

/// Revokes a share link (at once; revoking again changes nothing).
#[utoipa::path(delete, path = "/api/v1/me/shares/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = ShareId, Path)),
    responses((status = 200, body = ShareView), (status = 404, body = ErrorBody)))]
async fn revoke_share(
    State(state): State<AppState>,
    caller: AccountCaller,
    ApiPath(id): ApiPath<ShareId>,
) -> ApiResult<ApiJson<ShareView>> {
    let mut share = match state.stores.data.share(id).await? {
        Some(s) if s.account_id == caller.account_id => s,
        _ => return Err(ApiError::not_found("share")),
    };
    let now = Utc::now();
    if share.revoke(now) {
        state.stores.data.put_share(&share).await?;
        tracing::info!(share = %id, "share link revoked");
    }
    Ok(ApiJson(ShareView::of(&share, now)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SharedQuery {
    /// The link's token.
    pub token: String,
}

/// A shared report file, by its share link (no account): 403 `share_revoked` or
/// `share_expired`; an unknown link or a wrong token is 404. Not cached (a revocation is final).
#[utoipa::path(get, path = "/api/v1/shared/{id}", tag = "reports",
    params(("id" = ShareId, Path), SharedQuery,
        ("Range" = Option<String>, Header, description = "bytes=first-last, bytes=first- or bytes=-suffix")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
async fn shared_file(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ShareId>,
    ApiQuery(q): ApiQuery<SharedQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let share = state.stores.data.share(id).await?;
    // Hashes are compared, so the comparison says nothing about the token.
    let share = share.filter(|s| s.token_hash == token_hash(&q.token)).ok_or_else(|| ApiError::not_found("share"))?;
    match share.state(Utc::now()) {
        ShareState::Active => {}
        ShareState::Revoked => {
            return Err(ApiError::Denied { code: "share_revoked", message: "the owner revoked this link".into() })
        }
        ShareState::Expired => {
            return Err(ApiError::Denied { code: "share_expired", message: "this link has expired".into() })
        }
    }
    let row = state.stores.data.report(share.report_id).await?.ok_or_else(|| ApiError::not_found("report"))?;
    let r = open(&state, &row).await?.ok_or_else(|| ApiError::not_found("report"))?;
    let mut resp = crate::http::files::serve(&state.files, &r.object_key, &file_name(&r), 0, &headers).await?;
    resp.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// A report for the doctor's workstation, with a signed link: a doctor (staff with the doctor
/// role, linked to a catalogue doctor) of a department that has seen the patient (a visit of the
/// patient in it); anyone else gets 404. Every read is audited (`report.read`).
#[utoipa::path(get, path = "/api/v1/doctor/reports/{id}", tag = "doctor", security(("bearer" = [])),
    params(("id" = ReportId, Path)),
    responses((status = 200, body = ReportDownload), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn doctor_report(
    State(state): State<AppState>,
    audit: StaffAudit,
    ApiPath(id): ApiPath<ReportId>,
) -> ApiResult<ApiJson<ReportDownload>> {
    audit.caller.require(&[Role::Doctor])?;
    let me = state.stores.data.staff(audit.caller.staff_id).await?.ok_or(ApiError::InvalidToken)?;
    let doctor = me.doctor_id.ok_or_else(|| ApiError::Forbidden("this staff account is not a doctor's".into()))?;
    let department = state.catalog().doctor(doctor).map(|d| d.department_id);
    let row = state.stores.data.report(id).await?.ok_or_else(|| ApiError::not_found("report"))?;
    let seen = state
        .stores
        .data
        .visits_of_patient(row.account_id, row.patient_id)
        .await?
        .iter()
        .any(|v| Some(v.department_id) == department);
    if !seen {
        return Err(ApiError::not_found("report"));
    }
    let r = open(&state, &row).await?.ok_or_else(|| ApiError::not_found("report"))?;
    let v = view(&state, &r).await?;
    audit
        .record(audit.event("report.read", Target::new("report", r.id)?)?.concerning(r.account_id, Some(r.patient_id)))
        .await?;
    Ok(ApiJson(download(&state, v, &r)))
}
