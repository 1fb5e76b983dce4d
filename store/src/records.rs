//! Visits, medical records and report files (REC-1..5), share links, the hospital systems'
//! external ids, privacy policy versions and consents (SET-2), account deletion requests and the
//! erasure of an account's rows (SET-3).
//!
//! Medical content never reaches this layer in clear: a visit row carries the `Visit` sealed with
//! the patient's data key (`vault::PersonKey`), a report row its title sealed the same way, and
//! the report's bytes are sealed in object storage. What stays in clear is what the queries need:
//! ids, the visit's status and call time, a report's type and size.
//!
//! Tables (see `schema.cql`), each serving one query:
//! - `visits ((visit_id))`, `visits_by_patient ((account_id, patient_id), visit_id)`: one visit;
//!   a 就诊人's visits (a person has tens to hundreds over the years: one partition, sorted and
//!   filtered after decryption, since the diagnosis a search matches is sealed).
//! - `appointment_notes ((appointment_id))`: a patient's notes on an appointment whose visit is
//!   not made yet (the visit takes them over).
//! - `reports ((report_id))`, `reports_by_patient ((account_id, patient_id), report_id)`.
//! - `shares ((share_id))`, `shares_by_patient ((account_id, patient_id), share_id)`.
//! - `external_refs ((system, external_id))`: an id from HIS/LIS/PACS, claimed once, naming ours.
//! - `policy_versions ((kind), version)`, `consents ((account_id), kind, version)`.
//! - `deletion_requests ((account_id))`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::privacy::{Consent, DeletionRequest, PolicyKind, PolicyVersion};
use hospital_domain::report::{ReportFile, ReportSource, ShareLink};
use hospital_domain::visit::{PatientNote, VisitId, VisitStatus};
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, ExamId, PatientId, ReportId, ShareId};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::vault::PersonKey;

/// A visit as stored: what the queries need in clear, the rest sealed with the patient's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRow {
    pub id: VisitId,
    pub appointment_id: AppointmentId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub doctor_id: DoctorId,
    pub department_id: DepartmentId,
    pub status: VisitStatus,
    pub called_at: DateTime<Utc>,
    /// The `Visit` as JSON, sealed (`PersonKey::seal_json`, context `visit:<id>`).
    pub sealed: String,
}

impl VisitRow {
    /// The sealing context of a visit.
    pub fn context(id: VisitId) -> String {
        format!("visit:{id}")
    }

    /// Seals `visit` with its patient's key.
    pub fn seal(visit: &hospital_domain::visit::Visit, key: &PersonKey) -> Self {
        Self {
            id: visit.id,
            appointment_id: visit.appointment_id,
            account_id: visit.account_id,
            patient_id: visit.patient_id,
            doctor_id: visit.doctor_id,
            department_id: visit.department_id,
            status: visit.status,
            called_at: visit.called_at,
            sealed: key.seal_json(&Self::context(visit.id), visit),
        }
    }

    /// Opens the visit; `key` must be its patient's.
    pub fn open(&self, key: &PersonKey) -> Result<hospital_domain::visit::Visit> {
        key.open_json(&Self::context(self.id), &self.sealed)
    }
}

/// A report file as stored: its title sealed with the patient's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    pub id: ReportId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub exam_id: Option<ExamId>,
    pub visit_id: Option<VisitId>,
    pub content_type: String,
    pub size: u64,
    pub object_key: String,
    pub source: ReportSource,
    pub external_id: Option<String>,
    pub uploaded_at: DateTime<Utc>,
    pub sealed_title: String,
}

impl ReportRow {
    fn context(id: ReportId) -> String {
        format!("report:{id}")
    }

    pub fn seal(r: &ReportFile, key: &PersonKey) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            patient_id: r.patient_id,
            exam_id: r.exam_id,
            visit_id: r.visit_id,
            content_type: r.content_type.clone(),
            size: r.size,
            object_key: r.object_key.clone(),
            source: r.source,
            external_id: r.external_id.clone(),
            uploaded_at: r.uploaded_at,
            sealed_title: key.seal_text(&Self::context(r.id), &r.title),
        }
    }

    pub fn open(&self, key: &PersonKey) -> Result<ReportFile> {
        Ok(ReportFile {
            id: self.id,
            account_id: self.account_id,
            patient_id: self.patient_id,
            exam_id: self.exam_id,
            visit_id: self.visit_id,
            title: key.open_text(&Self::context(self.id), &self.sealed_title)?,
            content_type: self.content_type.clone(),
            size: self.size,
            object_key: self.object_key.clone(),
            source: self.source,
            external_id: self.external_id.clone(),
            uploaded_at: self.uploaded_at,
        })
    }
}

/// A patient's notes for the doctor on an appointment whose visit is not made yet (REC-3), sealed
/// with the patient's key. The visit takes them over when the patient is called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentNotesRow {
    pub appointment_id: AppointmentId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    /// The notes (`Vec<PatientNote>`) as JSON, sealed (context `appointment-notes:<id>`).
    pub sealed: String,
}

impl AppointmentNotesRow {
    fn context(id: AppointmentId) -> String {
        format!("appointment-notes:{id}")
    }

    pub fn seal(appointment_id: AppointmentId, account_id: AccountId, notes: &[PatientNote], key: &PersonKey) -> Self {
        Self {
            appointment_id,
            account_id,
            patient_id: key.patient(),
            sealed: key.seal_json(&Self::context(appointment_id), &notes),
        }
    }

    pub fn open(&self, key: &PersonKey) -> Result<Vec<PatientNote>> {
        key.open_json(&Self::context(self.appointment_id), &self.sealed)
    }
}

/// What an account's erasure removed (rows), for the log and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedRows {
    pub patients: usize,
    pub appointments: usize,
    pub messages: usize,
    pub exams: usize,
    pub visits: usize,
    pub reports: usize,
    pub shares: usize,
    pub consents: usize,
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Inserts or replaces a visit under both its keys. Several nodes: `fence` is the visit
    /// actor's lease token (`visit:<id>`); the store refuses the write if it has seen a newer one
    /// for the visit (`Conflict::StaleFence`).
    async fn put_visit(&self, visit: &VisitRow, fence: Option<&crate::Fence>) -> Result<()>;
    async fn visit(&self, id: VisitId) -> Result<Option<VisitRow>>;
    /// A 就诊人's visits (any order: callers sort after opening them).
    async fn visits_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<VisitRow>>;

    /// Inserts or replaces an appointment's notes (before its visit). They are the visit
    /// actor's (the visit's id is the appointment's): several nodes fence them with its lease
    /// token (`visit:<id>`), as `put_visit`.
    async fn put_appointment_notes(&self, notes: &AppointmentNotesRow, fence: Option<&crate::Fence>) -> Result<()>;
    async fn appointment_notes(&self, appointment: AppointmentId) -> Result<Option<AppointmentNotesRow>>;

    /// Inserts or replaces a report file's row under both its keys.
    async fn put_report(&self, report: &ReportRow) -> Result<()>;
    async fn report(&self, id: ReportId) -> Result<Option<ReportRow>>;
    async fn reports_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ReportRow>>;

    /// Inserts or replaces a share link under both its keys.
    async fn put_share(&self, share: &ShareLink) -> Result<()>;
    async fn share(&self, id: ShareId) -> Result<Option<ShareLink>>;
    async fn shares_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ShareLink>>;

    /// Claims `external_id` of `system` (e.g. `his:visit`) for our `internal` id, once: returns
    /// None if this call claimed it, or the internal id claimed before (the push is a repeat).
    async fn claim_external_id(&self, system: &str, external_id: &str, internal: &str) -> Result<Option<String>>;
    /// Releases a claim (a push that failed after claiming, so a retry can claim again).
    async fn release_external_id(&self, system: &str, external_id: &str) -> Result<()>;
    /// What `external_id` of `system` was claimed for, if it was.
    async fn external_ref(&self, system: &str, external_id: &str) -> Result<Option<String>>;

    /// Publishes a version; `Conflict::PolicyVersion` if that kind and number exist.
    async fn put_policy(&self, version: &PolicyVersion) -> Result<()>;
    /// Every published version of every kind.
    async fn policies(&self) -> Result<Vec<PolicyVersion>>;
    async fn policy(&self, kind: PolicyKind, version: u32) -> Result<Option<PolicyVersion>>;
    /// Records a consent (accepting the same version again keeps the first time).
    async fn put_consent(&self, consent: &Consent) -> Result<()>;
    async fn consents_of(&self, account: AccountId) -> Result<Vec<Consent>>;

    async fn put_deletion(&self, request: &DeletionRequest) -> Result<()>;
    async fn deletion(&self, account: AccountId) -> Result<Option<DeletionRequest>>;
    /// Cancels a deletion request; false if there was none.
    async fn remove_deletion(&self, account: AccountId) -> Result<bool>;

    /// Deletes the rows of an account and of everything under it: the account and its login
    /// keys, its patients (and their place in `accounts_by_person`), appointments (under every
    /// key, and their notes), messages, exams, visits, reports, shares, consents, preferences and the deletion
    /// request. Payment orders are kept: they hold no personal data (amounts, dates, ids that
    /// lead nowhere once the account is gone), and accounting law asks for them.
    async fn erase_account(&self, account: AccountId) -> Result<ErasedRows>;
}
