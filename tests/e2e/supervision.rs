//! Supervision with the real wiring: the actor system on the real embedded store holding the demo
//! hospital. A schedule actor that panics is restarted and answers again with the same sessions;
//! its neighbours are untouched. (The binary cannot inject a fault over HTTP, so this one runs
//! in-process, with `hospital-actors`' `fault-injection` feature.)

use chrono::{Days, Utc};
use hospital::demo::{demo_hospital, FEATURED_DOCTOR, SCHEDULE_DAYS};
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, SystemStats};
use hospital_domain::time::HospitalZone;
use hospital_store::{CatalogStore, EmbeddedStore, ScheduleStore, Stores};
use std::sync::Arc;
use std::time::Duration;

async fn wait_for(system: &ActorSystem, what: &str, ok: impl Fn(&SystemStats) -> bool) -> SystemStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = system.stats().await.expect("stats");
        if ok(&stats) {
            return stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicked_schedule_actor_is_restarted_with_the_demo_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open the embedded store");
    let zone = HospitalZone::default();
    let today = zone.local_date(Utc::now());
    let demo = demo_hospital(today, zone);
    store.put_departments(&demo.departments).await.unwrap();
    store.put_doctors(&demo.doctors).await.unwrap();
    store.put_sessions(&demo.sessions).await.unwrap();
    store.put_hospital(&demo.hospital).await.unwrap();

    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let system =
        ActorSystem::start(ActorDeps::new(stores, ActorConfig { zone, ..ActorConfig::default() })).await.unwrap();

    let wang = demo.doctors.iter().find(|d| d.name == FEATURED_DOCTOR).expect("the featured doctor").id;
    let neighbour = demo.doctors.iter().find(|d| d.id != wang).unwrap().id;
    let to = today + Days::new(SCHEDULE_DAYS - 1);

    let before = system.get_schedule(wang, today, to).await.unwrap();
    assert!(!before.is_empty(), "the demo schedules the featured doctor");
    let mut expected: Vec<_> = demo.sessions.iter().filter(|s| s.doctor_id == wang && s.date <= to).cloned().collect();
    expected.sort_by_key(|s| (s.date, s.period));
    let sessions =
        |list: &[hospital_actors::SessionAvailability]| list.iter().map(|a| a.session.clone()).collect::<Vec<_>>();
    assert_eq!(sessions(&before), expected, "the actor answers with the seeded sessions");
    for a in &before {
        let quotas: Vec<u32> = a.session.segments.iter().map(|s| s.quota).collect();
        assert_eq!(a.remaining, quotas, "nothing is booked yet");
    }
    let neighbour_before = system.get_schedule(neighbour, today, to).await.unwrap();
    let wang_actor = system.schedule(wang).await.unwrap().get_id();
    let neighbour_actor = system.schedule(neighbour).await.unwrap().get_id();
    let stats = system.stats().await.unwrap();
    assert_eq!((stats.schedules.restarts, stats.schedules.failures, stats.schedules.live), (0, 0, 2));

    system.inject_schedule_fault(wang).await.unwrap();
    let stats = wait_for(&system, "a restart", |s| s.schedules.restarts >= 1).await;
    assert_eq!(stats.schedules.restarts, 1, "{stats:?}");
    assert_eq!(stats.schedules.failures, 1, "{stats:?}");
    assert_eq!(stats.schedules.given_up, 0, "{stats:?}");

    let after = system.get_schedule(wang, today, to).await.unwrap();
    assert_eq!(sessions(&after), sessions(&before), "the restarted actor reloaded the same sessions");
    assert_eq!(
        after.iter().map(|a| a.remaining.clone()).collect::<Vec<_>>(),
        before.iter().map(|a| a.remaining.clone()).collect::<Vec<_>>()
    );
    assert_ne!(system.schedule(wang).await.unwrap().get_id(), wang_actor, "a new actor replaced the panicked one");
    assert_eq!(system.schedule(neighbour).await.unwrap().get_id(), neighbour_actor, "the neighbour kept running");
    assert_eq!(sessions(&system.get_schedule(neighbour, today, to).await.unwrap()), sessions(&neighbour_before));
    assert_eq!(system.stats().await.unwrap().schedules.live, 2);

    system.shutdown().await;
}
