//! The embedded backend: every store trait over an embedded LSM engine in one data directory
//! (see `engine` for durability and group commit, `keys` for how CQL primary keys become byte
//! keys).

mod accounts;
mod audit;
mod backoffice;
mod booking;
mod catalog;
mod chat;
pub mod engine;
mod exams;
mod index;
mod jobs;
pub mod keys;
mod kv;
mod migrate;
mod notify;
mod outbox;
mod payments;
#[cfg(feature = "scylla")]
pub(crate) use payments::{open_shard as payments_shard, OPEN_ORDER_SHARDS};
mod persons;
mod presence;
mod queues;
mod records;
pub mod tables;
mod vault;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::traits::DataStore;
use engine::Engine;

/// The embedded store. Cheap to clone: clones share one engine.
#[derive(Clone)]
pub struct EmbeddedStore {
    engine: Arc<Engine>,
    /// The hospital's zone: which local day and hour a booking counts under (analytics).
    zone: hospital_domain::time::HospitalZone,
    /// Whether booking writes add their analytics counters (always, but for the benchmark that
    /// measures what they cost).
    rollups: bool,
    /// Whether this store also keeps the live-event log (one machine without Redis: it is the
    /// `EphemeralKv` too): then a booking write numbers its plain events in the log itself
    /// (`PendingEvent::placed`) instead of leaving them in the outbox for the bus to log.
    keeps_event_log: bool,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`. Call `start_sweeper` from inside a tokio
    /// runtime to have expired rows deleted in the background.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            engine: Arc::new(Engine::open(dir)?),
            zone: Default::default(),
            rollups: true,
            keeps_event_log: false,
        })
    }

    /// The same store, counting analytics in `zone` (the hospital's; Asia/Shanghai by default).
    pub fn with_zone(mut self, zone: hospital_domain::time::HospitalZone) -> Self {
        self.zone = zone;
        self
    }

    /// The same store with booking writes adding analytics counters (`true`, the default) or
    /// not (only to measure what they cost: `store/benches/analytics.rs`).
    pub fn with_rollups(mut self, on: bool) -> Self {
        self.rollups = on;
        self
    }

    /// The same store, logging booking writes' plain live events itself (`true`): only where it
    /// is also the `EphemeralKv` the gateway's event log uses, or the events would be numbered
    /// in a log nobody reads.
    pub fn with_event_log(mut self, on: bool) -> Self {
        self.keeps_event_log = on;
        self
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Deletes expired rows every `every`, for as long as the store lives, and reports the
    /// engine's size then (`store_disk_bytes`, `store_journals`, `store_segments`,
    /// `store_write_buffer_bytes`): an LSM's disk grows between compactions and its memtables
    /// hold what is not flushed yet, which an operator wants to see before the disk fills.
    pub fn start_sweeper(&self, every: Duration) {
        let weak = Arc::downgrade(&self.engine);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { break };
                match engine.sweep_expired().await {
                    Ok(n) if n > 0 => tracing::debug!(rows = n, "swept expired rows"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sweeping expired rows failed"),
                }
                let s = engine.stats();
                metrics::gauge!("store_disk_bytes").set(s.disk_bytes as f64);
                metrics::gauge!("store_journals").set(s.journals as f64);
                metrics::gauge!("store_segments").set(s.segments as f64);
                metrics::gauge!("store_write_buffer_bytes").set(s.write_buffer_bytes as f64);
            }
        });
    }
}

#[async_trait]
impl DataStore for EmbeddedStore {
    async fn ping(&self) -> Result<()> {
        self.engine.read(|_| Ok(()))
    }

    async fn claim_fence(&self, fence: &crate::Fence) -> Result<()> {
        let fence = fence.clone();
        self.engine.write(move |ctx| booking::check_fence(ctx, Some(&fence))).await
    }

    async fn prepare_for_burst(&self) -> Result<bool> {
        self.engine.rotate_memtable(engine::ROTATE_AT_LEAST)
    }
}
