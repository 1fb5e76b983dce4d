//! `hospital-load chat` (issue 9, must-show 5): N concurrent conversations and M agents over real
//! WebSockets, patients and agents exchanging messages at a target rate, against the hospital
//! server and, in the same run, against the conventional relay (a Node.js `ws` server relaying
//! through Redis pub/sub and storing nothing: load-tests/node-ws/chat-relay.js) as the ceiling.
//!
//! Both systems get the same generator: every patient and every agent has a socket open (the
//! patient's `/ws`, the agent's console; the relay's `/ws`) and its own keep-alive HTTP connection
//! to send on (`POST .../messages`, answered once the message is stored: for the hospital, durable
//! in the store's group commit; for the relay, handed to Redis). Message `k` of conversation `i`
//! is sent by the patient when `k` is even and by the agent when it is odd, at the `n`-th tick of
//! a schedule of `rate` messages a second (round-robin over the conversations). Its text carries
//! `i:k:<microseconds since the run began>`, so the receiving socket measures the delivery latency
//! (send -> frame received) with the generator's own clock. After the last send the generator
//! waits for the deliveries, and then (hospital) reads every conversation's stored history: every
//! acknowledged message must be there with the number it was acknowledged with.

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::http1::{request_bytes, Conn};
use crate::storm::{login, setup_client};

/// The hospital's service groups (seeded by the demo data), spread over agents and conversations.
const GROUPS: [&str; 3] = ["booking", "billing", "reports"];
/// How often an idle socket says it is alive (the hospital closes a socket silent for 75 s).
const PING_EVERY: Duration = Duration::from_secs(20);
/// How often a socket acknowledges the numbered events it received.
const ACK_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Serialize)]
pub struct ChatConfig {
    pub conversations: usize,
    pub agents: usize,
    /// Messages per second, both directions together.
    pub rate: f64,
    /// How long messages are sent.
    pub duration: Duration,
    pub setup_concurrency: usize,
    /// How long to wait for the last deliveries (and for the assignments at setup).
    pub settle: Duration,
    /// Patients log in as `139{first_phone + i:08}`.
    pub first_phone: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            conversations: 2000,
            agents: 100,
            rate: 2000.0,
            duration: Duration::from_secs(30),
            setup_concurrency: 64,
            settle: Duration::from_secs(30),
            first_phone: 70_000_000,
        }
    }
}

impl ChatConfig {
    /// Messages sent in the run.
    pub fn messages(&self) -> usize {
        (self.rate * self.duration.as_secs_f64()).round() as usize
    }
}

/// Which server: the paths and bodies differ, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hospital,
    Relay,
}

/// One direction's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Direction {
    pub sent: usize,
    /// Answered 200 (stored, or taken by Redis).
    pub acked: usize,
    /// Acknowledged and seen on the other side's socket.
    pub delivered: usize,
    /// Frames received that were not sent in this run, or twice.
    pub strays: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Send -> answer.
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    /// Delivery latency at percentiles 0, 1, ..., 100 (ms), for the plot.
    pub curve: Vec<(f64, f64)>,
}

/// One system's run.
#[derive(Debug, Clone, Serialize)]
pub struct ChatFigures {
    pub system: String,
    pub patient_to_agent: Direction,
    pub agent_to_patient: Direction,
    /// Acknowledged messages per second over the sending window.
    pub messages_per_s: f64,
    /// Hospital: acknowledged messages found in the stored history with their number
    /// (None: the relay stores nothing).
    pub durable: Option<usize>,
    /// What went wrong (first few), for the report.
    pub problems: Vec<String>,
    pub setup_s: f64,
}

impl ChatFigures {
    pub fn acked(&self) -> usize {
        self.patient_to_agent.acked + self.agent_to_patient.acked
    }

    /// Every message acknowledged, delivered once, and (hospital) durable.
    pub fn ok(&self) -> bool {
        let d = |d: &Direction| d.acked == d.sent && d.delivered == d.acked && d.strays == 0;
        d(&self.patient_to_agent)
            && d(&self.agent_to_patient)
            && self.durable.is_none_or(|n| n == self.acked())
            && self.problems.is_empty()
    }
}

/// One conversation as the generator drives it.
struct Conv {
    /// The server's id (hospital) or the index (relay).
    id: String,
    /// The patient's send path and token, the agent's.
    patient_token: String,
    agent: usize,
    patient_conn: tokio::sync::Mutex<Conn>,
    agent_conn: tokio::sync::Mutex<Conn>,
}

/// What the sockets record.
#[derive(Default)]
struct Seen {
    /// Delivery latencies (µs) by direction: 0 patient -> agent, 1 agent -> patient.
    latency: [Mutex<Vec<u32>>; 2],
    /// (i, k) of every delivered message.
    delivered: Mutex<HashSet<(u32, u32)>>,
    strays: [AtomicUsize; 2],
    /// Hospital consoles: conversation id -> agent index.
    assigned: Mutex<HashMap<String, usize>>,
}

/// A frame as both systems send it; only chat messages and assignments are read.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    payload: Option<Payload<'a>>,
    /// A patient's personal event's number (acknowledged, as a client must).
    #[serde(default)]
    seq: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Payload<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    sender: Option<Kinded<'a>>,
    #[serde(default, borrow)]
    body: Option<Body<'a>>,
}

#[derive(Deserialize)]
struct Kinded<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
}

/// `i:k:micros` -> (i, k, micros).
fn parse_text(t: &str) -> Option<(u32, u32, u64)> {
    let mut it = t.split(':');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

impl Seen {
    /// A frame received by a socket of `side` (0: an agent's, 1: a patient's) at `now_us`; its
    /// `seq`, if numbered.
    fn frame(&self, side: usize, agent: Option<usize>, text: &str, now_us: u64) -> Option<u64> {
        let Ok(f) = serde_json::from_str::<Frame>(text) else { return None };
        let seq = f.seq;
        let Some(p) = f.payload else { return seq };
        match f.kind.as_ref() {
            "chat_message" => {
                // Each side sees its own messages too (the hospital echoes them): only the other's.
                let from = p.sender.as_ref().map(|s| s.kind.as_ref());
                let wanted = if side == 0 { "patient" } else { "agent" };
                if from != Some(wanted) {
                    return seq;
                }
                let Some((i, k, sent)) = p.body.and_then(|b| b.text).and_then(|t| parse_text(&t)) else {
                    self.strays[side].fetch_add(1, Ordering::Relaxed);
                    return seq;
                };
                if !self.delivered.lock().expect("seen").insert((i, k)) {
                    self.strays[side].fetch_add(1, Ordering::Relaxed);
                    return seq;
                }
                let us = now_us.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
                self.latency[side].lock().expect("seen").push(us);
            }
            "assignment" => {
                if let (Some(id), Some("assigned"), Some(a)) = (p.id, p.status.as_deref(), agent) {
                    self.assigned.lock().expect("seen").insert(id.into_owned(), a);
                }
            }
            _ => {}
        }
        seq
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_ws(url: &str, token: &str, protocol: Option<&str>) -> anyhow::Result<Ws> {
    let mut req = url.into_client_request()?;
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse()?);
    if let Some(p) = protocol {
        req.headers_mut().insert("sec-websocket-protocol", p.parse()?);
    }
    let mut last = None;
    for attempt in 0..5u64 {
        match tokio_tungstenite::connect_async(req.clone()).await {
            Ok((mut ws, _)) => {
                // The welcome first.
                match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
                    Ok(Some(Ok(Message::Text(t)))) if t.contains("\"welcome\"") => return Ok(ws),
                    other => bail!("{url}: no welcome: {other:?}"),
                }
            }
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
            }
        }
    }
    bail!("{url}: {}", last.map(|e| e.to_string()).unwrap_or_default())
}

/// Reads a socket until the run ends, recording what it receives; acknowledges numbered events
/// once a second (as the hospital's clients must), and pings when it has been quiet.
fn read_socket(mut ws: Ws, seen: Arc<Seen>, side: usize, agent: Option<usize>, base: Instant, ping: &'static str) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ACK_EVERY);
        tick.tick().await;
        let (mut last_seq, mut acked, mut quiet) = (0u64, 0u64, Duration::ZERO);
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(n) = seen.frame(side, agent, &t, base.elapsed().as_micros() as u64) {
                            last_seq = last_seq.max(n);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = tick.tick() => {
                    quiet += ACK_EVERY;
                    let frame = if last_seq > acked {
                        acked = last_seq;
                        format!(r#"{{"type":"ack","payload":{{"seq":{last_seq}}}}}"#)
                    } else if quiet >= PING_EVERY {
                        ping.to_string()
                    } else {
                        continue;
                    };
                    quiet = Duration::ZERO;
                    if ws.send(Message::text(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[idx.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// The hospital: agents (cap enough for every conversation), their consoles online, the
/// patients logged in with their sockets, one conversation each, all assigned.
async fn prepare_hospital(
    base: &str,
    addr: SocketAddr,
    cfg: &ChatConfig,
    seen: &Arc<Seen>,
    t0: Instant,
) -> anyhow::Result<(Vec<Conv>, Vec<String>)> {
    let c = setup_client();
    let ws_base = base.replace("http://", "ws://");
    let admin = c
        .post(format!("{base}/api/v1/auth/staff/login"))
        .json(&json!({"username": "admin", "password": "admin-demo-2026"}))
        .send()
        .await?
        .error_for_status()
        .context("admin login (the demo data must be loaded)")?
        .json::<Value>()
        .await?;
    let admin = admin["token"].as_str().context("admin token")?.to_string();
    let groups = cfg.agents.clamp(1, GROUPS.len());
    // Enough places for every conversation in its group.
    let cap = (0..groups)
        .map(|g| {
            let convs = (0..cfg.conversations).filter(|i| i % groups == g).count();
            let agents = (0..cfg.agents).filter(|j| j % groups == g).count().max(1);
            convs.div_ceil(agents)
        })
        .max()
        .unwrap_or(1)
        .max(1);
    if cap > 50 {
        bail!("{} conversations need a cap of {cap} over {} agents; the most is 50", cfg.conversations, cfg.agents);
    }
    let agents: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(0..cfg.agents)
        .map(|j| {
            let (c, admin) = (c.clone(), admin.clone());
            async move {
                let username = format!("load{j}");
                let staff = c
                    .post(format!("{base}/api/v1/admin/staff"))
                    .bearer_auth(&admin)
                    .json(&json!({"username": username, "name": format!("客服{j}"), "password": "load-pass-2026", "roles": ["agent"]}))
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<Value>()
                    .await?;
                let id = staff["id"].as_str().context("staff id")?;
                c.put(format!("{base}/api/v1/chat/agents/{id}"))
                    .bearer_auth(&admin)
                    .json(&json!({"groups": [GROUPS[j % groups]], "cap": cap}))
                    .send()
                    .await?
                    .error_for_status()?;
                let login = c
                    .post(format!("{base}/api/v1/auth/staff/login"))
                    .json(&json!({"username": username, "password": "load-pass-2026"}))
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<Value>()
                    .await?;
                Ok((id.to_string(), login["token"].as_str().context("agent token")?.to_string()))
            }
        })
        .buffered(cfg.setup_concurrency)
        .collect()
        .await;
    let agents: Vec<(String, String)> =
        agents.into_iter().collect::<anyhow::Result<_>>().context("creating the agents")?;
    let index: Arc<HashMap<String, usize>> =
        Arc::new(agents.iter().enumerate().map(|(j, (id, _))| (id.clone(), j)).collect());
    let agents: Vec<String> = agents.into_iter().map(|(_, token)| token).collect();
    for (j, token) in agents.iter().enumerate() {
        let ws = connect_ws(&format!("{ws_base}/api/v1/chat/console/ws?presence=online"), token, None).await?;
        read_socket(ws, seen.clone(), 0, Some(j), t0, r#"{"type":"heartbeat"}"#);
    }
    let convs: Vec<anyhow::Result<Conv>> = futures::stream::iter(0..cfg.conversations)
        .map(|i| {
            let (c, seen, ws_base, index) = (c.clone(), seen.clone(), ws_base.clone(), index.clone());
            async move {
                let token = login(&c, base, cfg.first_phone + i as u32).await?;
                let ws = connect_ws(&format!("{ws_base}/ws"), &token, Some("hospital.json.v1")).await?;
                read_socket(ws, seen.clone(), 1, None, t0, r#"{"type":"ping","payload":{}}"#);
                let opened = c
                    .post(format!("{base}/api/v1/chat/conversations"))
                    .bearer_auth(&token)
                    .json(&json!({"group": GROUPS[i % groups]}))
                    .send()
                    .await?
                    .error_for_status()?
                    .json::<Value>()
                    .await?;
                let id = opened["id"].as_str().context("conversation id")?.to_string();
                // Assigned at once (the usual case): the answer names the agent. Otherwise the
                // agent's console says so when it is.
                if let Some(j) = opened["agent"]["id"].as_str().and_then(|a| index.get(a)) {
                    if opened["status"] == "assigned" {
                        seen.assigned.lock().expect("seen").insert(id.clone(), *j);
                    }
                }
                Ok(Conv {
                    id,
                    patient_token: token,
                    agent: usize::MAX,
                    patient_conn: tokio::sync::Mutex::new(Conn::connect(addr).await?),
                    agent_conn: tokio::sync::Mutex::new(Conn::connect(addr).await?),
                })
            }
        })
        .buffered(cfg.setup_concurrency)
        .collect()
        .await;
    let mut convs: Vec<Conv> = convs.into_iter().collect::<anyhow::Result<_>>().context("opening the conversations")?;
    // Every conversation assigned (the consoles say to whom).
    let deadline = Instant::now() + cfg.settle;
    loop {
        let n = seen.assigned.lock().expect("seen").len();
        if n >= convs.len() {
            break;
        }
        if Instant::now() > deadline {
            bail!("only {n} of {} conversations were assigned within {:?}", convs.len(), cfg.settle);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let assigned = seen.assigned.lock().expect("seen").clone();
    for conv in &mut convs {
        conv.agent = *assigned.get(&conv.id).with_context(|| format!("{} not assigned", conv.id))?;
    }
    Ok((convs, agents))
}

/// The relay: tokens registered with who they are, every socket open.
async fn prepare_relay(
    base: &str,
    addr: SocketAddr,
    cfg: &ChatConfig,
    seen: &Arc<Seen>,
    t0: Instant,
) -> anyhow::Result<(Vec<Conv>, Vec<String>)> {
    let c = setup_client();
    let ws_base = base.replace("http://", "ws://");
    let agents: Vec<String> = (0..cfg.agents).map(|j| format!("relay-agent-{j}")).collect();
    let patients: Vec<String> = (0..cfg.conversations).map(|i| format!("relay-patient-{i}")).collect();
    let mut tokens: Vec<Value> =
        agents.iter().enumerate().map(|(j, t)| json!({"token": t, "id": format!("a{j}")})).collect();
    tokens.extend(patients.iter().enumerate().map(|(i, t)| json!({"token": t, "id": format!("p{i}")})));
    c.post(format!("{base}/tokens")).json(&tokens).send().await?.error_for_status()?;
    for (j, t) in agents.iter().enumerate() {
        let ws = connect_ws(&format!("{ws_base}/ws"), t, None).await?;
        read_socket(ws, seen.clone(), 0, Some(j), t0, r#"{"type":"ping"}"#);
    }
    let convs: Vec<anyhow::Result<Conv>> = futures::stream::iter(patients.into_iter().enumerate())
        .map(|(i, token)| {
            let (seen, ws_base) = (seen.clone(), ws_base.clone());
            async move {
                let ws = connect_ws(&format!("{ws_base}/ws"), &token, None).await?;
                read_socket(ws, seen, 1, None, t0, r#"{"type":"ping"}"#);
                Ok(Conv {
                    id: i.to_string(),
                    patient_token: token,
                    agent: i % cfg.agents,
                    patient_conn: tokio::sync::Mutex::new(Conn::connect(addr).await?),
                    agent_conn: tokio::sync::Mutex::new(Conn::connect(addr).await?),
                })
            }
        })
        .buffered(cfg.setup_concurrency)
        .collect()
        .await;
    Ok((convs.into_iter().collect::<anyhow::Result<_>>()?, agents))
}

/// One acknowledged message: (i, k, seq the hospital gave it).
type Acked = (u32, u32, u64);

/// Runs the exchange against the hospital server at `base`.
pub async fn run_hospital(base: &str, cfg: &ChatConfig) -> anyhow::Result<ChatFigures> {
    run(Kind::Hospital, "hospital chat", base, cfg).await
}

/// Runs the exchange against the Node relay at `base`.
pub async fn run_relay(base: &str, cfg: &ChatConfig) -> anyhow::Result<ChatFigures> {
    run(Kind::Relay, "node ws + redis relay", base, cfg).await
}

async fn run(kind: Kind, system: &str, base: &str, cfg: &ChatConfig) -> anyhow::Result<ChatFigures> {
    let addr = crate::procs::addr_of(base)?;
    let seen = Arc::new(Seen::default());
    let t0 = Instant::now();
    let (convs, agents) = match kind {
        Kind::Hospital => prepare_hospital(base, addr, cfg, &seen, t0).await?,
        Kind::Relay => prepare_relay(base, addr, cfg, &seen, t0).await?,
    };
    let setup_s = t0.elapsed().as_secs_f64();
    eprintln!("{system}: {} conversations, {} agents ready in {setup_s:.1} s", convs.len(), agents.len());
    let convs = Arc::new(convs);
    let agents = Arc::new(agents);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::new(Mutex::new(Vec::with_capacity(cfg.messages())));
    let ack_lat: Arc<[Mutex<Vec<u32>>; 2]> = Arc::new(Default::default());
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();

    // The schedule: message n at n / rate seconds, round-robin over the conversations.
    let total = cfg.messages();
    let n_conv = convs.len();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / cfg.rate)).await;
        let (i, k) = ((n % n_conv) as u32, (n / n_conv) as u32);
        let (convs, agents, acked, ack_lat, failures) =
            (convs.clone(), agents.clone(), acked.clone(), ack_lat.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            let conv = &convs[i as usize];
            let side = (k % 2) as usize; // 0: the patient writes, 1: the agent
            let sent = t0.elapsed().as_micros() as u64;
            let text = format!("{i}:{k}:{sent}");
            let req = match (kind, side) {
                (Kind::Hospital, 0) => request_bytes(
                    "POST",
                    addr,
                    &format!("/api/v1/chat/conversations/{}/messages", conv.id),
                    &conv.patient_token,
                    Some(&json!({ "text": text }).to_string()),
                ),
                (Kind::Hospital, _) => request_bytes(
                    "POST",
                    addr,
                    &format!("/api/v1/chat/agent/conversations/{}/messages", conv.id),
                    &agents[conv.agent],
                    Some(&json!({ "text": text }).to_string()),
                ),
                (Kind::Relay, 0) => request_bytes(
                    "POST",
                    addr,
                    "/messages",
                    &conv.patient_token,
                    Some(
                        &json!({"to": format!("a{}", conv.agent), "conversation_id": i, "from": "patient", "text": text})
                            .to_string(),
                    ),
                ),
                (Kind::Relay, _) => request_bytes(
                    "POST",
                    addr,
                    "/messages",
                    &agents[conv.agent],
                    Some(&json!({"to": format!("p{i}"), "conversation_id": i, "from": "agent", "text": text}).to_string()),
                ),
            };
            let mut c = if side == 0 { conv.patient_conn.lock().await } else { conv.agent_conn.lock().await };
            let r = c.send(&req).await;
            let took = (t0.elapsed().as_micros() as u64).saturating_sub(sent) as u32;
            match r {
                Ok(a) if a.status == 200 => {
                    let seq = match kind {
                        Kind::Hospital => {
                            serde_json::from_slice::<Value>(&a.body).ok().and_then(|v| v["seq"].as_u64()).unwrap_or(0)
                        }
                        Kind::Relay => 0,
                    };
                    acked.lock().expect("acked").push((i, k, seq));
                    ack_lat[side].lock().expect("ack").push(took);
                }
                Ok(a) => failures.lock().expect("failures").push(format!(
                    "{i}:{k}: {} {}",
                    a.status,
                    String::from_utf8_lossy(&a.body).chars().take(200).collect::<String>()
                )),
                Err(e) => failures.lock().expect("failures").push(format!("{i}:{k}: {e}")),
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let send_s = start.elapsed().as_secs_f64();
    let acked: Vec<Acked> = std::mem::take(&mut *acked.lock().expect("acked"));
    // The last deliveries.
    let deadline = Instant::now() + cfg.settle;
    while seen.delivered.lock().expect("seen").len() < acked.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut problems: Vec<String> = failures.lock().expect("failures").iter().take(5).cloned().collect();
    let delivered = seen.delivered.lock().expect("seen").clone();
    let mut dirs: [Direction; 2] = Default::default();
    for n in 0..total {
        dirs[(n / n_conv) % 2].sent += 1;
    }
    for (i, k, _) in &acked {
        let d = &mut dirs[(*k % 2) as usize];
        d.acked += 1;
        if delivered.contains(&(*i, *k)) {
            d.delivered += 1;
        } else if problems.len() < 10 {
            problems.push(format!("{i}:{k} acknowledged but not delivered"));
        }
    }
    for (side, d) in dirs.iter_mut().enumerate() {
        let mut lat = std::mem::take(&mut *seen.latency[side].lock().expect("seen"));
        lat.sort_unstable();
        d.p50_ms = pct(&lat, 0.50);
        d.p99_ms = pct(&lat, 0.99);
        d.max_ms = lat.last().map_or(0.0, |&l| l as f64 / 1000.0);
        d.curve = (0..=100).map(|p| (p as f64, pct(&lat, p as f64 / 100.0))).collect();
        let mut a = std::mem::take(&mut *ack_lat[side].lock().expect("ack"));
        a.sort_unstable();
        d.ack_p50_ms = pct(&a, 0.50);
        d.ack_p99_ms = pct(&a, 0.99);
        d.strays = seen.strays[side].load(Ordering::Relaxed);
    }
    let durable = match kind {
        Kind::Hospital => Some(check_durable(base, &convs, &acked, cfg, &mut problems).await?),
        Kind::Relay => None,
    };
    let [p2a, a2p] = dirs;
    Ok(ChatFigures {
        system: system.to_string(),
        messages_per_s: if send_s > 0.0 { acked.len() as f64 / send_s } else { 0.0 },
        patient_to_agent: p2a,
        agent_to_patient: a2p,
        durable,
        problems,
        setup_s,
    })
}

/// Reads every conversation's stored history (as its patient): counts the acknowledged messages
/// found with the number and text they were acknowledged with, in order without gaps.
async fn check_durable(
    base: &str,
    convs: &[Conv],
    acked: &[Acked],
    cfg: &ChatConfig,
    problems: &mut Vec<String>,
) -> anyhow::Result<usize> {
    let c = setup_client();
    let histories: Vec<anyhow::Result<Vec<(u64, String)>>> = futures::stream::iter(convs.iter())
        .map(|conv| {
            let c = c.clone();
            async move {
                let mut out = Vec::new();
                let mut after = 0u64;
                loop {
                    let page = c
                        .get(format!("{base}/api/v1/chat/conversations/{}/messages?after={after}&limit=200", conv.id))
                        .bearer_auth(&conv.patient_token)
                        .send()
                        .await?
                        .error_for_status()?
                        .json::<Value>()
                        .await?;
                    for m in page["messages"].as_array().into_iter().flatten() {
                        let seq = m["seq"].as_u64().unwrap_or(0);
                        out.push((seq, m["body"]["text"].as_str().unwrap_or("").to_string()));
                    }
                    match page["next_after"].as_u64() {
                        Some(n) => after = n,
                        None => break,
                    }
                }
                Ok(out)
            }
        })
        .buffered(cfg.setup_concurrency.min(32))
        .collect()
        .await;
    let mut stored: HashMap<(u32, u64), String> = HashMap::new();
    for (i, h) in histories.into_iter().enumerate() {
        let h = h.with_context(|| format!("reading conversation {i}'s history"))?;
        let seqs: Vec<u64> = h.iter().map(|(s, _)| *s).collect();
        if seqs != (1..=seqs.len() as u64).collect::<Vec<_>>() && problems.len() < 10 {
            problems.push(format!("conversation {i}: history numbered {seqs:?}, not 1, 2, 3..."));
        }
        for (seq, text) in h {
            stored.insert((i as u32, seq), text);
        }
    }
    let mut found = 0;
    for (i, k, seq) in acked {
        match stored.get(&(*i, *seq)) {
            Some(t) if parse_text(t).is_some_and(|(ti, tk, _)| ti == *i && tk == *k) => found += 1,
            other => {
                if problems.len() < 10 {
                    problems.push(format!("{i}:{k} acknowledged as #{seq}, stored: {other:?}"));
                }
            }
        }
    }
    Ok(found)
}

/// The table, in the storm report's style.
pub fn table(systems: &[ChatFigures]) -> String {
    let mut s = String::new();
    s.push_str(
        "| system | direction | sent | acked | delivered | durable | msgs/s | p50 ms | p99 ms | max ms | ack p50 ms | ack p99 ms |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for f in systems {
        for (name, d) in [("patient→agent", &f.patient_to_agent), ("agent→patient", &f.agent_to_patient)] {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                f.system,
                name,
                d.sent,
                d.acked,
                d.delivered,
                f.durable.map_or("-".to_string(), |n| n.to_string()),
                f.messages_per_s,
                d.p50_ms,
                d.p99_ms,
                d.max_ms,
                d.ack_p50_ms,
                d.ack_p99_ms
            );
        }
    }
    s
}

/// The Node relay (`load-tests/node-ws/chat-relay.js`) on a free port, relaying through the Redis
/// at `redis_url`; installs the node-ws packages first (`npm ci`, from its lock file) if needed.
pub fn start_relay(redis_url: &str, log: &std::path::Path) -> anyhow::Result<(crate::procs::Proc, String)> {
    let dir = crate::procs::workspace_root().join("load-tests/node-ws");
    if !dir.join("node_modules/ioredis").exists() || !dir.join("node_modules/ws").exists() {
        eprintln!("installing the node-ws packages (npm ci in {})...", dir.display());
        let st = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .context("running npm ci in load-tests/node-ws (is npm installed?)")?;
        if !st.success() {
            bail!("npm ci failed in {}", dir.display());
        }
    }
    let mut cmd = std::process::Command::new("node");
    cmd.arg("chat-relay.js").current_dir(&dir).env("PORT", "0").env("REDIS_URL", redis_url);
    crate::procs::spawn_announcing("chat-relay", cmd, "chat-relay listening on ", log, Duration::from_secs(30))
}

/// The delivery latency of each system and direction by percentile, as `latency.png` in `dir`.
pub fn plot(systems: &[ChatFigures], dir: &std::path::Path) -> anyhow::Result<()> {
    if !crate::report::register_font() {
        eprintln!("no TrueType font found (fonts-dejavu-core): plot skipped");
        return Ok(());
    }
    let mut series: Vec<(String, &[(f64, f64)])> = Vec::new();
    for f in systems {
        for (name, d) in [("patient→agent", &f.patient_to_agent), ("agent→patient", &f.agent_to_patient)] {
            series.push((format!("{} {name}", f.system), d.curve.as_slice()));
        }
    }
    crate::report::plot_percentiles(
        "Chat: delivery latency by percentile (log scale)",
        &series,
        &dir.join("latency.png"),
    )
}

/// The Markdown report of a run.
pub fn markdown(
    started_at: &str,
    machine: &crate::report::Machine,
    cfg: &ChatConfig,
    systems: &[ChatFigures],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Chat, {started_at}\n");
    let _ = writeln!(
        s,
        "Machine: {} cores ({}), {} RAM, Linux {}; load average before the run: {}. The generator runs on the \
         same machine.\n",
        machine.nproc, machine.cpu, machine.mem_total, machine.kernel, machine.load_avg_before
    );
    let _ = writeln!(
        s,
        "{} conversations, {} agents, {} messages/s for {:.0} s ({} messages), alternately patient and agent.\n",
        cfg.conversations,
        cfg.agents,
        cfg.rate,
        cfg.duration.as_secs_f64(),
        cfg.messages()
    );
    let _ = writeln!(s, "## Figures\n\n{}\n![delivery latency](latency.png)\n", table(systems));
    s.push_str("## Correctness\n\n| system | ok | setup s | problems |\n|---|---|---:|---|\n");
    for f in systems {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {} |",
            f.system,
            if f.ok() { "yes" } else { "NO" },
            f.setup_s,
            f.problems.join("; ")
        );
    }
    s.push_str(
        "\nDelivery latency: from the sender starting its `POST .../messages` to the other side's socket \
         receiving the frame (the generator's clock). ack: send to the answer (hospital: durable in the store; \
         relay: taken by Redis). durable: acknowledged messages found in the stored history afterwards with the \
         number they were acknowledged with (the relay stores nothing).\n",
    );
    s
}
