//! The real-time gateway (PLAT-2, PLAT-4): `GET /ws`. The wire format is in `protocol`, one
//! connection's life in `socket`, the per-account sequenced log in `log`, fan-out across nodes in
//! `bus`, this node's sockets and delivery in `hub`, a topic update on its way to them in
//! `topics`, a socket's connection as its task and the hub share it in `line`, the state sent on
//! subscribe in `snapshot`, and the three held together for `AppState` in `node` (`Realtime`);
//! the WebSocket itself (our own, holding no buffer while idle) in `websocket`, its framing in
//! `wire`. docs/realtime.md is the client's guide.

pub mod bus;
pub mod hub;
pub mod line;
pub mod log;
pub mod node;
pub mod protocol;
pub mod snapshot;
pub mod socket;
pub mod topics;
pub mod websocket;
pub mod wire;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use protocol::{Codec, SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use websocket::{NotAnUpgrade, Upgrade};

pub use node::Realtime;

/// `GET /ws`: upgrades to a WebSocket. The token may come in `Authorization: Bearer` (what
/// `wx.connectSocket` sends with `header`) or in a first `auth` frame. Subprotocol
/// `hospital.msgpack.v1` selects MessagePack binary frames; anything else, JSON text frames.
/// `?last_seq=N` on the upgrade URL resumes before any live event is sent (the in-order way).
#[derive(Debug, Deserialize)]
pub struct WsParams {
    pub last_seq: Option<u64>,
}

/// The two checks every WebSocket route makes before upgrading: that the request is an upgrade,
/// and the bearer token if the upgrade carried one (`wx.connectSocket` can send headers; browsers
/// cannot, and send it in a first frame instead). Err: the refusal to answer with.
pub fn upgrade_with_token(
    headers: &HeaderMap,
    upgrade: Result<Upgrade, NotAnUpgrade>,
) -> Result<(Upgrade, Option<String>), ApiError> {
    let upgrade = upgrade.map_err(|e| ApiError::BadRequest(format!("this endpoint needs a WebSocket upgrade: {e}")))?;
    let token = match headers.get(axum::http::header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match v.split_once(' ') {
            Some((s, t)) if s.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => return Err(ApiError::InvalidToken),
        },
        Some(Err(_)) => return Err(ApiError::InvalidToken),
    };
    Ok((upgrade, token))
}

pub async fn ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<axum::extract::Query<WsParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<Upgrade, NotAnUpgrade>,
) -> Response {
    let resume_from = match params {
        Ok(q) => q.0.last_seq,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (upgrade, token) = match crate::realtime::upgrade_with_token(&headers, upgrade) {
        Ok(v) => v,
        Err(refused) => return refused.into_response(),
    };
    // Offered subprotocols, none of them ours: say so, rather than upgrade into an encoding the
    // client did not ask for (a browser would then fail the handshake without a reason).
    let upgrade = upgrade.protocols(&[SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK]);
    if upgrade.protocol().is_none() && upgrade.offered().next().is_some() {
        let why = format!("unsupported subprotocol: offer {SUBPROTOCOL_JSON} or {SUBPROTOCOL_MSGPACK}");
        return ApiError::BadRequest(why).into_response();
    }
    let cfg = &state.config.realtime;
    let codec = Codec::from_subprotocol(upgrade.protocol());
    // Frames and messages alike are bounded by `max_frame_bytes` (1009 beyond).
    let upgrade = upgrade.max_message_size(cfg.max_frame_bytes);
    upgrade.on_upgrade(move |socket| socket::run(socket, state, codec, token, resume_from))
}
