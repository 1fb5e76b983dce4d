//! The chat's Prometheus metrics (issue 9, grafana/dashboards/chat.json), in one place so the
//! conversation and dispatcher actors each call them from one line: conversations waiting and
//! agents by presence per group (gauges, set by the group's dispatcher after every change), the
//! wait until a conversation's first assignment and the agent's first response after each
//! assignment (histograms, `chat_wait_seconds` and `chat_first_response_seconds`, with buckets
//! up to hours: see the gateway's recorder), and messages by direction (`chat_messages_total`).
//!
//! The first response is timed from an assignment to that agent's first message, in memory on
//! the node that runs the conversation: after a restart the assignments made before it are not
//! timed (a missing sample, never a wrong one).

use chrono::{DateTime, Utc};
use hospital_domain::chat::console::AgentStatus;
use hospital_domain::chat::dispatcher::Presence;
use hospital_domain::chat::GroupCode;
use hospital_domain::ConversationId;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Buckets for the chat's waits (seconds): from a second to two hours.
pub const WAIT_BUCKETS: [f64; 14] =
    [0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0, 7200.0];

/// Conversations assigned and not yet answered by their agent: when they were assigned.
fn awaiting() -> &'static Mutex<HashMap<ConversationId, DateTime<Utc>>> {
    static AWAITING: OnceLock<Mutex<HashMap<ConversationId, DateTime<Utc>>>> = OnceLock::new();
    AWAITING.get_or_init(Default::default)
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// A group's dispatcher changed: how many wait, and its agents by presence.
pub fn group(group: &GroupCode, waiting: usize, agents: &[AgentStatus]) {
    let g = group.to_string();
    metrics::gauge!("chat_waiting", "group" => g.clone()).set(waiting as f64);
    for (p, label) in [(Presence::Online, "online"), (Presence::Away, "away"), (Presence::Offline, "offline")] {
        let n = agents.iter().filter(|a| a.presence == p).count();
        metrics::gauge!("chat_agents", "group" => g.clone(), "presence" => label).set(n as f64);
    }
}

/// A conversation was assigned to an agent at `now` (`first`: its first assignment ever, after
/// waiting since `created_at`).
pub fn assigned(id: ConversationId, created_at: DateTime<Utc>, first: bool, now: DateTime<Utc>) {
    if first {
        metrics::histogram!("chat_wait_seconds").record(seconds(created_at, now));
    }
    let mut w = awaiting().lock().expect("chat metrics");
    // Bounded: a node never holds more open conversations than this in memory at once.
    if w.len() > 100_000 {
        w.clear();
    }
    w.insert(id, now);
}

/// A message was stored: counted by who wrote it; an agent's first since the assignment is timed.
pub fn message(id: ConversationId, from_agent: bool, now: DateTime<Utc>) {
    metrics::counter!("chat_messages_total", "from" => if from_agent { "agent" } else { "patient" }).increment(1);
    if from_agent {
        if let Some(at) = awaiting().lock().expect("chat metrics").remove(&id) {
            metrics::histogram!("chat_first_response_seconds").record(seconds(at, now));
        }
    }
}

/// The conversation left its agent unanswered (handed back, transferred away, closed).
pub fn unassigned(id: ConversationId) {
    awaiting().lock().expect("chat metrics").remove(&id);
}
