//! This node's real-time machinery (`Realtime`, in `AppState.realtime`): the hub of its sockets,
//! the per-account event log and the bus.

use std::sync::Arc;

use super::{bus, hub, log};

/// This node's real-time machinery, shared by every connection.
pub struct Realtime {
    pub hub: Arc<hub::Hub>,
    pub log: log::EventLog,
    pub bus: Arc<bus::Bus>,
}

impl Realtime {
    /// Closes the sockets of a login that ended (`token_hash`), or of every login of the
    /// subject, on every node, and drops it from every node's login cache (returns once every
    /// node did, see `auth::cache`).
    pub async fn revoke(&self, subject: &hospital_store::Subject, token_hash: Option<&str>) {
        if let hospital_store::Subject::Account { id } = subject {
            let r = hub::Revocation { account: *id, token_hash: token_hash.map(str::to_string), ack: None };
            self.bus.revoke(r).await;
        }
    }
}
