//! The notifier (MSG-2..4): sends booking confirmations and visit reminders by each channel the
//! account's preferences allow (in-app message + live event, SMS, WeChat subscribe message), and
//! every other message-centre message of a kind sent on (`outside_route`: clinic stops, waitlist
//! offers, payment results, ...) by SMS and WeChat.
//!
//! Those other messages are written by many paths (the booking engine, payments, exams); each
//! store write of such a message writes its outbound row too (`NotifyStore::outbound`), and the
//! same tick claims, sends and settles those rows as it does reminders: the channels are decided
//! from the account's preferences for the message's kind at the first attempt, each channel keeps
//! its state, and the same lease, backoff and give-up apply. Their templates come from
//! `NotifierConfig::outbound` by kind.
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
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::notify::{
    Channel, ChannelDelivery, DeliveryState, Outbound, Reminder, ReminderId, ReminderKind, ReminderStatus,
};
use hospital_domain::time::HospitalZone;
use hospital_domain::AppointmentId;
use hospital_integrations::wechat_subscribe::{SubscribeMessage, SubscribeMessenger};
use hospital_integrations::SmsSender;
use hospital_store::{Account, Claim, DataStore, PendingEvent};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::Events;

pub use crate::config::{
    sms_templates, wechat_templates, NotifierConfig, OutboundTemplates, OUTBOUND_FALLBACK, OUTBOUND_TEMPLATES,
    OUTBOUND_WECHAT_KEYS, SMS_BOOKING_TEMPLATE, SMS_BOOKING_TEXT, SMS_REMINDER_TEMPLATE, SMS_REMINDER_TEXT,
    WECHAT_BOOKING_TEMPLATE, WECHAT_REMINDER_TEMPLATE, WECHAT_TEMPLATE_KEYS,
};

/// At most this many characters of a message's text go into an SMS (`content`).
const SMS_CONTENT_CHARS: usize = 70;

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
        for k in config.unknown_outbound_kinds() {
            tracing::error!(key = %k, "notifier.outbound names no message kind; ignored");
        }
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

    /// Works on what is due at `at` as if it were that time (tests of reminders hours ahead).
    pub async fn run_due_at(&self, at: DateTime<Utc>) {
        self.worker.run_due(at).await;
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

/// What a reminder or an outbound row says, by channel.
struct Content {
    title: String,
    body: String,
    /// None: no SMS template for this kind (the channel is skipped).
    sms_template: Option<String>,
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
        let visit_at = match self.visit_time(a).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(appointment = %a.id, error = %e, "cannot read the session; reminders not scheduled");
                return;
            }
        };
        if let Err(e) = self.schedule_visit(a, visit_at, Utc::now()).await {
            tracing::error!(appointment = %a.id, error = %e, "cannot schedule reminders");
        }
    }

    /// When the appointment's visit starts: its segment's start, read from its session now (号源调整
    /// may move a booked segment; the appointment's row does not change then).
    async fn visit_time(&self, a: &Appointment) -> Result<DateTime<Utc>, hospital_store::StoreError> {
        let start = self
            .deps
            .data
            .session(a.slot.session_id)
            .await?
            .and_then(|s| s.segments.get(a.slot.segment as usize).map(|seg| seg.start))
            .unwrap_or(NaiveTime::MIN);
        Ok(self.deps.zone.to_utc(a.date, start))
    }

    /// When a visit reminder of `kind` for a visit at `visit_at` is due: the evening before at
    /// `day_before_at`, or `soon_before` the visit. None: no such reminder (not a visit reminder,
    /// or an evening that is not before the visit).
    fn due_for(&self, kind: ReminderKind, visit_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match kind {
            ReminderKind::BookingConfirmed => None,
            ReminderKind::DayBefore => {
                let eve = self.deps.zone.local_date(visit_at).checked_sub_days(Days::new(1))?;
                Some(self.deps.zone.to_utc(eve, self.config.day_before_at)).filter(|at| *at < visit_at)
            }
            ReminderKind::SoonBefore => Some(visit_at - chrono(self.config.soon_before)),
        }
    }

    /// Makes an appointment's pending visit reminders match its visit's time now (its segment
    /// moved: the `TimeChanged` message's outbound row calls this). A reminder due earlier is
    /// pulled forward, one due later pushed back, one the old time made pointless (already past
    /// at booking) added; one already sent or being sent is left (the time-changed message
    /// itself says the new time, and an attempt re-reads the time anyway, see `attempt`).
    async fn realign_reminders(
        &self,
        appointment: AppointmentId,
        now: DateTime<Utc>,
    ) -> Result<(), hospital_store::StoreError> {
        let data = &self.deps.data;
        let Some(a) = data.appointment(appointment).await? else { return Ok(()) };
        if a.status != AppointmentStatus::Confirmed {
            return Ok(());
        }
        let visit_at = self.visit_time(&a).await?;
        for kind in [ReminderKind::DayBefore, ReminderKind::SoonBefore] {
            let id = ReminderId::of(a.id, kind);
            let Some(due) = self.due_for(kind, visit_at).filter(|d| *d > now) else { continue };
            match data.reminder(id).await? {
                None => {
                    let r = Reminder::new(a.account_id, a.id, kind, due, visit_at, now);
                    data.schedule_reminders(std::slice::from_ref(&r)).await?;
                }
                Some(r) if r.status == ReminderStatus::Pending && (r.due_at != due || r.expires_at != visit_at) => {
                    let lease_until = now + chrono(self.config.lease);
                    // Taken by a worker sending it: that attempt re-reads the time itself.
                    let Claim::Claimed(mut r) = data.take_reminder(id, self.owner, now, lease_until).await? else {
                        continue;
                    };
                    (r.due_at, r.scheduled_for, r.expires_at, r.updated_at) = (due, due, visit_at, now);
                    r.note = Some("the visit's time changed".into());
                    data.finish_reminder(&r, self.owner).await?;
                    metrics::counter!("reminders_moved_total").increment(1);
                }
                Some(_) => {}
            }
        }
        Ok(())
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
        for kind in [ReminderKind::DayBefore, ReminderKind::SoonBefore] {
            if let Some(at) = self.due_for(kind, visit_at).filter(|at| *at > now) {
                list.push(Reminder::new(a.account_id, a.id, kind, at, visit_at, now));
            }
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
                    let r = self.attempt(r, now.max(Utc::now())).await;
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
        self.run_due_outbound(now, from).await;
    }

    async fn run_due_outbound(&self, now: DateTime<Utc>, from: DateTime<Utc>) {
        let due = match self.deps.data.due_outbound(from, now, self.config.batch).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due outbound messages");
                return;
            }
        };
        for entry in due {
            let lease_until = now + chrono(self.config.lease);
            match self.deps.data.claim_outbound(&entry, self.owner, now, lease_until).await {
                Ok(Claim::Claimed(o)) => {
                    let mut o = self.attempt_outbound(o, now.max(Utc::now())).await;
                    if o.status != ReminderStatus::Pending {
                        let outcome = match o.status {
                            ReminderStatus::Done => "done",
                            ReminderStatus::Skipped => "skipped",
                            _ => "gave_up",
                        };
                        metrics::counter!("outbound_messages_total", "outcome" => outcome).increment(1);
                        // The row stays (so nothing is sent again) but not the text: the message
                        // centre keeps that, and an account's erasure removes it there.
                        o.message.title.clear();
                        o.message.body.clear();
                    }
                    match self.deps.data.finish_outbound(&o, self.owner).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(message = %o.id(), "lease lost before the outcome was written"),
                        Err(e) => tracing::error!(message = %o.id(), error = %e, "cannot record an outbound outcome"),
                    }
                }
                Ok(Claim::NotDue) => {}
                Err(e) => tracing::warn!(message = %entry.id(), error = %e, "cannot claim an outbound message"),
            }
        }
    }

    /// One attempt of an outbound row: every channel still pending is tried.
    async fn attempt_outbound(&self, mut o: Outbound, now: DateTime<Utc>) -> Outbound {
        let data = &self.deps.data;
        if o.message.kind == MessageKind::TimeChanged {
            // The visit moved: its reminders move with it before the patient is told.
            let appointment = o.message.related.as_deref().and_then(|r| AppointmentId::parse(r).ok());
            if let Some(id) = appointment {
                if let Err(e) = self.realign_reminders(id, now).await {
                    return self.retry_outbound_later(o, now, &format!("store: {e}"));
                }
            }
        }
        let m = &o.message;
        let account = match data.account(m.account_id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                o.status = ReminderStatus::Skipped;
                o.note = Some("no such account".into());
                o.updated_at = now;
                return o;
            }
            Err(e) => return self.retry_outbound_later(o, now, &format!("store: {e}")),
        };
        let templates = self.config.outbound_templates(m.kind).clone();
        if o.channels.is_empty() {
            // Decided once, at the first attempt, from the preferences as they are now.
            let prefs = match data.notification_preferences(m.account_id).await {
                Ok(p) => p.for_kind(m.kind),
                Err(e) => return self.retry_outbound_later(o, now, &format!("store: {e}")),
            };
            // The message itself is the in-app delivery, already stored.
            let wanted: Vec<Channel> = prefs.channels().into_iter().filter(|c| *c != Channel::InApp).collect();
            o.channels = self.decide(
                &wanted,
                &[],
                &account,
                templates.sms_template.is_some(),
                templates.wechat_template.is_some(),
            );
            if o.channels.is_empty() {
                o.note = Some("in the message centre only, as the account's preferences say".into());
            }
        }
        let content = self.outbound_content(&o.message, &templates, account.wechat_openid.as_deref());
        let label = o.id().to_string();
        // One channel at a time, each one sent recorded before the next is tried: a process that
        // dies mid-send resends nothing already recorded.
        for i in 0..o.channels.len() {
            if o.channels[i].state.is_final() {
                continue;
            }
            self.send_pending(&label, &mut o.channels[i..=i], &content, account.phone.as_ref(), None).await;
            let more = o.channels[i + 1..].iter().any(|d| !d.state.is_final());
            if more && o.channels[i].state == DeliveryState::Sent {
                match self.deps.data.progress_outbound(&o, self.owner).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(message = %o.id(), "lease lost mid-send"),
                    Err(e) => tracing::warn!(message = %o.id(), error = %e, "cannot record a sent channel"),
                }
            }
        }
        o.attempts += 1;
        o.updated_at = now;
        match self.settle(o.attempts, &mut o.channels) {
            None => o.status = ReminderStatus::Done,
            Some(true) => {
                tracing::warn!(message = %o.id(), kind = ?o.message.kind, "outbound message given up");
                o.status = ReminderStatus::GaveUp;
            }
            Some(false) => o.due_at = now + self.backoff(o.attempts),
        }
        o
    }

    /// What an outbound row's message says by SMS (`title`, `content`) and WeChat.
    fn outbound_content(&self, m: &Message, t: &OutboundTemplates, openid: Option<&str>) -> Content {
        let sms_params = serde_json::json!({ "title": m.title, "content": clip(&m.body, SMS_CONTENT_CHARS) });
        let time = m.created_at.with_timezone(&self.deps.zone.0).format("%Y-%m-%d %H:%M").to_string();
        let text = if m.body.trim().is_empty() { &m.title } else { &m.body };
        let wechat = match (&t.wechat_template, openid) {
            (Some(id), Some(openid)) => Some(SubscribeMessage {
                miniprogram_state: self.config.miniprogram_state,
                ..SubscribeMessage::new(openid, id.clone())
                    .page(format!("pages/messages/detail?id={}", m.id))
                    .value("thing1", clip(&m.title, 20))
                    .value("time2", time)
                    .value("thing3", clip(text, 20))
            }),
            _ => None,
        };
        Content {
            title: m.title.clone(),
            body: m.body.clone(),
            sms_template: t.sms_template.clone(),
            sms_params,
            wechat,
        }
    }

    /// The deliveries of the `wanted` channels for `account`: pending, or skipped with why
    /// (covered elsewhere, no phone, no openid, no template, WeChat not configured).
    fn decide(
        &self,
        wanted: &[Channel],
        covered: &[Channel],
        account: &Account,
        sms_template: bool,
        wechat_template: bool,
    ) -> Vec<ChannelDelivery> {
        wanted
            .iter()
            .map(|&c| {
                if covered.contains(&c) {
                    return ChannelDelivery::skipped(c, "delivered with the booking");
                }
                match c {
                    Channel::InApp => ChannelDelivery::pending(c),
                    Channel::Sms if account.phone.is_none() => ChannelDelivery::skipped(c, "no phone"),
                    Channel::Sms if !sms_template => ChannelDelivery::skipped(c, "no SMS template for this kind"),
                    Channel::Wechat if self.deps.wechat.is_none() => {
                        ChannelDelivery::skipped(c, "WeChat is not configured")
                    }
                    Channel::Wechat if !wechat_template => {
                        ChannelDelivery::skipped(c, "no WeChat template for this kind")
                    }
                    Channel::Wechat if account.wechat_openid.is_none() => {
                        ChannelDelivery::skipped(c, "no WeChat openid")
                    }
                    _ => ChannelDelivery::pending(c),
                }
            })
            .collect()
    }

    /// Tries every channel still pending, recording each one's outcome. `in_app` is the message
    /// to store for the in-app channel (reminders; an outbound row has none).
    async fn send_pending(
        &self,
        label: &str,
        channels: &mut [ChannelDelivery],
        content: &Content,
        phone: Option<&hospital_domain::Phone>,
        in_app: Option<&Message>,
    ) {
        for d in channels.iter_mut().filter(|d| !d.state.is_final()) {
            let channel = d.channel;
            let outcome = match channel {
                Channel::InApp => match in_app {
                    Some(m) => self.send_in_app(m).await,
                    None => Err((false, "the message centre holds it already".to_string())),
                },
                Channel::Sms => self.send_sms(phone, content).await,
                Channel::Wechat => self.send_wechat(content).await,
            };
            d.attempts += 1;
            let label_c = match channel {
                Channel::InApp => "in_app",
                Channel::Sms => "sms",
                Channel::Wechat => "wechat",
            };
            match outcome {
                Ok(()) => {
                    metrics::counter!("notifications_sent_total", "channel" => label_c).increment(1);
                    d.state = DeliveryState::Sent;
                    d.sent_at = Some(Utc::now());
                    d.last_error = None;
                }
                Err((retryable, error)) => {
                    metrics::counter!("notifications_failed_total", "channel" => label_c).increment(1);
                    tracing::warn!(id = label, channel = label_c, retryable, %error, "notification failed");
                    d.state = if retryable { DeliveryState::Pending } else { DeliveryState::Failed };
                    d.last_error = Some(error);
                }
            }
        }
    }

    /// After an attempt: None when every channel is final (done); Some(true) when `attempts`
    /// reached the limit (the channels still failing are marked failed: given up); Some(false)
    /// when it is to be retried.
    fn settle(&self, attempts: u32, channels: &mut [ChannelDelivery]) -> Option<bool> {
        if channels.iter().all(|d| d.state.is_final()) {
            return None;
        }
        if attempts >= self.config.max_attempts {
            for d in channels.iter_mut().filter(|d| !d.state.is_final()) {
                d.state = DeliveryState::Failed;
            }
            return Some(true);
        }
        Some(false)
    }

    /// A failure before any channel was tried (the store): (attempts, status, due) for the same
    /// attempt again later, or given up at the limit.
    fn postpone(
        &self,
        attempts: u32,
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
        why: &str,
    ) -> (u32, ReminderStatus, DateTime<Utc>) {
        tracing::warn!(why, "notification postponed");
        let attempts = attempts + 1;
        if attempts >= self.config.max_attempts {
            (attempts, ReminderStatus::GaveUp, due_at)
        } else {
            (attempts, ReminderStatus::Pending, now + self.backoff(attempts))
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
        // The visit's time as it is now: 号源调整 may have moved the segment since this was
        // scheduled (the time-changed message realigns reminders at once; this catches one that
        // was missed, e.g. by a crash in between, and keeps the text right).
        let visit_at = match self.visit_time(&appointment).await {
            Ok(t) => t,
            Err(e) => return self.retry_later(r, now, &format!("store: {e}")),
        };
        if visit_at != r.expires_at {
            r.expires_at = visit_at;
            if visit_at <= now {
                return Self::skip(r, now, "too late: the visit has started");
            }
            if let Some(due) = self.due_for(r.kind, visit_at).filter(|d| *d > now) {
                // Not yet: due again at the new visit's moment, nothing sent now.
                (r.due_at, r.scheduled_for, r.updated_at) = (due, due, now);
                r.note = Some("the visit's time changed".into());
                metrics::counter!("reminders_moved_total").increment(1);
                return r;
            }
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
            let wechat_template = self.wechat_template(r.kind).is_some();
            r.channels = self.decide(&prefs.channels(), &r.covered, &account, true, wechat_template);
        }
        let content = self.content(&r, &appointment, account.wechat_openid.as_deref()).await;
        let in_app = self.reminder_message(&r, &content, now);
        let label = r.id.to_string();
        self.send_pending(&label, &mut r.channels, &content, account.phone.as_ref(), Some(&in_app)).await;
        r.attempts += 1;
        r.updated_at = now;
        match self.settle(r.attempts, &mut r.channels) {
            None => r.status = ReminderStatus::Done,
            Some(true) => r.status = ReminderStatus::GaveUp,
            Some(false) => r.due_at = now + self.backoff(r.attempts),
        }
        r
    }

    /// A failure before any channel was tried (the store): the same attempt again later.
    fn retry_later(&self, mut r: Reminder, now: DateTime<Utc>, why: &str) -> Reminder {
        tracing::warn!(reminder = %r.id, "reminder postponed");
        (r.attempts, r.status, r.due_at) = self.postpone(r.attempts, r.due_at, now, why);
        r.updated_at = now;
        r.note = Some(why.into());
        r
    }

    /// As `retry_later`, for an outbound row.
    fn retry_outbound_later(&self, mut o: Outbound, now: DateTime<Utc>, why: &str) -> Outbound {
        (o.attempts, o.status, o.due_at) = self.postpone(o.attempts, o.due_at, now, why);
        o.updated_at = now;
        o.note = Some(why.into());
        o
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
        Content { title: title.into(), body, sms_template: Some(sms_template.clone()), sms_params, wechat }
    }

    /// The in-app message a reminder writes.
    fn reminder_message(&self, r: &Reminder, c: &Content, now: DateTime<Utc>) -> Message {
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
        m
    }

    async fn send_in_app(&self, m: &Message) -> Result<(), (bool, String)> {
        // The event is written with the message (the gateway follows it with the new unread count).
        let events = vec![PendingEvent::message(m)];
        self.deps.data.put_message(m, &events).await.map_err(|e| (true, format!("store: {e}")))?;
        self.deps.events.durable(events);
        Ok(())
    }

    async fn send_sms(&self, phone: Option<&hospital_domain::Phone>, c: &Content) -> Result<(), (bool, String)> {
        let phone = phone.ok_or((false, "no phone".to_string()))?;
        let template = c.sms_template.as_deref().ok_or((false, "no SMS template".to_string()))?;
        self.deps
            .sms
            .send_template(phone, template, c.sms_params.clone())
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
