//! Visits, reports, share links, external ids, policies, consents, deletion requests and the
//! erasure of an account (`RecordStore`); the key vault (`KeyVault`); durable jobs (`JobStore`).

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::jobs::Job;
use hospital_domain::privacy::{Consent, DeletionRequest, PolicyKind, PolicyVersion};
use hospital_domain::report::{ReportFile, ReportSource, ShareLink};
use hospital_domain::visit::{VisitId, VisitStatus};
use hospital_domain::*;
use std::sync::Arc;

use super::samples::{sample_account, sample_patient};
use crate::records::{AppointmentNotesRow, ReportRow, VisitRow};
use crate::traits::DataStore;
use crate::vault::{KeyVault, WrappedKey};
use crate::{FieldCipher, StoreError};

fn visit_row(account: AccountId, patient: PatientId, sealed: &str) -> VisitRow {
    VisitRow {
        id: VisitId::new(),
        appointment_id: AppointmentId::new(),
        account_id: account,
        patient_id: patient,
        doctor_id: DoctorId::new(),
        department_id: DepartmentId::new(),
        status: VisitStatus::Called,
        called_at: Utc::now(),
        sealed: sealed.into(),
    }
}

fn report(account: AccountId, patient: PatientId) -> ReportFile {
    ReportFile {
        id: ReportId::new(),
        account_id: account,
        patient_id: patient,
        exam_id: None,
        visit_id: None,
        title: "胸部CT报告".into(),
        content_type: "application/pdf".into(),
        size: 1234,
        object_key: format!("reports/{}", uuid::Uuid::new_v4()),
        source: ReportSource::Lab,
        external_id: None,
        uploaded_at: Utc::now(),
    }
}

fn report_row(r: &ReportFile) -> ReportRow {
    // The row as the platform writes it, with a stand-in for the sealed title (sealing is the
    // vault's concern, checked in `vault`).
    ReportRow {
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
        sealed_title: "sealed-title".into(),
    }
}

/// Visits, reports and shares under both keys, replaced in place, apart per 就诊人; external ids
/// claimed once; policy versions published once; consents keep their first time; deletion
/// requests; and `erase_account` removing every row of an account but nobody else's.
pub async fn records(store: Arc<dyn DataStore>) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    let account = sample_account();
    store.create_account(&account).await.unwrap();
    let p = sample_patient(&cipher, account.id, "11010519491231002X");
    store.add_patient(&p, crate::PatientCaps { per_account: 5, accounts_per_person: 1000 }, None).await.unwrap();
    let (a, other_patient) = (account.id, PatientId::new());

    // Visits.
    let mut v = visit_row(a, p.id, "sealed-1");
    assert_eq!(store.visit(v.id).await.unwrap(), None);
    store.put_visit(&v, None).await.unwrap();
    let v2 = visit_row(a, p.id, "sealed-2");
    store.put_visit(&v2, None).await.unwrap();
    let foreign = visit_row(a, other_patient, "sealed-3");
    store.put_visit(&foreign, None).await.unwrap();
    v.status = VisitStatus::Finished;
    v.sealed = "sealed-1b".into();
    store.put_visit(&v, None).await.unwrap();
    assert_eq!(store.visit(v.id).await.unwrap().as_ref(), Some(&v), "replaced in place");
    let mut mine = store.visits_of_patient(a, p.id).await.unwrap();
    mine.sort_by_key(|x| x.id);
    let mut want = vec![v.clone(), v2.clone()];
    want.sort_by_key(|x| x.id);
    assert_eq!(mine, want, "one row per visit under the patient, the latest version");
    assert_eq!(store.visits_of_patient(a, other_patient).await.unwrap(), vec![foreign.clone()]);
    assert!(store.visits_of_patient(AccountId::new(), p.id).await.unwrap().is_empty(), "another account sees none");

    // An appointment's notes before its visit: one row, replaced in place.
    let appointment = AppointmentId::new();
    assert_eq!(store.appointment_notes(appointment).await.unwrap(), None);
    let mut notes =
        AppointmentNotesRow { appointment_id: appointment, account_id: a, patient_id: p.id, sealed: "n-1".into() };
    store.put_appointment_notes(&notes, None).await.unwrap();
    notes.sealed = "n-2".into();
    store.put_appointment_notes(&notes, None).await.unwrap();
    assert_eq!(store.appointment_notes(appointment).await.unwrap(), Some(notes));
    assert_eq!(store.appointment_notes(AppointmentId::new()).await.unwrap(), None);

    // Reports and shares.
    let r = report(a, p.id);
    let row = report_row(&r);
    store.put_report(&row).await.unwrap();
    assert_eq!(store.report(r.id).await.unwrap().as_ref(), Some(&row));
    assert_eq!(store.reports_of_patient(a, p.id).await.unwrap(), vec![row.clone()]);
    assert!(store.reports_of_patient(a, other_patient).await.unwrap().is_empty());
    let now = Utc::now();
    let mut share = ShareLink::new(&r, "ab".repeat(32), 3600, now).unwrap();
    store.put_share(&share).await.unwrap();
    assert!(share.revoke(now));
    store.put_share(&share).await.unwrap();
    assert_eq!(store.share(share.id).await.unwrap().as_ref(), Some(&share), "the revoked version");
    assert_eq!(store.shares_of_patient(a, p.id).await.unwrap(), vec![share.clone()]);

    // External ids: claimed once; a repeat names the first claim; a release frees it.
    let ext = format!("HIS-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(store.claim_external_id("his:visit", &ext, "ours-1").await.unwrap(), None);
    assert_eq!(store.claim_external_id("his:visit", &ext, "ours-2").await.unwrap().as_deref(), Some("ours-1"));
    assert_eq!(store.external_ref("his:visit", &ext).await.unwrap().as_deref(), Some("ours-1"));
    assert_eq!(store.external_ref("lis:report", &ext).await.unwrap(), None);
    assert_eq!(store.claim_external_id("lis:report", &ext, "ours-3").await.unwrap(), None, "systems are apart");
    store.release_external_id("his:visit", &ext).await.unwrap();
    assert_eq!(store.claim_external_id("his:visit", &ext, "ours-4").await.unwrap(), None, "released");

    // Policies and consents.
    let n = (uuid::Uuid::new_v4().as_u128() % 1_000_000) as u32 + 1_000;
    let pv = PolicyVersion::next(PolicyKind::Privacy, Some(n - 1), "隐私政策", "正文", now).unwrap();
    store.put_policy(&pv).await.unwrap();
    let again = store.put_policy(&pv).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(crate::Conflict::PolicyVersion))),
        "a version is published once: {again:?}"
    );
    assert_eq!(store.policy(PolicyKind::Privacy, n).await.unwrap().as_ref(), Some(&pv));
    assert_eq!(store.policy(PolicyKind::Terms, n).await.unwrap(), None, "kinds are apart");
    assert!(store.policies().await.unwrap().contains(&pv));
    let c = Consent { account_id: a, kind: PolicyKind::Privacy, version: n, accepted_at: now };
    store.put_consent(&c).await.unwrap();
    let later = Consent { accepted_at: now + ChronoDuration::hours(1), ..c.clone() };
    store.put_consent(&later).await.unwrap();
    assert_eq!(store.consents_of(a).await.unwrap(), vec![c.clone()], "the first acceptance is kept");
    assert!(store.consents_of(AccountId::new()).await.unwrap().is_empty());

    // Deletion requests.
    assert_eq!(store.deletion(a).await.unwrap(), None);
    let d = DeletionRequest::new(a, now, ChronoDuration::days(7));
    store.put_deletion(&d).await.unwrap();
    assert_eq!(store.deletion(a).await.unwrap().as_ref(), Some(&d));
    assert!(store.remove_deletion(a).await.unwrap());
    assert!(!store.remove_deletion(a).await.unwrap(), "cancelled already");
    store.put_deletion(&d).await.unwrap();

    // A neighbour whose rows must survive the erasure.
    let neighbour = sample_account();
    store.create_account(&neighbour).await.unwrap();
    let np = sample_patient(&cipher, neighbour.id, "11010519491231002X");
    store.add_patient(&np, crate::PatientCaps { per_account: 5, accounts_per_person: 1000 }, None).await.unwrap();
    let nv = visit_row(neighbour.id, np.id, "neighbour");
    store.put_visit(&nv, None).await.unwrap();
    store.put_consent(&Consent { account_id: neighbour.id, ..c.clone() }).await.unwrap();

    let erased = store.erase_account(a).await.unwrap();
    assert_eq!((erased.patients, erased.visits, erased.reports, erased.shares), (1, 2, 1, 1), "{erased:?}");
    assert_eq!(erased.consents, 1);
    assert_eq!(store.account(a).await.unwrap(), None);
    assert_eq!(store.account_by_phone(account.phone.as_ref().unwrap()).await.unwrap(), None, "login keys go too");
    assert!(store.patients_of(a).await.unwrap().is_empty());
    assert_eq!(store.visit(v.id).await.unwrap(), None);
    assert!(store.visits_of_patient(a, p.id).await.unwrap().is_empty());
    assert_eq!(store.report(r.id).await.unwrap(), None);
    assert_eq!(store.share(share.id).await.unwrap(), None);
    assert!(store.consents_of(a).await.unwrap().is_empty());
    assert_eq!(store.deletion(a).await.unwrap(), None);
    let holders = store.holders_of_person(&p.id_card_index).await.unwrap();
    assert!(!holders.iter().any(|h| h.account_id == a), "the person index forgets the account");
    assert!(holders.iter().any(|h| h.account_id == neighbour.id), "and keeps the neighbour");
    assert_eq!(store.visit(nv.id).await.unwrap().as_ref(), Some(&nv), "another account's rows stay");
    assert_eq!(store.consents_of(neighbour.id).await.unwrap().len(), 1);
    assert!(store.account(neighbour.id).await.unwrap().is_some());
}

/// The key vault: one wrapped key per patient, the first of two racing writers wins, replaced
/// by a re-wrap, destroyed for good.
pub async fn vault(vault: Arc<dyn KeyVault>) {
    let master = FieldCipher::new("k1", &[("k1".into(), [3; 32])]).unwrap();
    let (p, q) = (PatientId::new(), PatientId::new());
    assert_eq!(vault.wrapped_key(p).await.unwrap(), None);
    let first = WrappedKey { patient_id: p, wrapped: master.seal("first"), created_at: Utc::now() };
    let second = WrappedKey { patient_id: p, wrapped: master.seal("second"), created_at: Utc::now() };
    assert_eq!(vault.put_wrapped_key_if_absent(&first).await.unwrap(), first);
    assert_eq!(vault.put_wrapped_key_if_absent(&second).await.unwrap(), first, "the first key stays");
    assert_eq!(vault.wrapped_key(p).await.unwrap().as_ref(), Some(&first));
    let other = WrappedKey { patient_id: q, wrapped: master.seal("other"), created_at: Utc::now() };
    vault.put_wrapped_key_if_absent(&other).await.unwrap();
    let rewrapped = WrappedKey { wrapped: master.seal("first again"), ..first.clone() };
    vault.replace_wrapped_key(&rewrapped).await.unwrap();
    assert_eq!(vault.wrapped_key(p).await.unwrap().as_ref(), Some(&rewrapped));
    let all = vault.wrapped_keys().await.unwrap();
    assert!(all.contains(&rewrapped) && all.contains(&other));
    assert!(vault.destroy_wrapped_key(p).await.unwrap());
    assert!(!vault.destroy_wrapped_key(p).await.unwrap(), "destroyed already");
    assert_eq!(vault.wrapped_key(p).await.unwrap(), None);
    assert_eq!(vault.wrapped_key(q).await.unwrap().as_ref(), Some(&other), "another patient's key stays");
    assert!(!vault.wrapped_keys().await.unwrap().iter().any(|k| k.patient_id == p));
}

/// Durable jobs: scheduled once per id, listed when due, claimed by one owner under a lease,
/// finished (removed) or moved to a retry time; a stale queue row is never run.
pub async fn jobs(store: Arc<dyn DataStore>) {
    let now = Utc::now();
    let (owner, rival) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let due = Job::close_session(SessionId::new(), DoctorId::new(), now - ChronoDuration::minutes(1), now);
    let later = Job::erase_account(AccountId::new(), now + ChronoDuration::days(7), now);
    assert!(store.schedule_job(&due).await.unwrap());
    assert!(!store.schedule_job(&due).await.unwrap(), "one job per id");
    assert!(store.schedule_job(&later).await.unwrap());
    assert_eq!(store.job(&due.id).await.unwrap().as_ref(), Some(&due));
    let window = (now - ChronoDuration::hours(1), now);
    let listed = store.due_jobs(window.0, window.1, 100).await.unwrap();
    assert!(listed.contains(&due) && !listed.contains(&later), "only what is due");

    assert_eq!(store.claim_job(&later, owner, now, now + ChronoDuration::minutes(1)).await.unwrap(), None, "not due");
    let lease = now + ChronoDuration::minutes(1);
    assert_eq!(store.claim_job(&due, owner, now, lease).await.unwrap().as_ref(), Some(&due));
    assert_eq!(store.claim_job(&due, rival, now, lease).await.unwrap(), None, "leased to another");
    assert!(!store.finish_job(&due.id, rival, None).await.unwrap(), "only the lease holder finishes");

    // A failed run: rescheduled; the old queue row is gone, the new one runs when due.
    let mut retry = due.clone();
    retry.retry_later("busy", now, ChronoDuration::seconds(10), ChronoDuration::minutes(5));
    assert!(store.finish_job(&due.id, owner, Some(&retry)).await.unwrap());
    assert_eq!(store.job(&due.id).await.unwrap().as_ref(), Some(&retry));
    assert!(!store.due_jobs(window.0, window.1, 100).await.unwrap().iter().any(|j| j.id == due.id));
    assert_eq!(store.claim_job(&due, owner, now, lease).await.unwrap(), None, "a stale entry does not run");
    let at = retry.due_at;
    assert_eq!(store.claim_job(&retry, rival, at, at + ChronoDuration::minutes(1)).await.unwrap(), Some(retry.clone()));
    assert!(store.finish_job(&retry.id, rival, None).await.unwrap());
    assert_eq!(store.job(&due.id).await.unwrap(), None, "done: removed");

    // Cancelling and re-scheduling under the same id.
    assert!(store.cancel_job(&later.id).await.unwrap());
    assert!(!store.cancel_job(&later.id).await.unwrap());
    assert_eq!(store.job(&later.id).await.unwrap(), None);
    let moved = Job { due_at: now - ChronoDuration::seconds(5), ..later.clone() };
    assert!(store.schedule_job(&moved).await.unwrap());
    let mut put = moved.clone();
    put.due_at = now - ChronoDuration::seconds(2);
    store.put_job(&put).await.unwrap();
    let listed = store.due_jobs(window.0, now, 100).await.unwrap();
    assert_eq!(listed.iter().filter(|j| j.id == later.id).count(), 1, "put_job moves the queue row");
    store.cancel_job(&later.id).await.unwrap();
}
