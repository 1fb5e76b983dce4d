//! The medical record PDF, read back with poppler (pdftotext, pdfinfo, pdffonts): the Chinese
//! text comes out as written, the font is embedded as a subset (and the file stays small), and
//! a long record flows onto numbered pages without losing or repeating a line.

mod common;

use common::*;
use hospital_documents::font::DEFAULT_FONTS;
use hospital_documents::{render_medical_record, CjkFont, MedicalRecordInput, PdfError};
use hospital_domain::time::HospitalZone;
use hospital_domain::AccountId;
use std::path::Path;

const POPPLER: &str = "install the Debian package poppler-utils";

fn input(record: &str) -> MedicalRecordInput {
    let patient = patient("李晓梅");
    let visit = finished_visit(&patient, AccountId::new(), 0, record);
    MedicalRecordInput {
        hospital: hospital(),
        patient,
        visit,
        doctor_name: "王建国".into(),
        department_name: "呼吸内科".into(),
        zone: HospitalZone::default(),
        generated_at: at(30),
    }
}

fn default_font() -> CjkFont {
    CjkFont::load_default().unwrap_or_else(|e| panic!("{e}"))
}

/// Writes the PDF to a file and returns pdftotext's reading of `pages` (all when `None`).
fn text_of(pdf: &[u8], dir: &Path, pages: Option<(usize, usize)>) -> String {
    let file = dir.join("record.pdf");
    std::fs::write(&file, pdf).unwrap();
    let mut args = vec!["-enc", "UTF-8"];
    let (f, l);
    if let Some((first, last)) = pages {
        (f, l) = (first.to_string(), last.to_string());
        args.extend(["-f", &f, "-l", &l]);
    }
    args.extend([path_str(&file), "-"]);
    run("pdftotext", &args, POPPLER)
}

fn page_count(pdf: &[u8], dir: &Path) -> usize {
    let file = dir.join("count.pdf");
    std::fs::write(&file, pdf).unwrap();
    let info = run("pdfinfo", &[path_str(&file)], POPPLER);
    let line = info.lines().find(|l| l.starts_with("Pages:")).expect("pdfinfo prints Pages:");
    line["Pages:".len()..].trim().parse().unwrap()
}

/// Text with all whitespace removed: pdftotext may put line breaks and spaces where the
/// layout wrapped, and the content is what is checked.
fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn the_chinese_record_comes_out_of_pdftotext() {
    let dir = tempfile::tempdir().unwrap();
    let font = default_font();
    let input = input(common::RECORD);
    let pdf = render_medical_record(&font, &input).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let text = squeeze(&text_of(&pdf, dir.path(), None));
    for expected in [
        "示例市第一人民医院",
        "门诊病历",
        "示例市滨江区健康大道1号",
        "李晓梅",
        "37岁",
        "呼吸内科",
        "王建国",
        "2026-03-0209:02", // the start, in Shanghai time (01:02 UTC)
        "发热、咳嗽3天，伴咳黄痰",
        "1.社区获得性肺炎（ICD-10：J18.900）",
        "2.原发性高血压（ICD-10：I10）",
        "右下肺可闻及湿啰音",
        "BP138/86mmHg",
        "阿莫西林克拉维酸钾片",
        "0.375g口服每日三次×7天",
        "¥65.20", // 2 × ¥32.60
        "¥90.00", // the prescription total (65.20 + 24.80)
        "胸部CT平扫",
        "¥285.00", // the exam total
        "医生签名：王建国",
        "第1页/共1页",
    ] {
        assert!(text.contains(&squeeze(expected)), "missing {expected:?} in:\n{text}");
    }

    // Embedded, and as a subset (poppler reports "emb yes sub yes"), with a ToUnicode map.
    let file = dir.path().join("fonts.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let fonts = run("pdffonts", &[path_str(&file)], POPPLER);
    let row = fonts.lines().nth(2).unwrap_or_else(|| panic!("one font listed:\n{fonts}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert!(cols[0].len() > 7 && cols[0].as_bytes()[6] == b'+', "a subset name ABCDEF+Name: {row}");
    assert!(row.contains("Identity-H"), "{row}");
    assert_eq!(&cols[cols.len() - 5..cols.len() - 2], ["yes", "yes", "yes"], "emb, sub, uni: {row}");
    assert_eq!(fonts.lines().count(), 3, "a single font:\n{fonts}");
}

#[test]
fn the_font_is_subset_so_the_file_stays_small() {
    let font = default_font();
    let input = input(common::RECORD);
    let pdf = render_medical_record(&font, &input).unwrap();
    println!("font file {} bytes; record PDF {} bytes ({})", font.file_size(), pdf.len(), font.path().display());
    assert!(font.file_size() > 4_000_000, "the whole font is megabytes: {}", font.file_size());
    assert!(pdf.len() < 150_000, "a one-page record with a subset font is small: {} bytes", pdf.len());
    // The same document gives the same bytes (no clocks, no random ids inside).
    assert_eq!(render_medical_record(&font, &input).unwrap(), pdf);
}

#[test]
fn a_long_record_flows_onto_numbered_pages() {
    let dir = tempfile::tempdir().unwrap();
    let font = default_font();
    // 150 paragraphs with a marker each, long enough to wrap over several lines.
    let paragraphs: Vec<String> = (1..=150)
        .map(|i| format!("【段{i:03}】患者诉夜间咳嗽加重，影响睡眠，自行服用止咳糖浆后稍缓解，Mixed English words wrap at spaces too。"))
        .collect();
    let record = paragraphs.join("\n");
    let pdf = render_medical_record(&font, &input(&record)).unwrap();
    let pages = page_count(&pdf, dir.path());
    assert!(pages >= 4, "150 wrapped paragraphs take several pages: {pages}");
    println!("long record: {pages} pages, {} bytes", pdf.len());

    let all = squeeze(&text_of(&pdf, dir.path(), None));
    let mut last = 0;
    for i in 1..=150 {
        let marker = format!("【段{i:03}】");
        assert_eq!(all.matches(&marker).count(), 1, "{marker} once, not lost nor repeated at a page break");
        let pos = all.find(&marker).unwrap();
        assert!(pos > last, "{marker} in order");
        last = pos;
    }
    for n in 1..=pages {
        let page = squeeze(&text_of(&pdf, dir.path(), Some((n, n))));
        assert!(page.contains(&format!("第{n}页/共{pages}页")), "page {n} is numbered:\n{page}");
        assert!(page.contains("示例市第一人民医院"), "page {n} has the hospital's header");
    }
    let last_page = squeeze(&text_of(&pdf, dir.path(), Some((pages, pages))));
    assert!(last_page.contains("医生签名：王建国"), "the signature ends the record");
    assert!(pdf.len() < 400_000, "still small over {pages} pages: {} bytes", pdf.len());
}

#[test]
fn every_installed_cjk_font_works() {
    // The default font (TrueType outlines) must be there; Noto CJK (CFF outlines) is checked
    // too where it is installed, since a deployment may configure it.
    let dir = tempfile::tempdir().unwrap();
    let installed: Vec<_> = DEFAULT_FONTS.iter().filter(|(p, _)| Path::new(p).exists()).collect();
    assert!(!installed.is_empty(), "{}", CjkFont::load_default().unwrap_err());
    for (path, index) in installed {
        let font = CjkFont::load(path, *index).unwrap();
        let pdf = render_medical_record(&font, &input(common::RECORD)).unwrap();
        let text = squeeze(&text_of(&pdf, dir.path(), None));
        assert!(text.contains("社区获得性肺炎（ICD-10：J18.900）"), "{path}: {text}");
        println!("{path}: font {} bytes, PDF {} bytes", font.file_size(), pdf.len());
        if let Ok(dir) = std::env::var("DOCUMENTS_SAMPLE_DIR") {
            let name = Path::new(path).file_stem().unwrap().to_string_lossy().into_owned();
            std::fs::write(Path::new(&dir).join(format!("record-{name}.pdf")), &pdf).unwrap();
        }
        assert!(pdf.len() < 150_000, "{path}: {} bytes", pdf.len());
    }
}

#[test]
fn characters_the_font_lacks_are_stood_in_for_and_a_wrong_patient_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let font = default_font();
    let mut input = input("体温正常🙂，咳嗽减轻，今晨体温37.2℃");
    let pdf = render_medical_record(&font, &input).unwrap();
    let text = squeeze(&text_of(&pdf, dir.path(), None));
    assert!(text.contains("体温正常?，咳嗽减轻"), "{text}");
    // WenQuanYi maps ℃ to a blank glyph: it is printed as °C rather than as a gap.
    assert!(text.contains("37.2°C") || text.contains("37.2℃"), "{text}");

    input.patient.id = hospital_domain::PatientId::new();
    assert!(matches!(render_medical_record(&font, &input), Err(PdfError::WrongPatient { .. })));
}

/// Writes sample PDFs for a person to look at: `DOCUMENTS_SAMPLE_DIR=/tmp/x cargo test -p
/// hospital-documents --test pdf write_samples`. Without the variable it only renders.
#[test]
fn write_samples() {
    let font = default_font();
    let short = render_medical_record(&font, &input(common::RECORD)).unwrap();
    let long_text =
        (1..=60).map(|i| format!("【段{i:03}】{}", common::RECORD.replace('\n', ""))).collect::<Vec<_>>().join("\n");
    let long = render_medical_record(&font, &input(&long_text)).unwrap();
    if let Ok(dir) = std::env::var("DOCUMENTS_SAMPLE_DIR") {
        std::fs::write(Path::new(&dir).join("record.pdf"), &short).unwrap();
        std::fs::write(Path::new(&dir).join("record-long.pdf"), &long).unwrap();
    }
    assert!(long.len() > short.len());
}
