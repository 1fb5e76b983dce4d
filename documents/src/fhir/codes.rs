//! The FHIR codes the platform's states map to, the code systems they come from, and the
//! formatting of times. One table per state, so a new state fails to compile until mapped.

use chrono::{DateTime, SecondsFormat, Utc};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::exam::{ExamKind, ExamStatus};
use hospital_domain::visit::{Frequency, VisitStatus};
use hospital_domain::Gender;
use serde_json::{json, Value};

/// WHO ICD-10, as FHIR names it.
pub const ICD10_SYSTEM: &str = "http://hl7.org/fhir/sid/icd-10";
/// China's national clinical edition of ICD-10 (国家临床版), which has no registered FHIR URI:
/// a name of the platform's own, used for the full code beside its WHO parent.
pub const ICD10_CN_SYSTEM: &str = "urn:hospital:fhir:icd-10-cn-clinical";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const LOINC: &str = "http://loinc.org";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const DIAGNOSTIC_SERVICE: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
const SNOMED: &str = "http://snomed.info/sct";

/// An instant in UTC with its offset written out.
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

pub(crate) fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

pub(crate) fn gender(g: Gender) -> &'static str {
    match g {
        Gender::Male => "male",
        Gender::Female => "female",
        Gender::Unknown => "unknown",
    }
}

/// Appointment.status (R4 value set appointmentstatus).
pub(crate) fn appointment_status(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Held => "pending",
        AppointmentStatus::Confirmed => "booked",
        AppointmentStatus::Cancelled | AppointmentStatus::Expired => "cancelled",
        AppointmentStatus::CheckedIn => "arrived",
        AppointmentStatus::Seen => "fulfilled",
        AppointmentStatus::Missed => "noshow",
        // Staff struck off the no-show (the patient was not at fault): closest is cancelled.
        AppointmentStatus::Excused => "cancelled",
    }
}

/// Encounter.status (R4 value set encounter-status).
pub(crate) fn encounter_status(s: VisitStatus) -> &'static str {
    match s {
        VisitStatus::Called => "arrived",
        VisitStatus::InConsultation => "in-progress",
        VisitStatus::Finished => "finished",
    }
}

/// The medical record's document type (Composition.type): LOINC 34108-1, outpatient note.
pub(crate) fn outpatient_note() -> Value {
    json!({ "coding": [coding(LOINC, "34108-1", "Outpatient Note")], "text": "门诊病历" })
}

/// An outpatient visit (Encounter.class).
pub(crate) fn ambulatory() -> Value {
    coding(ACT_CODE, "AMB", "ambulatory")
}

pub(crate) fn condition_active() -> Value {
    concept(CONDITION_CLINICAL, "active", "Active")
}

pub(crate) fn condition_confirmed() -> Value {
    concept(CONDITION_VERIFICATION, "confirmed", "Confirmed")
}

pub(crate) fn encounter_diagnosis() -> Value {
    concept(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis")
}

/// ServiceRequest.category: imaging or laboratory procedure (SNOMED CT, as the R4 example
/// value set has them).
pub(crate) fn service_category(k: ExamKind) -> Value {
    match k {
        ExamKind::Imaging => concept(SNOMED, "363679005", "Imaging"),
        ExamKind::Lab => concept(SNOMED, "108252007", "Laboratory procedure"),
    }
}

/// DiagnosticReport.category (HL7 v2 table 0074).
pub(crate) fn report_category(k: ExamKind) -> Value {
    match k {
        ExamKind::Imaging => concept(DIAGNOSTIC_SERVICE, "RAD", "Radiology"),
        ExamKind::Lab => concept(DIAGNOSTIC_SERVICE, "LAB", "Laboratory"),
    }
}

pub(crate) fn observation_category(k: ExamKind) -> Value {
    match k {
        ExamKind::Imaging => concept(OBSERVATION_CATEGORY, "imaging", "Imaging"),
        ExamKind::Lab => concept(OBSERVATION_CATEGORY, "laboratory", "Laboratory"),
    }
}

/// DiagnosticReport.status (R4 value set diagnostic-report-status).
pub(crate) fn report_status(s: ExamStatus) -> &'static str {
    match s {
        ExamStatus::Pending => "registered",
        ExamStatus::InProgress => "partial",
        ExamStatus::Completed => "final",
    }
}

/// Normal or abnormal (v3 ObservationInterpretation).
pub(crate) fn interpretation(abnormal: bool) -> Value {
    if abnormal {
        concept(INTERPRETATION, "A", "Abnormal")
    } else {
        concept(INTERPRETATION, "N", "Normal")
    }
}

/// A duration of `days` in UCUM.
pub(crate) fn days(days: u32) -> Value {
    json!({ "value": days, "unit": "d", "system": UCUM, "code": "d" })
}

/// Dosage.timing for a frequency and a course of `course_days`.
pub(crate) fn timing(f: Frequency, course_days: u32) -> Value {
    let mut repeat = json!({ "boundsDuration": days(course_days) });
    match f.schedule() {
        Some((frequency, period, unit)) => {
            repeat["frequency"] = json!(frequency);
            repeat["period"] = json!(period);
            repeat["periodUnit"] = json!(unit);
        }
        None if f == Frequency::Once => repeat["count"] = json!(1),
        None => {}
    }
    json!({ "repeat": repeat, "code": { "text": f.label() } })
}
