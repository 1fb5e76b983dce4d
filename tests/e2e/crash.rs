//! Crash safety of booking: `kill -9` of the server in the middle of a booking storm, then a new
//! server on the same data directory. Every hold acknowledged before the kill is there with the
//! same slot and place, nothing is booked twice (per place, per person, per idempotency key), the
//! schedule's places left agree with the live bookings, and holds left unpaid lapse and free their
//! places. Several rounds, each killing at a different moment of its storm, on one data directory.

use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

use crate::harness::{expect_json, ok_json, phone, Opts, TestServer};

/// An unpaid hold lapses after this long.
const HOLD_TTL_SECS: i64 = 5;
/// Segments per session and places per segment.
const SEGMENTS: usize = 3;
const QUOTA: u32 = 40;
/// Patients in the storm: more than the places, so the storm also sells out.
const PATIENTS: usize = 300;
/// How many requests the setup runs at once.
const SETUP_CONCURRENCY: usize = 16;

/// When a round kills the server.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after the storm started.
    After(Duration),
    /// As soon as this many bookings were acknowledged.
    Acked(usize),
}

fn opts(dir: Option<TempDir>) -> Opts {
    let o = Opts::new()
        .env("HOSPITAL_ACTORS__HOLD_TTL_SECS", HOLD_TTL_SECS)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000)
        .env("HOSPITAL_GATEWAY__LIMITS__MAX_CONNECTIONS_PER_IP", 0)
        .env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1);
    match dir {
        Some(d) => o.data_dir(d),
        None => o,
    }
}

/// A valid 18-character ID number (GB 11643 check character), distinct for each `n` < 1000.
fn id_card(n: usize) -> String {
    let birth = NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + Days::days(n as i64 * 17);
    let first17 = format!("110105{}{:03}", birth.format("%Y%m%d"), n % 1000);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

struct Patient {
    token: String,
    patient_id: String,
}

/// A booking the server answered 201 to, as the client saw it.
#[derive(Debug, Clone)]
struct Ack {
    patient: usize,
    id: String,
    slot_id: String,
    place: u64,
    created_at: DateTime<Utc>,
}

/// How one storm request ended.
enum Outcome {
    Acked(Ack),
    SoldOut,
    /// Another answer (printed; treated like no answer).
    Other(u16, String),
    /// No answer: in flight at the kill, or sent after it.
    NoAnswer,
}

fn ack_of(patient: usize, body: &Value) -> Ack {
    let a = &body["appointment"];
    Ack {
        patient,
        id: a["id"].as_str().unwrap_or_else(|| panic!("appointment id in {body}")).to_string(),
        slot_id: a["slot_id"].as_str().expect("slot_id").to_string(),
        place: a["place"].as_u64().expect("place"),
        created_at: a["created_at"].as_str().expect("created_at").parse().expect("created_at is RFC 3339"),
    }
}

fn idempotency_key(round: usize, patient: usize) -> String {
    format!("crash-r{round}-p{patient}")
}

async fn book(client: &Client, base: &str, p: &Patient, slot: &str, key: &str) -> reqwest::Result<(u16, Value)> {
    let r = client
        .post(format!("{base}/api/v1/appointments"))
        .bearer_auth(&p.token)
        .header("Idempotency-Key", key)
        .json(&json!({ "slot_id": slot, "patient_id": p.patient_id }))
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// The session's places left per slot, from the public schedule.
async fn remaining(s: &TestServer, doctor: &str, date: NaiveDate, session: &str) -> BTreeMap<String, u64> {
    let sched = s.get_json(&format!("/api/v1/doctors/{doctor}/schedule?from={date}&to={date}"), None).await;
    let sess = sched["sessions"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["session_id"] == session))
        .unwrap_or_else(|| panic!("session {session} in the schedule: {sched}"));
    sess["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|x| (x["slot_id"].as_str().unwrap().to_string(), x["remaining"].as_u64().unwrap()))
        .collect()
}

/// The session's live appointments, as staff see them.
async fn live(s: &TestServer, staff: &str, session: &str) -> Vec<Value> {
    let l = s.get_json(&format!("/api/v1/admin/sessions/{session}/appointments"), Some(staff)).await;
    l.as_array().expect("a list").clone()
}

/// Every appointment of each patient's account in `slots` (any status), by patient.
async fn appointments_in(s: &TestServer, patients: &[Patient], slots: &HashSet<String>) -> Vec<Vec<Value>> {
    stream::iter(patients.iter())
        .map(|p| async move {
            let all = s.get_json("/api/v1/appointments", Some(&p.token)).await;
            all.as_array()
                .expect("a list")
                .iter()
                .filter(|a| a["slot_id"].as_str().is_some_and(|x| slots.contains(x)))
                .cloned()
                .collect::<Vec<_>>()
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await
}

/// Runs the storm on `s` (every patient books `slots[i % n]` once, all at once), kills the server
/// with SIGKILL at `kill`, and returns the data directory and every request's outcome.
async fn storm(
    s: TestServer,
    patients: &Arc<Vec<Patient>>,
    slots: &[String],
    round: usize,
    kill: KillAt,
) -> (TempDir, Vec<Outcome>, usize, Duration) {
    let client = Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    let acks = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..patients.len())
        .map(|i| {
            let (client, base, patients, acks) = (client.clone(), s.base.clone(), patients.clone(), acks.clone());
            let slot = slots[i % slots.len()].clone();
            tokio::spawn(async move {
                match book(&client, &base, &patients[i], &slot, &idempotency_key(round, i)).await {
                    Ok((201, body)) => {
                        acks.fetch_add(1, Ordering::SeqCst);
                        Outcome::Acked(ack_of(i, &body))
                    }
                    Ok((409, body)) if body["error"]["code"] == "sold_out" => Outcome::SoldOut,
                    Ok((status, body)) => Outcome::Other(status, body.to_string()),
                    Err(_) => Outcome::NoAnswer,
                }
            })
        })
        .collect();
    match kill {
        KillAt::After(d) => tokio::time::sleep(d).await,
        KillAt::Acked(k) => {
            let deadline = Instant::now() + Duration::from_secs(20);
            while acks.load(Ordering::SeqCst) < k && !tasks.iter().all(|t| t.is_finished()) {
                assert!(Instant::now() < deadline, "no {k} acknowledgements within 20 s");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
    let acked_at_kill = acks.load(Ordering::SeqCst);
    let at = started.elapsed();
    // SIGKILL of the server process itself (the harness spawns the binary, no shell between).
    let dir = s.kill_9();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.expect("storm task"));
    }
    (dir, outcomes, acked_at_kill, at)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_booking_storm_loses_no_acknowledged_hold_and_books_nothing_twice() {
    let t0 = Instant::now();
    let s = TestServer::start(opts(None)).await;
    let staff = s.staff_login("admin", "admin-demo-2026").await;

    // One session per round for one doctor, beyond the demo's 14 days of sessions, released now.
    let doctors = s.get_json("/api/v1/doctors?limit=1", None).await;
    let doctor = doctors[0]["id"].as_str().expect("a demo doctor").to_string();
    // (when to kill, how long no server runs): in the second round the holds lapse while it is down.
    let down = Duration::from_secs(HOLD_TTL_SECS as u64 + 1);
    let rounds = [
        (KillAt::After(Duration::from_millis(30)), Duration::ZERO),
        (KillAt::Acked(5), down),
        (KillAt::Acked(40), Duration::ZERO),
        (KillAt::Acked(100), Duration::ZERO),
    ];
    let first_date = Utc::now().date_naive() + Days::days(20);
    let weekly: Vec<Value> = (1..=7)
        .map(|d| {
            json!({ "weekday": d, "period": "evening", "start": "18:00", "end": "21:00",
                    "segment_minutes": 60, "quota": QUOTA })
        })
        .collect();
    let body = json!({
        "from": first_date, "to": first_date + Days::days(rounds.len() as i64 - 1), "weekly": weekly,
        "release_days_before": 0, "release_time": "00:00",
    });
    let created =
        expect_json(s.post(&format!("/api/v1/admin/doctors/{doctor}/sessions"), Some(&staff), body).await, 201).await;
    let sessions: Vec<String> =
        created["created"].as_array().expect("created").iter().map(|x| x.as_str().unwrap().to_string()).collect();
    assert_eq!(sessions.len(), rounds.len(), "one new session per round: {created}");
    let release = json!({ "release_at": Utc::now() - Days::seconds(60) });
    for id in &sessions {
        ok_json(s.patch(&format!("/api/v1/admin/sessions/{id}"), Some(&staff), release.clone()).await).await;
    }

    // The patients: an account each, with one 就诊人 (distinct ID numbers: distinct persons).
    let patients: Vec<Patient> = stream::iter(0..PATIENTS)
        .map(|i| {
            let s = &s;
            async move {
                let token = s.login(&phone(70_000 + i as u32)).await;
                let body = json!({ "name": format!("病人{i}"), "id_card_no": id_card(i), "relation": "self" });
                let added = expect_json(s.post("/api/v1/me/patients", Some(&token), body).await, 201).await;
                Patient { token, patient_id: added["id"].as_str().expect("patient id").to_string() }
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let patients = Arc::new(patients);
    eprintln!("crash: setup of {PATIENTS} patients and {} sessions took {:?}", sessions.len(), t0.elapsed());

    let mut server = s;
    let ttl = Days::seconds(HOLD_TTL_SECS);
    for (round, ((kill, down), session)) in rounds.iter().zip(&sessions).enumerate() {
        let date = first_date + Days::days(round as i64);
        let quotas = remaining(&server, &doctor, date, session).await;
        assert_eq!(quotas.len(), SEGMENTS, "{quotas:?}");
        assert!(quotas.values().all(|r| *r == u64::from(QUOTA)), "nothing booked yet: {quotas:?}");
        let slots: Vec<String> = quotas.keys().cloned().collect();
        let slot_set: HashSet<String> = slots.iter().cloned().collect();

        // The storm, and the kill.
        let (dir, outcomes, acked_at_kill, kill_at) = storm(server, &patients, &slots, round, *kill).await;
        let mut acked: Vec<Ack> = Vec::new();
        let mut sold_out = HashSet::new();
        let mut unanswered = HashSet::new();
        let mut others = Vec::new();
        for (i, o) in outcomes.into_iter().enumerate() {
            match o {
                Outcome::Acked(a) => acked.push(a),
                Outcome::SoldOut => {
                    sold_out.insert(i);
                }
                Outcome::Other(status, body) => {
                    others.push(format!("{status} {body}"));
                    unanswered.insert(i);
                }
                Outcome::NoAnswer => {
                    unanswered.insert(i);
                }
            }
        }
        // The storm's own answers are sane: no place handed out twice, no more than the quota.
        let mut seen = HashSet::new();
        for a in &acked {
            assert!(slot_set.contains(&a.slot_id), "round {round}: acknowledged in another slot: {a:?}");
            assert!((1..=u64::from(QUOTA)).contains(&a.place), "round {round}: place out of range: {a:?}");
            assert!(seen.insert((a.slot_id.clone(), a.place)), "round {round}: place acknowledged twice: {a:?}");
        }

        // A new process on the same data directory.
        tokio::time::sleep(*down).await;
        let restart = Instant::now();
        let s = TestServer::start(opts(Some(dir))).await;
        let restart_took = restart.elapsed();

        // 1. Every acknowledged hold is there, for its owner, with the same slot and place.
        let checks = stream::iter(acked.iter())
            .map(|a| {
                let (s, patients) = (&s, &patients);
                async move {
                    let r = s.get(&format!("/api/v1/appointments/{}", a.id), Some(&patients[a.patient].token)).await;
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    (a, status, body, Utc::now())
                }
            })
            .buffered(SETUP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut found = 0;
        let mut lost = Vec::new();
        for (a, status, body, read_at) in &checks {
            if *status != 200 {
                lost.push(format!("{} (patient {}): {status} {body}", a.id, a.patient));
                continue;
            }
            assert_eq!(body["slot_id"], a.slot_id.as_str(), "round {round}: slot changed: {body}");
            assert_eq!(body["place"], a.place, "round {round}: place changed: {body}");
            match body["status"].as_str() {
                Some("held" | "confirmed") => {}
                Some("expired") => assert!(
                    a.created_at + ttl <= *read_at,
                    "round {round}: expired before its time ({} + {HOLD_TTL_SECS} s > {read_at}): {body}",
                    a.created_at
                ),
                _ => panic!("round {round}: acknowledged hold in a wrong state: {body}"),
            }
            found += 1;
        }
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged hold(s) lost after kill -9:\n{}\n--- server stderr ---\n{}",
            lost.len(),
            lost.join("\n"),
            s.stderr()
        );

        // 2. Nobody has two appointments in the session; a sold-out answer left nothing behind;
        //    an unanswered request left one appointment or none.
        let mine = appointments_in(&s, &patients, &slot_set).await;
        let duplicates: Vec<usize> = (0..PATIENTS).filter(|i| mine[*i].len() > 1).collect();
        let acked_by: HashMap<usize, &Ack> = acked.iter().map(|a| (a.patient, a)).collect();
        let mut written_unacked = 0;
        for (i, list) in mine.iter().enumerate() {
            if let Some(a) = acked_by.get(&i) {
                assert!(list.iter().any(|x| x["id"] == a.id.as_str()), "round {round}: patient {i}: {list:?}");
            } else if sold_out.contains(&i) {
                assert!(list.is_empty(), "round {round}: patient {i} was told sold out but holds {list:?}");
            } else if !list.is_empty() {
                written_unacked += 1;
            }
        }

        // 3. The staff view: no place twice in a segment, no person twice, nothing unknown; and the
        //    schedule's places left are the quota minus the live appointments.
        let known: HashSet<&str> = mine.iter().flatten().filter_map(|a| a["id"].as_str()).collect();
        let mut consistent = false;
        for _ in 0..20 {
            let before = remaining(&s, &doctor, date, session).await;
            let read_at = Utc::now();
            let list = live(&s, &staff, session).await;
            let after = remaining(&s, &doctor, date, session).await;
            // The restarted schedule rebuilt its book from the store: every acknowledged hold that
            // cannot have lapsed yet is live there too.
            let ids: HashSet<&str> = list.iter().filter_map(|a| a["id"].as_str()).collect();
            for a in &acked {
                if a.created_at + ttl > read_at + Days::seconds(1) {
                    assert!(ids.contains(a.id.as_str()), "round {round}: acknowledged hold not live: {a:?}");
                }
            }
            let mut places = HashSet::new();
            let mut people = HashSet::new();
            let mut per_slot: HashMap<String, u64> = HashMap::new();
            for a in &list {
                let slot = a["slot_id"].as_str().expect("slot_id").to_string();
                assert!(known.contains(a["id"].as_str().unwrap()), "round {round}: unknown live appointment {a}");
                assert!(
                    places.insert((slot.clone(), a["place"].as_u64().unwrap())),
                    "round {round}: place held twice: {a}\n{list:?}"
                );
                assert!(people.insert(a["patient_id"].clone()), "round {round}: person twice in the session: {a}");
                *per_slot.entry(slot).or_default() += 1;
            }
            if before == after {
                for (slot, left) in &before {
                    let taken = per_slot.get(slot).copied().unwrap_or(0);
                    assert_eq!(*left, u64::from(QUOTA) - taken, "round {round}: {slot}: {before:?} vs {per_slot:?}");
                }
                consistent = true;
                break;
            }
            // A hold lapsed between the reads: read again.
        }
        assert!(consistent, "round {round}: the schedule never held still");

        // 4. Retries with the same Idempotency-Key: the same appointment if it exists, one booking
        //    otherwise (a second retry answers the same).
        let client = s.client().clone();
        let retried = stream::iter((0..PATIENTS).filter(|i| !sold_out.contains(i)))
            .map(|i| {
                let (client, base, patients, mine) = (&client, &s.base, &patients, &mine);
                let slot = &slots[i % slots.len()];
                async move {
                    let key = idempotency_key(round, i);
                    let (status, body) = book(client, base, &patients[i], slot, &key).await.expect("retry");
                    let existing = mine[i].first().and_then(|a| a["id"].as_str());
                    match (status, existing) {
                        (201, Some(id)) => {
                            assert_eq!(body["appointment"]["id"], id, "round {round}: retry of {i} booked again");
                            (0, None)
                        }
                        (201, None) => {
                            let a = ack_of(i, &body);
                            let (status2, body2) = book(client, base, &patients[i], slot, &key).await.expect("retry");
                            assert_eq!(status2, 201, "round {round}: second retry of {i}: {body2}");
                            assert_eq!(body2["appointment"]["id"], a.id.as_str(), "round {round}: retried twice");
                            (1, Some(a))
                        }
                        (409, None) if body["error"]["code"] == "sold_out" => (0, None),
                        _ => panic!("round {round}: retry of patient {i} (had {existing:?}): {status} {body}"),
                    }
                }
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let booked_on_retry: Vec<Ack> = retried.into_iter().filter_map(|(_, a)| a).collect();
        let mine = appointments_in(&s, &patients, &slot_set).await;
        let duplicates_after_retry = (0..PATIENTS).filter(|i| mine[*i].len() > 1).count();

        eprintln!(
            "crash round {round}: kill {kill:?} at {kill_at:?} ({acked_at_kill} acked then), down {down:?}; answers: {} acked, \
             {} sold out, {} unanswered{}; restart {restart_took:?}; found after restart {found}/{}, \
             written but unacknowledged {written_unacked}, duplicates {} (after retries {duplicates_after_retry}), \
             booked on retry {}",
            acked.len(),
            sold_out.len(),
            unanswered.len(),
            if others.is_empty() { String::new() } else { format!(" ({} other answers: {:?})", others.len(), others) },
            acked.len(),
            duplicates.len(),
            booked_on_retry.len(),
        );
        assert!(duplicates.is_empty(), "round {round}: patients with two appointments: {duplicates:?}");
        assert_eq!(duplicates_after_retry, 0, "round {round}: a retry booked twice");

        // 5. Lapsed holds are freed: nothing was paid, so every hold expires and the session is
        //    back to its full quota.
        let last = acked.iter().chain(&booked_on_retry).map(|a| a.created_at).max().unwrap_or_else(Utc::now);
        let deadline =
            Instant::now() + (last + ttl - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(10);
        let freed_wait = Instant::now();
        loop {
            let left = remaining(&s, &doctor, date, session).await;
            let list = live(&s, &staff, session).await;
            if list.is_empty() && left.values().all(|r| *r == u64::from(QUOTA)) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: holds not freed {HOLD_TTL_SECS} s after they lapsed: {left:?}, {} live",
                list.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The schedule answers from memory, the appointment from the store: the expiry's write may
        // land a moment after memory shows the places free.
        let caught_up = Instant::now();
        let mine = loop {
            let mine = appointments_in(&s, &patients, &slot_set).await;
            let pending: Vec<&Value> = mine.iter().flatten().filter(|a| a["status"] != "expired").collect();
            if pending.is_empty() {
                break mine;
            }
            eprintln!(
                "crash round {round}: {} not yet expired in the store {:?} after the schedule showed them freed: {}",
                pending.len(),
                caught_up.elapsed(),
                pending[0]
            );
            assert!(
                caught_up.elapsed() < Duration::from_secs(3),
                "round {round}: unpaid holds did not lapse in the store: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let total: usize = mine.iter().map(Vec::len).sum();
        eprintln!(
            "crash round {round}: all {total} unpaid holds expired, {SEGMENTS} x {QUOTA} places free again \
             ({:?} after the checks)",
            freed_wait.elapsed()
        );
        server = s;
    }
    drop(server);
    eprintln!("crash: {} rounds in {:?}", rounds.len(), t0.elapsed());
}
