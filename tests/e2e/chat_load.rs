//! The chat across nodes and the agent's typing (issue 9), against the real binary over real
//! WebSockets:
//! - two nodes sharing a Redis: a conversation whose actor runs on node 1 reaches the agent's
//!   console on node 2 (its assignment, the patient's messages and typing), and the patient's
//!   socket on node 2 gets the agent's typing made on node 1 (the gateway's Redis fan-out);
//! - one node: the agent's typing reaches the patient's socket, rate limited (of ten frames sent
//!   at once fewer pass) and never in the history; an agent not serving the conversation is
//!   refused.
//!
//! The two nodes need the same staff and agent (their ids are in the console events): node 1
//! creates them, is killed, and both nodes start from copies of its data directory (sessions
//! and the patients' event logs are in the shared Redis).

use serde_json::{json, Value};

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
