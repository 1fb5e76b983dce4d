//! `hospital-load chat`, small, as a correctness check (no timing assertions): 50 conversations
//! and 5 agents over real WebSockets against a debug `hospital` server started here, 300 messages
//! alternately from the patient and the agent; every message is acknowledged, delivered live to
//! the other side exactly once, and found afterwards in the stored history with the number it was
//! acknowledged with (durable before acknowledged).
//!
//! The Node relay half of the command needs `npm ci` in load-tests/node-ws; it is run by the
//! command itself (`hospital-load chat`), not here.

use hospital_load_tests::chat::{self, ChatConfig};
use hospital_load_tests::procs::{self, HospitalServer};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_delivered_and_durable() {
    procs::raise_nofile();
    // The workspace's debug binary (see storm_small.rs), built only when missing.
    let built = procs::target_dir().join("debug").join("hospital");
    let bin = if built.exists() {
        built
    } else {
        tokio::task::spawn_blocking(|| procs::build_hospital(false)).await.unwrap().expect("build hospital")
    };
    let log = tempfile::NamedTempFile::new().unwrap();
    let path = log.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || HospitalServer::start(&bin, &path, 0))
        .await
        .unwrap()
        .expect("start the hospital server");
    let cfg = ChatConfig {
        conversations: 50,
        agents: 5,
        rate: 100.0,
        duration: Duration::from_secs(3),
        setup_concurrency: 16,
        ..ChatConfig::default()
    };
    let f = chat::run_hospital(&server.base, &cfg).await.expect("the chat run");
    eprintln!("{}", chat::table(std::slice::from_ref(&f)));
    let server_log = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(f.problems.is_empty(), "{:?}\n{server_log}", f.problems);
    for (name, d) in [("patient→agent", &f.patient_to_agent), ("agent→patient", &f.agent_to_patient)] {
        assert_eq!(d.sent, 150, "{name}: half the messages each way");
        assert_eq!(d.acked, d.sent, "{name}: every message acknowledged");
        assert_eq!(d.delivered, d.acked, "{name}: every acknowledged message delivered live");
        assert_eq!(d.strays, 0, "{name}: no frame twice, none unknown");
    }
    assert_eq!(f.durable, Some(300), "every acknowledged message in the stored history with its number");
    assert!(f.ok());
}
