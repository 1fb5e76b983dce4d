//! The store's error type. Callers match on `Conflict` (a uniqueness rule said no); everything
//! else is an internal failure the gateway logs and answers with 500/503.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key is taken (a phone already registered, a username in use, ...).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The embedded engine failed (I/O, corruption, a full disk).
    #[error("embedded store: {0}")]
    Engine(String),
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// ScyllaDB failed, is unreachable, or answered something the backend did not expect.
    #[error("scylla: {0}")]
    Scylla(String),
    /// A stored row did not decode: a bug or a schema change without migration.
    #[error("stored row in {table} does not decode: {source}")]
    Decode {
        table: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A sealed field did not decrypt: wrong key, or tampering.
    #[error("sealed field: {0}")]
    Cipher(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Engine(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Engine(e.to_string())
            }
        }
    )*};
}
from_redb!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);
