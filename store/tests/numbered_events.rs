//! The embedded store as its own event log (`EmbeddedStore::number_events_with_changes`): a change
//! numbers its live events in the account's log in its own transaction, hands each number out
//! once, and leaves only `unread` markers in the outbox. On a real on-disk directory.

use hospital_domain::live::{PersonalEvent, UnreadCount};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::AccountId;
use hospital_store::{
    log_stream, BookingStore, BookingWrite, EmbeddedStore, EphemeralKv, Fence, Logged, OutboxStore, PendingEvent,
};
use std::time::Duration;

fn message(account: AccountId) -> (Message, PendingEvent) {
    let m = Message::new(account, MessageKind::SystemNotice, "通知", "内容", None, chrono::Utc::now());
    let e = PendingEvent::message(&m);
    (m, e)
}

async fn write(store: &EmbeddedStore, m: &Message, events: Vec<PendingEvent>) {
    store.apply_booking(BookingWrite { messages: vec![m.clone()], events, ..Default::default() }).await.unwrap();
}

/// The event as the log keeps it under `seq`.
async fn logged(store: &EmbeddedStore, account: AccountId, seq: u64) -> Option<Logged> {
    let raw = store.log_range(&log_stream(account), seq, seq).await.unwrap().remove(0)?;
    Some(serde_json::from_slice(&raw).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_numbers_its_events_once_and_only_when_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap().number_events_with_changes();
    let account = AccountId::new();
    let (m, e1) = message(account);
    let marker = PendingEvent::new(account, PersonalEvent::Unread(UnreadCount { count: 0 }));
    write(&store, &m, vec![e1.clone(), marker.clone()]).await;

    // The message's event is numbered in the log, with its own body; the marker, whose count is
    // read when it is logged, waits in the outbox as before.
    let n = store.take_numbered(&e1.id).expect("numbered by its change");
    assert_eq!((n.account, n.seq), (account, 1));
    assert_eq!(store.take_numbered(&e1.id), None, "handed out once");
    let body = logged(&store, account, 1).await.expect("in the log");
    assert_eq!(body.event, e1.event);
    assert_eq!(body.at_ms, n.at_ms);
    let pending: Vec<PendingEvent> =
        store.outbox_pending(1000).await.unwrap().into_iter().filter(|e| e.account == account).collect();
    assert_eq!(pending, vec![marker.clone()], "only the marker is in the outbox");
    assert_eq!(store.log_head(&log_stream(account)).await.unwrap(), 1);

    // The same message written again (a retry) is not numbered twice, nor announced again; the
    // gateway's own append of it (a late handover) finds it logged too.
    write(&store, &m, vec![e1.clone()]).await;
    assert_eq!(store.take_numbered(&e1.id), None);
    assert_eq!(store.log_head(&log_stream(account)).await.unwrap(), 1);
    let again = store.log_append(&log_stream(account), &e1.id.to_string(), b"{}", Duration::from_secs(60)).await;
    assert_eq!(again.unwrap(), (1, false));

    // A change that fails numbers nothing: its fence is older than one already seen.
    let fence = |token| Some(Fence { resource: "schedule:test".into(), token });
    store.apply_booking(BookingWrite { fence: fence(5), ..Default::default() }).await.unwrap();
    let (m2, e2) = message(account);
    let refused = store
        .apply_booking(BookingWrite {
            messages: vec![m2],
            events: vec![e2.clone()],
            fence: fence(3),
            ..Default::default()
        })
        .await;
    assert!(refused.is_err(), "a stale fence is refused");
    assert_eq!(store.take_numbered(&e2.id), None);
    assert_eq!(store.log_head(&log_stream(account)).await.unwrap(), 1, "no number taken");
    assert_eq!(logged(&store, account, 2).await, None);

    // One nobody takes is handed to the sweeper once it is old enough, and then to nobody else.
    let (m3, e3) = message(account);
    write(&store, &m3, vec![e3.clone()]).await;
    assert!(store.take_numbered_older(Duration::from_secs(3600)).is_empty(), "too young");
    let left = store.take_numbered_older(Duration::ZERO);
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].0, left[0].1.seq), (e3.id, 2));
    assert_eq!(store.take_numbered(&e3.id), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_number_an_account_without_holes_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap().number_events_with_changes();
    let account = AccountId::new();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (m, e) = message(account);
            write(&store, &m, vec![e.clone()]).await;
            store.take_numbered(&e.id).expect("numbered").seq
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<u64>>());
    assert_eq!(store.log_head(&log_stream(account)).await.unwrap(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_numbering_events_go_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let account = AccountId::new();
    let (m, e) = message(account);
    write(&store, &m, vec![e.clone()]).await;
    assert_eq!(store.take_numbered(&e.id), None);
    assert_eq!(store.outbox_pending(1000).await.unwrap(), vec![e]);
    assert_eq!(store.log_head(&log_stream(account)).await.unwrap(), 0);
}
