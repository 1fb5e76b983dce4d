//! Free text a doctor or patient types: trimmed, bounded in characters, no control characters
//! (line breaks and tabs allowed where the field is multi-line). One rule for every text field
//! of a visit, so the limits read the same everywhere.

use crate::ValidationError;

/// Whether line breaks are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lines {
    One,
    Many,
}

/// `raw` trimmed, checked to hold 1 to `max` characters and no control characters. `item` is the
/// 1-based position in a list, named in the reason so the client knows which row to fix.
pub(crate) fn text(
    field: &'static str,
    item: Option<usize>,
    raw: &str,
    max: usize,
    lines: Lines,
) -> Result<String, ValidationError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n == 0 || n > max {
        return Err(invalid(field, item, format!("must be 1 to {max} characters")));
    }
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if s.chars().any(|c| c.is_control() && !allowed(c)) {
        let what =
            if lines == Lines::Many { "control characters other than line breaks" } else { "control characters" };
        return Err(invalid(field, item, format!("must not contain {what}")));
    }
    // One line-break convention in storage, whatever the client sent.
    Ok(if lines == Lines::Many { s.replace("\r\n", "\n").replace('\r', "\n") } else { s.to_string() })
}

/// Like `text`, but an empty or absent value is `None`.
pub(crate) fn optional_text(
    field: &'static str,
    item: Option<usize>,
    raw: Option<&str>,
    max: usize,
    lines: Lines,
) -> Result<Option<String>, ValidationError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => text(field, item, s, max, lines).map(Some),
    }
}

/// A validation error, naming the list item (from 1) when there is one.
pub(crate) fn invalid(field: &'static str, item: Option<usize>, reason: impl Into<String>) -> ValidationError {
    match item {
        Some(i) => ValidationError::new(field, format!("item {i}: {}", reason.into())),
        None => ValidationError::new(field, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_bounds_and_names_the_item() {
        assert_eq!(text("f", None, "  头痛 ", 5, Lines::One).unwrap(), "头痛");
        assert_eq!(text("f", None, "a\r\nb\rc", 9, Lines::Many).unwrap(), "a\nb\nc");
        assert!(text("f", None, "a\nb", 9, Lines::One).is_err());
        assert!(text("f", None, "a\u{0}b", 9, Lines::Many).is_err());
        assert!(text("f", None, "  ", 9, Lines::One).is_err());
        assert!(text("f", None, "六个汉字长的", 5, Lines::One).is_err());
        let e = text("prescription.drug", Some(3), "", 5, Lines::One).unwrap_err();
        assert_eq!(e.field, "prescription.drug");
        assert!(e.reason.starts_with("item 3: "), "{e}");
        assert_eq!(optional_text("f", None, Some("  "), 5, Lines::One).unwrap(), None);
        assert_eq!(optional_text("f", None, None, 5, Lines::One).unwrap(), None);
    }
}
