//! Free text typed by people (chat messages, ratings' comments, FAQ answers): kept as plain text,
//! never HTML, so clients escape it when they show it and nothing typed can become markup. What is
//! refused is what would make the text lie about itself: control characters, and the Unicode
//! direction overrides that make `exe.txt` display as `txt.exe`.

use crate::ValidationError;

/// Whether line breaks are part of the text (a chat message) or not (a title).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    Single,
    Multi,
}

/// Unicode's explicit direction embeddings, overrides and isolates (U+202A..U+202E,
/// U+2066..U+2069): invisible, and able to reorder what is shown.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Trimmed text of 1 to `max_chars` characters (Unicode scalar values, so a Chinese character
/// counts one). `\r\n` and lone `\r` become `\n`; with `Lines::Multi`, `\n` and `\t` are kept,
/// every other control character and direction override is refused.
pub fn parse_text(field: &'static str, raw: &str, max_chars: usize, lines: Lines) -> Result<String, ValidationError> {
    let s = raw.replace("\r\n", "\n").replace('\r', "\n");
    let s = s.trim();
    let n = s.chars().count();
    if n == 0 || n > max_chars {
        return Err(ValidationError::new(field, format!("must be 1 to {max_chars} characters")));
    }
    let allowed = |c: char| lines == Lines::Multi && (c == '\n' || c == '\t');
    if s.chars().any(|c| (c.is_control() && !allowed(c)) || is_direction_control(c)) {
        return Err(ValidationError::new(field, "must not contain control characters"));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_normalises_and_refuses_controls() {
        assert_eq!(parse_text("text", "  你好\r\n请问  ", 10, Lines::Multi).unwrap(), "你好\n请问");
        assert_eq!(parse_text("text", "a\rb", 10, Lines::Multi).unwrap(), "a\nb");
        assert!(parse_text("text", "a\nb", 10, Lines::Single).is_err());
        assert!(parse_text("text", "a\u{0}b", 10, Lines::Multi).is_err());
        assert!(parse_text("text", "a\u{1b}[31mb", 10, Lines::Multi).is_err());
        assert!(parse_text("text", "photo\u{202e}gpj.exe", 20, Lines::Multi).is_err());
        assert!(parse_text("text", "   ", 10, Lines::Multi).is_err());
        assert_eq!(parse_text("text", &"字".repeat(10), 10, Lines::Multi).unwrap().chars().count(), 10);
        let e = parse_text("text", &"字".repeat(11), 10, Lines::Multi).unwrap_err();
        assert_eq!(e.field, "text");
        // Markup is text like any other: stored as typed, escaped by whoever shows it.
        assert_eq!(parse_text("text", "<b>hi</b>", 20, Lines::Single).unwrap(), "<b>hi</b>");
    }
}

/// A CSV cell (RFC 4180): quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula. Every CSV export
/// (audit log, finance reports) writes its cells through this.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_cell;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("检查费"), "检查费");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("-1,2"), "\"'-1,2\"");
    }
}
