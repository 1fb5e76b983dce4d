//! Examinations (检查/检验) a patient has been booked for, and their progress (REC-4): 待检查 ->
//! 检查中 -> 已完成, with a result preview and an abnormal flag once finished. Every change of
//! state goes through `Exam::apply` (and so `ExamStatus::transition`): an exam never goes back,
//! and a result exists only on a completed exam.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::message::{Message, MessageKind};
use crate::{AccountId, ExamId, MessageId, PatientId, ValidationError};

/// Title of the message stored when an exam's result is out.
pub const REPORT_READY_TITLE: &str = "检查报告已出";
/// Title of the alert message stored when an exam's result is abnormal.
pub const ABNORMAL_ALERT_TITLE: &str = "检查结果异常提醒";

/// Longest exam name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest result preview, in characters.
pub const MAX_SUMMARY_CHARS: usize = 2000;

/// What sort of examination it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExamKind {
    /// 影像检查 (CT, MRI, X-ray, ultrasound).
    Imaging,
    /// 检验 (blood, urine, ...): may go straight from pending to completed.
    Lab,
}

/// Where an exam is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExamStatus {
    /// 待检查: ordered, not yet done.
    Pending,
    /// 检查中: being done or being read.
    InProgress,
    /// 已完成: the result is out.
    Completed,
}

impl ExamStatus {
    /// The label patients see.
    pub fn label(self) -> &'static str {
        match self {
            ExamStatus::Pending => "待检查",
            ExamStatus::InProgress => "检查中",
            ExamStatus::Completed => "已完成",
        }
    }

    /// The next status, if `self -> to` is allowed for an exam of `kind`: pending -> in progress
    /// -> completed, or pending -> completed for a lab item that skips the middle step. Never
    /// backwards, never to the same status.
    pub fn transition(self, to: ExamStatus, kind: ExamKind) -> Result<ExamStatus, ExamError> {
        use ExamStatus as S;
        match (self, to, kind) {
            (S::Pending, S::InProgress, _)
            | (S::InProgress, S::Completed, _)
            | (S::Pending, S::Completed, ExamKind::Lab) => Ok(to),
            (from, to, kind) => Err(ExamError::InvalidTransition { from, to, kind }),
        }
    }
}

/// Why a change of an exam was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExamError {
    #[error("an exam that is {} cannot become {} ({kind:?})", from.label(), to.label())]
    InvalidTransition { from: ExamStatus, to: ExamStatus, kind: ExamKind },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// One examination of one patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Exam {
    pub id: ExamId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    /// What is examined, e.g. 胸部CT平扫, 血常规.
    pub name: String,
    pub kind: ExamKind,
    pub status: ExamStatus,
    /// The result is outside the normal range (only on a completed exam).
    pub abnormal: bool,
    /// A preview of the result (only on a completed exam).
    pub summary: Option<String>,
    pub ordered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A change of status as staff or the lab system send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamChange {
    pub status: ExamStatus,
    /// Only with `Completed` (false is accepted with any status, and means nothing there).
    pub abnormal: Option<bool>,
    /// Only with `Completed`.
    pub summary: Option<String>,
}

/// A trimmed exam name of 1 to `MAX_NAME_CHARS` characters without control characters.
pub fn parse_exam_name(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(ValidationError::new("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(ValidationError::new("name", "must not contain control characters"));
    }
    Ok(s.to_string())
}

/// A trimmed result preview of 1 to `MAX_SUMMARY_CHARS` characters (line breaks allowed).
pub fn parse_summary(raw: &str) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > MAX_SUMMARY_CHARS {
        return Err(ValidationError::new("summary", format!("must be 1 to {MAX_SUMMARY_CHARS} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ValidationError::new("summary", "must not contain control characters"));
    }
    Ok(s.to_string())
}

impl Exam {
    /// A newly ordered exam (待检查).
    pub fn new(
        account_id: AccountId,
        patient_id: PatientId,
        name: &str,
        kind: ExamKind,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationError> {
        Ok(Self {
            id: ExamId::new(),
            account_id,
            patient_id,
            name: parse_exam_name(name)?,
            kind,
            status: ExamStatus::Pending,
            abnormal: false,
            summary: None,
            ordered_at: now,
            updated_at: now,
            completed_at: None,
        })
    }

    /// Applies a change through the state machine, stamping its time. Nothing changes on error.
    pub fn apply(&mut self, change: ExamChange, now: DateTime<Utc>) -> Result<(), ExamError> {
        let completed = change.status == ExamStatus::Completed;
        if !completed && change.abnormal == Some(true) {
            return Err(ValidationError::new("abnormal", "may only be set when the status is completed").into());
        }
        if !completed && change.summary.is_some() {
            return Err(ValidationError::new("summary", "may only be given when the status is completed").into());
        }
        let summary = change.summary.as_deref().map(parse_summary).transpose()?;
        let next = self.status.transition(change.status, self.kind)?;
        self.status = next;
        self.updated_at = now;
        if completed {
            self.abnormal = change.abnormal.unwrap_or(false);
            self.summary = summary;
            self.completed_at = Some(now);
        }
        Ok(())
    }

    /// The message-centre items of this state: none until completed; then 检查报告已出, and an
    /// alert (检查结果异常提醒) when the result is abnormal. Their ids are derived from the exam,
    /// so writing them again (a retry) never duplicates one.
    pub fn messages(&self) -> Vec<Message> {
        let Some(done) = self.completed_at.filter(|_| self.status == ExamStatus::Completed) else { return Vec::new() };
        let related = Some(self.id.to_string());
        let mut ready = Message::new(
            self.account_id,
            MessageKind::ReportReady,
            REPORT_READY_TITLE,
            format!("您的「{}」检查报告已出，请在“我的检查”中查看结果。", self.name),
            related.clone(),
            done,
        );
        ready.id = self.message_id(0, done);
        let mut out = vec![ready];
        if self.abnormal {
            // The result itself stays out of the message: messages are not encrypted per person
            // (the result is, REC-5), and their text may go out by SMS or WeChat. The patient
            // reads the result in the app, where access is checked.
            let body = format!("您的「{}」检查结果提示异常，请在“我的检查”中查看并尽快就诊或咨询医生。", self.name);
            let mut alert =
                Message::new(self.account_id, MessageKind::ReportReady, ABNORMAL_ALERT_TITLE, body, related, done)
                    .alert();
            // A millisecond later: the alert is the newest, so the message centre shows it first.
            alert.id = self.message_id(1, done + chrono::Duration::milliseconds(1));
            out.push(alert);
        }
        out
    }

    /// A UUIDv7 for the `n`-th message of this exam: the time (so the message centre's id order
    /// is time order) and the exam id's own random bits with `n` folded in (so it is the same
    /// every time, and distinct per exam and per `n`).
    fn message_id(&self, n: u8, at: DateTime<Utc>) -> MessageId {
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&self.id.0.as_bytes()[6..]);
        tail[9] ^= n.wrapping_add(1);
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        MessageId(uuid::Builder::from_unix_timestamp_millis(ms, &tail).into_uuid())
    }

    /// Whether `change` asks for exactly the state the exam is already in (a retried request).
    pub fn already_is(&self, change: &ExamChange) -> bool {
        self.status == change.status
            && self.abnormal == change.abnormal.unwrap_or(false)
            && self.summary.as_deref() == change.summary.as_deref().map(str::trim)
    }

    /// The rules every stored exam satisfies.
    pub fn check_invariants(&self) -> Result<(), String> {
        let completed = self.status == ExamStatus::Completed;
        if !completed && (self.abnormal || self.summary.is_some()) {
            return Err(format!("a {:?} exam carries a result", self.status));
        }
        if completed != self.completed_at.is_some() {
            return Err("completed_at is set exactly when the exam is completed".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_a_completed_exam() {
        let now = Utc::now();
        let mut e = Exam::new(AccountId::new(), PatientId::new(), "胸部CT平扫", ExamKind::Imaging, now).unwrap();
        assert!(e.messages().is_empty());
        e.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, now).unwrap();
        assert!(e.messages().is_empty());
        let summary = Some("右肺上叶见一磨玻璃结节，建议随访".to_string());
        e.apply(ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary }, now).unwrap();
        let m = e.messages();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].title.as_str(), m[0].alert, m[0].kind), (REPORT_READY_TITLE, false, MessageKind::ReportReady));
        assert_eq!((m[1].title.as_str(), m[1].alert), (ABNORMAL_ALERT_TITLE, true));
        assert!(m[1].body.contains("提示异常") && !m[1].body.contains("磨玻璃结节"), "no result in a message");
        assert_eq!(m[0].related, Some(e.id.to_string()));
        assert_eq!(e.messages().iter().map(|m| m.id).collect::<Vec<_>>(), vec![m[0].id, m[1].id], "stable ids");
        assert!(m[1].id > m[0].id, "the alert comes first in the newest-first message centre");
        assert_eq!(m[0].id.0.get_version_num(), 7);
        let other = Exam::new(e.account_id, e.patient_id, "血常规", ExamKind::Lab, now).unwrap();
        assert_ne!(other.message_id(0, now), e.message_id(0, now), "distinct per exam");
    }
    use ExamStatus as S;

    fn exam(kind: ExamKind) -> Exam {
        Exam::new(AccountId::new(), PatientId::new(), " 胸部CT平扫 ", kind, Utc::now()).unwrap()
    }

    fn change(status: ExamStatus) -> ExamChange {
        ExamChange { status, abnormal: None, summary: None }
    }

    #[test]
    fn transitions_go_forward_only() {
        for kind in [ExamKind::Imaging, ExamKind::Lab] {
            assert_eq!(S::Pending.transition(S::InProgress, kind), Ok(S::InProgress));
            assert_eq!(S::InProgress.transition(S::Completed, kind), Ok(S::Completed));
            assert!(S::InProgress.transition(S::Pending, kind).is_err(), "never backwards");
            for to in [S::Pending, S::InProgress, S::Completed] {
                assert!(S::Completed.transition(to, kind).is_err(), "completed is final");
                assert!(to.transition(to, kind).is_err(), "no transition to the same status");
            }
        }
        assert_eq!(S::Pending.transition(S::Completed, ExamKind::Lab), Ok(S::Completed), "a lab item may skip");
        assert!(S::Pending.transition(S::Completed, ExamKind::Imaging).is_err(), "an imaging item may not");
        assert_eq!(S::Completed.label(), "已完成");
    }

    #[test]
    fn a_lifecycle_stamps_times_and_keeps_the_result() {
        let mut e = exam(ExamKind::Imaging);
        assert_eq!(e.name, "胸部CT平扫");
        assert_eq!(e.status, S::Pending);
        e.check_invariants().unwrap();
        let t1 = e.ordered_at + chrono::Duration::minutes(5);
        e.apply(change(S::InProgress), t1).unwrap();
        assert_eq!((e.status, e.updated_at, e.completed_at), (S::InProgress, t1, None));
        e.check_invariants().unwrap();
        let t2 = t1 + chrono::Duration::hours(2);
        let done = ExamChange { status: S::Completed, abnormal: Some(true), summary: Some(" 右肺结节 ".into()) };
        assert!(!e.already_is(&done));
        e.apply(done.clone(), t2).unwrap();
        assert_eq!((e.status, e.abnormal, e.summary.as_deref()), (S::Completed, true, Some("右肺结节")));
        assert_eq!((e.updated_at, e.completed_at), (t2, Some(t2)));
        e.check_invariants().unwrap();
        assert!(e.already_is(&done), "a retry of the same result is recognised");
        let before = e.clone();
        assert!(matches!(e.apply(change(S::InProgress), t2), Err(ExamError::InvalidTransition { .. })));
        assert!(e.apply(done, t2).is_err(), "completed is final even with the same result");
        assert_eq!(e, before, "a refused change changes nothing");
    }

    #[test]
    fn a_result_only_with_completed() {
        let mut e = exam(ExamKind::Lab);
        let before = e.clone();
        let r = e.apply(ExamChange { status: S::InProgress, abnormal: Some(true), summary: None }, Utc::now());
        assert!(matches!(r, Err(ExamError::Invalid(ref v)) if v.field == "abnormal"), "{r:?}");
        let r = e.apply(ExamChange { status: S::InProgress, abnormal: None, summary: Some("x".into()) }, Utc::now());
        assert!(matches!(r, Err(ExamError::Invalid(ref v)) if v.field == "summary"), "{r:?}");
        let r = e.apply(ExamChange { status: S::Completed, abnormal: None, summary: Some("  ".into()) }, Utc::now());
        assert!(matches!(r, Err(ExamError::Invalid(ref v)) if v.field == "summary"), "{r:?}");
        assert_eq!(e, before);
        // abnormal: false is harmless on any status.
        e.apply(ExamChange { status: S::InProgress, abnormal: Some(false), summary: None }, Utc::now()).unwrap();
        // A lab item straight to completed, normal, no preview.
        let mut lab = exam(ExamKind::Lab);
        lab.apply(change(S::Completed), Utc::now()).unwrap();
        assert_eq!((lab.status, lab.abnormal, lab.summary.clone()), (S::Completed, false, None));
        lab.check_invariants().unwrap();
    }

    #[test]
    fn names_and_summaries_are_validated() {
        assert!(Exam::new(AccountId::new(), PatientId::new(), "  ", ExamKind::Lab, Utc::now()).is_err());
        assert!(parse_exam_name(&"检".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(parse_exam_name(&"检".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(parse_exam_name("血常规\u{7}").is_err());
        assert_eq!(parse_summary("第一行\n第二行").unwrap(), "第一行\n第二行");
        assert!(parse_summary(&"a".repeat(MAX_SUMMARY_CHARS + 1)).is_err());
        assert!(parse_summary("a\u{0}").is_err());
    }

    #[test]
    fn serialises_in_snake_case() {
        let e = exam(ExamKind::Imaging);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["status"], "pending");
        assert_eq!(v["kind"], "imaging");
        assert_eq!(serde_json::to_value(S::InProgress).unwrap(), "in_progress");
        let back: Exam = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }
}
