//! The write pipeline of an actor: state changes are applied in memory at once and queued here in
//! order; a task writes everything queued so far in one `BookingWrite` and only then runs the
//! callbacks that answer the callers. So an actor never answers before its change is durable, yet
//! it keeps serving while the disk syncs, and a burst of bookings on one doctor shares one sync.
//! If a write fails the actor is told (`on_failure`) and restarts from the store: memory must
//! never run ahead of the durable truth.

use hospital_store::{BookingWrite, DataStore, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A handle to an actor's writer task. Dropping it lets the task finish what is queued and end.
pub struct WritePipeline {
    tx: mpsc::UnboundedSender<(BookingWrite, Done)>,
}

/// One lock per pipeline owner (an actor's registry name). A writer task holds its owner's lock
/// until everything queued is written, and a new pipeline for the same owner waits for it: so an
/// actor restarted after a panic loads the store only once its predecessor's acknowledged writes
/// have all landed, and never starts behind what callers were told.
fn owner_lock(owner: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let mut map = LOCKS.get_or_init(Default::default).lock().expect("pipeline lock map");
    map.entry(owner.to_string()).or_default().clone()
}

impl WritePipeline {
    /// Waits until no earlier pipeline of `owner` has writes in flight. Call before loading the
    /// owner's state from the store, and pass the guard to `start`.
    pub async fn quiesce(owner: &str) -> tokio::sync::OwnedMutexGuard<()> {
        owner_lock(owner).lock_owned().await
    }

    /// Starts the writer task, which keeps `guard` until it has written everything queued.
    /// `on_failure` is called once per failed batch.
    pub fn start(
        store: Arc<dyn DataStore>,
        guard: tokio::sync::OwnedMutexGuard<()>,
        on_failure: impl Fn(StoreError) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(BookingWrite, Done)>();
        tokio::spawn(async move {
            let _guard = guard;
            while let Some(first) = rx.recv().await {
                let (mut write, mut done) = (first.0, vec![first.1]);
                // Everything queued meanwhile goes into the same write: one sync for the burst.
                while let Ok((w, d)) = rx.try_recv() {
                    write.merge(w);
                    done.push(d);
                    if done.len() >= 512 {
                        break;
                    }
                }
                metrics::histogram!("booking_write_batch_size").record(done.len() as f64);
                let result = store.apply_booking(write).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "booking write failed");
                    on_failure(StoreError::Engine(e.to_string()));
                }
                for d in done {
                    d(match &result {
                        Ok(()) => Ok(()),
                        Err(e) => Err(StoreError::Engine(e.to_string())),
                    });
                }
            }
        });
        Self { tx }
    }

    /// Queues a write; `done` runs once it is durable (or failed).
    pub fn push(&self, write: BookingWrite, done: impl FnOnce(Result<(), StoreError>) + Send + 'static) {
        if let Err(mpsc::error::SendError((_, d))) = self.tx.send((write, Box::new(done))) {
            d(Err(StoreError::Closed));
        }
    }
}
