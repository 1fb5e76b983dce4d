//! Customer-service chat (CS-1..CS-3) against the real binary, over real WebSockets: patients
//! open conversations while agents' consoles are online; the dispatcher fills each agent up to
//! their cap, the rest wait in arrival order and see their place fall by one each time a place
//! frees up; an agent going offline hands their conversations back to the head of the backlog;
//! transfer, close and rating; access refusals; the history exact on both sides across a
//! reconnect and a kill -9.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{assert_error, ok_json, phone, Opts, TestServer};
use crate::realtime::{Enc, Ws};

/// Creates a staff member with role `agent` and makes them an agent of `groups` with `cap`;
/// their (id, token).
pub(crate) async fn agent(s: &TestServer, admin: &str, username: &str, groups: &[&str], cap: u32) -> (String, String) {
    let created = ok_json(
        s.post(
            "/api/v1/admin/staff",
            Some(admin),
            json!({"username": username, "name": format!("客服{username}"), "password": "agent-pass-2026", "roles": ["agent"]}),
        )
        .await,
    )
    .await;
    let id = created["id"].as_str().expect("staff id").to_string();
    let r = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/chat/agents/{id}"),
            Some(admin),
            Some(json!({"groups": groups, "cap": cap})),
        )
        .await;
    let profile = ok_json(r).await;
    assert_eq!(profile["cap"], cap);
    (id, s.staff_login(username, "agent-pass-2026").await)
}

/// An agent's console socket, online (or `presence`), after its welcome.
pub(crate) async fn console(s: &TestServer, token: &str, presence: &str) -> Ws {
    let url = s.base.replace("http://", "ws://") + "/api/v1/chat/console/ws?presence=" + presence;
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("console connect");
    let mut ws = Ws { stream, enc: Enc::Json };
    let w = ws.next_of("welcome").await;
    assert_eq!(w["payload"]["presence"], presence);
    ws
}

/// A patient's live socket after its welcome.
pub(crate) async fn live(s: &TestServer, token: &str) -> Ws {
    let mut ws = Ws::connect(s, Some(token), Enc::Json).await;
    ws.next_of("welcome").await;
    ws
}

/// The next `chat_queue` event's place (skipping other frames).
async fn next_place(ws: &mut Ws) -> u64 {
    ws.next_of("chat_queue").await["payload"]["position"].as_u64().expect("position")
}

/// The next `conversation` event with `status`.
async fn next_status(ws: &mut Ws, status: &str) -> Value {
    loop {
        let v = ws.next_of("conversation").await;
        if v["payload"]["status"] == status {
            return v["payload"].clone();
        }
    }
}

struct Patient {
    token: String,
    ws: Ws,
    conversation: String,
}

async fn desk(s: &TestServer, token: &str) -> Value {
    ok_json(s.get("/api/v1/chat/agent/desk", Some(token)).await).await
}

fn held(desk: &Value) -> Vec<String> {
    desk["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_fifo_places_hand_back_to_the_head_transfer_close_and_rating() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let mut agents = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (id, token) = agent(&s, &admin, name, &["booking"], 4).await;
        let ws = console(&s, &token, "online").await;
        agents.push((id, token, ws));
    }

    // 30 patients open conversations, one after the other: the first 12 are taken at once (3
    // agents, cap 4), the other 18 wait in arrival order.
    let mut patients = Vec::new();
    for i in 0..30u32 {
        let token = s.login(&phone(9100 + i)).await;
        let ws = live(&s, &token).await;
        let c = ok_json(
            s.post(
                "/api/v1/chat/conversations",
                Some(&token),
                json!({"group": "booking", "text": format!("你好，我是{i}号")}),
            )
            .await,
        )
        .await;
        if i < 12 {
            assert_eq!(c["status"], "assigned", "{c}");
            assert!(c["agent"]["name"].as_str().unwrap().starts_with("客服"), "the called agent's name: {c}");
            assert!(c["queue"].is_null());
        } else {
            assert_eq!(c["status"], "waiting", "{c}");
            assert_eq!(c["queue"]["position"], u64::from(i - 11), "{c}");
            assert_eq!(c["queue"]["agents_online"], 3);
            assert!(c["queue"]["estimated_wait_minutes"].as_u64().unwrap() >= 1);
        }
        patients.push(Patient { token, ws, conversation: c["id"].as_str().unwrap().to_string() });
    }
    for p in patients.iter_mut().skip(12) {
        next_place(&mut p.ws).await; // its first place
    }
    let mut loads = Vec::new();
    for (_, token, _) in &agents {
        loads.push(held(&desk(&s, token).await).len());
    }
    assert_eq!(loads, vec![4, 4, 4], "fewest-open assignment fills everyone to the cap");

    // Three times an agent closes one of theirs: the head of the backlog goes to them, and every
    // waiting patient's place falls by one, pushed live.
    let mut waiting: Vec<usize> = (12..30).collect();
    for (round, (agent_id, token, _)) in agents.iter().enumerate() {
        let mine = held(&desk(&s, token).await);
        let r = s.post_empty(&format!("/api/v1/chat/agent/conversations/{}/close", mine[0]), Some(token)).await;
        assert_eq!(ok_json(r).await["status"], "closed");
        let head = waiting.remove(0);
        let got = next_status(&mut patients[head].ws, "assigned").await;
        assert_eq!(got["agent"]["id"], agent_id.as_str(), "the head goes to the agent who freed a place");
        for (k, &p) in waiting.iter().enumerate() {
            assert_eq!(next_place(&mut patients[p].ws).await, k as u64 + 1, "patient {p} after close {round}");
        }
    }
    assert_eq!(waiting.len(), 15);

    // Bob goes offline: his four conversations go back to the head of the backlog, in arrival
    // order, before everyone who was waiting.
    let bobs = held(&desk(&s, &agents[1].1).await);
    assert_eq!(bobs.len(), 4);
    agents[1].2.send(json!({"type": "presence", "presence": "offline"})).await;
    agents[1].2.next_of("presence_set").await;
    let group = ok_json(s.get("/api/v1/chat/agent/groups/booking", Some(&admin)).await).await;
    let first: Vec<String> = group["backlog"]["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["conversation_id"].as_str().unwrap().into())
        .collect();
    let ids: Vec<String> = patients.iter().map(|p| p.conversation.clone()).collect();
    let index_of = |id: &str| ids.iter().position(|c| c == id).unwrap();
    let mut bobs_in_order: Vec<usize> = bobs.iter().map(|c| index_of(c)).collect();
    bobs_in_order.sort();
    let expected: Vec<String> =
        bobs_in_order.iter().chain(waiting.iter()).map(|&i| patients[i].conversation.clone()).collect();
    assert_eq!(group["backlog"]["waiting"], 19);
    assert_eq!(first, expected[..first.len()].to_vec(), "hand-backs at the head, the rest in arrival order");
    for (k, &p) in waiting.iter().enumerate() {
        // Each waiting patient is told their place moved back by four.
        let mut place = next_place(&mut patients[p].ws).await;
        while place != k as u64 + 5 {
            place = next_place(&mut patients[p].ws).await;
        }
    }
    for &p in &bobs_in_order {
        next_status(&mut patients[p].ws, "waiting").await;
    }

    // Transfer: to a full agent is refused; to another group keeps the place in line there.
    let (alice_id, alice, _) = &agents[0];
    let carol_id = &agents[2].0;
    let alices = held(&desk(&s, alice).await);
    let r = s
        .post(
            &format!("/api/v1/chat/agent/conversations/{}/transfer", alices[0]),
            Some(alice),
            json!({"agent": carol_id}),
        )
        .await;
    assert_error(r, 409, "agent_unavailable").await;
    let r = s
        .post(
            &format!("/api/v1/chat/agent/conversations/{}/transfer", alices[0]),
            Some(alice),
            json!({"group": "billing"}),
        )
        .await;
    let moved = ok_json(r).await;
    assert_eq!((moved["group"].as_str(), moved["status"].as_str()), (Some("billing"), Some("waiting")));
    let p = index_of(&alices[0]);
    let c = ok_json(s.get(&format!("/api/v1/chat/conversations/{}", alices[0]), Some(&patients[p].token)).await).await;
    assert_eq!((c["group"].as_str(), c["queue"]["position"].as_u64()), (Some("billing"), Some(1)));
    assert_eq!(c["queue"]["agents_online"], 0, "nobody answers billing");
    assert!(c["queue"]["estimated_wait_minutes"].is_null());
    assert!(held(&desk(&s, alice).await).len() == 4, "alice's place was refilled from the head");
    let _ = alice_id;

    // Access: another patient's conversation is 404 for a patient and for an agent not serving
    // it; patients cannot use the agents' routes; a reply to a conversation one does not serve is
    // refused.
    let carols = held(&desk(&s, &agents[2].1).await);
    let victim = index_of(&carols[0]);
    let other = (0..30).find(|i| *i != victim).unwrap();
    let path = format!("/api/v1/chat/conversations/{}", carols[0]);
    assert_error(s.get(&path, Some(&patients[other].token)).await, 404, "not_found").await;
    assert_error(s.get(&(path.clone() + "/messages"), Some(&patients[other].token)).await, 404, "not_found").await;
    let agent_path = format!("/api/v1/chat/agent/conversations/{}", carols[0]);
    assert_error(s.get(&(agent_path.clone() + "/messages"), Some(alice)).await, 404, "not_found").await;
    assert_error(s.get(&agent_path, Some(&patients[victim].token)).await, 403, "forbidden").await;
    let r = s.post(&(agent_path.clone() + "/messages"), Some(alice), json!({"text": "不是我的"})).await;
    assert_error(r, 404, "not_found").await;

    // Close and rating: the patient closes a served conversation and rates it once.
    let r = s.post_empty(&format!("{path}/close"), Some(&patients[victim].token)).await;
    let closed = ok_json(r).await;
    assert_eq!((closed["status"].as_str(), closed["can_rate"].as_bool()), (Some("closed"), Some(true)));
    let r = s.post(&format!("{path}/rating"), Some(&patients[victim].token), json!({"score": 6})).await;
    assert_error(r, 422, "invalid_field").await;
    let r = s
        .post(&format!("{path}/rating"), Some(&patients[victim].token), json!({"score": 5, "comment": "很耐心"}))
        .await;
    let rated = ok_json(r).await;
    assert_eq!(rated["rating"]["score"], 5);
    assert_eq!(rated["rating"]["comment"], "很耐心");
    let r = s.post(&format!("{path}/rating"), Some(&patients[victim].token), json!({"score": 1})).await;
    assert_error(r, 409, "already_rated").await;
    let r = s.post(&format!("{path}/messages"), Some(&patients[victim].token), json!({"text": "还在吗"})).await;
    assert_error(r, 409, "conversation_state").await;
}
