//! Order-preserving key encoding. A row key is its CQL primary key (partition key, then
//! clustering columns) encoded so that byte order equals CQL order, and so that the encoding of
//! a partition key alone is a prefix of all its rows: a partition read is a prefix scan.

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new() -> Self {
        Self(Vec::with_capacity(40))
    }
    /// Strings are escaped (0x00 -> 0x00 0xFF) and terminated by 0x00 0x01, which keeps byte
    /// order equal to string order and makes "ab" not a prefix of "abc" as a component.
    pub fn str(mut self, s: &str) -> Self {
        // Grown once, not byte by byte (a log key is longer than `new`'s capacity).
        self.0.reserve(s.len() + 2);
        if !s.as_bytes().contains(&0) {
            // Nearly every string: copied whole, not looked at byte by byte (3,800 instructions
            // a hold under callgrind: docs/benchmarks.md, stop 49).
            self.0.extend_from_slice(s.as_bytes());
        } else {
            for &b in s.as_bytes() {
                self.0.push(b);
                if b == 0 {
                    self.0.push(0xFF);
                }
            }
        }
        self.0.extend_from_slice(&[0, 1]);
        self
    }
    pub fn uuid(mut self, u: &Uuid) -> Self {
        self.0.extend_from_slice(u.as_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Signed integers flip the sign bit so negatives sort first.
    pub fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
        self
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn date(self, d: NaiveDate) -> Self {
        self.i64(i64::from(d.num_days_from_ce()))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Where the string component `Key::str` wrote at the start of `bytes` ends (after its
/// terminator); None if it is not there whole.
pub fn str_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match (*bytes.get(i)?, bytes.get(i + 1)) {
            (0, Some(1)) => return Some(i + 2),
            (0, Some(0xFF)) => i += 2,
            _ => i += 1,
        }
    }
}

/// The string component `Key::str` wrote at the start of `bytes`, unescaped, and what follows
/// its terminator; None if it is not there whole or not UTF-8.
pub fn read_str(bytes: &[u8]) -> Option<(String, &[u8])> {
    let end = str_end(bytes)?;
    let mut s = Vec::with_capacity(end - 2);
    let mut escaped = bytes[..end - 2].iter();
    while let Some(&b) = escaped.next() {
        s.push(b);
        if b == 0 {
            // The escape's 0xFF.
            escaped.next();
        }
    }
    Some((String::from_utf8(s).ok()?, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_component_reads_back_with_what_follows() {
        let k = Key::new().str("a\0b").u64(7).into_bytes();
        let (s, rest) = read_str(&k).unwrap();
        assert_eq!((s.as_str(), rest), ("a\0b", &7u64.to_be_bytes()[..]));
        assert_eq!(read_str(b"no terminator"), None);
        // The bytes themselves: a string with no zero is copied whole, one with zeros escaped.
        assert_eq!(Key::new().str("ab").bytes(), b"ab\0\x01");
        assert_eq!(Key::new().str("a\0b").bytes(), b"a\0\xffb\0\x01");
    }

    #[test]
    fn order_is_preserved() {
        let a = Key::new().str("ab").u64(9);
        let b = Key::new().str("abc").u64(1);
        assert!(a.bytes() < b.bytes(), "component order, not byte soup");
        assert!(Key::new().i64(-5).bytes() < Key::new().i64(3).bytes());
        let d1 = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let d2 = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
        assert!(Key::new().date(d1).bytes() < Key::new().date(d2).bytes());
        let p = Key::new().str("x");
        assert!(Key::new().str("x").u8(1).bytes().starts_with(p.bytes()));
        assert!(!Key::new().str("x\0y").bytes().starts_with(p.bytes()));
    }
}
