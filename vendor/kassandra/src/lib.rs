// Upstream's code as published (0.14.0) warns on today's compiler; the patches (PATCHES.md) do not.
#![allow(mismatched_lifetime_syntaxes, deprecated)]

pub mod cql;
pub mod error;
pub mod frame;
pub mod session;
pub mod snapshot;
pub mod storage;

pub use session::KassandraSession;
