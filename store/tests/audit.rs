//! The audit chain on the embedded store, on a real on-disk directory: what the writer
//! acknowledged survives a reopen and the chain continues, and changing any stored byte of an
//! entry (its content, its hash, its expiry header), or removing one, makes `verify_chain` name
//! that entry.

use hospital_domain::audit::{Action, Actor, AuditEvent, Target};
use hospital_domain::{AccountId, Role, StaffId};
use hospital_store::audit::{verify_chain, AuditLog};
use hospital_store::embedded::keys::Key;
use hospital_store::embedded::tables::AUDIT_LOG;
use hospital_store::EmbeddedStore;
use std::sync::Arc;

const CHAIN: &str = "main";

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(
        Actor::Staff { id: StaffId::new(), roles: vec![Role::Doctor.into(), Role::Nurse.into()] },
        Action::parse("record.read").unwrap(),
        Target::new("record", format!("record-{n}")).unwrap(),
    )
    .concerning(AccountId::new(), None)
    .purpose("treatment")
    .unwrap()
}

/// A store in a fresh directory with a chain of five entries.
async fn chain_of_five() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let log = AuditLog::start(Arc::new(store.clone()), CHAIN).await.unwrap();
    for n in 1..=5 {
        assert_eq!(log.record(event(n)).await.unwrap().seq, n as u64);
    }
    (dir, store)
}

/// The stored key, expiry and payload of entry `seq`.
fn stored(store: &EmbeddedStore, seq: u64) -> (Vec<u8>, u64, Vec<u8>) {
    let rows = store.engine().read(|r| r.scan_stored(AUDIT_LOG, Key::new().str(CHAIN).bytes())).unwrap();
    rows.into_iter().find(|(k, _, _)| k.ends_with(&seq.to_be_bytes())).expect("the entry is stored")
}

async fn rewrite(store: &EmbeddedStore, key: Vec<u8>, expires: u64, payload: Vec<u8>) {
    store
        .engine()
        .write(move |ctx| {
            ctx.put_raw_until(AUDIT_LOG, key, payload, expires);
            Ok(())
        })
        .await
        .unwrap();
}

async fn reopen(dir: &std::path::Path) -> EmbeddedStore {
    for _ in 0..500 {
        match EmbeddedStore::open(dir) {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    panic!("the store is still open elsewhere")
}

async fn broken_at(store: &EmbeddedStore) -> (u64, String) {
    let report = verify_chain(store, CHAIN).await.unwrap();
    report.broken.clone().unwrap_or_else(|| panic!("the chain should be broken: {report:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_entries_survive_a_reopen_and_the_chain_continues() {
    let (dir, store) = chain_of_five().await;
    drop(store);
    // The writer task lets go of its store handle once it sees its channel close.
    let store = reopen(dir.path()).await;
    let report = verify_chain(&store, CHAIN).await.unwrap();
    assert!(report.is_intact() && report.verified == 5, "{report:?}");
    let log = AuditLog::start(Arc::new(store.clone()), CHAIN).await.unwrap();
    let e = log.record(event(6)).await.unwrap();
    assert_eq!(e.seq, 6);
    let five: hospital_domain::audit::AuditEntry = serde_json::from_slice(&stored(&store, 5).2).unwrap();
    assert_eq!(e.prev_hash, five.hash, "linked to the entry before the restart");
    assert!(verify_chain(&store, CHAIN).await.unwrap().is_intact());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_changed_byte_of_content_is_named() {
    let (_dir, store) = chain_of_five().await;
    let (key, exp, mut payload) = stored(&store, 3);
    // "record-3" -> "record-4": still valid JSON, still a valid entry, different content.
    let at = payload.windows(8).position(|w| w == b"record-3").unwrap() + 7;
    payload[at] = b'4';
    rewrite(&store, key, exp, payload).await;
    assert_eq!(broken_at(&store).await, (3, "hash does not match the entry's content".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_row_is_named() {
    let (_dir, store) = chain_of_five().await;
    let (key, exp, mut payload) = stored(&store, 2);
    payload[0] = b'!';
    rewrite(&store, key, exp, payload).await;
    let (seq, why) = broken_at(&store).await;
    assert_eq!(seq, 2);
    assert!(why.starts_with("unreadable"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_written_into_the_header_is_named() {
    let (_dir, store) = chain_of_five().await;
    let (key, _, payload) = stored(&store, 2);
    rewrite(&store, key, u64::MAX / 2, payload).await;
    let (seq, why) = broken_at(&store).await;
    assert_eq!(seq, 2);
    assert!(why.contains("expiry"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resealed_entry_breaks_the_next_link() {
    let (_dir, store) = chain_of_five().await;
    let (key, exp, payload) = stored(&store, 3);
    let mut e: hospital_domain::audit::AuditEntry = serde_json::from_slice(&payload).unwrap();
    e.event.purpose = Some("curiosity".into());
    e.hash = e.compute_hash(); // consistent on its own...
    rewrite(&store, key, exp, serde_json::to_vec(&e).unwrap()).await;
    // ...but entry 4 still names the old hash.
    assert_eq!(broken_at(&store).await, (4, "prev_hash does not match the previous entry's hash".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_entries_are_named() {
    let (_dir, store) = chain_of_five().await;
    let (middle, _, _) = stored(&store, 4);
    store
        .engine()
        .write(move |ctx| {
            ctx.delete_raw(AUDIT_LOG, middle);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(broken_at(&store).await.0, 4, "a gap");

    let (_dir2, store) = chain_of_five().await;
    let (last, _, _) = stored(&store, 5);
    store
        .engine()
        .write(move |ctx| {
            ctx.delete_raw(AUDIT_LOG, last);
            Ok(())
        })
        .await
        .unwrap();
    let (seq, why) = broken_at(&store).await;
    assert_eq!(seq, 5, "a truncated tail, against the head");
    assert!(why.contains("missing"), "{why}");
}
