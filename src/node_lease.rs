//! This node's hold on the store's node lease (`NodeLeases`; on ScyllaDB, where several nodes
//! could share one keyspace): taken before anything else runs, renewed at a third of its TTL,
//! given up on a clean stop. Losing it ends the node, since another may then take over.

use anyhow::bail;
use hospital_store::NodeLeases;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The lease while this node holds it.
pub struct NodeLease {
    leases: Arc<dyn NodeLeases>,
    holder: String,
    lost: watch::Receiver<Option<String>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl NodeLease {
    /// Takes the lease as `name` (else host, process id and a random part), or refuses to start
    /// with who has it.
    pub async fn take(leases: Arc<dyn NodeLeases>, name: Option<String>, ttl: Duration) -> anyhow::Result<Self> {
        let holder = name.unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}:{}:{}", host.trim(), std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
        });
        if let Some(other) = leases.claim_node(&holder, ttl).await? {
            bail!(
                "another node ({other}) runs the actors on this keyspace: two would book the same places \
                 (one node per keyspace until each actor's ownership is fenced on ScyllaDB: ARCHITECTURE.md, \
                 \"Several nodes\"). Stop it, or start this one up to {}s after it died.",
                ttl.as_secs()
            );
        }
        tracing::info!(%holder, ttl_secs = ttl.as_secs(), "took the node lease");
        let (tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew(leases.clone(), holder.clone(), ttl, tx));
        Ok(Self { leases, holder, lost, renewer })
    }

    /// Resolves with why, once the lease is lost (another node has it, or it could not be
    /// renewed before it ran out).
    pub async fn lost(&mut self) -> String {
        match self.lost.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the renewal task ended".into(),
        }
    }

    /// Stops renewing and gives the lease up.
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self.leases.release_node(&self.holder).await {
            tracing::warn!(error = %e, "giving up the node lease failed; it lapses with its TTL");
        }
    }
}

async fn renew(leases: Arc<dyn NodeLeases>, holder: String, ttl: Duration, lost: watch::Sender<Option<String>>) {
    let mut held_until = Instant::now() + ttl;
    loop {
        tokio::time::sleep(ttl / 3).await;
        let asked = Instant::now();
        match leases.renew_node(&holder, ttl).await {
            Ok(true) => held_until = asked + ttl,
            Ok(false) => {
                let _ = lost.send(Some("another node holds the node lease".into()));
                return;
            }
            // The store is unreachable for now: keep trying while the lease still runs.
            Err(e) if Instant::now() + ttl / 3 < held_until => {
                tracing::warn!(error = %e, "renewing the node lease failed; trying again");
            }
            Err(e) => {
                let _ = lost.send(Some(format!("the node lease could not be renewed before it ran out: {e}")));
                return;
            }
        }
    }
}
