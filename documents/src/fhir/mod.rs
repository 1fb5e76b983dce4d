//! One person's data as an HL7 FHIR R4 (4.0.1) `Bundle` of type `collection`, for export to
//! another provider or to the patient: Patient, Appointment, Encounter (a visit), Condition (a
//! diagnosis), MedicationRequest (a prescription line), ServiceRequest (an exam order),
//! DiagnosticReport and Observation (an exam and its result), Composition (the medical record,
//! 电子病历, of a visit), DocumentReference (a report file).
//!
//! - Ids are stable: the platform's own UUIDs (`Patient/<patient id>`, `Encounter/<visit id>`,
//!   `Condition/<visit id>-dx1`, ...), so exporting twice gives the same resources.
//! - Every `fullUrl` is `<base>/<Type>/<id>` and every reference the relative `<Type>/<id>`,
//!   which resolves against it; a resource is referenced only if it is in the bundle.
//! - Times are instants in UTC with an explicit offset (`2026-03-02T01:02:00+00:00`).
//! - Codes use the standard systems where there is one (ICD-10, HL7 terminology, UCUM).
//! - Report files are attachments by URL (the gateway's download link, which checks who asks),
//!   so a bundle stays small whatever the images weigh; `ReportContent::Inline` embeds the bytes
//!   as base64 instead, for a self-contained file.
//! - Every item must be the person's: an item of another patient is refused, not dropped, since
//!   it means the caller's query was wrong.

mod codes;
mod resources;

use chrono::{DateTime, Utc};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::exam::Exam;
use hospital_domain::visit::Visit;
use hospital_domain::{AppointmentId, ExamId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::input::PatientInfo;

pub use codes::{ICD10_CN_SYSTEM, ICD10_SYSTEM};

/// An appointment as exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentInfo {
    pub id: AppointmentId,
    pub patient_id: hospital_domain::PatientId,
    pub status: AppointmentStatus,
    /// The booked time range (the slot's segment).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub doctor_name: String,
    pub department_name: String,
}

/// A visit, with the names the export prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitInfo {
    pub visit: Visit,
    pub doctor_name: String,
    pub department_name: String,
}

/// Where a report file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportContent {
    /// A link to download it (the gateway's, which checks the caller may read it).
    Url(String),
    /// The bytes themselves, embedded as base64.
    Inline(Vec<u8>),
}

/// A report file (a PDF, a CT image) of an exam or a visit, as stored in object storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFile {
    /// The object key: with the exam (or visit), it names the file's resource.
    pub key: String,
    /// The exam it reports on; None for a file the doctor attached to a visit.
    pub exam_id: Option<ExamId>,
    /// The visit it belongs to, if known.
    pub visit_id: Option<hospital_domain::visit::VisitId>,
    pub title: String,
    /// A MIME type, e.g. `application/pdf`, `image/jpeg`.
    pub content_type: String,
    pub size: u64,
    pub created_at: DateTime<Utc>,
    pub content: ReportContent,
}

/// Everything of one person to export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonExport {
    pub patient: PatientInfo,
    pub appointments: Vec<AppointmentInfo>,
    pub visits: Vec<VisitInfo>,
    pub exams: Vec<Exam>,
    pub reports: Vec<ReportFile>,
}

/// How the bundle is addressed and stamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The FHIR base the `fullUrl`s are under, e.g. `https://hospital.example.cn/fhir`.
    pub base_url: String,
    pub generated_at: DateTime<Utc>,
}

/// Why a bundle could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    #[error("{kind} {id} belongs to another patient, not to {patient}")]
    NotThisPatient { kind: &'static str, id: String, patient: hospital_domain::PatientId },
    #[error("report file {key} is of exam {exam_id:?} / visit {visit_id:?}, neither of which is in the export")]
    OrphanReport { key: String, exam_id: Option<ExamId>, visit_id: Option<hospital_domain::visit::VisitId> },
    #[error("base_url must be an http(s) URL without a query, e.g. https://hospital.example.cn/fhir; got {0:?}")]
    BadBaseUrl(String),
}

/// The bundle of `data`, as FHIR R4 JSON.
pub fn person_bundle(data: &PersonExport, opts: &ExportOptions) -> Result<Value, FhirError> {
    let base = opts.base_url.trim().trim_end_matches('/');
    let scheme_ok = base.starts_with("https://") || base.starts_with("http://");
    if !scheme_ok || base.contains(['?', '#', ' ']) || base.ends_with(':') {
        return Err(FhirError::BadBaseUrl(opts.base_url.clone()));
    }
    check_ownership(data)?;

    let ctx = resources::Ctx::new(data);
    let mut entries: Vec<Value> = vec![resources::patient(&data.patient)];
    let mut appointments: Vec<&AppointmentInfo> = data.appointments.iter().collect();
    appointments.sort_by_key(|a| (a.start, a.id));
    entries.extend(appointments.into_iter().map(|a| resources::appointment(&ctx, a)));
    let mut visits: Vec<&VisitInfo> = data.visits.iter().collect();
    visits.sort_by_key(|v| (v.visit.called_at, v.visit.id));
    for v in visits {
        entries.extend(resources::visit(&ctx, v));
    }
    let mut exams: Vec<&Exam> = data.exams.iter().collect();
    exams.sort_by_key(|e| (e.ordered_at, e.id));
    for e in exams {
        entries.extend(resources::exam(&ctx, e));
    }
    let mut reports: Vec<&ReportFile> = data.reports.iter().collect();
    reports.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
    entries.extend(reports.into_iter().map(|r| resources::document(&ctx, r)));

    let entry: Vec<Value> = entries
        .into_iter()
        .map(|resource| {
            let full_url = format!(
                "{base}/{}/{}",
                resource["resourceType"].as_str().unwrap_or(""),
                resource["id"].as_str().unwrap_or("")
            );
            json!({ "fullUrl": full_url, "resource": resource })
        })
        .collect();
    Ok(json!({
        "resourceType": "Bundle",
        "id": format!("export-{}", data.patient.id),
        "meta": { "lastUpdated": codes::instant(opts.generated_at) },
        "type": "collection",
        "timestamp": codes::instant(opts.generated_at),
        "entry": entry,
    }))
}

/// Refuses anything that is not the person's.
fn check_ownership(data: &PersonExport) -> Result<(), FhirError> {
    let patient = data.patient.id;
    let other = |kind, id: String| FhirError::NotThisPatient { kind, id, patient };
    if let Some(a) = data.appointments.iter().find(|a| a.patient_id != patient) {
        return Err(other("appointment", a.id.to_string()));
    }
    if let Some(v) = data.visits.iter().find(|v| v.visit.patient_id != patient) {
        return Err(other("visit", v.visit.id.to_string()));
    }
    if let Some(e) = data.exams.iter().find(|e| e.patient_id != patient) {
        return Err(other("exam", e.id.to_string()));
    }
    let orphan = |r: &&ReportFile| match (r.exam_id, r.visit_id) {
        (Some(exam), _) => !data.exams.iter().any(|e| e.id == exam),
        (None, Some(visit)) => !data.visits.iter().any(|v| v.visit.id == visit),
        (None, None) => true,
    };
    if let Some(r) = data.reports.iter().find(orphan) {
        return Err(FhirError::OrphanReport { key: r.key.clone(), exam_id: r.exam_id, visit_id: r.visit_id });
    }
    Ok(())
}
