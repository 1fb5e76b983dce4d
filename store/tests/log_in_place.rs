//! The embedded store keeping the live-event log (one machine without Redis): a booking write
//! numbers its plain events in their accounts' logs in its own transaction, after and before
//! whatever the bus appends to the same logs, and leaves only the others in the outbox.

use chrono::Utc;
use hospital_domain::ledger::MovementKind;
use hospital_domain::live::{BalanceUpdate, PersonalEvent};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::AccountId;
use hospital_store::outbox::{account_stream, LOG_TTL};
use hospital_store::traits::log_value_key;
use hospital_store::{BookingStore, BookingWrite, EmbeddedStore, EphemeralKv, Logged, OutboxStore, PendingEvent};

fn plain(account: AccountId, amount: i64) -> PendingEvent {
    let mut e = PendingEvent::new(
        account,
        PersonalEvent::Balance(BalanceUpdate {
            balance: 10_000,
            key: format!("k-{amount}"),
            kind: MovementKind::Refund,
            amount,
            order_id: None,
        }),
    );
    e.encode();
    e
}

/// A booking write's events as the store leaves them: the placed ones' numbers and the ids left
/// in the outbox (of `accounts` only).
async fn write(store: &EmbeddedStore, events: &[PendingEvent], messages: Vec<Message>) -> Vec<uuid::Uuid> {
    let accounts: Vec<AccountId> = events.iter().map(|e| e.account).collect();
    store.apply_booking(BookingWrite { events: events.to_vec(), messages, ..Default::default() }).await.unwrap();
    let pending = store.outbox_pending(10_000).await.unwrap();
    pending.into_iter().filter(|e| accounts.contains(&e.account)).map(|e| e.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_write_numbers_its_plain_events_in_the_log_it_shares_with_the_bus() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap().with_event_log(true);
    let (a, b) = (AccountId::new(), AccountId::new());
    let stream = account_stream(a);
    // The bus logged one event of `a` before (its path: `log_append_all`).
    let earlier = store.log_append_all(&stream, &[("earlier", b"{}")], LOG_TTL).await.unwrap();
    assert_eq!(earlier, [(1, true)]);

    let m = Message::new(a, MessageKind::SystemNotice, "通知", "内容", None, Utc::now());
    let (a1, a2, b1, msg, unread) =
        (plain(a, 1), plain(a, 2), plain(b, 3), PendingEvent::message(&m), PendingEvent::unread(a));
    let events = [a1.clone(), msg.clone(), b1.clone(), a2.clone(), unread.clone()];
    let outboxed = write(&store, &events, vec![m]).await;

    // The plain ones numbered, each account's in order after what its log had; the copies the
    // caller kept see it.
    let placed = |e: &PendingEvent| e.placed().map(|p| p.seq);
    assert_eq!([placed(&a1), placed(&a2), placed(&b1)], [Some(2), Some(3), Some(1)]);
    // A message (its unread count is read when it is logged) and an unread marker go the
    // outbox's way, not numbered here.
    assert_eq!([placed(&msg), placed(&unread)], [None, None]);
    assert_eq!(outboxed, [msg.id, unread.id], "only those in the outbox");

    // What the log holds reads back as the events, under their numbers.
    let rows = store.log_range(&stream, 2, 3).await.unwrap();
    let back: Vec<Logged> = rows.iter().map(|r| serde_json::from_slice(r.as_deref().unwrap()).unwrap()).collect();
    assert_eq!(back.iter().map(|l| &l.event).collect::<Vec<_>>(), [&a1.event, &a2.event]);
    assert!(back.iter().all(|l| l.at_ms == a1.placed().unwrap().at_ms && l.at_ms > 0));
    assert_eq!(store.log_head(&stream).await.unwrap(), 3, "the counter moved with them");
    assert!(store.get(&log_value_key(&stream, 4)).await.unwrap().is_none());

    // The bus's next append for `a` follows them.
    let next = store.log_append_all(&stream, &[("later", b"{}")], LOG_TTL).await.unwrap();
    assert_eq!(next, [(4, true)]);
    let a3 = plain(a, 4);
    write(&store, std::slice::from_ref(&a3), vec![]).await;
    assert_eq!(placed(&a3), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_keep_the_log_leaves_every_event_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = AccountId::new();
    let events = [plain(a, 1), plain(a, 2)];
    let outboxed = write(&store, &events, vec![]).await;
    assert_eq!(outboxed, [events[0].id, events[1].id]);
    assert!(events.iter().all(|e| e.placed().is_none()));
    assert_eq!(store.log_head(&account_stream(a)).await.unwrap(), 0, "nothing numbered");
}

/// A write that fails leaves no number behind: the log's counter and rows are the write's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_booking_write_numbers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap().with_event_log(true);
    let a = AccountId::new();
    let resource = format!("doctor:{}", uuid::Uuid::now_v7());
    let fence = |token| Some(hospital_store::Fence { resource: resource.clone(), token, until_us: None });
    store.apply_booking(BookingWrite { fence: fence(2), ..Default::default() }).await.unwrap();
    let stale = BookingWrite { events: vec![plain(a, 1)], fence: fence(1), ..Default::default() };
    assert!(store.apply_booking(stale).await.is_err(), "an older owner's write is refused");
    assert_eq!(store.log_head(&account_stream(a)).await.unwrap(), 0);
    assert!(store.get(&log_value_key(&account_stream(a), 1)).await.unwrap().is_none());
}
