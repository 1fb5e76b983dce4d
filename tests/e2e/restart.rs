//! Durability of the embedded store: after `kill -9` a new server on the same data directory
//! still knows the session, the account and its patients; and the ID number is encrypted at rest.

use serde_json::{json, Value};
use std::path::Path;

use crate::harness::{expect_json, ok_json, phone, Opts, TestServer};

const ID_CARD: &str = "11010519491231002X";
const PATIENT_PHONE: &str = "13700001111";

fn count_departments(tree: &Value) -> usize {
    tree.as_array().map(|a| a.iter().map(|d| 1 + count_departments(&d["children"])).sum()).unwrap_or(0)
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read data dir") {
            let path = e.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                let bytes = std::fs::read(&path).expect("read a data file");
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(path.display().to_string());
                }
            }
        }
    }
    assert!(files > 0, "the data directory holds files");
    hits
}

#[tokio::test]
async fn kill_9_then_restart_keeps_sessions_accounts_and_patients() {
    // The SMS cooldown is stored too, so it outlives the restart: keep it short.
    let opts = || Opts::new().env("HOSPITAL_GATEWAY__AUTH__SMS_COOLDOWN_SECS", 1);
    let s = TestServer::start(opts()).await;
    let p = phone(21);
    let login = s.login_full(&p, "before the crash").await;
    assert_eq!(login["new_account"], true);
    let account = login["account"]["id"].as_str().unwrap().to_string();
    let token = login["token"].as_str().unwrap().to_string();
    let departments = count_departments(&s.get_json("/api/v1/departments", None).await);

    let body = json!({ "name": "张三", "id_card_no": ID_CARD, "relation": "self", "phone": PATIENT_PHONE });
    let added = expect_json(s.post("/api/v1/me/patients", Some(&token), body).await, 201).await;
    let patient = added["id"].as_str().unwrap().to_string();
    let masked = added["id_card_no"].as_str().unwrap().to_string();
    assert_ne!(masked, ID_CARD);
    assert!(masked.contains('*') && masked.ends_with("002X") && masked.starts_with("1101"), "{masked}");
    assert_eq!(added["birth_date"], "1949-12-31", "derived from the ID number");
    assert!(!added.to_string().contains(ID_CARD), "{added}");

    let dir = s.kill_9();
    let s = TestServer::start(opts().data_dir(dir)).await;

    let me = s.get_json("/api/v1/me", Some(&token)).await;
    assert_eq!(me["id"], account.as_str(), "the session survived the crash");
    let list = s.get_json("/api/v1/me/patients", Some(&token)).await;
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], patient.as_str());
    assert_eq!(list[0]["name"], "张三");
    assert_eq!(list[0]["id_card_no"], masked.as_str(), "still masked");
    let one = s.get_json(&format!("/api/v1/me/patients/{patient}"), Some(&token)).await;
    assert_eq!(one["id_card_no"], masked.as_str());

    let again = s.login_full(&p, "after the crash").await;
    assert_eq!(again["new_account"], false, "{again}");
    assert_eq!(again["account"]["id"], account.as_str());
    assert_eq!(
        count_departments(&s.get_json("/api/v1/departments", None).await),
        departments,
        "the demo is seeded once, not again on restart"
    );
    // The same ID number again is a duplicate: the blind index survived too.
    let body = json!({ "name": "张三", "id_card_no": ID_CARD, "relation": "self" });
    let r = s.post("/api/v1/me/patients", Some(&token), body).await;
    crate::harness::assert_error(r, 409, "patient_exists").await;
    let _ = ok_json(s.get("/healthz", None).await).await;

    // A clean stop (SIGTERM exits 0), then look at the bytes on disk.
    let dir = s.stop();
    for secret in [ID_CARD, PATIENT_PHONE] {
        let hits = files_containing(dir.path(), secret.as_bytes());
        assert!(hits.is_empty(), "{secret} is stored in clear in {hits:?}");
    }
    // The scan can find things: the patient's name is stored as is.
    assert!(!files_containing(dir.path(), "张三".as_bytes()).is_empty(), "the scan reads the store");
}

/// A stop (SIGTERM) lets the request in flight finish: the second half of its body, sent after
/// the signal, is still read and answered, and then the server exits cleanly; a connection made
/// after the signal is not served, and one that never sent a byte does not hold the stop up.
#[tokio::test]
async fn a_stop_answers_the_request_in_flight_then_exits() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start(Opts::new()).await;
    // Open, with nothing sent (the header timeout is 30 s, the drain 10 s).
    let _idle = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    // A staff login that fails: the handler reads the whole body, and answers from the store
    // alone (the SMS sandbox, say, is served by this server and stops with it).
    let body = r#"{"username":"nobody","password":"not-a-password"}"#;
    let head = format!(
        "POST /api/v1/auth/staff/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let term = std::process::Command::new("kill").arg("-TERM").arg(s.pid().to_string()).status().unwrap();
    assert!(term.success());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let late = tokio::net::TcpStream::connect(s.addr()).await;
    assert!(late.is_err(), "the listener is closed once the stop began");

    sock.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(15), sock.read_to_end(&mut got))
        .await
        .expect("the server closes the connection after its answer")
        .unwrap();
    let r = crate::harness::parse_raw_response(&got).unwrap_or_else(|| panic!("no answer: {got:?}"));
    let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{got:?}"));
    assert_eq!(r.status, 401, "{v}");
    assert!(v["error"]["code"].is_string(), "{v}");
    // `stop` signals again (ignored) and asserts a clean exit.
    let (_, stderr) = s.stop_with_stderr();
    assert!(!stderr.contains("still in flight"), "the idle connection held the stop up:\n{stderr}");
}
