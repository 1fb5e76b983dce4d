//! The audit log end to end: staff actions recorded through the gateway's `StaffAudit` helper
//! (the sandbox route) carry the caller's staff id, roles and address and are numbered in one
//! chain; only staff can record. Then, with the server stopped, `hospital audit verify` checks
//! the real data directory's chain, `hospital audit export` writes a patient's access history,
//! and after one byte of one stored entry is changed, `verify` exits non-zero naming that entry.

use hospital_domain::audit::AuditEntry;
use hospital_store::embedded::keys::Key;
use hospital_store::embedded::tables::AUDIT_LOG;
use hospital_store::EmbeddedStore;
use serde_json::json;
use std::path::Path;
use std::process::Output;

use crate::harness::{assert_error, expect_json, phone, Opts, TestServer};

fn hospital(args: &[&str], data_dir: &Path) -> Output {
    crate::harness::cli(args, data_dir).output().expect("run hospital")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_actions_are_chained_verified_exported_and_tampering_is_named() {
    let s = TestServer::start(Opts::new()).await;
    let staff = s.staff_login("admin", "admin-demo-2026").await;
    let patient = s.login(&phone(4242)).await;
    let account = s.get_json("/api/v1/me", Some(&patient)).await["id"].as_str().unwrap().to_string();

    let mut entries = Vec::new();
    for n in 1..=3 {
        let body = json!({
            "action": "record.read", "target_kind": "record", "target_id": format!("r-{n}"),
            "account_id": account, "purpose": "treatment",
        });
        let e = expect_json(s.post("/sandbox/audit", Some(&staff), body).await, 201).await;
        entries.push(e);
    }
    let other = json!({ "action": "staff.create", "target_kind": "staff", "target_id": "s-9" });
    entries.push(expect_json(s.post("/sandbox/audit", Some(&staff), other).await, 201).await);
    let seqs: Vec<u64> = entries.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    let first = &entries[0];
    assert_eq!(first["chain"], "main");
    assert_eq!(first["event"]["actor"]["kind"], "staff");
    assert!(first["event"]["actor"]["roles"].as_array().unwrap().contains(&json!("admin")), "{first}");
    assert_eq!(first["event"]["source_ip"], "127.0.0.1");
    assert_eq!(first["event"]["concerning"]["account"], account.as_str());
    assert_eq!(entries[1]["prev_hash"], first["hash"], "chained");

    // Only staff record; bad names are refused with the field named.
    let body = json!({ "action": "record.read", "target_kind": "record", "target_id": "r-1" });
    assert_error(s.post("/sandbox/audit", Some(&patient), body.clone()).await, 403, "forbidden").await;
    assert_error(s.post("/sandbox/audit", None, body).await, 401, "unauthenticated").await;
    let bad = json!({ "action": "Record.Read", "target_kind": "record", "target_id": "r-1" });
    let e = assert_error(s.post("/sandbox/audit", Some(&staff), bad).await, 422, "invalid_field").await;
    assert_eq!(e["field"], "action");

    // The refused request is audited too (by the route's permission gate, outcome `failed`).
    let dir = s.stop();
    let out = hospital(&["audit", "verify"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("chain main: intact, 5 entries, head seq 5"), "{}", text(&out));

    // The patient's access history: their three reads, newest first, as the stored entries.
    let out = hospital(&["audit", "export", "--account", &account], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let exported: Vec<AuditEntry> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(exported.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(exported.iter().all(|e| e.hash == e.compute_hash()));
    let out = hospital(&["audit", "export", "--action", "staff.create", "--format", "csv"], dir.path());
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("main,4,"), "{csv}");

    // Change one byte of entry 2 as stored ("r-2" -> "r-7"), through the store's own engine.
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let rows = store.engine().read(|r| r.scan_stored(AUDIT_LOG, Key::new().str("main").bytes())).unwrap();
        let (key, expires, mut payload) =
            rows.into_iter().find(|(k, _, _)| k.ends_with(&2u64.to_be_bytes())).expect("entry 2 is stored");
        let at = payload.windows(5).position(|w| w == b"\"r-2\"").expect("its target id") + 3;
        payload[at] = b'7';
        store
            .engine()
            .write(move |ctx| {
                ctx.put_raw_until(AUDIT_LOG, key, payload, expires);
                Ok(())
            })
            .await
            .unwrap();
    }
    let out = hospital(&["audit", "verify"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("BROKEN at seq 2: hash does not match"), "{}", text(&out));
}
