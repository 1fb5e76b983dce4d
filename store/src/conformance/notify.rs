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
        Channel, ChannelDelivery, DeliveryState, KindChannels, MessageCategory, NotificationPreferences, Reminder,
        ReminderKind, ReminderStatus,
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
    store
        .apply_booking(BookingWrite {
            messages: vec![Message::new(account, MessageKind::WaitlistOffer, "候补成功", "w", None, Utc::now())],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.unread_count(account).await.unwrap(), 1);

    // Preferences.
    assert_eq!(store.notification_preferences(account).await.unwrap(), NotificationPreferences::default());
    let prefs = NotificationPreferences::default().with_changes(&[KindChannels {
        kind: MessageKind::VisitReminder,
        in_app: true,
        sms: false,
        wechat: false,
    }]);
    store.put_notification_preferences(account, &prefs).await.unwrap();
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
}
