//! The patient session actor: one per account, serialising that account's operations on its
//! patients (就诊人) so rules like "at most N patients" hold under concurrent requests. Later
//! issues add the account's live sockets and the per-account booking rules here.

use hospital_domain::{AccountId, PatientId};
use hospital_store::{PatientRecord, StoreError};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::Arc;

use crate::idle::IdleClock;
use crate::{ActorDeps, ActorError, ActorKind};

/// Messages of a patient session actor.
#[derive(Debug)]
pub enum PatientMsg {
    /// The account's patients, oldest first, from memory.
    ListPatients { reply: RpcReplyPort<Vec<PatientRecord>> },
    /// Adds a patient if the account has fewer than `cap` and the same person (same ID-number
    /// index) or id is not already there. Written through the store first; memory changes only
    /// once the write succeeded. Refusals are `PatientCap`, `DuplicatePatient`, `WrongAccount`.
    AddPatient { record: PatientRecord, cap: usize, reply: RpcReplyPort<Result<PatientRecord, ActorError>> },
    /// Removes a patient; `Ok(false)` if the account had none with this id.
    RemovePatient { id: PatientId, reply: RpcReplyPort<Result<bool, ActorError>> },
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
    pub deps: Arc<ActorDeps>,
}

/// The live state of one account.
pub struct PatientState {
    account: AccountId,
    deps: Arc<ActorDeps>,
    /// The account's patients, oldest first: the store's rows as of the last successful write.
    patients: Vec<PatientRecord>,
    idle: IdleClock,
    // Later issues: the account's WebSocket senders and its booking counters live here.
}

impl PatientState {
    async fn add(&mut self, record: PatientRecord, cap: usize) -> Result<PatientRecord, ActorError> {
        if record.account_id != self.account {
            return Err(ActorError::WrongAccount);
        }
        if self.patients.iter().any(|p| p.id == record.id || p.id_card_index == record.id_card_index) {
            return Err(ActorError::DuplicatePatient);
        }
        if self.patients.len() >= cap {
            return Err(ActorError::PatientCap { cap });
        }
        // The store checks again atomically: it is the truth if another process wrote meanwhile.
        match self.deps.stores.data.add_patient(&record, cap).await {
            Ok(()) => {
                self.patients.push(record.clone());
                Ok(record)
            }
            Err(StoreError::Conflict("patient cap")) => Err(ActorError::PatientCap { cap }),
            Err(StoreError::Conflict("patient")) => Err(ActorError::DuplicatePatient),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove(&mut self, id: PatientId) -> Result<bool, ActorError> {
        let removed = self.deps.stores.data.remove_patient(self.account, id).await?;
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
        let patients = args.deps.stores.data.patients_of(args.account).await?;
        tracing::debug!(account = %args.account, patients = patients.len(), "patient actor loaded");
        Ok(PatientState {
            account: args.account,
            idle: IdleClock::new(args.deps.config.idle_timeout),
            deps: args.deps,
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
            PatientMsg::AddPatient { record, cap, reply } => {
                let result = state.add(record, cap).await;
                if let Err(e) = &result {
                    tracing::debug!(account = %state.account, error = %e, "patient not added");
                }
                let _ = reply.send(result);
            }
            PatientMsg::RemovePatient { id, reply } => {
                let _ = reply.send(state.remove(id).await);
            }
            #[cfg(feature = "fault-injection")]
            PatientMsg::InjectFault => {
                panic!("fault injected into patient actor {}", state.account);
            }
            PatientMsg::Tick => {
                if state.idle.expired() {
                    tracing::debug!(account = %state.account, "patient actor idle; stopping");
                    state.idle.stop();
                    // Drain, not stop: anything already queued is still answered.
                    let _ = myself.drain();
                }
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
    fn args(account: AccountId, deps: &Arc<ActorDeps>) -> PatientArgs {
        PatientArgs { account, deps: deps.clone() }
    }
}
