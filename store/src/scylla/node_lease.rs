//! `NodeLeases` on ScyllaDB: the `node_lease` row, taken and renewed by lightweight transactions
//! with a TTL, so that only one node runs a keyspace's actors (schema.cql says why).

use async_trait::async_trait;
use std::time::Duration;

use super::{ttl_secs, ScyllaStore};
use crate::error::Result;
use crate::lease::NodeLeases;

const CLAIM: &str = "INSERT INTO {ks}.node_lease (name, holder) VALUES ('actors', ?) IF NOT EXISTS USING TTL ?";
const RENEW: &str = "UPDATE {ks}.node_lease USING TTL ? SET holder = ? WHERE name = 'actors' IF holder = ?";
const RELEASE: &str = "DELETE FROM {ks}.node_lease WHERE name = 'actors' IF holder = ?";

#[async_trait]
impl NodeLeases for ScyllaStore {
    async fn claim_node(&self, holder: &str, ttl: Duration) -> Result<Option<String>> {
        let l = self.lwt(CLAIM, (holder, ttl_secs(ttl))).await?;
        if l.applied {
            return Ok(None);
        }
        match l.text("holder") {
            // Ours already (a restart within the TTL under the same name): renew it.
            Some(h) if h == holder => match self.renew_node(holder, ttl).await? {
                true => Ok(None),
                false => Ok(Some("another node (the lease changed hands while it was renewed)".into())),
            },
            Some(other) => Ok(Some(other)),
            None => Ok(Some("another node".into())),
        }
    }

    async fn renew_node(&self, holder: &str, ttl: Duration) -> Result<bool> {
        Ok(self.lwt(RENEW, (ttl_secs(ttl), holder, holder)).await?.applied)
    }

    async fn release_node(&self, holder: &str) -> Result<()> {
        self.lwt(RELEASE, (holder,)).await?;
        Ok(())
    }
}
