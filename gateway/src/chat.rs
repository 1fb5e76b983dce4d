//! The agents' console socket (CS-2): `GET /api/v1/chat/console/ws`. An agent's console connects
//! (token in `Authorization: Bearer` or a first frame `{"type":"auth","token":...}`), states a
//! presence (`?presence=online|away|offline`, then `{"type":"presence","presence":...}` frames),
//! and receives the console events of the chat's actors as JSON text frames
//! (`{"type":<kind>,"payload":{...}}`, see `hospital_domain::chat::console`): messages and read
//! marks of the conversations they serve, their assignments, their groups' backlog and presence.
//! A console says the agent is typing with `{"type":"typing","conversation_id":...}`: the
//! patient's sockets get `typing` (rate limited, never stored).
//!
//! The socket is the agent's presence: while it is open this node heartbeats it to every group's
//! dispatcher (so a dead node's consoles lapse after the lease); when it closes the dispatchers
//! start its grace, after which the agent is offline and their conversations go back to the head
//! of the backlog. `ConsoleHub` is this node's registry of console sockets and the actors'
//! `ConsoleBus`. Console events are not logged: on reconnect a console reloads its inbox and asks
//! each conversation for the messages after its last `seq`.

use crate::realtime::websocket::WebSocket;
use axum::extract::ws::Message;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hospital_actors::ConsoleBus;
use hospital_domain::chat::console::{Audience, StaffEvent};
use hospital_domain::chat::dispatcher::Presence;
use hospital_domain::chat::{AgentProfile, GroupCode, GroupKey};
use hospital_domain::StaffId;
use hospital_store::Subject;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::tokens::hash_token;
use crate::error::ApiError;
use crate::realtime::bus::Bus;
use crate::realtime::hub::Hub;
use crate::state::AppState;

/// How often this node heartbeats its console sockets to their dispatchers: well within the
/// dispatchers' lease (`actors.chat.presence_lease_secs`, 90 s by default).
const HEARTBEAT: Duration = Duration::from_secs(20);

/// Frames queued for one console before it counts as too slow and is closed.
const OUTBOX: usize = 1024;

struct ConsoleSocket {
    agent: StaffId,
    groups: Vec<GroupCode>,
    tx: mpsc::Sender<Arc<str>>,
}

/// At most one typing indicator per conversation and side is passed on within this time.
pub const TYPING_EVERY: Duration = Duration::from_secs(1);

/// This node's console sockets.
#[derive(Default)]
pub struct ConsoleHub {
    sockets: Mutex<HashMap<u64, ConsoleSocket>>,
    next: AtomicU64,
    /// When each conversation's patient last had a typing indicator passed on.
    typing: Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    /// When each conversation's agent last had one passed on to the patient.
    agent_typing: Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    /// The real-time bus, through which console events reach the other nodes' consoles.
    bus: std::sync::OnceLock<Arc<Bus>>,
    /// Signs the links of image messages as they go out (`http::chat_images`); set at start.
    pub images: std::sync::OnceLock<crate::files::FileService>,
}

impl ConsoleHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Joins the node's real-time machinery: console events made here go to every node's
    /// consoles through `bus` (Redis pub/sub with several nodes), and those made elsewhere come
    /// to this node's consoles from `hub`.
    pub fn join(self: &Arc<Self>, hub: &Hub, bus: &Arc<Bus>) {
        let _ = hub.consoles.set(Arc::downgrade(self));
        let _ = self.bus.set(bus.clone());
    }

    /// A socket of `agent` (a back-office socket has no groups: it gets `AllStaff` events only).
    pub(crate) fn register(&self, agent: StaffId, groups: Vec<GroupCode>) -> (u64, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sockets.lock().expect("console hub").insert(id, ConsoleSocket { agent, groups, tx });
        (id, rx)
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.sockets.lock().expect("console hub").remove(&id);
    }

    /// Whether a typing indicator of `conversation` may go out now (at most one per
    /// `TYPING_EVERY`); typing is never stored.
    pub fn typing_allowed(&self, conversation: hospital_domain::ConversationId) -> bool {
        allowed(&self.typing, conversation)
    }

    /// The same for the agent's side (`typing_allowed` is the patient's).
    pub fn agent_typing_allowed(&self, conversation: hospital_domain::ConversationId) -> bool {
        allowed(&self.agent_typing, conversation)
    }

    /// Console sockets open on this node for `agent`.
    pub fn sockets_of(&self, agent: StaffId) -> usize {
        self.sockets.lock().expect("console hub").values().filter(|s| s.agent == agent).count()
    }

    /// Hands a console event to the consoles concerned on this node (an image message with its
    /// link made here and now: links are never on the bus).
    pub fn deliver(&self, event: &StaffEvent) {
        let body = crate::http::chat_images::console(self.images.get(), &event.event);
        let frame: Arc<str> = match serde_json::to_string(&body) {
            Ok(s) => s.into(),
            Err(e) => {
                tracing::warn!(error = %e, "console event not encodable");
                return;
            }
        };
        let sockets = self.sockets.lock().expect("console hub");
        for s in sockets.values() {
            let to = match &event.to {
                Audience::Agent(a) => s.agent == *a,
                Audience::Group(g) => s.groups.contains(g),
                Audience::AllStaff => true,
            };
            // A console that cannot keep up loses live frames; it reloads on reconnect.
            if to && s.tx.try_send(frame.clone()).is_err() {
                tracing::debug!(agent = %s.agent, "console outbox full; frame dropped");
            }
        }
    }
}

/// Whether a typing indicator for `conversation` may pass now (at most one per `TYPING_EVERY`).
fn allowed(
    map: &Mutex<HashMap<hospital_domain::ConversationId, std::time::Instant>>,
    conversation: hospital_domain::ConversationId,
) -> bool {
    let now = std::time::Instant::now();
    let mut t = map.lock().expect("typing");
    if t.len() > 10_000 {
        t.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
    }
    match t.get(&conversation) {
        Some(at) if now.duration_since(*at) < TYPING_EVERY => false,
        _ => {
            t.insert(conversation, now);
            true
        }
    }
}

impl ConsoleBus for ConsoleHub {
    /// This node's consoles at once; every other node's through the bus.
    fn send(&self, event: StaffEvent) {
        self.deliver(&event);
        if let Some(bus) = self.bus.get() {
            bus.console(&event);
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ConsoleParams {
    pub presence: Option<Presence>,
}

/// What a console sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ConsoleFrame {
    Auth {
        token: String,
    },
    Presence {
        presence: Presence,
    },
    Heartbeat,
    /// The agent is typing in a conversation they serve: shown to the patient (rate limited,
    /// never stored).
    Typing {
        conversation_id: hospital_domain::ConversationId,
    },
}

/// `GET /api/v1/chat/console/ws`: an agent's console socket (role `agent`; permission
/// `chat.agent`).
pub async fn console_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<axum::extract::Query<ConsoleParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<crate::realtime::websocket::Upgrade, crate::realtime::websocket::NotAnUpgrade>,
) -> Response {
    let presence = match params {
        Ok(q) => q.0.presence.unwrap_or(Presence::Online),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (upgrade, token) = match crate::realtime::upgrade_with_token(&headers, upgrade) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    upgrade.on_upgrade(move |ws| run(ws, state, token, presence))
}

async fn close_with(ws: &mut WebSocket, code: &str, message: &str) {
    let frame = json!({ "type": "error", "payload": { "code": code, "message": message } }).to_string();
    let _ = ws.send(Message::Text(frame.into())).await;
    let _ = ws.send(Message::Close(None)).await;
}

/// Who the console is: a staff login with role `agent` (or `admin`) and a chat profile.
async fn authenticate(state: &AppState, ws: &mut WebSocket, token: Option<String>) -> Result<AgentProfile, String> {
    let token = match token {
        Some(t) => t,
        None => {
            let first = tokio::time::timeout(Duration::from_secs(10), ws.recv()).await.map_err(|_| "no auth frame")?;
            match first {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ConsoleFrame>(&t) {
                    Ok(ConsoleFrame::Auth { token }) => token,
                    _ => return Err("the first frame must be an auth frame".into()),
                },
                _ => return Err("the first frame must be an auth frame".into()),
            }
        }
    };
    let session = state
        .sessions
        .get(&hash_token(&token), chrono::Utc::now())
        .await
        .map_err(|_| "sessions are unavailable".to_string())?
        .ok_or("the token is invalid, expired or revoked")?;
    let Subject::Staff { id, roles } = session.subject else {
        return Err("this socket is for agents".into());
    };
    if !state.roles.table().allows(&roles, hospital_domain::access::Permission::ChatAgent) {
        return Err("this needs the permission chat.agent".into());
    }
    state
        .stores
        .data
        .chat_agent(id)
        .await
        .map_err(|_| "the store is unavailable".to_string())?
        .ok_or_else(|| "not a chat agent: no groups are set for this staff member".to_string())
}

/// States `presence` in every group of the agent.
async fn state_presence(state: &AppState, agent: &AgentProfile, conn: Uuid, presence: Presence) -> Result<(), String> {
    for g in &agent.groups {
        state
            .actors
            .chat_presence(GroupKey::from(g), agent.clone(), conn, presence)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Passes the agent's typing on to the patient's sockets (on every node), if the agent serves
/// the conversation; more than one a second per conversation is dropped silently (a console
/// sends one per keystroke burst).
async fn agent_typing(
    state: &AppState,
    agent: StaffId,
    id: hospital_domain::ConversationId,
) -> Result<(), (&'static str, String)> {
    use hospital_domain::chat::console::{ChatTyping, Typist};
    let c = state.actors.chat_conversation(id).await.map_err(|e| ("unavailable", e.to_string()))?;
    let Some(c) = c.filter(|c| c.is_served_by(agent)) else {
        return Err(("not_assigned", "you do not serve this conversation".into()));
    };
    if state.consoles.agent_typing_allowed(id) {
        let event = hospital_domain::live::TopicEvent::typing(ChatTyping { conversation_id: id, who: Typist::Agent });
        state.realtime.bus.direct(c.account_id, event);
    }
    Ok(())
}

async fn run(mut ws: WebSocket, state: AppState, token: Option<String>, mut presence: Presence) {
    let agent = match authenticate(&state, &mut ws, token).await {
        Ok(a) => a,
        Err(m) => return close_with(&mut ws, "unauthenticated", &m).await,
    };
    let conn = Uuid::now_v7();
    let (sid, mut rx) = state.consoles.register(agent.id, agent.groups.clone());
    if let Err(m) = state_presence(&state, &agent, conn, presence).await {
        state.consoles.unregister(sid);
        return close_with(&mut ws, "unavailable", &m).await;
    }
    let welcome = json!({ "type": "welcome", "payload": {
        "agent": { "id": agent.id, "name": agent.name }, "groups": agent.groups, "cap": agent.cap,
        "presence": presence, "connection": conn } });
    let mut alive = ws.send(Message::Text(welcome.to_string().into())).await.is_ok();
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await;
    while alive {
        tokio::select! {
            out = rx.recv() => match out {
                Some(frame) => alive = ws.send(Message::Text(frame.to_string().into())).await.is_ok(),
                None => alive = false,
            },
            _ = beat.tick() => {
                // This node speaks for its live sockets; a refused heartbeat (the dispatcher
                // restarted) states the presence again.
                for g in &agent.groups {
                    if let Ok(false) = state.actors.chat_heartbeat(GroupKey::from(g), agent.id, conn).await {
                        let _ = state.actors.chat_presence(GroupKey::from(g), agent.clone(), conn, presence).await;
                    }
                }
            }
            msg = ws.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let reply = match serde_json::from_str::<ConsoleFrame>(&t) {
                        Ok(ConsoleFrame::Presence { presence: p }) => {
                            presence = p;
                            match state_presence(&state, &agent, conn, p).await {
                                Ok(()) => json!({ "type": "presence_set", "payload": { "presence": p } }),
                                Err(m) => json!({ "type": "error", "payload": { "code": "unavailable", "message": m } }),
                            }
                        }
                        Ok(ConsoleFrame::Heartbeat) => json!({ "type": "heartbeat", "payload": {} }),
                        Ok(ConsoleFrame::Typing { conversation_id }) => match agent_typing(&state, agent.id, conversation_id).await {
                            Ok(()) => continue,
                            Err((code, m)) => json!({ "type": "error", "payload": { "code": code, "message": m } }),
                        },
                        Ok(ConsoleFrame::Auth { .. }) => json!({ "type": "error", "payload": { "code": "bad_frame", "message": "already authenticated" } }),
                        Err(e) => json!({ "type": "error", "payload": { "code": "bad_frame", "message": e.to_string() } }),
                    };
                    alive = ws.send(Message::Text(reply.to_string().into())).await.is_ok();
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => alive = false,
                Some(Ok(_)) => {}
            },
        }
    }
    state.consoles.unregister(sid);
    for g in &agent.groups {
        if let Err(e) = state.actors.chat_disconnect(GroupKey::from(g), agent.id, conn).await {
            tracing::warn!(agent = %agent.id, error = %e, "console disconnect not told");
        }
    }
}
