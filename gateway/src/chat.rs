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
//! of the backlog. `consoles::ConsoleHub` is this node's registry of console sockets and the actors'
//! `ConsoleBus`. Console events are not logged: on reconnect a console reloads its inbox and asks
//! each conversation for the messages after its last `seq`.

use crate::realtime::websocket::WebSocket;
use axum::extract::ws::Message;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use hospital_domain::chat::dispatcher::Presence;
use hospital_domain::chat::{AgentProfile, GroupKey};
use hospital_domain::StaffId;
use hospital_store::Subject;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::auth::tokens::hash_token;
use crate::error::ApiError;
use crate::state::AppState;

/// How often this node heartbeats its console sockets to their dispatchers: well within the
/// dispatchers' lease (`actors.chat.presence_lease_secs`, 90 s by default).
const HEARTBEAT: Duration = Duration::from_secs(20);

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
