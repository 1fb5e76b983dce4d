//! Sample rows for the checks (and other crates' tests): unique keys, accounts, patients.

use chrono::Utc;
use hospital_domain::account::Relation;
use hospital_domain::*;

use crate::model::*;
use crate::FieldCipher;

pub(super) fn unique(tag: &str) -> String {
    format!("{tag}-{}", uuid::Uuid::new_v4().simple())
}

pub(super) fn phone() -> Phone {
    // A random, valid, mainland mobile number so suites can share one backend.
    let n = uuid::Uuid::new_v4().as_u128() % 100_000_000;
    Phone::parse(&format!("139{n:08}")).unwrap()
}

pub fn sample_account() -> Account {
    Account {
        id: AccountId::new(),
        phone: Some(phone()),
        email: None,
        password_hash: None,
        wechat_openid: None,
        wechat_unionid: None,
        profile: Profile::default(),
        created_at: Utc::now(),
    }
}

pub fn sample_patient(cipher: &FieldCipher, account: AccountId, id_card: &str) -> PatientRecord {
    let card = IdCardNo::parse(id_card).unwrap();
    PatientRecord {
        id: PatientId::new(),
        account_id: account,
        name: "张三".into(),
        relation: Relation::Myself,
        gender: card.gender(),
        birth_date: card.birth_date(),
        id_card_sealed: cipher.seal(card.expose()),
        id_card_masked: card.masked(),
        id_card_index: cipher.blind_index(card.expose()),
        phone_sealed: None,
        created_at: Utc::now(),
    }
}
