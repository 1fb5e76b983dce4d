//! One function per kind of resource, from the platform's types to FHIR R4 JSON. `Ctx` knows
//! what is in the bundle, so a reference is written only to a resource that is there.

use std::collections::HashMap;

use base64::Engine as _;
use hospital_domain::exam::{Exam, ExamStatus};
use hospital_domain::visit::{Frequency, VisitId, VisitStatus};
use hospital_domain::{AppointmentId, ExamId};
use serde_json::{json, Map, Value};

use super::codes::{self, instant};
use super::{AppointmentInfo, PersonExport, ReportContent, ReportFile, VisitInfo};
use crate::input::PatientInfo;

/// What the bundle holds, for the links between resources.
pub(crate) struct Ctx<'a> {
    patient: &'a PatientInfo,
    appointments: Vec<AppointmentId>,
    /// Each exam's order: the visit and line that ordered it, when the visit is exported.
    exam_orders: HashMap<ExamId, (VisitId, u32)>,
    exams: HashMap<ExamId, &'a Exam>,
    visits: Vec<VisitId>,
}

impl<'a> Ctx<'a> {
    pub fn new(data: &'a PersonExport) -> Self {
        let exam_orders = data
            .visits
            .iter()
            .flat_map(|v| v.visit.exam_orders.iter().filter_map(|o| Some((o.exam_id?, (v.visit.id, o.no)))))
            .collect();
        Self {
            patient: &data.patient,
            appointments: data.appointments.iter().map(|a| a.id).collect(),
            exam_orders,
            exams: data.exams.iter().map(|e| (e.id, e)).collect(),
            visits: data.visits.iter().map(|v| v.visit.id).collect(),
        }
    }

    fn subject(&self) -> Value {
        json!({ "reference": format!("Patient/{}", self.patient.id), "display": self.patient.name })
    }
}

fn reference(kind: &str, id: impl std::fmt::Display) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

/// The ids of a visit's children: `<visit id>-dx1`, `-rx1`, `-ex1`.
fn child_id(visit: VisitId, tag: &str, no: impl std::fmt::Display) -> String {
    format!("{visit}-{tag}{no}")
}

/// Drops null members, so optional elements are absent rather than `null` (FHIR JSON has no
/// nulls) — one place instead of an `if` per optional field.
fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, compact(v))).collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(compact).collect()),
        other => other,
    }
}

pub(crate) fn patient(p: &PatientInfo) -> Value {
    let telecom = p.phone.as_ref().map(|phone| json!([{ "system": "phone", "value": phone, "use": "mobile" }]));
    compact(json!({
        "resourceType": "Patient",
        "id": p.id.to_string(),
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", p.id) }],
        "name": [{ "text": p.name }],
        "telecom": telecom,
        "gender": codes::gender(p.gender),
        "birthDate": p.birth_date.map(|d| d.to_string()),
    }))
}

pub(crate) fn appointment(ctx: &Ctx<'_>, a: &AppointmentInfo) -> Value {
    compact(json!({
        "resourceType": "Appointment",
        "id": a.id.to_string(),
        "status": codes::appointment_status(a.status),
        "serviceType": [{ "text": a.department_name }],
        "start": instant(a.start),
        "end": instant(a.end),
        "created": instant(a.created_at),
        "participant": [
            { "actor": ctx.subject(), "status": "accepted" },
            { "actor": { "display": a.doctor_name }, "status": "accepted" },
        ],
    }))
}

/// The Encounter of a visit, then its Conditions, MedicationRequests and ServiceRequests.
pub(crate) fn visit(ctx: &Ctx<'_>, info: &VisitInfo) -> Vec<Value> {
    let v = &info.visit;
    let encounter_ref = reference("Encounter", v.id);
    let doctor = json!({ "display": info.doctor_name });
    // Orders are authored when written; the visit's last change stands for that.
    let authored = instant(v.finished_at.unwrap_or(v.updated_at));
    let finished = v.status == VisitStatus::Finished;
    let conditions: Vec<Value> =
        (1..=v.diagnoses.len()).map(|n| reference("Condition", child_id(v.id, "dx", n))).collect();

    let appointment =
        ctx.appointments.contains(&v.appointment_id).then(|| json!([reference("Appointment", v.appointment_id)]));
    let diagnosis: Vec<Value> =
        conditions.iter().zip(1..).map(|(c, rank)| json!({ "condition": c, "rank": rank })).collect();
    let encounter = compact(json!({
        "resourceType": "Encounter",
        "id": v.id.to_string(),
        "status": codes::encounter_status(v.status),
        "class": codes::ambulatory(),
        "serviceType": { "text": info.department_name },
        "subject": ctx.subject(),
        "participant": [{ "individual": doctor }],
        "appointment": appointment,
        "period": { "start": instant(v.started_at.unwrap_or(v.called_at)), "end": v.finished_at.map(instant) },
        "reasonCode": v.chief_complaint.as_ref().map(|c| json!([{ "text": c }])),
        "diagnosis": (!diagnosis.is_empty()).then_some(diagnosis),
        "location": [{ "location": { "display": v.room } }],
    }));
    let mut out = vec![encounter];

    for (n, d) in v.diagnoses.iter().enumerate() {
        let mut coding = Vec::new();
        if let Some(code) = &d.icd10 {
            coding.push(json!({ "system": codes::ICD10_SYSTEM, "code": code.who_code() }));
            if !code.is_who() {
                coding.push(json!({ "system": codes::ICD10_CN_SYSTEM, "code": code.as_str(), "display": d.text }));
            }
        }
        out.push(compact(json!({
            "resourceType": "Condition",
            "id": child_id(v.id, "dx", n + 1),
            "clinicalStatus": codes::condition_active(),
            "verificationStatus": codes::condition_confirmed(),
            "category": [codes::encounter_diagnosis()],
            "code": { "coding": (!coding.is_empty()).then_some(coding), "text": d.text },
            "subject": ctx.subject(),
            "encounter": encounter_ref,
            "recordedDate": authored,
            "recorder": doctor,
        })));
    }

    let status = if finished { "active" } else { "draft" };
    for p in &v.prescription {
        let medication = match &p.spec {
            Some(spec) => format!("{} {spec}", p.drug),
            None => p.drug.clone(),
        };
        let dosage = json!({
            "sequence": 1,
            "text": p.usage(),
            "timing": codes::timing(p.frequency, p.days),
            "asNeededBoolean": (p.frequency == Frequency::Prn).then_some(true),
            "route": p.route.as_ref().map(|r| json!({ "text": r })),
        });
        out.push(compact(json!({
            "resourceType": "MedicationRequest",
            "id": child_id(v.id, "rx", p.no),
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": { "text": medication },
            "subject": ctx.subject(),
            "encounter": encounter_ref,
            "authoredOn": authored,
            "requester": doctor,
            "reasonReference": (!conditions.is_empty()).then_some(&conditions),
            "dosageInstruction": [dosage],
            "dispenseRequest": {
                "quantity": { "value": p.quantity, "unit": p.unit },
                "expectedSupplyDuration": codes::days(p.days),
            },
        })));
    }

    if let Some(record) = &v.record {
        out.push(medical_record(ctx, info, record, &encounter_ref, &authored));
    }

    for o in &v.exam_orders {
        let exam = o.exam_id.and_then(|id| ctx.exams.get(&id));
        let status = match exam {
            Some(e) if e.status == ExamStatus::Completed => "completed",
            _ if finished => "active",
            _ => "draft",
        };
        out.push(compact(json!({
            "resourceType": "ServiceRequest",
            "id": child_id(v.id, "ex", o.no),
            "status": status,
            "intent": "order",
            "category": [codes::service_category(o.kind)],
            "code": { "text": o.name },
            "subject": ctx.subject(),
            "encounter": encounter_ref,
            "authoredOn": authored,
            "requester": doctor,
            "reasonReference": (!conditions.is_empty()).then_some(&conditions),
        })));
    }
    out
}

/// The medical record (电子病历) of a visit as a Composition: the record text as its one section,
/// with the chief complaint and diagnoses it belongs with by reference.
fn medical_record(ctx: &Ctx<'_>, info: &VisitInfo, record: &str, encounter: &Value, date: &str) -> Value {
    let v = &info.visit;
    let mut div = String::from("<div xmlns=\"http://www.w3.org/1999/xhtml\">");
    for (i, line) in record.lines().enumerate() {
        if i > 0 {
            div.push_str("<br/>");
        }
        div.push_str(&xhtml_escape(line));
    }
    div.push_str("</div>");
    let status = if v.status == VisitStatus::Finished { "final" } else { "preliminary" };
    let conditions: Vec<Value> =
        (1..=v.diagnoses.len()).map(|n| reference("Condition", child_id(v.id, "dx", n))).collect();
    compact(json!({
        "resourceType": "Composition",
        "id": child_id(v.id, "record", ""),
        "status": status,
        "type": codes::outpatient_note(),
        "subject": ctx.subject(),
        "encounter": encounter,
        "date": date,
        "author": [{ "display": info.doctor_name }],
        "title": format!("门诊病历 {}", info.department_name),
        "section": [{
            "title": "病历记录",
            "text": { "status": "generated", "div": div },
            "entry": (!conditions.is_empty()).then_some(conditions),
        }],
    }))
}

/// Text as XHTML character data.
fn xhtml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The DiagnosticReport of an exam, and once it is completed the Observation of its result.
pub(crate) fn exam(ctx: &Ctx<'_>, e: &Exam) -> Vec<Value> {
    let order = ctx.exam_orders.get(&e.id);
    let based_on = order.map(|(visit, no)| json!([reference("ServiceRequest", child_id(*visit, "ex", no))]));
    let encounter = order.map(|(visit, _)| reference("Encounter", visit));
    let completed = e.status == ExamStatus::Completed;
    let observation_id = format!("{}-result", e.id);
    let result = completed.then(|| json!([reference("Observation", &observation_id)]));
    let report = compact(json!({
        "resourceType": "DiagnosticReport",
        "id": e.id.to_string(),
        "basedOn": based_on,
        "status": codes::report_status(e.status),
        "category": [codes::report_category(e.kind)],
        "code": { "text": e.name },
        "subject": ctx.subject(),
        "encounter": encounter,
        "effectiveDateTime": instant(e.ordered_at),
        "issued": e.completed_at.map(instant),
        "result": result,
        "conclusion": e.summary,
        "conclusionCode": completed.then(|| json!([codes::interpretation(e.abnormal)])),
    }));
    let mut out = vec![report];
    if let (true, Some(done)) = (completed, e.completed_at) {
        out.push(compact(json!({
            "resourceType": "Observation",
            "id": observation_id,
            "status": "final",
            "category": [codes::observation_category(e.kind)],
            "code": { "text": e.name },
            "subject": ctx.subject(),
            "encounter": encounter,
            "effectiveDateTime": instant(done),
            "issued": instant(done),
            "valueString": e.summary,
            "interpretation": [codes::interpretation(e.abnormal)],
        })));
    }
    out
}

/// The DocumentReference of a report file. Its id is the exam's and a hash of the object key:
/// stable, at most 53 characters, and within FHIR's id alphabet whatever the key holds.
pub(crate) fn document(ctx: &Ctx<'_>, r: &ReportFile) -> Value {
    let owner = r.exam_id.map(|e| e.0).or(r.visit_id.map(|v| v.0)).unwrap_or_default();
    let id = format!("{owner}-{:016x}", crate::hash::fnv1a(r.key.bytes()));
    let mut attachment = json!({
        "contentType": r.content_type,
        "title": r.title,
        "creation": instant(r.created_at),
        // R4's Attachment.size is an unsignedInt (32-bit signed range); a larger file omits it.
        "size": i32::try_from(r.size).ok(),
    });
    match &r.content {
        ReportContent::Url(url) => attachment["url"] = json!(url),
        ReportContent::Inline(bytes) => {
            attachment["data"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
    }
    let visit = r.exam_id.and_then(|e| ctx.exam_orders.get(&e)).map(|(visit, _)| *visit).or(r.visit_id);
    let encounter = visit.filter(|v| ctx.visits.contains(v)).map(|visit| json!([reference("Encounter", visit)]));
    let related = r.exam_id.map(|e| json!([reference("DiagnosticReport", e)]));
    compact(json!({
        "resourceType": "DocumentReference",
        "id": id,
        "status": "current",
        "type": { "text": if r.exam_id.is_some() { "检查报告" } else { "就诊资料" } },
        "subject": ctx.subject(),
        "date": instant(r.created_at),
        "description": r.title,
        "content": [{ "attachment": attachment }],
        "context": { "encounter": encounter, "related": related },
    }))
}
