//! A UTC time written as chrono's serde writes it (RFC 3339 with `Z` and the shortest of no,
//! three, six or nine fraction digits), byte for byte, without going through `fmt`.
//!
//! Why: chrono serialises through `collect_str`, which serde_json runs character by character
//! through its escaping writer; a durable hold writes its times about seven times (the
//! appointment, the order, their live events and the answer), and that was about 2 µs of the
//! hold's server time. Reading is chrono's own (`Deserialize` is untouched), and times outside
//! years 0-9999 fall back to chrono's writer, so the text is the same either way (tested).
//!
//! Use on a field: `#[serde(serialize_with = "crate::timestamp::serialize")]`, or
//! `serialize_opt` for an `Option`; `date` for a `NaiveDate` (`YYYY-MM-DD`, the same way round).

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Serialize, Serializer};

/// Longest fast-path text: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const MAX: usize = 30;

/// Writes `t` into `buf` as chrono would; `None` for a year chrono writes with a sign.
fn write(t: &DateTime<Utc>, buf: &mut [u8; MAX]) -> Option<usize> {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let (mut sec, mut nano) = (t.second(), t.nanosecond());
    // A leap second is carried as nanoseconds past 1e9; chrono writes it as second 60.
    if nano >= 1_000_000_000 {
        sec += 1;
        nano -= 1_000_000_000;
    }
    put(&mut buf[0..], year as u32, 4);
    buf[4] = b'-';
    put(&mut buf[5..], t.month(), 2);
    buf[7] = b'-';
    put(&mut buf[8..], t.day(), 2);
    buf[10] = b'T';
    put(&mut buf[11..], t.hour(), 2);
    buf[13] = b':';
    put(&mut buf[14..], t.minute(), 2);
    buf[16] = b':';
    put(&mut buf[17..], sec, 2);
    let fraction = match nano {
        0 => None,
        _ if nano % 1_000_000 == 0 => Some((nano / 1_000_000, 3)),
        _ if nano % 1_000 == 0 => Some((nano / 1_000, 6)),
        _ => Some((nano, 9)),
    };
    let mut n = 19;
    if let Some((value, width)) = fraction {
        buf[19] = b'.';
        put(&mut buf[20..], value, width);
        n = 20 + width;
    }
    buf[n] = b'Z';
    Some(n + 1)
}

/// `value`'s last `width` decimal digits, zero-padded, at the start of `buf`.
fn put(buf: &mut [u8], mut value: u32, width: usize) {
    for b in buf[..width].iter_mut().rev() {
        *b = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `serialize_with` for a `DateTime<Utc>`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX];
    match write(t, &mut buf) {
        // Only ASCII digits and separators were written.
        Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).expect("ASCII")),
        None => t.serialize(s),
    }
}

/// `serialize_with` for an `Option<DateTime<Utc>>`.
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&Fast(t)),
        None => s.serialize_none(),
    }
}

/// `serialize_with` for a `NaiveDate`: `YYYY-MM-DD` as chrono writes it (through `collect_str`,
/// as a time, character by character: a hold writes its date four times).
pub fn date<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    let year = d.year();
    if !(0..=9999).contains(&year) {
        return d.serialize(s);
    }
    let mut buf = [0u8; 10];
    put(&mut buf[0..], year as u32, 4);
    buf[4] = b'-';
    put(&mut buf[5..], d.month(), 2);
    buf[7] = b'-';
    put(&mut buf[8..], d.day(), 2);
    s.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
}

/// A time that serialises through `serialize`.
struct Fast<'a>(&'a DateTime<Utc>);

impl Serialize for Fast<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn ours(t: &DateTime<Utc>) -> String {
        let mut out = Vec::new();
        serialize(t, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_fraction_width_and_the_edges_read_as_chrono_writes_them() {
        let base = Utc.with_ymd_and_hms(2026, 12, 1, 2, 3, 4).unwrap();
        for nanos in [0, 1, 999_999_999, 120_000_000, 123_456_000, 123_456_789, 5_000] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            assert_eq!(ours(&t), serde_json::to_string(&t).unwrap(), "{nanos} ns");
        }
        assert_eq!(ours(&base), "\"2026-12-01T02:03:04Z\"");
        // A leap second, and years chrono writes with a sign (the fallback).
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        assert_eq!(ours(&leap), serde_json::to_string(&leap).unwrap());
        assert_eq!(ours(&leap), "\"2016-12-31T23:59:60.500Z\"");
        for y in [-1, 0, 9999, 10_000] {
            let t = Utc.with_ymd_and_hms(y, 1, 2, 3, 4, 5).unwrap();
            assert_eq!(ours(&t), serde_json::to_string(&t).unwrap(), "year {y}");
        }
    }

    #[test]
    fn an_option_is_null_or_the_same_text() {
        #[derive(Serialize)]
        struct Row {
            #[serde(serialize_with = "serialize_opt")]
            at: Option<DateTime<Utc>>,
        }
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(7);
        assert_eq!(serde_json::to_string(&Row { at: None }).unwrap(), r#"{"at":null}"#);
        assert_eq!(serde_json::to_string(&Row { at: Some(t) }).unwrap(), r#"{"at":"2026-01-02T03:04:05.007Z"}"#);
        // MessagePack (the live frames) gets the same string.
        assert_eq!(rmp_serde::to_vec(&Row { at: Some(t) }).unwrap(), rmp_serde::to_vec(&(Some(&t),)).unwrap());
    }

    fn our_date(d: &NaiveDate) -> String {
        let mut out = Vec::new();
        date(d, &mut serde_json::Serializer::new(&mut out)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_date_reads_as_chrono_writes_it_in_and_out_of_the_fast_years() {
        for (y, m, d) in [(2026, 12, 2), (1, 1, 1), (0, 2, 29), (9999, 12, 31), (-1, 3, 4), (10_000, 1, 1)] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(our_date(&day), serde_json::to_string(&day).unwrap(), "{y}-{m}-{d}");
        }
        assert_eq!(our_date(&NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()), "\"2026-03-09\"");
    }

    proptest! {
        #[test]
        fn any_date_reads_as_chrono_writes_it(days in -400_000i32..4_000_000) {
            let d = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
            prop_assert_eq!(our_date(&d), serde_json::to_string(&d).unwrap());
        }

        #[test]
        fn any_time_reads_as_chrono_writes_it(secs in -62_000_000_000i64..260_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            prop_assert_eq!(ours(&t), serde_json::to_string(&t).unwrap());
        }
    }
}
