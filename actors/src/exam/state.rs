//! One exam in memory (`ExamState`) and its changes, written with their messages and events. The
//! result is sealed with the patient's data key on its way to the store (`ExamRow`, REC-5).

use chrono::Utc;
use hospital_domain::exam::{Exam, ExamChange, ExamStatus};
use hospital_domain::live::{ExamAlert, PersonalEvent};
use hospital_domain::ExamId;
use hospital_store::{ExamRow, PendingEvent};
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;
use crate::ownership::Held;
use ractor::ActorRef;

pub struct ExamArgs {
    pub id: ExamId,
    pub ctx: Arc<Context>,
}

pub struct ExamState {
    pub(super) id: ExamId,
    pub(super) myself: ActorRef<ExamMsg>,
    pub(super) exam: Option<Exam>,
    pub(super) ctx: Arc<Context>,
    pub(super) idle: IdleClock,
    /// The lease this actor runs under (several nodes), whose fence every write carries.
    pub(super) held: Held,
}

/// The per-patient data keys, or why there are none (a result cannot be written without them).
fn keys(ctx: &Context) -> Result<&hospital_store::PersonCipher, ExamFailure> {
    ctx.records.as_ref().ok_or_else(|| {
        ExamFailure::Unavailable(crate::ActorError::Unavailable {
            kind: "exam",
            id: String::new(),
            reason: "no key vault configured".into(),
        })
    })
}

/// Loads and opens a stored exam (its result with the patient's key).
pub(super) async fn load(ctx: &Context, id: ExamId) -> Result<Option<Exam>, ExamFailure> {
    let Some(row) = ctx.stores.data.exam(id).await? else { return Ok(None) };
    if !row.is_sealed() {
        return Ok(Some(row.open(None)?));
    }
    // A sealed result whose key is gone: the patient was erased, the exam with them.
    let Some(key) = keys(ctx)?.existing_key(row.patient_id).await? else { return Ok(None) };
    Ok(Some(row.open(Some(&key))?))
}

impl ExamState {
    /// Writes `exam` with its messages and events in one write; memory follows only on success.
    async fn save(&mut self, exam: Exam) -> Result<Exam, ExamFailure> {
        let messages = exam.messages();
        let mut events = vec![PendingEvent::new(exam.account_id, PersonalEvent::Exam((&exam).into()))];
        events.extend(messages.iter().map(PendingEvent::message));
        if let Some(alert) = messages.iter().find(|m| m.alert) {
            events.push(PendingEvent::new(exam.account_id, PersonalEvent::ExamAlert(ExamAlert::new(&exam, alert))));
        }
        let key = match exam.status {
            ExamStatus::Completed => Some(keys(&self.ctx)?.key(exam.patient_id).await?),
            _ => None,
        };
        let row = ExamRow::seal(&exam, key.as_ref())?;
        let written = self.ctx.stores.data.put_exam(&row, &messages, &events, self.held.fence().as_ref()).await;
        self.held.after_write(written, &self.myself, "exam", &self.id)?;
        self.ctx.events.durable(events);
        self.exam = Some(exam.clone());
        Ok(exam)
    }

    pub(super) async fn create(&mut self, exam: Exam) -> Result<Exam, ExamFailure> {
        if self.exam.is_some() {
            return Err(ExamFailure::Exists);
        }
        debug_assert_eq!(exam.id, self.id);
        self.save(exam).await
    }

    pub(super) async fn change(&mut self, change: ExamChange) -> Result<Exam, ExamFailure> {
        let current = self.exam.as_ref().ok_or(ExamFailure::NotFound)?;
        if current.already_is(&change) {
            return Ok(current.clone());
        }
        let mut next = current.clone();
        next.apply(change, Utc::now())?;
        self.save(next).await
    }
}
