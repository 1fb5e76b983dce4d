//! Every frame example in docs/realtime.md (the client's guide) is a frame the server's types
//! read and write exactly as shown: client frames parse into `ClientMsg`; server frames parse
//! into the typed `ServerFrame` (control frames, personal events, topic updates), and writing
//! them back gives the same JSON, field for field, in both encodings.

use hospital_gateway::realtime::protocol::{
    ClientEnvelope, ClientMsg, Codec, Frame, Outgoing, ServerBody, ServerFrame,
};

fn examples() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/realtime.md");
    let guide = std::fs::read_to_string(path).expect("docs/realtime.md");
    let mut out = Vec::new();
    let mut in_json = false;
    for line in guide.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            l if in_json && l.starts_with('{') => out.push(l.to_string()),
            _ => {}
        }
    }
    out
}

const CLIENT_TYPES: [&str; 6] = ["auth", "resume", "subscribe", "unsubscribe", "ack", "ping"];

/// The frame written back by the server's own serialisation.
fn rewrite(f: &ServerFrame) -> serde_json::Value {
    let out = |b: &dyn erased::Ser| b.json(f.seq, f.id.as_deref());
    match &f.body {
        ServerBody::Control(c) => out(c),
        ServerBody::Personal(p) => out(p),
        ServerBody::Topic(t) => out(t),
    }
}

mod erased {
    use super::*;
    pub trait Ser {
        fn json(&self, seq: Option<u64>, id: Option<&str>) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self, seq: Option<u64>, id: Option<&str>) -> serde_json::Value {
            let mut o = Outgoing::new(self).reply_to(id);
            o.seq = seq;
            serde_json::to_value(&o).unwrap()
        }
    }
}

#[test]
fn every_frame_example_in_the_guide_is_a_typed_frame() {
    let examples = examples();
    assert!(examples.len() >= 25, "the guide's examples were found ({})", examples.len());
    let (mut client, mut server) = (0, 0);
    for line in &examples {
        let raw: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let kind = raw["type"].as_str().unwrap_or_else(|| panic!("no type: {line}"));
        if CLIENT_TYPES.contains(&kind) {
            let env: ClientEnvelope = serde_json::from_value(raw.clone()).unwrap();
            ClientMsg::try_from(&env).unwrap_or_else(|e| panic!("{e}: {line}"));
            client += 1;
            continue;
        }
        let typed: ServerFrame = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(rewrite(&typed), raw, "written back as the guide shows it: {line}");
        // The same frame in MessagePack reads back to the same typed frame.
        let Frame::Text(json) = Codec::Json.encode(&raw) else { panic!() };
        let mp = Codec::MsgPack.encode(&raw);
        assert_eq!(Codec::MsgPack.decode_server(&mp).unwrap(), Codec::Json.decode_server(&Frame::Text(json)).unwrap());
        server += 1;
    }
    assert!(client >= 6 && server >= 20, "client {client}, server {server}");
}

#[test]
fn the_guide_shows_every_kind_of_event() {
    let kinds: std::collections::HashSet<String> = examples()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].as_str().unwrap().to_string())
        .collect();
    for k in [
        "welcome",
        "resumed",
        "reload",
        "subscribed",
        "unsubscribed",
        "snapshot",
        "pong",
        "error",
        "appointment",
        "order",
        "message",
        "unread",
        "queue",
        "exam",
        "exam_alert",
        "profile",
        "availability",
        "queue_summary",
    ] {
        assert!(kinds.contains(k), "the guide has an example of {k}");
    }
}
