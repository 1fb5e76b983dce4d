//! The live side's promises, held against the real binary with real WebSocket clients written
//! from docs/realtime.md: no personal event lost across kill -9 (the outbox), numbers without
//! holes, the unread count always the latest, logout closing sockets at once on every node, the
//! RFC 6455 close codes for broken clients, and a never-reading client closed (and resuming)
//! under the default settings.

use futures::stream::{self, StreamExt};
use futures::SinkExt;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::booking_flow::{ahead, booking_opts, create_session, doctors, pay, person, staff, Person};
use crate::harness::{expect_json, ok_json, phone, rss_kib, RedisServer, TestServer};
use crate::realtime::{patient, Enc, End, Ws};

/// A client as the guide describes one: it keeps the last sequence number it processed,
/// acknowledges, reconnects with `?last_seq=`, and checks that numbers never skip.
struct Follower {
    ws: Ws,
    last_seq: u64,
    /// The last number acknowledged to the server.
    acked: u64,
    /// Personal events processed, in order.
    events: Vec<Value>,
    reloads: usize,
}

impl Follower {
    async fn connect(s: &TestServer, token: &str, last_seq: Option<u64>) -> Follower {
        let mut req = crate::realtime::request(s, Some(token), Enc::Json);
        if let Some(n) = last_seq {
            *req.uri_mut() = format!("{}?last_seq={n}", crate::realtime::ws_url(s)).parse().unwrap();
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await.expect("ws connect");
        let mut f =
            Follower { ws: Ws { stream, enc: Enc::Json }, last_seq: 0, acked: 0, events: Vec::new(), reloads: 0 };
        let welcome = f.ws.next_of("welcome").await;
        f.last_seq = last_seq.unwrap_or_else(|| welcome["payload"]["seq"].as_u64().expect("welcome seq"));
        f.acked = f.last_seq;
        f
    }

    /// Processes one frame: a personal event must be the next number (or the client was told to
    /// reload). Returns the frame.
    fn take(&mut self, v: &Value) {
        if v["type"] == "reload" {
            self.reloads += 1;
            self.last_seq = v["payload"]["seq"].as_u64().expect("reload seq");
        } else if let Some(seq) = v["seq"].as_u64() {
            assert_eq!(seq, self.last_seq + 1, "numbers never skip: after {} came {v}", self.last_seq);
            self.last_seq = seq;
            self.events.push(v.clone());
        }
    }

    /// Acknowledges what was processed, as the guide asks: in batches (an `ack` counts against
    /// the frame rate limit like any frame), and before going quiet.
    async fn ack(&mut self, force: bool) {
        if self.last_seq > self.acked && (force || self.last_seq - self.acked >= 50) {
            self.ws.send(json!({"type": "ack", "payload": {"seq": self.last_seq}})).await;
            self.acked = self.last_seq;
        }
    }

    /// Reads frames until `done` holds for what was processed, acknowledging as it goes.
    async fn until(&mut self, what: &str, limit: Duration, done: impl Fn(&Follower) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{what}: not within {limit:?}; processed {:?}", self.events);
            let next = tokio::time::timeout(left.min(Duration::from_secs(1)), self.ws.next_quiet()).await;
            match next {
                Ok(Ok(v)) => {
                    self.take(&v);
                    self.ack(false).await;
                }
                Ok(Err(e)) => panic!("{what}: the socket ended ({e:?}); processed {:?}", self.events),
                Err(_) => continue,
            }
        }
        self.ack(true).await;
    }

    fn has_appointment(&self, id: &str) -> bool {
        self.events.iter().any(|e| e["type"] == "appointment" && e["payload"]["id"] == id)
    }
}

fn live_opts() -> crate::harness::Opts {
    booking_opts().env("HOSPITAL_ACTORS__WEEKLY_CAP", 1000)
}

/// Books `slot` for every person at once; the acknowledged appointment ids by person index.
async fn storm(s: &TestServer, people: &[Person], slot: &str) -> HashMap<usize, String> {
    let acked = Arc::new(AtomicUsize::new(0));
    let answers: Vec<(usize, u16, Value)> = stream::iter(people.iter().enumerate())
        .map(|(i, p)| {
            let acked = acked.clone();
            async move {
                let r = s
                    .post("/api/v1/appointments", Some(&p.token), json!({"slot_id": slot, "patient_id": p.patient_id}))
                    .await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if status == 201 {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                (i, status, body)
            }
        })
        .buffer_unordered(people.len())
        .collect()
        .await;
    answers
        .into_iter()
        .filter(|(_, status, _)| *status == 201)
        .map(|(i, _, b)| (i, b["appointment"]["id"].as_str().expect("appointment id").to_string()))
        .collect()
}

/// Defect 1 of the issue: an event of an acknowledged booking must survive a kill -9 at once
/// after the answer. 60 patients book at the same moment; the server is killed as soon as the
/// last answer is in; after a restart every patient, reconnecting with `last_seq=0`, gets the
/// event of their booking, numbered from 1 without a hole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_right_after_the_answers_loses_no_event() {
    let s = TestServer::start(live_opts()).await;
    let admin = staff(&s).await;
    let doctor = doctors(&s).await.remove(0);
    let (_, slots) = create_session(&s, &admin, &doctor, ahead(20), 60, 60, None).await;
    let people: Vec<Person> =
        stream::iter(0..60u32).map(|i| person(&s, 40_000 + i)).buffered(8).collect::<Vec<_>>().await;
    let acked = storm(&s, &people, &slots[0]).await;
    assert_eq!(acked.len(), 60, "everyone gets a place");
    // At once: whatever the server still had to do after answering is cut short.
    let dir = s.kill_9();
    let s = TestServer::start(live_opts().data_dir(dir)).await;
    for (i, id) in &acked {
        let mut f = Follower::connect(&s, &people[*i].token, Some(0)).await;
        f.until(&format!("patient {i}'s booking event"), Duration::from_secs(15), |f| f.has_appointment(id)).await;
        assert_eq!(f.reloads, 0, "nothing is past the log here");
        assert_eq!(f.events[0]["seq"], 1, "the account's first event is number 1: {:?}", f.events);
    }
}

/// The kill -9 test with sockets open: 20 rounds, each a booking storm with every patient's
/// socket open, killed at a different moment; after each restart every patient reconnects with
/// the last number it processed and must get the event of every booking it was answered 201
/// for, with no number skipped (or a `reload`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_during_storms_with_sockets_open_lose_no_event() {
    const PATIENTS: u32 = 30;
    const ROUNDS: usize = 20;
    let mut s = TestServer::start(live_opts()).await;
    let admin = staff(&s).await;
    let doctor = doctors(&s).await.remove(1);
    // One session per round (one booking per person per department per day), 20 places each.
    let mut slots = Vec::new();
    for r in 0..ROUNDS {
        let (_, sl) = create_session(&s, &admin, &doctor, ahead(15 + r as i64), 60, 20, None).await;
        slots.push(sl[0].clone());
    }
    let people: Vec<Person> =
        stream::iter(0..PATIENTS).map(|i| person(&s, 41_000 + i)).buffered(8).collect::<Vec<_>>().await;
    let mut last_seq: Vec<u64> = vec![0; people.len()];
    let mut owed: Vec<Vec<String>> = vec![Vec::new(); people.len()];
    let mut reloads = 0;
    let (mut acked_total, mut owed_after_kill) = (0, 0);
    for (round, slot) in slots.iter().enumerate() {
        // Every patient's socket is open during the storm (and reading: events arrive live).
        let mut followers = Vec::new();
        for (i, p) in people.iter().enumerate() {
            followers.push(Follower::connect(&s, &p.token, Some(last_seq[i])).await);
        }
        let readers: Vec<_> = followers
            .into_iter()
            .map(|mut f| {
                tokio::spawn(async move {
                    // Read what comes until the server dies under us.
                    while let Ok(Ok(v)) = tokio::time::timeout(Duration::from_secs(30), f.ws.next_quiet()).await {
                        f.take(&v);
                    }
                    let seen: HashSet<String> = f
                        .events
                        .iter()
                        .filter(|e| e["type"] == "appointment")
                        .filter_map(|e| e["payload"]["id"].as_str().map(str::to_string))
                        .collect();
                    (f.last_seq, seen)
                })
            })
            .collect();
        // Kill at a different moment each round: once 1, 2, 3, ... bookings were answered.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let answered = Arc::new(AtomicUsize::new(0));
        let booking: Vec<_> = people
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let req = client
                    .post(format!("{}/api/v1/appointments", s.base))
                    .bearer_auth(&p.token)
                    .json(&json!({"slot_id": slot, "patient_id": p.patient_id}));
                let answered = answered.clone();
                tokio::spawn(async move {
                    let id = match req.send().await {
                        Ok(r) if r.status() == 201 => r
                            .json::<Value>()
                            .await
                            .ok()
                            .and_then(|b| b["appointment"]["id"].as_str().map(str::to_string)),
                        _ => None,
                    };
                    if id.is_some() {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    (i, id)
                })
            })
            .collect();
        let kill_after = round + 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        while answered.load(Ordering::SeqCst) < kill_after && !booking.iter().all(|t| t.is_finished()) {
            assert!(Instant::now() < deadline, "round {round}: no {kill_after} answers within 20 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let dir = s.kill_9();
        for t in booking {
            if let (i, Some(id)) = t.await.unwrap() {
                owed[i].push(id);
                acked_total += 1;
            }
        }
        // What a socket saw live before the kill is not owed again.
        for (i, r) in readers.into_iter().enumerate() {
            let (seq, seen) = r.await.unwrap();
            last_seq[i] = seq;
            owed[i].retain(|id| !seen.contains(id));
            owed_after_kill += owed[i].len();
        }
        s = TestServer::start(live_opts().data_dir(dir)).await;
        // Each patient resumes from what it processed and must get every acknowledged booking.
        for (i, p) in people.iter().enumerate() {
            let mut f = Follower::connect(&s, &p.token, Some(last_seq[i])).await;
            let want = owed[i].clone();
            f.until(&format!("round {round}, patient {i}"), Duration::from_secs(15), |f| {
                f.reloads > 0 || want.iter().all(|id| f.has_appointment(id))
            })
            .await;
            reloads += f.reloads;
            if f.reloads == 0 {
                owed[i].clear();
            }
            last_seq[i] = f.last_seq;
        }
    }
    eprintln!(
        "live crash: {ROUNDS} rounds, {acked_total} bookings acknowledged, {owed_after_kill} of whose events had not \
         reached an open socket at the kill (each then received after the restart), reloads {reloads}"
    );
    assert!(acked_total >= ROUNDS * (ROUNDS + 1) / 2, "the storms did book ({acked_total})");
    assert!(owed_after_kill > 0, "some kill came between an answer and its event");
    assert_eq!(reloads, 0, "the log keeps 500 events: nobody here is past it");
}

/// Defect 2: every change of the unread count is pushed, new messages included; after booking
/// and paying, the last `unread` pushed is the count REST gives; after reading all, 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_unread_pushed_is_the_count() {
    let s = TestServer::start(live_opts()).await;
    let admin = staff(&s).await;
    let doctor = doctors(&s).await.remove(2);
    let (_, slots) = create_session(&s, &admin, &doctor, ahead(25), 60, 5, None).await;
    let p = person(&s, 42_001).await;
    let mut f = Follower::connect(&s, &p.token, None).await;
    let booked = expect_json(
        s.post("/api/v1/appointments", Some(&p.token), json!({"slot_id": slots[0], "patient_id": p.patient_id})).await,
        201,
    )
    .await;
    pay(&s, &p, booked["order"]["id"].as_str().unwrap()).await;
    let rest =
        || async { s.get_json("/api/v1/me/messages/unread-count", Some(&p.token)).await["count"].as_u64().unwrap() };
    // Wait until the booking is confirmed and its message counted.
    let mut n = 0;
    for _ in 0..100 {
        n = rest().await;
        if n >= 1
            && s.get_json(
                &format!("/api/v1/appointments/{}", booked["appointment"]["id"].as_str().unwrap()),
                Some(&p.token),
            )
            .await["status"]
                == "confirmed"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(n >= 1, "paying leaves an unread message");
    let last_unread =
        |f: &Follower| f.events.iter().rev().find(|e| e["type"] == "unread").map(|e| e["payload"]["count"].clone());
    f.until("the unread count after paying", Duration::from_secs(15), |f| last_unread(f) == Some(json!(n))).await;
    // A message that arrives later counts too (and is the last word).
    let later = rest().await;
    assert_eq!(last_unread(&f), Some(json!(later)), "pushed {:?}, REST says {later}", last_unread(&f));
    let r = s.post_empty("/api/v1/me/messages/read-all", Some(&p.token)).await;
    ok_json(r).await;
    f.until("unread 0 after reading all", Duration::from_secs(15), |f| last_unread(f) == Some(json!(0))).await;
}

/// Reads frames until the socket ends; how it ended.
async fn ends(ws: &mut Ws, limit: Duration) -> End {
    tokio::time::timeout(limit, ws.until_end()).await.expect("the socket ends in time")
}

/// Defect 3: logout closes that login's sockets with 4001 at once, on every node; logout-all
/// closes every login's; an ended session closes its sockets when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_logins_sockets_on_every_node() {
    let redis = RedisServer::start();
    let mut o1 = booking_opts();
    o1.redis_url = Some(redis.url());
    let mut o2 = booking_opts();
    o2.redis_url = Some(redis.url());
    let n1 = TestServer::start(o1).await;
    let n2 = TestServer::start(o2).await;
    let phone_no = phone(43_001);
    let t1 = n1.login(&phone_no).await;
    let t2 = n2.login(&phone_no).await;
    // Device 1's login on both nodes, device 2's on node 1.
    let mut a = Ws::connect(&n2, Some(&t1), Enc::Json).await;
    let mut b = Ws::connect(&n1, Some(&t1), Enc::Json).await;
    let mut c = Ws::connect(&n1, Some(&t2), Enc::MsgPack).await;
    for ws in [&mut a, &mut b, &mut c] {
        ws.next_of("welcome").await;
    }
    assert_eq!(n1.post_empty("/api/v1/auth/logout", Some(&t1)).await.status(), 204);
    assert_eq!(ends(&mut a, Duration::from_secs(5)).await, End::Close(4001), "the other node's socket");
    assert_eq!(ends(&mut b, Duration::from_secs(5)).await, End::Close(4001), "this node's socket");
    // The other login is untouched.
    c.send(json!({"type": "ping", "id": "p"})).await;
    assert_eq!(c.next_of("pong").await["id"], "p");
    // Logout everywhere, from the other node.
    let t3 = n2.login(&phone_no).await;
    assert_eq!(n2.post_empty("/api/v1/auth/logout-all", Some(&t3)).await.status(), 200);
    assert_eq!(ends(&mut c, Duration::from_secs(5)).await, End::Close(4001));

    // A session that ends by itself (a 3-second absolute lifetime) closes its socket then.
    let short = TestServer::start(booking_opts().env("HOSPITAL_GATEWAY__AUTH__ABSOLUTE_LIFETIME_SECS", 3)).await;
    let t = short.login(&phone(43_002)).await;
    let mut d = Ws::connect(&short, Some(&t), Enc::Json).await;
    d.next_of("welcome").await;
    assert_eq!(ends(&mut d, Duration::from_secs(10)).await, End::Close(4001), "closed when the session ended");
}

/// A raw TCP client that does the WebSocket handshake by hand, so it can then send what no
/// library would: unmasked frames, invalid UTF-8, noise.
async fn raw_socket(s: &TestServer, token: &str) -> tokio::net::TcpStream {
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: hospital.json.v1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    // The 101 answer, up to its blank line.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// A client frame, masked (as RFC 6455 requires of clients) unless `masked` is false.
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut f = vec![0x80 | opcode, (payload.len() as u8) | if masked { 0x80 } else { 0 }];
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads server frames until a close frame; its code (None if the connection just ended).
async fn close_code(tcp: &mut tokio::net::TcpStream) -> Option<u16> {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Parse what we have: unmasked server frames with 7-bit or 16-bit lengths.
        let mut i = 0;
        while buf.len() >= i + 2 {
            let (op, len7) = (buf[i] & 0x0f, (buf[i + 1] & 0x7f) as usize);
            let (len, hdr) = match len7 {
                126 if buf.len() >= i + 4 => (u16::from_be_bytes([buf[i + 2], buf[i + 3]]) as usize, 4),
                126 => break,
                127 => panic!("no 64-bit frames expected"),
                n => (n, 2),
            };
            if buf.len() < i + hdr + len {
                break;
            }
            if op == 8 {
                let p = &buf[i + hdr..i + hdr + len];
                return (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
            }
            i += hdr + len;
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no close frame within 10 s"),
        }
    }
}

/// Defect 4: a client that breaks the protocol is told so with RFC 6455's codes, not 1001 (which
/// says "reconnect and resume" and would make a broken client loop); an unknown subprotocol is
/// refused before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_close_with_1002_and_1007() {
    let s = TestServer::start(booking_opts()).await;
    let token = s.login(&phone(44_001)).await;
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("invalid UTF-8 in a text frame", frame(0x1, &[0x7b, 0xff, 0xfe, 0x7d], true), 1007),
        ("an unmasked client frame", frame(0x1, br#"{"type":"ping"}"#, false), 1002),
        ("random bytes", vec![0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x42], 1002),
        ("a reserved opcode", frame(0x3, b"x", true), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut tcp = raw_socket(&s, &token).await;
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(close_code(&mut tcp).await, Some(code), "{what}");
    }
    // A well-formed frame on a raw socket works (the harness itself is not the problem).
    let mut tcp = raw_socket(&s, &token).await;
    tcp.write_all(&frame(0x1, br#"{"type":"ping","id":"x"}"#, true)).await.unwrap();
    tcp.write_all(&frame(0x8, &1000u16.to_be_bytes(), true)).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1000), "a normal close is answered in kind");

    let mut req = crate::realtime::request(&s, Some(&token), Enc::Json);
    req.headers_mut().insert("sec-websocket-protocol", "chat.v9".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 400);
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["error"]["code"], "bad_request", "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("hospital.json.v1"), "{body}");
        }
        other => panic!("an unknown subprotocol is refused: {:?}", other.map(|_| ())),
    }
}

async fn open_sockets(s: &TestServer) -> f64 {
    let text = s.get("/metrics", None).await.text().await.unwrap();
    text.lines()
        .find(|l| l.starts_with("ws_open_sockets"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Defect 5, with the default settings: 50 sockets of one account that never read are closed
/// (4008) once they fall `max_unacked` (300) events behind, the server's memory stays bounded, a
/// reading socket of the same account gets every event in order, and a closed client resumes
/// from its last number without a reload (the log keeps 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_sockets_are_closed_under_default_settings_and_resume() {
    let s = TestServer::start(booking_opts()).await;
    let token = s.login(&phone(45_001)).await;
    let mut reader = Follower::connect(&s, &token, None).await;
    let start_seq = reader.last_seq;
    let mut silent = Vec::new();
    for _ in 0..50 {
        let mut ws = Ws::connect(&s, Some(&token), Enc::Json).await;
        // The welcome only; after it, never another read.
        ws.next_of("welcome").await;
        silent.push(ws);
    }
    assert_eq!(open_sockets(&s).await, 51.0);
    let rss_before = rss_kib(s.pid());
    // 400 events, each a profile change (the name makes each one ~600 bytes on the wire).
    let events = 400u64;
    let reading = tokio::spawn(async move {
        reader
            .until("every event, in order", Duration::from_secs(120), move |f| f.last_seq >= start_seq + events)
            .await;
        reader
    });
    let client = s.client().clone();
    for i in 0..events {
        let name = format!("测试{}", "长".repeat(20 + (i % 10) as usize));
        let r =
            client.patch(s.url("/api/v1/me")).bearer_auth(&token).json(&json!({"name": name})).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let reader = reading.await.unwrap();
    assert_eq!(reader.events.len() as u64, events, "the reading socket got every event once");
    assert_eq!(reader.reloads, 0);
    let rss_after = rss_kib(s.pid());
    // Closed within the documented bound: after `max_unacked` unacknowledged events (here, by
    // the time the last event is sent and read by the reader).
    let mut left = 0.0;
    for _ in 0..50 {
        left = open_sockets(&s).await;
        if left == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 1.0, "only the reading socket is still open");
    eprintln!("slow readers: server RSS {rss_before} KiB -> {rss_after} KiB with 50 never-reading sockets");
    assert!(rss_after < rss_before + 64 * 1024, "server memory stays bounded: {rss_before} -> {rss_after} KiB");
    // The silent clients see the close (or just the end, if their buffers were full), then
    // resume from the last number they processed (the welcome's) without a reload.
    let mut closes = HashMap::new();
    for ws in silent.iter_mut().take(5) {
        *closes.entry(format!("{:?}", ends(ws, Duration::from_secs(10)).await)).or_insert(0) += 1;
    }
    assert!(closes.keys().all(|k| k == "Close(4008)" || k == "Dropped"), "{closes:?}");
    let mut back = Follower::connect(&s, &token, Some(start_seq)).await;
    back.until("the missed events", Duration::from_secs(30), move |f| f.last_seq >= start_seq + events).await;
    assert_eq!(back.reloads, 0, "resumed from the log, not told to reload");
    let names: HashSet<String> = back.events.iter().map(|e| e["payload"]["profile"]["name"].to_string()).collect();
    assert!(names.len() >= 10, "the replay carries the real events");
    drop(silent);
}

/// A test of the guide itself: every account's events, as the guide says, numbered from 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_accounts_first_event_is_number_one() {
    let s = TestServer::start(booking_opts()).await;
    let (token, _) = patient(&s, &phone(46_001), "11010519491231002X").await;
    let mut f = Follower::connect(&s, &token, Some(0)).await;
    let r = s.patch("/api/v1/me", Some(&token), json!({"name": "一号"})).await;
    ok_json(r).await;
    f.until("the profile event", Duration::from_secs(10), |f| !f.events.is_empty()).await;
    assert_eq!(f.events[0]["seq"], 1);
    assert_eq!(f.events[0]["type"], "profile");
    let _ = f.ws.stream.send(Message::Close(None)).await;
}
