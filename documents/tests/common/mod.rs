//! Fixtures shared by the document tests: a finished visit with everything a doctor writes, and
//! the person it belongs to; plus running the outside tools the tests check documents with.

#![allow(dead_code)] // each test binary uses its own part

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use hospital_documents::{HospitalHeader, PatientInfo};
use hospital_domain::appointment::{Appointment, AppointmentStatus};
use hospital_domain::exam::ExamKind;
use hospital_domain::schedule::{Period, SlotId};
use hospital_domain::visit::{
    ConsultationInput, DiagnosisInput, ExamOrderInput, Frequency, PrescriptionInput, Visit, VisitEvent,
};
use hospital_domain::{AccountId, AppointmentId, DepartmentId, DoctorId, Fen, Gender, OrderId, PatientId, SessionId};
use std::path::Path;
use std::process::Command;

pub fn hospital() -> HospitalHeader {
    HospitalHeader {
        name: "示例市第一人民医院".into(),
        address: "示例市滨江区健康大道1号".into(),
        phone: Some("0571-88886666".into()),
    }
}

pub fn patient(name: &str) -> PatientInfo {
    PatientInfo {
        id: PatientId::new(),
        name: name.into(),
        gender: Gender::Female,
        birth_date: NaiveDate::from_ymd_opt(1988, 6, 15),
        phone: Some("13800138000".into()),
    }
}

/// 09:00 in Shanghai on 2026-03-02, plus `min` minutes.
pub fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap() + Duration::minutes(min)
}

/// A checked-in appointment of `patient`.
pub fn appointment(patient: &PatientInfo, account: AccountId, start_min: i64) -> Appointment {
    Appointment {
        id: AppointmentId::new(),
        slot: SlotId { session_id: SessionId::new(), segment: 0 },
        place: 1,
        doctor_id: DoctorId::new(),
        department_id: DepartmentId::new(),
        date: at(start_min).date_naive(),
        period: Period::Morning,
        account_id: account,
        patient_id: patient.id,
        person: "blind-index".into(),
        patient_name: patient.name.clone(),
        fee: Fen::new(1500),
        status: AppointmentStatus::CheckedIn,
        order_id: OrderId::new(),
        created_at: at(start_min - 60 * 24),
        hold_expires_at: at(start_min - 60 * 24 + 15),
        confirmed_at: Some(at(start_min - 60 * 24 + 2)),
        slip_no: Some("GH260302ABCDEF12".into()),
        cancelled_at: None,
        cancel_reason: None,
        idempotency_key: None,
        from_waitlist: false,
        rescheduled_from: None,
        rescheduled_to: None,
    }
}

pub fn consultation(record: &str) -> ConsultationInput {
    ConsultationInput {
        chief_complaint: Some("发热、咳嗽3天，伴咳黄痰".into()),
        diagnoses: vec![
            DiagnosisInput { text: "社区获得性肺炎".into(), icd10: Some("J18.900".into()) },
            DiagnosisInput { text: "原发性高血压".into(), icd10: Some("I10".into()) },
        ],
        prescription: vec![
            PrescriptionInput {
                drug: "阿莫西林克拉维酸钾片".into(),
                spec: Some("0.375g×12片".into()),
                dose: "0.375g".into(),
                route: Some("口服".into()),
                frequency: Frequency::Tid,
                days: 7,
                quantity: 2,
                unit: "盒".into(),
                unit_price: Fen::new(3260),
            },
            PrescriptionInput {
                drug: "氨溴索口服溶液".into(),
                spec: Some("100ml:0.6g".into()),
                dose: "10ml".into(),
                route: Some("口服".into()),
                frequency: Frequency::Bid,
                days: 5,
                quantity: 1,
                unit: "瓶".into(),
                unit_price: Fen::new(2480),
            },
        ],
        exam_orders: vec![
            ExamOrderInput { name: "胸部CT平扫".into(), kind: ExamKind::Imaging, price: Fen::new(24000) },
            ExamOrderInput { name: "血常规+C反应蛋白".into(), kind: ExamKind::Lab, price: Fen::new(4500) },
        ],
        record: Some(record.into()),
    }
}

pub const RECORD: &str = "现病史：患者3天前受凉后出现发热，最高体温38.9℃，伴咳嗽、咳黄痰，无胸痛、咯血。\n\
既往史：高血压病史5年，规律服用氨氯地平。否认药物过敏史。\n\
体格检查：T 38.2℃，P 96次/分，R 20次/分，BP 138/86mmHg。右下肺可闻及湿啰音。\n\
处理意见：完善胸部CT及血常规检查，予抗感染、化痰治疗，3天后复诊，如有呼吸困难随时就诊。";

/// A finished visit of `patient` with the standard consultation and `record`.
pub fn finished_visit(patient: &PatientInfo, account: AccountId, start_min: i64, record: &str) -> Visit {
    let appt = appointment(patient, account, start_min);
    let mut v = Visit::called(&appt, "门诊3楼 呼吸内科5诊室", at(start_min)).unwrap();
    v.apply(VisitEvent::Start, at(start_min + 2)).unwrap();
    v.write(&consultation(record), at(start_min + 10)).unwrap();
    v.apply(VisitEvent::Finish, at(start_min + 15)).unwrap();
    v
}

/// Runs an outside tool and returns its standard output; fails the test with what to install.
pub fn run(cmd: &str, args: &[&str], install_hint: &str) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}): {install_hint} (scripts/test.sh installs it)"));
    assert!(out.status.success(), "{cmd} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
