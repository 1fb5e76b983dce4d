//! The Grafana dashboards against a real Prometheus (Debian's `prometheus`, PLAT-6): the committed
//! `prometheus.yml` passes `promtool check config`; a Prometheus started here on a free port (temp
//! storage, 1 s scrapes) scrapes a real server under a short load that makes every panel's metrics
//! exist (logins, bookings, a sold-out answer, a lapsed hold with a waitlist offer, a payment, a
//! cancellation with refund, a clinic stop, WebSockets with a resume, bad frames and a too-slow
//! reader, a per-IP 429 burst, a chat conversation that waits, is assigned, answered and closed); then EVERY expression of EVERY panel of every dashboard in
//! grafana/dashboards/ is run through `/api/v1/query` and must return data.
//!
//! A few counters exist only after a failure (an actor restart, a store write error, a failed
//! notification); their panels say `... or on() vector(0)`, and for those the test checks that the
//! metric name is really one the server's source exports.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::booking_flow::{ahead, book, book_ok, create_session, departments_with_doctors, pay, person, staff};
use crate::harness::{ok_json, Opts, TestServer};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path of `name` on PATH, or a failure that says how to install it.
fn tool(name: &str) -> PathBuf {
    let found =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: this test needs Debian's Prometheus \
             (`apt-get install -y prometheus`; ./scripts/test.sh installs it)"
        )
    })
}

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts Prometheus scraping `target` (host:port) every second.
async fn start_prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hospital\n    \
         metrics_path: /metrics\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write config");
    let port = free_port();
    let child = Command::new(tool("prometheus"))
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let p = Prometheus { child, base: format!("http://127.0.0.1:{port}"), _dir: dir };
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = c.get(format!("{}/-/ready", p.base)).send().await {
            if r.status().is_success() {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready within 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client")
}

/// Every (dashboard file, panel title, expression) in grafana/dashboards/.
fn dashboard_expressions() -> Vec<(String, String, String)> {
    let dir = root().join("grafana/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "bookings, payments, websockets, actors, http, store, chat: {files:?}");
    let mut out = Vec::new();
    for f in files {
        let d: Value = serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("dashboard JSON");
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()), "{name}: uid");
        fn walk(panels: &Value, name: &str, out: &mut Vec<(String, String, String)>) {
            for p in panels.as_array().into_iter().flatten() {
                walk(&p["panels"], name, out);
                let title = p["title"].as_str().unwrap_or("?").to_string();
                for t in p["targets"].as_array().into_iter().flatten() {
                    assert_eq!(t["datasource"]["uid"], "prometheus", "{name} / {title}: datasource");
                    let e = t["expr"].as_str().unwrap_or_else(|| panic!("{name} / {title}: no expr"));
                    out.push((name.to_string(), title.clone(), e.to_string()));
                }
            }
        }
        walk(&d["panels"], &name, &mut out);
    }
    out
}

/// Grafana's variables as Grafana would fill them in.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "5m")
        .replace("${instance}", ".*")
        .replace("$instance", ".*")
}

/// The metric names an expression selects (every selector in the dashboards has braces).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut out = BTreeSet::new();
    for (i, _) in expr.match_indices('{') {
        let mut j = i;
        while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_' || b[j - 1] == b':') {
            j -= 1;
        }
        if j < i {
            out.insert(expr[j..i].to_string());
        }
    }
    out
}

/// All Rust sources of the crates that export metrics, concatenated.
fn server_sources() -> String {
    fn walk(p: &Path, out: &mut String) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut s = String::new();
    for c in ["actors/src", "gateway/src", "store/src", "src"] {
        walk(&root().join(c), &mut s);
    }
    s
}

async fn query(c: &reqwest::Client, prom: &Prometheus, expr: &str) -> Result<usize, String> {
    let r = c
        .get(format!("{}/api/v1/query", prom.base))
        .query(&[("query", expr)])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    if body["status"] != "success" {
        return Err(format!("query failed: {body}"));
    }
    match body["data"]["resultType"].as_str() {
        Some("scalar") | Some("string") => Ok(1),
        _ => Ok(body["data"]["result"].as_array().map(Vec::len).unwrap_or(0)),
    }
}

fn ws_request(
    server: &TestServer,
    token: &str,
    query: &str,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let url = server.base.replace("http://", "ws://") + "/ws" + query;
    let mut req = url.into_client_request().expect("ws request");
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    req.headers_mut().insert("sec-websocket-protocol", "hospital.json.v1".parse().unwrap());
    req
}

async fn metrics_text(s: &TestServer) -> String {
    s.client().get(s.url("/metrics")).send().await.expect("metrics").text().await.expect("text")
}

/// An HTTP client whose requests come from 127.0.0.`last`.
fn from_address(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Drives everything the dashboards show.
async fn load(s: &TestServer) {
    let admin = staff(s).await;
    let depts = departments_with_doctors(s).await;
    let doctors: Vec<String> = depts.iter().filter_map(|(_, d)| d.first().cloned()).take(3).collect();
    assert_eq!(doctors.len(), 3, "three departments with doctors");
    let p1 = person(s, 501).await;
    let p2 = person(s, 502).await;
    let p3 = person(s, 503).await;

    // A watcher socket: availability of the first doctor, its own events; frames in and out.
    let (mut watch, _) = tokio_tungstenite::connect_async(ws_request(s, &p3.token, "")).await.expect("ws");
    let sub = json!({"type": "subscribe", "id": "s1", "payload": {"topics": [format!("doctor:{}", doctors[0])]}});
    watch.send(Message::text(sub.to_string())).await.unwrap();
    watch.send(Message::text(r#"{"type":"ping","id":"p1","payload":{}}"#)).await.unwrap();
    for bad in ["{{not json", r#"{"type":"teleport","payload":{}}"#, r#"{"type":"resume","payload":{"last_seq":"x"}}"#]
    {
        watch.send(Message::text(bad)).await.unwrap();
    }
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = watch.next().await {} });

    // A sold-out answer, a hold that lapses (holds live 2 s here) and goes to the waitlist.
    let (session_a, slots_a) = create_session(s, &admin, &doctors[0], ahead(20), 30, 1, None).await;
    book_ok(s, &p1, &slots_a[0]).await;
    let r = book(s, &p2, &slots_a[0]).await;
    assert_eq!(r.status(), 409, "sold out: {}", r.text().await.unwrap_or_default());
    let r = s
        .post(&format!("/api/v1/sessions/{session_a}/waitlist"), Some(&p2.token), json!({"patient_id": p2.patient_id}))
        .await;
    ok_json(r).await;

    // A payment, a confirmation, then a cancellation with its refund.
    let (_, slots_b) = create_session(s, &admin, &doctors[1], ahead(21), 30, 2, None).await;
    let b = book_ok(s, &p3, &slots_b[0]).await;
    pay(s, &p3, b["order"]["id"].as_str().unwrap()).await;
    let appt = b["appointment"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = s.get_json(&format!("/api/v1/appointments/{appt}"), Some(&p3.token)).await;
        if a["status"] == "confirmed" {
            break;
        }
        assert!(Instant::now() < deadline, "payment confirmed the booking: {a}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ok_json(s.post_empty(&format!("/api/v1/appointments/{appt}/cancel"), Some(&p3.token)).await).await;

    // 停诊.
    let (session_c, _) = create_session(s, &admin, &doctors[2], ahead(22), 30, 1, None).await;
    ok_json(s.post_empty(&format!("/api/v1/admin/sessions/{session_c}/stop"), Some(&admin)).await).await;

    // A reconnect that resumes from the start of the account's log.
    let (mut again, _) = tokio_tungstenite::connect_async(ws_request(s, &p3.token, "?last_seq=0")).await.expect("ws");
    loop {
        match tokio::time::timeout(Duration::from_secs(10), again.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"resumed\"") || t.contains("\"reload\"") => break,
            Ok(Some(Ok(_))) => continue,
            other => panic!("no resumed frame: {other:?}"),
        }
    }

    // A reader too slow for its events: a tiny receive buffer, never read, and a flood of profile
    // changes (until the server closes it: the buffers between hold about 100 KiB, ~600 events).
    let slow = s.login("13900000504").await;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    sock.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(sock.into()).unwrap();
    let (_stalled, _) = tokio_tungstenite::client_async(ws_request(s, &slow, ""), tcp).await.unwrap();
    // (From other loopback addresses, 250 each, so the flood stays under the per-IP limit that
    // the burst below runs into.)
    let long = "慢".repeat(30);
    for i in 0..3000 {
        let from = from_address(10 + (i / 250) as u8);
        let r = from.patch(s.url("/api/v1/me")).bearer_auth(&slow).json(&json!({"name": long})).send().await;
        assert_eq!(r.expect("PATCH /api/v1/me").status(), 200, "profile change {i}");
        if i % 50 == 49 && metrics_text(s).await.contains("reason=\"too_slow\"") {
            break;
        }
    }

    // A burst from another loopback address past the per-IP limit: some 429s.
    let other = from_address(2);
    let url = s.url("/healthz");
    let codes: Vec<u16> = futures::stream::iter(0..1500)
        .map(|_| {
            let (other, url) = (other.clone(), url.clone());
            async move { other.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(codes.contains(&429), "the per-IP limit answered 429 to the burst");

    // A chat exchange: a conversation waits for an agent, one comes online and gets it, answers
    // (first response), the patient writes again; the console stays open (agents by presence).
    let chat_admin = s.staff_login("admin", "admin-demo-2026").await;
    let (_, agent_token) = crate::chat::agent(s, &chat_admin, "prom_agent", &["billing"], 5).await;
    let c = ok_json(
        s.post("/api/v1/chat/conversations", Some(&p1.token), json!({"group": "billing", "text": "发票怎么开？"}))
            .await,
    )
    .await;
    assert_eq!(c["status"], "waiting", "no agent online yet: {c}");
    let id = c["id"].as_str().unwrap().to_string();
    let mut desk = crate::chat::console(s, &agent_token, "online").await;
    desk.next_of("assignment").await;
    let reply = json!({"text": "您好，请稍等"});
    ok_json(s.post(&format!("/api/v1/chat/agent/conversations/{id}/messages"), Some(&agent_token), reply).await).await;
    let more = json!({"text": "好的"});
    ok_json(s.post(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&p1.token), more).await).await;
    ok_json(s.post_empty(&format!("/api/v1/chat/conversations/{id}/close"), Some(&p1.token)).await).await;
    let desk_reader = tokio::spawn(async move { while desk.next_quiet().await.is_ok() {} });

    // The lapsed hold (2 s) has gone to the waitlist by now.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !metrics_text(s).await.contains("booking_waitlist_offers_total") {
        assert!(Instant::now() < deadline, "the lapsed hold was offered to the waitlist");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reader.abort();
    desk_reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_real_prometheus() {
    let promtool = tool("promtool");
    let prometheus_bin = tool("prometheus");
    let check = Command::new(&promtool).arg("check").arg("config").arg(root().join("prometheus.yml")).output();
    let check = check.expect("run promtool");
    assert!(
        check.status.success(),
        "promtool check config prometheus.yml:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(prometheus_bin.is_file());

    let exprs = dashboard_expressions();
    let server = TestServer::start(
        Opts::new()
            .env("HOSPITAL_ACTORS__HOLD_TTL_SECS", 2)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_PHONE_BURST", 50)
            .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1)
            .env("HOSPITAL_SOCKET_SEND_BUFFER_BYTES", 8192)
            .env("HOSPITAL_GATEWAY__REALTIME__OUTBOX", 16)
            .env("HOSPITAL_GATEWAY__REALTIME__WRITE_TIMEOUT_SECS", 2),
    )
    .await;
    let target = server.base.trim_start_matches("http://").to_string();
    let prom = start_prometheus(&target).await;
    load(&server).await;

    // Every expression returns data once Prometheus has scraped the result of the load.
    let c = client();
    let sources = server_sources();
    let mut missing: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pending: Vec<(String, String, String)> = exprs.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (file, title, expr) in pending {
            match query(&c, &prom, &substitute(&expr)).await {
                Ok(n) if n > 0 => {}
                Ok(_) => still.push((file, title, expr)),
                Err(e) => panic!("{file} / {title}: {expr}: {e}"),
            }
        }
        pending = still;
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for (file, title, expr) in &pending {
        missing.push(format!("{file} / {title}: {expr}"));
    }
    assert!(missing.is_empty(), "panels whose expressions return no data:\n{}", missing.join("\n"));

    // And each metric an expression names is one the server exports: scraped now, or (for the
    // failure-only counters behind `or on() vector(0)`) named in the server's source.
    let names = c.get(format!("{}/api/v1/label/__name__/values", prom.base)).send().await.unwrap();
    let names: Value = names.json().await.unwrap();
    let scraped: BTreeSet<String> =
        names["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for (file, title, expr) in &exprs {
        for m in metric_names(expr) {
            if scraped.contains(&m) {
                continue;
            }
            let base = ["_bucket", "_sum", "_count"].iter().fold(m.as_str(), |m, s| m.strip_suffix(s).unwrap_or(m));
            assert!(
                expr.contains("or on() vector(0)") && sources.contains(&format!("\"{base}\"")),
                "{file} / {title}: metric {m} was not scraped and is not a failure-only counter of the server: {expr}"
            );
        }
    }
    println!(
        "{} expressions in {} panels checked",
        exprs.len(),
        exprs.iter().map(|e| (&e.0, &e.1)).collect::<BTreeSet<_>>().len()
    );
}
