//! What the back office keeps in memory on every node, and keeps fresh: the role table and the
//! catalogue index are reloaded on every node when any node changes them (`Bus::invalidate`,
//! through the same fan-out as live events: Redis pub/sub between nodes).

use crate::roles::ROLES_CHANGED;
use crate::state::AppState;

/// What `Bus::invalidate` names when staff change the catalogue.
pub const CATALOG_CHANGED: &str = "catalog";

/// Reloads the roles or the catalogue whenever any node says they changed, for as long as the
/// node runs. A missed message (the channel lagged) reloads both.
pub fn follow_invalidations(state: AppState) {
    let mut rx = state.realtime.hub.invalidations();
    tokio::spawn(async move {
        loop {
            let what = match rx.recv().await {
                Ok(w) => vec![w],
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    vec![ROLES_CHANGED.to_string(), CATALOG_CHANGED.to_string()]
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            for w in what {
                let r = match w.as_str() {
                    ROLES_CHANGED => state.roles.reload(state.stores.data.as_ref()).await,
                    CATALOG_CHANGED => state.reload_catalog().await,
                    _ => Ok(()),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, what = %w, "reloading after a change failed");
                }
            }
        }
    });
}

/// Says on every node (this one first, before answering) that `what` changed.
pub async fn changed(state: &AppState, what: &str) -> Result<(), hospital_store::StoreError> {
    match what {
        ROLES_CHANGED => state.roles.reload(state.stores.data.as_ref()).await?,
        CATALOG_CHANGED => state.reload_catalog().await?,
        _ => {}
    }
    state.realtime.bus.invalidate(what).await;
    Ok(())
}
