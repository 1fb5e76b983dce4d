//! Exams and clinic session queues.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::*;
use std::sync::Arc;

use crate::traits::DataStore;

/// Exams (REC-4): written under both keys, replaced in place as they change, listed per account
/// newest first, never seen by another account.
pub async fn exams(store: Arc<dyn DataStore>) {
    use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
    let account = AccountId::new();
    let other = AccountId::new();
    let t0 = Utc::now();
    let mut first = Exam::new(account, PatientId::new(), "胸部CT平扫", ExamKind::Imaging, t0).unwrap();
    let second = Exam::new(account, PatientId::new(), "血常规", ExamKind::Lab, t0).unwrap();
    let foreign = Exam::new(other, PatientId::new(), "尿常规", ExamKind::Lab, t0).unwrap();
    assert_eq!(store.exam(first.id).await.unwrap(), None);
    assert!(store.exams_of_account(account).await.unwrap().is_empty());
    for e in [&first, &second, &foreign] {
        store.put_exam(e, &[], &[]).await.unwrap();
    }
    assert_eq!(store.exam(first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.exams_of_account(account).await.unwrap(), vec![second.clone(), first.clone()], "newest first");
    assert_eq!(store.exams_of_account(other).await.unwrap(), vec![foreign.clone()]);

    first.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, t0).unwrap();
    store.put_exam(&first, &[], &[]).await.unwrap();
    let done =
        ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary: Some("右肺上叶结节".into()) };
    first.apply(done, t0 + ChronoDuration::hours(1)).unwrap();
    store.put_exam(&first, &[], &[]).await.unwrap();
    assert_eq!(store.exam(first.id).await.unwrap().as_ref(), Some(&first), "replaced in place");
    let listed = store.exams_of_account(account).await.unwrap();
    assert_eq!(listed, vec![second, first.clone()], "one row per exam, updated under both keys");
    assert!(listed[1].abnormal && listed[1].summary.as_deref() == Some("右肺上叶结节"));
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
    store.put_queue(session, doctor, &q, &[]).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap().as_ref(), Some(&q));
    // The next change replaces the row whole.
    q.call_next("3", now + ChronoDuration::minutes(1)).unwrap();
    q.skip().unwrap();
    q.call_next("3", now + ChronoDuration::minutes(2)).unwrap();
    store.put_queue(session, doctor, &q, &[]).await.unwrap();
    let back = store.queue(session).await.unwrap().expect("stored");
    assert_eq!(back, q, "the latest queue, with its called, skipped and waiting patients");
    assert_eq!(back.waiting().len(), 1);
    assert_eq!(back.skipped().len(), 1);
    let other = ClinicQueue::new(SessionId::new(), doctor);
    store.put_queue(other.session_id, doctor, &other, &[]).await.unwrap();
    assert_eq!(store.queue(session).await.unwrap(), Some(q), "another session's queue is apart");
    assert_eq!(store.queue(other.session_id).await.unwrap(), Some(other));
}
