//! A segment's closing to booking is published (BOOK-2): adding a session schedules its
//! `closes:` job at the next segment's closing; a run of the job publishes the session's places
//! with `open_from` past every segment that has closed and moves the job on to the next closing;
//! re-timing the segments moves it too; once none is left open, a run ends it. Against the real
//! embedded store and the real job runner, in a zone where it is just past noon, so that the
//! morning's segments are over and the afternoon's to come whatever the hour the test runs at.

use chrono::{Duration as Days, NaiveTime, Timelike, Utc};
use hospital_actors::config::JobsConfig;
use hospital_actors::events::EventBus;
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem, Events, JobRunner};
use hospital_domain::catalog::{Doctor, DoctorTitle};
use hospital_domain::jobs::Job;
use hospital_domain::live::{Availability, TopicEvent};
use hospital_domain::schedule::Segment;
use hospital_domain::time::HospitalZone;
use hospital_domain::{DepartmentId, DoctorId, SessionId};
use hospital_store::conformance::sample_session;
use hospital_store::{CatalogStore, EmbeddedStore, JobStore, PendingEvent, ScheduleStore, Stores};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The availability updates the actors publish on doctors' topics.
#[derive(Default)]
struct Published(Mutex<Vec<Availability>>);

impl EventBus for Published {
    fn personal(&self, _events: Vec<PendingEvent>) {}
    fn topic(&self, event: TopicEvent) {
        if let TopicEvent::Availability(u) = event {
            if u.topic.starts_with("doctor:") {
                self.0.lock().unwrap().push(u.data);
            }
        }
    }
}

impl Published {
    /// What was published for `session` since the last look.
    fn take(&self, session: SessionId) -> Vec<Availability> {
        let mut all = self.0.lock().unwrap();
        let (mine, rest) = all.drain(..).partition(|a| a.session_id == session);
        *all = rest;
        mine
    }
}

/// A node on a real embedded store in a zone where it is just past noon, no grace after a slot's
/// end, what it publishes recorded, and a job runner whose own tick is left out of the way (the
/// tests run what is due themselves).
struct Setup {
    _dir: tempfile::TempDir,
    store: EmbeddedStore,
    zone: HospitalZone,
    published: Arc<Published>,
    system: ActorSystem,
    runner: JobRunner,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let zone = HospitalZone::parse(&hospital_testkit::zone_near_noon().0).expect("an Etc zone");
    let jobs = JobsConfig { tick: Duration::from_secs(3600), ..JobsConfig::default() };
    let config = ActorConfig { zone, late_booking: Duration::ZERO, jobs: jobs.clone(), ..ActorConfig::default() };
    let published = Arc::new(Published::default());
    let deps = ActorDeps::new(stores, config).with_events(Events::new(published.clone()));
    let system = ActorSystem::start(deps).await.unwrap();
    let runner = JobRunner::start(Arc::new(store.clone()), system.clone(), None, None, None, jobs);
    Setup { _dir: dir, store, zone, published, system, runner }
}

fn segment(start: NaiveTime, end: NaiveTime) -> Segment {
    Segment { start, end, quota: 2 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_segments_closing_is_published_and_the_job_moves_on_until_none_is_left() {
    let Setup { _dir, store, zone, published, system, runner } = setup().await;

    // Today: 10:00-11:00 and 11:00-12:00 are over (it is past noon there), 13:00-14:00 and
    // 14:00-15:00 to come.
    let now = Utc::now();
    let today = zone.local_date(now);
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let at = |t: NaiveTime| zone.to_utc(today, t);
    let doctor = DoctorId::new();
    let mut session = sample_session(doctor, DepartmentId::new(), today, 2);
    session.segments = vec![
        segment(hm(10, 0), hm(11, 0)),
        segment(hm(11, 0), hm(12, 0)),
        segment(hm(13, 0), hm(14, 0)),
        segment(hm(14, 0), hm(15, 0)),
    ];
    let id = session.id;
    let added = system.add_sessions(doctor, vec![session]).await.expect("added");
    assert_eq!(added.created, vec![id]);
    let job_id = format!("closes:{id}");
    let job = || async { store.job(&job_id).await.unwrap() };
    let due = |j: Option<Job>| j.map(|j| j.due_at);
    assert_eq!(due(job().await), Some(at(hm(14, 0))), "due when 13:00-14:00 closes (the morning's have)");
    assert!(store.job(&format!("close:{id}")).await.unwrap().is_some(), "the session's close job too");

    // Staff move the afternoon earlier: the third segment now ended a second ago, the fourth
    // ends at 16:00. The job follows the new times.
    let just_now = (now - Days::seconds(1)).with_timezone(&zone.0).time().with_nanosecond(0).unwrap();
    let retimed = vec![
        segment(hm(10, 0), hm(11, 0)),
        segment(hm(11, 0), hm(11, 30)),
        segment(hm(11, 30), just_now),
        segment(hm(15, 0), hm(16, 0)),
    ];
    system.set_segments(doctor, id, retimed).await.expect("retimed");
    assert_eq!(due(job().await), Some(at(hm(16, 0))), "moved to the fourth segment's closing");
    published.take(id);

    // The job falls due (as if at the third segment's end): its run publishes the places with
    // the three closed, and moves the job to the fourth's closing, afresh.
    store.put_job(&Job::booking_closes(id, doctor, Utc::now() - Days::seconds(1), Utc::now())).await.unwrap();
    assert!(runner.run_due().await >= 1);
    let seen = published.take(id);
    assert_eq!(seen.len(), 1, "one update for the closing: {seen:?}");
    assert_eq!((seen[0].open_from, seen[0].remaining.len()), (3, 4), "{seen:?}");
    let next = job().await.expect("the job moved on");
    assert_eq!((next.due_at, next.attempts), (at(hm(16, 0)), 0));

    // Once every segment has closed, a run publishes that and the job ends.
    let all_over = vec![
        segment(hm(10, 0), hm(11, 0)),
        segment(hm(11, 0), hm(11, 30)),
        segment(hm(11, 30), hm(11, 40)),
        segment(hm(11, 40), just_now),
    ];
    system.set_segments(doctor, id, all_over).await.expect("retimed");
    published.take(id);
    store.put_job(&Job::booking_closes(id, doctor, Utc::now() - Days::seconds(1), Utc::now())).await.unwrap();
    assert!(runner.run_due().await >= 1);
    let seen = published.take(id);
    assert_eq!(seen.iter().map(|a| a.open_from).collect::<Vec<_>>(), vec![4], "{seen:?}");
    assert!(job().await.is_none(), "no segment left to close: the job ended");
    system.shutdown().await;
}

/// Sessions written straight to the store (before the closing jobs existed, or past the doctor's
/// actor) get theirs from the day's run, which schedules the next day's run at its midnight; a
/// session whose job is pending keeps it, one with every segment closed gets none, another day's
/// session is left to its own day's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_days_run_gives_each_of_the_days_sessions_its_closing_job() {
    let Setup { _dir, store, zone, system, runner, .. } = setup().await;

    let department = DepartmentId::new();
    let doctor = |name: &str| Doctor {
        id: DoctorId::new(),
        department_id: department,
        name: name.into(),
        title: DoctorTitle::AttendingPhysician,
        specialties: vec![],
        introduction: String::new(),
        popularity: 0,
        own_fee: None,
        photo: None,
    };
    let (a, b) = (doctor("甲"), doctor("乙"));
    store.put_doctors(&[a.clone(), b.clone()]).await.unwrap();
    let today = zone.local_date(Utc::now());
    let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
    let at = |t: NaiveTime| zone.to_utc(today, t);
    let session = |doctor: DoctorId, date, segments: Vec<Segment>| {
        let mut s = sample_session(doctor, department, date, 2);
        s.segments = segments;
        s
    };
    // Today, written as an older version wrote them: no jobs. A's afternoon is to come; B's
    // morning is over; tomorrow's session of A waits for tomorrow's run.
    let afternoon = session(a.id, today, vec![segment(hm(14, 0), hm(15, 0)), segment(hm(15, 0), hm(16, 0))]);
    let morning = session(b.id, today, vec![segment(hm(9, 0), hm(10, 0))]);
    let tomorrow = session(a.id, today.succ_opt().unwrap(), vec![segment(hm(9, 0), hm(10, 0))]);
    // B also has an afternoon whose job is pending at another time (as if re-timed since).
    let pending = session(b.id, today, vec![segment(hm(13, 0), hm(17, 0))]);
    store.put_sessions(&[afternoon.clone(), morning.clone(), tomorrow.clone(), pending.clone()]).await.unwrap();
    let moved = Job::booking_closes(pending.id, b.id, at(hm(18, 0)), Utc::now());
    store.put_job(&moved).await.unwrap();

    hospital_actors::closings::ensure_scheduled(&store, &system).await.unwrap();
    assert!(runner.run_due().await >= 1);
    let due = |id: SessionId| {
        let store = store.clone();
        async move { store.job(&format!("closes:{id}")).await.unwrap().map(|j| j.due_at) }
    };
    assert_eq!(due(afternoon.id).await, Some(at(hm(15, 0))), "when 14:00-15:00 closes");
    assert_eq!(due(morning.id).await, None, "all of it closed: nothing to publish");
    assert_eq!(due(tomorrow.id).await, None, "tomorrow's run's");
    assert_eq!(due(pending.id).await, Some(at(hm(18, 0))), "a pending job is kept as it was");
    let next = store.job(&format!("closings:{}", today.succ_opt().unwrap())).await.unwrap().expect("tomorrow's run");
    assert_eq!(next.due_at, zone.to_utc(today.succ_opt().unwrap(), NaiveTime::MIN), "at tomorrow's midnight there");
    assert!(store.job(&format!("closings:{today}")).await.unwrap().is_none(), "today's run done");
    system.shutdown().await;
}
