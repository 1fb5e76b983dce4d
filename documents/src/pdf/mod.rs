//! The medical record (电子病历) of one visit as a PDF (REC-3): the hospital's header on every
//! page, the patient and visit details, chief complaint, diagnoses, the record text, the
//! prescription and exam orders as tables, and "第 n 页 / 共 m 页" at the foot. Text wraps and
//! flows onto as many pages as it needs. Set in one CJK font, subset in (see `embed`).

mod embed;
mod layout;
mod record;

use chrono::{DateTime, Utc};
use hospital_domain::time::HospitalZone;
use hospital_domain::visit::Visit;

use crate::font::CjkFont;
use crate::input::{HospitalHeader, PatientInfo};

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("cannot subset the font: {0}")]
    Subset(String),
    #[error("the visit belongs to patient {visit_patient}, not to {patient}")]
    WrongPatient { visit_patient: hospital_domain::PatientId, patient: hospital_domain::PatientId },
}

/// Everything printed on a medical record.
#[derive(Debug, Clone)]
pub struct MedicalRecordInput {
    pub hospital: HospitalHeader,
    pub patient: PatientInfo,
    pub visit: Visit,
    pub doctor_name: String,
    pub department_name: String,
    /// Times are printed in the hospital's zone.
    pub zone: HospitalZone,
    /// Printed at the foot of each page ("生成于 ...") and as the PDF's creation date.
    pub generated_at: DateTime<Utc>,
}

/// Renders the medical record of `input.visit` as PDF bytes.
pub fn render_medical_record(font: &CjkFont, input: &MedicalRecordInput) -> Result<Vec<u8>, PdfError> {
    if input.visit.patient_id != input.patient.id {
        return Err(PdfError::WrongPatient { visit_patient: input.visit.patient_id, patient: input.patient.id });
    }
    let metrics = embed::FontMetrics::new(font);
    let pages = record::lay_out(&metrics, input);
    let title =
        format!("门诊病历 {} {}", input.patient.name, record::local(input.zone, input.visit.called_at, "%Y-%m-%d"));
    embed::write(font, &metrics, &pages, &embed::DocInfo { title: &title, created: input.generated_at })
}
