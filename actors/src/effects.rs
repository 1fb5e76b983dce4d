//! The effect dispatcher: takes the `Effect`s booking actors emit once their change is durable
//! (close an unpaid order, refund a paid one) and hands each to the order's payment actor. A
//! schedule actor never waits on a payment provider.

use tokio::sync::mpsc::UnboundedReceiver;

use crate::{ActorSystem, Effect};

pub(crate) async fn dispatch(system: ActorSystem, mut rx: UnboundedReceiver<Effect>) {
    while let Some(effect) = rx.recv().await {
        let system = system.clone();
        // One task per effect: a slow provider call must not hold up the others.
        tokio::spawn(async move {
            if let Err(e) = system.run_effect(effect.clone()).await {
                tracing::warn!(?effect, error = %e, "effect failed; the payment actor's timers will retry");
            }
        });
    }
}
