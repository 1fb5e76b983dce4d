//! Page layout: line breaking for mixed Chinese and Latin text, and a cursor that flows
//! paragraphs, field grids and tables down A4 pages, starting a new page when one is full.
//! It only measures and places; `embed` turns the placed text into PDF. Kept apart from the PDF
//! so it can be tested with a made-up font.

/// The width of a character as a fraction of the font size (1.0 for a CJK ideograph).
pub(crate) trait Measure {
    fn advance(&self, c: char) -> f32;

    /// `s` as it will be drawn: characters the font cannot draw replaced (line breaks kept).
    fn substitute(&self, s: &str) -> String {
        s.to_string()
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        self.substitute(s).chars().map(|c| self.advance(c)).sum::<f32>() * size
    }
}

/// A text op, with the text as it will be drawn.
pub(crate) fn text_op(m: &dyn Measure, x: f32, y: f32, size: f32, bold: bool, text: &str) -> Op {
    Op::Text { x, y, size, bold, text: m.substitute(text) }
}

/// Something drawn on a page, in PDF points from the bottom-left corner.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        width: f32,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Page {
    pub ops: Vec<Op>,
}

/// A4 in points, and the margins. The band at the top is left for the running header and the
/// band at the bottom for the page number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub width: f32,
    pub height: f32,
    pub left: f32,
    pub right: f32,
    /// Where the body starts on each page (below the running header).
    pub body_top: f32,
    /// Where the body must end (above the footer).
    pub body_bottom: f32,
}

impl Geometry {
    pub const A4: Geometry = Geometry {
        width: 595.28,
        height: 841.89,
        left: 56.0,
        right: 56.0,
        body_top: 841.89 - 108.0,
        body_bottom: 64.0,
    };

    pub fn body_width(&self) -> f32 {
        self.width - self.left - self.right
    }
}

/// The line height for text of `size`: roomy enough for Chinese.
pub(crate) fn leading(size: f32) -> f32 {
    size * 1.55
}

/// Where in a line box of `size` the baseline sits, from the box's top.
fn baseline_drop(size: f32) -> f32 {
    size * 1.17
}

/// Characters that may not start a line (closing punctuation): they stay with what they close.
fn no_break_before(c: char) -> bool {
    "，。、；：！？）】》」』”’…—,.;:!?)]}%·".contains(c)
}

/// Characters that may not end a line (opening punctuation): they go with what they open.
fn no_break_after(c: char) -> bool {
    "（【《「『“‘([{".contains(c)
}

/// Breaks `text` into lines no wider than `width` points at `size`. Explicit line breaks are
/// kept (an empty line stays empty); Chinese breaks between any two characters, Latin words
/// break at spaces (a word longer than a line is cut); punctuation is never orphaned at a
/// line's start or end, even if that makes a line a little too long.
pub(crate) fn wrap(m: &dyn Measure, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let text = m.substitute(text);
    for para in text.split('\n') {
        let para = para.replace('\t', "    ").replace('\r', "");
        wrap_paragraph(m, &para, size, width, &mut lines);
    }
    lines
}

/// Units that must not be split: a run of Latin letters/digits, a space, or one other
/// character, with no-break punctuation glued to its neighbour.
fn units(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut glue_next = false;
    for c in text.chars() {
        let latin = c.is_ascii_alphanumeric() || "-_/.@#&+=<>'\"".contains(c);
        let joins_word = latin
            && out.last().is_some_and(|u| {
                u.chars().last().is_some_and(|l| l.is_ascii_alphanumeric() || "-_/.@#&+=<>'\"".contains(l))
            });
        if glue_next || (!out.is_empty() && (no_break_before(c) || joins_word)) {
            out.last_mut().expect("not empty").push(c);
        } else {
            out.push(c.to_string());
        }
        glue_next = no_break_after(c);
    }
    out
}

fn wrap_paragraph(m: &dyn Measure, text: &str, size: f32, width: f32, lines: &mut Vec<String>) {
    let mut line = String::new();
    let mut line_w = 0.0;
    for unit in units(text) {
        let w = m.width(&unit, size);
        if line_w + w <= width || unit == " " && !line.is_empty() {
            line.push_str(&unit);
            line_w += w;
            continue;
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
        line = String::new();
        line_w = 0.0;
        if unit == " " {
            continue; // no leading space on a new line
        }
        if w <= width || unit.chars().count() <= 3 {
            line_w = w;
            line = unit;
            continue;
        }
        // A word wider than a whole line: cut it by characters.
        for c in unit.chars() {
            let cw = m.advance(c) * size;
            if line_w + cw > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
            }
            line.push(c);
            line_w += cw;
        }
    }
    lines.push(line.trim_end().to_string());
}

/// Horizontal alignment in a table cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table column: its title, its share of the body width, and its alignment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column<'a> {
    pub title: &'a str,
    pub share: f32,
    pub align: Align,
}

const CELL_PAD_X: f32 = 3.0;
const CELL_PAD_Y: f32 = 3.0;

/// Flows blocks down pages.
pub(crate) struct Flow<'m> {
    m: &'m dyn Measure,
    g: Geometry,
    pages: Vec<Page>,
    /// The top of the next line box on the current page.
    y: f32,
}

impl<'m> Flow<'m> {
    pub fn new(m: &'m dyn Measure, g: Geometry) -> Self {
        Self { m, g, pages: vec![Page::default()], y: g.body_top }
    }

    pub fn finish(self) -> Vec<Page> {
        self.pages
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a flow always has a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = self.g.body_top;
    }

    /// Starts a new page unless `height` still fits on this one (or the page is still empty:
    /// something taller than a page goes on the page it starts on).
    fn ensure(&mut self, height: f32) {
        let empty = self.y >= self.g.body_top;
        if self.y - height < self.g.body_bottom && !empty {
            self.new_page();
        }
    }

    pub fn space(&mut self, h: f32) {
        self.y -= h;
    }

    fn text_at(&mut self, x: f32, size: f32, bold: bool, text: String) {
        let y = self.y - baseline_drop(size);
        if !text.is_empty() {
            let op = text_op(self.m, x, y, size, bold, &text);
            self.page().ops.push(op);
        }
    }

    /// A section title, kept on the same page as the first two lines that follow it.
    pub fn heading(&mut self, text: &str, size: f32) {
        self.ensure(leading(size) + 2.0 * leading(size * 0.9) + 6.0);
        self.space(4.0);
        let x = self.g.left;
        self.text_at(x, size, true, text.to_string());
        self.y -= leading(size);
    }

    /// Wrapped text, indented by `indent` points; continues onto new pages line by line.
    pub fn paragraph(&mut self, text: &str, size: f32, indent: f32) {
        let width = self.g.body_width() - indent;
        for line in wrap(self.m, text, size, width) {
            self.ensure(leading(size));
            let x = self.g.left + indent;
            self.text_at(x, size, false, line);
            self.y -= leading(size);
        }
    }

    /// Label–value pairs in `columns` columns, row by row; a long value wraps within its cell.
    pub fn fields(&mut self, pairs: &[(&str, String)], columns: usize, size: f32) {
        let col_w = self.g.body_width() / columns as f32;
        for row in pairs.chunks(columns) {
            let cells: Vec<(String, f32, Vec<String>)> = row
                .iter()
                .map(|(label, value)| {
                    let label = format!("{label}：");
                    let lw = self.m.width(&label, size);
                    let lines = wrap(self.m, value, size, (col_w - lw - CELL_PAD_X).max(size));
                    (label, lw, lines)
                })
                .collect();
            let n = cells.iter().map(|c| c.2.len()).max().unwrap_or(1);
            self.ensure(n as f32 * leading(size));
            let top = self.y;
            for (i, (label, lw, lines)) in cells.into_iter().enumerate() {
                let x = self.g.left + i as f32 * col_w;
                self.y = top;
                self.text_at(x, size, true, label);
                for line in lines {
                    self.text_at(x + lw, size, false, line);
                    self.y -= leading(size);
                }
            }
            self.y = top - n as f32 * leading(size);
        }
    }

    /// A horizontal rule across the body.
    pub fn rule(&mut self, width: f32) {
        let (x1, x2, y) = (self.g.left, self.g.width - self.g.right, self.y);
        self.page().ops.push(Op::Line { x1, y1: y, x2, y2: y, width });
    }

    /// A table: a header row (repeated on each page the table runs onto), the rows, and an
    /// optional closing row (a total). Cells wrap within their column.
    pub fn table(&mut self, columns: &[Column<'_>], rows: &[Vec<String>], footer: Option<&[String]>, size: f32) {
        let header: Vec<String> = columns.iter().map(|c| c.title.to_string()).collect();
        let header_h = self.row_height(columns, &header, size);
        let first_h = rows.first().map(|r| self.row_height(columns, r, size)).unwrap_or(0.0);
        self.ensure(header_h + first_h);
        self.table_row(columns, &header, size, true);
        for row in rows {
            let h = self.row_height(columns, row, size);
            if self.y - h < self.g.body_bottom {
                self.rule(0.8);
                self.new_page();
                self.table_row(columns, &header, size, true);
            }
            self.table_row(columns, row, size, false);
        }
        if let Some(footer) = footer {
            self.ensure(self.row_height(columns, footer, size));
            self.table_row(columns, footer, size, true);
        }
        self.rule(0.8);
    }

    fn cell_lines(&self, columns: &[Column<'_>], row: &[String], size: f32) -> Vec<Vec<String>> {
        let total: f32 = columns.iter().map(|c| c.share).sum();
        columns
            .iter()
            .zip(row)
            .map(|(c, text)| {
                let w = self.g.body_width() * c.share / total - 2.0 * CELL_PAD_X;
                wrap(self.m, text, size, w)
            })
            .collect()
    }

    fn row_height(&self, columns: &[Column<'_>], row: &[String], size: f32) -> f32 {
        let n = self.cell_lines(columns, row, size).iter().map(Vec::len).max().unwrap_or(1);
        n as f32 * leading(size) + 2.0 * CELL_PAD_Y
    }

    fn table_row(&mut self, columns: &[Column<'_>], row: &[String], size: f32, strong: bool) {
        let cells = self.cell_lines(columns, row, size);
        let n = cells.iter().map(Vec::len).max().unwrap_or(1);
        let total: f32 = columns.iter().map(|c| c.share).sum();
        self.rule(if strong { 0.8 } else { 0.3 });
        let top = self.y - CELL_PAD_Y;
        let mut x = self.g.left;
        for (c, lines) in columns.iter().zip(cells) {
            let w = self.g.body_width() * c.share / total;
            self.y = top;
            for line in lines {
                let lx = match c.align {
                    Align::Left => x + CELL_PAD_X,
                    Align::Right => x + w - CELL_PAD_X - self.m.width(&line, size),
                };
                self.text_at(lx, size, strong, line);
                self.y -= leading(size);
            }
            x += w;
        }
        self.y = top - n as f32 * leading(size) - CELL_PAD_Y;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A made-up font: ASCII half an em wide, everything else a full em.
    pub(crate) struct Mono;
    impl Measure for Mono {
        fn advance(&self, c: char) -> f32 {
            if c.is_ascii() {
                0.5
            } else {
                1.0
            }
        }
    }

    #[test]
    fn chinese_wraps_anywhere_latin_at_spaces() {
        // 10pt text, 50pt wide: five ideographs or ten ASCII characters a line.
        assert_eq!(wrap(&Mono, "社区获得性肺炎伴胸腔积液", 10.0, 50.0), ["社区获得性", "肺炎伴胸腔", "积液"]);
        assert_eq!(wrap(&Mono, "take two tablets daily", 10.0, 50.0), ["take two", "tablets", "daily"]);
        assert_eq!(wrap(&Mono, "a\n\nb", 10.0, 50.0), ["a", "", "b"], "blank lines are kept");
        assert_eq!(wrap(&Mono, "", 10.0, 50.0), [""]);
        let long = wrap(&Mono, "abcdefghijklmnopqrstuvwxyz", 10.0, 50.0);
        assert_eq!(long, ["abcdefghij", "klmnopqrst", "uvwxyz"], "an over-long word is cut");
    }

    #[test]
    fn punctuation_is_never_orphaned() {
        // The comma would start line 2: the character before it goes down with it.
        assert_eq!(wrap(&Mono, "发热咳嗽三，天", 10.0, 50.0), ["发热咳嗽", "三，天"]);
        // The opening bracket would end line 1: it moves to line 2 with what it opens.
        assert_eq!(wrap(&Mono, "诊断为肺（炎）", 10.0, 50.0), ["诊断为肺", "（炎）"]);
        // Mixed: Latin words stay whole next to Chinese.
        assert_eq!(wrap(&Mono, "口服0.25g每日", 10.0, 50.0), ["口服0.25g", "每日"]);
    }

    #[test]
    fn a_long_paragraph_flows_onto_new_pages() {
        let g = Geometry::A4;
        let mut flow = Flow::new(&Mono, g);
        let text = "病".repeat(40 * 100); // 100 lines of 40 ideographs at 12pt
        flow.paragraph(&text, 12.0, 0.0);
        let pages = flow.finish();
        let per_page = ((g.body_top - g.body_bottom) / leading(12.0)).floor() as usize;
        assert_eq!(pages.len(), 100usize.div_ceil(per_page));
        let lines: usize = pages.iter().map(|p| p.ops.len()).sum();
        assert_eq!(lines, 100);
        for p in &pages {
            for op in &p.ops {
                let Op::Text { y, x, text, .. } = op else { panic!("only text") };
                assert!(*y >= g.body_bottom && *y <= g.body_top, "inside the body: {y}");
                assert!(x + Mono.width(text, 12.0) <= g.width - g.right + 0.01, "inside the margins");
            }
        }
    }

    #[test]
    fn tables_repeat_their_header_on_each_page() {
        let cols = [
            Column { title: "药品", share: 3.0, align: Align::Left },
            Column { title: "金额", share: 1.0, align: Align::Right },
        ];
        let rows: Vec<Vec<String>> = (0..80).map(|i| vec![format!("药{i}"), "¥1.00".to_string()]).collect();
        let mut flow = Flow::new(&Mono, Geometry::A4);
        flow.table(&cols, &rows, Some(&["合计".to_string(), "¥80.00".to_string()]), 10.0);
        let pages = flow.finish();
        assert!(pages.len() >= 2);
        for p in &pages {
            let has_header = p.ops.iter().any(|o| matches!(o, Op::Text { text, .. } if text == "药品"));
            assert!(has_header, "every page of the table has its header");
        }
        let texts: Vec<&str> = pages
            .iter()
            .flat_map(|p| &p.ops)
            .filter_map(|o| if let Op::Text { text, .. } = o { Some(text.as_str()) } else { None })
            .collect();
        assert!(texts.contains(&"药79") && texts.contains(&"合计"));
        // Right-aligned: the amount ends at the column's right edge less the padding.
        let g = Geometry::A4;
        let amount = pages[0].ops.iter().find_map(|o| match o {
            Op::Text { x, text, size, .. } if text == "¥1.00" => Some(x + Mono.width(text, *size)),
            _ => None,
        });
        assert!((amount.unwrap() - (g.width - g.right - CELL_PAD_X)).abs() < 0.01);
    }
}
