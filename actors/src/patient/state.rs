//! One account's patients in memory (`PatientState`) and its operations: adding and removing
//! patients, and booking, rescheduling and waitlists after the real-name rules (BOOK-6).

use chrono::Utc;
use hospital_domain::appointment::Appointment;
use hospital_domain::booking::{BookError, WaitEntry};
use hospital_domain::order::Order;
use hospital_domain::schedule::SlotId;
use hospital_domain::{AccountId, AppointmentId, PatientId, SessionId};
use hospital_store::{Conflict, PatientCaps, PatientRecord, StoreError};
use ractor::{ActorRef, RpcReplyPort};
use std::sync::Arc;

use super::directory::Published;
use super::msg::*;
use super::notice::tell_own_account;
use super::rules::*;
use crate::booking::BookingError;
use crate::deps::Context;
use crate::error::ActorError;
use crate::idle::IdleClock;
use crate::ownership::Held;
use crate::real_name::HeldTurn;
use crate::schedule::{Booker, GateAnswer, ScheduleKind, ScheduleMsg, SessionFacts};
use crate::system::Retry;

/// Start-up arguments: which account, and the shared dependencies.
pub struct PatientArgs {
    pub account: AccountId,
    pub ctx: Arc<Context>,
}

/// The live state of one account.
pub struct PatientState {
    pub(super) account: AccountId,
    pub(super) ctx: Arc<Context>,
    /// The account's patients, oldest first: the store's rows as of the last successful write,
    /// published to bookings on callers' tasks (`directory`).
    pub(super) patients: Published,
    pub(super) idle: IdleClock,
    pub(super) myself: ActorRef<PatientMsg>,
    /// Several nodes: the account's lease (`account:<id>`), whose fence every write of the
    /// account's own rows carries (its row, its patients, its preferences).
    pub(super) held: Held,
}

impl PatientState {
    /// After a write of the account's: a `StaleFence` refusal stops the actor (`Held::after_write`).
    pub(super) fn after_write<T>(&mut self, written: Result<T, StoreError>) -> Result<T, StoreError> {
        self.held.after_write(written, &self.myself, "patient", &self.account)
    }

    pub(super) async fn add(
        &mut self,
        record: PatientRecord,
        caps: PatientCaps,
    ) -> Result<PatientRecord, PatientError> {
        if record.account_id != self.account {
            return Err(PatientError::WrongAccount);
        }
        if self.patients.list().iter().any(|p| p.id == record.id) {
            return Err(PatientError::DuplicatePatient);
        }
        check_account(self.patients.list(), &record.id_card_index, caps.per_account)?;
        // The store checks again atomically, and the person's cap across accounts: it is the
        // truth if another process (or another account's actor) wrote meanwhile.
        let added = self.ctx.stores.data.add_patient(&record, caps, self.held.fence().as_ref()).await;
        let others = match self.after_write(added) {
            Ok(others) => others,
            Err(StoreError::Conflict(Conflict::PatientCap)) => {
                return Err(PatientError::PatientCap { cap: caps.per_account })
            }
            Err(StoreError::Conflict(Conflict::Patient)) => return Err(PatientError::DuplicatePatient),
            Err(StoreError::Conflict(Conflict::PersonCap)) => {
                return Err(PatientError::PersonAccountCap { cap: caps.accounts_per_person })
            }
            Err(e) => return Err(e.into()),
        };
        let mut patients = self.patients.list().to_vec();
        patients.push(record.clone());
        self.patients.set(patients);
        tell_own_account(&self.ctx, self.account, &record, &others).await;
        Ok(record)
    }

    pub(super) fn patient(&self, id: PatientId) -> Result<&PatientRecord, BookingError> {
        find_patient(self.patients.list(), id)
    }

    /// A booking through the account's actor: one with an idempotency key (a retry must find its
    /// first attempt's answer before anything else of the account's runs), or one for an account
    /// whose actor was not running (`ActorSystem::book`).
    pub(super) async fn book(
        &mut self,
        slot: SlotId,
        patient: PatientId,
        key: Option<String>,
    ) -> Result<(Appointment, Order), BookingError> {
        let data = &self.ctx.stores.data;
        if let Some(k) = &key {
            // A retried request: the same answer, from the store (it survives restarts).
            if let Some(a) = data
                .appointments_of_account(self.account)
                .await?
                .into_iter()
                .find(|a| a.idempotency_key.as_deref() == Some(k))
            {
                let o = data.order(a.order_id).await?.ok_or(BookingError::NoSuchAppointment)?;
                return Ok((a, o));
            }
        }
        let p = self.patient(patient)?;
        // The node's gate is read again here, as this message may have waited behind others
        // while the places went (a refusal from it is the actor's, see `schedule::gate`). A retry
        // (`key`) always asks: its first attempt may be the one that took the last place.
        let gate = if key.is_none() { self.ctx.system.gate().answer(slot, Utc::now()) } else { GateAnswer::Unknown };
        book_patient(&self.ctx, p, slot, key, gate).await
    }

    pub(super) async fn reschedule(&mut self, id: AppointmentId, slot: SlotId) -> Result<Appointment, BookingError> {
        let data = &self.ctx.stores.data;
        let current = data
            .appointment(id)
            .await?
            .filter(|a| a.account_id == self.account)
            .ok_or(BookingError::NoSuchAppointment)?;
        let target = data.session(slot.session_id).await?.ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        if target.doctor_id != current.doctor_id {
            return Err(BookingError::OtherDoctor);
        }
        let _turn = crate::real_name::turn(&self.ctx, &current.person).await?;
        crate::real_name::check(&self.ctx, &current.person, target.department_id, target.date, Some(id)).await?;
        let account = self.account;
        schedule_call(&self.ctx, current.doctor_id, |reply| ScheduleMsg::Move { appointment: id, account, slot, reply })
            .await
    }

    pub(super) async fn join_waitlist(
        &mut self,
        session: SessionId,
        patient: PatientId,
    ) -> Result<usize, BookingError> {
        let p = self.patient(patient)?.clone();
        let s = self.ctx.stores.data.session(session).await?.ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        let _turn = crate::real_name::turn(&self.ctx, &p.id_card_index).await?;
        crate::real_name::check(&self.ctx, &p.id_card_index, s.department_id, s.date, None).await?;
        let entry = WaitEntry {
            account_id: self.account,
            patient_id: p.id,
            person: p.id_card_index,
            patient_name: p.name,
            joined_at: Utc::now(),
        };
        schedule_call(&self.ctx, s.doctor_id, |reply| ScheduleMsg::JoinWaitlist {
            session,
            entry: entry.clone(),
            reply,
        })
        .await
    }

    pub(super) async fn remove(&mut self, id: PatientId) -> Result<bool, ActorError> {
        let removed = self.ctx.stores.data.remove_patient(self.account, id, self.held.fence().as_ref()).await;
        let removed = self.after_write(removed)?;
        // Drop it from memory even if the store had none: memory must not hold what the store lacks.
        self.patients.set(self.patients.list().iter().filter(|p| p.id != id).cloned().collect());
        Ok(removed)
    }
}

/// The account's patient `id`, from its list.
pub(super) fn find_patient(patients: &[PatientRecord], id: PatientId) -> Result<&PatientRecord, BookingError> {
    patients.iter().find(|p| p.id == id).ok_or(BookingError::NoSuchPatient)
}

/// Asks the doctor's schedule actor (a message it never received is sent to its successor).
async fn schedule_call<T: Send + 'static>(
    ctx: &Context,
    doctor: hospital_domain::DoctorId,
    build: impl Fn(RpcReplyPort<Result<T, BookingError>>) -> ScheduleMsg,
) -> Result<T, BookingError> {
    ctx.system.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, build).await?
}

/// Books `slot` for the account's patient `p`, past the account's own checks, given what the
/// node's gate said of the slot just before (`Unknown` for a retry): the person's turn and rules
/// (BOOK-6), then the doctor's actor. On the account's actor or, for a booking without an
/// idempotency key, on the caller's task (`ActorSystem::book`).
pub(super) async fn book_patient(
    ctx: &Context,
    p: &PatientRecord,
    slot: SlotId,
    key: Option<String>,
    gate: GateAnswer,
) -> Result<(Appointment, Order), BookingError> {
    let data = &ctx.stores.data;
    // The cheap answer first: in a release storm almost every attempt is refused as sold out
    // (or not yet released), and only a slot with a place left is worth reading the person's
    // history for the real-name rules. If the gate saw a place left it also knows the session's
    // facts, so neither the store nor the doctor's actor is asked before the rules.
    let facts = match gate {
        GateAnswer::Refuse(refusal) => return Err(crate::schedule::gate_refused(refusal)),
        GateAnswer::PlaceLeft(facts) => facts,
        GateAnswer::Unknown => {
            let session = data.session(slot.session_id).await?.ok_or(BookingError::Book(BookError::NoSuchSlot))?;
            // The doctor's actor says from memory whether a place is left.
            schedule_call(ctx, session.doctor_id, |reply| ScheduleMsg::Probe { slot, reply }).await?;
            SessionFacts { doctor: session.doctor_id, department: session.department_id, date: session.date }
        }
    };
    // The person's turn, from the rules' read to the hold's durable answer (`real_name`): it
    // travels with the hold, and the doctor's actor keeps it until the hold is durable, even if
    // this caller stops waiting.
    let turn = crate::real_name::turn(ctx, &p.id_card_index).await?;
    crate::real_name::check(ctx, &p.id_card_index, facts.department, facts.date, None).await?;
    let booker = Booker {
        account_id: p.account_id,
        patient_id: p.id,
        person: p.id_card_index.clone(),
        patient_name: p.name.clone(),
        idempotency_key: key,
        turn: HeldTurn::new(turn),
    };
    schedule_call(ctx, facts.doctor, |reply| ScheduleMsg::Hold { slot, booker: booker.clone(), reply }).await
}
