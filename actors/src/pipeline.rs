//! The write pipeline of an actor: state changes are applied in memory at once and queued here in
//! order; a task writes everything queued so far in one `BookingWrite` and only then runs the
//! callbacks that answer the callers. So an actor never answers before its change is durable, yet
//! it keeps serving while the disk syncs, and a burst of bookings on one doctor shares one sync.
//! If a write fails the actor is told (`on_failure`) and restarts from the store: memory must
//! never run ahead of the durable truth.
//!
//! A write may carry the public state it changes (a session's places left, `Availability`): the
//! topics are "latest value wins", so once a batch is durable only the last value of each session
//! in it is published (`on_durable`), before the batch's callers are answered.

use hospital_domain::live::Availability;
use hospital_store::{BookingWrite, DataStore, StoreError};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::keyed_lock::KeyedLocks;

type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// One queued write: the rows, the sessions' new public state, and what runs once it is durable.
struct Queued {
    write: BookingWrite,
    topics: Vec<Availability>,
    done: Done,
}

/// A handle to an actor's writer task. Dropping it lets the task finish what is queued and end.
pub struct WritePipeline {
    tx: mpsc::UnboundedSender<Queued>,
}

/// The last value of each session among `topics`, in the order of those last values.
fn latest_per_session(mut topics: Vec<Availability>) -> Vec<Availability> {
    if topics.len() < 2 {
        return topics;
    }
    let mut seen = std::collections::HashSet::new();
    topics.reverse();
    topics.retain(|a| seen.insert(a.session_id));
    topics.reverse();
    topics
}

/// One lock per pipeline owner (an actor's registry name). A writer task holds its owner's lock
/// until everything queued is written, and a new pipeline for the same owner waits for it: so an
/// actor restarted after a panic loads the store only once its predecessor's acknowledged writes
/// have all landed, and never starts behind what callers were told.
static OWNER_LOCKS: std::sync::OnceLock<KeyedLocks> = std::sync::OnceLock::new();

impl WritePipeline {
    /// Waits until no earlier pipeline of `owner` has writes in flight. Call before loading the
    /// owner's state from the store, and pass the guard to `start`.
    pub async fn quiesce(owner: &str) -> tokio::sync::OwnedMutexGuard<()> {
        OWNER_LOCKS.get_or_init(Default::default).lock(owner).await
    }

    /// Starts the writer task, which keeps `guard` until it has written everything queued.
    /// `on_failure` is called once per failed batch; `on_durable` once per durable batch that
    /// changed some session's public state, with the latest value of each.
    pub fn start(
        store: Arc<dyn DataStore>,
        guard: tokio::sync::OwnedMutexGuard<()>,
        on_failure: impl Fn(StoreError) + Send + 'static,
        on_durable: impl Fn(Vec<Availability>) + Send + 'static,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
        tokio::spawn(async move {
            let _guard = guard;
            while let Some(first) = rx.recv().await {
                let (mut writes, mut topics, mut done) = (vec![first.write], first.topics, vec![first.done]);
                // Everything queued meanwhile goes into the same write: one sync for the burst.
                while let Ok(q) = rx.try_recv() {
                    writes.push(q.write);
                    topics.extend(q.topics);
                    done.push(q.done);
                    if done.len() >= 512 {
                        break;
                    }
                }
                let write = BookingWrite::merged(writes);
                metrics::histogram!("booking_write_batch_size").record(done.len() as f64);
                let result = store.apply_booking(write).await;
                match &result {
                    Err(e) => {
                        tracing::error!(error = %e, "booking write failed");
                        on_failure(StoreError::Engine(e.to_string()));
                    }
                    // Only durable changes are announced.
                    Ok(()) if !topics.is_empty() => on_durable(latest_per_session(topics)),
                    Ok(()) => {}
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
        self.push_with_topics(write, Vec::new(), done);
    }

    /// Queues a write that leaves `topics` as the sessions' public state; they are published
    /// (the latest of each session in the batch) once it is durable, before `done` runs.
    pub fn push_with_topics(
        &self,
        write: BookingWrite,
        topics: Vec<Availability>,
        done: impl FnOnce(Result<(), StoreError>) + Send + 'static,
    ) {
        if let Err(mpsc::error::SendError(q)) = self.tx.send(Queued { write, topics, done: Box::new(done) }) {
            (q.done)(Err(StoreError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::schedule::{Period, SessionStatus};
    use hospital_domain::{DepartmentId, DoctorId, SessionId};

    fn avail(session: SessionId, left: u32) -> Availability {
        Availability {
            doctor_id: DoctorId::new(),
            department_id: DepartmentId::new(),
            session_id: session,
            date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            period: Period::Morning,
            status: SessionStatus::Open,
            remaining: vec![left],
            open_from: 0,
            waiting: 0,
        }
    }

    fn order(id: hospital_domain::OrderId, fen: u64) -> hospital_domain::order::Order {
        let now = chrono::Utc::now();
        hospital_domain::order::Order::new(
            id,
            hospital_domain::order::OrderKind::Registration,
            hospital_domain::AccountId::new(),
            "挂号费".into(),
            hospital_domain::Fen::new(fen),
            now,
            now,
        )
    }

    #[test]
    fn a_batch_merges_as_one_write_after_another() {
        use hospital_domain::OrderId;
        let (a, b, c) = (OrderId::new(), OrderId::new(), OrderId::new());
        let writes = vec![
            BookingWrite { orders: vec![order(a, 1), order(b, 2)], ..Default::default() },
            BookingWrite { orders: vec![order(c, 3)], ..Default::default() },
            BookingWrite { orders: vec![order(a, 4)], ..Default::default() },
            BookingWrite::default(),
            BookingWrite { orders: vec![order(c, 5), order(b, 6)], ..Default::default() },
        ];
        let mut one_by_one = BookingWrite::default();
        for w in writes.clone() {
            one_by_one.merge(w);
        }
        let rows = |w: &BookingWrite| w.orders.iter().map(|o| (o.id, o.amount)).collect::<Vec<_>>();
        let batch = BookingWrite::merged(writes);
        assert_eq!(rows(&batch), rows(&one_by_one));
        assert_eq!(
            rows(&batch),
            vec![
                (a, hospital_domain::Fen::new(4)),
                (b, hospital_domain::Fen::new(6)),
                (c, hospital_domain::Fen::new(5))
            ]
        );
    }

    #[test]
    fn a_batch_publishes_the_last_value_of_each_session_once() {
        let (s1, s2) = (SessionId::new(), SessionId::new());
        let out = latest_per_session(vec![avail(s1, 9), avail(s2, 5), avail(s1, 8), avail(s1, 7)]);
        let got: Vec<(SessionId, u32)> = out.iter().map(|a| (a.session_id, a.remaining[0])).collect();
        assert_eq!(got, vec![(s2, 5), (s1, 7)]);
        assert_eq!(latest_per_session(vec![avail(s1, 3)]).len(), 1);
        assert!(latest_per_session(Vec::new()).is_empty());
    }
}
