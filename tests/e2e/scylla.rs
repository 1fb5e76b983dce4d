//! The binary on the ScyllaDB backend (feature `scylla`): durable data, sessions and codes on a
//! CQL server instead of the embedded store, here kassandra (a CQL v4 server in memory, run by
//! this test: `hospital_testkit::kassandra`, patched to answer what the backend writes). The
//! store's conformance suite checks each statement (`store/tests/kassandra.rs`); this checks the
//! wiring: the schema made at start-up, the demo hospital seeded, the first administrator made
//! with the CLI (into ScyllaDB), a login, a patient, a hold, a
//! WeChat Pay notification confirming it, a second node on the same keyspace refused (the node
//! lease), all of it still there after `kill -9` once the dead node's lease ran out, and the
//! audit chain verified by the CLI on the cluster.
//!
//! Run by `./scripts/test.sh` (`cargo test -p hospital --features scylla --test e2e scylla::`).

use hospital_testkit::kassandra::KassandraServer;

use crate::booking_flow::{
    ahead, appointment, appointment_becomes, book, book_ok, booking_opts, conflict, create_session, doctors, order,
    pay, person, remaining,
};
use crate::harness::{scylla_env, Opts, TestServer};

fn on(cql: &KassandraServer) -> Opts {
    scylla_env(&cql.uri())
        .into_iter()
        .fold(booking_opts(), |o, (k, v)| o.env(k, v))
        .env("HOSPITAL_SCYLLA_CREATE_SCHEMA", 1)
        .env("HOSPITAL_SCYLLA_NODE_LEASE_SECS", NODE_LEASE_SECS)
}

const NODE_LEASE_SECS: u64 = 3;

/// The binary with `args` on the test's keyspace, in a fresh data directory (kept by the caller
/// for as long as the process runs).
fn hospital(uri: &str, args: &[&str], dir: &std::path::Path) -> std::process::Command {
    let mut cmd = crate::harness::command(args, dir);
    cmd.envs(scylla_env(uri));
    cmd
}

/// The binary's administrative command `args` on the test's keyspace (it needs no node lease).
fn cli(uri: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    hospital(uri, args, dir.path()).env("HOSPITAL_NEW_STAFF_PASSWORD", "Cluster-admin-2026").output().unwrap()
}

/// Starts a second node on the keyspace and returns its exit status and stderr once it ends
/// (it must end by itself: a node that starts is killed after a minute and fails the test).
fn second_node(uri: &str) -> (std::process::ExitStatus, String) {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = hospital(uri, &["--listen", "127.0.0.1:0"], dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            panic!("a second node on the same keyspace kept running");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

#[tokio::test]
async fn the_platform_books_and_pays_on_the_scylladb_backend_and_keeps_it_across_kill_9() {
    let cql = KassandraServer::start();
    let s = TestServer::start(on(&cql)).await;
    // The first administrator of a cluster, made with the CLI: in ScyllaDB, where the server
    // finds it (not in a local directory).
    let made = cli(&cql.uri(), &["create-staff", "--username", "ops", "--name", "运维", "--roles", "admin"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let admin = s.staff_login("ops", "Cluster-admin-2026").await;
    let docs = doctors(&s).await;
    assert!(!docs.is_empty(), "the demo hospital was seeded into ScyllaDB");
    let date = ahead(20);
    let (session, slots) = create_session(&s, &admin, &docs[0], date, 30, 3, None).await;

    let a = person(&s, 1).await;
    let held = book_ok(&s, &a, &slots[0]).await;
    let (a_appt, a_order) =
        (held["appointment"]["id"].as_str().unwrap().to_string(), held["order"]["id"].as_str().unwrap().to_string());
    assert_eq!(held["appointment"]["place"], 1, "{held}");
    pay(&s, &a, &a_order).await;
    let confirmed = appointment_becomes(&s, &a, &a_appt, "confirmed").await;
    let slip = confirmed["slip_no"].as_str().expect("a slip once paid").to_string();
    let b = person(&s, 2).await;
    let b_held = book_ok(&s, &b, &slots[0]).await;
    assert_eq!(b_held["appointment"]["place"], 2, "{b_held}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![1]);

    // A second node on the same keyspace would run a second schedule actor for the same doctor:
    // it refuses to start, naming the node that holds the lease.
    let uri = cql.uri();
    let (status, err) = tokio::task::spawn_blocking(move || second_node(&uri)).await.unwrap();
    assert!(!status.success(), "the second node must not start: {err}");
    assert!(err.contains("another node") && err.contains(":"), "it says who holds the keyspace: {err}");

    // kill -9: the rows, the sessions (kv_entries) and the actors' state come back from ScyllaDB
    // once the dead node's lease has run out.
    let dir = s.kill_9();
    tokio::time::sleep(std::time::Duration::from_secs(NODE_LEASE_SECS + 1)).await;
    let s = TestServer::start(on(&cql).data_dir(dir)).await;
    let again = appointment(&s, &a, &a_appt).await;
    assert_eq!(again["status"], "confirmed", "{again}");
    assert_eq!(again["slip_no"], slip.as_str(), "{again}");
    assert_eq!(order(&s, &a, &a_order).await["status"], "paid");
    let b_again = appointment(&s, &b, b_held["appointment"]["id"].as_str().unwrap()).await;
    assert_eq!(b_again["status"], "held", "{b_again}");
    assert_eq!(remaining(&s, &docs[0], date, &session).await, vec![1], "the schedule actor reloaded both places");

    let c = person(&s, 3).await;
    assert_eq!(book_ok(&s, &c, &slots[0]).await["appointment"]["place"], 3);
    let d = person(&s, 4).await;
    conflict(book(&s, &d, &slots[0]).await, "sold_out").await;
    let list = s.get_json("/api/v1/appointments", Some(&c.token)).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");

    // The rows are on the CQL server, not in the data directory's embedded store.
    let id: uuid::Uuid = a_appt.parse().unwrap();
    let cql_store = hospital_store::scylla::ScyllaStore::connect_with(&cql.uri(), "e2e", true).await.unwrap();
    let row = cql_store
        .session()
        .query_unpaged("SELECT body FROM e2e.appointments WHERE appointment_id = ?", (id,))
        .await
        .unwrap()
        .into_rows_result()
        .unwrap()
        .maybe_first_row::<(String,)>()
        .unwrap();
    assert!(row.is_some_and(|(body,)| body.contains(&slip)), "the confirmed appointment is in ScyllaDB's table");

    // The staff's audit chain, verified from the CLI against the cluster.
    let out = cli(&cql.uri(), &["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("chain main: intact"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
