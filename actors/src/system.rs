//! `ActorSystem`: the handle the rest of the platform holds. It finds an id's actor (or has the
//! kind supervisor start it) and wraps each message in a small async method with a timeout, so a
//! caller never hangs on an actor and never sees ractor types unless it asks for an `ActorRef`.

use chrono::NaiveDate;
use hospital_domain::appointment::Appointment;
use hospital_domain::order::Order;
use hospital_domain::schedule::{ClinicSession, SlotId};
use hospital_domain::{AccountId, AppointmentId, DoctorId, Fen, OrderId, PatientId, SessionId};
use hospital_integrations::wechatpay::{RefundNotice, RequestPaymentParams, Transaction};
use hospital_store::{PatientCaps, PatientRecord};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, ActorStatus, MessagingErr, RpcReplyPort};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::kind::{ActorKind, ChildMsg};
use crate::payment::{PaymentError, PaymentKind, PaymentMsg};
use crate::supervisor::{self, Ensured, KindMsg, KindStats, RootArgs, RootMsg, RootSupervisor};
use crate::{
    ActorConfig, ActorDeps, ActorError, BookingError, Context, EffectSink, PatientError, PatientKind, PatientMsg,
    ScheduleKind, ScheduleMsg, SessionAvailability, StopReport,
};

/// Tells systems in one process apart in the (process-global) ractor registry.
static NEXT_SYSTEM: AtomicU64 = AtomicU64::new(1);

/// How many times a caller looks an actor up again when it was stopping or restarting. The
/// back-off doubles from 5 ms, so the last try is ~150 ms after the first.
const ATTEMPTS: u32 = 6;

/// Counters of every kind supervisor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemStats {
    pub schedules: KindStats,
    pub patients: KindStats,
}

/// The running actor tree. Cheap to clone; every clone talks to the same actors.
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<Inner>,
}

/// The handle is made before the tree (actors hold it in their `Context`), so it knows the tree
/// by name only: the root and the kind supervisors are looked up in ractor's registry.
struct Inner {
    prefix: String,
    config: ActorConfig,
    shut_down: AtomicBool,
}

impl std::fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorSystem").field("name", &self.inner.prefix).finish_non_exhaustive()
    }
}

/// Whether to send a message again when the actor stopped after receiving it without answering
/// (it panicked on an earlier message, or was killed). Only reads are safe to repeat; a message
/// that was never delivered (the actor was draining) is always safe to send again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    Reads,
    UndeliveredOnly,
}

impl ActorSystem {
    /// Starts the root supervisor and one kind supervisor per actor kind. Actors themselves start
    /// on first use.
    ///
    /// In dependency order: this handle (names only), the effect dispatcher's queue, the
    /// `Context` every actor shares (holding both), then the tree, then the dispatcher.
    pub async fn start(deps: ActorDeps) -> Result<ActorSystem, ActorError> {
        let prefix = format!("hospital-{}", NEXT_SYSTEM.fetch_add(1, Ordering::Relaxed));
        let system = ActorSystem {
            inner: Arc::new(Inner {
                prefix: prefix.clone(),
                config: deps.config.clone(),
                shut_down: AtomicBool::new(false),
            }),
        };
        let (effects_tx, effects_rx) = tokio::sync::mpsc::unbounded_channel();
        let ctx = Arc::new(Context::new(deps, EffectSink::new(effects_tx), system.clone()));
        let args = RootArgs {
            prefix: prefix.clone(),
            ctx,
            // The actor kinds; a new kind is one more entry here.
            kinds: vec![
                supervisor::kind::<ScheduleKind>(),
                supervisor::kind::<PatientKind>(),
                supervisor::kind::<PaymentKind>(),
                supervisor::kind::<crate::queue::QueueKind>(),
                supervisor::kind::<crate::exam::ExamKind>(),
            ],
        };
        RootSupervisor::spawn(Some(supervisor::root_name(&prefix)), RootSupervisor, args)
            .await
            .map_err(|e| ActorError::Unavailable { kind: "root", id: prefix.clone(), reason: e.to_string() })?;
        tracing::info!(system = %prefix, "actor system started");
        tokio::spawn(crate::effects::dispatch(system.clone(), effects_rx));
        Ok(system)
    }

    /// Stops every actor (each runs its `post_stop`) and waits for the tree to exit. Later calls
    /// fail with `ShuttingDown`. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let wait = self.inner.config.call_timeout * 3;
        // No root: it stopped already (a crash loop of a kind supervisor stops it).
        if let Some(root) = ActorRef::<RootMsg>::where_is(supervisor::root_name(&self.inner.prefix)) {
            if let Err(e) = root.stop_and_wait(Some("shutdown".into()), Some(wait)).await {
                tracing::warn!(system = %self.inner.prefix, error = %e, "actor system did not stop in time; killing it");
                root.kill();
            }
        }
        tracing::info!(system = %self.inner.prefix, "actor system stopped");
    }

    /// The doctor's schedule actor, started if it was not running.
    pub async fn schedule(&self, doctor: DoctorId) -> Result<ActorRef<ScheduleMsg>, ActorError> {
        self.resolve::<ScheduleKind>(doctor).await
    }

    /// The account's patient session actor, started if it was not running.
    pub async fn patient(&self, account: AccountId) -> Result<ActorRef<PatientMsg>, ActorError> {
        self.resolve::<PatientKind>(account).await
    }

    /// The doctor's sessions with `from <= date <= to` (within the actor's window) and the
    /// places left in each.
    pub async fn get_schedule(
        &self,
        doctor: DoctorId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<SessionAvailability>, ActorError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::Reads, |reply| ScheduleMsg::GetSchedule { from, to, reply }).await
    }

    /// Books a slot for one of the account's patients (through the account's actor, for the
    /// real-name rules, then the doctor's, for the place).
    pub async fn book(
        &self,
        account: AccountId,
        slot: SlotId,
        patient: PatientId,
        idempotency_key: Option<String>,
    ) -> Result<(Appointment, Order), BookingError> {
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::Book {
            slot,
            patient,
            idempotency_key: idempotency_key.clone(),
            reply,
        })
        .await?
    }

    /// Moves one of the account's appointments to another slot of the same doctor.
    pub async fn reschedule(
        &self,
        account: AccountId,
        appointment: AppointmentId,
        slot: SlotId,
    ) -> Result<Appointment, BookingError> {
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::Reschedule {
            appointment,
            slot,
            reply,
        })
        .await?
    }

    /// Puts one of the account's patients on a full session's waitlist; the position.
    pub async fn join_waitlist(
        &self,
        account: AccountId,
        session: SessionId,
        patient: PatientId,
    ) -> Result<usize, BookingError> {
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::JoinWaitlist {
            session,
            patient,
            reply,
        })
        .await?
    }

    pub async fn leave_waitlist(
        &self,
        doctor: DoctorId,
        session: SessionId,
        patient: PatientId,
    ) -> Result<bool, ActorError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::LeaveWaitlist {
            session,
            patient,
            reply,
        })
        .await
    }

    /// Confirms a paid booking (from the payment side).
    pub async fn confirm(&self, doctor: DoctorId, appointment: AppointmentId) -> Result<Appointment, BookingError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::Confirm { appointment, reply })
            .await?
    }

    /// Cancels an appointment; `account` set means the patient asks (ownership, cutoff).
    pub async fn cancel(
        &self,
        doctor: DoctorId,
        appointment: AppointmentId,
        account: Option<AccountId>,
    ) -> Result<Appointment, BookingError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::Cancel {
            appointment,
            account,
            reply,
        })
        .await?
    }

    /// 加号/减号.
    pub async fn set_quota(
        &self,
        doctor: DoctorId,
        session: SessionId,
        segment: u16,
        quota: u32,
    ) -> Result<ClinicSession, BookingError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::SetQuota {
            session,
            segment,
            quota,
            reply,
        })
        .await?
    }

    /// 停诊.
    pub async fn stop_session(&self, doctor: DoctorId, session: SessionId) -> Result<StopReport, BookingError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::UndeliveredOnly, |reply| ScheduleMsg::StopSession { session, reply })
            .await?
    }

    /// A session's live appointments (staff).
    pub async fn session_appointments(
        &self,
        doctor: DoctorId,
        session: SessionId,
    ) -> Result<Vec<Appointment>, ActorError> {
        self.ask::<ScheduleKind, _>(doctor, Retry::Reads, |reply| ScheduleMsg::SessionAppointments { session, reply })
            .await
    }

    /// Stores a newly ordered exam through its actor (events and all).
    pub async fn create_exam(
        &self,
        exam: hospital_domain::exam::Exam,
    ) -> Result<hospital_domain::exam::Exam, crate::ExamFailure> {
        self.ask::<crate::ExamKind, _>(exam.id, Retry::UndeliveredOnly, |reply| crate::ExamMsg::Create {
            exam: exam.clone(),
            reply,
        })
        .await?
    }

    /// Changes an exam's status through its actor.
    pub async fn change_exam(
        &self,
        id: hospital_domain::ExamId,
        change: hospital_domain::exam::ExamChange,
    ) -> Result<hospital_domain::exam::Exam, crate::ExamFailure> {
        self.ask::<crate::ExamKind, _>(id, Retry::UndeliveredOnly, |reply| crate::ExamMsg::Change {
            change: change.clone(),
            reply,
        })
        .await?
    }

    /// Has the doctor's actor re-read its sessions, after staff changed them. Does nothing when
    /// no actor is running: the next one reads the store when it starts.
    pub fn reload_schedule(&self, doctor: DoctorId) {
        let name = supervisor::child_name::<ScheduleKind>(&self.inner.prefix, doctor);
        if let Some(actor) = ActorRef::<ScheduleMsg>::where_is(name) {
            // A send failure means the actor is stopping; its successor loads fresh data.
            let _ = actor.cast(ScheduleMsg::Reload);
        }
    }

    /// The account's patients, oldest first.
    pub async fn list_patients(&self, account: AccountId) -> Result<Vec<PatientRecord>, ActorError> {
        self.ask::<PatientKind, _>(account, Retry::Reads, |reply| PatientMsg::ListPatients { reply }).await
    }

    /// Adds a patient to `record.account_id` within `caps` (see `PatientMsg::AddPatient`).
    /// Refusals: `PatientCap`, `DuplicatePatient`, `PersonAccountCap`; store failures: `Store`.
    pub async fn add_patient(&self, record: PatientRecord, caps: PatientCaps) -> Result<PatientRecord, PatientError> {
        let account = record.account_id;
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::AddPatient {
            record: record.clone(),
            caps,
            reply,
        })
        .await?
    }

    /// Removes a patient; `Ok(false)` if the account had none with this id.
    pub async fn remove_patient(&self, account: AccountId, patient: PatientId) -> Result<bool, ActorError> {
        self.ask::<PatientKind, _>(account, Retry::UndeliveredOnly, |reply| PatientMsg::RemovePatient {
            id: patient,
            reply,
        })
        .await?
    }

    /// Makes the doctor's schedule actor panic (see `ScheduleMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_schedule_fault(&self, doctor: DoctorId) -> Result<(), ActorError> {
        let actor = self.schedule(doctor).await?;
        actor.cast(ScheduleMsg::InjectFault).map_err(|e| unavailable::<ScheduleKind>(doctor, e.to_string()))
    }

    /// Makes the account's patient actor panic (see `PatientMsg::InjectFault`).
    #[cfg(feature = "fault-injection")]
    pub async fn inject_patient_fault(&self, account: AccountId) -> Result<(), ActorError> {
        let actor = self.patient(account).await?;
        actor.cast(PatientMsg::InjectFault).map_err(|e| unavailable::<PatientKind>(account, e.to_string()))
    }

    /// Live actors, failures and restarts per kind.
    pub async fn stats(&self) -> Result<SystemStats, ActorError> {
        Ok(SystemStats {
            schedules: self.kind_stats::<ScheduleKind>().await?,
            patients: self.kind_stats::<PatientKind>().await?,
        })
    }

    async fn kind_stats<K: ActorKind>(&self) -> Result<KindStats, ActorError> {
        let sup = self.supervisor::<K>()?;
        match sup.call(|reply| KindMsg::Stats { reply }, Some(self.inner.config.call_timeout)).await {
            Ok(CallResult::Success(s)) => Ok(s),
            Ok(CallResult::Timeout) => Err(ActorError::Timeout {
                kind: K::SUPERVISOR,
                id: self.inner.prefix.clone(),
                timeout: self.inner.config.call_timeout,
            }),
            Ok(CallResult::SenderError) | Err(_) => Err(ActorError::Unavailable {
                kind: K::SUPERVISOR,
                id: self.inner.prefix.clone(),
                reason: "supervisor stopped".into(),
            }),
        }
    }

    fn supervisor<K: ActorKind>(&self) -> Result<ActorRef<KindMsg<K>>, ActorError> {
        if self.inner.shut_down.load(Ordering::SeqCst) {
            return Err(ActorError::ShuttingDown);
        }
        ActorRef::<KindMsg<K>>::where_is(supervisor::supervisor_name::<K>(&self.inner.prefix)).ok_or_else(|| {
            ActorError::Unavailable {
                kind: K::SUPERVISOR,
                id: self.inner.prefix.clone(),
                reason: "supervisor not running".into(),
            }
        })
    }

    /// Finds the id's actor, or has its kind supervisor start it. The registry lookup is the fast
    /// path; the supervisor is asked only when the actor is not running, and it alone starts
    /// actors, so concurrent first calls all get the same one.
    pub(crate) async fn resolve<K: ActorKind>(&self, id: K::Id) -> Result<ActorRef<ChildMsg<K>>, ActorError> {
        let name = supervisor::child_name::<K>(&self.inner.prefix, id);
        let config = &self.inner.config;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            if let Some(actor) = ActorRef::<ChildMsg<K>>::where_is(&name) {
                if actor.get_status() < ActorStatus::Draining {
                    return Ok(actor);
                }
            }
            let sup = match self.supervisor::<K>() {
                Ok(sup) => sup,
                Err(ActorError::ShuttingDown) => return Err(ActorError::ShuttingDown),
                // Being restarted by the root: look again shortly.
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            // The supervisor may have a start queued before ours; allow for one start plus a call.
            let wait = config.start_timeout + config.call_timeout;
            match sup.call(|reply| KindMsg::Ensure { id, reply }, Some(wait)).await {
                Ok(CallResult::Success(Ensured::Ready(actor))) => return Ok(actor),
                Ok(CallResult::Success(Ensured::Refused(e))) => return Err(e),
                Ok(CallResult::Success(Ensured::Stopping)) => last = "actor is stopping".into(),
                Ok(CallResult::Timeout) => {
                    return Err(ActorError::Timeout { kind: K::KIND, id: id.to_string(), timeout: wait })
                }
                Ok(CallResult::SenderError) | Err(_) => last = "supervisor stopped".into(),
            }
        }
        Err(unavailable::<K>(id, last))
    }

    /// Sends a request to the id's actor and waits for the answer within `call_timeout`. A message
    /// the actor never received (it was draining, or gone) is sent again to its successor.
    pub(crate) async fn ask<K: ActorKind, R: Send + 'static>(
        &self,
        id: K::Id,
        retry: Retry,
        build: impl Fn(RpcReplyPort<R>) -> ChildMsg<K>,
    ) -> Result<R, ActorError> {
        let timeout = self.inner.config.call_timeout;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let actor = self.resolve::<K>(id).await?;
            match actor.call(&build, Some(timeout)).await {
                Ok(CallResult::Success(r)) => return Ok(r),
                Ok(CallResult::Timeout) => {
                    tracing::warn!(kind = K::KIND, %id, ?timeout, "actor call timed out");
                    return Err(ActorError::Timeout { kind: K::KIND, id: id.to_string(), timeout });
                }
                // Delivered, then the actor died before answering.
                Ok(CallResult::SenderError) => {
                    if retry == Retry::UndeliveredOnly {
                        return Err(unavailable::<K>(id, "stopped before answering".into()));
                    }
                    last = "stopped before answering".into();
                }
                Err(MessagingErr::SendErr(_)) | Err(MessagingErr::ChannelClosed) => last = "actor is stopping".into(),
                Err(e @ MessagingErr::InvalidActorType) => return Err(unavailable::<K>(id, e.to_string())),
            }
        }
        Err(unavailable::<K>(id, last))
    }
}

fn unavailable<K: ActorKind>(id: K::Id, reason: String) -> ActorError {
    ActorError::Unavailable { kind: K::KIND, id: id.to_string(), reason }
}

/// Waits before looking again: the caller's task, never an actor's handler.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(5u64 << attempt.min(6))).await;
}

impl ActorSystem {
    /// Carries out one effect through the order's payment actor.
    pub(crate) async fn run_effect(&self, effect: crate::Effect) -> Result<(), ActorError> {
        match effect {
            crate::Effect::CloseOrder(order) => {
                let actor = self.resolve::<PaymentKind>(order).await?;
                actor
                    .cast(PaymentMsg::Close { reply: None })
                    .map_err(|e| unavailable::<PaymentKind>(order, e.to_string()))
            }
            crate::Effect::Refund { order, reason } => {
                let actor = self.resolve::<PaymentKind>(order).await?;
                actor
                    .cast(PaymentMsg::Refund { amount: None, reason, reply: None })
                    .map_err(|e| unavailable::<PaymentKind>(order, e.to_string()))
            }
        }
    }

    pub(crate) fn child_name_payment(&self, order: OrderId) -> String {
        supervisor::child_name::<PaymentKind>(&self.inner.prefix, order)
    }

    /// The order as its payment actor holds it.
    pub async fn order(&self, order: OrderId) -> Result<Order, ActorError> {
        self.ask::<PaymentKind, _>(order, Retry::Reads, |reply| PaymentMsg::Get { reply }).await
    }

    /// The `wx.requestPayment` parameters for an order.
    pub async fn prepay(&self, order: OrderId, openid: String) -> Result<RequestPaymentParams, PaymentError> {
        self.ask::<PaymentKind, _>(order, Retry::UndeliveredOnly, |reply| PaymentMsg::Prepay {
            openid: openid.clone(),
            reply,
        })
        .await?
    }

    /// A verified payment notification (or query result) for an order.
    pub async fn payment_notified(
        &self,
        order: OrderId,
        notification_id: String,
        transaction: Transaction,
    ) -> Result<Order, PaymentError> {
        self.ask::<PaymentKind, _>(order, Retry::UndeliveredOnly, |reply| PaymentMsg::Paid {
            notification_id: Some(notification_id.clone()),
            transaction: transaction.clone(),
            reply: Some(reply),
        })
        .await?
    }

    /// A verified refund notification for an order.
    pub async fn refund_notified(
        &self,
        order: OrderId,
        notification_id: String,
        notice: RefundNotice,
    ) -> Result<Order, PaymentError> {
        self.ask::<PaymentKind, _>(order, Retry::UndeliveredOnly, |reply| PaymentMsg::RefundDone {
            notification_id: notification_id.clone(),
            notice: notice.clone(),
            reply,
        })
        .await?
    }

    /// Refunds part or all of a paid order (staff-initiated, PAY-6).
    pub async fn refund(&self, order: OrderId, amount: Option<Fen>, reason: String) -> Result<Order, PaymentError> {
        self.ask::<PaymentKind, _>(order, Retry::UndeliveredOnly, |reply| PaymentMsg::Refund {
            amount,
            reason: reason.clone(),
            reply: Some(reply),
        })
        .await?
    }
}
