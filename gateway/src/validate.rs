//! Ranges for every number, amount of money and date a request carries. Each request field that
//! holds one has a type from here, so its range is declared once, next to its name, and the same
//! bounds appear in the OpenAPI document (`minimum`/`maximum`). A value outside the range, one
//! too large for any machine integer included, is refused while the body or query string is
//! read: 422 `invalid_field`, with `field` the path to it (`weekly[0].segment_minutes`), before a
//! handler could compute with it.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use hospital_domain::Fen;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use std::fmt;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

/// What every out-of-range message starts with, so the extractors can tell a range error from
/// a wrong type (serde carries errors as text).
pub(crate) const OUT_OF_RANGE: &str = "out of range: ";

fn out_of_range<E: de::Error>(reason: impl fmt::Display) -> E {
    E::custom(format!("{OUT_OF_RANGE}{reason}"))
}

/// Reads an integer in `min..=max`: a JSON number (a huge one arrives as a float), or the text
/// of one (query strings carry every value as text).
fn integer<'de, D: Deserializer<'de>>(d: D, min: i128, max: i128) -> Result<i128, D::Error> {
    struct V {
        min: i128,
        max: i128,
    }
    impl V {
        fn check<E: de::Error>(&self, v: i128) -> Result<i128, E> {
            if (self.min..=self.max).contains(&v) {
                Ok(v)
            } else {
                Err(out_of_range(format!("must be from {} to {}", self.min, self.max)))
            }
        }
    }
    impl Visitor<'_> for V {
        type Value = i128;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "an integer from {} to {}", self.min, self.max)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
            self.check(v.into())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
            self.check(v.into())
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<i128, E> {
            self.check(v)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<i128, E> {
            self.check(i128::try_from(v).unwrap_or(i128::MAX))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
            if !v.is_finite() || v.fract() != 0.0 {
                return Err(E::invalid_type(Unexpected::Float(v), &self));
            }
            // A whole number: beyond i128 it saturates, which is out of range all the same.
            self.check(v as i128)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
            let digits = v.strip_prefix('-').unwrap_or(v);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::invalid_value(Unexpected::Str(v), &self));
            }
            // All digits: too long for i128 is out of range, not malformed.
            self.check(v.parse::<i128>().unwrap_or(if v.starts_with('-') { i128::MIN } else { i128::MAX }))
        }
    }
    d.deserialize_any(V { min, max })
}

fn integer_schema(min: i64, max: i64, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .description(Some(description))
        .into()
}

/// An integer type with a range: `ranged!(Name(u32): 1, 7, "what it is")`.
macro_rules! ranged {
    ($(#[$m:meta])* $name:ident($t:ty): $min:expr, $max:expr, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($t);

        impl $name {
            pub const MIN: $t = $min;
            pub const MAX: $t = $max;
            pub const fn get(self) -> $t {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = integer(d, Self::MIN as i128, Self::MAX as i128)?;
                <$t>::try_from(v).map(Self).map_err(|_| out_of_range("does not fit"))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                integer_schema(Self::MIN as i64, Self::MAX as i64, $what)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

ranged!(
    /// A day of the week, 1 = Monday ... 7 = Sunday.
    IsoWeekday(u32): 1, 7, "Day of the week, 1 = Monday ... 7 = Sunday."
);
ranged!(
    /// Minutes per segment of a clinic session (分时段): 5 minutes to 4 hours.
    SegmentMinutes(i64): 5, 240, "Minutes per segment (分时段), 5 to 240."
);
ranged!(
    /// Places per segment: 0 to 500.
    Quota(u32): 0, 500, "Places per segment, 0 to 500."
);
ranged!(
    /// Days before a session its slots are released (放号): 0 to 90.
    ReleaseDays(u32): 0, 90, "Days before the session its slots open (放号), 0 to 90."
);
ranged!(
    /// How many items a list answers: 1 to 200.
    ListLimit(usize): 1, 200, "At most this many items, 1 to 200."
);
ranged!(
    /// How many popular doctors the home page shows: 1 to 50.
    PopularLimit(usize): 1, 50, "At most this many doctors, 1 to 50."
);
ranged!(
    /// A chat message's number within its conversation (0: before the first).
    ChatSeq(u64): 0, 1_000_000_000, "A message's number in its conversation, 0 to 1000000000."
);
ranged!(
    /// A satisfaction score (满意度): 1 to 5.
    ChatScore(u8): 1, 5, "Satisfaction, 1 (very unsatisfied) to 5 (very satisfied)."
);
ranged!(
    /// An agent's cap of concurrent conversations: 1 to 50.
    ChatCap(u32): 1, 50, "Concurrent conversations, 1 to 50."
);
ranged!(
    /// A place in a waiting queue, 1 = next: 1 to 10,000.
    QueuePosition(usize): 1, 10_000, "Position in the queue, 1 = next; 1 to 10000."
);

/// An amount of money from outside, in fen: 0 to `Fen::MAX_ACCEPTED` (¥10,000,000.00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Fen);

impl Money {
    pub const fn fen(self) -> Fen {
        self.0
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = integer(d, 0, i128::from(Fen::MAX_ACCEPTED.get()))?;
        u64::try_from(v).map(|v| Money(Fen::new(v))).map_err(|_| out_of_range("does not fit"))
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        let max = i64::try_from(Fen::MAX_ACCEPTED.get()).unwrap_or(i64::MAX);
        integer_schema(0, max, "An amount in fen (1 yuan = 100 fen), 0 to 1000000000 (¥10,000,000.00).")
    }
}

impl utoipa::ToSchema for Money {}

/// A calendar date (`YYYY-MM-DD`) from 1900-01-01 to 2199-12-31: wide enough for any birth date
/// and schedule, narrow enough that date arithmetic on it can never overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

impl Day {
    pub const MIN: NaiveDate = NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date");
    pub const MAX: NaiveDate = NaiveDate::from_ymd_opt(2199, 12, 31).expect("a valid date");

    pub const fn get(self) -> NaiveDate {
        self.0
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        // A well-formed date of another year is out of range; anything else (month 13) is malformed.
        let parts: Vec<&str> = s.trim_start_matches(['+', '-']).split('-').collect();
        if parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            let year = parts[0].parse::<i64>().unwrap_or(i64::MAX);
            if s.starts_with('-') || !(i64::from(Day::MIN.year())..=i64::from(Day::MAX.year())).contains(&year) {
                return Err(out_of_range(format!("must be a date from {} to {}", Day::MIN, Day::MAX)));
            }
        }
        match s.parse::<NaiveDate>() {
            Ok(date) if (Day::MIN..=Day::MAX).contains(&date) => Ok(Day(date)),
            _ => Err(de::Error::invalid_value(Unexpected::Str(&s), &"a date as YYYY-MM-DD")),
        }
    }
}

impl utoipa::PartialSchema for Day {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .description(Some("A date, YYYY-MM-DD, from 1900-01-01 to 2199-12-31."))
            .into()
    }
}

impl utoipa::ToSchema for Day {}

/// An instant (RFC 3339) within the years of `Day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Moment(DateTime<Utc>);

impl Moment {
    pub const fn get(self) -> DateTime<Utc> {
        self.0
    }
}

impl<'de> Deserialize<'de> for Moment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        match DateTime::parse_from_rfc3339(&s) {
            Ok(t) if (Day::MIN..=Day::MAX).contains(&t.with_timezone(&Utc).date_naive()) => Ok(Moment(t.into())),
            Ok(_) => Err(out_of_range(format!("must be an instant from {} to {}", Day::MIN, Day::MAX))),
            Err(_) => Err(de::Error::invalid_value(Unexpected::Str(&s), &"an RFC 3339 date and time")),
        }
    }
}

impl utoipa::PartialSchema for Moment {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("An RFC 3339 date and time, years 1900 to 2199."))
            .into()
    }
}

impl utoipa::ToSchema for Moment {}

/// A range error found while reading a request, as the API answers it: the field's path and
/// the reason, or `None` when `message` is some other kind of error.
pub(crate) fn range_error(path: &str, message: &str) -> Option<crate::error::ApiError> {
    // serde_json appends the position; the path says more.
    let message = message.split(" at line ").next().unwrap_or(message);
    let reason = message.strip_prefix(OUT_OF_RANGE)?;
    Some(crate::error::ApiError::OutOfRange { field: path.to_string(), message: reason.to_string() })
}

/// `?limit=`: a listing's page size (the chat's conversations and tickets).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub limit: Option<ListLimit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_in_range_pass_and_others_are_out_of_range() {
        assert_eq!(json::<SegmentMinutes>("30").unwrap().get(), 30);
        assert_eq!(json::<SegmentMinutes>("\"30\"").unwrap().get(), 30, "query strings carry text");
        for bad in
            ["4", "241", "-1", "4611686018427387904", "18446744073709551616", "1e30", "\"99999999999999999999999\""]
        {
            let e = json::<SegmentMinutes>(bad).unwrap_err();
            assert!(e.starts_with(OUT_OF_RANGE), "{bad}: {e}");
            assert!(e.contains("from 5 to 240"), "{bad}: {e}");
        }
        for wrong in ["5.5", "\"abc\"", "true", "null"] {
            let e = json::<SegmentMinutes>(wrong).unwrap_err();
            assert!(!e.starts_with(OUT_OF_RANGE), "{wrong} is a wrong type, not a range: {e}");
        }
        assert_eq!(json::<ReleaseDays>("90").unwrap().get(), 90);
        assert!(json::<ReleaseDays>("4294967295").unwrap_err().starts_with(OUT_OF_RANGE));
    }

    #[test]
    fn money_has_an_upper_bound() {
        assert_eq!(json::<Money>("1000000000").unwrap().fen(), Fen::MAX_ACCEPTED);
        assert_eq!(json::<Money>("0").unwrap().fen(), Fen::ZERO);
        for bad in ["1000000001", "9223372036854775807", "-1"] {
            assert!(json::<Money>(bad).unwrap_err().starts_with(OUT_OF_RANGE), "{bad}");
        }
    }

    #[test]
    fn dates_have_a_range() {
        assert_eq!(json::<Day>("\"2026-05-01\"").unwrap().get(), NaiveDate::from_ymd_opt(2026, 5, 1).unwrap());
        for bad in ["\"1899-12-31\"", "\"2200-01-01\"", "\"-262143-01-01\"", "\"+262142-12-31\"", "\"+999999-01-01\""] {
            assert!(json::<Day>(bad).unwrap_err().starts_with(OUT_OF_RANGE), "{bad}");
        }
        assert!(!json::<Day>("\"2026-13-01\"").unwrap_err().starts_with(OUT_OF_RANGE));
    }

    #[test]
    fn range_errors_are_told_apart() {
        let e = json::<Quota>("501").unwrap_err();
        let api = range_error("weekly[0].quota", &e).expect("a range error");
        assert_eq!(api.code(), "invalid_field");
        assert_eq!(api.to_string(), "weekly[0].quota: must be from 0 to 500");
        assert!(range_error("x", "invalid type: string").is_none());
    }
}

ranged!(
    /// How many items of a list to skip (paging): 0 to 100,000.
    ListOffset(usize): 0, 100_000, "Items to skip, 0 to 100000."
);
