//! Publishing an announcement at its time (ADM-4), run by the durable job
//! `JobKind::PublishAnnouncement`: every addressed patient account gets a copy in its message
//! centre, written with its live `message` event (so a connected app shows it at once, and the
//! gateway follows it with the new unread count), then the announcement is marked published.
//!
//! Who is addressed: every account (paged through the store), or the accounts with a live or
//! attended booking in a department or one below it, over the past year and the bookable months
//! ahead; staff announcements reach no patient: they go live to every staff socket (agents'
//! consoles and the back office's, `ConsoleEvent::Announcement`) and the console lists them. Running it twice (a
//! lease that lapsed, a retry after a failure half-way) is harmless: each copy's id is derived
//! from the announcement and the account, so it is rewritten, not added.

use chrono::{Duration, Utc};
use hospital_domain::announcement::{Announcement, AnnouncementState, Audience, ANNOUNCEMENT_DOCS};
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::chat::console::{ConsoleEvent, StaffEvent};
use hospital_domain::{AccountId, DepartmentId};
use hospital_store::{DataStore, Docs, PendingEvent};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::{Consoles, Events};

/// Accounts read per page when an announcement goes to everyone.
const PAGE: usize = 500;

/// Publishes announcements: the store and the live events.
pub struct Announcer {
    pub data: Arc<dyn DataStore>,
    pub events: Events,
    /// Staff sockets, for announcements to staff.
    pub consoles: Consoles,
}

impl Announcer {
    /// Publishes the announcement `id` if it is still scheduled; how many accounts it reached.
    pub async fn publish(&self, id: uuid::Uuid) -> Result<u64, String> {
        let docs: Docs<'_, Announcement> = Docs::new(self.data.as_ref(), ANNOUNCEMENT_DOCS);
        let Some(stored) = docs.get(&id.to_string()).await.map_err(|e| e.to_string())? else {
            tracing::warn!(%id, "an announcement's job found no announcement; nothing sent");
            return Ok(0);
        };
        let mut a = stored.value;
        if a.state != AnnouncementState::Scheduled {
            return Ok(a.recipients); // cancelled, or published by an earlier run
        }
        let now = Utc::now();
        let mut reached = 0u64;
        match a.audience {
            // No patient: staff get it live below, once it is marked published.
            Audience::Staff => {}
            Audience::AllPatients => {
                let mut after = None;
                loop {
                    let page = self.data.account_ids(after, PAGE).await.map_err(|e| e.to_string())?;
                    for account in &page {
                        self.send(&a, *account, now).await?;
                    }
                    reached += page.len() as u64;
                    match page.last() {
                        Some(last) if page.len() == PAGE => after = Some(*last),
                        _ => break,
                    }
                }
            }
            Audience::Department { department_id } => {
                for account in self.patients_of(department_id).await? {
                    self.send(&a, account, now).await?;
                    reached += 1;
                }
            }
        }
        a.state = AnnouncementState::Published;
        a.published_at = Some(now);
        a.recipients = reached;
        // A cancel that came in meanwhile loses: the copies are out. Another run that finished
        // first wrote the same; either way the stored one says published.
        if !docs.put(&id.to_string(), &a, stored.version).await.map_err(|e| e.to_string())? {
            tracing::info!(%id, "the announcement changed while it was published; kept as stored");
        } else if a.audience == Audience::Staff {
            // Live to the staff sockets connected now (not logged: the console lists the
            // published ones when it loads). Only the run that marked it published sends it.
            self.consoles.send(StaffEvent::all_staff(ConsoleEvent::Announcement(a.clone())));
        }
        tracing::info!(%id, reached, "announcement published");
        metrics::counter!("announcements_published_total").increment(1);
        Ok(reached)
    }

    async fn send(&self, a: &Announcement, account: AccountId, now: chrono::DateTime<Utc>) -> Result<(), String> {
        let m = a.message_for(account, now);
        let events = vec![PendingEvent::message(&m)];
        self.data.put_message(&m, &events).await.map_err(|e| format!("store: {e}"))?;
        self.events.durable(events);
        Ok(())
    }

    /// The accounts with a booking in the department or below it that is live or was kept
    /// (held, confirmed, attended, missed, excused; not cancelled or lapsed), over the past year
    /// and the next 92 days.
    async fn patients_of(&self, department: DepartmentId) -> Result<BTreeSet<AccountId>, String> {
        let departments = self.data.departments().await.map_err(|e| e.to_string())?;
        let mut under: HashSet<DepartmentId> = HashSet::from([department]);
        // Parents before children is not guaranteed: grow the set until it stops growing.
        loop {
            let before = under.len();
            for d in &departments {
                if d.parent_id.is_some_and(|p| under.contains(&p)) {
                    under.insert(d.id);
                }
            }
            if under.len() == before {
                break;
            }
        }
        let today = Utc::now().date_naive();
        let (from, to) = (today - Duration::days(366), today + Duration::days(92));
        let mut accounts = BTreeSet::new();
        for doctor in self.data.doctors().await.map_err(|e| e.to_string())? {
            if !under.contains(&doctor.department_id) {
                continue;
            }
            for a in self.data.appointments_of_doctor(doctor.id, from, to).await.map_err(|e| e.to_string())? {
                let kept = !matches!(a.status, AppointmentStatus::Cancelled | AppointmentStatus::Expired);
                if kept && under.contains(&a.department_id) {
                    accounts.insert(a.account_id);
                }
            }
        }
        Ok(accounts)
    }
}
