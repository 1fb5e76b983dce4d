//! The OpenAPI document is true: Schemathesis (pinned in scripts/test.sh) generates requests
//! from `/api/openapi.json` against a real server and checks every answer's status code, content
//! type and body against what the document says of that operation. Run as a patient, as an
//! administrator (the back office), and for the logout operations on their own tokens (they end
//! the session the other runs use).
//!
//! Not run: the sandbox's own routes (`/sandbox/...`): they play external systems in development
//! and are mounted only in sandbox mode, so they are not part of the platform's API.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{phone, Opts, TestServer};

/// Examples per operation and phase: enough to reach each documented answer, small enough that
/// the three runs take about a minute on two cores.
const MAX_EXAMPLES: &str = "12";

fn schemathesis(s: &TestServer, token: &str, filter: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new("st");
    cmd.current_dir(dir.path())
        .arg("run")
        .arg(s.url("/api/openapi.json"))
        .args(["--checks", "status_code_conformance,response_schema_conformance,content_type_conformance"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: with two threads Python 3.11's `ast.parse` (which Hypothesis calls to
        // describe its filters) can fail with "AST constructor recursion depth mismatch", a
        // runtime error of the tool, not of our document.
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "7", "--no-shrink", "--workers", "1"])
        .args(["--request-timeout", "20", "--max-failures", "200"])
        .args(filter)
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run Schemathesis (`st`): {e}; install it with `pip install schemathesis==4.32.5` (scripts/test.sh does)")
    });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let summary: Vec<&str> =
        text.lines().map(str::trim).filter(|l| l.starts_with("Tested:") || l.contains(" generated, ")).collect();
    println!("schemathesis {filter:?}: {summary:?}");
    assert!(
        out.status.success(),
        "Schemathesis found answers the document does not describe ({filter:?}):\n{text}\n--- server stderr (end) ---\n{}",
        tail(&s.stderr(), 4000)
    );
    assert!(text.contains("Tested:"), "Schemathesis tested nothing:\n{text}");
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_answer_the_document_does_not_describe() {
    let s = TestServer::start(
        Opts::new()
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_PER_SECOND", 1_000_000)
            .env("HOSPITAL_GATEWAY__LIMITS__PER_IP_BURST", 1_000_000),
    )
    .await;
    let patient = s.login(&phone(71)).await;
    let admin = s.staff_login("admin", "admin-demo-2026").await;
    let throwaway = s.login(&phone(72)).await;
    tokio::task::spawn_blocking(move || {
        let logout = "^/api/v1/auth/logout";
        schemathesis(&s, &patient, &["--exclude-path-regex", &format!("^/sandbox|{logout}|^/api/v1/(admin|staff)/")]);
        schemathesis(&s, &admin, &["--include-path-regex", "^/api/v1/(admin|staff)/"]);
        schemathesis(&s, &throwaway, &["--include-path-regex", logout]);
    })
    .await
    .expect("schemathesis runs");
}

/// Two different types never share a component name (the doctor's schedule was described with
/// the login session's schema because both were `SessionView`): every schema referenced by an
/// operation is the one its Rust type produces. Checked here on the served document: the
/// session list and the schedule have the fields their handlers send.
#[tokio::test]
async fn each_component_describes_one_type() {
    let s = TestServer::start(Opts::new()).await;
    let doc = s.get_json("/api/openapi.json", None).await;
    let schemas = doc["components"]["schemas"].as_object().expect("components");
    let props = |name: &str| -> Vec<String> {
        let s = schemas.get(name).unwrap_or_else(|| panic!("no component {name}"));
        let mut p: Vec<String> = s["properties"].as_object().expect("properties").keys().cloned().collect();
        p.sort();
        p
    };
    let response_ref = |path: &str| -> String {
        let op = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        let r = op.get("$ref").or_else(|| op["items"].get("$ref")).and_then(Value::as_str).unwrap_or_default();
        r.rsplit('/').next().unwrap_or_default().to_string()
    };
    let schedule = response_ref("/api/v1/doctors/{id}/schedule");
    let sessions_item = doc["components"]["schemas"][&schedule]["properties"]["sessions"]["items"]["$ref"]
        .as_str()
        .and_then(|r| r.rsplit('/').next())
        .expect("schedule sessions ref")
        .to_string();
    let logins = response_ref("/api/v1/auth/sessions");
    assert_ne!(sessions_item, logins, "the schedule's sessions and the login sessions share a schema");
    assert!(props(&sessions_item).contains(&"slots".to_string()), "{:?}", props(&sessions_item));
    assert!(props(&logins).contains(&"device".to_string()), "{:?}", props(&logins));
    // Names are unique by construction of the map; each is referenced with one meaning.
    let names: BTreeMap<&String, &Value> = schemas.iter().collect();
    assert_eq!(names.len(), schemas.len());
}
