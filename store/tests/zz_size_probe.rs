use hospital_domain::booking::SessionBook;
use hospital_domain::message::{Message, MessageKind};
use hospital_domain::{AccountId, DepartmentId, DoctorId};
#[test]
fn probe() {
    let date = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let s = hospital_store::conformance::sample_session(DoctorId::new(), DepartmentId::new(), date, 3);
    let (a, o) = hospital_store::conformance::sample_hold(&mut SessionBook::new(s.clone(), [], vec![]), 0, AccountId::new(), &"x".repeat(64));
    let m = Message::new(a.account_id, MessageKind::ClinicStopped, "停诊通知", "您预约的门诊因医生临时停诊已取消，挂号费将原路退回。", Some(a.id.to_string()), chrono::Utc::now());
    println!("SIZES appt={} order={} msg={} session={}", serde_json::to_string(&a).unwrap().len(), serde_json::to_string(&o).unwrap().len(), serde_json::to_string(&m).unwrap().len(), serde_json::to_string(&s).unwrap().len());
}
