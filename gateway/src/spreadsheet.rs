//! Reading an uploaded spreadsheet into `import::Sheet`s: an XLSX workbook (every sheet, with
//! `calamine`) or a CSV file (RFC 4180: quoted fields with `""` and line breaks inside; UTF-8
//! with or without a BOM, or GBK, which is what Excel on a Chinese Windows saves "CSV" as).
//! Which one is told by the content, not the name or the declared type: an XLSX file is a ZIP
//! archive (`PK\x03\x04`).

use calamine::{Data, Reader, Xlsx};
use hospital_domain::import::{Cell, Sheet};
use std::io::Cursor;

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("the workbook could not be read: {0}")]
    Xlsx(String),
    #[error("the file is neither an XLSX workbook nor UTF-8 or GBK text")]
    NotText,
    #[error("line {0}: a quoted field is not closed")]
    UnclosedQuote(usize),
}

/// Whether the bytes are a ZIP archive (an XLSX workbook).
pub fn is_xlsx(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Every sheet of an XLSX workbook, in the workbook's order, rows numbered from the sheet's
/// first (blank rows above the data are kept as blank rows so the numbers match Excel's).
pub fn read_xlsx(bytes: &[u8]) -> Result<Vec<Sheet>, SheetError> {
    let mut book: Xlsx<Cursor<&[u8]>> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e: calamine::XlsxError| SheetError::Xlsx(e.to_string()))?;
    let mut out = Vec::new();
    for name in book.sheet_names() {
        let range = book.worksheet_range(&name).map_err(|e| SheetError::Xlsx(e.to_string()))?;
        let (top, left) = range.start().unwrap_or((0, 0));
        let mut rows: Vec<Vec<Cell>> = (0..top).map(|_| Vec::new()).collect();
        for r in range.rows() {
            let mut cells: Vec<Cell> = (0..left).map(|_| Cell::Empty).collect();
            cells.extend(r.iter().map(cell));
            rows.push(cells);
        }
        out.push(Sheet { name, rows });
    }
    Ok(out)
}

fn cell(d: &Data) -> Cell {
    match d {
        Data::Empty => Cell::Empty,
        Data::Int(i) => Cell::Number(*i as f64),
        Data::Float(f) => Cell::Number(*f),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
        Data::Bool(b) => Cell::Text(b.to_string()),
        Data::DateTime(t) => Cell::Number(t.as_f64()),
        Data::Error(e) => Cell::Text(format!("#{e:?}")),
    }
}

/// A CSV file as one sheet named `name`.
pub fn read_csv(bytes: &[u8], name: &str) -> Result<Sheet, SheetError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => {
            let (t, _, bad) = encoding_rs::GBK.decode(bytes);
            if bad {
                return Err(SheetError::NotText);
            }
            t.into_owned()
        }
    };
    Ok(Sheet { name: name.to_string(), rows: parse_csv(&text)? })
}

/// RFC 4180 fields; a line break ends a record (CRLF or LF) unless inside quotes.
fn parse_csv(text: &str) -> Result<Vec<Vec<Cell>>, SheetError> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let (mut quoted, mut line, mut quote_line) = (false, 1usize, 0usize);
    let to_cell = |f: &mut String| {
        let s = std::mem::take(f);
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s)
        }
    };
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => {
                quoted = true;
                quote_line = line;
            }
            (false, ',') => row.push(to_cell(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(to_cell(&mut field));
                rows.push(std::mem::take(&mut row));
                line += 1;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(SheetError::UnclosedQuote(quote_line));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(to_cell(&mut field));
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rows: &[Vec<Cell>]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        Cell::Text(s) => s.clone(),
                        Cell::Empty => String::new(),
                        Cell::Number(n) => n.to_string(),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn csv_quotes_breaks_bom_and_gbk() {
        let rows =
            read_csv("\u{feff}code,name\r\nNK,\"内科, \"\"大\"\"\n二楼\"\r\nWK,\n".as_bytes(), "csv").unwrap().rows;
        assert_eq!(texts(&rows), [vec!["code", "name"], vec!["NK", "内科, \"大\"\n二楼"], vec!["WK", ""]]);
        let (gbk, _, _) = encoding_rs::GBK.encode("科室编码,科室名称\nNK,内科");
        let rows = read_csv(&gbk, "csv").unwrap().rows;
        assert_eq!(texts(&rows)[1], ["NK", "内科"]);
        assert!(matches!(read_csv(b"a,\"b\nc", "csv"), Err(SheetError::UnclosedQuote(1))));
        assert!(!is_xlsx(b"code,name"));
    }
}
