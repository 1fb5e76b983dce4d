//! The actor tree against the real embedded store: answers from memory, staff's session changes
//! through the schedule actor, restart after a panic with state reloaded from the store, idle stop and fresh start, one actor per id under
//! concurrent first calls, and the patient cap under concurrent adds.

use chrono::{Duration as Days, NaiveDate, NaiveTime, Utc};
use hospital_actors::{
    AccountError, ActorConfig, ActorDeps, ActorError, ActorSystem, PatientError, ProfileChange, SystemStats,
};
use hospital_domain::account::Relation;
use hospital_domain::schedule::{split_segments, ClinicSession, Period, SessionStatus};
use hospital_domain::time::HospitalZone;
use hospital_domain::{AccountId, DepartmentId, DoctorId, Fen, Gender, PatientId, SessionId};
use hospital_store::{
    AccountStore, EmbeddedStore, MessageFilter, NotifyStore, PatientCaps, PatientRecord, PersonStore, ScheduleStore,
    Sealed, Stores,
};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

struct Harness {
    _dir: TempDir,
    store: EmbeddedStore,
    system: ActorSystem,
}

async fn start(config: ActorConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    let system = ActorSystem::start(ActorDeps::new(stores, config)).await.unwrap();
    Harness { _dir: dir, store, system }
}

fn today() -> NaiveDate {
    HospitalZone::default().local_date(Utc::now())
}

fn session(doctor: DoctorId, date: NaiveDate, period: Period) -> ClinicSession {
    let (start, end) = match period {
        Period::Morning => (8, 12),
        Period::Afternoon => (14, 17),
        Period::Evening => (18, 21),
    };
    ClinicSession {
        id: SessionId::new(),
        doctor_id: doctor,
        department_id: DepartmentId::new(),
        date,
        period,
        segments: split_segments(
            NaiveTime::from_hms_opt(start, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(end, 0, 0).unwrap(),
            30,
            5,
        ),
        fee: Fen::new(1500),
        release_at: Utc::now(),
        status: SessionStatus::Open,
    }
}

fn patient(account: AccountId, n: usize) -> PatientRecord {
    PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: format!("patient {n}"),
        relation: Relation::Child,
        gender: Gender::Female,
        birth_date: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
        id_card_sealed: Sealed(format!("k1:sealed-{n}")),
        id_card_masked: "1101**********0011".into(),
        id_card_index: format!("index-{n}"),
        phone_sealed: None,
        created_at: Utc::now(),
    }
}

/// The account cap under test; the person cap out of the way.
fn caps(per_account: usize) -> PatientCaps {
    PatientCaps { per_account, accounts_per_person: usize::MAX }
}

/// Polls the supervisors' counters until `ok` holds, failing after 5 s.
async fn wait_for(system: &ActorSystem, what: &str, ok: impl Fn(&SystemStats) -> bool) -> SystemStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = system.stats().await.unwrap();
        if ok(&stats) {
            return stats;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; stats: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_actor_answers_from_the_store() {
    let h = start(ActorConfig::default()).await;
    let doctor = DoctorId::new();
    let d = today();
    let mine = vec![
        session(doctor, d, Period::Afternoon),
        session(doctor, d, Period::Morning),
        session(doctor, d + Days::days(3), Period::Morning),
    ];
    let later = session(doctor, d + Days::days(30), Period::Morning);
    let other = session(DoctorId::new(), d, Period::Morning);
    let mut all = mine.clone();
    all.extend([later.clone(), other]);
    h.store.put_sessions(&all).await.unwrap();

    let got = h.system.get_schedule(doctor, d, d + Days::days(7)).await.map(only).unwrap();
    let ids: Vec<_> = got.iter().map(|s| s.id).collect();
    // Ordered by date then period, only this doctor, only the range.
    assert_eq!(ids, vec![mine[1].id, mine[0].id, mine[2].id]);
    let got = h.system.get_schedule(doctor, d + Days::days(8), d + Days::days(60)).await.map(only).unwrap();
    assert_eq!(got, vec![later]);
    assert_eq!(h.system.stats().await.unwrap().schedules.live, 1);

    // Staff add sessions through the actor: new ones show at once and are stored; a date and
    // period the doctor has already is left out; one past the window is stored only.
    let added = session(doctor, d + Days::days(1), Period::Evening);
    let clash = session(doctor, d, Period::Morning);
    let far = session(doctor, d + Days::days(80), Period::Morning);
    let r = h.system.add_sessions(doctor, vec![added.clone(), clash.clone(), far.clone()]).await.unwrap();
    assert_eq!((r.created, r.skipped), (vec![added.id, far.id], 1));
    let day1 = d + Days::days(1);
    assert_eq!(h.system.get_schedule(doctor, day1, day1).await.map(only).unwrap(), vec![added.clone()]);
    assert_eq!(h.store.session(far.id).await.unwrap(), Some(far.clone()));
    assert_eq!(h.store.session(clash.id).await.unwrap(), None);
    // A fee change: in memory and stored within the window, stored past it.
    let changed = h.system.update_session(doctor, added.id, Some(Fen::new(9900)), None).await.unwrap();
    assert_eq!(changed.fee, Fen::new(9900));
    assert_eq!(h.system.get_schedule(doctor, day1, day1).await.map(only).unwrap(), vec![changed.clone()]);
    assert_eq!(h.store.session(added.id).await.unwrap(), Some(changed));
    let later_release = far.release_at + Days::hours(1);
    let moved = h.system.update_session(doctor, far.id, None, Some(later_release)).await.unwrap();
    assert_eq!((moved.release_at, moved.fee), (later_release, far.fee));
    assert_eq!(h.store.session(far.id).await.unwrap(), Some(moved));
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicked_schedule_actor_is_restarted_and_reloads_from_the_store() {
    let h = start(ActorConfig::default()).await;
    let doctor = DoctorId::new();
    let d = today();
    let first = session(doctor, d, Period::Morning);
    h.store.put_sessions(std::slice::from_ref(&first)).await.unwrap();
    assert_eq!(h.system.get_schedule(doctor, d, d).await.map(only).unwrap(), vec![first.clone()]);
    let before = h.system.schedule(doctor).await.unwrap().get_id();

    // Written behind the actor's back: only a reload from the store can show it.
    let second = session(doctor, d, Period::Afternoon);
    h.store.put_sessions(std::slice::from_ref(&second)).await.unwrap();

    h.system.inject_schedule_fault(doctor).await.unwrap();
    let stats = wait_for(&h.system, "a restart", |s| s.schedules.restarts == 1).await;
    assert_eq!(stats.schedules.failures, 1);
    assert_eq!(stats.schedules.live, 1);

    let after = h.system.schedule(doctor).await.unwrap().get_id();
    assert_ne!(before, after, "a new actor replaced the panicked one");
    assert_eq!(h.system.get_schedule(doctor, d, d).await.map(only).unwrap(), vec![first, second]);
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_that_keeps_crashing_is_given_up() {
    let h = start(ActorConfig { max_restarts: 2, ..ActorConfig::default() }).await;
    let doctor = DoctorId::new();
    for n in 1..=2u64 {
        h.system.inject_schedule_fault(doctor).await.unwrap();
        wait_for(&h.system, "a restart", |s| s.schedules.restarts == n).await;
    }
    h.system.inject_schedule_fault(doctor).await.unwrap();
    let stats = wait_for(&h.system, "giving up", |s| s.schedules.given_up == 1).await;
    assert_eq!((stats.schedules.restarts, stats.schedules.live), (2, 0));
    let err = h.system.schedule(doctor).await.unwrap_err();
    assert!(matches!(err, ActorError::CrashLoop { .. }), "{err:?}");
    // Other doctors are not affected.
    assert!(h.system.get_schedule(DoctorId::new(), today(), today()).await.map(only).unwrap().is_empty());
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_actor_stops_and_the_next_call_starts_a_fresh_one() {
    let h = start(ActorConfig { idle_timeout: Duration::from_millis(150), ..ActorConfig::default() }).await;
    let doctor = DoctorId::new();
    let d = today();
    let s = session(doctor, d, Period::Morning);
    h.store.put_sessions(std::slice::from_ref(&s)).await.unwrap();

    assert_eq!(h.system.get_schedule(doctor, d, d).await.map(only).unwrap(), vec![s.clone()]);
    let first = h.system.schedule(doctor).await.unwrap().get_id();
    wait_for(&h.system, "the idle stop", |st| st.schedules.live == 0).await;

    assert_eq!(h.system.get_schedule(doctor, d, d).await.map(only).unwrap(), vec![s]);
    let second = h.system.schedule(doctor).await.unwrap().get_id();
    assert_ne!(first, second);
    let stats = h.system.stats().await.unwrap();
    assert_eq!((stats.schedules.failures, stats.schedules.restarts), (0, 0), "an idle stop is not a failure");
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_get_one_actor() {
    let h = start(ActorConfig::default()).await;
    let doctor = DoctorId::new();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let system = h.system.clone();
        tasks.spawn(async move { system.schedule(doctor).await.map(|a| a.get_id()) });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        ids.push(r.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 50);
    assert!(ids.iter().all(|id| *id == ids[0]), "all calls got the same actor");
    assert_eq!(h.system.stats().await.unwrap().schedules.live, 1);
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_cap_holds_under_concurrent_adds() {
    let h = start(ActorConfig::default()).await;
    let cap = 3;

    // Sequential: the cap and duplicates are refused, and nothing is written for a refusal.
    let account = AccountId::new();
    let first = h.system.add_patient(patient(account, 0), caps(cap)).await.unwrap();
    let mut dup = patient(account, 0);
    dup.id = PatientId::new();
    assert!(matches!(h.system.add_patient(dup, caps(cap)).await, Err(PatientError::DuplicatePatient)));
    for n in 1..cap {
        h.system.add_patient(patient(account, n), caps(cap)).await.unwrap();
    }
    let refused = h.system.add_patient(patient(account, 99), caps(cap)).await;
    assert!(matches!(refused, Err(PatientError::PatientCap { cap: 3 })), "{refused:?}");
    assert!(matches!(
        h.system.add_patient(patient(AccountId::new(), 5), caps(0)).await,
        Err(PatientError::PatientCap { cap: 0 })
    ));
    let listed = h.system.list_patients(account).await.unwrap();
    assert_eq!(listed.len(), cap);
    assert_eq!(listed[0], first);
    assert_eq!(h.store.patients_of(account).await.unwrap().len(), cap);

    // Removing frees a place.
    assert!(h.system.remove_patient(account, first.id).await.unwrap());
    assert!(!h.system.remove_patient(account, first.id).await.unwrap());
    h.system.add_patient(patient(account, 100), caps(cap)).await.unwrap();

    // Concurrent: ten adds race for three places on a fresh account.
    let account = AccountId::new();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..10 {
        let system = h.system.clone();
        tasks.spawn(async move { system.add_patient(patient(account, n), caps(cap)).await });
    }
    let (mut added, mut capped) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => added += 1,
            Err(PatientError::PatientCap { .. }) => capped += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((added, capped), (cap, 10 - cap));
    assert_eq!(h.store.patients_of(account).await.unwrap().len(), cap);
    assert_eq!(h.system.list_patients(account).await.unwrap().len(), cap);
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_cap_holds_across_accounts_and_the_own_account_is_told() {
    let h = start(ActorConfig::default()).await;
    let person_caps = PatientCaps { per_account: 5, accounts_per_person: 3 };
    let person = |account: AccountId, relation: Relation| PatientRecord {
        relation,
        id_card_index: "index-shared".into(),
        ..patient(account, 1)
    };

    // The person's own account adds them; another account adds them: only the own account hears.
    let own = AccountId::new();
    let own_record = h.system.add_patient(person(own, Relation::Myself), person_caps).await.unwrap();
    let inbox = |account| {
        let store = h.store.clone();
        async move {
            let filter = MessageFilter { category: None, unread_only: false, limit: 10 };
            store.list_messages(account, filter).await.unwrap()
        }
    };
    assert!(inbox(own).await.is_empty(), "adding oneself tells nobody");
    let other = AccountId::new();
    h.system.add_patient(person(other, Relation::Parent), person_caps).await.unwrap();
    let told = inbox(own).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].alert && told[0].body.contains("1101**********0011") && told[0].body.contains("父母"), "{told:?}");
    assert_eq!(told[0].related, Some(own_record.id.to_string()));
    assert!(inbox(other).await.is_empty());

    // Ten more accounts race for the one place left: exactly one gets it.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let system = h.system.clone();
        let record = person(AccountId::new(), Relation::Child);
        tasks.spawn(async move { system.add_patient(record, person_caps).await });
    }
    let (mut added, mut capped) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => added += 1,
            Err(PatientError::PersonAccountCap { cap: 3 }) => capped += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((added, capped), (1, 9));
    assert_eq!(h.store.holders_of_person("index-shared").await.unwrap().len(), 3);
    assert_eq!(inbox(own).await.len(), 2, "one notice per account that got the person");
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicked_patient_actor_reloads_its_patients() {
    let h = start(ActorConfig::default()).await;
    let account = AccountId::new();
    h.system.add_patient(patient(account, 1), caps(5)).await.unwrap();
    h.system.inject_patient_fault(account).await.unwrap();
    wait_for(&h.system, "a restart", |s| s.patients.restarts == 1).await;
    assert_eq!(h.system.list_patients(account).await.unwrap().len(), 1);
    h.system.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_after_shutdown_fail_fast() {
    let h = start(ActorConfig::default()).await;
    let doctor = DoctorId::new();
    h.system.schedule(doctor).await.unwrap();
    h.system.shutdown().await;
    assert!(matches!(h.system.schedule(doctor).await, Err(ActorError::ShuttingDown)));
    assert!(matches!(h.system.get_schedule(doctor, today(), today()).await.map(only), Err(ActorError::ShuttingDown)));
}

/// The sessions of a schedule answer, without the availability.
fn only(v: Vec<hospital_actors::SessionAvailability>) -> Vec<hospital_domain::schedule::ClinicSession> {
    v.into_iter().map(|s| s.session).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_from_two_devices_are_both_kept() {
    let h = start(ActorConfig::default()).await;
    let store = &h.store;
    let account = hospital_store::Account {
        id: AccountId::new(),
        phone: None,
        email: None,
        password_hash: None,
        wechat_openid: None,
        wechat_unionid: None,
        profile: Default::default(),
        created_at: Utc::now(),
    };
    store.create_account(&account).await.unwrap();
    // Two devices change different fields at once: the account's actor applies one after the
    // other, so neither change overwrites the other with a stale copy.
    let name = ProfileChange { name: Some("张三".into()), ..Default::default() };
    let gender = ProfileChange { gender: Some(Gender::Female), ..Default::default() };
    let (a, b) = tokio::join!(h.system.update_profile(account.id, name), h.system.update_profile(account.id, gender));
    a.unwrap();
    b.unwrap();
    let stored = store.account(account.id).await.unwrap().unwrap();
    assert_eq!((stored.profile.name.as_deref(), stored.profile.gender), (Some("张三"), Some(Gender::Female)));

    // A phone another account holds is refused; a free one is bound.
    let taken = hospital_domain::Phone::parse("13800138001").unwrap();
    let other = hospital_store::Account { id: AccountId::new(), phone: Some(taken.clone()), ..account.clone() };
    store.create_account(&other).await.unwrap();
    let refused = h.system.bind_phone(account.id, taken).await;
    assert!(matches!(refused, Err(AccountError::PhoneTaken)), "{refused:?}");
    let free = hospital_domain::Phone::parse("13800138002").unwrap();
    assert_eq!(h.system.bind_phone(account.id, free.clone()).await.unwrap().phone, Some(free));
    let gone = h.system.update_profile(AccountId::new(), ProfileChange::default()).await;
    assert!(matches!(gone, Err(AccountError::NoSuchAccount)), "{gone:?}");
    h.system.shutdown().await;
}
