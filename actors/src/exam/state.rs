//! One exam in memory (`ExamState`) and its changes, written with their messages and events.

use chrono::Utc;
use hospital_domain::exam::{Exam, ExamChange};
use hospital_domain::live::{ExamAlert, PersonalEvent};
use hospital_domain::ExamId;
use hospital_store::PendingEvent;
use std::sync::Arc;

use super::msg::*;
use crate::deps::Context;
use crate::idle::IdleClock;

pub struct ExamArgs {
    pub id: ExamId,
    pub ctx: Arc<Context>,
}

pub struct ExamState {
    pub(super) id: ExamId,
    pub(super) exam: Option<Exam>,
    pub(super) ctx: Arc<Context>,
    pub(super) idle: IdleClock,
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
        self.ctx.stores.data.put_exam(&exam, &messages, &events).await?;
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
