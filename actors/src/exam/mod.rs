//! The exam actor (REC-4): one per exam, its only writer. Staff book an exam (待检查) and move it
//! along; the lab system does the same through its signed webhook (the gateway checks the
//! signature, then comes here). Every change goes through `Exam::apply` (forward only; a result
//! only on a completed exam) and is written in one durable write with what it causes: the
//! messages of a finished exam (检查报告已出, and 检查结果异常提醒 flagged as an alert when
//! abnormal) and the live events `exam` (every change) and `exam_alert` (abnormal result), which
//! are announced once the write is durable. The result is sealed with the patient's data key
//! before it reaches the store (`hospital_store::ExamRow`, REC-5), and left out of the events.
//! One actor per exam serialises changes to it, so two deliveries of the lab system never
//! interleave.
//!
//! Here: `msg` (messages, `ExamFailure`), `state` (the exam and its write), `actor` (the handler,
//! and the kind), `api` (its `ActorSystem` methods).

mod actor;
mod api;
mod msg;
mod state;

pub use actor::{ExamActor, ExamKind};
pub use msg::{ExamFailure, ExamMsg};
pub use state::{ExamArgs, ExamState};
