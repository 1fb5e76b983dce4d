//! Visits, reports, shares, external ids, policies, consents, deletion requests and the erasure
//! of an account, on the embedded engine. Each row under all its keys in one transaction; an
//! erasure is one transaction too, so it removes everything or nothing.

use async_trait::async_trait;
use hospital_domain::appointment::Appointment;
use hospital_domain::message::Message;
use hospital_domain::privacy::{Consent, DeletionRequest, PolicyKind, PolicyVersion};
use hospital_domain::report::ShareLink;
use hospital_domain::visit::VisitId;
use hospital_domain::{AccountId, AppointmentId, PatientId, ReportId, ShareId};

use super::accounts::{holder_key, lookups};
use super::engine::{Reader, WriteCtx};
use super::keys::Key;
use super::tables::*;
use super::EmbeddedStore;
use crate::error::{Conflict, Result};
use crate::records::{AppointmentNotesRow, ErasedRows, RecordStore, ReportRow, VisitRow};
use crate::{Account, PatientRecord, StoreError};

fn by_patient(account: AccountId, patient: PatientId) -> Key {
    Key::new().uuid(&account.0).uuid(&patient.0)
}

fn policy_kind(k: PolicyKind) -> u8 {
    match k {
        PolicyKind::Privacy => 0,
        PolicyKind::Terms => 1,
    }
}

fn external_key(system: &str, external_id: &str) -> Key {
    Key::new().str(system).str(external_id)
}

#[async_trait]
impl RecordStore for EmbeddedStore {
    async fn put_visit(&self, visit: &VisitRow, fence: Option<&crate::Fence>) -> Result<()> {
        let (v, fence) = (visit.clone(), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                ctx.put(VISITS, &Key::new().uuid(&v.id.0), &v);
                ctx.put(VISITS_BY_PATIENT, &by_patient(v.account_id, v.patient_id).uuid(&v.id.0), &v);
                Ok(())
            })
            .await
    }

    async fn visit(&self, id: VisitId) -> Result<Option<VisitRow>> {
        self.engine.read(|r| r.get(VISITS, &Key::new().uuid(&id.0)))
    }

    async fn visits_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<VisitRow>> {
        self.engine.read(|r| r.scan(VISITS_BY_PATIENT, &by_patient(account, patient)))
    }

    async fn put_appointment_notes(&self, notes: &AppointmentNotesRow, fence: Option<&crate::Fence>) -> Result<()> {
        let (n, fence) = (notes.clone(), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                ctx.put(APPOINTMENT_NOTES, &Key::new().uuid(&n.appointment_id.0), &n);
                Ok(())
            })
            .await
    }

    async fn appointment_notes(&self, appointment: AppointmentId) -> Result<Option<AppointmentNotesRow>> {
        self.engine.read(|r| r.get(APPOINTMENT_NOTES, &Key::new().uuid(&appointment.0)))
    }

    async fn put_report(&self, report: &ReportRow) -> Result<()> {
        let r = report.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(REPORTS, &Key::new().uuid(&r.id.0), &r);
                ctx.put(REPORTS_BY_PATIENT, &by_patient(r.account_id, r.patient_id).uuid(&r.id.0), &r);
                Ok(())
            })
            .await
    }

    async fn report(&self, id: ReportId) -> Result<Option<ReportRow>> {
        self.engine.read(|r| r.get(REPORTS, &Key::new().uuid(&id.0)))
    }

    async fn reports_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ReportRow>> {
        self.engine.read(|r| r.scan(REPORTS_BY_PATIENT, &by_patient(account, patient)))
    }

    async fn put_share(&self, share: &ShareLink) -> Result<()> {
        let s = share.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(SHARES, &Key::new().uuid(&s.id.0), &s);
                ctx.put(SHARES_BY_PATIENT, &by_patient(s.account_id, s.patient_id).uuid(&s.id.0), &s);
                Ok(())
            })
            .await
    }

    async fn share(&self, id: ShareId) -> Result<Option<ShareLink>> {
        self.engine.read(|r| r.get(SHARES, &Key::new().uuid(&id.0)))
    }

    async fn shares_of_patient(&self, account: AccountId, patient: PatientId) -> Result<Vec<ShareLink>> {
        self.engine.read(|r| r.scan(SHARES_BY_PATIENT, &by_patient(account, patient)))
    }

    async fn claim_external_id(&self, system: &str, external_id: &str, internal: &str) -> Result<Option<String>> {
        let (key, internal) = (external_key(system, external_id), internal.to_string());
        self.engine
            .write(move |ctx| {
                if let Some(existing) = ctx.get::<String>(EXTERNAL_REFS, &key)? {
                    return Ok(Some(existing));
                }
                ctx.put(EXTERNAL_REFS, &key, &internal);
                Ok(None)
            })
            .await
    }

    async fn release_external_id(&self, system: &str, external_id: &str) -> Result<()> {
        let key = external_key(system, external_id);
        self.engine
            .write(move |ctx| {
                ctx.delete(EXTERNAL_REFS, &key);
                Ok(())
            })
            .await
    }

    async fn external_ref(&self, system: &str, external_id: &str) -> Result<Option<String>> {
        self.engine.read(|r| r.get(EXTERNAL_REFS, &external_key(system, external_id)))
    }

    async fn put_policy(&self, version: &PolicyVersion) -> Result<()> {
        let v = version.clone();
        self.engine
            .write(move |ctx| {
                let key = Key::new().u8(policy_kind(v.kind)).u64(u64::from(v.version));
                if ctx.get_raw(POLICY_VERSIONS, key.bytes())?.is_some() {
                    return Err(StoreError::Conflict(Conflict::PolicyVersion));
                }
                ctx.put(POLICY_VERSIONS, &key, &v);
                Ok(())
            })
            .await
    }

    async fn policies(&self) -> Result<Vec<PolicyVersion>> {
        self.engine.read(|r| r.scan(POLICY_VERSIONS, &Key::new()))
    }

    async fn policy(&self, kind: PolicyKind, version: u32) -> Result<Option<PolicyVersion>> {
        self.engine.read(|r| r.get(POLICY_VERSIONS, &Key::new().u8(policy_kind(kind)).u64(u64::from(version))))
    }

    async fn put_consent(&self, consent: &Consent) -> Result<()> {
        let c = consent.clone();
        self.engine
            .write(move |ctx| {
                let key = Key::new().uuid(&c.account_id.0).u8(policy_kind(c.kind)).u64(u64::from(c.version));
                if ctx.get_raw(CONSENTS, key.bytes())?.is_none() {
                    ctx.put(CONSENTS, &key, &c);
                }
                Ok(())
            })
            .await
    }

    async fn consents_of(&self, account: AccountId) -> Result<Vec<Consent>> {
        self.engine.read(|r| r.scan(CONSENTS, &Key::new().uuid(&account.0)))
    }

    async fn put_deletion(&self, request: &DeletionRequest) -> Result<()> {
        let d = request.clone();
        self.engine
            .write(move |ctx| {
                ctx.put(DELETION_REQUESTS, &Key::new().uuid(&d.account_id.0), &d);
                Ok(())
            })
            .await
    }

    async fn deletion(&self, account: AccountId) -> Result<Option<DeletionRequest>> {
        self.engine.read(|r| r.get(DELETION_REQUESTS, &Key::new().uuid(&account.0)))
    }

    async fn remove_deletion(&self, account: AccountId) -> Result<bool> {
        self.engine
            .write(move |ctx| {
                let key = Key::new().uuid(&account.0);
                let had = ctx.get_raw(DELETION_REQUESTS, key.bytes())?.is_some();
                ctx.delete(DELETION_REQUESTS, &key);
                Ok(had)
            })
            .await
    }

    async fn erase_account(&self, account: AccountId) -> Result<ErasedRows> {
        self.engine.write(move |ctx| erase(ctx, account)).await
    }
}

/// Every row of `account`, deleted in the caller's transaction.
fn erase(ctx: &mut WriteCtx<'_>, account: AccountId) -> Result<ErasedRows> {
    let mut n = ErasedRows::default();
    let acc = Key::new().uuid(&account.0);
    if let Some(a) = ctx.get::<Account>(ACCOUNTS, &acc)? {
        for (table, key, _) in lookups(&a) {
            // Only if it still names this account (a phone moved on is someone else's now).
            if ctx.get::<AccountId>(table, &key)? == Some(account) {
                ctx.delete(table, &key);
            }
        }
        ctx.delete(ACCOUNTS, &acc);
    }
    let patients: Vec<PatientRecord> = ctx.scan(PATIENTS_BY_ACCOUNT, &acc)?;
    for p in &patients {
        ctx.delete(PATIENTS_BY_ACCOUNT, &acc.clone().uuid(&p.id.0));
        ctx.delete(ACCOUNTS_BY_PERSON, &holder_key(&p.id_card_index, account));
        let part = by_patient(account, p.id);
        for v in ctx.scan::<VisitRow>(VISITS_BY_PATIENT, &part)? {
            ctx.delete(VISITS, &Key::new().uuid(&v.id.0));
            ctx.delete(VISITS_BY_PATIENT, &part.clone().uuid(&v.id.0));
            n.visits += 1;
        }
        for r in ctx.scan::<ReportRow>(REPORTS_BY_PATIENT, &part)? {
            ctx.delete(REPORTS, &Key::new().uuid(&r.id.0));
            ctx.delete(REPORTS_BY_PATIENT, &part.clone().uuid(&r.id.0));
            n.reports += 1;
        }
        for s in ctx.scan::<ShareLink>(SHARES_BY_PATIENT, &part)? {
            ctx.delete(SHARES, &Key::new().uuid(&s.id.0));
            ctx.delete(SHARES_BY_PATIENT, &part.clone().uuid(&s.id.0));
            n.shares += 1;
        }
    }
    n.patients = patients.len();
    for a in super::index::resolve::<Appointment>(ctx, APPOINTMENTS_BY_ACCOUNT, &acc, APPOINTMENTS)? {
        ctx.delete(APPOINTMENTS, &Key::new().uuid(&a.id.0));
        ctx.delete(APPOINTMENTS_BY_DOCTOR, &Key::new().uuid(&a.doctor_id.0).date(a.date).uuid(&a.id.0));
        ctx.delete(APPOINTMENTS_BY_ACCOUNT, &acc.clone().uuid(&a.id.0));
        ctx.delete(APPOINTMENTS_BY_PERSON, &Key::new().str(&a.person).date(a.date).uuid(&a.id.0));
        ctx.delete(APPOINTMENT_NOTES, &Key::new().uuid(&a.id.0));
        n.appointments += 1;
    }
    for m in ctx.scan::<Message>(MESSAGES_BY_ACCOUNT, &acc)? {
        ctx.delete(MESSAGES_BY_ACCOUNT, &acc.clone().uuid(&m.id.0));
        n.messages += 1;
    }
    for e in ctx.scan::<crate::exams::ExamRow>(EXAMS_BY_ACCOUNT, &acc)? {
        ctx.delete(EXAMS, &Key::new().uuid(&e.id.0));
        ctx.delete(EXAMS_BY_ACCOUNT, &acc.clone().uuid(&e.id.0));
        n.exams += 1;
    }
    for c in ctx.scan::<Consent>(CONSENTS, &acc)? {
        ctx.delete(CONSENTS, &acc.clone().u8(policy_kind(c.kind)).u64(u64::from(c.version)));
        n.consents += 1;
    }
    ctx.delete(NOTIFICATION_PREFERENCES, &acc);
    ctx.delete(DELETION_REQUESTS, &acc);
    Ok(n)
}
