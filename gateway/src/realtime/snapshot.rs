//! The current state of a topic, sent right after `subscribed` so a client need not wait for the
//! next change: a doctor's sessions from today over the booking window (from the schedule
//! actor's memory), each doctor's of a department, or a queue's summary. The same updates the
//! topic carries, so a client handles them with the same code.

use chrono::{Duration as Days, Utc};
use hospital_domain::live::TopicEvent;
use hospital_domain::{DepartmentId, DoctorId, SessionId};

use crate::state::AppState;

/// Days from today a snapshot covers (the booking window clients show).
const WINDOW_DAYS: i64 = 13;

pub async fn of(state: &AppState, topic: &str) -> Result<Vec<TopicEvent>, String> {
    let (kind, id) = topic.split_once(':').ok_or("not a topic")?;
    let id = uuid::Uuid::try_parse(id).map_err(|e| e.to_string())?;
    let from = state.zone.local_date(Utc::now());
    let to = from + Days::days(WINDOW_DAYS);
    let availability = |doctor: DoctorId| async move {
        let sessions = state.actors.get_schedule(doctor, from, to).await.map_err(|e| e.to_string())?;
        let (config, now) = (state.actors.config(), Utc::now());
        Ok::<_, String>(
            sessions
                .iter()
                .map(|s| TopicEvent::availability(topic.to_string(), s.live(config, now)))
                .collect::<Vec<_>>(),
        )
    };
    match kind {
        "doctor" => {
            let doctor = DoctorId(id);
            if state.catalog().doctor(doctor).is_none() {
                return Err("no such doctor".into());
            }
            availability(doctor).await
        }
        "department" => {
            let doctors: Vec<DoctorId> = state.catalog().doctors_under(DepartmentId(id)).iter().map(|d| d.id).collect();
            let mut out = Vec::new();
            for d in doctors {
                out.extend(availability(d).await?);
            }
            Ok(out)
        }
        "queue" => {
            let summary = state.actors.queue_summary(SessionId(id)).await.map_err(|e| e.to_string())?;
            Ok(vec![TopicEvent::queue_summary(summary)])
        }
        _ => Err("unknown topic kind".into()),
    }
}
