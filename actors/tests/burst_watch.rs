//! Before a release (放号) the store makes room for the burst: the job runner's watch sees the
//! next release among the node's sessions and, within a few seconds of it, has the embedded store
//! write its memtable out, so the burst's holds do not share the cores with that flush. Against
//! the real embedded store, the real actors and the real job runner.

use chrono::{Duration as Days, Utc};
use hospital_actors::config::JobsConfig;
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, JobRunner};
use hospital_domain::{DepartmentId, DoctorId};
use hospital_store::conformance::sample_session;
use hospital_store::{EmbeddedStore, EphemeralKv, Stores};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memtable_is_written_out_before_a_release_not_long_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let jobs = JobsConfig { tick: Duration::from_secs(3600), ..JobsConfig::default() };
    let system = ActorSystem::start(ActorDeps::new(stores, ActorConfig { jobs: jobs.clone(), ..Default::default() }))
        .await
        .unwrap();
    let _runner = JobRunner::start(Arc::new(store.clone()), system.clone(), None, None, None, jobs);

    // A session released in an hour, and 8 MiB of rows written since the last flush.
    let doctor = DoctorId::new();
    let mut session = sample_session(doctor, DepartmentId::new(), Utc::now().date_naive() + Days::days(3), 5);
    session.release_at = Utc::now() + Days::hours(1);
    let id = session.id;
    system.add_sessions(doctor, vec![session]).await.expect("added");
    let value = vec![b'x'; 64 << 10];
    for i in 0..128 {
        store.put(&format!("filler:{i}"), &value, Duration::from_secs(3600)).await.unwrap();
    }
    let segments = || store.engine().stats().segments;
    assert_eq!(segments(), 0, "nothing written out yet");

    // An hour ahead is not a burst coming: two of the watch's seconds change nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(segments(), 0, "written out an hour before the release");

    // The release moved to four seconds from now: written out before it comes.
    let release = Utc::now() + Days::seconds(4);
    system.update_session(doctor, id, None, Some(release)).await.expect("moved");
    let deadline = Instant::now() + Duration::from_secs(4);
    while segments() == 0 {
        assert!(Instant::now() < deadline, "not written out before the release: {:?}", store.engine().stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(Utc::now() < release, "written out at {} for a release at {release}", Utc::now());
    assert_eq!(store.get("filler:0").await.unwrap().as_deref(), Some(&value[..]), "the rows read the same");
}
