//! The per-account event log that makes resume exact: every personal event gets the account's
//! next sequence number (an atomic counter in the kv: Redis across nodes, the embedded store on
//! one machine) and is kept under `ev:<account>:<seq>` for a day. A client that reconnects with
//! its last sequence number gets exactly the events after it, in order; if any of them is no
//! longer kept (past the bound or the TTL) it is told to reload instead of getting a gap.

use hospital_actors::LiveEvent;
use hospital_domain::AccountId;
use hospital_store::{EphemeralKv, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Events kept per account for resume; further back, the client reloads.
pub const KEEP: u64 = 500;
const TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone)]
pub struct EventLog {
    kv: Arc<dyn EphemeralKv>,
}

/// What a resume gets.
#[derive(Debug)]
pub enum Since {
    Events(Vec<LiveEvent>),
    /// Some events after `last_seq` are no longer kept: reload the state over REST.
    TooOld,
}

fn seq_key(a: AccountId) -> String {
    format!("evseq:{a}")
}
fn event_key(a: AccountId, seq: u64) -> String {
    format!("ev:{a}:{seq}")
}

impl EventLog {
    pub fn new(kv: Arc<dyn EphemeralKv>) -> Self {
        Self { kv }
    }

    /// Numbers and stores a personal event.
    pub async fn append(&self, account: AccountId, mut event: LiveEvent) -> Result<LiveEvent, StoreError> {
        // The counter outlives the events so numbers never restart while a client may hold one.
        let seq = self.kv.incr(&seq_key(account), TTL * 30).await? as u64;
        event.seq = Some(seq);
        self.kv.put(&event_key(account, seq), &serde_json::to_vec(&event).expect("events serialise"), TTL).await?;
        Ok(event)
    }

    /// The latest sequence number handed out (0 if none).
    pub async fn head(&self, account: AccountId) -> Result<u64, StoreError> {
        Ok(self
            .kv
            .get(&seq_key(account))
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    /// The events after `last_seq`, in order, or `TooOld`.
    pub async fn since(&self, account: AccountId, last_seq: u64) -> Result<(Since, u64), StoreError> {
        let head = self.head(account).await?;
        if last_seq >= head {
            return Ok((Since::Events(vec![]), head));
        }
        if head - last_seq > KEEP {
            return Ok((Since::TooOld, head));
        }
        let mut out = Vec::with_capacity((head - last_seq) as usize);
        let mut missing_from = None;
        for seq in last_seq + 1..=head {
            match self.kv.get(&event_key(account, seq)).await? {
                Some(raw) => {
                    if missing_from.is_some() {
                        // A hole before a stored event: expired or lost, not in flight.
                        return Ok((Since::TooOld, head));
                    }
                    match serde_json::from_slice::<LiveEvent>(&raw) {
                        Ok(e) => out.push(e),
                        Err(_) => return Ok((Since::TooOld, head)),
                    }
                }
                None => {
                    missing_from.get_or_insert(seq);
                }
            }
        }
        // Missing only at the end: numbered but not yet stored (the bus numbers, then stores, then
        // delivers), so those events are on their way live.
        let upto = missing_from.map(|s| s - 1).unwrap_or(head);
        Ok((Since::Events(out), upto))
    }
}
