//! Examinations and their status (REC-4): one row per exam by id, and the account's exams for
//! "my exams". Changes of state are decided by `hospital_domain::exam::Exam::apply`; the store
//! only keeps the latest version.
//!
//! An exam's result (the abnormal flag and the preview) is medical content: the row carries it
//! sealed with the patient's data key (`ExamRow::seal`, REC-5), so crypto-erasure covers it like
//! a visit. What stays in clear is what ordering and listing need: ids, the exam's name (the
//! order, which is also a fee item's name), its kind, status and times.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hospital_domain::exam::{Exam, ExamKind, ExamStatus};
use hospital_domain::message::Message;
use hospital_domain::{AccountId, ExamId, PatientId};
use serde::{Deserialize, Serialize};
use std::collections::hash_map::{Entry, HashMap};

use crate::error::Result;
use crate::vault::{PersonCipher, PersonKey};
use crate::StoreError;

/// An exam as stored: the result sealed with the patient's key.
///
/// Rows written before results were sealed kept `abnormal` and `summary` in clear; they are read
/// as they are (`open`) and sealed the next time the exam is written. New rows never carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamRow {
    pub id: ExamId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub name: String,
    pub kind: ExamKind,
    pub status: ExamStatus,
    pub ordered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The result (`{"abnormal", "summary"}` as JSON) sealed with the patient's key, context
    /// `exam:<id>`; set exactly when the exam is completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_result: Option<String>,
    /// A row of the first format: the flag in clear (read, never written).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abnormal: bool,
    /// A row of the first format: the preview in clear (read, never written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// What is sealed of an exam.
#[derive(Serialize, Deserialize)]
struct ExamResult {
    abnormal: bool,
    summary: Option<String>,
}

impl ExamRow {
    /// The sealing context of an exam's result.
    pub fn context(id: ExamId) -> String {
        format!("exam:{id}")
    }

    /// Whether opening the row needs its patient's key.
    pub fn is_sealed(&self) -> bool {
        self.sealed_result.is_some()
    }

    /// Seals `exam`'s result with its patient's key; an exam without a result (not completed)
    /// needs no key.
    pub fn seal(exam: &Exam, key: Option<&PersonKey>) -> Result<Self> {
        let sealed_result = if exam.status == ExamStatus::Completed {
            let key =
                key.ok_or_else(|| StoreError::Cipher("a completed exam is sealed with its patient's key".into()))?;
            check_patient(key, exam.patient_id)?;
            let result = ExamResult { abnormal: exam.abnormal, summary: exam.summary.clone() };
            Some(key.seal_json(&Self::context(exam.id), &result))
        } else {
            None
        };
        Ok(Self {
            id: exam.id,
            account_id: exam.account_id,
            patient_id: exam.patient_id,
            name: exam.name.clone(),
            kind: exam.kind,
            status: exam.status,
            ordered_at: exam.ordered_at,
            updated_at: exam.updated_at,
            completed_at: exam.completed_at,
            sealed_result,
            abnormal: false,
            summary: None,
        })
    }

    /// Opens the exam; `key` (its patient's) is needed only if `is_sealed`.
    pub fn open(&self, key: Option<&PersonKey>) -> Result<Exam> {
        let (abnormal, summary) = match &self.sealed_result {
            Some(sealed) => {
                let key = key.ok_or_else(|| StoreError::Cipher("the exam's patient has no data key".into()))?;
                check_patient(key, self.patient_id)?;
                let r: ExamResult = key.open_json(&Self::context(self.id), sealed)?;
                (r.abnormal, r.summary)
            }
            None => (self.abnormal, self.summary.clone()),
        };
        Ok(Exam {
            id: self.id,
            account_id: self.account_id,
            patient_id: self.patient_id,
            name: self.name.clone(),
            kind: self.kind,
            status: self.status,
            abnormal,
            summary,
            ordered_at: self.ordered_at,
            updated_at: self.updated_at,
            completed_at: self.completed_at,
        })
    }
}

fn check_patient(key: &PersonKey, patient: PatientId) -> Result<()> {
    if key.patient() == patient {
        Ok(())
    } else {
        Err(StoreError::Cipher("another patient's key".into()))
    }
}

/// Opens exam rows, unwrapping each patient's key once. A row whose result is sealed while its
/// patient's key is gone (erased) is left out: nothing can be shown of it.
pub async fn open_exams(keys: &PersonCipher, rows: Vec<ExamRow>) -> Result<Vec<Exam>> {
    let mut found: HashMap<PatientId, Option<PersonKey>> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if !row.is_sealed() {
            out.push(row.open(None)?);
            continue;
        }
        let key = match found.entry(row.patient_id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(keys.existing_key(row.patient_id).await?),
        };
        if let Some(key) = key.as_ref() {
            out.push(row.open(Some(key))?);
        }
    }
    Ok(out)
}

/// Opens one exam row; None if its result is sealed and its patient's key is gone.
pub async fn open_exam(keys: &PersonCipher, row: ExamRow) -> Result<Option<Exam>> {
    Ok(open_exams(keys, vec![row]).await?.pop())
}

#[async_trait]
pub trait ExamStore: Send + Sync {
    /// Inserts or replaces an exam under both its keys (by id and by account), with the
    /// message-centre items and live events of the change, in one write. Several nodes: `fence`
    /// is the exam actor's lease token (`exam:<id>`); the store refuses the write if it has seen
    /// a newer one for the exam (`Conflict::StaleFence`).
    async fn put_exam(
        &self,
        exam: &ExamRow,
        messages: &[Message],
        events: &[crate::PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()>;
    async fn exam(&self, id: ExamId) -> Result<Option<ExamRow>>;
    /// The account's exams, newest first (by order time: exam ids are UUIDv7).
    async fn exams_of_account(&self, account: AccountId) -> Result<Vec<ExamRow>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::exam::ExamChange;

    #[test]
    fn a_first_format_row_reads_as_it_was_written() {
        // An exam row as stored before results were sealed: the serialised `Exam`.
        let mut e = Exam::new(AccountId::new(), PatientId::new(), "血常规", ExamKind::Lab, Utc::now()).unwrap();
        let change =
            ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary: Some("白细胞偏高".into()) };
        e.apply(change, Utc::now()).unwrap();
        let old = serde_json::to_string(&e).unwrap();
        let row: ExamRow = serde_json::from_str(&old).unwrap();
        assert!(!row.is_sealed());
        assert_eq!(row.open(None).unwrap(), e, "read without a key");
        // A pending exam of the new format carries no result and needs no key either.
        let pending = Exam::new(e.account_id, e.patient_id, "尿常规", ExamKind::Lab, Utc::now()).unwrap();
        let row = ExamRow::seal(&pending, None).unwrap();
        let json = serde_json::to_value(&row).unwrap();
        assert!(json.get("summary").is_none() && json.get("abnormal").is_none() && json.get("sealed_result").is_none());
        assert_eq!(row.open(None).unwrap(), pending);
        assert!(ExamRow::seal(&e, None).is_err(), "a result is never written without the key");
    }

    #[tokio::test]
    async fn a_result_is_sealed_with_the_patients_key_and_gone_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let vault = std::sync::Arc::new(crate::EmbeddedStore::open(dir.path()).unwrap());
        let ring = crate::FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
        let keys = PersonCipher::new(vault, ring);
        let mut e = Exam::new(AccountId::new(), PatientId::new(), "胸部CT平扫", ExamKind::Imaging, Utc::now()).unwrap();
        e.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, Utc::now()).unwrap();
        let result = "右肺上叶磨玻璃结节";
        let done = ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary: Some(result.into()) };
        e.apply(done, Utc::now()).unwrap();
        let key = keys.key(e.patient_id).await.unwrap();
        let row = ExamRow::seal(&e, Some(&key)).unwrap();
        let stored = serde_json::to_string(&row).unwrap();
        assert!(
            !stored.contains(result) && !stored.contains("\"abnormal\""),
            "nothing of the result in clear: {stored}"
        );
        assert!(stored.contains("胸部CT平扫"), "the order's name stays in clear");
        let back: ExamRow = serde_json::from_str(&stored).unwrap();
        assert_eq!(back.open(Some(&key)).unwrap(), e);
        assert!(back.open(None).is_err());
        let other = keys.key(PatientId::new()).await.unwrap();
        assert!(back.open(Some(&other)).is_err(), "another patient's key does not open it");
        assert!(ExamRow::seal(&e, Some(&other)).is_err());
        assert_eq!(open_exams(&keys, vec![back.clone()]).await.unwrap(), vec![e.clone()]);
        keys.destroy(e.patient_id).await.unwrap();
        assert!(open_exams(&keys, vec![back]).await.unwrap().is_empty(), "erased: nothing to show");
    }
}
