//! The customer-service desk against the real binary (CS-4, CS-2): service hours and
//! leave-a-message tickets answered once, over a real WebSocket into the message centre; the
//! FAQ with pinyin search and first-message suggestions; canned-reply management; supervisors.

use serde_json::{json, Value};

use crate::chat::{agent, live};
use crate::harness::{assert_error, ok_json, phone, Opts, TestServer};
use crate::realtime::Ws;

/// Reads the patient's socket until a frame of `kind` matches `want`; its payload.
async fn frame(ws: &mut Ws, kind: &str, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = ws.next().await.expect("socket open");
        if v["type"] == kind && want(&v["payload"]) {
            return v["payload"].clone();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outside_service_hours_a_message_becomes_a_ticket_answered_once_into_the_message_centre() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, alice) = agent(&s, &admin, "alice", &["billing"], 4).await;
    let (_, bob) = agent(&s, &admin, "bob", &["booking"], 4).await;

    // Billing answers on no day at all: now is outside its hours. An agent may not set hours.
    let hours = json!({"hours": {"mon": ["08:00-12:00"], "closed_on": []}});
    let r = s.request(reqwest::Method::PUT, "/api/v1/chat/groups/billing/hours", Some(&alice), Some(hours)).await;
    assert_error(r, 403, "forbidden").await;
    let bad = json!({"hours": {"mon": ["08:00-12:00", "11:00-13:00"]}});
    let r = s.request(reqwest::Method::PUT, "/api/v1/chat/groups/billing/hours", Some(&admin), Some(bad)).await;
    assert_eq!(r.status(), 422, "overlapping spans are refused");
    let closed = json!({"hours": {}});
    let h =
        ok_json(s.request(reqwest::Method::PUT, "/api/v1/chat/groups/billing/hours", Some(&admin), Some(closed)).await)
            .await;
    assert_eq!((h["open_now"].clone(), h["next_opening"].clone()), (json!(false), Value::Null), "{h}");
    let public = ok_json(s.get("/api/v1/chat/groups/billing/hours", None).await).await;
    assert_eq!(public["open_now"], false);
    assert_eq!(ok_json(s.get("/api/v1/chat/groups/booking/hours", None).await).await["open_now"], true);

    // A patient opening a conversation is told to leave a message; they do, with their socket open.
    let patient = s.login(&phone(9300)).await;
    let mut ws = live(&s, &patient).await;
    let r = s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "billing", "text": "在吗"})).await;
    let e = assert_error(r, 409, "outside_service_hours").await;
    assert!(e["message"].as_str().unwrap().contains("留言"), "{e}");
    let t1 = ok_json(
        s.post("/api/v1/chat/tickets", Some(&patient), json!({"group": "billing", "text": "发票怎么开？<b>x</b>"}))
            .await,
    )
    .await;
    assert_eq!((t1["status"].as_str(), t1["text"].as_str()), (Some("open"), Some("发票怎么开？<b>x</b>")));
    let other = s.login(&phone(9301)).await;
    let t2 = ok_json(
        s.post("/api/v1/chat/tickets", Some(&other), json!({"group": "billing", "text": "医保能报销吗"})).await,
    )
    .await;
    let r = s.post("/api/v1/chat/tickets", Some(&patient), json!({"group": "billing", "text": " "})).await;
    assert_error(r, 422, "invalid_field").await;
    let (id1, id2) = (t1["id"].as_str().unwrap(), t2["id"].as_str().unwrap());

    // The group's agent lists them oldest first; an agent of another group sees none of them.
    let list = ok_json(s.get("/api/v1/chat/agent/tickets", Some(&alice)).await).await;
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![id1, id2]);
    assert_eq!(ok_json(s.get("/api/v1/chat/agent/tickets", Some(&bob)).await).await, json!([]));
    assert_error(s.get("/api/v1/chat/agent/tickets?group=billing", Some(&bob)).await, 403, "forbidden").await;
    let answer = |who: &str, text: &str| {
        let path = format!("/api/v1/chat/agent/tickets/{id1}/answer");
        let (who, text) = (who.to_string(), text.to_string());
        let s = &s;
        async move { s.post(&path, Some(&who), json!({"text": text})).await }
    };
    assert_error(answer(&bob, "我来答").await, 403, "forbidden").await;

    // Two answer at once (the agent and a supervisor): exactly one wins, the other gets 409.
    let (a, b) = tokio::join!(answer(&alice, "在“缴费记录”中申请电子发票。"), answer(&admin, "请到窗口开票。"));
    let (sa, sb) = (a.status().as_u16(), b.status().as_u16());
    assert!(matches!((sa, sb), (200, 409) | (409, 200)), "{sa} {sb}");
    let (won, lost) = if sa == 200 { (a, b) } else { (b, a) };
    let won = ok_json(won).await;
    assert_error(lost, 409, "ticket_state").await;
    let text = won["answer"]["text"].as_str().unwrap().to_string();
    assert_eq!(won["status"], "answered");
    assert_error(answer(&alice, "再答一次").await, 409, "ticket_state").await;

    // The patient's socket gets the answer, as a message-centre item and as the ticket's update.
    let related = format!("ticket:{id1}");
    let m = frame(&mut ws, "message", |p| p["related"] == related.as_str()).await;
    assert_eq!(m["body"], text.as_str());
    let t = frame(&mut ws, "ticket", |p| p["id"] == id1 && p["status"] != "open").await;
    assert_eq!((t["status"].as_str(), t["answer"]["text"].as_str()), (Some("answered"), Some(text.as_str())));
    let inbox = ok_json(s.get("/api/v1/me/messages", Some(&patient)).await).await;
    let item = inbox.as_array().unwrap().iter().find(|m| m["related"] == format!("ticket:{id1}"));
    assert_eq!(item.expect("in the message centre")["body"], text.as_str(), "{inbox}");

    // Only the patient reads or closes their ticket.
    assert_error(s.get(&format!("/api/v1/chat/tickets/{id1}"), Some(&other)).await, 404, "not_found").await;
    assert_error(s.post_empty(&format!("/api/v1/chat/tickets/{id1}/close"), Some(&other)).await, 404, "not_found")
        .await;
    let mine = ok_json(s.get("/api/v1/chat/tickets", Some(&patient)).await).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["answer"]["text"], text.as_str());
    let closed = ok_json(s.post_empty(&format!("/api/v1/chat/tickets/{id1}/close"), Some(&patient)).await).await;
    assert_eq!(closed["status"], "closed");

    // The other patient withdraws theirs unanswered: the desk has nothing left.
    let w = ok_json(s.post_empty(&format!("/api/v1/chat/tickets/{id2}/close"), Some(&other)).await).await;
    assert_eq!((w["status"].as_str(), w["answer"].clone()), (Some("closed"), Value::Null));
    assert_eq!(ok_json(s.get("/api/v1/chat/agent/tickets", Some(&alice)).await).await, json!([]));
    let r = s.post(&format!("/api/v1/chat/agent/tickets/{id2}/answer"), Some(&alice), json!({"text": "晚了"})).await;
    assert_error(r, 409, "ticket_state").await;

    // The answer and the reads are in the audit log, naming the patient's account.
    let page = ok_json(s.get("/api/v1/admin/audit?action=chat.ticket_answer&limit=50", Some(&admin)).await).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "every attempt: {page}");
    let won: Vec<&Value> = entries.iter().filter(|e| e["event"]["outcome"] == "success").collect();
    assert_eq!(won.len(), 1, "{page}");
    assert_eq!(won[0]["event"]["target"]["id"], id1);
    let me = ok_json(s.get("/api/v1/me", Some(&patient)).await).await;
    assert_eq!(won[0]["event"]["concerning"]["account"], me["id"], "{me}");
}
