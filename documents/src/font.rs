//! The CJK font documents are set in: read once from a Debian fonts package (a `.ttc`
//! collection or a single `.ttf`/`.otf`), checked to hold Chinese, and shared by every render.
//! Only the glyphs a document uses are embedded (see `pdf::embed`), so the file on disk may be
//! many megabytes while a PDF carries a few dozen kilobytes of it.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where fonts are looked for when none is configured, in order: WenQuanYi Micro Hei
/// (`fonts-wqy-microhei`, 5 MB, TrueType outlines) first, then Noto Sans CJK SC
/// (`fonts-noto-cjk`, face 2 of the collection is Simplified Chinese, CFF outlines), then
/// WenQuanYi Zen Hei (`fonts-wqy-zenhei`).
pub const DEFAULT_FONTS: [(&str, u32); 3] = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
];

/// A character every Chinese font has and a Latin-only font has not: the load check.
const PROBE: char = '病';

/// Which font to use, as configured (e.g. `[documents] font_path = "..."`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FontConfig {
    /// A `.ttc`, `.ttf` or `.otf` file; unset for the first of `DEFAULT_FONTS` that exists.
    pub font_path: Option<PathBuf>,
    /// The face within a collection (`.ttc`); 0 for a single font.
    pub font_index: u32,
}

impl FontConfig {
    pub fn load(&self) -> Result<CjkFont, FontError> {
        match &self.font_path {
            Some(path) => CjkFont::load(path, self.font_index),
            None => CjkFont::load_default(),
        }
    }
}

/// Why a font could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error(
        "no CJK font at {path}: install the Debian package fonts-wqy-microhei (or fonts-noto-cjk), \
         or set documents.font_path to a .ttc/.ttf/.otf file with Chinese glyphs"
    )]
    NotFound { path: PathBuf },
    #[error(
        "no CJK font found (looked for {tried}): install the Debian package fonts-wqy-microhei \
         (or fonts-noto-cjk), or set documents.font_path"
    )]
    NoneInstalled { tried: String },
    #[error("cannot read the font {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path} (face {index}) is not a usable font: {reason}")]
    Invalid { path: PathBuf, index: u32, reason: String },
}

/// A loaded font: its bytes and what a document needs to know of it. Cheap to clone.
#[derive(Clone)]
pub struct CjkFont {
    data: Arc<Vec<u8>>,
    index: u32,
    path: PathBuf,
}

impl std::fmt::Debug for CjkFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CjkFont").field("path", &self.path).field("index", &self.index).finish()
    }
}

impl CjkFont {
    /// Reads and checks face `index` of the font file at `path`.
    pub fn load(path: impl AsRef<Path>, index: u32) -> Result<Self, FontError> {
        let path = path.as_ref().to_path_buf();
        let data = std::fs::read(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => FontError::NotFound { path: path.clone() },
            _ => FontError::Unreadable { path: path.clone(), source },
        })?;
        Self::from_bytes(data, index, path)
    }

    /// The first of `DEFAULT_FONTS` that is installed.
    pub fn load_default() -> Result<Self, FontError> {
        for (path, index) in DEFAULT_FONTS {
            match Self::load(path, index) {
                Err(FontError::NotFound { .. }) => continue,
                other => return other,
            }
        }
        let tried = DEFAULT_FONTS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ");
        Err(FontError::NoneInstalled { tried })
    }

    /// A font from bytes already read; `path` only names it in errors and `Debug`.
    pub fn from_bytes(data: Vec<u8>, index: u32, path: PathBuf) -> Result<Self, FontError> {
        let invalid = |reason: String| FontError::Invalid { path: path.clone(), index, reason };
        {
            let face = ttf_parser::Face::parse(&data, index).map_err(|e| invalid(e.to_string()))?;
            let tables = face.tables();
            if tables.glyf.is_none() && tables.cff.is_none() {
                // CFF2 (variable) outlines are left out of the subsetter build on purpose.
                return Err(invalid("it has neither TrueType (glyf) nor CFF outlines".into()));
            }
            if face.glyph_index(PROBE).is_none() {
                return Err(invalid(format!("it has no Chinese glyphs (no {PROBE})")));
            }
        }
        Ok(Self { data: Arc::new(data), index, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// The size of the whole font file, in bytes.
    pub fn file_size(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// The parsed face. Checked at load, so parsing again cannot fail.
    pub(crate) fn face(&self) -> ttf_parser::Face<'_> {
        ttf_parser::Face::parse(&self.data, self.index).expect("checked when the font was loaded")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_wrong_fonts_say_what_to_do() {
        let e = CjkFont::load("/nonexistent/font.ttc", 0).unwrap_err();
        assert!(matches!(e, FontError::NotFound { .. }));
        assert!(e.to_string().contains("fonts-wqy-microhei"), "{e}");
        let dir = std::env::temp_dir().join(format!("not-a-font-{}", std::process::id()));
        std::fs::write(&dir, b"hello").unwrap();
        let e = CjkFont::load(&dir, 0).unwrap_err();
        assert!(matches!(e, FontError::Invalid { .. }), "{e}");
        std::fs::remove_file(&dir).unwrap();
        let cfg: FontConfig = serde_json::from_str(r#"{"font_path": "/x.ttc", "font_index": 2}"#).unwrap();
        assert_eq!((cfg.font_path.as_deref(), cfg.font_index), (Some(Path::new("/x.ttc")), 2));
        assert!(matches!(cfg.load(), Err(FontError::NotFound { .. })));
        assert_eq!(FontConfig::default().font_path, None);
    }
}
