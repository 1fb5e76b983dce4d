//! The WebSocket protocol's wire format (docs/realtime.md), as types. Every frame is one
//! envelope `{type, seq?, id?, payload}` in one of two encodings chosen by subprotocol: JSON text
//! frames (`hospital.json.v1`, the default) and MessagePack binary frames (`hospital.msgpack.v1`,
//! a map with the same keys). The server sends `ServerFrame`s: control frames (`Control`),
//! personal events and topic updates (`hospital_domain::live`), all serialised through
//! `Outgoing`; clients send `ClientMsg`s, decoded in two steps so a bad frame gets the precise
//! error code (`malformed_frame`, `unknown_type`, `bad_payload`).

use hospital_domain::live::{PersonalEvent, TopicEvent};
use serde::{Deserialize, Serialize};

pub const SUBPROTOCOL_JSON: &str = "hospital.json.v1";
pub const SUBPROTOCOL_MSGPACK: &str = "hospital.msgpack.v1";

/// Close codes: the standard ones we use, and ours (4000-4999).
pub mod close {
    /// The client closed; the server answers in kind.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down: reconnect (to another node) and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// The client broke the WebSocket protocol (an unmasked frame, reserved bits, a bad opcode,
    /// bytes that are not frames). A bug in the client: do not reconnect in a loop.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text frame that is not UTF-8 (RFC 6455 "invalid frame payload data").
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame larger than the limit (the standard "message too big").
    pub const TOO_BIG: u16 = 1009;
    /// Authentication missing, invalid, expired or revoked (logout, logout everywhere, session
    /// ended): log in again.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No frame (not even a ping) within the idle timeout.
    pub const IDLE: u16 = 4002;
    /// The client fell behind: too many personal events unacknowledged, or acknowledged too
    /// late, or writes to it timed out. Reconnect and resume: nothing is lost.
    pub const TOO_SLOW: u16 = 4008;
    /// SET-2: the patient has not accepted the latest privacy policy or user agreement (as REST's
    /// 403 `consent_required`): accept it over REST, then reconnect.
    pub const CONSENT_REQUIRED: u16 = 4003;
    /// Too many frames, or too many bad ones.
    pub const FLOOD: u16 = 4029;
}

/// Error codes of `error` frames (stable; docs/realtime.md lists them).
pub mod codes {
    pub const MALFORMED_FRAME: &str = "malformed_frame";
    pub const UNKNOWN_TYPE: &str = "unknown_type";
    pub const BAD_PAYLOAD: &str = "bad_payload";
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const TOO_MANY_TOPICS: &str = "too_many_topics";
    pub const ALREADY_AUTHENTICATED: &str = "already_authenticated";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const UNAVAILABLE: &str = "unavailable";
    /// The REST gate's code (SET-2), sent before a close with `close::CONSENT_REQUIRED`.
    pub const CONSENT_REQUIRED: &str = "consent_required";
}

/// Control frames the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum Control {
    Welcome(Welcome),
    Resumed(Resumed),
    Reload(Reload),
    Subscribed(Topics),
    Unsubscribed(Topics),
    /// The current state of a topic just subscribed to: the same updates the topic carries.
    Snapshot(Snapshot),
    Pong(Pong),
    Error(ErrorPayload),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub account_id: hospital_domain::AccountId,
    /// The account's latest sequence number when the socket opened.
    pub seq: u64,
    pub heartbeat_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_frame_bytes: usize,
    /// Personal events the server sends before it needs an `ack`.
    pub max_unacked: u64,
    pub ack_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumed {
    pub from: u64,
    pub replayed: usize,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    pub reason: String,
    /// Continue from here after reloading over REST.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topics {
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub topic: String,
    pub updates: Vec<TopicEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// The last sequence number this socket sent.
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorPayload {
    pub code: String,
    pub message: String,
}

/// Any frame the server sends, for clients (and tests) to decode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServerFrame {
    #[serde(flatten)]
    pub body: ServerBody,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ServerBody {
    Control(Control),
    Personal(PersonalEvent),
    Topic(TopicEvent),
}

/// What the server writes: a body (`Control`, `PersonalEvent`, `TopicEvent`) with the
/// envelope's `seq` and `id`.
#[derive(Debug, Serialize)]
pub struct Outgoing<'a, B: Serialize> {
    #[serde(flatten)]
    pub body: &'a B,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
}

impl<'a, B: Serialize> Outgoing<'a, B> {
    pub fn new(body: &'a B) -> Self {
        Self { body, seq: None, id: None }
    }
    pub fn seq(mut self, seq: u64) -> Self {
        self.seq = Some(seq);
        self
    }
    pub fn reply_to(mut self, id: Option<&'a str>) -> Self {
        self.id = id;
        self
    }
}

impl Control {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        Control::Error(ErrorPayload { code: code.into(), message: message.into() })
    }
}

/// A frame as the client sent it, before its payload is checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEnvelope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// What a client may send, after the envelope is read.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMsg {
    /// `last_seq`, when given, resumes before any live event is sent.
    Auth {
        token: String,
        last_seq: Option<u64>,
    },
    /// Replays every event after `last_seq`, then `resumed` (or `reload`).
    Resume {
        last_seq: u64,
    },
    Subscribe {
        topics: Vec<String>,
    },
    Unsubscribe {
        topics: Vec<String>,
    },
    /// Keeps the socket alive; `last_seq` (optional) acknowledges like `ack`.
    Ping {
        last_seq: Option<u64>,
    },
    /// The client has processed every personal event up to `seq`.
    Ack {
        seq: u64,
    },
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
            FrameError::Malformed(_) => codes::MALFORMED_FRAME,
            FrameError::UnknownType(_) => codes::UNKNOWN_TYPE,
            FrameError::BadPayload { .. } => codes::BAD_PAYLOAD,
        }
    }
}

/// The two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Json,
    MsgPack,
}

/// A data frame, independent of the WebSocket library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Codec {
    /// The codec of a negotiated subprotocol (none: JSON).
    pub fn from_subprotocol(p: Option<&str>) -> Self {
        if p == Some(SUBPROTOCOL_MSGPACK) {
            Codec::MsgPack
        } else {
            Codec::Json
        }
    }

    pub fn encode<T: Serialize>(self, v: &T) -> Frame {
        match self {
            Codec::Json => Frame::Text(serde_json::to_string(v).expect("frames serialise")),
            Codec::MsgPack => Frame::Binary(to_msgpack(v)),
        }
    }

    pub fn decode(self, frame: &Frame) -> Result<ClientEnvelope, FrameError> {
        match (self, frame) {
            (Codec::Json, Frame::Text(t)) => serde_json::from_str(t).map_err(|_| FrameError::Malformed("JSON")),
            (Codec::MsgPack, Frame::Binary(b)) => from_msgpack(b).map_err(|_| FrameError::Malformed("MessagePack")),
            (Codec::Json, Frame::Binary(_)) => Err(FrameError::Malformed("JSON text")),
            (Codec::MsgPack, Frame::Text(_)) => Err(FrameError::Malformed("MessagePack binary")),
        }
    }

    /// Decodes a frame the server sent (clients and tests).
    pub fn decode_server(self, frame: &Frame) -> Result<ServerFrame, String> {
        match (self, frame) {
            (Codec::Json, Frame::Text(t)) => serde_json::from_str(t).map_err(|e| e.to_string()),
            (Codec::MsgPack, Frame::Binary(b)) => from_msgpack(b).map_err(|e| e.to_string()),
            _ => Err("a frame of the other encoding".into()),
        }
    }
}

/// MessagePack as the guide describes it: structs as maps with their field names, and ids and
/// times as the same strings JSON carries (rmp's compact default would write a UUID as 16 raw
/// bytes), so one client-side model reads both encodings.
pub fn to_msgpack<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut ser = rmp_serde::Serializer::new(&mut buf).with_struct_map().with_human_readable();
    v.serialize(&mut ser).expect("frames serialise");
    buf
}

pub fn from_msgpack<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(b).with_human_readable();
    T::deserialize(&mut de)
}

/// Topics in one frame, at most.
pub const MAX_TOPICS_PER_FRAME: usize = 50;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthPayload {
    token: String,
    #[serde(default)]
    last_seq: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResumePayload {
    last_seq: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsPayload {
    topics: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PingPayload {
    #[serde(default)]
    last_seq: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckPayload {
    seq: u64,
}

/// The topics a client may subscribe to: public state only.
pub fn valid_topic(t: &str) -> bool {
    match t.split_once(':') {
        Some(("doctor" | "department" | "queue", id)) => uuid::Uuid::try_parse(id).is_ok(),
        _ => false,
    }
}

/// Why a list of topics is refused (the first that is not `valid_topic`), if it is.
pub fn invalid_topic(topics: &[String]) -> Option<String> {
    let t = topics.iter().find(|t| !valid_topic(t))?;
    let t: String = t.chars().take(60).collect();
    Some(format!("{t:?}: a topic is doctor:<uuid>, department:<uuid> or queue:<session uuid>"))
}

impl TryFrom<&ClientEnvelope> for ClientMsg {
    type Error = FrameError;
    fn try_from(e: &ClientEnvelope) -> Result<Self, FrameError> {
        let bad = |why: String| FrameError::BadPayload { kind: e.kind.clone(), why };
        fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, String> {
            // An absent payload reads as an empty object.
            let v = if v.is_null() { serde_json::json!({}) } else { v.clone() };
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
        match e.kind.as_str() {
            "auth" => {
                let p: AuthPayload = parse(&e.payload).map_err(bad)?;
                Ok(ClientMsg::Auth { token: p.token, last_seq: p.last_seq })
            }
            "resume" => {
                let p: ResumePayload = parse(&e.payload).map_err(bad)?;
                Ok(ClientMsg::Resume { last_seq: p.last_seq })
            }
            "subscribe" | "unsubscribe" => {
                let p: TopicsPayload = parse(&e.payload).map_err(bad)?;
                if p.topics.len() > MAX_TOPICS_PER_FRAME {
                    return Err(bad(format!("at most {MAX_TOPICS_PER_FRAME} topics per frame")));
                }
                if let Some(why) = invalid_topic(&p.topics) {
                    return Err(bad(why));
                }
                Ok(if e.kind == "subscribe" {
                    ClientMsg::Subscribe { topics: p.topics }
                } else {
                    ClientMsg::Unsubscribe { topics: p.topics }
                })
            }
            "ping" => {
                let p: PingPayload = parse(&e.payload).map_err(bad)?;
                Ok(ClientMsg::Ping { last_seq: p.last_seq })
            }
            "ack" => {
                let p: AckPayload = parse(&e.payload).map_err(bad)?;
                Ok(ClientMsg::Ack { seq: p.seq })
            }
            other => Err(FrameError::UnknownType(other.chars().take(40).collect())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hospital_domain::live::UnreadCount;

    #[test]
    fn outgoing_frames_decode_as_they_were_meant() {
        let ev = PersonalEvent::Unread(UnreadCount { count: 2 });
        for c in [Codec::Json, Codec::MsgPack] {
            let f = c.encode(&Outgoing::new(&ev).seq(7));
            let back = c.decode_server(&f).unwrap();
            assert_eq!(back.seq, Some(7));
            assert_eq!(back.body, ServerBody::Personal(ev.clone()));
            let pong = Control::Pong(Pong { seq: 7 });
            let f = c.encode(&Outgoing::new(&pong).reply_to(Some("p1")));
            let back = c.decode_server(&f).unwrap();
            assert_eq!((back.body, back.id.as_deref(), back.seq), (ServerBody::Control(pong), Some("p1"), None));
        }
        let Frame::Text(t) = Codec::Json.encode(&Outgoing::new(&ev).seq(7)) else { panic!() };
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        assert_eq!(v, serde_json::json!({"type": "unread", "seq": 7, "payload": {"count": 2}}));
    }

    #[test]
    fn refuses_garbage_and_unknowns() {
        assert_eq!(Codec::Json.decode(&Frame::Text("{{".into())), Err(FrameError::Malformed("JSON")));
        assert!(Codec::MsgPack.decode(&Frame::Binary(vec![0xc1, 0xff])).is_err());
        let env = |kind: &str, payload: serde_json::Value| ClientEnvelope { kind: kind.into(), id: None, payload };
        assert!(matches!(
            ClientMsg::try_from(&env("teleport", serde_json::json!({}))),
            Err(FrameError::UnknownType(_))
        ));
        let e = env("subscribe", serde_json::json!({"topics": ["doctor:nope"]}));
        assert!(matches!(ClientMsg::try_from(&e), Err(FrameError::BadPayload { .. })));
        assert!(ClientMsg::try_from(&env("resume", serde_json::json!({"last_seq": "x"}))).is_err());
        assert!(ClientMsg::try_from(&env("ack", serde_json::json!({"seq": -1}))).is_err());
        let ok = env("subscribe", serde_json::json!({"topics": [format!("doctor:{}", uuid::Uuid::new_v4())]}));
        assert!(matches!(ClientMsg::try_from(&ok), Ok(ClientMsg::Subscribe { .. })));
        assert_eq!(ClientMsg::try_from(&env("ping", serde_json::Value::Null)), Ok(ClientMsg::Ping { last_seq: None }));
        assert_eq!(
            ClientMsg::try_from(&env("ping", serde_json::json!({"last_seq": 4}))),
            Ok(ClientMsg::Ping { last_seq: Some(4) })
        );
    }
}
