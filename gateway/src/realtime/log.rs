//! The per-account event log that makes resume exact: every personal event gets the account's
//! next sequence number and is kept for a day, at most `KEEP` per account, in the ephemeral kv
//! (Redis across nodes, the embedded store on one machine). A number and its event are written
//! together (`EphemeralKv::log_append_all`), and each event once (by its outbox id), so the numbers
//! have no holes and a re-delivered event is not numbered twice. A client that reconnects with
//! its last sequence number gets exactly the events after it, in order; if any of them is no
//! longer kept it is told to reload instead of getting a gap. On one machine without Redis a
//! booking write numbers its plain events itself, in the same log (`hospital_store::Placed`).

use hospital_domain::AccountId;
use hospital_store::outbox::{account_stream, LOG_TTL};
pub use hospital_store::Logged;
use hospital_store::{EphemeralKv, PendingEvent, StoreError};
use std::sync::Arc;

/// Events kept per account for resume; further back, the client reloads.
pub const KEEP: u64 = 500;

#[derive(Clone)]
pub struct EventLog {
    kv: Arc<dyn EphemeralKv>,
}

/// What a resume gets.
#[derive(Debug)]
pub enum Since {
    Events(Vec<Logged>),
    /// Some events after `last_seq` are no longer kept: reload the state over REST.
    TooOld,
}

impl EventLog {
    pub fn new(kv: Arc<dyn EphemeralKv>) -> Self {
        Self { kv }
    }

    /// Numbers and stores each of one account's events, in order, once per event id (None for
    /// one logged before), in one step of the kv where it has one (`EphemeralKv::log_append_all`).
    pub async fn append_all(
        &self,
        account: AccountId,
        events: Vec<PendingEvent>,
    ) -> Result<Vec<Option<Logged>>, StoreError> {
        let at_ms = now_ms();
        let bodies: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| {
                debug_assert_eq!(e.account, account);
                (e.id.to_string(), e.log_body(at_ms))
            })
            .collect();
        let items: Vec<(&str, &[u8])> = bodies.iter().map(|(id, b)| (id.as_str(), b.as_slice())).collect();
        let numbers = self.kv.log_append_all(&account_stream(account), &items, LOG_TTL).await?;
        Ok(events
            .into_iter()
            .zip(numbers)
            .map(|(e, (seq, fresh))| fresh.then_some(Logged { seq, event: e.event, at_ms }))
            .collect())
    }

    /// The latest sequence number handed out (0 if none).
    pub async fn head(&self, account: AccountId) -> Result<u64, StoreError> {
        self.kv.log_head(&account_stream(account)).await
    }

    /// The events `from..=to`, in order, or `TooOld` if any is no longer kept (past the bound,
    /// the TTL, or lost: a number is never handed out without its event, so a missing one is
    /// gone, not on its way).
    pub async fn range(&self, account: AccountId, from: u64, to: u64) -> Result<Since, StoreError> {
        if to < from {
            return Ok(Since::Events(Vec::new()));
        }
        if to - from >= KEEP {
            return Ok(Since::TooOld);
        }
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        for (seq, raw) in (from..=to).zip(self.kv.log_range(&account_stream(account), from, to).await?) {
            let Some(raw) = raw else { return Ok(Since::TooOld) };
            match serde_json::from_slice::<Logged>(&raw) {
                Ok(mut l) => {
                    l.seq = seq;
                    out.push(l);
                }
                Err(_) => return Ok(Since::TooOld),
            }
        }
        Ok(Since::Events(out))
    }
}

/// Milliseconds since the Unix epoch: when an event was logged (fan-out latency is measured from it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::live::{PersonalEvent, UnreadCount};

    #[tokio::test]
    async fn an_event_logged_from_its_outbox_bytes_reads_back_as_the_event() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Arc::new(hospital_store::embedded::EmbeddedStore::open(dir.path()).unwrap());
        let log = EventLog::new(kv);
        let account = AccountId::new();
        let plain = PendingEvent::new(account, PersonalEvent::Unread(UnreadCount { count: 7 }));
        let mut encoded = PendingEvent::new(account, PersonalEvent::Unread(UnreadCount { count: 8 }));
        encoded.encode();
        let numbered = log.append_all(account, vec![plain.clone(), encoded.clone()]).await.unwrap();
        let seqs: Vec<u64> = numbered.iter().map(|l| l.as_ref().unwrap().seq).collect();
        assert_eq!(seqs, [1, 2]);
        let Since::Events(back) = log.range(account, 1, 2).await.unwrap() else { panic!("kept") };
        let back: Vec<(u64, PersonalEvent)> = back.into_iter().map(|l| (l.seq, l.event)).collect();
        assert_eq!(back, [(1, plain.event), (2, encoded.event.clone())]);
        // Logged again (a sweep after a crash): not numbered twice.
        assert_eq!(log.append_all(account, vec![encoded]).await.unwrap(), [None]);
    }
}
