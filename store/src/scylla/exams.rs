//! Exams on ScyllaDB: the `exams` and `exams_by_account` tables of `schema.cql`. An exam is
//! written under both keys in one logged batch (two partitions), so once acknowledged both rows
//! are applied eventually even if the coordinator dies half-way.

use async_trait::async_trait;
use hospital_domain::message::Message;
use hospital_domain::{AccountId, ExamId};
use scylla::value::CqlValue;

use super::{encode, text, ScyllaStore, Writes};
use crate::error::Result;
use crate::exams::{ExamRow, ExamStore};
use crate::{Fence, Owned, PendingEvent};

const PUT_EXAM: &str = "INSERT INTO {ks}.exams (exam_id, body) VALUES (?, ?)";
const PUT_EXAM_BY_ACCOUNT: &str = "INSERT INTO {ks}.exams_by_account (account_id, exam_id, body) VALUES (?, ?, ?)";
const GET_EXAM: &str = "SELECT body FROM {ks}.exams WHERE exam_id = ?";
/// Clustering order is newest first (`exam_id DESC`).
const EXAMS_OF_ACCOUNT: &str = "SELECT body FROM {ks}.exams_by_account WHERE account_id = ?";

#[async_trait]
impl ExamStore for ScyllaStore {
    async fn put_exam(
        &self,
        exam: &ExamRow,
        messages: &[Message],
        events: &[PendingEvent],
        fence: Option<&Fence>,
    ) -> Result<()> {
        // Several nodes: checked (with the deadline) before anything is written.
        let fenced = self.start_fenced_as(fence, "exam", Owned::Exam(exam.id))?;
        let body = encode(exam);
        // The exam's row (its truth) leads: under the fence, in a conditional batch of its own.
        let mut own = Writes::default();
        own.push(self, PUT_EXAM, vec![CqlValue::Uuid(exam.id.0), text(body.clone())]);
        let mut w = Writes::default();
        w.push(
            self,
            PUT_EXAM_BY_ACCOUNT,
            vec![CqlValue::Uuid(exam.account_id.0), CqlValue::Uuid(exam.id.0), text(body)],
        );
        for m in messages {
            super::notify::push_new_message(self, &mut w, m);
        }
        self.outbox_writes(&mut w, events);
        self.write_owned(fenced, own, w).await
    }

    async fn exam(&self, id: ExamId) -> Result<Option<ExamRow>> {
        // A claim before the exam's first write leaves a row with no body: none.
        self.owned_body("exams", GET_EXAM, (id.0,)).await
    }

    async fn exams_of_account(&self, account: AccountId) -> Result<Vec<ExamRow>> {
        let mut v: Vec<ExamRow> = self.bodies("exams_by_account", EXAMS_OF_ACCOUNT, (account.0,)).await?;
        // The rows come back newest first already; the sort pins the order to the embedded
        // store's byte for byte.
        v.sort_by_key(|e| std::cmp::Reverse(e.id));
        Ok(v)
    }
}
