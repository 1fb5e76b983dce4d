//! The back office's live socket: `GET /api/v1/staff/ws`, for any signed-in staff member
//! (`staff.self`). It carries what is addressed to all staff (`console::Audience::AllStaff`: an
//! announcement to staff at its publishing time, ADM-4) as JSON text frames
//! `{"type":"announcement","payload":{...}}`; agents' consoles get the same on their own socket.
//! It is registered in the node's `ConsoleHub` with no service group, so it reaches every node's
//! staff sockets through the same bus. Nothing is logged: a page that (re)connects lists the
//! published announcements (`GET /api/v1/staff/announcements`).
//!
//! A page may also watch public topics (`{"type":"watch","topics":["doctor:<id>"]}`, the set
//! replacing the last; answered `{"type":"watching",...}`): their updates come as a patient's
//! socket gets them (`{"type":"availability","payload":{"topic":...,"data":...}}`), the newest per
//! topic and session, so 排班 shows places as patients take them. A page watches, then reads
//! the state over REST: an update that lands in between is applied to what it read.
//!
//! The token comes in `Authorization: Bearer` or a first `{"type":"auth","token":...}` frame
//! (browsers cannot set headers on a WebSocket). The session is checked again every
//! `RECHECK`: a deactivated member's socket closes then (`unauthenticated`).

use axum::extract::ws::Message;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hospital_domain::access::Permission;
use hospital_domain::StaffId;
use hospital_store::Subject;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

use crate::auth::tokens::hash_token;
use crate::realtime::hub::Hub;
use crate::realtime::protocol::{invalid_topic, Codec};
use crate::realtime::topics::{new_sink_id, Prepared, TopicSink, TopicSlots};
use crate::realtime::websocket::{NotAnUpgrade, Upgrade, WebSocket};
use crate::state::AppState;

/// How often an open socket's session is checked again.
const RECHECK: Duration = Duration::from_secs(30);

/// Topics one staff socket may watch at once (a page shows one doctor's or a few sessions).
const MAX_WATCHED: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StaffFrame {
    Auth { token: String },
    Heartbeat,
    Watch { topics: Vec<String> },
}

/// Where the hub offers a staff socket the updates of the topics it watches. The set of topics
/// is the socket task's own (`Watched`): only that task reads or changes it.
struct Watch {
    id: u64,
    slots: TopicSlots,
    wake: Notify,
}

impl TopicSink for Watch {
    fn sink_id(&self) -> u64 {
        self.id
    }

    fn offer_topic(&self, event: Arc<Prepared>) {
        self.slots.offer(event);
    }

    fn send_offered(&self) {
        self.wake.notify_one();
    }
}

/// A staff socket's watched topics, with where their updates arrive.
struct Watched {
    sink: Arc<Watch>,
    topics: BTreeSet<String>,
}

impl Watched {
    fn new() -> Self {
        let sink = Arc::new(Watch { id: new_sink_id(), slots: TopicSlots::default(), wake: Notify::new() });
        Watched { sink, topics: BTreeSet::new() }
    }

    /// Watches exactly `topics` from now on; the reply frame, or the refusal's.
    fn replace(&mut self, hub: &Hub, topics: Vec<String>) -> serde_json::Value {
        if topics.len() > MAX_WATCHED {
            return bad_frame(&format!("at most {MAX_WATCHED} topics"));
        }
        if let Some(why) = invalid_topic(&topics) {
            return bad_frame(&why);
        }
        let new: BTreeSet<String> = topics.into_iter().collect();
        for t in self.topics.difference(&new) {
            hub.unsubscribe(t, self.sink.id);
        }
        for t in new.difference(&self.topics) {
            hub.subscribe(t, &self.sink);
        }
        self.topics = new;
        json!({ "type": "watching", "payload": { "topics": &self.topics } })
    }

    /// The pending updates of topics still watched, as frames.
    fn frames(&self) -> Vec<Message> {
        let pending = self.sink.slots.take();
        pending.iter().filter(|p| self.topics.contains(p.event.topic())).map(|p| p.message(Codec::Json)).collect()
    }

    fn end(self, hub: &Hub) {
        for t in &self.topics {
            hub.unsubscribe(t, self.sink.id);
        }
    }
}

fn bad_frame(message: &str) -> serde_json::Value {
    json!({ "type": "error", "payload": { "code": "bad_frame", "message": message } })
}

/// `GET /api/v1/staff/ws`: upgrades to the back office's live socket.
pub async fn staff_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<Upgrade, NotAnUpgrade>,
) -> Response {
    let (upgrade, token) = match crate::realtime::upgrade_with_token(&headers, upgrade) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    upgrade.max_message_size(16 * 1024).on_upgrade(move |ws| run(ws, state, token))
}

async fn close_with(ws: &mut WebSocket, code: &str, message: &str) {
    let frame = json!({ "type": "error", "payload": { "code": code, "message": message } }).to_string();
    let _ = ws.send(Message::Text(frame.into())).await;
    let _ = ws.send(Message::Close(None)).await;
}

/// The staff member behind `token` (hashed), if the session is live and may use the socket.
async fn staff_of(state: &AppState, token_hash: &str) -> Result<StaffId, String> {
    let session = state
        .sessions
        .get(token_hash, chrono::Utc::now())
        .await
        .map_err(|_| "sessions are unavailable".to_string())?
        .ok_or("the token is invalid, expired or revoked")?;
    let Subject::Staff { id, roles } = session.subject else {
        return Err("this socket is for staff".into());
    };
    if !state.roles.table().allows(&roles, Permission::StaffSelf) {
        return Err("this needs the permission staff.self".into());
    }
    Ok(id)
}

async fn run(mut ws: WebSocket, state: AppState, token: Option<String>) {
    let token = match token {
        Some(t) => t,
        None => match tokio::time::timeout(Duration::from_secs(10), ws.recv()).await {
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<StaffFrame>(&t) {
                Ok(StaffFrame::Auth { token }) => token,
                _ => return close_with(&mut ws, "unauthenticated", "the first frame must be an auth frame").await,
            },
            _ => return close_with(&mut ws, "unauthenticated", "the first frame must be an auth frame").await,
        },
    };
    let hash = hash_token(&token);
    let me = match staff_of(&state, &hash).await {
        Ok(id) => id,
        Err(m) => return close_with(&mut ws, "unauthenticated", &m).await,
    };
    let (sid, mut rx) = state.consoles.register(me, Vec::new());
    let welcome = json!({ "type": "welcome", "payload": { "staff": { "id": me } } });
    let mut alive = ws.send(Message::Text(welcome.to_string().into())).await.is_ok();
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    let mut watch = Watched::new();
    let hub = &state.realtime().hub;
    while alive {
        tokio::select! {
            _ = watch.sink.wake.notified() => {
                for frame in watch.frames() {
                    alive = alive && ws.send(frame).await.is_ok();
                }
            }
            out = rx.recv() => match out {
                Some(frame) => alive = ws.send(Message::Text(frame.to_string().into())).await.is_ok(),
                None => alive = false,
            },
            _ = recheck.tick() => {
                if let Err(m) = staff_of(&state, &hash).await {
                    let frame = json!({ "type": "error", "payload": { "code": "unauthenticated", "message": m } });
                    let _ = ws.send(Message::Text(frame.to_string().into())).await;
                    let _ = ws.send(Message::Close(None)).await;
                    alive = false;
                }
            }
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = match serde_json::from_str::<StaffFrame>(&t) {
                        Ok(StaffFrame::Heartbeat) => json!({ "type": "heartbeat", "payload": {} }),
                        Ok(StaffFrame::Watch { topics }) => watch.replace(hub, topics),
                        Ok(StaffFrame::Auth { .. }) => bad_frame("already authenticated"),
                        Err(e) => bad_frame(&e.to_string()),
                    };
                    alive = ws.send(Message::Text(reply.to_string().into())).await.is_ok();
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => alive = false,
                Some(Ok(_)) => {}
            },
        }
    }
    watch.end(hub);
    state.consoles.unregister(sid);
}
