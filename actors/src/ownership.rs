//! Ownership of an actor's resource across nodes (ARCHITECTURE.md, "Several nodes"): before an
//! owned actor starts (a doctor's schedule, an order's payment, a session's queue, a
//! conversation, a ticket, an exam, a visit, an account), its node takes the lease on its
//! resource (`schedule:<doctor>`, `payment:<order>`, `queue:<session>`, `chat:<conversation>`,
//! `ticket:<id>`, `exam:<id>`, `visit:<id>`, `account:<id>`) in Redis and claims it in the store
//! (`DataStore::claim_fence`) before it loads anything; every write carries the fence; the actor
//! renews the lease at a third of its lifetime and stops when it cannot (or when a write is
//! refused as stale), and gives the lease up on a clean stop (`Held`). A node that stalled past
//! its lease and wakes up still running the actor is then refused by the store
//! (`Conflict::StaleFence`) instead of overwriting the new owner.
//!
//! Beside the leases, short locks without a token (`lock`): a person's turn across nodes.
//!
//! One node needs none of this (`ActorDeps::ownership` is None): its actors own what they run.

use hospital_store::{Conflict, DataStore, Fence, Lease, RedisLeases, StoreError};
use ractor::concurrency::JoinHandle;
use ractor::{ActorRef, Message};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The leases and this node's name in them.
#[derive(Clone)]
pub struct Ownership {
    leases: RedisLeases,
    node: String,
    ttl: Duration,
}

/// Why an actor could not take its resource.
#[derive(Debug, thiserror::Error)]
pub enum OwnershipError {
    #[error("{resource} is run by another node ({holder})")]
    HeldElsewhere { resource: String, holder: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Ownership {
    /// `node` names this process in the leases (unique per node); `ttl` is how long a lease
    /// outlives a node that stopped renewing it.
    pub fn new(leases: RedisLeases, node: impl Into<String>, ttl: Duration) -> Self {
        Self { leases, node: node.into(), ttl }
    }

    /// Takes the lease on `resource` and claims it in the store (`DataStore::claim_fence`):
    /// once this returns, a previous owner's writes are refused, so what the actor loads next is
    /// final.
    pub async fn take(&self, resource: &str, store: &dyn DataStore) -> Result<Lease, OwnershipError> {
        let Some(lease) = self.leases.acquire(resource, &self.node, self.ttl).await? else {
            let holder = self.leases.holder(resource).await?.map(|(h, _)| h).unwrap_or_default();
            return Err(OwnershipError::HeldElsewhere { resource: resource.to_string(), holder });
        };
        store.claim_fence(&lease.fence()).await?;
        Ok(lease)
    }

    /// Extends `lease`; false when it ran out or passed to another node.
    pub async fn renew(&self, lease: &mut Lease) -> bool {
        match self.leases.renew(lease, self.ttl).await {
            Ok(held) => held,
            Err(e) => {
                // Redis unreachable: the lease will lapse on its own, and so must the actor.
                tracing::warn!(resource = %lease.resource, error = %e, "lease renewal failed");
                false
            }
        }
    }

    /// Gives the lease up (a clean stop), so the next owner need not wait it out.
    pub async fn release(&self, lease: &Lease) {
        if let Err(e) = self.leases.release(lease).await {
            tracing::warn!(resource = %lease.resource, error = %e, "lease release failed; it will lapse");
        }
    }

    /// How often a running actor renews its lease.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// A short lock on `resource` for this node if nobody holds it (a person's turn across
    /// nodes, `real_name`), lapsing after `ttl` if this node dies holding it: the holding's name
    /// to let it go with (`unlock`), or None while another holds it.
    pub(crate) async fn lock(&self, resource: &str, ttl: Duration) -> Result<Option<String>, StoreError> {
        // Unique per holding: a lock is not re-entrant, not even for this node.
        let holding = format!("{}#{}", self.node, NEXT_HOLDING.fetch_add(1, Ordering::Relaxed));
        Ok(self.leases.lock(resource, &holding, ttl).await?.then_some(holding))
    }

    /// Lets go of a lock `lock` gave `holding`.
    pub(crate) async fn unlock(&self, resource: &str, holding: &str) {
        if let Err(e) = self.leases.unlock(resource, holding).await {
            tracing::warn!(%resource, error = %e, "lock release failed; it will lapse");
        }
    }
}

static NEXT_HOLDING: AtomicU64 = AtomicU64::new(1);

/// What an owned actor keeps of its ownership (several nodes): the lease its writes are fenced
/// with, and the timer that renews it. Empty on one node, where every call here does nothing.
#[derive(Default)]
pub(crate) struct Held {
    lease: Option<Lease>,
    renewal: Option<JoinHandle<()>>,
}

impl Held {
    /// Takes `resource` and claims it in `store` when this node runs its actors under leases.
    pub(crate) async fn take(
        ownership: Option<&Ownership>,
        resource: &str,
        store: &dyn DataStore,
    ) -> Result<Self, OwnershipError> {
        let lease = match ownership {
            Some(o) => Some(o.take(resource, store).await?),
            None => None,
        };
        Ok(Held { lease, renewal: None })
    }

    /// Renews the lease every third of its lifetime from now on, by sending `msg` to `myself`
    /// (whose handler calls `renew`).
    pub(crate) fn start_renewing<M: Message>(
        &mut self,
        ownership: Option<&Ownership>,
        myself: &ActorRef<M>,
        msg: fn() -> M,
    ) {
        if let (Some(o), Some(_)) = (ownership, &self.lease) {
            self.renewal = Some(myself.send_interval(o.renew_every(), msg));
        }
    }

    /// The fence every write of the actor carries; None on one node.
    pub(crate) fn fence(&self) -> Option<Fence> {
        self.lease.as_ref().map(Lease::fence)
    }

    /// Extends the lease; false when it was lost (the actor must stop: another node may own its
    /// resource now), and then it is forgotten.
    pub(crate) async fn renew(&mut self, ownership: Option<&Ownership>) -> bool {
        let held = match (ownership, &mut self.lease) {
            (Some(o), Some(lease)) => o.renew(lease).await,
            _ => true,
        };
        if !held {
            self.lose();
        }
        held
    }

    /// The renewal's handler: extends the lease, or when it was lost stops the actor (`myself`,
    /// the `kind` of actor for `id`): another node may own its resource now, so it must not
    /// serve from this memory; the next call starts an actor that takes the lease again, or is
    /// refused. False when it stopped.
    pub(crate) async fn renew_or_stop<M: Message>(
        &mut self,
        ownership: Option<&Ownership>,
        myself: &ActorRef<M>,
        kind: &'static str,
        id: &(dyn std::fmt::Display + Sync),
    ) -> bool {
        let held = self.renew(ownership).await;
        if !held {
            tracing::warn!(kind, %id, "lease lost; stopping");
            myself.stop(Some("lease lost".into()));
        }
        held
    }

    /// Forgets the lease without giving it up: it has passed to another node.
    pub(crate) fn lose(&mut self) {
        self.lease = None;
    }

    /// On a stop: no more renewals, and the lease given up so the next owner need not wait.
    pub(crate) async fn release(&mut self, ownership: Option<&Ownership>) {
        if let Some(t) = self.renewal.take() {
            t.abort();
        }
        if let (Some(o), Some(lease)) = (ownership, self.lease.take()) {
            o.release(&lease).await;
        }
    }

    /// After a write, which it hands back: a `StaleFence` refusal means another node owns the
    /// resource now and this memory may be behind it, so the lease is forgotten and the actor
    /// (`myself`, the `kind` of actor for `id`) stops serving from it; the next call starts an
    /// actor that takes the lease again, or is refused.
    pub(crate) fn after_write<M: Message, T>(
        &mut self,
        written: Result<T, StoreError>,
        myself: &ActorRef<M>,
        kind: &'static str,
        id: &dyn std::fmt::Display,
    ) -> Result<T, StoreError> {
        if let Err(StoreError::Conflict(Conflict::StaleFence)) = &written {
            tracing::warn!(kind, %id, "fence stale: another node owns it now; stopping");
            self.lose();
            myself.stop(Some("fence stale".into()));
        }
        written
    }
}
