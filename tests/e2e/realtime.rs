//! The WebSocket gateway with real clients (tokio-tungstenite): live availability in JSON and in
//! MessagePack, exact resume, two server processes sharing one Redis, a client that never reads,
//! and bad frames. See docs/realtime.md for the protocol these tests hold the server to.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::{ok_json, rss_kib, Opts, RedisServer, TestServer};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Enc {
    Json,
    MsgPack,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub(crate) enum End {
    Close(u16),
    Dropped,
}

pub(crate) struct Ws<S = MaybeTlsStream<tokio::net::TcpStream>> {
    pub(crate) stream: WebSocketStream<S>,
    pub(crate) enc: Enc,
}

pub(crate) fn ws_url(server: &TestServer) -> String {
    server.base.replace("http://", "ws://") + "/ws"
}

pub(crate) fn request(
    server: &TestServer,
    token: Option<&str>,
    enc: Enc,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = ws_url(server).into_client_request().expect("ws request");
    let proto = if enc == Enc::Json { "hospital.json.v1" } else { "hospital.msgpack.v1" };
    req.headers_mut().insert("sec-websocket-protocol", proto.parse().unwrap());
    if let Some(t) = token {
        req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

impl Ws {
    pub(crate) async fn connect(server: &TestServer, token: Option<&str>, enc: Enc) -> Ws {
        let (stream, resp) = tokio_tungstenite::connect_async(request(server, token, enc)).await.expect("ws connect");
        let proto =
            resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert_eq!(
            proto,
            if enc == Enc::Json { "hospital.json.v1" } else { "hospital.msgpack.v1" },
            "subprotocol chosen"
        );
        Ws { stream, enc }
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Ws<S> {
    pub(crate) async fn send(&mut self, v: Value) {
        let m = match self.enc {
            Enc::Json => Message::text(v.to_string()),
            Enc::MsgPack => Message::binary(rmp_serde::to_vec_named(&v).unwrap()),
        };
        self.stream.send(m).await.expect("ws send");
    }

    pub(crate) async fn send_raw(&mut self, m: Message) -> bool {
        self.stream.send(m).await.is_ok()
    }

    /// The next data frame as JSON; Err with how the connection ended.
    pub(crate) async fn next(&mut self) -> Result<Value, End> {
        tokio::time::timeout(Duration::from_secs(15), self.next_quiet()).await.expect("a frame within 15 s")
    }

    /// The next data frame as JSON, however long it takes; Err with how the connection ended.
    pub(crate) async fn next_quiet(&mut self) -> Result<Value, End> {
        loop {
            let m = self.stream.next().await;
            match m {
                Some(Ok(Message::Text(t))) => {
                    assert_eq!(self.enc, Enc::Json, "JSON sockets get text frames");
                    return Ok(serde_json::from_str(&t).expect("JSON frame"));
                }
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(self.enc, Enc::MsgPack, "MessagePack sockets get binary frames");
                    return Ok(rmp_serde::from_slice(&b).expect("MessagePack frame"));
                }
                Some(Ok(Message::Close(f))) => return Err(End::Close(f.map(|f| u16::from(f.code)).unwrap_or(1005))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(End::Dropped),
            }
        }
    }

    /// The next frame of `kind`, skipping others.
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await.unwrap_or_else(|e| panic!("ended ({e:?}) waiting for {kind}"));
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Reads until the connection ends; how it ended.
    pub(crate) async fn until_end(&mut self) -> End {
        loop {
            match self.next().await {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    }
}

/// A logged-in account with one patient; (token, patient id).
pub(crate) async fn patient(server: &TestServer, phone: &str, id_card: &str) -> (String, String) {
    let token = server.login(phone).await;
    let p = ok_json(
        server
            .post(
                "/api/v1/me/patients",
                Some(&token),
                json!({"name": "测试", "id_card_no": id_card, "relation": "self"}),
            )
            .await,
    )
    .await;
    (token, p["id"].as_str().unwrap().to_string())
}

/// 王建国's id and the first released slot still open with places left: (doctor, slot id, session id, segment, remaining).
pub(crate) async fn open_slot(server: &TestServer) -> (String, String, String, usize, u64) {
    let doctor = server.get_json("/api/v1/doctors?q=wjg", None).await[0]["id"].as_str().unwrap().to_string();
    let sched = server.get_json(&format!("/api/v1/doctors/{doctor}/schedule"), None).await;
    for s in sched["sessions"].as_array().unwrap() {
        if s["released"] != true || s["status"] != "open" {
            continue;
        }
        for (i, sl) in s["slots"].as_array().unwrap().iter().enumerate() {
            let rem = sl["remaining"].as_u64().unwrap();
            if rem > 0 && sl["closed"] != true {
                return (
                    doctor,
                    sl["slot_id"].as_str().unwrap().into(),
                    s["session_id"].as_str().unwrap().into(),
                    i,
                    rem,
                );
            }
        }
    }
    panic!("no open slot");
}

async fn availability_case(enc: Enc) {
    let server = TestServer::start(Opts::new()).await;
    let watcher = server.login("13900000001").await;
    let (booker, pid) = patient(&server, "13900000002", "11010519491231002X").await;
    let (doctor, slot, session, segment, before) = open_slot(&server).await;

    let mut ws = Ws::connect(&server, Some(&watcher), enc).await;
    let welcome = ws.next_of("welcome").await;
    assert!(welcome["payload"]["seq"].is_u64(), "{welcome}");
    ws.send(json!({"type": "subscribe", "id": "s1", "payload": {"topics": [format!("doctor:{doctor}")]}})).await;
    let sub = ws.next_of("subscribed").await;
    assert_eq!(sub["id"], "s1");

    let r = server.post("/api/v1/appointments", Some(&booker), json!({"slot_id": slot, "patient_id": pid})).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let update = loop {
        let u = ws.next_of("availability").await;
        if u["payload"]["data"]["session_id"] == session.as_str() {
            break u;
        }
    };
    assert_eq!(update["payload"]["topic"], format!("doctor:{doctor}"));
    assert!(update.get("seq").is_none() || update["seq"].is_null(), "topic updates carry no seq: {update}");
    let now = update["payload"]["data"]["remaining"][segment].as_u64().unwrap();
    assert_eq!(now, before - 1, "the watcher sees the place taken: {update}");

    // The update was counted and its delivery time observed (handles kept after the first). The
    // server counts a frame once its write returns, which may be just after the client read it.
    let wanted = ["ws_frames_out_total{type=\"availability\"}", "ws_fanout_latency_seconds_count"];
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let counted = |prefix: &str| {
            metrics
                .lines()
                .find(|l| l.starts_with(prefix))
                .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .is_some_and(|v| v >= 1.0)
        };
        if wanted.iter().all(|w| counted(w)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{wanted:?} not both counted in /metrics:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_live_json() {
    availability_case(Enc::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_live_msgpack() {
    availability_case(Enc::MsgPack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_events() {
    let server = TestServer::start(Opts::new()).await;
    let token = server.login("13900000011").await;
    let mut ws = Ws::connect(&server, Some(&token), Enc::Json).await;
    let start = ws.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();
    ws.stream.close(None).await.unwrap();
    drop(ws);

    for i in 0..20 {
        let r = server.patch("/api/v1/me", Some(&token), json!({"name": format!("改名{i:02}")})).await;
        assert_eq!(r.status(), 200);
    }

    // Auth by first frame this time (what a browser must do), resuming in the same frame.
    let mut ws = Ws::connect(&server, None, Enc::Json).await;
    ws.send(json!({"type": "auth", "payload": {"token": token, "last_seq": start}})).await;
    // Events are numbered just after each change is answered, so a few may still be on their
    // way: those arrive live after the replay, continuing the sequence, never twice.
    let head = ws.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();
    assert!(head > start && head <= start + 20, "head {head} after {start}");
    let mut got = Vec::new();
    let mut resumed = false;
    while got.len() < 20 {
        let f = ws.next().await.expect("frames");
        if f["type"] == "resumed" {
            resumed = true;
            continue;
        }
        assert_eq!(f["type"], "profile", "only the missed events: {f}");
        got.push(f);
    }
    if !resumed {
        // Everything came from the log: the `resumed` frame follows the last of them.
        assert_eq!(ws.next().await.unwrap()["type"], "resumed");
    }
    let seqs: Vec<u64> = got.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (start + 1..=start + 20).collect::<Vec<_>>(), "exactly those 20, in order");
    let names: Vec<String> =
        got.iter().map(|f| f["payload"]["profile"]["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, (0..20).map(|i| format!("改名{i:02}")).collect::<Vec<_>>());

    // Live delivery continues after the replay, with the next number, once.
    server.patch("/api/v1/me", Some(&token), json!({"name": "直播"})).await;
    let live = ws.next_of("profile").await;
    assert_eq!(live["seq"], start + 21);
    ws.send(json!({"type": "ping", "id": "p"})).await;
    let pong = ws.next().await.unwrap();
    assert_eq!(pong["type"], "pong", "nothing doubled before the pong: {pong}");

    // A second client resumes from the middle (the resume frame, this time) and gets just the tail.
    let mut ws2 = Ws::connect(&server, Some(&token), Enc::MsgPack).await;
    ws2.next_of("welcome").await;
    ws2.send(json!({"type": "resume", "payload": {"last_seq": start + 15}})).await;
    let mut tail = Vec::new();
    loop {
        let f = ws2.next().await.unwrap();
        if f["type"] == "resumed" {
            break;
        }
        tail.push(f["seq"].as_u64().unwrap());
    }
    assert_eq!(tail, (start + 16..=start + 21).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_events_through_redis() {
    let redis = RedisServer::start();
    let mut o1 = Opts::new();
    o1.redis_url = Some(redis.url());
    let mut o2 = Opts::new();
    o2.redis_url = Some(redis.url());
    let node1 = TestServer::start(o1).await;
    let node2 = TestServer::start(o2).await;

    // Sessions live in Redis: a token from node 1 opens a socket on node 2.
    let token = node1.login("13900000021").await;
    let mut ws = Ws::connect(&node2, Some(&token), Enc::Json).await;
    let seq0 = ws.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();

    // An event produced on node 1 reaches the socket on node 2.
    let r = node1.patch("/api/v1/me", Some(&token), json!({"name": "跨节点"})).await;
    assert_eq!(r.status(), 200);
    let ev = ws.next_of("profile").await;
    assert_eq!(ev["payload"]["profile"]["name"], "跨节点");
    assert_eq!(ev["seq"], seq0 + 1, "numbered once, cluster-wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_bounded_and_closed() {
    let server = TestServer::start(
        Opts::new()
            .env("HOSPITAL_SOCKET_SEND_BUFFER_BYTES", 8192)
            .env("HOSPITAL_GATEWAY__REALTIME__OUTBOX", 16)
            .env("HOSPITAL_GATEWAY__REALTIME__WRITE_TIMEOUT_SECS", 2)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 100000)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 100000),
    )
    .await;
    let slow_token = server.login("13900000031").await;
    let fast_token = server.login("13900000032").await;

    // The slow client: a tiny receive buffer, and it never reads.
    let addr: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(sock.into()).unwrap();
    let (stream, _) =
        tokio_tungstenite::client_async(request(&server, Some(&slow_token), Enc::Json), tcp).await.unwrap();
    let mut slow = Ws { stream, enc: Enc::Json };

    let mut fast = Ws::connect(&server, Some(&fast_token), Enc::Json).await;
    let fast0 = fast.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();
    let rss_before = rss_kib(server.pid());

    // Flood the slow account with events while the fast one gets its own.
    let long = "慢".repeat(30);
    let mut fast_seen = Vec::new();
    for i in 0..600u32 {
        server.patch("/api/v1/me", Some(&slow_token), json!({"name": long})).await;
        if i % 20 == 0 {
            server.patch("/api/v1/me", Some(&fast_token), json!({"name": format!("快{i}")})).await;
            fast_seen.push(fast.next_of("profile").await["seq"].as_u64().unwrap());
        }
    }
    // The fast client got every one of its events, in order, while the other one stalled.
    assert_eq!(fast_seen, (fast0 + 1..=fast0 + 30).collect::<Vec<_>>());
    let rss_after = rss_kib(server.pid());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "server memory stays bounded with a stalled reader: {rss_before} KiB -> {rss_after} KiB"
    );

    // Now the slow client reads: its connection was ended by the server (4008, or dropped if even
    // the close frame could not be delivered), and the server counted it.
    let end = slow.until_end().await;
    assert!(matches!(end, End::Close(4008) | End::Dropped), "ended as too slow: {end:?}");
    let metrics = server.client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("ws_drops_total") && l.contains("too_slow")), "drop counted");
    // It can come back and resume: nothing was lost. (Events are numbered just after each change
    // is answered; wait for the last ones to be logged.)
    let mut again = Ws::connect(&server, Some(&slow_token), Enc::Json).await;
    let mut head = again.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();
    for _ in 0..100 {
        if head == 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        again = Ws::connect(&server, Some(&slow_token), Enc::Json).await;
        head = again.next_of("welcome").await["payload"]["seq"].as_u64().unwrap();
    }
    assert_eq!(head, 600, "every event of the slow account is in its log");
    again.send(json!({"type": "resume", "payload": {"last_seq": 590}})).await;
    let mut tail = Vec::new();
    while tail.last() != Some(&600) {
        tail.push(again.next_of("profile").await["seq"].as_u64().unwrap());
    }
    assert_eq!(tail, (591..=600).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_errors_and_the_server_goes_on() {
    let server = TestServer::start(Opts::new()).await;
    let token = server.login("13900000041").await;

    // A forged token: refused with 4001 after an error frame.
    let mut ws = Ws::connect(&server, Some("hsp_forged"), Enc::Json).await;
    let e = ws.next().await.unwrap();
    assert_eq!(e["payload"]["code"], "unauthorized");
    assert_eq!(ws.until_end().await, End::Close(4001));

    let mut ws = Ws::connect(&server, Some(&token), Enc::Json).await;
    ws.next_of("welcome").await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::binary(vec![0xde, 0xad, 0xbe, 0xef]), "malformed_frame"),
        (Message::text("{{not json"), "malformed_frame"),
        (Message::text(r#"{"type":"teleport","payload":{}}"#), "unknown_type"),
        (Message::text(r#"{"type":"resume","payload":{"last_seq":"x"}}"#), "bad_payload"),
        (Message::text(r#"{"type":"subscribe","payload":{"topics":["patient:someone-else"]}}"#), "bad_payload"),
        (Message::text(r#"{"type":42}"#), "malformed_frame"),
    ];
    for (m, code) in cases {
        assert!(ws.send_raw(m).await);
        let e = ws.next_of("error").await;
        assert_eq!(e["payload"]["code"], code, "{e}");
    }
    // Still serving this socket.
    ws.send(json!({"type": "ping", "id": "alive"})).await;
    assert_eq!(ws.next_of("pong").await["id"], "alive");
    // An oversized frame: closed with 1009.
    ws.send_raw(Message::text("x".repeat(64 * 1024))).await;
    assert!(matches!(ws.until_end().await, End::Close(1009) | End::Dropped));

    // A flood: rate-limit errors, then 4029.
    let mut ws = Ws::connect(&server, Some(&token), Enc::MsgPack).await;
    ws.next_of("welcome").await;
    for _ in 0..200 {
        if !ws.send_raw(Message::binary(rmp_serde::to_vec_named(&json!({"type": "ping"})).unwrap())).await {
            break;
        }
    }
    let mut limited = 0;
    let end = loop {
        match ws.next().await {
            Ok(f) if f["type"] == "error" && f["payload"]["code"] == "rate_limited" => limited += 1,
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    assert!(limited > 0, "rate-limit errors before the close");
    assert_eq!(end, End::Close(4029));

    // The server goes on: HTTP and new sockets work.
    assert_eq!(server.get("/healthz", None).await.status(), 200);
    let mut ws = Ws::connect(&server, Some(&token), Enc::Json).await;
    assert_eq!(ws.next().await.unwrap()["type"], "welcome");
    // Not a WebSocket request: the API's own error shape.
    let r = server.get("/ws", None).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}
