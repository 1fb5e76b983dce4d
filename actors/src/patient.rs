//! The patient session actor: one per account, serialising that account's operations on its
//! patients (就诊人) and its bookings, so rules like "at most N patients" and the real-name
//! rules (BOOK-6) hold under concurrent requests from several devices. (The account's live
//! sockets belong to the real-time gateway's hub, not to this actor: an open socket does not
//! keep it in memory.)

use chrono::{Datelike, Duration as Days, Utc};
use hospital_domain::account::Relation;
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::booking::{BookError, WaitEntry};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::order::Order;
use hospital_domain::schedule::SlotId;
use hospital_domain::{AccountId, AppointmentId, PatientId, SessionId};
use hospital_store::{Conflict, PatientCaps, PatientRecord, PersonHolder, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use crate::booking::BookingError;
use crate::idle::IdleClock;
use crate::schedule::Booker;
use crate::system::Retry;
use crate::{ActorError, ActorKind, Context, ScheduleKind, ScheduleMsg};

/// Why a patient was not added.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// The account already holds the most patients it may.
    #[error("an account may hold at most {cap} patients")]
    PatientCap { cap: usize },
    /// The person (same ID number) is already a patient of the most accounts one person may be.
    #[error("this person is already a patient of {cap} other accounts, the most allowed")]
    PersonAccountCap { cap: usize },
    /// The same person (same ID number) is already a patient of the account.
    #[error("this person is already a patient of the account")]
    DuplicatePatient,
    /// A patient record was sent to another account's actor: a bug in the caller.
    #[error("the patient record belongs to another account")]
    WrongAccount,
    /// The actor or the store could not do it now; nothing was changed.
    #[error(transparent)]
    Unavailable(#[from] ActorError),
}

impl From<StoreError> for PatientError {
    fn from(e: StoreError) -> Self {
        PatientError::Unavailable(e.into())
    }
}

/// Messages of a patient session actor.
#[derive(Debug)]
pub enum PatientMsg {
    /// The account's patients, oldest first, from memory.
    ListPatients { reply: RpcReplyPort<Vec<PatientRecord>> },
    /// Adds a patient if the account has fewer than `caps.per_account`, the same person (same
    /// ID-number index) or id is not already there, and fewer than `caps.accounts_per_person`
    /// other accounts hold the person. Written through the store first; memory changes only once
    /// the write succeeded. Then the account holding the person's `self` record, if another, is
    /// told in its message centre. Refusals are `PatientCap`, `DuplicatePatient`,
    /// `PersonAccountCap`, `WrongAccount`. The caller has checked the name against the ID number.
    AddPatient { record: PatientRecord, caps: PatientCaps, reply: RpcReplyPort<Result<PatientRecord, PatientError>> },
    /// Removes a patient; `Ok(false)` if the account had none with this id.
    RemovePatient { id: PatientId, reply: RpcReplyPort<Result<bool, ActorError>> },
    /// Books `slot` for one of the account's patients (BOOK-3), after the real-name rules
    /// (BOOK-6). Serialised per account: two devices booking at once are checked one after the
    /// other. A retry with the same idempotency key gets the same appointment back.
    Book {
        slot: SlotId,
        patient: PatientId,
        idempotency_key: Option<String>,
        reply: RpcReplyPort<Result<(Appointment, Order), BookingError>>,
    },
    /// Moves one of the account's appointments to another slot of the same doctor (BOOK-5).
    Reschedule { appointment: AppointmentId, slot: SlotId, reply: RpcReplyPort<Result<Appointment, BookingError>> },
    /// Puts one of the account's patients on a full session's waitlist (BOOK-7).
    JoinWaitlist { session: SessionId, patient: PatientId, reply: RpcReplyPort<Result<usize, BookingError>> },
    /// Panics on purpose, so tests and operators can exercise supervision. Only with the
    /// `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    InjectFault,
    /// The idle clock's periodic tick; internal.
    #[doc(hidden)]
    Tick,
}

/// Start-up arguments: which account, and the shared dependencies.
pub struct PatientArgs {
    pub account: AccountId,
    pub ctx: Arc<Context>,
}

/// The live state of one account.
pub struct PatientState {
    account: AccountId,
    ctx: Arc<Context>,
    /// The account's patients, oldest first: the store's rows as of the last successful write.
    patients: Vec<PatientRecord>,
    idle: IdleClock,
}

/// The account's own rules for adding `person` (an ID-number index), given the patients it
/// holds: the rules `AddPatient` enforces from memory (the store checks them again atomically).
pub fn check_account(patients: &[PatientRecord], person: &str, cap: usize) -> Result<(), PatientError> {
    if patients.iter().any(|p| p.id_card_index == person) {
        return Err(PatientError::DuplicatePatient);
    }
    if patients.len() >= cap {
        return Err(PatientError::PatientCap { cap });
    }
    Ok(())
}

/// The accounts-per-person cap for `account` adding a person held by `holders`.
pub fn check_person(holders: &[PersonHolder], account: AccountId, cap: usize) -> Result<(), PatientError> {
    if holders.iter().filter(|h| h.account_id != account).count() >= cap {
        return Err(PatientError::PersonAccountCap { cap });
    }
    Ok(())
}

fn relation_zh(r: Relation) -> &'static str {
    match r {
        Relation::Myself => "本人",
        Relation::Spouse => "配偶",
        Relation::Child => "子女",
        Relation::Parent => "父母",
        Relation::Other => "其他",
    }
}

/// How often the notice to the person's own account is tried before giving up (logged).
const NOTICE_ATTEMPTS: u32 = 3;

impl PatientState {
    async fn add(&mut self, record: PatientRecord, caps: PatientCaps) -> Result<PatientRecord, PatientError> {
        if record.account_id != self.account {
            return Err(PatientError::WrongAccount);
        }
        if self.patients.iter().any(|p| p.id == record.id) {
            return Err(PatientError::DuplicatePatient);
        }
        check_account(&self.patients, &record.id_card_index, caps.per_account)?;
        // The store checks again atomically, and the person's cap across accounts: it is the
        // truth if another process (or another account's actor) wrote meanwhile.
        let others = match self.ctx.stores.data.add_patient(&record, caps).await {
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
        self.patients.push(record.clone());
        self.tell_own_account(&record, &others).await;
        Ok(record)
    }

    /// Tells the account holding the person's `self` record (if it is another account) that
    /// this account added them: someone who knows a person's name and ID number could otherwise
    /// use up their bookings unseen. The add stands whatever happens here; a failure is logged.
    async fn tell_own_account(&self, record: &PatientRecord, others: &[PersonHolder]) {
        let Some(own) = others.iter().find(|h| h.relation == Relation::Myself) else { return };
        let message = Message::new(
            own.account_id,
            MessageKind::SystemNotice,
            "您已被其他账户添加为就诊人",
            format!(
                "另一个账户已将{}（身份证号 {}）添加为就诊人，关系：{}。该账户可以为您预约挂号。如非您本人或家人所为，请联系医院。",
                record.name,
                record.id_card_masked,
                relation_zh(record.relation)
            ),
            Some(own.patient_id.to_string()),
            Utc::now(),
        )
        .alert();
        // Written with its live event, so the other account's open app sees it at once.
        let events = vec![hospital_store::PendingEvent::message(&message)];
        for attempt in 1..=NOTICE_ATTEMPTS {
            match self.ctx.stores.data.put_message(&message, &events).await {
                Ok(()) => {
                    self.ctx.events.durable(events);
                    return;
                }
                Err(e) if attempt == NOTICE_ATTEMPTS => {
                    tracing::error!(error = %e, account = %own.account_id, adder = %self.account,
                        "could not tell a person's own account that another account added them");
                }
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "writing the patient-added notice failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
            }
        }
    }

    fn patient(&self, id: PatientId) -> Result<&PatientRecord, BookingError> {
        self.patients.iter().find(|p| p.id == id).ok_or(BookingError::NoSuchPatient)
    }

    /// The real-name rules (BOOK-6) for `person` booking in `department` on `date`, read from
    /// the person's appointments across all accounts. `moving` is an appointment being moved,
    /// which does not count against its own move.
    async fn check_rules(
        &self,
        person: &str,
        department: hospital_domain::DepartmentId,
        date: chrono::NaiveDate,
        moving: Option<AppointmentId>,
    ) -> Result<(), BookingError> {
        let cfg = &self.ctx.config;
        let window = Days::from_std(cfg.no_show_window).unwrap_or(Days::days(90));
        let from = (date - window).min(date - Days::days(7));
        let to = date + Days::days(7);
        let history = self.ctx.stores.data.appointments_of_person(person, from, to).await?;
        let live = |a: &&Appointment| {
            Some(a.id) != moving
                && matches!(
                    a.status,
                    AppointmentStatus::Held | AppointmentStatus::Confirmed | AppointmentStatus::CheckedIn
                )
        };
        if history.iter().filter(live).any(|a| a.department_id == department && a.date == date) {
            return Err(BookingError::Rule {
                reason: "one_per_department_day",
                message: "this person already has a booking in this department on this day".into(),
            });
        }
        let week = date.iso_week();
        let this_week = history
            .iter()
            .filter(|a| Some(a.id) != moving && a.date.iso_week() == week)
            .filter(|a| {
                matches!(
                    a.status,
                    AppointmentStatus::Held
                        | AppointmentStatus::Confirmed
                        | AppointmentStatus::CheckedIn
                        | AppointmentStatus::Seen
                )
            })
            .count();
        if this_week >= cfg.weekly_cap {
            return Err(BookingError::Rule {
                reason: "weekly_cap",
                message: format!("at most {} bookings per person per week", cfg.weekly_cap),
            });
        }
        let today = cfg.zone.local_date(Utc::now());
        let missed: Vec<_> = history
            .iter()
            .filter(|a| a.status == AppointmentStatus::Missed && a.date > today - window)
            .map(|a| a.date)
            .collect();
        if missed.len() >= cfg.no_show_limit {
            let last = missed.iter().max().copied().unwrap_or(today);
            let until = last + Days::from_std(cfg.no_show_ban).unwrap_or(Days::days(30));
            if today < until {
                return Err(BookingError::Rule {
                    reason: "no_show_ban",
                    message: format!("{} missed appointments: booking is suspended until {until}", missed.len()),
                });
            }
        }
        Ok(())
    }

    /// Asks the doctor's schedule actor (a message it never received is sent to its successor).
    async fn schedule_call<T: Send + 'static>(
        &self,
        doctor: hospital_domain::DoctorId,
        build: impl Fn(RpcReplyPort<Result<T, BookingError>>) -> ScheduleMsg,
    ) -> Result<T, BookingError> {
        self.ctx.system.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, build).await?
    }

    async fn book(
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
        let p = self.patient(patient)?.clone();
        let session = data.session(slot.session_id).await?.ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        // The cheap answer first: in a release storm almost every attempt is refused as sold out
        // (or not yet released), and the doctor's actor says so from memory; only a slot with a
        // place left is worth reading the person's history for the real-name rules.
        self.schedule_call(session.doctor_id, |reply| ScheduleMsg::Probe { slot, reply }).await?;
        self.check_rules(&p.id_card_index, session.department_id, session.date, None).await?;
        let booker = Booker {
            account_id: self.account,
            patient_id: p.id,
            person: p.id_card_index.clone(),
            patient_name: p.name.clone(),
            idempotency_key: key,
        };
        self.schedule_call(session.doctor_id, |reply| ScheduleMsg::Hold { slot, booker: booker.clone(), reply }).await
    }

    async fn reschedule(&mut self, id: AppointmentId, slot: SlotId) -> Result<Appointment, BookingError> {
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
        self.check_rules(&current.person, target.department_id, target.date, Some(id)).await?;
        let account = self.account;
        self.schedule_call(current.doctor_id, |reply| ScheduleMsg::Move { appointment: id, account, slot, reply }).await
    }

    async fn join_waitlist(&mut self, session: SessionId, patient: PatientId) -> Result<usize, BookingError> {
        let p = self.patient(patient)?.clone();
        let s = self.ctx.stores.data.session(session).await?.ok_or(BookingError::Book(BookError::NoSuchSlot))?;
        self.check_rules(&p.id_card_index, s.department_id, s.date, None).await?;
        let entry = WaitEntry {
            account_id: self.account,
            patient_id: p.id,
            person: p.id_card_index,
            patient_name: p.name,
            joined_at: Utc::now(),
        };
        self.schedule_call(s.doctor_id, |reply| ScheduleMsg::JoinWaitlist { session, entry: entry.clone(), reply })
            .await
    }

    async fn remove(&mut self, id: PatientId) -> Result<bool, ActorError> {
        let removed = self.ctx.stores.data.remove_patient(self.account, id).await?;
        // Drop it from memory even if the store had none: memory must not hold what the store lacks.
        self.patients.retain(|p| p.id != id);
        Ok(removed)
    }
}

/// The patient session actor (stateless handler; the state is `PatientState`).
pub struct PatientActor;

impl Actor for PatientActor {
    type Msg = PatientMsg;
    type State = PatientState;
    type Arguments = PatientArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: PatientArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let patients = args.ctx.stores.data.patients_of(args.account).await?;
        tracing::debug!(account = %args.account, patients = patients.len(), "patient actor loaded");
        Ok(PatientState {
            account: args.account,
            idle: IdleClock::new(args.ctx.config.idle_timeout),
            ctx: args.ctx,
            patients,
        })
    }

    async fn post_start(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.start(&myself, || PatientMsg::Tick);
        Ok(())
    }

    async fn post_stop(&self, _myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        state.idle.stop();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(msg, PatientMsg::Tick) {
            state.idle.touch();
        }
        // Replies are best effort: a caller that timed out has gone, and the write stands.
        match msg {
            PatientMsg::ListPatients { reply } => {
                let _ = reply.send(state.patients.clone());
            }
            PatientMsg::AddPatient { record, caps, reply } => {
                let result = state.add(record, caps).await;
                if let Err(e) = &result {
                    tracing::debug!(account = %state.account, error = %e, "patient not added");
                }
                let _ = reply.send(result);
            }
            PatientMsg::RemovePatient { id, reply } => {
                let _ = reply.send(state.remove(id).await);
            }
            PatientMsg::Book { slot, patient, idempotency_key, reply } => {
                let _ = reply.send(state.book(slot, patient, idempotency_key).await);
            }
            PatientMsg::Reschedule { appointment, slot, reply } => {
                let _ = reply.send(state.reschedule(appointment, slot).await);
            }
            PatientMsg::JoinWaitlist { session, patient, reply } => {
                let _ = reply.send(state.join_waitlist(session, patient).await);
            }
            #[cfg(feature = "fault-injection")]
            PatientMsg::InjectFault => {
                panic!("fault injected into patient actor {}", state.account);
            }
            PatientMsg::Tick => {
                state.idle.drain_if_idle(&myself, false, &state.account);
            }
        }
        Ok(())
    }
}

/// Patient sessions as an actor kind: keyed by `AccountId`, supervised by `patients`.
pub struct PatientKind;

impl ActorKind for PatientKind {
    const KIND: &'static str = "patient";
    const SUPERVISOR: &'static str = "patients";
    type Id = AccountId;
    type Actor = PatientActor;

    fn actor() -> PatientActor {
        PatientActor
    }
    fn args(account: AccountId, ctx: &Arc<Context>) -> PatientArgs {
        PatientArgs { account, ctx: ctx.clone() }
    }
}
