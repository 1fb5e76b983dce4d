//! What a medical record says, and where: the body flowed through `layout::Flow`, then the
//! running header and the page numbers put on every page once the page count is known.

use chrono::{DateTime, Utc};
use hospital_domain::time::HospitalZone;
use hospital_domain::visit::{Visit, VisitStatus};
use hospital_domain::Fen;

use super::layout::{leading, text_op, Align, Column, Flow, Geometry, Measure, Op, Page};
use super::MedicalRecordInput;
use crate::input::gender_label;

const TITLE: &str = "门诊病历";
const NAME_SIZE: f32 = 16.0;
const TITLE_SIZE: f32 = 13.0;
const SMALL: f32 = 8.5;
const HEADING: f32 = 11.5;
const BODY: f32 = 10.5;
const TABLE: f32 = 9.5;
/// The body text sits this far in from the section headings.
const INDENT: f32 = 12.0;

/// An instant in the hospital's zone, formatted.
pub(crate) fn local(zone: HospitalZone, t: DateTime<Utc>, fmt: &str) -> String {
    t.with_timezone(&zone.0).format(fmt).to_string()
}

/// The whole record, laid out on pages with header and footer.
pub(crate) fn lay_out(m: &dyn Measure, input: &MedicalRecordInput) -> Vec<Page> {
    let g = Geometry::A4;
    let mut flow = Flow::new(m, g);
    body(&mut flow, input);
    let mut pages = flow.finish();
    let total = pages.len();
    for (i, page) in pages.iter_mut().enumerate() {
        header(m, g, page, input);
        footer(m, g, page, input, i + 1, total);
    }
    pages
}

fn body(flow: &mut Flow<'_>, input: &MedicalRecordInput) {
    let v = &input.visit;
    let p = &input.patient;
    let z = input.zone;
    let visit_day = z.local_date(v.called_at);
    let age = p.age_on(visit_day).map_or_else(|| "—".to_string(), |a| format!("{a}岁"));
    let mut fields = vec![
        ("姓名", p.name.clone()),
        ("性别", gender_label(p.gender).to_string()),
        ("年龄", age),
        ("科室", input.department_name.clone()),
        ("医生", input.doctor_name.clone()),
        ("诊室", v.room.clone()),
        ("就诊时间", local(z, v.started_at.unwrap_or(v.called_at), "%Y-%m-%d %H:%M")),
    ];
    fields.push(match v.finished_at {
        Some(t) => ("完成时间", local(z, t, "%Y-%m-%d %H:%M")),
        None => ("状态", v.status.label().to_string()),
    });
    flow.fields(&fields, 2, BODY);
    // The id on a line of its own: 36 characters do not fit half a line in every font.
    flow.fields(&[("就诊号", v.id.to_string())], 1, BODY);
    flow.space(4.0);
    flow.rule(0.6);
    flow.space(4.0);

    flow.heading("主诉", HEADING);
    flow.paragraph(v.chief_complaint.as_deref().unwrap_or("（未填写）"), BODY, INDENT);

    flow.heading("诊断", HEADING);
    if v.diagnoses.is_empty() {
        flow.paragraph("（未填写）", BODY, INDENT);
    }
    for (i, d) in v.diagnoses.iter().enumerate() {
        let line = match &d.icd10 {
            Some(code) => format!("{}. {}（ICD-10：{code}）", i + 1, d.text),
            None => format!("{}. {}", i + 1, d.text),
        };
        flow.paragraph(&line, BODY, INDENT);
    }

    flow.heading("病历记录", HEADING);
    flow.paragraph(v.record.as_deref().unwrap_or("（未填写）"), BODY, INDENT);

    if !v.prescription.is_empty() {
        flow.heading("处方", HEADING);
        prescription(flow, v);
    }
    if !v.exam_orders.is_empty() {
        flow.heading("检查检验", HEADING);
        exams(flow, v);
    }

    flow.space(leading(BODY));
    let signed = match (v.status, v.finished_at) {
        (VisitStatus::Finished, Some(t)) => {
            format!("医生签名：{}    日期：{}", input.doctor_name, local(z, t, "%Y-%m-%d"))
        }
        _ => format!("医生：{}（就诊未完成，本病历尚未签署）", input.doctor_name),
    };
    flow.paragraph(&signed, BODY, 0.0);
}

fn prescription(flow: &mut Flow<'_>, v: &Visit) {
    let cols = [
        Column { title: "序号", share: 0.5, align: Align::Left },
        Column { title: "药品及规格", share: 3.0, align: Align::Left },
        Column { title: "用法用量", share: 2.6, align: Align::Left },
        Column { title: "数量", share: 0.9, align: Align::Right },
        Column { title: "单价", share: 1.1, align: Align::Right },
        Column { title: "金额", share: 1.2, align: Align::Right },
    ];
    let rows: Vec<Vec<String>> = v
        .prescription
        .iter()
        .map(|p| {
            let drug = match &p.spec {
                Some(spec) => format!("{}\n{spec}", p.drug),
                None => p.drug.clone(),
            };
            vec![
                p.no.to_string(),
                drug,
                p.usage(),
                format!("{}{}", p.quantity, p.unit),
                p.unit_price.to_string(),
                p.amount.to_string(),
            ]
        })
        .collect();
    let total = sum(v.prescription.iter().map(|p| p.amount));
    let footer = ["".into(), "合计".into(), "".into(), "".into(), "".into(), total];
    flow.table(&cols, &rows, Some(&footer), TABLE);
}

fn exams(flow: &mut Flow<'_>, v: &Visit) {
    let cols = [
        Column { title: "序号", share: 0.5, align: Align::Left },
        Column { title: "项目", share: 5.0, align: Align::Left },
        Column { title: "类别", share: 1.5, align: Align::Left },
        Column { title: "价格", share: 1.5, align: Align::Right },
    ];
    let rows: Vec<Vec<String>> = v
        .exam_orders
        .iter()
        .map(|e| {
            let kind = match e.kind {
                hospital_domain::exam::ExamKind::Imaging => "影像检查",
                hospital_domain::exam::ExamKind::Lab => "检验",
            };
            vec![e.no.to_string(), e.name.clone(), kind.to_string(), e.price.to_string()]
        })
        .collect();
    let total = sum(v.exam_orders.iter().map(|e| e.price));
    let footer = ["".into(), "合计".into(), "".into(), total];
    flow.table(&cols, &rows, Some(&footer), TABLE);
}

/// A column total; amounts are bounded on entry, so overflow is a bug and shows as such.
fn sum(mut amounts: impl Iterator<Item = Fen>) -> String {
    amounts.try_fold(Fen::ZERO, Fen::checked_add).map_or_else(|| "—".to_string(), |t| t.to_string())
}

fn centered(m: &dyn Measure, g: Geometry, y: f32, size: f32, bold: bool, text: String) -> Op {
    text_op(m, (g.width - m.width(&text, size)) / 2.0, y, size, bold, &text)
}

/// Hospital name, document title, address and phone, and a double rule, above the body.
fn header(m: &dyn Measure, g: Geometry, page: &mut Page, input: &MedicalRecordInput) {
    let h = &input.hospital;
    let mut y = g.height - 40.0 - NAME_SIZE;
    let mut ops = vec![centered(m, g, y, NAME_SIZE, true, h.name.clone())];
    y -= leading(TITLE_SIZE) + 2.0;
    ops.push(centered(m, g, y, TITLE_SIZE, true, TITLE.to_string()));
    y -= leading(SMALL) + 2.0;
    let contact = match &h.phone {
        Some(phone) => format!("地址：{}    电话：{phone}", h.address),
        None => format!("地址：{}", h.address),
    };
    ops.push(centered(m, g, y, SMALL, false, contact));
    y -= 7.0;
    let (x1, x2) = (g.left, g.width - g.right);
    ops.push(Op::Line { x1, y1: y, x2, y2: y, width: 1.2 });
    ops.push(Op::Line { x1, y1: y - 2.0, x2, y2: y - 2.0, width: 0.4 });
    page.ops.splice(0..0, ops);
}

/// The patient and page number at the foot of every page, so a loose page is traceable.
fn footer(m: &dyn Measure, g: Geometry, page: &mut Page, input: &MedicalRecordInput, n: usize, total: usize) {
    let y = 36.0;
    let (x1, x2) = (g.left, g.width - g.right);
    page.ops.push(Op::Line { x1, y1: y + 14.0, x2, y2: y + 14.0, width: 0.4 });
    let who = format!("{} · {}", input.patient.name, local(input.zone, input.visit.called_at, "%Y-%m-%d"));
    page.ops.push(text_op(m, g.left, y, SMALL, false, &who));
    page.ops.push(centered(m, g, y, SMALL, false, format!("第 {n} 页 / 共 {total} 页")));
    let generated = format!("生成于 {}", local(input.zone, input.generated_at, "%Y-%m-%d %H:%M"));
    let x = x2 - m.width(&generated, SMALL);
    page.ops.push(text_op(m, x, y, SMALL, false, &generated));
}
