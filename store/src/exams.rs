//! Examinations and their status (REC-4): one row per exam by id, and the account's exams for
//! "my exams". Changes of state are decided by `hospital_domain::exam::Exam::apply`; the store
//! only keeps the latest version.

use async_trait::async_trait;
use hospital_domain::exam::Exam;
use hospital_domain::message::Message;
use hospital_domain::{AccountId, ExamId};

use crate::error::Result;

#[async_trait]
pub trait ExamStore: Send + Sync {
    /// Inserts or replaces an exam under both its keys (by id and by account), with the
    /// message-centre items and live events of the change, in one write.
    async fn put_exam(&self, exam: &Exam, messages: &[Message], events: &[crate::PendingEvent]) -> Result<()>;
    async fn exam(&self, id: ExamId) -> Result<Option<Exam>>;
    /// The account's exams, newest first (by order time: exam ids are UUIDv7).
    async fn exams_of_account(&self, account: AccountId) -> Result<Vec<Exam>>;
}
