//! The notifier (MSG-2..4): sends booking confirmations and visit reminders by each channel the
//! account's preferences allow (in-app message + live event, SMS, WeChat subscribe message).
//!
//! Reminders are rows (`NotifyStore`), not timers: a confirmed booking schedules its reminders
//! (the confirmation itself, the evening before at 18:00 local, two hours before the segment
//! starts; those already past are skipped) with one durable write, and every `tick` the notifier
//! reads what is due, claims each reminder (a lease, so two notifiers never work on one), sends
//! every channel still pending, and writes the outcome: each channel's state (sent, skipped,
//! failed for good, or pending again), and the reminder done, or moved to its retry time with an
//! exponential backoff, or given up after `max_attempts`. A channel that succeeded is never sent
//! again; a process that dies loses nothing but the lease, which lapses. A reminder whose
//! appointment was cancelled in the meantime is skipped when it comes due.
//!
//! Why a supervised task, not an actor: nothing asks the notifier questions, its state is all in
//! the store, and the work is a loop (a tick, plus a nudge when a booking is confirmed). So it is
//! one task per process that runs each unit of work in its own spawned task: a panic there is
//! caught (`JoinError`), counted and logged, and the loop goes on; the reminder it was working on
//! is retried when its lease lapses. In a cluster every node may run one; the leases keep them
//! from sending anything twice.

use chrono::{DateTime, Days, NaiveTime, Utc};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::message::Message;
use hospital_domain::notify::{Channel, ChannelDelivery, DeliveryState, Reminder, ReminderKind, ReminderStatus};
use hospital_domain::time::HospitalZone;
use hospital_integrations::wechat_subscribe::{SubscribeMessage, SubscribeMessenger};
use hospital_integrations::SmsSender;
use hospital_store::{Claim, DataStore, PendingEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Events;

pub use crate::config::{
    NotifierConfig, SMS_BOOKING_TEMPLATE, SMS_BOOKING_TEXT, SMS_REMINDER_TEMPLATE, SMS_REMINDER_TEXT,
    WECHAT_BOOKING_TEMPLATE, WECHAT_REMINDER_TEMPLATE, WECHAT_TEMPLATE_KEYS,
};

/// What the schedule actor holds (`ActorDeps::notify`, from `Notifier::handle`): it reports each
/// confirmed appointment once the write that confirmed it is durable. The default handle (no
/// notifier: tests, benchmarks) drops the reports; the reminders are rows, so a notifier started
/// later still sends what was scheduled.
#[derive(Clone, Default)]
pub struct NotifyHandle {
    tx: Option<mpsc::UnboundedSender<Appointment>>,
}

impl NotifyHandle {
    /// Reports the confirmed appointments among `appointments` (other statuses are ignored).
    /// Never blocks.
    pub fn confirmed<'a>(&self, appointments: impl IntoIterator<Item = &'a Appointment>) {
        let Some(tx) = &self.tx else { return };
        for a in appointments.into_iter().filter(|a| a.status == AppointmentStatus::Confirmed) {
            if tx.send(a.clone()).is_err() {
                tracing::warn!(appointment = %a.id, "notifier stopped; confirmation not scheduled");
            }
        }
    }
}

/// What the notifier sends with and through.
#[derive(Clone)]
pub struct NotifierDeps {
    pub data: Arc<dyn DataStore>,
    pub sms: Arc<dyn SmsSender>,
    /// None: no WeChat channel (every WeChat delivery is skipped).
    pub wechat: Option<Arc<dyn SubscribeMessenger>>,
    pub events: Events,
    pub zone: HospitalZone,
}

/// A running notifier. Dropping it (or `stop`) ends its task; the reminders stay in the store
/// for the next one.
pub struct Notifier {
    worker: Arc<Worker>,
    task: tokio::task::JoinHandle<()>,
    /// Where `handle`s report confirmed bookings.
    tx: mpsc::UnboundedSender<Appointment>,
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifier {
    /// Starts the notifier task. Start it before the actor system and give the actors its
    /// `handle` (`ActorDeps::with_notify`).
    pub fn start(deps: NotifierDeps, config: NotifierConfig) -> Notifier {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Arc::new(Worker { deps, config, owner: Uuid::new_v4() });
        let task = tokio::spawn(run(worker.clone(), rx));
        tracing::info!(owner = %worker.owner, "notifier started");
        Notifier { worker, task, tx }
    }

    /// Where confirmed bookings are reported (what the schedule actors hold).
    pub fn handle(&self) -> NotifyHandle {
        NotifyHandle { tx: Some(self.tx.clone()) }
    }

    pub async fn stop(self) {
        self.task.abort();
    }

    /// Schedules an appointment's confirmation and reminders for a visit at `visit_at` (what a
    /// confirmed booking does, with the visit time read from its session). How many were new.
    pub async fn schedule_visit(
        &self,
        appointment: &Appointment,
        visit_at: DateTime<Utc>,
    ) -> Result<usize, hospital_store::StoreError> {
        self.worker.schedule_visit(appointment, visit_at, Utc::now()).await
    }

    /// Works on what is due now, at once (tests; the loop does it every tick).
    pub async fn run_due(&self) {
        self.worker.run_due(Utc::now()).await;
    }
}

async fn run(worker: Arc<Worker>, mut rx: mpsc::UnboundedReceiver<Appointment>) {
    let mut tick = tokio::time::interval(worker.config.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether a handle can still report confirmations; once all are gone only the tick is left.
    let mut open = true;
    loop {
        let w = worker.clone();
        let unit = tokio::select! {
            confirmed = rx.recv(), if open => match confirmed {
                Some(a) => tokio::spawn(async move {
                    w.on_confirmed(&a).await;
                    // Send the confirmation now, not at the next tick.
                    w.run_due(Utc::now()).await;
                }),
                None => {
                    open = false;
                    continue;
                }
            },
            _ = tick.tick() => tokio::spawn(async move { w.run_due(Utc::now()).await }),
        };
        // One unit at a time; a panic in one is caught here and the loop goes on.
        if let Err(e) = unit.await {
            if e.is_panic() {
                metrics::counter!("notifier_panics_total").increment(1);
                tracing::error!(error = %e, "notifier work panicked; continuing");
            }
        }
    }
}

struct Worker {
    deps: NotifierDeps,
    config: NotifierConfig,
    /// This notifier's lease identity.
    owner: Uuid,
}

/// What a reminder says, by channel.
struct Content {
    title: String,
    body: String,
    sms_template: String,
    sms_params: serde_json::Value,
    wechat: Option<SubscribeMessage>,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// At most `n` characters (a WeChat `thing` takes 20).
fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Worker {
    async fn on_confirmed(&self, a: &Appointment) {
        let visit_at = match self.deps.data.session(a.slot.session_id).await {
            Ok(Some(s)) => match s.segments.get(a.slot.segment as usize) {
                Some(seg) => self.deps.zone.to_utc(a.date, seg.start),
                None => self.deps.zone.to_utc(a.date, NaiveTime::MIN),
            },
            Ok(None) => self.deps.zone.to_utc(a.date, NaiveTime::MIN),
            Err(e) => {
                tracing::error!(appointment = %a.id, error = %e, "cannot read the session; reminders not scheduled");
                return;
            }
        };
        if let Err(e) = self.schedule_visit(a, visit_at, Utc::now()).await {
            tracing::error!(appointment = %a.id, error = %e, "cannot schedule reminders");
        }
    }

    async fn schedule_visit(
        &self,
        a: &Appointment,
        visit_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, hospital_store::StoreError> {
        let mut confirmation = Reminder::new(a.account_id, a.id, ReminderKind::BookingConfirmed, now, visit_at, now);
        // The booking write already stored the in-app "预约成功" message.
        confirmation.covered = vec![Channel::InApp];
        let mut list = vec![confirmation];
        let local_day = self.deps.zone.local_date(visit_at);
        if let Some(eve) = local_day.checked_sub_days(Days::new(1)) {
            let at = self.deps.zone.to_utc(eve, self.config.day_before_at);
            if at > now && at < visit_at {
                list.push(Reminder::new(a.account_id, a.id, ReminderKind::DayBefore, at, visit_at, now));
            }
        }
        let soon = visit_at - chrono(self.config.soon_before);
        if soon > now {
            list.push(Reminder::new(a.account_id, a.id, ReminderKind::SoonBefore, soon, visit_at, now));
        }
        let n = self.deps.data.schedule_reminders(&list).await?;
        tracing::debug!(appointment = %a.id, new = n, "reminders scheduled");
        Ok(n)
    }

    async fn run_due(&self, now: DateTime<Utc>) {
        let from = now - chrono(self.config.lookback);
        let due = match self.deps.data.due_reminders(from, now, self.config.batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due reminders");
                return;
            }
        };
        for entry in due {
            let lease_until = now + chrono(self.config.lease);
            match self.deps.data.claim_reminder(&entry, self.owner, now, lease_until).await {
                Ok(Claim::Claimed(r)) => {
                    let r = self.attempt(r, Utc::now()).await;
                    match self.deps.data.finish_reminder(&r, self.owner).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(reminder = %r.id, "lease lost before the outcome was written"),
                        Err(e) => tracing::error!(reminder = %r.id, error = %e, "cannot record a reminder's outcome"),
                    }
                }
                Ok(Claim::NotDue) => {}
                Err(e) => tracing::warn!(reminder = %entry.id, error = %e, "cannot claim a reminder"),
            }
        }
    }

    fn skip(mut r: Reminder, now: DateTime<Utc>, why: &str) -> Reminder {
        tracing::info!(reminder = %r.id, appointment = %r.appointment_id, why, "reminder skipped");
        metrics::counter!("reminders_skipped_total").increment(1);
        r.status = ReminderStatus::Skipped;
        r.note = Some(why.into());
        r.updated_at = now;
        r
    }

    /// One attempt: every channel still pending is tried; the returned reminder is the outcome.
    async fn attempt(&self, mut r: Reminder, now: DateTime<Utc>) -> Reminder {
        let data = &self.deps.data;
        if r.expires_at <= now {
            return Self::skip(r, now, "too late: the visit has started");
        }
        let appointment = match data.appointment(r.appointment_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return Self::skip(r, now, "no such appointment"),
            Err(e) => return self.retry_later(r, now, &format!("store: {e}")),
        };
        let still_on = match r.kind {
            ReminderKind::BookingConfirmed => appointment.status.occupies_slot(),
            ReminderKind::DayBefore | ReminderKind::SoonBefore => appointment.status == AppointmentStatus::Confirmed,
        };
        if !still_on {
            return Self::skip(r, now, "the appointment is no longer on");
        }
        let account = match data.account(r.account_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return Self::skip(r, now, "no such account"),
            Err(e) => return self.retry_later(r, now, &format!("store: {e}")),
        };
        if r.channels.is_empty() {
            // Decided once, at the first attempt: a retry never adds or drops a channel.
            let prefs = match data.notification_preferences(r.account_id).await {
                Ok(p) => p.for_kind(r.kind.message_kind()),
                Err(e) => return self.retry_later(r, now, &format!("store: {e}")),
            };
            r.channels = prefs
                .channels()
                .into_iter()
                .map(|c| {
                    if r.covered.contains(&c) {
                        return ChannelDelivery::skipped(c, "delivered with the booking");
                    }
                    match c {
                        Channel::InApp => ChannelDelivery::pending(c),
                        Channel::Sms if account.phone.is_none() => ChannelDelivery::skipped(c, "no phone"),
                        Channel::Wechat if self.deps.wechat.is_none() => {
                            ChannelDelivery::skipped(c, "WeChat is not configured")
                        }
                        Channel::Wechat if self.wechat_template(r.kind).is_none() => {
                            ChannelDelivery::skipped(c, "no WeChat template for this kind")
                        }
                        Channel::Wechat if account.wechat_openid.is_none() => {
                            ChannelDelivery::skipped(c, "no WeChat openid")
                        }
                        _ => ChannelDelivery::pending(c),
                    }
                })
                .collect();
        }
        let content = self.content(&r, &appointment, account.wechat_openid.as_deref()).await;
        for i in 0..r.channels.len() {
            if r.channels[i].state.is_final() {
                continue;
            }
            let channel = r.channels[i].channel;
            let outcome = match channel {
                Channel::InApp => self.send_in_app(&r, &content, now).await,
                Channel::Sms => self.send_sms(account.phone.as_ref(), &content).await,
                Channel::Wechat => self.send_wechat(&content).await,
            };
            let d = &mut r.channels[i];
            d.attempts += 1;
            let label = match channel {
                Channel::InApp => "in_app",
                Channel::Sms => "sms",
                Channel::Wechat => "wechat",
            };
            match outcome {
                Ok(()) => {
                    metrics::counter!("notifications_sent_total", "channel" => label).increment(1);
                    d.state = DeliveryState::Sent;
                    d.sent_at = Some(Utc::now());
                    d.last_error = None;
                }
                Err((retryable, error)) => {
                    metrics::counter!("notifications_failed_total", "channel" => label).increment(1);
                    tracing::warn!(reminder = %r.id, channel = label, retryable, %error, "notification failed");
                    d.state = if retryable { DeliveryState::Pending } else { DeliveryState::Failed };
                    d.last_error = Some(error);
                }
            }
        }
        r.attempts += 1;
        r.updated_at = now;
        if r.channels.iter().all(|d| d.state.is_final()) {
            r.status = ReminderStatus::Done;
        } else if r.attempts >= self.config.max_attempts {
            r.status = ReminderStatus::GaveUp;
            for d in r.channels.iter_mut().filter(|d| !d.state.is_final()) {
                d.state = DeliveryState::Failed;
            }
        } else {
            r.due_at = now + self.backoff(r.attempts);
        }
        r
    }

    /// A failure before any channel was tried (the store): the same attempt again later.
    fn retry_later(&self, mut r: Reminder, now: DateTime<Utc>, why: &str) -> Reminder {
        tracing::warn!(reminder = %r.id, why, "reminder postponed");
        r.attempts += 1;
        r.updated_at = now;
        r.note = Some(why.into());
        if r.attempts >= self.config.max_attempts {
            r.status = ReminderStatus::GaveUp;
        } else {
            r.due_at = now + self.backoff(r.attempts);
        }
        r
    }

    fn wechat_template(&self, kind: ReminderKind) -> Option<&String> {
        match kind {
            ReminderKind::BookingConfirmed => self.config.wechat_booking_template.as_ref(),
            ReminderKind::DayBefore | ReminderKind::SoonBefore => self.config.wechat_reminder_template.as_ref(),
        }
    }

    fn backoff(&self, attempts: u32) -> chrono::Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        chrono(self.config.retry_base.saturating_mul(factor).min(self.config.retry_max))
    }

    async fn content(&self, r: &Reminder, a: &Appointment, openid: Option<&str>) -> Content {
        let doctor = match self.deps.data.doctor(a.doctor_id).await {
            Ok(Some(d)) => d.name,
            _ => "医生".to_string(),
        };
        let visit_at = r.expires_at;
        let local = visit_at.with_timezone(&self.deps.zone.0);
        let hhmm = local.format("%H:%M").to_string();
        let full = local.format("%Y-%m-%d %H:%M").to_string();
        let (title, body, sms_template, wechat_template, note) = match r.kind {
            ReminderKind::BookingConfirmed => (
                "预约成功",
                format!(
                    "{}：{} {} {} 第{}号，{}就诊，挂号单号 {}。",
                    a.patient_name,
                    a.date,
                    a.period.label(),
                    doctor,
                    a.place,
                    hhmm,
                    a.slip_no.clone().unwrap_or_default()
                ),
                &self.config.sms_booking_template,
                &self.config.wechat_booking_template,
                format!("就诊序号{}", a.place),
            ),
            ReminderKind::DayBefore => (
                "就诊提醒",
                format!("{}明天{}就诊（{}，第{}号），请提前15分钟到院签到。", a.patient_name, hhmm, doctor, a.place),
                &self.config.sms_reminder_template,
                &self.config.wechat_reminder_template,
                "明天就诊，请提前到院签到".to_string(),
            ),
            ReminderKind::SoonBefore => (
                "就诊提醒",
                format!("{}今天{}就诊（{}，第{}号），请按时到院签到。", a.patient_name, hhmm, doctor, a.place),
                &self.config.sms_reminder_template,
                &self.config.wechat_reminder_template,
                "即将就诊，请按时到院签到".to_string(),
            ),
        };
        let mut sms_params = serde_json::json!({ "name": a.patient_name, "time": full, "doctor": doctor });
        if r.kind == ReminderKind::BookingConfirmed {
            sms_params["no"] = serde_json::json!(a.place.to_string());
        }
        let wechat = match (wechat_template, openid) {
            (Some(t), Some(openid)) => Some(SubscribeMessage {
                miniprogram_state: self.config.miniprogram_state,
                ..SubscribeMessage::new(openid, t.clone())
                    .page(format!("pages/appointment/detail?id={}", a.id))
                    .value("thing1", clip(&a.patient_name, 20))
                    .value("time2", full.clone())
                    .value("thing3", clip(&doctor, 20))
                    .value("thing4", clip(&note, 20))
            }),
            _ => None,
        };
        Content { title: title.into(), body, sms_template: sms_template.clone(), sms_params, wechat }
    }

    async fn send_in_app(&self, r: &Reminder, c: &Content, now: DateTime<Utc>) -> Result<(), (bool, String)> {
        let mut m = Message::new(
            r.account_id,
            r.kind.message_kind(),
            c.title.clone(),
            c.body.clone(),
            Some(r.appointment_id.to_string()),
            now,
        );
        // Derived from the reminder: a retry after a crash rewrites this message, never adds one.
        m.id = r.message_id();
        // The event is written with the message (the gateway follows it with the new unread count).
        let events = vec![PendingEvent::message(&m)];
        self.deps.data.put_message(&m, &events).await.map_err(|e| (true, format!("store: {e}")))?;
        self.deps.events.durable(events);
        Ok(())
    }

    async fn send_sms(&self, phone: Option<&hospital_domain::Phone>, c: &Content) -> Result<(), (bool, String)> {
        let phone = phone.ok_or((false, "no phone".to_string()))?;
        self.deps
            .sms
            .send_template(phone, &c.sms_template, c.sms_params.clone())
            .await
            .map(|_| ())
            .map_err(|e| (e.is_retryable(), e.to_string()))
    }

    async fn send_wechat(&self, c: &Content) -> Result<(), (bool, String)> {
        let (Some(client), Some(msg)) = (self.deps.wechat.as_ref(), c.wechat.as_ref()) else {
            return Err((false, "no WeChat template or openid".into()));
        };
        client.send(msg).await.map_err(|e| (e.is_retryable(), e.to_string()))
    }
}
