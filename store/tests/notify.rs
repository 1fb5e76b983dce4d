//! The notification conformance suite (`conformance::notify`) on the embedded store, on a real
//! on-disk directory, and on ScyllaDB when built with `--features scylla` and `SCYLLA_URI` set.

use hospital_store::{conformance, EmbeddedStore};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_notify() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    conformance::notify(Arc::new(store)).await;
}

/// `SCYLLA_URI=127.0.0.1:9042 cargo test -p hospital-store --features scylla --test notify`.
#[cfg(feature = "scylla")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_notify() {
    use hospital_store::scylla::ScyllaStore;
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        println!("SCYLLA_URI not set: ScyllaDB notify conformance skipped");
        return;
    };
    let keyspace = format!("hospital_test_{}", uuid::Uuid::new_v4().simple());
    let store = ScyllaStore::connect(&uri, &keyspace).await.unwrap().with_replication_factor(1);
    store.create_schema().await.unwrap();
    conformance::notify(Arc::new(store.clone())).await;
    store.session().query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ()).await.unwrap();
}
