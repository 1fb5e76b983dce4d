//! The release storm (放号) against the hospital server, given its base URL: N patients logged
//! in by SMS (through the sandbox outbox) with one 就诊人 each, M doctors with one session of S
//! places created through the back office, released a few seconds ahead; at the release time
//! every patient books once over their own keep-alive connection; afterwards the server's staff
//! view is read back and checked. The test suite calls `run` on a small storm; the command calls
//! the steps one by one, with the peers in between.

use anyhow::{bail, Context};
use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http1::request_bytes;
use crate::load::{self, CpuPerAttempt, Figures, Outcome};

/// The three storms of `hospital-load storm --scenario` (issue 13), each a shape of the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// 10,000 patients for 4 doctors x 30 places, all at the release instant: almost every
    /// answer is "sold out" (what the availability gate answers).
    SoldOut,
    /// 10,000 patients over 100 doctors x 100 places: every patient can win, so every answer is
    /// a durable hold (what the per-doctor actors and the group commit are for).
    EveryoneWins,
    /// The sold-out storm with the taps spread over one second, as people's are.
    HumanPaced,
}

impl Scenario {
    /// (patients, doctors, places per doctor, spread of the taps in ms).
    pub fn shape(self) -> (usize, usize, u32, u64) {
        match self {
            Scenario::SoldOut => (10_000, 4, 30, 0),
            Scenario::EveryoneWins => (10_000, 100, 100, 0),
            Scenario::HumanPaced => (10_000, 4, 30, 1000),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::SoldOut => "sold-out",
            Scenario::EveryoneWins => "everyone-wins",
            Scenario::HumanPaced => "human-paced",
        }
    }
}

/// The storm's shape.
#[derive(Debug, Clone, Serialize)]
pub struct StormConfig {
    /// Which of the three storms this is (its targets in the report).
    pub scenario: Scenario,
    pub patients: usize,
    pub doctors: usize,
    /// Places per doctor (one session, one segment).
    pub slots: u32,
    /// Logins and 就诊人 set up at once.
    pub setup_concurrency: usize,
    /// How long after the connections are open the release happens.
    pub lead_ms: u64,
    /// Spread of the patients' taps after the release (0: all at once).
    pub spread_ms: u64,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Phones are `139` + 8 digits from here.
    pub phone_base: u32,
    /// The server runs under valgrind's callgrind (`hospital-load storm --callgrind`): each
    /// storm's instructions are counted on their own (`load::measured`).
    pub callgrind: bool,
}

impl Default for StormConfig {
    fn default() -> Self {
        StormConfig {
            scenario: Scenario::SoldOut,
            patients: 200,
            doctors: 2,
            slots: 20,
            setup_concurrency: 64,
            lead_ms: 3000,
            spread_ms: 0,
            timeout_ms: 30_000,
            phone_base: 10_000_000,
            callgrind: false,
        }
    }
}

/// A logged-in patient: the bearer token, the 就诊人 id, and the doctor it goes for.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub token: String,
    pub patient_id: String,
    pub doctor: usize,
}

/// One doctor's released session.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub doctor_id: String,
    pub session_id: String,
    pub slot_id: String,
    pub date: NaiveDate,
}

/// Everything set up before the release.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    #[serde(skip)]
    pub staff_token: String,
    pub targets: Vec<Target>,
    #[serde(skip)]
    pub people: Vec<Person>,
    pub setup_s: f64,
}

/// What the server says afterwards.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Correctness {
    pub capacity: usize,
    /// 201s answered to patients.
    pub holds_answered: usize,
    /// Live appointments in the staff view.
    pub holds_listed: usize,
    pub places_distinct: bool,
    pub patients_distinct: bool,
    /// Every attempt got 201 or 409 sold_out.
    pub all_definite: bool,
    /// Every 201 is in the staff view, and nothing else is.
    pub answers_match_listing: bool,
    pub problems: Vec<String>,
}

impl Correctness {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The storm's whole outcome.
pub struct StormRun {
    pub prepared: Prepared,
    pub outcomes: Vec<Outcome>,
    pub figures: Figures,
    pub correctness: Correctness,
}

/// A client for the setup (pooled keep-alive).
pub fn setup_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// A valid 18-character resident ID number, distinct for each `n` below 900 * 20 000 (GB 11643
/// check character).
pub fn id_card(n: u32) -> String {
    let birth = NaiveDate::from_ymd_opt(1960, 1, 1).expect("a date") + Days::days(i64::from(n / 900));
    let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), 100 + n % 900);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

async fn send(rb: reqwest::RequestBuilder, expect: u16, what: &str) -> anyhow::Result<Value> {
    let mut last = String::new();
    for attempt in 0..5 {
        let r = rb.try_clone().expect("clonable request").send().await;
        match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if status == expect {
                    return serde_json::from_str(&text).with_context(|| format!("{what}: not JSON: {text}"));
                }
                if status == 429 || status >= 500 {
                    last = format!("{status}: {text}");
                    tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
                    continue;
                }
                bail!("{what}: expected {expect}, got {status}: {text}");
            }
            Err(e) => {
                last = e.to_string();
                tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
            }
        }
    }
    bail!("{what}: gave up after retries: {last}")
}

/// Logs in `139{n:08}` by SMS (the code read from the sandbox outbox) and adds itself as 就诊人.
pub async fn person(c: &reqwest::Client, base: &str, n: u32, doctor: usize) -> anyhow::Result<Person> {
    let token = login(c, base, n).await?;
    let p = send(
        c.post(format!("{base}/api/v1/me/patients"))
            .bearer_auth(&token)
            .json(&json!({ "name": "张三", "id_card_no": id_card(n), "relation": "self" })),
        201,
        "add patient",
    )
    .await?;
    let patient_id = p["id"].as_str().with_context(|| format!("no patient id: {p}"))?.to_string();
    Ok(Person { token, patient_id, doctor })
}

/// Logs in `139{n:08}` by SMS (the code read from the sandbox outbox); the token.
pub async fn login(c: &reqwest::Client, base: &str, n: u32) -> anyhow::Result<String> {
    let phone = format!("139{n:08}");
    send(c.post(format!("{base}/api/v1/auth/sms/send")).json(&json!({ "phone": phone })), 200, "sms send").await?;
    let outbox = send(c.get(format!("{base}/sandbox/sms?phone={phone}")), 200, "sms outbox").await?;
    let code = outbox
        .as_array()
        .and_then(|a| a.last())
        .and_then(|m| m["params"]["code"].as_str())
        .with_context(|| format!("no code for {phone}: {outbox}"))?
        .to_string();
    let login = send(
        c.post(format!("{base}/api/v1/auth/sms/login"))
            .json(&json!({ "phone": phone, "code": code, "device": "hospital-load" })),
        200,
        "sms login",
    )
    .await?;
    Ok(login["token"].as_str().with_context(|| format!("no token: {login}"))?.to_string())
}

/// The first `m` doctors of the leaf departments, in tree order.
async fn doctors(c: &reqwest::Client, base: &str, m: usize) -> anyhow::Result<Vec<String>> {
    let tree = send(c.get(format!("{base}/api/v1/departments")), 200, "departments").await?;
    fn walk(v: &Value, out: &mut Vec<String>) {
        for d in v.as_array().into_iter().flatten() {
            if d["children"].as_array().map(Vec::len).unwrap_or(0) == 0 {
                out.extend(d["id"].as_str().map(str::to_string));
            } else {
                walk(&d["children"], out);
            }
        }
    }
    let mut leaves = Vec::new();
    walk(&tree, &mut leaves);
    let mut out = Vec::new();
    for id in leaves {
        let detail = send(c.get(format!("{base}/api/v1/departments/{id}")), 200, "department").await?;
        for d in detail["doctors"].as_array().into_iter().flatten() {
            out.extend(d["id"].as_str().map(str::to_string));
            if out.len() == m {
                return Ok(out);
            }
        }
    }
    bail!("the hospital has only {} doctors, {m} asked", out.len())
}

/// One session for `doctor` on the first free day from 20 days ahead: one 60-minute evening
/// segment of `quota` places, released (for now) an hour from now.
async fn create_session(
    c: &reqwest::Client,
    base: &str,
    staff: &str,
    doctor: &str,
    quota: u32,
) -> anyhow::Result<Target> {
    let today = (Utc::now() + Days::hours(8)).date_naive();
    for ahead in 20..60 {
        let date = today + Days::days(ahead);
        let body = json!({
            "from": date, "to": date,
            "weekly": [{ "weekday": date.weekday().number_from_monday(), "period": "evening",
                         "start": "18:00:00", "end": "19:00:00", "segment_minutes": 60, "quota": quota }],
            "release_days_before": 0, "release_time": "08:00:00",
        });
        let made = send(
            c.post(format!("{base}/api/v1/admin/doctors/{doctor}/sessions")).bearer_auth(staff).json(&body),
            201,
            "apply template",
        )
        .await?;
        let Some(session) = made["created"].as_array().and_then(|a| a.first()).and_then(Value::as_str) else {
            continue; // the day was taken
        };
        let session = session.to_string();
        set_release(c, base, staff, &session, Utc::now() + Days::hours(1)).await?;
        let sched =
            send(c.get(format!("{base}/api/v1/doctors/{doctor}/schedule?from={date}&to={date}")), 200, "schedule")
                .await?;
        let view = sched["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["session_id"] == session.as_str())
            .with_context(|| format!("session {session} not in the schedule: {sched}"))?;
        let slot_id = view["slots"][0]["slot_id"].as_str().with_context(|| format!("no slot: {view}"))?.to_string();
        return Ok(Target { doctor_id: doctor.to_string(), session_id: session, slot_id, date });
    }
    bail!("no free day for doctor {doctor}")
}

async fn set_release(
    c: &reqwest::Client,
    base: &str,
    staff: &str,
    session: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    send(
        c.patch(format!("{base}/api/v1/admin/sessions/{session}"))
            .bearer_auth(staff)
            .json(&json!({ "release_at": at })),
        200,
        "set release",
    )
    .await?;
    Ok(())
}

/// Staff login, the sessions, and the patients (bounded concurrency, with a progress bar).
pub async fn prepare(base: &str, cfg: &StormConfig) -> anyhow::Result<Prepared> {
    let c = setup_client();
    let started = Instant::now();
    let staff = send(
        c.post(format!("{base}/api/v1/auth/staff/login"))
            .json(&json!({ "username": "admin", "password": "admin-demo-2026" })),
        200,
        "staff login",
    )
    .await?["token"]
        .as_str()
        .context("staff token")?
        .to_string();
    let mut targets = Vec::new();
    for d in doctors(&c, base, cfg.doctors).await? {
        targets.push(create_session(&c, base, &staff, &d, cfg.slots).await?);
    }
    let pb = load::bar(cfg.patients as u64, "setup: patients");
    let people: Vec<anyhow::Result<Person>> = stream::iter(0..cfg.patients)
        .map(|i| {
            let (c, pb) = (&c, &pb);
            async move {
                let p = person(c, base, cfg.phone_base + i as u32, i % cfg.doctors).await;
                pb.inc(1);
                p
            }
        })
        .buffer_unordered(cfg.setup_concurrency)
        .collect()
        .await;
    pb.finish();
    let mut people = people.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    people.sort_by_key(|p| p.doctor);
    Ok(Prepared { staff_token: staff, targets, people, setup_s: started.elapsed().as_secs_f64() })
}

/// The booking request of each patient, as bytes for `addr`.
pub fn booking_requests(addr: SocketAddr, p: &Prepared) -> Vec<Arc<Vec<u8>>> {
    p.people
        .iter()
        .map(|x| {
            let body = json!({ "slot_id": p.targets[x.doctor].slot_id, "patient_id": x.patient_id }).to_string();
            Arc::new(request_bytes("POST", addr, "/api/v1/appointments", &x.token, Some(&body)))
        })
        .collect()
}

/// Opens the connections, moves every session's release to `lead` from now, and fires at it;
/// with `server`, also the CPU per attempt of the firing (`load::measured`).
pub async fn storm(
    base: &str,
    addr: SocketAddr,
    p: &Prepared,
    cfg: &StormConfig,
    server: Option<u32>,
) -> anyhow::Result<(Vec<Outcome>, Option<CpuPerAttempt>)> {
    let c = setup_client();
    let requests = booking_requests(addr, p);
    let conns = load::connect_all(addr, requests.len(), "hospital booking").await?;
    let release = Utc::now() + Days::milliseconds(cfg.lead_ms as i64);
    for t in &p.targets {
        set_release(&c, base, &p.staff_token, &t.session_id, release).await?;
    }
    // Fire just after the release (server and generator share the clock).
    let wait = (release - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(20);
    if wait < Duration::from_millis(100) {
        bail!("setting the release times took longer than --lead-ms; raise it");
    }
    let at = tokio::time::Instant::now() + wait;
    let opts = load::FireOpts {
        spread: Duration::from_millis(cfg.spread_ms),
        timeout: Duration::from_millis(cfg.timeout_ms),
        keep_body: &[201],
    };
    Ok(load::measured(
        server,
        at,
        cfg.callgrind.then_some("booking"),
        load::fire(addr, conns, requests, at, opts, "hospital booking"),
    )
    .await)
}

/// Reads the staff view of every session back and checks it against the answers.
pub async fn check(base: &str, p: &Prepared, outcomes: &[Outcome], cfg: &StormConfig) -> anyhow::Result<Correctness> {
    let c = setup_client();
    let mut k = Correctness { places_distinct: true, patients_distinct: true, ..Default::default() };
    let mut answered: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut indefinite = 0;
    for (person, o) in p.people.iter().zip(outcomes) {
        match (o.status, o.code.as_deref()) {
            (Some(201), _) => {
                let a = &o.body["appointment"];
                if a["slot_id"] != p.targets[person.doctor].slot_id.as_str()
                    || a["patient_id"] != person.patient_id.as_str()
                {
                    k.problems.push(format!("a 201 for the wrong slot or patient: {a}"));
                }
                answered.entry(person.doctor).or_default().insert(a["id"].as_str().unwrap_or_default().to_string());
                k.holds_answered += 1;
            }
            (Some(409), Some("sold_out")) => {}
            _ => indefinite += 1,
        }
    }
    k.all_definite = indefinite == 0;
    if !k.all_definite {
        k.problems.push(format!("{indefinite} attempts got neither 201 nor 409 sold_out"));
    }
    k.answers_match_listing = true;
    let mut all_patients = BTreeSet::new();
    for (i, t) in p.targets.iter().enumerate() {
        let wanting = p.people.iter().filter(|x| x.doctor == i).count();
        let cap = wanting.min(cfg.slots as usize);
        k.capacity += cap;
        let listed = send(
            c.get(format!("{base}/api/v1/admin/sessions/{}/appointments", t.session_id)).bearer_auth(&p.staff_token),
            200,
            "session appointments",
        )
        .await?;
        let listed = listed.as_array().cloned().unwrap_or_default();
        let live: Vec<&Value> = listed.iter().filter(|a| a["status"] == "held" || a["status"] == "booked").collect();
        k.holds_listed += live.len();
        let places: BTreeSet<u64> = live.iter().filter_map(|a| a["place"].as_u64()).collect();
        if places.len() != live.len() {
            k.places_distinct = false;
            k.problems.push(format!("session {}: a place is held twice", t.session_id));
        }
        if live.len() != cap {
            k.problems.push(format!("session {}: {} holds for {cap} places", t.session_id, live.len()));
        }
        for a in &live {
            if !all_patients.insert(a["patient_id"].as_str().unwrap_or_default().to_string()) {
                k.patients_distinct = false;
                k.problems.push(format!("patient {} holds two places", a["patient_id"]));
            }
        }
        let ids: BTreeSet<String> = live.iter().map(|a| a["id"].as_str().unwrap_or_default().to_string()).collect();
        if ids != answered.remove(&i).unwrap_or_default() {
            k.answers_match_listing = false;
            k.problems.push(format!("session {}: the 201s answered differ from the staff view", t.session_id));
        }
    }
    if k.holds_answered != k.capacity {
        k.problems.push(format!("{} holds answered for a capacity of {}", k.holds_answered, k.capacity));
    }
    Ok(k)
}

/// The whole storm against a running server: set up, fire, check.
pub async fn run(base: &str, cfg: &StormConfig) -> anyhow::Result<StormRun> {
    let addr = crate::procs::addr_of(base)?;
    let prepared = prepare(base, cfg).await?;
    let (outcomes, _) = storm(base, addr, &prepared, cfg, None).await?;
    let figures = Figures::of("hospital booking", &outcomes, 201);
    let correctness = check(base, &prepared, &outcomes, cfg).await?;
    Ok(StormRun { prepared, outcomes, figures, correctness })
}
