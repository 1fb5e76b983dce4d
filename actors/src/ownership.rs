//! Ownership of an actor's resource across nodes (ARCHITECTURE.md, "Several nodes"): before a
//! doctor's schedule actor (or an order's payment actor) starts, its node takes the lease
//! `schedule:<doctor>` (`payment:<order>`) in Redis; the
//! actor's first write is its claim (its fence alone), every later write carries the fence, it
//! renews the lease at a third of its lifetime and stops when it cannot, and gives the lease up
//! on a clean stop. A node that stalled past its lease and wakes up still running the actor is
//! then refused by the store (`Conflict::StaleFence`) instead of overwriting the new owner.
//!
//! Beside the leases, short locks without a token (`lock`): a person's turn across nodes.
//!
//! One node needs none of this (`ActorDeps::ownership` is None): its actors own what they run.

use hospital_domain::{DoctorId, OrderId};
use hospital_store::{BookingStore, BookingWrite, Fence, Lease, PaymentStore, PaymentWrite, RedisLeases, StoreError};
use std::future::Future;
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

    /// Takes the lease on `resource` and claims it in the store with `claim` (the actor's kind of
    /// write carrying the fence and nothing else): once this returns, a previous owner's writes
    /// are refused, so what the actor loads next is final.
    pub async fn take<F, Fut>(&self, resource: &str, claim: F) -> Result<Lease, OwnershipError>
    where
        F: FnOnce(Fence) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let Some(lease) = self.leases.acquire(resource, &self.node, self.ttl).await? else {
            let holder = self.leases.holder(resource).await?.map(|(h, _)| h).unwrap_or_default();
            return Err(OwnershipError::HeldElsewhere { resource: resource.to_string(), holder });
        };
        claim(lease.fence()).await?;
        Ok(lease)
    }

    /// `take` for a doctor's schedule: its claim is a booking write.
    pub async fn take_schedule(&self, doctor: DoctorId, store: &dyn BookingStore) -> Result<Lease, OwnershipError> {
        self.take(&hospital_store::schedule_resource(doctor), |fence| {
            store.apply_booking(BookingWrite { fence: Some(fence), ..Default::default() })
        })
        .await
    }

    /// `take` for an order's payment: its claim is a payment write.
    pub async fn take_payment(&self, order: OrderId, store: &dyn PaymentStore) -> Result<Lease, OwnershipError> {
        let claim = |fence| async move {
            store.apply_payment(PaymentWrite { fence: Some(fence), ..Default::default() }).await.map(|_| ())
        };
        self.take(&hospital_store::payment_resource(order), claim).await
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
