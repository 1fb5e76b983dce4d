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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faq_by_pinyin_and_a_first_message_gets_a_suggestion_while_waiting() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, alice) = agent(&s, &admin, "alice", &["reports"], 4).await;
    let entry = |group: Option<&str>, q: &str, a: &str, k: &[&str]| json!({"group": group, "question": q, "answer": a, "keywords": k});
    let e =
        entry(Some("reports"), "检查报告什么时候能出来？", "一般检验 2 小时，影像 24 小时。", &["出报告", "取报告"]);
    assert_error(s.post("/api/v1/chat/faq", Some(&alice), e.clone()).await, 403, "forbidden").await;
    let created = crate::harness::expect_json(s.post("/api/v1/chat/faq", Some(&admin), e).await, 201).await;
    let id = created["id"].as_str().unwrap().to_string();
    let billing = entry(Some("billing"), "医保怎么结算？", "绑定医保电子凭证后自动结算。", &["报销"]);
    crate::harness::expect_json(s.post("/api/v1/chat/faq", Some(&admin), billing).await, 201).await;
    let bad = entry(Some("nope"), "q", "a", &[]);
    assert_error(s.post("/api/v1/chat/faq", Some(&admin), bad).await, 422, "invalid_field").await;

    // Search without signing in: pinyin initials, a Chinese fragment, within a group.
    let hits = ok_json(s.get("/api/v1/chat/faq?q=ybjs", None).await).await;
    assert_eq!(hits.as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(hits[0]["question"], "医保怎么结算？");
    let hits = ok_json(s.get("/api/v1/chat/faq?q=jcbg", None).await).await;
    assert_eq!(hits[0]["id"], id.as_str(), "{hits}");
    assert_eq!(ok_json(s.get("/api/v1/chat/faq?q=报销&group=reports", None).await).await, json!([]));
    assert_eq!(ok_json(s.get("/api/v1/chat/faq", None).await).await.as_array().unwrap().len(), 2);

    // Changed and searchable by its new keyword.
    let changed = entry(Some("reports"), "检查报告什么时候能出来？", "一般检验 2 小时。", &["出报告", "拿报告"]);
    let r = s.request(reqwest::Method::PUT, &format!("/api/v1/chat/faq/{id}"), Some(&admin), Some(changed)).await;
    assert_eq!(ok_json(r).await["answer"], "一般检验 2 小时。");
    assert_eq!(ok_json(s.get("/api/v1/chat/faq?q=拿报告", None).await).await[0]["id"], id.as_str());

    // A patient's first message while nobody is online: it waits, and is suggested the entry, on
    // its socket (a system message in the conversation) and from the conversation's FAQ.
    let patient = s.login(&phone(9310)).await;
    let mut ws = live(&s, &patient).await;
    let c = ok_json(
        s.post(
            "/api/v1/chat/conversations",
            Some(&patient),
            json!({"group": "reports", "text": "你好，我的报告什么时候能出来"}),
        )
        .await,
    )
    .await;
    assert_eq!(c["status"], "waiting");
    let cid = c["id"].as_str().unwrap();
    let notice = frame(&mut ws, "chat_message", |p| p["sender"]["kind"] == "system").await;
    let text = notice["body"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("检查报告什么时候能出来？"), "{notice}");
    let sug = ok_json(s.get(&format!("/api/v1/chat/conversations/{cid}/faq"), Some(&patient)).await).await;
    assert_eq!(sug[0]["id"], id.as_str(), "{sug}");
    let other = s.login(&phone(9311)).await;
    assert_error(s.get(&format!("/api/v1/chat/conversations/{cid}/faq"), Some(&other)).await, 404, "not_found").await;

    // Removed: no longer found.
    assert_eq!(s.delete(&format!("/api/v1/chat/faq/{id}"), Some(&admin)).await.status(), 204);
    assert_eq!(ok_json(s.get("/api/v1/chat/faq?q=jcbg", None).await).await, json!([]));
    assert_error(s.delete(&format!("/api/v1/chat/faq/{id}"), Some(&admin)).await, 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canned_replies_agents_manage_their_own_group_ones_need_the_admin_permission() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, alice) = agent(&s, &admin, "alice", &["booking"], 4).await;
    let (_, bob) = agent(&s, &admin, "bob", &["booking"], 4).await;
    let body = |t: &str, tpl: &str| json!({"title": t, "template": tpl});
    let expect = crate::harness::expect_json;

    let own = expect(
        s.post("/api/v1/chat/canned/mine", Some(&alice), body("我的问候", "{patient_name}您好，我是{agent_name}"))
            .await,
        201,
    )
    .await;
    let own_id = own["id"].as_str().unwrap().to_string();
    assert_eq!(own["scope"], json!({"kind": "agent", "agent": own["scope"]["agent"].clone()}));
    assert_error(s.post("/api/v1/chat/canned/mine", Some(&alice), body("两\n行", "x")).await, 422, "invalid_field")
        .await;
    // Another agent neither sees nor changes it.
    assert_eq!(ok_json(s.get("/api/v1/chat/canned/mine", Some(&bob)).await).await, json!([]));
    let r = s
        .request(reqwest::Method::PUT, &format!("/api/v1/chat/canned/{own_id}"), Some(&bob), Some(body("x", "y")))
        .await;
    assert_error(r, 404, "not_found").await;
    assert_error(s.delete(&format!("/api/v1/chat/canned/{own_id}"), Some(&bob)).await, 404, "not_found").await;

    // Group replies: an agent reads them, only chat.admin adds or changes one.
    let r = s.post("/api/v1/chat/canned/groups/booking", Some(&alice), body("排队", "{group}目前排队较多")).await;
    assert_error(r, 403, "forbidden").await;
    let shared = expect(
        s.post("/api/v1/chat/canned/groups/booking", Some(&admin), body("排队", "{group}目前排队较多")).await,
        201,
    )
    .await;
    let shared_id = shared["id"].as_str().unwrap().to_string();
    let group = ok_json(s.get("/api/v1/chat/canned/groups/booking", Some(&alice)).await).await;
    assert_eq!(group.as_array().unwrap().len(), 4, "the seeded three and the new one: {group}");
    let r = s
        .request(reqwest::Method::PUT, &format!("/api/v1/chat/canned/{shared_id}"), Some(&alice), Some(body("x", "y")))
        .await;
    assert_error(r, 403, "forbidden").await;
    assert_error(s.get("/api/v1/chat/canned/groups/billing", Some(&alice)).await, 403, "forbidden").await;

    // In a conversation alice serves, both are filled in for it, her own first.
    let _console = crate::chat::console(&s, &alice, "online").await;
    let patient = s.login(&phone(9320)).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "booking", "text": "你好"})).await,
    )
    .await;
    assert_eq!(c["status"], "assigned");
    let cid = c["id"].as_str().unwrap();
    let list = ok_json(s.get(&format!("/api/v1/chat/agent/conversations/{cid}/canned"), Some(&alice)).await).await;
    assert_eq!(list[0]["id"], own_id.as_str());
    assert_eq!(list[0]["text"], "患者您好，我是客服alice");
    let queue = list.as_array().unwrap().iter().find(|r| r["id"] == shared_id.as_str()).expect("the group's");
    assert_eq!(queue["text"], "预约咨询目前排队较多");

    // Changed and removed by its owner.
    let r = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/chat/canned/{own_id}"),
            Some(&alice),
            Some(body("问候", "您好")),
        )
        .await;
    assert_eq!(ok_json(r).await["template"], "您好");
    assert_eq!(s.delete(&format!("/api/v1/chat/canned/{own_id}"), Some(&alice)).await.status(), 204);
    assert_eq!(ok_json(s.get("/api/v1/chat/canned/mine", Some(&alice)).await).await, json!([]));
}

/// The number of audit entries of one staff member.
async fn audit_count(s: &TestServer, admin: &str, staff: &str) -> usize {
    let page = ok_json(s.get(&format!("/api/v1/admin/audit?staff={staff}&limit=500"), Some(admin)).await).await;
    page["entries"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_supervisor_sees_every_group_and_takes_a_conversation_over() {
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let role = json!({"label": "客服主管", "permissions": ["chat.agent", "chat.supervise"]});
    let r = s.request(reqwest::Method::PUT, "/api/v1/admin/roles/chat_lead", Some(&admin), Some(role)).await;
    crate::harness::expect_json(r, 201).await;
    let (alice_id, alice) = agent(&s, &admin, "alice", &["booking"], 4).await;
    let mut alice_ws = crate::chat::console(&s, &alice, "online").await;
    let lead = json!({"username": "lead", "name": "主管老李", "password": "lead-pass-2026", "roles": ["chat_lead"]});
    let lead_id =
        ok_json(s.post("/api/v1/admin/staff", Some(&admin), lead).await).await["id"].as_str().unwrap().to_string();
    let r = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/chat/agents/{lead_id}"),
            Some(&admin),
            Some(json!({"groups": ["booking"]})),
        )
        .await;
    ok_json(r).await;
    let lead = s.staff_login("lead", "lead-pass-2026").await;

    // Alice serves a patient; the lead comes online after.
    let patient = s.login(&phone(9330)).await;
    let mut ws = live(&s, &patient).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&patient), json!({"group": "booking", "text": "改约"})).await,
    )
    .await;
    assert_eq!(c["agent"]["id"], alice_id.as_str());
    let cid = c["id"].as_str().unwrap().to_string();
    let _lead_ws = crate::chat::console(&s, &lead, "online").await;
    // A supervisor who is not an administrator reads the patient's context of a conversation
    // they do not serve (`chat.supervise`, not a role name, decides).
    ok_json(s.get(&format!("/api/v1/chat/agent/conversations/{cid}/context"), Some(&lead)).await).await;

    // Every group at a glance; agents are refused. Polling it writes no audit entry; reading a
    // patient's conversation does.
    assert_error(s.get("/api/v1/chat/supervise/groups", Some(&alice)).await, 403, "forbidden").await;
    let before = audit_count(&s, &admin, &lead_id).await;
    let mut all = Value::Null;
    for _ in 0..3 {
        all = ok_json(s.get("/api/v1/chat/supervise/groups", Some(&lead)).await).await;
        ok_json(s.get("/api/v1/chat/agent/desk", Some(&lead)).await).await;
    }
    assert_eq!(audit_count(&s, &admin, &lead_id).await, before, "routine desk reads are not audited");
    let codes: Vec<&str> = all.as_array().unwrap().iter().map(|g| g["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["billing", "booking", "reports"]);
    let booking = all.as_array().unwrap().iter().find(|g| g["code"] == "booking").unwrap();
    assert_eq!(booking["conversations"][0]["id"], cid.as_str(), "{booking}");
    assert_eq!(booking["presence"]["agents"].as_array().map(Vec::len), Some(2), "{booking}");
    ok_json(s.get(&format!("/api/v1/chat/agent/conversations/{cid}/messages"), Some(&lead)).await).await;
    assert_eq!(audit_count(&s, &admin, &lead_id).await, before + 1, "the read of the conversation is");

    // Take-over: the patient is told the new agent's name, alice's console that it left her.
    let taken =
        ok_json(s.post_empty(&format!("/api/v1/chat/supervise/conversations/{cid}/take-over"), Some(&lead)).await)
            .await;
    assert_eq!(taken["agent"]["id"], lead_id.as_str(), "{taken}");
    let moved = frame(&mut ws, "conversation", |p| p["agent"]["id"] == lead_id.as_str()).await;
    assert_eq!(moved["agent"]["name"], "主管老李");
    let notice = frame(&mut ws, "chat_message", |p| p["sender"]["kind"] == "system").await;
    assert!(notice["body"]["text"].as_str().unwrap().contains("主管老李"), "{notice}");
    loop {
        let v = alice_ws.next_of("assignment").await;
        if v["payload"]["id"] == cid.as_str() && v["payload"]["agent"]["id"] == lead_id.as_str() {
            break;
        }
    }
    let r = s
        .post(&format!("/api/v1/chat/agent/conversations/{cid}/messages"), Some(&alice), json!({"text": "还在吗"}))
        .await;
    assert_error(r, 403, "forbidden").await;
    ok_json(
        s.post(&format!("/api/v1/chat/agent/conversations/{cid}/messages"), Some(&lead), json!({"text": "我来处理"}))
            .await,
    )
    .await;
    let r = s.post_empty(&format!("/api/v1/chat/supervise/conversations/{cid}/take-over"), Some(&lead)).await;
    assert_error(r, 409, "same_target").await;
    let audit = ok_json(s.get("/api/v1/admin/audit?action=chat.take_over&limit=10", Some(&admin)).await).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
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

/// In real Chromium: a supervisor who is also an agent logs in to the console, answers a message
/// left outside service hours from the 留言 tab (the patient's message centre has it), then
/// takes a conversation over from another agent in the 主管视图. Screenshots:
/// `console-tickets.png`, `console-supervise.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_in_chromium_answers_a_ticket_and_a_supervisor_takes_over() {
    use crate::browser::Browser;
    let s = TestServer::start(Opts::new()).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let role = json!({"label": "客服主管", "permissions": ["chat.agent", "chat.supervise"]});
    let r = s.request(reqwest::Method::PUT, "/api/v1/admin/roles/chat_lead", Some(&admin), Some(role)).await;
    crate::harness::expect_json(r, 201).await;
    let lead = json!({"username": "lead", "name": "主管老李", "password": "lead-pass-2026", "roles": ["chat_lead"]});
    let lead_id =
        ok_json(s.post("/api/v1/admin/staff", Some(&admin), lead).await).await["id"].as_str().unwrap().to_string();
    let r = s
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/chat/agents/{lead_id}"),
            Some(&admin),
            Some(json!({"groups": ["billing", "booking"]})),
        )
        .await;
    ok_json(r).await;
    let (_, alice) = agent(&s, &admin, "alice", &["booking"], 4).await;
    let _alice_ws = crate::chat::console(&s, &alice, "online").await;

    // Billing is closed; a patient leaves a message. Another is with alice in booking.
    let closed = json!({"hours": {}});
    ok_json(s.request(reqwest::Method::PUT, "/api/v1/chat/groups/billing/hours", Some(&admin), Some(closed)).await)
        .await;
    let patient = s.login(&phone(9340)).await;
    ok_json(s.request(reqwest::Method::PATCH, "/api/v1/me", Some(&patient), Some(json!({"name": "韩梅梅"}))).await)
        .await;
    let markup = "发票怎么开？<img src=x onerror=alert(1)>";
    ok_json(s.post("/api/v1/chat/tickets", Some(&patient), json!({"group": "billing", "text": markup})).await).await;
    let other = s.login(&phone(9341)).await;
    ok_json(s.request(reqwest::Method::PATCH, "/api/v1/me", Some(&other), Some(json!({"name": "李雷"}))).await).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&other), json!({"group": "booking", "text": "我想改约到周五"})).await,
    )
    .await;
    assert_eq!(c["agent"]["name"], "客服alice");

    let b = Browser::start().await;
    b.sign_in(&s.url("/console"), "lead", "lead-pass-2026").await;
    b.wait_text("已连接").await;
    b.wait_text("1条待答复").await;
    b.wait_text(markup).await;
    click(&b, ".tickets .item").await;
    b.fill(".ticket-view textarea", "在“缴费记录”中申请电子发票即可。").await;
    click(&b, ".ticket-view .answer").await;
    b.wait_text("已答复").await;
    b.wait_text("暂无留言").await;
    let imgs = b.client.find_all(fantoccini::Locator::Css(".ticket-view img")).await.unwrap();
    assert!(imgs.is_empty(), "a patient's markup never becomes an element");
    let shot = b.screenshot("console-tickets").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    let inbox = ok_json(s.get("/api/v1/me/messages", Some(&patient)).await).await;
    assert_eq!(inbox[0]["body"], "在“缴费记录”中申请电子发票即可。", "{inbox}");

    // The supervisor's view shows alice's conversation; 接管 makes it the lead's, opened.
    b.wait_text("主管视图").await;
    b.wait_text("· 客服alice").await;
    click(&b, ".supervise .take-over").await;
    b.wait_text("李*").await;
    click(&b, ".inbox .item").await;
    b.wait_text("我想改约到周五").await;
    b.wait_text("主管老李（客服主管）已接管您的会话").await;
    let desk =
        ok_json(s.get("/api/v1/chat/agent/desk", Some(&s.staff_login("lead", "lead-pass-2026").await)).await).await;
    assert_eq!(desk["conversations"][0]["id"], c["id"], "{desk}");
    let shot = b.screenshot("console-supervise").await;
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // A staff announcement reaches the agents' console live, as a banner under its top bar.
    assert_eq!(b.find("#staff-news").await.text().await.unwrap(), "", "nothing announced yet");
    let at = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let body = json!({ "title": "今晚系统升级", "body": "22:00-23:00 挂号系统升级，请提前告知患者。",
        "audience": { "kind": "staff" }, "publish_at": at });
    crate::harness::expect_json(s.post("/api/v1/admin/announcements", Some(&admin), body).await, 201).await;
    b.wait_text("员工公告：今晚系统升级").await;
    b.screenshot("console-staff-announcement").await;
    click(&b, "#dismiss-news").await;
    assert_eq!(b.find("#staff-news").await.text().await.unwrap(), "", "dismissed");
    let _ = b.client.clone().close().await;
}
