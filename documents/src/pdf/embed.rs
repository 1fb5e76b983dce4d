//! Laid-out pages to PDF bytes, with the font subset in: only the glyphs the document uses are
//! kept (typst's `subsetter`), renumbered from 1, and embedded as a CID font (Type0, Identity-H,
//! two bytes a glyph) with a ToUnicode map, so text can be searched and copied. TrueType
//! outlines go in as a CIDFontType2 (`FontFile2`), CFF outlines (Noto CJK) as a CIDFontType0
//! (`FontFile3` / `CIDFontType0C`). Streams are deflated. The output is deterministic: the same
//! document gives the same bytes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Date, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use subsetter::GlyphRemapper;

use super::layout::{Measure, Op, Page};
use super::PdfError;
use crate::font::CjkFont;

/// Shown for a character the font lacks (an emoji, a rare ideograph), and named so in the
/// text layer: better a visible mark than a silently missing character.
const FALLBACK: char = '?';
/// The line width of the stroke that thickens "bold" text (the font has one weight).
const BOLD_STROKE: f32 = 0.35;

const SYSTEM_INFO: SystemInfo = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

/// Stand-ins for symbols that fonts often lack (WenQuanYi maps ℃ to a blank glyph) and that
/// medical text uses, so a temperature does not print as a gap.
const STAND_INS: &[(char, &str)] =
    &[('℃', "°C"), ('℉', "°F"), ('㎎', "mg"), ('㎏', "kg"), ('㎖', "ml"), ('㎜', "mm"), ('㎝', "cm"), ('㏄', "cc")];

/// The font's metrics, for layout and for writing.
pub(crate) struct FontMetrics<'f> {
    face: ttf_parser::Face<'f>,
    units_per_em: f32,
    /// Glyph of each character seen so far (`None`: the font cannot draw it).
    drawable: RefCell<HashMap<char, Option<u16>>>,
}

impl<'f> FontMetrics<'f> {
    pub fn new(font: &'f CjkFont) -> Self {
        let face = font.face();
        let units_per_em = f32::from(face.units_per_em());
        Self { face, units_per_em, drawable: RefCell::new(HashMap::new()) }
    }

    /// The glyph of `c`, if the font really draws it: some fonts map characters to empty
    /// glyphs, which would print as a gap. Blank is right only for white space.
    fn drawable(&self, c: char) -> Option<u16> {
        *self.drawable.borrow_mut().entry(c).or_insert_with(|| {
            let g = self.face.glyph_index(c)?;
            (c.is_whitespace() || self.face.glyph_bounding_box(g).is_some()).then_some(g.0)
        })
    }

    /// The glyph drawn for `c` (which `substitute` has made drawable, or the fallback).
    fn glyph(&self, c: char) -> u16 {
        self.drawable(c).or_else(|| self.drawable(FALLBACK)).unwrap_or(0)
    }

    /// Advance of glyph `gid` in thousandths of an em (PDF glyph space).
    fn advance_units(&self, gid: u16) -> f32 {
        let adv = self.face.glyph_hor_advance(ttf_parser::GlyphId(gid)).unwrap_or(0);
        f32::from(adv) * 1000.0 / self.units_per_em
    }

    fn to_pdf(&self, v: f32) -> f32 {
        v * 1000.0 / self.units_per_em
    }
}

impl Measure for FontMetrics<'_> {
    fn advance(&self, c: char) -> f32 {
        self.advance_units(self.glyph(c)) / 1000.0
    }

    fn substitute(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if c == '\n' || self.drawable(c).is_some() {
                out.push(c);
            } else if c.is_control() {
                out.push(' ');
            } else if let Some((_, alt)) =
                STAND_INS.iter().find(|(k, alt)| *k == c && alt.chars().all(|a| self.drawable(a).is_some()))
            {
                out.push_str(alt);
            } else {
                out.push(FALLBACK);
            }
        }
        out
    }
}

/// What the document's info dictionary says.
pub(crate) struct DocInfo<'a> {
    pub title: &'a str,
    pub created: chrono::DateTime<chrono::Utc>,
}

/// Writes `pages` as a PDF with `font` subset in.
pub(crate) fn write(
    font: &CjkFont,
    metrics: &FontMetrics<'_>,
    pages: &[Page],
    info: &DocInfo<'_>,
) -> Result<Vec<u8>, PdfError> {
    // The glyphs used, in a stable order, renumbered from 1 (0 stays .notdef).
    let mut used: BTreeMap<u16, char> = BTreeMap::new();
    for op in pages.iter().flat_map(|p| &p.ops) {
        if let Op::Text { text, .. } = op {
            // Text ops hold substituted text: every character is drawable or the fallback.
            for c in text.chars() {
                used.entry(metrics.glyph(c)).or_insert(c);
            }
        }
    }
    let mut remapper = GlyphRemapper::new();
    for gid in used.keys() {
        remapper.remap(*gid);
    }
    let cid = |c: char| remapper.get(metrics.glyph(c)).expect("every glyph used was remapped");
    let subset =
        subsetter::subset(font.data(), font.index(), &remapper).map_err(|e| PdfError::Subset(e.to_string()))?;

    let mut alloc = Ref::new(1);
    let mut next = || alloc.bump();
    let catalog_id = next();
    let tree_id = next();
    let info_id = next();
    let type0_id = next();
    let cid_font_id = next();
    let descriptor_id = next();
    let to_unicode_id = next();
    let font_file_id = next();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (next(), next())).collect();
    let font_name = Name(b"F1");

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id).kids(page_ids.iter().map(|(p, _)| *p)).count(page_ids.len() as i32);
    let mut doc_info = pdf.document_info(info_id);
    doc_info.title(TextStr(info.title)).producer(TextStr("hospital-documents")).creation_date(pdf_date(info.created));
    doc_info.finish();

    let g = super::layout::Geometry::A4;
    for (page, (page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut p = pdf.page(*page_id);
        p.parent(tree_id).media_box(Rect::new(0.0, 0.0, g.width, g.height)).contents(*content_id);
        p.resources().fonts().pair(font_name, type0_id);
        p.finish();
        let mut content = Content::new();
        for op in &page.ops {
            match op {
                Op::Line { x1, y1, x2, y2, width } => {
                    content.set_line_width(*width).move_to(*x1, *y1).line_to(*x2, *y2).stroke();
                }
                Op::Text { x, y, size, bold, text } => {
                    let glyphs: Vec<u8> = text.chars().flat_map(|c| cid(c).to_be_bytes()).collect();
                    content.begin_text().set_font(font_name, *size);
                    if *bold {
                        content.set_text_rendering_mode(TextRenderingMode::FillStroke).set_line_width(BOLD_STROKE);
                    }
                    content.set_text_matrix([1.0, 0.0, 0.0, 1.0, *x, *y]).show(Str(&glyphs));
                    if *bold {
                        content.set_text_rendering_mode(TextRenderingMode::Fill);
                    }
                    content.end_text();
                }
            }
        }
        pdf.stream(*content_id, &deflate(&content.finish())).filter(Filter::FlateDecode);
    }

    // The font: Type0 -> CIDFont -> descriptor -> subset font program, plus ToUnicode.
    let face = &metrics.face;
    let is_cff = face.tables().cff.is_some();
    let base = format!("{}+{}", subset_tag(used.keys()), postscript_name(face));
    let type0_name = if is_cff { format!("{base}-Identity-H") } else { base.clone() };
    pdf.type0_font(type0_id)
        .base_font(Name(type0_name.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid_font_id)
        .to_unicode(to_unicode_id);

    let mut cid_font = pdf.cid_font(cid_font_id);
    cid_font
        .subtype(if is_cff { CidFontType::Type0 } else { CidFontType::Type2 })
        .base_font(Name(base.as_bytes()))
        .system_info(SYSTEM_INFO)
        .font_descriptor(descriptor_id)
        .default_width(0.0);
    if !is_cff {
        cid_font.cid_to_gid_map_predefined(Name(b"Identity"));
    }
    // Widths by new CID (1, 2, ...): the advances of the original glyphs.
    let widths: Vec<f32> = used.keys().map(|gid| metrics.advance_units(*gid)).collect();
    cid_font.widths().consecutive(1, widths);
    cid_font.finish();

    let bbox = face.global_bounding_box();
    let ascent = metrics.to_pdf(f32::from(face.ascender()));
    let mut flags = FontFlags::SYMBOLIC;
    flags.set(FontFlags::FIXED_PITCH, face.is_monospaced());
    let mut descriptor = pdf.font_descriptor(descriptor_id);
    descriptor
        .name(Name(base.as_bytes()))
        .flags(flags)
        .bbox(Rect::new(
            metrics.to_pdf(f32::from(bbox.x_min)),
            metrics.to_pdf(f32::from(bbox.y_min)),
            metrics.to_pdf(f32::from(bbox.x_max)),
            metrics.to_pdf(f32::from(bbox.y_max)),
        ))
        .italic_angle(face.italic_angle())
        .ascent(ascent)
        .descent(metrics.to_pdf(f32::from(face.descender())))
        .cap_height(face.capital_height().map_or(ascent, |h| metrics.to_pdf(f32::from(h))))
        .stem_v(80.0);
    if is_cff {
        descriptor.font_file3(font_file_id);
    } else {
        descriptor.font_file2(font_file_id);
    }
    descriptor.finish();

    if is_cff {
        // A CIDFontType0C stream is the bare CFF table, not the OpenType wrapper.
        let raw = ttf_parser::RawFace::parse(&subset, 0).map_err(|e| PdfError::Subset(e.to_string()))?;
        let cff = raw
            .table(ttf_parser::Tag::from_bytes(b"CFF "))
            .ok_or_else(|| PdfError::Subset("the subset has no CFF table".into()))?;
        let data = deflate(cff);
        let mut s = pdf.stream(font_file_id, &data);
        s.filter(Filter::FlateDecode).pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
        s.finish();
    } else {
        let data = deflate(&subset);
        let mut s = pdf.stream(font_file_id, &data);
        s.filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
        s.finish();
    }

    let mut cmap = UnicodeCmap::new(Name(b"Custom"), SYSTEM_INFO);
    for (gid, c) in &used {
        cmap.pair(remapper.get(*gid).expect("remapped"), *c);
    }
    pdf.cmap(to_unicode_id, &deflate(&cmap.finish())).filter(Filter::FlateDecode);

    Ok(pdf.finish())
}

fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
}

/// The six capital letters before a subset font's name (PDF 9.6.4): a hash of the glyph set,
/// so two different subsets of one font never share a name.
fn subset_tag<'a>(gids: impl Iterator<Item = &'a u16>) -> String {
    let h = crate::hash::fnv1a(gids.flat_map(|g| g.to_be_bytes()));
    (0..6)
        .map(|i| {
            let letter = ((h >> (i * 5)) % 26) as u8;
            char::from(b'A' + letter)
        })
        .collect()
}

/// The font's PostScript name, reduced to the characters a PDF name may hold.
fn postscript_name(face: &ttf_parser::Face<'_>) -> String {
    let name = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|n| n.to_string())
        .unwrap_or_default();
    let clean: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if clean.is_empty() {
        "CJKFont".into()
    } else {
        clean
    }
}

/// A UTC instant as a PDF date.
fn pdf_date(t: chrono::DateTime<chrono::Utc>) -> Date {
    use chrono::{Datelike, Timelike};
    Date::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_tags_are_six_capitals_and_differ_by_glyph_set() {
        let a = subset_tag([1u16, 2, 3].iter());
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_uppercase()));
        assert_eq!(a, subset_tag([1u16, 2, 3].iter()));
        assert_ne!(a, subset_tag([1u16, 2, 4].iter()));
    }
}
