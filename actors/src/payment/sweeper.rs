//! The open-order sweeper: every `order_sweep` it reads the orders due a look (an unpaid fee order
//! past its expiry, a refund to ask again) from the store and tells each order's actor. Rows, not
//! timers: an order open when the process died is closed after the restart all the same.

use chrono::Utc;
use hospital_store::DataStore;
use std::sync::Arc;
use std::time::Duration;

use super::actor::PaymentKind;
use super::msg::PaymentMsg;
use crate::system::ActorSystem;

/// At most this many orders are told per sweep (the rest next time).
const PER_SWEEP: usize = 256;

pub(crate) async fn sweep(system: ActorSystem, data: Arc<dyn DataStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if system.is_shut_down() {
            return;
        }
        match data.open_orders_due(Utc::now()).await {
            Ok(due) => {
                for o in due.into_iter().take(PER_SWEEP) {
                    if let Err(e) = system.tell::<PaymentKind>(o.order_id, PaymentMsg::Due).await {
                        tracing::warn!(order = %o.order_id, error = %e, "could not hand a due order to its actor");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "the open-order sweep could not read the store"),
        }
    }
}
