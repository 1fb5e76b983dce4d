//! The fan-out scenario, small, as a correctness check (no timing assertions): 200 sockets over
//! two loopback source addresses, watching two doctors' topics, a few changes each; every socket
//! opens, none is closed early, every update names a change the driver made, and every socket
//! ends with the LAST value of its doctor (coalescing may skip intermediate values, never the
//! last). Runs the debug `hospital` binary that `cargo test --workspace` builds for the e2e tests
//! (built here with `cargo build --bin hospital` if it is missing).

use std::path::PathBuf;
use std::time::Duration;

fn hospital_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("HOSPITAL_BIN") {
        return b.into();
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace.join("target"));
    let bin = target.join("debug").join("hospital");
    if !bin.exists() {
        let st = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--bin", "hospital"])
            .current_dir(&workspace)
            .status()
            .expect("run cargo build --bin hospital");
        assert!(st.success(), "cargo build --bin hospital failed");
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_gets_the_last_value() {
    let out = tempfile::tempdir().expect("tempdir");
    let cfg = hospital_fanout_load::Config {
        sockets: 200,
        changes_per_second: 10.0,
        doctors: 2,
        duration: Duration::from_secs(2),
        sockets_per_account: 50,
        sockets_per_source: 100,
        connect_concurrency: 32,
        hospital_bin: hospital_bin(),
        nodes: 1,
        shards: 1,
        shard_bin: None,
        node_dir: None,
        out_dir: out.path().to_path_buf(),
        progress: false,
    };
    let r = hospital_fanout_load::run(cfg).await.expect("the scenario runs");
    let p = &r.phases[0];
    let log = std::fs::read_to_string(out.path().join("hospital.log")).unwrap_or_default();
    assert_eq!(r.sockets, 200, "descriptor limit too low for 200 sockets");
    assert_eq!(p.sockets_open, 200, "sockets that did not open: {:?}\n{log}", p.first_open_error);
    assert_eq!(p.changes, 20);
    assert_eq!(p.changes_failed, 0, "{log}");
    assert_eq!(p.closed_early, 0, "sockets closed by the server during the run\n{log}");
    assert_eq!(p.unmatched, 0, "updates that named no change the driver made");
    assert_eq!(p.repeats, 0, "updates naming a change their socket had already seen");
    assert_eq!(p.out_of_order, 0, "updates older than one their socket had already received");
    assert_eq!(p.sockets_with_last_value, 200, "every socket must end with the last value");
    assert!(p.deliveries >= 200, "at least the last value reached each socket: {}", p.deliveries);
    assert!(
        p.deliveries <= p.deliveries_possible,
        "no update delivered twice: {} > {}",
        p.deliveries,
        p.deliveries_possible
    );
    // The report renders (Markdown, JSON, plots).
    hospital_fanout_load::report::write_all(&r, out.path()).expect("report");
    for f in ["report.md", "fanout.json", "latency.png", "throughput.png"] {
        assert!(out.path().join(f).exists(), "{f} written");
    }
}

/// Three server processes sharing a Redis, the sockets held by two client processes: every socket
/// (on whichever node) gets the last value of changes made on the first node, none twice, none
/// unknown; each node holds its share of the sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_and_two_client_processes_deliver_everything() {
    let out = tempfile::tempdir().expect("tempdir");
    let cfg = hospital_fanout_load::Config {
        sockets: 150,
        changes_per_second: 10.0,
        doctors: 2,
        duration: Duration::from_secs(2),
        sockets_per_account: 50,
        sockets_per_source: 100,
        connect_concurrency: 32,
        hospital_bin: hospital_bin(),
        nodes: 3,
        shards: 2,
        shard_bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_hospital-fanout-load"))),
        node_dir: None,
        out_dir: out.path().to_path_buf(),
        progress: false,
    };
    let r = hospital_fanout_load::run(cfg).await.expect("the scenario runs");
    let p = &r.phases[0];
    let log = std::fs::read_to_string(out.path().join("hospital-1.log")).unwrap_or_default();
    assert_eq!((r.nodes, r.client_processes), (3, 2));
    assert_eq!(p.processes.len(), 3, "one figure per node");
    assert_eq!(p.sockets_open, 150, "sockets that did not open: {:?}\n{log}", p.first_open_error);
    assert_eq!(p.changes, 20);
    assert_eq!(p.changes_failed, 0);
    assert_eq!(p.closed_early, 0, "sockets closed by a server during the run\n{log}");
    assert_eq!(p.unmatched, 0, "updates that named no change the driver made");
    assert_eq!(p.repeats, 0, "updates naming a change their socket had already seen");
    assert_eq!(p.out_of_order, 0, "updates older than one their socket had already received");
    assert_eq!(p.sockets_with_last_value, 150, "every socket on every node ends with the last value\n{log}");
    assert!(
        p.deliveries >= 150 && p.deliveries <= p.deliveries_possible,
        "{} of {}",
        p.deliveries,
        p.deliveries_possible
    );
    // The shards' arrival times came through with their reads', and no arrival is after its read.
    assert!(p.arrival_max_ms > 0.0, "no arrival time came back from the shards");
    assert!(
        p.arrival_p99_ms <= p.latency_p99_ms && p.arrival_max_ms <= p.latency_max_ms,
        "arrival p99 {} / max {} after the read's {} / {}",
        p.arrival_p99_ms,
        p.arrival_max_ms,
        p.latency_p99_ms,
        p.latency_max_ms
    );
    hospital_fanout_load::report::write_all(&r, out.path()).expect("report");
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("over 3 server process(es)") && md.contains("Memory per server process"), "{md}");
    assert!(md.contains("arrival at the client p99"), "{md}");
}
