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

/// The texts of a history page, with their numbers.
fn texts(page: &Value) -> Vec<(u64, String)> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["body"]["text"].as_str().unwrap_or("").to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_messages_resume_exactly_and_kill_9_loses_no_acknowledged_message() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, agent_token) = agent(&s, &admin, "dave", &["billing"], 5).await;
    let mut desk_ws = console(&s, &agent_token, "online").await;
    let patient = s.login(&phone(9300)).await;
    let mut ws = live(&s, &patient).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "billing", "text": "医保怎么报销？"}))
            .await,
    )
    .await;
    assert_eq!(c["status"], "assigned");
    let id = c["id"].as_str().unwrap().to_string();
    let assignment = desk_ws.next_of("assignment").await;
    assert_eq!(assignment["payload"]["id"], id.as_str());
    assert_eq!(assignment["payload"]["patient"], "患*", "the console shows the name masked");
    let (patient_path, agent_path) =
        (format!("/api/v1/chat/conversations/{id}"), format!("/api/v1/chat/agent/conversations/{id}"));

    // An exchange: every answer carries the next number, and each side sees the other's message
    // live with it.
    let mut acked = vec![(1u64, "医保怎么报销？".to_string())];
    for i in 0..5 {
        let text = format!("患者第{i}问");
        let m = ok_json(s.post(&format!("{patient_path}/messages"), Some(&patient), json!({"text": text})).await).await;
        acked.push((m["seq"].as_u64().unwrap(), text));
        // The console also shows the agent's own replies; the patient's message comes next.
        let got = loop {
            let v = desk_ws.next_of("chat_message").await;
            if v["payload"]["sender"]["kind"] == "patient" {
                break v;
            }
        };
        assert_eq!(got["payload"]["seq"], m["seq"], "the agent's console gets the patient's message live");
        let text = format!("客服第{i}答");
        let m =
            ok_json(s.post(&format!("{agent_path}/messages"), Some(&agent_token), json!({"text": text})).await).await;
        acked.push((m["seq"].as_u64().unwrap(), text));
    }
    // Typing reaches the agent's console, at most once a second, and is never stored.
    let r = s.post_empty(&format!("{patient_path}/typing"), Some(&patient)).await;
    assert_eq!(r.status(), 204);
    let t = desk_ws.next_of("typing").await;
    assert_eq!(
        (t["payload"]["conversation_id"].as_str(), t["payload"]["who"].as_str()),
        (Some(id.as_str()), Some("patient"))
    );
    assert_error(s.post_empty(&format!("{patient_path}/typing"), Some(&patient)).await, 429, "rate_limited").await;
    let seqs: Vec<u64> = acked.iter().map(|(n, _)| *n).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>(), "numbered 1, 2, 3... without gaps");

    // The patient's socket takes its events up to the agent's last answer, then goes away.
    let mut last_event = 0;
    loop {
        let v = ws.next().await.expect("frame");
        if let Some(n) = v["seq"].as_u64() {
            last_event = n;
        }
        if v["type"] == "chat_message" && v["payload"]["seq"] == 11 {
            break;
        }
    }
    drop(ws);
    for i in 5..8 {
        let text = format!("客服第{i}答");
        let m =
            ok_json(s.post(&format!("{agent_path}/messages"), Some(&agent_token), json!({"text": text})).await).await;
        acked.push((m["seq"].as_u64().unwrap(), text));
    }
    // Reconnecting with the last number processed gives exactly what was missed, in order.
    let mut req = crate::realtime::request(&s, Some(&patient), Enc::Json);
    *req.uri_mut() = format!("{}?last_seq={last_event}", crate::realtime::ws_url(&s)).parse().unwrap();
    let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("ws reconnect");
    let mut ws = Ws { stream, enc: Enc::Json };
    let mut missed = Vec::new();
    let mut expect = last_event + 1;
    while missed.len() < 3 {
        let v = ws.next().await.expect("frame");
        if let Some(n) = v["seq"].as_u64() {
            assert_eq!(n, expect, "events resume without a gap: {v}");
            expect += 1;
            if v["type"] == "chat_message" {
                missed.push((
                    v["payload"]["seq"].as_u64().unwrap(),
                    v["payload"]["body"]["text"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    assert_eq!(missed, acked[11..].to_vec(), "exactly the messages sent while away");

    // kill -9 right after the last acknowledgement: after the restart both sides read the same
    // history, every acknowledged message in order.
    let dir = s.kill_9();
    let s = TestServer::start(Opts::new().data_dir(dir)).await;
    // The logins are stored too: both sides keep their tokens across the restart.
    let mine = ok_json(s.get(&format!("{patient_path}/messages?limit=200"), Some(&patient)).await).await;
    let theirs = ok_json(s.get(&format!("{agent_path}/messages?limit=200"), Some(&agent_token)).await).await;
    assert_eq!(texts(&mine), acked, "the patient's history is every acknowledged message, in order");
    assert_eq!(texts(&theirs), acked, "the agent's history is the same");
    // Paged: two pages of 10 then the rest, with the cursor.
    let p1 = ok_json(s.get(&format!("{patient_path}/messages?limit=10"), Some(&patient)).await).await;
    assert_eq!(p1["next_after"], 10);
    let p2 = ok_json(s.get(&format!("{patient_path}/messages?after=10&limit=10"), Some(&patient)).await).await;
    assert_eq!(texts(&p2), acked[10..].to_vec());
    assert!(p2["next_after"].is_null());
    // Read marks are stored: the patient read up to 14, the agent's view shows it.
    let r = ok_json(s.post(&format!("{patient_path}/read"), Some(&patient), json!({"seq": 14})).await).await;
    assert_eq!(r["moved"], true);
    let seen = ok_json(s.get(&agent_path, Some(&agent_token)).await).await;
    assert_eq!(seen["patient_read"], 14);
    let r = s.post(&format!("{patient_path}/read"), Some(&patient), json!({"seq": 99})).await;
    assert_error(r, 422, "invalid_field").await;
}

/// Clicks `css`, again if the live page re-rendered it between finding and clicking.
async fn click(b: &crate::browser::Browser, css: &str) {
    for _ in 0..50 {
        if b.find(css).await.click().await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("could not click {css}");
}

/// In real Chromium: an agent logs in to the console, a WebSocket patient's chat arrives live, a
/// patient's markup shows as text (never runs), the agent answers with a canned reply that the
/// patient receives, and the patient's answer shows live. Screenshot: `console-chat.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_chromium_answers_a_live_patient_with_a_canned_reply() {
    use crate::browser::Browser;
    use fantoccini::Locator;
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    agent(&s, &admin, "erin", &["booking"], 5).await;
    let b = Browser::start().await;
    b.sign_in(&s.url("/console"), "erin", "agent-pass-2026").await;
    b.wait_text("我的会话").await;
    b.wait_text("已连接").await;
    // Were the patient's markup ever run, this would record it.
    b.client.execute("window.alert = () => { window.__alerted = true; }", vec![]).await.unwrap();

    let patient = s.login(&phone(9400)).await;
    ok_json(s.request(reqwest::Method::PATCH, "/api/v1/me", Some(&patient), Some(json!({"name": "韩梅梅"}))).await)
        .await;
    let mut ws = live(&s, &patient).await;
    let markup = "<img src=x onerror=alert(1)>";
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "booking", "text": markup})).await,
    )
    .await;
    assert_eq!(c["status"], "assigned", "{c}");
    assert_eq!(c["agent"]["name"], "客服erin");

    // The chat arrives in the inbox with its unread badge; opened, the markup is text.
    b.wait_text("韩**").await;
    b.find(".inbox .item .badge").await;
    click(&b, ".inbox .item").await;
    b.wait_text(markup).await;
    let imgs = b.client.find_all(Locator::Css(".log img")).await.unwrap();
    assert!(imgs.is_empty(), "a patient's markup never becomes an element");
    let alerted = b.client.execute("return typeof window.__alerted", vec![]).await.unwrap();
    assert_eq!(alerted, "undefined");

    // A canned reply, filled with the patient's name, reaches the patient live.
    click(&b, ".canned .chip").await;
    click(&b, ".reply .send").await;
    let got = loop {
        let v = ws.next_of("chat_message").await;
        if v["payload"]["sender"]["kind"] == "agent" {
            break v;
        }
    };
    let text = got["payload"]["body"]["text"].as_str().unwrap();
    assert!(text.contains("韩梅梅") && text.contains("客服erin"), "the canned reply filled in: {text}");
    // The patient reads it and answers: the console shows both live.
    ok_json(
        s.post(
            &format!("/api/v1/chat/conversations/{}/read", c["id"].as_str().unwrap()),
            Some(&patient),
            json!({"seq": got["payload"]["seq"]}),
        )
        .await,
    )
    .await;
    ok_json(
        s.post(
            &format!("/api/v1/chat/conversations/{}/messages", c["id"].as_str().unwrap()),
            Some(&patient),
            json!({"text": "好的，谢谢您！"}),
        )
        .await,
    )
    .await;
    b.wait_text("好的，谢谢您！").await;
    b.wait_text("已读").await;
    let shot = b.screenshot("console-chat").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    let _ = b.client.clone().close().await;
}
