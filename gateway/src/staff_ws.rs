//! The back office's live socket: `GET /api/v1/staff/ws`, for any signed-in staff member
//! (`staff.self`). It carries what is addressed to all staff (`console::Audience::AllStaff`: an
//! announcement to staff at its publishing time, ADM-4) as JSON text frames
//! `{"type":"announcement","payload":{...}}`; agents' consoles get the same on their own socket.
//! It is registered in the node's `ConsoleHub` with no service group, so it reaches every node's
//! staff sockets through the same bus. Nothing is logged: a page that (re)connects lists the
//! published announcements (`GET /api/v1/staff/announcements`).
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
use std::time::Duration;

use crate::auth::tokens::hash_token;
use crate::realtime::websocket::{NotAnUpgrade, Upgrade, WebSocket};
use crate::state::AppState;

/// How often an open socket's session is checked again.
const RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StaffFrame {
    Auth { token: String },
    Heartbeat,
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
    while alive {
        tokio::select! {
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
                        Ok(StaffFrame::Auth { .. }) => json!({ "type": "error", "payload": { "code": "bad_frame", "message": "already authenticated" } }),
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
}
