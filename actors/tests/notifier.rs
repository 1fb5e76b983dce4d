//! The notifier end to end: the real embedded store, the real Aliyun SMS client and WeChat
//! subscribe-message client against their sandboxes on real ports, and a short clock (reminders
//! due a second ahead, retries after a few hundred milliseconds).

use chrono::{DateTime, Duration as Span, NaiveDate, NaiveTime, Utc};
use hospital_actors::notifier::{self, Notifier, NotifierConfig, NotifierDeps};
use hospital_actors::{EventBus, Events};
use hospital_domain::appointment::{Appointment, AppointmentEvent, AppointmentStatus};
use hospital_domain::booking::SessionBook;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::notify::{
    Channel, DeliveryState, KindChannels, NotificationPreferences, Outbound, Reminder, ReminderId, ReminderKind,
    ReminderStatus,
};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, MessageId, Phone};
use hospital_integrations::wechat_subscribe::{SubscribeClient, SubscribeConfig, SubscribeSandbox};
use hospital_integrations::{AliyunSms, AliyunSmsConfig, SmsSandbox, SmsSender};
use hospital_store::{
    conformance, AccountStore, BookingStore, BookingWrite, DataStore, EmbeddedStore, MessageFilter, NotifyStore,
    OutboxStore, ScheduleStore,
};
use secrecy::SecretString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY_ID: &str = "sandbox-key";
const KEY_SECRET: &str = "sandbox-key-secret";
const APPID: &str = "wxsandbox0000000";
const APP_SECRET: &str = "sandbox-app-secret";
const OPENID: &str = "oSandboxUser0000000000000001";

#[derive(Default)]
struct Captured(Mutex<Vec<(AccountId, String, serde_json::Value)>>);

impl EventBus for Captured {
    fn personal(&self, events: Vec<hospital_store::PendingEvent>) {
        for e in events {
            let v = serde_json::to_value(&e.event).unwrap();
            self.0.lock().unwrap().push((e.account, v["type"].as_str().unwrap().to_string(), v["payload"].clone()));
        }
    }
    fn topic(&self, _: hospital_domain::live::TopicEvent) {}
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn closed_port() -> String {
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    format!("http://{addr}")
}

fn sms_client(endpoint: &str) -> Arc<dyn SmsSender> {
    Arc::new(
        AliyunSms::new(AliyunSmsConfig {
            access_key_id: KEY_ID.into(),
            access_key_secret: SecretString::from(KEY_SECRET),
            sign_name: "示例医院".into(),
            code_template: hospital_integrations::sms::LOGIN_CODE_TEMPLATE.into(),
            endpoint: endpoint.into(),
        })
        .unwrap(),
    )
}

struct Env {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    sms: SmsSandbox,
    sms_url: String,
    wechat: SubscribeSandbox,
    wechat_client: Arc<SubscribeClient>,
    events: Events,
    captured: Arc<Captured>,
    phone: Phone,
    account: AccountId,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let sms = SmsSandbox::new(KEY_ID, SecretString::from(KEY_SECRET));
        for (code, text) in notifier::sms_templates() {
            sms.add_template(code, text);
        }
        let sms_url = serve(hospital_integrations::sms_sandbox_router(sms.clone())).await;
        let wechat = SubscribeSandbox::new(APPID, SecretString::from(APP_SECRET));
        for (id, keys) in notifier::wechat_templates() {
            wechat.add_template(id, keys);
        }
        let wx_url = serve(hospital_integrations::wechat_subscribe_sandbox_router(wechat.clone())).await;
        let wechat_client = Arc::new(
            SubscribeClient::new(SubscribeConfig {
                appid: APPID.into(),
                secret: SecretString::from(APP_SECRET),
                base_url: wx_url,
            })
            .unwrap(),
        );
        let mut account = conformance::sample_account();
        account.wechat_openid = Some(OPENID.into());
        store.create_account(&account).await.unwrap();
        let captured = Arc::new(Captured::default());
        let events = Events::new(captured.clone());
        Env {
            _dir: dir,
            store,
            phone: account.phone.clone().unwrap(),
            account: account.id,
            sms,
            sms_url,
            wechat,
            wechat_client,
            events,
            captured,
        }
    }

    fn config() -> NotifierConfig {
        NotifierConfig {
            tick: Duration::from_millis(100),
            soon_before: Duration::from_secs(2),
            retry_base: Duration::from_millis(300),
            retry_max: Duration::from_secs(1),
            ..NotifierConfig::default()
        }
    }

    fn start(&self, sms_url: &str) -> Notifier {
        self.start_with(sms_url, Self::config())
    }

    fn start_with(&self, sms_url: &str, config: NotifierConfig) -> Notifier {
        let deps = NotifierDeps {
            data: Arc::new(self.store.clone()) as Arc<dyn DataStore>,
            sms: sms_client(sms_url),
            wechat: Some(self.wechat_client.clone()),
            events: self.events.clone(),
            zone: HospitalZone::default(),
        };
        Notifier::start(deps, config)
    }

    /// A confirmed appointment of the account, stored with its session (tomorrow 08:00).
    async fn appointment(&self) -> Appointment {
        let date: NaiveDate = HospitalZone::default().local_date(Utc::now()) + Span::days(1);
        let session = conformance::sample_session(DoctorId::new(), DepartmentId::new(), date, 4);
        self.store.put_sessions(std::slice::from_ref(&session)).await.unwrap();
        let (mut a, o) = conformance::sample_hold(&mut SessionBook::new(session, [], vec![]), 0, self.account, "p");
        a.apply(AppointmentEvent::Pay, Utc::now()).unwrap();
        a.slip_no = Some(a.make_slip_no());
        self.store
            .apply_booking(BookingWrite { appointments: vec![a.clone()], orders: vec![o], ..Default::default() })
            .await
            .unwrap();
        a
    }

    /// When `a`'s visit starts: its segment's start, as its session is stored now.
    async fn visit(&self, a: &Appointment) -> DateTime<Utc> {
        let session = self.store.session(a.slot.session_id).await.unwrap().expect("its session");
        HospitalZone::default().to_utc(a.date, session.segments[a.slot.segment as usize].start)
    }

    /// A visit reminder of `a` (for its visit's time) due `due_in` from now.
    async fn remind(&self, a: &Appointment, due_in: Span) -> ReminderId {
        let now = Utc::now();
        let r = Reminder::new(self.account, a.id, ReminderKind::SoonBefore, now + due_in, self.visit(a).await, now);
        assert_eq!(self.store.schedule_reminders(std::slice::from_ref(&r)).await.unwrap(), 1);
        r.id
    }

    fn sms_with(&self, template: &str) -> usize {
        self.sms.messages_for(&self.phone).iter().filter(|m| m.template_code == template).count()
    }

    fn wechat_with(&self, template: &str) -> usize {
        self.wechat.messages_for(OPENID).iter().filter(|m| m.template_id == template).count()
    }

    async fn in_app(&self, kind: MessageKind) -> usize {
        let all = MessageFilter { category: None, unread_only: false, limit: 100 };
        self.store.list_messages(self.account, all).await.unwrap().iter().filter(|m| m.kind == kind).count()
    }

    async fn reminder(&self, id: ReminderId) -> Reminder {
        self.store.reminder(id).await.unwrap().unwrap()
    }

    async fn outbound(&self, id: MessageId) -> Outbound {
        self.store.outbound(id).await.unwrap().expect("an outbound row")
    }

    /// A message of `kind` for the account, written as the booking engine writes its messages.
    async fn message(&self, kind: MessageKind, title: &str, body: &str) -> Message {
        let m = Message::new(self.account, kind, title, body, None, Utc::now());
        self.store.apply_booking(BookingWrite { messages: vec![m.clone()], ..Default::default() }).await.unwrap();
        m
    }

    async fn until(&self, what: &str, mut done: impl AsyncFnMut() -> bool) {
        for _ in 0..100 {
            if done().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

fn state(r: &Reminder, c: Channel) -> DeliveryState {
    r.channel(c).unwrap_or_else(|| panic!("{c:?} not in {:?}", r.channels)).state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_reminder_goes_by_exactly_the_allowed_channels() {
    let env = Env::new().await;
    let prefs = NotificationPreferences::default().with_changes(&[KindChannels {
        kind: MessageKind::VisitReminder,
        in_app: true,
        sms: false,
        wechat: true,
    }]);
    env.store.put_notification_preferences(env.account, &prefs, None).await.unwrap();
    let a = env.appointment().await;
    let id = env.remind(&a, Span::seconds(1)).await;
    let _n = env.start(&env.sms_url);

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(env.reminder(id).await.status, ReminderStatus::Pending, "not due yet");
    assert_eq!(env.wechat_with(notifier::WECHAT_REMINDER_TEMPLATE), 0);
    env.until("the reminder", async || env.reminder(id).await.status == ReminderStatus::Done).await;

    let r = env.reminder(id).await;
    assert_eq!(r.channels.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![Channel::InApp, Channel::Wechat]);
    assert!(r.channels.iter().all(|c| c.state == DeliveryState::Sent && c.attempts == 1), "{r:?}");
    assert_eq!(env.sms.messages_for(&env.phone).len(), 0, "SMS is not allowed for reminders");
    assert_eq!(env.wechat_with(notifier::WECHAT_REMINDER_TEMPLATE), 1);
    let wx = &env.wechat.messages_for(OPENID)[0];
    assert_eq!(wx.data["thing1"], "张三");
    assert_eq!(wx.page.as_deref(), Some(format!("pages/appointment/detail?id={}", a.id).as_str()));
    assert_eq!(env.in_app(MessageKind::VisitReminder).await, 1);
    let m = env.store.list_messages(env.account, MessageFilter { category: None, unread_only: true, limit: 1 });
    assert_eq!(m.await.unwrap()[0].id, r.message_id());
    let events = env.captured.0.lock().unwrap().clone();
    assert!(events.iter().any(|(acc, k, p)| *acc == env.account && k == "message" && p["kind"] == "visit_reminder"));
    // The event was written with the message (the outbox), so a crash before it reached the
    // log loses nothing; the gateway follows it with the unread count.
    let pending = env.store.outbox_pending(100).await.unwrap();
    assert!(
        pending.iter().any(|e| e.account == env.account
            && matches!(&e.event, hospital_domain::live::PersonalEvent::Message(m) if m.kind == MessageKind::VisitReminder)),
        "{pending:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_is_retried_without_resending_the_others() {
    let env = Env::new().await;
    let a = env.appointment().await;
    env.wechat.set_busy(true);
    let id = env.remind(&a, Span::milliseconds(500)).await;
    let _n = env.start(&env.sms_url);

    env.until("the first attempt", async || env.reminder(id).await.attempts >= 1).await;
    let r = env.reminder(id).await;
    assert_eq!(r.status, ReminderStatus::Pending);
    assert_eq!(state(&r, Channel::InApp), DeliveryState::Sent);
    assert_eq!(state(&r, Channel::Sms), DeliveryState::Sent);
    assert_eq!(state(&r, Channel::Wechat), DeliveryState::Pending);
    assert!(r.channel(Channel::Wechat).unwrap().last_error.as_deref().unwrap().contains("-1"), "{r:?}");
    assert!(r.due_at > Utc::now() - Span::milliseconds(300), "moved to its retry time");

    // Still failing: retried with backoff, the others untouched.
    env.until("a second attempt", async || env.reminder(id).await.attempts >= 2).await;
    env.wechat.set_busy(false);
    env.until("the reminder", async || env.reminder(id).await.status == ReminderStatus::Done).await;
    let r = env.reminder(id).await;
    assert_eq!(state(&r, Channel::Wechat), DeliveryState::Sent);
    assert!(r.channel(Channel::Wechat).unwrap().attempts >= 3, "{r:?}");
    assert_eq!(r.channel(Channel::Sms).unwrap().attempts, 1, "SMS went once");
    assert_eq!(r.channel(Channel::InApp).unwrap().attempts, 1);
    assert_eq!(env.sms_with(notifier::SMS_REMINDER_TEMPLATE), 1);
    assert_eq!(env.wechat_with(notifier::WECHAT_REMINDER_TEMPLATE), 1);
    assert_eq!(env.in_app(MessageKind::VisitReminder).await, 1);
    let sms = &env.sms.messages_for(&env.phone)[0];
    assert!(sms.text.contains("张三您好") && sms.text.contains("请提前15分钟到院签到"), "{}", sms.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_survive_a_restart_and_a_closed_port_is_retried_after_it() {
    let env = Env::new().await;
    let a = env.appointment().await;
    // Scheduled while a notifier runs, due after it is gone.
    let first = env.start(&env.sms_url);
    let later = env.remind(&a, Span::seconds(1)).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(env.reminder(later).await.status, ReminderStatus::Pending, "nobody sent it");
    let second = env.start(&env.sms_url);
    env.until("the reminder after the restart", async || env.reminder(later).await.status == ReminderStatus::Done)
        .await;
    assert_eq!(env.sms_with(notifier::SMS_REMINDER_TEMPLATE), 1);
    assert_eq!(env.wechat_with(notifier::WECHAT_REMINDER_TEMPLATE), 1);
    drop(second);

    // SMS at a closed port: in-app and WeChat go, SMS waits; after a restart with SMS back, only
    // SMS is sent.
    let b = env.appointment().await;
    let down = closed_port().await;
    let third = env.start(&down);
    let id = env.remind(&b, Span::zero()).await;
    env.until("the first attempt", async || env.reminder(id).await.attempts >= 1).await;
    drop(third);
    let r = env.reminder(id).await;
    assert_eq!(state(&r, Channel::Sms), DeliveryState::Pending, "{r:?}");
    assert_eq!(state(&r, Channel::Wechat), DeliveryState::Sent);
    let _fourth = env.start(&env.sms_url);
    env.until("SMS after the restart", async || env.reminder(id).await.status == ReminderStatus::Done).await;
    let r = env.reminder(id).await;
    assert_eq!(r.channel(Channel::Wechat).unwrap().attempts, 1, "WeChat was not sent again");
    assert_eq!(env.sms_with(notifier::SMS_REMINDER_TEMPLATE), 2, "one per appointment");
    assert_eq!(env.wechat_with(notifier::WECHAT_REMINDER_TEMPLATE), 2);
    assert_eq!(env.in_app(MessageKind::VisitReminder).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_appointments_reminder_is_not_sent() {
    let env = Env::new().await;
    let mut a = env.appointment().await;
    let id = env.remind(&a, Span::seconds(1)).await;
    let _n = env.start(&env.sms_url);
    a.apply(AppointmentEvent::Cancel, Utc::now()).unwrap();
    env.store.apply_booking(BookingWrite { appointments: vec![a.clone()], ..Default::default() }).await.unwrap();
    env.until("the reminder", async || env.reminder(id).await.status != ReminderStatus::Pending).await;
    let r = env.reminder(id).await;
    assert_eq!(r.status, ReminderStatus::Skipped, "{r:?}");
    assert!(r.channels.is_empty());
    assert!(env.sms.messages_for(&env.phone).is_empty());
    assert!(env.wechat.messages_for(OPENID).is_empty());
    assert_eq!(env.in_app(MessageKind::VisitReminder).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_booking_is_confirmed_and_its_reminders_scheduled() {
    let env = Env::new().await;
    let n = env.start(&env.sms_url);
    let handle = n.handle();
    let a = env.appointment().await;
    assert_eq!(a.status, AppointmentStatus::Confirmed);
    // What the schedule actor does once the confirming write is durable (twice: idempotent).
    handle.confirmed([&a, &a]);
    let confirmation = ReminderId::of(a.id, ReminderKind::BookingConfirmed);
    env.until("the confirmation", async || {
        env.store.reminder(confirmation).await.unwrap().is_some_and(|r| r.status == ReminderStatus::Done)
    })
    .await;
    let r = env.reminder(confirmation).await;
    assert_eq!(state(&r, Channel::InApp), DeliveryState::Skipped, "the booking write stored it");
    assert_eq!(env.sms_with(notifier::SMS_BOOKING_TEMPLATE), 1);
    assert_eq!(env.wechat_with(notifier::WECHAT_BOOKING_TEMPLATE), 1);
    assert_eq!(env.in_app(MessageKind::BookingSuccess).await, 0, "no second in-app message");

    // The visit is tomorrow 08:00 (Shanghai): the evening before at 18:00, and 2 s before (the
    // test's `soon_before`).
    let zone = HospitalZone::default();
    let visit = zone.to_utc(a.date, chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap());
    let eve = zone.to_utc(a.date - Span::days(1), chrono::NaiveTime::from_hms_opt(18, 0, 0).unwrap());
    let soon = env.reminder(ReminderId::of(a.id, ReminderKind::SoonBefore)).await;
    assert_eq!(soon.due_at, visit - Span::seconds(2));
    assert_eq!(soon.expires_at, visit);
    match env.store.reminder(ReminderId::of(a.id, ReminderKind::DayBefore)).await.unwrap() {
        Some(r) => assert_eq!(r.due_at, eve),
        None => assert!(eve <= Utc::now(), "only a past evening reminder is skipped"),
    }
    // A non-confirmed appointment is ignored.
    let mut held = env.appointment().await;
    held.status = AppointmentStatus::Held;
    handle.confirmed([&held]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.store.reminder(ReminderId::of(held.id, ReminderKind::BookingConfirmed)).await.unwrap().is_none());
}

/// 号源调整 moves `a`'s segment to start at `h:m` (half an hour long), as the schedule actor's
/// write stores it; `tell`: with the time-changed message that write carries (false: as if the
/// process died before the notifier worked on it).
async fn move_visit(env: &Env, a: &Appointment, h: u32, m: u32, tell: bool) {
    let mut session = env.store.session(a.slot.session_id).await.unwrap().unwrap();
    let seg = &mut session.segments[a.slot.segment as usize];
    seg.start = NaiveTime::from_hms_opt(h, m, 0).unwrap();
    seg.end = seg.start + Span::minutes(30);
    let messages = if tell {
        let body = format!("就诊时间改为 {h:02}:{m:02}");
        vec![Message::new(
            env.account,
            MessageKind::TimeChanged,
            "就诊时间变更",
            body,
            Some(a.id.to_string()),
            Utc::now(),
        )]
    } else {
        vec![]
    };
    let w = BookingWrite { sessions: vec![session], messages, ..Default::default() };
    env.store.apply_booking(w).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_visit_moves_its_reminders_and_names_the_new_time() {
    let env = Env::new().await;
    // The real two hours before; this test moves the clock itself (`run_due_at`).
    let n =
        env.start_with(&env.sms_url, NotifierConfig { tick: Duration::from_secs(3600), ..NotifierConfig::default() });
    tokio::time::sleep(Duration::from_millis(200)).await; // the loop's first tick is past
    let zone = HospitalZone::default();
    let at = |a: &Appointment, h: u32, m: u32| zone.to_utc(a.date, NaiveTime::from_hms_opt(h, m, 0).unwrap());
    let soon = |a: &Appointment| ReminderId::of(a.id, ReminderKind::SoonBefore);
    // Three visits tomorrow at 08:00, their reminders scheduled as a confirmed booking's are.
    let (later, earlier, unseen) = (env.appointment().await, env.appointment().await, env.appointment().await);
    for a in [&later, &earlier, &unseen] {
        n.schedule_visit(a, at(a, 8, 0)).await.unwrap();
        assert_eq!(env.reminder(soon(a)).await.due_at, at(a, 6, 0));
    }
    let eve = env.store.reminder(ReminderId::of(later.id, ReminderKind::DayBefore)).await.unwrap().is_some();
    move_visit(&env, &later, 10, 0, true).await;
    move_visit(&env, &earlier, 7, 0, true).await;
    move_visit(&env, &unseen, 10, 0, false).await;

    // The time-changed messages go out now, and move their appointments' reminders first.
    n.run_due().await;
    let r = env.reminder(soon(&later)).await;
    assert_eq!(
        (r.status, r.due_at, r.scheduled_for, r.expires_at),
        (ReminderStatus::Pending, at(&later, 8, 0), at(&later, 8, 0), at(&later, 10, 0))
    );
    let r = env.reminder(soon(&earlier)).await;
    assert_eq!((r.status, r.due_at, r.expires_at), (ReminderStatus::Pending, at(&earlier, 5, 0), at(&earlier, 7, 0)));
    let r = env.reminder(soon(&unseen)).await;
    assert_eq!((r.due_at, r.expires_at), (at(&unseen, 6, 0), at(&unseen, 8, 0)), "nobody told the notifier");
    if eve {
        let r = env.reminder(ReminderId::of(later.id, ReminderKind::DayBefore)).await;
        assert_eq!(r.expires_at, at(&later, 10, 0), "the evening reminder names the new time");
    }

    // Reminder SMS by the visit time they name.
    let naming = |hhmm: &str| {
        env.sms
            .messages_for(&env.phone)
            .iter()
            .filter(|m| m.template_code == notifier::SMS_REMINDER_TEMPLATE)
            .filter(|m| m.params["time"].as_str().is_some_and(|t| t.ends_with(hhmm)))
            .count()
    };
    let eve = usize::from(eve);
    // 06:01: the earlier visit's is sent (due 05:00); the unseen move is found when its old time
    // comes, and it waits for the new one, sending nothing; the evening reminders (18:00 today,
    // if it was still ahead) went out too, each naming its visit's new time.
    n.run_due_at(at(&later, 6, 1)).await;
    assert_eq!(env.reminder(soon(&earlier)).await.status, ReminderStatus::Done);
    let r = env.reminder(soon(&unseen)).await;
    assert_eq!(
        (r.status, r.attempts, r.due_at, r.expires_at),
        (ReminderStatus::Pending, 0, at(&unseen, 8, 0), at(&unseen, 10, 0))
    );
    assert_eq!(env.reminder(soon(&later)).await.status, ReminderStatus::Pending);
    assert_eq!((naming("07:00"), naming("10:00"), naming("08:00")), (1 + eve, 2 * eve, 0));
    // 08:01: the two visits at 10:00.
    n.run_due_at(at(&later, 8, 1)).await;
    for a in [&later, &unseen] {
        assert_eq!(env.reminder(soon(a)).await.status, ReminderStatus::Done);
    }
    assert_eq!((naming("07:00"), naming("10:00"), naming("08:00")), (1 + eve, 2 + 2 * eve, 0));
    let all = MessageFilter { category: None, unread_only: false, limit: 100 };
    let texts: Vec<String> = env
        .store
        .list_messages(env.account, all)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == MessageKind::VisitReminder)
        .map(|m| m.body)
        .collect();
    assert_eq!(texts.len(), 3 + 3 * eve, "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t.contains("今天10:00")).count(), 2, "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("08:00")), "no reminder names the old time: {texts:?}");
}

fn outbound_state(o: &Outbound, c: Channel) -> DeliveryState {
    o.channel(c).unwrap_or_else(|| panic!("{c:?} not in {:?}", o.channels)).state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_go_out_by_their_kinds_preferences_with_their_templates() {
    let env = Env::new().await;
    // SMS on for payment results (off by default), off for clinic stops (on by default).
    let prefs = NotificationPreferences::default().with_changes(&[
        KindChannels { kind: MessageKind::PaymentSuccess, in_app: true, sms: true, wechat: false },
        KindChannels { kind: MessageKind::ClinicStopped, in_app: true, sms: false, wechat: true },
    ]);
    env.store.put_notification_preferences(env.account, &prefs, None).await.unwrap();
    let stop =
        env.message(MessageKind::ClinicStopped, "停诊通知", "12月20日 上午 的门诊因故停诊，张三的预约已取消。").await;
    let paid =
        Message::new(env.account, MessageKind::PaymentSuccess, "支付成功", "挂号费 ¥25.00 已支付。", None, Utc::now());
    env.store.put_message(&paid, &[]).await.unwrap();
    let offer = env.message(MessageKind::WaitlistOffer, "候补成功", "有号了：已为张三保留。").await;
    let notice = env.message(MessageKind::Announcement, "公告", "门诊楼装修").await;
    assert_eq!(env.store.outbound(notice.id).await.unwrap(), None, "announcements stay in the message centre");
    let _n = env.start(&env.sms_url);
    for id in [stop.id, paid.id, offer.id] {
        env.until("the outbound row", async || env.outbound(id).await.status == ReminderStatus::Done).await;
    }

    let o = env.outbound(stop.id).await;
    assert_eq!(
        o.channels.iter().map(|c| c.channel).collect::<Vec<_>>(),
        vec![Channel::Wechat],
        "SMS off, in-app is the message"
    );
    assert_eq!(env.sms_with("SMS_CLINIC_STOPPED"), 0);
    assert_eq!(env.wechat_with("clinic-stopped-tmpl"), 1);
    let wx = env.wechat.messages_for(OPENID).into_iter().find(|m| m.template_id == "clinic-stopped-tmpl").unwrap();
    assert_eq!(wx.data["thing1"], "停诊通知");
    assert_eq!(wx.data["thing3"].chars().count(), 20, "shortened to a WeChat thing");
    assert_eq!(wx.page.as_deref(), Some(format!("pages/messages/detail?id={}", stop.id).as_str()));

    let o = env.outbound(paid.id).await;
    assert_eq!(outbound_state(&o, Channel::Sms), DeliveryState::Sent);
    assert!(o.channel(Channel::Wechat).is_none(), "WeChat off for payments");
    assert_eq!(env.sms_with("SMS_PAYMENT_RESULT"), 1);
    let sms = env.sms.messages_for(&env.phone).into_iter().find(|m| m.template_code == "SMS_PAYMENT_RESULT").unwrap();
    assert_eq!(sms.params, serde_json::json!({ "title": "支付成功", "content": "挂号费 ¥25.00 已支付。" }));
    assert!(sms.text.ends_with("支付成功：挂号费 ¥25.00 已支付。如有疑问请联系医院收费处。"), "{}", sms.text);

    let o = env.outbound(offer.id).await;
    assert_eq!(
        (outbound_state(&o, Channel::Sms), outbound_state(&o, Channel::Wechat)),
        (DeliveryState::Sent, DeliveryState::Sent)
    );
    assert_eq!((env.sms_with("SMS_WAITLIST_OFFER"), env.wechat_with("waitlist-offer-tmpl")), (1, 1));
    // The in-app messages are the ones written, once each; nothing else was added.
    assert_eq!(env.in_app(MessageKind::ClinicStopped).await, 1);
    assert_eq!(env.in_app(MessageKind::PaymentSuccess).await, 1);
    assert_eq!(env.sms.messages_for(&env.phone).len(), 2, "one SMS per message that allows it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_channel_failing_is_retried_alone_then_given_up() {
    let env = Env::new().await;
    env.wechat.set_busy(true);
    let stop = env.message(MessageKind::ClinicStopped, "停诊通知", "门诊因故停诊。").await;
    let config = NotifierConfig { max_attempts: 3, ..Env::config() };
    let _n = env.start_with(&env.sms_url, config);
    env.until("the first attempt", async || env.outbound(stop.id).await.attempts >= 1).await;
    let o = env.outbound(stop.id).await;
    assert_eq!(outbound_state(&o, Channel::Sms), DeliveryState::Sent);
    assert_eq!(outbound_state(&o, Channel::Wechat), DeliveryState::Pending);
    env.until("given up", async || env.outbound(stop.id).await.status != ReminderStatus::Pending).await;
    let o = env.outbound(stop.id).await;
    assert_eq!(o.status, ReminderStatus::GaveUp, "{o:?}");
    assert_eq!(o.attempts, 3);
    assert_eq!(outbound_state(&o, Channel::Wechat), DeliveryState::Failed);
    assert_eq!(o.channel(Channel::Wechat).unwrap().attempts, 3);
    assert_eq!(o.channel(Channel::Sms).unwrap().attempts, 1, "the sent channel is not sent again");
    assert_eq!(env.sms_with("SMS_CLINIC_STOPPED"), 1);
    assert_eq!(env.wechat_with("clinic-stopped-tmpl"), 0);
    // Given up means out of the queue: WeChat back, nothing more goes.
    env.wechat.set_busy(false);
    let later = env.message(MessageKind::ClinicStopped, "停诊通知", "另一场门诊停诊。").await;
    env.until("the later row", async || env.outbound(later.id).await.status == ReminderStatus::Done).await;
    assert_eq!(env.wechat_with("clinic-stopped-tmpl"), 1, "only the later one");
    assert_eq!(env.outbound(stop.id).await.status, ReminderStatus::GaveUp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_half_sent_by_a_dead_notifier_is_finished_after_its_lease_and_nothing_is_sent_twice() {
    let env = Env::new().await;
    let stop = env.message(MessageKind::ClinicStopped, "停诊通知", "门诊因故停诊。").await;
    // Another notifier claimed it, sent the SMS, recorded that, and died before WeChat: its
    // lease holds the row for a second.
    let entry = env.store.due_outbound(Utc::now() - Span::hours(1), Utc::now(), 100).await.unwrap();
    let entry = entry.into_iter().find(|o| o.id() == stop.id).expect("queued with the message");
    let dead = uuid::Uuid::new_v4();
    let now = Utc::now();
    let hospital_store::Claim::Claimed(mut mid) =
        env.store.claim_outbound(&entry, dead, now, now + Span::seconds(1)).await.unwrap()
    else {
        panic!("claimed")
    };
    mid.channels = vec![
        hospital_domain::notify::ChannelDelivery {
            state: DeliveryState::Sent,
            attempts: 1,
            sent_at: Some(now),
            ..hospital_domain::notify::ChannelDelivery::pending(Channel::Sms)
        },
        hospital_domain::notify::ChannelDelivery::pending(Channel::Wechat),
    ];
    assert!(env.store.progress_outbound(&mid, dead).await.unwrap());
    let n = env.start(&env.sms_url);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(env.outbound(stop.id).await.status, ReminderStatus::Pending, "leased to the dead one");
    assert_eq!(env.wechat_with("clinic-stopped-tmpl"), 0);
    env.until("sent after the lease", async || env.outbound(stop.id).await.status == ReminderStatus::Done).await;
    let o = env.outbound(stop.id).await;
    assert_eq!(o.channel(Channel::Sms).unwrap().attempts, 1, "the SMS the dead one sent is not sent again");
    assert_eq!((env.sms_with("SMS_CLINIC_STOPPED"), env.wechat_with("clinic-stopped-tmpl")), (0, 1));
    // The dead one's outcome, written late, is refused: the lease is no longer its.
    mid.status = ReminderStatus::Done;
    assert!(!env.store.finish_outbound(&mid, dead).await.unwrap());

    // SMS down: WeChat goes, SMS waits; a restart with SMS back sends only the SMS.
    drop(n);
    let down = closed_port().await;
    let third = env.start(&down);
    let other = env.message(MessageKind::WaitlistOffer, "候补成功", "有号了。").await;
    env.until("the first attempt", async || env.outbound(other.id).await.attempts >= 1).await;
    drop(third);
    let o = env.outbound(other.id).await;
    assert_eq!(
        (outbound_state(&o, Channel::Sms), outbound_state(&o, Channel::Wechat)),
        (DeliveryState::Pending, DeliveryState::Sent)
    );
    let _fourth = env.start(&env.sms_url);
    env.until("SMS after the restart", async || env.outbound(other.id).await.status == ReminderStatus::Done).await;
    let o = env.outbound(other.id).await;
    assert_eq!(o.channel(Channel::Wechat).unwrap().attempts, 1, "WeChat was not sent again");
    assert_eq!((env.sms_with("SMS_WAITLIST_OFFER"), env.wechat_with("waitlist-offer-tmpl")), (1, 1));
    assert_eq!((env.sms_with("SMS_CLINIC_STOPPED"), env.wechat_with("clinic-stopped-tmpl")), (0, 1), "nothing again");
}
