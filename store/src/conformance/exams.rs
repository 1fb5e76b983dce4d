//! Exams and clinic session queues.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::*;
use std::sync::Arc;

use crate::traits::DataStore;

/// Exams (REC-4): written under both keys, replaced in place as they change, listed per account
/// newest first, never seen by another account. A completed exam's result travels sealed
/// (`ExamRow::sealed_result`); here a stand-in, since sealing is the vault's concern.
pub async fn exams(store: Arc<dyn DataStore>) {
    use crate::exams::ExamRow;
    use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
    let row = |e: &Exam| ExamRow::seal(e, None).unwrap();
    let account = AccountId::new();
    let other = AccountId::new();
    let t0 = Utc::now();
    let mut first = Exam::new(account, PatientId::new(), "胸部CT平扫", ExamKind::Imaging, t0).unwrap();
    let second = Exam::new(account, PatientId::new(), "血常规", ExamKind::Lab, t0).unwrap();
    let foreign = Exam::new(other, PatientId::new(), "尿常规", ExamKind::Lab, t0).unwrap();
    assert_eq!(store.exam(first.id).await.unwrap(), None);
    assert!(store.exams_of_account(account).await.unwrap().is_empty());
    for e in [&first, &second, &foreign] {
        store.put_exam(&row(e), &[], &[], None).await.unwrap();
    }
    assert_eq!(store.exam(first.id).await.unwrap(), Some(row(&first)));
    assert_eq!(store.exams_of_account(account).await.unwrap(), vec![row(&second), row(&first)], "newest first");
    assert_eq!(store.exams_of_account(other).await.unwrap(), vec![row(&foreign)]);

    first.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, t0).unwrap();
    store.put_exam(&row(&first), &[], &[], None).await.unwrap();
    let t1 = t0 + ChronoDuration::hours(1);
    let sealed = Some("c3RhbmQtaW4=".to_string());
    let done = ExamRow {
        status: ExamStatus::Completed,
        updated_at: t1,
        completed_at: Some(t1),
        sealed_result: sealed,
        ..row(&first)
    };
    store.put_exam(&done, &[], &[], None).await.unwrap();
    assert_eq!(store.exam(first.id).await.unwrap().as_ref(), Some(&done), "replaced in place");
    let listed = store.exams_of_account(account).await.unwrap();
    assert_eq!(listed, vec![row(&second), done.clone()], "one row per exam, updated under both keys");
    assert!(listed[1].is_sealed() && listed[1].summary.is_none(), "the result as sealed, nothing in clear");
    assert!(store.exams_of_account(AccountId::new()).await.unwrap().is_empty());
}

/// Clinic session queues (BOOK-10): a whole-row upsert per session, read back exactly; sessions
/// are apart; an unknown session has no queue.
pub async fn queues(store: Arc<dyn DataStore>) {
    use hospital_domain::queue::{ClinicQueue, QueueEntry};
    let (session, doctor) = (SessionId::new(), DoctorId::new());
    assert_eq!(store.queue(session).await.unwrap(), None, "no queue before the first check-in");
    let now = Utc::now();
    let mut q = ClinicQueue::new(session, doctor);
    for place in 1..=3 {
        q.check_in(QueueEntry {
            appointment_id: AppointmentId::new(),
            account_id: AccountId::new(),
            patient_id: PatientId::new(),
            patient_name: format!("患者{place}"),
            segment: 0,
            place,
            checked_in_at: now,
        });
    }
    store.put_queue(session, doctor, &q, &[], None).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap().as_ref(), Some(&q));
    // The next change replaces the row whole.
    q.call_next("3", now + ChronoDuration::minutes(1)).unwrap();
    q.skip().unwrap();
    q.call_next("3", now + ChronoDuration::minutes(2)).unwrap();
    store.put_queue(session, doctor, &q, &[], None).await.unwrap();
    let back = store.queue(session).await.unwrap().expect("stored");
    assert_eq!(back, q, "the latest queue, with its called, skipped and waiting patients");
    assert_eq!(back.waiting().len(), 1);
    assert_eq!(back.skipped().len(), 1);
    let other = ClinicQueue::new(SessionId::new(), doctor);
    store.put_queue(other.session_id, doctor, &other, &[], None).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap(), Some(q), "another session's queue is apart");
    assert_eq!(store.queue(other.session_id).await.unwrap(), Some(other));
}
