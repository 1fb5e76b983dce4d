//! `ActorSystem`: the handle the rest of the platform holds. It finds an id's actor (or has the
//! kind supervisor start it) and sends it a message with a timeout, so a caller never hangs on an
//! actor and never sees ractor types unless it asks for an `ActorRef`. The methods for each kind's
//! messages live beside the kind (`schedule::api`, `patient::api`, ...), written with `asks!`;
//! starting the tree is `tree`.

use ractor::rpc::CallResult;
use ractor::{ActorRef, ActorStatus, MessagingErr, RpcReplyPort};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use crate::config::ActorConfig;
use crate::deps::Context;
use crate::error::ActorError;
use crate::kind::{child_name, root_name, supervisor_name, ActorKind, ChildMsg, Ensured, KindMsg, KindStats};

/// Tells systems in one process apart in the (process-global) ractor registry.
static NEXT_SYSTEM: AtomicU64 = AtomicU64::new(1);

/// How many times a caller looks an actor up again when it was stopping or restarting. The
/// back-off doubles from 5 ms, so the last try is ~150 ms after the first.
const ATTEMPTS: u32 = 6;

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
    /// What the schedule actors running here say refuses a hold (`schedule::gate`).
    gate: crate::schedule::AvailabilityGate,
    /// The persons with a booking decision in progress here, by ID-number index (`real_name`).
    persons: crate::keyed_lock::KeyedLocks,
    /// The accounts' patients as their running actors last wrote them (`patient::directory`).
    patients: Arc<crate::patient::PatientDirectory>,
    /// What the actors share, for work done on a caller's task (a booking: `patient::api`). Set
    /// once the tree's `Context` is made; weak, as the `Context` holds this handle.
    ctx: OnceLock<Weak<Context>>,
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

/// Declares `ActorSystem` methods that send one message to an id's actor and wait for its answer,
/// one line each (the first argument is the actor's id):
///
/// - `fn name(id: Id, args..) -> T = reads|once |reply| Msg { .., reply };` for an answer `T`
///   that cannot be refused: the method returns `Result<T, ActorError>`;
/// - `fn name(id: Id, args..) -> T, E = ...;` for an answer `Result<T, E>`: the method returns
///   `Result<T, E>`, an actor failure becoming `E::from(ActorError)` (no nested results).
///
/// `reads` may be sent again to a successor after the actor died holding it; `once` only if it was
/// never delivered (`Retry`). The closure may be called once per attempt: clone what it moves.
macro_rules! asks {
    ($kind:ty: $( $(#[$attr:meta])* $vis:vis fn $name:ident($id:ident: $idty:ty $(, $arg:ident: $argty:ty)* $(,)?)
        -> $ok:ty $(, $err:ty)? = $retry:ident $build:expr; )*) => {
        $(
            $(#[$attr])*
            $vis async fn $name(&self, $id: $idty $(, $arg: $argty)*) -> $crate::system::asks!(@out $ok $(, $err)?) {
                let answer = self.ask::<$kind, _>($id, $crate::system::asks!(@retry $retry), $build).await;
                $crate::system::asks!(@flatten answer $(, $err)?)
            }
        )*
    };
    (@out $ok:ty) => { Result<$ok, $crate::ActorError> };
    (@out $ok:ty, $err:ty) => { Result<$ok, $err> };
    (@retry reads) => { $crate::system::Retry::Reads };
    (@retry once) => { $crate::system::Retry::UndeliveredOnly };
    (@flatten $answer:ident) => { $answer };
    (@flatten $answer:ident, $err:ty) => { $answer? };
}
pub(crate) use asks;

impl ActorSystem {
    /// A handle for a new tree with a name of its own; `tree` starts the tree under it.
    pub(crate) fn new(config: ActorConfig) -> Self {
        let prefix = format!("hospital-{}", NEXT_SYSTEM.fetch_add(1, Ordering::Relaxed));
        Self {
            inner: Arc::new(Inner {
                prefix,
                config,
                shut_down: AtomicBool::new(false),
                gate: Default::default(),
                persons: Default::default(),
                patients: Default::default(),
                ctx: OnceLock::new(),
            }),
        }
    }

    /// The actor system's configuration (its clocks and rules).
    pub fn config(&self) -> &ActorConfig {
        &self.inner.config
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::SeqCst)
    }

    /// The persons with a booking decision in progress on this node (taken by the accounts'
    /// actors around the real-name rules and the hold, tried by the doctors' actors around a
    /// waitlist offer).
    pub(crate) fn persons(&self) -> &crate::keyed_lock::KeyedLocks {
        &self.inner.persons
    }

    /// The accounts' patients as their running actors last wrote them.
    pub(crate) fn patient_directory(&self) -> &Arc<crate::patient::PatientDirectory> {
        &self.inner.patients
    }

    /// What the actors share, once the tree is started (and while it runs).
    pub(crate) fn context(&self) -> Option<Arc<Context>> {
        self.inner.ctx.get().and_then(Weak::upgrade)
    }

    /// Called once by `start`, with the `Context` it made.
    pub(crate) fn set_context(&self, ctx: &Arc<Context>) {
        let _ = self.inner.ctx.set(Arc::downgrade(ctx));
    }

    /// This node's availability gate (kept by the schedule actors, read by `book`).
    pub fn gate(&self) -> &crate::schedule::AvailabilityGate {
        &self.inner.gate
    }

    /// Stops every actor (each runs its `post_stop`) and waits for the tree to exit. Later calls
    /// fail with `ShuttingDown`. Idempotent.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return;
        }
        let wait = self.inner.config.call_timeout * 3;
        // No root: it stopped already (a crash loop of a kind supervisor stops it).
        if let Some(root) = ractor::registry::where_is(root_name(&self.inner.prefix)) {
            if let Err(e) = root.stop_and_wait(Some("shutdown".into()), Some(wait)).await {
                tracing::warn!(system = %self.inner.prefix, error = %e, "actor system did not stop in time; killing it");
                root.kill();
            }
        }
        tracing::info!(system = %self.inner.prefix, "actor system stopped");
    }

    /// Sends the id's actor a message without waiting for an answer (starting the actor if need
    /// be).
    pub(crate) async fn tell<K: ActorKind>(&self, id: K::Id, msg: ChildMsg<K>) -> Result<(), ActorError> {
        let actor = self.resolve::<K>(id).await?;
        actor.cast(msg).map_err(|e| unavailable::<K>(id, e.to_string()))
    }

    pub(crate) async fn kind_stats<K: ActorKind>(&self) -> Result<KindStats, ActorError> {
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
        ActorRef::<KindMsg<K>>::where_is(supervisor_name::<K>(&self.inner.prefix)).ok_or_else(|| {
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
        let name = child_name::<K>(&self.inner.prefix, id);
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
