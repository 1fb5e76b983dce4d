//! When a service group answers (CS-4 service hours): opening spans per weekday, in the
//! hospital's zone, and dates it is closed (holidays). Outside them a patient leaves a message
//! (a `ticket`) instead of waiting for an agent.
//!
//! Written in configuration as local wall-clock spans: `{"mon": ["08:00-12:00", "13:30-17:30"],
//! ..., "closed_on": ["2027-02-06"]}`; `24:00` ends a span at midnight.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

use crate::time::HospitalZone;
use crate::ValidationError;

/// How far ahead `next_opening` looks: a year and a week, so a group closed for a long holiday
/// still gets an answer, and one that never opens gets None rather than a loop.
const LOOKAHEAD_DAYS: i64 = 366 + 7;
const DAY_SECS: u32 = 24 * 3600;

/// An opening span of one day, local time: from `start` (inclusive) to `end` (exclusive),
/// in seconds since midnight; `end` may be 24:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span {
    start: u32,
    end: u32,
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_SECS),
        (0..=23, 0..=59) => Some(h * 3600 + m * 60),
        _ => None,
    }
}

impl Span {
    /// `"08:00-17:30"`; the start before the end.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let err = || ValidationError::new("hours", format!("{s:?} is not a span like 08:00-17:30"));
        let (a, b) = s.split_once('-').ok_or_else(err)?;
        let (start, end) = (parse_hhmm(a).ok_or_else(err)?, parse_hhmm(b).ok_or_else(err)?);
        if start >= end {
            return Err(ValidationError::new("hours", format!("{s:?} ends before it starts")));
        }
        Ok(Self { start, end })
    }

    /// Whether the local second-of-day `secs` falls in it.
    pub fn contains(&self, secs: u32) -> bool {
        self.start <= secs && secs < self.end
    }

    pub fn start_time(&self) -> NaiveTime {
        NaiveTime::from_num_seconds_from_midnight_opt(self.start, 0).expect("start is before 24:00")
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u32| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

impl TryFrom<String> for Span {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Span> for String {
    fn from(s: Span) -> String {
        s.to_string()
    }
}

/// Opening spans per weekday; a day with none is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WeeklyHours {
    pub mon: Vec<Span>,
    pub tue: Vec<Span>,
    pub wed: Vec<Span>,
    pub thu: Vec<Span>,
    pub fri: Vec<Span>,
    pub sat: Vec<Span>,
    pub sun: Vec<Span>,
}

impl WeeklyHours {
    pub fn day(&self, d: Weekday) -> &[Span] {
        match d {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    /// The same spans every day.
    pub fn every_day(spans: &[Span]) -> Self {
        let v = spans.to_vec();
        Self { mon: v.clone(), tue: v.clone(), wed: v.clone(), thu: v.clone(), fri: v.clone(), sat: v.clone(), sun: v }
    }
}

/// A group's service hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawHours", into = "RawHours")]
pub struct ServiceHours {
    weekly: WeeklyHours,
    closed_on: BTreeSet<NaiveDate>,
}

/// The configuration's shape, checked into `ServiceHours`.
#[derive(Serialize, Deserialize)]
struct RawHours {
    #[serde(flatten)]
    weekly: WeeklyHours,
    #[serde(default)]
    closed_on: BTreeSet<NaiveDate>,
}

impl TryFrom<RawHours> for ServiceHours {
    type Error = ValidationError;
    fn try_from(r: RawHours) -> Result<Self, Self::Error> {
        Self::new(r.weekly, r.closed_on)
    }
}

impl From<ServiceHours> for RawHours {
    fn from(h: ServiceHours) -> Self {
        Self { weekly: h.weekly, closed_on: h.closed_on }
    }
}

impl ServiceHours {
    /// Each day's spans sorted by start and not overlapping (touching is allowed).
    pub fn new(mut weekly: WeeklyHours, closed_on: BTreeSet<NaiveDate>) -> Result<Self, ValidationError> {
        for day in [
            &mut weekly.mon,
            &mut weekly.tue,
            &mut weekly.wed,
            &mut weekly.thu,
            &mut weekly.fri,
            &mut weekly.sat,
            &mut weekly.sun,
        ] {
            day.sort();
            if let Some(w) = day.windows(2).find(|w| w[0].end > w[1].start) {
                return Err(ValidationError::new("hours", format!("{} and {} overlap", w[0], w[1])));
            }
        }
        Ok(Self { weekly, closed_on })
    }

    /// Open all day, every day.
    pub fn always() -> Self {
        Self { weekly: WeeklyHours::every_day(&[Span { start: 0, end: DAY_SECS }]), closed_on: BTreeSet::new() }
    }

    pub fn weekly(&self) -> &WeeklyHours {
        &self.weekly
    }

    pub fn closed_on(&self) -> &BTreeSet<NaiveDate> {
        &self.closed_on
    }

    /// Whether the group answers at `t`: by the hospital's wall clock, on a day not closed.
    pub fn is_open(&self, zone: &HospitalZone, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&zone.0);
        let date = local.date_naive();
        !self.closed_on.contains(&date)
            && self.weekly.day(date.weekday()).iter().any(|s| s.contains(local.time().num_seconds_from_midnight()))
    }

    /// The first instant at or after `t` when the group is open (`t` itself when it is open now);
    /// None if it does not open within a year.
    pub fn next_opening(&self, zone: &HospitalZone, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(zone, t) {
            return Some(t);
        }
        let today = zone.local_date(t);
        (0..=LOOKAHEAD_DAYS)
            .map(|d| today + Duration::days(d))
            .filter(|date| !self.closed_on.contains(date))
            .flat_map(|date| self.weekly.day(date.weekday()).iter().map(move |s| zone.to_utc(date, s.start_time())))
            .find(|start| *start > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn zone() -> HospitalZone {
        HospitalZone::default()
    }

    /// A Shanghai wall-clock time as UTC.
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap().with_timezone(&Utc)
    }

    fn hours() -> ServiceHours {
        serde_json::from_value(serde_json::json!({
            "mon": ["13:30-17:30", "08:00-12:00"],
            "tue": ["08:00-12:00", "13:30-17:30"],
            "wed": ["08:00-12:00", "13:30-17:30"],
            "thu": ["08:00-12:00", "13:30-17:30"],
            "fri": ["08:00-12:00", "13:30-17:30"],
            "sat": ["09:00-12:00"],
            "closed_on": ["2026-12-01"]
        }))
        .unwrap()
    }

    #[test]
    fn open_by_the_hospitals_wall_clock() {
        let h = hours();
        // 2026-11-30 is a Monday.
        assert!(h.is_open(&zone(), at(2026, 11, 30, 8, 0)), "the start is open");
        assert!(h.is_open(&zone(), at(2026, 11, 30, 11, 59)));
        assert!(!h.is_open(&zone(), at(2026, 11, 30, 12, 0)), "the end is closed");
        assert!(!h.is_open(&zone(), at(2026, 11, 30, 7, 59)));
        assert!(h.is_open(&zone(), at(2026, 11, 30, 14, 0)));
        // 00:30 UTC on Monday is 08:30 in Shanghai: open, though UTC says it is early morning.
        assert!(h.is_open(&zone(), Utc.with_ymd_and_hms(2026, 11, 30, 0, 30, 0).unwrap()));
        assert!(!h.is_open(&zone(), at(2026, 12, 1, 9, 0)), "closed for the day");
        assert!(!h.is_open(&zone(), at(2026, 12, 6, 10, 0)), "Sunday");
    }

    #[test]
    fn next_opening() {
        let h = hours();
        let open_now = at(2026, 11, 30, 9, 0);
        assert_eq!(h.next_opening(&zone(), open_now), Some(open_now));
        assert_eq!(h.next_opening(&zone(), at(2026, 11, 30, 12, 10)), Some(at(2026, 11, 30, 13, 30)));
        // Monday evening: Tuesday is closed, so Wednesday morning.
        assert_eq!(h.next_opening(&zone(), at(2026, 11, 30, 18, 0)), Some(at(2026, 12, 2, 8, 0)));
        // Saturday after noon: Sunday has no hours, so Monday.
        assert_eq!(h.next_opening(&zone(), at(2026, 12, 5, 12, 0)), Some(at(2026, 12, 7, 8, 0)));
        let never = ServiceHours::new(WeeklyHours::default(), BTreeSet::new()).unwrap();
        assert_eq!(never.next_opening(&zone(), open_now), None);
        assert!(ServiceHours::always().is_open(&zone(), at(2026, 12, 6, 23, 59)));
    }

    #[test]
    fn midnight_and_daylight_saving() {
        let h = ServiceHours::new(
            WeeklyHours::every_day(&[Span::parse("22:00-24:00").unwrap(), Span::parse("00:00-02:00").unwrap()]),
            BTreeSet::new(),
        )
        .unwrap();
        assert!(h.is_open(&zone(), at(2026, 11, 30, 23, 59)));
        assert!(h.is_open(&zone(), at(2026, 12, 1, 0, 0)));
        assert!(!h.is_open(&zone(), at(2026, 12, 1, 2, 0)));
        // A zone with DST: on 2026-03-29 Berlin skips 02:00-03:00; a 02:30 opening that day counts
        // from where `HospitalZone::to_utc` puts a skipped time, an hour later.
        let berlin = HospitalZone::parse("Europe/Berlin").unwrap();
        let h =
            ServiceHours::new(WeeklyHours::every_day(&[Span::parse("02:30-04:00").unwrap()]), BTreeSet::new()).unwrap();
        let before = chrono_tz::Europe::Berlin.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap().with_timezone(&Utc);
        let opening = h.next_opening(&berlin, before).unwrap();
        assert_eq!(berlin.show(opening), "2026-03-29T03:30:00+02:00");
        assert!(h.is_open(&berlin, opening));
    }

    #[test]
    fn bad_hours_are_refused() {
        for bad in ["8:00-12:00", "08:00-07:00", "08:00-08:00", "24:30-25:00", "08:60-09:00", "08:00", "x-y"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
        let overlapping = serde_json::json!({"mon": ["08:00-12:00", "11:00-13:00"]});
        let e = serde_json::from_value::<ServiceHours>(overlapping).unwrap_err().to_string();
        assert!(e.contains("overlap"), "{e}");
        // Written back as it reads, spans sorted.
        let h = hours();
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["mon"], serde_json::json!(["08:00-12:00", "13:30-17:30"]));
        assert_eq!(v["sun"], serde_json::json!([]));
        assert_eq!(serde_json::from_value::<ServiceHours>(v).unwrap(), h);
        assert_eq!(Span::parse("22:00-24:00").unwrap().to_string(), "22:00-24:00");
    }
}
