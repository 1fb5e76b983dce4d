//! The visit's life, what may be written when, and the fees it gives rise to.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::exam::ExamKind;
use crate::schedule::{Period, SlotId};
use crate::{Fen, SessionId};

fn appointment(status: AppointmentStatus) -> Appointment {
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    Appointment {
        id: AppointmentId::new(),
        slot: SlotId { session_id: SessionId::new(), segment: 0 },
        place: 3,
        doctor_id: DoctorId::new(),
        department_id: DepartmentId::new(),
        date: now.date_naive(),
        period: Period::Morning,
        account_id: AccountId::new(),
        patient_id: PatientId::new(),
        person: "idx".into(),
        patient_name: "张三".into(),
        fee: Fen::new(1500),
        status,
        order_id: OrderId::new(),
        created_at: now,
        hold_expires_at: now,
        confirmed_at: Some(now),
        slip_no: None,
        cancelled_at: None,
        cancel_reason: None,
        idempotency_key: None,
        from_waitlist: false,
        rescheduled_from: None,
        rescheduled_to: None,
    }
}

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 30, 0).unwrap() + Duration::minutes(min)
}

fn form() -> ConsultationInput {
    ConsultationInput {
        chief_complaint: Some("发热、咳嗽3天".into()),
        diagnoses: vec![
            DiagnosisInput { text: "社区获得性肺炎".into(), icd10: Some("J18.900".into()) },
            DiagnosisInput { text: "高血压".into(), icd10: None },
        ],
        prescription: vec![
            PrescriptionInput {
                drug: "阿莫西林胶囊".into(),
                spec: Some("0.25g×24粒".into()),
                dose: "0.5g".into(),
                route: Some("口服".into()),
                frequency: Frequency::Tid,
                days: 7,
                quantity: 2,
                unit: "盒".into(),
                unit_price: Fen::new(1850),
            },
            PrescriptionInput {
                drug: "布洛芬缓释胶囊".into(),
                spec: None,
                dose: "0.3g".into(),
                route: None,
                frequency: Frequency::Prn,
                days: 3,
                quantity: 1,
                unit: "盒".into(),
                unit_price: Fen::new(2210),
            },
        ],
        exam_orders: vec![
            ExamOrderInput { name: "胸部CT平扫".into(), kind: ExamKind::Imaging, price: Fen::new(24000) },
            ExamOrderInput { name: "血常规".into(), kind: ExamKind::Lab, price: Fen::new(2500) },
        ],
        record: Some("现病史：3天前受凉后发热。\r\n查体：右下肺可闻及湿啰音。".into()),
    }
}

fn in_consultation() -> Visit {
    let mut v = Visit::called(&appointment(AppointmentStatus::CheckedIn), " 3诊室 ", t(0)).unwrap();
    v.apply(VisitEvent::Start, t(2)).unwrap();
    v
}

fn finished() -> Visit {
    let mut v = in_consultation();
    v.write(&form(), t(10)).unwrap();
    v.apply(VisitEvent::Finish, t(12)).unwrap();
    v
}

#[test]
fn transitions_go_forward_only() {
    use VisitEvent as E;
    use VisitStatus as S;
    assert_eq!(S::Called.transition(E::Recall).unwrap(), S::Called);
    assert_eq!(S::Called.transition(E::Start).unwrap(), S::InConsultation);
    assert_eq!(S::InConsultation.transition(E::Finish).unwrap(), S::Finished);
    assert!(S::Called.transition(E::Finish).is_err(), "no finishing a visit never started");
    assert!(S::InConsultation.transition(E::Recall).is_err());
    assert!(S::InConsultation.transition(E::Start).is_err());
    for e in [E::Recall, E::Start, E::Finish] {
        assert!(matches!(S::Finished.transition(e), Err(VisitError::InvalidTransition { .. })), "finished is final");
    }
    assert_eq!(serde_json::to_value(S::InConsultation).unwrap(), "in_consultation");
    assert_eq!(S::Finished.label(), "已完成");
}

#[test]
fn a_visit_is_made_for_a_checked_in_appointment() {
    let a = appointment(AppointmentStatus::CheckedIn);
    let v = Visit::called(&a, "3诊室", t(0)).unwrap();
    assert_eq!((v.id, v.room.as_str(), v.status), (VisitId::of_appointment(a.id), "3诊室", VisitStatus::Called));
    assert_eq!(v.id.to_string(), a.id.to_string(), "one visit per appointment, found again on a re-call");
    v.check_invariants().unwrap();
    for s in [AppointmentStatus::Confirmed, AppointmentStatus::Cancelled, AppointmentStatus::Seen] {
        assert!(matches!(Visit::called(&appointment(s), "3诊室", t(0)), Err(VisitError::NotCheckedIn(_))));
    }
    let e = Visit::called(&a, " ", t(0)).unwrap_err();
    assert!(matches!(e, VisitError::Invalid(ref v) if v.field == "room"), "{e:?}");
}

#[test]
fn a_lifecycle_stamps_times() {
    let mut v = Visit::called(&appointment(AppointmentStatus::CheckedIn), "3诊室", t(0)).unwrap();
    v.apply(VisitEvent::Recall, t(5)).unwrap();
    assert_eq!(v.called_at, t(5));
    v.apply(VisitEvent::Start, t(6)).unwrap();
    assert_eq!((v.status, v.started_at), (VisitStatus::InConsultation, Some(t(6))));
    v.check_invariants().unwrap();
    v.write(&form(), t(10)).unwrap();
    v.apply(VisitEvent::Finish, t(20)).unwrap();
    assert_eq!((v.status, v.finished_at, v.updated_at), (VisitStatus::Finished, Some(t(20)), t(20)));
    v.check_invariants().unwrap();
}

#[test]
fn writing_validates_the_whole_form_first() {
    let mut v = in_consultation();
    v.write(&form(), t(10)).unwrap();
    assert_eq!(v.diagnoses[0].icd10.as_ref().unwrap().who_code(), "J18.9");
    assert_eq!(v.diagnosis_summary(), "社区获得性肺炎；高血压");
    assert_eq!(
        v.prescription.iter().map(|p| (p.no, p.amount)).collect::<Vec<_>>(),
        [(1, Fen::new(3700)), (2, Fen::new(2210))]
    );
    assert_eq!(v.record.as_deref(), Some("现病史：3天前受凉后发热。\n查体：右下肺可闻及湿啰音。"));
    let before = v.clone();
    type Break = fn(&mut ConsultationInput);
    let cases: [(&str, Break); 7] = [
        ("chief_complaint", |f| f.chief_complaint = Some("痛".repeat(MAX_CHIEF_COMPLAINT_CHARS + 1))),
        ("diagnoses.icd10", |f| f.diagnoses[1].icd10 = Some("高血压".into())),
        ("diagnoses", |f| f.diagnoses = vec![f.diagnoses[0].clone(); MAX_DIAGNOSES + 1]),
        ("prescription.days", |f| f.prescription[1].days = 0),
        ("exam_orders.name", |f| f.exam_orders[0].name = String::new()),
        ("record", |f| f.record = Some("病".repeat(MAX_RECORD_CHARS + 1))),
        ("record", |f| f.record = Some("bell\u{7}".into())),
    ];
    for (field, break_it) in cases {
        let mut f = form();
        break_it(&mut f);
        match v.write(&f, t(11)) {
            Err(VisitError::Invalid(e)) => assert_eq!(e.field, field, "{e}"),
            other => panic!("{field}: {other:?}"),
        }
        assert_eq!(v, before, "a refused form changes nothing ({field})");
    }
    // The doctor removes a line: it is gone, and numbering stays 1, 2, ...
    let mut f = form();
    f.prescription.remove(0);
    v.write(&f, t(12)).unwrap();
    assert_eq!((v.prescription.len(), v.prescription[0].no, v.prescription[0].drug.as_str()), (1, 1, "布洛芬缓释胶囊"));
    v.check_invariants().unwrap();
}

#[test]
fn writing_only_in_consultation_and_finishing_needs_a_diagnosis() {
    let mut called = Visit::called(&appointment(AppointmentStatus::CheckedIn), "3诊室", t(0)).unwrap();
    assert_eq!(called.write(&form(), t(1)), Err(VisitError::NotWritable(VisitStatus::Called)));
    let mut v = in_consultation();
    let e = v.apply(VisitEvent::Finish, t(3)).unwrap_err();
    assert!(matches!(e, VisitError::Invalid(ref e) if e.field == "chief_complaint"), "{e:?}");
    v.write(&ConsultationInput { chief_complaint: Some("头痛".into()), ..Default::default() }, t(4)).unwrap();
    let e = v.apply(VisitEvent::Finish, t(5)).unwrap_err();
    assert!(matches!(e, VisitError::Invalid(ref e) if e.field == "diagnoses"), "{e:?}");
    assert_eq!(v.status, VisitStatus::InConsultation, "a refused finish changes nothing");
    let mut done = finished();
    assert_eq!(done.write(&form(), t(30)), Err(VisitError::NotWritable(VisitStatus::Finished)), "the record is closed");
}

#[test]
fn patients_add_notes_at_any_stage() {
    let mut v = Visit::called(&appointment(AppointmentStatus::CheckedIn), "3诊室", t(0)).unwrap();
    assert_eq!(v.add_note(" 对青霉素过敏 ", t(1)).unwrap().text, "对青霉素过敏");
    let mut done = finished();
    done.add_note("服药后仍有低热\n体温37.8℃", t(60)).unwrap();
    assert_eq!(done.notes[0].text, "服药后仍有低热\n体温37.8℃");
    for i in 1..MAX_NOTES {
        done.add_note(&format!("第{i}条"), t(60)).unwrap();
    }
    let e = done.add_note("再一条", t(61)).unwrap_err();
    assert!(matches!(e, VisitError::Invalid(ref e) if e.field == "note"), "{e:?}");
    assert!(v.add_note("", t(2)).is_err());
}

#[test]
fn fee_items_follow_the_orders_once_finished() {
    let mut v = in_consultation();
    v.write(&form(), t(10)).unwrap();
    assert!(v.fee_items().is_empty(), "nothing is billable before the visit ends");
    v.apply(VisitEvent::Finish, t(12)).unwrap();
    let fees = v.unpaid_fee_items();
    let summary: Vec<_> = fees.iter().map(|f| (f.kind, f.key.no, f.name.as_str(), f.amount)).collect();
    assert_eq!(
        summary,
        [
            (FeeKind::Drug, 1, "阿莫西林胶囊", Fen::new(3700)),
            (FeeKind::Drug, 2, "布洛芬缓释胶囊", Fen::new(2210)),
            (FeeKind::Exam, 1, "胸部CT平扫", Fen::new(24000)),
            (FeeKind::Exam, 2, "血常规", Fen::new(2500)),
        ]
    );
    assert_eq!(total(&fees), Some(Fen::new(32410)));
    assert!(fees.iter().all(|f| f.patient_id == v.patient_id && f.billed_at == t(12)));

    // Pay the drugs with one order.
    let order = OrderId::new();
    let drugs: Vec<_> = fees.iter().filter(|f| f.kind == FeeKind::Drug).map(|f| f.key).collect();
    v.mark_paid(&drugs, order, t(20)).unwrap();
    v.mark_paid(&drugs, order, t(21)).unwrap(); // a retried callback
    assert_eq!(v.paid.len(), 2);
    assert_eq!(v.paid[0].paid_at, t(20), "the retry changes nothing");
    let left: Vec<_> = v.unpaid_fee_items().iter().map(|f| f.name.clone()).collect();
    assert_eq!(left, ["胸部CT平扫", "血常规"]);
    v.check_invariants().unwrap();

    // Another order cannot pay them again; an unknown key refuses the lot.
    let other = OrderId::new();
    let ct = fees[2].key;
    assert_eq!(
        v.mark_paid(&[ct, drugs[0]], other, t(22)),
        Err(VisitError::AlreadyPaid { key: drugs[0], order_id: order })
    );
    let ghost = FeeItemKey { no: 9, ..ct };
    assert_eq!(v.mark_paid(&[ct, ghost], other, t(22)), Err(VisitError::UnknownFee(ghost)));
    assert_eq!(v.unpaid_fee_items().len(), 2, "refused payments mark nothing");
    let mut open = in_consultation();
    assert_eq!(open.mark_paid(&[ct], other, t(22)), Err(VisitError::NotBillable));

    // Across a patient's visits: oldest first.
    let mut later = finished();
    later.finished_at = Some(t(100));
    let all = unpaid_fee_items([&later, &v]);
    assert_eq!(all.len(), 2 + 4);
    assert_eq!(all[0].key.visit_id, v.id);
    assert_eq!(all.last().unwrap().key.visit_id, later.id);
}

#[test]
fn exams_stay_linked_across_rewrites() {
    let mut v = in_consultation();
    v.write(&form(), t(10)).unwrap();
    let exam = ExamId::new();
    v.link_exam(1, exam).unwrap();
    assert!(v.link_exam(7, exam).is_err());
    v.write(&form(), t(11)).unwrap();
    assert_eq!(v.exam_orders[0].exam_id, Some(exam), "an order re-sent unchanged keeps its exam");
    let mut f = form();
    f.exam_orders[0].name = "胸部CT增强".into();
    v.write(&f, t(12)).unwrap();
    assert_eq!(v.exam_orders[0].exam_id, None, "a changed order is a new order");
}

#[test]
fn serde_round_trips() {
    let mut v = finished();
    v.add_note("谢谢医生", t(30)).unwrap();
    v.mark_paid(&[v.fee_items()[0].key], OrderId::new(), t(40)).unwrap();
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["status"], "finished");
    assert_eq!(json["prescription"][0]["frequency"], "tid");
    assert_eq!(json["diagnoses"][0]["icd10"], "J18.900");
    assert_eq!(serde_json::from_value::<Visit>(json).unwrap(), v);
    let packed = rmp_serde::to_vec_named(&v).unwrap();
    assert_eq!(rmp_serde::from_slice::<Visit>(&packed).unwrap(), v);
    let form_json = serde_json::json!({"chief_complaint": "头痛", "diagnoses": [{"text": "偏头痛"}]});
    let f: ConsultationInput = serde_json::from_value(form_json).unwrap();
    assert_eq!((f.diagnoses.len(), f.prescription.len()), (1, 0), "omitted lists are empty");
}

#[test]
fn imported_visits_follow_the_same_rules() {
    use super::ImportedVisit;
    let appt = appointment(AppointmentStatus::CheckedIn);
    let t0 = t(0);
    let header = |finished| ImportedVisit {
        id: VisitId::new(),
        appointment_id: appt.id,
        account_id: appt.account_id,
        patient_id: appt.patient_id,
        patient_name: appt.patient_name.clone(),
        doctor_id: appt.doctor_id,
        department_id: appt.department_id,
        room: "5诊室".into(),
        started_at: t0,
        finished_at: finished,
    };
    let v = Visit::imported(header(Some(t0 + chrono::Duration::minutes(9))), &form()).unwrap();
    assert_eq!(v.status, VisitStatus::Finished);
    assert!(!v.fee_items().is_empty(), "billable like any finished visit");
    v.check_invariants().unwrap();
    let open = Visit::imported(header(None), &form()).unwrap();
    assert_eq!(open.status, VisitStatus::InConsultation);
    let bare = ConsultationInput::default();
    assert!(Visit::imported(header(Some(t0)), &bare).is_err(), "finishing needs a diagnosis");
    assert!(Visit::imported(header(Some(t0 - chrono::Duration::minutes(1))), &form()).is_err());
}
