//! Visits, reports, shares, external ids, policies, consents, deletion requests and the erasure
//! of an account on ScyllaDB (see `schema.cql`). A row and its listing row are written in one
//! logged batch; a policy version, a consent and an external id are claimed `IF NOT EXISTS`.
//! An erasure reads each partition of the account and deletes row by row, in logged batches per
//! kind; a crash half-way leaves the erase job due, and running it again deletes the rest.

use async_trait::async_trait;
use hospital_domain::privacy::{Consent, DeletionRequest, PolicyKind, PolicyVersion};
use hospital_domain::report::ShareLink;
use hospital_domain::visit::VisitId;
use hospital_domain::{AccountId, AppointmentId, PatientId, ReportId, ShareId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::{cql_date, decode, encode, text, ScyllaStore, Writes};
use crate::error::{Conflict, Result};
use crate::exams::ExamStore;
use crate::notify::{MessageFilter, NotifyStore};
use crate::records::{AppointmentNotesRow, ErasedRows, RecordStore, ReportRow, VisitRow};
use crate::traits::{AccountStore, BookingStore};
use crate::{Fence, Owned, StoreError};

const PUT_VISIT: &str = "INSERT INTO {ks}.visits (visit_id, body) VALUES (?, ?)";
const PUT_VISIT_BY_PATIENT: &str =
    "INSERT INTO {ks}.visits_by_patient (account_id, patient_id, visit_id, body) VALUES (?, ?, ?, ?)";
const GET_VISIT: &str = "SELECT body FROM {ks}.visits WHERE visit_id = ?";
const VISITS_OF: &str = "SELECT body FROM {ks}.visits_by_patient WHERE account_id = ? AND patient_id = ?";
const DELETE_VISIT: &str = "DELETE FROM {ks}.visits WHERE visit_id = ?";
const DELETE_VISIT_BY_PATIENT: &str =
    "DELETE FROM {ks}.visits_by_patient WHERE account_id = ? AND patient_id = ? AND visit_id = ?";
const PUT_APPOINTMENT_NOTES: &str = "INSERT INTO {ks}.appointment_notes (appointment_id, body) VALUES (?, ?)";
const GET_APPOINTMENT_NOTES: &str = "SELECT body FROM {ks}.appointment_notes WHERE appointment_id = ?";
const DELETE_APPOINTMENT_NOTES: &str = "DELETE FROM {ks}.appointment_notes WHERE appointment_id = ?";
const PUT_REPORT: &str = "INSERT INTO {ks}.reports (report_id, body) VALUES (?, ?)";
const PUT_REPORT_BY_PATIENT: &str =
    "INSERT INTO {ks}.reports_by_patient (account_id, patient_id, report_id, body) VALUES (?, ?, ?, ?)";
const GET_REPORT: &str = "SELECT body FROM {ks}.reports WHERE report_id = ?";
const REPORTS_OF: &str = "SELECT body FROM {ks}.reports_by_patient WHERE account_id = ? AND patient_id = ?";
const DELETE_REPORT: &str = "DELETE FROM {ks}.reports WHERE report_id = ?";
const DELETE_REPORT_BY_PATIENT: &str =
    "DELETE FROM {ks}.reports_by_patient WHERE account_id = ? AND patient_id = ? AND report_id = ?";
const PUT_SHARE: &str = "INSERT INTO {ks}.shares (share_id, body) VALUES (?, ?)";
const PUT_SHARE_BY_PATIENT: &str =
    "INSERT INTO {ks}.shares_by_patient (account_id, patient_id, share_id, body) VALUES (?, ?, ?, ?)";
const GET_SHARE: &str = "SELECT body FROM {ks}.shares WHERE share_id = ?";
const SHARES_OF: &str = "SELECT body FROM {ks}.shares_by_patient WHERE account_id = ? AND patient_id = ?";
const DELETE_SHARE: &str = "DELETE FROM {ks}.shares WHERE share_id = ?";
const DELETE_SHARE_BY_PATIENT: &str =
    "DELETE FROM {ks}.shares_by_patient WHERE account_id = ? AND patient_id = ? AND share_id = ?";
const CLAIM_EXTERNAL: &str =
    "INSERT INTO {ks}.external_refs (system, external_id, internal) VALUES (?, ?, ?) IF NOT EXISTS";
const GET_EXTERNAL: &str = "SELECT internal FROM {ks}.external_refs WHERE system = ? AND external_id = ?";
const RELEASE_EXTERNAL: &str = "DELETE FROM {ks}.external_refs WHERE system = ? AND external_id = ?";
const CLAIM_POLICY: &str = "INSERT INTO {ks}.policy_versions (kind, version, body) VALUES (?, ?, ?) IF NOT EXISTS";
const POLICIES_OF_KIND: &str = "SELECT body FROM {ks}.policy_versions WHERE kind = ?";
const GET_POLICY: &str = "SELECT body FROM {ks}.policy_versions WHERE kind = ? AND version = ?";
const PUT_CONSENT: &str =
    "INSERT INTO {ks}.consents (account_id, kind, version, body) VALUES (?, ?, ?, ?) IF NOT EXISTS";
const CONSENTS_OF: &str = "SELECT body FROM {ks}.consents WHERE account_id = ?";
const DELETE_CONSENTS: &str = "DELETE FROM {ks}.consents WHERE account_id = ?";
const PUT_DELETION: &str = "INSERT INTO {ks}.deletion_requests (account_id, body) VALUES (?, ?)";
const GET_DELETION: &str = "SELECT body FROM {ks}.deletion_requests WHERE account_id = ?";
const DELETE_DELETION: &str = "DELETE FROM {ks}.deletion_requests WHERE account_id = ?";
const DELETE_ACCOUNT: &str = "DELETE FROM {ks}.accounts WHERE account_id = ?";
const RELEASE_PHONE: &str = "DELETE FROM {ks}.accounts_by_phone WHERE phone = ? IF account_id = ?";
const RELEASE_EMAIL: &str = "DELETE FROM {ks}.accounts_by_email WHERE email = ? IF account_id = ?";
const RELEASE_OPENID: &str = "DELETE FROM {ks}.accounts_by_openid WHERE openid = ? IF account_id = ?";
const DELETE_APPOINTMENT: &str = "DELETE FROM {ks}.appointments WHERE appointment_id = ?";
const DELETE_APPOINTMENT_BY_DOCTOR: &str =
    "DELETE FROM {ks}.appointments_by_doctor WHERE doctor_id = ? AND date = ? AND appointment_id = ?";
const DELETE_APPOINTMENTS_OF_ACCOUNT: &str = "DELETE FROM {ks}.appointments_by_account WHERE account_id = ?";
const DELETE_APPOINTMENT_BY_PERSON: &str =
    "DELETE FROM {ks}.appointments_by_person WHERE person = ? AND date = ? AND appointment_id = ?";
const DELETE_MESSAGES: &str = "DELETE FROM {ks}.messages_by_account WHERE account_id = ?";
const DELETE_EXAM: &str = "DELETE FROM {ks}.exams WHERE exam_id = ?";
const DELETE_EXAMS_OF_ACCOUNT: &str = "DELETE FROM {ks}.exams_by_account WHERE account_id = ?";
const DELETE_PREFS: &str = "DELETE FROM {ks}.notification_preferences WHERE account_id = ?";

fn policy_kind(k: PolicyKind) -> i8 {
    match k {
        PolicyKind::Privacy => 0,
        PolicyKind::Terms => 1,
    }
}

fn uuid(u: uuid::Uuid) -> CqlValue {
    CqlValue::Uuid(u)
}

#[async_trait]
impl RecordStore for ScyllaStore {
    async fn put_visit(&self, v: &VisitRow, fence: Option<&Fence>) -> Result<()> {
        // Several nodes: checked (with the deadline) before anything is written.
        let fenced = self.start_fenced_as(fence, "visit", Owned::Visit(v.id))?;
        let body = encode(v);
        // The visit's row (its truth) leads: under the fence, in a conditional batch of its own.
        let mut own = Writes::default();
        own.push(self, PUT_VISIT, vec![uuid(v.id.0), text(body.clone())]);
        let mut w = Writes::default();
        w.push(self, PUT_VISIT_BY_PATIENT, vec![uuid(v.account_id.0), uuid(v.patient_id.0), uuid(v.id.0), text(body)]);
        self.write_owned(fenced, own, w).await
    }

    async fn visit(&self, id: VisitId) -> Result<Option<VisitRow>> {
        // A claim before the visit's first write leaves a row with no body: none.
        self.owned_body("visits", GET_VISIT, (id.0,)).await
    }

    async fn visits_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<VisitRow>> {
        self.bodies("visits_by_patient", VISITS_OF, (account.0, patient.0)).await
    }

    async fn put_appointment_notes(&self, n: &AppointmentNotesRow, fence: Option<&Fence>) -> Result<()> {
        let visit = hospital_domain::visit::VisitId::of_appointment(n.appointment_id);
        match self.start_fenced_as(fence, "notes", Owned::Visit(visit))? {
            // The visit's fence checked in a conditional batch of its own (the notes live in
            // another partition), then the notes at the write's timestamp.
            Some(started) => {
                let mut notes = Writes::default();
                notes.push(self, PUT_APPOINTMENT_NOTES, vec![uuid(n.appointment_id.0), text(encode(n))]);
                self.apply_owned(started, Writes::default(), vec![notes]).await
            }
            None => {
                self.exec(PUT_APPOINTMENT_NOTES, (n.appointment_id.0, encode(n))).await?;
                Ok(())
            }
        }
    }

    async fn appointment_notes(&self, appointment: AppointmentId) -> Result<Option<AppointmentNotesRow>> {
        match self.row::<(String,)>(GET_APPOINTMENT_NOTES, (appointment.0,)).await? {
            Some((body,)) => Ok(Some(decode("appointment_notes", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_report(&self, r: &ReportRow) -> Result<()> {
        let body = encode(r);
        let mut w = Writes::default();
        w.push(self, PUT_REPORT, vec![uuid(r.id.0), text(body.clone())]);
        w.push(self, PUT_REPORT_BY_PATIENT, vec![uuid(r.account_id.0), uuid(r.patient_id.0), uuid(r.id.0), text(body)]);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn report(&self, id: ReportId) -> Result<Option<ReportRow>> {
        match self.row::<(String,)>(GET_REPORT, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("reports", &body)?)),
            None => Ok(None),
        }
    }

    async fn reports_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ReportRow>> {
        self.bodies("reports_by_patient", REPORTS_OF, (account.0, patient.0)).await
    }

    async fn put_share(&self, s: &ShareLink) -> Result<()> {
        let body = encode(s);
        let mut w = Writes::default();
        w.push(self, PUT_SHARE, vec![uuid(s.id.0), text(body.clone())]);
        w.push(self, PUT_SHARE_BY_PATIENT, vec![uuid(s.account_id.0), uuid(s.patient_id.0), uuid(s.id.0), text(body)]);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn share(&self, id: ShareId) -> Result<Option<ShareLink>> {
        match self.row::<(String,)>(GET_SHARE, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("shares", &body)?)),
            None => Ok(None),
        }
    }

    async fn shares_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ShareLink>> {
        self.bodies("shares_by_patient", SHARES_OF, (account.0, patient.0)).await
    }

    async fn claim_external_id(&self, system: &str, external_id: &str, internal: &str) -> Result<Option<String>> {
        let lwt = self.lwt(CLAIM_EXTERNAL, (system, external_id, internal)).await?;
        if lwt.applied {
            return Ok(None);
        }
        match lwt.value("internal") {
            Some(CqlValue::Text(s)) => Ok(Some(s.clone())),
            _ => Err(StoreError::Scylla("an external id claim returned no internal id".into())),
        }
    }

    async fn release_external_id(&self, system: &str, external_id: &str) -> Result<()> {
        self.exec(RELEASE_EXTERNAL, (system, external_id)).await?;
        Ok(())
    }

    async fn external_ref(&self, system: &str, external_id: &str) -> Result<Option<String>> {
        Ok(self.row::<(String,)>(GET_EXTERNAL, (system, external_id)).await?.map(|(s,)| s))
    }

    async fn put_policy(&self, v: &PolicyVersion) -> Result<()> {
        let version = i32::try_from(v.version).map_err(|_| StoreError::Scylla("policy version too large".into()))?;
        if !self.lwt(CLAIM_POLICY, (policy_kind(v.kind), version, encode(v))).await?.applied {
            return Err(StoreError::Conflict(Conflict::PolicyVersion));
        }
        Ok(())
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>> {
        let mut out = Vec::new();
        for kind in PolicyKind::ALL {
            out.extend(self.bodies::<PolicyVersion>("policy_versions", POLICIES_OF_KIND, (policy_kind(kind),)).await?);
        }
        Ok(out)
    }

    async fn policy(&self, kind: PolicyKind, version: u32) -> Result<Option<PolicyVersion>> {
        let Ok(version) = i32::try_from(version) else { return Ok(None) };
        match self.row::<(String,)>(GET_POLICY, (policy_kind(kind), version)).await? {
            Some((body,)) => Ok(Some(decode("policy_versions", &body)?)),
            None => Ok(None),
        }
    }

    async fn put_consent(&self, c: &Consent) -> Result<()> {
        let version = i32::try_from(c.version).map_err(|_| StoreError::Scylla("policy version too large".into()))?;
        // Not applied: accepted before, and the first time stands.
        self.lwt(PUT_CONSENT, (c.account_id.0, policy_kind(c.kind), version, encode(c))).await?;
        Ok(())
    }

    async fn consents_of(&self, account: AccountId) -> Result<Vec<Consent>> {
        self.bodies("consents", CONSENTS_OF, (account.0,)).await
    }

    async fn put_deletion(&self, d: &DeletionRequest) -> Result<()> {
        self.exec(PUT_DELETION, (d.account_id.0, encode(d))).await?;
        Ok(())
    }

    async fn deletion(&self, account: AccountId) -> Result<Option<DeletionRequest>> {
        match self.row::<(String,)>(GET_DELETION, (account.0,)).await? {
            Some((body,)) => Ok(Some(decode("deletion_requests", &body)?)),
            None => Ok(None),
        }
    }

    async fn remove_deletion(&self, account: AccountId) -> Result<bool> {
        let had = self.deletion(account).await?.is_some();
        self.exec(DELETE_DELETION, (account.0,)).await?;
        Ok(had)
    }

    async fn erase_account(&self, account: AccountId) -> Result<ErasedRows> {
        let mut n = ErasedRows::default();
        let acc = account.0;
        // Patients first: remove_patient also releases the person's row (accounts_by_person).
        let patients = self.patients_of(account).await?;
        for p in &patients {
            let mut w = Writes::default();
            for v in self.visits_of_patient(account, p.id).await? {
                w.push(self, DELETE_VISIT, vec![uuid(v.id.0)]);
                w.push(self, DELETE_VISIT_BY_PATIENT, vec![uuid(acc), uuid(p.id.0), uuid(v.id.0)]);
                n.visits += 1;
            }
            for r in self.reports_of_patient(account, p.id).await? {
                w.push(self, DELETE_REPORT, vec![uuid(r.id.0)]);
                w.push(self, DELETE_REPORT_BY_PATIENT, vec![uuid(acc), uuid(p.id.0), uuid(r.id.0)]);
                n.reports += 1;
            }
            for s in self.shares_of_patient(account, p.id).await? {
                w.push(self, DELETE_SHARE, vec![uuid(s.id.0)]);
                w.push(self, DELETE_SHARE_BY_PATIENT, vec![uuid(acc), uuid(p.id.0), uuid(s.id.0)]);
                n.shares += 1;
            }
            self.run_chunked(w).await?;
            self.remove_patient(account, p.id, None).await?;
        }
        n.patients = patients.len();
        let mut w = Writes::default();
        for a in self.appointments_of_account(account).await? {
            w.push(self, DELETE_APPOINTMENT, vec![uuid(a.id.0)]);
            w.push(
                self,
                DELETE_APPOINTMENT_BY_DOCTOR,
                vec![uuid(a.doctor_id.0), CqlValue::Date(cql_date(a.date)), uuid(a.id.0)],
            );
            w.push(
                self,
                DELETE_APPOINTMENT_BY_PERSON,
                vec![text(a.person.clone()), CqlValue::Date(cql_date(a.date)), uuid(a.id.0)],
            );
            w.push(self, DELETE_APPOINTMENT_NOTES, vec![uuid(a.id.0)]);
            n.appointments += 1;
        }
        for e in self.exams_of_account(account).await? {
            w.push(self, DELETE_EXAM, vec![uuid(e.id.0)]);
            n.exams += 1;
        }
        self.run_chunked(w).await?;
        n.messages = self
            .list_messages(account, MessageFilter { category: None, unread_only: false, limit: usize::MAX })
            .await?
            .len();
        n.consents = self.consents_of(account).await?.len();
        for stmt in
            [DELETE_APPOINTMENTS_OF_ACCOUNT, DELETE_EXAMS_OF_ACCOUNT, DELETE_MESSAGES, DELETE_CONSENTS, DELETE_PREFS]
        {
            self.exec(stmt, (acc,)).await?;
        }
        if let Some(a) = self.account(account).await? {
            if let Some(p) = &a.phone {
                self.lwt(RELEASE_PHONE, (p.as_str(), acc)).await?;
            }
            if let Some(e) = &a.email {
                self.lwt(RELEASE_EMAIL, (e.as_str(), acc)).await?;
            }
            if let Some(o) = &a.wechat_openid {
                self.lwt(RELEASE_OPENID, (o.as_str(), acc)).await?;
            }
            self.exec(DELETE_ACCOUNT, (acc,)).await?;
        }
        // Last: while the request stands, a crash half-way leaves the erase job to finish.
        self.exec(DELETE_DELETION, (acc,)).await?;
        Ok(n)
    }
}

impl ScyllaStore {
    /// Runs deletes in logged batches of at most 100 statements.
    async fn run_chunked(&self, w: Writes) -> Result<()> {
        let mut batch = Writes::default();
        for (stmt, values) in w.statements.into_iter().zip(w.values) {
            batch.statements.push(stmt);
            batch.values.push(values);
            if batch.len() >= 100 {
                self.run_batch(std::mem::take(&mut batch), BatchType::Logged).await?;
            }
        }
        self.run_batch(batch, BatchType::Logged).await
    }
}
