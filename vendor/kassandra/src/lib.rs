pub mod cql;
pub mod error;
pub mod frame;
pub mod session;
pub mod snapshot;
pub mod storage;

pub use session::KassandraSession;
