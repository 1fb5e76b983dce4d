//! Runs the conformance suite on every backend available here: the embedded store on a real
//! on-disk directory, Redis (a real redis-server on a free port) for the ephemeral part, and,
//! built with `--features scylla`, ScyllaDB where `SCYLLA_URI` points at a cluster (skipped,
//! with a message, when it is unset).

use hospital_store::{conformance, EmbeddedStore, RedisKv};
use hospital_testkit::RedisServer;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_data_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    conformance::data_store(Arc::new(store.clone())).await;
    conformance::exams(Arc::new(store.clone())).await;
    conformance::records(Arc::new(store.clone())).await;
    conformance::jobs(Arc::new(store.clone())).await;
    conformance::audit(Arc::new(store)).await;
}

/// The key vault opens in a directory of its own, apart from the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_key_vault() {
    let dir = tempfile::tempdir().unwrap();
    let vault = EmbeddedStore::open(dir.path()).unwrap();
    conformance::vault(Arc::new(vault)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_chat() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    conformance::chat(Arc::new(store.clone())).await;
    conformance::chat_reference(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_kv_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    conformance::ephemeral_kv(Arc::new(store.clone())).await;
    conformance::sessions(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kv_and_sessions() {
    let redis = RedisServer::start();
    let kv = RedisKv::connect(&redis.url(), "test").await.unwrap();
    conformance::ephemeral_kv(Arc::new(kv.clone())).await;
    conformance::sessions(Arc::new(kv)).await;
}

/// A busy Redis is waited for up to the response timeout, and only then is a command refused:
/// `CLIENT PAUSE` holds every client's commands for 800 ms; a connection with the default
/// timeout (3 s, not the driver's 500 ms) gets its answer after the pause, one with 200 ms fails
/// (as `unavailable` to a request), and works again once Redis answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_redis_is_waited_for_up_to_the_response_timeout() {
    use hospital_store::{EphemeralKv, StoreError};
    use std::time::{Duration, Instant};
    let redis = RedisServer::start();
    let patient = RedisKv::connect(&redis.url(), "t").await.unwrap();
    let hasty = RedisKv::connect_with(&redis.url(), "t", Duration::from_millis(200)).await.unwrap();
    let ttl = Duration::from_secs(60);
    patient.put("k", b"v", ttl).await.unwrap();
    assert_eq!(hasty.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let mut admin = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let paused = Instant::now();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(800).arg("ALL").query_async(&mut admin).await.unwrap();
    let (waited, refused) = tokio::join!(patient.get("k"), hasty.get("k"));
    assert_eq!(waited.unwrap().as_deref(), Some(&b"v"[..]), "the default timeout outlasts the pause");
    assert!(paused.elapsed() >= Duration::from_millis(700), "the answer came after the pause");
    match refused {
        Err(StoreError::Redis(e)) => assert!(e.is_timeout(), "{e}"),
        other => panic!("a 200 ms timeout fails during an 800 ms pause: {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hasty.get("k").await.unwrap().as_deref(), Some(&b"v"[..]), "and recovers");
}

/// Durability: what was acknowledged is there after the store is dropped and reopened (a
/// booking write included, under every key), and the sweeper deletes expired rows from disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_reopen_and_sweeps() {
    use chrono::NaiveDate;
    use hospital_domain::booking::SessionBook;
    use hospital_domain::{AccountId, DepartmentId, DoctorId};
    use hospital_store::{AccountStore, BookingStore, BookingWrite, EphemeralKv};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let a = conformance::sample_account();
    let date = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let session = conformance::sample_session(DoctorId::new(), DepartmentId::new(), date, 3);
    let (held, order) =
        conformance::sample_hold(&mut SessionBook::new(session.clone(), [], vec![]), 0, AccountId::new(), "person");
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.create_account(&a).await.unwrap();
        let write = BookingWrite {
            appointments: vec![held.clone()],
            orders: vec![order.clone()],
            sessions: vec![session.clone()],
            ..Default::default()
        };
        store.apply_booking(write).await.unwrap();
        store.put("short", b"x", Duration::from_millis(50)).await.unwrap();
        store.put("long", b"y", Duration::from_secs(600)).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.account(a.id).await.unwrap(), Some(a));
    assert_eq!(store.appointment(held.id).await.unwrap().as_ref(), Some(&held));
    assert_eq!(store.appointments_of_doctor(held.doctor_id, date, date).await.unwrap(), vec![held.clone()]);
    assert_eq!(store.appointments_of_account(held.account_id).await.unwrap(), vec![held.clone()]);
    assert_eq!(store.appointments_of_person("person", date, date).await.unwrap(), vec![held.clone()]);
    assert_eq!(store.order(order.id).await.unwrap(), Some(order));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let swept = store.engine().sweep_expired().await.unwrap();
    assert_eq!(swept, 1, "exactly the expired row is swept");
    assert!(store.get("long").await.unwrap().is_some());
}

/// The ScyllaDB backend against a real cluster: `SCYLLA_URI=127.0.0.1:9042 cargo test -p
/// hospital-store --features scylla --test conformance scylla_backend`. Each run creates a fresh
/// keyspace (replication factor 1, for a single-node test cluster) and drops it afterwards.
#[cfg(feature = "scylla")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scylla_backend() {
    use hospital_store::scylla::ScyllaStore;
    let Ok(uri) = std::env::var("SCYLLA_URI") else {
        println!("SCYLLA_URI not set: ScyllaDB conformance skipped");
        return;
    };
    let keyspace = format!("hospital_test_{}", uuid::Uuid::new_v4().simple());
    let store = ScyllaStore::connect(&uri, &keyspace).await.unwrap().with_replication_factor(1);
    store.create_schema().await.unwrap();
    // Accounts, staff, catalogue, schedules and bookings (`conformance::booking`, whose large
    // clinic stop makes apply_booking split its write into several logged batches).
    conformance::data_store(Arc::new(store.clone())).await;
    conformance::exams(Arc::new(store.clone())).await;
    conformance::audit(Arc::new(store.clone())).await;
    conformance::chat(Arc::new(store.clone())).await;
    conformance::chat_reference(Arc::new(store.clone())).await;
    conformance::records(Arc::new(store.clone())).await;
    conformance::jobs(Arc::new(store.clone())).await;
    conformance::vault(Arc::new(store.clone())).await;
    conformance::ephemeral_kv(Arc::new(store.clone())).await;
    conformance::sessions(Arc::new(store.clone())).await;
    store.session().query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ()).await.unwrap();
}
