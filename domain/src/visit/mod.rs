//! Visits (就诊记录, REC-1..3): one patient seen by one doctor for one appointment, from the call
//! (叫号) to the end of the consultation, and what the doctor writes on it: chief complaint,
//! diagnoses, prescription, exam orders and the medical record (电子病历); plus the patient's
//! notes for the doctor, and the fee items the orders give rise to. Every change goes through a
//! `Visit` method: the state machine (`VisitStatus::transition`) decides what may happen when,
//! and input is validated whole before anything changes.

mod diagnosis;
mod exam_order;
mod fees;
mod prescription;
mod text;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

pub use diagnosis::{Diagnosis, DiagnosisInput, Icd10Code, MAX_DIAGNOSIS_CHARS};
pub use exam_order::{ExamOrder, ExamOrderInput};
pub use fees::{total, unpaid_fee_items, FeeItem, FeeItemKey, FeeKind, PaidFee};
pub use prescription::{
    Frequency, PrescriptionInput, PrescriptionItem, MAX_DAYS, MAX_DOSE_CHARS, MAX_DRUG_CHARS, MAX_QUANTITY,
    MAX_ROUTE_CHARS, MAX_SPEC_CHARS, MAX_UNIT_CHARS,
};

use crate::appointment::{Appointment, AppointmentStatus};
use crate::{AccountId, AppointmentId, DepartmentId, DoctorId, ExamId, OrderId, PatientId, ValidationError};
use text::{optional_text, text, Lines};

pub const MAX_CHIEF_COMPLAINT_CHARS: usize = 500;
/// Longest medical record text, in characters (a long 门诊病历 is a few thousand).
pub const MAX_RECORD_CHARS: usize = 20_000;
pub const MAX_DIAGNOSES: usize = 20;
pub const MAX_PRESCRIPTION_ITEMS: usize = 50;
pub const MAX_EXAM_ORDERS: usize = 30;
pub const MAX_NOTE_CHARS: usize = 1000;
/// Most notes a patient may leave on one visit.
pub const MAX_NOTES: usize = 20;

/// A visit's id. A visit is made for one appointment and an appointment has at most one visit,
/// so the id is the appointment's own UUID: calling a skipped patient again finds the same visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
pub struct VisitId(pub Uuid);

impl VisitId {
    /// A fresh, time-ordered id (for tests and imports; visits use `of_appointment`).
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
    /// The id of the visit of an appointment.
    pub fn of_appointment(appointment: AppointmentId) -> Self {
        Self(appointment.0)
    }
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(s.trim()).map(Self).map_err(|_| ValidationError::new("visit_id", "must be a UUID"))
    }
}

impl std::str::FromStr for VisitId {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, ValidationError> {
        Self::parse(s)
    }
}

impl Default for VisitId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for VisitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a visit is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    /// 已叫号: called to the room, not yet in.
    Called,
    /// 就诊中: with the doctor; the doctor writes.
    InConsultation,
    /// 已完成: the record is closed and the orders are billable.
    Finished,
}

impl VisitStatus {
    pub fn label(self) -> &'static str {
        match self {
            VisitStatus::Called => "已叫号",
            VisitStatus::InConsultation => "就诊中",
            VisitStatus::Finished => "已完成",
        }
    }

    /// The next status: called (again, after a skip) -> called, called -> in consultation ->
    /// finished. Never backwards.
    pub fn transition(self, event: VisitEvent) -> Result<VisitStatus, VisitError> {
        use VisitEvent as E;
        use VisitStatus as S;
        match (self, event) {
            (S::Called, E::Recall) => Ok(S::Called),
            (S::Called, E::Start) => Ok(S::InConsultation),
            (S::InConsultation, E::Finish) => Ok(S::Finished),
            (from, event) => Err(VisitError::InvalidTransition { from, event }),
        }
    }
}

/// What happens to a visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisitEvent {
    /// The patient is called again (after being skipped).
    Recall,
    /// The patient comes in: the consultation starts.
    Start,
    /// The doctor closes the visit.
    Finish,
}

/// Why a change of a visit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VisitError {
    #[error("a visit that is {} cannot take {event:?}", from.label())]
    InvalidTransition { from: VisitStatus, event: VisitEvent },
    #[error("only a visit in consultation can be written to; this one is {}", .0.label())]
    NotWritable(VisitStatus),
    #[error("a visit is made for a checked-in appointment; this one is {0:?}")]
    NotCheckedIn(AppointmentStatus),
    #[error("fee items are billable only once the visit is finished")]
    NotBillable,
    #[error("the visit has no fee item {0}")]
    UnknownFee(FeeItemKey),
    #[error("fee item {key} was already paid by order {order_id}")]
    AlreadyPaid { key: FeeItemKey, order_id: OrderId },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// What the doctor writes, as sent: the whole form each time (the workstation saves the form as
/// a whole), so a line removed by the doctor is gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConsultationInput {
    /// 主诉, e.g. 发热、咳嗽3天.
    #[serde(default)]
    pub chief_complaint: Option<String>,
    #[serde(default)]
    pub diagnoses: Vec<DiagnosisInput>,
    #[serde(default)]
    pub prescription: Vec<PrescriptionInput>,
    #[serde(default)]
    pub exam_orders: Vec<ExamOrderInput>,
    /// The medical record (电子病历): history, examination, assessment and advice; line breaks kept.
    #[serde(default)]
    pub record: Option<String>,
}

/// A note the patient leaves for the doctor (e.g. a symptom since the visit, a drug allergy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PatientNote {
    pub text: String,
    pub at: DateTime<Utc>,
}

impl PatientNote {
    /// Adds a note (1 to `MAX_NOTE_CHARS` characters, line breaks kept) to `notes`: a visit's, or
    /// an appointment's before its visit is made (they become the visit's). At most `MAX_NOTES`.
    pub fn add_to(notes: &mut Vec<PatientNote>, raw: &str, now: DateTime<Utc>) -> Result<(), VisitError> {
        let text = text("note", None, raw, MAX_NOTE_CHARS, Lines::Many)?;
        if notes.len() >= MAX_NOTES {
            return Err(ValidationError::new("note", format!("a visit holds at most {MAX_NOTES} notes")).into());
        }
        notes.push(PatientNote { text, at: now });
        Ok(())
    }
}

/// Who, where and when of a visit pushed by the hospital's own system (`Visit::imported`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedVisit {
    pub id: VisitId,
    /// The appointment made here, or (a visit registered at the counter) the visit's own id.
    pub appointment_id: AppointmentId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub doctor_id: DoctorId,
    pub department_id: DepartmentId,
    pub room: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// One visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Visit {
    pub id: VisitId,
    pub appointment_id: AppointmentId,
    pub account_id: AccountId,
    pub patient_id: PatientId,
    pub patient_name: String,
    pub doctor_id: DoctorId,
    pub department_id: DepartmentId,
    /// The consulting room (诊室) the patient was called to.
    pub room: String,
    pub status: VisitStatus,
    pub called_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub chief_complaint: Option<String>,
    /// The first is the main diagnosis.
    pub diagnoses: Vec<Diagnosis>,
    pub prescription: Vec<PrescriptionItem>,
    pub exam_orders: Vec<ExamOrder>,
    pub record: Option<String>,
    pub notes: Vec<PatientNote>,
    /// Which fee items were paid, and by which order.
    pub paid: Vec<PaidFee>,
    pub updated_at: DateTime<Utc>,
}

impl Visit {
    /// The visit of a checked-in appointment whose patient was just called to `room`.
    pub fn called(appointment: &Appointment, room: &str, now: DateTime<Utc>) -> Result<Self, VisitError> {
        if appointment.status != AppointmentStatus::CheckedIn {
            return Err(VisitError::NotCheckedIn(appointment.status));
        }
        let room = text("room", None, room, 32, Lines::One)?;
        Ok(Self {
            id: VisitId::of_appointment(appointment.id),
            appointment_id: appointment.id,
            account_id: appointment.account_id,
            patient_id: appointment.patient_id,
            patient_name: appointment.patient_name.clone(),
            doctor_id: appointment.doctor_id,
            department_id: appointment.department_id,
            room,
            status: VisitStatus::Called,
            called_at: now,
            started_at: None,
            finished_at: None,
            chief_complaint: None,
            diagnoses: Vec::new(),
            prescription: Vec::new(),
            exam_orders: Vec::new(),
            record: None,
            notes: Vec::new(),
            paid: Vec::new(),
            updated_at: now,
        })
    }

    /// A visit recorded in the hospital's own system (HIS) and pushed here whole: started at
    /// `h.started_at` with what the doctor wrote, finished at `h.finished_at` if given. The same
    /// rules as a visit made here (the form validated whole, finishing needs a chief complaint
    /// and a diagnosis).
    pub fn imported(h: ImportedVisit, input: &ConsultationInput) -> Result<Self, VisitError> {
        let room = text("room", None, &h.room, 32, Lines::One)?;
        let mut v = Self {
            id: h.id,
            appointment_id: h.appointment_id,
            account_id: h.account_id,
            patient_id: h.patient_id,
            patient_name: h.patient_name,
            doctor_id: h.doctor_id,
            department_id: h.department_id,
            room,
            status: VisitStatus::Called,
            called_at: h.started_at,
            started_at: None,
            finished_at: None,
            chief_complaint: None,
            diagnoses: Vec::new(),
            prescription: Vec::new(),
            exam_orders: Vec::new(),
            record: None,
            notes: Vec::new(),
            paid: Vec::new(),
            updated_at: h.started_at,
        };
        v.apply(VisitEvent::Start, h.started_at)?;
        v.write(input, h.started_at)?;
        if let Some(at) = h.finished_at {
            if at < h.started_at {
                return Err(ValidationError::new("finished_at", "must not be before started_at").into());
            }
            v.apply(VisitEvent::Finish, at)?;
        }
        Ok(v)
    }

    /// Applies an event through the state machine, stamping its time. Finishing needs a chief
    /// complaint and at least one diagnosis (the least a 门诊病历 holds). Nothing changes on error.
    pub fn apply(&mut self, event: VisitEvent, now: DateTime<Utc>) -> Result<(), VisitError> {
        let next = self.status.transition(event)?;
        if event == VisitEvent::Finish {
            if self.chief_complaint.is_none() {
                return Err(ValidationError::new("chief_complaint", "is needed to finish a visit").into());
            }
            if self.diagnoses.is_empty() {
                return Err(ValidationError::new("diagnoses", "at least one is needed to finish a visit").into());
            }
        }
        self.status = next;
        self.updated_at = now;
        match event {
            VisitEvent::Recall => self.called_at = now,
            VisitEvent::Start => self.started_at = Some(now),
            VisitEvent::Finish => self.finished_at = Some(now),
        }
        Ok(())
    }

    /// Replaces what the doctor wrote with `input`, validated whole first: on any error nothing
    /// changes. Only while in consultation. Lines are numbered from 1 in the order sent.
    pub fn write(&mut self, input: &ConsultationInput, now: DateTime<Utc>) -> Result<(), VisitError> {
        if self.status != VisitStatus::InConsultation {
            return Err(VisitError::NotWritable(self.status));
        }
        let chief_complaint = optional_text(
            "chief_complaint",
            None,
            input.chief_complaint.as_deref(),
            MAX_CHIEF_COMPLAINT_CHARS,
            Lines::One,
        )?;
        let record = optional_text("record", None, input.record.as_deref(), MAX_RECORD_CHARS, Lines::Many)?;
        at_most("diagnoses", input.diagnoses.len(), MAX_DIAGNOSES)?;
        at_most("prescription", input.prescription.len(), MAX_PRESCRIPTION_ITEMS)?;
        at_most("exam_orders", input.exam_orders.len(), MAX_EXAM_ORDERS)?;
        let diagnoses =
            input.diagnoses.iter().enumerate().map(|(i, d)| Diagnosis::parse(d, i + 1)).collect::<Result<_, _>>()?;
        let prescription = input
            .prescription
            .iter()
            .zip(1u32..)
            .map(|(p, no)| PrescriptionItem::parse(p, no))
            .collect::<Result<_, _>>()?;
        let mut exam_orders: Vec<ExamOrder> =
            input.exam_orders.iter().zip(1u32..).map(|(e, no)| ExamOrder::parse(e, no)).collect::<Result<_, _>>()?;
        // An order re-sent unchanged keeps the exam already booked for it.
        for order in &mut exam_orders {
            order.exam_id = self
                .exam_orders
                .iter()
                .find(|o| o.no == order.no && o.name == order.name && o.kind == order.kind)
                .and_then(|o| o.exam_id);
        }
        self.chief_complaint = chief_complaint;
        self.diagnoses = diagnoses;
        self.prescription = prescription;
        self.exam_orders = exam_orders;
        self.record = record;
        self.updated_at = now;
        Ok(())
    }

    /// Adds a patient's note for the doctor; allowed at any stage, up to `MAX_NOTES`.
    pub fn add_note(&mut self, raw: &str, now: DateTime<Utc>) -> Result<&PatientNote, VisitError> {
        PatientNote::add_to(&mut self.notes, raw, now)?;
        self.updated_at = now;
        Ok(self.notes.last().expect("just pushed"))
    }

    /// Replaces the medical record text as the hospital's own system (HIS) holds it: at any stage
    /// (the HIS may send the record after the visit is closed). Nothing changes on error.
    pub fn amend_record(&mut self, raw: &str, now: DateTime<Utc>) -> Result<(), VisitError> {
        let record = text("record", None, raw, MAX_RECORD_CHARS, Lines::Many)?;
        if self.record.as_deref() != Some(record.as_str()) {
            self.record = Some(record);
            self.updated_at = now;
        }
        Ok(())
    }

    /// Records the exam booked for exam order `no`.
    pub fn link_exam(&mut self, no: u32, exam_id: ExamId) -> Result<(), VisitError> {
        let unknown = VisitError::UnknownFee(FeeItemKey { visit_id: self.id, kind: FeeKind::Exam, no });
        let order = self.exam_orders.iter_mut().find(|o| o.no == no).ok_or(unknown)?;
        order.exam_id = Some(exam_id);
        Ok(())
    }

    /// The diagnoses in one line, for visit lists (REC-1): 肺炎；高血压.
    pub fn diagnosis_summary(&self) -> String {
        self.diagnoses.iter().map(|d| d.text.as_str()).collect::<Vec<_>>().join("；")
    }

    /// Every fee item of the visit, paid or not: none before it is finished.
    pub fn fee_items(&self) -> Vec<FeeItem> {
        let Some(billed_at) = self.finished_at.filter(|_| self.status == VisitStatus::Finished) else {
            return Vec::new();
        };
        let key = |kind, no| FeeItemKey { visit_id: self.id, kind, no };
        let paid_by = |k: &FeeItemKey| self.paid.iter().find(|p| p.key == *k).map(|p| p.order_id);
        let drugs = self.prescription.iter().map(|p| {
            let key = key(FeeKind::Drug, p.no);
            FeeItem {
                key,
                account_id: self.account_id,
                patient_id: self.patient_id,
                kind: FeeKind::Drug,
                name: p.drug.clone(),
                quantity: p.quantity,
                unit: p.unit.clone(),
                unit_price: p.unit_price,
                amount: p.amount,
                billed_at,
                paid_by: paid_by(&key),
            }
        });
        let exams = self.exam_orders.iter().map(|e| {
            let key = key(FeeKind::Exam, e.no);
            FeeItem {
                key,
                account_id: self.account_id,
                patient_id: self.patient_id,
                kind: FeeKind::Exam,
                name: e.name.clone(),
                quantity: 1,
                unit: String::new(),
                unit_price: e.price,
                amount: e.price,
                billed_at,
                paid_by: paid_by(&key),
            }
        });
        drugs.chain(exams).collect()
    }

    /// The fee items still to pay.
    pub fn unpaid_fee_items(&self) -> Vec<FeeItem> {
        self.fee_items().into_iter().filter(|f| f.paid_by.is_none()).collect()
    }

    /// Marks fee items paid by `order_id`. All or nothing: an unknown key, or one paid by another
    /// order, refuses the lot. Paying again with the same order (a retried callback) is a no-op.
    pub fn mark_paid(&mut self, keys: &[FeeItemKey], order_id: OrderId, now: DateTime<Utc>) -> Result<(), VisitError> {
        if self.status != VisitStatus::Finished {
            return Err(VisitError::NotBillable);
        }
        let items = self.fee_items();
        for key in keys {
            let item = items.iter().find(|f| f.key == *key).ok_or(VisitError::UnknownFee(*key))?;
            if let Some(by) = item.paid_by.filter(|by| *by != order_id) {
                return Err(VisitError::AlreadyPaid { key: *key, order_id: by });
            }
        }
        for key in keys {
            if !self.paid.iter().any(|p| p.key == *key) {
                self.paid.push(PaidFee { key: *key, order_id, paid_at: now });
                self.updated_at = now;
            }
        }
        Ok(())
    }

    /// The rules every stored visit satisfies.
    pub fn check_invariants(&self) -> Result<(), String> {
        let started = self.status != VisitStatus::Called;
        if started != self.started_at.is_some() {
            return Err("started_at is set exactly when the consultation has started".into());
        }
        if (self.status == VisitStatus::Finished) != self.finished_at.is_some() {
            return Err("finished_at is set exactly when the visit is finished".into());
        }
        if self.status == VisitStatus::Finished && (self.diagnoses.is_empty() || self.chief_complaint.is_none()) {
            return Err("a finished visit has a chief complaint and a diagnosis".into());
        }
        let numbered = |nos: &mut dyn Iterator<Item = u32>| nos.zip(1u32..).all(|(a, b)| a == b);
        if !numbered(&mut self.prescription.iter().map(|p| p.no))
            || !numbered(&mut self.exam_orders.iter().map(|e| e.no))
        {
            return Err("lines are numbered 1, 2, ... in order".into());
        }
        if !self.paid.is_empty() && self.status != VisitStatus::Finished {
            return Err("only a finished visit has paid fees".into());
        }
        let items = self.fee_items();
        if let Some(p) = self.paid.iter().find(|p| !items.iter().any(|f| f.key == p.key)) {
            return Err(format!("paid fee {} is not an item of the visit", p.key));
        }
        Ok(())
    }
}

/// Refuses a list longer than `max`.
fn at_most(field: &'static str, len: usize, max: usize) -> Result<(), ValidationError> {
    if len > max {
        return Err(ValidationError::new(field, format!("must have at most {max} items")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
