//! Small versions of the three storms of `hospital-load storm --scenario` as correctness checks
//! (no timing assertions), each against a debug `hospital` server started here:
//! - sold out: 200 patients, 2 doctors with 20 places each, all at once;
//! - everyone wins: 100 patients over 10 doctors x 10 places, every answer a durable hold;
//! - human paced: the sold-out storm with the taps spread over half a second.
//!
//! In each: exactly the capacity is held, no place twice, every patient gets a definite answer
//! (201 or 409 sold_out), and the staff view agrees with the answers.

use hospital_load_tests::procs::{self, HospitalServer};
use hospital_load_tests::storm::{self, Scenario, StormConfig};

async fn server() -> (HospitalServer, tempfile::NamedTempFile) {
    procs::raise_nofile();
    // The workspace's own debug `hospital` binary: `cargo test --workspace` has just built it
    // (the root package's tests need it). Building it again here, with this crate's feature set,
    // would rebuild half the dependency tree; only when it is missing (this crate tested alone)
    // is it built.
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
    (server, log)
}

/// Runs the storm and checks it: `capacity` holds, the rest sold out, nothing else.
async fn storm_is_correct(cfg: StormConfig, capacity: usize) {
    let (server, _log) = server().await;
    let run = storm::run(&server.base, &cfg).await.expect("the storm runs");
    let k = &run.correctness;
    eprintln!(
        "small {} storm: setup {:.1} s; {} attempts, {} holds, {} sold out; p50 {:.1} ms p99 {:.1} ms; {:?}",
        cfg.scenario.name(),
        run.prepared.setup_s,
        run.figures.attempts,
        run.figures.ok,
        run.figures.sold_out,
        run.figures.p50_ms,
        run.figures.p99_ms,
        k
    );
    assert!(k.problems.is_empty(), "{:?}", k.problems);
    assert_eq!(run.figures.attempts, cfg.patients);
    assert_eq!(k.capacity, capacity);
    assert_eq!(k.holds_answered, capacity, "holds == capacity");
    assert_eq!(k.holds_listed, capacity, "the staff view lists the capacity");
    assert!(k.places_distinct, "no place twice");
    assert!(k.patients_distinct, "no patient twice");
    assert!(k.all_definite, "every answer is 201 or 409 sold_out");
    assert!(k.answers_match_listing);
    assert_eq!(run.figures.sold_out, cfg.patients - capacity);
    assert_eq!(run.figures.errors(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_release_storm_is_correct() {
    let cfg = StormConfig { patients: 200, doctors: 2, slots: 20, setup_concurrency: 16, ..StormConfig::default() };
    storm_is_correct(cfg, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_everyone_wins_storm_is_correct() {
    let cfg = StormConfig {
        scenario: Scenario::EveryoneWins,
        patients: 100,
        doctors: 10,
        slots: 10,
        setup_concurrency: 16,
        ..StormConfig::default()
    };
    storm_is_correct(cfg, 100).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_human_paced_storm_is_correct() {
    let cfg = StormConfig {
        scenario: Scenario::HumanPaced,
        patients: 200,
        doctors: 2,
        slots: 20,
        spread_ms: 500,
        setup_concurrency: 16,
        ..StormConfig::default()
    };
    storm_is_correct(cfg, 40).await;
}
