//! Starting the tree: which kinds of actor exist (a new kind is one more entry in `start`'s list),
//! what their actors share (`Context`), the effect dispatcher, and the tree's counters.

use std::sync::Arc;

use crate::conversation::ConversationKind;
use crate::deps::{ActorDeps, Context};
use crate::dispatcher::DispatcherKind;
use crate::effects::EffectSink;
use crate::error::ActorError;
use crate::exam::ExamKind;
use crate::kind::{root_name, KindStats};
use crate::patient::PatientKind;
use crate::payment::{self, PaymentKind};
use crate::queue::QueueKind;
use crate::schedule::ScheduleKind;
use crate::supervisor::{self, RootArgs, RootSupervisor};
use crate::system::ActorSystem;
use crate::ticket::TicketKind;
use crate::visit::VisitKind;
use ractor::Actor;

/// Counters of every kind supervisor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemStats {
    pub schedules: KindStats,
    pub patients: KindStats,
}

impl ActorSystem {
    /// Starts the root supervisor and one kind supervisor per actor kind. Actors themselves start
    /// on first use.
    ///
    /// In dependency order: this handle (names only), the effect dispatcher's queue, the
    /// `Context` every actor shares (holding both), then the tree, then the dispatcher.
    pub async fn start(deps: ActorDeps) -> Result<ActorSystem, ActorError> {
        let system = ActorSystem::new(deps.config.clone());
        let prefix = system.prefix().to_string();
        let (effects_tx, effects_rx) = tokio::sync::mpsc::unbounded_channel();
        let (orders, order_sweep) = (deps.stores.data.clone(), deps.config.order_sweep);
        let ctx = Arc::new(Context::new(deps, EffectSink::new(effects_tx), system.clone()));
        system.set_context(&ctx);
        let args = RootArgs {
            prefix: prefix.clone(),
            ctx,
            // The actor kinds; a new kind is one more entry here.
            kinds: vec![
                supervisor::kind::<ScheduleKind>(),
                supervisor::kind::<PatientKind>(),
                supervisor::kind::<PaymentKind>(),
                supervisor::kind::<QueueKind>(),
                supervisor::kind::<ExamKind>(),
                supervisor::kind::<VisitKind>(),
                supervisor::kind::<ConversationKind>(),
                supervisor::kind::<DispatcherKind>(),
                supervisor::kind::<TicketKind>(),
            ],
        };
        RootSupervisor::spawn(Some(root_name(&prefix)), RootSupervisor, args)
            .await
            .map_err(|e| ActorError::Unavailable { kind: "root", id: prefix.clone(), reason: e.to_string() })?;
        tracing::info!(system = %prefix, "actor system started");
        tokio::spawn(payment::dispatch(system.clone(), effects_rx));
        tokio::spawn(payment::sweep(system.clone(), orders, order_sweep));
        Ok(system)
    }

    /// Live actors, failures and restarts per kind.
    pub async fn stats(&self) -> Result<SystemStats, ActorError> {
        Ok(SystemStats {
            schedules: self.kind_stats::<ScheduleKind>().await?,
            patients: self.kind_stats::<PatientKind>().await?,
        })
    }
}
