//! The supervisor tree: a root supervisor with one `KindSupervisor<K>` per actor kind.
//!
//! A kind supervisor is the only place that starts actors of its kind, so concurrent first calls
//! for one id cannot create two actors: they queue in its mailbox and all but the first find the
//! actor already registered. Actors are registered in ractor's named registry as
//! `<system>/<kind>:<id>`, which gives callers a lookup without messaging the supervisor; the
//! `<system>` prefix keeps several systems in one process (tests) apart.
//!
//! When an actor panics the supervisor restarts it with the same id (its `pre_start` reloads from
//! the store), unless that id failed more than `max_restarts` times within `restart_window`:
//! then it logs an error and refuses to start the id until the window has passed, so a poisoned
//! row cannot spin a crash loop. An actor that stopped on its own (idle) is just forgotten; the
//! next call starts a fresh one.

use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, SpawnErr, SupervisionEvent};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use crate::deps::Context;
use crate::error::ActorError;
use crate::kind::{child_name, supervisor_name, ActorKind, ChildMsg, Ensured, KindMsg, KindStats};

/// How a kind's actors are started (beside `ActorKind`, which is all the rest of the system
/// needs to know of a kind).
pub trait SpawnKind: ActorKind {
    fn actor() -> Self::Actor;
    /// The arguments `pre_start` gets; the actor loads its state from the store there, so a
    /// restart after a panic rebuilds it from the durable truth.
    fn args(id: Self::Id, ctx: &Arc<Context>) -> <Self::Actor as Actor>::Arguments;
}

/// Declares a kind whose actor is a unit struct started with its id (as `$field`) and the shared
/// context: every kind's `ActorKind` and `SpawnKind` but the dispatcher's (keyed by group code).
macro_rules! actor_kind {
    ($kind:ident, $name:literal, $supervisor:literal, $id:ty, $actor:ident, $args:ident { $field:ident }) => {
        impl $crate::kind::ActorKind for $kind {
            const KIND: &'static str = $name;
            const SUPERVISOR: &'static str = $supervisor;
            type Id = $id;
            type Actor = $actor;
        }

        impl $crate::supervisor::SpawnKind for $kind {
            fn actor() -> $actor {
                $actor
            }
            fn args($field: $id, ctx: &std::sync::Arc<$crate::deps::Context>) -> $args {
                $args { $field, ctx: ctx.clone() }
            }
        }
    };
}
pub(crate) use actor_kind;

pub(crate) struct KindArgs {
    pub prefix: String,
    pub ctx: Arc<Context>,
}

pub(crate) struct KindState<K: SpawnKind> {
    prefix: String,
    ctx: Arc<Context>,
    /// The current actor of each id. An id's entry may briefly outlive its actor (the
    /// termination event is still queued); the registry is what `Ensure` trusts.
    children: HashMap<K::Id, ActorRef<ChildMsg<K>>>,
    by_actor: HashMap<ActorId, K::Id>,
    /// Recent failure times per id, for the crash-loop limit.
    recent_failures: HashMap<K::Id, VecDeque<Instant>>,
    stats: KindStats,
}

impl<K: SpawnKind> KindState<K> {
    /// Removes a stopped actor; returns its id and whether it was still the id's current actor.
    fn forget(&mut self, actor: ActorId) -> Option<(K::Id, bool)> {
        let id = self.by_actor.remove(&actor)?;
        let current = self.children.get(&id).is_some_and(|r| r.get_id() == actor);
        if current {
            self.children.remove(&id);
            metrics::gauge!("actors_live", "kind" => K::KIND).decrement(1.0);
        }
        Some((id, current))
    }

    /// Failures of `id` within the window, after pruning older ones.
    fn failures_in_window(&mut self, id: K::Id, now: Instant) -> usize {
        let window = self.ctx.config.restart_window;
        let Some(times) = self.recent_failures.get_mut(&id) else { return 0 };
        while times.front().is_some_and(|t| now.duration_since(*t) > window) {
            times.pop_front();
        }
        let n = times.len();
        if n == 0 {
            self.recent_failures.remove(&id);
        }
        n
    }

    fn record_failure(&mut self, id: K::Id, now: Instant) -> usize {
        self.recent_failures.entry(id).or_default().push_back(now);
        self.failures_in_window(id, now)
    }

    fn crash_looping(&mut self, id: K::Id) -> bool {
        self.failures_in_window(id, Instant::now()) > self.ctx.config.max_restarts as usize
    }
}

/// Supervises all actors of kind `K`.
pub(crate) struct KindSupervisor<K>(PhantomData<fn() -> K>);

impl<K: SpawnKind> KindSupervisor<K> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }

    /// Starts the id's actor linked to this supervisor and waits for its `pre_start`.
    async fn start_child(
        myself: &ActorRef<KindMsg<K>>,
        state: &mut KindState<K>,
        id: K::Id,
    ) -> Result<ActorRef<ChildMsg<K>>, ActorError> {
        let name = child_name::<K>(&state.prefix, id);
        let spawn =
            <K::Actor as Actor>::spawn_linked(Some(name), K::actor(), K::args(id, &state.ctx), myself.get_cell());
        let timeout = state.ctx.config.start_timeout;
        // Dropping the spawn future on timeout is safe: ractor's lifecycle guard unregisters the
        // half-started actor, so the name is free for the next attempt.
        let spawned = match tokio::time::timeout(timeout, spawn).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(kind = K::KIND, %id, ?timeout, "actor start timed out");
                return Err(ActorError::Timeout { kind: K::KIND, id: id.to_string(), timeout });
            }
        };
        match spawned {
            Ok((actor, _join)) => {
                state.by_actor.insert(actor.get_id(), id);
                if let Some(old) = state.children.insert(id, actor.clone()) {
                    // The old actor is stopping and its termination event has not arrived yet;
                    // count it as gone now, since `forget` will no longer see it as current.
                    if old.get_id() != actor.get_id() {
                        metrics::gauge!("actors_live", "kind" => K::KIND).decrement(1.0);
                    }
                }
                metrics::gauge!("actors_live", "kind" => K::KIND).increment(1.0);
                tracing::debug!(kind = K::KIND, %id, "actor started");
                Ok(actor)
            }
            Err(SpawnErr::StartupFailed(e)) => {
                tracing::warn!(kind = K::KIND, %id, error = %e, "actor failed to start");
                // A store failure in `pre_start` is reported as such, so callers can answer 503.
                match e.downcast::<hospital_store::StoreError>() {
                    Ok(store) => Err(ActorError::Store(*store)),
                    Err(e) => Err(ActorError::Unavailable { kind: K::KIND, id: id.to_string(), reason: e.to_string() }),
                }
            }
            Err(e) => {
                tracing::warn!(kind = K::KIND, %id, error = %e, "actor failed to start");
                Err(ActorError::Unavailable { kind: K::KIND, id: id.to_string(), reason: e.to_string() })
            }
        }
    }

    async fn ensure(myself: &ActorRef<KindMsg<K>>, state: &mut KindState<K>, id: K::Id) -> Ensured<ChildMsg<K>> {
        let name = child_name::<K>(&state.prefix, id);
        if let Some(existing) = ActorRef::<ChildMsg<K>>::where_is(&name) {
            return if existing.get_status() < ActorStatus::Draining {
                Ensured::Ready(existing)
            } else {
                Ensured::Stopping
            };
        }
        if state.crash_looping(id) {
            return Ensured::Refused(ActorError::CrashLoop { kind: K::KIND, id: id.to_string() });
        }
        match Self::start_child(myself, state, id).await {
            Ok(actor) => Ensured::Ready(actor),
            Err(e) => Ensured::Refused(e),
        }
    }

    async fn on_failure(myself: &ActorRef<KindMsg<K>>, state: &mut KindState<K>, actor: ActorCell, err: String) {
        let Some((id, current)) = state.forget(actor.get_id()) else {
            // Not one of ours (a child of a previous supervisor instance): nothing to restart.
            return;
        };
        state.stats.failures += 1;
        let recent = state.record_failure(id, Instant::now());
        tracing::warn!(kind = K::KIND, %id, error = %err, recent_failures = recent, "actor failed");
        if recent > state.ctx.config.max_restarts as usize {
            state.stats.given_up += 1;
            tracing::error!(
                kind = K::KIND, %id, recent_failures = recent, window = ?state.ctx.config.restart_window,
                "actor keeps failing; giving up on it until the window passes"
            );
            return;
        }
        // A caller may already have started a fresh actor for the id; then there is nothing to do.
        if !current || ActorRef::<ChildMsg<K>>::where_is(child_name::<K>(&state.prefix, id)).is_some() {
            return;
        }
        metrics::counter!("actor_restarts_total", "kind" => K::KIND).increment(1);
        state.stats.restarts += 1;
        match Self::start_child(myself, state, id).await {
            Ok(_) => tracing::info!(kind = K::KIND, %id, "actor restarted after a failure"),
            // Not fatal: the next call for the id tries again.
            Err(e) => tracing::error!(kind = K::KIND, %id, error = %e, "actor restart failed"),
        }
    }
}

impl<K: SpawnKind> Actor for KindSupervisor<K> {
    type Msg = KindMsg<K>;
    type State = KindState<K>;
    type Arguments = KindArgs;

    async fn pre_start(&self, _myself: ActorRef<Self::Msg>, args: KindArgs) -> Result<Self::State, ActorProcessingErr> {
        tracing::debug!(kind = K::KIND, "kind supervisor started");
        Ok(KindState {
            prefix: args.prefix,
            ctx: args.ctx,
            children: HashMap::new(),
            by_actor: HashMap::new(),
            recent_failures: HashMap::new(),
            stats: KindStats::default(),
        })
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Stop children gracefully (their post_stop runs); ractor would otherwise kill them when
        // this supervisor terminates.
        myself.stop_children_and_wait(Some("shutdown".into()), Some(state.ctx.config.call_timeout)).await;
        metrics::gauge!("actors_live", "kind" => K::KIND).decrement(state.children.len() as f64);
        state.children.clear();
        state.by_actor.clear();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            KindMsg::Ensure { id, reply } => {
                let out = Self::ensure(&myself, state, id).await;
                let _ = reply.send(out);
            }
            KindMsg::Stats { reply } => {
                let _ = reply.send(KindStats { live: state.children.len(), ..state.stats });
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Overriding this is what keeps a child's exit from stopping the supervisor (ractor's
        // default).
        match evt {
            SupervisionEvent::ActorFailed(actor, err) => Self::on_failure(&myself, state, actor, err.to_string()).await,
            SupervisionEvent::ActorTerminated(actor, _, reason) => {
                if let Some((id, _)) = state.forget(actor.get_id()) {
                    tracing::debug!(kind = K::KIND, %id, ?reason, "actor stopped");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Starts one kind supervisor under the root; type-erased so the root holds a list of kinds.
pub(crate) trait KindSpawner: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    fn spawn(
        &self,
        prefix: String,
        ctx: Arc<Context>,
        root: ActorCell,
    ) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;
}

struct Spawner<K>(PhantomData<fn() -> K>);

impl<K: SpawnKind> KindSpawner for Spawner<K> {
    fn kind(&self) -> &'static str {
        K::SUPERVISOR
    }
    fn spawn(
        &self,
        prefix: String,
        ctx: Arc<Context>,
        root: ActorCell,
    ) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>> {
        Box::pin(async move {
            let name = supervisor_name::<K>(&prefix);
            let (sup, _join) =
                KindSupervisor::<K>::spawn_linked(Some(name), KindSupervisor::new(), KindArgs { prefix, ctx }, root)
                    .await?;
            Ok(sup.get_cell())
        })
    }
}

/// The entry for kind `K` in the root's list of kinds.
pub(crate) fn kind<K: SpawnKind>() -> Arc<dyn KindSpawner> {
    Arc::new(Spawner::<K>(PhantomData))
}

/// The root has no messages of its own: it only starts and watches the kind supervisors.
pub(crate) enum RootMsg {}

pub(crate) struct RootArgs {
    pub prefix: String,
    pub ctx: Arc<Context>,
    pub kinds: Vec<Arc<dyn KindSpawner>>,
}

pub(crate) struct RootState {
    prefix: String,
    ctx: Arc<Context>,
    kinds: Vec<Arc<dyn KindSpawner>>,
    running: HashMap<ActorId, usize>,
    recent_failures: Vec<VecDeque<Instant>>,
}

impl RootState {
    async fn start_kind(&mut self, myself: &ActorRef<RootMsg>, index: usize) -> Result<(), SpawnErr> {
        let kind = self.kinds[index].clone();
        let cell = kind.spawn(self.prefix.clone(), self.ctx.clone(), myself.get_cell()).await?;
        self.running.insert(cell.get_id(), index);
        Ok(())
    }
}

/// The root of the tree. If a kind supervisor dies (a bug in it, not in a child), the root
/// restarts it, within the same crash-loop limit; past it the whole system stops, loudly.
pub(crate) struct RootSupervisor;

impl Actor for RootSupervisor {
    type Msg = RootMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(&self, myself: ActorRef<Self::Msg>, args: RootArgs) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RootState {
            recent_failures: vec![VecDeque::new(); args.kinds.len()],
            prefix: args.prefix,
            ctx: args.ctx,
            kinds: args.kinds,
            running: HashMap::new(),
        };
        for i in 0..state.kinds.len() {
            state.start_kind(&myself, i).await?;
        }
        Ok(state)
    }

    async fn post_stop(&self, myself: ActorRef<Self::Msg>, state: &mut Self::State) -> Result<(), ActorProcessingErr> {
        // Each kind supervisor stops its own children in its post_stop; allow for that.
        let wait = state.ctx.config.call_timeout * 2;
        myself.stop_children_and_wait(Some("shutdown".into()), Some(wait)).await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {}
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        evt: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (actor, why) = match evt {
            SupervisionEvent::ActorFailed(actor, err) => (actor, err.to_string()),
            SupervisionEvent::ActorTerminated(actor, _, reason) => (actor, reason.unwrap_or_else(|| "stopped".into())),
            _ => return Ok(()),
        };
        let Some(index) = state.running.remove(&actor.get_id()) else { return Ok(()) };
        let kind = state.kinds[index].kind();
        let now = Instant::now();
        let window = state.ctx.config.restart_window;
        let times = &mut state.recent_failures[index];
        times.push_back(now);
        while times.front().is_some_and(|t| now.duration_since(*t) > window) {
            times.pop_front();
        }
        tracing::error!(kind, reason = %why, "kind supervisor exited; its actors are gone");
        if times.len() > state.ctx.config.max_restarts as usize {
            tracing::error!(kind, "kind supervisor keeps failing; stopping the actor system");
            myself.stop(Some(format!("{kind} supervisor crash loop")));
            return Ok(());
        }
        metrics::counter!("actor_restarts_total", "kind" => kind).increment(1);
        // ractor unregisters a dying actor's name before notifying its supervisor, so the name
        // is free again here.
        match state.start_kind(&myself, index).await {
            Ok(()) => tracing::info!(kind, "kind supervisor restarted"),
            Err(e) => {
                tracing::error!(kind, error = %e, "kind supervisor restart failed; stopping the actor system");
                myself.stop(Some(format!("{kind} supervisor restart failed")));
            }
        }
        Ok(())
    }
}
