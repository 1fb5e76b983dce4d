//! Verifying a chain: walk it in seq order, hour bucket by hour bucket from its first entry to
//! its head, and check every link (`AuditEntry::check_after`: seq, chain, prev_hash, the hash of
//! the content, time order), that each row is stored under its own seq and hour, that nothing is
//! missing before the head, and that the last entry is the head. Any stored byte changed in an
//! entry fails one of these; the report names the first broken seq.
//!
//! What a hash chain cannot show on its own: a rewrite of the whole tail (every later entry
//! and the head recomputed). Exporting the head (`hospital audit verify` prints it) to somewhere
//! the store's writers cannot change, now and then, anchors everything before it.

use hospital_domain::audit::{AuditEntry, Bucket};

use super::{AuditStore, ChainHead};
use crate::error::Result;

/// The result of walking one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub chain: String,
    /// Entries that checked out, from seq 1 on.
    pub verified: u64,
    pub head: Option<ChainHead>,
    /// The first entry that does not check out, and why.
    pub broken: Option<(u64, String)>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Walks `chain` and reports the first broken entry, if any.
pub async fn verify_chain(store: &dyn AuditStore, chain: &str) -> Result<ChainReport> {
    let head = store.audit_head(chain).await?;
    let mut report = ChainReport { chain: chain.to_string(), verified: 0, head: head.clone(), broken: None };
    let Some(head) = head else { return Ok(report) };
    let mut prev: Option<AuditEntry> = None;
    let (first, last) = (Bucket::Hour.of(head.first_at), Bucket::Hour.of(head.at));
    'walk: for hour in first..=last {
        for row in store.audit_chain_hour(chain, hour).await? {
            let expected = prev.as_ref().map_or(1, |p| p.seq + 1);
            if row.seq > head.seq {
                break 'walk; // past the head: not part of the acknowledged chain
            }
            if row.seq > expected {
                report.broken = Some((expected, "missing".into()));
                return Ok(report);
            }
            let e = match row.entry {
                Ok(e) => e,
                Err(why) => {
                    report.broken = Some((row.seq, format!("unreadable: {why}")));
                    return Ok(report);
                }
            };
            let why = if e.seq != row.seq {
                Some(format!("stored under seq {} but says {}", row.seq, e.seq))
            } else if Bucket::Hour.of(e.at) != hour {
                Some("stored in another hour than its time".into())
            } else {
                e.check_after(chain, prev.as_ref()).err().map(|b| b.to_string())
            };
            if let Some(why) = why {
                report.broken = Some((row.seq, why));
                return Ok(report);
            }
            report.verified += 1;
            prev = Some(e);
        }
    }
    match prev {
        Some(p) if p.seq == head.seq && p.hash == head.hash => {}
        Some(p) if p.seq == head.seq => report.broken = Some((p.seq, "differs from the chain's head".into())),
        p => {
            let missing = p.map_or(1, |p| p.seq + 1);
            report.broken = Some((missing, format!("missing (the head is seq {})", head.seq)));
        }
    }
    Ok(report)
}
