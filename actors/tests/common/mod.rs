//! What the actor tests share (`fencing`, `person_turn`, `waitlist_end`): nodes (actor systems) over one
//! store and one Redis, each running actors only under leases, and patients added on a node.
// Each test file uses part of this.
#![allow(dead_code)]

use chrono::{NaiveDate, Utc};
use hospital_actors::ownership::Ownership;
use hospital_actors::{ActorConfig, ActorDeps, ActorSystem};
use hospital_domain::account::Relation;
use hospital_domain::{AccountId, Gender, PatientId};
use hospital_store::{EmbeddedStore, PatientCaps, PatientRecord, RedisKv, RedisLeases, Sealed, Stores};
use hospital_testkit::RedisServer;
use std::sync::Arc;
use std::time::Duration;

/// A node named `name` over `store`, its leases in `redis` under `prefix`. The lease is long: in
/// these tests it lapses only when a test takes it away.
pub async fn node(store: &EmbeddedStore, redis: &RedisServer, prefix: &str, name: &str) -> ActorSystem {
    node_with(store, redis, prefix, name, ActorConfig::default()).await
}

/// `node`, with its actors' `config`.
pub async fn node_with(
    store: &EmbeddedStore,
    redis: &RedisServer,
    prefix: &str,
    name: &str,
    config: ActorConfig,
) -> ActorSystem {
    let stores = Stores { data: Arc::new(store.clone()), kv: Arc::new(store.clone()) };
    node_on(stores, redis, prefix, name, config).await
}

/// A node over any `stores` (the fencing test runs one on ScyllaDB too), its leases in `redis`.
pub async fn node_on(
    stores: Stores,
    redis: &RedisServer,
    prefix: &str,
    name: &str,
    config: ActorConfig,
) -> ActorSystem {
    node_from(ActorDeps::new(stores, config), redis, prefix, name).await
}

/// A node of `deps` (a test's own stores, configuration and clients), under leases in `redis`.
pub async fn node_from(deps: ActorDeps, redis: &RedisServer, prefix: &str, name: &str) -> ActorSystem {
    let kv = RedisKv::connect(&redis.url(), prefix).await.unwrap();
    let ownership = Ownership::new(RedisLeases::new(kv.connection(), prefix), name, Duration::from_secs(60));
    ActorSystem::start(deps.with_ownership(ownership)).await.unwrap()
}

/// A patient of `account`: the person whose ID number's blind index is `person`, as `relation`.
pub fn patient_record(account: AccountId, person: &str, relation: Relation) -> PatientRecord {
    PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: format!("患者{person}"),
        relation,
        gender: Gender::Male,
        birth_date: NaiveDate::from_ymd_opt(1985, 3, 1).unwrap(),
        id_card_sealed: Sealed(format!("k1:sealed-{person}")),
        id_card_masked: "1101**********0011".into(),
        id_card_index: person.to_string(),
        phone_sealed: None,
        created_at: Utc::now(),
    }
}

/// A new account on `system` with the person whose ID number's blind index is `person`, as
/// `relation`.
pub async fn patient(system: &ActorSystem, person: &str, relation: Relation) -> (AccountId, PatientId) {
    let account = AccountId::new();
    let record = patient_record(account, person, relation);
    let p = system.add_patient(record, PatientCaps { per_account: 5, accounts_per_person: 5 }).await.unwrap();
    (account, p.id)
}
