//! The catalogue import (INFO-1, INFO-3, BOOK-9): departments, doctors and weekly schedule
//! templates read from a spreadsheet (the reading of CSV and XLSX bytes into `Sheet`s is the
//! gateway's), checked row by row into a `Plan` and a list of `RowError`s, each naming its sheet,
//! row and column. Every row is checked, so a dry run lists every error of the file at once; a
//! plan is only ever applied when the list is empty.
//!
//! Rows are named by natural keys the hospital already uses: a department's code (科室编码), a
//! doctor's code (工号). The gateway keeps the code -> id map, so importing the same file twice
//! updates the same departments and doctors instead of making new ones.
//!
//! Headers are matched case-insensitively, in English or Chinese (`code` or `科室编码`); a sheet is
//! recognised by its name (`departments` / `科室`, `doctors` / `医生`, `templates` / `排班模板`)
//! or, for a CSV file (one sheet, no name), by its columns.

use chrono::NaiveTime;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

use crate::catalog::DoctorTitle;
use crate::schedule::{Period, TemplateLine};
use crate::Fen;

/// A file holds at most this many data rows in all (a large hospital has a few thousand
/// doctors and template lines).
pub const MAX_ROWS: usize = 20_000;

/// One cell as the reader found it: XLSX numbers and times arrive as numbers (a time of day as a
/// fraction of a day), everything in a CSV file as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
}

impl Cell {
    fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => s.trim().is_empty(),
            Cell::Number(_) => false,
        }
    }

    /// The cell as text (a whole number without its `.0`).
    fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.trim().to_string(),
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => n.to_string(),
        }
    }
}

/// A sheet of a workbook (or the one table of a CSV file): its name and its rows from the
/// sheet's first (row `i` is numbered `i + 1`); the first row with anything in it is the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub name: String,
    pub rows: Vec<Vec<Cell>>,
}

/// What a sheet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SheetKind {
    Departments,
    Doctors,
    Templates,
}

impl SheetKind {
    pub const ALL: [SheetKind; 3] = [SheetKind::Departments, SheetKind::Doctors, SheetKind::Templates];

    /// The kind a sheet's (or a `kind` parameter's) name stands for.
    pub fn from_name(name: &str) -> Option<SheetKind> {
        match name.trim().to_lowercase().as_str() {
            "departments" | "department" | "科室" => Some(SheetKind::Departments),
            "doctors" | "doctor" | "医生" => Some(SheetKind::Doctors),
            "templates" | "template" | "排班模板" | "排班" => Some(SheetKind::Templates),
            _ => None,
        }
    }

    /// What the hospital calls a sheet of the kind.
    fn label(self) -> &'static str {
        match self {
            SheetKind::Departments => "科室",
            SheetKind::Doctors => "医生",
            SheetKind::Templates => "排班模板",
        }
    }

    /// The Chinese header of the kind's column `column` (an English name); `column` itself for a
    /// column the kind does not have (a header as the file wrote it).
    pub fn column_label(self, column: &str) -> String {
        self.columns().iter().find(|(en, _, _)| *en == column).map_or(column, |(_, zh, _)| zh).to_string()
    }

    /// The columns of the kind: (name, Chinese name, required).
    fn columns(self) -> &'static [(&'static str, &'static str, bool)] {
        match self {
            SheetKind::Departments => &[
                ("code", "科室编码", true),
                ("name", "科室名称", true),
                ("parent_code", "上级科室编码", false),
                ("location", "位置", false),
                ("description", "简介", false),
                ("sort", "排序", false),
            ],
            SheetKind::Doctors => &[
                ("code", "医生编码", true),
                ("name", "姓名", true),
                ("department_code", "科室编码", true),
                ("title", "职称", true),
                ("specialties", "专长", false),
                ("introduction", "简介", false),
            ],
            SheetKind::Templates => &[
                ("doctor_code", "医生编码", true),
                ("weekday", "星期", true),
                ("period", "时段", true),
                ("start", "开始时间", true),
                ("end", "结束时间", true),
                ("segment_minutes", "每段分钟", true),
                ("quota", "每段号数", true),
                ("fee_yuan", "挂号费", false),
                ("release_days_before", "提前放号天数", false),
                ("release_time", "放号时间", false),
            ],
        }
    }

    /// The kind a header row is, for a sheet whose name says nothing.
    fn from_header(header: &[String]) -> SheetKind {
        let has = |a: &str, b: &str| header.iter().any(|h| h == a || h == b);
        if has("weekday", "星期") {
            SheetKind::Templates
        } else if has("title", "职称") {
            SheetKind::Doctors
        } else {
            SheetKind::Departments
        }
    }
}

/// One problem with one row (or with a sheet's header row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    pub sheet: String,
    /// The row number as the spreadsheet shows it (counting the header).
    pub row: u32,
    /// The column at fault, if one is: its English name (`fee_yuan`), or the header as the file
    /// wrote it for a column the sheet does not have.
    pub column: Option<String>,
    /// The same column as the hospital's sheets head it (`挂号费`), for staff pages.
    pub label: Option<String>,
    /// `missing`, `invalid`, `duplicate`, `unknown_department`, `unknown_doctor`,
    /// `unknown_column`, `missing_column`, `too_many_rows`.
    pub code: &'static str,
    pub message: String,
    /// The message in the hospital's language, for staff pages (the import is the back office's,
    /// and its sheets are headed in Chinese): what is wrong and what the cell should hold.
    pub message_zh: String,
}

/// A department row, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartmentRow {
    pub row: u32,
    pub code: String,
    pub name: String,
    pub parent_code: Option<String>,
    pub location: String,
    pub description: String,
    pub sort: i32,
}

/// A doctor row, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorRow {
    pub row: u32,
    pub code: String,
    pub name: String,
    pub department_code: String,
    pub title: DoctorTitle,
    pub specialties: Vec<String>,
    pub introduction: String,
}

/// A template row, checked: one weekly line of a doctor's template and how its sessions are
/// sold (fee: the title's default when absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub row: u32,
    pub doctor_code: String,
    pub line: TemplateLine,
    pub fee: Option<Fen>,
    pub release_days_before: u32,
    pub release_time: NaiveTime,
}

/// A sheet as it was understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SheetSummary {
    pub name: String,
    pub kind: SheetKind,
    /// Data rows (blank rows not counted).
    pub rows: usize,
}

/// What a file asks to be written, in order: departments, then doctors, then templates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub sheets: Vec<SheetSummary>,
    pub departments: Vec<DepartmentRow>,
    pub doctors: Vec<DoctorRow>,
    pub templates: Vec<TemplateRow>,
}

/// The codes that exist already (earlier imports), which a row may refer to.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub departments: HashSet<String>,
    pub doctors: HashSet<String>,
}

/// Reads and checks every row of every sheet. The plan is to be applied only if the error list
/// is empty.
pub fn check(sheets: &[Sheet], known: &Known) -> (Plan, Vec<RowError>) {
    let mut plan = Plan::default();
    let mut errors = Vec::new();
    let total: usize = sheets.iter().map(|s| s.rows.len().saturating_sub(1)).sum();
    if total > MAX_ROWS {
        let name = sheets.first().map_or_else(String::new, |s| s.name.clone());
        errors.push(RowError {
            sheet: name,
            row: 1,
            column: None,
            label: None,
            code: "too_many_rows",
            message: format!("{total} rows; a file holds at most {MAX_ROWS}"),
            message_zh: format!("文件共 {total} 行，一个文件最多 {MAX_ROWS} 行，请分成几个文件导入"),
        });
        return (plan, errors);
    }
    let mut seen_kinds: HashMap<SheetKind, String> = HashMap::new();
    for sheet in sheets {
        // The header is the first row with anything in it; a sheet with none is a workbook's
        // spare "Sheet2", left alone.
        let Some(at) = sheet.rows.iter().position(|r| !r.iter().all(Cell::is_blank)) else { continue };
        let header: Vec<String> = sheet.rows[at].iter().map(|c| c.text().to_lowercase()).collect();
        let header_row = u32::try_from(at + 1).unwrap_or(u32::MAX);
        let kind = SheetKind::from_name(&sheet.name).unwrap_or_else(|| SheetKind::from_header(&header));
        if let Some(first) = seen_kinds.insert(kind, sheet.name.clone()) {
            errors.push(RowError {
                sheet: sheet.name.clone(),
                row: header_row,
                column: None,
                label: None,
                code: "duplicate",
                message: format!("a second sheet of {kind:?} (the first is {first:?})").to_lowercase(),
                message_zh: format!("又一个{}工作表（第一个是“{first}”），每种只能有一个", kind.label()),
            });
            continue;
        }
        let mut reader = SheetReader { sheet: &sheet.name, kind, columns: HashMap::new(), errors: &mut errors };
        if !reader.map_header(kind, &header, header_row) {
            continue;
        }
        let mut summary = SheetSummary { name: sheet.name.clone(), kind, rows: 0 };
        for (i, cells) in sheet.rows.iter().enumerate().skip(at + 1) {
            if cells.iter().all(Cell::is_blank) {
                continue;
            }
            summary.rows += 1;
            let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let mut r = RowReader { reader: &mut reader, cells, row, ok: true };
            match kind {
                SheetKind::Departments => {
                    if let Some(d) = r.department() {
                        plan.departments.push(d);
                    }
                }
                SheetKind::Doctors => {
                    if let Some(d) = r.doctor() {
                        plan.doctors.push(d);
                    }
                }
                SheetKind::Templates => {
                    if let Some(t) = r.template() {
                        plan.templates.push(t);
                    }
                }
            }
        }
        plan.sheets.push(summary);
    }
    let sheet_of = |k: SheetKind| seen_kinds.get(&k).cloned().unwrap_or_default();
    cross_check(&mut plan, known, &mut errors, sheet_of);
    errors.sort_by_key(|a| (sheet_order(sheets, &a.sheet), a.row));
    (plan, errors)
}

fn sheet_order(sheets: &[Sheet], name: &str) -> usize {
    sheets.iter().position(|s| s.name == name).unwrap_or(usize::MAX)
}

/// The checks across rows: duplicates, references to departments and doctors, the tree.
fn cross_check(plan: &mut Plan, known: &Known, errors: &mut Vec<RowError>, sheet_of: impl Fn(SheetKind) -> String) {
    let err = |kind: SheetKind, row, column: &str, code, message: String, message_zh: String| RowError {
        sheet: sheet_of(kind),
        row,
        column: Some(column.to_string()),
        label: Some(kind.column_label(column)),
        code,
        message,
        message_zh,
    };
    let mut first: HashMap<&str, u32> = HashMap::new();
    for d in &plan.departments {
        if let Some(prev) = first.insert(&d.code, d.row) {
            let m = format!("department code {} is also on row {prev}", d.code);
            let zh = format!("科室编码 {} 与第 {prev} 行重复", d.code);
            errors.push(err(SheetKind::Departments, d.row, "code", "duplicate", m, zh));
        }
    }
    let parents: HashMap<&str, Option<&str>> =
        plan.departments.iter().map(|d| (d.code.as_str(), d.parent_code.as_deref())).collect();
    let department_known = |c: &str| parents.contains_key(c) || known.departments.contains(c);
    for d in &plan.departments {
        let Some(p) = d.parent_code.as_deref() else { continue };
        if !department_known(p) {
            let m = format!("no department has the code {p}");
            let zh = format!("没有科室编码为 {p} 的科室（文件里和系统里都没有）");
            errors.push(err(SheetKind::Departments, d.row, "parent_code", "unknown_department", m, zh));
            continue;
        }
        // Walk up inside the file: a loop would put a department below itself.
        let mut at = Some(p);
        for _ in 0..=parents.len() {
            match at {
                Some(c) if c == d.code => {
                    let m = format!("department {} would be below itself", d.code);
                    let zh = format!("科室 {} 的上级科室绕回了它自己", d.code);
                    errors.push(err(SheetKind::Departments, d.row, "parent_code", "invalid", m, zh));
                    break;
                }
                Some(c) => at = parents.get(c).copied().flatten(),
                None => break,
            }
        }
    }
    let mut first: HashMap<&str, u32> = HashMap::new();
    for d in &plan.doctors {
        if let Some(prev) = first.insert(&d.code, d.row) {
            let m = format!("doctor code {} is also on row {prev}", d.code);
            let zh = format!("医生编码 {} 与第 {prev} 行重复", d.code);
            errors.push(err(SheetKind::Doctors, d.row, "code", "duplicate", m, zh));
        }
        if !department_known(&d.department_code) {
            let m = format!("no department has the code {}", d.department_code);
            let zh = format!("没有科室编码为 {} 的科室（文件里和系统里都没有）", d.department_code);
            errors.push(err(SheetKind::Doctors, d.row, "department_code", "unknown_department", m, zh));
        }
    }
    let doctors: HashSet<&str> = plan.doctors.iter().map(|d| d.code.as_str()).collect();
    let mut first: HashMap<(&str, u32, Period), u32> = HashMap::new();
    for t in &plan.templates {
        if !doctors.contains(t.doctor_code.as_str()) && !known.doctors.contains(&t.doctor_code) {
            let m = format!("no doctor has the code {}", t.doctor_code);
            let zh = format!("没有医生编码为 {} 的医生（文件里和系统里都没有）", t.doctor_code);
            errors.push(err(SheetKind::Templates, t.row, "doctor_code", "unknown_doctor", m, zh));
        }
        if let Some(prev) = first.insert((&t.doctor_code, t.line.weekday, t.line.period), t.row) {
            let m = format!(
                "doctor {} already has a {} session on weekday {} (row {prev})",
                t.doctor_code,
                t.line.period.label(),
                t.line.weekday
            );
            let zh = format!(
                "医生 {} 在周{}{}已有一行排班（第 {prev} 行）",
                t.doctor_code,
                weekday_zh(t.line.weekday),
                t.line.period.label()
            );
            errors.push(err(SheetKind::Templates, t.row, "period", "duplicate", m, zh));
        }
    }
}

/// A sheet being read: where each of its kind's columns is.
struct SheetReader<'a> {
    sheet: &'a str,
    kind: SheetKind,
    columns: HashMap<&'static str, usize>,
    errors: &'a mut Vec<RowError>,
}

impl SheetReader<'_> {
    fn push(&mut self, row: u32, column: Option<&str>, code: &'static str, say: Say) {
        self.errors.push(RowError {
            sheet: self.sheet.to_string(),
            row,
            column: column.map(str::to_string),
            label: column.map(|c| self.kind.column_label(c)),
            code,
            message: say.0,
            message_zh: say.1,
        });
    }

    /// Finds each column; false (with the errors said) if the header is unusable.
    fn map_header(&mut self, kind: SheetKind, header: &[String], row: u32) -> bool {
        let mut ok = true;
        for (i, h) in header.iter().enumerate() {
            if h.is_empty() {
                continue;
            }
            let h = h.split(['(', '（']).next().unwrap_or(h).trim(); // "挂号费（元）"
            match kind.columns().iter().find(|(en, zh, _)| h == *en || h == *zh) {
                Some((en, zh, _)) if self.columns.contains_key(en) => {
                    self.push(
                        row,
                        Some(h),
                        "duplicate",
                        say(format!("column {en} appears twice"), format!("“{zh}”列出现了两次")),
                    );
                    ok = false;
                }
                Some((en, _, _)) => {
                    self.columns.insert(en, i);
                }
                None => {
                    let names: Vec<&str> = kind.columns().iter().map(|c| c.0).collect();
                    let labels: Vec<&str> = kind.columns().iter().map(|c| c.1).collect();
                    let en = format!("not a column of this sheet: {}", names.join(", "));
                    let zh = format!("{}工作表没有这一列；可用的列：{}", kind.label(), labels.join("、"));
                    self.push(row, Some(h), "unknown_column", say(en, zh));
                    ok = false;
                }
            }
        }
        for (en, zh, required) in kind.columns() {
            if *required && !self.columns.contains_key(en) {
                let en_msg = format!("the sheet needs a column {en} ({zh})");
                self.push(row, Some(en), "missing_column", say(en_msg, format!("工作表缺少“{zh}”列")));
                ok = false;
            }
        }
        ok
    }
}

/// One row being read; each accessor reports its own error and the row is kept only if none.
struct RowReader<'a, 'b> {
    reader: &'a mut SheetReader<'b>,
    cells: &'a [Cell],
    row: u32,
    ok: bool,
}

impl RowReader<'_, '_> {
    fn fail(&mut self, column: &str, code: &'static str, say: Say) {
        self.ok = false;
        self.reader.push(self.row, Some(column), code, say);
    }

    /// The required `column` is empty.
    fn required(&mut self, column: &str) {
        let zh = format!("{}不能为空", self.reader.kind.column_label(column));
        self.fail(column, "missing", say(format!("{column} is required"), zh));
    }

    fn cell(&self, column: &str) -> Cell {
        self.reader.columns.get(column).and_then(|i| self.cells.get(*i)).cloned().unwrap_or(Cell::Empty)
    }

    /// Text of at most `max` characters; `None` (and an error) if required and absent.
    fn text(&mut self, column: &str, max: usize, required: bool) -> Option<String> {
        let s = self.cell(column).text();
        if s.is_empty() && required {
            self.required(column);
            return None;
        }
        if s.chars().count() > max || s.chars().any(|c| c.is_control() && c != '\n') {
            let zh = format!("最多 {max} 个字，且不能含控制字符");
            self.fail(column, "invalid", say(format!("at most {max} printable characters"), zh));
            return None;
        }
        Some(s)
    }

    /// A code: 1 to 32 of letters, digits, `-` and `_`.
    fn code(&mut self, column: &str, required: bool) -> Option<String> {
        let s = self.text(column, 64, required)?;
        if s.is_empty() {
            return Some(s);
        }
        if s.len() > 32 || !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            let en = format!("{s:?} is not a code (1 to 32 of A-Z, 0-9, - and _)");
            self.fail(column, "invalid", say(en, format!("“{s}”不是编码：编码由 1 至 32 个字母、数字、- 或 _ 组成")));
            return None;
        }
        Some(s)
    }

    /// A whole number in `range`; `default` if the cell is empty and one is given.
    fn number(&mut self, column: &str, range: std::ops::RangeInclusive<i64>, default: Option<i64>) -> Option<i64> {
        let c = self.cell(column);
        if c.is_blank() {
            if default.is_none() {
                self.required(column);
            }
            return default;
        }
        let n = match &c {
            Cell::Number(n) if n.fract() == 0.0 => Some(*n as i64),
            Cell::Text(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n.filter(|n| range.contains(n)) {
            Some(n) => Some(n),
            None => {
                let (from, to) = (range.start(), range.end());
                let m = format!("{:?} is not a whole number from {from} to {to}", c.text());
                let zh = format!("“{}”不是 {from} 至 {to} 之间的整数", c.text());
                self.fail(column, "invalid", say(m, zh));
                None
            }
        }
    }

    /// A time of day: `HH:MM` (or `HH:MM:SS`) text, or a spreadsheet time (a fraction of a day).
    fn time(&mut self, column: &str, default: Option<NaiveTime>) -> Option<NaiveTime> {
        let c = self.cell(column);
        if c.is_blank() {
            if default.is_none() {
                self.required(column);
            }
            return default;
        }
        let t = match &c {
            Cell::Number(f) if (0.0..1.0).contains(f) => {
                let secs = (f * 86_400.0).round() as u32;
                NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)
            }
            Cell::Text(s) => {
                let s = s.trim().replace('：', ":");
                NaiveTime::parse_from_str(&s, "%H:%M").or_else(|_| NaiveTime::parse_from_str(&s, "%H:%M:%S")).ok()
            }
            _ => None,
        };
        if t.is_none() {
            let en = format!("{:?} is not a time of day like 08:00", c.text());
            self.fail(column, "invalid", say(en, format!("“{}”不是时间，请写成 08:00 这样", c.text())));
        }
        t
    }

    fn department(&mut self) -> Option<DepartmentRow> {
        let code = self.code("code", true);
        let name = self.text("name", 32, true);
        let parent_code = self.code("parent_code", false).filter(|s| !s.is_empty());
        let location = self.text("location", 64, false);
        let description = self.text("description", 2000, false);
        let sort = self.number("sort", -10_000..=10_000, Some(0));
        let d = DepartmentRow {
            row: self.row,
            code: code?,
            name: name?,
            parent_code,
            location: location?,
            description: description?,
            sort: i32::try_from(sort?).ok()?,
        };
        self.ok.then_some(d)
    }

    fn doctor(&mut self) -> Option<DoctorRow> {
        let code = self.code("code", true);
        let name = self.text("name", 32, true);
        let department_code = self.code("department_code", true);
        let title = self.text("title", 16, true).and_then(|t| {
            let found = parse_title(&t);
            if found.is_none() && !t.is_empty() {
                let en = format!("{t:?} is not a title: 主任医师, 副主任医师, 主治医师 or 住院医师");
                let zh = format!("“{t}”不是职称：请填主任医师、副主任医师、主治医师或住院医师");
                self.fail("title", "invalid", say(en, zh));
            }
            found
        });
        let specialties = self.text("specialties", 20 * 33, false).and_then(|s| {
            let list: Vec<String> = s
                .split(['、', ',', '，', ';', '；'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect();
            if list.len() > 20 || list.iter().any(|x| x.chars().count() > 32) {
                let en = "at most 20 specialties of at most 32 characters, split by 、";
                self.fail("specialties", "invalid", say(en, "专长最多 20 项，每项最多 32 个字，用“、”分隔"));
                return None;
            }
            Some(list)
        });
        let introduction = self.text("introduction", 4000, false);
        let d = DoctorRow {
            row: self.row,
            code: code?,
            name: name?,
            department_code: department_code?,
            title: title?,
            specialties: specialties?,
            introduction: introduction?,
        };
        self.ok.then_some(d)
    }

    fn template(&mut self) -> Option<TemplateRow> {
        let doctor_code = self.code("doctor_code", true);
        let weekday = {
            let c = self.cell("weekday");
            match parse_weekday(&c.text()) {
                Some(w) => Some(w),
                None if c.is_blank() => {
                    self.required("weekday");
                    None
                }
                None => {
                    let en = format!("{:?} is not a weekday (1 to 7, or 周一 to 周日)", c.text());
                    let zh = format!("“{}”不是星期：请填 1 至 7，或周一至周日", c.text());
                    self.fail("weekday", "invalid", say(en, zh));
                    None
                }
            }
        };
        let period = self.text("period", 16, true).and_then(|p| {
            let found = parse_period(&p);
            if found.is_none() && !p.is_empty() {
                let en = format!("{p:?} is not a period: 上午, 下午 or 夜间");
                self.fail("period", "invalid", say(en, format!("“{p}”不是时段：请填上午、下午或夜间")));
            }
            found
        });
        let start = self.time("start", None);
        let end = self.time("end", None);
        let segment_minutes = self.number("segment_minutes", 5..=240, None);
        let quota = self.number("quota", 1..=500, None);
        let fee = self.fee();
        let release_days_before = self.number("release_days_before", 0..=60, Some(7));
        let release_time = self.time("release_time", NaiveTime::from_hms_opt(8, 0, 0));
        if let (Some(s), Some(e)) = (start, end) {
            if s >= e {
                let en = format!("the session ends ({e}) before it starts ({s})");
                let zh = format!("结束时间 {} 须晚于开始时间 {}", e.format("%H:%M"), s.format("%H:%M"));
                self.fail("end", "invalid", say(en, zh));
            }
        }
        let t = TemplateRow {
            row: self.row,
            doctor_code: doctor_code?,
            line: TemplateLine {
                weekday: weekday?,
                period: period?,
                start: start?,
                end: end?,
                segment_minutes: segment_minutes?,
                quota: u32::try_from(quota?).ok()?,
            },
            fee: fee?,
            release_days_before: u32::try_from(release_days_before?).ok()?,
            release_time: release_time?,
        };
        self.ok.then_some(t)
    }

    /// The fee in yuan with at most two decimals (`50`, `12.5`); `Some(None)` when empty.
    fn fee(&mut self) -> Option<Option<Fen>> {
        let c = self.cell("fee_yuan");
        if c.is_blank() {
            return Some(None);
        }
        let fen = match &c {
            Cell::Number(n) if *n >= 0.0 => {
                let f = (n * 100.0).round();
                ((f - n * 100.0).abs() < 1e-6).then_some(f as u64)
            }
            Cell::Text(s) => parse_yuan(s.trim()),
            _ => None,
        };
        match fen.map(Fen::new).filter(|f| *f <= Fen::MAX_ACCEPTED) {
            Some(f) => Some(Some(f)),
            None => {
                let en = format!("{:?} is not an amount in yuan like 50 or 12.50", c.text());
                let zh = format!("“{}”不是金额：请以元为单位，写成 50 或 12.50 这样", c.text());
                self.fail("fee_yuan", "invalid", say(en, zh));
                None
            }
        }
    }
}

/// A problem said twice: in English (the API's `message`) and in Chinese (`message_zh`).
struct Say(String, String);

fn say(en: impl Into<String>, zh: impl Into<String>) -> Say {
    Say(en.into(), zh.into())
}

/// Monday to Sunday as in 周一..周日.
const WEEKDAYS_ZH: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];

/// 一 (1, Monday) to 日 (7, Sunday), as in 周一.
fn weekday_zh(weekday: u32) -> &'static str {
    WEEKDAYS_ZH.get(weekday.wrapping_sub(1) as usize).copied().unwrap_or("?")
}

/// `12`, `12.5`, `12.50` yuan in fen; never through a float.
fn parse_yuan(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let cents = format!("{frac:0<2}").parse::<u64>().ok()?;
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(cents)
}

fn parse_title(s: &str) -> Option<DoctorTitle> {
    use DoctorTitle::*;
    let t = match s.trim().to_lowercase().as_str() {
        "chief_physician" => ChiefPhysician,
        "associate_chief_physician" => AssociateChiefPhysician,
        "attending_physician" => AttendingPhysician,
        "resident_physician" => ResidentPhysician,
        other => {
            return [ChiefPhysician, AssociateChiefPhysician, AttendingPhysician, ResidentPhysician]
                .into_iter()
                .find(|t| t.label() == other)
        }
    };
    Some(t)
}

fn parse_period(s: &str) -> Option<Period> {
    match s.trim().to_lowercase().as_str() {
        "morning" | "上午" | "am" => Some(Period::Morning),
        "afternoon" | "下午" | "pm" => Some(Period::Afternoon),
        "evening" | "夜间" | "晚上" => Some(Period::Evening),
        _ => None,
    }
}

/// 1 (Monday) to 7 (Sunday), or 周一..周日 / 星期一..星期日.
fn parse_weekday(s: &str) -> Option<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=7).contains(&n).then_some(n);
    }
    let day = s.strip_prefix("星期").or_else(|| s.strip_prefix("周"))?;
    WEEKDAYS_ZH.iter().position(|d| *d == day || (day == "天" && *d == "日")).map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    fn sheet(name: &str, rows: &[&[&str]]) -> Sheet {
        Sheet { name: name.to_string(), rows: rows.iter().map(|r| r.iter().map(|c| t(c)).collect()).collect() }
    }

    #[test]
    fn a_good_workbook_makes_a_plan() {
        let sheets = [
            sheet("科室", &[&["科室编码", "科室名称", "上级科室编码"], &["NK", "内科", ""], &["XNK", "心内科", "NK"]]),
            sheet(
                "医生",
                &[
                    &["医生编码", "姓名", "科室编码", "职称", "专长"],
                    &["D001", "李建国", "XNK", "主任医师", "高血压、冠心病"],
                ],
            ),
            Sheet {
                name: "排班模板".into(),
                rows: vec![
                    ["医生编码", "星期", "时段", "开始时间", "结束时间", "每段分钟", "每段号数", "挂号费（元）"]
                        .map(t)
                        .to_vec(),
                    vec![
                        t("D001"),
                        Cell::Number(1.0),
                        t("上午"),
                        Cell::Number(8.0 / 24.0),
                        t("12:00"),
                        Cell::Number(30.0),
                        t("5"),
                        Cell::Number(50.5),
                    ],
                ],
            },
        ];
        let (plan, errors) = check(&sheets, &Known::default());
        assert_eq!(errors, []);
        assert_eq!(plan.departments.len(), 2);
        assert_eq!(plan.departments[1].parent_code.as_deref(), Some("NK"));
        assert_eq!(plan.doctors[0].title, DoctorTitle::ChiefPhysician);
        assert_eq!(plan.doctors[0].specialties, ["高血压", "冠心病"]);
        let line = plan.templates[0].line;
        assert_eq!((line.weekday, line.period, line.quota), (1, Period::Morning, 5));
        assert_eq!(line.start, NaiveTime::from_hms_opt(8, 0, 0).unwrap());
        assert_eq!(plan.templates[0].fee, Some(Fen::new(5050)));
        assert_eq!(plan.templates[0].release_days_before, 7);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_place() {
        let sheets = [
            sheet(
                "departments",
                &[&["code", "name", "parent_code"], &["NK", "内科", ""], &["NK", "内科二", ""], &["WK", "", "GONE"]],
            ),
            sheet(
                "doctors",
                &[
                    &["code", "name", "department_code", "title"],
                    &["D1", "甲", "NOPE", "主任医师"],
                    &["D2", "乙", "NK", "院长"],
                ],
            ),
            sheet(
                "templates",
                &[
                    &["doctor_code", "weekday", "period", "start", "end", "segment_minutes", "quota"],
                    &["D1", "周一", "上午", "8点", "12:00", "30", "5"],
                    &["D1", "8", "上午", "08:00", "12:00", "30", "5"],
                    &["D9", "2", "下午", "14:00", "13:00", "30", "5"],
                    &["D1", "3", "上午", "08:00", "12:00", "30", "5"],
                    &["D1", "星期三", "morning", "08:00", "11:00", "30", "5"],
                ],
            ),
        ];
        let known = Known { departments: ["OLD".to_string()].into(), doctors: HashSet::new() };
        let (_, errors) = check(&sheets, &known);
        let got: Vec<(&str, u32, Option<&str>, &str)> =
            errors.iter().map(|e| (e.sheet.as_str(), e.row, e.column.as_deref(), e.code)).collect();
        assert_eq!(
            got,
            [
                ("departments", 3, Some("code"), "duplicate"),
                ("departments", 4, Some("name"), "missing"),
                ("doctors", 2, Some("department_code"), "unknown_department"),
                ("doctors", 3, Some("title"), "invalid"),
                ("templates", 2, Some("start"), "invalid"),
                ("templates", 3, Some("weekday"), "invalid"),
                ("templates", 4, Some("end"), "invalid"),
                ("templates", 6, Some("period"), "duplicate"),
            ]
        );
    }

    #[test]
    fn headers_and_references_are_checked() {
        let (_, errors) = check(&[sheet("科室", &[&["科室名称", "颜色"], &["内科", "红"]])], &Known::default());
        let got: Vec<_> = errors.iter().map(|e| (e.row, e.column.clone().unwrap(), e.code)).collect();
        assert_eq!(got, [(1, "颜色".to_string(), "unknown_column"), (1, "code".to_string(), "missing_column")]);
        // A CSV file's one sheet is recognised by its columns; known codes may be referred to.
        let csv =
            sheet("csv", &[&["code", "name", "department_code", "title"], &["D1", "甲", "OLD", "chief_physician"]]);
        let known = Known { departments: ["OLD".to_string()].into(), doctors: HashSet::new() };
        let (plan, errors) = check(&[csv], &known);
        assert_eq!((plan.doctors.len(), errors.len()), (1, 0));
        // A loop in the tree.
        let loop_ = sheet("科室", &[&["code", "name", "parent_code"], &["A", "甲", "B"], &["B", "乙", "A"]]);
        let (_, errors) = check(&[loop_], &Known::default());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().all(|e| e.message.contains("below itself")));
        assert_eq!(errors[0].message_zh, "科室 A 的上级科室绕回了它自己");
        assert_eq!(errors[0].label.as_deref(), Some("上级科室编码"));
    }

    /// Staff read every error in Chinese, with the column as the hospital's sheets head it,
    /// whichever language the file's headers were in.
    #[test]
    fn each_error_is_said_in_chinese_with_the_column_as_headed() {
        let sheets = [
            sheet("科室", &[&["code", "name", "parent_code", "颜色"], &["A", "甲", ""]]),
            sheet(
                "templates",
                &[
                    &["doctor_code", "weekday", "period", "start", "end", "segment_minutes", "quota", "fee_yuan"],
                    &["D1", "周八", "中午", "08:00", "12:00", "300", "5", "12.345"],
                ],
            ),
        ];
        let (_, errors) = check(&sheets, &Known::default());
        let got: Vec<(Option<&str>, &str)> =
            errors.iter().map(|e| (e.label.as_deref(), e.message_zh.as_str())).collect();
        assert_eq!(
            got,
            [
                (Some("颜色"), "科室工作表没有这一列；可用的列：科室编码、科室名称、上级科室编码、位置、简介、排序"),
                (Some("星期"), "“周八”不是星期：请填 1 至 7，或周一至周日"),
                (Some("时段"), "“中午”不是时段：请填上午、下午或夜间"),
                (Some("每段分钟"), "“300”不是 5 至 240 之间的整数"),
                (Some("挂号费"), "“12.345”不是金额：请以元为单位，写成 50 或 12.50 这样"),
            ],
            "{errors:?}"
        );
        // The English message stays for the API's other readers.
        assert!(errors[1].message.contains("is not a weekday"), "{errors:?}");
    }

    #[test]
    fn yuan_parse_without_floats() {
        assert_eq!(parse_yuan("12"), Some(1200));
        assert_eq!(parse_yuan("12.5"), Some(1250));
        assert_eq!(parse_yuan("0.07"), Some(7));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("-1"), None);
        assert_eq!(parse_yuan(".5"), None);
        assert_eq!(parse_weekday("周日"), Some(7));
        assert_eq!(parse_weekday("星期天"), Some(7));
    }
}
