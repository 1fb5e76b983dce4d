//! Ownership by lease with a fencing token: leases in a real Redis (`RedisLeases`), the fence in
//! the real embedded store. Node A owns a doctor's schedule, stalls past its lease, node B takes
//! over with a newer token and writes; A, waking up still holding its old token, cannot write
//! any more: the store refuses the whole write and keeps B's.

use chrono::{NaiveDate, Utc};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::{AccountId, DoctorId};
use hospital_store::conformance::{sample_hold, stored_sample_book};
use hospital_store::{BookingStore, BookingWrite, Conflict, EmbeddedStore, RedisKv, RedisLeases, StoreError};
use hospital_testkit::RedisServer;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_with_an_old_token_cannot_write_after_a_newer_owner_took_over() {
    let redis = RedisServer::start();
    let kv = RedisKv::connect(&redis.url(), "fence-test").await.unwrap();
    let leases = RedisLeases::new(kv.connection(), "fence-test");
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();

    let doctor = DoctorId::new();
    let resource = hospital_store::schedule_resource(doctor);
    let mut book = stored_sample_book(&store, doctor, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(), 2).await;

    // Node A takes the lease and writes a hold under it.
    let ttl = Duration::from_millis(300);
    let mut a = leases.acquire(&resource, "node-a", ttl).await.unwrap().expect("the lease is free");
    assert!(leases.acquire(&resource, "node-b", ttl).await.unwrap().is_none(), "held by A");
    let again = leases.acquire(&resource, "node-a", ttl).await.unwrap().unwrap();
    assert_eq!(again.token, a.token, "the holder extending its lease keeps its token");
    // A write may begin until two thirds of the lease's lifetime after it was taken or renewed.
    let now = Utc::now().timestamp_micros();
    assert!(a.until_us > now && a.until_us <= now + 200_000, "{} vs {now}", a.until_us);
    assert_eq!(a.fence().until_us, Some(a.until_us));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = a.until_us;
    assert!(leases.renew(&mut a, ttl).await.unwrap());
    assert!(a.until_us > before, "a renewal moves the deadline on");
    let (held, order) = sample_hold(&mut book, 0, AccountId::new(), "person-1");
    let w = BookingWrite {
        appointments: vec![held.clone()],
        orders: vec![order],
        fence: Some(a.fence()),
        ..Default::default()
    };
    store.apply_booking(w).await.unwrap();

    // A stalls: its lease runs out (nobody renews it) and B takes over with a newer token.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let b = loop {
        if let Some(b) = leases.acquire(&resource, "node-b", ttl * 20).await.unwrap() {
            break b;
        }
        assert!(tokio::time::Instant::now() < deadline, "A's lease never ran out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(b.token > a.token, "a new holder gets a newer token");
    assert_eq!(leases.holder(&resource).await.unwrap(), Some(("node-b".to_string(), b.token)));

    // B (which loaded the store) cancels A's hold under its own token.
    let cancelled = book.cancel(held.id, Utc::now(), hospital_domain::appointment::CancelReason::Patient).unwrap();
    let w = BookingWrite { appointments: vec![cancelled.clone()], fence: Some(b.fence()), ..Default::default() };
    store.apply_booking(w).await.unwrap();

    // A wakes up, still believing it owns the doctor: its renewal fails, and its write (a hold
    // that would overwrite B's cancellation and take a second place) is refused as a whole.
    let before = a.until_us;
    assert!(!leases.renew(&mut a, ttl).await.unwrap(), "A's lease is gone");
    assert_eq!(a.until_us, before, "a failed renewal does not move the deadline");
    let (stale_hold, stale_order) = sample_hold(&mut book, 0, AccountId::new(), "person-2");
    let w = BookingWrite {
        appointments: vec![held.clone(), stale_hold.clone()],
        orders: vec![stale_order.clone()],
        fence: Some(a.fence()),
        ..Default::default()
    };
    let r = store.apply_booking(w).await;
    assert!(matches!(r, Err(StoreError::Conflict(Conflict::StaleFence))), "{r:?}");
    let stored = store.appointment(held.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AppointmentStatus::Cancelled, "B's write stands");
    assert!(store.appointment(stale_hold.id).await.unwrap().is_none(), "nothing of the refused write landed");
    assert!(store.order(stale_order.id).await.unwrap().is_none());
    assert!(!leases.release(&a).await.unwrap(), "A cannot release what it no longer holds");

    // B goes on writing under its token; a write without a fence (one node) is not fenced.
    let (next, next_order) = sample_hold(&mut book, 0, AccountId::new(), "person-3");
    let w = BookingWrite {
        appointments: vec![next.clone()],
        orders: vec![next_order],
        fence: Some(b.fence()),
        ..Default::default()
    };
    store.apply_booking(w).await.unwrap();
    assert_eq!(store.appointment(next.id).await.unwrap().unwrap().status, AppointmentStatus::Held);

    // B hands over cleanly: the next holder need not wait, and its token is newer still. A new
    // holder's first write is its claim (the store learns a token when it is written), made
    // before it serves anything: a fence alone is a write.
    assert!(leases.release(&b).await.unwrap());
    let c = leases.acquire(&resource, "node-c", ttl).await.unwrap().expect("released");
    assert!(c.token > b.token);
    store.apply_booking(BookingWrite { fence: Some(c.fence()), ..Default::default() }).await.unwrap();
    let w = BookingWrite { appointments: vec![next.clone()], fence: Some(b.fence()), ..Default::default() };
    assert!(matches!(store.apply_booking(w).await, Err(StoreError::Conflict(Conflict::StaleFence))));
}

/// The short locks beside the leases (a person's turn across nodes): one holder at a time, let
/// go only by its holder, lapsing on their own if the holder dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_has_one_holder_until_let_go_or_lapsed() {
    let redis = RedisServer::start();
    let kv = RedisKv::connect(&redis.url(), "lock-test").await.unwrap();
    let leases = RedisLeases::new(kv.connection(), "lock-test");
    let ttl = Duration::from_secs(30);
    assert!(leases.lock("person:p1", "node-a#1", ttl).await.unwrap());
    assert!(!leases.lock("person:p1", "node-b#1", ttl).await.unwrap(), "two holders at once");
    assert!(!leases.lock("person:p1", "node-a#1", ttl).await.unwrap(), "a lock is not re-entrant");
    assert!(leases.lock("person:p2", "node-b#1", ttl).await.unwrap(), "another resource is free");
    assert!(!leases.unlock("person:p1", "node-b#1").await.unwrap(), "let go by one not holding it");
    assert!(leases.unlock("person:p1", "node-a#1").await.unwrap());
    assert!(leases.lock("person:p1", "node-b#2", ttl).await.unwrap(), "free once let go");
    // A holder that dies: its lock lapses.
    assert!(leases.lock("person:p3", "node-c#1", Duration::from_millis(200)).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !leases.lock("person:p3", "node-b#3", ttl).await.unwrap() {
        assert!(tokio::time::Instant::now() < deadline, "the lock never lapsed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!leases.unlock("person:p3", "node-c#1").await.unwrap(), "a lapsed holder let go of another's lock");
    assert!(!leases.lock("person:p3", "node-a#9", ttl).await.unwrap(), "the new holder keeps it");
}

/// The other owned actors' fences in the embedded store: `conformance::{payment,queue,
/// conversation}_fence` (the same run against ScyllaDB is in kassandra.rs). One store, so both
/// nodes' handles are the one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_queue_or_conversation_owner_with_an_old_token_cannot_write_after_a_newer_owner_took_over() {
    use hospital_store::conformance::{conversation_fence, payment_fence, queue_fence};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    payment_fence(&store, &store).await;
    queue_fence(&store, &store).await;
    conversation_fence(&store, &store).await;
}

/// The same for a ticket, an exam and a visit (with its appointment's notes):
/// `conformance::{ticket,exam,visit}_fence`, also run against ScyllaDB in kassandra.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_exam_or_visit_owner_with_an_old_token_cannot_write_after_a_newer_owner_took_over() {
    use hospital_store::conformance::{exam_fence, ticket_fence, visit_fence};
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    ticket_fence(&store, &store).await;
    exam_fence(&store, &store).await;
    visit_fence(&store, &store).await;
}

/// An account's actor's writes (its row, its patients, its preferences):
/// `conformance::account_fence`, also run against ScyllaDB in kassandra.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_owner_with_an_old_token_cannot_write_after_a_newer_owner_took_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    hospital_store::conformance::account_fence(&store, &store).await;
}
