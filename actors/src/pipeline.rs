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

impl WritePipeline {
    /// Starts the writer task. `on_failure` is called once per failed batch.
    pub fn start(store: Arc<dyn DataStore>, on_failure: impl Fn(StoreError) + Send + 'static) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<(BookingWrite, Done)>();
        tokio::spawn(async move {
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
