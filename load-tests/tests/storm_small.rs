//! A small release storm as a correctness check (no timing assertions): 200 patients, 2 doctors
//! with 20 places each, against a debug `hospital` server started here. Exactly the capacity is
//! held, no place twice, every patient gets a definite answer (201 or 409 sold_out), and the
//! staff view agrees with the answers.

use hospital_load_tests::procs::{self, HospitalServer};
use hospital_load_tests::storm::{self, StormConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_release_storm_is_correct() {
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
    let server = tokio::task::spawn_blocking(move || HospitalServer::start(&bin, log.path()))
        .await
        .unwrap()
        .expect("start the hospital server");
    let cfg = StormConfig { patients: 200, doctors: 2, slots: 20, setup_concurrency: 16, ..StormConfig::default() };
    let run = storm::run(&server.base, &cfg).await.expect("the storm runs");
    let k = &run.correctness;
    eprintln!(
        "small storm: setup {:.1} s; {} attempts, {} holds, {} sold out; p50 {:.1} ms p99 {:.1} ms; {:?}",
        run.prepared.setup_s,
        run.figures.attempts,
        run.figures.ok,
        run.figures.sold_out,
        run.figures.p50_ms,
        run.figures.p99_ms,
        k
    );
    assert!(k.problems.is_empty(), "{:?}", k.problems);
    assert_eq!(run.figures.attempts, 200);
    assert_eq!(k.capacity, 40);
    assert_eq!(k.holds_answered, 40, "holds == capacity");
    assert_eq!(k.holds_listed, 40, "the staff view lists the capacity");
    assert!(k.places_distinct, "no place twice");
    assert!(k.patients_distinct, "no patient twice");
    assert!(k.all_definite, "every answer is 201 or 409 sold_out");
    assert!(k.answers_match_listing);
    assert_eq!(run.figures.sold_out, 160);
    assert_eq!(run.figures.errors(), 0);
}
