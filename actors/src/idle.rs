//! Idle detection shared by the per-id actors: a periodic tick (never a sleep in a handler) and
//! the time of the last real message. When idle too long the actor drains: messages already
//! queued are still answered, later sends fail at once, so a caller can safely retry them on a
//! fresh actor.

use ractor::concurrency::JoinHandle;
use ractor::{ActorRef, Message};
use std::time::{Duration, Instant};

pub(crate) struct IdleClock {
    timeout: Duration,
    last_active: Instant,
    ticker: Option<JoinHandle<()>>,
}

impl IdleClock {
    pub(crate) fn new(timeout: Duration) -> Self {
        Self { timeout, last_active: Instant::now(), ticker: None }
    }

    /// Starts the tick. Ticking a few times per timeout bounds how late an idle actor stops
    /// without waking it often; 30 s is plenty for production timeouts of many minutes.
    pub(crate) fn start<M: Message>(&mut self, myself: &ActorRef<M>, tick: fn() -> M) {
        let period = (self.timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(30));
        self.ticker = Some(myself.send_interval(period, tick));
    }

    /// Records a real message (ticks do not count).
    pub(crate) fn touch(&mut self) {
        self.last_active = Instant::now();
    }

    pub(crate) fn expired(&self) -> bool {
        self.last_active.elapsed() >= self.timeout
    }

    /// On a tick: if the actor has been idle for the timeout and `busy` is false, stops the ticker
    /// and drains the actor (queued messages are still answered; later sends fail, so callers
    /// retry on a fresh actor). Returns whether it did.
    pub(crate) fn drain_if_idle<M: Message>(
        &mut self,
        myself: &ActorRef<M>,
        busy: bool,
        what: &dyn std::fmt::Display,
    ) -> bool {
        if !self.expired() || busy {
            return false;
        }
        tracing::debug!(actor = %what, "idle; stopping");
        self.stop();
        let _ = myself.drain();
        true
    }

    /// Stops the ticker; it would also stop on its own at the first failed send.
    pub(crate) fn stop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

impl Drop for IdleClock {
    fn drop(&mut self) {
        self.stop();
    }
}
