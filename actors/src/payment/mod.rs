//! The payment actor: one per order (PAY-4, PAY-6). It is the only writer of its order, so each
//! provider notification is handled exactly once (a repeat finds the order already paid and the
//! notification id already seen), a late notification is chased by querying the provider, an
//! order whose hold lapsed is closed at the provider, and refunds are asked for and tracked.
//!
//! Here: `msg` (messages, `PaymentError`), `state` (the order and what the provider's answers do
//! to it), `actor` (the handler, and the kind), `api` (its `ActorSystem` methods, and the effect
//! dispatcher), `checkout` (a fee order made from a 就诊人's items), `balance` (top-ups, orders paid
//! from the balance, second payments given back), `insurance` (its insurance
//! part: pre-settlement, confirmation, reversal, refund), `sweeper` (open orders due a
//! look, after restarts too).

mod actor;
mod api;
mod balance;
mod checkout;
mod insurance;
mod msg;
mod state;
mod sweeper;

pub use actor::{PaymentActor, PaymentKind};
pub(crate) use api::dispatch;
pub use balance::MAX_TOP_UP;
pub use checkout::MAX_ITEMS;
pub use msg::{AlipayPayment, PaymentError, PaymentMsg};
pub use state::{PaymentArgs, PaymentState};
pub(crate) use sweeper::sweep;
