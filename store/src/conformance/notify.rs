//! Messages, notification preferences and reminders.

use chrono::{Duration as ChronoDuration, Utc};
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::*;
use std::sync::Arc;

use crate::traits::{BookingWrite, DataStore};

/// Notifications (MSG-1..4): read state, categories and the unread count of messages;
/// preferences (defaults until saved); reminders scheduled once, scanned by due time, claimed by
/// one worker at a time, rescheduled or finished with their queue row moved or removed.
pub async fn notify(store: Arc<dyn DataStore>) {
    use crate::notify::{Claim, MessageFilter};
    use hospital_domain::notify::{
        Channel, ChannelDelivery, DeliveryState, KindChannels, MessageCategory, NotificationPreferences, Outbound,
        Reminder, ReminderKind, ReminderStatus,
    };
    let account = AccountId::new();
    let other = AccountId::new();
    let t0 = Utc::now();
    let all = |limit| MessageFilter { category: None, unread_only: false, limit };

    // Messages: read state, categories, newest first, unread count.
    let booked = Message::new(account, MessageKind::BookingSuccess, "预约成功", "b", None, t0);
    let paid = Message::new(account, MessageKind::PaymentSuccess, "支付成功", "p", None, t0);
    let notice = Message::new(account, MessageKind::Announcement, "公告", "n", None, t0);
    let foreign = Message::new(other, MessageKind::BookingSuccess, "预约成功", "x", None, t0);
    for m in [&booked, &paid, &notice, &foreign] {
        store.put_message(m, &[]).await.unwrap();
    }
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_messages(account, all(10)).await.unwrap()), vec![notice.id, paid.id, booked.id]);
    assert_eq!(ids(store.list_messages(account, all(2)).await.unwrap()), vec![notice.id, paid.id]);
    let payments = MessageFilter { category: Some(MessageCategory::Payment), unread_only: false, limit: 10 };
    assert_eq!(ids(store.list_messages(account, payments).await.unwrap()), vec![paid.id]);
    assert_eq!(store.unread_count(account).await.unwrap(), 3);
    assert!(store.set_read(account, paid.id, true, &[]).await.unwrap());
    assert!(store.set_read(account, paid.id, true, &[]).await.unwrap(), "marking again is fine");
    assert!(!store.set_read(account, foreign.id, true, &[]).await.unwrap(), "another account's message is absent");
    assert!(!store.set_read(account, MessageId::new(), true, &[]).await.unwrap());
    assert_eq!(store.unread_count(account).await.unwrap(), 2);
    let unread = MessageFilter { category: None, unread_only: true, limit: 10 };
    assert_eq!(ids(store.list_messages(account, unread).await.unwrap()), vec![notice.id, booked.id]);
    assert_eq!(store.mark_all_read(account, &[]).await.unwrap(), 2);
    assert_eq!(store.unread_count(account).await.unwrap(), 0);
    assert_eq!(store.unread_count(other).await.unwrap(), 1, "another account is untouched");
    assert!(store.list_messages(account, all(10)).await.unwrap().iter().all(|m| m.read));
    // Marked unread again; read one by one; another account's is not there.
    assert!(store.set_read(account, paid.id, false, &[]).await.unwrap());
    assert_eq!(store.unread_count(account).await.unwrap(), 1);
    assert_eq!(store.message(account, paid.id).await.unwrap().map(|m| (m.id, m.read)), Some((paid.id, false)));
    assert_eq!(store.message(account, foreign.id).await.unwrap(), None);
    assert!(store.set_read(account, paid.id, true, &[]).await.unwrap());
    // The booking engine's messages count too.
    let offer = Message::new(account, MessageKind::WaitlistOffer, "候补成功", "w", None, Utc::now());
    store.apply_booking(BookingWrite { messages: vec![offer.clone()], ..Default::default() }).await.unwrap();
    assert_eq!(store.unread_count(account).await.unwrap(), 1);

    // Preferences.
    assert_eq!(store.notification_preferences(account).await.unwrap(), NotificationPreferences::default());
    let prefs = NotificationPreferences::default().with_changes(&[KindChannels {
        kind: MessageKind::VisitReminder,
        in_app: true,
        sms: false,
        wechat: false,
    }]);
    store.put_notification_preferences(account, &prefs, None).await.unwrap();
    assert_eq!(store.notification_preferences(account).await.unwrap(), prefs);
    assert_eq!(store.notification_preferences(other).await.unwrap(), NotificationPreferences::default());

    // Reminders.
    let now = Utc::now();
    let appt = AppointmentId::new();
    let due = Reminder::new(
        account,
        appt,
        ReminderKind::DayBefore,
        now - ChronoDuration::seconds(5),
        now + ChronoDuration::hours(3),
        now,
    );
    let later = Reminder::new(
        account,
        appt,
        ReminderKind::SoonBefore,
        now + ChronoDuration::hours(2),
        now + ChronoDuration::hours(3),
        now,
    );
    assert_eq!(store.schedule_reminders(&[due.clone(), later.clone()]).await.unwrap(), 2);
    assert_eq!(store.schedule_reminders(std::slice::from_ref(&due)).await.unwrap(), 0, "scheduled once");
    assert_eq!(store.reminder(due.id).await.unwrap(), Some(due.clone()));
    let window_from = now - ChronoDuration::hours(24);
    let found = store.due_reminders(window_from, now, 100).await.unwrap();
    assert!(found.iter().any(|r| r.id == due.id));
    assert!(!found.iter().any(|r| r.id == later.id), "not due yet");
    let in_three_hours = store.due_reminders(window_from, now + ChronoDuration::hours(3), 100).await.unwrap();
    let pos = |id| in_three_hours.iter().position(|r| r.id == id).unwrap();
    assert!(pos(due.id) < pos(later.id), "oldest first");

    let (me, them) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let lease = now + ChronoDuration::seconds(60);
    assert!(matches!(store.claim_reminder(&later, me, now, lease).await.unwrap(), Claim::NotDue), "not due");
    let Claim::Claimed(mut r) = store.claim_reminder(&due, me, now, lease).await.unwrap() else {
        panic!("a due reminder is claimed")
    };
    assert_eq!(store.claim_reminder(&due, them, now, lease).await.unwrap(), Claim::NotDue, "one worker at a time");
    // A retry: SMS sent, WeChat failed; back in the queue 30 s later.
    r.attempts = 1;
    r.channels = vec![
        ChannelDelivery {
            state: DeliveryState::Sent,
            attempts: 1,
            sent_at: Some(now),
            ..ChannelDelivery::pending(Channel::Sms)
        },
        ChannelDelivery { attempts: 1, last_error: Some("busy".into()), ..ChannelDelivery::pending(Channel::Wechat) },
    ];
    r.due_at = now + ChronoDuration::seconds(30);
    assert!(!store.finish_reminder(&r, them).await.unwrap(), "only the lease holder finishes");
    assert!(store.finish_reminder(&r, me).await.unwrap());
    assert_eq!(store.reminder(r.id).await.unwrap(), Some(r.clone()));
    let now_due = store.due_reminders(window_from, now, 100).await.unwrap();
    assert!(!now_due.iter().any(|x| x.id == r.id), "moved to its retry time");
    let at_retry = now + ChronoDuration::seconds(31);
    let entries = store.due_reminders(window_from, at_retry, 100).await.unwrap();
    let entry = entries.iter().find(|x| x.id == r.id).expect("queued at the retry time").clone();
    assert_eq!(entry, r);
    // A stale entry (the old due time) claims nothing.
    assert_eq!(store.claim_reminder(&due, me, at_retry, lease).await.unwrap(), Claim::NotDue);
    let Claim::Claimed(mut r) =
        store.claim_reminder(&entry, them, at_retry, at_retry + ChronoDuration::seconds(60)).await.unwrap()
    else {
        panic!("the lease was released, so another worker may claim it")
    };
    r.channels[1].state = DeliveryState::Sent;
    r.status = ReminderStatus::Done;
    assert!(store.finish_reminder(&r, them).await.unwrap());
    let far = now + ChronoDuration::hours(4);
    assert!(
        !store.due_reminders(window_from, far, 100).await.unwrap().iter().any(|x| x.id == r.id),
        "done leaves the queue"
    );
    assert_eq!(store.reminder(r.id).await.unwrap().map(|x| x.status), Some(ReminderStatus::Done));
    assert_eq!(store.claim_reminder(&entry, me, far, far).await.unwrap(), Claim::NotDue);
    assert_eq!(
        store.schedule_reminders(std::slice::from_ref(&due)).await.unwrap(),
        0,
        "a done reminder is not scheduled again"
    );
    assert_eq!(store.reminder(due.id).await.unwrap().map(|x| x.status), Some(ReminderStatus::Done));
    assert_eq!(store.take_reminder(due.id, me, far, far).await.unwrap(), Claim::NotDue, "a done one stays done");

    // Moving a reminder before it is due (its visit's time changed): taken, given new times, and
    // its queue entry moves with it.
    let Claim::Claimed(mut moved) = store.take_reminder(later.id, me, now, lease).await.unwrap() else {
        panic!("a pending reminder is taken before it is due")
    };
    assert_eq!(store.take_reminder(later.id, them, now, lease).await.unwrap(), Claim::NotDue, "one at a time");
    moved.due_at = now + ChronoDuration::hours(1);
    moved.scheduled_for = moved.due_at;
    moved.expires_at = now + ChronoDuration::hours(2);
    assert!(store.finish_reminder(&moved, me).await.unwrap());
    assert_eq!(store.reminder(later.id).await.unwrap(), Some(moved.clone()));
    let queued = store.due_reminders(window_from, now + ChronoDuration::hours(3), 100).await.unwrap();
    assert_eq!(queued.iter().filter(|x| x.id == later.id).count(), 1, "one queue entry");
    let entry = queued.iter().find(|x| x.id == later.id).unwrap().clone();
    let after_old = now + ChronoDuration::minutes(150);
    assert!(matches!(store.claim_reminder(&later, them, after_old, lease).await.unwrap(), Claim::NotDue), "old entry");
    let at_new = now + ChronoDuration::minutes(61);
    let Claim::Claimed(r) = store.claim_reminder(&entry, them, at_new, at_new).await.unwrap() else {
        panic!("due at its new time")
    };
    assert_eq!(r.expires_at, moved.expires_at);

    // Outbound rows: written with every new message of a kind sent on by SMS and WeChat, by
    // whichever write stores it (put_message, a booking write), and with no other message.
    let o = store.outbound(paid.id).await.unwrap().expect("a payment result goes out");
    assert_eq!((o.message.id, o.status, o.attempts), (paid.id, ReminderStatus::Pending, 0));
    assert_eq!(o.message.kind, MessageKind::PaymentSuccess);
    assert_eq!(store.outbound(offer.id).await.unwrap().map(|o| o.message.id), Some(offer.id), "booking write");
    assert_eq!(store.outbound(booked.id).await.unwrap(), None, "reminders send booking confirmations");
    assert_eq!(store.outbound(notice.id).await.unwrap(), None, "announcements stay in the message centre");
    let now = Utc::now();
    let due: Vec<Outbound> = store.due_outbound(window_from, now, 10_000).await.unwrap();
    let entries: Vec<&Outbound> = due.iter().filter(|x| x.id() == paid.id).collect();
    assert_eq!(entries.len(), 1, "one queue entry, marking it read or not");
    let entry = entries[0].clone();
    let lease = now + ChronoDuration::seconds(60);
    let Claim::Claimed(mut x) = store.claim_outbound(&entry, me, now, lease).await.unwrap() else {
        panic!("a due outbound row is claimed")
    };
    assert_eq!(store.claim_outbound(&entry, them, now, lease).await.unwrap(), Claim::NotDue, "one at a time");
    // Mid-send: the channel sent is recorded, the lease kept.
    x.channels = vec![
        ChannelDelivery { state: DeliveryState::Sent, attempts: 1, ..ChannelDelivery::pending(Channel::Sms) },
        ChannelDelivery::pending(Channel::Wechat),
    ];
    assert!(!store.progress_outbound(&x, them).await.unwrap(), "only the lease holder records progress");
    assert!(store.progress_outbound(&x, me).await.unwrap());
    assert_eq!(store.outbound(paid.id).await.unwrap().map(|y| y.channels), Some(x.channels.clone()));
    assert_eq!(store.claim_outbound(&entry, them, now, lease).await.unwrap(), Claim::NotDue, "still leased");
    x.attempts = 1;
    x.channels = vec![ChannelDelivery { attempts: 1, ..ChannelDelivery::pending(Channel::Wechat) }];
    x.due_at = now + ChronoDuration::seconds(30);
    assert!(!store.finish_outbound(&x, them).await.unwrap(), "only the lease holder finishes");
    assert!(store.finish_outbound(&x, me).await.unwrap());
    assert_eq!(store.outbound(paid.id).await.unwrap(), Some(x.clone()));
    assert!(!store.due_outbound(window_from, now, 10_000).await.unwrap().iter().any(|y| y.id() == paid.id));
    assert_eq!(store.claim_outbound(&entry, me, now, lease).await.unwrap(), Claim::NotDue, "a stale entry");
    let at_retry = now + ChronoDuration::seconds(31);
    let retry = store.due_outbound(window_from, at_retry, 10_000).await.unwrap();
    let entry = retry.iter().find(|y| y.id() == paid.id).expect("queued at its retry time").clone();
    let Claim::Claimed(mut x) =
        store.claim_outbound(&entry, them, at_retry, at_retry + ChronoDuration::seconds(60)).await.unwrap()
    else {
        panic!("the lease was released")
    };
    x.channels[0].state = DeliveryState::Sent;
    x.status = ReminderStatus::Done;
    assert!(store.finish_outbound(&x, them).await.unwrap());
    assert!(!store.due_outbound(window_from, far, 10_000).await.unwrap().iter().any(|y| y.id() == paid.id));
    assert_eq!(store.outbound(paid.id).await.unwrap().map(|y| y.status), Some(ReminderStatus::Done));
    assert_eq!(store.claim_outbound(&entry, me, far, far).await.unwrap(), Claim::NotDue, "done is done");
}
