//! Accounts, patients, persons under several accounts, staff.

use chrono::Utc;
use hospital_domain::account::Relation;
use hospital_domain::*;
use std::sync::Arc;
use std::time::Duration;

use super::samples::*;
use crate::error::Conflict;
use crate::model::*;
use crate::persons::{PersonHolder, RealNameCheck};
use crate::traits::DataStore;
use crate::{FieldCipher, StoreError};

/// Accounts: create, find by each key, conflicts, key moves on update.
pub async fn accounts(store: Arc<dyn DataStore>) {
    let mut a = sample_account();
    store.create_account(&a).await.unwrap();
    assert_eq!(store.account(a.id).await.unwrap().as_ref(), Some(&a), "read back by id");
    assert_eq!(store.account_by_phone(a.phone.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));

    let mut clash = sample_account();
    clash.phone = a.phone.clone();
    assert!(
        matches!(store.create_account(&clash).await, Err(StoreError::Conflict(Conflict::Phone))),
        "a second account with the same phone is refused"
    );
    assert!(store.account(clash.id).await.unwrap().is_none(), "a refused create writes nothing");

    // Bind an e-mail and an openid, and move the phone.
    let old_phone = a.phone.clone().unwrap();
    a.email = Some(Email::parse(&format!("{}@example.com", unique("u"))).unwrap());
    a.wechat_openid = Some(unique("o"));
    a.phone = Some(phone());
    store.update_account(&a, &[], None).await.unwrap();
    assert!(store.account_by_phone(&old_phone).await.unwrap().is_none(), "old phone released");
    assert_eq!(store.account_by_phone(a.phone.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));
    assert_eq!(store.account_by_email(a.email.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));
    assert_eq!(store.account_by_openid(a.wechat_openid.as_ref().unwrap()).await.unwrap().map(|x| x.id), Some(a.id));

    let mut other = sample_account();
    store.create_account(&other).await.unwrap();
    other.email = a.email.clone();
    assert!(matches!(store.update_account(&other, &[], None).await, Err(StoreError::Conflict(Conflict::Email))));
}

/// Patients: cap, duplicates, order, removal, sealed fields.
pub async fn patients(store: Arc<dyn DataStore>) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    let a = sample_account();
    store.create_account(&a).await.unwrap();
    let cards = ["11010519491231002X", "440524198001010013", "310115199003071239"];
    // These fixed persons are added again by every run on a long-lived cluster: no person cap.
    let caps = |per_account| PatientCaps { per_account, accounts_per_person: usize::MAX };
    let mut ids = Vec::new();
    for c in &cards[..2] {
        let p = sample_patient(&cipher, a.id, c);
        ids.push(p.id);
        store.add_patient(&p, caps(2), None).await.unwrap();
    }
    let third = sample_patient(&cipher, a.id, cards[2]);
    assert!(
        matches!(store.add_patient(&third, caps(2), None).await, Err(StoreError::Conflict(Conflict::PatientCap))),
        "cap holds"
    );
    let dup = sample_patient(&cipher, a.id, cards[0]);
    assert!(
        matches!(store.add_patient(&dup, caps(5), None).await, Err(StoreError::Conflict(Conflict::Patient))),
        "same person twice"
    );

    let listed = store.patients_of(a.id).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), ids, "oldest first");
    assert_eq!(cipher.open(&listed[0].id_card_sealed).unwrap(), cards[0]);

    let other = sample_account();
    assert!(store.patient(other.id, ids[0]).await.unwrap().is_none(), "a patient is found only under its account");
    assert!(store.remove_patient(a.id, ids[0], None).await.unwrap());
    assert!(!store.remove_patient(a.id, ids[0], None).await.unwrap());
    store.add_patient(&third, caps(2), None).await.unwrap();
    assert_eq!(store.patients_of(a.id).await.unwrap().len(), 2);
}

/// One person under several accounts: the holders listing, the accounts-per-person cap (checked
/// with the account's own rules, refusals storing nothing), removal and relation changes keeping
/// the listing right; and the cache of real-name checks with its TTL (it sleeps 2 s).
pub async fn persons(store: Arc<dyn DataStore>) {
    let cipher = FieldCipher::new("k1", &[("k1".into(), [7; 32])]).unwrap();
    // A fresh person (the index is opaque to the store), so runs never meet each other's rows.
    let person = unique("person");
    let record = |account: AccountId, relation: Relation| {
        let mut p = sample_patient(&cipher, account, "11010519491231002X");
        p.id_card_index = person.clone();
        p.relation = relation;
        p
    };
    let caps = PatientCaps { per_account: 5, accounts_per_person: 2 };
    let [a, b, c] = [sample_account(), sample_account(), sample_account()];
    for acc in [&a, &b, &c] {
        store.create_account(acc).await.unwrap();
    }
    assert!(store.holders_of_person(&person).await.unwrap().is_empty());

    let pa = record(a.id, Relation::Myself);
    assert_eq!(store.add_patient(&pa, caps, None).await.unwrap(), vec![], "nobody else held the person");
    let mut pb = record(b.id, Relation::Parent);
    let others = store.add_patient(&pb, caps, None).await.unwrap();
    assert_eq!(others, vec![PersonHolder::of(&pa)], "the adder learns who held the person");
    assert_eq!(others[0].relation, Relation::Myself);
    let sorted = |mut v: Vec<PersonHolder>| {
        v.sort_by_key(|h| h.account_id);
        v
    };
    let listed = sorted(store.holders_of_person(&person).await.unwrap());
    assert_eq!(listed, sorted(vec![PersonHolder::of(&pa), PersonHolder::of(&pb)]));

    // The cap: two accounts hold the person, a third is refused and nothing of it is stored.
    let pc = record(c.id, Relation::Child);
    assert!(
        matches!(store.add_patient(&pc, caps, None).await, Err(StoreError::Conflict(Conflict::PersonCap))),
        "person cap"
    );
    assert!(store.patients_of(c.id).await.unwrap().is_empty(), "a refused add leaves no patient");
    assert_eq!(store.holders_of_person(&person).await.unwrap().len(), 2, "nor a holder");
    // The account's own rules come first: the same person twice under one account.
    let again = record(b.id, Relation::Other);
    assert!(matches!(store.add_patient(&again, caps, None).await, Err(StoreError::Conflict(Conflict::Patient))));

    // A relation change shows in the listing; the person itself cannot change.
    pb.relation = Relation::Spouse;
    store.update_patient(&pb).await.unwrap();
    let b_row = store.holders_of_person(&person).await.unwrap().into_iter().find(|h| h.account_id == b.id);
    assert_eq!(b_row.map(|h| h.relation), Some(Relation::Spouse));
    let mut moved = pb.clone();
    moved.id_card_index = unique("other-person");
    assert!(matches!(store.update_patient(&moved).await, Err(StoreError::Conflict(Conflict::PatientPerson))));

    // Removing frees the place.
    assert!(!store.remove_patient(c.id, pc.id, None).await.unwrap());
    assert!(store.remove_patient(b.id, pb.id, None).await.unwrap());
    assert_eq!(store.holders_of_person(&person).await.unwrap(), vec![PersonHolder::of(&pa)]);
    assert_eq!(store.add_patient(&pc, caps, None).await.unwrap(), vec![PersonHolder::of(&pa)]);
    assert_eq!(store.patients_of(c.id).await.unwrap(), vec![pc.clone()]);

    // Real-name checks: found by person and name, gone after their TTL.
    let check = RealNameCheck {
        person: person.clone(),
        name_hash: unique("name"),
        verified_at: Utc::now(),
        request_id: "130A2C10-B9EE-4D84-88E3-5384FF039795".into(),
    };
    assert_eq!(store.real_name_check(&person, &check.name_hash).await.unwrap(), None);
    store.put_real_name_check(&check, Duration::from_secs(3600)).await.unwrap();
    assert_eq!(store.real_name_check(&person, &check.name_hash).await.unwrap(), Some(check.clone()));
    assert_eq!(store.real_name_check(&person, "another name").await.unwrap(), None);
    assert_eq!(store.real_name_check(&unique("person"), &check.name_hash).await.unwrap(), None);
    let brief = RealNameCheck { name_hash: unique("name"), ..check.clone() };
    store.put_real_name_check(&brief, Duration::from_secs(1)).await.unwrap();
    assert!(store.real_name_check(&person, &brief.name_hash).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.real_name_check(&person, &brief.name_hash).await.unwrap(), None, "expired");
    assert!(store.real_name_check(&person, &check.name_hash).await.unwrap().is_some());
}

pub async fn staff(store: Arc<dyn DataStore>) {
    let s = StaffMember {
        id: StaffId::new(),
        username: unique("staff"),
        name: "李护士".into(),
        password_hash: "$argon2id$dummy".into(),
        roles: vec![Role::Nurse.into()],
        doctor_id: None,
        active: true,
        created_at: Utc::now(),
    };
    store.create_staff(&s).await.unwrap();
    assert_eq!(store.staff_by_username(&s.username).await.unwrap().map(|x| x.id), Some(s.id));
    assert_eq!(store.staff(s.id).await.unwrap().as_ref(), Some(&s));
    let mut again = s.clone();
    again.id = StaffId::new();
    assert!(matches!(store.create_staff(&again).await, Err(StoreError::Conflict(Conflict::Username))));
}
