//! SET-3: all of one's own data as one archive (zip), for the patient or another hospital:
//!
//! - `account.json`, `consents.json`, `messages.json`, `orders.json`: the account's objects.
//! - `patients/<id>/patient.json`, `appointments.json`, `visits.json`, `exams.json`,
//!   `reports.json`, `shares.json`: every object of each 就诊人, opened (the ID number, the
//!   visits and the report titles decrypted).
//! - `patients/<id>/reports/<report id>.<ext>`: the report files, decrypted.
//! - `patients/<id>/fhir-bundle.json`: an HL7 FHIR R4 `Bundle` (`hospital_documents::fhir`):
//!   Patient, Appointment, Encounter, Condition, MedicationRequest, ServiceRequest,
//!   DiagnosticReport, Observation, Composition, DocumentReference; each DocumentReference's URL
//!   is the report's API address on this server (`/api/v1/me/reports/<id>`: FHIR wants an
//!   absolute URL, so not the archive path, which `reports.json` names as `file`).
//!
//! Only the caller's own account is ever read: every query is keyed by the caller's account id.
//! The archive is built in memory (report files are capped by `objects.max_report_bytes`).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveTime, Utc};
use hospital_documents::fhir::{AppointmentInfo, ReportContent, ReportFile as FhirReport, VisitInfo};
use hospital_documents::{person_bundle, ExportOptions, PatientInfo, PersonExport};
use hospital_domain::appointment::Appointment;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::Write;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::AccountCaller;
use crate::http::reports::reports_of;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// The archive being written.
struct Archive {
    zip: zip::ZipWriter<std::io::Cursor<Vec<u8>>>,
}

impl Archive {
    fn new() -> Self {
        Archive { zip: zip::ZipWriter::new(std::io::Cursor::new(Vec::new())) }
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> ApiResult<()> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(bytes.len() as u64 >= u32::MAX as u64);
        let fail = |e: &dyn std::fmt::Display| ApiError::Internal(format!("cannot write the archive: {e}"));
        self.zip.start_file(name, opts).map_err(|e| fail(&e))?;
        self.zip.write_all(bytes).map_err(|e| fail(&e))
    }

    fn json<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> ApiResult<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| ApiError::Internal(format!("export: {e}")))?;
        self.file(name, &bytes)
    }

    fn finish(self) -> ApiResult<Vec<u8>> {
        Ok(self.zip.finish().map_err(|e| ApiError::Internal(format!("cannot write the archive: {e}")))?.into_inner())
    }
}

/// This server as the client reached it (`https://<host>`): the bundle's `fullUrl`s are under
/// `<origin>/fhir`.
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let ok =
        !host.is_empty() && host.len() <= 255 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    format!("https://{}", if ok { host } else { "hospital.invalid" })
}

/// An appointment with its booked time (its segment of the session) and names.
async fn appointment_info(state: &AppState, a: &Appointment) -> ApiResult<AppointmentInfo> {
    let session = state.stores.data.session(a.slot.session_id).await?;
    let segment = session.as_ref().and_then(|s| s.segments.get(usize::from(a.slot.segment)));
    let (start, end) = match segment {
        Some(seg) => (seg.start, seg.end),
        None => (NaiveTime::MIN, NaiveTime::MIN),
    };
    let idx = state.catalog();
    Ok(AppointmentInfo {
        id: a.id,
        patient_id: a.patient_id,
        status: a.status,
        start: state.zone.to_utc(a.date, start),
        end: state.zone.to_utc(a.date, end),
        created_at: a.created_at,
        doctor_name: idx.doctor(a.doctor_id).map(|d| d.name.clone()).unwrap_or_default(),
        department_name: idx.department(a.department_id).map(|d| d.name.clone()).unwrap_or_default(),
    })
}

/// The account's whole data as a zip archive (see the module's doc).
#[utoipa::path(get, path = "/api/v1/me/export", tag = "records", security(("bearer" = [])),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>, description = "The archive"),
        (status = 401, body = ErrorBody)))]
async fn export(State(state): State<AppState>, caller: AccountCaller, headers: HeaderMap) -> ApiResult<Response> {
    let me = caller.account_id;
    let account = state.stores.data.account(me).await?.ok_or(ApiError::InvalidToken)?;
    let now = Utc::now();
    let mut zip = Archive::new();
    zip.file(
        "README.txt",
        "本压缩包为您在本院的全部个人数据 (all of your data at this hospital)。\n\
         account.json 账户; consents.json 隐私政策同意记录; messages.json 消息; orders.json 订单。\n\
         patients/<就诊人>/: patient.json, appointments.json, visits.json (就诊与病历), exams.json, \
         reports.json, shares.json, reports/ (报告文件), fhir-bundle.json (HL7 FHIR R4 Bundle)。\n"
            .as_bytes(),
    )?;
    zip.json(
        "account.json",
        &json!({
            "id": account.id,
            "phone": account.phone.as_ref().map(|p| p.as_str().to_string()),
            "email": account.email,
            "wechat_bound": account.wechat_openid.is_some(),
            "profile": account.profile,
            "created_at": account.created_at,
        }),
    )?;
    zip.json("consents.json", &state.stores.data.consents_of(me).await?)?;
    zip.json("messages.json", &state.stores.data.messages_of(me, 10_000).await?)?;

    let appointments = state.stores.data.appointments_of_account(me).await?;
    let mut orders = Vec::new();
    for a in &appointments {
        if let Some(o) = state.stores.data.order(a.order_id).await?.filter(|o| o.account_id == me) {
            orders.push(o);
        }
    }
    zip.json("orders.json", &orders)?;
    let exams = crate::http::exams::open_rows(&state, state.stores.data.exams_of_account(me).await?).await?;
    let origin = origin(&headers);
    let base = format!("{origin}/fhir");

    for p in state.stores.data.patients_of(me).await? {
        let dir = format!("patients/{}", p.id);
        let id_card = state.cipher.open(&p.id_card_sealed)?;
        let phone = match &p.phone_sealed {
            Some(s) => Some(state.cipher.open(s)?),
            None => None,
        };
        zip.json(
            &format!("{dir}/patient.json"),
            &json!({
                "id": p.id, "name": p.name, "relation": p.relation, "gender": p.gender,
                "birth_date": p.birth_date, "id_card_no": id_card, "phone": phone, "created_at": p.created_at,
            }),
        )?;
        let theirs: Vec<&Appointment> = appointments.iter().filter(|a| a.patient_id == p.id).collect();
        zip.json(&format!("{dir}/appointments.json"), &theirs)?;
        let mut appointment_infos = Vec::with_capacity(theirs.len());
        for a in theirs {
            appointment_infos.push(appointment_info(&state, a).await?);
        }

        let rows = state.stores.data.visits_of_patient(me, p.id).await?;
        let key = if rows.is_empty() { None } else { state.records.existing_key(p.id).await? };
        let mut visits = Vec::new();
        if let Some(key) = &key {
            for r in &rows {
                visits.push(r.open(key)?);
            }
        }
        visits.sort_by_key(|v| (v.called_at, v.id));
        zip.json(&format!("{dir}/visits.json"), &visits)?;
        let their_exams: Vec<_> = exams.iter().filter(|e| e.patient_id == p.id).cloned().collect();
        zip.json(&format!("{dir}/exams.json"), &their_exams)?;

        let reports = reports_of(&state, me, p.id).await?;
        let mut listed: Vec<Value> = Vec::with_capacity(reports.len());
        let mut fhir_reports = Vec::with_capacity(reports.len());
        for r in &reports {
            let ext = r.object_key.rsplit('.').next().unwrap_or("bin");
            let file = format!("reports/{}.{ext}", r.id);
            let bytes = state.files.read(&r.object_key).await?;
            zip.file(&format!("{dir}/{file}"), &bytes)?;
            listed.push(json!({
                "id": r.id, "exam_id": r.exam_id, "visit_id": r.visit_id, "title": r.title,
                "content_type": r.content_type, "size": r.size, "source": r.source,
                "external_id": r.external_id, "uploaded_at": r.uploaded_at, "file": file,
            }));
            // A report whose exam is gone cannot be placed in the bundle; it stays in the files.
            let placed = match (r.exam_id, r.visit_id) {
                (Some(e), _) => their_exams.iter().any(|x| x.id == e),
                (None, Some(v)) => visits.iter().any(|x| x.id == v),
                (None, None) => false,
            };
            if placed {
                fhir_reports.push(FhirReport {
                    key: r.object_key.clone(),
                    exam_id: r.exam_id,
                    visit_id: r.visit_id,
                    title: r.title.clone(),
                    content_type: r.content_type.clone(),
                    size: r.size,
                    created_at: r.uploaded_at,
                    content: ReportContent::Url(format!("{origin}/api/v1/me/reports/{}", r.id)),
                });
            }
        }
        zip.json(&format!("{dir}/reports.json"), &listed)?;
        let shares = state.stores.data.shares_of_patient(me, p.id).await?;
        // Only hashes of the links' tokens are kept: nothing secret in them.
        zip.json(&format!("{dir}/shares.json"), &shares)?;

        let idx = state.catalog();
        let visit_infos = visits
            .into_iter()
            .map(|v| VisitInfo {
                doctor_name: idx.doctor(v.doctor_id).map(|d| d.name.clone()).unwrap_or_default(),
                department_name: idx.department(v.department_id).map(|d| d.name.clone()).unwrap_or_default(),
                visit: v,
            })
            .collect();
        let data = PersonExport {
            patient: PatientInfo {
                id: p.id,
                name: p.name.clone(),
                gender: p.gender,
                birth_date: Some(p.birth_date),
                phone: None,
            },
            appointments: appointment_infos,
            visits: visit_infos,
            exams: their_exams,
            reports: fhir_reports,
        };
        let bundle = person_bundle(&data, &ExportOptions { base_url: base.clone(), generated_at: now })
            .map_err(|e| ApiError::Internal(format!("cannot make the FHIR bundle: {e}")))?;
        zip.json(&format!("{dir}/fhir-bundle.json"), &bundle)?;
    }
    let bytes = zip.finish()?;
    tracing::info!(account = %me, bytes = bytes.len(), "data export");
    let name = format!("attachment; filename=\"hospital-export-{}.zip\"", now.format("%Y%m%d"));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
