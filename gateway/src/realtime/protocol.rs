//! The WebSocket protocol's wire format (docs/realtime.md): one envelope `{type, seq?, id?,
//! payload}` in two encodings chosen by subprotocol, JSON text frames (`hospital.json.v1`, the
//! default) and MessagePack binary frames (`hospital.msgpack.v1`), plus the close codes.

use serde::{Deserialize, Serialize};

pub const SUBPROTOCOL_JSON: &str = "hospital.json.v1";
pub const SUBPROTOCOL_MSGPACK: &str = "hospital.msgpack.v1";

/// Close codes (4000-4999 are the application's).
pub mod close {
    /// Authentication missing, invalid, expired or revoked.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No frame (not even a ping) within the idle timeout.
    pub const IDLE: u16 = 4002;
    /// The client did not read fast enough: its outbox filled up. Reconnect and resume.
    pub const TOO_SLOW: u16 = 4008;
    /// Too many frames, or too many bad ones.
    pub const FLOOD: u16 = 4029;
    /// A frame larger than the limit (the standard "message too big").
    pub const TOO_BIG: u16 = 1009;
    /// The server is shutting down: reconnect (to another node) and resume.
    pub const GOING_AWAY: u16 = 1001;
}

/// One frame, either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    /// Per-account sequence number of a personal event (server to client only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The client's request id, echoed in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl Envelope {
    pub fn new(kind: &str, payload: serde_json::Value) -> Self {
        Self { kind: kind.into(), seq: None, id: None, payload }
    }
    pub fn reply_to(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }
    pub fn error(code: &str, message: impl Into<String>, id: Option<String>) -> Self {
        Self::new("error", serde_json::json!({"code": code, "message": message.into()})).reply_to(id)
    }
}

/// What a client may send, after the envelope is read.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    /// `last_seq`, when given, resumes before any live event is sent.
    Auth {
        token: String,
        last_seq: Option<u64>,
    },
    Resume {
        last_seq: u64,
    },
    Subscribe {
        topics: Vec<String>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    Ping,
}

/// Why a frame was refused (answered with an error frame; the connection stays).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the frame is not a {0} envelope")]
    Malformed(&'static str),
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    #[error("bad payload for {kind}: {why}")]
    BadPayload { kind: String, why: String },
}

impl FrameError {
    pub fn code(&self) -> &'static str {
        match self {
            FrameError::Malformed(_) => "malformed_frame",
            FrameError::UnknownType(_) => "unknown_type",
            FrameError::BadPayload { .. } => "bad_payload",
        }
    }
}

/// The two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    MsgPack,
}

impl Codec {
    pub fn from_subprotocol(p: Option<&str>) -> Self {
        if p == Some(SUBPROTOCOL_MSGPACK) {
            Codec::MsgPack
        } else {
            Codec::Json
        }
    }

    pub fn encode(self, e: &Envelope) -> Frame {
        match self {
            Codec::Json => Frame::Text(serde_json::to_string(e).expect("envelopes serialise")),
            // Named fields (a map), so a MessagePack frame reads like the JSON one.
            Codec::MsgPack => Frame::Binary(rmp_serde::to_vec_named(e).expect("envelopes serialise")),
        }
    }

    pub fn decode(self, frame: &Frame) -> Result<Envelope, FrameError> {
        match (self, frame) {
            (Codec::Json, Frame::Text(t)) => serde_json::from_str(t).map_err(|_| FrameError::Malformed("JSON")),
            (Codec::MsgPack, Frame::Binary(b)) => {
                rmp_serde::from_slice(b).map_err(|_| FrameError::Malformed("MessagePack"))
            }
            (Codec::Json, Frame::Binary(_)) => Err(FrameError::Malformed("JSON text")),
            (Codec::MsgPack, Frame::Text(_)) => Err(FrameError::Malformed("MessagePack binary")),
        }
    }
}

/// A data frame, independent of the WebSocket library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

fn topics(e: &Envelope) -> Result<Vec<String>, FrameError> {
    let bad = |why: &str| FrameError::BadPayload { kind: e.kind.clone(), why: why.into() };
    let list =
        e.payload.get("topics").and_then(|t| t.as_array()).ok_or_else(|| bad("payload.topics must be a list"))?;
    if list.len() > 50 {
        return Err(bad("at most 50 topics per frame"));
    }
    list.iter()
        .map(|t| {
            let t = t.as_str().ok_or_else(|| bad("topics are strings"))?;
            if valid_topic(t) {
                Ok(t.to_string())
            } else {
                Err(bad("a topic is doctor:<uuid>, department:<uuid> or queue:<session uuid>"))
            }
        })
        .collect()
}

/// The topics a client may subscribe to: public state only.
pub fn valid_topic(t: &str) -> bool {
    match t.split_once(':') {
        Some(("doctor" | "department" | "queue", id)) => uuid::Uuid::try_parse(id).is_ok(),
        _ => false,
    }
}

impl TryFrom<&Envelope> for ClientMsg {
    type Error = FrameError;
    fn try_from(e: &Envelope) -> Result<Self, FrameError> {
        let bad = |why: &str| FrameError::BadPayload { kind: e.kind.clone(), why: why.into() };
        match e.kind.as_str() {
            "auth" => {
                let token = e
                    .payload
                    .get("token")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| bad("payload.token must be a string"))?;
                let last_seq = match e.payload.get("last_seq") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(v) => Some(v.as_u64().ok_or_else(|| bad("payload.last_seq must be a number"))?),
                };
                Ok(ClientMsg::Auth { token: token.to_string(), last_seq })
            }
            "resume" => {
                let last = e
                    .payload
                    .get("last_seq")
                    .and_then(|t| t.as_u64())
                    .ok_or_else(|| bad("payload.last_seq must be a number"))?;
                Ok(ClientMsg::Resume { last_seq: last })
            }
            "subscribe" => Ok(ClientMsg::Subscribe { topics: topics(e)? }),
            "unsubscribe" => Ok(ClientMsg::Unsubscribe { topics: topics(e)? }),
            "ping" => Ok(ClientMsg::Ping),
            other => Err(FrameError::UnknownType(other.chars().take(40).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_round_trip() {
        let e = Envelope { kind: "queue".into(), seq: Some(7), id: None, payload: serde_json::json!({"position": 3}) };
        for c in [Codec::Json, Codec::MsgPack] {
            assert_eq!(c.decode(&c.encode(&e)).unwrap(), e);
        }
        assert!(matches!(Codec::Json.encode(&e), Frame::Text(t) if t.contains(r#""type":"queue""#)));
    }

    #[test]
    fn refuses_garbage_and_unknowns() {
        assert_eq!(Codec::Json.decode(&Frame::Text("{{".into())), Err(FrameError::Malformed("JSON")));
        assert!(Codec::MsgPack.decode(&Frame::Binary(vec![0xc1, 0xff])).is_err());
        let e = Envelope::new("teleport", serde_json::json!({}));
        assert!(matches!(ClientMsg::try_from(&e), Err(FrameError::UnknownType(_))));
        let e = Envelope::new("subscribe", serde_json::json!({"topics": ["doctor:nope"]}));
        assert!(matches!(ClientMsg::try_from(&e), Err(FrameError::BadPayload { .. })));
        let e = Envelope::new("resume", serde_json::json!({"last_seq": "x"}));
        assert!(ClientMsg::try_from(&e).is_err());
        let ok =
            Envelope::new("subscribe", serde_json::json!({"topics": [format!("doctor:{}", uuid::Uuid::new_v4())]}));
        assert!(matches!(ClientMsg::try_from(&ok), Ok(ClientMsg::Subscribe { .. })));
    }
}
