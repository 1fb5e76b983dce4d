//! The chat across nodes and the agent's typing (issue 9), against the real binary over real
//! WebSockets:
//! - two nodes sharing a Redis: a conversation whose actor runs on node 1 reaches the agent's
//!   console on node 2 (its assignment, the patient's messages and typing), and the patient's
//!   socket on node 2 gets the agent's typing made on node 1 (the gateway's Redis fan-out);
//! - one node: the agent's typing reaches the patient's socket, rate limited (of ten frames sent
//!   at once fewer pass) and never in the history; an agent not serving the conversation is
//!   refused;
//! - kill -9 while several patients and agents send at once: after the restart every
//!   acknowledged message is in the history with its number, both sides read the same history,
//!   numbered without gaps, each sender's messages in the order sent.
//!
//! The two nodes need the same staff and agent (their ids are in the console events): node 1
//! creates them, is killed, and both nodes start from copies of its data directory (sessions
//! and the patients' event logs are in the shared Redis).

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::chat::{agent, console, live};
use crate::harness::{ok_json, phone, Opts, RedisServer, TestServer};
use crate::realtime::Ws;

/// The next console/socket frame of `kind` whose payload names `conversation`.
async fn next_about(ws: &mut Ws, kind: &str, conversation: &str) -> Value {
    loop {
        let v = ws.next_of(kind).await;
        let p = &v["payload"];
        let about = p["conversation_id"].as_str().or(p["id"].as_str()).or(p["data"]["conversation_id"].as_str());
        if about == Some(conversation) {
            return v;
        }
    }
}

/// A copy of `dir` (a stopped node's data directory).
fn copy_dir(dir: &tempfile::TempDir) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", dir.path().display()))
        .arg(to.path())
        .status()
        .expect("cp");
    assert!(st.success(), "copying the data directory");
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_events_and_typing_cross_nodes_through_redis() {
    let redis = RedisServer::start();
    let opts = || {
        let mut o = Opts::new();
        o.redis_url = Some(redis.url());
        o
    };
    let first = TestServer::start(opts()).await;
    let admin = first.staff_login("admin", "admin-demo-2026").await;
    let (_, agent_token) = agent(&first, &admin, "crossnode", &["reports"], 5).await;
    let dir = first.kill_9();
    let copy = copy_dir(&dir);
    let n1 = TestServer::start(opts().data_dir(dir)).await;
    let n2 = TestServer::start(opts().data_dir(copy)).await;

    // The agent has a console on each node (two tabs behind a load balancer); node 1's
    // dispatcher assigns to them through the console there.
    let mut desk1 = console(&n1, &agent_token, "online").await;
    let mut desk2 = console(&n2, &agent_token, "online").await;
    let patient = n1.login(&phone(9701)).await;
    let mut far = live(&n2, &patient).await;
    let c = ok_json(
        n1.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "reports", "text": "报告什么时候出？"}))
            .await,
    )
    .await;
    assert_eq!(c["status"], "assigned", "{c}");
    let id = c["id"].as_str().unwrap().to_string();

    // Made on node 1, seen on node 2's console: the assignment and the patient's messages.
    let a = next_about(&mut desk2, "assignment", &id).await;
    assert_eq!(a["payload"]["status"], "assigned");
    let m = ok_json(
        n1.post(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient), json!({"text": "还在吗"})).await,
    )
    .await;
    let got = loop {
        let v = next_about(&mut desk2, "chat_message", &id).await;
        if v["payload"]["seq"] == m["seq"] {
            break v;
        }
    };
    assert_eq!(got["payload"]["body"]["text"], "还在吗", "node 2's console got node 1's message");
    // The patient's typing (node 1's route) reaches the console on node 2.
    assert_eq!(n1.post_empty(&format!("/api/v1/chat/conversations/{id}/typing"), Some(&patient)).await.status(), 204);
    let t = next_about(&mut desk2, "typing", &id).await;
    assert_eq!(t["payload"]["who"], "patient");

    // The agent types on node 1's console: the patient's socket on node 2 shows it.
    desk1.send(json!({"type": "typing", "conversation_id": id})).await;
    let t = next_about(&mut far, "typing", &id).await;
    assert_eq!(t["payload"]["data"]["who"], "agent", "{t}");
    assert!(t.get("seq").is_none_or(Value::is_null), "typing is not a numbered event: {t}");
    // And the agent's answer, as every personal event, reaches it too.
    let r = ok_json(
        n1.post(
            &format!("/api/v1/chat/agent/conversations/{id}/messages"),
            Some(&agent_token),
            json!({"text": "在的"}),
        )
        .await,
    )
    .await;
    let v = loop {
        let v = next_about(&mut far, "chat_message", &id).await;
        if v["payload"]["seq"] == r["seq"] {
            break v;
        }
    };
    assert_eq!(v["payload"]["body"]["text"], "在的");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agents_typing_reaches_the_patient_rate_limited_and_never_stored() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, serving) = agent(&s, &admin, "typist", &["booking"], 5).await;
    let (_, other) = agent(&s, &admin, "bystander", &["billing"], 5).await;
    let mut desk = console(&s, &serving, "online").await;
    let mut stranger = console(&s, &other, "online").await;
    let patient = s.login(&phone(9702)).await;
    let mut ws = live(&s, &patient).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "booking", "text": "挂号"})).await,
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    next_about(&mut desk, "assignment", &id).await;

    // Ten typing frames at once: fewer pass (at most one a second), then the answer follows.
    for _ in 0..10 {
        desk.send(json!({"type": "typing", "conversation_id": id})).await;
    }
    // The console handles its frames in order: once the heartbeat is answered the typing frames
    // were handled, so the answer, sent on another connection, cannot overtake them.
    desk.send(json!({"type": "heartbeat"})).await;
    desk.next_of("heartbeat").await;
    let r = ok_json(
        s.post(&format!("/api/v1/chat/agent/conversations/{id}/messages"), Some(&serving), json!({"text": "您好"}))
            .await,
    )
    .await;
    let mut typing = 0;
    loop {
        let v = ws.next().await.expect("frame");
        if v["type"] == "typing" {
            assert_eq!(v["payload"]["data"]["conversation_id"], id.as_str());
            assert_eq!(v["payload"]["data"]["who"], "agent");
            typing += 1;
        }
        if v["type"] == "chat_message" && v["payload"]["seq"] == r["seq"] {
            break;
        }
    }
    assert!((1..10).contains(&typing), "ten typing frames sent at once, {typing} passed");

    // An agent who does not serve it is refused, and nothing reaches the patient.
    stranger.send(json!({"type": "typing", "conversation_id": id})).await;
    let e = stranger.next_of("error").await;
    assert_eq!(e["payload"]["code"], "not_assigned", "{e}");

    // Typing is never stored: the history is the two messages.
    let h = ok_json(s.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&patient)).await).await;
    let texts: Vec<&str> =
        h["messages"].as_array().unwrap().iter().filter_map(|m| m["body"]["text"].as_str()).collect();
    assert_eq!(texts, ["挂号", "您好"]);
}

/// The history of `path` (`.../messages`) read with `token`, every page: (seq, text).
async fn history(s: &TestServer, path: &str, token: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = ok_json(s.get(&format!("{path}?after={after}&limit=200"), Some(token)).await).await;
        for m in page["messages"].as_array().unwrap() {
            out.push((m["seq"].as_u64().unwrap(), m["body"]["text"].as_str().unwrap_or("").to_string()));
        }
        match page["next_after"].as_u64() {
            Some(n) => after = n,
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_concurrent_sends_loses_no_acknowledged_message() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let mut agents = HashMap::new();
    let mut desks = Vec::new();
    for name in ["kate", "liam", "mona"] {
        let (id, token) = agent(&s, &admin, name, &["billing"], 4).await;
        desks.push(console(&s, &token, "online").await);
        agents.insert(id, token);
    }
    // Six conversations, all served at once.
    let mut convs = Vec::new();
    for i in 0..6u32 {
        let patient = s.login(&phone(9710 + i)).await;
        let c = ok_json(
            s.post(
                "/api/v1/chat/conversations",
                Some(&patient),
                json!({"group": "billing", "text": format!("第{i}位")}),
            )
            .await,
        )
        .await;
        assert_eq!(c["status"], "assigned", "{c}");
        let agent_token = agents[c["agent"]["id"].as_str().unwrap()].clone();
        convs.push((c["id"].as_str().unwrap().to_string(), patient, agent_token));
    }

    // Every patient and every agent sends as fast as answers come, on its own; each answer is
    // an acknowledgement. The server is killed in the middle of it.
    let acked: Arc<Mutex<Vec<(usize, u64, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for (i, (id, patient, agent_token)) in convs.iter().enumerate() {
        for (side, path, token) in [
            ("p", format!("/api/v1/chat/conversations/{id}/messages"), patient.clone()),
            ("a", format!("/api/v1/chat/agent/conversations/{id}/messages"), agent_token.clone()),
        ] {
            let (url, acked) = (s.url(&path), acked.clone());
            senders.push(tokio::spawn(async move {
                let c = reqwest::Client::builder().no_proxy().build().unwrap();
                for n in 0.. {
                    let text = format!("{side}{i}-{n}");
                    let r = c.post(&url).bearer_auth(&token).json(&json!({ "text": text })).send().await;
                    let Ok(r) = r else { break };
                    if r.status() != 200 {
                        break;
                    }
                    let Ok(m) = r.json::<Value>().await else { break };
                    acked.lock().unwrap().push((i, m["seq"].as_u64().unwrap(), text));
                }
            }));
        }
    }
    while acked.lock().unwrap().len() < 120 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let dir = s.kill_9();
    for t in senders {
        t.await.unwrap();
    }
    drop(desks);
    let acked = acked.lock().unwrap().clone();

    let s = TestServer::start(Opts::new().data_dir(dir)).await;
    for (i, (id, patient, agent_token)) in convs.iter().enumerate() {
        let mine = history(&s, &format!("/api/v1/chat/conversations/{id}/messages"), patient).await;
        let theirs = history(&s, &format!("/api/v1/chat/agent/conversations/{id}/messages"), agent_token).await;
        assert_eq!(mine, theirs, "conversation {i}: both sides read the same history");
        let seqs: Vec<u64> = mine.iter().map(|(n, _)| *n).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "conversation {i}: numbered without gaps");
        let stored: HashMap<u64, &str> = mine.iter().map(|(n, t)| (*n, t.as_str())).collect();
        for (_, seq, text) in acked.iter().filter(|(c, _, _)| *c == i) {
            assert_eq!(stored.get(seq).copied(), Some(text.as_str()), "conversation {i}: acknowledged #{seq} kept");
        }
        // Each side's messages in the order it sent them.
        for side in ["p", "a"] {
            let ns: Vec<u64> = mine
                .iter()
                .filter_map(|(_, t)| t.strip_prefix(&format!("{side}{i}-")).and_then(|n| n.parse().ok()))
                .collect();
            assert_eq!(ns, (0..ns.len() as u64).collect::<Vec<_>>(), "conversation {i}: {side}'s messages in order");
        }
    }
    assert!(acked.len() >= 120);
}
