//! Exams on the embedded engine: each exam under two keys (by id, and by account + id) in one
//! transaction, as in schema.cql.

use async_trait::async_trait;
use hospital_domain::message::Message;
use hospital_domain::{AccountId, ExamId};

use super::engine::Reader;
use super::keys::Key;
use super::tables::{EXAMS, EXAMS_BY_ACCOUNT};
use super::EmbeddedStore;
use crate::error::Result;
use crate::exams::{ExamRow, ExamStore};
use crate::PendingEvent;

#[async_trait]
impl ExamStore for EmbeddedStore {
    async fn put_exam(
        &self,
        exam: &ExamRow,
        messages: &[Message],
        events: &[PendingEvent],
        fence: Option<&crate::Fence>,
    ) -> Result<()> {
        let (e, messages, events, fence) = (exam.clone(), messages.to_vec(), events.to_vec(), fence.cloned());
        self.engine
            .write(move |ctx| {
                super::booking::check_fence(ctx, fence.as_ref())?;
                ctx.put(EXAMS, &Key::new().uuid(&e.id.0), &e);
                ctx.put(EXAMS_BY_ACCOUNT, &Key::new().uuid(&e.account_id.0).uuid(&e.id.0), &e);
                for m in &messages {
                    super::notify::put_new_message(ctx, m)?;
                }
                super::outbox::put_events(ctx, &events);
                Ok(())
            })
            .await
    }

    async fn exam(&self, id: ExamId) -> Result<Option<ExamRow>> {
        self.engine.read(|r| r.get(EXAMS, &Key::new().uuid(&id.0)))
    }

    async fn exams_of_account(&self, account: AccountId) -> Result<Vec<ExamRow>> {
        let mut all: Vec<ExamRow> = self.engine.read(|r| r.scan(EXAMS_BY_ACCOUNT, &Key::new().uuid(&account.0)))?;
        // Exam ids are v7: key order is order time; newest first.
        all.reverse();
        Ok(all)
    }
}
