//! Exams on ScyllaDB: the `exams` and `exams_by_account` tables of `schema.cql`. An exam is
//! written under both keys in one logged batch (two partitions), so once acknowledged both rows
//! are applied eventually even if the coordinator dies half-way.

use async_trait::async_trait;
use hospital_domain::message::Message;
use hospital_domain::{AccountId, ExamId};
use scylla::statement::batch::BatchType;
use scylla::value::CqlValue;

use super::{decode, encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::exams::{ExamRow, ExamStore};
use crate::PendingEvent;

const PUT_EXAM: &str = "INSERT INTO {ks}.exams (exam_id, body) VALUES (?, ?)";
const PUT_EXAM_BY_ACCOUNT: &str = "INSERT INTO {ks}.exams_by_account (account_id, exam_id, body) VALUES (?, ?, ?)";
const GET_EXAM: &str = "SELECT body FROM {ks}.exams WHERE exam_id = ?";
/// Clustering order is newest first (`exam_id DESC`).
const EXAMS_OF_ACCOUNT: &str = "SELECT body FROM {ks}.exams_by_account WHERE account_id = ?";

#[async_trait]
impl ExamStore for ScyllaStore {
    async fn put_exam(&self, exam: &ExamRow, messages: &[Message], events: &[PendingEvent]) -> Result<()> {
        let body = encode(exam);
        let mut w = Writes::default();
        w.push(self, PUT_EXAM, vec![CqlValue::Uuid(exam.id.0), text(body.clone())]);
        w.push(
            self,
            PUT_EXAM_BY_ACCOUNT,
            vec![CqlValue::Uuid(exam.account_id.0), CqlValue::Uuid(exam.id.0), text(body)],
        );
        for m in messages {
            super::notify::push_new_message(self, &mut w, m);
        }
        self.outbox_writes(&mut w, events);
        self.run_batch(w, BatchType::Logged).await
    }

    async fn exam(&self, id: ExamId) -> Result<Option<ExamRow>> {
        match self.row::<(String,)>(GET_EXAM, (id.0,)).await? {
            Some((body,)) => Ok(Some(decode("exams", &body)?)),
            None => Ok(None),
        }
    }

    async fn exams_of_account(&self, account: AccountId) -> Result<Vec<ExamRow>> {
        let mut v: Vec<ExamRow> = self.bodies("exams_by_account", EXAMS_OF_ACCOUNT, (account.0,)).await?;
        // The rows come back newest first already; the sort pins the order to the embedded
        // store's byte for byte.
        v.sort_by_key(|e| std::cmp::Reverse(e.id));
        Ok(v)
    }
}
