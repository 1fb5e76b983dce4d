//! The conformance suite: one set of checks, written against the store traits, that every
//! backend must pass (embedded, Redis for the ephemeral part, ScyllaDB where a cluster is at
//! hand). Each function panics with a message naming the broken promise.
//!
//! By area: `accounts` (accounts, patients, persons, staff), `catalogue`, `booking` (and the
//! outbox), `kv` (the ephemeral kv, login sessions), `exams` (and queues), `notify`, `audit`,
//! `records` (and the key vault, durable jobs), `chat` (conversations, dispatchers, the chat's
//! reference data); `samples`, the rows they (and other crates' tests) build.

mod accounts;
mod audit;
mod backoffice;
mod booking;
mod catalogue;
mod chat;
mod exams;
mod fences;
mod kv;
mod notify;
mod payments;
mod records;
mod samples;

pub use accounts::{accounts, patients, persons, staff};
pub use audit::audit;
pub use backoffice::backoffice;
pub use booking::{booking, outbox, sample_hold, sample_session, stored_sample_book};
pub use catalogue::catalogue;
pub use chat::{chat, chat_reference};
pub use exams::{exams, queues};
pub use fences::{
    account_fence, conversation_fence, exam_fence, payment_fence, queue_fence, ticket_fence, visit_fence,
};
pub use kv::{ephemeral_kv, sessions};
pub use notify::notify;
pub use payments::payments;
pub use records::{jobs, records, vault};
pub use samples::{sample_account, sample_patient};

use std::sync::Arc;

use crate::traits::DataStore;

/// Every data-store check in turn.
pub async fn data_store(store: Arc<dyn DataStore>) {
    accounts(store.clone()).await;
    patients(store.clone()).await;
    persons(store.clone()).await;
    staff(store.clone()).await;
    catalogue(store.clone()).await;
    booking(store.clone()).await;
    outbox(store.clone()).await;
    backoffice(store.clone()).await;
    payments(store.clone()).await;
    store.ping().await.unwrap();
}
